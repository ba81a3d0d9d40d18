/* check_linear.c -- fully connected layer and flatten: a hand-computed
 * product, parameter registration, gradient checks, matrix helpers and
 * error paths. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linear.h"
#include "testutil.h"

/* y = x W^T + b with W = [[1 2 3] [4 5 6]], b = [0.5 -1]. */
START_TEST(hand_computed_2x3) {
    heed_params p = {0};
    heed_linear *fc;
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.in = 3, .out = 2}, (int[3]){3, 1, 1},
                                     &p, "fc"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    const float W[6] = {1, 2, 3, 4, 5, 6}, B[2] = {0.5f, -1};
    memcpy(fc->w, W, sizeof W);
    memcpy(fc->b, B, sizeof B);
    float xs[6] = {1, 0, -1, 2, 1, 0};
    heed_tensor x = heed_tensor_view(xs, 2, 3, 1, 1), y = {0};
    ck_assert_int_eq(heed_layer_forward(&fc->base, &x, &y), HEED_OK);
    ck_assert_int_eq(y.n, 2);
    ck_assert_int_eq(y.c, 2);
    /* row 0: [1-3+0.5, 4-6-1]; row 1: [2+2+0.5, 8+5-1] */
    const float want[4] = {-1.5f, -3, 4.5f, 12};
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(y.data[i], want[i], 1e-6);

    float dys[4] = {1, 2, 3, -1}, dxs[6] = {0, 0, 0, 10, 10, 10};
    heed_tensor dy = heed_tensor_view(dys, 2, 2, 1, 1), dx = heed_tensor_view(dxs, 2, 3, 1, 1);
    for (int rep = 0; rep < 2; rep++) /* twice: everything accumulates */
        ck_assert_int_eq(heed_layer_backward(&fc->base, &x, &y, &dy, &dx), HEED_OK);
    /* dW = dy^T x: [1*(1,0,-1) + 3*(2,1,0), 2*(1,0,-1) - (2,1,0)] */
    const float dw[6] = {7, 3, -1, 0, -1, -2}, db[2] = {4, 1};
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(fc->dw[i], 2 * dw[i], 1e-6);
    for (int i = 0; i < 2; i++) ck_assert_float_eq_tol(fc->db[i], 2 * db[i], 1e-6);
    /* dx = dy W: [(1,2,3) + 2(4,5,6), 3(1,2,3) - (4,5,6)] */
    const float dxw[6] = {18, 24, 30, 10 - 2, 10 + 2, 10 + 6};
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(dxs[i], dxw[i], 1e-6);
    heed_tensor_free(&y);
    heed_layer_free(&fc->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(registers_pytorch_shaped_params) {
    heed_params p = {0};
    heed_linear *fc, *nb;
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.out = 7}, (int[3]){4, 5, 5}, &p,
                                     "head.fc"), HEED_OK);
    ck_assert_int_eq(fc->cfg.in, 100); /* in 0: inferred from C*H*W */
    ck_assert_str_eq(fc->base.ops->type, "fc");
    ck_assert_int_eq(fc->base.out_c, 7);
    ck_assert_int_eq(fc->base.out_h, 1);
    ck_assert_int_eq(fc->base.out_w, 1);
    ck_assert_int_eq(heed_linear_new(&nb, &(heed_linear_cfg){.in = 6, .out = 2, .no_bias = 1},
                                     (int[3]){6, 1, 1}, &p, "nb"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 3), HEED_OK);
    heed_param *w = heed_params_find(&p, "head.fc.weight"), *b = heed_params_find(&p, "head.fc.bias");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(w->shape[0], 7);
    ck_assert_int_eq(w->shape[1], 100);
    ck_assert_int_eq(w->flags & HEED_PARAM_DECAY, HEED_PARAM_DECAY);
    ck_assert_int_eq(b->flags, 0);
    ck_assert_uint_eq(b->count, 7);
    /* PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias. */
    for (int i = 0; i < 700; i++) ck_assert(fabsf(fc->w[i]) <= 0.1f);
    for (int i = 0; i < 7; i++) ck_assert(fabsf(fc->b[i]) <= 0.1f);
    ck_assert_ptr_null(heed_params_find(&p, "nb.bias"));
    ck_assert_ptr_null(nb->b);
    ck_assert_uint_eq(heed_params_trainable(&p), 700 + 7 + 12);
    ck_assert_double_eq_tol(heed_layer_flops(&fc->base), 2.0 * 700 + 7, 1e-9);
    ck_assert_double_eq_tol(heed_layer_flops(&nb->base), 2.0 * 12, 1e-9);
    heed_layer_free(&fc->base);
    heed_layer_free(&nb->base);
    heed_params_free(&p);
}
END_TEST

/* Analytic gradients for L = sum w*y into the params' grads and *dx. */
static void gc_backward(tu_layer_ctx *c, heed_params *p, heed_tensor *dx) {
    heed_params_zero_grad(p);
    heed_tensor_zero(dx);
    ck_assert_int_eq(heed_layer_forward(c->l, &c->x, &c->y), HEED_OK);
    ck_assert_int_eq(heed_layer_backward(c->l, &c->x, &c->y, &c->w, dx), HEED_OK);
}

START_TEST(gradients_match_finite_differences) {
    /* An odd shape with an implicit flatten: (N 3, C 2, H 3, W 2) -> 5. */
    heed_params p = {0};
    heed_linear *fc;
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.in = 12, .out = 5},
                                     (int[3]){2, 3, 2}, &p, "fc"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 11), HEED_OK);
    tu_layer_ctx c = {.l = &fc->base};
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&c.x, 3, 2, 3, 2), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&c.w, 3, 5, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 3, 2, 3, 2), HEED_OK);
    tu_fill_uniform(c.x.data, 36, -1, 1, 1);
    tu_fill_uniform(c.w.data, 15, -1, 1, 2);
    tu_fill_uniform(fc->b, 5, -1, 1, 3);
    gc_backward(&c, &p, &dx);
    TU_GRADCHECK("fc dx", tu_layer_loss, &c, c.x.data, 36, dx.data, 1e-2f, 1e-3);
    TU_GRADCHECK("fc dW", tu_layer_loss, &c, fc->w, 60, fc->dw, 1e-2f, 1e-3);
    TU_GRADCHECK("fc db", tu_layer_loss, &c, fc->b, 5, fc->db, 1e-2f, 1e-3);

    /* The implicit flatten reads NCHW order: y[n][o] = sum_chw W[o][chw] x[n][c][h][w].
     * (Forward again: the checks above left y from a perturbed bias.) */
    tu_layer_loss(&c);
    for (int n = 0; n < 3; n++)
        for (int o = 0; o < 5; o++) {
            double s = fc->b[o];
            for (int ch = 0; ch < 2; ch++)
                for (int h = 0; h < 3; h++)
                    for (int w = 0; w < 2; w++)
                        s += (double)fc->w[o * 12 + (ch * 3 + h) * 2 + w] *
                             c.x.data[heed_tensor_index(&c.x, n, ch, h, w)];
            ck_assert_double_eq_tol(c.y.data[n * 5 + o], s, 1e-5);
        }
    heed_tensor_free(&c.x), heed_tensor_free(&c.y), heed_tensor_free(&c.w), heed_tensor_free(&dx);
    heed_layer_free(&fc->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(matrix_helpers_work_on_n_by_f_tensors) {
    /* A layer made for (4, 2, 1) takes a (N, 8) matrix as a (N, 8, 1, 1) tensor, and
     * forward_add accumulates two products as a recurrent cell does. */
    heed_params p = {0};
    heed_linear *a, *b;
    ck_assert_int_eq(heed_linear_new(&a, &(heed_linear_cfg){.in = 8, .out = 3}, (int[3]){4, 2, 1},
                                     &p, "a"), HEED_OK);
    ck_assert_int_eq(heed_linear_new(&b, &(heed_linear_cfg){.in = 2, .out = 3, .no_bias = 1},
                                     (int[3]){2, 1, 1}, &p, "b"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 5), HEED_OK);
    heed_tensor x, u, y = {0}, yb = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 8, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&u, 2, 2, 1, 1), HEED_OK);
    tu_fill_uniform(x.data, 16, -1, 1, 8);
    tu_fill_uniform(u.data, 4, -1, 1, 9);
    ck_assert_int_eq(heed_linear_forward(a, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_linear_forward(b, &u, &yb), HEED_OK);
    float first[6];
    memcpy(first, y.data, sizeof first);
    ck_assert_int_eq(heed_linear_forward_add(b, &u, &y), HEED_OK);
    for (int n = 0; n < 2; n++)
        for (int o = 0; o < 3; o++) {
            double s = a->b[o], t = 0;
            for (int i = 0; i < 8; i++) s += (double)a->w[o * 8 + i] * x.data[n * 8 + i];
            for (int i = 0; i < 2; i++) t += (double)b->w[o * 2 + i] * u.data[n * 2 + i];
            ck_assert_double_eq_tol(first[n * 3 + o], s, 1e-5);
            ck_assert_double_eq_tol(yb.data[n * 3 + o], t, 1e-5);
            ck_assert_double_eq_tol(y.data[n * 3 + o], s + t, 1e-5);
        }
    /* forward_add with a bias adds the bias and the product to what y
     * holds (b's output): s + t again. */
    ck_assert_int_eq(heed_linear_forward_add(a, &x, &yb), HEED_OK);
    for (int n = 0; n < 2; n++)
        for (int o = 0; o < 3; o++) {
            double s = a->b[o], t = 0;
            for (int i = 0; i < 8; i++) s += (double)a->w[o * 8 + i] * x.data[n * 8 + i];
            for (int i = 0; i < 2; i++) t += (double)b->w[o * 2 + i] * u.data[n * 2 + i];
            ck_assert_double_eq_tol(yb.data[n * 3 + o], s + t, 1e-5);
        }
    /* forward_add needs an output of the right size. */
    heed_tensor small;
    ck_assert_int_eq(heed_tensor_alloc(&small, 2, 2, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_linear_forward_add(b, &u, &small), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "forward_add"));
    heed_tensor_free(&small);
    heed_tensor_free(&x), heed_tensor_free(&u), heed_tensor_free(&y), heed_tensor_free(&yb);
    heed_layer_free(&a->base);
    heed_layer_free(&b->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(bad_configs_and_shapes_fail_with_messages) {
    heed_params p = {0};
    heed_linear *fc = (heed_linear *)1;
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.in = 3, .out = 0}, (int[3]){3, 1, 1},
                                     &p, "fc"), HEED_ERR_ARG);
    ck_assert_ptr_null(fc);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "out"));
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.in = 10, .out = 2}, (int[3]){3, 2, 2},
                                     &p, "fc"), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "12 features"));
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.out = 2}, (int[3]){3, 0, 2}, &p, "fc"),
                     HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 0);

    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.in = 4, .out = 2}, (int[3]){4, 1, 1},
                                     &p, "fc"), HEED_OK);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 1, 1), HEED_OK);
    /* Before heed_params_alloc there are no weights to use. */
    ck_assert_int_eq(heed_linear_forward(fc, &x, &y), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not allocated"));
    /* A duplicate name fails and leaves the store as it was. */
    heed_linear *dup;
    ck_assert_int_eq(heed_linear_new(&dup, &(heed_linear_cfg){.in = 4, .out = 2},
                                     (int[3]){4, 1, 1}, &p, "fc"), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 2);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);

    heed_tensor bad;
    ck_assert_int_eq(heed_tensor_alloc(&bad, 2, 5, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_linear_forward(fc, &bad, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "5 features"));
    ck_assert_int_eq(heed_layer_forward(&fc->base, &bad, &y), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_linear_forward(fc, &x, &y), HEED_OK);
    /* dy must be (N, OUT), dx like x. */
    ck_assert_int_eq(heed_linear_backward(fc, &x, &bad, NULL), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_linear_backward(fc, &x, &y, &bad), HEED_ERR_SHAPE);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&bad);
    heed_layer_free(&fc->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(flatten_copies_forward_and_adds_backward) {
    heed_flatten *f;
    ck_assert_int_eq(heed_flatten_new(&f, (int[3]){2, 3, 4}, "flat"), HEED_OK);
    ck_assert_str_eq(f->base.ops->type, "flatten");
    ck_assert_int_eq(f->base.out_c, 24);
    ck_assert_int_eq(f->base.out_h, 1);
    ck_assert_int_eq(f->base.out_w, 1);
    ck_assert_double_eq(heed_layer_flops(&f->base), 0.0);
    heed_tensor x, y = {0}, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 3, 2, 3, 4), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 3, 2, 3, 4), HEED_OK);
    for (int i = 0; i < 72; i++) x.data[i] = (float)i, dx.data[i] = 1;
    ck_assert_int_eq(heed_layer_forward(&f->base, &x, &y), HEED_OK);
    ck_assert_int_eq(y.n, 3);
    ck_assert_int_eq(y.c, 24);
    /* NCHW order kept: image 1, channel 1, row 2, column 3 is feature 1*12 + 2*4 + 3. */
    ck_assert_float_eq(y.data[1 * 24 + 12 + 8 + 3], x.data[heed_tensor_index(&x, 1, 1, 2, 3)]);
    for (int i = 0; i < 72; i++) ck_assert_float_eq(y.data[i], (float)i);
    ck_assert_int_eq(heed_layer_backward(&f->base, &x, &y, &y, &dx), HEED_OK);
    for (int i = 0; i < 72; i++) ck_assert_float_eq(dx.data[i], 1.0f + i);
    ck_assert_int_eq(heed_layer_backward(&f->base, &x, &y, &y, NULL), HEED_OK);
    heed_flatten *bad = (heed_flatten *)1;
    ck_assert_int_eq(heed_flatten_new(&bad, (int[3]){2, -1, 4}, "flat"), HEED_ERR_ARG);
    ck_assert_ptr_null(bad);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dx);
    heed_layer_free(&f->base);
}
END_TEST

/* The first `rows` rows of xs (37 features each) through the 37 -> 48 layer, into y. */
static void forward_rows(heed_linear *fc, const float *xs, int rows, heed_tensor *y) {
    heed_tensor x = heed_tensor_view((float *)xs, rows, 37, 1, 1);
    ck_assert_int_eq(heed_layer_forward(&fc->base, &x, y), HEED_OK);
}

/* A frozen layer computes its products from a kept W^T (linear.c): the
 * outputs must be the unfrozen ones bit for bit at every row count (the
 * dot-product path below 5 rows, the register tiles above), follow W when
 * it changes between freezes, and follow a training step taken while
 * frozen (a backward drops the copy). */
START_TEST(frozen_forward_is_the_unfrozen_one) {
    heed_params p = {0};
    heed_linear *fc;
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.in = 37, .out = 48},
                                     (int[3]){37, 1, 1}, &p, "fc"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 3), HEED_OK);
    float xs[70 * 37];
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) xs[i] = (float)((i * 29) % 31) / 7.0f - 2;
    heed_tensor plain = {0}, frozen = {0};
    const int rows[] = {1, 4, 5, 9, 70};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            heed_layer_set_frozen(&fc->base, 0);
            forward_rows(fc, xs, rows[k], &plain);
            heed_layer_set_frozen(&fc->base, 1);
            forward_rows(fc, xs, rows[k], &frozen);
            forward_rows(fc, xs, rows[k], &frozen); /* the kept copy, reused */
            ck_assert_msg(!memcmp(plain.data, frozen.data, (size_t)rows[k] * 48 * sizeof(float)),
                          "pass %d, %d rows: frozen output differs", pass, rows[k]);
        }
        heed_layer_set_frozen(&fc->base, 0);
        for (int i = 0; i < 37 * 48; i++) fc->w[i] = -0.5f * fc->w[i] + 0.01f * (float)(i % 13);
    }
    /* Frozen, a backward and an update: the next forward sees the new W. */
    heed_layer_set_frozen(&fc->base, 1);
    forward_rows(fc, xs, 70, &frozen);
    heed_tensor dy = {0};
    ck_assert_int_eq(heed_tensor_alloc(&dy, 70, 48, 1, 1), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(&dy); i++) dy.data[i] = 0.01f * (float)(i % 7);
    heed_tensor x = heed_tensor_view(xs, 70, 37, 1, 1);
    ck_assert_int_eq(heed_layer_backward(&fc->base, &x, &frozen, &dy, NULL), HEED_OK);
    for (int i = 0; i < 37 * 48; i++) fc->w[i] -= fc->dw[i];
    forward_rows(fc, xs, 70, &frozen);
    heed_layer_set_frozen(&fc->base, 0);
    forward_rows(fc, xs, 70, &plain);
    ck_assert(!memcmp(plain.data, frozen.data, 70 * 48 * sizeof(float)));
    heed_tensor_free(&plain), heed_tensor_free(&frozen), heed_tensor_free(&dy);
    heed_layer_free(&fc->base);
    heed_params_free(&p);
}
END_TEST

/* NULL params or cfg refused (as heed_conv2d_new does), and names that
 * do not fit a layer's 47 characters refused rather than cut. */
START_TEST(null_arguments_and_long_names_are_refused) {
    heed_params p = {0};
    heed_linear *fc = (heed_linear *)1;
    const heed_linear_cfg cfg = {.in = 4, .out = 2};
    ck_assert_int_eq(heed_linear_new(&fc, &cfg, (int[3]){4, 1, 1}, NULL, "fc"), HEED_ERR_ARG);
    ck_assert_ptr_null(fc);
    ck_assert_msg(strstr(heed_last_error(), "no parameter store"), "%s", heed_last_error());
    ck_assert_int_eq(heed_linear_new(&fc, NULL, (int[3]){4, 1, 1}, &p, "fc"), HEED_ERR_ARG);
    char name[64];
    for (int i = 0; i < 48; i++) name[i] = (char)('a' + i % 26);
    name[48] = '\0';
    ck_assert_int_eq(heed_linear_new(&fc, &cfg, (int[3]){4, 1, 1}, &p, name), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "at most 47"), "%s", heed_last_error());
    heed_flatten *f = (heed_flatten *)1;
    ck_assert_int_eq(heed_flatten_new(&f, (int[3]){4, 1, 1}, name), HEED_ERR_ARG);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(p.count, 0);
    name[47] = '\0';
    ck_assert_int_eq(heed_linear_new(&fc, &cfg, (int[3]){4, 1, 1}, &p, name), HEED_OK);
    ck_assert_str_eq(fc->base.name, name);
    char wname[80];
    snprintf(wname, sizeof wname, "%s.weight", name);
    ck_assert_ptr_nonnull(heed_params_find(&p, wname));
    heed_layer_free(&fc->base);
    heed_params_free(&p);
}
END_TEST

Suite *heed_suite_linear(void) {
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hand_computed_2x3);
    tcase_add_test(tc, registers_pytorch_shaped_params);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, matrix_helpers_work_on_n_by_f_tensors);
    tcase_add_test(tc, bad_configs_and_shapes_fail_with_messages);
    tcase_add_test(tc, flatten_copies_forward_and_adds_backward);
    tcase_add_test(tc, null_arguments_and_long_names_are_refused);
    tcase_add_test(tc, frozen_forward_is_the_unfrozen_one);
    suite_add_tcase(s, tc);
    return s;
}
