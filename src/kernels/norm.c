/* norm.c - RMSNorm (LLaMA) and LayerNorm (vision tower, abstractor).
 *
 * Moments are accumulated in double: squares of floats are exact in double, so
 * the only error before the final rounding is the double summation (~n * 2^-53),
 * far below fp32 resolution at any width we use (4096, 11008). The SIMD128
 * versions sum in two f64x2 accumulators (lanes 0,1 and 2,3 of each vector) and
 * then apply the very same fp32 per-element expression, so they agree with the
 * reference to within one rounding of the scale factor (usually bit-exact).
 * Norms are O(n) per token, next to O(n^2) matmuls: double costs nothing here. */
#include <math.h>

#include "ops.h"
#include "simd.h"

/* ------------------------------------------------------------------ reference */

/* LlamaRMSNorm (transformers 4.31), fp32:
 *   variance = hidden_states.pow(2).mean(-1, keepdim=True)
 *   hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
 *   return self.weight * hidden_states
 * x, w, y (n); y may equal x; w NULL = ones. */
void owl_rmsnorm_ref(float *y, const float *x, const float *w, int64_t n, float eps)
{
    if (n <= 0)
        return;
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    const float mean = (float)(ss / (double)n);
    const float r = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = w ? w[i] * (x[i] * r) : x[i] * r;
}

/* torch.nn.LayerNorm (biased variance), two-pass moments in double:
 *   y = (x - mean) / sqrt(var + eps) * w + b
 * x, w, b, y (n); y may equal x; w NULL = ones, b NULL = zeros. */
void owl_layernorm_ref(float *y, const float *x, const float *w, const float *b, int64_t n,
                       float eps)
{
    if (n <= 0)
        return;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    const double mean_d = s / (double)n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)x[i] - mean_d;
        ss += d * d;
    }
    const float rstd = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const float mean = (float)mean_d;
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        if (w)
            v = v * w[i];
        if (b)
            v = v + b[i];
        y[i] = v;
    }
}

/* ------------------------------------------------------------------ SIMD128 */
#ifdef OWL_SIMD128

static inline double hsum_f64(v128_t lo, v128_t hi)
{
    return wasm_f64x2_extract_lane(lo, 0) + wasm_f64x2_extract_lane(lo, 1) +
           wasm_f64x2_extract_lane(hi, 0) + wasm_f64x2_extract_lane(hi, 1);
}

static inline v128_t high_half(v128_t v)
{
    return wasm_i32x4_shuffle(v, v, 2, 3, 2, 3);
}

void owl_rmsnorm_simd128(float *y, const float *x, const float *w, int64_t n, float eps)
{
    if (n <= 0)
        return;
    v128_t lo = wasm_f64x2_splat(0.0), hi = wasm_f64x2_splat(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const v128_t v = wasm_v128_load(x + i);
        const v128_t a = wasm_f64x2_promote_low_f32x4(v);
        const v128_t c = wasm_f64x2_promote_low_f32x4(high_half(v));
        lo = wasm_f64x2_add(lo, wasm_f64x2_mul(a, a));
        hi = wasm_f64x2_add(hi, wasm_f64x2_mul(c, c));
    }
    double ss = hsum_f64(lo, hi);
    for (int64_t j = i; j < n; j++)
        ss += (double)x[j] * (double)x[j];
    const float mean = (float)(ss / (double)n);
    const float r = 1.0f / sqrtf(mean + eps);
    const v128_t vr = wasm_f32x4_splat(r);
    for (i = 0; i + 4 <= n; i += 4) {
        v128_t v = wasm_f32x4_mul(wasm_v128_load(x + i), vr);
        if (w)
            v = wasm_f32x4_mul(wasm_v128_load(w + i), v);
        wasm_v128_store(y + i, v);
    }
    for (; i < n; i++)
        y[i] = w ? w[i] * (x[i] * r) : x[i] * r;
}

void owl_layernorm_simd128(float *y, const float *x, const float *w, const float *b, int64_t n,
                           float eps)
{
    if (n <= 0)
        return;
    v128_t lo = wasm_f64x2_splat(0.0), hi = wasm_f64x2_splat(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const v128_t v = wasm_v128_load(x + i);
        lo = wasm_f64x2_add(lo, wasm_f64x2_promote_low_f32x4(v));
        hi = wasm_f64x2_add(hi, wasm_f64x2_promote_low_f32x4(high_half(v)));
    }
    double s = hsum_f64(lo, hi);
    for (int64_t j = i; j < n; j++)
        s += x[j];
    const double mean_d = s / (double)n;

    const v128_t vm = wasm_f64x2_splat(mean_d);
    lo = hi = wasm_f64x2_splat(0.0);
    for (i = 0; i + 4 <= n; i += 4) {
        const v128_t v = wasm_v128_load(x + i);
        const v128_t a = wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(v), vm);
        const v128_t c = wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(high_half(v)), vm);
        lo = wasm_f64x2_add(lo, wasm_f64x2_mul(a, a));
        hi = wasm_f64x2_add(hi, wasm_f64x2_mul(c, c));
    }
    double ss = hsum_f64(lo, hi);
    for (int64_t j = i; j < n; j++) {
        const double d = (double)x[j] - mean_d;
        ss += d * d;
    }
    const float rstd = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const float mean = (float)mean_d;

    const v128_t vmean = wasm_f32x4_splat(mean), vr = wasm_f32x4_splat(rstd);
    for (i = 0; i + 4 <= n; i += 4) {
        v128_t v = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + i), vmean), vr);
        if (w)
            v = wasm_f32x4_mul(v, wasm_v128_load(w + i));
        if (b)
            v = wasm_f32x4_add(v, wasm_v128_load(b + i));
        wasm_v128_store(y + i, v);
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        if (w)
            v = v * w[i];
        if (b)
            v = v + b[i];
        y[i] = v;
    }
}

#endif /* OWL_SIMD128 */
