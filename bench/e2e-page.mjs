// e2e-page.mjs - page-side half of bench/e2e.mjs and
// tests/browser/wllama_parity.test.mjs: runs one model in owlet (engine worker,
// wasm_glue/owlet.mjs) or in wllama (llama.cpp's wasm build) and returns plain
// JSON. Imported into a cross-origin-isolated page with a dynamic import; the
// owlet functions also run in Node (bench/e2e-node.mjs).
import { Owlet } from '../wasm_glue/owlet.mjs';

// 64 ids with owlet's template (USER: ... ASSISTANT:) and the LLaMA-2 tokenizer.
export const PROMPT = 'Summarise the following story in one sentence. Once upon a time, in a small village at the ' +
  'edge of a great forest, there lived an old clockmaker who repaired every clock in the valley. One winter ' +
  'night a stranger knocked on his old door.';

const now = () => performance.now();

/** The k largest entries of a logits vector as [[id, logit], ...], largest first. */
function topK(x, k) {
  const best = [];
  for (let i = 0; i < x.length; i++) {
    if (best.length < k || x[i] > best[best.length - 1][1]) {
      best.push([i, x[i]]);
      best.sort((a, b) => b[1] - a[1]);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/**
 * owlet: load the manifest with `threads`, then `reps` times: reset the KV cache,
 * prefill `text` (rendered with the model's template), generate `nGen` greedy
 * tokens; `build` forces a wasm build (Owlet.load's option). Returns the
 * prompt ids, the generated ids and per-rep timings (the coordinator's
 * prefill/decode milliseconds, from stats()); with `logits`, also
 * the top 8 [id, logit] each generated token was picked from (`top`).
 */
export async function owletRun(o) {
  const t0 = now();
  const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, threads: o.threads, kvType: o.kvType || 'f16', nCtx: 512,
    build: o.build });
  const r = { engine: 'owlet', build: owl.build, threads: (await owl.stats()).threads, loadMs: now() - t0, reps: [] };
  const eng = owl.engine;
  try {
    for (let i = 0; i < o.reps; i++) {
      const ids = [], top = [];
      let promptIds = null;
      let before, after;
      const w0 = now();
      await owl.mutex.run(async () => {
        await eng.reset();
        before = await eng.stats();
        await eng.ask(o.text, { temperature: 0, maxTokens: o.nGen });
        for (;;) {
          const s = await eng.step();
          ids.push(s.token);
          if (o.logits) top.push(topK((await eng.last.call('logits')).logits, 8));
          if (s.done) break;
        }
        after = await eng.stats();
        promptIds = Array.from((await eng.s0.call('history')).ids);
        await eng.end();
      });
      // counts from stage 0, times from the coordinator's wall clock (the whole pipeline)
      const prompt = after.per[0].promptTokens - before.per[0].promptTokens;
      const gen = after.per[0].completionTokens - before.per[0].completionTokens;
      const pMs = after.clock.prefillMs - before.clock.prefillMs, dMs = after.clock.decodeMs - before.clock.decodeMs;
      // the stages' own compute (wasm, their layers): the rest of decodeMs is messages, sampling, copies
      const stageDecodeMs = after.per.reduce((a, x, i) => a + (x.decodeMs || 0) - (before.per[i].decodeMs || 0), 0);
      r.reps.push({ promptN: prompt, prefillMs: pMs, prefillTokS: prompt / pMs * 1e3, genN: gen, decodeMs: dMs,
        decodeTokS: gen / dMs * 1e3, stageDecodeMs, wallMs: now() - w0 });
      r.promptIds = promptIds.slice(0, prompt);
      r.ids = ids;
      if (o.logits) r.top = top;
    }
  } finally { await owl.unload(); }
  return r;
}

/** owlet: image encode of the vision model (random 448x448 pixels), reps times. */
export async function owletImage(o) {
  const t0 = now();
  const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, threads: o.threads, nCtx: 256, budgetMiB: 3800 });
  const r = { engine: 'owlet', build: owl.build, threads: (await owl.stats()).threads, loadMs: now() - t0, reps: [] };
  const w = 448, h = 448, rgba = new Uint8ClampedArray(w * h * 4);
  let s = 1;
  for (let i = 0; i < rgba.length; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; rgba[i] = (i & 3) === 3 ? 255 : s >> 23; }
  try {
    for (let i = 0; i < o.reps; i++) {
      const before = await owl.stats();
      const w0 = now();
      const chat = owl.chat();
      await chat.addImage({ data: rgba, width: w, height: h }); // ImageData-alike (also in Node)
      const after = await owl.stats();
      r.reps.push({ encodeMs: after.imageEncodeMs - before.imageEncodeMs, wallMs: now() - w0 });
      await chat.reset();
    }
  } finally { await owl.unload(); }
  return r;
}

/**
 * bench/vision_ab.mjs: the image encode of several models A/B. Loads every manifest with
 * `threads` (image cache off; `build` as Owlet.load's option), warms each up with one encode, then `reps` rounds encoding the
 * same 448 px picture in each model in turn; returns per model {build, threads, warmMs, ms[]}
 * (stats().imageEncodeMs, wall clock at the coordinator).
 */
export async function owletImageAB(o) {
  const w = 448, h = 448, rgba = new Uint8ClampedArray(w * h * 4);
  let s = 1;
  for (let i = 0; i < rgba.length; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; rgba[i] = (i & 3) === 3 ? 255 : s >> 23; }
  const owls = [];
  try {
    for (const m of o.manifests)
      owls.push(await Owlet.load(m, { wasmBase: o.wasmBase, threads: o.threads, nCtx: 256, budgetMiB: 3800, imageCache: 0,
        build: o.build }));
    const encode = async (owl) => {
      const before = (await owl.stats()).imageEncodeMs;
      const chat = owl.chat();
      await chat.addImage({ data: rgba, width: w, height: h });
      const ms = (await owl.stats()).imageEncodeMs - before;
      await chat.reset();
      return ms;
    };
    const r = owls.map((owl) => ({ build: owl.build, warmMs: 0, ms: [] }));
    for (const [i, owl] of owls.entries()) r[i].warmMs = await encode(owl);
    for (let k = 0; k < o.reps; k++)
      for (const [i, owl] of owls.entries()) r[i].ms.push(await encode(owl));
    for (const [i, owl] of owls.entries()) r[i].threads = (await owl.stats()).threads;
    return r;
  } finally {
    for (const owl of owls) await owl.unload();
  }
}

// Random weights pick byte-fallback pieces (<0x00>..<0xFF>, ids 3..258) that make
// invalid UTF-8, and wllama's JSON reply then throws ("Invalid typed array length");
// for timing runs they are banned (same work per token either way).
const NO_BYTES = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [String(i + 3), -100]));

/**
 * wllama: load the GGUF with n_threads, then `reps` times run `prompt` (text,
 * tokenised by llama.cpp with BOS; no prompt cache) and `nGen` greedy tokens;
 * with `logprobs` the generated ids come back too, and the top 8 [id, logprob]
 * of each step (`top`). Timings are llama.cpp's own
 * (llama-server's prompt_ms / predicted_ms).
 */
export async function wllamaRun(o) {
  const t0 = now();
  const { Wllama } = await import('../node_modules/@wllama/wllama/esm/index.js');
  const wl = new Wllama({ default: '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm' },
    o.verbose ? {} : { suppressNativeLog: true, logger: { debug() {}, log() {}, warn() {}, error: console.error } });
  await wl.loadModelFromUrl(o.url, { n_threads: o.threads, n_ctx: 512, n_batch: 512, useCache: false,
    cache_type_k: o.kvType || 'f16', cache_type_v: o.kvType || 'f16', flash_attn: o.flashAttn ?? true, warmup: false });
  const r = { engine: 'wllama', version: Wllama.getLibllamaVersion ? Wllama.getLibllamaVersion() : '',
    multithread: wl.isMultithread(), threads: wl.getNumThreads(), loadMs: now() - t0, reps: [] };
  try {
    for (let i = 0; i < o.reps; i++) {
      const w0 = now();
      const res = await wl.createCompletion({ prompt: o.prompt, max_tokens: o.nGen, temperature: 0, top_k: 1,
        cache_prompt: false, ignore_eos: true, logprobs: o.logprobs ? 8 : undefined, logit_bias: o.noBytes ? NO_BYTES : undefined });
      const t = res.timings || {};
      r.reps.push({ promptN: t.prompt_n, prefillMs: t.prompt_ms, prefillTokS: t.prompt_per_second, genN: t.predicted_n,
        decodeMs: t.predicted_ms, decodeTokS: t.predicted_per_second, wallMs: now() - w0 });
      r.text = res.choices && res.choices[0] && res.choices[0].text;
      const lp = res.choices && res.choices[0] && res.choices[0].logprobs;
      r.ids = lp && lp.content ? lp.content.map((c) => c.id) : null;
      r.top = lp && lp.content ? lp.content.map((c) => (c.top_logprobs || []).map((t) => [t.id, t.logprob])) : null;
    }
  } finally { await wl.exit(); }
  return r;
}
