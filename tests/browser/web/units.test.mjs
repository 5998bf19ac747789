// Pure parts of the web page (web/*.mjs) in Node: settings sanitising, progress
// wording, cache state from the store's records, shape geometry.
//   node --test tests/browser/web/units.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitize, DEFAULTS } from '../../../web/settings.mjs';
import { describeProgress, cacheState, partialIds, loadLabel, retryText, loadErrorWords, mb } from '../../../web/model.mjs';
import { isDemo, photoWarning, DEMO_QUESTIONS } from '../../../web/demo.mjs';
import { shapePoints, TOOLS, COLOURS } from '../../../web/draw.mjs';
import { timingText } from '../../../web/messages.mjs';
import { MemoryBackend } from '../../../wasm_glue/store.mjs';

test('settings: out-of-range and junk values fall back or clamp', () => {
  assert.deepEqual(sanitize(null), DEFAULTS);
  const s = sanitize({ temperature: 9, topP: -1, maxTokens: 2.6, threads: 'x', aspect: 'zoom', sw: 'off', autoload: false, evil: 1 });
  assert.equal(s.temperature, 2);
  assert.equal(s.topP, 0.05);
  assert.equal(s.maxTokens, 3);
  assert.equal(s.threads, DEFAULTS.threads);
  assert.equal(s.aspect, '');
  assert.equal(s.sw, 'off');
  assert.equal(s.autoload, false);
  assert.equal('evil' in s, false);
});

test('progress: download wording has MB, MB/s, time left and chunks; load has no rate', () => {
  assert.equal(describeProgress({ phase: 'download', bytesDone: 1048576, bytesTotal: 3544352, rate: 2.5e6, eta: 1.2,
    chunksDone: 1, chunksTotal: 4 }), 'Downloading — 1.05 MB / 3.54 MB (29%) · 2.50 MB/s · 1 s left · chunk 1 of 4');
  assert.equal(describeProgress({ phase: 'load', bytesDone: 5e8, bytesTotal: 4e9, rate: 0, eta: 0 }),
    'Loading into the engine — 500.0 MB / 4000.0 MB (12%)');
  assert.match(describeProgress({ phase: 'download', bytesDone: 0, bytesTotal: 4e9, rate: 1e6, eta: 3999 }), /66 min 39 s left/);
  assert.equal(mb(0), '0.00 MB');
});

test('cache state: none, partial (chunks and bytes kept), cached (model record + all chunks), stale version', async () => {
  const b = new MemoryBackend();
  const m = { id: 'm', sha256: 'a'.repeat(64), chunks: [0, 1, 2].map((index) => ({ index, size: 1000 + index })) };
  assert.deepEqual(await cacheState(b, m), { state: 'none', chunks: 0, bytes: 0 });
  await b.put('m/0', { sha256: 'x', bytes: new Uint8Array(1) });
  await b.put('m/2', { sha256: 'x', bytes: new Uint8Array(1) });
  assert.deepEqual(await cacheState(b, m), { state: 'partial', chunks: 2, bytes: 2002 });
  assert.deepEqual(await partialIds(b), ['m'], 'chunks without a model record: a partial download');
  await b.put('m/1', { sha256: 'x', bytes: new Uint8Array(1) });
  await b.putMeta('m', { id: 'm', sha256: m.sha256, chunks: 3 });
  assert.deepEqual(await cacheState(b, m), { state: 'cached', chunks: 3, bytes: 3003 });
  assert.deepEqual(await partialIds(b), []);
  assert.equal((await cacheState(b, { ...m, sha256: 'b'.repeat(64) })).state, 'partial');
  assert.deepEqual(await cacheState(null, m), { state: 'none', chunks: 0, bytes: 0 });
});

test('the load button says what it will do; a retry counts down; a failed load is said in words', () => {
  assert.equal(loadLabel({ state: 'partial', bytes: 2.1e6 }, 6.67e6), 'Resume download (2.1 of 6.7 MB kept)');
  assert.equal(loadLabel({ state: 'none', bytes: 0 }, 6.67e6), 'Download and load (6.67 MB)');
  assert.equal(loadLabel({ state: 'cached', bytes: 6.67e6 }, 6.67e6), 'Load model');
  const p = { phase: 'retry', chunk: 2, chunksTotal: 7, attempt: 3, attempts: 7, waitMs: 2000 };
  assert.equal(retryText(p, 1999), 'Chunk 3 of 7 failed: retrying in 2 s (attempt 3 of 7)');
  assert.equal(retryText(p, 10), 'Chunk 3 of 7 failed: retrying in 1 s (attempt 3 of 7)');
  const bad = loadErrorWords({ code: 'bad_chunk', message: `chunk 4 (http://x/m.0004.bin): sha256 ${'a'.repeat(64)}, want ${'b'.repeat(64)}` }, { kept: true });
  assert.match(bad.text, /^The download stopped: part 5 of the model arrived damaged twice.*Resume continues from there\.$/);
  assert.doesNotMatch(bad.text, /[0-9a-f]{64}|http/);
  assert.match(bad.details, /sha256 a{64}, want b{64}/);
  assert.equal(loadErrorWords({ code: 'network', message: 'x' }).text, 'The download stopped: the server stopped answering.');
  const stall = loadErrorWords({ code: 'cache', message: "loading the cached model stalled: reading stage 1's weights from the cache (0 of 9 bytes copied) made no progress in 120 s after the start." });
  assert.match(stall.text, /^Reading the saved model from the browser's storage stopped making progress\. Reload the page/);
  assert.match(stall.details, /stage 1's weights/);
  assert.equal(loadErrorWords({ code: 'cache', message: 'chunk 2 is missing from the cache' }).text,
    "Part 3 of the model is missing from the browser's storage: load the model again to download it.");
  const engineStall = loadErrorWords({ code: 'engine', message: "loading the model stalled: starting stage 1's engine (owlet.js, 2 threads) did not answer in 120 s." });
  assert.match(engineStall.text, /^The engine did not start \(its worker stopped answering\)\. Reload the page/);
  assert.equal(loadErrorWords({ code: 'engine', message: 'engine worker failed: x' }).text, 'Could not load the model.');
  assert.equal(loadErrorWords(new Error('odd')).text, 'Could not load the model.');
  assert.equal(loadErrorWords(new Error('odd')).details, 'odd');
});

test('the demo model: recognised by id or URL; five question kinds; the photo warning names the source', () => {
  assert.equal(isDemo({ id: 'owlet-demo' }), true);
  assert.equal(isDemo({ id: 'other' }, 'http://h/models/demo/manifest.json'), false, 'the manifest decides once read');
  assert.equal(isDemo(null, 'http://h/models/demo/manifest.json'), true);
  assert.equal(isDemo(null, 'http://h/models/dev/manifest.json'), false);
  assert.equal(DEMO_QUESTIONS.length, 5);
  assert.match(photoWarning('the camera'), /^The picture from the camera was not drawn on the pad\./);
});

test('shapes: every tool but the pen has a closed outline inside its radius', () => {
  for (const t of TOOLS.filter((x) => x !== 'pen')) {
    const pts = shapePoints(t, 100, 50, 20);
    assert.ok(pts.length >= 3, t);
    for (const [x, y] of pts) assert.ok(Math.hypot(x - 100, y - 50) <= 20 * 1.2 + 1e-9, `${t} point (${x}, ${y})`);
  }
  assert.deepEqual(shapePoints('pen', 0, 0, 5), []);
  assert.deepEqual(COLOURS.map((c) => c[0]).slice(0, 9), ['red', 'orange', 'yellow', 'green', 'cyan', 'blue', 'purple', 'pink', 'black']);
});

test('timings: an answer whose picture came from the image cache says how much encoding it saved', () => {
  const base = { promptTokens: 10, prefillMs: 100, completionTokens: 4, decodeMs: 200, images: 1, imageEncodeMs: 9000, threads: 2,
    imageCache: { hits: 0, misses: 1, savedMs: 0 } };
  const miss = { ...base, promptTokens: 30, prefillMs: 300, images: 2, imageEncodeMs: 18000, imageCache: { hits: 0, misses: 2, savedMs: 0 } };
  assert.doesNotMatch(timingText(base, miss, 1500), /cache/);
  assert.match(timingText(base, miss, 1500), /^image encode 9000 ms · prefill 20 tokens in 200 ms/);
  const hit = { ...base, images: 2, imageEncodeMs: 9040, imageCache: { hits: 1, misses: 1, savedMs: 8960 } };
  assert.match(timingText(base, hit, 1500), /image encode 40 ms · picture reused from the cache \(once\): 9\.0 s of encoding saved · prefill/);
  const small = { ...hit, imageCache: { hits: 1, misses: 1, savedMs: 21.4 } };
  assert.match(timingText(base, small, 1500), /picture reused from the cache \(once\): 21 ms of encoding saved/);
  // a stats() without imageCache (an engine built before it) gives no cache line and no error
  const { imageCache: _, ...old } = hit;
  assert.doesNotMatch(timingText(old, old, 1), /cache/);
});
