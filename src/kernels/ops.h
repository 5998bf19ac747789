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

#include "../core/pool.h"
#include "types.h"

/* ---- matrix products (src/kernels/matmul.c) ----
 * Y[t][r] = sum_c W[r][c] * X[t][c]   W (rows, cols) type wt; X (ntok, cols) f32;
 * Y (ntok, rows) f32, row strides ldx/ldy in floats.
 * For quantized W, X rows are first quantized to wt's vec_dot_type (Q8_0 for
 * Q4_0/Q8_0, Q8_K for Q4_K/Q6_K) into scratch, exactly as llama.cpp does; F16 W
 * uses f32 activations (products in f32). ntok == 1 is the decode GEMV path.
 * scratch must hold owl_matmul_scratch_size(wt, cols, ntok) bytes. */
size_t owl_matmul_scratch_size(owl_type wt, int64_t cols, int64_t ntok);
void owl_matmul(owl_pool *pool, const void *W, owl_type wt, int64_t rows, int64_t cols,
                const float *X, int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch);
/* Reference: single thread, owl_vec_dot_ref per output, same quantization. */
void owl_matmul_ref(const void *W, owl_type wt, int64_t rows, int64_t cols, const float *X,
                    int64_t ldx, int64_t ntok, float *Y, int64_t ldy, void *scratch);

/* ---- normalisation (src/kernels/norm.c) ----
 * rmsnorm: y = x / sqrt(mean(x^2) + eps) * w          (LlamaRMSNorm, fp32)
 * layernorm: y = (x - mean) / sqrt(var + eps) * w + b (torch LayerNorm, biased var)
 * w or b may be NULL (treated as 1 / 0). y may equal x. */
void owl_rmsnorm_ref(float *y, const float *x, const float *w, int64_t n, float eps);
void owl_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
void owl_layernorm_ref(float *y, const float *x, const float *w, const float *b, int64_t n,
                       float eps);
void owl_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n,
                   float eps);

/* ---- elementwise and activations (src/kernels/elementwise.c) ----
 * In place allowed everywhere (y == x). */
void owl_softmax_ref(float *x, int64_t n);   /* max-subtracted, exp, /sum */
void owl_softmax(float *x, int64_t n);
void owl_silu_ref(float *y, const float *x, int64_t n);       /* x * sigmoid(x) */
void owl_silu(float *y, const float *x, int64_t n);
void owl_gelu_ref(float *y, const float *x, int64_t n);       /* 0.5 x (1 + erf(x/sqrt2)) */
void owl_gelu(float *y, const float *x, int64_t n);
void owl_quick_gelu_ref(float *y, const float *x, int64_t n); /* x * sigmoid(1.702 x) */
void owl_quick_gelu(float *y, const float *x, int64_t n);
/* y = silu(g) * u  (LLaMA / abstractor SwiGLU gate) */
void owl_swiglu_ref(float *y, const float *g, const float *u, int64_t n);
void owl_swiglu(float *y, const float *g, const float *u, int64_t n);
void owl_add(float *y, const float *a, const float *b, int64_t n); /* y = a + b */
void owl_mul(float *y, const float *a, const float *b, int64_t n); /* y = a * b */
void owl_scale(float *y, const float *x, float s, int64_t n);      /* y = s * x */

/* ---- rotary position embedding (src/kernels/rope.c) ----
 * llama.cpp's mode 0 on GGUF weights (the converter permuted Q/K rows as
 * llama.cpp's converter does): within each head of head_dim, pairs (2i, 2i+1)
 * rotate by angle pos * theta^(-2i/head_dim), i = 0..head_dim/2-1.
 * x holds n_heads * head_dim floats of one token. */
void owl_rope_ref(float *x, int n_heads, int head_dim, int64_t pos, float theta);
void owl_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta);

/* ---- attention (src/kernels/attention.c) ----
 * For each query row i (n_q of them) and head h:
 *   out[i][h] = softmax_j( q[i][h] . k[j][hk] * scale ) v[j][hk]
 * over key rows j = 0..n_kv-1, restricted to j <= q_pos0 + i when causal
 * (queries sit at positions q_pos0.., keys at 0..); hk = h / (n_heads / n_kv_heads)
 * (grouped-query attention). k and v are f32 or f16 (a KV cache), rows of
 * kv_stride elements. Softmax in fp32. Bidirectional = causal 0; cross
 * attention = q and k/v from different rows. Split over (query, head) pairs. */
typedef struct {
    const float *q;
    int64_t q_stride;  /* floats between query rows */
    const void *k;
    const void *v;
    owl_type kv_type;  /* OWL_TYPE_F32 or OWL_TYPE_F16 */
    int64_t kv_stride; /* elements between key (value) rows */
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
