/* quant.c - reference (scalar) tensor types: traits, f16/bf16, quantize,
 * dequantize and dot products. This file is the spec; quant_simd128.c must
 * produce the same bytes and the same float bits.
 *
 * Quantizers reproduce ggml's quantize_row_*_ref (ggml-quants.c): same
 * rounding (roundf for q8_0, "+8.5 then truncate" for q4_0, nearest_int =
 * round-half-even through the 1.5*2^23 trick for the K-quants) and the same
 * scale searches (make_qkx2_quants for q4_K, make_qx_quants rmse_type 1 for
 * q6_K), so the bytes equal llama.cpp's. Deviation: none known, provided
 * llama.cpp is compiled without FMA contraction of these float expressions
 * (x86-64 without -mfma, wasm); an FMA build of ggml may differ in rare ties.
 *
 * Dot products - the fixed summation order every path (reference, SIMD128,
 * blocked GEMM, any thread count) follows, so all agree bit for bit:
 *   q4_0/q8_0 . q8_0: per block b, isum = exact int32 sum of q_x*q_y, then
 *       sum += (f16(x.d) * f16(y.d)) * (float)isum, blocks in order.
 *   q4_K . q8_K: per superblock, sumi = sum_j sc_j * (int dot of sub-block j),
 *       summ = sum_j m_j * (bsums[2j] + bsums[2j+1]) (both exact int32), then
 *       sum += (f16(x.d)*y.d) * (float)sumi - (f16(x.dmin)*y.d) * (float)summ.
 *   q6_K . q8_K: sumi = sum_j sc_j * (int dot of (q-32) with y over 16), then
 *       sum += (f16(x.d)*y.d) * (float)sumi.
 *   f32 . f32 and f16 . f32 (f16 widened exactly): eight partial sums, element
 *       i going to p[i % 8] over the first n - n % 8 elements; then
 *       s_l = p_l + p_{l+4} (l = 0..3), sum = (s_0 + s_1) + (s_2 + s_3), then
 *       the tail elements are added one by one in order. (This is a 2 x f32x4
 *       accumulator loop written out in scalar form.) */
#include <math.h>
#include <string.h>

#include "quant_util.h"
#include "types.h"

static const owl_type_traits k_traits[OWL_TYPE_COUNT] = {
    [OWL_TYPE_F32] = {"f32", 1, sizeof(float), OWL_TYPE_F32},
    [OWL_TYPE_F16] = {"f16", 1, sizeof(owl_f16), OWL_TYPE_F32},
    [OWL_TYPE_Q4_0] = {"q4_0", OWL_QK4_0, sizeof(owl_block_q4_0), OWL_TYPE_Q8_0},
    [OWL_TYPE_Q8_0] = {"q8_0", OWL_QK8_0, sizeof(owl_block_q8_0), OWL_TYPE_Q8_0},
    [OWL_TYPE_Q4_K] = {"q4_K", OWL_QK_K, sizeof(owl_block_q4_K), OWL_TYPE_Q8_K},
    [OWL_TYPE_Q6_K] = {"q6_K", OWL_QK_K, sizeof(owl_block_q6_K), OWL_TYPE_Q8_K},
    [OWL_TYPE_Q8_K] = {"q8_K", OWL_QK_K, sizeof(owl_block_q8_K), OWL_TYPE_Q8_K},
    [OWL_TYPE_BF16] = {"bf16", 1, sizeof(uint16_t), OWL_TYPE_F32},
};

const owl_type_traits *owl_type_get(int type)
{
    if (type < 0 || type >= OWL_TYPE_COUNT || !k_traits[type].name)
        return NULL;
    return &k_traits[type];
}

size_t owl_row_size(owl_type type, int64_t n)
{
    const owl_type_traits *t = owl_type_get((int)type);
    if (!t || n < 0 || n % t->blck_size)
        return 0;
    int64_t nb = n / t->blck_size;
    if ((uint64_t)nb > SIZE_MAX / t->type_size)
        return 0;
    return (size_t)nb * t->type_size;
}

/* ---------------------------------------------------------------- f16 / bf16 */

float owl_f16_to_f32(owl_f16 h)
{
    return owl_f16_to_f32_inline(h);
}

owl_f16 owl_f32_to_f16(float f)
{
    uint32_t x = owl_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffff;
    if (x > 0x7f800000) /* nan: quiet, keep the top payload bits */
        return (owl_f16)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
    if (x >= 0x477ff000) /* >= 65520 (incl. inf) rounds to inf */
        return (owl_f16)(sign | 0x7c00);
    if (x < 0x38800000) { /* below 2^-14: f16 subnormal or zero */
        uint32_t e = x >> 23;
        if (e < 102) /* < 2^-25: rounds to zero */
            return sign;
        uint32_t m = (x & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t k = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (k & 1)))
            k++;
        return (owl_f16)(sign | k);
    }
    uint32_t y = x - 0x38000000; /* rebias 127 -> 15 */
    uint32_t k = y >> 13;
    uint32_t rem = y & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (k & 1)))
        k++; /* a carry into the exponent is the right answer */
    return (owl_f16)(sign | k);
}

float owl_bf16_to_f32(uint16_t h)
{
    return owl_bits_f32((uint32_t)h << 16);
}

/* ---------------------------------------------------------------- helpers */

/* Round half to even for |f| <= 2^22 (ggml's nearest_int). */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#define MINI(a, b) ((a) < (b) ? (a) : (b))
#define MAXI(a, b) ((a) > (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

/* ---------------------------------------------------------------- q8_0 / q4_0 */

static void quantize_q8_0(const float *x, owl_block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += OWL_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < OWL_QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = owl_f32_to_f16(d);
        for (int j = 0; j < OWL_QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quantize_q4_0(const float *x, owl_block_q4_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += OWL_QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < OWL_QK4_0; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = owl_f32_to_f16(d);
        for (int j = 0; j < OWL_QK4_0 / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[OWL_QK4_0 / 2 + j] * id;
            const uint8_t q0 = (uint8_t)MINI(15, (int8_t)(x0 + 8.5f));
            const uint8_t q1 = (uint8_t)MINI(15, (int8_t)(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---------------------------------------------------------------- q8_K */

static void quantize_q8_K(const float *x, owl_block_q8_K *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += OWL_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < OWL_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < OWL_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)MINI(127, v);
        }
        for (int j = 0; j < OWL_QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++)
                sum += y[i].qs[16 * j + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- q4_K */

/* ggml's make_qkx2_quants: asymmetric n-level fit of x with weights, trying
 * nstep+1 scales around nmax/(max-min) by weighted least squares. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAXI(0, MINI(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAXI(0, MINI(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void quantize_q4_K(const float *x, owl_block_q4_K *y, int64_t nb)
{
    uint8_t L[OWL_QK_K], Laux[32];
    float weights[32], mins[OWL_QK_K / 32], scales[OWL_QK_K / 32];
    for (int64_t i = 0; i < nb; i++, x += OWL_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < OWL_QK_K / 32; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++)
                sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++)
                weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                         -1.f, 0.1f, 20);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(y[i].scales, 0, sizeof y[i].scales);
        for (int j = 0; j < OWL_QK_K / 32; j++) {
            /* ggml stores nearest_int into a uint8_t, then clamps to 63 */
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = MINI(63, ls);
            lm = MINI(63, lm);
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = owl_f32_to_f16(max_scale / 63.f);
        y[i].dmin = owl_f32_to_f16(max_min / 63.f);
        for (int j = 0; j < OWL_QK_K / 32; j++) {
            uint8_t sc, m;
            owl_q4_K_scale_min(j, y[i].scales, &sc, &m);
            const float d = owl_f16_to_f32(y[i].d) * sc;
            if (!d)
                continue;
            const float dm = owl_f16_to_f32(y[i].dmin) * m;
            for (int k = 0; k < 32; k++) {
                int l = nearest_int((x[32 * j + k] + dm) / d);
                L[32 * j + k] = (uint8_t)MAXI(0, MINI(15, l));
            }
        }
        uint8_t *q = y[i].qs;
        for (int j = 0; j < OWL_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* ---------------------------------------------------------------- q6_K */

/* ggml's make_qx_quants with rmse_type 1 (weights x^2), no quant weights:
 * symmetric fit, trying 18 scales around nmax/max. Returns the scale; L gets
 * values + nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = MAXI(-nmax, MINI(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = MAXI(-nmax, MINI(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAXI(-nmax, MINI(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void quantize_q6_K(const float *x, owl_block_q6_K *y, int64_t nb)
{
    int8_t L[OWL_QK_K];
    float scales[OWL_QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += OWL_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < OWL_QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = owl_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < OWL_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)MINI(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < OWL_QK_K / 16; j++) {
            float d = owl_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int k = 0; k < 16; k++) {
                int l = nearest_int(x[16 * j + k] / d);
                L[16 * j + k] = (int8_t)(MAXI(-32, MINI(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < OWL_QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
    }
}

void owl_quantize_row_ref(owl_type type, const float *x, void *y, int64_t n)
{
    switch (type) {
    case OWL_TYPE_F32:
        memcpy(y, x, (size_t)n * sizeof(float));
        break;
    case OWL_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((owl_f16 *)y)[i] = owl_f32_to_f16(x[i]);
        break;
    case OWL_TYPE_Q4_0: quantize_q4_0(x, y, n / OWL_QK4_0); break;
    case OWL_TYPE_Q8_0: quantize_q8_0(x, y, n / OWL_QK8_0); break;
    case OWL_TYPE_Q4_K: quantize_q4_K(x, y, n / OWL_QK_K); break;
    case OWL_TYPE_Q6_K: quantize_q6_K(x, y, n / OWL_QK_K); break;
    case OWL_TYPE_Q8_K: quantize_q8_K(x, y, n / OWL_QK_K); break;
    default: break; /* bf16 and unknown ids: not produced here */
    }
}

/* ---------------------------------------------------------------- dequantize */

static void dequantize_q4_0(const owl_block_q4_0 *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n / OWL_QK4_0; i++, y += OWL_QK4_0) {
        const float d = owl_f16_to_f32(x[i].d);
        for (int j = 0; j < OWL_QK4_0 / 2; j++) {
            y[j] = ((x[i].qs[j] & 0xF) - 8) * d;
            y[j + OWL_QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequantize_q8_0(const owl_block_q8_0 *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n / OWL_QK8_0; i++, y += OWL_QK8_0) {
        const float d = owl_f16_to_f32(x[i].d);
        for (int j = 0; j < OWL_QK8_0; j++)
            y[j] = x[i].qs[j] * d;
    }
}

static void dequantize_q4_K(const owl_block_q4_K *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n / OWL_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const float d = owl_f16_to_f32(x[i].d), min = owl_f16_to_f32(x[i].dmin);
        for (int j = 0, is = 0; j < OWL_QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            owl_q4_K_scale_min(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            owl_q4_K_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void dequantize_q6_K(const owl_block_q6_K *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n / OWL_QK_K; i++) {
        const float d = owl_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int k = 0; k < OWL_QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
    }
}

void owl_dequantize_row_ref(owl_type type, const void *vx, float *y, int64_t n)
{
    switch (type) {
    case OWL_TYPE_F32:
        memcpy(y, vx, (size_t)n * sizeof(float));
        break;
    case OWL_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            y[i] = owl_f16_to_f32(((const owl_f16 *)vx)[i]);
        break;
    case OWL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            y[i] = owl_bf16_to_f32(((const uint16_t *)vx)[i]);
        break;
    case OWL_TYPE_Q4_0: dequantize_q4_0(vx, y, n); break;
    case OWL_TYPE_Q8_0: dequantize_q8_0(vx, y, n); break;
    case OWL_TYPE_Q8_K: {
        const owl_block_q8_K *x = vx;
        for (int64_t i = 0; i < n / OWL_QK_K; i++, y += OWL_QK_K)
            for (int j = 0; j < OWL_QK_K; j++)
                y[j] = x[i].d * x[i].qs[j];
        break;
    }
    case OWL_TYPE_Q4_K: dequantize_q4_K(vx, y, n); break;
    case OWL_TYPE_Q6_K: dequantize_q6_K(vx, y, n); break;
    default: break;
    }
}

/* ---------------------------------------------------------------- dots */

static float dot_q4_0_q8_0(int64_t nb, const owl_block_q4_0 *x, const owl_block_q8_0 *y)
{
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        int32_t isum = 0;
        for (int j = 0; j < OWL_QK4_0 / 2; j++) {
            isum += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            isum += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + OWL_QK4_0 / 2];
        }
        sum += (owl_f16_to_f32(x[i].d) * owl_f16_to_f32(y[i].d)) * (float)isum;
    }
    return sum;
}

static float dot_q8_0_q8_0(int64_t nb, const owl_block_q8_0 *x, const owl_block_q8_0 *y)
{
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        int32_t isum = 0;
        for (int j = 0; j < OWL_QK8_0; j++)
            isum += x[i].qs[j] * y[i].qs[j];
        sum += (owl_f16_to_f32(x[i].d) * owl_f16_to_f32(y[i].d)) * (float)isum;
    }
    return sum;
}

/* 6-bit scales and mins of a q4_K block, unpacked. */
void owl_q4_K_scales(const uint8_t *packed, uint8_t sc[8], uint8_t m[8])
{
    for (int j = 0; j < 8; j++)
        owl_q4_K_scale_min(j, packed, &sc[j], &m[j]);
}

static float dot_q4_K_q8_K(int64_t nb, const owl_block_q4_K *x, const owl_block_q8_K *y)
{
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t sc[8], m[8];
        owl_q4_K_scales(x[i].scales, sc, m);
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = x[i].qs + 32 * (j / 2);
            const int8_t *a = y[i].qs + 32 * j;
            const int shift = (j & 1) * 4;
            int32_t s = 0;
            for (int l = 0; l < 32; l++)
                s += ((q[l] >> shift) & 0xF) * a[l];
            sumi += sc[j] * s;
            summ += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const float d = owl_f16_to_f32(x[i].d) * y[i].d;
        const float dm = owl_f16_to_f32(x[i].dmin) * y[i].d;
        sum += d * (float)sumi - dm * (float)summ;
    }
    return sum;
}

static float dot_q6_K_q8_K(int64_t nb, const owl_block_q6_K *x, const owl_block_q8_K *y)
{
    float sum = 0;
    int8_t q[OWL_QK_K];
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int k = 0; k < OWL_QK_K; k += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                q[k + l + 0] = (int8_t)(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[k + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[k + l + 64] = (int8_t)(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[k + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        int32_t sumi = 0;
        for (int j = 0; j < OWL_QK_K / 16; j++) {
            int32_t s = 0;
            for (int l = 0; l < 16; l++)
                s += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * s;
        }
        sum += (owl_f16_to_f32(x[i].d) * y[i].d) * (float)sumi;
    }
    return sum;
}

/* The eight-partial-sum order of the header comment; xf widens element i. */
#define DOT8_BODY(XF)                                                         \
    float p[8] = {0};                                                         \
    int64_t n8 = n - n % 8, i = 0;                                            \
    for (; i < n8; i += 8)                                                    \
        for (int l = 0; l < 8; l++)                                           \
            p[l] += XF(i + l) * y[i + l];                                     \
    float s0 = p[0] + p[4], s1 = p[1] + p[5], s2 = p[2] + p[6], s3 = p[3] + p[7]; \
    float sum = (s0 + s1) + (s2 + s3);                                        \
    for (; i < n; i++)                                                        \
        sum += XF(i) * y[i];                                                  \
    return sum;

static float dot_f32(int64_t n, const float *x, const float *y)
{
#define XF32(k) x[k]
    DOT8_BODY(XF32)
#undef XF32
}

static float dot_f16(int64_t n, const owl_f16 *x, const float *y)
{
#define XF16(k) owl_f16_to_f32(x[k])
    DOT8_BODY(XF16)
#undef XF16
}

float owl_vec_dot_ref(owl_type type, int64_t n, const void *x, const void *y)
{
    switch (type) {
    case OWL_TYPE_F32: return dot_f32(n, x, y);
    case OWL_TYPE_F16: return dot_f16(n, x, y);
    case OWL_TYPE_Q4_0: return dot_q4_0_q8_0(n / OWL_QK4_0, x, y);
    case OWL_TYPE_Q8_0: return dot_q8_0_q8_0(n / OWL_QK8_0, x, y);
    case OWL_TYPE_Q4_K: return dot_q4_K_q8_K(n / OWL_QK_K, x, y);
    case OWL_TYPE_Q6_K: return dot_q6_K_q8_K(n / OWL_QK_K, x, y);
    default: return 0.0f;
    }
}
