/* test_limits.c - limits of the C API, checked before allocating, with errors
 * that name the values, and a session that stays usable after each error:
 * context length, images per session, image size, bad ids, bad options
 * (docs/SECURITY.md, "Bad inputs tried").
 *
 * Model: the oracle-A GGUF the Makefile makes before the C tests
 * (build/owlet-convert tests/fixtures/oracle_a build/test-out/oracle_a_f32.gguf --type f32). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/image/image.h"
#include "../../src/owlet.h"
#include "test.h"

#define LIM_GGUF "build/test-out/oracle_a_f32.gguf"

static owl_model *lim_model(void)
{
    owl_model *m = NULL;
    owl_err err = {0};
    owl_status st = owl_model_load_file(LIM_GGUF, NULL, &m, &err);
    CHECK_MSG(st == OWL_OK, "load %s: %s", LIM_GGUF, err.msg);
    return m;
}

static owl_session *lim_session(const owl_model *m, int64_t n_ctx)
{
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = n_ctx;
    o.kv_type = OWL_TYPE_F32;
    owl_session *s = NULL;
    owl_err err = {0};
    owl_status st = owl_session_init(m, &o, &s, &err);
    CHECK_MSG(st == OWL_OK, "session: %s", err.msg);
    return s;
}

/* A grey image's CHW pixels for the model (values need not be CLIP-like). */
static float *lim_pixels(const owl_model *m, size_t *n)
{
    owl_model_info info;
    owl_model_get_info(m, &info);
    *n = (size_t)(info.channels * info.image_size * info.image_size);
    float *px = malloc(*n * sizeof *px);
    for (size_t i = 0; px && i < *n; i++)
        px[i] = (float)(i % 7) * 0.1f - 0.3f;
    return px;
}

/* greedy argmax of the session's logits */
static int32_t lim_argmax(const owl_model *m, const owl_session *s)
{
    owl_model_info info;
    owl_model_get_info(m, &info);
    const float *l = owl_session_logits(s);
    int32_t best = 0;
    for (int32_t i = 1; i < (int32_t)info.n_vocab; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

TEST(limits_session_rejects_n_ctx_over_context_length)
{
    owl_model *m = lim_model();
    if (!m)
        return;
    owl_model_info info;
    owl_model_get_info(m, &info);
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = info.n_ctx_train + 1;
    owl_session *s = (owl_session *)1;
    owl_err err = {0};
    CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_E_INVALID);
    CHECK(strstr(err.msg, "n_ctx 2049 outside 1..2048") != NULL);
    o.n_ctx = -5;
    CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_E_INVALID);
    o = owl_session_opts_default();
    o.n_batch = -1;
    CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_E_INVALID);
    o = owl_session_opts_default();
    o.n_threads = 1000;
    CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_E_INVALID);
    o = owl_session_opts_default();
    o.kv_type = OWL_TYPE_Q8_0;
    CHECK_EQ_INT(owl_session_init(m, &o, &s, &err), OWL_E_INVALID);
    owl_model_free(m);
}

/* A prompt longer than the context fails with LIMIT before running; the cache
 * keeps its positions and the next prompt gives the same logits as a fresh
 * session. */
TEST(limits_prefill_over_context_keeps_session_usable)
{
    owl_model *m = lim_model();
    if (!m)
        return;
    owl_session *s = lim_session(m, 16), *ref = lim_session(m, 16);
    int32_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = 100 + i;
    CHECK_EQ_INT(owl_session_prefill(s, ids, 6, NULL, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_prefill(s, ids, 11, NULL, NULL), OWL_E_LIMIT); /* 6 + 11 > 16 */
    CHECK(strstr(owl_session_error(s), "11 positions + 6 in cache > n_ctx 16") != NULL);
    CHECK_EQ_INT(owl_session_n_past(s), 6);
    CHECK_EQ_INT(owl_session_prefill(s, ids + 6, 4, NULL, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_prefill(ref, ids, 10, NULL, NULL), OWL_OK);
    CHECK_EQ_INT(lim_argmax(m, s), lim_argmax(m, ref));
    owl_model_info info;
    owl_model_get_info(m, &info);
    CHECK(memcmp(owl_session_logits(s), owl_session_logits(ref), sizeof(float) * (size_t)info.n_vocab) == 0);
    owl_session_free(s);
    owl_session_free(ref);
    owl_model_free(m);
}

TEST(limits_decode_at_full_context_gives_limit)
{
    owl_model *m = lim_model();
    if (!m)
        return;
    owl_session *s = lim_session(m, 4);
    int32_t ids[4] = {1, 200, 300, 400};
    CHECK_EQ_INT(owl_session_prefill(s, ids, 4, NULL, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_decode(s, 5, NULL), OWL_E_LIMIT);
    CHECK(strstr(owl_session_error(s), "context full (n_ctx 4)") != NULL);
    CHECK_EQ_INT(owl_session_truncate(s, 2), OWL_OK);
    CHECK_EQ_INT(owl_session_decode(s, 5, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_n_past(s), 3);
    owl_session_free(s);
    owl_model_free(m);
}

TEST(limits_bad_ids_and_missing_images_give_invalid)
{
    owl_model *m = lim_model();
    if (!m)
        return;
    owl_model_info info;
    owl_model_get_info(m, &info);
    owl_session *s = lim_session(m, 64);
    int32_t ids[3] = {1, (int32_t)info.n_vocab, 5};
    CHECK_EQ_INT(owl_session_prefill(s, ids, 3, NULL, NULL), OWL_E_INVALID);
    ids[1] = -7;
    CHECK_EQ_INT(owl_session_prefill(s, ids, 3, NULL, NULL), OWL_E_INVALID);
    ids[1] = OWL_IMAGE_TOKEN; /* no image encoded */
    CHECK_EQ_INT(owl_session_prefill(s, ids, 3, NULL, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_prefill(s, ids, -1, NULL, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_decode(s, (int32_t)info.n_vocab + 5, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_n_past(s), 0);
    ids[1] = 7;
    CHECK_EQ_INT(owl_session_prefill(s, ids, 3, NULL, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_n_past(s), 3);
    owl_session_free(s);
    owl_model_free(m);
}

/* OWL_MAX_IMAGES images are held; the next gives LIMIT; clearing makes room. */
TEST(limits_images_per_session)
{
    owl_model *m = lim_model();
    if (!m)
        return;
    owl_session *s = lim_session(m, 64);
    size_t n = 0;
    float *px = lim_pixels(m, &n);
    for (int i = 0; i < OWL_MAX_IMAGES; i++)
        CHECK_EQ_INT(owl_session_encode_image(s, px, n, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_encode_image(s, px, n, NULL), OWL_E_LIMIT);
    CHECK(strstr(owl_session_error(s), "16 images held (max 16)") != NULL);
    CHECK_EQ_INT(owl_session_encode_image(s, px, n - 1, NULL), OWL_E_INVALID);
    owl_session_clear_images(s);
    CHECK_EQ_INT(owl_session_encode_image(s, px, n, NULL), OWL_OK);
    int32_t ids[3] = {1, OWL_IMAGE_TOKEN, 5};
    CHECK_EQ_INT(owl_session_prefill(s, ids, 3, NULL, NULL), OWL_OK);
    free(px);
    owl_session_free(s);
    owl_model_free(m);
}

/* Pixel limits are checked on the header / the sizes, before pixel memory. */
TEST(limits_image_pixels_checked_before_allocating)
{
    owl_image img;
    owl_err err = {0};
    static const uint8_t px[16] = {0};
    /* 70000 x 1 and 9000 x 9000 from a 16-byte buffer: refused without reading it */
    CHECK_EQ_INT(owl_image_from_rgba(px, 70000, 1, 280000, &img, &err), OWL_E_LIMIT);
    CHECK_EQ_INT(owl_image_from_rgba(px, 9000, 9000, 36000, &img, &err), OWL_E_LIMIT);
    CHECK(strstr(err.msg, "9000x9000 over the limits") != NULL);
    CHECK_EQ_INT(owl_image_from_rgba(px, 2, 2, 7, &img, &err), OWL_E_INVALID); /* stride < 4w */
    CHECK_EQ_INT(owl_image_from_rgba(px, 0, 2, 8, &img, &err), OWL_E_INVALID);
    /* a PNG header claiming 10000 x 10000, no pixel data */
    uint8_t png[] = {137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x27, 0x10,
                     0, 0, 0x27, 0x10, 8, 2, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(owl_image_decode(png, sizeof png, &img, NULL, &err), OWL_E_LIMIT);
    CHECK(strstr(err.msg, "10000") != NULL);
    CHECK(img.rgb == NULL);
    /* caller limits: a 4 x 4 image over max_pixels 8 */
    size_t sz = 0;
    void *ok = owl_test_read_file("tests/fixtures/oracle_a/img1.png", &sz);
    CHECK(ok != NULL);
    if (ok) {
        owl_image_limits lim = {8, 0};
        CHECK_EQ_INT(owl_image_decode(ok, sz, &img, &lim, &err), OWL_E_LIMIT);
        CHECK_EQ_INT(owl_image_decode(ok, sz, &img, NULL, &err), OWL_OK);
        owl_image_free(&img);
        /* every prefix of a valid PNG is an error, never a crash */
        for (size_t k = 0; k < sz && k < 400; k += 7) {
            owl_status st = owl_image_decode(ok, k, &img, NULL, &err);
            CHECK_MSG(st != OWL_OK || k == sz, "prefix %zu decoded", k);
            owl_image_free(&img);
        }
        free(ok);
    }
    /* over INT_MAX bytes is refused on the size alone (nothing is read) */
    CHECK_EQ_INT(owl_image_decode(png, (size_t)INT_MAX + 1, &img, NULL, &err), OWL_E_LIMIT);
}

TEST(limits_model_buffer_errors_are_reported)
{
    owl_model *m = (owl_model *)1;
    owl_err err = {0};
    static const uint32_t junk[64] = {0x46554747u, 3, 0xffffffffu, 0xffffffffu}; /* GGUF v3, 2^64-1 tensors */
    owl_status st = owl_model_load_buffer(junk, sizeof junk, NULL, &m, &err);
    CHECK_EQ_INT(st, OWL_E_LIMIT); /* the count is checked before any table is allocated */
    CHECK(strstr(err.msg, "n_tensors 18446744073709551615 over the limit") != NULL);
    CHECK(m == NULL);
    CHECK(owl_model_load_buffer(NULL, 0, NULL, &m, &err) < 0);
    CHECK_EQ_INT(owl_model_load_file("build/test-out/no-such.gguf", NULL, &m, &err), OWL_E_IO);
    owl_model_free(NULL);
    owl_session_free(NULL);
}
