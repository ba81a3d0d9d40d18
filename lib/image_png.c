/* image_png.c -- PNG decoding and encoding with libpng, from and to memory.
 *
 * Decoding asks libpng to expand everything to 8 or 16 bits per sample:
 * palette -> RGB, tRNS -> an alpha channel, 1/2/4-bit gray -> 8-bit. A
 * sample v of depth d becomes v / (2^d - 1). Encoding is the inverse with
 * round(clamp(x, 0, 1) * (2^d - 1)), d = 8 or 16.
 *
 * libpng reports errors by calling our handler, which records the message
 * and longjmps back to the one setjmp in png_run(); everything allocated in
 * between hangs off a state struct that the caller frees, so no local
 * variable is live across the longjmp. Warnings are dropped (the library
 * never prints). The reader callback fails on the first byte past the end
 * of the buffer, so truncated files are reported as such. An eXIf chunk's
 * orientation (libpng reads the chunk) is applied after decoding
 * (image_orient.c).
 */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "image_impl.h"

typedef struct png_state {
    png_structp png;
    png_infop info;
    const unsigned char *data; /* (size) the whole file */
    size_t size, pos;
    const char *name;
    size_t max_pixels;
    int truncated;
    int orientation; /* EXIF's, 1..8: 1 (as stored) unless an eXIf chunk says otherwise */
    char msg[256];
    unsigned char *pixels; /* one row of samples (malloc) */
    unsigned char *whole;  /* interlaced images: all rows (heed_alloc) */
    png_bytep *rows;       /* (H) row pointers into whole */
    heed_tensor img;       /* (1, C, H, W) */
    /* encoding */
    unsigned char *out; /* (out_size) malloc'ed PNG stream */
    size_t out_size, out_cap;
} png_state;

static void on_error(png_structp png, png_const_charp msg) {
    png_state *st = png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

static void read_mem(png_structp png, png_bytep dst, size_t n) {
    png_state *st = png_get_io_ptr(png);
    if (n > st->size - st->pos) {
        st->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(dst, st->data + st->pos, n);
    st->pos += n;
}

/* Converts one decoded row (W * C samples of `depth` bits) into the planes. */
static void store_row(heed_tensor *img, int y, const unsigned char *row, int depth) {
    const int C = img->c, W = img->w;
    const size_t plane = (size_t)img->h * W;
    float *dst = img->data + (size_t)y * W;
    for (int x = 0; x < W; x++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)x * C + c;
            float v = depth == 16 ? (float)((row[2 * i] << 8) | row[2 * i + 1]) / 65535.0f
                                  : (float)row[i] / 255.0f;
            dst[(size_t)c * plane + x] = v;
        }
}

/* Bytes of IDAT data the file holds (as far as it goes): a bound on how
 * many pixels it can decode to, checked before any pixel memory is
 * allocated. */
static uint64_t idat_bytes(const unsigned char *p, size_t size) {
    uint64_t sum = 0;
    size_t pos = 8; /* after the signature */
    while (size - pos >= 8) {
        const uint32_t len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 |
                             (uint32_t)p[pos + 2] << 8 | p[pos + 3];
        const int idat = !memcmp(p + pos + 4, "IDAT", 4);
        pos += 8;
        const size_t avail = size - pos;
        if (idat) sum += len < avail ? len : avail;
        if (len > avail || avail - len < 4) break;
        pos += (size_t)len + 4; /* data and CRC */
    }
    return sum;
}

static heed_status decode_body(png_state *st) {
    png_structp png = st->png;
    png_infop info = st->info;
    /* We enforce our own pixel limit; libpng's default (1e6 per side) would
     * reject legal images with a less helpful message. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, st, read_mem);
    png_read_info(png, info);
    png_uint_32 W, H;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &W, &H, &depth, &ctype, &interlace, NULL, NULL);
    if ((uint64_t)W * H > st->max_pixels)
        return heed_fail(HEED_ERR_LIMIT,
                         "%s: PNG of %lux%lu pixels exceeds the limit of %zu pixels",
                         st->name, (unsigned long)W, (unsigned long)H, st->max_pixels);
    /* Deflate expands at most 1032:1, so a file whose image data is far too
     * short for its header's size is cut (or forged): refuse it before
     * allocating W x H pixels for it. */
    const uint64_t bits = (uint64_t)png_get_channels(png, info) * (unsigned)depth;
    const uint64_t need = (uint64_t)W * H * bits / 8, have = idat_bytes(st->data, st->size);
    if (have * 1032 + 64 < need)
        return heed_fail(HEED_ERR_FORMAT,
                         "%s: truncated PNG (%llu bytes of image data cannot hold "
                         "%lux%lu pixels)", st->name, (unsigned long long)have, (unsigned long)W,
                         (unsigned long)H);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int C = png_get_channels(png, info);
    depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (C < 1 || C > 4 || (depth != 8 && depth != 16) ||
        rowbytes != (size_t)W * C * (depth / 8))
        return heed_fail(HEED_ERR_FORMAT, "%s: unsupported PNG layout "
                         "(%d channels of %d bits)", st->name, C, depth);
    heed_status s = heed_tensor_alloc(&st->img, 1, C, (int)H, (int)W);
    if (s != HEED_OK) return s;
    if (passes == 1) {
        st->pixels = malloc(rowbytes);
        if (!st->pixels) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", st->name);
        for (png_uint_32 y = 0; y < H; y++) {
            png_read_row(png, st->pixels, NULL);
            store_row(&st->img, (int)y, st->pixels, depth);
        }
    } else {
        /* Adam7 fills rows over several passes: keep the whole image. */
        /* As large as the image itself: heed_alloc, so that it counts
         * against the memory limit as the tensor does. */
        st->whole = heed_alloc(rowbytes * H);
        if (!st->whole)
            return heed_alloc_failed(rowbytes * H, "%s: the interlaced rows", st->name);
        st->rows = malloc(sizeof(png_bytep) * H);
        if (!st->rows) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", st->name);
        for (png_uint_32 y = 0; y < H; y++) st->rows[y] = st->whole + rowbytes * y;
        png_read_image(png, st->rows);
        for (png_uint_32 y = 0; y < H; y++) store_row(&st->img, (int)y, st->rows[y], depth);
    }
    /* Reading up to IEND catches files cut after the image data, and
     * reads an eXIf chunk placed after it (libpng drops one whose CRC does
     * not match, as any damaged ancillary chunk). */
    png_read_end(png, info);
    png_uint_32 exif_len;
    png_bytep exif;
    if (png_get_eXIf_1(png, info, &exif_len, &exif)) st->orientation = heed_exif_orientation(exif, exif_len);
    return HEED_OK;
}

static heed_status decode_run(png_state *st) {
    if (setjmp(png_jmpbuf(st->png))) {
        if (st->truncated)
            return heed_fail(HEED_ERR_FORMAT,
                             "%s: truncated PNG (file ends after %zu bytes)",
                             st->name, st->size);
        return heed_fail(HEED_ERR_FORMAT, "%s: corrupt PNG: %s", st->name, st->msg);
    }
    return decode_body(st);
}

heed_status heed_png_decode(const unsigned char *data, size_t size, const char *name,
                            size_t max_pixels, heed_tensor *out) {
    *out = (heed_tensor){0};
    png_state st = {.data = data, .size = size, .name = name, .max_pixels = max_pixels, .orientation = 1};
    st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
    if (st.png) st.info = png_create_info_struct(st.png);
    heed_status s = st.info ? decode_run(&st)
                            : heed_fail(HEED_ERR_NOMEM, "%s: cannot create a PNG reader",
                                        name);
    png_destroy_read_struct(&st.png, st.info ? &st.info : NULL, NULL);
    free(st.rows);
    heed_free(st.whole);
    free(st.pixels);
    if (s == HEED_OK) s = heed_image_orient_decoded(&st.img, st.orientation);
    if (s == HEED_OK) *out = st.img;
    else heed_tensor_free(&st.img);
    return s;
}

/* ---- encoding ---------------------------------------------------------- */

static void write_mem(png_structp png, png_bytep src, size_t n) {
    png_state *st = png_get_io_ptr(png);
    if (n > st->out_cap - st->out_size) {
        size_t cap = st->out_cap ? st->out_cap : 1 << 16;
        while (cap - st->out_size < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "out of memory");
            cap *= 2;
        }
        unsigned char *p = realloc(st->out, cap);
        if (!p) png_error(png, "out of memory");
        st->out = p, st->out_cap = cap;
    }
    memcpy(st->out + st->out_size, src, n);
    st->out_size += n;
}

static void flush_mem(png_structp png) {
    (void)png;
}

static heed_status encode_body(png_state *st, const heed_tensor *img, int bits16) {
    static const int ctypes[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                  PNG_COLOR_TYPE_RGB_ALPHA};
    png_structp png = st->png;
    const int C = img->c, H = img->h, W = img->w;
    const size_t plane = (size_t)H * W;
    png_set_write_fn(png, st, write_mem, flush_mem);
    png_set_IHDR(png, st->info, (png_uint_32)W, (png_uint_32)H, bits16 ? 16 : 8, ctypes[C],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, st->info);
    st->pixels = malloc((size_t)W * C * (bits16 ? 2 : 1));
    if (!st->pixels) return heed_fail(HEED_ERR_NOMEM, "out of memory encoding a PNG");
    for (int y = 0; y < H; y++) {
        const float *src = img->data + (size_t)y * W;
        unsigned char *row = st->pixels;
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                float v = src[(size_t)c * plane + x];
                if (bits16) {
                    unsigned u = heed_image_code(v, 65535);
                    *row++ = (unsigned char)(u >> 8);
                    *row++ = (unsigned char)(u & 0xff);
                } else {
                    *row++ = (unsigned char)heed_image_code(v, 255);
                }
            }
        png_write_row(png, st->pixels);
    }
    png_write_end(png, NULL);
    return HEED_OK;
}

static heed_status encode_run(png_state *st, const heed_tensor *img, int bits16) {
    if (setjmp(png_jmpbuf(st->png)))
        return heed_fail(HEED_ERR_NOMEM, "PNG encoding failed: %s", st->msg);
    return encode_body(st, img, bits16);
}

heed_status heed_png_encode(const heed_tensor *img, int bits16, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    png_state st = {.name = "<output>"};
    st.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
    if (st.png) st.info = png_create_info_struct(st.png);
    heed_status s = st.info ? encode_run(&st, img, bits16)
                            : heed_fail(HEED_ERR_NOMEM, "cannot create a PNG writer");
    png_destroy_write_struct(&st.png, st.info ? &st.info : NULL);
    free(st.pixels);
    if (s != HEED_OK) {
        free(st.out);
        return s;
    }
    *data = st.out;
    *size = st.out_size;
    return HEED_OK;
}
