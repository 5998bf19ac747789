#!/usr/bin/env python3
"""The vision tower in q6_K against Q8_0 (owlet-convert --vision-type), tensor by tensor.

Converts a checkpoint several ways, runs one picture + prompt through each with
build/bench/dump_taps (every tap and the prefill logits, f32 KV cache) and prints, per
variant, max|diff| / max|ref| and mean|diff| / mean|ref| of the vision, abstractor and
LLM intermediates and of the logits, and top-1 agreement / KL(ref || variant) over the
prefill positions. Figures for docs/ACCURACY.md, not pass/fail.

    /usr/bin/python3 tests/reference/vision_quant_report.py oracle
        oracle A (tests/fixtures/oracle_a): the reference is the PyTorch oracle's own dumps
        (img1, img2). Its vision rows (64, 192, 588) fit no q6_K block, so the q6_k files
        must equal the q8_0 ones: checked and said.
    /usr/bin/python3 tests/reference/vision_quant_report.py wide CKPT_DIR IMAGE.png [THREADS] [IDS.i32]
        any checkpoint (bench/fullscale/make_checkpoint.py DIR --layers 2: the real vision
        tower); the reference is owlet's f16 conversion (the full-size stage 0 is over the
        2000 MiB wasm32 cap in f32; a bf16 checkpoint's weights are exact in f16 but for
        the ~0.2 % below f16's normal range, and owlet's f32 path matches the oracle within
        8e-7, docs/ACCURACY.md). IMAGE is resized (PIL bicubic) and CLIP-normalised with
        the checkpoint's preprocessor_config.json; the prompt is IDS (int32, one -200 for the
        image; `build/owlet tokenize --model M.gguf --chat --image TEXT` prints them) or oracle
        A's img1 ids.

Variants: f32 (oracle) or f16 (wide) + vision q8_0 / q6_k (only the vision tower quantized:
its error alone), and q4_k_m with the default vision (Q8_0) / --vision-type q6_k (the
shipped mix). GGUFs go to a
temporary directory next to CKPT_DIR (or /tmp) and are removed after their dump. Needs
`make native` and build/bench/dump_taps (its header says how to build it).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, 'tests/fixtures/oracle_a')
CONVERT = os.path.join(ROOT, 'build/owlet-convert')
DUMP = os.path.join(ROOT, 'build/bench/dump_taps')


def variants(base):
    return [
        (f'{base}, vision q8_0', ['--type', base, '--vision-type', 'q8_0']),
        (f'{base}, vision q6_K', ['--type', base, '--vision-type', 'q6_k']),
        ('q4_k_m (vision q8_0)', ['--type', 'q4_k_m']),
        ('q4_k_m, vision q6_K', ['--type', 'q4_k_m', '--vision-type', 'q6_k']),
    ]


def sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


def convert(ckpt, out, args):
    subprocess.run([CONVERT, ckpt, out, *args, '-q'], check=True)
    return sha(out)


def dump(gguf, pixels, ids, out, threads):
    os.makedirs(out, exist_ok=True)
    r = subprocess.run([DUMP, gguf, pixels, ids, out, str(threads)], check=True, capture_output=True, text=True)
    return r.stdout.strip()


def load(d, name):
    p = os.path.join(d, name + '.f32')
    return np.fromfile(p, dtype=np.float32).astype(np.float64) if os.path.exists(p) else None


def log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def compare(ref_dir, var_dir, names, vocab):
    row = {}
    for n in names:
        a, b = load(ref_dir, n), load(var_dir, n)
        if a is None or b is None or a.size != b.size:
            row[n] = None
            continue
        d = np.abs(a - b)
        row[n] = (d.max() / np.abs(a).max(), d.mean() / np.abs(a).mean())
    a = load(ref_dir, 'prefill_logits').reshape(-1, vocab)
    b = load(var_dir, 'prefill_logits').reshape(-1, vocab)
    la, lb = log_softmax(a), log_softmax(b)
    kl = (np.exp(la) * (la - lb)).sum(1)
    row['top1'] = (int((a.argmax(1) == b.argmax(1)).sum()), a.shape[0])
    row['kl'] = (kl.mean(), kl.max())
    return row


def table(title, names, rows):
    print(f'\n{title}: max|diff|/max|ref| (mean|diff|/mean|ref|)')
    print('| variant | ' + ' | '.join(names) + ' | top-1 | KL mean / max |')
    print('|---|' + '---|' * (len(names) + 2))
    for label, row in rows:
        cells = [('—' if row[n] is None else f'{row[n][0]:.2e} ({row[n][1]:.2e})') for n in names]
        t, kl = row['top1'], row['kl']
        print(f'| {label} | ' + ' | '.join(cells) + f' | {t[0]}/{t[1]} | {kl[0]:.2e} / {kl[1]:.2e} |')


def oracle(tmp):
    names = ['vision_layer0', 'vision_out', 'abstractor_out', 'llm_final_norm', 'prefill_logits']
    shas = {}
    for case in ('img1', 'img2'):
        rows = []
        for label, args in variants('f32'):
            g = os.path.join(tmp, label.replace(' ', '_').replace(',', '').replace('(', '').replace(')', '') + '.gguf')
            if g not in shas:
                shas[g] = convert(FIX, g, args)
            out = os.path.join(tmp, 'dump', case, os.path.basename(g))
            dump(g, os.path.join(FIX, case, 'pixel_values.f32'), os.path.join(FIX, case, 'input_ids.i32'), out, 1)
            rows.append((label, compare(os.path.join(FIX, case), out, names, 1000)))
        table(f'oracle A, {case}, against the PyTorch oracle', names, rows)
    s = list(shas.values())
    print(f'\nq6_k files equal to their q8_0 counterparts (every vision row falls back): '
          f'f32 {s[0] == s[1]}, q4_k_m {s[2] == s[3]}')


def wide(tmp, ckpt, image, threads, ids_path=None):
    from PIL import Image
    with open(os.path.join(ckpt, 'preprocessor_config.json')) as f:
        pre = json.load(f)
    with open(os.path.join(ckpt, 'config.json')) as f:
        cfg = json.load(f)
    size, vocab = int(pre['size']), int(cfg['vocab_size'])
    img = Image.open(image).convert('RGB').resize((size, size), Image.BICUBIC)
    x = (np.asarray(img, dtype=np.float64) / 255.0 - np.array(pre['image_mean'])) / np.array(pre['image_std'])
    pixels = os.path.join(tmp, 'pixels.f32')
    x.transpose(2, 0, 1).astype(np.float32).tofile(pixels)
    ids = ids_path or os.path.join(FIX, 'img1', 'input_ids.i32')
    nv = int(cfg['visual_config']['visual_model']['num_hidden_layers'])
    names = ['vision_layer0', f'vision_layer{nv // 2}', f'vision_layer{nv - 1}', 'vision_out', 'abstractor_out',
             'llm_final_norm', 'prefill_logits']
    dirs = {}
    for label, args in [('f16 (reference)', ['--type', 'f16'])] + variants('f16'):
        g = os.path.join(tmp, 'm.gguf')
        convert(ckpt, g, args)
        dirs[label] = os.path.join(tmp, 'dump', str(len(dirs)))
        print(f'{label}: {os.path.getsize(g) / 1e6:.1f} MB, {dump(g, pixels, ids, dirs[label], threads)}', flush=True)
        os.remove(g)
    ref = dirs.pop('f16 (reference)')
    rows = [(label, compare(ref, d, names, vocab)) for label, d in dirs.items()]
    table(f'{ckpt}, {os.path.basename(image)} at {size} px, against owlet f16', names, rows)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ('oracle', 'wide') or (sys.argv[1] == 'wide' and len(sys.argv) < 4):
        print(__doc__, file=sys.stderr)
        return 2
    for tool in (CONVERT, DUMP):
        if not os.path.exists(tool):
            print(f'{tool} missing (make native; build/bench/dump_taps: see bench/tools/dump_taps.c)', file=sys.stderr)
            return 1
    if sys.argv[1] == 'oracle':
        with tempfile.TemporaryDirectory() as tmp:
            oracle(tmp)
    else:
        ckpt = sys.argv[2]
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(ckpt))) as tmp:
            wide(tmp, ckpt, sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1,
                 os.path.abspath(sys.argv[5]) if len(sys.argv) > 5 else None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
