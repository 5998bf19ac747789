/* test_reliability.c - regressions of issue 22 (Reliability II) that belong to
 * no single module's test file: bounded image squaring, converter outputs that
 * never clobber, split cleanup on a full disk, safetensors aliasing, messages. */
#include <stdlib.h>
#include <time.h>

#include "../../src/image/image.h"
#include "test.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
 * (sanitizer build, busy machine) only catches the hang. */
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
