// The static site (web/) in Debian's Chromium, driven by playwright-core:
//
//   node --test tests/browser/web.test.mjs
//
// Serves the repository laid out as the deployed site (tests/browser/web-server.mjs)
// with and without COOP/COEP, and checks: the page loads with no console errors
// or CSP violations; drawing with the page's own tools; a PNG through the file
// input, paste and drop; a camera snapshot (Chromium's fake camera); loading a
// model with progress; a streamed answer with timings; stop mid-answer; a second
// turn; reload -> the cached model loads with no chunk fetched; cancel + resume
// of a download; delete; the single-thread page (not isolated); the
// cross-origin-isolation service worker; settings kept; axe-core (no serious or
// critical violations); a 375 px wide screen. Screenshots: build/test-out/screenshots/.
//
// The model is oracle-A (random weights: the answers are gibberish, the whole
// path runs), made with the converter into build/web-dev/oracle_a/ when missing
// (web-helpers.mjs, ensureDevModel).
// The engine builds come from OWLET_WASM (default build/wasm/, i.e. `make wasm`).
// tests/browser/web/shapes-320x200.png: PIL, a green triangle and a blue circle on white.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from './web-server.mjs';
import { makeFixtures, out as fixtureDir } from './fixtures.mjs';
import { root, shots, launch, removeProfiles, open, shot, chunkRequests, loadModel, pixel, near, toPage, axeScan,
  askAndWatch, ensureDevModel, slowChunks } from './web-helpers.mjs';

const devModel = path.resolve(root, process.env.OWLET_DEV_MODEL || 'build/web-dev/oracle_a');
const png = path.join(root, 'tests/browser/web/shapes-320x200.png');
const DEV = 'models/dev/manifest.json';

let coi, plain, slow;

before(async () => {
  fs.mkdirSync(shots, { recursive: true });
  ensureDevModel();
  makeFixtures(); // build/test-out/api/two: oracle-A in two stages
  coi = await startServer({ coi: true, devModelDir: devModel, mounts: [['/models/two/', path.join(fixtureDir, 'two')]] });
  plain = await startServer({ coi: false, devModelDir: devModel });
  slow = await startServer({ coi: true, devModelDir: devModel, delay: slowChunks });
});

after(async () => {
  await Promise.all([coi, plain, slow].filter(Boolean).map((s) => s.close()));
  removeProfiles();
});

test('the page loads with no console errors and says what the browser can do', { timeout: 60000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi, `?model=${DEV}`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.match(await page.textContent('#model-info'), /oracle-a-dev: \d+\.\d\d MB, f32.*not downloaded yet/);
    assert.match(await page.textContent('#load'), /Download and load \(\d+\.\d\d MB\)/);
    assert.match(await page.textContent('#env-info'), /SIMD: yes · cross-origin isolated: yes/);
    assert.equal(await page.locator('.notice.error').count(), 0);
    await shot(page, '01-start.png');
    await axeScan(page, 'start');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('drawing: the pen, a dragged circle, a keyboard triangle, undo and clear change the canvas pixels', { timeout: 60000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi, `?model=${DEV}`);
    // pen: red stroke from (60,60) to (200,60)
    let p = await toPage(page, 60, 60);
    await page.mouse.move(p.x, p.y);
    await page.mouse.down();
    for (const x of [100, 150, 200]) { p = await toPage(page, x, 60); await page.mouse.move(p.x, p.y); }
    await page.mouse.up();
    assert.ok(near(await pixel(page, 130, 60), [220, 30, 35]), 'red pen stroke');
    // blue circle, dragged from its centre (300,300) to radius 60
    await page.click('button[data-tool="circle"]');
    await page.click('button[data-colour="blue"]');
    assert.equal(await page.textContent('#colour-name'), 'blue');
    p = await toPage(page, 300, 300);
    await page.mouse.move(p.x, p.y);
    await page.mouse.down();
    p = await toPage(page, 360, 300);
    await page.mouse.move(p.x, p.y, { steps: 4 });
    await page.mouse.up();
    assert.ok(near(await pixel(page, 300, 300), [35, 70, 215]), 'circle centre blue');
    assert.ok(near(await pixel(page, 300, 345), [35, 70, 215]), 'circle inside radius blue');
    assert.ok(near(await pixel(page, 300, 375), [255, 255, 255]), 'outside the circle white');
    // keyboard only: Tab to the tools, pick triangle + green, move the cursor, Enter
    await page.focus('button[data-tool="triangle"]');
    await page.keyboard.press('Enter');
    await page.focus('button[data-colour="green"]');
    await page.keyboard.press('Space');
    await page.focus('#draw-overlay');
    for (let i = 0; i < 12; i++) await page.keyboard.press('ArrowLeft'); // 224 - 12*8 = 128 css px
    await page.keyboard.press('Shift+ArrowDown'); // +32
    await page.keyboard.press('Enter');
    await shot(page, '02-drawing.png');
    const green = await page.evaluate(() => {
      const g = document.getElementById('draw').getContext('2d').getImageData(0, 0, 448, 448).data;
      let n = 0;
      for (let i = 0; i < g.length; i += 4) if (Math.abs(g[i] - 35) < 30 && Math.abs(g[i + 1] - 165) < 30 && Math.abs(g[i + 2] - 55) < 30) n++;
      return n;
    });
    assert.ok(green > 500, `a green triangle placed from the keyboard (${green} green pixels)`);
    await page.click('#undo');
    assert.ok(near(await pixel(page, 300, 300), [35, 70, 215]), 'undo removed the triangle only');
    await page.click('#clear');
    assert.ok(near(await pixel(page, 300, 300), [255, 255, 255]), 'clear');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('a PNG comes in through the file input, paste and drop, and a camera snapshot', { timeout: 60000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi, `?model=${DEV}`);
    const size = () => page.evaluate(() => [document.getElementById('draw').width, document.getElementById('draw').height]);
    await page.setInputFiles('#file-input', png);
    await page.waitForFunction(() => document.getElementById('draw').width === 320);
    assert.deepEqual(await size(), [320, 200]);
    assert.ok(near(await pixel(page, 80, 120), [35, 165, 55], 8), 'triangle green');
    assert.ok(near(await pixel(page, 250, 100), [35, 70, 215], 8), 'circle blue');
    await page.check('#show-model-view');
    await shot(page, '03-file-and-model-view.png');
    assert.match(await page.textContent('#model-view-caption'), /448×448 pixels, padded/);

    const b64 = fs.readFileSync(png).toString('base64');
    const inject = (kind) => page.evaluate(([data, k]) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'x.png', { type: 'image/png' }));
      if (k === 'paste') document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
      else document.getElementById('drop-zone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, [b64, kind]);
    await page.click('#clear');
    await inject('paste');
    await page.waitForFunction(() => document.getElementById('draw').width === 320);
    assert.ok(near(await pixel(page, 250, 100), [35, 70, 215], 8), 'pasted');
    await page.click('#clear');
    await inject('drop');
    await page.waitForFunction(() => document.getElementById('draw').width === 320);
    assert.ok(near(await pixel(page, 80, 120), [35, 165, 55], 8), 'dropped');

    await page.click('#camera-open');
    await page.waitForFunction(() => document.getElementById('camera-video').videoWidth > 0, null, { timeout: 15000 });
    const vw = await page.evaluate(() => document.getElementById('camera-video').videoWidth);
    await page.click('#camera-snap');
    assert.equal((await size())[0], Math.min(vw, 1024));
    assert.equal(await page.isHidden('#camera-box'), true);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('threaded page: load with progress, streamed answer, stop, second turn, reload from cache, axe', { timeout: 180000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi, `?model=${DEV}`);
    const r0 = coi.requests.length;
    await loadModel(page);
    assert.equal(chunkRequests(coi, r0).length, 4, 'four chunks downloaded');
    assert.match(await page.textContent('#progress-text'), /^Ready: oracle-a-dev on \d+ threads? \(owlet-relaxed\)/);
    assert.ok(await page.evaluate(() => globalThis.owletApp.owl.threads) >= 2, 'threads on an isolated page');
    assert.match(await page.textContent('#model-info'), /cached in this browser/);
    assert.match(await page.textContent('#storage-usage'), /Cached models: 1 \(\d+\.\d\d MB\)/);

    await page.click('button[data-tool="square"]');
    const p = await toPage(page, 224, 224);
    await page.mouse.click(p.x, p.y);
    const steps = await askAndWatch(page, 'What shape is this? <b>bold</b>');
    assert.ok(steps > 3, `the answer streamed in pieces (${steps} updates)`);
    assert.equal(await page.locator('#messages b').count(), 0, 'user text is text, not HTML');
    assert.equal(await page.textContent('.msg.user .text'), 'What shape is this? <b>bold</b>');
    assert.ok((await page.textContent('.msg.assistant .text')).length > 0);
    // the drawing was read while the question was typed (web/warm.mjs): Send runs only the question
    assert.match(await page.textContent('.msg.assistant .timings'), /read ahead while the question was typed: the picture and \d+ prompt positions in [\d.]+ s · prefill \d+ tokens in \d+ ms .* · decode \d+ tokens at [\d.]+ tok\/s/);
    assert.equal(await page.locator('.msg.user img.thumb').count(), 1);
    assert.equal(await page.isChecked('#attach'), false, 'the picture is in the conversation now');
    await shot(page, '04-answer-threaded.png');
    await axeScan(page, 'answered');

    // stop mid-answer: a long answer, Stop as soon as text shows (the settings are in the model chip's panel)
    await page.click('#model-chip');
    await page.click('#settings summary');
    await page.fill('#set-max-tokens', '2048');
    await page.dispatchEvent('#set-max-tokens', 'change');
    await page.fill('#question', 'Tell me a long story.');
    await page.click('#send');
    await page.waitForFunction(() => (document.querySelector('.msg.assistant:last-child .text') || {}).textContent, null, { timeout: 30000 });
    await page.click('#stop');
    await page.waitForFunction(() => !globalThis.owletApp.asking, null, { timeout: 30000 });
    assert.equal(await page.locator('.msg.assistant:last-child .note').textContent(), 'stopped');
    const stats = await page.evaluate(() => globalThis.owletApp.owl.stats());
    assert.ok(stats.lastTokens < 2048, `stopped after ${stats.lastTokens} tokens`);

    // the chat stays usable: a third turn
    await page.fill('#set-max-tokens', '16');
    await page.dispatchEvent('#set-max-tokens', 'change');
    await askAndWatch(page, 'And the colour?');
    assert.equal(await page.locator('.msg.assistant').count(), 3);
    assert.equal(await page.locator('.msg.user img.thumb').count(), 1, 'later turns reuse the picture');

    // reload: the cached model loads by itself, no chunk is fetched
    const r1 = coi.requests.length;
    await page.reload();
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    assert.deepEqual(chunkRequests(coi, r1), []);
    assert.ok(coi.requests.slice(r1).some((r) => r.path === '/models/dev/manifest.json'));
    assert.equal(await page.inputValue('#set-max-tokens'), '16', 'settings kept');
    await askAndWatch(page, 'What is it?');
    await page.click('#new-chat');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => document.querySelectorAll('.msg').length === 0);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('a model in two stages: the picture is read once the first stage is in, while the second still loads', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi, '?model=models/two/manifest.json');
    await loadModel(page); // downloads into IndexedDB
    const m = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'two', 'manifest.json'), 'utf8'));
    assert.equal(m.stages.length, 2);
    // hold every read of the last chunk (stage 1's only) until the test lets it go
    await page.evaluate(async (last) => {
      const store = globalThis.owletApp.backend; // the page's chunk store (OPFS here)
      const orig = store.get.bind(store);
      const held = new Promise((r) => { globalThis.__release = r; });
      store.get = async (k) => { if (k.endsWith(`/${last}`)) await held; return orig(k); };
    }, m.chunks.length - 1);
    await page.click('button[data-tool="square"]');
    const p = await toPage(page, 224, 224);
    await page.mouse.click(p.x, p.y);
    await page.click('#model-chip');
    await page.click('#load'); // "Reload model": from the cache, with stage 1 held
    await page.waitForSelector('body[data-first-stage="true"]', { timeout: 30000 });
    // the picture is encoded on stage 0 while stage 1 waits for its bytes
    await page.waitForFunction(() => globalThis.owletApp.owl.engine.clock.imageEncodeMs > 0, null, { timeout: 30000 });
    assert.equal(await page.getAttribute('body', 'data-model'), 'loading');
    assert.equal(await page.isDisabled('#send'), true, 'Send waits for the whole model');
    assert.match(await page.textContent('#progress-text'), /^Loading/);
    await page.evaluate(() => globalThis.__release());
    await page.waitForSelector('body[data-model="ready"]', { timeout: 30000 });
    await page.waitForFunction(() => document.getElementById('warm-state').textContent.includes('picture read'), null, { timeout: 30000 });
    await askAndWatch(page, 'What shape is this?');
    assert.ok((await page.textContent('.msg.assistant .text')).length > 0);
    assert.match(await page.textContent('.msg.assistant .timings'), /read ahead while the question was typed: the picture and \d+ prompt positions/);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('not cross-origin isolated: single thread with a note, answer streams', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, plain, `?model=${DEV}&sw=0`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.match(await page.textContent('#notices'), /not cross-origin isolated, so the model runs on a single thread/);
    await loadModel(page);
    assert.match(await page.textContent('#progress-text'), /on 1 thread \(owlet-st\)/);
    await page.setInputFiles('#file-input', png);
    await page.waitForFunction(() => document.getElementById('draw').width === 320);
    const steps = await askAndWatch(page, 'Describe the image.');
    assert.ok(steps > 3);
    assert.match(await page.textContent('.msg.assistant .timings'), /1 thread/);
    await shot(page, '05-answer-single-thread.png');
    await axeScan(page, 'single-thread');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('the service worker makes a header-less host cross-origin isolated (one reload)', { timeout: 60000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await page.goto(`${plain.url}?model=${DEV}`);
    await page.waitForFunction(() => globalThis.crossOriginIsolated === true, null, { timeout: 30000 });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    assert.match(await page.textContent('#env-info'), /cross-origin isolated: yes/);
    assert.equal(await page.locator('.notice[data-key="threads"]').count(), 0);
    assert.ok(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL.endsWith('/coi-sw.js')));
    // Turning the helper off unregisters it: after a reload the page is single-threaded and says why.
    await page.click('#settings summary');
    await page.selectOption('#set-sw', 'off');
    await page.waitForFunction(async () => (await navigator.serviceWorker.getRegistrations()).length === 0);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.match(await page.textContent('.notice[data-key="threads"]'), /turned off in the settings/);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('the site folder of docs/DEPLOY.md on a plain static host (no headers): isolated by the service worker, threaded answer', { timeout: 120000 }, async () => {
  // The copy commands of docs/DEPLOY.md, section 1 (with the dev model as models/dev/).
  const site = path.join(root, 'build/test-out/web-site');
  const wasm = path.resolve(root, process.env.OWLET_WASM || 'build/wasm');
  fs.rmSync(site, { recursive: true, force: true });
  fs.mkdirSync(path.join(site, 'owlet/wasm'), { recursive: true });
  const cp = (from, to) => fs.copyFileSync(from, to);
  for (const f of fs.readdirSync(path.join(root, 'web'))) cp(path.join(root, 'web', f), path.join(site, f));
  for (const f of fs.readdirSync(path.join(root, 'wasm_glue')).filter((x) => x.endsWith('.mjs')))
    cp(path.join(root, 'wasm_glue', f), path.join(site, 'owlet', f));
  for (const f of ['owlet.js', 'owlet.wasm', 'owlet.worker.js', 'owlet-relaxed.js', 'owlet-relaxed.wasm',
    'owlet-relaxed.worker.js', 'owlet-st.js', 'owlet-st.wasm']) cp(path.join(wasm, f), path.join(site, 'owlet/wasm', f));
  fs.cpSync(devModel, path.join(site, 'models/dev'), { recursive: true });
  const host = await startServer({ coi: false, mounts: [['/', site]] });
  const { ctx, page, errors } = await launch();
  try {
    await page.goto(`${host.url}?model=${DEV}`);
    await page.waitForFunction(() => globalThis.crossOriginIsolated === true, null, { timeout: 30000 });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await loadModel(page);
    assert.match(await page.textContent('#progress-text'), /on \d+ threads \(owlet-relaxed\)/);
    await askAndWatch(page, 'What shape is this?');
    assert.ok((await page.textContent('.msg.assistant .text')).length > 0);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); await host.close(); }
});

test('download: cancel keeps verified chunks, reload resumes without refetching them, delete empties the cache', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, slow, `?model=${DEV}`);
    const r0 = slow.requests.length;
    await page.click('#load');
    await page.waitForFunction(() => /Downloading — .* MB\/s · .* left · chunk [1-3] of 4/.test(document.getElementById('progress-text').textContent),
      null, { timeout: 30000 });
    await shot(page, '06-downloading.png');
    await page.click('#cancel-load');
    await page.waitForSelector('body[data-model="none"]', { timeout: 30000 });
    assert.match(await page.textContent('#progress-text'), /Download cancelled/);
    const kept = Number((await page.textContent('#model-info')).match(/partly downloaded \((\d) of 4 chunks kept\)/)[1]);
    assert.ok(kept >= 1 && kept < 4, `kept ${kept} chunks`);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.match(await page.textContent('#load'), /^Resume download \(\d\.\d of 3\.5 MB kept\)$/);
    const r1 = slow.requests.length;
    await loadModel(page);
    assert.equal(chunkRequests(slow, r1).filter((r) => r.status === 200).length, 4 - kept, 'only the missing chunks');
    assert.ok(chunkRequests(slow, r0).length >= 4);
    await page.click('#model-chip');
    await page.click('#delete-cache');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => /not downloaded yet/.test(document.getElementById('model-info').textContent));
    await page.waitForFunction(() => /Cached models: 0/.test(document.getElementById('storage-usage').textContent));
    assert.deepEqual(errors.filter((e) => !/net::ERR_ABORTED|aborted/i.test(e)), []);
  } finally { await ctx.close(); }
});

test('the chunks go to the Origin Private File System and the engine reads them from there; a model kept in IndexedDB by an earlier version loads with no download; delete removes both', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch();
  // the files of the dev model in OPFS (owlet/m-<id>/), by name
  const opfsFiles = () => page.evaluate(async () => {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('owlet', { create: true });
    const out = [];
    for await (const [dn, d] of root.entries()) {
      if (d.kind !== 'directory') continue;
      for await (const [fn, f] of d.entries()) out.push(`${dn}/${fn}:${(await f.getFile()).size}`);
    }
    return out.sort();
  });
  const reads = () => page.evaluate(async () => (await globalThis.owletApp.owl.stats()).loadReads);
  try {
    await open(page, coi, `?model=${DEV}`);
    await loadModel(page);
    const m = JSON.parse(fs.readFileSync(path.join(devModel, 'manifest.json'), 'utf8'));
    const files = await opfsFiles();
    assert.equal(files.length, 4);
    assert.deepEqual(files.map((f) => f.split('/')[1]).sort(), m.chunks.map((c, i) => `${i}-${c.sha256}:${c.size}`).sort());
    // the engine worker read every chunk straight from its file (SyncAccessHandle)
    assert.deepEqual(await reads(), { file: 4, blob: 0, bytes: 0 });
    const r1 = coi.requests.length;
    await page.reload();
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    assert.deepEqual(chunkRequests(coi, r1), [], 'the reload reads OPFS: no chunk fetched');
    assert.deepEqual(await reads(), { file: 4, blob: 0, bytes: 0 });

    // as an earlier version left it: the chunks in IndexedDB, nothing in OPFS
    await page.evaluate(async (url) => {
      const app = globalThis.owletApp;
      await app.owl.unload();
      app.owl = null;
      const s = await import('./owlet/store.mjs');
      const man = await s.loadManifest(new URL(url, location.href).href);
      await s.cache.delete(man.id); // the default store: OPFS files and IndexedDB records
      await s.ensureChunks(man, { backend: new s.IdbBackend() });
    }, DEV);
    assert.deepEqual(await opfsFiles(), []);
    const r2 = coi.requests.length;
    await page.reload();
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    assert.deepEqual(chunkRequests(coi, r2), [], 'the IndexedDB copy is used: no chunk fetched');
    assert.deepEqual(await reads(), { file: 0, blob: 4, bytes: 0 });
    await askAndWatch(page, 'What is it?');

    await page.click('#model-chip');
    await page.click('#delete-cache');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => /not downloaded yet/.test(document.getElementById('model-info').textContent));
    assert.deepEqual(await opfsFiles(), []);
    assert.equal(await page.evaluate(async () => {
      const s = await import('./owlet/store.mjs');
      return (await new s.IdbBackend().keys('')).length;
    }), 0, 'no IndexedDB record left');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('a chunk file held by another context (an exclusive OPFS lock) is streamed instead; two tabs load the cached model at once', { timeout: 120000 }, async () => {
  const { ctx, page, errors } = await launch();
  try {
    await open(page, coi, `?model=${DEV}`);
    await loadModel(page);
    // a worker of this origin takes chunk 0's file with an exclusive (read-write) sync handle and keeps it
    await page.evaluate(async () => {
      const src = `onmessage = async () => {
        const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('owlet');
        for await (const [, d] of root.entries()) for await (const [n, f] of d.entries())
          if (n.startsWith('0-')) { self.h = await f.createSyncAccessHandle(); postMessage('held'); return; }
        postMessage('none');
      };`;
      const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
      globalThis.__holder = w;
      const r = await new Promise((res) => { w.onmessage = (e) => res(e.data); w.postMessage(0); });
      if (r !== 'held') throw new Error(`holder: ${r}`);
    });
    await page.click('#model-chip');
    await page.click('#load');
    await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    assert.deepEqual(await page.evaluate(async () => (await globalThis.owletApp.owl.stats()).loadReads),
      { file: 3, blob: 1, bytes: 0 }, 'the locked chunk streamed from its File, the others read directly');
    await askAndWatch(page, 'What is it?');
    await page.evaluate(() => globalThis.__holder.terminate());

    // two tabs of the page loading the cached model at the same moment
    const page2 = await ctx.newPage();
    await page2.goto(coi.url + `?model=${DEV}`);
    await page2.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await page2.waitForSelector('body[data-model="ready"]', { timeout: 60000 }); // it loads the cached model by itself
    const reloadModel = (p) => p.evaluate(() => document.getElementById('load').click());
    await Promise.all([reloadModel(page), reloadModel(page2)]);
    for (const p of [page, page2]) await p.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
    for (const p of [page, page2]) {
      const r = await p.evaluate(async () => (await globalThis.owletApp.owl.stats()).loadReads);
      assert.equal(r.file + r.blob, 4, JSON.stringify(r));
    }
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('narrow screen (375 px): no sideways scrolling, settings remembered, an answer, axe clean', { timeout: 90000 }, async () => {
  const { ctx, page, errors } = await launch({ width: 375, height: 800 });
  try {
    await open(page, coi, `?model=${DEV}`);
    await page.click('#settings summary');
    await page.fill('#set-temperature', '0.7');
    await page.dispatchEvent('#set-temperature', 'change');
    await page.selectOption('#set-aspect', 'stretch');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#settings summary');
    assert.equal(await page.inputValue('#set-temperature'), '0.7');
    assert.equal(await page.inputValue('#set-aspect'), 'stretch');
    const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `page ${sw} px wide in a ${cw} px viewport`);
    await shot(page, '07-narrow-settings.png');
    await axeScan(page, 'narrow');
    await page.click('#settings summary');
    await loadModel(page);
    await page.click('button[data-tool="star"]');
    await page.click('button[data-colour="purple"]');
    const p = await toPage(page, 224, 224);
    await page.mouse.click(p.x, p.y);
    await askAndWatch(page, 'What shape is this?');
    const [sw2, cw2] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw2 <= cw2, `page ${sw2} px wide in a ${cw2} px viewport after an answer`);
    await page.locator('#chat').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(shots, '09-narrow-answer.png') });
    await axeScan(page, 'narrow-answered');
    // a long conversation scrolls inside the log: it must then be reachable by keyboard
    await page.evaluate(() => { document.getElementById('log').style.maxHeight = '3rem'; });
    assert.ok(await page.evaluate(() => { const l = document.getElementById('log'); return l.scrollHeight > l.clientHeight; }));
    await axeScan(page, 'narrow-answered, log scrolling');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});

test('no WebAssembly SIMD: an error says so and Load is off; no IndexedDB: a warning, the model still loads', { timeout: 90000 }, async () => {
  let { ctx, page, errors } = await launch();
  try {
    await ctx.addInitScript(() => { WebAssembly.validate = () => false; });
    await open(page, coi, `?model=${DEV}`);
    assert.match(await page.textContent('.notice[data-key="simd"]'), /does not support WebAssembly SIMD/);
    assert.equal(await page.isDisabled('#load'), true);
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
  ({ ctx, page, errors } = await launch());
  try {
    await ctx.addInitScript(() => { Object.defineProperty(window, 'indexedDB', { value: undefined, configurable: true }); });
    await open(page, coi, `?model=${DEV}`);
    assert.match(await page.textContent('.notice[data-key="storage"]'), /no persistent storage/);
    assert.match(await page.textContent('#storage-usage'), /kept for this visit only/);
    await loadModel(page);
    await shot(page, '08-no-storage.png');
    assert.deepEqual(errors, []);
  } finally { await ctx.close(); }
});
