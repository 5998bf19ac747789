// The web page with the bundled demo model (models/demo/), in Debian's Chromium:
// the answers must be *right*, not just present.
//
//   node --test tests/browser/demo.test.mjs
//
// 1. Threaded (cross-origin-isolated) page, the default model: download with
//    progress, then three drawings made with the page's own tools (a red circle,
//    a blue square, a green triangle), each asked about in a new chat; the
//    streamed answers name the right colour (and, asked again in a new chat,
//    the right shape). A PNG through the file
//    input and one pasted from the clipboard are answered correctly. Reload:
//    the cached model loads with no weight fetch and answers again. axe-core:
//    no serious or critical violations. No console errors.
// 2. The same drawing flow on a page that is not cross-origin isolated
//    (single-thread build).
// Screenshots: build/test-out/screenshots/demo-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from './web-server.mjs';
import { root, launch, removeProfiles, open, shot, chunkRequests, loadModel, toPage, axeScan, askAndWatch }
  from './web-helpers.mjs';

const demoDir = path.join(root, 'models/demo');
const sample = path.join(demoDir, 'sample.png');
/** The sample's width from its PNG header (it is not 448, so the canvas size shows it arrived). */
const pngWidth = fs.existsSync(sample) ? fs.readFileSync(sample).readUInt32BE(16) : 0;
let coi, plain;

before(async () => {
  assert.ok(fs.existsSync(path.join(demoDir, 'manifest.json')), 'models/demo/manifest.json is missing');
  coi = await startServer({ coi: true });
  plain = await startServer({ coi: false });
});

after(async () => {
  await Promise.all([coi, plain].filter(Boolean).map((s) => s.close()));
  removeProfiles();
});

const lastAnswer = (page) => page.textContent('.msg.assistant:last-child .text');

/** New chat, clear the canvas, place one shape with the page's tools (a click at the centre). */
async function drawShape(page, tool, colour, sizePct = 60) {
  await page.click('#new-chat');
  await page.click('#clear');
  await page.click(`button[data-tool="${tool}"]`);
  await page.click(`button[data-colour="${colour}"]`);
  await page.fill('#shape-size', String(sizePct));
  await page.dispatchEvent('#shape-size', 'input');
  const c = await page.evaluate(() => [document.getElementById('draw').width / 2, document.getElementById('draw').height / 2]);
  const p = await toPage(page, c[0], c[1]);
  await page.mouse.click(p.x, p.y);
  assert.equal(await page.isChecked('#attach'), true, 'a new chat sends the picture');
}

// the acceptance: the colour of a drawn shape, for three colour/shape pairs (and, since
// the model learned shapes, the shape too)
const CASES = [
  { tool: 'circle', colour: 'red', ask: 'What colour is the shape?', want: /\bred\b/i },
  { tool: 'square', colour: 'blue', ask: 'What colour is the shape?', want: /\bblue\b/i },
  { tool: 'triangle', colour: 'green', ask: 'What colour is the shape?', want: /\bgreen\b/i },
];

async function drawAndAsk(page, label) {
  const answers = [];
  for (const c of CASES) {
    await drawShape(page, c.tool, c.colour);
    const steps = await askAndWatch(page, c.ask);
    const a = await lastAnswer(page);
    answers.push(`${c.colour} ${c.tool} / ${c.ask} -> ${a}`);
    assert.match(a, c.want, `${label}: ${c.colour} ${c.tool}, "${c.ask}" answered "${a}"`);
    assert.ok(steps >= 1, 'the answer streamed into the page');
    await shot(page, `demo-${label}-${c.colour}-${c.tool}.png`);
    // and its shape, in a new chat (the model is trained on single-turn questions)
    await drawShape(page, c.tool, c.colour);
    await askAndWatch(page, 'What shape is this?');
    const s = await lastAnswer(page);
    answers.push(`${c.colour} ${c.tool} / What shape is this? -> ${s}`);
    assert.match(s, new RegExp(`\\b${c.tool}\\b`, 'i'), `${label}: ${c.colour} ${c.tool}, "What shape is this?" answered "${s}"`);
  }
  return answers;
}

test('demo model, isolated page: drawn shapes, a PNG file and a paste are answered correctly; reload uses the cache', { timeout: 240000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi);
    assert.equal(await page.inputValue('#model-select'), 'models/demo/manifest.json', 'the demo model is the default');
    assert.match(await page.textContent('#model-info'), /owlet-demo: \d+\.\d\d MB, f16.*not downloaded yet/);
    const r0 = coi.requests.length;
    await loadModel(page);
    const manifest = JSON.parse(fs.readFileSync(path.join(demoDir, 'manifest.json'), 'utf8'));
    assert.equal(chunkRequests(coi, r0, 'demo').length, manifest.chunks.length, 'every chunk downloaded once');
    assert.match(await page.textContent('#progress-text'), /^Ready: owlet-demo on \d+ threads? \(owlet-relaxed\)/);
    const answers = await drawAndAsk(page, 'threaded');
    console.log(answers.join('\n'));
    assert.match(await page.textContent('.msg.assistant .timings'), /image encode \d+ ms · prefill \d+ tokens/);
    await axeScan(page, 'demo answered');

    // a PNG through the file input, then the same file pasted
    const q = fs.readFileSync(path.join(demoDir, 'sample-question.txt'), 'utf8').trim();
    const want = new RegExp(fs.readFileSync(path.join(demoDir, 'sample-answer.txt'), 'utf8').trim().replace(/[.]$/, ''), 'i');
    await page.click('#new-chat');
    await page.setInputFiles('#file-input', sample);
    await page.waitForFunction((w) => document.getElementById('draw').width === w, pngWidth);
    await askAndWatch(page, q);
    assert.match(await lastAnswer(page), want, 'the sample PNG (file input)');
    await shot(page, 'demo-threaded-sample-png.png');
    await page.click('#new-chat');
    await page.click('#clear');
    await page.evaluate((b64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }, fs.readFileSync(sample).toString('base64'));
    await page.waitForFunction((w) => document.getElementById('draw').width === w, pngWidth);
    await askAndWatch(page, q);
    assert.match(await lastAnswer(page), want, 'the sample PNG (pasted)');

    // reload: the cached model loads by itself, nothing of it is fetched again, and it answers
    await shot(page, 'demo-threaded-sample-pasted.png');
    const r1 = coi.requests.length;
    await page.reload();
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    assert.deepEqual(chunkRequests(coi, r1, 'demo'), [], 'no weight fetch after a reload');
    await drawShape(page, 'circle', 'red');
    await askAndWatch(page, 'What colour is the shape?');
    assert.match(await lastAnswer(page), /\bred\b/i, 'after the reload');
    await shot(page, 'demo-threaded-after-reload.png');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('demo model, page not cross-origin isolated (single thread): drawn shapes are answered correctly', { timeout: 240000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, plain, '?sw=0');
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    await loadModel(page);
    assert.match(await page.textContent('#progress-text'), /^Ready: owlet-demo on 1 thread \(owlet-st\)/);
    const answers = await drawAndAsk(page, 'single');
    console.log(answers.join('\n'));
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});
