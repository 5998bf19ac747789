// image_cache.mjs - what the engine's image cache saves (src/model/image_cache.c), in Node,
// wall clock at the coordinator (stats().imageEncodeMs per image call):
//
//   node bench/image_cache.mjs [MANIFEST] [--image FILE] [--threads N] [--runs N]
//
// Loads the model, warms the engine up with another picture (the first call into a fresh engine
// also grows its memory), then sends the same picture to a new chat runs + 1 times: the first
// call is a miss (decode + preprocess + hash + vision tower + abstractor), the later ones hits
// (decode + preprocess + hash + a copy of the rows). Then the same with imageCache: 0 (every call
// encodes). A hit's time bounds what hashing adds to a miss. Prints the medians.
// MANIFEST defaults to the demo model, --image to its sample picture; DEBUG_WARM=1 prints the
// warm-up call too.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Owlet } from '../wasm_glue/owlet.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : dflt; };
const image = path.resolve(opt('--image', path.join(root, 'models/demo/sample.png')));
const warm = path.join(root, 'tests/fixtures/images/rgb8.png');
const threads = Number(opt('--threads', '1'));
const runs = Number(opt('--runs', '3'));
const manifest = path.resolve(args[0] || path.join(root, 'models/demo/manifest.json'));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

async function calls(imageCache) {
  const owl = await Owlet.load(manifest, { wasmBase: path.join(root, 'build/wasm'), threads,
    singleThread: threads === 1, imageCache });
  try {
    const w0 = (await owl.stats()).imageEncodeMs;
    await owl.chat().addImage(warm);
    if (process.env.DEBUG_WARM) console.log(`warm-up ${((await owl.stats()).imageEncodeMs - w0).toFixed(1)} ms`);
    const ms = [];
    for (let i = 0; i < runs + 1; i++) {
      const before = (await owl.stats()).imageEncodeMs;
      await owl.chat().addImage(image); // a new chat: the engine resets, the picture goes in again
      ms.push((await owl.stats()).imageEncodeMs - before);
    }
    return { ms, cache: (await owl.stats()).imageCache, build: owl.build };
  } finally { await owl.unload(); }
}

const on = await calls(4);
const off = await calls(0);
const miss = on.ms[0], hit = median(on.ms.slice(1)), uncached = median(off.ms);
console.log(`model ${path.relative(process.cwd(), manifest)}, image ${path.basename(image)}, ${on.build}, ${threads} thread(s), ` +
  `${runs} repeats, Node ${process.version}`);
console.log(`cache on:  miss ${miss.toFixed(1)} ms, hits ${on.ms.slice(1).map((x) => x.toFixed(1)).join(' / ')} ms ` +
  `(median ${hit.toFixed(1)}); counters ${JSON.stringify(on.cache)}`);
console.log(`cache off: every call ${off.ms.map((x) => x.toFixed(1)).join(' / ')} ms (median ${uncached.toFixed(1)})`);
console.log(`saved per repeated picture: ${(uncached - hit).toFixed(1)} ms (${(uncached / Math.max(hit, 1e-3)).toFixed(0)}x less)`);
