"""make_seeds.py - writes the safetensors and torch.save seeds of tests/fuzz/corpus/.

Run by hand from the repository root with Debian's python (torch 1.13):
    /usr/bin/python3 tests/fuzz/make_seeds.py
Small tensors of each dtype the converter reads (F32, F16, BF16), plus the
views torch.save keeps (a transpose, a slice with a storage offset, two
tensors sharing one storage) so the strided read path is seeded too.
fuzz_pickle seeds: byte 0 = 0 then data.pkl alone (the target wraps it in a
zip whose storages are "archive/data/0".."3" of 256 bytes), or byte 0 = 1
then the whole archive.
"""
import io
import json
import os
import struct
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def safetensors_bytes(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write(sub, name, data):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    f32 = struct.pack("<6f", 1, -2, 0.5, 3, 4, -0.25)
    write("safetensors", "three_dtypes.safetensors", safetensors_bytes({
        "a.weight": ("F32", [2, 3], f32),
        "b.bias": ("F16", [3], struct.pack("<3e", 1, 2, -3)),
        "c": ("BF16", [1, 2], bytes([0x80, 0x3f, 0x00, 0xc0])),
        "scalar": ("F32", [], struct.pack("<f", 7)),
        "ids": ("I64", [2], struct.pack("<2q", 5, 6)),
    }, {"format": "pt"}))
    write("safetensors", "empty_tensor.safetensors", safetensors_bytes({"e": ("F32", [0, 4], b"")}))

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {
        "w": base,
        "w_t": base.t(),                     # strided view of the same storage
        "row": base[1, 2:5],                 # storage offset
        "h": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "bf": torch.tensor([[0.5], [1.0]], dtype=torch.bfloat16),
    }
    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=True)
    archive = buf.getvalue()
    write("pickle", "views.torch", b"\x01" + archive)
    # the pickle alone, with storage keys and sizes that fit the target's wrapper
    small = {"x": torch.arange(8, dtype=torch.float32), "y": torch.ones(2, 3, dtype=torch.float16).t(),
             "z": torch.zeros(4, dtype=torch.bfloat16)}
    buf = io.BytesIO()
    torch.save(small, buf, _use_new_zipfile_serialization=True)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        keys = sorted(n.rsplit("/", 1)[1] for n in z.namelist() if "/data/" in n)
        assert all(int(k) < 4 for k in keys), keys
        write("pickle", "small.pkl", b"\x00" + z.read(pkl))


if __name__ == "__main__":
    main()
