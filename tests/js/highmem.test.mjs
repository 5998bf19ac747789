// Pointers above 2 GiB of wasm memory: a 7B stage holds ~1.7 GB of weights, so the header
// buffer, the KV cache and every scratch buffer after it live above 2^31, where wasm32 hands
// pointers to JS as negative i32s. The engine worker must use them unsigned (it once threw
// "offset is out of bounds" on the first header chunk of a 5 GB model).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const wasmBase = process.env.OWLET_WASM || path.join(root, 'build/wasm');

function worker() {
  const w = new Worker(new URL('../../wasm_glue/engine-worker.mjs', import.meta.url));
  let next = 1;
  const pending = new Map();
  w.on('message', (m) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value); else p.reject(Object.assign(new Error(m.error.message), m.error));
  });
  const call = (op, args) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    w.postMessage({ id, op, args });
  });
  return { call, end: () => w.terminate() };
}

test('engine worker: buffers above 2 GiB of wasm memory are usable from JS', { timeout: 60000 }, async () => {
  const w = worker();
  try {
    await w.call('init', { engineUrl: pathToFileURL(path.join(wasmBase, 'owlet-st.js')).href, threads: 1 });
    // a stage's weights, then its header: the next allocation lands above 2^31
    // (one malloc cannot exceed 2 GiB: sbrk takes a signed increment)
    await w.call('alloc', { size: 1900 * 1048576 });
    await w.call('alloc_header', { size: 256 * 1048576 });
    const { wasmMemoryBytes } = await w.call('stats');
    assert.ok(wasmMemoryBytes > 2 ** 31, `wasm memory ${wasmMemoryBytes}`);
    await w.call('chunk', { offset: 256 * 1048576 - 16, bytes: new Uint8Array(16).fill(9), header: true });
    await assert.rejects(w.call('chunk', { offset: 256 * 1048576 - 8, bytes: new Uint8Array(16), header: true }), /outside/);
    // bytes copied into a buffer malloc'd above 2 GiB, then an engine error message read back
    await assert.rejects(w.call('image', { encoded: new Uint8Array(64).fill(1) }),
      (e) => e.code !== 'engine' && !/out of bounds/.test(e.message) && e.message.length > 0);
  } finally { await w.end(); }
});
