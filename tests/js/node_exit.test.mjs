// A Node script that uses the API and never calls unload() ends by itself once
// its own work is done: idle engine workers do not hold the process
// (EngineWorker.hold in wasm_glue/engine.mjs), while a call in flight does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const script = `
import { Owlet } from ${JSON.stringify(path.join(root, 'wasm_glue/owlet.mjs'))};
import { readFileSync } from 'node:fs';
const owl = await Owlet.load(${JSON.stringify(path.join(root, 'models/demo/manifest.json'))}, { threads: 2 });
const chat = owl.chat();
await chat.addImage(new Uint8Array(readFileSync(${JSON.stringify(path.join(root, 'models/demo/sample.png'))})));
// a pause between calls: the engine is idle, the timer keeps the script going
await new Promise((r) => setTimeout(r, 300));
let s = '';
for await (const p of chat.ask('How many shapes are there?', { maxTokens: 8 })) s += p;
console.log('answer: ' + s);
`;

function run(limitMs) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err, ms: Date.now() - t0 }); });
  });
}

test('a script that never calls unload() exits once its work is done', { timeout: 120000 }, async () => {
  const r = await run(90000);
  assert.equal(r.signal, null, `killed after ${r.ms} ms: the engine workers kept the process alive\n${r.err}`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^answer: Three\.\s*$/m, 'the answer was computed before the exit');
});
