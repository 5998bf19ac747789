// screenshots.mjs - the page's screenshots in docs/screenshots/ (README.md shows them): the
// demo model answering a shape drawn with the page's own tools, at 1280×800 (desktop) and
// 390×844 (phone), in Debian's Chromium.
//
//   node scripts/screenshots.mjs        (needs `make wasm`; writes docs/screenshots/{desktop,phone}.png)
//
// Each PNG must stay under 150 KB (checked here).
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '../tests/browser/web-server.mjs';
import { root, launch, removeProfiles, loadModel, toPage, askAndWatch } from '../tests/browser/web-helpers.mjs';

const out = path.join(root, 'docs/screenshots');
const SHOTS = [
  { file: 'desktop.png', viewport: { width: 1280, height: 800 }, tool: 'star', colour: 'blue', ask: 'What shape is this?' },
  { file: 'phone.png', viewport: { width: 390, height: 844 }, tool: 'heart', colour: 'red', ask: 'What colour is the shape?' },
];

async function one(server, s) {
  const { ctx, page, errors } = await launch(s.viewport);
  try {
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await loadModel(page);
    await page.click(`button[data-tool="${s.tool}"]`);
    await page.click(`button[data-colour="${s.colour}"]`);
    await page.fill('#shape-size', '45');
    await page.dispatchEvent('#shape-size', 'input');
    const p = await toPage(page, 224, 224);
    await page.mouse.click(p.x, p.y);
    await askAndWatch(page, s.ask);
    await page.evaluate(() => document.activeElement.blur());
    const file = path.join(out, s.file);
    await page.screenshot({ path: file, type: 'png' });
    const kb = fs.statSync(file).size / 1024;
    const answer = await page.textContent('.msg.assistant:last-child .text');
    console.log(`${file}: ${kb.toFixed(0)} KB; "${s.ask}" -> "${answer}"`);
    if (kb >= 150) throw new Error(`${file} is ${kb.toFixed(0)} KB, over 150 KB`);
    if (errors.length) throw new Error(errors.join('\n'));
  } finally { await ctx.close(); }
}

fs.mkdirSync(out, { recursive: true });
const server = await startServer({ coi: true });
try {
  for (const s of SHOTS) await one(server, s);
} finally {
  await server.close();
  removeProfiles();
}
