// The public JS API (wasm_glue/owlet.mjs) in Node: oracle-A loaded from
// chunks through the store and the engine worker, greedy tokens equal to the
// PyTorch oracle's (tests/fixtures/oracle_a/img1/decode_tokens.i32), as one
// stage and as a two-stage pipeline, on the threaded and single-thread builds.
//
// Fixtures are made at test time with the converter (build/owlet-convert, or
// OWLET_CONVERT): oracle_a -> f32 GGUF -> 1 MiB chunks (+ a 22 MiB budget for
// two stages). The engine builds come from OWLET_WASM (default build/wasm/).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Owlet, OwletError } from '../../wasm_glue/owlet.mjs';
import { MemoryBackend } from '../../wasm_glue/store.mjs';
import { makeFixtures, oracle as fx, out, root } from '../browser/fixtures.mjs';

const wasmBase = path.resolve(root, process.env.OWLET_WASM || 'build/wasm') + '/';
const i32 = (f) => { const b = readFileSync(f); return Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4)); };
const want = i32(path.join(fx, 'img1/decode_tokens.i32'));
const wantText = i32(path.join(fx, 'text/decode_tokens.i32'));

before(makeFixtures);

const load = (dir, o = {}) => Owlet.load(path.join(out, dir, 'manifest.json'),
  { wasmBase, backend: new MemoryBackend(), kvType: 'f32', threads: 1, ...o });

async function greedy(owl, image, q, n) {
  const chat = owl.chat();
  if (image) await chat.addImage(path.join(fx, 'img1.png'));
  const pieces = [];
  for await (const p of chat.ask(q, { temperature: 0, maxTokens: n })) pieces.push(p);
  return { chat, pieces };
}

// The oracle's greedy tokens, read back through the tokenizer-free path: the
// engine reports each sampled id (stats.lastTokens counts them); the pieces
// must decode the same ids, so compare the ids via a second run's logits-free
// check: text equal between builds and token count equal to the oracle's.
async function tokensOf(owl, image, q, n) {
  const ids = [];
  const eng = owl.engine;
  const chat = owl.chat();
  await owl.mutex.run(async () => {
    await chat._activate();
    if (image) await eng.image({ encoded: new Uint8Array(readFileSync(path.join(fx, 'img1.png'))) });
    await eng.ask(q, { temperature: 0, maxTokens: n });
    for (;;) { const r = await eng.step(); ids.push(r.token); if (r.done) break; }
    await eng.end();
  });
  owl._active = null;
  return ids;
}

test('single-thread build: greedy tokens equal the oracle (image prompt)', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    assert.equal(owl.build, 'owlet-st');
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', want.length), want);
  } finally { await owl.unload(); }
});

test('threaded build, 2 threads: greedy tokens equal the oracle', async () => {
  const owl = await load('one', { threads: 2 });
  try {
    assert.equal(owl.build, 'owlet');
    assert.equal(owl.threads, 2);
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', want.length), want);
    const s = await owl.stats();
    assert.equal(s.threads, 2);
  } finally { await owl.unload(); }
});

test('text-only prompt: greedy tokens equal the oracle', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    assert.deepEqual(await tokensOf(owl, false, 'What is the capital of France?', wantText.length), wantText);
  } finally { await owl.unload(); }
});

test('two-stage pipeline gives the same tokens as one stage', async () => {
  const owl = await load('two', { singleThread: true });
  try {
    assert.equal(owl.engine.stages.length, 2);
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', want.length), want);
    const s = await owl.stats();
    assert.equal(s.stages, 2);
    assert.equal(s.stageMemoryBytes.length, 2);
    assert.equal(s.wasmMemoryBytes, s.stageMemoryBytes[0]);
    for (const b of s.stageMemoryBytes) assert.ok(b >= 16 * 1048576 && b % 65536 === 0, `stage memory ${b}`);
  } finally { await owl.unload(); }
});

test('two stages: stats() times decode as the wall clock between streamed tokens (0.8-1.2x), with a per-stage breakdown', async () => {
  const owl = await load('two', { singleThread: true });
  try {
    const chat = owl.chat();
    await chat.addImage(path.join(fx, 'img1.png'));
    const before = await owl.stats();
    const times = [];
    const t0 = performance.now();
    for await (const _ of chat.ask('Describe the image.', { temperature: 0, maxTokens: 24 })) times.push(performance.now());
    const tEnd = performance.now();
    const s = await owl.stats();
    const steps = s.completionTokens - before.completionTokens;
    // every token of this answer streams a piece: the pieces' gaps are the decode steps
    assert.equal(times.length, steps + 1, `${times.length} pieces for ${steps + 1} tokens`);
    const wall = times[times.length - 1] - times[0];
    const dec = s.decodeMs - before.decodeMs;
    assert.ok(dec >= 0.8 * wall && dec <= 1.2 * wall, `decodeMs ${dec.toFixed(1)} vs ${wall.toFixed(1)} ms between the first and last token`);
    const pre = s.prefillMs - before.prefillMs;
    assert.ok(pre > 0 && pre <= times[0] - t0 && pre >= 0.5 * (times[0] - t0), `prefillMs ${pre.toFixed(1)}, first token after ${(times[0] - t0).toFixed(1)} ms`);
    assert.ok(s.prefillMs + s.decodeMs <= tEnd - t0 + s.imageEncodeMs + 1);
    assert.ok(s.imageEncodeMs > 0 && s.decodeTokPerS > 0);
    // the breakdown: each stage's own compute, both stages did work, together no more than the whole
    assert.equal(s.perStage.length, 2);
    assert.deepEqual(s.perStage.map((p) => p.layers), [[0, owl.engine.infos[0].layer_end], [owl.engine.infos[1].layer_begin, owl.engine.infos[1].layer_end]]);
    for (const p of s.perStage) assert.ok(p.decodeMs > 0 && p.prefillMs > 0, JSON.stringify(p));
    assert.ok(s.perStage[0].decodeMs + s.perStage[1].decodeMs <= s.decodeMs, 'the stages compute within the pipeline wall clock');
  } finally { await owl.unload(); }
});

test('chat.ask streams pieces; stats count tokens; a second turn works', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    const { chat, pieces } = await greedy(owl, true, 'Describe the image.', 16);
    assert.ok(pieces.length > 0);
    for (const p of pieces) assert.equal(typeof p, 'string');
    const s = await owl.stats();
    assert.equal(s.promptTokens, 20); // oracle facts: expanded_len 20
    assert.equal(s.lastTokens, 16);
    assert.equal(s.images, 1);
    assert.ok(s.decodeTokPerS > 0 && s.prefillTokPerS > 0);
    const more = [];
    for await (const p of chat.ask('And then?', { maxTokens: 4 })) more.push(p);
    assert.equal((await owl.stats()).lastTokens, 4);
    assert.equal(chat.turns.length, 4);
  } finally { await owl.unload(); }
});

test('abort stops a generation with AbortError and leaves the chat usable', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    const chat = owl.chat();
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(async () => {
      for await (const _ of chat.ask('What is the capital of France?', { maxTokens: 50, signal: ac.signal })) {
        if (++n === 3) ac.abort();
      }
    }, { name: 'AbortError' });
    assert.equal(n, 3);
    const again = [];
    for await (const p of chat.ask('Again?', { maxTokens: 3 })) again.push(p);
    assert.equal((await owl.stats()).lastTokens, 3);
  } finally { await owl.unload(); }
});

test('chat.completions.create streams chunks with usage last; same text as chat.ask', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    const { pieces } = await greedy(owl, true, 'Describe the image.', 16);
    const png = readFileSync(path.join(fx, 'img1.png')).toString('base64');
    const stream = await owl.chat.completions.create({ stream: true, temperature: 0, max_tokens: 16, messages: [
      { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
        { type: 'text', text: 'Describe the image.' }] }] });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.usage, { prompt_tokens: 20, completion_tokens: 16, total_tokens: 36 });
    assert.equal(last.choices[0].finish_reason, 'length');
    assert.equal(chunks.slice(0, -1).map((c) => c.choices[0].delta.content).join(''), pieces.join(''));
    const r = await owl.chat.completions.create({ messages: [{ role: 'user', content: 'Describe the image.' }], max_tokens: 2 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.usage.completion_tokens, 2);
  } finally { await owl.unload(); }
});

test('bad inputs give OwletError codes and the engine stays usable', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    const chat = owl.chat();
    await assert.rejects(chat.addImage(new Uint8Array([1, 2, 3, 4])), (e) => e instanceof OwletError && e.code === 'format');
    await assert.rejects(chat.addImage({ data: new Uint8Array(8), width: 4, height: 4 }), (e) => e.code === 'invalid');
    await assert.rejects(chat.addImage(42), (e) => e.code === 'invalid');
    await assert.rejects(owl.chat.completions.create({ messages: [] }), (e) => e.code === 'invalid');
    const p = [];
    for await (const x of chat.ask('What is the capital of France?', { maxTokens: 2 })) p.push(x);
    assert.equal((await owl.stats()).lastTokens, 2);
  } finally { await owl.unload(); }
  await assert.rejects(owl.stats(), (e) => e.code === 'state');
});

test('load reports progress by phase and rejects a bad manifest', async () => {
  const phases = new Set();
  const loads = [];
  const owl = await load('one', { singleThread: true, onProgress: (p) => {
    phases.add(p.phase);
    if (p.phase === 'load') loads.push(p.bytesDone);
  } });
  await owl.unload();
  for (const ph of ['download', 'load', 'ready']) assert.ok(phases.has(ph), ph);
  // the load phase counts the bytes copied into the engine (it read them after
  // transferring the buffer, so every event said 0 until 'ready')
  assert.ok(loads.length > 0 && loads[0] > 0, `first load event counts bytes: ${loads[0]}`);
  for (let i = 1; i < loads.length; i++) assert.ok(loads[i] > loads[i - 1], 'load bytes grow');
  await assert.rejects(load('one', { budgetMiB: 1 }), (e) => e.code === 'limit' && /3\.4 MiB of weights/.test(e.message));
  await assert.rejects(Owlet.load(path.join(fx, 'config.json'), { wasmBase, backend: new MemoryBackend() }),
    (e) => e instanceof OwletError && e.code === 'bad_manifest');
});

test('a replayed conversation renders the oracle multi-turn prompt ids', async () => {
  const facts = JSON.parse(readFileSync(path.join(fx, 'manifest.json'), 'utf8')).facts.multiturn;
  const owl = await load('one', { singleThread: true });
  try {
    const chat = owl.chat();
    chat.turns.push({ role: 'user', text: 'Describe the image.', images: [{ encoded: new Uint8Array(readFileSync(path.join(fx, 'img1.png'))) }] },
      { role: 'assistant', text: 'It is a test pattern.', images: [] });
    for await (const _ of chat.ask('Which shapes are there?', { maxTokens: 1 }));
    const { ids } = await owl.engine.s0.call('history');
    assert.deepEqual(Array.from(ids), facts.input_ids);
  } finally { await owl.unload(); }
});

test('a second turn on the live cache equals a fresh replay of the same conversation', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    const a = owl.chat();
    await a.addImage(path.join(fx, 'img1.png'));
    for await (const _ of a.ask('Describe the image.', { maxTokens: 6 }));
    let live = '';
    for await (const p of a.ask('Which shapes are there?', { maxTokens: 8 })) live += p;
    const liveIds = Array.from((await owl.engine.s0.call('history')).ids);
    const b = owl.chat();
    b.turns.push({ ...a.turns[0] }, { ...a.turns[1] });
    let fresh = '';
    for await (const p of b.ask('Which shapes are there?', { maxTokens: 8 })) fresh += p;
    assert.deepEqual(Array.from((await owl.engine.s0.call('history')).ids), liveIds);
    assert.equal(fresh, live);
  } finally { await owl.unload(); }
});

test('a full context ends the answer normally; bad sampling options give invalid', async () => {
  const owl = await load('one', { singleThread: true, nCtx: 24 });
  try {
    const chat = owl.chat();
    await chat.addImage(path.join(fx, 'img1.png'));
    let text = '';
    for await (const p of chat.ask('Describe the image.', { maxTokens: 50 })) text += p;
    const s = await owl.stats();
    assert.equal(s.nPast, 24);
    assert.equal(s.lastTokens, 5); // 20 prompt rows, 4 fed + the 5th sampled
    await chat.reset();
    await assert.rejects(async () => { for await (const _ of chat.ask('Hi', { topP: 0 })); },
      (e) => e.code === 'invalid' && /top_p/.test(e.message));
    let ok = 0;
    for await (const _ of chat.ask('Hi', { maxTokens: 2 })) ok++;
    assert.equal((await owl.stats()).lastTokens, 2);
  } finally { await owl.unload(); }
});

test('Node without a backend reads the chunk files in place and refuses a corrupted one', async () => {
  const { cpSync, writeFileSync } = await import('node:fs');
  const owl = await Owlet.load(path.join(out, 'one', 'manifest.json'), { wasmBase, kvType: 'f32', singleThread: true });
  try {
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', 4), want.slice(0, 4));
  } finally { await owl.unload(); }
  const bad = path.join(out, `bad-${process.pid}`);
  cpSync(path.join(out, 'one'), bad, { recursive: true });
  try {
    const f = path.join(bad, 'oa.0001.bin');
    const b = readFileSync(f);
    b[100] ^= 1;
    writeFileSync(f, b);
    await assert.rejects(Owlet.load(path.join(bad, 'manifest.json'), { wasmBase, singleThread: true, retries: 0 }),
      (e) => e.code === 'bad_chunk' && /chunk 1/.test(e.message));
  } finally { (await import('node:fs')).rmSync(bad, { recursive: true, force: true }); }
});

// ---------------------------------------------------------------- logits vs the native engine
//
// The oracle-A img1 prompt (greedy, 16 tokens, pad aspect, f32 KV): the logits
// each token was sampled from (ask's _debugLogits; the first row is the last
// prompt position's) against the native CLI's --dump-logits rows L-1 .. L+14
// of the very GGUF the chunks make up: bitwise equal. (RoPE takes cos/sin in
// double: glibc's and musl's cosf/sinf differ in the last bit, which gave
// 1.9e-6 differences before.)
const LOGITS_ATOL = 0; // bitwise

function nativeLogits() {
  const cli = process.env.OWLET_CLI || path.join(root, 'build/owlet');
  const m = JSON.parse(readFileSync(path.join(out, 'one', 'manifest.json'), 'utf8'));
  const tag = path.join(out, `native-${process.pid}`);
  try {
    writeFileSync(`${tag}.gguf`, Buffer.concat(m.chunks.map((c) => readFileSync(path.join(out, 'one', c.url)))));
    execFileSync(cli, ['--model', `${tag}.gguf`, '--image', path.join(fx, 'img1.png'), '--prompt', 'Describe the image.',
      '--n-predict', '16', '--temp', '0', '--kv', 'f32', '--image-aspect', 'pad', '--dump-logits', `${tag}.f32`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    const b = readFileSync(`${tag}.f32`);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  } finally { rmSync(`${tag}.gguf`, { force: true }); rmSync(`${tag}.f32`, { force: true }); }
}

async function askLogits(owl) {
  const chat = owl.chat();
  await chat.addImage(path.join(fx, 'img1.png'));
  const rows = [], ids = [];
  for await (const _ of chat.ask('Describe the image.', { maxTokens: 16, _debugLogits: (l, t) => { rows.push(l); ids.push(t); } }));
  return { rows, ids, L: (await owl.stats()).promptTokens };
}

let native = null;
const wasmRows = new Map();
for (const [name, dir, o] of [['1 stage, owlet-st', 'one', { singleThread: true }], ['1 stage, owlet 2 threads', 'one', { threads: 2 }],
  ['2 stages, owlet-st', 'two', { singleThread: true }], ['2 stages, owlet 2 threads', 'two', { threads: 2 }]]) {
  test(`${name}: prefill and decode logits equal the native engine's (atol ${LOGITS_ATOL})`, async () => {
    native = native || nativeLogits();
    const owl = await load(dir, o);
    try {
      assert.equal(owl.engine.stages.length, dir === 'two' ? 2 : 1);
      const { rows, ids, L } = await askLogits(owl);
      assert.equal(L, 20);
      assert.deepEqual(ids, want);
      assert.equal(rows.length, 16);
      const V = rows[0].length;
      assert.equal(native.length, (L + 16) * V); // L prefill rows + 16 fed-back tokens
      rows.forEach((r, i) => {
        const w = native.subarray((L - 1 + i) * V, (L + i) * V);
        for (let j = 0; j < V; j++) {
          const d = Math.abs(r[j] - w[j]);
          if (!(d <= LOGITS_ATOL)) assert.fail(`row ${i} (position ${L - 1 + i}) logit ${j}: wasm ${r[j]}, native ${w[j]}`);
        }
      });
      wasmRows.set(name, rows);
    } finally { await owl.unload(); }
  });
}

test('the four wasm configurations give bitwise-identical logits', () => {
  assert.equal(wasmRows.size, 4);
  const [first, ...rest] = [...wasmRows.values()];
  const bits = (rows) => rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength).toString('hex'));
  for (const r of rest) assert.deepEqual(bits(r), bits(first));
});

// ---------------------------------------------------------------- cache reads

test('a model cached by a complete earlier run is checked from its keys: each chunk value is read once, by the load', async () => {
  class Counting extends MemoryBackend {
    constructor() { super(); this.gets = 0; }
    async get(k) { this.gets++; return super.get(k); }
  }
  const backend = new Counting();
  const n = JSON.parse(readFileSync(path.join(out, 'one', 'manifest.json'), 'utf8')).chunks.length;
  await (await load('one', { singleThread: true, backend })).unload();
  backend.gets = 0;
  const owl = await load('one', { singleThread: true, backend });
  try {
    assert.equal(backend.gets, n);
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', 4), want.slice(0, 4));
  } finally { await owl.unload(); }
  // a record of another chunk list (no digest match) is checked value by value again
  const meta = await backend.getMeta('mplug-owl2');
  await backend.putMeta('mplug-owl2', { ...meta, chunksDigest: 'x' });
  backend.gets = 0;
  await (await load('one', { singleThread: true, backend })).unload();
  assert.equal(backend.gets, 2 * n);
});

// A page whose owlet.mjs was updated while the browser kept an older engine (or a deploy that
// mixed versions): the worker names what the engine lacks at load, not "is not a function" later.
test('an engine build from another owlet version is refused at load in words (what it lacks), and no worker is left', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'owlet-stale-'));
  copyFileSync(path.join(wasmBase, 'owlet-st.wasm'), path.join(dir, 'owlet-st.wasm'));
  writeFileSync(path.join(dir, 'owlet-st.js'), `const real = require(${JSON.stringify(path.join(wasmBase, 'owlet-st.js'))});\n` +
    'module.exports = (a) => real(a).then((M) => { delete M._owl_api_arm; return M; });\n');
  const before = Owlet._liveWorkers;
  try {
    await assert.rejects(load('one', { singleThread: true, wasmBase: dir + '/' }), (e) => e instanceof OwletError &&
      e.code === 'unsupported' && /owlet-st\.wasm is from another owlet version than this wasm_glue: it lacks owl_api_arm\./.test(e.message));
    assert.equal(Owlet._liveWorkers, before, 'engine workers left after a refused engine');
  } finally { rmSync(dir, { recursive: true, force: true }); }
  // the list the worker checks names every C function it calls
  const src = readFileSync(path.join(root, 'wasm_glue/engine-worker.mjs'), 'utf8');
  const used = [...new Set(src.match(/M\._owl_[a-z_]+/g).map((s) => s.slice(2)))].sort();
  const listed = JSON.parse(src.match(/const ENGINE_EXPORTS = (\[[^\]]*\])/)[1].replace(/'/g, '"')).sort();
  assert.deepEqual(listed, used);
});

test('stages load side by side; one failing stage rejects the load, stops every worker, and the next load works', async () => {
  class Failing extends MemoryBackend {
    async get(k) { if (this.failKey && k.endsWith(this.failKey)) throw new Error('disk gone'); return super.get(k); }
  }
  const backend = new Failing();
  const m = JSON.parse(readFileSync(path.join(out, 'two', 'manifest.json'), 'utf8'));
  await (await load('two', { singleThread: true, backend })).unload();
  const before = Owlet._liveWorkers;
  backend.failKey = `/${m.chunks.length - 1}`; // the last stage's last chunk
  await assert.rejects(load('two', { singleThread: true, backend }), /disk gone/);
  assert.equal(Owlet._liveWorkers, before, 'engine workers left after a failed load');
  backend.failKey = null;
  const owl = await load('two', { singleThread: true, backend });
  try {
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', want.length), want);
  } finally { await owl.unload(); }
});

test('a cache read that never answers fails the load with a clear error after timeoutMs (no hang), stops every worker, and the next load works', { timeout: 60000 }, async () => {
  class Stuck extends MemoryBackend {
    async get(k) { if (this.stuckKey && k.endsWith(this.stuckKey)) return new Promise(() => {}); return super.get(k); }
  }
  const backend = new Stuck();
  await (await load('two', { singleThread: true, backend })).unload();
  const before = Owlet._liveWorkers;
  backend.stuckKey = '/1'; // the second chunk: stage 0's weights, after some bytes were copied
  const t0 = Date.now();
  // 5 s: long enough that a busy machine's slow worker replies do not trip it elsewhere
  const err = await load('two', { singleThread: true, backend, timeoutMs: 5000 }).then(() => null, (e) => e);
  assert.ok(err, 'the load must fail, not wait forever');
  assert.equal(err.code, 'cache');
  assert.match(err.message, /loading the cached model stalled: reading stage 0's weights from the cache \(\d+ of \d+ bytes copied\) made no progress in 5 s/);
  assert.match(err.message, /Reload the page/);
  assert.ok(Date.now() - t0 >= 5000 && Date.now() - t0 < 45000, `failed after ${Date.now() - t0} ms`);
  assert.equal(Owlet._liveWorkers, before, 'engine workers left after a stalled load');
  backend.stuckKey = null;
  const owl = await load('two', { singleThread: true, backend, timeoutMs: 5000 });
  try {
    assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', want.length), want);
  } finally { await owl.unload(); }
});

test('chunks stored as Blobs (as IdbBackend stores them) are streamed into the engine: same tokens, 1 and 2 stages', async () => {
  class BlobBackend extends MemoryBackend {
    async put(key, rec) { this.map.set(key, { sha256: rec.sha256, bytes: new Blob([rec.bytes]) }); }
  }
  const backend = new BlobBackend();
  for (const dir of ['one', 'two']) {
    const owl = await load(dir, { singleThread: true, backend });
    try {
      assert.ok((await backend.get('mplug-owl2/1')).bytes instanceof Blob);
      assert.deepEqual(await tokensOf(owl, true, 'Describe the image.', want.length), want);
    } finally { await owl.unload(); }
  }
});

// A chat rule of the library (owl_chat, src/chat/chat.c) reaches the wasm engine unchanged:
// an answer ends where the model starts the next user turn ("USER:"), the marker never shown.
// The model is made to "write" that text by pushing its ids (from the native tokenizer) as
// the last stage's samples.
test('the built-in stop rule of owl_chat ends an answer at "USER:" in the wasm engine', async () => {
  const m = JSON.parse(readFileSync(path.join(out, 'one', 'manifest.json'), 'utf8'));
  const gguf = path.join(out, `tok-${process.pid}.gguf`);
  writeFileSync(gguf, Buffer.concat(m.chunks.map((c) => readFileSync(path.join(out, 'one', c.url)))));
  let ids;
  try {
    const cli = process.env.OWLET_CLI || path.join(root, 'build/owlet');
    ids = execFileSync(cli, ['tokenize', '--model', gguf, 'Paris. USER: and Rome?'], { encoding: 'utf8' }).trim().split(' ').map(Number).slice(1);
  } finally { rmSync(gguf, { force: true }); }
  const owl = await load('one', { singleThread: true });
  try {
    const eng = owl.engine;
    await owl.mutex.run(async () => {
      await eng.ask('What is the capital of France?', { temperature: 0, maxTokens: 64 });
      let text = '', r = { done: false };
      for (const id of ids) {
        await eng.s0.call('embed'); // feed the previous id back, as the pipeline does
        r = await eng.s0.call('push_token', { id });
        text += r.piece;
        if (r.done) break;
      }
      assert.equal(r.done, true);
      assert.equal(r.reason, 'stop');
      assert.equal(text.trim(), 'Paris.');
      await eng.end();
    });
  } finally { await owl.unload(); }
});

// The engine's image cache (src/model/image_cache.c): a new chat or a replayed
// conversation sends its pictures again (Chat._activate); the same pixels are
// a hit, the vision tower does not run, and the answer is the same.
test('image cache: a new chat and a replay of the same picture are hits with the same answer', async () => {
  const owl = await load('one', { singleThread: true });
  try {
    const rowBytes = owl.info.image_tokens * owl.info.d_model * 4;
    assert.deepEqual((await owl.stats()).imageCache, { hits: 0, misses: 0, entries: 0, capacity: 4, bytes: 0, savedMs: 0 });
    const a = await greedy(owl, true, 'Describe the image.', want.length);
    let s = await owl.stats();
    assert.deepEqual(s.imageCache, { hits: 0, misses: 1, entries: 1, capacity: 4, bytes: rowBytes, savedMs: 0 });
    const b = await greedy(owl, true, 'Describe the image.', want.length); // a new chat: reset, the same picture
    s = await owl.stats();
    const { savedMs, ...counts } = s.imageCache;
    assert.deepEqual(counts, { hits: 1, misses: 1, entries: 1, capacity: 4, bytes: rowBytes });
    // a hit spares what the entry's own encode took: more than nothing, at most the whole image call
    assert.ok(savedMs > 0 && savedMs <= s.imageEncodeMs, `savedMs ${savedMs}, imageEncodeMs ${s.imageEncodeMs}`);
    assert.deepEqual(b.pieces, a.pieces);
    // back to the first chat: its turns are replayed, its picture sent again
    for await (const _ of a.chat.ask('And the colour?', { maxTokens: 2 }));
    s = await owl.stats();
    assert.equal(s.imageCache.hits, 2);
    assert.equal(s.imageCache.misses, 1);
    // each hit adds its entry's encode time (the JSON carries 3 decimals: within 0.002 ms)
    assert.ok(Math.abs(s.imageCache.savedMs - 2 * savedMs) <= 0.002, `savedMs ${s.imageCache.savedMs} after two hits of ${savedMs}`);
    assert.equal(s.images, 3);
  } finally { await owl.unload(); }
});

test('image cache off (imageCache: 0): every picture is encoded, with the same answer', async () => {
  const owl = await load('one', { singleThread: true, imageCache: 0 });
  try {
    const a = await greedy(owl, true, 'Describe the image.', want.length);
    const b = await greedy(owl, true, 'Describe the image.', want.length);
    assert.deepEqual(b.pieces, a.pieces);
    assert.deepEqual((await owl.stats()).imageCache, { hits: 0, misses: 0, entries: 0, capacity: 0, bytes: 0, savedMs: 0 });
  } finally { await owl.unload(); }
});

test('imageCache outside 0..64 is refused before anything loads', async () => {
  for (const v of [-1, 65, 1.5, '4', null])
    await assert.rejects(load('one', { singleThread: true, imageCache: v }),
      (e) => e instanceof OwletError && e.code === 'invalid' && /imageCache/.test(e.message), String(v));
  const owl = await load('one', { singleThread: true, imageCache: 64 });
  try { assert.equal((await owl.stats()).imageCache.capacity, 64); } finally { await owl.unload(); }
});

// owl.warmImage: the picture is encoded while nothing asks (a page calls it when
// a picture arrives); the question's addImage is then a hit with the same answer.
test('warmImage encodes into the image cache only: the next addImage of it is a hit, same answer; bad input leaves the engine usable', async () => {
  const owl = await load('one', { threads: 2 });
  const cold = await load('one', { threads: 2, imageCache: 0 });
  try {
    const img = path.join(fx, 'img1.png');
    const w = await owl.warmImage(img);
    assert.equal(w.encoded, true);
    assert.ok(w.ms > 0);
    let s = await owl.stats();
    assert.deepEqual({ ...s.imageCache, savedMs: 0 }, { hits: 0, misses: 1, entries: 1, capacity: 4,
      bytes: owl.info.image_tokens * owl.info.d_model * 4, savedMs: 0 });
    assert.ok(s.imageWarmMs > 0 && s.imageEncodeMs === 0 && s.images === 0, JSON.stringify(s));
    // again: already cached, nothing runs
    assert.equal((await owl.warmImage(new Uint8Array(readFileSync(img)))).encoded, false);
    // bad pictures are refused with the API's codes, the engine stays usable
    await assert.rejects(owl.warmImage(new Uint8Array([1, 2, 3])), (e) => e instanceof OwletError && e.code === 'format');
    await assert.rejects(owl.warmImage(42), (e) => e instanceof OwletError && e.code === 'invalid');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(owl.warmImage(img, { signal: ac.signal }), (e) => e.name === 'AbortError');
    const a = await greedy(owl, true, 'Describe the image.', want.length);
    s = await owl.stats();
    assert.equal(s.imageCache.hits, 1);
    assert.equal(s.imageCache.misses, 1);
    assert.ok(s.imageCache.savedMs > 0);
    // the same answer as an engine that never caches
    assert.equal((await cold.warmImage(img)).encoded, false);
    const b = await greedy(cold, true, 'Describe the image.', want.length);
    assert.deepEqual(a.pieces, b.pieces);
    assert.equal((await cold.stats()).imageCache.misses, 0);
  } finally { await owl.unload(); await cold.unload(); }
});

// chat.prime: the picture (and all before it) runs while the question is typed;
// the question then runs only its own tokens, with the oracle's greedy answer.
for (const [name, dir] of [['one stage', 'one'], ['two stages', 'two']]) {
  test(`${name}: prime runs the picture first; ask runs only the question and answers as the oracle; clearImages takes another picture`, async () => {
    const owl = await load(dir, { singleThread: true });
    try {
      const img1 = path.join(fx, 'img1.png'), img2 = path.join(fx, 'img2.png');
      const chat = owl.chat();
      assert.equal(await chat.prime(), 0, 'nothing to prime without a picture');
      await chat.addImage(img1);
      const primed = await chat.prime();
      assert.ok(primed > owl.info.image_tokens, `primed ${primed} rows`);
      let s = await owl.stats();
      assert.equal(s.promptTokens, primed);
      assert.ok(s.prefillMs > 0);
      assert.equal(await chat.prime(), 0, 'primed already');
      const ids = [];
      const debug = (_l, t) => ids.push(t);
      for await (const _ of chat.ask('Describe the image.', { maxTokens: want.length, _debugLogits: debug }));
      assert.deepEqual(ids, want, 'the oracle greedy ids');
      s = await owl.stats();
      assert.equal(s.lastTokens, want.length);
      // the prompt rows of the whole question = the primed rows + the question's own
      const plain = await load(dir, { singleThread: true });
      try {
        const c2 = plain.chat();
        await c2.addImage(img1);
        for await (const _ of c2.ask('Describe the image.', { maxTokens: 1 }));
        assert.equal(s.promptTokens, (await plain.stats()).promptTokens, 'the same prompt, split in two runs');
      } finally { await plain.unload(); }
      // a picture that changed after it was added and primed: clearImages, then the new one
      const c3 = owl.chat();
      await c3.addImage(img1);
      await c3.prime();
      await c3.clearImages();
      await c3.addImage(img2);
      await c3.prime();
      const a = [];
      for await (const p of c3.ask('Describe the image.', { maxTokens: 8 })) a.push(p);
      const fresh = owl.chat();
      await fresh.addImage(img2);
      const b = [];
      for await (const p of fresh.ask('Describe the image.', { maxTokens: 8 })) b.push(p);
      assert.deepEqual(a, b, 'after clearImages the answer is about the new picture only');
      // abort: rejects at once; the chat resyncs and still answers
      const c4 = owl.chat();
      await c4.addImage(img1);
      const ac = new AbortController();
      const pr = c4.prime({ signal: ac.signal });
      ac.abort();
      await assert.rejects(pr, (e) => e.name === 'AbortError');
      const ids4 = [];
      for await (const _ of c4.ask('Describe the image.', { maxTokens: want.length, _debugLogits: (_l, t) => ids4.push(t) }));
      assert.deepEqual(ids4, want);
    } finally { await owl.unload(); }
  });
}

// An abort in the middle of engine work stops it there: the coordinator bumps a
// counter in each stage's shared memory (threaded builds) and the C layer loops
// check it, so the stage that computes returns 'cancelled' at its next layer.
const img1Path = path.join(fx, 'img1.png');
test('abort stops the engine mid-call (threaded): an encode is not cached, a prime and a prompt stop on the stage that runs; the chat still answers as the oracle (and owlet-st after an abort)', async () => {
  const owl = await load('two', { threads: 2 });
  try {
    assert.equal(owl.build, 'owlet');
    assert.ok(owl.engine.words.length === 2 && owl.engine.words.every((w) => w instanceof Int32Array), 'a cancel counter per stage');
    // each on 4 bytes of its own: a view of a stage's wasm memory held here would keep GBs alive after unload
    assert.ok(owl.engine.words.every((w) => w.buffer.byteLength === 4), 'a cancel counter on the stage\'s wasm memory');
    const img1 = path.join(fx, 'img1.png');
    // abort as `op` goes to stage `i`: its arguments carry the count from before the abort, so
    // only the stage's own check of the shared counter can stop it (the coordinator's checks
    // between hops cannot). The abort comes just before the message is posted: after it, a
    // one-layer stage could finish before the main thread's store lands, and the call would
    // end 'ok' (a CI run saw that). Resolves how that engine call ended.
    const abortAt = (i, op, ac) => new Promise((resolve) => {
      const st = owl.engine.stages[i], orig = st.call;
      st.call = function (o, a, t) {
        if (o !== op) return orig.call(this, o, a, t);
        st.call = orig;
        ac.abort();
        const p = orig.call(this, o, a, t);
        p.then(() => resolve('ok'), (e) => resolve(e.code));
        return p;
      };
    });
    const chat = owl.chat();
    // the encode
    let ac = new AbortController();
    let how = abortAt(0, 'image', ac);
    await assert.rejects(chat.addImage(img1, { signal: ac.signal }), (e) => e.name === 'AbortError');
    assert.equal(await how, 'cancelled');
    assert.equal((await owl.stats()).imageCache.entries, 0, 'a stopped encode is not cached');
    // the prime, stopped on the second stage
    await chat.addImage(img1);
    ac = new AbortController();
    how = abortAt(1, 'run', ac);
    await assert.rejects(chat.prime({ signal: ac.signal }), (e) => e.name === 'AbortError');
    assert.equal(await how, 'cancelled');
    // the prompt, stopped on the first stage: the question stays, unanswered
    ac = new AbortController();
    how = abortAt(0, 'run', ac);
    const it = chat.ask('Describe the image.', { maxTokens: 4, signal: ac.signal });
    await assert.rejects(it.next(), (e) => e.name === 'AbortError');
    assert.equal(await how, 'cancelled');
    assert.deepEqual(chat.turns.map((t) => [t.role, t.text]), [['user', 'Describe the image.'], ['assistant', '']]);
    // the same chat goes on; a new chat gives the oracle's greedy ids
    const more = [];
    for await (const p of chat.ask('And the colours?', { maxTokens: 4 })) more.push(p);
    assert.ok(more.length > 0);
    const c2 = owl.chat();
    await c2.addImage(img1);
    const ids = [];
    for await (const _ of c2.ask('Describe the image.', { maxTokens: want.length, _debugLogits: (_l, t) => ids.push(t) }));
    assert.deepEqual(ids, want);
  } finally { await owl.unload(); }
  // the single-thread build has no shared memory: the stopped call ends in the background, and
  // the calls after it run (the coordinator's count moved on, the engine's counter could not)
  const st = await load('two', { singleThread: true });
  try {
    assert.deepEqual(st.engine.words, [null, null]);
    const chat = st.chat();
    const ac = new AbortController(), sent = st.engine.s0.call;
    st.engine.s0.call = function (o, a, t) {
      const p = sent.call(this, o, a, t);
      if (o === 'image') { st.engine.s0.call = sent; ac.abort(); }
      return p;
    };
    await assert.rejects(chat.addImage(img1Path, { signal: ac.signal }), (e) => e.name === 'AbortError');
    await chat.addImage(img1Path);
    await chat.prime();
    const ids = [];
    for await (const _ of chat.ask('Describe the image.', { maxTokens: want.length, _debugLogits: (_l, t) => ids.push(t) }));
    assert.deepEqual(ids, want);
  } finally { await st.unload(); }
});
