/* load.c - owl_model: a GGUF held in memory, checked tensor by tensor against
 * the shapes the metadata implies (docs/FORMAT.md), weights used in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"

struct owl_loader {
    owl_model *m;
    owl_err *err;
};

owl_err *owl_load_err(owl_loader *ld) { return ld->err; }
owl_model *owl_load_model(owl_loader *ld) { return ld->m; }

void *owl_load_alloc(owl_loader *ld, size_t bytes)
{
    owl_model *m = ld->m;
    if (m->n_allocs == m->cap_allocs) {
        size_t cap = m->cap_allocs ? 2 * m->cap_allocs : 64;
        void **p = realloc(m->allocs, cap * sizeof *p);
        if (!p) {
            owl_err_set(ld->err, OWL_E_NOMEM, "model: out of memory (%zu allocations)", cap);
            return NULL;
        }
        m->allocs = p;
        m->cap_allocs = cap;
    }
    void *b = calloc(1, bytes ? bytes : 1);
    if (!b) {
        owl_err_set(ld->err, OWL_E_NOMEM, "model: out of memory (%zu bytes)", bytes);
        return NULL;
    }
    m->allocs[m->n_allocs++] = b;
    return b;
}

owl_status owl_load_check_layers(owl_loader *ld, const char *key, int64_t n_layers, int per_layer)
{
    uint64_t have = ld->m->gguf.n_tensors;
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
    owl_status st = owl_gguf_get_u32(&ld->m->gguf, key, &u, ld->err);
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
    owl_status st = owl_gguf_get_f32(&ld->m->gguf, key, out, ld->err);
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
    return owl_gguf_find_tensor(&ld->m->gguf, name) != NULL;
}

/* Find name with shape ne = (n0, n1, 1, 1). */
static const owl_gguf_tensor *find_shaped(owl_loader *ld, const char *name, int64_t n0, int64_t n1,
                                          owl_status *st)
{
    const owl_gguf_tensor *t = owl_gguf_find_tensor(&ld->m->gguf, name);
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
    const owl_model *m = ld->m;
    *st = OWL_OK;
    if (!m->range)
        return t->data;
    uint64_t pos = (uint64_t)m->gguf.data_offset + t->offset, lo = m->opts.range_offset;
    if (pos < lo || pos - lo > m->range_size || t->size > m->range_size - (pos - lo)) {
        *st = owl_err_set(ld->err, OWL_E_FORMAT,
                          "%s: file bytes %llu..%llu outside the loaded range %llu..%llu", name,
                          (unsigned long long)pos, (unsigned long long)(pos + t->size),
                          (unsigned long long)lo, (unsigned long long)(lo + m->range_size));
        return NULL;
    }
    return m->range + (pos - lo);
}

owl_status owl_load_mat(owl_loader *ld, owl_mat *out, const char *name, int64_t cols, int64_t rows)
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
    return OWL_OK;
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

/* ---------------------------------------------------------------- model */

void owl_model_free(owl_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_allocs; i++)
        free(m->allocs[i]);
    free(m->allocs);
    owl_gguf_free(&m->gguf);
    free(m->file_data);
    free(m);
}

static owl_status load(owl_model *m, const void *data, size_t size, const owl_model_opts *opts,
                       owl_err *err)
{
    owl_loader ld = {m, err};
    owl_status st;
    if (opts)
        m->opts = *opts;
    if (m->opts.header) {
        if ((uintptr_t)m->opts.header % 4 != 0)
            return owl_err_set(err, OWL_E_INVALID, "partial load: header not 4-byte aligned");
        if (m->opts.range_offset > m->opts.file_size || size > m->opts.file_size - m->opts.range_offset)
            return owl_err_set(err, OWL_E_INVALID, "partial load: range %llu + %zu beyond file_size %llu",
                               (unsigned long long)m->opts.range_offset, size,
                               (unsigned long long)m->opts.file_size);
        if (m->opts.range_offset % 4 != 0)
            return owl_err_set(err, OWL_E_INVALID, "partial load: range_offset %llu not a multiple of 4",
                               (unsigned long long)m->opts.range_offset);
        st = owl_gguf_parse(m->opts.header, m->opts.header_size, 1, m->opts.file_size, &m->gguf, err);
        if (st != OWL_OK)
            return st;
        m->range = data;
        m->range_size = size;
    } else if ((st = owl_gguf_parse(data, size, 0, 0, &m->gguf, err)) != OWL_OK) {
        return st;
    }
    owl_gguf_str arch;
    st = owl_gguf_get_str(&m->gguf, "general.architecture", &arch, err);
    if (st == OWL_E_NOTFOUND)
        return owl_err_set(err, st, "general.architecture: missing");
    if (st != OWL_OK)
        return st;
    if (owl_gguf_str_eq(arch, "mplug-owl2"))
        m->arch = OWL_ARCH_OWL2;
    else if (owl_gguf_str_eq(arch, "llama"))
        m->arch = OWL_ARCH_LLAMA;
    else
        return owl_err_set(err, OWL_E_UNSUPPORTED,
                           "general.architecture: want mplug-owl2 or llama, got %.*s",
                           (int)(arch.len > 64 ? 64 : arch.len), arch.data);
    m->has_embed = !m->opts.no_embed;
    m->has_head = !m->opts.no_head;
    if ((st = owl_llm_load(&ld, &m->llm, m->arch, m->opts.layer_begin, m->opts.layer_end,
                           m->has_embed, m->has_head)) != OWL_OK)
        return st;
    m->has_vision = m->arch == OWL_ARCH_OWL2 && !m->opts.no_vision;
    if (m->has_vision) {
        if ((st = owl_vit_load(&ld, &m->vit)) || (st = owl_abs_load(&ld, &m->abs, &m->vit, m->llm.d)))
            return st;
        if ((st = owl_load_u32(&ld, "mplug-owl2.image_token_count", &m->image_tokens)))
            return st;
        if (m->image_tokens != m->abs.n_queries + 1)
            return owl_err_set(err, OWL_E_FORMAT, "mplug-owl2.image_token_count: want %lld (queries + 1), got %lld",
                               (long long)(m->abs.n_queries + 1), (long long)m->image_tokens);
    }
    return OWL_OK;
}

owl_status owl_model_load_buffer(const void *data, size_t size, const owl_model_opts *opts,
                                 owl_model **out, owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "owl_model_load_buffer: out is NULL");
    *out = NULL;
    if (!data && size)
        return owl_err_set(err, OWL_E_INVALID, "owl_model_load_buffer: data is NULL");
    if ((uintptr_t)data % 4 != 0)
        return owl_err_set(err, OWL_E_INVALID, "owl_model_load_buffer: data not 4-byte aligned");
    owl_model *m = calloc(1, sizeof *m);
    if (!m)
        return owl_err_set(err, OWL_E_NOMEM, "model: out of memory");
    owl_status st = load(m, data, size, opts, err);
    if (st != OWL_OK) {
        owl_model_free(m);
        return st;
    }
    *out = m;
    return OWL_OK;
}

owl_status owl_model_load_file(const char *path, const owl_model_opts *opts, owl_model **out,
                               owl_err *err)
{
    if (!out || !path)
        return owl_err_set(err, OWL_E_INVALID, "owl_model_load_file: NULL argument");
    *out = NULL;
    struct stat sb; /* a directory opens, and its "size" is LONG_MAX */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return owl_err_set(err, OWL_E_INVALID, "%s: %s, want a GGUF file", path,
                           S_ISDIR(sb.st_mode) ? "is a directory" : "is not a regular file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return owl_err_set(err, OWL_E_IO, "%s: cannot open", path);
    void *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return owl_err_set(err, OWL_E_IO, "%s: cannot seek", path);
    }
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) {
        fclose(f);
        return owl_err_set(err, OWL_E_NOMEM, "%s: cannot allocate %ld bytes", path, n);
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return owl_err_set(err, OWL_E_IO, "%s: read failed", path);
    }
    fclose(f);
    owl_model_opts o;
    memset(&o, 0, sizeof o);
    if (opts) {
        o = *opts;
        o.header = NULL; /* a file is always loaded whole */
    }
    owl_status st = owl_model_load_buffer(buf, (size_t)n, &o, out, err);
    if (st != OWL_OK) {
        free(buf);
        return st;
    }
    (*out)->file_data = buf;
    return OWL_OK;
}

void owl_model_get_info(const owl_model *m, owl_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->arch = m->arch == OWL_ARCH_OWL2 ? "mplug-owl2" : "llama";
    info->n_vocab = m->llm.n_vocab;
    info->d_model = m->llm.d;
    info->n_layers = m->llm.n_layers;
    info->n_heads = m->llm.n_heads;
    info->n_kv_heads = m->llm.n_kv_heads;
    info->head_dim = m->llm.head_dim;
    info->ffn = m->llm.ffn;
    info->n_ctx_train = m->llm.n_ctx_train;
    info->layer_begin = m->opts.layer_begin;
    info->layer_end = m->opts.layer_end;
    info->has_vision = m->has_vision;
    info->has_embed = m->has_embed;
    info->has_head = m->has_head;
    if (m->has_vision) {
        info->image_size = m->vit.image_size;
        info->channels = m->vit.channels;
        info->image_tokens = m->image_tokens;
    }
    uint32_t u;
    info->bos_id = owl_gguf_get_u32(&m->gguf, "tokenizer.ggml.bos_token_id", &u, NULL) == OWL_OK ? (int32_t)u : 1;
    info->eos_id = owl_gguf_get_u32(&m->gguf, "tokenizer.ggml.eos_token_id", &u, NULL) == OWL_OK ? (int32_t)u : 2;
}

const owl_gguf *owl_model_gguf(const owl_model *m) { return &m->gguf; }

int64_t owl_model_expanded_len(const owl_model *m, const int32_t *ids, int64_t n)
{
    if (n < 0 || (!ids && n > 0))
        return -1;
    int64_t L = 0;
    for (int64_t i = 0; i < n; i++)
        L += ids[i] == OWL_IMAGE_TOKEN ? (m->has_vision ? m->image_tokens : 1) : 1;
    return L;
}
