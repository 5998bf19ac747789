/* model.h - private structures of the model code (src/model/): hyperparameters,
 * weight views into the GGUF buffer, the session's KV cache and scratch.
 * Only the files of src/model/ include this; users see src/owlet.h. */
#ifndef OWL_MODEL_H
#define OWL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/gguf.h"
#include "../kernels/pool.h"
#include "../kernels/ops.h"
#include "../owlet.h"

#define OWL_ARCH_OWL2 1
#define OWL_ARCH_LLAMA 2

/* A weight matrix of rows x cols borrowed from the GGUF buffer (row-major,
 * each row owl_row_size(type, cols) bytes). */
typedef struct {
    const void *data;
    owl_type type;
    int64_t rows, cols;
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
    void **allocs;      /* owned blocks: f32 copies of vectors, tables, layer arrays */
    size_t n_allocs, cap_allocs;
};

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
    owl_tap_fn tap;
    void *tap_user;
    _Atomic int cancel;
    owl_err err;
};

/* ---- shared helpers (owl2.c) ---- */
/* Y (n, W.rows) = X (n, W.cols) W^T (+ bias per row when b != NULL). */
void owl_model_matmul(owl_session *s, const owl_mat *W, const float *b, const float *X,
                      int64_t n, float *Y);
void owl_model_tap(owl_session *s, const char *name, const float *x, int64_t rows, int64_t cols);
/* y[i][:] = layernorm(x[i][:]) for n rows of width w. */
void owl_model_layernorm_rows(float *y, const float *x, const float *w, const float *b, int64_t n,
                              int64_t width, float eps);

/* ---- loaders (vision.c, abstractor.c, llm.c) ---- */
typedef struct owl_loader owl_loader;
/* Look up a tensor that must have exactly shape (ne0, ne1) (ne1 = 1 for
 * vectors); matrices may be of any compute type, returned as a view. */
owl_status owl_load_mat(owl_loader *ld, owl_mat *out, const char *name, int64_t cols, int64_t rows);
/* A vector/table of n0*n1 floats: dequantized into the model's owned memory. */
owl_status owl_load_vec(owl_loader *ld, const float **out, const char *name, int64_t n0, int64_t n1);
/* Required metadata: u32 in 1..2^20, f32 finite and > 0. */
owl_status owl_load_u32(owl_loader *ld, const char *key, int64_t *out);
owl_status owl_load_f32(owl_loader *ld, const char *key, float *out);
/* Present / absent tensor. */
int owl_load_has(owl_loader *ld, const char *name);
void *owl_load_alloc(owl_loader *ld, size_t bytes);
/* Refuse a block count the file cannot back: each of n_layers layers needs at
 * least per_layer tensors, checked before anything is sized by n_layers (a
 * 2 KB file must not make the loader allocate hundreds of MB). */
owl_status owl_load_check_layers(owl_loader *ld, const char *key, int64_t n_layers, int per_layer); /* owned, zeroed; NULL on OOM (err set) */
owl_err *owl_load_err(owl_loader *ld);
owl_model *owl_load_model(owl_loader *ld);

owl_status owl_vit_load(owl_loader *ld, owl_vit *v);
owl_status owl_abs_load(owl_loader *ld, owl_abs *a, const owl_vit *v, int64_t llm_d);
owl_status owl_llm_load(owl_loader *ld, owl_llm *l, int arch, int layer_begin, int layer_end,
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

/* Bytes of scratch the image phase needs (floats), 0 when no vision. */
int64_t owl_img_scratch_floats(const owl_model *m);
void owl_img_scratch_carve(const owl_model *m, float *base, owl_img_scratch *is);

#endif
