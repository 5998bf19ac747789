/* gguf.c - GGUF v3 reader (zero-copy, validating); the writer is gguf_write.c (see gguf.h).
 *
 * File layout, all little-endian (ggml docs/gguf.md):
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x      (str key | u32 vtype | value)
 *   n_tensors x (str name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset)
 *   zero padding to general.alignment, then the data section: tensor i at
 *   data_offset + offset_i, each followed by padding to the alignment.
 *   str = u64 len | bytes (no NUL); array value = u32 elem type | u64 n | elements.
 *
 * The reader never reads a byte before checking it is there: every count and
 * length is compared with the bytes left, every product is overflow-checked. */
#include "gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "owlet hands out pointers to little-endian GGUF data: little-endian hosts only"
#endif

typedef unsigned long long ull;

const char *owl_gguf_vtype_name(uint32_t t)
{
    static const char *names[] = {"u8", "i8",  "u16", "i16", "u32", "i32", "f32",
                                  "bool", "str", "arr", "u64", "i64", "f64"};
    return t <= OWL_GGUF_FLOAT64 ? names[t] : "?";
}

/* Bytes of a fixed-size value type; 0 for STRING, ARRAY and unknown types. */
size_t owl_gguf_vtype_size(uint32_t t)
{
    static const uint8_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t <= OWL_GGUF_FLOAT64 ? sizes[t] : 0;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

/* x rounded up to a multiple of a (a power of two); 0 on overflow of UINT64_MAX. */
static int pad_to(uint64_t x, uint64_t a, uint64_t *out)
{
    if (x > UINT64_MAX - (a - 1))
        return 0;
    *out = (x + a - 1) & ~(a - 1);
    return 1;
}

/* Printable copy of an untrusted name for messages (cut, controls -> '?'). */
typedef struct {
    char s[72];
} shown;

static shown show(owl_gguf_str str)
{
    shown r;
    size_t n = str.len < 64 ? (size_t)str.len : 64, k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str.data[i];
        r.s[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (str.len > n) {
        memcpy(r.s + k, "...", 3);
        k += 3;
    }
    r.s[k] = 0;
    return r;
}

int owl_gguf_str_eq(owl_gguf_str s, const char *cstr)
{
    if (!cstr)
        return 0;
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.data, cstr, n) == 0);
}

// ---------------------------------------------------------------- name index

/* A total order on byte strings: bytes, then length. */
static int name_cmp(const char *a, uint64_t an, const char *b, uint64_t bn)
{
    size_t m = (size_t)(an < bn ? an : bn);
    int c = m ? memcmp(a, b, m) : 0;
    return c ? c : (an > bn) - (an < bn);
}

static int ref_cmp(const void *x, const void *y)
{
    const owl_gguf_name_ref *a = x, *b = y;
    int c = name_cmp(a->name.data, a->name.len, b->name.data, b->name.len);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* Sorts refs (glibc and musl qsort are O(n log n) worst case); returns 1 and
 * the two indices of the first duplicate name, 0 if all names differ. */
static int sort_names(owl_gguf_name_ref *refs, size_t n, size_t *first, size_t *second)
{
    if (n > 1)
        qsort(refs, n, sizeof *refs, ref_cmp);
    for (size_t k = 1; k < n; k++)
        if (!name_cmp(refs[k - 1].name.data, refs[k - 1].name.len, refs[k].name.data, refs[k].name.len)) {
            *first = refs[k - 1].index;
            *second = refs[k].index;
            return 1;
        }
    return 0;
}

static const owl_gguf_name_ref *lookup(const owl_gguf_name_ref *refs, uint64_t n, const char *s)
{
    size_t len = strlen(s), lo = 0, hi = refs ? (size_t)n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(refs[mid].name.data, refs[mid].name.len, s, len);
        if (c == 0)
            return &refs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

// ---------------------------------------------------------------- reader

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    owl_err *err;
    char what[96]; /* the item being read, for messages: "kv 3", "key 'x'" ... */
} reader;

static size_t left(const reader *r) { return r->size - r->pos; }

static owl_status need(reader *r, size_t n, const char *field)
{
    if (n <= left(r))
        return OWL_OK;
    return owl_err_set(r->err, OWL_E_TRUNCATED, "%s: %s needs %zu bytes at offset %zu, %zu left",
                       r->what, field, n, r->pos, left(r));
}

static owl_status rd_u32(reader *r, uint32_t *v, const char *field)
{
    owl_status s = need(r, 4, field);
    if (s)
        return s;
    *v = get_le32(r->p + r->pos);
    r->pos += 4;
    return OWL_OK;
}

static owl_status rd_u64(reader *r, uint64_t *v, const char *field)
{
    owl_status s = need(r, 8, field);
    if (s)
        return s;
    *v = get_le64(r->p + r->pos);
    r->pos += 8;
    return OWL_OK;
}

static owl_status rd_str(reader *r, owl_gguf_str *v, const char *field)
{
    uint64_t n;
    owl_status s = rd_u64(r, &n, field);
    if (s)
        return s;
    if (n > left(r))
        return owl_err_set(r->err, OWL_E_TRUNCATED, "%s: %s length %llu exceeds the %zu bytes left",
                           r->what, field, (ull)n, left(r));
    v->len = n;
    v->data = (const char *)r->p + r->pos;
    r->pos += (size_t)n;
    return OWL_OK;
}

/* Reads the value of kv (its key already read) and checks its type. */
static owl_status rd_value(reader *r, owl_gguf_kv *kv)
{
    uint32_t t;
    owl_status s = rd_u32(r, &t, "value type");
    if (s)
        return s;
    if (t > OWL_GGUF_FLOAT64)
        return owl_err_set(r->err, OWL_E_FORMAT, "%s: unknown value type %u", r->what, t);
    kv->type = (owl_gguf_vtype)t;
    kv->data = r->p + r->pos;
    if (t == OWL_GGUF_STRING)
        return rd_str(r, &kv->str, "string");
    if (t != OWL_GGUF_ARRAY) {
        size_t es = owl_gguf_vtype_size(t);
        if ((s = need(r, es, owl_gguf_vtype_name(t))))
            return s;
        r->pos += es;
        return OWL_OK;
    }
    uint32_t et;
    uint64_t n;
    if ((s = rd_u32(r, &et, "array element type")) || (s = rd_u64(r, &n, "array length")))
        return s;
    if (et == OWL_GGUF_ARRAY)
        return owl_err_set(r->err, OWL_E_UNSUPPORTED, "%s: nested arrays are not supported", r->what);
    if (et > OWL_GGUF_FLOAT64)
        return owl_err_set(r->err, OWL_E_FORMAT, "%s: unknown array element type %u", r->what, et);
    kv->arr_type = (owl_gguf_vtype)et;
    kv->data = r->p + r->pos;
    /* each element takes at least 8 bytes (string) or its size */
    size_t es = et == OWL_GGUF_STRING ? 8 : owl_gguf_vtype_size(et);
    if (n > left(r) / es) {
        /* n * es may overflow 64 bits (2^61 elements of 8 bytes): say so */
        if (n > UINT64_MAX / es)
            return owl_err_set(r->err, OWL_E_TRUNCATED, "%s: array of %llu %s needs more than 2^64 bytes, %zu left",
                               r->what, (ull)n, owl_gguf_vtype_name(et), left(r));
        return owl_err_set(r->err, OWL_E_TRUNCATED,
                           "%s: array of %llu %s needs at least %llu bytes, %zu left", r->what,
                           (ull)n, owl_gguf_vtype_name(et), (ull)n * es, left(r));
    }
    kv->arr_n = n;
    if (et != OWL_GGUF_STRING) {
        r->pos += (size_t)n * es;
        return OWL_OK;
    }
    if (n == 0)
        return OWL_OK;
    kv->arr_strs = malloc((size_t)n * sizeof *kv->arr_strs); /* n <= left / 8: fits */
    if (!kv->arr_strs)
        return owl_err_set(r->err, OWL_E_NOMEM, "%s: no memory for %llu strings", r->what, (ull)n);
    for (uint64_t i = 0; i < n; i++) {
        owl_gguf_str e;
        kv->arr_strs[i] = r->p + r->pos;
        if ((s = rd_str(r, &e, "array string")))
            return s;
    }
    return OWL_OK;
}

static owl_status check_alignment(reader *r, const owl_gguf_kv *kv, uint32_t *alignment)
{
    if (kv->type != OWL_GGUF_UINT32)
        return owl_err_set(r->err, OWL_E_FORMAT, "general.alignment: want u32, got %s",
                           owl_gguf_vtype_name(kv->type));
    uint32_t a = get_le32(kv->data);
    if (!is_pow2(a))
        return owl_err_set(r->err, OWL_E_FORMAT, "general.alignment: %u is not a power of two", a);
    *alignment = a;
    return OWL_OK;
}

static owl_status rd_kvs(reader *r, owl_gguf *g)
{
    owl_status s;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        owl_gguf_kv *kv = &g->kv[i];
        snprintf(r->what, sizeof r->what, "kv %llu", (ull)i);
        if ((s = rd_str(r, &kv->key, "key")))
            return s;
        snprintf(r->what, sizeof r->what, "key '%s'", show(kv->key).s);
        g->kv_sorted[i] = (owl_gguf_name_ref){kv->key, (size_t)i};
        if ((s = rd_value(r, kv)))
            return s;
        if (owl_gguf_str_eq(kv->key, "general.alignment") && (s = check_alignment(r, kv, &g->alignment)))
            return s;
    }
    return OWL_OK;
}

/* Reads tensor info t and checks shape, type and byte size; offsets later. */
static owl_status rd_tensor(reader *r, owl_gguf *g, uint64_t i, owl_gguf_tensor *t)
{
    owl_status s;
    snprintf(r->what, sizeof r->what, "tensor %llu", (ull)i);
    if ((s = rd_str(r, &t->name, "name")))
        return s;
    snprintf(r->what, sizeof r->what, "tensor '%s'", show(t->name).s);
    g->tensor_sorted[i] = (owl_gguf_name_ref){t->name, (size_t)i};
    uint32_t n_dims, type;
    if ((s = rd_u32(r, &n_dims, "n_dims")))
        return s;
    if (n_dims < 1 || n_dims > OWL_GGUF_MAX_DIMS)
        return owl_err_set(r->err, OWL_E_FORMAT, "%s: n_dims %u not in 1..%d", r->what, n_dims,
                           OWL_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    uint64_t nel = 1;
    for (int d = 0; d < OWL_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (s = rd_u64(r, &ne, "dim")))
            return s;
        if (ne == 0 || ne > (uint64_t)INT64_MAX / nel)
            return owl_err_set(r->err, OWL_E_FORMAT, "%s: dim %d = %llu %s", r->what, d, (ull)ne,
                               ne == 0 ? "is zero" : "overflows the element count");
        nel *= ne;
        t->ne[d] = (int64_t)ne;
    }
    if ((s = rd_u32(r, &type, "type")) || (s = rd_u64(r, &t->offset, "offset")))
        return s;
    const owl_type_traits *tr = type < OWL_TYPE_COUNT ? owl_type_get((int)type) : NULL;
    if (!tr)
        return owl_err_set(r->err, OWL_E_UNSUPPORTED, "%s: tensor type %u not supported", r->what, type);
    t->type = (owl_type)type;
    uint64_t bs = (uint64_t)tr->blck_size;
    if ((uint64_t)t->ne[0] % bs)
        return owl_err_set(r->err, OWL_E_FORMAT, "%s: row length %lld not a multiple of %s block size %llu",
                           r->what, (long long)t->ne[0], tr->name, (ull)bs);
    uint64_t blocks = nel / bs; /* ne[0] % bs == 0, so exact */
    if (blocks > (uint64_t)INT64_MAX / tr->type_size)
        return owl_err_set(r->err, OWL_E_FORMAT, "%s: byte size of %llu %s blocks overflows", r->what,
                           (ull)blocks, tr->name);
    uint64_t bytes = blocks * tr->type_size;
    if (bytes > SIZE_MAX)
        return owl_err_set(r->err, OWL_E_LIMIT, "%s: %llu bytes exceed this platform's size_t", r->what,
                           (ull)bytes);
    t->size = (size_t)bytes;
    if (t->offset % g->alignment)
        return owl_err_set(r->err, OWL_E_FORMAT, "%s: offset %llu not aligned to %u", r->what,
                           (ull)t->offset, g->alignment);
    return OWL_OK;
}

typedef struct {
    uint64_t off, end;
    size_t i;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Places the data section and checks every tensor range lies in it, no overlap. */
static owl_status place_tensors(reader *r, owl_gguf *g, int header_only, uint64_t file_size)
{
    uint64_t data_offset, total = header_only ? file_size : r->size;
    if (!pad_to(r->pos, g->alignment, &data_offset) || data_offset > SIZE_MAX)
        return owl_err_set(r->err, OWL_E_FORMAT, "data section offset overflows");
    g->data_offset = (size_t)data_offset;
    if (g->n_tensors == 0)
        return OWL_OK;
    if (data_offset > total)
        return owl_err_set(r->err, OWL_E_TRUNCATED, "data section starts at %llu, past the end of the %llu-byte file",
                           (ull)data_offset, (ull)total);
    uint64_t avail = total - data_offset, max_end = 0;
    span *sp = malloc((size_t)g->n_tensors * sizeof *sp); /* n_tensors <= 2^20 */
    if (!sp)
        return owl_err_set(r->err, OWL_E_NOMEM, "no memory for %llu tensor spans", (ull)g->n_tensors);
    owl_status s = OWL_OK;
    for (size_t i = 0; i < g->n_tensors; i++) {
        owl_gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->size > avail - t->offset) {
            s = owl_err_set(r->err, OWL_E_TRUNCATED, "tensor '%s': data [%llu, +%zu) runs past the %llu-byte data section",
                            show(t->name).s, (ull)t->offset, t->size, (ull)avail);
            goto done;
        }
        sp[i] = (span){t->offset, t->offset + t->size, i};
        if (sp[i].end > max_end)
            max_end = sp[i].end;
        t->data = header_only ? NULL : r->p + data_offset + t->offset;
    }
    qsort(sp, (size_t)g->n_tensors, sizeof *sp, span_cmp);
    for (size_t k = 1; k < g->n_tensors; k++)
        if (sp[k].off < sp[k - 1].end) {
            const owl_gguf_tensor *a = &g->tensors[sp[k - 1].i], *b = &g->tensors[sp[k].i];
            s = owl_err_set(r->err, OWL_E_FORMAT, "tensor '%s' at %llu overlaps tensor '%s' [%llu, %llu)",
                            show(b->name).s, (ull)b->offset, show(a->name).s, (ull)a->offset,
                            (ull)sp[k - 1].end);
            goto done;
        }
    /* a whole file in memory must be addressable; a header alone may describe a file larger
     * than the address space (a 5 GB 7B split into stages, each loading only its own range) */
    if (!header_only && max_end > SIZE_MAX - data_offset) {
        s = owl_err_set(r->err, OWL_E_LIMIT, "data section of %llu bytes exceeds this platform's size_t",
                        (ull)max_end);
        goto done;
    }
    g->data_size = max_end;
done:
    free(sp);
    return s;
}

static owl_status parse(reader *r, owl_gguf *g, int header_only, uint64_t file_size)
{
    owl_status s;
    uint32_t magic;
    snprintf(r->what, sizeof r->what, "header");
    if ((s = rd_u32(r, &magic, "magic")))
        return s;
    if (memcmp(r->p, "GGUF", 4) != 0)
        return owl_err_set(r->err, OWL_E_FORMAT, "bad magic 0x%08x (want \"GGUF\")", magic);
    if ((s = rd_u32(r, &g->version, "version")))
        return s;
    if (g->version != 3 && g->version != 2)
        return owl_err_set(r->err, OWL_E_UNSUPPORTED, "GGUF version %u not supported (want 3 or 2%s)",
                           g->version, (g->version & 0xffff) ? "" : "; big-endian file?");
    uint64_t n_tensors, n_kv;
    if ((s = rd_u64(r, &n_tensors, "n_tensors")) || (s = rd_u64(r, &n_kv, "n_kv")))
        return s;
    if (n_kv > OWL_GGUF_MAX_KV || n_tensors > OWL_GGUF_MAX_TENSORS)
        return owl_err_set(r->err, OWL_E_LIMIT, "n_kv %llu / n_tensors %llu over the limit of %u",
                           (ull)n_kv, (ull)n_tensors, OWL_GGUF_MAX_KV);
    /* a kv takes >= 13 bytes (key length, type, a byte), a tensor info >= 32 */
    if (n_kv > left(r) / 13 || n_tensors > (left(r) - n_kv * 13) / 32)
        return owl_err_set(r->err, OWL_E_TRUNCATED, "n_kv %llu and n_tensors %llu cannot fit in the %zu bytes left",
                           (ull)n_kv, (ull)n_tensors, left(r));
    g->alignment = OWL_GGUF_DEFAULT_ALIGNMENT;
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    g->kv_sorted = malloc((n_kv ? (size_t)n_kv : 1) * sizeof *g->kv_sorted);
    g->tensor_sorted = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *g->tensor_sorted);
    if (!g->kv || !g->tensors || !g->kv_sorted || !g->tensor_sorted)
        return owl_err_set(r->err, OWL_E_NOMEM, "no memory for %llu kvs, %llu tensors", (ull)n_kv,
                           (ull)n_tensors);
    g->n_kv = n_kv; /* set once the arrays exist, for owl_gguf_free */
    g->n_tensors = n_tensors;
    size_t a, b;
    if ((s = rd_kvs(r, g)))
        return s;
    if (sort_names(g->kv_sorted, (size_t)n_kv, &a, &b))
        return owl_err_set(r->err, OWL_E_FORMAT, "key '%s': duplicate key (kv %zu and %zu)",
                           show(g->kv[a].key).s, a, b);
    for (uint64_t i = 0; i < n_tensors; i++)
        if ((s = rd_tensor(r, g, i, &g->tensors[i])))
            return s;
    if (sort_names(g->tensor_sorted, (size_t)n_tensors, &a, &b))
        return owl_err_set(r->err, OWL_E_FORMAT, "tensor '%s': duplicate tensor name (tensors %zu and %zu)",
                           show(g->tensors[a].name).s, a, b);
    return place_tensors(r, g, header_only, file_size);
}

owl_status owl_gguf_parse(const void *data, size_t size, int header_only, uint64_t file_size,
                          owl_gguf *out, owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "owl_gguf_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size)
        return owl_err_set(err, OWL_E_INVALID, "owl_gguf_parse: data is NULL");
    reader r = {data, size, 0, err, {0}};
    owl_gguf g = {0};
    owl_status s = parse(&r, &g, header_only, file_size);
    if (s) {
        owl_gguf_free(&g);
        return s;
    }
    *out = g;
    return OWL_OK;
}

void owl_gguf_free(owl_gguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++)
            free(g->kv[i].arr_strs);
    free(g->kv);
    free(g->tensors);
    free(g->kv_sorted);
    free(g->tensor_sorted);
    memset(g, 0, sizeof *g);
}

// ---------------------------------------------------------------- lookups and getters

const owl_gguf_kv *owl_gguf_find_kv(const owl_gguf *g, const char *key)
{
    const owl_gguf_name_ref *r = g && key ? lookup(g->kv_sorted, g->n_kv, key) : NULL;
    return r ? &g->kv[r->index] : NULL;
}

const owl_gguf_tensor *owl_gguf_find_tensor(const owl_gguf *g, const char *name)
{
    const owl_gguf_name_ref *r = g && name ? lookup(g->tensor_sorted, g->n_tensors, name) : NULL;
    return r ? &g->tensors[r->index] : NULL;
}

static owl_status find(const owl_gguf *g, const char *key, const owl_gguf_kv **kv, owl_err *err)
{
    *kv = owl_gguf_find_kv(g, key);
    if (!*kv)
        return owl_err_set(err, OWL_E_NOTFOUND, "key '%s' not found", key ? key : "(null)");
    return OWL_OK;
}

static owl_status mismatch(const char *key, const char *want, const owl_gguf_kv *kv, owl_err *err)
{
    if (kv->type == OWL_GGUF_ARRAY)
        return owl_err_set(err, OWL_E_FORMAT, "key '%s': want %s, got array of %s", key, want,
                           owl_gguf_vtype_name(kv->arr_type));
    return owl_err_set(err, OWL_E_FORMAT, "key '%s': want %s, got %s", key, want, owl_gguf_vtype_name(kv->type));
}

/* Integer value of kv: *neg set when negative; *mag its magnitude. 0 if not an integer. */
static int int_value(const owl_gguf_kv *kv, int *neg, uint64_t *mag)
{
    const uint8_t *p = kv->data;
    int64_t sv;
    switch (kv->type) {
    case OWL_GGUF_UINT8: *neg = 0; *mag = p[0]; return 1;
    case OWL_GGUF_UINT16: *neg = 0; *mag = (uint64_t)p[0] | (uint64_t)p[1] << 8; return 1;
    case OWL_GGUF_UINT32: *neg = 0; *mag = get_le32(p); return 1;
    case OWL_GGUF_UINT64: *neg = 0; *mag = get_le64(p); return 1;
    case OWL_GGUF_INT8: sv = (int8_t)p[0]; break;
    case OWL_GGUF_INT16: sv = (int16_t)(uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8); break;
    case OWL_GGUF_INT32: sv = (int32_t)get_le32(p); break;
    case OWL_GGUF_INT64: sv = (int64_t)get_le64(p); break;
    default: return 0;
    }
    *neg = sv < 0;
    *mag = sv < 0 ? (uint64_t)0 - (uint64_t)sv : (uint64_t)sv;
    return 1;
}

owl_status owl_gguf_get_u32(const owl_gguf *g, const char *key, uint32_t *v, owl_err *err)
{
    const owl_gguf_kv *kv;
    owl_status s = find(g, key, &kv, err);
    int neg;
    uint64_t mag;
    if (s)
        return s;
    if (!int_value(kv, &neg, &mag))
        return mismatch(key, "an integer (u32)", kv, err);
    if (neg || mag > UINT32_MAX)
        return owl_err_set(err, OWL_E_FORMAT, "key '%s': value %s%llu does not fit u32", key,
                           neg ? "-" : "", (ull)mag);
    *v = (uint32_t)mag;
    return OWL_OK;
}

owl_status owl_gguf_get_i64(const owl_gguf *g, const char *key, int64_t *v, owl_err *err)
{
    const owl_gguf_kv *kv;
    owl_status s = find(g, key, &kv, err);
    int neg;
    uint64_t mag;
    if (s)
        return s;
    if (!int_value(kv, &neg, &mag))
        return mismatch(key, "an integer (i64)", kv, err);
    if (!neg && mag > (uint64_t)INT64_MAX)
        return owl_err_set(err, OWL_E_FORMAT, "key '%s': value %llu does not fit i64", key, (ull)mag);
    *v = neg ? (mag == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return OWL_OK;
}

owl_status owl_gguf_get_f32(const owl_gguf *g, const char *key, float *v, owl_err *err)
{
    const owl_gguf_kv *kv;
    owl_status s = find(g, key, &kv, err);
    if (s)
        return s;
    if (kv->type == OWL_GGUF_FLOAT32) {
        memcpy(v, kv->data, 4);
    } else if (kv->type == OWL_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        *v = (float)d;
    } else {
        return mismatch(key, "f32", kv, err);
    }
    return OWL_OK;
}

owl_status owl_gguf_get_bool(const owl_gguf *g, const char *key, int *v, owl_err *err)
{
    const owl_gguf_kv *kv;
    owl_status s = find(g, key, &kv, err);
    if (s)
        return s;
    if (kv->type != OWL_GGUF_BOOL)
        return mismatch(key, "bool", kv, err);
    *v = kv->data[0] != 0;
    return OWL_OK;
}

owl_status owl_gguf_get_str(const owl_gguf *g, const char *key, owl_gguf_str *v, owl_err *err)
{
    const owl_gguf_kv *kv;
    owl_status s = find(g, key, &kv, err);
    if (s)
        return s;
    if (kv->type != OWL_GGUF_STRING)
        return mismatch(key, "str", kv, err);
    *v = kv->str;
    return OWL_OK;
}

owl_status owl_gguf_get_arr(const owl_gguf *g, const char *key, owl_gguf_vtype elem,
                            const void **data, uint64_t *n, owl_err *err)
{
    const owl_gguf_kv *kv;
    owl_status s = find(g, key, &kv, err);
    if (s)
        return s;
    if (kv->type != OWL_GGUF_ARRAY || kv->arr_type != elem) {
        char want[32];
        snprintf(want, sizeof want, "array of %s", owl_gguf_vtype_name(elem));
        return mismatch(key, want, kv, err);
    }
    *data = kv->data;
    *n = kv->arr_n;
    return OWL_OK;
}

owl_gguf_str owl_gguf_arr_str(const owl_gguf_kv *kv, uint64_t i)
{
    owl_gguf_str r = {0, ""};
    if (!kv || kv->type != OWL_GGUF_ARRAY || kv->arr_type != OWL_GGUF_STRING || i >= kv->arr_n ||
        !kv->arr_strs)
        return r;
    r.len = get_le64(kv->arr_strs[i]);
    r.data = (const char *)kv->arr_strs[i] + 8;
    return r;
}
