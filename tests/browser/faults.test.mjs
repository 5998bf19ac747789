// faults.test.mjs - download faults in every browser engine (tests/browser/engines.mjs:
// Debian's Chromium, Firefox ESR and WebKitGTK): 404, 500, a stalled server (timeout),
// a truncated body, a wrong Content-Length, a redirect to another origin, a corrupt
// chunk, the server killed mid-download, and the tab killed while chunks are being
// written. Each gives its OwletError code, IndexedDB holds only verified chunks
// afterwards, and a new load resumes fetching only the missing ones and answers
// with the oracle's greedy tokens.
//
//   node --test tests/browser/faults.test.mjs     (after make native wasm; OWLET_BROWSERS=webkit for one engine)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestServer } from './server.mjs';
import { makeFixtures, oracle as fx, root } from './fixtures.mjs';
import { engines, launch } from './engines.mjs';

const wasmBase = '/' + (process.env.OWLET_WASM || 'build/wasm').replace(/^\/+|\/+$/g, '') + '/';
const MANIFEST = '/build/test-out/api/one/manifest.json';
const IMAGE = '/tests/fixtures/oracle_a/img1.png';
const i32 = (f) => { const b = readFileSync(f); return Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4)); };
const WANT = i32(path.join(fx, 'img1/decode_tokens.i32'));

/** TestServer plus per-file faults: rules.get(name) = '404' | '500' | 'stall' |
 * 'truncate' (full Content-Length, half the body, then the connection drops) |
 * 'badlen' (Content-Length 10 and 10 bytes) | 'redirect' (302 to the other origin,
 * which answers with CORS headers so only the redirect check can refuse it). */
class FaultServer extends TestServer {
  constructor(r) { super(r); this.rules = new Map(); this.served = 0; }
  async handle(req, res) {
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const name = path.basename(p);
    const rule = this.rules.get(name);
    const cors = { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin', 'Cache-Control': 'no-store' };
    if (new URL(req.url, 'http://x').searchParams.has('moved')) {
      const body = readFileSync(path.join(this.root, p));
      res.writeHead(200, { ...cors, 'Content-Length': body.length });
      res.end(body);
      return;
    }
    if (!rule) {
      if (p.endsWith('.bin')) this.served++;
      return super.handle(req, res);
    }
    this.counts.set(p, (this.counts.get(p) || 0) + 1);
    if (rule === '404' || rule === '500') { res.writeHead(Number(rule), cors); res.end('injected'); return; }
    if (rule === 'stall') return; // never answers
    const body = readFileSync(path.join(this.root, p));
    if (rule === 'truncate') {
      res.writeHead(200, { ...cors, 'Content-Length': body.length });
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => req.socket.destroy(), 50);
      return;
    }
    if (rule === 'badlen') { res.writeHead(200, { ...cors, 'Content-Length': 10 }); res.end(body.subarray(0, 10)); return; }
    if (rule === 'redirect') {
      const host = String(req.headers.host).startsWith('127.0.0.1') ? 'localhost' : '127.0.0.1';
      res.writeHead(302, { ...cors, Location: `http://${host}:${this.port}${p}?moved=1` });
      res.end();
    }
  }
}

let srv;
before(async () => {
  makeFixtures();
  srv = new FaultServer(root);
  await srv.listen();
});
after(() => { if (srv) srv.close(); });

/** Page side: load (and optionally answer); errors come back as {code, message}. */
const loadIn = (page, o = {}) => page.evaluate(async (o) => {
  const { Owlet } = await import('/wasm_glue/owlet.mjs');
  try {
    const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, kvType: 'f32', retries: o.retries ?? 1, backoffMs: 5,
      concurrency: o.concurrency ?? 4, timeoutMs: o.timeoutMs });
    try {
      if (!o.n) return { ok: true, build: owl.build };
      const chat = owl.chat();
      await chat.addImage(o.image);
      const ids = [];
      await owl.mutex.run(async () => {
        await chat._activate();
        await owl.engine.ask('Describe the image.', { temperature: 0, maxTokens: o.n });
        for (;;) { const r = await owl.engine.step(); ids.push(r.token); if (r.done) break; }
        await owl.engine.end();
      });
      return { ok: true, ids, build: owl.build };
    } finally { await owl.unload(); }
  } catch (e) { return { ok: false, name: e.name, code: e.code, message: String(e.message) }; }
}, { manifest: MANIFEST, wasmBase, image: IMAGE, ...o });

/** Page side: every stored chunk's bytes hash to the manifest's sha256. */
const storedState = (page) => page.evaluate(async (mf) => {
  const s = await import('/wasm_glue/store.mjs');
  const m = await s.loadManifest(mf);
  const b = await s.browserBackend(); // the store Owlet.load uses: OPFS files where the page can write them, else IndexedDB
  let stored = 0, bad = 0;
  const kinds = [];
  for (const c of m.chunks) {
    const r = await b.get(`${m.id}/${c.index}`);
    if (!r) continue;
    stored++;
    // the value is a Blob, or a Uint8Array where the browser refuses Blobs: hash what is really there
    const bytes = r.bytes instanceof Blob ? new Uint8Array(await r.bytes.arrayBuffer()) : r.bytes;
    kinds.push(r.handle ? 'OPFS file' : r.bytes instanceof Blob ? 'Blob' : r.bytes.constructor.name);
    if (r.sha256 !== c.sha256 || bytes.byteLength !== c.size || (await s.sha256Hex(bytes)) !== c.sha256) bad++;
  }
  return { stored, bad, chunks: m.chunks.length, listed: (await s.cache.list()).length, kinds: [...new Set(kinds)] };
}, MANIFEST);

const clear = (page) => page.evaluate(async () => { const { cache } = await import('/wasm_glue/store.mjs'); await cache.delete('mplug-owl2'); });

for (const engine of engines()) {
  describe(engine, () => {
    let b, page;
    before(async () => { b = await launch(engine); page = b.page; });
    after(async () => { if (b) await b.close(); });
    const open = () => page.goto(`http://localhost:${srv.port}/`);

    for (const [rule, code, re] of [
      ['404', 'http', /oa\.0002\.bin: HTTP 404/],
      ['500', 'http', /HTTP 500/],
      ['stall', 'network', /no complete answer within 1500 ms/],
      ['truncate', 'network', /oa\.0002\.bin/],
      ['badlen', 'truncated', /got 10 bytes, want 1048576/],
      ['redirect', 'bad_origin', /redirected to another origin \(http:\/\/127\.0\.0\.1:/],
    ]) {
      test(`${engine}: chunk fault '${rule}' gives ${code}; only verified chunks are kept; the healed load fetches the rest and answers`,
        { timeout: 90000 }, async () => {
          await open();
          await clear(page);
          srv.reset();
          srv.rules = new Map([['oa.0002.bin', rule]]);
          const r = await loadIn(page, { timeoutMs: 1500, concurrency: 1 });
          assert.equal(r.ok, false, 'the load fails');
          assert.equal(r.code, code, r.message);
          assert.match(r.message, re);
          const st = await storedState(page);
          assert.equal(st.bad, 0, 'no unverified chunk stored');
          assert.ok(st.stored <= 3, `stored ${st.stored}`);
          assert.equal(st.listed, 0, 'an incomplete model is not listed');
          srv.rules = new Map();
          srv.served = 0;
          const r2 = await loadIn(page, { n: 4 });
          assert.ok(r2.ok, r2.message);
          assert.equal(srv.served, 4 - st.stored, 'only the missing chunks fetched');
          assert.deepEqual(r2.ids, WANT.slice(0, 4));
        });
    }

    test(`${engine}: a corrupt chunk is refused (bad_chunk) and nothing of it is stored; the next load fetches it again and answers`,
      { timeout: 90000 }, async (t) => {
        await open();
        await clear(page);
        srv.reset();
        srv.rules = new Map();
        srv.faults.corruptOnce.add('oa.0002.bin');
        const r = await loadIn(page, { retries: 0, concurrency: 1 });
        assert.equal(r.ok, false, 'the load fails');
        assert.equal(r.code, 'bad_chunk', r.message);
        assert.match(r.message, /chunk 2 \(.*oa\.0002\.bin\): sha256 [0-9a-f]{64}, want [0-9a-f]{64}/);
        const st = await storedState(page);
        assert.equal(st.bad, 0, 'no unverified chunk stored');
        assert.equal(st.stored, 2, 'chunks 0 and 1 kept, the corrupt chunk 2 not');
        t.diagnostic(`stored as ${st.kinds.join(', ')}`);
        srv.served = 0;
        const r2 = await loadIn(page, { n: 4 });
        assert.ok(r2.ok, r2.message);
        assert.equal(srv.served, 2, 'only chunks 2 and 3 fetched');
        assert.deepEqual(r2.ids, WANT.slice(0, 4));
      });

    test(`${engine}: the server killed mid-download, restarted: only the missing chunks are fetched, and it answers`,
      { timeout: 90000 }, async () => {
        await open();
        await clear(page);
        srv.reset();
        srv.rules = new Map();
        srv.faults.killAfter = 2;
        const r1 = await loadIn(page, { retries: 1, concurrency: 1 });
        assert.equal(r1.ok, false, 'the load fails while the server is down');
        assert.match(r1.code, /^(network|http)$/, r1.message);
        await srv.restart();
        await open();
        const st = await storedState(page);
        assert.equal(st.bad, 0, 'no unverified chunk stored');
        assert.equal(st.stored, 2, 'the two chunks served before the kill are kept');
        srv.served = 0;
        const r2 = await loadIn(page, { n: WANT.length });
        assert.ok(r2.ok, r2.message);
        assert.equal(srv.served, 2, 'only the two missing chunks fetched');
        assert.deepEqual(r2.ids, WANT);
      });

    test(`${engine}: the tab killed while chunks are written: the cache holds only whole verified chunks; a new load resumes`,
      { timeout: 90000 }, async (t) => {
        await open();
        await clear(page);
        srv.reset();
        srv.rules = new Map();
        srv.faults.delayMs = 400;
        srv.served = 0;
        // start a load and leave it running (the page returns at once)
        await page.evaluate((o) => {
          import('/wasm_glue/owlet.mjs').then(({ Owlet }) => Owlet.load(o.manifest, { wasmBase: o.wasmBase, concurrency: 1 }))
            .catch(() => {});
        }, { manifest: MANIFEST, wasmBase });
        const t0 = Date.now();
        while (srv.served < 2 && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 150)); // mid-way through storing / fetching the next
        t.diagnostic(await page.crash());
        page = b.page;
        srv.faults.delayMs = 0;
        await open();
        const st = await storedState(page);
        assert.equal(st.bad, 0, 'no partial or unverified chunk');
        assert.ok(st.stored >= 1 && st.stored < 4, `stored ${st.stored} of 4 before the kill`);
        t.diagnostic(`${st.stored} of 4 chunks stored before the kill`);
        srv.served = 0;
        const r = await loadIn(page, { n: WANT.length });
        assert.ok(r.ok, r.message);
        assert.equal(srv.served, 4 - st.stored, 'only the missing chunks fetched');
        assert.deepEqual(r.ids, WANT);
        await clear(page);
      });

    test(`${engine}: image URLs: another origin, or a redirect to one, gives bad_origin; allowedOrigins admits it; the chat then answers`,
      { timeout: 90000 }, async () => {
        await open();
        srv.reset();
        srv.rules = new Map([['img1.png', 'redirect']]);
        try {
          const r = await page.evaluate(async (o) => {
            const { Owlet } = await import('/wasm_glue/owlet.mjs');
            const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, kvType: 'f32' });
            const res = {};
            const attempt = async (key, chat, url) => {
              try { await chat.addImage(url); res[key] = 'ok'; } catch (e) { res[key] = `${e.code}: ${e.message}`; }
            };
            try {
              const chat = owl.chat();
              await attempt('other', chat, `http://127.0.0.1:${o.port}/tests/fixtures/images/grey1.png`);
              await attempt('redirect', chat, o.image); // same origin, 302 to 127.0.0.1
              const pieces = [];
              await chat.addImage(new Uint8Array(await (await fetch('/tests/fixtures/oracle_a/img1.png')).arrayBuffer()));
              for await (const p of chat.ask('Describe the image.', { maxTokens: 4 })) pieces.push(p);
              res.answer = pieces.join('');
              res.turns = chat.turns.length;
            } finally { await owl.unload(); }
            const owl2 = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, kvType: 'f32', allowedOrigins: [`http://127.0.0.1:${o.port}`] });
            try { await attempt('allowed', owl2.chat(), o.image); } finally { await owl2.unload(); }
            return res;
          }, { manifest: MANIFEST, wasmBase, image: IMAGE, port: srv.port });
          assert.match(r.other, /^bad_origin: image URL http:\/\/127\.0\.0\.1:\d+\/.* is not on this page's origin/);
          assert.match(r.redirect, /^bad_origin: GET .*img1\.png was redirected to another origin \(http:\/\/127\.0\.0\.1:\d+\)/);
          assert.equal(r.allowed, 'ok');
          assert.equal(r.turns, 2);
          assert.ok(r.answer.length > 0);
          await clear(page);
        } finally { srv.rules = new Map(); }
      });
  });
}
