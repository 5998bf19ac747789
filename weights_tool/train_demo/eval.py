#!/usr/bin/python3
"""eval — greedy answers of a demo checkpoint on held-out shapes items, accuracy per question type.

    /usr/bin/python3 weights_tool/train_demo/eval.py --model DIR [--out DIR/eval.json] [--n 300]
        [--images DIR/eval_images] [--check-ref 20] [--threads 1]

Item k (k < n) is shapes.make_item(HELDOUT_SEED, k) with its question of type QTYPES[k % 5]
(so 60 of each type for n = 300). Its picture is saved as PNG (the engine's input: the same
file through the same preprocessing gives the same pixels), the prompt is the chat format
tokenised the reference way, and the answer is greedy (argmax, full recompute each step) until
</s> or --max-new-tokens. An answer is correct when the decoded text (special tokens dropped,
whitespace stripped) equals the expected answer exactly.

The JSON holds, per item: index, type, image file, question, prompt, input_ids, expected,
generated, generated_ids, correct; and the accuracy per type and overall. --check-ref N re-runs
the first N items through the NumPy reference (tests/reference/owl2_ref.py on model.safetensors)
and requires identical tokens, so the checkpoint files are known to mean what the trainer meant.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import shapes  # noqa: E402
import train as T  # noqa: E402
from model import ref  # noqa: E402


def load_model(folder):
    cfg = ref.load_config(folder)
    pre = cfg.pop("_preprocessor")
    net = M.Owl2(cfg)
    sd = torch.load(os.path.join(folder, "pytorch_model.bin"), map_location="cpu")
    net.load_state_dict(sd, strict=True)
    return net.eval(), cfg, pre


@torch.no_grad()
def greedy(net, ids, pix, max_new, eos=2):
    """ids list (with one -200), pix [3, S, S] -> generated ids (eos included if produced)."""
    img = net.encode_images(pix[None])
    out = []
    cur = list(ids)
    for _ in range(max_new):
        x, is_img = net.splice(torch.tensor([cur]), img)
        tok = int(net.lm_head(net.hidden(x, is_img)[:, -1]).argmax(-1))
        out.append(tok)
        if tok == eos:
            break
        cur.append(tok)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out")
    ap.add_argument("--images")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=shapes.HELDOUT_SEED)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--check-ref", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.seed == shapes.TRAIN_SEED:
        print("eval: warning: --seed is the training seed", file=sys.stderr)
    torch.set_num_threads(a.threads)
    out_json = a.out or os.path.join(a.model, "eval.json")
    img_dir = a.images or os.path.join(os.path.dirname(os.path.abspath(out_json)), "eval_images")
    os.makedirs(img_dir, exist_ok=True)
    net, cfg, pre = load_model(a.model)
    enc = T.Encoder(os.path.join(a.model, "tokenizer.model"))
    mode = cfg.get("image_aspect_ratio", "stretch")
    items, t0 = [], time.time()
    for k in range(a.n):
        it = shapes.make_item(a.seed, k)
        qt = shapes.QTYPES[k % len(shapes.QTYPES)]
        qa = next(q for q in it["qas"] if q["type"] == qt)
        name = f"{k:03d}.png"
        it["image"].save(os.path.join(img_dir, name))
        pix = ref.preprocess_image(it["image"], pre, mode=mode)["pixel_values"]
        prompt = ref.render_single_turn(qa["question"])
        ids = enc.tok.encode_prompt(prompt)
        gen = greedy(net, ids, torch.from_numpy(pix), a.max_new_tokens)
        text = enc.decode(gen)
        items.append({"index": k, "type": qt, "image": os.path.relpath(os.path.join(img_dir, name),
                                                                       os.path.dirname(os.path.abspath(out_json))),
                      "question": qa["question"], "prompt": prompt, "input_ids": ids,
                      "expected": qa["answer"], "generated": text, "generated_ids": gen,
                      "correct": text == qa["answer"], "objects": it["objects"]})
        if (k + 1) % 50 == 0:
            print(f"eval: {k + 1}/{a.n} items, {time.time() - t0:.0f}s", flush=True)
    acc = {}
    for qt in shapes.QTYPES:
        sel = [x["correct"] for x in items if x["type"] == qt]
        acc[qt] = {"correct": sum(sel), "total": len(sel), "accuracy": sum(sel) / max(1, len(sel))}
    allc = [x["correct"] for x in items]
    acc["all"] = {"correct": sum(allc), "total": len(allc), "accuracy": sum(allc) / max(1, len(allc))}
    ref_ok = None
    if a.check_ref:
        cfg_r, params = ref.load_checkpoint(a.model)
        same = 0
        n_ref = min(a.check_ref, len(items))
        for x in items[:n_ref]:
            it = shapes.make_item(a.seed, x["index"])
            pix = ref.preprocess_image(it["image"], cfg_r["_preprocessor"], mode=mode)["pixel_values"]
            img = ref.encode_image(params, cfg_r, pix)
            toks = ref.generate_greedy(params, cfg_r, np.array(x["input_ids"]), [img],
                                       steps=a.max_new_tokens, stop_on_eos=True)
            same += toks == x["generated_ids"]
        ref_ok = {"items": n_ref, "identical": same}
        print(f"eval: NumPy reference gives identical tokens on {same}/{n_ref} items", flush=True)
    res = {"model": os.path.abspath(a.model), "seed": a.seed, "n": a.n, "accuracy": acc,
           "reference_check": ref_ok, "items": items}
    with open(out_json, "w") as f:
        json.dump(res, f, indent=1)
    for qt, v in acc.items():
        print(f"eval: {qt:9s} {v['correct']:3d}/{v['total']:3d} = {100 * v['accuracy']:.1f}%")
    print(f"eval: wrote {out_json} and {a.n} images in {img_dir} ({time.time() - t0:.0f}s)")
    return 0 if ref_ok is None or ref_ok["identical"] == ref_ok["items"] else 1


if __name__ == "__main__":
    sys.exit(main())
