// The JS side's status codes come from the C list (src/core/status.h) through
// scripts/gen_status.mjs: the committed wasm_glue/status.gen.mjs must be what
// the header gives, and every C status must map to its code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { STATUS_CODES } from '../../wasm_glue/status.gen.mjs';
import { statusError } from '../../wasm_glue/errors.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('wasm_glue/status.gen.mjs is up to date with src/core/status.h', () => {
  execFileSync(process.execPath, [path.join(root, 'scripts/gen_status.mjs'), '--check'], { stdio: 'pipe' });
});

test('every OWL_E_* of the C enum maps to its lower-case code; unknown statuses are engine errors', () => {
  const h = readFileSync(path.join(root, 'src/core/status.h'), 'utf8');
  const names = [...h.matchAll(/OWL_E_([A-Z]+)\s*=\s*(-\d+)/g)];
  assert.ok(names.length >= 10);
  for (const [, name, v] of names) assert.equal(STATUS_CODES[v], name.toLowerCase());
  const e = statusError(-7, 'ask: too long');
  assert.equal(e.name, 'OwletError');
  assert.equal(e.code, 'limit');
  assert.equal(e.status, -7);
  assert.equal(statusError(0, 'crash').code, 'engine');
});
