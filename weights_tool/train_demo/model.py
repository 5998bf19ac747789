"""model — mPLUG-Owl2 (LLaMA-2 variant) in PyTorch, for training owlet's demo model.

A line-for-line port of tests/reference/owl2_ref.py (the NumPy reference verified against the
original implementation), batched. The module tree is laid out so that `state_dict()` keys and
shapes are exactly the released checkpoint's (`model.layers.0.self_attn.k_proj.multiway.1.weight`,
`model.vision_model.encoder.layers.0.self_attn.query_key_value.weight`, `lm_head.weight`, ...),
plus the abstractor's `attention.q_pos_embed` / `k_pos_embed` tables (persistent buffers, computed
in float32 exactly like owl2_ref, as in oracle A; owlet-convert checks and drops them).
check_port.py loads oracle A into it and compares logits.

Shapes: activations are [batch, tokens, features]. Every size comes from the config dict
(config.json as loaded by owl2_ref.load_config).
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "tests", "reference")
sys.dont_write_bytecode = True
sys.path.insert(0, REF)
import owl2_ref as ref  # noqa: E402

IMAGE_TOKEN_INDEX = ref.IMAGE_TOKEN_INDEX
ABS_TORCH_LN_EPS = ref.ABS_TORCH_LN_EPS


def attention(q, k, v, mask=None):
    """q [B, H, Tq, d], k/v [B, H, Tk, d] -> [B, Tq, H*d]; mask broadcastable bool (True = keep)."""
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    o = torch.softmax(s, -1) @ v
    b, h, t, d = o.shape
    return o.transpose(1, 2).reshape(b, t, h * d)


def split_heads(x, n):
    """[B, T, H*d] -> [B, H, T, d]"""
    b, t, _ = x.shape
    return x.reshape(b, t, n, -1).transpose(1, 2)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


# ---------------------------------------------------------------------------------- vision tower

class VisionEmbeddings(nn.Module):
    def __init__(self, v):
        super().__init__()
        d, p = v["hidden_size"], v["patch_size"]
        g = v["image_size"] // p
        self.patch = p
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.patch_embed = nn.Conv2d(v.get("num_channels", 3), d, p, stride=p, bias=False)
        self.position_embedding = nn.Parameter(torch.zeros(1, 1 + g * g, d))
        self.pre_layernorm = nn.LayerNorm(d, eps=v["layer_norm_eps"])

    def forward(self, pix):                                   # [B, C, H, W]
        x = self.patch_embed(pix).flatten(2).transpose(1, 2)  # [B, g*g, D] raster order
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        return self.pre_layernorm(x + self.position_embedding)


class VisionAttention(nn.Module):
    def __init__(self, v):
        super().__init__()
        d = v["hidden_size"]
        self.nh = v["num_attention_heads"]
        self.query_key_value = nn.Linear(d, 3 * d)            # out feature h*3*hd + t*hd + i
        self.dense = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.query_key_value(x).reshape(b, t, self.nh, 3, d // self.nh).permute(3, 0, 2, 1, 4)
        return self.dense(attention(qkv[0], qkv[1], qkv[2]))


class VisionMLP(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.fc1 = nn.Linear(v["hidden_size"], v["intermediate_size"])
        self.fc2 = nn.Linear(v["intermediate_size"], v["hidden_size"])

    def forward(self, x):
        return self.fc2(quick_gelu(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, v):
        super().__init__()
        d, eps = v["hidden_size"], v["layer_norm_eps"]
        self.input_layernorm = nn.LayerNorm(d, eps=eps)
        self.self_attn = VisionAttention(v)
        self.post_attention_layernorm = nn.LayerNorm(d, eps=eps)
        self.mlp = VisionMLP(v)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class VisionEncoder(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.layers = nn.ModuleList([VisionLayer(v) for _ in range(v["num_hidden_layers"])])


class VisionModel(nn.Module):
    def __init__(self, v):
        super().__init__()
        if v.get("hidden_act", "quick_gelu") != "quick_gelu":
            raise ValueError(f"vision: hidden_act {v['hidden_act']!r} not supported (quick_gelu)")
        self.embeddings = VisionEmbeddings(v)
        self.encoder = VisionEncoder(v)
        self.post_layernorm = nn.LayerNorm(v["hidden_size"], eps=v["layer_norm_eps"])

    def forward(self, pix):
        x = self.embeddings(pix)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


# ------------------------------------------------------------------------------ visual abstractor

class AbsAttention(nn.Module):
    def __init__(self, a, q_pos, k_pos):
        super().__init__()
        d, de = a["hidden_size"], a["encoder_hidden_size"]
        if d != de:
            raise ValueError(f"abstractor: hidden_size {d} != encoder_hidden_size {de} not supported")
        self.nh = a["num_attention_heads"]
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.register_buffer("q_pos_embed", torch.from_numpy(q_pos.copy()))
        self.register_buffer("k_pos_embed", torch.from_numpy(k_pos.copy()))

    def forward(self, h, e):
        """h = norm1(queries) [B, Q, D], e = normk(image) [B, Tv, D]."""
        c = torch.cat([h, e], 1)                              # keys/values: [queries; image]
        p = torch.cat([self.q_pos_embed, self.k_pos_embed], 0)
        q = self.query(h + self.q_pos_embed)
        k = self.key(c + p)
        v = self.value(c)
        return attention(split_heads(q, self.nh), split_heads(k, self.nh), split_heads(v, self.nh))


class AbsMLP(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, f = a["hidden_size"], a["intermediate_size"]
        self.w1 = nn.Linear(d, f)
        self.w2 = nn.Linear(f, d)
        self.w3 = nn.Linear(d, f)
        self.ffn_ln = nn.LayerNorm(f, eps=a["layer_norm_eps"])

    def forward(self, z):
        return self.w2(self.ffn_ln(F.silu(self.w1(z)) * self.w3(z)))


class AbsOutput(nn.Module):
    def __init__(self, a):
        super().__init__()
        d = a["hidden_size"]
        self.out_proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=ABS_TORCH_LN_EPS)
        self.mlp = AbsMLP(a)


class CrossAttention(nn.Module):
    def __init__(self, a, q_pos, k_pos):
        super().__init__()
        d = a["hidden_size"]
        self.norm1 = nn.LayerNorm(d, eps=ABS_TORCH_LN_EPS)
        self.normk = nn.LayerNorm(d, eps=ABS_TORCH_LN_EPS)
        self.attention = AbsAttention(a, q_pos, k_pos)
        self.output = AbsOutput(a)

    def forward(self, x, v):
        h = self.norm1(x)                                     # residual base is norm1(x), not x
        y = h + self.output.out_proj(self.attention(h, self.normk(v)))
        return y + self.output.mlp(self.output.norm2(y))


class AbsLayer(nn.Module):
    def __init__(self, a, q_pos, k_pos):
        super().__init__()
        self.crossattention = CrossAttention(a, q_pos, k_pos)


class AbsEncoder(nn.Module):
    def __init__(self, a, q_pos, k_pos):
        super().__init__()
        self.layers = nn.ModuleList([AbsLayer(a, q_pos, k_pos) for _ in range(a["num_hidden_layers"])])


class VisualAbstractor(nn.Module):
    def __init__(self, a, llm_hidden):
        super().__init__()
        q_pos, k_pos = ref.abstractor_pos_tables(a)
        self.query_embeds = nn.Parameter(torch.zeros(1, a["num_learnable_queries"], a["hidden_size"]))
        self.encoder = AbsEncoder(a, q_pos, k_pos)
        self.visual_fc = nn.Linear(a["hidden_size"], llm_hidden)
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, llm_hidden))

    def forward(self, v):                                     # [B, Tv, Dv] -> [B, Q+1, D_llm]
        x = self.query_embeds.expand(v.shape[0], -1, -1)
        for layer in self.encoder.layers:
            x = layer.crossattention(x, v)
        out = self.visual_fc(x)
        return torch.cat([out, self.vit_eos.expand(v.shape[0], -1, -1)], 1)


# ------------------------------------------------------------------- modality-adaptive LLaMA

class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class Multiway(nn.Module):
    """Copy 0 for text rows, copy 1 for visual rows (per-token choice; both computed, then selected)."""

    def __init__(self, make):
        super().__init__()
        self.multiway = nn.ModuleList([make(), make()])

    def forward(self, x, is_img):                             # is_img [B, T] bool
        return torch.where(is_img[..., None], self.multiway[1](x), self.multiway[0](x))


def rope_tables(head_dim, theta, positions):
    """cos, sin [B, 1, T, d] for rotate_half RoPE; inverse frequencies and angles in float32
    exactly as owl2_ref (positions [B, T] long)."""
    inv = torch.from_numpy(ref.rope_inv_freq(head_dim, theta))
    ang = positions.to(torch.float32)[..., None] * inv
    ang = torch.cat([ang, ang], -1)[:, None]
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * cos + rot * sin


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, nh = c["hidden_size"], c["num_attention_heads"]
        nkv = c.get("num_key_value_heads", nh)
        if nh % nkv:
            raise ValueError(f"llm: num_attention_heads {nh} not a multiple of num_key_value_heads {nkv}")
        self.nh, self.nkv = nh, nkv
        kvd = d // nh * nkv
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = Multiway(lambda: nn.Linear(d, kvd, bias=False))
        self.v_proj = Multiway(lambda: nn.Linear(d, kvd, bias=False))
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, a, is_img, cos, sin, mask):
        q = apply_rope(split_heads(self.q_proj(a), self.nh), cos, sin)
        k = apply_rope(split_heads(self.k_proj(a, is_img), self.nkv), cos, sin)
        v = split_heads(self.v_proj(a, is_img), self.nkv)
        if self.nkv != self.nh:
            k = k.repeat_interleave(self.nh // self.nkv, 1)
            v = v.repeat_interleave(self.nh // self.nkv, 1)
        return self.o_proj(attention(q, k, v, mask))


class LlamaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, eps = c["hidden_size"], c["rms_norm_eps"]
        self.self_attn = LlamaAttention(c)
        self.mlp = LlamaMLP(c)
        self.input_layernorm = Multiway(lambda: RMSNorm(d, eps))
        self.post_attention_layernorm = Multiway(lambda: RMSNorm(d, eps))

    def forward(self, x, is_img, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x, is_img), is_img, cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x, is_img))


class Owl2Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c.get("rope_scaling"):
            raise ValueError(f"llm: rope_scaling {c['rope_scaling']} not supported")
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        vc = c["visual_config"]
        self.vision_model = VisionModel(vc["visual_model"])
        self.visual_abstractor = VisualAbstractor(vc["visual_abstractor"], c["hidden_size"])


class Owl2(nn.Module):
    """MPLUGOwl2LlamaForCausalLM-shaped module (state_dict = the released checkpoint's keys)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Owl2Inner(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
        self.theta = cfg.get("rope_theta", 10000.0)

    def encode_images(self, pix):
        """pixel_values [B, 3, H, W] -> visual tokens [B, Q+1, D]."""
        return self.model.visual_abstractor(self.model.vision_model(pix))

    def splice(self, ids, images):
        """ids [B, T] long with IMAGE_TOKEN_INDEX at most once per row, images [B, Q+1, D] (row b's
        image for row b). Returns (embeds [B, T', D], is_img [B, T'] bool) with T' = T + Q
        (every row must hold exactly one placeholder, at the same index: fixed chat prefix)."""
        b, t = ids.shape
        where = (ids == IMAGE_TOKEN_INDEX).nonzero()
        if where.shape[0] != b or not bool((where[:, 1] == where[0, 1]).all()):
            raise ValueError("splice: every row needs exactly one image placeholder at the same index")
        j = int(where[0, 1])
        emb = self.model.embed_tokens(ids.clamp(min=0))
        x = torch.cat([emb[:, :j], images, emb[:, j + 1:]], 1)
        is_img = torch.zeros(x.shape[:2], dtype=torch.bool)
        is_img[:, j:j + images.shape[1]] = True
        return x, is_img

    def hidden(self, x, is_img, positions=None):
        """Input embeddings [B, T, D] -> final-norm hidden states [B, T, D] (causal, no cache)."""
        b, t, _ = x.shape
        if positions is None:
            positions = torch.arange(t)[None].expand(b, t)
        cos, sin = rope_tables(self.head_dim, self.theta, positions)
        mask = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        for layer in self.model.layers:
            x = layer(x, is_img, cos, sin, mask)
        return self.model.norm(x)

    def logits(self, ids, pix=None):
        """Full-sequence logits [B, T', vocab] (pix None: text only, no placeholder allowed)."""
        if pix is None:
            x = self.model.embed_tokens(ids)
            is_img = torch.zeros(ids.shape, dtype=torch.bool)
        else:
            x, is_img = self.splice(ids, self.encode_images(pix))
        return self.lm_head(self.hidden(x, is_img))


def load_state(model, params):
    """Load a {key: np.ndarray} dict (owl2_ref.load_safetensors) strictly into the module."""
    sd = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in params.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    unexpected = [k for k in unexpected if not k.endswith("rotary_emb.inv_freq")]
    missing = [k for k in missing if not k.endswith(("q_pos_embed", "k_pos_embed"))]
    if missing or unexpected:
        raise ValueError(f"load_state: missing {missing[:5]} unexpected {unexpected[:5]}")
