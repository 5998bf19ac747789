// Chunk store: download, verification, resume, faults, versions — in Node with
// the memory backend against a local http server that counts and breaks requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import {
  parseManifest, loadManifest, ensureChunks, readChunks, MemoryBackend, OwletError, cache,
} from '../../wasm_glue/store.mjs';

const sha = (b) => createHash('sha256').update(b).digest('hex');

function makeModel(size, chunkSize, seed = 1) {
  const data = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = x >>> 24; }
  const chunks = [];
  for (let off = 0, i = 0; off < size; off += chunkSize, i++) {
    const part = data.subarray(off, Math.min(size, off + chunkSize));
    chunks.push({ offset: off, size: part.length, sha256: sha(part), url: `chunk.${i}.bin`, bytes: part });
  }
  const manifest = {
    id: 'test-model', name: 'test model', total_size: size, sha256: sha(data), chunk_size: chunkSize,
    chunks: chunks.map(({ bytes, ...c }) => c),
  };
  return { data, chunks, manifest };
}

// A server whose behaviour each test steers through `srv.hooks`.
async function startServer(model) {
  const srv = { requests: [], hooks: {} };
  srv.server = http.createServer((req, res) => {
    const path = req.url.split('?')[0].slice(1);
    srv.requests.push(path);
    const h = srv.hooks;
    if (h.fail && h.fail(path)) { res.writeHead(500); res.end('boom'); return; }
    if (path === 'manifest.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(h.manifest || model.manifest));
      return;
    }
    const m = /^chunk\.(\d+)\.bin$/.exec(path);
    const c = m && (h.chunks || model.chunks)[Number(m[1])];
    if (!c) { res.writeHead(404); res.end(); return; }
    let body = Buffer.from(c.bytes);
    if (h.corrupt && h.corrupt(path)) { body = Buffer.from(body); body[0] ^= 0xff; }
    if (h.truncate && h.truncate(path)) body = body.subarray(0, body.length >> 1);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  await new Promise((r) => srv.server.listen(0, '127.0.0.1', r));
  srv.url = `http://127.0.0.1:${srv.server.address().port}/manifest.json`;
  srv.close = () => new Promise((r) => srv.server.close(r));
  return srv;
}

async function assemble(man, backend) {
  const out = new Uint8Array(man.totalSize);
  await readChunks(man, { backend, dest: (off, b) => out.set(b, off) });
  return out;
}

const chunkReqs = (srv) => srv.requests.filter((p) => p.startsWith('chunk.'));

test('downloads, verifies and assembles every chunk; a second run fetches nothing', async () => {
  const model = makeModel(100_003, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    const events = [];
    const r1 = await ensureChunks(man, { backend, onProgress: (p) => events.push(p) });
    assert.equal(r1.fetched, model.chunks.length);
    assert.deepEqual(await assemble(man, backend), model.data);
    const last = events.at(-1);
    assert.equal(last.bytesDone, 100_003);
    assert.equal(last.chunksDone, model.chunks.length);
    srv.requests.length = 0;
    const r2 = await ensureChunks(man, { backend });
    assert.equal(r2.fetched, 0);
    assert.equal(chunkReqs(srv).length, 0);
    assert.deepEqual((await cache.list(backend)).map((m) => m.id), ['test-model']);
  } finally { await srv.close(); }
});

test('resumes after an interruption fetching only the missing chunks', async () => {
  const model = makeModel(64 * 1024, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    srv.hooks.fail = (p) => /^chunk\.(1[0-5])\.bin$/.test(p); // the server "dies" for the last 6
    await assert.rejects(ensureChunks(man, { backend, retries: 1, backoffMs: 1, concurrency: 1 }));
    const stored = (await backend.keys('test-model/')).length;
    assert.equal(stored, 10);
    srv.hooks = {};
    srv.requests.length = 0;
    const r = await ensureChunks(man, { backend });
    assert.equal(r.fetched, 6);
    assert.deepEqual(chunkReqs(srv).sort(), [10, 11, 12, 13, 14, 15].map((i) => `chunk.${i}.bin`).sort());
    assert.deepEqual(await assemble(man, backend), model.data);
  } finally { await srv.close(); }
});

test('a corrupted chunk is detected, never stored, and refetched', async () => {
  const model = makeModel(20_000, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    let corrupted = 0;
    srv.hooks.corrupt = (p) => p === 'chunk.2.bin' && corrupted++ === 0;
    const origPut = backend.put.bind(backend);
    backend.put = async (key, rec) => { assert.equal(sha(rec.bytes), man.chunks[Number(key.split('/')[1])].sha256); return origPut(key, rec); };
    await ensureChunks(man, { backend, backoffMs: 1 });
    assert.equal(srv.requests.filter((p) => p === 'chunk.2.bin').length, 2);
    assert.deepEqual(await assemble(man, backend), model.data);
  } finally { await srv.close(); }
});

test('a corrupted chunk that never heals fails with bad_chunk', async () => {
  const model = makeModel(8192, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    srv.hooks.corrupt = (p) => p === 'chunk.1.bin';
    await assert.rejects(ensureChunks(man, { backend, retries: 2, backoffMs: 1 }), (e) => e instanceof OwletError && e.code === 'bad_chunk');
    assert.equal(await backend.get('test-model/1'), null);
  } finally { await srv.close(); }
});

test('a chunk that fails its hash is fetched exactly twice (one retry), then the download stops with bad_chunk', async () => {
  const model = makeModel(4 * 4096, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    srv.hooks.corrupt = (p) => p === 'chunk.1.bin';
    const retries = [];
    await assert.rejects(ensureChunks(man, { backend, backoffMs: 1, concurrency: 1,
      onProgress: (p) => { if (p.phase === 'retry') retries.push(p); } }),
    (e) => e instanceof OwletError && e.code === 'bad_chunk' && /chunk 1 .*: sha256 [0-9a-f]{64}, want [0-9a-f]{64} \(the check failed twice\)/.test(e.message));
    assert.equal(srv.requests.filter((p) => p === 'chunk.1.bin').length, 2, 'one retry, not retries + 1');
    assert.deepEqual(retries.map((r) => [r.chunk, r.attempt, r.attempts]), [[1, 2, 7]]);
    assert.equal(srv.requests.filter((p) => p === 'chunk.2.bin').length, 0, 'the download stopped at the bad chunk');
  } finally { await srv.close(); }
});

test('a retry is reported before its wait: chunk, attempt k of n, waitMs, error; none after the load failed', async () => {
  const model = makeModel(4 * 4096, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    srv.hooks.fail = (p) => p === 'chunk.2.bin';
    const seen = [];
    let failed = false;
    await assert.rejects(ensureChunks(man, { backend, retries: 3, backoffMs: 4, concurrency: 4,
      onProgress: (p) => { assert.equal(failed, false, 'progress after the rejection'); seen.push(p); } }),
    (e) => e instanceof OwletError && e.code === 'http' && /chunk\.2\.bin: HTTP 500/.test(e.message));
    failed = true;
    const r = seen.filter((p) => p.phase === 'retry');
    assert.deepEqual(r.map((p) => [p.chunk, p.attempt, p.attempts]), [[2, 2, 4], [2, 3, 4], [2, 4, 4]]);
    for (const [i, p] of r.entries()) {
      assert.ok(p.waitMs >= 2 * 2 ** i && p.waitMs <= 4 * 2 ** i, `wait ${p.waitMs} ms for retry ${i}`);
      assert.match(p.error, /HTTP 500/);
      assert.equal(p.chunksTotal, 4);
    }
    assert.equal(srv.requests.filter((p) => p === 'chunk.2.bin').length, 4);
    await new Promise((res) => setTimeout(res, 50)); // nothing may report after the rejection
    assert.equal((await backend.keys('test-model/')).length, 3, 'the good chunks are kept');
  } finally { await srv.close(); }
});

test('a server failing 30% of requests still completes', async () => {
  const model = makeModel(200_000, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    let n = 0;
    srv.hooks.fail = (p) => p !== 'manifest.json' && (++n * 7919) % 10 < 3; // deterministic 30%
    srv.hooks.truncate = (p) => p === 'chunk.3.bin' && n % 2 === 0;
    await ensureChunks(man, { backend, backoffMs: 1, retries: 12 });
    assert.deepEqual(await assemble(man, backend), model.data);
    assert.ok(chunkReqs(srv).length > model.chunks.length);
  } finally { await srv.close(); }
});

test('a new manifest version refetches only the chunks that changed', async () => {
  const v1 = makeModel(40_960, 4096);
  const srv = await startServer(v1);
  try {
    const backend = new MemoryBackend();
    await ensureChunks(await loadManifest(srv.url), { backend });
    const v2 = makeModel(40_960, 4096);
    v2.data.set(v1.data);
    v2.data[5000] ^= 1; // chunk 1 changes
    v2.data[40_000] ^= 1; // chunk 9 changes
    const m2 = makeModelFrom(v2.data, 4096);
    srv.hooks.manifest = m2.manifest;
    srv.hooks.chunks = m2.chunks;
    srv.requests.length = 0;
    const man2 = await loadManifest(srv.url);
    const r = await ensureChunks(man2, { backend });
    assert.equal(r.fetched, 2);
    assert.deepEqual(chunkReqs(srv).sort(), ['chunk.1.bin', 'chunk.9.bin']);
    assert.deepEqual(await assemble(man2, backend), v2.data);
  } finally { await srv.close(); }
});

function makeModelFrom(data, chunkSize) {
  const m = makeModel(data.length, chunkSize);
  m.data = data;
  m.chunks = m.chunks.map((c) => {
    const part = data.subarray(c.offset, c.offset + c.size);
    return { ...c, bytes: part, sha256: sha(part) };
  });
  m.manifest.chunks = m.chunks.map(({ bytes, ...c }) => c);
  m.manifest.sha256 = sha(data);
  return m;
}

test('abort stops a download promptly with AbortError', async () => {
  const model = makeModel(400_000, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    const man = await loadManifest(srv.url);
    const ac = new AbortController();
    let seen = 0;
    const p = ensureChunks(man, { backend, signal: ac.signal, concurrency: 2,
      onProgress: (e) => { if (e.phase === 'download' && ++seen === 5) ac.abort(); } });
    await assert.rejects(p, (e) => e.name === 'AbortError');
    assert.ok((await backend.keys('test-model/')).length < model.chunks.length);
  } finally { await srv.close(); }
});

test('manifests are validated: origin, offsets, hashes, sizes, ids', () => {
  const model = makeModel(8192, 4096);
  const url = 'https://models.example/m/manifest.json';
  const ok = parseManifest(model.manifest, url);
  assert.equal(ok.chunks[1].url, 'https://models.example/m/chunk.1.bin');
  const bad = (mut, re) => {
    const m = structuredClone(model.manifest);
    mut(m);
    assert.throws(() => parseManifest(m, url), (e) => e instanceof OwletError && e.code === 'bad_manifest' && re.test(e.message));
  };
  bad((m) => { m.chunks[1].url = 'https://evil.example/x.bin'; }, /leaves the manifest's origin/);
  bad((m) => { m.chunks[1].offset = 4095; }, /offset 4095, want 4096/);
  bad((m) => { m.chunks[0].sha256 = 'xyz'; }, /sha256/);
  bad((m) => { m.chunks[0].size = -1; }, /size/);
  bad((m) => { m.total_size = 9000; }, /cover 8192 bytes/);
  bad((m) => { m.id = '../../etc'; }, /model id/);
  bad((m) => { m.chunks = []; }, /non-empty/);
  assert.doesNotThrow(() => {
    const m = structuredClone(model.manifest);
    m.chunks[1].url = 'https://cdn.example/x.bin';
    parseManifest(m, url, { allowedOrigins: ['https://cdn.example'] });
  });
});

test('a manifest that is not JSON or too large is refused in words', async () => {
  const model = makeModel(4096, 4096);
  const srv = await startServer(model);
  try {
    srv.hooks.manifest = 'not json';
    await assert.rejects(loadManifest(srv.url), (e) => e.code === 'bad_manifest');
    srv.hooks.fail = (p) => p === 'manifest.json';
    await assert.rejects(loadManifest(srv.url), (e) => e.code === 'http' && /HTTP 500/.test(e.message));
  } finally { await srv.close(); }
});

test('cache.delete removes a model and its chunks', async () => {
  const model = makeModel(8192, 4096);
  const srv = await startServer(model);
  try {
    const backend = new MemoryBackend();
    await ensureChunks(await loadManifest(srv.url), { backend });
    assert.equal((await cache.usage(backend)).bytes, 8192);
    await cache.delete('test-model', backend);
    assert.equal((await backend.keys('test-model/')).length, 0);
    assert.deepEqual(await cache.list(backend), []);
  } finally { await srv.close(); }
});
