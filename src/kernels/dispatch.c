/* dispatch.c - the one place a kernel tier is chosen.
 *
 * Tiers, each calling only downward: the reference (quant.c, norm.c,
 * elementwise.c: plain C, the spec), SIMD128 (quant_simd128.c and the
 * _simd128 functions, builds with OWL_SIMD128: wasm -msimd128, or SIMDe
 * natively), relaxed SIMD (quant_relaxed.c; used in the relaxed wasm build,
 * OWL_RELAXED_BUILD, for the weight types it handles). The unsuffixed names
 * here pick the best tier the build has. Every tier gives the reference's
 * bits for the quantized dots and quantizers; the float ops' SIMD versions
 * differ by the rounding ops.h states. */
#include "ops.h"
#include "simd.h"
#include "types.h"

#ifdef OWL_SIMD128
#define OWL_PICK(name) name##_simd128
#else
#define OWL_PICK(name) name##_ref
#endif

/* Native x86-64: quant_simd128.c's second compile (quant_avx2.c) when the CPU
 * has AVX2; the SSE4.1 compile otherwise. OWL_NO_AVX2=1 in the environment
 * forces the SSE4.1 one. */
#ifdef OWL_AVX2_DISPATCH
#include <stdlib.h>
static int avx2_ok;
__attribute__((constructor)) static void detect_avx2(void)
{
    const char *off = getenv("OWL_NO_AVX2");
    __builtin_cpu_init();
    avx2_ok = __builtin_cpu_supports("avx2") && !(off && *off && *off != '0');
}
int owl_cpu_has_avx2(void) { return avx2_ok; }
#define OWL_QUANT(name) (avx2_ok ? name##_avx2 : name)
#else
#define OWL_QUANT(name) name
#endif

/* ---------------------------------------------------------------- quant */

void owl_vec_dot(owl_type type, int64_t n, const void *x, const void *y, float *out)
{
#ifdef OWL_SIMD128
    *out = OWL_QUANT(owl_vec_dot_simd128)(type, n, x, y);
#else
    *out = owl_vec_dot_ref(type, n, x, y);
#endif
}

void owl_quantize_row(owl_type type, const float *x, void *y, int64_t n)
{
#ifdef OWL_SIMD128
    if (type == OWL_TYPE_Q8_0 || type == OWL_TYPE_Q8_K) {
        OWL_QUANT(owl_quantize_row_simd128)(type, x, y, n);
        return;
    }
#endif
    owl_quantize_row_ref(type, x, y, n);
}

void owl_expand_row(owl_type t, const void *q8row, void *xrow, int64_t n)
{
#ifdef OWL_SIMD128
    OWL_QUANT(owl_expand_row_simd128)(t, q8row, xrow, n);
#else
    (void)t, (void)q8row, (void)xrow, (void)n;
#endif
}

int owl_tile_rows(owl_type type, int64_t ntok)
{
#if defined(OWL_RELAXED_BUILD) && defined(OWL_SIMD128)
    /* the relaxed q4_K / q6_K GEMM shares each activation splat between two
     * groups of 4 rows (quant_relaxed.c) */
    if (ntok > 1 && (type == OWL_TYPE_Q4_K || type == OWL_TYPE_Q6_K))
        return 2 * OWL_TILE_ROWS;
#endif
    (void)type, (void)ntok;
    return OWL_TILE_ROWS;
}

int owl_r4_supported(owl_type type)
{
#ifdef OWL_SIMD128
    return type == OWL_TYPE_Q4_0 || type == OWL_TYPE_Q8_0 || type == OWL_TYPE_Q4_K || type == OWL_TYPE_Q6_K;
#else
    (void)type;
    return 0;
#endif
}

void owl_dot_tile(owl_type type, int64_t n, const void *W, size_t w_stride, int r4, int nr,
                  const owl_tile_act *a, int64_t nt, float *Y, int64_t ldy)
{
#if defined(OWL_RELAXED_BUILD) && defined(OWL_SIMD128)
    if (owl_relaxed_handles(type, nt)) {
        owl_dot_tile_relaxed(type, n, W, w_stride, r4, nr, a->q, a->q_stride, a->x, a->x_stride, nt, Y, ldy);
        return;
    }
#endif
#ifdef OWL_SIMD128
    if (a->x)
        OWL_QUANT(owl_dot_tile_simd128)(type, n, W, w_stride, r4, nr, a->x, a->x_stride, nt, Y, ldy, 0);
    else
        OWL_QUANT(owl_dot_tile_simd128)(type, n, W, w_stride, r4, nr, a->q, a->q_stride, nt, Y, ldy, 0);
#else
    (void)r4; /* never set here: owl_r4_supported is 0 without SIMD128 */
    for (int r = 0; r < nr; r++)
        for (int64_t t = 0; t < nt; t++)
            Y[t * ldy + r] = owl_vec_dot_ref(type, n, (const uint8_t *)W + (size_t)r * w_stride,
                                             (const uint8_t *)a->q + (size_t)t * a->q_stride);
#endif
}

/* ---------------------------------------------------------------- norms */

void owl_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    OWL_PICK(owl_rmsnorm)(y, x, w, n, eps);
}

void owl_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n, float eps)
{
    OWL_PICK(owl_layernorm)(y, x, w, b, n, eps);
}

/* ---------------------------------------------------------------- elementwise */

void owl_exp(float *y, const float *x, int64_t n) { OWL_PICK(owl_exp)(y, x, n); }
void owl_softmax(float *x, int64_t n) { OWL_PICK(owl_softmax)(x, n); }
void owl_silu(float *y, const float *x, int64_t n) { OWL_PICK(owl_silu)(y, x, n); }
void owl_gelu(float *y, const float *x, int64_t n) { owl_gelu_ref(y, x, n); }
void owl_quick_gelu(float *y, const float *x, int64_t n) { OWL_PICK(owl_quick_gelu)(y, x, n); }
void owl_swiglu(float *y, const float *g, const float *u, int64_t n)
{
    OWL_PICK(owl_swiglu)(y, g, u, n);
}
