/* ckpt.h - streaming readers of Hugging Face checkpoints for owlet-convert.
 *
 * An owl_ckpt is an index of tensors (name, dtype, PyTorch shape and strides,
 * where the bytes are) built from .safetensors files or torch.save zip
 * archives (.bin, pickle protocol 2), single or sharded via
 * *.index.json. Only headers are read at open; owl_ckpt_read() then preads
 * the rows asked for, so peak memory is one row group, not the checkpoint.
 * Untrusted input: every offset, count and size is checked against the file
 * before use; errors name the file and the key. */
#ifndef OWL_CKPT_H
#define OWL_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "../src/core/status.h"
#include "../src/kernels/types.h"

#define OWL_CK_MAX_DIMS 8
#define OWL_CK_MAX_FILES 4096
#define OWL_CK_MAX_TENSORS (1 << 20)
#define OWL_CK_MAX_HEADER ((uint64_t)256 << 20) /* safetensors header / data.pkl */
#define OWL_CK_VIEW_CACHE ((uint64_t)512 << 20)  /* strided views up to this span are read whole */

typedef struct {
    char *name;
    owl_type dtype; /* F32, F16, BF16; OWL_TYPE_COUNT for a storage type we cannot read */
    int n_dims;
    int64_t shape[OWL_CK_MAX_DIMS];  /* PyTorch order */
    int64_t stride[OWL_CK_MAX_DIMS]; /* in elements */
    int file;                        /* index into owl_ckpt.paths */
    uint64_t base;                   /* file offset of the view's element 0 */
    int used;                        /* set by the converter */
} owl_ck_tensor;

typedef struct {
    char **paths;
    int *fds;
    int n_files;
    owl_ck_tensor *t;
    size_t n, cap;
    const char *format; /* "safetensors" or "pytorch" */
    uint8_t *cache;     /* bytes of the last strided view read (owl_ckpt_read) */
    const owl_ck_tensor *cache_t;
    uint64_t view_cache_max; /* 0: OWL_CK_VIEW_CACHE (tests lower it) */
} owl_ckpt;

/* Bytes of one element of a checkpoint dtype (0 if unreadable). */
size_t owl_ckpt_elem_size(owl_type t);

/* Open the checkpoint in dir. prefer: "safetensors", "pytorch" or NULL (auto:
 * model.safetensors[.index.json] first, then pytorch_model.bin[.index.json]). */
owl_status owl_ckpt_open(owl_ckpt *ck, const char *dir, const char *prefer, owl_err *err);
/* Add every tensor of one file (used by owl_ckpt_open and the tests). */
owl_status owl_ckpt_add_safetensors(owl_ckpt *ck, const char *path, owl_err *err);
owl_status owl_ckpt_add_torch(owl_ckpt *ck, const char *path, owl_err *err);
void owl_ckpt_free(owl_ckpt *ck); /* NULL-safe */

owl_ck_tensor *owl_ckpt_find(owl_ckpt *ck, const char *name);
int64_t owl_ck_numel(const owl_ck_tensor *t);

/* Read elements [e0, e0 + n) of t in C (row-major) order of its shape as f32
 * into out. Handles any non-negative strides (views, non-contiguous). */
owl_status owl_ckpt_read(const owl_ckpt *ck, const owl_ck_tensor *t, int64_t e0, int64_t n, float *out,
                         owl_err *err);

/* ---- internal, shared by ckpt.c and torch.c (and the tests) ---- */
/* Run the pickle machine on a data.pkl buffer; *n_items = entries of the dict. */
owl_status owl_ck_pickle_check(const void *data, size_t size, size_t *n_items, owl_err *err);
owl_status owl_ck_add_file(owl_ckpt *ck, const char *path, int *idx, uint64_t *fsize, owl_err *err);
owl_status owl_ck_push(owl_ckpt *ck, const owl_ck_tensor *t, owl_err *err); /* takes t->name */
owl_status owl_ck_pread(const owl_ckpt *ck, int file, uint64_t off, void *buf, size_t n, owl_err *err);
/* Checks that the view fits in [storage_start, storage_end) of the file. */
owl_status owl_ck_check_view(const owl_ckpt *ck, const owl_ck_tensor *t, uint64_t storage_end, owl_err *err);

/* Read a whole small file (JSON, tokenizer.model, an index) into a NUL-terminated
 * malloc'd buffer; limit OWL_CK_MAX_HEADER. Defined in ckpt.c. */
owl_status owl_conv_read_file(const char *path, char **out, size_t *size, owl_err *err);

#endif
