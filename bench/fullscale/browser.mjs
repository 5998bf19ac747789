// browser.mjs - the full-size model through the real page (web/) in one browser engine,
// for run.mjs --engines. The engines are driven by the project's browser harness
// (tests/browser/engines.mjs: Debian's Chromium via playwright-core, Firefox ESR via
// puppeteer-core over WebDriver BiDi, WebKitGTK's MiniBrowser via selenium-webdriver under
// its own Xvfb), on a cross-origin-isolated localhost server (tests/browser/web-server.mjs).
//
// Per engine:
//   1. Load: download + verify + store every chunk into IndexedDB, then the stages; the
//      answer at each thread count the engine allows (ENGINE_FACTS: WebKitGTK has no
//      SharedArrayBuffer, so one thread, the single-thread build), the model reloaded
//      from IndexedDB between them.
//   2. Page reloads (the cached model loads by itself; it must fetch no weight byte):
//      ready time; after the first, the answer again and the time to first token from
//      the reload; after each, the time to just read every chunk out of IndexedDB.
//      Then, as a user drives the page: open a second photo (not in the image cache; the
//      page encodes and primes it at once, web/warm.mjs), wait for "picture read", type the
//      question, Send: the read time, Send to the first answer text, the rows run before
//      and after Send.
//   3. --simd128 (engines with relaxed SIMD): the answer again with the SIMD128 build
//      forced (Owlet.load's documented `build: 'owlet'` option), at the highest thread count.
// Timings are wall clock: the pipeline's stats() (coordinator wall clock) and, measured in
// the page, the time between streamed tokens (checked against stats()). Memory: RSS of the
// browser's processes from /proc (procs.mjs). If the engine stops (load error, crash,
// timeout), `stopped` records the step, the message, the page's progress line and memory.
import path from 'node:path';
import { startServer } from '../../tests/browser/web-server.mjs';
import { launch, ENGINE_FACTS, PAGE_ERRORS_URL, PAGE_ERRORS_MOUNT } from '../../tests/browser/engines.mjs';
import { BrowserMemory, loadAvg } from './procs.mjs';

const MANIFEST = 'models/full/manifest.json';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const weightRequests = (server, from) =>
  server.requests.slice(from).filter((r) => r.path.startsWith('/models/full/') && r.path.endsWith('.bin')).length;

/**
 * Run the full-size model in one engine; results go into o.out (saved after each step).
 * @param {'chromium'|'firefox'|'webkit'} engine
 * @param {{chunks:string, photo:string, threadsList:number[], reloads:number, simd128:boolean,
 *          question:string, nPredict:number, out:any, log:Function, save:Function}} o
 */
export async function runEngine(engine, o) {
  const server = await startServer({ coi: true, inject: PAGE_ERRORS_URL,
    mounts: [PAGE_ERRORS_MOUNT, ['/models/full/', o.chunks], ['/fullscale/', path.dirname(o.photo)]] });
  const mem = new BrowserMemory();
  const at = { step: 'launch' };
  const out = o.out;
  out.date = new Date().toISOString();
  out.loadAvgStart = loadAvg();
  let b = null;
  try {
    b = await launch(engine);
    mem.start();
    await steps(engine, b.page, server, mem, o, at);
  } catch (e) {
    out.stopped = { step: at.step, message: String((e && e.message) || e).slice(0, 3000), at: new Date().toISOString(),
      loadAvg: loadAvg(), memory: mem.snapshot(), peaks: mem.take() };
    if (b) {
      out.stopped.progress = await withTimeout(b.page.textContent('#progress-text'), 20000).catch((x) => `? (${x.message})`);
      out.stopped.pageErrors = await withTimeout(b.page.errors(), 20000).catch(() => []);
    }
    o.log(`${engine} stopped at "${at.step}": ${out.stopped.message.split('\n')[0]}`);
  } finally {
    mem.stop();
    out.loadAvgEnd = loadAvg();
    out.memory = { contentPeakBytes: mem.allContent, totalPeakBytes: mem.allTotal };
    o.save();
    if (b) await withTimeout(b.close(), 60000).catch(() => {});
    await server.close();
  }
}

const withTimeout = (p, ms) => Promise.race([p, sleep(ms).then(() => { throw new Error(`no answer in ${ms} ms`); })]);

/** The steps of one engine's run (see the file comment). */
async function steps(engine, page, server, mem, o, at) {
  const out = o.out;
  const facts = ENGINE_FACTS[engine];
  const threads = facts.threads ? o.threadsList : [1];
  at.step = 'open the page';
  await page.goto(server.url + '?model=' + MANIFEST);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120000 });
  out.userAgent = await page.evaluate(() => navigator.userAgent);
  out.runs = [];
  for (const [i, t] of threads.entries()) {
    at.step = i === 0 ? `download + store into IndexedDB + load (${t} thread(s))` : `load from IndexedDB (${t} threads)`;
    await setThreads(page, t);
    const r0 = server.requests.length;
    mem.take();
    const load = await pageLoad(page, true);
    at.step = `answer (${t} thread(s))`;
    const a = await answer(page, o);
    out.runs.push({ threads: t, load, weightRequests: weightRequests(server, r0), memory: mem.take(), loadAvg: loadAvg(), ...a });
    o.log(`${engine} ${t} thread(s): ${i === 0 ? `download+store ${load.fetchAndStoreS} s, ` : ''}load ${load.loadS} s, ${summary(a)}`);
    o.save();
  }
  out.reloads = [];
  for (let k = 0; k < o.reloads; k++) {
    at.step = `page reload ${k + 1}`;
    out.reloads.push(await reloadRun(engine, page, server, mem, o, k === 0));
    o.save();
  }
  if (o.reloads > 0) {
    at.step = 'a question typed after the picture was read (the page UI)';
    out.typed = await typedRun(page, o);
    const ty = out.typed;
    o.log(`${engine} page UI: picture read ${ty.readS.toFixed(1)} s after it was opened (encoded ${ty.encodedAhead}, ` +
      `${ty.primedRows} prompt rows primed); Send to the first answer text ${ty.sendToTextS.toFixed(1)} s (${ty.rowsAfterSend} rows after Send)`);
    o.save();
  }
  if (o.simd128 && facts.relaxed) {
    at.step = `SIMD128 build (${threads[threads.length - 1]} threads)`;
    out.simd128 = await simd128Run(page, o, mem, threads[threads.length - 1]);
    o.log(`${engine} SIMD128 build, ${out.simd128.threads} threads: ${summary(out.simd128)}`);
  }
  out.errors = await page.errors();
}

const summary = (a) => `build ${a.stats.build}, encode ${(a.wall.encodeMs / 1e3).toFixed(1)} s, ` +
  `prefill ${a.wall.prefillTokPerS.toFixed(2)} tok/s, decode ${a.wall.decodeTokPerS.toFixed(2)} tok/s (streamed; stats ` +
  `${a.stats.decodeTokPerS.toFixed(2)}), ids ${a.ids.slice(0, 4).join(' ')} …`;

async function setThreads(page, t) {
  await page.evaluate(() => { document.getElementById('settings').open = true; });
  await page.fill('#set-threads', String(t));
}

/** Click Load (or, after a reload, wait for the page's own load of the cached model) until
 * ready: {totalS, fetchAndStoreS, loadS} from the progress line, polled every 250 ms. */
async function pageLoad(page, click) {
  const t0 = Date.now();
  if (click) {
    // a ready model is folded into the chip: open the model panel to reach "Reload model"
    if (await page.evaluate(() => document.getElementById('model').hidden)) await page.click('#model-chip');
    await page.click('#load');
  }
  let loadingAt = 0, last = '', lastChange = Date.now();
  for (;;) {
    const [state, text] = await page.evaluate(() => [document.body.dataset.model, document.getElementById('progress-text').textContent]);
    if (!loadingAt && /^Loading into the engine/.test(text)) loadingAt = Date.now();
    if (state === 'ready' && /^Ready/.test(text)) break;
    if (/^Could not load|cancelled/.test(text)) throw new Error(`the page says: ${text}`);
    if (text !== last) { last = text; lastChange = Date.now(); }
    if (Date.now() - lastChange > 600000) throw new Error(`no progress for 10 min; the page says: ${text}`);
    await sleep(250);
  }
  const t1 = Date.now();
  // a phase shorter than one poll is not seen: then the whole wait counts as loading
  return { totalS: (t1 - t0) / 1e3, fetchAndStoreS: loadingAt ? (loadingAt - t0) / 1e3 : 0, loadS: (t1 - (loadingAt || t0)) / 1e3 };
}

/** In the page: ask the question about the photo on a new chat, in the background; the
 * record (globalThis.__fsAnswer) holds the wall clock (Date.now()) of each step and token. */
function startAnswer([q, n, photoUrl]) {
  const owl = globalThis.__fsOwl || globalThis.owletApp.owl;
  const r = { startAt: Date.now(), ids: [], tokenAt: [], text: '', done: false, error: null };
  globalThis.__fsAnswer = r;
  (async () => {
    const chat = owl.chat();
    await chat.addImage(photoUrl);
    r.encodedAt = Date.now();
    const debug = (_l, t) => { r.ids.push(t); r.tokenAt.push(Date.now()); };
    for await (const p of chat.ask(q, { temperature: 0, maxTokens: n, _debugLogits: debug })) r.text += p;
    r.stats = await owl.stats();
  })().then(() => { r.done = true; }, (e) => { r.error = String((e && e.message) || e); r.done = true; });
  return true;
}

/** The answer (ids without EOS, text, stats) and its wall-clock timings. */
async function answer(page, o) {
  await page.evaluate(startAnswer, [o.question, o.nPredict, '/fullscale/' + path.basename(o.photo)]);
  let r, seen = -1, since = Date.now();
  for (;;) {
    await sleep(1000);
    r = await page.evaluate(() => { const x = globalThis.__fsAnswer; return x.done ? x : { done: false, n: x.ids.length }; });
    if (r.done) break;
    if (r.n !== seen) { seen = r.n; since = Date.now(); }
    if (Date.now() - since > 900000) throw new Error(`answer: no new token for 15 min (${seen} so far)`);
  }
  if (r.error) throw new Error(`answer: ${r.error} (after ${r.ids.length} tokens)`);
  const n = r.tokenAt.length, span = r.tokenAt[n - 1] - r.tokenAt[0];
  const wall = { encodeMs: r.encodedAt - r.startAt, prefillMs: r.tokenAt[0] - r.encodedAt,
    prefillTokPerS: r.stats.promptTokens / ((r.tokenAt[0] - r.encodedAt) / 1e3),
    decodeMs: span, decodeTokPerS: (n - 1) / (span / 1e3),
    // stats() decode against the streamed tokens' wall clock (the tokens after the first)
    statsOverStreamed: r.stats.decodeMs / span };
  return { ids: r.ids.filter((t) => t !== 2), text: r.text.trim(), stats: r.stats, wall, startAt: r.startAt, firstTokenAt: r.tokenAt[0] };
}

/** One page reload: ready time, weight requests, the bare IndexedDB read; the first one
 * also answers (time to first token from the reload). */
async function reloadRun(engine, page, server, mem, o, withAnswer) {
  const r1 = server.requests.length;
  mem.take();
  const t0 = Date.now();
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120000 });
  const rl = await pageLoad(page, false);
  rl.totalS = (Date.now() - t0) / 1e3;
  rl.weightRequests = weightRequests(server, r1);
  if (withAnswer) {
    Object.assign(rl, await answer(page, o));
    rl.timeToFirstTokenS = (rl.firstTokenAt - t0) / 1e3;
  }
  rl.memory = mem.take();
  rl.loadAvg = loadAvg();
  rl.idbReadS = await idbRead(page, false);
  rl.ratio = rl.totalS / rl.idbReadS;
  // Chromium only (as measured before): the read into buffers kept until the end holds the
  // model's size again in the renderer, which the other engines may not survive
  if (engine === 'chromium') { rl.idbReadKeepS = await idbRead(page, true); rl.ratioKeep = rl.totalS / rl.idbReadKeepS; }
  o.log(`${engine} reload: ready in ${rl.totalS} s (load ${rl.loadS} s), ${rl.weightRequests} weight requests, ` +
    `store read alone ${rl.idbReadS.toFixed(2)} s${withAnswer ? `; first token ${rl.timeToFirstTokenS.toFixed(1)} s after the reload; ${summary(rl)}` : ''}`);
  return rl;
}

/** Poll fn in the page every 200 ms until it is true (the harness has no waitForFunction for every engine). */
async function until(page, fn, ms) {
  const t0 = Date.now();
  while (!(await page.evaluate(fn))) {
    if (Date.now() - t0 > ms) throw new Error(`waited ${ms} ms for ${fn}`);
    await sleep(200);
  }
}

/** The page as a user drives it after a reload: open photo2 with the file input (the page
 * encodes and primes it at once, web/warm.mjs), wait for "picture read", type the question,
 * press Send, and time Send to the first answer text in the conversation (then Stop). Wall
 * clock; the stats() counters say what ran before and after Send. */
async function typedRun(page, o) {
  const counts = () => page.evaluate(async () => {
    const s = await globalThis.owletApp.owl.stats();
    return { misses: s.imageCache.misses, hits: s.imageCache.hits, prompt: s.promptTokens };
  });
  const c0 = await counts();
  const t0 = Date.now();
  await page.setInputFiles('#file-input', o.photo2); // a picture not in the image cache yet
  await until(page, () => document.getElementById('warm-state').textContent.includes('picture read'), 900000);
  const readS = (Date.now() - t0) / 1e3;
  const c1 = await counts();
  await page.fill('#question', o.question);
  const ms = await page.evaluate(() => new Promise((resolve) => {
    const ol = document.getElementById('messages');
    let t = 0;
    const mo = new MutationObserver(() => {
      const a = ol.querySelector('.msg.assistant:last-child .text');
      if (t && a && a.textContent.length) { mo.disconnect(); resolve(performance.now() - t); }
    });
    mo.observe(ol, { subtree: true, childList: true, characterData: true });
    t = performance.now();
    document.getElementById('send').click();
  }));
  await page.click('#stop');
  await until(page, () => !globalThis.owletApp.asking, 900000);
  const c2 = await counts();
  return { readS, encodedAhead: c1.misses - c0.misses, primedRows: c1.prompt - c0.prompt, sendToTextS: ms / 1e3,
    rowsAfterSend: c2.prompt - c1.prompt, loadAvg: loadAvg() };
}

/** Seconds to read every chunk's bytes out of the page's store (keep: each in its own buffer until
 * the end), on the page's main thread: OPFS files (since 2026-12-06) or IndexedDB records. */
function idbRead(page, keep) {
  return page.evaluate(async ([url, keepBytes]) => {
    const s = await import('./owlet/store.mjs');
    const m = await s.loadManifest(new URL(url, location.href).href);
    const b = await s.browserBackend();
    const kept = [];
    const t = performance.now();
    let n = 0;
    await s.readChunks(m, { backend: b, dest: (_o, bytes) => { n += bytes.byteLength; if (keepBytes) kept.push(bytes); } });
    const dt = (performance.now() - t) / 1e3;
    if (n !== m.totalSize) throw new Error(`read ${n} of ${m.totalSize} bytes`);
    kept.length = 0;
    return dt;
  }, [MANIFEST, keep]);
}

/** The answer with the SIMD128 build forced (Owlet.load's `build` option) on the page's
 * IndexedDB cache; the page's own model is unloaded first. */
async function simd128Run(page, o, mem, threads) {
  mem.take();
  const loadS = await page.evaluate(async ([url, t]) => {
    const app = globalThis.owletApp;
    if (app.owl) { await app.owl.unload(); app.owl = null; app.chat = null; }
    const { WASM_BASE } = await import('./model.mjs');
    const t0 = performance.now();
    globalThis.__fsOwl = await app.rt.Owlet.load(new URL(url, location.href).href,
      { build: 'owlet', threads: t, backend: app.backend, wasmBase: WASM_BASE });
    return (performance.now() - t0) / 1e3;
  }, [MANIFEST, threads]);
  const a = await answer(page, o);
  await page.evaluate(async () => { await globalThis.__fsOwl.unload(); globalThis.__fsOwl = null; });
  return { threads, load: { loadS }, memory: mem.take(), loadAvg: loadAvg(), ...a };
}
