/* quant_util.h - small helpers every kernel tier shares (reference, SIMD128,
 * relaxed SIMD): f16 widening and q4_K scale unpacking, as static inline so
 * the inner loops of each tier inline them. One definition; quant.c's
 * exported owl_f16_to_f32 / owl_q4_K_scales are these. */
#ifndef OWL_QUANT_UTIL_H
#define OWL_QUANT_UTIL_H

#include <stdint.h>
#include <string.h>

#include "types.h"

static inline uint32_t owl_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float owl_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f16 -> f32, exact. */
static inline float owl_f16_to_f32_inline(owl_f16 h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t em = h & 0x7fff;
    if (em >= 0x7c00) /* inf / nan: keep the payload, quiet bit included */
        return owl_bits_f32(sign | 0x7f800000 | ((em & 0x3ff) << 13));
    /* normal and subnormal alike: place the bits, then rescale by 2^112
     * (exact: the result is representable) */
    float mag = owl_bits_f32(em << 13) * 0x1p112f;
    return owl_bits_f32(sign | owl_f32_bits(mag));
}

/* Scale and min of sub-block j (0..7) of a q4_K block's packed scales[12]
 * (ggml's get_scale_min_k4). */
static inline void owl_q4_K_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* The rows of a weight tile of nr <= 8 rows (groups of 4: g = r / 4) at W,
 * rows w_stride bytes apart row-major, or in the r4 layout (types.h):
 * wr[r] = row r's block 0 (rows past nr repeat row nr - 1, from the same
 * group whenever that group is read), st[g] = bytes from a row's block b to
 * block b + 1 in group g. */
static inline void owl_tile_wrows(const uint8_t *W, size_t w_stride, int r4, int nr, size_t bsz,
                                 const uint8_t *wr[8], size_t st[2])
{
    for (int g = 0; g < 2; g++) {
        const int k = nr - 4 * g < 4 ? nr - 4 * g : 4; /* rows of group g (<= 0: none) */
        st[g] = r4 && k > 0 ? (size_t)k * bsz : bsz;
    }
    for (int r = 0; r < 8; r++) {
        const int q = r < nr ? r : nr - 1, g0 = q & ~3;
        wr[r] = r4 ? W + w_stride * (size_t)g0 + bsz * (size_t)(q - g0) : W + w_stride * (size_t)q;
    }
}

#endif
