// run.mjs - `make bench-fullscale`: the released mPLUG-Owl2-7B's size, end to end on this
// machine (random weights with the real names, shapes, bf16 dtype and 33-shard layout).
//
//   node bench/fullscale/run.mjs [--dir DIR] [--threads 1,2] [--types q4_k_m,q4_0]
//        [--engines chromium,firefox,webkit] [--simd128 chromium] [--reloads 3]
//        [--skip-native] [--skip-node] [--skip-chromium] [--keep]
//
// DIR (default $OWLET_FULLSCALE_DIR or /var/tmp/owlet-fullscale; ~40 GB free needed) receives, when
// missing (inputs.mjs): llama2.model (tests/tokenizer/extract_llama2.mjs), ckpt/ (make_checkpoint.py,
// ~16.4 GB), owl2-7b-<type>.gguf for each --types (owlet-convert under /usr/bin/time -v: wall time and
// peak RSS), chunks/ (the first type split into 32 MiB chunks with the default stage plan), photo.png
// (448 x 448, scikit-image's astronaut; photo2.png, its coffee, for the page-UI run). Then, on the first type, greedy 32 tokens for one question
// about the photo:
//   native   build/owlet (peak RSS from /usr/bin/time -v) at each thread count;
//   node     the wasm engine (wasm_glue/owlet.mjs) in a child Node process reading the chunk files;
//   browsers each of --engines (default all three) through the web page (browser.mjs): download into
//            IndexedDB, the answer at each thread count the engine allows, --reloads page reloads
//            (no weight fetch; time to first token; the bare IndexedDB read), and for the engines
//            in --simd128 (default chromium; "none" for none) the answer with the SIMD128 build forced.
// Every timing is wall clock; every record carries the load average (the machine may be shared).
// The generated ids must be identical everywhere (exit 1 otherwise). Results: DIR/fullscale.json and
// a Markdown summary on stdout (report.mjs; docs/BENCHMARKS.md "Full-size mPLUG-Owl2" is made from
// it). A part that is skipped (--skip-native, --skip-node, an engine not in --engines) keeps its
// results from the previous DIR/fullscale.json, each with its own date, so parts can be rerun.
// --skip-chromium drops chromium from --engines. --keep keeps ckpt/ (deleted after conversion
// otherwise, it is only needed to convert).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const QUESTION = 'What is in the picture? Describe it in detail.';
const N_PREDICT = 32;
const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const flag = (k) => args.includes(k);

// ---------------------------------------------------------------- child: the wasm engine in Node
if (flag('--node-child')) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const { Owlet } = await import('../../wasm_glue/owlet.mjs');
  const [manifest, photo, threads] = [opt('--manifest'), opt('--photo'), Number(opt('--node-child'))];
  const t0 = performance.now();
  const owl = await Owlet.load(manifest, { wasmBase: path.join(root, 'build/wasm'), threads });
  const loadMs = performance.now() - t0;
  const chat = owl.chat();
  await chat.addImage(photo);
  const ids = [], tokenAt = [];
  let text = '';
  const debug = (_l, t) => { ids.push(t); tokenAt.push(performance.now()); };
  for await (const p of chat.ask(QUESTION, { temperature: 0, maxTokens: N_PREDICT, _debugLogits: debug })) text += p;
  const s = await owl.stats();
  await owl.unload();
  process.stdout.write(JSON.stringify({ loadMs, ids, tokenAt, text, stats: s, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
  process.exit(0);
}

const { root, machine, timed, prepare } = await import('./inputs.mjs');
const { runEngine } = await import('./browser.mjs');
const { report } = await import('./report.mjs');
const { loadAvg } = await import('./procs.mjs');

const dir = path.resolve(opt('--dir', process.env.OWLET_FULLSCALE_DIR || '/var/tmp/owlet-fullscale'));
const threadsList = opt('--threads', '1,2').split(',').map(Number);
const types = opt('--types', 'q4_k_m,q4_0').split(',');
const engineList = opt('--engines', 'chromium,firefox,webkit').split(',').filter((e) => e && !(e === 'chromium' && flag('--skip-chromium')));
const simd128 = opt('--simd128', 'chromium').split(',');
const log = (...a) => console.error('[fullscale]', new Date().toISOString().slice(11, 19), ...a);
const jsonPath = path.join(dir, 'fullscale.json');
const prev = fs.existsSync(jsonPath) ? JSON.parse(fs.readFileSync(jsonPath, 'utf8')) : {};
const dated = (list) => (list || []).map((r) => ({ date: prev.date, ...r }));
const results = { date: new Date().toISOString(), command: ['node', 'bench/fullscale/run.mjs', ...args].join(' '), machine: machine(),
  dir, question: QUESTION, nPredict: N_PREDICT, convert: {},
  native: flag('--skip-native') ? dated(prev.native) : [], node: flag('--skip-node') ? dated(prev.node) : [],
  browsers: Object.fromEntries(Object.entries(prev.browsers || {}).filter(([e]) => !engineList.includes(e))) };
const save = () => fs.writeFileSync(jsonPath, JSON.stringify(results, null, 1) + '\n');

// ---------------------------------------------------------------- native and Node
async function runNative(gguf, photo, threads) {
  const loadAvgStart = loadAvg();
  const r = await timed(path.join(root, 'build/owlet'), ['--model', gguf, '--image', photo, '--prompt', QUESTION,
    '--n-predict', String(N_PREDICT), '--temp', '0', '--threads', String(threads), '--print-ids'], { quiet: true });
  const ids = ((/^ids:(.*)$/m.exec(r.stderr) || [0, ''])[1]).trim().split(/\s+/).filter(Boolean).map(Number).filter((t) => t !== 2);
  const m = /load (\d+) ms, image encode ([\d.]+) ms, prefill (\d+) tok in ([\d.]+) ms .* decode (\d+) tok in ([\d.]+) ms/.exec(r.stderr);
  return { threads, date: new Date().toISOString(), ids, text: r.stdout.trim(), loadMs: +m[1], imageEncodeMs: +m[2], promptTokens: +m[3],
    prefillMs: +m[4], completionTokens: +m[5], decodeMs: +m[6], maxRssBytes: r.maxRssBytes, wallS: r.wallS, loadAvgStart, loadAvgEnd: loadAvg() };
}

async function runNode(chunks, photo, threads) {
  const loadAvgStart = loadAvg();
  const r = await timed(process.execPath, [fileURLToPath(import.meta.url), '--node-child', String(threads),
    '--manifest', path.join(chunks, 'manifest.json'), '--photo', photo], { quiet: true });
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  const n = j.tokenAt.length, span = j.tokenAt[n - 1] - j.tokenAt[0];
  return { threads, date: new Date().toISOString(), build: j.stats.build, ids: j.ids.filter((t) => t !== 2), text: j.text.trim(),
    loadMs: j.loadMs, imageEncodeMs: j.stats.imageEncodeMs, promptTokens: j.stats.promptTokens, prefillMs: j.stats.prefillMs,
    completionTokens: j.stats.completionTokens, decodeMs: j.stats.decodeMs, streamedDecodeTokPerS: (n - 1) / (span / 1e3),
    stageMemoryBytes: j.stats.stageMemoryBytes, maxRssBytes: r.maxRssBytes, loadAvgStart, loadAvgEnd: loadAvg() };
}

// ---------------------------------------------------------------- main
const { gguf, chunks, photo, photo2 } = await prepare(dir, types, { keep: flag('--keep'), results, log });
save();
for (const t of threadsList) {
  if (flag('--skip-native')) break;
  log(`native, ${t} thread(s)...`);
  results.native.push(await runNative(gguf, photo, t));
  save();
}
for (const t of threadsList) {
  if (flag('--skip-node')) break;
  log(`node, ${t} thread(s)...`);
  results.node.push(await runNode(chunks, photo, t));
  save();
}
for (const engine of engineList) {
  log(`${engine}...`);
  results.browsers[engine] = {};
  await runEngine(engine, { chunks, photo, photo2, threadsList, reloads: Number(opt('--reloads', 3)), simd128: simd128.includes(engine),
    question: QUESTION, nPredict: N_PREDICT, out: results.browsers[engine], log, save });
}
const md = report(results);
save();
console.log(md);
process.exit(results.sameTokens ? 0 : 1);
