// The Origin Private File System chunk store (wasm_glue/store.mjs, OpfsBackend) in
// Node, on an in-memory stand-in for the OPFS handles with the browser's write rule
// (a writable's bytes become the file only at close()). What the browsers do with it
// (the engine worker's SyncAccessHandle read, a reload from OPFS) is tested in
// tests/browser/web.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { OpfsBackend, MemoryBackend, ensureChunks, readChunks, parseManifest, cache } from '../../wasm_glue/store.mjs';

const sha = (b) => createHash('sha256').update(b).digest('hex');

class FakeFile {
  constructor(name) { this.kind = 'file'; this.name = name; this.data = new Uint8Array(0); }
  async getFile() {
    if (this.gone) throw Object.assign(new Error('gone'), { name: 'NotFoundError' });
    return new File([this.data], this.name);
  }
  async createWritable() {
    const parts = [];
    const f = this;
    return {
      async write(b) { if (f.failWrites) throw new Error('disk full'); parts.push(new Uint8Array(b)); },
      async close() { f.data = new Uint8Array(Buffer.concat(parts)); },
      async abort() {},
    };
  }
}

class FakeDir {
  constructor(name) { this.kind = 'directory'; this.name = name; this.children = new Map(); }
  async getDirectoryHandle(name, o = {}) {
    let d = this.children.get(name);
    if (!d) {
      if (!o.create) throw Object.assign(new Error(`no ${name}`), { name: 'NotFoundError' });
      d = new FakeDir(name);
      this.children.set(name, d);
    }
    return d;
  }
  async getFileHandle(name, o = {}) {
    let f = this.children.get(name);
    if (!f) {
      if (!o.create) throw Object.assign(new Error(`no ${name}`), { name: 'NotFoundError' });
      f = new FakeFile(name);
      f.failWrites = this.failWrites;
      this.children.set(name, f);
    }
    return f;
  }
  async removeEntry(name) {
    const c = this.children.get(name);
    if (!c) throw Object.assign(new Error(`no ${name}`), { name: 'NotFoundError' });
    c.gone = true;
    this.children.delete(name);
  }
  async *entries() { for (const e of [...this.children.entries()]) yield e; }
}

function model(n = 5, chunk = 1000, seed = 7) {
  const data = new Uint8Array(n * chunk - 123);
  let x = seed;
  for (let i = 0; i < data.length; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = x >>> 24; }
  const chunks = [];
  for (let off = 0, i = 0; off < data.length; off += chunk, i++) {
    const part = data.subarray(off, Math.min(data.length, off + chunk));
    chunks.push({ offset: off, size: part.length, sha256: sha(part), url: `chunk.${i}.bin`, bytes: part });
  }
  const raw = { id: 'opfs-model', name: 'opfs model', total_size: data.length, sha256: sha(data), chunk_size: chunk,
    chunks: chunks.map(({ bytes, ...c }) => c) };
  const manifest = parseManifest(raw, 'http://example.test/m/manifest.json');
  const requests = [];
  const fetch = async (url) => {
    const i = Number(/chunk\.(\d+)\.bin/.exec(url)[1]);
    requests.push(i);
    return new Response(chunks[i].bytes);
  };
  return { data, chunks, manifest, fetch, requests };
}

async function assemble(manifest, backend) {
  const out = new Uint8Array(manifest.totalSize);
  await readChunks(manifest, { backend, dest: (off, b) => out.set(b, off) });
  return out;
}

const names = (root, id) => [...root.children.get(`m-${id}`).children.keys()].sort();

test('chunks are stored as <index>-<sha256> files, read back equal, and a second run fetches nothing', async () => {
  const m = model();
  const root = new FakeDir('owlet');
  const b = new OpfsBackend(root, new MemoryBackend());
  await ensureChunks(m.manifest, { backend: b, fetch: m.fetch });
  assert.deepEqual(names(root, m.manifest.id), m.chunks.map((c, i) => `${i}-${c.sha256}`).sort());
  assert.deepEqual(await assemble(m.manifest, b), m.data);
  assert.deepEqual((await b.keys(`${m.manifest.id}/`)).sort(), m.chunks.map((_, i) => `${m.manifest.id}/${i}`).sort());
  const again = new OpfsBackend(root, b.legacy); // a new page: the listing is read from the directory
  m.requests.length = 0;
  const r = await ensureChunks(m.manifest, { backend: again, fetch: m.fetch });
  assert.equal(r.fetched, 0);
  assert.deepEqual(m.requests, []);
  assert.deepEqual(await assemble(m.manifest, again), m.data);
});

test('the engine gets each range as a Blob slice carrying the file handle and the offset into the file', async () => {
  const m = model();
  const root = new FakeDir('owlet');
  const b = new OpfsBackend(root, new MemoryBackend());
  await ensureChunks(m.manifest, { backend: b, fetch: m.fetch });
  const got = [];
  await readChunks(m.manifest, { backend: b, keepBlobs: true, start: 1500, end: 3200,
    dest: async (off, piece) => got.push({ off, size: piece.size, at: piece.at, name: piece.fileHandle.name,
      bytes: new Uint8Array(await piece.arrayBuffer()) }) });
  assert.deepEqual(got.map((g) => [g.off, g.size, g.at, g.name.split('-')[0]]),
    [[0, 500, 500, '1'], [500, 1000, 0, '2'], [1500, 200, 0, '3']]);
  for (const g of got) assert.deepEqual(g.bytes, m.data.subarray(1500 + g.off, 1500 + g.off + g.size));
});

test('a write cut short leaves no chunk: it is fetched again', async () => {
  const m = model();
  const root = new FakeDir('owlet');
  const b = new OpfsBackend(root, new MemoryBackend());
  await ensureChunks(m.manifest, { backend: b, fetch: m.fetch });
  // chunk 2's file as a write that never reached close(): empty
  const d = root.children.get(`m-${m.manifest.id}`);
  d.children.get(`2-${m.chunks[2].sha256}`).data = new Uint8Array(0);
  await b.legacy.deleteMeta(m.manifest.id); // as after an interrupted download: no model record yet
  const fresh = new OpfsBackend(root, b.legacy);
  assert.equal(await fresh.get(`${m.manifest.id}/2`), null);
  m.requests.length = 0;
  await ensureChunks(m.manifest, { backend: fresh, fetch: m.fetch });
  assert.deepEqual(m.requests, [2]);
  assert.deepEqual(await assemble(m.manifest, fresh), m.data);
});

test('a failed write is a storage error and leaves nothing readable', async () => {
  const m = model();
  const root = new FakeDir('owlet');
  const b = new OpfsBackend(root, new MemoryBackend());
  (await root.getDirectoryHandle(`m-${m.manifest.id}`, { create: true })).failWrites = true;
  await assert.rejects(ensureChunks(m.manifest, { backend: b, fetch: m.fetch, retries: 0 }),
    (e) => e.code === 'storage' && /disk full/.test(e.message));
  assert.equal(await b.get(`${m.manifest.id}/0`), null);
});

test('chunks an earlier version kept in IndexedDB are read from there (no download) and moved on rewrite; delete removes both', async () => {
  const m = model();
  const legacy = new MemoryBackend();
  await ensureChunks(m.manifest, { backend: legacy, fetch: m.fetch }); // the old store
  const root = new FakeDir('owlet');
  const b = new OpfsBackend(root, legacy);
  m.requests.length = 0;
  assert.equal((await ensureChunks(m.manifest, { backend: b, fetch: m.fetch })).fetched, 0);
  assert.deepEqual(m.requests, []);
  assert.deepEqual(await assemble(m.manifest, b), m.data);
  // a chunk written now goes to OPFS and leaves the old store
  await b.put(`${m.manifest.id}/1`, { sha256: m.chunks[1].sha256, bytes: m.chunks[1].bytes });
  assert.equal(await legacy.get(`${m.manifest.id}/1`), null);
  assert.ok((await b.get(`${m.manifest.id}/1`)).handle);
  await cache.delete(m.manifest.id, b);
  assert.deepEqual(await b.keys(`${m.manifest.id}/`), []);
  assert.deepEqual(await legacy.keys(`${m.manifest.id}/`), []);
  assert.equal(await b.getMeta(m.manifest.id), null);
  assert.ok(!root.children.has(`m-${m.manifest.id}`), 'the model directory is removed');
});

test('a new version of a chunk replaces the old file (one file per index)', async () => {
  const m = model();
  const root = new FakeDir('owlet');
  const b = new OpfsBackend(root, new MemoryBackend());
  await ensureChunks(m.manifest, { backend: b, fetch: m.fetch });
  const other = new Uint8Array(m.chunks[3].bytes).reverse();
  await b.put(`${m.manifest.id}/3`, { sha256: sha(other), bytes: other });
  const n = names(root, m.manifest.id).filter((x) => x.startsWith('3-'));
  assert.deepEqual(n, [`3-${sha(other)}`]);
  assert.equal((await b.get(`${m.manifest.id}/3`)).sha256, sha(other));
});

test('no OPFS (Node): OpfsBackend.open says so with null', async () => {
  assert.equal(await OpfsBackend.open(new MemoryBackend()), null);
});
