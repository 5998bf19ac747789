/* load.c - owl_model: a GGUF held in memory (whole, or a stage's byte range),
 * its architecture, and the parts it holds, each loaded by its own loader
 * (parts.h) through the checked tensor lookup of weights.h; weights are used
 * in place. Also the model's queries (owl_model_get_info, owl_model_gguf). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parts.h"

void owl_model_free(owl_model *m)
{
    if (!m)
        return;
    owl_blocks_free(&m->blocks);
    owl_gguf_free(&m->gguf);
    free(m->file_data);
    free(m);
}

static owl_status load(owl_model *m, const void *data, size_t size, const owl_model_opts *opts,
                       owl_err *err)
{
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
    owl_loader ld = {&m->gguf, m->range, m->range_size, m->opts.range_offset, &m->blocks, err, m->opts.rearrange};
    m->has_embed = !m->opts.no_embed;
    m->has_head = !m->opts.no_head;
    if ((st = owl_llm_load(&ld, &m->llm, m->arch, m->opts.layer_begin, &m->opts.layer_end,
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
    o.rearrange = 1; /* buf is ours */
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
