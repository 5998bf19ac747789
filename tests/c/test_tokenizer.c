/* test_tokenizer.c - SentencePiece model reader and LLaMA BPE tokenizer.
 *
 * Fixtures: tests/fixtures/oracle_a/tokenizer.model (vocab 1000) and
 * tokenization.json (sentencepiece and HF ids for 40 tricky strings).
 * The real LLaMA-2 model check reads build/test-out/llama2.model and
 * build/test-out/llama2_cases.bin made by tests/tokenizer/prepare.sh (make
 * test runs it first); the test fails when they are absent. */
#include <stdlib.h>
#include <time.h>

#include "../../src/core/json.h"
#include "../../src/text/spm_model.h"
#include "../../src/text/template.h"
#include "../../src/text/tokenizer.h"
#include "test.h"

#define ORACLE_MODEL "tests/fixtures/oracle_a/tokenizer.model"
#define ORACLE_JSON "tests/fixtures/oracle_a/tokenization.json"
#define LLAMA2_MODEL "build/test-out/llama2.model"
#define LLAMA2_CASES "build/test-out/llama2_cases.bin"

static owl_tokenizer *load_tok(const char *path)
{
    size_t size;
    void *data = owl_test_read_file(path, &size);
    if (!data)
        return NULL;
    owl_spm_model m;
    owl_err err = {0};
    owl_tokenizer *t = NULL;
    if (owl_spm_parse(data, size, &m, &err) == OWL_OK) {
        if (owl_tokenizer_init_spm(&t, &m, &err) != OWL_OK)
            fprintf(stderr, "init_spm: %s\n", err.msg);
        owl_spm_free(&m);
    } else {
        fprintf(stderr, "spm_parse: %s\n", err.msg);
    }
    free(data);
    return t;
}

static int ids_equal(const int32_t *a, size_t na, const owl_json *b)
{
    if (!b || b->type != OWL_JSON_ARRAY || b->len != na)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!b->items[i].is_int || b->items[i].integer != a[i])
            return 0;
    return 1;
}

/* decode through the streaming decoder, one id at a time */
static char *stream_decode(const owl_tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t step = owl_tok_stream_max_out(t);
    char *buf = malloc(step * (n + 1) + 1), *tmp = malloc(step);
    owl_tok_stream s;
    owl_tok_stream_init(&s, t);
    size_t o = 0, k;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(owl_tok_stream_push(&s, ids[i], tmp, step, &k, NULL), OWL_OK);
        /* never half a character: output ends on a character boundary */
        if (k > 0) {
            size_t j = k - 1;
            while (j > 0 && ((uint8_t)tmp[j] & 0xC0) == 0x80)
                j--;
            uint8_t b = (uint8_t)tmp[j];
            size_t want = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
            CHECK_MSG(k - j == want, "stream output ends inside a character (id %d)", ids[i]);
        }
        memcpy(buf + o, tmp, k);
        o += k;
    }
    CHECK_EQ_INT(owl_tok_stream_finish(&s, tmp, step, &k, NULL), OWL_OK);
    memcpy(buf + o, tmp, k);
    o += k;
    buf[o] = 0;
    free(tmp);
    *len = o;
    return buf;
}

// ---------------------------------------------------------------- spm_model

TEST(spm_parses_oracle_model)
{
    size_t size;
    void *data = owl_test_read_file(ORACLE_MODEL, &size);
    CHECK(data != NULL);
    if (!data)
        return;
    owl_spm_model m;
    owl_err err = {0};
    CHECK_EQ_INT(owl_spm_parse(data, size, &m, &err), OWL_OK);
    CHECK_EQ_INT(m.n_pieces, 1000);
    CHECK_EQ_INT(m.model_type, 2);
    CHECK_EQ_INT(m.byte_fallback, 1);
    CHECK_EQ_INT(m.add_dummy_prefix, 1);
    CHECK_EQ_INT(m.remove_extra_whitespaces, 0);
    CHECK_EQ_INT(m.unk_id, 0);
    CHECK_EQ_INT(m.bos_id, 1);
    CHECK_EQ_INT(m.eos_id, 2);
    CHECK_EQ_INT(m.pad_id, -1);
    CHECK_EQ_INT(m.has_charsmap, 0);
    CHECK(strcmp(m.pieces[1].piece, "<s>") == 0);
    CHECK_EQ_INT(m.pieces[0].type, OWL_SPM_UNKNOWN);
    CHECK_EQ_INT(m.pieces[2].type, OWL_SPM_CONTROL);
    CHECK(strcmp(m.pieces[3].piece, "<0x00>") == 0 && m.pieces[3].type == OWL_SPM_BYTE);
    owl_spm_free(&m);
    owl_spm_free(&m); /* emptied: second free is a no-op */
    owl_spm_free(NULL);
    free(data);
}

TEST(spm_rejects_every_truncation)
{
    size_t size;
    uint8_t *data = owl_test_read_file(ORACLE_MODEL, &size);
    CHECK(data != NULL);
    if (!data)
        return;
    /* every prefix is either rejected or parses (a prefix ending between
     * top-level fields is valid protobuf); none may crash or leak */
    int rejected = 0;
    for (size_t n = 0; n < size; n += (n < 64 ? 1 : 7)) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, data, n);
        owl_spm_model m;
        owl_err err = {0};
        owl_status st = owl_spm_parse(copy, n, &m, &err);
        if (st)
            rejected++;
        else
            owl_spm_free(&m);
        free(copy);
    }
    CHECK(rejected > 0);
    owl_spm_model m;
    CHECK_EQ_INT(owl_spm_parse(data, 5, &m, NULL), OWL_E_TRUNCATED);
    free(data);
}

TEST(spm_survives_random_mutations)
{
    /* flip bytes of the oracle model: parse either fails cleanly or yields a
     * model the tokenizer accepts or refuses without crashing (ASan run) */
    size_t size;
    uint8_t *data = owl_test_read_file(ORACLE_MODEL, &size);
    CHECK(data != NULL);
    if (!data)
        return;
    uint8_t *copy = malloc(size);
    uint64_t rs = 31337;
    int parsed = 0;
    for (int iter = 0; iter < 300; iter++) {
        memcpy(copy, data, size);
        int flips = 1 + (int)(owl_test_rand_u64(&rs) % 4);
        for (int f = 0; f < flips; f++)
            copy[owl_test_rand_u64(&rs) % size] = (uint8_t)owl_test_rand_u64(&rs);
        owl_spm_model m;
        owl_err err = {0};
        if (owl_spm_parse(copy, size, &m, &err) != OWL_OK) {
            CHECK(err.msg[0] != 0);
            continue;
        }
        parsed++;
        owl_tokenizer *t = NULL;
        if (owl_tokenizer_init_spm(&t, &m, &err) == OWL_OK) {
            int32_t *ids;
            size_t n;
            owl_encode_opts o = {1, 1, 0};
            if (owl_tokenizer_encode(t, "Hello </s>w\xc3\xb6rld", 17, &o, &ids, &n, NULL) == OWL_OK) {
                char *dec;
                size_t dl;
                if (owl_tokenizer_decode(t, ids, n, &dec, &dl, NULL) == OWL_OK)
                    free(dec);
                free(ids);
            }
            owl_tokenizer_free(t);
        }
        owl_spm_free(&m);
    }
    CHECK(parsed > 0);
    free(copy);
    free(data);
}

TEST(spm_rejects_bad_wire_data)
{
    owl_spm_model m;
    owl_err err = {0};
    /* varint of 11 bytes */
    const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_EQ_INT(owl_spm_parse(long_varint, sizeof long_varint, &m, &err), OWL_E_FORMAT);
    /* group wire type 3 */
    const uint8_t group[] = {0x0b};
    CHECK_EQ_INT(owl_spm_parse(group, sizeof group, &m, &err), OWL_E_FORMAT);
    /* pieces field as a varint */
    const uint8_t wrong_wire[] = {0x08, 0x01};
    CHECK_EQ_INT(owl_spm_parse(wrong_wire, sizeof wrong_wire, &m, &err), OWL_E_FORMAT);
    /* length beyond the buffer */
    const uint8_t too_long[] = {0x0a, 0x7f, 0x0a, 0x01, 0x61};
    CHECK_EQ_INT(owl_spm_parse(too_long, sizeof too_long, &m, &err), OWL_E_TRUNCATED);
    CHECK(strstr(err.msg, "length 127") != NULL);
    /* piece with type 9 */
    const uint8_t bad_type[] = {0x0a, 0x05, 0x0a, 0x01, 0x61, 0x18, 0x09};
    CHECK_EQ_INT(owl_spm_parse(bad_type, sizeof bad_type, &m, &err), OWL_E_FORMAT);
    /* empty piece string */
    const uint8_t empty_piece[] = {0x0a, 0x02, 0x0a, 0x00};
    CHECK_EQ_INT(owl_spm_parse(empty_piece, sizeof empty_piece, &m, &err), OWL_E_FORMAT);
    /* no pieces at all */
    CHECK_EQ_INT(owl_spm_parse("", 0, &m, &err), OWL_E_FORMAT);
    /* field number 0 */
    const uint8_t field0[] = {0x02, 0x00};
    CHECK_EQ_INT(owl_spm_parse(field0, sizeof field0, &m, &err), OWL_E_FORMAT);
}

TEST(spm_skips_unknown_fields)
{
    /* piece "a" (NORMAL, score 0.5), unknown field 9 (fixed64), unknown
     * string field 7, trainer_spec {model_type 2, unk_id 0, pad_id -1} */
    const uint8_t msg[] = {0x0a, 0x0a, 0x0a, 0x01, 0x61, 0x15, 0x00, 0x00, 0x00, 0x3f, 0x18, 0x01,
                           0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x3a, 0x02, 0x78, 0x79,
                           0x12, 0x11, 0x18, 0x02, 0xc0, 0x02, 0x00, 0xd8, 0x02, 0xff, 0xff, 0xff,
                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    owl_spm_model m;
    owl_err err = {0};
    owl_status st = owl_spm_parse(msg, sizeof msg, &m, &err);
    CHECK_MSG(st == OWL_OK, "%s", err.msg);
    if (st)
        return;
    CHECK_EQ_INT(m.n_pieces, 1);
    CHECK_NEAR(m.pieces[0].score, 0.5, 0);
    CHECK_EQ_INT(m.model_type, 2);
    CHECK_EQ_INT(m.pad_id, -1);
    owl_spm_free(&m);
}

// ---------------------------------------------------------------- oracle tokenizer

TEST(tokenizer_oracle_matches_sentencepiece_and_hf)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    size_t size;
    char *js = owl_test_read_file(ORACLE_JSON, &size);
    owl_json *root = NULL;
    CHECK(t && js);
    if (!t || !js || owl_json_parse(js, size, &root, NULL) != OWL_OK) {
        CHECK(0);
        goto done;
    }
    CHECK_EQ_INT(root->len, 40);
    int n_hf = 0;
    for (size_t c = 0; c < root->len; c++) {
        const owl_json *e = &root->items[c];
        const owl_json *text = owl_json_get(e, "text");
        const owl_json *sp_ids = owl_json_get(e, "sp_ids");
        const owl_json *sp_dec = owl_json_get(e, "sp_decoded");
        CHECK(text && sp_ids && sp_dec);
        if (!text || !sp_ids || !sp_dec)
            continue;
        int32_t *ids;
        size_t n;
        owl_encode_opts plain = {1, 0, 0};
        CHECK_EQ_INT(owl_tokenizer_encode(t, text->str, text->len, &plain, &ids, &n, NULL), OWL_OK);
        CHECK_MSG(ids_equal(ids, n, sp_ids), "sp ids differ for case %zu '%s'", c, text->str);
        char *dec;
        size_t dlen;
        CHECK_EQ_INT(owl_tokenizer_decode(t, ids, n, &dec, &dlen, NULL), OWL_OK);
        CHECK_MSG(dlen == sp_dec->len && memcmp(dec, sp_dec->str, dlen) == 0,
                  "decode differs for case %zu: '%s' vs '%s'", c, dec, sp_dec->str);
        size_t slen;
        char *sdec = stream_decode(t, ids, n, &slen);
        CHECK_MSG(slen == dlen && memcmp(sdec, dec, dlen) == 0, "stream decode differs, case %zu", c);
        free(sdec);
        free(dec);
        free(ids);
        /* HF LlamaTokenizer (legacy=False, as in the oracle's tokenizer_config) */
        const owl_json *hf = owl_json_get(e, "hf_ids");
        if (hf && hf->type == OWL_JSON_ARRAY) {
            owl_encode_opts o = {1, 1, 0};
            CHECK_EQ_INT(owl_tokenizer_encode(t, text->str, text->len, &o, &ids, &n, NULL), OWL_OK);
            CHECK_MSG(ids_equal(ids, n, hf), "hf ids differ for case %zu '%s'", c, text->str);
            free(ids);
            n_hf++;
        }
        const owl_json *hfl = owl_json_get(e, "hf_legacy_true_ids");
        if (hfl && hfl->type == OWL_JSON_ARRAY) {
            owl_encode_opts o = {1, 1, 1};
            CHECK_EQ_INT(owl_tokenizer_encode(t, text->str, text->len, &o, &ids, &n, NULL), OWL_OK);
            CHECK_MSG(ids_equal(ids, n, hfl), "hf legacy ids differ for case %zu '%s'", c, text->str);
            free(ids);
        }
    }
    CHECK_EQ_INT(n_hf, 39);
done:
    owl_json_free(root);
    free(js);
    owl_tokenizer_free(t);
}

TEST(tokenizer_special_text_is_split_only_when_asked)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    int32_t *ids;
    size_t n;
    owl_encode_opts sp = {0, 0, 0}, hf = {0, 1, 0};
    CHECK_EQ_INT(owl_tokenizer_encode(t, "</s>", 4, &sp, &ids, &n, NULL), OWL_OK);
    CHECK(n > 1);
    for (size_t i = 0; i < n; i++)
        CHECK(ids[i] != 2);
    free(ids);
    CHECK_EQ_INT(owl_tokenizer_encode(t, "</s>", 4, &hf, &ids, &n, NULL), OWL_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(ids[0], 2);
    free(ids);
    CHECK_EQ_INT(owl_tokenizer_encode(t, "<unk><s>", 8, &hf, &ids, &n, NULL), OWL_OK);
    CHECK_EQ_INT(n, 2);
    CHECK(n == 2 && ids[0] == 0 && ids[1] == 1);
    free(ids);
    owl_tokenizer_free(t);
}

TEST(tokenizer_edge_inputs)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    int32_t *ids;
    size_t n;
    /* empty: no ids (a valid allocation), BOS only with add_bos */
    CHECK_EQ_INT(owl_tokenizer_encode(t, "", 0, NULL, &ids, &n, NULL), OWL_OK);
    CHECK_EQ_INT(n, 0);
    CHECK(ids != NULL);
    free(ids);
    owl_encode_opts bos = {1, 0, 0};
    CHECK_EQ_INT(owl_tokenizer_encode(t, NULL, 0, &bos, &ids, &n, NULL), OWL_OK);
    CHECK(n == 1 && ids[0] == 1);
    free(ids);
    /* decode of nothing, of controls only */
    char *dec;
    size_t dlen;
    CHECK_EQ_INT(owl_tokenizer_decode(t, NULL, 0, &dec, &dlen, NULL), OWL_OK);
    CHECK(dlen == 0 && dec[0] == 0);
    free(dec);
    int32_t ctl[3] = {1, 2, 1};
    CHECK_EQ_INT(owl_tokenizer_decode(t, ctl, 3, &dec, &dlen, NULL), OWL_OK);
    CHECK_EQ_INT(dlen, 0);
    free(dec);
    /* ids out of range */
    int32_t bad[2] = {5, 1000};
    owl_err err = {0};
    CHECK_EQ_INT(owl_tokenizer_decode(t, bad, 2, &dec, &dlen, &err), OWL_E_INVALID);
    CHECK(strstr(err.msg, "1000") != NULL);
    int32_t neg = -200;
    CHECK_EQ_INT(owl_tokenizer_decode(t, &neg, 1, &dec, &dlen, NULL), OWL_E_INVALID);
    /* the streaming decoder wants room for its largest output */
    owl_tok_stream st;
    owl_tok_stream_init(&st, t);
    char small[4];
    size_t k;
    CHECK_EQ_INT(owl_tok_stream_push(&st, 5, small, sizeof small, &k, NULL), OWL_E_INVALID);
    CHECK_EQ_INT(k, 0);
    /* a space-only input round-trips */
    CHECK_EQ_INT(owl_tokenizer_encode(t, "  \n ", 4, NULL, &ids, &n, NULL), OWL_OK);
    CHECK_EQ_INT(owl_tokenizer_decode(t, ids, n, &dec, &dlen, NULL), OWL_OK);
    CHECK(dlen == 4 && memcmp(dec, "  \n ", 4) == 0);
    free(dec);
    free(ids);
    owl_tokenizer_free(t);
    owl_tokenizer_free(NULL);
}

TEST(tokenizer_long_input_is_fast)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    size_t len = 100 * 1024;
    char *text = malloc(len);
    uint64_t rs = 7;
    static const char *words[] = {"the ", "quick", " brown", "  fox", "\n", "1234", "caf\xc3\xa9",
                                  "\xe4\xb8\xad\xe6\x96\x87", "\t", "!", " \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < len;) {
        const char *w = words[owl_test_rand_u64(&rs) % 11];
        size_t k = strlen(w);
        if (k > len - i)
            w = "xxxxxxxxxxxx", k = len - i;
        memcpy(text + i, w, k);
        i += k;
    }
    clock_t c0 = clock();
    int32_t *ids;
    size_t n;
    CHECK_EQ_INT(owl_tokenizer_encode(t, text, len, NULL, &ids, &n, NULL), OWL_OK);
    double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK(n > len / 8 && n < len);
    CHECK_MSG(secs < 5.0, "100 KB encode took %.2f s", secs);
    char *dec;
    size_t dlen;
    CHECK_EQ_INT(owl_tokenizer_decode(t, ids, n, &dec, &dlen, NULL), OWL_OK);
    /* identity normalizer + byte fallback: the text comes back unchanged */
    CHECK(dlen == len && memcmp(dec, text, len) == 0);
    free(dec);
    free(ids);
    free(text);
    owl_tokenizer_free(t);
}

TEST(tokenizer_plain_arrays_constructor)
{
    /* a toy vocab: merges by score, ties leftmost, byte fallback */
    const char *p[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xe2\x96\x81", "a", "b", "ab", "ba",
                       "\xe2\x96\x81\x61"};
    uint32_t l[10];
    for (int i = 0; i < 10; i++)
        l[i] = (uint32_t)strlen(p[i]);
    float s[10] = {0, 0, 0, 0, -1, -2, -2, -3, -3, -4};
    int32_t ty[10] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1};
    owl_tokenizer_config cfg = owl_tokenizer_config_llama();
    owl_tokenizer *t;
    owl_err err = {0};
    CHECK_EQ_INT(owl_tokenizer_init(&t, p, l, s, ty, 10, &cfg, &err), OWL_OK);
    int32_t *ids;
    size_t n;
    /* "▁aba": pairs ▁a(-4), ab(-3), ba(-3): ab wins the tie (leftmost) -> ▁ ab a */
    CHECK_EQ_INT(owl_tokenizer_encode(t, "aba", 3, NULL, &ids, &n, NULL), OWL_OK);
    CHECK(n == 3 && ids[0] == 4 && ids[1] == 7 && ids[2] == 5);
    free(ids);
    /* "A" -> ▁ + byte <0x41>; "C" has no byte piece -> unk */
    CHECK_EQ_INT(owl_tokenizer_encode(t, "AC", 2, NULL, &ids, &n, NULL), OWL_OK);
    CHECK(n == 3 && ids[0] == 4 && ids[1] == 3 && ids[2] == 0);
    free(ids);
    owl_tokenizer_free(t);
    /* duplicate piece */
    const char *dup[] = {"<unk>", "a", "a"};
    uint32_t dl[] = {5, 1, 1};
    float ds[3] = {0};
    int32_t dt[] = {2, 1, 1};
    CHECK_EQ_INT(owl_tokenizer_init(&t, dup, dl, ds, dt, 3, &cfg, &err), OWL_E_FORMAT);
    CHECK(t == NULL);
    /* bos id outside the vocab */
    cfg.bos_id = 3;
    CHECK_EQ_INT(owl_tokenizer_init(&t, dup, dl, ds, dt, 2, &cfg, &err), OWL_E_INVALID);
}

TEST(tokenizer_random_utf8_round_trips)
{
    /* identity normalizer + byte fallback: decode(encode(x)) == x for valid
     * UTF-8 (the leading-space rule drops only the dummy prefix) */
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    uint64_t rs = 2024;
    char text[400];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0, want = owl_test_rand_u64(&rs) % 100;
        while (n < want) {
            uint32_t k = (uint32_t)(owl_test_rand_u64(&rs) % 6), cp;
            uint64_t r = owl_test_rand_u64(&rs);
            cp = k == 0 ? (uint32_t)(0x20 + r % 95) : k == 1 ? (uint32_t)(r % 0x80)
               : k == 2 ? (uint32_t)(0x80 + r % 0x780) : k == 3 ? (uint32_t)(0x800 + r % 0xF800)
               : k == 4 ? (uint32_t)(0x10000 + r % 0x100000) : 0x20;
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0x78; /* (U+2581 would come back as a space, as in sentencepiece) */
            if (cp < 0x80) {
                text[n++] = (char)cp;
            } else if (cp < 0x800) {
                text[n++] = (char)(0xC0 | cp >> 6);
                text[n++] = (char)(0x80 | (cp & 63));
            } else if (cp < 0x10000) {
                text[n++] = (char)(0xE0 | cp >> 12);
                text[n++] = (char)(0x80 | (cp >> 6 & 63));
                text[n++] = (char)(0x80 | (cp & 63));
            } else {
                text[n++] = (char)(0xF0 | cp >> 18);
                text[n++] = (char)(0x80 | (cp >> 12 & 63));
                text[n++] = (char)(0x80 | (cp >> 6 & 63));
                text[n++] = (char)(0x80 | (cp & 63));
            }
        }
        int32_t *ids;
        size_t ni, dl;
        char *dec;
        CHECK_EQ_INT(owl_tokenizer_encode(t, text, n, NULL, &ids, &ni, NULL), OWL_OK);
        CHECK_EQ_INT(owl_tokenizer_decode(t, ids, ni, &dec, &dl, NULL), OWL_OK);
        CHECK_MSG(dl == n && memcmp(dec, text, n) == 0, "round trip failed, iteration %d", iter);
        free(dec);
        free(ids);
    }
    owl_tokenizer_free(t);
}

TEST(tokenizer_invalid_utf8_becomes_replacement_chars)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    /* sentencepiece: each bad byte -> U+FFFD (then byte fallback) */
    const char *bad = "a\xff\xe4\xb8";
    int32_t *ids;
    size_t n, dl;
    char *dec;
    CHECK_EQ_INT(owl_tokenizer_encode(t, bad, 4, NULL, &ids, &n, NULL), OWL_OK);
    CHECK_EQ_INT(owl_tokenizer_decode(t, ids, n, &dec, &dl, NULL), OWL_OK);
    CHECK(dl == 10 && memcmp(dec, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 10) == 0);
    free(dec);
    free(ids);
    owl_tokenizer_free(t);
}

// ---------------------------------------------------------------- real LLaMA-2 model

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

TEST(tokenizer_llama2_matches_sentencepiece)
{
    size_t size;
    uint8_t *cases = owl_test_read_file(LLAMA2_CASES, &size);
    owl_tokenizer *t = cases ? load_tok(LLAMA2_MODEL) : NULL;
    if (!cases || !t) {
        CHECK_MSG(0, "%s / %s absent: run tests/tokenizer/prepare.sh (make test does)",
                  LLAMA2_MODEL, LLAMA2_CASES);
        free(cases);
        owl_tokenizer_free(t);
        return;
    }
    CHECK_EQ_INT(owl_tokenizer_n_vocab(t), 32000);
    /* spec §7 ids */
    CHECK_EQ_INT(owl_tokenizer_find(t, "<0x0A>", 6), 13);
    CHECK_EQ_INT(owl_tokenizer_find(t, "\xe2\x96\x81", 3), 29871);
    size_t pos = 12, n_enc = 0, n_dec = 0, bad_enc = 0, bad_dec = 0;
    uint32_t n_cases = size >= 12 && memcmp(cases, "OWLTOK1\n", 8) == 0 ? rd32(cases + 8) : 0;
    CHECK(n_cases >= 2000);
    for (uint32_t c = 0; c < n_cases; c++) {
        if (size - pos < 5)
            break;
        int kind = cases[pos];
        uint32_t tl = rd32(cases + pos + 1);
        const char *text = (const char *)cases + pos + 5;
        pos += 5 + tl;
        uint32_t ni = rd32(cases + pos);
        int32_t *want = malloc((size_t)ni * 4 + 4);
        memcpy(want, cases + pos + 4, (size_t)ni * 4);
        pos += 4 + (size_t)ni * 4;
        uint32_t dl = rd32(cases + pos);
        const char *wdec = (const char *)cases + pos + 4;
        pos += 4 + dl;
        if (kind == 0) {
            int32_t *ids;
            size_t n;
            n_enc++;
            CHECK_EQ_INT(owl_tokenizer_encode(t, text, tl, NULL, &ids, &n, NULL), OWL_OK);
            if (n != ni || memcmp(ids, want, n * 4) != 0) {
                if (bad_enc++ < 5)
                    fprintf(stderr, "llama2 encode mismatch, case %u (%u bytes): '%.*s'\n", c, tl,
                            (int)(tl > 80 ? 80 : tl), text);
            }
            free(ids);
        }
        n_dec++;
        char *dec;
        size_t dlen, slen;
        CHECK_EQ_INT(owl_tokenizer_decode(t, want, ni, &dec, &dlen, NULL), OWL_OK);
        char *sdec = stream_decode(t, want, ni, &slen);
        if (dlen != dl || memcmp(dec, wdec, dl) != 0 || slen != dl || memcmp(sdec, wdec, dl) != 0) {
            if (bad_dec++ < 5)
                fprintf(stderr, "llama2 decode mismatch, case %u: got '%s' want '%.*s'\n", c, dec,
                        (int)dl, wdec);
        }
        free(sdec);
        free(dec);
        free(want);
    }
    CHECK_EQ_INT(pos, size);
    /* 100 KB of mixed text with the 32000-piece vocab */
    size_t len = 100 * 1024;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = "Hello, world! \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 12 \n"[i % 32];
    clock_t c0 = clock();
    int32_t *ids;
    size_t n;
    CHECK_EQ_INT(owl_tokenizer_encode(t, big, len, NULL, &ids, &n, NULL), OWL_OK);
    double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK_MSG(secs < 5.0, "100 KB encode took %.2f s", secs);
    printf("tokenizer_llama2: 100 KB -> %zu ids in %.3f s\n", n, secs);
    free(ids);
    free(big);
    CHECK_EQ_INT(bad_enc, 0);
    CHECK_EQ_INT(bad_dec, 0);
    printf("tokenizer_llama2_matches_sentencepiece: %zu encode, %zu decode cases, %zu + %zu mismatches\n",
           n_enc, n_dec, bad_enc, bad_dec);
    free(cases);
    owl_tokenizer_free(t);
}

// ---------------------------------------------------------------- GGUF path

typedef struct {
    uint8_t *p;
    size_t n, cap;
} membuf;

static int mem_write(void *user, const void *data, size_t n)
{
    membuf *m = user;
    if (m->n + n > m->cap) {
        size_t nc = (m->n + n) * 2;
        uint8_t *np = realloc(m->p, nc);
        if (!np)
            return -1;
        m->p = np;
        m->cap = nc;
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
    return 0;
}

TEST(tokenizer_from_gguf_metadata_matches_spm)
{
    size_t size;
    void *data = owl_test_read_file(ORACLE_MODEL, &size);
    owl_spm_model m;
    CHECK(data && owl_spm_parse(data, size, &m, NULL) == OWL_OK);
    free(data);
    if (!data)
        return;
    int32_t n = m.n_pieces;
    const char **toks = malloc((size_t)n * sizeof *toks);
    float *scores = malloc((size_t)n * 4);
    int32_t *types = malloc((size_t)n * 4);
    for (int32_t i = 0; i < n; i++) {
        toks[i] = m.pieces[i].piece;
        scores[i] = m.pieces[i].score;
        types[i] = m.pieces[i].type;
    }
    owl_gguf_writer *w = owl_gguf_writer_init();
    CHECK(w != NULL);
    CHECK_EQ_INT(owl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", OWL_GGUF_FLOAT32, scores,
                                         (uint64_t)n), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", OWL_GGUF_INT32, types,
                                         (uint64_t)n), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2), OWL_OK);
    CHECK_EQ_INT(owl_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0), OWL_OK);
    membuf mb = {0};
    owl_err err = {0};
    CHECK_EQ_INT(owl_gguf_writer_write_header(w, mem_write, &mb, &err), OWL_OK);
    owl_gguf g;
    owl_status st = owl_gguf_parse(mb.p, mb.n, 0, 0, &g, &err);
    CHECK_MSG(st == OWL_OK, "%s", err.msg);
    owl_tokenizer *tg = NULL, *ts = NULL;
    if (!st) {
        CHECK_EQ_INT(owl_tokenizer_init_gguf(&tg, &g, &err), OWL_OK);
        CHECK_EQ_INT(owl_tokenizer_init_spm(&ts, &m, &err), OWL_OK);
    }
    if (tg && ts) {
        const char *text = "USER: Hello</s> w\xc3\xb6rld \xf0\x9f\x98\x80\n";
        owl_encode_opts o = {1, 1, 0};
        int32_t *a, *b;
        size_t na, nb;
        CHECK_EQ_INT(owl_tokenizer_encode(tg, text, strlen(text), &o, &a, &na, NULL), OWL_OK);
        CHECK_EQ_INT(owl_tokenizer_encode(ts, text, strlen(text), &o, &b, &nb, NULL), OWL_OK);
        CHECK(na == nb && memcmp(a, b, na * 4) == 0);
        CHECK_EQ_INT(owl_tokenizer_eos(tg), 2);
        free(a);
        free(b);
    }
    owl_tokenizer_free(tg);
    owl_tokenizer_free(ts);
    if (!st)
        owl_gguf_free(&g);
    /* a non-llama tokenizer model is refused */
    owl_gguf_writer *w2 = owl_gguf_writer_init();
    owl_gguf_writer_set_str(w2, "tokenizer.ggml.model", "gpt2");
    membuf mb2 = {0};
    owl_gguf_writer_write_header(w2, mem_write, &mb2, NULL);
    if (owl_gguf_parse(mb2.p, mb2.n, 0, 0, &g, NULL) == OWL_OK) {
        CHECK_EQ_INT(owl_tokenizer_init_gguf(&tg, &g, &err), OWL_E_UNSUPPORTED);
        owl_gguf_free(&g);
    }
    owl_gguf_writer_free(w2);
    free(mb2.p);
    owl_gguf_writer_free(w);
    free(mb.p);
    free(toks);
    free(scores);
    free(types);
    owl_spm_free(&m);
}

/* ---------------------------------------------------------------- user text stays text (issue 22.3) */

static int has_id(const int32_t *ids, size_t n, size_t from, int32_t id)
{
    for (size_t i = from; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

TEST(tokenizer_literal_ranges_keep_special_text_as_text)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    owl_encode_opts hf = {1, 1, 0}, plain = {1, 0, 0};
    const char *x = "a</s>b<s>c";
    size_t whole[2] = {0, 10}, part[2] = {0, 1};
    int32_t *a = NULL, *b = NULL, *c = NULL;
    size_t na = 0, nb = 0, nc = 0;
    /* the whole text literal: the same ids as plain sentencepiece */
    CHECK_EQ_INT(owl_tokenizer_encode_literal(t, x, 10, &hf, whole, 1, &a, &na, NULL), OWL_OK);
    CHECK_EQ_INT(owl_tokenizer_encode(t, x, 10, &plain, &b, &nb, NULL), OWL_OK);
    CHECK(na == nb && a && b && !memcmp(a, b, na * sizeof *a));
    CHECK(!has_id(a, na, 1, 1) && !has_id(a, na, 0, 2));
    /* a range over "a" only: "</s>" and "<s>" outside it are parsed */
    CHECK_EQ_INT(owl_tokenizer_encode_literal(t, x, 10, &hf, part, 1, &c, &nc, NULL), OWL_OK);
    CHECK(has_id(c, nc, 0, 2) && has_id(c, nc, 1, 1));
    /* a special piece that only partly overlaps a range is text too */
    size_t tail[2] = {3, 4};
    free(c);
    CHECK_EQ_INT(owl_tokenizer_encode_literal(t, x, 10, &hf, tail, 1, &c, &nc, NULL), OWL_OK);
    CHECK(!has_id(c, nc, 0, 2) && has_id(c, nc, 1, 1));
    owl_err err = {0};
    free(c);
    c = NULL;
    CHECK_EQ_INT(owl_tokenizer_encode_literal(t, x, 10, &hf, NULL, 1, &c, &nc, &err), OWL_E_INVALID);
    free(a);
    free(b);
    free(c);
    owl_tokenizer_free(t);
}

/* Was: owlet tokenize --chat 'a</s>b<s>c<|image|>d' gave EOS, BOS and the
 * image sentinel: a user could end the turn or place an image by typing. */
TEST(chat_message_text_is_literal_by_default)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    owl_chat_msg m = {OWL_ROLE_USER, "a</s>b<s>c<|image|>d", 0};
    int32_t *ids = NULL, *ref = NULL;
    size_t n = 0, nr = 0;
    int ni = -1;
    CHECK_EQ_INT(owl_chat_tokenize_msgs(t, &m, 1, 1, 0, 0, &ids, &n, &ni, NULL), OWL_OK);
    CHECK_EQ_INT(ni, 0);
    CHECK(n > 0 && ids[0] == 1);
    CHECK(!has_id(ids, n, 1, 1) && !has_id(ids, n, 0, 2) && !has_id(ids, n, 0, OWL_IMAGE_TOKEN));
    free(ids);
    /* the explicit option gives the reference's parsing: owl_chat_tokenize of the render */
    char *p = NULL;
    size_t pl = 0;
    CHECK_EQ_INT(owl_chat_tokenize_msgs(t, &m, 1, 1, 0, 1, &ids, &n, &ni, NULL), OWL_OK);
    CHECK_EQ_INT(owl_chat_render(&m, 1, 1, &p, &pl, NULL), OWL_OK);
    CHECK_EQ_INT(owl_chat_tokenize(t, p, pl, 0, &ref, &nr, NULL, NULL), OWL_OK);
    CHECK(n == nr && ids && ref && !memcmp(ids, ref, n * sizeof *ids));
    CHECK_EQ_INT(ni, 1);
    CHECK(has_id(ids, n, 0, 2) && has_id(ids, n, 0, OWL_IMAGE_TOKEN));
    free(ids);
    free(ref);
    free(p);
    owl_tokenizer_free(t);
}

/* Text without special strings: exactly the reference's ids (template
 * separators "</s>" still EOS, images from n_images), over a multi-turn chat. */
TEST(chat_literal_tokenize_equals_reference_for_ordinary_text)
{
    owl_tokenizer *t = load_tok(ORACLE_MODEL);
    CHECK(t != NULL);
    if (!t)
        return;
    owl_chat_msg m[5] = {{OWL_ROLE_USER, "What is this?", 2}, {OWL_ROLE_ASSISTANT, "A red square.", 0},
                         {OWL_ROLE_USER, "", 1}, {OWL_ROLE_ASSISTANT, "", 0},
                         {OWL_ROLE_USER, " and  then <s ok /s>", 0}};
    for (int k = 1; k <= 5; k++)
        for (int gen = 0; gen < 2; gen++) {
            int32_t *ids = NULL, *ref = NULL;
            size_t n = 0, nr = 0;
            int ni = 0, nri = 0;
            char *p = NULL;
            size_t pl = 0;
            CHECK_EQ_INT(owl_chat_tokenize_msgs(t, m, k, gen, 0, 0, &ids, &n, &ni, NULL), OWL_OK);
            CHECK_EQ_INT(owl_chat_render(m, k, gen, &p, &pl, NULL), OWL_OK);
            CHECK_EQ_INT(owl_chat_tokenize(t, p, pl, 0, &ref, &nr, &nri, NULL), OWL_OK);
            CHECK_MSG(n == nr && ids && ref && !memcmp(ids, ref, n * sizeof *ids) && ni == nri,
                      "%d messages, gen %d: %zu vs %zu ids", k, gen, n, nr);
            if (k >= 2)
                CHECK(has_id(ids, n, 0, 2)); /* the assistant turn's "</s>" */
            free(ids);
            free(ref);
            free(p);
        }
    owl_tokenizer_free(t);
}
