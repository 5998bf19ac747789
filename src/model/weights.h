/* weights.h - tensor lookup for the parts' loaders (weights.c): find a tensor
 * by name, check its shape and type against what the metadata implies, and
 * return a view into the GGUF bytes (matrices) or a dequantized f32 copy
 * (vectors and tables), plus checked metadata reads. Knows nothing of the
 * parts; the parts and load.c call it, it calls no one in src/model. */
#ifndef OWL_MODEL_WEIGHTS_H
#define OWL_MODEL_WEIGHTS_H

#include "model.h"

/* What a part's loader reads from: the parsed GGUF, where the tensor bytes
 * are (the whole file, or a partial range of it), where owned copies go. */
typedef struct {
    const owl_gguf *gguf;
    const unsigned char *range; /* NULL: tensor data pointers are valid (whole file) */
    size_t range_size;          /* else file bytes [range_offset, + range_size) */
    uint64_t range_offset;
    owl_blocks *blocks;         /* owned allocations land here */
    owl_err *err;
    int rearrange;              /* owl_load_mat may put matrices in the r4 layout */
} owl_loader;

/* Look up a tensor that must have exactly shape (ne0, ne1) (ne1 = 1 for
 * vectors); matrices may be of any compute type, returned as a view. A
 * matrix only multiplied (owl_load_mat) is put in the 4-row interleaved
 * layout when the loader may rearrange and the kernels read it so (out->r4);
 * a table whose rows are also read one by one (owl_load_table: the token
 * embeddings) stays row-major. */
owl_status owl_load_mat(owl_loader *ld, owl_mat *out, const char *name, int64_t cols, int64_t rows);
owl_status owl_load_table(owl_loader *ld, owl_mat *out, const char *name, int64_t cols, int64_t rows);
/* A vector/table of n0*n1 floats: dequantized into owned memory. */
owl_status owl_load_vec(owl_loader *ld, const float **out, const char *name, int64_t n0, int64_t n1);
/* Layer tensors named "<prefix>.<layer>.<what>.weight" / ".bias":
 * a (cols -> rows) matrix and, when b != NULL, its bias (rows); */
owl_status owl_load_layer_mat(owl_loader *ld, owl_mat *w, const float **b, const char *prefix,
                              int layer, const char *what, int64_t cols, int64_t rows);
/* a norm's gain (n) and, when b != NULL, its bias (n). */
owl_status owl_load_layer_norm(owl_loader *ld, const float **w, const float **b, const char *prefix,
                               int layer, const char *what, int64_t n);
/* Required metadata: u32 in 1..2^20, f32 finite and > 0. */
owl_status owl_load_u32(owl_loader *ld, const char *key, int64_t *out);
owl_status owl_load_f32(owl_loader *ld, const char *key, float *out);
/* Present / absent tensor. */
int owl_load_has(owl_loader *ld, const char *name);
/* Owned, zeroed; NULL on OOM (err set). */
void *owl_load_alloc(owl_loader *ld, size_t bytes);
/* Refuse a block count the file cannot back: each of n_layers layers needs at
 * least per_layer tensors, checked before anything is sized by n_layers (a
 * 2 KB file must not make the loader allocate hundreds of MB). */
owl_status owl_load_check_layers(owl_loader *ld, const char *key, int64_t n_layers, int per_layer);

/* Free every block (and the list); blocks is left empty. */
void owl_blocks_free(owl_blocks *blocks);

#endif
