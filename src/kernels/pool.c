/* pool.c - persistent pthread worker pool (see pool.h).
 *
 * One job at a time: the caller publishes (fn, ctx), bumps a generation counter
 * and broadcasts; each worker runs its share and the last one to finish signals
 * the caller. Workers sleep on a condition variable between jobs, so an idle
 * pool costs nothing (in wasm this is a futex wait on shared memory). */
#include "pool.h"

#include <stdlib.h>

#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define OWL_NO_THREADS 1
#endif

#ifndef OWL_NO_THREADS
#include <pthread.h>
#endif

struct owl_pool {
    int n;
#ifndef OWL_NO_THREADS
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers wait for a new generation */
    pthread_cond_t done; /* caller waits for pending == 0 */
    uint64_t generation;
    int pending;
    int stop;
    owl_pool_fn fn;
    void *ctx;
#endif
};

#ifndef OWL_NO_THREADS
typedef struct {
    owl_pool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    free(p);
    owl_pool *pool = wa.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop)
            break;
        seen = pool->generation;
        owl_pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->mu);
        fn(ctx, wa.ith, pool->n);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}
#endif

owl_pool *owl_pool_init(int n_threads)
{
    if (n_threads <= 0)
        n_threads = 1;
#ifdef OWL_NO_THREADS
    n_threads = 1;
#endif
    owl_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n = n_threads;
#ifndef OWL_NO_THREADS
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof *pool->threads);
        if (!pool->threads) {
            owl_pool_free(pool);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa || (wa->pool = pool, wa->ith = i,
                        pthread_create(&pool->threads[i - 1], NULL, worker_main, wa) != 0)) {
                free(wa);
                pool->n = i; /* the threads started so far are joined by free */
                owl_pool_free(pool);
                return NULL;
            }
        }
    }
#endif
    return pool;
}

void owl_pool_free(owl_pool *pool)
{
    if (!pool)
        return;
#ifndef OWL_NO_THREADS
    if (pool->threads) {
        pthread_mutex_lock(&pool->mu);
        pool->stop = 1;
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mu);
        for (int i = 1; i < pool->n; i++)
            pthread_join(pool->threads[i - 1], NULL);
        free(pool->threads);
    }
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
#endif
    free(pool);
}

int owl_pool_size(const owl_pool *pool)
{
    return pool ? pool->n : 1;
}

void owl_pool_run(owl_pool *pool, owl_pool_fn fn, void *ctx)
{
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
#ifndef OWL_NO_THREADS
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->pending = pool->n - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);

    fn(ctx, 0, pool->n);

    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
#endif
}
