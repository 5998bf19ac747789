// The committed demo model (models/demo/): its manifest and chunk hashes are intact, it stays
// within the repo's size limit, and the wasm engine gives the recorded answer to the sample
// question (models/demo/sample-answer.txt, greedy) - the answer `make demo` prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Owlet } from '../../wasm_glue/owlet.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'models/demo');
const wasmBase = process.env.OWLET_WASM || path.join(root, 'build/wasm');
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

test('demo manifest: owlet-demo, f16, <= 25 MB, every chunk present with its size and sha256', () => {
  assert.equal(manifest.format, 'owlet-manifest');
  assert.equal(manifest.model.name, 'owlet-demo');
  assert.equal(manifest.model.architecture, 'mplug-owl2');
  assert.equal(manifest.model.quant, 'f16');
  assert.ok(manifest.file.size <= 25e6, `model ${manifest.file.size} bytes`);
  const whole = crypto.createHash('sha256');
  let off = 0;
  for (const [i, c] of manifest.chunks.entries()) {
    assert.equal(c.index, i);
    assert.equal(c.offset, off);
    const b = fs.readFileSync(path.join(dir, c.url));
    assert.equal(b.length, c.size, c.url);
    assert.equal(sha(b), c.sha256, c.url);
    whole.update(b);
    off += c.size;
  }
  assert.equal(off, manifest.file.size);
  assert.equal(whole.digest('hex'), manifest.file.sha256);
  const onDisk = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();
  assert.deepEqual(onDisk, manifest.chunks.map((c) => c.url).sort(), 'no stray chunk files');
});

for (const [name, opt] of [['owlet-st', { singleThread: true }], ['owlet, 2 threads', { threads: 2 }]]) {
  test(`demo model answers the sample question (${name}, greedy)`, async () => {
    const owl = await Owlet.load(path.join(dir, 'manifest.json'), { wasmBase, ...opt });
    try {
      const chat = owl.chat();
      await chat.addImage(path.join(dir, 'sample.png'));
      const q = fs.readFileSync(path.join(dir, 'sample-question.txt'), 'utf8').trim();
      let text = '';
      for await (const p of chat.ask(q, { temperature: 0, maxTokens: 32 })) text += p;
      assert.equal(text.trim(), fs.readFileSync(path.join(dir, 'sample-answer.txt'), 'utf8').trim());
    } finally { await owl.unload(); }
  });
}

// The conversation is the library's (owl_chat): the native CLI and the wasm engine
// (one pipeline protocol) must pick the same greedy ids for the same picture and question.
async function wasmIds(owl, pic, q, n) {
  const chat = owl.chat();
  await chat.addImage(pic);
  const ids = [];
  const eng = owl.engine;
  await owl.mutex.run(async () => {
    await chat._activate();
    await eng.ask(q, { temperature: 0, maxTokens: n });
    for (;;) { const r = await eng.step(); ids.push(r.token); if (r.done) break; }
    await eng.end();
  });
  owl._active = null;
  return ids;
}

test('demo model: the native CLI and the wasm engine give the same greedy ids (4 pictures x 4 questions)', async () => {
  const { spawnSync } = await import('node:child_process');
  const os = await import('node:os');
  const gguf = path.join(os.tmpdir(), `owlet-demo-${process.pid}.gguf`);
  fs.writeFileSync(gguf, Buffer.concat(manifest.chunks.map((c) => fs.readFileSync(path.join(dir, c.url)))));
  const pictures = [path.join(dir, 'sample.png'), ...['rgb8.png', 'pal8.png', 'rgb.jpg'].map((f) => path.join(root, 'tests/fixtures/images', f))];
  const questions = ['How many shapes are there?', 'What shape is this?', 'What colour is the shape?', 'Where is the circle?'];
  const owl = await Owlet.load(path.join(dir, 'manifest.json'), { wasmBase, singleThread: true });
  try {
    const answers = new Set();
    for (const pic of pictures) {
      for (const q of questions) {
        const r = spawnSync(path.join(root, 'build/owlet'), ['--model', gguf, '--image', pic, '--prompt', q,
          '--n-predict', '16', '--temp', '0', '--print-ids'], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const line = r.stderr.split('\n').find((l) => l.startsWith('ids:'));
        const native = line.slice(4).trim().split(/\s+/).map(Number);
        assert.deepEqual(await wasmIds(owl, pic, q, 16), native, `${path.basename(pic)}: ${q}`);
        answers.add(r.stdout.trim());
      }
    }
    assert.ok(answers.size >= 3, `the questions get different answers: ${[...answers].join(' | ')}`);
  } finally { await owl.unload(); fs.rmSync(gguf, { force: true }); }
});

// The image cache (src/model/image_cache.c) where it pays: a new chat about the same
// picture replays it, and the engine answers from the cache instead of the vision tower.
// (The time saved is measured in bench/image_cache.mjs, docs/BENCHMARKS.md, not asserted here.)
test('demo model: a new chat with the same picture is an image-cache hit and skips the encode', async () => {
  const owl = await Owlet.load(path.join(dir, 'manifest.json'), { wasmBase, singleThread: true });
  try {
    const pic = path.join(dir, 'sample.png');
    await owl.chat().addImage(pic);
    const miss = await owl.stats();
    await owl.chat().addImage(pic);
    const hit = await owl.stats();
    assert.deepEqual([miss.imageCache.misses, miss.imageCache.hits], [1, 0]);
    assert.deepEqual([hit.imageCache.misses, hit.imageCache.hits], [1, 1]);
    let a = '';
    const chat = owl.chat();
    await chat.addImage(pic);
    for await (const p of chat.ask('How many shapes are there?', { maxTokens: 8 })) a += p;
    assert.equal(a, 'Three.', 'the answer from the cached rows');
  } finally { await owl.unload(); }
});

// The demo model knows its limits (issue 21, models/demo/MODEL_CARD.md): a picture that is not
// coloured shapes on a light background gets one fixed answer. Two real photos it never saw in
// training (scikit-image's coffee and rocket, held out; Debian python3-skimage, which
// scripts/bootstrap.sh installs) and pictures made here: blank white, near-black, seeded noise.
const FIXED = 'I can only see coloured shapes.';
function canvas(w, h, px) {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([...px(i % w, Math.floor(i / w)), 255], i * 4);
  return { data, width: w, height: h };
}
test('demo model: photos, a blank canvas, a dark one and noise get the fixed answer (greedy, owlet-st)', async () => {
  const skdata = '/usr/lib/python3/dist-packages/skimage/data';
  const photos = ['coffee.png', 'rocket.jpg'].map((f) => path.join(skdata, f));
  for (const p of photos) assert.ok(fs.existsSync(p), `${p} is missing: install python3-skimage (scripts/bootstrap.sh)`);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  const made = [canvas(224, 224, () => [255, 255, 255]), canvas(224, 224, () => [12, 14, 20]),
    canvas(224, 224, () => [rnd(), rnd(), rnd()])];
  const owl = await Owlet.load(path.join(dir, 'manifest.json'), { wasmBase, singleThread: true });
  try {
    for (const [i, pic] of [...photos, ...made].entries()) {
      for (const q of ['What shape is this?', 'How many shapes are there?']) {
        const chat = owl.chat();
        await chat.addImage(pic);
        let text = '';
        for await (const p of chat.ask(q, { temperature: 0, maxTokens: 16 })) text += p;
        assert.equal(text.trim(), FIXED, `picture ${i} (${typeof pic === 'string' ? path.basename(pic) : 'made here'}), "${q}"`);
      }
    }
  } finally { await owl.unload(); }
});
