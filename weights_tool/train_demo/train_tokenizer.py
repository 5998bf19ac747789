#!/usr/bin/python3
"""train_tokenizer — SentencePiece BPE for the demo model, with LLaMA's trainer settings.

model_type=bpe, byte_fallback (pieces <0x00>..<0xFF> at ids 3..258), split_digits,
add_dummy_prefix, remove_extra_whitespaces=false, identity normalisation, unk 0 / bos 1 / eos 2,
no pad piece, character_coverage 1.0, whitespace-only pieces allowed (so the trailing space of
"USER: " is the standalone piece "▁", as in LLaMA).
Corpus: every question/answer phrasing of shapes.py inside the chat template (repeated so
its words become whole pieces), plus generic English from /usr/share/common-licenses (the
same corpus oracle A's tokenizer used) so that ordinary questions tokenise into words, not bytes.

    /usr/bin/python3 weights_tool/train_demo/train_tokenizer.py --out DIR [--vocab 1000]
writes DIR/tokenizer.model (+ tokenizer.vocab) and prints a few encodings.
"""

import argparse
import io
import os
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import shapes  # noqa: E402

LICENSES = "/usr/share/common-licenses"
LICENSE_FILES = ("Apache-2.0", "BSD", "GPL-3", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "Artistic")
EXTRA = [
    "The quick brown fox jumps over the lazy dog 0123456789.",
    "What is in this image? Can you tell me what you see in the picture?",
    "Is there a cat in the photo? What is the person doing? What time is it?",
    "Please describe the drawing in one sentence. Thank you!",
    "Hello, how are you today? I am fine, thanks.",
]


def corpus_lines():
    lines = []
    t = shapes.template_text()
    qs = [x for x in t if x.endswith("?") or x.startswith(("Describe", "Count"))]
    ans = [x for x in t if not (x.endswith("?") or x.startswith(("Describe", "Count")))]
    for i, q in enumerate(qs):
        a = ans[i % len(ans)]
        lines.append(f"USER: {q} ASSISTANT: {a}")
    lines = lines * 20 + t * 20 + EXTRA * 20
    for name in LICENSE_FILES:
        path = os.path.join(LICENSES, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                lines += [ln.strip() for ln in f if ln.strip()]
    return lines


def train(out_dir, vocab):
    os.makedirs(out_dir, exist_ok=True)
    text = "\n".join(corpus_lines()) + "\n"
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()), model_writer=model,
        model_type="bpe", vocab_size=vocab, byte_fallback=True, split_digits=True,
        add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        allow_whitespace_only_pieces=True, split_by_unicode_script=True, split_by_number=True,
        max_sentencepiece_length=16, num_threads=1, minloglevel=2,
        input_sentence_size=0, shuffle_input_sentence=False)
    path = os.path.join(out_dir, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=1500)
    a = ap.parse_args(argv)
    path = train(a.out, a.vocab)
    sp = spm.SentencePieceProcessor(model_file=path)
    assert sp.get_piece_size() == a.vocab, sp.get_piece_size()
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert sp.id_to_piece(3) == "<0x00>" and sp.id_to_piece(258) == "<0xFF>", (sp.id_to_piece(3), sp.id_to_piece(258))
    for s in ("USER: ", "What colour is the red square? ASSISTANT:", "A red circle and a blue square.",
              "Top left.", "What is the capital of France? 2024"):
        print(repr(s), "->", sp.encode(s, out_type=str))
    print(f"wrote {path} ({sp.get_piece_size()} pieces)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
