#!/usr/bin/python3
"""check_port — the PyTorch port (model.py) reproduces the original implementation.

Loads oracle A (tests/fixtures/oracle_a: tiny random-weight checkpoint + the original PyTorch
implementation's dumps) into model.Owl2 with its state_dict keys, runs the oracle's input ids and
pixel values, and compares with the dumps: max|ours - oracle| <= 1e-4 * max|oracle| for the
vision output, abstractor output and prefill logits of img1, img2 and the text-only case; the
greedy tokens (full recompute each step) must equal decode_tokens. Also: the abstractor tables
registered as buffers are bit-identical to the stored ones, and state_dict keys/shapes equal the
checkpoint's. Ends with "N passed, N failed"; exit 1 on any failure.

    /usr/bin/python3 weights_tool/train_demo/check_port.py [--oracle DIR]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import model as M  # noqa: E402
from model import ref  # noqa: E402

TOL = 1e-4


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oracle", default=os.path.join(HERE, "..", "..", "tests", "fixtures", "oracle_a"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = ref.load_config(a.oracle)
    params = ref.load_safetensors(os.path.join(a.oracle, "model.safetensors"))
    net = M.Owl2(cfg).eval()
    results = []

    def check(name, ok, detail):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    sd = net.state_dict()
    ck = {k: v.shape for k, v in params.items()}
    ours = {k: tuple(v.shape) for k, v in sd.items()}
    check("state_dict keys and shapes equal the checkpoint's", ck == ours,
          f"{len(ours)} keys; only in ours {sorted(set(ours) - set(ck))[:3]}, "
          f"only in checkpoint {sorted(set(ck) - set(ours))[:3]}, "
          f"shape diffs {[k for k in ck if k in ours and ck[k] != ours[k]][:3]}")
    tabs = {k: sd[k].numpy() for k in sd if k.endswith(("q_pos_embed", "k_pos_embed"))}
    M.load_state(net, params)
    same = all(np.array_equal(tabs[k], params[k]) for k in tabs)
    check("abstractor sin-cos buffers bit-identical to the stored ones", same, f"{len(tabs)} tables")

    def load(case, name):
        info = {f["file"]: f for f in manifest["files"]}[f"{case}/{name}"]
        dt = np.int32 if name.endswith(".i32") else np.float32
        return np.fromfile(os.path.join(a.oracle, case, name), dtype=dt).reshape(info["shape"])

    with open(os.path.join(a.oracle, "manifest.json")) as f:
        manifest = json.load(f)

    def rel(x, y):
        return float(np.abs(x - y).max() / np.abs(y).max())

    for case in ("img1", "img2", "text"):
        ids = torch.from_numpy(load(case, "input_ids.i32").astype(np.int64))[None]
        with torch.no_grad():
            if case == "text":
                pix = None
            else:
                pix = torch.from_numpy(load(case, "pixel_values.f32"))[None]
                vis = net.model.vision_model(pix)
                r = rel(vis[0].numpy(), load(case, "vision_out.f32"))
                check(f"{case} vision_out", r <= TOL, f"rel {r:.2e}")
                r = rel(net.model.visual_abstractor(vis)[0].numpy(), load(case, "abstractor_out.f32"))
                check(f"{case} abstractor_out", r <= TOL, f"rel {r:.2e}")
            lg = net.logits(ids, pix)[0].numpy()
            r = rel(lg, load(case, "prefill_logits.f32"))
            check(f"{case} prefill_logits", r <= TOL, f"rel {r:.2e} over {lg.shape}")
            want = load(case, "decode_tokens.i32").tolist()
            got, cur = [], ids
            for _ in range(len(want)):
                tok = int(net.logits(cur, pix)[0, -1].argmax())
                got.append(tok)
                cur = torch.cat([cur, torch.tensor([[tok]])], 1)
            check(f"{case} greedy tokens (recompute)", got == want, f"{got} vs {want}")
    n_ok = sum(results)
    print(f"{n_ok} passed, {len(results) - n_ok} failed")
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
