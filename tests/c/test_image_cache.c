/* test_image_cache.c - the session's cache of encoded images
 * (src/model/image_cache.c, owl_session_encode_image) on the oracle model
 * (build/test-out/oracle_a_f32.gguf): a second encode of the same pixels is a
 * hit with the very rows a miss computes, also after owl_session_reset and
 * through a new owl_chat (same greedy ids); other pixels miss; the least
 * recently used picture goes first; 0 turns it off; it never holds more than
 * its capacity; out-of-range sizes are refused. */
#include <stdlib.h>
#include <string.h>

#include "../../src/owlet.h"
#include "test.h"

#define ORACLE_GGUF "build/test-out/oracle_a_f32.gguf"
#define IMG1 "tests/fixtures/oracle_a/img1.png"
#define N_GEN 8

static owl_model *load_oracle(owl_model_info *info)
{
    owl_model *m = NULL;
    owl_err err = {0};
    owl_status st = owl_model_load_file(ORACLE_GGUF, NULL, &m, &err);
    CHECK_MSG(st == OWL_OK, "load %s: %s", ORACLE_GGUF, err.msg);
    if (m)
        owl_model_get_info(m, info);
    return m;
}

/* A session with an image cache of cap pictures (-1: the defaults as they are). */
static owl_session *cache_session(const owl_model *m, int cap)
{
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = 256;
    o.kv_type = OWL_TYPE_F32;
    if (cap >= 0)
        o.image_cache = cap;
    owl_session *s = NULL;
    owl_err err = {0};
    owl_status st = owl_session_init(m, &o, &s, &err);
    CHECK_MSG(st == OWL_OK, "session: %s", err.msg);
    return s;
}

/* Picture number `which`: CLIP-normalised-looking floats, different per which. */
static float *pixels(const owl_model_info *info, uint64_t which, size_t *n)
{
    *n = (size_t)(info->channels * info->image_size * info->image_size);
    float *px = malloc(sizeof(float) * *n);
    uint64_t r = 0x9e3779b97f4a7c15ull * (which + 1);
    for (size_t i = 0; px && i < *n; i++)
        px[i] = owl_test_rand_f32(&r, -1.8f, 2.1f);
    return px;
}

/* Encode picture `which` (the session's images are cleared first) into rows
 * (may be NULL). */
static void encode(owl_session *s, const owl_model_info *info, uint64_t which, float *rows)
{
    size_t n = 0;
    float *px = pixels(info, which, &n);
    CHECK(px != NULL);
    owl_session_clear_images(s);
    owl_status st = px ? owl_session_encode_image(s, px, n, rows) : OWL_E_NOMEM;
    CHECK_MSG(st == OWL_OK, "encode_image %llu: %s", (unsigned long long)which, owl_session_error(s));
    free(px);
}

static owl_image_cache_stats cstats(const owl_session *s)
{
    owl_image_cache_stats c;
    memset(&c, 0xab, sizeof c);
    owl_session_image_cache_stats(s, &c);
    return c;
}

TEST(image_cache_second_encode_of_the_same_pixels_is_a_hit_with_identical_rows)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, -1) : NULL, *off = m ? cache_session(m, 0) : NULL;
    if (!s || !off)
        goto done;
    size_t nr = (size_t)(info.image_tokens * info.d_model);
    float *a = malloc(sizeof(float) * nr), *b = malloc(sizeof(float) * nr), *c = malloc(sizeof(float) * nr);
    owl_image_cache_stats st = cstats(s);
    CHECK_EQ_INT(st.capacity, 4); /* the documented default */
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.hits, 0);
    CHECK_EQ_INT(st.misses, 0);
    encode(s, &info, 1, a);
    st = cstats(s);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(st.hits, 0);
    CHECK_EQ_INT(st.entries, 1);
    /* a reset (a new chat on the session) keeps the cache */
    owl_session_reset(s);
    memset(b, 0, sizeof(float) * nr);
    encode(s, &info, 1, b);
    st = cstats(s);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_MSG(st.saved_ms > 0, "a hit spares its entry's encode time: saved_ms %g", st.saved_ms);
    CHECK_MSG(memcmp(a, b, sizeof(float) * nr) == 0, "a hit's rows differ from the miss's");
    /* and both are what a session without the cache computes */
    encode(off, &info, 1, c);
    CHECK_MSG(memcmp(a, c, sizeof(float) * nr) == 0, "the cached rows differ from an uncached encode");
    CHECK(owl_test_max_abs(a, nr) > 0);
    free(a);
    free(b);
    free(c);
done:
    owl_session_free(s);
    owl_session_free(off);
    owl_model_free(m);
}

TEST(image_cache_different_pixels_miss)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, 4) : NULL;
    if (!s)
        goto done;
    size_t n = 0;
    float *px = pixels(&info, 7, &n);
    CHECK_EQ_INT(owl_session_encode_image(s, px, n, NULL), OWL_OK);
    px[n / 2] = nextafterf(px[n / 2], 10.0f); /* one ulp of one pixel */
    CHECK_EQ_INT(owl_session_encode_image(s, px, n, NULL), OWL_OK);
    owl_image_cache_stats st = cstats(s);
    CHECK_EQ_INT(st.misses, 2);
    CHECK_EQ_INT(st.hits, 0);
    CHECK_EQ_INT(st.entries, 2);
    free(px);
done:
    owl_session_free(s);
    owl_model_free(m);
}

TEST(image_cache_evicts_the_least_recently_used_picture)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, 2) : NULL;
    if (!s)
        goto done;
    /* picture, then the hits and misses counted after its encode */
    const struct {
        int pic, hits, misses;
    } steps[] = {
        {1, 0, 1}, /* A        cache: A       */
        {2, 0, 2}, /* B               A B     */
        {1, 1, 2}, /* A hit           B A  (A most recent) */
        {3, 1, 3}, /* C evicts B      A C     */
        {1, 2, 3}, /* A hit           C A     */
        {2, 2, 4}, /* B evicts C      A B     */
        {3, 2, 5}, /* C evicts A      B C     */
        {2, 3, 5}, /* B hit           C B     */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        encode(s, &info, (uint64_t)steps[i].pic, NULL);
        owl_image_cache_stats st = cstats(s);
        CHECK_MSG(st.hits == steps[i].hits && st.misses == steps[i].misses,
                  "step %zu (picture %d): %lld hits %lld misses, want %d %d", i, steps[i].pic, (long long)st.hits,
                  (long long)st.misses, steps[i].hits, steps[i].misses);
        CHECK(st.entries <= 2);
    }
done:
    owl_session_free(s);
    owl_model_free(m);
}

TEST(image_cache_off_computes_every_encode)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, 0) : NULL;
    if (!s)
        goto done;
    size_t nr = (size_t)(info.image_tokens * info.d_model);
    float *a = malloc(sizeof(float) * nr), *b = malloc(sizeof(float) * nr);
    encode(s, &info, 1, a);
    owl_session_reset(s);
    encode(s, &info, 1, b);
    owl_image_cache_stats st = cstats(s);
    CHECK_EQ_INT(st.capacity, 0);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.bytes, 0);
    CHECK_EQ_INT(st.hits, 0);
    CHECK_EQ_INT(st.misses, 0);
    CHECK(memcmp(a, b, sizeof(float) * nr) == 0); /* the encode is deterministic */
    free(a);
    free(b);
done:
    owl_session_free(s);
    owl_model_free(m);
}

TEST(image_cache_holds_at_most_its_capacity)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, 3) : NULL;
    if (!s)
        goto done;
    const size_t one = (size_t)(info.image_tokens * info.d_model) * sizeof(float);
    for (int i = 0; i < 7; i++) {
        encode(s, &info, (uint64_t)(100 + i), NULL);
        owl_image_cache_stats st = cstats(s);
        int want = i + 1 < 3 ? i + 1 : 3;
        CHECK_EQ_INT(st.entries, want);
        CHECK_EQ_INT(st.bytes, (size_t)want * one);
        CHECK_EQ_INT(st.capacity, 3);
    }
    /* the three most recent are there, the older ones are gone */
    encode(s, &info, 106, NULL);
    encode(s, &info, 104, NULL);
    encode(s, &info, 103, NULL);
    owl_image_cache_stats st = cstats(s);
    CHECK_EQ_INT(st.hits, 2);
    CHECK_EQ_INT(st.misses, 8);
done:
    owl_session_free(s);
    owl_model_free(m);
}

TEST(image_cache_size_out_of_range_is_refused)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    if (!m)
        return;
    const int bad[] = {-1, OWL_MAX_IMAGE_CACHE + 1};
    for (int i = 0; i < 2; i++) {
        owl_session_opts o = owl_session_opts_default();
        o.image_cache = bad[i];
        owl_session *s = NULL;
        owl_err err = {0};
        CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_E_INVALID);
        CHECK(s == NULL);
        CHECK_MSG(strstr(err.msg, "image_cache") != NULL, "message: %s", err.msg);
    }
    owl_session *s = cache_session(m, OWL_MAX_IMAGE_CACHE);
    CHECK(s != NULL);
    if (s)
        CHECK_EQ_INT(cstats(s).capacity, OWL_MAX_IMAGE_CACHE);
    owl_session_free(s);
    owl_model_free(m);
}

/* Greedy ids of one question about img1 on a fresh chat of s. */
static int ask_img1(const owl_model *m, owl_session *s, int32_t *ids)
{
    owl_err err = {0};
    owl_chat *c = NULL;
    owl_chat_opts co = {"pad"};
    owl_session_reset(s); /* a new chat: empty KV cache, no images held */
    CHECK_EQ_INT(owl_chat_init(m, s, &co, &c, &err), OWL_OK);
    if (!c)
        return 0;
    size_t size = 0;
    void *png = owl_test_read_file(IMG1, &size);
    CHECK_MSG(png != NULL, "cannot read %s", IMG1);
    int n = 0;
    if (png && owl_chat_add_image_encoded(c, png, size) == OWL_OK && owl_chat_ask(c, "Describe the image.") == OWL_OK) {
        owl_chat_gen g = owl_chat_gen_default();
        g.max_tokens = N_GEN;
        CHECK_EQ_INT(owl_chat_gen_begin(c, &g), OWL_OK);
        int r;
        do {
            r = owl_chat_step(c);
            if (r >= 0)
                ids[n++] = owl_chat_last_token(c);
        } while (r > 0 && n <= N_GEN);
        CHECK(r == 0);
        CHECK_EQ_INT(owl_chat_gen_end(c), OWL_OK);
    } else {
        CHECK_MSG(0, "chat: %s", owl_chat_error(c));
    }
    free(png);
    owl_chat_free(c);
    return n;
}

TEST(image_cache_new_chat_with_the_same_picture_hits_and_answers_the_same)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, -1) : NULL, *off = m ? cache_session(m, 0) : NULL;
    if (!s || !off)
        goto done;
    int32_t first[N_GEN + 1], second[N_GEN + 1], uncached[N_GEN + 1];
    int n1 = ask_img1(m, s, first);
    CHECK_EQ_INT(cstats(s).misses, 1);
    CHECK_EQ_INT(cstats(s).hits, 0);
    int n2 = ask_img1(m, s, second);
    CHECK_EQ_INT(cstats(s).misses, 1);
    CHECK_EQ_INT(cstats(s).hits, 1);
    int n3 = ask_img1(m, off, uncached);
    CHECK(n1 > 0);
    CHECK_EQ_INT(n2, n1);
    CHECK_EQ_INT(n3, n1);
    for (int i = 0; i < n1 && i < n2 && i < n3; i++) {
        CHECK_MSG(second[i] == first[i], "token %d: %d after a hit, %d after a miss", i, (int)second[i], (int)first[i]);
        CHECK_MSG(uncached[i] == first[i], "token %d: %d uncached, %d cached", i, (int)uncached[i], (int)first[i]);
    }
done:
    owl_session_free(s);
    owl_session_free(off);
    owl_model_free(m);
}

TEST(image_cache_warm_stores_without_attaching_and_the_next_encode_hits)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, -1) : NULL, *off = m ? cache_session(m, 0) : NULL;
    if (!s || !off)
        goto done;
    size_t nr = (size_t)(info.image_tokens * info.d_model), n = 0;
    float *px = pixels(&info, 3, &n), *a = malloc(sizeof(float) * nr), *b = malloc(sizeof(float) * nr);
    int encoded = -1;
    CHECK_EQ_INT(owl_session_warm_image(s, px, n, &encoded), OWL_OK);
    CHECK_EQ_INT(encoded, 1);
    owl_image_cache_stats st = cstats(s);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(st.hits, 0);
    CHECK_EQ_INT(st.entries, 1);
    /* warming again runs nothing and moves no counter */
    CHECK_EQ_INT(owl_session_warm_image(s, px, n, &encoded), OWL_OK);
    CHECK_EQ_INT(encoded, 0);
    st = cstats(s);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(st.hits, 0);
    /* nothing was attached: the prompt's image slot still has no image */
    int32_t ids[] = {1, OWL_IMAGE_TOKEN, 3};
    CHECK_EQ_INT(owl_session_prefill(s, ids, 3, NULL, NULL), OWL_E_INVALID);
    owl_session_reset(s);
    /* the encode of the same pixels is a hit, with the rows an uncached encode computes */
    CHECK_EQ_INT(owl_session_encode_image(s, px, n, a), OWL_OK);
    st = cstats(s);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.misses, 1);
    CHECK_EQ_INT(owl_session_encode_image(off, px, n, b), OWL_OK);
    CHECK_MSG(memcmp(a, b, sizeof(float) * nr) == 0, "warmed rows differ from an uncached encode");
    /* with the cache off a warm is a no-op; a wrong size is refused either way */
    CHECK_EQ_INT(owl_session_warm_image(off, px, n, &encoded), OWL_OK);
    CHECK_EQ_INT(encoded, 0);
    CHECK_EQ_INT(cstats(off).misses, 0);
    CHECK_EQ_INT(owl_session_warm_image(s, px, n - 1, &encoded), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_warm_image(off, px, n - 1, &encoded), OWL_E_INVALID);
    free(px);
    free(a);
    free(b);
done:
    owl_session_free(s);
    owl_session_free(off);
    owl_model_free(m);
}

TEST(image_cache_chat_warm_then_ask_hits_and_answers_the_same)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    owl_session *s = m ? cache_session(m, -1) : NULL, *off = m ? cache_session(m, 0) : NULL;
    if (!s || !off)
        goto done;
    owl_err err = {0};
    owl_chat *c = NULL;
    owl_chat_opts co = {"pad"};
    CHECK_EQ_INT(owl_chat_init(m, s, &co, &c, &err), OWL_OK);
    size_t size = 0;
    void *png = owl_test_read_file(IMG1, &size);
    int encoded = -1;
    if (c && png) {
        CHECK_EQ_INT(owl_chat_warm_image_encoded(c, png, size, &encoded), OWL_OK);
        CHECK_EQ_INT(encoded, 1);
        CHECK_EQ_INT(owl_chat_warm_image_encoded(c, png, 3, &encoded), OWL_E_FORMAT); /* not an image */
        CHECK_EQ_INT(owl_chat_warm_image_rgba(c, png, 0, 1, 4, &encoded), OWL_E_INVALID);
        CHECK_EQ_INT(cstats(s).misses, 1);
        CHECK_EQ_INT(cstats(s).hits, 0);
    }
    owl_chat_free(c);
    int32_t warmed[N_GEN + 1], uncached[N_GEN + 1];
    int n1 = ask_img1(m, s, warmed);
    CHECK_EQ_INT(cstats(s).hits, 1); /* the question's add_image found the warmed picture */
    CHECK_EQ_INT(cstats(s).misses, 1);
    int n2 = ask_img1(m, off, uncached);
    CHECK(n1 > 0);
    CHECK_EQ_INT(n2, n1);
    for (int i = 0; i < n1 && i < n2; i++)
        CHECK_MSG(warmed[i] == uncached[i], "token %d: %d warmed, %d uncached", i, (int)warmed[i], (int)uncached[i]);
    free(png);
done:
    owl_session_free(s);
    owl_session_free(off);
    owl_model_free(m);
}

/* ------------------------------------------------ owl_session_cancel_when */

/* A tap that moves the cancel counter on when the tensor `trigger` goes by:
 * the page's Atomics.store arriving in the middle of a call. */
typedef struct {
    int32_t word;
    const char *trigger;
    int fired;
    int after; /* taps after the counter moved on: the layers that still ran */
} bump_ctl;

static void bump_tap(void *user, const char *name, const float *data, int64_t rows, int64_t cols)
{
    (void)data, (void)rows, (void)cols;
    bump_ctl *b = user;
    if (b->fired)
        b->after++;
    if (b->trigger && strcmp(name, b->trigger) == 0) {
        __atomic_store_n(&b->word, b->word + 1, __ATOMIC_RELAXED);
        b->fired++;
    }
}

static owl_session *tapped_session(const owl_model *m, bump_ctl *b)
{
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = 256;
    o.kv_type = OWL_TYPE_F32;
    o.tap = bump_tap;
    o.tap_user = b;
    owl_session *s = NULL;
    owl_err err = {0};
    CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_OK);
    return s;
}

static int32_t read_bump(void *user) { return __atomic_load_n(&((bump_ctl *)user)->word, __ATOMIC_RELAXED); }

/* owl_session_cancel_read: the counter read through a function (the wasm engine's
 * own 4-byte buffer); the same stops as cancel_when's word, and NULL never stops. */
TEST(cancel_read_stops_midway_through_its_function)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    bump_ctl b = {7, NULL, 0, 0};
    owl_session *s = m ? tapped_session(m, &b) : NULL;
    size_t npx = 0;
    float *px = m ? pixels(&info, 7, &npx) : NULL;
    float *rows = m ? malloc(sizeof(float) * (size_t)(info.image_tokens * info.d_model)) : NULL;
    if (!s || !px || !rows)
        goto done;
    owl_session_cancel_read(s, read_bump, &b, b.word - 1); /* moved on before: nothing runs */
    CHECK_EQ_INT(owl_session_encode_image(s, px, npx, rows), OWL_E_CANCELLED);
    b.trigger = "vision_embeddings"; /* moved on in the middle: no later layer runs */
    owl_session_cancel_read(s, read_bump, &b, b.word);
    CHECK_EQ_INT(owl_session_encode_image(s, px, npx, rows), OWL_E_CANCELLED);
    CHECK_EQ_INT(b.fired, 1);
    CHECK_EQ_INT(b.after, 0);
    owl_session_cancel_read(s, NULL, NULL, 0); /* off: the counter moves and nothing stops */
    b.fired = b.after = 0;
    CHECK_EQ_INT(owl_session_encode_image(s, px, npx, rows), OWL_OK);
    CHECK_EQ_INT(b.fired, 1);
    CHECK(b.after > 0);
done:
    free(rows);
    free(px);
    owl_session_free(s);
    owl_model_free(m);
}

static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, sizeof(float) * n) == 0; }

TEST(cancel_when_stops_encode_prefill_and_decode_midway_and_the_session_answers_as_before)
{
    owl_model_info info;
    owl_model *m = load_oracle(&info);
    bump_ctl b = {0, NULL, 0, 0};
    owl_session *s = m ? tapped_session(m, &b) : NULL, *ref = m ? cache_session(m, -1) : NULL;
    size_t npx = 0;
    float *px = m ? pixels(&info, 7, &npx) : NULL;
    const size_t nrows = (size_t)(info.image_tokens * info.d_model);
    float *rows = malloc(sizeof(float) * nrows), *want = malloc(sizeof(float) * nrows);
    float *logits = malloc(sizeof(float) * (size_t)info.n_vocab);
    if (!s || !ref || !px || !rows || !want || !logits)
        goto done;
    const int32_t ids[] = {1, OWL_IMAGE_TOKEN, 17, 29, 5};
    const int64_t L = 2 + 2 + info.image_tokens; /* expanded positions */

    /* a counter that moved on before the call: nothing runs */
    owl_session_cancel_when(s, &b.word, b.word - 1);
    CHECK_EQ_INT(owl_session_encode_image(s, px, npx, rows), OWL_E_CANCELLED);
    CHECK(strstr(owl_session_error(s), "cancelled") != NULL);
    /* moved on in the middle of the vision tower: stopped, nothing added or cached */
    b.trigger = "vision_embeddings";
    owl_session_cancel_when(s, &b.word, b.word);
    CHECK_EQ_INT(owl_session_encode_image(s, px, npx, rows), OWL_E_CANCELLED);
    CHECK_EQ_INT(b.fired, 1);
    CHECK_EQ_INT(b.after, 0); /* no layer ran after it: no vision_out, no abstractor_out */
    CHECK_EQ_INT(cstats(s).entries, 0);
    int warmed = -1;
    owl_session_cancel_when(s, &b.word, b.word);
    CHECK_EQ_INT(owl_session_warm_image(s, px, npx, &warmed), OWL_E_CANCELLED);
    CHECK_EQ_INT(warmed, 0);
    CHECK_EQ_INT(cstats(s).entries, 0);
    CHECK_EQ_INT(owl_session_prefill(s, ids, 5, NULL, NULL), OWL_E_INVALID); /* no image was added */

    /* armed at the current count: the same calls run, bit for bit as a session without cancel */
    b.trigger = NULL;
    b.fired = 0;
    owl_session_cancel_when(s, &b.word, b.word);
    CHECK_EQ_INT(owl_session_encode_image(s, px, npx, rows), OWL_OK);
    CHECK_EQ_INT(owl_session_encode_image(ref, px, npx, want), OWL_OK);
    CHECK_MSG(same_floats(rows, want, nrows), "encoded rows differ after a cancelled encode");
    CHECK_EQ_INT(cstats(s).entries, 1);

    /* the prompt: stopped at the first layer, n_past stays; then it runs as ref's */
    b.trigger = "llm_input_embeds";
    owl_session_cancel_when(s, &b.word, b.word);
    b.fired = b.after = 0;
    CHECK_EQ_INT(owl_session_prefill(s, ids, 5, NULL, NULL), OWL_E_CANCELLED);
    CHECK_EQ_INT(b.fired, 1);
    CHECK_EQ_INT(b.after, 0); /* no llm_layer0 */
    CHECK_EQ_INT(owl_session_n_past(s), 0);
    b.trigger = NULL;
    owl_session_cancel_when(s, &b.word, b.word);
    int64_t npos = 0;
    CHECK_EQ_INT(owl_session_prefill(s, ids, 5, NULL, &npos), OWL_OK);
    CHECK_EQ_INT(npos, L);
    CHECK_EQ_INT(owl_session_prefill(ref, ids, 5, NULL, NULL), OWL_OK);
    CHECK_MSG(same_floats(owl_session_logits(s), owl_session_logits(ref), (size_t)info.n_vocab),
              "prompt logits differ after a cancelled prefill");

    /* a decode step stopped after layer 0: n_past stays, the next one matches */
    const float *lg = NULL;
    if (info.n_layers > 1) {
        b.trigger = "llm_layer0";
        owl_session_cancel_when(s, &b.word, b.word);
        b.fired = b.after = 0;
        CHECK_EQ_INT(owl_session_decode(s, 42, &lg), OWL_E_CANCELLED);
        CHECK_EQ_INT(b.fired, 1);
        CHECK_EQ_INT(b.after, 0); /* no llm_layer1 */
        CHECK_EQ_INT(owl_session_n_past(s), L);
    }
    b.trigger = NULL;
    owl_session_cancel_when(s, &b.word, b.word);
    CHECK_EQ_INT(owl_session_decode(s, 42, &lg), OWL_OK);
    memcpy(logits, owl_session_logits(s), sizeof(float) * (size_t)info.n_vocab);
    CHECK_EQ_INT(owl_session_decode(ref, 42, &lg), OWL_OK);
    CHECK_MSG(same_floats(logits, owl_session_logits(ref), (size_t)info.n_vocab),
              "decode logits differ after a cancelled decode");
    CHECK_EQ_INT(owl_session_n_past(s), L + 1);
    /* off: word NULL never stops */
    owl_session_cancel_when(s, NULL, 0);
    CHECK_EQ_INT(owl_session_decode(s, 43, &lg), OWL_OK);
done:
    free(px);
    free(rows);
    free(want);
    free(logits);
    owl_session_free(s);
    owl_session_free(ref);
    owl_model_free(m);
}
