/* check_dropout.c -- inverted dropout: the rate and scale of the mask, the
 * backward pass reusing it, inference as the identity, reproducibility and
 * bad configurations. */
#include <math.h>
#include <string.h>

#include "dropout.h"
#include "testutil.h"

static heed_dropout *make_dropout(float p, uint64_t seed, const int in[3]) {
    heed_dropout *d;
    ck_assert_int_eq(heed_dropout_new(&d, &(heed_dropout_cfg){.p = p, .seed = seed}, in, NULL, "drop"),
                     HEED_OK);
    return d;
}

START_TEST(training_zeroes_a_fraction_p_and_scales_the_rest) {
    const float p = 0.3f;
    heed_dropout *d = make_dropout(p, 42, (int[3]){10, 50, 50});
    ck_assert_str_eq(d->base.ops->type, "dropout");
    ck_assert_int_eq(d->base.out_c, 10);
    ck_assert_int_eq(d->base.out_h, 50);
    heed_layer_set_training(&d->base, 1);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 4, 10, 50, 50), HEED_OK);
    const size_t count = heed_tensor_count(&x);
    tu_fill_uniform(x.data, count, 0.5f, 2, 1); /* nonzero, so a zero output means dropped */
    ck_assert_int_eq(heed_layer_forward(&d->base, &x, &y), HEED_OK);
    size_t zeros = 0;
    for (size_t i = 0; i < count; i++) {
        if (y.data[i] == 0.0f)
            zeros++;
        else
            ck_assert_float_eq_tol(y.data[i], x.data[i] / (1 - p), 1e-6f * y.data[i]);
    }
    /* 100000 Bernoulli(0.3) draws: standard deviation of the rate 0.0014. */
    ck_assert_double_eq_tol((double)zeros / count, p, 0.01);
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_layer_free(&d->base);
}
END_TEST

START_TEST(backward_uses_the_forward_mask) {
    heed_dropout *d = make_dropout(0.5f, 7, (int[3]){3, 5, 7});
    d->base.training = 1;
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 5, 7), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 3, 5, 7), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 3, 5, 7), HEED_OK);
    const size_t count = heed_tensor_count(&x);
    tu_fill_uniform(x.data, count, 1, 2, 2);
    tu_fill_uniform(dy.data, count, -1, 1, 3);
    heed_tensor_fill(&dx, 0.5f);
    ck_assert_int_eq(heed_dropout_forward(d, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_dropout_backward(d, &x, &dy, &dx), HEED_OK);
    int kept = 0;
    for (size_t i = 0; i < count; i++) {
        /* y = x m, so the mask is y / x, and dx must be 0.5 + dy m. */
        const float m = y.data[i] / x.data[i];
        ck_assert(m == 0.0f || fabsf(m - 2.0f) < 1e-6f);
        kept += m != 0.0f;
        ck_assert_float_eq_tol(dx.data[i], 0.5f + dy.data[i] * (m == 0.0f ? 0.0f : 2.0f), 1e-6);
    }
    ck_assert(kept > 0 && kept < (int)count);
    ck_assert_int_eq(heed_dropout_backward(d, &x, &dy, NULL), HEED_OK);
    /* A backward on a different size than the forward masked is refused. */
    heed_tensor other;
    ck_assert_int_eq(heed_tensor_alloc(&other, 1, 3, 5, 7), HEED_OK);
    ck_assert_int_eq(heed_dropout_backward(d, &other, &other, &other), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_dropout_backward(d, &x, &other, &dx), HEED_ERR_SHAPE);
    heed_tensor_free(&other);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_layer_free(&d->base);
}
END_TEST

START_TEST(inference_and_p_zero_are_the_identity) {
    heed_dropout *d = make_dropout(0.9f, 1, (int[3]){4, 3, 3});
    heed_dropout *z = make_dropout(0.0f, 1, (int[3]){4, 3, 3});
    z->base.training = 1;
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 3, 4, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 3, 4, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 3, 4, 3, 3), HEED_OK);
    const size_t count = heed_tensor_count(&x);
    tu_fill_uniform(x.data, count, -1, 1, 4);
    tu_fill_uniform(dy.data, count, -1, 1, 5);
    heed_layer *layers[2] = {&d->base, &z->base};
    for (int k = 0; k < 2; k++) {
        heed_tensor_fill(&dx, 1.0f);
        ck_assert_int_eq(heed_layer_forward(layers[k], &x, &y), HEED_OK);
        ck_assert_int_eq(memcmp(y.data, x.data, count * sizeof(float)), 0);
        ck_assert_int_eq(heed_layer_backward(layers[k], &x, &y, &dy, &dx), HEED_OK);
        for (size_t i = 0; i < count; i++) ck_assert_float_eq(dx.data[i], 1.0f + dy.data[i]);
    }
    ck_assert_double_eq(heed_layer_flops(&d->base), 0.0);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_layer_free(&d->base);
    heed_layer_free(&z->base);
}
END_TEST

START_TEST(same_seed_same_masks_and_masks_advance) {
    heed_dropout *a = make_dropout(0.5f, 99, (int[3]){64, 1, 1});
    heed_dropout *b = make_dropout(0.5f, 99, (int[3]){64, 1, 1});
    heed_dropout *c = make_dropout(0.5f, 100, (int[3]){64, 1, 1});
    a->base.training = b->base.training = c->base.training = 1;
    heed_tensor x, ya1 = {0}, ya2 = {0}, yb1 = {0}, yb2 = {0}, yc = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 4, 64, 1, 1), HEED_OK);
    heed_tensor_fill(&x, 1.0f);
    const size_t bytes = heed_tensor_count(&x) * sizeof(float);
    ck_assert_int_eq(heed_dropout_forward(a, &x, &ya1), HEED_OK);
    ck_assert_int_eq(heed_dropout_forward(a, &x, &ya2), HEED_OK);
    ck_assert_int_eq(heed_dropout_forward(b, &x, &yb1), HEED_OK);
    ck_assert_int_eq(heed_dropout_forward(b, &x, &yb2), HEED_OK);
    ck_assert_int_eq(heed_dropout_forward(c, &x, &yc), HEED_OK);
    ck_assert_int_eq(memcmp(ya1.data, yb1.data, bytes), 0);
    ck_assert_int_eq(memcmp(ya2.data, yb2.data, bytes), 0);
    ck_assert_int_ne(memcmp(ya1.data, ya2.data, bytes), 0); /* each call draws anew */
    ck_assert_int_ne(memcmp(ya1.data, yc.data, bytes), 0);  /* the seed matters */
    heed_tensor_free(&x), heed_tensor_free(&ya1), heed_tensor_free(&ya2);
    heed_tensor_free(&yb1), heed_tensor_free(&yb2), heed_tensor_free(&yc);
    heed_layer_free(&a->base);
    heed_layer_free(&b->base);
    heed_layer_free(&c->base);
}
END_TEST

/* A NULL configuration is refused like a bad one (it was dereferenced). */
START_TEST(null_config_is_refused) {
    heed_dropout *d = (heed_dropout *)1;
    ck_assert_int_eq(heed_dropout_new(&d, NULL, (int[3]){2, 2, 2}, NULL, "drop"), HEED_ERR_ARG);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(heed_last_error(), "dropout drop: no configuration given"), "%s",
                  heed_last_error());
}
END_TEST

START_TEST(p_outside_zero_one_is_refused) {
    const float bad[4] = {1.0f, -0.1f, 1.5f, NAN};
    for (int i = 0; i < 4; i++) {
        heed_dropout *d = (heed_dropout *)1;
        ck_assert_int_eq(heed_dropout_new(&d, &(heed_dropout_cfg){.p = bad[i]}, (int[3]){2, 2, 2},
                                          NULL, "drop"), HEED_ERR_ARG);
        ck_assert_ptr_null(d);
        ck_assert_ptr_nonnull(strstr(heed_last_error(), "p = "));
    }
    heed_dropout *d;
    ck_assert_int_eq(heed_dropout_new(&d, &(heed_dropout_cfg){.p = 0.5f}, (int[3]){2, 0, 2}, NULL,
                                      "drop"), HEED_ERR_ARG);
}
END_TEST

Suite *heed_suite_dropout(void) {
    Suite *s = suite_create("dropout");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, training_zeroes_a_fraction_p_and_scales_the_rest);
    tcase_add_test(tc, backward_uses_the_forward_mask);
    tcase_add_test(tc, inference_and_p_zero_are_the_identity);
    tcase_add_test(tc, same_seed_same_masks_and_masks_advance);
    tcase_add_test(tc, p_outside_zero_one_is_refused);
    tcase_add_test(tc, null_config_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
