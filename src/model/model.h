/* model.h - private data structures of src/model/: hyperparameters, weight
 * views into the GGUF buffer, the model, the session's KV cache and scratch.
 * Types (and one predicate); functions are declared by the file that owns them:
 *   weights.h  tensor lookup with shape checks (weights.c), used by the parts' loaders
 *   common.h   helpers of every forward pass: matmul + bias, layernorm rows, tap (common.c)
 *   parts.h    the three parts: vision.c, abstractor.c, llm.c (load + forward)
 *   image_cache.h  the session's LRU cache of encoded images (image_cache.c)
 * Calls go one way: load.c -> parts -> weights.c, common.c; owl2.c -> parts,
 * common.c, image_cache.c; generate.c -> owl2.c (owl_session_decode); session.c -> kernels,
 * image_cache.c; image_cache.c -> core (SHA-256) only.
 * Only src/model/ includes this; users see src/owlet.h. */
#ifndef OWL_MODEL_H
#define OWL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/gguf.h"
#include "../kernels/pool.h"
#include "../kernels/ops.h"
#include "../owlet.h"
#include "image_cache.h"

#define OWL_ARCH_OWL2 1
#define OWL_ARCH_LLAMA 2

/* A weight matrix of rows x cols borrowed from the GGUF buffer (row-major,
 * each row owl_row_size(type, cols) bytes; r4: in the 4-row interleaved
 * layout instead, see owl_repack_r4 in src/kernels/types.h). */
typedef struct {
    const void *data;
    owl_type type;
    int64_t rows, cols;
    int r4;
} owl_mat;

/* ---- vision tower (v.*) ---- */
typedef struct {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* (hidden) */
    owl_mat qkv;                                /* (3*hidden, hidden), per-head interleaved */
    const float *qkv_b;                         /* (3*hidden) */
    owl_mat out;                                /* (hidden, hidden) */
    const float *out_b;
    owl_mat up;                                 /* (ffn, hidden) */
    const float *up_b;
    owl_mat down;                               /* (hidden, ffn) */
    const float *down_b;
} owl_vit_layer;

typedef struct {
    int64_t image_size, patch, channels, hidden, n_layers, n_heads, ffn;
    int64_t grid, n_tok; /* grid = image_size / patch; n_tok = 1 + grid^2 */
    float eps;
    owl_mat patch_embd;  /* (hidden, channels*patch*patch) */
    const float *cls;    /* (hidden) */
    const float *pos;    /* (n_tok, hidden) */
    const float *pre_w, *pre_b, *post_w, *post_b;
    owl_vit_layer *layers;
} owl_vit;

/* ---- visual abstractor (a.*) ---- */
typedef struct {
    const float *norm1_w, *norm1_b, *normk_w, *normk_b, *norm2_w, *norm2_b;
    owl_mat q, k, v, out;                   /* (hidden, hidden) */
    const float *q_b, *k_b, *v_b, *out_b;
    owl_mat gate, up;                       /* (ffn, hidden): w1 (SiLU branch), w3 */
    const float *gate_b, *up_b;
    const float *ffn_norm_w, *ffn_norm_b;   /* (ffn) */
    owl_mat down;                           /* (hidden, ffn) */
    const float *down_b;
} owl_abs_layer;

typedef struct {
    int64_t n_queries, n_layers, hidden, enc_hidden, n_heads, ffn, grid;
    float eps;        /* ffn_ln; norm1/normk/norm2 use 1e-5 */
    const float *query;  /* (n_queries, hidden) */
    const float *q_pos;  /* (n_queries, hidden) 1-D sin-cos, computed at load */
    const float *k_pos;  /* (vision n_tok, hidden) 2-D sin-cos with zero CLS row */
    owl_mat visual_fc;   /* (llm hidden, hidden) */
    const float *visual_fc_b;
    const float *vit_eos; /* (llm hidden) */
    owl_abs_layer *layers;
} owl_abs;

/* ---- LLM decoder ---- */
typedef struct {
    const float *attn_norm[2], *ffn_norm[2]; /* [0] text, [1] image (NULL for llama) */
    owl_mat q, k[2], v[2], o;
    owl_mat gate, up, down;
} owl_llm_layer;

typedef struct {
    int64_t n_vocab, d, n_layers, n_heads, n_kv_heads, head_dim, kv_dim, ffn, n_ctx_train;
    float rope_theta, rms_eps;
    int multiway; /* has the _img twins */
    owl_mat tok_embd; /* (n_vocab, d) */
    const float *out_norm;
    owl_mat output;   /* (n_vocab, d) */
    owl_llm_layer *layers; /* n_layers entries; only [layer_begin, layer_end) filled */
} owl_llm;

/* Blocks of memory a model owns, freed together (weights.c). */
typedef struct {
    void **p;
    size_t n, cap;
} owl_blocks;

struct owl_model {
    int arch;
    owl_gguf gguf;
    void *file_data; /* owned copy when loaded from a file */
    owl_model_opts opts; /* resolved: layer_end filled in */
    const unsigned char *range; /* partial load: file bytes [opts.range_offset, + range_size) */
    size_t range_size;
    int has_vision, has_embed, has_head;
    int64_t image_tokens; /* visual rows per image given to the LLM */
    owl_vit vit;
    owl_abs abs;
    owl_llm llm;
    owl_blocks blocks;  /* owned: f32 copies of vectors, tables, layer arrays */
};

/* The model holds every part: the whole-model calls (prefill, decode,
 * generate) need it; a stage uses the stage API. */
static inline int owl_model_is_whole(const owl_model *m)
{
    return m->has_embed && m->has_head && m->opts.layer_begin == 0 &&
           m->opts.layer_end == m->llm.n_layers;
}

/* Scratch of the vision tower + abstractor, carved from the session arena. */
typedef struct {
    float *x, *xn, *qkv, *q, *k, *v, *att, *ffn, *patches;      /* vision */
    float *ax, *ah, *ac, *acp, *ak, *av, *aq, *aatt, *af1, *af2; /* abstractor */
} owl_img_scratch;

typedef struct {
    float *xn, *q, *k, *v, *att, *g, *u, *tmp; /* n_batch rows */
} owl_llm_scratch;

struct owl_session {
    const owl_model *m;
    owl_pool *pool;
    int n_threads;
    owl_type kv_type;
    int64_t n_ctx, n_batch;
    int64_t n_past;
    void *kv;            /* per held layer: K (n_ctx, kv_dim) then V, kv_type */
    size_t kv_layer_bytes; /* bytes of one K (or V) plane */
    unsigned char *arena;
    size_t arena_size;
    void *mm_scratch;    /* owl_matmul scratch (largest of any matmul) */
    float *att_scratch;  /* owl_attention scratch */
    owl_llm_scratch ls;
    owl_img_scratch is;
    float *logits;       /* (n_vocab) last logits */
    int32_t *history;    /* (n_ctx) token id of each cached position (-200 for image rows) */
    float *hidden;       /* (n_batch, d) embeddings / residual for owl2 driver */
    uint8_t *mod;        /* (n_batch) modality of the rows in hidden */
    float *images[OWL_MAX_IMAGES]; /* (image_tokens, d) each, owned */
    int n_images;
    owl_icache icache;   /* recent pictures' rows by pixel hash; survives reset (image_cache.h) */
    owl_tap_fn tap;
    void *tap_user;
    _Atomic int cancel;
    int32_t (*stop_read)(void *); /* owl_session_cancel_read: stop once stop_read(stop_user) != stop_epoch */
    void *stop_user;
    int32_t stop_epoch;
    owl_err err;
};

/* 1 when owl_session_cancel_when's word (or cancel_read's counter) has moved
 * on: the layer loops stop. */
static inline int owl_session_stopped(const owl_session *s)
{
    return s->stop_read && s->stop_read(s->stop_user) != s->stop_epoch;
}

#endif
