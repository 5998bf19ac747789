#!/usr/bin/env python3
"""Top-1 agreement and KL divergence of quantized oracle-A models against f32.

Converts tests/fixtures/oracle_a to each type with build/owlet-convert, runs the
native CLI on the oracle's three prompts (img1, img2, text) with --dump-logits,
and compares every prefill position's distribution with the f32 model's.
Random tiny weights give flat logits, so these are figures to record
(docs/ACCURACY.md), not pass/fail. Usage:
    /usr/bin/python3 tests/reference/quant_report.py [TYPE ...]   (default q8_0 q4_0)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, 'tests/fixtures/oracle_a')
CASES = {
    'img1': ['--image', os.path.join(FIX, 'img1.png'), '--prompt', 'Describe the image.'],
    'img2': ['--image', os.path.join(FIX, 'img2.png'), '--prompt', 'What is in the picture?'],
    'text': ['--prompt', 'What is the capital of France?'],
}


def logits(tmp, qtype, case, vocab):
    gguf = os.path.join(tmp, f'a_{qtype}.gguf')
    if not os.path.exists(gguf):
        subprocess.run([os.path.join(ROOT, 'build/owlet-convert'), FIX, gguf, '--type', qtype, '-q'], check=True)
    out = os.path.join(tmp, f'{qtype}.{case}.f32')
    subprocess.run([os.path.join(ROOT, 'build/owlet'), '--model', gguf, *CASES[case], '--n-predict', '1',
                    '--temp', '0', '--kv', 'f32', '--image-aspect', 'pad', '--dump-logits', out],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x = np.fromfile(out, dtype=np.float32).reshape(-1, vocab).astype(np.float64)
    return x[:-1]  # the last row is the generated token fed back: prefill rows only


def log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def main():
    types = sys.argv[1:] or ['q8_0', 'q4_0']
    vocab = 1000
    with tempfile.TemporaryDirectory() as tmp:
        ref = {c: logits(tmp, 'f32', c, vocab) for c in CASES}
        print('| type | prefill positions | top-1 agreement | KL mean | KL max |')
        print('|---|---|---|---|---|')
        for t in types:
            agree = total = 0
            kls = []
            for c in CASES:
                a, b = ref[c], logits(tmp, t, c, vocab)
                agree += int((a.argmax(1) == b.argmax(1)).sum())
                total += a.shape[0]
                la, lb = log_softmax(a), log_softmax(b)
                kls += list((np.exp(la) * (la - lb)).sum(1))
            print(f'| {t} | {total} | {agree}/{total} = {100 * agree / total:.1f}% | {np.mean(kls):.5f} | {np.max(kls):.5f} |')


if __name__ == '__main__':
    main()
