/* test_model.c - the forward pass against the original PyTorch model's dumps
 * (tests/fixtures/oracle_a: tiny random-weight mPLUG-Owl2), thread-count
 * determinism, the 2-stage pipeline split, plain llama GGUFs and load errors.
 *
 * The model file is made at test time by the converter (Makefile, before the C tests):
 *   build/owlet-convert tests/fixtures/oracle_a build/test-out/oracle_a_f32.gguf --type f32
 * Inputs (pixel_values.f32, input_ids.i32) come straight from the fixtures, so
 * these tests do not depend on the tokenizer or the image code.
 * Tolerance: max|ours - ref| <= 1e-4 * max|ref| per tensor (design.md section 8). */
#include <stdlib.h>
#include <string.h>

#include "../../src/core/gguf.h"
#include "../../src/kernels/types.h"
#include "../../src/model/weights.h"
#include "../../src/owlet.h"
#include "test.h"

#define ORACLE_GGUF "build/test-out/oracle_a_f32.gguf"
#define FIX "tests/fixtures/oracle_a/"
#define REL_TOL 1e-4

/* ---------------------------------------------------------------- helpers */

static void *load_fixture(const char *cs, const char *file, size_t *n_bytes)
{
    char path[256];
    snprintf(path, sizeof path, FIX "%s/%s", cs, file);
    size_t sz = 0;
    void *p = owl_test_read_file(path, &sz);
    CHECK_MSG(p != NULL, "cannot read %s", path);
    if (n_bytes)
        *n_bytes = sz;
    return p;
}

static owl_model *load_oracle(const owl_model_opts *opts)
{
    owl_model *m = NULL;
    owl_err err = {0};
    owl_status st = owl_model_load_file(ORACLE_GGUF, opts, &m, &err);
    CHECK_MSG(st == OWL_OK, "load %s: %s (%s)", ORACLE_GGUF, err.msg, owl_status_name(st));
    return m;
}

/* Compare ours (n floats) with the fixture; prints the relative diff. */
static void check_close(const char *cs, const char *name, const float *ours, size_t n)
{
    char file[96];
    snprintf(file, sizeof file, "%s.f32", name);
    size_t sz = 0;
    float *ref = load_fixture(cs, file, &sz);
    if (!ref)
        return;
    CHECK_MSG(sz == n * sizeof(float), "%s/%s: %zu bytes, ours %zu floats", cs, name, sz, n);
    if (sz == n * sizeof(float)) {
        double mx = owl_test_max_abs(ref, n), diff = owl_test_max_abs_diff(ours, ref, n);
        printf("  %s/%-20s max|diff| %.3g  rel %.3g\n", cs, name, diff, diff / mx);
        CHECK_MSG(diff <= REL_TOL * mx, "%s/%s: max|diff| %g > %g * max|ref| %g", cs, name, diff,
                  REL_TOL, mx);
    }
    free(ref);
}

/* Taps collected during a forward pass (first occurrence of each name). */
typedef struct {
    char name[32];
    float *data;
    int64_t rows, cols;
} tap_rec;
typedef struct {
    tap_rec r[64];
    int n;
} taps;

static void on_tap(void *user, const char *name, const float *data, int64_t rows, int64_t cols)
{
    taps *t = user;
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->r[i].name, name))
            return;
    if (t->n == 64)
        return;
    tap_rec *r = &t->r[t->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->rows = rows;
    r->cols = cols;
    r->data = malloc(sizeof(float) * (size_t)(rows * cols));
    memcpy(r->data, data, sizeof(float) * (size_t)(rows * cols));
}

static const tap_rec *find_tap(const taps *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->r[i].name, name))
            return &t->r[i];
    return NULL;
}

static void free_taps(taps *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->r[i].data);
    t->n = 0;
}

static int32_t argmax(const float *x, int64_t n)
{
    int32_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = (int32_t)i;
    return b;
}

static owl_session *new_session(const owl_model *m, owl_type kv, int threads, taps *t)
{
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = 64;
    o.n_batch = 64;
    o.kv_type = kv;
    o.n_threads = threads;
    if (t) {
        o.tap = on_tap;
        o.tap_user = t;
    }
    owl_session *s = NULL;
    owl_err err = {0};
    owl_status st = owl_session_init(m, &o, &s, &err);
    CHECK_MSG(st == OWL_OK, "session: %s", err.msg);
    return s;
}

/* Encode the case's image (if any) and prefill its ids; returns the (L, V)
 * logits of every position (malloc'd), *L_out = L. */
static float *run_prefill(const owl_model *m, owl_session *s, const char *cs, int with_image,
                          int64_t *L_out)
{
    size_t nb = 0;
    int32_t *ids = load_fixture(cs, "input_ids.i32", &nb);
    if (!ids)
        return NULL;
    owl_model_info info;
    owl_model_get_info(m, &info);
    if (with_image) {
        size_t np = 0;
        float *px = load_fixture(cs, "pixel_values.f32", &np);
        if (px) {
            owl_status st = owl_session_encode_image(s, px, np / sizeof(float), NULL);
            CHECK_MSG(st == OWL_OK, "encode_image: %s", owl_session_error(s));
        }
        free(px);
    }
    int64_t n_ids = (int64_t)(nb / sizeof(int32_t));
    int64_t L = owl_model_expanded_len(m, ids, n_ids);
    float *logits = malloc(sizeof(float) * (size_t)(L * info.n_vocab));
    int64_t got = 0;
    owl_status st = owl_session_prefill(s, ids, n_ids, logits, &got);
    CHECK_MSG(st == OWL_OK, "prefill: %s", owl_session_error(s));
    CHECK_EQ_INT(got, L);
    free(ids);
    *L_out = L;
    return logits;
}

/* Un-permute the cached keys (GGUF head layout: pair (2i, 2i+1)) to the
 * reference's [heads, T, head_dim] half-split layout; values only transpose. */
static void kv_to_ref(const float *ours, int64_t T, int H, int hd, int is_k, float *ref_layout)
{
    for (int h = 0; h < H; h++)
        for (int64_t t = 0; t < T; t++)
            for (int j = 0; j < hd; j++) {
                int src = is_k ? 2 * (j % (hd / 2)) + j / (hd / 2) : j;
                ref_layout[((int64_t)h * T + t) * hd + j] = ours[t * H * hd + h * hd + src];
            }
}

/* The full oracle comparison of one case. */
static void oracle_case(const char *cs, int with_image, int check_kv)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    owl_model_info info;
    owl_model_get_info(m, &info);
    taps t = {0};
    owl_session *s = new_session(m, OWL_TYPE_F32, 1, &t);
    int64_t L = 0;
    float *logits = s ? run_prefill(m, s, cs, with_image, &L) : NULL;
    if (logits) {
        static const char *names[] = {"vision_embeddings", "vision_layer0", "vision_layer1", "vision_out",
                                      "abstractor_layer0", "abstractor_layer1", "abstractor_out",
                                      "llm_input_embeds", "llm_layer0", "llm_layer1", "llm_final_norm"};
        for (size_t i = with_image ? 0 : 7; i < sizeof names / sizeof names[0]; i++) {
            const tap_rec *r = find_tap(&t, names[i]);
            CHECK_MSG(r != NULL, "no tap %s", names[i]);
            if (r)
                check_close(cs, names[i], r->data, (size_t)(r->rows * r->cols));
        }
        check_close(cs, "prefill_logits", logits, (size_t)(L * info.n_vocab));
        if (check_kv) {
            float *kv = malloc(sizeof(float) * (size_t)(L * info.n_kv_heads * info.head_dim));
            float *re = malloc(sizeof(float) * (size_t)(L * info.n_kv_heads * info.head_dim));
            for (int layer = 0; layer < info.n_layers; layer++)
                for (int which = 0; which < 2; which++) {
                    CHECK(owl_session_kv_read(s, layer, which, 0, L, kv) == OWL_OK);
                    kv_to_ref(kv, L, (int)info.n_kv_heads, (int)info.head_dim, which == 0, re);
                    char name[32];
                    snprintf(name, sizeof name, "kv_layer%d_%c", layer, which ? 'v' : 'k');
                    check_close(cs, name, re, (size_t)(L * info.n_kv_heads * info.head_dim));
                }
            free(kv);
            free(re);
        }
        /* 16 greedy steps: step 0 from the prefill, step k feeds token k-1 */
        size_t nt = 0, nl = 0;
        int32_t *toks = load_fixture(cs, "decode_tokens.i32", &nt);
        float *dref = load_fixture(cs, "decode_logits.f32", &nl);
        int64_t steps = (int64_t)(nt / sizeof(int32_t)), V = info.n_vocab;
        if (toks && dref && nl == (size_t)steps * (size_t)V * sizeof(float)) {
            double worst = 0;
            for (int64_t k = 0; k < steps; k++) {
                const float *lg = owl_session_logits(s);
                if (k > 0) {
                    owl_status st = owl_session_decode(s, toks[k - 1], &lg);
                    CHECK_MSG(st == OWL_OK, "decode %lld: %s", (long long)k, owl_session_error(s));
                }
                CHECK_MSG(argmax(lg, V) == toks[k], "%s step %lld: token %d, want %d", cs,
                          (long long)k, argmax(lg, V), toks[k]);
                double mx = owl_test_max_abs(dref + k * V, (size_t)V);
                double diff = owl_test_max_abs_diff(lg, dref + k * V, (size_t)V);
                CHECK_MSG(diff <= REL_TOL * mx, "%s decode step %lld: max|diff| %g vs max %g", cs,
                          (long long)k, diff, mx);
                if (diff / mx > worst)
                    worst = diff / mx;
            }
            printf("  %s/%-20s worst rel %.3g over %lld steps\n", cs, "decode_logits", worst,
                   (long long)steps);
        } else {
            CHECK_MSG(0, "%s: decode fixtures missing or mis-sized", cs);
        }
        free(toks);
        free(dref);
    }
    free(logits);
    free_taps(&t);
    owl_session_free(s);
    owl_model_free(m);
}

TEST(model_oracle_img1_matches_reference) { oracle_case("img1", 1, 1); }
TEST(model_oracle_img2_matches_reference) { oracle_case("img2", 1, 0); }
TEST(model_oracle_text_matches_reference) { oracle_case("text", 0, 0); }

/* Prefill img1 + 3 decode steps; returns all logits rows concatenated. */
static float *run_img1(const owl_model *m, owl_type kv, int threads, int64_t *n_floats)
{
    owl_session *s = new_session(m, kv, threads, NULL);
    if (!s)
        return NULL;
    owl_model_info info;
    owl_model_get_info(m, &info);
    int64_t L = 0;
    float *lg = run_prefill(m, s, "img1", 1, &L);
    if (!lg) {
        owl_session_free(s);
        return NULL;
    }
    lg = realloc(lg, sizeof(float) * (size_t)((L + 3) * info.n_vocab));
    for (int k = 0; k < 3; k++) {
        const float *out = NULL;
        CHECK(owl_session_decode(s, 5 + 7 * k, &out) == OWL_OK);
        memcpy(lg + (L + k) * info.n_vocab, out, sizeof(float) * (size_t)info.n_vocab);
    }
    *n_floats = (L + 3) * info.n_vocab;
    owl_session_free(s);
    return lg;
}

TEST(model_logits_bitwise_identical_for_1_2_4_threads)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    int64_t n1 = 0, n2 = 0, n4 = 0;
    float *a = run_img1(m, OWL_TYPE_F16, 1, &n1);
    float *b = run_img1(m, OWL_TYPE_F16, 2, &n2);
    float *c = run_img1(m, OWL_TYPE_F16, 4, &n4);
    CHECK(a && b && c && n1 == n2 && n1 == n4 && n1 > 0);
    if (a && b && c && n1 == n2 && n1 == n4) {
        CHECK(memcmp(a, b, sizeof(float) * (size_t)n1) == 0);
        CHECK(memcmp(a, c, sizeof(float) * (size_t)n1) == 0);
    }
    free(a);
    free(b);
    free(c);
    owl_model_free(m);
}

TEST(model_f16_kv_cache_close_to_f32)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    int64_t n1 = 0, n2 = 0;
    float *a = run_img1(m, OWL_TYPE_F32, 1, &n1);
    float *b = run_img1(m, OWL_TYPE_F16, 1, &n2);
    CHECK(a && b && n1 == n2);
    if (a && b && n1 == n2) {
        double mx = owl_test_max_abs(a, (size_t)n1), diff = owl_test_max_abs_diff(a, b, (size_t)n1);
        CHECK_MSG(diff <= 1e-2 * mx && diff > 0, "f16 vs f32 KV: %g (max %g)", diff, mx);
    }
    free(a);
    free(b);
    owl_model_free(m);
}

/* ---------------------------------------------------------------- pipeline stages */

TEST(model_two_stage_split_gives_bit_identical_logits)
{
    owl_model *full = load_oracle(NULL);
    owl_model_opts o0 = {.layer_begin = 0, .layer_end = 1, .no_head = 1};
    owl_model_opts o1 = {.layer_begin = 1, .layer_end = 0, .no_vision = 1, .no_embed = 1};
    owl_model *m0 = load_oracle(&o0), *m1 = load_oracle(&o1);
    if (!full || !m0 || !m1) {
        owl_model_free(full);
        owl_model_free(m0);
        owl_model_free(m1);
        return;
    }
    owl_model_info i0, i1;
    owl_model_get_info(m0, &i0);
    owl_model_get_info(m1, &i1);
    CHECK(i0.has_vision && i0.has_embed && !i0.has_head && i0.layer_end == 1);
    CHECK(!i1.has_vision && !i1.has_embed && i1.has_head && i1.layer_begin == 1 && i1.layer_end == 2);
    owl_session *sf = new_session(full, OWL_TYPE_F16, 1, NULL);
    owl_session *s0 = new_session(m0, OWL_TYPE_F16, 2, NULL);
    owl_session *s1 = new_session(m1, OWL_TYPE_F16, 1, NULL);
    int64_t L = 0;
    float *ref = run_prefill(full, sf, "img1", 1, &L);
    /* stage path: stage 0 embeds (image spliced) and runs layer 0, stage 1 layer 1 + head */
    size_t nb = 0, np = 0;
    int32_t *ids = load_fixture("img1", "input_ids.i32", &nb);
    float *px = load_fixture("img1", "pixel_values.f32", &np);
    const int64_t d = i0.d_model, V = i1.n_vocab;
    float *x = malloc(sizeof(float) * (size_t)((L + 1) * d));
    float *lg = malloc(sizeof(float) * (size_t)(L * V));
    uint8_t *mod = malloc((size_t)L);
    CHECK(owl_session_encode_image(s0, px, np / sizeof(float), NULL) == OWL_OK);
    CHECK(owl_session_embed(s0, ids, (int64_t)(nb / 4), x, mod) == OWL_OK);
    CHECK(mod[0] == 0 && mod[4] == 1 && mod[12] == 1 && mod[13] == 0);
    CHECK(owl_session_run_layers(s0, 0, 1, x, L, 0, mod) == OWL_OK);
    CHECK(owl_session_run_layers(s1, 1, 2, x, L, 0, mod) == OWL_OK);
    CHECK(owl_session_head(s1, x, L, lg) == OWL_OK);
    CHECK(ref && memcmp(ref, lg, sizeof(float) * (size_t)(L * V)) == 0);
    /* one decode step through both stages */
    const float *want = NULL;
    CHECK(owl_session_decode(sf, 42, &want) == OWL_OK);
    int32_t tok = 42;
    CHECK(owl_session_embed(s0, &tok, 1, x, NULL) == OWL_OK);
    CHECK(owl_session_run_layers(s0, 0, 1, x, 1, L, NULL) == OWL_OK);
    CHECK(owl_session_run_layers(s1, 1, 2, x, 1, L, NULL) == OWL_OK);
    CHECK(owl_session_head(s1, x, 1, lg) == OWL_OK);
    CHECK(want && memcmp(want, lg, sizeof(float) * (size_t)V) == 0);
    CHECK_EQ_INT(owl_session_n_past(s1), L + 1);
    /* a stage refuses what it does not hold */
    CHECK_EQ_INT(owl_session_run_layers(s0, 1, 2, x, 1, 0, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_head(s0, x, 1, lg), OWL_E_STATE);
    CHECK_EQ_INT(owl_session_embed(s1, &tok, 1, x, NULL), OWL_E_STATE);
    CHECK_EQ_INT(owl_session_prefill(s1, &tok, 1, NULL, NULL), OWL_E_STATE);
    free(ids);
    free(px);
    free(x);
    free(lg);
    free(mod);
    free(ref);
    owl_session_free(sf);
    owl_session_free(s0);
    owl_session_free(s1);
    owl_model_free(full);
    owl_model_free(m0);
    owl_model_free(m1);
}

/* ---------------------------------------------------------------- GGUF rewriting */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} membuf;

static int mem_write(void *user, const void *data, size_t n)
{
    membuf *b = user;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    return 0;
}

/* Edit applied while copying the oracle GGUF. */
typedef struct {
    const char *drop[4];        /* tensors whose name starts with it ("*x": ends with x) are dropped */
    const char *halve;          /* this tensor gets ne[1] / 2 */
    const char *arch;           /* new general.architecture */
    const char *rename_from;    /* key prefix rewritten to rename_to */
    const char *rename_to;
    int quant;                  /* 1: 2-D "*.weight" tensors converted to qtype */
    owl_type qtype;
    int gqa;                    /* text attn_k/attn_v of the 4-head oracle: 1 = heads 1, 3 become
                                   copies of 0, 2; 2 = only heads 0, 2 kept (head_count_kv 2) */
} gguf_edit;

static int gqa_tensor(const gguf_edit *e, const owl_gguf_tensor *t);


static int has_prefix(owl_gguf_str s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && memcmp(s.data, p, n) == 0;
}

static int has_suffix(owl_gguf_str s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && memcmp(s.data + s.len - n, p, n) == 0;
}

static int quantizable(const gguf_edit *e, const owl_gguf_tensor *t)
{
    const owl_type_traits *tr = owl_type_get(e->qtype);
    return e->quant && tr && t->type == OWL_TYPE_F32 && t->n_dims == 2 &&
           t->ne[0] % tr->blck_size == 0 && has_suffix(t->name, ".weight");
}

static int gqa_tensor(const gguf_edit *e, const owl_gguf_tensor *t)
{
    return e->gqa && (has_suffix(t->name, ".attn_k.weight") || has_suffix(t->name, ".attn_v.weight"));
}

/* A malloc'd GGUF image (*size bytes) of the oracle with the edit applied. */
static void *edited_oracle(const gguf_edit *e, size_t *size)
{
    size_t fsz = 0;
    void *file = owl_test_read_file(ORACLE_GGUF, &fsz);
    CHECK_MSG(file != NULL, "cannot read %s", ORACLE_GGUF);
    if (!file)
        return NULL;
    owl_gguf g;
    owl_err err = {0};
    if (owl_gguf_parse(file, fsz, 0, 0, &g, &err) != OWL_OK) {
        CHECK_MSG(0, "parse: %s", err.msg);
        free(file);
        return NULL;
    }
    owl_gguf_writer *w = owl_gguf_writer_init();
    char key[256];
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const owl_gguf_kv *kv = &g.kv[i];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
        if (e->rename_from && has_prefix(kv->key, e->rename_from))
            snprintf(key, sizeof key, "%s%.*s", e->rename_to, (int)(kv->key.len - strlen(e->rename_from)),
                     kv->key.data + strlen(e->rename_from));
        if (kv->type == OWL_GGUF_STRING) {
            char val[256];
            snprintf(val, sizeof val, "%.*s", (int)kv->str.len, kv->str.data);
            if (e->arch && !strcmp(key, "general.architecture"))
                snprintf(val, sizeof val, "%s", e->arch);
            owl_gguf_writer_set_str(w, key, val);
        } else if (kv->type == OWL_GGUF_UINT32) {
            uint32_t v;
            memcpy(&v, kv->data, 4);
            if (e->gqa == 2 && strstr(key, ".attention.head_count_kv"))
                v = 2;
            owl_gguf_writer_set_u32(w, key, v);
        } else if (kv->type == OWL_GGUF_FLOAT32) {
            float v;
            memcpy(&v, kv->data, 4);
            owl_gguf_writer_set_f32(w, key, v);
        } else if (kv->type == OWL_GGUF_ARRAY && kv->arr_type != OWL_GGUF_STRING &&
                   kv->arr_type != OWL_GGUF_ARRAY) {
            owl_gguf_writer_set_arr(w, key, kv->arr_type, kv->data, kv->arr_n);
        } /* other types (tokenizer strings, bools) are not needed by the model */
    }
    int keep[512] = {0};
    for (uint64_t i = 0; i < g.n_tensors && i < 512; i++) {
        const owl_gguf_tensor *t = &g.tensors[i];
        int drop = 0;
        for (int k = 0; k < 4; k++)
            if (e->drop[k])
                drop |= e->drop[k][0] == '*' ? has_suffix(t->name, e->drop[k] + 1)
                                             : has_prefix(t->name, e->drop[k]);
        if (drop)
            continue;
        keep[i] = 1;
        int64_t ne[4];
        memcpy(ne, t->ne, sizeof ne);
        snprintf(key, sizeof key, "%.*s", (int)t->name.len, t->name.data);
        if (e->halve && !strcmp(key, e->halve)) {
            ne[1] /= 2;
            keep[i] = 2;
        }
        if (quantizable(e, t))
            keep[i] = 3;
        if (gqa_tensor(e, t)) {
            keep[i] = 4;
            if (e->gqa == 2)
                ne[1] /= 2;
        }
        owl_gguf_writer_add_tensor(w, key, keep[i] == 3 ? e->qtype : t->type, t->n_dims, ne);
    }
    membuf b = {0};
    owl_status st = owl_gguf_writer_write_header(w, mem_write, &b, &err);
    for (uint64_t i = 0; st == OWL_OK && i < g.n_tensors && i < 512; i++) {
        const owl_gguf_tensor *t = &g.tensors[i];
        if (keep[i] == 3) {
            size_t row = owl_row_size(e->qtype, t->ne[0]);
            unsigned char *q = malloc(row * (size_t)t->ne[1]);
            for (int64_t r = 0; r < t->ne[1]; r++)
                owl_quantize_row_ref(e->qtype, (const float *)t->data + r * t->ne[0], q + (size_t)r * row,
                                     t->ne[0]);
            st = owl_gguf_writer_write_tensor_data(w, q, row * (size_t)t->ne[1], mem_write, &b, &err);
            free(q);
        } else if (keep[i] == 4) {
            /* 4 heads of hd rows each: keep (gqa 2) or duplicate (gqa 1) heads 0 and 2 */
            const int64_t hd = t->ne[1] / 4, row = t->ne[0];
            float *q = malloc(sizeof(float) * (size_t)(t->ne[0] * t->ne[1]));
            int64_t out_rows = 0;
            for (int h = 0; h < 4; h++) {
                int src = h & ~1;
                if (e->gqa == 2 && (h & 1))
                    continue;
                memcpy(q + out_rows * row, (const float *)t->data + src * hd * row,
                       sizeof(float) * (size_t)(hd * row));
                out_rows += hd;
            }
            st = owl_gguf_writer_write_tensor_data(w, q, sizeof(float) * (size_t)(out_rows * row), mem_write,
                                                   &b, &err);
            free(q);
        } else if (keep[i]) {
            st = owl_gguf_writer_write_tensor_data(w, t->data, keep[i] == 2 ? t->size / 2 : t->size,
                                                   mem_write, &b, &err);
        }
    }
    CHECK_MSG(st == OWL_OK, "write: %s", err.msg);
    owl_gguf_writer_free(w);
    owl_gguf_free(&g);
    free(file);
    *size = b.n;
    return b.p;
}

/* Load an edited oracle; returns the status, message in err. */
static owl_status load_edited(const gguf_edit *e, owl_err *err)
{
    size_t n = 0;
    void *buf = edited_oracle(e, &n);
    if (!buf)
        return OWL_E_IO;
    owl_model *m = NULL;
    owl_status st = owl_model_load_buffer(buf, n, NULL, &m, err);
    owl_model_free(m);
    free(buf);
    return st;
}

TEST(model_load_rejects_missing_tensor_naming_it)
{
    gguf_edit e = {.drop = {"blk.1.attn_k_img.weight"}};
    owl_err err = {0};
    CHECK_EQ_INT(load_edited(&e, &err), OWL_E_NOTFOUND);
    CHECK_MSG(strstr(err.msg, "blk.1.attn_k_img.weight") != NULL, "message: %s", err.msg);
}

TEST(model_load_rejects_wrong_shape_with_want_and_got)
{
    gguf_edit e = {.halve = "blk.1.attn_k.weight"};
    owl_err err = {0};
    CHECK_EQ_INT(load_edited(&e, &err), OWL_E_FORMAT);
    CHECK_MSG(strstr(err.msg, "blk.1.attn_k.weight: want 128x128, got 128x64") != NULL, "message: %s",
              err.msg);
}

TEST(model_load_rejects_wrong_architecture)
{
    gguf_edit e = {.arch = "gpt2"};
    owl_err err = {0};
    CHECK_EQ_INT(load_edited(&e, &err), OWL_E_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "gpt2") != NULL, "message: %s", err.msg);
}

TEST(model_load_rejects_missing_vision_tensor_and_metadata)
{
    gguf_edit e = {.drop = {"v.blk.1."}};
    owl_err err = {0};
    CHECK_EQ_INT(load_edited(&e, &err), OWL_E_NOTFOUND);
    CHECK_MSG(strstr(err.msg, "v.blk.1.ln1.weight") != NULL, "message: %s", err.msg);
    gguf_edit e2 = {.rename_from = "mplug-owl2.vision.", .rename_to = "x."};
    CHECK_EQ_INT(load_edited(&e2, &err), OWL_E_NOTFOUND);
    CHECK_MSG(strstr(err.msg, "mplug-owl2.vision.image_size") != NULL, "message: %s", err.msg);
}

TEST(model_load_truncated_file_fails_cleanly)
{
    size_t n = 0;
    void *file = owl_test_read_file(ORACLE_GGUF, &n);
    CHECK(file != NULL);
    if (!file)
        return;
    const size_t cuts[] = {0, 3, 24, 200, 4000, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        owl_model *m = (owl_model *)1;
        owl_err err = {0};
        owl_status st = owl_model_load_buffer(file, cuts[i], NULL, &m, &err);
        CHECK_MSG(st != OWL_OK && m == NULL && err.msg[0], "cut at %zu: %d", cuts[i], (int)st);
    }
    free(file);
}

/* A plain llama GGUF: the oracle without vision, abstractor and _img twins,
 * keys under llama.*. Text positions only use the text copies, so it must
 * reproduce the oracle's text case exactly. */
TEST(model_plain_llama_gguf_runs_text_case)
{
    owl_model *m = NULL;
    owl_err err = {0};
    gguf_edit e = {.drop = {"v.", "a.", "*_img.weight"}, .arch = "llama", .rename_from = "mplug-owl2.",
                   .rename_to = "llama."};
    size_t n1 = 0;
    void *b1 = edited_oracle(&e, &n1);
    if (!b1)
        return;
    owl_status st = owl_model_load_buffer(b1, n1, NULL, &m, &err);
    CHECK_MSG(st == OWL_OK, "llama load: %s", err.msg);
    if (st == OWL_OK) {
        owl_model_info info;
        owl_model_get_info(m, &info);
        CHECK(!info.has_vision && !strcmp(info.arch, "llama"));
        owl_session *s = new_session(m, OWL_TYPE_F32, 1, NULL);
        int64_t L = 0;
        float *lg = s ? run_prefill(m, s, "text", 0, &L) : NULL;
        if (lg)
            check_close("text", "prefill_logits", lg, (size_t)(L * info.n_vocab));
        /* an image placeholder or image modality is refused */
        int32_t ids[2] = {1, OWL_IMAGE_TOKEN};
        CHECK_EQ_INT(owl_session_prefill(s, ids, 2, NULL, NULL), OWL_E_INVALID);
        uint8_t mod = 1;
        float x[128] = {0};
        CHECK_EQ_INT(owl_session_run_layers(s, 0, 1, x, 1, 0, &mod), OWL_E_INVALID);
        free(lg);
        owl_session_free(s);
    }
    owl_model_free(m);
    free(b1);
}

/* ---------------------------------------------------------------- bad input to sessions */

TEST(model_session_rejects_bad_ids_sizes_and_context_overflow)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    owl_session *s = new_session(m, OWL_TYPE_F16, 1, NULL);
    int32_t bad[3] = {1, 1000, 5};
    CHECK_EQ_INT(owl_session_prefill(s, bad, 3, NULL, NULL), OWL_E_INVALID);
    CHECK_MSG(strstr(owl_session_error(s), "1000") != NULL, "%s", owl_session_error(s));
    int32_t img[3] = {1, OWL_IMAGE_TOKEN, 5};
    CHECK_EQ_INT(owl_session_prefill(s, img, 3, NULL, NULL), OWL_E_INVALID); /* no image encoded */
    CHECK_EQ_INT(owl_session_prefill(s, img, 0, NULL, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_decode(s, -1, NULL), OWL_E_INVALID);
    float px[10] = {0};
    CHECK_EQ_INT(owl_session_encode_image(s, px, 10, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(owl_session_n_past(s), 0);
    int32_t many[65];
    for (int i = 0; i < 65; i++)
        many[i] = 3 + i;
    CHECK_EQ_INT(owl_session_prefill(s, many, 65, NULL, NULL), OWL_E_LIMIT); /* n_ctx 64 */
    CHECK_EQ_INT(owl_session_prefill(s, many, 64, NULL, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_decode(s, 7, NULL), OWL_E_LIMIT);
    CHECK_EQ_INT(owl_session_truncate(s, 10), OWL_OK);
    CHECK_EQ_INT(owl_session_decode(s, 7, NULL), OWL_OK);
    CHECK_EQ_INT(owl_session_n_past(s), 11);
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = 4096; /* beyond context_length 2048 */
    owl_session *s2 = NULL;
    owl_err err = {0};
    CHECK_EQ_INT(owl_session_init(m, &o, &s2, &err), OWL_E_INVALID);
    o.n_ctx = 0;
    o.kv_type = OWL_TYPE_Q4_0;
    CHECK_EQ_INT(owl_session_init(m, &o, &s2, &err), OWL_E_INVALID);
    CHECK(s2 == NULL);
    owl_session_free(s);
    owl_model_free(m);
    owl_model_free(NULL);
    owl_session_free(NULL);
}

/* Chunked prefill (n_batch smaller than the prompt, split inside the image)
 * equals one batch up to float rounding of the different matmul batches. */
TEST(model_prefill_in_batches_matches_one_batch)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    owl_session *a = new_session(m, OWL_TYPE_F32, 1, NULL);
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = 64;
    o.n_batch = 7;
    o.kv_type = OWL_TYPE_F32;
    owl_session *b = NULL;
    owl_err err = {0};
    CHECK(owl_session_init(m, &o, &b, &err) == OWL_OK);
    int64_t La = 0, Lb = 0;
    float *x = run_prefill(m, a, "img1", 1, &La);
    float *y = b ? run_prefill(m, b, "img1", 1, &Lb) : NULL;
    CHECK(x && y && La == Lb);
    if (x && y && La == Lb) {
        size_t n = (size_t)La * 1000;
        double mx = owl_test_max_abs(x, n);
        CHECK(owl_test_max_abs_diff(x, y, n) <= 1e-5 * mx);
    }
    free(x);
    free(y);
    owl_session_free(a);
    owl_session_free(b);
    owl_model_free(m);
}

/* ---------------------------------------------------------------- generation */

typedef struct {
    int n, stop_at;
    int32_t seen[64];
} gen_rec;

static int on_token(void *user, int32_t tok)
{
    gen_rec *r = user;
    if (r->n < 64)
        r->seen[r->n] = tok;
    r->n++;
    return r->stop_at && r->n >= r->stop_at;
}

TEST(model_generate_greedy_reproduces_oracle_tokens_and_cancels)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    owl_session *s = new_session(m, OWL_TYPE_F32, 1, NULL);
    int64_t L = 0;
    free(run_prefill(m, s, "img1", 1, &L));
    size_t nt = 0;
    int32_t *want = load_fixture("img1", "decode_tokens.i32", &nt);
    owl_gen_opts g = owl_gen_opts_default();
    g.n_predict = 16;
    gen_rec r = {0};
    int32_t toks[16];
    int64_t n = 0;
    CHECK(owl_session_generate(s, &g, on_token, &r, toks, &n) == OWL_OK);
    CHECK_EQ_INT(n, 16);
    CHECK_EQ_INT(r.n, 16);
    CHECK(want && nt == sizeof toks && memcmp(toks, want, sizeof toks) == 0 &&
          memcmp(r.seen, want, sizeof toks) == 0);
    CHECK_EQ_INT(owl_session_n_past(s), L + 16);
    /* the callback stops generation between tokens; the session stays usable */
    gen_rec r2 = {.stop_at = 3};
    CHECK_EQ_INT(owl_session_generate(s, &g, on_token, &r2, NULL, &n), OWL_E_CANCELLED);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(owl_session_n_past(s), L + 16 + 2);
    CHECK(owl_session_decode(s, 9, NULL) == OWL_OK);
    free(want);
    owl_session_free(s);
    owl_model_free(m);
}

TEST(model_generate_sampling_is_seeded_and_respects_top_k_1)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    int32_t a[3][12];
    for (int run = 0; run < 3; run++) {
        owl_session *s = new_session(m, OWL_TYPE_F16, 1, NULL);
        int64_t L = 0, n = 0;
        free(run_prefill(m, s, "text", 0, &L));
        owl_gen_opts g = owl_gen_opts_default();
        g.n_predict = 12;
        g.temperature = 1.5f;
        g.top_p = 0.9f;
        g.seed = run == 2 ? 99 : 7;
        g.ignore_eos = 1;
        CHECK(owl_session_generate(s, &g, NULL, NULL, a[run], &n) == OWL_OK);
        CHECK_EQ_INT(n, 12);
        owl_session_free(s);
    }
    CHECK(memcmp(a[0], a[1], sizeof a[0]) == 0);
    CHECK(memcmp(a[0], a[2], sizeof a[0]) != 0);
    /* top_k 1 at any temperature is greedy */
    owl_session *s = new_session(m, OWL_TYPE_F32, 1, NULL);
    int64_t L = 0, n = 0;
    free(run_prefill(m, s, "text", 0, &L));
    owl_gen_opts g = owl_gen_opts_default();
    g.n_predict = 4;
    g.temperature = 2.0f;
    g.top_k = 1;
    int32_t t[4];
    size_t nt = 0;
    int32_t *want = load_fixture("text", "decode_tokens.i32", &nt);
    CHECK(owl_session_generate(s, &g, NULL, NULL, t, &n) == OWL_OK);
    CHECK(want && memcmp(t, want, sizeof t) == 0);
    /* so is a top_p below the top token's probability */
    CHECK(owl_session_truncate(s, L - 1) == OWL_OK);
    int32_t last = 950; /* the prompt's last id ("ASSISTANT:" ends with it) */
    CHECK(owl_session_decode(s, last, NULL) == OWL_OK);
    g.top_k = 0;
    g.top_p = 1e-6f;
    CHECK(owl_session_generate(s, &g, NULL, NULL, t, &n) == OWL_OK);
    CHECK(want && memcmp(t, want, sizeof t) == 0);
    free(want);
    owl_session_free(s);
    owl_model_free(m);
}

/* ---------------------------------------------------------------- quantized weights */

/* Relative max diff of img1's prefill logits with every 2-D weight (incl.
 * token_embd, read row by row through owl_dequantize_row_ref) in qtype. */
static double img1_rel_diff_with(owl_type qtype)
{
    gguf_edit e = {.quant = 1, .qtype = qtype};
    size_t n = 0;
    void *buf = edited_oracle(&e, &n);
    if (!buf)
        return 1e9;
    owl_model *m = NULL;
    owl_err err = {0};
    double rel = 1e9;
    if (owl_model_load_buffer(buf, n, NULL, &m, &err) == OWL_OK) {
        owl_session *s = new_session(m, OWL_TYPE_F32, 2, NULL);
        int64_t L = 0;
        float *lg = s ? run_prefill(m, s, "img1", 1, &L) : NULL;
        size_t nr = 0;
        float *ref = load_fixture("img1", "prefill_logits.f32", &nr);
        if (lg && ref && nr == (size_t)L * 1000 * sizeof(float))
            rel = owl_test_max_abs_diff(lg, ref, (size_t)L * 1000) / owl_test_max_abs(ref, (size_t)L * 1000);
        free(lg);
        free(ref);
        owl_session_free(s);
    } else {
        CHECK_MSG(0, "load %s model: %s", owl_type_get(qtype)->name, err.msg);
    }
    owl_model_free(m);
    free(buf);
    printf("  img1/prefill_logits with %s weights: rel %.3g\n", owl_type_get(qtype)->name, rel);
    return rel;
}

TEST(model_f16_q8_0_q4_0_weights_stay_close_to_reference)
{
    CHECK(img1_rel_diff_with(OWL_TYPE_F16) < 3e-3);
    CHECK(img1_rel_diff_with(OWL_TYPE_Q8_0) < 6e-2);
    CHECK(img1_rel_diff_with(OWL_TYPE_Q4_0) < 5e-1);
}

/* opts.rearrange (the wasm engine's and owl_model_load_file's loads): a
 * matrix loaded to be multiplied (owl_load_mat) is moved in place to the
 * 4-row interleaved layout where the kernels read it so (the quantized
 * types, in SIMD builds): block b of row r of a group of k rows at (k b + r) blocks from the
 * group's start; a table (owl_load_table: token embeddings, read row by row)
 * and any matrix of a loader that may not rearrange stay as in the file.
 * (matmul_r4_layout_matches_ref_bitwise: the products on that layout keep
 * the reference's bits; the oracle model has no matrix wide enough for
 * q4_K, the wllama parity test runs q4_0, q8_0 and q4_K models end to end.) */
TEST(model_loader_rearranges_matrices_not_tables)
{
    static const owl_type types[3] = {OWL_TYPE_Q8_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K};
    for (int k = 0; k < 3; k++) {
        const owl_type qt = types[k];
        const int64_t cols = 768, rows = 6;
        const size_t row = owl_row_size(qt, cols), bsz = owl_type_get(qt)->type_size, bytes = row * (size_t)rows;
        static const char *const names[3] = {"m.weight", "t.weight", "p.weight"};
        owl_gguf_writer *w = owl_gguf_writer_init();
        const int64_t ne[4] = {cols, rows, 1, 1};
        for (int i = 0; i < 3; i++)
            CHECK(owl_gguf_writer_add_tensor(w, names[i], qt, 2, ne) == OWL_OK);
        unsigned char *orig = malloc(bytes);
        for (size_t i = 0; i < bytes; i++)
            orig[i] = (unsigned char)(i * 7 + i / 251);
        membuf b = {0};
        owl_err err = {0};
        owl_status st = owl_gguf_writer_write_header(w, mem_write, &b, &err);
        for (int i = 0; i < 3 && st == OWL_OK; i++)
            st = owl_gguf_writer_write_tensor_data(w, orig, bytes, mem_write, &b, &err);
        owl_gguf_writer_free(w);
        owl_gguf g;
        CHECK(st == OWL_OK && owl_gguf_parse(b.p, b.n, 0, b.n, &g, &err) == OWL_OK);
        if (st != OWL_OK || err.code) {
            free(b.p);
            free(orig);
            continue;
        }
        owl_blocks blocks = {0};
        owl_loader ld = {&g, NULL, 0, 0, &blocks, &err, 1};
        owl_mat m, t, p;
        CHECK(owl_load_mat(&ld, &m, names[0], cols, rows) == OWL_OK);
        CHECK(owl_load_table(&ld, &t, names[1], cols, rows) == OWL_OK);
        ld.rearrange = 0;
        CHECK(owl_load_mat(&ld, &p, names[2], cols, rows) == OWL_OK);
        CHECK(m.r4 == owl_r4_supported(qt) && t.r4 == 0 && p.r4 == 0);
        CHECK(memcmp(t.data, orig, bytes) == 0 && memcmp(p.data, orig, bytes) == 0);
        if (m.r4) {
            const unsigned char *d = m.data;
            int ok = 1;
            for (int64_t r = 0; r < rows; r++) {
                const int64_t g0 = r & ~3, kk = rows - g0 < 4 ? rows - g0 : 4;
                for (size_t bl = 0; bl < row / bsz; bl++)
                    ok &= memcmp(d + (size_t)g0 * row + (bl * (size_t)kk + (size_t)(r - g0)) * bsz,
                                 orig + (size_t)r * row + bl * bsz, bsz) == 0;
            }
            CHECK_MSG(ok, "%s: blocks not where the r4 layout puts them", owl_type_get(qt)->name);
        } else {
            CHECK(memcmp(m.data, orig, bytes) == 0);
        }
        owl_blocks_free(&blocks);
        owl_gguf_free(&g);
        free(b.p);
        free(orig);
    }
}

/* The same through a whole model: the oracle in q8_0 and in q4_0 (its
 * matrices are 64-192 columns wide, too narrow for the K-quants), loaded
 * with and without opts.rearrange: the buffer changes in SIMD builds, and
 * img1's prefill logits and the greedy tokens after them keep every bit. */
/* Load buf (rearranged or not), prefill `prompt` (img: with img1) and greedy
 * 6 tokens: *lg the prefill logits (malloc'd, NULL on failure), *L their rows,
 * tok the ids (-1 where none). */
static void load_prefill_generate(void *buf, size_t n, int rearrange, const char *prompt, int img, float **lg,
                                  int64_t *L, int32_t tok[6])
{
    owl_model_opts o = {.rearrange = rearrange};
    owl_model *m = NULL;
    owl_err err = {0};
    *lg = NULL;
    for (int i = 0; i < 6; i++)
        tok[i] = -1;
    if (!buf || owl_model_load_buffer(buf, n, &o, &m, &err) != OWL_OK) {
        CHECK_MSG(0, "%s, rearrange %d: %s", prompt, rearrange, err.msg);
        return;
    }
    owl_session *s = new_session(m, OWL_TYPE_F32, 2, NULL);
    *lg = s ? run_prefill(m, s, prompt, img, L) : NULL;
    owl_gen_opts g = owl_gen_opts_default();
    g.n_predict = 6;
    int64_t nt = 0;
    CHECK(s && owl_session_generate(s, &g, NULL, NULL, tok, &nt) == OWL_OK && nt > 0);
    owl_session_free(s);
    owl_model_free(m);
}

TEST(model_rearranged_weights_give_the_same_bits)
{
    static const owl_type types[2] = {OWL_TYPE_Q8_0, OWL_TYPE_Q4_0};
    for (int k = 0; k < 2; k++) {
        gguf_edit e = {.quant = 1, .qtype = types[k]};
        size_t n = 0;
        void *buf[2] = {edited_oracle(&e, &n), NULL};
        CHECK(buf[0] != NULL);
        if (!buf[0])
            continue;
        buf[1] = malloc(n);
        memcpy(buf[1], buf[0], n);
        float *lg[2] = {NULL, NULL};
        int32_t tok[2][6];
        int64_t L[2] = {0, 0};
        for (int r = 0; r < 2; r++)
            load_prefill_generate(buf[r], n, r, "img1", 1, &lg[r], &L[r], tok[r]);
        if (owl_r4_supported(types[k]))
            CHECK_MSG(memcmp(buf[0], buf[1], n) != 0, "%s: nothing rearranged", owl_type_get(types[k])->name);
        CHECK(lg[0] && lg[1] && L[0] == L[1]);
        if (lg[0] && lg[1] && L[0] == L[1])
            CHECK_MSG(memcmp(lg[0], lg[1], (size_t)L[0] * 1000 * sizeof(float)) == 0, "%s logits differ",
                      owl_type_get(types[k])->name);
        CHECK(memcmp(tok[0], tok[1], sizeof tok[0]) == 0);
        free(lg[0]);
        free(lg[1]);
        free(buf[0]);
        free(buf[1]);
    }
}

/* A tied head (a llama GGUF without output.weight: the head is token_embd)
 * in q8_0, loaded with and without opts.rearrange: the stage both embeds and
 * projects with the same rows, so they must stay row-major (llm.c loads them
 * as a table); rearranging them would scramble the embeddings. Same logits
 * and greedy tokens bit for bit. */
TEST(model_tied_head_is_not_rearranged)
{
    float *lg[2] = {NULL, NULL};
    int32_t tok[2][6];
    int64_t L[2] = {0, 0};
    for (int r = 0; r < 2; r++) {
        gguf_edit e = {.drop = {"v.", "a.", "*_img.weight", "output.weight"}, .arch = "llama",
                       .rename_from = "mplug-owl2.", .rename_to = "llama.", .quant = 1, .qtype = OWL_TYPE_Q8_0};
        size_t n = 0;
        void *buf = edited_oracle(&e, &n);
        load_prefill_generate(buf, n, r, "text", 0, &lg[r], &L[r], tok[r]);
        free(buf);
    }
    CHECK(lg[0] && lg[1] && L[0] == L[1]);
    if (lg[0] && lg[1] && L[0] == L[1])
        CHECK_MSG(memcmp(lg[0], lg[1], (size_t)L[0] * 1000 * sizeof(float)) == 0, "tied head: logits differ");
    CHECK(memcmp(tok[0], tok[1], sizeof tok[0]) == 0);
    free(lg[0]);
    free(lg[1]);
}

/* Grouped-query attention (llama GGUFs): a 2-KV-head model equals the 4-head
 * model whose KV heads 1, 3 repeat heads 0, 2 (query heads h use KV head h / 2). */
TEST(model_llama_gqa_equals_mha_with_repeated_kv_heads)
{
    float *lg[2] = {NULL, NULL};
    int64_t L[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        gguf_edit e = {.drop = {"v.", "a.", "*_img.weight"}, .arch = "llama", .rename_from = "mplug-owl2.",
                       .rename_to = "llama.", .gqa = k + 1};
        size_t n = 0;
        void *buf = edited_oracle(&e, &n);
        owl_model *m = NULL;
        owl_err err = {0};
        if (buf && owl_model_load_buffer(buf, n, NULL, &m, &err) == OWL_OK) {
            owl_model_info info;
            owl_model_get_info(m, &info);
            CHECK_EQ_INT(info.n_kv_heads, k == 0 ? 4 : 2);
            owl_session *s = new_session(m, OWL_TYPE_F32, 1, NULL);
            lg[k] = s ? run_prefill(m, s, "text", 0, &L[k]) : NULL;
            owl_session_free(s);
        } else {
            CHECK_MSG(0, "gqa %d: %s", k + 1, err.msg);
        }
        owl_model_free(m);
        free(buf);
    }
    CHECK(lg[0] && lg[1] && L[0] == L[1]);
    if (lg[0] && lg[1] && L[0] == L[1]) {
        size_t n = (size_t)L[0] * 1000;
        double d = owl_test_max_abs_diff(lg[0], lg[1], n), mx = owl_test_max_abs(lg[0], n);
        CHECK_MSG(d <= 1e-5 * mx, "gqa vs mha: %g (max %g)", d, mx);
        /* and it is a different model from the oracle's (heads really changed) */
        size_t nr = 0;
        float *ref = load_fixture("text", "prefill_logits.f32", &nr);
        CHECK(ref && owl_test_max_abs_diff(lg[0], ref, n) > 1e-3 * mx);
        free(ref);
    }
    free(lg[0]);
    free(lg[1]);
}

/* The repetition penalty sees the prompt and the generated ids (the session's
 * history): with a huge penalty greedy decoding never repeats one. */
TEST(model_generate_repetition_penalty_covers_prompt_and_output)
{
    owl_model *m = load_oracle(NULL);
    if (!m)
        return;
    owl_session *s = new_session(m, OWL_TYPE_F32, 1, NULL);
    int64_t L = 0, n = 0;
    free(run_prefill(m, s, "text", 0, &L));
    owl_gen_opts g = owl_gen_opts_default();
    g.n_predict = 16; /* unpenalised greedy repeats id 256 at step 15 */
    g.repetition_penalty = 1e4f;
    g.ignore_eos = 1;
    int32_t t[16];
    CHECK(owl_session_generate(s, &g, NULL, NULL, t, &n) == OWL_OK);
    CHECK_EQ_INT(n, 16);
    size_t nb = 0;
    int32_t *ids = load_fixture("text", "input_ids.i32", &nb);
    for (int i = 0; i < 16 && ids; i++) {
        for (size_t j = 0; j < nb / 4; j++)
            CHECK_MSG(t[i] != ids[j], "token %d repeats prompt id at %zu", t[i], j);
        for (int j = 0; j < i; j++)
            CHECK_MSG(t[i] != t[j], "token %d repeats output %d", t[i], j);
    }
    free(ids);
    owl_session_free(s);
    owl_model_free(m);
}

/* A stage may hold only its own bytes: stage 1 (blk.1.*, output_norm, output)
 * loaded from the file's header plus the byte range of its tensors gives the
 * same logits as stage 1 loaded from the whole file; a range that misses one
 * of its tensors is refused by name. */
TEST(model_stage_loads_from_its_byte_range_only)
{
    size_t fsz = 0;
    unsigned char *file = owl_test_read_file(ORACLE_GGUF, &fsz);
    CHECK(file != NULL);
    if (!file)
        return;
    owl_gguf g;
    owl_err err = {0};
    CHECK(owl_gguf_parse(file, fsz, 0, 0, &g, &err) == OWL_OK);
    uint64_t lo = fsz;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const owl_gguf_tensor *t = &g.tensors[i];
        if (has_prefix(t->name, "blk.1.") || has_prefix(t->name, "output"))
            if (g.data_offset + t->offset < lo)
                lo = g.data_offset + t->offset;
    }
    size_t hdr_n = g.data_offset;
    owl_gguf_free(&g);
    CHECK(lo < fsz);
    unsigned char *hdr = malloc(hdr_n), *range = malloc(fsz - lo);
    memcpy(hdr, file, hdr_n);
    memcpy(range, file + lo, fsz - lo);
    owl_model_opts o = {.layer_begin = 1, .no_vision = 1, .no_embed = 1, .header = hdr,
                        .header_size = hdr_n, .range_offset = lo, .file_size = fsz};
    owl_model *part = NULL, *whole = load_oracle(&(owl_model_opts){.layer_begin = 1, .no_vision = 1, .no_embed = 1});
    owl_status st = owl_model_load_buffer(range, fsz - lo, &o, &part, &err);
    CHECK_MSG(st == OWL_OK, "partial: %s", err.msg);
    if (part && whole) {
        float x[2][3 * 128], lg[2][3 * 1000];
        uint64_t seed = 5;
        for (int i = 0; i < 3 * 128; i++)
            x[0][i] = x[1][i] = owl_test_rand_f32(&seed, -2, 2);
        owl_model *ms[2] = {part, whole};
        for (int k = 0; k < 2; k++) {
            owl_session *s = new_session(ms[k], OWL_TYPE_F16, 1, NULL);
            CHECK(s && owl_session_run_layers(s, 1, 2, x[k], 3, 0, NULL) == OWL_OK);
            CHECK(s && owl_session_head(s, x[k], 3, lg[k]) == OWL_OK);
            owl_session_free(s);
        }
        CHECK(memcmp(lg[0], lg[1], sizeof lg[0]) == 0);
    }
    owl_model_free(part);
    /* the range starting 32 bytes late misses the first tensor of the stage */
    part = NULL;
    o.range_offset = lo + 32;
    st = owl_model_load_buffer(range + 32, fsz - lo - 32, &o, &part, &err);
    CHECK_EQ_INT(st, OWL_E_FORMAT);
    CHECK_MSG(strstr(err.msg, "outside the loaded range") != NULL, "message: %s", err.msg);
    CHECK(part == NULL);
    /* a stage that also wants layer 0 from this range is refused too */
    o.range_offset = lo;
    o.layer_begin = 0;
    st = owl_model_load_buffer(range, fsz - lo, &o, &part, &err);
    CHECK_EQ_INT(st, OWL_E_FORMAT);
    CHECK_MSG(strstr(err.msg, "blk.0.") != NULL, "message: %s", err.msg);
    owl_model_free(whole);
    free(hdr);
    free(range);
    free(file);
}
