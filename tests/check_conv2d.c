/* check_conv2d.c -- convolution: output sizes, hand-computed cases, a naive
 * direct convolution as reference, gradient checks, batch-norm folding,
 * threads, layer interface and errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#endif

#include "conv2d.h"
#include "gemm.h"
#include "omp_impl.h"
#include "testutil.h"

/* A conv with its own parameter store, weights and bias drawn U(-1, 1). */
typedef struct fixture {
    heed_params p;
    heed_conv2d *conv;
    heed_tensor x, y, dx;
    float *wt; /* loss weights, shaped like y */
} fixture;

static void fixture_init(fixture *f, heed_conv2d_cfg cfg, int N, int H, int W, uint64_t seed) {
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(heed_conv2d_new(&f->conv, &cfg, (int[3]){cfg.in_c, H, W}, &f->p, "c"),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&f->p, seed), HEED_OK);
    tu_fill_uniform(f->p.values, f->p.total, -1.0f, 1.0f, seed + 1);
    ck_assert_int_eq(heed_tensor_alloc(&f->x, N, cfg.in_c, H, W), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&f->dx, N, cfg.in_c, H, W), HEED_OK);
    tu_fill_uniform(f->x.data, heed_tensor_count(&f->x), -1.0f, 1.0f, seed + 2);
    ck_assert_int_eq(heed_conv2d_forward(f->conv, &f->x, &f->y), HEED_OK);
    size_t ny = heed_tensor_count(&f->y);
    f->wt = malloc(ny * sizeof(float));
    tu_fill_uniform(f->wt, ny, -1.0f, 1.0f, seed + 3);
}

static void fixture_free(fixture *f) {
    heed_layer_free(&f->conv->base);
    heed_params_free(&f->p);
    heed_tensor_free(&f->x);
    heed_tensor_free(&f->y);
    heed_tensor_free(&f->dx);
    free(f->wt);
}

/* The straightforward definition of nn.Conv2d, in double. */
static void naive_conv(const heed_conv2d_cfg *c, const heed_tensor *x, const float *w,
                       const float *b, int OH, int OW, float *y) {
    int S = c->stride ? c->stride : 1, D = c->dilation ? c->dilation : 1;
    int G = c->groups ? c->groups : 1, ICg = c->in_c / G, OCg = c->out_c / G, K = c->k;
    for (int n = 0; n < x->n; n++)
        for (int o = 0; o < c->out_c; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double s = b ? b[o] : 0.0;
                    int g = o / OCg;
                    for (int ci = 0; ci < ICg; ci++)
                        for (int u = 0; u < K; u++)
                            for (int v = 0; v < K; v++) {
                                int h = i * S - c->pad + u * D, ww = j * S - c->pad + v * D;
                                if (h < 0 || h >= x->h || ww < 0 || ww >= x->w) continue;
                                s += (double)w[((o * ICg + ci) * K + u) * K + v] *
                                     x->data[heed_tensor_index(x, n, g * ICg + ci, h, ww)];
                            }
                    y[((n * c->out_c + o) * OH + i) * OW + j] = (float)s;
                }
}

START_TEST(out_size_matches_pytorch_formula) {
    /* Values printed by nn.Conv2d for these settings. */
    ck_assert_int_eq(heed_conv2d_out_size(224, 7, 2, 3, 1), 112);
    ck_assert_int_eq(heed_conv2d_out_size(56, 3, 2, 1, 1), 28);
    ck_assert_int_eq(heed_conv2d_out_size(56, 1, 2, 0, 1), 28);
    ck_assert_int_eq(heed_conv2d_out_size(28, 3, 1, 1, 2), 26);
    ck_assert_int_eq(heed_conv2d_out_size(5, 3, 2, 0, 1), 2);
    ck_assert_int_eq(heed_conv2d_out_size(7, 1, 2, 0, 0), 4);
    ck_assert_int_eq(heed_conv2d_out_size(2, 3, 1, 0, 1), 0);
    /* Against counting the window positions that fit, one by one. */
    for (int in = 1; in <= 12; in++)
        for (int k = 1; k <= 5; k++)
            for (int s = 1; s <= 3; s++)
                for (int p = 0; p <= 3; p++)
                    for (int d = 1; d <= 3; d++) {
                        int count = 0;
                        for (int start = -p; start + d * (k - 1) <= in - 1 + p; start += s) count++;
                        ck_assert_msg(heed_conv2d_out_size(in, k, s, p, d) == count,
                                      "in %d k %d s %d p %d d %d: %d, expected %d", in, k, s, p,
                                      d, heed_conv2d_out_size(in, k, s, p, d), count);
                    }
}
END_TEST

static heed_conv2d *make_conv(heed_params *p, heed_conv2d_cfg cfg, int H, int W) {
    heed_conv2d *c;
    ck_assert_int_eq(heed_conv2d_new(&c, &cfg, (int[3]){cfg.in_c, H, W}, p, "c"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(p, 1), HEED_OK);
    return c;
}

START_TEST(hand_case_stride2_pad1) {
    heed_params p = {0};
    heed_conv2d *c = make_conv(&p, (heed_conv2d_cfg){.in_c = 1, .out_c = 2, .k = 3, .stride = 2,
                                                     .pad = 1, .bias = 1}, 4, 4);
    ck_assert_int_eq(c->base.out_h, 2);
    ck_assert_int_eq(c->base.out_w, 2);
    float xs[16];
    for (int i = 0; i < 16; i++) xs[i] = (float)(i + 1);
    heed_tensor x = heed_tensor_view(xs, 1, 1, 4, 4), y = {0};
    /* Filter 0 all ones: sums of the clipped windows. Filter 1 picks the
     * pixel right of each window's centre: a cross-correlation, not flipped. */
    for (int i = 0; i < 9; i++) c->w[i] = 1.0f, c->w[9 + i] = i == 5 ? 1.0f : 0.0f;
    c->b[0] = 0.5f, c->b[1] = -1.0f;
    ck_assert_int_eq(heed_conv2d_forward(c, &x, &y), HEED_OK);
    const float want[8] = {14.5f, 30.5f, 57.5f, 99.5f, 1.0f, 3.0f, 9.0f, 11.0f};
    for (int i = 0; i < 8; i++) ck_assert_float_eq_tol(y.data[i], want[i], 1e-5f);
    heed_tensor_free(&y);
    heed_layer_free(&c->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(hand_case_groups_depthwise_dilation) {
    /* Groups: 2 input channels, 4 outputs, 2 groups; outputs 0-1 see channel
     * 0 only (all 1), outputs 2-3 channel 1 only (all 2). */
    heed_params p = {0};
    heed_conv2d *c = make_conv(&p, (heed_conv2d_cfg){.in_c = 2, .out_c = 4, .k = 2, .groups = 2},
                               3, 3);
    for (int i = 0; i < 16; i++) c->w[i] = i < 8 ? 1.0f : (i < 12 ? 0.5f : -1.0f);
    float xs[18];
    for (int i = 0; i < 18; i++) xs[i] = i < 9 ? 1.0f : 2.0f;
    heed_tensor x = heed_tensor_view(xs, 1, 2, 3, 3), y = {0};
    ck_assert_int_eq(heed_conv2d_forward(c, &x, &y), HEED_OK);
    ck_assert_int_eq(y.c, 4); ck_assert_int_eq(y.h, 2);
    const float want[4] = {4.0f, 4.0f, 4.0f, -8.0f};
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(y.data[o * 4 + i], want[o], 1e-6f);
    heed_tensor_free(&y);
    heed_layer_free(&c->base);
    heed_params_free(&p);

    /* Depthwise 3x3, padding 1: channel 0 sums its 3x3 neighbourhood,
     * channel 1 copies its input shifted (the top-left tap). */
    p = (heed_params){0};
    c = make_conv(&p, (heed_conv2d_cfg){.in_c = 2, .out_c = 2, .k = 3, .pad = 1, .groups = 2,
                                        .bias = 1}, 3, 3);
    for (int i = 0; i < 9; i++) c->w[i] = 1.0f, c->w[9 + i] = i == 0 ? 1.0f : 0.0f;
    c->b[0] = 0.0f, c->b[1] = 10.0f;
    for (int i = 0; i < 18; i++) xs[i] = (float)(i % 9 + 1);
    ck_assert_int_eq(heed_conv2d_forward(c, &x, &y), HEED_OK);
    /* x plane 1 2 3 / 4 5 6 / 7 8 9 */
    const float box[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    const float shift[9] = {10, 10, 10, 10, 11, 12, 10, 14, 15};
    for (int i = 0; i < 9; i++) {
        ck_assert_float_eq_tol(y.data[i], box[i], 1e-5f);
        ck_assert_float_eq_tol(y.data[9 + i], shift[i], 1e-5f);
    }
    heed_tensor_free(&y);
    heed_layer_free(&c->base);
    heed_params_free(&p);

    /* Dilation 2 on 5x5 = 0..24: the 3x3 kernel of ones touches rows and
     * columns 0, 2, 4. */
    p = (heed_params){0};
    c = make_conv(&p, (heed_conv2d_cfg){.in_c = 1, .out_c = 1, .k = 3, .dilation = 2}, 5, 5);
    ck_assert_int_eq(c->base.out_h, 1);
    for (int i = 0; i < 9; i++) c->w[i] = 1.0f;
    float x5[25];
    for (int i = 0; i < 25; i++) x5[i] = (float)i;
    heed_tensor xd = heed_tensor_view(x5, 1, 1, 5, 5);
    ck_assert_int_eq(heed_conv2d_forward(c, &xd, &y), HEED_OK);
    ck_assert_float_eq_tol(y.data[0], 108.0f, 1e-5f);
    heed_tensor_free(&y);
    heed_layer_free(&c->base);
    heed_params_free(&p);
}
END_TEST

typedef struct shape_case {
    heed_conv2d_cfg cfg;
    int N, H, W;
} shape_case;

/* Covers the im2col path one image and several images at a time (with a
 * remainder pass), the 1x1 path direct and gathered, depthwise, groups and
 * dilation. */
static const shape_case big_cases[] = {
    {{.in_c = 6, .out_c = 8, .k = 3, .stride = 1, .pad = 1, .bias = 1}, 5, 40, 41},
    {{.in_c = 6, .out_c = 8, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 3, 17, 13},
    {{.in_c = 6, .out_c = 8, .k = 3, .pad = 2, .dilation = 2, .groups = 2}, 2, 19, 23},
    {{.in_c = 8, .out_c = 8, .k = 5, .stride = 2, .pad = 2, .groups = 8, .bias = 1}, 3, 21, 18},
    {{.in_c = 8, .out_c = 12, .k = 1, .bias = 1}, 5, 40, 40},
    {{.in_c = 8, .out_c = 12, .k = 1, .groups = 4}, 1, 9, 11},
    {{.in_c = 8, .out_c = 12, .k = 1, .stride = 2}, 3, 9, 11},
    {{.in_c = 3, .out_c = 16, .k = 7, .stride = 2, .pad = 3}, 2, 32, 30},
};

START_TEST(matches_naive_convolution) {
    const shape_case *sc = &big_cases[_i];
    fixture f;
    fixture_init(&f, sc->cfg, sc->N, sc->H, sc->W, 100 + _i);
    size_t ny = heed_tensor_count(&f.y);
    float *ref = malloc(ny * sizeof(float));
    naive_conv(&sc->cfg, &f.x, f.conv->w, f.conv->b, f.y.h, f.y.w, ref);
    double err = tu_max_rel_err(f.y.data, ref, ny);
    ck_assert_msg(err < 1e-5, "case %d: error %g against the naive convolution", _i, err);
    free(ref);
    fixture_free(&f);
}
END_TEST

static double conv_loss(void *ctx) {
    fixture *f = ctx;
    ck_assert_int_eq(heed_conv2d_forward(f->conv, &f->x, &f->y), HEED_OK);
    return tu_weighted_sum(f->y.data, f->wt, heed_tensor_count(&f->y));
}

static const shape_case grad_cases[] = {
    {{.in_c = 3, .out_c = 4, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 2, 7, 5},
    {{.in_c = 3, .out_c = 4, .k = 3, .stride = 1, .pad = 1, .bias = 1}, 1, 6, 5},
    {{.in_c = 4, .out_c = 6, .k = 3, .stride = 1, .pad = 1, .groups = 2, .bias = 1}, 3, 5, 6},
    {{.in_c = 3, .out_c = 3, .k = 3, .stride = 2, .pad = 1, .groups = 3, .bias = 1}, 2, 6, 7},
    /* stride 2 on even widths: the phase planes by even and odd halves,
     * with one padding column and with two */
    {{.in_c = 3, .out_c = 3, .k = 3, .stride = 2, .pad = 1, .groups = 3, .bias = 1}, 2, 6, 8},
    {{.in_c = 2, .out_c = 2, .k = 3, .stride = 2, .pad = 2, .groups = 2}, 1, 7, 6},
    {{.in_c = 2, .out_c = 2, .k = 3, .pad = 2, .dilation = 2, .groups = 2}, 2, 5, 6},
    {{.in_c = 2, .out_c = 3, .k = 3, .stride = 1, .pad = 2, .dilation = 2, .bias = 1}, 2, 7, 6},
    {{.in_c = 5, .out_c = 3, .k = 1, .bias = 1}, 3, 4, 3},
    {{.in_c = 5, .out_c = 3, .k = 1, .bias = 1}, 1, 4, 3},
    {{.in_c = 4, .out_c = 2, .k = 1, .groups = 2}, 2, 3, 5},
    {{.in_c = 3, .out_c = 2, .k = 1, .stride = 2, .bias = 1}, 2, 5, 4},
    {{.in_c = 2, .out_c = 3, .k = 2, .stride = 3, .bias = 1}, 2, 8, 7},
    {{.in_c = 1, .out_c = 2, .k = 3, .pad = 2, .bias = 1}, 3, 4, 5},
    /* direct loops with a kernel of 5: four taps side by side for dW, then
     * one; four output rows side by side, then one */
    {{.in_c = 2, .out_c = 1, .k = 5, .pad = 2}, 2, 5, 6},
    /* one small image: the forward reads im2col's rows in shifted copies */
    {{.in_c = 6, .out_c = 5, .k = 3, .pad = 1, .bias = 1}, 1, 7, 7},
    {{.in_c = 6, .out_c = 4, .k = 3, .stride = 2, .pad = 1}, 1, 9, 9},
};

START_TEST(gradients_match_finite_differences) {
    const shape_case *sc = &grad_cases[_i];
    fixture f;
    fixture_init(&f, sc->cfg, sc->N, sc->H, sc->W, 200 + _i);
    heed_params_zero_grad(&f.p);
    heed_tensor dy = heed_tensor_view(f.wt, f.y.n, f.y.c, f.y.h, f.y.w);
    ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, &f.dx), HEED_OK);
    const size_t nw = (size_t)sc->cfg.out_c * (sc->cfg.in_c / (sc->cfg.groups ? sc->cfg.groups : 1)) *
                      sc->cfg.k * sc->cfg.k;
    TU_GRADCHECK("input", conv_loss, &f, f.x.data, heed_tensor_count(&f.x), f.dx.data, 1e-2f, 2e-3);
    TU_GRADCHECK("weight", conv_loss, &f, f.conv->w, nw, f.conv->dw, 1e-2f, 2e-3);
    if (sc->cfg.bias)
        TU_GRADCHECK("bias", conv_loss, &f, f.conv->b, sc->cfg.out_c, f.conv->db, 1e-2f, 2e-3);
    else
        ck_assert_ptr_null(f.conv->b);

    /* Backward accumulates: a second call doubles every gradient (the
     * bias's too, on every route: the direct loops sum it on their own). */
    float *dw1 = malloc(nw * sizeof(float));
    memcpy(dw1, f.conv->dw, nw * sizeof(float));
    float dx0 = f.dx.data[0], db1[8] = {0};
    ck_assert_int_le(sc->cfg.out_c, 8);
    if (f.conv->db) memcpy(db1, f.conv->db, (size_t)sc->cfg.out_c * sizeof(float));
    ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, &f.dx), HEED_OK);
    for (size_t i = 0; i < nw; i++) ck_assert_float_eq_tol(f.conv->dw[i], 2 * dw1[i], 1e-5f);
    for (int o = 0; f.conv->db && o < sc->cfg.out_c; o++)
        ck_assert_float_eq_tol(f.conv->db[o], 2 * db1[o], 1e-5f * fmaxf(1.0f, fabsf(db1[o])));
    ck_assert_float_eq_tol(f.dx.data[0], 2 * dx0, 1e-5f);
    /* dx NULL still gives the parameter gradients. */
    heed_params_zero_grad(&f.p);
    ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, NULL), HEED_OK);
    for (size_t i = 0; i < nw; i++) ck_assert_float_eq_tol(f.conv->dw[i], dw1[i], 1e-5f);
    free(dw1);
    fixture_free(&f);
}
END_TEST

/* dx, dW and db by the definition (each output's gradient sent back to
 * every input and weight it read), in double. */
static void naive_backward(const heed_conv2d_cfg *c, const heed_tensor *x, const float *w,
                           const heed_tensor *dy, double *dx, double *dw, double *db) {
    int S = c->stride ? c->stride : 1, D = c->dilation ? c->dilation : 1;
    int G = c->groups ? c->groups : 1, ICg = c->in_c / G, OCg = c->out_c / G, K = c->k;
    for (int n = 0; n < x->n; n++)
        for (int o = 0; o < c->out_c; o++)
            for (int i = 0; i < dy->h; i++)
                for (int j = 0; j < dy->w; j++) {
                    const double g = dy->data[heed_tensor_index(dy, n, o, i, j)];
                    db[o] += g;
                    for (int ci = 0; ci < ICg; ci++)
                        for (int u = 0; u < K; u++)
                            for (int v = 0; v < K; v++) {
                                int h = i * S - c->pad + u * D, ww = j * S - c->pad + v * D;
                                if (h < 0 || h >= x->h || ww < 0 || ww >= x->w) continue;
                                size_t xi = heed_tensor_index(x, n, o / OCg * ICg + ci, h, ww);
                                size_t wi = ((size_t)(o * ICg + ci) * K + u) * K + v;
                                dw[wi] += g * x->data[xi];
                                dx[xi] += g * w[wi];
                            }
                }
}

/* Every route through the code, forward and backward (with and without an
 * input gradient) against the definition: products on shifted copies
 * (stride 1: with groups and dilation, without padding, with more padding
 * than the kernel spans, 5x5, in row bands for a large image, images in
 * uneven chunks, a first layer with one input channel, one narrow image
 * shared out by blocks of output channels, a one-column image whose padded
 * product is wider than its copies' rows, the smallest image to go shifted
 * (14x14: 196 columns) and one a column short of it, which goes to im2col;
 * strided, the forward on row phases: stride 2 in bands of a large image,
 * even and odd sizes, stride 3 with its three phases, stride 4 with four,
 * 1x1 stride 2 and a padded 1x1 stride 3, groups with dilation, a 2x2
 * kernel without padding), direct loops (CBAM's 2 -> 1 filter, depthwise,
 * two channels per group), the few-channel route's phase planes (ResNet's
 * 7x7 stride-2 stem on an odd image, stride 3 with dilation, stride 4,
 * groups, and images in several bands of rows at strides 1 and 2), im2col
 * (stride 2 with 5 to 6 channels, and in row bands over column phases: even
 * and odd widths, stride 3). */
static const shape_case path_cases[] = {
    {{.in_c = 5, .out_c = 7, .k = 3, .pad = 1, .bias = 1}, 2, 24, 27},
    {{.in_c = 4, .out_c = 6, .k = 3, .pad = 2, .dilation = 2, .groups = 2}, 3, 20, 23},
    {{.in_c = 3, .out_c = 5, .k = 3}, 2, 30, 33},
    {{.in_c = 3, .out_c = 4, .k = 3, .pad = 3, .bias = 1}, 2, 20, 20},
    {{.in_c = 3, .out_c = 4, .k = 5, .pad = 2}, 2, 25, 26},
    {{.in_c = 64, .out_c = 4, .k = 3, .pad = 1}, 1, 71, 70},
    {{.in_c = 2, .out_c = 1, .k = 7, .pad = 3}, 3, 22, 19},
    {{.in_c = 3, .out_c = 3, .k = 3, .pad = 2, .dilation = 2, .groups = 3, .bias = 1}, 2, 13, 17},
    {{.in_c = 4, .out_c = 4, .k = 3, .pad = 1, .groups = 2}, 2, 9, 8},
    {{.in_c = 6, .out_c = 8, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 3, 17, 13},
    {{.in_c = 16, .out_c = 6, .k = 5, .stride = 2, .pad = 2}, 1, 100, 100},
    {{.in_c = 16, .out_c = 6, .k = 5, .stride = 2, .pad = 2}, 1, 99, 101},
    {{.in_c = 16, .out_c = 6, .k = 5, .stride = 3, .pad = 2}, 1, 100, 100},
    {{.in_c = 5, .out_c = 7, .k = 3, .pad = 1, .bias = 1}, 11, 9, 8},
    {{.in_c = 1, .out_c = 8, .k = 3, .pad = 1, .bias = 1}, 13, 10, 9},
    {{.in_c = 48, .out_c = 40, .k = 3, .pad = 1, .bias = 1}, 1, 14, 15},
    {{.in_c = 8, .out_c = 5, .k = 3, .pad = 1}, 1, 200, 1},
    {{.in_c = 24, .out_c = 40, .k = 3, .pad = 1, .bias = 1}, 1, 14, 14},
    {{.in_c = 24, .out_c = 40, .k = 3, .pad = 1}, 1, 13, 15},
    {{.in_c = 24, .out_c = 10, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 2, 27, 30},
    {{.in_c = 24, .out_c = 10, .k = 3, .stride = 3, .pad = 1}, 3, 25, 29},
    {{.in_c = 64, .out_c = 12, .k = 1, .stride = 2, .bias = 1}, 2, 9, 11},
    {{.in_c = 48, .out_c = 8, .k = 3, .stride = 2, .pad = 2, .dilation = 2, .groups = 2}, 2, 30, 29},
    {{.in_c = 40, .out_c = 6, .k = 2, .stride = 2}, 2, 31, 32},
    {{.in_c = 32, .out_c = 5, .k = 5, .stride = 4, .pad = 2}, 3, 33, 30},
    {{.in_c = 64, .out_c = 4, .k = 1, .stride = 3, .pad = 1}, 1, 10, 11},
    /* ResNet's 3x3 stride-2 convolution, on row phases */
    {{.in_c = 64, .out_c = 8, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 2, 28, 28},
    {{.in_c = 3, .out_c = 10, .k = 7, .stride = 2, .pad = 3}, 1, 45, 43},
    {{.in_c = 2, .out_c = 9, .k = 3, .stride = 3, .pad = 2, .dilation = 2, .bias = 1}, 2, 31, 29},
    {{.in_c = 1, .out_c = 8, .k = 5, .stride = 4, .pad = 1}, 2, 37, 40},
    {{.in_c = 4, .out_c = 12, .k = 3, .stride = 2, .pad = 1, .groups = 2, .bias = 1}, 2, 20, 17},
    {{.in_c = 1, .out_c = 8, .k = 3, .pad = 1}, 1, 200, 201},
    {{.in_c = 2, .out_c = 3, .k = 5, .stride = 2, .pad = 2}, 1, 261, 520},
    {{.in_c = 5, .out_c = 6, .k = 5, .stride = 2, .pad = 2}, 1, 150, 150},
    {{.in_c = 5, .out_c = 6, .k = 5, .stride = 2, .pad = 2}, 1, 149, 151},
    {{.in_c = 5, .out_c = 6, .k = 5, .stride = 3, .pad = 2}, 1, 220, 220},
    /* one image too small for the shifted path: im2col's rows read in its
     * copies (ResNet-18's 7x7 stage), strided, dilated, grouped */
    {{.in_c = 24, .out_c = 40, .k = 3, .pad = 1, .bias = 1}, 1, 7, 7},
    {{.in_c = 20, .out_c = 72, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 1, 14, 13},
    {{.in_c = 16, .out_c = 24, .k = 3, .pad = 2, .dilation = 2, .groups = 2}, 1, 9, 11},
    /* padding wider than the kernel's reach on the direct loops (few
     * channels): their stride-1 backward pads dy by D*(K-1) - P < 0 */
    {{.in_c = 1, .out_c = 4, .k = 3, .pad = 3}, 2, 12, 11},
    {{.in_c = 1, .out_c = 1, .k = 1, .pad = 1, .bias = 1}, 2, 8, 8},
    {{.in_c = 2, .out_c = 2, .k = 3, .pad = 4}, 3, 5, 6},
    /* 1x1 convolutions, one image per pass and several; a small map's
     * input gradient by the transposed convolution, several images a pass */
    {{.in_c = 8, .out_c = 12, .k = 1, .bias = 1}, 2, 28, 28},
    {{.in_c = 8, .out_c = 12, .k = 1}, 3, 5, 6},
    {{.in_c = 4, .out_c = 6, .k = 3, .pad = 1}, 3, 5, 6},
    /* MobileNet's depthwise 3x3 at stride 1, rows wider than a block */
    {{.in_c = 6, .out_c = 6, .k = 3, .pad = 1, .groups = 6, .bias = 1}, 3, 28, 29},
    /* the direct loops at strides above 1: MobileNet's
     * depthwise 3x3 stride 2 on even and odd sizes wider than a block of
     * 16 columns, stride 3, dilation across phases, two channels per
     * group, no padding, padding wider than the kernel's reach, 1 x 1 */
    {{.in_c = 8, .out_c = 8, .k = 3, .stride = 2, .pad = 1, .groups = 8}, 2, 56, 56},
    {{.in_c = 6, .out_c = 6, .k = 3, .stride = 2, .pad = 1, .groups = 6, .bias = 1}, 3, 37, 71},
    {{.in_c = 4, .out_c = 4, .k = 5, .stride = 3, .pad = 2, .groups = 4}, 2, 40, 35},
    {{.in_c = 3, .out_c = 3, .k = 3, .stride = 2, .pad = 2, .dilation = 2, .groups = 3}, 2, 19, 40},
    {{.in_c = 4, .out_c = 4, .k = 3, .stride = 2, .pad = 1, .groups = 2, .bias = 1}, 2, 21, 34},
    {{.in_c = 2, .out_c = 2, .k = 3, .stride = 2, .groups = 2}, 1, 9, 10},
    {{.in_c = 2, .out_c = 2, .k = 3, .stride = 2, .pad = 4, .groups = 2}, 2, 6, 7},
    {{.in_c = 2, .out_c = 2, .k = 1, .stride = 3, .pad = 1, .groups = 2, .bias = 1}, 1, 20, 22},
    /* the forward on column halves (stride 2, even widths): MobileNet's
     * 14x14 input (rows of 7 kept by whole vectors), an odd height, a 5x5
     * kernel (columns shifted both ways), two channels per group, one
     * output column, a 7x7 kernel (shifts of two columns) and a 1x1 one
     * (no padding, no shift) */
    {{.in_c = 4, .out_c = 4, .k = 3, .stride = 2, .pad = 1, .groups = 4, .bias = 1}, 2, 14, 14},
    {{.in_c = 3, .out_c = 3, .k = 3, .stride = 2, .pad = 1, .groups = 3}, 2, 13, 10},
    {{.in_c = 2, .out_c = 2, .k = 5, .stride = 2, .pad = 2, .groups = 2, .bias = 1}, 2, 11, 12},
    {{.in_c = 4, .out_c = 4, .k = 3, .stride = 2, .pad = 1, .groups = 2}, 1, 9, 6},
    {{.in_c = 1, .out_c = 1, .k = 3, .stride = 2, .pad = 1}, 3, 5, 2},
    {{.in_c = 2, .out_c = 2, .k = 7, .stride = 2, .pad = 3, .groups = 2}, 2, 17, 20},
    {{.in_c = 3, .out_c = 3, .k = 1, .stride = 2, .groups = 3, .bias = 1}, 2, 9, 8},
    /* input rows and columns that no tap reads (the last of 10 at stride
     * 3): a fresh dx must still be zero there */
    {{.in_c = 2, .out_c = 2, .k = 3, .stride = 3, .groups = 2}, 2, 10, 11},
    /* phase planes of rows wider than their scratch row (4096 floats),
     * column by column: the direct loops and the few-channel forward */
    {{.in_c = 1, .out_c = 1, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 1, 3, 4200},
    {{.in_c = 3, .out_c = 8, .k = 3, .stride = 2, .pad = 1}, 1, 3, 4200},
};

START_TEST(every_path_matches_the_definition) {
    const shape_case *sc = &path_cases[_i];
    fixture f;
    fixture_init(&f, sc->cfg, sc->N, sc->H, sc->W, 500 + _i);
    const size_t ny = heed_tensor_count(&f.y), nx = heed_tensor_count(&f.x);
    const int G = sc->cfg.groups ? sc->cfg.groups : 1, OC = sc->cfg.out_c;
    const size_t nw = (size_t)OC * (sc->cfg.in_c / G) * sc->cfg.k * sc->cfg.k;
    float *ref = malloc(ny * sizeof(float));
    naive_conv(&sc->cfg, &f.x, f.conv->w, f.conv->b, f.y.h, f.y.w, ref);
    double err = tu_max_rel_err(f.y.data, ref, ny);
    ck_assert_msg(err < 1e-5, "case %d: forward differs by %g", _i, err);

    heed_tensor dy = heed_tensor_view(f.wt, f.y.n, f.y.c, f.y.h, f.y.w);
    double *dx = calloc(nx, sizeof(double)), *dw = calloc(nw, sizeof(double));
    double *db = calloc((size_t)OC, sizeof(double));
    naive_backward(&sc->cfg, &f.x, f.conv->w, &dy, dx, dw, db);
    float *fdx = malloc(nx * sizeof(float)), *fdw = malloc(nw * sizeof(float));
    for (size_t i = 0; i < nx; i++) fdx[i] = (float)dx[i];
    for (size_t i = 0; i < nw; i++) fdw[i] = (float)dw[i];
    /* fresh 2: no dx wanted (NULL, as a network's first layer gets it in
     * training): the same dW and db. */
    for (int fresh = 0; fresh <= 2; fresh++) {
        heed_params_zero_grad(&f.p);
        /* Added to what dx holds (0.25 here, taken off after: a layer that
         * wrote over it fails); with dx_fresh (a sequence's hint) written
         * over whatever it holds, NaN included. */
        for (size_t i = 0; i < nx; i++) f.dx.data[i] = fresh ? NAN : 0.25f;
        f.conv->base.dx_fresh = fresh == 1;
        ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, fresh == 2 ? NULL : &f.dx),
                         HEED_OK);
        f.conv->base.dx_fresh = 0;
        for (size_t i = 0; fresh == 0 && i < nx; i++) f.dx.data[i] -= 0.25f;
        if (fresh < 2) {
            err = tu_max_rel_err(f.dx.data, fdx, nx);
            ck_assert_msg(err < 1e-4, "case %d fresh %d: dx differs by %g", _i, fresh, err);
        }
        /* Each dW entry sums N*OH*OW float products: its rounding grows
         * with that count (the large images' 34K terms reach 1.3e-4). */
        const double terms = (double)f.y.n * f.y.h * f.y.w;
        err = tu_max_rel_err(f.conv->dw, fdw, nw);
        ck_assert_msg(err < 1e-4 * fmax(1.0, terms / 1e4), "case %d fresh %d: dW differs by %g",
                      _i, fresh, err);
        for (int o = 0; f.conv->db && o < OC; o++)
            ck_assert_double_eq_tol(f.conv->db[o], db[o], 1e-4 * fmax(1.0, fabs(db[o])));
    }
    free(ref), free(dx), free(dw), free(db), free(fdx), free(fdw);
    fixture_free(&f);
}
END_TEST

/* One image too small for the shifted path reads im2col's rows where they
 * stand in its shifted copies (heed_gemm_rows), with the weights in place:
 * its output must be heed_gemm's product of the weights with im2col's
 * matrix, built here from the definition, bit for bit, on 1 and 3 threads
 * (the layer's route adds the same terms in the same order). */
static void im2col_by_definition(const heed_conv2d_cfg *c, const heed_tensor *x, int g, int OH,
                                 int OW, float *col) {
    const int S = c->stride ? c->stride : 1, D = c->dilation ? c->dilation : 1;
    const int G = c->groups ? c->groups : 1, ICg = c->in_c / G, K = c->k, L = OH * OW;
    for (int ci = 0; ci < ICg; ci++)
        for (int u = 0; u < K; u++)
            for (int v = 0; v < K; v++)
                for (int i = 0; i < OH; i++)
                    for (int j = 0; j < OW; j++) {
                        const int h = i * S - c->pad + u * D, w = j * S - c->pad + v * D;
                        const int in = h >= 0 && h < x->h && w >= 0 && w < x->w;
                        col[(((size_t)ci * K + u) * K + v) * L + i * OW + j] =
                            in ? x->data[heed_tensor_index(x, 0, g * ICg + ci, h, w)] : 0.0f;
                    }
}

START_TEST(one_small_image_equals_im2col_bit_for_bit) {
    static const shape_case cases[] = {
        {{.in_c = 24, .out_c = 40, .k = 3, .pad = 1}, 1, 7, 7},
        {{.in_c = 512, .out_c = 64, .k = 3, .pad = 1}, 1, 7, 7}, /* threads share it */
        {{.in_c = 20, .out_c = 72, .k = 3, .stride = 2, .pad = 1}, 1, 14, 13},
        {{.in_c = 256, .out_c = 64, .k = 3, .stride = 2, .pad = 1}, 1, 14, 14}, /* threads share it */
        {{.in_c = 16, .out_c = 24, .k = 3, .pad = 2, .dilation = 2, .groups = 2}, 1, 9, 11},
        {{.in_c = 8, .out_c = 10, .k = 5, .stride = 3, .pad = 2}, 1, 20, 17},
        {{.in_c = 8, .out_c = 6, .k = 3, .stride = 4, .pad = 1}, 1, 25, 25},
    };
    const shape_case *sc = &cases[_i];
    fixture f;
    fixture_init(&f, sc->cfg, sc->N, sc->H, sc->W, 900 + _i);
    const int G = sc->cfg.groups ? sc->cfg.groups : 1, OCg = sc->cfg.out_c / G;
    const int R = sc->cfg.in_c / G * sc->cfg.k * sc->cfg.k, L = f.y.h * f.y.w;
    float *col = malloc((size_t)R * L * sizeof(float));
    float *want = malloc(heed_tensor_count(&f.y) * sizeof(float));
    for (int g = 0; g < G; g++) {
        im2col_by_definition(&sc->cfg, &f.x, g, f.y.h, f.y.w, col);
        ck_assert_int_eq(heed_gemm(0, 0, OCg, L, R, 1.0f, f.conv->w + (size_t)g * OCg * R, R, col, L,
                                   0.0f, want + (size_t)g * OCg * L, L),
                         HEED_OK);
    }
    for (int threads = 1; threads <= 3; threads += 2) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        /* Poisoned: a share nobody computes stays NaN. */
        for (size_t i = 0; i < heed_tensor_count(&f.y); i++) f.y.data[i] = NAN;
        ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
        ck_assert_msg(!memcmp(f.y.data, want, heed_tensor_count(&f.y) * sizeof(float)),
                      "case %d on %d threads differs from im2col's product", _i, threads);
    }
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    free(col), free(want);
    fixture_free(&f);
}
END_TEST

/* The few-channel route's register blocks follow heed_gemm's kernel (two
 * vectors of positions with AVX-512, one otherwise): each against the
 * definition, at stride 1 and 2, with dilation, in bands of rows. */
START_TEST(few_channel_blocks_match_the_definition_on_every_kernel) {
    static const char *kernels[] = {"avx512", "avx2", "generic"};
    static const shape_case cases[] = {
        {{.in_c = 1, .out_c = 32, .k = 3, .pad = 1, .bias = 1}, 2, 28, 28},
        {{.in_c = 3, .out_c = 10, .k = 7, .stride = 2, .pad = 3}, 1, 45, 43},
        {{.in_c = 2, .out_c = 9, .k = 3, .stride = 3, .pad = 2, .dilation = 2}, 2, 31, 29},
        {{.in_c = 1, .out_c = 8, .k = 3, .pad = 1}, 1, 200, 201},
    };
    for (int kk = 0; kk < 3; kk++) {
        if (!heed_gemm_kernel_available(kernels[kk])) continue;
        ck_assert_int_eq(heed_gemm_set_kernel(kernels[kk]), HEED_OK);
        for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
            const shape_case *sc = &cases[ci];
            fixture f;
            fixture_init(&f, sc->cfg, sc->N, sc->H, sc->W, 600 + ci);
            const size_t ny = heed_tensor_count(&f.y);
            float *ref = malloc(ny * sizeof(float));
            naive_conv(&sc->cfg, &f.x, f.conv->w, f.conv->b, f.y.h, f.y.w, ref);
            const double err = tu_max_rel_err(f.y.data, ref, ny);
            ck_assert_msg(err < 1e-5, "%s case %d: forward differs by %g", kernels[kk], ci, err);
            free(ref);
            fixture_free(&f);
        }
    }
    heed_gemm_set_kernel(NULL);
}
END_TEST

START_TEST(fold_bn_equals_conv_then_batch_norm) {
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        heed_conv2d_cfg cfg = {.in_c = 4, .out_c = 6, .k = 3, .pad = 1, .groups = 2,
                               .bias = with_bias};
        fixture f;
        fixture_init(&f, cfg, 2, 6, 5, 300 + with_bias);
        float gamma[6], beta[6], mean[6], var[6];
        tu_fill_uniform(gamma, 6, 0.5f, 2.0f, 1);
        tu_fill_uniform(beta, 6, -1.0f, 1.0f, 2);
        tu_fill_uniform(mean, 6, -0.5f, 0.5f, 3);
        tu_fill_uniform(var, 6, 0.1f, 3.0f, 4);
        const float eps = 1e-5f;
        size_t ny = heed_tensor_count(&f.y), plane = (size_t)f.y.h * f.y.w;
        float *want = malloc(ny * sizeof(float));
        for (size_t i = 0; i < ny; i++) {
            int o = (int)(i / plane % 6);
            want[i] = (float)(gamma[o] * (f.y.data[i] - mean[o]) / sqrt((double)var[o] + eps) +
                              beta[o]);
        }
        ck_assert_int_eq(heed_conv2d_fold_bn(f.conv, gamma, beta, mean, var, eps), HEED_OK);
        ck_assert_ptr_nonnull(f.conv->b);
        ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
        double err = tu_max_rel_err(f.y.data, want, ny);
        ck_assert_msg(err < 1e-5, "bias %d: folded conv differs by %g", with_bias, err);
        if (!with_bias) ck_assert_ptr_eq(f.conv->b, f.conv->folded_b);
        free(want);
        fixture_free(&f); /* releases the folded bias: checked by ASan */
    }
    /* A variance that makes var + eps non-positive is refused untouched. */
    fixture f;
    fixture_init(&f, (heed_conv2d_cfg){.in_c = 1, .out_c = 2, .k = 1}, 1, 2, 2, 9);
    float w0 = f.conv->w[0];
    ck_assert_int_eq(heed_conv2d_fold_bn(f.conv, NULL, NULL, (float[]){0, 0}, (float[]){1, -1}, 0),
                     HEED_ERR_ARG);
    ck_assert_float_eq(f.conv->w[0], w0);
    ck_assert_ptr_null(f.conv->b);
    fixture_free(&f);
}
END_TEST

/* gamma and beta may be NULL (a batch norm without affine parameters):
 * scale 1 and shift 0 then, as torch's BatchNorm2d(affine=False). Each
 * alone, and both, against (conv(x) - mean) / sqrt(var + eps) computed from
 * the unfolded layer's output. */
START_TEST(fold_bn_without_gamma_or_beta) {
    for (int which = 0; which < 3; which++) { /* NULL: 0 both, 1 gamma, 2 beta */
        heed_conv2d_cfg cfg = {.in_c = 3, .out_c = 4, .k = 3, .pad = 1, .bias = which != 1};
        fixture f;
        fixture_init(&f, cfg, 2, 5, 6, 320 + which);
        float gamma[4], beta[4], mean[4], var[4];
        tu_fill_uniform(gamma, 4, 0.5f, 2.0f, 11);
        tu_fill_uniform(beta, 4, -1.0f, 1.0f, 12);
        tu_fill_uniform(mean, 4, -0.5f, 0.5f, 13);
        tu_fill_uniform(var, 4, 0.1f, 3.0f, 14);
        const float *g = which == 2 ? gamma : NULL, *b = which == 1 ? beta : NULL;
        const float eps = 1e-3f;
        const size_t ny = heed_tensor_count(&f.y), plane = (size_t)f.y.h * f.y.w;
        float *want = malloc(ny * sizeof(float));
        for (size_t i = 0; i < ny; i++) {
            const int o = (int)(i / plane % 4);
            want[i] = (float)((g ? g[o] : 1.0) * (f.y.data[i] - mean[o]) /
                                  sqrt((double)var[o] + eps) +
                              (b ? b[o] : 0.0));
        }
        ck_assert_int_eq(heed_conv2d_fold_bn(f.conv, g, b, mean, var, eps), HEED_OK);
        ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
        const double err = tu_max_rel_err(f.y.data, want, ny);
        ck_assert_msg(err < 1e-5, "NULL %s: folded conv differs by %g",
                      which == 0 ? "gamma and beta" : which == 1 ? "gamma" : "beta", err);
        free(want);
        fixture_free(&f);
    }
}
END_TEST

/* The weights reordered for the shifted path are kept between forwards;
 * a change to any weight, made straight into the array as an optimizer or
 * a loaded model does, must show in the next forward. */
START_TEST(changed_weights_show_in_the_next_forward) {
    /* 8 input channels: with 4 or fewer the few-channel route would run. */
    const heed_conv2d_cfg cfg = {.in_c = 8, .out_c = 6, .k = 3, .pad = 1, .bias = 1};
    fixture f;
    fixture_init(&f, cfg, 2, 20, 21, 77);
    const size_t ny = heed_tensor_count(&f.y);
    float *ref = malloc(ny * sizeof(float));
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
        naive_conv(&cfg, &f.x, f.conv->w, f.conv->b, f.y.h, f.y.w, ref);
        ck_assert_msg(tu_max_rel_err(f.y.data, ref, ny) < 1e-5, "round %d", round);
        f.conv->w[round * 37] += 0.5f; /* a different weight each round */
    }
    /* A backward in between reuses the buffer: the forward after it too. */
    heed_tensor dy = heed_tensor_view(f.wt, f.y.n, f.y.c, f.y.h, f.y.w);
    ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, &f.dx), HEED_OK);
    ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
    naive_conv(&cfg, &f.x, f.conv->w, f.conv->b, f.y.h, f.y.w, ref);
    ck_assert(tu_max_rel_err(f.y.data, ref, ny) < 1e-5);
    free(ref);
    fixture_free(&f);
}
END_TEST

/* A frozen layer may use its kept reorder unchecked, but only the one
 * made under the same freeze: weights changed while thawed must show after
 * the next freeze, and after a backward. Small weights (checked before the
 * parallel region) and large ones on two threads (checked by both). */
START_TEST(refrozen_weights_show_in_the_next_forward) {
    static const shape_case cases[] = {
        {{.in_c = 8, .out_c = 6, .k = 3, .pad = 1, .bias = 1}, 2, 20, 21},
        {{.in_c = 64, .out_c = 128, .k = 3, .pad = 1}, 1, 14, 14},
    };
    const shape_case *sc = &cases[_i];
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
#endif
    fixture f;
    fixture_init(&f, sc->cfg, sc->N, sc->H, sc->W, 78);
    const size_t ny = heed_tensor_count(&f.y);
    float *ref = malloc(ny * sizeof(float));
    for (int round = 0; round < 3; round++) {
        heed_layer_set_frozen(&f.conv->base, 1);
        for (int step = 0; step < 3; step++) {
            if (step == 2) { /* a backward while frozen, then new weights */
                if (round != 1) break;
                heed_tensor dy = heed_tensor_view(f.wt, f.y.n, f.y.c, f.y.h, f.y.w);
                ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, &f.dx), HEED_OK);
                f.conv->w[5] -= 0.25f;
            }
            ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
            naive_conv(&sc->cfg, &f.x, f.conv->w, f.conv->b, f.y.h, f.y.w, ref);
            ck_assert_msg(tu_max_rel_err(f.y.data, ref, ny) < 1e-5, "round %d step %d", round,
                          step);
        }
        heed_layer_set_frozen(&f.conv->base, 0);
        f.conv->w[round * 37] += 0.5f; /* while thawed */
    }
    free(ref);
    fixture_free(&f);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
}
END_TEST

START_TEST(threaded_matches_one_thread) {
#ifdef _OPENMP
    /* Images in parallel (forward passes, backward chunks on each path,
     * the strided depthwise forward on column halves),
     * one image cut into bands of rows (shifted copies; im2col of a large
     * strided image) or blocks of output channels (a narrow image), threads
     * inside the products; the shifted path's batch-1 shares at the
     * threads' learnt speeds, equal and skewed either way; and 3 threads,
     * which share out channels and output rows unevenly. */
    static const shape_case cases[] = {
        {{.in_c = 16, .out_c = 16, .k = 3, .pad = 1, .bias = 1}, 4, 20, 21},
        {{.in_c = 16, .out_c = 16, .k = 3, .pad = 1, .bias = 1}, 1, 40, 41},
        {{.in_c = 64, .out_c = 64, .k = 3, .pad = 1, .bias = 1}, 1, 14, 14},
        {{.in_c = 16, .out_c = 16, .k = 3, .pad = 1, .groups = 16, .bias = 1}, 4, 20, 21},
        {{.in_c = 16, .out_c = 16, .k = 3, .pad = 1, .groups = 16, .bias = 1}, 8, 40, 41},
        {{.in_c = 16, .out_c = 16, .k = 3, .stride = 2, .pad = 1, .groups = 16, .bias = 1}, 8, 14, 14},
        {{.in_c = 2, .out_c = 1, .k = 7, .pad = 3}, 16, 28, 28},
        {{.in_c = 16, .out_c = 24, .k = 1, .bias = 1}, 4, 20, 21},
        {{.in_c = 16, .out_c = 16, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 16, 40, 41},
        {{.in_c = 16, .out_c = 24, .k = 1, .bias = 1}, 16, 20, 21},
        {{.in_c = 1, .out_c = 16, .k = 3, .pad = 1, .bias = 1}, 4, 20, 21},
        {{.in_c = 3, .out_c = 8, .k = 7, .stride = 2, .pad = 3, .bias = 1}, 1, 160, 150},
        /* Over 64 output channels, whose products do not pad their columns:
         * bands whose width is not whole vectors would move the columns that
         * heed_gemm computes by dot products (a different order of sums). */
        {{.in_c = 8, .out_c = 72, .k = 3, .pad = 1, .bias = 1}, 1, 28, 28},
        {{.in_c = 8, .out_c = 72, .k = 3, .pad = 1, .bias = 1}, 3, 28, 28},
        {{.in_c = 8, .out_c = 72, .k = 3, .pad = 1, .bias = 1}, 1, 27, 29},
        {{.in_c = 3, .out_c = 72, .k = 5, .stride = 2, .pad = 2}, 1, 150, 151},
        {{.in_c = 6, .out_c = 72, .k = 5, .stride = 2, .pad = 2}, 1, 150, 151},
        /* Strided on row phases: one narrow image by blocks of output
         * channels (3x3 and 1x1), a large one in bands. */
        {{.in_c = 32, .out_c = 72, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 1, 28, 28},
        {{.in_c = 64, .out_c = 72, .k = 1, .stride = 2}, 1, 14, 14},
        {{.in_c = 24, .out_c = 72, .k = 3, .stride = 2, .pad = 1}, 1, 121, 119},
        /* A 1x1 strided kernel on an image wide enough for bands: by blocks
         * of output channels on 2 threads, in bands on 3. */
        {{.in_c = 16, .out_c = 32, .k = 1, .stride = 2, .bias = 1}, 1, 60, 58},
        /* One small image (im2col's rows in the copies), its rows of the
         * product at the threads' speeds: stride 1 and 2. */
        {{.in_c = 192, .out_c = 64, .k = 3, .pad = 1, .bias = 1}, 1, 7, 7},
        {{.in_c = 96, .out_c = 64, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 1, 14, 14},
    };
    int saved = omp_get_max_threads();
    for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        fixture f;
        fixture_init(&f, cases[ci].cfg, cases[ci].N, cases[ci].H, cases[ci].W, 400 + ci);
        heed_tensor dy = heed_tensor_view(f.wt, f.y.n, f.y.c, f.y.h, f.y.w);
        size_t ny = heed_tensor_count(&f.y), nx = heed_tensor_count(&f.x);
        float *out[5][3];
        const float skew[5][2] = {{0, 0}, {0, 0}, {1.9f, 0.55f}, {0.55f, 1.9f}, {0, 0}};
        for (int t = 0; t < 5; t++) {
            omp_set_num_threads(t == 0 ? 1 : t == 4 ? 3 : (saved > 1 ? saved : 2));
            memset(f.conv->thread_speed, 0, sizeof f.conv->thread_speed);
            memcpy(f.conv->thread_speed, skew[t], sizeof skew[t]);
            heed_params_zero_grad(&f.p);
            heed_tensor_zero(&f.dx);
            /* Poisoned: a share nobody computes stays NaN. */
            for (size_t i = 0; i < ny; i++) f.y.data[i] = NAN;
            ck_assert_int_eq(heed_conv2d_forward(f.conv, &f.x, &f.y), HEED_OK);
            ck_assert_int_eq(heed_conv2d_backward(f.conv, &f.x, &dy, &f.dx), HEED_OK);
            out[t][0] = malloc(ny * sizeof(float));
            out[t][1] = malloc(nx * sizeof(float));
            out[t][2] = malloc(f.p.total * sizeof(float));
            memcpy(out[t][0], f.y.data, ny * sizeof(float));
            memcpy(out[t][1], f.dx.data, nx * sizeof(float));
            memcpy(out[t][2], f.p.grads, f.p.total * sizeof(float));
        }
        omp_set_num_threads(saved);
        /* The same sums in the same order: bit for bit. */
        for (int t = 1; t < 5; t++) {
            ck_assert_msg(!memcmp(out[0][0], out[t][0], ny * sizeof(float)), "case %d run %d: y",
                          ci, t);
            ck_assert_msg(!memcmp(out[0][1], out[t][1], nx * sizeof(float)), "case %d run %d: dx",
                          ci, t);
            ck_assert_msg(!memcmp(out[0][2], out[t][2], f.p.total * sizeof(float)),
                          "case %d run %d: grads", ci, t);
        }
        for (int t = 0; t < 5; t++)
            for (int k = 0; k < 3; k++) free(out[t][k]);
        fixture_free(&f);
    }
#endif
}
END_TEST

START_TEST(layers_run_inside_a_callers_parallel_region) {
#ifdef _OPENMP
    /* Two threads of the caller's own team each run a layer of their own
     * (a few-channel first layer, a shifted 3x3): each layer then runs on
     * its one thread and computes all of its output, as alone. */
    static const shape_case cases[] = {
        {{.in_c = 3, .out_c = 8, .k = 7, .stride = 2, .pad = 3, .bias = 1}, 1, 60, 58},
        {{.in_c = 16, .out_c = 16, .k = 3, .pad = 1, .bias = 1}, 1, 40, 41},
    };
    for (int ci = 0; ci < 2; ci++) {
        fixture f[2];
        for (int t = 0; t < 2; t++)
            fixture_init(&f[t], cases[ci].cfg, cases[ci].N, cases[ci].H, cases[ci].W, 700 + ci);
        const size_t ny = heed_tensor_count(&f[0].y);
        float *want = malloc(ny * sizeof(float));
        ck_assert_int_eq(heed_conv2d_forward(f[0].conv, &f[0].x, &f[0].y), HEED_OK);
        memcpy(want, f[0].y.data, ny * sizeof(float));
        heed_status st[2] = {HEED_ERR_ARG, HEED_ERR_ARG};
        for (int t = 0; t < 2; t++) heed_tensor_zero(&f[t].y);
#pragma omp parallel num_threads(2)
        {
            const int t = omp_get_thread_num();
            if (t < 2) st[t] = heed_conv2d_forward(f[t].conv, &f[t].x, &f[t].y);
        }
        for (int t = 0; t < 2; t++) {
            ck_assert_int_eq(st[t], HEED_OK);
            ck_assert_msg(!memcmp(want, f[t].y.data, ny * sizeof(float)), "case %d thread %d", ci, t);
        }
        free(want);
        for (int t = 0; t < 2; t++) fixture_free(&f[t]);
    }
#endif
}
END_TEST

START_TEST(layer_interface_and_parameters) {
    heed_params p = {0};
    heed_conv2d *c;
    heed_conv2d_cfg cfg = {.in_c = 4, .out_c = 8, .k = 3, .stride = 2, .pad = 1, .groups = 2,
                           .bias = 1};
    ck_assert_int_eq(heed_conv2d_new(&c, &cfg, (int[3]){4, 9, 10}, &p, "stage1.conv"), HEED_OK);
    ck_assert_str_eq(c->base.ops->type, "conv");
    ck_assert_int_eq(c->base.out_c, 8); ck_assert_int_eq(c->base.out_h, 5);
    ck_assert_int_eq(c->base.out_w, 5);
    ck_assert_int_eq(c->cfg.dilation, 1);
    /* 2 * OC * OH * OW * IC/G * K * K */
    ck_assert_double_eq_tol(heed_layer_flops(&c->base), 2.0 * 8 * 25 * 2 * 9, 1e-9);
    heed_param *w = heed_params_find(&p, "stage1.conv.weight");
    heed_param *b = heed_params_find(&p, "stage1.conv.bias");
    ck_assert_ptr_nonnull(w); ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(w->shape[0], 8); ck_assert_int_eq(w->shape[1], 2);
    ck_assert_int_eq(w->shape[2], 3); ck_assert_int_eq(w->shape[3], 3);
    ck_assert_int_eq(w->init, HEED_INIT_HE_NORMAL); ck_assert_int_eq(w->fan_in, 18);
    ck_assert_int_eq(w->flags, HEED_PARAM_DECAY);
    ck_assert_int_eq(b->init, HEED_INIT_UNIFORM); ck_assert_int_eq(b->fan_in, 18);
    ck_assert_int_eq(b->flags, 0); ck_assert_uint_eq(b->count, 8);
    /* Forward before the parameters exist is refused. */
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 9, 10), HEED_OK);
    ck_assert_int_eq(heed_conv2d_forward(c, &x, &y), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not allocated"));
    ck_assert_int_eq(heed_params_alloc(&p, 5), HEED_OK);
    ck_assert_ptr_eq(c->w, p.values + w->offset); ck_assert_ptr_eq(c->db, p.grads + b->offset);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 3);
    ck_assert_int_eq(heed_layer_forward(&c->base, &x, &y), HEED_OK);
    ck_assert_int_eq(y.n, 2); ck_assert_int_eq(y.c, 8); ck_assert_int_eq(y.h, 5);
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 4, 9, 10), HEED_OK);
    ck_assert_int_eq(heed_layer_backward(&c->base, &x, &y, &y, &dx), HEED_OK);
    /* Steady state reuses the work buffers. */
    float *col = c->own_work.col.data;
    ck_assert_int_eq(heed_layer_forward(&c->base, &x, &y), HEED_OK);
    ck_assert_ptr_eq(c->own_work.col.data, col);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dx);
    heed_layer_free(&c->base);
    heed_params_free(&p);
}
END_TEST

/* A NULL configuration is refused like a bad one (it was dereferenced). */
START_TEST(null_config_is_refused) {
    heed_params p = {0};
    heed_conv2d *c = (heed_conv2d *)&p;
    ck_assert_int_eq(heed_conv2d_new(&c, NULL, (int[3]){3, 8, 8}, &p, "c"), HEED_ERR_ARG);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(heed_last_error(), "conv c: no configuration given"), "%s",
                  heed_last_error());
    ck_assert_int_eq(p.count, 0);
}
END_TEST

START_TEST(bad_configs_and_shapes_are_refused) {
    heed_params p = {0};
    heed_conv2d *c = (heed_conv2d *)&p; /* must be reset to NULL on failure */
    const int in[3] = {4, 8, 8};
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 4, .out_c = 6, .k = 3,
                                                             .groups = 4}, in, &p, "g"),
                     HEED_ERR_ARG);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "groups"));
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 4, .out_c = 6, .k = 0}, in,
                                     &p, "k"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 4, .out_c = 6, .k = 3,
                                                             .pad = -1}, in, &p, "p"),
                     HEED_ERR_ARG);
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 4, .out_c = 6, .k = 3,
                                                             .stride = -2}, in, &p, "s"),
                     HEED_ERR_ARG);
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 3, .out_c = 6, .k = 3}, in,
                                     &p, "c"), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 4, .out_c = 6, .k = 5,
                                                             .dilation = 2}, in, &p, "big"),
                     HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "does not fit"));
    ck_assert_int_eq(heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 4, .out_c = 6, .k = 3}, in,
                                     NULL, "np"), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 0); /* nothing registered by the failures */

    heed_conv2d_cfg cfg = {.in_c = 4, .out_c = 6, .k = 3, .pad = 1, .bias = 1};
    ck_assert_int_eq(heed_conv2d_new(&c, &cfg, in, &p, "conv1"), HEED_OK);
    heed_conv2d *dup;
    ck_assert_int_eq(heed_conv2d_new(&dup, &cfg, in, &p, "conv1"), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 2);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);

    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 8, 7), HEED_OK);
    ck_assert_int_eq(heed_conv2d_forward(c, &x, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 4, 8, 7)"));
    heed_tensor_free(&x);
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 8, 8), HEED_OK);
    ck_assert_int_eq(heed_conv2d_forward(c, &x, &x), HEED_ERR_ARG);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 6, 8, 7), HEED_OK);
    ck_assert_int_eq(heed_conv2d_backward(c, &x, &dy, NULL), HEED_ERR_SHAPE);
    heed_tensor_free(&dy);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 6, 8, 8), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 4, 8, 8), HEED_OK);
    ck_assert_int_eq(heed_conv2d_backward(c, &x, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_conv2d_backward(c, &x, &dy, NULL), HEED_OK);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_layer_free(&c->base);
    heed_params_free(&p);
}
END_TEST

Suite *heed_suite_conv2d(void) {
    Suite *s = suite_create("conv2d");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, out_size_matches_pytorch_formula);
    tcase_add_test(tc, hand_case_stride2_pad1);
    tcase_add_test(tc, hand_case_groups_depthwise_dilation);
    tcase_add_loop_test(tc, matches_naive_convolution, 0,
                        (int)(sizeof big_cases / sizeof big_cases[0]));
    tcase_add_loop_test(tc, gradients_match_finite_differences, 0,
                        (int)(sizeof grad_cases / sizeof grad_cases[0]));
    tcase_add_loop_test(tc, every_path_matches_the_definition, 0,
                        (int)(sizeof path_cases / sizeof path_cases[0]));
    tcase_add_loop_test(tc, one_small_image_equals_im2col_bit_for_bit, 0, 7);
    tcase_add_test(tc, few_channel_blocks_match_the_definition_on_every_kernel);
    tcase_add_test(tc, fold_bn_equals_conv_then_batch_norm);
    tcase_add_test(tc, fold_bn_without_gamma_or_beta);
    tcase_add_test(tc, threaded_matches_one_thread);
    tcase_add_test(tc, layers_run_inside_a_callers_parallel_region);
    tcase_add_test(tc, changed_weights_show_in_the_next_forward);
    tcase_add_loop_test(tc, refrozen_weights_show_in_the_next_forward, 0, 2);
    tcase_add_test(tc, layer_interface_and_parameters);
    tcase_add_test(tc, bad_configs_and_shapes_are_refused);
    tcase_add_test(tc, null_config_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
