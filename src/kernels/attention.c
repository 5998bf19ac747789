/* attention.c - multi-head scaled dot-product attention over f32 or f16 K/V.
 *
 * For one (query row i, head h), hk = h / (n_heads / n_kv_heads):
 *   s_j = (q[i][h] . k[j][hk]) * scale      j < n_vis (all n_kv, or q_pos0+i+1 if causal)
 *   p = softmax(s)                          fp32 (owl_softmax_ref / _simd128)
 *   out[i][h] = sum_j p_j v[j][hk]          fp32, accumulated in j order
 * PyTorch: attn = softmax(q @ k.T * scale, dim=-1, dtype=float32); attn @ v.
 *
 * Threads: work unit t = (block of QBLOCK query rows, head h), t = b * n_heads
 * + h, is taken by thread t % nth (cyclic, because a causal row's cost grows
 * with i); every unit is computed by exactly one thread with the same code, so
 * the bits never depend on nth. Each thread keeps its scores in its own slice
 * of the caller's scratch (QBLOCK rows of n_kv floats).
 *
 * SIMD128: q . k in a 4-lane accumulator per key, 4 keys at a time sharing the
 * q loads (summation order differs from the sequential reference); the p_j v_j
 * update runs 4 rows at a time but adds them to o one after the other, in the
 * reference's order, so it rounds identically. f16 rows are widened 4 lanes at
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
    return j * a->kv_stride + (int64_t)hk * a->head_dim;
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

/* o += p_j v_j for rows j0..j0+nv-1 (nv = 1..4), added one row after the
 * other exactly as the reference does, but o loaded and stored once. */
static inline void axpys(const owl_attn_args *a, float *o, const float *p, int hk, int64_t j0,
                         int nv, const int f16)
{
    const int d = a->head_dim;
    const void *v[4];
    v128_t vp[4];
    for (int r = 0; r < 4; r++) {
        v[r] = row_at(a->v, kv_off(a, j0 + (r < nv ? r : 0), hk), f16);
        vp[r] = wasm_f32x4_splat(r < nv ? p[r] : 0.0f);
    }
    int t = 0;
    for (; t + 4 <= d; t += 4) {
        v128_t acc = wasm_v128_load(o + t);
        if (nv == 4) {
            acc = wasm_f32x4_add(acc, wasm_f32x4_mul(vp[0], ld4(v[0], t, f16)));
            acc = wasm_f32x4_add(acc, wasm_f32x4_mul(vp[1], ld4(v[1], t, f16)));
            acc = wasm_f32x4_add(acc, wasm_f32x4_mul(vp[2], ld4(v[2], t, f16)));
            acc = wasm_f32x4_add(acc, wasm_f32x4_mul(vp[3], ld4(v[3], t, f16)));
        } else {
            for (int r = 0; r < nv; r++)
                acc = wasm_f32x4_add(acc, wasm_f32x4_mul(vp[r], ld4(v[r], t, f16)));
        }
        wasm_v128_store(o + t, acc);
    }
    for (; t < d; t++)
        for (int r = 0; r < nv; r++)
            o[t] += p[r] * ld1(v[r], t, f16);
}

/* Query rows i0..i0+nr-1 (nr <= QBLOCK) of head h. Keys (and values) are
 * visited in groups of 4, each group serving all rows of the block while it is
 * in L1: K and V stream from memory once per block, not once per row. Every
 * (row, key) product and every o update is the same arithmetic as for a lone
 * row, so a row's result does not depend on its block (tests check decode
 * rows against prefill rows bit for bit). sc holds QBLOCK slices of ldsc. */
static inline void block_simd_t(const owl_attn_args *a, int64_t i0, int nr, int h, float *sc,
                                int64_t ldsc, const int f16)
{
    const int hk = h / (a->n_heads / a->n_kv_heads);
    const float *q[QBLOCK];
    float *o[QBLOCK];
    int64_t nv[QBLOCK] = {0};
    for (int r = 0; r < nr; r++) {
        q[r] = a->q + (i0 + r) * a->q_stride + (int64_t)h * a->head_dim;
        o[r] = a->out + (i0 + r) * a->out_stride + (int64_t)h * a->head_dim;
        nv[r] = visible(a, i0 + r);
        memset(o[r], 0, (size_t)a->head_dim * sizeof(float));
    }
    const int64_t nmax = nv[nr - 1]; /* visible() grows with the row */
    for (int64_t j = 0; j < nmax; j += 4)
        for (int r = 0; r < nr; r++)
            if (j < nv[r])
                dots(a, q[r], hk, j, nv[r] - j < 4 ? (int)(nv[r] - j) : 4, sc + r * ldsc + j, f16);
    for (int r = 0; r < nr; r++)
        if (nv[r] > 0)
            owl_softmax_simd128(sc + r * ldsc, nv[r]);
    for (int64_t j = 0; j < nmax; j += 4)
        for (int r = 0; r < nr; r++)
            if (j < nv[r])
                axpys(a, o[r], sc + r * ldsc + j, hk, j, nv[r] - j < 4 ? (int)(nv[r] - j) : 4, f16);
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
        const int64_t i0 = t / a->n_heads * QBLOCK;
        const int nr = a->n_q - i0 < QBLOCK ? (int)(a->n_q - i0) : QBLOCK;
        block_run(a, i0, nr, (int)(t % a->n_heads), sc, ldsc);
    }
}

void owl_attention(owl_pool *pool, const owl_attn_args *a, float *scratch)
{
    if (!args_ok(a) || a->n_q <= 0)
        return;
    attn_job job = {a, scratch};
    owl_pool_run(pool, attn_worker, &job);
}
