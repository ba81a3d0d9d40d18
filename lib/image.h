/* image.h -- PNG and JPEG files as tensors; resizing and channel conversion.
 *
 *   heed_tensor img = {0}, small = {0};
 *   if (heed_image_load("cat.jpg", 0, &img) != HEED_OK)       // (1, 3, H, W)
 *       fprintf(stderr, "heed: %s\n", heed_last_error());
 *   heed_image_resize(&img, 224, 224, &small);                  // (1, 3, 224, 224)
 *   heed_image_save("small.png", &small, NULL);
 *   heed_tensor_free(&img); heed_tensor_free(&small);
 *   heed_image_from_pixels(frame, 480, 640, 3, 0, 0, &img);    // a camera's RGB24
 *
 * An image is a tensor (1, C, H, W) with values in [0, 1]:
 *   C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
 * Channel values are stored as the file holds them (no gamma or colour
 * management): 8-bit v is v / 255, 16-bit v is v / 65535. Alpha is straight
 * (not premultiplied).
 */
#ifndef HEED_IMAGE_H
#define HEED_IMAGE_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest image heed_image_load decodes when max_pixels is 0. */
#define HEED_IMAGE_MAX_PIXELS_DEFAULT ((size_t)64 << 20) /* 64 megapixels */

/* Loads a PNG (gray, gray+alpha, RGB, RGBA, palette; 1/2/4/8/16-bit;
 * interlaced or not) or a JPEG (gray, YCbCr/RGB, CMYK/YCCK; baseline or
 * progressive). The format is detected from the first bytes, never from the
 * name. Palette images become RGB, or RGBA when they carry transparency
 * (tRNS); a gray or RGB PNG with a tRNS colour key gains an alpha channel;
 * CMYK JPEGs become RGB.
 *
 * The image comes upright, as viewers show it: an EXIF orientation tag (a
 * JPEG's APP1 "Exif" segment or a PNG's eXIf chunk; phones and cameras
 * write one) is applied with heed_image_orient, so a portrait photo whose
 * rows were stored sideways is (1, C, H, W) with H > W. A missing, damaged
 * or out-of-range tag means the rows as stored.
 *
 * *out is allocated here as (1, C, H, W) and the caller frees it with
 * heed_tensor_free; its previous contents are not freed (pass an empty
 * tensor). On failure *out is left empty.
 *
 * max_pixels (0 = HEED_IMAGE_MAX_PIXELS_DEFAULT) bounds W * H; a larger
 * image fails with HEED_ERR_LIMIT after reading only its header, before any
 * pixel memory is allocated.
 *
 * Errors: HEED_ERR_IO (missing or unreadable file), HEED_ERR_FORMAT
 * (empty, not an image, corrupt, truncated or unsupported; the message names
 * the file and what was wrong), HEED_ERR_LIMIT (too many pixels, or a file
 * larger than 16 bytes per allowed pixel plus 64 MiB, more than any image
 * within the limit needs), HEED_ERR_NOMEM. Never prints:
 * libpng and libjpeg warnings are silenced. "Corrupt" is what the decoders
 * detect: a file whose structure is cut or broken fails, a header that
 * claims more pixels than its data could hold fails before allocating
 * them, but damaged JPEG scan data that libjpeg only warns about (a bad
 * Huffman code, stray bytes) decodes to damaged pixels, and a PNG palette
 * index past the palette reads as black, as libpng gives them. */
heed_status heed_image_load(const char *path, size_t max_pixels, heed_tensor *out);

/* The same from the stream f, read to its end and left open (standard
 * input, a pipe): as a file is read, with the same limits and errors.
 * name_for_errors names the source in messages (NULL = "<stream>"). */
heed_status heed_image_read(FILE *f, const char *name_for_errors, size_t max_pixels, heed_tensor *out);

/* The file formats heed_image_load and heed_image_save handle in this
 * build: "png jpeg", or "" where heed was built without codecs (make
 * MINIMAL=1: images then come in as pixels, heed_image_from_pixels). */
const char *heed_image_formats(void);

/* The same from `size` bytes at `data` (tests, fuzzing, archives).
 * name_for_errors names the source in messages (NULL = "<memory>"). */
heed_status heed_image_load_mem(const void *data, size_t size, const char *name_for_errors,
                                size_t max_pixels, heed_tensor *out);

typedef struct heed_image_save_opts {
    int jpeg_quality; /* 1..100, 0 = 90 */
    int png_16bit;    /* nonzero: 16 bits per channel (else 8) */
} heed_image_save_opts;

/* Saves img, shape (1, C, H, W) with C in 1..4, as PNG or JPEG chosen by the
 * extension of path (.png, .jpg, .jpeg, any case). Values are clamped to
 * [0, 1] (NaN becomes 0) and rounded to the nearest code. JPEG takes C = 1
 * or 3 only. The file is written to "<path>.tmp.<pid>" and renamed over
 * path, so a failed save never leaves a partial file at path (nor a
 * temporary one). opts may be NULL (defaults).
 *
 * Errors: HEED_ERR_ARG (unknown extension, JPEG with alpha, quality out of
 * range), HEED_ERR_SHAPE (n != 1 or C not in 1..4), HEED_ERR_LIMIT (a JPEG
 * side over 65500 pixels), HEED_ERR_IO (cannot create, write or rename;
 * e.g. a missing directory), HEED_ERR_NOMEM. Messages about the file
 * (all but the ARG and SHAPE ones) begin with path. */
heed_status heed_image_save(const char *path, const heed_tensor *img,
                            const heed_image_save_opts *opts);

/* Encodes img as a PNG (format "png") or JPEG ("jpeg") into a buffer
 * allocated with malloc: *data (caller frees with free()) of *size bytes.
 * Same shapes, options and errors as heed_image_save, without the I/O. */
heed_status heed_image_encode_mem(const heed_tensor *img, const char *format,
                                  const heed_image_save_opts *opts, void **data, size_t *size);

/* Resizes every (n, c) plane of in (N, C, H, W) to (N, C, h, w), the way
 * PyTorch's F.interpolate(mode="bilinear", align_corners=False,
 * antialias=True) does: half-pixel centres, a triangle filter of radius 1
 * source pixel when enlarging (plain bilinear) and of radius `scale` when
 * shrinking by `scale` (antialiasing: every source pixel contributes),
 * weights renormalised at the borders. Each axis is handled separately.
 * *out is sized with heed_tensor_ensure and must not be `in`.
 *
 * Errors: HEED_ERR_ARG (h or w < 1, out == in), HEED_ERR_LIMIT,
 * HEED_ERR_NOMEM. */
heed_status heed_image_resize(const heed_tensor *in, int h, int w, heed_tensor *out);

/* Turns in (N, C, H, W) upright for EXIF orientation 1..8 (the value of tag
 * 0x0112): 1 as is, 2 mirrored left-right, 3 turned half round, 4 mirrored
 * top-bottom, 5 transposed (the stored first row becomes the left column),
 * 6 turned a quarter clockwise, 7 transposed across the other diagonal, 8
 * turned a quarter anticlockwise (as PIL's ImageOps.exif_transpose). For
 * 5..8 out is (N, C, W, H). heed_image_load does this already; this is
 * for images decoded elsewhere. *out is sized with heed_tensor_ensure and
 * must not be `in`.
 *
 * Errors: HEED_ERR_ARG (orientation not in 1..8, out == in), HEED_ERR_SHAPE
 * (empty input), HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_image_orient(const heed_tensor *in, int orientation, heed_tensor *out);

/* Converts in (N, C, H, W), C in 1..4, to `channels` (1..4) channels:
 *   colour -> gray: luma Y = 0.299 R + 0.587 G + 0.114 B;
 *   gray -> colour: Y replicated to R, G and B;
 *   adding alpha: alpha = 1 (opaque);
 *   dropping alpha: the image is composited over black (each colour value
 *   multiplied by its alpha), so fully transparent areas become 0, like the
 *   zero padding a network sees, whatever colour they happened to hide;
 *   keeping alpha (2 <-> 4): alpha copied unchanged.
 * *out is sized with heed_tensor_ensure and must not be `in`.
 *
 * Errors: HEED_ERR_ARG (channels not in 1..4, out == in), HEED_ERR_SHAPE
 * (in has a C outside 1..4), HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_image_convert(const heed_tensor *in, int channels, heed_tensor *out);

/* Interleaved 8-bit pixels, as cameras, frame buffers and other image
 * libraries hand them over (row after row, each pixel's channels side by
 * side), to an image (1, channels, h, w) with values v / 255. channels
 * 1..4: gray, gray + alpha, RGB, RGBA; with bgr nonzero, 3 or 4 channels
 * are stored B, G, R (, A), OpenCV's order, and come out as RGB(A). stride
 * is the bytes from one row's start to the next's (0: w * channels; more
 * for padded rows). *out is sized with heed_tensor_ensure.
 * Errors: HEED_ERR_ARG (pixels or out NULL, h or w < 1, channels outside
 * 1..4, bgr with 1 or 2 channels, a stride under w * channels or so
 * large that the rows pass the end of memory, as a negative one cast to
 * size_t does), HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_image_from_pixels(const unsigned char *pixels, int h, int w, int channels,
                                   size_t stride, int bgr, heed_tensor *out);

/* The other way: img (1, C, H, W), C 1..4, into interleaved 8-bit pixels
 * (H rows of stride bytes, 0: W * C; the bytes between a row's W * C and
 * stride are left alone), each value round(v * 255) after clamping to
 * [0, 1] (NaN as 0), as heed_image_save writes 8-bit files; bgr as above.
 * Errors: HEED_ERR_ARG (NULL arguments, img not one image of 1..4
 * channels, bgr with 1 or 2 channels, a stride under W * C or past
 * memory's end, as above). */
heed_status heed_image_to_pixels(const heed_tensor *img, int bgr, unsigned char *pixels,
                                 size_t stride);

/* Codec back ends behind heed_image_load_mem and heed_image_encode_mem
 * (image_png.c, image_jpeg.c). `data` must start with the format's magic
 * bytes; `name` names the source in messages; max_pixels is already
 * resolved (nonzero). Callers normally use the functions above. */
heed_status heed_png_decode(const unsigned char *data, size_t size, const char *name,
                            size_t max_pixels, heed_tensor *out);
heed_status heed_jpeg_decode(const unsigned char *data, size_t size, const char *name,
                             size_t max_pixels, heed_tensor *out);
/* img is (1, C, H, W), validated by the caller; *data is malloc'ed. */
heed_status heed_png_encode(const heed_tensor *img, int bits16, void **data, size_t *size);
heed_status heed_jpeg_encode(const heed_tensor *img, int quality, void **data, size_t *size);

#ifdef __cplusplus
}
#endif

#endif
