/* test_quant.c - tensor types: f16/bf16, block layouts (known answers),
 * quantize/dequantize error, SIMD128 vs reference (bytes and float bits).
 *
 * "Unaligned" below means not 16-byte aligned: quantized rows start 2 bytes
 * (f16-aligned block structs) or 4 bytes (q8_K, f32) past an aligned address. */
#include <stdlib.h>

#include "../../src/kernels/types.h"
#include "test.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = owl_test_rand_f32(&s, lo, hi);
}

/* ---------------------------------------------------------------- f16 / bf16 */

TEST(quant_f16_known_values)
{
    CHECK_EQ_INT(owl_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(owl_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(owl_f32_to_f16(0.0f), 0x0000);
    CHECK_EQ_INT(owl_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(owl_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(owl_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(owl_f32_to_f16(65520.0f), 0x7c00); /* tie to even -> inf */
    CHECK_EQ_INT(owl_f32_to_f16(1e10f), 0x7c00);
    CHECK_EQ_INT(owl_f32_to_f16(-INFINITY), 0xfc00);
    CHECK_EQ_INT(owl_f32_to_f16(0x1p-14f), 0x0400); /* smallest normal */
    CHECK_EQ_INT(owl_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
    CHECK_EQ_INT(owl_f32_to_f16(0x1p-25f), 0x0000); /* tie to even -> 0 */
    CHECK_EQ_INT(owl_f32_to_f16(0x1.8p-25f), 0x0001);
    CHECK_EQ_INT(owl_f32_to_f16(0x1.8p-24f), 0x0002); /* 1.5 ulp: tie -> even 2 */
    CHECK_EQ_INT(owl_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie -> even */
    CHECK_EQ_INT(owl_f32_to_f16(1.0f + 0x3p-11f), 0x3c02); /* tie -> even */
    CHECK_EQ_INT(owl_f32_to_f16(0x1.ffcp-15f), 0x0400);     /* rounds up into normal */
    uint16_t n = owl_f32_to_f16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    CHECK(owl_f16_to_f32(0x7c00) == INFINITY);
    CHECK(isnan(owl_f16_to_f32(0x7e00)));
    CHECK(owl_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(owl_f16_to_f32(0x83ff) == -0x1.ff8p-15f);
    CHECK(owl_f16_to_f32(0x3555) == 0x1.554p-2f);
}

TEST(quant_f16_roundtrip_all_finite)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* nan */
        CHECK_EQ_INT(owl_f32_to_f16(owl_f16_to_f32((owl_f16)h)), h);
    }
}

/* Every midpoint between neighbouring f16 values rounds to the even one, and
 * the floats just beside it round to the nearer one. */
TEST(quant_f16_rounds_midpoints_to_even)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float a = owl_f16_to_f32((owl_f16)h), b = owl_f16_to_f32((owl_f16)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2); /* exact in f32 */
        uint32_t even = (h & 1) ? h + 1 : h;
        if (owl_f32_to_f16(mid) != even)
            bad++;
        if (owl_f32_to_f16(from_bits(bits(mid) - 1)) != h)
            bad++;
        if (owl_f32_to_f16(from_bits(bits(mid) + 1)) != h + 1)
            bad++;
        if (owl_f32_to_f16(-mid) != (even | 0x8000))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(quant_bf16_to_f32)
{
    CHECK(owl_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(owl_bf16_to_f32(0xc040) == -3.0f);
    CHECK(owl_bf16_to_f32(0x7f80) == INFINITY);
    uint16_t in[3] = {0x3f80, 0x4000, 0xbf00};
    float out[4] = {0, 0, 0, 42};
    owl_dequantize_row_ref(OWL_TYPE_BF16, in, out, 3);
    CHECK(out[0] == 1.0f && out[1] == 2.0f && out[2] == -0.5f && out[3] == 42);
}

TEST(quant_traits_and_row_size)
{
    CHECK_EQ_INT(owl_type_get(OWL_TYPE_Q4_K)->blck_size, 256);
    CHECK_EQ_INT(owl_type_get(OWL_TYPE_Q4_K)->vec_dot_type, OWL_TYPE_Q8_K);
    CHECK_EQ_INT(owl_type_get(OWL_TYPE_Q4_0)->vec_dot_type, OWL_TYPE_Q8_0);
    CHECK_EQ_INT(owl_type_get(OWL_TYPE_F16)->vec_dot_type, OWL_TYPE_F32);
    CHECK(strcmp(owl_type_get(OWL_TYPE_Q6_K)->name, "q6_K") == 0);
    CHECK(owl_type_get(3) == NULL); /* q4_1: not ours */
    CHECK(owl_type_get(-1) == NULL && owl_type_get(99) == NULL);
    CHECK_EQ_INT(owl_row_size(OWL_TYPE_Q4_0, 4096), 4096 / 32 * 18);
    CHECK_EQ_INT(owl_row_size(OWL_TYPE_Q6_K, 512), 2 * 210);
    CHECK_EQ_INT(owl_row_size(OWL_TYPE_F16, 7), 14);
    CHECK_EQ_INT(owl_row_size(OWL_TYPE_Q4_K, 100), 0);
    CHECK_EQ_INT(owl_row_size(OWL_TYPE_Q8_0, -32), 0);
    CHECK_EQ_INT(owl_row_size(OWL_TYPE_F32, INT64_MAX), 0); /* bytes overflow size_t */
}

/* ---------------------------------------------------------------- known answers */

TEST(quant_q4_0_layout_low_nibbles_first)
{
    owl_block_q4_0 b;
    b.d = 0x3800; /* 0.5 */
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[33];
    y[32] = 123;
    owl_dequantize_row_ref(OWL_TYPE_Q4_0, &b, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == (j - 8) * 0.5f);
        CHECK(y[16 + j] == (7 - j) * 0.5f);
    }
    CHECK(y[32] == 123);
}

TEST(quant_q8_0_layout)
{
    owl_block_q8_0 b;
    b.d = 0x3400; /* 0.25 */
    for (int j = 0; j < 32; j++)
        b.qs[j] = (int8_t)(j * 8 - 128);
    float y[32];
    owl_dequantize_row_ref(OWL_TYPE_Q8_0, &b, y, 32);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == (j * 8 - 128) * 0.25f);
}

TEST(quant_q4_K_layout_scales_and_nibbles)
{
    static const uint8_t sc[8] = {1, 2, 3, 4, 33, 40, 50, 63}, m[8] = {0, 5, 10, 15, 17, 20, 31, 63};
    owl_block_q4_K b;
    b.d = 0x3c00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    for (int j = 0; j < 4; j++) { /* ggml's 12-byte packing of 6-bit values */
        b.scales[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        b.scales[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        b.scales[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
    for (int i = 0; i < 128; i++)
        b.qs[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    uint8_t usc[8], um[8];
    owl_q4_K_scales(b.scales, usc, um);
    CHECK(memcmp(usc, sc, 8) == 0 && memcmp(um, m, 8) == 0);
    float y[256];
    owl_dequantize_row_ref(OWL_TYPE_Q4_K, &b, y, 256);
    int bad = 0;
    for (int e = 0; e < 256; e++) {
        int g = e / 64, hi = (e % 64) >= 32, l = e % 32; /* 64-chunks: 32 low, then 32 high */
        int q = hi ? b.qs[32 * g + l] >> 4 : b.qs[32 * g + l] & 0xF;
        int j = 2 * g + hi;
        if (y[e] != 1.0f * sc[j] * q - 0.5f * m[j])
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(y[0] == 0.0f);              /* sc 1, q 0, m 0 */
    CHECK(y[32] == 2.0f * 15 - 2.5f); /* element 32: high nibble of qs[0] = 15, sub-block 1 */
}

TEST(quant_q6_K_layout)
{
    owl_block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3800; /* 0.5 */
    for (int j = 0; j < 16; j++)
        b.scales[j] = (int8_t)(j - 8);
    int q[256];
    for (int e = 0; e < 256; e++) {
        q[e] = (e * 7) % 64;
        int k = e / 128, w = e % 128, s = w / 32, l = w % 32;
        uint8_t *ql = &b.ql[64 * k + l + 32 * (s & 1)];
        *ql |= (uint8_t)((q[e] & 0xF) << (s >= 2 ? 4 : 0));
        b.qh[32 * k + l] |= (uint8_t)((q[e] >> 4) << (2 * s));
    }
    float y[256];
    owl_dequantize_row_ref(OWL_TYPE_Q6_K, &b, y, 256);
    int bad = 0;
    for (int e = 0; e < 256; e++)
        if (y[e] != 0.5f * (e / 16 - 8) * (q[e] - 32))
            bad++;
    CHECK_EQ_INT(bad, 0);
}

TEST(quant_q8_K_known_block)
{
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)(i % 17) - 8.0f; /* max |x| = 8, first at x[0] = -8 */
    owl_block_q8_K b;
    owl_quantize_row_ref(OWL_TYPE_Q8_K, x, &b, 256);
    CHECK(b.d == 1.0f / (-127.0f / -8.0f));
    CHECK_EQ_INT(b.qs[0], -127);
    CHECK_EQ_INT(b.qs[16], 127);
    int s = 0;
    for (int i = 0; i < 16; i++)
        s += b.qs[16 + i];
    CHECK_EQ_INT(b.bsums[1], s);
}

TEST(quant_q4_0_quantizer_known_block)
{
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 16) / 4; /* max |x| = 4 at x[0] = -4 -> d = 0.5 */
    owl_block_q4_0 b;
    owl_quantize_row_ref(OWL_TYPE_Q4_0, x, &b, 32);
    CHECK_EQ_INT(b.d, 0x3800);
    /* x/d + 8.5 truncated: element 0 -> 0, element 16 (0.0) -> 8, element 31 (3.75) -> 15 */
    CHECK_EQ_INT(b.qs[0] & 0xF, 0);
    CHECK_EQ_INT(b.qs[0] >> 4, 8);
    CHECK_EQ_INT(b.qs[15] >> 4, 15);
    CHECK_EQ_INT(b.qs[1] & 0xF, 1); /* -3.75 * 2 + 8.5 = 1 */
}

/* ---------------------------------------------------------------- error bounds */

static double rel_rmse(owl_type t, int64_t n, uint64_t seed)
{
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    void *q = malloc(owl_row_size(t, n));
    fill_uniform(x, n, seed, -1, 1);
    owl_quantize_row_ref(t, x, q, n);
    owl_dequantize_row_ref(t, q, y, n);
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    free(x);
    free(y);
    free(q);
    return sqrt(e / s);
}

TEST(quant_roundtrip_error_bounds)
{
    /* uniform [-1, 1]; expected ~ step / sqrt(12) / rms(x) */
    CHECK(rel_rmse(OWL_TYPE_F16, 768, 1) < 3e-4);
    CHECK(rel_rmse(OWL_TYPE_Q8_0, 768, 2) < 0.006);
    CHECK(rel_rmse(OWL_TYPE_Q8_K, 768, 3) < 0.006);
    CHECK(rel_rmse(OWL_TYPE_Q6_K, 768, 4) < 0.02);
    CHECK(rel_rmse(OWL_TYPE_Q4_0, 768, 5) < 0.11);
    CHECK(rel_rmse(OWL_TYPE_Q4_K, 768, 6) < 0.08);
    /* and not trivially zero */
    CHECK(rel_rmse(OWL_TYPE_Q4_K, 768, 6) > 0.01);
}

TEST(quant_q8_0_error_within_half_step)
{
    float x[96], y[96];
    owl_block_q8_0 q[3];
    fill_uniform(x, 96, 11, -3, 3);
    owl_quantize_row_ref(OWL_TYPE_Q8_0, x, q, 96);
    owl_dequantize_row_ref(OWL_TYPE_Q8_0, q, y, 96);
    for (int b = 0; b < 3; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
        for (int j = 0; j < 32; j++) /* half a step, plus f16 rounding of d times 127 */
            CHECK(fabsf(x[32 * b + j] - y[32 * b + j]) <= amax / 127 * 0.5f + amax * 1e-3f);
    }
}

TEST(quant_zero_blocks)
{
    float x[256] = {0}, y[256];
    owl_block_q4_K k4;
    owl_block_q6_K k6;
    owl_block_q8_K k8;
    owl_block_q4_0 q4[8];
    owl_quantize_row_ref(OWL_TYPE_Q4_K, x, &k4, 256);
    owl_dequantize_row_ref(OWL_TYPE_Q4_K, &k4, y, 256);
    CHECK(owl_test_max_abs(y, 256) == 0);
    owl_quantize_row_ref(OWL_TYPE_Q6_K, x, &k6, 256);
    owl_dequantize_row_ref(OWL_TYPE_Q6_K, &k6, y, 256);
    CHECK(owl_test_max_abs(y, 256) == 0);
    owl_quantize_row_ref(OWL_TYPE_Q8_K, x, &k8, 256);
    CHECK(k8.d == 0 && k8.qs[5] == 0 && k8.bsums[3] == 0);
    owl_quantize_row_ref(OWL_TYPE_Q4_0, x, q4, 256);
    owl_dequantize_row_ref(OWL_TYPE_Q4_0, q4, y, 256);
    CHECK(owl_test_max_abs(y, 256) == 0);
}

/* ---------------------------------------------------------------- dots */

static const owl_type k_wtypes[6] = {OWL_TYPE_F32, OWL_TYPE_F16, OWL_TYPE_Q4_0,
                                     OWL_TYPE_Q8_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K};

/* Dot of the dequantized operands in double: what the quantized dot means. */
TEST(quant_dot_ref_matches_dequantized_product)
{
    const int64_t n = 512;
    float x[512], a[512], wd[512], ad[512];
    fill_uniform(x, n, 21, -1, 1);
    fill_uniform(a, n, 22, -2, 2);
    for (int k = 0; k < 6; k++) {
        owl_type t = k_wtypes[k], at = owl_type_get(t)->vec_dot_type;
        void *wq = malloc(owl_row_size(t, n)), *aq = malloc(owl_row_size(at, n));
        owl_quantize_row_ref(t, x, wq, n);
        owl_quantize_row_ref(at, a, aq, n);
        owl_dequantize_row_ref(t, wq, wd, n);
        owl_dequantize_row_ref(at, aq, ad, n);
        double want = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            want += (double)wd[i] * ad[i];
            mag += fabs((double)wd[i] * ad[i]);
        }
        float got = owl_vec_dot_ref(t, n, wq, aq);
        CHECK_MSG(fabs(got - want) <= 1e-5 * mag + 1e-6, "%s: %g vs %g", owl_type_get(t)->name,
                  (double)got, want);
        free(wq);
        free(aq);
    }
}

/* (The _simd128 functions exist in builds with OWL_SIMD128: every test build.) */
/* Quantizers: SIMD bytes == reference bytes, odd block counts, unaligned
 * input, guard bytes after the output. */
TEST(quant_simd_quantize_matches_ref)
{
    static const int nblocks[] = {1, 3, 7, 33};
    owl_type ts[2] = {OWL_TYPE_Q8_0, OWL_TYPE_Q8_K};
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 4; s++) {
            int64_t n = (int64_t)nblocks[s] * owl_type_get(ts[k])->blck_size;
            size_t rs = owl_row_size(ts[k], n);
            float *xa = malloc((size_t)(n + 1) * 4), *x = xa + 1;
            uint8_t *r = malloc(rs + 16), *v = malloc(rs + 20), *vo = v + 4;
            fill_uniform(x, n, 100 + (uint64_t)s, -5, 5);
            x[n / 2] = 5.5f;        /* a clear maximum */
            x[0] = (float)(s - 2);  /* exact values: ties in rounding */
            memset(r, 0xAB, rs + 16);
            memset(v, 0xAB, rs + 20);
            owl_quantize_row_ref(ts[k], x, r, n);
            owl_quantize_row_simd128(ts[k], x, vo, n);
            CHECK_MSG(memcmp(r, vo, rs) == 0, "%s n=%lld", owl_type_get(ts[k])->name, (long long)n);
            for (int g = 0; g < 16; g++)
                CHECK(vo[rs + g] == 0xAB);
            free(xa);
            free(r);
            free(v);
        }
}

TEST(quant_simd_quantize_rounds_halves_like_ref)
{
    /* values that land exactly on .5 after scaling: roundf (q8_0) and
     * round-half-even (q8_K) must both be reproduced */
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)((i % 255) - 127) * 0.5f;
    x[0] = 127.0f;
    owl_block_q8_0 r0[8], v0[8];
    owl_block_q8_K rk, vk;
    owl_quantize_row_ref(OWL_TYPE_Q8_0, x, r0, 256);
    owl_quantize_row_simd128(OWL_TYPE_Q8_0, x, v0, 256);
    CHECK(memcmp(r0, v0, sizeof r0) == 0);
    owl_quantize_row_ref(OWL_TYPE_Q8_K, x, &rk, 256);
    owl_quantize_row_simd128(OWL_TYPE_Q8_K, x, &vk, 256);
    CHECK(memcmp(&rk, &vk, sizeof rk) == 0);
}

/* Dots: SIMD result has exactly the reference's bits. */
TEST(quant_simd_dots_match_ref_bitwise)
{
    static const int nblocks[] = {1, 3, 7, 33}; /* 33: crosses the SIMD dot's pieces */
    static const int64_t nfloat[] = {1, 3, 7, 8, 31, 33, 257};
    for (int k = 0; k < 6; k++) {
        owl_type t = k_wtypes[k], at = owl_type_get(t)->vec_dot_type;
        const int bs = owl_type_get(t)->blck_size;
        const int cases = bs == 1 ? 7 : 4;
        for (int c = 0; c < cases; c++) {
            int64_t n = bs == 1 ? nfloat[c] : (int64_t)nblocks[c] * bs;
            float *x = malloc((size_t)n * 4), *a = malloc((size_t)n * 4);
            fill_uniform(x, n, 300 + (uint64_t)c, -1, 1);
            fill_uniform(a, n, 400 + (uint64_t)c, -3, 3);
            size_t ws = owl_row_size(t, n), as = owl_row_size(at, n);
            uint8_t *wb = malloc(ws + 16), *ab = malloc(as + 16);
            uint8_t *w = wb + (t == OWL_TYPE_F32 ? 4 : 2), *av = ab + 4;
            owl_quantize_row_ref(t, x, w, n);
            owl_quantize_row_ref(at, a, av, n);
            float r = owl_vec_dot_ref(t, n, w, av), v = owl_vec_dot_simd128(t, n, w, av), d;
            owl_vec_dot(t, n, w, av, &d);
            CHECK_MSG(bits(r) == bits(v) && bits(d) == bits(v), "%s n=%lld: %.9g vs %.9g",
                      owl_type_get(t)->name, (long long)n, (double)r, (double)v);
            free(x);
            free(a);
            free(wb);
            free(ab);
        }
    }
}

TEST(quant_simd_dots_extreme_values)
{
    /* int8 extremes (-128 weights, +-127 activations) and max 6-bit scales:
     * no int16/int32 overflow in the SIMD path */
    owl_block_q8_0 w[2], a[2];
    for (int b = 0; b < 2; b++) {
        w[b].d = a[b].d = 0x3c00;
        for (int j = 0; j < 32; j++) {
            w[b].qs[j] = -128;
            a[b].qs[j] = (int8_t)(j & 1 ? 127 : -127);
        }
    }
    CHECK(owl_vec_dot_simd128(OWL_TYPE_Q8_0, 64, w, a) == owl_vec_dot_ref(OWL_TYPE_Q8_0, 64, w, a));
    owl_block_q6_K k6;
    owl_block_q8_K k8;
    memset(&k6, 0, sizeof k6); /* q = 0 -> -32 everywhere */
    k6.d = 0x3c00;
    for (int j = 0; j < 16; j++)
        k6.scales[j] = -128;
    memset(&k8, 0, sizeof k8);
    k8.d = 1.0f;
    for (int j = 0; j < 256; j++)
        k8.qs[j] = -127;
    float r = owl_vec_dot_ref(OWL_TYPE_Q6_K, 256, &k6, &k8);
    CHECK(r == 256.0f * 32 * 128 * -127);
    CHECK(owl_vec_dot_simd128(OWL_TYPE_Q6_K, 256, &k6, &k8) == r);
    owl_block_q4_K k4;
    memset(k4.scales, 0xff, sizeof k4.scales); /* all scales and mins 63 */
    memset(k4.qs, 0xff, sizeof k4.qs);         /* q = 15 */
    k4.d = k4.dmin = 0x3c00;
    for (int j = 0; j < 16; j++)
        k8.bsums[j] = 16 * -127;
    r = owl_vec_dot_ref(OWL_TYPE_Q4_K, 256, &k4, &k8);
    CHECK(r == 256.0f * 63 * 15 * -127 - 256.0f * 63 * -127);
    CHECK(owl_vec_dot_simd128(OWL_TYPE_Q4_K, 256, &k4, &k8) == r);
}

TEST(quant_simd_f16_dot_handles_subnormal_inf)
{
    owl_f16 w[9] = {0x0001, 0x03ff, 0x8001, 0x3c00, 0x7c00, 0, 0, 0, 0x3c00};
    float a[9] = {1, 1, 1, 1, 0.5f, 0, 0, 0, 2};
    float r = owl_vec_dot_ref(OWL_TYPE_F16, 9, w, a);
    CHECK(r == INFINITY);
    CHECK(owl_vec_dot_simd128(OWL_TYPE_F16, 9, w, a) == r);
    w[4] = 0;
    r = owl_vec_dot_ref(OWL_TYPE_F16, 9, w, a);
    CHECK(bits(owl_vec_dot_simd128(OWL_TYPE_F16, 9, w, a)) == bits(r));
    CHECK_NEAR(r, 3.0 + 0x3ffp-24, 1e-7);
}

TEST(quant_expanded_activation_layout)
{
    /* q8 -> int16, each 16-group as its 8 even then 8 odd elements, plus the
     * block scale, q8_0 block sum and q8_K sums of 32 */
    owl_block_q8_0 b[2];
    owl_xblock_q8_0 xb[2];
    for (int i = 0; i < 2; i++) {
        b[i].d = 0x3800;
        for (int j = 0; j < 32; j++)
            b[i].qs[j] = (int8_t)(j * (i ? -4 : 3) - 1);
    }
    CHECK_EQ_INT(owl_xrow_size(OWL_TYPE_Q8_0, 64), 2 * sizeof(owl_xblock_q8_0));
    CHECK_EQ_INT(owl_xrow_size(OWL_TYPE_F32, 64), 0);
    owl_expand_row_simd128(OWL_TYPE_Q8_0, b, xb, 64);
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int grp = j / 16, k = j % 16, pos = 16 * grp + (k % 2) * 8 + k / 2;
            if (xb[i].q[pos] != b[i].qs[j])
                bad++;
            sum += b[i].qs[j];
        }
        CHECK(xb[i].d == 0.5f);
        CHECK_EQ_INT(xb[i].sum, sum);
    }
    CHECK_EQ_INT(bad, 0);
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)((i * 37) % 101 - 50);
    owl_block_q8_K k8;
    owl_xblock_q8_K xk;
    owl_quantize_row_ref(OWL_TYPE_Q8_K, x, &k8, 256);
    owl_expand_row_simd128(OWL_TYPE_Q8_K, &k8, &xk, 256);
    CHECK(xk.d == k8.d);
    CHECK_EQ_INT(xk.bs32[3], k8.bsums[6] + k8.bsums[7]);
    CHECK_EQ_INT(xk.q[16 + 8 + 2], k8.qs[16 + 5]); /* group 1, odd element 5 -> slot 8 + 2 */
}
