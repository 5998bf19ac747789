/* api.c - the flat C ABI the engine worker calls (wasm_glue/engine-worker.mjs):
 * a thin marshaller over src/owlet.h. The conversation is the library's
 * owl_chat; this file turns JS numbers into C types, owns the model buffer and
 * the rows buffer that carries hidden states between calls, and times each
 * call for the per-stage breakdown of stats(). One owl_api per wasm instance
 * = one pipeline stage (a whole model is the one-stage case). Every call returns
 * an owl_status (0 ok, negative error) or a non-negative result, keeps its last
 * error's message (owl_api_error) and, failed, leaves the context usable.
 *
 * The pipeline protocol (the same for 1..n stages; design.md section 6):
 *   first stage  owl_api_prepare(text)   user turn -> rows to run
 *                owl_api_embed           the prompt part, later each token to
 *                                        feed back -> the rows buffer
 *   every stage  owl_api_run(n, pos0, has_mod, sample)  its layers on the rows;
 *                                        the last stage (sample = 1) also runs
 *                                        the head and samples: the token id
 *   first stage  owl_api_push_token(id)  stop rules + UTF-8 stream -> piece
 * Between stages only the rows travel; the last stage returns an id, never
 * the logits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define API EMSCRIPTEN_KEEPALIVE
#else
#define API
#endif

#include "../src/owlet.h"

typedef struct {
    owl_err err;
    void *buf;    /* the GGUF (or a stage's byte range), owned */
    void *header; /* partial load: the file's header bytes, owned */
    owl_model *m;
    owl_model_info info;
    owl_session *s;
    owl_chat *c;
    char aspect[16];
    int n_threads;
    /* the rows buffer: hidden states (cap x d_model) and modality (cap) */
    float *x;
    uint8_t *mod;
    int64_t cap;
    int64_t prepared; /* rows the next embed writes */
    /* this stage's own compute time (the per-stage breakdown) */
    double t_image, t_prefill, t_decode, t_warm;
    int32_t armed; /* the epoch the calls that follow run at (owl_api_arm) */
    char json[1024];
} owl_api;

/* a chat call's status, its message copied to the context */
static int chat_st(owl_api *a, int st)
{
    if (st < 0)
        owl_err_set(&a->err, st, "%s", owl_chat_error(a->c));
    return st;
}

#define NEED_CHAT(a, what)                                                                         \
    do {                                                                                           \
        if (!(a))                                                                                  \
            return OWL_E_INVALID;                                                                  \
        owl_err_clear(&(a)->err);                                                                  \
        if (!(a)->c)                                                                               \
            return owl_err_set(&(a)->err, OWL_E_STATE, "%s: no session (load a model first)", what); \
    } while (0)

API owl_api *owl_api_new(void) { return calloc(1, sizeof(owl_api)); }
API int owl_api_error_code(const owl_api *a) { return a ? (int)a->err.code : OWL_E_INVALID; }
API const char *owl_api_error(const owl_api *a) { return a ? a->err.msg : "no context"; }

static void unload(owl_api *a)
{
    owl_chat_free(a->c);
    owl_session_free(a->s);
    owl_model_free(a->m);
    free(a->buf);
    free(a->header);
    a->c = NULL, a->s = NULL, a->m = NULL, a->buf = a->header = NULL;
}

API void owl_api_free(owl_api *a)
{
    if (!a)
        return;
    unload(a);
    free(a->x);
    free(a->mod);
    free(a);
}

static owl_status session_init(owl_api *a, double n_ctx, double n_batch, int kv_f32, int n_threads,
                               int image_cache)
{
    if (!(n_ctx >= 0 && n_ctx < 1e9 && n_batch >= 0 && n_batch < 1e9))
        return owl_err_set(&a->err, OWL_E_INVALID, "session: n_ctx %.0f, n_batch %.0f out of range", n_ctx,
                           n_batch);
    owl_session_opts so = owl_session_opts_default();
    so.n_ctx = (int64_t)n_ctx;
    so.n_batch = (int64_t)n_batch;
    so.kv_type = kv_f32 ? OWL_TYPE_F32 : OWL_TYPE_F16;
    so.n_threads = n_threads;
    if (image_cache >= 0)
        so.image_cache = image_cache;
    a->n_threads = n_threads > 0 ? n_threads : 1;
    owl_chat_opts co = {a->aspect};
    owl_status st = owl_session_init(a->m, &so, &a->s, &a->err);
    return st != OWL_OK ? st : owl_chat_init(a->m, a->s, &co, &a->c, &a->err);
}

/* Load the GGUF in buf[0..size) (malloc'ed by the caller; owned by ctx from
 * here on, also on error) and start a session on it. Partial load (a stage):
 * header (malloc'ed, owned likewise) holds the file's first header_size
 * bytes, buf the bytes [range_offset, range_offset + size) of a
 * file_size-byte file; header NULL = buf is the whole file. Layers
 * [layer_begin, layer_end) (0, 0 = all); first = 1: the stage holds the image
 * encoder and embeddings, last = 1: the head. aspect: "" = the model's, else
 * stretch|pad|crop. Session: n_ctx, n_batch (0 = auto), kv_f32 (1 f32 cache,
 * 0 f16), n_threads, image_cache (pictures kept for reuse, 0 = off; < 0 = the
 * library's default, owl_session_opts_default). */
API int owl_api_load(owl_api *a, void *buf, double size, void *header, double header_size, double range_offset,
                     double file_size, int layer_begin, int layer_end, int first, int last, const char *aspect,
                     double n_ctx, double n_batch, int kv_f32, int n_threads, int image_cache)
{
    if (!a) {
        free(buf);
        free(header);
        return OWL_E_INVALID;
    }
    owl_err_clear(&a->err);
    unload(a);
    a->buf = buf;
    a->header = header;
    owl_model_opts o = {.layer_begin = layer_begin, .layer_end = layer_end, .no_vision = !first,
                        .no_embed = !first, .no_head = !last, .rearrange = 1 /* buf is ours */};
    snprintf(a->aspect, sizeof a->aspect, "%s", aspect ? aspect : "");
    owl_status st = OWL_OK;
    if (!buf || !(size > 0) || size > (double)SIZE_MAX ||
        (header && !(header_size > 0 && header_size <= (double)SIZE_MAX && range_offset >= 0 &&
                     file_size >= range_offset + size && file_size < 9e15)))
        st = owl_err_set(&a->err, OWL_E_INVALID,
                         "load: buffer of %.0f bytes, header of %.0f, range at %.0f of a %.0f-byte file", size,
                         header ? header_size : 0.0, range_offset, file_size);
    else if (header) {
        o.header = header;
        o.header_size = (size_t)header_size;
        o.range_offset = (uint64_t)range_offset;
        o.file_size = (uint64_t)file_size;
    }
    if (st == OWL_OK && (st = owl_model_load_buffer(buf, (size_t)size, &o, &a->m, &a->err)) == OWL_OK) {
        owl_model_get_info(a->m, &a->info);
        st = session_init(a, n_ctx, n_batch, kv_f32, n_threads, image_cache);
    }
    if (st != OWL_OK) {
        owl_err saved = a->err;
        unload(a);
        a->err = saved;
    }
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
    snprintf(a->json, sizeof a->json,
             "{\"arch\":\"%s\",\"name\":\"%s\",\"n_vocab\":%lld,\"d_model\":%lld,\"n_layers\":%lld,"
             "\"n_ctx_train\":%lld,\"layer_begin\":%d,\"layer_end\":%d,\"has_vision\":%d,\"has_embed\":%d,"
             "\"has_head\":%d,\"image_size\":%lld,\"image_tokens\":%lld,\"bos_id\":%d,\"eos_id\":%d,"
             "\"aspect\":\"%s\",\"n_ctx\":%lld}",
             i->arch, name, (long long)i->n_vocab, (long long)i->d_model, (long long)i->n_layers,
             (long long)i->n_ctx_train, i->layer_begin, i->layer_end, i->has_vision, i->has_embed, i->has_head,
             (long long)i->image_size, (long long)i->image_tokens, (int)i->bos_id, (int)i->eos_id,
             a->c ? owl_chat_aspect(a->c) : "", (long long)(a->s ? owl_session_n_ctx(a->s) : 0));
    return a->json;
}

/* Counters (the conversation's and the image cache's, meaningful on the first
 * stage) and this stage's own compute milliseconds, as JSON. */
API const char *owl_api_stats(owl_api *a)
{
    if (!a)
        return "";
    owl_chat_stats cs = {0};
    owl_image_cache_stats ic = {0};
    if (a->c)
        owl_chat_get_stats(a->c, &cs);
    if (a->s)
        owl_session_image_cache_stats(a->s, &ic);
    snprintf(a->json, sizeof a->json,
             "{\"promptTokens\":%lld,\"prefillMs\":%.3f,\"completionTokens\":%lld,\"decodeMs\":%.3f,"
             "\"images\":%lld,\"imageEncodeMs\":%.3f,\"imageWarmMs\":%.3f,\"threads\":%d,\"nPast\":%lld,\"lastTokens\":%d,"
             "\"imageCache\":{\"hits\":%lld,\"misses\":%lld,\"entries\":%d,\"capacity\":%d,\"bytes\":%.0f,"
             "\"savedMs\":%.3f}}",
             (long long)cs.prompt_rows, a->t_prefill, (long long)cs.decoded, a->t_decode, (long long)cs.images,
             a->t_image, a->t_warm, a->n_threads, (long long)(a->s ? owl_session_n_past(a->s) : 0), cs.last_tokens,
             (long long)ic.hits, (long long)ic.misses, ic.entries, ic.capacity, (double)ic.bytes, ic.saved_ms);
    return a->json;
}

/* The coordinator's cancel counter is not in this memory: it is an int32 in a
 * 4-byte SharedArrayBuffer of the engine worker's (Module.owlCancel; threaded
 * builds), which the page bumps with Atomics.store to stop the call that runs.
 * A view the page kept of this whole memory instead would keep it alive after
 * unload until the page's collector ran (docs/BENCHMARKS.md). Read on the
 * calling thread at each layer; where there is none, the armed epoch (never
 * stops). */
#ifdef __EMSCRIPTEN__
EM_JS(int32_t, owl_js_cancel_count, (int32_t fallback), {
    return Module.owlCancel ? Atomics.load(Module.owlCancel, 0) : fallback;
});
#else
static int32_t owl_js_cancel_count(int32_t fallback) { return fallback; }
#endif

static int32_t read_cancel(void *user) { return owl_js_cancel_count(((const owl_api *)user)->armed); }

/* The calls that follow stop with OWL_E_CANCELLED once the counter differs
 * from epoch (the coordinator's count when it sent them). */
API int owl_api_arm(owl_api *a, double epoch)
{
    NEED_CHAT(a, "arm");
    if (!(epoch >= -2147483648.0 && epoch <= 2147483647.0))
        return owl_err_set(&a->err, OWL_E_INVALID, "arm: epoch %.0f", epoch);
    a->armed = (int32_t)epoch;
    owl_session_cancel_read(a->s, read_cancel, a, a->armed);
    return OWL_OK;
}

/* Forget the conversation, the KV cache and the images. */
API int owl_api_reset(owl_api *a)
{
    NEED_CHAT(a, "reset");
    owl_chat_reset(a->c);
    return OWL_OK;
}

/* RGBA pixels (w x h, rows stride bytes apart; encoded = 0) or encoded
 * PNG/JPEG/BMP/GIF bytes (encoded = 1: rgba holds stride bytes) for the next
 * question. */
API int owl_api_add_image(owl_api *a, const uint8_t *rgba, int w, int h, double stride, int encoded)
{
    NEED_CHAT(a, "add_image");
    if (!(stride >= 0 && stride <= 1e12))
        return owl_err_set(&a->err, OWL_E_INVALID, "add_image: stride %.0f", stride);
    double t0 = owl_now_ms();
    int st = encoded ? owl_chat_add_image_encoded(a->c, rgba, (size_t)stride)
                     : owl_chat_add_image_rgba(a->c, rgba, w, h, (size_t)stride);
    a->t_image += owl_now_ms() - t0;
    return chat_st(a, st);
}

/* The same image arguments: encode the picture into the image cache only
 * (owl_chat_warm_image_*). Returns 1 if it was encoded now, 0 if it was cached
 * already or the cache is off, or a negative status. */
API int owl_api_warm_image(owl_api *a, const uint8_t *rgba, int w, int h, double stride, int encoded)
{
    NEED_CHAT(a, "warm_image");
    if (!(stride >= 0 && stride <= 1e12))
        return owl_err_set(&a->err, OWL_E_INVALID, "warm_image: stride %.0f", stride);
    double t0 = owl_now_ms();
    int ran = 0;
    int st = encoded ? owl_chat_warm_image_encoded(a->c, rgba, (size_t)stride, &ran)
                     : owl_chat_warm_image_rgba(a->c, rgba, w, h, (size_t)stride, &ran);
    a->t_warm += owl_now_ms() - t0;
    return st < 0 ? chat_st(a, st) : ran;
}

/* A finished turn (replay): role 0 user, 1 assistant. */
API int owl_api_push_turn(owl_api *a, int role, const char *text)
{
    NEED_CHAT(a, "push_turn");
    return chat_st(a, owl_chat_push_turn(a->c, role, text));
}

/* ---------------------------------------------------------------- rows */

static owl_status rows_reserve(owl_api *a, int64_t n)
{
    if (n <= a->cap)
        return OWL_OK;
    size_t d = (size_t)a->info.d_model;
    float *x = realloc(a->x, sizeof(float) * d * (size_t)n);
    if (x)
        a->x = x;
    uint8_t *m = x ? realloc(a->mod, (size_t)n) : NULL;
    if (!m)
        return owl_err_set(&a->err, OWL_E_NOMEM, "rows: %lld x %zu floats", (long long)n, d);
    a->mod = m;
    a->cap = n;
    return OWL_OK;
}

/* The rows buffer for n rows (n x d_model floats), NULL on error: where the
 * JS puts the rows coming from the previous stage. */
API float *owl_api_rows(owl_api *a, double n)
{
    if (!a || !a->m || !(n >= 1 && n <= 1e7) || rows_reserve(a, (int64_t)n) != OWL_OK)
        return NULL;
    return a->x;
}
/* Its modality indicators (n bytes, valid like owl_api_rows' pointer). */
API uint8_t *owl_api_modality(owl_api *a) { return a ? a->mod : NULL; }

/* First stage: add the user turn; returns the rows to run (> 0) or an error.
 * *pos0_out (double, for JS) gets their first position. */
API int owl_api_prepare(owl_api *a, const char *text, double *pos0_out)
{
    NEED_CHAT(a, "ask");
    int64_t rows = 0, pos0 = 0;
    owl_status st = chat_st(a, owl_chat_prepare(a->c, text, &rows, &pos0));
    if (st != OWL_OK)
        return st;
    a->prepared = rows;
    if (pos0_out)
        *pos0_out = (double)pos0;
    return (int)rows;
}

/* First stage: the known part of the next question (owl_chat_prime); returns
 * the rows to run (0: nothing), *pos0_out the first position. embed and the
 * stages' run follow as for a question, without sampling. */
API int owl_api_prime(owl_api *a, double *pos0_out)
{
    NEED_CHAT(a, "prime");
    int64_t rows = 0, pos0 = 0;
    owl_status st = chat_st(a, owl_chat_prime(a->c, &rows, &pos0));
    if (st != OWL_OK)
        return st;
    a->prepared = rows;
    if (pos0_out)
        *pos0_out = (double)pos0;
    return (int)rows;
}

/* Drop the images added for the next question and the rows primed for them. */
API int owl_api_clear_images(owl_api *a)
{
    NEED_CHAT(a, "clear_images");
    return chat_st(a, owl_chat_clear_images(a->c));
}

/* First stage: embed what runs next (the prepared prompt, else the token to
 * feed back) into the rows buffer; returns the row count, *pos0_out the first
 * position. */
API int owl_api_embed(owl_api *a, double *pos0_out)
{
    NEED_CHAT(a, "embed");
    int64_t rows = 0, pos0 = 0;
    owl_status st = rows_reserve(a, a->prepared > 1 ? a->prepared : 1);
    a->prepared = 0;
    if (st == OWL_OK)
        st = chat_st(a, owl_chat_embed(a->c, a->x, a->mod, a->cap, &rows, &pos0));
    if (st != OWL_OK)
        return st;
    if (pos0_out)
        *pos0_out = (double)pos0;
    return (int)rows;
}

/* Run this stage's layers on the n rows of the buffer at positions pos0..
 * (has_mod: the modality bytes hold the rows' indicators, i.e. a prompt part;
 * 0: text tokens). sample = 1 (last stage): then the head and the sampler;
 * returns the token id. */
API int owl_api_run(owl_api *a, double n, double pos0, int has_mod, int sample)
{
    NEED_CHAT(a, "run");
    if (!(n >= 1 && n <= (double)a->cap && pos0 >= 0 && pos0 <= 1e9))
        return owl_err_set(&a->err, OWL_E_INVALID, "run: %.0f rows at %.0f (buffer of %lld rows)", n, pos0,
                           (long long)a->cap);
    double t0 = owl_now_ms();
    int st = owl_session_run_layers(a->s, a->info.layer_begin, a->info.layer_end, a->x, (int64_t)n,
                                    (int64_t)pos0, has_mod ? a->mod : NULL);
    if (st != OWL_OK)
        owl_err_set(&a->err, st, "%s", owl_session_error(a->s));
    int32_t id = 0;
    if (st == OWL_OK && sample)
        st = chat_st(a, owl_chat_sample(a->c, a->x, (int64_t)n, &id));
    *(has_mod ? &a->t_prefill : &a->t_decode) += owl_now_ms() - t0;
    return st != OWL_OK ? st : sample ? (int)id : OWL_OK;
}

/* ---------------------------------------------------------------- generation */

/* Start the answer. First stage (history NULL): its sampler over the ids in
 * the cache, and the stop rules (n_stops NUL-terminated strings; max_tokens
 * <= 0: until eos / context). Last stage of several (history: the first
 * stage's owl_api_history, n_hist ids): only its sampler. */
API int owl_api_gen_begin(owl_api *a, float temperature, int top_k, float top_p, float min_p,
                          float repeat_penalty, double seed, int max_tokens, const char *const *stops, int n_stops,
                          const int32_t *history, double n_hist)
{
    NEED_CHAT(a, "generate");
    if (!(seed >= 0 && seed <= 9007199254740992.0 && n_hist >= 0 && n_hist <= 1e9))
        return owl_err_set(&a->err, OWL_E_INVALID, "generate: seed %.0f, %.0f history ids", seed, n_hist);
    owl_chat_gen g = {max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, (uint64_t)seed, stops, n_stops};
    return chat_st(a, history ? owl_chat_sampler_begin(a->c, &g, history, (int64_t)n_hist)
                              : owl_chat_gen_begin(a->c, &g));
}

/* First stage: the id the last stage sampled. 1: piece ready, go on; 0:
 * finished (owl_api_gen_reason); < 0 error. */
API int owl_api_push_token(owl_api *a, int id)
{
    NEED_CHAT(a, "generate");
    return chat_st(a, owl_chat_push_token(a->c, id));
}

API const char *owl_api_piece(const owl_api *a) { return a && a->c ? owl_chat_piece(a->c, NULL) : ""; }
API int owl_api_piece_len(const owl_api *a) { return (int)strlen(owl_api_piece(a)); }
/* 1 eos, 2 stop string, 3 max tokens, 4 context full, 5 error, 0 running/cancelled. */
API int owl_api_gen_reason(const owl_api *a) { return a && a->c ? owl_chat_reason(a->c) : 0; }
API int owl_api_last_token(const owl_api *a) { return a && a->c ? owl_chat_last_token(a->c) : -1; }

/* End generation (finished or cancelled): the answer so far becomes the
 * assistant turn; the chat stays usable. */
API int owl_api_gen_end(owl_api *a)
{
    NEED_CHAT(a, "generate");
    return chat_st(a, owl_chat_gen_end(a->c));
}

/* Copy up to cap ids of the prompt history (the unexpanded ids the KV cache
 * holds, OWL_IMAGE_TOKEN for images) to out; returns the full count. */
API double owl_api_history(const owl_api *a, int32_t *out, double cap)
{
    if (!a || !a->c)
        return 0;
    const int32_t *h;
    int64_t n = owl_chat_history(a->c, &h);
    for (int64_t i = 0; out && i < n && i < (int64_t)cap; i++)
        out[i] = h[i];
    return (double)n;
}

/* Debug/test only: the logits the last sample drew from (n_vocab floats, on
 * the stage with the head), NULL without a session. */
API const float *owl_api_logits(const owl_api *a) { return a && a->c ? owl_chat_logits(a->c) : NULL; }
