/* gguf.c - GGUF v3 reader (zero-copy, validating) and streaming writer (see gguf.h).
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

static const char *vtype_name(uint32_t t)
{
    static const char *names[] = {"u8", "i8",  "u16", "i16", "u32", "i32", "f32",
                                  "bool", "str", "arr", "u64", "i64", "f64"};
    return t <= OWL_GGUF_FLOAT64 ? names[t] : "?";
}

/* Bytes of a fixed-size value type; 0 for STRING, ARRAY and unknown types. */
static size_t vtype_size(uint32_t t)
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
        size_t es = vtype_size(t);
        if ((s = need(r, es, vtype_name(t))))
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
    size_t es = et == OWL_GGUF_STRING ? 8 : vtype_size(et);
    if (n > left(r) / es)
        return owl_err_set(r->err, OWL_E_TRUNCATED,
                           "%s: array of %llu %s needs at least %llu bytes, %zu left", r->what,
                           (ull)n, vtype_name(et), (ull)n * es, left(r));
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
                           vtype_name(kv->type));
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
    if (max_end > SIZE_MAX - data_offset) {
        s = owl_err_set(r->err, OWL_E_LIMIT, "data section of %llu bytes exceeds this platform's size_t",
                        (ull)max_end);
        goto done;
    }
    g->data_size = (size_t)max_end;
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
                           vtype_name(kv->arr_type));
    return owl_err_set(err, OWL_E_FORMAT, "key '%s': want %s, got %s", key, want, vtype_name(kv->type));
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
        snprintf(want, sizeof want, "array of %s", vtype_name(elem));
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

// ---------------------------------------------------------------- writer

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
    size_t es = type == OWL_GGUF_ARRAY ? vtype_size(elem) : vtype_size(type);
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
            return werr(w, NULL, OWL_E_INVALID, "general.alignment: want u32, got %s", vtype_name(type));
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
