// capabilities.mjs - what each browser engine offers owlet, measured in a
// cross-origin-isolated page (COOP/COEP) of the test server, printed as the
// Markdown table of docs/BROWSERS.md.
//
//   node tests/browser/capabilities.mjs            (all engines; OWLET_BROWSERS=webkit for one)
//   node tests/browser/capabilities.mjs --json     (the raw measurements)
//
// Measured per engine: SharedArrayBuffer and shared wasm memory (the threaded
// build needs both), WebAssembly SIMD128, relaxed SIMD and memory64 (by validating
// a tiny module that uses each), navigator.storage.estimate() and persist() (whose
// answer is awaited at most 2 s: Firefox answers with a permission prompt), and
// whether IndexedDB stores a Blob value. Exits 1 when an engine's threads differ
// from ENGINE_FACTS (engines.mjs), which the browser tests assert the page against.
import { execFileSync } from 'node:child_process';
import { TestServer } from './server.mjs';
import { ENGINE_FACTS, engines, launch, root } from './engines.mjs';

const PACKAGES = { chromium: 'chromium', firefox: 'firefox-esr', webkit: 'webkit2gtk-driver' };

/** Runs in the page. */
async function probe() {
  const wasm = (bytes) => { try { return WebAssembly.validate(new Uint8Array(bytes)); } catch { return false; } };
  const head = [0, 97, 115, 109, 1, 0, 0, 0];
  const v128fn = [1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0]; // type () -> v128, one function of it
  const zeros = new Array(16).fill(0);
  const r = {};
  r.isolated = globalThis.crossOriginIsolated === true;
  r.sab = typeof SharedArrayBuffer === 'function';
  try {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    r.sharedMemory = r.sab && m.buffer instanceof SharedArrayBuffer;
  } catch { r.sharedMemory = false; }
  // v128.const 0; end
  r.simd = wasm([...head, ...v128fn, 10, 22, 1, 20, 0, 253, 12, ...zeros, 11]);
  // v128.const 0; i32x4.relaxed_trunc_f32x4_s (0xfd 0x101); end
  r.relaxedSimd = wasm([...head, ...v128fn, 10, 25, 1, 23, 0, 253, 12, ...zeros, 253, 0x81, 0x02, 11]);
  // (memory i64 1): limits flag 0x04
  r.memory64 = wasm([...head, 5, 3, 1, 4, 1]);
  r.hardwareConcurrency = navigator.hardwareConcurrency || null;
  const st = navigator.storage;
  r.estimate = !!(st && st.estimate);
  if (r.estimate) {
    try { const e = await st.estimate(); r.quotaGB = e.quota / 1e9; } catch (e) { r.estimateError = String(e); }
  }
  r.persist = !!(st && st.persist);
  if (r.persist) {
    r.persistAnswer = await Promise.race([st.persist().then((g) => (g ? 'granted' : 'denied'), (e) => `error ${e.name}`),
      new Promise((res) => setTimeout(() => res('no answer in 2 s'), 2000))]);
  }
  // a Blob value in IndexedDB
  r.idbBlob = await new Promise((resolve) => {
    const name = 'owlet-capability-probe';
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('s');
    open.onerror = () => resolve(`IndexedDB unavailable: ${open.error && open.error.name}`);
    open.onsuccess = () => {
      const db = open.result;
      const t = db.transaction('s', 'readwrite');
      const req = t.objectStore('s').put({ bytes: new Blob([new Uint8Array([1, 2, 3])]) }, 'k');
      const end = (v) => { db.close(); indexedDB.deleteDatabase(name); resolve(v); };
      t.oncomplete = () => end('yes');
      t.onabort = () => end(`no (${req.error ? `${req.error.name}: ${req.error.message}` : t.error && t.error.name})`);
    };
  });
  return r;
}

const yn = (b) => (b ? 'yes' : 'no');

function version(engine) {
  try { return execFileSync('dpkg-query', ['-W', '-f', '${Version}', PACKAGES[engine]], { encoding: 'utf8' }); } catch { return '?'; }
}

const srv = new TestServer(root);
await srv.listen();
const results = {};
try {
  for (const engine of engines()) {
    const b = await launch(engine);
    try {
      await b.page.goto(`http://127.0.0.1:${srv.port}/`); // COOP/COEP: cross-origin isolated
      results[engine] = { version: version(engine), ...(await b.page.evaluate(probe)) };
    } finally { await b.close(); }
  }
} finally { srv.close(); }

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(results, null, 2));
} else {
  const es = Object.keys(results);
  const row = (label, f) => `| ${label} | ${es.map((e) => f(results[e])).join(' | ')} |`;
  console.log(`| | ${es.map((e) => `${e} (${PACKAGES[e]} ${results[e].version})`).join(' | ')} |`);
  console.log(`|---|${es.map(() => '---').join('|')}|`);
  console.log(row('crossOriginIsolated (COOP/COEP page)', (r) => yn(r.isolated)));
  console.log(row('SharedArrayBuffer / shared wasm memory (threads)', (r) => `${yn(r.sab)} / ${yn(r.sharedMemory)}`));
  console.log(row('WebAssembly SIMD128', (r) => yn(r.simd)));
  console.log(row('relaxed SIMD', (r) => yn(r.relaxedSimd)));
  console.log(row('memory64', (r) => yn(r.memory64)));
  console.log(row('navigator.hardwareConcurrency (2-core machine)', (r) => String(r.hardwareConcurrency)));
  console.log(row('storage.estimate()', (r) => (r.estimate ? `yes (quota ${r.quotaGB.toFixed(1)} GB)` : 'absent')));
  console.log(row('storage.persist()', (r) => (r.persist ? `yes: ${r.persistAnswer}` : 'absent')));
  console.log(row('Blob value in IndexedDB', (r) => r.idbBlob));
}

let wrong = 0;
for (const [e, r] of Object.entries(results)) {
  const threads = r.isolated && r.sab && r.sharedMemory;
  if (threads !== ENGINE_FACTS[e].threads) {
    console.error(`${e}: threads ${threads} measured, ENGINE_FACTS says ${ENGINE_FACTS[e].threads} (tests/browser/engines.mjs)`);
    wrong++;
  }
}
process.exitCode = wrong ? 1 : 0;
