// early_ab.mjs - after a page reload with the full-size model cached: how long a user waits
// for the first answer text when the picture is opened at once (read by the model's first
// stage while the others load: Owlet.load's `early`, which the page uses) against opened
// once the model is ready. One Chromium session, the real page (web/), alternating.
//
//   node bench/fullscale/early_ab.mjs [--dir /var/tmp/owlet-fullscale] [--reps 2] [--threads 2]
//
// DIR holds chunks/ (manifest.json + 32 MiB chunks, from run.mjs) and photo.png. The first
// Load downloads every chunk into IndexedDB. Each rep then, for "after" and "at once":
// reload the page (the cached model loads by itself), open photo.png with the file input
// (after: once body[data-model=ready]; at once: as soon as the page script is up), wait for
// the model and "picture read", type the question, press Send; times from the reload to
// ready, to "picture read" and to the first answer text (wall clock, the test's own clock).
import path from 'node:path';
import { startServer } from '../../tests/browser/web-server.mjs';
import { launch } from '../../tests/browser/engines.mjs';
import { loadAvg } from './procs.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const dir = opt('--dir', process.env.OWLET_FULLSCALE_DIR || '/var/tmp/owlet-fullscale');
const reps = Number(opt('--reps', 2)), threads = Number(opt('--threads', 2));
const QUESTION = 'What is the astronaut holding?';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(page, fn, ms) {
  const t0 = Date.now();
  while (!(await page.evaluate(fn))) {
    if (Date.now() - t0 > ms) throw new Error(`waited ${ms} ms for ${fn}`);
    await sleep(100);
  }
}

const server = await startServer({ coi: true, mounts: [['/models/full/', path.join(dir, 'chunks')]] });
const b = await launch('chromium');
const page = b.page;
const photo = path.join(dir, 'photo.png');
const log = (s) => console.log(`${new Date().toISOString().slice(11, 19)} ${s}`);
try {
  await page.goto(server.url + '?model=models/full/manifest.json');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120000 });
  await page.evaluate(() => { document.getElementById('settings').open = true; });
  await page.fill('#set-threads', String(threads));
  await page.dispatchEvent('#set-threads', 'change');
  let t = Date.now();
  await page.click('#load');
  await until(page, () => document.body.dataset.model === 'ready', 3600000);
  log(`downloaded and loaded in ${((Date.now() - t) / 1e3).toFixed(1)} s`);
  const rows = [];
  for (let r = 0; r < reps; r++) {
    for (const mode of ['after', 'at once']) {
      t = Date.now();
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]', { timeout: 120000 });
      const pageUpS = (Date.now() - t) / 1e3;
      if (mode === 'after') await until(page, () => document.body.dataset.model === 'ready', 600000);
      await page.setInputFiles('#file-input', photo);
      await until(page, () => document.body.dataset.model === 'ready', 600000);
      const readyS = (Date.now() - t) / 1e3;
      await until(page, () => document.getElementById('warm-state').textContent.includes('picture read'), 600000);
      const readS = (Date.now() - t) / 1e3;
      await page.fill('#question', QUESTION);
      const sendAt = (Date.now() - t) / 1e3;
      await page.evaluate(() => new Promise((resolve) => {
        const ol = document.getElementById('messages');
        const mo = new MutationObserver(() => {
          const a = ol.querySelector('.msg.assistant:last-child .text');
          if (a && a.textContent.length) { mo.disconnect(); resolve(); }
        });
        mo.observe(ol, { subtree: true, childList: true, characterData: true });
        document.getElementById('send').click();
      }));
      const firstTextS = (Date.now() - t) / 1e3;
      await page.click('#stop').catch(() => {});
      await until(page, () => !globalThis.owletApp.asking, 600000);
      const s = await page.evaluate(() => globalThis.owletApp.owl.stats());
      const row = { rep: r + 1, mode, pageUpS, readyS, readS, sendAt, firstTextS, build: s.build, threads: s.threads,
        encodeS: s.imageEncodeMs / 1e3, prefillS: s.prefillMs / 1e3, loadReads: s.loadReads, loadAvg: loadAvg() };
      rows.push(row);
      log(`${mode.padEnd(7)} rep ${r + 1}: ready ${readyS.toFixed(1)} s, picture read ${readS.toFixed(1)} s, ` +
        `first answer text ${firstTextS.toFixed(1)} s after the reload (encode ${row.encodeS.toFixed(1)} s, prefill ` +
        `${row.prefillS.toFixed(1)} s, ${s.build}, ${s.threads} threads, chunk reads ${JSON.stringify(s.loadReads)}, load ${row.loadAvg})`);
    }
  }
  console.log(JSON.stringify(rows));
} finally {
  await b.close().catch(() => {});
  await server.close();
}
