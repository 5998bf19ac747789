#!/usr/bin/env python3
"""Check an owlet-convert f32/f16 GGUF against the Hugging Face checkpoint it came from.

usage: check_gguf.py MODEL.gguf HF_DIR   (reads model.safetensors or pytorch_model.bin with torch)
Prints the metadata, then compares every tensor (un-permuting RoPE rows) and exits 1 on a mismatch.
Not part of `make test` (needs torch); used to validate the converter by hand."""
import json, os, struct, sys
import numpy as np

T_SIZES = {0: (1, 4, np.float32), 1: (1, 2, np.float16)}

def read_gguf(path):
    b = open(path, 'rb').read()
    p = 0
    def u(fmt):
        nonlocal p
        v = struct.unpack_from('<' + fmt, b, p); p += struct.calcsize('<' + fmt); return v[0]
    def s():
        nonlocal p
        n = u('Q'); v = b[p:p + n].decode('utf-8', 'replace'); p += n; return v
    scal = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
    def val(t):
        if t == 8: return s()
        if t == 9:
            et = u('I'); n = u('Q'); return [val(et) for _ in range(n)]
        return u(scal[t])
    assert b[:4] == b'GGUF'; p = 4
    ver = u('I'); nt = u('Q'); nk = u('Q')
    kv = {}
    for _ in range(nk):
        k = s(); t = u('I'); kv[k] = val(t)
    infos = []
    for _ in range(nt):
        name = s(); nd = u('I'); ne = [u('Q') for _ in range(nd)]; t = u('I'); off = u('Q')
        infos.append((name, ne, t, off))
    align = kv.get('general.alignment', 32)
    data = (p + align - 1) // align * align
    return kv, infos, b, data

def hf_key(name):
    """GGUF name -> checkpoint key (FORMAT.md tables)."""
    import re
    m = re.match(r'blk\.(\d+)\.(\w+)\.weight$', name)
    if m:
        l, g = m.groups(); P = f'model.layers.{l}.'
        tab = {'attn_norm': 'input_layernorm.multiway.0', 'attn_norm_img': 'input_layernorm.multiway.1',
               'attn_q': 'self_attn.q_proj', 'attn_k': 'self_attn.k_proj.multiway.0',
               'attn_k_img': 'self_attn.k_proj.multiway.1', 'attn_v': 'self_attn.v_proj.multiway.0',
               'attn_v_img': 'self_attn.v_proj.multiway.1', 'attn_output': 'self_attn.o_proj',
               'ffn_norm': 'post_attention_layernorm.multiway.0', 'ffn_norm_img': 'post_attention_layernorm.multiway.1',
               'ffn_gate': 'mlp.gate_proj', 'ffn_up': 'mlp.up_proj', 'ffn_down': 'mlp.down_proj'}
        return P + tab[g] + '.weight'
    fixed = {'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight',
             'output.weight': 'lm_head.weight', 'v.patch_embd.weight': 'model.vision_model.embeddings.patch_embed.weight',
             'v.class_embd': 'model.vision_model.embeddings.cls_token',
             'v.position_embd.weight': 'model.vision_model.embeddings.position_embedding',
             'a.query_embd': 'model.visual_abstractor.query_embeds', 'a.vit_eos': 'model.visual_abstractor.vit_eos'}
    if name in fixed: return fixed[name]
    m = re.match(r'v\.(pre_ln|post_ln)\.(weight|bias)$', name)
    if m:
        return 'model.vision_model.' + ('embeddings.pre_layernorm' if m[1] == 'pre_ln' else 'post_layernorm') + '.' + m[2]
    m = re.match(r'v\.blk\.(\d+)\.(\w+)\.(weight|bias)$', name)
    if m:
        tab = {'ln1': 'input_layernorm', 'attn_qkv': 'self_attn.query_key_value', 'attn_out': 'self_attn.dense',
               'ln2': 'post_attention_layernorm', 'ffn_up': 'mlp.fc1', 'ffn_down': 'mlp.fc2'}
        return f'model.vision_model.encoder.layers.{m[1]}.{tab[m[2]]}.{m[3]}'
    m = re.match(r'a\.visual_fc\.(weight|bias)$', name)
    if m: return 'model.visual_abstractor.visual_fc.' + m[1]
    m = re.match(r'a\.blk\.(\d+)\.(\w+)\.(weight|bias)$', name)
    tab = {'norm1': 'norm1', 'normk': 'normk', 'attn_q': 'attention.query', 'attn_k': 'attention.key',
           'attn_v': 'attention.value', 'attn_out': 'output.out_proj', 'norm2': 'output.norm2',
           'ffn_gate': 'output.mlp.w1', 'ffn_up': 'output.mlp.w3', 'ffn_norm': 'output.mlp.ffn_ln',
           'ffn_down': 'output.mlp.w2'}
    return f'model.visual_abstractor.encoder.layers.{m[1]}.crossattention.{tab[m[2]]}.{m[3]}'

def unpermute(w, heads):
    """GGUF row h*D + 2i + s  <-  checkpoint row h*D + s*D/2 + i."""
    rows = w.shape[0]; D = rows // heads
    out = np.empty_like(w)
    for h in range(heads):
        for i in range(D // 2):
            for s_ in range(2):
                out[h * D + s_ * D // 2 + i] = w[h * D + 2 * i + s_]
    return out

def main():
    gg, hf = sys.argv[1], sys.argv[2]
    kv, infos, b, data = read_gguf(gg)
    for k, v in kv.items():
        if isinstance(v, list) and len(v) > 8: v = f'[{len(v)} items] {v[:4]}...'
        print(f'{k} = {v}')
    import torch
    sd = torch.load(os.path.join(hf, 'pytorch_model.bin'), map_location='cpu')
    A = kv['general.architecture']
    bad = 0
    for name, ne, t, off in infos:
        if t not in T_SIZES:
            continue
        _, es, dt = T_SIZES[t]
        n = int(np.prod(ne))
        g = np.frombuffer(b, dtype=dt, count=n, offset=data + off).astype(np.float32).reshape(list(reversed(ne)))
        ref = sd[hf_key(name)].float().numpy().reshape(g.shape)
        if name.startswith('blk.') and name.endswith('attn_q.weight'):
            g = unpermute(g, kv[A + '.attention.head_count'])
        elif '.attn_k' in name and name.startswith('blk.'):
            g = unpermute(g, kv[A + '.attention.head_count_kv'])
        tol = 0 if t == 0 else 1e-3 * max(1.0, float(np.abs(ref).max()))
        d = float(np.abs(g - ref).max()) if g.size else 0.0
        if d > tol:
            print(f'MISMATCH {name}: max diff {d}'); bad += 1
    print(f'{len(infos)} tensors, {bad} mismatches')
    sys.exit(1 if bad else 0)

if __name__ == '__main__':
    main()
