#!/usr/bin/python3
"""from_gguf — turn a shipped f32/f16 demo GGUF back into a checkpoint folder train.py --init reads.

    /usr/bin/python3 weights_tool/train_demo/from_gguf.py MODEL.gguf OUTDIR
    (MODEL.gguf: e.g. `cat models/demo/owlet-demo.*.bin > /tmp/owlet-demo.gguf`)

The repository ships only the GGUF chunks, so fine-tuning the shipped model starts here: every
tensor is read back (tests/convert/check_gguf.py's reader and name table, RoPE rows un-permuted),
the config is train.py's DEMO configuration with the GGUF's layer and query counts (checked
against the GGUF's shapes: load_state_dict is strict), and the tokenizer is rebuilt by
train_tokenizer.py (deterministic) and must give the GGUF's pieces and scores exactly. Writes
OUTDIR with train.save_folder's files.
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "convert"))
import check_gguf as G  # noqa: E402
import model as M  # noqa: E402
import train as T  # noqa: E402
import train_tokenizer  # noqa: E402
import sentencepiece as spm  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    gguf, out = argv
    kv, infos, b, data = G.read_gguf(gguf)
    arch = kv["general.architecture"]
    tok_path = train_tokenizer.train(out, 1500)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    if pieces != kv["tokenizer.ggml.tokens"]:
        raise SystemExit("from_gguf: the rebuilt tokenizer's pieces differ from the GGUF's")
    scores = np.array([sp.get_score(i) for i in range(len(pieces))], np.float32)
    if not np.array_equal(scores, np.array(kv["tokenizer.ggml.scores"], np.float32)):
        raise SystemExit("from_gguf: the rebuilt tokenizer's scores differ from the GGUF's")
    # the depths and query count are read from the GGUF (a grown model has more layers than
    # DEMO); every other shape must match DEMO's, which load_state_dict(strict=True) checks
    cfg, pre = T.make_config({
        "num_hidden_layers": kv[arch + ".block_count"],
        "visual_config.visual_model.num_hidden_layers": kv[arch + ".vision.block_count"],
        "visual_config.visual_abstractor.num_learnable_queries": kv[arch + ".abstractor.query_count"],
    })
    net = M.Owl2(cfg)
    sd = {}
    for name, ne, t, off in infos:
        if t not in G.T_SIZES:
            raise SystemExit(f"from_gguf: {name}: tensor type {t} (only f32/f16 can be read back)")
        dt = G.T_SIZES[t][2]
        w = np.frombuffer(b, dtype=dt, count=int(np.prod(ne)), offset=data + off).astype(np.float32)
        w = w.reshape(list(reversed(ne)))
        if name.startswith("blk.") and name.endswith("attn_q.weight"):
            w = G.unpermute(w, kv[arch + ".attention.head_count"])
        elif name.startswith("blk.") and ".attn_k" in name:
            w = G.unpermute(w, kv[arch + ".attention.head_count_kv"])
        key = G.hf_key(name)
        ref = net.state_dict()[key]
        sd[key] = torch.from_numpy(w.copy()).reshape(ref.shape)
    for key, v in net.state_dict().items():   # fixed sin-cos tables: buffers, not in the GGUF
        if key not in sd and key.endswith(("q_pos_embed", "k_pos_embed")):
            sd[key] = v
    net.load_state_dict(sd, strict=True)
    T.save_folder(out, net.eval(), cfg, pre, tok_path, {"from_gguf": os.path.abspath(gguf)})
    print(f"from_gguf: {len(sd)} tensors from {gguf} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
