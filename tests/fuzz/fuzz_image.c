/* fuzz_image.c - libFuzzer target for image decoding and preprocessing
 * (src/image/decode.c on stb_image, preprocess.c, resample.c).
 *
 * Input: byte 0 picks the preprocess (bits 0-1 aspect mode, bits 2-7 the
 * output size 1..64), the rest is the file. Decode limits are small in pixels
 * (512 x 512) so that a header claiming a huge image is an OWL_E_LIMIT, not an
 * out-of-memory report, but sides go to the engine's 65536: extreme aspect
 * ratios (65536 x 1, 4 x 65536) are where squaring once cost O(long side^2),
 * 30 s for a 270-byte PNG (issue 22). A decoded image must have positive
 * sides within the limits and w*h*3 readable bytes; it is then squared in each
 * mode, resized, and run through owl_image_preprocess, whose output floats
 * must be finite and which must finish within TIME_BUDGET_S of CPU (bounded work:
 * O(w*h + long side * size), well under a second here; CPU time, so a busy
 * machine does not trip it). Corpus seeds include 65536x1 and 1x65536 PNGs. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../../src/image/image.h"
#include "fuzz_util.h"

#define MAX_PIXELS (512 * 512)
#define MAX_SIDE 65536
#define TIME_BUDGET_S 2.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: a busy machine does not count */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned flags = data[0];
    owl_image_limits lim = {MAX_PIXELS, MAX_SIDE};
    owl_image img;
    owl_err err;
    if (owl_image_decode(data + 1, size - 1, &img, &lim, &err) != OWL_OK) {
        OWL_FUZZ_CHECK(img.rgb == NULL && img.w == 0 && img.h == 0);
        return 0;
    }
    OWL_FUZZ_CHECK(img.w > 0 && img.h > 0 && img.w <= MAX_SIDE && img.h <= MAX_SIDE);
    OWL_FUZZ_CHECK((int64_t)img.w * img.h <= MAX_PIXELS);
    owl_fuzz_touch(img.rgb, (size_t)img.w * (size_t)img.h * 3);

    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    uint8_t pad[3];
    owl_image_pad_color_from_mean(mean, pad);

    /* square in the mode byte 0 asks for (3 = stretch again) */
    owl_image_aspect mode = (owl_image_aspect)((flags & 3) % 3);
    owl_image sq;
    if (img.w <= 256 && img.h <= 256 && owl_image_square(&img, mode, pad, &sq, &err) == OWL_OK) {
        if (mode != OWL_IMAGE_CROP)
            OWL_FUZZ_CHECK(sq.w == sq.h && sq.w == (img.w > img.h ? img.w : img.h));
        owl_fuzz_touch(sq.rgb, (size_t)sq.w * (size_t)sq.h * 3);
        owl_image_free(&sq);
    }
    /* an odd resize */
    owl_image rs;
    int rw = 1 + (int)(flags % 37), rh = 1 + (int)((flags >> 3) % 29);
    if (owl_image_resize_bicubic(&img, rw, rh, &rs, &err) == OWL_OK) {
        OWL_FUZZ_CHECK(rs.w == rw && rs.h == rh);
        owl_fuzz_touch(rs.rgb, (size_t)rw * (size_t)rh * 3);
        owl_image_free(&rs);
    }
    /* the whole chain */
    int s = 1 + (int)(flags >> 2);
    float *chw = malloc((size_t)3 * s * s * sizeof *chw);
    uint8_t *resized = malloc((size_t)3 * s * s);
    OWL_FUZZ_CHECK(chw && resized);
    double t0 = now_s();
    owl_status pst = owl_image_preprocess(&img, s, mode, mean, std, NULL, chw, resized, &err);
    double dt = now_s() - t0;
    if (dt > TIME_BUDGET_S)
        fprintf(stderr, "fuzz_image: %dx%d mode %d size %d took %.2f s\n", img.w, img.h, (int)mode, s, dt);
    OWL_FUZZ_CHECK(dt <= TIME_BUDGET_S);
    if (pst == OWL_OK) {
        for (int i = 0; i < 3 * s * s; i++)
            OWL_FUZZ_CHECK(isfinite(chw[i]));
        owl_fuzz_touch(resized, (size_t)3 * s * s);
    }
    free(chw);
    free(resized);
    owl_image_free(&img);
    return 0;
}
