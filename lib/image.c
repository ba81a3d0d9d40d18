/* image.c -- loading and saving images: format sniffing, whole-file reads,
 * atomic writes; and channel conversion.
 *
 * The codecs themselves live in image_png.c and image_jpeg.c and work on
 * memory buffers only, so a file is read whole first and every code path
 * (files, tests, fuzzers) decodes the same way. Saving encodes to memory,
 * writes "<path>.tmp.<pid>" and renames it over path: rename() is atomic on
 * POSIX file systems, so readers see either the old file or the new one.
 *
 * Conversion (per pixel, values in [0, 1]):
 *   Y = 0.299 R + 0.587 G + 0.114 B                  (ITU-R BT.601 luma)
 *   dropping alpha composites over black: v' = v * a
 */
#include "image.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "file_impl.h"

static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const unsigned char jpeg_magic[3] = {0xff, 0xd8, 0xff};

/* Does the data start with magic, or is it a prefix of magic (a cut file)? */
static int starts_like(const unsigned char *p, size_t size, const unsigned char *magic, size_t len) {
    return memcmp(p, magic, size < len ? size : len) == 0;
}

heed_status heed_image_load_mem(const void *data, size_t size, const char *name,
                                size_t max_pixels, heed_tensor *out) {
    *out = (heed_tensor){0};
    if (!name) name = "<memory>";
    if (max_pixels == 0) max_pixels = HEED_IMAGE_MAX_PIXELS_DEFAULT;
    const unsigned char *p = data;
    if (size == 0 || !p) return heed_fail(HEED_ERR_FORMAT, "%s: empty file", name);
    const int png = starts_like(p, size, png_magic, sizeof png_magic);
    const int jpeg = starts_like(p, size, jpeg_magic, sizeof jpeg_magic);
    if (png && size >= sizeof png_magic) return heed_png_decode(p, size, name, max_pixels, out);
    if (jpeg && size >= sizeof jpeg_magic) return heed_jpeg_decode(p, size, name, max_pixels, out);
    if (png || jpeg)
        return heed_fail(HEED_ERR_FORMAT, "%s: truncated %s (file ends after %zu bytes)",
                         name, png ? "PNG" : "JPEG", size);
    return heed_fail(HEED_ERR_FORMAT,
                     "%s: not a PNG or JPEG image (unrecognised first bytes)", name);
}

/* Reads the whole of f into *buf. The first bytes are checked before the
 * rest is read, so pointing the loader at a device or a huge non-image file
 * fails at once; image files are bounded by what an image within the pixel
 * limit could need (16-bit RGBA stored uncompressed, plus room for
 * metadata), so a hostile file cannot make us read without end. */
static heed_status read_file(FILE *f, const char *path, size_t max_pixels, unsigned char **buf,
                             size_t *size) {
    size_t limit = SIZE_MAX / 16 - (64u << 20) > max_pixels ? max_pixels * 16 + (64u << 20) : SIZE_MAX;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory reading", path);
    for (;;) {
        if (n == cap) {
            if (cap >= limit) {
                free(b);
                return heed_fail(HEED_ERR_LIMIT,
                                 "%s: file larger than %zu bytes, more than an "
                                 "image of at most %zu pixels needs", path, limit, max_pixels);
            }
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            unsigned char *nb = realloc(b, ncap);
            if (!nb) {
                free(b);
                return heed_fail(HEED_ERR_NOMEM, "%s: out of memory reading", path);
            }
            b = nb, cap = ncap;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
        /* Sniff as soon as enough bytes arrived: a non-image stops here. */
        if (n >= 8 && n - got < 8 && memcmp(b, png_magic, 8) != 0 && memcmp(b, jpeg_magic, 3) != 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(b);
        return heed_fail(HEED_ERR_IO, "cannot read %s: %s", path, strerror(e));
    }
    *buf = b;
    *size = n;
    return HEED_OK;
}

heed_status heed_image_read(FILE *f, const char *name_for_errors, size_t max_pixels, heed_tensor *out) {
    *out = (heed_tensor){0};
    const char *name = name_for_errors ? name_for_errors : "<stream>";
    if (!f) return heed_fail(HEED_ERR_ARG, "heed_image_read: %s: no stream (NULL)", name);
    if (max_pixels == 0) max_pixels = HEED_IMAGE_MAX_PIXELS_DEFAULT;
    unsigned char *buf = NULL;
    size_t size = 0;
    HEED_TRY(read_file(f, name, max_pixels, &buf, &size));
    heed_status s = heed_image_load_mem(buf, size, name, max_pixels, out);
    free(buf);
    return s;
}

heed_status heed_image_load(const char *path, size_t max_pixels, heed_tensor *out) {
    *out = (heed_tensor){0};
    if (!path) return heed_fail(HEED_ERR_ARG, "heed_image_load: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return heed_fail(HEED_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    heed_status s = heed_image_read(f, path, max_pixels, out);
    fclose(f);
    return s;
}

/* "png", "jpeg" or NULL from the extension of path. */
static const char *format_from_path(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (!dot) return NULL;
    if (strcasecmp(dot, ".png") == 0) return "png";
    if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0) return "jpeg";
    return NULL;
}

const char *heed_image_formats(void) {
#ifdef HEED_MINIMAL
    return ""; /* lib/minimal/no_codecs.c stands in for the codecs */
#else
    return "png jpeg";
#endif
}

heed_status heed_image_encode_mem(const heed_tensor *img, const char *format,
                                  const heed_image_save_opts *opts, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    HEED_CHECK_SHAPE(img && img->data && img->n == 1 && img->c >= 1 && img->c <= 4 && img->h >= 1 &&
                         img->w >= 1,
                     "heed_image_save: image must be (1, C, H, W) with C in 1..4, got (%d, %d, %d, %d)",
                     img ? img->n : 0, img ? img->c : 0, img ? img->h : 0, img ? img->w : 0);
    heed_image_save_opts o = opts ? *opts : (heed_image_save_opts){0};
    if (format && strcmp(format, "png") == 0) return heed_png_encode(img, o.png_16bit, data, size);
    if (format && strcmp(format, "jpeg") == 0) {
        if (img->c != 1 && img->c != 3)
            return heed_fail(HEED_ERR_ARG,
                             "heed_image_save: JPEG stores gray or RGB only, the image has %d channels "
                             "(%s); convert it with heed_image_convert or save as PNG",
                             img->c, img->c == 2 ? "gray + alpha" : "RGBA");
        int q = o.jpeg_quality ? o.jpeg_quality : 90;
        if (q < 1 || q > 100)
            return heed_fail(HEED_ERR_ARG, "heed_image_save: JPEG quality %d is not in 1..100", q);
        return heed_jpeg_encode(img, q, data, size);
    }
    return heed_fail(HEED_ERR_ARG, "heed_image_save: unknown format \"%s\" (png or jpeg)",
                     format ? format : "(null)");
}

heed_status heed_image_save(const char *path, const heed_tensor *img, const heed_image_save_opts *opts) {
    if (!path) return heed_fail(HEED_ERR_ARG, "heed_image_save: path is NULL");
    const char *format = format_from_path(path);
    if (!format)
        return heed_fail(HEED_ERR_ARG,
                         "%s: unknown extension (use .png, .jpg or .jpeg)", path);
    void *data;
    size_t size;
    heed_status s = heed_image_encode_mem(img, format, opts, &data, &size);
    /* A misuse (shape, channels for JPEG, quality) names this function;
     * what the encoder ran into (a side over JPEG's limit, memory) is
     * about this file, so it begins with its name, as the loader's do. */
    if (s != HEED_OK && s != HEED_ERR_ARG && s != HEED_ERR_SHAPE) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", heed_last_error());
        return heed_fail(s, "%s: %s", path, msg);
    }
    if (s != HEED_OK) return s;
    s = heed_write_atomic(path, data, size);
    free(data);
    return s;
}

/* ---- channel conversion ---------------------------------------------- */

heed_status heed_image_convert(const heed_tensor *in, int channels, heed_tensor *out) {
    if (channels < 1 || channels > 4)
        return heed_fail(HEED_ERR_ARG, "heed_image_convert: %d channels asked, not in 1..4", channels);
    if (in == out) return heed_fail(HEED_ERR_ARG, "heed_image_convert: out must not be in");
    HEED_CHECK_SHAPE(in->data && in->c >= 1 && in->c <= 4,
                     "heed_image_convert: input (%d, %d, %d, %d) must have 1..4 channels",
                     in->n, in->c, in->h, in->w);
    HEED_TRY(heed_tensor_ensure(out, in->n, channels, in->h, in->w));
    const int C = in->c, N = in->n;
    const size_t HW = (size_t)in->h * in->w;
    const int in_alpha = C == 2 || C == 4, out_alpha = channels == 2 || channels == 4;
    const int in_color = C >= 3, out_color = channels >= 3;
    for (int n = 0; n < N; n++) {
        const float *src = in->data + (size_t)n * C * HW;
        float *dst = out->data + (size_t)n * channels * HW;
        const float *a = in_alpha ? src + (size_t)(C - 1) * HW : NULL;
        for (size_t i = 0; i < HW; i++) {
            float r, g, b;
            if (in_color) r = src[i], g = src[HW + i], b = src[2 * HW + i];
            else r = g = b = src[i];
            /* Alpha survives only if both sides have it; otherwise composite. */
            float alpha = a ? a[i] : 1.0f;
            float k = a && !out_alpha ? alpha : 1.0f;
            if (out_color) {
                dst[i] = r * k;
                dst[HW + i] = g * k;
                dst[2 * HW + i] = b * k;
            } else {
                dst[i] = in_color ? (0.299f * r + 0.587f * g + 0.114f * b) * k : r * k;
            }
            if (out_alpha) dst[(size_t)(channels - 1) * HW + i] = alpha;
        }
    }
    return HEED_OK;
}
