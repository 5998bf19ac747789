// run.mjs - browser tests of the JS API in Debian's headless Chromium
// (playwright-core, no downloaded browsers): oracle-A loaded from chunks into
// IndexedDB and run in the engine worker, against tests/browser/server.mjs.
// Exit code 0 when all pass; the last line is "N passed, N failed".
//
//   node tests/browser/run.mjs            (after `make wasm`; OWLET_WASM=build/runtime for another build)
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestServer } from './server.mjs';
import { makeFixtures, oracle as fx, out, root } from './fixtures.mjs';

const wasmDir = process.env.OWLET_WASM || 'build/wasm';
const wasmBase = '/' + wasmDir.replace(/^\/+|\/+$/g, '') + '/';
const i32 = (f) => { const b = readFileSync(f); return Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4)); };
const WANT = i32(path.join(fx, 'img1/decode_tokens.i32'));
const PROMPT = 'Describe the image.';
const IMAGE = '/tests/fixtures/oracle_a/img1.png';

let passed = 0, failed = 0;
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name} (${Date.now() - t0} ms)\n  ${String(e && e.stack ? e.stack : e).split('\n').slice(0, 4).join('\n  ')}`);
  }
}
function eq(a, b, what) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}
function ok(c, what) { if (!c) throw new Error(what); }

// Logits against the native engine: bitwise equal (see tests/js/api.test.mjs).
const LOGITS_ATOL = 0; // bitwise
function nativeLogits() {
  const cli = process.env.OWLET_CLI || path.join(root, 'build/owlet');
  const m = JSON.parse(readFileSync(path.join(out, 'one', 'manifest.json'), 'utf8'));
  const tag = path.join(out, `native-browser-${process.pid}`);
  try {
    writeFileSync(`${tag}.gguf`, Buffer.concat(m.chunks.map((c) => readFileSync(path.join(out, 'one', c.url)))));
    execFileSync(cli, ['--model', `${tag}.gguf`, '--image', path.join(fx, 'img1.png'), '--prompt', PROMPT,
      '--n-predict', '16', '--temp', '0', '--kv', 'f32', '--image-aspect', 'pad', '--dump-logits', `${tag}.f32`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    const b = readFileSync(`${tag}.f32`);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  } finally { rmSync(`${tag}.gguf`, { force: true }); rmSync(`${tag}.f32`, { force: true }); }
}
/** Greedy 16 tokens of the oracle-A img1 prompt in the page, with ask's
 * _debugLogits rows (base64 of the f32 bytes). */
function pageLogits(page, o) {
  return page.evaluate(async (o) => {
    const { Owlet } = await import('/wasm_glue/owlet.mjs');
    const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, kvType: 'f32', threads: o.threads, backoffMs: 20 });
    try {
      const chat = owl.chat();
      await chat.addImage(o.image);
      const rows = [], ids = [];
      const b64 = (f) => { let s = ''; const u = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
        for (let i = 0; i < u.length; i += 8192) s += String.fromCharCode(...u.subarray(i, i + 8192)); return btoa(s); };
      for await (const _ of chat.ask(o.text, { maxTokens: 16, _debugLogits: (l, t) => { rows.push(b64(l)); ids.push(t); } }));
      return { build: owl.build, stages: owl.engine.stages.length, L: (await owl.stats()).promptTokens, rows, ids,
        isolated: globalThis.crossOriginIsolated };
    } finally { await owl.unload(); }
  }, o);
}
function checkLogits(r, native, wasmRef) {
  eq(r.L, 20, 'prompt positions');
  eq(r.ids, WANT, 'greedy tokens');
  eq(r.rows.length, 16, 'logit rows');
  const rows = r.rows.map((s) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); });
  const V = rows[0].length;
  eq(native.length, (r.L + 16) * V, 'native dump size');
  rows.forEach((row, i) => {
    const w = native.subarray((r.L - 1 + i) * V, (r.L + i) * V);
    for (let j = 0; j < V; j++)
      if (!(Math.abs(row[j] - w[j]) <= LOGITS_ATOL))
        throw new Error(`row ${i} (position ${r.L - 1 + i}) logit ${j}: browser ${row[j]}, native ${w[j]}`);
  });
  if (wasmRef.rows) eq(r.rows, wasmRef.rows, 'logits bitwise equal to the first browser configuration');
  else wasmRef.rows = r.rows;
}

async function main() {
  makeFixtures();
  const srv = new TestServer(root);
  await srv.listen();
  const userDir = mkdtempSync(path.join(tmpdir(), 'owlet-browser-'));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const logs = [];
  const open = async (kind) => {
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(`[${kind}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[${kind}] pageerror ${e.message}`));
    await page.goto(`http://${kind === 'iso' ? '127.0.0.1' : 'localhost'}:${srv.port}/`);
    return page;
  };
  const call = (page, fn, o = {}) => page.evaluate(async ([fn, o]) => {
    const h = await import('/tests/browser/harness.mjs');
    return h[fn](o);
  }, [fn, { wasmBase, ...o }]);

  try {
    let page = await open('iso');
    await call(page, 'deleteCached');

    await test('isolated page: oracle-A from chunks, threaded build, greedy tokens equal the oracle', async () => {
      srv.reset();
      const r = await call(page, 'loadAndAsk', { image: IMAGE, text: PROMPT, n: WANT.length, threads: 2 });
      ok(!r.error, JSON.stringify(r.error));
      eq(r.isolated, true, 'crossOriginIsolated');
      eq(r.build, 'owlet-relaxed', 'build'); // Chromium runs relaxed SIMD (wasm_glue/features.mjs)
      eq(r.threads, 2, 'threads');
      eq(r.ids, WANT, 'greedy tokens');
      eq(srv.chunkRequests(), 4, 'chunk requests');
      ok(r.phases.includes('download') && r.phases.includes('ready'), `phases ${r.phases}`);
    });

    await test('reload: zero weight bytes fetched, same tokens', async () => {
      await page.close();
      page = await open('iso');
      srv.reset();
      const r = await call(page, 'loadAndAsk', { image: IMAGE, text: PROMPT, n: WANT.length, threads: 2 });
      ok(!r.error, JSON.stringify(r.error));
      eq(srv.chunkRequests(), 0, 'chunk requests after reload');
      eq(r.ids, WANT, 'greedy tokens');
    });

    await test('chunks are stored as Blobs in IndexedDB; records of older versions (IndexedDB, bytes) still load without refetching', async () => {
      // as an earlier version kept the model: in IndexedDB alone, as Blobs
      await call(page, 'deleteCached');
      srv.reset();
      const r0 = await call(page, 'loadAndAsk', { store: 'idb', threads: 2 });
      ok(!r0.error, JSON.stringify(r0.error));
      eq(srv.chunkRequests(), 4, 'chunk requests into IndexedDB');
      const blobs = await page.evaluate(async () => {
        const s = await import('/wasm_glue/store.mjs');
        const be = new s.IdbBackend();
        let n = 0;
        for (const k of await be.keys('mplug-owl2/')) {
          const r = await be.get(k);
          if (!(r.bytes instanceof Blob)) continue;
          n++;
          const bytes = new Uint8Array(await r.bytes.arrayBuffer());
          await be.tx('chunks', 'readwrite', (st) => { st.put({ sha256: r.sha256, bytes }, k); });
        }
        return n;
      });
      eq(blobs, 4, 'Blob records');
      await page.close();
      page = await open('iso');
      srv.reset();
      const r = await call(page, 'loadAndAsk', { image: IMAGE, text: PROMPT, n: WANT.length, threads: 2 });
      ok(!r.error, JSON.stringify(r.error));
      eq(srv.chunkRequests(), 0, 'chunk requests');
      eq(r.ids, WANT, 'greedy tokens');
      eq(r.stats.loadReads, { file: 0, blob: 0, bytes: 4 }, 'read as bytes from IndexedDB');
    });

    await test('non-isolated page: single-thread build, same greedy tokens; canvas, ImageData, ImageBitmap, Blob and URL inputs agree', async () => {
      const p2 = await open('plain');
      try {
        const r = await call(p2, 'loadAndAsk', { image: IMAGE, text: PROMPT, n: WANT.length, canvas: true });
        ok(!r.error, JSON.stringify(r.error));
        eq(r.isolated, false, 'crossOriginIsolated');
        eq(r.build, 'owlet-st', 'build');
        eq(r.stats.threads, 1, 'stats.threads');
        eq(r.ids, WANT, 'greedy tokens');
        ok(r.urlText.length > 0, 'an answer');
        eq(r.canvasText, r.urlText, 'canvas vs URL answer');
        eq(r.blobText, r.urlText, 'Blob vs URL answer');
        eq(r.bitmapText, r.urlText, 'ImageBitmap vs URL answer');
        eq(r.imageDataText, r.urlText, 'ImageData vs URL answer');
      } finally { await p2.close(); }
    });

    await test('server killed mid-download, restarted: only the missing chunks are fetched', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      srv.faults.killAfter = 2;
      const r1 = await call(page, 'loadAndAsk', { retries: 1, backoffMs: 10, concurrency: 1 });
      ok(r1.error, 'load should fail while the server is down');
      const stored = (await call(page, 'listCached')).length;
      await srv.restart();
      const served = srv.chunkResponses;
      srv.counts.clear();
      const r2 = await call(page, 'loadAndAsk', { image: IMAGE, text: PROMPT, n: 4 });
      ok(!r2.error, JSON.stringify(r2.error));
      eq(srv.chunkRequests(), 4 - served, `chunk requests after restart (served before: ${served}, meta ${stored})`);
      eq(r2.ids, WANT.slice(0, 4), 'tokens');
    });

    await test('a corrupted chunk is detected and refetched', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      srv.faults.corruptOnce.add('oa.0002.bin');
      const r = await call(page, 'loadAndAsk', { image: IMAGE, text: PROMPT, n: WANT.length });
      ok(!r.error, JSON.stringify(r.error));
      eq(srv.count('oa.0002.bin'), 2, `requests of the corrupted chunk (${JSON.stringify([...srv.counts])})`);
      eq(r.ids, WANT, 'greedy tokens');
    });

    await test('a server failing 30% of chunk requests still completes', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      srv.faults.failRate = 0.3;
      const r = await call(page, 'loadAndAsk', { retries: 8, backoffMs: 5 });
      ok(!r.error, JSON.stringify(r.error));
      ok(srv.chunkRequests() >= 4, 'chunk requests');
    });

    await test('quota exhaustion gives OwletError quota with the bytes needed', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      const r = await call(page, 'quota', {});
      ok(r.error, 'load should fail');
      eq(r.error.code, 'quota', 'error code');
      ok(/3\.5 MB needed/.test(r.error.message), r.error.message);
      eq(srv.chunkRequests(), 0, 'nothing downloaded');
    });

    await test('QuotaExceededError while storing a chunk gives OwletError quota', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      const r = await call(page, 'quotaOnPut', { retries: 0 });
      ok(r.error, 'load should fail');
      eq(r.error.code, 'quota', 'error code');
      ok(/storage quota exceeded \([0-9.]+ MB more are needed\)/.test(r.error.message), r.error.message);
    });

    await test('signal.abort() stops a download promptly with AbortError', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      srv.faults.delayMs = 3000;
      const r = await call(page, 'abortDownload', { abortAfterMs: 300 });
      eq(r.error && r.error.name, 'AbortError', 'error');
      ok(r.sinceAbortMs < 1000, `settled ${r.sinceAbortMs.toFixed(0)} ms after abort`);
      srv.faults.delayMs = 0;
    });

    await test('signal.abort() stops a generation with AbortError; the chat stays usable', async () => {
      srv.reset();
      const r = await call(page, 'abortGeneration', {});
      eq(r.err && r.err.name, 'AbortError', 'error');
      eq(r.n, 3, 'pieces before abort');
      eq(r.againTokens, 3, 'tokens of the next ask');
    });
    await test('two-stage manifest: two engine workers, same greedy tokens as one stage', async () => {
      await call(page, 'deleteCached');
      srv.reset();
      const r = await call(page, 'loadAndAsk', { manifest: '/build/test-out/api/two/manifest.json', image: IMAGE,
        text: PROMPT, n: WANT.length, threads: 2 });
      ok(!r.error, JSON.stringify(r.error));
      eq(r.stats.stages, 2, 'stages');
      eq(r.ids, WANT, 'greedy tokens');
      await call(page, 'deleteCached');
    });

    const native = nativeLogits(), wasmRef = {};
    for (const [kind, stages] of [['iso', 1], ['iso', 2], ['plain', 1], ['plain', 2]]) {
      const what = kind === 'iso' ? 'isolated page, threaded build' : 'non-isolated page, single-thread build';
      await test(`${what}, ${stages} stage(s): logits equal the native engine's (atol ${LOGITS_ATOL}), bitwise equal across pages`, async () => {
        const p = kind === 'iso' ? page : await open('plain');
        try {
          await call(p, 'deleteCached');
          const r = await pageLogits(p, { wasmBase, manifest: `/build/test-out/api/${stages === 1 ? 'one' : 'two'}/manifest.json`,
            image: IMAGE, text: PROMPT, threads: 2 });
          eq(r.isolated, kind === 'iso', 'crossOriginIsolated');
          eq(r.build, kind === 'iso' ? 'owlet-relaxed' : 'owlet-st', 'build');
          eq(r.stages, stages, 'stages');
          checkLogits(r, native, wasmRef);
          await call(p, 'deleteCached');
        } finally { if (p !== page) await p.close(); }
      });
    }
    await page.close();
  } finally {
    await ctx.close();
    srv.close();
    rmSync(userDir, { recursive: true, force: true });
  }
  if (failed) console.log(logs.slice(-30).join('\n'));
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
