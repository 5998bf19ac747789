// store.mjs - the chunk store: download a model's chunks, verify them, keep
// them, and hand them to the engine.
//
// A model is published as a folder: manifest.json plus fixed-size chunks of one
// GGUF file (see docs/FORMAT.md, "Manifest"). In a browser the chunks go into the
// Origin Private File System where the page can write files there (OpfsBackend,
// below: one file per chunk, read by the engine worker straight into wasm memory),
// else into IndexedDB (database `owlet`, store `chunks`, key `<model id>/<chunk index>`,
// value {sha256, bytes}, bytes a Blob: Chromium keeps it in a file and a read
// hands back only a handle, which the engine worker streams into wasm memory
// through a reused buffer; where the browser refuses Blob values (WebKit's
// automation session) and in records of older versions it is a Uint8Array,
// read the same way); a chunk is stored only after its SHA-256 matched the
// manifest, so the cache never holds unverified or half-written data: every
// record is written in one transaction, and a chunk missing or with another
// hash is simply fetched again. An interrupted download therefore resumes from
// the chunks already stored, and a new manifest version of the same model
// refetches only the chunks whose hash changed.
//
// In Node the same calls read chunks from the file system (file: URLs or
// paths) or over http, with a memory backend instead of IndexedDB.
//
// Progress is one object tagged by phase:
//   {phase: 'download'|'verify'|'retry'|'load'|'ready', bytesDone, bytesTotal,
//    chunksDone, chunksTotal, rate (bytes/s), eta (s)}
// and for 'retry' also {chunk, attempt, attempts, waitMs, error}: a chunk
// request failed and attempt `attempt` of `attempts` starts in waitMs ms.

/** @typedef {{index:number, offset:number, size:number, sha256:string, url:string}} ChunkInfo */
/** @typedef {{id:string, name:string, totalSize:number, sha256:string|null, chunkSize:number,
 *             chunks:ChunkInfo[], stages:any[], raw:any, baseUrl:string}} Manifest */
/** @typedef {{phase:string, bytesDone:number, bytesTotal:number, chunksDone:number,
 *             chunksTotal:number, rate:number, eta:number}} Progress */

export const MAX_MANIFEST_BYTES = 4 << 20;
export const MAX_CHUNKS = 100000;
const HEX64 = /^[0-9a-f]{64}$/;

import { OwletError, abortError, checkSignal } from './errors.mjs';

export { OwletError }; // (errors.mjs: the one error class)

/** A chunk URL stays on the manifest's origin (or allowedOrigins); a file:
 * manifest's chunks stay in its folder (or below it; "../" and absolute paths
 * are refused), and other origins only if listed in allowedOrigins. */
function checkChunkUrl(url, base, allowed, bad) {
  if (base.protocol === 'file:') {
    const dir = base.pathname.slice(0, base.pathname.lastIndexOf('/') + 1);
    if (url.protocol === 'file:') {
      if (url.host !== base.host || !url.pathname.startsWith(dir)) bad(`is outside the manifest's folder ${dir}`);
    } else if (url.origin === 'null' || !allowed.has(url.origin)) {
      bad(`is not a file in the manifest's folder ${dir} (other origins need allowedOrigins)`);
    }
  } else if (!allowed.has(url.origin)) {
    bad(`leaves the manifest's origin ${base.origin}`);
  }
}

/**
 * Validate a parsed manifest and resolve chunk URLs against its own URL.
 * Chunk URLs must stay on the manifest's origin unless listed in allowedOrigins.
 * @param {any} raw parsed JSON
 * @param {string} manifestUrl absolute URL of the manifest
 * @param {{allowedOrigins?: string[]}} [opts]
 * @returns {Manifest}
 */
export function parseManifest(raw, manifestUrl, opts = {}) {
  const bad = (what) => { throw new OwletError('bad_manifest', `manifest ${manifestUrl}: ${what}`); };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad('not a JSON object');
  const model = raw.model && typeof raw.model === 'object' ? raw.model : raw;
  const name = String(model.name ?? raw.name ?? '');
  const id = String(raw.id ?? model.id ?? name);
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) bad(`model id ${JSON.stringify(id)} must be 1-128 of [A-Za-z0-9._-]`);
  const file = raw.file && typeof raw.file === 'object' ? raw.file : raw;
  const totalSize = Number(file.size ?? file.total_size ?? raw.total_size);
  if (!Number.isSafeInteger(totalSize) || totalSize <= 0) bad(`total size ${totalSize} is not a positive integer`);
  const sha = file.sha256 ?? raw.sha256 ?? null;
  if (sha !== null && !HEX64.test(String(sha))) bad('whole-file sha256 is not 64 hex digits');
  const list = raw.chunks;
  if (!Array.isArray(list) || list.length === 0) bad('chunks must be a non-empty array');
  if (list.length > MAX_CHUNKS) bad(`${list.length} chunks, more than the limit ${MAX_CHUNKS}`);
  const base = new URL(manifestUrl);
  const allowed = new Set([base.origin, ...(opts.allowedOrigins || [])]);
  let expect = 0;
  const chunks = list.map((c, i) => {
    if (!c || typeof c !== 'object') bad(`chunk ${i} is not an object`);
    const offset = Number(c.offset), size = Number(c.size);
    if (!Number.isSafeInteger(offset) || offset !== expect) bad(`chunk ${i}: offset ${c.offset}, want ${expect}`);
    if (!Number.isSafeInteger(size) || size <= 0 || size > 1 << 30) bad(`chunk ${i}: size ${c.size} out of range`);
    if (!HEX64.test(String(c.sha256))) bad(`chunk ${i}: sha256 is not 64 hex digits`);
    if (typeof c.url !== 'string' || c.url.length === 0) bad(`chunk ${i}: url missing`);
    const url = new URL(c.url, base);
    checkChunkUrl(url, base, allowed, (what) => bad(`chunk ${i}: url ${url.href} ${what}`));
    expect = offset + size;
    return { index: i, offset, size, sha256: String(c.sha256), url: url.href };
  });
  if (expect !== totalSize) bad(`chunks cover ${expect} bytes, total size is ${totalSize}`);
  const chunkSize = Number(raw.chunk_size ?? chunks[0].size);
  const stages = Array.isArray(raw.stages) ? raw.stages : [];
  return { id, name, totalSize, sha256: sha, chunkSize, chunks, stages, raw, baseUrl: base.href };
}

let nodeCrypto; // node:crypto in Node, null elsewhere, undefined until first asked

/** Hex SHA-256 of bytes (a Uint8Array): WebCrypto in the browser, node:crypto in Node. */
export async function sha256Hex(bytes) {
  // Node: node:crypto hashes twice as fast as WebCrypto here (1.5 vs 0.8 GB/s, SHA-NI),
  // which is most of the time a 7B takes to load from its chunk files
  if (nodeCrypto === undefined)
    nodeCrypto = typeof process !== 'undefined' && process.versions && process.versions.node && !globalThis.document
      ? await import('node:crypto').catch(() => null) : null;
  if (nodeCrypto) return nodeCrypto.createHash('sha256').update(bytes).digest('hex');
  const d = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}

// ---------------------------------------------------------------- backends

/** Memory backend (Node, tests): same interface as the IndexedDB one. */
export class MemoryBackend {
  constructor() { this.map = new Map(); }
  async get(key) { return this.map.get(key) ?? null; }
  async put(key, rec) { this.map.set(key, { sha256: rec.sha256, bytes: rec.bytes.slice() }); }
  async delete(key) { this.map.delete(key); }
  async keys(prefix) { return [...this.map.keys()].filter((k) => k.startsWith(prefix)); }
  async getMeta(id) { return this.map.get('meta:' + id) ?? null; }
  async putMeta(id, meta) { this.map.set('meta:' + id, meta); }
  async deleteMeta(id) { this.map.delete('meta:' + id); }
  async listMeta() { return [...this.map.entries()].filter(([k]) => k.startsWith('meta:')).map(([, v]) => v); }
}

function idbRequest(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

const isQuota = (e) => !!e && (e.name === 'QuotaExceededError' || /quota/i.test(String(e.message)));

function quotaError(e, needed) {
  if (isQuota(e)) {
    const mb = needed ? ` (${(needed / 1e6).toFixed(1)} MB more are needed)` : '';
    return new OwletError('quota', `the browser refused to store the model: storage quota exceeded${mb}. ` +
      'Free space, delete cached models, or allow this site more storage.', e);
  }
  return new OwletError('storage', `IndexedDB error: ${idbErrorText(e)}`, e);
}

/** "Name: message" of an IndexedDB failure (a DOMException, or null when the browser gave no reason). */
function idbErrorText(e) {
  if (!e) return 'the browser gave no reason';
  const msg = e.message ? String(e.message) : String(e);
  return e.name && e.name !== 'Error' && !msg.startsWith(e.name) ? `${e.name}: ${msg}` : msg;
}

// Whether this browser session stores Blob values in IndexedDB. WebKit's automation
// session (and likely Safari's private browsing) refuses them ("UnknownError: Error
// preparing Blob/File data to be stored in object store"); after a refusal that the
// same bytes as a Uint8Array got past, the chunks of this page are stored as plain
// bytes, which every engine accepts.
let idbTakesBlobs = typeof Blob === 'function';

/** IndexedDB backend (browsers). Each record is written in its own transaction. */
export class IdbBackend {
  /** @param {string} [dbName] */
  constructor(dbName = 'owlet') {
    this.dbName = dbName;
    this.db = null;
    this.freshReads = true; // get() returns a new copy each time: the caller may transfer it
  }
  // Chunks are stored as Blobs (see the top of the file): reading a record
  // then costs no memory, and loading streams it (measured for a 978 MiB
  // model in Chromium 156: renderer peak 1.13x the model size instead of
  // 1.67x with Uint8Array values, tests/browser/load_memory.mjs).
  async open() {
    if (this.db) return this.db;
    if (!globalThis.indexedDB) throw new OwletError('storage', 'IndexedDB is not available in this browser context');
    const req = indexedDB.open(this.dbName, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('chunks')) db.createObjectStore('chunks');
      if (!db.objectStoreNames.contains('models')) db.createObjectStore('models');
    };
    this.db = await idbRequest(req);
    return this.db;
  }
  async tx(store, mode, fn) {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      let result;
      t.oncomplete = () => resolve(result);
      // a failed request's error event reaches the transaction first, while the
      // transaction's own error is still null: reject with the request's error
      t.onerror = (ev) => reject((ev && ev.target && ev.target.error) || t.error);
      t.onabort = () => reject(t.error || new DOMException('the transaction was aborted', 'AbortError'));
      Promise.resolve(fn(t.objectStore(store))).then((r) => { result = r; }, reject);
    });
  }
  async get(key) { return this.tx('chunks', 'readonly', (s) => idbRequest(s.get(key))); }
  async put(key, rec) {
    const write = (bytes) => this.tx('chunks', 'readwrite', (s) => { s.put({ sha256: rec.sha256, bytes }, key); });
    const b = rec.bytes; // a view's whole buffer would be cloned: store exactly its bytes
    const plain = () => write(b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice());
    try {
      if (!idbTakesBlobs) return await plain();
      try { await write(new Blob([b])); } catch (e) {
        if (isQuota(e)) throw e;
        await plain(); // the Blob was refused, not for space: try the bytes themselves
        idbTakesBlobs = false; // they were taken: plain bytes from now on
      }
    } catch (e) { throw quotaError(e, b.byteLength); }
  }
  async delete(key) { await this.tx('chunks', 'readwrite', (s) => { s.delete(key); }); }
  async keys(prefix) {
    const range = IDBKeyRange.bound(prefix, prefix + '\uffff');
    return this.tx('chunks', 'readonly', (s) => idbRequest(s.getAllKeys(range)));
  }
  async getMeta(id) { return this.tx('models', 'readonly', (s) => idbRequest(s.get(id))); }
  async putMeta(id, meta) {
    try { await this.tx('models', 'readwrite', (s) => { s.put(meta, id); }); } catch (e) { throw quotaError(e, 0); }
  }
  async deleteMeta(id) { await this.tx('models', 'readwrite', (s) => { s.delete(id); }); }
  async listMeta() { return this.tx('models', 'readonly', (s) => idbRequest(s.getAll())); }
}

// ------------------------------------------------ Origin Private File System

/** The directory of model m in OPFS: `m-<id>` (ids are [A-Za-z0-9._-]; the prefix keeps '.' and '..' names out). */
const opfsDirName = (id) => `m-${id}`;
const SHA_RE = /^[0-9a-f]{64}$/;

/**
 * Origin Private File System backend (browsers that can write there from a page:
 * `createWritable`). Each verified chunk is one file, `<OPFS root>/owlet/m-<model
 * id>/<index>-<sha256>`, written through a writable stream that becomes the file
 * only when it is closed (a download cut half way leaves at most an empty file,
 * which is ignored). A read hands back a File and the file's handle: the engine
 * worker reads the bytes straight into wasm memory with a SyncAccessHandle
 * (engine-worker.mjs), measured 1.3-2x the IndexedDB Blob read in Chromium 156
 * (docs/BENCHMARKS.md). Model records (getMeta/putMeta) and chunks stored by
 * earlier versions stay in IndexedDB (`legacy`): those chunks are still read from
 * there, so a cached model is not downloaded again; deleting a model removes both.
 */
export class OpfsBackend {
  /** @param {FileSystemDirectoryHandle} root OPFS directory for owlet's files @param {any} legacy the IdbBackend */
  constructor(root, legacy) {
    this.root = root;
    this.legacy = legacy;
    this.freshReads = true;
    this.dirs = new Map();
    this.lists = new Map();
  }
  /** The OPFS backend where this browser has it (with a page-side writer), else null. */
  static async open(legacy = new IdbBackend()) {
    const st = globalThis.navigator && navigator.storage;
    if (!st || typeof st.getDirectory !== 'function' || typeof FileSystemFileHandle !== 'function' ||
        typeof FileSystemFileHandle.prototype.createWritable !== 'function') return null;
    try {
      const root = await (await st.getDirectory()).getDirectoryHandle('owlet', { create: true });
      return new OpfsBackend(root, legacy);
    } catch { return null; } // e.g. a private window, or storage switched off
  }
  async dir(id, create) {
    if (this.dirs.has(id)) return this.dirs.get(id);
    try {
      const d = await this.root.getDirectoryHandle(opfsDirName(id), { create });
      this.dirs.set(id, d);
      return d;
    } catch (e) {
      if (!create && e && e.name === 'NotFoundError') return null;
      throw new OwletError('storage', `the browser's file storage (OPFS) failed: ${idbErrorText(e)}`, e);
    }
  }
  /** name -> handle of the files in model id's directory whose name is <index>-<sha256>
   * (listed once per backend object, then kept up to date by its own puts and deletes). */
  async files(id) {
    if (this.lists.has(id)) return this.lists.get(id);
    const d = await this.dir(id, false);
    const out = new Map();
    if (d) for await (const [name, h] of d.entries()) if (h.kind === 'file' && /^\d+-[0-9a-f]{64}$/.test(name)) out.set(name, h);
    this.lists.set(id, out);
    return out;
  }
  static split(key) {
    const i = key.lastIndexOf('/');
    return { id: key.slice(0, i), index: key.slice(i + 1) };
  }
  async get(key) {
    const { id, index } = OpfsBackend.split(key);
    for (const [name, h] of await this.files(id)) {
      if (!name.startsWith(`${index}-`)) continue;
      let file;
      try { file = await h.getFile(); } catch { continue; } // removed meanwhile (another tab)
      if (file.size === 0) continue; // a write that never finished
      return { sha256: name.slice(index.length + 1), bytes: file, handle: h };
    }
    return this.legacy ? this.legacy.get(key) : null;
  }
  async put(key, rec) {
    const { id, index } = OpfsBackend.split(key);
    if (!SHA_RE.test(rec.sha256)) throw new OwletError('storage', `chunk ${key}: not a SHA-256 hex digest`);
    const d = await this.dir(id, true);
    const name = `${index}-${rec.sha256}`;
    const list = await this.files(id);
    try {
      for (const old of [...list.keys()]) {
        if (old.startsWith(`${index}-`) && old !== name) { await d.removeEntry(old).catch(() => {}); list.delete(old); }
      }
      const h = await d.getFileHandle(name, { create: true });
      const w = await h.createWritable();
      try { await w.write(rec.bytes); } catch (e) { await w.abort().catch(() => {}); throw e; }
      await w.close(); // the bytes become the file only now
      list.set(name, h);
    } catch (e) {
      if (isQuota(e)) throw quotaError(e, rec.bytes.byteLength);
      throw new OwletError('storage', `the browser's file storage (OPFS) refused chunk ${key}: ${idbErrorText(e)}`, e);
    }
    if (this.legacy) await this.legacy.delete(key).catch(() => {}); // one copy only
  }
  async delete(key) {
    const { id, index } = OpfsBackend.split(key);
    const d = await this.dir(id, false);
    const list = await this.files(id);
    for (const name of [...list.keys()]) {
      if (name.startsWith(`${index}-`)) { await d.removeEntry(name).catch(() => {}); list.delete(name); }
    }
    if (this.legacy) await this.legacy.delete(key);
  }
  async keys(prefix) {
    const out = new Set(this.legacy ? await this.legacy.keys(prefix) : []);
    for await (const [dname, dh] of this.root.entries()) {
      if (dh.kind !== 'directory' || !dname.startsWith('m-')) continue;
      const id = dname.slice(2);
      for (const [name, h] of await this.files(id)) {
        const key = `${id}/${name.slice(0, name.indexOf('-'))}`;
        if (key.startsWith(prefix) && (await h.getFile().then((f) => f.size, () => 0)) > 0) out.add(key);
      }
    }
    return [...out];
  }
  getMeta(id) { return this.legacy.getMeta(id); }
  putMeta(id, meta) { return this.legacy.putMeta(id, meta); }
  async deleteMeta(id) {
    await this.legacy.deleteMeta(id);
    this.dirs.delete(id);
    this.lists.delete(id);
    await this.root.removeEntry(opfsDirName(id), { recursive: true }).catch(() => {}); // (absent: nothing to remove)
  }
  listMeta() { return this.legacy.listMeta(); }
}

/** The browser's chunk store: OPFS where the page can write files there, else IndexedDB. */
export async function browserBackend() {
  return (await OpfsBackend.open()) || new IdbBackend();
}

// ---------------------------------------------------------------- fetching

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); reject(abortError()); }, { once: true });
});

// Node without a global fetch (node --no-experimental-fetch, which Emscripten
// 3.1.6 output needs): a minimal GET over node:http(s) with the fields used here.
async function nodeFetch(url, { signal } = {}) {
  const mod = await import(url.startsWith('https:') ? 'node:https' : 'node:http');
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { signal }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, redirected: false, url,
          arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
      });
    });
    req.on('error', (e) => reject(signal && signal.aborted ? abortError() : e));
  });
}

/** Default time one request may take (headers and body) before it counts as failed (and is retried). */
export const DEFAULT_TIMEOUT_MS = 120000;

/**
 * GET url into one Uint8Array, never holding more than the bytes allowed:
 * expectSize (exact: a chunk) or maxBytes (a cap: a manifest, an image). A
 * Content-Length that disagrees is refused before the body is read; a body that
 * runs past the limit is cancelled. A redirect must stay on the request's
 * origin (or one of allowedOrigins). timeoutMs (default DEFAULT_TIMEOUT_MS)
 * bounds the whole request: a stalled server gives OwletError 'network'.
 * @param {string} url
 * @param {{signal?:AbortSignal, fetchFn?:Function, expectSize?:number, maxBytes?:number,
 *          timeoutMs?:number, allowedOrigins?:string[], what?:string}} opts
 * @returns {Promise<Uint8Array>}
 */
export async function fetchBytes(url, opts = {}) {
  const { signal, expectSize, maxBytes } = opts;
  let fetchFn = opts.fetchFn;
  if (!fetchFn) fetchFn = globalThis.fetch || (typeof process !== 'undefined' && process.versions && process.versions.node ? nodeFetch : null);
  if (!fetchFn) throw new OwletError('network', `GET ${url}: no fetch() in this environment`);
  const limit = expectSize ?? maxBytes ?? Infinity;
  const tooBig = (n) => expectSize !== undefined
    ? new OwletError('truncated', `GET ${url}: got ${n} bytes, want ${expectSize}`)
    : new OwletError(opts.tooBigCode || 'limit', `GET ${url}: ${n} bytes, more than the limit ${maxBytes}`);
  if (url.startsWith('file:')) {
    const { readFile, stat } = await import('node:fs/promises');
    const st = await stat(new URL(url));
    if (st.size > limit) throw tooBig(st.size);
    const buf = await readFile(new URL(url));
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  checkSignal(signal);
  // one controller for the caller's signal and the timeout
  const ac = new AbortController();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ac.abort(); }, timeoutMs);
  const onAbort = () => ac.abort();
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetchFn(url, { signal: ac.signal, redirect: 'follow', cache: 'no-store' });
    if (!res.ok) throw new OwletError('http', `GET ${url}: HTTP ${res.status}`);
    if (res.redirected || (res.url && res.url !== url)) {
      const to = new URL(res.url || url).origin;
      const allowed = new Set([new URL(url).origin, ...(opts.allowedOrigins || [])]);
      if (!allowed.has(to)) throw new OwletError('bad_origin', `GET ${url} was redirected to another origin (${to})`);
    }
    // Content-Length counts encoded bytes: only trusted without a Content-Encoding
    const hdr = (k) => (res.headers && res.headers.get ? res.headers.get(k) : null);
    const cl = hdr('content-length'), enc = hdr('content-encoding');
    if (cl && /^\d+$/.test(cl) && (!enc || enc === 'identity')) {
      const n = Number(cl);
      if (expectSize !== undefined ? n !== expectSize : n > limit) {
        if (res.body && res.body.cancel) res.body.cancel().catch(() => {});
        throw tooBig(n);
      }
    }
    if (!res.body || !res.body.getReader) {
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.byteLength > limit || (expectSize !== undefined && bytes.byteLength !== expectSize)) throw tooBig(bytes.byteLength);
      return bytes;
    }
    // stream into one buffer of the expected size (or growing up to the cap)
    const reader = res.body.getReader();
    let buf = new Uint8Array(expectSize ?? Math.min(limit, 1 << 16));
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.byteLength > limit) { reader.cancel().catch(() => {}); throw tooBig(n + value.byteLength); }
      if (n + value.byteLength > buf.byteLength) {
        const b = new Uint8Array(Math.min(limit, Math.max(buf.byteLength * 2, n + value.byteLength)));
        b.set(buf.subarray(0, n));
        buf = b;
      }
      buf.set(value, n);
      n += value.byteLength;
    }
    if (expectSize !== undefined && n !== expectSize) throw tooBig(n);
    return n === buf.byteLength ? buf : buf.slice(0, n);
  } catch (e) {
    if (signal && signal.aborted) throw abortError();
    if (timedOut) throw new OwletError('network', `GET ${url}: no complete answer within ${timeoutMs} ms`, e);
    throw e;
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  }
}

const readUrl = (url, o) => fetchBytes(url, o);

/**
 * Fetch and parse a manifest.
 * @param {string} manifestUrl absolute URL (http(s): or file:) or a file path in Node
 * @param {{signal?:AbortSignal, fetch?:Function, allowedOrigins?:string[]}} [opts]
 */
export async function loadManifest(manifestUrl, opts = {}) {
  const url = toUrl(manifestUrl);
  const fetchFn = opts.fetch || globalThis.fetch;
  let bytes;
  try {
    bytes = await readUrl(url, { signal: opts.signal, fetchFn, maxBytes: MAX_MANIFEST_BYTES, timeoutMs: opts.timeoutMs,
      tooBigCode: 'bad_manifest' });
  } catch (e) {
    if (e instanceof OwletError && e.code === 'bad_manifest') throw new OwletError('bad_manifest', `manifest ${url}: ${e.message}`);
    throw e;
  }
  let raw;
  try { raw = JSON.parse(new TextDecoder().decode(bytes)); } catch (e) {
    throw new OwletError('bad_manifest', `manifest ${url}: not valid JSON (${e.message})`);
  }
  return parseManifest(raw, url, opts);
}

function toUrl(u) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(u)) return u;
  if (globalThis.location) return new URL(u, globalThis.location.href).href;
  return 'file://' + (u.startsWith('/') ? u : `${process.cwd()}/${u}`);
}

/**
 * Which chunks of the manifest are already stored and verified. A complete
 * earlier run of this very chunk list (same digest of the chunk hashes in the
 * model's record) lets a stored key count as verified without reading its
 * value: reading every chunk just to look at it would materialise the whole
 * model in JS once more before loading (the load checks each chunk's hash
 * field again as it reads it).
 * @returns {Promise<{missing:object[], bytesDone:number, chunksDone:number}>}
 */
async function scanStored(manifest, backend, digest) {
  const missing = [];
  let bytesDone = 0, chunksDone = 0;
  let meta = null;
  try { meta = await backend.getMeta(manifest.id); } catch { /* treated as absent */ }
  const stored = meta && meta.chunksDigest === digest ? new Set(await backend.keys(`${manifest.id}/`)) : null;
  for (const c of manifest.chunks) {
    if (stored && stored.has(`${manifest.id}/${c.index}`)) {
      bytesDone += c.size;
      chunksDone++;
      continue;
    }
    const rec = await backend.get(`${manifest.id}/${c.index}`);
    if (rec && rec.sha256 === c.sha256 && rec.bytes && byteSize(rec.bytes) === c.size) {
      bytesDone += c.size;
      chunksDone++;
    } else {
      missing.push(c);
    }
  }
  return { missing, bytesDone, chunksDone };
}

/** Drop records of chunk indices the manifest no longer has (shrunk model). */
async function dropExtraChunks(manifest, backend) {
  for (const key of await backend.keys(`${manifest.id}/`)) {
    const idx = Number(key.slice(manifest.id.length + 1));
    if (!(idx < manifest.chunks.length)) await backend.delete(key);
  }
}

/**
 * Fetch, verify and store one chunk, retrying with exponential backoff. A
 * chunk whose hash does not match is fetched once more, then the download
 * stops with 'bad_chunk' (a server that sends other bytes than its manifest
 * lists will not heal by asking again). Counts into `run` (bytesFetched,
 * bytesDone, chunksDone) and reports progress through run.report (a 'retry'
 * object before each backoff wait).
 */
async function fetchChunk(c, manifest, opts, run) {
  const { backend, signal } = opts;
  let badHashes = 0;
  for (let attempt = 0; ; attempt++) {
    checkSignal(signal);
    try {
      const bytes = await readUrl(c.url, { signal, fetchFn: run.fetchFn, expectSize: c.size, timeoutMs: opts.timeoutMs,
        allowedOrigins: opts.allowedOrigins });
      run.report('verify');
      const got = await sha256Hex(bytes);
      if (got !== c.sha256) {
        badHashes++;
        throw new OwletError('bad_chunk', `chunk ${c.index} (${c.url}): sha256 ${got}, want ${c.sha256} ` +
          `(the check failed ${badHashes === 1 ? 'once' : 'twice'})`);
      }
      checkSignal(signal);
      await backend.put(`${manifest.id}/${c.index}`, { sha256: c.sha256, bytes });
      run.bytesFetched += c.size;
      run.bytesDone += c.size;
      run.chunksDone++;
      run.report('download');
      return;
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      if (signal && signal.aborted) throw abortError();
      if (e instanceof OwletError && (e.code === 'quota' || e.code === 'storage' || e.code === 'bad_origin')) throw e;
      if (badHashes >= 2) throw e;
      if (attempt >= run.retries) {
        throw e instanceof OwletError ? e
          : new OwletError('network', `chunk ${c.index} (${c.url}): ${e && e.message ? e.message : e} after ${attempt + 1} attempts`, e);
      }
      const waitMs = Math.round(Math.min(8000, run.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2));
      run.report('retry', { chunk: c.index, attempt: attempt + 2, attempts: run.retries + 1, waitMs,
        error: e && e.message ? e.message : String(e) });
      await sleep(waitMs, signal);
    }
  }
}

/**
 * Make sure every chunk of the manifest is in the store, verified.
 * Missing or stale chunks are fetched with bounded concurrency and retried
 * with exponential backoff; a chunk whose hash does not match is discarded and
 * refetched once (counted as a retry). Resolves when all chunks are stored;
 * the first chunk that fails for good stops the other fetches (no progress is
 * reported after the rejection).
 * @param {Manifest} manifest
 * @param {{backend:any, signal?:AbortSignal, onProgress?:(p:Progress)=>void, concurrency?:number,
 *          retries?:number, backoffMs?:number, fetch?:Function}} opts
 * @returns {Promise<{fetched:number, reused:number, bytesFetched:number}>}
 */
export async function ensureChunks(manifest, opts) {
  const { backend, signal, onProgress } = opts;
  const concurrency = Math.max(1, Math.min(16, opts.concurrency ?? 4));
  const retries = opts.retries ?? 6;
  const backoffMs = opts.backoffMs ?? 250;
  const fetchFn = opts.fetch || globalThis.fetch;
  checkSignal(signal);

  const total = manifest.totalSize;
  const digest = await chunksDigest(manifest);
  const { missing, bytesDone, chunksDone } = await scanStored(manifest, backend, digest);
  await dropExtraChunks(manifest, backend);
  const reused = chunksDone;
  const needBytes = missing.reduce((a, c) => a + c.size, 0);
  await checkQuota(needBytes);

  const t0 = Date.now();
  const run = { retries, backoffMs, fetchFn, bytesFetched: 0, bytesDone, chunksDone, report: null };
  // one chunk failing for good stops the others (their retries would outlive the rejected load)
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  run.report = (phase, extra) => {
    if (!onProgress || stop.signal.aborted) return;
    const dt = (Date.now() - t0) / 1000;
    const rate = dt > 0 ? run.bytesFetched / dt : 0;
    const eta = rate > 0 ? (total - run.bytesDone) / rate : Infinity;
    onProgress({ phase, bytesDone: run.bytesDone, bytesTotal: total, chunksDone: run.chunksDone,
      chunksTotal: manifest.chunks.length, rate, eta, ...extra });
  };
  run.report('download');

  let next = 0;
  const chunkOpts = { ...opts, signal: stop.signal };
  const worker = async () => {
    try {
      while (next < missing.length) await fetchChunk(missing[next++], manifest, chunkOpts, run);
    } catch (e) {
      stop.abort(); // Promise.all rejects with this first error; the others end with AbortError
      throw e;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, missing.length) }, worker));
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort);
  }
  await backend.putMeta(manifest.id, {
    id: manifest.id, name: manifest.name, totalSize: manifest.totalSize, sha256: manifest.sha256,
    chunks: manifest.chunks.length, chunksDigest: digest, manifestUrl: manifest.baseUrl, storedAt: Date.now(),
  });
  return { fetched: missing.length, reused, bytesFetched: run.bytesFetched };
}

/** Size of a stored chunk value: a Blob (IdbBackend) or a Uint8Array. */
export function byteSize(v) { return isBlob(v) ? v.size : v.byteLength; }
export function isBlob(v) { return typeof Blob === 'function' && v instanceof Blob; }
/** Bytes [lo, hi) of a stored chunk value as a Uint8Array. */
async function chunkBytes(v, lo, hi) {
  return isBlob(v) ? new Uint8Array(await v.slice(lo, hi).arrayBuffer()) : v.subarray(lo, hi);
}

/** SHA-256 of the manifest's chunk hashes in order: names one exact chunk list. */
function chunksDigest(manifest) {
  return sha256Hex(new TextEncoder().encode(manifest.chunks.map((c) => `${c.offset}:${c.size}:${c.sha256}`).join('\n')));
}

async function checkQuota(needBytes) {
  const st = globalThis.navigator && navigator.storage;
  if (!st || needBytes === 0) return;
  // Ask for persistent storage, but never wait for the answer: Firefox answers with a
  // permission prompt and the promise stays pending until the user decides.
  if (st.persist) {
    try { Promise.resolve(st.persist()).catch(() => {}); } catch { /* a refusal is not an error */ }
  }
  if (!st.estimate) return; // WebKitGTK has no estimate(): the put itself reports a full disk
  const { quota, usage } = await st.estimate();
  if (typeof quota === 'number' && typeof usage === 'number' && quota - usage < needBytes) {
    throw new OwletError('quota', `not enough storage for the model: ${(needBytes / 1e6).toFixed(1)} MB needed, ` +
      `${((quota - usage) / 1e6).toFixed(1)} MB available. Free space or delete cached models.`);
  }
}

/**
 * Read the stored chunks in order into one destination (for the engine: a view
 * of wasm memory from one allocation). `dest(offset, bytes)` copies one chunk
 * (awaited: at most one chunk is held in JS); no second full copy of the model
 * is kept in JS. keepBlobs: a chunk stored as a Blob goes to dest as a Blob.
 * @param {Manifest} manifest
 * @param {{backend:any, dest:(offset:number, bytes:Uint8Array|Blob)=>void|Promise<void>, signal?:AbortSignal,
 *          onProgress?:(p:Progress)=>void, start?:number, end?:number, keepBlobs?:boolean}} opts byte range [start, end)
 */
export async function readChunks(manifest, opts) {
  const { backend, dest, signal, onProgress } = opts;
  const start = opts.start ?? 0, end = opts.end ?? manifest.totalSize;
  let done = 0, n = 0;
  for (const c of manifest.chunks) {
    if (c.offset + c.size <= start || c.offset >= end) continue;
    checkSignal(signal);
    const rec = await backend.get(`${manifest.id}/${c.index}`);
    if (!rec || rec.sha256 !== c.sha256) throw new OwletError('cache', `chunk ${c.index} is missing from the cache`);
    const lo = Math.max(start, c.offset) - c.offset, hi = Math.min(end, c.offset + c.size) - c.offset;
    const v = rec.bytes; // keepBlobs: a Blob slice (a handle: the engine worker streams it) instead of its bytes
    // (and an OPFS file's handle with it: the worker reads the range straight into its memory)
    const piece = !opts.keepBlobs || !isBlob(v) ? await chunkBytes(v, lo, hi)
      : rec.handle ? Object.assign(v.slice(lo, hi), { fileHandle: rec.handle, at: lo }) : v.slice(lo, hi);
    await dest(c.offset + lo - start, piece);
    done += hi - lo;
    n++;
    if (onProgress) onProgress({ phase: 'load', bytesDone: done, bytesTotal: end - start, chunksDone: n,
      chunksTotal: manifest.chunks.length, rate: 0, eta: 0 });
  }
}

/** Cached models: list, usage, delete. */
export const cache = {
  /** @param {any} [backend] default: the browser's store (browserBackend) */
  async list(backend) { return (backend || await browserBackend()).listMeta(); },
  async usage(backend) {
    const models = await (backend || await browserBackend()).listMeta();
    const bytes = models.reduce((a, m) => a + (m.totalSize || 0), 0);
    const est = globalThis.navigator && navigator.storage && navigator.storage.estimate
      ? await navigator.storage.estimate() : {};
    return { models: models.length, bytes, quota: est.quota ?? null, usage: est.usage ?? null };
  },
  async delete(id, backend) {
    backend = backend || await browserBackend();
    for (const key of await backend.keys(`${id}/`)) await backend.delete(key);
    await backend.deleteMeta(id);
  },
};
