// What owlet does differently per browser engine, checked in Node with stand-ins
// for the browser objects (the browser tests in tests/browser/ run the real
// engines): the thread choice (wasm_glue/threads.mjs), a persist() that never
// answers (Firefox's permission prompt), and an IndexedDB that refuses Blob values
// the way WebKit's automation session does (wasm_glue/store.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { defaultThreads, threadSupport } from '../../wasm_glue/threads.mjs';
import { IdbBackend, MemoryBackend, OwletError, ensureChunks, parseManifest } from '../../wasm_glue/store.mjs';

test('threads need SharedArrayBuffer, not cross-origin isolation alone', () => {
  const sab = SharedArrayBuffer;
  const chromium = threadSupport(true, { crossOriginIsolated: true, SharedArrayBuffer: sab,
    navigator: { hardwareConcurrency: 2, vendor: 'Google Inc.' } });
  assert.equal(chromium.threaded, true);
  assert.equal(chromium.build, 'owlet');
  assert.equal(chromium.defaultThreads, 2);
  // WebKitGTK 2.50: isolated, no SharedArrayBuffer
  const webkit = threadSupport(true, { crossOriginIsolated: true, navigator: { hardwareConcurrency: 4, vendor: 'Apple Computer, Inc.' } });
  assert.equal(webkit.threaded, false);
  assert.equal(webkit.build, 'owlet-st');
  assert.match(webkit.reason, /no SharedArrayBuffer/);
  const plain = threadSupport(true, { crossOriginIsolated: false, SharedArrayBuffer: sab, navigator: {} });
  assert.equal(plain.threaded, false);
  assert.match(plain.reason, /not cross-origin isolated/);
  assert.equal(threadSupport(false, { SharedArrayBuffer: sab }).threaded, true, 'Node');
});

test('default threads: hardwareConcurrency up to 8; a WebKit count of 4 or less gives 2', () => {
  assert.equal(defaultThreads({ hardwareConcurrency: 2, vendor: 'Google Inc.' }), 2);
  assert.equal(defaultThreads({ hardwareConcurrency: 16, vendor: '' }), 8);
  assert.equal(defaultThreads({ hardwareConcurrency: 4, vendor: 'Apple Computer, Inc.' }), 2);
  assert.equal(defaultThreads({ hardwareConcurrency: 1, vendor: 'Apple Computer, Inc.' }), 1);
  assert.equal(defaultThreads({ hardwareConcurrency: 8, vendor: 'Apple Computer, Inc.' }), 8);
  assert.equal(defaultThreads(undefined), 4);
});

const sha = (b) => createHash('sha256').update(b).digest('hex');
function oneChunkModel() {
  const bytes = new Uint8Array(1000).map((_, i) => (i * 7) & 255);
  const manifest = parseManifest({ id: 'm', name: 'm', total_size: 1000, chunks: [{ offset: 0, size: 1000, sha256: sha(bytes), url: 'c.bin' }] },
    'http://example.test/manifest.json');
  const fetch = async (url) => ({ ok: true, status: 200, url, redirected: false, headers: { get: () => null },
    arrayBuffer: async () => bytes.slice().buffer });
  return { bytes, manifest, fetch };
}

test('a persist() that never answers (Firefox asks the user) does not hold up the download', async () => {
  const { manifest, fetch } = oneChunkModel();
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  let asked = 0;
  Object.defineProperty(globalThis, 'navigator', { configurable: true, value: { storage: {
    persist: () => { asked++; return new Promise(() => {}); },
    estimate: async () => ({ quota: 1e9, usage: 0 }),
  } } });
  try {
    const r = await Promise.race([ensureChunks(manifest, { backend: new MemoryBackend(), fetch }),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 5000))]);
    assert.notEqual(r, 'hung', 'the download waited for persist()');
    assert.equal(r.fetched, 1);
    assert.equal(asked, 1, 'persistent storage is still asked for');
  } finally {
    if (saved) Object.defineProperty(globalThis, 'navigator', saved); else delete globalThis.navigator;
  }
});

/** A minimal IndexedDB whose puts fail as WebKit's do: the request's error event reaches
 * the transaction's onerror while transaction.error is still null, then the transaction aborts. */
function fakeIndexedDB(refuse) {
  const data = new Map();
  const later = (f) => setTimeout(f, 0);
  const db = {
    objectStoreNames: { contains: () => true },
    transaction() {
      const t = { error: null };
      let failed = false;
      const done = () => later(() => { if (!failed && t.oncomplete) t.oncomplete(); });
      t.objectStore = () => ({
        put(value, key) {
          const req = { error: null };
          later(() => {
            const why = refuse(value);
            if (!why) { data.set(key, value); req.result = key; if (req.onsuccess) req.onsuccess(); done(); return; }
            failed = true;
            req.error = why;
            if (req.onerror) req.onerror({ target: req });
            if (t.onerror) t.onerror({ target: req });
            t.error = req.error;
            if (t.onabort) t.onabort();
          });
          return req;
        },
        get(key) { const req = {}; later(() => { req.result = data.get(key); if (req.onsuccess) req.onsuccess(); done(); }); return req; },
      });
      return t;
    },
  };
  return { data, open() { const r = {}; later(() => { r.result = db; r.onsuccess(); }); return r; } };
}

const blobRefusal = () => new DOMException('Error preparing Blob/File data to be stored in object store', 'UnknownError');

// (order matters: after the first refusal the module stores plain bytes for the rest of the realm)
test('IndexedDB that refuses Blob values: the chunk is stored as bytes instead', async () => {
  const idb = fakeIndexedDB((v) => (v.bytes instanceof Blob ? blobRefusal() : null));
  globalThis.indexedDB = idb;
  try {
    const b = new IdbBackend('t1');
    const bytes = new Uint8Array([1, 2, 3, 4]);
    await b.put('m/0', { sha256: 'x', bytes });
    const v = idb.data.get('m/0');
    assert.ok(v.bytes instanceof Uint8Array, `stored ${v.bytes && v.bytes.constructor.name}`);
    assert.deepEqual([...v.bytes], [1, 2, 3, 4]);
  } finally { delete globalThis.indexedDB; }
});

test('an IndexedDB failure names the request\'s own error, not the transaction\'s null one', async () => {
  globalThis.indexedDB = fakeIndexedDB(() => blobRefusal());
  try {
    const err = await new IdbBackend('t2').put('m/0', { sha256: 'x', bytes: new Uint8Array(4) }).then(() => null, (e) => e);
    assert.ok(err instanceof OwletError);
    assert.equal(err.code, 'storage');
    assert.equal(err.message, 'IndexedDB error: UnknownError: Error preparing Blob/File data to be stored in object store');
  } finally { delete globalThis.indexedDB; }
  globalThis.indexedDB = fakeIndexedDB(() => new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
  try {
    const err = await new IdbBackend('t3').put('m/0', { sha256: 'x', bytes: new Uint8Array(4) }).then(() => null, (e) => e);
    assert.equal(err.code, 'quota', err.message);
  } finally { delete globalThis.indexedDB; }
});
