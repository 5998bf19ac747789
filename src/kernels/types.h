/* types.h - tensor element types with ggml's exact block layouts.
 *
 * Type ids equal ggml's (they are what GGUF files store). Quantized rows are
 * arrays of blocks; a row of n elements needs n / blck_size blocks (n must be a
 * multiple of blck_size). Reference quantizers round to nearest exactly as
 * ggml's quantize_row_*_ref do, so our bytes equal llama.cpp's.
 *
 * Implemented in src/kernels/quant.c (reference), quant_simd128.c (SIMD128),
 * quant_relaxed.c (relaxed SIMD); dispatch.c picks the tier. */
#ifndef OWL_TYPES_H
#define OWL_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    OWL_TYPE_F32 = 0,
    OWL_TYPE_F16 = 1,
    OWL_TYPE_Q4_0 = 2,
    OWL_TYPE_Q8_0 = 8,
    OWL_TYPE_Q4_K = 12,
    OWL_TYPE_Q6_K = 14,
    OWL_TYPE_Q8_K = 15, /* activations only (dot partner of the K-quants) */
    OWL_TYPE_BF16 = 30, /* read by the converter; not a compute type */
    OWL_TYPE_COUNT = 31
} owl_type;

typedef uint16_t owl_f16; /* IEEE binary16 bits */

#define OWL_QK4_0 32
#define OWL_QK8_0 32
#define OWL_QK_K 256
#define OWL_K_SCALE_SIZE 12

/* 4.5 bits per weight: d * (q - 8), q in 0..15; low nibbles hold elements 0..15,
 * high nibbles 16..31. */
typedef struct {
    owl_f16 d;
    uint8_t qs[OWL_QK4_0 / 2];
} owl_block_q4_0;
_Static_assert(sizeof(owl_block_q4_0) == 18, "q4_0 block");

/* 8.5 bits per weight: d * q, q int8. */
typedef struct {
    owl_f16 d;
    int8_t qs[OWL_QK8_0];
} owl_block_q8_0;
_Static_assert(sizeof(owl_block_q8_0) == 34, "q8_0 block");

/* 4.5 bits per weight: 8 sub-blocks of 32, 6-bit scales and mins packed in
 * scales[12]; x = d * sc * q - dmin * m. */
typedef struct {
    owl_f16 d;
    owl_f16 dmin;
    uint8_t scales[OWL_K_SCALE_SIZE];
    uint8_t qs[OWL_QK_K / 2];
} owl_block_q4_K;
_Static_assert(sizeof(owl_block_q4_K) == 144, "q4_K block");

/* 6.5625 bits per weight: 16 sub-blocks of 16, int8 scales; x = d * sc * (q - 32). */
typedef struct {
    uint8_t ql[OWL_QK_K / 2];
    uint8_t qh[OWL_QK_K / 4];
    int8_t scales[OWL_QK_K / 16];
    owl_f16 d;
} owl_block_q6_K;
_Static_assert(sizeof(owl_block_q6_K) == 210, "q6_K block");

/* Activation blocks for K-quant dots: float scale, int8 values, sums of 16. */
typedef struct {
    float d;
    int8_t qs[OWL_QK_K];
    int16_t bsums[OWL_QK_K / 16];
} owl_block_q8_K;
_Static_assert(sizeof(owl_block_q8_K) == 292, "q8_K block");

typedef struct {
    const char *name;   /* ggml spelling: "f32", "q4_0", "q4_K" ... */
    int blck_size;      /* elements per block (1 for f32/f16/bf16) */
    size_t type_size;   /* bytes per block */
    owl_type vec_dot_type; /* type activations are quantized to for dots */
} owl_type_traits;

/* NULL for an id that is not one of ours (unknown or unsupported). */
const owl_type_traits *owl_type_get(int type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * (or the type is unknown). */
size_t owl_row_size(owl_type type, int64_t n);

float owl_f16_to_f32(owl_f16 h);
owl_f16 owl_f32_to_f16(float f);     /* round to nearest even, like ggml */
float owl_bf16_to_f32(uint16_t h);

/* Reference (scalar) conversions of one row of n elements (n % blck_size == 0). */
void owl_quantize_row_ref(owl_type type, const float *x, void *y, int64_t n);
void owl_dequantize_row_ref(owl_type type, const void *x, float *y, int64_t n);

/* Dot product of one weight row x (type) with activations y (its vec_dot_type),
 * n elements. Reference versions in quant.c; the SIMD128 versions in
 * quant_simd128.c (builds with OWL_SIMD128 only) return the same bits (the
 * summation order is fixed, see quant.c). owl_quantize_row_simd128 takes the
 * activation types q8_0 and q8_K only (weights are quantized offline by the
 * reference). */
float owl_vec_dot_ref(owl_type type, int64_t n, const void *x, const void *y);
float owl_vec_dot_simd128(owl_type type, int64_t n, const void *x, const void *y);
void owl_quantize_row_simd128(owl_type type, const float *x, void *y, int64_t n);
/* ---- the dispatch (dispatch.c): the one place a kernel tier is chosen ----
 * reference without SIMD128, SIMD128, and in the relaxed wasm build
 * (OWL_RELAXED_BUILD) the relaxed-SIMD tiles for the types they handle.
 * Same bits in every tier. */
void owl_vec_dot(owl_type type, int64_t n, const void *x, const void *y, float *out);
void owl_quantize_row(owl_type type, const float *x, void *y, int64_t n);
/* ---- SIMD128 matmul kernels (quant_simd128.c; SIMD128 builds only) ----
 * Activations for them are "expanded": a q8_0 / q8_K row with its int8 values
 * widened to int16, each group of 16 consecutive elements stored as its 8
 * even then its 8 odd elements. 4-bit weights then unpack with 16-bit shifts
 * and masks alone (a 16-bit lane holds two bytes = an even and an odd
 * element), and the activations are widened once per matmul, not per row. */
typedef struct {
    float d;          /* the q8_0 block's scale, widened */
    int32_t sum;      /* sum of q (for q4_0's -8 offset) */
    int32_t pad[2];
    int16_t q[32];
} owl_xblock_q8_0;
typedef struct {
    float d;
    int32_t pad[3];
    int16_t bs32[8];  /* sums of q over each 32 (bsums[2j] + bsums[2j+1]) */
    int16_t q[256];
} owl_xblock_q8_K;
/* Bytes of an expanded row of n elements of vec_dot_type t (0 for f32). */
size_t owl_xrow_size(owl_type t, int64_t n);
/* q8 row (q8_0 or q8_K, n elements) -> expanded row. */
void owl_expand_row_simd128(owl_type t, const void *q8row, void *xrow, int64_t n);
/* The GEMM micro-kernel: Y[t*ldy + r] = dot(W row r, X row t) for r < nr,
 * t < nt; W rows w_stride bytes apart, X rows x_stride bytes apart, X expanded
 * (f32 rows for f32/f16 weights). nr <= OWL_TILE_ROWS for the quantized
 * types (any for f32/f16). With accumulate, each dot continues from the value
 * in Y (so a long dot can be cut into pieces with the same result).
 * Each element has owl_vec_dot_ref's bits. */
void owl_dot_tile_simd128(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                          const void *X, size_t x_stride, int64_t nt, float *Y, int64_t ldy,
                          int accumulate);
#define OWL_TILE_ROWS 4
/* ---- the 4-row interleaved weight layout ("r4") ----
 * A quantized matrix (q4_0, q8_0, q4_K, q6_K), whose rows every tile kernel
 * reads 4 at a time,
 * streams from one place instead of four when each group of 4 rows stores
 * its blocks block-major: block b of row r of the group at (4b + r) blocks
 * from the group's start (the last group, of k < 4 rows, likewise with k).
 * Groups start where they do row-major (row 4g at 4g rows), so a tile of
 * rows 4g.. finds its group at W + 4g * row bytes either way. The tile
 * kernels take r4 = 1 for such a matrix (w_stride stays the row bytes).
 * owl_repack_r4 rearranges a row-major matrix in place (returns 1) when the
 * build's kernels read the layout (SIMD128 builds) and the type is one of
 * those four, else leaves it and returns 0; 0 too when a 4-row scratch (4
 * rows of bytes) cannot be allocated. 7B-slice decode in Chromium: 1.2-1.9x
 * (docs/BENCHMARKS.md, "4-row interleaved quantized matrices"). */
int owl_repack_r4(owl_type type, void *W, int64_t rows, int64_t cols);
int owl_r4_supported(owl_type type);
#ifdef OWL_AVX2_DISPATCH
/* Native x86-64 builds: the same four functions compiled with -mavx2
 * (quant_avx2.c), same bits; dispatch.c calls them when the CPU has AVX2. */
float owl_vec_dot_simd128_avx2(owl_type type, int64_t n, const void *x, const void *y);
void owl_quantize_row_simd128_avx2(owl_type type, const float *x, void *y, int64_t n);
void owl_expand_row_simd128_avx2(owl_type t, const void *q8row, void *xrow, int64_t n);
void owl_dot_tile_simd128_avx2(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                               const void *X, size_t x_stride, int64_t nt, float *Y, int64_t ldy,
                               int accumulate);
int owl_cpu_has_avx2(void);
#endif
/* ---- relaxed-SIMD tile kernels (quant_relaxed.c; builds with OWL_SIMD128) ----
 * owl_dot_tile_relaxed: owl_dot_tile_simd128's contract (without accumulate)
 * for q4_0, q4_K, q6_K and q8_0 (q4_K and q6_K: up to 8 rows), reading the q8 rows Xq (reference layout;
 * q8_K bsums must be the sums of their 16 qs, as the quantizers make them)
 * and, for q4_0, the expanded rows Xx (block sums, scales).
 * owl_relaxed_handles(t, nt) says whether the dispatch gives it a tile of nt
 * tokens: q4_0, q4_K, q6_K always, q8_0 for GEMV only (its sign-split GEMM
 * measured slower than SIMD128's). Only the relaxed wasm build uses the
 * instruction; elsewhere it is emulated exactly (simd.h). */
int owl_relaxed_handles(owl_type t, int64_t nt);
void owl_dot_tile_relaxed(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                          const void *Xq, size_t q_stride, const void *Xx, size_t x_stride, int64_t nt,
                          float *Y, int64_t ldy);
/* ---- the tile dispatch (dispatch.c) ----
 * Activations of a tile: q = the q8 rows (f32 rows for f32/f16 weights), x =
 * the same rows expanded (NULL for f32/f16 weights). owl_expand_row fills x
 * (nothing to do in a build without SIMD128); owl_dot_tile computes
 * Y[t*ldy + r] = dot(W row r, activation row t) with the build's best tier. */
typedef struct {
    const void *q;
    size_t q_stride;
    const void *x;
    size_t x_stride;
} owl_tile_act;
void owl_expand_row(owl_type t, const void *q8row, void *xrow, int64_t n);
void owl_dot_tile(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                  const owl_tile_act *a, int64_t nt, float *Y, int64_t ldy);
/* Rows per tile for owl_dot_tile in a matmul of ntok tokens: OWL_TILE_ROWS,
 * or 8 for the relaxed build's q4_K / q6_K GEMM. */
int owl_tile_rows(owl_type type, int64_t ntok);
/* The eight 6-bit scales and mins of a q4_K block (packed: its scales[12]). */
void owl_q4_K_scales(const uint8_t *packed, uint8_t sc[8], uint8_t m[8]);

#endif
