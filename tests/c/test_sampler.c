/* test_sampler.c - sampling distributions (chi-square on 100k draws with a
 * fixed seed), greedy, repetition penalty, determinism, stop conditions. */
#include <stdlib.h>

#include "../../src/text/sampler.h"
#include "test.h"

/* first two outputs >> 11 of xoshiro256** seeded with splitmix64(42),
 * computed independently in Python */
#define OWL_TEST_RNG0 755370490430936ull
#define OWL_TEST_RNG1 3413550631330343ull
#define NV 7
#define DRAWS 100000

/* probabilities 0.40 0.25 0.15 0.10 0.05 0.03 0.02 as logits (id order shuffled
 * so that the best token is not id 0) */
static const int perm[NV] = {3, 0, 5, 1, 6, 2, 4};
static const double base_p[NV] = {0.40, 0.25, 0.15, 0.10, 0.05, 0.03, 0.02};

static void make_logits(float *l)
{
    for (int r = 0; r < NV; r++)
        l[perm[r]] = (float)log(base_p[r]) + 3.0f;
}

/* chi-square of counts against expected probabilities (by rank); ranks with
 * zero expectation must get zero draws. Critical value: Wilson-Hilferty
 * approximation of the chi-square quantile at p = 1e-6 (z = 4.75). */
static void check_distribution(owl_sampler_params p, const double *want_by_rank, const char *what)
{
    float l[NV];
    make_logits(l);
    owl_sampler *s;
    CHECK_EQ_INT(owl_sampler_init(&s, NV, &p, NULL), OWL_OK);
    long cnt[NV] = {0};
    for (int i = 0; i < DRAWS; i++) {
        int32_t id = -1;
        owl_sampler_sample(s, l, NULL, 0, &id, NULL);
        CHECK(id >= 0 && id < NV);
        if (id >= 0 && id < NV)
            cnt[id]++;
    }
    double chi = 0, sum = 0;
    int df = -1;
    for (int r = 0; r < NV; r++)
        sum += want_by_rank[r];
    for (int r = 0; r < NV; r++) {
        double e = want_by_rank[r] / sum * DRAWS;
        long o = cnt[perm[r]];
        if (e == 0) {
            CHECK_MSG(o == 0, "%s: rank %d drawn %ld times, want 0", what, r, o);
            continue;
        }
        chi += (o - e) * (o - e) / e;
        df++;
    }
    double z = 4.75, k = df > 0 ? df : 1;
    double crit = k * pow(1 - 2 / (9 * k) + z * sqrt(2 / (9 * k)), 3);
    CHECK_MSG(chi < crit, "%s: chi-square %.2f >= %.2f (df %d)", what, chi, crit, df);
    owl_sampler_free(s);
}

TEST(sampler_temperature_one_follows_softmax)
{
    owl_sampler_params p = {1.0f, 0, 1.0f, 0, 1.0f, 11};
    check_distribution(p, base_p, "T=1");
}

TEST(sampler_temperature_half_squares_probabilities)
{
    double want[NV];
    for (int r = 0; r < NV; r++)
        want[r] = base_p[r] * base_p[r];
    owl_sampler_params p = {0.5f, 0, 1.0f, 0, 1.0f, 12};
    check_distribution(p, want, "T=0.5");
}

TEST(sampler_top_k_keeps_k_best)
{
    double want[NV] = {0.40, 0.25, 0.15, 0, 0, 0, 0};
    owl_sampler_params p = {1.0f, 3, 1.0f, 0, 1.0f, 13};
    check_distribution(p, want, "top_k=3");
}

TEST(sampler_top_p_keeps_smallest_nucleus)
{
    /* ascending cumulative 0.02 0.05 0.10 0.20 (<= 0.25 dropped) 0.35 (kept) */
    double want[NV] = {0.40, 0.25, 0.15, 0, 0, 0, 0};
    owl_sampler_params p = {1.0f, 0, 0.75f, 0, 1.0f, 14};
    check_distribution(p, want, "top_p=0.75");
    /* 0.93: drops 0.02 0.03 (cum 0.05 <= 0.07), keeps 0.05 (cum 0.10 > 0.07) */
    double want2[NV] = {0.40, 0.25, 0.15, 0.10, 0.05, 0, 0};
    owl_sampler_params p2 = {1.0f, 0, 0.93f, 0, 1.0f, 15};
    check_distribution(p2, want2, "top_p=0.93");
}

TEST(sampler_min_p_drops_below_fraction_of_best)
{
    /* threshold 0.3 * 0.40 = 0.12 */
    double want[NV] = {0.40, 0.25, 0.15, 0, 0, 0, 0};
    owl_sampler_params p = {1.0f, 0, 1.0f, 0.3f, 1.0f, 16};
    check_distribution(p, want, "min_p=0.3");
}

TEST(sampler_filters_combine_in_order)
{
    /* T=0.5 (p^2: .16 .0625 .0225 .01 ...), top_k 4, top_p 0.8 on the
     * renormalised four: .6648 .2597 .0935 .0416 -> drops .0416 (0.0416 <= 0.2)
     * and .0935 (0.1351 <= 0.2), keeps .2597 */
    double want[NV] = {0.16, 0.0625, 0, 0, 0, 0, 0};
    owl_sampler_params p = {0.5f, 4, 0.8f, 0, 1.0f, 17};
    check_distribution(p, want, "T=0.5 top_k=4 top_p=0.8");
}

TEST(sampler_top_k_keeps_ties_at_the_edge)
{
    /* HF keeps every logit >= the k-th largest: k = 2 keeps all three 1.0s */
    owl_sampler_params p = {1.0f, 2, 1.0f, 0, 1.0f, 21};
    owl_sampler *s;
    CHECK_EQ_INT(owl_sampler_init(&s, 5, &p, NULL), OWL_OK);
    float l[5] = {0.0f, 1.0f, 1.0f, -3.0f, 1.0f};
    long cnt[5] = {0};
    for (int i = 0; i < 30000; i++) {
        int32_t id = 0;
        owl_sampler_sample(s, l, NULL, 0, &id, NULL);
        cnt[id]++;
    }
    CHECK(cnt[0] == 0 && cnt[3] == 0);
    for (int i = 1; i < 5; i += (i == 2 ? 2 : 1))
        CHECK_MSG(cnt[i] > 9400 && cnt[i] < 10600, "id %d drawn %ld times of 30000", i, cnt[i]);
    owl_sampler_free(s);
}

TEST(sampler_greedy_is_argmax_lowest_id_on_ties)
{
    owl_sampler_params p = owl_sampler_params_greedy();
    owl_sampler *s;
    CHECK_EQ_INT(owl_sampler_init(&s, 5, &p, NULL), OWL_OK);
    float l[5] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
    int32_t id;
    CHECK_EQ_INT(owl_sampler_sample(s, l, NULL, 0, &id, NULL), OWL_OK);
    CHECK_EQ_INT(id, 1);
    float m[5] = {-INFINITY, -INFINITY, -5.0f, -INFINITY, -5.0f};
    CHECK_EQ_INT(owl_sampler_sample(s, m, NULL, 0, &id, NULL), OWL_OK);
    CHECK_EQ_INT(id, 2);
    float all_inf[5] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ_INT(owl_sampler_sample(s, all_inf, NULL, 0, &id, NULL), OWL_E_INVALID);
    float nan[5] = {0, 0, NAN, 0, 0};
    owl_err err = {0};
    CHECK_EQ_INT(owl_sampler_sample(s, nan, NULL, 0, &id, &err), OWL_E_INVALID);
    CHECK(strstr(err.msg, "logit 2") != NULL);
    owl_sampler_free(s);
    owl_sampler_free(NULL);
}

TEST(sampler_repetition_penalty_is_hf_style)
{
    owl_sampler_params p = owl_sampler_params_greedy();
    p.repetition_penalty = 1.2f;
    owl_sampler *s;
    CHECK_EQ_INT(owl_sampler_init(&s, 4, &p, NULL), OWL_OK);
    int32_t id;
    /* positive logit divided: 2.0 / 1.2 = 1.67 < 1.9 */
    float a[4] = {2.0f, 1.9f, 0, 0};
    int32_t h1[3] = {0, 0, -200};
    CHECK_EQ_INT(owl_sampler_sample(s, a, h1, 3, &id, NULL), OWL_OK);
    CHECK_EQ_INT(id, 1);
    /* applied once per distinct id: 2.0/1.2 = 1.667 > 1.6 (twice would be 1.39) */
    float b[4] = {2.0f, 1.6f, 0, 0};
    CHECK_EQ_INT(owl_sampler_sample(s, b, h1, 3, &id, NULL), OWL_OK);
    CHECK_EQ_INT(id, 0);
    /* negative logit multiplied: -1 * 1.2 = -1.2 < -1.1 */
    float c[4] = {-1.0f, -1.1f, -5, -5};
    int32_t h2[1] = {0};
    CHECK_EQ_INT(owl_sampler_sample(s, c, h2, 1, &id, NULL), OWL_OK);
    CHECK_EQ_INT(id, 1);
    /* the caller's logits are not modified */
    CHECK(c[0] == -1.0f && a[0] == 2.0f);
    owl_sampler_free(s);
}

TEST(sampler_same_seed_same_sequence)
{
    enum { V = 301, STEPS = 400 };
    float *l = malloc(V * sizeof *l);
    uint64_t rs = 99;
    for (int i = 0; i < V; i++)
        l[i] = owl_test_rand_f32(&rs, -4, 4);
    owl_sampler_params p = owl_sampler_params_default();
    p.temperature = 1.0f;
    p.top_p = 0.9f;
    p.seed = 1234;
    owl_sampler *a, *b, *c;
    CHECK_EQ_INT(owl_sampler_init(&a, V, &p, NULL), OWL_OK);
    CHECK_EQ_INT(owl_sampler_init(&b, V, &p, NULL), OWL_OK);
    p.seed = 1235;
    CHECK_EQ_INT(owl_sampler_init(&c, V, &p, NULL), OWL_OK);
    int same = 1, differs = 0;
    int32_t hist[STEPS];
    for (int i = 0; i < STEPS; i++) {
        int32_t x, y, z;
        owl_sampler_sample(a, l, hist, (size_t)i, &x, NULL);
        owl_sampler_sample(b, l, hist, (size_t)i, &y, NULL);
        owl_sampler_sample(c, l, hist, (size_t)i, &z, NULL);
        same &= x == y;
        differs |= x != z;
        hist[i] = x;
    }
    CHECK(same);
    CHECK(differs);
    /* reseeding restarts the stream */
    owl_sampler_seed(a, 7);
    double u1 = owl_sampler_uniform(a);
    owl_sampler_seed(a, 7);
    CHECK(owl_sampler_uniform(a) == u1);
    owl_sampler_free(a);
    owl_sampler_free(b);
    owl_sampler_free(c);
    free(l);
}

TEST(sampler_rng_stream_is_fixed)
{
    /* the same numbers on every build: xoshiro256** seeded by splitmix64(42) */
    owl_sampler_params p = owl_sampler_params_default();
    p.seed = 42;
    owl_sampler *s;
    CHECK_EQ_INT(owl_sampler_init(&s, 2, &p, NULL), OWL_OK);
    double u0 = owl_sampler_uniform(s), u1 = owl_sampler_uniform(s);
    uint64_t a = (uint64_t)(u0 * 0x1p53), b = (uint64_t)(u1 * 0x1p53);
    CHECK_EQ_INT(a, OWL_TEST_RNG0);
    CHECK_EQ_INT(b, OWL_TEST_RNG1);
    owl_sampler_free(s);
}

TEST(sampler_rejects_bad_params)
{
    owl_sampler *s;
    owl_err err = {0};
    owl_sampler_params p = owl_sampler_params_default();
    p.top_p = 0;
    CHECK_EQ_INT(owl_sampler_init(&s, 10, &p, &err), OWL_E_INVALID);
    CHECK(strstr(err.msg, "top_p") != NULL);
    p = owl_sampler_params_default();
    p.repetition_penalty = 0;
    CHECK_EQ_INT(owl_sampler_init(&s, 10, &p, &err), OWL_E_INVALID);
    p = owl_sampler_params_default();
    p.temperature = NAN;
    CHECK_EQ_INT(owl_sampler_init(&s, 10, &p, &err), OWL_E_INVALID);
    p = owl_sampler_params_default();
    CHECK_EQ_INT(owl_sampler_init(&s, 0, &p, &err), OWL_E_INVALID);
}

// ---------------------------------------------------------------- stopper

/* feed pieces, collect the shown text; returns the stop reason */
static int run_stopper(owl_stopper *st, const char *const *pieces, const int32_t *ids, int n,
                       char *shown)
{
    char out[64];
    size_t k, o = 0;
    int r = 0;
    for (int i = 0; i < n && !r; i++) {
        size_t len = strlen(pieces[i]);
        CHECK(owl_stopper_out_cap(st, len) <= sizeof out);
        r = owl_stopper_push(st, ids[i], pieces[i], len, out, sizeof out, &k);
        memcpy(shown + o, out, k);
        o += k;
    }
    if (!r)
        o += owl_stopper_flush(st, shown + o, 64);
    shown[o] = 0;
    return r;
}

TEST(stopper_matches_stop_string_across_tokens)
{
    const char *stops[] = {"</s>", "###"};
    owl_stopper st;
    CHECK_EQ_INT(owl_stopper_init(&st, 2, 0, stops, 2, NULL), OWL_OK);
    const char *pieces[] = {"Hello", " wor", "ld<", "/", "s> more"};
    int32_t ids[] = {10, 11, 12, 13, 14};
    char shown[256];
    CHECK_EQ_INT(run_stopper(&st, pieces, ids, 5, shown), OWL_STOP_STRING);
    CHECK(strcmp(shown, "Hello world") == 0);
    /* stopped: nothing more */
    char out[64];
    size_t k = 99;
    CHECK_EQ_INT(owl_stopper_push(&st, 15, "x", 1, out, sizeof out, &k), OWL_STOP_STRING);
    CHECK_EQ_INT(k, 0);
    owl_stopper_free(&st);
}

TEST(stopper_releases_false_prefixes)
{
    const char *stops[] = {"</s>"};
    owl_stopper st;
    CHECK_EQ_INT(owl_stopper_init(&st, 2, 0, stops, 1, NULL), OWL_OK);
    const char *pieces[] = {"a<", "/", "b", " c<"};
    int32_t ids[] = {10, 11, 12, 13};
    char shown[256];
    CHECK_EQ_INT(run_stopper(&st, pieces, ids, 4, shown), OWL_STOP_NONE);
    CHECK(strcmp(shown, "a</b c<") == 0);
    owl_stopper_free(&st);
}

TEST(stopper_eos_and_max_tokens)
{
    owl_stopper st;
    const char *stops[] = {"STOP"};
    CHECK_EQ_INT(owl_stopper_init(&st, 2, 0, stops, 1, NULL), OWL_OK);
    const char *p1[] = {"x", "ST", ""};
    int32_t i1[] = {5, 6, 2};
    char shown[256];
    CHECK_EQ_INT(run_stopper(&st, p1, i1, 3, shown), OWL_STOP_EOS);
    CHECK(strcmp(shown, "xST") == 0); /* held text released at EOS */
    owl_stopper_free(&st);
    CHECK_EQ_INT(owl_stopper_init(&st, 2, 3, NULL, 0, NULL), OWL_OK);
    const char *p2[] = {"a", "b", "c", "d"};
    int32_t i2[] = {5, 6, 7, 8};
    CHECK_EQ_INT(run_stopper(&st, p2, i2, 4, shown), OWL_STOP_MAX_TOKENS);
    CHECK(strcmp(shown, "abc") == 0);
    CHECK_EQ_INT(st.n_tokens, 3);
    owl_stopper_free(&st);
    owl_stopper_free(NULL);
}
