/* convert.c - Hugging Face mPLUG-Owl2 checkpoint -> GGUF (docs/FORMAT.md).
 *
 * Steps: config -> tensor plan (plan.c) -> open the checkpoint index (ckpt.c,
 * torch.c) -> check every key and shape, drop q/k_pos_embed after checking
 * them against the computed tables -> metadata + tokenizer -> stream each
 * tensor in row groups: read (pread) -> f32 -> RoPE row permutation -> quantize
 * -> write. Peak memory is one row group (~8 M floats) plus buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/core/gguf.h"
#include "../src/text/spm_model.h"
#include "../src/text/template.h"
#include "convert.h"
#include "outfile.h"

#define GROUP_ELEMS ((int64_t)8 << 20)

static owl_status check_shape(const owl_ckpt *ck, const owl_ck_tensor *ct, const owl_conv_tensor *t, owl_err *err)
{
    int ok = ct->n_dims == t->src_dims;
    for (int d = 0; ok && d < t->src_dims; d++)
        ok = ct->shape[d] == t->src_shape[d];
    if (ok && !owl_ckpt_elem_size(ct->dtype))
        return owl_err_set(err, OWL_E_UNSUPPORTED, "%s: %s: storage dtype is not F32/F16/BF16",
                           ck->paths[ct->file], t->key);
    if (ok)
        return OWL_OK;
    char want[96] = "", got[96] = "";
    for (int d = 0; d < t->src_dims; d++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "", (long long)t->src_shape[d]);
    for (int d = 0; d < ct->n_dims && d < OWL_CK_MAX_DIMS; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "x" : "", (long long)ct->shape[d]);
    return owl_err_set(err, OWL_E_FORMAT, "%s: %s: shape %s, config wants %s", ck->paths[ct->file], t->key,
                       got[0] ? got : "scalar", want);
}

static float round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1); /* round to nearest even (finite inputs) */
    u &= 0xFFFF0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* q_pos_embed / k_pos_embed buffers: must equal the computed tables (1e-5). */
static owl_status check_pos_tables(owl_ckpt *ck, const owl_conv_cfg *c, owl_err *err)
{
    int64_t h = c->a_hidden, nq = c->a_queries, nk = 1 + c->a_grid * c->a_grid;
    float *want = NULL, *got = NULL;
    owl_status st = OWL_OK;
    for (int l = 0; l < c->a_layers && !st; l++)
        for (int which = 0; which < 2 && !st; which++) {
            char key[192];
            snprintf(key, sizeof key, "model.visual_abstractor.encoder.layers.%d.crossattention.attention.%s", l,
                     which ? "k_pos_embed" : "q_pos_embed");
            owl_ck_tensor *ct = owl_ckpt_find(ck, key);
            if (!ct)
                continue;
            int64_t rows = which ? nk : nq;
            owl_conv_tensor spec = {.src_dims = 2, .src_shape = {rows, h}};
            snprintf(spec.key, sizeof spec.key, "%s", key);
            /* some exports keep a leading batch dim of 1 */
            if (ct->n_dims == 3 && ct->shape[0] == 1) {
                spec.src_dims = 3;
                spec.src_shape[0] = 1;
                spec.src_shape[1] = rows;
                spec.src_shape[2] = h;
            }
            if ((st = check_shape(ck, ct, &spec, err)))
                break;
            size_t n = (size_t)(rows * h);
            free(want);
            free(got);
            want = malloc(n * sizeof *want);
            got = malloc(n * sizeof *got);
            if (!want || !got) {
                st = owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", key);
                break;
            }
            if (which)
                owl_conv_k_pos(c->a_grid, h, want);
            else
                owl_conv_q_pos(nq, h, want);
            if ((st = owl_ckpt_read(ck, ct, 0, (int64_t)n, got, err)))
                break;
            for (size_t i = 0; i < n; i++) /* compare at the checkpoint's precision */
                want[i] = ct->dtype == OWL_TYPE_F16 ? owl_f16_to_f32(owl_f32_to_f16(want[i]))
                          : ct->dtype == OWL_TYPE_BF16 ? round_bf16(want[i]) : want[i];
            for (size_t i = 0; i < n; i++)
                if (!(got[i] - want[i] <= 1e-5f && want[i] - got[i] <= 1e-5f)) {
                    st = owl_err_set(err, OWL_E_FORMAT, "%s: %s: element [%zu][%zu] = %.8g, the sin-cos table "
                                     "gives %.8g", ck->paths[ct->file], key, i / (size_t)h, i % (size_t)h,
                                     (double)got[i], (double)want[i]);
                    break;
                }
            ct->used = 1;
        }
    free(want);
    free(got);
    return st;
}

static owl_status bind_keys(owl_ckpt *ck, const owl_conv_plan *p, owl_ck_tensor **src, owl_err *err)
{
    for (size_t i = 0; i < p->n; i++) {
        owl_ck_tensor *ct = owl_ckpt_find(ck, p->t[i].key);
        if (!ct)
            return owl_err_set(err, OWL_E_NOTFOUND, "checkpoint: key %s (for %s) is missing", p->t[i].key,
                               p->t[i].name);
        owl_status st = check_shape(ck, ct, &p->t[i], err);
        if (st)
            return st;
        ct->used = 1;
        src[i] = ct;
    }
    owl_status st = check_pos_tables(ck, &p->cfg, err);
    if (st)
        return st;
    for (size_t i = 0; i < ck->n; i++) {
        const char *k = ck->t[i].name;
        static const char inv[] = ".self_attn.rotary_emb.inv_freq";
        size_t kl = strlen(k), il = sizeof inv - 1;
        if (kl > il && !strcmp(k + kl - il, inv) && !strncmp(k, "model.layers.", 13))
            ck->t[i].used = 1; /* recomputed by the engine */
        if (!ck->t[i].used)
            return owl_err_set(err, OWL_E_FORMAT, "%s: unknown key %s", ck->paths[ck->t[i].file], k);
    }
    return OWL_OK;
}

/* ---------------------------------------------------------------- metadata */

#define U32(key, v) if (!st) st = owl_gguf_writer_set_u32(w, key, (uint32_t)(v))
#define F32(key, v) if (!st) st = owl_gguf_writer_set_f32(w, key, (float)(v))
#define AK(suffix) (snprintf(k, sizeof k, "%s.%s", ARCH, suffix), k)
static const char ARCH[] = "mplug-owl2";

/* general.*, the architecture's shapes, image and generation defaults, stages. */
static owl_status set_model_metadata(owl_gguf_writer *w, const owl_conv_plan *p)
{
    const owl_conv_cfg *c = &p->cfg;
    char k[128];
    owl_status st = owl_gguf_writer_set_str(w, "general.architecture", ARCH);
    if (!st)
        st = owl_gguf_writer_set_str(w, "general.name", c->name);
    U32("general.alignment", 32);
    static const uint32_t ftype_id[] = {0, 1, 7, 2, 14, 18, 15}; /* llama.cpp LLAMA_FTYPE_* */
    U32("general.file_type", ftype_id[p->ftype]);
    U32("general.quantization_version", 2);
    U32(AK("context_length"), c->ctx);
    U32(AK("embedding_length"), c->hidden);
    U32(AK("block_count"), c->layers);
    U32(AK("feed_forward_length"), c->ffn);
    U32(AK("attention.head_count"), c->heads);
    U32(AK("attention.head_count_kv"), c->kv_heads);
    F32(AK("rope.freq_base"), c->rope_theta);
    F32(AK("attention.layer_norm_rms_epsilon"), c->rms_eps);
    U32(AK("vocab_size"), c->vocab);
    U32(AK("vision.image_size"), c->v_image);
    U32(AK("vision.patch_size"), c->v_patch);
    U32(AK("vision.num_channels"), c->v_channels);
    U32(AK("vision.embedding_length"), c->v_hidden);
    U32(AK("vision.block_count"), c->v_layers);
    U32(AK("vision.attention.head_count"), c->v_heads);
    U32(AK("vision.feed_forward_length"), c->v_ffn);
    F32(AK("vision.attention.layer_norm_epsilon"), c->v_eps);
    U32(AK("abstractor.query_count"), c->a_queries);
    U32(AK("abstractor.block_count"), c->a_layers);
    U32(AK("abstractor.embedding_length"), c->a_hidden);
    U32(AK("abstractor.encoder_embedding_length"), c->a_enc_hidden);
    U32(AK("abstractor.attention.head_count"), c->a_heads);
    U32(AK("abstractor.feed_forward_length"), c->a_ffn);
    U32(AK("abstractor.grid_size"), c->a_grid);
    F32(AK("abstractor.layer_norm_epsilon"), c->a_eps);
    if (!st)
        st = owl_gguf_writer_set_arr(w, AK("image.mean"), OWL_GGUF_FLOAT32, c->mean, 3);
    if (!st)
        st = owl_gguf_writer_set_arr(w, AK("image.std"), OWL_GGUF_FLOAT32, c->std, 3);
    if (!st)
        st = owl_gguf_writer_set_str(w, AK("image.aspect"), c->aspect);
    uint8_t pad[3];
    for (int i = 0; i < 3; i++) {
        float v = 255.0f * c->mean[i]; /* int(255 * mean): truncation, as expand2square does */
        pad[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : (int)v);
    }
    if (!st)
        st = owl_gguf_writer_set_arr(w, AK("image.pad_color"), OWL_GGUF_UINT8, pad, 3);
    U32(AK("image_token_count"), c->a_queries + 1);
    F32(AK("generation.temperature"), c->temperature);
    F32(AK("generation.top_p"), c->top_p);
    U32(AK("generation.top_k"), c->top_k);
    U32(AK("generation.max_new_tokens"), c->max_new_tokens);
    if (!st)
        st = owl_gguf_writer_set_arr(w, "owlet.stages", OWL_GGUF_UINT32, p->stage_layer, p->n_stages);
    U32("owlet.stage_budget_mib", p->budget_mib);
    return st;
}

/* tokenizer.ggml.tokens / scores / token_type from the SentencePiece model. */
static owl_status set_vocab(owl_gguf_writer *w, const owl_spm_model *spm, owl_err *err)
{
    owl_status st = OWL_OK;
    size_t n = (size_t)spm->n_pieces;
    const char **toks = malloc(n * sizeof *toks);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    if (!toks || !scores || !types)
        st = owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        toks[i] = spm->pieces[i].piece;
        scores[i] = spm->pieces[i].score;
        types[i] = spm->pieces[i].type;
    }
    if (!st)
        st = owl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n);
    if (!st)
        st = owl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", OWL_GGUF_FLOAT32, scores, n);
    if (!st)
        st = owl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", OWL_GGUF_INT32, types, n);
    free(toks);
    free(scores);
    free(types);
    return st;
}

static owl_status set_tokenizer_metadata(owl_gguf_writer *w, const owl_conv_cfg *c, const owl_spm_model *spm,
                                         owl_err *err)
{
    owl_status st = owl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!st && spm)
        st = set_vocab(w, spm, err);
    U32("tokenizer.ggml.bos_token_id", c->bos);
    U32("tokenizer.ggml.eos_token_id", c->eos);
    U32("tokenizer.ggml.unknown_token_id", spm && spm->unk_id >= 0 ? spm->unk_id : 0);
    U32("tokenizer.ggml.padding_token_id", 0); /* pad is <unk> (special_tokens_map.json) */
    if (!st)
        st = owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    if (!st)
        st = owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    if (!st && spm)
        st = owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", spm->add_dummy_prefix != 0);
    if (!st)
        st = owl_gguf_writer_set_str(w, "tokenizer.chat_template", OWL_CHAT_TEMPLATE_MPLUG_OWL2);
    return st;
}
#undef U32
#undef F32
#undef AK

static owl_status set_metadata(owl_gguf_writer *w, const owl_conv_plan *p, const owl_spm_model *spm,
                               owl_err *err)
{
    owl_status st = set_model_metadata(w, p);
    if (!st)
        st = set_tokenizer_metadata(w, &p->cfg, spm, err);
    if (st && err && !err->code) {
        const owl_err *we = owl_gguf_writer_last_error(w);
        owl_err_set(err, st, "metadata: %s", we ? we->msg : "error");
    }
    return st;
}

/* ---------------------------------------------------------------- data */

typedef struct {
    owl_outfile *f;
    uint64_t pos;
    owl_err err; /* why a write failed */
} sink;

static int sink_write(void *user, const void *data, size_t n)
{
    sink *s = user;
    if (n && owl_outfile_write(s->f, data, n, &s->err))
        return 1;
    s->pos += n;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static owl_status write_tensor(owl_ckpt *ck, const owl_ck_tensor *ct, const owl_conv_tensor *t, sink *s,
                               float *in, float *tmp, uint8_t *q, owl_err *err)
{
    int64_t row = t->ne[0], rows = t->ne[1];
    int64_t hd = t->rope_heads ? rows / t->rope_heads : 1; /* rows per head */
    int64_t g = GROUP_ELEMS / row;
    if (g < 1)
        g = 1;
    if (t->rope_heads)
        g = g < hd ? hd : g / hd * hd;
    size_t rb = owl_row_size(t->type, row);
    for (int64_t r0 = 0; r0 < rows; r0 += g) {
        int64_t nr = rows - r0 < g ? rows - r0 : g;
        owl_status st = owl_ckpt_read(ck, ct, r0 * row, nr * row, in, err);
        if (st)
            return st;
        const float *src = in;
        if (t->rope_heads) {
            /* GGUF row h*D + 2i + s <- checkpoint row h*D + s*D/2 + i (llama.cpp's permute) */
            for (int64_t r = 0; r < nr; r++) {
                int64_t h = r / hd, j = r % hd, i = j / 2, sbit = j % 2;
                memcpy(tmp + r * row, in + (h * hd + sbit * (hd / 2) + i) * row, (size_t)row * sizeof *tmp);
            }
            src = tmp;
        }
        for (int64_t r = 0; r < nr; r++)
            owl_quantize_row_ref(t->type, src + r * row, q + (size_t)r * rb, row);
        if (sink_write(s, q, (size_t)nr * rb))
            return owl_err_set(err, OWL_E_IO, "%s: %s", t->name, s->err.msg);
    }
    return OWL_OK;
}

static owl_status load_tokenizer(const char *dir, int64_t vocab, owl_spm_model *spm, int *have, owl_err *err)
{
    char path[4096];
    *have = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.model", dir) >= sizeof path)
        return owl_err_set(err, OWL_E_LIMIT, "%s: path too long", dir);
    char *buf;
    size_t n;
    owl_status st = owl_conv_read_file(path, &buf, &n, err);
    if (st)
        return st;
    st = owl_spm_parse(buf, n, spm, err);
    free(buf);
    if (st) {
        char m[OWL_ERR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err ? err->msg : "");
        return owl_err_set(err, st, "%s: %s", path, m);
    }
    *have = 1;
    if (spm->n_pieces != vocab)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %d pieces, config vocab_size is %lld", path, spm->n_pieces,
                           (long long)vocab);
    return OWL_OK;
}

/* The output must not be a file the conversion reads. */
static owl_status check_not_input(const owl_conv_opts *o, const owl_ckpt *ck, owl_err *err)
{
    static const char *const names[] = {"config.json", "preprocessor_config.json", "generation_config.json",
                                        "tokenizer.model", "model.safetensors.index.json",
                                        "pytorch_model.bin.index.json"};
    enum { N_NAMES = sizeof names / sizeof *names };
    char extra[N_NAMES][4096];
    const char **in = malloc(sizeof *in * (size_t)(ck->n_files + N_NAMES));
    if (!in)
        return owl_err_set(err, OWL_E_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < ck->n_files; i++)
        in[n++] = ck->paths[i];
    for (int i = 0; i < N_NAMES; i++)
        if ((size_t)snprintf(extra[i], sizeof extra[i], "%s/%s", o->in_dir, names[i]) < sizeof extra[i])
            in[n++] = extra[i];
    owl_status st = owl_outfile_check(o->out_path, in, n, err);
    free(in);
    return st;
}

/* Everything one conversion holds; conv_free releases it. */
typedef struct {
    owl_conv_cfg cfg;
    owl_conv_plan plan;
    owl_ckpt ck;
    owl_spm_model spm;
    int have_spm;
    owl_gguf_writer *w;
    owl_ck_tensor **src; /* the checkpoint tensor of each plan tensor */
    float *in, *tmp;     /* one row group: as read, RoPE-permuted */
    uint8_t *q;          /* one row group, quantized */
    owl_outfile f;
} conv;

static void conv_free(conv *cv)
{
    free(cv->in);
    free(cv->tmp);
    free(cv->q);
    free(cv->src);
    owl_gguf_writer_free(cv->w);
    if (cv->have_spm)
        owl_spm_free(&cv->spm);
    owl_ckpt_free(&cv->ck);
    owl_conv_plan_free(&cv->plan);
}

/* config -> plan -> checkpoint index, every key bound and checked -> tokenizer. */
static owl_status open_inputs(conv *cv, const owl_conv_opts *o, owl_err *err)
{
    owl_status st = owl_conv_cfg_load(o->in_dir, &cv->cfg, err);
    if (!st && o->name) {
        if (strlen(o->name) >= sizeof cv->cfg.name)
            st = owl_err_set(err, OWL_E_INVALID, "--name longer than %zu bytes", sizeof cv->cfg.name - 1);
        else
            snprintf(cv->cfg.name, sizeof cv->cfg.name, "%s", o->name);
    }
    if (!st)
        st = owl_conv_plan_build_vision(&cv->cfg, o->ftype, o->vision, o->budget_mib, &cv->plan, err);
    if (!st)
        st = owl_ckpt_open(&cv->ck, o->in_dir, o->prefer, err);
    if (!st)
        st = check_not_input(o, &cv->ck, err);
    if (!st && !(cv->src = calloc(cv->plan.n, sizeof *cv->src)))
        st = owl_err_set(err, OWL_E_NOMEM, "out of memory");
    if (!st)
        st = bind_keys(&cv->ck, &cv->plan, cv->src, err);
    if (!st)
        st = load_tokenizer(o->in_dir, cv->cfg.vocab, &cv->spm, &cv->have_spm, err);
    return st;
}

/* The GGUF writer with its metadata and tensor infos. */
static owl_status describe_output(conv *cv, owl_err *err)
{
    if (!(cv->w = owl_gguf_writer_init()))
        return owl_err_set(err, OWL_E_NOMEM, "out of memory");
    owl_status st = set_metadata(cv->w, &cv->plan, &cv->spm, err);
    for (size_t i = 0; !st && i < cv->plan.n; i++) {
        const owl_conv_tensor *t = &cv->plan.t[i];
        st = owl_gguf_writer_add_tensor(cv->w, t->name, t->type, t->n_dims, t->ne);
        if (st)
            owl_err_set(err, st, "%s", owl_gguf_writer_last_error(cv->w)->msg);
    }
    return st;
}

/* Group buffers: GROUP_ELEMS floats, or one head of rows, or one row. */
static owl_status alloc_group_buffers(conv *cv, owl_err *err)
{
    int64_t cap = GROUP_ELEMS;
    for (size_t i = 0; i < cv->plan.n; i++) {
        const owl_conv_tensor *t = &cv->plan.t[i];
        int64_t need = t->ne[0] * (t->rope_heads ? t->ne[1] / t->rope_heads : 1);
        if (need > cap)
            cap = need;
    }
    if (!(cv->in = malloc((size_t)cap * sizeof *cv->in)) || !(cv->tmp = malloc((size_t)cap * sizeof *cv->tmp)) ||
        !(cv->q = malloc((size_t)cap * sizeof *cv->q * 4)))
        return owl_err_set(err, OWL_E_NOMEM, "out of memory for %lld-element buffers", (long long)cap);
    return OWL_OK;
}

/* Zero bytes up to file offset off. */
static owl_status pad_to(sink *s, uint64_t off, owl_err *err)
{
    static const uint8_t zeros[64];
    while (s->pos < off)
        if (sink_write(s, zeros, off - s->pos < 64 ? (size_t)(off - s->pos) : 64))
            return owl_err_set(err, OWL_E_IO, "%s", s->err.msg);
    return OWL_OK;
}

/* Every tensor at its offset, with a progress line on stderr if asked. */
static owl_status write_tensors(conv *cv, const owl_conv_opts *o, sink *s, double t0, uint64_t total,
                                owl_err *err)
{
    const owl_conv_plan *plan = &cv->plan;
    owl_status st = OWL_OK;
    double last = 0;
    for (size_t i = 0; !st && i < plan->n; i++) {
        uint64_t off = owl_gguf_writer_tensor_file_offset(cv->w, i);
        st = pad_to(s, off, err);
        if (!st && s->pos != off)
            st = owl_err_set(err, OWL_E_STATE, "%s: at %llu, want %llu", plan->t[i].name,
                             (unsigned long long)s->pos, (unsigned long long)off);
        if (!st)
            st = write_tensor(&cv->ck, cv->src[i], &plan->t[i], s, cv->in, cv->tmp, cv->q, err);
        double tn = now_s();
        if (o->progress && (tn - last > 0.25 || i + 1 == plan->n)) {
            last = tn;
            fprintf(stderr, "\r[%zu/%zu] %-28s %7.1f / %.1f MB  %6.1f MB/s ", i + 1, plan->n, plan->t[i].name,
                    (double)s->pos / 1e6, (double)total / 1e6, (double)s->pos / 1e6 / (tn - t0 + 1e-9));
            if (i + 1 == plan->n)
                fputc('\n', stderr);
        }
    }
    return st;
}

static void print_summary(const conv *cv, const owl_conv_opts *o, uint64_t total, double t0)
{
    const owl_conv_plan *plan = &cv->plan;
    int nfb = 0;
    for (size_t i = 0; i < plan->n; i++)
        if (plan->t[i].fallback) {
            if (nfb++ < 8)
                fprintf(stderr, "note: %s: row of %lld is not a multiple of the %s block, stored as %s\n",
                        plan->t[i].name, (long long)plan->t[i].ne[0], owl_type_get((int)plan->t[i].want)->name,
                        owl_type_get((int)plan->t[i].type)->name);
        }
    if (nfb > 8)
        fprintf(stderr, "note: %d tensors in all fell back to a wider type\n", nfb);
    fprintf(stderr, "wrote %s: %zu tensors, %.1f MB, %u stage(s), %.1f s (%s)\n", o->out_path, plan->n,
            (double)total / 1e6, plan->n_stages, now_s() - t0, cv->ck.format);
}

owl_status owl_convert(const owl_conv_opts *o, owl_err *err)
{
    conv cv;
    memset(&cv, 0, sizeof cv);
    cv.f.fd = -1;
    /* a device, a directory or a symlink to one is refused before any work */
    owl_status st = owl_outfile_check(o->out_path, NULL, 0, err);
    if (st)
        return st;

    st = open_inputs(&cv, o, err);
    if (!st)
        st = describe_output(&cv, err);
    if (!st)
        st = alloc_group_buffers(&cv, err);
    if (!st)
        st = owl_outfile_open(&cv.f, o->out_path, err);
    sink s = {&cv.f, 0, {0}};
    if (!st)
        st = owl_gguf_writer_write_header(cv.w, sink_write, &s, err);
    double t0 = now_s();
    uint64_t total = owl_gguf_writer_file_size(cv.w);
    if (!st)
        st = write_tensors(&cv, o, &s, t0, total, err);
    if (!st)
        st = pad_to(&s, total, err);
    if (!st)
        st = owl_outfile_close(&cv.f, err);
    if (!st)
        st = owl_outfile_rename(&cv.f, err);
    owl_outfile_discard(&cv.f); /* removes the temporary file after an error */
    if (!st && !o->quiet)
        print_summary(&cv, o, total, t0);
    conv_free(&cv);
    return st;
}
