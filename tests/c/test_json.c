/* test_json.c - the validating JSON parser (src/core/json.c) and SHA-256. */
#include <stdlib.h>

#include "../../src/core/json.h"
#include "../../src/core/sha256.h"
#include "test.h"

static owl_status parse(const char *s, owl_json **j)
{
    owl_err e;
    return owl_json_parse(s, strlen(s), j, &e);
}

TEST(json_parses_nested_config)
{
    const char *s = "{\"a\": 1, \"b\": [true, false, null, -2.5e3, \"x\\u00e9\\ud83d\\ude00\"],"
                    " \"c\": {\"d\": {}}, \"e\": []}";
    owl_json *j = NULL;
    CHECK_EQ_INT(parse(s, &j), OWL_OK);
    if (!j)
        return;
    int64_t a = 0;
    CHECK_EQ_INT(owl_json_get_i64(j, "a", &a, NULL), OWL_OK);
    CHECK_EQ_INT(a, 1);
    const owl_json *b = owl_json_get(j, "b");
    CHECK(b && b->type == OWL_JSON_ARRAY && b->len == 5);
    if (b && b->len == 5) {
        CHECK(b->items[0].type == OWL_JSON_BOOL && b->items[0].boolean == 1);
        CHECK(b->items[2].type == OWL_JSON_NULL);
        CHECK_NEAR(b->items[3].number, -2500.0, 0);
        CHECK(!b->items[3].is_int);
        CHECK_EQ_INT(b->items[4].len, 1 + 2 + 4);
        CHECK(!strcmp(b->items[4].str, "x\xc3\xa9\xf0\x9f\x98\x80"));
    }
    const owl_json *c = owl_json_get(j, "c");
    CHECK(c && owl_json_get(c, "d") && owl_json_get(c, "d")->type == OWL_JSON_OBJECT);
    CHECK(owl_json_get(j, "zz") == NULL);
    owl_json_free(j);
}

TEST(json_numbers_strict)
{
    static const char *good[] = {"0", "-0", "12", "1.5", "1e5", "1E+5", "2.5e-3", "-9223372036854775808"};
    static const char *bad[] = {"01", "+1", ".5", "1.", "1e", "1e+", "-", "0x10", "NaN", "Infinity", "1.2.3"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        owl_json *j = NULL;
        CHECK_MSG(parse(good[i], &j) == OWL_OK, "good number %s rejected", good[i]);
        owl_json_free(j);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        owl_json *j = NULL;
        CHECK_MSG(parse(bad[i], &j) == OWL_E_FORMAT, "bad number %s accepted", bad[i]);
        CHECK(j == NULL);
    }
    owl_json *j = NULL;
    CHECK_EQ_INT(parse("[9223372036854775807, 1e300, 123456789012]", &j), OWL_OK);
    if (j) {
        CHECK(j->items[0].is_int && j->items[0].integer == INT64_MAX);
        CHECK(!j->items[1].is_int);
        CHECK(j->items[2].is_int && j->items[2].integer == 123456789012LL);
    }
    owl_json_free(j);
}

TEST(json_rejects_bad_escapes_and_strings)
{
    static const char *bad[] = {"\"\\x\"", "\"\\u12\"", "\"\\uZZZZ\"", "\"\\ud800\"", "\"\\udc00\"",
                                "\"\\ud800\\u0041\"", "\"abc", "\"a\nb\"", "\"\xff\"", "\"\xc0\xaf\"",
                                "\"\xed\xa0\x80\"", "{\"a\":1,\"a\":2}", "{1:2}", "{\"a\" 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        owl_json *j = NULL;
        owl_err e = {0};
        CHECK_MSG(owl_json_parse(bad[i], strlen(bad[i]), &j, &e) == OWL_E_FORMAT, "accepted bad input %zu", i);
        CHECK(j == NULL);
        CHECK(strstr(e.msg, "byte") != NULL);
    }
}

TEST(json_rejects_trailing_garbage)
{
    static const char *bad[] = {"{} x", "[1] [2]", "1 2", "[1,]", "{\"a\":1,}", "", "   ", "tru", "nul", "[",
                                "\xef\xbb\xbf{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        owl_json *j = NULL;
        CHECK_MSG(parse(bad[i], &j) != OWL_OK, "accepted %zu", i);
        CHECK(j == NULL);
    }
    owl_json *j = NULL;
    CHECK_EQ_INT(parse(" \t\r\n{} \n", &j), OWL_OK);
    owl_json_free(j);
}

TEST(json_nesting_limit)
{
    char buf[2 * (OWL_JSON_MAX_DEPTH + 2) + 1];
    for (int depth = OWL_JSON_MAX_DEPTH; depth <= OWL_JSON_MAX_DEPTH + 1; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++)
            buf[n++] = '[';
        for (int i = 0; i < depth; i++)
            buf[n++] = ']';
        buf[n] = 0;
        owl_json *j = NULL;
        owl_status st = parse(buf, &j);
        CHECK_EQ_INT(st, depth <= OWL_JSON_MAX_DEPTH ? OWL_OK : OWL_E_LIMIT);
        owl_json_free(j);
    }
}

TEST(json_every_prefix_of_a_document_fails_cleanly)
{
    const char *s = "{\"w\": {\"k\": [1, 2.5, \"s\\n\"]}, \"t\": true}";
    size_t n = strlen(s);
    for (size_t len = 0; len < n; len++) {
        char *p = malloc(len ? len : 1); /* exact-size buffer: ASan catches over-reads */
        memcpy(p, s, len);
        owl_json *j = NULL;
        owl_err e;
        CHECK_MSG(owl_json_parse(p, len, &j, &e) != OWL_OK, "prefix %zu accepted", len);
        CHECK(j == NULL);
        free(p);
    }
}

TEST(json_typed_getters_name_the_key)
{
    owl_json *j = NULL;
    CHECK_EQ_INT(parse("{\"n\": 1.5, \"s\": \"x\", \"z\": null}", &j), OWL_OK);
    int64_t v;
    double d;
    const char *s;
    owl_err e = {0};
    CHECK_EQ_INT(owl_json_get_i64(j, "n", &v, &e), OWL_E_FORMAT);
    CHECK(strstr(e.msg, "\"n\"") != NULL);
    CHECK_EQ_INT(owl_json_get_i64(j, "s", &v, &e), OWL_E_FORMAT);
    CHECK_EQ_INT(owl_json_get_i64(j, "z", &v, &e), OWL_E_NOTFOUND);
    CHECK_EQ_INT(owl_json_get_f64(j, "n", &d, &e), OWL_OK);
    CHECK_NEAR(d, 1.5, 0);
    CHECK_EQ_INT(owl_json_get_str(j, "s", &s, &e), OWL_OK);
    CHECK(!strcmp(s, "x"));
    CHECK_EQ_INT(owl_json_get_str(j, "missing", &s, &e), OWL_E_NOTFOUND);
    CHECK(strstr(e.msg, "missing") != NULL);
    owl_json_free(j);
    owl_json_free(NULL);
}

static void hex_of(const void *d, size_t n, char out[65])
{
    uint8_t dg[32];
    owl_sha256_digest(d, n, dg);
    owl_sha256_hex(dg, out);
}

TEST(sha256_known_answers)
{
    char h[65];
    hex_of("", 0, h);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    hex_of("abc", 3, h);
    CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), h);
    CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

TEST(sha256_million_a_streamed_in_odd_pieces)
{
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    owl_sha256 s;
    owl_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < 1000000) { /* piece sizes 1, 2, ... 127 cross block boundaries at every offset */
        size_t k = step < 1000000 - off ? step : 1000000 - off;
        owl_sha256_update(&s, a + off, k);
        off += k;
        step = step % 127 + 1;
    }
    uint8_t d[32];
    char h[65];
    owl_sha256_final(&s, d);
    owl_sha256_hex(d, h);
    CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    hex_of(a, 1000000, h);
    CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    free(a);
}

TEST(sha256_padding_boundaries)
{
    /* lengths 55, 56, 63, 64 hit the one- vs two-block padding cases; check against streaming */
    char buf[129];
    memset(buf, 'x', sizeof buf);
    size_t lens[] = {55, 56, 57, 63, 64, 65, 119, 120, 128};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t d1[32], d2[32];
        owl_sha256_digest(buf, lens[i], d1);
        owl_sha256 s;
        owl_sha256_init(&s);
        for (size_t k = 0; k < lens[i]; k++)
            owl_sha256_update(&s, buf + k, 1);
        owl_sha256_final(&s, d2);
        CHECK_MSG(!memcmp(d1, d2, 32), "len %zu", lens[i]);
    }
    char h[65];
    hex_of(buf, 64, h); /* python: hashlib.sha256(b'x'*64) */
    CHECK(!strcmp(h, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"));
}
