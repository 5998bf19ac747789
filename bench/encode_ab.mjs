// encode_ab.mjs - the image encode of two (or more) checkouts, alternately, in Node: each run is a
// child process that loads the model with that checkout's wasm_glue/owlet.mjs and build/wasm,
// adds the picture, asks one question (4 greedy tokens) and prints stats().imageEncodeMs and the ids.
//
//   node bench/encode_ab.mjs MANIFEST PHOTO THREADS ROUNDS CHECKOUT_A CHECKOUT_B ...
//
// (MANIFEST: a chunk store's manifest.json, e.g. from `owlet-convert --split`.) Each line carries
// the 1-minute load average at its start; the last lines give each checkout's minimum.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
const [manifest, photo, threads, rounds, ...trees] = process.argv.slice(2);
if (process.env.AB_CHILD) {
  const root = process.env.AB_CHILD;
  const { Owlet } = await import(path.join(root, 'wasm_glue/owlet.mjs'));
  const owl = await Owlet.load(manifest, { wasmBase: path.join(root, 'build/wasm'), threads: Number(threads) });
  const chat = owl.chat();
  await chat.addImage(photo);
  const ids = [];
  for await (const p of chat.ask('What is in the picture?', { temperature: 0, maxTokens: 4, _debugLogits: (_l, t) => ids.push(t) })) void p;
  const s = await owl.stats();
  await owl.unload();
  console.log(JSON.stringify({ enc: s.imageEncodeMs, build: s.build, ids }));
  process.exit(0);
}
const res = {};
for (let r = 0; r < Number(rounds); r++)
  for (const t of trees) {
    const la = os.loadavg()[0].toFixed(2);
    const out = execFileSync(process.execPath, [process.argv[1], manifest, photo, threads, rounds], { env: { ...process.env, AB_CHILD: t } }).toString();
    const j = JSON.parse(out.trim().split('\n').pop());
    (res[t] ??= []).push(j.enc);
    console.log(`${new Date().toISOString()} load ${la} ${t} threads ${threads} build ${j.build} encode ${j.enc.toFixed(0)} ms ids ${j.ids.join(',')}`);
  }
for (const t of trees) console.log(`${t}: min ${Math.min(...res[t]).toFixed(0)} ms, runs ${res[t].map((x) => x.toFixed(0)).join(' ')}`);
