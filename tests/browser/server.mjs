// server.mjs - a tiny static server for the browser tests: serves the repo
// root, with cross-origin isolation headers (COOP same-origin + COEP
// require-corp) when addressed as 127.0.0.1 and none as localhost (two
// origins, the same files),
// counts requests per path, and injects faults:
//   failRate      fraction of chunk requests answered 503 (deterministic PRNG)
//   corruptOnce   set of chunk file names whose next response has a byte flipped
//   delayMs       delay before each chunk response
//   killAfter     after this many chunk responses, close the server and drop
//                 every connection (restart() listens again on the same port)
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.png': 'image/png', '.bin': 'application/octet-stream' };

export class TestServer {
  /** @param {string} root */
  constructor(root) {
    this.root = path.resolve(root);
    this.counts = new Map();
    this.faults = { failRate: 0, corruptOnce: new Set(), delayMs: 0, killAfter: 0 };
    this.chunkResponses = 0;
    this.seed = 12345;
    this.sockets = new Set();
    this.port = 0;
  }
  rand() { this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff; return this.seed / 0x80000000; }
  reset() {
    this.counts.clear();
    this.faults = { failRate: 0, corruptOnce: new Set(), delayMs: 0, killAfter: 0 };
    this.chunkResponses = 0;
    this.chunkArrivals = 0;
  }
  /** Requests for chunk files (.bin) since the last reset. */
  chunkRequests() { let n = 0; for (const [k, v] of this.counts) if (k.endsWith('.bin')) n += v; return n; }
  count(name) { let n = 0; for (const [k, v] of this.counts) if (k.endsWith(name)) n += v; return n; }

  async handle(req, res) {
    const u = new URL(req.url, 'http://x');
    let p = decodeURIComponent(u.pathname);
    const iso = String(req.headers.host || '').startsWith('127.0.0.1');
    const headers = { 'Cache-Control': 'no-store' };
    if (iso) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    headers['Cross-Origin-Resource-Policy'] = 'same-origin';
    if (p === '/' || p === '/favicon.ico') { res.writeHead(p === '/' ? 200 : 404, headers); res.end('<!doctype html><title>owlet test</title>'); return; }
    const file = path.join(this.root, p);
    if (!file.startsWith(this.root + path.sep)) { res.writeHead(403, headers); res.end(); return; }
    this.counts.set(p, (this.counts.get(p) || 0) + 1);
    const chunk = p.endsWith('.bin');
    if (chunk) {
      const f = this.faults;
      this.chunkArrivals = (this.chunkArrivals || 0) + 1;
      if (f.killAfter && this.chunkArrivals > f.killAfter) { this.kill(); req.socket.destroy(); return; }
      if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
      if (f.failRate && this.rand() < f.failRate) { res.writeHead(503, headers); res.end('injected failure'); return; }
    }
    let body;
    try { body = await readFile(file); } catch { res.writeHead(404, headers); res.end('not found'); return; }
    if (chunk) {
      this.chunkResponses++;
      const name = path.basename(p);
      if (this.faults.corruptOnce.has(name)) {
        this.faults.corruptOnce.delete(name);
        body = Buffer.from(body);
        body[body.length >> 1] ^= 0xff;
      }
    }
    headers['Content-Type'] = TYPES[path.extname(p)] || 'application/octet-stream';
    headers['Content-Length'] = body.length;
    res.writeHead(200, headers);
    res.end(body);
  }

  listen(port = 0) {
    return new Promise((resolve) => {
      this.server = http.createServer((q, r) => { this.handle(q, r).catch(() => { try { r.destroy(); } catch { /* gone */ } }); });
      this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
      this.server.listen(port, '127.0.0.1', () => { this.port = this.server.address().port; resolve(this.port); });
    });
  }
  kill() {
    if (!this.server) return;
    this.server.close();
    for (const s of this.sockets) s.destroy();
    this.server = null;
  }
  async restart() { this.kill(); this.faults.killAfter = 0; await this.listen(this.port); }
  close() { this.kill(); }
}
