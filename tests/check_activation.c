/* check_activation.c -- relu, leaky relu, sigmoid, tanh, silu, hardsigmoid,
 * hardswish, channel softmax:
 * hand-computed values, central-difference gradients, a double-precision
 * softmax written here, and the layer interface. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "testutil.h"

static const heed_act_kind elementwise_kinds[] = {HEED_ACT_RELU, HEED_ACT_LEAKY_RELU,
                                                  HEED_ACT_SIGMOID, HEED_ACT_TANH};

/* The mobile networks' activations: their derivatives need x. */
static const heed_act_kind mobile_kinds[] = {HEED_ACT_SILU, HEED_ACT_HARDSIGMOID, HEED_ACT_HARDSWISH};

/* x of shape (1, n, 1, 1) holding v[0..n). */
static heed_tensor vec(float *v, int n) { return heed_tensor_view(v, 1, n, 1, 1); }

/* Moves values within `gap` of 0 out to +-gap, away from relu's kink. */
static void avoid_zero(float *v, size_t n, float gap) {
    for (size_t i = 0; i < n; i++)
        if (fabsf(v[i]) < gap) v[i] = v[i] < 0.0f ? v[i] - gap : v[i] + gap;
}

START_TEST(relu_and_leaky_relu_hand_values) {
    float xv[5] = {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f}, yv[5];
    heed_tensor x = vec(xv, 5), y = vec(yv, 5);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_RELU, 0.0f, &x, &y), HEED_OK);
    ck_assert_ptr_eq(y.data, yv); /* a view of the right shape is written in place */
    const float relu[5] = {0, 0, 0, 0.5f, 3};
    for (int i = 0; i < 5; i++) ck_assert_float_eq(yv[i], relu[i]);

    /* slope 0 means PyTorch's default negative slope 0.01 */
    ck_assert_int_eq(heed_act_forward(HEED_ACT_LEAKY_RELU, 0.0f, &x, &y), HEED_OK);
    const float leaky[5] = {-0.02f, -0.005f, 0, 0.5f, 3};
    for (int i = 0; i < 5; i++) ck_assert_float_eq_tol(yv[i], leaky[i], 1e-7f);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_LEAKY_RELU, 0.2f, &x, &y), HEED_OK);
    const float leaky2[5] = {-0.4f, -0.1f, 0, 0.5f, 3};
    for (int i = 0; i < 5; i++) ck_assert_float_eq_tol(yv[i], leaky2[i], 1e-7f);

    /* NaN propagates, as torch.relu(nan) is nan */
    float nv = NAN, ny;
    heed_tensor xn = vec(&nv, 1), yn = vec(&ny, 1);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_RELU, 0.0f, &xn, &yn), HEED_OK);
    ck_assert(isnan(ny));
}
END_TEST

START_TEST(sigmoid_and_tanh_hand_values_and_extremes) {
    float xv[7] = {0.0f, 1.0f, -1.0f, 2.0f, 100.0f, -100.0f, -1000.0f}, yv[7];
    heed_tensor x = vec(xv, 7), y = vec(yv, 7);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_SIGMOID, 0.0f, &x, &y), HEED_OK);
    ck_assert_float_eq(yv[0], 0.5f);
    ck_assert_float_eq_tol(yv[1], 0.7310585786f, 1e-7f); /* 1 / (1 + e^-1) */
    ck_assert_float_eq_tol(yv[2], 0.2689414214f, 1e-7f);
    ck_assert_float_eq_tol(yv[3], 0.8807970780f, 1e-7f);
    ck_assert_float_eq(yv[4], 1.0f);
    ck_assert(isfinite(yv[5]) && yv[5] >= 0.0f && yv[5] < 1e-40f); /* e^-100 = 3.7e-44 */
    ck_assert(isfinite(yv[6]) && yv[6] == 0.0f);

    ck_assert_int_eq(heed_act_forward(HEED_ACT_TANH, 0.0f, &x, &y), HEED_OK);
    ck_assert_float_eq(yv[0], 0.0f);
    ck_assert_float_eq_tol(yv[1], 0.7615941560f, 1e-7f); /* (e - 1/e) / (e + 1/e) */
    ck_assert_float_eq_tol(yv[2], -0.7615941560f, 1e-7f);
    ck_assert_float_eq_tol(yv[3], 0.9640275801f, 1e-7f);
    ck_assert_float_eq(yv[4], 1.0f);
    ck_assert_float_eq(yv[5], -1.0f);
}
END_TEST

START_TEST(backward_hand_values_accumulate) {
    float xv[3] = {-1.0f, 0.0f, 2.0f}, yv[3], gv[3] = {1.0f, 1.0f, 1.0f};
    heed_tensor x = vec(xv, 3), y = vec(yv, 3), dy = vec(gv, 3);

    /* relu'(0) = 0; dx starts non-zero to show backward adds */
    float dv[3] = {10, 10, 10};
    heed_tensor dx = vec(dv, 3);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_RELU, 0, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_act_backward(HEED_ACT_RELU, 0, &x, &y, &dy, &dx), HEED_OK);
    ck_assert_float_eq(dv[0], 10.0f);
    ck_assert_float_eq(dv[1], 10.0f);
    ck_assert_float_eq(dv[2], 11.0f);

    /* leaky: slope at x <= 0, 1 above */
    memset(dv, 0, sizeof dv);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_LEAKY_RELU, 0.1f, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_act_backward(HEED_ACT_LEAKY_RELU, 0.1f, &x, &y, &dy, &dx), HEED_OK);
    ck_assert_float_eq_tol(dv[0], 0.1f, 1e-7f);
    ck_assert_float_eq_tol(dv[1], 0.1f, 1e-7f);
    ck_assert_float_eq(dv[2], 1.0f);

    /* sigmoid'(0) = 1/4, tanh'(0) = 1 */
    memset(dv, 0, sizeof dv);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_SIGMOID, 0, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_act_backward(HEED_ACT_SIGMOID, 0, &x, &y, &dy, &dx), HEED_OK);
    ck_assert_float_eq(dv[1], 0.25f);
    memset(dv, 0, sizeof dv);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_TANH, 0, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_act_backward(HEED_ACT_TANH, 0, &x, &y, &dy, &dx), HEED_OK);
    ck_assert_float_eq(dv[1], 1.0f);
    ck_assert_float_eq_tol(dv[2], 1.0f - tanhf(2.0f) * tanhf(2.0f), 1e-6f);

    /* sigmoid's gradient vanishes without NaN far out */
    float big[2] = {100.0f, -100.0f}, by[2], bd[2] = {0, 0};
    heed_tensor bx = vec(big, 2), byt = vec(by, 2), bdx = vec(bd, 2), bdy = vec(gv, 2);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_SIGMOID, 0, &bx, &byt), HEED_OK);
    ck_assert_int_eq(heed_act_backward(HEED_ACT_SIGMOID, 0, &bx, &byt, &bdy, &bdx), HEED_OK);
    ck_assert(isfinite(bd[0]) && fabsf(bd[0]) < 1e-6f);
    ck_assert(isfinite(bd[1]) && fabsf(bd[1]) < 1e-6f);
}
END_TEST

/* Outputs and input gradients (dy = 1) as PyTorch 1.13 gives them
 * (torch.nn.functional.silu, hardsigmoid and hardswish, then backward of
 * the sum), kinks, NaN and the far ends included. */
START_TEST(mobile_activations_match_pytorch_values) {
    float xv[8] = {-4.0f, -3.0f, -1.0f, 0.0f, 2.0f, 3.0f, 4.0f, NAN};
    static const struct {
        heed_act_kind kind;
        float y[7], dx[8]; /* y at NaN is NaN for all three */
    } cases[] = {
        {HEED_ACT_HARDSIGMOID,
         {0.0f, 0.0f, 0.3333333432674408f, 0.5f, 0.8333333134651184f, 1.0f, 1.0f},
         {0.0f, 0.0f, 0.1666666716337204f, 0.1666666716337204f, 0.1666666716337204f, 0.0f, 0.0f, 0.0f}},
        {HEED_ACT_HARDSWISH,
         {-0.0f, -0.0f, -0.3333333432674408f, 0.0f, 1.6666666269302368f, 3.0f, 4.0f},
         /* PyTorch's choices: -1/2 at -3, 3/2 at 3, 1 at NaN (an 8-element
          * tensor takes its CPU scalar loop; its vectorized loop gives
          * 1 at 3 and NaN at NaN, activation.h) */
         {0.0f, -0.5f, 0.1666666567325592f, 0.5f, 1.1666667461395264f, 1.5f, 1.0f, 1.0f}},
        {HEED_ACT_SILU,
         {-0.07194484025239944f, -0.14227761328220367f, -0.2689414322376251f, 0.0f,
          1.7615940570831299f, 2.857722520828247f, 3.9280550479888916f},
         {-0.052664611488580704f, -0.08810410648584366f, 0.07232948392629623f, 0.5f,
          1.0907843112945557f, 1.0881041288375854f, 1.0526646375656128f, NAN}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float yv[8], gv[8], dv[8] = {0};
        for (int i = 0; i < 8; i++) gv[i] = 1.0f;
        heed_tensor x = vec(xv, 8), y = vec(yv, 8), dy = vec(gv, 8), dx = vec(dv, 8);
        const char *name = heed_act_name(cases[k].kind);
        ck_assert_int_eq(heed_act_forward(cases[k].kind, 0, &x, &y), HEED_OK);
        ck_assert_int_eq(heed_act_backward(cases[k].kind, 0, &x, &y, &dy, &dx), HEED_OK);
        for (int i = 0; i < 7; i++) {
            ck_assert_msg(fabsf(yv[i] - cases[k].y[i]) <= 2e-7f, "%s(%g) = %.9g, PyTorch %.9g", name,
                          (double)xv[i], (double)yv[i], (double)cases[k].y[i]);
            ck_assert_msg(signbit(yv[i]) == signbit(cases[k].y[i]) || cases[k].kind == HEED_ACT_SILU,
                          "%s(%g): sign of zero", name, (double)xv[i]);
        }
        ck_assert_msg(isnan(yv[7]), "%s(NaN) = %g", name, (double)yv[7]);
        for (int i = 0; i < 8; i++) {
            const float want = cases[k].dx[i];
            ck_assert_msg(isnan(want) ? isnan(dv[i]) : fabsf(dv[i] - want) <= 2e-7f,
                          "%s'(%g) = %.9g, PyTorch %.9g", name, (double)xv[i], (double)dv[i], (double)want);
        }
        /* their derivatives need x: y does not give it (hardswish is not
         * one-to-one, and the kinks of both hard ones sit at x = +-3) */
        ck_assert_int_eq(heed_act_backward(cases[k].kind, 0, NULL, &y, &dy, &dx), HEED_ERR_ARG);
        ck_assert_msg(strstr(heed_last_error(), "needs the input x"), "%s", heed_last_error());
    }
}
END_TEST

/* ---- gradient checks ---- */

typedef struct act_ctx {
    heed_act_kind kind;
    float slope;
    heed_tensor *x, *y;
    const float *w;
} act_ctx;

static double act_loss(void *p) {
    act_ctx *c = p;
    ck_assert_int_eq(heed_act_forward(c->kind, c->slope, c->x, c->y), HEED_OK);
    return tu_weighted_sum(c->y->data, c->w, heed_tensor_count(c->y));
}

/* dx from backward (into zeros, dy = w) against central differences;
 * x_given = 0 runs backward without x. */
static void gradcheck_kind(heed_act_kind kind, float slope, int x_given, uint64_t seed) {
    heed_tensor x, y = {0}, dx, dy;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 3, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 3, 5, 3), HEED_OK);
    const size_t n = heed_tensor_count(&x);
    tu_fill_uniform(x.data, n, -3.0f, 3.0f, seed);
    avoid_zero(x.data, n, 0.05f);
    for (size_t i = 0; i < n; i++) /* and from the hard ones' kinks at +-3, outward */
        if (fabsf(x.data[i]) > 2.95f) x.data[i] *= 1.1f;
    tu_fill_uniform(dy.data, n, -1.0f, 1.0f, seed + 1);
    ck_assert_int_eq(heed_act_forward(kind, slope, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_act_backward(kind, slope, x_given ? &x : NULL, &y, &dy, &dx), HEED_OK);
    act_ctx c = {kind, slope, &x, &y, dy.data};
    char what[64];
    snprintf(what, sizeof what, "%s dx (slope %g)", heed_act_name(kind), (double)slope);
    TU_GRADCHECK(what, act_loss, &c, x.data, n, dx.data, 1e-3f, 5e-4);
    heed_tensor_free(&x);
    heed_tensor_free(&y);
    heed_tensor_free(&dx);
    heed_tensor_free(&dy);
}

START_TEST(elementwise_gradients_match_finite_differences) {
    for (size_t k = 0; k < sizeof elementwise_kinds / sizeof elementwise_kinds[0]; k++) {
        gradcheck_kind(elementwise_kinds[k], 0.0f, 1, 100 + k);
        gradcheck_kind(elementwise_kinds[k], 0.0f, 0, 200 + k); /* from y alone */
    }
    gradcheck_kind(HEED_ACT_LEAKY_RELU, 0.3f, 1, 7);
    gradcheck_kind(HEED_ACT_LEAKY_RELU, -0.3f, 1, 8); /* negative slope: sign from x */
    gradcheck_kind(HEED_ACT_SOFTMAX, 0.0f, 0, 9);
    for (size_t k = 0; k < sizeof mobile_kinds / sizeof mobile_kinds[0]; k++)
        gradcheck_kind(mobile_kinds[k], 0.0f, 1, 300 + k);
}
END_TEST

START_TEST(negative_slope_backward_needs_x) {
    float xv[2] = {-1.0f, 1.0f}, yv[2], gv[2] = {1, 1}, dv[2] = {0, 0};
    heed_tensor x = vec(xv, 2), y = vec(yv, 2), dy = vec(gv, 2), dx = vec(dv, 2);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_LEAKY_RELU, -0.5f, &x, &y), HEED_OK);
    ck_assert_float_eq(yv[0], 0.5f); /* both outputs positive: y cannot tell */
    ck_assert_int_eq(heed_act_backward(HEED_ACT_LEAKY_RELU, -0.5f, NULL, &y, &dy, &dx),
                     HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "needs the input"));
    ck_assert_int_eq(heed_act_backward(HEED_ACT_LEAKY_RELU, -0.5f, &x, &y, &dy, &dx), HEED_OK);
    ck_assert_float_eq(dv[0], -0.5f);
    ck_assert_float_eq(dv[1], 1.0f);
}
END_TEST

/* ---- softmax ---- */

/* Softmax over channels in double, straight from the definition. */
static void softmax_ref(const heed_tensor *x, double *out) {
    const int HW = x->h * x->w;
    for (int n = 0; n < x->n; n++)
        for (int p = 0; p < HW; p++) {
            double m = -INFINITY, s = 0.0;
            /* a comparison, not fmax: GCC 12 for aarch64 crashes vectorizing
             * an fmax reduction here (internal compiler error) */
            for (int c = 0; c < x->c; c++) {
                const double v = x->data[((size_t)n * x->c + c) * HW + p];
                m = v > m ? v : m;
            }
            for (int c = 0; c < x->c; c++) s += exp(x->data[((size_t)n * x->c + c) * HW + p] - m);
            for (int c = 0; c < x->c; c++) {
                size_t i = ((size_t)n * x->c + c) * HW + p;
                out[i] = exp(x->data[i] - m) / s;
            }
        }
}

START_TEST(softmax_hand_case) {
    /* (N=1, C=3) logits 1, 2, 3: e^k / (e + e^2 + e^3) */
    float xv[3] = {1.0f, 2.0f, 3.0f}, yv[3];
    heed_tensor x = vec(xv, 3), y = vec(yv, 3);
    ck_assert_int_eq(heed_softmax_forward(&x, &y), HEED_OK);
    ck_assert_float_eq_tol(yv[0], 0.0900305732f, 1e-7f);
    ck_assert_float_eq_tol(yv[1], 0.2447284711f, 1e-7f);
    ck_assert_float_eq_tol(yv[2], 0.6652409558f, 1e-7f);

    /* over channels, not over positions: (1, 2, 1, 2), position 0 has
     * channels (0, ln 3) -> (1/4, 3/4); position 1 has (5, 5) -> (1/2, 1/2) */
    float xs[4] = {0.0f, 5.0f, logf(3.0f), 5.0f}, ys[4];
    heed_tensor x2 = heed_tensor_view(xs, 1, 2, 1, 2), y2 = heed_tensor_view(ys, 1, 2, 1, 2);
    ck_assert_int_eq(heed_softmax_forward(&x2, &y2), HEED_OK);
    ck_assert_float_eq_tol(ys[0], 0.25f, 1e-7f);
    ck_assert_float_eq_tol(ys[2], 0.75f, 1e-7f);
    ck_assert_float_eq_tol(ys[1], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(ys[3], 0.5f, 1e-7f);

    /* stable: huge logits do not overflow */
    float xb[3] = {1000.0f, 1000.0f, -1000.0f}, yb[3];
    heed_tensor x3 = vec(xb, 3), y3 = vec(yb, 3);
    ck_assert_int_eq(heed_softmax_forward(&x3, &y3), HEED_OK);
    ck_assert_float_eq_tol(yb[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(yb[1], 0.5f, 1e-7f);
    ck_assert_float_eq(yb[2], 0.0f);

    /* ... wherever the largest logit is: (1, 3, 1, 3), position p holds 1000
     * in channel p, 0 in p+1 and -1000 in p+2 (mod 3), so y is 1 in
     * channel p and e^-1000 = 0 (in float) elsewhere. */
    float xw[9], yw[9];
    for (int p = 0; p < 3; p++)
        xw[p * 3 + p] = 1000.0f, xw[(p + 1) % 3 * 3 + p] = 0.0f, xw[(p + 2) % 3 * 3 + p] = -1000.0f;
    heed_tensor x4 = heed_tensor_view(xw, 1, 3, 1, 3), y4 = heed_tensor_view(yw, 1, 3, 1, 3);
    ck_assert_int_eq(heed_softmax_forward(&x4, &y4), HEED_OK);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 3; p++)
            ck_assert_msg(yw[c * 3 + p] == (c == p ? 1.0f : 0.0f), "channel %d position %d: %g", c,
                          p, yw[c * 3 + p]);
}
END_TEST

/* Shapes that cross the kernel's tile of positions and, for the last one,
 * the threading threshold. */
START_TEST(softmax_matches_reference_and_sums_to_one) {
    static const int shapes[][4] = {{2, 4, 5, 3}, {3, 7, 17, 17}, {2, 10, 1, 1}, {2, 9, 47, 41}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *d = shapes[s];
        heed_tensor x, y = {0};
        ck_assert_int_eq(heed_tensor_alloc(&x, d[0], d[1], d[2], d[3]), HEED_OK);
        const size_t n = heed_tensor_count(&x);
        tu_fill_uniform(x.data, n, -20.0f, 20.0f, 30 + s);
        double *ref = malloc(n * sizeof *ref);
        softmax_ref(&x, ref);
        ck_assert_int_eq(heed_softmax_forward(&x, &y), HEED_OK);
        ck_assert(heed_tensor_same_shape(&x, &y));
        for (size_t i = 0; i < n; i++) ck_assert_double_eq_tol(y.data[i], ref[i], 1e-6);
        const int HW = d[2] * d[3];
        for (int b = 0; b < d[0]; b++)
            for (int p = 0; p < HW; p++) {
                double sum = 0.0;
                for (int c = 0; c < d[1]; c++) sum += y.data[((size_t)b * d[1] + c) * HW + p];
                ck_assert_double_eq_tol(sum, 1.0, 1e-5);
            }
        /* in place gives the same values */
        ck_assert_int_eq(heed_softmax_forward(&x, &x), HEED_OK);
        ck_assert_mem_eq(x.data, y.data, n * sizeof(float));
        free(ref);
        heed_tensor_free(&x);
        heed_tensor_free(&y);
    }
}
END_TEST

typedef struct sm_ctx {
    heed_tensor *x, *y;
    const float *w;
} sm_ctx;

static double sm_loss(void *p) {
    sm_ctx *c = p;
    ck_assert_int_eq(heed_softmax_forward(c->x, c->y), HEED_OK);
    return tu_weighted_sum(c->y->data, c->w, heed_tensor_count(c->y));
}

START_TEST(softmax_gradient_matches_finite_differences) {
    static const int shapes[][4] = {{2, 3, 5, 3}, {3, 5, 1, 1}, {1, 4, 17, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *d = shapes[s];
        heed_tensor x, y = {0}, dy, dx;
        ck_assert_int_eq(heed_tensor_alloc(&x, d[0], d[1], d[2], d[3]), HEED_OK);
        ck_assert_int_eq(heed_tensor_alloc(&dy, d[0], d[1], d[2], d[3]), HEED_OK);
        ck_assert_int_eq(heed_tensor_alloc(&dx, d[0], d[1], d[2], d[3]), HEED_OK);
        const size_t n = heed_tensor_count(&x);
        tu_fill_uniform(x.data, n, -2.0f, 2.0f, 40 + s);
        tu_fill_uniform(dy.data, n, -1.0f, 1.0f, 50 + s);
        ck_assert_int_eq(heed_softmax_forward(&x, &y), HEED_OK);
        ck_assert_int_eq(heed_softmax_backward(&y, &dy, &dx), HEED_OK);
        sm_ctx c = {&x, &y, dy.data};
        TU_GRADCHECK("softmax dx", sm_loss, &c, x.data, n, dx.data, 1e-3f, 5e-4);
        /* and it accumulates (y recomputed: the check left it perturbed) */
        ck_assert_int_eq(heed_softmax_forward(&x, &y), HEED_OK);
        heed_tensor dx2;
        ck_assert_int_eq(heed_tensor_alloc(&dx2, d[0], d[1], d[2], d[3]), HEED_OK);
        heed_tensor_fill(&dx2, 1.0f);
        ck_assert_int_eq(heed_softmax_backward(&y, &dy, &dx2), HEED_OK);
        for (size_t i = 0; i < n; i++) ck_assert_float_eq_tol(dx2.data[i], 1.0f + dx.data[i], 1e-6f);
        heed_tensor_free(&dx2);
        heed_tensor_free(&x);
        heed_tensor_free(&y);
        heed_tensor_free(&dx);
        heed_tensor_free(&dy);
    }
}
END_TEST

/* Above the threading threshold, against values computed here. */
START_TEST(large_tensors_match_scalar_formulas) {
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 8, 48, 49), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 8, 48, 49), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 8, 48, 49), HEED_OK);
    const size_t n = heed_tensor_count(&x);
    tu_fill_uniform(x.data, n, -4.0f, 4.0f, 60);
    tu_fill_uniform(dy.data, n, -1.0f, 1.0f, 61);
    const size_t n_plain = sizeof elementwise_kinds / sizeof elementwise_kinds[0];
    for (size_t k = 0; k < n_plain + sizeof mobile_kinds / sizeof mobile_kinds[0]; k++) {
        const heed_act_kind kind = k < n_plain ? elementwise_kinds[k] : mobile_kinds[k - n_plain];
        heed_tensor_zero(&dx);
        ck_assert_int_eq(heed_act_forward(kind, 0.25f, &x, &y), HEED_OK);
        ck_assert_int_eq(heed_act_backward(kind, 0.25f, &x, &y, &dy, &dx), HEED_OK);
        for (size_t i = 0; i < n; i++) {
            const double v = x.data[i], g = dy.data[i];
            double f, df;
            switch (kind) {
            case HEED_ACT_RELU: f = v > 0 ? v : 0, df = v > 0 ? 1 : 0; break;
            case HEED_ACT_LEAKY_RELU: f = v > 0 ? v : 0.25 * v, df = v > 0 ? 1 : 0.25; break;
            case HEED_ACT_SIGMOID: f = 1 / (1 + exp(-v)), df = f * (1 - f); break;
            case HEED_ACT_SILU: {
                const double sg = 1 / (1 + exp(-v));
                f = v * sg, df = sg * (1 + v * (1 - sg));
                break;
            }
            case HEED_ACT_HARDSIGMOID:
                f = v <= -3 ? 0 : v >= 3 ? 1 : (v + 3) / 6, df = v > -3 && v < 3 ? 1.0 / 6 : 0;
                break;
            case HEED_ACT_HARDSWISH:
                f = v <= -3 ? 0 : v >= 3 ? v : v * (v + 3) / 6, df = v < -3 ? 0 : v <= 3 ? v / 3 + 0.5 : 1;
                break;
            default: f = tanh(v), df = 1 - f * f; break;
            }
            ck_assert_double_eq_tol(y.data[i], f, 1e-6);
            ck_assert_double_eq_tol(dx.data[i], g * df, 1e-6);
        }
    }
    heed_tensor_free(&x);
    heed_tensor_free(&y);
    heed_tensor_free(&dx);
    heed_tensor_free(&dy);
}
END_TEST

START_TEST(errors_name_the_shapes) {
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 3, 5, 4), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 3, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_act_forward(HEED_ACT_TANH, 0, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_act_backward(HEED_ACT_TANH, 0, &x, &y, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 3)"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 4)"));
    ck_assert_int_eq(heed_softmax_backward(&y, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 4)"));
    ck_assert_int_eq(heed_act_forward((heed_act_kind)42, 0, &x, &y), HEED_ERR_ARG);
    ck_assert_int_eq(heed_act_backward((heed_act_kind)42, 0, &x, &y, &dx, &dx), HEED_ERR_ARG);
    ck_assert_ptr_null(heed_act_name((heed_act_kind)42));
    heed_tensor_free(&x);
    heed_tensor_free(&y);
    heed_tensor_free(&dx);
    heed_tensor_free(&dy);
}
END_TEST

/* ---- the layer ---- */

/* A NULL configuration is refused like a bad one (it was dereferenced). */
START_TEST(null_config_is_refused) {
    heed_activation *a = (heed_activation *)&a;
    ck_assert_int_eq(heed_activation_new(&a, NULL, (int[3]){3, 5, 4}, NULL, "act"), HEED_ERR_ARG);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(heed_last_error(), "activation act: no configuration given"), "%s",
                  heed_last_error());
}
END_TEST

START_TEST(layer_constructor_types_and_bad_configs) {
    static const char *types[] = {"relu",    "leaky_relu", "sigmoid",    "tanh",
                                  "softmax", "silu",       "hardsigmoid", "hardswish"};
    heed_params p = {0};
    for (int k = 0; k <= HEED_ACT_HARDSWISH; k++) {
        heed_activation *a;
        heed_activation_cfg cfg = {.kind = (heed_act_kind)k};
        ck_assert_int_eq(heed_activation_new(&a, &cfg, (int[3]){3, 5, 4}, &p, "act"), HEED_OK);
        ck_assert_str_eq(a->base.ops->type, types[k]);
        ck_assert_str_eq(heed_act_name((heed_act_kind)k), types[k]);
        ck_assert_int_eq(a->base.out_c, 3);
        ck_assert_int_eq(a->base.out_h, 5);
        ck_assert_int_eq(a->base.out_w, 4);
        ck_assert_double_eq(heed_layer_flops(&a->base), 60.0);
        if (k == HEED_ACT_LEAKY_RELU) ck_assert_float_eq(a->cfg.slope, 0.01f);
        heed_layer_free(&a->base);
    }
    ck_assert_int_eq(p.count, 0); /* nothing registered */

    heed_activation dummy, *a = &dummy; /* must be reset to NULL on failure */
    ck_assert_int_eq(heed_activation_new(&a, &(heed_activation_cfg){.kind = (heed_act_kind)9},
                                         (int[3]){3, 5, 4}, NULL, "bad"),
                     HEED_ERR_ARG);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "bad"));
    ck_assert_int_eq(heed_activation_new(&a,
                                         &(heed_activation_cfg){.kind = HEED_ACT_LEAKY_RELU,
                                                                .slope = INFINITY},
                                         (int[3]){3, 5, 4}, NULL, "lr"),
                     HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "slope"));
    ck_assert_int_eq(heed_activation_new(&a, &(heed_activation_cfg){.kind = HEED_ACT_RELU},
                                         (int[3]){3, 0, 4}, NULL, "r"),
                     HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(3, 0, 4)"));
    ck_assert_ptr_null(a);
}
END_TEST

typedef struct layer_ctx {
    heed_layer *l;
    heed_tensor *x, *y;
    const float *w;
} layer_ctx;

static double layer_loss(void *p) {
    layer_ctx *c = p;
    ck_assert_int_eq(heed_layer_forward(c->l, c->x, c->y), HEED_OK);
    return tu_weighted_sum(c->y->data, c->w, heed_tensor_count(c->y));
}

START_TEST(layer_forward_backward_through_interface) {
    heed_activation *a;
    heed_activation_cfg cfg = {.kind = HEED_ACT_LEAKY_RELU, .slope = 0.1f};
    ck_assert_int_eq(heed_activation_new(&a, &cfg, (int[3]){3, 5, 3}, NULL, "lrelu"), HEED_OK);
    heed_layer *l = &a->base;
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 3, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 3, 5, 3), HEED_OK);
    const size_t n = heed_tensor_count(&x);
    tu_fill_uniform(x.data, n, -2.0f, 2.0f, 70);
    avoid_zero(x.data, n, 0.05f);
    tu_fill_uniform(dy.data, n, -1.0f, 1.0f, 71);
    ck_assert_int_eq(heed_layer_forward(l, &x, &y), HEED_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_float_eq_tol(y.data[i], x.data[i] > 0 ? x.data[i] : 0.1f * x.data[i], 1e-7f);
    ck_assert_int_eq(heed_layer_backward(l, &x, &y, &dy, &dx), HEED_OK);
    layer_ctx c = {l, &x, &y, dy.data};
    TU_GRADCHECK("leaky_relu layer dx", layer_loss, &c, x.data, n, dx.data, 1e-3f, 5e-4);
    ck_assert_int_eq(heed_layer_backward(l, &x, &y, &dy, NULL), HEED_OK);

    /* the layer checks its input shape */
    heed_tensor bad;
    ck_assert_int_eq(heed_tensor_alloc(&bad, 2, 4, 5, 3), HEED_OK);
    ck_assert_int_eq(heed_layer_forward(l, &bad, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "lrelu"));
    heed_tensor_free(&bad);

    heed_layer_free(l);
    heed_tensor_free(&x);
    heed_tensor_free(&y);
    heed_tensor_free(&dx);
    heed_tensor_free(&dy);
}
END_TEST

Suite *heed_suite_activation(void) {
    Suite *s = suite_create("activation");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, relu_and_leaky_relu_hand_values);
    tcase_add_test(tc, sigmoid_and_tanh_hand_values_and_extremes);
    tcase_add_test(tc, backward_hand_values_accumulate);
    tcase_add_test(tc, mobile_activations_match_pytorch_values);
    tcase_add_test(tc, elementwise_gradients_match_finite_differences);
    tcase_add_test(tc, negative_slope_backward_needs_x);
    tcase_add_test(tc, softmax_hand_case);
    tcase_add_test(tc, softmax_matches_reference_and_sums_to_one);
    tcase_add_test(tc, softmax_gradient_matches_finite_differences);
    tcase_add_test(tc, large_tensors_match_scalar_formulas);
    tcase_add_test(tc, errors_name_the_shapes);
    tcase_add_test(tc, layer_constructor_types_and_bad_configs);
    tcase_add_test(tc, null_config_is_refused);
    tcase_add_test(tc, layer_forward_backward_through_interface);
    suite_add_tcase(s, tc);
    return s;
}
