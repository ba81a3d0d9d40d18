/* check_ram.c -- the recurrent attention model: the glimpse sensor against
 * hand-computed patches, the whole forward against an independent
 * double-precision implementation written here, gradients of the unrolled
 * sequence by central differences (locations held fixed by replaying the
 * draws), the hybrid loss's value, a toy task the policy must learn,
 * reproducibility, multi-sample inference, model files and bad settings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loss.h"
#include "model.h"
#include "omp_impl.h"
#include "optim.h"
#include "ram.h"
#include "testutil.h"

/* ---- an independent reference ------------------------------------------- */

/* torch.round: half to even, done by hand on the float32 (l+1)/2*size. */
static int ref_centre(float l, int size) {
    float v = (l + 1.0f) / 2.0f * (float)size;
    double fl = floor(v), frac = (double)v - fl;
    if (frac > 0.5) return (int)fl + 1;
    if (frac < 0.5) return (int)fl;
    return ((long)fl % 2 == 0) ? (int)fl : (int)fl + 1;
}

static double ref_pixel(const float *img, int H, int W, int r, int c) {
    return r < 0 || r >= H || c < 0 || c >= W ? 0.0 : img[r * W + c];
}

/* out (S, C, P, P): scale k is the 2^k P square at centre - side/2, block-averaged. */
static void ref_glimpse(const float *img, int C, int H, int W, float lx, float ly, int P, int S,
                        double *out) {
    int cx = ref_centre(lx, W), cy = ref_centre(ly, H);
    for (int k = 0; k < S; k++) {
        int f = 1 << k, side = P * f, top = cy - side / 2, left = cx - side / 2;
        for (int c = 0; c < C; c++)
            for (int py = 0; py < P; py++)
                for (int px = 0; px < P; px++) {
                    double sum = 0;
                    for (int a = 0; a < f; a++)
                        for (int b = 0; b < f; b++)
                            sum += ref_pixel(img + c * H * W, H, W, top + py * f + a, left + px * f + b);
                    out[((k * C + c) * P + py) * P + px] = sum / (f * f);
                }
    }
}

static void ref_fc(const heed_linear *l, const double *x, double *y) {
    for (int o = 0; o < l->cfg.out; o++) {
        double s = l->b[o];
        for (int i = 0; i < l->cfg.in; i++) s += (double)l->w[(size_t)o * l->cfg.in + i] * x[i];
        y[o] = s;
    }
}

static void ref_relu(double *v, int n) {
    for (int i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0;
}

static double ref_sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* One image through the model, training-style with the locations taken from
 * draws (T, 2): l_0, then clamp(s_t). Writes logits (K), mu (T-1, 2) and
 * the baselines (T). */
static void ref_ram(const heed_ram *r, const float *img, const float *draws, double *logits,
                    double *mu, double *base) {
    const heed_ram_cfg *c = &r->cfg;
    const int C = r->base.in_c, Hh = r->base.in_h, W = r->base.in_w, H = c->hidden;
    double p[4096], hg[256], hl[256], g[256], a[1024], t1[1024], h[256] = {0}, cell[256] = {0}, v[8];
    float l[2] = {draws[0], draws[1]};
    for (int t = 0; t < c->glimpses; t++) {
        ref_glimpse(img, C, Hh, W, l[0], l[1], c->patch, c->scales, p);
        ref_fc(r->fc_g, p, hg);
        ref_relu(hg, c->glimpse_hidden);
        double ld[2] = {l[0], l[1]};
        ref_fc(r->fc_l, ld, hl);
        ref_relu(hl, c->loc_hidden);
        ref_fc(r->fc_gg, hg, g);
        ref_fc(r->fc_gl, hl, t1);
        for (int j = 0; j < H; j++) g[j] += t1[j];
        ref_relu(g, H);
        ref_fc(c->lstm ? r->fc_ih : r->fc_hg, g, a);
        ref_fc(r->fc_hh, h, t1); /* h_{-1} = 0 leaves fc_hh's bias */
        for (int j = 0; j < r->gates; j++) a[j] += t1[j];
        if (!c->lstm) {
            ref_relu(a, H);
            memcpy(h, a, H * sizeof(double));
        } else {
            for (int j = 0; j < H; j++) {
                double i = ref_sig(a[j]), f = ref_sig(a[H + j]), gg = tanh(a[2 * H + j]),
                       o = ref_sig(a[3 * H + j]);
                cell[j] = f * cell[j] + i * gg;
                h[j] = o * tanh(cell[j]);
            }
        }
        ref_fc(r->fc_base, h, &base[t]);
        if (t < c->glimpses - 1) {
            ref_fc(r->fc_loc, h, v);
            for (int k = 0; k < 2; k++) {
                mu[2 * t + k] = tanh(v[k]);
                float s = draws[2 * (t + 1) + k];
                l[k] = s < -1 ? -1 : s > 1 ? 1 : s;
            }
        }
    }
    ref_fc(r->fc_act, h, logits);
}

/* ---- helpers -------------------------------------------------------------- */

static heed_ram *make_ram(const heed_ram_cfg *cfg, const int in[3], heed_params *p, uint64_t seed) {
    heed_ram *r;
    ck_assert_msg(heed_ram_new(&r, cfg, in, p, "ram") == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(heed_params_alloc(p, seed), HEED_OK);
    return r;
}

static heed_ram_cfg small_cfg(int lstm) {
    return (heed_ram_cfg){.glimpses = 3, .patch = 3, .scales = 2, .glimpse_hidden = 5, .loc_hidden = 4,
                          .hidden = 6, .classes = 4, .lstm = lstm, .std = 0.3f, .samples = 1, .seed = 3};
}

/* Draws (n, T, 2): l_0 in [-1, 1], samples partly beyond it (clamped). */
static void fill_draws(heed_tensor *d, int n, int T, uint64_t seed) {
    heed_tensor_alloc(d, n, T, 2, 1);
    tu_fill_uniform(d->data, heed_tensor_count(d), -1.3f, 1.3f, seed);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) d->data[i * T * 2 + k] = fmaxf(-1, fminf(1, d->data[i * T * 2 + k]));
}

/* ---- the sensor ----------------------------------------------------------- */

/* 8x8 image with x[r][c] = 8r + c + 1, patch 2, scales 3 (sides 2, 4, 8). */
START_TEST(sensor_matches_hand_computed_patches) {
    heed_tensor x, loc, p = {0};
    heed_tensor_alloc(&x, 1, 1, 8, 8);
    heed_tensor_alloc(&loc, 1, 2, 1, 1);
    for (int i = 0; i < 64; i++) x.data[i] = (float)(i + 1);
    /* Centre (4, 4): side 2 at (3, 3); side 4 at (2, 2) in 2x2 blocks; side 8
     * at (0, 0) in 4x4 blocks. */
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 3, &p), HEED_OK);
    ck_assert(p.n == 1 && p.c == 3 && p.h == 2 && p.w == 2);
    const float inside[12] = {28, 29, 36, 37,                        /* rows 3-4, cols 3-4 */
                              23.5f, 25.5f, 39.5f, 41.5f,            /* e.g. (19+20+27+28)/4 */
                              14.5f, 18.5f, 46.5f, 50.5f};           /* e.g. mean of rows/cols 0-3 */
    for (int i = 0; i < 12; i++) ck_assert_float_eq_tol(p.data[i], inside[i], 1e-6f);
    /* The top-left corner (-1, -1): centre (0, 0), three quarters outside. */
    loc.data[0] = loc.data[1] = -1.0f;
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 3, &p), HEED_OK);
    const float corner[12] = {0, 0, 0, 1, 0, 0, 0, 5.5f, 0, 0, 0, 14.5f};
    for (int i = 0; i < 12; i++) ck_assert_float_eq_tol(p.data[i], corner[i], 1e-6f);
    /* Half-way centres round to even: x 2.5 -> 2 (half-up would say 3),
     * y 0.5 -> 0; the 2x2 patch then starts at column 1, row -1. */
    loc.data[0] = -0.375f, loc.data[1] = -0.875f;
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 1, &p), HEED_OK);
    const float even[4] = {0, 0, 2, 3};
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(p.data[i], even[i], 1e-6f);
    loc.data[0] = -0.125f; /* 3.5 -> 4 */
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 1, &p), HEED_OK);
    ck_assert_float_eq(p.data[2], 4.0f);
    /* Far outside: all zeros. */
    loc.data[0] = 5.0f;
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 3, &p), HEED_OK);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(p.data[i], 0.0f);
    heed_tensor_free(&x), heed_tensor_free(&loc), heed_tensor_free(&p);
}
END_TEST

/* A 4x40 image with x[r][c] = c + 1 (so a patch shows its columns): the
 * centre is round((l + 1) / 2 * size) over the whole width, whatever the
 * size. l = (0.5, 0): centre (30, 2), so the 2x2 patch is rows 1-2,
 * columns 29-30, values 30, 31; l = (1, 1): centre (40, 4), the patch at
 * (39, 3), of which only the top-left pixel (row 3, column 39: 40) is
 * inside; l = (-0.95, 0): centre (1, 2), columns 0-1, values 1, 2. */
START_TEST(sensor_centres_across_a_wide_image) {
    heed_tensor x, loc, p = {0};
    heed_tensor_alloc(&x, 1, 1, 4, 40);
    heed_tensor_alloc(&loc, 1, 2, 1, 1);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 40; c++) x.data[r * 40 + c] = (float)(c + 1);
    const float l[3][2] = {{0.5f, 0.0f}, {1.0f, 1.0f}, {-0.95f, 0.0f}};
    const float want[3][4] = {{30, 31, 30, 31}, {40, 0, 0, 0}, {1, 2, 1, 2}};
    for (int i = 0; i < 3; i++) {
        loc.data[0] = l[i][0], loc.data[1] = l[i][1];
        ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 1, &p), HEED_OK);
        for (int j = 0; j < 4; j++)
            ck_assert_msg(p.data[j] == want[i][j], "l (%g, %g): patch[%d] %g, want %g", (double)l[i][0],
                          (double)l[i][1], j, (double)p.data[j], (double)want[i][j]);
    }
    heed_tensor_free(&x), heed_tensor_free(&loc), heed_tensor_free(&p);
}
END_TEST

/* Patches wider than the sensor's row buffer (4096) are summed block by
 * block: 13 scales of 2 make the last one 8192 wide, in 4096 x 4096 blocks,
 * each holding part of a 3x5 image. Against the reference, to 1e-5 of each
 * value (the sums are divided by 4096^2). */
START_TEST(sensor_handles_patches_wider_than_its_row_buffer) {
    enum { H = 3, W = 5, P = 2, S = 13 };
    heed_tensor x, loc, p = {0};
    heed_tensor_alloc(&x, 1, 1, H, W);
    heed_tensor_alloc(&loc, 1, 2, 1, 1);
    for (int i = 0; i < H * W; i++) x.data[i] = (float)(i + 1);
    const float l[2][2] = {{0.0f, 0.0f}, {0.3f, -0.4f}};
    static double ref[S * P * P];
    for (int i = 0; i < 2; i++) {
        loc.data[0] = l[i][0], loc.data[1] = l[i][1];
        ck_assert_int_eq(heed_ram_sensor(&x, &loc, P, S, &p), HEED_OK);
        ref_glimpse(x.data, 1, H, W, l[i][0], l[i][1], P, S, ref);
        for (int j = 0; j < S * P * P; j++)
            ck_assert_msg(fabs(p.data[j] - ref[j]) <= 1e-5 * fabs(ref[j]) + 1e-12, "l %d, value %d: %g, want %g",
                          i, j, (double)p.data[j], ref[j]);
    }
    heed_tensor_free(&x), heed_tensor_free(&loc), heed_tensor_free(&p);
}
END_TEST

/* Every location is checked, the last image's y included (a NaN centre
 * would be converted to int: undefined behaviour). */
START_TEST(sensor_refuses_a_non_finite_last_location) {
    const int N = 3;
    heed_tensor x, loc, p = {0}, dp, dx;
    heed_tensor_alloc(&x, N, 1, 6, 6);
    heed_tensor_alloc(&loc, N, 2, 1, 1);
    heed_tensor_alloc(&dp, N, 1, 2, 2);
    heed_tensor_alloc(&dx, N, 1, 6, 6);
    loc.data[2 * N - 1] = NAN;
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 1, &p), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "location 1 of image 2 is not finite"), "%s", heed_last_error());
    ck_assert_int_eq(heed_ram_sensor_backward(&loc, 2, 1, &dp, &dx), HEED_ERR_ARG);
    loc.data[2 * N - 1] = INFINITY;
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 2, 1, &p), HEED_ERR_ARG);
    heed_tensor_free(&x), heed_tensor_free(&loc), heed_tensor_free(&p), heed_tensor_free(&dp), heed_tensor_free(&dx);
}
END_TEST

/* Non-square, two channels, many locations: x scales with W, y with H. */
START_TEST(sensor_matches_reference_and_its_transpose) {
    const int N = 5, C = 2, H = 6, W = 10, P = 3, S = 3;
    heed_tensor x, loc, p = {0}, dp, dx;
    heed_tensor_alloc(&x, N, C, H, W);
    heed_tensor_alloc(&loc, N, 2, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 1);
    tu_fill_uniform(loc.data, heed_tensor_count(&loc), -1.2f, 1.2f, 2);
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, P, S, &p), HEED_OK);
    double ref[S * C * P * P];
    for (int i = 0; i < N; i++) {
        ref_glimpse(x.data + i * C * H * W, C, H, W, loc.data[2 * i], loc.data[2 * i + 1], P, S, ref);
        for (int j = 0; j < S * C * P * P; j++)
            ck_assert_double_eq_tol(p.data[i * S * C * P * P + j], ref[j], 1e-5);
    }
    /* <sensor(x), dp> = <x, sensor^T(dp)> for a linear map. */
    heed_tensor_alloc(&dp, N, S * C, P, P);
    heed_tensor_alloc(&dx, N, C, H, W);
    tu_fill_uniform(dp.data, heed_tensor_count(&dp), -1, 1, 3);
    ck_assert_int_eq(heed_ram_sensor_backward(&loc, P, S, &dp, &dx), HEED_OK);
    double a = 0, b = 0;
    for (size_t i = 0; i < heed_tensor_count(&dp); i++) a += (double)p.data[i] * dp.data[i];
    for (size_t i = 0; i < heed_tensor_count(&x); i++) b += (double)x.data[i] * dx.data[i];
    ck_assert_double_eq_tol(a, b, 1e-4);
    /* Errors. */
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, 0, 1, &p), HEED_ERR_ARG);
    loc.data[3] = NAN;
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, P, S, &p), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not finite"));
    heed_tensor bad = heed_tensor_view(loc.data, N - 1, 2, 1, 1);
    ck_assert_int_eq(heed_ram_sensor(&x, &bad, P, S, &p), HEED_ERR_SHAPE);
    heed_tensor_free(&x), heed_tensor_free(&loc), heed_tensor_free(&p);
    heed_tensor_free(&dp), heed_tensor_free(&dx);
}
END_TEST

/* W3's sensor (12x12 patches of a 60x60 image) with a fourth scale (96
 * wide, more than the image), two channels: every row count per output
 * row (1 to 8 image rows, fewer at the edges), columns cut on either side,
 * and each shrink (f = 1, 2, 4 and 8) against the reference, at random
 * locations and at the corners and edges. */
START_TEST(sensor_matches_reference_at_w3_size) {
    enum { N = 12, C = 2, H = 60, W = 60, P = 12, S = 4 };
    heed_tensor x, loc, p = {0};
    heed_tensor_alloc(&x, N, C, H, W);
    heed_tensor_alloc(&loc, N, 2, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 7);
    tu_fill_uniform(loc.data, heed_tensor_count(&loc), -1.1f, 1.1f, 8);
    const float edges[4][2] = {{-1.0f, -1.0f}, {1.0f, 1.0f}, {-1.0f, 0.97f}, {0.5f, -1.0f}};
    for (int i = 0; i < 4; i++) loc.data[2 * i] = edges[i][0], loc.data[2 * i + 1] = edges[i][1];
    ck_assert_int_eq(heed_ram_sensor(&x, &loc, P, S, &p), HEED_OK);
    static double ref[S * C * P * P];
    for (int i = 0; i < N; i++) {
        ref_glimpse(x.data + (size_t)i * C * H * W, C, H, W, loc.data[2 * i], loc.data[2 * i + 1],
                    P, S, ref);
        for (int j = 0; j < S * C * P * P; j++)
            ck_assert_msg(fabs(p.data[(size_t)i * S * C * P * P + j] - ref[j]) <= 1e-5,
                          "image %d, value %d: %g, want %g", i, j,
                          (double)p.data[(size_t)i * S * C * P * P + j], ref[j]);
    }
    heed_tensor_free(&x), heed_tensor_free(&loc), heed_tensor_free(&p);
}
END_TEST

/* ---- forward against the reference ---------------------------------------- */

static void check_forward(int lstm) {
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(lstm);
    const int N = 3, in[3] = {2, 7, 9}, T = cfg.glimpses, K = cfg.classes;
    heed_ram *r = make_ram(&cfg, in, &p, 11);
    heed_tensor x, y = {0}, draws;
    heed_tensor_alloc(&x, N, in[0], in[1], in[2]);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 5);
    fill_draws(&draws, N, T, 6);
    ck_assert_int_eq(heed_ram_replay(r, &draws), HEED_OK);
    heed_layer_set_training(&r->base, 1);
    ck_assert_msg(heed_layer_forward(&r->base, &x, &y) == HEED_OK, "%s", heed_last_error());
    for (int i = 0; i < N; i++) {
        double logits[8], mu[16], base[8];
        ref_ram(r, x.data + i * in[0] * in[1] * in[2], draws.data + i * T * 2, logits, mu, base);
        for (int k = 0; k < K; k++) ck_assert_double_eq_tol(y.data[i * K + k], logits[k], 1e-5);
        for (int t = 0; t < T; t++) ck_assert_double_eq_tol(r->b.data[t * N + i], base[t], 1e-5);
        for (int t = 0; t < T - 1; t++)
            for (int k = 0; k < 2; k++) {
                ck_assert_double_eq_tol(r->mu.data[(t * N + i) * 2 + k], mu[2 * t + k], 1e-5);
                /* l_{t+1} = clamp(s_t), recorded per image */
                float s = draws.data[(i * T + t + 1) * 2 + k];
                ck_assert_float_eq(heed_ram_locations(r)->data[(i * T + t + 1) * 2 + k], fmaxf(-1, fminf(1, s)));
            }
        /* the patches as seen: the sensor's output per step */
        const heed_tensor *seen = heed_ram_patches(r);
        ck_assert(seen->n == N && seen->c == T * cfg.scales * in[0] && seen->h == 3 && seen->w == 3);
        double ref[2 * 2 * 9];
        const float *l1 = heed_ram_locations(r)->data + (i * T + 1) * 2;
        ref_glimpse(x.data + i * in[0] * in[1] * in[2], in[0], in[1], in[2], l1[0], l1[1], 3, 2, ref);
        for (int j = 0; j < 36; j++) ck_assert_double_eq_tol(seen->data[(i * T + 1) * 36 + j], ref[j], 1e-6);
    }
    /* Inference: l_0 from the replay, then the policy means. */
    heed_layer_set_training(&r->base, 0);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
    for (int i = 0; i < N; i++)
        for (int t = 0; t < T - 1; t++)
            for (int k = 0; k < 2; k++)
                ck_assert_float_eq(heed_ram_locations(r)->data[(i * T + t + 1) * 2 + k],
                                   r->mu.data[(t * N + i) * 2 + k]);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&draws);
}

START_TEST(forward_matches_reference_relu) { check_forward(0); }
END_TEST

START_TEST(forward_matches_reference_lstm) { check_forward(1); }
END_TEST

/* ---- gradients ---------------------------------------------------------- */

/* The loss whose gradient backward computes, with the draws replayed and
 * what the model treats as constants frozen at the base point: the reward
 * R0 and the advantages adv0 = R0 - b. The baseline b = fc_base(h) is
 * recomputed from the perturbed forward's h, so its MSE's gradient must
 * reach every parameter h depends on, as PyTorch's autograd sends it. */
typedef struct grad_ctx {
    heed_ram *r;
    heed_tensor *x, y, *draws;
    const float *w; /* (N, K) weights of the logits: the dy handed to backward */
    double *R0, *adv0;
} grad_ctx;

static double grad_loss(void *vctx) {
    grad_ctx *g = vctx;
    heed_ram *r = g->r;
    const heed_ram_cfg *c = &r->cfg;
    const int N = g->x->n, T = c->glimpses, K = c->classes, H = c->hidden;
    ck_assert_int_eq(heed_layer_forward(&r->base, g->x, &g->y), HEED_OK);
    double L = tu_weighted_sum(g->y.data, g->w, (size_t)N * K);
    const double sd = c->std;
    for (int t = 0; t < T - 1; t++)
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 2; k++) {
                double d = g->draws->data[(i * T + t + 1) * 2 + k] - (double)r->mu.data[(t * N + i) * 2 + k];
                L += (d * d / (2 * sd * sd) + log(sd * sqrt(2 * 3.14159265358979323846))) * g->adv0[t * N + i] / N;
            }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            double b = r->fc_base->b[0];
            for (int j = 0; j < H; j++) b += (double)r->fc_base->w[j] * r->h.data[(t * N + i) * H + j];
            L += (b - g->R0[i]) * (b - g->R0[i]) / (N * T);
        }
    return L;
}

/* with_dx 0: backward is handed no dx, as for a network's first layer (the
 * usual place of a RAM): the parameter gradients must not change. */
static void check_gradients_dx(int lstm, double ce_w, int glimpses, int with_dx) {
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(lstm);
    cfg.glimpses = glimpses;
    const int N = 3, in[3] = {2, 7, 9}, T = cfg.glimpses, K = cfg.classes;
    heed_ram *r = make_ram(&cfg, in, &p, 21 + lstm);
    heed_tensor x, dx, dy, draws;
    heed_tensor_alloc(&x, N, in[0], in[1], in[2]);
    heed_tensor_alloc(&dx, N, in[0], in[1], in[2]);
    heed_tensor_alloc(&dy, N, K, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 7);
    fill_draws(&draws, N, T, 8);
    ck_assert_int_eq(heed_ram_replay(r, &draws), HEED_OK);
    heed_layer_set_training(&r->base, 1);
    tu_fill_uniform(dy.data, (size_t)N * K, -1, 1, 9);
    for (int i = 0; i < N * K; i++) dy.data[i] = (float)(ce_w * dy.data[i]);
    grad_ctx g = {.r = r, .x = &x, .draws = &draws, .w = dy.data};

    /* Analytic: forward, targets (labels chosen so some are right), backward. */
    heed_params_zero_grad(&p);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &g.y), HEED_OK);
    int labels[3];
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int k = 1; k < K; k++) best = g.y.data[i * K + k] > g.y.data[i * K + best] ? k : best;
        labels[i] = i == 1 ? (best + 1) % K : best; /* images 0 and 2 right, 1 wrong */
    }
    double loss = 0;
    ck_assert_int_eq(heed_layer_set_targets(&r->base, labels, N, &loss), HEED_OK);
    ck_assert_msg(heed_layer_backward(&r->base, &x, &g.y, &dy, with_dx ? &dx : NULL) == HEED_OK, "%s",
                  heed_last_error());
    double R0[3], adv0[16];
    for (int i = 0; i < N; i++) R0[i] = i == 1 ? 0 : 1;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) adv0[t * N + i] = R0[i] - r->b.data[t * N + i];
    g.R0 = R0, g.adv0 = adv0;

    for (int k = 0; k < p.count; k++) {
        heed_param *it = &p.items[k];
        TU_GRADCHECK(it->name, grad_loss, &g, p.values + it->offset, it->count, p.grads + it->offset,
                     5e-4f, 3e-3);
    }
    if (ce_w != 0 && with_dx) TU_GRADCHECK("dx", grad_loss, &g, x.data, heed_tensor_count(&x), dx.data, 5e-4f, 3e-3);
    if (ce_w == 0) {
        /* The baseline and the policy read h but not the logits: the
         * classifier gets nothing without a logit gradient. */
        heed_param *act = heed_params_find(&p, "ram.fc_act.weight");
        for (size_t i = 0; i < act->count; i++) ck_assert_float_eq(p.grads[act->offset + i], 0.0f);
    }
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&dx), heed_tensor_free(&dy), heed_tensor_free(&g.y);
    heed_tensor_free(&draws);
}

static void check_gradients(int lstm, double ce_w, int glimpses) {
    check_gradients_dx(lstm, ce_w, glimpses, 1);
}

START_TEST(gradients_relu_core) { check_gradients(0, 1.0, 3); }
END_TEST

START_TEST(gradients_of_policy_and_baseline_alone) { check_gradients(0, 0.0, 3); }
END_TEST

START_TEST(gradients_lstm_core) { check_gradients(1, 1.0, 3); }
END_TEST

/* One glimpse: no policy step at all, the core runs once from h_{-1} = 0. */
START_TEST(gradients_single_glimpse) {
    check_gradients(0, 1.0, 1);
    check_gradients(1, 1.0, 1);
}
END_TEST

START_TEST(gradients_without_dx) {
    check_gradients_dx(0, 1.0, 3, 0);
    check_gradients_dx(1, 1.0, 3, 0);
}
END_TEST

/* ---- the hybrid loss -------------------------------------------------------- */

START_TEST(set_targets_adds_reinforce_and_baseline_terms) {
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    const int N = 3, in[3] = {1, 8, 8}, T = cfg.glimpses, K = cfg.classes;
    heed_ram *r = make_ram(&cfg, in, &p, 31);
    heed_tensor x, y = {0}, dy;
    heed_tensor_alloc(&x, N, 1, 8, 8);
    heed_tensor_alloc(&dy, N, K, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 1);
    heed_layer_set_training(&r->base, 1);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
    /* Backward before set_targets is refused. */
    ck_assert_int_eq(heed_layer_backward(&r->base, &x, &y, &dy, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "set_targets"));
    int labels[3] = {0, 1, 2};
    int bad[3] = {0, 4, 1};
    double loss = 0;
    ck_assert_int_eq(heed_layer_set_targets(&r->base, bad, N, &loss), HEED_ERR_ARG);
    ck_assert_int_eq(heed_layer_set_targets(&r->base, labels, N - 1, &loss), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_layer_set_targets(&r->base, labels, N, &loss), HEED_OK);
    /* The same terms from the caches: s from the recorded (unclamped)
     * samples, R from the logits. */
    double want = 0, sd = cfg.std;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int k = 1; k < K; k++) best = y.data[i * K + k] > y.data[i * K + best] ? k : best;
        double R = best == labels[i];
        for (int t = 0; t < T; t++) {
            double b = r->b.data[t * N + i];
            want += (b - R) * (b - R) / (N * T);
            if (t == T - 1) continue;
            double logp = 0;
            for (int k = 0; k < 2; k++) {
                double s = r->s.data[(t * N + i) * 2 + k], mu = r->mu.data[(t * N + i) * 2 + k];
                logp += -(s - mu) * (s - mu) / (2 * sd * sd) - log(sd * sqrt(2 * 3.14159265358979323846));
                /* the location is the clamped sample */
                ck_assert_float_eq(heed_ram_locations(r)->data[(i * T + t + 1) * 2 + k], fmaxf(-1, fminf(1, s)));
            }
            want += -logp * (R - b) / N;
        }
    }
    ck_assert_double_eq_tol(loss, want, 1e-5);
    ck_assert_int_eq(heed_layer_backward(&r->base, &x, &y, &dy, NULL), HEED_OK);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy);
}
END_TEST

/* ---- learning where to look ----------------------------------------------- */

/* Half the images hold a bright 4x4 square around pixel (4, 4) (location
 * (-0.5, -0.5)), labelled 1; the others are blank, labelled 0. With two
 * glimpses, a random first one rarely sees the square, so the reward
 * depends on where the second looks: the policy must move its mean there. */
static double mean_distance(heed_ram *r, heed_tensor *x, heed_tensor *y) {
    heed_layer_set_training(&r->base, 0);
    heed_layer_reseed(&r->base, 99);
    ck_assert_int_eq(heed_layer_forward(&r->base, x, y), HEED_OK);
    double d = 0;
    for (int i = 0; i < x->n; i++) d += hypot(r->mu.data[2 * i] + 0.5, r->mu.data[2 * i + 1] + 0.5);
    heed_layer_set_training(&r->base, 1);
    return d / x->n;
}

START_TEST(reinforce_moves_the_policy_to_the_object) {
    const int N = 32;
    heed_params p = {0};
    heed_ram_cfg cfg = {.glimpses = 2, .patch = 4, .scales = 1, .glimpse_hidden = 16, .loc_hidden = 16,
                        .hidden = 32, .classes = 2, .std = 0.2f, .samples = 1, .seed = 2};
    heed_ram *r = make_ram(&cfg, (int[3]){1, 16, 16}, &p, 2);
    heed_optim opt;
    ck_assert_int_eq(heed_optim_init(&opt, &(heed_optim_cfg){.kind = HEED_OPTIM_SGD, .lr = 0.01f,
                                                              .momentum = 0.9f}, &p), HEED_OK);
    heed_tensor x, y = {0}, dy;
    heed_tensor_alloc(&x, N, 1, 16, 16);
    heed_tensor_alloc(&dy, N, 2, 1, 1);
    int labels[32];
    for (int i = 0; i < N; i++) {
        labels[i] = i % 2;
        if (labels[i])
            for (int a = 2; a < 6; a++)
                for (int b = 2; b < 6; b++) x.data[i * 256 + a * 16 + b] = 1.0f;
    }
    const double before = mean_distance(r, &x, &y);
    for (int step = 0; step < 400; step++) {
        heed_params_zero_grad(&p);
        ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
        double loss;
        heed_tensor_zero(&dy);
        ck_assert_int_eq(heed_softmax_cross_entropy(&y, labels, &loss, NULL, &dy), HEED_OK);
        ck_assert_int_eq(heed_layer_set_targets(&r->base, labels, N, &loss), HEED_OK);
        ck_assert_int_eq(heed_layer_backward(&r->base, &x, &y, &dy, NULL), HEED_OK);
        heed_optim_step(&opt, 0.01f);
    }
    const double after = mean_distance(r, &x, &y);
    ck_assert_msg(after < 0.2 && after < 0.5 * before, "policy mean %.3f from the object, was %.3f",
                  after, before);
    heed_optim_free(&opt);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy);
}
END_TEST

/* ---- reproducibility, samples, files ------------------------------------------ */

/* A few SGD steps on N images from seed 5 at the given thread count; the
 * weights. */
static float *train_a_little(int threads, int N, size_t *count) {
    omp_set_num_threads(threads);
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    cfg.seed = 5;
    heed_ram *r = make_ram(&cfg, (int[3]){1, 12, 12}, &p, 5);
    heed_optim opt;
    heed_optim_init(&opt, &(heed_optim_cfg){.kind = HEED_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f}, &p);
    heed_tensor x, y = {0}, dy;
    heed_tensor_alloc(&x, N, 1, 12, 12);
    heed_tensor_alloc(&dy, N, cfg.classes, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 5);
    int labels[64];
    ck_assert_int_le(N, 64);
    for (int i = 0; i < N; i++) labels[i] = i % cfg.classes;
    heed_layer_set_training(&r->base, 1);
    heed_layer_reseed(&r->base, 17);
    for (int step = 0; step < 5; step++) {
        heed_params_zero_grad(&p);
        ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
        double loss;
        heed_tensor_zero(&dy);
        heed_softmax_cross_entropy(&y, labels, &loss, NULL, &dy);
        ck_assert_int_eq(heed_layer_set_targets(&r->base, labels, N, &loss), HEED_OK);
        ck_assert_int_eq(heed_layer_backward(&r->base, &x, &y, &dy, NULL), HEED_OK);
        heed_optim_step(&opt, 0.05f);
    }
    *count = p.total;
    float *w = malloc(p.total * sizeof(float));
    memcpy(w, p.values, p.total * sizeof(float));
    heed_optim_free(&opt);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy);
    omp_set_num_threads(2);
    return w;
}

/* 20 images: too few rows to share the forward's steps by rows, so the
 * threads work inside each product; 40 (and 37, an odd count): each thread
 * runs every step for its own rows. */
static void check_training_reproducible(int N) {
    size_t n1, n2, n3;
    float *a = train_a_little(1, N, &n1), *b = train_a_little(1, N, &n2);
    float *c = train_a_little(2, N, &n3);
    ck_assert(n1 == n2 && n1 == n3);
    ck_assert_int_eq(memcmp(a, b, n1 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a, c, n1 * sizeof(float)), 0);
    free(a), free(b), free(c);
}

START_TEST(training_is_reproducible_across_runs_and_threads) {
    check_training_reproducible(20);
    check_training_reproducible(40);
    check_training_reproducible(37);
}
END_TEST

/* Inference with three samples per image (rows m N + i; a thread's rows
 * span two samples) on 1 and 2 threads, and frozen on both:
 * the same outputs, locations and patches, bit for bit. */
START_TEST(inference_is_the_same_on_one_thread_and_two) {
    const int N = 13;
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(1);
    cfg.samples = 3;
    heed_ram *r = make_ram(&cfg, (int[3]){1, 12, 12}, &p, 9);
    heed_tensor x, y1 = {0}, y2 = {0}, where1 = {0}, seen1 = {0};
    heed_tensor_alloc(&x, N, 1, 12, 12);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 9);
    heed_layer_set_training(&r->base, 0);
    omp_set_num_threads(1);
    heed_layer_reseed(&r->base, 3);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y1), HEED_OK);
    ck_assert_int_eq(heed_tensor_zeros_like(&where1, heed_ram_locations(r)), HEED_OK);
    ck_assert_int_eq(heed_tensor_copy(&where1, heed_ram_locations(r)), HEED_OK);
    ck_assert_int_eq(heed_tensor_zeros_like(&seen1, heed_ram_patches(r)), HEED_OK);
    ck_assert_int_eq(heed_tensor_copy(&seen1, heed_ram_patches(r)), HEED_OK);
    omp_set_num_threads(2);
    heed_layer_reseed(&r->base, 3);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y2), HEED_OK);
    ck_assert_int_eq(memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(where1.data, heed_ram_locations(r)->data,
                            heed_tensor_count(&where1) * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(seen1.data, heed_ram_patches(r)->data,
                            heed_tensor_count(&seen1) * sizeof(float)), 0);
    /* Frozen, its layers read kept transposed weights (linear.c): the
     * same outputs again, on one thread and on two. */
    heed_layer_set_frozen(&r->base, 1);
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        heed_layer_reseed(&r->base, 3);
        ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y2), HEED_OK);
        ck_assert_msg(!memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)),
                      "frozen on %d threads: outputs differ", t);
        ck_assert(!memcmp(where1.data, heed_ram_locations(r)->data,
                          heed_tensor_count(&where1) * sizeof(float)));
    }
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y1), heed_tensor_free(&y2);
    heed_tensor_free(&where1), heed_tensor_free(&seen1);
}
END_TEST

/* samples = M: log of the mean of the M single-sequence softmaxes. */
START_TEST(inference_averages_samples) {
    const int N = 2, M = 3;
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    cfg.samples = M;
    const int T = cfg.glimpses, K = cfg.classes;
    heed_ram *r = make_ram(&cfg, (int[3]){1, 9, 9}, &p, 41);
    heed_tensor x, y = {0}, y1 = {0}, draws, one, dy;
    heed_tensor_alloc(&x, N, 1, 9, 9);
    heed_tensor_alloc(&dy, N, K, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 4);
    fill_draws(&draws, N * M, T, 12);
    heed_tensor_alloc(&one, N, T, 2, 1);
    ck_assert_int_eq(heed_ram_replay(r, &draws), HEED_OK);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
    /* The recorded locations are the first sample's. */
    ck_assert_float_eq(heed_ram_locations(r)->data[2 * T + 1], draws.data[2 * T + 1]);
    ck_assert_int_eq(heed_layer_backward(&r->base, &x, &y, &dy, NULL), HEED_ERR_ARG);
    double probs[2][4] = {{0}};
    r->cfg.samples = 1; /* white box: the same weights, one sequence at a time */
    for (int m = 0; m < M; m++) {
        memcpy(one.data, draws.data + (size_t)m * N * T * 2, (size_t)N * T * 2 * sizeof(float));
        ck_assert_int_eq(heed_ram_replay(r, &one), HEED_OK);
        ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y1), HEED_OK);
        for (int i = 0; i < N; i++) {
            double z = 0;
            for (int k = 0; k < K; k++) z += exp(y1.data[i * K + k]);
            for (int k = 0; k < K; k++) probs[i][k] += exp(y1.data[i * K + k]) / z / M;
        }
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) ck_assert_double_eq_tol(y.data[i * K + k], log(probs[i][k]), 1e-5);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&y1), heed_tensor_free(&draws);
    heed_tensor_free(&one), heed_tensor_free(&dy);
}
END_TEST

/* The patches are gathered when asked for (ram.c): after every forward
 * they are that forward's, for its first sample, at the locations it
 * recorded, against the reference sensor. */
START_TEST(patches_follow_each_forward) {
    const int N = 3, M = 2, C = 2, H = 10, W = 11;
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    cfg.samples = M;
    const int T = cfg.glimpses, P = cfg.patch, S = cfg.scales, D = S * C * P * P;
    heed_ram *r = make_ram(&cfg, (int[3]){C, H, W}, &p, 5);
    ck_assert_int_eq((int)heed_tensor_count(heed_ram_patches(r)), 0);
    heed_layer_set_training(&r->base, 0);
    heed_tensor x, y = {0}, draws;
    heed_tensor_alloc(&x, N, C, H, W);
    double *ref = malloc((size_t)D * sizeof(double));
    for (int pass = 0; pass < 2; pass++) {
        tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 20 + pass);
        fill_draws(&draws, N * M, T, 30 + pass);
        ck_assert_int_eq(heed_ram_replay(r, &draws), HEED_OK);
        ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
        heed_tensor_free(&draws);
        const heed_tensor *seen = heed_ram_patches(r);
        ck_assert(seen->n == N && seen->c == T * S * C && seen->h == P && seen->w == P);
        for (int i = 0; i < N; i++)
            for (int t = 0; t < T; t++) {
                const float *l = heed_ram_locations(r)->data + (i * T + t) * 2;
                ref_glimpse(x.data + (size_t)i * C * H * W, C, H, W, l[0], l[1], P, S, ref);
                for (int j = 0; j < D; j++)
                    ck_assert_double_eq_tol(seen->data[(size_t)(i * T + t) * D + j], ref[j], 1e-6);
            }
        /* a second request gives the same tensor */
        ck_assert_ptr_eq(heed_ram_patches(r), seen);
    }
    free(ref);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y);
}
END_TEST

static const char *RAM_NET = "# a small RAM\ninput 1 12 12\n"
                             "ram glimpses=3 patch=4 scales=2 glimpse_hidden=8 loc_hidden=6 hidden=10 "
                             "classes=3 lstm=1 std=0.25 samples=2 seed=9\n";

START_TEST(net_file_and_model_round_trip) {
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, RAM_NET, "t", 3) == HEED_OK, "%s", heed_last_error());
    heed_ram *r = (heed_ram *)heed_net_find(net, "ram1");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->base.ops->type, "ram");
    const heed_ram_cfg *c = heed_ram_config(r);
    ck_assert(c->glimpses == 3 && c->patch == 4 && c->scales == 2 && c->glimpse_hidden == 8 &&
              c->loc_hidden == 6 && c->hidden == 10 && c->classes == 3 && c->lstm == 1 &&
              c->samples == 2 && c->seed == 9);
    ck_assert_float_eq(c->std, 0.25f);
    heed_param *ih = heed_params_find(&net->params, "ram1.fc_ih.weight");
    ck_assert_ptr_nonnull(ih);
    ck_assert(ih->shape[0] == 40 && ih->shape[1] == 10);
    ck_assert_ptr_nonnull(heed_params_find(&net->params, "ram1.fc_g.weight"));
    ck_assert_ptr_null(heed_params_find(&net->params, "ram1.fc_hg.weight"));
    heed_model *m, *back;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"a", "b", "c"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    char path[256];
    snprintf(path, sizeof path, "/tmp/heed-check-ram-%ld.heed", (long)getpid());
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    unlink(path);
    heed_tensor x, y1 = {0}, y2 = {0};
    heed_tensor_alloc(&x, 4, 1, 12, 12);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 8);
    heed_net_set_training(m->net, 0), heed_net_set_training(back->net, 0);
    heed_net_reseed(m->net, 4), heed_net_reseed(back->net, 4);
    ck_assert_int_eq(heed_net_forward(m->net, &x, &y1), HEED_OK);
    ck_assert_int_eq(heed_net_forward(back->net, &x, &y2), HEED_OK);
    ck_assert_int_eq(memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)), 0);
    /* Another reseed draws other first glimpses. */
    heed_net_reseed(back->net, 5);
    ck_assert_int_eq(heed_net_forward(back->net, &x, &y2), HEED_OK);
    ck_assert_int_ne(memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)), 0);
    heed_model_free(m), heed_model_free(back);
    heed_tensor_free(&x), heed_tensor_free(&y1), heed_tensor_free(&y2);
}
END_TEST

/* W3's forward FLOPs, as PyTorch's hooks count them per image: 6 steps of
 * fc_g 432x128, fc_l 2x128, fc_gg and fc_gl 128x256, fc_hh and fc_hg
 * 256x256 (252160 MACs), 5 of fc_loc 256x2, and fc_act 256x10:
 * 2 * (6 * 252160 + 5 * 512 + 2560) = 3036160. */
START_TEST(w3_net_file_and_flops) {
    heed_net *net;
    ck_assert_msg(heed_net_load(&net, "nets/ram.net", 1) == HEED_OK, "%s", heed_last_error());
    ck_assert_double_eq(heed_layer_flops(&net->root->base), 3036160.0);
    ck_assert_uint_eq(heed_params_trainable(&net->params),
                      432 * 128 + 128 + 2 * 128 + 128 + 2 * (128 * 256 + 256) + 2 * (256 * 256 + 256) +
                          256 * 2 + 2 + 256 + 1 + 2560 + 10);
    heed_net_free(net);
}
END_TEST

/* A NULL configuration or parameter store is refused (both were
 * dereferenced), as a NULL name is read as "" like other layers'. */
START_TEST(null_arguments_are_refused) {
    heed_params p = {0};
    heed_ram *r = (heed_ram *)&p;
    const heed_ram_cfg cfg = small_cfg(0);
    ck_assert_int_eq(heed_ram_new(&r, NULL, (int[3]){1, 12, 12}, &p, "ram"), HEED_ERR_ARG);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(heed_last_error(), "ram ram: no configuration given"), "%s",
                  heed_last_error());
    ck_assert_int_eq(heed_ram_new(&r, &cfg, (int[3]){1, 12, 12}, NULL, "ram"), HEED_ERR_ARG);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(heed_last_error(), "ram ram: no parameter store given"), "%s",
                  heed_last_error());
    ck_assert_int_eq(p.count, 0);
}
END_TEST

/* The longest name that fits is 39 characters ("<name>.fc_base" is 47);
 * a longer one is refused as RAM's, not as one of its parts'. */
START_TEST(long_names_are_refused_as_rams) {
    heed_params p = {0};
    heed_ram *r;
    const heed_ram_cfg cfg = small_cfg(0);
    char name[48];
    memset(name, 'n', 40);
    name[40] = '\0';
    ck_assert_int_eq(heed_ram_new(&r, &cfg, (int[3]){1, 12, 12}, &p, name), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "the name has 40 characters, at most 39 fit") &&
                      strncmp(heed_last_error(), "ram nnn", 7) == 0,
                  "%s", heed_last_error());
    ck_assert_int_eq(p.count, 0);
    name[39] = '\0';
    ck_assert_msg(heed_ram_new(&r, &cfg, (int[3]){1, 12, 12}, &p, name) == HEED_OK, "%s", heed_last_error());
    heed_layer_free(&r->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(bad_settings_are_refused) {
    heed_params p = {0};
    heed_ram *r;
    const int in[3] = {1, 12, 12};
    struct {
        heed_ram_cfg cfg;
        const char *word;
    } cases[8];
    for (int i = 0; i < 8; i++) cases[i].cfg = small_cfg(0);
    cases[0].cfg.glimpses = 0, cases[0].word = "glimpses";
    cases[1].cfg.std = 0, cases[1].word = "std";
    cases[2].cfg.std = -0.1f, cases[2].word = "std";
    cases[3].cfg.patch = 13, cases[3].word = "patch";
    cases[4].cfg.scales = 5, cases[4].word = "largest patch"; /* 3 * 16 = 48 > 2 * 12 */
    cases[5].cfg.samples = 0, cases[5].word = "samples";
    cases[6].cfg.lstm = 2, cases[6].word = "lstm";
    cases[7].cfg.hidden = 0, cases[7].word = "hidden";
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(heed_ram_new(&r, &cases[i].cfg, in, &p, "ram"), HEED_ERR_ARG);
        ck_assert_ptr_null(r);
        ck_assert_msg(strstr(heed_last_error(), cases[i].word), "case %d: %s", i, heed_last_error());
    }
    ck_assert_int_eq(p.count, 0);
    heed_params_free(&p);
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, "input 1 12 12\nram glimpses=0\n", "bad.net", 1), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "bad.net:2"));
    ck_assert_int_eq(heed_net_parse(&net, "input 1 12 12\nram patch=4 glimpse=3\n", "bad.net", 1), HEED_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "glimpse_hidden"));
    /* A forward of the wrong input shape. */
    heed_params q = {0};
    heed_ram_cfg cfg = small_cfg(0);
    r = make_ram(&cfg, in, &q, 1);
    heed_tensor x, y = {0};
    heed_tensor_alloc(&x, 1, 1, 12, 11);
    ck_assert_int_eq(heed_ram_forward(r, &x, &y), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_ram_set_targets(r, (int[1]){0}, 1, &(double){0}), HEED_ERR_ARG);
    heed_layer_free(&r->base);
    heed_params_free(&q);
    heed_tensor_free(&x), heed_tensor_free(&y);
}
END_TEST

/* ---- documented draws, defaults and settings ------------------------------ */

/* ram.h: l_0 ~ U[-1, 1]^2 and, in training, s ~ N(mu_t, std^2) (WORKLOADS.md
 * W3's policy). Checked on 4000 images: the first locations reach both
 * ends of [-1, 1] and average about 0 (U[-1, 1]'s mean; the standard error
 * is 0.58 / sqrt(8000) = 0.0065), and s - mu has the configured spread
 * (standard error of the sample deviation 0.3 / sqrt(2 * 8000) = 0.0024). */
START_TEST(draws_follow_the_documented_distributions) {
    const int N = 4000;
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    cfg.glimpses = 2, cfg.std = 0.3f;
    heed_ram *r = make_ram(&cfg, (int[3]){1, 8, 8}, &p, 51);
    heed_tensor x, y = {0};
    heed_tensor_alloc(&x, N, 1, 8, 8);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 52);
    heed_layer_set_training(&r->base, 1);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
    const float *where = heed_ram_locations(r)->data;
    double lo = 1, hi = -1, mean = 0, ss = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++) {
            const double l0 = where[(i * 2 + 0) * 2 + k];
            lo = fmin(lo, l0), hi = fmax(hi, l0), mean += l0 / (2.0 * N);
            const double d = (double)r->s.data[i * 2 + k] - r->mu.data[i * 2 + k];
            ss += d * d / (2.0 * N);
        }
    ck_assert_msg(lo < -0.99 && hi > 0.99 && fabs(mean) < 0.03, "l_0 from %g to %g, mean %g", lo, hi, mean);
    ck_assert_msg(fabs(sqrt(ss) - 0.3) < 0.015, "s - mu has deviation %g, want 0.3", sqrt(ss));
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y);
}
END_TEST

/* The reward uses the first of tied maxima, as torch.argmax does: with
 * fc_act all zeros every logit is 0, so class 0 is the prediction, and
 * image 0 (label 0) is right while image 1 (label K - 1) is wrong. The loss
 * then is the set_targets test's sum with R = (1, 0). */
START_TEST(reward_takes_the_first_of_tied_maxima) {
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    const int N = 2, T = cfg.glimpses, K = cfg.classes;
    heed_ram *r = make_ram(&cfg, (int[3]){1, 8, 8}, &p, 53);
    heed_param *w = heed_params_find(&p, "ram.fc_act.weight"), *b = heed_params_find(&p, "ram.fc_act.bias");
    memset(p.values + w->offset, 0, w->count * sizeof(float));
    memset(p.values + b->offset, 0, b->count * sizeof(float));
    heed_tensor x, y = {0};
    heed_tensor_alloc(&x, N, 1, 8, 8);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 54);
    heed_layer_set_training(&r->base, 1);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
    for (int i = 0; i < N * K; i++) ck_assert_float_eq(y.data[i], 0.0f);
    const int labels[2] = {0, K - 1};
    const double R[2] = {1, 0}, sd = cfg.std;
    double loss = 0, want = 0;
    ck_assert_int_eq(heed_layer_set_targets(&r->base, labels, N, &loss), HEED_OK);
    for (int i = 0; i < N; i++)
        for (int t = 0; t < T; t++) {
            const double bt = r->b.data[t * N + i];
            want += (bt - R[i]) * (bt - R[i]) / (N * T);
            if (t == T - 1) continue;
            for (int k = 0; k < 2; k++) {
                const double d = (double)r->s.data[(t * N + i) * 2 + k] - r->mu.data[(t * N + i) * 2 + k];
                want += (d * d / (2 * sd * sd) + log(sd * sqrt(2 * 3.14159265358979323846))) * (R[i] - bt) / N;
            }
        }
    ck_assert_double_eq_tol(loss, want, 1e-5);
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y);
}
END_TEST

/* cfg.seed starts the layer's stream (ram.h) and stays part of it after
 * heed_layer_reseed ("the configured seed stays part of the stream"): two
 * layers with the same weights and different seeds look first at different
 * places, before and after both are reseeded alike; the same seed twice
 * looks at the same ones. */
START_TEST(the_configured_seed_is_part_of_the_stream) {
    heed_ram *r[3];
    heed_params p[3] = {{0}};
    const uint64_t seeds[3] = {1, 2, 1};
    heed_tensor x, y = {0};
    heed_tensor_alloc(&x, 3, 1, 8, 8);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 55);
    float l0[2][3][6];
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < 3; j++) {
            if (pass == 0) {
                heed_ram_cfg cfg = small_cfg(0);
                cfg.seed = seeds[j];
                r[j] = make_ram(&cfg, (int[3]){1, 8, 8}, &p[j], 56);
            } else {
                heed_layer_reseed(&r[j]->base, 7);
            }
            ck_assert_int_eq(heed_layer_forward(&r[j]->base, &x, &y), HEED_OK);
            const int T = r[j]->cfg.glimpses;
            for (int i = 0; i < 3; i++)
                for (int k = 0; k < 2; k++) l0[pass][j][i * 2 + k] = heed_ram_locations(r[j])->data[(i * T) * 2 + k];
        }
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_msg(memcmp(l0[pass][0], l0[pass][1], sizeof l0[pass][0]) != 0, "pass %d: seeds 1 and 2 drew "
                      "the same first locations", pass);
        ck_assert_int_eq(memcmp(l0[pass][0], l0[pass][2], sizeof l0[pass][0]), 0);
    }
    for (int j = 0; j < 3; j++) heed_layer_free(&r[j]->base), heed_params_free(&p[j]);
    heed_tensor_free(&x), heed_tensor_free(&y);
}
END_TEST

/* heed_ram_defaults() is WORKLOADS.md's W3: 6 glimpses of 3 patches of side
 * 12, 24, 48; hidden sizes 128, 128, 256; 10 classes; ReLU core; std 0.17. */
START_TEST(defaults_are_w3) {
    const heed_ram_cfg c = heed_ram_defaults();
    ck_assert(c.glimpses == 6 && c.patch == 12 && c.scales == 3 && c.glimpse_hidden == 128 &&
              c.loc_hidden == 128 && c.hidden == 256 && c.classes == 10 && c.lstm == 0 && c.samples == 1);
    ck_assert_float_eq(c.std, 0.17f);
}
END_TEST

/* The bounds bad_settings_are_refused tests from outside, here from inside:
 * a patch as wide as the image's smaller side, and a largest patch exactly
 * twice the larger side, are allowed ("from 1 to the smaller side"; "more
 * than twice" is refused). */
START_TEST(settings_at_their_bounds_are_accepted) {
    heed_params p = {0};
    heed_ram *r;
    heed_ram_cfg cfg = small_cfg(0);
    cfg.patch = 12, cfg.scales = 1;
    ck_assert_msg(heed_ram_new(&r, &cfg, (int[3]){1, 12, 16}, &p, "ram") == HEED_OK, "%s", heed_last_error());
    heed_layer_free(&r->base);
    heed_params_free(&p);
    p = (heed_params){0};
    cfg.patch = 4, cfg.scales = 3; /* 4 * 4 = 16 = 2 * 8 */
    ck_assert_msg(heed_ram_new(&r, &cfg, (int[3]){1, 8, 8}, &p, "ram") == HEED_OK, "%s", heed_last_error());
    heed_layer_free(&r->base);
    heed_params_free(&p);
}
END_TEST

/* samples > 1 averages sequences in inference only ("training runs one"):
 * a training forward, its targets and its backward work as with samples 1. */
START_TEST(training_runs_one_sequence_whatever_samples) {
    heed_params p = {0};
    heed_ram_cfg cfg = small_cfg(0);
    cfg.samples = 3;
    const int N = 2;
    heed_ram *r = make_ram(&cfg, (int[3]){1, 8, 8}, &p, 57);
    heed_tensor x, y = {0}, dy;
    heed_tensor_alloc(&x, N, 1, 8, 8);
    heed_tensor_alloc(&dy, N, cfg.classes, 1, 1);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 58);
    tu_fill_uniform(dy.data, heed_tensor_count(&dy), -1, 1, 59);
    heed_layer_set_training(&r->base, 1);
    ck_assert_int_eq(heed_layer_forward(&r->base, &x, &y), HEED_OK);
    double loss = 0;
    ck_assert_int_eq(heed_layer_set_targets(&r->base, (int[2]){0, 1}, N, &loss), HEED_OK);
    ck_assert_msg(heed_layer_backward(&r->base, &x, &y, &dy, NULL) == HEED_OK, "%s", heed_last_error());
    heed_layer_free(&r->base);
    heed_params_free(&p);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy);
}
END_TEST

Suite *heed_suite_ram(void) {
    Suite *s = suite_create("ram");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sensor_matches_hand_computed_patches);
    tcase_add_test(tc, sensor_matches_reference_and_its_transpose);
    tcase_add_test(tc, sensor_centres_across_a_wide_image);
    tcase_add_test(tc, sensor_handles_patches_wider_than_its_row_buffer);
    tcase_add_test(tc, sensor_matches_reference_at_w3_size);
    tcase_add_test(tc, sensor_refuses_a_non_finite_last_location);
    tcase_add_test(tc, forward_matches_reference_relu);
    tcase_add_test(tc, forward_matches_reference_lstm);
    tcase_add_test(tc, gradients_relu_core);
    tcase_add_test(tc, gradients_of_policy_and_baseline_alone);
    tcase_add_test(tc, gradients_lstm_core);
    tcase_add_test(tc, gradients_single_glimpse);
    tcase_add_test(tc, gradients_without_dx);
    tcase_add_test(tc, set_targets_adds_reinforce_and_baseline_terms);
    tcase_add_test(tc, reinforce_moves_the_policy_to_the_object);
    tcase_add_test(tc, training_is_reproducible_across_runs_and_threads);
    tcase_add_test(tc, inference_is_the_same_on_one_thread_and_two);
    tcase_add_test(tc, inference_averages_samples);
    tcase_add_test(tc, patches_follow_each_forward);
    tcase_add_test(tc, net_file_and_model_round_trip);
    tcase_add_test(tc, w3_net_file_and_flops);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, null_arguments_are_refused);
    tcase_add_test(tc, long_names_are_refused_as_rams);
    tcase_add_test(tc, draws_follow_the_documented_distributions);
    tcase_add_test(tc, reward_takes_the_first_of_tied_maxima);
    tcase_add_test(tc, the_configured_seed_is_part_of_the_stream);
    tcase_add_test(tc, defaults_are_w3);
    tcase_add_test(tc, settings_at_their_bounds_are_accepted);
    tcase_add_test(tc, training_runs_one_sequence_whatever_samples);
    suite_add_tcase(s, tc);
    return s;
}
