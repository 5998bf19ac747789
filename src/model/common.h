/* common.h - helpers every forward pass of src/model/ uses (common.c): a
 * weight matrix times rows of activations on the session's pool and scratch,
 * unmasked f32 attention, layernorm over rows, and the debugging tap. They call only the kernels. */
#ifndef OWL_MODEL_COMMON_H
#define OWL_MODEL_COMMON_H

#include "model.h"

/* Y (n, W.rows) = X (n, W.cols) W^T (+ bias per row when b != NULL). */
void owl_model_matmul(owl_session *s, const owl_mat *W, const float *b, const float *X,
                      int64_t n, float *Y);
/* out (n_q, D) = softmax(q k^T / sqrt(D / n_heads)) v per head, no mask: q (n_q, D),
 * k and v n_kv x D f32, heads side by side (row j, head h at j * D + h * head_dim)
 * or, when head_major, head after head (at h * n_kv * head_dim + j * head_dim:
 * a head's keys contiguous, far better cached for the vision tower's 1025 keys);
 * the vision tower's and the abstractor's attention. */
void owl_model_attention_f32(owl_session *s, const float *q, const float *k, const float *v,
                             int64_t n_q, int64_t n_kv, int64_t D, int64_t n_heads, int head_major,
                             float *out);
/* y[i][:] = layernorm(x[i][:]) for n rows of width w. */
void owl_model_layernorm_rows(float *y, const float *x, const float *w, const float *b, int64_t n,
                              int64_t width, float eps);
/* Hand the activation x (rows, cols) to the session's tap, if any, as name. */
void owl_model_tap(owl_session *s, const char *name, const float *x, int64_t rows, int64_t cols);

#endif
