// run.mjs - `make bench-fullscale`: the released mPLUG-Owl2-7B's size, end to end on this
// machine (random weights with the real names, shapes, bf16 dtype and 33-shard layout).
//
//   node bench/fullscale/run.mjs [--dir DIR] [--threads 1,2] [--types q4_k_m,q4_0] [--skip-native]
//                                [--skip-node] [--skip-chromium] [--keep]
//
// DIR (default $OWLET_FULLSCALE_DIR or /var/tmp/owlet-fullscale; ~40 GB free needed) receives, when
// missing: llama2.model (tests/tokenizer/extract_llama2.mjs), ckpt/ (make_checkpoint.py, ~16.4 GB),
// owl2-7b-<type>.gguf for each --types (owlet-convert under /usr/bin/time -v: wall time and peak RSS),
// chunks/ (the first type split into 32 MiB chunks with the default stage plan), photo.png (448 x 448,
// scikit-image's astronaut). Then, on the first type, greedy 32 tokens for one question about the photo:
//   native   build/owlet (peak RSS from /usr/bin/time -v) at each thread count;
//   node     the wasm engine (wasm_glue/owlet.mjs) in a child Node process reading the chunk files;
//   chromium the web page (web/) in headless Chromium on a cross-origin-isolated localhost server:
//            Load (download into IndexedDB, then the stages), the answer at each thread count (the
//            model reloaded from IndexedDB between them), three page reloads (must fetch no weight
//            byte; ready time vs the time to just read the bytes from IndexedDB, measured right after
//            each, median ratio), the answer again after the first;
//            renderer RSS sampled from /proc, each stage's wasm memory from stats().
// The generated ids must be identical everywhere (exit 1 otherwise). Results: DIR/fullscale.json
// and a Markdown summary on stdout (docs/BENCHMARKS.md "Full-size mPLUG-Owl2" is made from it).
// Run it with plain `node` (playwright-core needs Node's fetch); the Node child that runs the engine
// gets --no-experimental-fetch itself. --keep keeps ckpt/ (deleted after conversion otherwise, it is only needed to convert).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MIB = 1048576;
const QUESTION = 'What is in the picture? Describe it in detail.';
const N_PREDICT = 32;
const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const flag = (k) => args.includes(k);

// ---------------------------------------------------------------- child: the wasm engine in Node
if (flag('--node-child')) {
  const { Owlet } = await import('../../wasm_glue/owlet.mjs');
  const [manifest, photo, threads] = [opt('--manifest'), opt('--photo'), Number(opt('--node-child'))];
  const t0 = performance.now();
  const owl = await Owlet.load(manifest, { wasmBase: path.join(root, 'build/wasm'), threads });
  const loadMs = performance.now() - t0;
  const chat = owl.chat();
  await chat.addImage(photo);
  const ids = [];
  let text = '';
  for await (const p of chat.ask(QUESTION, { temperature: 0, maxTokens: N_PREDICT, _debugLogits: (_l, t) => ids.push(t) })) text += p;
  const s = await owl.stats();
  await owl.unload();
  process.stdout.write(JSON.stringify({ loadMs, ids, text, stats: s, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
  process.exit(0);
}

const dir = path.resolve(opt('--dir', process.env.OWLET_FULLSCALE_DIR || '/var/tmp/owlet-fullscale'));
const threadsList = opt('--threads', '1,2').split(',').map(Number);
const types = opt('--types', 'q4_k_m,q4_0').split(',');
const log = (...a) => console.error('[fullscale]', ...a);
const results = { date: new Date().toISOString(), machine: machine(), dir, question: QUESTION, nPredict: N_PREDICT,
  convert: {}, native: [], node: [], chromium: {} };
const save = () => fs.writeFileSync(path.join(dir, 'fullscale.json'), JSON.stringify(results, null, 1) + '\n');

function machine() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
  let chromium = '';
  try { chromium = execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* absent */ }
  return { cpu, cores: os.cpus().length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, chromium };
}

/** Run a command under /usr/bin/time -v: {stdout, stderr, wallS, maxRssBytes}. */
function timed(cmd, argv, { quiet = false } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-v', cmd, ...argv], { cwd: root });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; if (!quiet) process.stderr.write(d); });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code}\n${err.slice(-2000)}`));
      const rss = Number((/Maximum resident set size \(kbytes\): (\d+)/.exec(err) || [0, 0])[1]) * 1024;
      const w = (/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(err) || [0, '0'])[1].split(':').map(Number);
      const wallS = w.reduce((a, x) => a * 60 + x, 0);
      resolve({ stdout: out, stderr: err, wallS, maxRssBytes: rss });
    });
  });
}

// ---------------------------------------------------------------- inputs
async function prepare() {
  fs.mkdirSync(dir, { recursive: true });
  const tok = path.join(dir, 'llama2.model');
  if (!fs.existsSync(tok)) execFileSync('node', ['tests/tokenizer/extract_llama2.mjs', tok], { cwd: root, stdio: 'inherit' });
  const ckpt = path.join(dir, 'ckpt');
  const ggufs = types.map((t) => path.join(dir, `owl2-7b-${t}.gguf`));
  if (ggufs.some((g) => !fs.existsSync(g)) && !fs.existsSync(path.join(ckpt, 'pytorch_model.bin.index.json'))) {
    log('writing the random 7B checkpoint (~16.4 GB)...');
    const r = await timed('/usr/bin/python3', ['bench/fullscale/make_checkpoint.py', ckpt, '--tokenizer', tok]);
    results.checkpoint = { wallS: r.wallS, bytes: dirBytes(ckpt) };
  }
  for (const [i, t] of types.entries()) {
    const meta = path.join(dir, `convert-${t}.json`);
    if (!fs.existsSync(ggufs[i])) {
      log(`converting to ${t}...`);
      const r = await timed(path.join(root, 'build/owlet-convert'), [ckpt, ggufs[i] + '.tmp', '--type', t, '--name', `mplug-owl2-7b-random-${t}`]);
      fs.renameSync(ggufs[i] + '.tmp', ggufs[i]);
      fs.writeFileSync(meta, JSON.stringify({ type: t, wallS: r.wallS, maxRssBytes: r.maxRssBytes, bytes: fs.statSync(ggufs[i]).size }) + '\n');
    }
    results.convert[t] = JSON.parse(fs.readFileSync(meta, 'utf8'));
  }
  if (!flag('--keep') && fs.existsSync(ckpt)) fs.rmSync(ckpt, { recursive: true, force: true });
  const chunks = path.join(dir, 'chunks');
  if (!fs.existsSync(path.join(chunks, 'manifest.json'))) {
    log(`splitting ${types[0]} into chunks...`);
    fs.rmSync(chunks, { recursive: true, force: true });
    execFileSync(path.join(root, 'build/owlet-convert'), ['--split', ggufs[0], chunks, '--chunk-mib', '32'], { stdio: 'inherit' });
  }
  const photo = path.join(dir, 'photo.png');
  if (!fs.existsSync(photo)) {
    execFileSync('/usr/bin/python3', ['-c', 'import sys, skimage.data as d; from PIL import Image; ' +
      'Image.fromarray(d.astronaut()).resize((448, 448), Image.BICUBIC).save(sys.argv[1])', photo]);
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(chunks, 'manifest.json'), 'utf8'));
  results.model = { type: types[0], bytes: fs.statSync(ggufs[0]).size, chunks: manifest.chunks.length,
    stages: (manifest.stages || []).length || 1 };
  return { gguf: ggufs[0], chunks, photo };
}

function dirBytes(d) {
  return fs.readdirSync(d).reduce((a, f) => a + fs.statSync(path.join(d, f)).size, 0);
}

// ---------------------------------------------------------------- native and Node
async function runNative(gguf, photo, threads) {
  const r = await timed(path.join(root, 'build/owlet'), ['--model', gguf, '--image', photo, '--prompt', QUESTION,
    '--n-predict', String(N_PREDICT), '--temp', '0', '--threads', String(threads), '--print-ids'], { quiet: true });
  const ids = ((/^ids:(.*)$/m.exec(r.stderr) || [0, ''])[1]).trim().split(/\s+/).filter(Boolean).map(Number).filter((t) => t !== 2);
  const m = /load (\d+) ms, image encode ([\d.]+) ms, prefill (\d+) tok in ([\d.]+) ms .* decode (\d+) tok in ([\d.]+) ms/.exec(r.stderr);
  return { threads, ids, text: r.stdout.trim(), loadMs: +m[1], imageEncodeMs: +m[2], promptTokens: +m[3], prefillMs: +m[4],
    completionTokens: +m[5], decodeMs: +m[6], maxRssBytes: r.maxRssBytes, wallS: r.wallS };
}

async function runNode(chunks, photo, threads) {
  const r = await timed(process.execPath, ['--no-experimental-fetch', fileURLToPath(import.meta.url), '--node-child', String(threads),
    '--manifest', path.join(chunks, 'manifest.json'), '--photo', photo], { quiet: true });
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  return { threads, ids: j.ids.filter((t) => t !== 2), text: j.text.trim(), loadMs: j.loadMs, imageEncodeMs: j.stats.imageEncodeMs,
    promptTokens: j.stats.promptTokens, prefillMs: j.stats.prefillMs, completionTokens: j.stats.completionTokens,
    decodeMs: j.stats.decodeMs, stageMemoryBytes: j.stats.stageMemoryBytes, maxRssBytes: r.maxRssBytes };
}

// ---------------------------------------------------------------- Chromium
async function runChromium(chunks, photo) {
  const { chromium } = await import('playwright-core');
  const { startServer } = await import('../../tests/browser/web-server.mjs');
  const { Sampler } = await import('../../tests/browser/procmem.mjs');
  const { ARGS } = await import('../../tests/browser/web-helpers.mjs');
  const server = await startServer({ coi: true, mounts: [['/models/full/', chunks], ['/fullscale/', path.dirname(photo)]] });
  const profile = fs.mkdtempSync(path.join(dir, 'profile-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: ARGS,
    viewport: { width: 1200, height: 900 } });
  const smp = new Sampler(profile);
  smp.start();
  const out = results.chromium;
  const errors = [];
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    const weightRequests = (from) => server.requests.slice(from).filter((r) => r.path.startsWith('/models/full/') && r.path.endsWith('.bin'));
    await page.goto(server.url + '?model=models/full/manifest.json');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60000 });
    const setThreads = async (t) => {
      if (!(await page.isVisible('#set-threads'))) await page.click('#settings summary');
      await page.fill('#set-threads', String(t));
      await page.dispatchEvent('#set-threads', 'change');
    };
    /** Click Load (or wait for the automatic load after a reload): phase times from the progress line. */
    const load = async (click) => {
      const t0 = Date.now();
      if (click) await page.click('#load');
      let loadingAt = 0;
      for (;;) {
        const [state, text] = await page.evaluate(() => [document.body.dataset.model, document.getElementById('progress-text').textContent]);
        if (!loadingAt && /^Loading into the engine/.test(text)) loadingAt = Date.now();
        if (state === 'ready' && /^Ready/.test(text)) break;
        if (/^Could not load/.test(text)) throw new Error(text);
        await new Promise((r) => setTimeout(r, 200));
      }
      const t1 = Date.now();
      // a phase shorter than one poll is not seen: then the whole wait counts as loading
      return { totalS: (t1 - t0) / 1e3, fetchAndStoreS: loadingAt ? (loadingAt - t0) / 1e3 : 0, loadS: ((loadingAt || t0) - t1) / -1e3 };
    };
    const answer = (threads) => page.evaluate(async ([q, n]) => {
      const owl = globalThis.owletApp.owl;
      const chat = owl.chat();
      await chat.addImage('/fullscale/photo.png');
      const ids = [];
      let text = '';
      for await (const p of chat.ask(q, { temperature: 0, maxTokens: n, _debugLogits: (_l, t) => ids.push(t) })) text += p;
      return { ids: ids.filter((t) => t !== 2), text: text.trim(), stats: await owl.stats() };
    }, [QUESTION, N_PREDICT]).then((r) => ({ threads, ...r }));

    out.runs = [];
    for (const [i, t] of threadsList.entries()) {
      await setThreads(t);
      const r0 = server.requests.length;
      const l = await load(true);
      const a = await answer(t);
      const w = weightRequests(r0);
      out.runs.push({ threads: t, load: l, weightRequests: w.length, ...a });
      log(`chromium ${t} thread(s): ${i === 0 ? 'download+store ' + l.fetchAndStoreS + ' s, ' : ''}load ${l.loadS} s, ` +
        `encode ${a.stats.imageEncodeMs.toFixed(0)} ms, prefill ${a.stats.prefillTokPerS.toFixed(2)} tok/s, decode ${a.stats.decodeTokPerS.toFixed(2)} tok/s`);
      save();
    }
    // reload: the page loads the cached model by itself; no weight byte may be fetched.
    // Three reloads, each followed by the floor: just reading every chunk's bytes out of
    // IndexedDB (the two alternate, so both see the same machine; the median ratio counts).
    // keep=false: each chunk's bytes are dropped once read (the allocator recycles a few buffers);
    // keep=true: every chunk stays in its own fresh ArrayBuffer until the end, so the read also
    // pays for first-touching as much fresh memory as the engine's copy into wasm memory does.
    const idbRead = (keep) => page.evaluate(async (keepBytes) => {
      const s = await import('./owlet/store.mjs');
      const m = await s.loadManifest(new URL('models/full/manifest.json', location.href).href);
      const b = new s.IdbBackend();
      const kept = [];
      const t = performance.now();
      let n = 0;
      await s.readChunks(m, { backend: b, dest: (_o, bytes) => { n += bytes.byteLength; if (keepBytes) kept.push(bytes); } });
      const dt = (performance.now() - t) / 1e3;
      if (n !== m.totalSize) throw new Error(`read ${n} of ${m.totalSize} bytes`);
      kept.length = 0;
      return dt;
    }, keep);
    out.reloads = [];
    for (let k = 0; k < 3; k++) {
      const r1 = server.requests.length;
      const t0 = Date.now();
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60000 });
      const reload = await load(false);
      reload.totalS = (Date.now() - t0) / 1e3;
      reload.weightRequests = weightRequests(r1).length;
      if (k === 0) Object.assign(reload, await answer(threadsList[threadsList.length - 1]));
      reload.idbReadS = await idbRead(false);
      reload.ratio = reload.totalS / reload.idbReadS;
      reload.idbReadKeepS = await idbRead(true);
      reload.ratioKeep = reload.totalS / reload.idbReadKeepS;
      log(`reload ${k + 1}: ready in ${reload.totalS} s (load ${reload.loadS} s), ${reload.weightRequests} weight requests; ` +
        `IndexedDB read alone ${reload.idbReadS.toFixed(2)} s (ratio ${reload.ratio.toFixed(2)}), ` +
        `read into kept buffers ${reload.idbReadKeepS.toFixed(2)} s (ratio ${reload.ratioKeep.toFixed(2)})`);
      out.reloads.push(reload);
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    out.reload = out.reloads[0];
    out.idbReadS = median(out.reloads.map((r) => r.idbReadS));
    out.reloadRatio = median(out.reloads.map((r) => r.ratio));
    out.idbReadKeepS = median(out.reloads.map((r) => r.idbReadKeepS));
    out.reloadRatioKeep = median(out.reloads.map((r) => r.ratioKeep));
    out.reloadWeightRequests = out.reloads.reduce((a, r) => a + r.weightRequests, 0);
    smp.sample();
    out.rendererPeakRssBytes = smp.rendererPeak;
    out.processes = [...smp.peak.values()].map((p) => ({ type: p.type, peakRssBytes: p.rss, hwmBytes: p.hwm }));
    out.errors = errors;
  } finally {
    smp.stop();
    await ctx.close();
    await server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report
function report() {
  const f = (x, d = 1) => (x == null ? '–' : Number(x).toFixed(d));
  const tps = (n, ms) => (ms > 0 ? n / (ms / 1e3) : 0);
  const lines = [];
  const m = results.model;
  lines.push(`Model: ${m.type}, ${f(m.bytes / MIB, 0)} MiB in ${m.chunks} chunks, ${m.stages} stage(s). Machine: ${results.machine.cpu}, ` +
    `${results.machine.cores} cores, ${results.machine.memGiB} GiB; ${results.machine.chromium}; Node ${results.machine.node}.`);
  lines.push('');
  lines.push('| conversion | wall | peak RSS | GGUF |', '|---|---|---|---|');
  for (const [t, c] of Object.entries(results.convert))
    lines.push(`| bf16 shards → ${t} | ${f(c.wallS, 0)} s | ${f(c.maxRssBytes / MIB, 0)} MiB | ${f(c.bytes / MIB, 0)} MiB |`);
  lines.push('');
  lines.push('| where | threads | load s | image encode s | prefill tok/s | decode tok/s | peak memory |', '|---|---|---|---|---|---|---|');
  for (const r of results.native)
    lines.push(`| native CLI | ${r.threads} | ${f(r.loadMs / 1e3)} | ${f(r.imageEncodeMs / 1e3)} | ${f(tps(r.promptTokens, r.prefillMs), 2)} | ` +
      `${f(tps(r.completionTokens, r.decodeMs), 2)} | RSS ${f(r.maxRssBytes / MIB, 0)} MiB |`);
  for (const r of results.node)
    lines.push(`| Node (wasm) | ${r.threads} | ${f(r.loadMs / 1e3)} | ${f(r.imageEncodeMs / 1e3)} | ${f(tps(r.promptTokens, r.prefillMs), 2)} | ` +
      `${f(tps(r.completionTokens, r.decodeMs), 2)} | RSS ${f(r.maxRssBytes / MIB, 0)} MiB; stages ${r.stageMemoryBytes.map((b) => f(b / MIB, 0)).join(' / ')} MiB |`);
  const c = results.chromium;
  for (const r of c.runs || [])
    lines.push(`| Chromium | ${r.threads} | ${f(r.load.loadS)} | ${f(r.stats.imageEncodeMs / 1e3)} | ${f(r.stats.prefillTokPerS, 2)} | ` +
      `${f(r.stats.decodeTokPerS, 2)} | stages ${r.stats.stageMemoryBytes.map((b) => f(b / MIB, 0)).join(' / ')} MiB |`);
  if (c.runs) {
    lines.push('');
    lines.push(`Chromium: download + verify + store into IndexedDB ${f(c.runs[0].load.fetchAndStoreS)} s; ` +
      `3 page reloads → ready from the cache in ${c.reloads.map((r) => f(r.totalS)).join(' / ')} s (load ${c.reloads.map((r) => f(r.loadS)).join(' / ')} s) ` +
      `with ${c.reloadWeightRequests} weight requests; reading all bytes from IndexedDB alone right after each: ` +
      `${c.reloads.map((r) => f(r.idbReadS, 2)).join(' / ')} s (reload-to-ready / read = ${c.reloads.map((r) => f(r.ratio, 2)).join(' / ')}, median ${f(c.reloadRatio, 2)}); ` +
      `into buffers kept until the end: ${c.reloads.map((r) => f(r.idbReadKeepS, 2)).join(' / ')} s ` +
      `(ratio ${c.reloads.map((r) => f(r.ratioKeep, 2)).join(' / ')}, median ${f(c.reloadRatioKeep, 2)}); ` +
      `renderer peak RSS ${f(c.rendererPeakRssBytes / MIB, 0)} MiB.`);
  }
  const all = [...results.native.map((r) => ['native', r]), ...results.node.map((r) => ['node', r]),
    ...(c.runs || []).map((r) => ['chromium', r]), ...(c.reload ? [['chromium reload', c.reload]] : [])];
  const ref = all[0] && all[0][1].ids.join(' ');
  results.sameTokens = all.every(([, r]) => r.ids.join(' ') === ref);
  lines.push('');
  lines.push(`Generated ids (${all.length} runs) ${results.sameTokens ? 'identical' : 'DIFFER'}: ${ref}`);
  for (const [w, r] of all) if (r.ids.join(' ') !== ref) lines.push(`  ${w} ${r.threads}: ${r.ids.join(' ')}`);
  return lines.join('\n');
}

const { gguf, chunks, photo } = await prepare();
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
if (!flag('--skip-chromium')) await runChromium(chunks, photo);
const md = report();
save();
console.log(md);
process.exit(results.sameTokens ? 0 : 1);
