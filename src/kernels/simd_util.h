/* simd_util.h - SIMD128 helpers the SIMD128 and relaxed-SIMD kernel tiers
 * share (quant_simd128.c, quant_relaxed.c): lane reductions, f16 widening of
 * block scales, the float update of a 4-row tile. static inline: one
 * definition, inlined into each tier's loops. Include after simd.h, only in
 * builds with OWL_SIMD128. */
#ifndef OWL_SIMD_UTIL_H
#define OWL_SIMD_UTIL_H

#include "quant_util.h"
#include "simd.h"
#include "types.h"

#define TILE_T 16 /* tokens whose accumulators stay live at once */

/* [sum a, sum b, sum c, sum d] of four i32x4 */
static inline v128_t hsum4_i32(v128_t a, v128_t b, v128_t c, v128_t d)
{
    v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

/* f16 bits in the low half of each i32 lane -> f32, exact (see owl_f16_to_f32). */
static inline v128_t f16x4_to_f32x4(v128_t h)
{
    v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
    v128_t em = wasm_v128_and(h, wasm_i32x4_splat(0x7fff));
    v128_t mag = wasm_f32x4_mul(wasm_i32x4_shl(em, 13), wasm_f32x4_splat(0x1p112f));
    v128_t infnan = wasm_v128_or(wasm_i32x4_shl(em, 13), wasm_i32x4_splat(0x7f800000));
    v128_t is_inf = wasm_i32x4_gt(em, wasm_i32x4_splat(0x7bff));
    return wasm_v128_or(sign, wasm_v128_bitselect(infnan, mag, is_inf));
}

/* 8 f16 (u16x8) -> two f32x4, exact. Finite values take the short path
 * (place the bits, rescale by 2^112, put the sign back); a vector holding an
 * inf or nan falls back to f16x4_to_f32x4. */
static inline void f16x8_to_f32x8(v128_t h, v128_t *lo, v128_t *hi)
{
    const v128_t em = wasm_v128_and(h, wasm_i16x8_splat(0x7fff));
    if (wasm_v128_any_true(wasm_i16x8_gt(em, wasm_i16x8_splat(0x7bff)))) {
        *lo = f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h));
        *hi = f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h));
        return;
    }
    const v128_t zero = wasm_i16x8_splat(0), sign = wasm_v128_and(h, wasm_i16x8_splat((int16_t)0x8000));
    const v128_t k = wasm_f32x4_splat(0x1p112f);
    v128_t mlo = wasm_f32x4_mul(wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(em), 13), k);
    v128_t mhi = wasm_f32x4_mul(wasm_i32x4_shl(wasm_u32x4_extend_high_u16x8(em), 13), k);
    *lo = wasm_v128_or(mlo, wasm_i16x8_shuffle(zero, sign, 0, 8, 1, 9, 2, 10, 3, 11));
    *hi = wasm_v128_or(mhi, wasm_i16x8_shuffle(zero, sign, 4, 12, 5, 13, 6, 14, 7, 15));
}

static inline v128_t load_d4(owl_f16 a, owl_f16 b, owl_f16 c, owl_f16 d)
{
    return f16x4_to_f32x4(wasm_i32x4_make(a, b, c, d));
}

static inline float lane(v128_t v, int r)
{
    switch (r) {
    case 0: return wasm_f32x4_extract_lane(v, 0);
    case 1: return wasm_f32x4_extract_lane(v, 1);
    case 2: return wasm_f32x4_extract_lane(v, 2);
    default: return wasm_f32x4_extract_lane(v, 3);
    }
}

static inline void store_tile(const v128_t *acc, int nr, int64_t tn, float *Y, int64_t ldy)
{
    for (int64_t t = 0; t < tn; t++)
        for (int r = 0; r < nr; r++)
            Y[t * ldy + r] = lane(acc[t], r);
}

/* Start values of a tile's accumulators: 0, or Y when continuing a dot. */
static inline void init_tile(v128_t *acc, int nr, int64_t tn, const float *Y, int64_t ldy, int accumulate)
{
    for (int64_t t = 0; t < tn; t++) {
        float v[4] = {0, 0, 0, 0};
        if (accumulate)
            for (int r = 0; r < nr; r++)
                v[r] = Y[t * ldy + r];
        acc[t] = wasm_f32x4_make(v[0], v[1], v[2], v[3]);
    }
}

/* ntok == 1 (decode): nothing to reuse across tokens, so unpack straight into
 * the dots and apply the sub-block scales to int32 partials. Same integer
 * sums, same float updates as the tile. */
/* The 8 scales and 8 mins of a q4_K block as int16x8 each (SIMD form of
 * get_scale_min_k4; the 16-byte load reads 4 bytes of qs, unused). */
static inline void q4_K_scales_v(const owl_block_q4_K *x, v128_t *sc, v128_t *m)
{
    const v128_t q = wasm_v128_load(x->scales);
    const v128_t lo = wasm_v128_and(q, wasm_i8x16_splat(63)); /* sc0-3, m0-3 */
    const v128_t t = wasm_i8x16_shuffle(q, q, 8, 9, 10, 11, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0);
    const v128_t lo4 = wasm_v128_and(t, wasm_i8x16_splat(0x0f));
    const v128_t hi4 = wasm_v128_and(wasm_u16x8_shr(t, 4), wasm_i8x16_splat(0x0f));
    const v128_t low = wasm_i8x16_shuffle(lo4, hi4, 0, 1, 2, 3, 20, 21, 22, 23, 0, 0, 0, 0, 0, 0, 0, 0);
    const v128_t up = wasm_v128_and(wasm_u16x8_shr(q, 2), wasm_i8x16_splat(0x30)); /* (q >> 6) << 4 */
    const v128_t hi = wasm_v128_or(low, up); /* sc4-7, m4-7 */
    const v128_t all = wasm_i8x16_shuffle(lo, hi, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    *sc = wasm_u16x8_extend_low_u8x16(all);
    *m = wasm_u16x8_extend_high_u8x16(all);
}

/* The float update of 4 rows for one superblock (lanes = rows). */
static inline v128_t update_K(int is4, v128_t acc, const v128_t a[4], const v128_t mp[4],
                              const owl_f16 d[4], const owl_f16 dmin[4], float yd)
{
    v128_t sumi = wasm_f32x4_convert_i32x4(hsum4_i32(a[0], a[1], a[2], a[3]));
    v128_t vyd = wasm_f32x4_splat(yd);
    v128_t dd = wasm_f32x4_mul(load_d4(d[0], d[1], d[2], d[3]), vyd);
    if (!is4)
        return wasm_f32x4_add(acc, wasm_f32x4_mul(dd, sumi));
    v128_t summ = wasm_f32x4_convert_i32x4(hsum4_i32(mp[0], mp[1], mp[2], mp[3]));
    v128_t dm = wasm_f32x4_mul(load_d4(dmin[0], dmin[1], dmin[2], dmin[3]), vyd);
    return wasm_f32x4_add(acc, wasm_f32x4_sub(wasm_f32x4_mul(dd, sumi), wasm_f32x4_mul(dm, summ)));
}

#endif
