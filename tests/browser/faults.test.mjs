// faults.test.mjs - network faults in Debian's headless Chromium (playwright-core):
// 404, 500, a stalled server (timeout), a truncated body, a wrong
// Content-Length, a redirect to another origin, and the tab killed while chunks
// are being written. Each gives its OwletError code, IndexedDB holds only
// verified chunks afterwards, and a new load resumes fetching only the missing
// ones and answers with the oracle's greedy tokens.
//
//   node --test tests/browser/faults.test.mjs     (after make native wasm)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestServer } from './server.mjs';
import { makeFixtures, oracle as fx, root } from './fixtures.mjs';

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

let srv, ctx, userDir;
before(async () => {
  makeFixtures();
  srv = new FaultServer(root);
  await srv.listen();
  userDir = mkdtempSync(path.join(tmpdir(), 'owlet-faults-'));
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  if (ctx) await ctx.close();
  if (srv) srv.close();
  if (userDir) rmSync(userDir, { recursive: true, force: true });
});

const open = async () => {
  const page = await ctx.newPage();
  await page.goto(`http://localhost:${srv.port}/`);
  return page;
};

/** Page side: load (and optionally answer); errors come back as {code, message}. */
const loadIn = (page, o = {}) => page.evaluate(async (o) => {
  const { Owlet } = await import('/wasm_glue/owlet.mjs');
  try {
    const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, kvType: 'f32', retries: o.retries ?? 1, backoffMs: 5,
      concurrency: o.concurrency ?? 4, timeoutMs: o.timeoutMs });
    try {
      if (!o.n) return { ok: true };
      const chat = owl.chat();
      await chat.addImage(o.image);
      const ids = [];
      await owl.mutex.run(async () => {
        await chat._activate();
        await owl.engine.ask('Describe the image.', { temperature: 0, maxTokens: o.n });
        for (;;) { const r = await owl.engine.step(); ids.push(r.token); if (r.done) break; }
        await owl.engine.end();
      });
      return { ok: true, ids };
    } finally { await owl.unload(); }
  } catch (e) { return { ok: false, name: e.name, code: e.code, message: String(e.message) }; }
}, { manifest: MANIFEST, wasmBase, image: IMAGE, ...o });

/** Page side: every stored chunk's bytes hash to the manifest's sha256. */
const storedState = (page) => page.evaluate(async (mf) => {
  const s = await import('/wasm_glue/store.mjs');
  const m = await s.loadManifest(mf);
  const b = new s.IdbBackend();
  let stored = 0, bad = 0;
  for (const c of m.chunks) {
    const r = await b.get(`${m.id}/${c.index}`);
    if (!r) continue;
    stored++;
    // the value is a Blob (or a Uint8Array in older stores): hash what is really there
    const bytes = r.bytes instanceof Blob ? new Uint8Array(await r.bytes.arrayBuffer()) : r.bytes;
    if (r.sha256 !== c.sha256 || bytes.byteLength !== c.size || (await s.sha256Hex(bytes)) !== c.sha256) bad++;
  }
  return { stored, bad, chunks: m.chunks.length, listed: (await s.cache.list()).length };
}, MANIFEST);

const clear = (page) => page.evaluate(async () => { const { cache } = await import('/wasm_glue/store.mjs'); await cache.delete('mplug-owl2'); });

for (const [rule, code, re] of [
  ['404', 'http', /oa\.0002\.bin: HTTP 404/],
  ['500', 'http', /HTTP 500/],
  ['stall', 'network', /no complete answer within 1500 ms/],
  ['truncate', 'network', /oa\.0002\.bin/],
  ['badlen', 'truncated', /got 10 bytes, want 1048576/],
  ['redirect', 'bad_origin', /redirected to another origin \(http:\/\/127\.0\.0\.1:/],
]) {
  test(`chunk fault '${rule}' gives ${code}; only verified chunks are kept; the healed load fetches the rest and answers`,
    { timeout: 60000 }, async () => {
      const page = await open();
      try {
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
      } finally { await page.close(); }
    });
}

test('the tab killed while chunks are written: the cache holds only whole verified chunks; a new tab resumes', { timeout: 90000 }, async (t) => {
  let page = await open();
  let crashed = false;
  page.on('crash', () => { crashed = true; });
  await clear(page);
  srv.reset();
  srv.rules = new Map();
  srv.faults.delayMs = 400;
  srv.served = 0;
  page.evaluate(async (o) => {
    const { Owlet } = await import('/wasm_glue/owlet.mjs');
    await Owlet.load(o.manifest, { wasmBase: o.wasmBase, concurrency: 1 });
  }, { manifest: MANIFEST, wasmBase }).catch(() => {});
  const t0 = Date.now();
  while (srv.served < 2 && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 150)); // mid-way through storing / fetching the next
  // kill the renderer (DevTools Page.crash; falls back to closing the tab)
  try {
    const cdp = await ctx.newCDPSession(page);
    await Promise.race([cdp.send('Page.crash').catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
  } catch { /* closing below */ }
  await page.close().catch(() => {});
  t.diagnostic(crashed ? 'renderer crashed (Page.crash)' : 'tab closed (Page.crash did not crash the renderer)');
  srv.faults.delayMs = 0;
  page = await open();
  try {
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
  } finally { await page.close(); }
});

test('image URLs: another origin, or a redirect to one, gives bad_origin; allowedOrigins admits it; the chat then answers', { timeout: 60000 }, async () => {
  const page = await open();
  try {
    srv.reset();
    srv.rules = new Map([['img1.png', 'redirect']]);
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
  } finally { srv.rules = new Map(); await page.close(); }
});
