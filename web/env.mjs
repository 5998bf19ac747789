// env.mjs - what this browser can do for owlet, and the cross-origin-isolation
// service worker (coi-sw.js) for static hosts that cannot send COOP/COEP.

// (module (func (result v128) v128.const i32x4 0 0 0 0)): valid only where
// WebAssembly SIMD128 is supported.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);

/** @returns {boolean} */
export function hasSimd() {
  try { return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE); } catch { return false; }
}

/**
 * Whether the engine can use threads here, and why not. Isolation alone is not
 * enough: WebKitGTK reports crossOriginIsolated === true without having a
 * SharedArrayBuffer (wasm_glue/threads.mjs makes the same choice for the engine).
 * @returns {{on:boolean, isolated:boolean, sharedMemory:boolean, why:'isolation'|'shared-memory'|''}}
 */
export function threadState() {
  const isolated = globalThis.crossOriginIsolated === true;
  const sharedMemory = typeof SharedArrayBuffer === 'function';
  const on = isolated && sharedMemory;
  return { on, isolated, sharedMemory, why: on ? '' : !isolated ? 'isolation' : 'shared-memory' };
}

/** IndexedDB usable (it is missing or throws in some private modes). @returns {Promise<boolean>} */
export async function hasStorage() {
  if (!globalThis.indexedDB) return false;
  try {
    await new Promise((resolve, reject) => {
      const r = indexedDB.open('owlet-probe', 1);
      r.onsuccess = () => { r.result.close(); indexedDB.deleteDatabase('owlet-probe'); resolve(); };
      r.onerror = () => reject(r.error);
      r.onblocked = () => resolve();
    });
    return true;
  } catch { return false; }
}

const RELOAD_KEY = 'owlet.coi-reloaded';

/**
 * Make the page cross-origin isolated with web/coi-sw.js when the host did not
 * send COOP/COEP: register the worker and reload once so it serves this page.
 * A session flag stops reload loops (a host or browser where it cannot work).
 * enabled false unregisters the worker (the page stays as it is until reloaded).
 * @param {{enabled:boolean}} opts
 * @returns {Promise<'isolated'|'reloading'|'off'|'unsupported'|'failed'>}
 */
export async function ensureIsolation({ enabled }) {
  const sw = navigator.serviceWorker;
  if (!enabled) {
    if (sw) {
      const regs = await sw.getRegistrations().catch(() => []);
      for (const r of regs) if (r.active && /coi-sw\.js$/.test(r.active.scriptURL)) await r.unregister();
    }
    return globalThis.crossOriginIsolated ? 'isolated' : 'off';
  }
  if (globalThis.crossOriginIsolated) {
    sessionStorage.removeItem(RELOAD_KEY);
    return 'isolated';
  }
  if (!sw || !globalThis.isSecureContext) return 'unsupported';
  if (sessionStorage.getItem(RELOAD_KEY)) return 'failed';
  try {
    await sw.register(new URL('coi-sw.js', import.meta.url), { scope: './' });
    await sw.ready;
  } catch (e) {
    console.warn('owlet: the cross-origin-isolation service worker did not register:', e);
    return 'failed';
  }
  sessionStorage.setItem(RELOAD_KEY, '1');
  location.reload();
  return 'reloading';
}
