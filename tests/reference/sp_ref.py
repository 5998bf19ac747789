"""sp_ref — prompt tokenisation reference for mPLUG-Owl2 on top of Debian's sentencepiece.

Reproduces what the original pipeline (LlamaTokenizer, transformers 4.32, legacy=false as in
the oracle's tokenizer_config.json) produces, verified by check_oracle.py against
tokenization.json (hf_ids of 40 strings) and multiturn_input_ids.i32:
- special-token strings in the text ("<s>", "</s>", "<unk>") become their ids;
- the text before the first special token gets SentencePiece's dummy-prefix space;
- text right after a special token gets NO dummy prefix (legacy=false): "</s>USER" ->
  "</s>", "U", "S", "ER" ... (with legacy=true it would be "</s>", "▁USER");
- prompts are split on <|image|>; each chunk is tokenised on its own with BOS, the first
  chunk's BOS is kept and the others dropped, chunks are joined by -200 (so text after an
  image starts with a dummy-prefix space).
No protobuf module is needed: the no-dummy-prefix model is made by editing one varint of the
serialized ModelProto (normalizer_spec.add_dummy_prefix, field 3 of field 3).
"""

import sentencepiece as spm

from owl2_ref import IMAGE_PLACEHOLDER, IMAGE_TOKEN_INDEX


def _varint(buf, i):
    shift = val = 0
    while True:
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return val, i


def _enc_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _fields(buf):
    """Yields (field, wire type, raw bytes of the whole field incl. tag, payload for LEN)."""
    i = 0
    while i < len(buf):
        start = i
        tag, i = _varint(buf, i)
        field, wt = tag >> 3, tag & 7
        payload = None
        if wt == 0:
            _, i = _varint(buf, i)
        elif wt == 1:
            i += 8
        elif wt == 2:
            n, i = _varint(buf, i)
            payload = buf[i:i + n]
            i += n
        elif wt == 5:
            i += 4
        else:
            raise ValueError(f"sentencepiece model: unsupported wire type {wt} at byte {start}")
        if i > len(buf):
            raise ValueError(f"sentencepiece model: field {field} runs past the end ({i} > {len(buf)})")
        yield field, wt, buf[start:i], payload


def without_dummy_prefix(model_bytes):
    """Serialized ModelProto with normalizer_spec.add_dummy_prefix = false."""
    out, seen = bytearray(), False
    for field, wt, raw, payload in _fields(model_bytes):
        if field == 3 and wt == 2:
            seen = True
            norm = bytearray()
            for f2, _, raw2, _ in _fields(payload):
                if f2 != 3:
                    norm += raw2
            norm += bytes([3 << 3 | 0, 0])
            out += bytes([3 << 3 | 2]) + _enc_varint(len(norm)) + norm
        else:
            out += raw
    if not seen:
        out += bytes([3 << 3 | 2, 2, 3 << 3 | 0, 0])
    return bytes(out)


class Tokenizer:
    SPECIALS = ("<unk>", "<s>", "</s>")

    def __init__(self, model_path, bos_id=1, legacy=False):
        with open(model_path, "rb") as f:
            data = f.read()
        self.sp = spm.SentencePieceProcessor(model_proto=data)
        self.sp_np = spm.SentencePieceProcessor(model_proto=without_dummy_prefix(data))
        self.bos_id = bos_id
        self.legacy = legacy  # True: text after a special token gets the dummy prefix too
        self.special_ids = {s: self.sp.piece_to_id(s) for s in self.SPECIALS}

    def encode(self, text, add_bos=True):
        """Like LlamaTokenizer(text).input_ids (transformers 4.32) with this legacy flag;
        never raises on '' (the original does with legacy=false)."""
        ids = [self.bos_id] if add_bos else []
        after_special = False
        i = 0
        while i <= len(text):
            hits = [(text.find(s, i), s) for s in self.SPECIALS]
            hits = [(p, s) for p, s in hits if p >= 0]
            p, s = min(hits) if hits else (len(text), None)
            seg = text[i:p]
            if seg:
                ids += (self.sp_np if after_special and not self.legacy else self.sp).encode(seg)
            if s is None:
                break
            ids.append(self.special_ids[s])
            after_special = True
            i = p + len(s)
        return ids

    def encode_prompt(self, prompt):
        """Split on <|image|>, BOS per chunk, keep only the first BOS, join with -200."""
        chunks = [self.encode(c) for c in prompt.split(IMAGE_PLACEHOLDER)]
        ids = list(chunks[0])
        for c in chunks[1:]:
            ids.append(IMAGE_TOKEN_INDEX)
            ids.extend(c[1:])
        return ids
