/* check_image_decode.c -- decoding cases check_image.c leaves out: a PNG
 * colour key (tRNS on a gray image), a JPEG file larger than the loader's
 * first read, and a JPEG whose scan data stops at a marker. Files are built
 * here, by hand or with libjpeg directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <zlib.h>

#include "image.h"
#include "imageutil.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

typedef struct buf {
    unsigned char d[1024];
    size_t n;
} buf;

static void put32(buf *b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b->d[b->n++] = (unsigned char)(v >> s);
}

/* A PNG chunk: length, type, data, CRC-32 of type and data (PNG 1.2, 5.3). */
static void put_chunk(buf *b, const char *type, const unsigned char *data, size_t len) {
    put32(b, (uint32_t)len);
    const size_t start = b->n;
    memcpy(b->d + b->n, type, 4);
    b->n += 4;
    if (len) memcpy(b->d + b->n, data, len);
    b->n += len;
    put32(b, (uint32_t)crc32(0, b->d + start, (uInt)(len + 4)));
}

/* Gray noise, the kind of image a JPEG cannot make small. */
static heed_tensor gray_noise(int h, int w, uint64_t seed) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, 1, h, w), HEED_OK);
    heed_rng r;
    heed_rng_seed(&r, seed, 1);
    for (size_t i = 0; i < heed_tensor_count(&t); i++) t.data[i] = (float)(heed_rng_u32(&r) % 256) / 255.0f;
    return t;
}

/* ---- tests ------------------------------------------------------------- */

/* PNG 1.2, 4.2.1.1: a gray image's tRNS chunk names one gray level that is
 * fully transparent, every other level opaque; the decoder's promise
 * (tRNS becomes an alpha channel) holds for it as for a palette. */
START_TEST(gray_png_with_a_colour_key_gains_alpha) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    buf b = {.n = 0};
    memcpy(b.d, sig, 8);
    b.n = 8;
    buf ihdr = {.n = 0};
    put32(&ihdr, 3), put32(&ihdr, 2); /* width, height */
    const unsigned char rest[5] = {8, 0, 0, 0, 0}; /* 8-bit gray, no interlace */
    memcpy(ihdr.d + ihdr.n, rest, 5);
    put_chunk(&b, "IHDR", ihdr.d, 13);
    const unsigned char key[2] = {0x00, 0x10}; /* gray level 16 is transparent */
    put_chunk(&b, "tRNS", key, 2);
    /* two rows, filter byte 0 each */
    const unsigned char raw[8] = {0, 0x10, 0x20, 0x30, 0, 0x40, 0x10, 0xff};
    unsigned char z[256];
    uLongf zlen = sizeof z;
    ck_assert_int_eq(compress(z, &zlen, raw, sizeof raw), Z_OK);
    put_chunk(&b, "IDAT", z, zlen);
    put_chunk(&b, "IEND", NULL, 0);
    heed_tensor t = {0};
    ck_assert_msg(heed_image_load_mem(b.d, b.n, "key.png", 0, &t) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(t.c, 2);
    ck_assert_int_eq(t.h, 2);
    ck_assert_int_eq(t.w, 3);
    const unsigned char gray[2][3] = {{0x10, 0x20, 0x30}, {0x40, 0x10, 0xff}};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 0, y, x)], gray[y][x] / 255.0f);
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 1, y, x)], gray[y][x] == 0x10 ? 0.0f : 1.0f);
        }
    heed_tensor_free(&t);
}
END_TEST

/* A JPEG file of a few hundred KiB (far past the loader's first 64 KiB
 * read) loads whole, as the same bytes do from memory. */
START_TEST(jpeg_file_larger_than_one_read_loads_whole) {
    char dir[256], path[300];
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "image-decode-big"), 0);
    snprintf(path, sizeof path, "%s/noise.jpg", dir);
    heed_tensor img = gray_noise(384, 384, 7), back = {0}, mem = {0};
    tu_membuf j = tu_libjpeg_write(&img, 100, 0);
    unsigned char *jpg = j.d;
    const size_t n = j.n;
    ck_assert_uint_gt(n, 3 * 65536);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(jpg, 1, n, f), n);
    fclose(f);
    ck_assert_msg(heed_image_load(path, 0, &back) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(heed_image_load_mem(jpg, n, "noise.jpg", 0, &mem), HEED_OK);
    ck_assert(heed_tensor_same_shape(&back, &mem));
    ck_assert_mem_eq(back.data, mem.data, heed_tensor_count(&mem) * sizeof(float));
    /* and it is the image: quality 100 keeps gray noise within a few codes */
    const double worst = tu_max_abs_diff(img.data, back.data, heed_tensor_count(&img));
    ck_assert_msg(worst < 0.04, "max error %g", worst);
    free(jpg);
    heed_tensor_free(&img), heed_tensor_free(&back), heed_tensor_free(&mem);
    tu_remove_dir(dir);
}
END_TEST

/* Scan data that stops at a marker (here the file's end marker, EOI, put
 * where the data was cut) is image data missing: refused as truncated, not
 * decoded with grey blocks for what is gone. */
START_TEST(jpeg_scan_cut_at_a_marker_is_refused) {
    heed_tensor img = gray_noise(64, 64, 9), t = {0};
    tu_membuf j = tu_libjpeg_write(&img, 90, 0);
    unsigned char *jpg = j.d;
    const size_t n = j.n;
    ck_assert_int_eq(heed_image_load_mem(jpg, n, "whole.jpg", 0, &t), HEED_OK);
    heed_tensor_free(&t);
    const size_t cut = n * 3 / 4;
    jpg[cut] = 0xff, jpg[cut + 1] = 0xd9;
    ck_assert_int_eq(heed_image_load_mem(jpg, cut + 2, "cut.jpg", 0, &t), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "cut.jpg: truncated JPEG"), "%s", heed_last_error());
    ck_assert_ptr_null(t.data);
    free(jpg);
    heed_tensor_free(&img);
}
END_TEST

Suite *heed_suite_image_decode(void) {
    Suite *s = suite_create("image_decode");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, gray_png_with_a_colour_key_gains_alpha);
    tcase_add_test(tc, jpeg_file_larger_than_one_read_loads_whole);
    tcase_add_test(tc, jpeg_scan_cut_at_a_marker_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
