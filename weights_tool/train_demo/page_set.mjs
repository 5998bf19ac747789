// page_set — draw eval.py's "page" pictures the way the web page's drawing pad does: a white
// 448 x 448 canvas in Chromium, each shape stamped with web/draw.mjs's own outline
// (shapePoints) and palette (COLOURS), filled or stroked with the pen width, round caps and
// joins (DrawingBoard._shape). Acceptance pictures for the demo model come from the page's
// tools, not from the trainer's drawing code.
//
//   /usr/bin/python3 weights_tool/train_demo/eval.py --kind page --page-dir DIR --n 300 --spec-only
//   node weights_tool/train_demo/page_set.mjs DIR          (writes DIR/000.png ...)
//   /usr/bin/python3 weights_tool/train_demo/eval.py --kind page --page-dir DIR --n 300 --model M ...
//
// DIR/spec.json lists per picture its objects: shape, colour, centre x/y, radius r and pen width
// as fractions of the side, and "drawn" (filled, else outlined). Needs Debian's chromium and
// npm playwright-core (as the browser tests).
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { COLOURS, shapePoints } from '../../web/draw.mjs';

const SIDE = 448; // the drawing pad's canvas (web/draw.mjs DEFAULT_SIZE)
const dir = process.argv[2];
if (!dir || process.argv.length !== 3) {
  console.error('usage: page_set.mjs DIR   (DIR/spec.json from eval.py --kind page --spec-only)');
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(path.join(dir, 'spec.json'), 'utf8'));
const hex = Object.fromEntries(COLOURS.map(([name, h]) => [name, h]));
const pictures = spec.map((p) => ({
  file: p.file,
  shapes: p.objects.map((o) => {
    if (!hex[o.colour]) throw new Error(`${p.file}: colour ${o.colour} is not on the page's palette`);
    const pts = shapePoints(o.shape, o.x * SIDE, o.y * SIDE, o.r * SIDE);
    if (!pts.length) throw new Error(`${p.file}: shape ${o.shape} is not one of the page's tools`);
    return { pts, colour: hex[o.colour], filled: o.drawn === 'filled', pen: Math.max(2, Math.min(40, Math.round(o.pen * SIDE))) };
  }),
}));

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  const urls = await page.evaluate(({ pictures, side }) => {
    const c = document.createElement('canvas');
    c.width = c.height = side;
    const g = c.getContext('2d');
    return pictures.map((p) => {
      g.fillStyle = '#ffffff';
      g.fillRect(0, 0, side, side);
      for (const s of p.shapes) {
        g.strokeStyle = g.fillStyle = s.colour;
        g.lineWidth = s.pen;
        g.lineCap = g.lineJoin = 'round';
        g.beginPath();
        g.moveTo(s.pts[0][0], s.pts[0][1]);
        for (const [x, y] of s.pts.slice(1)) g.lineTo(x, y);
        g.closePath();
        if (s.filled) g.fill(); else g.stroke();
      }
      return c.toDataURL('image/png');
    });
  }, { pictures, side: SIDE });
  urls.forEach((u, k) => fs.writeFileSync(path.join(dir, pictures[k].file), Buffer.from(u.split(',')[1], 'base64')));
  console.log(`page_set: ${urls.length} pictures drawn into ${dir}`);
} finally {
  await browser.close();
}
