/* image_jpeg.c -- JPEG decoding and encoding with libjpeg(-turbo), from and
 * to memory.
 *
 * Decoding: gray stays gray (C = 1); YCbCr and RGB come out as RGB (C = 3);
 * CMYK/YCCK is converted to RGB with R = (1 - C)(1 - K) etc., where files
 * carrying an Adobe marker store the inks inverted (as Photoshop writes
 * them), so there R = C K. A sample v becomes v / 255. Progressive files
 * are decoded in full by libjpeg; a progress monitor caps the number of
 * scans so a crafted file cannot keep the decoder busy indefinitely. The
 * EXIF orientation of an APP1 segment is applied after decoding
 * (image_orient.c).
 *
 * libjpeg's default error_exit calls exit() and its messages go to stderr:
 * here error_exit records the message and longjmps to the one setjmp in
 * jpeg_run(), output_message is silent, and a warning that means image data
 * is missing (premature end, data segment cut short) is an error too, so a
 * truncated file fails instead of decoding as grey blocks. Everything
 * allocated after the setjmp hangs off the state struct.
 *
 * Encoding: baseline JPEG of the given quality, 4:2:0 chroma, optimised
 * Huffman tables; values round(clamp(x, 0, 1) * 255).
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image.h"
#include "image_impl.h"

/* More scans than any real encoder writes (a few dozen at most). */
#define MAX_SCANS 1000

typedef struct jpeg_state {
    struct jpeg_error_mgr err; /* first, so cinfo->err points at the state */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int truncated, too_many_scans;
    int orientation; /* EXIF's, 1..8 */
    const char *name;
    size_t max_pixels;
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    unsigned char *row; /* (W * components) one scanline */
    heed_tensor img;    /* (1, C, H, W) */
    unsigned char *out; /* libjpeg's malloc'ed output buffer when encoding */
    unsigned long out_size;
} jpeg_state;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_state *st = (jpeg_state *)cinfo->err;
    cinfo->err->format_message(cinfo, st->msg);
    longjmp(st->jb, 1);
}

static void on_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return; /* trace messages */
    jpeg_state *st = (jpeg_state *)cinfo->err;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) {
        st->truncated = 1;
        cinfo->err->format_message(cinfo, st->msg);
        longjmp(st->jb, 1);
    }
    cinfo->err->num_warnings++;
}

static void on_progress(j_common_ptr cinfo) {
    jpeg_state *st = (jpeg_state *)cinfo->err;
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > MAX_SCANS) {
        st->too_many_scans = 1;
        snprintf(st->msg, sizeof st->msg, "more than %d scans", MAX_SCANS);
        longjmp(st->jb, 1);
    }
}

static void init_errors(jpeg_state *st) {
    jpeg_std_error(&st->err);
    st->err.error_exit = on_error_exit;
    st->err.output_message = on_output_message;
    st->err.emit_message = on_emit_message;
}

/* The orientation in the first APP1 segment that holds EXIF, else 1. */
static int exif_orientation(j_decompress_ptr d) {
    for (jpeg_saved_marker_ptr m = d->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && !memcmp(m->data, "Exif\0\0", 6))
            return heed_exif_orientation(m->data + 6, m->data_length - 6);
    return 1;
}

static heed_status decode_body(jpeg_state *st, const unsigned char *data, size_t size) {
    j_decompress_ptr d = &st->d;
    jpeg_create_decompress(d);
    st->progress.progress_monitor = on_progress;
    d->progress = &st->progress;
    jpeg_mem_src(d, data, (unsigned long)size);
    jpeg_save_markers(d, JPEG_APP0 + 1, 0xffff); /* APP1: EXIF, for the orientation */
    if (jpeg_read_header(d, TRUE) != JPEG_HEADER_OK)
        return heed_fail(HEED_ERR_FORMAT, "%s: JPEG holds tables but no image", st->name);
    st->orientation = exif_orientation(d);
    const size_t W = d->image_width, H = d->image_height;
    if ((uint64_t)W * H > st->max_pixels)
        return heed_fail(HEED_ERR_LIMIT,
                         "%s: JPEG of %zux%zu pixels exceeds the limit of %zu pixels",
                         st->name, W, H, st->max_pixels);
    /* Huffman coding spends at least one bit on every block's DC value, so
     * the bytes after the header bound the blocks the file can hold: a cut
     * or forged file is refused before W x H pixels are allocated for it.
     * (Arithmetic coding can go below a bit a block: not bounded.) */
    if (!d->arith_code) {
        uint64_t blocks = 0;
        for (int ci = 0; ci < d->num_components; ci++)
            blocks += (uint64_t)d->comp_info[ci].width_in_blocks * d->comp_info[ci].height_in_blocks;
        if ((uint64_t)d->src->bytes_in_buffer * 8 < blocks)
            return heed_fail(HEED_ERR_FORMAT,
                             "%s: truncated JPEG (%zu bytes of image data cannot "
                             "hold %zux%zu pixels)", st->name, (size_t)d->src->bytes_in_buffer, W, H);
    }
    int C, cmyk = 0;
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE: d->out_color_space = JCS_GRAYSCALE, C = 1; break;
    case JCS_CMYK:
    case JCS_YCCK: d->out_color_space = JCS_CMYK, C = 3, cmyk = 1; break;
    default: d->out_color_space = JCS_RGB, C = 3; break;
    }
    jpeg_start_decompress(d);
    const int comps = d->output_components;
    if (comps != (cmyk ? 4 : C) || d->output_width != W || d->output_height != H)
        return heed_fail(HEED_ERR_FORMAT, "%s: unsupported JPEG layout (%d components)",
                         st->name, comps);
    heed_status s = heed_tensor_alloc(&st->img, 1, C, (int)H, (int)W);
    if (s != HEED_OK) return s;
    st->row = malloc(W * (size_t)comps);
    if (!st->row) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", st->name);
    const size_t plane = W * H;
    const int inverted = d->saw_Adobe_marker;
    while (d->output_scanline < H) {
        size_t y = d->output_scanline;
        JSAMPROW rows[1] = {st->row};
        if (jpeg_read_scanlines(d, rows, 1) != 1)
            return heed_fail(HEED_ERR_FORMAT, "%s: JPEG decoding stalled at row %zu",
                             st->name, y);
        float *dst = st->img.data + y * W;
        const unsigned char *p = st->row;
        for (size_t x = 0; x < W; x++) {
            if (cmyk) {
                float k = inverted ? p[4 * x + 3] / 255.0f : 1.0f - p[4 * x + 3] / 255.0f;
                for (int c = 0; c < 3; c++) {
                    float ink = inverted ? p[4 * x + c] / 255.0f : 1.0f - p[4 * x + c] / 255.0f;
                    dst[c * plane + x] = ink * k;
                }
            } else {
                for (int c = 0; c < C; c++) dst[c * plane + x] = p[(size_t)C * x + c] / 255.0f;
            }
        }
    }
    jpeg_finish_decompress(d);
    return HEED_OK;
}

static heed_status decode_run(jpeg_state *st, const unsigned char *data, size_t size) {
    if (setjmp(st->jb)) {
        if (st->truncated)
            return heed_fail(HEED_ERR_FORMAT, "%s: truncated JPEG (%s)", st->name, st->msg);
        return heed_fail(HEED_ERR_FORMAT, "%s: corrupt JPEG: %s", st->name, st->msg);
    }
    return decode_body(st, data, size);
}

heed_status heed_jpeg_decode(const unsigned char *data, size_t size, const char *name,
                             size_t max_pixels, heed_tensor *out) {
    *out = (heed_tensor){0};
    jpeg_state *st = calloc(1, sizeof *st);
    if (!st) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", name);
    st->name = name;
    st->max_pixels = max_pixels;
    init_errors(st);
    st->d.err = &st->err;
    heed_status s = decode_run(st, data, size);
    jpeg_destroy_decompress(&st->d);
    if (s == HEED_OK) s = heed_image_orient_decoded(&st->img, st->orientation);
    free(st->row);
    if (s == HEED_OK) *out = st->img;
    else heed_tensor_free(&st->img);
    free(st);
    return s;
}

/* ---- encoding ---------------------------------------------------------- */

static heed_status encode_body(jpeg_state *st, const heed_tensor *img, int quality) {
    j_compress_ptr c = &st->c;
    jpeg_create_compress(c);
    jpeg_mem_dest(c, &st->out, &st->out_size);
    const int C = img->c, H = img->h, W = img->w;
    const size_t plane = (size_t)H * W;
    c->image_width = (JDIMENSION)W;
    c->image_height = (JDIMENSION)H;
    c->input_components = C;
    c->in_color_space = C == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
    c->optimize_coding = TRUE;
    st->row = malloc((size_t)W * C);
    if (!st->row) return heed_fail(HEED_ERR_NOMEM, "out of memory encoding a JPEG");
    jpeg_start_compress(c, TRUE);
    while (c->next_scanline < (JDIMENSION)H) {
        const float *src = img->data + (size_t)c->next_scanline * W;
        for (int x = 0; x < W; x++)
            for (int k = 0; k < C; k++)
                st->row[(size_t)x * C + k] = (unsigned char)heed_image_code(src[k * plane + x], 255);
        JSAMPROW rows[1] = {st->row};
        jpeg_write_scanlines(c, rows, 1);
    }
    jpeg_finish_compress(c);
    return HEED_OK;
}

static heed_status encode_run(jpeg_state *st, const heed_tensor *img, int quality) {
    if (setjmp(st->jb))
        return heed_fail(HEED_ERR_NOMEM, "JPEG encoding failed: %s", st->msg);
    return encode_body(st, img, quality);
}

heed_status heed_jpeg_encode(const heed_tensor *img, int quality, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    if (img->w > JPEG_MAX_DIMENSION || img->h > JPEG_MAX_DIMENSION)
        return heed_fail(HEED_ERR_LIMIT, "JPEG sides are at most %d pixels, the image is %dx%d",
                         (int)JPEG_MAX_DIMENSION, img->w, img->h);
    jpeg_state *st = calloc(1, sizeof *st);
    if (!st) return heed_fail(HEED_ERR_NOMEM, "out of memory encoding a JPEG");
    init_errors(st);
    st->c.err = &st->err;
    heed_status s = encode_run(st, img, quality);
    jpeg_destroy_compress(&st->c);
    free(st->row);
    if (s == HEED_OK) {
        *data = st->out;
        *size = st->out_size;
    } else {
        free(st->out);
    }
    free(st);
    return s;
}
