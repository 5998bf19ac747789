#!/usr/bin/python3
"""Generate tokenizer test cases with Python sentencepiece (the reference).

Usage: /usr/bin/python3 tests/tokenizer/gen_cases.py MODEL OUT [N]

Writes OUT (little-endian binary, read by tests/c/test_tokenizer.c):
  "OWLTOK1\n", u32 n_cases, then per case:
  u8 kind (0 = encode text, 1 = decode ids), u32 text_len, text bytes,
  u32 n_ids, i32 ids[n_ids], u32 decoded_len, decoded bytes (UTF-8).
Encode cases: ids = sp.encode(text) (no BOS), decoded = sp.decode(ids).
Decode cases: random id sequences (control, unk, byte and normal pieces),
decoded = sp.decode(ids). Texts are built from a fixed seed and cover many
scripts, emoji (ZWJ, skin tones, flags), whitespace runs, digits,
punctuation, literal U+2581 and invalid UTF-8 (given to sentencepiece as bytes;
it replaces each bad byte by U+FFFD, which is what we match).
"""
import random
import struct
import sys

import sentencepiece as spm

WORDS = ("the quick brown fox jumps over lazy dog Hello world tokenizer image describe "
         "USER ASSISTANT question answer picture internationalization don't it's e.g. "
         "HTTP/1.1 foo_bar baz-qux CamelCase x y z").split()
RANGES = {
    'latin': [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x17F)],
    'cjk': [(0x4E00, 0x9FFF), (0x3040, 0x30FF), (0xAC00, 0xD7A3), (0x3000, 0x303F)],
    'cyr': [(0x400, 0x4FF)],
    'greek': [(0x370, 0x3FF)],
    'arabic': [(0x600, 0x6FF)],
    'hebrew': [(0x5D0, 0x5EA)],
    'deva': [(0x900, 0x97F)],
    'thai': [(0xE00, 0xE7F)],
    'sym': [(0x2000, 0x2BFF)],
    'any_bmp': [(0x20, 0xD7FF), (0xE000, 0xFFFD)],
    'astral': [(0x10000, 0x10FFFF)],
}
EMOJI = [0x1F600, 0x1F389, 0x1F44D, 0x1F468, 0x1F469, 0x1F467, 0x1F466, 0x2764, 0x1F525,
         0x1F680, 0x1F914, 0x1F9D1, 0x1F4BB, 0x2600, 0x26A1]
SKIN = [0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF]
WS = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\u00a0', '\u3000', ' \t ', '\u2581', '\u200b']
PUNCT = list('.,;:!?\'"()[]{}<>/\\|@#$%^&*-_=+~`') + ['...', '--', '</s>', '<s>', '<unk>', '<|image|>']


def rand_char(r, cat):
    lo, hi = r.choice(RANGES[cat])
    while True:
        c = r.randint(lo, hi)
        if not (0xD800 <= c <= 0xDFFF):
            return chr(c)


def emoji(r):
    k = r.random()
    if k < 0.3:
        return chr(r.choice(EMOJI))
    if k < 0.5:
        return chr(r.choice([0x1F44D, 0x1F44B, 0x1F9D1])) + chr(r.choice(SKIN))
    if k < 0.7:  # ZWJ family / profession
        parts = [chr(r.choice(EMOJI[3:7])) for _ in range(r.randint(2, 4))]
        return '\u200d'.join(parts)
    if k < 0.85:  # flag
        return chr(0x1F1E6 + r.randint(0, 25)) + chr(0x1F1E6 + r.randint(0, 25))
    return chr(r.choice([0x2764, 0x263A, 0x2600])) + '\ufe0f'


def bad_bytes(r):
    k = r.random()
    if k < 0.25:
        return bytes([r.randint(0x80, 0xFF)])
    if k < 0.45:
        full = chr(r.randint(0x4E00, 0x9FFF)).encode()
        return full[:r.randint(1, 2)]
    if k < 0.6:
        return b'\xed' + bytes([r.randint(0xA0, 0xBF), r.randint(0x80, 0xBF)])  # surrogate
    if k < 0.75:
        return r.choice([b'\xc0\x80', b'\xc1\xbf', b'\xe0\x80\x80', b'\xf0\x80\x80\x80'])  # overlong
    if k < 0.9:
        return r.choice([b'\xf4\x90\x80\x80', b'\xf8\x88\x80\x80\x80', b'\xfe', b'\xff\xff'])
    return chr(r.randint(0x10000, 0x10FFFF)).encode()[:3]


def segment(r):
    k = r.random()
    if k < 0.25:
        return r.choice(WORDS).encode()
    if k < 0.45:
        cat = r.choice(list(RANGES))
        return ''.join(rand_char(r, cat) for _ in range(r.randint(1, 8))).encode()
    if k < 0.55:
        return emoji(r).encode()
    if k < 0.7:
        return r.choice(WS).encode()
    if k < 0.8:
        return str(r.randint(0, 10 ** r.randint(1, 12))).encode()
    if k < 0.9:
        return r.choice(PUNCT).encode()
    if k < 0.95:
        return bad_bytes(r)
    return bytes([r.randint(0, 0x1F)])


def texts(r, n):
    fixed = [b'', b' ', b'  ', b'\n', b'\t', b'a', b' a', b'a ', b' a ', b'Hello world', b'   x   ',
             'USER: '.encode(), 'USER: <|image|>Describe the image. ASSISTANT:'.encode(),
             '\u2581'.encode(), '\u2581\u2581 \u2581'.encode(), b'\x00', b'\xff', b'\xe4\xb8',
             '👨‍👩‍👧‍👦'.encode(), '🇫🇷🇩🇪'.encode(), b'</s>USER:', b'a\r\nb']
    out = list(fixed)
    while len(out) < n:
        m = r.choice([1, 2, 3, 5, 8, 13, 30, 60])
        out.append(b''.join(segment(r) for _ in range(r.randint(1, m))))
    for _ in range(5):  # a few long ones
        out.append(b''.join(segment(r) for _ in range(600)))
    return out


def main():
    model, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2400
    sp = spm.SentencePieceProcessor(model_file=model)
    r = random.Random(20231108)
    V = sp.vocab_size()
    recs = []
    for t in texts(r, n):
        ids = sp.encode(t)
        recs.append((0, t, ids, sp.decode(ids).encode('utf-8')))
    byte_ids = [i for i in range(V) if sp.is_byte(i)]
    special = [i for i in range(V) if sp.is_control(i) or sp.is_unknown(i)]
    for _ in range(max(200, n // 4)):
        L = r.randint(0, 12)
        ids = []
        for _ in range(L):
            k = r.random()
            if k < 0.15 and special:
                ids.append(r.choice(special))
            elif k < 0.45 and byte_ids:
                ids.append(r.choice(byte_ids))
            else:
                ids.append(r.randrange(V))
        recs.append((1, b'', ids, sp.decode(ids).encode('utf-8')))
    with open(out, 'wb') as f:
        f.write(b'OWLTOK1\n')
        f.write(struct.pack('<I', len(recs)))
        for kind, t, ids, dec in recs:
            f.write(struct.pack('<BI', kind, len(t)))
            f.write(t)
            f.write(struct.pack('<I', len(ids)))
            f.write(struct.pack('<%di' % len(ids), *ids))
            f.write(struct.pack('<I', len(dec)))
            f.write(dec)
    print('gen_cases: wrote %s (%d cases)' % (out, len(recs)))


if __name__ == '__main__':
    main()
