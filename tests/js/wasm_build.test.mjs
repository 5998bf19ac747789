// The wasm engine builds load in Node through their ES entries and report
// the features they were built with.
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('threaded build has SIMD128 and pthreads', async () => {
  const { default: createOwlet } = await import('../../build/wasm/owlet.mjs');
  const m = await createOwlet();
  assert.equal(m._owl_wasm_has_simd(), 1);
  assert.ok(m._owl_wasm_max_threads() > 1);
  // pthread builds run on a SharedArrayBuffer-backed memory
  assert.ok(m.HEAPU8.buffer instanceof SharedArrayBuffer);
  if (m.PThread) m.PThread.terminateAllThreads();
});

test('single-thread build has SIMD128 and no threads', async () => {
  const { default: createOwlet } = await import('../../build/wasm/owlet-st.mjs');
  const m = await createOwlet();
  assert.equal(m._owl_wasm_has_simd(), 1);
  assert.equal(m._owl_wasm_max_threads(), 1);
  assert.ok(!(m.HEAPU8.buffer instanceof SharedArrayBuffer));
});
