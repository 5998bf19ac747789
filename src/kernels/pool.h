/* pool.h - persistent pthread worker pool.
 *
 * owl_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) for ith = 0..nth-1, the
 * caller taking part as ith 0, and returns when all have finished. Idle workers
 * block on a condition variable (a futex wait in wasm), they never spin.
 * Work is split by the callee (usually by output rows, owl_pool_range), so a
 * result never depends on nth: each output element is computed by one thread in
 * a fixed order. Without pthreads (single-thread wasm) nth is always 1.
 * A pool is used by one caller thread at a time. */
#ifndef OWL_POOL_H
#define OWL_POOL_H

#include <stdint.h>

typedef struct owl_pool owl_pool;
typedef void (*owl_pool_fn)(void *ctx, int ith, int nth);

/* n_threads <= 0 means 1. Returns NULL on failure (then callers may pass NULL:
 * every function here treats a NULL pool as a single thread). */
owl_pool *owl_pool_init(int n_threads);
void owl_pool_free(owl_pool *pool);
int owl_pool_size(const owl_pool *pool);
void owl_pool_run(owl_pool *pool, owl_pool_fn fn, void *ctx);

/* The part [*start, *end) of n items that thread ith of nth takes. */
static inline void owl_pool_range(int64_t n, int ith, int nth, int64_t *start, int64_t *end)
{
    int64_t per = (n + nth - 1) / nth;
    int64_t s = per * ith;
    int64_t e = s + per;
    *start = s < n ? s : n;
    *end = e < n ? e : n;
}

#endif
