/* test_reliability.c - regressions of issue 22 (Reliability II) that belong to
 * no single module's test file: bounded image squaring, converter outputs that
 * never clobber, split cleanup on a full disk, safetensors aliasing, messages. */
#include <stdlib.h>
#include <time.h>

#include "../../src/image/image.h"

#define FIX_IMAGES "tests/fixtures/images/"
#include "test.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: a busy machine does not count */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const float k_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float k_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* noise plus a ramp, deterministic */
static owl_image noise_image(int w, int h)
{
    owl_image img = {w, h, malloc((size_t)w * (size_t)h * 3)};
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)w * (size_t)h * 3; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        img.rgb[i] = (uint8_t)(i / 3 % 7 < 3 ? s & 255 : i / 3 * 255 / ((size_t)w * (size_t)h));
    }
    return img;
}

/* Issue 22.2: stretch of a 65536x1 image took 30-37 s (O(M^2) for M = 65536).
 * Every mode now costs O(w*h + M*S) past the exact window (1x65536 pad was 196 s
 * under ASan, now < 1 s; stretch 65536x1 10 ms natively). The 10 s bound
 * (CPU time, sanitizer build) only catches the hang. */
TEST(image_extreme_aspect_squaring_is_bounded_in_every_mode)
{
    static const int shapes[][2] = {{65536, 1}, {1, 65536}, {65536, 3}, {16384, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int mode = 0; mode < 3; mode++) {
            owl_image img = noise_image(shapes[s][0], shapes[s][1]);
            float *chw = malloc(3 * 224 * 224 * sizeof *chw);
            owl_err err = {0};
            double t0 = now_s();
            CHECK_EQ_INT(owl_image_preprocess(&img, 224, (owl_image_aspect)mode, k_mean, k_std, NULL, chw,
                                              NULL, &err), OWL_OK);
            double dt = now_s() - t0;
            CHECK_MSG(dt < 10.0, "%dx%d mode %d took %.2f s", img.w, img.h, mode, dt);
            free(chw);
            owl_image_free(&img);
        }
}

/* Past the exact window, stretch is one bicubic pass; measured against the
 * Pillow-exact two passes (square built, then resized) just past the window:
 * noise 4100x3 gives max 10, mean 0.37 LSB; 3x4100 max 1. */
TEST(image_stretch_one_pass_is_close_to_two_passes)
{
    static const int shapes[][3] = {{4100, 3, 12}, {3, 4100, 2}, {4100, 1, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int w = shapes[s][0], h = shapes[s][1];
        CHECK(!owl_image_stretch_exact(w, h));
        owl_image img = noise_image(w, h), sq = {0}, two = {0};
        uint8_t *one = malloc(224 * 224 * 3);
        float *chw = malloc(3 * 224 * 224 * sizeof *chw);
        owl_err err = {0};
        CHECK_EQ_INT(owl_image_preprocess(&img, 224, OWL_IMAGE_STRETCH, k_mean, k_std, NULL, chw, one, &err),
                     OWL_OK);
        CHECK_EQ_INT(owl_image_square(&img, OWL_IMAGE_STRETCH, NULL, &sq, &err), OWL_OK);
        CHECK_EQ_INT(owl_image_resize_bicubic(&sq, 224, 224, &two, &err), OWL_OK);
        int maxd = 0;
        double sum = 0;
        for (size_t i = 0; two.rgb && i < 224 * 224 * 3; i++) {
            int d = abs((int)one[i] - (int)two.rgb[i]);
            maxd = d > maxd ? d : maxd;
            sum += d;
        }
        CHECK_MSG(maxd <= shapes[s][2] && sum / (224 * 224 * 3) < 0.5, "%dx%d: max %d, mean %.3f LSB", w, h,
                  maxd, sum / (224 * 224 * 3));
        free(one);
        free(chw);
        owl_image_free(&sq);
        owl_image_free(&two);
        owl_image_free(&img);
    }
    /* inside the window nothing changed: exact (image_preprocess_equals_square_then_resize) */
    CHECK(owl_image_stretch_exact(4096, 1));
    CHECK(owl_image_stretch_exact(8192, 4096));
    CHECK(!owl_image_stretch_exact(65536, 1024));
}

TEST(image_square_refuses_a_square_over_the_pixel_limit)
{
    owl_image img = noise_image(65536, 1), out = {0};
    owl_err err = {0};
    CHECK_EQ_INT(owl_image_square(&img, OWL_IMAGE_STRETCH, NULL, &out, &err), OWL_E_LIMIT);
    CHECK_MSG(strstr(err.msg, "65536x65536") != NULL, "%s", err.msg);
    CHECK(out.rgb == NULL);
    owl_image_free(&img);
}

/* ---------------------------------------------------------------- converter outputs (issue 22.1, 22.6) */

#define OWL_CONV_TEST_TAG "rel"
#include "../../weights_tool/outfile.h"
#include "convert_util.h"

/* entries of dir whose name starts with prefix */
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

static void convert_ok(const char *out)
{
    owl_err e = {0};
    CHECK_MSG(convert(ORACLE, out, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK, "%s", e.msg);
}

/* Was: fopen("OUT.tmp", "wb") followed a symlink planted there and
 * overwrote its target with the GGUF. */
TEST(convert_never_follows_a_planted_temporary_symlink)
{
    char dir[256], out[300], planted[300], target[300];
    scratch(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    snprintf(planted, sizeof planted, "%s/out.gguf.tmp", dir);
    snprintf(target, sizeof target, "%s/victim", dir);
    CHECK(write_file(target, "precious", 8) == 0);
    CHECK(symlink(target, planted) == 0);
    convert_ok(out);
    size_t n = 0;
    char *v = owl_test_read_file(target, &n);
    CHECK_MSG(v && n == 8 && !memcmp(v, "precious", 8), "the symlink's target was overwritten (%zu bytes)", n);
    free(v);
    CHECK(exists(out));
    CHECK_EQ_INT(count_entries(dir, ".out.gguf."), 0); /* no temporary file left */
    cleanup(dir);
}

/* Was: "wrote /dev/full", exit 0 (and as root the device node replaced). */
TEST(convert_refuses_outputs_that_are_not_regular_files)
{
    char dir[256];
    scratch(dir, sizeof dir);
    owl_err e = {0};
    CHECK_EQ_INT(convert(ORACLE, dir, OWL_CONV_TYPE_F32, NULL, 3200, &e), OWL_E_INVALID);
    CHECK_MSG(strstr(e.msg, "is a directory, not a regular file"), "%s", e.msg);
    struct stat s0, s1;
    if (stat("/dev/full", &s0) == 0) {
        CHECK_EQ_INT(convert(ORACLE, "/dev/full", OWL_CONV_TYPE_F32, NULL, 3200, &e), OWL_E_INVALID);
        CHECK_MSG(strstr(e.msg, "/dev/full: the output is a character device"), "%s", e.msg);
        CHECK(stat("/dev/full", &s1) == 0 && S_ISCHR(s1.st_mode));
    }
    char lnk[300];
    snprintf(lnk, sizeof lnk, "%s/to-dir.gguf", dir); /* a symlink to a directory */
    CHECK(symlink("/tmp", lnk) == 0);
    CHECK_EQ_INT(convert(ORACLE, lnk, OWL_CONV_TYPE_F32, NULL, 3200, &e), OWL_E_INVALID);
    CHECK_EQ_INT(count_entries(dir, "."), 0);
    cleanup(dir);
}

/* Was: giving the input checkpoint as OUT silently replaced it. */
TEST(convert_refuses_an_output_that_is_one_of_its_inputs)
{
    char dir[256], ck[300], out[320], lnk[320];
    scratch(dir, sizeof dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    mkdir(ck, 0755);
    copy_configs(ck);
    snprintf(out, sizeof out, "%s/model.safetensors", ck);
    CHECK(copy_file(ORACLE "/model.safetensors", out, (size_t)-1) == 0);
    size_t n0 = 0, n1 = 0;
    uint8_t *before = load(out, &n0);
    owl_err e = {0};
    CHECK_EQ_INT(convert(ck, out, OWL_CONV_TYPE_F32, NULL, 3200, &e), OWL_E_INVALID);
    CHECK_MSG(strstr(e.msg, "the output is the input"), "%s", e.msg);
    uint8_t *after = load(out, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0));
    /* through a symlink, and the tokenizer */
    snprintf(lnk, sizeof lnk, "%s/lnk.gguf", dir);
    char tk[320];
    snprintf(tk, sizeof tk, "%s/tokenizer.model", ck);
    CHECK(symlink(tk, lnk) == 0);
    CHECK_EQ_INT(convert(ck, lnk, OWL_CONV_TYPE_F32, NULL, 3200, &e), OWL_E_INVALID);
    CHECK_MSG(strstr(e.msg, "tokenizer.model"), "%s", e.msg);
    free(before);
    free(after);
    cleanup(ck);
    cleanup(dir);
}

/* A full disk (injected ENOSPC after 1 MiB): an error naming the file and the
 * reason; neither the output nor a temporary file is left. */
TEST(convert_on_a_full_disk_leaves_nothing)
{
    char dir[256], out[300];
    scratch(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    owl_outfile_test_space = (int64_t)1 << 20;
    owl_err e = {0};
    owl_status st = convert(ORACLE, out, OWL_CONV_TYPE_F32, NULL, 3200, &e);
    owl_outfile_test_space = -1;
    CHECK_EQ_INT(st, OWL_E_IO);
    CHECK_MSG(strstr(e.msg, "No space left on device") && strstr(e.msg, out), "%s", e.msg);
    CHECK_EQ_INT(count_entries(dir, ""), 0);
    cleanup(dir);
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    uint8_t *x = owl_test_read_file(a, &na), *y = owl_test_read_file(b, &nb);
    int r = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return r;
}

/* Was: a full disk left a 1 MiB and a 0-byte chunk and no manifest. Now a
 * failed split leaves the folder as it was: empty, or the previous split. */
TEST(split_on_a_full_disk_leaves_the_folder_as_it_was)
{
    char dir[256], g[300], g2[300], cd[300], keep[320], p[400];
    scratch(dir, sizeof dir);
    snprintf(g, sizeof g, "%s/m.gguf", dir);
    snprintf(g2, sizeof g2, "%s/m2/m.gguf", dir);
    snprintf(cd, sizeof cd, "%s/chunks", dir);
    convert_ok(g);
    snprintf(p, sizeof p, "%s/m2", dir);
    mkdir(p, 0755);
    owl_conv_opts o = {ORACLE, g2, NULL, "another", OWL_CONV_TYPE_F16, 3200, 0, 1, OWL_CONV_VISION_DEFAULT};
    owl_err e = {0};
    CHECK_MSG(owl_convert(&o, &e) == OWL_OK, "%s", e.msg);
    /* into an empty folder: nothing left */
    owl_outfile_test_space = (int64_t)5 << 19; /* 2.5 MiB: two 1 MiB chunks pass, the third fails */
    owl_status st = owl_split(g, cd, 1, &e);
    owl_outfile_test_space = -1;
    CHECK_EQ_INT(st, OWL_E_IO);
    CHECK_MSG(strstr(e.msg, "m.0002.bin") && strstr(e.msg, "No space left"), "%s", e.msg);
    CHECK_EQ_INT(count_entries(cd, ""), 0);
    /* over a previous split: that split stays whole */
    CHECK_MSG(owl_split(g, cd, 1, &e) == OWL_OK, "%s", e.msg);
    int n_before = count_entries(cd, "");
    snprintf(keep, sizeof keep, "%s/manifest.keep", dir);
    snprintf(p, sizeof p, "%s/manifest.json", cd);
    CHECK(copy_file(p, keep, (size_t)-1) == 0);
    owl_outfile_test_space = (int64_t)3 << 19; /* the f16 file: chunk 0 passes, chunk 1 fails */
    st = owl_split(g2, cd, 1, &e);
    owl_outfile_test_space = -1;
    CHECK_EQ_INT(st, OWL_E_IO);
    CHECK_EQ_INT(count_entries(cd, ""), n_before);
    CHECK(same_file(p, keep));
    snprintf(p, sizeof p, "%s/m.0000.bin", cd);
    size_t n = 0;
    size_t nw = 0;
    uint8_t *c0 = owl_test_read_file(p, &n), *whole = owl_test_read_file(g, &nw);
    CHECK(c0 && whole && n == (size_t)1 << 20 && !memcmp(c0, whole, n));
    free(c0);
    free(whole);
    snprintf(p, sizeof p, "%s/m2", dir);
    cleanup(p);
    cleanup(cd);
    cleanup(dir);
}

/* Was: --chunk-mib up to 4096 accepted, but the loaders refuse chunks over 1 GiB. */
TEST(split_refuses_chunks_over_1_gib_and_non_directory_folders)
{
    char dir[256], g[300];
    scratch(dir, sizeof dir);
    snprintf(g, sizeof g, "%s/m.gguf", dir);
    convert_ok(g);
    owl_err e = {0};
    CHECK_EQ_INT(owl_split(g, dir, 1025, &e), OWL_E_INVALID);
    CHECK_MSG(strstr(e.msg, "--chunk-mib 1025 outside 1..1024"), "%s", e.msg);
    CHECK_EQ_INT(owl_split(g, g, 1, &e), OWL_E_INVALID); /* the folder is a file */
    CHECK_MSG(strstr(e.msg, "is not a directory"), "%s", e.msg);
    CHECK_EQ_INT(count_entries(dir, ""), 1);
    cleanup(dir);
}

/* Was: overlapping data_offsets converted with exit 0 (aliased weights). */
TEST(safetensors_overlapping_data_offsets_are_refused)
{
    char dir[256], p[300];
    scratch(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/a.safetensors", dir);
    const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    uint8_t buf[8 + sizeof hdr - 1 + 16] = {0};
    buf[0] = (uint8_t)(sizeof hdr - 1);
    memcpy(buf + 8, hdr, sizeof hdr - 1);
    CHECK(write_file(p, buf, sizeof buf) == 0);
    owl_ckpt ck;
    memset(&ck, 0, sizeof ck);
    owl_err e = {0};
    CHECK_EQ_INT(owl_ckpt_add_safetensors(&ck, p, &e), OWL_E_FORMAT);
    CHECK_MSG(strstr(e.msg, "tensors a [0, 16) and b [8, 16) overlap"), "%s", e.msg);
    owl_ckpt_free(&ck);
    /* adjacent is fine */
    const char ok[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    uint8_t buf2[8 + sizeof ok - 1 + 16] = {0};
    buf2[0] = (uint8_t)(sizeof ok - 1);
    memcpy(buf2 + 8, ok, sizeof ok - 1);
    CHECK(write_file(p, buf2, sizeof buf2) == 0);
    memset(&ck, 0, sizeof ck);
    CHECK_EQ_INT(owl_ckpt_add_safetensors(&ck, p, &e), OWL_OK);
    owl_ckpt_free(&ck);
    cleanup(dir);
}

/* ---------------------------------------------------------------- images PIL opens (issue 22.6, 22.7) */

static owl_status decode_bytes(const uint8_t *d, size_t n, owl_image *img, owl_err *e)
{
    return owl_image_decode(d, n, img, NULL, e);
}

/* Was: "bmp 96x-64 over the limits"; PIL opens a top-down BMP (negative height). */
TEST(image_decode_top_down_bmp_like_pil)
{
    size_t n = 0;
    uint8_t *d = owl_test_read_file(FIX_IMAGES "rgb.bmp", &n);
    CHECK(d && n > 54);
    if (!d)
        return;
    owl_image ref = {0}, got = {0};
    owl_err e = {0};
    CHECK_EQ_INT(decode_bytes(d, n, &ref, &e), OWL_OK);
    /* flip the rows and negate the height: the same picture, stored top-down */
    uint32_t off = d[10] | d[11] << 8 | (uint32_t)d[12] << 16 | (uint32_t)d[13] << 24;
    int32_t h = (int32_t)(d[22] | d[23] << 8 | (uint32_t)d[24] << 16 | (uint32_t)d[25] << 24);
    uint16_t bpp = (uint16_t)(d[28] | d[29] << 8);
    CHECK(h == ref.h && bpp == 24);
    size_t row = ((size_t)ref.w * 3 + 3) / 4 * 4;
    uint8_t *td = malloc(n);
    memcpy(td, d, n);
    for (int y = 0; y < h && off + (size_t)h * row <= n; y++)
        memcpy(td + off + (size_t)y * row, d + off + (size_t)(h - 1 - y) * row, row);
    int32_t nh = -h;
    memcpy(td + 22, &nh, 4); /* little-endian host (x86, wasm) */
    CHECK_EQ_INT(decode_bytes(td, n, &got, &e), OWL_OK);
    CHECK_MSG(got.w == ref.w && got.h == ref.h && got.rgb && !memcmp(got.rgb, ref.rgb, (size_t)ref.w * ref.h * 3),
              "%dx%d: %s", got.w, got.h, e.msg);
    owl_image_free(&got);
    owl_image_free(&ref);
    free(td);
    free(d);
}

/* Was: "gif 0x0 over the limits"; Pillow 9.4 grows the screen to the first frame. */
TEST(image_decode_gif_with_a_0x0_screen_like_pil)
{
    size_t n = 0;
    uint8_t *d = owl_test_read_file(FIX_IMAGES "pal.gif", &n);
    CHECK(d && n > 13);
    if (!d)
        return;
    owl_image ref = {0}, got = {0};
    owl_err e = {0};
    CHECK_EQ_INT(decode_bytes(d, n, &ref, &e), OWL_OK);
    memset(d + 6, 0, 4);
    CHECK_EQ_INT(decode_bytes(d, n, &got, &e), OWL_OK);
    CHECK_MSG(got.w == ref.w && got.h == ref.h && got.rgb && !memcmp(got.rgb, ref.rgb, (size_t)ref.w * ref.h * 3),
              "%dx%d: %s", got.w, got.h, e.msg);
    owl_image_free(&got);
    owl_image_free(&ref);
    free(d);
}

/* Was: "corrupt png 96x64 (, 33 bytes)": the reason was empty. */
TEST(image_decode_png_cut_after_ihdr_says_why)
{
    size_t n = 0;
    uint8_t *d = owl_test_read_file(FIX_IMAGES "rgb8.png", &n);
    CHECK(d && n > 33);
    owl_image img = {0};
    owl_err e = {0};
    CHECK_EQ_INT(decode_bytes(d, 33, &img, &e), OWL_E_FORMAT);
    CHECK_MSG(strstr(e.msg, "cut short or missing") && !strstr(e.msg, "(,"), "%s", e.msg);
    free(d);
}

/* ---------------------------------------------------------------- messages (issue 22.7) */

#include "../../src/core/gguf.h"

/* Was: "array of 2305843009213693952 uint64 needs at least 0 bytes" (n * 8 wrapped). */
TEST(gguf_huge_array_message_does_not_wrap)
{
    uint8_t b[64] = "GGUF";
    size_t p = 4;
#define PUT(v, n) (memcpy(b + p, &(uint64_t){(uint64_t)(v)}, n), p += n)
    PUT(3, 4);                   /* version */
    PUT(0, 8);                   /* tensors */
    PUT(1, 8);                   /* kv */
    PUT(1, 8);                   /* key length */
    b[p++] = 'k';
    PUT(9, 4);                   /* ARRAY */
    PUT(10, 4);                  /* of UINT64 */
    PUT((uint64_t)1 << 61, 8);   /* 2^61 elements: 2^64 bytes */
#undef PUT
    owl_gguf g;
    owl_err e = {0};
    CHECK_EQ_INT(owl_gguf_parse(b, p, 0, 0, &g, &e), OWL_E_TRUNCATED);
    CHECK_MSG(strstr(e.msg, "more than 2^64 bytes") && !strstr(e.msg, "at least 0 bytes"), "%s", e.msg);
}
