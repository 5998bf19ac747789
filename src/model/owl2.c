/* owl2.c - the owl2 driver on a session: image encoding, splicing of the 65
 * visual rows at each -200 placeholder (modeling_mplug_owl2.py), prefill,
 * incremental decode, and the stage API (design.md section 6). Sessions are
 * made in session.c, generation (sampling) is generate.c.
 *
 * Positions are 0..L-1 over the spliced sequence; modality 1 for the visual
 * rows (queries + vit_eos), 0 for every text token; a decode step is always
 * text (spec section 3.4). The KV cache slot of a position is the position. */
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "common.h"
#include "parts.h"

/* ---------------------------------------------------------------- images */

/* Check the pixel count; OWL_OK or the error (err set). */
static owl_status check_pixels(owl_session *s, const float *pixels, size_t n_floats, const char *what)
{
    const owl_model *m = s->m;
    if (!m->has_vision)
        return owl_err_set(&s->err, OWL_E_STATE, "%s: model has no vision tower", what);
    const uint64_t want = (uint64_t)m->vit.channels * (uint64_t)m->vit.image_size * (uint64_t)m->vit.image_size;
    if (!pixels || n_floats != want)
        return owl_err_set(&s->err, OWL_E_INVALID, "%s: %zu floats, want %llu (%lldx%lldx%lld)", what, n_floats,
                           (unsigned long long)want, (long long)m->vit.channels, (long long)m->vit.image_size,
                           (long long)m->vit.image_size);
    return OWL_OK;
}

/* Run the vision tower and the abstractor into feat and store a copy in the
 * image cache (when on) under key; OWL_E_CANCELLED (nothing stored) when
 * owl_session_cancel_when's word moved on. */
static owl_status encode_and_store(owl_session *s, const float *pixels, const uint8_t key[32], float *feat,
                                   const char *what)
{
    double t0 = owl_now_ms();
    owl_vit_forward(s, pixels);
    if (!owl_session_stopped(s))
        owl_abs_forward(s, feat);
    if (owl_session_stopped(s))
        return owl_err_set(&s->err, OWL_E_CANCELLED, "%s: cancelled", what);
    if (s->icache.cap > 0)
        owl_icache_put(&s->icache, key, feat, owl_now_ms() - t0);
    return OWL_OK;
}

owl_status owl_session_encode_image(owl_session *s, const float *pixels, size_t n_floats, float *out)
{
    const owl_model *m = s->m;
    owl_status st = check_pixels(s, pixels, n_floats, "encode_image");
    if (st != OWL_OK)
        return st;
    if (s->n_images >= OWL_MAX_IMAGES)
        return owl_err_set(&s->err, OWL_E_LIMIT, "encode_image: %d images held (max %d)", s->n_images,
                           OWL_MAX_IMAGES);
    size_t n = (size_t)(m->image_tokens * m->llm.d);
    float *feat = malloc(sizeof(float) * n);
    if (!feat)
        return owl_err_set(&s->err, OWL_E_NOMEM, "encode_image: cannot allocate %zu floats", n);
    /* a picture seen before (image_cache.h): its stored rows, else compute and store them */
    uint8_t key[32];
    const float *hit = NULL;
    if (s->icache.cap > 0) {
        owl_icache_key(pixels, m->vit.channels, m->vit.image_size, key);
        hit = owl_icache_find(&s->icache, key);
    }
    if (hit)
        memcpy(feat, hit, sizeof(float) * n);
    else if ((st = encode_and_store(s, pixels, key, feat, "encode_image")) != OWL_OK) {
        free(feat);
        return st;
    }
    s->images[s->n_images++] = feat;
    if (out)
        memcpy(out, feat, sizeof(float) * n);
    return OWL_OK;
}

owl_status owl_session_warm_image(owl_session *s, const float *pixels, size_t n_floats, int *encoded)
{
    const owl_model *m = s->m;
    if (encoded)
        *encoded = 0;
    owl_status st = check_pixels(s, pixels, n_floats, "warm_image");
    if (st != OWL_OK || s->icache.cap <= 0)
        return st;
    uint8_t key[32];
    owl_icache_key(pixels, m->vit.channels, m->vit.image_size, key);
    if (owl_icache_touch(&s->icache, key))
        return OWL_OK;
    size_t n = (size_t)(m->image_tokens * m->llm.d);
    float *feat = malloc(sizeof(float) * n);
    if (!feat)
        return owl_err_set(&s->err, OWL_E_NOMEM, "warm_image: cannot allocate %zu floats", n);
    s->icache.misses++; /* an encode computed and stored, as encode_image's miss */
    st = encode_and_store(s, pixels, key, feat, "warm_image");
    free(feat);
    if (encoded && st == OWL_OK)
        *encoded = 1;
    return st;
}

void owl_session_image_cache_stats(const owl_session *s, owl_image_cache_stats *out)
{
    const owl_icache *c = &s->icache;
    out->capacity = c->cap;
    out->entries = owl_icache_entries(c);
    out->bytes = (size_t)out->entries * c->n_floats * sizeof(float);
    out->hits = c->hits;
    out->misses = c->misses;
    out->saved_ms = c->saved_ms;
}

/* ---------------------------------------------------------------- splicing */

int64_t owl_model_expanded_len(const owl_model *m, const int32_t *ids, int64_t n)
{
    if (n < 0 || (!ids && n > 0))
        return -1;
    int64_t L = 0;
    for (int64_t i = 0; i < n; i++)
        L += ids[i] == OWL_IMAGE_TOKEN ? (m->has_vision ? m->image_tokens : 1) : 1;
    return L;
}


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

owl_status owl_session_prefill(owl_session *s, const int32_t *ids, int64_t n_ids, float *all_logits,
                               int64_t *n_pos_out)
{
    const owl_model *m = s->m;
    if (!owl_model_is_whole(m))
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
        if (owl_session_stopped(s))
            return owl_err_set(&s->err, OWL_E_CANCELLED, "prefill: cancelled after %lld of %lld positions",
                               (long long)a, (long long)L);
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
    if (!owl_model_is_whole(m))
        return owl_err_set(&s->err, OWL_E_STATE, "decode: model holds only a stage (use the stage API)");
    if (token < 0 || token >= m->llm.n_vocab)
        return owl_err_set(&s->err, OWL_E_INVALID, "decode: token id %d outside 0..%lld", (int)token,
                           (long long)m->llm.n_vocab - 1);
    if (s->n_past >= s->n_ctx)
        return owl_err_set(&s->err, OWL_E_LIMIT, "decode: context full (n_ctx %lld)", (long long)s->n_ctx);
    owl_llm_embed(s, &token, 1, s->hidden);
    owl_llm_layers(s, 0, (int)m->llm.n_layers, s->hidden, 1, s->n_past, NULL);
    if (owl_session_stopped(s))
        return owl_err_set(&s->err, OWL_E_CANCELLED, "decode: cancelled");
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
        if (owl_session_stopped(s))
            return owl_err_set(&s->err, OWL_E_CANCELLED, "run_layers: cancelled after %lld of %lld rows",
                               (long long)a, (long long)n);
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
