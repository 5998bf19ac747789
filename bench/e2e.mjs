// e2e.mjs - end-to-end benchmark: owlet vs wllama (llama.cpp wasm) in ONE
// headless Chromium session on the same random-weight GGUFs (bench/run.sh makes
// them with bench/tools/make_gguf), plus owlet's image encode. Prints one JSON
// line per (model, engine, threads) to stdout and appends them to OUT.
//
//   node bench/e2e.mjs OUT.jsonl MODEL... [--threads 1,2] [--reps 3] [--gen 32]
//        [--engines owlet,wllama] [--builds auto|relaxed,simd128] [--image VISION_MODEL] [--sessions 1]
//        [--wasm build/bench/wasm]
// --wasm DIR[,DIR2...]: where owlet's engine builds are (under the repository); with several, each
// owlet run is made with each in turn in the same browser session (an A/B of two engines; the
// records then name their `wasm`; the image encode uses the first).
// --sessions N: everything N times, each time in a fresh Chromium (one browser session can run at
// either of two speed levels here: docs/BENCHMARKS.md, "Why the browser's numbers swing on this
// VM"); bench/report.mjs then gives each ratio per session (owlet and wllama of one session) and
// their median and range. Every line carries `run` (this invocation) and `session`.
// MODEL is a name under build/bench/ with NAME.gguf and NAME/manifest.json.
// --builds: owlet's wasm build per run, each beside the same wllama run:
// auto (what Owlet.load picks), relaxed (owlet-relaxed at any thread count) or
// simd128 (the Safari path: owlet-st at 1 thread, owlet above).
// The prompt: PROMPT (e2e-page.mjs), 64 ids with owlet's template; wllama gets
// the same rendered text (llama.cpp adds BOS; its prompt count is recorded).
// wllama's JSON reply throws on invalid UTF-8, so it gets no logprobs and a
// logit bias against the 256 byte pieces (the work per token is the same).
// BENCH_JSFLAGS=--no-liftoff (say): V8 flags for the Chromium it starts (a diagnosis: docs/BENCHMARKS.md,
// "Why the browser's numbers swing on this VM").
// Needs `npm install` (@wllama/wllama, playwright-core), /usr/bin/chromium and
// the wasm build copied to build/bench/wasm/ (bench/run.sh does).
import { chromium } from 'playwright-core';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer } from '../tests/browser/server.mjs';
import { PROMPT } from './e2e-page.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export { PROMPT };

export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Start the server and a fresh Chromium; returns {page, call, close}. */
export async function openBrowser() {
  const srv = new TestServer(root);
  await srv.listen();
  const userDir = mkdtempSync(path.join(tmpdir(), 'owlet-bench-'));
  const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
    args: [...BROWSER_ARGS, ...(process.env.BENCH_JSFLAGS ? [`--js-flags=${process.env.BENCH_JSFLAGS}`] : [])] });
  const page = await ctx.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(`pageerror ${e.message}`));
  await page.goto(`http://127.0.0.1:${srv.port}/`);
  const call = (fn, o) => page.evaluate(async ([fn, o]) => (await import('/bench/e2e-page.mjs'))[fn](o), [fn, o]);
  const close = async () => { await ctx.close(); srv.close(); rmSync(userDir, { recursive: true, force: true }); };
  return { page, call, close, logs, version: ctx.browser() ? ctx.browser().version() : '' };
}

/** --builds tier -> Owlet.load's `build` for a thread count (undefined: its own choice). */
const TIER_BUILD = { auto: () => undefined, relaxed: () => 'owlet-relaxed', simd128: (t) => (t > 1 ? 'owlet' : 'owlet-st') };

const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n ? (n & 1 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };

function summary(r) {
  const m = (k) => median(r.reps.map((x) => x[k]).filter((v) => Number.isFinite(v)));
  return { prefillTokS: m('prefillTokS'), decodeTokS: m('decodeTokS'), encodeMs: m('encodeMs'), promptN: m('promptN'), genN: m('genN') };
}

async function main() {
  const argv = process.argv.slice(2);
  const out = argv.shift();
  const opt = { threads: '1,2', reps: '3', gen: '32', engines: 'owlet,wllama', builds: 'auto', image: '', sessions: '1',
    wasm: 'build/bench/wasm' };
  const models = [];
  while (argv.length) {
    const a = argv.shift();
    if (a.startsWith('--')) opt[a.slice(2)] = argv.shift(); else models.push(a);
  }
  const threads = opt.threads.split(',').map(Number), reps = Number(opt.reps), nGen = Number(opt.gen);
  const engines = opt.engines.split(',');
  const tiers = opt.builds.split(',');
  for (const tier of tiers) if (!(tier in TIER_BUILD)) throw new Error(`--builds: unknown ${tier} (auto, relaxed, simd128)`);
  const sessions = Number(opt.sessions);
  if (!(Number.isInteger(sessions) && sessions >= 1)) throw new Error(`--sessions: a whole number >= 1, not ${opt.sessions}`);
  const run = new Date().toISOString();
  for (let session = 0; session < sessions; session++) await oneSession({ out, models, opt, threads, reps, nGen, engines, tiers, run, session });
}

async function oneSession({ out, models, opt, threads, reps, nGen, engines, tiers, run, session }) {
  const b = await openBrowser();
  const emit = (o) => { const line = JSON.stringify({ ...o, run, session, load: loadavg().map((x) => +x.toFixed(2)), time: new Date().toISOString() }); console.log(line); appendFileSync(out, line + '\n'); };
  emit({ kind: 'env', chromium: b.version });
  const bases = opt.wasm.split(',').map((d) => '/' + d.replace(/^\/+|\/+$/g, '') + '/');
  const wasmBase = bases[0];
  try {
    if (opt.image) {
      for (const t of threads) {
        try {
          const r = await b.call('owletImage', { manifest: `/build/bench/${opt.image}/manifest.json`, wasmBase, threads: t, reps });
          emit({ kind: 'image', model: opt.image, engine: 'owlet-browser', threads: r.threads, build: r.build, ...summary(r), reps: r.reps, loadMs: r.loadMs });
        } catch (e) { emit({ kind: 'error', model: opt.image, engine: 'owlet-browser', threads: t, error: String(e.message || e), logs: b.logs.slice(-5) }); }
      }
    }
    for (const model of models) {
      const manifest = `/build/bench/${model}/manifest.json`, url = `/build/bench/${model}.gguf`;
      for (const t of threads) {
        const runs = engines.flatMap((eng) => (eng === 'owlet' ? tiers.flatMap((tier) => bases.map((base) => [eng, tier, base])) : [[eng, '', '']]));
        for (const [eng, tier, base] of runs) {
          try {
            const r = eng === 'owlet'
              ? await b.call('owletRun', { manifest, wasmBase: base, threads: t, reps, text: PROMPT, nGen, build: TIER_BUILD[tier](t) })
              : await b.call('wllamaRun', { url, threads: t, reps, prompt: `USER: ${PROMPT} ASSISTANT:`, nGen, noBytes: true });
            emit({ kind: 'llm', model, engine: eng, tier: tier || undefined, wasm: bases.length > 1 && base ? base : undefined,
              threads: r.threads, build: r.build || (r.multithread ? 'mt' : 'st'),
              ...summary(r), reps: r.reps, loadMs: r.loadMs, ids: r.ids, version: r.version });
          } catch (e) { emit({ kind: 'error', model, engine: eng, tier, threads: t, error: String(e.message || e), logs: b.logs.slice(-5) }); }
        }
      }
    }
  } finally { await b.close(); }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main().catch((e) => { console.error(e); process.exit(1); });
