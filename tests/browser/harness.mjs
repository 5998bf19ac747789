// harness.mjs - page-side helpers for tests/browser/run.mjs (imported into the
// test page with a dynamic import; returns plain JSON to the runner).
import { Owlet, OwletError, IdbBackend, cache } from '../../wasm_glue/owlet.mjs';

const MANIFEST = '/build/test-out/api/one/manifest.json';

/** Greedy ids of one question through the engine (same path as chat.ask). */
export async function greedyIds(owl, imageUrl, text, n) {
  const chat = owl.chat();
  if (imageUrl) await chat.addImage(imageUrl);
  const ids = [];
  const eng = owl.engine;
  await owl.mutex.run(async () => {
    await chat._activate();
    await eng.ask(text, { temperature: 0, maxTokens: n });
    for (;;) { const r = await eng.step(); ids.push(r.token); if (r.done) break; }
    await eng.end();
  });
  owl._active = null;
  return ids;
}

function errInfo(e) { return { name: e && e.name, code: e && e.code, message: String(e && e.message) }; }

/** Load, optionally ask; returns what the runner checks. */
export async function loadAndAsk(o = {}) {
  const t0 = performance.now();
  const phases = [];
  let owl;
  try {
    // store 'idb': the IndexedDB store alone (as earlier versions kept the chunks), else the default
    const backend = o.store === 'idb' ? new IdbBackend() : undefined;
    owl = await Owlet.load(o.manifest || MANIFEST, { wasmBase: o.wasmBase, kvType: 'f32', threads: o.threads, backend,
      onProgress: (p) => { if (phases[phases.length - 1] !== p.phase) phases.push(p.phase); },
      retries: o.retries, concurrency: o.concurrency, backoffMs: o.backoffMs ?? 20, signal: o.signal });
  } catch (e) { return { error: errInfo(e), ms: performance.now() - t0, phases }; }
  const r = { build: owl.build, threads: owl.threads, isolated: globalThis.crossOriginIsolated, phases,
    loadMs: performance.now() - t0 };
  try {
    if (o.n) r.ids = await greedyIds(owl, o.image, o.text, o.n);
    if (o.canvas) {
      // the same image drawn on a canvas: pixels go in as RGBA
      const img = new Image();
      img.src = o.image;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0);
      const chat = owl.chat();
      await chat.addImage(c);
      const pieces = [];
      for await (const p of chat.ask(o.text, { maxTokens: o.n })) pieces.push(p);
      r.canvasText = pieces.join('');
      const chat2 = owl.chat();
      await chat2.addImage(o.image);
      const pieces2 = [];
      for await (const p of chat2.ask(o.text, { maxTokens: o.n })) pieces2.push(p);
      r.urlText = pieces2.join('');
      const blob = await (await fetch(o.image)).blob();
      for (const [key, src] of [['blobText', blob], ['bitmapText', await createImageBitmap(blob)],
        ['imageDataText', c.getContext('2d').getImageData(0, 0, c.width, c.height)]]) {
        const ch = owl.chat();
        await ch.addImage(src);
        let t = '';
        for await (const p of ch.ask(o.text, { maxTokens: o.n })) t += p;
        r[key] = t;
      }
    }
    r.stats = await owl.stats();
  } finally { await owl.unload(); }
  return r;
}

export async function deleteCached(o = {}) { await cache.delete(o.id || 'mplug-owl2'); return (await cache.list()).length; }
export async function listCached() { return cache.list(); }

/** Quota exhaustion, simulated by a navigator.storage stub. */
export async function quota(o) {
  const real = navigator.storage.estimate.bind(navigator.storage);
  navigator.storage.estimate = async () => ({ quota: 1_000_000, usage: 900_000 });
  try { return await loadAndAsk(o); } finally { navigator.storage.estimate = real; }
}

/** Quota exhaustion while storing: IndexedDB put and OPFS writes throw QuotaExceededError. */
export async function quotaOnPut(o) {
  const full = () => { throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); };
  const real = IDBObjectStore.prototype.put;
  const W = globalThis.FileSystemWritableFileStream;
  const realWrite = W && W.prototype.write;
  IDBObjectStore.prototype.put = full;
  if (W) W.prototype.write = async function () { full(); };
  try { return await loadAndAsk(o); } finally {
    IDBObjectStore.prototype.put = real;
    if (W) W.prototype.write = realWrite;
  }
}

export async function abortDownload(o) {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), o.abortAfterMs);
  const t0 = performance.now();
  const r = await loadAndAsk({ ...o, signal: ac.signal });
  return { ...r, sinceAbortMs: performance.now() - t0 - o.abortAfterMs };
}

export async function abortGeneration(o) {
  const owl = await Owlet.load(MANIFEST, { wasmBase: o.wasmBase, kvType: 'f32', threads: 1 });
  try {
    const chat = owl.chat();
    const ac = new AbortController();
    let n = 0, err = null;
    try {
      for await (const _ of chat.ask('What is the capital of France?', { maxTokens: 200, signal: ac.signal })) {
        if (++n === 3) ac.abort();
      }
    } catch (e) { err = errInfo(e); }
    const again = [];
    for await (const p of chat.ask('Again?', { maxTokens: 3 })) again.push(p);
    return { n, err, againTokens: (await owl.stats()).lastTokens, isError: err && err.name };
  } finally { await owl.unload(); }
}

export { OwletError };
