/* test_image.c - decoding, squaring, Pillow-exact bicubic, CLIP normalisation.
 *
 * References: the oracle A fixtures (tests/fixtures/oracle_a, aspect "pad", size
 * 56) and PIL goldens written at test time by
 *   /usr/bin/python3 tests/image/gen_pil_goldens.py   (-> build/test-out/pil/)
 * The image_matches_pil_goldens_* tests fail if those are missing. */
#include <stdlib.h>

#include "../../src/image/image.h"
#include "test.h"

#define ORACLE "tests/fixtures/oracle_a/"
#define FIX "tests/fixtures/images/"
#define PIL_INDEX "build/test-out/pil/index.txt"

static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static owl_status decode_file(const char *path, owl_image *img, const owl_image_limits *lim,
                              owl_err *err)
{
    size_t n = 0;
    void *d = owl_test_read_file(path, &n);
    if (!d) {
        memset(img, 0, sizeof *img);
        return owl_err_set(err, OWL_E_IO, "cannot read %s", path);
    }
    owl_status st = owl_image_decode(d, n, img, lim, err);
    free(d);
    return st;
}

/* a deterministic test image with edges and noise */
static owl_image make_image(int w, int h, uint64_t seed)
{
    owl_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                int v = c == 0 ? x * 255 / (w > 1 ? w - 1 : 1)
                        : c == 1 ? ((x / 3 + y / 2) % 2) * 255
                                 : (x + y < (w + h) / 2 ? 20 : 235);
                v += (int)(owl_test_rand_u64(&seed) % 81) - 40;
                img.rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return img;
}

static size_t count_diff(const uint8_t *a, const uint8_t *b, size_t n, int *maxd)
{
    size_t bad = 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d) {
            bad++;
            if (d > *maxd)
                *maxd = d;
        }
    }
    return bad;
}

/* ---- oracle A: the reference pipeline's own intermediates */

static void check_oracle_image(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, ORACLE "%s.png", name);
    owl_image img;
    owl_err err = {0};
    CHECK_EQ_INT(decode_file(path, &img, NULL, &err), OWL_OK);
    size_t n_res = 0, n_pix = 0;
    snprintf(path, sizeof path, ORACLE "%s/resized_u8.i32", name);
    int32_t *want_u8 = owl_test_read_file(path, &n_res);
    snprintf(path, sizeof path, ORACLE "%s/pixel_values.f32", name);
    float *want_px = owl_test_read_file(path, &n_pix);
    CHECK_MSG(want_u8 && want_px, "missing oracle files for %s", name);
    CHECK_EQ_INT(n_res, 56 * 56 * 3 * 4);
    CHECK_EQ_INT(n_pix, 3 * 56 * 56 * 4);
    if (!img.rgb || !want_u8 || !want_px || n_res != 56 * 56 * 12 || n_pix != 56 * 56 * 12)
        goto done;
    uint8_t resized[56 * 56 * 3];
    float chw[3 * 56 * 56];
    CHECK_EQ_INT(owl_image_preprocess(&img, 56, OWL_IMAGE_PAD, clip_mean, clip_std, NULL, chw,
                                      resized, &err),
                 OWL_OK);
    int bad = 0;
    for (int i = 0; i < 56 * 56 * 3; i++)
        bad += resized[i] != want_u8[i];
    CHECK_MSG(bad == 0, "%s: %d of %d resized bytes differ", name, bad, 56 * 56 * 3);
    double md = owl_test_max_abs_diff(chw, want_px, 3 * 56 * 56);
    CHECK_MSG(md <= 1e-6, "%s: pixel_values max abs diff %g", name, md);
done:
    free(want_u8);
    free(want_px);
    owl_image_free(&img);
}

TEST(image_oracle_a_config_is_pad_56)
{
    size_t n = 0;
    char *cfg = owl_test_read_file(ORACLE "config.json", &n);
    char *pre = owl_test_read_file(ORACLE "preprocessor_config.json", &n);
    CHECK(cfg && strstr(cfg, "\"image_aspect_ratio\": \"pad\""));
    CHECK(cfg && strstr(cfg, "\"image_size\": 56"));
    CHECK(pre && strstr(pre, "0.48145466") && strstr(pre, "0.27577711"));
    free(cfg);
    free(pre);
}

TEST(image_oracle_a_img1_resized_and_pixel_values_match)
{
    check_oracle_image("img1"); /* 97x61: padded to 97x97, shrunk to 56 */
}

TEST(image_oracle_a_img2_resized_and_pixel_values_match)
{
    check_oracle_image("img2"); /* 40x40: square already, enlarged to 56 */
}

TEST(image_oracle_a_expand2square_matches)
{
    owl_image img, want, sq;
    owl_err err = {0};
    uint8_t pad[3];
    owl_image_pad_color_from_mean(clip_mean, pad);
    CHECK(pad[0] == 122 && pad[1] == 116 && pad[2] == 104);
    CHECK_EQ_INT(decode_file(ORACLE "img1.png", &img, NULL, &err), OWL_OK);
    CHECK_EQ_INT(decode_file(ORACLE "img1/expand2square.png", &want, NULL, &err), OWL_OK);
    CHECK_EQ_INT(owl_image_square(&img, OWL_IMAGE_PAD, pad, &sq, &err), OWL_OK);
    CHECK_EQ_INT(sq.w, 97);
    CHECK_EQ_INT(sq.h, 97);
    if (sq.rgb && want.rgb && want.w == 97 && want.h == 97)
        CHECK(memcmp(sq.rgb, want.rgb, 97 * 97 * 3) == 0);
    owl_image_free(&img);
    owl_image_free(&want);
    owl_image_free(&sq);
}

/* ---- PIL goldens */

static char *read_index(void)
{
    size_t n = 0;
    char *idx = owl_test_read_file(PIL_INDEX, &n);
    CHECK_MSG(idx != NULL,
              "%s missing: run /usr/bin/python3 tests/image/gen_pil_goldens.py first", PIL_INDEX);
    return idx;
}

static uint8_t *read_raw(const char *path, size_t want)
{
    size_t n = 0;
    uint8_t *d = owl_test_read_file(path, &n);
    CHECK_MSG(d && n == want, "%s: want %zu bytes, got %zu", path, want, d ? n : 0);
    if (d && n != want) {
        free(d);
        return NULL;
    }
    return d;
}

TEST(image_matches_pil_goldens_decode)
{
    char *idx = read_index();
    int cases = 0;
    for (char *line = idx ? strtok(idx, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char file[512], raw[512];
        int w, h, tol;
        if (sscanf(line, "decode %511s %d %d %511s %d", file, &w, &h, raw, &tol) != 5)
            continue;
        cases++;
        owl_image img;
        owl_err err = {0};
        owl_status st = decode_file(file, &img, NULL, &err);
        CHECK_MSG(st == OWL_OK, "%s: %s", file, err.msg);
        uint8_t *want = read_raw(raw, (size_t)w * h * 3);
        if (st == OWL_OK && want) {
            CHECK_MSG(img.w == w && img.h == h, "%s: %dx%d, PIL %dx%d", file, img.w, img.h, w, h);
            int maxd = 0;
            size_t bad = img.w == w && img.h == h ? count_diff(img.rgb, want, (size_t)w * h * 3, &maxd)
                                                  : 1;
            CHECK_MSG(maxd <= tol, "%s: %zu bytes differ from PIL, max %d (allowed %d)", file, bad,
                      maxd, tol);
        }
        free(want);
        owl_image_free(&img);
    }
    CHECK_MSG(cases >= 25, "only %d decode cases", cases);
    free(idx);
}

TEST(image_matches_pil_goldens_resize)
{
    char *idx = read_index();
    int cases = 0;
    for (char *line = idx ? strtok(idx, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char in[512], raw[512];
        int w, h, ow, oh;
        if (sscanf(line, "resize %511s %d %d %d %d %511s", in, &w, &h, &ow, &oh, raw) != 6)
            continue;
        cases++;
        owl_image img = {w, h, read_raw(in, (size_t)w * h * 3)}, out;
        uint8_t *want = read_raw(raw, (size_t)ow * oh * 3);
        owl_err err = {0};
        if (img.rgb && want) {
            CHECK_EQ_INT(owl_image_resize_bicubic(&img, ow, oh, &out, &err), OWL_OK);
            int maxd = 0;
            size_t bad = out.rgb ? count_diff(out.rgb, want, (size_t)ow * oh * 3, &maxd) : 1;
            CHECK_MSG(bad == 0, "resize %dx%d -> %dx%d: %zu bytes differ from PIL (max %d)", w, h,
                      ow, oh, bad, maxd);
            owl_image_free(&out);
        }
        free(want);
        owl_image_free(&img);
    }
    CHECK_MSG(cases >= 30, "only %d resize cases", cases);
    free(idx);
}

TEST(image_matches_pil_goldens_preprocess)
{
    char *idx = read_index();
    int cases = 0;
    for (char *line = idx ? strtok(idx, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char kind[8], in[512], mode_name[16], raw[512];
        int w, h, size;
        if (sscanf(line, "pre %7s %511s %d %d %15s %d %511s", kind, in, &w, &h, mode_name, &size,
                   raw) != 7)
            continue;
        cases++;
        owl_image img = {0};
        owl_err err = {0};
        owl_image_aspect mode = OWL_IMAGE_STRETCH;
        CHECK_EQ_INT(owl_image_aspect_from_name(mode_name, &mode, &err), OWL_OK);
        if (strcmp(kind, "png") == 0)
            CHECK_EQ_INT(decode_file(in, &img, NULL, &err), OWL_OK);
        else
            img = (owl_image){w, h, read_raw(in, (size_t)w * h * 3)};
        uint8_t *want = read_raw(raw, (size_t)size * size * 3);
        uint8_t *got = malloc((size_t)size * size * 3);
        float *chw = malloc((size_t)size * size * 3 * sizeof *chw);
        if (img.rgb && want) {
            CHECK_EQ_INT(owl_image_preprocess(&img, size, mode, clip_mean, clip_std, NULL, chw,
                                              got, &err),
                         OWL_OK);
            int maxd = 0;
            size_t bad = count_diff(got, want, (size_t)size * size * 3, &maxd);
            CHECK_MSG(bad == 0, "%s %dx%d %s %d: %zu bytes differ from PIL (max %d)", in, img.w,
                      img.h, mode_name, size, bad, maxd);
        }
        free(want);
        free(got);
        free(chw);
        owl_image_free(&img);
    }
    CHECK_MSG(cases >= 40, "only %d preprocess cases", cases);
    free(idx);
}

/* ---- decoding: formats, limits, malformed input */

TEST(image_decode_16bit_grey_clips_like_pil)
{
    /* PIL: 16-bit grey PNG opens as mode I; convert('RGB') clips, it does not scale */
    owl_image img;
    owl_err err = {0};
    CHECK_EQ_INT(decode_file(FIX "grey16.png", &img, NULL, &err), OWL_OK);
    CHECK_EQ_INT(img.w, 13);
    for (int x = 0; img.rgb && x < 13; x++) {
        int want = x * 23 > 255 ? 255 : x * 23;
        CHECK_EQ_INT(img.rgb[3 * x], want);
        CHECK_EQ_INT(img.rgb[3 * x + 2], want);
    }
    owl_image_free(&img);
}

TEST(image_decode_ignores_bad_crc)
{
    owl_image a, b, c;
    owl_err err = {0};
    CHECK_EQ_INT(decode_file(FIX "rgb8.png", &a, NULL, &err), OWL_OK);
    CHECK_EQ_INT(decode_file(FIX "crc_bad_idat.png", &b, NULL, &err), OWL_OK);
    CHECK_EQ_INT(decode_file(FIX "crc_bad_ihdr.png", &c, NULL, &err), OWL_OK);
    CHECK(a.rgb && b.rgb && c.rgb && memcmp(a.rgb, b.rgb, 13 * 7 * 3) == 0 &&
          memcmp(a.rgb, c.rgb, 13 * 7 * 3) == 0);
    owl_image_free(&a);
    owl_image_free(&b);
    owl_image_free(&c);
}

TEST(image_decode_rejects_empty_null_and_unknown)
{
    owl_image img = {7, 7, NULL};
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_decode(NULL, 10, &img, NULL, &err), OWL_E_INVALID);
    CHECK(img.w == 0 && img.rgb == NULL && err.msg[0]);
    CHECK_EQ_INT(owl_image_decode("x", 0, &img, NULL, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_decode("x", 1, NULL, NULL, &err), OWL_E_INVALID);
    CHECK_EQ_INT(decode_file(FIX "bad_magic.bin", &img, NULL, &err), OWL_E_FORMAT);
    CHECK(strstr(err.msg, "unknown format") != NULL);
    const uint8_t tga_like[18] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 24, 0};
    CHECK_EQ_INT(owl_image_decode(tga_like, sizeof tga_like, &img, NULL, &err), OWL_E_FORMAT);
    CHECK(img.rgb == NULL);
}

/* A DHT table declaring > 256 codes overflows stb 2.27's tables: refused before
 * stb runs, whether the table is in the header or between progressive scans. */
TEST(image_decode_rejects_jpeg_huffman_table_overflow)
{
    static const char *files[] = {FIX "rgb.jpg", FIX "progressive.jpg"};
    for (int f = 0; f < 2; f++) {
        size_t n = 0;
        uint8_t *d = owl_test_read_file(files[f], &n);
        CHECK(d != NULL);
        size_t at = 0, sos = 0;
        for (size_t i = 0; d && i + 1 < n; i++) {
            if (d[i] == 0xff && d[i + 1] == 0xda && !sos)
                sos = i;
            if (d[i] == 0xff && d[i + 1] == 0xc4 && (f == 0 ? at == 0 : 1))
                at = i; /* first DHT of the baseline file, last of the progressive one */
        }
        CHECK(at > 0 && (f == 0 ? at < sos : at > sos));
        for (int k = 0; d && at && k < 16; k++)
            d[at + 5 + k] = 0x20; /* 16 x 32 = 512 codes */
        owl_image img;
        owl_err err = {0};
        CHECK_EQ_INT(owl_image_decode(d, n, &img, NULL, &err), OWL_E_FORMAT);
        CHECK(strstr(err.msg, "Huffman") != NULL && img.rgb == NULL);
        free(d);
    }
}

/* inputs the fuzzer found (tests/fuzz/regressions/image/, copied here; byte 0 is
 * the fuzz target's option byte): stb's JPEG IDCT overflow and its Huffman assert */
TEST(image_decode_fuzz_regressions_never_crash)
{
    static const char *files[] = {FIX "stb_idct_overflow.jpg.bin", FIX "stb_huff_assert.jpg.bin"};
    for (int f = 0; f < 2; f++) {
        size_t n = 0;
        uint8_t *d = owl_test_read_file(files[f], &n);
        CHECK_MSG(d && n > 100, "cannot read %s", files[f]);
        if (!d || n <= 100) {
            free(d);
            continue;
        }
        CHECK(d[1] == 0xff && d[2] == 0xd8); /* a JPEG after the option byte */
        owl_image img;
        owl_err err = {0};
        owl_status st = owl_image_decode(d + 1, n - 1, &img, NULL, &err);
        CHECK(st == OWL_OK ? img.rgb != NULL && img.w > 0 && img.h > 0
                           : img.rgb == NULL && err.msg[0] != 0);
        if (st == OWL_OK) {
            float chw[3 * 20 * 20];
            CHECK_EQ_INT(owl_image_preprocess(&img, 20, OWL_IMAGE_PAD, clip_mean, clip_std, NULL,
                                              chw, NULL, &err),
                         OWL_OK);
        }
        owl_image_free(&img);
        free(d);
    }
}

/* a zero-length IDAT before the data is valid PNG (stb would memcpy into NULL) */
TEST(image_decode_png_with_empty_idat_chunk)
{
    size_t n = 0;
    uint8_t *d = owl_test_read_file(FIX "rgb8.png", &n);
    CHECK(d != NULL && n > 33);
    if (!d)
        return;
    uint8_t *e = malloc(n + 12);
    memcpy(e, d, 33); /* signature + IHDR */
    memcpy(e + 33, "\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);
    memcpy(e + 45, d + 33, n - 33);
    owl_image a, b;
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_decode(d, n, &a, NULL, &err), OWL_OK);
    CHECK_EQ_INT(owl_image_decode(e, n + 12, &b, NULL, &err), OWL_OK);
    CHECK(a.rgb && b.rgb && b.w == 13 && b.h == 7 && memcmp(a.rgb, b.rgb, 13 * 7 * 3) == 0);
    owl_image_free(&a);
    owl_image_free(&b);
    free(d);
    free(e);
}

TEST(image_decode_refuses_huge_dimensions_from_header)
{
    owl_image img;
    owl_err err = {0};
    CHECK_EQ_INT(decode_file(FIX "huge_dims.png", &img, NULL, &err), OWL_E_LIMIT); /* 100000^2 */
    CHECK(strstr(err.msg, "100000") || strstr(err.msg, "too large"));
    CHECK_EQ_INT(decode_file(FIX "big_dims.png", &img, NULL, &err), OWL_E_LIMIT); /* 20000^2 */
    CHECK(strstr(err.msg, "20000x20000") != NULL);
    /* with the limit raised the header passes and the missing data is the error */
    owl_image_limits big = {(int64_t)20000 * 20000, 0};
    CHECK_EQ_INT(decode_file(FIX "big_dims.png", &img, &big, &err), OWL_E_FORMAT);
    CHECK(img.rgb == NULL);
}

TEST(image_decode_limits_are_configurable)
{
    owl_image img;
    owl_err err = {0};
    owl_image_limits px90 = {90, 0}, px91 = {91, 0}, side12 = {0, 12}, side13 = {0, 13};
    CHECK_EQ_INT(decode_file(FIX "rgb8.png", &img, &px90, &err), OWL_E_LIMIT); /* 13x7 = 91 */
    CHECK_EQ_INT(decode_file(FIX "rgb8.png", &img, &side12, &err), OWL_E_LIMIT);
    CHECK_EQ_INT(decode_file(FIX "rgb8.png", &img, &px91, &err), OWL_OK);
    owl_image_free(&img);
    CHECK_EQ_INT(decode_file(FIX "rgb8.png", &img, &side13, &err), OWL_OK);
    owl_image_free(&img);
}

/* every prefix of each file: an error or (JPEG/GIF/BMP may decode partly) the full size */
TEST(image_decode_truncated_prefixes_never_crash)
{
    static const char *files[] = {FIX "rgb8.png", FIX "pal8_trns.png", FIX "rgb16.png",
                                  FIX "rgb.jpg", FIX "progressive.jpg", FIX "pal.gif",
                                  FIX "rgb.bmp", FIX "pal.bmp"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        size_t n = 0;
        uint8_t *d = owl_test_read_file(files[f], &n);
        CHECK_MSG(d != NULL, "cannot read %s", files[f]);
        owl_image full = {0};
        owl_err err = {0};
        if (d)
            CHECK_MSG(owl_image_decode(d, n, &full, NULL, &err) == OWL_OK, "%s: %s", files[f],
                      err.msg);
        int is_png = strstr(files[f], ".png") != NULL;
        for (size_t k = 0; d && full.rgb && k < n; k++) {
            uint8_t *p = malloc(k ? k : 1); /* fresh buffer: ASan sees any overread */
            memcpy(p, d, k);
            owl_image img;
            owl_status st = owl_image_decode(p, k, &img, NULL, &err);
            if (st == OWL_OK) {
                CHECK_MSG(img.w == full.w && img.h == full.h, "%s prefix %zu: %dx%d", files[f], k,
                          img.w, img.h);
                if (is_png) /* only a missing IEND may still decode: then all pixels are there */
                    CHECK_MSG(memcmp(img.rgb, full.rgb, (size_t)full.w * full.h * 3) == 0,
                              "%s prefix %zu decodes wrong pixels", files[f], k);
            } else {
                CHECK_MSG(err.msg[0] && img.rgb == NULL, "%s prefix %zu", files[f], k);
            }
            owl_image_free(&img);
            free(p);
        }
        owl_image_free(&full);
        free(d);
    }
}

/* every byte of small files inverted in turn: never a crash or sanitizer report */
TEST(image_decode_corrupt_bytes_never_crash)
{
    static const char *files[] = {FIX "rgb8.png", FIX "pal4.png", FIX "rgb.jpg", FIX "pal.gif",
                                  FIX "rgb.bmp"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        size_t n = 0;
        uint8_t *d = owl_test_read_file(files[f], &n);
        CHECK(d != NULL);
        int ok = 0;
        for (size_t k = 0; d && k < n; k++) {
            d[k] ^= 0xff;
            owl_image img;
            owl_err err = {0};
            owl_status st = owl_image_decode(d, n, &img, NULL, &err);
            CHECK(st == OWL_OK ? img.rgb != NULL && img.w > 0 : img.rgb == NULL && err.msg[0]);
            ok += st == OWL_OK;
            owl_image_free(&img);
            d[k] ^= 0xff;
        }
        CHECK(ok < (int)n); /* some corruptions must be detected */
        free(d);
    }
}

/* ---- RGBA input, squaring, resize, normalisation */

TEST(image_from_rgba_drops_alpha_and_honours_stride)
{
    uint8_t rgba[3 * 12]; /* 2x3 pixels, stride 12 (4 bytes of padding per row) */
    for (int i = 0; i < 36; i++)
        rgba[i] = (uint8_t)(i * 7 + 1);
    owl_image img;
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_from_rgba(rgba, 2, 3, 12, &img, &err), OWL_OK);
    CHECK(img.w == 2 && img.h == 3);
    for (int y = 0; img.rgb && y < 3; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++)
                CHECK_EQ_INT(img.rgb[(y * 2 + x) * 3 + c], rgba[y * 12 + x * 4 + c]);
    owl_image_free(&img);
    owl_image_free(&img); /* freed image: no-op */
    owl_image_free(NULL);
    CHECK_EQ_INT(owl_image_from_rgba(rgba, 2, 3, 7, &img, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_from_rgba(rgba, 0, 3, 12, &img, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_from_rgba(NULL, 2, 3, 12, &img, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_from_rgba(rgba, 70000, 1, 280000, &img, &err), OWL_E_LIMIT);
}

TEST(image_square_pad_places_wide_and_tall)
{
    const uint8_t pad[3] = {1, 2, 3};
    owl_err err = {0};
    for (int tall = 0; tall < 2; tall++) {
        owl_image img = tall ? make_image(2, 5, 1) : make_image(5, 2, 1), sq;
        CHECK_EQ_INT(owl_image_square(&img, OWL_IMAGE_PAD, pad, &sq, &err), OWL_OK);
        CHECK(sq.w == 5 && sq.h == 5);
        int ox = tall ? 1 : 0, oy = tall ? 0 : 1; /* (5-2)//2 on the short axis */
        for (int y = 0; sq.rgb && y < 5; y++)
            for (int x = 0; x < 5; x++) {
                int ix = x - ox, iy = y - oy;
                const uint8_t *p = sq.rgb + (y * 5 + x) * 3;
                if (ix >= 0 && ix < img.w && iy >= 0 && iy < img.h)
                    CHECK(memcmp(p, img.rgb + (iy * img.w + ix) * 3, 3) == 0);
                else
                    CHECK(memcmp(p, pad, 3) == 0);
            }
        owl_image_free(&sq);
        owl_image_free(&img);
    }
    owl_image img = make_image(5, 2, 1), sq;
    CHECK_EQ_INT(owl_image_square(&img, OWL_IMAGE_PAD, NULL, &sq, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_square(&img, OWL_IMAGE_CROP, NULL, &sq, &err), OWL_OK);
    CHECK(sq.w == 5 && sq.h == 2 && memcmp(sq.rgb, img.rgb, 30) == 0);
    owl_image_free(&sq);
    owl_image_free(&img);
}

TEST(image_resize_same_size_is_copy_and_rejects_bad_sizes)
{
    owl_image img = make_image(9, 4, 2), out;
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_resize_bicubic(&img, 9, 4, &out, &err), OWL_OK);
    CHECK(out.rgb && memcmp(out.rgb, img.rgb, 9 * 4 * 3) == 0);
    owl_image_free(&out);
    CHECK_EQ_INT(owl_image_resize_bicubic(&img, 0, 4, &out, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_resize_bicubic(&img, 4, -1, &out, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_resize_bicubic(&img, OWL_IMAGE_MAX_SIDE + 1, 1, &out, &err),
                 OWL_E_INVALID);
    CHECK(out.rgb == NULL);
    owl_image empty = {0};
    CHECK_EQ_INT(owl_image_resize_bicubic(&empty, 4, 4, &out, &err), OWL_E_INVALID);
    owl_image_free(&img);
}

TEST(image_resize_constant_image_stays_constant)
{
    /* the coefficients sum to 1 in fixed point: a flat image must stay flat */
    static const int sizes[][4] = {{5, 3, 448, 448}, {448, 448, 7, 5}, {1, 1, 31, 33},
                                   {1000, 3, 3, 1000}, {97, 61, 56, 56}};
    owl_err err = {0};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        owl_image img = {sizes[s][0], sizes[s][1], malloc((size_t)sizes[s][0] * sizes[s][1] * 3)};
        for (size_t i = 0; i < (size_t)img.w * img.h; i++)
            memcpy(img.rgb + 3 * i, "\xc8\x01\xff", 3);
        owl_image out;
        CHECK_EQ_INT(owl_image_resize_bicubic(&img, sizes[s][2], sizes[s][3], &out, &err), OWL_OK);
        int bad = 0;
        for (size_t i = 0; out.rgb && i < (size_t)out.w * out.h; i++)
            bad += memcmp(out.rgb + 3 * i, "\xc8\x01\xff", 3) != 0;
        CHECK_MSG(bad == 0, "case %zu: %d pixels changed", s, bad);
        owl_image_free(&out);
        owl_image_free(&img);
    }
}

/* the streaming chain equals square-then-resize with materialised images */
TEST(image_preprocess_equals_square_then_resize)
{
    static const int shapes[][2] = {{97, 61}, {61, 97}, {1, 9}, {9, 1}, {300, 7}, {33, 33}};
    static const int sizes[] = {56, 17, 448};
    const uint8_t pad[3] = {122, 116, 104};
    owl_err err = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int m = 0; m < 2; m++)
            for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
                int n = sizes[z];
                owl_image img = make_image(shapes[s][0], shapes[s][1], 3 + s), sq, rs;
                owl_image_aspect mode = m ? OWL_IMAGE_PAD : OWL_IMAGE_STRETCH;
                uint8_t *got = malloc((size_t)n * n * 3);
                float *chw = malloc((size_t)n * n * 3 * sizeof *chw);
                float *chw2 = malloc((size_t)n * n * 3 * sizeof *chw);
                CHECK_EQ_INT(owl_image_preprocess(&img, n, mode, clip_mean, clip_std, pad, chw,
                                                  got, &err),
                             OWL_OK);
                CHECK_EQ_INT(owl_image_square(&img, mode, pad, &sq, &err), OWL_OK);
                CHECK_EQ_INT(owl_image_resize_bicubic(&sq, n, n, &rs, &err), OWL_OK);
                CHECK_MSG(rs.rgb && memcmp(rs.rgb, got, (size_t)n * n * 3) == 0,
                          "%dx%d mode %d size %d", img.w, img.h, m, n);
                CHECK_EQ_INT(owl_image_normalize(&rs, clip_mean, clip_std, chw2, &err), OWL_OK);
                CHECK(memcmp(chw, chw2, (size_t)n * n * 3 * sizeof *chw) == 0);
                /* without a resized buffer the floats are the same */
                CHECK_EQ_INT(owl_image_preprocess(&img, n, mode, clip_mean, clip_std, pad, chw2,
                                                  NULL, &err),
                             OWL_OK);
                CHECK(memcmp(chw, chw2, (size_t)n * n * 3 * sizeof *chw) == 0);
                free(got);
                free(chw);
                free(chw2);
                owl_image_free(&sq);
                owl_image_free(&rs);
                owl_image_free(&img);
            }
}

TEST(image_normalize_is_chw_float32_formula)
{
    owl_image img = make_image(3, 2, 9);
    img.rgb[0] = 0;
    img.rgb[1] = 255;
    img.rgb[2] = 128;
    float chw[18];
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_normalize(&img, clip_mean, clip_std, chw, &err), OWL_OK);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++) {
            double x = img.rgb[3 * i + c] / 255.0;
            CHECK_NEAR(chw[c * 6 + i], (x - clip_mean[c]) / clip_std[c], 1e-6);
        }
    /* exact float32 steps: f32(0 * 1/255) = 0 -> -mean/std */
    CHECK(chw[0] == (0.0f - clip_mean[0]) / clip_std[0]);
    const float zero_std[3] = {1, 0, 1};
    CHECK_EQ_INT(owl_image_normalize(&img, clip_mean, zero_std, chw, &err), OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_normalize(&img, clip_mean, clip_std, NULL, &err), OWL_E_INVALID);
    owl_image_free(&img);
}

TEST(image_preprocess_rejects_bad_arguments)
{
    owl_image img = make_image(4, 3, 1), empty = {0};
    float chw[3 * 8 * 8];
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_preprocess(&img, 0, OWL_IMAGE_PAD, clip_mean, clip_std, NULL, chw,
                                      NULL, &err),
                 OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_preprocess(&empty, 8, OWL_IMAGE_PAD, clip_mean, clip_std, NULL, chw,
                                      NULL, &err),
                 OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_preprocess(&img, 8, (owl_image_aspect)7, clip_mean, clip_std, NULL,
                                      chw, NULL, &err),
                 OWL_E_INVALID);
    CHECK_EQ_INT(owl_image_preprocess(&img, 8, OWL_IMAGE_PAD, clip_mean, NULL, NULL, chw, NULL,
                                      &err),
                 OWL_E_INVALID);
    CHECK(err.msg[0] != 0);
    owl_image_free(&img);
}

TEST(image_aspect_from_name_parses_known_names)
{
    owl_image_aspect a = OWL_IMAGE_STRETCH;
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_aspect_from_name("pad", &a, &err), OWL_OK);
    CHECK_EQ_INT(a, OWL_IMAGE_PAD);
    CHECK_EQ_INT(owl_image_aspect_from_name("stretch", &a, &err), OWL_OK);
    CHECK_EQ_INT(a, OWL_IMAGE_STRETCH);
    CHECK_EQ_INT(owl_image_aspect_from_name("none", &a, &err), OWL_OK);
    CHECK_EQ_INT(a, OWL_IMAGE_CROP);
    CHECK_EQ_INT(owl_image_aspect_from_name("Pad", &a, &err), OWL_E_INVALID);
    CHECK(strstr(err.msg, "'Pad'") != NULL);
    CHECK_EQ_INT(owl_image_aspect_from_name(NULL, &a, &err), OWL_E_INVALID);
}
