/* check_image.c -- PNG/JPEG loading and saving, resizing, channel conversion.
 *
 * Test images are made here: by hand (PNG chunks assembled byte by byte,
 * with zlib for the deflate stream and the CRCs), with libpng and libjpeg
 * directly (palette, interlaced and progressive files the saver never
 * writes), or as random tensors saved and loaded back. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "image.h"
#include "imageutil.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void) {
    strcpy(tmpdir, "/tmp/heed_image_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Removes every file in tmpdir, then tmpdir; returns how many files there were. */
static int clean_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    int count = 0;
    if (!d) return -1;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (remove(p) != 0) rmdir(p);
        count++;
    }
    closedir(d);
    rmdir(tmpdir);
    return count;
}

static const char *tmp_path(const char *name) {
    static char p[2][256];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A random image whose values are exact codes k / maxv. */
static heed_tensor random_codes(int c, int h, int w, unsigned maxv, uint64_t seed) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, c, h, w), HEED_OK);
    heed_rng r;
    heed_rng_seed(&r, seed, 3);
    for (size_t i = 0; i < heed_tensor_count(&t); i++)
        t.data[i] = (float)(heed_rng_u32(&r) % (maxv + 1)) / (float)maxv;
    return t;
}

/* A smooth colour image (gradients and a soft blob) that JPEG keeps well. */
static heed_tensor smooth_image(int c, int h, int w) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, c, h, w), HEED_OK);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double dx = x - w * 0.4, dy = y - h * 0.6;
                double v = 0.2 + 0.3 * x / w + 0.2 * (k + 1) * y / (2.0 * h) +
                           0.25 * exp(-(dx * dx + dy * dy) / (0.1 * w * h));
                t.data[heed_tensor_index(&t, 0, k, y, x)] = (float)v;
            }
    return t;
}

static double max_abs_diff(const heed_tensor *a, const heed_tensor *b) {
    return tu_max_abs_diff(a->data, b->data, heed_tensor_count(a));
}

static void assert_same_exact(const heed_tensor *a, const heed_tensor *b) {
    ck_assert(heed_tensor_same_shape(a, b));
    for (size_t i = 0; i < heed_tensor_count(a); i++)
        ck_assert_msg(a->data[i] == b->data[i], "element %zu: %.9g != %.9g", i, (double)a->data[i],
                      (double)b->data[i]);
}

/* PNG assembled by hand: signature, chunks with zlib's CRC-32. */
typedef struct bytes {
    unsigned char d[4096];
    size_t n;
} bytes;

static void put32(bytes *b, uint32_t v) {
    b->d[b->n++] = (unsigned char)(v >> 24);
    b->d[b->n++] = (unsigned char)(v >> 16);
    b->d[b->n++] = (unsigned char)(v >> 8);
    b->d[b->n++] = (unsigned char)v;
}

static void put_chunk(bytes *b, const char *type, const unsigned char *data, size_t len) {
    put32(b, (uint32_t)len);
    size_t start = b->n;
    memcpy(b->d + b->n, type, 4);
    b->n += 4;
    if (len) memcpy(b->d + b->n, data, len);
    b->n += len;
    put32(b, (uint32_t)crc32(0, b->d + start, (uInt)(len + 4)));
}

/* A PNG of the given header whose IDAT is the deflated `raw` scanlines. */
static void hand_png(bytes *b, uint32_t w, uint32_t h, int depth, int ctype, const unsigned char *raw,
                     size_t rawlen) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    b->n = 0;
    memcpy(b->d, sig, 8);
    b->n = 8;
    unsigned char ihdr[13];
    bytes tmp = {.n = 0};
    put32(&tmp, w);
    put32(&tmp, h);
    memcpy(ihdr, tmp.d, 8);
    ihdr[8] = (unsigned char)depth, ihdr[9] = (unsigned char)ctype;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    put_chunk(b, "IHDR", ihdr, 13);
    unsigned char z[1024];
    uLongf zlen = sizeof z;
    ck_assert_int_eq(compress(z, &zlen, raw, (uLong)rawlen), Z_OK);
    put_chunk(b, "IDAT", z, zlen);
    put_chunk(b, "IEND", NULL, 0);
}

/* libpng writer into memory, for layouts heed_image_save never produces. */
/* 8-bit rows (already packed as the header says) written with libpng. */
static tu_membuf libpng_write(int w, int h, int depth, int ctype, int interlace, const png_color *pal,
                           int npal, const unsigned char *trns, int ntrns, unsigned char **rows) {
    tu_membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    png_set_write_fn(png, &m, tu_membuf_png_write, tu_membuf_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return m;
}

/* Does the byte string contain marker 0xFF m? */
static int has_marker(const unsigned char *d, size_t n, unsigned char m) {
    for (size_t i = 0; i + 1 < n; i++)
        if (d[i] == 0xff && d[i + 1] == m) return 1;
    return 0;
}

/* ---- PNG --------------------------------------------------------------- */

START_TEST(png_8bit_round_trips_every_channel_count) {
    make_tmpdir();
    for (int c = 1; c <= 4; c++) {
        heed_tensor img = random_codes(c, 7, 13, 255, 100 + c), back = {0};
        const char *p = tmp_path(c % 2 ? "a.png" : "b.PNG");
        ck_assert_int_eq(heed_image_save(p, &img, NULL), HEED_OK);
        ck_assert_int_eq(heed_image_load(p, 0, &back), HEED_OK);
        ck_assert_int_eq(back.n, 1);
        ck_assert_int_eq(back.c, c);
        assert_same_exact(&img, &back);
        heed_tensor_free(&img);
        heed_tensor_free(&back);
    }
    ck_assert_int_eq(clean_tmpdir(), 2); /* no temporary files left */
}
END_TEST

START_TEST(png_16bit_keeps_16bit_precision) {
    make_tmpdir();
    for (int c = 1; c <= 4; c++) {
        heed_tensor img = random_codes(c, 5, 9, 65535, 200 + c), back = {0};
        heed_image_save_opts o = {.png_16bit = 1};
        ck_assert_int_eq(heed_image_save(tmp_path("x.png"), &img, &o), HEED_OK);
        ck_assert_int_eq(heed_image_load(tmp_path("x.png"), 0, &back), HEED_OK);
        assert_same_exact(&img, &back);
        heed_tensor_free(&back);
        /* The same image at 8 bits is only within half a code. */
        ck_assert_int_eq(heed_image_save(tmp_path("y.png"), &img, NULL), HEED_OK);
        ck_assert_int_eq(heed_image_load(tmp_path("y.png"), 0, &back), HEED_OK);
        double d = max_abs_diff(&img, &back);
        ck_assert(d <= 0.5 / 255 + 1e-6);
        ck_assert(d > 1.0 / 65535);
        heed_tensor_free(&img);
        heed_tensor_free(&back);
    }
    clean_tmpdir();
}
END_TEST

START_TEST(save_clamps_and_rounds) {
    float v[6] = {-0.5f, 1.7f, NAN, 0.5f / 255.0f + 1e-4f, 0.5f / 255.0f - 1e-4f, 100.4f / 255.0f};
    heed_tensor img = heed_tensor_view(v, 1, 1, 1, 6), back = {0};
    void *data;
    size_t size;
    ck_assert_int_eq(heed_image_encode_mem(&img, "png", NULL, &data, &size), HEED_OK);
    ck_assert_int_eq(heed_image_load_mem(data, size, "mem", 0, &back), HEED_OK);
    const float want[6] = {0, 1, 0, 1 / 255.0f, 0, 100 / 255.0f};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(back.data[i], want[i]);
    free(data);
    heed_tensor_free(&back);
}
END_TEST

START_TEST(hand_built_pngs_decode_to_known_pixels) {
    heed_tensor t = {0};
    bytes b;
    /* 3x2 RGB, 8-bit; row 0 unfiltered, row 1 with the Sub filter (each byte
     * stores the difference to the byte 3 to its left). */
    const unsigned char rgb[] = {
        0, 255, 0, 0, 0, 255, 0, 10, 20, 30,
        1, 100, 150, 200, 5, 5, 5, 250, 245, 240,
    };
    hand_png(&b, 3, 2, 8, 2, rgb, sizeof rgb);
    ck_assert_int_eq(heed_image_load_mem(b.d, b.n, "rgb.png", 0, &t), HEED_OK);
    ck_assert_int_eq(t.c, 3);
    ck_assert_int_eq(t.h, 2);
    ck_assert_int_eq(t.w, 3);
    const int want[2][3][3] = {{{255, 0, 0}, {0, 255, 0}, {10, 20, 30}},
                               {{100, 150, 200}, {105, 155, 205}, {99, 144, 189}}};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int c = 0; c < 3; c++)
                ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, c, y, x)], want[y][x][c] / 255.0f);
    heed_tensor_free(&t);

    /* 5x1 gray at 2 bits: codes 0,1,2,3,2 packed MSB first, scaled by 3. */
    const unsigned char g2[] = {0, 0x1b, 0x80};
    hand_png(&b, 5, 1, 2, 0, g2, sizeof g2);
    ck_assert_int_eq(heed_image_load_mem(b.d, b.n, "g2.png", 0, &t), HEED_OK);
    ck_assert_int_eq(t.c, 1);
    const float g2want[5] = {0, 1 / 3.0f, 2 / 3.0f, 1, 2 / 3.0f};
    for (int x = 0; x < 5; x++) ck_assert_float_eq_tol(t.data[x], g2want[x], 1e-6f);
    heed_tensor_free(&t);

    /* 2x1 gray+alpha at 16 bits (big-endian samples). */
    const unsigned char ga16[] = {0, 0x12, 0x34, 0xff, 0xff, 0x00, 0x01, 0x80, 0x00};
    hand_png(&b, 2, 1, 16, 4, ga16, sizeof ga16);
    ck_assert_int_eq(heed_image_load_mem(b.d, b.n, "ga16.png", 0, &t), HEED_OK);
    ck_assert_int_eq(t.c, 2);
    ck_assert_float_eq(t.data[0], 0x1234 / 65535.0f);
    ck_assert_float_eq(t.data[1], 0x0001 / 65535.0f);
    ck_assert_float_eq(t.data[2], 1.0f);
    ck_assert_float_eq(t.data[3], 0x8000 / 65535.0f);
    heed_tensor_free(&t);
}
END_TEST

START_TEST(palette_png_loads_as_rgb_or_rgba_with_trns) {
    const png_color pal[4] = {{255, 0, 0}, {0, 128, 0}, {0, 0, 255}, {17, 34, 51}};
    /* 5x3 at 2 bits per index: index (x + y) % 4. */
    unsigned char rows_data[3][2] = {{0}};
    unsigned char *rows[3];
    for (int y = 0; y < 3; y++) {
        for (int x = 0; x < 5; x++)
            rows_data[y][x / 4] |= (unsigned char)(((x + y) % 4) << (6 - 2 * (x % 4)));
        rows[y] = rows_data[y];
    }
    tu_membuf m = libpng_write(5, 3, 2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, pal, 4, NULL, 0, rows);
    heed_tensor t = {0};
    ck_assert_int_eq(heed_image_load_mem(m.d, m.n, "pal.png", 0, &t), HEED_OK);
    ck_assert_int_eq(t.c, 3);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++) {
            const png_color *p = &pal[(x + y) % 4];
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 0, y, x)], p->red / 255.0f);
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 1, y, x)], p->green / 255.0f);
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 2, y, x)], p->blue / 255.0f);
        }
    heed_tensor_free(&t);
    free(m.d);

    /* With tRNS: entry 1 half transparent, entry 2 transparent, others opaque. */
    const unsigned char trns[3] = {255, 128, 0};
    m = libpng_write(5, 3, 2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, pal, 4, trns, 3, rows);
    ck_assert_int_eq(heed_image_load_mem(m.d, m.n, "palt.png", 0, &t), HEED_OK);
    ck_assert_int_eq(t.c, 4);
    const float alpha[4] = {1.0f, 128 / 255.0f, 0.0f, 1.0f};
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++) {
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 3, y, x)], alpha[(x + y) % 4]);
            ck_assert_float_eq(t.data[heed_tensor_index(&t, 0, 0, y, x)], pal[(x + y) % 4].red / 255.0f);
        }
    heed_tensor_free(&t);
    free(m.d);
}
END_TEST

START_TEST(interlaced_png_matches_its_pixels) {
    enum { W = 11, H = 9 };
    heed_tensor src = random_codes(3, H, W, 255, 42);
    unsigned char rows_data[H][W * 3], *rows[H];
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                rows_data[y][x * 3 + c] =
                    (unsigned char)lrintf(src.data[heed_tensor_index(&src, 0, c, y, x)] * 255);
        rows[y] = rows_data[y];
    }
    tu_membuf m = libpng_write(W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0, rows);
    heed_tensor t = {0};
    ck_assert_int_eq(heed_image_load_mem(m.d, m.n, "adam7.png", 0, &t), HEED_OK);
    assert_same_exact(&src, &t);
    heed_tensor_free(&t);
    heed_tensor_free(&src);
    free(m.d);
}
END_TEST

/* An interlaced PNG keeps all its rows while it decodes: those count
 * against the memory limit too (they were malloc'ed beside it). A 512x512
 * gray image: 1 MiB of floats, 256 KiB of rows. */
START_TEST(interlaced_rows_count_against_the_memory_limit) {
    enum { S = 512 };
    static unsigned char rows_data[S][S];
    unsigned char *rows[S];
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) rows_data[y][x] = (unsigned char)((x * 7 + y * 3) & 255);
        rows[y] = rows_data[y];
    }
    tu_membuf m = libpng_write(S, S, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0, rows);
    heed_tensor t = {0};
    const size_t base = heed_memory_in_use(), floats = (size_t)S * S * sizeof(float);
    heed_set_memory_limit(base + floats + 64 * 1024); /* the tensor fits, the rows do not */
    ck_assert_int_eq(heed_image_load_mem(m.d, m.n, "adam7.png", 0, &t), HEED_ERR_NOMEM);
    ck_assert_msg(strstr(heed_last_error(), "adam7.png: the interlaced rows"), "%s", heed_last_error());
    ck_assert_ptr_null(t.data);
    ck_assert_uint_eq(heed_memory_in_use(), base);
    heed_set_memory_limit(base + floats + S * S + 64 * 1024);
    ck_assert_msg(heed_image_load_mem(m.d, m.n, "adam7.png", 0, &t) == HEED_OK, "%s", heed_last_error());
    ck_assert_float_eq(t.data[S + 1], (float)((7 + 3) & 255) / 255.0f);
    heed_set_memory_limit(0);
    heed_tensor_free(&t);
    free(m.d);
}
END_TEST

/* ---- JPEG -------------------------------------------------------------- */

START_TEST(jpeg_round_trips_gray_and_rgb_within_tolerance) {
    make_tmpdir();
    for (int c = 1; c <= 3; c += 2) {
        heed_tensor img = smooth_image(c, 24, 40), back = {0};
        const char *p = tmp_path(c == 1 ? "g.jpg" : "c.JPEG");
        heed_image_save_opts o = {.jpeg_quality = 95};
        ck_assert_int_eq(heed_image_save(p, &img, &o), HEED_OK);
        ck_assert_int_eq(heed_image_load(p, 0, &back), HEED_OK);
        ck_assert_int_eq(back.c, c);
        ck_assert_int_eq(back.h, 24);
        ck_assert_int_eq(back.w, 40);
        double d = max_abs_diff(&img, &back);
        ck_assert_msg(d < 0.04, "channels %d: max error %g", c, d);
        heed_tensor_free(&back);
        /* Lower quality: a smaller file, still close. */
        void *hi, *lo;
        size_t nhi, nlo;
        ck_assert_int_eq(heed_image_encode_mem(&img, "jpeg", &o, &hi, &nhi), HEED_OK);
        o.jpeg_quality = 20;
        ck_assert_int_eq(heed_image_encode_mem(&img, "jpeg", &o, &lo, &nlo), HEED_OK);
        ck_assert_uint_lt(nlo, nhi);
        free(hi);
        free(lo);
        heed_tensor_free(&img);
    }
    clean_tmpdir();
}
END_TEST

START_TEST(progressive_jpeg_decodes) {
    for (int c = 1; c <= 3; c += 2) {
        heed_tensor img = smooth_image(c, 33, 21), back = {0};
        tu_membuf m = tu_libjpeg_write(&img, 95, 1);
        ck_assert(has_marker(m.d, m.n, 0xc2)); /* SOF2: progressive */
        ck_assert_int_eq(heed_image_load_mem(m.d, m.n, "prog.jpg", 0, &back), HEED_OK);
        ck_assert_int_eq(back.c, c);
        ck_assert_int_eq(back.h, 33);
        ck_assert_int_eq(back.w, 21);
        ck_assert(max_abs_diff(&img, &back) < 0.04);
        heed_tensor_free(&back);
        heed_tensor_free(&img);
        free(m.d);
    }
}
END_TEST

/* A CMYK JPEG the way Photoshop writes it: Adobe marker, inks inverted
 * (255 = no ink). Left half pure red (M = Y = 1), right half 50% black. */
START_TEST(cmyk_jpeg_converts_to_rgb) {
    enum { W = 32, H = 16 };
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = W;
    c.image_height = H;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    ck_assert(c.write_Adobe_marker);
    jpeg_start_compress(&c, TRUE);
    unsigned char row[W * 4];
    for (int x = 0; x < W; x++) {
        const unsigned char red[4] = {255, 0, 0, 255}, grey[4] = {255, 255, 255, 128};
        memcpy(row + 4 * x, x < W / 2 ? red : grey, 4);
    }
    while (c.next_scanline < H) {
        JSAMPROW r[1] = {row};
        jpeg_write_scanlines(&c, r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    heed_tensor t = {0};
    ck_assert_int_eq(heed_image_load_mem(out, size, "cmyk.jpg", 0, &t), HEED_OK);
    ck_assert_int_eq(t.c, 3);
    for (int y = 0; y < H; y += 5)
        for (int x = 2; x < W; x += 4) {
            float r = t.data[heed_tensor_index(&t, 0, 0, y, x)];
            float g = t.data[heed_tensor_index(&t, 0, 1, y, x)];
            float b = t.data[heed_tensor_index(&t, 0, 2, y, x)];
            if (x < W / 2) {
                ck_assert_msg(r > 0.97f && g < 0.03f && b < 0.03f, "(%d,%d) %g %g %g", x, y, r, g, b);
            } else {
                const float k = 128 / 255.0f; /* (1 - 0)(1 - (1 - 128/255)) */
                ck_assert(fabsf(r - k) < 0.03f && fabsf(g - k) < 0.03f && fabsf(b - k) < 0.03f);
            }
        }
    heed_tensor_free(&t);
    free(out);
}
END_TEST

START_TEST(jpeg_refuses_alpha_and_bad_quality) {
    heed_tensor img = random_codes(4, 4, 4, 255, 1);
    make_tmpdir();
    ck_assert_int_eq(heed_image_save(tmp_path("a.jpg"), &img, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "4 channels"));
    img.c = 2;
    ck_assert_int_eq(heed_image_save(tmp_path("a.jpg"), &img, NULL), HEED_ERR_ARG);
    img.c = 3;
    heed_image_save_opts o = {.jpeg_quality = 101};
    ck_assert_int_eq(heed_image_save(tmp_path("a.jpg"), &img, &o), HEED_ERR_ARG);
    ck_assert_int_eq(clean_tmpdir(), 0);
    heed_tensor_free(&img);
}
END_TEST

/* A JPEG side over libjpeg's 65500 is the image's limit, not a misuse of
 * the call: heed classify --overlay out.jpg on a 66000-pixel-wide PNG
 * printed "heed classify: heed_image_save: JPEG sides are at most ...",
 * naming neither the file nor anything the user called. */
START_TEST(jpeg_side_limit_names_the_file) {
    make_tmpdir();
    heed_tensor img;
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 1, 2, 66000), HEED_OK);
    heed_tensor_fill(&img, 0.5f);
    ck_assert_int_eq(heed_image_save(tmp_path("wide.jpg"), &img, NULL), HEED_ERR_LIMIT);
    ck_assert_msg(starts_with(heed_last_error(), tmp_path("wide.jpg")), "%s", heed_last_error());
    ck_assert_msg(strstr(heed_last_error(), ": JPEG sides are at most 65500 pixels, the image is 66000x2"),
                  "%s", heed_last_error());
    void *d;
    size_t n;
    ck_assert_int_eq(heed_image_encode_mem(&img, "jpeg", NULL, &d, &n), HEED_ERR_LIMIT);
    ck_assert_msg(starts_with(heed_last_error(), "JPEG sides are at most"), "%s", heed_last_error());
    ck_assert_ptr_null(d);
    ck_assert_int_eq(clean_tmpdir(), 0);
    heed_tensor_free(&img);
}
END_TEST

/* ---- bad input --------------------------------------------------------- */

/* Encodes a small image in the given format for the corruption tests. */
static tu_membuf encoded(const char *format, int c) {
    heed_tensor img = smooth_image(c, 12, 17);
    void *d;
    size_t n;
    ck_assert_int_eq(heed_image_encode_mem(&img, format, NULL, &d, &n), HEED_OK);
    heed_tensor_free(&img);
    return (tu_membuf){.d = d, .n = n, .cap = n};
}

START_TEST(truncated_files_fail_with_format_errors) {
    tu_membuf png = encoded("png", 3), jpg = encoded("jpeg", 3);
    heed_tensor t = {0};
    /* Every prefix of the PNG, including one that lacks only IEND. */
    for (size_t len = 0; len < png.n; len++) {
        heed_status s = heed_image_load_mem(png.d, len, "cut.png", 0, &t);
        ck_assert_msg(s == HEED_ERR_FORMAT, "PNG cut at %zu/%zu: status %d", len, png.n, s);
        ck_assert_ptr_null(t.data);
        ck_assert_ptr_nonnull(strstr(heed_last_error(), "cut.png"));
        if (len > 0) ck_assert_ptr_nonnull(strstr(heed_last_error(), "truncated PNG"));
    }
    const size_t cuts[] = {0, 2, 3, 10, 100, jpg.n / 2, jpg.n - 40, jpg.n - 2, jpg.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        heed_status s = heed_image_load_mem(jpg.d, cuts[i], "cut.jpg", 0, &t);
        ck_assert_msg(s == HEED_ERR_FORMAT, "JPEG cut at %zu/%zu: status %d (%s)", cuts[i], jpg.n, s,
                      heed_last_error());
        ck_assert_ptr_nonnull(strstr(heed_last_error(), "cut.jpg"));
        if (cuts[i] > 0) ck_assert_ptr_nonnull(strstr(heed_last_error(), "truncated JPEG"));
    }
    ck_assert_int_eq(heed_image_load_mem(png.d, png.n, "whole.png", 0, &t), HEED_OK);
    heed_tensor_free(&t);
    ck_assert_int_eq(heed_image_load_mem(jpg.d, jpg.n, "whole.jpg", 0, &t), HEED_OK);
    heed_tensor_free(&t);
    free(png.d);
    free(jpg.d);
}
END_TEST

START_TEST(random_and_mutated_bytes_never_crash) {
    heed_rng r;
    heed_rng_seed(&r, 99, 1);
    unsigned char buf[600];
    heed_tensor t = {0};
    /* Pure noise, and noise behind each format's magic bytes. */
    const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char jpg_sig[3] = {0xff, 0xd8, 0xff};
    for (int it = 0; it < 60; it++) {
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)heed_rng_u32(&r);
        if (it % 3 == 1) memcpy(buf, png_sig, 8);
        if (it % 3 == 2) memcpy(buf, jpg_sig, 3);
        size_t n = 1 + heed_rng_u32(&r) % sizeof buf;
        ck_assert_int_eq(heed_image_load_mem(buf, n, "noise", 0, &t), HEED_ERR_FORMAT);
    }
    /* Valid files with a few bytes changed: decode or fail cleanly. */
    const char *formats[2] = {"png", "jpeg"};
    for (int f = 0; f < 2; f++) {
        tu_membuf good = encoded(formats[f], f ? 3 : 4);
        unsigned char *bad = malloc(good.n);
        for (int it = 0; it < 150; it++) {
            memcpy(bad, good.d, good.n);
            int flips = 1 + (int)(heed_rng_u32(&r) % 4);
            for (int k = 0; k < flips; k++)
                bad[2 + heed_rng_u32(&r) % (good.n - 2)] ^= (unsigned char)(1 + heed_rng_u32(&r) % 255);
            heed_status s = heed_image_load_mem(bad, good.n, "mutant", 0, &t);
            ck_assert_msg(s == HEED_OK || s == HEED_ERR_FORMAT || s == HEED_ERR_LIMIT, "status %d", s);
            if (s == HEED_OK) {
                for (size_t i = 0; i < heed_tensor_count(&t); i++)
                    ck_assert(t.data[i] >= 0.0f && t.data[i] <= 1.0f);
                heed_tensor_free(&t);
            } else {
                ck_assert_ptr_null(t.data);
            }
        }
        free(bad);
        free(good.d);
    }
}
END_TEST

START_TEST(empty_text_missing_and_directory_files_fail_cleanly) {
    make_tmpdir();
    heed_tensor t = {0};
    write_bytes(tmp_path("empty.png"), "", 0);
    ck_assert_int_eq(heed_image_load(tmp_path("empty.png"), 0, &t), HEED_ERR_FORMAT);
    /* messages about a file start with its name: the app prints them as
     * they are, after its own "heed classify: " */
    ck_assert_msg(starts_with(heed_last_error(), tmp_path("empty.png")), "%s", heed_last_error());
    ck_assert_ptr_nonnull(strstr(heed_last_error(), ": empty file"));
    const char text[] = "this is not an image, just some text\n";
    write_bytes(tmp_path("notes.jpg"), text, sizeof text - 1);
    ck_assert_int_eq(heed_image_load(tmp_path("notes.jpg"), 0, &t), HEED_ERR_FORMAT);
    ck_assert_msg(starts_with(heed_last_error(), tmp_path("notes.jpg")), "%s", heed_last_error());
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not a PNG or JPEG"));
    ck_assert_ptr_null(t.data);
    ck_assert_int_eq(heed_image_load(tmp_path("missing.png"), 0, &t), HEED_ERR_IO);
    ck_assert_msg(starts_with(heed_last_error(), "cannot open "), "%s", heed_last_error());
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "missing.png"));
    ck_assert_int_eq(heed_image_load(tmpdir, 0, &t), HEED_ERR_IO);
    /* a stream that is not there */
    ck_assert_int_eq(heed_image_read(NULL, "camera", 0, &t), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "heed_image_read: camera: no stream"), "%s", heed_last_error());
    clean_tmpdir();
}
END_TEST

START_TEST(format_is_detected_by_content_not_name) {
    make_tmpdir();
    heed_tensor img = random_codes(3, 6, 5, 255, 5), back = {0};
    ck_assert_int_eq(heed_image_save(tmp_path("real.png"), &img, NULL), HEED_OK);
    ck_assert_int_eq(rename(tmp_path("real.png"), tmp_path("looks.jpg")), 0);
    ck_assert_int_eq(heed_image_load(tmp_path("looks.jpg"), 0, &back), HEED_OK);
    assert_same_exact(&img, &back);
    heed_tensor_free(&back);
    ck_assert_int_eq(heed_image_save(tmp_path("real.jpg"), &img, NULL), HEED_OK);
    ck_assert_int_eq(rename(tmp_path("real.jpg"), tmp_path("noext")), 0);
    ck_assert_int_eq(heed_image_load(tmp_path("noext"), 0, &back), HEED_OK);
    ck_assert_int_eq(back.c, 3);
    heed_tensor_free(&back);
    heed_tensor_free(&img);
    clean_tmpdir();
}
END_TEST

START_TEST(pixel_limit_is_checked_before_decoding) {
    heed_tensor t = {0};
    bytes b;
    /* A header claiming 100000 x 100000 RGB pixels, then a token IDAT. */
    const unsigned char row[4] = {0, 1, 2, 3};
    hand_png(&b, 100000, 100000, 8, 2, row, sizeof row);
    ck_assert_int_eq(heed_image_load_mem(b.d, b.n, "huge.png", 0, &t), HEED_ERR_LIMIT);
    ck_assert_ptr_null(t.data);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "huge.png"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "100000x100000"));
    /* The limit is on W * H, inclusive. */
    tu_membuf png = encoded("png", 1), jpg = encoded("jpeg", 1); /* 17 x 12 = 204 pixels */
    ck_assert_int_eq(heed_image_load_mem(png.d, png.n, "p", 203, &t), HEED_ERR_LIMIT);
    ck_assert_int_eq(heed_image_load_mem(jpg.d, jpg.n, "j", 203, &t), HEED_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "17x12"));
    ck_assert_int_eq(heed_image_load_mem(png.d, png.n, "p", 204, &t), HEED_OK);
    heed_tensor_free(&t);
    ck_assert_int_eq(heed_image_load_mem(jpg.d, jpg.n, "j", 204, &t), HEED_OK);
    heed_tensor_free(&t);
    free(png.d);
    free(jpg.d);
}
END_TEST

/* Headers far larger than the data behind them -- 57 bytes claiming
 * 8000x8000 16-bit RGBA, a 17x12 JPEG's frame patched to 8000x8000 -- are
 * refused as truncated before their pixels are allocated: under a memory
 * limit far below those pixels' size (they took 1 GB and 13 s, then failed). */
START_TEST(headers_larger_than_their_data_fail_before_allocating) {
    heed_set_memory_limit((size_t)64 << 20);
    heed_tensor t = {0};
    bytes b;
    const unsigned char row[9] = {0};
    hand_png(&b, 8000, 8000, 16, 6, row, sizeof row);
    ck_assert_int_eq(heed_image_load_mem(b.d, b.n, "bomb.png", 0, &t), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "bomb.png: truncated PNG"), "%s", heed_last_error());
    tu_membuf jpg = encoded("jpeg", 3);
    size_t sof = 2;
    while (sof + 9 < jpg.n && !(jpg.d[sof] == 0xff && jpg.d[sof + 1] == 0xc0)) sof++;
    ck_assert_uint_lt(sof + 9, jpg.n);
    ck_assert_int_eq(jpg.d[sof + 5] << 8 | jpg.d[sof + 6], 12); /* height, then width */
    jpg.d[sof + 5] = jpg.d[sof + 7] = 8000 >> 8;
    jpg.d[sof + 6] = jpg.d[sof + 8] = 8000 & 0xff;
    ck_assert_int_eq(heed_image_load_mem(jpg.d, jpg.n, "bomb.jpg", 0, &t), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "bomb.jpg: truncated JPEG"), "%s", heed_last_error());
    ck_assert_ptr_null(t.data);
    heed_set_memory_limit(0);
    free(jpg.d);
}
END_TEST

/* ---- saving ------------------------------------------------------------ */

START_TEST(save_is_atomic_and_cleans_up) {
    make_tmpdir();
    heed_tensor img = random_codes(3, 4, 4, 255, 8), back = {0};
    /* A missing directory: fails with an I/O error, creates nothing. */
    ck_assert_int_eq(heed_image_save(tmp_path("nodir/x.png"), &img, NULL), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "nodir"));
    /* A directory in the way of the rename: the temporary file is removed. */
    ck_assert_int_eq(mkdir(tmp_path("taken.png"), 0700), 0);
    ck_assert_int_eq(heed_image_save(tmp_path("taken.png"), &img, NULL), HEED_ERR_IO);
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            ck_assert_str_eq(e->d_name, "taken.png");
            n++;
        }
    closedir(d);
    ck_assert_int_eq(n, 1);
    /* Overwriting replaces the file whole. */
    ck_assert_int_eq(heed_image_save(tmp_path("out.png"), &img, NULL), HEED_OK);
    heed_tensor other = random_codes(1, 2, 3, 255, 9);
    ck_assert_int_eq(heed_image_save(tmp_path("out.png"), &other, NULL), HEED_OK);
    ck_assert_int_eq(heed_image_load(tmp_path("out.png"), 0, &back), HEED_OK);
    assert_same_exact(&other, &back);
    heed_tensor_free(&back);
    heed_tensor_free(&other);
    heed_tensor_free(&img);
    ck_assert_int_eq(clean_tmpdir(), 2); /* taken.png and out.png only */
}
END_TEST

START_TEST(save_checks_extension_and_shape) {
    make_tmpdir();
    heed_tensor img = random_codes(3, 4, 4, 255, 8);
    ck_assert_int_eq(heed_image_save(tmp_path("x.bmp"), &img, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "x.bmp"));
    ck_assert_int_eq(heed_image_save(tmp_path("png"), &img, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_save(tmp_path("x.png.d/y"), &img, NULL), HEED_ERR_ARG);
    heed_tensor two;
    ck_assert_int_eq(heed_tensor_alloc(&two, 2, 3, 4, 4), HEED_OK);
    ck_assert_int_eq(heed_image_save(tmp_path("x.png"), &two, NULL), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 4, 4)"));
    heed_tensor_free(&two);
    ck_assert_int_eq(heed_tensor_alloc(&two, 1, 5, 4, 4), HEED_OK);
    ck_assert_int_eq(heed_image_save(tmp_path("x.png"), &two, NULL), HEED_ERR_SHAPE);
    heed_tensor_free(&two);
    ck_assert_int_eq(clean_tmpdir(), 0);
    heed_tensor_free(&img);
}
END_TEST

/* ---- resize ------------------------------------------------------------ */

static heed_tensor from_values(const float *v, int n, int c, int h, int w) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, n, c, h, w), HEED_OK);
    memcpy(t.data, v, sizeof(float) * heed_tensor_count(&t));
    return t;
}

START_TEST(resize_keeps_constants_and_identity) {
    heed_tensor in, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&in, 2, 3, 7, 5), HEED_OK);
    heed_tensor_fill(&in, 0.375f);
    const int sizes[][2] = {{3, 11}, {1, 1}, {14, 10}, {7, 2}, {20, 3}};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(heed_image_resize(&in, sizes[i][0], sizes[i][1], &out), HEED_OK);
        ck_assert_int_eq(out.n, 2);
        ck_assert_int_eq(out.c, 3);
        ck_assert_int_eq(out.h, sizes[i][0]);
        ck_assert_int_eq(out.w, sizes[i][1]);
        for (size_t k = 0; k < heed_tensor_count(&out); k++)
            ck_assert_float_eq_tol(out.data[k], 0.375f, 1e-6f);
    }
    tu_fill_uniform(in.data, heed_tensor_count(&in), 0, 1, 17);
    ck_assert_int_eq(heed_image_resize(&in, 7, 5, &out), HEED_OK);
    assert_same_exact(&in, &out);
    heed_tensor_free(&in);
    heed_tensor_free(&out);
}
END_TEST

START_TEST(resize_2x_up_and_down_match_hand_values) {
    /* Up: half-pixel centres put outputs at source 0 (clamped), 0.25, 0.75,
     * 1 (clamped): [a, b] -> [a, (3a + b)/4, (a + 3b)/4, b]. */
    const float row[2] = {1.0f, 5.0f};
    heed_tensor in = from_values(row, 1, 1, 1, 2), out = {0};
    ck_assert_int_eq(heed_image_resize(&in, 1, 4, &out), HEED_OK);
    const float up[4] = {1.0f, 2.0f, 4.0f, 5.0f};
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(out.data[i], up[i], 1e-6f);
    heed_tensor_free(&in);
    /* 2-D: the same along both axes. */
    const float sq[4] = {0.0f, 4.0f, 8.0f, 12.0f};
    in = from_values(sq, 1, 1, 2, 2);
    ck_assert_int_eq(heed_image_resize(&in, 4, 4, &out), HEED_OK);
    const float col[4] = {0.0f, 2.0f, 6.0f, 8.0f}; /* the left column, 0 -> 8 */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) ck_assert_float_eq_tol(out.data[y * 4 + x], col[y] + up[x] - 1.0f, 1e-5f);
    heed_tensor_free(&in);
    /* Down by 2 with antialiasing: the triangle widens to radius 2 around
     * centres 1 and 3, weights tri(0.25)=0.75, tri(0.25), tri(0.75)=0.25 at
     * the left border, renormalised: [0,1,2,3] -> [(0+3+2)/7, (1+6+9)/7]. */
    const float ramp[4] = {0.0f, 1.0f, 2.0f, 3.0f};
    in = from_values(ramp, 1, 1, 1, 4);
    ck_assert_int_eq(heed_image_resize(&in, 1, 2, &out), HEED_OK);
    ck_assert_float_eq_tol(out.data[0], 5.0f / 7.0f, 1e-6f);
    ck_assert_float_eq_tol(out.data[1], 16.0f / 7.0f, 1e-6f);
    heed_tensor_free(&in);
    /* The same along H. */
    in = from_values(ramp, 1, 1, 4, 1);
    ck_assert_int_eq(heed_image_resize(&in, 2, 1, &out), HEED_OK);
    ck_assert_float_eq_tol(out.data[0], 5.0f / 7.0f, 1e-6f);
    ck_assert_float_eq_tol(out.data[1], 16.0f / 7.0f, 1e-6f);
    heed_tensor_free(&in);
    heed_tensor_free(&out);
}
END_TEST

/* An independent, non-separable evaluation of the documented formula. */
static double tri_weight(int j, int i, int I, int O) {
    double s = (double)I / O, r = s > 1 ? s : 1, c = s * (i + 0.5);
    if (j < (long)(c - r + 0.5) || j >= (long)(c + r + 0.5)) return 0;
    double t = fabs(j + 0.5 - c) / r;
    return t < 1 ? 1 - t : 0;
}

START_TEST(resize_matches_direct_formula_at_odd_ratios) {
    const int H = 9, W = 7;
    heed_tensor in, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&in, 1, 2, H, W), HEED_OK);
    tu_fill_uniform(in.data, heed_tensor_count(&in), 0, 1, 3);
    const int sizes[][2] = {{4, 3}, {13, 17}, {2, 11}, {9, 4}};
    for (int k = 0; k < 4; k++) {
        int h = sizes[k][0], w = sizes[k][1];
        ck_assert_int_eq(heed_image_resize(&in, h, w, &out), HEED_OK);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    double num = 0, den = 0;
                    for (int y = 0; y < H; y++)
                        for (int x = 0; x < W; x++) {
                            double wt = tri_weight(y, i, H, h) * tri_weight(x, j, W, w);
                            num += wt * in.data[heed_tensor_index(&in, 0, c, y, x)];
                            den += wt;
                        }
                    ck_assert_float_eq_tol(out.data[heed_tensor_index(&out, 0, c, i, j)], num / den, 1e-5);
                }
    }
    heed_tensor_free(&in);
    heed_tensor_free(&out);
}
END_TEST

START_TEST(antialiased_shrink_of_checkerboard_is_flat_grey) {
    heed_tensor in, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&in, 1, 1, 64, 64), HEED_OK);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) in.data[y * 64 + x] = (float)((x + y) % 2);
    const int sizes[] = {8, 7, 5};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(heed_image_resize(&in, sizes[k], sizes[k], &out), HEED_OK);
        for (size_t i = 0; i < heed_tensor_count(&out); i++)
            ck_assert_msg(fabsf(out.data[i] - 0.5f) < 0.01f, "%d: pixel %zu = %g", sizes[k], i,
                          (double)out.data[i]);
    }
    heed_tensor_free(&in);
    heed_tensor_free(&out);
}
END_TEST

START_TEST(resize_rejects_bad_arguments) {
    heed_tensor in;
    ck_assert_int_eq(heed_tensor_alloc(&in, 1, 1, 4, 4), HEED_OK);
    heed_tensor out = {0};
    ck_assert_int_eq(heed_image_resize(&in, 0, 4, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_resize(&in, 4, -1, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_resize(&in, 2, 2, &in), HEED_ERR_ARG);
    heed_tensor empty = {0};
    ck_assert_int_eq(heed_image_resize(&empty, 2, 2, &out), HEED_ERR_SHAPE);
    heed_tensor_free(&in);
    heed_tensor_free(&out);
}
END_TEST

/* ---- conversion -------------------------------------------------------- */

START_TEST(convert_between_gray_rgb_and_alpha) {
    /* RGBA 1x2: (1, 0.5, 0, a=0.5), (0.2, 0.4, 0.6, a=1). */
    const float rgba[8] = {1.0f, 0.2f, 0.5f, 0.4f, 0.0f, 0.6f, 0.5f, 1.0f};
    heed_tensor in = from_values(rgba, 1, 4, 1, 2), out = {0};
    const float y0 = 0.299f + 0.587f * 0.5f, y1 = 0.299f * 0.2f + 0.587f * 0.4f + 0.114f * 0.6f;
    ck_assert_int_eq(heed_image_convert(&in, 1, &out), HEED_OK); /* over black */
    ck_assert_int_eq(out.c, 1);
    ck_assert_float_eq_tol(out.data[0], y0 * 0.5f, 1e-6f);
    ck_assert_float_eq_tol(out.data[1], y1, 1e-6f);
    ck_assert_int_eq(heed_image_convert(&in, 2, &out), HEED_OK); /* alpha kept */
    ck_assert_float_eq_tol(out.data[0], y0, 1e-6f);
    ck_assert_float_eq(out.data[2], 0.5f);
    ck_assert_float_eq(out.data[3], 1.0f);
    ck_assert_int_eq(heed_image_convert(&in, 3, &out), HEED_OK);
    const float rgb_want[6] = {0.5f, 0.2f, 0.25f, 0.4f, 0.0f, 0.6f};
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(out.data[i], rgb_want[i], 1e-6f);
    ck_assert_int_eq(heed_image_convert(&in, 4, &out), HEED_OK);
    assert_same_exact(&in, &out);
    heed_tensor_free(&in);

    const float gray[3] = {0.0f, 0.25f, 1.0f};
    in = from_values(gray, 1, 1, 1, 3);
    ck_assert_int_eq(heed_image_convert(&in, 3, &out), HEED_OK);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 3; i++) ck_assert_float_eq(out.data[c * 3 + i], gray[i]);
    heed_tensor back = {0};
    ck_assert_int_eq(heed_image_convert(&out, 1, &back), HEED_OK); /* luma weights sum to 1 */
    for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(back.data[i], gray[i], 1e-6f);
    ck_assert_int_eq(heed_image_convert(&in, 4, &out), HEED_OK);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(out.data[9 + i], 1.0f); /* opaque */
    ck_assert_int_eq(heed_image_convert(&in, 0, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_convert(&in, 5, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_convert(&in, 3, &in), HEED_ERR_ARG);
    heed_tensor_free(&in);
    heed_tensor_free(&out);
    heed_tensor_free(&back);
}
END_TEST

/* A 2 x 3 BGR frame with 2 bytes of row padding, by hand: pixel (y, x)
 * stores B = 10 y + x, G = 100 + x, R = 200 + y. */
START_TEST(pixel_buffers_in_both_orders) {
    unsigned char frame[2 * 11];
    memset(frame, 0xEE, sizeof frame);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            unsigned char *p = frame + y * 11 + x * 3;
            p[0] = (unsigned char)(10 * y + x);
            p[1] = (unsigned char)(100 + x);
            p[2] = (unsigned char)(200 + y);
        }
    heed_tensor img = {0};
    ck_assert_int_eq(heed_image_from_pixels(frame, 2, 3, 3, 11, 1, &img), HEED_OK);
    ck_assert(img.n == 1 && img.c == 3 && img.h == 2 && img.w == 3);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            ck_assert_float_eq(img.data[0 * 6 + y * 3 + x], (200 + y) / 255.0f); /* R first */
            ck_assert_float_eq(img.data[1 * 6 + y * 3 + x], (100 + x) / 255.0f);
            ck_assert_float_eq(img.data[2 * 6 + y * 3 + x], (10 * y + x) / 255.0f);
        }
    /* back, padding untouched; as RGB the bytes trade places */
    unsigned char back[2 * 11];
    memset(back, 0xEE, sizeof back);
    ck_assert_int_eq(heed_image_to_pixels(&img, 1, back, 11), HEED_OK);
    ck_assert_mem_eq(back, frame, sizeof frame);
    ck_assert_int_eq(heed_image_to_pixels(&img, 0, back, 0), HEED_OK);
    ck_assert_int_eq(back[0], 200);
    ck_assert_int_eq(back[2], 0);
    ck_assert_int_eq(back[3 * 3 + 2], 10); /* pixel (1, 0)'s B, packed rows */

    /* rounding and clamping as the 8-bit writers do */
    heed_tensor gray = {0};
    ck_assert_int_eq(heed_tensor_alloc(&gray, 1, 1, 1, 5), HEED_OK);
    const float v[5] = {-0.5f, 0.5f, 1.5f, NAN, 0.5f / 255.0f};
    memcpy(gray.data, v, sizeof v);
    unsigned char g[5];
    ck_assert_int_eq(heed_image_to_pixels(&gray, 0, g, 0), HEED_OK);
    ck_assert_mem_eq(g, ((unsigned char[]){0, 128, 255, 0, 1}), 5);

    /* what does not fit */
    ck_assert_int_eq(heed_image_from_pixels(frame, 2, 3, 3, 8, 0, &img), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "a row stride of 8 bytes is under the row's 9"), "%s",
                  heed_last_error());
    ck_assert_int_eq(heed_image_from_pixels(frame, 2, 3, 1, 0, 1, &img), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_from_pixels(frame, 2, 3, 5, 0, 0, &img), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_from_pixels(frame, 0, 3, 3, 0, 0, &img), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_from_pixels(NULL, 2, 3, 3, 0, 0, &img), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_to_pixels(&gray, 1, g, 0), HEED_ERR_ARG);
    ck_assert_int_eq(heed_image_to_pixels(&gray, 0, NULL, 0), HEED_ERR_ARG);
    heed_tensor empty = {0};
    ck_assert_int_eq(heed_image_to_pixels(&empty, 0, g, 0), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "the image holds nothing"), "%s", heed_last_error());
    heed_tensor_free(&img), heed_tensor_free(&gray);
}
END_TEST

/* A stride whose rows would run past the end of memory is refused before
 * a byte is touched: a bottom-up frame's negative stride (-6) cast to
 * size_t wrapped the second row round to the 6 bytes before the buffer. */
START_TEST(pixel_strides_beyond_memory_are_refused) {
    unsigned char buf[64];
    memset(buf, 0x55, sizeof buf);
    const size_t up = (size_t)0 - 6;
    heed_tensor img = {0};
    ck_assert_int_eq(heed_image_from_pixels(buf + 32, 2, 2, 3, up, 0, &img), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "do not fit in memory"), "%s", heed_last_error());
    ck_assert_ptr_null(img.data);
    ck_assert_int_eq(heed_image_from_pixels(buf + 32, 2, 2, 3, 6, 0, &img), HEED_OK);
    ck_assert_int_eq(heed_image_to_pixels(&img, 0, buf + 32, up), HEED_ERR_ARG);
    for (size_t i = 0; i < sizeof buf; i++) ck_assert_int_eq(buf[i], 0x55);
    ck_assert_int_eq(heed_image_to_pixels(&img, 0, buf + 32, PTRDIFF_MAX), HEED_ERR_ARG);
    heed_tensor_free(&img);
}
END_TEST

Suite *heed_suite_image(void) {
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("png");
    tcase_add_test(tc, png_8bit_round_trips_every_channel_count);
    tcase_add_test(tc, png_16bit_keeps_16bit_precision);
    tcase_add_test(tc, save_clamps_and_rounds);
    tcase_add_test(tc, hand_built_pngs_decode_to_known_pixels);
    tcase_add_test(tc, palette_png_loads_as_rgb_or_rgba_with_trns);
    tcase_add_test(tc, interlaced_png_matches_its_pixels);
    suite_add_tcase(s, tc);
    tc = tcase_create("jpeg");
    tcase_add_test(tc, jpeg_round_trips_gray_and_rgb_within_tolerance);
    tcase_add_test(tc, progressive_jpeg_decodes);
    tcase_add_test(tc, cmyk_jpeg_converts_to_rgb);
    tcase_add_test(tc, jpeg_refuses_alpha_and_bad_quality);
    tcase_add_test(tc, jpeg_side_limit_names_the_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad input");
    tcase_add_test(tc, truncated_files_fail_with_format_errors);
    tcase_add_test(tc, random_and_mutated_bytes_never_crash);
    tcase_add_test(tc, empty_text_missing_and_directory_files_fail_cleanly);
    tcase_add_test(tc, format_is_detected_by_content_not_name);
    tcase_add_test(tc, pixel_limit_is_checked_before_decoding);
    tcase_add_test(tc, headers_larger_than_their_data_fail_before_allocating);
    tcase_add_test(tc, interlaced_rows_count_against_the_memory_limit);
    tcase_add_test(tc, pixel_strides_beyond_memory_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("save");
    tcase_add_test(tc, save_is_atomic_and_cleans_up);
    tcase_add_test(tc, save_checks_extension_and_shape);
    suite_add_tcase(s, tc);
    tc = tcase_create("resize and convert");
    tcase_add_test(tc, resize_keeps_constants_and_identity);
    tcase_add_test(tc, resize_2x_up_and_down_match_hand_values);
    tcase_add_test(tc, resize_matches_direct_formula_at_odd_ratios);
    tcase_add_test(tc, antialiased_shrink_of_checkerboard_is_flat_grey);
    tcase_add_test(tc, resize_rejects_bad_arguments);
    tcase_add_test(tc, convert_between_gray_rgb_and_alpha);
    tcase_add_test(tc, pixel_buffers_in_both_orders);
    suite_add_tcase(s, tc);
    return s;
}
