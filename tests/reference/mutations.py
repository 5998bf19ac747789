#!/usr/bin/python3
"""Which spec facts does the oracle actually pin down? Mutation test of owl2_ref.

    /usr/bin/python3 tests/reference/mutations.py [--oracle DIR]

Each mutation swaps one fact for a plausible wrong alternative (by editing the source text of
one owl2_ref function, or the config, or one helper), reruns check_oracle.run_checks in
float32, and reports the worst relative diff. A mutation that still passes (ratio <= 1e-4) is
a fact the oracle cannot distinguish at the test tolerance. Exit 1 if any mutation expected
to be caught ("must") slipped through, or if a source edit no longer applies.
Prints "N passed, N failed" (passed = mutation behaved as expected).
"""

import argparse
import contextlib
import inspect
import io
import math
import sys
import textwrap

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import check_oracle as co  # noqa: E402
import owl2_ref as ref  # noqa: E402


def _rope_adjacent(x, positions, theta):
    """Wrong RoPE: pairs (2j, 2j+1) instead of (j, j + d/2)."""
    d = x.shape[-1]
    inv = ref.rope_inv_freq(d, theta)
    ang = np.asarray(positions, np.float32)[:, None] * inv[None, :]
    cos, sin = np.cos(ang).astype(x.dtype), np.sin(ang).astype(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x1 * cos + x0 * sin
    return out


_erf = np.vectorize(math.erf)


def _gelu(x):
    return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def _set(path, value):
    def hook(cfg):
        d = cfg
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return hook


# (name, must_fail, kind, args). kind: "src" = [(function, old, new), ...]; "cfg" = hook;
# "attr" = (attribute, value) on owl2_ref.
MUTATIONS = [
    ("vision: fused QKV as [3, H, hd] instead of per-head [H, 3, hd]", True, "src",
     [("vision_layer", ".reshape(t, nh, 3, d // nh).transpose(2, 1, 0, 3)",
       ".reshape(t, 3, nh, d // nh).transpose(1, 2, 0, 3)")]),
    ("vision: exact GELU instead of QuickGELU", True, "src",
     [("vision_layer", "quick_gelu(linear(b", "_gelu(linear(b")]),
    ("vision: LayerNorm eps 1e-5 instead of 1e-6", True, "cfg",
     _set(("visual_config", "visual_model", "layer_norm_eps"), 1e-5)),
    ("vision: no post_layernorm", True, "src",
     [("vision_forward", 'x = layer_norm(x, params, VIS + "post_layernorm", vcfg["layer_norm_eps"])', "pass")]),
    ("vision: no pre_layernorm", True, "src",
     [("vision_embeddings", 'return layer_norm(x, params, VIS + "embeddings.pre_layernorm", vcfg["layer_norm_eps"])',
       "return x")]),
    ("abstractor: residual base X instead of norm1(X)", True, "src",
     [("abstractor_layer", "y = h + linear(a", "y = x + linear(a")]),
    ("abstractor: keys/values = image only (no queries)", True, "src",
     [("abstractor_layer", "c = np.concatenate([h, e], 0)", "c = e"),
      ("abstractor_layer", "p = np.concatenate([q_pos, k_pos], 0)", "p = k_pos")]),
    ("abstractor: un-normalised X in keys/values", True, "src",
     [("abstractor_layer", "c = np.concatenate([h, e], 0)", "c = np.concatenate([x, e], 0)")]),
    ("abstractor: position table also added to values", True, "src",
     [("abstractor_layer", "vv = linear(c, ", "vv = linear(c + p, ")]),
    ("abstractor: no q_pos on the query input", True, "src",
     [("abstractor_layer", "q = linear(h + q_pos.astype(x.dtype)", "q = linear(h")]),
    ("abstractor: 2-D table row-first halves", True, "src",
     [("sincos_2d", "sincos_1d(dim // 2, gx), sincos_1d(dim // 2, gy)",
       "sincos_1d(dim // 2, gy), sincos_1d(dim // 2, gx)")]),
    ("abstractor: CLS zero row appended instead of prepended", True, "src",
     [("sincos_2d", "np.concatenate([np.zeros((1, dim), np.float32), emb], axis=0)",
       "np.concatenate([emb, np.zeros((1, dim), np.float32)], axis=0)")]),
    ("abstractor: no ffn_ln", True, "src",
     [("abstractor_layer", 'g = layer_norm(g, params, pre + "output.mlp.ffn_ln", acfg["layer_norm_eps"])', "pass")]),
    ("abstractor: norm1/normk/norm2 eps 1e-6 instead of 1e-5", True, "attr", ("ABS_TORCH_LN_EPS", 1e-6)),
    ("abstractor: ffn_ln eps 1e-5 instead of 1e-6", True, "src",
     [("abstractor_layer", 'acfg["layer_norm_eps"])', "1e-5)")]),
    ("llm: RoPE adjacent pairs instead of rotate_half", True, "attr", ("apply_rope", _rope_adjacent)),
    ("llm: RMSNorm eps 1e-5 instead of 1e-6", True, "cfg", _set(("rms_norm_eps",), 1e-5)),
    ("llm: text copies of norms/K/V for every token", True, "src",
     [("_mw", 'f"{prefix}.multiway.{m}.weight"', 'f"{prefix}.multiway.0.weight"'),
      ("_mw", 'f"{prefix}.multiway.{m}.weight"', 'f"{prefix}.multiway.0.weight"')]),
    ("llm: vit_eos row marked text (modality 0)", True, "src",
     [("splice", "mods += [1] * images[n].shape[0]", "mods += [1] * (images[n].shape[0] - 1) + [0]")]),
    ("llm: decode tokens use vision copies (modality 1)", True, "src",
     [("generate_greedy", "np.zeros(1, np.int32)", "np.ones(1, np.int32)")]),
    ("llm: decode position off by one (T + k)", True, "src",
     [("generate_greedy", "pos = t + s", "pos = t + s + 1")]),
    ("image: stretch instead of pad", True, "cfg", _set(("image_aspect_ratio",), "stretch")),
    ("image: bilinear instead of bicubic", True, "cfg", _set(("_preprocessor", "resample"), 2)),
]


def apply_src(edits):
    """Re-define the named owl2_ref functions with text edits; returns the originals."""
    saved, sources = {}, {}
    for fn, old, new in edits:
        if fn not in sources:
            saved[fn] = getattr(ref, fn)
            sources[fn] = textwrap.dedent(inspect.getsource(saved[fn]))
        if old not in sources[fn]:
            raise RuntimeError(f"mutation edit no longer applies: {fn}: {old!r}")
        sources[fn] = sources[fn].replace(old, new, 1)
    ref.__dict__["_gelu"] = _gelu
    for src in sources.values():
        exec(compile(src, ref.__file__, "exec"), ref.__dict__)
    return saved


def run_mutations(oracle):
    """Yields (name, ok, detail) per mutation; ok = caught, or allowed to slip (must_fail False)."""
    for name, must_fail, kind, arg in MUTATIONS:
        saved, hook = {}, None
        try:
            if kind == "src":
                saved = apply_src(arg)
            elif kind == "attr":
                saved = {arg[0]: getattr(ref, arg[0])}
                setattr(ref, arg[0], arg[1])
            else:
                hook = arg
            with contextlib.redirect_stdout(io.StringIO()):
                ck = co.run_checks(oracle, np.float32, False, hook)
        except RuntimeError as e:
            yield name, False, str(e)
            continue
        finally:
            for k, v in saved.items():
                setattr(ref, k, v)
        worst = max(ck.ratios.values()) if ck.ratios else float("nan")
        caught = ck.failed > 0
        yield name, caught or not must_fail, \
            f"{'caught' if caught else 'NOT caught'}, {ck.failed} checks fail, worst ratio {worst:.2e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", default=co.DEFAULT_ORACLE)
    a = ap.parse_args()
    passed = failed = 0
    for name, ok, detail in run_mutations(a.oracle):
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
