// inputs.mjs - what run.mjs needs before any run: the machine's description, a timed
// child process, and the inputs in DIR (tokenizer, random checkpoint, GGUF per type,
// chunks, photo), each made only when missing.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BINARIES } from '../../tests/browser/engines.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const version = (cmd, argv) => {
  try { return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return ''; }
};

/** CPU, cores, memory and the versions of Node and the three browsers. */
export function machine() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
  return { cpu, cores: os.cpus().length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version,
    chromium: version(BINARIES.chromium, ['--version']), firefox: version(BINARIES.firefox, ['--version']),
    webkit: 'webkit2gtk-driver ' + version('dpkg-query', ['-W', '-f', '${Version}', 'webkit2gtk-driver']) };
}

/** Run a command under /usr/bin/time -v: {stdout, stderr, wallS, maxRssBytes}. */
export function timed(cmd, argv, { quiet = false } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-v', cmd, ...argv], { cwd: root });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; if (!quiet) process.stderr.write(d); });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code}\n${err.slice(-2000)}`));
      const rss = Number((/Maximum resident set size \(kbytes\): (\d+)/.exec(err) || [0, 0])[1]) * 1024;
      const w = (/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(err) || [0, '0'])[1].split(':').map(Number);
      const wallS = w.reduce((a, x) => a * 60 + x, 0);
      resolve({ stdout: out, stderr: err, wallS, maxRssBytes: rss });
    });
  });
}

const dirBytes = (d) => fs.readdirSync(d).reduce((a, f) => a + fs.statSync(path.join(d, f)).size, 0);

/** The checkpoint (when a GGUF is missing) and one GGUF per type; ckpt/ is deleted unless keep. */
async function checkpointAndGgufs(dir, types, tok, keep, results, log) {
  const ckpt = path.join(dir, 'ckpt');
  const ggufs = types.map((t) => path.join(dir, `owl2-7b-${t}.gguf`));
  if (ggufs.some((g) => !fs.existsSync(g)) && !fs.existsSync(path.join(ckpt, 'pytorch_model.bin.index.json'))) {
    log('writing the random 7B checkpoint (~16.4 GB)...');
    const r = await timed('/usr/bin/python3', ['bench/fullscale/make_checkpoint.py', ckpt, '--tokenizer', tok]);
    results.checkpoint = { wallS: r.wallS, bytes: dirBytes(ckpt) };
  }
  for (const [i, t] of types.entries()) {
    const meta = path.join(dir, `convert-${t}.json`);
    if (!fs.existsSync(ggufs[i])) {
      log(`converting to ${t}...`);
      const r = await timed(path.join(root, 'build/owlet-convert'), [ckpt, ggufs[i] + '.tmp', '--type', t, '--name', `mplug-owl2-7b-random-${t}`]);
      fs.renameSync(ggufs[i] + '.tmp', ggufs[i]);
      fs.writeFileSync(meta, JSON.stringify({ type: t, wallS: r.wallS, maxRssBytes: r.maxRssBytes, bytes: fs.statSync(ggufs[i]).size }) + '\n');
    }
    results.convert[t] = JSON.parse(fs.readFileSync(meta, 'utf8'));
  }
  if (!keep && fs.existsSync(ckpt)) fs.rmSync(ckpt, { recursive: true, force: true });
  return ggufs;
}

/**
 * Make what is missing in dir: llama2.model, the checkpoint and GGUFs, chunks/ (the first
 * type split into 32 MiB chunks with the default stage plan), photo.png and photo2.png (448 x 448).
 * @returns {Promise<{gguf:string, chunks:string, photo:string, photo2:string}>}
 */
export async function prepare(dir, types, { keep, results, log }) {
  fs.mkdirSync(dir, { recursive: true });
  const tok = path.join(dir, 'llama2.model');
  if (!fs.existsSync(tok)) execFileSync('node', ['tests/tokenizer/extract_llama2.mjs', tok], { cwd: root, stdio: 'inherit' });
  const ggufs = await checkpointAndGgufs(dir, types, tok, keep, results, log);
  const chunks = path.join(dir, 'chunks');
  if (!fs.existsSync(path.join(chunks, 'manifest.json'))) {
    log(`splitting ${types[0]} into chunks...`);
    fs.rmSync(chunks, { recursive: true, force: true });
    execFileSync(path.join(root, 'build/owlet-convert'), ['--split', ggufs[0], chunks, '--chunk-mib', '32'], { stdio: 'inherit' });
  }
  const photo = path.join(dir, 'photo.png');
  if (!fs.existsSync(photo)) {
    execFileSync('/usr/bin/python3', ['-c', 'import sys, skimage.data as d; from PIL import Image; ' +
      'Image.fromarray(d.astronaut()).resize((448, 448), Image.BICUBIC).save(sys.argv[1])', photo]);
  }
  // a second picture (scikit-image's coffee) for the page-UI run: not in the image cache yet
  const photo2 = path.join(dir, 'photo2.png');
  if (!fs.existsSync(photo2)) {
    execFileSync('/usr/bin/python3', ['-c', 'import sys, skimage.data as d; from PIL import Image; ' +
      'Image.fromarray(d.coffee()).resize((448, 448), Image.BICUBIC).save(sys.argv[1])', photo2]);
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(chunks, 'manifest.json'), 'utf8'));
  results.model = { type: types[0], bytes: fs.statSync(ggufs[0]).size, chunks: manifest.chunks.length,
    stages: (manifest.stages || []).length || 1 };
  return { gguf: ggufs[0], chunks, photo, photo2 };
}
