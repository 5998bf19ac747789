/* gguf_write.c - streaming GGUF v3 writer (see gguf.h): KVs and tensor infos are
 * collected, then the header and each tensor's bytes (plus alignment padding)
 * go out through a write callback in the declared order, so a 16 GB model never
 * has to be in memory. Layout notes are at the top of gguf.c. */
#include "gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull;

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v)
{
    uint8_t q[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, q, 4);
}

static void put_u64(bytes *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

static int grow(void **arr, size_t *cap, size_t need_n, size_t es)
{
    if (need_n <= *cap)
        return 1;
    size_t c = *cap ? *cap * 2 : 16;
    if (c < need_n)
        c = need_n;
    if (c > SIZE_MAX / es)
        return 0;
    void *q = realloc(*arr, c * es);
    if (!q)
        return 0;
    *arr = q;
    *cap = c;
    return 1;
}

static char *dup_cstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

typedef struct {
    char *name;
    owl_type type;
    int n_dims;
    int64_t ne[OWL_GGUF_MAX_DIMS];
    uint64_t size, offset; /* offset in the data section, for the current alignment */
} wtensor;

struct owl_gguf_writer {
    bytes kvs;    /* the KV section, serialized as added */
    char **keys;  /* for duplicate checks */
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint64_t info_bytes; /* serialized size of the tensor infos */
    uint64_t data_bytes; /* data section size: sum of padded tensor sizes */
    uint32_t alignment;
    int frozen;  /* header written */
    size_t next; /* next tensor whose data is due */
    owl_err err;
};

/* The most data one file may declare; with <= 2^20 tensors padded to <= 2^31
 * the offsets stay far below 2^63. */
#define WRITER_MAX_DATA ((uint64_t)1 << 60)

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static owl_status werr(owl_gguf_writer *w, owl_err *err, owl_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    w->err.code = code;
    vsnprintf(w->err.msg, sizeof w->err.msg, fmt, ap);
    va_end(ap);
    if (err)
        *err = w->err;
    return code;
}

owl_gguf_writer *owl_gguf_writer_init(void)
{
    owl_gguf_writer *w = calloc(1, sizeof *w);
    if (w)
        w->alignment = OWL_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void owl_gguf_writer_free(owl_gguf_writer *w)
{
    if (!w)
        return;
    free(w->kvs.p);
    for (size_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->t);
    free(w);
}

const owl_err *owl_gguf_writer_last_error(const owl_gguf_writer *w) { return w ? &w->err : NULL; }

static uint64_t padded(uint64_t n, uint32_t a)
{
    return (n + a - 1) & ~(uint64_t)(a - 1); /* n <= 2^60: no overflow */
}

static void relayout(owl_gguf_writer *w)
{
    w->data_bytes = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = w->data_bytes;
        w->data_bytes += padded(w->t[i].size, w->alignment);
    }
}

static uint64_t data_offset(const owl_gguf_writer *w)
{
    return padded(24 + (uint64_t)w->kvs.len + w->info_bytes, w->alignment);
}

/* Appends one KV: a scalar (data), a string (str), or an array (elem, n, data or strs). */
static owl_status add_kv(owl_gguf_writer *w, const char *key, owl_gguf_vtype type, const void *data,
                         const char *str, owl_gguf_vtype elem, uint64_t n, const char *const *strs)
{
    if (!w)
        return OWL_E_INVALID;
    if (!key)
        return werr(w, NULL, OWL_E_INVALID, "kv: key is NULL");
    if (w->frozen)
        return werr(w, NULL, OWL_E_STATE, "key '%s': header already written", key);
    if (w->n_kv >= OWL_GGUF_MAX_KV)
        return werr(w, NULL, OWL_E_LIMIT, "key '%s': over %u kvs", key, OWL_GGUF_MAX_KV);
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return werr(w, NULL, OWL_E_INVALID, "key '%s': duplicate key", key);
    size_t es = type == OWL_GGUF_ARRAY ? owl_gguf_vtype_size(elem) : owl_gguf_vtype_size(type);
    if (type == OWL_GGUF_STRING && !str)
        return werr(w, NULL, OWL_E_INVALID, "key '%s': string value is NULL", key);
    if (type != OWL_GGUF_STRING && !(type == OWL_GGUF_ARRAY && elem == OWL_GGUF_STRING) && !es)
        return werr(w, NULL, OWL_E_INVALID, "key '%s': bad %s type %d", key,
                    type == OWL_GGUF_ARRAY ? "array element" : "value", type == OWL_GGUF_ARRAY ? (int)elem : (int)type);
    if (type == OWL_GGUF_ARRAY && n && !(elem == OWL_GGUF_STRING ? (const void *)strs : data))
        return werr(w, NULL, OWL_E_INVALID, "key '%s': %llu elements at NULL", key, (ull)n);
    if (type == OWL_GGUF_ARRAY && elem != OWL_GGUF_STRING && n > SIZE_MAX / es)
        return werr(w, NULL, OWL_E_NOMEM, "key '%s': %llu elements overflow", key, (ull)n);
    if (type == OWL_GGUF_ARRAY && elem == OWL_GGUF_STRING)
        for (uint64_t i = 0; i < n; i++)
            if (!strs[i])
                return werr(w, NULL, OWL_E_INVALID, "key '%s': string %llu is NULL", key, (ull)i);
    if (type != OWL_GGUF_ARRAY && type != OWL_GGUF_STRING && !data)
        return werr(w, NULL, OWL_E_INVALID, "key '%s': value is NULL", key);
    uint32_t align = 0;
    if (strcmp(key, "general.alignment") == 0) {
        if (type != OWL_GGUF_UINT32)
            return werr(w, NULL, OWL_E_INVALID, "general.alignment: want u32, got %s", owl_gguf_vtype_name(type));
        memcpy(&align, data, 4);
        if (!is_pow2(align) || align > (1u << 31))
            return werr(w, NULL, OWL_E_INVALID, "general.alignment: %u is not a power of two", align);
    }
    size_t mark = w->kvs.len;
    put_str(&w->kvs, key);
    put_u32(&w->kvs, type);
    if (type == OWL_GGUF_STRING) {
        put_str(&w->kvs, str);
    } else if (type == OWL_GGUF_ARRAY) {
        put_u32(&w->kvs, elem);
        put_u64(&w->kvs, n);
        if (elem == OWL_GGUF_STRING)
            for (uint64_t i = 0; i < n; i++)
                put_str(&w->kvs, strs[i]);
        else
            put(&w->kvs, data, (size_t)n * es);
    } else if (type == OWL_GGUF_BOOL) {
        uint8_t b = *(const uint8_t *)data != 0;
        put(&w->kvs, &b, 1);
    } else {
        put(&w->kvs, data, es);
    }
    char *k = dup_cstr(key);
    if (w->kvs.oom || !k || !grow((void **)&w->keys, &w->cap_kv, w->n_kv + 1, sizeof *w->keys)) {
        w->kvs.len = mark;
        w->kvs.oom = 0;
        free(k);
        return werr(w, NULL, OWL_E_NOMEM, "key '%s': out of memory", key);
    }
    w->keys[w->n_kv++] = k;
    if (align) {
        w->alignment = align;
        relayout(w);
    }
    return OWL_OK;
}

owl_status owl_gguf_writer_set_val(owl_gguf_writer *w, const char *key, owl_gguf_vtype type,
                                   const void *v)
{
    if (type == OWL_GGUF_STRING || type == OWL_GGUF_ARRAY)
        type = (owl_gguf_vtype)-1; /* rejected as a bad value type by add_kv */
    return add_kv(w, key, type, v, NULL, 0, 0, NULL);
}

owl_status owl_gguf_writer_set_u32(owl_gguf_writer *w, const char *key, uint32_t v)
{
    return owl_gguf_writer_set_val(w, key, OWL_GGUF_UINT32, &v);
}

owl_status owl_gguf_writer_set_i32(owl_gguf_writer *w, const char *key, int32_t v)
{
    return owl_gguf_writer_set_val(w, key, OWL_GGUF_INT32, &v);
}

owl_status owl_gguf_writer_set_u64(owl_gguf_writer *w, const char *key, uint64_t v)
{
    return owl_gguf_writer_set_val(w, key, OWL_GGUF_UINT64, &v);
}

owl_status owl_gguf_writer_set_f32(owl_gguf_writer *w, const char *key, float v)
{
    return owl_gguf_writer_set_val(w, key, OWL_GGUF_FLOAT32, &v);
}

owl_status owl_gguf_writer_set_bool(owl_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return owl_gguf_writer_set_val(w, key, OWL_GGUF_BOOL, &b);
}

owl_status owl_gguf_writer_set_str(owl_gguf_writer *w, const char *key, const char *v)
{
    return add_kv(w, key, OWL_GGUF_STRING, NULL, v, 0, 0, NULL);
}

owl_status owl_gguf_writer_set_arr(owl_gguf_writer *w, const char *key, owl_gguf_vtype elem,
                                   const void *data, uint64_t n)
{
    if (elem == OWL_GGUF_STRING || elem == OWL_GGUF_ARRAY)
        elem = (owl_gguf_vtype)-1; /* strings go through set_arr_str; no nesting */
    return add_kv(w, key, OWL_GGUF_ARRAY, data, NULL, elem, n, NULL);
}

owl_status owl_gguf_writer_set_arr_str(owl_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n)
{
    return add_kv(w, key, OWL_GGUF_ARRAY, NULL, NULL, OWL_GGUF_STRING, n, strs);
}

owl_status owl_gguf_writer_add_tensor(owl_gguf_writer *w, const char *name, owl_type type,
                                      int n_dims, const int64_t *ne)
{
    if (!w)
        return OWL_E_INVALID;
    if (!name || !*name)
        return werr(w, NULL, OWL_E_INVALID, "tensor name is empty");
    if (w->frozen)
        return werr(w, NULL, OWL_E_STATE, "tensor '%s': header already written", name);
    size_t len = strlen(name);
    if (len > OWL_GGUF_MAX_NAME)
        return werr(w, NULL, OWL_E_INVALID, "tensor '%.64s...': name is %zu bytes, llama.cpp allows %d",
                    name, len, OWL_GGUF_MAX_NAME);
    if (w->n_t >= OWL_GGUF_MAX_TENSORS)
        return werr(w, NULL, OWL_E_LIMIT, "tensor '%s': over %u tensors", name, OWL_GGUF_MAX_TENSORS);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return werr(w, NULL, OWL_E_INVALID, "tensor '%s': duplicate tensor name", name);
    const owl_type_traits *tr = (int)type >= 0 && type < OWL_TYPE_COUNT ? owl_type_get((int)type) : NULL;
    if (!tr)
        return werr(w, NULL, OWL_E_INVALID, "tensor '%s': unknown type %d", name, (int)type);
    if (n_dims < 1 || n_dims > OWL_GGUF_MAX_DIMS || !ne)
        return werr(w, NULL, OWL_E_INVALID, "tensor '%s': n_dims %d not in 1..%d", name, n_dims,
                    OWL_GGUF_MAX_DIMS);
    uint64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || (uint64_t)ne[d] > WRITER_MAX_DATA / nel)
            return werr(w, NULL, OWL_E_INVALID, "tensor '%s': dim %d = %lld is %s", name, d,
                        (long long)ne[d], ne[d] <= 0 ? "not positive" : "too large");
        nel *= (uint64_t)ne[d];
    }
    if (ne[0] % tr->blck_size)
        return werr(w, NULL, OWL_E_INVALID, "tensor '%s': row length %lld not a multiple of %s block size %d",
                    name, (long long)ne[0], tr->name, tr->blck_size);
    uint64_t blocks = nel / (uint64_t)tr->blck_size;
    if (blocks > WRITER_MAX_DATA / tr->type_size ||
        w->data_bytes + padded(blocks * tr->type_size, w->alignment) > WRITER_MAX_DATA)
        return werr(w, NULL, OWL_E_INVALID, "tensor '%s': %llu %s blocks exceed 2^60 bytes of data",
                    name, (ull)blocks, tr->name);
    char *nm = dup_cstr(name);
    if (!nm || !grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t)) {
        free(nm);
        return werr(w, NULL, OWL_E_NOMEM, "tensor '%s': out of memory", name);
    }
    wtensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++)
        t->ne[d] = ne[d];
    t->size = blocks * tr->type_size;
    t->offset = w->data_bytes;
    w->data_bytes += padded(t->size, w->alignment);
    w->info_bytes += 8 + len + 4 + 8 * (uint64_t)n_dims + 4 + 8;
    return OWL_OK;
}

uint64_t owl_gguf_writer_file_size(const owl_gguf_writer *w)
{
    return w ? data_offset(w) + w->data_bytes : 0;
}

uint64_t owl_gguf_writer_tensor_file_offset(const owl_gguf_writer *w, uint64_t i)
{
    return w && i < w->n_t ? data_offset(w) + w->t[i].offset : 0;
}

uint64_t owl_gguf_writer_tensor_size(const owl_gguf_writer *w, uint64_t i)
{
    return w && i < w->n_t ? w->t[i].size : 0;
}

static const uint8_t zeros[256];

static int write_zeros(owl_gguf_write_fn fn, void *user, uint64_t n)
{
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fn(user, zeros, k))
            return 1;
        n -= k;
    }
    return 0;
}

owl_status owl_gguf_writer_write_header(owl_gguf_writer *w, owl_gguf_write_fn fn, void *user,
                                        owl_err *err)
{
    if (!w)
        return owl_err_set(err, OWL_E_INVALID, "gguf writer is NULL");
    if (!fn)
        return werr(w, err, OWL_E_INVALID, "write_header: write function is NULL");
    if (w->frozen)
        return werr(w, err, OWL_E_STATE, "write_header: header already written");
    bytes h = {0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    put(&h, w->kvs.p, w->kvs.len);
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&h, t->name);
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, (uint32_t)t->type);
        put_u64(&h, t->offset);
    }
    uint64_t end = data_offset(w);
    while (!h.oom && h.len < end)
        put(&h, zeros, end - h.len < sizeof zeros ? (size_t)(end - h.len) : sizeof zeros);
    if (h.oom) {
        free(h.p);
        return werr(w, err, OWL_E_NOMEM, "write_header: out of memory for the %llu-byte header", (ull)end);
    }
    OWL_ASSERT(h.len == end);
    int bad = fn(user, h.p, h.len);
    free(h.p);
    if (bad)
        return werr(w, err, OWL_E_IO, "write_header: writing %llu bytes failed", (ull)end);
    w->frozen = 1;
    w->next = 0;
    return OWL_OK;
}

owl_status owl_gguf_writer_write_tensor_data(owl_gguf_writer *w, const void *data, size_t size,
                                             owl_gguf_write_fn fn, void *user, owl_err *err)
{
    if (!w)
        return owl_err_set(err, OWL_E_INVALID, "gguf writer is NULL");
    if (!fn || (!data && size))
        return werr(w, err, OWL_E_INVALID, "write_tensor_data: NULL %s", fn ? "data" : "write function");
    if (!w->frozen)
        return werr(w, err, OWL_E_STATE, "write_tensor_data: header not written yet");
    if (w->next >= w->n_t)
        return werr(w, err, OWL_E_STATE, "write_tensor_data: all %zu tensors already written", w->n_t);
    const wtensor *t = &w->t[w->next];
    if (size != t->size)
        return werr(w, err, OWL_E_INVALID, "tensor '%s': got %zu bytes, want %llu", t->name, size,
                    (ull)t->size);
    if ((size && fn(user, data, size)) || write_zeros(fn, user, padded(t->size, w->alignment) - t->size))
        return werr(w, err, OWL_E_IO, "tensor '%s': writing %zu bytes failed", t->name, size);
    w->next++;
    return OWL_OK;
}
