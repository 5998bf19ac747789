/* elementwise.c - exp, softmax, activations (SiLU, GELU, QuickGELU, SwiGLU),
 * add / mul / scale. See ops.h for the contracts.
 *
 * Reference versions use libm (expf, erff) and are the spec. The SIMD128
 * versions share one polynomial exp (vexp below) and otherwise evaluate the same
 * fp32 expressions in the same order, so they differ from the reference only by
 * exp's rounding (vexp <= 1 ulp from the correctly rounded e^x; measured over
 * every 7th float in [-104, 89] (3.2e8 values): 99.2% exact, the rest 1 ulp;
 * glibc expf: 99.99% exact. tests/c/test_ops.c checks <= 1 ulp on a sweep). */
#include <math.h>

#include "ops.h"
#include "simd.h"

/* ------------------------------------------------------------------ reference */

void owl_exp_ref(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = expf(x[i]);
}

/* torch.softmax(x, -1) in fp32: e = exp(x - max); e / sum(e). */
void owl_softmax_ref(float *x, int64_t n)
{
    if (n <= 0)
        return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float s = (float)sum;
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] / s;
}

/* torch silu: x / (1 + exp(-x)) */
void owl_silu_ref(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

/* F.gelu(x): 0.5 * x * (1 + erf(x * M_SQRT1_2)) */
void owl_gelu_ref(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

/* HF QuickGELUActivation: x * torch.sigmoid(1.702 * x) */
void owl_quick_gelu_ref(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * (1.0f / (1.0f + expf(-(1.702f * x[i]))));
}

/* LlamaMLP: act_fn(gate_proj(x)) * up_proj(x) */
void owl_swiglu_ref(float *y, const float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ------------------------------------------------------------------ SIMD128 */
#ifdef OWL_SIMD128

/* e^x for 4 lanes, <= 1 ulp over the float range (tests sweep it):
 * n = round(x / ln2), r = x - n ln2 (Cody-Waite: ln2_hi has 9 significant bits,
 * so n * ln2_hi is exact for |n| <= 150), e^r by the degree-7 Cephes expf
 * polynomial 1 + r + r^2 P(r) on |r| <= ln2/2, then times 2^n as two factors
 * 2^(n>>1) * 2^(n - (n>>1)), each a normal float even at the ends of the range,
 * so overflow gives inf and the subnormal range rounds once. NaN stays NaN. */
static inline v128_t vexp(v128_t x)
{
    x = wasm_f32x4_min(x, wasm_f32x4_splat(88.8f)); /* e^88.8 > FLT_MAX: inf */
    x = wasm_f32x4_max(x, wasm_f32x4_splat(-104.0f)); /* e^-104 < 2^-150: 0 */
    /* n = round-half-even(x / ln2) by the 1.5 * 2^23 trick: adding it leaves n in
     * the low mantissa bits (|x / ln2| < 2^22), so its bits give n as an int
     * too (same values as f32x4.nearest and a trunc_sat, in fewer instructions) */
    const v128_t magic = wasm_f32x4_splat(12582912.0f);
    const v128_t big = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)), magic);
    const v128_t nf = wasm_f32x4_sub(big, magic);
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(nf, wasm_f32x4_splat(0.693359375f)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(nf, wasm_f32x4_splat(-2.12194440e-4f)));
    v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
    p = wasm_f32x4_mul(wasm_f32x4_mul(p, r), r);
    p = wasm_f32x4_add(wasm_f32x4_add(p, r), wasm_f32x4_splat(1.0f));
    const v128_t ni = wasm_i32x4_sub(big, magic); /* the bits: n */
    const v128_t n1 = wasm_i32x4_shr(ni, 1);
    const v128_t n2 = wasm_i32x4_sub(ni, n1);
    const v128_t bias = wasm_i32x4_splat(127);
    const v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, bias), 23);
    const v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, bias), 23);
    return wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
}

/* 1 / (1 + e^-z) */
static inline v128_t vsigmoid(v128_t z)
{
    const v128_t one = wasm_f32x4_splat(1.0f);
    return wasm_f32x4_div(one, wasm_f32x4_add(one, vexp(wasm_f32x4_neg(z))));
}

/* x / (1 + e^-x) */
static inline v128_t vsilu(v128_t x)
{
    return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_splat(1.0f), vexp(wasm_f32x4_neg(x))));
}

void owl_exp_simd128(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, vexp(wasm_v128_load(x + i)));
    if (i < n) { /* tail through one padded vector, so it gets the same bits */
        float t[4] = {0, 0, 0, 0};
        for (int64_t j = i; j < n; j++)
            t[j - i] = x[j];
        wasm_v128_store(t, vexp(wasm_v128_load(t)));
        for (int64_t j = i; j < n; j++)
            y[j] = t[j - i];
    }
}

void owl_softmax_simd128(float *x, int64_t n)
{
    if (n <= 0)
        return;
    float mx = x[0];
    int64_t i = 0;
    if (n >= 4) {
        v128_t m = wasm_v128_load(x);
        for (i = 4; i + 4 <= n; i += 4)
            m = wasm_f32x4_max(m, wasm_v128_load(x + i));
        const float m0 = wasm_f32x4_extract_lane(m, 0), m1 = wasm_f32x4_extract_lane(m, 1);
        const float m2 = wasm_f32x4_extract_lane(m, 2), m3 = wasm_f32x4_extract_lane(m, 3);
        mx = m0 > m1 ? m0 : m1;
        mx = m2 > mx ? m2 : mx;
        mx = m3 > mx ? m3 : mx;
    }
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;

    const v128_t vmx = wasm_f32x4_splat(mx);
    v128_t acc_lo = wasm_f64x2_splat(0.0), acc_hi = wasm_f64x2_splat(0.0);
    for (i = 0; i + 4 <= n; i += 4) {
        const v128_t e = vexp(wasm_f32x4_sub(wasm_v128_load(x + i), vmx));
        wasm_v128_store(x + i, e);
        acc_lo = wasm_f64x2_add(acc_lo, wasm_f64x2_promote_low_f32x4(e));
        acc_hi = wasm_f64x2_add(acc_hi, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 2, 3)));
    }
    if (i < n) {
        float t[4] = {mx, mx, mx, mx};
        for (int64_t j = i; j < n; j++)
            t[j - i] = x[j];
        wasm_v128_store(t, vexp(wasm_f32x4_sub(wasm_v128_load(t), vmx)));
        for (int64_t j = i; j < n; j++)
            x[j] = t[j - i];
    }
    double sum = wasm_f64x2_extract_lane(acc_lo, 0) + wasm_f64x2_extract_lane(acc_lo, 1) +
                 wasm_f64x2_extract_lane(acc_hi, 0) + wasm_f64x2_extract_lane(acc_hi, 1);
    for (; i < n; i++)
        sum += x[i];

    const float s = (float)sum;
    const v128_t vs = wasm_f32x4_splat(s);
    for (i = 0; i + 4 <= n; i += 4)
        wasm_v128_store(x + i, wasm_f32x4_div(wasm_v128_load(x + i), vs));
    for (; i < n; i++)
        x[i] = x[i] / s;
}

void owl_silu_simd128(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, vsilu(wasm_v128_load(x + i)));
    if (i < n) {
        float t[4] = {0, 0, 0, 0};
        for (int64_t j = i; j < n; j++)
            t[j - i] = x[j];
        wasm_v128_store(t, vsilu(wasm_v128_load(t)));
        for (int64_t j = i; j < n; j++)
            y[j] = t[j - i];
    }
}

void owl_quick_gelu_simd128(float *y, const float *x, int64_t n)
{
    const v128_t k = wasm_f32x4_splat(1.702f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const v128_t v = wasm_v128_load(x + i);
        wasm_v128_store(y + i, wasm_f32x4_mul(v, vsigmoid(wasm_f32x4_mul(k, v))));
    }
    if (i < n) {
        float t[4] = {0, 0, 0, 0};
        for (int64_t j = i; j < n; j++)
            t[j - i] = x[j];
        const v128_t v = wasm_v128_load(t);
        wasm_v128_store(t, wasm_f32x4_mul(v, vsigmoid(wasm_f32x4_mul(k, v))));
        for (int64_t j = i; j < n; j++)
            y[j] = t[j - i];
    }
}

void owl_swiglu_simd128(float *y, const float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_mul(vsilu(wasm_v128_load(g + i)), wasm_v128_load(u + i)));
    if (i < n) {
        float tg[4] = {0, 0, 0, 0}, tu[4] = {0, 0, 0, 0};
        for (int64_t j = i; j < n; j++) {
            tg[j - i] = g[j];
            tu[j - i] = u[j];
        }
        wasm_v128_store(tg, wasm_f32x4_mul(vsilu(wasm_v128_load(tg)), wasm_v128_load(tu)));
        for (int64_t j = i; j < n; j++)
            y[j] = tg[j - i];
    }
}

#endif /* OWL_SIMD128 */

/* Elementwise arithmetic: one rounding per element, identical in both paths. */
void owl_add(float *y, const float *a, const float *b, int64_t n)
{
    int64_t i = 0;
#ifdef OWL_SIMD128
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
#endif
    for (; i < n; i++)
        y[i] = a[i] + b[i];
}

void owl_mul(float *y, const float *a, const float *b, int64_t n)
{
    int64_t i = 0;
#ifdef OWL_SIMD128
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
#endif
    for (; i < n; i++)
        y[i] = a[i] * b[i];
}

void owl_scale(float *y, const float *x, float s, int64_t n)
{
    int64_t i = 0;
#ifdef OWL_SIMD128
    const v128_t vs = wasm_f32x4_splat(s);
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_mul(vs, wasm_v128_load(x + i)));
#endif
    for (; i < n; i++)
        y[i] = s * x[i];
}
