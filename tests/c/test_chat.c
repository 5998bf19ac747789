/* test_chat.c - the conversation (owl_chat_*, src/chat/chat.c) on the oracle
 * model (build/test-out/oracle_a_f32.gguf, made by the converter before the C
 * tests): the whole-model and pipeline paths pick the same ids, a later turn
 * reuses the cached prefix and equals a replay, the context policy refuses
 * before running, stop strings end the answer without showing it. */
#include <stdlib.h>
#include <string.h>

#include "../../src/core/gguf.h"
#include "../../src/image/image.h"
#include "../../src/owlet.h"
#include "test.h"

#define ORACLE_GGUF "build/test-out/oracle_a_f32.gguf"
#define IMG1 "tests/fixtures/oracle_a/img1.png"
#define N_GEN 8

typedef struct {
    owl_model *m;
    owl_session *s;
    owl_chat *c;
} chat_env;

static int env_init(chat_env *e, const owl_model_opts *mo, int64_t n_ctx)
{
    owl_err err = {0};
    memset(e, 0, sizeof *e);
    owl_session_opts so = owl_session_opts_default();
    so.kv_type = OWL_TYPE_F32;
    so.n_ctx = n_ctx;
    owl_chat_opts co = {"pad"};
    int ok = owl_model_load_file(ORACLE_GGUF, mo, &e->m, &err) == OWL_OK &&
             owl_session_init(e->m, &so, &e->s, &err) == OWL_OK && owl_chat_init(e->m, e->s, &co, &e->c, &err) == OWL_OK;
    CHECK_MSG(ok, "chat env: %s", err.msg);
    return ok;
}

static void env_free(chat_env *e)
{
    owl_chat_free(e->c);
    owl_session_free(e->s);
    owl_model_free(e->m);
}

static int add_img1(owl_chat *c)
{
    size_t n = 0;
    void *png = owl_test_read_file(IMG1, &n);
    CHECK_MSG(png != NULL, "cannot read %s", IMG1);
    int st = png ? owl_chat_add_image_encoded(c, png, n) : -1;
    CHECK_MSG(st == OWL_OK, "add_image: %s", owl_chat_error(c));
    free(png);
    return st == OWL_OK;
}

/* Greedy answer through owl_chat_step: ids (up to N_GEN) and text. */
static int answer(owl_chat *c, const char *const *stops, int n_stops, int32_t *ids, char *text, size_t cap)
{
    owl_chat_gen g = owl_chat_gen_default();
    g.max_tokens = N_GEN;
    g.stops = stops;
    g.n_stops = n_stops;
    CHECK_EQ_INT(owl_chat_gen_begin(c, &g), OWL_OK);
    int n = 0, r;
    size_t k = 0;
    text[0] = 0;
    do {
        r = owl_chat_step(c);
        CHECK_MSG(r >= 0, "step: %s", owl_chat_error(c));
        if (r < 0)
            break;
        ids[n++] = owl_chat_last_token(c);
        size_t len = 0;
        const char *p = owl_chat_piece(c, &len);
        if (k + len < cap) {
            memcpy(text + k, p, len);
            text[k += len] = 0;
        }
    } while (r > 0 && n < N_GEN + 1);
    CHECK_EQ_INT(owl_chat_gen_end(c), OWL_OK);
    return n;
}

TEST(chat_whole_model_and_two_stage_pipeline_pick_the_same_ids)
{
    chat_env w, a, b;
    owl_model_opts oa = {.layer_begin = 0, .layer_end = 1, .no_head = 1};
    owl_model_opts ob = {.layer_begin = 1, .layer_end = 2, .no_vision = 1, .no_embed = 1};
    if (!env_init(&w, NULL, 0) || !env_init(&a, &oa, 0) || !env_init(&b, &ob, 0))
        return;
    int32_t want[N_GEN + 1];
    char text[512];
    add_img1(w.c);
    CHECK_EQ_INT(owl_chat_ask(w.c, "Describe the image."), OWL_OK);
    int n = answer(w.c, NULL, 0, want, text, sizeof text);
    CHECK(n > 0);

    /* the same question as a pipeline: stage a prepares/embeds/pushes, b samples */
    add_img1(a.c);
    int64_t rows = 0, pos0 = 0;
    CHECK_EQ_INT(owl_chat_prepare(a.c, "Describe the image.", &rows, &pos0), OWL_OK);
    owl_model_info info;
    owl_model_get_info(a.m, &info);
    float *x = malloc(sizeof(float) * (size_t)(rows * info.d_model));
    uint8_t *mod = malloc((size_t)rows);
    owl_chat_gen g = owl_chat_gen_default();
    g.max_tokens = N_GEN;
    int r = 1, k = 0, has_mod = 1;
    for (; x && mod && r > 0 && k <= N_GEN; k++, has_mod = 0) {
        int64_t n_rows = 0, p0 = 0;
        int32_t id = -1;
        CHECK_EQ_INT(owl_chat_embed(a.c, x, mod, rows, &n_rows, &p0), OWL_OK);
        if (k == 0) {
            CHECK_EQ_INT(owl_chat_gen_begin(a.c, &g), OWL_OK);
            const int32_t *h;
            int64_t nh = owl_chat_history(a.c, &h);
            CHECK_EQ_INT(owl_chat_sampler_begin(b.c, &g, h, nh), OWL_OK);
        }
        CHECK_EQ_INT(owl_session_run_layers(a.s, 0, 1, x, n_rows, p0, has_mod ? mod : NULL), OWL_OK);
        CHECK_EQ_INT(owl_session_run_layers(b.s, 1, 2, x, n_rows, p0, has_mod ? mod : NULL), OWL_OK);
        CHECK_EQ_INT(owl_chat_sample(b.c, x, n_rows, &id), OWL_OK);
        CHECK_MSG(k < n && id == want[k], "token %d: pipeline %d, whole model %d", k, (int)id, k < n ? (int)want[k] : -1);
        r = owl_chat_push_token(a.c, id);
    }
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(k, n);
    free(x);
    free(mod);
    env_free(&w);
    env_free(&a);
    env_free(&b);
}

TEST(chat_second_turn_reuses_the_cache_and_equals_a_replay)
{
    chat_env live, replay;
    if (!env_init(&live, NULL, 0) || !env_init(&replay, NULL, 0))
        return;
    int32_t ids1[N_GEN + 1], ids2[N_GEN + 1], ids3[N_GEN + 1];
    char a1[512], a2[512], a3[512];
    CHECK_EQ_INT(owl_chat_ask(live.c, "What is the capital of France?"), OWL_OK);
    answer(live.c, NULL, 0, ids1, a1, sizeof a1);
    int64_t cached = owl_session_n_past(live.s);
    int64_t rows = 0, pos0 = 0;
    CHECK_EQ_INT(owl_chat_prepare(live.c, "And of Italy?", &rows, &pos0), OWL_OK);
    CHECK_MSG(pos0 > 0 && pos0 <= cached, "prefix reused: pos0 %lld, %lld cached", (long long)pos0, (long long)cached);
    CHECK_EQ_INT(owl_chat_run(live.c, NULL), OWL_OK);
    int n2 = answer(live.c, NULL, 0, ids2, a2, sizeof a2);

    CHECK_EQ_INT(owl_chat_push_turn(replay.c, OWL_ROLE_USER, "What is the capital of France?"), OWL_OK);
    CHECK_EQ_INT(owl_chat_push_turn(replay.c, OWL_ROLE_ASSISTANT, a1), OWL_OK);
    CHECK_EQ_INT(owl_chat_ask(replay.c, "And of Italy?"), OWL_OK);
    int n3 = answer(replay.c, NULL, 0, ids3, a3, sizeof a3);
    CHECK_EQ_INT(n2, n3);
    CHECK(n2 == n3 && memcmp(ids2, ids3, sizeof(int32_t) * (size_t)n2) == 0);
    CHECK(strcmp(a2, a3) == 0);
    env_free(&live);
    env_free(&replay);
}

TEST(chat_refuses_a_question_over_the_context_before_running_and_stays_usable)
{
    chat_env e;
    if (!env_init(&e, NULL, 24))
        return;
    char q[400];
    memset(q, 0, sizeof q);
    for (int i = 0; i < 30; i++)
        strcat(q, "word ");
    CHECK_EQ_INT(owl_chat_ask(e.c, q), OWL_E_LIMIT);
    CHECK(strstr(owl_chat_error(e.c), "the context holds 24") != NULL);
    CHECK_EQ_INT(owl_session_n_past(e.s), 0);
    CHECK_EQ_INT(owl_chat_history(e.c, NULL), 0);
    int32_t ids[N_GEN + 1];
    char text[512];
    CHECK_EQ_INT(owl_chat_ask(e.c, "Hi?"), OWL_OK);
    int n = answer(e.c, NULL, 0, ids, text, sizeof text);
    CHECK(n > 0);
    /* an answer that fills the context ends normally */
    CHECK_MSG(owl_chat_reason(e.c) == OWL_CHAT_LENGTH || owl_chat_reason(e.c) == OWL_CHAT_CONTEXT ||
                  owl_chat_reason(e.c) == OWL_CHAT_EOS,
              "reason %d", owl_chat_reason(e.c));
    env_free(&e);
}

TEST(chat_stop_string_ends_the_answer_and_is_never_shown)
{
    chat_env e;
    if (!env_init(&e, NULL, 0))
        return;
    int32_t ids[N_GEN + 1];
    char full[512], cut[512];
    CHECK_EQ_INT(owl_chat_ask(e.c, "What is the capital of France?"), OWL_OK);
    answer(e.c, NULL, 0, ids, full, sizeof full);
    size_t len = strlen(full);
    CHECK_MSG(len >= 4, "answer '%s' too short to cut", full);
    if (len < 4) {
        env_free(&e);
        return;
    }
    /* a stop string from the middle of the answer: the text before it, nothing after */
    char stop[3] = {full[len / 2], full[len / 2 + 1], 0};
    const char *first = strstr(full, stop);
    const char *stops[] = {stop};
    owl_chat_reset(e.c);
    CHECK_EQ_INT(owl_chat_ask(e.c, "What is the capital of France?"), OWL_OK);
    answer(e.c, stops, 1, ids, cut, sizeof cut);
    CHECK_EQ_INT(owl_chat_reason(e.c), OWL_CHAT_STOP);
    CHECK_EQ_INT(strlen(cut), (size_t)(first - full));
    CHECK(strncmp(cut, full, (size_t)(first - full)) == 0);
    env_free(&e);
}

TEST(chat_rejects_bad_arguments_with_named_errors)
{
    chat_env e;
    if (!env_init(&e, NULL, 0))
        return;
    owl_chat_gen g = owl_chat_gen_default();
    CHECK_EQ_INT(owl_chat_gen_begin(e.c, &g), OWL_E_STATE); /* no question yet */
    CHECK_EQ_INT(owl_chat_push_turn(e.c, OWL_ROLE_ASSISTANT, "x"), OWL_E_INVALID);
    CHECK_EQ_INT(owl_chat_add_image_rgba(e.c, NULL, 4, 4, 16), OWL_E_INVALID);
    uint8_t px[16] = {0};
    CHECK_EQ_INT(owl_chat_add_image_rgba(e.c, px, 4, 1, 8), OWL_E_INVALID); /* stride < 4 * w */
    CHECK_EQ_INT(owl_chat_add_image_encoded(e.c, px, sizeof px), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_chat_ask(e.c, "Hi?"), OWL_OK);
    const char *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = "x";
    g.stops = many;
    g.n_stops = 65;
    CHECK_EQ_INT(owl_chat_gen_begin(e.c, &g), OWL_E_INVALID);
    g.n_stops = 0;
    g.top_p = 0;
    CHECK_EQ_INT(owl_chat_gen_begin(e.c, &g), OWL_E_INVALID);
    CHECK(strstr(owl_chat_error(e.c), "top_p") != NULL);
    g.top_p = 1;
    CHECK_EQ_INT(owl_chat_gen_begin(e.c, &g), OWL_OK);
    CHECK(owl_chat_step(e.c) >= 0);
    CHECK_EQ_INT(owl_chat_gen_end(e.c), OWL_OK);
    env_free(&e);
}

TEST(chat_answer_ends_where_the_model_starts_the_next_user_turn)
{
    chat_env e;
    if (!env_init(&e, NULL, 0))
        return;
    /* the ids of a model that skips eos and writes the next turn */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_EQ_INT(owl_prompt_tokenize(owl_model_gguf(e.m), "Paris. USER: and Rome?", 0, 0, 0, &ids, &n, NULL), OWL_OK);
    CHECK_EQ_INT(owl_chat_ask(e.c, "What is the capital of France?"), OWL_OK);
    owl_chat_gen g = owl_chat_gen_default();
    CHECK_EQ_INT(owl_chat_gen_begin(e.c, &g), OWL_OK);
    char text[256] = "";
    int r = 1;
    for (size_t i = 1; i < n && r > 0; i++) { /* (ids[0] is bos) */
        r = owl_chat_push_token(e.c, ids[i]);
        size_t len = 0;
        const char *p = owl_chat_piece(e.c, &len);
        strncat(text, p, len);
        if (r > 0) { /* the token is fed back as the pipeline would */
            owl_model_info info;
            owl_model_get_info(e.m, &info);
            float x[4096];
            int64_t rows = 0, pos0 = 0;
            CHECK(info.d_model <= 4096);
            CHECK_EQ_INT(owl_chat_embed(e.c, x, NULL, 1, &rows, &pos0), OWL_OK);
        }
    }
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(owl_chat_reason(e.c), OWL_CHAT_STOP);
    CHECK_MSG(strcmp(text, " Paris. ") == 0 || strcmp(text, "Paris. ") == 0, "answer '%s'", text);
    free(ids);
    env_free(&e);
}

/* Weights that make the model compute NaN (valid file, wrong numbers): the
 * answer fails with OWL_E_FORMAT, naming the model, not OWL_E_INVALID (which
 * would blame the caller). */
TEST(chat_nan_logits_blame_the_model_weights)
{
    size_t n = 0;
    uint8_t *buf = owl_test_read_file(ORACLE_GGUF, &n);
    CHECK_MSG(buf != NULL, "cannot read %s", ORACLE_GGUF);
    if (!buf)
        return;
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(buf, n, 0, 0, &g, &err), OWL_OK);
    const owl_gguf_tensor *t = owl_gguf_find_tensor(&g, "output_norm.weight");
    CHECK_MSG(t && t->type == OWL_TYPE_F32, "output_norm.weight as f32");
    if (t && t->type == OWL_TYPE_F32) {
        float nan = 0.0f / 0.0f;
        uint8_t *p = buf + g.data_offset + t->offset;
        for (size_t i = 0; i < t->size / sizeof(float); i++)
            memcpy(p + i * sizeof(float), &nan, sizeof nan);
    }
    owl_gguf_free(&g);
    chat_env e;
    memset(&e, 0, sizeof e);
    owl_session_opts so = owl_session_opts_default();
    so.kv_type = OWL_TYPE_F32;
    owl_chat_opts co = {"pad"};
    int ok = owl_model_load_buffer(buf, n, NULL, &e.m, &err) == OWL_OK &&
             owl_session_init(e.m, &so, &e.s, &err) == OWL_OK && owl_chat_init(e.m, e.s, &co, &e.c, &err) == OWL_OK;
    CHECK_MSG(ok, "chat env: %s", err.msg);
    if (ok) {
        owl_status st = owl_chat_ask(e.c, "Hi");
        CHECK_EQ_INT(st, OWL_OK);
        owl_chat_gen gen = owl_chat_gen_default();
        gen.max_tokens = 2;
        if (st == OWL_OK)
            CHECK_EQ_INT(owl_chat_gen_begin(e.c, &gen), OWL_OK);
        int r = owl_chat_step(e.c);
        CHECK_EQ_INT(r, OWL_E_FORMAT);
        CHECK_MSG(strstr(owl_chat_error(e.c), "model: ") && strstr(owl_chat_error(e.c), "NaN"),
                  "message names the model: %s", owl_chat_error(e.c));
    }
    env_free(&e);
    free(buf);
}

/* Ids the cache holds, copied (the borrowed pointer moves with the next call). */
static int64_t history_copy(owl_chat *c, int32_t *out, int64_t cap)
{
    const int32_t *h;
    int64_t n = owl_chat_history(c, &h);
    for (int64_t i = 0; i < n && i < cap; i++)
        out[i] = h[i];
    return n;
}

TEST(chat_prime_runs_the_picture_before_the_question_same_ids_and_answer)
{
    chat_env plain, primed;
    if (!env_init(&plain, NULL, 0) || !env_init(&primed, NULL, 0))
        return;
    int32_t want[N_GEN + 1], got[N_GEN + 1], hw[512], hg[512];
    char text[512];
    add_img1(plain.c);
    CHECK_EQ_INT(owl_chat_ask(plain.c, "Describe the image."), OWL_OK);
    owl_chat_stats ps;
    owl_chat_get_stats(plain.c, &ps);
    int64_t nw = history_copy(plain.c, hw, 512);
    int n = answer(plain.c, NULL, 0, want, text, sizeof text);

    int64_t rows = -1, pos0 = -1;
    CHECK_EQ_INT(owl_chat_prime(primed.c, &rows, &pos0), OWL_OK); /* no picture: nothing to run */
    CHECK_EQ_INT(rows, 0);
    add_img1(primed.c);
    CHECK_EQ_INT(owl_chat_prime(primed.c, &rows, &pos0), OWL_OK);
    CHECK_EQ_INT(pos0, 0);
    owl_model_info info;
    owl_model_get_info(primed.m, &info);
    CHECK_MSG(rows > info.image_tokens, "the prime runs the turn's start and the picture: %lld rows", (long long)rows);
    CHECK_EQ_INT(owl_chat_run(primed.c, NULL), OWL_OK);
    owl_chat_stats st;
    owl_chat_get_stats(primed.c, &st);
    CHECK_EQ_INT(st.prompt_rows, rows);
    CHECK_EQ_INT(owl_chat_prime(primed.c, &rows, &pos0), OWL_OK); /* primed already */
    CHECK_EQ_INT(rows, 0);
    int64_t primed_rows = st.prompt_rows;
    CHECK_EQ_INT(owl_chat_prepare(primed.c, "Describe the image.", &rows, &pos0), OWL_OK);
    CHECK_EQ_INT(pos0, primed_rows); /* only the question's own tokens run now */
    CHECK_EQ_INT(rows + primed_rows, ps.prompt_rows);
    CHECK_EQ_INT(owl_chat_run(primed.c, NULL), OWL_OK);
    int64_t nh = history_copy(primed.c, hg, 512);
    CHECK_EQ_INT(nh, nw);
    for (int64_t i = 0; i < nh && i < 512; i++)
        CHECK_MSG(hg[i] == hw[i], "prompt id %lld: %d primed, %d asked at once", (long long)i, (int)hg[i], (int)hw[i]);
    CHECK_EQ_INT(answer(primed.c, NULL, 0, got, text, sizeof text), n);
    for (int i = 0; i < n; i++)
        CHECK_MSG(got[i] == want[i], "token %d: %d primed, %d asked at once", i, (int)got[i], (int)want[i]);
    /* mid-answer and with a part prepared, prime is refused */
    add_img1(primed.c);
    CHECK_EQ_INT(owl_chat_prepare(primed.c, "And now?", &rows, &pos0), OWL_OK);
    CHECK_EQ_INT(owl_chat_prime(primed.c, &rows, &pos0), OWL_E_STATE);
    CHECK_EQ_INT(owl_chat_run(primed.c, NULL), OWL_OK);
    owl_chat_gen g = owl_chat_gen_default();
    CHECK_EQ_INT(owl_chat_gen_begin(primed.c, &g), OWL_OK);
    CHECK_EQ_INT(owl_chat_prime(primed.c, &rows, &pos0), OWL_E_STATE);
    CHECK_EQ_INT(owl_chat_gen_end(primed.c), OWL_OK);
    env_free(&plain);
    env_free(&primed);
}

TEST(chat_clear_images_after_a_prime_then_another_picture_answers_as_a_fresh_chat)
{
    chat_env fresh, c;
    if (!env_init(&fresh, NULL, 0) || !env_init(&c, NULL, 0))
        return;
    owl_model_info info;
    owl_model_get_info(c.m, &info);
    /* another picture: img1 upside down, as RGBA */
    size_t size = 0;
    void *png = owl_test_read_file(IMG1, &size);
    owl_image img = {0};
    owl_err err = {0};
    CHECK(png && owl_image_decode(png, size, &img, NULL, &err) == OWL_OK);
    size_t np = (size_t)img.w * (size_t)img.h;
    uint8_t *rgba = malloc(np * 4);
    for (size_t i = 0; rgba && i < np; i++) {
        memcpy(rgba + 4 * i, img.rgb + 3 * (np - 1 - i), 3);
        rgba[4 * i + 3] = 255;
    }
    int32_t want[N_GEN + 1], got[N_GEN + 1];
    char text[512];
    CHECK_EQ_INT(owl_chat_add_image_rgba(fresh.c, rgba, img.w, img.h, 4 * (size_t)img.w), OWL_OK);
    CHECK_EQ_INT(owl_chat_ask(fresh.c, "Describe the image."), OWL_OK);
    int n = answer(fresh.c, NULL, 0, want, text, sizeof text);

    int64_t rows = 0, pos0 = 0;
    add_img1(c.c);
    CHECK_EQ_INT(owl_chat_prime(c.c, &rows, &pos0), OWL_OK);
    CHECK_EQ_INT(owl_chat_run(c.c, NULL), OWL_OK);
    CHECK_EQ_INT(owl_chat_clear_images(c.c), OWL_OK); /* the picture changed */
    const int32_t *h;
    CHECK_EQ_INT(owl_chat_history(c.c, &h), 0);
    CHECK_EQ_INT(owl_chat_add_image_rgba(c.c, rgba, img.w, img.h, 4 * (size_t)img.w), OWL_OK);
    CHECK_EQ_INT(owl_chat_ask(c.c, "Describe the image."), OWL_OK);
    CHECK_EQ_INT(answer(c.c, NULL, 0, got, text, sizeof text), n);
    for (int i = 0; i < n; i++)
        CHECK_MSG(got[i] == want[i], "token %d: %d after clear_images, %d fresh", i, (int)got[i], (int)want[i]);
    /* clearing with nothing added is harmless; the text-only question then runs */
    CHECK_EQ_INT(owl_chat_clear_images(c.c), OWL_OK);
    CHECK_EQ_INT(owl_chat_ask(c.c, "And now?"), OWL_OK);
    CHECK_EQ_INT(owl_chat_gen_end(c.c), OWL_OK);
    owl_image_free(&img);
    free(rgba);
    free(png);
    env_free(&fresh);
    env_free(&c);
}
