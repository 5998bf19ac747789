// tests/adversarial/run.mjs - bad inputs through the converter, the CLI and the
// JS API (issue 22). `make test-adversarial` (part of `make test`) runs it:
//
//   node tests/adversarial/run.mjs
//
// Every input is generated at test time in a scratch folder (nothing big is
// committed). Native tools run as the ASan/UBSan builds (build/asan-owlet,
// build/asan-owlet-convert; OWLET_ADV_NATIVE=1 uses build/owlet*), and every
// case asserts: no signal, no sanitizer report, within its time limit, the
// expected exit status and a message naming what is wrong, nothing written
// outside the requested output (each case's folder is listed before and
// after). The JS cases share one engine and check that it still answers
// after every error. Prints one line per case and a summary; exits 1 on any
// failure. About a minute here.
import { spawnSync, execFileSync } from 'node:child_process';
import {
  mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, copyFileSync,
  lstatSync, existsSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { makeFixtures, oracle, out as fixOut, root } from '../browser/fixtures.mjs';

const asan = process.env.OWLET_ADV_NATIVE !== '1';
const CONVERT = path.join(root, asan ? 'build/asan-owlet-convert' : 'build/owlet-convert');
const CLI = path.join(root, asan ? 'build/asan-owlet' : 'build/owlet');
const SCRATCH = mkdtempSync(path.join(os.tmpdir(), 'owlet-adv-'));
const results = [];
const SANITIZER = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;

// ---------------------------------------------------------------- helpers

/** Files under dir (relative paths, symlinks as entries), sorted. */
function listing(dir) {
  const outl = [];
  const walk = (d, pre) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const rel = pre + e.name;
      outl.push(rel);
      if (e.isDirectory()) walk(path.join(d, e.name), rel + '/');
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return outl.sort();
}

/** Run a native tool: {status, signal, out, err, ms}. */
function run(bin, args, { cwd, limitS = 30, shell } = {}) {
  const t0 = Date.now();
  const r = shell
    ? spawnSync('bash', ['-c', shell], { cwd, timeout: limitS * 1e3, encoding: 'utf8' })
    : spawnSync(bin, args, { cwd, timeout: limitS * 1e3, encoding: 'utf8',
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' } });
  return { status: r.status, signal: r.signal, out: r.stdout || '', err: r.stderr || '', ms: Date.now() - t0,
    timedOut: r.error && r.error.code === 'ETIMEDOUT' };
}

/**
 * One native case in a fresh folder: fn(dir) writes the inputs and returns
 * {run: () => result, status, message, checks, allowed}; allowed = entries the
 * run may add to dir (the folder is listed after the inputs, before the run).
 */
function nativeCase(name, fn) {
  const dir = path.join(SCRATCH, name.replace(/[^A-Za-z0-9]+/g, '_'));
  mkdirSync(dir, { recursive: true });
  const problems = [];
  let r;
  try {
    const spec = fn(dir); // makes the inputs; spec.run runs the tool (a thunk) or has run it
    const before = new Set(listing(dir));
    r = typeof spec.run === 'function' ? spec.run() : spec.run;
    if (r.timedOut) problems.push(`no answer within ${spec.limitS || 30} s`);
    if (r.signal) problems.push(`killed by ${r.signal}`);
    if (r.status !== null && r.status >= 128) problems.push(`exit ${r.status} (a signal)`);
    if (SANITIZER.test(r.err)) problems.push(`sanitizer report: ${r.err.split('\n').find((l) => SANITIZER.test(l))}`);
    if (spec.status !== undefined && r.status !== spec.status) problems.push(`exit ${r.status}, want ${spec.status}`);
    if (spec.message && !spec.message.test(r.err)) problems.push(`message ${JSON.stringify(r.err.trim().slice(0, 300))} does not match ${spec.message}`);
    const allowed = new Set([...before, ...(spec.allowed || [])]);
    const extra = listing(dir).filter((f) => !allowed.has(f) && !(spec.allowedUnder || []).some((p) => f.startsWith(p)));
    if (extra.length) problems.push(`wrote outside the requested output: ${extra.join(', ')}`);
    for (const c of spec.checks || []) { const m = c(); if (m) problems.push(m); }
  } catch (e) {
    problems.push(`case threw: ${e.stack || e}`);
  }
  results.push({ name, ok: problems.length === 0, ms: r ? r.ms : 0, problems });
}

async function jsCase(name, limitS, fn) {
  const t0 = Date.now();
  const problems = [];
  let timer;
  try {
    await Promise.race([
      fn(problems),
      new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`no answer within ${limitS} s`)), limitS * 1e3); }),
    ]);
  } catch (e) {
    problems.push(String(e && e.message ? e.message : e));
  } finally {
    clearTimeout(timer);
  }
  results.push({ name, ok: problems.length === 0, ms: Date.now() - t0, problems });
}

// PNG writer (RGB 8-bit, one IDAT): for generated images of any size
function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const b = Buffer.alloc(12 + data.length);
  b.writeUInt32BE(data.length, 0);
  b.write(type, 4, 'latin1');
  data.copy(b, 8);
  b.writeUInt32BE(crc32(b.subarray(4, 8 + data.length)), 8 + data.length);
  return b;
}
function png(w, h, rgb = [10, 200, 30]) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const row = Buffer.alloc(1 + 3 * w);
  for (let x = 0; x < w; x++) { row[1 + 3 * x] = rgb[0]; row[2 + 3 * x] = rgb[1]; row[3 + 3 * x] = rgb[2]; }
  const raw = Buffer.alloc(row.length * h);
  for (let y = 0; y < h; y++) row.copy(raw, y * row.length);
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}
/** A GGUF with one KV: an array of n uint64 (no data). */
function ggufHugeArray(n) {
  const b = Buffer.alloc(4 + 4 + 8 + 8 + 8 + 1 + 4 + 4 + 8);
  let p = b.write('GGUF', 0, 'latin1');
  p = b.writeUInt32LE(3, p); p = b.writeBigUInt64LE(0n, p); p = b.writeBigUInt64LE(1n, p);
  p = b.writeBigUInt64LE(1n, p); p += b.write('k', p, 'latin1');
  p = b.writeUInt32LE(9, p); p = b.writeUInt32LE(10, p); b.writeBigUInt64LE(n, p);
  return b;
}
function copyCheckpoint(dst) {
  mkdirSync(dst, { recursive: true });
  for (const f of ['config.json', 'preprocessor_config.json', 'generation_config.json', 'tokenizer.model', 'model.safetensors'])
    copyFileSync(path.join(oracle, f), path.join(dst, f));
}
const ORACLE_GGUF = path.join(root, 'build/test-out/oracle_a_f32.gguf');
const same = (a, b) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
const ids = (s) => s.trim().split(/\s+/).map(Number);

// ---------------------------------------------------------------- converter

function converterCases() {
  nativeCase('convert: a symlink planted at OUT.tmp is not followed', (d) => {
    writeFileSync(path.join(d, 'victim'), 'precious');
    symlinkSync(path.join(d, 'victim'), path.join(d, 'out.gguf.tmp'));
    return { run: () => run(CONVERT, [oracle, 'out.gguf', '--type', 'f32', '-q'], { cwd: d }), status: 0, allowed: ['out.gguf'],
      checks: [() => readFileSync(path.join(d, 'victim'), 'utf8') === 'precious' ? null : 'the symlink target was overwritten'] };
  });
  nativeCase('convert: /dev/full as the output is refused', (d) => ({
    run: () => run(CONVERT, [oracle, '/dev/full', '-q'], { cwd: d }), status: 1, message: /\/dev\/full: the output is a character device/,
    checks: [() => (statSync('/dev/full').isCharacterDevice() ? null : '/dev/full is no longer a device')],
  }));
  nativeCase('convert: a directory as the output is refused', (d) => ({
    run: () => run(CONVERT, [oracle, '.', '-q'], { cwd: d }), status: 1, message: /the output is a directory/,
  }));
  nativeCase('convert: the input checkpoint as the output is refused', (d) => {
    copyCheckpoint(path.join(d, 'ck'));
    copyFileSync(path.join(d, 'ck/model.safetensors'), path.join(d, 'keep'));
    return { run: () => run(CONVERT, ['ck', 'ck/model.safetensors', '-q'], { cwd: d }), status: 1, message: /is the input/,
      checks: [() => (same(path.join(d, 'ck/model.safetensors'), path.join(d, 'keep')) ? null : 'the input changed')] };
  });
  nativeCase('convert: overlapping safetensors data_offsets are refused', (d) => {
    const ck = path.join(d, 'ck');
    copyCheckpoint(ck);
    const f = readFileSync(path.join(ck, 'model.safetensors'));
    const hn = Number(f.readBigUInt64LE(0));
    const hdr = JSON.parse(f.subarray(8, 8 + hn).toString());
    const keys = Object.keys(hdr).filter((k) => k !== '__metadata__' && hdr[k].dtype === 'F32');
    const a = hdr[keys[0]], b = keys.map((k) => hdr[k]).find((t) => t !== a && t.data_offsets[1] - t.data_offsets[0] <= a.data_offsets[1] - a.data_offsets[0]);
    const len = b.data_offsets[1] - b.data_offsets[0];
    b.data_offsets = [a.data_offsets[0], a.data_offsets[0] + len]; // b aliases a
    let js = Buffer.from(JSON.stringify(hdr));
    js = Buffer.concat([js, Buffer.alloc((8 - (js.length % 8)) % 8, 0x20)]);
    const h8 = Buffer.alloc(8); h8.writeBigUInt64LE(BigInt(js.length));
    writeFileSync(path.join(ck, 'model.safetensors'), Buffer.concat([h8, js, f.subarray(8 + hn)]));
    return { run: () => run(CONVERT, ['ck', 'out.gguf', '-q'], { cwd: d }), status: 1, message: /overlap in data_offsets/ };
  });
  nativeCase('convert: a config.json that is not JSON', (d) => {
    copyCheckpoint(path.join(d, 'ck'));
    writeFileSync(path.join(d, 'ck/config.json'), '{"hidden_size": 64,');
    return { run: () => run(CONVERT, ['ck', 'out.gguf', '-q'], { cwd: d }), status: 1, message: /config\.json/ };
  });
  nativeCase('convert: a truncated safetensors file', (d) => {
    copyCheckpoint(path.join(d, 'ck'));
    const f = readFileSync(path.join(d, 'ck/model.safetensors'));
    writeFileSync(path.join(d, 'ck/model.safetensors'), f.subarray(0, f.length >> 1));
    return { run: () => run(CONVERT, ['ck', 'out.gguf', '-q'], { cwd: d }), status: 1, message: /model\.safetensors.*(data ends|file has)/ };
  });
  nativeCase('convert: an unknown --vision-type is refused before any work', (d) => ({
    run: () => run(CONVERT, [oracle, 'out.gguf', '--type', 'q4_k_m', '--vision-type', 'q4_0', '-q'], { cwd: d }), status: 2,
    message: /unknown --vision-type q4_0 \(q8_0 or q6_k\)/,
  }));
  nativeCase('split: --chunk-mib over 1 GiB is refused', (d) => ({
    run: () => run(CONVERT, ['--split', ORACLE_GGUF, 'm', '--chunk-mib', '4096'], { cwd: d }), status: 1, message: /outside 1\.\.1024/,
  }));
  nativeCase('split: a file size limit mid-way leaves nothing', (d) => ({
    // ulimit -f: the write of a 2 MiB chunk fails (EFBIG; SIGXFSZ is ignored)
    run: () => run(null, null, { cwd: d, shell: `ulimit -f 1500; exec ${CONVERT} --split ${ORACLE_GGUF} m --chunk-mib 2` }),
    status: 1, message: /oracle_a_f32\.0000\.bin: write failed.*File too large/, allowed: ['m'],
  }));
  // a real full disk where a tmpfs can be mounted (root on Linux)
  const small = path.join(SCRATCH, 'tmpfs');
  mkdirSync(small, { recursive: true });
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]).status === 0) {
    try {
      nativeCase('split: a full disk (2 MiB tmpfs) leaves nothing partial', () => ({
        run: () => run(CONVERT, ['--split', ORACLE_GGUF, path.join(small, 'm'), '--chunk-mib', '1']), status: 1,
        message: /No space left on device/,
        checks: [() => (listing(path.join(small, 'm')).length === 0 ? null : `left ${listing(path.join(small, 'm')).join(', ')}`)],
      }));
      nativeCase('convert: a full disk (2 MiB tmpfs) leaves nothing', () => ({
        run: () => run(CONVERT, [oracle, path.join(small, 'x.gguf'), '--type', 'f32', '-q']), status: 1,
        message: /No space left on device/,
        checks: [() => (listing(small).filter((f) => f !== 'm').length === 0 ? null : `left ${listing(small).join(', ')}`)],
      }));
    } finally {
      spawnSync('umount', [small]);
    }
  } else {
    console.log('  (no tmpfs: the real full-disk cases are covered by the injected ENOSPC of tests/c/test_reliability.c)');
  }
}

// ---------------------------------------------------------------- CLI

function cliCases() {
  const M = ORACLE_GGUF;
  nativeCase('cli: typed </s> <s> <|image|> give no EOS, BOS or image id', () => {
    const r = run(CLI, ['tokenize', '--model', M, '--chat', 'a</s>b<s>c<|image|>d']);
    const v = r.status === 0 ? ids(r.out) : [];
    return { run: r, status: 0, checks: [() => (v.length > 3 && !v.slice(1).includes(1) && !v.includes(2) &&
      !v.includes(-200) ? null : `ids ${v.join(' ')}`)] };
  });
  nativeCase('cli: tokenize -- -text (text starting with "-")', () => ({
    run: () => run(CLI, ['tokenize', '--model', M, '--', '-text']), status: 0,
  }));
  nativeCase('cli: a directory as the model', (d) => ({
    run: () => run(CLI, ['--model', d, '--prompt', 'hi', '--n-predict', '1']), status: 1, message: /is a directory/,
  }));
  nativeCase('cli: /dev/urandom as the image', () => ({
    run: () => run(CLI, ['--model', M, '--image', '/dev/urandom', '--prompt', 'hi', '--n-predict', '1']), status: 1,
    message: /not a regular file/,
  }));
  nativeCase('cli: a 65536x1 PNG in every squaring mode answers quickly', (d) => {
    writeFileSync(path.join(d, 'wide.png'), png(65536, 1));
    writeFileSync(path.join(d, 'tall.png'), png(1, 65536));
    const script = ['stretch', 'pad', 'crop'].flatMap((m) => ['wide', 'tall'].map((f) =>
      `${CLI} --model ${M} --image ${f}.png --image-aspect ${m} --prompt hi --n-predict 1 >/dev/null || exit 1`)).join('\n');
    return { run: () => run(null, null, { cwd: d, shell: script, limitS: 30 }), status: 0, limitS: 30 };
  });
  nativeCase('cli: a PNG cut after IHDR says why', (d) => {
    writeFileSync(path.join(d, 'cut.png'), png(96, 64).subarray(0, 33));
    return { run: () => run(CLI, ['--model', M, '--image', 'cut.png', '--prompt', 'hi'], { cwd: d }), status: 1,
      message: /cut short or missing/ };
  });
  nativeCase('cli: random bytes as an image', (d) => {
    writeFileSync(path.join(d, 'rnd.png'), Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24))]));
    return { run: () => run(CLI, ['--model', M, '--image', 'rnd.png', '--prompt', 'hi'], { cwd: d }), status: 1, message: /image/ };
  });
  nativeCase('cli: a GGUF with a 2^61-element array', (d) => {
    writeFileSync(path.join(d, 'h.gguf'), ggufHugeArray(1n << 61n));
    return { run: () => run(CLI, ['--model', 'h.gguf', '--prompt', 'hi'], { cwd: d }), status: 1, message: /more than 2\^64 bytes/ };
  });
  nativeCase('cli: prefixes of the model are refused cleanly', (d) => {
    const g = readFileSync(M);
    const cuts = [];
    for (let n = 0; n < 4096; n += 409) cuts.push(n);
    for (let n = 4096; n < g.length; n += Math.floor(g.length / 9)) cuts.push(n);
    cuts.forEach((n, i) => writeFileSync(path.join(d, `p${i}.gguf`), g.subarray(0, n)));
    const script = cuts.map((_, i) => `${CLI} --model p${i}.gguf --prompt hi --n-predict 1 2>>err.log; s=$?; [ $s -eq 1 ] || { echo "p${i}: exit $s" >&2; exit 1; }`).join('\n');
    return { run: () => run(null, null, { cwd: d, shell: script + '\ncat err.log >&2', limitS: 60 }), status: 0, allowed: ['err.log'], limitS: 60 };
  });
  nativeCase('cli: no doubled prefixes in messages', (d) => {
    writeFileSync(path.join(d, 'e.gguf'), Buffer.from('GGUF'));
    const runs = [run(CLI, ['tokenize', '--model', 'e.gguf', 'x'], { cwd: d }),
      run(CLI, ['--model', M, '--prompt', 'hi', '--ctx', '999999'], { cwd: d })];
    return { run: runs[0], status: 1, message: /e\.gguf/,
      checks: runs.map((r) => () => (/(\w+): \1:/.test(r.err) ? `doubled: ${r.err.trim()}` : null)) };
  });
}

// ---------------------------------------------------------------- JS API

async function jsCases() {
  const { Owlet, OwletError } = await import('../../wasm_glue/owlet.mjs');
  const { MemoryBackend, parseManifest } = await import('../../wasm_glue/store.mjs');
  await makeFixtures();
  const wasmBase = path.join(root, 'build/wasm') + '/';
  const owl = await Owlet.load(path.join(fixOut, 'one', 'manifest.json'), { wasmBase, backend: new MemoryBackend(), threads: 1 });
  const answer = async (chat, q, o = {}) => { let t = ''; for await (const p of chat.ask(q, { maxTokens: 2, ...o })) t += p; return t; };
  const usable = async (problems) => {
    const t = await answer(owl.chat(), 'Is it usable?');
    if (typeof t !== 'string') problems.push('the engine did not answer after the error');
  };
  const rejects = async (problems, p, code, re) => {
    try { await p; problems.push(`resolved; want ${code}`); } catch (e) {
      if (!(e instanceof OwletError) || e.code !== code) problems.push(`got ${e && e.code} ${e && e.message}, want ${code}`);
      else if (re && !re.test(e.message)) problems.push(`message ${JSON.stringify(e.message)} does not match ${re}`);
    }
  };
  const cliIds = (text) => ids(execFileSync(CLI.replace('asan-', ''), ['tokenize', '--model', ORACLE_GGUF, '--chat', '--', text]).toString());
  try {
    const sha = 'a'.repeat(64);
    const man = (url) => ({ model: { name: 'x' }, file: { size: 4 }, chunks: [{ offset: 0, size: 4, sha256: sha, url }] });
    for (const [what, url] of [['../ path', '../../../../../etc/passwd'], ['absolute path', '/etc/passwd'],
      ['file: URL outside', 'file:///etc/passwd'], ['other origin', 'http://127.0.0.1:9/c.bin'], ['data: URL', 'data:,abcd']]) {
      await jsCase(`js: file: manifest chunk (${what}) refused`, 5, async (pr) => {
        try { parseManifest(man(url), 'file:///srv/model/manifest.json'); pr.push('accepted'); } catch (e) {
          if (e.code !== 'bad_manifest' || !/manifest's folder/.test(e.message)) pr.push(`${e.code}: ${e.message}`);
        }
      });
    }
    await jsCase('js: a NUL in a question is refused', 10, async (pr) => {
      await rejects(pr, answer(owl.chat(), 'How many\u0000shapes are there?'), 'invalid', /NUL character.*index 8/);
      await usable(pr);
    });
    await jsCase('js: typed </s> is text: as many positions as the CLI tokenizer gives', 20, async (pr) => {
      for (const q of ['a</s>b', 'a</x>b', '<|image|>', 'x<s>y<unk>']) {
        const chat = owl.chat();
        const before = (await owl.stats()).promptTokens;
        await answer(chat, q, { maxTokens: 1 });
        const ran = (await owl.stats()).promptTokens - before;
        const want = cliIds(q).length;
        if (ran !== want) pr.push(`${JSON.stringify(q)}: ${ran} positions, the tokenizer gives ${want}`);
      }
    });
    await jsCase('js: maxTokens 0 and "8" are refused with words that fit', 10, async (pr) => {
      await rejects(pr, answer(owl.chat(), 'Hi', { maxTokens: 0 }), 'invalid', /maxTokens 0 is not an integer in 1\.\.1e9/);
      await rejects(pr, answer(owl.chat(), 'Hi', { maxTokens: '8' }), 'invalid', /maxTokens "8" \(a string\)/);
      await usable(pr);
    });
    for (const [w, h] of [[65536, 1], [1, 65536], [65536, 4]]) {
      await jsCase(`js: addImage of a ${w}x${h} PNG is quick`, 20, async (pr) => {
        const chat = owl.chat();
        const t0 = Date.now();
        await chat.addImage(png(w, h));
        const ms = Date.now() - t0;
        if (ms > 3000) pr.push(`${ms} ms`);
        await answer(chat, 'What is it?', { maxTokens: 1 });
      });
    }
    await jsCase('js: addImage aborted mid-way rejects within 100 ms of the abort', 20, async (pr) => {
      const chat = owl.chat();
      const ac = new AbortController();
      const p = chat.addImage(png(65536, 4), { signal: ac.signal });
      setTimeout(() => ac.abort(), 5);
      const t0 = Date.now();
      try { await p; } catch (e) { if (e.name !== 'AbortError') pr.push(`${e.name}: ${e.message}`); }
      // resolved or rejected: either way the call ended soon after the abort
      const late = Date.now() - t0 - 5;
      if (late > 100) pr.push(`ended ${late} ms after the abort`);
      await usable(pr);
    });
    await jsCase('js: bad images give errors and leave the engine usable', 30, async (pr) => {
      const bad = [Buffer.alloc(0), Buffer.from('GIF89a'), png(96, 64).subarray(0, 33),
        Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)), png(70000, 1)];
      for (const b of bad) {
        try { await owl.chat().addImage(b); pr.push(`accepted ${b.length} bytes`); } catch (e) {
          if (!(e instanceof OwletError) || !['invalid', 'format', 'limit', 'truncated'].includes(e.code)) pr.push(`${e.code}: ${e.message}`);
        }
      }
      await usable(pr);
    });
  } finally {
    await owl.unload();
  }
}

// ---------------------------------------------------------------- main

const t0 = Date.now();
try {
  for (const b of [CONVERT, CLI, ORACLE_GGUF]) if (!existsSync(b)) throw new Error(`${b} missing: run make test-adversarial`);
  converterCases();
  cliCases();
  await jsCases();
} finally {
  rmSync(SCRATCH, { recursive: true, force: true });
}
let bad = 0;
for (const r of results) {
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${String(r.ms).padStart(6)} ms  ${r.name}`);
  if (!r.ok) { bad++; for (const p of r.problems) console.log(`       ${p}`); }
}
console.log(`adversarial: ${results.length - bad} passed, ${bad} failed, ${((Date.now() - t0) / 1e3).toFixed(1)} s (${asan ? 'ASan/UBSan' : 'plain'} native builds)`);
process.exit(bad ? 1 : 0);
