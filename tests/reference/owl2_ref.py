"""owl2_ref — owlet's independent NumPy reference of mPLUG-Owl2 (LLaMA-2 variant).

Written from docs/mplug-owl2.md (shared spec), verified against the original PyTorch
implementation's dumps in tests/fixtures/oracle_a (see README.md next to this file).

Conventions
- Weights: a flat dict {state_dict key: np.ndarray}, keys exactly as in the checkpoint
  (`model.layers.0.self_attn.k_proj.multiway.1.weight`, ...). Linear weights are [out, in].
- Every size comes from config.json / preprocessor_config.json; nothing is hard-coded.
- Compute dtype = dtype of the arrays passed in. `load_checkpoint(..., dtype=np.float32)`
  (the default) computes everything in float32 like the oracle; pass np.float64 to get a
  float64 "truth" (used by check_oracle.py to report how far f32 is from exact).
  Exceptions, deliberately: the abstractor sin-cos tables and the RoPE inverse frequencies /
  angles are always built in float32 like upstream (bit-exact with the stored buffers),
  whatever the compute dtype; image preprocessing is float32 too.
- Activations carry no batch dimension: [tokens, features].
- NumPy + PIL only (no torch) so `make test` needs no torch.
"""

import json
import math
import os
import struct

import numpy as np

IMAGE_TOKEN_INDEX = -200
IMAGE_PLACEHOLDER = "<|image|>"

# --------------------------------------------------------------------------------------
# checkpoint loading
# --------------------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
              "I32": np.int32, "I64": np.int64}


def _bf16_to_f32(raw):
    u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
    return (u16 << 16).view(np.float32)


def load_safetensors(path):
    """Minimal safetensors reader: u64 LE header length, JSON header, raw little-endian data.

    Returns {name: np.ndarray} (copies, C order). F32/F16/F64/I32/I64/BF16 (BF16 -> float32).
    Raises ValueError naming the tensor on any inconsistent offset or size.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > len(data) - 8:
        raise ValueError(f"{path}: header length {hlen} > {len(data) - 8} bytes left")
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    body = memoryview(data)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        if not (0 <= begin <= end <= len(body)):
            raise ValueError(f"{path}: {name}: offsets {begin}..{end} outside data of {len(body)} bytes")
        raw = body[begin:end]
        n = int(np.prod(shape, dtype=np.int64))
        dt = info["dtype"]
        if dt == "BF16":
            if end - begin != 2 * n:
                raise ValueError(f"{path}: {name}: BF16 {shape} wants {2 * n} bytes, got {end - begin}")
            arr = _bf16_to_f32(raw)
        elif dt in _ST_DTYPES:
            npdt = np.dtype(_ST_DTYPES[dt]).newbyteorder("<")
            if end - begin != npdt.itemsize * n:
                raise ValueError(f"{path}: {name}: {dt} {shape} wants {npdt.itemsize * n} bytes, got {end - begin}")
            arr = np.frombuffer(raw, dtype=npdt)
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dt}")
        out[name] = np.array(arr.reshape(shape), dtype=arr.dtype.newbyteorder("="))
    return out


def load_config(folder):
    """config.json (+ preprocessor_config.json if present, under key '_preprocessor')."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    pre = os.path.join(folder, "preprocessor_config.json")
    if os.path.exists(pre):
        with open(pre) as f:
            cfg["_preprocessor"] = json.load(f)
    return cfg


def load_checkpoint(folder, dtype=np.float32):
    """Returns (cfg, params). Float tensors are cast to `dtype` (the compute dtype)."""
    cfg = load_config(folder)
    params = load_safetensors(os.path.join(folder, "model.safetensors"))
    for k, v in params.items():
        if v.dtype.kind == "f":
            params[k] = v.astype(dtype)
    return cfg, params


# --------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------

def linear(x, params, prefix):
    """y = x W^T (+ b); W [out, in] at prefix.weight, optional prefix.bias."""
    y = x @ params[prefix + ".weight"].T
    b = params.get(prefix + ".bias")
    return y if b is None else y + b


def layer_norm(x, params, prefix, eps):
    """torch.nn.LayerNorm: biased variance over the last dim."""
    mu = x.mean(-1, keepdims=True)
    d = x - mu
    var = (d * d).mean(-1, keepdims=True)
    return d / np.sqrt(var + x.dtype.type(eps)) * params[prefix + ".weight"] + params[prefix + ".bias"]


def rms_norm(x, weight, eps):
    """LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight (fp32 inside for 16-bit inputs)."""
    xf = x.astype(np.promote_types(x.dtype, np.float32))
    y = xf / np.sqrt((xf * xf).mean(-1, keepdims=True) + xf.dtype.type(eps))
    return y.astype(x.dtype) * weight


def softmax(s, axis=-1):
    m = s.max(axis=axis, keepdims=True)
    e = np.exp(s - m)
    return e / e.sum(axis=axis, keepdims=True)


def silu(x):
    return x / (1 + np.exp(-x))


def quick_gelu(x):
    return x / (1 + np.exp(x.dtype.type(-1.702) * x))


def attention(q, k, v, mask=None):
    """q [H, Tq, d], k/v [H, Tk, d] -> [Tq, H*d] (heads concatenated in head order)."""
    d = q.shape[-1]
    s = (q @ k.transpose(0, 2, 1)) * q.dtype.type(1.0 / math.sqrt(d))
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    p = softmax(s)
    o = p @ v
    return o.transpose(1, 0, 2).reshape(q.shape[1], -1)


def split_heads(x, n_heads):
    """[T, H*d] -> [H, T, d]"""
    t = x.shape[0]
    return x.reshape(t, n_heads, -1).transpose(1, 0, 2)


# --------------------------------------------------------------------------------------
# image preprocessing (spec §4)
# --------------------------------------------------------------------------------------

def expand2square(img, background):
    """Pad to a square of side max(W, H) with `background`; image centred on the short axis."""
    from PIL import Image
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), tuple(background))
    out.paste(img, (0, (w - h) // 2) if w > h else ((h - w) // 2, 0))
    return out


def preprocess_image(img, pre_cfg, mode="pad"):
    """PIL image -> dict(square=PIL, resized_u8=[H,W,3] uint8, pixel_values=[3,H,W] float32).

    mode: 'pad' (expand2square with int(255*mean)), 'stretch' (resize to max-edge square
    with PIL's default filter, as the README/eval scripts do) or 'crop' (plain processor).
    Then the CLIP processor: shortest edge -> size (PIL bicubic on uint8), centre crop,
    x*(1/255) (float64, cast to float32), (x - mean)/std in float32, HWC -> CHW.
    """
    from PIL import Image
    img = img.convert("RGB")
    mean = [float(m) for m in pre_cfg["image_mean"]]
    std = [float(s) for s in pre_cfg["image_std"]]
    if mode == "pad":
        img = expand2square(img, tuple(int(m * 255) for m in mean))
    elif mode == "stretch":
        side = max(img.size)
        img = img.resize((side, side))
    elif mode != "crop":
        raise ValueError(f"preprocess_image: unknown mode {mode!r} (pad|stretch|crop)")
    square = img
    size = pre_cfg["size"]
    short = size if isinstance(size, int) else size.get("shortest_edge", size.get("height"))
    crop = pre_cfg.get("crop_size", short)
    if isinstance(crop, dict):
        crop_h, crop_w = crop["height"], crop["width"]
    else:
        crop_h = crop_w = int(crop)
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nh, nw = short, int(short * w / h)
    resample = int(pre_cfg.get("resample", 3))
    if pre_cfg.get("do_resize", True):
        img = img.resize((nw, nh), resample=Image.Resampling(resample))
    u8 = np.asarray(img, dtype=np.uint8)
    if pre_cfg.get("do_center_crop", True):
        hh, ww = u8.shape[:2]
        top, left = (hh - crop_h) // 2, (ww - crop_w) // 2
        u8 = u8[top:top + crop_h, left:left + crop_w]
    x = (u8 * (1 / 255)).astype(np.float32)
    if pre_cfg.get("do_normalize", True):
        x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return {"square": square, "resized_u8": u8, "pixel_values": np.ascontiguousarray(x.transpose(2, 0, 1))}


# --------------------------------------------------------------------------------------
# vision tower (spec §1)
# --------------------------------------------------------------------------------------

VIS = "model.vision_model."


def vision_embeddings(params, vcfg, pixel_values):
    """[C, H, W] -> [1 + gh*gw, D]: patch conv as matmul, CLS first, + pos, pre-LN."""
    p = vcfg["patch_size"]
    w = params[VIS + "embeddings.patch_embed.weight"]            # [D, C, p, p]
    d = w.shape[0]
    c, hh, ww = pixel_values.shape
    gh, gw = hh // p, ww // p
    x = pixel_values[:, :gh * p, :gw * p].astype(w.dtype)
    patches = x.reshape(c, gh, p, gw, p).transpose(1, 3, 0, 2, 4).reshape(gh * gw, c * p * p)
    tok = patches @ w.reshape(d, -1).T                          # raster order over the grid
    cls = params[VIS + "embeddings.cls_token"].reshape(1, d)
    x = np.concatenate([cls, tok], 0)
    pos = params[VIS + "embeddings.position_embedding"].reshape(-1, d)
    if pos.shape[0] != x.shape[0]:
        raise ValueError(f"vision: position_embedding has {pos.shape[0]} rows, image gives {x.shape[0]} tokens")
    x = x + pos
    return layer_norm(x, params, VIS + "embeddings.pre_layernorm", vcfg["layer_norm_eps"])


def vision_layer(params, vcfg, i, x):
    pre = f"{VIS}encoder.layers.{i}."
    eps = vcfg["layer_norm_eps"]
    nh = vcfg["num_attention_heads"]
    t, d = x.shape
    a = layer_norm(x, params, pre + "input_layernorm", eps)
    qkv = linear(a, params, pre + "self_attn.query_key_value")  # [T, H*3*hd], per-head [q|k|v]
    qkv = qkv.reshape(t, nh, 3, d // nh).transpose(2, 1, 0, 3)  # [3, H, T, hd]
    o = attention(qkv[0], qkv[1], qkv[2])
    x = x + linear(o, params, pre + "self_attn.dense")
    b = layer_norm(x, params, pre + "post_attention_layernorm", eps)
    act = vcfg.get("hidden_act", "quick_gelu")
    if act != "quick_gelu":
        raise ValueError(f"vision: hidden_act {act!r} not supported (quick_gelu)")
    return x + linear(quick_gelu(linear(b, params, pre + "mlp.fc1")), params, pre + "mlp.fc2")


def vision_forward(params, cfg, pixel_values, trace=None):
    """-> [1 + g*g, D] = post_layernorm(last layer). trace (dict) receives intermediates."""
    vcfg = cfg["visual_config"]["visual_model"]
    x = vision_embeddings(params, vcfg, pixel_values)
    if trace is not None:
        trace["vision_embeddings"] = x
    for i in range(vcfg["num_hidden_layers"]):
        x = vision_layer(params, vcfg, i, x)
        if trace is not None:
            trace[f"vision_layer{i}"] = x
    x = layer_norm(x, params, VIS + "post_layernorm", vcfg["layer_norm_eps"])
    if trace is not None:
        trace["vision_out"] = x
    return x


# --------------------------------------------------------------------------------------
# visual abstractor (spec §2)
# --------------------------------------------------------------------------------------

ABS = "model.visual_abstractor."
ABS_TORCH_LN_EPS = 1e-5   # norm1 / normk / norm2 use nn.LayerNorm's default eps


def sincos_1d(dim, pos):
    """MAE 1-D table: [len(pos), dim] = [sin(p*w_0..dim/2-1) | cos(...)], w_i = 10000^(-2i/dim).
    Computed in NumPy float32 throughout: this reproduces the stored buffers bit-exactly
    (a float64 table cast to float32 differs by up to 1.6e-7)."""
    omega = np.arange(dim // 2, dtype=np.float32) / np.float32(dim / 2.0)
    omega = (np.float32(1.0) / np.float32(10000) ** omega).astype(np.float32)
    pos = np.asarray(pos, np.float32).reshape(-1)
    out = pos[:, None] * omega[None, :]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size, cls_token):
    """MAE 2-D table [g*g (+1), dim], row index 1 + g*i + j for grid cell (row i, col j):
    first half encodes the column j, second half the row i (MAE's meshgrid puts w first);
    with cls_token an all-zero row is prepended."""
    gy, gx = np.meshgrid(np.arange(grid_size, dtype=np.float32),
                         np.arange(grid_size, dtype=np.float32), indexing="ij")
    emb = np.concatenate([sincos_1d(dim // 2, gx), sincos_1d(dim // 2, gy)], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros((1, dim), np.float32), emb], axis=0)
    return emb


def abstractor_pos_tables(acfg):
    """(q_pos [Q, D], k_pos [1 + g*g, D]) float32, equal to the module buffers."""
    d = acfg["hidden_size"]
    q = sincos_1d(d, np.arange(acfg["num_learnable_queries"]))
    k = sincos_2d(d, acfg["grid_size"], acfg.get("use_cls_token", True))
    return q, k


def abstractor_layer(params, acfg, i, x, v, q_pos, k_pos):
    """One crossattention layer. x [Q, D] query stream, v [Tv, Dv] vision output."""
    pre = f"{ABS}encoder.layers.{i}.crossattention."
    nh = acfg["num_attention_heads"]
    h = layer_norm(x, params, pre + "norm1", ABS_TORCH_LN_EPS)     # residual base is h, not x
    e = layer_norm(v, params, pre + "normk", ABS_TORCH_LN_EPS)
    c = np.concatenate([h, e], 0)                                   # keys/values: [queries; image]
    p = np.concatenate([q_pos, k_pos], 0).astype(x.dtype)
    q = linear(h + q_pos.astype(x.dtype), params, pre + "attention.query")
    k = linear(c + p, params, pre + "attention.key")
    vv = linear(c, params, pre + "attention.value")
    a = attention(split_heads(q, nh), split_heads(k, nh), split_heads(vv, nh))
    y = h + linear(a, params, pre + "output.out_proj")
    z = layer_norm(y, params, pre + "output.norm2", ABS_TORCH_LN_EPS)
    g = silu(linear(z, params, pre + "output.mlp.w1")) * linear(z, params, pre + "output.mlp.w3")
    g = layer_norm(g, params, pre + "output.mlp.ffn_ln", acfg["layer_norm_eps"])
    return y + linear(g, params, pre + "output.mlp.w2")


def abstractor_forward(params, cfg, vision_out, trace=None):
    """-> [Q + 1, hidden_llm] = [visual_fc(queries); vit_eos]."""
    acfg = cfg["visual_config"]["visual_abstractor"]
    q_pos, k_pos = abstractor_pos_tables(acfg)
    if k_pos.shape[0] != vision_out.shape[0]:
        raise ValueError(f"abstractor: k_pos_embed has {k_pos.shape[0]} rows, vision gives {vision_out.shape[0]}")
    x = params[ABS + "query_embeds"].reshape(acfg["num_learnable_queries"], -1)
    for i in range(acfg["num_hidden_layers"]):
        x = abstractor_layer(params, acfg, i, x, vision_out, q_pos, k_pos)
        if trace is not None:
            trace[f"abstractor_layer{i}"] = x
    out = linear(x, params, ABS + "visual_fc")
    eos = params[ABS + "vit_eos"].reshape(1, -1)
    out = np.concatenate([out, eos], 0)
    if trace is not None:
        trace["abstractor_out"] = out
    return out


def encode_image(params, cfg, pixel_values, trace=None):
    return abstractor_forward(params, cfg, vision_forward(params, cfg, pixel_values, trace), trace)


# --------------------------------------------------------------------------------------
# LLM with modality-adaptive module (spec §3)
# --------------------------------------------------------------------------------------

def splice(params, input_ids, images):
    """Replace each -200 with the next image's visual tokens. Returns (embeds [T, D], modality [T]).
    Text (incl. BOS) -> 0, visual rows -> 1. Images without a placeholder are ignored."""
    emb = params["model.embed_tokens.weight"]
    parts, mods, n = [], [], 0
    for t in input_ids:
        t = int(t)
        if t == IMAGE_TOKEN_INDEX:
            if n >= len(images):
                raise ValueError(f"splice: prompt has more than {len(images)} image placeholder(s)")
            parts.append(images[n])
            mods += [1] * images[n].shape[0]
            n += 1
        else:
            if not 0 <= t < emb.shape[0]:
                raise ValueError(f"splice: token id {t} outside vocab of {emb.shape[0]}")
            parts.append(emb[t:t + 1])
            mods.append(0)
    return np.concatenate(parts, 0), np.array(mods, np.int32)


def rope_inv_freq(head_dim, theta):
    """HF: 1 / theta^(arange(0, d, 2)/d), computed in float32."""
    e = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    return (np.float32(1.0) / (np.float32(theta) ** e)).astype(np.float32)


def apply_rope(x, positions, theta):
    """x [H, T, d], rotate_half pairing (j, j + d/2). cos/sin of float32 angles."""
    d = x.shape[-1]
    inv = rope_inv_freq(d, theta)
    ang = np.asarray(positions, np.float32)[:, None] * inv[None, :]       # [T, d/2] float32
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang).astype(x.dtype), np.sin(ang).astype(x.dtype)
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * cos + rot * sin


def _mw(params, prefix, modality, x, kind, eps=None):
    """Apply multiway module copy modality[t] to row t (0 = text, 1 = vision)."""
    out = None
    for m in np.unique(modality):
        rows = modality == m
        if kind == "rms":
            y = rms_norm(x[rows], params[f"{prefix}.multiway.{m}.weight"], eps)
        else:
            y = x[rows] @ params[f"{prefix}.multiway.{m}.weight"].T
        if out is None:
            out = np.zeros((x.shape[0], y.shape[1]), y.dtype)
        out[rows] = y
    return out


def llm_layer(params, cfg, i, x, modality, positions, cache=None):
    """One decoder layer over new tokens x [T, D]. cache: dict with 'k', 'v' [H, Tpast, d] or
    None; returns (x, (k_all, v_all)) where k_all/v_all include the new tokens (k after RoPE)."""
    pre = f"model.layers.{i}."
    eps = cfg["rms_norm_eps"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    theta = cfg.get("rope_theta", 10000.0)
    if nh % nkv:
        raise ValueError(f"llm: num_attention_heads {nh} not a multiple of num_key_value_heads {nkv}")
    if cfg.get("rope_scaling"):
        raise ValueError(f"llm: rope_scaling {cfg['rope_scaling']} not supported")
    a = _mw(params, pre + "input_layernorm", modality, x, "rms", eps)
    q = split_heads(linear(a, params, pre + "self_attn.q_proj"), nh)
    k = split_heads(_mw(params, pre + "self_attn.k_proj", modality, a, "lin"), nkv)
    v = split_heads(_mw(params, pre + "self_attn.v_proj", modality, a, "lin"), nkv)
    q = apply_rope(q, positions, theta)
    k = apply_rope(k, positions, theta)
    if cache is not None:
        k = np.concatenate([cache[0], k], 1)
        v = np.concatenate([cache[1], v], 1)
    kk, vv = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
    tq, tk = q.shape[1], k.shape[1]
    past = tk - tq
    mask = np.arange(tk)[None, :] <= (past + np.arange(tq))[:, None]      # causal
    o = attention(q, kk, vv, mask)
    x = x + linear(o, params, pre + "self_attn.o_proj")
    b = _mw(params, pre + "post_attention_layernorm", modality, x, "rms", eps)
    g = silu(linear(b, params, pre + "mlp.gate_proj")) * linear(b, params, pre + "mlp.up_proj")
    return x + linear(g, params, pre + "mlp.down_proj"), (k, v)


def llm_forward(params, cfg, x, modality, positions, cache=None, trace=None):
    """x [T, D] input embeddings -> (logits [T, vocab], new cache list[(k, v)] per layer)."""
    new_cache = []
    for i in range(cfg["num_hidden_layers"]):
        x, kv = llm_layer(params, cfg, i, x, modality, positions, None if cache is None else cache[i])
        new_cache.append(kv)
        if trace is not None:
            trace[f"llm_layer{i}"] = x
    h = rms_norm(x, params["model.norm.weight"], cfg["rms_norm_eps"])
    logits = h @ params["lm_head.weight"].T
    if trace is not None:
        trace["llm_final_norm"] = h
    return logits, new_cache


def generate_greedy(params, cfg, input_ids, images=(), steps=16, trace=None, stop_on_eos=False):
    """Prefill + greedy decode through the KV cache. Step 0 = argmax of the last prefill logits;
    step k>0 feeds token k-1 (modality 0) at position T+k-1. Returns list of token ids.
    trace gets llm_input_embeds, modality_indicators, llm_layerN, llm_final_norm, prefill_logits,
    kv_layerN_{k,v}, decode_logits, decode_positions, decode_tokens."""
    x, mod = splice(params, input_ids, list(images))
    t = x.shape[0]
    if trace is not None:
        trace["llm_input_embeds"] = x
        trace["modality_indicators"] = mod
    logits, cache = llm_forward(params, cfg, x, mod, np.arange(t), trace=trace)
    if trace is not None:
        trace["prefill_logits"] = logits
        for i, (k, v) in enumerate(cache):
            trace[f"kv_layer{i}_k"], trace[f"kv_layer{i}_v"] = k, v
    emb = params["model.embed_tokens.weight"]
    step_logits, positions, tokens = [logits[-1]], [t - 1], []
    for s in range(steps):
        tok = int(np.argmax(step_logits[-1]))
        tokens.append(tok)
        if s == steps - 1 or (stop_on_eos and tok == cfg.get("eos_token_id", 2)):
            break
        pos = t + s
        lg, cache = llm_forward(params, cfg, emb[tok:tok + 1], np.zeros(1, np.int32), np.array([pos]), cache)
        step_logits.append(lg[-1])
        positions.append(pos)
    if trace is not None:
        trace["decode_logits"] = np.stack(step_logits)
        trace["decode_positions"] = np.array(positions, np.int32)
        trace["decode_tokens"] = np.array(tokens, np.int32)
    return tokens


# --------------------------------------------------------------------------------------
# prompt (spec §5); tokenisation (spec §7) is in sp_ref.py (needs sentencepiece)
# --------------------------------------------------------------------------------------

def render_single_turn(question, with_image=True):
    return "USER: " + (IMAGE_PLACEHOLDER if with_image else "") + question + " ASSISTANT:"


def run_all(params, cfg, input_ids, pixel_values=None, steps=16):
    """Full pipeline; returns the trace dict with every intermediate (oracle file names)."""
    trace = {}
    images = []
    if pixel_values is not None:
        trace["pixel_values"] = pixel_values
        images.append(encode_image(params, cfg, pixel_values.astype(params["lm_head.weight"].dtype), trace))
    generate_greedy(params, cfg, np.asarray(input_ids), images, steps, trace)
    return trace
