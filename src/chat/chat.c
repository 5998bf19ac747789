/* chat.c - the conversation (owl_chat_*, declared in src/owlet.h).
 *
 * One owl_chat on a session holds the turns and images that become the
 * mplug_owl2 prompt, the ids the KV cache holds, and the generation state
 * (sampler, stop conditions, UTF-8-safe token stream). The CLI and the wasm
 * ABI (wasm_glue/api.c) both drive it; nothing about the conversation lives
 * outside this file.
 *
 * Prefix reuse: the KV cache mirrors `hist`, the unexpanded ids run so far. A
 * new turn re-renders the whole conversation, keeps the common prefix with
 * hist and runs only the rest, so a multi-turn prompt equals the reference's
 * full re-tokenisation. Images: each prefill splices from the session's first
 * encoded image, so a turn's images are encoded after the previous turn's were
 * cleared (the KV cache already holds their rows).
 *
 * Two ways to run (design.md sections 6 and 7):
 *   whole model  owl_chat_ask, then owl_chat_step until it returns 0
 *   pipeline     first stage: owl_chat_prepare, owl_chat_embed (the prompt
 *                part, later each fed-back token) and owl_chat_push_token
 *                (the id the last stage sampled); last stage: owl_chat_sample
 *                (final norm + head on the last row, then the sampler).
 * Both sample with the same sampler over the same history, so they give the
 * same ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../image/image.h"
#include "../owlet.h"
#include "../text/sampler.h"
#include "../text/template.h"
#include "../text/tokenizer.h"

#define MAX_TURNS 4096
#define MAX_STOPS 64
#define MAX_STOP_BYTES 16384

typedef struct {
    int role;
    char *text;
    int n_images;
} turn;

typedef struct {
    int32_t *v;
    int64_t n, cap;
} ids;

struct owl_chat {
    owl_err err;
    const owl_model *m;
    owl_session *s;
    owl_model_info info;
    owl_tokenizer *tok;
    int64_t n_ctx;
    /* image preprocessing: the model's settings (one place) */
    float mean[3], std[3];
    uint8_t pad[3];
    owl_image_aspect aspect;
    /* the conversation */
    turn *turns;
    int n_turns;
    int pending_images; /* encoded for the next user turn */
    int unrun_images;   /* encoded, not yet in the KV cache */
    ids hist;           /* unexpanded ids in the KV cache */
    ids delta;          /* prepared, not yet run */
    int64_t delta_pos0, delta_rows;
    int priming;        /* the delta is a prime: the next turn's known part, no turn of its own */
    int64_t primed_at;  /* hist.n before a prime that ran (its images are pending), else -1 */
    /* sampling (the stage that has the head) */
    owl_sampler *smp;
    ids shist;     /* the repetition penalty's ids */
    float *logits; /* n_vocab: the head's output (models with a head) */
    const float *last_logits; /* what the last sample drew from */
    /* streaming (the stage that has the conversation) */
    owl_stopper stop;
    int stop_live;
    owl_tok_stream ts;
    char *tbuf, *piece, *answer;
    size_t tcap, pcap, n_piece, n_answer, cap_answer;
    int32_t pending; /* sampled, not yet fed; -1 none */
    int32_t last_id;
    int gen_done, reason;
    owl_chat_stats stats;
};

static owl_status sfail(owl_chat *c, owl_status st)
{
    return owl_err_set(&c->err, st, "%s", owl_session_error(c->s));
}

static owl_status ids_push(owl_chat *c, ids *a, const int32_t *v, int64_t n)
{
    if (a->n + n > a->cap) {
        int64_t cap = (a->n + n) * 2 + 64;
        int32_t *p = realloc(a->v, sizeof(int32_t) * (size_t)cap);
        if (!p)
            return owl_err_set(&c->err, OWL_E_NOMEM, "chat: %lld ids", (long long)cap);
        a->v = p;
        a->cap = cap;
    }
    memcpy(a->v + a->n, v, sizeof(int32_t) * (size_t)n);
    a->n += n;
    return OWL_OK;
}

/* ---------------------------------------------------------------- set-up */

static void get_f32x3(const owl_gguf *g, const char *key, float out[3], const float dflt[3])
{
    const void *d;
    uint64_t n;
    memcpy(out, dflt, 3 * sizeof(float));
    if (owl_gguf_get_arr(g, key, OWL_GGUF_FLOAT32, &d, &n, NULL) == OWL_OK && n == 3)
        memcpy(out, d, 3 * sizeof(float));
}

/* mean/std (CLIP's when absent), pad colour (from the mean when absent) and
 * aspect mode (the override, else the model's, else pad) from the GGUF. */
static owl_status image_config(owl_chat *c, const char *aspect_override)
{
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    const owl_gguf *g = owl_model_gguf(c->m);
    get_f32x3(g, "mplug-owl2.image.mean", c->mean, clip_mean);
    get_f32x3(g, "mplug-owl2.image.std", c->std, clip_std);
    owl_image_pad_color_from_mean(c->mean, c->pad);
    const void *pd;
    uint64_t pn;
    if (owl_gguf_get_arr(g, "mplug-owl2.image.pad_color", OWL_GGUF_UINT8, &pd, &pn, NULL) == OWL_OK &&
        pn == 3)
        memcpy(c->pad, pd, 3);
    char name[16] = "pad";
    owl_gguf_str s;
    if (aspect_override && *aspect_override)
        snprintf(name, sizeof name, "%s", aspect_override);
    else if (owl_gguf_get_str(g, "mplug-owl2.image.aspect", &s, NULL) == OWL_OK && s.len < sizeof name) {
        memcpy(name, s.data, s.len);
        name[s.len] = 0;
    }
    return owl_image_aspect_from_name(name, &c->aspect, &c->err);
}

owl_status owl_chat_init(const owl_model *m, owl_session *s, const owl_chat_opts *opts, owl_chat **out,
                         owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "chat: out is NULL");
    *out = NULL;
    if (!m || !s)
        return owl_err_set(err, OWL_E_INVALID, "chat: model or session is NULL");
    owl_chat *c = calloc(1, sizeof *c);
    if (!c)
        return owl_err_set(err, OWL_E_NOMEM, "chat: context");
    c->m = m;
    c->s = s;
    c->pending = c->last_id = -1;
    c->primed_at = -1;
    owl_model_get_info(m, &c->info);
    c->n_ctx = owl_session_n_ctx(s);
    owl_status st = owl_tokenizer_init_gguf(&c->tok, owl_model_gguf(m), &c->err);
    if (st == OWL_OK && c->info.has_vision)
        st = image_config(c, opts ? opts->aspect : NULL);
    if (st == OWL_OK && c->info.has_head && !(c->logits = malloc(sizeof(float) * (size_t)c->info.n_vocab)))
        st = owl_err_set(&c->err, OWL_E_NOMEM, "chat: %lld logits", (long long)c->info.n_vocab);
    if (st != OWL_OK) {
        owl_err_set(err, st, "%s", c->err.msg);
        owl_chat_free(c);
        return st;
    }
    owl_err_clear(&c->err); /* optional keys looked up on the way leave messages */
    *out = c;
    return OWL_OK;
}

static void gen_free(owl_chat *c)
{
    owl_sampler_free(c->smp);
    c->smp = NULL;
    if (c->stop_live)
        owl_stopper_free(&c->stop);
    c->stop_live = 0;
    free(c->tbuf);
    free(c->piece);
    c->tbuf = c->piece = NULL;
    c->pending = -1;
    c->n_answer = 0;
}

static void turns_clear(owl_chat *c)
{
    for (int i = 0; i < c->n_turns; i++)
        free(c->turns[i].text);
    c->n_turns = 0;
    c->pending_images = c->unrun_images = 0;
    c->hist.n = c->delta.n = 0;
    c->priming = 0;
    c->primed_at = -1;
}

void owl_chat_free(owl_chat *c)
{
    if (!c)
        return;
    gen_free(c);
    turns_clear(c);
    owl_tokenizer_free(c->tok);
    free(c->turns);
    free(c->hist.v);
    free(c->delta.v);
    free(c->shist.v);
    free(c->logits);
    free(c->answer);
    free(c);
}

const char *owl_chat_error(const owl_chat *c) { return c ? c->err.msg : "no chat"; }

void owl_chat_reset(owl_chat *c)
{
    gen_free(c);
    turns_clear(c);
    owl_session_reset(c->s);
}

void owl_chat_get_stats(const owl_chat *c, owl_chat_stats *out) { *out = c->stats; }

const char *owl_chat_aspect(const owl_chat *c)
{
    static const char *names[] = {"stretch", "pad", "crop"};
    return c->info.has_vision ? names[c->aspect] : "";
}

/* ---------------------------------------------------------------- images */

static owl_status check_rgba(owl_chat *c, const uint8_t *rgba, int w, int h, size_t stride, const char *what)
{
    if (!c->info.has_vision)
        return owl_err_set(&c->err, OWL_E_STATE, "%s: this model (stage) has no vision tower", what);
    if (!rgba || w <= 0 || h <= 0 || stride / 4 < (size_t)w)
        return owl_err_set(&c->err, OWL_E_INVALID, "%s: %dx%d pixels, stride %zu (want >= %d)", what, w, h,
                           stride, w > 0 ? 4 * w : 0);
    return OWL_OK;
}

/* The picture as the model's input pixels (malloc'd into *px, *n floats). */
static owl_status preprocess(owl_chat *c, const uint8_t *rgba, int w, int h, size_t stride, const char *what,
                             float **px, size_t *n)
{
    *px = NULL;
    owl_status st = check_rgba(c, rgba, w, h, stride, what);
    if (st != OWL_OK)
        return st;
    owl_image img = {0};
    st = owl_image_from_rgba(rgba, w, h, stride, &img, &c->err);
    if (st != OWL_OK)
        return st;
    *n = (size_t)(c->info.channels * c->info.image_size * c->info.image_size);
    *px = malloc(sizeof(float) * *n);
    if (!*px)
        st = owl_err_set(&c->err, OWL_E_NOMEM, "%s: %zu floats", what, *n);
    else
        st = owl_image_preprocess(&img, (int)c->info.image_size, c->aspect, c->mean, c->std, c->pad, *px, NULL,
                                  &c->err);
    owl_image_free(&img);
    if (st != OWL_OK) {
        free(*px);
        *px = NULL;
    }
    return st;
}

owl_status owl_chat_add_image_rgba(owl_chat *c, const uint8_t *rgba, int w, int h, size_t stride)
{
    owl_err_clear(&c->err);
    owl_status st = check_rgba(c, rgba, w, h, stride, "add_image");
    if (st != OWL_OK)
        return st;
    if (c->pending_images >= OWL_MAX_IMAGES)
        return owl_err_set(&c->err, OWL_E_LIMIT, "add_image: %d images in one turn (max %d)",
                           c->pending_images, OWL_MAX_IMAGES);
    float *px;
    size_t n;
    st = preprocess(c, rgba, w, h, stride, "add_image", &px, &n);
    if (st != OWL_OK)
        return st;
    if (c->unrun_images == 0)
        owl_session_clear_images(c->s); /* earlier turns' rows are in the KV cache */
    if ((st = owl_session_encode_image(c->s, px, n, NULL)) != OWL_OK)
        sfail(c, st);
    else {
        c->pending_images++;
        c->unrun_images++;
        c->stats.images++;
    }
    free(px);
    return st;
}

owl_status owl_chat_warm_image_rgba(owl_chat *c, const uint8_t *rgba, int w, int h, size_t stride, int *encoded)
{
    owl_err_clear(&c->err);
    if (encoded)
        *encoded = 0;
    float *px;
    size_t n;
    owl_status st = preprocess(c, rgba, w, h, stride, "warm_image", &px, &n);
    if (st != OWL_OK)
        return st;
    if ((st = owl_session_warm_image(c->s, px, n, encoded)) != OWL_OK)
        sfail(c, st);
    free(px);
    return st;
}

/* Encoded bytes (PNG, JPEG, ...) as RGBA, decoded like the reference (stb_image). */
static owl_status decode_rgba(owl_chat *c, const void *data, size_t size, const char *what, uint8_t **rgba, int *w,
                              int *h)
{
    *rgba = NULL;
    if (!data || size == 0)
        return owl_err_set(&c->err, OWL_E_INVALID, "%s: %zu bytes of image data", what, size);
    owl_image img = {0};
    owl_status st = owl_image_decode(data, size, &img, NULL, &c->err);
    if (st != OWL_OK)
        return st;
    size_t np = (size_t)img.w * (size_t)img.h;
    if (!(*rgba = malloc(np * 4))) {
        owl_image_free(&img);
        return owl_err_set(&c->err, OWL_E_NOMEM, "%s: %dx%d RGBA", what, img.w, img.h);
    }
    for (size_t i = 0; i < np; i++) {
        memcpy(*rgba + 4 * i, img.rgb + 3 * i, 3);
        (*rgba)[4 * i + 3] = 255;
    }
    *w = img.w;
    *h = img.h;
    owl_image_free(&img);
    return OWL_OK;
}

owl_status owl_chat_add_image_encoded(owl_chat *c, const void *data, size_t size)
{
    owl_err_clear(&c->err);
    uint8_t *rgba;
    int w, h;
    owl_status st = decode_rgba(c, data, size, "add_image", &rgba, &w, &h);
    if (st == OWL_OK)
        st = owl_chat_add_image_rgba(c, rgba, w, h, 4 * (size_t)w);
    free(rgba);
    return st;
}

owl_status owl_chat_warm_image_encoded(owl_chat *c, const void *data, size_t size, int *encoded)
{
    owl_err_clear(&c->err);
    if (encoded)
        *encoded = 0;
    uint8_t *rgba;
    int w, h;
    owl_status st = decode_rgba(c, data, size, "warm_image", &rgba, &w, &h);
    if (st == OWL_OK)
        st = owl_chat_warm_image_rgba(c, rgba, w, h, 4 * (size_t)w, encoded);
    free(rgba);
    return st;
}

/* ---------------------------------------------------------------- turns */

static owl_status push_turn(owl_chat *c, int role, const char *text, size_t len, int n_images)
{
    if (c->n_turns >= MAX_TURNS)
        return owl_err_set(&c->err, OWL_E_LIMIT, "chat: %d turns (max %d)", c->n_turns, MAX_TURNS);
    if (!c->turns && !(c->turns = calloc(MAX_TURNS, sizeof *c->turns)))
        return owl_err_set(&c->err, OWL_E_NOMEM, "chat: turns");
    char *t = malloc(len + 1);
    if (!t)
        return owl_err_set(&c->err, OWL_E_NOMEM, "chat: %zu bytes of text", len);
    memcpy(t, text, len);
    t[len] = 0;
    c->turns[c->n_turns++] = (turn){role, t, n_images};
    return OWL_OK;
}

static void pop_turn(owl_chat *c)
{
    free(c->turns[--c->n_turns].text);
    c->delta.n = 0;
}

/* A delta that failed to run: a question's turn goes with it; a prime has none. */
static void drop_delta(owl_chat *c)
{
    if (c->priming) {
        c->delta.n = 0;
        c->priming = 0;
    } else {
        pop_turn(c);
    }
}

owl_status owl_chat_push_turn(owl_chat *c, int role, const char *text)
{
    owl_err_clear(&c->err);
    if (!text || (role != OWL_ROLE_USER && role != OWL_ROLE_ASSISTANT) || role != c->n_turns % 2)
        return owl_err_set(&c->err, OWL_E_INVALID,
                           "push_turn: role %d after %d turns (roles alternate from user)", role, c->n_turns);
    owl_status st = push_turn(c, role, text, strlen(text), role == OWL_ROLE_USER ? c->pending_images : 0);
    if (st == OWL_OK && role == OWL_ROLE_USER)
        c->pending_images = 0;
    return st;
}

/* The whole conversation rendered and tokenised. */
static owl_status render_ids(owl_chat *c, int32_t **out, size_t *n_out)
{
    owl_chat_msg *msgs = malloc(sizeof *msgs * (size_t)c->n_turns);
    if (!msgs)
        return owl_err_set(&c->err, OWL_E_NOMEM, "ask: %d turns", c->n_turns);
    for (int i = 0; i < c->n_turns; i++)
        msgs[i] = (owl_chat_msg){c->turns[i].role, c->turns[i].text, c->turns[i].n_images};
    /* message text stays text: a typed "</s>" or "<|image|>" is not parsed */
    owl_status st = owl_chat_tokenize_msgs(c->tok, msgs, c->n_turns, 1, 0, 0, out, n_out, NULL, &c->err);
    free(msgs);
    return st;
}

/* Keep the common prefix of the cache and the new prompt; the rest becomes
 * the delta. Context policy: a prompt that does not fit is refused before
 * anything runs (the cache and the chat stay as they were). */
static owl_status set_delta(owl_chat *c, const int32_t *v, int64_t n)
{
    int64_t k = 0, img = 0;
    while (k < c->hist.n && k < n && c->hist.v[k] == v[k])
        k++;
    if (k == n && k > 0)
        k--; /* always run at least one id, for fresh logits */
    for (int64_t i = k; i < n; i++)
        img += v[i] == OWL_IMAGE_TOKEN;
    if (img != c->unrun_images)
        return owl_err_set(&c->err, OWL_E_STATE,
                           "ask: the new prompt part holds %lld image(s), %d were added for this turn "
                           "(conversation diverged before an earlier image; reset the chat)",
                           (long long)img, c->unrun_images);
    int64_t need = owl_model_expanded_len(c->m, v, n);
    if (need > c->n_ctx)
        return owl_err_set(&c->err, OWL_E_LIMIT,
                           "ask: the conversation needs %lld positions, the context holds %lld "
                           "(start a new chat, or ask with truncate: 'history')",
                           (long long)need, (long long)c->n_ctx);
    c->delta.n = 0;
    owl_status st = ids_push(c, &c->delta, v + k, n - k);
    if (st != OWL_OK)
        return st;
    c->delta_pos0 = owl_model_expanded_len(c->m, v, k);
    c->delta_rows = need - c->delta_pos0;
    c->hist.n = k;
    return OWL_OK;
}

owl_status owl_chat_prepare(owl_chat *c, const char *text, int64_t *rows, int64_t *pos0)
{
    owl_err_clear(&c->err);
    if (!text)
        return owl_err_set(&c->err, OWL_E_INVALID, "ask: text is NULL");
    if (!c->info.has_embed)
        return owl_err_set(&c->err, OWL_E_STATE, "ask: this model (stage) has no token embeddings");
    if (c->n_turns % 2 != 0)
        return owl_err_set(&c->err, OWL_E_STATE, "ask: the previous answer was not finished (gen_end)");
    owl_status st = push_turn(c, OWL_ROLE_USER, text, strlen(text), c->pending_images);
    if (st != OWL_OK)
        return st;
    int32_t *v = NULL;
    size_t n = 0;
    if ((st = render_ids(c, &v, &n)) == OWL_OK)
        st = set_delta(c, v, (int64_t)n);
    free(v);
    if (st != OWL_OK) {
        pop_turn(c);
        return st;
    }
    if (rows)
        *rows = c->delta_rows;
    if (pos0)
        *pos0 = c->delta_pos0;
    return OWL_OK;
}

/* The delta is in the cache now. A prime's images stay pending: they belong
 * to the next question's turn, which is rendered with them. */
static owl_status commit_delta(owl_chat *c)
{
    owl_status st = ids_push(c, &c->hist, c->delta.v, c->delta.n);
    c->stats.prompt_rows += c->delta_rows;
    if (!c->priming) {
        c->pending_images = 0;
        c->primed_at = -1;
    }
    c->unrun_images = 0;
    c->delta.n = 0;
    c->priming = 0;
    return st;
}

owl_status owl_chat_prime(owl_chat *c, int64_t *rows, int64_t *pos0)
{
    owl_err_clear(&c->err);
    if (rows)
        *rows = 0;
    if (pos0)
        *pos0 = 0;
    if (!c->info.has_embed)
        return owl_err_set(&c->err, OWL_E_STATE, "prime: this model (stage) has no token embeddings");
    if (c->n_turns % 2 != 0)
        return owl_err_set(&c->err, OWL_E_STATE, "prime: the previous answer was not finished (gen_end)");
    if (c->delta.n > 0)
        return owl_err_set(&c->err, OWL_E_STATE, "prime: a prepared prompt part has not run");
    if (c->unrun_images == 0)
        return OWL_OK; /* nothing new: the cache holds all that is known */
    /* the next question with no text yet: its images come before its text, so the
     * ids up to its last image are the same whatever the question will be */
    owl_status st = push_turn(c, OWL_ROLE_USER, "", 0, c->pending_images);
    if (st != OWL_OK)
        return st;
    int32_t *v = NULL;
    size_t n = 0;
    st = render_ids(c, &v, &n);
    free(c->turns[--c->n_turns].text);
    int64_t last = (int64_t)n - 1;
    while (st == OWL_OK && last >= 0 && v[last] != OWL_IMAGE_TOKEN)
        last--;
    if (st == OWL_OK && last < 0)
        st = owl_err_set(&c->err, OWL_E_STATE, "prime: the rendered turn holds no image");
    if (st == OWL_OK)
        st = set_delta(c, v, last + 1);
    free(v);
    if (st != OWL_OK)
        return st;
    c->priming = 1;
    c->primed_at = c->hist.n;
    if (rows)
        *rows = c->delta_rows;
    if (pos0)
        *pos0 = c->delta_pos0;
    return OWL_OK;
}

owl_status owl_chat_clear_images(owl_chat *c)
{
    owl_err_clear(&c->err);
    if (c->delta.n > 0)
        return owl_err_set(&c->err, OWL_E_STATE, "clear_images: a prepared prompt part has not run");
    if (c->primed_at >= 0) { /* the primed rows go: another picture may take their place */
        c->hist.n = c->primed_at;
        owl_session_truncate(c->s, owl_model_expanded_len(c->m, c->hist.v, c->hist.n));
    }
    c->primed_at = -1;
    c->pending_images = c->unrun_images = 0;
    owl_session_clear_images(c->s);
    return OWL_OK;
}

owl_status owl_chat_run(owl_chat *c, float *all_logits)
{
    owl_err_clear(&c->err);
    if (c->delta.n == 0)
        return owl_err_set(&c->err, OWL_E_STATE, "run: nothing prepared");
    owl_status st = owl_session_truncate(c->s, c->delta_pos0);
    if (st == OWL_OK)
        st = owl_session_prefill(c->s, c->delta.v, c->delta.n, all_logits, NULL);
    if (st != OWL_OK) {
        sfail(c, st);
        owl_session_truncate(c->s, c->delta_pos0);
        drop_delta(c);
        return st;
    }
    return commit_delta(c);
}

owl_status owl_chat_ask(owl_chat *c, const char *text)
{
    owl_status st = owl_chat_prepare(c, text, NULL, NULL);
    return st != OWL_OK ? st : owl_chat_run(c, NULL);
}

owl_status owl_chat_embed(owl_chat *c, float *x, uint8_t *modality, int64_t cap_rows, int64_t *rows,
                          int64_t *pos0)
{
    owl_err_clear(&c->err);
    if (c->delta.n > 0) { /* the prepared prompt part */
        if (cap_rows < c->delta_rows)
            return owl_err_set(&c->err, OWL_E_INVALID, "embed: %lld rows, room for %lld",
                               (long long)c->delta_rows, (long long)cap_rows);
        owl_status st = owl_session_embed(c->s, c->delta.v, c->delta.n, x, modality);
        if (st != OWL_OK) {
            sfail(c, st);
            drop_delta(c);
            return st;
        }
        *rows = c->delta_rows;
        *pos0 = c->delta_pos0;
        return commit_delta(c);
    }
    if (c->pending < 0)
        return owl_err_set(&c->err, OWL_E_STATE, "embed: nothing prepared and no token to feed");
    if (cap_rows < 1)
        return owl_err_set(&c->err, OWL_E_INVALID, "embed: no room for a row");
    owl_status st = owl_session_embed(c->s, &c->pending, 1, x, modality);
    if (st != OWL_OK)
        return sfail(c, st);
    *rows = 1;
    *pos0 = owl_model_expanded_len(c->m, c->hist.v, c->hist.n);
    c->stats.decoded++;
    st = ids_push(c, &c->hist, &c->pending, 1);
    c->pending = -1;
    return st;
}

/* ---------------------------------------------------------------- generation */

owl_chat_gen owl_chat_gen_default(void)
{
    owl_chat_gen g;
    memset(&g, 0, sizeof g);
    g.max_tokens = 256;
    g.top_p = 1.0f;
    g.repetition_penalty = 1.0f;
    return g;
}

static owl_status sampler_begin(owl_chat *c, const owl_chat_gen *g, const int32_t *history, int64_t n)
{
    owl_sampler_free(c->smp);
    c->smp = NULL;
    owl_sampler_params p = {g->temperature, g->top_k, g->top_p, g->min_p, g->repetition_penalty, g->seed};
    owl_status st = owl_sampler_init(&c->smp, (int32_t)c->info.n_vocab, &p, &c->err);
    c->shist.n = 0;
    if (st == OWL_OK && n > 0)
        st = ids_push(c, &c->shist, history, n);
    return st;
}

static owl_status stream_begin(owl_chat *c, const owl_chat_gen *g)
{
    if (g->n_stops < 0 || g->n_stops > MAX_STOPS || (g->n_stops > 0 && !g->stops))
        return owl_err_set(&c->err, OWL_E_INVALID, "generate: %d stop strings (max %d)", g->n_stops, MAX_STOPS);
    for (int i = 0; i < g->n_stops; i++) {
        if (!g->stops[i])
            return owl_err_set(&c->err, OWL_E_INVALID, "generate: stop string %d is NULL", i);
        if (strlen(g->stops[i]) > MAX_STOP_BYTES)
            return owl_err_set(&c->err, OWL_E_LIMIT, "generate: a stop string of %zu bytes (max %d)",
                               strlen(g->stops[i]), MAX_STOP_BYTES);
    }
    /* Built-in stop rule: an answer ends where the model starts writing the next
     * user turn of the template ("USER:"), as if it had said eos. */
    const char *stops[MAX_STOPS + 1] = {"USER:"};
    for (int i = 0; i < g->n_stops; i++)
        stops[i + 1] = g->stops[i];
    owl_status st = owl_stopper_init(&c->stop, c->info.eos_id, g->max_tokens, stops, g->n_stops + 1, &c->err);
    if (st != OWL_OK)
        return st;
    c->stop_live = 1;
    owl_tok_stream_init(&c->ts, c->tok);
    c->tcap = owl_tok_stream_max_out(c->tok);
    c->pcap = owl_stopper_out_cap(&c->stop, c->tcap) + c->tcap + 8;
    c->tbuf = malloc(c->tcap);
    c->piece = malloc(c->pcap + 1);
    if (!c->tbuf || !c->piece)
        return owl_err_set(&c->err, OWL_E_NOMEM, "generate: piece buffers");
    return OWL_OK;
}

owl_status owl_chat_gen_begin(owl_chat *c, const owl_chat_gen *g)
{
    owl_err_clear(&c->err);
    if (!g)
        return owl_err_set(&c->err, OWL_E_INVALID, "generate: options are NULL");
    if (c->n_turns % 2 != 1)
        return owl_err_set(&c->err, OWL_E_STATE, "generate: ask a question first");
    gen_free(c);
    owl_status st = sampler_begin(c, g, c->hist.v, c->hist.n);
    if (st == OWL_OK)
        st = stream_begin(c, g);
    if (st != OWL_OK) {
        gen_free(c);
        return st;
    }
    c->gen_done = c->reason = 0;
    c->last_id = -1;
    c->n_piece = 0;
    c->stats.last_tokens = 0;
    return OWL_OK;
}

owl_status owl_chat_sampler_begin(owl_chat *c, const owl_chat_gen *g, const int32_t *history, int64_t n)
{
    owl_err_clear(&c->err);
    if (!g || n < 0 || (n > 0 && !history))
        return owl_err_set(&c->err, OWL_E_INVALID, "sampler: bad arguments (%lld history ids)", (long long)n);
    owl_status st = sampler_begin(c, g, history, n);
    if (st != OWL_OK) {
        owl_sampler_free(c->smp);
        c->smp = NULL;
    }
    return st;
}

static int has_nan(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != x[i])
            return 1;
    return 0;
}

static owl_status sample_logits(owl_chat *c, const float *logits, int32_t *id)
{
    if (!c->smp)
        return owl_err_set(&c->err, OWL_E_STATE, "sample: no sampler (gen_begin first)");
    c->last_logits = logits;
    owl_status st = owl_sampler_sample(c->smp, logits, c->shist.v, (size_t)c->shist.n, id, &c->err);
    if (st == OWL_E_INVALID && has_nan(logits, c->info.n_vocab)) {
        /* the model computed the logits: its file is at fault, not the caller */
        char msg[sizeof c->err.msg];
        memcpy(msg, c->err.msg, sizeof msg);
        return owl_err_set(&c->err, OWL_E_FORMAT, "model: %s", msg);
    }
    if (st == OWL_OK)
        st = ids_push(c, &c->shist, id, 1);
    return st;
}

owl_status owl_chat_sample(owl_chat *c, float *x, int64_t n, int32_t *id)
{
    owl_err_clear(&c->err);
    if (!x || n < 1 || !id)
        return owl_err_set(&c->err, OWL_E_INVALID, "sample: %lld rows", (long long)n);
    float *last = x + (size_t)(n - 1) * (size_t)c->info.d_model;
    owl_status st = owl_session_head(c->s, last, 1, c->logits);
    if (st != OWL_OK)
        return sfail(c, st);
    return sample_logits(c, c->logits, id);
}

static owl_status answer_add(owl_chat *c, const char *s, size_t n)
{
    if (c->n_answer + n + 1 > c->cap_answer) {
        size_t cap = (c->n_answer + n + 1) * 2;
        char *p = realloc(c->answer, cap);
        if (!p)
            return owl_err_set(&c->err, OWL_E_NOMEM, "generate: answer of %zu bytes", cap);
        c->answer = p;
        c->cap_answer = cap;
    }
    memcpy(c->answer + c->n_answer, s, n);
    c->n_answer += n;
    return OWL_OK;
}

/* Generation ended without a stop rule (context full): release the text the
 * stopper and the token stream held back. */
static owl_status finish_held(owl_chat *c, int reason)
{
    size_t k = 0;
    c->n_piece += owl_stopper_flush(&c->stop, c->piece + c->n_piece, c->pcap - c->n_piece);
    owl_tok_stream_finish(&c->ts, c->tbuf, c->tcap, &k, NULL);
    if (k && c->n_piece + k <= c->pcap) {
        memcpy(c->piece + c->n_piece, c->tbuf, k);
        c->n_piece += k;
    }
    c->gen_done = 1;
    c->reason = reason;
    return OWL_OK;
}

int owl_chat_push_token(owl_chat *c, int32_t id)
{
    owl_err_clear(&c->err);
    if (!c->stop_live || c->gen_done)
        return owl_err_set(&c->err, OWL_E_STATE, "generate: not started or already finished");
    if (c->pending >= 0)
        return owl_err_set(&c->err, OWL_E_STATE, "generate: the previous token was not fed (embed)");
    size_t nt = 0;
    owl_status st = owl_tok_stream_push(&c->ts, id, c->tbuf, c->tcap, &nt, &c->err);
    if (st != OWL_OK)
        return st;
    c->stats.last_tokens++;
    c->last_id = id;
    c->n_piece = 0;
    int r = owl_stopper_push(&c->stop, id, c->tbuf, nt, c->piece, c->pcap, &c->n_piece);
    if (r == OWL_STOP_NONE || r == OWL_STOP_MAX_TOKENS)
        c->pending = id; /* (at max tokens: counts in hist, its text is in the answer) */
    if (r == OWL_STOP_MAX_TOKENS)
        finish_held(c, OWL_CHAT_LENGTH);
    else if (r != OWL_STOP_NONE) {
        c->gen_done = 1;
        c->reason = r == OWL_STOP_EOS ? OWL_CHAT_EOS : OWL_CHAT_STOP;
    } else if (owl_model_expanded_len(c->m, c->hist.v, c->hist.n) >= c->n_ctx) {
        c->pending = -1; /* context full: a normal end; the token is never fed */
        finish_held(c, OWL_CHAT_CONTEXT);
    }
    c->piece[c->n_piece] = 0;
    if ((st = answer_add(c, c->piece, c->n_piece)) != OWL_OK)
        return st;
    return c->gen_done ? 0 : 1;
}

int owl_chat_step(owl_chat *c)
{
    owl_err_clear(&c->err);
    if (!c->stop_live || c->gen_done)
        return owl_err_set(&c->err, OWL_E_STATE, "generate: not started or already finished");
    if (c->pending >= 0) {
        owl_status st = owl_session_decode(c->s, c->pending, NULL);
        if (st != OWL_OK) {
            c->gen_done = 1;
            c->reason = OWL_CHAT_ERROR;
            return sfail(c, st);
        }
        c->stats.decoded++;
        st = ids_push(c, &c->hist, &c->pending, 1);
        c->pending = -1;
        if (st != OWL_OK)
            return st;
    }
    int32_t id;
    owl_status st = sample_logits(c, owl_session_logits(c->s), &id);
    return st != OWL_OK ? st : owl_chat_push_token(c, id);
}

const char *owl_chat_piece(const owl_chat *c, size_t *len)
{
    if (len)
        *len = c->piece ? c->n_piece : 0;
    return c->piece ? c->piece : "";
}

int owl_chat_reason(const owl_chat *c) { return c->reason; }
const float *owl_chat_logits(const owl_chat *c) { return c->last_logits ? c->last_logits : owl_session_logits(c->s); }
int32_t owl_chat_last_token(const owl_chat *c) { return c->last_id; }

owl_status owl_chat_gen_end(owl_chat *c)
{
    owl_err_clear(&c->err);
    owl_status st = OWL_OK;
    if (c->n_turns % 2 == 1) {
        if (c->stop_live && c->piece && !c->gen_done) {
            /* cancelled: release what the stopper held back into the answer */
            size_t k = owl_stopper_flush(&c->stop, c->piece, c->pcap);
            answer_add(c, c->piece, k);
        }
        st = push_turn(c, OWL_ROLE_ASSISTANT, c->answer ? c->answer : "", c->n_answer, 0);
    }
    c->pending = -1; /* the last sampled token is never fed: the next ask re-renders */
    c->n_answer = 0;
    return st;
}

int64_t owl_chat_history(const owl_chat *c, const int32_t **v)
{
    if (v)
        *v = c->hist.v;
    return c->hist.n;
}

/* ---------------------------------------------------------------- tokenize */

owl_status owl_prompt_tokenize(const owl_gguf *g, const char *text, int chat, int n_images, int parse_special,
                               int32_t **out, size_t *n, owl_err *err)
{
    owl_tokenizer *tok = NULL;
    owl_status st = owl_tokenizer_init_gguf(&tok, g, err);
    if (st != OWL_OK)
        return st;
    if (chat || n_images > 0) {
        owl_chat_msg msg = {OWL_ROLE_USER, text, n_images};
        st = owl_chat_tokenize_msgs(tok, &msg, 1, chat, 0, parse_special, out, n, NULL, err);
    } else {
        owl_encode_opts eo = {.add_bos = 1, .parse_special = parse_special};
        st = owl_tokenizer_encode(tok, text, strlen(text), &eo, out, n, err);
    }
    owl_tokenizer_free(tok);
    return st;
}
