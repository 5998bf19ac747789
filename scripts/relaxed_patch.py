#!/usr/bin/python3
"""relaxed_patch.py - turn the relaxed-dot stand-ins of a linked wasm module into
i32x4.relaxed_dot_i8x16_i7x16_add_s, in place.

clang 14 has no builtin for the dot, and binaryen 108 (run by emcc 3.1.6 at
every link) misreads its final opcode, so src/kernels/simd.h emits the
prototype opcode of f32x4.fma (fd af 01: same v128 x 3 -> v128 shape, same
length) in its place and this script rewrites each one to fd 93 02 after the
link (facts: ../shared/docs/relaxed-simd.md). It decodes the code section
instruction by instruction - a byte search would also hit immediates (e.g.
`i32.const 22525` is 41 fd af 01) - and checks that every function body
decodes to its exact end. It fails on any other relaxed-SIMD opcode (final or
prototype: only the kernel file is compiled with -mrelaxed-simd, and it must
use nothing but the stand-in), and when no stand-in is found.

  scripts/relaxed_patch.py build/wasm/owlet-relaxed.wasm
"""
import sys

STANDIN = 0xAF        # f32x4.fma, pre-2022 prototype numbering (clang 14)
DOT = 0x113           # i32x4.relaxed_dot_i8x16_i7x16_add_s, final numbering
# SIMD opcodes of the final SIMD128 proposal (0x00-0xff) are all valid except
# these holes, where the relaxed-SIMD prototype put its instructions.
HOLES = {0x9A, 0xA2, 0xA5, 0xA6, 0xAF, 0xB0, 0xB2, 0xB3, 0xB4, 0xBB, 0xC2, 0xC5, 0xC6,
         0xCF, 0xD0, 0xD2, 0xD3, 0xD4, 0xE2, 0xEE}


class Reader:
    def __init__(self, b, pos=0):
        self.b, self.pos = b, pos

    def byte(self):
        v = self.b[self.pos]
        self.pos += 1
        return v

    def uleb(self):
        r = shift = 0
        while True:
            v = self.byte()
            r |= (v & 0x7F) << shift
            shift += 7
            if not v & 0x80:
                return r

    def sleb(self):
        while self.byte() & 0x80:
            pass

    def skip(self, n):
        self.pos += n

    def memarg(self):
        self.uleb()
        self.uleb()

    def blocktype(self):
        v = self.b[self.pos]
        if v == 0x40 or v in (0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F):
            self.pos += 1
        else:
            self.sleb()


def fail(msg):
    sys.exit(f'relaxed_patch: {msg}')


def simd(r, sites):
    at = r.pos
    op = r.uleb()
    if op <= 11 or op in (92, 93):
        r.memarg()
    elif op in (12, 13):
        r.skip(16)
    elif 21 <= op <= 34:
        r.skip(1)
    elif 84 <= op <= 91:
        r.memarg()
        r.skip(1)
    elif op == STANDIN and r.pos - at == 2:
        sites.append(at)
    elif op in HOLES or op > 0xFF:
        fail(f'relaxed-SIMD opcode 0x{op:x} at byte {at}: only the stand-in may appear')


def instr(r, sites):
    op = r.byte()
    if op in (0x02, 0x03, 0x04, 0x06):
        r.blocktype()
    elif op in (0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x18, 0x20, 0x21, 0x22, 0x23, 0x24,
                0x25, 0x26, 0xD2):
        r.uleb()
    elif op == 0x0E:
        for _ in range(r.uleb() + 1):
            r.uleb()
    elif op in (0x11, 0x13):
        r.uleb()
        r.uleb()
    elif op == 0x1C:
        r.skip(r.uleb())
    elif 0x28 <= op <= 0x3E:
        r.memarg()
    elif op in (0x3F, 0x40):
        r.uleb()
    elif op in (0x41, 0x42):
        r.sleb()
    elif op == 0x43:
        r.skip(4)
    elif op == 0x44:
        r.skip(8)
    elif op == 0xD0:
        r.skip(1)
    elif op == 0xFC:
        sub = r.uleb()
        n = {8: 2, 9: 1, 10: 2, 11: 1, 12: 2, 13: 1, 14: 2, 15: 1, 16: 1, 17: 1}.get(sub, 0)
        for _ in range(n):
            r.uleb()
    elif op == 0xFD:
        simd(r, sites)
    elif op == 0xFE:
        sub = r.uleb()
        if sub == 0x03:
            r.skip(1)
        else:
            r.memarg()
    elif op in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1) or 0x45 <= op <= 0xC4:
        pass
    else:
        fail(f'unknown opcode 0x{op:x} at byte {r.pos - 1}')


def main(path):
    b = bytearray(open(path, 'rb').read())
    if b[:8] != b'\0asm\1\0\0\0':
        fail(f'{path}: not a wasm module')
    r = Reader(b, 8)
    sites = []
    while r.pos < len(b):
        sid = r.byte()
        size = r.uleb()
        end = r.pos + size
        if sid == 10:
            for _ in range(r.uleb()):
                body = r.uleb()
                body_end = r.pos + body
                for _ in range(r.uleb()):
                    r.uleb()
                    r.skip(1)
                while r.pos < body_end:
                    instr(r, sites)
                if r.pos != body_end or b[body_end - 1] != 0x0B:
                    fail(f'function body at {body_end - body} did not decode to its end')
        r.pos = end
    if not sites:
        fail('no relaxed-dot stand-in found (was quant_relaxed.c built with -mrelaxed-simd?)')
    for at in sites:
        b[at:at + 2] = bytes((0x80 | (DOT & 0x7F), DOT >> 7))  # 93 02
    open(path, 'wb').write(b)
    print(f'relaxed_patch: {path}: {len(sites)} relaxed dots')


if __name__ == '__main__':
    if len(sys.argv) != 2:
        fail('usage: relaxed_patch.py MODULE.wasm')
    main(sys.argv[1])
