#!/usr/bin/python3
"""Writes the small committed decoder fixtures in tests/fixtures/images/ (run once;
the outputs are committed). PNGs are written by hand so every colour type / bit
depth / chunk defect is covered; JPEG/BMP/GIF come from PIL.

    /usr/bin/python3 tests/image/make_fixtures.py
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "images")


def chunk(tag, data, crc_fix=0):
    crc = (zlib.crc32(tag + data) ^ crc_fix) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def png(w, h, ct, depth, rows, extra=b"", ihdr_crc_fix=0, idat_crc_fix=0, level=9):
    """rows: list of h bytes objects (packed scanlines without filter byte)."""
    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr, ihdr_crc_fix) + extra +
            chunk(b"IDAT", zlib.compress(raw, level), idat_crc_fix) + chunk(b"IEND", b""))


def pack_bits(vals, depth):
    """pack a row of small ints MSB first"""
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def pattern(w, h, c, maxv, seed):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 37 + y * 91)[..., None] + np.arange(c) * 53
    a = (base * 977 + rng.randint(0, maxv + 1, size=(h, w, c))) % (maxv + 1)
    return a.astype(np.int64)


def rows8(a):
    return [bytes(r.astype(np.uint8).ravel()) for r in a]


def rows16(a):
    return [r.astype(">u2").ravel().tobytes() for r in a]


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    w, h = 13, 7
    write("rgb8.png", png(w, h, 2, 8, rows8(pattern(w, h, 3, 255, 1))))
    write("rgba8.png", png(11, 5, 6, 8, rows8(pattern(11, 5, 4, 255, 2))))
    write("grey8.png", png(w, h, 0, 8, rows8(pattern(w, h, 1, 255, 3))))
    write("grey8_trns.png", png(w, h, 0, 8, rows8(pattern(w, h, 1, 255, 3)),
                                chunk(b"tRNS", struct.pack(">H", 17))))
    write("la8.png", png(w, h, 4, 8, rows8(pattern(w, h, 2, 255, 4))))
    write("la16.png", png(w, h, 4, 16, rows16(pattern(w, h, 2, 65535, 5))))
    g16 = pattern(w, h, 1, 65535, 6)
    g16[0, :, 0] = np.arange(w) * 23  # some values below 256, where PIL does not clip
    write("grey16.png", png(w, h, 0, 16, rows16(g16)))
    write("rgb16.png", png(w, h, 2, 16, rows16(pattern(w, h, 3, 65535, 7))))
    write("rgba16.png", png(9, 4, 6, 16, rows16(pattern(9, 4, 4, 65535, 8))))
    for depth in (1, 2, 4):
        g = pattern(19, 3, 1, (1 << depth) - 1, 9 + depth)[..., 0]
        write("grey%d.png" % depth, png(19, 3, 0, depth, [pack_bits(r, depth) for r in g]))
    pal = bytes(pattern(16, 1, 3, 255, 20).astype(np.uint8).ravel())
    idx = pattern(w, h, 1, 15, 21)[..., 0]
    write("pal8.png", png(w, h, 3, 8, [bytes(r.astype(np.uint8)) for r in idx],
                          chunk(b"PLTE", pal)))
    write("pal8_trns.png", png(w, h, 3, 8, [bytes(r.astype(np.uint8)) for r in idx],
                               chunk(b"PLTE", pal) + chunk(b"tRNS", bytes(range(0, 160, 10)))))
    write("pal4.png", png(w, h, 3, 4, [pack_bits(r, 4) for r in idx], chunk(b"PLTE", pal)))
    idx1 = pattern(w, h, 1, 1, 22)[..., 0]
    write("pal1.png", png(w, h, 3, 1, [pack_bits(r, 1) for r in idx1], chunk(b"PLTE", pal[:6])))
    # defects: wrong CRCs (stb ignores CRCs: decodes correctly), huge declared sizes
    rgb = rows8(pattern(w, h, 3, 255, 1))
    write("crc_bad_idat.png", png(w, h, 2, 8, rgb, idat_crc_fix=0x10))
    write("crc_bad_ihdr.png", png(w, h, 2, 8, rgb, ihdr_crc_fix=0x10))
    write("huge_dims.png", png(100000, 100000, 2, 8, [b""], level=1)[:64])
    write("big_dims.png", png(20000, 20000, 2, 8, [b""], level=1)[:64])
    # the other formats, through PIL
    im = Image.fromarray(pattern(23, 17, 3, 255, 30).astype(np.uint8), "RGB")
    smooth = Image.fromarray(
        (np.mgrid[0:17, 0:23][1][..., None] * [11, 5, 2] + np.mgrid[0:17, 0:23][0][..., None] * [3, 9, 14])
        .astype(np.uint8), "RGB")
    for name, img, kw in (("rgb.jpg", smooth, {"quality": 90}),
                          ("grey.jpg", smooth.convert("L"), {"quality": 90}),
                          ("progressive.jpg", smooth, {"quality": 80, "progressive": True}),
                          ("rgb.bmp", im, {}), ("pal.bmp", im.quantize(16), {}),
                          ("rgba.bmp", Image.fromarray(pattern(23, 17, 4, 255, 31).astype(np.uint8), "RGBA"), {}),
                          ("grey.bmp", im.convert("L"), {}), ("bw.bmp", im.convert("1"), {}),
                          ("pal.gif", im.quantize(16), {})):
        b = io.BytesIO()
        img.save(b, name.split(".")[1].replace("jpg", "jpeg"), **kw)
        write(name, b.getvalue())
    # GIF first frames PIL treats specially: transparent index (kept as its palette
    # colour) and a frame smaller than the screen (rest = transparency index or 0)
    pimg = Image.fromarray((np.arange(35).reshape(5, 7) % 6).astype(np.uint8), "P")
    pimg.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0, 40, 40, 40, 250, 250, 250, 1, 2, 3] +
                    [0] * (250 * 3))
    for name, kw in (("trans.gif", {"transparency": 2}), ("offset.gif", {}),
                     ("offset_trans.gif", {"transparency": 2})):
        b = io.BytesIO()
        pimg.save(b, "GIF", **kw)
        d = bytearray(b.getvalue())
        if name.startswith("offset"):
            d[6], d[8], d[11] = 9, 6, 3  # screen 9x6, background index 3
            i = d.index(0x2C)
            d[i + 1], d[i + 3] = 1, 1  # frame 7x5 at (1, 1)
        write(name, bytes(d))
    write("bad_magic.bin", b"\x89PNX\r\n\x1a\n" + bytes(range(40)))


if __name__ == "__main__":
    main()
