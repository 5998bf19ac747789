// limits.test.mjs - bad input, limits and faults on the JS side (Node): every
// hostile manifest, transport fault, image, prompt and option gives an
// OwletError with a code and words, nothing unverified is stored, and after
// each error the model still answers. docs/SECURITY.md lists these cases.
//
//   node --test tests/js/limits.test.mjs   (after make native wasm)
//
// The out-of-memory cases use a single-thread engine linked with
// -sMAXIMUM_MEMORY=128MB into build/reliab/wasm-128m/ (relinked here from
// build/wasm-st/ objects when missing or older than build/wasm/owlet-st.js;
// OWLET_WASM_SMALL=dir to use another build).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ReadableStream } from 'node:stream/web';
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';

import { LIMITS, Owlet, OwletError } from '../../wasm_glue/owlet.mjs';
import { MAX_CHUNKS, MAX_MANIFEST_BYTES, MemoryBackend, ensureChunks, loadManifest, parseManifest, sha256Hex }
  from '../../wasm_glue/store.mjs';
import { makeFixtures, oracle as fx, out, root } from '../browser/fixtures.mjs';

const wasmBase = path.resolve(root, process.env.OWLET_WASM || 'build/wasm') + '/';
const IMG = path.join(fx, 'img1.png');
const tmp = mkdtempSync(path.join(tmpdir(), 'owlet-limits-'));
const isErr = (code, re) => (e) => {
  assert.ok(e instanceof OwletError, `want OwletError, got ${e && e.name}: ${e && e.message}`);
  assert.equal(e.code, code, e.message);
  if (re) assert.match(e.message, re);
  return true;
};

// ---------------------------------------------------------------- the 128 MB engine

function smallEngine() {
  if (process.env.OWLET_WASM_SMALL) return path.resolve(root, process.env.OWLET_WASM_SMALL) + '/';
  const dir = path.join(root, 'build/reliab/wasm-128m');
  const js = path.join(dir, 'owlet-st.js'), ref = path.join(root, 'build/wasm/owlet-st.js');
  if (!existsSync(js) || statSync(js).mtimeMs < statSync(ref).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    const objs = [];
    const mods = readdirSync(path.join(root, 'build/wasm-st/src')).map((d) => `src/${d}`);
    for (const d of [...mods, 'wasm_glue']) {
      const od = path.join(root, 'build/wasm-st', d);
      for (const f of readdirSync(od)) if (f.endsWith('.o')) objs.push(path.join(od, f));
    }
    // the Makefile's link line for build/wasm/owlet-st.js, with a 128 MB ceiling
    execFileSync('emcc', ['-O3', '-msimd128', '-sMODULARIZE=1', '-sEXPORT_NAME=createOwlet', '-sENVIRONMENT=web,worker,node',
      '-sEXPORTED_RUNTIME_METHODS=ccall,cwrap,UTF8ToString,stringToUTF8,lengthBytesUTF8', '-sEXPORTED_FUNCTIONS=_malloc,_free',
      '-Wno-pthreads-mem-growth', '-sALLOW_MEMORY_GROWTH=1', '-sMAXIMUM_MEMORY=128MB', '-sINITIAL_MEMORY=64MB',
      '-sTOTAL_STACK=1MB', '-o', js, ...objs], { stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, NODE_PATH: '/usr/share/nodejs' } });
  }
  return dir + '/';
}

// ---------------------------------------------------------------- helpers

const load = (o = {}) => Owlet.load(path.join(out, 'one', 'manifest.json'),
  { wasmBase, backend: new MemoryBackend(), kvType: 'f32', singleThread: true, ...o });

async function answer(chat, q = 'Describe the image.', n = 4, o = {}) {
  let t = '';
  for await (const p of chat.ask(q, { maxTokens: n, ...o })) t += p;
  return t;
}

/** A fake fetch Response (works with and without Node's global fetch). */
function fakeRes({ status = 200, body = new Uint8Array(0), cl, url, enc, stallBody = false, signal, pieces = 1 }) {
  const headers = new Map();
  if (cl !== undefined) headers.set('content-length', String(cl));
  if (enc) headers.set('content-encoding', enc);
  let pulled = 0;
  const stream = new ReadableStream({
    start(c) { if (signal) signal.addEventListener('abort', () => c.error(Object.assign(new Error('aborted'), { name: 'AbortError' }))); },
    pull(c) {
      if (stallBody) return new Promise(() => {});
      const step = Math.ceil(body.byteLength / pieces) || 1;
      if (pulled >= body.byteLength) { c.close(); return; }
      c.enqueue(body.slice(pulled, pulled + step));
      pulled += step;
    },
  });
  return { ok: status >= 200 && status < 300, status, url: url || 'http://h.test/x', redirected: !!url, body: stream,
    headers: { get: (k) => headers.get(k.toLowerCase()) ?? null },
    arrayBuffer: async () => body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength),
    get pulled() { return pulled; } };
}

/** A two-chunk model served by a fetch stub; fault(name, signal) may replace an answer. */
async function stubModel(fault) {
  const a = new Uint8Array(4096).map((_, i) => i * 7), b = new Uint8Array(1000).map((_, i) => i * 13);
  const raw = { id: 'stub', name: 'stub', file: { size: 5096 }, chunks: [
    { offset: 0, size: 4096, sha256: await sha256Hex(a), url: 'c0.bin' },
    { offset: 4096, size: 1000, sha256: await sha256Hex(b), url: 'c1.bin' }] };
  const m = parseManifest(raw, 'http://h.test/m/manifest.json');
  const files = { 'c0.bin': a, 'c1.bin': b };
  const fetch = async (u, { signal } = {}) => {
    const name = u.split('/').pop();
    const f = fault ? await fault(name, signal, files[name]) : null;
    return f || fakeRes({ body: files[name], cl: files[name].byteLength, url: u });
  };
  return { m, fetch };
}

/** The chunk store after a failed download holds only verified chunks. */
async function storedOk(m, backend) {
  for (const c of m.chunks) {
    const r = await backend.get(`${m.id}/${c.index}`);
    if (r) assert.equal(await sha256Hex(r.bytes), c.sha256, `chunk ${c.index} stored unverified`);
  }
}

/** A PNG of w x h 8-bit RGB (CRCs zero: stb does not check them); idat = the
 * zlib stream, or none (a header only). */
function png(w, h, idat = null) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2;
  const parts = [Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr)];
  if (idat) parts.push(chunk('IDAT', idat));
  parts.push(chunk('IEND', Buffer.alloc(0)));
  return new Uint8Array(Buffer.concat(parts));
}

let owl; // one oracle-A model for the engine cases (n_ctx 64)
before(async () => {
  makeFixtures();
  owl = await load({ nCtx: 64 });
});
after(async () => {
  if (owl) await owl.unload();
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- manifests (hostile model host)

test('hostile manifests are refused with bad_manifest, in words', () => {
  const url = 'https://models.example/owl/manifest.json';
  const good = () => ({ id: 'm', file: { size: 8 }, chunks: [
    { offset: 0, size: 4, sha256: 'a'.repeat(64), url: 'c0.bin' }, { offset: 4, size: 4, sha256: 'b'.repeat(64), url: 'c1.bin' }] });
  parseManifest(good(), url); // the base case is fine
  const cases = [
    ['an array', () => [], /not a JSON object/],
    ['id with a path', (m) => { m.id = '../../etc'; }, /model id/],
    ['negative size', (m) => { m.file.size = -8; }, /total size/],
    ['no chunks', (m) => { m.chunks = []; }, /non-empty array/],
    ['too many chunks', (m) => { m.chunks = new Array(MAX_CHUNKS + 1).fill(m.chunks[0]); }, /more than the limit 100000/],
    ['offset gap', (m) => { m.chunks[1].offset = 5; }, /chunk 1: offset 5, want 4/],
    ['zero-size chunk', (m) => { m.chunks[1].size = 0; }, /chunk 1: size 0 out of range/],
    ['2 GiB chunk', (m) => { m.chunks[1].size = 2 ** 31; }, /out of range/],
    ['hash not hex', (m) => { m.chunks[0].sha256 = 'z'.repeat(64); }, /sha256 is not 64 hex/],
    ['url missing', (m) => { delete m.chunks[0].url; }, /url missing/],
    ['chunk on another origin', (m) => { m.chunks[0].url = 'https://evil.example/c0.bin'; }, /leaves the manifest's origin/],
    ['protocol-relative url', (m) => { m.chunks[0].url = '//evil.example/c0.bin'; }, /leaves the manifest's origin/],
    ['javascript: url', (m) => { m.chunks[0].url = 'javascript:alert(1)'; }, /leaves the manifest's origin/],
    ['data: url', (m) => { m.chunks[0].url = 'data:application/octet-stream,AAAA'; }, /leaves the manifest's origin/],
    ['http downgrade', (m) => { m.chunks[0].url = 'http://models.example/c0.bin'; }, /leaves the manifest's origin/],
    ['chunks short of the size', (m) => { m.file.size = 9; }, /cover 8 bytes, total size is 9/],
  ];
  for (const [what, edit, re] of cases) {
    let m = good();
    const r = edit(m);
    if (r !== undefined) m = r;
    assert.throws(() => parseManifest(m, url), isErr('bad_manifest', re), what);
  }
  // the caller may widen the origins
  const m = good();
  m.chunks[0].url = 'https://cdn.example/c0.bin';
  assert.equal(parseManifest(m, url, { allowedOrigins: ['https://cdn.example'] }).chunks[0].url, 'https://cdn.example/c0.bin');
  // relative URLs resolve against the manifest, not the page
  assert.equal(parseManifest(good(), url).chunks[1].url, 'https://models.example/owl/c1.bin');
});

test('a manifest over 4 MiB is refused before its body is read; a streamed one is cut at the limit', async () => {
  let res;
  const big = new Uint8Array(2 * MAX_MANIFEST_BYTES).fill(32);
  await assert.rejects(loadManifest('http://h.test/manifest.json', { fetch: async () => (res = fakeRes({ body: big, cl: big.byteLength, pieces: 64 })) }),
    isErr('bad_manifest', /more than the limit 4194304/));
  assert.ok(res.pulled <= big.byteLength / 64 + 1, `body not read (${res.pulled} bytes pulled)`);
  await assert.rejects(loadManifest('http://h.test/manifest.json', { fetch: async () => (res = fakeRes({ body: big, pieces: 256 })) }),
    isErr('bad_manifest', /more than the limit/));
  assert.ok(res.pulled < big.byteLength, 'stopped reading at the limit');
  await assert.rejects(loadManifest('http://h.test/manifest.json', { fetch: async () => fakeRes({ body: new TextEncoder().encode('{"a":') }) }),
    isErr('bad_manifest', /not valid JSON/));
  await assert.rejects(loadManifest('http://h.test/manifest.json', { fetch: async () => fakeRes({ status: 404 }) }),
    isErr('http', /HTTP 404/));
  await assert.rejects(loadManifest('http://h.test/manifest.json',
    { fetch: async () => fakeRes({ body: new TextEncoder().encode('{}'), url: 'http://evil.test/manifest.json' }) }),
  isErr('bad_origin', /redirected to another origin \(http:\/\/evil\.test\)/));
});

test('a multi-stage manifest without header_size, or a stage outside the file, is refused before any download', async () => {
  const c = { offset: 0, size: 16, sha256: 'a'.repeat(64), url: 'c.bin' };
  let fetched = 0;
  const fetch = (raw) => async (u) => { if (u.endsWith('.bin')) fetched++; return fakeRes({ body: new TextEncoder().encode(JSON.stringify(raw)) }); };
  const base = { id: 's', file: { size: 16 }, chunks: [c] };
  await assert.rejects(Owlet.load('http://h.test/manifest.json', { fetch: fetch({ ...base, stages: [{}, {}] }), backend: new MemoryBackend() }),
    isErr('bad_manifest', /no file.header_size/));
  await assert.rejects(Owlet.load('http://h.test/manifest.json', { fetch: fetch({ ...base, file: { size: 16, header_size: 4 },
    stages: [{ offset: 4, size: 4, layer_start: 0, layer_end: 1 }, { offset: 8, size: 100, layer_start: 1, layer_end: 2 }] }), backend: new MemoryBackend() }),
  isErr('bad_manifest', /stage 1: byte range 8\+100 outside the file/));
  // bad layer fields (issue 22: layer_start > layer_end went through and the engine answered
  // with format/nomem errors; a string loaded as layer 0): refused as the manifest's fault
  const withLayers = (a, b) => fetch({ ...base, file: { size: 16, header_size: 4 },
    stages: [{ offset: 4, size: 4, ...a }, { offset: 8, size: 8, ...b }] });
  for (const [a, b, re] of [
    [{ layer_start: 1, layer_end: 0 }, { layer_start: 0, layer_end: 2 }, /stage 0: layers 1\.\.0/],
    [{ layer_start: 0, layer_end: 1 }, { layer_start: 1, layer_end: 1 }, /stage 1: layers 1\.\.1/],
    [{ layer_start: 'x', layer_end: 1 }, { layer_start: 1, layer_end: 2 }, /stage 0: layers "x"\.\.1/],
    [{ layer_start: 0, layer_end: 1 }, { layer_start: 0, layer_end: 2 }, /stage 1: layers 0\.\.2, want integers from 1/],
    [{ layer_start: 0, layer_end: 1.5 }, { layer_start: 1.5, layer_end: 2 }, /stage 0: layers 0\.\.1\.5/]]) {
    await assert.rejects(Owlet.load('http://h.test/manifest.json', { fetch: withLayers(a, b), backend: new MemoryBackend() }),
      isErr('bad_manifest', re));
  }
  await assert.rejects(Owlet.load('http://h.test/manifest.json', { fetch: fetch({ ...base, file: { size: 16 } }), budgetMiB: 0.00001,
    backend: new MemoryBackend() }), isErr('limit', /per-instance budget/));
  // 2240 MiB in one stage: under the 3200 MiB budget, but one wasm32 malloc stops below 2 GiB
  const big = Array.from({ length: 70 }, (_, i) => ({ offset: i * 32 * 1048576, size: 32 * 1048576, sha256: 'b'.repeat(64), url: `c${i}.bin` }));
  await assert.rejects(Owlet.load('http://h.test/manifest.json', { fetch: fetch({ id: 'big', file: { size: 70 * 32 * 1048576 }, chunks: big }),
    backend: new MemoryBackend() }), isErr('limit', /stage 0 holds 2240\.0 MiB of weights in one piece, over the 2047 MiB one wasm32 instance/));
  assert.equal(fetched, 0);
});

// ---------------------------------------------------------------- chunk transport faults

test('transport faults give their codes and never store an unverified chunk', async () => {
  const stall = (signal) => new Promise((_, rej) => signal.addEventListener('abort', () => rej(Object.assign(new Error('aborted'), { name: 'AbortError' }))));
  const cases = [
    ['404', (n) => n === 'c1.bin' && fakeRes({ status: 404 }), 'http', /c1\.bin: HTTP 404/],
    ['500', (n) => n === 'c1.bin' && fakeRes({ status: 500 }), 'http', /HTTP 500/],
    ['wrong Content-Length', (n, s, f) => n === 'c1.bin' && fakeRes({ body: f, cl: 999 }), 'truncated', /got 999 bytes, want 1000/],
    ['short body', (n, s, f) => n === 'c1.bin' && fakeRes({ body: f.subarray(0, 500) }), 'truncated', /got 500 bytes, want 1000/],
    ['long body', (n, s, f) => n === 'c1.bin' && fakeRes({ body: new Uint8Array(5000), pieces: 10 }), 'truncated', /want 1000/],
    ['gzip Content-Length ignored, bytes checked', (n, s, f) => n === 'c1.bin' && fakeRes({ body: f.subarray(1), cl: 10, enc: 'gzip' }),
      'truncated', /got 999 bytes/],
    ['corrupt bytes', (n, s, f) => n === 'c1.bin' && fakeRes({ body: f.map((x) => x ^ 1), cl: 1000 }), 'bad_chunk', /chunk 1 .* sha256/],
    ['no answer (timeout)', (n, s) => n === 'c1.bin' && stall(s), 'network', /no complete answer within 50 ms/],
    ['stalled body (timeout)', (n, s, f) => n === 'c1.bin' && fakeRes({ body: f, stallBody: true, signal: s }), 'network', /within 50 ms/],
    ['connection reset', (n) => { if (n === 'c1.bin') throw new TypeError('fetch failed'); }, 'network', /fetch failed after 2 attempts/],
    ['redirect to another origin', (n, s, f) => n === 'c1.bin' && fakeRes({ body: f, url: 'http://evil.test/c1.bin' }), 'bad_origin',
      /redirected to another origin/],
  ];
  for (const [what, fault, code, re] of cases) {
    const { m, fetch } = await stubModel(fault);
    const backend = new MemoryBackend();
    await assert.rejects(ensureChunks(m, { backend, fetch, retries: 1, backoffMs: 1, timeoutMs: 50, concurrency: 1 }), isErr(code, re), what);
    await storedOk(m, backend);
    assert.equal(await backend.get('stub/1'), null, `${what}: the bad chunk is not stored`);
    assert.equal(await backend.getMeta('stub'), null, `${what}: the model is not listed`);
    // the fault heals: the download resumes and fetches only the missing chunk
    const ok = await stubModel(null);
    let n = 0;
    const r = await ensureChunks(m, { backend, fetch: (u, o) => { n++; return ok.fetch(u, o); } });
    assert.deepEqual([r.fetched, r.reused, n], [1, 1, 1], what);
  }
});

test('a redirect to an allowed origin is followed', async () => {
  const { m, fetch } = await stubModel((n, s, f) => fakeRes({ body: f, url: `https://cdn.test/${n}` }));
  await ensureChunks(m, { backend: new MemoryBackend(), fetch, allowedOrigins: ['https://cdn.test'] });
});

// ---------------------------------------------------------------- model and memory

test('verified chunks that are not a GGUF give format; the model host cannot crash the engine', async () => {
  const dir = path.join(tmp, 'junk');
  mkdirSync(dir, { recursive: true });
  const junk = new Uint8Array(8192).map((_, i) => (i * 2654435761) >>> 24);
  writeFileSync(path.join(dir, 'c.bin'), junk);
  const gguf = new Uint8Array(readFileSync(path.join(out, 'one', 'oa.0000.bin')).subarray(0, 8192)); // a GGUF cut short
  writeFileSync(path.join(dir, 'd.bin'), gguf);
  const man = async (name, bytes) => {
    writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ id: name, file: { size: bytes.byteLength },
      chunks: [{ offset: 0, size: bytes.byteLength, sha256: await sha256Hex(bytes), url: `${name === 'junk' ? 'c' : 'd'}.bin` }] }));
    return path.join(dir, `${name}.json`);
  };
  await assert.rejects(Owlet.load(await man('junk', junk), { wasmBase, singleThread: true }), isErr('format', /magic|GGUF/i));
  await assert.rejects(Owlet.load(await man('cut', gguf), { wasmBase, singleThread: true }), (e) =>
    e instanceof OwletError && ['truncated', 'format'].includes(e.code));
});

test('128 MB engine: a model too large for memory gives nomem; a small one then loads and answers', async () => {
  const small = smallEngine();
  const MiB = 1 << 20, n = 200;
  const zeros = new Uint8Array(MiB);
  const sha = await sha256Hex(zeros);
  const raw = { id: 'huge', file: { size: n * MiB }, chunks: Array.from({ length: n }, (_, i) => ({ offset: i * MiB, size: MiB, sha256: sha, url: `h${i}.bin` })) };
  const mf = path.join(tmp, 'huge.json');
  writeFileSync(mf, JSON.stringify(raw));
  // a store that already holds every chunk (nothing to download)
  const backend = new MemoryBackend();
  backend.get = async () => ({ sha256: sha, bytes: zeros });
  await assert.rejects(Owlet.load(mf, { wasmBase: small, backend, singleThread: true }), isErr('nomem', /cannot allocate 200\.0 MiB/));
  const o = await load({ wasmBase: small });
  try {
    const chat = o.chat();
    await chat.addImage(IMG);
    assert.ok((await answer(chat)).length > 0);
  } finally { await o.unload(); }
});

test('128 MB engine: an image within the pixel limit but too large for memory gives nomem; the chat then answers', async () => {
  const o = await load({ wasmBase: smallEngine() });
  try {
    const chat = o.chat();
    const w = 5000, h = 5000; // 25 MP: under the 64 MP limit, 75 MB of RGB
    const big = png(w, h, deflateSync(Buffer.alloc((w * 3 + 1) * h), { level: 9 }));
    await assert.rejects(chat.addImage(big), isErr('nomem', /out of memory/));
    await assert.rejects(chat.addImage({ data: new Uint8ClampedArray(6000 * 6000 * 4), width: 6000, height: 6000 }), isErr('nomem'));
    await chat.addImage(IMG);
    const t = await answer(chat);
    const ref = o.chat();
    await ref.addImage(IMG);
    assert.equal(t, await answer(ref), 'same answer as a chat without the errors');
  } finally { await o.unload(); }
});

// ---------------------------------------------------------------- images (hostile image)

test('hostile images give format / limit / invalid; the chat then answers as if nothing happened', async () => {
  const chat = owl.chat();
  const good = new Uint8Array(readFileSync(IMG));
  const cases = [
    ['4 random bytes', new Uint8Array([1, 2, 3, 4]), 'format'],
    ['PNG cut after the header', good.subarray(0, 60), 'format'],
    ['PNG 70000 x 1 (side over 65536)', png(70000, 1), 'limit'],
    ['PNG 10000 x 10000 (100 MP)', png(10000, 10000), 'limit'],
    ['PNG 0 x 0', png(0, 0), 'format'],
    ['encoded bytes over 64 MiB', new Uint8Array(LIMITS.imageBytes + 1), 'limit'],
    ['ImageData 9000 x 9000 (81 MP)', { data: new Uint8ClampedArray(4), width: 9000, height: 9000 }, 'limit'],
    ['ImageData with too few bytes', { data: new Uint8Array(8), width: 4, height: 4 }, 'invalid'],
    ['ImageData 0 x 4', { data: new Uint8Array(0), width: 0, height: 4 }, 'invalid'],
    ['ImageData fractional size', { data: new Uint8Array(8), width: 1.5, height: 1 }, 'invalid'],
    ['malformed data: URL', 'data:image/png;base64', 'invalid'],
    ['data: URL with bad base64', 'data:image/png;base64,!!!!', 'invalid'],
    ['a number', 42, 'invalid'],
    ['missing file (Node)', path.join(tmp, 'nope.png'), 'io'],
  ];
  for (const [what, src, code] of cases) await assert.rejects(chat.addImage(src), isErr(code), what);
  await chat.addImage(IMG);
  const t = await answer(chat);
  const ref = owl.chat();
  await ref.addImage(IMG);
  assert.equal(t, await answer(ref));
});

test('a 17th image for one question gives limit; after a reset the chat answers', async () => {
  const chat = owl.chat();
  const png1 = new Uint8Array(readFileSync(IMG));
  for (let i = 0; i < LIMITS.imagesPerTurn; i++) await chat.addImage(png1);
  await assert.rejects(chat.addImage(png1), isErr('limit', /16 images for one question \(max 16\)/));
  // 16 images are more positions than this 64-position context
  await assert.rejects(answer(chat), isErr('limit', /needs \d+ positions, the context holds 64/));
  await chat.reset();
  await chat.addImage(png1);
  assert.ok((await answer(chat)).length > 0);
});

// ---------------------------------------------------------------- prompts and options (hostile prompt)

test('a question longer than the context gives limit and changes nothing; the next question answers', async () => {
  const chat = owl.chat();
  await chat.addImage(IMG);
  const first = await answer(chat);
  const nPast = (await owl.stats()).nPast;
  await assert.rejects(answer(chat, 'tell me more '.repeat(40)), isErr('limit', /needs \d+ positions, the context holds 64/));
  assert.equal((await owl.stats()).nPast, nPast, 'KV cache unchanged');
  assert.equal(chat.turns.length, 2, 'the failed question is not kept');
  const ref = owl.chat();
  await ref.addImage(IMG);
  assert.equal(await answer(ref), first);
  assert.ok((await answer(chat, 'And then?')).length > 0);
});

test("truncate: 'history' drops the oldest turns until the question fits; 'error' refuses", async () => {
  const q = 'Which shapes and colours are there, and where?';
  const strict = owl.chat();
  const loose = owl.chat({ truncate: 'history' });
  let failedAt = -1;
  for (let i = 0; i < 4; i++) {
    await answer(loose, q, 8);
    if (failedAt < 0) {
      try { await answer(strict, q, 8); } catch (e) { isErr('limit', /context holds 64/)(e); failedAt = i; }
    }
  }
  assert.ok(failedAt > 0, 'the strict chat ran out of context');
  assert.ok(loose.dropped >= 2 && loose.dropped % 2 === 0, `dropped ${loose.dropped}`);
  assert.ok(loose.turns.length <= 8 - loose.dropped);
  // one question alone too long still fails, with either policy
  await assert.rejects(answer(owl.chat({ truncate: 'history' }), 'x y '.repeat(80)), isErr('limit'));
});

test('bad prompts and options give invalid / limit; the chat stays usable', async () => {
  const chat = owl.chat();
  const bad = [
    ['text not a string', () => chat.ask(42).next(), 'invalid'],
    ['text over 1M characters', () => chat.ask('a'.repeat(LIMITS.textChars + 1)).next(), 'limit'],
    ['unknown truncate policy', () => answer(chat, 'Hi', 1, { truncate: 'middle' }), 'invalid'],
    ['topP 0', () => answer(chat, 'Hi', 1, { topP: 0 }), 'invalid'],
    ['temperature NaN', () => answer(chat, 'Hi', 1, { temperature: NaN }), 'invalid'],
    ['temperature a string', () => answer(chat, 'Hi', 1, { temperature: 'hot' }), 'invalid'],
    ['repeatPenalty -1', () => answer(chat, 'Hi', 1, { repeatPenalty: -1 }), 'invalid'],
    ['minP 2', () => answer(chat, 'Hi', 1, { minP: 2 }), 'invalid'],
    ['maxTokens -1', () => answer(chat, 'Hi', -1), 'invalid'],
    ['maxTokens 1e12', () => answer(chat, 'Hi', 1e12), 'invalid'],
    ['65 stop strings', () => answer(chat, 'Hi', 1, { stop: new Array(65).fill('x') }), 'invalid'],
    ['a stop string of 5000 characters', () => answer(chat, 'Hi', 1, { stop: ['x'.repeat(5000)] }), 'limit'],
    ['stop not an array', () => answer(chat, 'Hi', 1, { stop: 'x' }), 'invalid'],
    ['seed -1', () => answer(chat, 'Hi', 1, { seed: -1 }), 'invalid'],
    ['completions: no messages', () => owl.chat.completions.create({ messages: [] }), 'invalid'],
    ['completions: last message not from the user', () => owl.chat.completions.create({ messages: [{ role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' }] }), 'invalid'],
    ['completions: roles not alternating', () => owl.chat.completions.create({ messages: [{ role: 'user', content: 'a' },
      { role: 'user', content: 'b' }] }), 'invalid'],
    ['completions: unknown part type', () => owl.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'audio' }] }] }), 'invalid'],
    ['completions: content a number', () => owl.chat.completions.create({ messages: [{ role: 'user', content: 5 }] }), 'invalid'],
  ];
  for (const [what, fn, code] of bad) await assert.rejects(fn(), (e) => { assert.equal(e && e.code, code, `${what}: ${e && e.message}`); return isErr(code)(e); });
  assert.equal(chat.turns.length, 0, 'nothing kept from the failed questions');
  assert.ok((await answer(chat, 'What is the capital of France?', 3)).length > 0);
  assert.equal((await owl.stats()).lastTokens, 3);
});

// ---------------------------------------------------------------- code and page hygiene

test('no eval / new Function in the JS we ship; the demo page has a strict CSP; no user text as HTML', () => {
  const files = [...readdirSync(path.join(root, 'wasm_glue')).filter((f) => f.endsWith('.mjs')).map((f) => `wasm_glue/${f}`),
    ...readdirSync(path.join(root, 'web')).filter((f) => /\.(m?js|html)$/.test(f)).map((f) => `web/${f}`),
    ...['build/wasm/owlet.js', 'build/wasm/owlet-st.js', 'build/wasm/owlet.worker.js'].filter((f) => existsSync(path.join(root, f)))];
  assert.ok(files.length > 8);
  for (const f of files) {
    const src = readFileSync(path.join(root, f), 'utf8');
    assert.doesNotMatch(src, /\beval\s*\(|new\s+Function\s*\(|\bFunction\s*\(\s*['"`]/, `${f}: eval or new Function`);
    if (f.startsWith('web/')) assert.doesNotMatch(src, /\.innerHTML\s*[+]?=|\.outerHTML\s*=|insertAdjacentHTML|document\.write/, `${f}: HTML sink`);
  }
  const html = readFileSync(path.join(root, 'web/index.html'), 'utf8');
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html);
  assert.ok(csp, 'CSP meta tag');
  const dir = Object.fromEntries(csp[1].split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
  assert.deepEqual(dir['script-src'], ["'self'", "'wasm-unsafe-eval'"]);
  assert.deepEqual(dir['object-src'], ["'none'"]);
  assert.deepEqual(dir['base-uri'], ["'none'"]);
  assert.ok(!csp[1].includes("'unsafe-eval'") && !csp[1].includes("'unsafe-inline'"), csp[1]);
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
});

test('after unload every call gives state', async () => {
  const o = await load();
  await o.unload();
  await assert.rejects(o.stats(), isErr('state'));
  await assert.rejects(answer(o.chat(), 'Hi', 1), isErr('state'));
  await assert.rejects(o.chat().addImage(IMG), isErr('state'));
});
