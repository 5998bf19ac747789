// engine-worker.mjs - one wasm engine instance (one model or one pipeline stage)
// in a dedicated worker, driven by wasm_glue/owlet.mjs.
//
// Runs as a CLASSIC browser Worker (`new Worker(url)`, no {type:'module'}):
// the Emscripten 3.1.6 engine is a classic -sMODULARIZE script that is loaded
// with importScripts, which module workers do not have. In Node the same file
// runs in a worker_threads Worker (it has no static import/export, so it is a
// valid script and module both) and loads the engine with createRequire.
//
// Protocol. Requests {id, op, args} -> replies {id, ok: true, value} or
// {id, ok: false, error: {status, message}}; status is the C owl_status
// (negative), 0 for a crash in the wasm runtime (OwletError code 'engine'). There are no unsolicited events:
// generation is pulled one token at a time (free backpressure; the caller
// cancels by not asking for more and sending 'end'). Typed arrays travel by
// transfer both ways. This worker only marshals: the C side (wasm_glue/api.c
// over the library's owl_chat) checks every value. Ops:
//   init  {engineUrl, threads}          -> {threads, simd, build}
//   alloc {size}                        reserve the model buffer (one malloc)
//   alloc_header {size}                 reserve the header buffer (partial load)
//   chunk {offset, bytes, header?}      copy bytes into the buffer at offset
//   chunk {offset, blob, header?}       the same from a Blob (IndexedDB record), streamed
//   chunk {offset, blob, file, at, header?}  an OPFS file's bytes [at, at + blob.size): read
//                                       straight into memory with a SyncAccessHandle, else
//                                       streamed from blob -> {via: 'file'|'blob'}
//   load  {headerSize, rangeOffset, fileSize, layerBegin, layerEnd, first, last,
//          aspect, nCtx, nBatch, kvF32, threads, imageCache} -> model info
//   image {rgba, width, height, stride} | image {encoded}
//   push_turn {role, text}   reset   stats   info   history -> {ids}   unload
// The pipeline (the same for 1..n stages; the coordinator in wasm_glue/engine.mjs drives it):
//   prepare {text}            first stage: the user turn -> {rows, pos0}
//   embed                     first stage: the rows to run next (the prompt part,
//                             later the token to feed back) -> {rows, pos0}
//   gen_begin {temperature, topK, topP, minP, repeatPenalty, seed, maxTokens, stop[]}
//                             first stage: the answer's sampler and stop rules
//   sampler {temperature, topK, topP, minP, repeatPenalty, seed, history}
//                             last stage of several: its sampler
//   run {n, pos0, hasMod, sample, out, push, x?, mod?}
//                             this stage's layers on the rows (x: rows from the
//                             previous stage; else the ones this instance holds);
//                             sample (last stage): -> {token}; out: -> {x, mod?};
//                             push (sample on a one-stage model): -> as push_token
//   push_token {id}           first stage -> {piece, done, reason, token}
//   embed_run {sample, out, push}   first stage, one generated token in one message:
//                             embed + run (+ sample + push_token) -> {rows, pos0, ...run's}
//   prime                     first stage: the next question's known part (the
//                             images added for it and all before) -> {rows, pos0};
//                             then embed + run on every stage, without sampling
//   clear_images              first stage: drop the images added for the next
//                             question and the rows primed for them
//   end                       the answer so far becomes the assistant turn
//   logits                    debug/test, last stage: the logits the last token
//                             was sampled from -> {logits}

// Memory: wasm memory may grow during any call into C, so no HEAP view is
// kept across calls; heap() makes a fresh view each time.

'use strict';
// A classic worker script in the browser (importScripts needs one), an ES module in Node:
// the names below are this worker's own either way.

let M = null;      // the Emscripten module
let ctx = 0;       // owl_api *
let buf = 0, bufSize = 0, hdr = 0, hdrSize = 0;
let info = null;   // the model info (after load)
let post = null;

// A C status (negative owl_status) and its message; the coordinator names the
// code from the table generated from src/core/status.h (status.gen.mjs).
class EngineError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// wasm32 hands pointers to JS as signed i32: above 2 GiB of wasm memory (a big
// model's stage) they arrive negative and every heap view at them throws. Every
// pointer that comes back from C is read through malloc()/ptr() as unsigned.
const ptr = (p) => p >>> 0;
const malloc = (n) => ptr(M._malloc(n));

function heap() {
  const b = M.wasmMemory ? M.wasmMemory.buffer : M.HEAPU8.buffer;
  return new Uint8Array(b);
}
function check(st) {
  if (st < 0) throw new EngineError(st, M.UTF8ToString(ptr(M._owl_api_error(ctx))));
  return st;
}
function cstr(s) {
  const n = M.lengthBytesUTF8(s) + 1;
  const p = malloc(n);
  if (!p) throw new EngineError(-5, `out of memory for a ${n}-byte string`);
  M.stringToUTF8(s, p, n);
  return p;
}
/** An image call (owl_api_add_image / owl_api_warm_image) on the 'image' message's
 * arguments: encoded bytes, or RGBA pixels with their size and stride. */
function imageCall(fn, a) {
  if (a.encoded) {
    const b = bytesArg(a.encoded, 'encoded');
    return withBytes(b, (p) => check(fn(ctx, p, 0, 0, b.byteLength, 1)));
  }
  const b = bytesArg(a.rgba, 'rgba');
  // only what the copy needs (integers, the bytes present); the C side checks the image limits
  const w = num(a.width, 'width', 1, 2 ** 31 - 1), h = num(a.height, 'height', 1, 2 ** 31 - 1);
  const stride = num(a.stride ?? 4 * w, 'stride', 4 * w, 2 ** 40);
  if (!Number.isInteger(w) || !Number.isInteger(h) || !Number.isInteger(stride) || b.byteLength < stride * (h - 1) + 4 * w)
    throw new EngineError(-1, `image: ${b.byteLength} bytes for ${w}x${h} at stride ${stride}`);
  return withBytes(b, (p) => check(fn(ctx, p, w, h, stride, 0)));
}

function withBytes(bytes, fn) {
  const p = malloc(Math.max(1, bytes.byteLength));
  if (!p) throw new EngineError(-5, `out of memory for ${bytes.byteLength} bytes`);
  try { heap().set(bytes, p); return fn(p); } finally { M._free(p); }
}
function withF64(fn) {
  const p = malloc(8);
  try { const r = fn(p); return [r, new Float64Array(heap().buffer, p, 1)[0]]; } finally { M._free(p); }
}
function copyOut(p, bytes, Ctor) {
  p = ptr(p);
  return new Ctor(heap().slice(p, p + bytes).buffer);
}
const json = (p) => JSON.parse(M.UTF8ToString(ptr(p)) || 'null');
function str(arg, what) {
  if (typeof arg !== 'string') throw new EngineError(-1, `${what} must be a string`);
  return arg;
}
function num(arg, what, lo, hi) {  // a finite number in lo..hi
  if (typeof arg !== 'number' || !Number.isFinite(arg) || arg < lo || arg > hi)
    throw new EngineError(-1, `${what} ${arg} is not a number in ${lo}..${hi}`);
  return arg;
}
function bytesArg(a, what) {
  if (!(a instanceof Uint8Array || a instanceof Uint8ClampedArray || a instanceof Float32Array))
    throw new EngineError(-1, `${what} must be a typed array`);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function loadEngine(engineUrl) {
  if (typeof importScripts === 'function') {
    importScripts(engineUrl);
    /* global createOwlet */
    const factory = self.createOwlet;
    return factory({
      locateFile: (p) => new URL(p, engineUrl).href,
      mainScriptUrlOrBlob: engineUrl,
      print: () => {}, printErr: (s) => console.warn('owlet engine:', s),
    });
  }
  // Node: the classic build through require. The wasm bytes are read here
  // because the 3.1.6 glue would use a global fetch() on a path if there is one.
  const { createRequire } = await import('node:module');
  const { readFileSync } = await import('node:fs');
  const file = engineUrl.startsWith('file:') ? new URL(engineUrl).pathname : engineUrl;
  const require = createRequire(file);
  return require(file)({
    wasmBinary: readFileSync(file.replace(/\.js$/, '.wasm')),
    print: () => {}, printErr: (s) => console.warn('owlet engine:', s),
  });
}

// Start the pthread workers before any C code blocks waiting for them
// (the builds use PTHREAD_POOL_SIZE=0: threads are created on demand, and a
// blocked caller could never see a worker that is still loading).
async function preloadThreads(n) {
  const P = M.PThread;
  if (!P || n <= 0) return;
  const loads = [];
  for (let i = P.unusedWorkers.length; i < n; i++) {
    P.allocateUnusedWorker();
    const w = P.unusedWorkers[P.unusedWorkers.length - 1];
    loads.push(new Promise((resolve) => P.loadWasmModuleToWorker(w, resolve)));
  }
  await Promise.all(loads);
}

// Every C function this file calls (a test checks the list against the code):
// an engine build from another owlet version lacks some, and says so at init
// instead of failing later with "... is not a function".
const ENGINE_EXPORTS = ['_owl_api_add_image', '_owl_api_arm', '_owl_api_clear_images',
  '_owl_api_embed', '_owl_api_error', '_owl_api_free', '_owl_api_gen_begin', '_owl_api_gen_end', '_owl_api_gen_reason',
  '_owl_api_history', '_owl_api_info', '_owl_api_last_token', '_owl_api_load', '_owl_api_logits', '_owl_api_modality',
  '_owl_api_new', '_owl_api_piece', '_owl_api_piece_len', '_owl_api_prepare', '_owl_api_prime', '_owl_api_push_token',
  '_owl_api_push_turn', '_owl_api_reset', '_owl_api_rows', '_owl_api_run', '_owl_api_stats', '_owl_api_warm_image',
  '_owl_wasm_has_simd', '_owl_wasm_max_threads'];

const ops = {
  async init({ engineUrl, threads }) {
    M = await loadEngine(str(engineUrl, 'engineUrl'));
    const missing = ENGINE_EXPORTS.filter((f) => typeof M[f] !== 'function').map((f) => f.slice(1));
    if (missing.length) {
      const file = engineUrl.replace(/^.*\//, '').replace(/\.js$/, '.wasm');
      M = null;
      throw new EngineError(-4, `${file} is from another owlet version than this wasm_glue: it lacks ` +
        `${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}. Serve the ` +
        'engine files (build/wasm) of the same version as owlet.mjs (a stale cached copy of them does this too)');
    }
    const max = M._owl_wasm_max_threads();
    const n = Math.max(1, Math.min(max, Math.floor(num(threads ?? 1, 'threads', 1, 64))));
    await preloadThreads(n - 1);
    ctx = M._owl_api_new();
    if (!ctx) throw new EngineError(-5, 'out of memory creating the engine context');
    // the cancel counter (api.c, owl_js_cancel_count): 4 bytes of their own, shared with the
    // coordinator where this memory is (threaded builds), so the page never holds a view of it
    const sharedMem = typeof SharedArrayBuffer !== 'undefined' && heap().buffer instanceof SharedArrayBuffer;
    M.owlCancel = new Int32Array(sharedMem ? new SharedArrayBuffer(4) : new ArrayBuffer(4));
    return { threads: n, simd: M._owl_wasm_has_simd() === 1, build: engineUrl.replace(/^.*\/|\.js$/g, '') };
  },
  alloc({ size }) {
    num(size, 'size', 1, 4294967295);
    if (buf) M._free(buf);
    buf = malloc(size);
    bufSize = buf ? size : 0;
    if (!buf) throw new EngineError(-5, `cannot allocate ${(size / 1048576).toFixed(1)} MiB for the model ` +
      `in wasm memory (${(heap().byteLength / 1048576).toFixed(0)} MiB in use, 4096 MiB max` +
      `${size >= 2 ** 31 ? '; one allocation must stay under 2048 MiB' : ''})`);
    return null;
  },
  alloc_header({ size }) {
    num(size, 'size', 1, 1 << 30);
    if (hdr) M._free(hdr);
    hdr = malloc(size);
    hdrSize = hdr ? size : 0;
    if (!hdr) throw new EngineError(-5, `cannot allocate ${size} bytes for the model header`);
    return null;
  },
  chunk({ offset, bytes, blob, header, file, at }) {
    const base = header ? hdr : buf, size = header ? hdrSize : bufSize;
    if (blob) return fileChunk(file, at, blob, base, size, num(offset, 'offset', 0, size));
    const b = bytesArg(bytes, 'bytes');
    num(offset, 'offset', 0, size);
    if (!base || offset + b.byteLength > size)
      throw new EngineError(-1, `chunk at ${offset} of ${b.byteLength} bytes outside the ${size}-byte buffer`);
    heap().set(b, base + offset);
    return null;
  },
  load(a) {
    if (!buf) throw new EngineError(-10, 'load: no buffer (alloc + chunk first)');
    const asp = cstr(a.aspect || '');
    const useHdr = !!a.headerSize;
    if (useHdr && !hdr) throw new EngineError(-10, 'load: partial load without a header buffer');
    let st;
    try {
      // ownership of buf and hdr passes to the context, also on error
      st = M._owl_api_load(ctx, buf, bufSize, useHdr ? hdr : 0, useHdr ? hdrSize : 0, a.rangeOffset || 0,
        a.fileSize || 0, a.layerBegin | 0, a.layerEnd | 0, a.first === false ? 0 : 1, a.last === false ? 0 : 1, asp,
        +a.nCtx || 0, +a.nBatch || 0, a.kvF32 ? 1 : 0, a.threads | 0,
        a.imageCache === undefined ? -1 : num(a.imageCache, 'imageCache', 0, 2 ** 31 - 1) | 0);
    } finally { M._free(asp); }
    if (!useHdr && hdr) M._free(hdr);
    buf = bufSize = hdr = hdrSize = 0;
    check(st);
    info = json(M._owl_api_info(ctx));
    return info;
  },
  info() { return json(M._owl_api_info(ctx)); },
  stats() { return { ...json(M._owl_api_stats(ctx)), wasmMemoryBytes: heap().byteLength }; },
  // the cancel counter: the coordinator bumps it (Atomics.store, shared memory only) to stop the call that runs
  // (epoch: set it first — a stage that joins a pipeline late starts at the coordinator's count). Its own
  // 4-byte buffer, not a view of the wasm memory: one held by the page would keep GBs alive after unload
  cancel_word(a) {
    const b = M.owlCancel.buffer;
    const shared = typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
    if (shared && a && a.epoch !== undefined) Atomics.store(M.owlCancel, 0, num(a.epoch, 'epoch', -(2 ** 31), 2 ** 31 - 1));
    return { memory: shared ? b : null, offset: 0 };
  },
  image(a) { arm(a.epoch); imageCall(M._owl_api_add_image, a); return null; },
  warm_image(a) { arm(a.epoch); return { encoded: imageCall(M._owl_api_warm_image, a) === 1 }; },
  push_turn({ role, text }) {
    const p = cstr(str(text, 'text'));
    try { check(M._owl_api_push_turn(ctx, role === 'assistant' ? 1 : 0, p)); } finally { M._free(p); }
    return null;
  },
  prepare({ text }) {
    const p = cstr(str(text, 'text'));
    try {
      const [rows, pos0] = withF64((q) => M._owl_api_prepare(ctx, p, q));
      return { rows: check(rows), pos0 };
    } finally { M._free(p); }
  },
  prime() {
    const [rows, pos0] = withF64((q) => M._owl_api_prime(ctx, q));
    return { rows: check(rows), pos0 };
  },
  clear_images() { check(M._owl_api_clear_images(ctx)); return null; },
  embed() {
    const [rows, pos0] = withF64((q) => M._owl_api_embed(ctx, q));
    return { rows: check(rows), pos0 };
  },
  gen_begin(a) { return genBegin(a, null); },
  sampler(a) { return genBegin({ ...a, stop: [] }, a.history instanceof Int32Array ? a.history : new Int32Array(0)); },
  run({ x, mod, n, pos0, hasMod, sample, out, push, epoch }) {
    const d = info.d_model;
    arm(epoch);
    if (x) {
      const xb = bytesArg(x, 'x');
      if (xb.byteLength !== n * d * 4) throw new EngineError(-1, `run: ${xb.byteLength} bytes for ${n} rows of ${d}`);
      const p = ptr(M._owl_api_rows(ctx, n));
      if (!p) throw new EngineError(-5, `run: no room for ${n} rows`);
      heap().set(xb, p);
      if (hasMod) heap().set(bytesArg(mod, 'mod').subarray(0, n), ptr(M._owl_api_modality(ctx)));
    }
    const r = check(M._owl_api_run(ctx, n, pos0, hasMod ? 1 : 0, sample ? 1 : 0));
    if (sample) return push ? pushToken(r) : { token: r };
    if (!out) return {};
    const p = ptr(M._owl_api_rows(ctx, n));
    return { x: copyOut(p, n * d * 4, Float32Array), mod: hasMod ? copyOut(M._owl_api_modality(ctx), n, Uint8Array) : null };
  },
  // one generated token on stage 0, in one message: embed the token to feed back, run
  // this stage's layers, and (a one-stage model) sample and push the next
  embed_run({ sample, out, push, epoch }) {
    const { rows, pos0 } = ops.embed();
    return { rows, pos0, ...ops.run({ n: rows, pos0, hasMod: false, sample, out, push, epoch }) };
  },
  push_token({ id }) { return pushToken(id); },
  end() { check(M._owl_api_gen_end(ctx)); return null; },
  history() {
    const n = M._owl_api_history(ctx, 0, 0);
    const p = malloc(4 * Math.max(1, n));
    try { M._owl_api_history(ctx, p, n); return { ids: copyOut(p, 4 * n, Int32Array) }; } finally { M._free(p); }
  },
  reset() { check(M._owl_api_reset(ctx)); return null; },
  logits() {
    const p = M._owl_api_logits(ctx);
    if (!p) throw new EngineError(-10, 'logits: no session (load a model first)');
    return { logits: copyOut(p, 4 * info.n_vocab, Float32Array) };
  },
  unload() {
    if (ctx) M._owl_api_free(ctx);
    ctx = 0;
    if (M && M.PThread) M.PThread.terminateAllThreads();
    return null;
  },
};

// A Blob chunk goes into wasm memory through one reused 1 MiB buffer (a BYOB
// reader; blob.slice().arrayBuffer() per piece as the fallback): reading
// 32 MiB ArrayBuffers instead leaves ~350 MiB of dead buffers behind while a
// 1 GB model loads, because V8 frees them only at its next GC.
let scratch = null;
async function blobChunk(blob, base, size, offset) {
  if (typeof blob.size !== 'number' || typeof blob.stream !== 'function') throw new EngineError(-1, 'chunk: blob is not a Blob');
  if (!base || offset + blob.size > size)
    throw new EngineError(-1, `chunk at ${offset} of ${blob.size} bytes outside the ${size}-byte buffer`);
  let n = 0;
  const put = (v) => {
    if (n + v.byteLength > blob.size) throw new EngineError(-3, `chunk: blob longer than its ${blob.size} bytes`);
    heap().set(v, base + offset + n);
    n += v.byteLength;
  };
  let reader = null;
  try { reader = blob.stream().getReader({ mode: 'byob' }); } catch { reader = null; }
  if (reader) {
    let b = scratch || new ArrayBuffer(1 << 20);
    scratch = null;
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(b));
      if (value) b = value.buffer;
      if (done) break;
      put(value);
    }
    scratch = b.byteLength ? b : null; // (0: detached by a read that ended in an error)
  } else {
    for (let o = 0; o < blob.size; o += 1 << 20) put(new Uint8Array(await blob.slice(o, Math.min(blob.size, o + (1 << 20))).arrayBuffer()));
  }
  if (n !== blob.size) throw new EngineError(-3, `chunk: read ${n} of ${blob.size} bytes`);
  return null;
}

// An OPFS file's range [at, at + blob.size) read straight into wasm memory through a
// SyncAccessHandle (dedicated workers only): 259-334 MB/s in Chromium 156 here against
// 145-199 for IndexedDB's Blob stream. Where that cannot run (no sync handles, a shared
// memory the browser will not read into, the file locked or gone) the Blob is streamed.
async function fileChunk(file, at, blob, base, size, offset) {
  if (file && typeof file.createSyncAccessHandle === 'function' && typeof blob.size === 'number') {
    if (!base || offset + blob.size > size)
      throw new EngineError(-1, `chunk at ${offset} of ${blob.size} bytes outside the ${size}-byte buffer`);
    num(at, 'at', 0, 2 ** 53);
    // read-only where the browser has access modes (Chromium 121+): several tabs may read one
    // file at once; elsewhere the default handle (an exclusive lock, held for this one read)
    let h = null;
    try { h = await file.createSyncAccessHandle({ mode: 'read-only' }); } catch { h = null; }
    if (!h) try { h = await file.createSyncAccessHandle(); } catch { h = null; }
    if (h) {
      let n = -1;
      try {
        n = 0;
        while (n < blob.size) {
          const got = h.read(heap().subarray(base + offset + n, base + offset + blob.size), { at: at + n });
          if (!(got > 0)) break;
          n += got;
        }
      } catch { n = -1; } finally { h.close(); }
      if (n === blob.size) return { via: 'file' };
      if (n >= 0) throw new EngineError(-3, `chunk: read ${n} of ${blob.size} bytes from the stored file`);
    }
  }
  await blobChunk(blob, base, size, offset);
  return { via: 'blob' };
}

// gen_begin (history null: the first stage's answer) and sampler (the last stage's sampler over history)
function genBegin(a, history) {
  const stop = a.stop ?? [];
  if (!Array.isArray(stop)) throw new EngineError(-1, 'stop must be an array of strings');
  const stops = stop.map((s) => cstr(str(s, 'stop string')));
  const arr = malloc(4 * Math.max(1, stops.length));
  const h = history ? malloc(4 * Math.max(1, history.length)) : 0;
  try {
    stops.forEach((p, i) => { new Uint32Array(heap().buffer, arr, stops.length)[i] = p; });
    if (h) new Int32Array(heap().buffer, h, history.length).set(history);
    check(M._owl_api_gen_begin(ctx, a.temperature ?? 0, a.topK ?? 0, a.topP ?? 1, a.minP ?? 0, a.repeatPenalty ?? 1,
      a.seed ?? 0, a.maxTokens ?? 0, arr, stops.length, h, history ? history.length : 0));
  } finally { stops.forEach((p) => M._free(p)); M._free(arr); if (h) M._free(h); }
  return null;
}

function pushToken(id) { return stepResult(check(M._owl_api_push_token(ctx, id | 0))); }

function stepResult(r) {
  const len = M._owl_api_piece_len(ctx), p = ptr(M._owl_api_piece(ctx));
  const piece = new TextDecoder().decode(heap().slice(p, p + len));
  const reasons = ['', 'eos', 'stop', 'length', 'context', 'error'];
  return { piece, done: r === 0, reason: r === 0 ? reasons[M._owl_api_gen_reason(ctx)] || 'error' : null,
    token: M._owl_api_last_token(ctx) };
}

/** The next C call stops (OWL_E_CANCELLED) once the cancel counter differs from
 * epoch, the coordinator's count when it sent the call. Only shared memory
 * (threaded builds) lets the coordinator write the counter: elsewhere, or
 * without an epoch, the call is armed at the count it holds, never to stop. */
function arm(epoch) {
  const word = M.owlCancel;
  const shared = typeof SharedArrayBuffer !== 'undefined' && word.buffer instanceof SharedArrayBuffer;
  check(M._owl_api_arm(ctx, shared && epoch !== undefined ? num(epoch, 'epoch', -(2 ** 31), 2 ** 31 - 1) : word[0]));
}

function transferables(v) {
  const out = [];
  if (v && typeof v === 'object')
    for (const k of Object.keys(v)) if (v[k] && ArrayBuffer.isView(v[k])) out.push(v[k].buffer);
  return out;
}

async function onMessage(msg) {
  const { id, op, args } = msg || {};
  try {
    if (!Object.prototype.hasOwnProperty.call(ops, op)) throw new EngineError(-1, `unknown op ${JSON.stringify(op)}`);
    if (op !== 'init' && !M) throw new EngineError(-10, `${op}: engine not initialised`);
    const value = await ops[op](args || {});
    post({ id, ok: true, value }, transferables(value));
  } catch (e) {
    const error = e instanceof EngineError ? { status: e.status, message: e.message }
      : { status: 0, message: String(e && e.message ? e.message : e) }; // a crash in the wasm runtime: 'engine'
    post({ id, ok: false, error });
  }
}

// Requests are handled one at a time, in order.
let chain = Promise.resolve();
const enqueue = (msg) => { chain = chain.then(() => onMessage(msg)); };

if (typeof importScripts === 'function') {
  post = (m, t) => self.postMessage(m, t);
  self.onmessage = (e) => enqueue(e.data);
} else {
  import('node:worker_threads').then(({ parentPort }) => {
    post = (m, t) => parentPort.postMessage(m, t);
    parentPort.on('message', enqueue);
  });
}
