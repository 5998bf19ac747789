// GGUF compatibility: the file our C writer produced (tests/c/test_gguf.c,
// test gguf_write_sample_for_js, run by the native/wasm C suites first) is read
// with Hugging Face's independent parser, @huggingface/gguf, and every key,
// value type, value, tensor name, dtype, shape and offset must match what the C
// test says it wrote (build/test-out/sample.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gguf, GGUFValueType } from '@huggingface/gguf';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ggufPath = `${root}build/test-out/sample.gguf`;
const jsonPath = `${root}build/test-out/sample.json`;

function loadExpected() {
  assert.ok(existsSync(ggufPath) && existsSync(jsonPath),
    `${ggufPath} / sample.json missing: run the C tests first (owlet-tests gguf_write_sample_for_js)`);
  return JSON.parse(readFileSync(jsonPath, 'utf8'));
}

let parsed;
async function parse() {
  parsed ??= await gguf(ggufPath, { allowLocalFile: true, typedMetadata: true });
  return parsed;
}

// The JS value @huggingface/gguf gives for an expected JSON value of a GGUF type.
function jsValue(type, v) {
  switch (type) {
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64: return BigInt(v);
    case GGUFValueType.FLOAT32: return Math.fround(v);
    default: return v;
  }
}

test('sample.gguf and sample.json exist and agree on the file size', () => {
  const exp = loadExpected();
  assert.equal(statSync(ggufPath).size, exp.file_size);
  assert.equal(exp.file_size % exp.alignment, 0);
});

test('header: version, tensor and kv counts', async () => {
  const exp = loadExpected();
  const { metadata } = await parse();
  assert.equal(metadata.version, exp.version);
  assert.equal(metadata.tensor_count, BigInt(exp.tensors.length));
  assert.equal(metadata.kv_count, BigInt(exp.kv.length));
});

test('every kv: key order, value type, element type and value', async () => {
  const exp = loadExpected();
  const { metadata, typedMetadata } = await parse();
  const keys = Object.keys(metadata).filter((k) => !['version', 'tensor_count', 'kv_count'].includes(k));
  assert.deepEqual(keys, exp.kv.map((kv) => kv.key));
  for (const kv of exp.kv) {
    const got = typedMetadata[kv.key];
    assert.ok(got, `key ${kv.key} missing`);
    assert.equal(got.type, kv.type, `type of ${kv.key}`);
    if (kv.type === GGUFValueType.ARRAY) {
      assert.equal(got.subType, kv.elem, `element type of ${kv.key}`);
      assert.deepEqual(got.value, kv.value.map((v) => jsValue(kv.elem, v)), `value of ${kv.key}`);
    } else {
      assert.deepEqual(got.value, jsValue(kv.type, kv.value), `value of ${kv.key}`);
    }
  }
});

test('tensor infos: names, dtypes, shapes, offsets and data offset', async () => {
  const exp = loadExpected();
  const { tensorInfos, tensorDataOffset } = await parse();
  assert.equal(tensorDataOffset, BigInt(exp.data_offset));
  assert.equal(tensorInfos.length, exp.tensors.length);
  exp.tensors.forEach((t, i) => {
    const got = tensorInfos[i];
    assert.equal(got.name, t.name);
    assert.equal(got.dtype, t.type, `dtype of ${t.name}`);
    assert.equal(got.n_dims, t.ne.length, `n_dims of ${t.name}`);
    assert.deepEqual(got.shape, t.ne.map(BigInt), `shape of ${t.name}`);
    assert.equal(got.offset, BigInt(t.offset), `offset of ${t.name}`);
    assert.equal(Number(got.offset) % exp.alignment, 0);
  });
});

test('tensor bytes sit where the offsets say, in order, without overlap', async () => {
  const exp = loadExpected();
  const { tensorInfos, tensorDataOffset } = await parse();
  const file = readFileSync(ggufPath);
  let end = 0;
  tensorInfos.forEach((ti, i) => {
    const at = Number(tensorDataOffset + ti.offset);
    assert.equal(file.subarray(at, at + 8).toString('hex'), exp.tensors[i].first_bytes, ti.name);
    assert.ok(Number(ti.offset) >= end, `${ti.name} overlaps the previous tensor`);
    end = Number(ti.offset) + exp.tensors[i].size;
  });
  assert.ok(exp.data_offset + end <= file.length);
});
