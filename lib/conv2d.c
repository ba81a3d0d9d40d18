/* conv2d.c -- 2-D convolution, forward and backward, on heed_gemm.
 *
 * Dimensions: N images, IC/OC input/output channels, H x W input, OH x OW
 * output, K kernel side, S stride, P padding, D dilation, G groups,
 * ICg = IC/G, OCg = OC/G, R = ICg*K*K, L = OH*OW.
 *
 * Forward, per group g, with the im2col matrix
 *   col[(c,u,v), (n,i,j)] = x[n, g*ICg + c, i*S - P + u*D, j*S - P + v*D]   (0 outside)
 * of shape (R, NB*L) for a pass over NB images:
 *   Y_g (OCg, NB*L) = W_g (OCg, R) x col,      y = Y_g + b.
 * Backward, with dY_g the matching (OCg, NB*L) slice of dy:
 *   dW_g += dY_g x col^T,   db += sum over (n,i,j) of dy,
 *   dcol  = W_g^T x dY_g,   dx += col2im(dcol)
 * where col2im adds each column entry back to the input pixel it came from.
 *
 * Special cases: a 1x1 kernel with stride 1 and no padding needs no im2col
 * (col is x itself, viewed (ICg, L)); a depthwise convolution (G == IC ==
 * OC) has one K x K filter per channel, too little work for a matrix
 * product, and runs as a direct loop.
 *
 * Several images share one pass when the output is small, so that the
 * matrix products are wide enough to run near full speed; the outputs of
 * such a pass are scattered from (OCg, NB*L) back to NCHW order.
 */
#include "conv2d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

/* Columns per pass worth batching images for, and the most floats the
 * im2col buffer may take when batching (a single image may take more).
 * Passes much wider than 2048 columns measured slower: the columns no
 * longer stay in cache between im2col and the matrix product. */
#ifndef PASS_COLUMNS
#define PASS_COLUMNS 2048
#endif
#define COL_BUDGET ((size_t)1 << 22)
/* Loops over fewer floats than this are not worth waking threads for. */
#define PAR_MIN ((size_t)1 << 15)

typedef struct geom {
    int N, IC, H, W, OC, OH, OW, K, S, P, D, G, ICg, OCg, R, L;
} geom;

static geom geometry(const heed_conv2d *l, int N) {
    const heed_conv2d_cfg *c = &l->cfg;
    geom g = {.N = N, .IC = c->in_c, .H = l->base.in_h, .W = l->base.in_w, .OC = c->out_c,
              .OH = l->base.out_h, .OW = l->base.out_w, .K = c->k, .S = c->stride,
              .P = c->pad, .D = c->dilation, .G = c->groups};
    g.ICg = g.IC / g.G;
    g.OCg = g.OC / g.G;
    g.R = g.ICg * g.K * g.K;
    g.L = g.OH * g.OW;
    return g;
}

static int is_pointwise(const geom *g) { return g->K == 1 && g->S == 1 && g->P == 0; }

static int is_depthwise(const geom *g) { return g->G == g->IC && g->G == g->OC; }

/* Images per im2col + gemm pass. */
static int images_per_pass(const geom *g) {
    size_t L = (size_t)g->L, R = (size_t)g->R;
    size_t nb = (PASS_COLUMNS + L - 1) / L;
    size_t cap = COL_BUDGET / (R * L);
    if (nb > cap) nb = cap;
    if (nb > (size_t)g->N) nb = (size_t)g->N;
    return nb < 1 ? 1 : (int)nb;
}

int heed_conv2d_out_size(int in, int k, int stride, int pad, int dilation) {
    if (stride <= 0) stride = 1;
    if (dilation <= 0) dilation = 1;
    long span = (long)in + 2L * pad - (long)dilation * (k - 1) - 1;
    if (span < 0) return 0; /* floor of a negative fraction, + 1, is <= 0 */
    long out = span / stride + 1;
    return out > 0x7fffffff ? 0x7fffffff : (int)out;
}

/* The output positions [*lo, *hi) within [0, n_out) whose input position
 * o*S + off falls inside [0, n_in). */
static void valid_range(int off, int S, int n_in, int n_out, int *lo, int *hi) {
    int a = off >= 0 ? 0 : (-off + S - 1) / S;
    int b = n_in - off <= 0 ? 0 : (n_in - off + S - 1) / S;
    if (b > n_out) b = n_out;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* Where kernel tap (u, v) reads: output rows [ilo, ihi) and columns
 * [jlo, jhi) see input pixels (i*S + off_h, j*S + off_w) inside the plane;
 * the rest of the tap's im2col row is padding. */
typedef struct tap {
    int off_h, off_w, ilo, ihi, jlo, jhi;
} tap;

static tap tap_at(const geom *g, int u, int v) {
    tap t = {.off_h = u * g->D - g->P, .off_w = v * g->D - g->P};
    valid_range(t.off_h, g->S, g->H, g->OH, &t.ilo, &t.ihi);
    valid_range(t.off_w, g->S, g->W, g->OW, &t.jlo, &t.jhi);
    if (t.jlo == t.jhi) t.ihi = t.ilo; /* no column fits: nothing does */
    return t;
}

/* With stride 1 and OW == W (the usual "same" convolution) a tap's valid
 * region is one contiguous run in both its im2col row and the input plane:
 * entry t of the row reads plane entry t + off_h*W + off_w. Copying the
 * run whole, instead of row by row, saves a call per output row; the run's
 * entries that wrap around a row edge lie outside [jlo, jhi) and are
 * zeroed afterwards. */
static int runs_are_contiguous(const geom *g) { return g->S == 1 && g->OW == g->W; }

static void zero_outside_columns(const geom *g, const tap *t, float *row) {
    for (int j = 0; j < t->jlo; j++)
        for (int i = t->ilo; i < t->ihi; i++) row[(size_t)i * g->OW + j] = 0.0f;
    for (int j = t->jhi; j < g->OW; j++)
        for (int i = t->ilo; i < t->ihi; i++) row[(size_t)i * g->OW + j] = 0.0f;
}

/* One tap's im2col row (L floats) from the input plane xp. */
static void im2col_row(const geom *g, const tap *t, const float *xp, float *row) {
    const int OW = g->OW, W = g->W, S = g->S;
    memset(row, 0, (size_t)t->ilo * OW * sizeof(float));
    memset(row + (size_t)t->ihi * OW, 0, (size_t)(g->OH - t->ihi) * OW * sizeof(float));
    if (t->ilo == t->ihi) return;
    if (runs_are_contiguous(g)) {
        size_t first = (size_t)t->ilo * OW + t->jlo, last = (size_t)(t->ihi - 1) * OW + t->jhi;
        const float *src = xp + (size_t)(t->ilo + t->off_h) * W + t->jlo + t->off_w;
        memcpy(row + first, src, (last - first) * sizeof(float));
        zero_outside_columns(g, t, row);
        return;
    }
    for (int i = t->ilo; i < t->ihi; i++) {
        float *dst = row + (size_t)i * OW;
        const float *src = xp + (size_t)(i * S + t->off_h) * W;
        for (int j = 0; j < t->jlo; j++) dst[j] = 0.0f;
        for (int j = t->jlo; j < t->jhi; j++) dst[j] = src[j * S + t->off_w];
        for (int j = t->jhi; j < OW; j++) dst[j] = 0.0f;
    }
}

/* dxp (the input plane's gradient) += one tap's im2col row. The row is
 * scratch: its padding entries may be overwritten. */
static void col2im_row(const geom *g, const tap *t, float *row, float *dxp) {
    const int OW = g->OW, W = g->W, S = g->S;
    if (t->ilo == t->ihi) return;
    if (runs_are_contiguous(g)) {
        /* Zeroing the wrapped entries first makes them add nothing. */
        zero_outside_columns(g, t, row);
        size_t first = (size_t)t->ilo * OW + t->jlo, last = (size_t)(t->ihi - 1) * OW + t->jhi;
        float *dst = dxp + (size_t)(t->ilo + t->off_h) * W + t->jlo + t->off_w;
        const float *src = row + first;
        for (size_t k = 0; k < last - first; k++) dst[k] += src[k];
        return;
    }
    for (int i = t->ilo; i < t->ihi; i++) {
        const float *src = row + (size_t)i * OW;
        float *dst = dxp + (size_t)(i * S + t->off_h) * W;
        for (int j = t->jlo; j < t->jhi; j++) dst[j * S + t->off_w] += src[j];
    }
}

/* col (R, ldc): columns nl*L .. nl*L + L-1 hold image n0+nl, for channels
 * c0 .. c0+ICg-1 of x. */
static void im2col(const geom *g, const float *x, int n0, int nb, int c0, float *col, int ldc) {
    const int K = g->K;
    const size_t HW = (size_t)g->H * g->W;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)g->R * ldc > PAR_MIN)
    for (int nl = 0; nl < nb; nl++)
        for (int c = 0; c < g->ICg; c++) {
            const float *xp = x + ((size_t)(n0 + nl) * g->IC + c0 + c) * HW;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    tap t = tap_at(g, u, v);
                    float *row = col + (size_t)((c * K + u) * K + v) * ldc + (size_t)nl * g->L;
                    im2col_row(g, &t, xp, row);
                }
        }
}

/* dx += col2im(col): the transpose of im2col. Each (image, channel) plane
 * of dx is written by one thread only. */
static void col2im(const geom *g, float *col, int ldc, int n0, int nb, int c0, float *dx) {
    const int K = g->K;
    const size_t HW = (size_t)g->H * g->W;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)g->R * ldc > PAR_MIN)
    for (int nl = 0; nl < nb; nl++)
        for (int c = 0; c < g->ICg; c++) {
            float *dxp = dx + ((size_t)(n0 + nl) * g->IC + c0 + c) * HW;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    tap t = tap_at(g, u, v);
                    float *row = col + (size_t)((c * K + u) * K + v) * ldc + (size_t)nl * g->L;
                    col2im_row(g, &t, row, dxp);
                }
        }
}

/* Copies `rows` planes of L floats, plane r of image n0+nl starting at
 * src + ((n0+nl)*src_planes + r0 + r)*L, into dst (rows, nb*L) (gather) or
 * back, adding (scatter, with an optional per-row bias, or accumulate). */
enum { GATHER, SCATTER, SCATTER_ADD };

static void reorder(int mode, float *planes, int planes_per_image, int r0, int rows, int n0,
                    int nb, int L, float *mat, const float *bias) {
    const size_t ld = (size_t)nb * L;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)rows * ld > PAR_MIN)
    for (int nl = 0; nl < nb; nl++)
        for (int r = 0; r < rows; r++) {
            float *p = planes + ((size_t)(n0 + nl) * planes_per_image + r0 + r) * L;
            float *m = mat + (size_t)r * ld + (size_t)nl * L;
            if (mode == GATHER) {
                memcpy(m, p, (size_t)L * sizeof(float));
            } else if (mode == SCATTER) {
                float b = bias ? bias[r] : 0.0f;
                for (int i = 0; i < L; i++) p[i] = m[i] + b;
            } else {
                for (int i = 0; i < L; i++) p[i] += m[i];
            }
        }
}

static void add_bias_rows(float *y, const float *b, int rows, int L) {
#pragma omp parallel for schedule(static) if ((size_t)rows * L > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        float *p = y + (size_t)r * L;
        for (int i = 0; i < L; i++) p[i] += b[r];
    }
}

/* Depthwise forward: each (image, channel) plane independently. */
static void depthwise_forward(const heed_conv2d *l, const geom *g, const float *x, float *y) {
    const int K = g->K, S = g->S, OW = g->OW, W = g->W;
    const size_t HW = (size_t)g->H * W, L = (size_t)g->L;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)g->N * g->OC * L * K * K > PAR_MIN)
    for (int n = 0; n < g->N; n++)
        for (int c = 0; c < g->OC; c++) {
            const float *xp = x + ((size_t)n * g->IC + c) * HW;
            const float *wc = l->w + (size_t)c * K * K;
            float *yp = y + ((size_t)n * g->OC + c) * L;
            float b = l->b ? l->b[c] : 0.0f;
            for (size_t i = 0; i < L; i++) yp[i] = b;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    tap t = tap_at(g, u, v);
                    float wv = wc[u * K + v];
                    const int n = t.jhi - t.jlo;
                    for (int i = t.ilo; i < t.ihi; i++) {
                        const float *p = xp + (size_t)(i * S + t.off_h) * W + t.jlo * S + t.off_w;
                        float *dst = yp + (size_t)i * OW + t.jlo;
                        if (S == 1)
                            for (int k = 0; k < n; k++) dst[k] += wv * p[k];
                        else
                            for (int k = 0; k < n; k++) dst[k] += wv * p[k * S];
                    }
                }
        }
}

/* Depthwise backward: one thread per channel owns dW[c], db[c] and every
 * image's dx[:, c], so nothing races and the sums are deterministic. The
 * weight gradient sums in 8 lanes so that the loop vectorizes. */
static void depthwise_backward(heed_conv2d *l, const geom *g, const float *x, const float *dy,
                               float *dx) {
    const int K = g->K, S = g->S, OW = g->OW, W = g->W;
    const size_t HW = (size_t)g->H * W, L = (size_t)g->L;
#pragma omp parallel for schedule(static) if ((size_t)g->N * g->OC * L * K * K > PAR_MIN)
    for (int c = 0; c < g->OC; c++) {
        const float *wc = l->w + (size_t)c * K * K;
        float *dwc = l->dw + (size_t)c * K * K;
        for (int n = 0; n < g->N; n++) {
            const float *xp = x + ((size_t)n * g->IC + c) * HW;
            const float *dyp = dy + ((size_t)n * g->OC + c) * L;
            float *dxp = dx ? dx + ((size_t)n * g->IC + c) * HW : NULL;
            if (l->db) {
                float s = 0.0f;
                for (size_t i = 0; i < L; i++) s += dyp[i];
                l->db[c] += s;
            }
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    tap t = tap_at(g, u, v);
                    float wv = wc[u * K + v], acc[8] = {0};
                    for (int i = t.ilo; i < t.ihi; i++) {
                        const size_t in_row = (size_t)(i * S + t.off_h) * W;
                        /* From the first valid column on: p[k*S] pairs with dd[k]. */
                        const float *p = xp + in_row + t.jlo * S + t.off_w;
                        const float *dd = dyp + (size_t)i * OW + t.jlo;
                        float *dp = dxp ? dxp + in_row + t.jlo * S + t.off_w : NULL;
                        const int n = t.jhi - t.jlo;
                        int k = 0;
                        if (S == 1)
                            for (; k + 8 <= n; k += 8)
                                for (int q = 0; q < 8; q++) acc[q] += dd[k + q] * p[k + q];
                        for (; k < n; k++) acc[k & 7] += dd[k] * p[k * S];
                        if (dp && S == 1)
                            for (k = 0; k < n; k++) dp[k] += wv * dd[k];
                        else if (dp)
                            for (k = 0; k < n; k++) dp[k * S] += wv * dd[k];
                    }
                    dwc[u * K + v] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                                      ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                }
        }
    }
}

static heed_status check_ready(const heed_conv2d *l, const heed_tensor *x, const char *fn) {
    if (!l->w)
        return heed_fail(HEED_ERR_ARG, "%s %s: parameters not allocated (call heed_params_alloc)",
                         fn, l->base.name);
    if (x->c != l->base.in_c || x->h != l->base.in_h || x->w != l->base.in_w)
        return heed_fail(HEED_ERR_SHAPE, "%s %s: input is (%d, %d, %d, %d), expected (N, %d, %d, %d)",
                         fn, l->base.name, x->n, x->c, x->h, x->w, l->base.in_c, l->base.in_h,
                         l->base.in_w);
    return HEED_OK;
}

/* The work buffers for passes of nb images. */
static heed_status get_buffers(heed_conv2d *l, const geom *g, int nb, int need_col, float **col,
                               float **tmp) {
    *col = *tmp = NULL;
    size_t cols = (size_t)nb * g->L;
    if (need_col) HEED_TRY(heed_scratch_get(&l->col, (size_t)g->R * cols, col));
    if (nb > 1) HEED_TRY(heed_scratch_get(&l->tmp, (size_t)g->OCg * cols, tmp));
    return HEED_OK;
}

heed_status heed_conv2d_forward(heed_conv2d *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_ready(l, x, "heed_conv2d_forward"));
    if (y == x || (y->data && y->data == x->data))
        return heed_fail(HEED_ERR_ARG, "heed_conv2d_forward %s: y must not alias x", l->base.name);
    geom g = geometry(l, x->n);
    HEED_TRY(heed_tensor_ensure(y, g.N, g.OC, g.OH, g.OW));
    if (is_depthwise(&g)) {
        depthwise_forward(l, &g, x->data, y->data);
        return HEED_OK;
    }
    const int pointwise = is_pointwise(&g), nb = images_per_pass(&g);
    float *col, *tmp;
    HEED_TRY(get_buffers(l, &g, nb, !pointwise || nb > 1, &col, &tmp));
    for (int n0 = 0; n0 < g.N; n0 += nb) {
        const int nbc = g.N - n0 < nb ? g.N - n0 : nb, cols = nbc * g.L;
        for (int gi = 0; gi < g.G; gi++) {
            const float *B = col;
            if (pointwise && nbc == 1)
                B = x->data + ((size_t)n0 * g.IC + (size_t)gi * g.ICg) * g.L;
            else if (pointwise)
                reorder(GATHER, x->data, g.IC, gi * g.ICg, g.ICg, n0, nbc, g.L, col, NULL);
            else
                im2col(&g, x->data, n0, nbc, gi * g.ICg, col, cols);
            const float *A = l->w + (size_t)gi * g.OCg * g.R;
            const float *b = l->b ? l->b + (size_t)gi * g.OCg : NULL;
            if (nbc == 1) {
                float *C = y->data + ((size_t)n0 * g.OC + (size_t)gi * g.OCg) * g.L;
                HEED_TRY(heed_gemm(0, 0, g.OCg, g.L, g.R, 1.0f, A, g.R, B, cols, 0.0f, C, g.L));
                if (b) add_bias_rows(C, b, g.OCg, g.L);
            } else {
                HEED_TRY(heed_gemm(0, 0, g.OCg, cols, g.R, 1.0f, A, g.R, B, cols, 0.0f, tmp, cols));
                reorder(SCATTER, y->data, g.OC, gi * g.OCg, g.OCg, n0, nbc, g.L, tmp, b);
            }
        }
    }
    return HEED_OK;
}

static void sum_rows(float *db, const float *m, int rows, int cols, int ld) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *p = m + (size_t)r * ld;
        float s = 0.0f;
        for (int i = 0; i < cols; i++) s += p[i];
        db[r] += s;
    }
}

heed_status heed_conv2d_backward(heed_conv2d *l, const heed_tensor *x, const heed_tensor *dy,
                                 heed_tensor *dx) {
    HEED_TRY(check_ready(l, x, "heed_conv2d_backward"));
    geom g = geometry(l, x->n);
    if (dy->n != g.N || dy->c != g.OC || dy->h != g.OH || dy->w != g.OW)
        return heed_fail(HEED_ERR_SHAPE,
                         "heed_conv2d_backward %s: dy is (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                         l->base.name, dy->n, dy->c, dy->h, dy->w, g.N, g.OC, g.OH, g.OW);
    if (dx && !heed_tensor_same_shape(dx, x))
        return heed_fail(HEED_ERR_SHAPE,
                         "heed_conv2d_backward %s: dx is (%d, %d, %d, %d), x is (%d, %d, %d, %d)",
                         l->base.name, dx->n, dx->c, dx->h, dx->w, x->n, x->c, x->h, x->w);
    float *dxd = dx ? dx->data : NULL;
    if (is_depthwise(&g)) {
        depthwise_backward(l, &g, x->data, dy->data, dxd);
        return HEED_OK;
    }
    const int pointwise = is_pointwise(&g), nb = images_per_pass(&g);
    float *col, *tmp;
    HEED_TRY(get_buffers(l, &g, nb, !pointwise || nb > 1, &col, &tmp));
    for (int n0 = 0; n0 < g.N; n0 += nb) {
        const int nbc = g.N - n0 < nb ? g.N - n0 : nb, cols = nbc * g.L;
        for (int gi = 0; gi < g.G; gi++) {
            /* dY_g as an (OCg, cols) matrix. */
            const float *dY = tmp;
            if (nbc == 1)
                dY = dy->data + ((size_t)n0 * g.OC + (size_t)gi * g.OCg) * g.L;
            else
                reorder(GATHER, dy->data, g.OC, gi * g.OCg, g.OCg, n0, nbc, g.L, tmp, NULL);
            if (l->db) sum_rows(l->db + (size_t)gi * g.OCg, dY, g.OCg, cols, cols);

            const float *B = col;
            float *xin = x->data + ((size_t)n0 * g.IC + (size_t)gi * g.ICg) * g.L;
            if (pointwise && nbc == 1)
                B = xin;
            else if (pointwise)
                reorder(GATHER, x->data, g.IC, gi * g.ICg, g.ICg, n0, nbc, g.L, col, NULL);
            else
                im2col(&g, x->data, n0, nbc, gi * g.ICg, col, cols);
            const float *A = l->w + (size_t)gi * g.OCg * g.R;
            float *dW = l->dw + (size_t)gi * g.OCg * g.R;
            HEED_TRY(heed_gemm(0, 1, g.OCg, g.R, cols, 1.0f, dY, cols, B, cols, 1.0f, dW, g.R));
            if (!dxd) continue;

            if (pointwise && nbc == 1) {
                float *dxin = dxd + ((size_t)n0 * g.IC + (size_t)gi * g.ICg) * g.L;
                HEED_TRY(heed_gemm(1, 0, g.R, cols, g.OCg, 1.0f, A, g.R, dY, cols, 1.0f, dxin, cols));
                continue;
            }
            /* The columns are spent: their gradient reuses the buffer. */
            HEED_TRY(heed_gemm(1, 0, g.R, cols, g.OCg, 1.0f, A, g.R, dY, cols, 0.0f, col, cols));
            if (pointwise)
                reorder(SCATTER_ADD, dxd, g.IC, gi * g.ICg, g.ICg, n0, nbc, g.L, col, NULL);
            else
                col2im(&g, col, cols, n0, nbc, gi * g.ICg, dxd);
        }
    }
    return HEED_OK;
}

heed_status heed_conv2d_fold_bn(heed_conv2d *l, const float *gamma, const float *beta,
                                const float *mean, const float *var, float eps) {
    const int OC = l->cfg.out_c;
    const size_t per_out = (size_t)(l->cfg.in_c / l->cfg.groups) * l->cfg.k * l->cfg.k;
    if (!l->w)
        return heed_fail(HEED_ERR_ARG, "heed_conv2d_fold_bn %s: parameters not allocated",
                         l->base.name);
    if (!mean || !var)
        return heed_fail(HEED_ERR_ARG, "heed_conv2d_fold_bn %s: mean and var are required",
                         l->base.name);
    for (int o = 0; o < OC; o++)
        if (!((double)var[o] + eps > 0.0))
            return heed_fail(HEED_ERR_ARG, "heed_conv2d_fold_bn %s: var[%d] + eps = %g is not positive",
                             l->base.name, o, (double)var[o] + eps);
    if (!l->b) {
        l->folded_b = heed_alloc((size_t)OC * sizeof(float));
        if (!l->folded_b)
            return heed_fail(HEED_ERR_NOMEM, "heed_conv2d_fold_bn %s: cannot allocate %d biases",
                             l->base.name, OC);
        memset(l->folded_b, 0, (size_t)OC * sizeof(float));
        l->b = l->folded_b;
    }
    for (int o = 0; o < OC; o++) {
        double scale = (gamma ? gamma[o] : 1.0) / sqrt((double)var[o] + eps);
        float *wo = l->w + (size_t)o * per_out;
        for (size_t i = 0; i < per_out; i++) wo[i] = (float)(wo[i] * scale);
        l->b[o] = (float)(((double)l->b[o] - mean[o]) * scale + (beta ? beta[o] : 0.0));
    }
    return HEED_OK;
}

static heed_status op_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_conv2d_forward((heed_conv2d *)l, x, y);
}

static heed_status op_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                               const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_conv2d_backward((heed_conv2d *)l, x, dy, dx);
}

static double op_flops(const heed_layer *base) {
    const heed_conv2d *l = (const heed_conv2d *)base;
    return 2.0 * l->cfg.out_c * base->out_h * base->out_w * (l->cfg.in_c / l->cfg.groups) *
           l->cfg.k * l->cfg.k;
}

static void op_destroy(heed_layer *base) {
    heed_conv2d *l = (heed_conv2d *)base;
    heed_scratch_free(&l->col);
    heed_scratch_free(&l->tmp);
    heed_free(l->folded_b);
    free(l);
}

static const heed_layer_ops conv2d_ops = {
    .type = "conv",
    .forward = op_forward,
    .backward = op_backward,
    .flops = op_flops,
    .destroy = op_destroy,
};

heed_status heed_conv2d_new(heed_conv2d **out, const heed_conv2d_cfg *cfg, const int in[3],
                            heed_params *p, const char *name) {
    *out = NULL;
    if (!name) name = "";
    heed_conv2d_cfg c = *cfg;
    if (c.stride == 0) c.stride = 1;
    if (c.dilation == 0) c.dilation = 1;
    if (c.groups == 0) c.groups = 1;
    if (!p) return heed_fail(HEED_ERR_ARG, "conv %s: no parameter store given", name);
    if (c.in_c < 1 || c.out_c < 1 || c.k < 1 || c.stride < 1 || c.dilation < 1 || c.groups < 1 ||
        c.pad < 0)
        return heed_fail(HEED_ERR_ARG,
                         "conv %s: bad configuration in_c %d out_c %d k %d stride %d pad %d "
                         "dilation %d groups %d",
                         name, cfg->in_c, cfg->out_c, cfg->k, cfg->stride, cfg->pad,
                         cfg->dilation, cfg->groups);
    if (c.in_c % c.groups || c.out_c % c.groups)
        return heed_fail(HEED_ERR_ARG, "conv %s: in_c %d and out_c %d must be multiples of groups %d",
                         name, c.in_c, c.out_c, c.groups);
    if (in[0] != c.in_c || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_SHAPE, "conv %s: input (%d, %d, %d) does not match in_c %d",
                         name, in[0], in[1], in[2], c.in_c);
    int oh = heed_conv2d_out_size(in[1], c.k, c.stride, c.pad, c.dilation);
    int ow = heed_conv2d_out_size(in[2], c.k, c.stride, c.pad, c.dilation);
    if (oh < 1 || ow < 1)
        return heed_fail(HEED_ERR_SHAPE,
                         "conv %s: kernel %d (dilation %d, padding %d) does not fit input %dx%d",
                         name, c.k, c.dilation, c.pad, in[1], in[2]);
    size_t count;
    HEED_TRY(heed_shape_count(c.out_c, c.in_c / c.groups * c.k, c.k, 1, &count));
    HEED_TRY(heed_shape_count(c.out_c, oh, ow, 1, &count));

    char wname[96], bname[96];
    snprintf(wname, sizeof wname, "%s.weight", name);
    snprintf(bname, sizeof bname, "%s.bias", name);
    /* Checked up front so that a failure cannot leave the weight registered
     * with slots in a layer that is then freed. */
    if (heed_params_find(p, wname) || (c.bias && heed_params_find(p, bname)))
        return heed_fail(HEED_ERR_ARG, "conv %s: parameters registered twice (duplicate layer name?)",
                         name);

    heed_conv2d *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "conv %s: cannot allocate the layer", name);
    heed_layer_init(&l->base, &conv2d_ops, name, in, c.out_c, oh, ow);
    l->cfg = c;
    const int fan_in = c.in_c / c.groups * c.k * c.k;
    heed_status s = heed_params_add(p, wname, 4, (int[]){c.out_c, c.in_c / c.groups, c.k, c.k},
                                    HEED_INIT_HE_NORMAL, fan_in, HEED_PARAM_DECAY, &l->w, &l->dw);
    if (s == HEED_OK && c.bias) {
        s = heed_params_add(p, bname, 1, (int[]){c.out_c}, HEED_INIT_UNIFORM, fan_in, 0, &l->b,
                            &l->db);
        if (s != HEED_OK) p->count--; /* forget the weight just added */
    }
    if (s != HEED_OK) {
        free(l);
        return s;
    }
    *out = l;
    return HEED_OK;
}
