/* image_orient.c -- EXIF orientation: reading the tag and turning an image
 * upright.
 *
 * Phones and cameras store the sensor's rows as they came and record in an
 * EXIF tag (0x0112, "Orientation") how a viewer should turn them; every
 * photo viewer and browser applies it. A classifier fed the stored rows
 * sees a portrait photo lying on its side, and an overlay drawn over them
 * would not match the photo the user sees, so the decoders apply it.
 *
 * The tag lives in a TIFF structure: a JPEG carries it in an APP1 segment
 * after "Exif\0\0", a PNG in an eXIf chunk. Only IFD0 is read, every
 * offset is checked against the buffer, and anything unreadable counts as
 * "no orientation" (1): a damaged tag must not make a readable image fail.
 */
#include <stdint.h>
#include <string.h>

#include "image.h"
#include "image_impl.h"

/* A 16- or 32-bit value at p in the TIFF's byte order. */
static uint32_t tiff_u16(const unsigned char *p, int big) {
    return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t tiff_u32(const unsigned char *p, int big) {
    return big ? tiff_u16(p, 1) << 16 | tiff_u16(p + 2, 1) : tiff_u16(p + 2, 0) << 16 | tiff_u16(p, 0);
}

int heed_exif_orientation(const unsigned char *tiff, size_t size) {
    if (!tiff || size < 8) return 1;
    int big;
    if (!memcmp(tiff, "MM\0\x2a", 4)) big = 1;
    else if (!memcmp(tiff, "II\x2a\0", 4)) big = 0;
    else return 1;
    const uint32_t ifd = tiff_u32(tiff + 4, big);
    if (ifd > size || size - ifd < 2) return 1;
    const uint32_t entries = tiff_u16(tiff + ifd, big);
    for (uint32_t i = 0; i < entries; i++) {
        const size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at > size || size - at < 12) return 1;
        const unsigned char *e = tiff + at;
        /* SHORT (type 3), one value, held in the entry itself. */
        if (tiff_u16(e, big) != 0x0112) continue;
        if (tiff_u16(e + 2, big) != 3 || tiff_u32(e + 4, big) != 1) return 1;
        const uint32_t v = tiff_u16(e + 8, big);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Where the displayed pixel (y, x) of an image stored as H x W comes from,
 * for orientations 2..8 (EXIF 2.32, table of tag 0x0112: 2 mirrors left
 * and right, 3 turns half round, 4 mirrors top and bottom, 5 transposes,
 * 6 turns a quarter clockwise, 7 transposes across the other diagonal, 8
 * turns a quarter anticlockwise). */
static size_t source_index(int orientation, int y, int x, int H, int W) {
    int sy, sx;
    switch (orientation) {
    case 2: sy = y, sx = W - 1 - x; break;
    case 3: sy = H - 1 - y, sx = W - 1 - x; break;
    case 4: sy = H - 1 - y, sx = x; break;
    case 5: sy = x, sx = y; break;
    case 6: sy = H - 1 - x, sx = y; break;
    case 7: sy = H - 1 - x, sx = W - 1 - y; break;
    case 8: sy = x, sx = W - 1 - y; break;
    default: sy = y, sx = x; break;
    }
    return (size_t)sy * W + sx;
}

heed_status heed_image_orient(const heed_tensor *in, int orientation, heed_tensor *out) {
    if (orientation < 1 || orientation > 8)
        return heed_fail(HEED_ERR_ARG, "heed_image_orient: orientation %d is not in 1..8", orientation);
    if (in == out) return heed_fail(HEED_ERR_ARG, "heed_image_orient: out must not be in");
    HEED_CHECK_SHAPE(in && in->data && in->n >= 1 && in->c >= 1 && in->h >= 1 && in->w >= 1,
                     "heed_image_orient: input (%d, %d, %d, %d) is empty", in ? in->n : 0,
                     in ? in->c : 0, in ? in->h : 0, in ? in->w : 0);
    const int H = in->h, W = in->w, turned = orientation >= 5;
    const int oh = turned ? W : H, ow = turned ? H : W;
    HEED_TRY(heed_tensor_ensure(out, in->n, in->c, oh, ow));
    const size_t plane = (size_t)H * W, planes = (size_t)in->n * in->c;
    for (size_t p = 0; p < planes; p++) {
        const float *src = in->data + p * plane;
        float *dst = out->data + p * plane;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) dst[(size_t)y * ow + x] = src[source_index(orientation, y, x, H, W)];
    }
    return HEED_OK;
}

heed_status heed_image_orient_decoded(heed_tensor *img, int orientation) {
    if (orientation == 1) return HEED_OK;
    heed_tensor upright = {0};
    HEED_TRY(heed_image_orient(img, orientation, &upright));
    heed_tensor_free(img);
    *img = upright;
    return HEED_OK;
}
