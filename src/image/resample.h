/* resample.h - private to src/image: Pillow-exact bicubic resampling over row sources.
 *
 * A row source is a (possibly virtual) RGB image read one row at a time, so the
 * preprocessing chain (pad or stretch to M x M, then resize to S x S) never
 * materialises the M x M square: its rows are produced on demand. */
#ifndef OWL_IMAGE_RESAMPLE_H
#define OWL_IMAGE_RESAMPLE_H

#include "image.h"

/* Fixed-point coefficients of one resampling axis (Pillow's precompute_coeffs +
 * normalize_coeffs_8bpc) for output positions o0 .. o0+n-1 of out_size. */
typedef struct {
    int n, ksize;
    int *bounds;  /* 2 per position: first input index, number of taps */
    int32_t *k;   /* n * ksize coefficients, PRECISION_BITS fraction bits */
} owl_axis;

owl_status owl_axis_init(owl_axis *a, int in_size, int out_size, int o0, int n, owl_err *err);
void owl_axis_free(owl_axis *a);

typedef enum { OWL_ROWS_PLAIN, OWL_ROWS_PAD, OWL_ROWS_VRESIZE, OWL_ROWS_HRESIZE } owl_rows_kind;

/* A w x h RGB row source over img:
 *   PLAIN    img itself;
 *   PAD      img pasted at (ox, oy) on a pad-coloured canvas;
 *   VRESIZE  img resized vertically only (img->w == w), coefficients in axis;
 *   HRESIZE  img resized horizontally only (img->h == h). */
typedef struct {
    owl_rows_kind kind;
    int w, h;
    const owl_image *img;
    int ox, oy;
    uint8_t pad[3];
    const owl_axis *axis;
} owl_rows;

/* Row y (0 <= y < src->h) as src->w*3 bytes; may write scratch (src->w*3 bytes). */
const uint8_t *owl_rows_get(const owl_rows *src, int y, uint8_t *scratch);

/* Resize src to out_w x out_h as Pillow's ImagingResample (bicubic, default box),
 * computing only the window [x0, x0+ww) x [y0, y0+wh) into out (ww*wh*3 bytes).
 * Errors: OWL_E_INVALID (window outside), OWL_E_NOMEM. */
owl_status owl_resample(const owl_rows *src, int out_w, int out_h, int x0, int y0, int ww,
                        int wh, uint8_t *out, owl_err *err);

#endif
