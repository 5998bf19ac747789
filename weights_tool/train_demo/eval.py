#!/usr/bin/python3
"""eval — greedy answers of a demo checkpoint on held-out shapes items, accuracy per question type.

    /usr/bin/python3 weights_tool/train_demo/eval.py --model DIR [--out DIR/eval.json] [--n 300]
        [--images DIR/eval_images] [--check-ref 20] [--threads 1] [--kind grid|free|other]

Item k (k < n) is shapes.make_item(HELDOUT_SEED, k) (--kind grid; free and other: see
eval_item) with its question of type QTYPES[k % 5] (so 60 of each type for n = 300). Its picture is saved as PNG (the engine's input: the same
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
from PIL import Image

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


def page_spec(items):
    """What page_set.mjs draws: per item, the picture file and its objects (shape, colour, centre,
    radius and pen width as fractions of the side, filled or outlined)."""
    return [{"file": f"{k:03d}.png", "objects": [{key: o[key] for key in ("shape", "colour", "x", "y", "r", "pen", "drawn")}
                                                 for o in it["objects"]]} for k, it in enumerate(items)]


def page_image(folder, k):
    with Image.open(os.path.join(folder, f"{k:03d}.png")) as im:
        return im.convert("RGB")


def eval_item(kind, seed, k):
    """Item k of an evaluation set -> (item, its question of type QTYPES[k % 5], item index).
    kind grid: shapes.make_item (the 3x3 grid layouts); free: shapes.make_free_item (page-style,
    free positions and sizes, identical copies) -- an item without a question of that type (no
    position question when every object has a copy) is replaced by the next index k + 1000003 j
    that has one; page: the free items' objects as the web page draws them (page_set.mjs, into
--page-dir; the item's own picture is replaced by that PNG); other: shapes.make_other_item with
the held-out photos (never in training)."""
    qt = shapes.QTYPES[k % len(shapes.QTYPES)]
    for j in range(100):
        idx = k + 1000003 * j
        if kind == "grid":
            it = shapes.make_item(seed, idx)
        elif kind in ("free", "page"):
            it = shapes.make_free_item(seed, idx)
        else:
            it = shapes.make_other_item(seed, idx, heldout=True)
        qa = next((q for q in it["qas"] if q["type"] == qt), None)
        if qa is not None:
            return it, qa, idx
    raise RuntimeError(f"eval: no {qt} question near item {k}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint folder (not needed with --spec-only)")
    ap.add_argument("--out")
    ap.add_argument("--images")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=shapes.HELDOUT_SEED)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--check-ref", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--page-dir", help="--kind page: the folder of page_set.mjs's pictures (spec.json, NNN.png)")
    ap.add_argument("--spec-only", action="store_true",
                    help="--kind page: only write PAGE_DIR/spec.json (then run page_set.mjs PAGE_DIR)")
    ap.add_argument("--kind", choices=["grid", "free", "page", "other"], default="grid",
                    help="evaluation set (see eval_item): grid layouts, free page-style layouts, or held-out "
                         "photos/blanks/noise/dark/text (expected answer shapes.FIXED_ANSWER)")
    shapes.add_describe_order_arg(ap)
    a = ap.parse_args(argv)
    shapes.set_describe_order(a.describe_order)
    if a.seed == shapes.TRAIN_SEED:
        print("eval: warning: --seed is the training seed", file=sys.stderr)
    if a.kind == "page":
        if not a.page_dir:
            raise SystemExit("eval: --kind page needs --page-dir")
        os.makedirs(a.page_dir, exist_ok=True)
        spec = page_spec([eval_item("page", a.seed, k)[0] for k in range(a.n)])
        if a.spec_only:
            with open(os.path.join(a.page_dir, "spec.json"), "w") as f:
                json.dump(spec, f, indent=1)
            print(f"eval: wrote {a.page_dir}/spec.json ({a.n} pictures); now: node "
                  f"weights_tool/train_demo/page_set.mjs {a.page_dir}")
            return 0
        with open(os.path.join(a.page_dir, "spec.json")) as f:
            if json.load(f) != spec:
                raise SystemExit(f"eval: {a.page_dir}/spec.json is not this set's (rerun --spec-only and page_set.mjs)")
    if not a.model:
        raise SystemExit("eval: --model is required")
    torch.set_num_threads(a.threads)
    out_json = a.out or os.path.join(a.model, "eval.json")
    # the pictures go next to the JSON: eval.json -> eval_images/, other.json -> other_images/ (two
    # sets written into one folder must not overwrite each other's pictures)
    stem = os.path.splitext(os.path.basename(out_json))[0]
    img_dir = a.images or os.path.join(os.path.dirname(os.path.abspath(out_json)), f"{stem}_images")
    os.makedirs(img_dir, exist_ok=True)
    net, cfg, pre = load_model(a.model)
    enc = T.Encoder(os.path.join(a.model, "tokenizer.model"))
    mode = cfg.get("image_aspect_ratio", "stretch")
    items, t0 = [], time.time()
    for k in range(a.n):
        it, qa, idx = eval_item(a.kind, a.seed, k)
        if a.kind == "page":
            it["image"] = page_image(a.page_dir, k)
            it["meta"]["kind"] = "page"
        qt = qa["type"]
        name = f"{k:03d}.png"
        it["image"].save(os.path.join(img_dir, name))
        pix = ref.preprocess_image(it["image"], pre, mode=mode)["pixel_values"]
        prompt = ref.render_single_turn(qa["question"])
        ids = enc.tok.encode_prompt(prompt)
        gen = greedy(net, ids, torch.from_numpy(pix), a.max_new_tokens)
        text = enc.decode(gen)
        items.append({"index": k, "item_index": idx, "kind": it["meta"].get("kind", "grid"), "type": qt, "image": os.path.relpath(os.path.join(img_dir, name),
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
    for kd in sorted({x["kind"] for x in items} - {"grid"}):
        sel = [x["correct"] for x in items if x["kind"] == kd]
        acc["kind " + kd] = {"correct": sum(sel), "total": len(sel), "accuracy": sum(sel) / max(1, len(sel))}
    allc = [x["correct"] for x in items]
    acc["all"] = {"correct": sum(allc), "total": len(allc), "accuracy": sum(allc) / max(1, len(allc))}
    ref_ok = None
    if a.check_ref:
        cfg_r, params = ref.load_checkpoint(a.model)
        same = 0
        n_ref = min(a.check_ref, len(items))
        for x in items[:n_ref]:
            it = eval_item(a.kind, a.seed, x["index"])[0]
            if a.kind == "page":
                it["image"] = page_image(a.page_dir, x["index"])
            pix = ref.preprocess_image(it["image"], cfg_r["_preprocessor"], mode=mode)["pixel_values"]
            img = ref.encode_image(params, cfg_r, pix)
            toks = ref.generate_greedy(params, cfg_r, np.array(x["input_ids"]), [img],
                                       steps=a.max_new_tokens, stop_on_eos=True)
            same += toks == x["generated_ids"]
        ref_ok = {"items": n_ref, "identical": same}
        print(f"eval: NumPy reference gives identical tokens on {same}/{n_ref} items", flush=True)
    res = {"model": os.path.abspath(a.model), "kind": a.kind, "seed": a.seed, "n": a.n, "accuracy": acc,
           "reference_check": ref_ok, "items": items}
    with open(out_json, "w") as f:
        json.dump(res, f, indent=1)
    for qt, v in acc.items():
        print(f"eval: {qt:11s} {v['correct']:3d}/{v['total']:3d} = {100 * v['accuracy']:.1f}%")
    print(f"eval: wrote {out_json} and {a.n} images in {img_dir} ({time.time() - t0:.0f}s)")
    return 0 if ref_ok is None or ref_ok["identical"] == ref_ok["items"] else 1


if __name__ == "__main__":
    sys.exit(main())
