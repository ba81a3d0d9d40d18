/* image_pixels.c -- images to and from interleaved 8-bit pixel buffers:
 * the layout (h, w, channels) that the rest of the world uses, against
 * heed's planar (1, channels, h, w) floats. With bgr the first and third
 * channels trade places. */
#include <stdint.h>

#include "image.h"
#include "image_impl.h"

/* Which stored channel holds planar channel c. */
static int stored(int c, int bgr) {
    return bgr && c < 3 ? 2 - c : c;
}

static heed_status check_layout(const char *what, int h, int w, int channels, size_t stride, int bgr) {
    if (h < 1 || w < 1 || channels < 1 || channels > 4)
        return heed_fail(HEED_ERR_ARG, "%s: %d x %d pixels of %d channels (sizes >= 1, channels 1..4)", what,
                         h, w, channels);
    if (bgr && channels < 3)
        return heed_fail(HEED_ERR_ARG, "%s: BGR order needs 3 or 4 channels, not %d", what, channels);
    if (stride < (size_t)w * channels)
        return heed_fail(HEED_ERR_ARG, "%s: a row stride of %zu bytes is under the row's %zu", what, stride,
                         (size_t)w * channels);
    /* The last row ends at (h - 1) * stride + w * channels: within what a
     * pointer can reach (a negative stride cast to size_t is not). */
    if (h > 1 && stride > (PTRDIFF_MAX - (size_t)w * channels) / (size_t)(h - 1))
        return heed_fail(HEED_ERR_ARG, "%s: %d rows %zu bytes apart do not fit in memory (stride is from "
                         "one row's start to the next's, never negative)", what, h, stride);
    return HEED_OK;
}

heed_status heed_image_from_pixels(const unsigned char *pixels, int h, int w, int channels,
                                   size_t stride, int bgr, heed_tensor *out) {
    if (!pixels || !out) return heed_fail(HEED_ERR_ARG, "image from pixels: a NULL argument");
    if (stride == 0 && w > 0 && channels > 0) stride = (size_t)w * channels;
    HEED_TRY(check_layout("image from pixels", h, w, channels, stride, bgr));
    HEED_TRY(heed_tensor_ensure(out, 1, channels, h, w));
    const size_t plane = (size_t)h * w;
    for (int c = 0; c < channels; c++) {
        const int k = stored(c, bgr);
        float *dst = out->data + (size_t)c * plane;
        for (int y = 0; y < h; y++) {
            const unsigned char *row = pixels + (size_t)y * stride;
            for (int x = 0; x < w; x++) dst[(size_t)y * w + x] = row[(size_t)x * channels + k] / 255.0f;
        }
    }
    return HEED_OK;
}

heed_status heed_image_to_pixels(const heed_tensor *img, int bgr, unsigned char *pixels,
                                 size_t stride) {
    if (!img || !pixels) return heed_fail(HEED_ERR_ARG, "image to pixels: a NULL argument");
    if (!img->data) return heed_fail(HEED_ERR_ARG, "image to pixels: the image holds nothing");
    if (img->n != 1)
        return heed_fail(HEED_ERR_ARG, "image to pixels: %d images, not one", img->n);
    const int C = img->c, H = img->h, W = img->w;
    if (stride == 0 && W > 0 && C > 0) stride = (size_t)W * C;
    HEED_TRY(check_layout("image to pixels", H, W, C, stride, bgr));
    const size_t plane = (size_t)H * W;
    for (int c = 0; c < C; c++) {
        const int k = stored(c, bgr);
        const float *src = img->data + (size_t)c * plane;
        for (int y = 0; y < H; y++) {
            unsigned char *row = pixels + (size_t)y * stride;
            for (int x = 0; x < W; x++)
                row[(size_t)x * C + k] = (unsigned char)heed_image_code(src[(size_t)y * W + x], 255);
        }
    }
    return HEED_OK;
}
