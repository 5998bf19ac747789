// loads.mjs - the cached full-size model loaded N times in one browser session (the page's default
// store: OPFS where it can run, else IndexedDB), each load's stage timeline from onProgress, and the
// browser's RSS right after unload() and 10 s later: does a later load stall, is memory given back?
//
//   node bench/fullscale/loads.mjs [chromium|firefox] [N]
//
// Reads /var/tmp/owlet-fullscale/chunks (run.mjs makes it); fills the store first.
import path from 'node:path';
import { startServer } from '../../tests/browser/web-server.mjs';
import { launch } from '../../tests/browser/engines.mjs';
import { BrowserMemory } from './procs.mjs';
const dir = process.env.OWLET_FULLSCALE_DIR || '/var/tmp/owlet-fullscale';
const engine = process.argv[2] || 'firefox', n = Number(process.argv[3] || 3);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const server = await startServer({ coi: true, mounts: [['/models/full/', path.join(dir, 'chunks')]] });
const b = await launch(engine);
const page = b.page;
const mem = new BrowserMemory();
const gb = () => (mem.snapshot().totalRssBytes / 2 ** 30).toFixed(2);
const log = (s) => console.log(`${new Date().toISOString().slice(11, 19)} ${s}`);
async function run(src, arg) {
  await page.evaluate(([s, a]) => { globalThis.__r = null; globalThis.__log = []; const f = new Function(`return (${s})`)();
    f(a).then((v) => { globalThis.__r = { ok: true, v }; }, (e) => { globalThis.__r = { ok: false, e: String(e && e.message || e) }; }); }, [src.toString(), arg]);
  let seen = 0;
  for (;;) {
    const { r, l } = await page.evaluate(() => ({ r: globalThis.__r, l: globalThis.__log }));
    for (; seen < l.length; seen++) log('  ' + l[seen]);
    if (r) { if (!r.ok) throw new Error(r.e); return r.v; }
    await sleep(1000);
  }
}
try {
  await page.goto(server.url + 'owlet/owlet.mjs');
  const url = server.url + 'models/full/manifest.json';
  log('fill: ' + JSON.stringify(await run(async (u) => {
    const m = await import('/owlet/store.mjs');
    const man = await m.loadManifest(u);
    const r = await m.ensureChunks(man, { backend: await m.browserBackend() });
    return r.fetched;
  }, url)));
  for (let i = 1; i <= n; i++) {
    const v = await run(async ([u, wb]) => {
      const { Owlet } = await import('/owlet/owlet.mjs');
      const t0 = performance.now();
      let last = '';
      const owl = await Owlet.load(u, { threads: 2, wasmBase: wb, onProgress: (p) => {
        const k = `${p.phase} stage ${p.stage}`;
        if (k !== last) { last = k; globalThis.__log.push(`${((performance.now() - t0) / 1e3).toFixed(1)} s ${k} ${(p.bytesDone / 1e9).toFixed(2)} GB`); }
      } });
      const s = (performance.now() - t0) / 1e3;
      await owl.unload();
      return s;
    }, [url, server.url + 'owlet/wasm/']);
    const a0 = gb(); await sleep(10000); const a1 = gb();
    log(`load ${i}: ${v.toFixed(1)} s; browser RSS after unload ${a0} GiB, 10 s later ${a1}`);
  }
} finally { await b.close().catch(() => {}); await server.close(); }
