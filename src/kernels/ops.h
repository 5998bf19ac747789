/* ops.h - the compute kernels the model is built from.
 *
 * Each op has a reference version (plain C, the spec: owl_<op>_ref) and, where
 * it matters, a SIMD128 version (owl_<op>_simd128, compiled when OWL_SIMD128 is
 * defined, see simd.h). The unsuffixed name dispatches: SIMD128 when built,
 * else the reference. Tests compare both on odd sizes and tails.
 * All float reductions use a fixed order; results never depend on the number
 * of threads (work is split by output rows only). No -ffast-math.
 *
 * Layouts: row-major; a matrix W of `rows` x `cols` in type t stores each row
 * as owl_row_size(t, cols) bytes (that is GGUF's ne[0] = cols, ne[1] = rows). */
#ifndef OWL_OPS_H
#define OWL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "types.h"

/* ---- matrix products (src/kernels/matmul.c) ----
 * Y[t][r] = sum_c W[r][c] * X[t][c]   W (rows, cols) type wt; X (ntok, cols) f32;
 * Y (ntok, rows) f32, row strides ldx/ldy in floats.
 * For quantized W, X rows are first quantized to wt's vec_dot_type (Q8_0 for
 * Q4_0/Q8_0, Q8_K for Q4_K/Q6_K) into scratch, exactly as llama.cpp does; F16 W
 * uses f32 activations (products in f32). ntok == 1 is the decode GEMV path.
 * scratch must hold owl_matmul_scratch_size(wt, cols, ntok) bytes, at least 4-byte
 * aligned (malloc's alignment is enough); NULL is fine when that size is 0.
 * The caller validates shapes: cols must be a multiple of wt's block size and wt
 * one of f32, f16, q4_0, q8_0, q4_K, q6_K, else Y is left untouched.
 * Results are bitwise identical to owl_matmul_ref for any pool size. */
size_t owl_matmul_scratch_size(owl_type wt, int64_t cols, int64_t ntok);
void owl_matmul(owl_pool *pool, const void *W, owl_type wt, int64_t rows, int64_t cols,
                const float *X, int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch);
/* The same for W in the 4-row interleaved layout when r4 (owl_repack_r4 in
 * types.h made it; r4 with a type the build's kernels do not read that way
 * leaves Y untouched, like a bad shape). Same bits as owl_matmul on the
 * row-major W. */
void owl_matmul_r4(owl_pool *pool, const void *W, owl_type wt, int r4, int64_t rows, int64_t cols,
                   const float *X, int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch);
/* Reference: single thread, owl_vec_dot_ref per output, same quantization. */
void owl_matmul_ref(const void *W, owl_type wt, int64_t rows, int64_t cols, const float *X,
                    int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch);

/* ---- normalisation (src/kernels/norm.c) ----
 * rmsnorm: y = x / sqrt(mean(x^2) + eps) * w          (LlamaRMSNorm, fp32)
 * layernorm: y = (x - mean) / sqrt(var + eps) * w + b (torch LayerNorm, biased var)
 * w or b may be NULL (treated as 1 / 0). y may equal x.
 * Moments are summed in double (both paths; only the order of the double sums
 * differs), the elementwise part is fp32 in the same order in both paths, so
 * _ref and _simd128 agree to ~1 ulp. The _simd128 versions (here and below)
 * exist only in builds with OWL_SIMD128 (simd.h); tests compare them with _ref. */
void owl_rmsnorm_ref(float *y, const float *x, const float *w, int64_t n, float eps);
void owl_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
void owl_layernorm_ref(float *y, const float *x, const float *w, const float *b, int64_t n,
                       float eps);
void owl_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n,
                   float eps);
void owl_rmsnorm_simd128(float *y, const float *x, const float *w, int64_t n, float eps);
void owl_layernorm_simd128(float *y, const float *x, const float *w, const float *b, int64_t n,
                           float eps);

/* ---- elementwise and activations (src/kernels/elementwise.c) ----
 * In place allowed everywhere (y == x). The _ref versions use libm expf/erff;
 * the _simd128 versions a polynomial exp (owl_exp_simd128, <= 1 ulp from the
 * correctly rounded exp over the whole float range), so they differ from _ref by
 * a few ulp. sigmoid(z) is evaluated as 1 / (1 + exp(-z)), silu(x) as
 * x / (1 + exp(-x)), like torch's CPU kernels. */
void owl_exp_ref(float *y, const float *x, int64_t n); /* y = e^x */
void owl_exp_simd128(float *y, const float *x, int64_t n);
void owl_exp(float *y, const float *x, int64_t n);
/* max-subtracted, exp, sum in double, divide by the sum; n == 0 is a no-op. */
void owl_softmax_ref(float *x, int64_t n);
void owl_softmax_simd128(float *x, int64_t n);
void owl_softmax(float *x, int64_t n);
void owl_silu_ref(float *y, const float *x, int64_t n);       /* x * sigmoid(x) */
void owl_silu_simd128(float *y, const float *x, int64_t n);
void owl_silu(float *y, const float *x, int64_t n);
/* Exact erf form, like torch.nn.functional.gelu(approximate='none'); libm erff
 * in every build (no model hot path uses it, so no SIMD version). */
void owl_gelu_ref(float *y, const float *x, int64_t n);       /* 0.5 x (1 + erf(x/sqrt2)) */
void owl_gelu(float *y, const float *x, int64_t n);
void owl_quick_gelu_ref(float *y, const float *x, int64_t n); /* x * sigmoid(1.702 x) */
void owl_quick_gelu_simd128(float *y, const float *x, int64_t n);
void owl_quick_gelu(float *y, const float *x, int64_t n);
/* y = silu(g) * u  (LLaMA / abstractor SwiGLU gate) */
void owl_swiglu_ref(float *y, const float *g, const float *u, int64_t n);
void owl_swiglu_simd128(float *y, const float *g, const float *u, int64_t n);
void owl_swiglu(float *y, const float *g, const float *u, int64_t n);
/* Exact fp32 (same bits in every build). */
void owl_add(float *y, const float *a, const float *b, int64_t n); /* y = a + b */
void owl_mul(float *y, const float *a, const float *b, int64_t n); /* y = a * b */
void owl_scale(float *y, const float *x, float s, int64_t n);      /* y = s * x */

/* ---- rotary position embedding (src/kernels/rope.c) ----
 * llama.cpp's mode 0 on GGUF weights (the converter permuted Q/K rows as
 * llama.cpp's converter does): within each head of head_dim, pairs (2i, 2i+1)
 * rotate by angle pos * theta^(-2i/head_dim), i = 0..head_dim/2-1.
 * x holds n_heads * head_dim floats of one token.
 * The angle is computed as HF transformers 4.31 LlamaRotaryEmbedding does, all in
 * fp32: inv_freq = 1 / powf(theta, (float)(2i) / head_dim), angle = (float)pos *
 * inv_freq, then cosf/sinf (not llama.cpp's iterated theta_scale product, whose
 * error grows with i). An odd head_dim leaves the last element of a head as is.
 * Cheap (head_dim/2 sin/cos per token): owl_rope is the reference. */
void owl_rope_ref(float *x, int n_heads, int head_dim, int64_t pos, float theta);
void owl_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta);

/* ---- attention (src/kernels/attention.c) ----
 * For each query row i (n_q of them) and head h:
 *   out[i][h] = softmax_j( q[i][h] . k[j][hk] * scale ) v[j][hk]
 * over key rows j = 0..n_kv-1, restricted to j <= q_pos0 + i when causal
 * (queries sit at positions q_pos0.., keys at 0..); hk = h / (n_heads / n_kv_heads)
 * (grouped-query attention). k and v are f32 or f16 (a KV cache), rows of
 * kv_stride elements, head hk of row j at j * kv_stride + hk * kv_head_stride
 * (kv_head_stride 0 means head_dim: a row holds its heads side by side; a
 * head-major layout, kv_stride = head_dim and kv_head_stride = n_kv * head_dim,
 * keeps a head's keys contiguous, which caches far better for long rows). Softmax in fp32. Bidirectional = causal 0; cross
 * attention = q and k/v from different rows. Split over (query, head) pairs.
 * Per pair: scores s_j = (q . k_j) * scale in fp32, softmax as owl_softmax (ref:
 * owl_softmax_ref), then out = sum_j p_j v_j accumulated in fp32 in j order. A
 * query row with no visible key (n_kv == 0) gets zeros. out must not overlap
 * q, k or v. n_heads must be a multiple of n_kv_heads (else nothing is written;
 * OWL_ASSERT in debug builds).
 * scratch: owl_attention_scratch_size(n_kv, n_threads) bytes, n_threads =
 * owl_pool_size(pool) (1 for _ref); returns SIZE_MAX if the size overflows.
 * owl_attention uses SIMD128 when built (4-lane partial sums in q . k, so it
 * differs from _ref by rounding), works on blocks of 4 query rows x 1 head, and
 * gives the same bits for any thread count; a row's result also does not depend
 * on the other rows of the call (a decode row equals that row of a prefill). */
typedef struct {
    const float *q;
    int64_t q_stride;  /* floats between query rows */
    const void *k;
    const void *v;
    owl_type kv_type;  /* OWL_TYPE_F32 or OWL_TYPE_F16 */
    int64_t kv_stride; /* elements between key (value) rows */
    int64_t kv_head_stride; /* elements between KV heads in a row; 0: head_dim (heads side by side) */
    int64_t n_q, n_kv;
    int n_heads, n_kv_heads, head_dim;
    float scale;
    int causal;
    int64_t q_pos0;
    float *out;
    int64_t out_stride;
} owl_attn_args;
size_t owl_attention_scratch_size(int64_t n_kv, int n_threads);
void owl_attention_ref(const owl_attn_args *a, float *scratch);
void owl_attention(owl_pool *pool, const owl_attn_args *a, float *scratch);

#endif
