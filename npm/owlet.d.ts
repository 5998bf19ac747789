// owlet.d.ts - TypeScript declarations of the owlet JavaScript API (wasm_glue/owlet.mjs).
// Hand-written to match the module's JSDoc and docs/API.md; tests/package/pack.test.mjs
// type-checks a script against them (tsc --strict) and checks that every name declared
// here is exported by the module and the other way round.
// The image and fetch types are the DOM's, so a Node project without lib "dom" works too:
/// <reference lib="dom" />

/** Why a call failed: a JS-side code, or the C status name for engine failures. */
export type OwletErrorCode =
  | 'bad_manifest' | 'http' | 'network' | 'truncated' | 'bad_chunk' | 'bad_origin' | 'quota' | 'storage'
  | 'cache' | 'invalid' | 'format' | 'unsupported' | 'nomem' | 'io' | 'limit' | 'notfound' | 'cancelled'
  | 'state' | 'engine';

/** Every failure of the API (cancellation is a plain Error named 'AbortError'). */
export class OwletError extends Error {
  constructor(code: OwletErrorCode | string, message: string, cause?: unknown);
  readonly name: 'OwletError';
  code: OwletErrorCode;
  /** engine errors: the C owl_status (negative) */
  status?: number;
}

/** Input limits checked before anything is copied. */
export const LIMITS: Readonly<{
  imagePixels: number;
  imageSide: number;
  imageBytes: number;
  imagesPerTurn: number;
  textChars: number;
}>;

/** Load progress, one object tagged by phase. */
export interface Progress {
  phase: 'download' | 'verify' | 'load' | 'ready';
  bytesDone: number;
  bytesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  /** bytes/s (download) */
  rate: number;
  /** seconds left (download) */
  eta: number;
  /** 'load': the stage being loaded and the number of stages */
  stage?: number;
  stages?: number;
}

export type BuildName = 'owlet' | 'owlet-relaxed' | 'owlet-st';

/** A chunk store (browser: OpfsBackend, else IdbBackend; MemoryBackend; Node: the chunk files of a file: manifest). */
export interface ChunkBackend {
  get(key: string): Promise<{ sha256: string; bytes: Uint8Array | Blob } | null>;
  put(key: string, rec: { sha256: string; bytes: Uint8Array }): Promise<void>;
  delete(key: string): Promise<void>;
  keys(prefix: string): Promise<string[]>;
  getMeta(id: string): Promise<CachedModel | null>;
  putMeta(id: string, meta: CachedModel): Promise<void>;
  deleteMeta(id: string): Promise<void>;
  listMeta(): Promise<CachedModel[]>;
}

export interface LoadOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** threads per stage (threaded build only); browser: min(hardwareConcurrency, 8), Node: min(cores, 8) */
  threads?: number;
  /** force owlet-st even when isolated */
  singleThread?: boolean;
  /** force an engine build */
  build?: BuildName;
  /** per-instance weight budget in MiB (default 3200) */
  budgetMiB?: number;
  /** folder (URL or Node path) of the engine builds; default: the package's build/wasm/ */
  wasmBase?: string | URL;
  /** KV cache positions (default min(context_length, 2048)) */
  nCtx?: number;
  /** rows per forward batch (default min(nCtx, 256)) */
  nBatch?: number;
  kvType?: 'f16' | 'f32';
  aspect?: 'pad' | 'stretch' | 'crop';
  /** per-request timeout in ms (default 120000); also the load's watchdog for a stalled cache read, engine start or model set-up */
  timeoutMs?: number;
  backend?: ChunkBackend;
  concurrency?: number;
  retries?: number;
  backoffMs?: number;
  /** extra origins chunk and image URLs may come from */
  allowedOrigins?: string[];
  fetch?: typeof fetch;
  /** pictures whose encoded rows the engine keeps for reuse, 0..64 (default 4, 0 = off) */
  imageCache?: number;
  /**
   * A model in several stages: resolve once the first stage (vision tower, conversation) has
   * loaded, while the others go on loading; addImage encodes at once, a call that needs a later
   * stage waits for it. `owl.loaded` says when all have loaded.
   */
  early?: boolean;
}

export interface AskOptions {
  /** 0 = greedy (default) */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  /** an integer in 1..1e9 (default 256) */
  maxTokens?: number;
  stop?: string[];
  signal?: AbortSignal;
  truncate?: 'error' | 'history';
  /** tests only, not a stable API */
  _debugLogits?: (logits: Float32Array, token: number) => void;
}

/** What addImage takes (DOM types in the browser; bytes, data: URLs and file paths in Node). */
export type ImageSource =
  | HTMLCanvasElement | OffscreenCanvas | ImageData | ImageBitmap | Blob
  | Uint8Array | ArrayBuffer | string | URL;

export interface Turn {
  role: 'user' | 'assistant';
  text: string;
  images: unknown[];
}

/** A conversation; the model runs one conversation at a time. */
export class Chat {
  private constructor();
  system: string;
  truncate: 'error' | 'history';
  /** turns dropped so far by truncate: 'history' */
  dropped: number;
  turns: Turn[];
  addImage(src: ImageSource, opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Run what is known of the next question before its text is (the images added for it and
   * the conversation before them), so ask() runs only the question's own tokens. Resolves the
   * prompt rows it ran (0: nothing new).
   */
  prime(opts?: { signal?: AbortSignal }): Promise<number>;
  /** Forget the images added for the next question and the rows prime ran for them. */
  clearImages(): Promise<void>;
  ask(text: string, opts?: AskOptions): AsyncGenerator<string, void, void>;
  reset(): Promise<void>;
}

export interface StageStats {
  layers: [number, number];
  prefillMs: number;
  decodeMs: number;
  imageEncodeMs: number;
  wasmMemoryBytes: number;
  /** false while the stage is still loading (load option `early`) */
  loaded: boolean;
}

/** The engine's cache of encoded pictures (load option `imageCache`). */
export interface ImageCacheStats {
  hits: number;
  misses: number;
  entries: number;
  capacity: number;
  bytes: number;
  /** Encode time the hits spared: each hit adds its entry's own encode milliseconds. */
  savedMs: number;
}

export interface Stats {
  promptTokens: number;
  prefillMs: number;
  prefillTokPerS: number;
  completionTokens: number;
  decodeMs: number;
  decodeTokPerS: number;
  images: number;
  imageEncodeMs: number;
  /** Wall clock spent in warmImage (not part of imageEncodeMs). */
  imageWarmMs: number;
  imageCache: ImageCacheStats;
  threads: number;
  build: BuildName;
  stages: number;
  perStage: StageStats[];
  nPast: number;
  lastTokens: number;
  wasmMemoryBytes: number;
  stageMemoryBytes: number[];
  /** how the load copied the stored chunks into the engine: chunk pieces read straight from
   * OPFS files (`file`), streamed from Blobs (`blob`), or handed over as bytes (`bytes`) */
  loadReads: { file: number; blob: number; bytes: number };
}

export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

export interface CompletionRequest {
  messages: ChatMessage[];
  stream?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
  max_tokens?: number;
  stop?: string | string[];
  repetition_penalty?: number;
  signal?: AbortSignal;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface Completion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; finish_reason: 'stop' | 'length' }[];
  usage: Usage;
}

export interface CompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: 'stop' | 'length' | null }[];
  /** on the last chunk */
  usage?: Usage;
}

export interface Completions {
  create(req: CompletionRequest & { stream: true }): Promise<AsyncIterable<CompletionChunk>>;
  create(req: CompletionRequest & { stream?: false }): Promise<Completion>;
  create(req: CompletionRequest): Promise<Completion | AsyncIterable<CompletionChunk>>;
}

export interface ThreadSupport {
  threaded: boolean;
  crossOriginIsolated: boolean;
  sharedArrayBuffer: boolean;
  hardwareConcurrency: number;
  defaultThreads: number;
  build: BuildName;
  /** '' when threaded, else why not, in words */
  reason: string;
}

export interface CachedModel {
  id: string;
  name: string;
  totalSize: number;
  sha256: string | null;
  chunks: number;
  manifestUrl: string;
  storedAt: number;
  chunksDigest?: string;
}

export interface Cache {
  list(backend?: ChunkBackend): Promise<CachedModel[]>;
  usage(backend?: ChunkBackend): Promise<{ models: number; bytes: number; quota: number | null; usage: number | null }>;
  delete(id: string, backend?: ChunkBackend): Promise<void>;
}

/** Cached models (IndexedDB database 'owlet' by default). */
export const cache: Cache;

export interface ModelInfo {
  n_ctx: number;
  [key: string]: unknown;
}

export class Owlet {
  private constructor();
  /** Download (or reuse the cached chunks of) a model and start its engine. */
  static load(manifestUrl: string, opts?: LoadOptions): Promise<Owlet>;
  /** What this page can run (threads need cross-origin isolation and SharedArrayBuffer). */
  static threadSupport(): ThreadSupport;
  static get cache(): Cache;
  /** engine facts of stage 0 (n_ctx, ...) */
  info: ModelInfo;
  threads: number;
  build: BuildName;
  /**
   * Resolves when every stage has loaded (at once unless the load option `early` resolved
   * first); rejects with the load's error if a later stage fails — every call then rejects too.
   */
  loaded: Promise<void>;
  /** owl.chat() starts a conversation; owl.chat.completions.create() is OpenAI style. */
  chat: ((opts?: { system?: string; truncate?: 'error' | 'history' }) => Chat) & { completions: Completions };
  stats(): Promise<Stats>;
  /**
   * Encode a picture ahead of time into the image cache (attached to nothing): a later
   * chat.addImage of the same picture skips the vision tower. `encoded` is false when it
   * was cached already or the cache is off.
   */
  warmImage(src: ImageSource, opts?: { signal?: AbortSignal }): Promise<{ encoded: boolean; ms: number }>;
  /** Free the engines and end their workers; later calls fail with 'state'. */
  unload(): Promise<void>;
}

export interface ChunkInfo {
  index: number;
  offset: number;
  size: number;
  sha256: string;
  url: string;
}

export interface Manifest {
  id: string;
  name: string;
  totalSize: number;
  sha256: string | null;
  chunkSize: number;
  chunks: ChunkInfo[];
  stages: unknown[];
  raw: unknown;
  baseUrl: string;
}

/** Fetch and check a manifest (absolute URL, or a file path in Node). */
export function loadManifest(manifestUrl: string, opts?: { signal?: AbortSignal; fetch?: typeof fetch; allowedOrigins?: string[] }): Promise<Manifest>;

/** IndexedDB chunk store (database 'owlet' by default). */
export class IdbBackend implements ChunkBackend {
  constructor(dbName?: string);
  get(key: string): Promise<{ sha256: string; bytes: Uint8Array | Blob } | null>;
  put(key: string, rec: { sha256: string; bytes: Uint8Array }): Promise<void>;
  delete(key: string): Promise<void>;
  keys(prefix: string): Promise<string[]>;
  getMeta(id: string): Promise<CachedModel | null>;
  putMeta(id: string, meta: CachedModel): Promise<void>;
  deleteMeta(id: string): Promise<void>;
  listMeta(): Promise<CachedModel[]>;
}

/**
 * Origin Private File System chunk store: one file per verified chunk under owlet/m-<id>/;
 * the engine worker reads them straight into its memory. Model records, and chunks stored
 * in IndexedDB by earlier versions, stay in `legacy` (an IdbBackend) and are still read.
 */
export class OpfsBackend implements ChunkBackend {
  constructor(root: FileSystemDirectoryHandle, legacy: ChunkBackend);
  /** The OPFS store where this browser can write files from a page, else null. */
  static open(legacy?: ChunkBackend): Promise<OpfsBackend | null>;
  get(key: string): Promise<{ sha256: string; bytes: Uint8Array | Blob; handle?: FileSystemFileHandle } | null>;
  put(key: string, rec: { sha256: string; bytes: Uint8Array }): Promise<void>;
  delete(key: string): Promise<void>;
  keys(prefix: string): Promise<string[]>;
  getMeta(id: string): Promise<CachedModel | null>;
  putMeta(id: string, meta: CachedModel): Promise<void>;
  deleteMeta(id: string): Promise<void>;
  listMeta(): Promise<CachedModel[]>;
}

/** The browser's default chunk store: OpfsBackend where it can run, else IdbBackend. */
export function browserBackend(): Promise<ChunkBackend>;

/** In-memory chunk store (nothing kept after the process or page ends). */
export class MemoryBackend implements ChunkBackend {
  constructor();
  get(key: string): Promise<{ sha256: string; bytes: Uint8Array | Blob } | null>;
  put(key: string, rec: { sha256: string; bytes: Uint8Array }): Promise<void>;
  delete(key: string): Promise<void>;
  keys(prefix: string): Promise<string[]>;
  getMeta(id: string): Promise<CachedModel | null>;
  putMeta(id: string, meta: CachedModel): Promise<void>;
  deleteMeta(id: string): Promise<void>;
  listMeta(): Promise<CachedModel[]>;
}
