// coi-sw.js - a service worker that makes owlet's page cross-origin isolated on
// static hosts that cannot send headers (GitHub Pages, most CDNs' free tiers).
//
// Multi-threaded WebAssembly needs SharedArrayBuffer, which browsers only give
// to a cross-origin-isolated page: the document must be served with
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
// This worker re-serves every response of its scope with those two headers
// (plus Cross-Origin-Resource-Policy: same-origin on same-origin responses, so
// they stay loadable under COEP). web/env.mjs registers it when the page is not
// isolated and reloads once; a host that sends the headers itself never needs it.
// Cross-origin resources (a model on another host) must then be served with CORS
// (fetch() uses mode 'cors') or Cross-Origin-Resource-Policy: cross-origin.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (e) => {
  const req = e.request;
  // A request Chrome cannot replay from a service worker.
  if (req.cache === 'only-if-cached' && req.mode !== 'same-origin') return;
  e.respondWith((async () => {
    const res = await fetch(req);
    if (res.status === 0 || res.type === 'opaque' || res.type === 'opaqueredirect') return res;
    const h = new Headers(res.headers);
    h.set('Cross-Origin-Opener-Policy', 'same-origin');
    h.set('Cross-Origin-Embedder-Policy', 'require-corp');
    if (new URL(req.url).origin === self.location.origin && !h.has('Cross-Origin-Resource-Policy'))
      h.set('Cross-Origin-Resource-Policy', 'same-origin');
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: h });
  })());
});
