// vision_ab.mjs - image encode time of two models side by side (issue 18 item 4: the vision tower
// in Q8_0 against q6_K), in ONE headless Chromium session and/or in Node, A/B alternating.
//
//   node bench/vision_ab.mjs MANIFEST_A MANIFEST_B [--threads 1,2] [--reps 3] [--where chromium,node]
//        [--chromium-build owlet-relaxed|auto]
//
// MANIFESTs are paths under the repository (the page is served from its root), e.g.
// build/bench/vq8/manifest.json (owlet-convert CKPT x.gguf --type q4_k_m [--vision-type q6_k], then
// --split x.gguf build/bench/vq8). Per place and thread count both models are loaded
// (e2e-page.mjs's owletImageAB; image cache off) in Chromium with the relaxed-SIMD build at every
// thread count (--chromium-build auto: Owlet.load's choice, SIMD128 at 1 thread) and in Node
// with Owlet.load's choice (SIMD128), each warmed up with one encode (a fresh engine grows its memory on the first), then
// `reps` rounds of A then B, the same 448 px pseudo-random picture (e2e-page.mjs's owletImage).
// The time is stats().imageEncodeMs (wall clock at the coordinator: preprocess + vision tower +
// abstractor). Prints one JSON line per (place, threads, model) with every rep and the median,
// and the load average before and after.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer } from '../tests/browser/server.mjs';
import { BROWSER_ARGS } from './e2e.mjs';
import { owletImageAB } from './e2e-page.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const load = () => loadavg().map((x) => +x.toFixed(2));

async function main() {
  const argv = process.argv.slice(2);
  const opt = { threads: '1,2', reps: '3', where: 'chromium,node', 'chromium-build': 'owlet-relaxed' };
  const manifests = [];
  while (argv.length) {
    const a = argv.shift();
    if (a.startsWith('--')) opt[a.slice(2)] = argv.shift(); else manifests.push(a);
  }
  if (manifests.length !== 2) {
    console.error('usage: vision_ab.mjs MANIFEST_A MANIFEST_B [--threads 1,2] [--reps 3] [--where chromium,node]');
    process.exit(2);
  }
  const threads = opt.threads.split(',').map(Number), reps = Number(opt.reps);
  const emit = (where, t, res, before, extra) => {
    for (const [i, x] of res.entries())
      console.log(JSON.stringify({ where, model: manifests[i], threads: x.threads, requested: t, build: x.build,
        medianMs: +median(x.ms).toFixed(1), ms: x.ms.map((v) => +v.toFixed(1)), warmMs: +x.warmMs.toFixed(1),
        loadBefore: before, loadAfter: load(), time: new Date().toISOString(), ...extra }));
  };
  for (const where of opt.where.split(',')) {
    if (where === 'node') {
      for (const t of threads) {
        const before = load();
        const res = await owletImageAB({ wasmBase: path.join(root, 'build/wasm'),
          manifests: manifests.map((m) => path.resolve(root, m)), threads: t, reps });
        emit('node', t, res, before, { node: process.version });
      }
    } else if (where === 'chromium') {
      const srv = new TestServer(root);
      await srv.listen();
      const userDir = mkdtempSync(path.join(tmpdir(), 'owlet-vision-ab-'));
      const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
        args: BROWSER_ARGS });
      try {
        const page = await ctx.newPage();
        await page.goto(`http://127.0.0.1:${srv.port}/`);
        const version = ctx.browser() ? ctx.browser().version() : '';
        for (const t of threads) {
          const before = load();
          const res = await page.evaluate(async (o) => (await import('/bench/e2e-page.mjs')).owletImageAB(o),
            { wasmBase: '/build/wasm/', build: opt['chromium-build'] === 'auto' ? undefined : opt['chromium-build'],
              manifests: manifests.map((m) => '/' + m), threads: t, reps });
          emit('chromium', t, res, before, { chromium: version });
        }
      } finally {
        await ctx.close();
        srv.close();
        rmSync(userDir, { recursive: true, force: true });
      }
    } else {
      throw new Error(`--where: unknown ${where} (chromium, node)`);
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main().catch((e) => { console.error(e); process.exit(1); });
