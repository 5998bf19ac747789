/* quant_relaxed.c - relaxed-SIMD tile kernels for q4_0, q4_K, q6_K (and q8_0) weights.
 *
 * Same results as quant.c bit for bit. The work horse is owl_relaxed_dot
 * (simd.h): 16 int8 x int8 multiply-adds per instruction, 8 per
 * i32x4.dot_i16x8_s in quant_simd128.c. Its second operand must stay in
 * 0..127, so it always holds the unsigned weight magnitudes (q4 nibbles 0..15,
 * q6 values 0..63) and the first the signed q8 activations, read straight from
 * the q8 rows (natural order, no int16 expansion). The weights' offsets are
 * folded in with the activations' block sums, exactly:
 *   q4_0: sum (q - 8) a = sum q a - 8 sum a          (sum a: the expanded row)
 *   q4_K: sumi = sum_j sc_j (q . a)_j, summ from the q8_K sums as in quant.c
 *   q6_K: sum_j sc_j ((q - 32) . a)_j = sum_j sc_j (q . a)_j - 32 sum_j sc_j bsums_j
 * Sub-block scales go onto the int32 partials (pre-multiplied weights would
 * leave 0..127). GEMV: a partial lane holds at most 8 products of |q| <= 63
 * and |a| <= 128 (or 4 for q6_K): |lane| <= 32256, so pairs of partials
 * narrow to int16 exactly and take their scales in one i32x4.dot_i16x8_s.
 * q4_K / q6_K GEMM: the 4 rows in the lanes of every dot (see gemm_q4_K), one
 * i32x4.mul applies a sub-block's scales to the 4 rows.
 * Every float update is the reference's, lanes = the 4 rows of a tile.
 * q8_0 (signed weights and activations) splits the activations in two dots,
 * see tile_q8_0: faster than SIMD128's GEMV, slower than its GEMM, so
 * owl_relaxed_handles takes q8_0 for one token only.
 *
 * In the relaxed wasm build this file alone is compiled with -mrelaxed-simd;
 * elsewhere owl_relaxed_dot is an exact emulation and the dispatch
 * (dispatch.c) does not pick these kernels (the tests call them directly). */

#include "quant_util.h"
#include "simd.h"
#include "types.h"

int owl_relaxed_handles(owl_type t, int64_t nt)
{
    return t == OWL_TYPE_Q4_0 || t == OWL_TYPE_Q4_K || t == OWL_TYPE_Q6_K || (t == OWL_TYPE_Q8_0 && nt == 1);
}

#ifdef OWL_SIMD128

#include "simd_util.h"

#define rdot owl_relaxed_dot

static inline v128_t lo4(v128_t l)
{
    return wasm_v128_and(l, wasm_i8x16_splat(0x0f));
}

static inline v128_t hi4(v128_t l)
{
    return wasm_v128_and(wasm_u16x8_shr(l, 4), wasm_i8x16_splat(0x0f));
}

/* i16x8 (v[2i] x 4, v[2i+1] x 4): the scales of partials 2i and 2i+1 */
static inline v128_t pair_scales(v128_t v, int i)
{
    switch (i) {
    case 0: return wasm_i16x8_shuffle(v, v, 0, 0, 0, 0, 1, 1, 1, 1);
    case 1: return wasm_i16x8_shuffle(v, v, 2, 2, 2, 2, 3, 3, 3, 3);
    case 2: return wasm_i16x8_shuffle(v, v, 4, 4, 4, 4, 5, 5, 5, 5);
    default: return wasm_i16x8_shuffle(v, v, 6, 6, 6, 6, 7, 7, 7, 7);
    }
}

/* sum over lanes of (p0 * s_lo + p1 * s_hi) as an i32x4 (p0, p1 int16-safe) */
static inline v128_t scale_pair(v128_t p0, v128_t p1, v128_t s)
{
    return wasm_i32x4_dot_i16x8(wasm_i16x8_narrow_i32x4(p0, p1), s);
}

/* ---------------------------------------------------------------- q4_0 */

static void tile_q4_0(int64_t nb, const uint8_t *W, size_t ws, int r4, int nr, const uint8_t *Xq, size_t qs,
                      const uint8_t *Xx, size_t xs, int64_t nt, float *Y, int64_t ldy)
{
    const uint8_t *wr[8];
    size_t st[2];
    owl_tile_wrows(W, ws, r4, nr, sizeof(owl_block_q4_0), wr, st); /* nr <= 4: group 0 */
    const v128_t zero = wasm_i32x4_splat(0);
    for (int64_t t0 = 0; t0 < nt; t0 += TILE_T) {
        const int64_t tn = nt - t0 < TILE_T ? nt - t0 : TILE_T;
        v128_t acc[TILE_T];
        init_tile(acc, nr, tn, Y + t0 * ldy, ldy, 0);
        for (int64_t b = 0; b < nb; b++) {
            v128_t lo[4], hi[4];
            owl_f16 d[4];
            for (int r = 0; r < 4; r++) {
                const owl_block_q4_0 *x = (const owl_block_q4_0 *)(wr[r] + (size_t)b * st[0]);
                const v128_t l = wasm_v128_load(x->qs);
                lo[r] = lo4(l); /* elements 0..15 */
                hi[r] = hi4(l); /* elements 16..31 */
                d[r] = x->d;
            }
            const v128_t dw = load_d4(d[0], d[1], d[2], d[3]);
            for (int64_t t = 0; t < tn; t++) {
                const owl_block_q8_0 *y = (const owl_block_q8_0 *)(Xq + qs * (size_t)(t0 + t)) + b;
                const owl_xblock_q8_0 *yx = (const owl_xblock_q8_0 *)(Xx + xs * (size_t)(t0 + t)) + b;
                const v128_t a0 = wasm_v128_load(y->qs), a1 = wasm_v128_load(y->qs + 16);
                v128_t p[4];
                for (int r = 0; r < 4; r++)
                    p[r] = rdot(a1, hi[r], rdot(a0, lo[r], zero));
                v128_t s = wasm_i32x4_sub(hsum4_i32(p[0], p[1], p[2], p[3]), wasm_i32x4_splat(8 * yx->sum));
                v128_t dd = wasm_f32x4_mul(dw, wasm_f32x4_splat(yx->d));
                acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(dd, wasm_f32x4_convert_i32x4(s)));
            }
        }
        store_tile(acc, nr, tn, Y + t0 * ldy, ldy);
    }
}

/* ---------------------------------------------------------------- q8_0 (sign split) */

/* q8_0 weights are signed, and the dot's second operand must stay in 0..127.
 * The weights go in the signed operand as they are, and the activations are
 * split instead, once per block and token for the 4 rows:
 *   a = (a & 0x7f) - 128 [a < 0],  so  sum w a = sum w (a & 0x7f) - 128 sum_{a < 0} w
 * two relaxed dots per 16 products, both exact (a lane sums 4 products of
 * |w| <= 128 and a part <= 127; the 7-bit operand's parts are 0..127 and
 * 0..1), and no per-weight work at all: a GEMV row block is 2 loads and 4
 * dots. (The first version split the weights, w = (w & 0x7f) - 128 [w < 0]:
 * 3 more operations per 16 weights; measured 0.86x the SIMD128 GEMV.) The
 * GEMM gains nothing (the SIMD128 tile unpacks a weight block once for 16
 * tokens too) and is slower: the split costs per token, and the two dot
 * chains need a shift and a subtract per row and block. */
static inline void split_act(const int8_t *q, v128_t lo[2], v128_t ng[2])
{
    for (int h = 0; h < 2; h++) {
        const v128_t a = wasm_v128_load(q + 16 * h);
        lo[h] = wasm_v128_and(a, wasm_i8x16_splat(0x7f));
        ng[h] = wasm_u8x16_shr(a, 7);
    }
}

static inline v128_t q8_0_row(v128_t w0, v128_t w1, const v128_t lo[2], const v128_t ng[2])
{
    const v128_t zero = wasm_i32x4_splat(0);
    const v128_t pl = rdot(w1, lo[1], rdot(w0, lo[0], zero));
    const v128_t pn = rdot(w1, ng[1], rdot(w0, ng[0], zero));
    return wasm_i32x4_sub(pl, wasm_i32x4_shl(pn, 7));
}

static void tile_q8_0(int64_t nb, const uint8_t *W, size_t ws, int r4, int nr, const uint8_t *Xq, size_t qs,
                      const uint8_t *Xx, size_t xs, int64_t nt, float *Y, int64_t ldy)
{
    const uint8_t *wr[8];
    size_t st[2];
    owl_tile_wrows(W, ws, r4, nr, sizeof(owl_block_q8_0), wr, st); /* nr <= 4: group 0 */
    (void)Xx, (void)xs;
    if (nt == 1) { /* GEMV: each row's weights straight from memory into the dots */
        v128_t acc;
        init_tile(&acc, nr, 1, Y, ldy, 0);
        const owl_block_q8_0 *y = (const owl_block_q8_0 *)Xq;
        for (int64_t b = 0; b < nb; b++, y++) {
            v128_t lo[2], ng[2], p[4];
            owl_f16 d[4];
            split_act(y->qs, lo, ng);
            for (int r = 0; r < 4; r++) {
                const owl_block_q8_0 *x = (const owl_block_q8_0 *)(wr[r] + (size_t)b * st[0]);
                p[r] = q8_0_row(wasm_v128_load(x->qs), wasm_v128_load(x->qs + 16), lo, ng);
                d[r] = x->d;
            }
            const v128_t dd = wasm_f32x4_mul(load_d4(d[0], d[1], d[2], d[3]), wasm_f32x4_splat(owl_f16_to_f32_inline(y->d)));
            acc = wasm_f32x4_add(acc, wasm_f32x4_mul(dd, wasm_f32x4_convert_i32x4(hsum4_i32(p[0], p[1], p[2], p[3]))));
        }
        store_tile(&acc, nr, 1, Y, ldy);
        return;
    }
    for (int64_t t0 = 0; t0 < nt; t0 += TILE_T) {
        const int64_t tn = nt - t0 < TILE_T ? nt - t0 : TILE_T;
        v128_t acc[TILE_T];
        init_tile(acc, nr, tn, Y + t0 * ldy, ldy, 0);
        for (int64_t b = 0; b < nb; b++) {
            v128_t w[4][2];
            owl_f16 d[4];
            for (int r = 0; r < 4; r++) {
                const owl_block_q8_0 *x = (const owl_block_q8_0 *)(wr[r] + (size_t)b * st[0]);
                w[r][0] = wasm_v128_load(x->qs);
                w[r][1] = wasm_v128_load(x->qs + 16);
                d[r] = x->d;
            }
            const v128_t dw = load_d4(d[0], d[1], d[2], d[3]);
            for (int64_t t = 0; t < tn; t++) {
                const owl_block_q8_0 *y = (const owl_block_q8_0 *)(Xq + qs * (size_t)(t0 + t)) + b;
                v128_t lo[2], ng[2], p[4];
                split_act(y->qs, lo, ng);
                for (int r = 0; r < 4; r++)
                    p[r] = q8_0_row(w[r][0], w[r][1], lo, ng);
                v128_t dd = wasm_f32x4_mul(dw, wasm_f32x4_splat(owl_f16_to_f32_inline(y->d)));
                acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(dd, wasm_f32x4_convert_i32x4(hsum4_i32(p[0], p[1], p[2], p[3]))));
            }
        }
        store_tile(acc, nr, tn, Y + t0 * ldy, ldy);
    }
}

/* ---------------------------------------------------------------- q4_K, q6_K */

/* GEMM (several tokens), rows in lanes. Per superblock and tile the 4 rows'
 * weight magnitudes are transposed by 4-byte groups once (w[j][k] = columns
 * 4k..4k+3 of sub-block j, rows 0..3) and reused by up to TILE_G tokens: a
 * token's 4 activations of a group, splatted, meet the 4 rows in one dot whose
 * lane r is row r's partial. So a sub-block's scales apply to the 4 rows'
 * partials in one i32x4.mul (no int16 narrowing), the bsums corrections are
 * one dot_i16x8 per pair of sub-blocks for the 4 rows, and there is no
 * horizontal sum: the int32 lanes are the reference's sumi / summ of rows 0..3
 * and the float update is update_K's without its hsum4. Only a few vectors
 * are live (dot chains, the token's activation vector, sumi): the previous
 * tile (4 rows' unpacked superblocks against one token, lanes = columns) kept
 * more than V8's 16 x64 vector registers. Measured 1.4x it (q4_K and q6_K).
 * The tile takes up to 8 rows (owl_tile_rows): two groups of 4 lanes share
 * each activation splat, +2-15 % over 4 rows (docs/BENCHMARKS.md). */
#define TILE_G 64 /* tokens per transposed superblock (the matmul's token block) */

/* o[k] = 4-byte group k of a, b, c, d (a 4x4 transpose of int32 lanes) */
static inline void transpose4x4(v128_t a, v128_t b, v128_t c, v128_t d, v128_t o[4])
{
    const v128_t ab0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), ab1 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
    const v128_t cd0 = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), cd1 = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
    o[0] = wasm_i64x2_shuffle(ab0, cd0, 0, 2);
    o[1] = wasm_i64x2_shuffle(ab0, cd0, 1, 3);
    o[2] = wasm_i64x2_shuffle(ab1, cd1, 0, 2);
    o[3] = wasm_i64x2_shuffle(ab1, cd1, 1, 3);
}

/* int32 lane k of v in all 4 lanes (a shuffle: the 16 splat loads of a
 * sub-block would all be scheduled first and spill) */
static inline v128_t splat_lane(v128_t v, int k)
{
    switch (k) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
    }
}

/* 4 rows' int16 pairs (v[r][2p], v[r][2p+1]), r = 0..3: against a splat of a
 * token's pair (b[2p], b[2p+1]), one dot_i16x8 gives the 4 rows' partials */
static inline v128_t rows_pair(const int16_t v[4][16], int p)
{
    return wasm_i16x8_make(v[0][2 * p], v[0][2 * p + 1], v[1][2 * p], v[1][2 * p + 1], v[2][2 * p], v[2][2 * p + 1],
                           v[3][2 * p], v[3][2 * p + 1]);
}

/* q4_K: one group of 4 rows (the lanes) of a superblock, transposed */
typedef struct {
    v128_t w[8][8]; /* w[j][k]: columns 4k..4k+3 of sub-block j, rows 0..3 */
    v128_t sc[8];   /* the 4 rows' scales of sub-block j */
    v128_t m[4];    /* rows_pair of the mins */
    v128_t d, dmin;
} q4k_rows;

static void q4k_rows_init(const uint8_t *const wr[4], size_t st, int64_t b, q4k_rows *g)
{
    const owl_block_q4_K *x[4];
    for (int r = 0; r < 4; r++)
        x[r] = (const owl_block_q4_K *)(wr[r] + (size_t)b * st);
    /* sub-block 2i: low nibbles of bytes 32i..32i+31, 2i + 1: their high nibbles */
    for (int i = 0; i < 4; i++)
        for (int h = 0; h < 2; h++) {
            v128_t lo[4], hi[4];
            for (int r = 0; r < 4; r++) {
                const v128_t l = wasm_v128_load(x[r]->qs + 32 * i + 16 * h);
                lo[r] = lo4(l);
                hi[r] = hi4(l);
            }
            transpose4x4(lo[0], lo[1], lo[2], lo[3], &g->w[2 * i][4 * h]);
            transpose4x4(hi[0], hi[1], hi[2], hi[3], &g->w[2 * i + 1][4 * h]);
        }
    int32_t sc[8][4];
    int16_t m[4][16];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 8; j++) {
            uint8_t s6, m6;
            owl_q4_K_scale_min(j, x[r]->scales, &s6, &m6);
            sc[j][r] = s6;
            m[r][j] = m6;
        }
    for (int j = 0; j < 8; j++)
        g->sc[j] = wasm_v128_load(sc[j]);
    for (int p = 0; p < 4; p++)
        g->m[p] = rows_pair(m, p);
    g->d = load_d4(x[0]->d, x[1]->d, x[2]->d, x[3]->d);
    g->dmin = load_d4(x[0]->dmin, x[1]->dmin, x[2]->dmin, x[3]->dmin);
}

/* acc += the 4 rows' float update for one token (sumi, and summ from the bsums pairs bs) */
static inline v128_t q4k_update(const q4k_rows *g, v128_t acc, v128_t sumi, v128_t bs, float yd)
{
    const v128_t summ = wasm_i32x4_add(
        wasm_i32x4_add(wasm_i32x4_dot_i16x8(g->m[0], splat_lane(bs, 0)), wasm_i32x4_dot_i16x8(g->m[1], splat_lane(bs, 1))),
        wasm_i32x4_add(wasm_i32x4_dot_i16x8(g->m[2], splat_lane(bs, 2)), wasm_i32x4_dot_i16x8(g->m[3], splat_lane(bs, 3))));
    const v128_t vyd = wasm_f32x4_splat(yd);
    const v128_t dd = wasm_f32x4_mul(g->d, vyd), dm = wasm_f32x4_mul(g->dmin, vyd);
    return wasm_f32x4_add(acc, wasm_f32x4_sub(wasm_f32x4_mul(dd, wasm_f32x4_convert_i32x4(sumi)),
                                              wasm_f32x4_mul(dm, wasm_f32x4_convert_i32x4(summ))));
}

/* ng groups of 4 rows (1 or 2, a constant after inlining): each activation splat serves them all.
 * Rows past nr repeat row nr - 1 (wr) and are not stored. */
static inline __attribute__((always_inline)) void gemm_q4_K_n(int64_t nb, const uint8_t *const wr[8], const size_t st[2], int nr,
                                                              const uint8_t *Xq, size_t qs, int64_t nt, float *Y,
                                                              int64_t ldy, const int ng)
{
    const v128_t zero = wasm_i32x4_splat(0);
    for (int64_t t0 = 0; t0 < nt; t0 += TILE_G) {
        const int64_t tn = nt - t0 < TILE_G ? nt - t0 : TILE_G;
        v128_t acc[TILE_G][2];
        for (int64_t t = 0; t < tn; t++)
            acc[t][0] = acc[t][1] = zero;
        for (int64_t b = 0; b < nb; b++) {
            q4k_rows g[2];
            for (int G = 0; G < ng; G++)
                q4k_rows_init(wr + 4 * G, st[G], b, &g[G]);
            for (int64_t t = 0; t < tn; t++) {
                const owl_block_q8_K *y = (const owl_block_q8_K *)(Xq + qs * (size_t)(t0 + t)) + b;
                v128_t s0 = zero, s1 = zero;
                for (int j = 0; j < 8; j++) {
                    const v128_t a0 = wasm_v128_load(y->qs + 32 * j), a1 = wasm_v128_load(y->qs + 32 * j + 16);
                    v128_t p0 = zero, p1 = zero, q0 = zero, q1 = zero;
                    for (int k = 0; k < 8; k += 2) {
                        const v128_t e = splat_lane(k < 4 ? a0 : a1, k & 3), o = splat_lane(k < 4 ? a0 : a1, (k & 3) + 1);
                        p0 = rdot(e, g[0].w[j][k], p0);
                        p1 = rdot(o, g[0].w[j][k + 1], p1);
                        if (ng == 2) {
                            q0 = rdot(e, g[1].w[j][k], q0);
                            q1 = rdot(o, g[1].w[j][k + 1], q1);
                        }
                    }
                    s0 = wasm_i32x4_add(s0, wasm_i32x4_mul(wasm_i32x4_add(p0, p1), g[0].sc[j]));
                    if (ng == 2)
                        s1 = wasm_i32x4_add(s1, wasm_i32x4_mul(wasm_i32x4_add(q0, q1), g[1].sc[j]));
                }
                /* summ = sum_j m_j (bsums[2j] + bsums[2j+1]); the pair sums fit int16 (|.| <= 32 * 128) */
                const v128_t b0 = wasm_v128_load(y->bsums), b1 = wasm_v128_load(y->bsums + 8);
                const v128_t bs = wasm_i16x8_add(wasm_i16x8_shuffle(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14),
                                                 wasm_i16x8_shuffle(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15));
                acc[t][0] = q4k_update(&g[0], acc[t][0], s0, bs, y->d);
                if (ng == 2)
                    acc[t][1] = q4k_update(&g[1], acc[t][1], s1, bs, y->d);
            }
        }
        for (int64_t t = 0; t < tn; t++)
            for (int r = 0; r < nr; r++)
                Y[(t0 + t) * ldy + r] = lane(acc[t][r >> 2], r & 3);
    }
}

/* The 6-bit values of a q6_K superblock (0..63, the -32 left to the bsums):
 * q[i] = elements 16i..16i+15, sub-block i. */
static inline void unpack_q6_K(const owl_block_q6_K *x, v128_t q[16])
{
    const v128_t m4 = wasm_i8x16_splat(0x0f), m30 = wasm_i8x16_splat(0x30);
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 2; c++) {
            const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
            const v128_t l0 = wasm_v128_load(ql + 16 * c), l1 = wasm_v128_load(ql + 32 + 16 * c);
            const v128_t hb = wasm_v128_load(qh + 16 * c);
            /* 16-bit shifts: the bits they carry across bytes are masked off */
            const v128_t h0 = wasm_v128_and(wasm_i16x8_shl(hb, 4), m30), h1 = wasm_v128_and(wasm_i16x8_shl(hb, 2), m30);
            const v128_t h2 = wasm_v128_and(hb, m30), h3 = wasm_v128_and(wasm_u16x8_shr(hb, 2), m30);
            /* elements 128h + 32s + 16c + (0..15): sub-block 8h + 2s + c */
            q[8 * h + 0 + c] = wasm_v128_or(wasm_v128_and(l0, m4), h0);
            q[8 * h + 2 + c] = wasm_v128_or(wasm_v128_and(l1, m4), h1);
            q[8 * h + 4 + c] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(l0, 4), m4), h2);
            q[8 * h + 6 + c] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(l1, 4), m4), h3);
        }
}

/* q6_K: 16 sub-blocks of 16 columns; sumi = sum_j sc_j (q . a)_j - 32 sum_j
 * sc_j bsums_j (|sumi| < 2^29: exact in int32). */
typedef struct {
    v128_t w[16][4]; /* w[j][k]: columns 4k..4k+3 of sub-block j, rows 0..3 */
    v128_t sc[16];   /* the 4 rows' scales of sub-block j */
    v128_t sp[8];    /* rows_pair of the scales (for the bsums) */
    v128_t d;
} q6k_rows;

/* q6_K: one group of 4 rows (the lanes) of a superblock, transposed */
static void q6k_rows_init(const uint8_t *const wr[4], size_t st, int64_t b, q6k_rows *g)
{
    const owl_block_q6_K *x[4];
    v128_t q[4][16];
    int32_t sc[16][4];
    int16_t s16[4][16];
    for (int r = 0; r < 4; r++) {
        x[r] = (const owl_block_q6_K *)(wr[r] + (size_t)b * st);
        unpack_q6_K(x[r], q[r]);
        for (int j = 0; j < 16; j++)
            sc[j][r] = s16[r][j] = x[r]->scales[j];
    }
    for (int j = 0; j < 16; j++) {
        transpose4x4(q[0][j], q[1][j], q[2][j], q[3][j], g->w[j]);
        g->sc[j] = wasm_v128_load(sc[j]);
    }
    for (int p = 0; p < 8; p++)
        g->sp[p] = rows_pair(s16, p);
    g->d = load_d4(x[0]->d, x[1]->d, x[2]->d, x[3]->d);
}

static inline v128_t q6k_update(const q6k_rows *g, v128_t acc, v128_t sumi, v128_t b0, v128_t b1, float yd)
{
    v128_t corr = wasm_i32x4_splat(0);
    for (int p = 0; p < 4; p++) {
        corr = wasm_i32x4_add(corr, wasm_i32x4_dot_i16x8(g->sp[p], splat_lane(b0, p)));
        corr = wasm_i32x4_add(corr, wasm_i32x4_dot_i16x8(g->sp[4 + p], splat_lane(b1, p)));
    }
    const v128_t isum = wasm_i32x4_sub(sumi, wasm_i32x4_shl(corr, 5));
    return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_mul(g->d, wasm_f32x4_splat(yd)), wasm_f32x4_convert_i32x4(isum)));
}

static inline __attribute__((always_inline)) void gemm_q6_K_n(int64_t nb, const uint8_t *const wr[8], const size_t st[2], int nr,
                                                              const uint8_t *Xq, size_t qs, int64_t nt, float *Y,
                                                              int64_t ldy, const int ng)
{
    const v128_t zero = wasm_i32x4_splat(0);
    for (int64_t t0 = 0; t0 < nt; t0 += TILE_G) {
        const int64_t tn = nt - t0 < TILE_G ? nt - t0 : TILE_G;
        v128_t acc[TILE_G][2];
        for (int64_t t = 0; t < tn; t++)
            acc[t][0] = acc[t][1] = zero;
        for (int64_t b = 0; b < nb; b++) {
            q6k_rows g[2];
            for (int G = 0; G < ng; G++)
                q6k_rows_init(wr + 4 * G, st[G], b, &g[G]);
            for (int64_t t = 0; t < tn; t++) {
                const owl_block_q8_K *y = (const owl_block_q8_K *)(Xq + qs * (size_t)(t0 + t)) + b;
                v128_t s0 = zero, s1 = zero;
                for (int j = 0; j < 16; j++) {
                    const v128_t a = wasm_v128_load(y->qs + 16 * j);
                    v128_t p0 = zero, p1 = zero, q0 = zero, q1 = zero;
                    for (int k = 0; k < 4; k += 2) {
                        const v128_t e = splat_lane(a, k), o = splat_lane(a, k + 1);
                        p0 = rdot(e, g[0].w[j][k], p0);
                        p1 = rdot(o, g[0].w[j][k + 1], p1);
                        if (ng == 2) {
                            q0 = rdot(e, g[1].w[j][k], q0);
                            q1 = rdot(o, g[1].w[j][k + 1], q1);
                        }
                    }
                    s0 = wasm_i32x4_add(s0, wasm_i32x4_mul(wasm_i32x4_add(p0, p1), g[0].sc[j]));
                    if (ng == 2)
                        s1 = wasm_i32x4_add(s1, wasm_i32x4_mul(wasm_i32x4_add(q0, q1), g[1].sc[j]));
                }
                const v128_t b0 = wasm_v128_load(y->bsums), b1 = wasm_v128_load(y->bsums + 8);
                acc[t][0] = q6k_update(&g[0], acc[t][0], s0, b0, b1, y->d);
                if (ng == 2)
                    acc[t][1] = q6k_update(&g[1], acc[t][1], s1, b0, b1, y->d);
            }
        }
        for (int64_t t = 0; t < tn; t++)
            for (int r = 0; r < nr; r++)
                Y[(t0 + t) * ldy + r] = lane(acc[t][r >> 2], r & 3);
    }
}

/* GEMV (one token): nothing to reuse across tokens, so each row's superblock
 * goes from its bytes straight into the dots. Same integer sums as the
 * GEMM (int32, exact: order-free). q6_K:
 * the token's 16 activation vectors are loaded once per superblock for the 4
 * rows. */
static inline v128_t gemv_row_q6_K(const owl_block_q6_K *x, const v128_t y[16], v128_t b0, v128_t b1)
{
    const v128_t zero = wasm_i32x4_splat(0), m4 = wasm_i8x16_splat(0x0f), m30 = wasm_i8x16_splat(0x30);
    const v128_t sc8 = wasm_v128_load(x->scales);
    const v128_t slo = wasm_i16x8_extend_low_i8x16(sc8), shi = wasm_i16x8_extend_high_i8x16(sc8);
    v128_t acc = zero;
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
        const v128_t s = h ? shi : slo;
        v128_t q[8]; /* sub-blocks 8h + 0..7 */
        for (int c = 0; c < 2; c++) {
            const v128_t l0 = wasm_v128_load(ql + 16 * c), l1 = wasm_v128_load(ql + 32 + 16 * c);
            const v128_t hb = wasm_v128_load(qh + 16 * c);
            q[0 + c] = wasm_v128_or(wasm_v128_and(l0, m4), wasm_v128_and(wasm_i16x8_shl(hb, 4), m30));
            q[2 + c] = wasm_v128_or(wasm_v128_and(l1, m4), wasm_v128_and(wasm_i16x8_shl(hb, 2), m30));
            q[4 + c] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(l0, 4), m4), wasm_v128_and(hb, m30));
            q[6 + c] = wasm_v128_or(wasm_v128_and(wasm_u16x8_shr(l1, 4), m4),
                                    wasm_v128_and(wasm_u16x8_shr(hb, 2), m30));
        }
        for (int i = 0; i < 4; i++) {
            v128_t p0 = rdot(y[8 * h + 2 * i], q[2 * i], zero), p1 = rdot(y[8 * h + 2 * i + 1], q[2 * i + 1], zero);
            acc = wasm_i32x4_add(acc, scale_pair(p0, p1, pair_scales(s, i)));
        }
    }
    v128_t corr = wasm_i32x4_add(wasm_i32x4_dot_i16x8(slo, b0), wasm_i32x4_dot_i16x8(shi, b1));
    return wasm_i32x4_sub(acc, wasm_i32x4_shl(corr, 5));
}

static void gemv_q6_K(int64_t nb, const uint8_t *const wr[4], size_t st, const owl_block_q8_K *yb, v128_t *acc)
{
    for (int64_t b = 0; b < nb; b++, yb++) {
        v128_t y[16], a[4];
        for (int i = 0; i < 16; i++)
            y[i] = wasm_v128_load(yb->qs + 16 * i);
        const v128_t b0 = wasm_v128_load(yb->bsums), b1 = wasm_v128_load(yb->bsums + 8);
        owl_f16 d[4];
        for (int r = 0; r < 4; r++) {
            const owl_block_q6_K *x = (const owl_block_q6_K *)(wr[r] + (size_t)b * st);
            a[r] = gemv_row_q6_K(x, y, b0, b1);
            d[r] = x->d;
        }
        *acc = update_K(0, *acc, a, a, d, d, yb->d);
    }
}

/* q4_K: group-major, for each 64-weight group its 4 activation vectors are
 * loaded once and used by the 4 rows: 4 live vectors instead of 16, which
 * V8's 16 x64 vector registers could not hold next to the rest. Measured
 * 1.45-2.7x the previous row-major q4_K GEMV in the A/B bench; the same
 * reorder gave q6_K nothing (0.98x; docs/BENCHMARKS.md). */
static void gemv_q4_K(int64_t nb, const uint8_t *const wr[4], size_t st, const owl_block_q8_K *yb, v128_t *acc)
{
    const v128_t zero = wasm_i32x4_splat(0);
    for (int64_t b = 0; b < nb; b++, yb++) {
        const owl_block_q4_K *x[4];
        v128_t sc[4], a[4], mp[4];
        owl_f16 d[4], dmin[4];
        const v128_t b0 = wasm_v128_load(yb->bsums), b1 = wasm_v128_load(yb->bsums + 8);
        for (int r = 0; r < 4; r++) {
            v128_t m;
            x[r] = (const owl_block_q4_K *)(wr[r] + (size_t)b * st);
            q4_K_scales_v(x[r], &sc[r], &m);
            mp[r] = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_shuffle(m, m, 0, 0, 1, 1, 2, 2, 3, 3), b0),
                                   wasm_i32x4_dot_i16x8(wasm_i16x8_shuffle(m, m, 4, 4, 5, 5, 6, 6, 7, 7), b1));
            a[r] = zero;
            d[r] = x[r]->d;
            dmin[r] = x[r]->dmin;
        }
        for (int g = 0; g < 4; g++) {
            const int8_t *yq = yb->qs + 64 * g;
            const v128_t y0 = wasm_v128_load(yq), y1 = wasm_v128_load(yq + 16);
            const v128_t y2 = wasm_v128_load(yq + 32), y3 = wasm_v128_load(yq + 48);
            for (int r = 0; r < 4; r++) {
                const v128_t l0 = wasm_v128_load(x[r]->qs + 32 * g), l1 = wasm_v128_load(x[r]->qs + 32 * g + 16);
                v128_t p0 = rdot(y1, lo4(l1), rdot(y0, lo4(l0), zero));
                v128_t p1 = rdot(y3, hi4(l1), rdot(y2, hi4(l0), zero));
                a[r] = wasm_i32x4_add(a[r], scale_pair(p0, p1, pair_scales(sc[r], g)));
            }
        }
        *acc = update_K(1, *acc, a, mp, d, dmin, yb->d);
    }
}

static void tile_q_K(int is4, int64_t nb, const uint8_t *W, size_t ws, int r4, int nr, const uint8_t *Xq,
                     size_t qs, int64_t nt, float *Y, int64_t ldy)
{
    const uint8_t *wr[8];
    size_t st[2];
    owl_tile_wrows(W, ws, r4, nr, is4 ? sizeof(owl_block_q4_K) : sizeof(owl_block_q6_K), wr, st);
    if (nt > 1) { /* up to 8 rows (owl_tile_rows) */
        if (is4 && nr > 4)
            gemm_q4_K_n(nb, wr, st, nr, Xq, qs, nt, Y, ldy, 2);
        else if (is4)
            gemm_q4_K_n(nb, wr, st, nr, Xq, qs, nt, Y, ldy, 1);
        else if (nr > 4)
            gemm_q6_K_n(nb, wr, st, nr, Xq, qs, nt, Y, ldy, 2);
        else
            gemm_q6_K_n(nb, wr, st, nr, Xq, qs, nt, Y, ldy, 1);
        return;
    }
    for (int r0 = 0; r0 < nr; r0 += 4) { /* GEMV (e.g. a token block's last token): 4 rows at a time */
        v128_t acc;
        const int n4 = nr - r0 < 4 ? nr - r0 : 4;
        init_tile(&acc, n4, 1, Y + r0, ldy, 0);
        if (is4)
            gemv_q4_K(nb, wr + r0, st[r0 / 4], (const owl_block_q8_K *)Xq, &acc);
        else
            gemv_q6_K(nb, wr + r0, st[r0 / 4], (const owl_block_q8_K *)Xq, &acc);
        store_tile(&acc, n4, 1, Y + r0, ldy);
    }
}

void owl_dot_tile_relaxed(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                          const void *Xq, size_t q_stride, const void *Xx, size_t x_stride, int64_t nt,
                          float *Y, int64_t ldy)
{
    if (nr <= 0 || nt <= 0)
        return;
    switch (type) {
    case OWL_TYPE_Q4_0:
        tile_q4_0(n / OWL_QK4_0, W, w_stride, r4, nr, Xq, q_stride, Xx, x_stride, nt, Y, ldy);
        break;
    case OWL_TYPE_Q8_0:
        tile_q8_0(n / OWL_QK8_0, W, w_stride, r4, nr, Xq, q_stride, Xx, x_stride, nt, Y, ldy);
        break;
    case OWL_TYPE_Q4_K:
    case OWL_TYPE_Q6_K:
        tile_q_K(type == OWL_TYPE_Q4_K, n / OWL_QK_K, W, w_stride, r4, nr, Xq, q_stride, nt, Y, ldy);
        break;
    default:
        for (int64_t t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                Y[t * ldy + r] = 0.0f;
        break;
    }
}

#endif
