// files.mjs - Node: a manifest on the file system is its own chunk store.
import { sha256Hex } from './store.mjs';

/** Node, manifest on the file system: the chunk files themselves are the
 * store (nothing is copied into JS memory besides the chunk being read).
 * A chunk is hashed the first time it is read; a file that does not match
 * reads as missing, so ensureChunks reports it (bad_chunk). */
export class FileBackend {
  constructor(manifest) { this.m = manifest; this.ok = new Set(); this.freshReads = true; }
  async get(key) {
    const c = this.m.chunks[Number(key.slice(this.m.id.length + 1))];
    if (!c || !c.url.startsWith('file:')) return null;
    const { readFile } = await import('node:fs/promises');
    let b;
    try { b = await readFile(new URL(c.url)); } catch { return null; }
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (!this.ok.has(key)) {
      if (bytes.byteLength !== c.size || (await sha256Hex(bytes)) !== c.sha256) return null;
      this.ok.add(key);
    }
    return { sha256: c.sha256, bytes };
  }
  async put() { /* the file is the store */ }
  async delete() {}
  async keys() { return []; }
  async getMeta() { return null; }
  async putMeta() {}
  async deleteMeta() {}
  async listMeta() { return []; }
}
