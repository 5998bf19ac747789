/* image_cache.c - the session's LRU cache of encoded images (image_cache.h).
 * A handful of entries (owl_session_opts.image_cache, at most
 * OWL_MAX_IMAGE_CACHE): a linear scan of 32-byte keys is all it needs. */
#include <stdlib.h>
#include <string.h>

#include "../core/sha256.h"
#include "image_cache.h"

owl_status owl_icache_init(owl_icache *c, int cap, size_t n_floats)
{
    memset(c, 0, sizeof *c);
    c->n_floats = n_floats;
    if (cap <= 0)
        return OWL_OK;
    c->e = calloc((size_t)cap, sizeof *c->e);
    if (!c->e)
        return OWL_E_NOMEM;
    c->cap = cap;
    return OWL_OK;
}

void owl_icache_free(owl_icache *c)
{
    for (int i = 0; i < c->cap; i++)
        free(c->e[i].rows);
    free(c->e);
    c->e = NULL;
    c->cap = 0;
}

void owl_icache_key(const float *pixels, int64_t channels, int64_t size, uint8_t key[32])
{
    const uint64_t shape[3] = {(uint64_t)channels, (uint64_t)size, (uint64_t)size};
    owl_sha256 h;
    owl_sha256_init(&h);
    owl_sha256_update(&h, shape, sizeof shape);
    owl_sha256_update(&h, pixels, sizeof(float) * (size_t)(channels * size * size));
    owl_sha256_final(&h, key);
}

const float *owl_icache_find(owl_icache *c, const uint8_t key[32])
{
    for (int i = 0; i < c->cap; i++)
        if (c->e[i].rows && memcmp(c->e[i].key, key, 32) == 0) {
            c->e[i].used = ++c->tick;
            c->hits++;
            c->saved_ms += c->e[i].cost_ms;
            return c->e[i].rows;
        }
    c->misses++;
    return NULL;
}

int owl_icache_touch(owl_icache *c, const uint8_t key[32])
{
    for (int i = 0; i < c->cap; i++)
        if (c->e[i].rows && memcmp(c->e[i].key, key, 32) == 0) {
            c->e[i].used = ++c->tick;
            return 1;
        }
    return 0;
}

void owl_icache_put(owl_icache *c, const uint8_t key[32], const float *rows, double cost_ms)
{
    if (c->cap <= 0)
        return;
    /* a free slot, else the least recently used entry */
    int v = 0;
    for (int i = 0; i < c->cap; i++) {
        if (!c->e[i].rows) {
            v = i;
            break;
        }
        if (c->e[i].used < c->e[v].used)
            v = i;
    }
    owl_icache_entry *e = &c->e[v];
    if (!e->rows && !(e->rows = malloc(sizeof(float) * c->n_floats)))
        return;
    memcpy(e->key, key, 32);
    memcpy(e->rows, rows, sizeof(float) * c->n_floats);
    e->used = ++c->tick;
    e->cost_ms = cost_ms;
}

int owl_icache_entries(const owl_icache *c)
{
    int n = 0;
    for (int i = 0; i < c->cap; i++)
        n += c->e[i].rows != NULL;
    return n;
}
