// make demo, step 1: answer one question about an image with the wasm engine in
// Node, streaming the answer to the terminal and printing timings.
//   node scripts/demo-ask.mjs MANIFEST IMAGE "QUESTION" [THREADS]
import { Owlet } from '../wasm_glue/owlet.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const [manifest, image, question, threads = '2'] = process.argv.slice(2);
if (!manifest || !image || !question) {
  console.error('usage: node scripts/demo-ask.mjs MANIFEST IMAGE "QUESTION" [THREADS]');
  process.exit(2);
}
const t0 = performance.now();
const owl = await Owlet.load(path.resolve(manifest), {
  wasmBase: path.join(root, 'build/wasm'),
  threads: Number(threads),
});
const loadMs = performance.now() - t0;
const chat = owl.chat();
await chat.addImage(path.resolve(image));
process.stdout.write(`Q: ${question}\nA: `);
for await (const piece of chat.ask(question, { temperature: 0, maxTokens: 64 })) process.stdout.write(piece);
process.stdout.write('\n');
const s = await owl.stats();
console.error(`model ${owl.manifest?.name ?? manifest}: loaded in ${loadMs.toFixed(0)} ms, ${s.threads} thread(s) (${owl.build})`);
const f = (x, d = 1) => (x ?? 0).toFixed(d);
console.error(`image encode ${f(s.imageEncodeMs, 0)} ms · prefill ${s.promptTokens} tokens at ${f(s.prefillTokPerS)} tok/s · ` +
  `decode ${s.completionTokens} tokens at ${f(s.decodeTokPerS)} tok/s`);
await owl.unload();
