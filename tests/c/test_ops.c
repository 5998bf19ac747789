/* test_ops.c - norms, exp/softmax/activations, add/mul/scale, RoPE: SIMD128 vs
 * reference at odd sizes on unaligned buffers with guard values, and known
 * answers from double-precision formulas.
 * Tolerances: norms SIMD vs ref 3e-7 relative; exp <= 1 ulp from the
 * correctly rounded value; activations SIMD vs ref 4e-7 relative + 1e-37. */
#include <float.h>
#include <stdlib.h>

#include "../../src/kernels/ops.h"
#include "../../src/kernels/simd.h"
#include "test.h"

#ifdef OWL_SIMD128
#define SIMD(name) name##_simd128
#else
#define SIMD(name) name
#endif

static const int64_t sizes[] = {1, 3, 31, 33, 257, 1000};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))
#define GUARD 1234.5f

/* n floats at a 4-byte (not 16-byte) offset, followed by 3 guard floats */
typedef struct {
    float *base;
    float *p;
} buf;

static buf buf_new(int64_t n)
{
    buf b;
    b.base = malloc(((size_t)n + 8) * sizeof(float));
    b.p = b.base + 1;
    for (int64_t i = 0; i < n + 3; i++)
        b.p[i] = GUARD;
    return b;
}

static int guards_ok(const buf *b, int64_t n)
{
    return b->p[n] == GUARD && b->p[n + 1] == GUARD && b->p[n + 2] == GUARD;
}

static void fill(float *x, int64_t n, uint64_t *s, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = owl_test_rand_f32(s, lo, hi);
}

/* ulp distance between two finite floats of any sign */
static int64_t ulp_diff(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return la > lb ? la - lb : lb - la;
}

/* max over i of |a-b| / (|b| + floor) */
static double max_rel(const float *a, const float *b, int64_t n, double floor)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (fabs((double)b[i]) + floor);
        if (!(d <= m))
            m = d;
    }
    return m;
}

/* ------------------------------------------------------------------ exp */

TEST(exp_simd_within_1ulp_of_exact_over_float_range)
{
    enum { N = 4096 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    int64_t worst = 0;
    float worst_x = 0;
    /* -104 .. 89 in chunks, plus the boundaries of overflow / underflow */
    for (int chunk = 0; chunk < 48; chunk++) {
        for (int i = 0; i < N; i++)
            x[i] = -104.0f + 193.0f * (float)(chunk * N + i) / (float)(48 * N);
        SIMD(owl_exp)(y, x, N);
        for (int i = 0; i < N; i++) {
            float want = (float)exp((double)x[i]);
            int64_t u = ulp_diff(y[i], want);
            if (u > worst) {
                worst = u;
                worst_x = x[i];
            }
        }
    }
    CHECK_MSG(worst <= 1, "exp: %lld ulp at x = %.9g", (long long)worst, (double)worst_x);
    free(x);
    free(y);
}

TEST(exp_simd_special_values)
{
    const float x[8] = {0.0f, -0.0f, 88.72f, 88.73f, -87.0f, -103.0f, INFINITY, -INFINITY};
    float y[8];
    SIMD(owl_exp)(y, x, 8);
    CHECK(y[0] == 1.0f && y[1] == 1.0f);
    CHECK(isfinite(y[2]) && ulp_diff(y[2], (float)exp((double)x[2])) <= 1);
    CHECK(isinf(y[3]) && y[3] > 0);
    CHECK(ulp_diff(y[4], (float)exp((double)x[4])) <= 1);
    CHECK(y[5] >= 0 && fabs((double)y[5] - exp(-103.0)) <= 1.5e-45); /* subnormal */
    CHECK(isinf(y[6]) && y[6] > 0);
    CHECK(y[7] == 0.0f);
}

TEST(exp_simd_matches_ref_at_odd_sizes_unaligned)
{
    uint64_t s = 1;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf x = buf_new(n), y = buf_new(n), r = buf_new(n);
        fill(x.p, n, &s, -20, 20);
        owl_exp_ref(r.p, x.p, n);
        SIMD(owl_exp)(y.p, x.p, n);
        int64_t worst = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t u = ulp_diff(y.p[i], r.p[i]);
            worst = u > worst ? u : worst;
        }
        CHECK_MSG(worst <= 2, "n=%lld: %lld ulp", (long long)n, (long long)worst);
        CHECK(guards_ok(&y, n));
        free(x.base);
        free(y.base);
        free(r.base);
    }
}

/* ------------------------------------------------------------------ softmax */

TEST(softmax_known_answer_1_2_3)
{
    float x[3] = {1, 2, 3}, y[3] = {1, 2, 3};
    double e1 = exp(-2.0), e2 = exp(-1.0), sum = e1 + e2 + 1.0;
    owl_softmax_ref(x, 3);
    SIMD(owl_softmax)(y, 3);
    CHECK_NEAR(x[0], e1 / sum, 1e-7);
    CHECK_NEAR(x[1], e2 / sum, 1e-7);
    CHECK_NEAR(x[2], 1.0 / sum, 1e-7);
    CHECK_NEAR(y[0], e1 / sum, 1e-7);
    CHECK_NEAR(y[1], e2 / sum, 1e-7);
    CHECK_NEAR(y[2], 1.0 / sum, 1e-7);
}

TEST(softmax_simd_matches_ref_and_sums_to_one)
{
    uint64_t s = 2;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf x = buf_new(n), y = buf_new(n);
        fill(x.p, n, &s, -30, 30);
        memcpy(y.p, x.p, (size_t)n * sizeof(float));
        owl_softmax_ref(x.p, n);
        SIMD(owl_softmax)(y.p, n);
        double sx = 0, sy = 0;
        for (int64_t i = 0; i < n; i++) {
            sx += x.p[i];
            sy += y.p[i];
        }
        CHECK_NEAR(sx, 1.0, 1e-6);
        CHECK_NEAR(sy, 1.0, 1e-6);
        double e = max_rel(y.p, x.p, n, 1e-30);
        CHECK_MSG(e <= 6e-7, "n=%lld: rel %g", (long long)n, e);
        CHECK(guards_ok(&x, n) && guards_ok(&y, n));
        free(x.base);
        free(y.base);
    }
}

TEST(softmax_large_inputs_stay_finite)
{
    float x[5] = {1000.0f, 999.0f, -1000.0f, 1000.0f, -FLT_MAX};
    SIMD(owl_softmax)(x, 5);
    double want = 1.0 / (2.0 + exp(-1.0));
    CHECK_NEAR(x[0], want, 1e-7);
    CHECK_NEAR(x[1], want * exp(-1.0), 1e-7);
    CHECK(x[2] == 0.0f && x[4] == 0.0f);
    CHECK(x[0] == x[3]);
}

/* ------------------------------------------------------------------ activations */

typedef void (*act_fn)(float *, const float *, int64_t);
typedef double (*act_exact)(double);

static double silu_d(double x) { return x / (1.0 + exp(-x)); }
/* the spec rounds 1.702 * x to fp32 (torch: float tensor times a Python scalar) */
static double qgelu_d(double x) { return x / (1.0 + exp(-(double)(1.702f * (float)x))); }
static double gelu_d(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* ref and simd vs the double formula, and vs each other, at all sizes, in place too */
static void check_act(const char *name, act_fn ref, act_fn simd, act_exact exact, double tol_exact,
                      double floor, double tol_pair)
{
    uint64_t s = 3;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf x = buf_new(n), y = buf_new(n), r = buf_new(n);
        fill(x.p, n, &s, -12, 12);
        ref(r.p, x.p, n);
        simd(y.p, x.p, n);
        double e = max_rel(y.p, r.p, n, 1e-37);
        CHECK_MSG(e <= tol_pair, "%s n=%lld: simd vs ref rel %g", name, (long long)n, e);
        for (int64_t i = 0; i < n; i++) {
            double want = exact(x.p[i]);
            double er = fabs(r.p[i] - want) / (fabs(want) + floor);
            CHECK_MSG(er <= tol_exact, "%s(%.9g) = %.9g, want %.9g", name, (double)x.p[i],
                      (double)r.p[i], want);
        }
        CHECK(guards_ok(&y, n) && guards_ok(&r, n));
        simd(x.p, x.p, n); /* in place */
        CHECK(memcmp(x.p, y.p, (size_t)n * sizeof(float)) == 0);
        free(x.base);
        free(y.base);
        free(r.base);
    }
}

TEST(silu_matches_formula_and_simd_matches_ref)
{
    check_act("silu", owl_silu_ref, SIMD(owl_silu), silu_d, 3e-7, 1e-30, 4e-7);
}

TEST(quick_gelu_matches_formula_and_simd_matches_ref)
{
    check_act("quick_gelu", owl_quick_gelu_ref, SIMD(owl_quick_gelu), qgelu_d, 4e-7, 1e-30, 4e-7);
}

TEST(gelu_matches_erf_formula)
{
    /* 1 + erf cancels for x << 0: relative to |want| + 0.1, i.e. ~1e-6 absolute there */
    check_act("gelu", owl_gelu_ref, owl_gelu, gelu_d, 1e-5, 0.1, 0);
    const float x[4] = {0.0f, 1.0f, -1.0f, 3.0f};
    float y[4];
    owl_gelu(y, x, 4);
    CHECK(y[0] == 0.0f);
    CHECK_NEAR(y[1], 0.8413447460685429, 1e-7);
    CHECK_NEAR(y[2], -0.15865525393145707, 1e-7);
    CHECK_NEAR(y[3], 2.9959502, 1e-6);
}

TEST(silu_extremes_are_finite_and_exact_limits)
{
    const float x[4] = {-100.0f, 100.0f, -1e30f, 1e30f};
    float y[4], r[4];
    SIMD(owl_silu)(y, x, 4);
    owl_silu_ref(r, x, 4);
    CHECK(fabsf(y[0]) < 1e-38f && y[1] == 100.0f && y[2] == 0.0f && y[3] == 1e30f);
    CHECK(fabsf(r[0]) < 1e-38f && r[1] == 100.0f && r[2] == 0.0f && r[3] == 1e30f);
}

TEST(swiglu_simd_matches_ref_and_formula)
{
    uint64_t s = 4;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf g = buf_new(n), u = buf_new(n), y = buf_new(n), r = buf_new(n);
        fill(g.p, n, &s, -10, 10);
        fill(u.p, n, &s, -3, 3);
        owl_swiglu_ref(r.p, g.p, u.p, n);
        SIMD(owl_swiglu)(y.p, g.p, u.p, n);
        double e = max_rel(y.p, r.p, n, 1e-37);
        CHECK_MSG(e <= 4e-7, "n=%lld: rel %g", (long long)n, e);
        for (int64_t i = 0; i < n; i++) {
            double want = silu_d(g.p[i]) * u.p[i];
            CHECK_NEAR(r.p[i], want, 4e-7 * fabs(want) + 1e-30);
        }
        CHECK(guards_ok(&y, n));
        free(g.base);
        free(u.base);
        free(y.base);
        free(r.base);
    }
}

TEST(add_mul_scale_exact_with_tails)
{
    uint64_t s = 5;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf a = buf_new(n), b = buf_new(n), y = buf_new(n);
        fill(a.p, n, &s, -5, 5);
        fill(b.p, n, &s, -5, 5);
        int bad = 0;
        owl_add(y.p, a.p, b.p, n);
        for (int64_t i = 0; i < n; i++)
            bad += y.p[i] != a.p[i] + b.p[i];
        owl_mul(y.p, a.p, b.p, n);
        for (int64_t i = 0; i < n; i++)
            bad += y.p[i] != a.p[i] * b.p[i];
        owl_scale(y.p, a.p, 0.37f, n);
        for (int64_t i = 0; i < n; i++)
            bad += y.p[i] != 0.37f * a.p[i];
        CHECK_EQ_INT(bad, 0);
        CHECK(guards_ok(&y, n));
        free(a.base);
        free(b.base);
        free(y.base);
    }
}

/* ------------------------------------------------------------------ norms */

TEST(rmsnorm_known_answer_1_2_3)
{
    const float x[3] = {1, 2, 3}, w[3] = {1.0f, 0.5f, -2.0f};
    float y[3], z[3];
    const double r = 1.0 / sqrt(14.0 / 3.0 + 1e-6);
    owl_rmsnorm_ref(y, x, w, 3, 1e-6f);
    SIMD(owl_rmsnorm)(z, x, w, 3, 1e-6f);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(y[i], x[i] * r * w[i], 2e-7);
        CHECK_NEAR(z[i], x[i] * r * w[i], 2e-7);
    }
}

TEST(rmsnorm_simd_matches_ref_and_double)
{
    uint64_t s = 6;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf x = buf_new(n), w = buf_new(n), y = buf_new(n), r = buf_new(n);
        fill(x.p, n, &s, -4, 4);
        fill(w.p, n, &s, 0.5f, 1.5f);
        for (int pass = 0; pass < 2; pass++) {
            const float *wp = pass ? NULL : w.p;
            owl_rmsnorm_ref(r.p, x.p, wp, n, 1e-6f);
            SIMD(owl_rmsnorm)(y.p, x.p, wp, n, 1e-6f);
            double e = max_rel(y.p, r.p, n, 1e-6);
            CHECK_MSG(e <= 3e-7, "n=%lld: simd vs ref %g", (long long)n, e);
            double ss = 0;
            for (int64_t i = 0; i < n; i++)
                ss += (double)x.p[i] * x.p[i];
            double rs = 1.0 / sqrt(ss / (double)n + 1e-6);
            for (int64_t i = 0; i < n; i++) {
                double want = x.p[i] * rs * (wp ? wp[i] : 1.0);
                CHECK_NEAR(r.p[i], want, 3e-7 * fabs(want) + 1e-7);
            }
            CHECK(guards_ok(&y, n) && guards_ok(&r, n));
        }
        memcpy(r.p, x.p, (size_t)n * sizeof(float));
        SIMD(owl_rmsnorm)(r.p, r.p, w.p, n, 1e-6f); /* in place */
        SIMD(owl_rmsnorm)(y.p, x.p, w.p, n, 1e-6f);
        CHECK(memcmp(r.p, y.p, (size_t)n * sizeof(float)) == 0);
        free(x.base);
        free(w.base);
        free(y.base);
        free(r.base);
    }
}

TEST(rmsnorm_eps_counts_when_mean_square_is_small)
{
    const float x[3] = {1e-3f, -2e-3f, 3e-3f};
    float y[3], z[3];
    owl_rmsnorm_ref(y, x, NULL, 3, 1e-6f);
    SIMD(owl_rmsnorm)(z, x, NULL, 3, 1e-6f);
    double ms = (1e-6 + 4e-6 + 9e-6) / 3.0;
    for (int i = 0; i < 3; i++) {
        double want = (double)x[i] / sqrt(ms + 1e-6);
        CHECK_NEAR(y[i], want, 3e-7 * fabs(want));
        CHECK_NEAR(z[i], want, 3e-7 * fabs(want));
    }
}

TEST(layernorm_known_answer_1_2_3)
{
    const float x[3] = {1, 2, 3}, w[3] = {2.0f, 1.0f, 0.5f}, b[3] = {0.1f, -0.2f, 0.3f};
    float y[3], z[3];
    const double r = 1.0 / sqrt(2.0 / 3.0 + 1e-5);
    owl_layernorm_ref(y, x, w, b, 3, 1e-5f);
    SIMD(owl_layernorm)(z, x, w, b, 3, 1e-5f);
    for (int i = 0; i < 3; i++) {
        double want = (i - 1) * r * w[i] + b[i];
        CHECK_NEAR(y[i], want, 2e-7);
        CHECK_NEAR(z[i], want, 2e-7);
    }
    owl_layernorm_ref(y, x, NULL, NULL, 3, 1e-5f);
    CHECK_NEAR(y[0], -r, 2e-7);
    CHECK(y[1] == 0.0f);
    CHECK_NEAR(y[2], r, 2e-7);
}

TEST(layernorm_simd_matches_ref_and_double_with_large_mean)
{
    uint64_t s = 7;
    for (int k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        buf x = buf_new(n), w = buf_new(n), b = buf_new(n), y = buf_new(n), r = buf_new(n);
        fill(x.p, n, &s, 95, 105); /* mean ~100, spread 10: cancellation-prone */
        fill(w.p, n, &s, 0.5f, 1.5f);
        fill(b.p, n, &s, -1, 1);
        owl_layernorm_ref(r.p, x.p, w.p, b.p, n, 1e-6f);
        SIMD(owl_layernorm)(y.p, x.p, w.p, b.p, n, 1e-6f);
        CHECK_MSG(owl_test_max_abs_diff(y.p, r.p, (size_t)n) <= 1e-6, "n=%lld", (long long)n);
        double m = 0, v = 0;
        for (int64_t i = 0; i < n; i++)
            m += x.p[i];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++)
            v += (x.p[i] - m) * (x.p[i] - m);
        v /= (double)n;
        double rs = 1.0 / sqrt(v + 1e-6);
        for (int64_t i = 0; i < n; i++) {
            double want = (x.p[i] - m) * rs * w.p[i] + b.p[i];
            /* x - mean in fp32 loses up to ulp(100) = 7.6e-6 before scaling */
            CHECK_NEAR(r.p[i], want, 8e-6 * rs * w.p[i] + 1e-6);
        }
        CHECK(guards_ok(&y, n) && guards_ok(&r, n));
        free(x.base);
        free(w.base);
        free(b.base);
        free(y.base);
        free(r.base);
    }
}

/* ------------------------------------------------------------------ rope */

TEST(rope_at_pos_0_is_identity)
{
    uint64_t s = 8;
    float x[3 * 24], y[3 * 24];
    fill(x, 3 * 24, &s, -2, 2);
    memcpy(y, x, sizeof x);
    owl_rope(y, 3, 24, 0, 10000.0f);
    CHECK(memcmp(x, y, sizeof x) == 0);
}

TEST(rope_rotates_first_pair_by_pos_radians)
{
    /* i = 0: inv_freq = 1, angle = pos; head_dim 2 has only that pair */
    float x[4] = {1.0f, 0.0f, 0.3f, -0.7f};
    owl_rope(x, 2, 2, 1, 10000.0f);
    CHECK_NEAR(x[0], cos(1.0), 1e-7);
    CHECK_NEAR(x[1], sin(1.0), 1e-7);
    CHECK_NEAR(x[2], 0.3 * cos(1.0) + 0.7 * sin(1.0), 1e-7);
    CHECK_NEAR(x[3], -0.7 * cos(1.0) + 0.3 * sin(1.0), 1e-7);
}

TEST(rope_matches_double_reference_all_heads_and_pairs)
{
    enum { H = 4, D = 128 };
    uint64_t s = 9;
    float x0[H * D], x[H * D];
    fill(x0, H * D, &s, -1, 1);
    const int64_t positions[] = {1, 7, 63, 500, 2047};
    for (int pi = 0; pi < 5; pi++) {
        const int64_t pos = positions[pi];
        memcpy(x, x0, sizeof x);
        owl_rope(x, H, D, pos, 10000.0f);
        double worst_spec = 0, worst_exact = 0;
        for (int i = 0; i < D / 2; i++) {
            /* the spec (HF fp32 angle) with exact trig, and the exact angle */
            float inv = 1.0f / powf(10000.0f, (float)(2 * i) / (float)D);
            double a_spec = (double)((float)pos * inv);
            double a_exact = (double)pos * pow(10000.0, -2.0 * i / D);
            for (int h = 0; h < H; h++) {
                double u0 = x0[h * D + 2 * i], u1 = x0[h * D + 2 * i + 1];
                double e0 = fabs(x[h * D + 2 * i] - (u0 * cos(a_spec) - u1 * sin(a_spec)));
                double e1 = fabs(x[h * D + 2 * i + 1] - (u1 * cos(a_spec) + u0 * sin(a_spec)));
                worst_spec = fmax(worst_spec, fmax(e0, e1));
                e0 = fabs(x[h * D + 2 * i] - (u0 * cos(a_exact) - u1 * sin(a_exact)));
                e1 = fabs(x[h * D + 2 * i + 1] - (u1 * cos(a_exact) + u0 * sin(a_exact)));
                worst_exact = fmax(worst_exact, fmax(e0, e1));
            }
        }
        CHECK_MSG(worst_spec <= 4e-7, "pos %lld: %g vs fp32-angle spec", (long long)pos, worst_spec);
        /* fp32 angle rounding: ~pos * 2^-24 rad, plus powf's ulp on inv_freq */
        double tol = 4e-7 + (double)pos * 2.5e-7;
        CHECK_MSG(worst_exact <= tol, "pos %lld: %g vs exact angle", (long long)pos, worst_exact);
    }
}

TEST(rope_odd_head_dim_leaves_last_element)
{
    float x[2 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    owl_rope(x, 2, 5, 3, 10000.0f);
    CHECK(x[4] == 5.0f && x[9] == 10.0f);
    CHECK(x[0] != 1.0f && x[5] != 6.0f);
    /* heads rotate identically: head 1 pair 0 = (6,7) rotated by 3 rad */
    CHECK_NEAR(x[5], 6 * cos(3.0) - 7 * sin(3.0), 2e-6);
    CHECK_NEAR(x[6], 7 * cos(3.0) + 6 * sin(3.0), 2e-6);
}
