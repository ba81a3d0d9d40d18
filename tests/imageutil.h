/* imageutil.h -- test images written by libpng and libjpeg themselves, not
 * by heed's encoders, into memory: layouts heed never writes (palette,
 * interlaced, progressive, chunks of any kind) and an independent check of
 * what heed reads.
 *
 *   tu_membuf m = {0};
 *   png_set_write_fn(png, &m, tu_membuf_png_write, tu_membuf_png_flush);
 *   ...
 *   tu_membuf j = tu_libjpeg_write(&img, 95, 0);   // free(j.d)
 */
#ifndef HEED_TESTS_IMAGEUTIL_H
#define HEED_TESTS_IMAGEUTIL_H

#include <stddef.h>

#include <png.h>

#include "tensor.h"

typedef struct tu_membuf {
    unsigned char *d; /* (n) malloc'ed */
    size_t n, cap;
} tu_membuf;

/* libpng write callbacks appending to the tu_membuf given to
 * png_set_write_fn as its io pointer. */
void tu_membuf_png_write(png_structp png, png_bytep p, size_t n);
void tu_membuf_png_flush(png_structp png);

/* img (1, C, H, W), C = 1 (gray) or 3 (RGB), values rounded to k / 255, as
 * a JPEG of that quality written by libjpeg, baseline or progressive. */
tu_membuf tu_libjpeg_write(const heed_tensor *img, int quality, int progressive);

#endif
