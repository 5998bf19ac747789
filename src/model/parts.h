/* parts.h - the three parts of the model, each a loader and a forward pass:
 *   vision.c      ViT tower (v.*)
 *   abstractor.c  visual abstractor (a.*)
 *   llm.c         LLaMA decoder with the modality-adaptive module, KV cache rows
 * Loaders read through weights.h, forward passes compute through common.h and
 * the kernels; no part calls load.c, session.c, owl2.c or another part. */
#ifndef OWL_MODEL_PARTS_H
#define OWL_MODEL_PARTS_H

#include "model.h"
#include "weights.h"

/* ---- loaders: fill the part from the GGUF; errors in ld->err ---- */
owl_status owl_vit_load(owl_loader *ld, owl_vit *v);
owl_status owl_abs_load(owl_loader *ld, owl_abs *a, const owl_vit *v, int64_t llm_d);
/* Layers [layer_begin, *layer_end) (*layer_end 0 = all: set to block_count). */
owl_status owl_llm_load(owl_loader *ld, owl_llm *l, int arch, int layer_begin, int *layer_end,
                        int need_embed, int need_head);

/* ---- forward passes ---- */
/* pixels (channels, image_size, image_size) -> s->is.x = (n_tok, hidden) after post-LN. */
void owl_vit_forward(owl_session *s, const float *pixels);
/* s->is.x (vision out) -> out (n_queries + 1, llm d). */
void owl_abs_forward(owl_session *s, float *out);
/* Embed ids (must be valid) into x (n, d). */
void owl_llm_embed(owl_session *s, const int32_t *ids, int64_t n, float *x);
/* Layers [l0, l1) on x (n <= n_batch rows, positions pos0..), modality per row (NULL = text). */
void owl_llm_layers(owl_session *s, int l0, int l1, float *x, int64_t n, int64_t pos0,
                    const uint8_t *modality);
/* K (which 0) or V (1) cache plane of a held layer: (n_ctx, kv_dim) of kv_type. */
void *owl_llm_kv_plane(const owl_session *s, int layer, int which);
/* Final norm + head for rows of x (n rows): logits (n, n_vocab). */
void owl_llm_head(owl_session *s, float *x, int64_t n, float *logits, int64_t ld);

#endif
