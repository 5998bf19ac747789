#!/usr/bin/python3
"""Writes PIL (Debian python3-pil) reference outputs for tests/c/test_image.c into
build/test-out/pil/ (index.txt + raw files), run from anywhere:

    /usr/bin/python3 tests/image/gen_pil_goldens.py

index.txt, one case a line (paths relative to the repository root or absolute):
    decode <image file> <w> <h> <expected rgb raw> <max abs diff allowed>
    resize <input rgb raw> <w> <h> <out w> <out h> <expected rgb raw>
    pre <png|raw> <input> <w> <h> <stretch|pad|crop> <size> <expected rgb raw>
Expected raws are 8-bit RGB, HWC. "pre" is the reference chain up to the 8-bit
S x S image: mPLUG-Owl2 squaring, then CLIPImageProcessor's shortest-edge
resize + center crop, done with PIL as transformers 4.31 does.
"""
import glob
import warnings
import os
import sys

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_REL = "build/test-out/pil"
OUT = os.path.join(ROOT, OUT_REL)
PAD = (122, 116, 104)  # int(255 * CLIP mean)
JPEG_TOL = 4  # stb_image vs libjpeg: different IDCT and chroma upsampling (measured max 3)


def synthetic(w, h, seed=0):
    """gradients, a hard edge, a checker and noise: exercises over/undershoot clipping"""
    rng = np.random.RandomState(seed + w * 7919 + h)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * ((x // 3 + y // 2) % 2)
    b = np.where(x + y < (w + h) / 2, 20, 235) + 0 * x
    a = np.stack([r, g, b], -1) + rng.randint(-40, 41, size=(h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def expand2square(img, bg):
    w, h = img.size
    if w == h:
        return img
    s = max(w, h)
    res = Image.new(img.mode, (s, s), bg)
    res.paste(img, (0, (w - h) // 2) if w > h else ((h - w) // 2, 0))
    return res


def clip_processor(img, size):
    """transformers 4.31 CLIPImageProcessor resize(shortest_edge) + center_crop, 8-bit"""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    ow, oh = (new_short, new_long) if w <= h else (new_long, new_short)
    a = np.array(img.resize((ow, oh), resample=Image.BICUBIC))
    top, left = (oh - size) // 2, (ow - size) // 2
    return a[top:top + size, left:left + size]


def reference(img, mode, size):
    if mode == "stretch":
        m = max(img.size)
        img = img.resize((m, m))  # PIL default filter: BICUBIC for RGB
    elif mode == "pad":
        img = expand2square(img, PAD)
    return clip_processor(img, size)


class Writer:
    def __init__(self):
        self.lines, self.n = [], 0

    def raw(self, a, tag):
        self.n += 1
        name = "%s/%03d_%s.rgb" % (OUT_REL, self.n, tag)
        np.ascontiguousarray(a, dtype=np.uint8).tofile(os.path.join(ROOT, name))
        return name


def main():
    warnings.simplefilter("ignore")
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.rgb")) + glob.glob(os.path.join(OUT, "*.jpg")):
        os.remove(f)
    wr = Writer()
    L = wr.lines
    # 1. decoding, against Image.open(f).convert('RGB')
    fixtures = sorted(f for f in glob.glob(os.path.join(ROOT, "tests/fixtures/images/*"))
                      if f.rsplit(".", 1)[-1] in ("png", "jpg", "gif", "bmp"))
    for f in fixtures:
        try:
            with Image.open(f) as im:
                a = np.array(im.convert("RGB"))
        except Exception:
            continue  # rejected by PIL: the C test checks these separately
        rel = os.path.relpath(f, ROOT)
        tol = JPEG_TOL if f.endswith(".jpg") else 0
        L.append("decode %s %d %d %s %d" % (rel, a.shape[1], a.shape[0], wr.raw(a, "dec"), tol))
    photos = []
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        hits = sorted(glob.glob("/usr/lib/python3/dist-packages/skimage/data/" + name) +
                      glob.glob("/usr/share/**/" + name, recursive=True))
        if not hits:
            sys.exit("gen_pil_goldens: %s not found (apt-get install -y python3-skimage)" % name)
        photos.append(hits[0])
        with Image.open(hits[0]) as im:
            a = np.array(im.convert("RGB"))
        L.append("decode %s %d %d %s 0" % (hits[0], a.shape[1], a.shape[0], wr.raw(a, "dec")))
    # JPEG photos, encoded here (4:2:0, 4:4:4, grey, progressive): within JPEG_TOL
    with Image.open(photos[0]) as im:
        cat = im.convert("RGB")
    for tag, img, kw in (("420", cat, {"quality": 90}),
                         ("444", cat, {"quality": 95, "subsampling": 0}),
                         ("grey", cat.convert("L"), {}), ("prog", cat, {"progressive": True})):
        rel = "%s/photo_%s.jpg" % (OUT_REL, tag)
        img.save(os.path.join(ROOT, rel), "JPEG", **kw)
        with Image.open(os.path.join(ROOT, rel)) as im:
            a = np.array(im.convert("RGB"))
        L.append("decode %s %d %d %s %d" % (rel, a.shape[1], a.shape[0], wr.raw(a, "dec"), JPEG_TOL))
    # 2. resize, against Image.resize(BICUBIC) of a synthetic image
    cases = {
        (97, 61): [(56, 56), (448, 448), (1, 1), (2, 3), (97, 61), (97, 1), (1, 61), (200, 30),
                   (13, 117), (96, 60), (98, 62), (48, 30), (194, 122), (291, 183), (11, 7),
                   (300, 300), (97, 40), (40, 61)],
        (1, 50): [(1, 1), (5, 5), (448, 448), (3, 100), (1, 17)],
        (50, 1): [(448, 448), (17, 1), (100, 3)],
        (7, 300): [(56, 56), (7, 31), (448, 448)],
        (300, 7): [(56, 56), (31, 7), (1000, 3)],
        (256, 256): [(448, 448), (56, 56), (255, 255), (257, 257), (128, 128), (85, 85), (1, 256)],
        (33, 33): [(448, 448), (32, 32), (34, 34)],
        (1, 1): [(3, 5), (1, 1)],
    }
    for (w, h), outs in cases.items():
        img = synthetic(w, h)
        src = wr.raw(np.array(img), "in")
        for ow, oh in outs:
            out = np.array(img.resize((ow, oh), resample=Image.BICUBIC))
            L.append("resize %s %d %d %d %d %s" % (src, w, h, ow, oh, wr.raw(out, "rs")))
    # 3. the whole chain up to the 8-bit S x S image
    for (w, h) in ((97, 61), (61, 97), (300, 7), (7, 300), (1, 50), (40, 40), (57, 56)):
        img = synthetic(w, h, 1)
        src = wr.raw(np.array(img), "in")
        for mode in ("stretch", "pad", "crop"):
            for size in (56, 448):
                out = reference(img, mode, size)
                L.append("pre raw %s %d %d %s %d %s" % (src, w, h, mode, size, wr.raw(out, "pre")))
    for p in photos:
        with Image.open(p) as im:
            img = im.convert("RGB")
        for mode in ("stretch", "pad", "crop"):
            out = reference(img, mode, 448)
            L.append("pre png %s 0 0 %s 448 %s" % (p, mode, wr.raw(out, "pre")))
    with open(os.path.join(OUT, "index.txt"), "w") as f:
        f.write("# PIL %s goldens from tests/image/gen_pil_goldens.py\n" % PIL.__version__)
        f.write("\n".join(L) + "\n")
    print("gen_pil_goldens: %d cases in %s" % (len(L), OUT_REL))


if __name__ == "__main__":
    main()
