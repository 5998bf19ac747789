/* weights.c - tensor lookup for the parts' loaders (see weights.h): every
 * tensor is checked against the shape the metadata implies (docs/FORMAT.md)
 * and used in place; vectors are dequantized into blocks the model owns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

void owl_blocks_free(owl_blocks *bl)
{
    for (size_t i = 0; i < bl->n; i++)
        free(bl->p[i]);
    free(bl->p);
    memset(bl, 0, sizeof *bl);
}

void *owl_load_alloc(owl_loader *ld, size_t bytes)
{
    owl_blocks *bl = ld->blocks;
    if (bl->n == bl->cap) {
        size_t cap = bl->cap ? 2 * bl->cap : 64;
        void **p = realloc(bl->p, cap * sizeof *p);
        if (!p) {
            owl_err_set(ld->err, OWL_E_NOMEM, "model: out of memory (%zu allocations)", cap);
            return NULL;
        }
        bl->p = p;
        bl->cap = cap;
    }
    void *b = calloc(1, bytes ? bytes : 1);
    if (!b) {
        owl_err_set(ld->err, OWL_E_NOMEM, "model: out of memory (%zu bytes)", bytes);
        return NULL;
    }
    bl->p[bl->n++] = b;
    return b;
}

owl_status owl_load_check_layers(owl_loader *ld, const char *key, int64_t n_layers, int per_layer)
{
    uint64_t have = ld->gguf->n_tensors;
    if ((uint64_t)n_layers * (uint64_t)per_layer > have)
        return owl_err_set(ld->err, OWL_E_FORMAT,
                           "%s: %lld layers need at least %lld tensors, the file has %llu", key,
                           (long long)n_layers, (long long)n_layers * per_layer,
                           (unsigned long long)have);
    return OWL_OK;
}

owl_status owl_load_u32(owl_loader *ld, const char *key, int64_t *out)
{
    uint32_t u;
    owl_status st = owl_gguf_get_u32(ld->gguf, key, &u, ld->err);
    if (st == OWL_E_NOTFOUND)
        return owl_err_set(ld->err, st, "%s: missing", key);
    if (st != OWL_OK)
        return st;
    if (u == 0 || u > (1u << 20))
        return owl_err_set(ld->err, OWL_E_FORMAT, "%s: %u out of range 1..%u", key, (unsigned)u,
                           1u << 20);
    *out = u;
    return OWL_OK;
}

owl_status owl_load_f32(owl_loader *ld, const char *key, float *out)
{
    owl_status st = owl_gguf_get_f32(ld->gguf, key, out, ld->err);
    if (st == OWL_E_NOTFOUND)
        return owl_err_set(ld->err, st, "%s: missing", key);
    if (st != OWL_OK)
        return st;
    if (!(*out > 0.0f && *out < 1e30f))
        return owl_err_set(ld->err, OWL_E_FORMAT, "%s: %g out of range", key, (double)*out);
    return OWL_OK;
}

int owl_load_has(owl_loader *ld, const char *name)
{
    return owl_gguf_find_tensor(ld->gguf, name) != NULL;
}

/* Find name with shape ne = (n0, n1, 1, 1). */
static const owl_gguf_tensor *find_shaped(owl_loader *ld, const char *name, int64_t n0, int64_t n1,
                                          owl_status *st)
{
    const owl_gguf_tensor *t = owl_gguf_find_tensor(ld->gguf, name);
    if (!t) {
        *st = owl_err_set(ld->err, OWL_E_NOTFOUND, "%s: missing", name);
        return NULL;
    }
    int64_t ne[OWL_GGUF_MAX_DIMS] = {1, 1, 1, 1};
    for (int i = 0; i < t->n_dims && i < OWL_GGUF_MAX_DIMS; i++)
        ne[i] = t->ne[i];
    if (ne[0] != n0 || ne[1] != n1 || ne[2] != 1 || ne[3] != 1) {
        char got[96];
        int k = 0;
        for (int i = 0; i < t->n_dims && i < OWL_GGUF_MAX_DIMS; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", i ? "x" : "", (long long)t->ne[i]);
        if (n1 == 1)
            *st = owl_err_set(ld->err, OWL_E_FORMAT, "%s: want %lld, got %s", name, (long long)n0, got);
        else
            *st = owl_err_set(ld->err, OWL_E_FORMAT, "%s: want %lldx%lld, got %s", name,
                              (long long)n0, (long long)n1, got);
        return NULL;
    }
    const owl_type_traits *tr = owl_type_get(t->type);
    if (!tr || t->type == OWL_TYPE_BF16 || t->type == OWL_TYPE_Q8_K) {
        *st = owl_err_set(ld->err, OWL_E_UNSUPPORTED, "%s: tensor type %d (%s) not supported",
                          name, (int)t->type, tr ? tr->name : "unknown");
        return NULL;
    }
    size_t row = owl_row_size(t->type, n0);
    if (row == 0) {
        *st = owl_err_set(ld->err, OWL_E_FORMAT, "%s: row of %lld not a multiple of %s blocks (%d)",
                          name, (long long)n0, tr->name, tr->blck_size);
        return NULL;
    }
    if ((uint64_t)t->size / (uint64_t)n1 < (uint64_t)row) {
        *st = owl_err_set(ld->err, OWL_E_FORMAT, "%s: %zu bytes of data, want %lld rows of %zu", name,
                          t->size, (long long)n1, row);
        return NULL;
    }
    *st = OWL_OK;
    return t;
}

/* Where the tensor's bytes are: inside the whole-file buffer, or inside the
 * partial range (NULL + error when outside it). */
static const void *tensor_data(owl_loader *ld, const owl_gguf_tensor *t, const char *name,
                               owl_status *st)
{
    *st = OWL_OK;
    if (!ld->range)
        return t->data;
    uint64_t pos = (uint64_t)ld->gguf->data_offset + t->offset, lo = ld->range_offset;
    if (pos < lo || pos - lo > ld->range_size || t->size > ld->range_size - (pos - lo)) {
        *st = owl_err_set(ld->err, OWL_E_FORMAT,
                          "%s: file bytes %llu..%llu outside the loaded range %llu..%llu", name,
                          (unsigned long long)pos, (unsigned long long)(pos + t->size),
                          (unsigned long long)lo, (unsigned long long)(lo + ld->range_size));
        return NULL;
    }
    return ld->range + (pos - lo);
}

owl_status owl_load_table(owl_loader *ld, owl_mat *out, const char *name, int64_t cols, int64_t rows)
{
    owl_status st;
    const owl_gguf_tensor *t = find_shaped(ld, name, cols, rows, &st);
    if (!t)
        return st;
    out->data = tensor_data(ld, t, name, &st);
    if (!out->data)
        return st;
    out->type = t->type;
    out->rows = rows;
    out->cols = cols;
    out->r4 = 0;
    return OWL_OK;
}

owl_status owl_load_mat(owl_loader *ld, owl_mat *out, const char *name, int64_t cols, int64_t rows)
{
    owl_status st = owl_load_table(ld, out, name, cols, rows);
    if (st == OWL_OK && ld->rearrange)
        out->r4 = owl_repack_r4(out->type, (void *)out->data, rows, cols);
    return st;
}

owl_status owl_load_vec(owl_loader *ld, const float **out, const char *name, int64_t n0, int64_t n1)
{
    owl_status st;
    const owl_gguf_tensor *t = find_shaped(ld, name, n0, n1, &st);
    if (!t)
        return st;
    const char *src = tensor_data(ld, t, name, &st);
    if (!src)
        return st;
    float *f = owl_load_alloc(ld, sizeof(float) * (size_t)(n0 * n1));
    if (!f)
        return OWL_E_NOMEM;
    size_t row = owl_row_size(t->type, n0);
    for (int64_t r = 0; r < n1; r++)
        owl_dequantize_row_ref(t->type, src + (size_t)r * row, f + r * n0, n0);
    *out = f;
    return OWL_OK;
}

owl_status owl_load_layer_mat(owl_loader *ld, owl_mat *w, const float **b, const char *prefix,
                              int layer, const char *what, int64_t cols, int64_t rows)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%d.%s.weight", prefix, layer, what);
    owl_status st = owl_load_mat(ld, w, name, cols, rows);
    if (st != OWL_OK || !b)
        return st;
    snprintf(name, sizeof name, "%s.%d.%s.bias", prefix, layer, what);
    return owl_load_vec(ld, b, name, rows, 1);
}

owl_status owl_load_layer_norm(owl_loader *ld, const float **w, const float **b, const char *prefix,
                               int layer, const char *what, int64_t n)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%d.%s.weight", prefix, layer, what);
    owl_status st = owl_load_vec(ld, w, name, n, 1);
    if (st != OWL_OK || !b)
        return st;
    snprintf(name, sizeof name, "%s.%d.%s.bias", prefix, layer, what);
    return owl_load_vec(ld, b, name, n, 1);
}
