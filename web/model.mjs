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
  const store = { loadManifest: api.loadManifest, MemoryBackend: api.MemoryBackend, IdbBackend: api.IdbBackend };
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
 * How much of a manifest's model is in the cache: 'cached' | 'partial' | 'none'.
 * Only keys and the model record are read (never the chunk bytes): the store
 * keeps verified chunks only and writes the model record when all are stored,
 * so a record for the same whole-file hash and a full key set mean complete.
 */
export async function cacheState(backend, manifest) {
  if (!backend) return { state: 'none', chunks: 0 };
  const [meta, keys] = await Promise.all([backend.getMeta(manifest.id).catch(() => null),
    backend.keys(`${manifest.id}/`).catch(() => [])]);
  const have = new Set(keys);
  const n = manifest.chunks.filter((c) => have.has(`${manifest.id}/${c.index}`)).length;
  const same = meta && (meta.sha256 || null) === (manifest.sha256 || null) && meta.chunks === manifest.chunks.length;
  if (same && n === manifest.chunks.length) return { state: 'cached', chunks: n };
  return { state: n > 0 ? 'partial' : 'none', chunks: n };
}
