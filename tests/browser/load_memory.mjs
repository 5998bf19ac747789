// load_memory.mjs - peak memory of Chromium while a ~1 GB model loads from
// IndexedDB (acceptance figure of the browser runtime; a script, not part of
// `make test`: it writes ~2 GB under build/rtgaps/ and takes a minute).
//
//   node tests/browser/load_memory.mjs [--plain] [--threads N] [--kv f16|f32] [--ctx N] [--keep] [--series]
//
// 1. Makes (once) a random mPLUG-Owl2 checkpoint with a realistic layer shape
//    (d 1024, 8 heads, ffn 2816, 17 layers; tests/reference/make_checkpoint.py),
//    converts it to an f32 GGUF of ~1.03 GB and splits it into 32 MiB chunks
//    (build/rtgaps/big/chunks/); the checkpoint and the GGUF are deleted again.
// 2. Downloads the chunks into IndexedDB in a page (store.mjs ensureChunks).
// 3. Opens a fresh page (a new renderer process) and runs Owlet.load from the
//    cache while sampling VmRSS of every Chromium process every 100 ms from
//    /proc (the processes are found as descendants of the browser process,
//    which is the one started with our --user-data-dir). Dedicated workers,
//    and so the engine worker and its wasm memory, live in the renderer
//    process. At the end VmHWM (the kernel's own peak) is read too.
// 4. Prints the renderer's peak RSS over the model size; exit code 1 when it
//    is 1.2x or more.
//
// --plain: the non-isolated page (owlet-st) instead of the isolated one.
// --keep: keep the browser profile (build/rtgaps/profile-keep) and so the
// IndexedDB copy between runs. --series: print the renderer RSS samples.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { TestServer } from './server.mjs';
import { root } from './fixtures.mjs';
import { Sampler } from './procmem.mjs';

const args = process.argv.slice(2);
const plain = args.includes('--plain');
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const threads = Number(opt('--threads', 2));
const kvType = opt('--kv', 'f16'), nCtx = Number(opt('--ctx', 512));
const work = path.join(root, 'build/rtgaps/big');
const chunksDir = path.join(work, 'chunks');
const MIB = 1048576;

function makeModel() {
  if (existsSync(path.join(chunksDir, 'manifest.json'))) return;
  mkdirSync(work, { recursive: true });
  const ckpt = path.join(work, 'ckpt'), gguf = path.join(work, 'big.gguf');
  const run = (cmd, a) => execFileSync(cmd, a, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    console.log('making the ~1 GB model (checkpoint, convert, split)...');
    run('/usr/bin/python3', ['tests/reference/make_checkpoint.py', '--like', 'tests/fixtures/oracle_a', '--out', ckpt,
      'num_hidden_layers=17', 'hidden_size=1024', 'num_attention_heads=8', 'num_key_value_heads=8', 'intermediate_size=2816']);
    run(path.join(root, 'build/owlet-convert'), [ckpt, gguf, '--type', 'f32', '-q']);
    run(path.join(root, 'build/owlet-convert'), ['--split', gguf, chunksDir]);
  } finally {
    rmSync(ckpt, { recursive: true, force: true });
    rmSync(gguf, { force: true });
  }
}

// ---------------------------------------------------------------- main

async function main() {
  makeModel();
  const manifestUrl = '/build/rtgaps/big/chunks/manifest.json';
  const size = JSON.parse(readFileSync(path.join(chunksDir, 'manifest.json'), 'utf8')).file.size;
  const keep = args.includes('--keep'); // reuse build/rtgaps/profile-keep (the download is done once)
  const srv = new TestServer(root);
  await srv.listen(keep ? 18731 : 0); // IndexedDB is per origin: a kept profile needs the same port
  mkdirSync(path.join(root, 'build/rtgaps'), { recursive: true });
  const userDir = keep ? path.join(root, 'build/rtgaps/profile-keep') : mkdtempSync(path.join(root, 'build/rtgaps/profile-'));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const origin = `http://${plain ? 'localhost' : '127.0.0.1'}:${srv.port}`;
  const logs = [];
  const open = async () => {
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror ${e.message}`));
    await page.goto(`${origin}/`);
    return page;
  };
  let code = 1;
  try {
    let page = await open();
    const t0 = Date.now();
    const dl = await page.evaluate(async (url) => {
      const s = await import('/wasm_glue/store.mjs');
      const m = await s.loadManifest(url);
      return s.ensureChunks(m, { backend: new s.IdbBackend(), concurrency: 2 });
    }, manifestUrl);
    console.log(`download into IndexedDB: ${dl.fetched} chunks, ${(dl.bytesFetched / MIB).toFixed(0)} MiB in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
    await page.close();

    page = await open(); // a fresh renderer: "reload"
    await new Promise((r) => setTimeout(r, 500));
    const smp = new Sampler(userDir);
    smp.start();
    srv.reset();
    const r = await page.evaluate(async ([url, threads, kvType, nCtx]) => {
      const { Owlet } = await import('/wasm_glue/owlet.mjs');
      const t0 = performance.now();
      const owl = await Owlet.load(url, { threads, kvType, nCtx });
      globalThis.owlUnderTest = owl;
      return { loadMs: performance.now() - t0, build: owl.build, info: owl.info };
    }, [manifestUrl, threads, kvType, nCtx]);
    smp.sample();
    const loadPeak = smp.rendererPeak;
    Object.assign(r, await page.evaluate(async () => {
      const owl = globalThis.owlUnderTest;
      let uasm = null;
      if (globalThis.crossOriginIsolated && performance.measureUserAgentSpecificMemory) {
        try {
          const m = await Promise.race([performance.measureUserAgentSpecificMemory(),
            new Promise((res) => setTimeout(() => res(null), 30000))]);
          if (m) uasm = m.bytes;
        } catch { /* unavailable */ }
      }
      const chat = owl.chat();
      for await (const _ of chat.ask('Hi', { maxTokens: 2 }));
      const st = await owl.stats();
      await owl.unload();
      return { threads: st.threads, uasm, tokens: st.lastTokens };
    }));
    smp.stop();
    await page.close();

    const byType = new Map();
    for (const [pid, p] of smp.peak) {
      const cur = byType.get(p.type);
      if (!cur || p.rss > cur.rss) byType.set(p.type, { pid, ...p });
    }
    const rend = byType.get('renderer');
    const i = r.info, kvBytes = 2 * i.n_layers * nCtx * i.d_model * (kvType === 'f32' ? 4 : 2);
    console.log(`page: ${plain ? 'non-isolated' : 'isolated'}, build ${r.build}, ${r.threads} thread(s); ` +
      `load from IndexedDB ${(r.loadMs / 1e3).toFixed(1)} s, ${srv.chunkRequests()} chunk requests; ${r.tokens} tokens generated after`);
    console.log(`model: ${size} bytes (${(size / MIB).toFixed(0)} MiB), ${i.n_layers} layers x d ${i.d_model}; ` +
      `KV cache ${kvType} x ${nCtx} positions: ${(kvBytes / MIB).toFixed(0)} MiB (allocated by the load)`);
    for (const [type, p] of byType)
      console.log(`  ${type.padEnd(40)} pid ${p.pid}: RSS before ${(p.first / MIB).toFixed(0)} MiB, peak sampled ` +
        `${(p.rss / MIB).toFixed(0)} MiB, VmHWM ${(p.hwm / MIB).toFixed(0)} MiB`);
    if (r.uasm != null) console.log(`measureUserAgentSpecificMemory after load: ${(r.uasm / MIB).toFixed(0)} MiB`);
    const before = rend.first, ratio = loadPeak / size;
    console.log(`renderer during Owlet.load: before ${(before / MIB).toFixed(0)} MiB, peak ${(loadPeak / MIB).toFixed(0)} MiB ` +
      `= ${ratio.toFixed(3)} x the model size (limit 1.2); growth ${((loadPeak - before) / MIB).toFixed(0)} MiB ` +
      `= ${((loadPeak - before) / size).toFixed(3)} x`);
    code = ratio < 1.2 ? 0 : 1;
    if (args.includes('--series')) console.log(JSON.stringify(smp.series));
  } finally {
    if (code !== 0 && logs.length) console.log(logs.slice(-20).join('\n'));
    await ctx.close();
    srv.close();
    if (!keep) rmSync(userDir, { recursive: true, force: true });
  }
  process.exit(code);
}

main().catch((e) => { console.error(e); process.exit(2); });
