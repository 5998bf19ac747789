// eval_owlet — run owlet (native CLI and the wasm engine in Node) on the items of eval.py's
// eval.json and compare with PyTorch: accuracy per question type, and how often owlet's greedy
// tokens equal PyTorch's.
//
//   node weights_tool/train_demo/eval_owlet.mjs EVAL_JSON GGUF MANIFEST
//        [--out FILE.json] [--threads N] [--only native|wasm]
//
// GGUF is the converted model (for build/owlet), MANIFEST the same model split into chunks (for
// the wasm engine, wasm_glue/owlet.mjs); both must be the shipped quant. Greedy (temperature 0),
// at most 32 new tokens, a fresh chat per item. An answer is correct when its text (trimmed)
// equals the expected answer exactly, as in eval.py. "same as PyTorch" compares token ids
// (a final </s> dropped on both sides: the wasm API stops on it without emitting it).
// Items without PyTorch's answers (no generated_ids: the same items made with shapes.py when
// the checkpoint is absent) are scored against the expected answers only; the PyTorch columns
// then read n/a.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Owlet } from '../../wasm_glue/owlet.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const outPath = opt('--out', null);
const threads = Number(opt('--threads', '1'));
const only = opt('--only', null);
if (args.length !== 3) {
  console.error('usage: eval_owlet.mjs EVAL_JSON GGUF MANIFEST [--out FILE] [--threads N] [--only native|wasm]');
  process.exit(2);
}
const [evalPath, gguf, manifest] = args;
const ev = JSON.parse(readFileSync(evalPath, 'utf8'));
const evalDir = path.dirname(path.resolve(evalPath));
const MAX_NEW = 32;
const noEos = (ids) => ids.filter((t) => t !== 2);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hasPytorch = ev.items.every((x) => Array.isArray(x.generated_ids));

async function native(it) {
  const { stdout, stderr } = await run(path.join(root, 'build/owlet'), [
    '--model', gguf, '--image', path.join(evalDir, it.image), '--prompt', it.question,
    '--n-predict', String(MAX_NEW), '--temp', '0', '--threads', String(threads), '--print-ids',
  ]);
  const line = stderr.split('\n').find((l) => l.startsWith('ids:')) || 'ids:';
  const ids = line.slice(4).trim().split(/\s+/).filter(Boolean).map(Number);
  return { text: stdout.trim(), ids: noEos(ids) };
}

let owl = null;
async function wasm(it) {
  owl = owl || await Owlet.load(path.resolve(manifest), { wasmBase: path.join(root, 'build/wasm'), threads });
  const chat = owl.chat();
  await chat.addImage(path.join(evalDir, it.image));
  const ids = [];
  let text = '';
  const opts = { temperature: 0, maxTokens: MAX_NEW, _debugLogits: (_l, t) => ids.push(t) };
  for await (const piece of chat.ask(it.question, opts)) text += piece;
  return { text: text.trim(), ids: noEos(ids) };
}

const engines = { native, wasm };
const types = [...new Set(ev.items.map((x) => x.type))];
const report = { eval: path.resolve(evalPath), gguf: path.resolve(gguf), manifest: path.resolve(manifest), threads, engines: {} };
const pt = {};
for (const t of [...types, 'all']) {
  const sel = ev.items.filter((x) => t === 'all' || x.type === t);
  pt[t] = { correct: sel.filter((x) => x.correct).length, total: sel.length };
}
report.pytorch = hasPytorch ? pt : null;
for (const [name, fn] of Object.entries(engines)) {
  if (only && only !== name) continue;
  const t0 = performance.now();
  const per = {};
  const items = [];
  for (const t of [...types, 'all']) per[t] = { correct: 0, total: 0, samePytorch: 0 };
  for (const [k, it] of ev.items.entries()) {
    const r = await fn(it);
    const ok = r.text === it.expected;
    const eq = hasPytorch ? same(r.ids, noEos(it.generated_ids)) : null;
    for (const t of [it.type, 'all']) {
      per[t].total++;
      per[t].correct += ok;
      per[t].samePytorch += eq;
    }
    items.push({ index: it.index, type: it.type, generated: r.text, ids: r.ids, correct: ok, samePytorch: eq });
    if ((k + 1) % 50 === 0) console.error(`${name}: ${k + 1}/${ev.items.length} items, ${((performance.now() - t0) / 1e3).toFixed(0)} s`);
  }
  report.engines[name] = { accuracy: per, seconds: (performance.now() - t0) / 1e3, items };
}
if (owl) await owl.unload();

const pct = (a, b) => (100 * a / Math.max(1, b)).toFixed(1);
const names = Object.keys(report.engines);
console.log(`| type | PyTorch | ${names.map((n) => `owlet ${n}`).join(' | ')} | ${names.map((n) => `${n} = PyTorch greedy`).join(' | ')} |`);
console.log(`|---|---|${names.map(() => '---|').join('')}${names.map(() => '---|').join('')}`);
for (const t of [...types, 'all']) {
  const cells = names.map((n) => { const a = report.engines[n].accuracy[t]; return `${pct(a.correct, a.total)}% (${a.correct}/${a.total})`; });
  const eqs = names.map((n) => { const a = report.engines[n].accuracy[t]; return hasPytorch ? `${pct(a.samePytorch, a.total)}%` : 'n/a'; });
  const ptCell = hasPytorch ? `${pct(pt[t].correct, pt[t].total)}% (${pt[t].correct}/${pt[t].total})` : 'n/a';
  console.log(`| ${t} | ${ptCell} | ${cells.join(' | ')} | ${eqs.join(' | ')} |`);
}
if (outPath) writeFileSync(outPath, JSON.stringify(report, null, 1) + '\n');
