/* quant_simd128.c - SIMD128 dots and activation quantizers.
 *
 * Same results as quant.c bit for bit: integer parts are exact, and float
 * parts follow the reference order (per-block scalar chains; lanes of an
 * f32x4 hold different output rows, never parts of one sum - except the f32 /
 * f16 dots, whose reference order is the 2 x f32x4 order itself).
 *
 * The work horse is owl_dot_tile_simd128: up to 4 weight rows x nt tokens,
 * against "expanded" activations (int16, even/odd order per 16, see types.h),
 * made once per matmul by owl_expand_row_simd128.
 * - GEMM (nt > 1): each weight (super)block of the 4 rows is unpacked once to
 *   int16 (K-quants pre-multiplied by their 6/8-bit sub-block scales, which
 *   keeps a whole 256-superblock in one int32 accumulator) and reused for up
 *   to 16 tokens: per 8 multiply-adds one load, one i32x4.dot_i16x8, one add.
 * - GEMV (nt == 1): unpacked straight into the dots (no reuse to pay for),
 *   the activations of a block (q4_K in wasm: of a 64-weight group) loaded
 *   once for the 4 rows; natively q4_K goes row by row (gemv_q4_K_rows).
 * The four rows' int32x4 partials are reduced together (a 4x4 transpose-add)
 * into one vector whose lanes are the rows, so the float update of the 4 rows
 * is one f32x4 multiply-add per block, in exactly the reference's order.
 * Measured speeds: docs/BENCHMARKS.md.
 * Natively on x86-64 this file is compiled twice: as it is (SSE4.1 through
 * SIMDe) and by quant_avx2.c with -mavx2, its entry points then named
 * *_avx2 (OWL_SIMD128_NAME); dispatch.c picks one by the CPU. */
#include <math.h>
#include <string.h>

#include "quant_util.h"
#include "simd.h"
#include "types.h"

#ifdef OWL_SIMD128_AVX2_VARIANT
#define OWL_SIMD128_NAME(name) name##_avx2
#else
#define OWL_SIMD128_NAME(name) name

size_t owl_xrow_size(owl_type t, int64_t n)
{
    if (n < 0)
        return 0;
    if (t == OWL_TYPE_Q8_0 && n % OWL_QK8_0 == 0)
        return (size_t)(n / OWL_QK8_0) * sizeof(owl_xblock_q8_0);
    if (t == OWL_TYPE_Q8_K && n % OWL_QK_K == 0)
        return (size_t)(n / OWL_QK_K) * sizeof(owl_xblock_q8_K);
    return 0;
}
#endif

#ifdef OWL_SIMD128

#include "simd_util.h"

/* Code-generation hints for the native build only (gcc + SIMDe); in wasm
 * they are empty, so clang's output stays what it was. gcc -O2 inlines the
 * GEMV helpers into the tile functions, which then keep the GEMM's
 * accumulators on the stack (q8_0 GEMM, the vision tower's: 1.3x slower
 * than with the helpers apart), and does not unroll the small constant loops
 * that clang unrolls (tile_q_0's rows, the q6_K GEMV's quarters): unrolled,
 * q8_0 GEMM 1024 x 4096 x 64 tokens takes 9.2 ms instead of 12.7, q6_K
 * GEMV 4096 x 4096 2.3 ms instead of 3.2 (1 thread, best of 15, EPYC;
 * docs/BENCHMARKS.md). Not the q4_K GEMV's row loop: interleaving its rows
 * is what made group-major slow natively. */
#ifdef __wasm_simd128__
#define NATIVE_NOINLINE
#define NATIVE_UNROLL(n)
#else
#define NATIVE_PRAGMA(x) _Pragma(#x)
#define NATIVE_NOINLINE __attribute__((noinline))
#define NATIVE_UNROLL(n) NATIVE_PRAGMA(GCC unroll n)
#endif

/* ---------------------------------------------------------------- unpacking */

/* 16 bytes of nibbles as 8 u16 lanes: w[0], w[1] = the low nibbles of the even
 * and odd bytes, w[2], w[3] = the high nibbles of the even and odd bytes, all
 * as int16 - matching the even/odd order of expanded activations. */
static inline void unpack_nibbles(const uint8_t *p, v128_t w[4])
{
    const v128_t m = wasm_i16x8_splat(0x000f);
    v128_t l = wasm_v128_load(p);
    w[0] = wasm_v128_and(l, m);
    w[1] = wasm_v128_and(wasm_u16x8_shr(l, 8), m);
    w[2] = wasm_v128_and(wasm_u16x8_shr(l, 4), m);
    w[3] = wasm_u16x8_shr(l, 12);
}

/* 16 int8 as int16: w[0] = even elements, w[1] = odd elements. */
static inline void unpack_i8(v128_t l, v128_t w[2])
{
    w[0] = wasm_i16x8_shr(wasm_i16x8_shl(l, 8), 8);
    w[1] = wasm_i16x8_shr(l, 8);
}

/* The 6-bit values of one q6_K quarter (k, c): v[s] = the 16 elements
 * 128k + 32s + 16c + (0..15), minus 32, as int8. */
static inline void unpack_q6_K(const owl_block_q6_K *b, int k, int c, v128_t v[4])
{
    const v128_t m4 = wasm_i8x16_splat(0x0f), m30 = wasm_i8x16_splat(0x30), k32 = wasm_i8x16_splat(32);
    const uint8_t *ql = b->ql + 64 * k, *qh = b->qh + 32 * k;
    v128_t l0 = wasm_v128_load(ql + 16 * c), l1 = wasm_v128_load(ql + 32 + 16 * c);
    v128_t h = wasm_v128_load(qh + 16 * c);
    /* 16-bit shifts: the bits they carry across bytes are masked off */
    v128_t h0 = wasm_v128_and(wasm_i16x8_shl(h, 4), m30), h1 = wasm_v128_and(wasm_i16x8_shl(h, 2), m30);
    v128_t h2 = wasm_v128_and(h, m30), h3 = wasm_v128_and(wasm_u16x8_shr(h, 2), m30);
    v[0] = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(l0, m4), h0), k32);
    v[1] = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(l1, m4), h1), k32);
    v[2] = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(l0, 4), m4), h2), k32);
    v[3] = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(l1, 4), m4), h3), k32);
}

static inline v128_t dot(v128_t a, const int16_t *y)
{
    return wasm_i32x4_dot_i16x8(a, wasm_v128_load(y));
}

/* ---------------------------------------------------------------- expansion */

static inline void expand16(const int8_t *q, int16_t *out)
{
    v128_t w[2];
    unpack_i8(wasm_v128_load(q), w);
    wasm_v128_store(out, w[0]);
    wasm_v128_store(out + 8, w[1]);
}

void OWL_SIMD128_NAME(owl_expand_row_simd128)(owl_type t, const void *q8row, void *xrow, int64_t n)
{
    if (t == OWL_TYPE_Q8_0) {
        const owl_block_q8_0 *x = q8row;
        owl_xblock_q8_0 *y = xrow;
        for (int64_t i = 0; i < n / OWL_QK8_0; i++) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = owl_f16_to_f32_inline(x[i].d);
            int32_t sum = 0;
            for (int j = 0; j < OWL_QK8_0; j++)
                sum += x[i].qs[j];
            y[i].sum = sum;
            expand16(x[i].qs, y[i].q);
            expand16(x[i].qs + 16, y[i].q + 16);
        }
    } else if (t == OWL_TYPE_Q8_K) {
        const owl_block_q8_K *x = q8row;
        owl_xblock_q8_K *y = xrow;
        for (int64_t i = 0; i < n / OWL_QK_K; i++) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = x[i].d;
            for (int j = 0; j < 8; j++)
                y[i].bs32[j] = (int16_t)(x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
            for (int j = 0; j < OWL_QK_K; j += 16)
                expand16(x[i].qs + j, y[i].q + j);
        }
    }
}

/* ---------------------------------------------------------------- q4_0, q8_0 */

/* A 32-block of 4 rows as int16 in expanded order (w[r][v] pairs with
 * activations q[8v..8v+7]); q4_0 keeps q in 0..15, its -8 is applied to the
 * sums through the activations' block sum. */
static inline void unpack_q_0(owl_type type, const uint8_t *blk, v128_t w[4])
{
    if (type == OWL_TYPE_Q4_0) {
        unpack_nibbles(((const owl_block_q4_0 *)blk)->qs, w); /* lo: 0-15, hi: 16-31 */
    } else {
        const int8_t *qs = ((const owl_block_q8_0 *)blk)->qs;
        unpack_i8(wasm_v128_load(qs), w);
        unpack_i8(wasm_v128_load(qs + 16), w + 2);
    }
}

/* ntok == 1 (decode): each row's block is unpacked straight into its dots,
 * the block's 4 activation vectors are loaded once for the 4 rows (the tile
 * below keeps all 16 unpacked vectors of the 4 rows live, for its tokens). */
NATIVE_NOINLINE static void gemv_q_0(int is4, int64_t nb, const uint8_t *const wr[4], size_t st,
                                     const owl_xblock_q8_0 *yb, v128_t *acc)
{
    for (int64_t b = 0; b < nb; b++, yb++) {
        const v128_t y0 = wasm_v128_load(yb->q), y1 = wasm_v128_load(yb->q + 8);
        const v128_t y2 = wasm_v128_load(yb->q + 16), y3 = wasm_v128_load(yb->q + 24);
        v128_t p[4];
        owl_f16 d[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = wr[r] + (size_t)b * st;
            v128_t w[4];
            unpack_q_0(is4 ? OWL_TYPE_Q4_0 : OWL_TYPE_Q8_0, blk, w);
            memcpy(&d[r], blk, sizeof(owl_f16));
            p[r] = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(w[0], y0), wasm_i32x4_dot_i16x8(w[1], y1)),
                                  wasm_i32x4_add(wasm_i32x4_dot_i16x8(w[2], y2), wasm_i32x4_dot_i16x8(w[3], y3)));
        }
        v128_t s = hsum4_i32(p[0], p[1], p[2], p[3]);
        if (is4)
            s = wasm_i32x4_sub(s, wasm_i32x4_splat(8 * yb->sum));
        v128_t dd = wasm_f32x4_mul(load_d4(d[0], d[1], d[2], d[3]), wasm_f32x4_splat(yb->d));
        *acc = wasm_f32x4_add(*acc, wasm_f32x4_mul(dd, wasm_f32x4_convert_i32x4(s)));
    }
}

static void tile_q_0(owl_type type, int64_t nb, const uint8_t *W, size_t ws, int r4, int nr,
                     const uint8_t *X, size_t xs, int64_t nt, float *Y, int64_t ldy, int accumulate)
{
    const int is4 = type == OWL_TYPE_Q4_0;
    const size_t bsz = is4 ? sizeof(owl_block_q4_0) : sizeof(owl_block_q8_0);
    const uint8_t *wr[8];
    size_t st[2];
    owl_tile_wrows(W, ws, r4, nr, bsz, wr, st); /* nr <= 4: group 0 */
    if (nt == 1) {
        v128_t acc;
        init_tile(&acc, nr, 1, Y, ldy, accumulate);
        gemv_q_0(is4, nb, wr, st[0], (const owl_xblock_q8_0 *)X, &acc);
        store_tile(&acc, nr, 1, Y, ldy);
        return;
    }
    for (int64_t t0 = 0; t0 < nt; t0 += TILE_T) {
        const int64_t tn = nt - t0 < TILE_T ? nt - t0 : TILE_T;
        v128_t acc[TILE_T];
        init_tile(acc, nr, tn, Y + t0 * ldy, ldy, accumulate);
        for (int64_t b = 0; b < nb; b++) {
            v128_t w[4][4];
            owl_f16 d[4];
            NATIVE_UNROLL(4)
            for (int r = 0; r < 4; r++) {
                const uint8_t *blk = wr[r] + (size_t)b * st[0];
                unpack_q_0(type, blk, w[r]);
                memcpy(&d[r], blk, sizeof(owl_f16)); /* d leads both block types */
            }
            const v128_t dw = load_d4(d[0], d[1], d[2], d[3]);
            for (int64_t t = 0; t < tn; t++) {
                const owl_xblock_q8_0 *yb = (const owl_xblock_q8_0 *)(X + xs * (size_t)(t0 + t)) + b;
                v128_t p[4];
                NATIVE_UNROLL(4)
                for (int r = 0; r < 4; r++)
                    p[r] = wasm_i32x4_add(wasm_i32x4_add(dot(w[r][0], yb->q), dot(w[r][1], yb->q + 8)),
                                          wasm_i32x4_add(dot(w[r][2], yb->q + 16), dot(w[r][3], yb->q + 24)));
                v128_t s = hsum4_i32(p[0], p[1], p[2], p[3]);
                if (is4)
                    s = wasm_i32x4_sub(s, wasm_i32x4_splat(8 * yb->sum));
                v128_t dd = wasm_f32x4_mul(dw, wasm_f32x4_splat(yb->d));
                acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(dd, wasm_f32x4_convert_i32x4(s)));
            }
        }
        store_tile(acc, nr, tn, Y + t0 * ldy, ldy);
    }
}

/* ---------------------------------------------------------------- q4_K, q6_K */

/* A superblock as 32 int16x8 (w[v] pairs with activations q[8v..8v+7]), each
 * pre-multiplied by its sub-block scale: one int32 accumulator then holds the
 * whole superblock (|w| <= 15 * 63 or 32 * 128, so pairs fit int32 easily). */
static inline void unpack_q4_K(const owl_block_q4_K *b, v128_t w[32], v128_t *mins)
{
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++)
        owl_q4_K_scale_min(j, b->scales, &sc[j], &m[j]);
    for (int g = 0; g < 4; g++) {
        v128_t s0 = wasm_i16x8_splat(sc[2 * g]), s1 = wasm_i16x8_splat(sc[2 * g + 1]);
        for (int c = 0; c < 2; c++) {
            v128_t u[4];
            unpack_nibbles(b->qs + 32 * g + 16 * c, u); /* lo: sub-block 2g, hi: 2g+1 */
            w[8 * g + 2 * c + 0] = wasm_i16x8_mul(u[0], s0);
            w[8 * g + 2 * c + 1] = wasm_i16x8_mul(u[1], s0);
            w[8 * g + 4 + 2 * c + 0] = wasm_i16x8_mul(u[2], s1);
            w[8 * g + 4 + 2 * c + 1] = wasm_i16x8_mul(u[3], s1);
        }
    }
    *mins = wasm_i16x8_make(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
}

static inline void unpack_q6_K_all(const owl_block_q6_K *b, v128_t w[32])
{
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 2; c++) {
            v128_t v[4];
            unpack_q6_K(b, k, c, v);
            for (int s = 0; s < 4; s++) {
                const int j = 8 * k + 2 * s + c; /* sub-block of 16 */
                v128_t sc = wasm_i16x8_splat(b->scales[j]), e[2];
                unpack_i8(v[s], e);
                w[2 * j + 0] = wasm_i16x8_mul(e[0], sc);
                w[2 * j + 1] = wasm_i16x8_mul(e[1], sc);
            }
        }
}


/* i16x8 (v[2g] x 4, v[2g+1] x 4): the scales of sub-blocks 2g and 2g+1 */
static inline v128_t pair_scales(v128_t v, int g)
{
    switch (g) {
    case 0: return wasm_i16x8_shuffle(v, v, 0, 0, 0, 0, 1, 1, 1, 1);
    case 1: return wasm_i16x8_shuffle(v, v, 2, 2, 2, 2, 3, 3, 3, 3);
    case 2: return wasm_i16x8_shuffle(v, v, 4, 4, 4, 4, 5, 5, 5, 5);
    default: return wasm_i16x8_shuffle(v, v, 6, 6, 6, 6, 7, 7, 7, 7);
    }
}

/* ntok == 1 (decode): nothing to reuse across tokens, so each row's bytes go
 * straight into the dots. Same integer sums (int32, exact: order-free), same
 * float updates as the tile.
 *
 * q4_K has two orders, both built everywhere, each run where it is faster
 * (gemv_q4_K below picks): group-major in wasm, row-major natively.
 *
 * q4_K, group-major (wasm): for each 64-weight group g its 8 activation vectors are
 * loaded once and used by the 4 rows (row-major, the compiler hoisted all 32
 * of a superblock out of the row loop, more than V8's 16 vector registers).
 * Nibbles without shifts: a 16-bit lane of weight bytes masked with 0x0f00 is
 * the odd byte's low nibble times 256, with 0x00f0 the even byte's high nibble
 * times 16; their dots are summed apart and shifted back, exactly (every
 * product is a multiple of 256 / 16, and |lane| < 2^21). The two partials of
 * a group (sub-blocks 2g, 2g+1) then hold at most 8 products of 15 x 128 a
 * lane (15360): they narrow to one i16x8 and take their scales in one dot. */
NATIVE_NOINLINE static void gemv_q4_K_groups(int64_t nb, const uint8_t *const wr[4], size_t st,
                                             const owl_xblock_q8_K *yb, v128_t *acc)
{
    const v128_t m0 = wasm_i16x8_splat(0x000f), m1 = wasm_i16x8_splat(0x0f00), m2 = wasm_i16x8_splat(0x00f0);
    for (int64_t b = 0; b < nb; b++, yb++) {
        const owl_block_q4_K *x[4];
        v128_t sc[4], a[4], mp[4];
        owl_f16 d[4], dmin[4];
        const v128_t bs = wasm_v128_load(yb->bs32);
        for (int r = 0; r < 4; r++) {
            v128_t m;
            x[r] = (const owl_block_q4_K *)(wr[r] + (size_t)b * st);
            q4_K_scales_v(x[r], &sc[r], &m);
            mp[r] = wasm_i32x4_dot_i16x8(m, bs);
            a[r] = wasm_i32x4_splat(0);
            d[r] = x[r]->d;
            dmin[r] = x[r]->dmin;
        }
        for (int g = 0; g < 4; g++) {
            /* y[0..3]: sub-block 2g (even, odd of each 16), y[4..7]: sub-block 2g+1 */
            const int16_t *yl = yb->q + 64 * g, *yh = yl + 32;
            v128_t y[8];
            for (int k = 0; k < 4; k++) {
                y[k] = wasm_v128_load(yl + 8 * k);
                y[4 + k] = wasm_v128_load(yh + 8 * k);
            }
            for (int r = 0; r < 4; r++) {
                const v128_t l0 = wasm_v128_load(x[r]->qs + 32 * g), l1 = wasm_v128_load(x[r]->qs + 32 * g + 16);
                v128_t a1 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(l0, m0), y[0]),
                                           wasm_i32x4_dot_i16x8(wasm_v128_and(l1, m0), y[2]));
                v128_t a256 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(l0, m1), y[1]),
                                             wasm_i32x4_dot_i16x8(wasm_v128_and(l1, m1), y[3]));
                v128_t b16 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(l0, m2), y[4]),
                                            wasm_i32x4_dot_i16x8(wasm_v128_and(l1, m2), y[6]));
                v128_t b1 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_u16x8_shr(l0, 12), y[5]),
                                           wasm_i32x4_dot_i16x8(wasm_u16x8_shr(l1, 12), y[7]));
                v128_t lo = wasm_i32x4_add(a1, wasm_i32x4_shr(a256, 8));
                v128_t hi = wasm_i32x4_add(wasm_i32x4_shr(b16, 4), b1);
                a[r] = wasm_i32x4_add(a[r], wasm_i32x4_dot_i16x8(wasm_i16x8_narrow_i32x4(lo, hi),
                                                                 pair_scales(sc[r], g)));
            }
        }
        *acc = update_K(1, *acc, a, mp, d, dmin, yb->d);
    }
}

/* q4_K, row-major (native): each row's superblock in one go, its 8 sub-block
 * partials reduced to one vector per 4 (lanes = sub-blocks) and scaled there.
 * Natively (gcc + SIMDe over SSE4.1, x86-64) this order streams the weights
 * ~1.8x faster than group-major, whose 4 interleaved rows stall on their
 * weight loads (same instruction count): 4096 x 4096, 16 matrices in turn
 * (beyond the caches), 1 thread, best of 9, on the EPYC: 1.46 ms vs 2.66 ms
 * a call (docs/BENCHMARKS.md, "Native regression"). */
static inline v128_t gemv_row_q4_K(const owl_block_q4_K *x, const owl_xblock_q8_K *y, v128_t *summ_part)
{
    v128_t sc, m, p[8];
    q4_K_scales_v(x, &sc, &m);
    for (int g = 0; g < 4; g++) {
        v128_t u[4], v[4];
        const int16_t *yl = y->q + 64 * g, *yh = yl + 32;
        unpack_nibbles(x->qs + 32 * g, u);
        unpack_nibbles(x->qs + 32 * g + 16, v);
        p[2 * g] = wasm_i32x4_add(wasm_i32x4_add(dot(u[0], yl), dot(u[1], yl + 8)),
                                  wasm_i32x4_add(dot(v[0], yl + 16), dot(v[1], yl + 24)));
        p[2 * g + 1] = wasm_i32x4_add(wasm_i32x4_add(dot(u[2], yh), dot(u[3], yh + 8)),
                                      wasm_i32x4_add(dot(v[2], yh + 16), dot(v[3], yh + 24)));
    }
    v128_t s0 = hsum4_i32(p[0], p[1], p[2], p[3]), s1 = hsum4_i32(p[4], p[5], p[6], p[7]);
    *summ_part = wasm_i32x4_dot_i16x8(m, wasm_v128_load(y->bs32));
    return wasm_i32x4_add(wasm_i32x4_mul(s0, wasm_u32x4_extend_low_u16x8(sc)),
                          wasm_i32x4_mul(s1, wasm_u32x4_extend_high_u16x8(sc)));
}

NATIVE_NOINLINE static void gemv_q4_K_rows(int64_t nb, const uint8_t *const wr[4], size_t st,
                                           const owl_xblock_q8_K *yb, v128_t *acc)
{
    for (int64_t b = 0; b < nb; b++, yb++) {
        v128_t a[4], mp[4];
        owl_f16 d[4], dmin[4];
        for (int r = 0; r < 4; r++) {
            const owl_block_q4_K *x = (const owl_block_q4_K *)(wr[r] + (size_t)b * st);
            a[r] = gemv_row_q4_K(x, yb, &mp[r]);
            d[r] = x->d;
            dmin[r] = x->dmin;
        }
        *acc = update_K(1, *acc, a, mp, d, dmin, yb->d);
    }
}

#ifdef __wasm_simd128__
#define gemv_q4_K gemv_q4_K_groups
#else
#define gemv_q4_K gemv_q4_K_rows
#endif

/* q6_K, one row: the scales go on pairs of sub-block partials, whose lanes sum
 * 4 products of |q - 32| <= 32 and |a| <= 128 (<= 16384, int16-safe): two
 * partials narrow to one i16x8 and take their two scales in one dot (instead
 * of an i32x4.mul per sub-block). */
static inline v128_t gemv_row_q6_K(const owl_block_q6_K *b, const owl_xblock_q8_K *y)
{
    const v128_t sc8 = wasm_v128_load(b->scales);
    const v128_t slo = wasm_i16x8_extend_low_i8x16(sc8), shi = wasm_i16x8_extend_high_i8x16(sc8);
    v128_t acc = wasm_i32x4_splat(0);
    NATIVE_UNROLL(2)
    for (int k = 0; k < 2; k++) {
        NATIVE_UNROLL(2)
        for (int c = 0; c < 2; c++) {
            v128_t v[4], p[4];
            unpack_q6_K(b, k, c, v);
            NATIVE_UNROLL(4)
            for (int s = 0; s < 4; s++) {
                const int j = 8 * k + 2 * s + c; /* sub-block of 16 */
                v128_t e[2];
                unpack_i8(v[s], e);
                p[s] = wasm_i32x4_add(dot(e[0], y->q + 16 * j), dot(e[1], y->q + 16 * j + 8));
            }
            /* sub-blocks 8k + c + {0, 2} and 8k + c + {4, 6}: lanes c, 2 + c, 4 + c, 6 + c of the half */
            const v128_t h = k ? shi : slo;
            const v128_t s01 = c ? wasm_i16x8_shuffle(h, h, 1, 1, 1, 1, 3, 3, 3, 3)
                                 : wasm_i16x8_shuffle(h, h, 0, 0, 0, 0, 2, 2, 2, 2);
            const v128_t s23 = c ? wasm_i16x8_shuffle(h, h, 5, 5, 5, 5, 7, 7, 7, 7)
                                 : wasm_i16x8_shuffle(h, h, 4, 4, 4, 4, 6, 6, 6, 6);
            acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_narrow_i32x4(p[0], p[1]), s01));
            acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_narrow_i32x4(p[2], p[3]), s23));
        }
    }
    return acc;
}

NATIVE_NOINLINE static void gemv_q6_K(int64_t nb, const uint8_t *const wr[4], size_t st, const owl_xblock_q8_K *yb,
                                      v128_t *acc)
{
    for (int64_t b = 0; b < nb; b++, yb++) {
        v128_t a[4];
        owl_f16 d[4];
        for (int r = 0; r < 4; r++) {
            const owl_block_q6_K *x = (const owl_block_q6_K *)(wr[r] + (size_t)b * st);
            a[r] = gemv_row_q6_K(x, yb);
            d[r] = x->d;
        }
        *acc = update_K(0, *acc, a, a, d, d, yb->d);
    }
}

static void tile_q_K(owl_type type, int64_t nb, const uint8_t *W, size_t ws, int r4, int nr,
                     const uint8_t *X, size_t xs, int64_t nt, float *Y, int64_t ldy, int accumulate)
{
    const int is4 = type == OWL_TYPE_Q4_K;
    const size_t bsz = is4 ? sizeof(owl_block_q4_K) : sizeof(owl_block_q6_K);
    const uint8_t *wr[8];
    size_t st[2];
    owl_tile_wrows(W, ws, r4, nr, bsz, wr, st); /* nr <= 4: group 0 */
    if (nt == 1) {
        v128_t acc;
        init_tile(&acc, nr, 1, Y, ldy, accumulate);
        if (is4)
            gemv_q4_K(nb, wr, st[0], (const owl_xblock_q8_K *)X, &acc);
        else
            gemv_q6_K(nb, wr, st[0], (const owl_xblock_q8_K *)X, &acc);
        store_tile(&acc, nr, 1, Y, ldy);
        return;
    }
    for (int64_t t0 = 0; t0 < nt; t0 += TILE_T) {
        const int64_t tn = nt - t0 < TILE_T ? nt - t0 : TILE_T;
        v128_t acc[TILE_T];
        init_tile(acc, nr, tn, Y + t0 * ldy, ldy, accumulate);
        for (int64_t b = 0; b < nb; b++) {
            v128_t w[4][32], mins[4] = {0};
            owl_f16 d[4], dmin[4] = {0};
            for (int r = 0; r < 4; r++) {
                const uint8_t *blk = wr[r] + (size_t)b * st[0];
                if (is4) {
                    const owl_block_q4_K *x = (const owl_block_q4_K *)blk;
                    unpack_q4_K(x, w[r], &mins[r]);
                    d[r] = x->d;
                    dmin[r] = x->dmin;
                } else {
                    const owl_block_q6_K *x = (const owl_block_q6_K *)blk;
                    unpack_q6_K_all(x, w[r]);
                    d[r] = x->d;
                }
            }
            for (int64_t t = 0; t < tn; t++) {
                const owl_xblock_q8_K *yb = (const owl_xblock_q8_K *)(X + xs * (size_t)(t0 + t)) + b;
                v128_t a[4], mp[4] = {0};
                v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
                for (int v = 0; v < 32; v++) {
                    v128_t y = wasm_v128_load(yb->q + 8 * v);
                    a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(w[0][v], y));
                    a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(w[1][v], y));
                    a2 = wasm_i32x4_add(a2, wasm_i32x4_dot_i16x8(w[2][v], y));
                    a3 = wasm_i32x4_add(a3, wasm_i32x4_dot_i16x8(w[3][v], y));
                }
                a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
                if (is4) {
                    v128_t bs = wasm_v128_load(yb->bs32);
                    for (int r = 0; r < 4; r++)
                        mp[r] = wasm_i32x4_dot_i16x8(mins[r], bs);
                }
                acc[t] = update_K(is4, acc[t], a, mp, d, dmin, yb->d);
            }
        }
        store_tile(acc, nr, tn, Y + t0 * ldy, ldy);
    }
}

/* ---------------------------------------------------------------- f32, f16 */

/* x holds 8 weights widened to f32 in (w0, w1); the reference's 2 x f32x4 order. */
static inline float finish8(v128_t a0, v128_t a1)
{
    v128_t s = wasm_f32x4_add(a0, a1);
    return (lane(s, 0) + lane(s, 1)) + (lane(s, 2) + lane(s, 3));
}

/* acc (a0, a1) of T tokens += w[0..cn) . x[t][c0..c0+cn); T is 4 or 1 (a
 * constant after inlining), so the weight loads are shared by T tokens. */
static inline void fdot_chunk(const float *w, int64_t cn, const float *const *x, int64_t c0,
                              v128_t *a0, v128_t *a1, int T)
{
    v128_t s0[4], s1[4];
    for (int t = 0; t < T; t++)
        s0[t] = a0[t], s1[t] = a1[t];
    for (int64_t i = 0; i < cn; i += 8) {
        v128_t w0 = wasm_v128_load(w + i), w1 = wasm_v128_load(w + i + 4);
        for (int t = 0; t < T; t++) {
            s0[t] = wasm_f32x4_add(s0[t], wasm_f32x4_mul(w0, wasm_v128_load(x[t] + c0 + i)));
            s1[t] = wasm_f32x4_add(s1[t], wasm_f32x4_mul(w1, wasm_v128_load(x[t] + c0 + i + 4)));
        }
    }
    for (int t = 0; t < T; t++)
        a0[t] = s0[t], a1[t] = s1[t];
}

#define FCHUNK 512 /* f16 weights widened per chunk, reused by all tokens */

/* One weight row at a time against up to 16 tokens: the row is taken in
 * chunks (f16 widened once per chunk into a stack buffer), each chunk runs
 * over the tokens 4 at a time sharing the weight loads; the accumulators of
 * the 16 tokens carry across chunks, so every dot keeps the reference order. */
static void tile_float(owl_type type, int64_t n, const uint8_t *W, size_t ws, int nr,
                       const uint8_t *X, size_t xs, int64_t nt, float *Y, int64_t ldy)
{
    const int64_t n8 = n - n % 8;
    v128_t buf[FCHUNK / 4];
    for (int r = 0; r < nr; r++) {
        const float *wf = (const float *)(W + ws * (size_t)r);
        const owl_f16 *wh = (const owl_f16 *)(W + ws * (size_t)r);
        for (int64_t t0 = 0; t0 < nt; t0 += TILE_T) {
            const int64_t tn = nt - t0 < TILE_T ? nt - t0 : TILE_T;
            const float *x[TILE_T];
            v128_t a0[TILE_T], a1[TILE_T];
            for (int64_t t = 0; t < tn; t++) {
                x[t] = (const float *)(X + xs * (size_t)(t0 + t));
                a0[t] = a1[t] = wasm_f32x4_splat(0.0f);
            }
            for (int64_t c0 = 0; c0 < n8; c0 += FCHUNK) {
                const int64_t cn = n8 - c0 < FCHUNK ? n8 - c0 : FCHUNK;
                const float *w = wf + c0;
                if (type == OWL_TYPE_F16) {
                    for (int64_t i = 0; i < cn; i += 8) {
                        f16x8_to_f32x8(wasm_v128_load(wh + c0 + i), &buf[i / 4], &buf[i / 4 + 1]);
                    }
                    w = (const float *)buf;
                }
                int64_t t = 0;
                for (; t + 4 <= tn; t += 4)
                    fdot_chunk(w, cn, x + t, c0, a0 + t, a1 + t, 4);
                for (; t < tn; t++)
                    fdot_chunk(w, cn, x + t, c0, a0 + t, a1 + t, 1);
            }
            for (int64_t t = 0; t < tn; t++) {
                float sum = finish8(a0[t], a1[t]);
                for (int64_t i = n8; i < n; i++)
                    sum += (type == OWL_TYPE_F32 ? wf[i] : owl_f16_to_f32_inline(wh[i])) * x[t][i];
                Y[(t0 + t) * ldy + r] = sum;
            }
        }
    }
}

void OWL_SIMD128_NAME(owl_dot_tile_simd128)(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                          const void *X, size_t x_stride, int64_t nt, float *Y, int64_t ldy,
                          int accumulate)
{
    if (nr <= 0 || nt <= 0)
        return;
    switch (type) {
    case OWL_TYPE_Q4_0:
    case OWL_TYPE_Q8_0:
        tile_q_0(type, n / OWL_QK8_0, W, w_stride, r4, nr, X, x_stride, nt, Y, ldy, accumulate);
        break;
    case OWL_TYPE_Q4_K:
    case OWL_TYPE_Q6_K:
        tile_q_K(type, n / OWL_QK_K, W, w_stride, r4, nr, X, x_stride, nt, Y, ldy, accumulate);
        break;
    case OWL_TYPE_F32:
    case OWL_TYPE_F16:
        tile_float(type, n, W, w_stride, nr, X, x_stride, nt, Y, ldy);
        break;
    default:
        for (int64_t t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                Y[t * ldy + r] = 0.0f;
        break;
    }
}

/* One dot: the activations are expanded a few blocks at a time on the stack
 * and the tile continues the same float chain across the pieces. */
float OWL_SIMD128_NAME(owl_vec_dot_simd128)(owl_type type, int64_t n, const void *x, const void *y)
{
    float out = 0.0f;
    if (type == OWL_TYPE_F32 || type == OWL_TYPE_F16) {
        OWL_SIMD128_NAME(owl_dot_tile_simd128)(type, n, x, 0, 0, 1, y, 0, 1, &out, 1, 0);
        return out;
    }
    const owl_type_traits *wt = owl_type_get((int)type);
    if (!wt || (type != OWL_TYPE_Q4_0 && type != OWL_TYPE_Q8_0 && type != OWL_TYPE_Q4_K &&
                type != OWL_TYPE_Q6_K))
        return 0.0f;
    const owl_type_traits *yt = owl_type_get((int)wt->vec_dot_type);
    const int64_t per = type == OWL_TYPE_Q4_0 || type == OWL_TYPE_Q8_0 ? 16 : 4; /* blocks a piece */
    _Static_assert(16 * sizeof(owl_xblock_q8_0) <= 4 * sizeof(owl_xblock_q8_K), "piece buffer");
    v128_t buf[(4 * sizeof(owl_xblock_q8_K) + 15) / 16];
    const int64_t nb = n / wt->blck_size;
    for (int64_t b = 0; b < nb; b += per) {
        const int64_t k = nb - b < per ? nb - b : per;
        OWL_SIMD128_NAME(owl_expand_row_simd128)(wt->vec_dot_type, (const uint8_t *)y + (size_t)b * yt->type_size, buf,
                               k * yt->blck_size);
        OWL_SIMD128_NAME(owl_dot_tile_simd128)(type, k * wt->blck_size, (const uint8_t *)x + (size_t)b * wt->type_size, 0, 0,
                             1, buf, 0, 1, &out, 1, b > 0);
    }
    return out;
}

/* ---------------------------------------------------------------- quantizers */

static inline float hmax4(v128_t v)
{
    float a = fmaxf(lane(v, 0), lane(v, 1)), b = fmaxf(lane(v, 2), lane(v, 3));
    return fmaxf(a, b);
}

/* roundf (half away from zero) of each lane, exactly. */
static inline v128_t round_away(v128_t v)
{
    v128_t t = wasm_f32x4_trunc(v);
    v128_t frac = wasm_f32x4_abs(wasm_f32x4_sub(v, t));
    v128_t one = wasm_v128_or(wasm_v128_and(v, wasm_i32x4_splat((int32_t)0x80000000)),
                              wasm_f32x4_splat(1.0f));
    v128_t adj = wasm_v128_and(one, wasm_f32x4_ge(frac, wasm_f32x4_splat(0.5f)));
    return wasm_f32x4_add(t, adj);
}

static inline v128_t narrow_i32_to_i8(v128_t a, v128_t b, v128_t c, v128_t d)
{
    return wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d));
}

static void quantize_q8_0(const float *x, owl_block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += OWL_QK8_0) {
        v128_t v[8], m = wasm_f32x4_splat(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = wasm_v128_load(x + 4 * k);
            m = wasm_f32x4_max(m, wasm_f32x4_abs(v[k]));
        }
        const float d = hmax4(m) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = owl_f32_to_f16(d);
        v128_t q[8];
        for (int k = 0; k < 8; k++)
            q[k] = wasm_i32x4_trunc_sat_f32x4(round_away(wasm_f32x4_mul(v[k], wasm_f32x4_splat(id))));
        wasm_v128_store(y[i].qs, narrow_i32_to_i8(q[0], q[1], q[2], q[3]));
        wasm_v128_store(y[i].qs + 16, narrow_i32_to_i8(q[4], q[5], q[6], q[7]));
    }
}

static void quantize_q8_K(const float *x, owl_block_q8_K *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += OWL_QK_K) {
        v128_t m = wasm_f32x4_splat(0.0f);
        for (int k = 0; k < OWL_QK_K; k += 4)
            m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(x + k)));
        const float amax = hmax4(m);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = amax; /* the reference keeps the first element of largest |x| */
        for (int k = 0; k < OWL_QK_K; k++)
            if (fabsf(x[k]) == amax) {
                max = x[k];
                break;
            }
        const float iscale = -127.f / max;
        const v128_t vs = wasm_f32x4_splat(iscale), magic = wasm_f32x4_splat(12582912.f);
        const v128_t mant = wasm_i32x4_splat(0x007fffff), off = wasm_i32x4_splat(0x00400000);
        for (int k = 0; k < OWL_QK_K; k += 16) {
            v128_t q[4];
            for (int j = 0; j < 4; j++) {
                v128_t f = wasm_f32x4_add(wasm_f32x4_mul(vs, wasm_v128_load(x + k + 4 * j)), magic);
                q[j] = wasm_i32x4_min(wasm_i32x4_sub(wasm_v128_and(f, mant), off), wasm_i32x4_splat(127));
            }
            v128_t q8 = narrow_i32_to_i8(q[0], q[1], q[2], q[3]);
            wasm_v128_store(y[i].qs + k, q8);
            v128_t s = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(q8));
            y[i].bsums[k / 16] = (int16_t)(wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 1) +
                                           wasm_i32x4_extract_lane(s, 2) + wasm_i32x4_extract_lane(s, 3));
        }
        y[i].d = 1 / iscale;
    }
}

void OWL_SIMD128_NAME(owl_quantize_row_simd128)(owl_type type, const float *x, void *y, int64_t n)
{
    switch (type) {
    case OWL_TYPE_Q8_0: quantize_q8_0(x, y, n / OWL_QK8_0); break;
    case OWL_TYPE_Q8_K: quantize_q8_K(x, y, n / OWL_QK_K); break;
    default: break; /* weights are quantized offline, by the reference */
    }
}

#endif
