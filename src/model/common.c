/* common.c - helpers every forward pass of src/model/ uses (see common.h). */
#include "common.h"

void owl_model_matmul(owl_session *s, const owl_mat *W, const float *b, const float *X, int64_t n,
                      float *Y)
{
    owl_matmul(s->pool, W->data, W->type, W->rows, W->cols, X, W->cols, n, Y, W->rows,
               s->mm_scratch);
    if (b)
        for (int64_t t = 0; t < n; t++)
            owl_add(Y + t * W->rows, Y + t * W->rows, b, W->rows);
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
