/* quant_avx2.c - quant_simd128.c once more, for x86-64 CPUs with AVX2.
 *
 * Native builds only (the Makefile defines OWL_AVX2_DISPATCH and compiles this
 * file with -mavx2 -ffp-contract=off): SIMDe then maps the wasm SIMD128
 * operations to VEX-encoded instructions (three-operand forms, no register
 * copies), ~10 % faster on the q4_K GEMV and GEMM (docs/BENCHMARKS.md). The
 * entry points are named *_avx2; dispatch.c calls them when the CPU has AVX2
 * and the SSE4.1 build otherwise, so the binary still runs on any x86-64 with
 * SSE4.1. Same source, same operations in the same order: the same bits
 * (tests/c/test_matmul.c compares the two). Elsewhere (wasm, the fuzzers) this
 * file is empty. */
#ifdef OWL_AVX2_DISPATCH
#ifndef __AVX2__
#error "quant_avx2.c must be compiled with -mavx2"
#endif
#define OWL_SIMD128_AVX2_VARIANT 1
#include "quant_simd128.c"
#else
typedef int owl_quant_avx2_unused; /* ISO C wants a declaration in every file */
#endif
