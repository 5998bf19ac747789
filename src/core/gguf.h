/* gguf.h - GGUF v3 reader (zero-copy, validating) and streaming writer.
 *
 * Reader: owl_gguf_parse() reads a whole file held in memory. It validates every
 * field against the bytes left before using it (magic, version 3 (2 accepted),
 * counts, string lengths, array element types, general.alignment (power of two),
 * tensor dims/types/offsets, data ranges inside the buffer, size arithmetic
 * overflow, duplicate keys and tensor names) and returns OWL_E_FORMAT /
 * OWL_E_TRUNCATED / OWL_E_UNSUPPORTED with a message naming the field, never
 * crashing. Tensor data pointers point into the caller's buffer (no copies):
 * the buffer must outlive the owl_gguf.
 *
 * Writer: collects KVs and tensor infos, then streams the header and each
 * tensor's bytes in the declared order through a write callback, so a 16 GB
 * model never has to be in memory. Implemented in src/core/gguf.c. */
#ifndef OWL_GGUF_H
#define OWL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/types.h"
#include "status.h"

#define OWL_GGUF_MAX_DIMS 4
#define OWL_GGUF_DEFAULT_ALIGNMENT 32
/* Reader limits (OWL_E_LIMIT beyond them), far above any real model; they keep a
 * hostile header from making the parser allocate many times the file size. */
#define OWL_GGUF_MAX_KV (1u << 20)
#define OWL_GGUF_MAX_TENSORS (1u << 20)
/* llama.cpp's GGML_MAX_NAME is 64 including the NUL: the writer refuses longer
 * tensor names so that every file it writes loads in llama.cpp. */
#define OWL_GGUF_MAX_NAME 63

typedef enum {
    OWL_GGUF_UINT8 = 0,
    OWL_GGUF_INT8 = 1,
    OWL_GGUF_UINT16 = 2,
    OWL_GGUF_INT16 = 3,
    OWL_GGUF_UINT32 = 4,
    OWL_GGUF_INT32 = 5,
    OWL_GGUF_FLOAT32 = 6,
    OWL_GGUF_BOOL = 7,
    OWL_GGUF_STRING = 8,
    OWL_GGUF_ARRAY = 9,
    OWL_GGUF_UINT64 = 10,
    OWL_GGUF_INT64 = 11,
    OWL_GGUF_FLOAT64 = 12
} owl_gguf_vtype;

typedef struct {
    uint64_t len;
    const char *data; /* not NUL-terminated; points into the file buffer */
} owl_gguf_str;

typedef struct {
    owl_gguf_str key;
    owl_gguf_vtype type;
    /* For ARRAY: element type and count; elements start at 'data'. For STRING
     * arrays, elements are (u64 len, bytes) records, walk them with
     * owl_gguf_arr_str(). For scalars, 'data' points at the value. */
    owl_gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *data;
    owl_gguf_str str; /* valid when type == STRING */
    /* Internal: pointer to each string-array element's (u64 len, bytes)
     * record, so owl_gguf_arr_str() is O(1) (built at parse, owned). */
    const uint8_t **arr_strs;
} owl_gguf_kv;

typedef struct {
    owl_gguf_str name;
    owl_type type;
    int n_dims;
    int64_t ne[OWL_GGUF_MAX_DIMS]; /* ggml order: ne[0] = row length (fastest) */
    uint64_t offset;              /* relative to the data section */
    size_t size;                  /* bytes */
    const void *data;             /* inside the buffer (NULL if header_only); at
                                   * buffer + data_offset + offset, so as aligned
                                   * as the buffer up to general.alignment */
} owl_gguf_tensor;

typedef struct {
    owl_gguf_str name;
    size_t index;
} owl_gguf_name_ref; /* internal */

typedef struct {
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    uint64_t n_tensors;
    owl_gguf_kv *kv;          /* owned array */
    owl_gguf_tensor *tensors; /* owned array */
    size_t data_offset;       /* start of the tensor data section in the buffer */
    uint64_t data_size;       /* bytes from data_offset to the end of the last tensor (header-only:
                               * may exceed SIZE_MAX on wasm32; only a stage's range is ever loaded) */
    /* Internal: names sorted bytewise, for O(log n) find_kv / find_tensor and
     * duplicate checks with an O(n log n) worst case (a hash table could be
     * driven quadratic by crafted names). Owned. */
    owl_gguf_name_ref *kv_sorted, *tensor_sorted;
} owl_gguf;

/* Parse data[0..size). If header_only is non-zero, the buffer may hold only the
 * header (tensor ranges are checked against a file of total size file_size
 * instead, and tensor data pointers are NULL); otherwise file_size is ignored.
 * On error *out is left empty (nothing to free) and err names the problem:
 * OWL_E_TRUNCATED (a count, length or range runs past the bytes there are),
 * OWL_E_FORMAT (bad magic, value type, alignment, dims, offsets, overlap,
 * duplicates), OWL_E_UNSUPPORTED (version, tensor type, nested arrays),
 * OWL_E_LIMIT (over OWL_GGUF_MAX_KV/TENSORS, tensor over SIZE_MAX), OWL_E_NOMEM.
 * Bytes after the last tensor (padding) are allowed. */
owl_status owl_gguf_parse(const void *data, size_t size, int header_only, uint64_t file_size,
                          owl_gguf *out, owl_err *err);
void owl_gguf_free(owl_gguf *g); /* NULL-safe; frees only what parse allocated */

/* Lookups (NULL / -1 when absent). Key comparisons are exact, byte-wise. */
const owl_gguf_kv *owl_gguf_find_kv(const owl_gguf *g, const char *key);
const owl_gguf_tensor *owl_gguf_find_tensor(const owl_gguf *g, const char *name);
int owl_gguf_str_eq(owl_gguf_str s, const char *cstr);

/* Typed getters: return OWL_OK, OWL_E_NOTFOUND if the key is absent, or
 * OWL_E_FORMAT (message names key, wanted and found type) on a type mismatch.
 * Integer getters accept any integer type whose value fits; get_f32 accepts
 * f32 and f64 (rounded). */
owl_status owl_gguf_get_u32(const owl_gguf *g, const char *key, uint32_t *v, owl_err *err);
owl_status owl_gguf_get_i64(const owl_gguf *g, const char *key, int64_t *v, owl_err *err);
owl_status owl_gguf_get_f32(const owl_gguf *g, const char *key, float *v, owl_err *err);
owl_status owl_gguf_get_bool(const owl_gguf *g, const char *key, int *v, owl_err *err);
owl_status owl_gguf_get_str(const owl_gguf *g, const char *key, owl_gguf_str *v, owl_err *err);
/* Array of the given element type: *n elements at *data (unaligned: memcpy). */
owl_status owl_gguf_get_arr(const owl_gguf *g, const char *key, owl_gguf_vtype elem,
                            const void **data, uint64_t *n, owl_err *err);
/* Element i of a string array kv. */
owl_gguf_str owl_gguf_arr_str(const owl_gguf_kv *kv, uint64_t i);

/* Name ("u32", "str", ...) and scalar byte size (0 for str/arr) of a value type. */
const char *owl_gguf_vtype_name(uint32_t t);
size_t owl_gguf_vtype_size(uint32_t t);

/* ---- writer (src/core/gguf_write.c) ---- */
typedef struct owl_gguf_writer owl_gguf_writer;
/* Sink for bytes; returns 0 on success. */
typedef int (*owl_gguf_write_fn)(void *user, const void *data, size_t n);

owl_gguf_writer *owl_gguf_writer_init(void); /* NULL on OOM */
void owl_gguf_writer_free(owl_gguf_writer *w);   /* NULL-safe */
/* The writer's last error (code + message naming key/tensor and values). The
 * set_* / add_tensor calls report only through it; calls that take an owl_err
 * report through both. */
const owl_err *owl_gguf_writer_last_error(const owl_gguf_writer *w);
/* KVs are written in the order added. Errors: OWL_E_INVALID (NULL key, duplicate
 * key, general.alignment not a u32 power of two, bad element type), OWL_E_NOMEM,
 * OWL_E_STATE (after write_header). A failed call adds nothing. */
/* Scalar of any numeric type or BOOL (not STRING/ARRAY); v points at a value of
 * that type (u8, i8, u16, i16, u32, i32, f32, bool as uint8_t, u64, i64, f64). */
owl_status owl_gguf_writer_set_val(owl_gguf_writer *w, const char *key, owl_gguf_vtype type,
                                   const void *v);
owl_status owl_gguf_writer_set_u32(owl_gguf_writer *w, const char *key, uint32_t v);
owl_status owl_gguf_writer_set_i32(owl_gguf_writer *w, const char *key, int32_t v);
owl_status owl_gguf_writer_set_u64(owl_gguf_writer *w, const char *key, uint64_t v);
owl_status owl_gguf_writer_set_f32(owl_gguf_writer *w, const char *key, float v);
owl_status owl_gguf_writer_set_bool(owl_gguf_writer *w, const char *key, int v);
owl_status owl_gguf_writer_set_str(owl_gguf_writer *w, const char *key, const char *v);
/* Array of numbers (elem not STRING/ARRAY): n elements of elem's size copied. */
owl_status owl_gguf_writer_set_arr(owl_gguf_writer *w, const char *key, owl_gguf_vtype elem,
                                   const void *data, uint64_t n);
owl_status owl_gguf_writer_set_arr_str(owl_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n);
/* Declare a tensor (ggml dim order, ne[0] fastest); data follows later in the
 * same order. Offsets are aligned to general.alignment (default 32), and every
 * tensor is followed by zero padding to the alignment, as llama.cpp writes it.
 * Errors (OWL_E_INVALID): name empty, longer than OWL_GGUF_MAX_NAME or
 * duplicate, unknown type, n_dims outside 1..4, a dim <= 0, ne[0] not a
 * multiple of the block size, byte size overflow. */
owl_status owl_gguf_writer_add_tensor(owl_gguf_writer *w, const char *name, owl_type type,
                                      int n_dims, const int64_t *ne);
/* Total file size the writer will produce (valid after all KVs and tensors are
 * added); 0 for NULL. */
uint64_t owl_gguf_writer_file_size(const owl_gguf_writer *w);
/* Offset in the file of tensor i's data (0 if i is out of range). */
uint64_t owl_gguf_writer_tensor_file_offset(const owl_gguf_writer *w, uint64_t i);
/* Bytes of tensor i's data (0 if i is out of range). */
uint64_t owl_gguf_writer_tensor_size(const owl_gguf_writer *w, uint64_t i);
/* Write magic, KVs, tensor infos and padding up to the data section (once; the
 * writer is frozen afterwards). A sink failure is OWL_E_IO. */
owl_status owl_gguf_writer_write_header(owl_gguf_writer *w, owl_gguf_write_fn fn, void *user,
                                        owl_err *err);
/* Write the next tensor's bytes (exactly its size, else OWL_E_INVALID) plus
 * alignment padding. OWL_E_STATE before write_header or after the last tensor. */
owl_status owl_gguf_writer_write_tensor_data(owl_gguf_writer *w, const void *data, size_t size,
                                             owl_gguf_write_fn fn, void *user, owl_err *err);

#endif
