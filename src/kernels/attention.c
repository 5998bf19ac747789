/* attention.c - multi-head scaled dot-product attention over f32 or f16 K/V.
 *
 * For one (query row i, head h), hk = h / (n_heads / n_kv_heads):
 *   s_j = (q[i][h] . k[j][hk]) * scale      j < n_vis (all n_kv, or q_pos0+i+1 if causal)
 *   p = softmax(s)                          fp32 (owl_softmax_ref / _simd128)
 *   out[i][h] = sum_j p_j v[j][hk]          fp32, accumulated in j order
 * PyTorch: attn = softmax(q @ k.T * scale, dim=-1, dtype=float32); attn @ v.
 *
 * Threads: work unit t = (block b of QBLOCK query rows, head h), t = h * nblk
 * + b (a thread's units walk the blocks of one head, whose K and V stay in
 * cache, before the next head), is taken by thread t % nth (cyclic, because a
 * causal row's cost grows with i); every unit is computed by exactly one thread with the same code, so
 * the bits never depend on nth. Each thread keeps its scores in its own slice
 * of the caller's scratch (QBLOCK rows of n_kv floats).
 *
 * SIMD128: q . k in a 4-lane accumulator per key, 4 keys x 2 query rows at a
 * time sharing the loads (summation order differs from the sequential
 * reference: lane sums, then (l0 + l1) + (l2 + l3)); the p_j v_j update keeps
 * 16 elements of o in registers over 32 keys at a time and adds the keys one
 * after the other, in the reference's order, so it rounds
 * identically. tests/c/test_attention.c writes this order out in scalar form
 * and checks the kernel against it bit for bit. f16 rows are widened 4 lanes at
 * a time (h2f4 below, exact like owl_f16_to_f32). */
#include <stdint.h>
#include <string.h>

#include "debug.h"
#include "ops.h"
#include "simd.h"

/* query rows per work unit (owl_attention): the rows of a block share each K/V
 * row while it is in L1 */
#define QBLOCK 4

/* one row's slice of scratch, in floats: n_kv rounded up to 64 bytes */
static int64_t slice_floats(int64_t n_kv)
{
    return (n_kv + 15) / 16 * 16;
}

size_t owl_attention_scratch_size(int64_t n_kv, int n_threads)
{
    if (n_kv < 0)
        n_kv = 0;
    if (n_threads < 1)
        n_threads = 1;
    if (n_kv > INT64_MAX - 16)
        return SIZE_MAX;
    const uint64_t per = (uint64_t)slice_floats(n_kv) * QBLOCK;
    if (per > SIZE_MAX / sizeof(float) / (uint64_t)n_threads)
        return SIZE_MAX;
    return (size_t)per * (size_t)n_threads * sizeof(float);
}

static int args_ok(const owl_attn_args *a)
{
    const int ok = a->n_heads > 0 && a->n_kv_heads > 0 && a->n_heads % a->n_kv_heads == 0 &&
                   a->head_dim > 0 && (a->kv_type == OWL_TYPE_F32 || a->kv_type == OWL_TYPE_F16);
    OWL_ASSERT(ok);
    return ok;
}

/* keys visible to query row i */
static int64_t visible(const owl_attn_args *a, int64_t i)
{
    int64_t n = a->n_kv;
    if (a->causal && a->q_pos0 < n - i - 1) /* q_pos0 + i + 1 < n, without overflow */
        n = a->q_pos0 + i + 1;
    return n > 0 ? n : 0;
}

/* element offset of row j, kv head hk */
static inline int64_t kv_off(const owl_attn_args *a, int64_t j, int hk)
{
    return j * a->kv_stride + (int64_t)hk * (a->kv_head_stride ? a->kv_head_stride : a->head_dim);
}

/* ------------------------------------------------------------------ reference */

static float dot_ref(const float *q, const owl_attn_args *a, const void *base, int64_t off)
{
    const int d = a->head_dim;
    float acc = 0;
    if (a->kv_type == OWL_TYPE_F16) {
        const owl_f16 *k = (const owl_f16 *)base + off;
        for (int t = 0; t < d; t++)
            acc += q[t] * owl_f16_to_f32(k[t]);
    } else {
        const float *k = (const float *)base + off;
        for (int t = 0; t < d; t++)
            acc += q[t] * k[t];
    }
    return acc;
}

static void axpy_ref(float *o, float p, const owl_attn_args *a, int64_t off)
{
    const int d = a->head_dim;
    if (a->kv_type == OWL_TYPE_F16) {
        const owl_f16 *v = (const owl_f16 *)a->v + off;
        for (int t = 0; t < d; t++)
            o[t] += p * owl_f16_to_f32(v[t]);
    } else {
        const float *v = (const float *)a->v + off;
        for (int t = 0; t < d; t++)
            o[t] += p * v[t];
    }
}

static void pair_ref(const owl_attn_args *a, int64_t i, int h, float *sc)
{
    const int hk = h / (a->n_heads / a->n_kv_heads);
    const float *q = a->q + i * a->q_stride + (int64_t)h * a->head_dim;
    float *o = a->out + i * a->out_stride + (int64_t)h * a->head_dim;
    const int64_t nv = visible(a, i);
    memset(o, 0, (size_t)a->head_dim * sizeof(float));
    if (nv == 0)
        return;
    for (int64_t j = 0; j < nv; j++)
        sc[j] = dot_ref(q, a, a->k, kv_off(a, j, hk)) * a->scale;
    owl_softmax_ref(sc, nv);
    for (int64_t j = 0; j < nv; j++)
        axpy_ref(o, sc[j], a, kv_off(a, j, hk));
}

void owl_attention_ref(const owl_attn_args *a, float *scratch)
{
    if (!args_ok(a) || a->n_q <= 0)
        return;
    for (int64_t i = 0; i < a->n_q; i++)
        for (int h = 0; h < a->n_heads; h++)
            pair_ref(a, i, h, scratch);
}

/* ------------------------------------------------------------------ SIMD128 */
#ifdef OWL_SIMD128

/* 4 f16 at p -> f32, exact (same values as owl_f16_to_f32): each half goes to
 * the top of a u32 lane, an arithmetic shift by 3 moves exponent and mantissa
 * to f32 position keeping the sign, and x 2^112 rebiases the exponent (and
 * turns subnormal halves into normal floats exactly). inf/NaN halves (exponent
 * 31) get the all-ones f32 exponent, keeping their mantissa. */
static inline v128_t h2f4(const owl_f16 *p)
{
    const v128_t h = wasm_v128_load64_zero(p);
    const v128_t x = wasm_i16x8_shuffle(wasm_i32x4_splat(0), h, 0, 8, 0, 9, 0, 10, 0, 11);
    const v128_t y = wasm_v128_and(wasm_i32x4_shr(x, 3), wasm_i32x4_splat(-0x70002000)); /* 0x8fffe000 */
    const v128_t f = wasm_f32x4_mul(y, wasm_f32x4_splat(0x1p112f));
    const v128_t e31 = wasm_i32x4_splat(0x7c000000);
    const v128_t special = wasm_i32x4_eq(wasm_v128_and(x, e31), e31);
    return wasm_v128_or(f, wasm_v128_and(special, wasm_i32x4_splat(0x7f800000)));
}

/* 4 elements of a K or V row at element index t */
static inline v128_t ld4(const void *row, int t, const int f16)
{
    return f16 ? h2f4((const owl_f16 *)row + t) : wasm_v128_load((const float *)row + t);
}

static inline float ld1(const void *row, int t, const int f16)
{
    return f16 ? owl_f16_to_f32(((const owl_f16 *)row)[t]) : ((const float *)row)[t];
}

static inline void *row_at(const void *base, int64_t off, const int f16)
{
    return f16 ? (void *)((const owl_f16 *)base + off) : (void *)((const float *)base + off);
}

static inline float hsum(v128_t acc)
{
    return (wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1)) +
           (wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3));
}

/* scores of keys j0..j0+nk-1 (nk = 1..4), one 4-lane accumulator per key, q
 * loads shared; a key's result does not depend on which others it is with. */
static inline void dots(const owl_attn_args *a, const float *q, int hk, int64_t j0, int nk,
                        float *out, const int f16)
{
    const int d = a->head_dim;
    const void *k[4];
    v128_t acc[4];
    for (int r = 0; r < 4; r++) {
        k[r] = row_at(a->k, kv_off(a, j0 + (r < nk ? r : 0), hk), f16);
        acc[r] = wasm_f32x4_splat(0.0f);
    }
    int t = 0;
    if (nk == 4) {
        for (; t + 4 <= d; t += 4) {
            const v128_t vq = wasm_v128_load(q + t);
            acc[0] = wasm_f32x4_add(acc[0], wasm_f32x4_mul(vq, ld4(k[0], t, f16)));
            acc[1] = wasm_f32x4_add(acc[1], wasm_f32x4_mul(vq, ld4(k[1], t, f16)));
            acc[2] = wasm_f32x4_add(acc[2], wasm_f32x4_mul(vq, ld4(k[2], t, f16)));
            acc[3] = wasm_f32x4_add(acc[3], wasm_f32x4_mul(vq, ld4(k[3], t, f16)));
        }
    } else {
        for (; t + 4 <= d; t += 4) {
            const v128_t vq = wasm_v128_load(q + t);
            for (int r = 0; r < nk; r++)
                acc[r] = wasm_f32x4_add(acc[r], wasm_f32x4_mul(vq, ld4(k[r], t, f16)));
        }
    }
    for (int r = 0; r < nk; r++) {
        float sum = hsum(acc[r]);
        for (int u = t; u < d; u++)
            sum += q[u] * ld1(k[r], u, f16);
        out[r] = sum * a->scale;
    }
}

/* scale x ((c0 + c1) + (c2 + c3)) of the 4x4 transpose of accumulators
 * a0..a3 (keys 0..3) into out[0..3]: lane r = hsum(a_r) * scale, the same bits
 * as dots() gives key r, in one vector */
static inline void hsum4_store(v128_t a0, v128_t a1, v128_t a2, v128_t a3, v128_t vs, float *out)
{
    const v128_t l01 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), h01 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7);
    const v128_t l23 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), h23 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
    const v128_t c0 = wasm_i64x2_shuffle(l01, l23, 0, 2), c1 = wasm_i64x2_shuffle(l01, l23, 1, 3);
    const v128_t c2 = wasm_i64x2_shuffle(h01, h23, 0, 2), c3 = wasm_i64x2_shuffle(h01, h23, 1, 3);
    const v128_t sum = wasm_f32x4_add(wasm_f32x4_add(c0, c1), wasm_f32x4_add(c2, c3));
    wasm_v128_store(out, wasm_f32x4_mul(sum, vs));
}

/* Scores of keys j0..j0+3 for two query rows at once (TWO = 1; one row when
 * 0), when head_dim is a multiple of 4: 8 (4) accumulators, the rows sharing
 * each K load and the keys each q load, then hsum4_store: the same bits as
 * dots() with nk = 4, four times fewer horizontal operations. The
 * accumulators are separate variables (not an array) so that every compiler
 * keeps them in registers. */
static inline void dots_x4(const owl_attn_args *a, const float *q0, const float *q1, int hk, int64_t j0,
                           float *out0, float *out1, const int TWO, const int f16)
{
    const int d = a->head_dim;
    const void *k0 = row_at(a->k, kv_off(a, j0, hk), f16);
    const void *k1 = row_at(a->k, kv_off(a, j0 + 1, hk), f16);
    const void *k2 = row_at(a->k, kv_off(a, j0 + 2, hk), f16);
    const void *k3 = row_at(a->k, kv_off(a, j0 + 3, hk), f16);
    const v128_t z = wasm_f32x4_splat(0.0f);
    v128_t a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    for (int t = 0; t + 4 <= d; t += 4) {
        const v128_t x0 = ld4(k0, t, f16), x1 = ld4(k1, t, f16);
        const v128_t x2 = ld4(k2, t, f16), x3 = ld4(k3, t, f16);
        const v128_t va = wasm_v128_load(q0 + t);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(va, x0));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(va, x1));
        a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(va, x2));
        a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(va, x3));
        if (TWO) {
            const v128_t vb = wasm_v128_load(q1 + t);
            b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(vb, x0));
            b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(vb, x1));
            b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(vb, x2));
            b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(vb, x3));
        }
    }
    const v128_t vs = wasm_f32x4_splat(a->scale);
    hsum4_store(a0, a1, a2, a3, vs, out0 + j0);
    if (TWO)
        hsum4_store(b0, b1, b2, b3, vs, out1 + j0);
}

/* keys per pass of pv_x: their V rows (a few KB) stay in L1 while every
 * element chunk of the row uses them */
#define PV_KEYS 32

/* o[t0 .. t0+15] (FOUR = 1; o[t0 .. t0+3] when 0) += sum_j p[j] v_j over
 * keys j0 <= j < min(j1, n), held in registers (separate variables, so that
 * every compiler keeps them there) over the keys; o starts from zero when
 * j0 = 0. Each element sums in j order from 0, like the reference's
 * o[t] += p_j * v_j[t], so the bits are the reference's. (Measured in
 * Chromium at the vision shape: one row x 16 elements beat 2 rows x 16, 2 x 8,
 * 1 x 8 and 1 x 32, and 32 keys per pass beat 8, 16, 64 and 128 - or tied.) */
static inline void pv_x(const owl_attn_args *a, float *o, const float *p, int64_t n, int hk, int t0,
                        int64_t j0, int64_t j1, const int FOUR, const int f16)
{
    const v128_t z = wasm_f32x4_splat(0.0f);
    v128_t c0 = z, c1 = z, c2 = z, c3 = z;
    if (j0 > 0) {
        c0 = wasm_v128_load(o + t0);
        if (FOUR) {
            c1 = wasm_v128_load(o + t0 + 4);
            c2 = wasm_v128_load(o + t0 + 8);
            c3 = wasm_v128_load(o + t0 + 12);
        }
    }
    const int64_t e = n < j1 ? n : j1;
    for (int64_t j = j0; j < e; j++) {
        const void *v = row_at(a->v, kv_off(a, j, hk), f16);
        const v128_t vp = wasm_v128_load32_splat(p + j);
        c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(vp, ld4(v, t0, f16)));
        if (FOUR) {
            c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(vp, ld4(v, t0 + 4, f16)));
            c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(vp, ld4(v, t0 + 8, f16)));
            c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(vp, ld4(v, t0 + 12, f16)));
        }
    }
    wasm_v128_store(o + t0, c0);
    if (FOUR) {
        wasm_v128_store(o + t0 + 4, c1);
        wasm_v128_store(o + t0 + 8, c2);
        wasm_v128_store(o + t0 + 12, c3);
    }
}

/* o = sum_j p[j] v_j over the row's n keys, all head_dim elements: PV_KEYS
 * keys at a time, in them 16 elements at a time, then 4, then the scalar
 * tail, every element in the reference's j order. */
static inline void pv_row(const owl_attn_args *a, float *o, const float *p, int64_t n, int hk,
                          const int f16)
{
    const int d = a->head_dim;
    int64_t j0 = 0;
    do { /* at least once: a row without keys gets zeros */
        const int64_t j1 = j0 + PV_KEYS;
        int t = 0;
        for (; t + 16 <= d; t += 16)
            pv_x(a, o, p, n, hk, t, j0, j1, 1, f16);
        for (; t + 4 <= d; t += 4)
            pv_x(a, o, p, n, hk, t, j0, j1, 0, f16);
        j0 = j1;
    } while (j0 < n);
    for (int t = d / 4 * 4; t < d; t++) {
        float acc = 0;
        for (int64_t j = 0; j < n; j++)
            acc += p[j] * ld1(row_at(a->v, kv_off(a, j, hk), f16), t, f16);
        o[t] = acc;
    }
}

/* Query rows i0..i0+nr-1 (nr <= QBLOCK) of head h. Keys are visited in groups
 * of 4, each group serving all rows of the block while it is in L1 (pairs of
 * rows at once through dots_x4 where both see all 4 keys); then per row the
 * softmax and p.V, o held in registers. Every (row, key)
 * score and every o element is the same arithmetic as for a lone row, so a
 * row's result does not depend on its block (tests check decode rows against
 * prefill rows bit for bit). sc holds QBLOCK slices of ldsc. */
static inline void block_simd_t(const owl_attn_args *a, int64_t i0, int nr, int h, float *sc,
                                int64_t ldsc, const int f16)
{
    const int hk = h / (a->n_heads / a->n_kv_heads);
    const float *q[QBLOCK];
    float *o[QBLOCK];
    float *s[QBLOCK];
    int64_t nv[QBLOCK] = {0};
    for (int r = 0; r < nr; r++) {
        q[r] = a->q + (i0 + r) * a->q_stride + (int64_t)h * a->head_dim;
        o[r] = a->out + (i0 + r) * a->out_stride + (int64_t)h * a->head_dim;
        s[r] = sc + r * ldsc;
        nv[r] = visible(a, i0 + r);
    }
    const int64_t nmax = nv[nr - 1]; /* visible() grows with the row */
    const int by4 = a->head_dim % 4 == 0;
    for (int64_t j = 0; j < nmax; j += 4)
        for (int r = 0; r < nr;) {
            if (by4 && r + 1 < nr && j + 4 <= nv[r]) { /* nv[r + 1] >= nv[r] */
                dots_x4(a, q[r], q[r + 1], hk, j, s[r], s[r + 1], 1, f16);
                r += 2;
                continue;
            }
            if (by4 && j + 4 <= nv[r])
                dots_x4(a, q[r], q[r], hk, j, s[r], s[r], 0, f16);
            else if (j < nv[r])
                dots(a, q[r], hk, j, nv[r] - j < 4 ? (int)(nv[r] - j) : 4, s[r] + j, f16);
            r++;
        }
    for (int r = 0; r < nr; r++)
        if (nv[r] > 0)
            owl_softmax_simd128(s[r], nv[r]);
    for (int r = 0; r < nr; r++)
        pv_row(a, o[r], s[r], nv[r], hk, f16);
}

static void block_run(const owl_attn_args *a, int64_t i0, int nr, int h, float *sc, int64_t ldsc)
{
    if (a->kv_type == OWL_TYPE_F16)
        block_simd_t(a, i0, nr, h, sc, ldsc, 1);
    else
        block_simd_t(a, i0, nr, h, sc, ldsc, 0);
}
#else
static void block_run(const owl_attn_args *a, int64_t i0, int nr, int h, float *sc, int64_t ldsc)
{
    (void)ldsc;
    for (int r = 0; r < nr; r++)
        pair_ref(a, i0 + r, h, sc);
}
#endif /* OWL_SIMD128 */

/* ------------------------------------------------------------------ threaded */

typedef struct {
    const owl_attn_args *a;
    float *scratch;
} attn_job;

static void attn_worker(void *ctx, int ith, int nth)
{
    const attn_job *job = ctx;
    const owl_attn_args *a = job->a;
    const int64_t ldsc = slice_floats(a->n_kv);
    float *sc = job->scratch ? job->scratch + (int64_t)ith * QBLOCK * ldsc : NULL;
    const int64_t nblk = (a->n_q + QBLOCK - 1) / QBLOCK;
    const int64_t total = nblk * a->n_heads;
    for (int64_t t = ith; t < total; t += nth) {
        const int64_t i0 = t % nblk * QBLOCK;
        const int nr = a->n_q - i0 < QBLOCK ? (int)(a->n_q - i0) : QBLOCK;
        block_run(a, i0, nr, (int)(t / nblk), sc, ldsc);
    }
}

void owl_attention(owl_pool *pool, const owl_attn_args *a, float *scratch)
{
    if (!args_ok(a) || a->n_q <= 0)
        return;
    attn_job job = {a, scratch};
    owl_pool_run(pool, attn_worker, &job);
}
