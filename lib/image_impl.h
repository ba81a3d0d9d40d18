/* image_impl.h -- internal (not installed): what the PNG and JPEG codecs
 * and the pixel-buffer conversions share beyond image.h.
 *
 *   int v = heed_exif_orientation(tiff, tiff_size);  // 1..8, 1 if absent
 *   HEED_TRY(heed_image_orient_decoded(&img, v));     // img now upright
 */
#ifndef HEED_IMAGE_IMPL_H
#define HEED_IMAGE_IMPL_H

#include <stddef.h>

#include "error.h"
#include "tensor.h"

/* The orientation tag (0x0112) of the EXIF TIFF structure at tiff (as a
 * JPEG's APP1 holds it after "Exif\0\0", or a PNG's eXIf chunk): 1..8, or 1
 * when it is absent, malformed or out of range. Reads only within size. */
int heed_exif_orientation(const unsigned char *tiff, size_t size);

/* Replaces *img (owned, from a decoder) by its upright version for the
 * orientation (1: nothing to do). On failure *img is left as it was. */
heed_status heed_image_orient_decoded(heed_tensor *img, int orientation);

/* A value in [0, 1] as a sample of maxv + 1 levels (255: 8 bits, 65535:
 * 16): round(v * maxv), values outside [0, 1] clamped, NaN as 0. */
static inline unsigned heed_image_code(float v, unsigned maxv) {
    if (!(v > 0.0f)) return 0;
    if (v >= 1.0f) return maxv;
    return (unsigned)(v * (float)maxv + 0.5f);
}

#endif
