#!/usr/bin/python3
"""Write golden intermediate tensors with the NumPy reference (owl2_ref), oracle-style.

    /usr/bin/python3 tests/reference/make_goldens.py --model DIR --out DIR
        [--image PNG] [--ids 1,617,950,899,-200,... | --ids-file input_ids.i32 | --prompt TEXT]
        [--weights FILE.safetensors] [--mode pad|stretch|crop] [--steps 16] [--f64]

--model: folder with config.json, preprocessor_config.json, model.safetensors (and
tokenizer.model if --prompt is used). --weights overrides the tensors (e.g. dequantized
weights, to make goldens for a quantized model). --prompt is tokenised with sentencepiece by
the split-on-<|image|> rule; its text may contain one <|image|> per --image.
Writes into --out the same file names as the oracle (pixel_values.f32, vision_embeddings.f32,
vision_layerN.f32, vision_out.f32, abstractor_layerN.f32, abstractor_out.f32,
llm_input_embeds.f32, llm_layerN.f32, llm_final_norm.f32, prefill_logits.f32,
kv_layerN_{k,v}.f32, decode_{logits,tokens,positions}, input_ids.i32, modality_indicators.i32,
resized_u8.i32, expand2square.png) as raw little-endian C-order arrays, plus manifest.json
listing each file's shape/dtype and facts (ids, greedy tokens, top1-top2 margins).
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import owl2_ref as ref  # noqa: E402

MEANING = {
    "pixel_values": "CLIP-processed image (CHW), model input",
    "resized_u8": "uint8 pixels (HWC, RGB) after PIL bicubic resize + center crop",
    "input_ids": "prompt token ids (-200 = image placeholder)",
    "modality_indicators": "per position of the expanded sequence: 0 text, 1 image",
    "llm_input_embeds": "LLM input embeddings after splicing [T, hidden]",
    "vision_embeddings": "[cls; patches] + position_embedding, after pre_layernorm",
    "vision_layer": "vision encoder layer N output",
    "vision_out": "post_layernorm(last vision layer)",
    "abstractor_layer": "visual abstractor layer N output (query states)",
    "llm_layer": "hidden state after LLM decoder layer N [T, hidden]",
    "abstractor_out": "[visual_fc(queries); vit_eos]",
    "llm_final_norm": "final RMSNorm output [T, hidden]",
    "prefill_logits": "logits for every prefill position [T, vocab]",
    "decode_tokens": "greedy tokens (step 0 = argmax of last prefill logits)",
    "decode_logits": "logits of each greedy step [steps, vocab]",
    "decode_positions": "RoPE position of the token whose logits are in decode_logits[k]",
}


def write_goldens(out, cfg, params, input_ids, image=None, mode="pad", steps=16):
    """Runs the reference and writes every intermediate into `out`. Returns the manifest dict."""
    os.makedirs(out, exist_ok=True)
    pixel, extra = None, {}
    if image is not None:
        pre = ref.preprocess_image(image, cfg["_preprocessor"], mode)
        pixel = pre["pixel_values"]
        extra["resized_u8"] = pre["resized_u8"].astype(np.int32)
        pre["square"].save(os.path.join(out, "expand2square.png" if mode == "pad" else "square.png"))
    trace = ref.run_all(params, cfg, input_ids, pixel, steps)
    trace.update(extra)
    trace["input_ids"] = np.asarray(input_ids, np.int32)
    files = []
    for name, arr in sorted(trace.items()):
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            arr, ext, dt = arr.astype("<f4"), "f32", "float32"
        else:
            arr, ext, dt = arr.astype("<i4"), "i32", "int32"
        fname = f"{name}.{ext}"
        arr.tofile(os.path.join(out, fname))
        if name.startswith("kv_layer"):
            meaning = "KV cache after prefill: " + ("keys after RoPE" if name.endswith("_k") else "values") \
                + " [kv_heads, T, head_dim]"
        else:
            meaning = MEANING.get(name, MEANING.get(name.rstrip("0123456789"), name))
        files.append({"file": fname, "shape": list(arr.shape), "dtype": dt, "meaning": meaning})
    lg = np.sort(trace["decode_logits"].astype(np.float64), axis=1)
    margins = (lg[:, -1] - lg[:, -2]).tolist()
    manifest = {
        "generator": "tests/reference/make_goldens.py (owl2_ref, NumPy "
                     f"{'float64' if params['lm_head.weight'].dtype == np.float64 else 'float32'})",
        "image_mode": mode if image is not None else None,
        "files": files,
        "facts": {"input_ids": [int(i) for i in input_ids],
                  "decode_tokens": trace["decode_tokens"].tolist(),
                  "decode_top1_top2_margin": margins,
                  "decode_min_top1_top2_margin": min(margins)},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description="write golden intermediates with owl2_ref")
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--image")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--ids", help="comma-separated token ids, -200 for the image")
    g.add_argument("--ids-file", help="raw int32 file of token ids")
    g.add_argument("--prompt", help="text with <|image|>, tokenised with MODEL/tokenizer.model")
    ap.add_argument("--weights", help="safetensors file overriding MODEL/model.safetensors")
    ap.add_argument("--mode", choices=("pad", "stretch", "crop"),
                    help="image squaring (default: config image_aspect_ratio, else pad)")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--f64", action="store_true", help="compute in float64")
    a = ap.parse_args(argv)
    dtype = np.float64 if a.f64 else np.float32
    cfg = ref.load_config(a.model)
    params = ref.load_safetensors(a.weights or os.path.join(a.model, "model.safetensors"))
    params = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in params.items()}
    if a.ids is not None:
        ids = [int(s) for s in a.ids.split(",") if s.strip()]
    elif a.ids_file is not None:
        ids = np.fromfile(a.ids_file, dtype="<i4").tolist()
    else:
        import sp_ref
        tok = sp_ref.Tokenizer(os.path.join(a.model, "tokenizer.model"), cfg.get("bos_token_id", 1))
        ids = tok.encode_prompt(a.prompt)
    n_img = sum(1 for i in ids if i == ref.IMAGE_TOKEN_INDEX)
    if n_img != (1 if a.image else 0):
        ap.error(f"ids have {n_img} image placeholder(s) but {1 if a.image else 0} image given")
    image = None
    if a.image:
        from PIL import Image
        image = Image.open(a.image)
    mode = a.mode or cfg.get("image_aspect_ratio") or "pad"
    m = write_goldens(a.out, cfg, params, ids, image, mode, a.steps)
    print(f"wrote {len(m['files'])} files to {a.out}; greedy tokens {m['facts']['decode_tokens']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, KeyError) as e:
        print(f"{os.path.basename(sys.argv[0])}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
