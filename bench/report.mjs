// report.mjs - markdown tables from the JSON lines of bench/e2e.mjs,
// bench/e2e-node.mjs and bench/run.sh's native runs (docs/BENCHMARKS.md).
//   node bench/report.mjs build/bench/results.jsonl
import { readFileSync } from 'node:fs';

const rows = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const median = (a) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); const n = s.length; return n ? (n & 1 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };
const f = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const x = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '-');

// latest record per key (a rerun replaces older numbers), and all the sessions of the latest
// e2e.mjs run (--sessions: one fresh browser each); native runs: median over their reps
const last = new Map();
const sessions = new Map(); // key -> records of the key's latest run, one per session
const native = new Map();
for (const r of rows) {
  if (r.kind === 'llm-native' || r.kind === 'image-native') {
    const k = `${r.kind}|${r.model}|${r.threads}`;
    if (!native.has(k)) native.set(k, []);
    native.get(k).push(r);
  } else if (r.kind === 'llm' || r.kind === 'image') {
    const eng = r.tier && r.tier !== 'auto' ? `${r.engine}:${r.tier}` : r.engine; // owlet per forced build (bench/e2e.mjs --builds)
    const k = `${r.kind}|${r.model}|${eng}|${r.threads}`;
    const prev = sessions.get(k);
    sessions.set(k, prev && r.run && prev[0].run === r.run ? [...prev, r] : [r]);
    last.set(k, r);
  }
}
const get = (kind, model, engine, t) => last.get(`${kind}|${model}|${engine}|${t}`);
// owlet / wllama per browser session of the latest run (the two side by side in one session):
// [median ratio, min, max, sessions]; one session: its ratio
const sessionRatio = (o, w, k) => {
  const os = sessions.get(o) || [], ws = sessions.get(w) || [];
  const rs = os.map((a) => { const b = ws.find((x) => x.run === a.run && x.session === a.session); return b && b[k] > 0 ? a[k] / b[k] : NaN; })
    .filter(Number.isFinite);
  return rs.length ? [median(rs), Math.min(...rs), Math.max(...rs), rs.length] : [NaN, NaN, NaN, 0];
};
const xr = ([m, lo, hi, n]) => (!Number.isFinite(m) ? '-' : n > 1 ? `${m.toFixed(1)}x (${lo.toFixed(1)}–${hi.toFixed(1)}, ${n} sessions)` : `${m.toFixed(1)}x`);
const med = (key, k) => median((sessions.get(key) || []).map((r) => r[k]));
const nat = (kind, model, t) => {
  const a = native.get(`${kind}|${model}|${t}`) || [];
  return { prefillTokS: median(a.map((r) => r.promptN / r.prefillMs * 1e3)), decodeTokS: median(a.map((r) => r.genN / r.decodeMs * 1e3)),
    encodeMs: median(a.map((r) => r.encodeMs)), loadavg: a.length ? a[a.length - 1].loadavg : '' };
};
const models = [...new Set(rows.filter((r) => r.kind === 'llm').map((r) => r.model))].sort();
const threads = [...new Set(rows.filter((r) => r.kind === 'llm').map((r) => r.threads))].sort();
const la = (r) => (r && r.load ? r.load.join(' ') : '');

// issue 18's acceptance at 1 thread: [decode, prefill] ratios to wllama by weight type and owlet build
const TARGET = { relaxed: { q4_k: [2, 4], q4_0: [4, 8], q8_0: [4, 8] }, simd128: { q4_k: [1.3, 0], q4_0: [4, 8], q8_0: [4, 8] } };
const verdict = (m, tier, t, dr, pr) => {
  const tg = t === 1 && (TARGET[tier] || {})[m.slice(m.lastIndexOf('-') + 1)];
  if (!tg || !Number.isFinite(dr)) return '';
  const need = `decode ≥ ${tg[0]}×` + (tg[1] ? `, prefill ≥ ${tg[1]}×` : '');
  return `${need}: ${dr >= tg[0] && pr >= tg[1] ? 'met' : 'not met'}`;
};
const tiers = [...new Set(rows.filter((r) => r.kind === 'llm' && r.engine === 'owlet').map((r) => r.tier || 'auto'))];
console.log('### owlet vs wllama, same GGUF, side by side in each Chromium session\n');
console.log('| model | threads | owlet build | owlet prefill tok/s | wllama prefill tok/s | prefill ratio | owlet decode tok/s | wllama decode tok/s | decode ratio | target (1 thread) | load avg (owlet / wllama) |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|');
for (const m of models) for (const t of threads) for (const tier of tiers) {
  const ok = `llm|${m}|${tier === 'auto' ? 'owlet' : `owlet:${tier}`}|${t}`, wk = `llm|${m}|wllama|${t}`;
  const o = last.get(ok), w = last.get(wk);
  if (!o) continue;
  // several sessions: medians of each side, ratios taken per session; the verdict needs every session's ratio
  const pr = sessionRatio(ok, wk, 'prefillTokS'), dr = sessionRatio(ok, wk, 'decodeTokS');
  console.log(`| ${m} | ${t} | ${o.build} | ${f(med(ok, 'prefillTokS'))} | ${f(med(wk, 'prefillTokS'), 2)} | ${xr(pr)} | ` +
    `${f(med(ok, 'decodeTokS'), 2)} | ${f(med(wk, 'decodeTokS'), 2)} | ${xr(dr)} | ${verdict(m, tier, t, dr[1], pr[1])} | ${la(o)} / ${la(w)} |`);
}
console.log('\n### owlet: thread scaling and other hosts\n');
console.log('| model | browser prefill 1→2 threads | Node prefill tok/s (1 / 2 threads) | Node decode tok/s (1 / 2) | native prefill tok/s (1 / 2) | native decode tok/s (1 / 2) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const m of models) {
  const b1 = get('llm', m, 'owlet', 1), b2 = get('llm', m, 'owlet', 2);
  const n1 = get('llm', m, 'owlet-node', 1), n2 = get('llm', m, 'owlet-node', 2);
  const c1 = nat('llm-native', m, 1), c2 = nat('llm-native', m, 2);
  console.log(`| ${m} | ${x(b2 && b2.prefillTokS, b1 && b1.prefillTokS)} | ${f(n1 && n1.prefillTokS)} / ${f(n2 && n2.prefillTokS)} | ` +
    `${f(n1 && n1.decodeTokS, 2)} / ${f(n2 && n2.decodeTokS, 2)} | ${f(c1.prefillTokS)} / ${f(c2.prefillTokS)} | ${f(c1.decodeTokS, 2)} / ${f(c2.decodeTokS, 2)} |`);
}

// multiply-adds of one image: ViT-L/14 at 448 (1025 tokens, 24 layers) + abstractor + visual_fc
const N = 1025, D = 1024, L = 24, F = 4096, Q = 64, AD = 1024, AF = 2816, AL = 6, LLM_D = 4096;
const vit = 1024 * 588 * D + L * (N * D * (3 * D + D + 2 * F) + 2 * N * N * D);
const abs = AL * (Q * AD * AD * 2 + 2 * (N + Q) * D * AD + Q * AD * AF * 3 + 2 * Q * (N + Q) * AD) + Q * AD * LLM_D;
const gmac = (vit + abs) / 1e9;
console.log(`\n### Image encode (vision tower + abstractor, ${gmac.toFixed(0)} GMAC per image)\n`);
console.log('| host | threads | encode s | GMAC/s | 1→2 threads | load avg |');
console.log('|---|---:|---:|---:|---:|---|');
const imgModels = [...new Set(rows.filter((r) => r.kind === 'image' || r.kind === 'image-native').map((r) => r.model))];
for (const m of imgModels) for (const [host, eng] of [['Chromium', 'owlet-browser'], ['Node', 'owlet-node'], ['native', null]]) {
  const ms = [1, 2].map((t) => (eng ? (get('image', m, eng, t) || {}).encodeMs : nat('image-native', m, t).encodeMs));
  const loads = [1, 2].map((t) => (eng ? la(get('image', m, eng, t)) : nat('image-native', m, t).loadavg));
  for (const [i, t] of [1, 2].entries()) {
    if (!Number.isFinite(ms[i])) continue;
    console.log(`| ${host} | ${t} | ${f(ms[i] / 1e3, 2)} | ${f(gmac / (ms[i] / 1e3))} | ${t === 2 ? x(ms[0], ms[1]) : ''} | ${loads[i]} |`);
  }
}
