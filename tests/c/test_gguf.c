/* test_gguf.c - GGUF reader/writer: round trips, zero-copy, every rejection,
 * truncation at every prefix, 10,000 random mutations, and the sample file the
 * JS test (tests/js/gguf.test.mjs) reads back with @huggingface/gguf. */
#include <stdlib.h>
#include <sys/stat.h>

#include "../../src/core/gguf.h"
#include "test.h"

// ---------------------------------------------------------------- helpers

typedef struct {
    uint8_t *p;
    size_t len, cap;
    size_t fail_at; /* sink fails once len would pass this (0 = never) */
} sink;

static int sink_write(void *user, const void *data, size_t n)
{
    sink *s = user;
    if (s->fail_at && s->len + n > s->fail_at)
        return 1;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + n)
            cap *= 2;
        uint8_t *q = realloc(s->p, cap);
        if (!q)
            return 1;
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    return 0;
}

static uint8_t pattern(size_t tensor, size_t i) { return (uint8_t)(i * 31 + tensor * 7 + 1); }

/* Writes header and every tensor (bytes from pattern()); returns the file. */
static uint8_t *write_all(owl_gguf_writer *w, size_t *len)
{
    sink s = {0};
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, sink_write, &s, &err), OWL_OK);
    for (uint64_t i = 0;; i++) {
        size_t n = (size_t)owl_gguf_writer_tensor_size(w, i);
        if (!n)
            break;
        uint8_t *d = malloc(n);
        for (size_t k = 0; k < n; k++)
            d[k] = pattern((size_t)i, k);
        CHECK_EQ_INT(owl_gguf_writer_write_tensor_data(w, d, n, sink_write, &s, &err), OWL_OK);
        free(d);
    }
    CHECK_EQ_INT(s.len, owl_gguf_writer_file_size(w));
    *len = s.len;
    return s.p;
}

typedef struct {
    const char *name;
    owl_type type;
    int n_dims;
    int64_t ne[4];
} tdesc;

static const tdesc sample_tensors[] = {
    {"v.class_embd", OWL_TYPE_F32, 1, {7}},
    {"blk.0.attn_norm.weight", OWL_TYPE_F32, 2, {3, 5}},
    {"blk.0.attn_q.weight", OWL_TYPE_F16, 3, {1, 2, 3}},
    {"blk.0.ffn_up.weight", OWL_TYPE_Q8_0, 2, {64, 3}},
    {"blk.0.ffn_gate.weight", OWL_TYPE_Q8_0, 1, {32}},
    {"blk.0.attn_k.weight", OWL_TYPE_Q4_0, 3, {32, 1, 2}},
    {"blk.0.attn_v.weight", OWL_TYPE_Q4_0, 2, {96, 5}},
    {"blk.0.ffn_down.weight", OWL_TYPE_Q4_K, 2, {256, 3}},
    {"token_embd.weight", OWL_TYPE_Q4_K, 1, {512}},
    {"output.weight", OWL_TYPE_Q6_K, 4, {256, 2, 1, 2}},
    {"a.query_embd", OWL_TYPE_Q6_K, 2, {512, 1}},
};
#define N_SAMPLE_TENSORS (sizeof sample_tensors / sizeof sample_tensors[0])

static const char *sample_tokens[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "<0x0A>", "", "x"};

/* A valid file with a few KVs of several kinds and all sample tensors. */
static uint8_t *small_file(size_t *len, int n_tensors)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    float mean[3] = {0.48f, 0.45f, 0.40f};
    owl_gguf_writer_set_str(w, "general.architecture", "mplug-owl2");
    owl_gguf_writer_set_u32(w, "general.alignment", 32);
    owl_gguf_writer_set_u32(w, "llama.block_count", 2);
    owl_gguf_writer_set_arr(w, "image.mean", OWL_GGUF_FLOAT32, mean, 3);
    owl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", sample_tokens, 7);
    owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    for (int i = 0; i < n_tensors; i++)
        CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, sample_tensors[i].name, sample_tensors[i].type,
                                                sample_tensors[i].n_dims, sample_tensors[i].ne),
                     OWL_OK);
    uint8_t *p = write_all(w, len);
    owl_gguf_writer_free(w);
    return p;
}

/* Parses a private exact-size copy (so ASan sees any overread). */
static owl_status parse_copy(const uint8_t *p, size_t len, owl_gguf *g, owl_err *err)
{
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, p, len);
    owl_status s = owl_gguf_parse(c, len, 0, 0, g, err);
    if (s == OWL_OK)
        owl_gguf_free(g); /* pointers into c die with it */
    free(c);
    return s;
}

/* Position just after string s (with its u64 length) in the file, or 0. */
static size_t after(const uint8_t *p, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 8; i + n <= len; i++)
        if (memcmp(p + i, s, n) == 0 && p[i - 8] == n && !memcmp(p + i - 7, "\0\0\0\0\0\0\0", 7))
            return i + n;
    return 0;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Parses p with one field patched; returns status, message in err. */
static owl_status patched(const uint8_t *p, size_t len, size_t at, uint64_t v, int bytes, owl_err *err)
{
    uint8_t *c = malloc(len);
    memcpy(c, p, len);
    put_le(c + at, v, bytes);
    owl_gguf g;
    memset(&g, 0xAB, sizeof g);
    owl_status s = owl_gguf_parse(c, len, 0, 0, &g, err);
    if (s == OWL_OK)
        owl_gguf_free(&g);
    else
        CHECK(g.kv == NULL && g.tensors == NULL && g.n_kv == 0 && g.n_tensors == 0);
    free(c);
    return s;
}

#define CHECK_MSG_HAS(err, sub) CHECK_MSG(strstr((err).msg, sub), "message '%s' lacks '%s'", (err).msg, sub)

// ---------------------------------------------------------------- round trips

TEST(gguf_round_trip_all_kv_types)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    uint8_t u8 = 200, b = 1;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -1234567890123ll;
    double f64 = 3.141592653589793;
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.u8", OWL_GGUF_UINT8, &u8), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.i8", OWL_GGUF_INT8, &i8), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.u16", OWL_GGUF_UINT16, &u16), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.i16", OWL_GGUF_INT16, &i16), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "t.u32", 4000000000u), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_i32(w, "t.i32", -2000000000), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_f32(w, "t.f32", 1e-6f), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.bool", OWL_GGUF_BOOL, &b), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_str(w, "t.str", "h\xc3\xa9llo"), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_str(w, "t.empty", ""), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_u64(w, "t.u64", UINT64_MAX), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.i64", OWL_GGUF_INT64, &i64), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "t.f64", OWL_GGUF_FLOAT64, &f64), OWL_OK);
    /* one array per numeric element type, 3 elements of 8 bytes of storage */
    uint64_t raw[3] = {0x0102030405060708ull, 0xfffefdfcfbfaf9f8ull, 0x1122334455667788ull};
    static const owl_gguf_vtype elems[] = {OWL_GGUF_UINT8, OWL_GGUF_INT8, OWL_GGUF_UINT16, OWL_GGUF_INT16,
                                           OWL_GGUF_UINT32, OWL_GGUF_INT32, OWL_GGUF_FLOAT32, OWL_GGUF_BOOL,
                                           OWL_GGUF_UINT64, OWL_GGUF_INT64, OWL_GGUF_FLOAT64};
    static const size_t esz[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    char key[32];
    for (int e = 0; e < 11; e++) {
        snprintf(key, sizeof key, "arr.%d", (int)elems[e]);
        uint8_t bools[3] = {0, 1, 1};
        CHECK_EQ_INT(owl_gguf_writer_set_arr(w, key, elems[e], elems[e] == OWL_GGUF_BOOL ? (void *)bools : (void *)raw, 3), OWL_OK);
    }
    CHECK_EQ_INT(owl_gguf_writer_set_arr(w, "arr.empty", OWL_GGUF_UINT32, NULL, 0), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_arr_str(w, "arr.str", sample_tokens, 7), OWL_OK);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf_writer_free(w);

    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.version, 3);
    CHECK_EQ_INT(g.n_kv, 13 + 11 + 2);
    CHECK_EQ_INT(g.n_tensors, 0);
    CHECK_EQ_INT(g.alignment, 32);
    uint32_t u;
    int64_t i;
    float f;
    int bo;
    owl_gguf_str s;
    CHECK(owl_gguf_get_u32(&g, "t.u8", &u, &err) == OWL_OK && u == 200);
    CHECK(owl_gguf_get_i64(&g, "t.i8", &i, &err) == OWL_OK && i == -100);
    CHECK(owl_gguf_get_u32(&g, "t.u16", &u, &err) == OWL_OK && u == 60000);
    CHECK(owl_gguf_get_i64(&g, "t.i16", &i, &err) == OWL_OK && i == -30000);
    CHECK(owl_gguf_get_u32(&g, "t.u32", &u, &err) == OWL_OK && u == 4000000000u);
    CHECK(owl_gguf_get_i64(&g, "t.i32", &i, &err) == OWL_OK && i == -2000000000);
    CHECK(owl_gguf_get_f32(&g, "t.f32", &f, &err) == OWL_OK && f == 1e-6f);
    CHECK(owl_gguf_get_bool(&g, "t.bool", &bo, &err) == OWL_OK && bo == 1);
    CHECK(owl_gguf_get_str(&g, "t.str", &s, &err) == OWL_OK && owl_gguf_str_eq(s, "h\xc3\xa9llo"));
    CHECK(owl_gguf_get_str(&g, "t.empty", &s, &err) == OWL_OK && s.len == 0);
    const owl_gguf_kv *kv = owl_gguf_find_kv(&g, "t.u64");
    uint64_t u64v;
    CHECK(kv && kv->type == OWL_GGUF_UINT64);
    memcpy(&u64v, kv->data, 8);
    CHECK(u64v == UINT64_MAX);
    CHECK(owl_gguf_get_i64(&g, "t.i64", &i, &err) == OWL_OK && i == -1234567890123ll);
    kv = owl_gguf_find_kv(&g, "t.f64");
    double dv;
    memcpy(&dv, kv->data, 8);
    CHECK(kv->type == OWL_GGUF_FLOAT64 && dv == f64);
    CHECK(owl_gguf_get_f32(&g, "t.f64", &f, &err) == OWL_OK && f == (float)f64);
    for (int e = 0; e < 11; e++) {
        const void *d;
        uint64_t n;
        snprintf(key, sizeof key, "arr.%d", (int)elems[e]);
        CHECK_EQ_INT(owl_gguf_get_arr(&g, key, elems[e], &d, &n, &err), OWL_OK);
        CHECK_EQ_INT(n, 3);
        uint8_t bools[3] = {0, 1, 1};
        CHECK(memcmp(d, elems[e] == OWL_GGUF_BOOL ? (void *)bools : (void *)raw, 3 * esz[e]) == 0);
    }
    const void *d;
    uint64_t n;
    CHECK(owl_gguf_get_arr(&g, "arr.empty", OWL_GGUF_UINT32, &d, &n, &err) == OWL_OK && n == 0);
    kv = owl_gguf_find_kv(&g, "arr.str");
    CHECK(kv && kv->type == OWL_GGUF_ARRAY && kv->arr_type == OWL_GGUF_STRING && kv->arr_n == 7);
    for (int k = 0; k < 7; k++)
        CHECK(owl_gguf_str_eq(owl_gguf_arr_str(kv, (uint64_t)k), sample_tokens[k]));
    /* KVs keep the order they were added in */
    CHECK(owl_gguf_str_eq(g.kv[0].key, "t.u8") && owl_gguf_str_eq(g.kv[g.n_kv - 1].key, "arr.str"));
    owl_gguf_free(&g);
    free(p);
}

TEST(gguf_round_trip_tensors_of_each_type)
{
    size_t len;
    uint8_t *p = small_file(&len, (int)N_SAMPLE_TENSORS);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.n_tensors, N_SAMPLE_TENSORS);
    CHECK_EQ_INT(g.data_offset % 32, 0);
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const tdesc *td = &sample_tensors[i];
        const owl_gguf_tensor *t = owl_gguf_find_tensor(&g, td->name);
        CHECK(t == &g.tensors[i]);
        if (!t)
            continue;
        CHECK_EQ_INT(t->type, td->type);
        CHECK_EQ_INT(t->n_dims, td->n_dims);
        int64_t nel = 1;
        for (int dd = 0; dd < 4; dd++) {
            CHECK_EQ_INT(t->ne[dd], dd < td->n_dims ? td->ne[dd] : 1);
            nel *= t->ne[dd];
        }
        CHECK_EQ_INT(t->size, owl_row_size(td->type, t->ne[0]) * (size_t)(nel / t->ne[0]));
        CHECK_EQ_INT(t->offset % 32, 0);
        const uint8_t *b = t->data;
        int same = 1;
        for (size_t k = 0; k < t->size; k++)
            same &= b[k] == pattern(i, k);
        CHECK_MSG(same, "tensor %zu bytes differ", i);
    }
    CHECK(owl_gguf_find_tensor(&g, "nope") == NULL);
    CHECK(owl_gguf_find_tensor(&g, "blk.0.attn_q.weigh") == NULL);
    owl_gguf_free(&g);
    free(p);
}

TEST(gguf_tensor_data_is_zero_copy_at_writer_offsets)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++)
        owl_gguf_writer_add_tensor(w, sample_tensors[i].name, sample_tensors[i].type, sample_tensors[i].n_dims,
                                   sample_tensors[i].ne);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    for (size_t i = 0; i < g.n_tensors; i++) {
        CHECK(g.tensors[i].data == p + owl_gguf_writer_tensor_file_offset(w, i));
        CHECK(g.tensors[i].data == p + g.data_offset + g.tensors[i].offset);
    }
    const owl_gguf_tensor *last = &g.tensors[g.n_tensors - 1];
    CHECK_EQ_INT(g.data_size, last->offset + last->size);
    CHECK_EQ_INT(len, g.data_offset + (g.data_size + 31) / 32 * 32); /* last tensor padded too */
    owl_gguf_free(&g);
    owl_gguf_writer_free(w);
    free(p);
}

TEST(gguf_writer_honours_custom_alignment_set_after_tensors)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    int64_t ne[1] = {5};
    owl_gguf_writer_add_tensor(w, "a", OWL_TYPE_F32, 1, ne);
    owl_gguf_writer_add_tensor(w, "b", OWL_TYPE_F16, 1, ne);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "general.alignment", 256), OWL_OK);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.alignment, 256);
    CHECK_EQ_INT(g.data_offset % 256, 0);
    CHECK_EQ_INT(g.tensors[1].offset, 256);
    CHECK_EQ_INT(len, g.data_offset + 512);
    owl_gguf_free(&g);
    owl_gguf_writer_free(w);
    free(p);
}

TEST(gguf_getters_check_types_and_ranges)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl_gguf_writer_set_i32(w, "neg", -1);
    owl_gguf_writer_set_u64(w, "big", (uint64_t)1 << 40);
    owl_gguf_writer_set_u64(w, "huge", UINT64_MAX);
    owl_gguf_writer_set_f32(w, "f", 2.5f);
    owl_gguf_writer_set_str(w, "s", "abc");
    owl_gguf_writer_set_arr(w, "a", OWL_GGUF_INT32, (int32_t[]){1, 2}, 2);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf_writer_free(w);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    uint32_t u = 7;
    int64_t i;
    float f;
    int b;
    owl_gguf_str s;
    const void *d;
    uint64_t n;
    CHECK_EQ_INT(owl_gguf_get_u32(&g, "neg", &u, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "neg");
    CHECK_EQ_INT(u, 7);
    CHECK_EQ_INT(owl_gguf_get_u32(&g, "big", &u, &err), OWL_E_FORMAT);
    CHECK(owl_gguf_get_i64(&g, "big", &i, &err) == OWL_OK && i == (int64_t)1 << 40);
    CHECK(owl_gguf_get_i64(&g, "neg", &i, &err) == OWL_OK && i == -1);
    CHECK_EQ_INT(owl_gguf_get_i64(&g, "huge", &i, &err), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_gguf_get_u32(&g, "f", &u, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "got f32");
    CHECK_EQ_INT(owl_gguf_get_f32(&g, "s", &f, &err), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_gguf_get_bool(&g, "f", &b, &err), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_gguf_get_str(&g, "a", &s, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "array of i32");
    CHECK_EQ_INT(owl_gguf_get_arr(&g, "a", OWL_GGUF_UINT32, &d, &n, &err), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_gguf_get_arr(&g, "s", OWL_GGUF_STRING, &d, &n, &err), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_gguf_get_u32(&g, "missing", &u, &err), OWL_E_NOTFOUND);
    CHECK_MSG_HAS(err, "missing");
    CHECK_EQ_INT(owl_gguf_get_u32(&g, NULL, &u, NULL), OWL_E_NOTFOUND);
    CHECK(owl_gguf_arr_str(owl_gguf_find_kv(&g, "a"), 0).len == 0);
    owl_gguf_free(&g);
    owl_gguf_free(&g); /* second free of an emptied object is a no-op */
    owl_gguf_free(NULL);
    owl_gguf_writer_free(NULL);
    free(p);
}

TEST(gguf_string_array_of_32000_tokens_has_direct_access)
{
    enum { N = 32000 };
    char(*buf)[16] = malloc(N * sizeof *buf);
    const char **toks = malloc(N * sizeof *toks);
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "tok%d", i * 7);
        toks[i] = buf[i];
    }
    owl_gguf_writer *w = owl_gguf_writer_init();
    CHECK_EQ_INT(owl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N), OWL_OK);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf_writer_free(w);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    const owl_gguf_kv *kv = owl_gguf_find_kv(&g, "tokenizer.ggml.tokens");
    CHECK(kv && kv->arr_n == N && kv->arr_strs);
    int bad = 0;
    for (int r = 0; r < 4; r++) /* access in a scattered order, every entry 4 times */
        for (uint64_t i = 0; i < N; i++) {
            uint64_t k = (i * 7919 + (uint64_t)r) % N;
            bad += !owl_gguf_str_eq(owl_gguf_arr_str(kv, k), buf[k]);
        }
    CHECK_EQ_INT(bad, 0);
    CHECK(owl_gguf_arr_str(kv, N).len == 0 && owl_gguf_arr_str(NULL, 0).len == 0);
    owl_gguf_free(&g);
    free(p);
    free(buf);
    free(toks);
}

TEST(gguf_accepts_version_2)
{
    size_t len;
    uint8_t *p = small_file(&len, 2);
    put_le(p + 4, 2, 4);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.version, 2);
    owl_gguf_free(&g);
    free(p);
}

TEST(gguf_header_only_checks_ranges_against_file_size)
{
    size_t len;
    uint8_t *p = small_file(&len, (int)N_SAMPLE_TENSORS);
    owl_gguf full, g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &full, &err), OWL_OK);
    size_t hdr = full.data_offset;
    uint8_t *h = malloc(hdr);
    memcpy(h, p, hdr);
    CHECK_EQ_INT(owl_gguf_parse(h, hdr, 1, len, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.n_tensors, N_SAMPLE_TENSORS);
    CHECK(g.tensors[0].data == NULL);
    CHECK_EQ_INT(g.data_size, full.data_size);
    owl_gguf_free(&g);
    CHECK_EQ_INT(owl_gguf_parse(h, hdr, 1, full.data_offset + full.data_size - 1, &g, &err), OWL_E_TRUNCATED);
    CHECK_MSG_HAS(err, "a.query_embd");
    /* the padding need not be there, but every tensor info must */
    CHECK_EQ_INT(owl_gguf_parse(h, hdr - 1, 1, len, &g, &err), OWL_OK);
    owl_gguf_free(&g);
    CHECK_EQ_INT(owl_gguf_parse(h, hdr - 40, 1, len, &g, &err), OWL_E_TRUNCATED);
    owl_gguf_free(&full);
    free(h);
    free(p);
}

/* A 7B-sized file (> 4 GiB) split into stages: each wasm32 stage parses the header alone and
 * loads only its range, so a header describing 5 GiB of tensors must parse on a 32-bit size_t. */
TEST(gguf_header_only_file_larger_than_address_space)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl_gguf_writer_set_str(w, "general.architecture", "mplug-owl2");
    char name[32];
    for (int i = 0; i < 5; i++) {
        int64_t ne[2] = {1 << 14, 1 << 14}; /* f32: 1 GiB each */
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
        CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, name, OWL_TYPE_F32, 2, ne), OWL_OK);
    }
    sink s = {0};
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, sink_write, &s, &err), OWL_OK);
    uint64_t file_size = owl_gguf_writer_file_size(w);
    CHECK(file_size > ((uint64_t)5 << 30));
    owl_gguf g;
    CHECK_EQ_INT(owl_gguf_parse(s.p, s.len, 1, file_size, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.n_tensors, 5);
    CHECK(g.data_size == ((uint64_t)5 << 30));
    CHECK(g.tensors[4].offset == ((uint64_t)4 << 30));
    owl_gguf_free(&g);
    CHECK_EQ_INT(owl_gguf_parse(s.p, s.len, 1, file_size - 1, &g, &err), OWL_E_TRUNCATED);
    CHECK_MSG_HAS(err, "blk.4.ffn_up.weight");
    free(s.p);
    owl_gguf_writer_free(w);
}

// ---------------------------------------------------------------- rejections

TEST(gguf_rejects_bad_magic)
{
    size_t len;
    uint8_t *p = small_file(&len, 1);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, 0, 0x47475546, 4, &err), OWL_E_FORMAT); /* "FUGG" */
    CHECK_MSG_HAS(err, "magic");
    free(p);
}

TEST(gguf_rejects_bad_version)
{
    size_t len;
    uint8_t *p = small_file(&len, 1);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, 4, 1, 4, &err), OWL_E_UNSUPPORTED);
    CHECK_MSG_HAS(err, "version 1");
    CHECK_EQ_INT(patched(p, len, 4, 4, 4, &err), OWL_E_UNSUPPORTED);
    CHECK_EQ_INT(patched(p, len, 4, 0x03000000, 4, &err), OWL_E_UNSUPPORTED);
    CHECK_MSG_HAS(err, "big-endian");
    free(p);
}

TEST(gguf_rejects_truncation_at_every_prefix)
{
    size_t len;
    uint8_t *p = small_file(&len, (int)N_SAMPLE_TENSORS);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    size_t need = g.data_offset + g.data_size; /* the last tensor's padding is optional */
    owl_gguf_free(&g);
    int wrong = 0, header_ok = 0;
    for (size_t n = 0; n < len; n++) {
        owl_status s = parse_copy(p, n, &g, &err);
        wrong += (s == OWL_OK) != (n >= need);
        wrong += s != OWL_OK && s != OWL_E_TRUNCATED; /* a cut valid file reads as truncated */
        /* header-only: once the tensor infos are all there, every longer prefix parses */
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, p, n);
        s = owl_gguf_parse(c, n, 1, len, &g, &err);
        wrong += header_ok && s != OWL_OK;
        header_ok |= s == OWL_OK;
        if (s == OWL_OK)
            owl_gguf_free(&g);
        free(c);
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(header_ok);
    free(p);
}

TEST(gguf_rejects_huge_counts)
{
    size_t len;
    uint8_t *p = small_file(&len, 2);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, 8, UINT64_MAX, 8, &err), OWL_E_LIMIT);   /* n_tensors */
    CHECK_EQ_INT(patched(p, len, 16, 1u << 20, 8, &err), OWL_E_TRUNCATED); /* n_kv */
    CHECK_MSG_HAS(err, "n_kv 1048576");
    CHECK_EQ_INT(patched(p, len, 8, 1000, 8, &err), OWL_E_TRUNCATED);
    size_t at = after(p, len, "image.mean") + 4 + 4; /* array length */
    CHECK_EQ_INT(patched(p, len, at, (uint64_t)1 << 62, 8, &err), OWL_E_TRUNCATED);
    CHECK_MSG_HAS(err, "image.mean");
    free(p);
}

TEST(gguf_rejects_huge_string_length)
{
    size_t len;
    uint8_t *p = small_file(&len, 2);
    owl_err err = {0};
    size_t at = after(p, len, "general.architecture") - strlen("general.architecture") - 8;
    CHECK_EQ_INT(patched(p, len, at, UINT64_MAX, 8, &err), OWL_E_TRUNCATED);
    CHECK_MSG_HAS(err, "key length 18446744073709551615");
    at = after(p, len, "general.architecture") + 4; /* its string value */
    CHECK_EQ_INT(patched(p, len, at, (uint64_t)len, 8, &err), OWL_E_TRUNCATED);
    at = after(p, len, "<s>") - 3 - 8; /* a token in the string array */
    CHECK_EQ_INT(patched(p, len, at, 1ull << 40, 8, &err), OWL_E_TRUNCATED);
    free(p);
}

TEST(gguf_rejects_bad_alignment)
{
    size_t len;
    uint8_t *p = small_file(&len, 2);
    owl_err err = {0};
    size_t at = after(p, len, "general.alignment");
    CHECK_EQ_INT(patched(p, len, at + 4, 0, 4, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "general.alignment: 0");
    CHECK_EQ_INT(patched(p, len, at + 4, 48, 4, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "48 is not a power of two");
    CHECK_EQ_INT(patched(p, len, at, OWL_GGUF_INT32, 4, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "want u32, got i32");
    CHECK_EQ_INT(patched(p, len, at + 4, 64, 4, &err), OWL_E_FORMAT); /* offsets 32-aligned only */
    free(p);
}

/* Start of a tensor info after its name: u32 n_dims | u64 ne[n_dims] | u32 type
 * | u64 offset; so n_dims is at +0, ne[0] at +4, type at +4+8n, offset at +8+8n. */
static size_t tinfo(const uint8_t *p, size_t len, const char *name) { return after(p, len, name); }

TEST(gguf_rejects_unaligned_offset)
{
    size_t len;
    uint8_t *p = small_file(&len, 3);
    owl_err err = {0};
    size_t at = tinfo(p, len, "blk.0.attn_norm.weight") + 4 + 16 + 4; /* offset field */
    uint64_t off = p[at] | (uint64_t)p[at + 1] << 8;
    CHECK_EQ_INT(patched(p, len, at, off + 2, 8, &err), OWL_E_FORMAT);
    char want[96];
    snprintf(want, sizeof want, "tensor 'blk.0.attn_norm.weight': offset %llu not aligned to 32",
             (unsigned long long)off + 2);
    CHECK_MSG_HAS(err, want);
    free(p);
}

TEST(gguf_rejects_out_of_range_data)
{
    size_t len;
    uint8_t *p = small_file(&len, 3);
    owl_err err = {0};
    size_t at = tinfo(p, len, "blk.0.attn_q.weight") + 4 + 24 + 4;
    CHECK_EQ_INT(patched(p, len, at, (uint64_t)1 << 40, 8, &err), OWL_E_TRUNCATED);
    CHECK_MSG_HAS(err, "blk.0.attn_q.weight");
    CHECK_EQ_INT(patched(p, len, at, UINT64_MAX - 31, 8, &err), OWL_E_TRUNCATED); /* no wrap */
    free(p);
}

TEST(gguf_rejects_overlapping_data)
{
    size_t len;
    uint8_t *p = small_file(&len, 3);
    owl_err err = {0};
    size_t at = tinfo(p, len, "blk.0.attn_norm.weight") + 4 + 16 + 4;
    CHECK_EQ_INT(patched(p, len, at, 0, 8, &err), OWL_E_FORMAT); /* onto v.class_embd */
    CHECK_MSG_HAS(err, "overlaps");
    free(p);
}

TEST(gguf_rejects_overflowing_and_zero_dims)
{
    size_t len;
    uint8_t *p = small_file(&len, 4);
    owl_err err = {0};
    size_t at = tinfo(p, len, "blk.0.ffn_up.weight") + 4; /* q8_0 [64, 3] */
    CHECK_EQ_INT(patched(p, len, at + 8, (uint64_t)1 << 62, 8, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "overflow");
    CHECK_EQ_INT(patched(p, len, at + 8, UINT64_MAX, 8, &err), OWL_E_FORMAT);
    CHECK_EQ_INT(patched(p, len, at + 8, (uint64_t)1 << 57, 8, &err), OWL_E_FORMAT); /* bytes overflow */
    CHECK_EQ_INT(patched(p, len, at + 8, 0, 8, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "dim 1 = 0 is zero");
    CHECK_EQ_INT(patched(p, len, at, 48, 8, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "not a multiple of q8_0 block size 32");
    CHECK_EQ_INT(patched(p, len, at - 4, 0, 4, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "n_dims 0");
    CHECK_EQ_INT(patched(p, len, at - 4, 5, 4, &err), OWL_E_FORMAT);
    free(p);
}

TEST(gguf_rejects_unknown_tensor_type)
{
    size_t len;
    uint8_t *p = small_file(&len, 1);
    owl_err err = {0};
    size_t at = tinfo(p, len, "v.class_embd") + 4 + 8;
    CHECK_EQ_INT(patched(p, len, at, 99, 4, &err), OWL_E_UNSUPPORTED);
    CHECK_MSG_HAS(err, "tensor 'v.class_embd': tensor type 99 not supported");
    CHECK_EQ_INT(patched(p, len, at, 10, 4, &err), OWL_E_UNSUPPORTED); /* q2_K: known to ggml, not to us */
    CHECK_EQ_INT(patched(p, len, at, 0x80000000u, 4, &err), OWL_E_UNSUPPORTED);
    free(p);
}

TEST(gguf_rejects_duplicate_key)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl_gguf_writer_set_u32(w, "k.aa", 1);
    owl_gguf_writer_set_u32(w, "k.ab", 2);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf_writer_free(w);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, after(p, len, "k.ab") - 1, 'a', 1, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "key 'k.aa': duplicate key");
    free(p);
}

TEST(gguf_rejects_duplicate_tensor_name)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    int64_t ne[1] = {8};
    owl_gguf_writer_add_tensor(w, "t.0", OWL_TYPE_F32, 1, ne);
    owl_gguf_writer_add_tensor(w, "t.1", OWL_TYPE_F32, 1, ne);
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf_writer_free(w);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, after(p, len, "t.1") - 1, '0', 1, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "tensor 't.0': duplicate tensor name");
    free(p);
}

TEST(gguf_rejects_unknown_value_type)
{
    size_t len;
    uint8_t *p = small_file(&len, 1);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, after(p, len, "llama.block_count"), 13, 4, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "key 'llama.block_count': unknown value type 13");
    CHECK_EQ_INT(patched(p, len, after(p, len, "image.mean") + 4, 0xffffffffu, 4, &err), OWL_E_FORMAT);
    CHECK_MSG_HAS(err, "unknown array element type");
    free(p);
}

TEST(gguf_rejects_nested_arrays)
{
    size_t len;
    uint8_t *p = small_file(&len, 1);
    owl_err err = {0};
    CHECK_EQ_INT(patched(p, len, after(p, len, "image.mean") + 4, OWL_GGUF_ARRAY, 4, &err), OWL_E_UNSUPPORTED);
    CHECK_MSG_HAS(err, "nested arrays");
    free(p);
}

// ---------------------------------------------------------------- fuzz

static int inside(const void *p, uint64_t n, const uint8_t *buf, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;
    return a >= b && a - b <= len && n <= len - (a - b);
}

/* Reads every byte an accepted file hands out (ASan checks them); counts
 * ranges outside the buffer in *bad. */
static unsigned touch(const owl_gguf *g, const uint8_t *buf, size_t len, int *bad)
{
    static const size_t es[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    unsigned sum = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const owl_gguf_kv *kv = &g->kv[i];
        *bad += !inside(kv->key.data, kv->key.len, buf, len);
        for (uint64_t k = 0; k < kv->key.len; k++)
            sum += (unsigned char)kv->key.data[k];
        if (kv->type == OWL_GGUF_STRING) {
            *bad += !inside(kv->str.data, kv->str.len, buf, len);
        } else if (kv->type == OWL_GGUF_ARRAY && kv->arr_type == OWL_GGUF_STRING) {
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                owl_gguf_str s = owl_gguf_arr_str(kv, k);
                *bad += !inside(s.data, s.len, buf, len);
                sum += s.len ? (unsigned char)s.data[s.len - 1] : 0;
            }
        } else if (kv->type == OWL_GGUF_ARRAY) {
            *bad += kv->arr_type > OWL_GGUF_FLOAT64 || !inside(kv->data, kv->arr_n * es[kv->arr_type], buf, len);
        } else {
            *bad += kv->type > OWL_GGUF_FLOAT64 || !inside(kv->data, es[kv->type], buf, len);
            sum += kv->data[0];
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const owl_gguf_tensor *t = &g->tensors[i];
        *bad += !inside(t->name.data, t->name.len, buf, len) || t->offset % g->alignment;
        if (t->data) {
            *bad += !inside(t->data, t->size, buf, len);
            sum += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
        }
    }
    return sum;
}

TEST(gguf_survives_10000_random_mutations)
{
    size_t len;
    uint8_t *base = small_file(&len, 5);
    static const uint64_t huge[] = {UINT64_MAX, (uint64_t)1 << 63, (uint64_t)1 << 32, 0xffffffffu,
                                    (uint64_t)1 << 62, 1000000, 0};
    uint64_t rng = 0x5eed;
    int accepted = 0, rejected = 0, bad = 0, silent = 0;
    unsigned sum = 0;
    uint8_t *m = malloc(len + 64);
    for (int it = 0; it < 10000; it++) {
        size_t n = len;
        memcpy(m, base, len);
        int muts = 1 + (int)(owl_test_rand_u64(&rng) % 3);
        for (int j = 0; j < muts; j++) {
            uint64_t r = owl_test_rand_u64(&rng), r2 = owl_test_rand_u64(&rng);
            size_t cnt = 1 + (size_t)(r2 % 8);
            switch (r % 6) {
            case 0: /* bit flip */
                if (n)
                    m[(r >> 8) % n] ^= (uint8_t)(1u << (r2 % 8));
                break;
            case 1: /* insert random bytes */
                if (n + cnt <= len + 64) {
                    size_t pos = (size_t)((r >> 8) % (n + 1));
                    memmove(m + pos + cnt, m + pos, n - pos);
                    for (size_t k = 0; k < cnt; k++)
                        m[pos + k] = (uint8_t)(r2 >> (8 * k));
                    n += cnt;
                }
                break;
            case 2: /* delete bytes */
                if (cnt <= n) {
                    size_t pos = (size_t)((r >> 8) % (n - cnt + 1));
                    memmove(m + pos, m + pos + cnt, n - pos - cnt);
                    n -= cnt;
                }
                break;
            case 3: /* truncate */
                n = (size_t)((r >> 8) % (n + 1));
                break;
            case 4: /* a u64 field to a huge value */
                if (n >= 8)
                    put_le(m + (r >> 8) % (n - 7), huge[r2 % 7], 8);
                break;
            default: /* a u32 field (type, n_dims) to a small or huge value */
                if (n >= 4)
                    put_le(m + (r >> 8) % (n - 3), r2 % 5 ? r2 % 40 : 0xffffffffu, 4);
                break;
            }
        }
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, m, n);
        owl_gguf g;
        owl_err err = {0};
        int header_only = it % 4 == 3;
        owl_status s = owl_gguf_parse(c, n, header_only, n, &g, &err);
        if (s == OWL_OK) {
            accepted++;
            sum += touch(&g, c, n, &bad);
            owl_gguf_free(&g);
        } else {
            rejected++;
            silent += err.msg[0] == 0 || g.kv != NULL || g.tensors != NULL;
        }
        free(c);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(silent, 0);
    CHECK_MSG(accepted > 200 && rejected > 2000, "accepted %d rejected %d (sum %u)", accepted, rejected, sum);
    free(m);
    free(base);
}

// ---------------------------------------------------------------- writer errors

TEST(gguf_writer_rejects_bad_keys_and_tensors)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    uint32_t v = 1;
    int64_t ne[4] = {32, 2, 1, 1};
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "a", 1), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_i32(w, "a", 2), OWL_E_INVALID);
    CHECK_MSG_HAS(*owl_gguf_writer_last_error(w), "key 'a': duplicate key");
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, NULL, 1), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "b", OWL_GGUF_STRING, &v), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_val(w, "b", OWL_GGUF_UINT32, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_arr(w, "b", OWL_GGUF_ARRAY, &v, 1), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_arr(w, "b", OWL_GGUF_UINT32, NULL, 2), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_str(w, "b", NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_arr_str(w, "b", (const char *[]){"x", NULL}, 2), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_i32(w, "general.alignment", 32), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "general.alignment", 48), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "general.alignment", 0), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "t", OWL_TYPE_Q4_0, 2, ne), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "t", OWL_TYPE_F32, 2, ne), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "", OWL_TYPE_F32, 2, ne), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", (owl_type)99, 2, ne), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", (owl_type)10, 2, ne), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", OWL_TYPE_F32, 0, ne), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", OWL_TYPE_F32, 5, ne), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", OWL_TYPE_Q4_K, 2, ne), OWL_E_INVALID);
    CHECK_MSG_HAS(*owl_gguf_writer_last_error(w), "not a multiple of q4_K block size 256");
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", OWL_TYPE_F32, 2, (int64_t[]){3, 0}), OWL_E_INVALID);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "u", OWL_TYPE_F32, 2, (int64_t[]){1ll << 40, 1ll << 40}),
                 OWL_E_INVALID);
    char name[80];
    memset(name, 'n', sizeof name);
    name[64] = 0;
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, name, OWL_TYPE_F32, 1, ne), OWL_E_INVALID);
    name[63] = 0;
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, name, OWL_TYPE_F32, 1, ne), OWL_OK);
    /* failed calls added nothing */
    size_t len;
    uint8_t *p = write_all(w, &len);
    owl_gguf g;
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_parse(p, len, 0, 0, &g, &err), OWL_OK);
    CHECK_EQ_INT(g.n_kv, 1);
    CHECK_EQ_INT(g.n_tensors, 2);
    CHECK_EQ_INT(g.alignment, 32);
    owl_gguf_free(&g);
    owl_gguf_writer_free(w);
    free(p);
}

TEST(gguf_writer_enforces_call_order_and_sizes)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    int64_t ne[1] = {3};
    uint8_t d[12] = {0};
    sink s = {0};
    owl_err err = {0};
    owl_gguf_writer_add_tensor(w, "t", OWL_TYPE_F32, 1, ne);
    CHECK_EQ_INT(owl_gguf_writer_write_tensor_data(w, d, 12, sink_write, &s, &err), OWL_E_STATE);
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, sink_write, &s, &err), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, sink_write, &s, &err), OWL_E_STATE);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "late", 1), OWL_E_STATE);
    CHECK_EQ_INT(owl_gguf_writer_add_tensor(w, "late", OWL_TYPE_F32, 1, ne), OWL_E_STATE);
    CHECK_EQ_INT(owl_gguf_writer_write_tensor_data(w, d, 11, sink_write, &s, &err), OWL_E_INVALID);
    CHECK_MSG_HAS(err, "tensor 't': got 11 bytes, want 12");
    CHECK_EQ_INT(owl_gguf_writer_write_tensor_data(w, d, 12, sink_write, &s, &err), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_write_tensor_data(w, d, 12, sink_write, &s, &err), OWL_E_STATE);
    CHECK_EQ_INT(s.len, owl_gguf_writer_file_size(w));
    CHECK_EQ_INT(s.len % 32, 0);
    owl_gguf_writer_free(w);
    free(s.p);
}

TEST(gguf_writer_reports_sink_failure)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    int64_t ne[1] = {64};
    float d[64] = {0};
    owl_gguf_writer_add_tensor(w, "t", OWL_TYPE_F32, 1, ne);
    sink s = {.fail_at = 10};
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, sink_write, &s, &err), OWL_E_IO);
    s.fail_at = (size_t)owl_gguf_writer_tensor_file_offset(w, 0) + 100;
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, sink_write, &s, &err), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_write_tensor_data(w, d, sizeof d, sink_write, &s, &err), OWL_E_IO);
    CHECK_MSG_HAS(err, "tensor 't'");
    owl_gguf_writer_free(w);
    free(s.p);
}

// ---------------------------------------------------------------- sample for the JS test

typedef struct {
    const char *key;
    owl_gguf_vtype type, elem;
    uint64_t n;
    const void *v;
} kvdesc;

static int file_write(void *user, const void *data, size_t n) { return fwrite(data, 1, n, user) != n; }

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_val(FILE *f, owl_gguf_vtype t, const void *p, uint64_t i)
{
    const uint8_t *b = p;
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
            uint64_t u64; int64_t i64; double f64; } u;
    static const size_t es[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t == OWL_GGUF_STRING) {
        json_str(f, ((const char *const *)p)[i]);
        return;
    }
    memcpy(&u, b + i * es[t], es[t]);
    switch (t) {
    case OWL_GGUF_UINT8: fprintf(f, "%u", u.u8); break;
    case OWL_GGUF_INT8: fprintf(f, "%d", u.i8); break;
    case OWL_GGUF_UINT16: fprintf(f, "%u", u.u16); break;
    case OWL_GGUF_INT16: fprintf(f, "%d", u.i16); break;
    case OWL_GGUF_UINT32: fprintf(f, "%u", u.u32); break;
    case OWL_GGUF_INT32: fprintf(f, "%d", u.i32); break;
    case OWL_GGUF_FLOAT32: fprintf(f, "%.9g", u.f32); break;
    case OWL_GGUF_BOOL: fprintf(f, "%s", u.u8 ? "true" : "false"); break;
    case OWL_GGUF_UINT64: fprintf(f, "\"%llu\"", (unsigned long long)u.u64); break; /* BigInt in JS */
    case OWL_GGUF_INT64: fprintf(f, "\"%lld\"", (long long)u.i64); break;
    case OWL_GGUF_FLOAT64: fprintf(f, "%.17g", u.f64); break;
    default: fprintf(f, "null"); break;
    }
}

TEST(gguf_write_sample_for_js)
{
    static const uint32_t u32s[] = {32, 15, 2048};
    static const float f32s[] = {10000.0f, 1e-6f};
    static const uint8_t u8 = 200, yes = 1, pad[3] = {122, 116, 104};
    static const int8_t i8 = -100;
    static const uint16_t u16 = 60000;
    static const int16_t i16 = -30000, i16s[4] = {-1, 2, -32768, 32767};
    static const int32_t i32 = -2000000000, types[7] = {2, 3, 3, 1, 6, 1, 1};
    static const uint64_t u64 = UINT64_MAX, u64s[3] = {1, (uint64_t)1 << 40, UINT64_MAX};
    static const int64_t i64 = -1234567890123ll;
    static const double f64 = 3.141592653589793, f64s[2] = {-0.5, 1e300};
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float scores[7] = {0, -1000, -1000, -3.25f, 0, 0.5f, -7};
    static const char *name = "owlet sample", *arch = "mplug-owl2";
    const kvdesc kvs[] = {
        {"general.architecture", OWL_GGUF_STRING, 0, 0, &arch},
        {"general.name", OWL_GGUF_STRING, 0, 0, &name},
        {"general.alignment", OWL_GGUF_UINT32, 0, 0, &u32s[0]},
        {"general.file_type", OWL_GGUF_UINT32, 0, 0, &u32s[1]},
        {"mplug-owl2.context_length", OWL_GGUF_UINT32, 0, 0, &u32s[2]},
        {"mplug-owl2.rope.freq_base", OWL_GGUF_FLOAT32, 0, 0, &f32s[0]},
        {"mplug-owl2.attention.layer_norm_rms_epsilon", OWL_GGUF_FLOAT32, 0, 0, &f32s[1]},
        {"test.u8", OWL_GGUF_UINT8, 0, 0, &u8},
        {"test.i8", OWL_GGUF_INT8, 0, 0, &i8},
        {"test.u16", OWL_GGUF_UINT16, 0, 0, &u16},
        {"test.i16", OWL_GGUF_INT16, 0, 0, &i16},
        {"test.i32", OWL_GGUF_INT32, 0, 0, &i32},
        {"test.u64", OWL_GGUF_UINT64, 0, 0, &u64},
        {"test.i64", OWL_GGUF_INT64, 0, 0, &i64},
        {"test.f64", OWL_GGUF_FLOAT64, 0, 0, &f64},
        {"tokenizer.ggml.add_bos_token", OWL_GGUF_BOOL, 0, 0, &yes},
        {"mplug-owl2.image.mean", OWL_GGUF_ARRAY, OWL_GGUF_FLOAT32, 3, mean},
        {"mplug-owl2.image.pad_color", OWL_GGUF_ARRAY, OWL_GGUF_UINT8, 3, pad},
        {"tokenizer.ggml.tokens", OWL_GGUF_ARRAY, OWL_GGUF_STRING, 7, sample_tokens},
        {"tokenizer.ggml.scores", OWL_GGUF_ARRAY, OWL_GGUF_FLOAT32, 7, scores},
        {"tokenizer.ggml.token_type", OWL_GGUF_ARRAY, OWL_GGUF_INT32, 7, types},
        {"test.arr_i16", OWL_GGUF_ARRAY, OWL_GGUF_INT16, 4, i16s},
        {"test.arr_u64", OWL_GGUF_ARRAY, OWL_GGUF_UINT64, 3, u64s},
        {"test.arr_f64", OWL_GGUF_ARRAY, OWL_GGUF_FLOAT64, 2, f64s},
    };
    const size_t n_kv = sizeof kvs / sizeof kvs[0];
    owl_gguf_writer *w = owl_gguf_writer_init();
    for (size_t i = 0; i < n_kv; i++) {
        const kvdesc *k = &kvs[i];
        owl_status s = k->type == OWL_GGUF_STRING ? owl_gguf_writer_set_str(w, k->key, *(const char *const *)k->v)
                     : k->type != OWL_GGUF_ARRAY   ? owl_gguf_writer_set_val(w, k->key, k->type, k->v)
                     : k->elem == OWL_GGUF_STRING ? owl_gguf_writer_set_arr_str(w, k->key, k->v, k->n)
                                                  : owl_gguf_writer_set_arr(w, k->key, k->elem, k->v, k->n);
        CHECK_EQ_INT(s, OWL_OK);
    }
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++)
        owl_gguf_writer_add_tensor(w, sample_tensors[i].name, sample_tensors[i].type, sample_tensors[i].n_dims,
                                   sample_tensors[i].ne);
    size_t len;
    uint8_t *p = write_all(w, &len);
    mkdir("build", 0777);
    mkdir("build/test-out", 0777);
    FILE *f = fopen("build/test-out/sample.gguf", "wb");
    CHECK(f != NULL);
    if (!f)
        goto done;
    CHECK(file_write(f, p, len) == 0);
    fclose(f);
    f = fopen("build/test-out/sample.json", "w");
    CHECK(f != NULL);
    if (!f)
        goto done;
    uint64_t data_offset = owl_gguf_writer_tensor_file_offset(w, 0);
    fprintf(f, "{\n  \"version\": 3,\n  \"file_size\": %zu,\n  \"alignment\": 32,\n  \"data_offset\": %llu,\n",
            len, (unsigned long long)data_offset);
    fprintf(f, "  \"kv\": [\n");
    for (size_t i = 0; i < n_kv; i++) {
        const kvdesc *k = &kvs[i];
        fprintf(f, "    {\"key\": ");
        json_str(f, k->key);
        fprintf(f, ", \"type\": %d", (int)k->type);
        if (k->type == OWL_GGUF_ARRAY) {
            fprintf(f, ", \"elem\": %d, \"value\": [", (int)k->elem);
            for (uint64_t e = 0; e < k->n; e++) {
                fprintf(f, e ? ", " : "");
                json_val(f, k->elem, k->v, e);
            }
            fprintf(f, "]");
        } else {
            fprintf(f, ", \"value\": ");
            json_val(f, k->type, k->v, 0);
        }
        fprintf(f, "}%s\n", i + 1 < n_kv ? "," : "");
    }
    fprintf(f, "  ],\n  \"tensors\": [\n");
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const tdesc *t = &sample_tensors[i];
        fprintf(f, "    {\"name\": \"%s\", \"type\": %d, \"ne\": [", t->name, (int)t->type);
        for (int d = 0; d < t->n_dims; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        fprintf(f, "], \"offset\": %llu, \"size\": %llu, \"first_bytes\": \"",
                (unsigned long long)(owl_gguf_writer_tensor_file_offset(w, i) - data_offset),
                (unsigned long long)owl_gguf_writer_tensor_size(w, i));
        for (size_t k = 0; k < 8; k++)
            fprintf(f, "%02x", pattern(i, k));
        fprintf(f, "\"}%s\n", i + 1 < N_SAMPLE_TENSORS ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    CHECK(fclose(f) == 0);
    /* and our reader agrees with itself on the file as stored */
    size_t n;
    uint8_t *back = owl_test_read_file("build/test-out/sample.gguf", &n);
    owl_gguf g;
    owl_err err = {0};
    CHECK(back && n == len && owl_gguf_parse(back, n, 0, 0, &g, &err) == OWL_OK);
    if (back && g.kv) {
        CHECK_EQ_INT(g.n_kv, n_kv);
        CHECK_EQ_INT(g.data_offset, data_offset);
        owl_gguf_free(&g);
    }
    free(back);
done:
    owl_gguf_writer_free(w);
    free(p);
}
