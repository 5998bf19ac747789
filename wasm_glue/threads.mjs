// threads.mjs - which engine build this page can run, and how many threads it
// uses when the caller does not say.
//
// The threaded build needs a SharedArrayBuffer for its memory. Browsers offer
// one only in a cross-origin-isolated page (COOP same-origin + COEP
// require-corp), but isolation alone is not enough: WebKitGTK 2.50 reports
// crossOriginIsolated === true and still has no SharedArrayBuffer (the engine
// then failed with "Can't find variable: SharedArrayBuffer"). So both are
// checked.

const WEBKIT_VENDOR = 'Apple Computer, Inc.'; // navigator.vendor in every WebKit port (Safari, WebKitGTK)

/**
 * Threads to use by default: navigator.hardwareConcurrency, at most 8. WebKit
 * reports a rounded-up count (4 on this 2-core machine, in WebKitGTK 2.50), and
 * more threads than cores make every parallel step wait for a descheduled
 * thread: a WebKit count of 4 or less gives 2 threads, which never overcommit a
 * dual-core and still halve the work on a bigger machine.
 * @param {{hardwareConcurrency?:number, vendor?:string}|undefined} nav
 * @returns {number}
 */
export function defaultThreads(nav) {
  const hw = nav && nav.hardwareConcurrency;
  if (!Number.isInteger(hw) || hw < 1) return 4;
  if (nav.vendor === WEBKIT_VENDOR && hw <= 4) return Math.min(hw, 2);
  return Math.min(hw, 8);
}

/**
 * What this realm can run.
 * @param {boolean} isBrowser false in Node (always isolated, SharedArrayBuffer present)
 * @param {any} [g] the global object
 * @returns {{threaded:boolean, crossOriginIsolated:boolean, sharedArrayBuffer:boolean,
 *            hardwareConcurrency:number, defaultThreads:number, build:string, reason:string}}
 *   reason: '' when threaded, else why not, in words
 */
export function threadSupport(isBrowser, g = globalThis) {
  const iso = isBrowser ? g.crossOriginIsolated === true : true;
  const sab = typeof g.SharedArrayBuffer === 'function';
  const threaded = iso && sab;
  const reason = threaded ? '' : !iso ? 'the page is not cross-origin isolated'
    : 'this browser has no SharedArrayBuffer, even in a cross-origin-isolated page';
  return { threaded, crossOriginIsolated: iso, sharedArrayBuffer: sab,
    hardwareConcurrency: (g.navigator && g.navigator.hardwareConcurrency) || 1, defaultThreads: defaultThreads(g.navigator),
    build: threaded ? 'owlet' : 'owlet-st', reason };
}
