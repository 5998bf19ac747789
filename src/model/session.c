/* session.c - owl_session: the KV cache of the held layers, one scratch arena
 * sized at init for the largest product, attention, image phase and batch
 * (no malloc per token), the thread pool, and the session's small state
 * (n_past, logits, cancel flag, images held, the image cache). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

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

/* Carve the image-phase buffers (vision tower + abstractor) from base (NULL:
 * just count). Returns floats used. */
static int64_t img_scratch(const owl_model *m, float *base, owl_img_scratch *is)
{
    const owl_vit *v = &m->vit;
    const owl_abs *a = &m->abs;
    const int64_t T = v->n_tok, D = v->hidden, Q = a->n_queries, Da = a->hidden;
    int64_t off = 0;
#define TAKE(field, n)                                 \
    do {                                               \
        if (base)                                      \
            is->field = base + off;                    \
        off += ((int64_t)(n) + 15) & ~(int64_t)15;     \
    } while (0)
    TAKE(x, T * D);
    TAKE(xn, T * D);
    TAKE(qkv, T * 3 * D);
    TAKE(q, T * D);
    TAKE(k, T * D);
    TAKE(v, T * D);
    TAKE(att, T * D);
    TAKE(ffn, T * v->ffn);
    TAKE(patches, (T - 1) * v->channels * v->patch * v->patch);
    TAKE(ax, Q * Da);
    TAKE(ah, Q * Da);
    TAKE(ac, (Q + T) * Da);
    TAKE(acp, (Q + T) * Da);
    TAKE(ak, (Q + T) * Da);
    TAKE(av, (Q + T) * Da);
    TAKE(aq, Q * Da);
    TAKE(aatt, Q * Da);
    TAKE(af1, Q * a->ffn);
    TAKE(af2, Q * a->ffn);
#undef TAKE
    return off;
}

/* ---------------------------------------------------------------- session */

owl_session_opts owl_session_opts_default(void)
{
    owl_session_opts o;
    memset(&o, 0, sizeof o);
    o.kv_type = OWL_TYPE_F16;
    o.n_threads = 1;
    o.image_cache = 4;
    return o;
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
    owl_icache_free(&s->icache);
    owl_pool_free(s->pool);
    free(s->kv);
    free(s->arena);
    free(s);
}

/* Options resolved against the model: n_ctx, n_batch, threads (errors named). */
static owl_status resolve_opts(const owl_model *m, const owl_session_opts *o, int64_t *n_ctx_out,
                               int64_t *nb_out, int *nth_out, owl_err *err)
{
    const owl_llm *l = &m->llm;
    if (o->kv_type != OWL_TYPE_F16 && o->kv_type != OWL_TYPE_F32)
        return owl_err_set(err, OWL_E_INVALID, "session: kv_type %d, want f16 (1) or f32 (0)",
                           (int)o->kv_type);
    if (l->n_ctx_train < 1) /* the file's fault, not the caller's */
        return owl_err_set(err, OWL_E_FORMAT, "session: the model's context_length is %lld (GGUF metadata "
                           "<arch>.context_length must be >= 1)", (long long)l->n_ctx_train);
    int64_t n_ctx = o->n_ctx;
    if (n_ctx == 0)
        n_ctx = l->n_ctx_train < 2048 ? l->n_ctx_train : 2048;
    if (n_ctx < 1 || n_ctx > l->n_ctx_train)
        return owl_err_set(err, OWL_E_INVALID, "session: n_ctx %lld outside 1..%lld (context_length)",
                           (long long)o->n_ctx, (long long)l->n_ctx_train);
    int64_t nb = o->n_batch ? o->n_batch : 256;
    if (nb < 1)
        return owl_err_set(err, OWL_E_INVALID, "session: n_batch %lld < 1", (long long)o->n_batch);
    if (nb > n_ctx)
        nb = n_ctx;
    if (o->image_cache < 0 || o->image_cache > OWL_MAX_IMAGE_CACHE)
        return owl_err_set(err, OWL_E_INVALID, "session: image_cache %d outside 0..%d (pictures kept; 0 = off)",
                           o->image_cache, OWL_MAX_IMAGE_CACHE);
    int nth = o->n_threads < 1 ? 1 : o->n_threads;
    if (nth > 256)
        return owl_err_set(err, OWL_E_INVALID, "session: n_threads %d > 256", nth);
    *n_ctx_out = n_ctx;
    *nb_out = nb;
    *nth_out = nth;
    return OWL_OK;
}

/* Point the session's buffers into its arena, in the order sized by alloc_buffers. */
static void carve_arena(owl_session *s, uint64_t img_f, uint64_t mm_b, uint64_t att_b)
{
    const owl_llm *l = &s->m->llm;
    const int64_t nb = s->n_batch;
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
    TAKE(s->history, 4 * s->n_ctx);
#undef TAKE
    OWL_ASSERT(off <= s->arena_size);
    if (s->m->has_vision)
        img_scratch(s->m, img, &s->is);
}

/* Size (overflow-checked), allocate and carve the KV cache and the arena. */
static owl_status alloc_buffers(owl_session *s, owl_err *err)
{
    const owl_model *m = s->m;
    const owl_llm *l = &m->llm;
    const int64_t n_ctx = s->n_ctx, nb = s->n_batch;
    /* KV cache: layers held x {K, V} x n_ctx x kv_dim */
    const uint64_t elt = s->kv_type == OWL_TYPE_F16 ? 2 : 4;
    const uint64_t nl = (uint64_t)(m->opts.layer_end - m->opts.layer_begin);
    uint64_t plane = mul_u64(mul_u64((uint64_t)n_ctx, (uint64_t)l->kv_dim), elt);
    uint64_t kv_bytes = mul_u64(mul_u64(plane, nl), 2);
    /* LLM batch buffers (floats): xn q att tmp hidden (d), k v (kv_dim), g u (ffn); logits */
    uint64_t row = 5 * (uint64_t)l->d + 2 * (uint64_t)l->kv_dim + 2 * (uint64_t)l->ffn;
    uint64_t llm_f = mul_u64(row, (uint64_t)nb) + (uint64_t)l->n_vocab + 64 * 12;
    uint64_t img_f = m->has_vision ? (uint64_t)img_scratch(m, NULL, NULL) : 0;
    uint64_t mm_b = matmul_scratch(m, nb);
    int64_t max_kv = n_ctx;
    if (m->has_vision && m->abs.n_queries + m->vit.n_tok > max_kv)
        max_kv = m->abs.n_queries + m->vit.n_tok;
    uint64_t att_b = owl_attention_scratch_size(max_kv, s->n_threads);
    /* 15 pieces (carve_arena), each rounded up to 64 bytes */
    uint64_t arena = mul_u64(llm_f + img_f, 4);
    if (arena)
        arena += 15 * 64 + (uint64_t)nb + mm_b + att_b + 4 * (uint64_t)n_ctx;
    if (plane == 0 || kv_bytes == 0 || arena == 0 || mm_b == SIZE_MAX || att_b == SIZE_MAX ||
        kv_bytes > SIZE_MAX || arena > SIZE_MAX || arena < mm_b || arena < att_b)
        return owl_err_set(err, OWL_E_NOMEM, "session: sizes overflow (n_ctx %lld, n_batch %lld)",
                           (long long)n_ctx, (long long)nb);
    s->kv_layer_bytes = (size_t)plane;
    s->kv = calloc(1, (size_t)kv_bytes);
    s->arena = calloc(1, (size_t)arena);
    if (!s->kv || !s->arena)
        return owl_err_set(err, OWL_E_NOMEM, "session: cannot allocate %llu bytes of KV cache + %llu of scratch",
                           (unsigned long long)kv_bytes, (unsigned long long)arena);
    s->arena_size = (size_t)arena;
    carve_arena(s, img_f, mm_b, att_b);
    return OWL_OK;
}

owl_status owl_session_init(const owl_model *m, const owl_session_opts *opts, owl_session **out,
                            owl_err *err)
{
    if (!out || !m)
        return owl_err_set(err, OWL_E_INVALID, "owl_session_init: NULL argument");
    *out = NULL;
    owl_session_opts o = opts ? *opts : owl_session_opts_default();
    int64_t n_ctx = 0, nb = 0;
    int nth = 1;
    owl_status st = resolve_opts(m, &o, &n_ctx, &nb, &nth, err);
    if (st != OWL_OK)
        return st;
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
    if ((st = alloc_buffers(s, err)) != OWL_OK) {
        owl_session_free(s);
        return st;
    }
    /* the cache only serves a model with an image encoder */
    size_t rows = (size_t)(m->image_tokens * m->llm.d);
    if (m->has_vision && owl_icache_init(&s->icache, o.image_cache, rows) != OWL_OK) {
        owl_session_free(s);
        return owl_err_set(err, OWL_E_NOMEM, "session: cannot allocate an image cache of %d entries",
                           o.image_cache);
    }
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
int64_t owl_session_n_ctx(const owl_session *s) { return s->n_ctx; }

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

static int32_t read_word(void *word) { return __atomic_load_n((const int32_t *)word, __ATOMIC_RELAXED); }

void owl_session_cancel_read(owl_session *s, int32_t (*read)(void *user), void *user, int32_t epoch)
{
    if (s) {
        s->stop_read = read;
        s->stop_user = user;
        s->stop_epoch = epoch;
    }
}

void owl_session_cancel_when(owl_session *s, const int32_t *word, int32_t epoch)
{
    /* the word is only read: the cast drops const for the void * slot */
    owl_session_cancel_read(s, word ? read_word : NULL, (void *)(uintptr_t)word, epoch);
}
