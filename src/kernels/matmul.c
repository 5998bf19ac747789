/* matmul.c - Y = X W^T with quantized, f16 or f32 weights.
 *
 *   Y[t][r] = sum_c W[r][c] * X[t][c]   W (rows, cols) wt; X (ntok, cols) f32; Y (ntok, rows)
 *   (torch: y = F.linear(x, w), no bias)
 *
 * 1. Each X row is quantized once to wt's vec_dot_type (q8_0 or q8_K) into
 *    scratch (and, in SIMD128 builds, widened to the kernels' int16 layout),
 *    split over the pool by tokens (f16/f32 weights use X as is).
 * 2. Output rows are split over the pool in tiles of owl_tile_rows rows; a
 *    tile runs the micro-kernel owl_dot_tile (dispatch.c picks the tier; the
 *    SIMD128 one, owl_dot_tile_simd128, is described here), which unpacks
 *    each weight block of its 4 rows once and reuses it for up to 16 tokens
 *    (blocked GEMM for prefill / vision; ntok == 1 takes its GEMV branch, 4
 *    independent row accumulators).
 * Every output element is one dot in owl_vec_dot_ref's fixed order, computed
 * by one thread, so results are bitwise identical for any thread count, for
 * ntok == 1 vs blocked, and to owl_matmul_ref. Without SIMD128 (the scalar
 * bench build) the tile calls owl_vec_dot_ref per element; the relaxed wasm
 * build runs owl_dot_tile_relaxed for q4_0, q4_K and q6_K. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Bytes of the q8 part of scratch, rounded up so the expanded part that
 * follows is 16-byte aligned (relative to scratch, which malloc aligns). */
static size_t q8_bytes(size_t row, int64_t ntok)
{
    return (row * (size_t)ntok + 15) & ~(size_t)15;
}

size_t owl_matmul_scratch_size(owl_type wt, int64_t cols, int64_t ntok)
{
    const owl_type_traits *t = owl_type_get((int)wt);
    if (!t || cols < 0 || ntok < 0)
        return 0;
    if (t->vec_dot_type == OWL_TYPE_F32)
        return 0;
    /* the q8 rows (reference layout), then the same rows expanded for the
     * SIMD128 kernels (see types.h); the reference uses the first part only */
    size_t row = owl_row_size(t->vec_dot_type, cols);
    size_t xrow = owl_xrow_size(t->vec_dot_type, cols);
    if (row == 0)
        return 0;
    if (ntok > 0 && (row > SIZE_MAX / 2 / (uint64_t)ntok || xrow > SIZE_MAX / 2 / (uint64_t)ntok))
        return SIZE_MAX; /* no allocation can satisfy it */
    return q8_bytes(row, ntok) + xrow * (size_t)ntok;
}

typedef struct {
    const uint8_t *W;
    owl_type wt;
    int r4; /* W in the 4-row interleaved layout (types.h) */
    int64_t rows, cols;
    const float *X;
    int64_t ldx, ntok;
    float *Y;
    int64_t ldy;
    uint8_t *Xq;       /* quantized activations, or NULL (f32 / f16 weights) */
    uint8_t *Xx;       /* the same expanded for the SIMD128 kernels */
    owl_type xt;       /* type of the rows the dots read */
    size_t wrow, xrow; /* bytes between weight rows / activation rows */
    size_t xxrow;      /* bytes between expanded activation rows */
} mm_ctx;

static void quantize_rows(void *p, int ith, int nth)
{
    mm_ctx *c = p;
    int64_t s, e;
    owl_pool_range(c->ntok, ith, nth, &s, &e);
    for (int64_t t = s; t < e; t++) {
        owl_quantize_row(c->xt, c->X + t * c->ldx, c->Xq + (size_t)t * c->xrow, c->cols);
        owl_expand_row(c->xt, c->Xq + (size_t)t * c->xrow, c->Xx + (size_t)t * c->xxrow, c->cols);
    }
}

#define TOKEN_BLOCK 64

static void mul_rows(void *p, int ith, int nth)
{
    mm_ctx *c = p;
    const int64_t tr = owl_tile_rows(c->wt, c->ntok); /* rows per tile */
    const int64_t ntiles = (c->rows + tr - 1) / tr;
    int64_t s, e;
    owl_pool_range(ntiles, ith, nth, &s, &e);
    /* token blocks outside, row tiles inside: a block's activations (64 x cols
     * int16, ~0.5 MB at 4096) stay in cache while this thread's weight rows
     * stream past once per block; for hundreds of tokens (vision) the other
     * order would re-read all activations from memory for every 4 rows */
    for (int64_t t0 = 0; t0 < c->ntok; t0 += TOKEN_BLOCK) {
        const int64_t tn = c->ntok - t0 < TOKEN_BLOCK ? c->ntok - t0 : TOKEN_BLOCK;
        owl_tile_act a = {c->Xq ? (const void *)(c->Xq + (size_t)t0 * c->xrow)
                                : (const void *)((const uint8_t *)c->X + (size_t)t0 * c->xrow),
                          c->xrow, c->Xq ? c->Xx + (size_t)t0 * c->xxrow : NULL, c->xxrow};
        for (int64_t tile = s; tile < e; tile++) {
            const int64_t r0 = tile * tr;
            const int nr = (int)(c->rows - r0 < tr ? c->rows - r0 : tr);
            owl_dot_tile(c->wt, c->cols, c->W + (size_t)r0 * c->wrow, c->wrow, c->r4, nr, &a, tn,
                         c->Y + t0 * c->ldy + r0, c->ldy);
        }
    }
}

static int setup(mm_ctx *c, const void *W, owl_type wt, int64_t rows, int64_t cols, const float *X,
                 int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch)
{
    const owl_type_traits *t = owl_type_get((int)wt);
    if (!t || wt == OWL_TYPE_Q8_K || wt == OWL_TYPE_BF16 || rows <= 0 || ntok <= 0 || cols <= 0)
        return 0;
    c->W = W;
    c->wt = wt;
    c->r4 = 0;
    c->rows = rows;
    c->cols = cols;
    c->X = X;
    c->ldx = ldx;
    c->ntok = ntok;
    c->Y = Y;
    c->ldy = ldy;
    c->wrow = owl_row_size(wt, cols);
    c->xt = t->vec_dot_type;
    c->Xq = c->Xx = NULL;
    c->xxrow = 0;
    if (c->xt == OWL_TYPE_F32) {
        c->xrow = (size_t)ldx * sizeof(float);
    } else {
        c->Xq = scratch;
        c->xrow = owl_row_size(c->xt, cols);
        c->xxrow = owl_xrow_size(c->xt, cols);
        c->Xx = c->Xq + q8_bytes(c->xrow, ntok);
    }
    return c->wrow != 0 && c->xrow != 0;
}

void owl_matmul_r4(owl_pool *pool, const void *W, owl_type wt, int r4, int64_t rows, int64_t cols,
                   const float *X, int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch)
{
    mm_ctx c;
    if (!setup(&c, W, wt, rows, cols, X, ldx, ntok, Y, ldy, scratch) || (r4 && !owl_r4_supported(wt)))
        return;
    c.r4 = r4 != 0;
    if (c.Xq) {
        if (ntok > 1)
            owl_pool_run(pool, quantize_rows, &c);
        else
            quantize_rows(&c, 0, 1);
    }
    owl_pool_run(pool, mul_rows, &c);
}

void owl_matmul(owl_pool *pool, const void *W, owl_type wt, int64_t rows, int64_t cols,
                const float *X, int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch)
{
    owl_matmul_r4(pool, W, wt, 0, rows, cols, X, ldx, ntok, Y, ldy, scratch);
}

/* Group g (k rows) from row-major [k][nb] to block-major [nb][k], through tmp. */
int owl_repack_r4(owl_type type, void *W, int64_t rows, int64_t cols)
{
    const owl_type_traits *t = owl_type_get((int)type);
    const size_t row = t ? owl_row_size(type, cols) : 0;
    if (!owl_r4_supported(type) || row == 0 || rows <= 0)
        return 0;
    const size_t bsz = t->type_size, nb = row / bsz;
    uint8_t *tmp = malloc(4 * row);
    if (!tmp)
        return 0;
    for (int64_t g0 = 0; g0 < rows; g0 += 4) {
        const int k = rows - g0 < 4 ? (int)(rows - g0) : 4;
        uint8_t *grp = (uint8_t *)W + (size_t)g0 * row;
        memcpy(tmp, grp, (size_t)k * row);
        for (size_t b = 0; b < nb; b++)
            for (int r = 0; r < k; r++)
                memcpy(grp + (b * (size_t)k + (size_t)r) * bsz, tmp + (size_t)r * row + b * bsz, bsz);
    }
    free(tmp);
    return 1;
}

void owl_matmul_ref(const void *W, owl_type wt, int64_t rows, int64_t cols, const float *X,
                    int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch)
{
    mm_ctx c;
    if (!setup(&c, W, wt, rows, cols, X, ldx, ntok, Y, ldy, scratch))
        return;
    const uint8_t *Xr = (const uint8_t *)X;
    if (c.Xq) {
        for (int64_t t = 0; t < ntok; t++)
            owl_quantize_row_ref(c.xt, X + t * ldx, c.Xq + (size_t)t * c.xrow, cols);
        Xr = c.Xq;
    }
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = 0; r < rows; r++)
            Y[t * ldy + r] = owl_vec_dot_ref(wt, cols, c.W + (size_t)r * c.wrow, Xr + (size_t)t * c.xrow);
}
