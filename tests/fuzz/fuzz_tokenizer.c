/* fuzz_tokenizer.c - libFuzzer target for the tokenizer and chat template
 * (src/text/tokenizer.c, src/text/template.c) on arbitrary bytes, with the
 * oracle vocabulary (tests/fixtures/oracle_a/tokenizer.model: 1000-piece
 * LLaMA-style BPE, byte fallback).
 *
 * Input: byte 0 holds option bits, the rest is text. Per input:
 *   1. encode (add_bos / parse_special / legacy from bits 0-2): ids in range;
 *      decode them; the streaming decoder's outputs concatenated must equal
 *      the decode. With no option set and valid UTF-8 text free of U+2581,
 *      decode(encode(text)) must give the text back (sentencepiece does).
 *   2. the text's bytes as little-endian u16 ids (some out of range): decode
 *      must fail with OWL_E_INVALID exactly when one is out of range, and the
 *      streaming decoder must agree with it.
 *   3. owl_chat_tokenize(text): ids in range or OWL_IMAGE_TOKEN, one sentinel
 *      per "<|image|>".
 *   4. the text split at NUL bytes into up to 8 alternating messages (image
 *      counts from bits 3-5) through owl_chat_render, then owl_chat_tokenize.
 * The model path is OWL_FUZZ_SPM_PATH (set by tests/fuzz/run.sh), or the
 * environment variable OWL_FUZZ_TOKENIZER_MODEL. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../src/text/spm_model.h"
#include "../../src/text/template.h"
#include "../../src/text/tokenizer.h"
#include "fuzz_util.h"

#ifndef OWL_FUZZ_SPM_PATH
#define OWL_FUZZ_SPM_PATH "tests/fixtures/oracle_a/tokenizer.model"
#endif

static owl_tokenizer *tok;
static char *stream_buf;
static size_t stream_cap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("OWL_FUZZ_TOKENIZER_MODEL");
    if (!path)
        path = OWL_FUZZ_SPM_PATH;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_tokenizer: cannot open %s\n", path);
        exit(2);
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    owl_spm_model m;
    owl_err err;
    if (owl_spm_parse(buf, n, &m, &err) || owl_tokenizer_init_spm(&tok, &m, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err.msg);
        exit(2);
    }
    owl_spm_free(&m);
    stream_cap = owl_tok_stream_max_out(tok);
    stream_buf = malloc(stream_cap);
    if (!stream_buf)
        exit(2);
    return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF) without U+2581. */
static int plain_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (k == 9 || k >= n - i)
            return 0;
        c &= k == 0 ? 0x7F : k == 1 ? 0x1F : k == 2 ? 0x0F : 0x07;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            c = c << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (c < min[k] || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000) || c == 0x2581)
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Decode ids with the streaming decoder; returns the status of the first failing call. */
static owl_status stream_decode(const int32_t *ids, size_t n, char **out, size_t *len)
{
    owl_tok_stream s;
    owl_tok_stream_init(&s, tok);
    size_t cap = 64, used = 0;
    char *buf = malloc(cap);
    OWL_FUZZ_CHECK(buf != NULL);
    owl_err err;
    owl_status st = OWL_OK;
    for (size_t i = 0; i <= n; i++) {
        size_t got = 0;
        st = i < n ? owl_tok_stream_push(&s, ids[i], stream_buf, stream_cap, &got, &err)
                   : owl_tok_stream_finish(&s, stream_buf, stream_cap, &got, &err);
        if (st)
            break;
        OWL_FUZZ_CHECK(got <= stream_cap);
        if (used + got + 1 > cap) {
            cap = (used + got + 1) * 2;
            buf = realloc(buf, cap);
            OWL_FUZZ_CHECK(buf != NULL);
        }
        memcpy(buf + used, stream_buf, got);
        used += got;
    }
    buf[used] = 0;
    *out = buf;
    *len = used;
    return st;
}

/* decode and the streaming decoder must agree on ids (status and text). */
static void check_decode(const int32_t *ids, size_t n, int expect_ok)
{
    char *text = NULL, *stext = NULL;
    size_t len = 0, slen = 0;
    owl_err err;
    owl_status st = owl_tokenizer_decode(tok, ids, n, &text, &len, &err);
    owl_status sst = stream_decode(ids, n, &stext, &slen);
    if (expect_ok >= 0)
        OWL_FUZZ_CHECK((st == OWL_OK) == expect_ok);
    OWL_FUZZ_CHECK((st == OWL_OK) == (sst == OWL_OK));
    if (st == OWL_OK) {
        OWL_FUZZ_CHECK(text[len] == 0);
        OWL_FUZZ_CHECK(len == slen && !memcmp(text, stext, len));
    } else {
        OWL_FUZZ_CHECK(st == OWL_E_INVALID);
    }
    free(text);
    free(stext);
}

static void check_ids(const int32_t *ids, size_t n, int allow_image)
{
    int32_t nv = owl_tokenizer_n_vocab(tok);
    for (size_t i = 0; i < n; i++)
        OWL_FUZZ_CHECK((ids[i] >= 0 && ids[i] < nv) || (allow_image && ids[i] == OWL_IMAGE_TOKEN));
}

static size_t count_placeholders(const char *s, size_t n)
{
    const size_t pl = sizeof OWL_IMAGE_PLACEHOLDER - 1;
    size_t c = 0;
    for (size_t i = 0; i + pl <= n;)
        if (!memcmp(s + i, OWL_IMAGE_PLACEHOLDER, pl)) {
            c++;
            i += pl;
        } else {
            i++;
        }
    return c;
}

static void chat_tokenize(const char *text, size_t len, int legacy)
{
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int n_images = -1;
    owl_err err;
    if (owl_chat_tokenize(tok, text, len, legacy, &ids, &n_ids, &n_images, &err) == OWL_OK) {
        check_ids(ids, n_ids, 1);
        size_t sentinels = 0;
        for (size_t i = 0; i < n_ids; i++)
            sentinels += ids[i] == OWL_IMAGE_TOKEN;
        OWL_FUZZ_CHECK(n_images >= 0 && (size_t)n_images == sentinels);
        OWL_FUZZ_CHECK(sentinels == count_placeholders(text, len));
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const unsigned flags = data[0];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    owl_err err;

    /* 1. encode, decode, stream decode, round trip */
    owl_encode_opts eo = {(int)(flags & 1), (int)(flags >> 1 & 1), (int)(flags >> 2 & 1)};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (owl_tokenizer_encode(tok, text, len, &eo, &ids, &n_ids, &err) == OWL_OK) {
        check_ids(ids, n_ids, 0);
        check_decode(ids, n_ids, 1);
        if ((flags & 7) == 0 && plain_utf8((const uint8_t *)text, len)) {
            char *back = NULL;
            size_t blen = 0;
            OWL_FUZZ_CHECK(owl_tokenizer_decode(tok, ids, n_ids, &back, &blen, &err) == OWL_OK);
            OWL_FUZZ_CHECK(blen == len && !memcmp(back, text, len));
            free(back);
        }
    }
    free(ids);

    /* 2. arbitrary ids */
    size_t n = len / 2;
    int32_t *raw = malloc((n + 1) * sizeof *raw);
    OWL_FUZZ_CHECK(raw != NULL);
    int32_t nv = owl_tokenizer_n_vocab(tok);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        uint16_t u = (uint16_t)((uint8_t)text[2 * i] | (uint8_t)text[2 * i + 1] << 8);
        raw[i] = (int32_t)(u % (uint32_t)(nv + 4)) - 2; /* -2, -1, nv, nv+1 are out of range */
        ok &= raw[i] >= 0 && raw[i] < nv;
    }
    check_decode(raw, n, ok);
    free(raw);

    /* 3. the text as a rendered prompt */
    chat_tokenize(text, len, (int)(flags >> 2 & 1));

    /* 4. the text as messages */
    char *copy = malloc(len + 1);
    OWL_FUZZ_CHECK(copy != NULL);
    memcpy(copy, text, len);
    copy[len] = 0;
    owl_chat_msg msgs[8];
    int n_msgs = 0;
    for (char *p = copy; n_msgs < 8;) {
        msgs[n_msgs].role = n_msgs & 1 ? OWL_ROLE_ASSISTANT : OWL_ROLE_USER;
        msgs[n_msgs].text = p;
        msgs[n_msgs].n_images = (int)(flags >> (3 + n_msgs % 3) & 1);
        n_msgs++;
        size_t l = strlen(p);
        if (p + l >= copy + len)
            break;
        p += l + 1;
    }
    char *out = NULL;
    size_t out_len = 0;
    if (owl_chat_render(msgs, n_msgs, (int)(flags >> 6 & 1), &out, &out_len, &err) == OWL_OK) {
        OWL_FUZZ_CHECK(out[out_len] == 0 && strlen(out) == out_len);
        chat_tokenize(out, out_len, (int)(flags >> 7 & 1));
    }
    free(out);
    /* message text literal: image sentinels come from n_images only, and no
     * EOS/BOS appears except the template's (one EOS per closed assistant turn) */
    int32_t *mids = NULL;
    size_t n_mids = 0;
    int n_img = -1, want_img = 0, want_eos = 0;
    for (int i = 0; i < n_msgs; i++) {
        want_img += msgs[i].n_images;
        want_eos += i % 2 && (msgs[i].text[0] || msgs[i].n_images);
    }
    if (owl_chat_tokenize_msgs(tok, msgs, n_msgs, (int)(flags >> 6 & 1), (int)(flags >> 7 & 1), 0, &mids, &n_mids,
                               &n_img, &err) == OWL_OK) {
        int n_eos = 0, n_sent = 0;
        for (size_t i = 0; i < n_mids; i++) {
            OWL_FUZZ_CHECK(mids[i] == OWL_IMAGE_TOKEN || (mids[i] >= 0 && mids[i] < owl_tokenizer_n_vocab(tok)));
            n_eos += mids[i] == owl_tokenizer_eos(tok);
            n_sent += mids[i] == OWL_IMAGE_TOKEN;
        }
        OWL_FUZZ_CHECK(n_img == want_img && n_sent == want_img);
        OWL_FUZZ_CHECK(n_eos == want_eos);
    }
    free(mids);
    free(copy);
    return 0;
}
