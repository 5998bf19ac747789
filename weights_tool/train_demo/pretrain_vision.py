#!/usr/bin/python3
"""pretrain_vision — stage 1 of the demo model's training: the vision tower and the abstractor alone.

    /usr/bin/python3 weights_tool/train_demo/pretrain_vision.py --out DIR --tokenizer T.model
        [--minutes M] [--images-per-step N] [--lr X] [--threads N] [--seed S] [key=value ...]

Why: with the language loss the vision tower learns shapes only through the LLM, and one step
costs five question sequences per picture. Here a step costs the vision tower and the abstractor
only (~3x more pictures per second) and every vision patch gets a direct target: train.py's
AuxHeads (what shape/colour covers each patch; what shape/colour sits in each 3x3 cell, read
from all the abstractor's visual tokens) plus a count head on the same visual tokens. No
curriculum is needed: the per-patch targets are dense from the first step.

Writes DIR (an HF-style folder like train.py's, the LLM part still at its initialisation) and
DIR/aux_heads.pt; train.py --init DIR continues from both.
Held-out accuracy (seed shapes.HELDOUT_SEED + 100, never used by train.py's evaluation) is
printed every --eval-every steps: patch shape/colour on object patches, cell shape/colour on
occupied cells, count.
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import shapes  # noqa: E402
import train as T  # noqa: E402

PROBE_SEED = shapes.HELDOUT_SEED + 100


def vision_batch(pre, seed, first, n, patch):
    pix, aux, counts = [], [], []
    for j in range(n):
        it = shapes.make_item(seed, first + j, labels=True)
        pix.append(T.ref.preprocess_image(it["image"], pre, mode="stretch")["pixel_values"])
        aux.append(T.patch_targets(it, pre["size"], patch))
        counts.append(len(it["objects"]) - 1)
    aux = tuple(torch.from_numpy(np.stack(a)) for a in zip(*aux))
    return torch.from_numpy(np.stack(pix)), aux, torch.tensor(counts)


def losses(heads, count_head, v, img, aux, counts):
    flat = img[:, :-1].reshape(img.shape[0], -1)
    return (4 * heads.loss(v, img, aux) + F.cross_entropy(count_head(flat), counts)) / 5


@torch.no_grad()
def evaluate(net, heads, count_head, batch):
    pix, (ps, pc, cs, cc), counts = batch
    v = net.model.vision_model(pix)
    img = net.model.visual_abstractor(v)
    p, c = heads.logits(v, img)
    n = count_head(img[:, :-1].reshape(img.shape[0], -1))
    ns = heads.ns

    def acc(logits, y):
        fg = y > 0
        return float((logits.argmax(-1)[fg] == y[fg]).float().mean())
    return {"patch_shape": acc(p[..., :ns], ps), "patch_colour": acc(p[..., ns:], pc),
            "cell_shape": acc(c[..., :ns], cs), "cell_colour": acc(c[..., ns:], cc),
            "count": float((n.argmax(-1) == counts).float().mean())}


def sincos_2d(g, d):
    """[g*g, d] fixed 2-D sin-cos table (MAE style): an initial value for the learned position table."""
    return torch.from_numpy(np.asarray(T.ref.sincos_2d(d, g, False), np.float32))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--minutes", type=float, default=34)
    ap.add_argument("--images-per-step", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3, help="(2e-3 learned shape more slowly)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--pos-init", choices=("random", "sincos"), default="sincos")
    ap.add_argument("--residual-init", type=float, default=0.0,
                    help="scale of the vision layers' residual-branch outputs (attention dense, fc2) at init; "
                         "0 = each layer starts as the identity. At 1 (train.py's gain-1 init) the near-uniform "
                         "attention of a fresh layer adds the picture's average to every patch and per-patch shape "
                         "stayed at chance for 1,750 steps; at 0 it rose from the first few hundred")
    ap.add_argument("overrides", nargs="*", help="config key=value")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    overrides = {k: T._parse(v) for k, _, v in (kv.partition("=") for kv in a.overrides)}
    cfg, pre = T.make_config(overrides)
    net = M.Owl2(cfg)
    T.init_weights(net, a.seed)
    vm = cfg["visual_config"]["visual_model"]
    g = vm["image_size"] // vm["patch_size"]
    if a.residual_init < 1.0:
        with torch.no_grad():
            for lay in net.model.vision_model.encoder.layers:
                lay.self_attn.dense.weight.mul_(a.residual_init)
                lay.mlp.fc2.weight.mul_(a.residual_init)
    if a.pos_init == "sincos":
        with torch.no_grad():
            pe = net.model.vision_model.embeddings.position_embedding
            pe[0, 1:] = sincos_2d(g, vm["hidden_size"]) * (T.POS_STD / math.sqrt(0.5))   # table std is 1/sqrt(2)
    nq = cfg["visual_config"]["visual_abstractor"]["num_learnable_queries"]
    heads = T.AuxHeads(vm["hidden_size"], cfg["hidden_size"], nq)
    count_head = torch.nn.Linear(nq * cfg["hidden_size"], 4)
    mods = [net.model.vision_model, net.model.visual_abstractor, heads, count_head]
    params = [(n, p) for m in mods for n, p in m.named_parameters()]
    opt = T.adamw(params, a.lr)
    probe = vision_batch(pre, PROBE_SEED, 0, 200, vm["patch_size"])
    t0 = time.time()
    run = r = None
    step = 0
    while True:
        f = min(1.0, (time.time() - t0) / (60 * a.minutes))
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * f)))
        for grp in opt.param_groups:
            grp["lr"] = lr
        pix, aux, counts = vision_batch(pre, shapes.TRAIN_SEED, step * a.images_per_step, a.images_per_step,
                                        vm["patch_size"])
        v = net.model.vision_model(pix)
        img = net.model.visual_abstractor(v)
        loss = losses(heads, count_head, v, img, aux, counts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        run = float(loss) if run is None else 0.95 * run + 0.05 * float(loss)
        step += 1
        done = f >= 1.0
        if step % a.eval_every == 0 or done:
            net.eval()
            r = evaluate(net, heads, count_head, probe)
            net.train()
            el = time.time() - t0
            print(f"step {step} loss {run:.4f} lr {lr:.1e} {el:.0f}s ({step * a.images_per_step / el:.1f} img/s) "
                  + " ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
        if done:
            break
    log = {"stage": "pretrain_vision", "args": {k: v for k, v in vars(a).items() if k != "overrides"},
           "config_overrides": overrides, "steps_done": step, "seconds": round(time.time() - t0, 1),
           "probe": r}
    T.save_folder(a.out, net.eval(), cfg, pre, a.tokenizer, log)
    torch.save({"heads": heads.state_dict()}, os.path.join(a.out, "aux_heads.pt"))
    print(f"pretrain_vision: wrote {a.out} after {step} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
