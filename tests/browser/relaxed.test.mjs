// relaxed.test.mjs - the relaxed-SIMD build in Debian's headless Chromium
// (which runs relaxed SIMD by default), against the reference and the SIMD128
// build:
// 1. wasm_glue/features.mjs: the probe says relaxedSimd in Chromium, not in
//    Node 20 (which cannot run it without a flag, and runs it wrong with one).
// 2. The kernel tests (tests/c/test_{quant,matmul,ops,attention}.c) built
//    relaxed (build/wasm/owlet-kernel-tests-relaxed.js) pass in a page: there
//    matmul_relaxed_tiles_* compare the relaxed-dot tiles with the scalar
//    reference bit for bit on odd sizes, row and token tails, and extremes.
// 3. oracle-A converted to q4_0 and to q4_k_m, through the JS API: the relaxed
//    build (chosen by default in Chromium, and forced) gives the SIMD128
//    build's greedy tokens and bitwise the same logits.
//
//   node --test tests/browser/relaxed.test.mjs   (after make native wasm build/wasm/owlet-kernel-tests-relaxed.js)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestServer } from './server.mjs';
import { out, oracle, root } from './fixtures.mjs';
import { detectFeatures } from '../../wasm_glue/features.mjs';

const wasmBase = '/build/wasm/';
const IMAGE = '/tests/fixtures/oracle_a/img1.png';
const TYPES = ['q4_0', 'q4_k_m'];

/** oracle-A as TYPE in 1 MiB chunks under build/test-out/api/relaxed-TYPE/ (made once). */
function quantFixture(type) {
  const dir = path.join(out, `relaxed-${type}`);
  if (existsSync(path.join(dir, 'manifest.json'))) return dir;
  const conv = path.join(root, 'build/owlet-convert');
  const tmp = `${dir}.tmp-${process.pid}`, gguf = `${tmp}.gguf`;
  mkdirSync(out, { recursive: true });
  try {
    execFileSync(conv, [oracle, gguf, '--type', type, '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(conv, ['--split', gguf, tmp, '--chunk-mib', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
    try { renameSync(tmp, dir); } catch { /* another run made it first */ }
  } finally {
    rmSync(gguf, { force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

let srv, ctx, userDir;
before(async () => {
  for (const t of TYPES) quantFixture(t);
  srv = new TestServer(root);
  await srv.listen();
  userDir = mkdtempSync(path.join(tmpdir(), 'owlet-relaxed-'));
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  if (ctx) await ctx.close();
  if (srv) srv.close();
  if (userDir) rmSync(userDir, { recursive: true, force: true });
});

/** A cross-origin-isolated page (threads). */
async function open() {
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${srv.port}/`);
  assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true, 'page is cross-origin isolated');
  return page;
}

test('features.mjs: relaxed SIMD runs in Chromium, not in Node 20', async () => {
  const node = detectFeatures();
  assert.equal(node.relaxedSimd, false);
  assert.equal(node.simd128, true);
  const page = await open();
  try {
    const f = await page.evaluate(async () => (await import('/wasm_glue/features.mjs')).detectFeatures());
    assert.deepEqual(f, { relaxedSimd: true, simd128: true, threads: true });
  } finally { await page.close(); }
});

test('kernel tests in the relaxed build pass in Chromium (bitwise against the reference)', async () => {
  const page = await open();
  try {
    const lines = await page.evaluate(async (url) => {
      await new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = url;
        s.onload = resolve;
        s.onerror = () => reject(new Error(`cannot load ${url}`));
        document.head.append(s);
      });
      const lines = [];
      await new Promise((resolve, reject) => {
        const done = (l) => { lines.push(l); if (/^\d+ passed, \d+ failed$/.test(l)) resolve(); };
        globalThis.createKernelTests({ print: done, printErr: done, onAbort: (e) => reject(new Error(`abort: ${e}`)) })
          .catch(reject);
      });
      return lines;
    }, `${wasmBase}owlet-kernel-tests-relaxed.js`);
    const summary = lines[lines.length - 1];
    const [, passed, failed] = summary.match(/^(\d+) passed, (\d+) failed$/).map(Number);
    assert.equal(failed, 0, lines.filter((l) => !l.startsWith('ok ')).join('\n'));
    assert.ok(passed >= 40, `${passed} kernel tests ran`);
    for (const name of ['matmul_relaxed_tiles_match_ref_bitwise', 'matmul_relaxed_tiles_extreme_values', 'matmul_relaxed_q8_0_full_int8_range',
      'matmul_matches_ref_bitwise_odd_shapes', 'quant_simd_dots_match_ref_bitwise'])
      assert.ok(lines.includes(`ok ${name}`), `${name} passed`);
  } finally { await page.close(); }
});

/** Greedy 12 tokens of an image question with every step's logits (base64). */
function run(page, o) {
  return page.evaluate(async (o) => {
    const { Owlet } = await import('/wasm_glue/owlet.mjs');
    const owl = await Owlet.load(o.manifest, { wasmBase: o.wasmBase, kvType: 'f32', threads: o.threads ?? 2, backoffMs: 20, build: o.build });
    try {
      const chat = owl.chat();
      await chat.addImage(o.image);
      const rows = [], ids = [];
      const b64 = (f) => { let s = ''; const u = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
        for (let i = 0; i < u.length; i += 8192) s += String.fromCharCode(...u.subarray(i, i + 8192)); return btoa(s); };
      for await (const _ of chat.ask('Describe the image.', { maxTokens: 12,
        _debugLogits: (l, t) => { rows.push(b64(l)); ids.push(t); } }));
      return { build: owl.build, threads: owl.threads, rows, ids };
    } finally { await owl.unload(); }
  }, o);
}

for (const type of TYPES) {
  test(`oracle-A ${type}: the relaxed build (2 threads, and picked at 1 thread) gives the SIMD128 build's tokens and logits bit for bit`, async () => {
    const page = await open();
    try {
      const manifest = `/build/test-out/api/relaxed-${type}/manifest.json`;
      const o = { manifest, wasmBase, image: IMAGE };
      const simd = await run(page, { ...o, build: 'owlet' });
      const auto = await run(page, o);
      const forced = await run(page, { ...o, build: 'owlet-relaxed' });
      const one = await run(page, { ...o, threads: 1 });
      assert.equal(simd.build, 'owlet');
      assert.equal(auto.build, 'owlet-relaxed', 'Chromium picks the relaxed build by default');
      assert.equal(forced.build, 'owlet-relaxed');
      assert.equal(simd.ids.length, 12);
      assert.deepEqual(auto.ids, simd.ids, 'greedy tokens');
      assert.deepEqual(forced.ids, simd.ids, 'greedy tokens (forced)');
      assert.ok(auto.rows.every((r, i) => r === simd.rows[i]), 'logits bitwise equal');
      // one thread in an isolated page: still the relaxed build (its pool starts no worker), same logits
      assert.equal(one.build, 'owlet-relaxed', 'one thread picks the relaxed build too');
      assert.equal(one.threads, 1);
      assert.ok(one.rows.every((r, i) => r === simd.rows[i]) && one.rows.length === 12, 'logits bitwise equal at one thread');
    } finally { await page.close(); }
  });
}

test('Owlet.load rejects an unknown build name', async () => {
  const page = await open();
  try {
    const r = await page.evaluate(async (o) => {
      const { Owlet } = await import('/wasm_glue/owlet.mjs');
      try { await Owlet.load(o.manifest, { wasmBase: o.wasmBase, build: 'owlet-avx' }); return null; } catch (e) {
        return { code: e.code, message: e.message };
      }
    }, { manifest: `/build/test-out/api/relaxed-q4_0/manifest.json`, wasmBase });
    assert.equal(r.code, 'invalid');
    assert.match(r.message, /build must be one of owlet, owlet-relaxed, owlet-st/);
  } finally { await page.close(); }
});
