// web-server.mjs - a static file server that lays the repository out as the
// deployed site (docs/DEPLOY.md), for development and the browser tests.
//
//   node tests/browser/web-server.mjs [--port 8080] [--host 127.0.0.1] [--no-coi]
//
// URL path          repository directory
//   /               web/
//   /owlet/wasm/    $OWLET_WASM (default build/wasm/): owlet.{js,wasm}, owlet.worker.js, owlet-st.{js,wasm}
//   /owlet/         wasm_glue/ (owlet.mjs, store.mjs, engine-worker.mjs)
//   /models/dev/    $OWLET_DEV_MODEL (default build/web-dev/oracle_a/): a development model
//   /models/        models/
//
// With coi (the default) every response carries COOP same-origin + COEP
// require-corp, so the page is cross-origin isolated and the threaded engine
// runs; --no-coi serves without them (single-thread, or the service worker
// web/coi-sw.js adds them). Every request is recorded in `requests` so tests
// can count weight fetches. Only GET/HEAD; paths are confined to their roots.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.md': 'text/plain; charset=utf-8', '.bin': 'application/octet-stream',
  '.gguf': 'application/octet-stream', '.txt': 'text/plain; charset=utf-8',
};

/**
 * Start the server.
 * @param {{port?:number, host?:string, coi?:boolean, wasmDir?:string, devModelDir?:string,
 *          mounts?:[string,string][], delay?:(path:string)=>number, inject?:string}} [opts] extra mounts
 *   [urlPrefix, dir] are tried first; delay(path) holds a response that many ms (tests: slow downloads);
 *   inject: a script URL added to the top of every HTML page's <head> (tests: the page-error recorder)
 * @returns {Promise<{url:string, server:http.Server, requests:{method:string, path:string, status:number}[],
 *          close:()=>Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const coi = opts.coi !== false;
  const wasmDir = path.resolve(repo, opts.wasmDir || process.env.OWLET_WASM || 'build/wasm');
  const devDir = path.resolve(repo, opts.devModelDir || process.env.OWLET_DEV_MODEL || 'build/web-dev/oracle_a');
  const mounts = [
    ...(opts.mounts || []).map(([p, d]) => [p, path.resolve(repo, d)]),
    ['/owlet/wasm/', wasmDir],
    ['/owlet/', path.join(repo, 'wasm_glue')],
    ['/models/dev/', devDir],
    ['/models/', path.join(repo, 'models')],
    ['/', path.join(repo, 'web')],
  ];
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let p;
    try { p = decodeURIComponent(url.pathname); } catch { p = '\0'; }
    const rec = { method: req.method, path: url.pathname, status: 0 };
    requests.push(rec);
    const send = (status, body, type = 'text/plain; charset=utf-8', extra = {}) => {
      rec.status = status;
      const h = { 'Content-Type': type, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', ...extra };
      if (coi) {
        h['Cross-Origin-Opener-Policy'] = 'same-origin';
        h['Cross-Origin-Embedder-Policy'] = 'require-corp';
      }
      h['Cross-Origin-Resource-Policy'] = 'same-origin';
      res.writeHead(status, h);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    if (p.includes('\0')) return send(400, 'bad path');
    const m = mounts.find(([prefix]) => p.startsWith(prefix));
    const root = m[1];
    let file = path.resolve(root, '.' + p.slice(m[0].length - 1));
    if (file !== root && !file.startsWith(root + path.sep)) return send(403, 'forbidden');
    const wait = opts.delay ? opts.delay(url.pathname) : 0;
    setTimeout(() => fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        if (!p.endsWith('/')) return send(301, '', 'text/plain', { Location: url.pathname + '/' });
        file = path.join(file, 'index.html');
      }
      fs.readFile(file, (err2, body) => {
        if (err2) return send(404, `not found: ${p}`);
        if (opts.inject && path.extname(file) === '.html')
          body = String(body).replace('<head>', `<head><script src="${opts.inject}"></script>`);
        send(200, body, TYPES[path.extname(file)] || 'application/octet-stream');
      });
    }), wait);
  });
  await new Promise((resolve) => server.listen(opts.port ?? 0, opts.host || '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://${opts.host || '127.0.0.1'}:${port}/`,
    server,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const val = (k, d) => { const i = a.indexOf(k); return i >= 0 ? a[i + 1] : d; };
  const s = await startServer({ port: Number(val('--port', 8080)), host: val('--host', '127.0.0.1'), coi: !a.includes('--no-coi') });
  console.log(`owlet web: ${s.url}  (cross-origin isolation headers: ${a.includes('--no-coi') ? 'off' : 'on'})`);
}
