/* resample.c - Pillow 9.4-exact bicubic resize (libImaging/Resample.c semantics).
 *
 * out[x] = clip8((2^21 + sum_i in[xmin + i] * k[i]) >> 22), per axis, where the
 * k are the bicubic (a = -0.5) weights at (xmin + i - center + 0.5) / filterscale,
 * center = (x + 0.5) * in/out, filterscale = max(in/out, 1), normalised to sum 1
 * in double, then rounded half away from zero to 22 fraction bits. Horizontal
 * pass first (only over the rows the vertical pass reads), 8-bit intermediate,
 * then vertical. A pass whose size is unchanged is skipped, as in Pillow; both
 * skipped = copy. Integer maths after the coefficients, so results are
 * bit-identical on every platform. */
#include "resample.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static double bicubic_filter(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

void owl_axis_free(owl_axis *a)
{
    if (!a)
        return;
    free(a->bounds);
    free(a->k);
    memset(a, 0, sizeof *a);
}

owl_status owl_axis_init(owl_axis *a, int in_size, int out_size, int o0, int n, owl_err *err)
{
    memset(a, 0, sizeof *a);
    if (in_size < 1 || out_size < 1 || o0 < 0 || n < 1 || o0 > out_size - n)
        return owl_err_set(err, OWL_E_INVALID, "resample axis: in %d, out %d, window %d+%d",
                           in_size, out_size, o0, n);
    /* box = (0, in_size) as floats, as Pillow passes it */
    float in0 = 0.0f, in1 = (float)in_size;
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > (double)INT_MAX / 8 || ks * (double)n > (double)(SIZE_MAX / 8))
        return owl_err_set(err, OWL_E_LIMIT, "resample axis %d -> %d: kernel too large",
                           in_size, out_size);
    int ksize = (int)ks;
    a->bounds = malloc((size_t)n * 2 * sizeof *a->bounds);
    a->k = malloc((size_t)n * (size_t)ksize * sizeof *a->k);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!a->bounds || !a->k || !w) {
        free(w);
        owl_axis_free(a);
        return owl_err_set(err, OWL_E_NOMEM, "resample axis %d -> %d: out of memory (%d taps x %d)",
                           in_size, out_size, ksize, n);
    }
    a->n = n;
    a->ksize = ksize;
    double ss = 1.0 / filterscale;
    for (int i = 0; i < n; i++) {
        int xx = o0 + i;
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax < 0)
            xmax = 0;
        if (xmax > ksize)
            xmax = ksize; /* cannot happen: the window spans at most 2*support+1 */
        for (int x = 0; x < xmax; x++) {
            double v = bicubic_filter((x + xmin - center + 0.5) * ss);
            w[x] = v;
            ww += v;
        }
        int32_t *k = a->k + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = 0.0;
            if (x < xmax) {
                v = w[x];
                if (ww != 0.0)
                    v /= ww;
            }
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        a->bounds[2 * i] = xmin;
        a->bounds[2 * i + 1] = xmax;
    }
    free(w);
    return OWL_OK;
}

/* one row, horizontal: out[i] for the axis positions, from in (RGB) */
static void hconv(const uint8_t *restrict in, const owl_axis *restrict a, uint8_t *restrict out)
{
    for (int i = 0; i < a->n; i++) {
        const int32_t *k = a->k + (size_t)i * a->ksize;
        const uint8_t *p = in + (size_t)a->bounds[2 * i] * 3;
        int taps = a->bounds[2 * i + 1];
        int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < taps; x++) {
            s0 += p[3 * x + 0] * k[x];
            s1 += p[3 * x + 1] * k[x];
            s2 += p[3 * x + 2] * k[x];
        }
        out[3 * i + 0] = clip8(s0);
        out[3 * i + 1] = clip8(s1);
        out[3 * i + 2] = clip8(s2);
    }
}

/* hconv of a PAD source row: the image row `row` (iw pixels) at column ox of
 * a pad-coloured row. Outputs whose taps miss the image equal those of a pure
 * pad row (pad_out); for the few that touch it, the pad taps add
 * pad * (sum of their weights), taken from kpre (per output, prefix sums of
 * its ksize weights), and only the image taps are summed: O(iw + n) per row,
 * not O(width of the square). Integer sums: the same bits as hconv over the
 * materialised row. */
static void hconv_pad(const uint8_t *restrict row, int ox, int iw, const uint8_t pad[3],
                      const uint8_t *restrict pad_out, const owl_axis *restrict a, const int64_t *restrict kpre,
                      uint8_t *restrict out)
{
    memcpy(out, pad_out, (size_t)a->n * 3);
    for (int i = 0; i < a->n; i++) {
        int lo = a->bounds[2 * i], taps = a->bounds[2 * i + 1];
        if (lo + taps <= ox || lo >= ox + iw)
            continue;
        const int32_t *k = a->k + (size_t)i * a->ksize;
        const int64_t *kp = kpre + (size_t)i * (a->ksize + 1);
        int x0 = ox > lo ? ox - lo : 0, x1 = ox + iw < lo + taps ? ox + iw - lo : taps; /* image taps */
        int64_t kpad = kp[x0] - kp[0] + kp[taps] - kp[x1];
        const int64_t half = (int64_t)1 << (PRECISION_BITS - 1);
        int64_t s0 = half + pad[0] * kpad, s1 = half + pad[1] * kpad, s2 = half + pad[2] * kpad;
        const uint8_t *p = row + (size_t)(lo + x0 - ox) * 3;
        for (int x = x0; x < x1; x++, p += 3) {
            s0 += p[0] * k[x];
            s1 += p[1] * k[x];
            s2 += p[2] * k[x];
        }
        out[3 * i + 0] = clip8((int32_t)s0);
        out[3 * i + 1] = clip8((int32_t)s1);
        out[3 * i + 2] = clip8((int32_t)s2);
    }
}

/* one output row, vertical: rows[(ymin + y) * stride + b] for b < nbytes */
static void vconv(const uint8_t *restrict rows, size_t stride, int ymin, int taps,
                  const int32_t *restrict k, int32_t *restrict acc, size_t nbytes,
                  uint8_t *restrict out)
{
    for (size_t b = 0; b < nbytes; b++)
        acc[b] = 1 << (PRECISION_BITS - 1);
    for (int y = 0; y < taps; y++) {
        const uint8_t *restrict r = rows + (size_t)(ymin + y) * stride;
        int32_t ky = k[y];
        for (size_t b = 0; b < nbytes; b++)
            acc[b] += r[b] * ky;
    }
    for (size_t b = 0; b < nbytes; b++)
        out[b] = clip8(acc[b]);
}

const uint8_t *owl_rows_get(const owl_rows *src, int y, uint8_t *scratch)
{
    const owl_image *img = src->img;
    size_t row = (size_t)img->w * 3;
    switch (src->kind) {
    case OWL_ROWS_PLAIN:
        return img->rgb + (size_t)y * row;
    case OWL_ROWS_PAD: {
        int iy = y - src->oy;
        for (int x = 0; x < src->w; x++)
            memcpy(scratch + (size_t)x * 3, src->pad, 3);
        if (iy >= 0 && iy < img->h)
            memcpy(scratch + (size_t)src->ox * 3, img->rgb + (size_t)iy * row, row);
        return scratch;
    }
    case OWL_ROWS_VRESIZE: {
        const owl_axis *a = src->axis;
        int32_t acc[3 * 64];
        /* in chunks so the accumulator stays on the stack */
        for (size_t b0 = 0; b0 < row; b0 += 3 * 64) {
            size_t nb = row - b0 < 3 * 64 ? row - b0 : 3 * 64;
            vconv(img->rgb + b0, row, a->bounds[2 * y], a->bounds[2 * y + 1],
                  a->k + (size_t)y * a->ksize, acc, nb, scratch + b0);
        }
        return scratch;
    }
    case OWL_ROWS_HRESIZE:
        hconv(img->rgb + (size_t)y * row, src->axis, scratch);
        return scratch;
    }
    return NULL;
}

typedef struct {
    uint8_t *scratch; /* one source row */
    uint8_t *tmp;     /* the horizontal pass: rows first .. last-1, window width */
    uint8_t *pad_out; /* PAD source resized horizontally: the filtered pure-pad row */
    int64_t *kpre;    /* and each output pixel's prefix sums of kernel taps */
    int32_t *acc;     /* vertical accumulator, one row */
} rs_bufs;

/* A PAD source resized horizontally: the filtered pure-pad row, once. */
static owl_status filter_pad_row(const owl_rows *src, const owl_axis *ah, size_t trow, rs_bufs *b,
                                 owl_err *err)
{
    b->pad_out = malloc(trow);
    b->kpre = malloc((size_t)ah->n * ((size_t)ah->ksize + 1) * sizeof *b->kpre);
    if (!b->pad_out || !b->kpre)
        return owl_err_set(err, OWL_E_NOMEM, "resample: out of memory");
    for (int i = 0; i < ah->n; i++) {
        int64_t *kp = b->kpre + (size_t)i * ((size_t)ah->ksize + 1);
        kp[0] = 0;
        for (int x = 0; x < ah->ksize; x++)
            kp[x + 1] = kp[x] + ah->k[(size_t)i * ah->ksize + x];
    }
    for (int x = 0; x < src->w; x++)
        memcpy(b->scratch + (size_t)x * 3, src->pad, 3);
    hconv(b->scratch, ah, b->pad_out);
    return OWL_OK;
}

/* Horizontal pass (or column copy from x0) of source rows first .. first+nrows-1 into b->tmp. */
static void horizontal_pass(const owl_rows *src, const owl_axis *ah, int need_h, int x0, int first,
                            size_t nrows, size_t trow, rs_bufs *b)
{
    int pad_h = src->kind == OWL_ROWS_PAD && need_h;
    uint8_t *tmp = b->tmp;
    int prev_pad = 0;
    for (size_t r = 0; r < nrows; r++) {
        int y = first + (int)r;
        /* rows of pure padding are all the same: filter the first one only */
        int pad_row = src->kind == OWL_ROWS_PAD && (y < src->oy || y >= src->oy + src->img->h);
        if (pad_row && prev_pad) {
            memcpy(tmp + r * trow, tmp + (r - 1) * trow, trow);
            continue;
        }
        prev_pad = pad_row;
        if (pad_h && pad_row) {
            memcpy(tmp + r * trow, b->pad_out, trow);
        } else if (pad_h) {
            const owl_image *im = src->img;
            hconv_pad(im->rgb + (size_t)(y - src->oy) * im->w * 3, src->ox, im->w, src->pad, b->pad_out,
                      ah, b->kpre, tmp + r * trow);
        } else {
            const uint8_t *in = owl_rows_get(src, y, b->scratch);
            if (need_h)
                hconv(in, ah, tmp + r * trow);
            else
                memcpy(tmp + r * trow, in + (size_t)x0 * 3, trow);
        }
    }
}

owl_status owl_resample(const owl_rows *src, int out_w, int out_h, int x0, int y0, int ww,
                        int wh, uint8_t *out, owl_err *err)
{
    if (src->w < 1 || src->h < 1 || out_w < 1 || out_h < 1 || ww < 1 || wh < 1 || x0 < 0 ||
        y0 < 0 || x0 > out_w - ww || y0 > out_h - wh)
        return owl_err_set(err, OWL_E_INVALID,
                           "resample %dx%d -> %dx%d: bad window %dx%d at (%d,%d)", src->w, src->h,
                           out_w, out_h, ww, wh, x0, y0);
    int need_h = out_w != src->w, need_v = out_h != src->h;
    owl_axis ah = {0}, av = {0};
    rs_bufs b = {0};
    owl_status st = OWL_OK;
    if (need_h && (st = owl_axis_init(&ah, src->w, out_w, x0, ww, err)) != OWL_OK)
        goto done;
    int first = y0, last = y0 + wh; /* source rows the vertical pass reads */
    if (need_v) {
        if ((st = owl_axis_init(&av, src->h, out_h, y0, wh, err)) != OWL_OK)
            goto done;
        first = av.bounds[0];
        last = av.bounds[2 * (wh - 1)] + av.bounds[2 * (wh - 1) + 1];
    }
    size_t trow = (size_t)ww * 3, nrows = (size_t)(last - first);
    if (nrows > SIZE_MAX / trow) {
        st = owl_err_set(err, OWL_E_NOMEM, "resample: %zu rows of %zu bytes overflow", nrows, trow);
        goto done;
    }
    b.scratch = malloc((size_t)src->w * 3);
    b.tmp = malloc(trow * nrows + 1);
    b.acc = malloc(trow * sizeof *b.acc);
    if (!b.scratch || !b.tmp || !b.acc) {
        st = owl_err_set(err, OWL_E_NOMEM, "resample %dx%d -> %dx%d: out of memory (%zu bytes)",
                         src->w, src->h, out_w, out_h, trow * nrows);
        goto done;
    }
    if (src->kind == OWL_ROWS_PAD && need_h && (st = filter_pad_row(src, &ah, trow, &b, err)) != OWL_OK)
        goto done;
    horizontal_pass(src, &ah, need_h, x0, first, nrows, trow, &b);
    if (need_v) {
        for (int y = 0; y < wh; y++)
            vconv(b.tmp, trow, av.bounds[2 * y] - first, av.bounds[2 * y + 1],
                  av.k + (size_t)y * av.ksize, b.acc, trow, out + (size_t)y * trow);
    } else {
        memcpy(out, b.tmp, trow * nrows);
    }
done:
    owl_axis_free(&ah);
    owl_axis_free(&av);
    free(b.scratch);
    free(b.tmp);
    free(b.pad_out);
    free(b.kpre);
    free(b.acc);
    return st;
}
