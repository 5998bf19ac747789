// fixtures.mjs - the chunked oracle-A models used by tests/js/api.test.mjs and
// tests/browser/run.mjs, made at test time with the converter:
//   build/test-out/api/one/  f32 GGUF in 1 MiB chunks (oa.NNNN.bin), one stage
//   build/test-out/api/two/  the same converted with a 22 MiB budget: two stages
// Each folder is written under a temporary name and renamed, so test runs in
// parallel never see half a fixture.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const out = path.join(root, 'build/test-out/api');
export const oracle = path.join(root, 'tests/fixtures/oracle_a');

function converter() {
  const c = process.env.OWLET_CONVERT || ['build/owlet-convert', 'build/convert/owlet-convert']
    .map((p) => path.join(root, p)).find((p) => existsSync(p));
  if (!c) throw new Error('no converter: run `make native` (or set OWLET_CONVERT)');
  return c;
}

function make(name, extra) {
  const dir = path.join(out, name);
  if (existsSync(path.join(dir, 'manifest.json'))) return;
  const c = converter();
  const tag = `${name}.tmp-${process.pid}`;
  const gdir = path.join(out, `${tag}-gguf`), gguf = path.join(gdir, 'oa.gguf'), tmp = path.join(out, tag);
  mkdirSync(gdir, { recursive: true });
  try {
    execFileSync(c, [oracle, gguf, '--type', 'f32', ...extra, '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(c, ['--split', gguf, tmp, '--chunk-mib', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
    try { renameSync(tmp, dir); } catch { /* another run made it first */ }
  } finally {
    rmSync(gdir, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Make both fixtures if missing. */
export function makeFixtures() {
  make('one', []);
  make('two', ['--budget-mib', '22']);
}
