// Owlet.load's `early` option (wasm_glue/engine.mjs, startPipeline): a model in
// two stages resolves once stage 0 (vision tower + conversation) has loaded; the
// picture is encoded while stage 1 is still loading, a question waits for it, and
// the answer is the one of a plain load. A later stage that fails, an unload in
// the middle of the load, and an abort while a question waits for the load each
// leave no engine worker behind and a model that behaves.
//
// Stage 1's bytes are held back by a backend whose reads of the model's last
// chunk (stage 1's only) wait until the test lets them go on (or fail).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Owlet } from '../../wasm_glue/owlet.mjs';
import { MemoryBackend, loadManifest } from '../../wasm_glue/store.mjs';
import { makeFixtures, oracle as fx, out, root } from '../browser/fixtures.mjs';

const wasmBase = path.resolve(root, process.env.OWLET_WASM || 'build/wasm') + '/';
const img = path.join(fx, 'img1.png');
const Q = 'Describe the image.';
const N = 12;

let manifest, lastKey, plainText;

/** Reads of the held key wait until open() (never answer with `stuck`). */
class HeldBackend extends MemoryBackend {
  constructor() {
    super();
    this.held = false;
    this.stuck = false;
    this.waiting = [];
    this.reached = null;
    this.reachedP = new Promise((r) => { this.reached = r; });
  }
  async get(key) {
    if (this.held && key === lastKey) {
      this.reached();
      const err = await new Promise((r) => { if (!this.stuck) this.waiting.push(r); });
      if (err) throw err;
    }
    return super.get(key);
  }
  /** Let the held reads go on, or (err) fail them with err. */
  open(err = null) { this.held = false; for (const r of this.waiting.splice(0)) r(err); }
}

const load = (o) => Owlet.load(path.join(out, 'two', 'manifest.json'),
  { wasmBase, kvType: 'f32', threads: 1, ...o });

async function answer(chat) {
  let text = '';
  for await (const p of chat.ask(Q, { temperature: 0, maxTokens: N })) text += p;
  return text;
}

/** A backend filled by one plain load, then held at stage 1's chunk. */
async function heldBackend(o = {}) {
  const b = new HeldBackend();
  await (await load({ backend: b, ...o })).unload();
  b.held = true;
  return b;
}

const settledSoon = (p, ms) => Promise.race([p.then(() => 'settled', () => 'settled'),
  new Promise((r) => setTimeout(() => r('pending'), ms))]);

before(async () => {
  makeFixtures();
  manifest = JSON.parse(readFileSync(path.join(out, 'two', 'manifest.json'), 'utf8'));
  assert.equal(manifest.stages.length, 2);
  const last = manifest.chunks[manifest.chunks.length - 1];
  // the held chunk belongs to stage 1 alone: stage 0 can load without it
  assert.ok(last.offset >= manifest.stages[0].offset + manifest.stages[0].size, 'the last chunk is stage 1\'s only');
  lastKey = `${(await loadManifest(path.join(out, 'two', 'manifest.json'))).id}/${last.index}`;
  const owl = await load({ backend: new MemoryBackend() });
  try {
    const chat = owl.chat();
    await chat.addImage(img);
    plainText = await answer(chat);
    assert.ok(plainText.length > 0);
  } finally { await owl.unload(); }
});

for (const [name, o] of [['owlet-st', { singleThread: true }], ['owlet, 2 threads', { threads: 2 }]]) {
  test(`early (${name}): load resolves with stage 1 still loading, the picture is encoded meanwhile, the answer waits and equals a plain load's`, { timeout: 60000 }, async () => {
    const backend = await heldBackend(o);
    const phases = [];
    const owl = await load({ backend, early: true, onProgress: (p) => phases.push(p.phase), ...o });
    try {
      assert.equal(await settledSoon(owl.loaded, 200), 'pending', 'stage 1 cannot have loaded: its chunk is held');
      assert.ok(!phases.includes('ready'), '"ready" only when every stage has loaded');
      let s = await owl.stats();
      assert.deepEqual(s.perStage.map((x) => x.loaded), [true, false]);
      assert.deepEqual(s.perStage[1].layers, [manifest.stages[1].layer_start, manifest.stages[1].layer_end]);
      const chat = owl.chat();
      await chat.addImage(img); // stage 0 only: runs now
      s = await owl.stats();
      assert.equal(s.images, 1);
      assert.ok(s.imageEncodeMs > 0);
      const asked = answer(chat);
      assert.equal(await settledSoon(asked, 300), 'pending', 'the question needs stage 1');
      backend.open();
      assert.equal(await asked, plainText);
      await owl.loaded;
      assert.equal(phases[phases.length - 1], 'ready');
      s = await owl.stats();
      assert.deepEqual(s.perStage.map((x) => x.loaded), [true, true]);
      assert.ok(s.perStage[1].prefillMs > 0 && s.perStage[1].wasmMemoryBytes > 0);
      // and the next question works as usual
      const again = owl.chat();
      await again.addImage(img);
      assert.equal(await answer(again), plainText);
    } finally { await owl.unload(); }
  });
}

test('early: a later stage that fails rejects owl.loaded and every later call with its error, stops every worker', { timeout: 60000 }, async () => {
  const backend = await heldBackend({ singleThread: true });
  const before = Owlet._liveWorkers;
  const owl = await load({ backend, early: true, singleThread: true });
  const chat = owl.chat();
  await chat.addImage(img);
  await backend.reachedP;
  backend.open(new Error('disk gone'));
  await assert.rejects(owl.loaded, /disk gone/);
  assert.equal(Owlet._liveWorkers, before, 'engine workers left after the failed stage');
  await assert.rejects(chat.addImage(img), /disk gone/);
  await assert.rejects(owl.stats(), /disk gone/);
  await owl.unload();
  const ok = await load({ backend, early: true, singleThread: true });
  try {
    await ok.loaded;
    const c = ok.chat();
    await c.addImage(img);
    assert.equal(await answer(c), plainText);
  } finally { await ok.unload(); }
});

test('early: unload while a stage is still loading (its read never answers) ends at once; owl.loaded rejects; no worker left', { timeout: 60000 }, async () => {
  const backend = await heldBackend({ singleThread: true });
  const before = Owlet._liveWorkers;
  backend.stuck = true;
  const owl = await load({ backend, early: true, singleThread: true });
  await backend.reachedP;
  const chat = owl.chat();
  await chat.addImage(img);
  const asked = answer(chat).then(() => null, (e) => e);
  const t0 = Date.now();
  await owl.unload();
  assert.ok(Date.now() - t0 < 5000, `unload took ${Date.now() - t0} ms`);
  const err = await owl.loaded.then(() => null, (e) => e);
  assert.ok(err && err.code === 'state' && /unloaded before it had loaded/.test(err.message), String(err));
  const e2 = await asked;
  assert.ok(e2 && e2.code === 'state', `the waiting question: ${e2}`);
  assert.equal(Owlet._liveWorkers, before, 'engine workers left after unload');
});

test('early, 2 threads: a question aborted while it waits for stage 1 rejects at once; after the load the next one is right', { timeout: 60000 }, async () => {
  const backend = await heldBackend({ threads: 2 });
  const owl = await load({ backend, early: true, threads: 2 });
  try {
    const chat = owl.chat();
    await chat.addImage(img);
    const ac = new AbortController();
    let text = '';
    const asked = (async () => { for await (const p of chat.ask(Q, { maxTokens: N, signal: ac.signal })) text += p; })();
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await assert.rejects(asked, (e) => e.name === 'AbortError');
    assert.equal(text, '');
    backend.open();
    await owl.loaded;
    const fresh = owl.chat();
    await fresh.addImage(img);
    assert.equal(await answer(fresh), plainText);
  } finally { await owl.unload(); }
});

// A stage's engine that never starts (a worker or thread pool that never answers, once seen as a
// Firefox reload idle for minutes) fails the load with a clear 'engine' error after timeoutMs,
// leaves no worker behind, and the next load works. The stand-in engine build's factory never resolves.
test('a stage engine that never starts fails the load after timeoutMs with an engine error; the next load works', { timeout: 60000 }, async () => {
  const { mkdtempSync, writeFileSync, rmSync, copyFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(path.join(tmpdir(), 'owlet-stuck-'));
  try {
    writeFileSync(path.join(dir, 'owlet-st.js'), 'module.exports = () => new Promise(() => {});\n');
    copyFileSync(path.join(wasmBase, 'owlet-st.wasm'), path.join(dir, 'owlet-st.wasm'));
    const backend = new MemoryBackend();
    await (await load({ backend, singleThread: true })).unload(); // fill the cache: no copy can be what stalls
    const before = Owlet._liveWorkers;
    const t0 = Date.now();
    const err = await load({ backend, singleThread: true, build: 'owlet-st', wasmBase: dir + '/', timeoutMs: 800 })
      .then(() => null, (e) => e);
    const ms = Date.now() - t0;
    assert.ok(err && err.code === 'engine', String(err));
    assert.match(err.message, /stalled: starting stage 0's engine \(owlet-st\.js, 1 thread\) did not answer in 0\.8 s/);
    assert.ok(ms < 10000, `the load failed after ${ms} ms`);
    assert.equal(Owlet._liveWorkers, before, 'engine workers left after the stalled start');
    const ok = await load({ backend, singleThread: true });
    try {
      const c = ok.chat();
      await c.addImage(img);
      assert.equal(await answer(c), plainText);
    } finally { await ok.unload(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
