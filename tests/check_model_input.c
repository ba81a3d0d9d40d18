/* check_model_input.c -- images brought to a model's input
 * (heed_model_input) and maps laid back over them (heed_placement_crop),
 * against values worked out by hand from model_input.h's steps. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_input.h"
#include "testutil.h"

/* A model taking 1 x H x W inputs: dark_background 1 (Fashion-MNIST's
 * items, light on dark), normalised by mean and std. */
static heed_model *model(int H, int W, float mean, float std, const char *dataset) {
    char text[64];
    snprintf(text, sizeof text, "input 1 %d %d\nfc out=2\n", H, W);
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, text, "t.net", 1) == HEED_OK, "%s", heed_last_error());
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    m->meta.input_mean = mean, m->meta.input_std = std, m->meta.dark_background = 1;
    snprintf(m->meta.dataset, sizeof m->meta.dataset, "%s", dataset);
    return m;
}

static heed_tensor image(int c, int h, int w, const float *v) {
    heed_tensor t = {0};
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, c, h, w), HEED_OK);
    memcpy(t.data, v, heed_tensor_count(&t) * sizeof(float));
    return t;
}

static void assert_frame(const heed_tensor *x, const float *want, int n) {
    ck_assert_int_eq((int)heed_tensor_count(x), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabsf(x->data[i] - want[i]) < 1e-6f, "[%d] %g, not %g", i, x->data[i], want[i]);
}

/* 2 x 4 into 4 x 4: scale 1, one row of border colour above and below
 * (every pixel of a 2-row image is border: mean 0.45, dark, so AUTO keeps
 * it), then (v - 0.5) / 0.25. */
START_TEST(letterboxed_with_the_border_colour) {
    heed_model *m = model(4, 4, 0.5f, 0.25f, "fmnist");
    const float v[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    heed_tensor img = image(1, 2, 4, v), x = {0};
    heed_placement pl;
    int inv = -1;
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, &pl, &inv), HEED_OK);
    ck_assert_int_eq(inv, 0);
    ck_assert(pl.x == 0 && pl.y == 1 && pl.w == 4 && pl.h == 2);
    const float b = (0.45f - 0.5f) / 0.25f;
    const float want[16] = {b, b, b, b, -1.6f, -1.2f, -0.8f, -0.4f, 0, 0.4f, 0.8f, 1.2f, b, b, b, b};
    assert_frame(&x, want, 16);
    heed_tensor_free(&img);

    /* 3 x 1 into 4 x 4: scale min(4/3, 4), 1 x 4 after rounding, centred at
     * column (4 - 1) / 2 = 1 */
    const float col[3] = {0.3f, 0.3f, 0.3f};
    img = image(1, 3, 1, col);
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, &pl, NULL), HEED_OK);
    ck_assert(pl.x == 1 && pl.y == 0 && pl.w == 1 && pl.h == 4);
    heed_tensor_free(&img), heed_tensor_free(&x);
    heed_model_free(m);
}
END_TEST

/* A colour model normalised per channel (torchvision's Normalize): each
 * channel by its own pair, in heed_model_input and heed_model_normalize
 * alike; a 1 x 1 RGB image of a folder model fills the 1 x 2 frame. */
START_TEST(normalised_per_channel) {
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, "input 3 1 2\nfc out=2\n", "t.net", 1), HEED_OK);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    snprintf(m->meta.dataset, sizeof m->meta.dataset, "folder:/x");
    m->meta.input_mean = 0.5f, m->meta.input_std = 0.5f; /* not used for these channels */
    m->meta.norm_channels = 3;
    const float mean[3] = {0.1f, 0.2f, 0.3f}, std[3] = {0.5f, 0.25f, 0.125f};
    memcpy(m->meta.channel_mean, mean, sizeof mean), memcpy(m->meta.channel_std, std, sizeof std);
    const float v[3] = {0.6f, 0.7f, 0.8f};
    heed_tensor img = image(3, 1, 1, v), x = {0};
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_OK);
    const float want[6] = {1.0f, 1.0f, 2.0f, 2.0f, 4.0f, 4.0f}; /* (0.6-0.1)/0.5, (0.7-0.2)/0.25, (0.8-0.3)/0.125 */
    assert_frame(&x, want, 6);
    /* a batch of two, the second image zeros */
    heed_tensor b = {0};
    ck_assert_int_eq(heed_tensor_alloc(&b, 2, 3, 1, 2), HEED_OK);
    for (int i = 0; i < 6; i++) b.data[i] = v[i / 2];
    ck_assert_int_eq(heed_model_normalize(m, &b), HEED_OK);
    const float both[12] = {1, 1, 2, 2, 4, 4, -0.2f, -0.2f, -0.8f, -0.8f, -2.4f, -2.4f};
    assert_frame(&b, both, 12);
    /* the one pair for every channel where norm_channels is 0 */
    m->meta.norm_channels = 0;
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_OK);
    const float one[6] = {0.2f, 0.2f, 0.4f, 0.4f, 0.6f, 0.6f};
    assert_frame(&x, one, 6);
    /* a batch of other channels is refused */
    heed_tensor gray = {0};
    ck_assert_int_eq(heed_tensor_alloc(&gray, 1, 1, 1, 2), HEED_OK);
    ck_assert_int_eq(heed_model_normalize(m, &gray), HEED_ERR_SHAPE);
    heed_tensor_free(&img), heed_tensor_free(&x), heed_tensor_free(&b), heed_tensor_free(&gray);
    heed_model_free(m);
}
END_TEST

/* A light border on a light-on-dark model is inverted under AUTO; NO and
 * YES decide; a dark-on-light model keeps a light image; a folder model
 * is never inverted under AUTO and fills the whole frame. */
START_TEST(inverted_to_the_models_polarity) {
    heed_model *m = model(3, 3, 0, 1, "fmnist");
    const float v[9] = {0.9f, 0.9f, 0.9f, 0.9f, 0.1f, 0.9f, 0.9f, 0.9f, 0.9f};
    heed_tensor img = image(1, 3, 3, v), x = {0};
    int inv;
    float flipped[9];
    for (int i = 0; i < 9; i++) flipped[i] = 1 - v[i];
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, &inv), HEED_OK);
    ck_assert_int_eq(inv, 1);
    assert_frame(&x, flipped, 9);
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_NO, &x, NULL, &inv), HEED_OK);
    ck_assert_int_eq(inv, 0);
    assert_frame(&x, v, 9);
    m->meta.dark_background = 0;
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, &inv), HEED_OK);
    ck_assert_int_eq(inv, 0);
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_YES, &x, NULL, &inv), HEED_OK);
    ck_assert_int_eq(inv, 1);
    assert_frame(&x, flipped, 9);
    heed_model_free(m);

    m = model(3, 6, 0, 1, "folder:/somewhere");
    heed_placement pl;
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, &pl, &inv), HEED_OK);
    ck_assert_int_eq(inv, 0);
    ck_assert(pl.x == 0 && pl.y == 0 && pl.w == 6 && pl.h == 3);
    heed_tensor_free(&img), heed_tensor_free(&x);
    heed_model_free(m);
}
END_TEST

/* Gray + alpha, (0.2, opaque) and (0.2, clear), into one channel: over
 * black (0.2, 0); dark on average (0.2 / 1), so over white instead (0.2,
 * 1); the border's mean 0.6 is light: inverted to (0.8, 0). A folder
 * model keeps alpha over black and AUTO does not invert: (0.2, 0). */
START_TEST(cut_outs_stand_on_what_sets_them_off) {
    heed_model *m = model(1, 2, 0, 1, "fmnist");
    const float v[4] = {0.2f, 0.2f, 1, 0};
    heed_tensor img = image(2, 1, 2, v), x = {0};
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_OK);
    assert_frame(&x, (const float[]){0.8f, 0}, 2);
    heed_model_free(m);
    m = model(1, 2, 0, 1, "folder:/x");
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_OK);
    assert_frame(&x, (const float[]){0.2f, 0}, 2);
    heed_tensor_free(&img), heed_tensor_free(&x);
    heed_model_free(m);
}
END_TEST

START_TEST(model_input_refuses_what_it_cannot_use) {
    heed_model *m = model(2, 2, 0, 1, "fmnist");
    heed_tensor img = {0}, x = {0};
    ck_assert_int_eq(heed_tensor_alloc(&img, 2, 1, 2, 2), HEED_OK);
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "2x1x2x2 (one image of 1..4 channels)"), "%s", heed_last_error());
    heed_tensor_free(&img);
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 1, 2, 2), HEED_OK);
    ck_assert_int_eq(heed_model_input(NULL, &img, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_model_input(m, NULL, HEED_INVERT_AUTO, &x, NULL, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_model_input(m, &img, HEED_INVERT_AUTO, NULL, NULL, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_model_input(m, &img, (heed_invert)3, &x, NULL, NULL), HEED_ERR_ARG);
    ck_assert_ptr_null(x.data);
    heed_tensor_free(&img);
    heed_model_free(m);
}
END_TEST

/* 2 x 2 map to 4 x 4 by bilinear resampling (half-pixel centres, edges
 * clamped: a row (a, b) becomes (a, .75a + .25b, .25a + .75b, b)), then
 * the placement's columns 1..2. */
START_TEST(maps_are_cut_to_the_image) {
    const float v[4] = {0, 4, 8, 12};
    heed_tensor map = image(1, 2, 2, v), out = {0};
    heed_placement pl = {.x = 1, .y = 0, .w = 2, .h = 4};
    ck_assert_msg(heed_placement_crop(&map, &pl, 4, 4, &out) == HEED_OK, "%s", heed_last_error());
    ck_assert(out.n == 1 && out.c == 1 && out.h == 4 && out.w == 2);
    assert_frame(&out, (const float[]){1, 3, 3, 5, 7, 9, 9, 11}, 8);
    pl.x = 3;
    ck_assert_int_eq(heed_placement_crop(&map, &pl, 4, 4, &out), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "2x4 at (3, 0) is not inside the 4x4 frame"), "%s",
                  heed_last_error());
    pl.x = 1;
    ck_assert_int_eq(heed_placement_crop(&map, &pl, 4, 4, &map), HEED_ERR_ARG);
    ck_assert_int_eq(heed_placement_crop(&map, NULL, 4, 4, &out), HEED_ERR_ARG);
    /* a frame of no width, however far the placement reaches (W - w would
     * overflow an int: undefined, and wrapped it let this one through) */
    const heed_placement far = {.x = 2000000000, .y = 0, .w = 2000000000, .h = 1};
    ck_assert_int_eq(heed_placement_crop(&map, &far, 1, -294967296, &out), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "placement crop: "), "%s", heed_last_error());
    /* a map of three channels is not one map: nothing says which to take */
    const float v3[12] = {0, 4, 8, 12, 1, 1, 1, 1, 2, 2, 2, 2};
    heed_tensor map3 = image(3, 2, 2, v3);
    ck_assert_int_eq(heed_placement_crop(&map3, &pl, 4, 4, &out), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "the map is 1x3x2x2 (one map of one channel)"), "%s",
                  heed_last_error());
    heed_tensor_free(&map), heed_tensor_free(&map3), heed_tensor_free(&out);
}
END_TEST

Suite *heed_suite_model_input(void) {
    Suite *s = suite_create("model_input");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, letterboxed_with_the_border_colour);
    tcase_add_test(tc, normalised_per_channel);
    tcase_add_test(tc, inverted_to_the_models_polarity);
    tcase_add_test(tc, cut_outs_stand_on_what_sets_them_off);
    tcase_add_test(tc, model_input_refuses_what_it_cannot_use);
    tcase_add_test(tc, maps_are_cut_to_the_image);
    suite_add_tcase(s, tc);
    return s;
}
