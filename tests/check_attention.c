/* check_attention.c -- SE, CBAM and ECA: forward against the WORKLOADS.md
 * formulas (ECA: the paper's module) written out in plain loops here, gradients against central
 * differences for the input and every parameter, attention exposed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbam.h"
#include "eca.h"
#include "net.h"
#include "params.h"
#include "ram.h"
#include "rng.h"
#include "se.h"
#include "testutil.h"

typedef struct case_ctx {
    heed_layer *layer;
    heed_tensor x, y, w;
} case_ctx;

static double eval_loss(void *p) {
    case_ctx *c = p;
    ck_assert_int_eq(heed_layer_forward(c->layer, &c->x, &c->y), HEED_OK);
    return tu_weighted_sum(c->y.data, c->w.data, heed_tensor_count(&c->y));
}

/* The input gradient dx (checked by differences, added into zeros) again:
 * added into a dx holding 1 everywhere it is 1 + dx; written into one of
 * NaNs with the sequence's dx_fresh hint, dx itself (the hint ignored by
 * a layer that does not take it, which then must get zeros: not tested). */
static void check_dx_modes(heed_layer *layer, case_ctx *ctx, const heed_tensor *dx) {
    const size_t count = heed_tensor_count(dx);
    heed_tensor again;
    ck_assert_int_eq(heed_tensor_alloc(&again, dx->n, dx->c, dx->h, dx->w), HEED_OK);
    for (int fresh = 0; fresh <= layer->ops->writes_fresh_dx; fresh++) {
        for (size_t i = 0; i < count; i++) again.data[i] = fresh ? NAN : 1.0f;
        eval_loss(ctx);
        layer->dx_fresh = fresh;
        ck_assert_int_eq(heed_layer_backward(layer, &ctx->x, &ctx->y, &ctx->w, &again), HEED_OK);
        layer->dx_fresh = 0;
        for (size_t i = 0; i < count; i++) {
            const float want = fresh ? dx->data[i] : 1.0f + dx->data[i];
            ck_assert_msg(fabsf(again.data[i] - want) <= 1e-6f * (1.0f + fabsf(want)),
                          "%s fresh %d: dx[%zu] %g, want %g", layer->name, fresh, i,
                          (double)again.data[i], (double)want);
        }
    }
    heed_tensor_free(&again);
}

/* Checks d(sum w*y)/dx and /dparams of `layer` at x by central differences
 * with step eps. x is U(-1, 1), or with `spread` a shuffled ramp with steps
 * of 0.01, so that no maximum (over a plane, or over channels) has a rival
 * within the step: the step then never crosses a kink. */
static void gradcheck_layer_at(heed_layer *layer, heed_params *p, int n, int c, int h, int w,
                               double tol, float eps, int spread) {
    case_ctx ctx = {.layer = layer};
    ck_assert_int_eq(heed_tensor_alloc(&ctx.x, n, c, h, w), HEED_OK);
    const size_t count = heed_tensor_count(&ctx.x);
    tu_fill_uniform(ctx.x.data, count, -1, 1, 11);
    if (spread) {
        int *idx = malloc(count * sizeof(int));
        for (size_t i = 0; i < count; i++) idx[i] = (int)i;
        heed_rng r;
        heed_rng_seed(&r, 13, 1);
        heed_rng_shuffle(&r, idx, (int)count);
        for (size_t i = 0; i < count; i++) ctx.x.data[i] = 0.01f * (float)(idx[i] - (int)count / 2);
        free(idx);
    }
    ck_assert_int_eq(heed_tensor_alloc(&ctx.w, n, layer->out_c, layer->out_h, layer->out_w), HEED_OK);
    tu_fill_uniform(ctx.w.data, heed_tensor_count(&ctx.w), -1, 1, 12);
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&dx, n, c, h, w), HEED_OK);
    heed_params_zero_grad(p);
    eval_loss(&ctx);
    ck_assert_int_eq(heed_layer_backward(layer, &ctx.x, &ctx.y, &ctx.w, &dx), HEED_OK);
    TU_GRADCHECK_KINKS("input", eval_loss, &ctx, ctx.x.data, count, dx.data, eps, tol);
    for (int i = 0; i < p->count; i++) {
        heed_param *it = &p->items[i];
        if (it->flags & HEED_PARAM_BUFFER) continue;
        TU_GRADCHECK_KINKS(it->name, eval_loss, &ctx, p->values + it->offset, it->count,
                     p->grads + it->offset, eps, tol);
    }
    check_dx_modes(layer, &ctx, &dx);
    heed_tensor_free(&ctx.x), heed_tensor_free(&ctx.y), heed_tensor_free(&ctx.w), heed_tensor_free(&dx);
}

static void gradcheck_layer(heed_layer *layer, heed_params *p, int n, int c, int h, int w,
                            double tol) {
    gradcheck_layer_at(layer, p, n, c, h, w, tol, 1e-2f, 0);
}

static float sigmoidf_ref(float v) { return 1.0f / (1.0f + expf(-v)); }

/* fc: out[j] = b[j] + sum_i W[j][i] in[i] */
static void fc_ref(const float *W, const float *b, const float *in, int nin, int nout, float *out) {
    for (int j = 0; j < nout; j++) {
        double acc = b[j];
        for (int i = 0; i < nin; i++) acc += (double)W[j * nin + i] * in[i];
        out[j] = (float)acc;
    }
}

/* SE's variants: the paper's, MobileNetV3's (hardswish, hardsigmoid, a
 * hidden width of its own) and EfficientNet's (silu), as torchvision's
 * SqueezeExcitation computes them; a hidden width above C is allowed. */
static const heed_se_cfg se_variants[] = {
    {.r = 2},
    {.hidden = 4, .act = HEED_ACT_HARDSWISH, .gate = HEED_GATE_HARDSIGMOID},
    {.hidden = 8, .act = HEED_ACT_SILU},
};

static float act_ref(heed_act_kind act, float v) {
    const float t = fminf(fmaxf(v + 3.0f, 0.0f), 6.0f);
    return act == HEED_ACT_SILU ? v / (1.0f + expf(-v)) : act == HEED_ACT_HARDSWISH ? v * t / 6.0f
                                                                                     : fmaxf(v, 0.0f);
}

static float gate_ref(heed_gate gate, float v) {
    return gate == HEED_GATE_HARDSIGMOID ? fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) / 6.0f : sigmoidf_ref(v);
}

START_TEST(se_forward_matches_formula) {
    enum { N = 2, C = 6, H = 3, W = 5, MAXHID = 8 };
    const heed_se_cfg *cfg = &se_variants[_i];
    const int HID = cfg->hidden ? cfg->hidden : C / cfg->r;
    heed_params p = {0};
    heed_se *se;
    ck_assert_int_eq(heed_se_new(&se, cfg, (int[3]){C, H, W}, &p, "se"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 3), HEED_OK);
    /* weights wide enough that the hard gate's logits pass +-3 */
    for (int i = 0; i < p.count; i++)
        for (size_t k = 0; k < p.items[i].count; k++) p.values[p.items[i].offset + k] *= 4.0f;
    heed_tensor x, y = {0};
    heed_tensor_alloc(&x, N, C, H, W);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -2, 2, 4);
    ck_assert_int_eq(heed_layer_forward(&se->base, &x, &y), HEED_OK);
    const float *w1 = heed_params_find(&p, "se.fc1.weight") ? p.values + heed_params_find(&p, "se.fc1.weight")->offset : NULL;
    const float *b1 = p.values + heed_params_find(&p, "se.fc1.bias")->offset;
    const float *w2 = p.values + heed_params_find(&p, "se.fc2.weight")->offset;
    const float *b2 = p.values + heed_params_find(&p, "se.fc2.bias")->offset;
    ck_assert_ptr_nonnull(w1);
    ck_assert_int_eq(heed_params_find(&p, "se.fc1.bias")->count, HID);
    int clamped = 0;
    for (int n = 0; n < N; n++) {
        float s[C], h[MAXHID], a[C];
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int i = 0; i < H * W; i++) acc += x.data[(n * C + c) * H * W + i];
            s[c] = (float)(acc / (H * W));
        }
        fc_ref(w1, b1, s, C, HID, h);
        for (int j = 0; j < HID; j++) h[j] = act_ref(cfg->act, h[j]);
        fc_ref(w2, b2, h, HID, C, a);
        for (int c = 0; c < C; c++) {
            float e = gate_ref(cfg->gate, a[c]);
            clamped += e == 0.0f || e == 1.0f;
            ck_assert_float_eq_tol(heed_se_weights(se)->data[n * C + c], e, 1e-6);
            for (int i = 0; i < H * W; i++) {
                size_t k = (size_t)(n * C + c) * H * W + i;
                ck_assert_float_eq_tol(y.data[k], x.data[k] * e, 1e-5);
            }
        }
    }
    if (cfg->gate == HEED_GATE_HARDSIGMOID) ck_assert_int_gt(clamped, 0);
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_layer_free(&se->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(se_gradients) {
    heed_params p = {0};
    heed_se *se;
    heed_se_cfg cfg = se_variants[_i];
    if (cfg.r) cfg.r = 3;
    ck_assert_int_eq(heed_se_new(&se, &cfg, (int[3]){7, 3, 4}, &p, "se"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 5), HEED_OK);
    gradcheck_layer(&se->base, &p, 2, 7, 3, 4, 5e-4);
    heed_layer_free(&se->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(cbam_forward_matches_formula) {
    enum { N = 2, C = 4, H = 5, W = 6, R = 2, HID = C / R, K = 3 };
    heed_params p = {0};
    heed_cbam *cb;
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = R, .k = K}, (int[3]){C, H, W}, &p, "cb"),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 8), HEED_OK);
    /* Inference mode: bn uses running statistics; give them non-trivial values. */
    float *mean = p.values + heed_params_find(&p, "cb.bn.running_mean")->offset;
    float *var = p.values + heed_params_find(&p, "cb.bn.running_var")->offset;
    float *gamma = p.values + heed_params_find(&p, "cb.bn.weight")->offset;
    float *beta = p.values + heed_params_find(&p, "cb.bn.bias")->offset;
    mean[0] = 0.3f, var[0] = 2.0f, gamma[0] = 1.5f, beta[0] = -0.2f;
    heed_tensor x, y = {0};
    heed_tensor_alloc(&x, N, C, H, W);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -2, 2, 9);
    ck_assert_int_eq(heed_layer_forward(&cb->base, &x, &y), HEED_OK);
    const float *w1 = p.values + heed_params_find(&p, "cb.fc1.weight")->offset;
    const float *b1 = p.values + heed_params_find(&p, "cb.fc1.bias")->offset;
    const float *w2 = p.values + heed_params_find(&p, "cb.fc2.weight")->offset;
    const float *b2 = p.values + heed_params_find(&p, "cb.fc2.bias")->offset;
    const float *cw = p.values + heed_params_find(&p, "cb.conv.weight")->offset; /* (1,2,K,K) */
    for (int n = 0; n < N; n++) {
        const float *xn = x.data + (size_t)n * C * H * W;
        float avg[C], mx[C], a[C], e[C];
        for (int c = 0; c < C; c++) {
            double s = 0;
            float m = -INFINITY;
            for (int i = 0; i < H * W; i++) s += xn[c * H * W + i], m = fmaxf(m, xn[c * H * W + i]);
            avg[c] = (float)(s / (H * W)), mx[c] = m;
        }
        float h[HID], o1[C], o2[C];
        fc_ref(w1, b1, avg, C, HID, h);
        for (int j = 0; j < HID; j++) h[j] = fmaxf(h[j], 0);
        fc_ref(w2, b2, h, HID, C, o1);
        fc_ref(w1, b1, mx, C, HID, h);
        for (int j = 0; j < HID; j++) h[j] = fmaxf(h[j], 0);
        fc_ref(w2, b2, h, HID, C, o2);
        for (int c = 0; c < C; c++) a[c] = o1[c] + o2[c], e[c] = sigmoidf_ref(a[c]);
        float x1[C][H][W], map[2][H][W];
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) x1[c][i][j] = xn[(c * H + i) * W + j] * e[c];
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float m = -INFINITY, s = 0;
                for (int c = 0; c < C; c++) m = fmaxf(m, x1[c][i][j]), s += x1[c][i][j];
                map[0][i][j] = m, map[1][i][j] = s / C;
            }
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                double conv = 0;
                for (int ch = 0; ch < 2; ch++)
                    for (int ki = 0; ki < K; ki++)
                        for (int kj = 0; kj < K; kj++) {
                            int yi = i + ki - K / 2, xj = j + kj - K / 2;
                            if (yi < 0 || yi >= H || xj < 0 || xj >= W) continue;
                            conv += (double)cw[(ch * K + ki) * K + kj] * map[ch][yi][xj];
                        }
                float bn = (float)((conv - mean[0]) / sqrt(var[0] + 1e-5) * gamma[0] + beta[0]);
                float s = sigmoidf_ref(bn);
                ck_assert_float_eq_tol(heed_cbam_spatial_map(cb)->data[(n * H + i) * W + j], s, 1e-5);
                for (int c = 0; c < C; c++)
                    ck_assert_float_eq_tol(y.data[((size_t)(n * C + c) * H + i) * W + j], x1[c][i][j] * s, 1e-5);
            }
        for (int c = 0; c < C; c++)
            ck_assert_float_eq_tol(heed_cbam_channel_weights(cb)->data[n * C + c], e[c], 1e-6);
    }
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(cbam_gradients_train_and_infer) {
    heed_params p = {0};
    heed_cbam *cb;
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){5, 4, 3}, &p, "cb"),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 6), HEED_OK);
    heed_layer_set_training(&cb->base, 1);
    gradcheck_layer(&cb->base, &p, 3, 5, 4, 3, 2e-3);
    heed_layer_set_training(&cb->base, 0);
    gradcheck_layer(&cb->base, &p, 2, 5, 4, 3, 2e-3);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
    /* Maps of more than one block of positions (the fused passes tile them). */
    p = (heed_params){0};
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 5}, (int[3]){4, 17, 19}, &p,
                                   "cb"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 7), HEED_OK);
    heed_layer_set_training(&cb->base, 1);
    gradcheck_layer_at(&cb->base, &p, 2, 4, 17, 19, 3e-2, 1e-3f, 1);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

/* The loss's slope along direction v at x, by central differences. */
static double slope_along(case_ctx *ctx, const float *v, float eps) {
    const size_t count = heed_tensor_count(&ctx->x);
    float *x0 = malloc(count * sizeof *x0);
    memcpy(x0, ctx->x.data, count * sizeof *x0);
    for (size_t i = 0; i < count; i++) ctx->x.data[i] = x0[i] + eps * v[i];
    const double lp = eval_loss(ctx);
    for (size_t i = 0; i < count; i++) ctx->x.data[i] = x0[i] - eps * v[i];
    const double lm = eval_loss(ctx);
    memcpy(ctx->x.data, x0, count * sizeof *x0);
    free(x0);
    eval_loss(ctx);
    return (lp - lm) / (2.0 * eps);
}

/* Tied maxima share the max's gradient equally (torch.amax's rule, which
 * WORKLOADS.md's CBAM uses). No single entry of a tie can be moved
 * smoothly, but the tie as a whole can: the loss's slope along a direction
 * that keeps the tie is the analytic gradient's dot product with it, and
 * a tie counted whole (each tied entry given the full gradient) or not at
 * all misses it. Two kinds of tie: each channel's largest value at two
 * positions (the global max pool), and a position where every channel is
 * 0, as after a relu (the channel pool over x * e, moved along 1 / e so
 * that all C stay level). And a 1x1 map, where the average pool carries as
 * much of the gradient as the max pool (one divided by H W too often was
 * below the tolerance on larger maps). */
START_TEST(cbam_ties_share_the_gradient) {
    enum { N = 1, C = 5, H = 4, W = 3, HW = H * W };
    heed_params p = {0};
    heed_cbam *cb;
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){C, H, W}, &p, "cb"),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 8), HEED_OK);
    heed_layer_set_training(&cb->base, 1);
    case_ctx ctx = {.layer = &cb->base};
    ck_assert_int_eq(heed_tensor_alloc(&ctx.x, N, C, H, W), HEED_OK);
    int idx[C * HW];
    for (int i = 0; i < C * HW; i++) idx[i] = i;
    heed_rng r;
    heed_rng_seed(&r, 21, 1);
    heed_rng_shuffle(&r, idx, C * HW);
    for (int i = 0; i < C * HW; i++) ctx.x.data[i] = 0.05f * (float)(idx[i] - C * HW / 2);
    const int q = 5; /* every channel 0 here */
    int top[C][2];
    for (int c = 0; c < C; c++) {
        float *xc = ctx.x.data + c * HW;
        xc[q] = 0.0f;
        int a = q == 0 ? 1 : 0, b = -1;
        for (int i = 0; i < HW; i++)
            if (i != q && xc[i] > xc[a]) a = i;
        for (int i = 0; i < HW; i++)
            if (i != q && i != a && (b < 0 || xc[i] > xc[b])) b = i;
        ck_assert_float_gt(xc[b], 0.0f);
        xc[b] = xc[a]; /* the channel's largest value, twice */
        top[c][0] = a, top[c][1] = b;
    }
    ck_assert_int_eq(heed_tensor_alloc(&ctx.w, N, C, H, W), HEED_OK);
    tu_fill_uniform(ctx.w.data, C * HW, -1, 1, 22);
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&dx, N, C, H, W), HEED_OK);
    heed_params_zero_grad(&p);
    eval_loss(&ctx);
    ck_assert_int_eq(heed_layer_backward(&cb->base, &ctx.x, &ctx.y, &ctx.w, &dx), HEED_OK);
    float v[C * HW];
    for (int c = 0; c < C; c++) {
        memset(v, 0, sizeof v);
        v[c * HW + top[c][0]] = v[c * HW + top[c][1]] = 1.0f;
        const double want = (double)dx.data[c * HW + top[c][0]] + dx.data[c * HW + top[c][1]];
        const double got = slope_along(&ctx, v, 1e-3f);
        ck_assert_msg(fabs(got - want) <= 2e-3 * (fabs(want) + 0.1), "channel %d's tied maxima: slope %g, "
                      "gradient %g", c, got, want);
    }
    memset(v, 0, sizeof v);
    double want = 0;
    for (int c = 0; c < C; c++) {
        const float e = heed_cbam_channel_weights(cb)->data[c];
        v[c * HW + q] = 1.0f / e;
        want += (double)dx.data[c * HW + q] / e;
    }
    const double got = slope_along(&ctx, v, 1e-3f);
    ck_assert_msg(fabs(got - want) <= 2e-3 * (fabs(want) + 0.1), "a level position: slope %g, gradient %g",
                  got, want);
    heed_tensor_free(&ctx.x), heed_tensor_free(&ctx.y), heed_tensor_free(&ctx.w), heed_tensor_free(&dx);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
    p = (heed_params){0};
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){C, 1, 1}, &p, "cb"),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 9), HEED_OK);
    heed_layer_set_training(&cb->base, 0);
    gradcheck_layer(&cb->base, &p, 3, C, 1, 1, 2e-3);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

/* A module that is a network's first layer is handed no dx (nothing
 * upstream wants it): its parameter gradients must be those of the full
 * backward all the same. Checked by central differences with dx NULL, for
 * SE and for CBAM after a training and after an inference forward (CBAM's
 * channel pass has a separate loop for that case). */
START_TEST(backward_without_dx_keeps_the_parameter_gradients) {
    for (int kind = 0; kind < 3; kind++) {
        heed_params p = {0};
        heed_layer *layer;
        enum { N = 2, C = 5, H = 4, W = 3 };
        if (kind == 0) {
            heed_se *se;
            ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.r = 2}, (int[3]){C, H, W}, &p, "se"), HEED_OK);
            layer = &se->base;
        } else {
            heed_cbam *cb;
            ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){C, H, W}, &p, "cb"),
                             HEED_OK);
            layer = &cb->base;
        }
        ck_assert_int_eq(heed_params_alloc(&p, 17), HEED_OK);
        heed_layer_set_training(layer, kind != 2);
        case_ctx ctx = {.layer = layer};
        ck_assert_int_eq(heed_tensor_alloc(&ctx.x, N, C, H, W), HEED_OK);
        tu_fill_uniform(ctx.x.data, heed_tensor_count(&ctx.x), 0, 2, 18);
        ck_assert_int_eq(heed_tensor_alloc(&ctx.w, N, C, H, W), HEED_OK);
        tu_fill_uniform(ctx.w.data, heed_tensor_count(&ctx.w), -1, 1, 19);
        heed_params_zero_grad(&p);
        eval_loss(&ctx);
        ck_assert_int_eq(heed_layer_backward(layer, &ctx.x, &ctx.y, &ctx.w, NULL), HEED_OK);
        for (int i = 0; i < p.count; i++) {
            heed_param *it = &p.items[i];
            if (it->flags & HEED_PARAM_BUFFER) continue;
            char what[96];
            snprintf(what, sizeof what, "kind %d, no dx: %s", kind, it->name);
            TU_GRADCHECK_KINKS(what, eval_loss, &ctx, p.values + it->offset, it->count,
                               p.grads + it->offset, 2e-3f, 1e-3);
        }
        heed_tensor_free(&ctx.x), heed_tensor_free(&ctx.y), heed_tensor_free(&ctx.w);
        heed_layer_free(layer);
        heed_params_free(&p);
    }
}
END_TEST

/* Forward FLOPs per image (layer.h: 2 x multiply-adds, elementwise work 1
 * per element), C = 8, H = 5, W = 3, r = 2 (4 hidden units). fc1 8->4 and
 * fc2 4->8 with their bias adds: 2*32 + 4 = 68 and 2*32 + 8 = 72 (as
 * check_linear counts a linear layer). SE's own (se.c's comment: "pooling,
 * the scaling, and the sigmoid"): the pooling's C H W adds, the scaling's
 * C H W products, C sigmoids: 120 + 120 + 8 = 248; in all 388. CBAM's own,
 * from cbam.c's list: the second MLP pass 68 + 72; the two global poolings
 * 2 C H W = 240; the channel pool's max and sum 2 C H W = 240 and its mean's
 * H W divisions 15; the two scalings 240; the sigmoids C + H W = 23; that is
 * 898, plus the children: the MLP 140, the 3x3 conv 2->1 without bias
 * 2*18*15 = 540 and the bn 2*15 = 30 (as check_conv2d and check_batchnorm
 * count them): 1608. The children are listed in the order they run. */
START_TEST(flops_and_children_as_documented) {
    heed_params p = {0};
    heed_se *se;
    heed_cbam *cb;
    ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.r = 2}, (int[3]){8, 5, 3}, &p, "se"), HEED_OK);
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){8, 5, 3}, &p, "cb"), HEED_OK);
    ck_assert_double_eq_tol(heed_layer_flops(&se->base), 388.0, 1e-9);
    ck_assert_double_eq_tol(heed_layer_flops(&cb->base), 1608.0, 1e-9);
    const char *se_kids[] = {"se.fc1", "se.fc2"}, *cb_kids[] = {"cb.fc1", "cb.fc2", "cb.conv", "cb.bn"};
    ck_assert_int_eq(heed_layer_child_count(&se->base), 2);
    for (int i = 0; i < 2; i++) ck_assert_str_eq(heed_layer_child(&se->base, i)->name, se_kids[i]);
    ck_assert_int_eq(heed_layer_child_count(&cb->base), 4);
    for (int i = 0; i < 4; i++) ck_assert_str_eq(heed_layer_child(&cb->base, i)->name, cb_kids[i]);
    heed_layer_free(&se->base);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

/* A network file's modules without settings get nets/README.md's
 * defaults: se r 16; cbam r 16, k 7; ram glimpses 6, patch 12, scales 3,
 * glimpse_hidden 128, loc_hidden 128, hidden 256, classes 10, lstm 0,
 * std 0.17, samples 1, seed 1. */
START_TEST(net_file_defaults_are_the_documented_ones) {
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, "input 32 9 9\nse name=s\ncbam name=c\n", "d.net", 1) == HEED_OK, "%s",
                  heed_last_error());
    const heed_se *se = (const heed_se *)heed_net_find(net, "s");
    const heed_cbam *cb = (const heed_cbam *)heed_net_find(net, "c");
    ck_assert(se && cb);
    ck_assert_int_eq(se->cfg.r, 16);
    ck_assert_int_eq(se->mlp.fc1->cfg.out, 2);
    ck_assert_int_eq(cb->cfg.r, 16);
    ck_assert_int_eq(cb->mlp.fc1->cfg.out, 2);
    ck_assert_int_eq(cb->cfg.k, 7);
    ck_assert_int_eq(cb->conv->cfg.k, 7);
    ck_assert_int_eq(se->mlp.act, HEED_ACT_RELU);
    ck_assert_int_eq(se->mlp.gate, HEED_GATE_SIGMOID);
    ck_assert_int_eq(cb->mlp.act, HEED_ACT_RELU);
    ck_assert_int_eq(cb->mlp.gate, HEED_GATE_SIGMOID);
    heed_net_free(net);
    /* the mobile networks' settings */
    ck_assert_msg(heed_net_parse(&net,
                                 "input 32 9 9\nse name=m hidden=8 act=hardswish gate=hardsigmoid\n"
                                 "se name=e r=4 act=silu\nse name=p act=relu gate=sigmoid\n",
                                 "d.net", 1) == HEED_OK,
                  "%s", heed_last_error());
    const heed_se *m = (const heed_se *)heed_net_find(net, "m"), *e = (const heed_se *)heed_net_find(net, "e");
    const heed_se *pl = (const heed_se *)heed_net_find(net, "p");
    ck_assert(m->mlp.fc1->cfg.out == 8 && m->mlp.act == HEED_ACT_HARDSWISH && m->mlp.gate == HEED_GATE_HARDSIGMOID);
    ck_assert(m->cfg.hidden == 8 && m->cfg.r == 0);
    ck_assert(e->mlp.fc1->cfg.out == 8 && e->mlp.act == HEED_ACT_SILU && e->mlp.gate == HEED_GATE_SIGMOID);
    ck_assert(pl->mlp.fc1->cfg.out == 2 && pl->mlp.act == HEED_ACT_RELU && pl->mlp.gate == HEED_GATE_SIGMOID);
    heed_net_free(net);
    static const struct {
        const char *line, *says;
    } bad[] = {
        {"se r=4 hidden=8", "d.net:2: se se1: r=4 and hidden=8 both given; give one"},
        {"se hidden=0", "d.net:2: se: hidden=0 is out of range"},
        {"se act=tanh", "d.net:2: se: act=tanh is not one of: relu, silu, hardswish"},
        {"se gate=hardswish", "d.net:2: se: gate=hardswish is not one of: sigmoid, hardsigmoid"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "input 32 9 9\n%s\n", bad[i].line);
        ck_assert_int_ne(heed_net_parse(&net, text, "d.net", 1), HEED_OK);
        ck_assert_msg(strstr(heed_last_error(), bad[i].says), "%s: %s", bad[i].line, heed_last_error());
    }
    ck_assert_msg(heed_net_parse(&net, "input 1 60 60\nram name=r\n", "d.net", 1) == HEED_OK, "%s",
                  heed_last_error());
    const heed_ram_cfg *c = heed_ram_config((const heed_ram *)heed_net_find(net, "r"));
    ck_assert(c->glimpses == 6 && c->patch == 12 && c->scales == 3 && c->glimpse_hidden == 128 &&
              c->loc_hidden == 128 && c->hidden == 256 && c->classes == 10 && c->lstm == 0 &&
              c->samples == 1 && c->seed == 1);
    ck_assert_float_eq(c->std, 0.17f);
    heed_net_free(net);
}
END_TEST

START_TEST(bad_settings_are_refused) {
    heed_params p = {0};
    heed_se *se;
    heed_cbam *cb;
    ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.r = 8}, (int[3]){4, 3, 3}, &p, "s"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.hidden = -1}, (int[3]){4, 3, 3}, &p, "s"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.act = HEED_ACT_TANH}, (int[3]){32, 3, 3}, &p, "s"),
                     HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "se s: act tanh is not relu, silu or hardswish"), "%s",
                  heed_last_error());
    ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.gate = (heed_gate)7}, (int[3]){32, 3, 3}, &p, "s"),
                     HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 0);
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 4}, (int[3]){4, 3, 3}, &p, "c"),
                     HEED_ERR_ARG);
    heed_params_free(&p);
}
END_TEST

/* A name of n characters. */
static const char *name_of(char *buf, int n) {
    for (int i = 0; i < n; i++) buf[i] = (char)('a' + i % 26);
    buf[n] = '\0';
    return buf;
}

/* Each constructor that fails partway forgets what it registered: the
 * allocation after it (which writes through every registered slot) would
 * otherwise write into the freed module (ASan: heap-use-after-free). */
START_TEST(failed_constructors_leave_the_store_as_it_was) {
    float *v, *g;
    char longname[64];
    for (int c = 0; c < 6; c++) {
        heed_params p = {0};
        heed_se *se = (heed_se *)1;
        heed_cbam *cb = (heed_cbam *)1;
        heed_status st = HEED_OK;
        int before = 0;
        switch (c) {
        case 0: /* fc1 registered, then fc2's name taken */
            heed_params_add(&p, "x.fc2.weight", 1, (int[]){1}, HEED_INIT_ZEROS, 0, 0, &v, &g);
            before = 1;
            st = heed_se_new(&se, &(heed_se_cfg){.r = 2}, (int[3]){4, 3, 3}, &p, "x");
            break;
        case 1: /* the MLP and the conv registered, then the bn's name taken */
            heed_params_add(&p, "x.bn.weight", 1, (int[]){1}, HEED_INIT_ZEROS, 0, 0, &v, &g);
            before = 1;
            st = heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){4, 3, 3}, &p, "x");
            break;
        case 2: /* no rows for the conv */
            st = heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){4, 0, 3}, &p, "x");
            break;
        case 3:
            st = heed_se_new(&se, &(heed_se_cfg){.r = 2}, (int[3]){4, 0, 3}, &p, "x");
            break;
        case 4:
            st = heed_se_new(&se, &(heed_se_cfg){.r = 2}, (int[3]){4, 3, 3}, &p, name_of(longname, 58));
            break;
        case 5: /* the MLP registered, then "<name>.conv.weight" too long */
            st = heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){4, 3, 3}, &p,
                               name_of(longname, 55));
            break;
        }
        ck_assert_msg(st == HEED_ERR_ARG, "case %d: status %d: %s", c, st, heed_last_error());
        const int is_se = c == 0 || c == 3 || c == 4;
        ck_assert_ptr_null(is_se ? (void *)se : (void *)cb);
        ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
        ck_assert_msg(p.count == before, "case %d: %d entries registered, want %d", c, p.count, before);
        heed_params_free(&p);
    }
}
END_TEST

/* Layer names hold 47 characters: a module's children ("<name>.fc1") must
 * fit too, else they were cut to the same name. Refused, naming the limit. */
START_TEST(names_that_do_not_fit_are_refused) {
    heed_params p = {0};
    heed_se *se, *refused;
    heed_cbam *cb;
    char name[64];
    ck_assert_int_eq(heed_se_new(&se, NULL, (int[3]){16, 2, 2}, &p, name_of(name, 43)), HEED_OK);
    ck_assert_str_eq(se->mlp.fc1->base.name + 43, ".fc1");
    ck_assert_str_eq(se->mlp.fc2->base.name + 43, ".fc2");
    ck_assert_int_eq(heed_se_new(&refused, NULL, (int[3]){16, 2, 2}, &p, name_of(name, 44)),
                     HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "at most 43"), "%s", heed_last_error());
    ck_assert_int_eq(heed_cbam_new(&cb, NULL, (int[3]){16, 2, 2}, &p, name_of(name, 43)), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "at most 42"), "%s", heed_last_error());
    ck_assert_int_eq(p.count, 4);
    ck_assert_int_eq(heed_cbam_new(&cb, NULL, (int[3]){16, 2, 2}, &p, "c"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    heed_layer_free(&se->base);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

/* A backward with no forward before it, or on another batch than the last
 * forward's, is refused naming the module and the mismatch, as CBAM's is
 * (SE's said "tensor shape (0, 0, 0, 0) has a dimension < 1", or named
 * heed_mul_channel_backward's operands). */
START_TEST(se_backward_without_its_forward_is_refused) {
    heed_params p = {0};
    heed_se *se;
    ck_assert_int_eq(heed_se_new(&se, &(heed_se_cfg){.r = 2}, (int[3]){4, 3, 3}, &p, "att"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    heed_tensor x, dy, dx, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 4, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 4, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_se_backward(se, &x, &dy, &dx), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "se backward att:") &&
                      strstr(heed_last_error(), "the last forward (batch 0) do not match"),
                  "%s", heed_last_error());
    ck_assert_int_eq(heed_se_forward(se, &x, &y), HEED_OK);
    heed_tensor x1 = heed_tensor_view(x.data, 1, 4, 3, 3), dy1 = heed_tensor_view(dy.data, 1, 4, 3, 3);
    ck_assert_int_eq(heed_se_backward(se, &x1, &dy1, NULL), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "the last forward (batch 2) do not match"), "%s",
                  heed_last_error());
    ck_assert_int_eq(heed_se_backward(se, &x, &dy, &dx), HEED_OK);
    /* another H x W than the module was made for: e and s would be another
     * image size's, so both passes refuse it */
    heed_tensor xw = heed_tensor_view(x.data, 1, 4, 3, 6), dyw = heed_tensor_view(dy.data, 1, 4, 3, 6);
    ck_assert_int_eq(heed_se_forward(se, &xw, &y), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "se att: input is (1, 4, 3, 6), expected (N, 4, 3, 3)"),
                  "%s", heed_last_error());
    ck_assert_int_eq(heed_se_backward(se, &xw, &dyw, NULL), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_se_backward(se, &x, &dy, &dx), HEED_OK); /* still the last forward's */
    heed_tensor_free(&x), heed_tensor_free(&dy), heed_tensor_free(&dx), heed_tensor_free(&y);
    heed_layer_free(&se->base);
    heed_params_free(&p);
}
END_TEST

/* CBAM's own entry points check the input against the size the module was
 * made for, as the layer interface does (its forward failed inside its
 * 7x7 convolution, naming that; its backward ran on the wrong H x W). */
START_TEST(cbam_refuses_another_image_size) {
    heed_params p = {0};
    heed_cbam *cb;
    ck_assert_int_eq(heed_cbam_new(&cb, &(heed_cbam_cfg){.r = 2, .k = 3}, (int[3]){4, 3, 3}, &p, "cb"), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    heed_tensor x, dy, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 4, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 4, 3, 3), HEED_OK);
    heed_tensor xw = heed_tensor_view(x.data, 1, 4, 6, 3), dyw = heed_tensor_view(dy.data, 1, 4, 6, 3);
    ck_assert_int_eq(heed_cbam_forward(cb, &xw, &y), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "cbam cb: input is (1, 4, 6, 3), expected (N, 4, 3, 3)"), "%s",
                  heed_last_error());
    ck_assert_int_eq(heed_cbam_forward(cb, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_cbam_backward(cb, &xw, &dyw, NULL), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_cbam_backward(cb, &x, &dy, NULL), HEED_OK);
    heed_tensor_free(&x), heed_tensor_free(&dy), heed_tensor_free(&y);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

/* NULL params: refused as heed_conv2d_new does; NULL cfg: the defaults. */
START_TEST(null_params_refused_null_cfg_defaults) {
    heed_params p = {0};
    heed_se *se = (heed_se *)1;
    heed_cbam *cb = (heed_cbam *)1;
    ck_assert_int_eq(heed_se_new(&se, NULL, (int[3]){16, 2, 2}, NULL, "s"), HEED_ERR_ARG);
    ck_assert_ptr_null(se);
    ck_assert_int_eq(heed_cbam_new(&cb, NULL, (int[3]){16, 2, 2}, NULL, "c"), HEED_ERR_ARG);
    ck_assert_ptr_null(cb);
    ck_assert_msg(strstr(heed_last_error(), "no parameter store"), "%s", heed_last_error());
    ck_assert_int_eq(heed_se_new(&se, NULL, (int[3]){32, 2, 2}, &p, "s"), HEED_OK);
    ck_assert_int_eq(se->cfg.r, 16);
    ck_assert_int_eq(se->mlp.fc1->cfg.out, 2);
    ck_assert_int_eq(heed_cbam_new(&cb, NULL, (int[3]){32, 9, 9}, &p, "c"), HEED_OK);
    ck_assert_int_eq(cb->cfg.r, 16);
    ck_assert_int_eq(cb->cfg.k, 7);
    heed_layer_free(&se->base);
    heed_layer_free(&cb->base);
    heed_params_free(&p);
}
END_TEST

/* The paper's adaptive kernel, t = int(|(log2 C + 1) / 2|), made odd,
 * worked by hand: C = 1: 0.5 -> 0 -> 1; 3: 1.29 -> 1; 8: 2 -> 3; 16: 2.5
 * -> 2 -> 3; 64: 3.5 -> 3; 100: 3.82 -> 3; 128: 4.5 -> 4 -> 5; 255: 4.497
 * -> 5; 512: 5; 1024: 5.5 -> 5; 2048: 6.5 -> 6 -> 7; 8192: 7. */
START_TEST(eca_kernel_follows_the_paper) {
    const int c[] = {1, 3, 8, 16, 64, 100, 128, 255, 512, 1024, 2048, 8192};
    const int k[] = {1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        ck_assert_msg(heed_eca_kernel(c[i]) == k[i], "C %d: k %d, want %d", c[i], heed_eca_kernel(c[i]), k[i]);
}
END_TEST

/* y = x * sigmoid(conv1d(gap(x))) in plain loops, zero padding at both ends
 * of the channels: k = 3 on 5 channels, and k = 5 on 3 (wider than C). */
START_TEST(eca_forward_matches_formula) {
    enum { N = 2, H = 2, W = 3 };
    const int cs[2] = {5, 3}, ks[2] = {3, 5};
    for (int t = 0; t < 2; t++) {
        const int C = cs[t], K = ks[t], P = (K - 1) / 2;
        heed_params p = {0};
        heed_eca *eca;
        ck_assert_int_eq(heed_eca_new(&eca, &(heed_eca_cfg){.k = K}, (int[3]){C, H, W}, &p, "eca"), HEED_OK);
        ck_assert_int_eq(heed_params_alloc(&p, 3), HEED_OK);
        const heed_param *wp = heed_params_find(&p, "eca.conv.weight");
        ck_assert_ptr_nonnull(wp);
        ck_assert_int_eq(wp->count, K);
        const float *w = p.values + wp->offset;
        heed_tensor x, y = {0};
        ck_assert_int_eq(heed_tensor_alloc(&x, N, C, H, W), HEED_OK);
        tu_fill_uniform(x.data, heed_tensor_count(&x), -2, 2, 4 + t);
        ck_assert_int_eq(heed_layer_forward(&eca->base, &x, &y), HEED_OK);
        for (int n = 0; n < N; n++) {
            double s[8];
            for (int c = 0; c < C; c++) {
                s[c] = 0;
                for (int i = 0; i < H * W; i++) s[c] += x.data[(n * C + c) * H * W + i];
                s[c] /= H * W;
            }
            for (int c = 0; c < C; c++) {
                double z = 0;
                for (int j = 0; j < K; j++)
                    if (c + j - P >= 0 && c + j - P < C) z += w[j] * s[c + j - P];
                const double e = 1 / (1 + exp(-z));
                ck_assert_double_eq_tol(heed_eca_weights(eca)->data[n * C + c], e, 1e-6);
                for (int i = 0; i < H * W; i++) {
                    const size_t at = (size_t)(n * C + c) * H * W + i;
                    ck_assert_double_eq_tol(y.data[at], x.data[at] * e, 1e-5);
                }
            }
        }
        heed_tensor_free(&x), heed_tensor_free(&y);
        heed_layer_free(&eca->base);
        heed_params_free(&p);
    }
}
END_TEST

START_TEST(eca_gradients) {
    const int cs[2] = {7, 4}, ks[2] = {3, 5};
    for (int t = 0; t < 2; t++) {
        heed_params p = {0};
        heed_eca *eca;
        ck_assert_int_eq(heed_eca_new(&eca, &(heed_eca_cfg){.k = ks[t]}, (int[3]){cs[t], 3, 4}, &p, "eca"),
                         HEED_OK);
        ck_assert_int_eq(heed_params_alloc(&p, 5), HEED_OK);
        gradcheck_layer(&eca->base, &p, 2, cs[t], 3, 4, 5e-4);
        heed_layer_free(&eca->base);
        heed_params_free(&p);
    }
}
END_TEST

/* The network file's eca takes k from the channels unless given; an even,
 * negative or (in a file) zero k, and a backward without its forward, are
 * refused naming the module. */
START_TEST(eca_settings_and_misuse) {
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, "input 128 4 4\neca name=a\neca name=b k=7\n", "e.net", 1) == HEED_OK,
                  "%s", heed_last_error());
    ck_assert_int_eq(((const heed_eca *)heed_net_find(net, "a"))->cfg.k, 5);
    ck_assert_int_eq(((const heed_eca *)heed_net_find(net, "b"))->cfg.k, 7);
    ck_assert_uint_eq(heed_params_trainable(&net->params), 12);
    heed_net_free(net);
    ck_assert_int_eq(heed_net_parse(&net, "input 8 4 4\neca k=0\n", "e.net", 1), HEED_ERR_FORMAT);
    heed_params p = {0};
    heed_eca *eca = (heed_eca *)1;
    ck_assert_int_eq(heed_eca_new(&eca, &(heed_eca_cfg){.k = 4}, (int[3]){8, 3, 3}, &p, "e"), HEED_ERR_ARG);
    ck_assert_ptr_null(eca);
    ck_assert_msg(strstr(heed_last_error(), "eca e: k = 4, must be odd"), "%s", heed_last_error());
    ck_assert_int_eq(heed_eca_new(&eca, &(heed_eca_cfg){.k = -3}, (int[3]){8, 3, 3}, &p, "e"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_eca_new(&eca, NULL, (int[3]){8, 3, 3}, NULL, "e"), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 0);
    ck_assert_int_eq(heed_eca_new(&eca, NULL, (int[3]){8, 3, 3}, &p, "e"), HEED_OK);
    ck_assert_int_eq(eca->cfg.k, 3);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    heed_tensor x, dy;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 8, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 8, 3, 3), HEED_OK);
    ck_assert_int_eq(heed_eca_backward(eca, &x, &dy, NULL), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "eca backward e:"), "%s", heed_last_error());
    /* another H x W than the module was made for */
    heed_tensor xw = heed_tensor_view(x.data, 1, 8, 9, 2), dyw = heed_tensor_view(dy.data, 1, 8, 9, 2), y = {0};
    ck_assert_int_eq(heed_eca_forward(eca, &xw, &y), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "eca e: input is (1, 8, 9, 2), expected (N, 8, 3, 3)"), "%s",
                  heed_last_error());
    ck_assert_int_eq(heed_eca_forward(eca, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_eca_backward(eca, &xw, &dyw, NULL), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_eca_backward(eca, &x, &dy, NULL), HEED_OK);
    heed_tensor_free(&x), heed_tensor_free(&dy), heed_tensor_free(&y);
    heed_layer_free(&eca->base);
    heed_params_free(&p);
}
END_TEST

Suite *heed_suite_attention(void) {
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("core");
    const int variants = (int)(sizeof se_variants / sizeof se_variants[0]);
    tcase_add_loop_test(tc, se_forward_matches_formula, 0, variants);
    tcase_add_loop_test(tc, se_gradients, 0, variants);
    tcase_add_test(tc, cbam_forward_matches_formula);
    tcase_add_test(tc, cbam_gradients_train_and_infer);
    tcase_add_test(tc, cbam_ties_share_the_gradient);
    tcase_add_test(tc, backward_without_dx_keeps_the_parameter_gradients);
    tcase_add_test(tc, flops_and_children_as_documented);
    tcase_add_test(tc, net_file_defaults_are_the_documented_ones);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, failed_constructors_leave_the_store_as_it_was);
    tcase_add_test(tc, names_that_do_not_fit_are_refused);
    tcase_add_test(tc, null_params_refused_null_cfg_defaults);
    tcase_add_test(tc, se_backward_without_its_forward_is_refused);
    tcase_add_test(tc, cbam_refuses_another_image_size);
    tcase_add_test(tc, eca_kernel_follows_the_paper);
    tcase_add_test(tc, eca_forward_matches_formula);
    tcase_add_test(tc, eca_gradients);
    tcase_add_test(tc, eca_settings_and_misuse);
    suite_add_tcase(s, tc);
    return s;
}
