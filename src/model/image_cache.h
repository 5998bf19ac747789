/* image_cache.h - the session's cache of encoded images (image_cache.c): the
 * visual rows (image_tokens x d_model f32, the abstractor's output) of the
 * last few pictures, keyed by SHA-256 of the preprocessed pixels and their
 * shape, least recently used out first. owl_session_encode_image (owl2.c)
 * looks a picture up before running the vision tower and stores what it
 * computed, so a new chat, a replayed conversation or a second question about
 * the same picture does not encode it again; a hit gives the very rows a miss
 * computes (they are a copy of them).
 *
 * It lives on the session, not on the model: a model is immutable and shared
 * by sessions in any threads (owlet.h), a session is used by one thread at a
 * time, so the cache needs no lock; it outlives owl_session_reset and
 * owl_session_clear_images (the rows a new chat replays are still there) and
 * goes with owl_session_free. One engine instance (wasm_glue/api.c) holds one
 * session for its whole life. */
#ifndef OWL_MODEL_IMAGE_CACHE_H
#define OWL_MODEL_IMAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

typedef struct {
    uint8_t key[32]; /* SHA-256 of (channels, height, width as u64) + the pixels' bytes */
    float *rows;     /* (image_tokens, d_model), owned; NULL = a free slot */
    uint64_t used;   /* the tick of its last insert or hit (LRU) */
    double cost_ms;  /* wall-clock milliseconds its encode took (vision tower + abstractor) */
} owl_icache_entry;

typedef struct {
    owl_icache_entry *e; /* cap slots */
    int cap;             /* 0 = off */
    size_t n_floats;     /* floats in one entry's rows */
    uint64_t tick;
    int64_t hits, misses;
    double saved_ms; /* sum of the hit entries' cost_ms: encode time the cache spared */
} owl_icache;

/* cap slots of n_floats rows each (nothing allocated for cap 0; the rows are
 * allocated as pictures come). OWL_E_NOMEM if the slot table cannot be. */
owl_status owl_icache_init(owl_icache *c, int cap, size_t n_floats);
void owl_icache_free(owl_icache *c); /* frees every entry's rows; a zeroed cache is a no-op */
/* The key of pixels (channels, size, size) f32. */
void owl_icache_key(const float *pixels, int64_t channels, int64_t size, uint8_t key[32]);
/* The rows stored under key (counted as a hit, now the most recent, its
 * cost_ms added to saved_ms) or NULL (a miss). Borrowed until the next put. */
const float *owl_icache_find(owl_icache *c, const uint8_t key[32]);
/* Whether key is stored (it becomes the most recently used); no counter moves. */
int owl_icache_touch(owl_icache *c, const uint8_t key[32]);
/* Store a copy of rows (n_floats) under key with the time their encode took,
 * evicting the least recently used
 * entry when full. Out of memory: nothing is stored (the cache is an
 * optimisation, the encode itself has succeeded). */
void owl_icache_put(owl_icache *c, const uint8_t key[32], const float *rows, double cost_ms);
/* Entries held. */
int owl_icache_entries(const owl_icache *c);

#endif
