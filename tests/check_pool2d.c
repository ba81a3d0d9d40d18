/* check_pool2d.c -- max/average pooling, global pooling and CBAM's channel
 * pool: hand-computed cases, ties, gradient checks, threads and errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#endif

#include "gemm.h"
#include "max3s2_impl.h"
#include "omp_impl.h"
#include "pool2d.h"
#include "testutil.h"

static heed_pool2d *make_pool(heed_pool2d_cfg cfg, int C, int H, int W) {
    heed_pool2d *l;
    ck_assert_int_eq(heed_pool2d_new(&l, &cfg, (int[3]){C, H, W}, NULL, "pool"), HEED_OK);
    return l;
}

/* Distinct values (a shuffled ramp with steps of 0.01) so that no window
 * has a tie and a small perturbation never changes a maximum. */
static void fill_distinct(float *v, int n, uint64_t seed) {
    int *idx = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) idx[i] = i;
    heed_rng r;
    heed_rng_seed(&r, seed, 1);
    heed_rng_shuffle(&r, idx, n);
    for (int i = 0; i < n; i++) v[i] = 0.01f * (float)(idx[i] - n / 2);
    free(idx);
}

START_TEST(output_sizes_follow_pytorch) {
    struct { int in, k, s, p, out; } cases[] = {
        {28, 2, 2, 0, 14}, {112, 3, 2, 1, 56}, {7, 3, 2, 1, 4}, {5, 3, 1, 0, 3},
        {4, 2, 0, 0, 2},   {7, 2, 2, 0, 3},    {6, 3, 3, 1, 2}, {1, 1, 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        heed_pool2d *l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = cases[i].k,
                                                     .stride = cases[i].s, .pad = cases[i].p},
                                   3, cases[i].in, cases[i].in + 1);
        ck_assert_msg(l->base.out_h == cases[i].out, "case %zu: %d", i, l->base.out_h);
        /* Width in + 1, by counting window starts that fit. */
        int s = cases[i].s ? cases[i].s : cases[i].k, count = 0;
        for (int st = -cases[i].p; st + cases[i].k <= cases[i].in + 1 + cases[i].p; st += s) count++;
        ck_assert_int_eq(l->base.out_w, count);
        ck_assert_int_eq(l->base.out_c, 3);
        heed_layer_free(&l->base);
    }
}
END_TEST

START_TEST(max_pool_pads_with_minus_infinity) {
    heed_pool2d *l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 3, .stride = 2,
                                                 .pad = 1}, 1, 4, 4);
    float xs[16];
    for (int i = 0; i < 16; i++) xs[i] = -(float)(i + 1);
    heed_tensor x = heed_tensor_view(xs, 1, 1, 4, 4), y = {0};
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
    const float want[4] = {-1, -2, -5, -6}; /* zero padding would give 0s */
    for (int i = 0; i < 4; i++) ck_assert_float_eq(y.data[i], want[i]);
    /* Gradient goes to those pixels; pixel 5 (-6) is the max of one window. */
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 1, 4, 4), HEED_OK);
    float dys[4] = {1, 2, 3, 4};
    heed_tensor dy = heed_tensor_view(dys, 1, 1, 2, 2);
    ck_assert_int_eq(heed_pool2d_backward(l, &x, &dy, &dx), HEED_OK);
    float want_dx[16] = {0};
    want_dx[0] = 1, want_dx[1] = 2, want_dx[4] = 3, want_dx[5] = 4;
    for (int i = 0; i < 16; i++) ck_assert_float_eq(dx.data[i], want_dx[i]);
    heed_tensor_free(&y), heed_tensor_free(&dx);
    heed_layer_free(&l->base);

    /* Windows of -infs only (nothing beats the initial -inf): y is -inf and,
     * as in PyTorch (whose index starts at the window's first pixel inside
     * the input), dy goes to that pixel, row max(0, 2i-1), column
     * max(0, 2j-1), not to the row's first column. */
    l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 3, .stride = 2, .pad = 1}, 1, 5, 5);
    float xi[25], dyi[9], want_i[25] = {0};
    for (int i = 0; i < 25; i++) xi[i] = -INFINITY;
    for (int i = 0; i < 9; i++) dyi[i] = (float)(i + 1);
    heed_tensor x5 = heed_tensor_view(xi, 1, 1, 5, 5), dy5 = heed_tensor_view(dyi, 1, 1, 3, 3),
                y5 = {0}, dx5;
    ck_assert_int_eq(heed_tensor_alloc(&dx5, 1, 1, 5, 5), HEED_OK);
    ck_assert_int_eq(heed_pool2d_forward(l, &x5, &y5), HEED_OK);
    for (int i = 0; i < 9; i++) ck_assert(isinf(y5.data[i]) && y5.data[i] < 0);
    ck_assert_int_eq(heed_pool2d_backward(l, &x5, &dy5, &dx5), HEED_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            want_i[(i ? 2 * i - 1 : 0) * 5 + (j ? 2 * j - 1 : 0)] += dyi[i * 3 + j];
    for (int i = 0; i < 25; i++)
        ck_assert_msg(dx5.data[i] == want_i[i], "-inf windows: dx[%d] = %g, want %g", i,
                      dx5.data[i], want_i[i]);
    heed_tensor_free(&y5), heed_tensor_free(&dx5);
    heed_layer_free(&l->base);
}
END_TEST

START_TEST(max_pool_ties_go_to_the_first) {
    heed_pool2d *l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 2}, 1, 2, 4);
    float xs[8] = {1, 3, 5, 5, 3, 2, 5, 5};
    heed_tensor x = heed_tensor_view(xs, 1, 1, 2, 4), y = {0}, dx;
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
    ck_assert_float_eq(y.data[0], 3); ck_assert_float_eq(y.data[1], 5);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 1, 2, 4), HEED_OK);
    float dys[2] = {1, 1};
    heed_tensor dy = heed_tensor_view(dys, 1, 1, 1, 2);
    ck_assert_int_eq(heed_pool2d_backward(l, &x, &dy, &dx), HEED_OK);
    const float want[8] = {0, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) ck_assert_float_eq(dx.data[i], want[i]);
    /* NaN wins, as in PyTorch, so that a diverged value stays visible. */
    xs[5] = NAN;
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
    ck_assert(isnan(y.data[0]));
    ck_assert_float_eq(y.data[1], 5);
    heed_tensor g = {0};
    ck_assert_int_eq(heed_global_max_pool_forward(&x, &g), HEED_OK);
    ck_assert(isnan(g.data[0]));
    heed_tensor_free(&g);
    heed_tensor_free(&y), heed_tensor_free(&dx);
    heed_layer_free(&l->base);
}
END_TEST

START_TEST(avg_pool_counts_padding_unless_excluded) {
    float xs[16];
    for (int i = 0; i < 16; i++) xs[i] = (float)(i + 1);
    heed_tensor x = heed_tensor_view(xs, 1, 1, 4, 4), y = {0}, dx;
    /* Window sums 1+2+5+6, 2+3+4+6+7+8, 5+6+9+10+13+14, 6+7+8+10+11+12+14+15+16
     * over 4, 6, 6 and 9 input pixels. */
    const float sums[4] = {14, 30, 57, 99}, inside[4] = {4, 6, 6, 9};
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 1, 4, 4), HEED_OK);
    for (int ex = 0; ex <= 1; ex++) {
        heed_pool2d *l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_AVG, .k = 3, .stride = 2,
                                                     .pad = 1, .exclude_pad = ex}, 1, 4, 4);
        ck_assert_str_eq(l->base.ops->type, "avgpool");
        ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
        for (int i = 0; i < 4; i++)
            ck_assert_float_eq_tol(y.data[i], sums[i] / (ex ? inside[i] : 9.0f), 1e-5f);
        /* dy = 1 at window 0 only: its 4 pixels get 1/divisor each. */
        heed_tensor_zero(&dx);
        float dys[4] = {1, 0, 0, 0};
        heed_tensor dy = heed_tensor_view(dys, 1, 1, 2, 2);
        ck_assert_int_eq(heed_pool2d_backward(l, &x, &dy, &dx), HEED_OK);
        float g = ex ? 0.25f : 1.0f / 9.0f;
        for (int i = 0; i < 16; i++)
            ck_assert_float_eq_tol(dx.data[i], (i == 0 || i == 1 || i == 4 || i == 5) ? g : 0.0f,
                                   1e-7f);
        heed_layer_free(&l->base);
    }
    heed_tensor_free(&y), heed_tensor_free(&dx);
}
END_TEST

typedef struct pool_ctx {
    heed_pool2d *pool;
    heed_global_pool *global; /* neither set: the channel pool */
    heed_tensor x, y;
    float *wt;
} pool_ctx;

static void pool_run(pool_ctx *c) {
    if (c->pool)
        ck_assert_int_eq(heed_pool2d_forward(c->pool, &c->x, &c->y), HEED_OK);
    else if (c->global)
        ck_assert_int_eq(heed_layer_forward(&c->global->base, &c->x, &c->y), HEED_OK);
    else
        ck_assert_int_eq(heed_channel_pool_forward(&c->x, &c->y), HEED_OK);
}

static double pool_loss(void *ctx) {
    pool_ctx *c = ctx;
    pool_run(c);
    return tu_weighted_sum(c->y.data, c->wt, heed_tensor_count(&c->y));
}

/* Gradient check of whichever pooling ctx holds, on x (N, C, H, W). */
static void check_pool_gradient(pool_ctx *c, int N, int C, int H, int W, uint64_t seed) {
    ck_assert_int_eq(heed_tensor_alloc(&c->x, N, C, H, W), HEED_OK);
    fill_distinct(c->x.data, (int)heed_tensor_count(&c->x), seed);
    c->y = (heed_tensor){0};
    pool_run(c);
    size_t ny = heed_tensor_count(&c->y);
    c->wt = malloc(ny * sizeof(float));
    tu_fill_uniform(c->wt, ny, -1, 1, seed);
    heed_tensor dy = heed_tensor_view(c->wt, c->y.n, c->y.c, c->y.h, c->y.w), dx;
    ck_assert_int_eq(heed_tensor_alloc(&dx, N, C, H, W), HEED_OK);
    if (c->pool)
        ck_assert_int_eq(heed_pool2d_backward(c->pool, &c->x, &dy, &dx), HEED_OK);
    else if (c->global)
        ck_assert_int_eq(heed_layer_backward(&c->global->base, &c->x, &c->y, &dy, &dx), HEED_OK);
    else
        ck_assert_int_eq(heed_channel_pool_backward(&c->x, &c->y, &dy, &dx), HEED_OK);
    /* Steps of 1e-3 stay well inside the 0.01 gaps between values. */
    TU_GRADCHECK("input", pool_loss, c, c->x.data, heed_tensor_count(&c->x), dx.data, 1e-3f, 2e-3);
    heed_tensor_free(&c->x), heed_tensor_free(&c->y), heed_tensor_free(&dx);
    free(c->wt);
}

static const heed_pool2d_cfg grad_cfgs[] = {
    {.kind = HEED_POOL_MAX, .k = 3, .stride = 2, .pad = 1},
    {.kind = HEED_POOL_MAX, .k = 2},
    {.kind = HEED_POOL_MAX, .k = 3, .stride = 1, .pad = 1},
    {.kind = HEED_POOL_AVG, .k = 3, .stride = 2, .pad = 1},
    {.kind = HEED_POOL_AVG, .k = 3, .stride = 2, .pad = 1, .exclude_pad = 1},
    {.kind = HEED_POOL_AVG, .k = 2, .stride = 3},
};

START_TEST(pool_gradients_match_finite_differences) {
    pool_ctx c = {.pool = make_pool(grad_cfgs[_i], 3, 7, 6)};
    check_pool_gradient(&c, 2, 3, 7, 6, 10 + _i);
    heed_layer_free(&c.pool->base);
}
END_TEST

/* The 2 x 2 window on rows of 7 outputs, which its loops take as two
 * overlapping blocks of four (the test above has rows of 3, taken one
 * window at a time). */
START_TEST(max2_gradient_on_wide_rows_matches_finite_differences) {
    pool_ctx c = {.pool = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 2}, 3, 6, 15)};
    check_pool_gradient(&c, 2, 3, 6, 15, 31);
    heed_layer_free(&c.pool->base);
}
END_TEST

/* nn.MaxPool2d / nn.AvgPool2d by their definition, one plane, in double:
 * window (i, j) covers rows i*S - P .. i*S - P + K-1 and columns likewise;
 * max takes the first maximum in row-major order and sends dy there;
 * average divides by K*K, or with exclude_pad (count_include_pad=False)
 * by the input pixels in the window, and sends dy / that to each of them. */
static void naive_pool_plane(const heed_pool2d_cfg *c, const float *x, int H, int W, int OH,
                             int OW, const float *dy, double *y, double *dx) {
    const int K = c->k, S = c->stride ? c->stride : c->k, P = c->pad;
    for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++) {
            double sum = 0.0;
            int inside = 0, best = -1;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    const int h = i * S - P + u, w = j * S - P + v;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    sum += x[h * W + w];
                    inside++;
                    if (best < 0 || x[h * W + w] > x[best]) best = h * W + w;
                }
            const double g = dy[i * OW + j];
            if (c->kind == HEED_POOL_MAX) {
                y[i * OW + j] = x[best];
                dx[best] += g;
                continue;
            }
            const double q = c->exclude_pad ? inside : (double)K * K;
            y[i * OW + j] = sum / q;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    const int h = i * S - P + u, w = j * S - P + v;
                    if (h >= 0 && h < H && w >= 0 && w < W) dx[h * W + w] += g / q;
                }
        }
}

/* Every window loop, forward and backward, against the definition on odd
 * sizes (windows that overhang the right and bottom edges into padding, a
 * 2 x 2 window that leaves a last row and column out; rows of 2, 4 and 7
 * such windows, as the 2 x 2 loops take four at a time and a row's last
 * four again where the width is not a multiple of four), the gradient
 * added to what dx holds and, with dx_fresh (a sequence's hint), written
 * over whatever it holds, NaN included. */
static const heed_pool2d_cfg def_cfgs[] = {
    {.kind = HEED_POOL_MAX, .k = 2},
    {.kind = HEED_POOL_MAX, .k = 3, .stride = 2, .pad = 1},
    {.kind = HEED_POOL_MAX, .k = 3, .stride = 1, .pad = 1},
    {.kind = HEED_POOL_MAX, .k = 2, .stride = 3},
    {.kind = HEED_POOL_AVG, .k = 3, .stride = 2, .pad = 1},
    {.kind = HEED_POOL_AVG, .k = 3, .stride = 2, .pad = 1, .exclude_pad = 1},
    {.kind = HEED_POOL_AVG, .k = 5, .stride = 2, .pad = 2, .exclude_pad = 1},
    {.kind = HEED_POOL_AVG, .k = 2},
};

static void check_windows_against_definition(int _i, int H, int W) {
    const heed_pool2d_cfg *cfg = &def_cfgs[_i];
    const int N = 2, C = 3;
    heed_pool2d *l = make_pool(*cfg, C, H, W);
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, N, C, H, W), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, N, C, H, W), HEED_OK);
    fill_distinct(x.data, N * C * H * W, 40 + _i);
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
    const int OH = y.h, OW = y.w;
    const size_t nx = heed_tensor_count(&x), ny = heed_tensor_count(&y);
    ck_assert_int_eq(heed_tensor_alloc(&dy, N, C, OH, OW), HEED_OK);
    tu_fill_uniform(dy.data, ny, -1, 1, 60 + _i);
    double *wy = calloc(ny, sizeof(double)), *wdx = calloc(nx, sizeof(double));
    for (int p = 0; p < N * C; p++)
        naive_pool_plane(cfg, x.data + (size_t)p * H * W, H, W, OH, OW,
                         dy.data + (size_t)p * OH * OW, wy + (size_t)p * OH * OW,
                         wdx + (size_t)p * H * W);
    double err = 0; /* a comparison, not fmax (see tu_max_abs_diff) */
    for (size_t i = 0; i < ny; i++) {
        const double e = fabs(y.data[i] - wy[i]);
        err = e > err || isnan(e) ? e : err;
    }
    ck_assert_msg(err < 1e-6, "config %d (%dx%d): forward differs by %g", _i, H, W, err);
    for (int fresh = 0; fresh <= 1; fresh++) {
        for (size_t i = 0; i < nx; i++) dx.data[i] = fresh ? NAN : 0.5f;
        l->base.dx_fresh = fresh;
        ck_assert_int_eq(heed_pool2d_backward(l, &x, &dy, &dx), HEED_OK);
        l->base.dx_fresh = 0;
        err = 0;
        size_t worst = 0;
        for (size_t i = 0; i < nx; i++) {
            const double e = fabs(dx.data[i] - (wdx[i] + (fresh ? 0.0 : 0.5)));
            if (!(e <= err)) err = e, worst = i; /* a NaN is the worst: kept */
            if (isnan(err)) break;
        }
        ck_assert_msg(err < 1e-6, "config %d (%dx%d) fresh %d: dx[%zu] = %g, want %g", _i, H, W,
                      fresh, worst, dx.data[worst], wdx[worst] + (fresh ? 0.0 : 0.5));
    }
    free(wy), free(wdx);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_layer_free(&l->base);
}

START_TEST(windows_match_the_definition_with_and_without_fresh_dx) {
    check_windows_against_definition(_i, 7, 9);
    check_windows_against_definition(_i, 9, 15);
    check_windows_against_definition(_i, 6, 5);
}
END_TEST

START_TEST(global_pools_forward_and_ties) {
    /* Two planes 2x2: {1, 3, 3, 2} and {-4, -1, -2, -3}. */
    float xs[8] = {1, 3, 3, 2, -4, -1, -2, -3};
    heed_tensor x = heed_tensor_view(xs, 1, 2, 2, 2), y = {0}, dx;
    ck_assert_int_eq(heed_global_avg_pool_forward(&x, &y), HEED_OK);
    ck_assert_int_eq(y.n, 1); ck_assert_int_eq(y.c, 2); ck_assert_int_eq(y.h, 1);
    ck_assert_float_eq_tol(y.data[0], 2.25f, 1e-6f); ck_assert_float_eq_tol(y.data[1], -2.5f, 1e-6f);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 2, 2, 2), HEED_OK);
    float dys[2] = {4, 8};
    heed_tensor dy = heed_tensor_view(dys, 1, 2, 1, 1);
    ck_assert_int_eq(heed_global_avg_pool_backward(&x, &dy, &dx), HEED_OK);
    for (int i = 0; i < 8; i++) ck_assert_float_eq_tol(dx.data[i], i < 4 ? 1.0f : 2.0f, 1e-6f);

    ck_assert_int_eq(heed_global_max_pool_forward(&x, &y), HEED_OK);
    ck_assert_float_eq(y.data[0], 3); ck_assert_float_eq(y.data[1], -1);
    heed_tensor_zero(&dx);
    ck_assert_int_eq(heed_global_max_pool_backward(&x, &y, &dy, &dx), HEED_OK);
    /* torch.amax splits the gradient between the two 3s. */
    const float want[8] = {0, 2, 2, 0, 0, 8, 0, 0};
    for (int i = 0; i < 8; i++) ck_assert_float_eq(dx.data[i], want[i]);
    /* Accumulates, and works without y. */
    ck_assert_int_eq(heed_global_max_pool_backward(&x, NULL, &dy, &dx), HEED_OK);
    for (int i = 0; i < 8; i++) ck_assert_float_eq(dx.data[i], 2 * want[i]);
    heed_tensor_free(&y), heed_tensor_free(&dx);
}
END_TEST

/* Both global poolings in one pass agree with each alone, on planes longer
 * than one summing block, with a NaN in one plane and ties in another; the
 * 2 x 2 window's gradient (its own loop) against a window-by-window
 * reference, NaN and -inf windows included. */
START_TEST(fused_global_pools_and_2x2_windows) {
    heed_tensor x, a0 = {0}, m0 = {0}, a1 = {0}, m1 = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 26, 29), HEED_OK);
    const size_t count = heed_tensor_count(&x), HW = 26 * 29;
    tu_fill_uniform(x.data, count, -3, 3, 77);
    x.data[HW + 600] = NAN;                       /* plane 1 */
    x.data[2 * HW + 5] = x.data[2 * HW + 700] = 9; /* plane 2: a tie */
    ck_assert_int_eq(heed_global_avg_pool_forward(&x, &a0), HEED_OK);
    ck_assert_int_eq(heed_global_max_pool_forward(&x, &m0), HEED_OK);
    ck_assert_int_eq(heed_global_avg_max_pool_forward(&x, &a1, &m1), HEED_OK);
    for (int i = 0; i < 6; i++) {
        if (i == 1) {
            ck_assert(isnan(m1.data[i]) && isnan(m0.data[i]) && isnan(a1.data[i]));
            continue;
        }
        double s = 0;
        for (size_t k = 0; k < HW; k++) s += x.data[i * HW + k];
        ck_assert_float_eq_tol(a1.data[i], (float)(s / HW), 1e-6f);
        ck_assert_float_eq_tol(a1.data[i], a0.data[i], 1e-6f);
        ck_assert_float_eq(m1.data[i], m0.data[i]);
    }
    ck_assert_float_eq(m1.data[2], 9);
    ck_assert_int_eq(heed_global_avg_max_pool_forward(&x, &a1, &a1), HEED_ERR_ARG);
    ck_assert_int_eq(heed_global_avg_max_pool_forward(&x, &x, &m1), HEED_ERR_ARG);

    heed_pool2d *l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 2}, 3, 26, 29);
    x.data[7] = x.data[8] = x.data[29 + 7] = x.data[29 + 8] = -INFINITY; /* a -inf window */
    x.data[2 * 29 + 2] = 1, x.data[2 * 29 + 3] = 1;                     /* a tie */
    heed_tensor y = {0}, dy, dx;
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 3, 13, 14), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 3, 26, 29), HEED_OK);
    tu_fill_uniform(dy.data, heed_tensor_count(&dy), -1, 1, 78);
    ck_assert_int_eq(heed_pool2d_backward(l, &x, &dy, &dx), HEED_OK);
    float *want = calloc(count, sizeof(float));
    for (int p = 0; p < 6; p++)
        for (int i = 0; i < 13; i++)
            for (int j = 0; j < 14; j++) {
                const float *xp = x.data + p * HW;
                int best = (2 * i) * 29 + 2 * j;
                for (int k = 1; k < 4; k++) {
                    int idx = (2 * i + k / 2) * 29 + 2 * j + k % 2;
                    if (xp[idx] > xp[best] || isnan(xp[idx])) best = isnan(xp[best]) ? best : idx;
                }
                float yv = y.data[(p * 13 + i) * 14 + j];
                ck_assert(isnan(xp[best]) ? isnan(yv) : yv == xp[best]);
                want[p * HW + best] += dy.data[(p * 13 + i) * 14 + j];
            }
    for (size_t i = 0; i < count; i++) ck_assert_float_eq(dx.data[i], want[i]);
    free(want);
    heed_layer_free(&l->base);
    heed_tensor_free(&x), heed_tensor_free(&a0), heed_tensor_free(&m0), heed_tensor_free(&a1);
    heed_tensor_free(&m1), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
}
END_TEST

/* The 3 x 3 / stride 2 / padding 1 window (its own forward loop) against
 * the definition, on even and odd sizes, with a NaN and -infs about. */
START_TEST(max_3x3_stride2_windows_match_definition) {
    /* Widths past a few vectors too, odd and even: the column loops
     * vectorize, with remainders. */
    static const int sizes[][2] = {{9, 12}, {12, 9}, {1, 5}, {6, 1}, {2, 2}, {1, 2}, {1, 1},
                                   {5, 37}, {4, 66}, {3, 99}, {7, 112}};
    for (int si = 0; si < (int)(sizeof sizes / sizeof sizes[0]); si++) {
        const int H = sizes[si][0], W = sizes[si][1];
        heed_pool2d *l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 3, .stride = 2,
                                                     .pad = 1}, 2, H, W);
        heed_tensor x, y = {0};
        ck_assert_int_eq(heed_tensor_alloc(&x, 1, 2, H, W), HEED_OK);
        tu_fill_uniform(x.data, heed_tensor_count(&x), -2, 2, 90 + si);
        x.data[0] = -INFINITY;
        if (H * W > 4) x.data[H * W + H * W / 2] = NAN;
        if (W > 40) x.data[W + 33] = NAN; /* channel 0, inside a vector */
        ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_OK);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < y.h; i++)
                for (int j = 0; j < y.w; j++) {
                    float m = -INFINITY;
                    int nan = 0;
                    for (int h = 2 * i - 1; h <= 2 * i + 1; h++)
                        for (int w = 2 * j - 1; w <= 2 * j + 1; w++) {
                            if (h < 0 || h >= H || w < 0 || w >= W) continue;
                            float v = x.data[(c * H + h) * W + w];
                            nan |= isnan(v);
                            m = v > m ? v : m;
                        }
                    float got = y.data[(c * y.h + i) * y.w + j];
                    ck_assert_msg(nan ? isnan(got) : got == m, "%dx%d c%d (%d,%d): %g, want %g", H,
                                  W, c, i, j, got, m);
                }
        heed_tensor_free(&x), heed_tensor_free(&y);
        heed_layer_free(&l->base);
    }
}
END_TEST

/* The row routine's AVX-512 form (the stem's fused pool uses it) gives
 * the portable one's bits: every width to 130, one to three rows, with
 * negatives, -infs, NaNs and zeros of both signs (ties keep the first). */
START_TEST(max3s2_row_avx512_equals_portable) {
#ifdef HEED_MAX3S2_AVX512
    if (!heed_gemm_kernel_available("avx512")) return;
    float x[3 * 130], col[130], want[65], got[65 + 16];
    for (int W = 1; W <= 130; W++)
        for (int rows = 1; rows <= 3; rows++) {
            tu_fill_uniform(x, 3 * 130, -2, 2, 1000 + W * 3 + rows);
            for (int i = 0; i < 3 * 130; i += 7) x[i] = i % 2 ? 0.0f : -0.0f;
            x[W / 2] = -INFINITY;
            if (W > 5) x[130 + W - 2] = NAN;
            const int OW = (W - 1) / 2 + 1;
            heed_max3s2_row(x, 130, rows, W, OW, col, want);
            for (int j = 0; j < OW + 16; j++) got[j] = 12345.0f;
            heed_max3s2_row_avx512(x, 130, rows, W, OW, got);
            ck_assert_msg(!memcmp(got, want, (size_t)OW * sizeof(float)), "W %d rows %d", W, rows);
            ck_assert_float_eq(got[OW], 12345.0f); /* nothing past the row */
        }
#endif
}
END_TEST

START_TEST(global_pool_layers) {
    for (int kind = 0; kind <= 1; kind++) {
        pool_ctx c = {0};
        ck_assert_int_eq(heed_global_pool_new(&c.global, kind ? HEED_POOL_AVG : HEED_POOL_MAX,
                                              (int[3]){3, 5, 4}, "gp"), HEED_OK);
        ck_assert_str_eq(c.global->base.ops->type, kind ? "gap" : "gmp");
        ck_assert_int_eq(c.global->base.out_c, 3);
        ck_assert_int_eq(c.global->base.out_h, 1); ck_assert_int_eq(c.global->base.out_w, 1);
        ck_assert_double_eq_tol(heed_layer_flops(&c.global->base), 60.0, 1e-9);
        check_pool_gradient(&c, 2, 3, 5, 4, 30 + kind);
        heed_layer_free(&c.global->base);
    }
}
END_TEST

START_TEST(channel_pool_max_first_then_mean) {
    /* x (1, 3, 1, 2): position 0 has channels {1, 4, 4}, position 1 {-2, -5, 0.5}. */
    float xs[6] = {1, -2, 4, -5, 4, 0.5f};
    heed_tensor x = heed_tensor_view(xs, 1, 3, 1, 2), y = {0}, dx;
    ck_assert_int_eq(heed_channel_pool_forward(&x, &y), HEED_OK);
    ck_assert_int_eq(y.c, 2); ck_assert_int_eq(y.h, 1); ck_assert_int_eq(y.w, 2);
    ck_assert_float_eq(y.data[0], 4); ck_assert_float_eq(y.data[1], 0.5f);
    ck_assert_float_eq_tol(y.data[2], 3.0f, 1e-6f); ck_assert_float_eq_tol(y.data[3], -6.5f / 3, 1e-6f);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 3, 1, 2), HEED_OK);
    float dys[4] = {6, 1, 3, -3}; /* d max at positions 0, 1; d mean at 0, 1 */
    heed_tensor dy = heed_tensor_view(dys, 1, 2, 1, 2);
    ck_assert_int_eq(heed_channel_pool_backward(&x, &y, &dy, &dx), HEED_OK);
    /* Position 0: mean share 1 each, the two tied 4s split 6. Position 1:
     * mean share -1 each, channel 2 (0.5) takes the max's 1. */
    const float want[6] = {1, -1, 4, -1, 4, 0};
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(dx.data[i], want[i], 1e-6f);
    heed_tensor_free(&y), heed_tensor_free(&dx);
}
END_TEST

START_TEST(channel_pool_gradient) {
    /* 300 positions: more than one block of positions per image. */
    pool_ctx c = {0};
    check_pool_gradient(&c, 2, 5, 15, 20, 40);
}
END_TEST

#ifdef _OPENMP
/* One pooling's forward and backward (dx from zeros), by kind: 0 the 3x3
 * max pool, 1 the 2x2 average pool, 2 the channel pool, 3 global max, 4
 * global average. */
static void run_pool(int kind, heed_pool2d *mp, heed_pool2d *ap, const heed_tensor *x,
                     const heed_tensor *dy, heed_tensor *y, heed_tensor *dx) {
    heed_tensor_zero(dx);
    heed_tensor d;
    switch (kind) {
    case 0:
    case 1: {
        heed_pool2d *l = kind ? ap : mp;
        ck_assert_int_eq(heed_pool2d_forward(l, x, y), HEED_OK);
        d = heed_tensor_view(dy->data, y->n, y->c, y->h, y->w);
        ck_assert_int_eq(heed_pool2d_backward(l, x, &d, dx), HEED_OK);
        break;
    }
    case 2:
        ck_assert_int_eq(heed_channel_pool_forward(x, y), HEED_OK);
        d = heed_tensor_view(dy->data, y->n, y->c, y->h, y->w);
        ck_assert_int_eq(heed_channel_pool_backward(x, y, &d, dx), HEED_OK);
        break;
    case 3:
        ck_assert_int_eq(heed_global_max_pool_forward(x, y), HEED_OK);
        d = heed_tensor_view(dy->data, y->n, y->c, y->h, y->w);
        ck_assert_int_eq(heed_global_max_pool_backward(x, y, &d, dx), HEED_OK);
        break;
    default:
        ck_assert_int_eq(heed_global_avg_pool_forward(x, y), HEED_OK);
        d = heed_tensor_view(dy->data, y->n, y->c, y->h, y->w);
        ck_assert_int_eq(heed_global_avg_pool_backward(x, &d, dx), HEED_OK);
    }
}
#endif

/* Every pooling's output and input gradient, each on its own, bit for bit
 * the same on one thread and on several (their sums compared alone could
 * hide one pass's error behind another's). */
START_TEST(threaded_matches_one_thread) {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    heed_pool2d *mp = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 3, .stride = 2,
                                                  .pad = 1}, 16, 30, 30);
    heed_pool2d *ap = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_AVG, .k = 2}, 16, 30, 30);
    heed_tensor x, y = {0}, dx, dy;
    ck_assert_int_eq(heed_tensor_alloc(&x, 4, 16, 30, 30), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 4, 16, 30, 30), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 4, 16, 30, 30), HEED_OK); /* big enough for all */
    size_t nx = heed_tensor_count(&x);
    tu_fill_uniform(x.data, nx, -1, 1, 5);
    tu_fill_uniform(dy.data, nx, -1, 1, 6);
    float *one_y = malloc(nx * sizeof(float)), *one_dx = malloc(nx * sizeof(float));
    for (int kind = 0; kind < 5; kind++) {
        omp_set_num_threads(1);
        run_pool(kind, mp, ap, &x, &dy, &y, &dx);
        const size_t ny = heed_tensor_count(&y);
        memcpy(one_y, y.data, ny * sizeof(float));
        memcpy(one_dx, dx.data, nx * sizeof(float));
        omp_set_num_threads(saved > 1 ? saved : 2);
        run_pool(kind, mp, ap, &x, &dy, &y, &dx);
        ck_assert_uint_eq(heed_tensor_count(&y), ny);
        ck_assert_msg(memcmp(one_y, y.data, ny * sizeof(float)) == 0, "pooling %d: outputs differ", kind);
        ck_assert_msg(memcmp(one_dx, dx.data, nx * sizeof(float)) == 0, "pooling %d: gradients differ", kind);
    }
    omp_set_num_threads(saved);
    free(one_y), free(one_dx);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dx), heed_tensor_free(&dy);
    heed_layer_free(&mp->base), heed_layer_free(&ap->base);
#endif
}
END_TEST

/* A NULL configuration is refused like a bad one (it was dereferenced). */
START_TEST(null_config_is_refused) {
    heed_pool2d *l = (heed_pool2d *)&l;
    ck_assert_int_eq(heed_pool2d_new(&l, NULL, (int[3]){2, 6, 6}, NULL, "p"), HEED_ERR_ARG);
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(heed_last_error(), "pool p: no configuration given"), "%s",
                  heed_last_error());
}
END_TEST

START_TEST(bad_configs_and_shapes_are_refused) {
    heed_pool2d *l = (heed_pool2d *)&l;
    const int in[3] = {2, 6, 6};
    ck_assert_int_eq(heed_pool2d_new(&l, &(heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 3, .pad = 2},
                                     in, NULL, "p"), HEED_ERR_ARG);
    ck_assert_ptr_null(l);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "pad 2"));
    ck_assert_int_eq(heed_pool2d_new(&l, &(heed_pool2d_cfg){.kind = HEED_POOL_AVG, .k = 0}, in,
                                     NULL, "k"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_pool2d_new(&l, &(heed_pool2d_cfg){.kind = 7, .k = 2}, in, NULL, "t"),
                     HEED_ERR_ARG);
    ck_assert_int_eq(heed_pool2d_new(&l, &(heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 2,
                                                             .stride = -1}, in, NULL, "s"),
                     HEED_ERR_ARG);
    ck_assert_int_eq(heed_pool2d_new(&l, &(heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 7}, in,
                                     NULL, "big"), HEED_ERR_SHAPE);
    heed_global_pool *g;
    ck_assert_int_eq(heed_global_pool_new(&g, 5, in, "g"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_global_pool_new(&g, HEED_POOL_AVG, (int[3]){2, 0, 3}, "g"), HEED_ERR_ARG);

    l = make_pool((heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 2}, 2, 6, 6);
    ck_assert_str_eq(l->base.ops->type, "maxpool");
    ck_assert_int_eq(l->cfg.stride, 2);
    ck_assert_double_eq_tol(heed_layer_flops(&l->base), 2.0 * 9 * 4, 1e-9);
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 1, 2, 6, 5), HEED_OK);
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(1, 2, 6, 5)"));
    heed_tensor_free(&x);
    ck_assert_int_eq(heed_tensor_alloc(&x, 1, 2, 6, 6), HEED_OK);
    ck_assert_int_eq(heed_pool2d_forward(l, &x, &x), HEED_ERR_ARG);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 1, 2, 3, 2), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 1, 2, 6, 6), HEED_OK);
    ck_assert_int_eq(heed_pool2d_backward(l, &x, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_global_avg_pool_backward(&x, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_channel_pool_backward(&x, NULL, &dy, &dx), HEED_ERR_SHAPE);
    heed_tensor_free(&dy);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 1, 2, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_global_max_pool_backward(&x, &dx, &dy, &dx), HEED_ERR_SHAPE); /* bad y */
    ck_assert_int_eq(heed_global_max_pool_backward(&x, NULL, &dy, NULL), HEED_OK);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_layer_free(&l->base);
}
END_TEST

Suite *heed_suite_pool2d(void) {
    Suite *s = suite_create("pool2d");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, output_sizes_follow_pytorch);
    tcase_add_test(tc, max_pool_pads_with_minus_infinity);
    tcase_add_test(tc, max_pool_ties_go_to_the_first);
    tcase_add_test(tc, avg_pool_counts_padding_unless_excluded);
    tcase_add_loop_test(tc, pool_gradients_match_finite_differences, 0,
                        (int)(sizeof grad_cfgs / sizeof grad_cfgs[0]));
    tcase_add_test(tc, max2_gradient_on_wide_rows_matches_finite_differences);
    tcase_add_loop_test(tc, windows_match_the_definition_with_and_without_fresh_dx, 0,
                        (int)(sizeof def_cfgs / sizeof def_cfgs[0]));
    tcase_add_test(tc, global_pools_forward_and_ties);
    tcase_add_test(tc, fused_global_pools_and_2x2_windows);
    tcase_add_test(tc, max3s2_row_avx512_equals_portable);
    tcase_add_test(tc, max_3x3_stride2_windows_match_definition);
    tcase_add_test(tc, global_pool_layers);
    tcase_add_test(tc, channel_pool_max_first_then_mean);
    tcase_add_test(tc, channel_pool_gradient);
    tcase_add_test(tc, threaded_matches_one_thread);
    tcase_add_test(tc, bad_configs_and_shapes_are_refused);
    tcase_add_test(tc, null_config_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
