// web-helpers.mjs - what the browser tests of the site (web.test.mjs, demo.test.mjs) share:
// a fresh Chromium profile that records console errors, page errors and CSP violations,
// opening the page, screenshots, canvas pixels, drawing coordinates, asking a question and
// watching the answer stream, and an axe-core scan.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const shots = path.join(root, 'build/test-out/screenshots');
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/**
 * The development model (oracle-A, random weights, 4 chunks of 1 MiB) in
 * $OWLET_DEV_MODEL (default build/web-dev/oracle_a/), (re)made with the converter when
 * missing or older than the converter:
 *   owlet-convert tests/fixtures/oracle_a build/web-dev/oa.gguf --type f32 --name oracle-a-dev -q
 *   owlet-convert --split build/web-dev/oa.gguf build/web-dev/oracle_a --chunk-mib 1
 * @returns {string} its folder
 */
export function ensureDevModel() {
  const devModel = path.resolve(root, process.env.OWLET_DEV_MODEL || 'build/web-dev/oracle_a');
  const convert = process.env.OWLET_CONVERT || ['build/owlet-convert', 'build/convert/owlet-convert']
    .map((p) => path.join(root, p)).find((p) => fs.existsSync(p));
  const manifest = path.join(devModel, 'manifest.json');
  if (!fs.existsSync(manifest) || (convert && fs.statSync(convert).mtimeMs > fs.statSync(manifest).mtimeMs)) {
    assert.ok(convert, 'no converter: build build/owlet-convert (make native) or set OWLET_CONVERT');
    fs.rmSync(devModel, { recursive: true, force: true });
    const gguf = path.join(path.dirname(devModel), 'oa.gguf');
    fs.mkdirSync(path.dirname(devModel), { recursive: true });
    execFileSync(convert, [path.join(root, 'tests/fixtures/oracle_a'), gguf, '--type', 'f32', '--name', 'oracle-a-dev', '-q']);
    execFileSync(convert, ['--split', gguf, devModel, '--chunk-mib', '1'], { stdio: 'ignore' });
  }
  return devModel;
}

/** web-server.mjs `delay`: chunk i of the dev model arrives after 0.8 * (i + 1) s (a download to cancel or cut half way). */
export const slowChunks = (p) => { const m = /\.(\d{4})\.bin$/.exec(p); return m ? 800 * (Number(m[1]) + 1) : 0; };

const profiles = [];
/** Remove every profile launch() made (call from after()). */
export function removeProfiles() {
  for (const d of profiles.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A fresh browser profile; collects console errors, page errors and CSP violations. */
export async function launch(viewport = { width: 1200, height: 900 }) {
  fs.mkdirSync(shots, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'owlet-web-'));
  profiles.push(dir);
  const ctx = await chromium.launchPersistentContext(dir, { executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return { ctx, page, errors };
}

export const open = async (page, server, query = '') => {
  await page.goto(server.url + query);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
};
export const shot = (page, name) => page.screenshot({ path: path.join(shots, name), fullPage: true });
/** Weight-chunk requests the server saw since request number `from`, under /models/<dir>/. */
export const chunkRequests = (server, from = 0, dir = 'dev') =>
  server.requests.slice(from).filter((r) => r.path.startsWith(`/models/${dir}/`) && r.path.endsWith('.bin'));

export async function loadModel(page) {
  await page.click('#load');
  await page.waitForSelector('body[data-model="ready"]', { timeout: 60000 });
}

/** Pixel [r, g, b] of the picture canvas at (x, y) in canvas pixels. */
export const pixel = (page, x, y) => page.evaluate(([px, py]) =>
  Array.from(document.getElementById('draw').getContext('2d').getImageData(px, py, 1, 1).data.slice(0, 3)), [x, y]);
export const near = (got, want, tol = 40) => got.every((v, i) => Math.abs(v - want[i]) <= tol);

/** Canvas pixel (x, y) -> page coordinates on the overlay. */
export async function toPage(page, x, y) {
  await page.locator('#draw-overlay').scrollIntoViewIfNeeded();
  const box = await page.locator('#draw-overlay').boundingBox();
  const w = await page.evaluate(() => document.getElementById('draw').width);
  return { x: box.x + (x * box.width) / w, y: box.y + (y * box.height) / w };
}

export async function axeScan(page, label) {
  await page.evaluate(fs.readFileSync(path.join(root, 'node_modules/axe-core/axe.min.js'), 'utf8'));
  const r = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${label}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
  return r.violations.length;
}

/** Ask and wait for the answer; returns the number of distinct texts seen while streaming. */
export async function askAndWatch(page, q) {
  await page.fill('#question', q);
  await page.evaluate(() => {
    globalThis.__seen = new Set();
    const ol = document.getElementById('messages');
    globalThis.__mo = new MutationObserver(() => {
      const a = ol.querySelector('.msg.assistant:last-child .text');
      if (a) globalThis.__seen.add(a.textContent);
    });
    globalThis.__mo.observe(ol, { subtree: true, childList: true, characterData: true });
  });
  await page.click('#send');
  await page.waitForFunction(() => !globalThis.owletApp.asking && document.querySelector('.msg.assistant:last-child .timings'),
    null, { timeout: 60000 });
  return page.evaluate(() => { globalThis.__mo.disconnect(); return globalThis.__seen.size; });
}
