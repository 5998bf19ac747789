/* api.c - the flat C ABI the JS engine worker calls (wasm_glue/engine-worker.mjs).
 *
 * One owl_api context per wasm instance holds a model (on a buffer the JS side
 * malloc'ed and filled chunk by chunk; the context owns it from load on), its
 * tokenizer, one session, one sampler, and the chat state (turns and images)
 * that becomes the mplug_owl2 prompt. Every call takes the context, returns an
 * owl_status (0 ok, negative error) and keeps the message of its last error
 * (owl_api_error); a failed call leaves the context usable.
 *
 * Generation is step-wise so JS can post every piece and check cancellation
 * between tokens without asyncify:
 *   owl_api_ask(ctx, text)        user turn (+ pending images) -> prompt -> prefill
 *   owl_api_gen_begin(ctx, ...)   sampler + stop conditions
 *   loop: owl_api_gen_step(ctx)   feed the previous token, sample the next;
 *                                 > 0: piece ready (owl_api_piece), 0: finished
 *   owl_api_gen_end(ctx)          the answer so far becomes the assistant turn
 *
 * Stages (design.md section 6): a model loaded with a layer range runs its part
 * through owl_api_stage_run / owl_api_stage_head; the first stage also keeps
 * the chat state and prepares rows (owl_api_prepare + owl_api_embed_prepared,
 * owl_api_embed_pending) and samples from logits the last stage computed
 * (owl_api_gen_step_logits).
 *
 * The KV cache mirrors `hist`, the unexpanded ids fed so far. A new turn
 * re-renders the whole conversation, keeps the common prefix with hist and
 * runs only the rest, so multi-turn prompts equal the reference's full
 * re-tokenisation. Images: each prefill splices from the session's first
 * encoded image, so the images of a turn are encoded after the previous ones
 * were cleared (the KV cache already holds their rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define API EMSCRIPTEN_KEEPALIVE
#else
#define API
#endif

#include "../src/image/image.h"
#include "../src/owlet.h"
#include "../src/text/sampler.h"
#include "../src/text/template.h"
#include "../src/text/tokenizer.h"

#define MAX_TURNS 4096

typedef struct {
    int role;
    char *text;
    int n_images;
} turn;

typedef struct {
    owl_err err;
    void *buf;    /* the GGUF (or a stage's byte range), owned */
    void *header; /* partial load: the file's header bytes, owned */
    owl_model *m;
    owl_model_info info;
    owl_tokenizer *tok;
    owl_session *s;
    int n_threads;
    int64_t n_ctx; /* the session's KV positions */
    /* image preprocessing from the GGUF */
    float mean[3], std[3];
    uint8_t pad[3];
    owl_image_aspect aspect;
    /* chat */
    turn *turns;
    int n_turns;
    int pending_images; /* encoded for the next user turn */
    int unrun_images;   /* encoded, not yet in the KV cache */
    int32_t *hist;      /* ids in the KV cache (unexpanded) */
    int64_t n_hist, cap_hist;
    /* prepared prompt delta (stage mode) */
    int32_t *delta;
    int64_t n_delta, delta_pos0, delta_rows;
    /* generation */
    owl_sampler *smp;
    owl_stopper stop;
    int stop_live;
    owl_tok_stream ts;
    char *tbuf, *piece; /* tok stream out, stopper out */
    size_t tcap, pcap, n_piece;
    char *answer;
    size_t n_answer, cap_answer;
    int32_t pending; /* sampled, not yet fed; -1 none */
    int32_t last_id; /* last sampled id; -1 none */
    int gen_done, reason, n_gen;
    /* stats */
    double t_prefill, t_decode, t_image;
    int64_t n_prefill, n_decode, n_images_total;
    char json[1024];
} owl_api;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static owl_status fail(owl_api *a, owl_status st, const char *what, const char *msg)
{
    return owl_err_set(&a->err, st, "%s: %s", what, msg);
}

static owl_status sfail(owl_api *a, owl_status st)
{
    return owl_err_set(&a->err, st, "%s", owl_session_error(a->s));
}

#define CHECK_CTX(a)                                                                               \
    do {                                                                                           \
        if (!(a))                                                                                  \
            return OWL_E_INVALID;                                                                  \
        owl_err_clear(&(a)->err);                                                                  \
    } while (0)
#define NEED_SESSION(a, what)                                                                      \
    do {                                                                                           \
        if (!(a)->s)                                                                               \
            return owl_err_set(&(a)->err, OWL_E_STATE, "%s: no session (load a model first)", what); \
    } while (0)

API owl_api *owl_api_new(void)
{
    owl_api *a = calloc(1, sizeof *a);
    if (a)
        a->pending = a->last_id = -1;
    return a;
}

API int owl_api_error_code(const owl_api *a) { return a ? (int)a->err.code : OWL_E_INVALID; }
API const char *owl_api_error(const owl_api *a) { return a ? a->err.msg : "no context"; }

static void gen_free(owl_api *a)
{
    owl_sampler_free(a->smp);
    a->smp = NULL;
    if (a->stop_live)
        owl_stopper_free(&a->stop);
    a->stop_live = 0;
    free(a->tbuf);
    free(a->piece);
    a->tbuf = a->piece = NULL;
    a->pending = -1;
    a->n_answer = 0;
}

static void chat_clear(owl_api *a)
{
    for (int i = 0; i < a->n_turns; i++)
        free(a->turns[i].text);
    a->n_turns = 0;
    a->pending_images = 0;
    a->unrun_images = 0;
    a->n_hist = 0;
    a->n_delta = 0;
}

API void owl_api_unload(owl_api *a)
{
    if (!a)
        return;
    gen_free(a);
    chat_clear(a);
    owl_session_free(a->s);
    owl_tokenizer_free(a->tok);
    owl_model_free(a->m);
    free(a->buf);
    free(a->header);
    a->header = NULL;
    a->s = NULL;
    a->tok = NULL;
    a->m = NULL;
    a->buf = NULL;
}

API void owl_api_free(owl_api *a)
{
    if (!a)
        return;
    owl_api_unload(a);
    free(a->turns);
    free(a->hist);
    free(a->delta);
    free(a->answer);
    free(a);
}

static void get_f32x3(const owl_gguf *g, const char *key, float out[3], const float dflt[3])
{
    const void *d;
    uint64_t n;
    memcpy(out, dflt, 3 * sizeof(float));
    if (owl_gguf_get_arr(g, key, OWL_GGUF_FLOAT32, &d, &n, NULL) == OWL_OK && n == 3)
        memcpy(out, d, 3 * sizeof(float));
}

static owl_status image_config(owl_api *a, const char *aspect_override)
{
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    const owl_gguf *g = owl_model_gguf(a->m);
    get_f32x3(g, "mplug-owl2.image.mean", a->mean, clip_mean);
    get_f32x3(g, "mplug-owl2.image.std", a->std, clip_std);
    owl_image_pad_color_from_mean(a->mean, a->pad);
    const void *pd;
    uint64_t pn;
    if (owl_gguf_get_arr(g, "mplug-owl2.image.pad_color", OWL_GGUF_UINT8, &pd, &pn, NULL) == OWL_OK &&
        pn == 3)
        memcpy(a->pad, pd, 3);
    char name[16] = "pad";
    owl_gguf_str s;
    if (aspect_override && *aspect_override)
        snprintf(name, sizeof name, "%s", aspect_override);
    else if (owl_gguf_get_str(g, "mplug-owl2.image.aspect", &s, NULL) == OWL_OK && s.len < sizeof name) {
        memcpy(name, s.data, s.len);
        name[s.len] = 0;
    }
    return owl_image_aspect_from_name(name, &a->aspect, &a->err);
}

/* Load the GGUF in buf[0..size) (malloc'ed by the caller; owned by ctx from
 * here on, also on error). Partial load (a stage): header (malloc'ed, owned
 * likewise) holds the file's first header_size bytes, buf the bytes
 * [range_offset, range_offset + size) of a file_size-byte file; header NULL =
 * buf is the whole file. layer_end 0 = all; flags bit 0 no_vision, bit 1
 * no_embed, bit 2 no_head. aspect: "" = the model's, else stretch|pad|crop. */
API int owl_api_load(owl_api *a, void *buf, double size, void *header, double header_size,
                     double range_offset, double file_size, int layer_begin, int layer_end, int flags,
                     const char *aspect)
{
    if (!a) {
        free(buf);
        free(header);
        return OWL_E_INVALID;
    }
    owl_err_clear(&a->err);
    owl_api_unload(a);
    a->buf = buf;
    a->header = header;
    if (!buf || !(size > 0) || size > (double)SIZE_MAX ||
        (header && !(header_size > 0 && header_size <= (double)SIZE_MAX && range_offset >= 0 &&
                     file_size >= range_offset + size && file_size < 9e15))) {
        owl_api_unload(a);
        return owl_err_set(&a->err, OWL_E_INVALID,
                           "load: buffer of %.0f bytes, header of %.0f, range at %.0f of a %.0f-byte file", size,
                           header ? header_size : 0.0, range_offset, file_size);
    }
    owl_model_opts o;
    memset(&o, 0, sizeof o);
    o.layer_begin = layer_begin;
    o.layer_end = layer_end;
    o.no_vision = flags & 1;
    o.no_embed = (flags >> 1) & 1;
    o.no_head = (flags >> 2) & 1;
    if (header) {
        o.header = header;
        o.header_size = (size_t)header_size;
        o.range_offset = (uint64_t)range_offset;
        o.file_size = (uint64_t)file_size;
    }
    owl_status st = owl_model_load_buffer(buf, (size_t)size, &o, &a->m, &a->err);
    if (st == OWL_OK) {
        owl_model_get_info(a->m, &a->info);
        st = owl_tokenizer_init_gguf(&a->tok, owl_model_gguf(a->m), &a->err);
    }
    if (st == OWL_OK && a->info.has_vision)
        st = image_config(a, aspect);
    if (st == OWL_OK)
        owl_err_clear(&a->err); /* optional keys looked up on the way leave messages */
    else {
        owl_err saved = a->err;
        owl_api_unload(a);
        a->err = saved;
    }
    return st;
}

/* kv_f32: 1 = f32 cache, 0 = f16. */
API int owl_api_session(owl_api *a, double n_ctx, double n_batch, int kv_f32, int n_threads)
{
    CHECK_CTX(a);
    if (!a->m)
        return owl_err_set(&a->err, OWL_E_STATE, "session: no model loaded");
    if (!(n_ctx >= 0 && n_ctx < 1e9 && n_batch >= 0 && n_batch < 1e9 && n_threads >= 0 && n_threads <= 64))
        return owl_err_set(&a->err, OWL_E_INVALID, "session: n_ctx %.0f, n_batch %.0f, threads %d out of range",
                           n_ctx, n_batch, n_threads);
    gen_free(a);
    chat_clear(a);
    owl_session_free(a->s);
    a->s = NULL;
    owl_session_opts so = owl_session_opts_default();
    so.n_ctx = (int64_t)n_ctx;
    so.n_batch = (int64_t)n_batch;
    so.kv_type = kv_f32 ? OWL_TYPE_F32 : OWL_TYPE_F16;
    so.n_threads = n_threads > 0 ? n_threads : 1;
    a->n_threads = so.n_threads;
    a->n_ctx = so.n_ctx ? so.n_ctx : (a->info.n_ctx_train < 2048 ? a->info.n_ctx_train : 2048);
    owl_status st = owl_session_init(a->m, &so, &a->s, &a->err);
    if (st != OWL_OK)
        a->n_ctx = 0;
    return st;
}

static void json_str(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            k += (size_t)snprintf(out + k, cap - k, "\\%c", c);
        else if (c < 0x20)
            k += (size_t)snprintf(out + k, cap - k, "\\u%04x", c);
        else
            out[k++] = (char)c;
    }
    out[k] = 0;
}

/* Model info as JSON (valid until the next info/stats call); "" if no model. */
API const char *owl_api_info(owl_api *a)
{
    if (!a || !a->m)
        return "";
    const owl_model_info *i = &a->info;
    char name[160] = "";
    owl_gguf_str s;
    if (owl_gguf_get_str(owl_model_gguf(a->m), "general.name", &s, NULL) == OWL_OK)
        json_str(name, sizeof name, s.data, s.len < 100 ? s.len : 100);
    static const char *aspects[] = {"stretch", "pad", "crop"};
    snprintf(a->json, sizeof a->json,
             "{\"arch\":\"%s\",\"name\":\"%s\",\"n_vocab\":%lld,\"d_model\":%lld,\"n_layers\":%lld,"
             "\"n_ctx_train\":%lld,\"layer_begin\":%d,\"layer_end\":%d,\"has_vision\":%d,\"has_embed\":%d,"
             "\"has_head\":%d,\"image_size\":%lld,\"image_tokens\":%lld,\"bos_id\":%d,\"eos_id\":%d,"
             "\"aspect\":\"%s\",\"n_ctx\":%lld}",
             i->arch, name, (long long)i->n_vocab, (long long)i->d_model, (long long)i->n_layers,
             (long long)i->n_ctx_train, i->layer_begin, i->layer_end, i->has_vision, i->has_embed,
             i->has_head, (long long)i->image_size, (long long)i->image_tokens, (int)i->bos_id,
             (int)i->eos_id, i->has_vision ? aspects[a->aspect] : "", (long long)(a->s ? a->n_ctx : 0));
    return a->json;
}

/* Statistics as JSON. */
API const char *owl_api_stats(owl_api *a)
{
    if (!a)
        return "";
    snprintf(a->json, sizeof a->json,
             "{\"promptTokens\":%lld,\"prefillMs\":%.3f,\"completionTokens\":%lld,\"decodeMs\":%.3f,"
             "\"images\":%lld,\"imageEncodeMs\":%.3f,\"threads\":%d,\"nPast\":%lld,\"lastTokens\":%d}",
             (long long)a->n_prefill, a->t_prefill, (long long)a->n_decode, a->t_decode,
             (long long)a->n_images_total, a->t_image, a->n_threads,
             (long long)(a->s ? owl_session_n_past(a->s) : 0), a->n_gen);
    return a->json;
}

/* Forget the conversation, the KV cache and the images. */
API int owl_api_reset(owl_api *a)
{
    CHECK_CTX(a);
    gen_free(a);
    chat_clear(a);
    if (a->s)
        owl_session_reset(a->s);
    return OWL_OK;
}

/* ---------------------------------------------------------------- images */

/* RGBA pixels (w x h, rows stride bytes apart) -> preprocess -> encode; the
 * image joins the next user turn. */
API int owl_api_add_image_rgba(owl_api *a, const uint8_t *rgba, int w, int h, double stride)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "add_image");
    if (!a->info.has_vision)
        return owl_err_set(&a->err, OWL_E_STATE, "add_image: this model (stage) has no vision tower");
    if (!rgba || w <= 0 || h <= 0 || !(stride >= 4.0 * w) || stride > 1e12)
        return owl_err_set(&a->err, OWL_E_INVALID, "add_image: %dx%d pixels, stride %.0f (want >= %d)", w, h,
                           stride, w > 0 ? 4 * w : 0);
    if (a->pending_images >= OWL_MAX_IMAGES)
        return owl_err_set(&a->err, OWL_E_LIMIT, "add_image: %d images in one turn (max %d)",
                           a->pending_images, OWL_MAX_IMAGES);
    owl_image img = {0};
    owl_status st = owl_image_from_rgba(rgba, w, h, (size_t)stride, &img, &a->err);
    if (st != OWL_OK)
        return st;
    size_t n = (size_t)(a->info.channels * a->info.image_size * a->info.image_size);
    float *px = malloc(sizeof(float) * n);
    if (!px) {
        owl_image_free(&img);
        return owl_err_set(&a->err, OWL_E_NOMEM, "add_image: %zu floats", n);
    }
    st = owl_image_preprocess(&img, (int)a->info.image_size, a->aspect, a->mean, a->std, a->pad, px,
                              NULL, &a->err);
    owl_image_free(&img);
    if (st == OWL_OK) {
        if (a->unrun_images == 0)
            owl_session_clear_images(a->s); /* earlier turns' rows are in the KV cache */
        double t0 = now_ms();
        st = owl_session_encode_image(a->s, px, n, NULL);
        a->t_image += now_ms() - t0;
        if (st != OWL_OK)
            sfail(a, st);
        else {
            a->pending_images++;
            a->unrun_images++;
            a->n_images_total++;
        }
    }
    free(px);
    return st;
}

/* Encoded (PNG/JPEG/BMP/GIF) bytes -> decode -> as above. */
API int owl_api_add_image_encoded(owl_api *a, const uint8_t *data, double size)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "add_image");
    if (!data || !(size > 0) || size > (double)SIZE_MAX)
        return owl_err_set(&a->err, OWL_E_INVALID, "add_image: %.0f bytes of image data", size);
    owl_image img = {0};
    owl_status st = owl_image_decode(data, (size_t)size, &img, NULL, &a->err);
    if (st != OWL_OK)
        return st;
    /* re-enter through the RGBA path with a 3-byte stride would need a copy; expand once */
    size_t np = (size_t)img.w * (size_t)img.h;
    uint8_t *rgba = malloc(np * 4);
    if (!rgba) {
        owl_image_free(&img);
        return owl_err_set(&a->err, OWL_E_NOMEM, "add_image: %dx%d RGBA", img.w, img.h);
    }
    for (size_t i = 0; i < np; i++) {
        memcpy(rgba + 4 * i, img.rgb + 3 * i, 3);
        rgba[4 * i + 3] = 255;
    }
    int w = img.w, h = img.h;
    owl_image_free(&img);
    st = owl_api_add_image_rgba(a, rgba, w, h, 4.0 * w);
    free(rgba);
    return st;
}

/* ---------------------------------------------------------------- chat */

static owl_status push_turn(owl_api *a, int role, const char *text, size_t len, int n_images)
{
    if (a->n_turns >= MAX_TURNS)
        return owl_err_set(&a->err, OWL_E_LIMIT, "chat: %d turns (max %d)", a->n_turns, MAX_TURNS);
    if (!a->turns && !(a->turns = calloc(MAX_TURNS, sizeof *a->turns)))
        return owl_err_set(&a->err, OWL_E_NOMEM, "chat: turns");
    char *t = malloc(len + 1);
    if (!t)
        return owl_err_set(&a->err, OWL_E_NOMEM, "chat: %zu bytes of text", len);
    memcpy(t, text, len);
    t[len] = 0;
    a->turns[a->n_turns++] = (turn){role, t, n_images};
    return OWL_OK;
}

static owl_status hist_push(owl_api *a, const int32_t *ids, int64_t n)
{
    if (a->n_hist + n > a->cap_hist) {
        int64_t cap = (a->n_hist + n) * 2 + 64;
        int32_t *h = realloc(a->hist, sizeof(int32_t) * (size_t)cap);
        if (!h)
            return owl_err_set(&a->err, OWL_E_NOMEM, "chat: history of %lld ids", (long long)cap);
        a->hist = h;
        a->cap_hist = cap;
    }
    memcpy(a->hist + a->n_hist, ids, sizeof(int32_t) * (size_t)n);
    a->n_hist += n;
    return OWL_OK;
}

/* Add a finished turn without running anything (a replayed conversation):
 * role 0 user (takes the images added since), 1 assistant. The next ask runs
 * it together with the new question. */
API int owl_api_push_turn(owl_api *a, int role, const char *text)
{
    CHECK_CTX(a);
    if (!text || (role != OWL_ROLE_USER && role != OWL_ROLE_ASSISTANT) || role != a->n_turns % 2)
        return owl_err_set(&a->err, OWL_E_INVALID, "push_turn: role %d after %d turns (roles alternate from user)",
                           role, a->n_turns);
    owl_status st = push_turn(a, role, text, strlen(text), role == OWL_ROLE_USER ? a->pending_images : 0);
    if (st == OWL_OK && role == OWL_ROLE_USER)
        a->pending_images = 0;
    return st;
}

/* Add the user turn (text + the images added since the last ask), render the
 * conversation, and compute the ids not yet in the cache (a->delta) and the
 * position they start at (a->delta_pos0). The turn is removed again on error. */
static owl_status prepare(owl_api *a, const char *text)
{
    if (!a->tok || !a->info.has_embed)
        return owl_err_set(&a->err, OWL_E_STATE, "ask: this model (stage) has no tokenizer/embeddings");
    if (a->n_turns % 2 != 0)
        return owl_err_set(&a->err, OWL_E_STATE, "ask: the previous answer was not finished (gen_end)");
    size_t tl = strlen(text);
    owl_status st = push_turn(a, OWL_ROLE_USER, text, tl, a->pending_images);
    if (st != OWL_OK)
        return st;
    owl_chat_msg *msgs = malloc(sizeof *msgs * (size_t)a->n_turns);
    size_t n_ids = 0;
    int32_t *ids = NULL;
    if (!msgs)
        st = owl_err_set(&a->err, OWL_E_NOMEM, "ask: %d turns", a->n_turns);
    for (int i = 0; msgs && i < a->n_turns; i++)
        msgs[i] = (owl_chat_msg){a->turns[i].role, a->turns[i].text, a->turns[i].n_images};
    if (st == OWL_OK) /* message text stays text: a typed "</s>" or "<|image|>" is not parsed */
        st = owl_chat_tokenize_msgs(a->tok, msgs, a->n_turns, 1, 0, 0, &ids, &n_ids, NULL, &a->err);
    free(msgs);
    if (st == OWL_OK) {
        int64_t k = 0, img_before = 0;
        while (k < a->n_hist && k < (int64_t)n_ids && a->hist[k] == ids[k])
            k++;
        if (k == (int64_t)n_ids && k > 0)
            k--; /* always run at least one id, for fresh logits */
        for (int64_t i = k; i < (int64_t)n_ids; i++)
            img_before += ids[i] == OWL_IMAGE_TOKEN;
        if (img_before != a->unrun_images)
            st = owl_err_set(&a->err, OWL_E_STATE,
                             "ask: the new prompt part holds %lld image(s), %d were added for this turn "
                             "(conversation diverged before an earlier image; reset the chat)",
                             (long long)img_before, a->unrun_images);
        else if (owl_model_expanded_len(a->m, ids, (int64_t)n_ids) > a->n_ctx)
            /* checked before anything runs: the cache and the chat stay as they were */
            st = owl_err_set(&a->err, OWL_E_LIMIT,
                             "ask: the conversation needs %lld positions, the context holds %lld "
                             "(start a new chat, or ask with truncate: 'history')",
                             (long long)owl_model_expanded_len(a->m, ids, (int64_t)n_ids),
                             (long long)a->n_ctx);
        else {
            free(a->delta);
            a->delta = malloc(sizeof(int32_t) * (n_ids - (size_t)k + 1));
            if (!a->delta)
                st = owl_err_set(&a->err, OWL_E_NOMEM, "ask: prompt of %zu ids", n_ids);
            else {
                memcpy(a->delta, ids + k, sizeof(int32_t) * (n_ids - (size_t)k));
                a->n_delta = (int64_t)n_ids - k;
                a->delta_pos0 = owl_model_expanded_len(a->m, ids, k);
                a->delta_rows = owl_model_expanded_len(a->m, a->delta, a->n_delta);
                a->n_hist = k;
            }
        }
    }
    free(ids);
    if (st != OWL_OK) {
        free(a->turns[--a->n_turns].text);
        a->n_delta = 0;
    }
    return st;
}

static owl_status commit_delta(owl_api *a)
{
    owl_status st = hist_push(a, a->delta, a->n_delta);
    a->n_prefill += a->delta_rows;
    a->pending_images = 0;
    a->unrun_images = 0;
    a->n_delta = 0;
    return st;
}

/* Whole model: add the user turn and run the new part of the prompt. */
API int owl_api_ask(owl_api *a, const char *text)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "ask");
    if (!text)
        return owl_err_set(&a->err, OWL_E_INVALID, "ask: text is NULL");
    owl_status st = prepare(a, text);
    if (st != OWL_OK)
        return st;
    if ((st = owl_session_truncate(a->s, a->delta_pos0)) == OWL_OK) {
        double t0 = now_ms();
        st = owl_session_prefill(a->s, a->delta, a->n_delta, NULL, NULL);
        a->t_prefill += now_ms() - t0;
    }
    if (st != OWL_OK) {
        sfail(a, st);
        free(a->turns[--a->n_turns].text);
        owl_session_truncate(a->s, a->delta_pos0);
        a->n_delta = 0;
        return st;
    }
    return commit_delta(a);
}

/* Stage mode, first stage: add the user turn; returns the rows to embed
 * (> 0) or an error. *pos0_out (double, for JS) gets their first position. */
API int owl_api_prepare(owl_api *a, const char *text, double *pos0_out)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "prepare");
    if (!text || !pos0_out)
        return owl_err_set(&a->err, OWL_E_INVALID, "prepare: NULL argument");
    owl_status st = prepare(a, text);
    if (st != OWL_OK)
        return st;
    *pos0_out = (double)a->delta_pos0;
    return (int)a->delta_rows;
}

/* Embed the prepared rows into x (rows x d_model) and modality (rows). */
API int owl_api_embed_prepared(owl_api *a, float *x, uint8_t *modality)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "embed");
    if (a->n_delta <= 0)
        return owl_err_set(&a->err, OWL_E_STATE, "embed: nothing prepared");
    owl_status st = owl_session_embed(a->s, a->delta, a->n_delta, x, modality);
    if (st != OWL_OK) {
        sfail(a, st);
        free(a->turns[--a->n_turns].text);
        a->n_delta = 0;
        return st;
    }
    return commit_delta(a);
}

/* Run this stage's layers on x (n x d_model) at positions pos0.. in place. */
API int owl_api_stage_run(owl_api *a, float *x, double n, double pos0, const uint8_t *modality)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "stage_run");
    if (!x || !(n >= 1) || !(pos0 >= 0) || n > 1e9 || pos0 > 1e9)
        return owl_err_set(&a->err, OWL_E_INVALID, "stage_run: x %p, n %.0f, pos0 %.0f", (void *)x, n, pos0);
    double t0 = now_ms();
    owl_status st = owl_session_run_layers(a->s, a->info.layer_begin, a->info.layer_end, x, (int64_t)n,
                                           (int64_t)pos0, modality);
    *(n > 1 ? &a->t_prefill : &a->t_decode) += now_ms() - t0;
    return st != OWL_OK ? sfail(a, st) : OWL_OK;
}

/* Final norm + head on the n rows of x; logits (n x n_vocab). */
API int owl_api_stage_head(owl_api *a, float *x, double n, float *logits)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "stage_head");
    if (!x || !logits || !(n >= 1) || n > 1e9)
        return owl_err_set(&a->err, OWL_E_INVALID, "stage_head: bad arguments (n %.0f)", n);
    owl_status st = owl_session_head(a->s, x, (int64_t)n, logits);
    return st != OWL_OK ? sfail(a, st) : OWL_OK;
}

/* ---------------------------------------------------------------- generation */

/* stops: n_stops NUL-terminated strings. max_tokens <= 0: until eos / context. */
API int owl_api_gen_begin(owl_api *a, float temperature, int top_k, float top_p, float min_p,
                          float repeat_penalty, double seed, int max_tokens, const char *const *stops,
                          int n_stops)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "generate");
    if (!a->tok || a->n_turns % 2 != 1)
        return owl_err_set(&a->err, OWL_E_STATE, "generate: ask a question first");
    if (n_stops < 0 || n_stops > 64 || (n_stops > 0 && !stops) || !(seed >= 0))
        return owl_err_set(&a->err, OWL_E_INVALID, "generate: %d stop strings, seed %.0f", n_stops, seed);
    gen_free(a);
    owl_sampler_params p = {temperature, top_k, top_p, min_p, repeat_penalty, (uint64_t)seed};
    owl_status st = owl_sampler_init(&a->smp, (int32_t)a->info.n_vocab, &p, &a->err);
    if (st == OWL_OK && (st = owl_stopper_init(&a->stop, a->info.eos_id, max_tokens, stops, n_stops,
                                               &a->err)) == OWL_OK)
        a->stop_live = 1;
    if (st == OWL_OK) {
        owl_tok_stream_init(&a->ts, a->tok);
        a->tcap = owl_tok_stream_max_out(a->tok);
        a->pcap = owl_stopper_out_cap(&a->stop, a->tcap) + a->tcap + 8;
        a->tbuf = malloc(a->tcap);
        a->piece = malloc(a->pcap + 1);
        if (!a->tbuf || !a->piece)
            st = owl_err_set(&a->err, OWL_E_NOMEM, "generate: piece buffers");
    }
    if (st != OWL_OK) {
        gen_free(a);
        return st;
    }
    a->gen_done = 0;
    a->last_id = -1;
    a->reason = 0;
    a->n_gen = 0;
    a->n_piece = 0;
    return OWL_OK;
}

static owl_status answer_add(owl_api *a, const char *s, size_t n)
{
    if (a->n_answer + n + 1 > a->cap_answer) {
        size_t cap = (a->n_answer + n + 1) * 2;
        char *p = realloc(a->answer, cap);
        if (!p)
            return owl_err_set(&a->err, OWL_E_NOMEM, "generate: answer of %zu bytes", cap);
        a->answer = p;
        a->cap_answer = cap;
    }
    memcpy(a->answer + a->n_answer, s, n);
    a->n_answer += n;
    return OWL_OK;
}

/* Sample from logits, produce the piece. Returns 1 (piece ready, go on), 0
 * (finished: piece holds the final text, owl_api_gen_reason says why). */
static int step_from(owl_api *a, const float *logits)
{
    int32_t id;
    owl_status st = owl_sampler_sample(a->smp, logits, a->hist, (size_t)a->n_hist, &id, &a->err);
    if (st != OWL_OK)
        return st;
    size_t nt = 0;
    if ((st = owl_tok_stream_push(&a->ts, id, a->tbuf, a->tcap, &nt, &a->err)) != OWL_OK)
        return st;
    a->n_gen++;
    a->last_id = id;
    int r = owl_stopper_push(&a->stop, id, a->tbuf, nt, a->piece, a->pcap, &a->n_piece);
    if (r != OWL_STOP_NONE) {
        if (r != OWL_STOP_STRING && r != OWL_STOP_EOS) {
            size_t k = 0;
            owl_tok_stream_finish(&a->ts, a->piece + a->n_piece, a->pcap - a->n_piece, &k, NULL);
            a->n_piece += k;
        }
        if (r == OWL_STOP_MAX_TOKENS)
            a->pending = id; /* counts in hist: its text is in the answer */
        a->gen_done = 1;
        a->reason = r;
    } else {
        a->pending = id;
    }
    a->piece[a->n_piece] = 0;
    if ((st = answer_add(a, a->piece, a->n_piece)) != OWL_OK)
        return st;
    return a->gen_done ? 0 : 1;
}

/* Whole model: feed the previous token (if any), sample the next. */
API int owl_api_gen_step(owl_api *a)
{
    CHECK_CTX(a);
    NEED_SESSION(a, "generate");
    if (!a->smp || a->gen_done)
        return owl_err_set(&a->err, OWL_E_STATE, "generate: not started or already finished");
    if (a->pending >= 0) {
        double t0 = now_ms();
        owl_status st = owl_session_decode(a->s, a->pending, NULL);
        a->t_decode += now_ms() - t0;
        if (st == OWL_E_LIMIT) { /* context full: a normal end, with the held-back text */
            a->gen_done = 1;
            a->reason = 4;
            a->pending = -1;
            size_t k = 0;
            owl_tok_stream_finish(&a->ts, a->tbuf, a->tcap, &k, NULL);
            a->n_piece = owl_stopper_flush(&a->stop, a->piece, a->pcap);
            if (k && a->n_piece + k <= a->pcap) {
                memcpy(a->piece + a->n_piece, a->tbuf, k);
                a->n_piece += k;
            }
            a->piece[a->n_piece] = 0;
            return answer_add(a, a->piece, a->n_piece);
        }
        if (st != OWL_OK) {
            a->gen_done = 1;
            a->reason = 5;
            return sfail(a, st);
        }
        hist_push(a, &a->pending, 1);
        a->n_decode++;
        a->pending = -1;
    }
    return step_from(a, owl_session_logits(a->s));
}

/* Stage mode: take the pending token for feeding: writes its embedding row to
 * x (d_model floats) and returns its position (>= 0), or -1 if none pending. */
API double owl_api_embed_pending(owl_api *a, float *x)
{
    if (!a || !a->s || a->pending < 0 || !x)
        return -1;
    double pos = (double)a->n_hist > 0 ? (double)owl_model_expanded_len(a->m, a->hist, a->n_hist) : 0;
    if (owl_session_embed(a->s, &a->pending, 1, x, NULL) != OWL_OK) {
        sfail(a, OWL_E_INVALID);
        return -2;
    }
    hist_push(a, &a->pending, 1);
    a->n_decode++;
    a->pending = -1;
    return pos;
}

/* Stage mode: sample from logits (n_vocab floats) computed by the last stage. */
API int owl_api_gen_step_logits(owl_api *a, const float *logits)
{
    CHECK_CTX(a);
    if (!a->smp || a->gen_done || !logits)
        return owl_err_set(&a->err, OWL_E_STATE, "generate: not started, finished or no logits");
    if (a->pending >= 0)
        return owl_err_set(&a->err, OWL_E_STATE, "generate: previous token not fed (embed_pending)");
    return step_from(a, logits);
}

/* Copy up to cap ids of the prompt history (the unexpanded ids the KV cache
 * holds, OWL_IMAGE_TOKEN for images) to out; returns the full count. */
API double owl_api_history(const owl_api *a, int32_t *out, double cap)
{
    if (!a)
        return 0;
    for (int64_t i = 0; out && i < a->n_hist && i < (int64_t)cap; i++)
        out[i] = a->hist[i];
    return (double)a->n_hist;
}

/* Debug/test only: the logits the last step sampled from (whole model: the
 * session's last row, n_vocab floats; after owl_api_ask the last prompt
 * position's), NULL without a session. Valid until the next call into a. */
API const float *owl_api_logits(const owl_api *a) { return a && a->s ? owl_session_logits(a->s) : NULL; }

API const char *owl_api_piece(const owl_api *a) { return a && a->piece ? a->piece : ""; }
API int owl_api_piece_len(const owl_api *a) { return a && a->piece ? (int)a->n_piece : 0; }
/* 1 eos, 2 stop string, 3 max tokens, 4 context full, 5 error, 0 running/cancelled. */
API int owl_api_gen_reason(const owl_api *a) { return a ? a->reason : 0; }
/* The id sampled by the last step (also when it ended the answer). */
API int owl_api_last_token(const owl_api *a) { return a ? a->last_id : -1; }

/* End generation (finished or cancelled): the answer so far becomes the
 * assistant turn; the chat stays usable. */
API int owl_api_gen_end(owl_api *a)
{
    CHECK_CTX(a);
    owl_status st = OWL_OK;
    if (a->n_turns % 2 == 1) {
        if (a->stop_live && a->piece && !a->gen_done) {
            /* cancelled: release what the stopper held back into the answer */
            size_t k = owl_stopper_flush(&a->stop, a->piece, a->pcap);
            answer_add(a, a->piece, k);
        }
        st = push_turn(a, OWL_ROLE_ASSISTANT, a->answer ? a->answer : "", a->n_answer, 0);
    }
    a->pending = -1; /* the last sampled token is never fed: the next ask re-renders */
    a->n_answer = 0;
    return st;
}
