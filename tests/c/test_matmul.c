/* test_matmul.c - owl_matmul vs owl_matmul_ref (bitwise), thread counts,
 * odd shapes, strides and guards, and the meaning Y = X W^T. */
#include <stdlib.h>

#include "../../src/kernels/ops.h"
#include "../../src/kernels/simd.h"
#include "test.h"

typedef struct {
    owl_type t;
    int64_t rows, cols, ntok, ldx, ldy;
    void *W;
    float *X, *Y, *Yref, *Wf;
    void *scratch;
} mm_case;

#define GUARD 12345.0f

static void mm_init(mm_case *c, owl_type t, int64_t rows, int64_t cols, int64_t ntok, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->rows = rows;
    c->cols = cols;
    c->ntok = ntok;
    c->ldx = cols + 3; /* strides wider than the rows, odd */
    c->ldy = rows + 5;
    size_t rs = owl_row_size(t, cols);
    c->W = malloc(rs * (size_t)rows);
    c->Wf = malloc((size_t)(rows * cols) * 4);
    c->X = malloc((size_t)(ntok * c->ldx) * 4);
    c->Y = malloc((size_t)(ntok * c->ldy) * 4);
    c->Yref = malloc((size_t)(ntok * c->ldy) * 4);
    size_t ss = owl_matmul_scratch_size(t, cols, ntok);
    c->scratch = malloc(ss ? ss : 1);
    uint64_t s = seed;
    for (int64_t i = 0; i < rows * cols; i++)
        c->Wf[i] = owl_test_rand_f32(&s, -1, 1);
    for (int64_t r = 0; r < rows; r++)
        owl_quantize_row_ref(t, c->Wf + r * cols, (uint8_t *)c->W + (size_t)r * rs, cols);
    for (int64_t i = 0; i < ntok * c->ldx; i++)
        c->X[i] = owl_test_rand_f32(&s, -2, 2);
    for (int64_t i = 0; i < ntok * c->ldy; i++)
        c->Y[i] = c->Yref[i] = GUARD;
}

static void mm_free(mm_case *c)
{
    free(c->W);
    free(c->Wf);
    free(c->X);
    free(c->Y);
    free(c->Yref);
    free(c->scratch);
}

static int guards_intact(const mm_case *c, const float *Y)
{
    for (int64_t t = 0; t < c->ntok; t++)
        for (int64_t r = c->rows; r < c->ldy; r++)
            if (Y[t * c->ldy + r] != GUARD)
                return 0;
    return 1;
}

static int same_bits(const mm_case *c, const float *a, const float *b)
{
    for (int64_t t = 0; t < c->ntok; t++)
        if (memcmp(a + t * c->ldy, b + t * c->ldy, (size_t)c->rows * 4) != 0)
            return 0;
    return 1;
}

static const owl_type k_types[6] = {OWL_TYPE_Q4_0, OWL_TYPE_Q8_0, OWL_TYPE_Q4_K,
                                    OWL_TYPE_Q6_K, OWL_TYPE_F16, OWL_TYPE_F32};

static int64_t cols_for(owl_type t)
{
    switch (t) {
    case OWL_TYPE_Q4_K:
    case OWL_TYPE_Q6_K: return 512;
    case OWL_TYPE_Q4_0:
    case OWL_TYPE_Q8_0: return 96;
    case OWL_TYPE_F16: return 1037; /* several 512-column chunks and a tail of 5 */
    default: return 45; /* not a multiple of 8: exercises the tail */
    }
}

TEST(matmul_matches_ref_bitwise_odd_shapes)
{
    static const int64_t rows[] = {1, 3, 17}, ntoks[] = {1, 2, 5, 13, 19};
    owl_pool *pool = owl_pool_init(2);
    for (int k = 0; k < 6; k++)
        for (int ri = 0; ri < 3; ri++)
            for (int ti = 0; ti < 5; ti++) {
                mm_case c;
                mm_init(&c, k_types[k], rows[ri], cols_for(k_types[k]), ntoks[ti], 7 + (uint64_t)ri);
                owl_matmul_ref(c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Yref, c.ldy, c.scratch);
                owl_matmul(pool, c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
                CHECK_MSG(same_bits(&c, c.Y, c.Yref), "%s rows=%lld ntok=%lld",
                          owl_type_get(c.t)->name, (long long)c.rows, (long long)c.ntok);
                CHECK(guards_intact(&c, c.Y) && guards_intact(&c, c.Yref));
                mm_free(&c);
            }
    owl_pool_free(pool);
}

/* The 4-row interleaved layout (q4_0, q8_0, q4_K, q6_K): a repacked copy of W through owl_matmul_r4
 * gives owl_matmul_ref's bits on the row-major W, for every row count mod 8
 * (full groups of 4, a last group of 1-3, the relaxed GEMM's 8-row tiles with
 * a partial second group), GEMV and GEMM (token blocks of 64 crossed), 1-3
 * threads; the repack moves blocks only (the same bytes, other order). */
#ifdef OWL_SIMD128
#define R4_EXPECTED 1
#else
#define R4_EXPECTED 0
#endif
TEST(matmul_r4_layout_matches_ref_bitwise)
{
    static const owl_type types[4] = {OWL_TYPE_Q4_0, OWL_TYPE_Q8_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K};
    static const int64_t rows[] = {1, 3, 4, 5, 7, 8, 9, 14, 21}, ntoks[] = {1, 2, 17, 70};
    owl_pool *pools[3] = {NULL, owl_pool_init(2), owl_pool_init(3)};
    for (int k = 0; k < 4; k++) {
        CHECK(owl_r4_supported(types[k]) == R4_EXPECTED);
        for (int ri = 0; ri < 9; ri++)
            for (int ti = 0; ti < 4; ti++) {
                mm_case c;
                const int64_t kq = k >= 2, cols = ri % 2 ? (kq ? 768 : 160) : (kq ? 256 : 32);
                mm_init(&c, types[k], rows[ri], cols, ntoks[ti], 31 + (uint64_t)ri);
                const size_t bytes = owl_row_size(c.t, cols) * (size_t)c.rows;
                uint8_t *W4 = malloc(bytes);
                memcpy(W4, c.W, bytes);
                const int r4 = owl_repack_r4(c.t, W4, c.rows, cols);
                CHECK(r4 == owl_r4_supported(c.t));
                if (r4 && c.rows > 1) { /* rows 0 and 1 now share their first block's neighbourhood */
                    const size_t bsz = owl_type_get(c.t)->type_size;
                    CHECK(memcmp(W4 + bsz, (uint8_t *)c.W + owl_row_size(c.t, cols), bsz) == 0);
                }
                owl_matmul_ref(c.W, c.t, c.rows, cols, c.X, c.ldx, c.ntok, c.Yref, c.ldy, c.scratch);
                for (int p = 0; p < 3; p++) {
                    for (int64_t j = 0; j < c.ntok * c.ldy; j++)
                        c.Y[j] = GUARD;
                    owl_matmul_r4(pools[p], W4, c.t, r4, c.rows, cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
                    CHECK_MSG(same_bits(&c, c.Y, c.Yref), "%s rows=%lld cols=%lld ntok=%lld pool=%d",
                              owl_type_get(c.t)->name, (long long)c.rows, (long long)cols, (long long)c.ntok, p);
                    CHECK(guards_intact(&c, c.Y));
                }
                free(W4);
                mm_free(&c);
            }
    }
    owl_pool_free(pools[1]);
    owl_pool_free(pools[2]);
}

/* Types the kernels do not read interleaved: owl_repack_r4 leaves the bytes
 * alone, and owl_matmul_r4 with r4 set leaves Y alone (like a bad shape). */
TEST(matmul_r4_only_for_quantized_types)
{
    static const owl_type others[2] = {OWL_TYPE_F16, OWL_TYPE_F32};
    for (int k = 0; k < 2; k++) {
        mm_case c;
        mm_init(&c, others[k], 9, cols_for(others[k]), 2, 5);
        const size_t bytes = owl_row_size(c.t, c.cols) * (size_t)c.rows;
        uint8_t *W2 = malloc(bytes);
        memcpy(W2, c.W, bytes);
        CHECK(owl_repack_r4(c.t, W2, c.rows, c.cols) == 0 && owl_r4_supported(c.t) == 0);
        CHECK(memcmp(W2, c.W, bytes) == 0);
        owl_matmul_r4(NULL, c.W, c.t, 1, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
        for (int64_t j = 0; j < c.ntok * c.ldy; j++)
            CHECK(c.Y[j] == GUARD);
        free(W2);
        mm_free(&c);
    }
}

TEST(matmul_same_bits_for_any_thread_count)
{
    static const int nths[] = {1, 2, 3, 8};
    for (int k = 0; k < 6; k++) {
        mm_case c;
        mm_init(&c, k_types[k], 23, cols_for(k_types[k]), 6, 99);
        owl_matmul(NULL, c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Yref, c.ldy, c.scratch);
        for (int i = 0; i < 4; i++) {
            owl_pool *pool = owl_pool_init(nths[i]);
            for (int64_t j = 0; j < c.ntok * c.ldy; j++)
                c.Y[j] = GUARD;
            owl_matmul(pool, c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
            CHECK_MSG(same_bits(&c, c.Y, c.Yref), "%s nth=%d", owl_type_get(c.t)->name, nths[i]);
            CHECK(guards_intact(&c, c.Y));
            owl_pool_free(pool);
        }
        mm_free(&c);
    }
}

TEST(matmul_blocked_equals_one_token_at_a_time)
{
    for (int k = 0; k < 6; k++) {
        mm_case c; /* 70 tokens: two token blocks of the threaded path, tiles of 16 */
        mm_init(&c, k_types[k], 9, cols_for(k_types[k]), 70, 5);
        owl_matmul(NULL, c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
        for (int64_t t = 0; t < c.ntok; t++)
            owl_matmul(NULL, c.W, c.t, c.rows, c.cols, c.X + t * c.ldx, c.ldx, 1, c.Yref + t * c.ldy,
                       c.ldy, c.scratch);
        CHECK_MSG(same_bits(&c, c.Y, c.Yref), "%s", owl_type_get(c.t)->name);
        mm_free(&c);
    }
}

/* Y = X W^T against a double-precision product of the unquantized operands:
 * checks orientation (rows vs tokens) and that quantization error is modest. */
TEST(matmul_computes_x_times_w_transposed)
{
    static const double tol[6] = {0.12, 0.01, 0.08, 0.03, 1e-3, 1e-5}; /* relative to |row|*|x| */
    for (int k = 0; k < 6; k++) {
        mm_case c;
        mm_init(&c, k_types[k], 5, cols_for(k_types[k]), 3, 31);
        owl_matmul(NULL, c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
        for (int64_t t = 0; t < c.ntok; t++)
            for (int64_t r = 0; r < c.rows; r++) {
                double want = 0, nw = 0, nx = 0;
                for (int64_t i = 0; i < c.cols; i++) {
                    want += (double)c.Wf[r * c.cols + i] * c.X[t * c.ldx + i];
                    nw += (double)c.Wf[r * c.cols + i] * c.Wf[r * c.cols + i];
                    nx += (double)c.X[t * c.ldx + i] * c.X[t * c.ldx + i];
                }
                double err = fabs(c.Y[t * c.ldy + r] - want) / sqrt(nw * nx);
                CHECK_MSG(err <= tol[k], "%s t=%lld r=%lld: rel err %g", owl_type_get(c.t)->name,
                          (long long)t, (long long)r, err);
            }
        mm_free(&c);
    }
}

TEST(matmul_f32_is_accurate)
{
    /* the oracle-fidelity path: close to a double product */
    mm_case c;
    mm_init(&c, OWL_TYPE_F32, 4, 4099, 2, 77);
    owl_matmul(NULL, c.W, c.t, c.rows, c.cols, c.X, c.ldx, c.ntok, c.Y, c.ldy, c.scratch);
    for (int64_t t = 0; t < c.ntok; t++)
        for (int64_t r = 0; r < c.rows; r++) {
            double want = 0, mag = 0;
            for (int64_t i = 0; i < c.cols; i++) {
                want += (double)c.Wf[r * c.cols + i] * c.X[t * c.ldx + i];
                mag += fabs((double)c.Wf[r * c.cols + i] * c.X[t * c.ldx + i]);
            }
            CHECK_NEAR(c.Y[t * c.ldy + r], want, 2e-6 * mag);
        }
    mm_free(&c);
}

TEST(matmul_scratch_size)
{
    /* q8 rows (16-byte rounded) + the same rows expanded to int16 */
    CHECK_EQ_INT(owl_matmul_scratch_size(OWL_TYPE_Q4_0, 4096, 3),
                 ((3 * owl_row_size(OWL_TYPE_Q8_0, 4096) + 15) & ~15) + 3 * 128 * sizeof(owl_xblock_q8_0));
    CHECK_EQ_INT(owl_matmul_scratch_size(OWL_TYPE_Q6_K, 4096, 2),
                 2 * owl_row_size(OWL_TYPE_Q8_K, 4096) + 2 * 16 * sizeof(owl_xblock_q8_K));
    CHECK_EQ_INT(owl_matmul_scratch_size(OWL_TYPE_Q4_K, 100, 2), 0); /* not a row */
    CHECK_EQ_INT(owl_matmul_scratch_size(OWL_TYPE_F16, 4096, 64), 0);
    CHECK_EQ_INT(owl_matmul_scratch_size(OWL_TYPE_F32, 4096, 64), 0);
    CHECK(owl_matmul_scratch_size(OWL_TYPE_Q8_0, 32, INT64_MAX) == SIZE_MAX);
}

#ifdef OWL_SIMD128
/* The relaxed-SIMD tiles (quant_relaxed.c) against owl_vec_dot_ref, bit for
 * bit: 1..4 rows (tile tails), 1 to 19 tokens (GEMV, the 16-token tile and
 * its tail), 1 and 3 blocks. In the native and Node runs owl_relaxed_dot is
 * the exact emulation; tests/browser/relaxed.test.mjs runs this test in the
 * relaxed wasm build in Chromium, where it is the instruction. */
static int relaxed_case(owl_type t, int64_t cols, int nr, int64_t nt, const float *wf, const float *xf)
{
    const owl_type at = owl_type_get(t)->vec_dot_type;
    const size_t ws = owl_row_size(t, cols), qs = owl_row_size(at, cols), xs = owl_xrow_size(at, cols);
    uint8_t *W = malloc(ws * (size_t)nr), *Xq = malloc(qs * (size_t)nt), *Xx = malloc(xs * (size_t)nt);
    float *Y = malloc((size_t)(nt * 9) * 4);
    for (int r = 0; r < nr; r++)
        owl_quantize_row_ref(t, wf + r * cols, W + (size_t)r * ws, cols);
    for (int64_t k = 0; k < nt; k++) {
        owl_quantize_row_ref(at, xf + k * cols, Xq + (size_t)k * qs, cols);
        owl_expand_row_simd128(at, Xq + (size_t)k * qs, Xx + (size_t)k * xs, cols);
    }
    for (int64_t i = 0; i < nt * 9; i++)
        Y[i] = GUARD;
    owl_dot_tile_relaxed(t, cols, W, ws, 0, nr, Xq, qs, Xx, xs, nt, Y, 9);
    int bad = 0;
    for (int64_t k = 0; k < nt; k++) {
        for (int r = 0; r < nr; r++) {
            float want = owl_vec_dot_ref(t, cols, W + (size_t)r * ws, Xq + (size_t)k * qs);
            if (memcmp(&want, &Y[k * 9 + r], 4) != 0)
                bad++;
        }
        for (int r = nr; r < 9; r++)
            bad += Y[k * 9 + r] != GUARD;
    }
    free(W);
    free(Xq);
    free(Xx);
    free(Y);
    return bad;
}

#endif

TEST(matmul_relaxed_tiles_match_ref_bitwise)
{
#ifdef OWL_SIMD128
    /* q8_0: the sign-split tile (dispatched for one token only), GEMV and GEMM */
    static const owl_type ts[4] = {OWL_TYPE_Q4_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K, OWL_TYPE_Q8_0};
    static const int64_t ntoks[] = {1, 2, 15, 16, 19};
    uint64_t s = 77;
    for (int k = 0; k < 4; k++) {
        CHECK(owl_relaxed_handles(ts[k], 1) && (k == 3 || owl_relaxed_handles(ts[k], 16)));
        for (int nb = 1; nb <= 3; nb += 2) {
            const int64_t cols = nb * owl_type_get(ts[k])->blck_size;
            float *wf = malloc((size_t)(8 * cols) * 4), *xf = malloc((size_t)(19 * cols) * 4);
            for (int64_t i = 0; i < 8 * cols; i++)
                wf[i] = owl_test_rand_f32(&s, -1, 1);
            for (int64_t i = 0; i < 19 * cols; i++)
                xf[i] = owl_test_rand_f32(&s, -3, 3);
            for (int nr = 1; nr <= (k == 1 || k == 2 ? 8 : 4); nr++) /* q4_K, q6_K: to 8 rows */
                for (int j = 0; j < 5; j++)
                    CHECK_MSG(relaxed_case(ts[k], cols, nr, ntoks[j], wf, xf) == 0, "%s cols=%lld rows=%d ntok=%lld",
                              owl_type_get(ts[k])->name, (long long)cols, nr, (long long)ntoks[j]);
            free(wf);
            free(xf);
        }
    }
    CHECK(!owl_relaxed_handles(OWL_TYPE_Q8_0, 2) && !owl_relaxed_handles(OWL_TYPE_F16, 1));
#endif
}

TEST(matmul_relaxed_gemm_token_blocks)
{
#ifdef OWL_SIMD128
    /* The GEMM tiles transpose a superblock of their rows once for up to 64
     * tokens: 63, 64, 65 and 130 tokens (one block, one and a tail, two and
     * a tail), 1 to 4 rows (q4_K, q6_K: to 8, owl_tile_rows), 2 and 5 blocks */
    static const owl_type ts[4] = {OWL_TYPE_Q4_K, OWL_TYPE_Q6_K, OWL_TYPE_Q4_0, OWL_TYPE_Q8_0};
    static const int64_t ntoks[] = {63, 64, 65, 130};
    uint64_t s = 91;
    CHECK(owl_tile_rows(OWL_TYPE_Q4_K, 1) == OWL_TILE_ROWS && owl_tile_rows(OWL_TYPE_Q8_0, 64) == OWL_TILE_ROWS);
    for (int k = 0; k < 4; k++)
        for (int nb = 2; nb <= 5; nb += 3) {
            const int64_t cols = nb * owl_type_get(ts[k])->blck_size;
            float *wf = malloc((size_t)(8 * cols) * 4), *xf = malloc((size_t)(130 * cols) * 4);
            for (int64_t i = 0; i < 8 * cols; i++)
                wf[i] = owl_test_rand_f32(&s, -1, 1);
            for (int64_t i = 0; i < 130 * cols; i++)
                xf[i] = owl_test_rand_f32(&s, -3, 3);
            for (int nr = 1; nr <= (k < 2 ? 8 : 4); nr++)
                for (int j = 0; j < 4; j++)
                    CHECK_MSG(relaxed_case(ts[k], cols, nr, ntoks[j], wf, xf) == 0, "%s cols=%lld rows=%d ntok=%lld",
                              owl_type_get(ts[k])->name, (long long)cols, nr, (long long)ntoks[j]);
            free(wf);
            free(xf);
        }
#endif
}

TEST(matmul_relaxed_tiles_extreme_values)
{
#ifdef OWL_SIMD128
    /* the largest partials the int16 narrowing must hold: q = 15 (q4) or 63
     * (q6) against activations of -127 / +127, largest scales and mins */
    static const owl_type ts[4] = {OWL_TYPE_Q4_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K, OWL_TYPE_Q8_0};
    for (int k = 0; k < 4; k++)
        for (int sign = -1; sign <= 1; sign += 2) {
            const int64_t cols = owl_type_get(ts[k])->blck_size;
            float *wf = malloc((size_t)(4 * cols) * 4), *xf = malloc((size_t)(2 * cols) * 4);
            for (int64_t i = 0; i < 4 * cols; i++)
                wf[i] = i % 2 ? -1.0f : 1.0f; /* each block has both extremes */
            for (int64_t i = 0; i < cols; i++) {
                xf[i] = (float)sign;                /* all -1 or +1: q8 = +-127 */
                xf[cols + i] = i % 2 ? 1.0f : -1.0f; /* alternating */
            }
            CHECK_MSG(relaxed_case(ts[k], cols, 4, 2, wf, xf) == 0, "%s sign %d", owl_type_get(ts[k])->name, sign);
            free(wf);
            free(xf);
        }
#endif
}

TEST(matmul_relaxed_q8_0_full_int8_range)
{
#ifdef OWL_SIMD128
    /* q8_0 weights straight from a file may hold -128 (the quantizer makes
     * -127..127): every int8 value against activations of +-127, 3 blocks */
    enum { NB = 3, COLS = 32 * NB };
    owl_block_q8_0 w[4][NB], x[2][NB];
    owl_xblock_q8_0 xx[2][NB];
    for (int r = 0; r < 4; r++)
        for (int b = 0; b < NB; b++) {
            w[r][b].d = owl_f32_to_f16(0.25f * (float)(r + 1));
            for (int i = 0; i < 32; i++)
                w[r][b].qs[i] = (int8_t)(-128 + ((r * 97 + b * 32 + i) * 67) % 256);
        }
    for (int t = 0; t < 2; t++)
        for (int b = 0; b < NB; b++) {
            x[t][b].d = owl_f32_to_f16(0.5f);
            for (int i = 0; i < 32; i++)
                x[t][b].qs[i] = (int8_t)(t ? (i % 3 ? -127 : 127) : -127);
        }
    for (int t = 0; t < 2; t++)
        owl_expand_row_simd128(OWL_TYPE_Q8_0, x[t], xx[t], COLS);
    float Y[2 * 4];
    owl_dot_tile_relaxed(OWL_TYPE_Q8_0, COLS, w, sizeof w[0], 0, 4, x, sizeof x[0], xx, sizeof xx[0], 2, Y, 4);
    for (int t = 0; t < 2; t++)
        for (int r = 0; r < 4; r++) {
            float want = owl_vec_dot_ref(OWL_TYPE_Q8_0, COLS, w[r], x[t]);
            CHECK_MSG(memcmp(&want, &Y[t * 4 + r], 4) == 0, "row %d token %d: %g vs %g", r, t, (double)want,
                      (double)Y[t * 4 + r]);
        }
#endif
}

#ifdef OWL_SIMD128
/* One GEMV tile (SIMD128, and the relaxed tile) of nr rows against one q8
 * activation row, bitwise against owl_vec_dot_ref; returns the mismatches. */
static int gemv_tiles_case(owl_type t, const void *W, size_t ws, const void *Xq, int64_t cols)
{
    const owl_type at = owl_type_get(t)->vec_dot_type;
    _Alignas(16) uint8_t Xx[4 * sizeof(owl_xblock_q8_K)]; /* 2 q8_K or 16 q8_0 blocks */
    owl_expand_row_simd128(at, Xq, Xx, cols);
    int bad = 0;
    for (int nr = 1; nr <= 4; nr++)
        for (int tier = 0; tier < 2; tier++) {
            float Y[5] = {GUARD, GUARD, GUARD, GUARD, GUARD};
            if (tier == 0)
                owl_dot_tile_simd128(t, cols, W, ws, 0, nr, Xx, 0, 1, Y, 5, 0);
            else if (owl_relaxed_handles(t, 1))
                owl_dot_tile_relaxed(t, cols, W, ws, 0, nr, Xq, 0, Xx, 0, 1, Y, 5);
            else
                continue;
            for (int r = 0; r < nr; r++) {
                float want = owl_vec_dot_ref(t, cols, (const uint8_t *)W + (size_t)r * ws, Xq);
                bad += memcmp(&want, &Y[r], 4) != 0;
            }
            for (int r = nr; r < 5; r++)
                bad += Y[r] != GUARD;
        }
    return bad;
}
#endif

TEST(matmul_gemv_tiles_largest_partials)
{
#ifdef OWL_SIMD128
    /* The GEMV tiles narrow partial sums to int16 before scaling them: their
     * largest values, with activations of -128 (beyond the quantizers' -127,
     * as a q8 row from elsewhere may hold) and of +127, extreme weights and
     * scales, 4 rows of different patterns, 2 blocks. */
    enum { NB = 2 };
    for (int sign = 0; sign < 2; sign++) {
        const int8_t av = sign ? 127 : -128;
        owl_block_q8_K k8[NB];
        owl_block_q8_0 a8[NB * 8];
        memset(k8, 0, sizeof k8);
        for (int b = 0; b < NB; b++) {
            k8[b].d = 1.0f;
            for (int j = 0; j < 256; j++)
                k8[b].qs[j] = (int8_t)(j % 5 == 4 ? -av - 1 : av); /* mostly av, some -127 / 126 */
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int i = 0; i < 16; i++)
                    s += k8[b].qs[16 * j + i];
                k8[b].bsums[j] = (int16_t)s;
            }
        }
        for (int b = 0; b < NB * 8; b++) {
            a8[b].d = 0x3c00;
            for (int j = 0; j < 32; j++)
                a8[b].qs[j] = (int8_t)(j % 7 == 6 ? -av - 1 : av);
        }
        owl_block_q4_K w4[4][NB];
        owl_block_q6_K w6[4][NB];
        owl_block_q8_0 w8[4][NB * 8];
        static const uint8_t q4pat[4] = {0xff, 0xf0, 0x0f, 0xff};
        for (int r = 0; r < 4; r++) {
            for (int b = 0; b < NB; b++) {
                memset(w4[r][b].scales, r == 3 ? 0x7f : 0xff, sizeof w4[r][b].scales); /* scales/mins 63 */
                memset(w4[r][b].qs, q4pat[r], sizeof w4[r][b].qs);
                w4[r][b].d = w4[r][b].dmin = 0x3c00;
                memset(w6[r][b].ql, r & 1 ? 0xff : 0, sizeof w6[r][b].ql); /* q - 32 = 31 or -32 */
                memset(w6[r][b].qh, r & 1 ? 0xff : 0, sizeof w6[r][b].qh);
                for (int j = 0; j < 16; j++)
                    w6[r][b].scales[j] = (int8_t)(r & 2 ? 127 : -128);
                w6[r][b].d = 0x3c00;
            }
            for (int b = 0; b < NB * 8; b++) {
                w8[r][b].d = 0x3c00;
                for (int j = 0; j < 32; j++)
                    w8[r][b].qs[j] = (int8_t)(r & 1 ? 127 : -128);
            }
        }
        CHECK_MSG(gemv_tiles_case(OWL_TYPE_Q4_K, w4, sizeof w4[0], k8, NB * 256) == 0, "q4_K, a = %d", av);
        CHECK_MSG(gemv_tiles_case(OWL_TYPE_Q6_K, w6, sizeof w6[0], k8, NB * 256) == 0, "q6_K, a = %d", av);
        CHECK_MSG(gemv_tiles_case(OWL_TYPE_Q8_0, w8, sizeof w8[0], a8, NB * 256) == 0, "q8_0, a = %d", av);
    }
#endif
}

/* Native x86-64: quant_simd128.c compiled a second time with -mavx2
 * (quant_avx2.c, chosen by dispatch.c when the CPU has AVX2) gives the bits of
 * the SSE4.1 compile, for every weight type, 1-4 rows, 1-19 tokens (GEMV, the
 * 16-token tile, its tail), 1 and 3 blocks, and accumulate; its quantizer and
 * expansion give the same bytes. On a CPU without AVX2 the dispatch must not
 * pick it. */
TEST(matmul_avx2_compile_matches_sse41_bitwise)
{
#ifdef OWL_AVX2_DISPATCH
    if (!__builtin_cpu_supports("avx2")) {
        CHECK(!owl_cpu_has_avx2());
        return;
    }
    static const owl_type ts[6] = {OWL_TYPE_Q4_0, OWL_TYPE_Q8_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K, OWL_TYPE_F16,
                                   OWL_TYPE_F32};
    static const int64_t ntoks[] = {1, 2, 15, 16, 19};
    uint64_t s = 2024;
    int checked = 0;
    for (int k = 0; k < 6; k++)
        for (int nb = 1; nb <= 3; nb += 2) {
            const owl_type t = ts[k], at = owl_type_get(t)->vec_dot_type;
            const int64_t cols = nb * (t == OWL_TYPE_F16 || t == OWL_TYPE_F32 ? 37 : owl_type_get(t)->blck_size);
            const size_t ws = owl_row_size(t, cols);
            const size_t qs = at == OWL_TYPE_F32 ? (size_t)cols * 4 : owl_row_size(at, cols);
            const size_t xs = at == OWL_TYPE_F32 ? (size_t)cols * 4 : owl_xrow_size(at, cols);
            float *wf = malloc((size_t)(4 * cols) * 4), *xf = malloc((size_t)(19 * cols) * 4);
            uint8_t *W = malloc(4 * ws), *Q = malloc(19 * qs), *Q2 = malloc(19 * qs);
            uint8_t *X = malloc(19 * xs), *X2 = malloc(19 * xs);
            float Y[19 * 4], Y2[19 * 4];
            for (int64_t i = 0; i < 4 * cols; i++)
                wf[i] = owl_test_rand_f32(&s, -1, 1);
            for (int64_t i = 0; i < 19 * cols; i++)
                xf[i] = owl_test_rand_f32(&s, -3, 3);
            for (int r = 0; r < 4; r++)
                owl_quantize_row_ref(t, wf + r * cols, W + (size_t)r * ws, cols);
            for (int64_t j = 0; j < 19; j++) {
                if (at == OWL_TYPE_F32) {
                    memcpy(X + (size_t)j * xs, xf + j * cols, xs);
                    memcpy(X2 + (size_t)j * xs, xf + j * cols, xs);
                    continue;
                }
                owl_quantize_row_simd128(at, xf + j * cols, Q + (size_t)j * qs, cols);
                owl_quantize_row_simd128_avx2(at, xf + j * cols, Q2 + (size_t)j * qs, cols);
                CHECK(memcmp(Q + (size_t)j * qs, Q2 + (size_t)j * qs, qs) == 0);
                owl_expand_row_simd128(at, Q + (size_t)j * qs, X + (size_t)j * xs, cols);
                owl_expand_row_simd128_avx2(at, Q + (size_t)j * qs, X2 + (size_t)j * xs, cols);
                CHECK(memcmp(X + (size_t)j * xs, X2 + (size_t)j * xs, xs) == 0);
                float d1 = owl_vec_dot_simd128(t, cols, W, Q + (size_t)j * qs);
                float d2 = owl_vec_dot_simd128_avx2(t, cols, W, Q + (size_t)j * qs);
                CHECK(memcmp(&d1, &d2, 4) == 0);
            }
            for (int nr = 1; nr <= 4; nr++)
                for (int j = 0; j < 5; j++)
                    for (int acc = 0; acc <= 1; acc++) {
                        for (int i = 0; i < 19 * 4; i++)
                            Y[i] = Y2[i] = acc ? 0.5f * (float)i : GUARD;
                        owl_dot_tile_simd128(t, cols, W, ws, 0, nr, X, xs, ntoks[j], Y, 4, acc);
                        owl_dot_tile_simd128_avx2(t, cols, W, ws, 0, nr, X2, xs, ntoks[j], Y2, 4, acc);
                        CHECK_MSG(memcmp(Y, Y2, sizeof Y) == 0, "%s cols=%lld rows=%d ntok=%lld acc=%d",
                                  owl_type_get(t)->name, (long long)cols, nr, (long long)ntoks[j], acc);
                        checked++;
                    }
            free(wf), free(xf), free(W), free(Q), free(Q2), free(X), free(X2);
        }
    CHECK_EQ_INT(checked, 6 * 2 * 4 * 5 * 2);
    CHECK(owl_cpu_has_avx2() == !getenv("OWL_NO_AVX2"));
#endif
}
