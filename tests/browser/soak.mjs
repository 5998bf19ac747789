// soak.mjs - 200 consecutive questions with an image in one loaded model in
// headless Chromium (oracle A, single-thread build, greedy): every answer must
// equal the first, and the renderer's memory must stay flat. Not part of make
// test (minutes); prints RSS of the renderer processes (our browser's only,
// found through the process tree) at the first and last question.
//
//   node tests/browser/soak.mjs [N=200]
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestServer } from './server.mjs';
import { makeFixtures, root } from './fixtures.mjs';

const N = Number(process.argv[2] || 200);

/** Renderer processes under this node process: [{pid, rssKiB}]. */
function renderers() {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const mine = [];
  const walk = (p) => { for (const c of kids.get(p) || []) { mine.push(c); walk(c); } };
  walk(process.pid);
  const out = [];
  for (const pid of mine) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer')) continue;
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      out.push({ pid, rssKiB: rss ? Number(rss[1]) : 0 });
    } catch { /* gone */ }
  }
  return out;
}
const mib = (k) => (k / 1024).toFixed(1);

async function main() {
  makeFixtures();
  const srv = new TestServer(root);
  await srv.listen();
  const userDir = mkdtempSync(path.join(tmpdir(), 'owlet-soak-'));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-blink-features=ForceEagerMeasureMemory', '--js-flags=--expose-gc'],
  });
  let failed = false;
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', (e) => console.log('pageerror', e.message));
    // 127.0.0.1 is cross-origin isolated: performance.measureUserAgentSpecificMemory
    // (after a GC, page + engine worker + wasm memory) is available there
    await page.goto(`http://127.0.0.1:${srv.port}/`);
    await page.evaluate(async () => {
      const { Owlet } = await import('/wasm_glue/owlet.mjs');
      window.owl = await Owlet.load('/build/test-out/api/one/manifest.json', { wasmBase: '/build/wasm/', kvType: 'f32', threads: 1 });
      window.chat = window.owl.chat();
      // the image bytes are fetched once: a fetch per question would add the
      // browser's own per-request records (resource timing, devtools network log)
      window.png = new Uint8Array(await (await fetch('/tests/fixtures/oracle_a/img1.png')).arrayBuffer());
    });
    const ask = () => page.evaluate(async () => {
      await window.chat.reset();
      await window.chat.addImage(window.png);
      let t = '';
      for await (const p of window.chat.ask('Describe the image.', { maxTokens: 16 })) t += p;
      return { t, heap: performance.memory ? performance.memory.usedJSHeapSize : 0 };
    });
    // a full GC in the page and every worker (engine worker included) before RSS is read
    let workers = 0;
    const gcAll = async () => {
      workers = page.workers().length;
      for (const w of page.workers()) await w.evaluate(() => globalThis.gc && globalThis.gc()).catch(() => {});
      await page.evaluate(() => globalThis.gc && globalThis.gc());
      await new Promise((r) => setTimeout(r, 100));
    };
    const measured = () => page.evaluate(async () => {
      if (!performance.measureUserAgentSpecificMemory) return null;
      const m = await performance.measureUserAgentSpecificMemory();
      return m.bytes;
    });
    const t0 = Date.now();
    const first = await ask();
    const uam0 = await measured();
    await gcAll();
    const rss0 = renderers();
    let rss50 = 0;
    let last = first, diffs = 0, rssMax = rss0.reduce((a, r) => a + r.rssKiB, 0);
    for (let i = 1; i < N; i++) {
      last = await ask();
      if (last.t !== first.t) diffs++;
      if ((i + 1) % 50 === 0) await gcAll();
      const sum = renderers().reduce((a, r) => a + r.rssKiB, 0);
      rssMax = Math.max(rssMax, sum);
      if (i + 1 === 50) rss50 = sum;
      if ((i + 1) % 50 === 0) {
        const u = await measured();
        console.log(`question ${i + 1}: renderer RSS ${mib(sum)} MiB, page JS heap ${(last.heap / 1048576).toFixed(1)} MiB` +
          (u !== null ? `, measured memory (page + workers + wasm, after GC) ${(u / 1048576).toFixed(1)} MiB` : ''));
      }
    }
    await gcAll();
    const rss1 = renderers();
    const uam1 = await measured();
    if (uam0 !== null) console.log(`measured memory: first ${(uam0 / 1048576).toFixed(1)} MiB, last ${(uam1 / 1048576).toFixed(1)} MiB`);
    const s0 = rss0.reduce((a, r) => a + r.rssKiB, 0), s1 = rss1.reduce((a, r) => a + r.rssKiB, 0);
    const stats = await page.evaluate(() => window.owl.stats());
    await page.evaluate(() => window.owl.unload());
    console.log(`${N} questions in ${((Date.now() - t0) / 1000).toFixed(1)} s; answers differing from the first: ${diffs}`);
    console.log(`renderer RSS (sum of ${rss1.length} process(es)): first ${mib(s0)} MiB, last ${mib(s1)} MiB, max ${mib(rssMax)} MiB; ` +
      `page JS heap first ${(first.heap / 1048576).toFixed(1)} MiB, last ${(last.heap / 1048576).toFixed(1)} MiB`);
    if (rss50) console.log(`after warm-up: ${mib(rss50)} MiB at question 50 -> ${mib(s1)} MiB at ${N}: ` +
      `${((s1 - rss50) / (N - 50)).toFixed(1)} KiB per question`);
    console.log(`workers garbage-collected: ${workers}`);
    console.log(`engine stats: images ${stats.images}, prompt tokens ${stats.promptTokens}, completion tokens ${stats.completionTokens}`);
    failed = diffs > 0 || s1 > s0 * 1.2 + 20 * 1024;
  } finally {
    await ctx.close();
    srv.close();
    rmSync(userDir, { recursive: true, force: true });
  }
  console.log(failed ? 'soak: FAILED' : 'soak: ok');
  process.exit(failed ? 1 : 0);
}
main().catch((e) => { console.error(e); process.exit(1); });
