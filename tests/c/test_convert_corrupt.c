/* test_convert_corrupt.c - owlet-convert on corrupt or hostile input: truncated
 * zips, bad pickle opcodes, compressed entries, zip64 end records, shape and
 * key mismatches, missing shards, wrong dtypes, huge sizes, wrong sin-cos
 * tables, bad configs. Each must fail with an error naming the file and the key
 * and leave no output file. Also the pickle machine on every prefix and the
 * torch reader's strided views. */
#define OWL_CONV_TEST_TAG "corrupt"
#include "convert_util.h"

/* ---------------------------------------------------------------- corrupt inputs */

TEST(convert_rejects_truncated_zip_at_many_lengths)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/pytorch_model.bin", d);
    size_t n;
    uint8_t *z = load(ORACLE "/pytorch_model.bin", &n);
    if (!z)
        return;
    size_t cuts[] = {0, 3, 22, 100, 4096, n / 2, n - 4096, n - 1000, n - 200, n - 60, n - 23, n - 22, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(write_file(p, z, cuts[i]) == 0);
        expect_fail(d, 0, "pytorch_model.bin", NULL);
    }
    free(z);
    cleanup(d);
}

static size_t find_bytes(const uint8_t *h, size_t n, const char *needle, size_t nl, size_t from)
{
    for (size_t i = from; i + nl <= n; i++)
        if (!memcmp(h + i, needle, nl))
            return i;
    return (size_t)-1;
}

/* offset of the data.pkl bytes / of its central directory record in a torch zip */
static size_t pkl_offset(const uint8_t *z, size_t n, int central)
{
    const char *sig = central ? "PK\x01\x02" : "PK\x03\x04";
    size_t hdr = central ? 46 : 30, nl_at = central ? 28 : 26;
    for (size_t i = find_bytes(z, n, sig, 4, 0); i != (size_t)-1; i = find_bytes(z, n, sig, 4, i + 4)) {
        size_t nl = (size_t)(z[i + nl_at] | z[i + nl_at + 1] << 8), xl = (size_t)(z[i + nl_at + 2] | z[i + nl_at + 3] << 8);
        if (nl >= 8 && !memcmp(z + i + hdr + nl - 8, "data.pkl", 8))
            return central ? i : i + hdr + nl + xl;
    }
    return (size_t)-1;
}

TEST(convert_rejects_bad_pickle_opcode_and_compressed_entry)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/pytorch_model.bin", d);
    size_t n;
    uint8_t *z = load(ORACLE "/pytorch_model.bin", &n);
    if (!z)
        return;
    size_t off = pkl_offset(z, n, 0);
    CHECK(off != (size_t)-1 && z[off] == 0x80 && z[off + 1] == 2);
    if (off == (size_t)-1) {
        free(z);
        return;
    }
    uint8_t keep = z[off + 2];
    z[off + 2] = 0xfe;
    CHECK(write_file(p, z, n) == 0);
    expect_fail(d, OWL_E_FORMAT, "data.pkl", "0xfe");
    z[off + 2] = keep;
    z[off + 1] = 9; /* protocol 9 */
    CHECK(write_file(p, z, n) == 0);
    expect_fail(d, OWL_E_FORMAT, "pytorch_model.bin", "protocol");
    z[off + 1] = 2;
    size_t cd = pkl_offset(z, n, 1);
    CHECK(cd != (size_t)-1);
    if (cd != (size_t)-1) {
        z[cd + 10] = 8; /* deflate */
        CHECK(write_file(p, z, n) == 0);
        expect_fail(d, OWL_E_UNSUPPORTED, "compressed", "data.pkl");
    }
    free(z);
    cleanup(d);
}

TEST(convert_rejects_shape_mismatch_naming_the_key)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    CHECK(copy_file(ORACLE "/model.safetensors", p, (size_t)-1) == 0);
    size_t n;
    char *c = (char *)load(ORACLE "/config.json", &n);
    if (!c)
        return;
    char *at = strstr(c, "\"intermediate_size\": 256");
    CHECK(at != NULL);
    if (at) {
        memcpy(at + 21, "264", 3);
        snprintf(p, sizeof p, "%s/config.json", d);
        CHECK(write_file(p, c, n) == 0);
        expect_fail(d, OWL_E_FORMAT, "model.layers.0.mlp.gate_proj.weight", "264x128");
    }
    free(c);
    cleanup(d);
}

/* a one-tensor safetensors file written by hand */
static void write_st(const char *path, const char *name, const char *dtype, const char *shape, size_t data_bytes)
{
    char h[512];
    int hl = snprintf(h, sizeof h, "{\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[0,%zu]}}", name, dtype,
                      shape, data_bytes);
    uint8_t *b = calloc(1, 8 + (size_t)hl + data_bytes);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, h, (size_t)hl);
    CHECK(write_file(path, b, 8 + (size_t)hl + data_bytes) == 0);
    free(b);
}

TEST(convert_rejects_missing_and_unknown_keys_and_missing_shard)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    write_st(p, "model.norm.weight", "F32", "[128]", 512);
    expect_fail(d, OWL_E_NOTFOUND, "model.vision_model.embeddings.patch_embed.weight", "missing");
    /* sharded: every oracle key in shard 1 plus one unknown key in shard 2 */
    owl_ckpt ck;
    owl_err e = {0};
    CHECK(owl_ckpt_open(&ck, ORACLE, "safetensors", &e) == OWL_OK);
    size_t cap = 64 * 1024, len = 0;
    char *idx = malloc(cap);
    len += (size_t)snprintf(idx + len, cap - len, "{\"metadata\":{},\"weight_map\":{");
    for (size_t i = 0; i < ck.n; i++)
        len += (size_t)snprintf(idx + len, cap - len, "\"%s\":\"a.safetensors\",", ck.t[i].name);
    size_t keep = len;
    len += (size_t)snprintf(idx + len, cap - len, "\"model.extra.weight\":\"b.safetensors\"}}");
    owl_ckpt_free(&ck);
    remove(p);
    snprintf(p, sizeof p, "%s/a.safetensors", d);
    CHECK(copy_file(ORACLE "/model.safetensors", p, (size_t)-1) == 0);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    CHECK(write_file(p, idx, len) == 0);
    expect_fail(d, OWL_E_NOTFOUND, "b.safetensors", "missing");
    snprintf(p, sizeof p, "%s/b.safetensors", d);
    write_st(p, "model.extra.weight", "F32", "[2]", 8);
    expect_fail(d, OWL_E_FORMAT, "unknown key model.extra.weight", "b.safetensors");
    /* index names a key the shard lacks */
    len = keep + (size_t)snprintf(idx + keep, cap - keep, "\"model.other\":\"b.safetensors\"}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    CHECK(write_file(p, idx, len) == 0);
    expect_fail(d, OWL_E_NOTFOUND, "model.other", "b.safetensors");
    /* shard name escaping the directory */
    len = keep + (size_t)snprintf(idx + keep, cap - keep, "\"model.x\":\"../b.safetensors\"}}");
    CHECK(write_file(p, idx, len) == 0);
    expect_fail(d, OWL_E_FORMAT, "bad shard file name", NULL);
    free(idx);
    cleanup(d);
}

TEST(convert_rejects_wrong_dtype_and_huge_sizes)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    size_t n;
    uint8_t *s = load(ORACLE "/model.safetensors", &n);
    if (!s)
        return;
    size_t at = find_bytes(s, n, "\"F32\"", 5, 8);
    CHECK(at != (size_t)-1);
    memcpy(s + at, "\"I32\"", 5);
    CHECK(write_file(p, s, n) == 0);
    expect_fail(d, OWL_E_UNSUPPORTED, "model.safetensors", "dtype");
    memcpy(s + at, "\"F32\"", 5);
    uint8_t h8[8];
    memcpy(h8, s, 8);
    memset(s, 0, 8);
    s[7] = 0x40; /* header length 2^62 */
    CHECK(write_file(p, s, n) == 0);
    expect_fail(d, OWL_E_LIMIT, "model.safetensors", "header");
    memcpy(s, h8, 8);
    CHECK(write_file(p, s, n - 100) == 0); /* data cut short */
    expect_fail(d, OWL_E_TRUNCATED, "model.safetensors", NULL);
    free(s);
    write_st(p, "model.norm.weight", "F32", "[1099511627776, 1099511627776]", 4);
    expect_fail(d, OWL_E_FORMAT, "model.norm.weight", NULL);
    write_st(p, "model.norm.weight", "F32", "[128]", 4); /* 512 bytes declared by shape, 4 by offsets */
    expect_fail(d, OWL_E_FORMAT, "model.norm.weight", "4 bytes");
    cleanup(d);
}

TEST(convert_rejects_wrong_pos_embed_table)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    size_t n;
    uint8_t *s = load(ORACLE "/model.safetensors", &n);
    owl_ckpt ck;
    owl_err e = {0};
    CHECK(owl_ckpt_open(&ck, ORACLE, "safetensors", &e) == OWL_OK);
    const char *key = "model.visual_abstractor.encoder.layers.1.crossattention.attention.k_pos_embed";
    owl_ck_tensor *t = owl_ckpt_find(&ck, key);
    CHECK(t != NULL && s != NULL);
    if (t && s) {
        float v = 0.25f; /* row 0 (CLS) must be all zero */
        memcpy(s + t->base + 4 * 7, &v, 4);
        CHECK(write_file(p, s, n) == 0);
        expect_fail(d, OWL_E_FORMAT, key, "sin-cos");
    }
    owl_ckpt_free(&ck);
    free(s);
    cleanup(d);
}

TEST(convert_rejects_bad_config)
{
    static const struct {
        const char *from, *to, *needle;
    } cases[] = {{"\"num_attention_heads\": 4,", "\"num_attention_heads\": 3,", "heads"},
                 {"\"grid_size\": 4,", "\"grid_size\": 5,", "grid_size"},
                 {"\"hidden_size\": 128,", "\"hidden_size\": -1, ", "hidden_size"},
                 {"\"vocab_size\": 1000", "\"vocab_size\": 1e40", "vocab_size"},
                 {"\"rope_scaling\": null,", "\"rope_scaling\": {}, ", "rope_scaling"},
                 {"\"visual_config\": {", "\"visual_confix\": {", "visual_config"}};
    char d[256], p[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    CHECK(copy_file(ORACLE "/model.safetensors", p, (size_t)-1) == 0);
    size_t n;
    char *c = (char *)load(ORACLE "/config.json", &n);
    snprintf(p, sizeof p, "%s/config.json", d);
    for (size_t i = 0; c && i < sizeof cases / sizeof cases[0]; i++) {
        char *m = malloc(n + 64), *at = strstr(c, cases[i].from);
        CHECK_MSG(at != NULL, "%s", cases[i].from);
        if (at) {
            size_t pre = (size_t)(at - c), fl = strlen(cases[i].from), tl = strlen(cases[i].to);
            memcpy(m, c, pre);
            memcpy(m + pre, cases[i].to, tl);
            memcpy(m + pre + tl, at + fl, n - pre - fl);
            CHECK(write_file(p, m, n - fl + tl) == 0);
            expect_fail(d, 0, "config.json", cases[i].needle);
        }
        free(m);
    }
    CHECK(write_file(p, "{\"vocab_size\": 1000", 19) == 0);
    expect_fail(d, OWL_E_FORMAT, "config.json", "json");
    free(c);
    cleanup(d);
}

/* data.pkl of the oracle: every prefix fails cleanly, single-byte corruptions never crash. */
TEST(pickle_every_prefix_and_byte_flips_fail_cleanly)
{
    size_t n;
    uint8_t *z = load(ORACLE "/pytorch_model.bin", &n);
    if (!z)
        return;
    size_t off = pkl_offset(z, n, 0), cd = pkl_offset(z, n, 1);
    CHECK(off != (size_t)-1 && cd != (size_t)-1);
    if (off == (size_t)-1 || cd == (size_t)-1) {
        free(z);
        return;
    }
    size_t len = (size_t)z[cd + 20] | (size_t)z[cd + 21] << 8 | (size_t)z[cd + 22] << 16 | (size_t)z[cd + 23] << 24;
    CHECK(len > 100 && off + len <= n);
    size_t items = 0;
    owl_err e = {0};
    CHECK_MSG(owl_ck_pickle_check(z + off, len, &items, &e) == OWL_OK, "%s", e.msg);
    CHECK_EQ_INT(items, 112);
    int bad = 0;
    for (size_t k = 0; k < len; k += k < 512 || k + 512 > len ? 1 : 61) { /* ends fully, middle sampled */
        uint8_t *p = malloc(k ? k : 1); /* exact size: ASan sees any over-read */
        memcpy(p, z + off, k);
        bad += owl_ck_pickle_check(p, k, &items, &e) == OWL_OK;
        free(p);
    }
    CHECK_EQ_INT(bad, 0);
    uint64_t rng = 7;
    uint8_t *p = malloc(len);
    for (int it = 0; it < 400; it++) {
        memcpy(p, z + off, len);
        size_t at = (size_t)(owl_test_rand_u64(&rng) % len);
        p[at] = (uint8_t)owl_test_rand_u64(&rng);
        owl_ck_pickle_check(p, len, &items, &e); /* any result; must not crash or leak */
    }
    free(p);
    free(z);
}

/* Classic end record saturated (as for > 4 GB or > 65535 entries): sizes come from the zip64 record. */
TEST(convert_reads_zip64_end_record)
{
    char d[256], p[300], a[300], b[300];
    scratch(d, sizeof d);
    copy_configs(d);
    snprintf(p, sizeof p, "%s/pytorch_model.bin", d);
    snprintf(a, sizeof a, "%s/ref.gguf", d);
    snprintf(b, sizeof b, "%s/z64.gguf", d);
    size_t n;
    uint8_t *z = load(ORACLE "/pytorch_model.bin", &n);
    if (!z)
        return;
    uint8_t *e = z + n - 22;
    CHECK(!memcmp(e, "PK\x05\x06", 4) && !memcmp(e - 20, "PK\x06\x07", 4)); /* torch writes both */
    memset(e + 8, 0xFF, 12);                                               /* counts, size, offset */
    CHECK(write_file(p, z, n) == 0);
    owl_err err = {0};
    CHECK_MSG(convert(d, b, OWL_CONV_TYPE_F32, NULL, 3200, &err) == OWL_OK, "%s", err.msg);
    CHECK(convert(ORACLE, a, OWL_CONV_TYPE_F32, "pytorch", 3200, &err) == OWL_OK);
    size_t na, nb;
    uint8_t *x = load(a, &na), *y = load(b, &nb);
    CHECK(x && y && na == nb && !memcmp(x, y, na));
    free(x);
    free(y);
    memset(e - 20, 0, 4); /* break the zip64 locator */
    CHECK(write_file(p, z, n) == 0);
    expect_fail(d, OWL_E_FORMAT, "pytorch_model.bin", "zip64");
    free(z);
    cleanup(d);
}

/* The torch reader's strided paths (whole-view cache and run by run) give the values the
 * safetensors reader gives for the same bf16 tensors. */
TEST(ckpt_strided_views_read_like_contiguous)
{
    if (!exists("build/convert-fixtures/bf16/pt")) {
        CHECK_MSG(0, "build/convert-fixtures/bf16 missing: run tests/convert/make_bf16_checkpoint.py");
        return;
    }
    owl_ckpt pt, st;
    owl_err e = {0};
    CHECK_MSG(owl_ckpt_open(&pt, "build/convert-fixtures/bf16/pt", NULL, &e) == OWL_OK, "%s", e.msg);
    CHECK_MSG(owl_ckpt_open(&st, "build/convert-fixtures/bf16/st", NULL, &e) == OWL_OK, "%s", e.msg);
    int strided = 0, compared = 0;
    for (int pass = 0; pass < 2; pass++) {
        pt.view_cache_max = pass ? 1 : 0; /* pass 1: every view read run by run */
        for (size_t i = 0; i < st.n; i++) {
            owl_ck_tensor *a = owl_ckpt_find(&pt, st.t[i].name), *b = &st.t[i];
            CHECK_MSG(a != NULL, "%s missing from the torch shards", b->name);
            if (!a)
                continue;
            int64_t n = owl_ck_numel(b);
            CHECK(owl_ck_numel(a) == n);
            float *x = malloc((size_t)n * sizeof *x + 4), *y = malloc((size_t)n * sizeof *y + 4);
            /* odd split: two reads that cut inner rows */
            int64_t cut = n / 3 + 1 < n ? n / 3 + 1 : n;
            CHECK(owl_ckpt_read(&pt, a, 0, cut, x, &e) == OWL_OK && owl_ckpt_read(&pt, a, cut, n - cut, x + cut, &e) == OWL_OK);
            CHECK(owl_ckpt_read(&st, b, 0, n, y, &e) == OWL_OK);
            CHECK_MSG(!memcmp(x, y, (size_t)n * sizeof *x), "%s differs (pass %d)", b->name, pass);
            int contiguous = 1;
            for (int64_t d = a->n_dims - 1, want = 1; d >= 0; want *= a->shape[d], d--)
                contiguous &= a->shape[d] == 1 || a->stride[d] == want;
            strided += !contiguous;
            compared++;
            free(x);
            free(y);
        }
    }
    CHECK_EQ_INT(strided, 2 * 2 * 2); /* q_proj (transposed) and v_proj.0 (column slice), 2 layers, 2 passes */
    CHECK_EQ_INT(compared, 2 * 112);
    owl_ckpt_free(&pt);
    owl_ckpt_free(&st);
}
