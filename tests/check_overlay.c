/* check_overlay.c -- colour maps, heat-map overlays, drawing and pasting;
 * and `heed classify --overlay` end to end: what it refuses before any work
 * (an overlay over an input image, options that shape overlays without
 * one, names it cannot write, Grad-CAM on a layer with no spatial extent).
 * The binary is $HEED_BIN (the Makefile sets it).
 *
 * Colour references are matplotlib's published values (viridis(0) =
 * #440154, viridis(1) = #fde725, ...), not the anchor tables under test. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "overlay.h"
#include "testutil.h"

static void assert_rgb(const float got[3], float r, float g, float b, float tol, const char *what) {
    ck_assert_msg(fabsf(got[0] - r) <= tol && fabsf(got[1] - g) <= tol && fabsf(got[2] - b) <= tol,
                  "%s: got (%.4f, %.4f, %.4f), want (%.4f, %.4f, %.4f)", what, (double)got[0],
                  (double)got[1], (double)got[2], (double)r, (double)g, (double)b);
}

/* ---- colour maps ------------------------------------------------------- */

START_TEST(colormap_names_parse_any_case) {
    heed_colormap cm;
    const char *names[4] = {"jet", "viridis", "inferno", "turbo"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(heed_colormap_parse(names[i], &cm), HEED_OK);
        ck_assert_int_eq(cm, i);
        ck_assert_str_eq(heed_colormap_name(cm), names[i]);
    }
    ck_assert_int_eq(heed_colormap_parse("VIRIDIS", &cm), HEED_OK);
    ck_assert_int_eq(cm, HEED_CMAP_VIRIDIS);
    ck_assert_int_eq(heed_colormap_parse("rainbow", &cm), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "rainbow"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "turbo"));
    ck_assert_int_eq(heed_colormap_parse(NULL, &cm), HEED_ERR_ARG);
    ck_assert_str_eq(heed_colormap_name((heed_colormap)9), "?");
}
END_TEST

START_TEST(colormap_endpoints_and_midpoints) {
    float c[3];
    /* jet: dark blue, blue-green-yellow middle, dark red. */
    heed_colormap_rgb(HEED_CMAP_JET, 0.0f, c);
    assert_rgb(c, 0.0f, 0.0f, 0.5f, 1e-6f, "jet(0)");
    heed_colormap_rgb(HEED_CMAP_JET, 1.0f, c);
    assert_rgb(c, 0.5f, 0.0f, 0.0f, 1e-6f, "jet(1)");
    heed_colormap_rgb(HEED_CMAP_JET, 0.5f, c);
    assert_rgb(c, 0.5f, 1.0f, 0.5f, 1e-6f, "jet(0.5)");
    heed_colormap_rgb(HEED_CMAP_JET, 0.125f, c);
    assert_rgb(c, 0.0f, 0.0f, 1.0f, 1e-6f, "jet(1/8)");
    /* matplotlib's tables (rounded to 3 decimals). */
    const float tol = 0.01f;
    heed_colormap_rgb(HEED_CMAP_VIRIDIS, 0.0f, c);
    assert_rgb(c, 0.267f, 0.005f, 0.329f, tol, "viridis(0)");
    heed_colormap_rgb(HEED_CMAP_VIRIDIS, 0.5f, c);
    assert_rgb(c, 0.128f, 0.567f, 0.551f, tol, "viridis(0.5)");
    heed_colormap_rgb(HEED_CMAP_VIRIDIS, 0.25f, c);
    assert_rgb(c, 0.230f, 0.322f, 0.546f, tol, "viridis(0.25)");
    heed_colormap_rgb(HEED_CMAP_VIRIDIS, 1.0f, c);
    assert_rgb(c, 0.993f, 0.906f, 0.144f, tol, "viridis(1)");
    heed_colormap_rgb(HEED_CMAP_INFERNO, 0.0f, c);
    assert_rgb(c, 0.001f, 0.000f, 0.014f, tol, "inferno(0)");
    heed_colormap_rgb(HEED_CMAP_INFERNO, 0.5f, c);
    assert_rgb(c, 0.736f, 0.216f, 0.330f, tol, "inferno(0.5)");
    heed_colormap_rgb(HEED_CMAP_INFERNO, 1.0f, c);
    assert_rgb(c, 0.988f, 0.998f, 0.645f, tol, "inferno(1)");
    heed_colormap_rgb(HEED_CMAP_TURBO, 0.0f, c);
    assert_rgb(c, 0.190f, 0.072f, 0.232f, tol, "turbo(0)");
    heed_colormap_rgb(HEED_CMAP_TURBO, 0.5f, c);
    assert_rgb(c, 0.644f, 0.990f, 0.234f, tol, "turbo(0.5)");
    heed_colormap_rgb(HEED_CMAP_TURBO, 0.25f, c);
    assert_rgb(c, 0.158f, 0.736f, 0.923f, tol, "turbo(0.25)");
    heed_colormap_rgb(HEED_CMAP_TURBO, 1.0f, c);
    assert_rgb(c, 0.480f, 0.016f, 0.011f, tol, "turbo(1)");
}
END_TEST

START_TEST(colormap_clamps_and_is_smooth) {
    for (int m = 0; m < 4; m++) {
        float lo[3], hi[3], c[3], prev[3];
        heed_colormap_rgb((heed_colormap)m, 0.0f, lo);
        heed_colormap_rgb((heed_colormap)m, 1.0f, hi);
        heed_colormap_rgb((heed_colormap)m, -3.0f, c);
        assert_rgb(c, lo[0], lo[1], lo[2], 0, "below 0");
        heed_colormap_rgb((heed_colormap)m, NAN, c);
        assert_rgb(c, lo[0], lo[1], lo[2], 0, "NaN");
        heed_colormap_rgb((heed_colormap)m, 7.0f, c);
        assert_rgb(c, hi[0], hi[1], hi[2], 0, "above 1");
        /* Continuous, in range: small steps in t make small steps in colour. */
        memcpy(prev, lo, sizeof prev);
        for (int i = 1; i <= 1000; i++) {
            heed_colormap_rgb((heed_colormap)m, i / 1000.0f, c);
            for (int k = 0; k < 3; k++) {
                ck_assert(c[k] >= 0.0f && c[k] <= 1.0f);
                ck_assert_msg(fabsf(c[k] - prev[k]) < 0.01f, "map %d jumps at t=%g", m, i / 1000.0);
            }
            memcpy(prev, c, sizeof prev);
        }
    }
    /* Viridis and inferno get lighter all the way (their design goal). */
    for (int m = HEED_CMAP_VIRIDIS; m <= HEED_CMAP_INFERNO; m++) {
        float last = -1.0f, c[3];
        for (int i = 0; i <= 64; i++) {
            heed_colormap_rgb((heed_colormap)m, i / 64.0f, c);
            float y = 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2];
            ck_assert_msg(y > last, "map %d luma not increasing at %d", m, i);
            last = y;
        }
    }
}
END_TEST

/* ---- overlay ----------------------------------------------------------- */

START_TEST(overlay_has_image_size_and_alpha_endpoints) {
    heed_tensor img, map, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 3, 9, 13), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&map, 1, 1, 3, 4), HEED_OK);
    tu_fill_uniform(img.data, heed_tensor_count(&img), 0, 1, 1);
    tu_fill_uniform(map.data, heed_tensor_count(&map), -2, 5, 2);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.0f, &out), HEED_OK);
    ck_assert_int_eq(out.n, 1);
    ck_assert_int_eq(out.c, 3);
    ck_assert_int_eq(out.h, 9);
    ck_assert_int_eq(out.w, 13);
    for (size_t i = 0; i < heed_tensor_count(&img); i++) ck_assert_float_eq(out.data[i], img.data[i]);
    /* alpha = 1: the colour map alone. A map of the image's size is not
     * resampled, so each pixel shows colour((m - min) / (max - min)). */
    heed_tensor full;
    ck_assert_int_eq(heed_tensor_alloc(&full, 1, 1, 9, 13), HEED_OK);
    tu_fill_uniform(full.data, heed_tensor_count(&full), -2, 5, 3);
    float mn = full.data[0], mx = full.data[0];
    for (size_t i = 0; i < heed_tensor_count(&full); i++) {
        mn = fminf(mn, full.data[i]);
        mx = fmaxf(mx, full.data[i]);
    }
    ck_assert_int_eq(heed_overlay_heatmap(&img, &full, HEED_CMAP_VIRIDIS, 1.0f, &out), HEED_OK);
    const size_t HW = 9 * 13;
    for (size_t i = 0; i < HW; i++) {
        float want[3], got[3] = {out.data[i], out.data[HW + i], out.data[2 * HW + i]};
        heed_colormap_rgb(HEED_CMAP_VIRIDIS, (full.data[i] - mn) / (mx - mn), want);
        assert_rgb(got, want[0], want[1], want[2], 1e-5f, "alpha 1");
    }
    heed_tensor_free(&full);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_VIRIDIS, 1.0f, &out), HEED_OK);
    /* Half way: the mean of the two. */
    heed_tensor half = {0};
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_VIRIDIS, 0.5f, &half), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(&half); i++)
        ck_assert_float_eq_tol(half.data[i], 0.5f * (img.data[i] + out.data[i]), 1e-6f);
    heed_tensor_free(&half);
    heed_tensor_free(&img);
    heed_tensor_free(&map);
    heed_tensor_free(&out);
}
END_TEST

START_TEST(overlay_normalises_and_upsamples_the_map) {
    /* A 1x2 map [3, 7] over a 1x4 image: normalised to [0, 1], upsampled
     * with half-pixel centres to [0, 1/4, 3/4, 1]. */
    float mapv[2] = {3.0f, 7.0f};
    heed_tensor map = heed_tensor_view(mapv, 1, 1, 1, 2), img, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 1, 1, 4), HEED_OK); /* gray, all 0 */
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 1.0f, &out), HEED_OK);
    const float t[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    for (int x = 0; x < 4; x++) {
        float want[3], got[3] = {out.data[x], out.data[4 + x], out.data[8 + x]};
        heed_colormap_rgb(HEED_CMAP_JET, t[x], want);
        assert_rgb(got, want[0], want[1], want[2], 1e-5f, "jet overlay");
    }
    /* jet(1/4) is pure cyan-blue (0, 0.5, 1) by the formula. */
    ck_assert_float_eq_tol(out.data[1], 0.0f, 1e-5f);
    ck_assert_float_eq_tol(out.data[5], 0.5f, 1e-5f);
    ck_assert_float_eq_tol(out.data[9], 1.0f, 1e-5f);
    /* A constant map is all "low". */
    mapv[1] = 3.0f;
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 1.0f, &out), HEED_OK);
    for (int x = 0; x < 4; x++) ck_assert_float_eq_tol(out.data[8 + x], 0.5f, 1e-6f);
    /* Gray images are replicated; RGBA alpha is ignored. */
    heed_tensor_fill(&img, 0.25f);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.0f, &out), HEED_OK);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(out.data[i], 0.25f);
    heed_tensor_free(&img);
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 4, 1, 4), HEED_OK);
    for (int i = 0; i < 16; i++) img.data[i] = i < 12 ? 0.1f * (i / 4 + 1) : 0.0f;
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.0f, &out), HEED_OK);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(out.data[i], img.data[i]);
    heed_tensor_free(&img);
    /* Gray with alpha (2 channels, as a gray+alpha PNG loads) is gray too:
     * its alpha plane is not taken for green. */
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 2, 1, 4), HEED_OK);
    for (int i = 0; i < 8; i++) img.data[i] = i < 4 ? 0.25f : 1.0f;
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.0f, &out), HEED_OK);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(out.data[i], 0.25f);
    heed_tensor_free(&img);
    heed_tensor_free(&out);
}
END_TEST

START_TEST(overlay_rejects_bad_arguments) {
    heed_tensor img, map, out = {0};
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 3, 4, 4), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&map, 1, 2, 2, 2), HEED_OK);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.5f, &out), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(1, 2, 2, 2)"));
    ck_assert_int_eq(heed_tensor_reshape(&map, 1, 1, 2, 4), HEED_OK);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 1.5f, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, -0.1f, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, NAN, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, (heed_colormap)7, 0.5f, &out), HEED_ERR_ARG);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.5f, &img), HEED_ERR_ARG);
    ck_assert_int_eq(heed_tensor_reshape(&img, 2, 3, 2, 4), HEED_OK);
    ck_assert_int_eq(heed_overlay_heatmap(&img, &map, HEED_CMAP_JET, 0.5f, &out), HEED_ERR_SHAPE);
    heed_tensor_free(&img);
    heed_tensor_free(&map);
    heed_tensor_free(&out);
}
END_TEST

/* ---- drawing ----------------------------------------------------------- */

static const float RED[3] = {1.0f, 0.0f, 0.0f};

/* Pixels whose red channel is set, of an image that starts black. */
static int count_red(const heed_tensor *img) {
    int n = 0;
    for (size_t i = 0; i < (size_t)img->h * img->w; i++) n += img->data[i] == 1.0f;
    return n;
}

static int red_at(const heed_tensor *img, int x, int y) {
    return img->data[(size_t)y * img->w + x] == 1.0f;
}

START_TEST(draw_rect_outlines_and_clips) {
    heed_tensor img;
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 3, 8, 10), HEED_OK);
    heed_draw_rect(&img, 5, 4, 2, 2, 1, RED); /* corners in any order */
    ck_assert_int_eq(count_red(&img), 10);    /* 4x3 box: 2*(4+3) - 4 */
    ck_assert(red_at(&img, 2, 2) && red_at(&img, 5, 4) && red_at(&img, 3, 4));
    ck_assert(!red_at(&img, 3, 3) && !red_at(&img, 4, 3)); /* hollow */
    ck_assert_float_eq(img.data[8 * 10 + 2 * 10 + 2], 0.0f); /* green stays 0 */
    heed_tensor_zero(&img);
    heed_draw_rect(&img, 0, 0, 9, 7, 2, RED); /* thickness goes inwards */
    ck_assert_int_eq(count_red(&img), 80 - 6 * 4);
    heed_tensor_zero(&img);
    heed_draw_rect(&img, -5, -5, 3, 3, 1, RED); /* only the right and bottom edges show */
    ck_assert_int_eq(count_red(&img), 4 + 4 - 1);
    heed_tensor_zero(&img);
    heed_draw_rect(&img, INT_MIN, INT_MIN, INT_MAX, INT_MAX, 1, RED); /* edges far outside */
    ck_assert_int_eq(count_red(&img), 0);
    heed_draw_rect(&img, -1000000, -1000000, 1000000, 1000000, INT_MAX, RED); /* bands cover all */
    ck_assert_int_eq(count_red(&img), 80);
    heed_tensor_zero(&img);
    heed_draw_rect(&img, 20, 20, 30, 30, 3, RED); /* entirely outside */
    heed_draw_rect(&img, INT_MIN, INT_MIN, INT_MIN, INT_MIN, 1, RED);
    ck_assert_int_eq(count_red(&img), 0);
    heed_tensor_free(&img);
}
END_TEST

START_TEST(draw_line_is_exact_and_clips) {
    heed_tensor img;
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 3, 10, 10), HEED_OK);
    heed_draw_line(&img, 1, 2, 6, 2, 1, RED);
    ck_assert_int_eq(count_red(&img), 6);
    heed_tensor_zero(&img);
    heed_draw_line(&img, 4, 4, 0, 0, 1, RED);
    ck_assert_int_eq(count_red(&img), 5);
    for (int i = 0; i <= 4; i++) ck_assert(red_at(&img, i, i));
    heed_tensor_zero(&img);
    /* Far end points: the visible part is still the exact diagonal. */
    heed_draw_line(&img, -100, -100, 100, 100, 1, RED);
    ck_assert_int_eq(count_red(&img), 10);
    for (int i = 0; i < 10; i++) ck_assert(red_at(&img, i, i));
    heed_tensor_zero(&img);
    /* A 3-pixel pen: all pixels within 1.5 of the segment (2,4)-(6,4). */
    heed_draw_line(&img, 2, 4, 6, 4, 3, RED);
    ck_assert_int_eq(count_red(&img), 7 * 3);
    ck_assert(red_at(&img, 1, 3) && red_at(&img, 7, 5) && !red_at(&img, 0, 4) && !red_at(&img, 4, 6));
    heed_tensor_zero(&img);
    heed_draw_line(&img, 3, 3, 3, 3, 1, RED); /* a point */
    ck_assert_int_eq(count_red(&img), 1);
    heed_tensor_zero(&img);
    heed_draw_line(&img, INT_MIN, INT_MIN, INT_MAX, INT_MAX, 1, RED);
    heed_draw_line(&img, INT_MIN, 5, INT_MAX, 5, 1000, RED);
    heed_draw_line(&img, -50, 20, 50, 20, 1, RED); /* misses */
    heed_draw_line(&img, INT_MAX, INT_MAX, INT_MAX - 1, INT_MAX, 5, RED);
    heed_tensor_free(&img);
}
END_TEST

START_TEST(draw_disc_counts_and_clips) {
    heed_tensor img;
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 3, 9, 9), HEED_OK);
    const int want[4] = {1, 5, 13, 29}; /* lattice points with x^2 + y^2 <= r^2 */
    for (int r = 0; r < 4; r++) {
        heed_tensor_zero(&img);
        heed_draw_disc(&img, 4, 4, r, RED);
        ck_assert_int_eq(count_red(&img), want[r]);
    }
    heed_tensor_zero(&img);
    heed_draw_disc(&img, 0, 0, 2, RED); /* a quarter of 13, plus the axes */
    ck_assert_int_eq(count_red(&img), 6);
    heed_tensor_zero(&img);
    heed_draw_disc(&img, 4, 4, -1, RED);
    heed_draw_disc(&img, INT_MIN, INT_MIN, INT_MAX, RED);
    heed_draw_disc(&img, 100, 100, 3, RED);
    ck_assert_int_eq(count_red(&img), 0);
    heed_draw_disc(&img, 4, 4, INT_MAX, RED);
    ck_assert_int_eq(count_red(&img), 81);
    heed_tensor_free(&img);
}
END_TEST

START_TEST(drawing_on_gray_and_other_images) {
    heed_tensor g;
    ck_assert_int_eq(heed_tensor_alloc(&g, 1, 1, 4, 4), HEED_OK);
    heed_draw_disc(&g, 1, 1, 0, RED);
    ck_assert_float_eq_tol(g.data[5], 0.299f, 1e-6f); /* luma of red */
    heed_tensor_free(&g);
    ck_assert_int_eq(heed_tensor_alloc(&g, 1, 2, 4, 4), HEED_OK); /* not drawable: untouched */
    heed_draw_rect(&g, 0, 0, 3, 3, 1, RED);
    for (int i = 0; i < 32; i++) ck_assert_float_eq(g.data[i], 0.0f);
    heed_tensor_free(&g);
    heed_tensor empty = {0};
    heed_draw_line(&empty, 0, 0, 5, 5, 1, RED);
    heed_draw_disc(NULL, 0, 0, 5, RED);
}
END_TEST

START_TEST(paste_scales_and_clips) {
    heed_tensor dst, src;
    ck_assert_int_eq(heed_tensor_alloc(&dst, 1, 3, 10, 10), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&src, 1, 3, 2, 2), HEED_OK);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) src.data[c * 4 + i] = (float)(c * 4 + i + 1);
    heed_paste(&dst, &src, 1, 2, 3);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 10; x++) {
                float want = 0.0f;
                if (x >= 1 && x < 7 && y >= 2 && y < 8)
                    want = (float)(c * 4 + ((y - 2) / 3) * 2 + (x - 1) / 3 + 1);
                ck_assert_float_eq(dst.data[heed_tensor_index(&dst, 0, c, y, x)], want);
            }
    /* Clipped on the top-left: the block of source pixel (1, 1) remains. */
    heed_tensor_zero(&dst);
    heed_paste(&dst, &src, -3, -3, 3);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++)
            ck_assert_float_eq(dst.data[y * 10 + x], x < 3 && y < 3 ? 4.0f : 0.0f);
    heed_tensor_zero(&dst);
    heed_paste(&dst, &src, 9, 9, 0); /* scale 0 counts as 1: one pixel shows */
    ck_assert_float_eq(dst.data[99], 1.0f);
    ck_assert_float_eq(dst.data[98], 0.0f);
    heed_paste(&dst, &src, INT_MAX, INT_MAX, INT_MAX);
    heed_paste(&dst, &src, INT_MIN, INT_MIN, INT_MAX);
    heed_tensor_free(&src);
    /* A gray source fills every channel. */
    ck_assert_int_eq(heed_tensor_alloc(&src, 1, 1, 1, 1), HEED_OK);
    src.data[0] = 0.5f;
    heed_paste(&dst, &src, 0, 0, 2);
    for (int c = 0; c < 3; c++) ck_assert_float_eq(dst.data[c * 100 + 11], 0.5f);
    heed_tensor_free(&src);
    heed_tensor_free(&dst);
}
END_TEST

/* ---- heed classify --overlay -------------------------------------------- */

static char dir[256];
static const char *const MODEL = "models/fmnist-cbam.heed", *const ITEM = "images/test-00001-Pullover.png";

static void cli_setup(void) { ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "overlay"), 0); }

static void cli_teardown(void) { tu_remove_dir(dir); }

/* Runs `heed classify ARGS`: stdout into out, stderr into err; the exit code. */
static int classify(const char *args, char *out, size_t outsize, char *err, size_t errsize) {
    char full[4096];
    snprintf(full, sizeof full, "classify %s", args);
    return tu_run_heed(dir, NULL, full, out, outsize, err, errsize);
}

/* Copies the file at from to dir/name. */
static void copy_to(const char *from, const char *name) {
    size_t n;
    unsigned char *b = tu_read_bytes(from, &n);
    ck_assert_ptr_nonnull(b);
    char to[400];
    snprintf(to, sizeof to, "%s/%s", dir, name);
    FILE *f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    free(b);
}

/* Whether dir/name still holds exactly the file at original. */
static int unchanged(const char *name, const char *original) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t na, nb;
    unsigned char *a = tu_read_bytes(path, &na), *b = tu_read_bytes(original, &nb);
    int same = a && b && na == nb && !memcmp(a, b, na);
    free(a), free(b);
    return same;
}

/* An overlay that names an input image (by any spelling, or another link
 * to it) replaced it: `--overlay v.png v.png` exited 0. Now refused before
 * any work, the image left as it was; in folder mode too, where one
 * image's overlay DIR/<image>-<map>.png is another input. */
START_TEST(classify_overlay_never_replaces_an_input) {
    static char out[1 << 14], err[1 << 12];
    char args[2048], want[1400];
    copy_to(ITEM, "v.png");
    snprintf(args, sizeof args, "--model %s --overlay %s/v.png %s/v.png", MODEL, dir, dir);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    snprintf(want, sizeof want,
             "heed classify: --overlay %s/v.png is the input image %s/v.png: the overlay would "
             "replace it; give another file name\n",
             dir, dir);
    ck_assert_str_eq(err, want);
    ck_assert_str_eq(out, "");
    ck_assert(unchanged("v.png", ITEM));
    /* other spellings of the same file: ./, .., a hard link, --map gradcam */
    char link_path[400], v[400];
    snprintf(v, sizeof v, "%s/v.png", dir);
    snprintf(link_path, sizeof link_path, "%s/hard.png", dir);
    ck_assert_int_eq(link(v, link_path), 0);
    const char *spellings[] = {"%s/./v.png %s/v.png", "%s/v.png %s/../%s/v.png", "%s/hard.png %s/v.png"};
    for (int i = 0; i < 3; i++) {
        char pair[900];
        const char *base = strrchr(dir, '/') + 1;
        if (i == 1)
            snprintf(pair, sizeof pair, spellings[i], dir, dir, base);
        else
            snprintf(pair, sizeof pair, spellings[i], dir, dir);
        snprintf(args, sizeof args, "--model %s --map gradcam --overlay %s", MODEL, pair);
        ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 2, "%s: %s", pair, err);
        ck_assert_msg(strstr(err, "the overlay would replace it") && !strchr(err, '\n')[1], "%s", err);
        ck_assert(unchanged("v.png", ITEM));
    }
    /* folder mode: a.png's overlay would be the input a-attention.png */
    copy_to(ITEM, "a.png");
    copy_to(ITEM, "a-attention.png");
    snprintf(args, sizeof args, "--model %s --overlay %s %s/a-attention.png %s/a.png", MODEL, dir, dir, dir);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    snprintf(want, sizeof want,
             "heed classify: the overlay of %s/a.png, %s/a-attention.png, would replace the input "
             "image %s/a-attention.png: give another --overlay folder\n",
             dir, dir, dir);
    ck_assert_str_eq(err, want);
    ck_assert(unchanged("a-attention.png", ITEM));
    /* ... also when neither is there yet: the folder is not made */
    snprintf(args, sizeof args, "--model %s --overlay %s/new %s/new/a-attention.png %s/new/a.png", MODEL,
             dir, dir, dir);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "would replace the input image"), "%s", err);
    snprintf(want, sizeof want, "%s/new", dir);
    ck_assert_int_ne(access(want, F_OK), 0);
    /* a folder beside the images, and another file, are fine */
    snprintf(args, sizeof args, "--model %s --overlay %s/w.png %s/v.png", MODEL, dir, dir);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "--model %s --overlay %s %s/a.png %s/v.png", MODEL, dir, dir, dir);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert(unchanged("v.png", ITEM) && unchanged("a.png", ITEM));
}
END_TEST

/* Grad-CAM on a layer whose output is 1x1 (fc1, flatten1) drew a map of
 * one value, stretched: refused, naming the shape and a layer that works. */
START_TEST(gradcam_needs_a_spatial_layer) {
    static char out[1 << 14], err[1 << 12];
    char args[1024], want[400];
    const char *layers[] = {"fc1", "flatten1"}, *shapes[] = {"128x1x1", "3136x1x1"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "--model %s --map gradcam --layer %s --overlay %s/x.png %s", MODEL,
                 layers[i], dir, ITEM);
        ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 1);
        snprintf(want, sizeof want,
                 "heed classify: --layer %s outputs %s: Grad-CAM needs a spatial layer (an output "
                 "over 1x1), such as stage2, the default\n",
                 layers[i], shapes[i]);
        ck_assert_str_eq(err, want);
        ck_assert_str_eq(out, "");
        snprintf(want, sizeof want, "%s/x.png", dir);
        ck_assert_int_ne(access(want, F_OK), 0);
    }
    /* said once, before any image, however many there are */
    snprintf(args, sizeof args, "--model %s --map gradcam --layer fc1 --overlay %s %s %s", MODEL, dir, ITEM,
             "images/test-00000-Ankle_boot.png");
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_ptr_eq(strchr(err, '\n'), err + strlen(err) - 1);
    /* a spatial layer by name still works */
    snprintf(args, sizeof args, "--model %s --map gradcam --layer stage1 --overlay %s/s.png %s", MODEL, dir,
             ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    heed_tensor o = {0};
    snprintf(want, sizeof want, "%s/s.png", dir);
    ck_assert_msg(heed_image_load(want, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(o.h, 28);
    heed_tensor_free(&o);
}
END_TEST

/* --class shows Grad-CAM for a chosen class: the top class by name or
 * index draws the overlay the default draws, byte for byte; another class
 * draws another map; names as data export writes them are taken. */
START_TEST(gradcam_for_a_chosen_class) {
    static char out[1 << 14], err[1 << 12];
    char args[1024], path[400];
    const char *runs[][2] = {{"", "top.png"}, {"--class Pullover", "name.png"}, {"--class 2", "index.png"},
                             {"--class Ankle_boot", "boot.png"}, {"--class 'Ankle boot'", "boot2.png"}};
    unsigned char *bytes[5];
    size_t sizes[5];
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "--model %s --map gradcam %s --overlay %s/%s %s", MODEL, runs[i][0], dir,
                 runs[i][1], ITEM);
        ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
        ck_assert_ptr_nonnull(strstr(out, "Pullover")); /* the listing is the same */
        snprintf(path, sizeof path, "%s/%s", dir, runs[i][1]);
        bytes[i] = tu_read_bytes(path, &sizes[i]);
    }
    for (int i = 1; i < 5; i++) {
        const int same = sizes[i] == sizes[0] && !memcmp(bytes[i], bytes[0], sizes[0]);
        ck_assert_msg(same == (i < 3), "run %d (%s) %s the top class's overlay", i, runs[i][0],
                      same ? "drew" : "did not draw");
    }
    ck_assert(sizes[3] == sizes[4] && !memcmp(bytes[3], bytes[4], sizes[3]));
    /* into a folder, each class's overlay has a name of its own */
    snprintf(args, sizeof args, "--model %s --map gradcam --class 'Ankle boot' --overlay %s %s", MODEL, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    size_t n;
    snprintf(path, sizeof path, "%s/test-00001-Pullover-gradcam-Ankle_boot.png", dir);
    unsigned char *named = tu_read_bytes(path, &n);
    ck_assert(n == sizes[3] && !memcmp(named, bytes[3], n));
    free(named);
    for (int i = 0; i < 5; i++) free(bytes[i]);
    /* refused: a class the model lacks, an index past its classes, and
     * CBAM's attention map, which is one map for every class */
    const char *bad[][2] = {
        {"--map gradcam --class Boot", "heed classify: --class Boot is none of the model's 10 classes "
                                       "(T-shirt/top ... Ankle boot, or 0..9)\n"},
        {"--map gradcam --class 10", "heed classify: --class 10 is none of the model's 10 classes "
                                     "(T-shirt/top ... Ankle boot, or 0..9)\n"},
        {"--class 3", "heed classify: --class needs --map gradcam or saliency (an attention map is the same "
                      "for every class)\n"}};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "--model %s %s --overlay %s/bad.png %s", MODEL, bad[i][0], dir, ITEM);
        /* the last a usage error, known before the model is read */
        ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), i == 2 ? 2 : 1);
        ck_assert_str_eq(err, bad[i][1]);
        snprintf(path, sizeof path, "%s/bad.png", dir);
        ck_assert_int_ne(access(path, F_OK), 0);
    }
}
END_TEST

/* --map saliency: an overlay at the image's size, the top class's by
 * default and another class's with --class (into <image>-saliency-C);
 * --layer, which names a layer's output, is refused. */
START_TEST(saliency_overlays) {
    static char out[1 << 14], err[1 << 12];
    char args[1024], path[400];
    snprintf(args, sizeof args, "--model %s --map saliency --overlay %s %s", MODEL, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "--model %s --map saliency --class Bag --overlay %s %s", MODEL, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    size_t n_top, n_bag;
    snprintf(path, sizeof path, "%s/test-00001-Pullover-saliency.png", dir);
    unsigned char *top = tu_read_bytes(path, &n_top);
    snprintf(path, sizeof path, "%s/test-00001-Pullover-saliency-Bag.png", dir);
    unsigned char *bag = tu_read_bytes(path, &n_bag);
    ck_assert(n_top != n_bag || memcmp(top, bag, n_top)); /* another class, another map */
    free(top), free(bag);
    heed_tensor o = {0};
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert(o.c == 3 && o.h == 28 && o.w == 28);
    heed_tensor_free(&o);
    /* a usage error (2), said before the model is read: no such model here */
    snprintf(args, sizeof args, "--model %s/none.heed --map saliency --layer stage1 --overlay %s/l.png %s", dir,
             dir, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed classify: --layer stage1: --map saliency is over the input, not a layer's output "
                          "(--layer is for attention and gradcam)\n");
}
END_TEST

/* A model with no map of its own to show (RAM: no CBAM, no spatial layer)
 * is pointed at the one map it has, saliency; it was sent to --map
 * gradcam, which refuses it in turn. */
START_TEST(a_model_without_maps_is_sent_to_saliency) {
    static char out[1 << 14], err[1 << 12];
    char args[1024];
    const char *ram = "models/ram-fmnist-cluttered60.heed";
    const char *runs[][2] = {
        {"", "heed classify: the model has no spatial attention (cbam); use --map saliency\n"},
        {"--map gradcam", "heed classify: the network has no spatial layer for Grad-CAM; use --map saliency\n"}};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "--model %s %s --overlay %s/r.png %s", ram, runs[i][0], dir, ITEM);
        ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 1);
        ck_assert_str_eq(err, runs[i][1]);
    }
    snprintf(args, sizeof args, "--model %s --map saliency --overlay %s/r.png %s", ram, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    /* a CNN without CBAM still hears of gradcam */
    snprintf(args, sizeof args, "--model models/fmnist-se.heed --overlay %s/s.png %s", dir, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_str_eq(err, "heed classify: the model has no spatial attention (cbam); use --map gradcam\n");
}
END_TEST

/* --map, --layer, --colormap, --alpha and --format without --overlay were
 * ignored (exit 0): refused, naming them. --channels and --json do not
 * need an overlay. */
START_TEST(overlay_options_need_overlay) {
    static char out[1 << 14], err[1 << 12];
    char args[1024];
    snprintf(args, sizeof args,
             "--model %s --map gradcam --layer zzz --colormap viridis --alpha 0.3 --format jpg %s", MODEL, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed classify: --map, --layer, --colormap, --alpha and --format apply only to "
                          "overlays, and no --overlay DIR|FILE was given\n");
    ck_assert_str_eq(out, "");
    /* given is given, even at the default's value, and as --name=value */
    snprintf(args, sizeof args, "--model %s --alpha=0.5 %s", MODEL, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed classify: --alpha applies only to overlays, and no --overlay DIR|FILE was "
                          "given\n");
    snprintf(args, sizeof args, "--model %s --map attention --top 1 %s", MODEL, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    /* --channels, --json, --top and --invert need no overlay */
    snprintf(args, sizeof args, "--model %s --channels --json --top 1 --invert no -- %s", MODEL, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "\"channels\": [{\"layer\": \"stage1.att\""));
    snprintf(args, sizeof args, "--model %s --colormap inferno --alpha 0.3 --overlay %s %s", MODEL, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
}
END_TEST

/* --json with an image that cannot be read: the others' results stay one
 * JSON array. When the first image failed, the array opened "[,\n {" (not
 * JSON); the error is one line on stderr and the exit status 1. */
START_TEST(json_stays_an_array_when_an_image_fails) {
    static char out[1 << 14], err[1 << 12];
    char args[1024];
    const char *orders[] = {"%s/missing.png %s", "%s/missing.png %s %s/missing.png", "%s %s/missing.png"};
    for (int i = 0; i < 3; i++) {
        char images[700];
        if (i == 2)
            snprintf(images, sizeof images, orders[i], ITEM, dir);
        else
            snprintf(images, sizeof images, orders[i], dir, ITEM, dir);
        snprintf(args, sizeof args, "--model %s --json %s", MODEL, images);
        ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 1);
        ck_assert_msg(!strncmp(out, "[{\"image\": ", 11), "%s: %s", images, out);
        ck_assert_msg(!strstr(out, "[,") && !strstr(out, "},\n ]"), "%s: %s", images, out);
        ck_assert_str_eq(out + strlen(out) - 3, "}]\n");
        ck_assert_ptr_nonnull(strstr(err, "heed classify: cannot open "));
    }
}
END_TEST

/* A run that cannot start (its model is not there) makes no --overlay
 * folder: it made it first and left it behind, empty. */
START_TEST(a_run_that_cannot_start_makes_no_folder) {
    static char out[1 << 14], err[1 << 12];
    char args[1024], folder[400];
    snprintf(folder, sizeof folder, "%s/never", dir);
    snprintf(args, sizeof args, "--model %s/none.heed --overlay %s %s", dir, folder, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "none.heed"), "%s", err);
    ck_assert_int_ne(access(folder, F_OK), 0);
}
END_TEST

/* --overlay "" said "cannot create directory :" (exit 1); --overlay x.gif
 * made a folder named x.gif. Both are usage errors now, before any work;
 * x.gif/ (a folder, said so) and an existing folder x.gif are fine. */
START_TEST(overlay_names_a_folder_or_a_png_or_jpeg) {
    static char out[1 << 14], err[1 << 12];
    char args[1024], want[600], path[400];
    snprintf(args, sizeof args, "--model %s --overlay '' %s", MODEL, ITEM);
    ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed classify: --overlay takes a folder or a .png/.jpg/.jpeg file, not an "
                          "empty name\n");
    const char *names[] = {"x.gif", "x.BMP", "x.tif", "x.Tiff", "x.webp"};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "--model %s --overlay %s/%s %s", MODEL, dir, names[i], ITEM);
        ck_assert_int_eq(classify(args, out, sizeof out, err, sizeof err), 2);
        snprintf(want, sizeof want,
                 "heed classify: --overlay %s/%s: heed cannot write %s files; --overlay takes a folder "
                 "or a .png/.jpg/.jpeg file (end a folder's name with /)\n",
                 dir, names[i], strchr(names[i], '.'));
        ck_assert_str_eq(err, want);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ck_assert_int_ne(access(path, F_OK), 0);
    }
    snprintf(args, sizeof args, "--model %s --overlay %s/x.gif/ %s", MODEL, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/x.gif/test-00001-Pullover-attention.png", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    snprintf(args, sizeof args, "--model %s --overlay %s/x.gif %s", MODEL, dir, ITEM);
    ck_assert_msg(classify(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
}
END_TEST

Suite *heed_suite_overlay(void) {
    Suite *s = suite_create("overlay");
    TCase *tc = tcase_create("colormap");
    tcase_add_test(tc, colormap_names_parse_any_case);
    tcase_add_test(tc, colormap_endpoints_and_midpoints);
    tcase_add_test(tc, colormap_clamps_and_is_smooth);
    suite_add_tcase(s, tc);
    tc = tcase_create("overlay");
    tcase_add_test(tc, overlay_has_image_size_and_alpha_endpoints);
    tcase_add_test(tc, overlay_normalises_and_upsamples_the_map);
    tcase_add_test(tc, overlay_rejects_bad_arguments);
    suite_add_tcase(s, tc);
    tc = tcase_create("draw");
    tcase_add_test(tc, draw_rect_outlines_and_clips);
    tcase_add_test(tc, draw_line_is_exact_and_clips);
    tcase_add_test(tc, draw_disc_counts_and_clips);
    tcase_add_test(tc, drawing_on_gray_and_other_images);
    tcase_add_test(tc, paste_scales_and_clips);
    suite_add_tcase(s, tc);
    tc = tcase_create("classify");
    tcase_add_checked_fixture(tc, cli_setup, cli_teardown);
    tcase_add_test(tc, classify_overlay_never_replaces_an_input);
    tcase_add_test(tc, gradcam_needs_a_spatial_layer);
    tcase_add_test(tc, gradcam_for_a_chosen_class);
    tcase_add_test(tc, saliency_overlays);
    tcase_add_test(tc, a_model_without_maps_is_sent_to_saliency);
    tcase_add_test(tc, overlay_options_need_overlay);
    tcase_add_test(tc, json_stays_an_array_when_an_image_fails);
    tcase_add_test(tc, a_run_that_cannot_start_makes_no_folder);
    tcase_add_test(tc, overlay_names_a_folder_or_a_png_or_jpeg);
    suite_add_tcase(s, tc);
    return s;
}
