// owlet.mjs - the JavaScript API of owlet (browser and Node 20), one ES module.
//
//   const owl = await Owlet.load('models/demo/manifest.json', { onProgress });
//   const chat = owl.chat();
//   await chat.addImage(canvas);
//   for await (const piece of chat.ask('What is in the picture?', { maxTokens: 64 })) out.textContent += piece;
//   owl.unload();
//
// The public API only; each job has its module: engine.mjs (the engine
// workers, one per pipeline stage, and the coordinator), store.mjs (download,
// verify, IndexedDB, readChunks), images.mjs (image arguments), files.mjs
// (Node's file backend), errors.mjs (OwletError; status codes generated from
// the C list). The conversation itself is the engine's (owl_chat in C). See
// docs/API.md and docs/ARCHITECTURE.md.

import { OwletError, abortError, checkSignal } from './errors.mjs';
import { EngineWorker, checkStageSizes, selectBuild, stagePlan, startPipeline } from './engine.mjs';
import { FileBackend } from './files.mjs';
import { LIMITS, cloneImageArgs, imageArgs, isBrowser } from './images.mjs';
import { IdbBackend, MemoryBackend, OpfsBackend, browserBackend, cache, ensureChunks, loadManifest } from './store.mjs';
import { threadSupport } from './threads.mjs';
import { detectFeatures } from './features.mjs';

export { OwletError, cache, LIMITS };
// the chunk store pieces a page needs besides Owlet (its manifest and backends)
export { IdbBackend, MemoryBackend, OpfsBackend, browserBackend, loadManifest };

/** p, or AbortError as soon as signal aborts (onAbort runs first); p itself runs on. */
function abortable(p, signal, onAbort) {
  if (!signal) return p;
  return new Promise((resolve, reject) => {
    const on = () => { onAbort(); reject(abortError()); };
    // aborted already (e.g. while the call was being sent): p's own end is not wanted
    if (signal.aborted) { p.catch(() => {}); on(); return; }
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

/**
 * @typedef {{temperature?:number, topK?:number, topP?:number, minP?:number, repeatPenalty?:number,
 *            seed?:number, maxTokens?:number, stop?:string[], signal?:AbortSignal,
 *            truncate?:'error'|'history', _debugLogits?:(logits:Float32Array, token:number)=>void}} AskOptions
 * _debugLogits is for tests only (not a stable API): called before each
 * token's piece with the logits it was sampled from (the first call: the last
 * prompt position's), n_vocab floats, a copy the callee may keep.
 */

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

  _sendImage(a) { return this.owl.engine.image(a); }

  /** An abort in the middle of engine work: the engine stops it (pipeline cancel)
   * and the next call replays this chat without it. */
  _stop() {
    this.synced = false;
    if (this.owl.engine) this.owl.engine.cancel();
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
      // an abort rejects now and stops the engine at its next layer (threaded
      // builds; owlet-st finishes in the background); the next call resyncs
      // (reset + replay) without this image
      await abortable(this._sendImage(cloneImageArgs(a)), opts.signal, () => this._stop());
      this.images.push(a);
    });
  }

  /**
   * Ask a question; yields the answer piece by piece (whole UTF-8 characters).
   * Abort (opts.signal) rejects with AbortError: while the prompt runs, at once
   * (the engine stops at its next layer in the threaded builds; the question
   * stays with an empty answer), later between tokens (the partial answer is
   * kept). The chat stays usable.
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
      const gen = { temperature: opts.temperature ?? 0, topK: opts.topK ?? 0, topP: opts.topP ?? 1, minP: opts.minP ?? 0,
        repeatPenalty: opts.repeatPenalty ?? 1, seed: opts.seed ?? 0, maxTokens: opts.maxTokens ?? 256, stop: opts.stop || [] };
      for (;;) {
        try {
          // an abort while the prompt runs stops it at the next layer (threaded builds)
          await abortable(eng.ask(text, gen), signal, () => this._stop());
          break;
        } catch (e) {
          if (e && e.name === 'AbortError') { // the question stays, unanswered, as when stopped before its first token
            this.turns.push({ role: 'user', text, images: this.images }, { role: 'assistant', text: '', images: [] });
            this.images = [];
            throw e;
          }
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
      for (;;) {
        checkSignal(signal);
        const r = await eng.step(!!opts._debugLogits);
        if (r.logits) opts._debugLogits(r.logits, r.token);
        if (r.piece) { answer += r.piece; yield r.piece; }
        if (r.done) { owl._last.finish = r.reason; break; }
      }
    } catch (e) {
      // an engine error may leave the engine's conversation apart from this one: replay it next time
      if (e && e.name !== 'AbortError') this.synced = false;
      throw e;
    } finally {
      try {
        if (started) {
          await owl.engine.end();
          this.turns.push({ role: 'assistant', text: answer, images: [] });
        }
      } finally { release(); }
    }
  }

  /**
   * Run what is known of the next question before its text is: the images added
   * for it and the conversation before them (in the prompt template the images
   * come before the question's text). ask() then runs only the question's own
   * tokens, with the same ids and answer as without the prime. A page calls it
   * after addImage, while the user types. Counted as prefill in stats(). Resolves
   * the prompt rows it ran (0: nothing new to run). Serialised like every call;
   * abort rejects at once (the engine stops at its next layer in the threaded
   * builds, finishes in the background in owlet-st; the next call resyncs the
   * chat without the primed rows).
   * @param {{signal?:AbortSignal}} [opts] @returns {Promise<number>}
   */
  async prime(opts = {}) {
    checkSignal(opts.signal);
    return this.owl.mutex.run(async () => {
      checkSignal(opts.signal);
      await this._activate();
      return abortable(this.owl.engine.prime(), opts.signal, () => this._stop());
    });
  }

  /** Forget the images added for the next question (and the rows prime ran for them):
   * for a picture that changed after addImage. The conversation stays. */
  async clearImages() {
    return this.owl.mutex.run(async () => {
      this.images = [];
      if (this.owl._active === this && this.synced) await this.owl.engine.clearImages();
    });
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
    this._loadError = null;
    /** Resolves when every stage of the model has loaded: at once, unless Owlet.load's
     * `early` resolved first. Rejects with the load's error if a later stage fails (the
     * model is then unusable: every call rejects with that error; unload() and load again). */
    this.loaded = engine.loaded.then(() => undefined, (e) => { this._loadError = e; throw e; });
    this.loaded.catch(() => {}); // awaited by whoever wants it; never an unhandled rejection
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
   *          singleThread?:boolean, timeoutMs?:number, build?:'owlet'|'owlet-relaxed'|'owlet-st',
   *          imageCache?:number, early?:boolean}} [opts]
   *   imageCache: pictures whose encoded rows the engine keeps for reuse (0..64, default 4, 0 = off)
   *   early: for a model in several stages, resolve as soon as the first stage (the vision tower and
   *   the conversation) has loaded, while the others go on loading: addImage encodes at once, and a
   *   call that needs a later stage waits for it. `owl.loaded` resolves when all have loaded (then
   *   onProgress reports 'ready'); it rejects, and so does every later call, if one fails.
   *   build: force an engine build (default: owlet-relaxed where features.mjs's probe runs relaxed SIMD
   *   and shared memory is there, at any thread count; else owlet for 2+ threads, owlet-st for one)
   * @returns {Promise<Owlet>}
   */
  static async load(manifestUrl, opts = {}) {
    checkSignal(opts.signal);
    const ic = opts.imageCache;
    if (ic !== undefined && !(Number.isInteger(ic) && ic >= 0 && ic <= 64))
      throw new OwletError('invalid', `imageCache ${JSON.stringify(ic)} is not an integer in 0..64 (pictures kept; 0 = off)`);
    const manifest = await loadManifest(manifestUrl, opts);
    const backend = opts.backend || (isBrowser ? await browserBackend()
      : manifest.chunks.every((c) => c.url.startsWith('file:')) ? new FileBackend(manifest) : new MemoryBackend());
    const plan = stagePlan(manifest, opts);
    checkStageSizes(plan, opts.budgetMiB ?? 3200);
    await ensureChunks(manifest, { ...opts, backend });
    // Node: one thread per core (at most 8), as in a browser
    const threads = opts.threads ?? (isBrowser ? undefined : Math.min(8, (await import('node:os')).availableParallelism()));
    const engine = await startPipeline(manifest, backend, plan, selectBuild({ ...opts, threads }), opts);
    return new Owlet(engine, manifest, opts, engine.init);
  }

  /**
   * What this page can run: the threaded build needs cross-origin isolation
   * (COOP same-origin + COEP require-corp, set by the server or by a service
   * worker such as web/coi-sw.js) and a SharedArrayBuffer; otherwise
   * Owlet.load uses owlet-st. `reason` says why not threaded.
   * @returns {{threaded:boolean, crossOriginIsolated:boolean, sharedArrayBuffer:boolean, hardwareConcurrency:number,
   *            defaultThreads:number, build:string, reason:string}}
   */
  static threadSupport() {
    const ts = threadSupport(isBrowser);
    if (ts.threaded && detectFeatures().relaxedSimd) ts.build = 'owlet-relaxed';
    return ts;
  }

  /** Cached models: list(), usage(), delete(id). */
  static get cache() { return cache; }

  /** Engine workers alive in this realm (for tests: a failed load must leave none behind). */
  static get _liveWorkers() { return EngineWorker.live; }

  _checkLoaded() {
    if (this._loadError) throw this._loadError;
    if (!this.engine) throw new OwletError('state', 'the model was unloaded');
  }

  /**
   * Counters of the model's conversation so far, and the build in use.
   * imageEncodeMs, prefillMs and decodeMs are wall clock at the coordinator
   * for the whole pipeline (the same meaning for one stage and for n):
   * prefill runs the prompt through every stage up to the first sampled token;
   * decode is every later token (completionTokens of them: fed back through
   * every stage, then sampled). perStage[i] holds stage i's own compute
   * milliseconds (its layers only) and its wasm memory: the breakdown.
   * imageCache: the engine's cache of encoded pictures (stage 0) —
   * {hits, misses, entries, capacity, bytes, savedMs}; a hit skips the vision
   * tower. imageWarmMs: wall clock spent in warmImage (not in imageEncodeMs).
   */
  async stats() {
    this._checkLoaded();
    const e = this.engine;
    const { per, clock } = await this.mutex.run(() => e.stats());
    const s = per[0];
    const pre = clock.prefillMs > 0 ? s.promptTokens / (clock.prefillMs / 1e3) : 0;
    const dec = clock.decodeMs > 0 ? s.completionTokens / (clock.decodeMs / 1e3) : 0;
    const perStage = per.map((x, i) => ({ layers: [e.infos[i].layer_begin, e.infos[i].layer_end],
      prefillMs: x.prefillMs || 0, decodeMs: x.decodeMs || 0, imageEncodeMs: x.imageEncodeMs || 0,
      wasmMemoryBytes: x.wasmMemoryBytes, loaded: !x.loading }));
    return { promptTokens: s.promptTokens, completionTokens: s.completionTokens, lastTokens: s.lastTokens,
      images: s.images, imageCache: s.imageCache, nPast: s.nPast, imageEncodeMs: clock.imageEncodeMs, imageWarmMs: clock.imageWarmMs, prefillMs: clock.prefillMs,
      decodeMs: clock.decodeMs, prefillTokPerS: pre, decodeTokPerS: dec, threads: this.threads, build: this.build,
      stages: e.stages.length, perStage, wasmMemoryBytes: s.wasmMemoryBytes, stageMemoryBytes: per.map((x) => x.wasmMemoryBytes),
      loadReads: { ...e.loadReads } };
  }

  /**
   * Encode a picture ahead of time into the engine's image cache, attached to
   * nothing: a later chat.addImage of the same picture (the same pixels after
   * preprocessing) skips the vision tower. A page calls it when a picture
   * arrives, so the encode runs while the user types the question. Serialised
   * with every other call: a question asked meanwhile waits for it to end.
   * Takes what chat.addImage takes. Resolves {encoded, ms}: encoded is false
   * when the picture was cached already or the cache is off (imageCache 0:
   * then nothing runs). Abort rejects with AbortError at once; the engine stops
   * the encode at its next layer (threaded builds; owlet-st ends it in the
   * background and keeps it).
   * @param {HTMLCanvasElement|OffscreenCanvas|ImageData|ImageBitmap|Blob|Uint8Array|string|URL} src
   * @param {{signal?:AbortSignal}} [opts]
   * @returns {Promise<{encoded:boolean, ms:number}>}
   */
  async warmImage(src, opts = {}) {
    this._checkLoaded();
    const a = await imageArgs(src, { ...opts, allowedOrigins: this.opts.allowedOrigins });
    checkSignal(opts.signal);
    return this.mutex.run(async () => {
      checkSignal(opts.signal);
      this._checkLoaded();
      const t0 = performance.now();
      const r = await abortable(this.engine.warmImage(cloneImageArgs(a)), opts.signal, () => this.engine && this.engine.cancel());
      return { encoded: r.encoded, ms: performance.now() - t0 };
    });
  }

  /** Stop the engine workers and free their memory. */
  async unload() {
    if (!this.engine) return;
    const e = this.engine;
    this.engine = null;
    await e.unload(); // a load still running (early) stops first
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
