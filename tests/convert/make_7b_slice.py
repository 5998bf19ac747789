#!/usr/bin/python3
"""Acceptance input for owlet-convert's memory bound (not part of `make test`: ~1.8 GB on disk).

Writes OUT/ with the *real* mPLUG-Owl2-7B shapes for one LLM layer, the full vision tower and
abstractor, and the full 32000 x 4096 token embedding and LM head; random bf16 values (std 0.02),
laid out like the released checkpoint (torch.save zip shards, pytorch_model.bin.index.json, a
float32 rotary_emb.inv_freq buffer, no q/k_pos_embed). It is bench/fullscale/make_checkpoint.py
with --layers 1 and the filler tokenizer (oracle A's 1000 pieces + 31000 filler pieces).

usage: /usr/bin/python3 tests/convert/make_7b_slice.py OUT_DIR
then:  /usr/bin/time -v build/owlet-convert OUT_DIR out.gguf --type q4_k_m
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "fullscale"))
import make_checkpoint  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(make_checkpoint.main([sys.argv[1], "--layers", "1"]))
