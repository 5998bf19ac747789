// features.mjs - what this JavaScript engine's WebAssembly can run, found by
// running tiny modules (browser and Node alike).
//
// Relaxed SIMD is detected by running i32x4.relaxed_dot_i8x16_i7x16_add_s on
// known operands and comparing all four lanes with the exact sums:
// WebAssembly.validate is not enough - Node 20 under
// --experimental-wasm-relaxed-simd validates it and then returns 2 x the dot
// without the accumulator (../shared/docs/relaxed-simd.md). The second
// operand stays in 0..127, where every conforming engine gives the exact sum.
// owlet.mjs loads the relaxed build (build/wasm/owlet-relaxed.*) only when
// relaxedSimd is true and shared memory is there (at any thread count, one
// included); SIMD128 is the fallback.

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
// type () -> i32; one function, exported as "f"
const SIGNATURE = [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00,
  0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00];

const v128Const = (bytes) => [0xfd, 0x0c, ...bytes];
const i32x4Bytes = (lanes) => [...new Uint8Array(Int32Array.from(lanes).buffer)];
const i8x16Bytes = (lanes) => [...new Uint8Array(Int8Array.from(lanes).buffer)];

/** A module whose f() runs `body` (leaving an i32x4) and returns 1 iff it equals `want`. */
function checkModule(body, want) {
  const code = [0x00, ...body, ...v128Const(i32x4Bytes(want)), 0xfd, 0x37 /* i32x4.eq */,
    0xfd, 0xa3, 0x01 /* i32x4.all_true */, 0x0b];
  const section = [0x01, ...uleb(code.length), ...code];
  return new Uint8Array([...HEADER, ...SIGNATURE, 0x0a, ...uleb(section.length), ...section]);
}

function uleb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function runs(bytes) {
  try {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    return inst.exports.f() === 1;
  } catch {
    return false; // not compiled (unknown opcode) or not run
  }
}

/** lanes k = c[k] + sum_{i<4} a[4k+i] * b[4k+i] */
function dotAdd(a, b, c) {
  return c.map((ck, k) => ck + [0, 1, 2, 3].reduce((s, i) => s + a[4 * k + i] * b[4 * k + i], 0));
}

function probeRelaxedDot() {
  const a = [1, -2, 3, -4, 127, -128, 5, 6, -7, 8, -9, 10, 100, -100, 50, -50];
  const b = [1, 2, 3, 4, 5, 6, 7, 127, 0, 64, 32, 16, 127, 1, 2, 3];
  const c = [1000, -2000, 3, 4];
  const body = [...v128Const(i8x16Bytes(a)), ...v128Const(i8x16Bytes(b)), ...v128Const(i32x4Bytes(c)),
    0xfd, 0x93, 0x02 /* i32x4.relaxed_dot_i8x16_i7x16_add_s */];
  return runs(checkModule(body, dotAdd(a, b, c)));
}

function probeSimd128() {
  const x = [1, -2, 3, 0x7fffffff], y = [5, 6, -7, 1];
  const body = [...v128Const(i32x4Bytes(x)), ...v128Const(i32x4Bytes(y)), 0xfd, 0xae, 0x01 /* i32x4.add */];
  return runs(checkModule(body, x.map((v, i) => (v + y[i]) | 0)));
}

let cached = null;

/**
 * What WebAssembly here can run (probed once, then cached).
 * @returns {{relaxedSimd: boolean, simd128: boolean, threads: boolean}}
 *   relaxedSimd: relaxed_dot_i8x16_i7x16_add_s ran and gave the exact sums;
 *   simd128: a SIMD128 module ran; threads: SharedArrayBuffer exists and the
 *   page is cross-origin isolated (always so in Node).
 */
export function detectFeatures() {
  if (!cached) {
    const isBrowser = typeof window !== 'undefined' || typeof importScripts === 'function';
    cached = Object.freeze({
      relaxedSimd: probeRelaxedDot(),
      simd128: probeSimd128(),
      threads: typeof SharedArrayBuffer !== 'undefined' && (!isBrowser || globalThis.crossOriginIsolated === true),
    });
  }
  return cached;
}
