// engine.mjs - the engine: one worker per pipeline stage (wasm_glue/engine-worker.mjs)
// and the coordinator that drives them with one protocol for 1..n stages.
//
//   const { engineUrl, threads, threaded } = selectBuild(opts);   // which wasm build
//   const pipeline = await startPipeline(manifest, backend, stagePlan(manifest, opts), build, opts);
//   await pipeline.ask(text, gen); for (;;) { const r = await pipeline.step(); ... if (r.done) break; }
//   await pipeline.end();
//
// Each stage's bytes are copied chunk by chunk from the chunk store
// (store.readChunks) into one allocation in its wasm memory.
import { OwletError, checkSignal, statusError } from './errors.mjs';
import { isBrowser } from './images.mjs';
import { DEFAULT_TIMEOUT_MS, readChunks } from './store.mjs';
import { threadSupport } from './threads.mjs';
import { detectFeatures } from './features.mjs';

/** The engine builds (build/wasm/NAME.js); Owlet.load's `build` option forces one. */
export const BUILDS = ['owlet', 'owlet-relaxed', 'owlet-st'];

/** The largest single allocation a wasm32 instance can make (sbrk's increment is a signed
 * 32-bit value, so 2 GiB fails): the bound on one stage's weight bytes. */
export const MAX_STAGE_BYTES = 2047 * 1048576;

// ---------------------------------------------------------------- workers

/** One engine worker, speaking the engine-worker.mjs protocol. */
export class EngineWorker {
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
      this.hold();
      if (m.ok) p.resolve(m.value);
      else p.reject(statusError(m.error.status, m.error.message));
    };
    const onErr = (e) => {
      const why = e && e.message ? e.message : 'the worker script or the engine failed to load';
      this.dead = new OwletError('engine', `engine worker failed: ${why}`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
      this.hold();
    };
    if (node) { w.on('message', onMsg); w.on('error', onErr); w.unref(); } else {
      w.onmessage = (e) => onMsg(e.data);
      w.onerror = (e) => { e.preventDefault?.(); onErr(e); };
    }
  }
  static async spawn() {
    const url = new URL('./engine-worker.mjs', import.meta.url);
    EngineWorker.live++;
    if (typeof Worker !== 'undefined' && isBrowser) return new EngineWorker(new Worker(url), false);
    const { Worker: NodeWorker } = await import('node:worker_threads');
    // the worker inherits the parent's flags; --input-type (`node --input-type=module -e ...`)
    // is refused for a worker file and would kill it at start
    const execArgv = process.execArgv.filter((a, i, all) => !a.startsWith('--input-type') && all[i - 1] !== '--input-type');
    return new EngineWorker(new NodeWorker(url, { execArgv }), true);
  }
  /** @param {string} op @param {any} [args] @param {Transferable[]} [transfer] */
  call(op, args, transfer = []) {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.hold();
      this.w.postMessage({ id, op, args }, transfer);
    });
  }
  /** Node: an idle engine does not keep the process alive (a script ends when
   * its own work is done, unload() or not); a call in flight does. */
  hold() {
    if (!this.node) return;
    if (this.pending.size > 0) this.w.ref(); else this.w.unref();
  }
  /** A worker takes calls at once (a StageGate only once its stage has loaded). */
  get open() { return true; }
  /** Stop the worker; calls still waiting for it reject (a load in flight stops instead of hanging). */
  terminate() {
    if (!this.terminated) EngineWorker.live--;
    this.terminated = true;
    this.w.terminate();
    this.dead = this.dead || new OwletError('state', 'the engine was stopped (the model was unloaded)');
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
    this.hold();
  }
}

/**
 * A stage that is still loading when the pipeline starts (Owlet.load's `early`):
 * the coordinator's calls to it wait here and go out, in the order they were
 * made, when it has loaded; if the load fails they reject with its error.
 */
class StageGate {
  constructor() { this.w = null; this.failed = null; this.queue = []; }
  get open() { return this.w !== null; }
  /** @param {string} op @param {any} [args] @param {Transferable[]} [transfer] */
  call(op, args, transfer = []) {
    if (this.w) return this.w.call(op, args, transfer);
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => this.queue.push({ op, args, transfer, resolve, reject }));
  }
  /** @param {EngineWorker} w the loaded stage; first is the call that must precede the queued ones */
  openWith(w, first) {
    const q = this.queue;
    this.queue = [];
    const r = w.call(first.op, first.args); // posted first: the worker takes messages in order
    this.w = w;
    for (const c of q) w.call(c.op, c.args, c.transfer).then(c.resolve, c.reject);
    return r;
  }
  fail(e) {
    if (this.w || this.failed) return;
    this.failed = e;
    for (const c of this.queue) c.reject(e);
    this.queue = [];
  }
  terminate() { if (this.w) this.w.terminate(); }
}

/** Engine workers spawned and not yet terminated (tests check that nothing leaks). */
EngineWorker.live = 0;

// ---------------------------------------------------------------- the coordinator

const nowMs = () => (globalThis.performance ? performance.now() : Date.now());

/**
 * The coordinator of the engine workers: one protocol for 1..n pipeline
 * stages (a one-stage model is n = 1). Stage 0 holds the conversation
 * (prepare, embed, push_token); every stage runs its layers on the rows; the
 * last stage samples and returns the token id (a few bytes, never the
 * logits). Rows stay inside an instance when the next stage is the same one.
 *
 * It also keeps the timings stats() reports: wall clock here, for the whole
 * pipeline, so a phase means the same for one stage and for several — image
 * encode (the 'image' calls), prefill (ask: the prompt through every stage up
 * to the first sampled token) and decode (each later token, from the moment
 * the token before it was handed out: fed back through every stage, sampled,
 * and whatever the caller did in between). The stages' own counters are the
 * per-stage breakdown.
 */
export class Pipeline {
  /** @param {(EngineWorker|StageGate)[]} stages @param {any[]} infos */
  constructor(stages, infos, initInfo) {
    this.stages = stages;
    this.infos = infos;
    this.init = initInfo;
    this.loaded = Promise.resolve(); // every stage loaded (startPipeline's early mode: later)
    this.stopLoad = () => {};
    this.loadReads = { file: 0, blob: 0, bytes: 0 }; // how the load's chunk copies read the store
    this.clock = { imageEncodeMs: 0, imageWarmMs: 0, prefillMs: 0, decodeMs: 0 };
    this.first = null; // the first token's step result, sampled by ask
    this.handedAt = null; // when the last token of this answer was handed out (decode clock)
    this.epoch = 0; // cancel(): calls sent before the last cancel stop
    this.words = []; // per stage: its cancel counter (a 4-byte SharedArrayBuffer of its worker's), or null
  }
  /** Find each stage's cancel counter (threaded builds: an Int32Array on a 4-byte
   * SharedArrayBuffer the stage's C code reads, never a view of its wasm memory, which
   * would keep that memory alive after unload until this thread's collector ran; the
   * single-thread build has none). */
  async initCancel() {
    this.words = await Promise.all(this.stages.map(async (st) => (st.open ? this.word(await st.call('cancel_word')) : null)));
  }
  word(r) { return r && r.memory ? new Int32Array(r.memory, r.offset, 1) : null; }
  /** A late stage has loaded (early mode): its calls go out now, its cancel counter
   * set to the current count before any of them runs. */
  async joined(i, w) {
    const ep = this.epoch;
    const word = this.word(await this.stages[i].openWith(w, { op: 'cancel_word', args: { epoch: ep } }));
    this.words[i] = word;
    if (word && ep !== this.epoch) Atomics.store(word, 0, this.epoch); // a cancel came meanwhile
  }
  /** Stop the work in flight: a stage computing stops at its next layer (threaded
   * builds), and no stage is sent more of it. The call rejects ('cancelled'). */
  cancel() {
    this.epoch = (this.epoch + 1) | 0;
    for (const w of this.words) if (w) Atomics.store(w, 0, this.epoch);
  }
  /** Throws 'cancelled' when cancel() came after epoch ep: between the stage hops of one call. */
  going(ep) {
    if (ep !== this.epoch) throw new OwletError('cancelled', 'cancelled');
  }
  get s0() { return this.stages[0]; }
  get last() { return this.stages[this.stages.length - 1]; }
  get multi() { return this.stages.length > 1; }
  async timed(key, fn) {
    const t0 = nowMs();
    try { return await fn(); } finally { this.clock[key] += nowMs() - t0; }
  }
  /** Encode one image (engine-worker 'image' args) on stage 0. */
  image(a) {
    const buf = a.encoded || a.rgba;
    return this.timed('imageEncodeMs', () => this.s0.call('image', { ...a, epoch: this.epoch }, [buf.buffer]));
  }
  /** Encode one image into stage 0's image cache only; resolves {encoded}. */
  warmImage(a) {
    const buf = a.encoded || a.rgba;
    return this.timed('imageWarmMs', () => this.s0.call('warm_image', { ...a, epoch: this.epoch }, [buf.buffer]));
  }
  /** Add the user turn, run the new part of the prompt through every stage and
   * sample the first token (returned by the next step()). gen: the sampling
   * options and stop rules of engine-worker 'gen_begin'. */
  ask(text, gen) {
    this.first = null;
    this.handedAt = null;
    const ep = this.epoch;
    return this.timed('prefillMs', async () => {
      await this.s0.call('prepare', { text });
      this.going(ep);
      const prompt = await this.s0.call('embed');
      this.going(ep);
      await this.s0.call('gen_begin', gen);
      if (this.multi) {
        this.going(ep);
        const { ids } = await this.s0.call('history');
        this.going(ep);
        await this.last.call('sampler', { ...gen, stop: undefined, history: ids }, [ids.buffer]);
      }
      this.going(ep);
      this.first = await this.advance(prompt, ep);
    });
  }
  /** Run the next question's known part (the images added for it and all before
   * them) through every stage, without sampling; counted as prefill (its rows are
   * prompt rows). Resolves the rows run (0: nothing new). */
  prime() {
    const ep = this.epoch;
    return this.timed('prefillMs', async () => {
      const p = await this.s0.call('prime');
      if (!p.rows) return 0;
      this.going(ep);
      const prompt = await this.s0.call('embed');
      const n = this.stages.length;
      this.going(ep);
      let r = await this.s0.call('run', { n: prompt.rows, pos0: prompt.pos0, hasMod: true, sample: false, out: n > 1, epoch: ep });
      for (let i = 1; i < n; i++) {
        const { x, mod } = r;
        this.going(ep);
        r = await this.stages[i].call('run', { x, mod, n: prompt.rows, pos0: prompt.pos0, hasMod: true, sample: false,
          out: i < n - 1, epoch: ep }, [x.buffer, mod.buffer]);
      }
      return prompt.rows;
    });
  }
  /** Drop the images added for the next question and the rows primed for them. */
  clearImages() { return this.s0.call('clear_images'); }
  /** Run the rows stage 0 holds through every stage: the prompt part (embedded by
   * 'embed') or, prompt null, the token to feed back (embedded here, in the same
   * message as stage 0's layers). The last stage samples, stage 0 pushes the id:
   * one message per token for one stage, n + 1 for n. Returns the step result. */
  async advance(prompt, ep = this.epoch) {
    const n = this.stages.length, one = n === 1;
    let r = prompt
      ? await this.s0.call('run', { n: prompt.rows, pos0: prompt.pos0, hasMod: true, sample: one, push: one, out: !one, epoch: ep })
      : await this.s0.call('embed_run', { sample: one, push: one, out: !one, epoch: ep });
    if (one) return r;
    const rows = prompt ? prompt.rows : r.rows, pos0 = prompt ? prompt.pos0 : r.pos0;
    let { x, mod } = r;
    for (let i = 1; i < n; i++) {
      const last = i === n - 1;
      this.going(ep);
      r = await this.stages[i].call('run', { x, mod, n: rows, pos0, hasMod: !!prompt, sample: last, out: !last, epoch: ep },
        mod ? [x.buffer, mod.buffer] : [x.buffer]);
      ({ x, mod } = r);
    }
    this.going(ep);
    return this.s0.call('push_token', { id: r.token });
  }
  /** One token: {piece, done, reason, token}; wantLogits (debug/test): r.logits =
   * the logits it was sampled from. */
  async step(wantLogits = false) {
    let r = this.first;
    this.first = null;
    if (!r) {
      // decode is the wall clock between tokens handed out: from the previous
      // token to this one, so the coordinator's own time between steps (the
      // caller's loop, message dispatch, garbage collection) counts as well
      const from = this.handedAt ?? nowMs();
      try { r = await this.advance(null); } finally { this.clock.decodeMs += nowMs() - from; }
    }
    if (wantLogits) r.logits = (await this.last.call('logits')).logits;
    this.handedAt = nowMs();
    return r;
  }
  /** End the answer: what was generated becomes the assistant turn. */
  end() { this.first = null; this.handedAt = null; return this.s0.call('end'); }
  /** The stats of every stage (counters and per-stage compute times) and the coordinator's clock. */
  async stats() {
    const per = await Promise.all(this.stages.map((st, i) => (i === 0 ? st.call('stats')
      : !st.open ? { wasmMemoryBytes: 0, loading: true } : st.call('stats').catch(() => ({ wasmMemoryBytes: 0 })))));
    return { per, clock: { ...this.clock } };
  }
  /** Reset every stage; a stage still loading gets its reset queued (it runs before
   * any later call to that stage) and is not waited for: it holds nothing yet but
   * what was queued before. */
  async reset() {
    this.first = null;
    this.handedAt = null;
    await Promise.all(this.stages.map((s) => {
      const r = s.call('reset');
      if (s.open) return r;
      r.catch(() => {});
      return null;
    }));
  }
  /** Unload every loaded stage (a load still running is stopped first) and stop the workers. */
  async unload() {
    this.stopLoad();
    await Promise.allSettled(this.stages.map((s) => (s.open ? s.call('unload') : null)));
    this.terminate();
  }
  /** Stop every worker and drop their cancel counters. */
  terminate() {
    this.stopLoad();
    for (const s of this.stages) s.terminate();
    this.words = [];
  }
}

// ---------------------------------------------------------------- builds and stages

/** The wasm build and thread count for this page: the threaded builds need
 * cross-origin isolation (SharedArrayBuffer). Where a probe runs relaxed SIMD
 * right, owlet-relaxed is used at any thread count, one included: its int8 dots
 * make even one thread ~1.5x faster than owlet-st, and with one thread its pool
 * starts no worker. Otherwise one thread is owlet-st, more are owlet. */
export function selectBuild(opts = {}) {
  const ts = threadSupport(isBrowser); // threads need SharedArrayBuffer, not isolation alone (WebKitGTK)
  const wantThreads = Math.max(1, Math.min(64, Math.floor(opts.threads ?? ts.defaultThreads)));
  const threaded = ts.threaded && !opts.singleThread && wantThreads > 1;
  let wb = opts.wasmBase ? String(opts.wasmBase) : new URL('../build/wasm/', import.meta.url).href;
  if (!isBrowser && !/^[a-z][a-z0-9+.-]*:/i.test(wb)) wb = 'file://' + (wb.startsWith('/') ? wb : `${process.cwd()}/${wb}`);
  if (!wb.endsWith('/')) wb += '/';
  const base = new URL(wb, isBrowser ? location.href : undefined);
  // the relaxed-SIMD build where a probe ran it right (features.mjs); opts.build forces one
  if (opts.build !== undefined && !BUILDS.includes(opts.build))
    throw new OwletError('invalid', `build must be one of ${BUILDS.join(', ')}`);
  const relaxed = ts.threaded && !opts.singleThread && detectFeatures().relaxedSimd;
  const build = opts.build || (relaxed ? 'owlet-relaxed' : !threaded ? 'owlet-st' : 'owlet');
  return { engineUrl: new URL(`${build}.js`, base).href, threads: threaded && build !== 'owlet-st' ? wantThreads : 1, threaded };
}

/** Refuse a plan whose stages cannot load: over the per-instance budget, or over one wasm32 allocation. */
export function checkStageSizes(plan, budgetMiB) {
  const budget = budgetMiB * 1048576;
  for (const [i, st] of plan.entries()) {
    if (st.size > budget)
      throw new OwletError('limit', `stage ${i} holds ${(st.size / 1048576).toFixed(1)} MiB of weights, over the ` +
        `${(budget / 1048576).toFixed(1)} MiB per-instance budget: convert the model with a smaller --budget-mib`);
    if (st.size > MAX_STAGE_BYTES)
      throw new OwletError('limit', `stage ${i} holds ${(st.size / 1048576).toFixed(1)} MiB of weights in one piece, over the ` +
        `${MAX_STAGE_BYTES / 1048576} MiB one wasm32 instance can allocate at once: convert the model again with a current ` +
        'owlet-convert (its stage plan keeps every stage under 2000 MiB)');
  }
}

/** A watchdog: `arm(where)` at the start and after each piece of progress; when `ms` pass
 * with no arm(), `stalled` rejects with error(where). A read from the browser's storage that
 * never answers (seen once in a full-size Chromium reload) or a worker that never starts (a
 * Firefox reload once sat idle 6 minutes outside any copy) becomes an error instead of a load
 * that waits forever. */
function stallGuard(ms, error) {
  let timer = null, fail;
  const stalled = new Promise((_, reject) => { fail = reject; });
  stalled.catch(() => {});
  const arm = (where) => {
    clearTimeout(timer);
    timer = setTimeout(() => fail(error(where)), ms);
  };
  return { stalled, arm, stop: () => clearTimeout(timer) };
}

/** p, unless opts.timeoutMs (default 120 s) pass first: then the load fails with an 'engine'
 * error naming the step (starting a stage's engine, setting its model up: seconds normally). */
async function within(job, p, what) {
  const ms = job.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const guard = stallGuard(ms, () => new OwletError('engine', `loading the model stalled: ${what} did not answer ` +
    `in ${ms / 1000} s. Reload the page to try again; close other tabs of this page if it happens again`));
  guard.arm();
  try { return await Promise.race([p, guard.stalled, job.stopped]); } finally { guard.stop(); }
}

/** Copy bytes [start, end) of the model (or the header) into worker w's buffer, chunk by chunk;
 * each chunk (its read from the store and its copy into the worker) must finish within
 * opts.timeoutMs (default 120 s), else the load fails with a 'cache' error. */
async function copyRange(job, w, header, start, end, stage) {
  let copied = 0;
  const ms = job.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const guard = stallGuard(ms, (where) => new OwletError('cache', 'loading the cached model stalled: reading stage ' +
    `${stage}'s ${header ? 'header' : 'weights'} from the cache (${copied} of ${end - start} bytes copied) made no ` +
    `progress in ${ms / 1000} s after ${where}. Reload the page to try again; if it happens again, delete the cached ` +
    'model and download it again'));
  guard.arm('the start');
  try {
    await Promise.race([guard.stalled, job.stopped, copyChunks(job, w, header, start, end, stage, (n) => {
      copied += n;
      guard.arm(`${copied} bytes`);
    })]);
  } finally { guard.stop(); }
}

async function copyChunks(job, w, header, start, end, stage, onChunk) {
  const { manifest, backend, opts } = job;
  await w.call(header ? 'alloc_header' : 'alloc', { size: end - start });
  await readChunks(manifest, { backend, start, end, signal: opts.signal, keepBlobs: true, dest: async (off, bytes) => {
    if (job.failed) throw job.failed;
    let n;
    if (typeof bytes.byteLength !== 'number') { // a Blob (a handle): the worker streams it into its memory
      // (an OPFS file: its handle goes too, and the worker reads the range [at, at + size) straight in)
      const r = await w.call('chunk', { offset: off, blob: bytes, header, file: bytes.fileHandle, at: bytes.at });
      n = bytes.size;
      job.reads[r && r.via === 'file' ? 'file' : 'blob']++;
    } else {
      // transfer the buffer read from the store when it is ours alone (IndexedDB and
      // chunk-file reads are fresh), else a private copy (MemoryBackend keeps its own)
      const own = backend.freshReads && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      const b = own ? bytes : bytes.slice();
      n = b.byteLength; // read before the transfer detaches it (0 after)
      await w.call('chunk', { offset: off, bytes: b, header }, [b.buffer]);
      job.reads.bytes++;
    }
    onChunk(n);
    job.done += n;
    job.nChunks++;
    if (opts.onProgress) opts.onProgress({ phase: 'load', bytesDone: job.done, bytesTotal: job.total, chunksDone: job.nChunks,
      chunksTotal: manifest.chunks.length, rate: 0, eta: 0, stage, stages: job.plan.length });
  } });
}

/** Start stage i's worker, copy its bytes in (one stage's copy at a time, stage 0
 * first), load its part of the model. */
async function loadStage(job, i) {
  const { plan, manifest, build, opts } = job;
  const st = plan[i];
  const turn = job.copyTurn; // taken now, in stage order, before the first await
  let done, ii;
  job.copyTurn = new Promise((r) => { done = r; });
  try {
    const w = await EngineWorker.spawn();
    job.workers[i] = w;
    if (job.failed) throw job.failed;
    ii = await within(job, w.call('init', { engineUrl: build.engineUrl, threads: build.threads }),
      `starting stage ${i}'s engine (${build.engineUrl.replace(/^.*\//, '')}, ${build.threads} thread${build.threads > 1 ? 's' : ''})`);
    if (i === 0) job.initInfo = ii;
    await turn;
    if (job.failed) throw job.failed;
    if (st.header) await copyRange(job, w, true, 0, st.headerSize, i);
    await copyRange(job, w, false, st.offset, st.offset + st.size, i);
  } finally { done(); }
  const w = job.workers[i];
  checkSignal(opts.signal);
  if (job.failed) throw job.failed;
  job.infos[i] = await within(job, w.call('load', {
    headerSize: st.header ? st.headerSize : 0, rangeOffset: st.header ? st.offset : 0,
    fileSize: manifest.totalSize, layerBegin: st.layerBegin, layerEnd: st.layerEnd, first: st.first, last: st.last,
    aspect: opts.aspect || '', nCtx: opts.nCtx || 0, nBatch: opts.nBatch || 0,
    kvF32: opts.kvType === 'f32', threads: ii.threads, imageCache: opts.imageCache,
  }), `setting up stage ${i}'s part of the model`);
}

/**
 * Start one worker per stage of plan and load each stage's bytes from the
 * store; resolves to the Pipeline. On failure every worker is terminated.
 * Stages load side by side: each has its own worker and memory, so one stage's
 * engine start-up and model set-up overlap the others' byte copies (the memory
 * peak is the same: every stage stays resident anyway). The copies themselves
 * go one stage after another, stage 0 first: with every stage streaming
 * IndexedDB Blobs at once, 2 of 6 full-size loads in Chromium 156 stalled for
 * good; one stream at a time never has.
 *
 * opts.early (several stages): resolve as soon as stage 0 — the vision tower
 * and the conversation — has loaded; the later stages go on loading and join
 * one by one (calls to a stage wait for it, in order). pipeline.loaded resolves
 * when all have (then onProgress says 'ready'); if one fails, or the pipeline
 * is unloaded first, every worker stops and it rejects with that error.
 */
export async function startPipeline(manifest, backend, plan, build, opts = {}) {
  const job = { manifest, backend, plan, build, opts, workers: [], infos: [], initInfo: null, failed: null,
    done: 0, nChunks: 0, total: plan.reduce((t, st) => t + st.size + (st.header ? st.headerSize : 0), 0),
    copyTurn: Promise.resolve(), stopped: null, stop: null, reads: { file: 0, blob: 0, bytes: 0 } };
  // stop(e): the copy in flight ends now, even one waiting on a store read that never answers
  job.stopped = new Promise((_, reject) => { job.stop = reject; });
  job.stopped.catch(() => {});
  // each stage's load, settled: null or its error (the first error stops the others at their next step)
  const settled = plan.map((_, i) => loadStage(job, i).then(() => null, (e) => { job.failed = job.failed || e; return e; }));
  const all = Promise.all(settled);
  const stopAll = () => { for (const w of job.workers) if (w) w.terminate(); };
  const ready = () => {
    if (opts.onProgress) opts.onProgress({ phase: 'ready', bytesDone: job.total, bytesTotal: job.total,
      chunksDone: manifest.chunks.length, chunksTotal: manifest.chunks.length, rate: 0, eta: 0 });
  };
  const early = !!opts.early && plan.length > 1;
  try {
    // every stage settles before any worker is terminated (early: stage 0 alone, unless it failed)
    if (early) { if (await settled[0]) await all; } else await all;
    if (job.failed) throw job.failed;
  } catch (e) {
    stopAll();
    throw e;
  }
  if (!early) {
    ready();
    const pipeline = new Pipeline(job.workers, job.infos, job.initInfo);
    pipeline.loadReads = job.reads;
    try { await pipeline.initCancel(); } catch (e) { stopAll(); throw e; }
    return pipeline;
  }
  // early: the pipeline starts with stage 0; each later stage joins when it has loaded
  const stages = plan.map((_, i) => (i === 0 ? job.workers[0] : new StageGate()));
  const infos = plan.map((st, i) => job.infos[i] || { layer_begin: st.layerBegin, layer_end: st.layerEnd, loading: true });
  const pipeline = new Pipeline(stages, infos, job.initInfo);
  pipeline.loadReads = job.reads;
  pipeline.stopLoad = () => {
    job.failed = job.failed || new OwletError('state', 'the model was unloaded before it had loaded');
    job.stop(job.failed);
    for (const g of stages) if (g instanceof StageGate) g.fail(job.failed);
    stopAll();
  };
  const joins = settled.slice(1).map((p, k) => p.then((err) => {
    if (err || job.failed) return;
    infos[k + 1] = job.infos[k + 1];
    return pipeline.joined(k + 1, job.workers[k + 1]);
  }));
  pipeline.loaded = all.then(async () => {
    await Promise.all(joins);
    if (job.failed) throw job.failed;
    ready();
  }).catch((e) => {
    // one stage failed (or the model was unloaded): the pipeline is of no use; stop it all
    pipeline.stopLoad();
    throw job.failed || e;
  });
  pipeline.loaded.catch(() => {}); // handled by whoever awaits it; never an unhandled rejection
  try { await pipeline.initCancel(); } catch (e) { pipeline.stopLoad(); throw e; }
  return pipeline;
}

/** The manifest's stage plan as load steps; one whole-file step when there is one stage. */
export function stagePlan(manifest, opts) {
  const raw = manifest.stages || [];
  const headerSize = Number(manifest.raw && manifest.raw.file && manifest.raw.file.header_size) || 0;
  if (raw.length <= 1 || opts.forceSingleStage)
    return [{ header: false, offset: 0, size: manifest.totalSize, layerBegin: 0, layerEnd: 0, first: true, last: true }];
  if (!(headerSize > 0)) throw new OwletError('bad_manifest', 'manifest has several stages but no file.header_size');
  return raw.map((s, i) => {
    const offset = Number(s.offset), size = Number(s.size);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || size <= 0 || offset + size > manifest.totalSize)
      throw new OwletError('bad_manifest', `stage ${i}: byte range ${s.offset}+${s.size} outside the file`);
    // layers: integers, stage 0 from layer 0, each stage starting where the one before ended
    // (the C side checks the end against the model's block count)
    const lb = s.layer_start, le = s.layer_end, want = i === 0 ? 0 : raw[i - 1].layer_end;
    if (!Number.isSafeInteger(lb) || !Number.isSafeInteger(le) || lb !== want || le <= lb)
      throw new OwletError('bad_manifest', `stage ${i}: layers ${JSON.stringify(lb)}..${JSON.stringify(le)}, want integers ` +
        `from ${JSON.stringify(want)} with layer_end > layer_start`);
    return { header: true, headerSize, offset, size, layerBegin: lb, layerEnd: le, first: i === 0, last: i === raw.length - 1 };
  });
}
