/* decode.c - PNG/JPEG/BMP/GIF bytes -> 8-bit RGB as PIL's Image.open(f).convert('RGB').
 *
 * stb_image does the decoding (the only instantiation in owlet). Hardening:
 * only the four formats are compiled in (TGA has no magic and would accept
 * noise), dimensions are checked from the header before any pixel allocation,
 * and every stb allocation is charged to a per-decode budget (thread-local) so
 * a compressed bomb cannot grow stb's buffers past a few times the image size.
 * Two defects of Debian's stb 2.27 are kept away from it: JPEG Huffman tables
 * with over 256 codes (out-of-bounds writes; refused) and zero-length IDAT
 * chunks before the data (memcpy into NULL; dropped). Its JPEG IDCT may
 * overflow int on corrupt data: compiled with wrapv under GCC.
 * SIMD is off in stb so native and wasm decode to the same bytes. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

/* ---- stb_image instantiation with a budgeted allocator */
static void *stb_take(size_t n);
static void *stb_regrow(void *p, size_t oldsz, size_t newsz);
static void stb_release(void *p);

#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_SIMD
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_MAX_DIMENSIONS OWL_IMAGE_MAX_SIDE
#define STBI_MALLOC(n) stb_take(n)
#define STBI_REALLOC(p, n) stb_regrow(p, 0, n)
#define STBI_REALLOC_SIZED(p, oldsz, newsz) stb_regrow(p, oldsz, newsz)
#define STBI_FREE(p) stb_release(p)
/* stb's asserts are abort()s; the one input can reach (Huffman symbol lookup in
 * stbi__jpeg_huff_decode) is made harmless by the guard band below instead */
#define STBI_ASSERT(x) ((void)0)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__clang__)
/* clang has no per-function wrapv: the IDCT overflow and the bit reader's
 * shift by 32 on corrupt JPEG (stb 2.27) are exempted from UBSan here; compile
 * this file with -fwrapv to make the overflow defined (see docs/FUZZING.md) */
#pragma clang attribute push(__attribute__((no_sanitize("signed-integer-overflow", "shift"))), \
                             apply_to = function)
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wsign-compare"
#pragma clang diagnostic ignored "-Wunused-parameter"
#pragma clang diagnostic ignored "-Wunused-but-set-variable"
#pragma clang diagnostic ignored "-Wimplicit-fallthrough"
#elif defined(__GNUC__)
/* for stb's declared-but-undefined static stbi_set_unpremultiply_on_load_thread,
 * reported at the end of the file, after any pop */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
/* stb's JPEG IDCT overflows int on corrupt coefficients: make that wrap (its
 * output is clamped to 0..255 anyway) rather than undefined */
#pragma GCC push_options
#pragma GCC optimize("wrapv")
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb_image.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#pragma GCC diagnostic pop
#endif

static _Thread_local size_t stb_budget; /* bytes stb may still allocate in this decode */
static _Thread_local int stb_is_jpeg;       /* this decode is a JPEG: guard its state */
static _Thread_local void *stb_jpeg_block; /* the guarded stbi__jpeg of this thread */

/* stb 2.27 reads h->values[c] with c = code bits + delta[k], which corrupt
 * entropy data can put anywhere in [-65536, 65791] around the table (2.28
 * checks 0 <= c < 256). The decoder state (stbi__jpeg, holding the tables) is
 * therefore allocated with a zeroed guard band that wide on each side: the
 * stray read yields symbol 0, which the decoder handles like any table value. */
#define JPEG_GUARD ((size_t)66 * 1024)

static void *stb_take(size_t n)
{
    /* stb allocates its stbi__jpeg first and keeps it to the end of the load,
     * so no pixel buffer can take the guarded slot */
    int guard = stb_is_jpeg && n == sizeof(stbi__jpeg) && !stb_jpeg_block;
    size_t total = guard ? n + 2 * JPEG_GUARD : n;
    if (total > stb_budget)
        return NULL;
    stb_budget -= total;
    if (!guard)
        return malloc(n ? n : 1);
    uint8_t *p = calloc(1, total);
    if (!p)
        return NULL;
    stb_jpeg_block = p + JPEG_GUARD;
    return stb_jpeg_block;
}

static void *stb_regrow(void *p, size_t oldsz, size_t newsz)
{
    size_t grow = newsz > oldsz ? newsz - oldsz : 0;
    if (grow > stb_budget || (p && p == stb_jpeg_block))
        return NULL; /* stb never reallocates its decoder state */
    stb_budget -= grow;
    return realloc(p, newsz ? newsz : 1);
}

static void stb_release(void *p)
{
    if (p && p == stb_jpeg_block) {
        free((uint8_t *)p - JPEG_GUARD);
        stb_jpeg_block = NULL;
        return;
    }
    free(p);
}

/* ---- header checks done before stb sees the data */

static unsigned get8(const uint8_t *d, size_t n, size_t i)
{
    return i < n ? d[i] : 0; /* stb reads zeros past the end too */
}

static unsigned get16be(const uint8_t *d, size_t n, size_t i)
{
    return get8(d, n, i) << 8 | get8(d, n, i + 1);
}

/* One DHT segment (p just after its marker): every table must declare at most
 * 256 codes. stb_image 2.27 writes past its 257-entry code-size table and its
 * 256-entry value table otherwise (fixed upstream in 2.28). The loop reads the
 * bytes exactly as stb's DHT parser does. */
static int jpeg_dht_ok(const uint8_t *d, size_t n, size_t p)
{
    long len = (long)get16be(d, n, p) - 2;
    p += 2;
    while (len > 0 && p <= n) {
        unsigned count = 0;
        for (int i = 0; i < 16; i++)
            count += get8(d, n, p + 1 + (size_t)i);
        if (count > 256)
            return 0;
        p += 17 + count;
        len -= 17 + (long)count;
    }
    return 1;
}

/* Walks the JPEG segments up to the first SOS as stb does (a byte scan for 0xFF
 * between segments, fill bytes skipped, lengths followed), checking each DHT
 * and noting the frame size; from the first SOS on, where stb's position depends
 * on the entropy decoder, every FF C4 byte pair is checked as a DHT. */
static int jpeg_walk(const uint8_t *d, size_t n, int *w, int *h)
{
    size_t p = 2;
    while (p < n) {
        if (d[p] != 0xff) {
            p++;
            continue;
        }
        while (p < n && d[p] == 0xff)
            p++;
        if (p >= n)
            break;
        unsigned m = d[p++];
        if (m == 0x00 || m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7))
            continue; /* no length */
        if (m == 0xd9 || m == 0xda)
            break;
        if (m == 0xc4 && !jpeg_dht_ok(d, n, p))
            return 0;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc && *w == 0) {
            *h = (int)get16be(d, n, p + 3);
            *w = (int)get16be(d, n, p + 5);
        }
        p += get16be(d, n, p);
    }
    for (p = p >= 2 ? p - 2 : 0; p + 1 < n; p++)
        if (d[p] == 0xff && d[p + 1] == 0xc4 && !jpeg_dht_ok(d, n, p + 2))
            return 0;
    return 1;
}

/* stb 2.27 copies a zero-length IDAT chunk that comes before any data into
 * its still-NULL buffer (memcpy(NULL, p, 0): undefined behaviour that UBSan
 * reports). Such chunks carry nothing, so a copy without them (*out, malloc'd)
 * decodes the same. Returns 0 if none was found, -1 when out of memory.
 * Chunks are walked by their lengths, as stb does. */
static int png_drop_empty_idat(const uint8_t *d, size_t n, uint8_t **out, size_t *out_n)
{
    size_t found = 0;
    /* a chunk is 4 length + 4 type + data + 4 CRC; the last may be cut short */
    for (size_t p = 8; p + 8 <= n;) {
        uint32_t len = (uint32_t)get16be(d, n, p) << 16 | get16be(d, n, p + 2);
        found += len == 0 && memcmp(d + p + 4, "IDAT", 4) == 0;
        if (len > n - p - 8)
            break;
        p += 12 + (size_t)len;
    }
    if (!found)
        return 0;
    uint8_t *c = malloc(n);
    if (!c)
        return -1;
    memcpy(c, d, 8);
    size_t q = 8;
    for (size_t p = 8; p < n;) {
        size_t step = n - p;
        int drop = 0;
        if (p + 8 <= n) {
            uint32_t len = (uint32_t)get16be(d, n, p) << 16 | get16be(d, n, p + 2);
            if (len <= n - p - 8 && 12 + (size_t)len < step)
                step = 12 + (size_t)len;
            drop = len == 0 && memcmp(d + p + 4, "IDAT", 4) == 0;
        }
        if (!drop) {
            memcpy(c + q, d + p, step);
            q += step;
        }
        p += step;
    }
    *out = c;
    *out_n = q;
    return 1;
}

/* What PIL does with a GIF's first frame and stb does not: the canvas starts
 * filled with the transparency index (else index 0) and frame pixels keep their
 * palette colour even when transparent. */
typedef struct {
    int fx, fy, fw, fh; /* first frame rectangle */
    const uint8_t *pal; /* its colour table (local, else global) */
    int pal_n;
    int trans; /* transparency index or -1 */
} gif_frame;

static int gif_first_frame(const uint8_t *d, size_t n, gif_frame *g)
{
    memset(g, 0, sizeof *g);
    g->trans = -1;
    if (n < 13)
        return 0;
    size_t p = 13;
    if (d[10] & 0x80) {
        g->pal = d + 13;
        g->pal_n = 2 << (d[10] & 7);
        p += (size_t)g->pal_n * 3;
    }
    while (p < n) {
        if (d[p] == 0x21 && p + 1 < n) { /* extension: label, then sub-blocks */
            int label = d[p + 1];
            p += 2;
            if (label == 0xf9 && p + 4 < n && d[p] >= 4)
                g->trans = d[p + 1] & 1 ? d[p + 4] : -1;
            while (p < n && d[p])
                p += 1 + (size_t)d[p];
            p++;
        } else if (d[p] == 0x2c && p + 10 <= n) { /* image descriptor */
            g->fx = d[p + 1] | d[p + 2] << 8;
            g->fy = d[p + 3] | d[p + 4] << 8;
            g->fw = d[p + 5] | d[p + 6] << 8;
            g->fh = d[p + 7] | d[p + 8] << 8;
            if (d[p + 9] & 0x80) {
                g->pal = d + p + 10;
                g->pal_n = 2 << (d[p + 9] & 7);
            }
            return g->pal && (size_t)(g->pal - d) + (size_t)g->pal_n * 3 <= n;
        } else {
            return 0;
        }
    }
    return 0;
}

/* rgba (stb's first frame) -> rgb as PIL's convert('RGB') of that frame */
static void gif_to_rgb(const uint8_t *rgba, int w, int h, const gif_frame *g, uint8_t *rgb)
{
    static const uint8_t black[3] = {0, 0, 0};
    int fill = g->trans >= 0 ? g->trans : 0;
    const uint8_t *fc = fill < g->pal_n ? g->pal + 3 * fill : black;
    const uint8_t *tc = g->trans >= 0 && g->trans < g->pal_n ? g->pal + 3 * g->trans : black;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int inside = x >= g->fx && x - g->fx < g->fw && y >= g->fy && y - g->fy < g->fh;
            const uint8_t *c = !inside ? fc : rgba[4 * i + 3] ? rgba + 4 * i : tc;
            memcpy(rgb + 3 * i, c, 3);
        }
}

/* Declared size from the header (0 if not found); 0 from jpeg_walk's check = refuse. */
static int header_check(const char *fmt, const uint8_t *d, size_t n, int64_t *w, int64_t *h)
{
    *w = *h = 0;
    if (strcmp(fmt, "png") == 0 && n >= 24 && memcmp(d + 12, "IHDR", 4) == 0) {
        *w = (int64_t)get16be(d, n, 16) << 16 | get16be(d, n, 18);
        *h = (int64_t)get16be(d, n, 20) << 16 | get16be(d, n, 22);
    } else if (strcmp(fmt, "gif") == 0 && n >= 10) {
        *w = d[6] | d[7] << 8;
        *h = d[8] | d[9] << 8;
    } else if (strcmp(fmt, "bmp") == 0 && n >= 26) {
        uint32_t hs = d[14] | d[15] << 8 | (uint32_t)d[16] << 16 | (uint32_t)d[17] << 24;
        if (hs != 12) { /* BITMAPCOREHEADER has 16-bit sizes; the rest 32-bit */
            int32_t bw = (int32_t)(d[18] | d[19] << 8 | (uint32_t)d[20] << 16 | (uint32_t)d[21] << 24);
            int32_t bh = (int32_t)(d[22] | d[23] << 8 | (uint32_t)d[24] << 16 | (uint32_t)d[25] << 24);
            *w = bw < 0 ? -(int64_t)bw : bw;
            *h = bh < 0 ? -(int64_t)bh : bh;
        }
    } else if (strcmp(fmt, "jpeg") == 0) {
        int jw = 0, jh = 0;
        if (!jpeg_walk(d, n, &jw, &jh))
            return 0;
        *w = jw;
        *h = jh;
    }
    return 1;
}

static const char *format_name(const uint8_t *d, size_t n)
{
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "jpeg";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "bmp";
    if (n >= 4 && memcmp(d, "GIF8", 4) == 0)
        return "gif";
    return NULL;
}

void owl_image_free(owl_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* One decode: the input and what its header declared. */
typedef struct {
    const char *fmt;
    const uint8_t *d;
    size_t size;
    int w, h, comp;  /* from stbi_info */
    uint64_t budget; /* bytes stb may allocate for the pixels */
} decode_job;

/* The size the header declares, against the limits, before stb sees the input. */
static owl_status check_declared_size(const char *fmt, const uint8_t *d, size_t size, int max_side,
                                      int64_t max_pixels, owl_err *err)
{
    int64_t hw, hh;
    if (!header_check(fmt, d, size, &hw, &hh))
        return owl_err_set(err, OWL_E_FORMAT,
                           "image decode: corrupt jpeg (a Huffman table has over 256 codes)");
    if (hw > max_side || hh > max_side || hw * hh > max_pixels)
        return owl_err_set(err, OWL_E_LIMIT,
                           "image decode: %s %lldx%lld over the limits (max side %d, max %lld "
                           "pixels)",
                           fmt, (long long)hw, (long long)hh, max_side, (long long)max_pixels);
    return OWL_OK;
}

/* Pillow 9.4 grows a GIF's logical screen to the first frame's extent (a 0x0
 * screen included); stb refuses a frame outside the screen. Sets *copy to
 * the input with the grown screen when the frame reaches outside it. */
static owl_status gif_grow_screen(const uint8_t *d, size_t size, int max_side, int64_t max_pixels,
                                  uint8_t **copy, owl_err *err)
{
    gif_frame g0;
    if (!gif_first_frame(d, size, &g0))
        return OWL_OK;
    int sw = d[6] | d[7] << 8, sh = d[8] | d[9] << 8, ew = g0.fx + g0.fw, eh = g0.fy + g0.fh;
    if (ew <= sw && eh <= sh)
        return OWL_OK;
    ew = ew > sw ? ew : sw;
    eh = eh > sh ? eh : sh;
    if (ew > max_side || eh > max_side || (int64_t)ew * eh > max_pixels)
        return owl_err_set(err, OWL_E_LIMIT, "image decode: gif first frame reaches %dx%d, over the "
                           "limits (max side %d, max %lld pixels)", ew, eh, max_side,
                           (long long)max_pixels);
    if (!(*copy = malloc(size)))
        return owl_err_set(err, OWL_E_NOMEM, "image decode: out of memory (%zu bytes)", size);
    memcpy(*copy, d, size);
    uint8_t *c = *copy;
    c[6] = (uint8_t)ew, c[7] = (uint8_t)(ew >> 8), c[8] = (uint8_t)eh, c[9] = (uint8_t)(eh >> 8);
    return OWL_OK;
}

/* Inputs stb would refuse but PIL reads: sets *copy (*copy_n bytes) to the
 * rewritten input to decode instead, or leaves it NULL. */
static owl_status rewrite_input(const char *fmt, const uint8_t *d, size_t size, int max_side,
                                int64_t max_pixels, uint8_t **copy, size_t *copy_n, owl_err *err)
{
    *copy_n = size;
    if (strcmp(fmt, "gif") == 0)
        return gif_grow_screen(d, size, max_side, max_pixels, copy, err);
    if (strcmp(fmt, "png") == 0) {
        int r = png_drop_empty_idat(d, size, copy, copy_n);
        if (r < 0)
            return owl_err_set(err, OWL_E_NOMEM, "image decode: out of memory (%zu bytes)", size);
    }
    return OWL_OK;
}

/* stb's header read: j->w, j->h, j->comp, checked against the limits. */
static owl_status read_info(decode_job *j, int max_side, int64_t max_pixels, owl_err *err)
{
    stb_is_jpeg = strcmp(j->fmt, "jpeg") == 0;
    stb_budget = (size_t)1 << 20; /* header parsing: stb's decoder state only */
    if (!stbi_info_from_memory(j->d, (int)j->size, &j->w, &j->h, &j->comp)) {
        const char *why = stbi_failure_reason();
        if (why && strcmp(why, "too large") == 0) /* a side over STBI_MAX_DIMENSIONS */
            return owl_err_set(err, OWL_E_LIMIT,
                               "image decode: %s header declares a side over %d pixels", j->fmt,
                               OWL_IMAGE_MAX_SIDE);
        return owl_err_set(err, OWL_E_FORMAT, "image decode: bad %s header (%s, %zu bytes)", j->fmt,
                           why ? why : "?", j->size);
    }
    if (strcmp(j->fmt, "bmp") == 0 && j->h < 0 && j->h > INT_MIN)
        j->h = -j->h; /* a top-down BMP: stb's info gives the signed height, its loader flips */
    if (j->w < 1 || j->h < 1)
        return owl_err_set(err, OWL_E_FORMAT, "image decode: %s declares a %dx%d image (a side is 0 or "
                           "negative)", j->fmt, j->w, j->h);
    if (j->w > max_side || j->h > max_side || (int64_t)j->w * j->h > max_pixels)
        return owl_err_set(err, OWL_E_LIMIT,
                           "image decode: %s %dx%d over the limits (max side %d, max %lld pixels)",
                           j->fmt, j->w, j->h, max_side, (long long)max_pixels);
    return OWL_OK;
}

/* The error for a failed stb load: out of memory / budget, or corrupt data. */
static owl_status stb_load_failed(const decode_job *j, owl_err *err)
{
    const char *why = stbi_failure_reason();
    if (stb_budget == 0 || (why && strcmp(why, "outofmem") == 0))
        return owl_err_set(err, OWL_E_NOMEM,
                           "image decode: %s %dx%d: out of memory or over the %llu byte budget",
                           j->fmt, j->w, j->h, (unsigned long long)j->budget);
    return owl_err_set(err, OWL_E_FORMAT, "image decode: corrupt %s %dx%d (%s, %zu bytes)", j->fmt,
                       j->w, j->h, why && why[0] ? why : "the pixel data is cut short or missing",
                       j->size);
}

/* PIL opens 16-bit grey PNG as mode "I"; convert('RGB') clips to 0..255 (it
 * does not scale). Reproduce that, not stb's v >> 8. */
static owl_status decode_png16_grey(const decode_job *j, uint8_t **rgb, int *x, int *y, owl_err *err)
{
    int n = 0;
    size_t npix = (size_t)j->w * (size_t)j->h;
    stbi_us *g = stbi_load_16_from_memory(j->d, (int)j->size, x, y, &n, 1);
    if (g && *x == j->w && *y == j->h) {
        *rgb = malloc(npix * 3);
        for (size_t i = 0; *rgb && i < npix; i++)
            (*rgb)[3 * i] = (*rgb)[3 * i + 1] = (*rgb)[3 * i + 2] = g[i] > 255 ? 255 : (uint8_t)g[i];
        if (!*rgb) {
            stbi_image_free(g);
            return owl_err_set(err, OWL_E_NOMEM, "image decode: png %dx%d: out of memory", j->w,
                               j->h);
        }
    }
    stbi_image_free(g);
    return g ? OWL_OK : stb_load_failed(j, err);
}

static owl_status decode_gif(const decode_job *j, const gif_frame *gif, uint8_t **rgb, int *x, int *y,
                             owl_err *err)
{
    int n = 0;
    uint8_t *rgba = stbi_load_from_memory(j->d, (int)j->size, x, y, &n, 4);
    if (!rgba)
        return stb_load_failed(j, err);
    int fits = *x == j->w && *y == j->h;
    *rgb = fits ? malloc((size_t)j->w * (size_t)j->h * 3) : NULL;
    if (*rgb)
        gif_to_rgb(rgba, j->w, j->h, gif, *rgb);
    stbi_image_free(rgba);
    if (!*rgb && fits)
        return owl_err_set(err, OWL_E_NOMEM, "image decode: gif %dx%d: out of memory", j->w, j->h);
    return OWL_OK;
}

/* The pixels as RGB (*x by *y, which the caller checks against the header). */
static owl_status decode_pixels(const decode_job *j, uint8_t **rgb, int *x, int *y, owl_err *err)
{
    gif_frame gif;
    if (j->comp == 1 && strcmp(j->fmt, "png") == 0 && stbi_is_16_bit_from_memory(j->d, (int)j->size))
        return decode_png16_grey(j, rgb, x, y, err);
    if (strcmp(j->fmt, "gif") == 0 && gif_first_frame(j->d, j->size, &gif))
        return decode_gif(j, &gif, rgb, x, y, err);
    int n = 0;
    *rgb = stbi_load_from_memory(j->d, (int)j->size, x, y, &n, 3);
    return *rgb ? OWL_OK : stb_load_failed(j, err);
}

owl_status owl_image_decode(const void *data, size_t size, owl_image *out,
                            const owl_image_limits *limits, owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "image decode: NULL output");
    memset(out, 0, sizeof *out);
    if (!data || size == 0)
        return owl_err_set(err, OWL_E_INVALID, "image decode: empty input (%zu bytes)", size);
    if (size > INT_MAX)
        return owl_err_set(err, OWL_E_LIMIT, "image decode: %zu bytes, over the %d byte limit",
                           size, INT_MAX);
    int64_t max_pixels = limits && limits->max_pixels > 0 ? limits->max_pixels
                                                          : OWL_IMAGE_DEFAULT_MAX_PIXELS;
    int max_side = limits && limits->max_side > 0 && limits->max_side < OWL_IMAGE_MAX_SIDE
                       ? limits->max_side
                       : OWL_IMAGE_MAX_SIDE;
    const uint8_t *d = data;
    const char *fmt = format_name(d, size);
    if (!fmt)
        return owl_err_set(err, OWL_E_FORMAT,
                           "image decode: unknown format (%zu bytes; want PNG, JPEG, BMP or GIF)",
                           size);
    owl_status st = check_declared_size(fmt, d, size, max_side, max_pixels, err);
    if (st)
        return st;
    uint8_t *copy = NULL;
    size_t copy_n = 0;
    if ((st = rewrite_input(fmt, d, size, max_side, max_pixels, &copy, &copy_n, err)) != OWL_OK)
        return st;
    if (copy) {
        st = owl_image_decode(copy, copy_n, out, limits, err);
        free(copy);
        return st;
    }
    decode_job j = {fmt, d, size, 0, 0, 0, 0};
    if ((st = read_info(&j, max_side, max_pixels, err)) != OWL_OK)
        return st;
    /* stb may hold the input's inflated copy, the native-depth image and the
     * converted one (16-bit RGBA = 8 bytes/pixel, interlaced PNG passes, GIF frames) */
    j.budget = (uint64_t)j.w * (uint64_t)j.h * 32 + (uint64_t)size * 4 + (1u << 20);
    stb_budget = j.budget > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)j.budget;
    uint8_t *rgb = NULL;
    int x = 0, y = 0;
    if ((st = decode_pixels(&j, &rgb, &x, &y, err)) != OWL_OK)
        return st;
    if (x != j.w || y != j.h) {
        free(rgb);
        return owl_err_set(err, OWL_E_FORMAT, "image decode: %s header says %dx%d, decoded %dx%d",
                           fmt, j.w, j.h, x, y);
    }
    out->w = j.w;
    out->h = j.h;
    out->rgb = rgb;
    return OWL_OK;
}

owl_status owl_image_from_rgba(const uint8_t *rgba, int w, int h, size_t stride,
                               owl_image *out, owl_err *err)
{
    if (!out)
        return owl_err_set(err, OWL_E_INVALID, "image from rgba: NULL output");
    memset(out, 0, sizeof *out);
    if (!rgba || w < 1 || h < 1 || stride / 4 < (size_t)w)
        return owl_err_set(err, OWL_E_INVALID, "image from rgba: %dx%d, stride %zu, data %p", w,
                           h, stride, (const void *)rgba);
    if (w > OWL_IMAGE_MAX_SIDE || h > OWL_IMAGE_MAX_SIDE ||
        (int64_t)w * h > OWL_IMAGE_DEFAULT_MAX_PIXELS)
        return owl_err_set(err, OWL_E_LIMIT,
                           "image from rgba: %dx%d over the limits (max side %d, max %lld pixels)",
                           w, h, OWL_IMAGE_MAX_SIDE, (long long)OWL_IMAGE_DEFAULT_MAX_PIXELS);
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb)
        return owl_err_set(err, OWL_E_NOMEM, "image from rgba: %dx%d: out of memory", w, h);
    for (int yy = 0; yy < h; yy++) {
        const uint8_t *s = rgba + (size_t)yy * stride;
        uint8_t *o = rgb + (size_t)yy * w * 3;
        for (int xx = 0; xx < w; xx++) {
            o[3 * xx] = s[4 * xx];
            o[3 * xx + 1] = s[4 * xx + 1];
            o[3 * xx + 2] = s[4 * xx + 2];
        }
    }
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return OWL_OK;
}
