/* sha256.h - SHA-256 (FIPS 180-4), streaming. Used by the converter's manifest
 * (whole-file and per-chunk digests) and by chunk verification. */
#ifndef OWL_SHA256_H
#define OWL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t buf[64];
    size_t n;       /* bytes pending in buf */
} owl_sha256;

void owl_sha256_init(owl_sha256 *s);
void owl_sha256_update(owl_sha256 *s, const void *data, size_t n);
void owl_sha256_final(owl_sha256 *s, uint8_t out[32]);
/* One shot. */
void owl_sha256_digest(const void *data, size_t n, uint8_t out[32]);
/* 64 lowercase hex digits + NUL. */
void owl_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
