/* check_loss.c -- softmax cross-entropy and MSE: values worked out by hand,
 * extreme logits, gradient checks and error paths. */
#include <math.h>
#include <string.h>

#include "loss.h"
#include "testutil.h"

START_TEST(cross_entropy_of_known_logits) {
    /* Row 0: equal logits, loss log 3, softmax 1/3 each.
     * Row 1: (1, 2, 3) with label 2: log(e + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2). */
    float z[6] = {0, 0, 0, 1, 2, 3};
    const int labels[2] = {0, 2};
    heed_tensor logits = heed_tensor_view(z, 2, 3, 1, 1), probs = {0}, d;
    ck_assert_int_eq(heed_tensor_alloc(&d, 2, 3, 1, 1), HEED_OK);
    heed_tensor_fill(&d, 1.0f); /* gradients are added to this */
    double loss = -1;
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, labels, &loss, &probs, &d), HEED_OK);
    const double l0 = log(3.0), l1 = log(1 + exp(-1.0) + exp(-2.0));
    ck_assert_double_eq_tol(loss, (l0 + l1) / 2, 1e-6);
    ck_assert_int_eq(probs.n, 2);
    ck_assert_int_eq(probs.c, 3);
    const double s = exp(1.0) + exp(2.0) + exp(3.0);
    const double want_p[6] = {1.0 / 3, 1.0 / 3, 1.0 / 3, exp(1.0) / s, exp(2.0) / s, exp(3.0) / s};
    const double onehot[6] = {1, 0, 0, 0, 0, 1};
    for (int i = 0; i < 6; i++) {
        ck_assert_double_eq_tol(probs.data[i], want_p[i], 1e-6);
        ck_assert_double_eq_tol(d.data[i], 1.0 + (want_p[i] - onehot[i]) / 2, 1e-6);
    }
    /* Loss alone: no probabilities, no gradient. */
    double again;
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, labels, &again, NULL, NULL), HEED_OK);
    ck_assert_double_eq(again, loss);
    heed_tensor_free(&probs);
    heed_tensor_free(&d);
}
END_TEST

START_TEST(cross_entropy_is_stable_for_extreme_logits) {
    float z[6] = {1000, 0, -1000, -1000, 500, -500};
    heed_tensor logits = heed_tensor_view(z, 3, 2, 1, 1), probs = {0};
    double loss;
    /* Row 0 (1000, 0) label 1: 1000; row 1 (-1000, -1000) label 0: log 2;
     * row 2 (500, -500) label 0: log(1 + e^-1000), 0 in double. */
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, (int[]){1, 0, 0}, &loss, &probs, NULL),
                     HEED_OK);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(loss, (1000 + log(2.0) + 0) / 3, 1e-4);
    ck_assert_float_eq(probs.data[0], 1.0f);
    ck_assert_float_eq(probs.data[1], 0.0f);
    ck_assert_double_eq_tol(probs.data[2], 0.5, 1e-7);
    heed_tensor_free(&probs);
}
END_TEST

/* The largest logit in every position of a row (the shift by the row's
 * maximum must see all K logits): row r holds 1000 at r, 0 at r+1 (its
 * label) and -1000 at r+2 (mod 3), so each loss is 1000 - 0 exactly in
 * double, and dL/dz = (softmax - onehot) / N is 1/3 at r, -1/3 at the
 * label and 0 elsewhere. */
START_TEST(cross_entropy_is_stable_wherever_the_maximum_is) {
    float z[9];
    int labels[3];
    for (int r = 0; r < 3; r++) {
        z[r * 3 + r] = 1000, z[r * 3 + (r + 1) % 3] = 0, z[r * 3 + (r + 2) % 3] = -1000;
        labels[r] = (r + 1) % 3;
    }
    heed_tensor logits = heed_tensor_view(z, 3, 3, 1, 1), d;
    ck_assert_int_eq(heed_tensor_alloc(&d, 3, 3, 1, 1), HEED_OK);
    double loss;
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, labels, &loss, NULL, &d), HEED_OK);
    ck_assert_msg(isfinite(loss), "loss %g", loss);
    ck_assert_double_eq_tol(loss, 1000.0, 1e-9);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) {
            const double want = k == r ? 1.0 / 3 : k == labels[r] ? -1.0 / 3 : 0.0;
            ck_assert_msg(fabs(d.data[r * 3 + k] - want) < 1e-7, "row %d: dz[%d] = %g, want %g",
                          r, k, d.data[r * 3 + k], want);
        }
    heed_tensor_free(&d);
}
END_TEST

static double ce_eval(void *ctx) {
    heed_tensor *logits = ctx;
    static const int labels[3] = {4, 0, 6};
    double loss;
    ck_assert_int_eq(heed_softmax_cross_entropy(logits, labels, &loss, NULL, NULL), HEED_OK);
    return loss;
}

START_TEST(cross_entropy_gradient_matches_finite_differences) {
    heed_tensor logits, d;
    ck_assert_int_eq(heed_tensor_alloc(&logits, 3, 7, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&d, 3, 7, 1, 1), HEED_OK);
    tu_fill_uniform(logits.data, 21, -3, 3, 1);
    double loss;
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, (int[]){4, 0, 6}, &loss, NULL, &d), HEED_OK);
    TU_GRADCHECK("cross-entropy dlogits", ce_eval, &logits, logits.data, 21, d.data, 1e-2f, 1e-4);
    /* Each row of the gradient sums to 0 (softmax sums to 1, onehot too). */
    for (int n = 0; n < 3; n++) {
        double s = 0;
        for (int k = 0; k < 7; k++) s += d.data[n * 7 + k];
        ck_assert_double_eq_tol(s, 0.0, 1e-6);
    }
    heed_tensor_free(&logits);
    heed_tensor_free(&d);
}
END_TEST

START_TEST(cross_entropy_rejects_bad_labels_and_shapes) {
    float z[4] = {1, 2, 3, 4};
    heed_tensor logits = heed_tensor_view(z, 2, 2, 1, 1), d;
    ck_assert_int_eq(heed_tensor_alloc(&d, 2, 2, 1, 1), HEED_OK);
    double loss = 7;
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, (int[]){0, 2}, &loss, NULL, &d), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "label 2"));
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, (int[]){-1, 0}, &loss, NULL, &d), HEED_ERR_ARG);
    ck_assert_double_eq(loss, 7); /* nothing written on failure */
    for (int i = 0; i < 4; i++) ck_assert_float_eq(d.data[i], 0.0f);
    heed_tensor spatial = heed_tensor_view(z, 1, 2, 2, 1), small;
    ck_assert_int_eq(heed_softmax_cross_entropy(&spatial, (int[]){0}, &loss, NULL, NULL),
                     HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_tensor_alloc(&small, 1, 2, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_softmax_cross_entropy(&logits, (int[]){0, 1}, &loss, NULL, &small),
                     HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "gradient"));
    heed_tensor_free(&small);
    heed_tensor_free(&d);
}
END_TEST

START_TEST(mse_by_hand) {
    float p[4] = {1, 2, 3, 4}, t[4] = {0, 2, 5, 4};
    heed_tensor pred = heed_tensor_view(p, 2, 2, 1, 1), target = heed_tensor_view(t, 2, 2, 1, 1), d;
    ck_assert_int_eq(heed_tensor_alloc(&d, 2, 2, 1, 1), HEED_OK);
    heed_tensor_fill(&d, 1.0f);
    double loss;
    ck_assert_int_eq(heed_mse_loss(&pred, &target, &loss, &d), HEED_OK);
    /* (1 + 0 + 4 + 0) / 4; gradient 2 (p - t) / 4 added to 1. */
    ck_assert_double_eq_tol(loss, 1.25, 1e-12);
    const float want[4] = {1.5f, 1, 0, 1};
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(d.data[i], want[i], 1e-7);
    ck_assert_int_eq(heed_mse_loss(&pred, &target, &loss, NULL), HEED_OK);
    heed_tensor_free(&d);
}
END_TEST

typedef struct mse_ctx {
    heed_tensor pred, target;
} mse_ctx;

static double mse_eval(void *p) {
    mse_ctx *c = p;
    double loss;
    ck_assert_int_eq(heed_mse_loss(&c->pred, &c->target, &loss, NULL), HEED_OK);
    return loss;
}

START_TEST(mse_gradient_matches_finite_differences_and_checks_shapes) {
    mse_ctx c;
    heed_tensor d;
    ck_assert_int_eq(heed_tensor_alloc(&c.pred, 3, 2, 1, 5), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&c.target, 3, 2, 1, 5), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&d, 3, 2, 1, 5), HEED_OK);
    tu_fill_uniform(c.pred.data, 30, -2, 2, 1);
    tu_fill_uniform(c.target.data, 30, -2, 2, 2);
    double loss;
    ck_assert_int_eq(heed_mse_loss(&c.pred, &c.target, &loss, &d), HEED_OK);
    TU_GRADCHECK("mse dpred", mse_eval, &c, c.pred.data, 30, d.data, 1e-2f, 1e-5);
    heed_tensor other;
    ck_assert_int_eq(heed_tensor_alloc(&other, 3, 10, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_mse_loss(&c.pred, &other, &loss, NULL), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "mse_loss"));
    ck_assert_int_eq(heed_mse_loss(&c.pred, &c.target, &loss, &other), HEED_ERR_SHAPE);
    heed_tensor_free(&other);
    heed_tensor_free(&c.pred), heed_tensor_free(&c.target), heed_tensor_free(&d);
}
END_TEST

Suite *heed_suite_loss(void) {
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, cross_entropy_of_known_logits);
    tcase_add_test(tc, cross_entropy_is_stable_for_extreme_logits);
    tcase_add_test(tc, cross_entropy_is_stable_wherever_the_maximum_is);
    tcase_add_test(tc, cross_entropy_gradient_matches_finite_differences);
    tcase_add_test(tc, cross_entropy_rejects_bad_labels_and_shapes);
    tcase_add_test(tc, mse_by_hand);
    tcase_add_test(tc, mse_gradient_matches_finite_differences_and_checks_shapes);
    suite_add_tcase(s, tc);
    return s;
}
