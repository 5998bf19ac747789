// store_ab.mjs - the cached full-size model loaded from IndexedDB against the Origin Private
// File System, alternately, in one browser session: Owlet.load's wall clock until every stage
// is ready (no picture, no question), and how the engine read the chunks (stats().loadReads).
//
//   node bench/fullscale/store_ab.mjs [--engine chromium|firefox] [--dir /var/tmp/owlet-fullscale]
//                                     [--reps 2] [--threads 2]
//
// DIR/chunks holds manifest.json and the 32 MiB chunks (run.mjs makes them). Both stores are
// filled first (each download timed), on the server of the browser tests (COOP/COEP), from a
// page that only imports the API.
import path from 'node:path';
import { startServer } from '../../tests/browser/web-server.mjs';
import { launch } from '../../tests/browser/engines.mjs';
import { BrowserMemory, loadAvg } from './procs.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const engine = opt('--engine', 'chromium');
const dir = opt('--dir', process.env.OWLET_FULLSCALE_DIR || '/var/tmp/owlet-fullscale');
const reps = Number(opt('--reps', 2)), threads = Number(opt('--threads', 2));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.log(`${new Date().toISOString().slice(11, 19)} ${s}`);

const server = await startServer({ coi: true, mounts: [['/models/full/', path.join(dir, 'chunks')]] });
const b = await launch(engine);
const page = b.page;
const mem = new BrowserMemory();

/** Run fn(arg) in the page in the background and poll for its result (no protocol timeout). */
async function inPage(fn, arg) {
  await page.evaluate(([src, a]) => {
    globalThis.__r = null;
    // eslint-disable-next-line no-new-func
    const f = new Function(`return (${src})`)();
    f(a).then((v) => { globalThis.__r = { ok: true, v }; }, (e) => { globalThis.__r = { ok: false, e: String(e && e.message || e) }; });
  }, [fn.toString(), arg]);
  for (;;) {
    const r = await page.evaluate(() => globalThis.__r);
    if (r) { if (!r.ok) throw new Error(r.e); return r.v; }
    await sleep(500);
  }
}

try {
  await page.goto(server.url + 'owlet/owlet.mjs'); // a same-origin document; the API is imported below
  const url = server.url + 'models/full/manifest.json';
  for (const store of ['idb', 'opfs']) {
    const s = await inPage(async ([u, st]) => {
      const m = await import('/owlet/store.mjs');
      const man = await m.loadManifest(u);
      const backend = st === 'idb' ? new m.IdbBackend('owlet-ab-idb') : await m.OpfsBackend.open(new m.IdbBackend('owlet-ab-opfs'));
      if (!backend) throw new Error('no OPFS here');
      const t = performance.now();
      const r = await m.ensureChunks(man, { backend, concurrency: 4 });
      return { s: (performance.now() - t) / 1e3, fetched: r.fetched };
    }, [url, store]);
    log(`${engine}: ${store} filled in ${s.s.toFixed(1)} s (${s.fetched} chunks fetched)`);
  }
  const rows = [];
  for (let r = 1; r <= reps; r++) {
    for (const store of ['idb', 'opfs']) {
      const x = await inPage(async ([u, st, t, wasmBase]) => {
        const m = await import('/owlet/store.mjs');
        const { Owlet } = await import('/owlet/owlet.mjs');
        // the IndexedDB store, or OPFS (its model records in another IndexedDB database, so the two
        // stores share nothing: an OPFS put removes the chunk from its own IndexedDB database)
        const backend = st === 'idb' ? new m.IdbBackend('owlet-ab-idb') : await m.OpfsBackend.open(new m.IdbBackend('owlet-ab-opfs'));
        const t0 = performance.now();
        const owl = await Owlet.load(u, { backend, threads: t, wasmBase });
        const loadS = (performance.now() - t0) / 1e3;
        const s = await owl.stats();
        await owl.unload();
        return { loadS, reads: s.loadReads, build: s.build };
      }, [url, store, threads, server.url + 'owlet/wasm/']);
      // the browser's memory after unload(), then after the page is opened again (which frees
      // whatever unload left: the next load must not stack on it)
      const gb = () => +(mem.snapshot().totalRssBytes / 2 ** 30).toFixed(2);
      const after = [gb()];
      await sleep(10000);
      after.push(gb());
      await page.goto(server.url + 'owlet/owlet.mjs');
      await sleep(3000);
      after.push(gb());
      rows.push({ rep: r, store, ...x, rssGiB: after, loadAvg: loadAvg() });
      log(`${engine} rep ${r} ${store.padEnd(4)}: loaded in ${x.loadS.toFixed(1)} s, reads ${JSON.stringify(x.reads)}, ${x.build}, ` +
        `browser RSS after unload ${after[0]} GiB, 10 s later ${after[1]}, after a new page ${after[2]}; load ${loadAvg()}`);
    }
  }
  console.log(JSON.stringify(rows));
} finally {
  await b.close().catch(() => {});
  await server.close();
}
