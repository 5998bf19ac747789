// report.mjs - the Markdown summary of a fullscale.json (run.mjs prints it; docs/BENCHMARKS.md
// "Full-size mPLUG-Owl2" is made from it). Also: `node bench/fullscale/report.mjs DIR/fullscale.json`.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const MIB = 1048576;
const f = (x, d = 1) => (x == null || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const tps = (n, ms) => (ms > 0 ? n / (ms / 1e3) : 0);
const la = (a) => (a ? a.map((x) => f(x, 1)).join(' ') : '–');
const gib = (b) => f(b / 2 ** 30, 1);

/** Every answer of the results: [label, record] with record.ids. */
export function allRuns(results) {
  const out = [...results.native.map((r) => [`native ${r.threads}t`, r]), ...results.node.map((r) => [`node ${r.threads}t`, r])];
  for (const [e, b] of Object.entries(results.browsers || {})) {
    for (const r of b.runs || []) out.push([`${e} ${r.threads}t (${r.stats.build})`, r]);
    for (const r of b.reloads || []) if (r.ids) out.push([`${e} after reload (${r.stats.build})`, r]);
    if (b.simd128) out.push([`${e} ${b.simd128.threads}t (${b.simd128.stats.build}, forced)`, b.simd128]);
  }
  return out;
}

/** One table row per answer: native, Node, then each browser's runs, first reload and SIMD128 row. */
function rows(results) {
  const lines = ['| where | build | threads | load s | image encode s | prefill s (tok/s) | decode tok/s, wall clock | decode tok/s, stats() | memory | load avg |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|'];
  for (const r of results.native)
    lines.push(`| native CLI | gcc + SIMDe | ${r.threads} | ${f(r.loadMs / 1e3)} | ${f(r.imageEncodeMs / 1e3)} | ` +
      `${f(r.prefillMs / 1e3)} (${f(tps(r.promptTokens, r.prefillMs), 2)}) | ${f(tps(r.completionTokens, r.decodeMs), 2)} | (one process) | ` +
      `RSS ${gib(r.maxRssBytes)} GiB | ${la(r.loadAvgStart)} → ${la(r.loadAvgEnd)} |`);
  for (const r of results.node)
    lines.push(`| Node (wasm) | ${r.build || 'owlet'} | ${r.threads} | ${f(r.loadMs / 1e3)} | ${f(r.imageEncodeMs / 1e3)} | ` +
      `${f(r.prefillMs / 1e3)} (${f(tps(r.promptTokens, r.prefillMs), 2)}) | ${f(r.streamedDecodeTokPerS, 2)} | ${f(tps(r.completionTokens, r.decodeMs), 2)} | ` +
      `RSS ${gib(r.maxRssBytes)} GiB; stages ${(r.stageMemoryBytes || []).map((b) => f(b / MIB, 0)).join(' / ')} MiB | ${la(r.loadAvgStart)} → ${la(r.loadAvgEnd)} |`);
  const brow = (name, r, loadS) =>
    `| ${name} | ${r.stats.build} | ${r.threads ?? r.stats.threads} | ${f(loadS)} | ${f(r.wall.encodeMs / 1e3)} | ` +
    `${f(r.wall.prefillMs / 1e3)} (${f(r.wall.prefillTokPerS, 2)}) | ${f(r.wall.decodeTokPerS, 2)} | ${f(r.stats.decodeTokPerS, 2)} | ` +
    `content process ${gib(r.memory.contentPeakBytes)} GiB, all ${gib(r.memory.totalPeakBytes)} GiB | ${la(r.loadAvg)} |`;
  for (const [e, b] of Object.entries(results.browsers || {})) {
    for (const r of b.runs || []) lines.push(brow(e, r, r.load.loadS));
    const r0 = (b.reloads || [])[0];
    if (r0 && r0.ids) lines.push(brow(`${e}, after a page reload`, r0, r0.loadS));
    if (b.simd128) lines.push(brow(`${e}, SIMD128 build forced`, b.simd128, b.simd128.load.loadS));
  }
  return lines;
}

/** Per engine: download, reloads, time to first token, memory, where it stopped. */
function engineLines(results) {
  const lines = [];
  for (const [e, b] of Object.entries(results.browsers || {})) {
    const p = [`**${e}** (${b.date}, ${b.userAgent || ''}; load avg ${la(b.loadAvgStart)} → ${la(b.loadAvgEnd)}):`];
    if (b.runs && b.runs[0]) p.push(`download + verify + store into IndexedDB ${f(b.runs[0].load.fetchAndStoreS)} s, then load ${f(b.runs[0].load.loadS)} s;`);
    const rl = b.reloads || [];
    if (rl.length) {
      p.push(`${rl.length} page reload(s) → ready from the cache in ${rl.map((r) => f(r.totalS)).join(' / ')} s ` +
        `(load ${rl.map((r) => f(r.loadS)).join(' / ')} s) with ${rl.reduce((a, r) => a + r.weightRequests, 0)} weight requests;`);
      if (rl[0].timeToFirstTokenS != null) p.push(`time to first token from the reload ${f(rl[0].timeToFirstTokenS)} s;`);
      if (b.typed) p.push(`in the page UI, a new photo opened and read ahead (encoded and ${b.typed.primedRows} prompt rows primed) in ${f(b.typed.readS)} s, then Send to the first answer text ${f(b.typed.sendToTextS)} s (${b.typed.rowsAfterSend} rows after Send);`);
      p.push(`reading every chunk from IndexedDB alone ${rl.map((r) => f(r.idbReadS, 2)).join(' / ')} s ` +
        `(reload-to-ready / read ${rl.map((r) => f(r.ratio, 2)).join(' / ')})` +
        (rl[0].idbReadKeepS ? `, into kept buffers ${rl.map((r) => f(r.idbReadKeepS, 2)).join(' / ')} s (ratio ${rl.map((r) => f(r.ratioKeep, 2)).join(' / ')});` : ';'));
    }
    if (b.memory) p.push(`peak RSS: content process ${gib(b.memory.contentPeakBytes)} GiB, all its processes ${gib(b.memory.totalPeakBytes)} GiB.`);
    if (b.stopped) {
      const s = b.stopped;
      const said = s.message.includes(s.progress) ? '' : `; the page said "${s.progress}"`;
      p.push(`**Stopped** at "${s.step}" (${s.at}): ${s.message.split('\n')[0]}${said}; at that moment content process ` +
        `${gib(s.memory.contentRssBytes)} GiB, all ${gib(s.memory.totalRssBytes)} GiB, system MemAvailable ${gib(s.memory.memAvailableBytes)} GiB, load avg ${la(s.loadAvg)}.`);
    }
    if (b.errors && b.errors.length) p.push(`Page errors: ${b.errors.slice(0, 3).join(' | ')}`);
    lines.push(p.join(' '), '');
  }
  return lines;
}

/** Issue 18's full-size acceptance targets against the Chromium rows (wall clock). */
function targets(results) {
  const c = (results.browsers || {}).chromium;
  if (!c || !c.runs) return [];
  const at = (t) => c.runs.find((r) => r.threads === t);
  const r2 = at(2), r1 = at(1), s = c.simd128, rl = (c.reloads || [])[0];
  const row = (what, got, ok) => `| ${what} | ${got} | ${got === '–' ? 'not measured' : ok ? 'met' : 'not met'} |`;
  const lines = ['| target (issue 18, Chromium, wall clock) | measured | |', '|---|---:|---|'];
  if (r2) {
    lines.push(row('2 threads: image encode ≤ 8 s', `${f(r2.wall.encodeMs / 1e3)} s`, r2.wall.encodeMs <= 8000));
    lines.push(row(`2 threads: prefill of the ${r2.stats.promptTokens}-position prompt ≤ 6 s`, `${f(r2.wall.prefillMs / 1e3)} s`, r2.wall.prefillMs <= 6000));
    lines.push(row('2 threads: decode ≥ 3.5 tok/s', `${f(r2.wall.decodeTokPerS, 2)} tok/s`, r2.wall.decodeTokPerS >= 3.5));
  }
  if (rl && rl.timeToFirstTokenS != null) lines.push(row('time to first token from a cached reload ≤ 20 s', `${f(rl.timeToFirstTokenS)} s`, rl.timeToFirstTokenS <= 20));
  if (r1) lines.push(row(`1 thread (${r1.stats.build}): decode ≥ 2 tok/s`, `${f(r1.wall.decodeTokPerS, 2)} tok/s`, r1.wall.decodeTokPerS >= 2));
  if (s) {
    lines.push(row(`SIMD128 build, ${s.threads} threads: image encode ≤ 14 s`, `${f(s.wall.encodeMs / 1e3)} s`, s.wall.encodeMs <= 14000));
    lines.push(row(`SIMD128 build, ${s.threads} threads: decode ≥ 2.5 tok/s`, `${f(s.wall.decodeTokPerS, 2)} tok/s`, s.wall.decodeTokPerS >= 2.5));
  }
  return lines;
}

/** The whole summary; sets results.sameTokens. */
export function report(results) {
  const m = results.model, mc = results.machine;
  const lines = [`Model: ${m.type}, ${f(m.bytes / MIB, 0)} MiB in ${m.chunks} chunks, ${m.stages} stage(s). Machine: ${mc.cpu}, ` +
    `${mc.cores} cores, ${mc.memGiB} GiB; ${mc.chromium}; ${mc.firefox}; ${mc.webkit}; Node ${mc.node}. Run of ${results.date}.`, ''];
  lines.push('| conversion | wall | peak RSS | GGUF |', '|---|---|---|---|');
  for (const [t, c] of Object.entries(results.convert))
    lines.push(`| bf16 shards → ${t} | ${f(c.wallS, 0)} s | ${f(c.maxRssBytes / MIB, 0)} MiB | ${f(c.bytes / MIB, 0)} MiB |`);
  lines.push('', ...rows(results), '', ...engineLines(results), ...targets(results));
  const all = allRuns(results);
  const ref = all[0] && all[0][1].ids.join(' ');
  results.sameTokens = all.length > 0 && all.every(([, r]) => r.ids.join(' ') === ref);
  lines.push('', `Generated ids (${all.length} runs: ${all.map(([w]) => w).join(', ')}) ${results.sameTokens ? 'identical' : 'DIFFER'}: ${ref}`);
  for (const [w, r] of all) if (r.ids.join(' ') !== ref) lines.push(`  ${w}: ${r.ids.join(' ')}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(report(JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))));
}
