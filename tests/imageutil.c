/* imageutil.c -- test images written by libpng and libjpeg (imageutil.h). */
#include "imageutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "testutil.h"

void tu_membuf_png_write(png_structp png, png_bytep p, size_t n) {
    tu_membuf *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->d = realloc(m->d, m->cap);
        ck_assert_ptr_nonnull(m->d);
    }
    memcpy(m->d + m->n, p, n);
    m->n += n;
}

void tu_membuf_png_flush(png_structp png) {
    (void)png;
}

tu_membuf tu_libjpeg_write(const heed_tensor *img, int quality, int progressive) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = (JDIMENSION)img->w;
    c.image_height = (JDIMENSION)img->h;
    c.input_components = img->c;
    c.in_color_space = img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)img->w * img->c);
    const size_t plane = (size_t)img->h * img->w;
    while (c.next_scanline < c.image_height) {
        const int y = (int)c.next_scanline;
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < img->c; k++)
                row[x * img->c + k] =
                    (unsigned char)lrintf(img->data[k * plane + (size_t)y * img->w + x] * 255.0f);
        JSAMPROW r[1] = {row};
        jpeg_write_scanlines(&c, r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return (tu_membuf){.d = out, .n = size, .cap = size};
}
