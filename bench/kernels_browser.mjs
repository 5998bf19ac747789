// kernels_browser.mjs - the kernel benchmark (bench/kernels.c) in Debian's
// headless Chromium, in one browser session: scalar reference, SIMD128 and
// relaxed SIMD, interleaved kernel by kernel (for each kernel type, the three
// builds back to back, so a burst of load from other processes hits all three
// alike). Prints a markdown table with the three GMAC/s side by side and the
// ratios.
//
//   node bench/kernels_browser.mjs [min_seconds (0.25)] [rounds (1)] [kernels (q4_0,q8_0,q4_K,q6_K,f16,f32,roof,ab)]
// (kernels may also name "decode": the decode profile of bench/profile.c, ms per token by part)
// (and "vision": the vision layer profile of bench/profile.c, ms per ViT layer by part)
// ("gemm": owl_matmul at the prefill and vision shapes, 1 thread; "gemm0+gemm3" runs shapes 0 and 3 in one page)
//   BENCH_JSFLAGS=--no-liftoff: V8 flags for Chromium (without it a kernel may be timed in Liftoff code
//   while its TurboFan tier-up is still compiling on a loaded machine)
//   BENCH_RAW=1: every line the bench prints, on stderr
//   BENCH_BUILDS=simd128,relaxed node bench/kernels_browser.mjs ...   (a subset of scalar,simd128,relaxed)
//   BENCH_BASELINE=DIR[,DIR2...]: also run each DIR's owlet-bench*.js (e.g. another checkout's build/wasm)
//   as builds "base-<name>" (then "base2-<name>", ...), interleaved with this tree's: an A/B of versions
//   in one browser session.
// With rounds > 1 everything runs that many times and each cell is the best
// round (noise from other processes only ever slows a run down).
// Needs build/wasm/owlet-bench{,-scalar,-relaxed}.js (`make bench` builds them).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, existsSync, symlinkSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer } from '../tests/browser/server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const minS = process.argv[2] || '0.25';
const rounds = Number(process.argv[3] || 1);
const kernels = (process.argv[4] || 'q4_0,q8_0,q4_K,q6_K,f16,f32,roof,ab').split(',');
const wanted = (process.env.BENCH_BUILDS || 'scalar,simd128,relaxed').split(',');
const BUILDS = [['scalar', 'owlet-bench-scalar.js'], ['simd128', 'owlet-bench.js'], ['relaxed', 'owlet-bench-relaxed.js']]
  .filter(([name]) => wanted.includes(name));
const baseDirs = process.env.BENCH_BASELINE ? process.env.BENCH_BASELINE.split(',') : [];
const baseLinks = baseDirs.map((d, i) => path.join(root, `build/wasm/baseline${i || ''}`));
const own = [...BUILDS];
baseDirs.forEach((dir, i) => { // served through symlinks under build/wasm, removed at the end
  rmSync(baseLinks[i], { force: true });
  symlinkSync(path.resolve(dir), baseLinks[i]);
  for (const [name, f] of own) BUILDS.push([`base${i ? i + 1 : ''}-${name}`, `${path.basename(baseLinks[i])}/${f}`]);
});
for (const [, f] of BUILDS)
  if (!existsSync(path.join(root, 'build/wasm', f))) throw new Error(`build/wasm/${f} is missing: run make bench`);

const srv = new TestServer(root);
// CPU seconds of this Chromium's renderer processes (all their threads), from /proc: the page's bench
// reads it through a synchronous request (bench/kernels.c cpu_now), so rates per CPU-second are not
// lowered by other processes taking the cores (cache and memory contention still count). Only the
// renderers descending from the browser started below (its --user-data-dir names it): another
// Chromium on the machine would count too.
const userDir = mkdtempSync(path.join(tmpdir(), 'owlet-kbench-'));
const procs = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return { pid, ppid: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1], cmd: readFileSync(`/proc/${pid}/cmdline`, 'latin1') };
  } catch { return null; } // ended
}).filter(Boolean);
const serve = srv.handle.bind(srv);
srv.handle = async (req, res) => {
  if (!req.url.startsWith('/__cpu')) return serve(req, res);
  const all = procs(), mine = new Set(all.filter((p) => p.cmd.includes(userDir) && !p.cmd.includes('--type=')).map((p) => p.pid));
  for (let grew = true; grew;) { // descendants of the browser process
    grew = false;
    for (const p of all) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); grew = true; }
  }
  let ns = 0;
  for (const p of all) {
    if (!mine.has(p.pid) || !p.cmd.includes('--type=renderer')) continue;
    try {
      for (const tid of readdirSync(`/proc/${p.pid}/task`))
        ns += Number(readFileSync(`/proc/${p.pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch { /* the process or thread ended */ }
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
  res.end(String(ns / 1e9));
};
await srv.listen();
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', ...(process.env.BENCH_JSFLAGS ? [`--js-flags=${process.env.BENCH_JSFLAGS}`] : [])],
});
const best = {}; // build -> key -> gmac/s
const ab = {}; // ab_<type>_<shape> -> {simd128, relaxed}
const gemm = {}; // gemm_<type>_<rows>x<cols>x<ntok> -> build (and "<build> CPU") -> GMAC/s
const prof = {}; // build -> "part threads" -> ms per token (decode profile, bench/profile.c; best round)
const vprof = {}; // build -> "part threads" -> ms per ViT layer (vision profile, bench/profile.c; best round)
let version = '';
try {
  version = ctx.browser()?.version() || '';
  for (let round = 0; round < rounds; round++)
    for (const kernel of kernels) for (const [name, file] of BUILDS) {
      const page = await ctx.newPage();
      await page.goto(`http://127.0.0.1:${srv.port}/`);
      const lines = await page.evaluate(async ({ url, minS, kernel }) => {
        const lines = [];
        await new Promise((resolve, reject) => {
          globalThis.owlBenchCpuUrl = '/__cpu';
          globalThis.Module = {
            arguments: [minS, kernel.replaceAll('+', ',')],
            print: (l) => lines.push(l),
            printErr: (l) => lines.push(`# ${l}`),
            onExit: () => resolve(),
            onAbort: (e) => reject(new Error(`abort: ${e}`)),
          };
          const s = document.createElement('script');
          s.src = url;
          s.onerror = () => reject(new Error(`cannot load ${url}`));
          document.head.append(s);
        });
        return lines;
      }, { url: `/build/wasm/${file}`, minS, kernel });
      await page.close();
      for (const l of lines) {
        if (process.env.BENCH_RAW) process.stderr.write(`${name}: ${l}\n`);
        const m = l.split(' ');
        if (m[0] === 'PROFILE' || m[0] === 'VPROFILE') {
          const o = ((m[0] === 'PROFILE' ? prof : vprof)[name] ??= {}), k = `${m[1]} ${m[2]}`;
          o[k] = Math.min(o[k] ?? Infinity, Number(m[3]));
        }
        if (m[0] !== 'RESULT') continue;
        const key = `${m[1]} ${m[2]}`, v = Number(m[1] === 'memread' ? m[4] : m[3]);
        if (m[1].startsWith('gemm_')) { // owl_matmul at the prefill / vision shapes
          const o = (gemm[m[1]] ??= {});
          o[name] = Math.max(o[name] ?? 0, Number(m[3]));
          o[`${name} CPU`] = Math.max(o[`${name} CPU`] ?? 0, Number(m[5]));
          continue;
        }
        if (m[1].startsWith('ab_')) { // SIMD128 and relaxed tiles, alternately in one process
          const o = (ab[m[1]] ??= { simd128: 0, relaxed: 0 });
          o.simd128 = Math.max(o.simd128, Number(m[3]));
          o.relaxed = Math.max(o.relaxed, Number(m[4]));
          continue;
        }
        best[name] ??= {};
        best[name][key] = Math.max(best[name][key] ?? 0, v);
      }
      process.stderr.write(`round ${round + 1}: ${kernel} ${name} done\n`);
    }
} finally {
  await ctx.close();
  srv.close();
  rmSync(userDir, { recursive: true, force: true });
  for (const l of baseLinks) rmSync(l, { force: true });
}

const f = (v) => (v > 0 ? v.toFixed(2) : '-');
console.log(`Machine: ${cpus().length} cores, ${cpus()[0]?.model || '?'}, Chromium ${version}, load average ` +
  `${loadavg().map((x) => x.toFixed(2)).join(' ')}, best of ${rounds} round(s), ${minS} s per measurement`);
console.log();
console.log('| kernel | shape | threads | scalar GMAC/s | SIMD128 GMAC/s | relaxed GMAC/s | relaxed/SIMD128 | SIMD128/scalar |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const key of Object.keys(best.simd128 ?? best.relaxed ?? {})) {
  const [id, threads] = key.split(' ');
  if (id === 'memread' || id === 'dot_i16x8' || id === 'relaxed_dot') continue;
  const type = id.replace(/_gemv$|_gemm64$/, '');
  const shape = id.endsWith('_gemm64') ? '4096x4096, 64 tokens (GEMM)' : '4096x4096, 1 token (GEMV)';
  const sc = best.scalar?.[key] ?? 0, s = best.simd128?.[key] ?? 0, r = best.relaxed?.[key] ?? 0;
  console.log(`| ${type} | ${shape} | ${threads} | ${f(sc)} | ${f(s)} | ${f(r)} | ${r && s ? (r / s).toFixed(2) + 'x' : '-'} | ` +
    `${sc && s ? (s / sc).toFixed(1) + 'x' : '-'} |`);
}
const base = best.simd128 ?? best.relaxed ?? {};
const mem = base['memread 1'];
if (mem) console.log(`\nCeilings, 1 thread: memory read ${f(mem)} GB/s; i32x4.dot_i16x8 loop ${f(base['dot_i16x8 1'])} GMAC/s; ` +
  `relaxed-dot loop ${f(best.relaxed?.['relaxed_dot 1'] ?? 0)} GMAC/s (8 accumulators, one operand from L1).`);
if (Object.keys(ab).length) {
  console.log('\nSIMD128 vs relaxed tiles in one process (relaxed build, 1 thread, alternating trials, best of each):\n');
  console.log('| kernel | shape | SIMD128 tile GMAC/s | relaxed tile GMAC/s | relaxed/SIMD128 |');
  console.log('|---|---|---:|---:|---:|');
  for (const [id, o] of Object.entries(ab)) {
    const shape = id.endsWith('_gemm64') ? '4096x4096, 64 tokens (GEMM)' : '4096x4096, 1 token (GEMV)';
    console.log(`| ${id.replace(/^ab_|_gemv$|_gemm64$/g, '')} | ${shape} | ${f(o.simd128)} | ${f(o.relaxed)} | ${(o.relaxed / o.simd128).toFixed(2)}x |`);
  }
}
if (Object.keys(gemm).length) {
  const cols = BUILDS.flatMap(([name]) => [name, `${name} CPU`]);
  console.log('\nowl_matmul, 1 thread, activation quantizing included (gemm), GMAC/s (wall clock, best trial; ' +
    '"CPU": per CPU-second of the renderer processes, all trials):\n');
  console.log(`| type | rows x cols x tokens | ${cols.join(' | ')} |`);
  console.log(`|---|---|${cols.map(() => '---:').join('|')}|`);
  for (const [id, o] of Object.entries(gemm)) {
    const [, a, b, shape] = id.split('_');
    console.log(`| ${a}_${b} | ${shape} | ${cols.map((c) => f(o[c] ?? 0)).join(' | ')} |`);
  }
}
if (Object.keys(vprof).length) {
  const parts = [...new Set(Object.values(vprof).flatMap((o) => Object.keys(o)))];
  const cols = Object.keys(vprof);
  console.log('\nVision layer profile, one CLIP ViT-L/14 layer at 448 px, q8_0 (bench/profile.c), ms per layer, best round:\n');
  console.log(`| part | threads | ${cols.join(' | ')} |`);
  console.log(`|---|---:|${cols.map(() => '---:').join('|')}|`);
  for (const k of parts) {
    const [part, t] = k.split(' ');
    console.log(`| ${part} | ${t} | ${cols.map((c) => (vprof[c][k] ?? NaN).toFixed(1)).join(' | ')} |`);
  }
}
if (Object.keys(prof).length) {
  const parts = [...new Set(Object.values(prof).flatMap((o) => Object.keys(o)))];
  const cols = Object.keys(prof);
  console.log('\nDecode profile, one q4_K token of the 7B slice (bench/profile.c), ms per token, best round:\n');
  console.log(`| part | threads | ${cols.join(' | ')} |`);
  console.log(`|---|---:|${cols.map(() => '---:').join('|')}|`);
  for (const k of parts) {
    const [part, t] = k.split(' ');
    console.log(`| ${part} | ${t} | ${cols.map((c) => (prof[c][k] ?? NaN).toFixed(2)).join(' | ')} |`);
  }
}
