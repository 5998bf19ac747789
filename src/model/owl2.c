/* owl2.c - sessions: KV cache + scratch, image encoding, splicing of the 65
 * visual rows at each -200 placeholder (modeling_mplug_owl2.py), prefill,
 * incremental decode, generation, and the stage API (design.md section 6).
 *
 * Positions are 0..L-1 over the spliced sequence; modality 1 for the visual
 * rows (queries + vit_eos), 0 for every text token; a decode step is always
 * text (spec section 3.4). The KV cache slot of a position is the position. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../text/sampler.h"
#include "model.h"

/* ---------------------------------------------------------------- helpers */

void owl_model_matmul(owl_session *s, const owl_mat *W, const float *b, const float *X, int64_t n,
                      float *Y)
{
    owl_matmul(s->pool, W->data, W->type, W->rows, W->cols, X, W->cols, n, Y, W->rows,
               s->mm_scratch);
    if (b)
        for (int64_t t = 0; t < n; t++)
            owl_add(Y + t * W->rows, Y + t * W->rows, b, W->rows);
}

void owl_model_tap(owl_session *s, const char *name, const float *x, int64_t rows, int64_t cols)
{
    if (s->tap)
        s->tap(s->tap_user, name, x, rows, cols);
}

void owl_model_layernorm_rows(float *y, const float *x, const float *w, const float *b, int64_t n,
                              int64_t width, float eps)
{
    for (int64_t t = 0; t < n; t++)
        owl_layernorm(y + t * width, x + t * width, w, b, width, eps);
}

/* a * b with overflow check (0 on overflow, which no caller accepts as a size) */
static uint64_t mul_u64(uint64_t a, uint64_t b)
{
    if (a && b > UINT64_MAX / a)
        return 0;
    return a * b;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static void mm_need(size_t *mx, const owl_mat *w, int64_t ntok)
{
    if (!w->data)
        return;
    size_t n = owl_matmul_scratch_size(w->type, w->cols, ntok);
    if (n > *mx)
        *mx = n;
}

/* Largest owl_matmul scratch of any product the session may run. */
static size_t matmul_scratch(const owl_model *m, int64_t nb)
{
    size_t mx = 0;
    const owl_llm *l = &m->llm;
    for (int i = m->opts.layer_begin; i < m->opts.layer_end; i++) {
        const owl_llm_layer *L = &l->layers[i];
        const owl_mat *ws[] = {&L->q, &L->k[0], &L->k[1], &L->v[0], &L->v[1], &L->o, &L->gate, &L->up, &L->down};
        for (size_t j = 0; j < sizeof ws / sizeof ws[0]; j++)
            mm_need(&mx, ws[j], nb);
    }
    mm_need(&mx, &l->output, nb);
    if (m->has_vision) {
        const int64_t T = m->vit.n_tok, Q = m->abs.n_queries;
        mm_need(&mx, &m->vit.patch_embd, T);
        for (int i = 0; i < m->vit.n_layers; i++) {
            const owl_vit_layer *L = &m->vit.layers[i];
            mm_need(&mx, &L->qkv, T);
            mm_need(&mx, &L->out, T);
            mm_need(&mx, &L->up, T);
            mm_need(&mx, &L->down, T);
        }
        for (int i = 0; i < m->abs.n_layers; i++) {
            const owl_abs_layer *L = &m->abs.layers[i];
            const owl_mat *ws[] = {&L->q, &L->k, &L->v, &L->out, &L->gate, &L->up, &L->down};
            for (size_t j = 0; j < sizeof ws / sizeof ws[0]; j++)
                mm_need(&mx, ws[j], Q + T);
        }
        mm_need(&mx, &m->abs.visual_fc, Q);
    }
    return mx;
}

/* ---------------------------------------------------------------- session */

owl_session_opts owl_session_opts_default(void)
{
    owl_session_opts o;
    memset(&o, 0, sizeof o);
    o.kv_type = OWL_TYPE_F16;
    o.n_threads = 1;
    return o;
}

owl_gen_opts owl_gen_opts_default(void)
{
    owl_gen_opts g;
    memset(&g, 0, sizeof g);
    g.n_predict = 128;
    g.top_p = 1.0f;
    g.repetition_penalty = 1.0f;
    return g;
}

void owl_session_clear_images(owl_session *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_images; i++)
        free(s->images[i]);
    s->n_images = 0;
}

void owl_session_free(owl_session *s)
{
    if (!s)
        return;
    owl_session_clear_images(s);
    owl_pool_free(s->pool);
    free(s->kv);
    free(s->arena);
    free(s);
}

owl_status owl_session_init(const owl_model *m, const owl_session_opts *opts, owl_session **out,
                            owl_err *err)
{
    if (!out || !m)
        return owl_err_set(err, OWL_E_INVALID, "owl_session_init: NULL argument");
    *out = NULL;
    owl_session_opts o = opts ? *opts : owl_session_opts_default();
    const owl_llm *l = &m->llm;
    if (o.kv_type != OWL_TYPE_F16 && o.kv_type != OWL_TYPE_F32)
        return owl_err_set(err, OWL_E_INVALID, "session: kv_type %d, want f16 (1) or f32 (0)",
                           (int)o.kv_type);
    if (l->n_ctx_train < 1) /* the file's fault, not the caller's */
        return owl_err_set(err, OWL_E_FORMAT, "session: the model's context_length is %lld (GGUF metadata "
                           "<arch>.context_length must be >= 1)", (long long)l->n_ctx_train);
    int64_t n_ctx = o.n_ctx;
    if (n_ctx == 0)
        n_ctx = l->n_ctx_train < 2048 ? l->n_ctx_train : 2048;
    if (n_ctx < 1 || n_ctx > l->n_ctx_train)
        return owl_err_set(err, OWL_E_INVALID, "session: n_ctx %lld outside 1..%lld (context_length)",
                           (long long)o.n_ctx, (long long)l->n_ctx_train);
    int64_t nb = o.n_batch ? o.n_batch : 256;
    if (nb < 1)
        return owl_err_set(err, OWL_E_INVALID, "session: n_batch %lld < 1", (long long)o.n_batch);
    if (nb > n_ctx)
        nb = n_ctx;
    int nth = o.n_threads < 1 ? 1 : o.n_threads;
    if (nth > 256)
        return owl_err_set(err, OWL_E_INVALID, "session: n_threads %d > 256", nth);

    owl_session *s = calloc(1, sizeof *s);
    if (!s)
        return owl_err_set(err, OWL_E_NOMEM, "session: out of memory");
    s->m = m;
    s->kv_type = o.kv_type;
    s->n_ctx = n_ctx;
    s->n_batch = nb;
    s->tap = o.tap;
    s->tap_user = o.tap_user;
    atomic_store(&s->cancel, 0);
    if (nth > 1) {
        s->pool = owl_pool_init(nth);
        if (!s->pool) {
            free(s);
            return owl_err_set(err, OWL_E_NOMEM, "session: cannot start %d threads", nth);
        }
    }
    s->n_threads = owl_pool_size(s->pool) > 0 ? owl_pool_size(s->pool) : 1;

    /* KV cache: layers held x {K, V} x n_ctx x kv_dim */
    const uint64_t elt = o.kv_type == OWL_TYPE_F16 ? 2 : 4;
    const uint64_t nl = (uint64_t)(m->opts.layer_end - m->opts.layer_begin);
    uint64_t plane = mul_u64(mul_u64((uint64_t)n_ctx, (uint64_t)l->kv_dim), elt);
    uint64_t kv_bytes = mul_u64(mul_u64(plane, nl), 2);
    /* LLM batch buffers (floats): xn q att tmp hidden (d), k v (kv_dim), g u (ffn); logits */
    uint64_t row = 5 * (uint64_t)l->d + 2 * (uint64_t)l->kv_dim + 2 * (uint64_t)l->ffn;
    uint64_t llm_f = mul_u64(row, (uint64_t)nb) + (uint64_t)l->n_vocab + 64 * 12;
    uint64_t img_f = (uint64_t)owl_img_scratch_floats(m);
    uint64_t mm_b = matmul_scratch(m, nb);
    int64_t max_kv = n_ctx;
    if (m->has_vision && m->abs.n_queries + m->vit.n_tok > max_kv)
        max_kv = m->abs.n_queries + m->vit.n_tok;
    uint64_t att_b = owl_attention_scratch_size(max_kv, s->n_threads);
    /* 15 pieces below, each rounded up to 64 bytes */
    uint64_t arena = mul_u64(llm_f + img_f, 4);
    if (arena)
        arena += 15 * 64 + (uint64_t)nb + mm_b + att_b + 4 * (uint64_t)n_ctx;
    if (plane == 0 || kv_bytes == 0 || arena == 0 || mm_b == SIZE_MAX || att_b == SIZE_MAX ||
        kv_bytes > SIZE_MAX || arena > SIZE_MAX || arena < mm_b || arena < att_b) {
        owl_session_free(s);
        return owl_err_set(err, OWL_E_NOMEM, "session: sizes overflow (n_ctx %lld, n_batch %lld)",
                           (long long)n_ctx, (long long)nb);
    }
    s->kv_layer_bytes = (size_t)plane;
    s->kv = calloc(1, (size_t)kv_bytes);
    s->arena = calloc(1, (size_t)arena);
    if (!s->kv || !s->arena) {
        owl_session_free(s);
        return owl_err_set(err, OWL_E_NOMEM, "session: cannot allocate %llu bytes of KV cache + %llu of scratch",
                           (unsigned long long)kv_bytes, (unsigned long long)arena);
    }
    s->arena_size = (size_t)arena;
    /* carve */
    size_t off = 0;
#define TAKE(ptr, bytes)                                              \
    do {                                                              \
        ptr = (void *)(s->arena + off);                               \
        off += align64((size_t)(bytes));                              \
    } while (0)
    TAKE(s->ls.xn, 4 * nb * l->d);
    TAKE(s->ls.q, 4 * nb * l->d);
    TAKE(s->ls.att, 4 * nb * l->d);
    TAKE(s->ls.tmp, 4 * nb * l->d);
    TAKE(s->hidden, 4 * nb * l->d);
    TAKE(s->ls.k, 4 * nb * l->kv_dim);
    TAKE(s->ls.v, 4 * nb * l->kv_dim);
    TAKE(s->ls.g, 4 * nb * l->ffn);
    TAKE(s->ls.u, 4 * nb * l->ffn);
    TAKE(s->logits, 4 * l->n_vocab);
    float *img;
    TAKE(img, 4 * img_f);
    TAKE(s->mod, nb);
    TAKE(s->mm_scratch, mm_b);
    TAKE(s->att_scratch, att_b);
    TAKE(s->history, 4 * n_ctx);
#undef TAKE
    OWL_ASSERT(off <= s->arena_size);
    if (m->has_vision)
        owl_img_scratch_carve(m, img, &s->is);
    *out = s;
    return OWL_OK;
}

const char *owl_session_error(const owl_session *s) { return s ? s->err.msg : ""; }

void owl_session_reset(owl_session *s)
{
    if (!s)
        return;
    s->n_past = 0;
    owl_session_clear_images(s);
    memset(s->logits, 0, sizeof(float) * (size_t)s->m->llm.n_vocab);
}

int64_t owl_session_n_past(const owl_session *s) { return s->n_past; }

owl_status owl_session_truncate(owl_session *s, int64_t n_past)
{
    if (n_past < 0 || n_past > s->n_past)
        return owl_err_set(&s->err, OWL_E_INVALID, "truncate: n_past %lld outside 0..%lld",
                           (long long)n_past, (long long)s->n_past);
    s->n_past = n_past;
    return OWL_OK;
}

const float *owl_session_logits(const owl_session *s) { return s->logits; }

void owl_session_cancel(owl_session *s)
{
    if (s)
        atomic_store(&s->cancel, 1);
}

/* ---------------------------------------------------------------- images */

owl_status owl_session_encode_image(owl_session *s, const float *pixels, size_t n_floats, float *out)
{
    const owl_model *m = s->m;
    if (!m->has_vision)
        return owl_err_set(&s->err, OWL_E_STATE, "encode_image: model has no vision tower");
    const uint64_t want = (uint64_t)m->vit.channels * (uint64_t)m->vit.image_size * (uint64_t)m->vit.image_size;
    if (!pixels || n_floats != want)
        return owl_err_set(&s->err, OWL_E_INVALID, "encode_image: %zu floats, want %llu (%lldx%lldx%lld)",
                           n_floats, (unsigned long long)want, (long long)m->vit.channels,
                           (long long)m->vit.image_size, (long long)m->vit.image_size);
    if (s->n_images >= OWL_MAX_IMAGES)
        return owl_err_set(&s->err, OWL_E_LIMIT, "encode_image: %d images held (max %d)", s->n_images,
                           OWL_MAX_IMAGES);
    size_t n = (size_t)(m->image_tokens * m->llm.d);
    float *feat = malloc(sizeof(float) * n);
    if (!feat)
        return owl_err_set(&s->err, OWL_E_NOMEM, "encode_image: cannot allocate %zu floats", n);
    owl_vit_forward(s, pixels);
    owl_abs_forward(s, feat);
    s->images[s->n_images++] = feat;
    if (out)
        memcpy(out, feat, sizeof(float) * n);
    return OWL_OK;
}

/* ---------------------------------------------------------------- splicing */

/* Check ids; returns the expanded length or a negative status (err set). */
static int64_t check_ids(owl_session *s, const int32_t *ids, int64_t n_ids, const char *what)
{
    const owl_model *m = s->m;
    if (n_ids <= 0 || !ids)
        return owl_err_set(&s->err, OWL_E_INVALID, "%s: empty prompt", what);
    int n_img = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        if (ids[i] == OWL_IMAGE_TOKEN) {
            if (++n_img > s->n_images)
                return owl_err_set(&s->err, OWL_E_INVALID,
                                   "%s: image placeholder %d at index %lld but %d image(s) encoded",
                                   what, n_img, (long long)i, s->n_images);
        } else if (ids[i] < 0 || ids[i] >= m->llm.n_vocab) {
            return owl_err_set(&s->err, OWL_E_INVALID, "%s: token id %d at index %lld outside 0..%lld",
                               what, (int)ids[i], (long long)i, (long long)m->llm.n_vocab - 1);
        }
    }
    return owl_model_expanded_len(m, ids, n_ids);
}

/* Rows [p0, p0+cnt) of the spliced prompt into x (cnt, d) and mod (cnt). */
static void expand(owl_session *s, const int32_t *ids, int64_t n_ids, int64_t p0, int64_t cnt,
                   float *x, uint8_t *mod)
{
    const int64_t d = s->m->llm.d, it = s->m->image_tokens;
    int64_t p = 0;
    int img = 0;
    for (int64_t i = 0; i < n_ids && p < p0 + cnt; i++) {
        if (ids[i] == OWL_IMAGE_TOKEN) {
            for (int64_t r = 0; r < it; r++, p++)
                if (p >= p0 && p < p0 + cnt) {
                    memcpy(x + (p - p0) * d, s->images[img] + r * d, sizeof(float) * (size_t)d);
                    if (mod)
                        mod[p - p0] = 1;
                }
            img++;
        } else {
            if (p >= p0) {
                owl_llm_embed(s, ids + i, 1, x + (p - p0) * d);
                if (mod)
                    mod[p - p0] = 0;
            }
            p++;
        }
    }
}

static int whole_model(const owl_model *m)
{
    return m->has_embed && m->has_head && m->opts.layer_begin == 0 &&
           m->opts.layer_end == m->llm.n_layers;
}

owl_status owl_session_prefill(owl_session *s, const int32_t *ids, int64_t n_ids, float *all_logits,
                               int64_t *n_pos_out)
{
    const owl_model *m = s->m;
    if (!whole_model(m))
        return owl_err_set(&s->err, OWL_E_STATE, "prefill: model holds only a stage (use the stage API)");
    int64_t L = check_ids(s, ids, n_ids, "prefill");
    if (L < 0)
        return (owl_status)L;
    if (L > s->n_ctx - s->n_past)
        return owl_err_set(&s->err, OWL_E_LIMIT, "prefill: %lld positions + %lld in cache > n_ctx %lld",
                           (long long)L, (long long)s->n_past, (long long)s->n_ctx);
    const int64_t d = m->llm.d, V = m->llm.n_vocab;
    for (int64_t a = 0; a < L; a += s->n_batch) {
        int64_t c = L - a < s->n_batch ? L - a : s->n_batch;
        expand(s, ids, n_ids, a, c, s->hidden, s->mod);
        owl_model_tap(s, "llm_input_embeds", s->hidden, c, d);
        owl_llm_layers(s, 0, (int)m->llm.n_layers, s->hidden, c, s->n_past + a, s->mod);
        if (all_logits)
            owl_llm_head(s, s->hidden, c, all_logits + a * V, V);
        else if (a + c == L)
            owl_llm_head(s, s->hidden + (c - 1) * d, 1, s->logits, V);
    }
    if (all_logits)
        memcpy(s->logits, all_logits + (L - 1) * V, sizeof(float) * (size_t)V);
    /* token history (for the repetition penalty): image rows as OWL_IMAGE_TOKEN */
    for (int64_t i = 0, p = s->n_past; i < n_ids; i++) {
        int64_t r = ids[i] == OWL_IMAGE_TOKEN ? m->image_tokens : 1;
        for (int64_t k = 0; k < r; k++)
            s->history[p++] = ids[i];
    }
    s->n_past += L;
    if (n_pos_out)
        *n_pos_out = L;
    return OWL_OK;
}

owl_status owl_session_decode(owl_session *s, int32_t token, const float **logits)
{
    const owl_model *m = s->m;
    if (!whole_model(m))
        return owl_err_set(&s->err, OWL_E_STATE, "decode: model holds only a stage (use the stage API)");
    if (token < 0 || token >= m->llm.n_vocab)
        return owl_err_set(&s->err, OWL_E_INVALID, "decode: token id %d outside 0..%lld", (int)token,
                           (long long)m->llm.n_vocab - 1);
    if (s->n_past >= s->n_ctx)
        return owl_err_set(&s->err, OWL_E_LIMIT, "decode: context full (n_ctx %lld)", (long long)s->n_ctx);
    owl_llm_embed(s, &token, 1, s->hidden);
    owl_llm_layers(s, 0, (int)m->llm.n_layers, s->hidden, 1, s->n_past, NULL);
    owl_llm_head(s, s->hidden, 1, s->logits, m->llm.n_vocab);
    s->history[s->n_past++] = token;
    if (logits)
        *logits = s->logits;
    return OWL_OK;
}

/* ---------------------------------------------------------------- stage API */

owl_status owl_session_embed(owl_session *s, const int32_t *ids, int64_t n_ids, float *x,
                             uint8_t *modality)
{
    if (!s->m->has_embed)
        return owl_err_set(&s->err, OWL_E_STATE, "embed: model holds no token_embd");
    if (!x)
        return owl_err_set(&s->err, OWL_E_INVALID, "embed: x is NULL");
    int64_t L = check_ids(s, ids, n_ids, "embed");
    if (L < 0)
        return (owl_status)L;
    expand(s, ids, n_ids, 0, L, x, modality);
    return OWL_OK;
}

owl_status owl_session_run_layers(owl_session *s, int layer_begin, int layer_end, float *x, int64_t n,
                                  int64_t pos0, const uint8_t *modality)
{
    const owl_model *m = s->m;
    if (layer_begin < m->opts.layer_begin || layer_end > m->opts.layer_end || layer_begin > layer_end)
        return owl_err_set(&s->err, OWL_E_INVALID, "run_layers: [%d, %d) outside the held layers [%d, %d)",
                           layer_begin, layer_end, m->opts.layer_begin, m->opts.layer_end);
    if (!x || n < 1)
        return owl_err_set(&s->err, OWL_E_INVALID, "run_layers: no rows (n %lld)", (long long)n);
    if (pos0 < 0 || pos0 > s->n_past)
        return owl_err_set(&s->err, OWL_E_INVALID, "run_layers: pos0 %lld outside 0..%lld (n_past)",
                           (long long)pos0, (long long)s->n_past);
    if (n > s->n_ctx - pos0)
        return owl_err_set(&s->err, OWL_E_LIMIT, "run_layers: positions %lld..%lld beyond n_ctx %lld",
                           (long long)pos0, (long long)(pos0 + n - 1), (long long)s->n_ctx);
    if (modality)
        for (int64_t i = 0; i < n; i++)
            if (modality[i] > 1 || (modality[i] == 1 && !m->llm.multiway))
                return owl_err_set(&s->err, OWL_E_INVALID, "run_layers: modality %d at row %lld (model %s)",
                                   modality[i], (long long)i, m->llm.multiway ? "mplug-owl2" : "llama: text only");
    const int64_t d = m->llm.d;
    for (int64_t a = 0; a < n; a += s->n_batch) {
        int64_t c = n - a < s->n_batch ? n - a : s->n_batch;
        owl_llm_layers(s, layer_begin, layer_end, x + a * d, c, pos0 + a, modality ? modality + a : NULL);
    }
    s->n_past = pos0 + n;
    return OWL_OK;
}

owl_status owl_session_head(owl_session *s, float *x, int64_t n, float *logits)
{
    const owl_model *m = s->m;
    if (!m->has_head)
        return owl_err_set(&s->err, OWL_E_STATE, "head: model holds no output head");
    if (!x || !logits || n < 1)
        return owl_err_set(&s->err, OWL_E_INVALID, "head: no rows (n %lld)", (long long)n);
    const int64_t d = m->llm.d, V = m->llm.n_vocab;
    for (int64_t a = 0; a < n; a += s->n_batch) {
        int64_t c = n - a < s->n_batch ? n - a : s->n_batch;
        owl_llm_head(s, x + a * d, c, logits + a * V, V);
    }
    memcpy(s->logits, logits + (n - 1) * V, sizeof(float) * (size_t)V);
    return OWL_OK;
}

owl_status owl_session_kv_read(const owl_session *s, int layer, int which, int64_t pos0, int64_t n,
                               float *out)
{
    const owl_model *m = s->m;
    if (layer < m->opts.layer_begin || layer >= m->opts.layer_end || which < 0 || which > 1 ||
        pos0 < 0 || n < 0 || n > s->n_ctx - pos0 || !out)
        return OWL_E_INVALID;
    const int64_t w = m->llm.kv_dim;
    const void *plane = owl_llm_kv_plane(s, layer, which);
    if (s->kv_type == OWL_TYPE_F32)
        memcpy(out, (const float *)plane + pos0 * w, sizeof(float) * (size_t)(n * w));
    else
        for (int64_t i = 0; i < n * w; i++)
            out[i] = owl_f16_to_f32(((const owl_f16 *)plane)[pos0 * w + i]);
    return OWL_OK;
}

/* ---------------------------------------------------------------- generation */

owl_status owl_session_generate(owl_session *s, const owl_gen_opts *opts, owl_token_fn on_token,
                                void *user, int32_t *tokens, int64_t *n_tokens)
{
    owl_gen_opts g = opts ? *opts : owl_gen_opts_default();
    if (n_tokens)
        *n_tokens = 0;
    if (!whole_model(s->m))
        return owl_err_set(&s->err, OWL_E_STATE, "generate: model holds only a stage");
    if (s->n_past == 0)
        return owl_err_set(&s->err, OWL_E_STATE, "generate: no logits yet (prefill first)");
    if (g.n_predict < 1)
        return owl_err_set(&s->err, OWL_E_INVALID, "generate: n_predict %d < 1", g.n_predict);
    owl_sampler_params sp = {
        .temperature = g.temperature, .top_k = g.top_k, .top_p = g.top_p, .min_p = g.min_p,
        .repetition_penalty = g.repetition_penalty > 0.0f ? g.repetition_penalty : 1.0f, .seed = g.seed};
    owl_sampler *smp = NULL;
    owl_status st = owl_sampler_init(&smp, (int32_t)s->m->llm.n_vocab, &sp, &s->err);
    if (st != OWL_OK)
        return st;
    owl_model_info info;
    owl_model_get_info(s->m, &info);
    atomic_store(&s->cancel, 0);
    for (int i = 0; i < g.n_predict; i++) {
        if (atomic_load(&s->cancel)) {
            st = owl_err_set(&s->err, OWL_E_CANCELLED, "generate: cancelled after %d tokens", i);
            break;
        }
        int32_t tok;
        if ((st = owl_sampler_sample(smp, s->logits, s->history, (size_t)s->n_past, &tok, &s->err)))
            break;
        if (tokens)
            tokens[i] = tok;
        if (n_tokens)
            *n_tokens = i + 1;
        if (on_token && on_token(user, tok)) {
            st = owl_err_set(&s->err, OWL_E_CANCELLED, "generate: stopped by the callback after %d tokens",
                             i + 1);
            break;
        }
        if (tok == info.eos_id && !g.ignore_eos)
            break;
        if ((st = owl_session_decode(s, tok, NULL)) != OWL_OK)
            break;
    }
    owl_sampler_free(smp);
    return st;
}
