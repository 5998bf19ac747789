/* preprocess.c - squaring (stretch / pad), resize, CLIP normalisation.
 *
 * Ports, from mPLUG-Owl2 mm_utils.process_images + transformers 4.31
 * CLIPImageProcessor (see docs mplug-owl2.md section 4):
 *   stretch: image.resize((max_edge, max_edge))          PIL default filter BICUBIC
 *   pad:     expand2square(image, tuple(int(x*255) for x in image_mean))
 *   resize(shortest_edge=S, BICUBIC) -> center_crop(S, S) -> rescale(1/255) -> normalize
 * For a square input the processor's resize is S x S and the crop a no-op. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resample.h"

#define OWL_IMAGE_MAX_OUT 16384 /* largest S accepted by preprocess */

owl_status owl_image_aspect_from_name(const char *name, owl_image_aspect *out, owl_err *err)
{
    if (name && strcmp(name, "stretch") == 0)
        *out = OWL_IMAGE_STRETCH;
    else if (name && strcmp(name, "pad") == 0)
        *out = OWL_IMAGE_PAD;
    else if (name && (strcmp(name, "crop") == 0 || strcmp(name, "none") == 0))
        *out = OWL_IMAGE_CROP;
    else
        return owl_err_set(err, OWL_E_INVALID,
                           "image aspect '%s': want stretch, pad, crop or none",
                           name ? name : "(null)");
    return OWL_OK;
}

void owl_image_pad_color_from_mean(const float mean[3], uint8_t pad_rgb[3])
{
    for (int c = 0; c < 3; c++) {
        double v = (double)mean[c] * 255.0; /* python int(): truncation */
        pad_rgb[c] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
    }
}

static int image_ok(const owl_image *img)
{
    return img && img->rgb && img->w > 0 && img->h > 0 && img->w <= OWL_IMAGE_MAX_SIDE &&
           img->h <= OWL_IMAGE_MAX_SIDE;
}

static owl_status bad_image(const owl_image *img, const char *fn, owl_err *err)
{
    return owl_err_set(err, OWL_E_INVALID, "%s: empty or invalid image (%dx%d, %s)", fn,
                       img ? img->w : 0, img ? img->h : 0, img && img->rgb ? "data" : "no data");
}

/* out = new w x h image, then the resampler fills it from src */
static owl_status resample_new(const owl_rows *src, int w, int h, owl_image *out, owl_err *err)
{
    memset(out, 0, sizeof *out);
    if (w < 1 || h < 1 || w > OWL_IMAGE_MAX_SIDE || h > OWL_IMAGE_MAX_SIDE)
        return owl_err_set(err, OWL_E_INVALID, "resize to %dx%d: want 1..%d per side", w, h,
                           OWL_IMAGE_MAX_SIDE);
    if ((uint64_t)w * (uint64_t)h > SIZE_MAX / 3)
        return owl_err_set(err, OWL_E_NOMEM, "resize to %dx%d: too large for memory", w, h);
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb)
        return owl_err_set(err, OWL_E_NOMEM, "resize to %dx%d: out of memory", w, h);
    owl_status st = owl_resample(src, w, h, 0, 0, w, h, rgb, err);
    if (st != OWL_OK) {
        free(rgb);
        return st;
    }
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return OWL_OK;
}

owl_status owl_image_resize_bicubic(const owl_image *img, int w, int h, owl_image *out,
                                    owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "owl_image_resize_bicubic: NULL output");
    memset(out, 0, sizeof *out);
    if (!image_ok(img))
        return bad_image(img, "owl_image_resize_bicubic", err);
    owl_rows src = {.kind = OWL_ROWS_PLAIN, .w = img->w, .h = img->h, .img = img};
    return resample_new(&src, w, h, out, err);
}

int owl_image_stretch_exact(int w, int h)
{
    int64_t m = w > h ? w : h, sq = m * m;
    return sq <= OWL_IMAGE_STRETCH_EXACT_PIXELS || sq <= 2 * (int64_t)w * h;
}

/* The M x M square of img as a row source (for STRETCH past
 * owl_image_stretch_exact: img itself, left PLAIN at w x h). For STRETCH, *axis receives the
 * one-axis coefficients the source uses (caller frees). */
static owl_status square_source(const owl_image *img, owl_image_aspect mode,
                                const uint8_t pad_rgb[3], owl_rows *src, owl_axis *axis,
                                owl_err *err)
{
    int w = img->w, h = img->h, m = w > h ? w : h;
    memset(axis, 0, sizeof *axis);
    *src = (owl_rows){.kind = OWL_ROWS_PLAIN, .w = w, .h = h, .img = img};
    if (mode != OWL_IMAGE_STRETCH && mode != OWL_IMAGE_PAD && mode != OWL_IMAGE_CROP)
        return owl_err_set(err, OWL_E_INVALID, "image aspect mode %d unknown", (int)mode);
    if (w == h || mode == OWL_IMAGE_CROP)
        return OWL_OK;
    if (mode == OWL_IMAGE_STRETCH && !owl_image_stretch_exact(w, h))
        return OWL_OK; /* caller resizes img straight to the output size */
    src->w = src->h = m;
    if (mode == OWL_IMAGE_PAD) {
        if (!pad_rgb)
            return owl_err_set(err, OWL_E_INVALID, "pad squaring: NULL pad colour");
        src->kind = OWL_ROWS_PAD;
        src->ox = w > h ? 0 : (h - w) / 2;
        src->oy = w > h ? (w - h) / 2 : 0;
        memcpy(src->pad, pad_rgb, 3);
        return OWL_OK;
    }
    /* Pillow skips the pass of the unchanged axis, so the square is a one-axis resize */
    src->kind = w > h ? OWL_ROWS_VRESIZE : OWL_ROWS_HRESIZE;
    src->axis = axis;
    return owl_axis_init(axis, w > h ? h : w, m, 0, m, err);
}

owl_status owl_image_square(const owl_image *img, owl_image_aspect mode,
                            const uint8_t pad_rgb[3], owl_image *out, owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "owl_image_square: NULL output");
    memset(out, 0, sizeof *out);
    if (!image_ok(img))
        return bad_image(img, "owl_image_square", err);
    int64_t m = img->w > img->h ? img->w : img->h;
    if (mode != OWL_IMAGE_CROP && m * m > OWL_IMAGE_DEFAULT_MAX_PIXELS)
        return owl_err_set(err, OWL_E_LIMIT, "owl_image_square: a %lldx%lld square of a %dx%d image is over "
                           "the %lld-pixel limit (owl_image_preprocess never builds it)", (long long)m,
                           (long long)m, img->w, img->h, (long long)OWL_IMAGE_DEFAULT_MAX_PIXELS);
    owl_rows src;
    owl_axis axis;
    owl_status st = square_source(img, mode, pad_rgb, &src, &axis, err);
    if (st == OWL_OK && src.kind == OWL_ROWS_PLAIN && src.w != src.h && mode == OWL_IMAGE_STRETCH) {
        st = owl_image_resize_bicubic(img, (int)m, (int)m, out, err); /* the square itself, exactly */
        owl_axis_free(&axis);
        return st;
    }
    if (st == OWL_OK) {
        /* resampling a source to its own size copies its rows */
        owl_rows plain = src;
        st = resample_new(&plain, src.w, src.h, out, err);
    }
    owl_axis_free(&axis);
    return st;
}

owl_status owl_image_normalize(const owl_image *img, const float mean[3], const float std[3],
                               float *chw, owl_err *err)
{
    if (!image_ok(img))
        return bad_image(img, "owl_image_normalize", err);
    if (!mean || !std || !chw)
        return owl_err_set(err, OWL_E_INVALID, "owl_image_normalize: NULL mean, std or output");
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        if (!(std[c] != 0.0f) || !isfinite(std[c]) || !isfinite(mean[c]))
            return owl_err_set(err, OWL_E_INVALID, "image normalize: channel %d mean %g std %g", c,
                               (double)mean[c], (double)std[c]);
        /* numpy: (u8 * (1/255)) in float64 -> astype(float32); then (x - mean) / std in float32 */
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * (1.0 / 255.0));
            lut[c][v] = (x - mean[c]) / std[c];
        }
    }
    size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            chw[(size_t)c * n + i] = lut[c][img->rgb[3 * i + c]];
    return OWL_OK;
}

owl_status owl_image_preprocess(const owl_image *img, int size, owl_image_aspect mode,
                                const float mean[3], const float std[3],
                                const uint8_t pad_rgb[3], float *chw, uint8_t *resized,
                                owl_err *err)
{
    if (!image_ok(img))
        return bad_image(img, "owl_image_preprocess", err);
    if (size < 1 || size > OWL_IMAGE_MAX_OUT || !chw || !mean || !std)
        return owl_err_set(err, OWL_E_INVALID,
                           "owl_image_preprocess: size %d (want 1..%d), chw %p, mean %p, std %p",
                           size, OWL_IMAGE_MAX_OUT, (void *)chw, (const void *)mean,
                           (const void *)std);
    uint8_t pad_default[3];
    if (!pad_rgb) {
        owl_image_pad_color_from_mean(mean, pad_default);
        pad_rgb = pad_default;
    }
    owl_rows src;
    owl_axis axis;
    owl_status st = square_source(img, mode, pad_rgb, &src, &axis, err);
    owl_image r = {size, size, resized};
    if (st == OWL_OK && !resized) {
        r.rgb = malloc((size_t)size * (size_t)size * 3);
        if (!r.rgb)
            st = owl_err_set(err, OWL_E_NOMEM, "preprocess: out of memory for %dx%d", size, size);
    }
    if (st == OWL_OK) {
        /* processor: shortest edge -> size (python int() of the long edge), center crop */
        int w = src.w, h = src.h, rw = size, rh = size;
        if (mode == OWL_IMAGE_STRETCH)
            w = h = 1; /* squared, exactly or in one pass: size x size */
        if (w < h)
            rh = (int)((double)((int64_t)size * h) / w);
        else if (h < w)
            rw = (int)((double)((int64_t)size * w) / h);
        st = owl_resample(&src, rw, rh, (rw - size) / 2, (rh - size) / 2, size, size, r.rgb, err);
    }
    if (st == OWL_OK)
        st = owl_image_normalize(&r, mean, std, chw, err);
    if (r.rgb != resized)
        free(r.rgb);
    owl_axis_free(&axis);
    return st;
}
