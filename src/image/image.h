/* image.h - image decoding and CLIP preprocessing, bit-exact with the Python reference.
 *
 * The reference (mPLUG-Owl2 + transformers CLIPImageProcessor + Pillow 9.4) does:
 *   Image.open(f).convert('RGB')                       -> owl_image_decode / owl_image_from_rgba
 *   squaring: stretch = img.resize((M, M)) (BICUBIC), M = max(W, H)
 *             pad     = expand2square(img, pad_rgb)    -> owl_image_square
 *             crop    = none (processor crops instead)
 *   processor: resize shortest edge to S (PIL BICUBIC, 8-bit), center crop S x S
 *                                                      -> owl_image_resize_bicubic
 *   x = f32(u8 * (1/255 in f64)); (x - mean) / std in f32, CHW  -> owl_image_normalize
 * owl_image_preprocess runs the whole chain without materialising the M x M square.
 *
 * Decoding: PNG, JPEG, BMP, GIF (first frame) via stb_image. Results equal PIL's
 * convert('RGB') for PNG (all colour types and depths, incl. PIL's clip of 16-bit
 * grey to 0..255 instead of scaling), 1/8/24/32-bit BMP and GIF (incl. PIL's
 * transparent-index and uncovered-canvas colours); JPEG differs from libjpeg by
 * a few LSB (other IDCT and chroma upsampling: max 3, mean 0.07 measured);
 * 16-bit BMP may differ by 1 LSB (bit replication vs PIL's v*255/31). EXIF
 * orientation and colour profiles are ignored, as in the reference. Alpha is
 * dropped (not composited), as PIL's convert('RGB') does. PNG CRCs are not
 * checked (PIL rejects a bad IHDR CRC; we decode it).
 *
 * All calls are reentrant and thread-safe (decode keeps only thread-local
 * state); bad input returns an error, never aborts. */
#ifndef OWL_IMAGE_H
#define OWL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

/* An 8-bit RGB image: h rows of w*3 bytes, tightly packed, R,G,B. rgb is owned
 * (malloc) and released by owl_image_free. */
typedef struct {
    int w, h;
    uint8_t *rgb;
} owl_image;

/* Decode limits; a zero field means the default. Checked on the header before
 * any pixel memory is allocated. */
typedef struct {
    int64_t max_pixels; /* w*h; default OWL_IMAGE_DEFAULT_MAX_PIXELS */
    int max_side;       /* max(w, h); default and ceiling OWL_IMAGE_MAX_SIDE */
} owl_image_limits;

#define OWL_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)64 * 1024 * 1024) /* 64 MP: 192 MB RGB */
#define OWL_IMAGE_MAX_SIDE 65536

/* How a non-square image is made square before the S x S resize. */
typedef enum {
    OWL_IMAGE_STRETCH = 0, /* resize to M x M bicubic (README / eval scripts) */
    OWL_IMAGE_PAD = 1,     /* expand2square with pad_rgb (CLI, training) */
    OWL_IMAGE_CROP = 2     /* no squaring: shortest edge to S, center crop */
} owl_image_aspect;

/* Parse "stretch", "pad", "crop" (also "none" = crop, the processor-only path).
 * Returns OWL_E_INVALID for anything else. */
owl_status owl_image_aspect_from_name(const char *name, owl_image_aspect *out, owl_err *err);

/* expand2square fill colour int(255 * mean) per channel: (122, 116, 104) for CLIP. */
void owl_image_pad_color_from_mean(const float mean[3], uint8_t pad_rgb[3]);

/* STRETCH is Pillow-exact (resize to M x M, then to S x S, 8-bit in between)
 * while the M x M square has at most OWL_IMAGE_STRETCH_EXACT_PIXELS pixels or
 * at most twice the image's: that costs O(M^2), a hang for a 65536x1 image.
 * Past it, the image is resized to S x S in one bicubic pass, O(w*h + S^2);
 * the result differs from the two-pass one by a few LSB (tests/c/test_image.c
 * measures it). owl_image_stretch_exact(w, h) says which path an image takes. */
#define OWL_IMAGE_STRETCH_EXACT_PIXELS ((int64_t)4096 * 4096)
int owl_image_stretch_exact(int w, int h);

/* Decode PNG/JPEG/BMP/GIF bytes (data, size) into *out (fully overwritten; left
 * {0} on error). limits may be NULL (defaults). Errors: OWL_E_INVALID (NULL/empty),
 * OWL_E_FORMAT (unknown or corrupt data, stb's reason in the message), OWL_E_LIMIT
 * (header dimensions over limits), OWL_E_NOMEM. */
owl_status owl_image_decode(const void *data, size_t size, owl_image *out,
                            const owl_image_limits *limits, owl_err *err);

/* Copy an RGBA buffer (e.g. canvas ImageData, non-premultiplied) of w x h pixels
 * whose rows are stride bytes apart (stride >= 4*w) into *out, dropping alpha.
 * Default limits apply. */
owl_status owl_image_from_rgba(const uint8_t *rgba, int w, int h, size_t stride,
                               owl_image *out, owl_err *err);

/* Release img->rgb and zero *img. NULL or an empty image is a no-op. */
void owl_image_free(owl_image *img);

/* Square img into *out (new image, M = max(w, h); OWL_E_LIMIT when M x M is
 * over OWL_IMAGE_DEFAULT_MAX_PIXELS for STRETCH and PAD): STRETCH resizes to
 * M x M (Pillow bicubic; a copy if already square; one pass past
 * owl_image_stretch_exact), PAD pastes onto an M x M canvas of
 * pad_rgb (wide: x=0, y=(W-H)//2; tall: x=(H-W)//2, y=0), CROP copies unchanged.
 * pad_rgb may be NULL for modes other than PAD. */
owl_status owl_image_square(const owl_image *img, owl_image_aspect mode,
                            const uint8_t pad_rgb[3], owl_image *out, owl_err *err);

/* Resize img to w x h exactly as Pillow 9.4 Image.resize(..., BICUBIC) on an RGB
 * image: separable a = -0.5 kernel, support scaled by the shrink factor, 22-bit
 * fixed-point coefficients, horizontal pass then vertical, 8-bit intermediate. */
owl_status owl_image_resize_bicubic(const owl_image *img, int w, int h, owl_image *out,
                                    owl_err *err);

/* chw[c][y][x] = (f32(u8 * (1/255)) - mean[c]) / std[c] in float32, c = R,G,B;
 * chw holds 3*w*h floats. Errors: OWL_E_INVALID (NULL, empty, std[c] == 0). */
owl_status owl_image_normalize(const owl_image *img, const float mean[3], const float std[3],
                               float *chw, owl_err *err);

/* The whole chain: square by mode, resize to size x size, normalise into chw
 * (3*size*size floats). resized (size*size*3 bytes, HWC) receives the 8-bit image
 * before normalisation when not NULL. pad_rgb is used by PAD only (NULL there =
 * owl_image_pad_color_from_mean(mean)). Working memory is about size*max(w,h)*3
 * bytes: the M x M square is never built. Time is O(w*h + size^2) for PAD and
 * CROP, and for STRETCH past owl_image_stretch_exact; O(M^2) with
 * M^2 <= max(16 M, 2*w*h) otherwise. Errors as above; outputs are
 * unspecified on error. */
owl_status owl_image_preprocess(const owl_image *img, int size, owl_image_aspect mode,
                                const float mean[3], const float std[3],
                                const uint8_t pad_rgb[3], float *chw, uint8_t *resized,
                                owl_err *err);

#endif
