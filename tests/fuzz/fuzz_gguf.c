/* fuzz_gguf.c - libFuzzer target for owl_gguf_parse (src/core/gguf.c).
 *
 * Each input is parsed three ways: whole file; header_only with file_size =
 * the input size (must succeed when the full parse does, with the same
 * layout); header_only with file_size = UINT64_MAX (every range check then
 * depends on overflow-safe maths alone). On success every KV is read
 * (scalars, strings, numeric arrays, each string-array element through
 * owl_gguf_arr_str), looked up again by key with every typed getter, and every
 * tensor's bytes are read and checked to lie inside the input. A parse that
 * succeeds also feeds owl_tokenizer_init_gguf (GGUF metadata is where the
 * engine's vocabulary comes from). */
#include <stdint.h>
#include <string.h>

#include "../../src/core/gguf.h"
#include "../../src/text/tokenizer.h"
#include "fuzz_util.h"

static size_t vtype_size(owl_gguf_vtype t)
{
    switch (t) {
    case OWL_GGUF_UINT8: case OWL_GGUF_INT8: case OWL_GGUF_BOOL: return 1;
    case OWL_GGUF_UINT16: case OWL_GGUF_INT16: return 2;
    case OWL_GGUF_UINT32: case OWL_GGUF_INT32: case OWL_GGUF_FLOAT32: return 4;
    case OWL_GGUF_UINT64: case OWL_GGUF_INT64: case OWL_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int inside(const uint8_t *buf, size_t size, const void *p, uint64_t n)
{
    const uint8_t *q = (const uint8_t *)p;
    return q >= buf && (size_t)(q - buf) <= size && n <= size - (size_t)(q - buf);
}

static void walk_kv(const owl_gguf *g, const owl_gguf_kv *kv, const uint8_t *buf, size_t size)
{
    owl_fuzz_touch(kv->key.data, kv->key.len);
    if (kv->type == OWL_GGUF_STRING) {
        OWL_FUZZ_CHECK(inside(buf, size, kv->str.data, kv->str.len));
        owl_fuzz_touch(kv->str.data, kv->str.len);
    } else if (kv->type == OWL_GGUF_ARRAY) {
        if (kv->arr_type == OWL_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                owl_gguf_str s = owl_gguf_arr_str(kv, i);
                OWL_FUZZ_CHECK(inside(buf, size, s.data, s.len));
                owl_fuzz_touch(s.data, s.len);
            }
        } else {
            size_t es = vtype_size(kv->arr_type);
            OWL_FUZZ_CHECK(es != 0);
            OWL_FUZZ_CHECK(kv->arr_n <= size / es);
            OWL_FUZZ_CHECK(inside(buf, size, kv->data, kv->arr_n * es));
            owl_fuzz_touch(kv->data, kv->arr_n * es);
        }
    } else {
        size_t es = vtype_size(kv->type);
        OWL_FUZZ_CHECK(es != 0);
        OWL_FUZZ_CHECK(inside(buf, size, kv->data, es));
        owl_fuzz_touch(kv->data, es);
    }
    /* look the key up again and try every getter (type mismatches must be errors) */
    char key[256];
    if (kv->key.len >= sizeof key || memchr(kv->key.data, 0, kv->key.len))
        return;
    memcpy(key, kv->key.data, kv->key.len);
    key[kv->key.len] = 0;
    OWL_FUZZ_CHECK(owl_gguf_find_kv(g, key) == kv);
    owl_err err;
    uint32_t u32;
    int64_t i64;
    float f32;
    int b;
    owl_gguf_str s;
    const void *arr;
    uint64_t n;
    (void)owl_gguf_get_u32(g, key, &u32, &err);
    (void)owl_gguf_get_i64(g, key, &i64, &err);
    (void)owl_gguf_get_f32(g, key, &f32, &err);
    (void)owl_gguf_get_bool(g, key, &b, &err);
    if (owl_gguf_get_str(g, key, &s, &err) == OWL_OK)
        owl_fuzz_touch(s.data, s.len);
    for (int t = OWL_GGUF_UINT8; t <= OWL_GGUF_FLOAT64; t++)
        if (owl_gguf_get_arr(g, key, (owl_gguf_vtype)t, &arr, &n, &err) == OWL_OK && vtype_size((owl_gguf_vtype)t))
            owl_fuzz_touch(arr, n * vtype_size((owl_gguf_vtype)t));
}

static void walk(const owl_gguf *g, const uint8_t *buf, size_t size, int header_only, uint64_t file_size)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        walk_kv(g, &g->kv[i], buf, size);
    /* with no tensors the parser lets the (padded) data section start past the end */
    OWL_FUZZ_CHECK(g->n_tensors == 0 || g->data_offset <= (header_only ? file_size : size));
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const owl_gguf_tensor *t = &g->tensors[i];
        OWL_FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= OWL_GGUF_MAX_DIMS);
        OWL_FUZZ_CHECK(t->offset <= UINT64_MAX - t->size);
        if (header_only) {
            OWL_FUZZ_CHECK(t->data == NULL);
            OWL_FUZZ_CHECK(t->offset + t->size <= file_size - g->data_offset);
        } else {
            OWL_FUZZ_CHECK(inside(buf, size, t->data, t->size));
            OWL_FUZZ_CHECK((const uint8_t *)t->data == buf + g->data_offset + t->offset);
            owl_fuzz_touch(t->data, t->size);
        }
        char name[256];
        if (t->name.len < sizeof name && !memchr(t->name.data, 0, t->name.len)) {
            memcpy(name, t->name.data, t->name.len);
            name[t->name.len] = 0;
            OWL_FUZZ_CHECK(owl_gguf_find_tensor(g, name) == t);
        }
    }
    (void)owl_gguf_find_kv(g, "general.architecture");
    (void)owl_gguf_find_tensor(g, "token_embd.weight");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    owl_gguf full, g;
    owl_err err;
    int full_ok = owl_gguf_parse(data, size, 0, 0, &full, &err) == OWL_OK;
    if (full_ok) {
        walk(&full, data, size, 0, size);
        owl_tokenizer *tok = NULL;
        if (owl_tokenizer_init_gguf(&tok, &full, &err) == OWL_OK) {
            int32_t *ids = NULL;
            size_t n_ids = 0;
            owl_encode_opts eo = {1, 1, 0};
            if (owl_tokenizer_encode(tok, "Hello <s> world\xff", 16, &eo, &ids, &n_ids, &err) == OWL_OK) {
                char *text = NULL;
                size_t len = 0;
                if (owl_tokenizer_decode(tok, ids, n_ids, &text, &len, &err) == OWL_OK)
                    owl_fuzz_touch(text, len + 1);
                free(text);
            }
            free(ids);
            owl_tokenizer_free(tok);
        }
    }
    /* header_only over the whole file must agree with the full parse */
    owl_gguf h;
    owl_status hst = owl_gguf_parse(data, size, 1, size, &h, &err);
    if (hst == OWL_OK)
        walk(&h, data, size, 1, size);
    if (full_ok) {
        OWL_FUZZ_CHECK(hst == OWL_OK);
        OWL_FUZZ_CHECK(h.n_kv == full.n_kv && h.n_tensors == full.n_tensors &&
                       h.data_offset == full.data_offset && h.alignment == full.alignment);
        for (uint64_t i = 0; i < h.n_tensors; i++)
            OWL_FUZZ_CHECK(h.tensors[i].offset == full.tensors[i].offset &&
                           h.tensors[i].size == full.tensors[i].size && h.tensors[i].type == full.tensors[i].type);
        owl_gguf_free(&full);
    }
    if (hst == OWL_OK)
        owl_gguf_free(&h);
    if (owl_gguf_parse(data, size, 1, UINT64_MAX, &g, &err) == OWL_OK) {
        walk(&g, data, size, 1, UINT64_MAX);
        owl_gguf_free(&g);
    }
    return 0;
}
