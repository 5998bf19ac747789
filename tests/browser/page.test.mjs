// The chat-first page's states in Debian's Chromium (playwright-core):
//
//   node --test tests/browser/page.test.mjs
//
// Layout at 1280×800 (the composer in view without scrolling) and 390×844 (the
// picture and its answer on screen together, on a page that is not cross-origin
// isolated: the single-thread build); notices that clear when their cause is gone;
// focus after loading and after attaching a picture; timings folded under
// "details"; a killed server: "retrying in N s (attempt k of n)", then
// "Resume download (x of y MB kept)" and the kept bytes counted under "Cached
// models"; a chunk that fails its hash: fetched twice, then a human message with
// the hashes behind a disclosure; confirmations before deleting a model and
// clearing a conversation; the demo model's "what it can answer" and the photo
// warning; the picture read while the question is typed (web/warm.mjs: a file as it
// arrives, a drawing on focus of the question box: encoded and primed, so Send runs
// only the question), a changed or unticked picture not sent stale; axe-core (no
// violations at all) in these states.
//
// The model is the development model of web.test.mjs (oracle-A, random weights:
// the answers are gibberish, the whole path runs); the demo-model states need no
// load. Screenshots: build/test-out/screenshots/page-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from './web-server.mjs';
import { root, shots, launch, removeProfiles, open, chunkRequests, loadModel, toPage, askAndWatch, ensureDevModel,
  slowChunks } from './web-helpers.mjs';

const DEV = 'models/dev/manifest.json';
const png = path.join(root, 'tests/browser/web/shapes-320x200.png');
let devModel, coi, plain;
/** The servers also serve axe-core (a same-origin script: the page's CSP allows no inline script). */
const AXE = ['/test-axe/', 'node_modules/axe-core'];


before(async () => {
  devModel = ensureDevModel();
  coi = await startServer({ coi: true, devModelDir: devModel, mounts: [AXE] });
  plain = await startServer({ coi: false, devModelDir: devModel, mounts: [AXE] });
});

after(async () => {
  await Promise.all([coi, plain].filter(Boolean).map((s) => s.close()));
  removeProfiles();
});

/** Put axe-core into the page (once per document). */
async function loadAxe(page) {
  if (!(await page.evaluate(() => !!globalThis.axe))) await page.addScriptTag({ url: new URL('/test-axe/axe.min.js', page.url()).href });
}

/** axe-core on the whole page: no violations of any impact. */
async function axeClean(page, label) {
  await loadAxe(page);
  const r = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  assert.deepEqual(r.violations.map((v) => `${label}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
}

/** Whether the whole of an element's box is inside the viewport. */
const inView = (page, sel) => page.evaluate((s) => {
  const r = document.querySelector(s).getBoundingClientRect();
  return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth && r.height > 0;
}, sel);

const noticeKeys = (page) => page.evaluate(() => [...document.querySelectorAll('#notices .notice')].map((n) => n.dataset.key));
const screenshot = (page, name) => page.screenshot({ path: path.join(shots, name) });

async function drawCircle(page) {
  await page.click('button[data-tool="circle"]');
  const p = await toPage(page, 224, 224);
  await page.mouse.click(p.x, p.y);
}

test('1280×800: the composer is in view without scrolling, before and after loading; the model folds into a chip', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, coi, `?model=${DEV}`);
    for (const s of ['#ask-form', '#question', '#send', '#load', '#draw']) assert.ok(await inView(page, s), `${s} in view at the start`);
    assert.equal(await page.evaluate(() => scrollY), 0);
    await axeClean(page, 'desktop start');
    await loadModel(page);
    assert.equal(await page.isVisible('#model-chip'), true, 'the chip');
    assert.match(await page.textContent('#model-chip'), /oracle-a-dev · ready · \d+ threads?/);
    assert.equal(await page.isHidden('#model'), true, 'the model panel is folded into the chip');
    await drawCircle(page);
    await askAndWatch(page, 'What shape is this?');
    for (const s of ['#ask-form', '#question', '.msg.assistant:last-child', '#draw']) assert.ok(await inView(page, s), `${s} in view after an answer`);
    assert.equal(await page.evaluate(() => document.documentElement.scrollHeight <= innerHeight), true, 'one screen high');
    await screenshot(page, 'page-desktop-answer.png');
    await axeClean(page, 'desktop answered');
    // the chip opens the details (and the settings); clicking again folds them
    await page.click('#model-chip');
    assert.equal(await page.isVisible('#model'), true);
    assert.equal(await page.getAttribute('#model-chip', 'aria-expanded'), 'true');
    assert.match(await page.textContent('#progress-text'), /^Ready: oracle-a-dev/);
    await axeClean(page, 'desktop model details');
    await page.click('#model-chip');
    assert.equal(await page.isHidden('#model'), true);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('390×844, not cross-origin isolated (single thread): the picture and its answer are on screen together', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 390, height: 844 });
  try {
    await open(page, plain, `?model=${DEV}&sw=0`);
    // short answers, as the demo model gives (the development model's random weights ramble on)
    await page.click('#settings summary');
    await page.fill('#set-max-tokens', '12');
    await page.dispatchEvent('#set-max-tokens', 'change');
    await loadModel(page);
    assert.match(await page.textContent('#progress-text'), /on 1 thread \(owlet-st\)/);
    await drawCircle(page);
    await askAndWatch(page, 'What colour is the shape?');
    assert.ok((await page.textContent('.msg.assistant:last-child .text')).length > 0, 'an answer');
    assert.ok(await inView(page, '#draw'), 'the picture in view');
    assert.ok(await inView(page, '.msg.assistant:last-child .text'), 'the answer in view');
    assert.ok(await inView(page, '#question'), 'the question box in view');
    const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `page ${sw} px wide in a ${cw} px viewport`);
    await screenshot(page, 'page-phone-answer.png');
    await axeClean(page, 'phone answered');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('notices clear when their cause is gone; focus goes to the question box after loading and after attaching; timings are folded', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, coi, `?model=${DEV}`);
    await page.fill('#question', 'What is it?');
    await page.click('#send');
    assert.match(await page.textContent('.notice[data-key="need-model"]'), /Load the model first/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'load', 'focus on the button that helps');
    await page.click('#send'); // an empty question
    assert.match(await page.textContent('.notice[data-key="question"]'), /Type a question first/);
    await page.type('#question', 'W');
    assert.equal(await page.locator('.notice[data-key="question"]').count(), 0, 'typing clears "Type a question first"');
    await axeClean(page, 'notices');
    await loadModel(page);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'question', 'focus after loading');
    assert.equal(await page.locator('.notice[data-key="need-model"]').count(), 0, 'loading clears "Load the model first"');
    assert.deepEqual(await noticeKeys(page), []);

    await page.setInputFiles('#file-input', png);
    await page.waitForFunction(() => document.getElementById('draw').width === 320);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'question', 'focus after attaching');
    // the file input is hidden behind its label: keyboard focus rings the label and nothing else
    await page.focus('#attach');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'file-input');
    assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('.focus-ring')].map((e) => e.htmlFor)), ['file-input'],
      'its label shows the ring');
    assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll(':focus-visible')].map((e) => e.id)), ['file-input'],
      'no other control is focused');
    assert.equal(await page.evaluate(() => document.getElementById('camera-open').matches(':focus-visible')), false);

    await page.fill('#question', '');
    await askAndWatch(page, 'Describe the image.');
    const t = page.locator('.msg.assistant:last-child .timings');
    assert.equal(await t.evaluate((d) => d.open), false, 'timings folded');
    assert.equal(await page.isVisible('.msg.assistant:last-child .timings p'), false, 'timings hidden by default');
    await page.click('.msg.assistant:last-child .timings summary');
    assert.equal(await page.isVisible('.msg.assistant:last-child .timings p'), true);
    assert.match(await page.textContent('.msg.assistant:last-child .timings p'), /prefill \d+ tokens in \d+ ms/);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});


test('server killed mid-download: "retrying in N s (attempt k of n)", then Resume with the kept MB, counted under Cached models', { timeout: 120000 }, async () => {
  const slow = await startServer({ coi: true, devModelDir: devModel, delay: slowChunks, mounts: [AXE] });
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, slow, `?model=${DEV}`);
    const manifest = JSON.parse(fs.readFileSync(path.join(devModel, 'manifest.json'), 'utf8'));
    await page.evaluate(() => {
      globalThis.__texts = new Set();
      const p = document.getElementById('progress-text');
      new MutationObserver(() => globalThis.__texts.add(p.textContent)).observe(p, { childList: true, characterData: true, subtree: true });
    });
    await loadAxe(page); // (before the server goes)
    await page.click('#load');
    await page.waitForFunction(() => /chunk [2-3] of 4/.test(document.getElementById('progress-text').textContent), null, { timeout: 30000 });
    await slow.close(); // the server dies: requests in flight are cut, new ones refused
    await page.waitForFunction(() => /retrying in \d+ s \(attempt [2-7] of 7\)/.test(document.getElementById('progress-text').textContent),
      null, { timeout: 20000 });
    await screenshot(page, 'page-retrying.png');
    await page.waitForSelector('body[data-model="none"]', { timeout: 60000 });
    const seen = await page.evaluate(() => [...globalThis.__texts]);
    const waits = seen.filter((s) => /retrying in \d+ s/.test(s));
    assert.ok(waits.some((s) => /attempt 7 of 7/.test(s)), `every attempt shown (${waits.length} texts)`);
    const kept = Number((await page.textContent('#model-info')).match(/partly downloaded \((\d) of 4 chunks kept\)/)[1]);
    assert.ok(kept >= 2 && kept < 4, `${kept} chunks kept`);
    const keptBytes = manifest.chunks.slice(0, kept).reduce((a, c) => a + c.size, 0); // chunks arrive in order
    const total = manifest.chunks.reduce((a, c) => a + c.size, 0);
    assert.equal(await page.textContent('#load'),
      `Resume download (${(keptBytes / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB kept)`);
    assert.match(await page.textContent('#storage-usage'), new RegExp(`^Cached models: 1 \\(${(keptBytes / 1e6).toFixed(2)} MB\\), 1 of them partly downloaded\\.`));
    // one error notice, in words, the technical text behind a disclosure
    assert.deepEqual(await noticeKeys(page), ['load']);
    const words = await page.textContent('.notice[data-key="load"] .text');
    assert.match(words, /^The download stopped: .* The parts already downloaded are kept: Resume continues from there\.$/);
    assert.doesNotMatch(words, /https?:|\.bin/);
    assert.equal(await page.evaluate(() => document.querySelector('.notice[data-key="load"] details').open), false);
    assert.match(await page.textContent('.notice[data-key="load"] details code'), /oa\.000\d\.bin/);
    await screenshot(page, 'page-resume.png');
    await axeClean(page, 'download failed');
    assert.deepEqual(errors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|Failed to load resource/.test(e)), []);
  } finally { await ctx.close(); }
});

test('a chunk that fails its hash is fetched once more, then the download stops with a clear message (hashes in Details)', { timeout: 90000 }, async () => {
  const bad = path.join(root, 'build/test-out/page-bad-model');
  fs.rmSync(bad, { recursive: true, force: true });
  fs.cpSync(devModel, bad, { recursive: true });
  const f = path.join(bad, 'oa.0001.bin');
  const b = fs.readFileSync(f);
  b[100] ^= 0xff;
  fs.writeFileSync(f, b);
  const srv = await startServer({ coi: true, devModelDir: devModel, mounts: [['/models/bad/', bad], AXE] });
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, srv, '?model=models/bad/manifest.json');
    const r0 = srv.requests.length;
    await page.click('#load');
    await page.waitForSelector('body[data-model="none"]', { timeout: 60000 });
    assert.equal(chunkRequests(srv, r0, 'bad').filter((r) => r.path.endsWith('oa.0001.bin')).length, 2, 'fetched twice, no more');
    const words = await page.textContent('.notice[data-key="load"] .text');
    assert.match(words, /^The download stopped: part 2 of the model arrived damaged twice/);
    assert.doesNotMatch(words, /[0-9a-f]{64}/, 'no hashes in the sentence');
    assert.match(await page.textContent('.notice[data-key="load"] details code'),
      /chunk 1 \(.*oa\.0001\.bin\): sha256 [0-9a-f]{64}, want [0-9a-f]{64} \(the check failed twice\)/);
    assert.equal(await page.locator('#notices .notice.error').count(), 1, 'said once');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); await srv.close(); }
});

test('deleting a cached model and clearing a conversation ask first; Cancel keeps them', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, coi, `?model=${DEV}`);
    await loadModel(page);
    await drawCircle(page);
    await askAndWatch(page, 'What is it?');
    await page.click('#new-chat');
    assert.equal(await page.evaluate(() => document.getElementById('confirm').open), true, 'New chat asks');
    assert.match(await page.textContent('#confirm-text'), /Clear this conversation/);
    await axeClean(page, 'confirm dialog');
    await page.click('#confirm-cancel');
    assert.equal(await page.locator('.msg').count(), 2, 'Cancel keeps the conversation');
    await page.click('#new-chat');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelectorAll('.msg').length === 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'question');

    await page.click('#model-chip');
    await page.click('#delete-cache');
    assert.match(await page.textContent('#confirm-text'), /^Delete oracle-a-dev from this browser\?/);
    await page.click('#confirm-cancel');
    assert.match(await page.textContent('#model-info'), /cached in this browser/, 'Cancel keeps the model');
    await page.click('#delete-cache');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => /not downloaded yet/.test(document.getElementById('model-info').textContent));
    await page.waitForFunction(() => /^Cached models: 0 /.test(document.getElementById('storage-usage').textContent));
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('the demo model says what it can answer, and a photo (file, paste, camera) gets a warning that goes with its cause', { timeout: 90000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, coi);
    assert.equal(await page.inputValue('#model-select'), 'models/demo/manifest.json');
    assert.equal(await page.isVisible('#demo-help'), true);
    const help = await page.textContent('#demo-help');
    assert.match(help, /knows only coloured shapes on a light background/);
    for (const kind of ['the shape', 'the colour', 'how many', 'where', 'a description']) assert.ok(help.includes(`${kind}: “`), kind);
    assert.deepEqual(await page.locator('#suggestions button').allTextContents(),
      ['What shape is this?', 'What colour is the shape?', 'How many shapes are there?', 'Where is the shape?', 'Describe the image.']);
    await drawCircle(page);
    assert.deepEqual(await noticeKeys(page), [], 'a drawing: no warning');

    await page.setInputFiles('#file-input', png);
    await page.waitForFunction(() => document.querySelector('.notice[data-key="photo"]'));
    assert.match(await page.textContent('.notice[data-key="photo"]'), /the file shapes-320x200\.png was not drawn on the pad\. The demo model knows only coloured shapes on a light background: if this is a photo/);
    assert.match(await page.textContent('#attach-kind'), /photo/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'question');
    await screenshot(page, 'page-photo-warning.png');
    await axeClean(page, 'photo warning');
    await page.click('#clear');
    assert.deepEqual(await noticeKeys(page), [], 'clearing the pad clears the warning');
    assert.match(await page.textContent('#attach-kind'), /drawing/);

    await page.evaluate((b64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'p.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }, fs.readFileSync(png).toString('base64'));
    await page.waitForFunction(() => /the clipboard was not drawn on the pad/.test((document.querySelector('.notice[data-key="photo"]') || {}).textContent));
    await page.selectOption('#model-select', 'custom');
    assert.deepEqual(await noticeKeys(page), [], 'another model: no warning');
    assert.equal(await page.isHidden('#demo-help'), true);
    await page.selectOption('#model-select', 'models/demo/manifest.json');
    await page.waitForFunction(() => document.querySelector('.notice[data-key="photo"]'));

    await page.click('#clear');
    await page.click('#camera-open');
    await page.waitForFunction(() => document.getElementById('camera-video').videoWidth > 0, null, { timeout: 15000 });
    await page.click('#camera-snap');
    assert.match(await page.textContent('.notice[data-key="photo"]'), /the camera was not drawn on the pad/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'question');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('the picture is read while the question is typed (a file as it arrives, a drawing when the question box gets focus): Send runs only the question; a changed or unticked picture is not sent stale', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 1280, height: 800 });
  try {
    await open(page, coi, `?model=${DEV}`);
    await loadModel(page);
    const st = () => page.evaluate(async () => { const s = await globalThis.owletApp.owl.stats(); return { misses: s.imageCache.misses, hits: s.imageCache.hits, prompt: s.promptTokens, images: s.images }; });
    const readDone = () => page.waitForFunction(() => document.getElementById('warm-state').textContent.includes('picture read'));
    const lastTurnImages = () => page.evaluate(() => { const t = globalThis.owletApp.chat.turns; return t[t.length - 2].images.length; });
    const timings = async () => { await page.click('.msg.assistant:last-child .timings summary'); return page.textContent('.msg.assistant:last-child .timings p'); };
    const imageTokens = await page.evaluate(() => globalThis.owletApp.owl.info.image_tokens);
    assert.deepEqual(await st(), { misses: 0, hits: 0, prompt: 0, images: 0 }, 'the blank pad is not read');
    // a file: encoded and primed as it arrives
    await page.setInputFiles('#file-input', png);
    await readDone();
    let s = await st();
    assert.equal(s.misses, 1);
    assert.ok(s.prompt > imageTokens, `the picture and the prompt before it ran ahead: ${s.prompt} positions`);
    const primed = s.prompt;
    await askAndWatch(page, 'Describe the image.');
    s = await st();
    assert.equal(s.images, 1, 'Send did not add the picture again');
    assert.ok(s.prompt - primed < 20, `Send ran only the question's tokens (${s.prompt - primed})`);
    assert.equal(await lastTurnImages(), 1);
    assert.equal(await page.textContent('#warm-state'), '', 'the status goes with the picture');
    assert.match(await timings(), /read ahead while the question was typed: the picture and \d+ prompt positions/);
    // a drawing: nothing runs while drawing; the question box's focus reads it; typing does not read it again
    await drawCircle(page);
    await page.waitForTimeout(300);
    assert.equal((await st()).misses, 1, 'no read while drawing');
    await page.focus('#question');
    await readDone();
    assert.equal((await st()).misses, 2);
    await page.type('#question', 'W');
    await page.waitForTimeout(200);
    assert.equal((await st()).misses, 2);
    await page.fill('#question', '');
    await askAndWatch(page, 'What colour is it?');
    assert.equal((await st()).images, 2);
    assert.match(await timings(), /read ahead/);
    // changed while it is being read: that read stops inside the engine (threaded build: a
    // counter in shared memory), the status does not claim it, and the new picture is read
    await page.evaluate(async () => {
      const warm = await import(new URL('warm.mjs', document.querySelector('script[type="module"]').src).href);
      const eng = globalThis.owletApp.owl.engine, s0 = eng.s0, orig = s0.call;
      globalThis.stoppedRead = new Promise((resolve) => {
        s0.call = function (op, a, t) {
          if (op !== 'image') return orig.call(this, op, a, t);
          // the picture changes right after its read was sent, while the engine is still busy
          // (a large picture to preprocess first: the dev model's encode alone is too quick to catch)
          s0.call = orig;
          const big = new Uint8Array(2048 * 2048 * 4);
          orig.call(this, 'warm_image', { rgba: big, width: 2048, height: 2048 }, [big.buffer]).catch(() => {});
          const p = orig.call(this, op, a, t);
          warm.pictureChanged(document.getElementById('draw'));
          p.then(() => resolve('ok'), (e) => resolve(e.code));
          return p;
        };
      });
      if (!eng.words.every((w) => w instanceof Int32Array)) throw new Error('not a threaded engine');
    });
    await page.focus('#draw-overlay');
    await drawCircle(page);
    await page.focus('#question');
    assert.equal(await page.evaluate(() => globalThis.stoppedRead), 'cancelled', 'the engine stopped the stale read');
    assert.doesNotMatch(await page.textContent('#warm-state'), /picture read/);
    await page.focus('#draw-overlay');
    await page.focus('#question');
    await readDone();
    await page.fill('#question', '');
    await askAndWatch(page, 'And this one?');
    assert.match(await timings(), /read ahead/);
    assert.equal(await lastTurnImages(), 1);
    // read, then changed before Send: the new picture goes (encoded at Send), not the stale one
    await drawCircle(page);
    await page.focus('#question');
    await readDone();
    s = await st();
    await page.click('button[data-tool="square"]');
    const p2 = await toPage(page, 100, 100);
    await page.mouse.click(p2.x, p2.y);
    // Send without focusing the question box (focus would read the new picture ahead)
    await page.evaluate(() => { document.getElementById('question').value = 'And now?'; document.getElementById('send').click(); });
    await page.waitForFunction(() => !globalThis.owletApp.asking && document.querySelector('.msg.assistant:last-child .timings'), null, { timeout: 60000 });
    const s2 = await st();
    assert.equal(s2.misses, s.misses + 1, 'the changed picture was encoded at Send');
    assert.equal(await lastTurnImages(), 1, 'one picture with the question: the changed one');
    assert.doesNotMatch(await timings(), /read ahead/);
    // read, then "Send the picture" unticked: the question goes without it
    await drawCircle(page);
    await page.focus('#question');
    await readDone();
    await page.uncheck('#attach');
    await askAndWatch(page, 'Anything?');
    assert.equal(await lastTurnImages(), 0, 'no picture with the question');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});
