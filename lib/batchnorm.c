/* batchnorm.c -- 2-D batch normalization.
 *
 * N images, C channels, HW = H*W positions; per channel c the M = N*HW
 * values x_i are normalised with a mean mu and an inverse deviation
 * r = 1 / sqrt(var + eps):
 *
 *   forward:   xh_i = (x_i - mu) r,   y_i = gamma xh_i + beta
 *   backward:  dbeta  += sum_i dy_i
 *              dgamma += sum_i dy_i xh_i
 *     inference (mu, r fixed constants):
 *              dx_i += gamma r dy_i
 *     training (mu = mean x, var = mean (x - mu)^2 depend on every x_i):
 *              dx_i += gamma r / M * (M dy_i - sum_j dy_j - xh_i sum_j dy_j xh_j)
 *
 * The training formula is the chain rule through mu and var collapsed into
 * the two per-channel sums that dbeta and dgamma need anyway. Statistics are
 * accumulated in double: a channel of a batch of images has 10^5 values and
 * float sums would lose the digits the variance lives in. Channels are
 * independent, so OpenMP splits them and no two threads write one value.
 */
#include "batchnorm.h"

#include <math.h>
#include <stdlib.h>

/* Below this many values OpenMP's start-up costs more than it saves. */
#define PARALLEL_MIN 32768

static heed_status check_ready(const heed_batchnorm *l, const char *fn) {
    if (!l->gamma || !l->running_mean)
        return heed_fail(HEED_ERR_ARG, "%s %s: parameters not allocated (call heed_params_alloc)",
                         fn, l->base.name);
    return HEED_OK;
}

heed_status heed_batchnorm_forward(heed_batchnorm *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_ready(l, "bn forward"));
    const int N = x->n, C = l->cfg.c, HW = x->h * x->w;
    HEED_CHECK_SHAPE(x->c == C, "bn forward %s: input (%d, %d, %d, %d) has %d channels, expected %d",
                     l->base.name, x->n, x->c, x->h, x->w, x->c, C);
    const int train = l->base.training != 0;
    const double M = (double)N * HW;
    if (train && M < 2)
        return heed_fail(HEED_ERR_SHAPE,
                         "bn forward %s: input (%d, %d, %d, %d) has one value per channel; "
                         "training needs more than one for a variance",
                         l->base.name, x->n, x->c, x->h, x->w);
    HEED_TRY(heed_tensor_ensure(y, N, C, x->h, x->w));
    const float m = l->cfg.momentum, eps = l->cfg.eps;
    const float *X = x->data;
    float *Y = y->data;

#pragma omp parallel for schedule(static) if ((double)C * M >= PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (train) {
            double s = 0.0;
            for (int n = 0; n < N; n++) {
                const float *xp = X + ((size_t)n * C + c) * HW;
                for (int i = 0; i < HW; i++) s += xp[i];
            }
            mu = s / M;
            /* Two passes: sum (x - mu)^2 does not cancel like sum x^2 - M mu^2. */
            double s2 = 0.0;
            for (int n = 0; n < N; n++) {
                const float *xp = X + ((size_t)n * C + c) * HW;
                for (int i = 0; i < HW; i++) {
                    double d = xp[i] - mu;
                    s2 += d * d;
                }
            }
            var = s2 / M;
            l->running_mean[c] = (float)((1.0 - m) * l->running_mean[c] + m * mu);
            l->running_var[c] = (float)((1.0 - m) * l->running_var[c] + m * var * M / (M - 1.0));
        } else {
            mu = l->running_mean[c];
            var = l->running_var[c];
        }
        const double r = 1.0 / sqrt(var + eps);
        l->mean[c] = (float)mu;
        l->inv_std[c] = (float)r;
        /* (x - mu) first: folding mu into the shift would cancel digits
         * when |mu| is large against the spread. */
        const float muf = (float)mu, scale = (float)(l->gamma[c] * r), beta = l->beta[c];
        for (int n = 0; n < N; n++) {
            const size_t off = ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) Y[off + i] = (X[off + i] - muf) * scale + beta;
        }
    }
    l->batch_stats = train;
    return HEED_OK;
}

heed_status heed_batchnorm_backward(heed_batchnorm *l, const heed_tensor *x, const heed_tensor *dy,
                                    heed_tensor *dx) {
    HEED_TRY(check_ready(l, "bn backward"));
    const int N = x->n, C = l->cfg.c, HW = x->h * x->w;
    HEED_CHECK_SHAPE(x->c == C, "bn backward %s: input (%d, %d, %d, %d) has %d channels, expected %d",
                     l->base.name, x->n, x->c, x->h, x->w, x->c, C);
    HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, x) && (!dx || heed_tensor_same_shape(dx, x)),
                     "bn backward %s: gradients do not match input (%d, %d, %d, %d)", l->base.name,
                     x->n, x->c, x->h, x->w);
    const double M = (double)N * HW;
    const float *X = x->data, *DY = dy->data;
    float *DX = dx ? dx->data : NULL;
    const int train = l->batch_stats;

#pragma omp parallel for schedule(static) if ((double)C * M >= PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        const double mu = l->mean[c], r = l->inv_std[c];
        double sdy = 0.0, sdyxh = 0.0;
        for (int n = 0; n < N; n++) {
            const size_t off = ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                sdy += DY[off + i];
                sdyxh += DY[off + i] * ((X[off + i] - mu) * r);
            }
        }
        l->dbeta[c] += (float)sdy;
        l->dgamma[c] += (float)sdyxh;
        if (!DX) continue;
        const double g = l->gamma[c] * r;
        if (train) {
            /* dx = g dy - g mean(dy) - g xh mean(dy xh), with xh = (x - mu) r. */
            const float a = (float)g, b = (float)(-g * sdy / M), k = (float)(-g * sdyxh / M * r);
            const float muf = (float)mu;
            for (int n = 0; n < N; n++) {
                const size_t off = ((size_t)n * C + c) * HW;
                for (int i = 0; i < HW; i++)
                    DX[off + i] += a * DY[off + i] + k * (X[off + i] - muf) + b;
            }
        } else {
            const float a = (float)g;
            for (int n = 0; n < N; n++) {
                const size_t off = ((size_t)n * C + c) * HW;
                for (int i = 0; i < HW; i++) DX[off + i] += a * DY[off + i];
            }
        }
    }
    return HEED_OK;
}

heed_status heed_batchnorm_scale_shift(const heed_batchnorm *l, float *scale, float *shift) {
    HEED_TRY(check_ready(l, "bn scale_shift"));
    for (int c = 0; c < l->cfg.c; c++) {
        const double s = l->gamma[c] / sqrt((double)l->running_var[c] + l->cfg.eps);
        scale[c] = (float)s;
        shift[c] = (float)(l->beta[c] - l->running_mean[c] * s);
    }
    return HEED_OK;
}

static heed_status bn_forward_op(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_batchnorm_forward((heed_batchnorm *)l, x, y);
}

static heed_status bn_backward_op(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                  const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_batchnorm_backward((heed_batchnorm *)l, x, dy, dx);
}

/* Inference cost: one multiply-add per element once folded into an affine. */
static double bn_flops(const heed_layer *l) { return 2.0 * l->in_c * l->in_h * l->in_w; }

static void bn_destroy(heed_layer *base) {
    heed_batchnorm *l = (heed_batchnorm *)base;
    free(l->mean);
    free(l);
}

static const heed_layer_ops bn_ops = {
    .type = "bn",
    .forward = bn_forward_op,
    .backward = bn_backward_op,
    .flops = bn_flops,
    .destroy = bn_destroy,
};

heed_status heed_batchnorm_new(heed_batchnorm **out, const heed_batchnorm_cfg *cfg,
                               const int in[3], heed_params *p, const char *name) {
    *out = NULL;
    heed_batchnorm_cfg c = cfg ? *cfg : (heed_batchnorm_cfg){0};
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "bn %s: input shape (%d, %d, %d) has a dimension < 1", name,
                         in[0], in[1], in[2]);
    if (c.c == 0) c.c = in[0];
    if (c.c != in[0])
        return heed_fail(HEED_ERR_ARG, "bn %s: c = %d but the input (%d, %d, %d) has %d channels",
                         name, c.c, in[0], in[1], in[2], in[0]);
    if (c.momentum == 0.0f) c.momentum = 0.1f;
    if (!(c.momentum > 0.0f && c.momentum <= 1.0f))
        return heed_fail(HEED_ERR_ARG, "bn %s: momentum %g outside (0, 1]", name, c.momentum);
    if (c.eps == 0.0f) c.eps = 1e-5f;
    if (!(c.eps > 0.0f && isfinite(c.eps)))
        return heed_fail(HEED_ERR_ARG, "bn %s: eps %g must be positive", name, c.eps);

    heed_batchnorm *l = calloc(1, sizeof *l);
    float *stats = calloc(2 * (size_t)c.c, sizeof *stats);
    if (!l || !stats) {
        free(l), free(stats);
        return heed_fail(HEED_ERR_NOMEM, "bn %s: cannot allocate the layer (%d channels)", name, c.c);
    }
    l->cfg = c;
    l->mean = stats;
    l->inv_std = stats + c.c;
    heed_layer_init(&l->base, &bn_ops, name, in, in[0], in[1], in[2]);

    /* On failure, forget what this layer registered so that no slot points
     * into the freed layer. */
    const int registered = p->count;
    char pname[64];
    heed_status s = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "weight"), 1,
                                    &c.c, HEED_INIT_ONES, 0, 0, &l->gamma, &l->dgamma);
    if (s == HEED_OK)
        s = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "bias"), 1, &c.c,
                            HEED_INIT_ZEROS, 0, 0, &l->beta, &l->dbeta);
    if (s == HEED_OK)
        s = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "running_mean"), 1,
                            &c.c, HEED_INIT_ZEROS, 0, HEED_PARAM_BUFFER, &l->running_mean, NULL);
    if (s == HEED_OK)
        s = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "running_var"), 1,
                            &c.c, HEED_INIT_ONES, 0, HEED_PARAM_BUFFER, &l->running_var, NULL);
    if (s != HEED_OK) {
        p->count = registered;
        bn_destroy(&l->base);
        return s;
    }
    *out = l;
    return HEED_OK;
}
