/* rope.c - rotary position embedding, llama.cpp mode 0 pairing (2i, 2i+1).
 *
 * x (n_heads, head_dim) f32, one token at position pos. For i < head_dim/2:
 *   inv_freq = 1 / theta^((2i) / head_dim)                 all fp32, as HF 4.31:
 *     inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
 *   angle = pos * inv_freq                                   freqs = einsum(t, inv_freq)
 *   (x[2i], x[2i+1]) <- (x0 cos - x1 sin, x1 cos + x0 sin)   q*cos + rotate_half(q)*sin
 * The HF model pairs (j, j + head_dim/2); the converter permutes Q/K rows per
 * head so that adjacent pairs here carry the same data (docs/mplug-owl2.md 3.3).
 *
 * Why powf per frequency and not llama.cpp's theta *= theta_scale: the iterated
 * product drifts by ~i ulp, i.e. up to ~4e-6 relative at i = 63, and the angle
 * error grows with pos (~1e-3 rad at pos 2000); powf matches HF's fp32 inv_freq
 * to within powf's own rounding. The fp32 product pos * inv_freq is kept on
 * purpose: it is what the reference computes (its error at large pos is part of
 * the spec we match). head_dim/2 powf + sincos per call, shared by all heads. */
#include <math.h>

#include "ops.h"

void owl_rope_ref(float *x, int n_heads, int head_dim, int64_t pos, float theta)
{
    if (n_heads <= 0 || head_dim < 2)
        return;
    const float p = (float)pos;
    for (int i = 0; i < head_dim / 2; i++) {
        const float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        const float angle = p * inv_freq;
        /* cos/sin in double, rounded once: cosf/sinf differ in the last bit
         * between glibc (native) and musl (wasm), double cos/sin do not after
         * rounding, so native and wasm logits are bitwise equal. */
        const float c = (float)cos((double)angle), s = (float)sin((double)angle);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (int64_t)h * head_dim + 2 * i;
            const float x0 = v[0], x1 = v[1];
            v[0] = x0 * c - x1 * s;
            v[1] = x1 * c + x0 * s;
        }
    }
}

void owl_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta)
{
    owl_rope_ref(x, n_heads, head_dim, pos, theta);
}
