#!/usr/bin/env python3
"""Write a small bf16 *sharded* checkpoint with the real mPLUG-Owl2 key names (oracle A's tiny shapes)
in both formats, for tests/c/test_convert.c:

  OUT/pt/  pytorch_model-1-of-2.bin, pytorch_model-2-of-2.bin, pytorch_model.bin.index.json
  OUT/st/  model-00001-of-00002.safetensors, model-00002-of-00002.safetensors, model.safetensors.index.json
  (+ config.json, preprocessor_config.json, generation_config.json, tokenizer.model in both)

The torch shards exercise what real Megatron exports contain: BFloat16Storage, a float32
rotary_emb.inv_freq buffer per layer (to be dropped), transposed (non-contiguous) views, two
tensors sharing one storage (views with a storage offset) and a column slice of a wider storage.
The safetensors shards hold the same values contiguously, so both must convert to identical bytes.

usage: /usr/bin/python3 tests/convert/make_bf16_checkpoint.py OUT_DIR [SRC_DIR=tests/fixtures/oracle_a]
"""
import json, os, shutil, struct, sys
import torch

def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.contiguous().view(torch.int16).numpy().tobytes()
        header[k] = {'dtype': 'BF16', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)

def main():
    out = sys.argv[1]
    src = sys.argv[2] if len(sys.argv) > 2 else 'tests/fixtures/oracle_a'
    sd = torch.load(os.path.join(src, 'pytorch_model.bin'), map_location='cpu')
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    layer = {k: v for k, v in sd.items() if k.startswith('model.layers.')}
    rest = {k: v for k, v in sd.items() if k not in layer}
    for d in ('pt', 'st'):
        os.makedirs(os.path.join(out, d), exist_ok=True)
        for f in ('config.json', 'preprocessor_config.json', 'generation_config.json', 'tokenizer.model'):
            shutil.copy(os.path.join(src, f), os.path.join(out, d, f))
    # torch shards with views
    pt_layer = {}
    n_layers = 1 + max(int(k.split('.')[2]) for k in layer)
    for l in range(n_layers):
        P = f'model.layers.{l}.self_attn.'
        for k, v in layer.items():
            if k.startswith(f'model.layers.{l}.'):
                pt_layer[k] = v
        q = layer[P + 'q_proj.weight']
        pt_layer[P + 'q_proj.weight'] = q.t().contiguous().t()            # strides (1, rows)
        k0, k1 = layer[P + 'k_proj.multiway.0.weight'], layer[P + 'k_proj.multiway.1.weight']
        both = torch.cat([k0, k1])                                          # one storage, two views
        pt_layer[P + 'k_proj.multiway.0.weight'] = both[:k0.shape[0]]
        pt_layer[P + 'k_proj.multiway.1.weight'] = both[k0.shape[0]:]      # storage offset > 0
        v0 = layer[P + 'v_proj.multiway.0.weight']
        wide = torch.cat([torch.zeros_like(v0), v0], dim=1)                 # column slice, row stride 2*in
        pt_layer[P + 'v_proj.multiway.0.weight'] = wide[:, v0.shape[1]:]
        hd = q.shape[0] // 4
        pt_layer[P + 'rotary_emb.inv_freq'] = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    shards = [('pytorch_model-1-of-2.bin', pt_layer), ('pytorch_model-2-of-2.bin', rest)]
    wm = {}
    for name, part in shards:
        torch.save(part, os.path.join(out, 'pt', name))
        wm.update({k: name for k in part})
    json.dump({'metadata': {'total_size': 0}, 'weight_map': wm},
              open(os.path.join(out, 'pt', 'pytorch_model.bin.index.json'), 'w'))
    st_shards = [('model-00001-of-00002.safetensors', layer), ('model-00002-of-00002.safetensors', rest)]
    wm = {}
    for name, part in st_shards:
        write_safetensors(os.path.join(out, 'st', name), part)
        wm.update({k: name for k in part})
    json.dump({'metadata': {'total_size': 0}, 'weight_map': wm},
              open(os.path.join(out, 'st', 'model.safetensors.index.json'), 'w'))

if __name__ == '__main__':
    main()
