/* conv2d.c -- 2-D convolution, forward and backward, on heed_gemm.
 *
 * Dimensions: N images, IC/OC input/output channels, H x W input, OH x OW
 * output, K kernel side, S stride, P padding, D dilation, G groups,
 * ICg = IC/G, OCg = OC/G, R = ICg*K*K, L = OH*OW.
 *
 * Forward, per group g, with the im2col matrix
 *   col[(c,u,v), (n,i,j)] = x[n, g*ICg + c, i*S - P + u*D, j*S - P + v*D]   (0 outside)
 * of shape (R, NB*L) for a pass over NB images:
 *   Y_g (OCg, NB*L) = W_g (OCg, R) x col,      y = post(Y_g + b)
 * where post is the optional per-channel epilogue y = act(scale*y + shift)
 * that an inference-mode batch norm and relu fold into (forward_fused).
 * Backward, with dY_g the matching (OCg, NB*L) slice of dy:
 *   dW_g += dY_g x col^T,   db += sum over (n,i,j) of dy,
 *   dx   += the transposed convolution of dy.
 * With stride 1 the transposed convolution is itself a convolution: of dy,
 * padded by P' = D(K-1) - P, with the kernel flipped and its channel axes
 * swapped, Wt[c, o, u, v] = W[o, c, K-1-u, K-1-v]. It runs as a forward
 * pass (im2col of dy, then a product with K = OCg*K*K that adds straight
 * into dx), which is faster than the general route: dcol = W_g^T x dY_g
 * (a product with only OCg terms per entry), then col2im adding each
 * column entry back to the input pixel it came from.
 *
 * Special cases: a 1x1 kernel with stride 1 and no padding needs no im2col
 * (col is x itself, viewed (ICg, L)); a convolution whose groups each map
 * few channels to few (ICg * OCg <= 4: depthwise, CBAM's 2 -> 1 spatial
 * filter) has too little work per pixel for a matrix product and runs as a
 * direct loop over kernel taps (conv2d_direct.c); the forward with up to 4
 * input channels per group (a first layer, ResNet's 7x7 stride-2 stem),
 * whose sums are too short for a matrix product, runs on padded phase
 * planes with its sums in registers (conv2d_few.c; the planes, which the
 * direct loops use at strides above 1, in conv2d_phase.c); and the forward of a
 * convolution with enough output columns (or a strided 1x1 one) runs its
 * products on K shifted copies of each input row phase that the kernel
 * reads instead of im2col's K*K copies, as does the backward of stride 1
 * (conv2d_shifted.c).
 *
 * Passes: one image at a time when its output is large, so that the output
 * is written in place (a very large image in bands of output columns, so
 * that its im2col columns stay in cache, each band starting at a whole
 * vector of columns: conv2d_impl.h); several images when it is small, so
 * that the matrix products are wide enough to run near full speed (their
 * outputs are then scattered from (OCg, NB*L) back to NCHW). With several
 * passes and several threads, forward passes run in parallel (each product
 * single-threaded); a single pass threads inside the product. Either way
 * every output is the same sum in the same order: results do not depend on
 * the thread count.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv2d_impl.h"
#include "max3s2_impl.h"
#include "wide.h"

typedef heed_conv_geom geom;
typedef heed_conv_tap tap;
typedef heed_conv_post post;

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

static int is_direct(const geom *g) { return g->ICg * g->OCg <= 4; }

/* dx as a convolution of dy (see the top of the file). */
static int dx_by_transposed(const geom *g) {
    return g->S == 1 && !is_pointwise(g) && g->P <= g->D * (g->K - 1);
}

/* Bands per image when one image's im2col matrix exceeds PASS_FLOATS
 * (forward; the bands' columns stay in cache). */
static int images_bands(const geom *g) {
    size_t rows = PASS_FLOATS / ((size_t)g->R * g->OW);
    const size_t min_rows = (PASS_COLUMNS + g->OW - 1) / g->OW;
    if (rows < min_rows) rows = min_rows;
    return rows >= (size_t)g->OH ? 1 : (int)((g->OH + rows - 1) / rows);
}

/* A 1x1 convolution reads each image in place and writes its product
 * straight to y once an image has this many positions (one panel of the
 * AVX-512 product): gathering images into a pass and scattering the
 * product back cost more than the narrower products save. 128 -> 128
 * channels at batch 64, one thread: 14x14 maps forward 2.9 -> 2.3 ms and
 * backward 3.2-3.5 -> 2.9; 7x7 forward 0.67-0.72 -> 0.55, backward 1.4-1.5
 * either way; 5x5 and smaller ran faster in passes. */
#define POINTWISE_IMAGE_COLUMNS 48

/* Images per pass. */
static int images_per_pass(const geom *g) {
    if (is_pointwise(g) && g->L >= POINTWISE_IMAGE_COLUMNS) return 1;
    size_t L = (size_t)g->L, R = (size_t)g->R;
    size_t nb = (PASS_COLUMNS + L - 1) / L;
    size_t cap = PASS_FLOATS / (R * L);
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

/* With stride 1 and OW == W (the usual "same" convolution) a tap's valid
 * region is one contiguous run in both its im2col row and the input plane:
 * entry t of the row reads plane entry t + off_h*W + off_w. Copying the
 * run whole, instead of row by row, saves a call per output row; the run's
 * entries that wrap around a row edge lie outside [jlo, jhi) and are
 * zeroed afterwards. */
static int runs_are_contiguous(const geom *g) { return g->S == 1 && g->OW == g->W; }

static void zero_outside_columns(const geom *g, const tap *t, float *row) {
    for (int i = t->ilo; i < t->ihi; i++) {
        float *r = row + (size_t)i * g->OW;
        for (int j = 0; j < t->jlo; j++) r[j] = 0.0f;
        for (int j = t->jhi; j < g->OW; j++) r[j] = 0.0f;
    }
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
        if (S == 1)
            memcpy(dst + t->jlo, src + t->jlo + t->off_w,
                   (size_t)(t->jhi - t->jlo) * sizeof(float));
        else
            for (int j = t->jlo; j < t->jhi; j++) dst[j] = src[j * S + t->off_w];
        for (int j = t->jhi; j < OW; j++) dst[j] = 0.0f;
    }
}

/* dxp (the input plane's gradient) += one tap's im2col row. No
 * contiguous-run shortcut as in im2col_row: runs are contiguous only at
 * stride 1 with OW == W, i.e. P = D(K-1)/2, and such a convolution takes
 * its input gradient as a transposed convolution (dx_by_transposed), never
 * through col2im. */
static void col2im_row(const geom *g, const tap *t, const float *row, float *dxp) {
    const int OW = g->OW, W = g->W, S = g->S;
    for (int i = t->ilo; i < t->ihi; i++) {
        const float *src = row + (size_t)i * OW;
        float *dst = dxp + (size_t)(i * S + t->off_h) * W;
        for (int j = t->jlo; j < t->jhi; j++) dst[j * S + t->off_w] += src[j];
    }
}

/* col (R, ldc): columns nl*L .. nl*L + L-1 hold image n0+nl, for channels
 * c0 .. c0+ICg-1 of x (which has g->IC channels per image). */
static void im2col(const geom *g, const float *x, int n0, int nb, int c0, float *col, int ldc) {
    const int K = g->K;
    const size_t HW = (size_t)g->H * g->W;
    PARALLEL_IF((size_t)g->R * ldc > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int nl = 0; nl < nb; nl++)
            for (int c = 0; c < g->ICg; c++) {
                const float *xp = x + ((size_t)(n0 + nl) * g->IC + c0 + c) * HW;
                for (int u = 0; u < K; u++)
                    for (int v = 0; v < K; v++) {
                        tap t = conv_tap_at(g, u, v);
                        float *row = col + (size_t)((c * K + u) * K + v) * ldc + (size_t)nl * g->L;
                        im2col_row(g, &t, xp, row);
                    }
            });
}

/* For stride S > 1 a tap reads every S-th column. Split once per image
 * into S column phases, ph[c, p, h, t] = x[c, h, t*S + p] (ceil(W/S)
 * columns each, 0 past the edge), those reads become contiguous runs. */
static int phase_width(const geom *g) { return (g->W + g->S - 1) / g->S; }

static size_t phase_size(const geom *g) {
    return g->S > 1 ? (size_t)g->ICg * g->S * g->H * phase_width(g) : 0;
}

/* One input row into its S phase rows (Wph entries each, Wph * S >= W). */
HEED_WIDE static void split_row(const float *restrict src, int W, int S, int Wph,
                                float *restrict dst, size_t phase_stride) {
    if (S == 2 && W % 2 == 0) { /* the usual case, written so that it vectorizes */
        float *restrict even = dst, *restrict odd = dst + phase_stride;
        for (int t = 0; t < W / 2; t++) even[t] = src[2 * t], odd[t] = src[2 * t + 1];
        return;
    }
    for (int p = 0; p < S; p++)
        for (int t = 0; t < Wph; t++)
            dst[p * phase_stride + t] = t * S + p < W ? src[t * S + p] : 0.0f;
}

static void split_phases(const geom *g, const float *x, int n, int c0, float *ph) {
    const int S = g->S, W = g->W, Wph = phase_width(g);
    const size_t phase_stride = (size_t)g->H * Wph;
    /* In parallel: done by one thread before the bands, it left the other
     * idle for 5% of ResNet-18's stem on two threads. */
    PARALLEL_IF((size_t)g->ICg * g->H * W > PAR_MIN,
                "omp parallel for collapse(2) schedule(static)",
        for (int c = 0; c < g->ICg; c++)
            for (int h = 0; h < g->H; h++)
                split_row(x + (((size_t)n * g->IC + c0 + c) * g->H + h) * W, W, S, Wph,
                          ph + (size_t)c * S * phase_stride + (size_t)h * Wph, phase_stride);
    );
}

/* im2col of output rows i0 .. i1-1 of one image: col (R, ldc) with
 * (i1 - i0)*OW columns, for a large image done in bands (forward only).
 * ph: the image's column phases (split_phases) when S > 1, else NULL. */
static void im2col_band(const geom *g, const float *x, const float *ph, int n, int c0, int i0,
                        int i1, float *col, int ldc) {
    const int K = g->K, OW = g->OW, W = g->W, S = g->S, Wph = phase_width(g);
    const size_t HW = (size_t)g->H * W;
    PARALLEL_IF((size_t)g->R * ldc > PAR_MIN, "omp parallel for schedule(static)",
        for (int c = 0; c < g->ICg; c++) {
            const float *xp = x + ((size_t)n * g->IC + c0 + c) * HW;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) {
                    const tap t = conv_tap_at(g, u, v);
                    /* Column j*S + off_w is phase `phase`, entry j + shift. */
                    const int phase = ((t.off_w % S) + S) % S, shift = (t.off_w - phase) / S;
                    float *row = col + (size_t)((c * K + u) * K + v) * ldc;
                    for (int i = i0; i < i1; i++) {
                        float *dst = row + (size_t)(i - i0) * OW;
                        if (i < t.ilo || i >= t.ihi) {
                            memset(dst, 0, (size_t)OW * sizeof(float));
                            continue;
                        }
                        const int h = i * S + t.off_h;
                        for (int j = 0; j < t.jlo; j++) dst[j] = 0.0f;
                        if (ph) {
                            const float *src =
                                ph + (((size_t)c * S + phase) * g->H + h) * Wph + shift;
                            memcpy(dst + t.jlo, src + t.jlo,
                                   (size_t)(t.jhi - t.jlo) * sizeof(float));
                        } else {
                            const float *src = xp + (size_t)h * W;
                            for (int j = t.jlo; j < t.jhi; j++) dst[j] = src[j * S + t.off_w];
                        }
                        for (int j = t.jhi; j < OW; j++) dst[j] = 0.0f;
                    }
                }
        });
}

/* dx += col2im(col): the transpose of im2col. Each (image, channel) plane
 * of dx is written by one thread only. */
static void col2im(const geom *g, float *col, int ldc, int n0, int nb, int c0, float *dx) {
    const int K = g->K;
    const size_t HW = (size_t)g->H * g->W;
    PARALLEL_IF((size_t)g->R * ldc > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int nl = 0; nl < nb; nl++)
            for (int c = 0; c < g->ICg; c++) {
                float *dxp = dx + ((size_t)(n0 + nl) * g->IC + c0 + c) * HW;
                for (int u = 0; u < K; u++)
                    for (int v = 0; v < K; v++) {
                        tap t = conv_tap_at(g, u, v);
                        float *row = col + (size_t)((c * K + u) * K + v) * ldc + (size_t)nl * g->L;
                        col2im_row(g, &t, row, dxp);
                    }
            });
}

/* ---- moving planes between NCHW and pass matrices ------------------------ */

/* mat (rows, nb*L) = planes r0 .. r0+rows-1 of images n0 .. n0+nb-1 of t
 * (which has `per_image` planes of L floats per image). */
static void gather(const float *t, int per_image, int r0, int rows, int n0, int nb, int L,
                   float *mat) {
    const size_t ld = (size_t)nb * L;
    PARALLEL_IF((size_t)rows * ld > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int nl = 0; nl < nb; nl++)
            for (int r = 0; r < rows; r++)
                memcpy(mat + (size_t)r * ld + (size_t)nl * L,
                       t + ((size_t)(n0 + nl) * per_image + r0 + r) * L, (size_t)L * sizeof(float));
    );
}

/* The reverse: planes = post(mat), or planes += mat (add, p unused). */
static void scatter(float *t, int per_image, int r0, int rows, int n0, int nb, int L,
                    const float *mat, const post *p, int add) {
    const size_t ld = (size_t)nb * L;
    PARALLEL_IF((size_t)rows * ld > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int nl = 0; nl < nb; nl++)
            for (int r = 0; r < rows; r++) {
                float *dst = t + ((size_t)(n0 + nl) * per_image + r0 + r) * L;
                const float *src = mat + (size_t)r * ld + (size_t)nl * L;
                if (add) {
                    for (int i = 0; i < L; i++) dst[i] += src[i];
                } else {
                    memcpy(dst, src, (size_t)L * sizeof(float));
                    heed_conv_post_rows(dst, 0, (size_t)L, r0 + r, 1, p);
                }
            });
}

/* ---- forward ------------------------------------------------------------- */

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

/* Zeroes columns n .. ld-1 of the R rows of col (ld apart): the columns a
 * padded product computes beyond the wanted ones (they only feed outputs
 * that are dropped, but must not hold NaNs or denormals). */
static void zero_padding(const geom *g, float *col, int n, int ld) {
    for (int r = 0; ld > n && r < g->R; r++)
        memset(col + (size_t)r * ld + n, 0, (size_t)(ld - n) * sizeof(float));
}

/* C (OCg, n), rows ldc apart, = post(A (OCg, R) x B (R, n)) for group gi,
 * computing padded columns (conv_product_columns) into tmp when B's rows
 * (ldb apart) hold them. */
static heed_status product(const geom *g, int gi, const float *A, const float *B, int ldb, int n,
                           float *C, int ldc, float *tmp, const post *p) {
    const int pc = tmp && conv_product_columns(g, n) <= ldb ? conv_product_columns(g, n) : n;
    conv_post_at at;
    heed_gemm_epilogue epi;
    HEED_TRY(conv_gemm_post(g->OCg, pc, g->R, A, g->R, B, ldb, 0.0f, pc == n ? C : tmp,
                            pc == n ? ldc : pc, conv_epilogue(p, gi * g->OCg, &at, &epi)));
    if (pc != n)
        for (int o = 0; o < g->OCg; o++)
            memcpy(C + (size_t)o * ldc, tmp + (size_t)o * pc, (size_t)n * sizeof(float));
    return HEED_OK;
}

/* Floats of im2col columns (with slack for a padded product's reads) and
 * of product for one band of an image cut into `bands`. */
static size_t band_col_floats(const geom *g, int bands) {
    const int rows = conv_band_span(g, conv_band_columns(g, bands));
    return (size_t)g->R * conv_product_columns(g, rows * g->OW) + CONV_VECTOR;
}

static size_t band_tmp_floats(const geom *g, int bands) {
    return (size_t)g->OCg * conv_product_columns(g, conv_band_columns(g, bands));
}

/* Output columns c0 .. c1-1 of image n, group gi (a band: conv2d_impl.h),
 * by im2col of the output rows they touch (ph: the image's column phases,
 * or NULL) into col and one product reading the band's columns of it. */
static heed_status band_product(const heed_conv2d *l, const geom *g, const float *x,
                                const float *ph, int n, int gi, int c0, int c1, float *col,
                                float *tmp, float *y, const post *p) {
    const int i0 = c0 / g->OW, i1 = (c1 + g->OW - 1) / g->OW, skip = c0 - i0 * g->OW;
    const int w = (i1 - i0) * g->OW, ld = conv_product_columns(g, w);
    im2col_band(g, x, ph, n, gi * g->ICg, i0, i1, col, ld);
    zero_padding(g, col, w, ld);
    /* A padded product reads up to 15 floats past the last row's band. */
    memset(col + (size_t)g->R * ld, 0, CONV_VECTOR * sizeof(float));
    const float *A = l->w + (size_t)gi * g->OCg * g->R;
    float *C = y + ((size_t)n * g->OC + (size_t)gi * g->OCg) * g->L + c0;
    return product(g, gi, A, col + skip, ld, c1 - c0, C, g->L, tmp, p);
}

/* One forward pass: images n0 .. n0+nbc-1, every group. For a single image
 * (nbc == 1, not 1x1) the im2col rows are laid out conv_product_columns apart
 * and tmp has room for the padded product. */
static heed_status forward_pass(const heed_conv2d *l, const geom *g, const float *x, float *y,
                                int n0, int nbc, float *col, float *tmp, const post *p) {
    const int pointwise = is_pointwise(g), cols = nbc * g->L;
    for (int gi = 0; gi < g->G; gi++) {
        const float *A = l->w + (size_t)gi * g->OCg * g->R;
        float *C = y + ((size_t)n0 * g->OC + (size_t)gi * g->OCg) * g->L;
        if (nbc == 1 && !pointwise && (size_t)g->R * g->L > PASS_FLOATS) {
            /* A large image: bands whose columns stay in cache. */
            const int bands = images_bands(g);
            float *ph = NULL;
            if (g->S > 1) {
                ph = col + band_col_floats(g, bands);
                split_phases(g, x, n0, gi * g->ICg, ph);
            }
            for (int b = 0; b < bands; b++)
                HEED_TRY(band_product(l, g, x, ph, n0, gi, conv_band_start(g, bands, b),
                                      conv_band_start(g, bands, b + 1), col, tmp, y, p));
            continue;
        }
        if (pointwise && nbc == 1) {
            const float *B = x + ((size_t)n0 * g->IC + (size_t)gi * g->ICg) * g->L;
            HEED_TRY(product(g, gi, A, B, cols, g->L, C, g->L, NULL, p));
            continue;
        }
        if (pointwise)
            gather(x, g->IC, gi * g->ICg, g->ICg, n0, nbc, g->L, col);
        else
            im2col(g, x, n0, nbc, gi * g->ICg, col,
                   nbc == 1 ? conv_product_columns(g, cols) : cols);
        if (nbc == 1) zero_padding(g, col, cols, conv_product_columns(g, cols));
        if (nbc == 1) {
            HEED_TRY(product(g, gi, A, col, conv_product_columns(g, cols), g->L, C, g->L, tmp, p));
        } else {
            HEED_TRY(conv_gemm(g->OCg, cols, g->R, A, g->R, col, cols, 0.0f, tmp, cols));
            scatter(y, g->OC, gi * g->OCg, g->OCg, n0, nbc, g->L, tmp, p, 0);
        }
    }
    return HEED_OK;
}

/* Large images (their im2col matrix over PASS_FLOATS), fewer than threads:
 * the bands of output columns run in parallel, each on one thread with its
 * own columns, instead of one band after another with threads inside
 * each product (ResNet-18's stem at batch 1 ran slower on 2 threads than
 * on 1 that way). A stride's phases, which every band of an image reads,
 * are split first. Bands change no sum (they start at whole vectors of
 * columns: conv2d_impl.h): results do not depend on the thread count. */
static heed_status forward_bands(heed_conv2d *l, const geom *g, const float *x, float *y, int T,
                                 const post *p, const char *fn) {
    const int bands = conv_balanced_bands(g->N * g->G, images_bands(g), T,
                                          (g->L + CONV_VECTOR - 1) / CONV_VECTOR);
    const size_t col_n = conv_slice(band_col_floats(g, bands), T);
    const size_t tmp_n = conv_slice(band_tmp_floats(g, bands), T);
    const size_t ph_n = phase_size(g);
    float *col, *tmp;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, col_n * T + ph_n * g->N * g->G, &col));
    HEED_TRY(heed_scratch_get(&conv_work(l)->tmp, tmp_n * T, &tmp));
    float *ph = col + col_n * T;
    for (int n = 0; ph_n && n < g->N; n++)
        for (int gi = 0; gi < g->G; gi++)
            split_phases(g, x, n, gi * g->ICg, ph + ((size_t)n * g->G + gi) * ph_n);
    const int items = g->N * g->G * bands;
    heed_status st = HEED_OK;
#pragma omp parallel for num_threads(T) schedule(static)
    for (int it = 0; it < items; it++) {
        const int t = conv_thread();
        const int n = it / (g->G * bands), gi = it / bands % g->G, b = it % bands;
        const int c0 = conv_band_start(g, bands, b), c1 = conv_band_start(g, bands, b + 1);
        if (c0 < c1)
            par_note(&st, band_product(l, g, x,
                                        ph_n ? ph + ((size_t)n * g->G + gi) * ph_n : NULL, n,
                                        gi, c0, c1, col + t * col_n, tmp + t * tmp_n, y, p));
    }
    return conv_workers_done(st, l, fn);
}

int heed_conv2d_can_pool(const heed_conv2d *l) {
    const geom g = geometry(l, 1);
    return !is_direct(&g) && heed_conv_few_fits(&g) && g.OW <= HEED_MAX3S2_MAX_WIDTH;
}

static heed_status forward(heed_conv2d *l, const heed_tensor *x, heed_tensor *y,
                           const float *scale, const float *shift, int act, int pool,
                           const char *fn) {
    HEED_TRY(check_ready(l, x, fn));
    if (y == x || (y->data && y->data == x->data))
        return heed_fail(HEED_ERR_ARG, "%s %s: y must not alias x", fn, l->base.name);
    if (pool && !heed_conv2d_can_pool(l))
        return heed_fail(HEED_ERR_ARG, "%s %s: cannot pool its own output (not a first layer)",
                         fn, l->base.name);
    geom g = geometry(l, x->n);
    if (pool)
        HEED_TRY(heed_tensor_ensure(y, g.N, g.OC, heed_conv_pooled_side(g.OH),
                                    heed_conv_pooled_side(g.OW)));
    else
        HEED_TRY(heed_tensor_ensure(y, g.N, g.OC, g.OH, g.OW));

    /* The epilogue: with scale or shift, c = scale * b + shift per channel. */
    post pst = {.a = scale, .c = l->b, .act = act};
    if (shift || (scale && l->b)) {
        float *c;
        HEED_TRY(heed_scratch_get(&l->post, (size_t)g.OC, &c));
        for (int o = 0; o < g.OC; o++)
            c[o] = (l->b ? l->b[o] : 0.0f) * (scale ? scale[o] : 1.0f) + (shift ? shift[o] : 0.0f);
        pst.c = c;
    }
    const post *p = pst.a || pst.c || pst.act ? &pst : NULL;

    if (is_direct(&g)) return heed_conv_direct_forward(l, &g, x->data, y->data, p);
    if (heed_conv_few_fits(&g)) return heed_conv_few_forward(l, &g, x->data, y->data, p, pool);
    if (heed_conv_use_shifted(&g)) return heed_conv_shifted_forward(l, &g, x->data, y->data, p, fn);
    if (heed_conv_use_rows(&g)) return heed_conv_rows_forward(l, &g, x->data, y->data, p);
    const int nb = images_per_pass(&g), passes = (g.N + nb - 1) / nb;
    const int tmax = conv_max_threads();
    if (nb == 1 && !is_pointwise(&g) && (size_t)g.R * g.L > PASS_FLOATS && g.N < tmax)
        return forward_bands(l, &g, x->data, y->data, tmax, p, fn);
    const int need_col = !is_pointwise(&g) || nb > 1;
    size_t col_n = need_col ? (size_t)g.R * nb * g.L : 0, tmp_n = 0;
    if (nb > 1) {
        tmp_n = (size_t)g.OCg * nb * g.L;
    } else if (!is_pointwise(&g)) {
        /* One image (maybe in bands): rows conv_product_columns long. */
        const int banded = col_n > PASS_FLOATS, bands = banded ? images_bands(&g) : 1;
        col_n = banded ? band_col_floats(&g, bands) + phase_size(&g)
                       : (size_t)g.R * conv_product_columns(&g, g.L);
        tmp_n = band_tmp_floats(&g, bands);
    }
    const int T = conv_pass_threads(passes, (size_t)g.OC * g.R * nb * g.L);
    col_n = conv_slice(col_n, T), tmp_n = conv_slice(tmp_n, T);
    float *col = NULL, *tmp = NULL;
    if (col_n) HEED_TRY(heed_scratch_get(&conv_work(l)->col, col_n * T, &col));
    if (tmp_n) HEED_TRY(heed_scratch_get(&conv_work(l)->tmp, tmp_n * T, &tmp));
    if (T == 1) {
        for (int n0 = 0; n0 < g.N; n0 += nb)
            HEED_TRY(forward_pass(l, &g, x->data, y->data, n0, g.N - n0 < nb ? g.N - n0 : nb, col,
                                  tmp, p));
        return HEED_OK;
    }
    heed_status st = HEED_OK;
#pragma omp parallel for num_threads(T) schedule(static)
    for (int pi = 0; pi < passes; pi++) {
        const int t = conv_thread();
        const int n0 = pi * nb, nbc = g.N - n0 < nb ? g.N - n0 : nb;
        par_note(&st, forward_pass(l, &g, x->data, y->data, n0, nbc,
                                    col ? col + t * col_n : NULL, tmp ? tmp + t * tmp_n : NULL,
                                    p));
    }
    return conv_workers_done(st, l, fn);
}

heed_status heed_conv2d_forward(heed_conv2d *l, const heed_tensor *x, heed_tensor *y) {
    return forward(l, x, y, NULL, NULL, 0, 0, "heed_conv2d_forward");
}

heed_status heed_conv2d_forward_fused(heed_conv2d *l, const heed_tensor *x, heed_tensor *y,
                                      const float *scale, const float *shift, int relu) {
    return forward(l, x, y, scale, shift, relu ? HEED_FUSE_RELU : 0, 0, "heed_conv2d_forward_fused");
}

/* ---- backward ------------------------------------------------------------ */

/* Wt per group (ICg, OCg*K*K): Wt[c, o, u, v] = W[o, c, K-1-u, K-1-v]. */
static void flip_weights(const heed_conv2d *l, const geom *g, float *wt) {
    const int K = g->K, KK = K * K;
    for (int gi = 0; gi < g->G; gi++)
        for (int o = 0; o < g->OCg; o++)
            for (int c = 0; c < g->ICg; c++) {
                const float *src = l->w + ((size_t)(gi * g->OCg + o) * g->ICg + c) * KK;
                float *dst = wt + (size_t)gi * g->ICg * g->OCg * KK + ((size_t)c * g->OCg + o) * KK;
                for (int i = 0; i < KK; i++) dst[KK - 1 - i] = src[i];
            }
}

/* One backward pass over images n0 .. n0+nbc-1, every group: dw (the
 * layer's gradient or a chunk's partial) += dY_g x col^T, and dx (+=, or
 * = when fresh: not on the col2im route). col and tmp are this thread's
 * buffers, wt the flipped kernel when by_t. */
static heed_status backward_pass(const heed_conv2d *l, const geom *g, const float *x,
                                 const float *dy, float *dxd, int fresh, int n0, int nbc, int by_t,
                                 const float *wt, float *col, float *tmp, float *dw_all) {
    const int pointwise = is_pointwise(g), cols = nbc * g->L;
    const float dx_beta = fresh ? 0.0f : 1.0f;
    const geom gt = conv_transposed(g);
    for (int gi = 0; gi < g->G; gi++) {
        /* dY_g as an (OCg, cols) matrix. */
        const float *dY = tmp;
        if (nbc == 1)
            dY = dy + ((size_t)n0 * g->OC + (size_t)gi * g->OCg) * g->L;
        else
            gather(dy, g->OC, gi * g->OCg, g->OCg, n0, nbc, g->L, tmp);

        const float *B = col;
        const float *xin = x + ((size_t)n0 * g->IC + (size_t)gi * g->ICg) * g->L;
        if (pointwise && nbc == 1)
            B = xin;
        else if (pointwise)
            gather(x, g->IC, gi * g->ICg, g->ICg, n0, nbc, g->L, col);
        else
            im2col(g, x, n0, nbc, gi * g->ICg, col, cols);
        const float *A = l->w + (size_t)gi * g->OCg * g->R;
        float *dW = dw_all + (size_t)gi * g->OCg * g->R;
        HEED_TRY(heed_gemm(0, 1, g->OCg, g->R, cols, 1.0f, dY, cols, B, cols, 1.0f, dW, g->R));
        if (!dxd) continue;

        float *dxg = dxd + ((size_t)n0 * g->IC + (size_t)gi * g->ICg) * gt.L;
        if (pointwise && nbc == 1) {
            HEED_TRY(
                heed_gemm(1, 0, g->R, cols, g->OCg, 1.0f, A, g->R, dY, cols, dx_beta, dxg, cols));
            continue;
        }
        if (by_t) {
            /* The columns and dY are spent: the buffers take dy's im2col
             * and, for several images, the product. */
            const int cols_t = nbc * gt.L;
            const float *At = wt + (size_t)gi * g->ICg * gt.R;
            im2col(&gt, dy, n0, nbc, gi * g->OCg, col, cols_t);
            if (nbc == 1) {
                HEED_TRY(conv_gemm(g->ICg, cols_t, gt.R, At, gt.R, col, cols_t, dx_beta, dxg,
                                   gt.L));
            } else {
                HEED_TRY(conv_gemm(g->ICg, cols_t, gt.R, At, gt.R, col, cols_t, 0.0f, tmp,
                                   cols_t));
                scatter(dxd, g->IC, gi * g->ICg, g->ICg, n0, nbc, gt.L, tmp, NULL, !fresh);
            }
            continue;
        }
        /* The columns are spent: their gradient reuses the buffer. */
        HEED_TRY(heed_gemm(1, 0, g->R, cols, g->OCg, 1.0f, A, g->R, dY, cols, 0.0f, col, cols));
        if (pointwise)
            scatter(dxd, g->IC, gi * g->ICg, g->ICg, n0, nbc, g->L, col, NULL, !fresh);
        else
            col2im(g, col, cols, n0, nbc, gi * g->ICg, dxd);
    }
    return HEED_OK;
}

/* Passes (of images_per_pass images) are independent but for the weight
 * gradient: with several chunks of passes, threads take chunks, each with
 * its own partial, added in chunk order (conv_backward_chunks). One chunk
 * adds straight into dW and threads inside the products. */
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
    if (is_direct(&g)) return heed_conv_direct_backward(l, &g, x->data, dy->data, dxd, l->base.dx_fresh);
    /* The shifted copies' backward is stride 1's only (conv2d_shifted.c):
     * a strided forward that took them comes back through im2col, also
     * when no dx is wanted. */
    if (heed_conv_use_shifted(&g) && g.S == 1 && (!dxd || dx_by_transposed(&g)))
        return heed_conv_shifted_backward(l, &g, x->data, dy->data, dxd, l->base.dx_fresh);
    const int pointwise = is_pointwise(&g), nb = images_per_pass(&g);
    const int by_t = dxd && dx_by_transposed(&g);
    /* A fresh dx (layer.h) is written where each of its values comes from
     * one product or copy; col2im adds overlapping taps into it, so there
     * it is zeroed first and added to. */
    const int fresh = dxd && l->base.dx_fresh, write_dx = fresh && (pointwise || by_t);
    if (fresh && !write_dx) heed_tensor_zero(dx);
    const geom gt = conv_transposed(&g);
    size_t col_n = !pointwise || nb > 1 ? (size_t)g.R * nb * g.L : 0;
    size_t tmp_n = nb > 1 ? (size_t)g.OCg * nb * g.L : 0;
    if (by_t && (size_t)gt.R * nb * gt.L > col_n) col_n = (size_t)gt.R * nb * gt.L;
    if (by_t && nb > 1 && (size_t)g.ICg * nb * gt.L > tmp_n) tmp_n = (size_t)g.ICg * nb * gt.L;
    const int passes = (g.N + nb - 1) / nb, chunks = conv_backward_chunks(&g, passes);
    const size_t nw = (size_t)g.OC * g.R;
    const size_t pass_work = (size_t)g.OC * g.R * nb * g.L * (dxd ? 2 : 1);
    const int T = chunks > 1 ? conv_pass_threads(chunks, pass_work * (passes / chunks)) : 1;
    col_n = conv_slice(col_n, T), tmp_n = conv_slice(tmp_n, T);
    float *col = NULL, *tmp = NULL, *wt = NULL, *partial = NULL;
    if (col_n) HEED_TRY(heed_scratch_get(&conv_work(l)->col, col_n * T, &col));
    const size_t ps = conv_slice(nw, T); /* floats from one chunk's partial to the next */
    if (tmp_n || chunks > 1)
        HEED_TRY(heed_scratch_get(&conv_work(l)->tmp, tmp_n * T + ps * chunks, &tmp));
    if (by_t) {
        HEED_TRY(heed_scratch_get(&l->wt, (size_t)g.OC * g.R, &wt));
        l->wt_forward = 0;
        flip_weights(l, &g, wt);
    }
    conv_add_bias_grad(l, &g, dy->data);
    if (chunks == 1) {
        for (int n0 = 0; n0 < g.N; n0 += nb)
            HEED_TRY(backward_pass(l, &g, x->data, dy->data, dxd, write_dx, n0,
                                   g.N - n0 < nb ? g.N - n0 : nb, by_t, wt, col, tmp, l->dw));
        return HEED_OK;
    }
    partial = tmp + tmp_n * T;
    conv_zero_partials(partial, nw, ps, chunks);
    heed_status st = HEED_OK;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int ch = 0; ch < chunks; ch++) {
        const int t = conv_thread();
        int p0, p1;
        conv_chunk_range(passes, chunks, ch, &p0, &p1);
        for (int pi = p0; pi < p1; pi++) {
            const int n0 = pi * nb;
            const heed_status s = backward_pass(
                l, &g, x->data, dy->data, dxd, write_dx, n0, g.N - n0 < nb ? g.N - n0 : nb,
                by_t, wt, col ? col + t * col_n : NULL, tmp + t * tmp_n, partial + ch * ps);
            if (par_note(&st, s) != HEED_OK) break;
        }
    }
    HEED_TRY(conv_workers_done(st, l, "heed_conv2d_backward"));
    conv_add_partials(l->dw, partial, nw, ps, chunks);
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

static heed_status op_forward(heed_layer *base, const heed_tensor *x, heed_tensor *y) {
    heed_conv2d *l = (heed_conv2d *)base;
    return forward(l, x, y, l->fuse_scale, l->fuse_shift, l->fuse_act, l->fuse_pool,
                   "heed_conv2d_forward");
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
    heed_work_free(&l->own_work);
    heed_scratch_free(&l->wt);
    heed_scratch_free(&l->wt_src);
    heed_scratch_free(&l->post);
    heed_free(l->folded_b);
    free(l);
}

static void op_share_work(heed_layer *base, heed_work *w, int depth) {
    (void)depth;
    ((heed_conv2d *)base)->work = w;
}

static const heed_layer_ops conv2d_ops = {
    .type = "conv",
    .writes_fresh_dx = 1,
    .forward = op_forward,
    .backward = op_backward,
    .flops = op_flops,
    .destroy = op_destroy,
    .share_work = op_share_work,
};

heed_status heed_conv2d_new(heed_conv2d **out, const heed_conv2d_cfg *cfg, const int in[3],
                            heed_params *p, const char *name) {
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("conv", name));
    if (!cfg) return heed_fail(HEED_ERR_ARG, "conv %s: no configuration given", name);
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
    HEED_TRY(heed_shape_count(c.out_c, c.in_c / c.groups, c.k, c.k, &count));
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
