// owlet.mjs - the JavaScript API of owlet (browser and Node 20), one ES module.
//
//   const owl = await Owlet.load('models/demo/manifest.json', { onProgress });
//   const chat = owl.chat();
//   await chat.addImage(canvas);
//   for await (const piece of chat.ask('What is in the picture?', { maxTokens: 64 })) out.textContent += piece;
//   owl.unload();
//
// The engine runs in dedicated workers (wasm_glue/engine-worker.mjs; classic
// Workers in the browser, worker_threads in Node), one per pipeline stage of
// the manifest's plan. Chunks come from the chunk store (store.mjs: download,
// verify, IndexedDB); each stage's bytes are copied chunk by chunk into one
// allocation in its wasm memory. See docs/API.md.

import { OwletError, IdbBackend, MemoryBackend, cache, ensureChunks, fetchBytes, isBlob, loadManifest, sha256Hex } from './store.mjs';

export { OwletError, cache };

const isBrowser = typeof window !== 'undefined' || (typeof self !== 'undefined' && typeof importScripts === 'function');

function abortError() {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}
const checkSignal = (signal) => { if (signal && signal.aborted) throw abortError(); };
/** p, or AbortError as soon as signal aborts (onAbort runs first); p itself runs on. */
function abortable(p, signal, onAbort) {
  if (!signal) return p;
  return new Promise((resolve, reject) => {
    const on = () => { onAbort(); reject(abortError()); };
    if (signal.aborted) { on(); return; }
    signal.addEventListener('abort', on, { once: true });
    p.then((v) => { signal.removeEventListener('abort', on); resolve(v); },
      (e) => { signal.removeEventListener('abort', on); reject(e); });
  });
}

/** Serialises engine work: one conversation step at a time per model. */
class Mutex {
  constructor() { this.p = Promise.resolve(); }
  /** @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
  run(fn) {
    const r = this.p.then(fn);
    this.p = r.catch(() => {});
    return r;
  }
  async acquire() {
    let release;
    const next = new Promise((r) => { release = r; });
    const prev = this.p;
    this.p = prev.then(() => next);
    await prev;
    return release;
  }
}

// ---------------------------------------------------------------- workers

/** One engine worker, speaking the engine-worker.mjs protocol. */
class EngineWorker {
  /** @param {any} w a Worker or worker_threads Worker */
  constructor(w, node) {
    this.w = w;
    this.node = node;
    this.next = 1;
    this.pending = new Map();
    this.dead = null;
    const onMsg = (m) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new OwletError(m.error.code, m.error.message), { status: m.error.status }));
    };
    const onErr = (e) => {
      const why = e && e.message ? e.message : 'the worker script or the engine failed to load';
      this.dead = new OwletError('engine', `engine worker failed: ${why}`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    if (node) { w.on('message', onMsg); w.on('error', onErr); } else {
      w.onmessage = (e) => onMsg(e.data);
      w.onerror = (e) => { e.preventDefault?.(); onErr(e); };
    }
  }
  static async spawn() {
    const url = new URL('./engine-worker.mjs', import.meta.url);
    EngineWorker.live++;
    if (typeof Worker !== 'undefined' && isBrowser) return new EngineWorker(new Worker(url), false);
    const { Worker: NodeWorker } = await import('node:worker_threads');
    return new EngineWorker(new NodeWorker(url), true);
  }
  /** @param {string} op @param {any} [args] @param {Transferable[]} [transfer] */
  call(op, args, transfer = []) {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.w.postMessage({ id, op, args }, transfer);
    });
  }
  terminate() {
    if (!this.terminated) EngineWorker.live--;
    this.terminated = true;
    this.w.terminate();
  }
}
/** The largest single allocation a wasm32 instance can make (sbrk's increment is a signed
 * 32-bit value, so 2 GiB fails): the bound on one stage's weight bytes. */
const MAX_STAGE_BYTES = 2047 * 1048576;

/** Engine workers spawned and not yet terminated (tests check that nothing leaks). */
EngineWorker.live = 0;

/** Node, manifest on the file system: the chunk files themselves are the
 * store (nothing is copied into JS memory besides the chunk being read).
 * A chunk is hashed the first time it is read; a file that does not match
 * reads as missing, so ensureChunks reports it (bad_chunk). */
class FileBackend {
  constructor(manifest) { this.m = manifest; this.ok = new Set(); this.freshReads = true; }
  async get(key) {
    const c = this.m.chunks[Number(key.slice(this.m.id.length + 1))];
    if (!c || !c.url.startsWith('file:')) return null;
    const { readFile } = await import('node:fs/promises');
    let b;
    try { b = await readFile(new URL(c.url)); } catch { return null; }
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (!this.ok.has(key)) {
      if (bytes.byteLength !== c.size || (await sha256Hex(bytes)) !== c.sha256) return null;
      this.ok.add(key);
    }
    return { sha256: c.sha256, bytes };
  }
  async put() { /* the file is the store */ }
  async delete() {}
  async keys() { return []; }
  async getMeta() { return null; }
  async putMeta() {}
  async deleteMeta() {}
  async listMeta() { return []; }
}

// ---------------------------------------------------------------- limits

/** Limits checked in JS before anything is allocated for an input (the engine
 * checks again: owl_image_decode, OWL_MAX_IMAGES, the context). */
export const LIMITS = Object.freeze({
  imagePixels: 64 * 1024 * 1024, // width x height (OWL_IMAGE_DEFAULT_MAX_PIXELS)
  imageSide: 65536,              // max(width, height) (OWL_IMAGE_MAX_SIDE)
  imageBytes: 64 * 1024 * 1024,  // encoded image (Blob, bytes, URL, data: URL)
  imagesPerTurn: 16,             // OWL_MAX_IMAGES
  textChars: 1 << 20,            // one question (UTF-16 units)
});

function checkPixels(w, h) {
  if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 1 && h >= 1))
    throw new OwletError('invalid', `image: ${w}x${h} is not a positive integer size`);
  if (w > LIMITS.imageSide || h > LIMITS.imageSide || w * h > LIMITS.imagePixels)
    throw new OwletError('limit', `image: ${w}x${h} over the limits (max side ${LIMITS.imageSide}, ` +
      `max ${LIMITS.imagePixels} pixels)`);
}
function checkImageBytes(n) {
  if (n > LIMITS.imageBytes)
    throw new OwletError('limit', `image: ${n} bytes of encoded data, over the ${LIMITS.imageBytes}-byte limit`);
}

/** Sampling options are checked before the question runs, so a bad option
 * leaves the conversation as it was (the engine checks them again). */
function checkAskOptions(o) {
  const bad = (what) => { throw new OwletError('invalid', `ask: ${what}`); };
  const isNum = (v) => typeof v === 'number' && !Number.isNaN(v);
  // a value as the caller wrote it: '8' (a string) must not read as 8
  const show = (v) => (typeof v === 'string' ? `${JSON.stringify(v)} (a string)` : String(v));
  const t = o.temperature ?? 0, tp = o.topP ?? 1, mp = o.minP ?? 0, rp = o.repeatPenalty ?? 1;
  if (!isNum(t) || !Number.isFinite(t)) bad(`temperature ${show(t)} is not a finite number`);
  if (!isNum(tp) || !(tp > 0)) bad(`topP (top_p) ${show(tp)} must be a number > 0 (1 = off)`);
  if (!isNum(mp) || !(mp <= 1)) bad(`minP (min_p) ${show(mp)} must be a number <= 1 (0 = off)`);
  if (!isNum(rp) || !(rp > 0) || !Number.isFinite(rp)) bad(`repeatPenalty (repetition_penalty) ${show(rp)} must be a finite number > 0 (1 = off)`);
  const k = o.topK ?? 0, n = o.maxTokens ?? 256, seed = o.seed ?? 0;
  if (!Number.isInteger(k) || Math.abs(k) > 1e9) bad(`topK ${show(k)} is not an integer`);
  // 0 once meant "no limit but the context": refused, as OpenAI's max_tokens >= 1
  if (!Number.isInteger(n) || n < 1 || n > 1e9) bad(`maxTokens ${show(n)} is not an integer in 1..1e9 (default 256)`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 53) bad(`seed ${show(seed)} is not an integer in 0..2^53`);
  const stop = o.stop ?? [];
  if (!Array.isArray(stop) || stop.length > 64) bad(`stop must be an array of at most 64 strings`);
  for (const x of stop) {
    if (typeof x !== 'string') bad('stop strings must be strings');
    if (x.length > 4096) throw new OwletError('limit', `ask: a stop string of ${x.length} characters (max 4096)`);
  }
}

// ---------------------------------------------------------------- images

function decodeDataUrl(url) {
  const m = /^data:([^,]*?)(;base64)?,(.*)$/s.exec(url);
  if (!m) throw new OwletError('invalid', 'image: malformed data: URL');
  checkImageBytes(Math.floor(m[3].length * (m[2] ? 0.75 : 1 / 3)));
  if (m[2]) {
    let bin;
    try { bin = atob(m[3]); } catch { throw new OwletError('invalid', 'image: data: URL with bad base64'); }
    const b = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
    return b;
  }
  return new TextEncoder().encode(decodeURIComponent(m[3]));
}

/** Turn any supported image source into engine-worker 'image' args. */
async function imageArgs(src, opts = {}) {
  if (typeof src === 'string' || src instanceof URL) {
    const url = String(src);
    if (url.startsWith('data:')) return { encoded: decodeDataUrl(url) };
    if (!isBrowser && !/^https?:/.test(url)) {
      const { readFile, stat } = await import('node:fs/promises');
      const f = url.startsWith('file:') ? new URL(url) : url;
      let b;
      try {
        checkImageBytes((await stat(f)).size);
        b = await readFile(f);
      } catch (e) {
        if (e instanceof OwletError) throw e;
        throw new OwletError('io', `image ${url}: ${e.message}`, e);
      }
      return { encoded: new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice() };
    }
    const abs = new URL(url, globalThis.location ? location.href : undefined);
    if (globalThis.location && abs.origin !== location.origin && !(opts.allowedOrigins || []).includes(abs.origin))
      throw new OwletError('bad_origin', `image URL ${abs.href} is not on this page's origin ${location.origin}`);
    // a redirect must stay on the allowed origins too; the body is capped
    const allowed = globalThis.location ? [location.origin, ...(opts.allowedOrigins || [])] : (opts.allowedOrigins || []);
    return { encoded: await fetchBytes(abs.href, { signal: opts.signal, maxBytes: LIMITS.imageBytes, allowedOrigins: allowed }) };
  }
  if (src instanceof Uint8Array || src instanceof ArrayBuffer) {
    checkImageBytes(src.byteLength);
    return { encoded: new Uint8Array(src).slice() };
  }
  if (typeof Blob !== 'undefined' && src instanceof Blob) {
    checkImageBytes(src.size);
    return { encoded: new Uint8Array(await src.arrayBuffer()) };
  }
  if (src && src.data && typeof src.width === 'number' && typeof src.height === 'number') { // ImageData (or alike)
    checkPixels(src.width, src.height);
    if (!ArrayBuffer.isView(src.data) || src.data.byteLength !== src.width * src.height * 4)
      throw new OwletError('invalid', `image: ${src.data && src.data.byteLength} bytes of RGBA for ${src.width}x${src.height}`);
  }
  if (src && src.data && typeof src.width === 'number' && typeof src.height === 'number')
    return { rgba: new Uint8Array(src.data.buffer, src.data.byteOffset, src.data.byteLength).slice(),
      width: src.width, height: src.height, stride: src.width * 4 };
  const isCanvas = (typeof HTMLCanvasElement !== 'undefined' && src instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== 'undefined' && src instanceof OffscreenCanvas);
  if (isCanvas || (typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap)) checkPixels(src.width, src.height);
  if (isCanvas) {
    const g = src.getContext('2d');
    if (g) return imageArgs(g.getImageData(0, 0, src.width, src.height));
  }
  if ((typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap) || isCanvas) {
    const c = new OffscreenCanvas(src.width, src.height);
    const g = c.getContext('2d');
    g.drawImage(src, 0, 0);
    return imageArgs(g.getImageData(0, 0, src.width, src.height));
  }
  throw new OwletError('invalid', 'addImage: want a canvas, OffscreenCanvas, ImageData, ImageBitmap, Blob, bytes or URL');
}

function cloneImageArgs(a) {
  return a.encoded ? { encoded: a.encoded.slice() } : { ...a, rgba: a.rgba.slice() };
}

// ---------------------------------------------------------------- engine (1..n stages)

/**
 * @typedef {{temperature?:number, topK?:number, topP?:number, minP?:number, repeatPenalty?:number,
 *            seed?:number, maxTokens?:number, stop?:string[], signal?:AbortSignal,
 *            truncate?:'error'|'history', _debugLogits?:(logits:Float32Array, token:number)=>void}} AskOptions
 * _debugLogits is for tests only (not a stable API): called before each
 * token's piece with the logits it was sampled from (the first call: the last
 * prompt position's), n_vocab floats, a copy the callee may keep.
 */

class Pipeline {
  /** @param {EngineWorker[]} stages @param {any[]} infos */
  constructor(stages, infos, initInfo) {
    this.stages = stages;
    this.infos = infos;
    this.init = initInfo;
  }
  get s0() { return this.stages[0]; }
  get multi() { return this.stages.length > 1; }
  async ask(text) {
    if (!this.multi) return this.s0.call('ask', { text });
    const { rows, pos0 } = await this.s0.call('prepare', { text });
    const { x, mod } = await this.s0.call('embed', { rows });
    this.logits = await this.forward(x, rows, pos0, mod);
  }
  async forward(x, n, pos0, mod) {
    for (const st of this.stages) {
      const m = mod ? mod.slice() : null;
      ({ x } = await st.call('run', { x, n, pos0, mod: m }, m ? [x.buffer, m.buffer] : [x.buffer]));
    }
    const d = x.length / n;
    const last = x.slice((n - 1) * d);
    const { logits } = await this.stages[this.stages.length - 1].call('head', { x: last, n: 1 }, [last.buffer]);
    return logits;
  }
  /** One token; wantLogits (debug/test): r.logits = the logits it was sampled from. */
  async step(wantLogits = false) {
    if (!this.multi) {
      const r = await this.s0.call('step');
      if (wantLogits && !(r.done && r.reason === 'context')) r.logits = (await this.s0.call('logits')).logits;
      return r;
    }
    const fed = await this.s0.call('embed_pending');
    if (fed) this.logits = await this.forward(fed.x, 1, fed.pos, null);
    const logits = this.logits;
    this.logits = null;
    const copy = wantLogits ? logits.slice() : null;
    const r = await this.s0.call('step_logits', { logits }, [logits.buffer]);
    if (copy) r.logits = copy;
    return r;
  }
  async reset() { await Promise.all(this.stages.map((s) => s.call('reset'))); }
  terminate() { for (const s of this.stages) s.terminate(); }
}

// ---------------------------------------------------------------- public API

/** A conversation. Created by owl.chat(); the model runs one conversation at a time. */
export class Chat {
  /** @param {Owlet} owl @param {{system?:string, truncate?:'error'|'history'}} [opts] */
  constructor(owl, opts = {}) {
    this.owl = owl;
    this.system = opts.system || '';
    /** 'error' (default): a question that does not fit the context fails with 'limit';
     *  'history': the oldest turns are dropped until it fits. */
    this.truncate = opts.truncate || 'error';
    /** turns dropped so far by truncate: 'history' */
    this.dropped = 0;
    /** @type {{role:'user'|'assistant', text:string, images:any[]}[]} */
    this.turns = [];
    this.images = []; // pending for the next question
    this.synced = false;
  }

  async _activate() {
    const owl = this.owl;
    owl._checkLoaded();
    if (owl._active === this && this.synced) return;
    await owl.engine.reset();
    owl._active = this;
    for (const t of this.turns) {
      for (const im of t.images) await this._sendImage(cloneImageArgs(im));
      await owl.engine.s0.call('push_turn', { role: t.role, text: t.text });
    }
    for (const im of this.images) await this._sendImage(cloneImageArgs(im));
    this.synced = true;
  }

  _sendImage(a) {
    const buf = a.encoded || a.rgba;
    return this.owl.engine.s0.call('image', a, [buf.buffer]);
  }

  /**
   * Add an image to the next question: canvas pixels go in as RGBA (no
   * re-encoding); Blobs, bytes and URLs are decoded by the engine exactly as
   * the reference (PIL) decodes them.
   * @param {HTMLCanvasElement|OffscreenCanvas|ImageData|ImageBitmap|Blob|Uint8Array|string|URL} src
   * @param {{signal?:AbortSignal}} [opts]
   */
  async addImage(src, opts = {}) {
    if (this.images.length >= LIMITS.imagesPerTurn)
      throw new OwletError('limit', `addImage: ${this.images.length} images for one question (max ${LIMITS.imagesPerTurn})`);
    const a = await imageArgs(src, { ...opts, allowedOrigins: this.owl.opts.allowedOrigins });
    checkSignal(opts.signal);
    return this.owl.mutex.run(async () => {
      checkSignal(opts.signal);
      await this._activate();
      // an abort rejects now; the engine finishes decoding in the background and
      // the next call resyncs (reset + replay) without this image
      await abortable(this._sendImage(cloneImageArgs(a)), opts.signal, () => { this.synced = false; });
      this.images.push(a);
    });
  }

  /**
   * Ask a question; yields the answer piece by piece (whole UTF-8 characters).
   * Abort (opts.signal) rejects with AbortError between tokens; the chat stays
   * usable and keeps the partial answer.
   * @param {string} text @param {AskOptions} [opts]
   * @returns {AsyncGenerator<string, void, void>}
   */
  async *ask(text, opts = {}) {
    if (typeof text !== 'string') throw new OwletError('invalid', 'ask: text must be a string');
    // the engine takes C strings: a NUL would silently cut what the model sees
    if (text.includes('\0'))
      throw new OwletError('invalid', `ask: the text holds a NUL character (U+0000) at index ${text.indexOf('\0')}; remove it`);
    if (text.length > LIMITS.textChars)
      throw new OwletError('limit', `ask: ${text.length} characters, over the ${LIMITS.textChars} limit`);
    const truncate = opts.truncate ?? this.truncate;
    if (truncate !== 'error' && truncate !== 'history')
      throw new OwletError('invalid', `ask: truncate ${JSON.stringify(truncate)}, want 'error' or 'history'`);
    checkAskOptions(opts);
    const { signal } = opts;
    checkSignal(signal);
    const owl = this.owl;
    const release = await owl.mutex.acquire();
    let started = false, answer = '';
    try {
      checkSignal(signal);
      await this._activate();
      const eng = owl.engine;
      const before = await eng.s0.call('stats');
      for (;;) {
        try {
          await eng.ask(text);
          break;
        } catch (e) {
          // Context policy: 'error' (default) gives the limit error; 'history'
          // drops the oldest exchange (its images too) and replays the rest.
          if (!(e instanceof OwletError && e.code === 'limit' && truncate === 'history' && this.turns.length >= 2)) throw e;
          this.turns.splice(0, 2);
          this.dropped = (this.dropped || 0) + 2;
          this.synced = false;
          await this._activate();
        }
      }
      started = true; // the user turn is in the engine: 'end' must close it
      this.turns.push({ role: 'user', text, images: this.images });
      this.images = [];
      owl._last = { before, finish: null };
      checkSignal(signal);
      await eng.s0.call('gen_begin', {
        temperature: opts.temperature ?? 0, topK: opts.topK ?? 0, topP: opts.topP ?? 1, minP: opts.minP ?? 0,
        repeatPenalty: opts.repeatPenalty ?? 1, seed: opts.seed ?? 0, maxTokens: opts.maxTokens ?? 256,
        stop: opts.stop || [],
      });
      for (;;) {
        checkSignal(signal);
        const r = await eng.step(!!opts._debugLogits);
        if (r.logits) opts._debugLogits(r.logits, r.token);
        if (r.piece) { answer += r.piece; yield r.piece; }
        if (r.done) { owl._last.finish = r.reason; break; }
      }
    } catch (e) {
      if (e && e.name !== 'AbortError' && !started) this.synced = false;
      throw e;
    } finally {
      try {
        if (started) {
          await owl.engine.s0.call('end');
          this.turns.push({ role: 'assistant', text: answer, images: [] });
        }
      } finally { release(); }
    }
  }

  /** Forget this conversation (turns and images). */
  async reset() {
    this.turns = [];
    this.images = [];
    this.synced = false;
    if (this.owl._active === this) await this.owl.mutex.run(() => this.owl.engine.reset());
  }
}

export class Owlet {
  /** @private */
  constructor(engine, manifest, opts, initInfo) {
    this.engine = engine;
    this.manifest = manifest;
    this.opts = opts;
    this.info = engine.infos[0];
    this.threads = initInfo.threads;
    this.build = initInfo.build;
    this.mutex = new Mutex();
    this._active = null;
    this._last = null;
    const self = this;
    /** @type {((opts?:{system?:string}) => Chat) & {completions:{create:(req:any)=>Promise<any>}}} */
    this.chat = Object.assign((o) => new Chat(self, o), {
      completions: { create: (req) => self._completions(req) },
    });
  }

  /**
   * Download (or reuse the cached chunks of) a model and start its engine.
   * @param {string} manifestUrl
   * @param {{onProgress?:(p:any)=>void, threads?:number, signal?:AbortSignal, budgetMiB?:number,
   *          backend?:any, wasmBase?:string|URL, nCtx?:number, kvType?:'f16'|'f32', aspect?:string,
   *          allowedOrigins?:string[], concurrency?:number, retries?:number, fetch?:Function,
   *          singleThread?:boolean, timeoutMs?:number}} [opts]
   * @returns {Promise<Owlet>}
   */
  static async load(manifestUrl, opts = {}) {
    const { signal, onProgress } = opts;
    checkSignal(signal);
    const manifest = await loadManifest(manifestUrl, opts);
    const backend = opts.backend || (isBrowser ? new IdbBackend()
      : manifest.chunks.every((c) => c.url.startsWith('file:')) ? new FileBackend(manifest) : new MemoryBackend());
    const plan = stagePlan(manifest, opts);
    const budget = (opts.budgetMiB ?? 3200) * 1048576;
    for (const [i, st] of plan.entries()) {
      if (st.size > budget)
        throw new OwletError('limit', `stage ${i} holds ${(st.size / 1048576).toFixed(1)} MiB of weights, over the ` +
          `${(budget / 1048576).toFixed(1)} MiB per-instance budget: convert the model with a smaller --budget-mib`);
      if (st.size > MAX_STAGE_BYTES)
        throw new OwletError('limit', `stage ${i} holds ${(st.size / 1048576).toFixed(1)} MiB of weights in one piece, over the ` +
          `${MAX_STAGE_BYTES / 1048576} MiB one wasm32 instance can allocate at once: convert the model again with a current ` +
          'owlet-convert (its stage plan keeps every stage under 2000 MiB)');
    }
    await ensureChunks(manifest, { ...opts, backend });
    const isolated = isBrowser ? globalThis.crossOriginIsolated === true : true;
    const hw = (globalThis.navigator && navigator.hardwareConcurrency) || 4;
    const wantThreads = Math.max(1, Math.min(64, Math.floor(opts.threads ?? Math.min(hw, 8))));
    const threaded = isolated && !opts.singleThread && wantThreads > 1;
    let wb = opts.wasmBase ? String(opts.wasmBase) : new URL('../build/wasm/', import.meta.url).href;
    if (!isBrowser && !/^[a-z][a-z0-9+.-]*:/i.test(wb)) wb = 'file://' + (wb.startsWith('/') ? wb : `${process.cwd()}/${wb}`);
    if (!wb.endsWith('/')) wb += '/';
    const base = new URL(wb, isBrowser ? location.href : undefined);
    const engineUrl = new URL(threaded ? 'owlet.js' : 'owlet-st.js', base).href;

    const workers = [];
    let total = 0;
    try {
      const infos = [];
      let initInfo = null;
      for (const st of plan) total += st.size + (st.header ? st.headerSize : 0);
      let done = 0, nChunks = 0;
      // Stages load side by side: each has its own worker and memory, so one stage's
      // engine start-up and model set-up overlap the others' byte copies (the memory peak
      // is the same: every stage stays resident anyway). The copies themselves go one
      // stage after another: with every stage streaming IndexedDB Blobs at once, 2 of 6
      // full-size loads in Chromium 156 stalled for good; one stream at a time never has.
      let failed = null;
      let copies = Promise.resolve();
      const oneAtATime = (fn) => { const p = copies.then(fn); copies = p.catch(() => {}); return p; };
      const loadStage = async (i) => {
        const st = plan[i];
        const w = await EngineWorker.spawn();
        workers[i] = w;
        if (failed) throw failed;
        const ii = await w.call('init', { engineUrl, threads: threaded ? wantThreads : 1 });
        if (i === 0) initInfo = ii;
        const copy = async (header, start, end) => {
          await w.call(header ? 'alloc_header' : 'alloc', { size: end - start });
          await readChunksSeq(manifest, backend, start, end, signal, async (off, bytes) => {
            if (failed) throw failed;
            let n;
            if (isBlob(bytes)) { // a handle: the worker streams it into its memory
              await w.call('chunk', { offset: off, blob: bytes, header });
              n = bytes.size;
            } else {
              // transfer the buffer read from the store when it is ours alone (IndexedDB and
              // chunk-file reads are fresh), else a private copy (MemoryBackend keeps its own)
              const own = backend.freshReads && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
              const b = own ? bytes : bytes.slice();
              await w.call('chunk', { offset: off, bytes: b, header }, [b.buffer]);
              n = b.byteLength;
            }
            done += n;
            nChunks++;
            if (onProgress) onProgress({ phase: 'load', bytesDone: done, bytesTotal: total, chunksDone: nChunks,
              chunksTotal: manifest.chunks.length, rate: 0, eta: 0, stage: i, stages: plan.length });
          });
        };
        await oneAtATime(async () => {
          if (failed) throw failed;
          if (st.header) await copy(true, 0, st.headerSize);
          await copy(false, st.offset, st.offset + st.size);
        });
        checkSignal(signal);
        infos[i] = await w.call('load', {
          headerSize: st.header ? st.headerSize : 0, rangeOffset: st.header ? st.offset : 0,
          fileSize: manifest.totalSize, layerBegin: st.layerBegin, layerEnd: st.layerEnd, flags: st.flags,
          aspect: opts.aspect || '', nCtx: opts.nCtx || 0, nBatch: opts.nBatch || 0,
          kvF32: opts.kvType === 'f32', threads: ii.threads,
        });
      };
      // every stage settles (a failure makes the others stop at their next step) before any worker is terminated
      await Promise.all(plan.map((_, i) => loadStage(i).catch((e) => { failed = failed || e; })));
      if (failed) throw failed;
      if (onProgress) onProgress({ phase: 'ready', bytesDone: total, bytesTotal: total, chunksDone: manifest.chunks.length,
        chunksTotal: manifest.chunks.length, rate: 0, eta: 0 });
      return new Owlet(new Pipeline(workers, infos, initInfo), manifest, opts, initInfo);
    } catch (e) {
      for (const w of workers) if (w) w.terminate();
      throw e;
    }
  }

  /**
   * What this page can run: the threaded build needs cross-origin isolation
   * (COOP same-origin + COEP require-corp, set by the server or by a service
   * worker such as web/coi-sw.js); otherwise Owlet.load uses owlet-st.
   * @returns {{crossOriginIsolated:boolean, sharedArrayBuffer:boolean, hardwareConcurrency:number, build:string}}
   */
  static threadSupport() {
    const iso = isBrowser ? globalThis.crossOriginIsolated === true : true;
    return { crossOriginIsolated: iso, sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
      hardwareConcurrency: (globalThis.navigator && navigator.hardwareConcurrency) || 1, build: iso ? 'owlet' : 'owlet-st' };
  }

  /** Cached models: list(), usage(), delete(id). */
  static get cache() { return cache; }

  /** Engine workers alive in this realm (for tests: a failed load must leave none behind). */
  static get _liveWorkers() { return EngineWorker.live; }

  _checkLoaded() {
    if (!this.engine) throw new OwletError('state', 'the model was unloaded');
  }

  /** Counters of the model's conversation so far, and the build in use. */
  async stats() {
    this._checkLoaded();
    const e = this.engine;
    const [s, ...rest] = await this.mutex.run(() => Promise.all(e.stages.map((st, i) =>
      (i === 0 ? st.call('stats') : st.call('stats').catch(() => ({ wasmMemoryBytes: 0 }))))));
    const pre = s.prefillMs > 0 ? s.promptTokens / (s.prefillMs / 1e3) : 0;
    const dec = s.decodeMs > 0 ? s.completionTokens / (s.decodeMs / 1e3) : 0;
    return { ...s, prefillTokPerS: pre, decodeTokPerS: dec, threads: this.threads, build: this.build,
      stages: e.stages.length, stageMemoryBytes: [s, ...rest].map((x) => x.wasmMemoryBytes) };
  }

  /** Stop the engine workers and free their memory. */
  async unload() {
    if (!this.engine) return;
    const e = this.engine;
    this.engine = null;
    await Promise.allSettled(e.stages.map((s) => s.call('unload')));
    e.terminate();
  }

  async _completions(req) {
    if (!req || !Array.isArray(req.messages) || req.messages.length === 0)
      throw new OwletError('invalid', 'chat.completions.create: messages must be a non-empty array');
    const msgs = req.messages.filter((m) => m.role !== 'system');
    const last = msgs[msgs.length - 1];
    if (!last || last.role !== 'user') throw new OwletError('invalid', 'chat.completions.create: the last message must be from the user');
    const chat = new Chat(this);
    const parse = async (m) => {
      if (typeof m.content === 'string') return { text: m.content, images: [] };
      if (!Array.isArray(m.content)) throw new OwletError('invalid', `message content must be a string or an array of parts`);
      let text = '';
      const images = [];
      for (const p of m.content) {
        if (p.type === 'text') text += p.text;
        else if (p.type === 'image_url') images.push(await imageArgs(p.image_url && p.image_url.url, { signal: req.signal, allowedOrigins: this.opts.allowedOrigins }));
        else throw new OwletError('invalid', `unknown content part type ${JSON.stringify(p.type)}`);
      }
      return { text, images };
    };
    msgs.forEach((m, i) => {
      if (m.role !== (i % 2 === 0 ? 'user' : 'assistant'))
        throw new OwletError('invalid', `message ${i}: roles must alternate user/assistant (got ${m.role})`);
    });
    for (let i = 0; i < msgs.length - 1; i++) {
      const m = msgs[i];
      if (m.role !== (i % 2 === 0 ? 'user' : 'assistant'))
        throw new OwletError('invalid', `message ${i}: roles must alternate user/assistant (got ${m.role})`);
      chat.turns.push({ role: m.role, ...(await parse(m)) });
    }
    const q = await parse(last);
    chat.images = q.images;
    const opts = { temperature: req.temperature ?? 0, topP: req.top_p, topK: req.top_k, seed: req.seed,
      maxTokens: req.max_tokens ?? 256, stop: typeof req.stop === 'string' ? [req.stop] : req.stop,
      repeatPenalty: req.repetition_penalty, signal: req.signal };
    const id = 'chatcmpl-' + Math.random().toString(36).slice(2, 12);
    const created = Math.floor(Date.now() / 1000), model = this.manifest.name || this.manifest.id;
    const self = this;
    const usage = async () => {
      const s = await self.engine.s0.call('stats');
      const b = self._last.before;
      const p = s.promptTokens - b.promptTokens, c = s.lastTokens;
      return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
    };
    const finish = () => (self._last.finish === 'length' || self._last.finish === 'context' ? 'length' : 'stop');
    if (!req.stream) {
      let content = '';
      for await (const piece of chat.ask(q.text, opts)) content += piece;
      return { id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish() }],
        usage: await self.mutex.run(usage) };
    }
    return (async function* () {
      let first = true;
      for await (const piece of chat.ask(q.text, opts)) {
        yield { id, object: 'chat.completion.chunk', created, model,
          choices: [{ index: 0, delta: first ? { role: 'assistant', content: piece } : { content: piece }, finish_reason: null }] };
        first = false;
      }
      yield { id, object: 'chat.completion.chunk', created, model,
        choices: [{ index: 0, delta: {}, finish_reason: finish() }], usage: await self.mutex.run(usage) };
    })();
  }
}

/** Read [start, end) of the model from the store one chunk at a time, awaiting
 * fn(offsetInRange, bytes) for each, so at most one chunk is held in JS
 * (bytes: a Uint8Array, or a Blob from IdbBackend, which holds no bytes). */
async function readChunksSeq(manifest, backend, start, end, signal, fn) {
  for (const c of manifest.chunks) {
    if (c.offset + c.size <= start || c.offset >= end) continue;
    checkSignal(signal);
    const rec = await backend.get(`${manifest.id}/${c.index}`);
    if (!rec || rec.sha256 !== c.sha256) throw new OwletError('cache', `chunk ${c.index} is missing from the cache`);
    const lo = Math.max(start, c.offset) - c.offset, hi = Math.min(end, c.offset + c.size) - c.offset;
    await fn(c.offset + lo - start, isBlob(rec.bytes) ? rec.bytes.slice(lo, hi) : rec.bytes.subarray(lo, hi));
  }
}

/** The manifest's stage plan as load steps; one whole-file step when there is one stage. */
function stagePlan(manifest, opts) {
  const raw = manifest.stages || [];
  const headerSize = Number(manifest.raw && manifest.raw.file && manifest.raw.file.header_size) || 0;
  if (raw.length <= 1 || opts.forceSingleStage)
    return [{ header: false, offset: 0, size: manifest.totalSize, layerBegin: 0, layerEnd: 0, flags: 0 }];
  if (!(headerSize > 0)) throw new OwletError('bad_manifest', 'manifest has several stages but no file.header_size');
  return raw.map((s, i) => {
    const offset = Number(s.offset), size = Number(s.size);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || size <= 0 || offset + size > manifest.totalSize)
      throw new OwletError('bad_manifest', `stage ${i}: byte range ${s.offset}+${s.size} outside the file`);
    const first = i === 0, last = i === raw.length - 1;
    return { header: true, headerSize, offset, size, layerBegin: Number(s.layer_start), layerEnd: Number(s.layer_end),
      flags: (first ? 0 : 3) | (last ? 0 : 4) };
  });
}
