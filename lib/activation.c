/* activation.c -- elementwise nonlinearities and channel softmax.
 *
 * Forward (elementwise over all N*C*H*W values):
 *   relu:       y = x > 0 ? x : 0          (NaN passes through, as in PyTorch)
 *   leaky relu: y = x > 0 ? x : a x        (a = slope, 0.01 by default)
 *   sigmoid:    e = exp(-|x|); y = x >= 0 ? 1 / (1 + e) : e / (1 + e)
 *               exp only ever sees a non-positive argument, so it cannot
 *               overflow: sigmoid(100) = 1, sigmoid(-100) = 3.7e-44, no NaN
 *   tanh:       y = tanh(x)
 *   silu:       y = x / (1 + exp(-x))
 *   hardsigmoid: y = min(max(x + 3, 0), 6) / 6
 *   hardswish:  y = x min(max(x + 3, 0), 6) / 6
 *               each written as PyTorch's CPU kernels write it, so the
 *               roundings agree too; the clamps are comparisons, not
 *               fmaxf/fminf, so that NaN passes through as it does there
 * Backward, from the forward output y (dx += dy * f'):
 *   relu:       f' = y > 0           (so relu'(0) = 0)
 *   leaky relu: f' = x > 0 ? 1 : a   (y > 0 stands for x > 0 when a >= 0)
 *   sigmoid:    f' = y (1 - y)
 *   tanh:       f' = 1 - y^2
 * and from the input x, as PyTorch's backward kernels (its choices at the
 * kinks included; hardswish's as its CUDA kernel and its CPU scalar loop,
 * whose vectorized loop gives 1 at 3 and NaN at NaN, activation.h):
 *   silu:       s = 1 / (1 + exp(-x)); f' = s (1 + x (1 - s))
 *   hardsigmoid: f' = -3 < x < 3 ? 1/6 : 0
 *   hardswish:  f' = x < -3 ? 0 : x <= 3 ? x/3 + 1/2 : 1   (NaN: 1)
 *
 * Softmax over channels, per image n and position p = (h, w):
 *   m = max_c x[n,c,p];  y[n,c,p] = exp(x[n,c,p] - m) / sum_c' exp(x[n,c',p] - m)
 *   dx[n,c,p] += y[n,c,p] (dy[n,c,p] - sum_c' dy[n,c',p] y[n,c',p])
 * Channels are HW apart in NCHW, so the kernels walk a tile of positions at
 * once: for each channel, a unit-stride inner loop over the tile, with the
 * per-position max, sum and dot product held in small stack arrays (no
 * allocation per call).
 *
 * Threads: loops split across OpenMP threads only above PAR_MIN values,
 * where the work outweighs starting the team; smaller tensors (an SE
 * block's (N, C) excitation, a classifier's logits) run on the calling
 * thread (parallel.h), its loops still vectorized.
 */
#include "activation.h"

#include <math.h>
#include <stdlib.h>

#include "activation_impl.h"
#include "parallel.h"

#define TILE 256 /* softmax positions per work item */

/* An output that already has x's shape (a view, or x itself) is written in
 * place; anything else is (re)sized by heed_tensor_ensure. */
static heed_status size_like(heed_tensor *y, const heed_tensor *x) {
    if (y->data && heed_tensor_same_shape(y, x)) return HEED_OK;
    return heed_tensor_ensure(y, x->n, x->c, x->h, x->w);
}

static float resolve_slope(float slope) { return slope == 0.0f ? 0.01f : slope; }

const char *heed_act_name(heed_act_kind kind) {
    switch (kind) {
    case HEED_ACT_RELU: return "relu";
    case HEED_ACT_LEAKY_RELU: return "leaky_relu";
    case HEED_ACT_SIGMOID: return "sigmoid";
    case HEED_ACT_TANH: return "tanh";
    case HEED_ACT_SOFTMAX: return "softmax";
    case HEED_ACT_SILU: return "silu";
    case HEED_ACT_HARDSIGMOID: return "hardsigmoid";
    case HEED_ACT_HARDSWISH: return "hardswish";
    }
    return NULL;
}

/* ---- softmax ---- */

/* One tile of `len` positions starting at x (channel 0); channels are HW
 * apart. Safe when y == x: each value is read before it is overwritten. */
static void softmax_tile(const float *x, float *y, int C, size_t HW, int len) {
    float m[TILE], s[TILE];
    for (int j = 0; j < len; j++) m[j] = x[j];
    for (int c = 1; c < C; c++) {
        const float *xc = x + (size_t)c * HW;
        for (int j = 0; j < len; j++) m[j] = xc[j] > m[j] ? xc[j] : m[j];
    }
    for (int j = 0; j < len; j++) s[j] = 0.0f;
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * HW;
        float *yc = y + (size_t)c * HW;
        for (int j = 0; j < len; j++) {
            yc[j] = expf(xc[j] - m[j]);
            s[j] += yc[j];
        }
    }
    for (int j = 0; j < len; j++) s[j] = 1.0f / s[j];
    for (int c = 0; c < C; c++) {
        float *yc = y + (size_t)c * HW;
        for (int j = 0; j < len; j++) yc[j] *= s[j];
    }
}

static void softmax_tile_backward(const float *y, const float *dy, float *dx, int C, size_t HW,
                                  int len) {
    float dot[TILE];
    for (int j = 0; j < len; j++) dot[j] = 0.0f;
    for (int c = 0; c < C; c++) {
        const float *yc = y + (size_t)c * HW, *gc = dy + (size_t)c * HW;
        for (int j = 0; j < len; j++) dot[j] += gc[j] * yc[j];
    }
    for (int c = 0; c < C; c++) {
        const float *yc = y + (size_t)c * HW, *gc = dy + (size_t)c * HW;
        float *dc = dx + (size_t)c * HW;
        for (int j = 0; j < len; j++) dc[j] += yc[j] * (gc[j] - dot[j]);
    }
}

heed_status heed_softmax_forward(const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(size_like(y, x));
    const int C = x->c;
    const size_t HW = (size_t)x->h * x->w, tiles = (HW + TILE - 1) / TILE;
    const size_t jobs = (size_t)x->n * tiles;
    const float *xd = x->data;
    float *yd = y->data;
    PARALLEL_IF(heed_tensor_count(x) > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t job = 0; job < jobs; job++) {
            const size_t n = job / tiles, p0 = (job % tiles) * TILE;
            const size_t off = n * C * HW + p0;
            const int len = (int)(HW - p0 < TILE ? HW - p0 : TILE);
            softmax_tile(xd + off, yd + off, C, HW, len);
        });
    return HEED_OK;
}

heed_status heed_softmax_backward(const heed_tensor *y, const heed_tensor *dy, heed_tensor *dx) {
    HEED_CHECK_SHAPE(heed_tensor_same_shape(y, dy) && (!dx || heed_tensor_same_shape(y, dx)),
                     "heed_softmax_backward: output (%d, %d, %d, %d), output gradient "
                     "(%d, %d, %d, %d) and input gradient (%d, %d, %d, %d) must have one shape",
                     y->n, y->c, y->h, y->w, dy->n, dy->c, dy->h, dy->w, dx ? dx->n : 0,
                     dx ? dx->c : 0, dx ? dx->h : 0, dx ? dx->w : 0);
    if (!dx) return HEED_OK;
    const int C = y->c;
    const size_t HW = (size_t)y->h * y->w, tiles = (HW + TILE - 1) / TILE;
    const size_t jobs = (size_t)y->n * tiles;
    const float *yd = y->data, *gd = dy->data;
    float *dd = dx->data;
    PARALLEL_IF(heed_tensor_count(y) > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t job = 0; job < jobs; job++) {
            const size_t n = job / tiles, p0 = (job % tiles) * TILE;
            const size_t off = n * C * HW + p0;
            const int len = (int)(HW - p0 < TILE ? HW - p0 : TILE);
            softmax_tile_backward(yd + off, gd + off, dd + off, C, HW, len);
        });
    return HEED_OK;
}

/* ---- elementwise ---- */

heed_status heed_act_forward(heed_act_kind kind, float slope, const heed_tensor *x, heed_tensor *y) {
    if (!heed_act_name(kind))
        return heed_fail(HEED_ERR_ARG, "heed_act_forward: unknown activation kind %d", (int)kind);
    if (kind == HEED_ACT_SOFTMAX) return heed_softmax_forward(x, y);
    HEED_TRY(size_like(y, x));
    const size_t count = heed_tensor_count(x);
    const float *xd = x->data;
    float *yd = y->data;
    switch (kind) {
    case HEED_ACT_RELU:
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) yd[i] = xd[i] < 0.0f ? 0.0f : xd[i];
        );
        break;
    case HEED_ACT_LEAKY_RELU: {
        const float a = resolve_slope(slope);
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) {
                /* Both parts computed unconditionally: GCC will not if-convert
                 * a multiply that might trap, so `v > 0 ? v : a v` would not
                 * vectorize. Exact: one part is always 0. */
                const float v = xd[i], pos = v > 0.0f ? v : 0.0f, neg = v > 0.0f ? 0.0f : v;
                yd[i] = pos + a * neg;
            });
        break;
    }
    case HEED_ACT_SIGMOID:
        PARALLEL_IF(count > PAR_MIN, "omp parallel for schedule(static)",
            for (size_t i = 0; i < count; i++) {
                const float v = xd[i], e = expf(-fabsf(v));
                yd[i] = (v >= 0.0f ? 1.0f : e) / (1.0f + e);
            });
        break;
    case HEED_ACT_TANH:
        PARALLEL_IF(count > PAR_MIN, "omp parallel for schedule(static)",
            for (size_t i = 0; i < count; i++) yd[i] = tanhf(xd[i]);
        );
        break;
    case HEED_ACT_SILU:
        PARALLEL_IF(count > PAR_MIN, "omp parallel for schedule(static)",
            for (size_t i = 0; i < count; i++) yd[i] = xd[i] / (1.0f + expf(-xd[i]));
        );
        break;
    case HEED_ACT_HARDSIGMOID:
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) yd[i] = heed_relu6_shifted(xd[i]) / 6.0f;
        );
        break;
    case HEED_ACT_HARDSWISH:
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) yd[i] = heed_hardswish(xd[i]);
        );
        break;
    case HEED_ACT_SOFTMAX:
        break; /* handled above */
    }
    return HEED_OK;
}

/* Whether act'(x) needs x itself: y does not tell it. */
static int backward_needs_x(heed_act_kind kind, float slope) {
    return kind == HEED_ACT_SILU || kind == HEED_ACT_HARDSIGMOID || kind == HEED_ACT_HARDSWISH ||
           (kind == HEED_ACT_LEAKY_RELU && slope < 0.0f);
}

heed_status heed_act_backward(heed_act_kind kind, float slope, const heed_tensor *x,
                              const heed_tensor *y, const heed_tensor *dy, heed_tensor *dx) {
    const char *name = heed_act_name(kind);
    if (!name)
        return heed_fail(HEED_ERR_ARG, "heed_act_backward: unknown activation kind %d", (int)kind);
    HEED_CHECK_SHAPE(heed_tensor_same_shape(y, dy) && (!dx || heed_tensor_same_shape(y, dx)) &&
                         (!x || heed_tensor_same_shape(y, x)),
                     "heed_act_backward (%s): input (%d, %d, %d, %d), output (%d, %d, %d, %d), "
                     "output gradient (%d, %d, %d, %d) and input gradient (%d, %d, %d, %d) must "
                     "have one shape",
                     name, x ? x->n : 0, x ? x->c : 0, x ? x->h : 0, x ? x->w : 0, y->n, y->c, y->h,
                     y->w, dy->n, dy->c, dy->h, dy->w, dx ? dx->n : 0, dx ? dx->c : 0,
                     dx ? dx->h : 0, dx ? dx->w : 0);
    const float a = resolve_slope(slope);
    if (kind == HEED_ACT_LEAKY_RELU && a < 0.0f && !x)
        return heed_fail(HEED_ERR_ARG,
                         "heed_act_backward: leaky relu with negative slope %g needs the input x",
                         (double)a);
    if (!x && backward_needs_x(kind, a))
        return heed_fail(HEED_ERR_ARG, "heed_act_backward: %s needs the input x", name);
    if (kind == HEED_ACT_SOFTMAX) return heed_softmax_backward(y, dy, dx);
    if (!dx) return HEED_OK;
    const size_t count = heed_tensor_count(y);
    const float *yd = y->data, *gd = dy->data;
    float *dd = dx->data;
    switch (kind) {
    case HEED_ACT_RELU:
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) {
                const float g = gd[i];
                dd[i] += yd[i] > 0.0f ? g : 0.0f;
            });
        break;
    case HEED_ACT_LEAKY_RELU: {
        /* The sign of x decides; y's sign is the same one when a >= 0. */
        const float *sd = x ? x->data : yd;
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) {
                const float g = gd[i], pos = sd[i] > 0.0f ? g : 0.0f, neg = sd[i] > 0.0f ? 0.0f : g;
                dd[i] += pos + a * neg;
            });
        break;
    }
    case HEED_ACT_SIGMOID:
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) dd[i] += gd[i] * yd[i] * (1.0f - yd[i]);
        );
        break;
    case HEED_ACT_TANH:
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) dd[i] += gd[i] * (1.0f - yd[i] * yd[i]);
        );
        break;
    case HEED_ACT_SILU: {
        const float *xd = x->data;
        PARALLEL_IF(count > PAR_MIN, "omp parallel for schedule(static)",
            for (size_t i = 0; i < count; i++) {
                const float v = xd[i], sg = 1.0f / (1.0f + expf(-v));
                dd[i] += gd[i] * sg * (1.0f + v * (1.0f - sg));
            });
        break;
    }
    case HEED_ACT_HARDSIGMOID: {
        const float *xd = x->data;
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) {
                const float v = xd[i], g = gd[i] * (1.0f / 6.0f);
                dd[i] += v > -3.0f && v < 3.0f ? g : 0.0f;
            });
        break;
    }
    case HEED_ACT_HARDSWISH: {
        const float *xd = x->data;
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) {
                dd[i] += heed_hardswish_grad(xd[i], gd[i]);
            });
        break;
    }
    case HEED_ACT_SOFTMAX:
        break; /* handled above */
    }
    return HEED_OK;
}

/* ---- the layer ---- */

static heed_status activation_forward_op(heed_layer *base, const heed_tensor *x, heed_tensor *y) {
    const heed_activation *l = (const heed_activation *)base;
    return heed_act_forward(l->cfg.kind, l->cfg.slope, x, y);
}

static heed_status activation_backward_op(heed_layer *base, const heed_tensor *x,
                                          const heed_tensor *y, const heed_tensor *dy,
                                          heed_tensor *dx) {
    const heed_activation *l = (const heed_activation *)base;
    return heed_act_backward(l->cfg.kind, l->cfg.slope, x, y, dy, dx);
}

/* One operation per element, the convention for elementwise work. */
static double activation_flops(const heed_layer *l) {
    return (double)l->out_c * l->out_h * l->out_w;
}

static void activation_destroy(heed_layer *l) { free(l); }

#define ACT_OPS(var, name)                                                                   \
    static const heed_layer_ops var = {.type = name,                                         \
                                       .forward = activation_forward_op,                     \
                                       .backward = activation_backward_op,                   \
                                       .flops = activation_flops,                            \
                                       .destroy = activation_destroy}
ACT_OPS(relu_ops, "relu");
ACT_OPS(leaky_relu_ops, "leaky_relu");
ACT_OPS(sigmoid_ops, "sigmoid");
ACT_OPS(tanh_ops, "tanh");
ACT_OPS(softmax_ops, "softmax");
ACT_OPS(silu_ops, "silu");
ACT_OPS(hardsigmoid_ops, "hardsigmoid");
ACT_OPS(hardswish_ops, "hardswish");

heed_status heed_activation_new(heed_activation **out, const heed_activation_cfg *cfg,
                                const int in[3], heed_params *p, const char *name) {
    (void)p;
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("activation", name));
    if (!cfg) return heed_fail(HEED_ERR_ARG, "activation %s: no configuration given", name);
    const heed_layer_ops *ops = NULL;
    switch (cfg->kind) {
    case HEED_ACT_RELU: ops = &relu_ops; break;
    case HEED_ACT_LEAKY_RELU: ops = &leaky_relu_ops; break;
    case HEED_ACT_SIGMOID: ops = &sigmoid_ops; break;
    case HEED_ACT_TANH: ops = &tanh_ops; break;
    case HEED_ACT_SOFTMAX: ops = &softmax_ops; break;
    case HEED_ACT_SILU: ops = &silu_ops; break;
    case HEED_ACT_HARDSIGMOID: ops = &hardsigmoid_ops; break;
    case HEED_ACT_HARDSWISH: ops = &hardswish_ops; break;
    }
    if (!ops)
        return heed_fail(HEED_ERR_ARG, "activation %s: unknown kind %d", name, (int)cfg->kind);
    if (!isfinite(cfg->slope))
        return heed_fail(HEED_ERR_ARG, "%s %s: slope %g is not finite", ops->type, name,
                         (double)cfg->slope);
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "%s %s: input shape (%d, %d, %d) has a dimension < 1",
                         ops->type, name, in[0], in[1], in[2]);
    heed_activation *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "%s %s: cannot allocate the layer", ops->type, name);
    l->cfg = *cfg;
    if (cfg->kind == HEED_ACT_LEAKY_RELU) l->cfg.slope = resolve_slope(cfg->slope);
    heed_layer_init(&l->base, ops, name, in, in[0], in[1], in[2]);
    *out = l;
    return HEED_OK;
}
