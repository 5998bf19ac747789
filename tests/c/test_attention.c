/* test_attention.c - owl_attention (SIMD128, threaded) and owl_attention_ref
 * against a naive double-precision attention: causal prefill / chunk / decode,
 * bidirectional, cross, grouped-query, f16 K/V, odd head_dim and row counts;
 * padded strides with guard values; same bits at 1, 2, 3 and 8 threads.
 * Tolerance vs double: 2e-6 absolute (outputs are O(1): convex mixes of v). */
#include <stdlib.h>

#include "../../src/kernels/ops.h"
#include "../../src/kernels/simd.h"
#include "test.h"

#define GUARD -777.25f

typedef struct {
    int64_t n_q, n_kv;
    int n_heads, n_kv_heads, head_dim;
    int causal;
    int64_t q_pos0;
    int f16;
} shape;

typedef struct {
    shape sh;
    float *q, *out;
    void *k, *v;
    int64_t q_stride, kv_stride, out_stride;
    size_t out_len;
    owl_attn_args a;
} problem;

/* random f16 bits: random sign and mantissa, biased exponent in [elo, ehi]
 * (0 = subnormal; 15 = [1, 2)) */
static owl_f16 rand_f16(uint64_t *s, unsigned elo, unsigned ehi)
{
    const uint64_t r = owl_test_rand_u64(s);
    const unsigned e = elo + (unsigned)((r >> 20) % (ehi - elo + 1));
    return (owl_f16)(((r >> 40) & 1) << 15 | e << 10 | (r & 0x3ff));
}

/* random q, k, v with padded row strides (k, v as f16 bits when sh.f16) */
static void problem_init(problem *p, shape sh, uint64_t seed)
{
    uint64_t s = seed;
    p->sh = sh;
    p->q_stride = (int64_t)sh.n_heads * sh.head_dim + 3;
    p->kv_stride = (int64_t)sh.n_kv_heads * sh.head_dim + 5;
    p->out_stride = (int64_t)sh.n_heads * sh.head_dim + 2;
    p->q = malloc((size_t)(sh.n_q * p->q_stride) * sizeof(float));
    for (int64_t i = 0; i < sh.n_q * p->q_stride; i++)
        p->q[i] = owl_test_rand_f32(&s, -1, 1);
    const size_t nkv = (size_t)(sh.n_kv * p->kv_stride) + 1;
    const size_t esz = sh.f16 ? sizeof(owl_f16) : sizeof(float);
    p->k = malloc(nkv * esz);
    p->v = malloc(nkv * esz);
    for (size_t i = 0; i < nkv; i++) {
        if (sh.f16) { /* k: every 7th a subnormal f16 */
            ((owl_f16 *)p->k)[i] = i % 7 == 0 ? rand_f16(&s, 0, 0) : rand_f16(&s, 13, 15);
            ((owl_f16 *)p->v)[i] = rand_f16(&s, 12, 16);
        } else {
            ((float *)p->k)[i] = owl_test_rand_f32(&s, -1, 1);
            ((float *)p->v)[i] = owl_test_rand_f32(&s, -2, 2);
        }
    }
    p->out_len = (size_t)(sh.n_q * p->out_stride);
    p->out = malloc(p->out_len * sizeof(float));
    for (size_t i = 0; i < p->out_len; i++)
        p->out[i] = GUARD;
    owl_attn_args a = {
        .q = p->q, .q_stride = p->q_stride, .k = p->k, .v = p->v,
        .kv_type = sh.f16 ? OWL_TYPE_F16 : OWL_TYPE_F32, .kv_stride = p->kv_stride,
        .n_q = sh.n_q, .n_kv = sh.n_kv, .n_heads = sh.n_heads, .n_kv_heads = sh.n_kv_heads,
        .head_dim = sh.head_dim, .scale = 1.0f / sqrtf((float)sh.head_dim), .causal = sh.causal,
        .q_pos0 = sh.q_pos0, .out = p->out, .out_stride = p->out_stride};
    p->a = a;
}

static void problem_free(problem *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->out);
}

static double kv_at(const problem *p, const void *base, int64_t idx)
{
    return p->sh.f16 ? owl_f16_to_f32(((const owl_f16 *)base)[idx]) : ((const float *)base)[idx];
}

/* naive double attention into want (n_q, n_heads * head_dim), dense */
static void attention_double(const problem *p, double *want)
{
    const shape sh = p->sh;
    const int D = sh.head_dim, HD = sh.n_heads * D;
    double *sc = malloc((size_t)(sh.n_kv + 1) * sizeof(double));
    for (int64_t i = 0; i < sh.n_q; i++)
        for (int h = 0; h < sh.n_heads; h++) {
            const int hk = h / (sh.n_heads / sh.n_kv_heads);
            int64_t nv = sh.n_kv;
            if (sh.causal && sh.q_pos0 + i + 1 < nv)
                nv = sh.q_pos0 + i + 1;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < nv; j++) {
                double d = 0;
                for (int t = 0; t < D; t++)
                    d += (double)p->q[i * p->q_stride + h * D + t] *
                         kv_at(p, p->k, j * p->kv_stride + hk * D + t);
                sc[j] = d * (double)p->a.scale;
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (int64_t j = 0; j < nv; j++) {
                sc[j] = exp(sc[j] - mx);
                sum += sc[j];
            }
            for (int t = 0; t < D; t++) {
                double o = 0;
                for (int64_t j = 0; j < nv; j++)
                    o += sc[j] / sum * kv_at(p, p->v, j * p->kv_stride + hk * D + t);
                want[i * HD + h * D + t] = o;
            }
        }
    free(sc);
}

/* max |out - want| over the live part; counts clobbered padding in *bad_guard */
static double out_error(const problem *p, const double *want, int *bad_guard)
{
    const int HD = p->sh.n_heads * p->sh.head_dim;
    double m = 0;
    *bad_guard = 0;
    for (int64_t i = 0; i < p->sh.n_q; i++) {
        for (int c = 0; c < HD; c++) {
            double d = fabs(p->out[i * p->out_stride + c] - want[i * HD + c]);
            m = d > m || d != d ? d : m;
        }
        for (int64_t c = HD; c < p->out_stride; c++)
            *bad_guard += p->out[i * p->out_stride + c] != GUARD;
    }
    return m;
}

/* run ref and owl_attention (no pool) vs the double reference */
static void check_shape(const char *what, shape sh, uint64_t seed)
{
    problem p;
    problem_init(&p, sh, seed);
    double *want = malloc((size_t)(sh.n_q * sh.n_heads * sh.head_dim) * sizeof(double));
    attention_double(&p, want);
    const size_t ssz = owl_attention_scratch_size(sh.n_kv, 1);
    float *scratch = malloc(ssz + 4 * sizeof(float));
    const size_t nsc = ssz / sizeof(float);
    for (int g = 0; g < 4; g++)
        scratch[nsc + (size_t)g] = GUARD;
    int bad;

    owl_attention_ref(&p.a, scratch);
    double e = out_error(&p, want, &bad);
    CHECK_MSG(e <= 2e-6, "%s ref: max err %g", what, e);
    CHECK_MSG(bad == 0, "%s ref: %d padding floats written", what, bad);

    for (size_t i = 0; i < p.out_len; i++)
        p.out[i] = GUARD;
    owl_attention(NULL, &p.a, scratch);
    e = out_error(&p, want, &bad);
    CHECK_MSG(e <= 2e-6, "%s: max err %g", what, e);
    CHECK_MSG(bad == 0, "%s: %d padding floats written", what, bad);
    for (int g = 0; g < 4; g++)
        CHECK(scratch[nsc + (size_t)g] == GUARD);
    free(scratch);
    free(want);
    problem_free(&p);
}

TEST(attention_causal_prefill_matches_double)
{
    check_shape("causal prefill", (shape){7, 7, 4, 4, 32, 1, 0, 0}, 11);
}

TEST(attention_causal_chunk_after_cache_matches_double)
{
    /* 5 queries at positions 7..11 over 12 cached keys */
    check_shape("causal chunk", (shape){5, 12, 2, 2, 24, 1, 7, 0}, 12);
}

TEST(attention_causal_decode_one_query_matches_double)
{
    check_shape("decode", (shape){1, 13, 4, 4, 128, 1, 12, 0}, 13);
}

TEST(attention_bidirectional_matches_double)
{
    check_shape("bidirectional", (shape){9, 9, 3, 3, 16, 0, 0, 0}, 14);
}

TEST(attention_cross_more_keys_than_queries_matches_double)
{
    check_shape("cross", (shape){8, 33, 2, 2, 64, 0, 0, 0}, 15);
}

TEST(attention_grouped_query_matches_double)
{
    check_shape("gqa 8/2", (shape){5, 11, 8, 2, 16, 1, 6, 0}, 16);
    check_shape("gqa 6/1", (shape){3, 7, 6, 1, 24, 0, 0, 0}, 17);
}

TEST(attention_f16_kv_matches_double)
{
    check_shape("f16 causal", (shape){6, 10, 4, 2, 40, 1, 4, 1}, 18);
    check_shape("f16 cross", (shape){3, 17, 2, 2, 128, 0, 0, 1}, 19);
}

TEST(attention_odd_head_dim_and_tails_match_double)
{
    check_shape("hd 13", (shape){3, 5, 2, 1, 13, 1, 2, 0}, 20);
    check_shape("hd 13 f16", (shape){3, 5, 2, 1, 13, 1, 2, 1}, 21);
    check_shape("hd 1", (shape){2, 3, 1, 1, 1, 0, 0, 0}, 22);
    check_shape("hd 6 f16", (shape){1, 1, 3, 3, 6, 1, 0, 1}, 23);
}

TEST(attention_no_visible_keys_gives_zeros)
{
    problem p;
    problem_init(&p, (shape){2, 0, 2, 2, 8, 0, 0, 0}, 24);
    owl_attention(NULL, &p.a, NULL);
    int nz = 0;
    for (int64_t i = 0; i < 2; i++)
        for (int c = 0; c < 16; c++)
            nz += p.out[i * p.out_stride + c] != 0.0f;
    CHECK_EQ_INT(nz, 0);
    CHECK(p.out[16] == GUARD);
    problem_free(&p);
}

TEST(attention_causal_ignores_future_keys)
{
    problem p;
    problem_init(&p, (shape){4, 9, 2, 2, 16, 1, 3, 0}, 25);
    float *scratch = malloc(owl_attention_scratch_size(9, 1));
    owl_attention(NULL, &p.a, scratch);
    float *first = malloc(p.out_len * sizeof(float));
    memcpy(first, p.out, p.out_len * sizeof(float));
    /* query 0 sits at position 3: rows 4..8 are the future for it */
    for (int64_t j = 4; j < 9; j++)
        for (int64_t c = 0; c < p.kv_stride; c++) {
            ((float *)p.k)[j * p.kv_stride + c] = 50.0f;
            ((float *)p.v)[j * p.kv_stride + c] = -50.0f;
        }
    owl_attention(NULL, &p.a, scratch);
    CHECK(memcmp(first, p.out, (size_t)p.out_stride * sizeof(float)) == 0);   /* row 0 same */
    CHECK(memcmp(first + p.out_stride, p.out + p.out_stride, 4) != 0);      /* row 1 sees j=4 */
    free(first);
    free(scratch);
    problem_free(&p);
}

TEST(attention_f16_kv_same_bits_as_f32_of_same_values)
{
    shape sh = {5, 21, 4, 2, 36, 1, 16, 1};
    problem p;
    problem_init(&p, sh, 26);
    const size_t nkv = (size_t)(sh.n_kv * p.kv_stride) + 1;
    float *k32 = malloc(nkv * sizeof(float)), *v32 = malloc(nkv * sizeof(float));
    for (size_t i = 0; i < nkv; i++) {
        k32[i] = owl_f16_to_f32(((owl_f16 *)p.k)[i]);
        v32[i] = owl_f16_to_f32(((owl_f16 *)p.v)[i]);
    }
    float *scratch = malloc(owl_attention_scratch_size(sh.n_kv, 1));
    owl_attention(NULL, &p.a, scratch);
    float *o16 = malloc(p.out_len * sizeof(float));
    memcpy(o16, p.out, p.out_len * sizeof(float));
    owl_attn_args a = p.a;
    a.k = k32;
    a.v = v32;
    a.kv_type = OWL_TYPE_F32;
    owl_attention(NULL, &a, scratch);
    CHECK(memcmp(o16, p.out, p.out_len * sizeof(float)) == 0);
    owl_attention_ref(&p.a, scratch);
    memcpy(o16, p.out, p.out_len * sizeof(float));
    owl_attention_ref(&a, scratch);
    CHECK(memcmp(o16, p.out, p.out_len * sizeof(float)) == 0);
    free(o16);
    free(scratch);
    free(k32);
    free(v32);
    problem_free(&p);
}

TEST(attention_same_bits_for_1_2_3_8_threads)
{
    const shape shapes[2] = {{11, 11, 8, 2, 24, 1, 0, 0}, {3, 19, 5, 5, 32, 1, 16, 1}};
    for (int si = 0; si < 2; si++) {
        problem p;
        problem_init(&p, shapes[si], 27 + (uint64_t)si);
        float *first = malloc(p.out_len * sizeof(float));
        const int nths[4] = {1, 2, 3, 8};
        for (int t = 0; t < 4; t++) {
            owl_pool *pool = owl_pool_init(nths[t]);
            CHECK(pool != NULL);
            const int nth = owl_pool_size(pool);
            float *scratch = malloc(owl_attention_scratch_size(shapes[si].n_kv, nth));
            for (size_t i = 0; i < p.out_len; i++)
                p.out[i] = GUARD;
            owl_attention(pool, &p.a, scratch);
            if (t == 0)
                memcpy(first, p.out, p.out_len * sizeof(float));
            else
                CHECK_MSG(memcmp(first, p.out, p.out_len * sizeof(float)) == 0,
                          "shape %d: %d threads differ from 1", si, nth);
            free(scratch);
            owl_pool_free(pool);
        }
        free(first);
        problem_free(&p);
    }
}

TEST(attention_scratch_size_per_thread_and_overflow)
{
    CHECK_EQ_INT(owl_attention_scratch_size(0, 1), 0);
    CHECK(owl_attention_scratch_size(1, 1) >= sizeof(float));
    CHECK(owl_attention_scratch_size(100, 3) >= 3 * 100 * sizeof(float));
    CHECK(owl_attention_scratch_size(100, 0) == owl_attention_scratch_size(100, 1));
    CHECK(owl_attention_scratch_size(INT64_MAX, 1) == SIZE_MAX);
    CHECK(owl_attention_scratch_size(INT64_MAX / 8, 8) == SIZE_MAX);
}

TEST(attention_decode_rows_equal_prefill_rows_bitwise)
{
    /* row p of an 11-row causal prefill (blocks of 4, 4, 3 rows) against the same
     * query alone at q_pos0 = p: the kernel's per-row arithmetic must not depend
     * on the other rows of its block */
    for (int f16 = 0; f16 < 2; f16++) {
        problem p;
        problem_init(&p, (shape){11, 11, 4, 2, 24, 1, 0, f16}, 40 + (uint64_t)f16);
        float *scratch = malloc(owl_attention_scratch_size(11, 1));
        owl_attention(NULL, &p.a, scratch);
        float *one = malloc((size_t)p.out_stride * sizeof(float));
        int bad = 0;
        for (int64_t r = 0; r < 11; r++) {
            owl_attn_args a = p.a;
            a.q = p.q + r * p.q_stride;
            a.n_q = 1;
            a.q_pos0 = r;
            a.out = one;
            owl_attention(NULL, &a, scratch);
            bad += memcmp(one, p.out + r * p.out_stride, 4 * 24 * sizeof(float)) != 0;
        }
        CHECK_MSG(bad == 0, "f16=%d: %d rows differ", f16, bad);
        free(one);
        free(scratch);
        problem_free(&p);
    }
}

/* The SIMD128 kernel's arithmetic written out in scalar form: q . k as four
 * lane sums (element t into lane t mod 4, in t order), combined as
 * (l0 + l1) + (l2 + l3), then the head_dim mod 4 tail in order, times scale;
 * owl_softmax_simd128; o[t] = sum_j p_j v_j[t] in j order from 0 (the
 * reference's order). owl_attention must give these bits exactly, whatever
 * its blocking of rows, keys and elements (pairs of rows, 4 keys, 16 elements
 * in registers) - so a faster kernel cannot change the model's numbers. */
#ifdef OWL_SIMD128
static void attention_simd_order(const problem *p, float *out, float *sc)
{
    const shape sh = p->sh;
    const int D = sh.head_dim, D4 = D / 4 * 4;
    for (int64_t i = 0; i < sh.n_q; i++)
        for (int h = 0; h < sh.n_heads; h++) {
            const int hk = h / (sh.n_heads / sh.n_kv_heads);
            const float *q = p->q + i * p->q_stride + h * D;
            int64_t nv = sh.n_kv;
            if (sh.causal && sh.q_pos0 + i + 1 < nv)
                nv = sh.q_pos0 + i + 1;
            for (int64_t j = 0; j < nv; j++) {
                const int64_t kb = j * p->kv_stride + hk * D;
                float l[4] = {0, 0, 0, 0};
                for (int t = 0; t < D4; t++)
                    l[t % 4] = l[t % 4] + q[t] * (float)kv_at(p, p->k, kb + t);
                float s = (l[0] + l[1]) + (l[2] + l[3]);
                for (int t = D4; t < D; t++)
                    s += q[t] * (float)kv_at(p, p->k, kb + t);
                sc[j] = s * p->a.scale;
            }
            if (nv > 0)
                owl_softmax_simd128(sc, nv);
            for (int t = 0; t < D; t++) {
                float o = 0;
                for (int64_t j = 0; j < nv; j++)
                    o += sc[j] * (float)kv_at(p, p->v, j * p->kv_stride + hk * D + t);
                out[i * p->out_stride + h * D + t] = o;
            }
        }
}
#endif

TEST(attention_simd_bits_equal_its_scalar_order_on_odd_shapes)
{
#ifdef OWL_SIMD128
    static const shape shapes[] = {
        {7, 13, 2, 2, 64, 0, 0, 0},   /* vision-like: bidirectional, hd 64, key tail 1 */
        {9, 9, 4, 2, 16, 1, 0, 0},    /* causal prefill: rows of a pair see different keys */
        {5, 23, 2, 1, 36, 1, 18, 1},  /* f16 chunk after a cache, hd 36: 16 + 16 + 4 */
        {3, 6, 3, 3, 23, 0, 0, 0},    /* hd 23: 16 + 4 + 3 scalar */
        {1, 30, 2, 2, 128, 1, 29, 1}, /* decode row, f16, hd 128 */
        {6, 4, 1, 1, 7, 1, 0, 0},     /* fewer keys than 4 per row at first */
        {2, 1, 2, 2, 8, 0, 0, 0},     /* one key */
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        problem p;
        problem_init(&p, shapes[si], 60 + si);
        float *want = malloc(p.out_len * sizeof(float));
        for (size_t i = 0; i < p.out_len; i++)
            want[i] = GUARD;
        float *sc = malloc((size_t)(shapes[si].n_kv + 1) * sizeof(float));
        attention_simd_order(&p, want, sc);
        float *scratch = malloc(owl_attention_scratch_size(shapes[si].n_kv, 1));
        owl_attention(NULL, &p.a, scratch);
        int bad = 0;
        for (size_t i = 0; i < p.out_len; i++)
            bad += memcmp(&want[i], &p.out[i], sizeof(float)) != 0;
        CHECK_MSG(bad == 0, "shape %zu: %d floats differ from the SIMD order", si, bad);
        free(scratch);
        free(sc);
        free(want);
        problem_free(&p);
    }
#endif
}

TEST(attention_head_major_kv_same_bits_as_side_by_side)
{
    /* k, v copied head after head (kv_stride = head_dim, kv_head_stride =
     * n_kv * head_dim, as the vision tower stores them): same bits, ref and SIMD */
    static const shape shapes[] = {{6, 13, 4, 2, 20, 0, 0, 0}, {5, 9, 2, 2, 19, 1, 4, 1}};
    for (int si = 0; si < 2; si++) {
        const shape sh = shapes[si];
        problem p;
        problem_init(&p, sh, 70 + (uint64_t)si);
        const size_t esz = sh.f16 ? sizeof(owl_f16) : sizeof(float);
        const size_t n = (size_t)(sh.n_kv * sh.n_kv_heads * sh.head_dim);
        char *k = malloc(n * esz), *v = malloc(n * esz);
        for (int hk = 0; hk < sh.n_kv_heads; hk++)
            for (int64_t j = 0; j < sh.n_kv; j++) {
                const size_t src = (size_t)(j * p.kv_stride + hk * sh.head_dim) * esz;
                const size_t dst = (size_t)((hk * sh.n_kv + j) * sh.head_dim) * esz;
                memcpy(k + dst, (char *)p.k + src, (size_t)sh.head_dim * esz);
                memcpy(v + dst, (char *)p.v + src, (size_t)sh.head_dim * esz);
            }
        float *scratch = malloc(owl_attention_scratch_size(sh.n_kv, 1));
        float *want = malloc(p.out_len * sizeof(float));
        owl_attn_args hm = p.a;
        hm.k = k, hm.v = v, hm.kv_stride = sh.head_dim, hm.kv_head_stride = sh.n_kv * sh.head_dim;
        for (int simd = 0; simd < 2; simd++) {
            if (simd)
                owl_attention(NULL, &p.a, scratch);
            else
                owl_attention_ref(&p.a, scratch);
            memcpy(want, p.out, p.out_len * sizeof(float));
            if (simd)
                owl_attention(NULL, &hm, scratch);
            else
                owl_attention_ref(&hm, scratch);
            CHECK_MSG(memcmp(want, p.out, p.out_len * sizeof(float)) == 0, "shape %d simd %d", si, simd);
        }
        free(want);
        free(scratch);
        free(k);
        free(v);
        problem_free(&p);
    }
}
