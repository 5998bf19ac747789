/* simd.h - one spelling of SIMD128 for wasm and native.
 *
 * In wasm builds (-msimd128) this is <wasm_simd128.h>. Natively the same wasm_*
 * intrinsics come from Debian's SIMDe (simde/wasm/simd128.h), so the native
 * ASan/UBSan run exercises the very code the browser runs. OWL_SIMD128 is
 * defined in both cases; a build without it (the scalar wasm bench build)
 * uses the reference kernels only.
 *
 * owl_relaxed_dot(a, b, c) is i32x4.relaxed_dot_i8x16_i7x16_add_s: lane k =
 * c[k] + sum of a[4k+i] * b[4k+i], i = 0..3, a signed int8, b int8 that the
 * callers keep in 0..127 (with a negative b the instruction's result differs
 * between machines). In the relaxed wasm build (quant_relaxed.c compiled with
 * -mrelaxed-simd, which defines __wasm_relaxed_simd__) it is the instruction;
 * clang 14 has no builtin for it, so the code carries f32x4.fma's prototype
 * opcode as a stand-in with the same v128 x 3 -> v128 shape, and
 * scripts/relaxed_patch.py rewrites each one to the dot after the link (see
 * ../shared/docs/relaxed-simd.md). Everywhere else it is an exact SIMD128
 * emulation, so the native and Node test runs check the relaxed kernels'
 * arithmetic, and the Chromium test (tests/browser/relaxed.test.mjs) the
 * instruction itself. */
#ifndef OWL_SIMD_H
#define OWL_SIMD_H

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define OWL_SIMD128 1
#elif defined(OWL_USE_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/wasm/simd128.h>
#define OWL_SIMD128 1
#endif

#if defined(__wasm_relaxed_simd__)
static inline v128_t owl_relaxed_dot(v128_t a, v128_t b, v128_t c)
{
    return (v128_t)__builtin_wasm_fma_f32x4((__f32x4)a, (__f32x4)b, (__f32x4)c);
}
#elif defined(OWL_SIMD128)
static inline v128_t owl_relaxed_dot(v128_t a, v128_t b, v128_t c)
{
    /* int16 products (exact), pairs to int32, then the two pairs of each lane */
    v128_t lo = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_low_i8x16(a, b));
    v128_t hi = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_high_i8x16(a, b));
    v128_t s = wasm_i32x4_add(wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6), wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7));
    return wasm_i32x4_add(c, s);
}
#endif

#endif
