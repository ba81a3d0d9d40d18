/* check_batchnorm.c -- batch normalization: statistics and running
 * averages worked out by hand, inference with running statistics, gradient
 * checks in both modes, the folding affine, threads and error paths. */
#include <math.h>
#include <stdio.h>
#include <string.h>


#include "activation.h"
#include "batchnorm.h"
#include "omp_impl.h"
#include "testutil.h"

/* x (N 2, C 2, H 1, W 2): channel 0 holds {1, 2, 3, 6}: mean 3, squared
 * deviations 4+1+0+9 = 14, biased variance 3.5, unbiased 14/3; channel 1
 * holds {0, 0, 4, 4}: mean 2, variance 4, unbiased 16/3. */
static const float hand_x[8] = {1, 2, 0, 0, 3, 6, 4, 4};

static heed_batchnorm *make_bn(heed_params *p, const heed_batchnorm_cfg *cfg, const int in[3]) {
    heed_batchnorm *bn;
    ck_assert_int_eq(heed_batchnorm_new(&bn, cfg, in, p, "bn"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(p, 1), HEED_OK);
    return bn;
}

START_TEST(training_forward_and_running_stats_by_hand) {
    heed_params p = {0};
    heed_batchnorm *bn = make_bn(&p, &(heed_batchnorm_cfg){0}, (int[3]){2, 1, 2});
    ck_assert_float_eq(bn->cfg.momentum, 0.1f);
    ck_assert_float_eq(bn->cfg.eps, 1e-5f);
    bn->gamma[0] = 2, bn->gamma[1] = 1;
    bn->beta[0] = 0.5f, bn->beta[1] = -1;
    heed_tensor x = heed_tensor_view((float *)hand_x, 2, 2, 1, 2), y = {0};
    heed_layer_set_training(&bn->base, 1);
    ck_assert_int_eq(heed_layer_forward(&bn->base, &x, &y), HEED_OK);
    const double mean[2] = {3, 2}, var[2] = {3.5, 4}, g[2] = {2, 1}, b[2] = {0.5, -1};
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 2; i++) {
                size_t k = heed_tensor_index(&x, n, c, 0, i);
                double want = g[c] * (hand_x[k] - mean[c]) / sqrt(var[c] + 1e-5) + b[c];
                ck_assert_double_eq_tol(y.data[k], want, 1e-5);
            }
    /* One step with momentum 0.1 from (0, 1): 0.1 * mean, 0.9 + 0.1 * unbiased var. */
    ck_assert_double_eq_tol(bn->running_mean[0], 0.3, 1e-6);
    ck_assert_double_eq_tol(bn->running_mean[1], 0.2, 1e-6);
    ck_assert_double_eq_tol(bn->running_var[0], 0.9 + 0.1 * 14.0 / 3, 1e-6);
    ck_assert_double_eq_tol(bn->running_var[1], 0.9 + 0.1 * 16.0 / 3, 1e-6);
    /* A second step on the same batch. */
    ck_assert_int_eq(heed_layer_forward(&bn->base, &x, &y), HEED_OK);
    const double rm[2] = {0.9 * 0.3 + 0.3, 0.9 * 0.2 + 0.2};
    const double rv[2] = {0.9 * (0.9 + 0.1 * 14.0 / 3) + 0.1 * 14.0 / 3,
                          0.9 * (0.9 + 0.1 * 16.0 / 3) + 0.1 * 16.0 / 3};
    for (int c = 0; c < 2; c++) {
        ck_assert_double_eq_tol(bn->running_mean[c], rm[c], 1e-6);
        ck_assert_double_eq_tol(bn->running_var[c], rv[c], 1e-6);
    }
    /* Inference mode normalises with the running statistics and leaves them alone. */
    heed_layer_set_training(&bn->base, 0);
    ck_assert_int_eq(heed_layer_forward(&bn->base, &x, &y), HEED_OK);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 2; i++) {
                size_t k = heed_tensor_index(&x, n, c, 0, i);
                double want = g[c] * (hand_x[k] - rm[c]) / sqrt(rv[c] + 1e-5) + b[c];
                ck_assert_double_eq_tol(y.data[k], want, 1e-5);
            }
    ck_assert_double_eq_tol(bn->running_mean[0], rm[0], 1e-6);
    ck_assert_double_eq_tol(bn->running_var[1], rv[1], 1e-6);
    heed_tensor_free(&y);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(custom_momentum_and_eps) {
    /* Momentum 1: the running statistics become the batch's (unbiased variance). */
    heed_params p = {0};
    heed_batchnorm *bn =
        make_bn(&p, &(heed_batchnorm_cfg){.c = 2, .momentum = 1.0f, .eps = 0.5f}, (int[3]){2, 1, 2});
    heed_tensor x = heed_tensor_view((float *)hand_x, 2, 2, 1, 2), y = {0};
    bn->base.training = 1;
    ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y), HEED_OK);
    ck_assert_double_eq_tol(bn->running_mean[0], 3.0, 1e-6);
    ck_assert_double_eq_tol(bn->running_var[0], 14.0 / 3, 1e-5);
    ck_assert_double_eq_tol(bn->running_var[1], 16.0 / 3, 1e-5);
    /* eps 0.5 on channel 1: (0 - 2) / sqrt(4.5). */
    ck_assert_double_eq_tol(y.data[2], -2.0 / sqrt(4.5), 1e-6);
    heed_tensor_free(&y);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(registers_params_and_buffers) {
    heed_params p = {0};
    heed_batchnorm *bn;
    ck_assert_int_eq(heed_batchnorm_new(&bn, NULL, (int[3]){5, 3, 3}, &p, "stage1.bn1"), HEED_OK);
    ck_assert_str_eq(bn->base.ops->type, "bn");
    ck_assert_int_eq(bn->cfg.c, 5);
    ck_assert_int_eq(bn->base.out_c, 5);
    ck_assert_int_eq(bn->base.out_h, 3);
    ck_assert_int_eq(heed_params_alloc(&p, 2), HEED_OK);
    const char *names[4] = {"stage1.bn1.weight", "stage1.bn1.bias", "stage1.bn1.running_mean",
                            "stage1.bn1.running_var"};
    const float init[4] = {1, 0, 0, 1};
    float *vals[4] = {bn->gamma, bn->beta, bn->running_mean, bn->running_var};
    for (int i = 0; i < 4; i++) {
        heed_param *it = heed_params_find(&p, names[i]);
        ck_assert_msg(it != NULL, "%s registered", names[i]);
        ck_assert_uint_eq(it->count, 5);
        ck_assert_int_eq(it->flags & HEED_PARAM_DECAY, 0);
        ck_assert_int_eq(it->flags & HEED_PARAM_BUFFER, i >= 2 ? HEED_PARAM_BUFFER : 0);
        ck_assert(i >= 2 ? it->grad_slot == NULL : it->grad_slot != NULL);
        for (int c = 0; c < 5; c++) ck_assert_float_eq(vals[i][c], init[i]);
    }
    ck_assert_uint_eq(heed_params_trainable(&p), 10);
    ck_assert_double_eq_tol(heed_layer_flops(&bn->base), 2.0 * 45, 1e-9);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

/* Gradient checks for x, gamma and beta of a batch norm on (N, C, H, W). */
static void check_gradients(int training, int N, int C, int H, int W) {
    heed_params p = {0};
    heed_batchnorm *bn = make_bn(&p, &(heed_batchnorm_cfg){0}, (int[3]){C, H, W});
    tu_fill_uniform(bn->gamma, C, 0.5f, 1.5f, 4);
    tu_fill_uniform(bn->beta, C, -1, 1, 5);
    tu_fill_uniform(bn->running_mean, C, -0.5f, 0.5f, 6);
    tu_fill_uniform(bn->running_var, C, 0.5f, 2, 7);
    heed_layer_set_training(&bn->base, training);
    tu_layer_ctx c = {.l = &bn->base};
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&c.x, N, C, H, W), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&c.w, N, C, H, W), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, N, C, H, W), HEED_OK);
    const size_t count = heed_tensor_count(&c.x);
    tu_fill_uniform(c.x.data, count, -2, 2, 8);
    tu_fill_uniform(c.w.data, count, -1, 1, 9);
    for (size_t i = 0; i < count; i++) dx.data[i] = 0.25f; /* backward adds to this */
    heed_params_zero_grad(&p);
    ck_assert_int_eq(heed_layer_forward(&bn->base, &c.x, &c.y), HEED_OK);
    ck_assert_int_eq(heed_layer_backward(&bn->base, &c.x, &c.y, &c.w, &dx), HEED_OK);
    for (size_t i = 0; i < count; i++) dx.data[i] -= 0.25f;
    const char *mode = training ? "training" : "inference";
    char what[64];
    snprintf(what, sizeof what, "bn %s dx (%d,%d,%d,%d)", mode, N, C, H, W);
    TU_GRADCHECK(what, tu_layer_loss, &c, c.x.data, count, dx.data, 1e-2f, 2e-3);
    snprintf(what, sizeof what, "bn %s dgamma", mode);
    TU_GRADCHECK(what, tu_layer_loss, &c, bn->gamma, (size_t)C, bn->dgamma, 1e-2f, 2e-3);
    snprintf(what, sizeof what, "bn %s dbeta", mode);
    TU_GRADCHECK(what, tu_layer_loss, &c, bn->beta, (size_t)C, bn->dbeta, 1e-2f, 2e-3);
    /* With dx_fresh (a sequence's hint) dx is written over, NaN included:
     * the same gradient (after the checks: it adds to dgamma and dbeta). */
    heed_tensor dxf;
    ck_assert_int_eq(heed_tensor_alloc(&dxf, N, C, H, W), HEED_OK);
    for (size_t i = 0; i < count; i++) dxf.data[i] = NAN;
    ck_assert_int_eq(heed_layer_forward(&bn->base, &c.x, &c.y), HEED_OK);
    bn->base.dx_fresh = 1;
    ck_assert_int_eq(heed_layer_backward(&bn->base, &c.x, &c.y, &c.w, &dxf), HEED_OK);
    bn->base.dx_fresh = 0;
    const double ferr = tu_max_rel_err(dxf.data, dx.data, count);
    ck_assert_msg(ferr < 1e-5, "bn %s fresh dx (%d,%d,%d,%d) differs by %g", mode, N, C, H, W, ferr);
    heed_tensor_free(&dxf);
    heed_tensor_free(&c.x), heed_tensor_free(&c.y), heed_tensor_free(&c.w), heed_tensor_free(&dx);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}

START_TEST(training_gradients_match_finite_differences) {
    check_gradients(1, 3, 5, 2, 3);
    check_gradients(1, 4, 3, 1, 1); /* BatchNorm1d-like: H = W = 1 */
    check_gradients(1, 1, 2, 3, 1); /* one image, statistics over positions only */
    check_gradients(1, 2, 3, 5, 7); /* planes of 35: the 8-wide loops and their tails */
}
END_TEST

START_TEST(inference_gradients_match_finite_differences) {
    check_gradients(0, 3, 5, 2, 3);
    check_gradients(0, 1, 3, 1, 1); /* a single value per channel is fine in inference */
    check_gradients(0, 2, 3, 5, 7);
}
END_TEST

START_TEST(scale_shift_matches_inference_forward) {
    heed_params p = {0};
    heed_batchnorm *bn = make_bn(&p, &(heed_batchnorm_cfg){.eps = 1e-3f}, (int[3]){4, 2, 3});
    tu_fill_uniform(bn->gamma, 4, -2, 2, 1);
    tu_fill_uniform(bn->beta, 4, -1, 1, 2);
    tu_fill_uniform(bn->running_mean, 4, -1, 1, 3);
    tu_fill_uniform(bn->running_var, 4, 0.1f, 3, 4);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 2, 3), HEED_OK);
    tu_fill_uniform(x.data, 48, -3, 3, 5);
    ck_assert_int_eq(heed_layer_forward(&bn->base, &x, &y), HEED_OK);
    float scale[4], shift[4];
    ck_assert_int_eq(heed_batchnorm_scale_shift(bn, scale, shift), HEED_OK);
    for (int c = 0; c < 4; c++) {
        double s = bn->gamma[c] / sqrt((double)bn->running_var[c] + 1e-3);
        ck_assert_double_eq_tol(scale[c], s, 1e-6);
        ck_assert_double_eq_tol(shift[c], bn->beta[c] - bn->running_mean[c] * s, 1e-6);
    }
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 6; i++) {
                size_t k = (size_t)(n * 4 + c) * 6 + i;
                ck_assert_double_eq_tol(y.data[k], x.data[k] * scale[c] + shift[c], 1e-5);
            }
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(large_offsets_keep_precision) {
    /* Values 10^4 + U(-1, 1): x^2 ~ 10^8 leaves float sums of x^2 no digits
     * for a variance of 1/3; the output must still have mean 0 and variance
     * var / (var + eps), within 1e-3 of 1. */
    heed_params p = {0};
    heed_batchnorm *bn = make_bn(&p, NULL, (int[3]){2, 16, 16});
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 4, 2, 16, 16), HEED_OK);
    tu_fill_uniform(x.data, 2048, -1, 1, 3);
    for (int i = 0; i < 2048; i++) x.data[i] += 10000.0f;
    bn->base.training = 1;
    ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y), HEED_OK);
    for (int c = 0; c < 2; c++) {
        double s = 0, s2 = 0;
        for (int n = 0; n < 4; n++)
            for (int i = 0; i < 256; i++) {
                double v = y.data[heed_tensor_index(&y, n, c, 0, 0) + i];
                s += v, s2 += v * v;
            }
        ck_assert_double_eq_tol(s / 1024, 0.0, 1e-3);
        ck_assert_double_eq_tol(s2 / 1024, 1.0, 1e-3);
    }
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

/* x (N, C, H, W) uniform in [lo, hi) and dy uniform in [-1, 1), seeded
 * from `seed`; returns their count. */
static size_t input_and_gradient(heed_tensor *x, heed_tensor *dy, int N, int C, int H, int W,
                                 float lo, float hi, uint64_t seed) {
    ck_assert_int_eq(heed_tensor_alloc(x, N, C, H, W), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(dy, N, C, H, W), HEED_OK);
    const size_t count = heed_tensor_count(x);
    tu_fill_uniform(x->data, count, lo, hi, seed);
    tu_fill_uniform(dy->data, count, -1, 1, seed + 1);
    return count;
}

START_TEST(threads_give_identical_results) {
    /* Big enough to take the parallel path, whose threads split the
     * planes (3 threads: inside an image) and then the channels: the
     * results, running statistics included, must be bit-identical with 1,
     * 2 and 3 threads. */
    enum { N = 5, C = 7, H = 31, W = 33 };
    heed_params p = {0};
    heed_batchnorm *bn = make_bn(&p, NULL, (int[3]){C, H, W});
    tu_fill_uniform(bn->gamma, C, 0.5f, 1.5f, 1);
    tu_fill_uniform(bn->beta, C, -0.5f, 0.5f, 4);
    heed_tensor x, dy, y[3] = {{0}}, dx[3];
    const size_t count = input_and_gradient(&x, &dy, N, C, H, W, -1, 3, 2);
    bn->base.training = 1;
    const int saved = omp_get_max_threads();
    float grads[3][2][C], running[3][2][C];
    for (int t = 0; t < 3; t++) {
        ck_assert_int_eq(heed_tensor_alloc(&dx[t], N, C, H, W), HEED_OK);
        heed_params_zero_grad(&p);
        for (int c = 0; c < C; c++) bn->running_mean[c] = 0.0f, bn->running_var[c] = 1.0f;
        omp_set_num_threads(t + 1);
        ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y[t]), HEED_OK);
        ck_assert_int_eq(heed_batchnorm_backward(bn, &x, &dy, &dx[t]), HEED_OK);
        memcpy(grads[t][0], bn->dgamma, sizeof grads[t][0]);
        memcpy(grads[t][1], bn->dbeta, sizeof grads[t][1]);
        memcpy(running[t][0], bn->running_mean, sizeof running[t][0]);
        memcpy(running[t][1], bn->running_var, sizeof running[t][1]);
    }
    omp_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        ck_assert_msg(!memcmp(y[0].data, y[t].data, count * sizeof(float)), "%d threads: y", t + 1);
        ck_assert_msg(!memcmp(dx[0].data, dx[t].data, count * sizeof(float)), "%d threads: dx", t + 1);
        ck_assert_msg(!memcmp(grads[0], grads[t], sizeof grads[0]), "%d threads: dgamma, dbeta", t + 1);
        ck_assert_msg(!memcmp(running[0], running[t], sizeof running[0]), "%d threads: running", t + 1);
    }
    heed_tensor_free(&x), heed_tensor_free(&dy);
    for (int t = 0; t < 3; t++) heed_tensor_free(&y[t]), heed_tensor_free(&dx[t]);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(layers_run_inside_a_callers_parallel_region) {
#ifdef _OPENMP
    /* Two threads of the caller's own team each train a batch norm of
     * their own, large enough for the parallel path: each runs on its one
     * thread and covers all of its channels, as alone. */
    enum { N = 3, C = 6, H = 40, W = 41 };
    heed_params p[2] = {{0}};
    heed_batchnorm *bn[2];
    heed_tensor x, dy, y[3] = {{0}}, dx[3];
    const size_t count = input_and_gradient(&x, &dy, N, C, H, W, -2, 1, 21);
    for (int t = 0; t < 3; t++) ck_assert_int_eq(heed_tensor_alloc(&dx[t], N, C, H, W), HEED_OK);
    for (int t = 0; t < 2; t++) {
        bn[t] = make_bn(&p[t], NULL, (int[3]){C, H, W});
        tu_fill_uniform(bn[t]->gamma, C, 0.5f, 1.5f, 23);
        bn[t]->base.training = 1;
    }
    /* Alone, on the caller's threads; then both at once, inside a region. */
    ck_assert_int_eq(heed_batchnorm_forward(bn[0], &x, &y[2]), HEED_OK);
    ck_assert_int_eq(heed_batchnorm_backward(bn[0], &x, &dy, &dx[2]), HEED_OK);
    heed_params_zero_grad(&p[0]);
    for (int c = 0; c < C; c++) bn[0]->running_mean[c] = 0.0f, bn[0]->running_var[c] = 1.0f;
    heed_status st[2] = {HEED_ERR_ARG, HEED_ERR_ARG};
#pragma omp parallel num_threads(2)
    {
        const int t = omp_get_thread_num();
        if (t < 2) {
            st[t] = heed_batchnorm_forward(bn[t], &x, &y[t]);
            if (st[t] == HEED_OK) st[t] = heed_batchnorm_backward(bn[t], &x, &dy, &dx[t]);
        }
    }
    for (int t = 0; t < 2; t++) {
        ck_assert_int_eq(st[t], HEED_OK);
        ck_assert_msg(!memcmp(y[2].data, y[t].data, count * sizeof(float)), "thread %d: y", t);
        ck_assert_msg(!memcmp(dx[2].data, dx[t].data, count * sizeof(float)), "thread %d: dx", t);
    }
    heed_tensor_free(&x), heed_tensor_free(&dy);
    for (int t = 0; t < 3; t++) heed_tensor_free(&y[t]), heed_tensor_free(&dx[t]);
    for (int t = 0; t < 2; t++) heed_layer_free(&bn[t]->base), heed_params_free(&p[t]);
#endif
}
END_TEST

/* The fused-activation tests' case: a batch norm of 4 channels over
 * (3, 4, H, W), its parameters drawn (gamma and beta within +-gamma and
 * +-beta, running variances in [var_lo, var_hi]), an input x in [-2, 2]
 * and an output gradient dy in [-1, 1]; y0, g and dx0 for the unfused
 * reference, y1 and dx1 for the fused calls. */
typedef struct fused_case {
    heed_params p;
    heed_batchnorm *bn;
    heed_tensor x, dy, y0, y1, g, dx0, dx1;
    size_t count;
    float dgamma[4], dbeta[4]; /* the reference's */
} fused_case;

static void fused_case_init(fused_case *f, int training, int H, int W, float gamma, float beta,
                            float var_lo, float var_hi, unsigned seed) {
    memset(f, 0, sizeof *f);
    f->bn = make_bn(&f->p, NULL, (int[3]){4, H, W});
    tu_fill_uniform(f->bn->gamma, 4, -gamma, gamma, seed);
    tu_fill_uniform(f->bn->beta, 4, -beta, beta, seed + 1);
    tu_fill_uniform(f->bn->running_mean, 4, -0.5f, 0.5f, seed + 2);
    tu_fill_uniform(f->bn->running_var, 4, var_lo, var_hi, seed + 3);
    heed_layer_set_training(&f->bn->base, training);
    heed_tensor *ts[] = {&f->x, &f->dy, &f->g, &f->dx0, &f->dx1};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        ck_assert_int_eq(heed_tensor_alloc(ts[i], 3, 4, H, W), HEED_OK);
    f->count = heed_tensor_count(&f->x);
    tu_fill_uniform(f->x.data, f->count, -2, 2, seed + 4);
    tu_fill_uniform(f->dy.data, f->count, -1, 1, seed + 5);
}

/* After the reference's backward into dx0: its parameter gradients kept,
 * then zeroed for the fused calls. */
static void fused_case_keep_reference(fused_case *f) {
    memcpy(f->dgamma, f->bn->dgamma, sizeof f->dgamma);
    memcpy(f->dbeta, f->bn->dbeta, sizeof f->dbeta);
}

/* dx1 and the parameter gradients of a fused backward against the
 * reference's, within rounding (the sums run in another order). */
static void fused_case_check(const fused_case *f, int training, int fresh) {
    double err = tu_max_rel_err(f->dx1.data, f->dx0.data, f->count);
    ck_assert_msg(err < 1e-5, "training %d fresh %d: dx differs by %g", training, fresh, err);
    ck_assert(tu_max_rel_err(f->bn->dgamma, f->dgamma, 4) < 1e-5);
    ck_assert(tu_max_rel_err(f->bn->dbeta, f->dbeta, 4) < 1e-5);
}

static void fused_case_free(fused_case *f) {
    heed_tensor *ts[] = {&f->x, &f->dy, &f->y0, &f->y1, &f->g, &f->dx0, &f->dx1};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
    heed_layer_free(&f->bn->base);
    heed_params_free(&f->p);
}

/* forward_relu / backward_relu against the batch norm and a relu applied
 * separately, in both modes; and a fresh dx (the sequence's hint) written
 * over whatever it held. */
START_TEST(relu_fused_matches_bn_then_relu) {
    for (int training = 0; training <= 1; training++) {
        fused_case f;
        fused_case_init(&f, training, 5, 7, 1.5f, 0.5f, 0.5f, 2, 1);
        /* Reference: bn, then relu; backward relu (dy where y > 0), then bn. */
        ck_assert_int_eq(heed_batchnorm_forward(f.bn, &f.x, &f.y0), HEED_OK);
        for (size_t i = 0; i < f.count; i++) {
            f.y0.data[i] = f.y0.data[i] > 0 ? f.y0.data[i] : 0.0f;
            f.g.data[i] = f.y0.data[i] > 0 ? f.dy.data[i] : 0.0f;
        }
        ck_assert_int_eq(heed_batchnorm_backward(f.bn, &f.x, &f.g, &f.dx0), HEED_OK);
        fused_case_keep_reference(&f);
        for (int fresh = 0; fresh <= 1; fresh++) {
            heed_params_zero_grad(&f.p);
            ck_assert_int_eq(heed_batchnorm_forward_relu(f.bn, &f.x, &f.y1), HEED_OK);
            ck_assert(tu_max_rel_err(f.y1.data, f.y0.data, f.count) < 1e-6);
            for (size_t i = 0; i < f.count; i++) f.dx1.data[i] = fresh ? NAN : 0.0f;
            f.bn->base.dx_fresh = fresh;
            ck_assert_int_eq(
                heed_batchnorm_backward_relu(f.bn, &f.x, fresh ? NULL : &f.y1, &f.dy, &f.dx1),
                HEED_OK);
            f.bn->base.dx_fresh = 0;
            fused_case_check(&f, training, fresh);
        }
        /* A y of the wrong shape is refused. */
        heed_tensor bad = heed_tensor_view(f.y1.data, 1, 4, 5, 7);
        ck_assert_int_eq(heed_batchnorm_backward_relu(f.bn, &f.x, &bad, &f.dy, &f.dx1),
                         HEED_ERR_SHAPE);
        fused_case_free(&f);
    }
}
END_TEST

/* A hardswish fused through the layer interface (fuse_act, as a sequence
 * sets it) against the batch norm and the hardswish layer's functions
 * applied separately, in both modes: the forward to the bit (the same
 * float operations), the backward within rounding. gamma up to 4 puts
 * values on both sides of -3 and 3. */
START_TEST(hardswish_fused_matches_bn_then_hardswish) {
    for (int training = 0; training <= 1; training++) {
        fused_case f;
        fused_case_init(&f, training, 6, 5, 4, 1, 0.1f, 0.5f, 11);
        heed_tensor z = {0};
        ck_assert_int_eq(heed_batchnorm_forward(f.bn, &f.x, &z), HEED_OK);
        ck_assert_int_eq(heed_act_forward(HEED_ACT_HARDSWISH, 0, &z, &f.y0), HEED_OK);
        heed_tensor_zero(&f.g);
        ck_assert_int_eq(heed_act_backward(HEED_ACT_HARDSWISH, 0, &z, &f.y0, &f.dy, &f.g), HEED_OK);
        int below = 0, above = 0;
        for (size_t i = 0; i < f.count; i++) below += z.data[i] < -3, above += z.data[i] > 3;
        ck_assert_msg(below > 0 && above > 0, "%d below -3, %d above 3", below, above);
        ck_assert_int_eq(heed_batchnorm_backward(f.bn, &f.x, &f.g, &f.dx0), HEED_OK);
        fused_case_keep_reference(&f);
        for (int fresh = 0; fresh <= 1; fresh++) {
            heed_params_zero_grad(&f.p);
            f.bn->fuse_act = HEED_FUSE_HARDSWISH;
            ck_assert_int_eq(heed_layer_forward(&f.bn->base, &f.x, &f.y1), HEED_OK);
            ck_assert(memcmp(f.y1.data, f.y0.data, f.count * sizeof(float)) == 0);
            for (size_t i = 0; i < f.count; i++) f.dx1.data[i] = fresh ? NAN : 0.0f;
            f.bn->base.dx_fresh = fresh;
            ck_assert_int_eq(heed_layer_backward(&f.bn->base, &f.x, &f.y1, &f.dy, &f.dx1),
                             HEED_OK);
            f.bn->base.dx_fresh = 0;
            f.bn->fuse_act = 0;
            fused_case_check(&f, training, fresh);
        }
        heed_tensor_free(&z);
        fused_case_free(&f);
    }
}
END_TEST

START_TEST(bad_configs_and_shapes_fail_with_messages) {
    heed_params p = {0};
    heed_batchnorm *bn = (heed_batchnorm *)1;
    ck_assert_int_eq(heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){.c = 4}, (int[3]){3, 2, 2}, &p, "bn"),
                     HEED_ERR_ARG);
    ck_assert_ptr_null(bn);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "c = 4"));
    ck_assert_int_eq(heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){.momentum = 1.5f},
                                        (int[3]){3, 2, 2}, &p, "bn"), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "momentum"));
    ck_assert_int_eq(heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){.momentum = -0.1f},
                                        (int[3]){3, 2, 2}, &p, "bn"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){.eps = -1e-5f},
                                        (int[3]){3, 2, 2}, &p, "bn"), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "eps"));
    ck_assert_int_eq(heed_batchnorm_new(&bn, NULL, (int[3]){0, 2, 2}, &p, "bn"), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 0);

    ck_assert_int_eq(heed_batchnorm_new(&bn, NULL, (int[3]){3, 1, 1}, &p, "bn"), HEED_OK);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 1, 3, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y), HEED_ERR_ARG); /* not allocated */
    heed_batchnorm *dup;
    ck_assert_int_eq(heed_batchnorm_new(&dup, NULL, (int[3]){3, 1, 1}, &p, "bn"), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 4);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    /* Training on one value per channel has no variance (PyTorch refuses too). */
    bn->base.training = 1;
    ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "more than one"));
    bn->base.training = 0;
    ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y), HEED_OK);
    heed_tensor bad;
    ck_assert_int_eq(heed_tensor_alloc(&bad, 1, 4, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_batchnorm_forward(bn, &bad, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "4 channels"));
    ck_assert_int_eq(heed_batchnorm_backward(bn, &x, &bad, NULL), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_layer_forward(&bn->base, &bad, &y), HEED_ERR_SHAPE);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&bad);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

/* Backward differentiates the last forward: with none before it, or after
 * a forward of another batch, it would use statistics of something else
 * (zeros, or the other batch's) and return gradients that look fine. */
START_TEST(backward_needs_its_forward) {
    heed_params p = {0};
    heed_batchnorm *bn = make_bn(&p, NULL, (int[3]){2, 1, 2});
    heed_tensor x = heed_tensor_view((float *)hand_x, 2, 2, 1, 2), dy, dx, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 2, 1, 2), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 2, 1, 2), HEED_OK);
    bn->base.training = 1;
    ck_assert_int_eq(heed_batchnorm_backward(bn, &x, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "bn backward bn: input (2, 2, 1, 2) is not what the last forward "
                                            "normalised (0 images of 0x0)"), "%s", heed_last_error());
    ck_assert_int_eq(heed_batchnorm_forward(bn, &x, &y), HEED_OK);
    heed_tensor one = heed_tensor_view((float *)hand_x, 1, 2, 1, 2), dy1 = heed_tensor_view(dy.data, 1, 2, 1, 2);
    ck_assert_int_eq(heed_batchnorm_backward(bn, &one, &dy1, NULL), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "(2 images of 1x2)"), "%s", heed_last_error());
    ck_assert_int_eq(heed_batchnorm_backward(bn, &x, &dy, &dx), HEED_OK);
    heed_tensor_free(&dy), heed_tensor_free(&dx), heed_tensor_free(&y);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

Suite *heed_suite_batchnorm(void) {
    Suite *s = suite_create("batchnorm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, training_forward_and_running_stats_by_hand);
    tcase_add_test(tc, custom_momentum_and_eps);
    tcase_add_test(tc, registers_params_and_buffers);
    tcase_add_test(tc, training_gradients_match_finite_differences);
    tcase_add_test(tc, inference_gradients_match_finite_differences);
    tcase_add_test(tc, scale_shift_matches_inference_forward);
    tcase_add_test(tc, large_offsets_keep_precision);
    tcase_add_test(tc, threads_give_identical_results);
    tcase_add_test(tc, layers_run_inside_a_callers_parallel_region);
    tcase_add_test(tc, relu_fused_matches_bn_then_relu);
    tcase_add_test(tc, hardswish_fused_matches_bn_then_hardswish);
    tcase_add_test(tc, bad_configs_and_shapes_fail_with_messages);
    tcase_add_test(tc, backward_needs_its_forward);
    suite_add_tcase(s, tc);
    return s;
}
