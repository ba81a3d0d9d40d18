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
 * the two per-channel sums that dbeta and dgamma need anyway. With an
 * activation f fused after the batch norm (relu or hardswish), y_i =
 * f(gamma xh_i + beta) and every dy_i above is replaced by dy_i f'(z_i),
 * z_i = gamma xh_i + beta recomputed from x_i with the forward's own float
 * operations (so the mask, or the derivative, is exactly the unfused
 * one's) instead of being kept: one tensor less to store and stream.
 *
 * Statistics are summed in float within a plane (H*W values, vectorized)
 * and in double across planes: a channel of a batch of images has 10^5
 * values and float sums would lose the digits the variance lives in.
 * Threads split the planes for the passes over the tensor (each a
 * contiguous stretch of it), keep each plane's sums, and then split the
 * channels to combine them, always in image order; no two threads write
 * one value, and results do not depend on the thread count. (Split by
 * channels, each thread read a short run per image: on 2 threads the
 * training passes ran no faster than on one, at batch 64 of W1's maps.)
 */
#include "batchnorm.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "activation_impl.h"
#include "parallel.h"
#include "wide.h"

static heed_status check_ready(const heed_batchnorm *l, const char *fn) {
    if (!l->gamma || !l->running_mean)
        return heed_fail(HEED_ERR_ARG, "%s %s: parameters not allocated (call heed_params_alloc)",
                         fn, l->base.name);
    return HEED_OK;
}

/* Sums over one plane run in float, in LANES independent partial sums
 * (vectorized: several vector accumulators, so the additions do not wait on
 * each other), and the planes' sums add up in double: a channel of a batch
 * has 10^5 values, which float would not sum to the digits the variance
 * lives in. */
#define LANES 16

static double lanes_total(const float *a) {
    double t = 0.0;
    for (int k = 0; k < LANES; k++) t += a[k];
    return t;
}

/* A plane's mean and sum of squared deviations from it: two passes (sums
 * of x - k, k its first value, keep float partial sums small when |mean| is
 * large against the spread; then (x - mean)^2, which does not cancel like
 * sum x^2 - n mean^2). */
HEED_WIDE static void plane_stats(const float *restrict x, int n, double *mean, double *m2) {
    const float k = x[0];
    float a[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) a[j] += x[i + j] - k;
    for (; i < n; i++) a[0] += x[i] - k;
    const double mu = k + lanes_total(a) / n;
    const float muf = (float)mu;
    float b[LANES] = {0};
    for (i = 0; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            const float d = x[i + j] - muf;
            b[j] += d * d;
        }
    for (; i < n; i++) {
        const float d = x[i] - muf;
        b[0] += d * d;
    }
    /* mu rounded to float shifts the sum by n (mu - muf)^2. */
    const double dm = mu - muf, s2 = lanes_total(b) - n * dm * dm;
    *mean = mu;
    *m2 = s2 > 0.0 ? s2 : 0.0;
}

/* (x - mu) first: folding mu into the shift would cancel digits when |mu|
 * is large against the spread. act: the fused activation (HEED_FUSE_*, 0
 * none); the Makefile builds this file with -fno-trapping-math, so that
 * hardswish's selects vectorize. */
HEED_WIDE static void plane_normalize(const float *restrict x, float *restrict y, int n, float mu,
                                      float scale, float beta, int act) {
    if (act == HEED_FUSE_RELU)
        for (int i = 0; i < n; i++) y[i] = heed_fused_act((x[i] - mu) * scale + beta, HEED_FUSE_RELU);
    else if (act == HEED_FUSE_HARDSWISH)
        for (int i = 0; i < n; i++)
            y[i] = heed_fused_act((x[i] - mu) * scale + beta, HEED_FUSE_HARDSWISH);
    else
        for (int i = 0; i < n; i++) y[i] = (x[i] - mu) * scale + beta;
}

/* This thread's share [*lo, *hi) of `count` channels or planes inside the
 * passes' own parallel region (`team`), all of them outside it. */
static void team_share(size_t count, int team, size_t *lo, size_t *hi) {
    size_t t = 0, nt = 1;
#ifdef _OPENMP
    if (team) t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
#else
    (void)team;
#endif
    *lo = count * t / nt, *hi = count * (t + 1) / nt;
}

/* The passes' threads wait for each other here (nothing to wait for
 * outside their region, and another region's team must not be made to). */
#define TEAM_BARRIER(team)                                                                         \
    do {                                                                                           \
        if (team) {                                                                                \
            _Pragma("omp barrier")                                                                 \
        }                                                                                          \
    } while (0)

/* Room for two sums per plane (the layer's scratch, kept between calls). */
static heed_status plane_sums(heed_batchnorm *l, size_t planes, double **out) {
    float *buf;
    HEED_TRY(heed_scratch_get(&l->planes, planes * 2 * sizeof(double) / sizeof(float), &buf));
    *out = (double *)(void *)buf;
    return HEED_OK;
}

/* Folds plane statistics into a channel's running pair, image after image:
 * (mean, m2) of the planes so far and a plane's (pm, pm2), seen = the
 * values before it (Chan et al.'s update). */
static void combine_plane(double *mean, double *m2, double pm, double pm2, double seen, int HW) {
    const double delta = pm - *mean, tot = seen + HW;
    *mean += delta * HW / tot;
    *m2 += pm2 + delta * delta * seen * HW / tot;
}

/* y = act(BN(x)) (act HEED_FUSE_*, 0 none): the shared body of the forward passes. */
static heed_status forward_act(heed_batchnorm *l, const heed_tensor *x, heed_tensor *y, int act,
                               const char *fn) {
    HEED_TRY(check_ready(l, fn));
    const int N = x->n, C = l->cfg.c, HW = x->h * x->w;
    HEED_CHECK_SHAPE(x->c == C, "%s %s: input (%d, %d, %d, %d) has %d channels, expected %d", fn,
                     l->base.name, x->n, x->c, x->h, x->w, x->c, C);
    const int train = l->base.training != 0;
    const double M = (double)N * HW;
    if (train && M < 2)
        return heed_fail(HEED_ERR_SHAPE,
                         "%s %s: input (%d, %d, %d, %d) has one value per channel; "
                         "training needs more than one for a variance",
                         fn, l->base.name, x->n, x->c, x->h, x->w);
    if (y == x || (y->data && y->data == x->data))
        return heed_fail(HEED_ERR_ARG, "%s %s: y must not alias x", fn, l->base.name);
    HEED_TRY(heed_tensor_ensure(y, N, C, x->h, x->w));
    const float m = l->cfg.momentum, eps = l->cfg.eps;
    const float *X = x->data;
    float *Y = y->data;

    double *planes = NULL;
    if (train) HEED_TRY(plane_sums(l, (size_t)N * C, &planes));
    /* The planes' passes: each thread takes a range of the (N x C) planes,
     * a contiguous stretch of the tensor (which the prefetchers stream, and
     * which the convolutions around split the same way, by images), and
     * keeps each plane's statistics. The channels' passes (a range of
     * channels each) then combine them in image order, whatever the thread
     * count. */
    const int team = (double)C * M >= PAR_MIN && !PAR_NESTED();
    PARALLEL_IF(team, "omp parallel",
        {
            size_t c0, c1, p0, p1;
            team_share((size_t)C, team, &c0, &c1);
            team_share((size_t)N * C, team, &p0, &p1);
            if (train) {
                for (size_t i = p0; i < p1; i++)
                    plane_stats(X + i * HW, HW, &planes[2 * i], &planes[2 * i + 1]);
                TEAM_BARRIER(team);
            }
            for (size_t c = c0; c < c1; c++) {
                double mu = 0.0, var, m2 = 0.0;
                if (train) {
                    for (int n = 0; n < N; n++) {
                        const double *pl = planes + 2 * ((size_t)n * C + c);
                        combine_plane(&mu, &m2, pl[0], pl[1], (double)n * HW, HW);
                    }
                    var = m2 / M;
                    l->running_mean[c] = (float)((1.0 - m) * l->running_mean[c] + m * mu);
                    l->running_var[c] =
                        (float)((1.0 - m) * l->running_var[c] + m * var * M / (M - 1.0));
                } else {
                    mu = l->running_mean[c];
                    var = l->running_var[c];
                }
                const double r = 1.0 / sqrt(var + eps);
                l->mean[c] = (float)mu;
                l->inv_std[c] = (float)r;
                l->fwd_scale[c] = (float)(l->gamma[c] * r);
                l->fwd_shift[c] = l->beta[c];
            }
            TEAM_BARRIER(team);
            for (size_t i = p0; i < p1; i++) {
                const int c = (int)(i % C);
                plane_normalize(X + i * HW, Y + i * HW, HW, l->mean[c], l->fwd_scale[c],
                                l->fwd_shift[c], act);
            }
        });
    l->batch_stats = train;
    l->fwd_n = N, l->fwd_h = x->h, l->fwd_w = x->w;
    return HEED_OK;
}

heed_status heed_batchnorm_forward(heed_batchnorm *l, const heed_tensor *x, heed_tensor *y) {
    return forward_act(l, x, y, 0, "bn forward");
}

heed_status heed_batchnorm_forward_relu(heed_batchnorm *l, const heed_tensor *x, heed_tensor *y) {
    return forward_act(l, x, y, HEED_FUSE_RELU, "bn forward_relu");
}

/* The per-plane sums backward needs: sum g and sum g (x - mu), with g = dy,
 * or with an activation fused dy f'(z), z the activation's input
 * recomputed from x with the forward's own float operations. In these
 * loops every operand is loaded before a select: a load under a condition
 * is not if-converted, and the loop would not vectorize. */
typedef struct fused_act {
    int act;            /* HEED_FUSE_*, 0 none */
    float scale, shift; /* the forward's: z = (x - mu) scale + shift */
} fused_act;

/* dy f'(z) at x - mu = xm. */
static inline float fused_grad(float dy, float xm, int act, float scale, float shift) {
    return heed_fused_act_grad(xm * scale + shift, dy, act);
}

/* The sums with one fused activation (a constant, so that each caller's
 * loop is its own). The select keeps these out of the lane arrays of
 * plane_grad_sums, which GCC does not vectorize with it; OpenMP's
 * reduction does. */
static inline __attribute__((always_inline)) void grad_sums_act(
    const float *restrict x, const float *restrict dy, int n, float mu, fused_act f,
    const int act, double *sdy, double *sdyx) {
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (int i = 0; i < n; i++) {
        const float xm = x[i] - mu, g = fused_grad(dy[i], xm, act, f.scale, f.shift);
        a += g;
        b += g * xm;
    }
    *sdy += a, *sdyx += b;
}

HEED_WIDE
static void plane_grad_sums(const float *restrict x, const float *restrict dy, int n, float mu,
                            fused_act f, double *sdy, double *sdyx) {
    if (f.act == HEED_FUSE_RELU) {
        grad_sums_act(x, dy, n, mu, f, HEED_FUSE_RELU, sdy, sdyx);
        return;
    }
    if (f.act == HEED_FUSE_HARDSWISH) {
        grad_sums_act(x, dy, n, mu, f, HEED_FUSE_HARDSWISH, sdy, sdyx);
        return;
    }
    float a[LANES] = {0}, b[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            a[j] += dy[i + j];
            b[j] += dy[i + j] * (x[i + j] - mu);
        }
    for (; i < n; i++) {
        a[0] += dy[i];
        b[0] += dy[i] * (x[i] - mu);
    }
    *sdy += lanes_total(a), *sdyx += lanes_total(b);
}

/* dx (+)= a g + k (x - mu) + b over one plane, with g as above, for one
 * fused activation (a constant, so that each caller's loop is its own). */
static inline __attribute__((always_inline)) void plane_grad_act(
    const float *restrict x, const float *restrict dy, float *restrict dx, int n, float mu,
    fused_act f, const int act, float a, float k, float b, int train, int fresh) {
    if (fresh)
        for (int i = 0; i < n; i++) {
            const float xm = x[i] - mu, g = fused_grad(dy[i], xm, act, f.scale, f.shift);
            dx[i] = a * g + (train ? k * xm + b : 0.0f);
        }
    else
        for (int i = 0; i < n; i++) {
            const float xm = x[i] - mu, g = fused_grad(dy[i], xm, act, f.scale, f.shift);
            dx[i] += a * g + (train ? k * xm + b : 0.0f);
        }
}

/* dx (+)= a g + k (x - mu) + b with g as above (in inference, where mu and
 * the deviation are constants, a g alone). `fresh`: dx holds no gradient
 * yet, so it is written, not added to. */
HEED_WIDE
static void plane_grad(const float *restrict x, const float *restrict dy, float *restrict dx,
                       int n, float mu, fused_act f, float a, float k, float b, int train,
                       int fresh) {
    if (!train) k = 0.0f, b = 0.0f; /* and x - mu adds nothing (x may even be inf) */
    if (f.act == HEED_FUSE_RELU)
        plane_grad_act(x, dy, dx, n, mu, f, HEED_FUSE_RELU, a, k, b, train, fresh);
    else if (f.act == HEED_FUSE_HARDSWISH)
        plane_grad_act(x, dy, dx, n, mu, f, HEED_FUSE_HARDSWISH, a, k, b, train, fresh);
    else if (fresh)
        for (int i = 0; i < n; i++) dx[i] = a * dy[i] + (train ? k * (x[i] - mu) + b : 0.0f);
    else
        for (int i = 0; i < n; i++) dx[i] += a * dy[i] + (train ? k * (x[i] - mu) + b : 0.0f);
}

static heed_status backward_act(heed_batchnorm *l, const heed_tensor *x, int act,
                                const heed_tensor *dy, heed_tensor *dx, const char *fn) {
    HEED_TRY(check_ready(l, fn));
    const int N = x->n, C = l->cfg.c, HW = x->h * x->w;
    HEED_CHECK_SHAPE(x->c == C, "%s %s: input (%d, %d, %d, %d) has %d channels, expected %d", fn,
                     l->base.name, x->n, x->c, x->h, x->w, x->c, C);
    HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, x) && (!dx || heed_tensor_same_shape(dx, x)),
                     "%s %s: gradients do not match input (%d, %d, %d, %d)", fn, l->base.name,
                     x->n, x->c, x->h, x->w);
    /* The statistics backward uses are the last forward's: none yet, or
     * another batch's, would give gradients of something else. */
    HEED_CHECK_SHAPE(x->n == l->fwd_n && x->h == l->fwd_h && x->w == l->fwd_w,
                     "%s %s: input (%d, %d, %d, %d) is not what the last forward normalised "
                     "(%d images of %dx%d)", fn, l->base.name, x->n, x->c, x->h, x->w, l->fwd_n,
                     l->fwd_h, l->fwd_w);
    const double M = (double)N * HW;
    const float *X = x->data, *DY = dy->data;
    float *DX = dx ? dx->data : NULL;
    const int train = l->batch_stats, fresh = l->base.dx_fresh;

    double *acc = l->acc, *planes;
    HEED_TRY(plane_sums(l, (size_t)N * C, &planes));
    /* As in forward_act: each plane's sums, then per channel their total
     * in image order. */
    const int team = (double)C * M >= PAR_MIN && !PAR_NESTED();
    PARALLEL_IF(team, "omp parallel",
        {
            size_t c0, c1, p0, p1;
            team_share((size_t)C, team, &c0, &c1);
            team_share((size_t)N * C, team, &p0, &p1);
            for (size_t i = p0; i < p1; i++) {
                const int c = (int)(i % C);
                const fused_act f = {
                    .act = act, .scale = l->fwd_scale[c], .shift = l->fwd_shift[c]};
                planes[2 * i] = planes[2 * i + 1] = 0.0;
                plane_grad_sums(X + i * HW, DY + i * HW, HW, l->mean[c], f, &planes[2 * i],
                                &planes[2 * i + 1]);
            }
            TEAM_BARRIER(team);
            for (size_t c = c0; c < c1; c++) {
                double sdy = 0.0, sdyx = 0.0;
                for (int n = 0; n < N; n++) {
                    sdy += planes[2 * ((size_t)n * C + c)];
                    sdyx += planes[2 * ((size_t)n * C + c) + 1];
                }
                const double r = l->inv_std[c], sdyxh = sdyx * r;
                l->dbeta[c] += (float)sdy;
                l->dgamma[c] += (float)sdyxh;
                const double g = l->gamma[c] * r;
                /* training: dx = g dy - g mean(dy) - g xh mean(dy xh), xh = (x - mu) r;
                 * inference: dx = g dy. Kept as floats for the pass below. */
                acc[2 * c] = (float)(-g * sdy / M);
                acc[2 * c + 1] = (float)(-g * sdyxh / M * r);
            }
            TEAM_BARRIER(team);
            for (size_t i = p0; DX && i < p1; i++) {
                const int c = (int)(i % C);
                const fused_act f = {
                    .act = act, .scale = l->fwd_scale[c], .shift = l->fwd_shift[c]};
                const float a = (float)(l->gamma[c] * (double)l->inv_std[c]);
                plane_grad(X + i * HW, DY + i * HW, DX + i * HW, HW, l->mean[c], f, a,
                           (float)acc[2 * c + 1], (float)acc[2 * c], train, fresh);
            }
        });
    return HEED_OK;
}

heed_status heed_batchnorm_backward(heed_batchnorm *l, const heed_tensor *x, const heed_tensor *dy,
                                    heed_tensor *dx) {
    return backward_act(l, x, 0, dy, dx, "bn backward");
}

heed_status heed_batchnorm_backward_relu(heed_batchnorm *l, const heed_tensor *x,
                                         const heed_tensor *y, const heed_tensor *dy,
                                         heed_tensor *dx) {
    HEED_CHECK_SHAPE(!y || heed_tensor_same_shape(y, x),
                     "bn backward_relu %s: y (%d, %d, %d, %d) does not match x (%d, %d, %d, %d)",
                     l->base.name, y ? y->n : 0, y ? y->c : 0, y ? y->h : 0, y ? y->w : 0, x->n,
                     x->c, x->h, x->w);
    return backward_act(l, x, HEED_FUSE_RELU, dy, dx, "bn backward_relu");
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

/* A sequence sets fuse_act for calls through the layer interface when the
 * batch norm's output only feeds a relu or a hardswish (see seq.c). */
static heed_status bn_forward_op(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    heed_batchnorm *bn = (heed_batchnorm *)l;
    return forward_act(bn, x, y, bn->fuse_act, "bn forward");
}

static heed_status bn_backward_op(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                  const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    heed_batchnorm *bn = (heed_batchnorm *)l;
    return backward_act(bn, x, bn->fuse_act, dy, dx, "bn backward");
}

/* Inference cost: one multiply-add per element once folded into an affine. */
static double bn_flops(const heed_layer *l) { return 2.0 * l->in_c * l->in_h * l->in_w; }

static void bn_destroy(heed_layer *base) {
    heed_batchnorm *l = (heed_batchnorm *)base;
    free(l->mean);
    free(l->acc);
    heed_scratch_free(&l->planes);
    free(l);
}

static const heed_layer_ops bn_ops = {
    .type = "bn",
    .writes_fresh_dx = 1,
    .forward = bn_forward_op,
    .backward = bn_backward_op,
    .flops = bn_flops,
    .destroy = bn_destroy,
};

heed_status heed_batchnorm_new(heed_batchnorm **out, const heed_batchnorm_cfg *cfg,
                               const int in[3], heed_params *p, const char *name) {
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("bn", name));
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
    float *stats = calloc(4 * (size_t)c.c, sizeof *stats);
    double *acc = calloc(2 * (size_t)c.c, sizeof *acc);
    if (!l || !stats || !acc) {
        free(l), free(stats), free(acc);
        return heed_fail(HEED_ERR_NOMEM, "bn %s: cannot allocate the layer (%d channels)", name, c.c);
    }
    l->cfg = c;
    l->mean = stats;
    l->inv_std = stats + c.c;
    l->fwd_scale = stats + 2 * (size_t)c.c;
    l->fwd_shift = stats + 3 * (size_t)c.c;
    l->acc = acc;
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
