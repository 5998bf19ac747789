#!/usr/bin/python3
"""Write a random-weight mPLUG-Owl2 checkpoint of any size (config.json, preprocessor_config.json,
model.safetensors F32, tokenizer.model copied), for goldens at configurations the oracle lacks.

    /usr/bin/python3 tests/reference/make_checkpoint.py --like tests/fixtures/oracle_a --out DIR \\
        [--seed 1] [--pos-buffers] [key=value ...]

key=value overrides use dotted paths into config.json, e.g. num_key_value_heads=2
visual_config.visual_model.image_size=42 visual_config.visual_model.patch_size=6
(preprocessor size/crop_size follow image_size; abstractor grid_size follows image/patch).
Key names, shapes and the random laws follow oracle A (state_dict keys of the released model).
Then: make_goldens.py --model DIR ... writes the intermediates with owl2_ref.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import owl2_ref as ref  # noqa: E402


def save_safetensors(path, tensors):
    """F32 safetensors writer: u64 LE header length, JSON header (8-byte padded), raw data."""
    header, off, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def random_params(cfg, rng, pos_buffers):
    v = cfg["visual_config"]["visual_model"]
    a = cfg["visual_config"]["visual_abstractor"]
    p = {}

    def lin(name, n_out, n_in, bias=True):
        p[name + ".weight"] = rng.normal(0, 0.8 / np.sqrt(n_in), (n_out, n_in))
        if bias:
            p[name + ".bias"] = rng.normal(0, 0.05, n_out)

    def norm(name, n, bias=True):
        p[name + ".weight"] = 1 + rng.normal(0, 0.1, n)
        if bias:
            p[name + ".bias"] = rng.normal(0, 0.1, n)

    d, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    kvd = d // nh * nkv
    p["model.embed_tokens.weight"] = rng.normal(0, 0.5, (cfg["vocab_size"], d))
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        lin(pre + "self_attn.q_proj", d, d, False)
        for m in (0, 1):
            lin(pre + f"self_attn.k_proj.multiway.{m}", kvd, d, False)
            lin(pre + f"self_attn.v_proj.multiway.{m}", kvd, d, False)
            norm(pre + f"input_layernorm.multiway.{m}", d, False)
            norm(pre + f"post_attention_layernorm.multiway.{m}", d, False)
        lin(pre + "self_attn.o_proj", d, d, False)
        lin(pre + "mlp.gate_proj", cfg["intermediate_size"], d, False)
        lin(pre + "mlp.up_proj", cfg["intermediate_size"], d, False)
        lin(pre + "mlp.down_proj", d, cfg["intermediate_size"], False)
    norm("model.norm", d, False)
    p["lm_head.weight"] = rng.normal(0, 2.0 / np.sqrt(d), (cfg["vocab_size"], d))

    vd, ps, c = v["hidden_size"], v["patch_size"], v.get("num_channels", 3)
    g = v["image_size"] // ps
    vp = ref.VIS
    p[vp + "embeddings.cls_token"] = rng.normal(0, 0.5, (1, 1, vd))
    p[vp + "embeddings.position_embedding"] = rng.normal(0, 0.5, (1, 1 + g * g, vd))
    p[vp + "embeddings.patch_embed.weight"] = rng.normal(0, 0.8 / np.sqrt(c * ps * ps), (vd, c, ps, ps))
    norm(vp + "embeddings.pre_layernorm", vd)
    for i in range(v["num_hidden_layers"]):
        pre = f"{vp}encoder.layers.{i}."
        lin(pre + "self_attn.query_key_value", 3 * vd, vd)
        lin(pre + "self_attn.dense", vd, vd)
        norm(pre + "input_layernorm", vd)
        norm(pre + "post_attention_layernorm", vd)
        lin(pre + "mlp.fc1", v["intermediate_size"], vd)
        lin(pre + "mlp.fc2", vd, v["intermediate_size"])
    norm(vp + "post_layernorm", vd)

    ad, ai = a["hidden_size"], a["intermediate_size"]
    ap = ref.ABS
    p[ap + "query_embeds"] = rng.normal(0, 0.5, (1, a["num_learnable_queries"], ad))
    p[ap + "vit_eos"] = rng.normal(0, 0.5, (1, 1, d))
    qpos, kpos = ref.abstractor_pos_tables(a)
    for i in range(a["num_hidden_layers"]):
        pre = f"{ap}encoder.layers.{i}.crossattention."
        if pos_buffers:
            p[pre + "attention.q_pos_embed"], p[pre + "attention.k_pos_embed"] = qpos, kpos
        for n in ("query", "key", "value"):
            lin(pre + "attention." + n, ad, ad)
        lin(pre + "output.out_proj", ad, ad)
        norm(pre + "output.norm2", ad)
        lin(pre + "output.mlp.w1", ai, ad)
        lin(pre + "output.mlp.w3", ai, ad)
        lin(pre + "output.mlp.w2", ad, ai)
        norm(pre + "output.mlp.ffn_ln", ai)
        norm(pre + "norm1", ad)
        norm(pre + "normk", ad)
    lin(ap + "visual_fc", d, ad)
    return p


def make_checkpoint(like, out, overrides=(), seed=1, pos_buffers=False):
    cfg = ref.load_config(like)
    pre = cfg.pop("_preprocessor")
    for ov in overrides:
        key, _, val = ov.partition("=")
        node = cfg
        parts = key.split(".")
        for k in parts[:-1]:
            node = node[k]
        if parts[-1] not in node:
            raise KeyError(f"make_checkpoint: override {key!r}: no such key in config.json")
        node[parts[-1]] = json.loads(val)
    v = cfg["visual_config"]["visual_model"]
    a = cfg["visual_config"]["visual_abstractor"]
    if v["image_size"] % v["patch_size"]:
        raise ValueError(f"image_size {v['image_size']} is not a multiple of patch_size {v['patch_size']}")
    a["grid_size"] = v["image_size"] // v["patch_size"]
    a["encoder_hidden_size"] = v["hidden_size"]
    if a["hidden_size"] != v["hidden_size"]:
        raise ValueError("abstractor hidden_size must equal the vision hidden_size (keys concat both)")
    pre["size"] = pre["crop_size"] = v["image_size"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if os.path.exists(os.path.join(like, name)):
            shutil.copy(os.path.join(like, name), os.path.join(out, name))
    params = random_params(cfg, np.random.default_rng(seed), pos_buffers)
    save_safetensors(os.path.join(out, "model.safetensors"), params)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description="random-weight mPLUG-Owl2 checkpoint")
    ap.add_argument("--like", required=True, help="folder whose config.json is the starting point")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pos-buffers", action="store_true", help="also store q/k_pos_embed (oracle A does)")
    ap.add_argument("overrides", nargs="*", help="dotted.key=json_value")
    a = ap.parse_args(argv)
    make_checkpoint(a.like, a.out, a.overrides, a.seed, a.pos_buffers)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, KeyError) as e:
        print(f"{os.path.basename(sys.argv[0])}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
