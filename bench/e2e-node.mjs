// e2e-node.mjs - owlet's end-to-end numbers in Node 20 (worker_threads engine,
// the same wasm builds and the same page-side code as bench/e2e.mjs).
//   node bench/e2e-node.mjs OUT.jsonl MODEL... [--threads 1,2] [--reps 3]
//        [--gen 32] [--image VISION_MODEL]
// MODEL is a name under build/bench/ with NAME/manifest.json.
import { appendFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { owletRun, owletImage, PROMPT } from './e2e-page.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n ? (n & 1 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };
const med = (r, k) => median(r.reps.map((x) => x[k]).filter((v) => Number.isFinite(v)));

const argv = process.argv.slice(2);
const out = argv.shift();
const opt = { threads: '1,2', reps: '3', gen: '32', image: '' };
const models = [];
while (argv.length) { const a = argv.shift(); if (a.startsWith('--')) opt[a.slice(2)] = argv.shift(); else models.push(a); }
const wasmBase = path.join(root, 'build/bench/wasm/');
const manifest = (m) => pathToFileURL(path.join(root, 'build/bench', m, 'manifest.json')).href;
const emit = (o) => { const line = JSON.stringify({ ...o, load: loadavg().map((x) => +x.toFixed(2)), time: new Date().toISOString() }); console.log(line); appendFileSync(out, line + '\n'); };
for (const t of opt.threads.split(',').map(Number)) {
  if (opt.image) {
    try {
      const r = await owletImage({ manifest: manifest(opt.image), wasmBase, threads: t, reps: Number(opt.reps) });
      emit({ kind: 'image', model: opt.image, engine: 'owlet-node', threads: r.threads, build: r.build, encodeMs: med(r, 'encodeMs'), reps: r.reps });
    } catch (e) { emit({ kind: 'error', model: opt.image, engine: 'owlet-node', threads: t, error: String(e.message || e) }); }
  }
  for (const m of models) {
    try {
      const r = await owletRun({ manifest: manifest(m), wasmBase, threads: t, reps: Number(opt.reps), text: PROMPT, nGen: Number(opt.gen) });
      emit({ kind: 'llm', model: m, engine: 'owlet-node', threads: r.threads, build: r.build, prefillTokS: med(r, 'prefillTokS'),
        decodeTokS: med(r, 'decodeTokS'), promptN: med(r, 'promptN'), genN: med(r, 'genN'), reps: r.reps, ids: r.ids });
    } catch (e) { emit({ kind: 'error', model: m, engine: 'owlet-node', threads: t, error: String(e.message || e) }); }
  }
}
