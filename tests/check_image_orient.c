/* check_image_orient.c -- EXIF orientation: PNG (eXIf chunk, written by
 * libpng) and JPEG (APP1 "Exif" segment spliced in after SOI) load
 * upright; damaged tags leave the rows as stored.
 *
 * The expected pixels come from the EXIF specification's table for tag
 * 0x0112, which says for each value on which side of the displayed image
 * the stored first row and the stored first column lie -- not from the
 * switch in image_orient.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image.h"
#include "imageutil.h"
#include "testutil.h"

/* EXIF 2.32, tag 0x0112: where the stored 0th row and 0th column are
 * shown, for values 1..8. */
typedef enum { TOP, BOTTOM, LEFT, RIGHT } side;
static const side row0_side[9] = {0, TOP, TOP, BOTTOM, BOTTOM, LEFT, RIGHT, RIGHT, LEFT};
static const side col0_side[9] = {0, LEFT, RIGHT, RIGHT, LEFT, TOP, TOP, BOTTOM, BOTTOM};

/* The stored image's planes placed as the table says. */
static heed_tensor expected_upright(const heed_tensor *stored, int v) {
    const int H = stored->h, W = stored->w, turned = row0_side[v] == LEFT || row0_side[v] == RIGHT;
    heed_tensor e = {0};
    ck_assert_int_eq(heed_tensor_alloc(&e, 1, stored->c, turned ? W : H, turned ? H : W), HEED_OK);
    for (int c = 0; c < stored->c; c++)
        for (int r = 0; r < H; r++)
            for (int k = 0; k < W; k++) {
                int y, x; /* where stored row r, column k is shown */
                if (!turned) {
                    y = row0_side[v] == TOP ? r : H - 1 - r;
                    x = col0_side[v] == LEFT ? k : W - 1 - k;
                } else {
                    x = row0_side[v] == LEFT ? r : H - 1 - r;
                    y = col0_side[v] == TOP ? k : W - 1 - k;
                }
                e.data[heed_tensor_index(&e, 0, c, y, x)] = stored->data[heed_tensor_index(stored, 0, c, r, k)];
            }
    return e;
}

static void assert_equal(const heed_tensor *a, const heed_tensor *b, const char *what) {
    ck_assert_msg(heed_tensor_same_shape(a, b), "%s: shape (%d, %d, %d) != (%d, %d, %d)", what, a->c, a->h,
                  a->w, b->c, b->h, b->w);
    for (size_t i = 0; i < heed_tensor_count(a); i++)
        ck_assert_msg(a->data[i] == b->data[i], "%s: element %zu: %g != %g", what, i, (double)a->data[i],
                      (double)b->data[i]);
}

/* A TIFF structure as EXIF holds it: the header, then IFD0 with a Make tag
 * before Orientation (so the reader must walk the entries). */
typedef struct tiff {
    unsigned char d[64];
    size_t n;
} tiff;

static void put16(unsigned char *p, unsigned v, int big) {
    p[big ? 0 : 1] = (unsigned char)(v >> 8), p[big ? 1 : 0] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v, int big) {
    put16(p + (big ? 0 : 2), v >> 16, big), put16(p + (big ? 2 : 0), v & 0xffff, big);
}

static tiff exif_tiff(int big, unsigned orientation) {
    tiff t = {.n = 8 + 2 + 2 * 12 + 4};
    memcpy(t.d, big ? "MM" : "II", 2);
    put16(t.d + 2, 42, big);
    put32(t.d + 4, 8, big); /* IFD0 right after the header */
    put16(t.d + 8, 2, big);
    unsigned char *e = t.d + 10;
    put16(e, 0x010f, big), put16(e + 2, 2, big), put32(e + 4, 4, big); /* Make, ASCII "heed" */
    memcpy(e + 8, "hee", 4);
    e += 12;
    put16(e, 0x0112, big), put16(e + 2, 3, big), put32(e + 4, 1, big); /* Orientation, SHORT */
    put16(e + 8, orientation, big);
    return t; /* next-IFD offset 0 */
}

/* A random 8-bit image: every pixel told apart. */
static heed_tensor stored_image(int c, int h, int w, uint64_t seed) {
    heed_tensor t = {0};
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, c, h, w), HEED_OK);
    heed_rng r;
    heed_rng_seed(&r, seed, 1);
    for (size_t i = 0; i < heed_tensor_count(&t); i++) t.data[i] = (float)(heed_rng_u32(&r) % 256) / 255.0f;
    return t;
}

/* img (8-bit RGB) as a PNG with an eXIf chunk holding exif, written by
 * libpng. */
static tu_membuf png_with_exif(const heed_tensor *img, const unsigned char *exif, size_t len) {
    tu_membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    png_set_write_fn(png, &m, tu_membuf_png_write, tu_membuf_png_flush);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_eXIf_1(png, info, (png_uint_32)len, (png_bytep)exif);
    png_write_info(png, info);
    unsigned char *row = malloc((size_t)img->w * 3);
    const size_t plane = (size_t)img->h * img->w;
    for (int y = 0; y < img->h; y++) {
        for (int x = 0; x < img->w; x++)
            for (int c = 0; c < 3; c++)
                row[x * 3 + c] = (unsigned char)lrintf(img->data[c * plane + (size_t)y * img->w + x] * 255.0f);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return m;
}

/* jpeg with an APP1 segment "Exif\0\0" + exif inserted right after SOI. */
static tu_membuf jpeg_with_exif(const unsigned char *jpeg, size_t n, const unsigned char *exif, size_t len) {
    const size_t seg = 2 + 6 + len; /* the length field counts itself */
    tu_membuf m = {.n = n + 2 + seg};
    m.d = malloc(m.n);
    ck_assert_ptr_nonnull(m.d);
    memcpy(m.d, jpeg, 2);
    m.d[2] = 0xff, m.d[3] = 0xe1;
    put16(m.d + 4, (unsigned)seg, 1);
    memcpy(m.d + 6, "Exif\0\0", 6);
    memcpy(m.d + 12, exif, len);
    memcpy(m.d + 12 + len, jpeg + 2, n - 2);
    return m;
}

START_TEST(png_exif_orientation_loads_upright) {
    heed_tensor stored = stored_image(3, 5, 7, 11);
    for (int big = 0; big <= 1; big++)
        for (int v = 1; v <= 8; v++) {
            tiff t = exif_tiff(big, (unsigned)v);
            tu_membuf m = png_with_exif(&stored, t.d, t.n);
            heed_tensor got = {0}, want = expected_upright(&stored, v);
            ck_assert_msg(heed_image_load_mem(m.d, m.n, "o.png", 0, &got) == HEED_OK, "%s", heed_last_error());
            char what[64];
            snprintf(what, sizeof what, "PNG, %s, orientation %d", big ? "MM" : "II", v);
            assert_equal(&got, &want, what);
            heed_tensor_free(&got);
            heed_tensor_free(&want);
            free(m.d);
        }
    heed_tensor_free(&stored);
}
END_TEST

/* The scan data is the same with and without the segment, so the upright
 * image is the stored one's pixels moved, exactly. */
START_TEST(jpeg_exif_orientation_loads_upright) {
    for (int c = 1; c <= 3; c += 2) {
        heed_tensor img = stored_image(c, 9, 20, 5);
        void *jpeg;
        size_t n;
        ck_assert_int_eq(heed_image_encode_mem(&img, "jpeg", NULL, &jpeg, &n), HEED_OK);
        heed_tensor stored = {0};
        ck_assert_int_eq(heed_image_load_mem(jpeg, n, "plain.jpg", 0, &stored), HEED_OK);
        ck_assert_int_eq(stored.h, 9);
        for (int big = 0; big <= 1; big++)
            for (int v = 1; v <= 8; v++) {
                tiff t = exif_tiff(big, (unsigned)v);
                tu_membuf m = jpeg_with_exif(jpeg, n, t.d, t.n);
                heed_tensor got = {0}, want = expected_upright(&stored, v);
                ck_assert_msg(heed_image_load_mem(m.d, m.n, "o.jpg", 0, &got) == HEED_OK, "%s",
                              heed_last_error());
                char what[64];
                snprintf(what, sizeof what, "JPEG, C=%d, %s, orientation %d", c, big ? "MM" : "II", v);
                assert_equal(&got, &want, what);
                heed_tensor_free(&got);
                heed_tensor_free(&want);
                free(m.d);
            }
        heed_tensor_free(&stored);
        heed_tensor_free(&img);
        free(jpeg);
    }
}
END_TEST

/* A tag that cannot be read must not cost the image: it loads as stored. */
START_TEST(damaged_exif_leaves_rows_as_stored) {
    heed_tensor img = stored_image(3, 4, 6, 9);
    void *jpeg;
    size_t n;
    ck_assert_int_eq(heed_image_encode_mem(&img, "jpeg", NULL, &jpeg, &n), HEED_OK);
    heed_tensor stored = {0};
    ck_assert_int_eq(heed_image_load_mem(jpeg, n, "plain.jpg", 0, &stored), HEED_OK);
    enum { OUT_OF_RANGE, ZERO, IFD_PAST_END, ENTRIES_PAST_END, WRONG_TYPE, TWO_VALUES, BAD_ORDER, CUT };
    for (int k = 0; k <= CUT; k++) {
        tiff t = exif_tiff(k % 2, 6);
        const int big = k % 2;
        switch (k) {
        case OUT_OF_RANGE: put16(t.d + 10 + 12 + 8, 9, big); break;
        case ZERO: put16(t.d + 10 + 12 + 8, 0, big); break;
        case IFD_PAST_END: put32(t.d + 4, 4000, big); break;
        case ENTRIES_PAST_END: put16(t.d + 8, 60000, big), put16(t.d + 10 + 12, 0x0110, big); break;
        case WRONG_TYPE: put16(t.d + 10 + 12 + 2, 4, big); break;
        case TWO_VALUES: put32(t.d + 10 + 12 + 4, 2, big); break;
        case BAD_ORDER: memcpy(t.d, "MI", 2); break;
        case CUT: t.n = 8 + 2 + 12 + 6; break; /* ends inside the orientation entry */
        }
        tu_membuf m = jpeg_with_exif(jpeg, n, t.d, t.n);
        heed_tensor got = {0};
        ck_assert_msg(heed_image_load_mem(m.d, m.n, "d.jpg", 0, &got) == HEED_OK, "case %d: %s", k,
                      heed_last_error());
        char what[32];
        snprintf(what, sizeof what, "damaged case %d", k);
        assert_equal(&got, &stored, what);
        heed_tensor_free(&got);
        free(m.d);
    }
    /* A PNG eXIf chunk whose CRC does not match is ignored, as libpng
     * ignores a damaged ancillary chunk. */
    heed_tensor rgb = stored_image(3, 4, 6, 10), plain = {0}, turned = {0};
    tiff t6 = exif_tiff(0, 6);
    tu_membuf png = png_with_exif(&rgb, t6.d, t6.n);
    unsigned char *chunk = NULL;
    for (size_t i = 0; i + 4 <= png.n && !chunk; i++)
        if (!memcmp(png.d + i, "eXIf", 4)) chunk = png.d + i;
    ck_assert_ptr_nonnull(chunk);
    ck_assert_int_eq(heed_image_load_mem(png.d, png.n, "good.png", 0, &turned), HEED_OK);
    ck_assert_int_eq(turned.h, 6); /* the tag is read when its CRC is right */
    chunk[4 + t6.n + 3] ^= 1;      /* the CRC's last byte */
    ck_assert_msg(heed_image_load_mem(png.d, png.n, "crc.png", 0, &plain) == HEED_OK, "%s", heed_last_error());
    assert_equal(&plain, &rgb, "eXIf with a bad CRC");
    heed_tensor_free(&plain), heed_tensor_free(&turned), heed_tensor_free(&rgb);
    free(png.d);
    /* An APP1 that is not EXIF (XMP's) is not read as one. */
    tiff t = exif_tiff(1, 6);
    tu_membuf m = jpeg_with_exif(jpeg, n, t.d, t.n);
    memcpy(m.d + 6, "Exig", 4);
    heed_tensor got = {0};
    ck_assert_int_eq(heed_image_load_mem(m.d, m.n, "x.jpg", 0, &got), HEED_OK);
    assert_equal(&got, &stored, "APP1 without Exif");
    heed_tensor_free(&got);
    free(m.d);
    heed_tensor_free(&stored);
    heed_tensor_free(&img);
    free(jpeg);
}
END_TEST

START_TEST(orient_transforms_batches_and_refuses_bad_arguments) {
    heed_tensor in = {0}, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&in, 2, 2, 3, 4), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(&in); i++) in.data[i] = (float)i;
    for (int v = 1; v <= 8; v++) {
        ck_assert_int_eq(heed_image_orient(&in, v, &out), HEED_OK);
        for (int b = 0; b < 2; b++) {
            heed_tensor one = heed_tensor_view(in.data + (size_t)b * 24, 1, 2, 3, 4);
            heed_tensor want = expected_upright(&one, v);
            heed_tensor got = heed_tensor_view(out.data + (size_t)b * 24, 1, 2, out.h, out.w);
            assert_equal(&got, &want, "batch item");
            heed_tensor_free(&want);
        }
    }
    ck_assert_int_eq(heed_image_orient(&in, 0, &out), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "orientation 0 is not in 1..8"));
    ck_assert_int_eq(heed_image_orient(&in, 9, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_orient(&in, 6, &in), HEED_ERR_ARG);
    heed_tensor empty = {0};
    ck_assert_int_eq(heed_image_orient(&empty, 6, &out), HEED_ERR_SHAPE);
    heed_tensor_free(&in);
    heed_tensor_free(&out);
}
END_TEST

Suite *heed_suite_image_orient(void) {
    Suite *s = suite_create("image_orient");
    TCase *tc = tcase_create("exif");
    tcase_add_test(tc, png_exif_orientation_loads_upright);
    tcase_add_test(tc, jpeg_exif_orientation_loads_upright);
    tcase_add_test(tc, damaged_exif_leaves_rows_as_stored);
    tcase_add_test(tc, orient_transforms_batches_and_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
