/* test_pool.c - thread pool: every index runs once, results identical for any size. */
#include <stdlib.h>

#include "../../src/kernels/pool.h"
#include "test.h"

typedef struct {
    int64_t n;
    float *out;
    int *hits;
} fill_ctx;

static void fill_rows(void *p, int ith, int nth)
{
    fill_ctx *c = p;
    int64_t s, e;
    owl_pool_range(c->n, ith, nth, &s, &e);
    for (int64_t i = s; i < e; i++) {
        float acc = 0;
        for (int k = 1; k <= 100; k++)
            acc += 1.0f / (float)(i + k); /* order-sensitive float sum */
        c->out[i] = acc;
        __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
    }
}

TEST(pool_range_covers_all_items_once)
{
    for (int nth = 1; nth <= 9; nth++)
        for (int64_t n = 0; n < 40; n++) {
            int64_t covered = 0, prev_end = 0;
            for (int ith = 0; ith < nth; ith++) {
                int64_t s, e;
                owl_pool_range(n, ith, nth, &s, &e);
                CHECK(s == prev_end || s == e);
                if (e > s) {
                    covered += e - s;
                    prev_end = e;
                }
            }
            CHECK_EQ_INT(covered, n);
        }
}

TEST(pool_results_identical_for_1_2_3_8_threads)
{
    const int64_t n = 1001;
    float *ref = calloc(n, sizeof *ref);
    float *out = calloc(n, sizeof *out);
    int *hits = calloc(n, sizeof *hits);
    int sizes[] = {1, 2, 3, 8};
    for (int si = 0; si < 4; si++) {
        owl_pool *pool = owl_pool_init(sizes[si]);
        CHECK(pool != NULL);
        for (int rep = 0; rep < 50; rep++) { /* many jobs through one pool */
            memset(hits, 0, n * sizeof *hits);
            fill_ctx c = {n, si == 0 ? ref : out, hits};
            owl_pool_run(pool, fill_rows, &c);
            for (int64_t i = 0; i < n; i++)
                CHECK_EQ_INT(hits[i], 1);
        }
        if (si > 0)
            CHECK(memcmp(ref, out, n * sizeof *out) == 0);
        owl_pool_free(pool);
    }
    free(ref);
    free(out);
    free(hits);
}

TEST(pool_null_is_single_thread)
{
    CHECK_EQ_INT(owl_pool_size(NULL), 1);
    owl_pool_free(NULL);
    float out[5];
    int hits[5] = {0};
    fill_ctx c = {5, out, hits};
    owl_pool_run(NULL, fill_rows, &c);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(hits[i], 1);
}
