/* common.c - helpers every forward pass of src/model/ uses (see common.h). */
#include <math.h>

#include "common.h"

void owl_model_matmul(owl_session *s, const owl_mat *W, const float *b, const float *X, int64_t n,
                      float *Y)
{
    owl_matmul_r4(s->pool, W->data, W->type, W->r4, W->rows, W->cols, X, W->cols, n, Y, W->rows,
                  s->mm_scratch);
    if (b)
        for (int64_t t = 0; t < n; t++)
            owl_add(Y + t * W->rows, Y + t * W->rows, b, W->rows);
}

void owl_model_attention_f32(owl_session *s, const float *q, const float *k, const float *v,
                             int64_t n_q, int64_t n_kv, int64_t D, int64_t n_heads, int head_major,
                             float *out)
{
    const int64_t hd = D / n_heads;
    owl_attn_args aa = {
        .q = q, .q_stride = D, .k = k, .v = v, .kv_type = OWL_TYPE_F32,
        .kv_stride = head_major ? hd : D, .kv_head_stride = head_major ? n_kv * hd : 0,
        .n_q = n_q, .n_kv = n_kv, .n_heads = (int)n_heads, .n_kv_heads = (int)n_heads,
        .head_dim = (int)hd, .scale = 1.0f / sqrtf((float)hd), .causal = 0, .q_pos0 = 0,
        .out = out, .out_stride = D};
    owl_attention(s->pool, &aa, s->att_scratch);
}

void owl_model_layernorm_rows(float *y, const float *x, const float *w, const float *b, int64_t n,
                              int64_t width, float eps)
{
    for (int64_t t = 0; t < n; t++)
        owl_layernorm(y + t * width, x + t * width, w, b, width, eps);
}

void owl_model_tap(owl_session *s, const char *name, const float *x, int64_t rows, int64_t cols)
{
    if (s->tap)
        s->tap(s->tap_user, name, x, rows, cols);
}
