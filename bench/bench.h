/* bench.h - what bench/kernels.c shares with bench/profile.c. */
#ifndef OWL_BENCH_H
#define OWL_BENCH_H

#include <stdint.h>

#include "../src/kernels/ops.h"

double bench_now(void);                                         /* wall seconds */
uint32_t bench_rnd(void);                                       /* xorshift, fixed seed */
void *bench_weights(owl_type t, int64_t rows, int64_t cols);    /* random blocks, sane scales */
int bench_listed(const char *list, const char *name);           /* name in "a,b,c" */

/* The decode profile (profile.c): one token of the LLaMA-7B slice (dim 4096,
 * 2 layers, ffn 11008, vocab 32000) in weight type wt (r4: the 4-row
 * interleaved layout), op by op, wall clock. */
int bench_decode_profile(owl_pool *pool, int nth, owl_type wt, int r4, int ntok);

/* The vision layer profile (profile.c): one CLIP ViT-L/14 layer at 448 px,
 * q8_0, ms per part, best of nrep layers (VPROFILE lines). */
int bench_vision_profile(owl_pool *pool, int nth, int nrep);
/* The prefill profile (profile.c): one LLaMA-7B layer of the full-size
 * 87-position prompt with the modality-adaptive K/V, attn_v and ffn_down in
 * wt_vd, the rest q4_K, ms per part, best of nrep layers (PPROFILE lines). */
int bench_prefill_profile(owl_pool *pool, int nth, owl_type wt_vd, int nrep);
int bench_vision_attention(owl_pool *pool, int nth, int nrep); /* owl_attention alone */

#endif
