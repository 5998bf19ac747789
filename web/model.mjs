// model.mjs - the model panel: pick a manifest, show its size/quant/cache state,
// download with progress (MB, MB/s, ETA, phase), cancel, resume, delete, usage.
//
// The engine files sit under owlet/ next to this page (docs/DEPLOY.md):
// owlet/*.mjs (the page imports only owlet.mjs, the public module), owlet/wasm/owlet*.{js,wasm}.

const API_URL = new URL('owlet/owlet.mjs', import.meta.url).href;
export const WASM_BASE = new URL('owlet/wasm/', import.meta.url).href;

export const mb = (n) => (n / 1e6 < 10 ? (n / 1e6).toFixed(2) : (n / 1e6).toFixed(1)) + ' MB';
const dur = (s) => (!Number.isFinite(s) ? '…' : s < 1 ? 'under a second' : s < 90 ? `${Math.round(s)} s`
  : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const PHASES = { download: 'Downloading', verify: 'Checking', load: 'Loading into the engine', ready: 'Ready' };

/** Import the runtime (lazily: the page still works, and says why, without it). */
export async function importRuntime() {
  const api = await import(API_URL);
  const store = { loadManifest: api.loadManifest, MemoryBackend: api.MemoryBackend, IdbBackend: api.IdbBackend,
    browserBackend: api.browserBackend };
  return { Owlet: api.Owlet, OwletError: api.OwletError, store };
}

/** One progress object as words: "Downloading — 1.05 / 3.54 MB (30%) · 2.1 MB/s · 1 s left". */
export function describeProgress(p) {
  const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
  let s = `${PHASES[p.phase] || p.phase} — ${mb(p.bytesDone)} / ${mb(p.bytesTotal)} (${pct}%)`;
  if (p.phase === 'download' || p.phase === 'verify') {
    if (p.rate > 0) s += ` · ${(p.rate / 1e6).toFixed(2)} MB/s · ${dur(p.eta)} left`;
    if (p.chunksTotal) s += ` · chunk ${p.chunksDone} of ${p.chunksTotal}`;
  }
  return s;
}

/**
 * How much of a manifest's model is in the cache: 'cached' | 'partial' | 'none',
 * with the chunks and bytes kept. Only keys and the model record are read
 * (never the chunk bytes): the store keeps verified chunks only and writes the
 * model record when all are stored, so a record for the same whole-file hash
 * and a full key set mean complete.
 * @returns {Promise<{state:string, chunks:number, bytes:number}>}
 */
export async function cacheState(backend, manifest) {
  if (!backend) return { state: 'none', chunks: 0, bytes: 0 };
  const [meta, keys] = await Promise.all([backend.getMeta(manifest.id).catch(() => null),
    backend.keys(`${manifest.id}/`).catch(() => [])]);
  const have = new Set(keys);
  const kept = manifest.chunks.filter((c) => have.has(`${manifest.id}/${c.index}`));
  const n = kept.length, bytes = kept.reduce((a, c) => a + c.size, 0);
  const same = meta && (meta.sha256 || null) === (manifest.sha256 || null) && meta.chunks === manifest.chunks.length;
  if (same && n === manifest.chunks.length) return { state: 'cached', chunks: n, bytes };
  return { state: n > 0 ? 'partial' : 'none', chunks: n, bytes };
}

/** Ids of models with chunks stored but no model record (downloads that stopped part way). */
export async function partialIds(backend) {
  const [keys, metas] = await Promise.all([backend.keys('').catch(() => []), backend.listMeta().catch(() => [])]);
  const complete = new Set(metas.map((m) => m.id));
  const ids = new Set(keys.filter((k) => k.includes('/')).map((k) => k.slice(0, k.lastIndexOf('/'))));
  return [...ids].filter((id) => !complete.has(id));
}

const mb1 = (n) => (n / 1e6).toFixed(1);

/** The load button's words for a cache state: "Resume download (2.1 of 6.7 MB kept)". */
export function loadLabel(cs, totalSize) {
  if (cs.state === 'cached') return 'Load model';
  if (cs.state === 'partial') return `Resume download (${mb1(cs.bytes)} of ${mb1(totalSize)} MB kept)`;
  return `Download and load (${mb(totalSize)})`;
}

/** "Chunk 3 failed: retrying in 4 s (attempt 2 of 7)" for a 'retry' progress object, msLeft from now. */
export function retryText(p, msLeft) {
  return `Chunk ${p.chunk + 1} of ${p.chunksTotal} failed: retrying in ${Math.max(1, Math.ceil(msLeft / 1000))} s ` +
    `(attempt ${p.attempt} of ${p.attempts})`;
}

/**
 * A failed load in words, and the technical text for the disclosure.
 * @param {{code?:string, message?:string}} e @param {{kept?:boolean}} [o] kept: chunks are stored
 * @returns {{text:string, details:string}}
 */
export function loadErrorWords(e, o = {}) {
  const details = String((e && e.message) || e);
  const kept = o.kept ? ' The parts already downloaded are kept: Resume continues from there.' : '';
  const chunk = /chunk (\d+)/.exec(details);
  const which = chunk ? `part ${Number(chunk[1]) + 1} of the model` : 'a part of the model';
  const words = {
    network: `The download stopped: the server stopped answering.${kept}`,
    http: `The download stopped: the server refused ${which}.${kept}`,
    truncated: `The download stopped: ${which} arrived incomplete.${kept}`,
    bad_chunk: `The download stopped: ${which} arrived damaged twice (it does not match the model's manifest), ` +
      `so it was not stored. The server's files may be changing or broken; try again later.${kept}`,
    bad_manifest: 'This model\'s manifest (manifest.json) is not valid, so it cannot be loaded.',
    quota: 'There is not enough storage for this model in the browser. Delete cached models or free space.',
    limit: 'This model is too large for this browser (WebAssembly memory limits).',
    cache: /stalled/.test(details)
      ? 'Reading the saved model from the browser\'s storage stopped making progress. Reload the page to try ' +
        'again; if it happens again, delete the cached model and download it again.'
      : `${which[0].toUpperCase()}${which.slice(1)} is missing from the browser's storage: load the model again to download it.`,
    engine: /stalled/.test(details)
      ? 'The engine did not start (its worker stopped answering). Reload the page to try again; if it happens again, ' +
        'close other tabs of this page.'
      : undefined,
  }[e && e.code];
  return { text: words || 'Could not load the model.', details };
}
