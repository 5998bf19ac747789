#!/usr/bin/env python3
"""Acceptance input for owlet-convert's memory bound (not part of `make test`: ~1.8 GB on disk).

Writes OUT/ with the *real* mPLUG-Owl2-7B shapes for one LLM layer, the full vision tower and
abstractor, and the full 32000 x 4096 token embedding and LM head; random bf16 values (std 0.02),
laid out like the released checkpoint: torch.save zip shards, sharded through
pytorch_model.bin.index.json, with a float32 rotary_emb.inv_freq buffer and no q/k_pos_embed.
config.json = weights_tool/configs/mplug-owl2-llama2-7b.config.json with num_hidden_layers 1.
tokenizer.model = the oracle's 1000-piece model plus 31000 appended filler pieces (protobuf
repeated fields concatenate), so the vocabulary matches the 32000 embedding rows.

usage: /usr/bin/python3 tests/convert/make_7b_slice.py OUT_DIR
then:  /usr/bin/time -v build/owlet-convert OUT_DIR out.gguf --type q4_k_m
"""
import json, os, shutil, struct, sys
import torch

def piece(s, score):
    b = s.encode()
    inner = b'\x0a' + bytes([len(b)]) + b + b'\x15' + struct.pack('<f', score)
    return b'\x0a' + bytes([len(inner)]) + inner

def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    root = os.path.join(os.path.dirname(__file__), '..', '..')
    cfg = json.load(open(os.path.join(root, 'weights_tool/configs/mplug-owl2-llama2-7b.config.json')))
    cfg['num_hidden_layers'] = 1
    json.dump(cfg, open(os.path.join(out, 'config.json'), 'w'), indent=1)
    ora = os.path.join(root, 'tests/fixtures/oracle_a')
    for f in ('preprocessor_config.json', 'generation_config.json'):
        shutil.copy(os.path.join(ora, f), os.path.join(out, f))
    tok = open(os.path.join(ora, 'tokenizer.model'), 'rb').read()
    tok += b''.join(piece(f'fill{i}', -1000.0 - i) for i in range(1000, 32000))
    open(os.path.join(out, 'tokenizer.model'), 'wb').write(tok)

    g = torch.Generator().manual_seed(1)
    def r(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(torch.bfloat16)
    def ones(n):
        return torch.ones(n, dtype=torch.bfloat16)
    H, F, V = 4096, 11008, 32000
    P = 'model.layers.0.'
    layer = {P + 'self_attn.q_proj.weight': r(H, H), P + 'self_attn.o_proj.weight': r(H, H),
             P + 'self_attn.rotary_emb.inv_freq': 1.0 / (10000 ** (torch.arange(0, 128, 2).float() / 128)),
             P + 'mlp.gate_proj.weight': r(F, H), P + 'mlp.up_proj.weight': r(F, H),
             P + 'mlp.down_proj.weight': r(H, F)}
    for m in (0, 1):
        layer[P + f'self_attn.k_proj.multiway.{m}.weight'] = r(H, H)
        layer[P + f'self_attn.v_proj.multiway.{m}.weight'] = r(H, H)
        layer[P + f'input_layernorm.multiway.{m}.weight'] = ones(H)
        layer[P + f'post_attention_layernorm.multiway.{m}.weight'] = ones(H)
    rest = {'model.embed_tokens.weight': r(V, H), 'model.norm.weight': ones(H), 'lm_head.weight': r(V, H)}
    VP, vh = 'model.vision_model.', 1024
    rest[VP + 'embeddings.cls_token'] = r(1, 1, vh)
    rest[VP + 'embeddings.patch_embed.weight'] = r(vh, 3, 14, 14)
    rest[VP + 'embeddings.position_embedding'] = r(1, 1025, vh)
    for n in ('embeddings.pre_layernorm', 'post_layernorm'):
        rest[VP + n + '.weight'] = ones(vh); rest[VP + n + '.bias'] = r(vh)
    for l in range(24):
        L = VP + f'encoder.layers.{l}.'
        for n, (o, i) in {'self_attn.query_key_value': (3 * vh, vh), 'self_attn.dense': (vh, vh),
                          'mlp.fc1': (4096, vh), 'mlp.fc2': (vh, 4096)}.items():
            rest[L + n + '.weight'] = r(o, i); rest[L + n + '.bias'] = r(o)
        for n in ('input_layernorm', 'post_attention_layernorm'):
            rest[L + n + '.weight'] = ones(vh); rest[L + n + '.bias'] = r(vh)
    AP = 'model.visual_abstractor.'
    rest[AP + 'query_embeds'] = r(1, 64, 1024)
    for l in range(6):
        L = AP + f'encoder.layers.{l}.crossattention.'
        for n, (o, i) in {'attention.query': (1024, 1024), 'attention.key': (1024, 1024),
                          'attention.value': (1024, 1024), 'output.out_proj': (1024, 1024),
                          'output.mlp.w1': (2816, 1024), 'output.mlp.w3': (2816, 1024),
                          'output.mlp.w2': (1024, 2816)}.items():
            rest[L + n + '.weight'] = r(o, i); rest[L + n + '.bias'] = r(o)
        for n, d in (('norm1', 1024), ('normk', 1024), ('output.norm2', 1024), ('output.mlp.ffn_ln', 2816)):
            rest[L + n + '.weight'] = ones(d); rest[L + n + '.bias'] = r(d)
    rest[AP + 'visual_fc.weight'] = r(H, 1024); rest[AP + 'visual_fc.bias'] = r(H)
    rest[AP + 'vit_eos'] = r(1, 1, H)
    wm = {}
    for name, part in (('pytorch_model-1-of-2.bin', layer), ('pytorch_model-2-of-2.bin', rest)):
        torch.save(part, os.path.join(out, name))
        wm.update({k: name for k in part})
    json.dump({'metadata': {}, 'weight_map': wm}, open(os.path.join(out, 'pytorch_model.bin.index.json'), 'w'))

if __name__ == '__main__':
    main()
