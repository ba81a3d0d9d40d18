/* pool2d.c -- windowed, global and channel pooling, forward and backward.
 *
 * Dimensions: N images, C channels, H x W input, OH x OW output, K window
 * side, S stride, P padding. Window (i, j) covers input rows
 * i*S - P .. i*S - P + K-1 and columns likewise, clipped to the input.
 *
 * Max:      y[n,c,i,j] = max over the window of x;  dx[argmax] += dy[n,c,i,j]
 *           (argmax the first maximum in row-major order)
 * Average:  y[n,c,i,j] = sum over the window of x / Q;  dx[window] += dy / Q
 *           (Q = K*K counting padding, or the input pixels in the window)
 * Global:   y[n,c] = mean or max of x[n,c,:,:];
 *           mean: dx += dy / (H*W);  max: dx += dy / T at the T tied maxima
 * Channel:  y[n,0,h,w] = max over c of x[n,c,h,w], y[n,1,h,w] = mean over c;
 *           dx[n,c,h,w] += dy[n,1,h,w] / C + (x is a maximum) dy[n,0,h,w] / T
 *
 * Each backward pass finds maxima again in x instead of caching indices:
 * the comparisons cost little next to the memory traffic, and the layers
 * stay free of state between forward and backward.
 *
 * Speed: every inner loop is written to vectorize (selects instead of
 * branches, operands loaded before a select, maxima with NaNs noted on the
 * side); the common 2 x 2 / stride 2 window has loops of its own; global
 * average and maximum come in one pass for CBAM; threads split (n, c)
 * planes only above PAR_MIN values.
 */
#include "pool2d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "max3s2_impl.h"
#include "parallel.h"
#include "wide.h"

/* Positions per block in channel pooling: per-position maxima and counts
 * stay in a small local array while the loops stream over channels. */
#define CP_BLOCK 256

/* PyTorch's rule (max3s2_impl.h): NaN is a maximum, ties keep the first. */
static inline int beats(float v, float best) { return heed_max_beats(v, best); }

/* Output columns per block in the window loops: the block's running
 * maxima, indices or sums stay in small local arrays. */
#define JB 64

/* The output columns [*lo, *hi) whose window column kw, at input column
 * j*S - P + kw, falls inside [0, W). A window never reaches more than P
 * columns past an edge, so the loops step only a few times. */
static void column_range(const heed_pool2d *l, int kw, int *lo, int *hi) {
    const int S = l->cfg.stride, off = kw - l->cfg.pad, W = l->base.in_w;
    int a = 0, b = l->base.out_w;
    while (a < b && a * S + off < 0) a++;
    while (b > a && (b - 1) * S + off >= W) b--;
    *lo = a, *hi = b;
}

/* Output row i's window rows, clipped to the input: [*h0, *h1); *padded
 * counts the rows inside the padded input (PyTorch's divisor). */
static void window_rows(const heed_pool2d *l, int i, int *h0, int *h1, int *padded) {
    const int K = l->cfg.k, P = l->cfg.pad, H = l->base.in_h;
    int hs = i * l->cfg.stride - P, he = hs + K < H + P ? hs + K : H + P;
    *padded = he - hs;
    *h0 = hs < 0 ? 0 : hs, *h1 = he < H ? he : H;
}

/* The divisor of average pooling for window (i, j) with `rows` counted
 * rows (padded or not as configured). */
static float divisor(const heed_pool2d *l, int rows, int j) {
    const int K = l->cfg.k, P = l->cfg.pad, W = l->base.in_w;
    int ws = j * l->cfg.stride - P, we = ws + K < W + P ? ws + K : W + P;
    int cols = l->cfg.exclude_pad ? (we < W ? we : W) - (ws < 0 ? 0 : ws) : we - ws;
    return (float)(rows * cols);
}

/* Runs BODY, with output column j and input index idx (within the plane)
 * in scope, for every tap inside the input of the windows of output
 * columns [j0, j1), over window rows [h0, h1), in row-major window order.
 * The innermost loop runs over j, so that BODY vectorizes across windows. */
#define FOR_EACH_TAP(l, S, h0, h1, j0, j1, BODY)                                      \
    for (int h_ = (h0); h_ < (h1); h_++)                                              \
        for (int kw_ = 0; kw_ < (l)->cfg.k; kw_++) {                                  \
            int lo_, hi_;                                                             \
            column_range((l), kw_, &lo_, &hi_);                                       \
            if (lo_ < (j0)) lo_ = (j0);                                               \
            if (hi_ > (j1)) hi_ = (j1);                                               \
            const int base_ = h_ * (l)->base.in_w + kw_ - (l)->cfg.pad;               \
            for (int j = lo_; j < hi_; j++) {                                         \
                const int idx = base_ + j * (S);                                      \
                BODY                                                                  \
            }                                                                         \
        }

/* Calls fn(l, args..., S) with the stride as a constant for the common
 * strides 1 and 2, so that the inlined tap loops vectorize with
 * contiguous or fixed-pattern loads. */
#define WITH_STRIDE(l, fn, ...)                                                       \
    do {                                                                              \
        if ((l)->cfg.stride == 1)                                                     \
            fn(__VA_ARGS__, 1);                                                       \
        else if ((l)->cfg.stride == 2)                                                \
            fn(__VA_ARGS__, 2);                                                       \
        else                                                                          \
            fn(__VA_ARGS__, (l)->cfg.stride);                                         \
    } while (0)

static inline void max_plane_forward(const heed_pool2d *l, const float *xp, float *yp, const int S) {
    const int OW = l->base.out_w;
    for (int i = 0; i < l->base.out_h; i++) {
        int h0, h1, padded;
        window_rows(l, i, &h0, &h1, &padded);
        float *yr = yp + (size_t)i * OW;
        /* Padding is -inf: it never beats an input pixel, and every
         * window holds one. */
        for (int j = 0; j < OW; j++) yr[j] = -INFINITY;
        FOR_EACH_TAP(l, S, h0, h1, 0, OW, {
            float v = xp[idx];
            yr[j] = beats(v, yr[j]) ? v : yr[j];
        })
    }
}

static inline void max_plane_backward(const heed_pool2d *l, const float *xp, const float *dyp,
                                      float *dxp, const int S) {
    const int OW = l->base.out_w, P = l->cfg.pad, W = l->base.in_w;
    for (int i = 0; i < l->base.out_h; i++) {
        int h0, h1, padded;
        window_rows(l, i, &h0, &h1, &padded);
        for (int j0 = 0; j0 < OW; j0 += JB) {
            const int j1 = j0 + JB < OW ? j0 + JB : OW;
            float best[JB];
            int arg[JB];
            for (int j = j0; j < j1; j++) {
                int ws = j * S - P;
                /* The first pixel, as in PyTorch, for a window of -infs. */
                best[j - j0] = -INFINITY, arg[j - j0] = h0 * W + (ws < 0 ? 0 : ws);
            }
            FOR_EACH_TAP(l, S, h0, h1, j0, j1, {
                float v = xp[idx];
                int take = beats(v, best[j - j0]);
                best[j - j0] = take ? v : best[j - j0];
                arg[j - j0] = take ? idx : arg[j - j0];
            })
            for (int j = j0; j < j1; j++) dxp[arg[j - j0]] += dyp[(size_t)i * OW + j];
        }
    }
}

static inline void avg_plane_forward(const heed_pool2d *l, const float *xp, float *yp, const int S) {
    const int OW = l->base.out_w;
    for (int i = 0; i < l->base.out_h; i++) {
        int h0, h1, padded;
        window_rows(l, i, &h0, &h1, &padded);
        const int rows = l->cfg.exclude_pad ? h1 - h0 : padded;
        float *yr = yp + (size_t)i * OW;
        for (int j = 0; j < OW; j++) yr[j] = 0.0f;
        FOR_EACH_TAP(l, S, h0, h1, 0, OW, { yr[j] += xp[idx]; })
        for (int j = 0; j < OW; j++) yr[j] /= divisor(l, rows, j);
    }
}

static inline void avg_plane_backward(const heed_pool2d *l, const float *dyp, float *dxp, const int S) {
    const int OW = l->base.out_w;
    for (int i = 0; i < l->base.out_h; i++) {
        int h0, h1, padded;
        window_rows(l, i, &h0, &h1, &padded);
        const int rows = l->cfg.exclude_pad ? h1 - h0 : padded;
        for (int j0 = 0; j0 < OW; j0 += JB) {
            const int j1 = j0 + JB < OW ? j0 + JB : OW;
            float g[JB];
            for (int j = j0; j < j1; j++) g[j - j0] = dyp[(size_t)i * OW + j] / divisor(l, rows, j);
            FOR_EACH_TAP(l, S, h0, h1, j0, j1, { dxp[idx] += g[j - j0]; })
        }
    }
}

/* The common 2 x 2 window with stride 2 and no padding (a network's
 * downsampling step), written out so that the loops vectorize: each output
 * reads its window's two pairs of neighbours. */
static int is_max2(const heed_pool2d *l) {
    return l->cfg.kind == HEED_POOL_MAX && l->cfg.k == 2 && l->cfg.stride == 2 && l->cfg.pad == 0;
}

/* The 2 x 2 loops take four output columns at a time in GCC's and clang's
 * vector extension (SSE here, NEON on ARM), and a row's last four again
 * from OW - 4 where OW is not a multiple of four, so that no column is
 * left to a scalar tail: compiled as one, the tail's selects became
 * branches, which mispredict on random data, and with rows of 7 outputs
 * (W1's second pool) three columns in seven went through them: as a
 * one-layer network at batch 64 on one thread that pool took 0.52 ms,
 * against 0.26 for W1's first pool, which has twice the values. Rows
 * narrower than four outputs go one column at a time. */
typedef float pool_v4 __attribute__((vector_size(16)));
typedef int pool_i4 __attribute__((vector_size(16)));

static inline pool_v4 v4_load(const float *p) {
    pool_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4_store(float *p, pool_v4 v) { memcpy(p, &v, sizeof v); }

/* Lanes of t set: a's; else b's. */
static inline pool_v4 v4_select(pool_i4 t, pool_v4 a, pool_v4 b) {
    return (pool_v4)(((pool_i4)a & t) | ((pool_i4)b & ~t));
}

/* beats() lane by lane. */
static inline pool_i4 v4_beats(pool_v4 v, pool_v4 best) { return (v > best) | (v != v); }

/* The pairs (p[2j], p[2j+1]) for j = 0..3: their first and second values. */
static inline void v4_pairs(const float *p, pool_v4 *first, pool_v4 *second) {
    const pool_v4 lo = v4_load(p), hi = v4_load(p + 4);
    *first = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    *second = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
}

/* The values of the four windows from output column j, rows r0 and r1
 * of the input: w[0], w[1] on the upper row, w[2], w[3] below. */
static inline void v4_windows(const float *r0, const float *r1, int j, pool_v4 w[4]) {
    v4_pairs(r0 + 2 * j, &w[0], &w[1]);
    v4_pairs(r1 + 2 * j, &w[2], &w[3]);
}

/* The first column of the block of four starting at or after j0: OW - 4
 * for the last block of a row whose width is not a multiple of four. */
static inline int block_start(int j0, int OW) { return j0 + 4 <= OW ? j0 : OW - 4; }

static void max2_plane_forward(const heed_pool2d *l, const float *restrict xp, float *restrict yp) {
    const int W = l->base.in_w, OW = l->base.out_w;
    for (int i = 0; i < l->base.out_h; i++) {
        const float *r0 = xp + (size_t)2 * i * W, *r1 = r0 + W;
        float *yr = yp + (size_t)i * OW;
        if (OW < 4) {
            for (int j = 0; j < OW; j++) {
                float m = r0[2 * j], v = r0[2 * j + 1];
                m = beats(v, m) ? v : m;
                v = r1[2 * j], m = beats(v, m) ? v : m;
                v = r1[2 * j + 1], m = beats(v, m) ? v : m;
                yr[j] = m;
            }
            continue;
        }
        for (int j0 = 0; j0 < OW; j0 += 4) {
            const int j = block_start(j0, OW);
            pool_v4 w[4];
            v4_windows(r0, r1, j, w);
            pool_v4 m = w[0];
            for (int k = 1; k < 4; k++) m = v4_select(v4_beats(w[k], m), w[k], m);
            v4_store(yr + j, m);
        }
    }
}

/* The 3 x 3 window with stride 2 and padding 1 (ResNet's stem), forward,
 * a row at a time (max3s2_impl.h). Backward keeps the general loops,
 * which also pick the first maximum. */
int heed_pool2d_is_max3s2(const heed_pool2d *l) {
    return l->cfg.kind == HEED_POOL_MAX && l->cfg.k == 3 && l->cfg.stride == 2 &&
           l->cfg.pad == 1 && l->base.in_w <= HEED_MAX3S2_MAX_WIDTH;
}

HEED_WIDE static void max3s2_plane_forward(const heed_pool2d *l, const float *restrict xp,
                                 float *restrict yp) {
    const int H = l->base.in_h, W = l->base.in_w, OW = l->base.out_w;
    float col[HEED_MAX3S2_MAX_WIDTH]; /* one output row's column maxima, in_w wide */
    for (int i = 0; i < l->base.out_h; i++) {
        const int r0 = 2 * i - 1 < 0 ? 0 : 2 * i - 1, r1 = 2 * i + 2 < H ? 2 * i + 2 : H;
        heed_max3s2_row(xp + (size_t)r0 * W, (size_t)W, r1 - r0, W, OW, col, yp + (size_t)i * OW);
    }
}

/* One window's gradient, for rows narrower than four outputs. */
static inline __attribute__((always_inline)) void max2_window_backward(
    const float *r0, const float *r1, float gj, float *d0, float *d1, const int fresh) {
    const float a = r0[0], b = r0[1], c = r1[0], d = r1[1];
    float m = a, ga = gj, gb = 0.0f, gc = 0.0f, gd = 0.0f;
    const int tb = beats(b, m);
    m = tb ? b : m, gb = tb ? gj : 0.0f, ga = tb ? 0.0f : ga;
    const int tc = beats(c, m);
    m = tc ? c : m, gc = tc ? gj : 0.0f, ga = tc ? 0.0f : ga, gb = tc ? 0.0f : gb;
    const int td = beats(d, m);
    gd = td ? gj : 0.0f, ga = td ? 0.0f : ga, gb = td ? 0.0f : gb, gc = td ? 0.0f : gc;
    if (fresh) {
        d0[0] = ga, d0[1] = gb, d1[0] = gc, d1[1] = gd;
    } else {
        d0[0] += ga, d0[1] += gb, d1[0] += gc, d1[1] += gd;
    }
}

/* Four windows' gradients on one row of dx, first and second of each pair
 * (eight floats from d), written (fresh) or added; adding, the lanes in
 * keep (windows the block before has done) are stored back unchanged. */
static inline __attribute__((always_inline)) void v4_put_pairs(float *d, pool_v4 first,
                                                               pool_v4 second, const int fresh,
                                                               pool_i4 keep) {
    const pool_v4 lo = __builtin_shufflevector(first, second, 0, 4, 1, 5);
    const pool_v4 hi = __builtin_shufflevector(first, second, 2, 6, 3, 7);
    if (fresh) {
        v4_store(d, lo), v4_store(d + 4, hi);
        return;
    }
    const pool_v4 old_lo = v4_load(d), old_hi = v4_load(d + 4);
    v4_store(d, v4_select(__builtin_shufflevector(keep, keep, 0, 0, 1, 1), old_lo, old_lo + lo));
    v4_store(d + 4, v4_select(__builtin_shufflevector(keep, keep, 2, 2, 3, 3), old_hi, old_hi + hi));
}

static inline __attribute__((always_inline)) void max2_plane_backward_impl(
    const heed_pool2d *l, const float *restrict xp, const float *restrict dyp,
    float *restrict dxp, const int fresh) {
    const int W = l->base.in_w, OW = l->base.out_w;
    const pool_v4 zero = {0.0f, 0.0f, 0.0f, 0.0f};
    const pool_i4 lane = {0, 1, 2, 3};
    for (int i = 0; i < l->base.out_h; i++) {
        const float *r0 = xp + (size_t)2 * i * W, *r1 = r0 + W;
        float *d0 = dxp + (size_t)2 * i * W, *d1 = d0 + W;
        const float *g = dyp + (size_t)i * OW;
        if (OW < 4) {
            for (int j = 0; j < OW; j++)
                max2_window_backward(r0 + 2 * j, r1 + 2 * j, g[j], d0 + 2 * j, d1 + 2 * j, fresh);
            continue;
        }
        for (int j0 = 0; j0 < OW; j0 += 4) {
            const int j = block_start(j0, OW);
            pool_v4 w[4];
            v4_windows(r0, r1, j, w);
            const pool_v4 gj = v4_load(g + j);
            pool_v4 m = w[0], ga = gj, gb = zero, gc = zero, gd = zero;
            pool_i4 t = v4_beats(w[1], m);
            m = v4_select(t, w[1], m), gb = v4_select(t, gj, zero), ga = v4_select(t, zero, ga);
            t = v4_beats(w[2], m);
            m = v4_select(t, w[2], m), gc = v4_select(t, gj, zero), ga = v4_select(t, zero, ga);
            gb = v4_select(t, zero, gb);
            t = v4_beats(w[3], m);
            gd = v4_select(t, gj, zero), ga = v4_select(t, zero, ga), gb = v4_select(t, zero, gb);
            gc = v4_select(t, zero, gc);
            const pool_i4 keep = lane + j < j0;
            v4_put_pairs(d0 + 2 * j, ga, gb, fresh, keep);
            v4_put_pairs(d1 + 2 * j, gc, gd, fresh, keep);
        }
    }
    if (fresh) {
        /* An odd last row or column belongs to no window. */
        const int H = l->base.in_h;
        if (H % 2) memset(dxp + (size_t)(H - 1) * W, 0, (size_t)W * sizeof(float));
        if (W % 2)
            for (int h = 0; h < 2 * l->base.out_h; h++) dxp[(size_t)h * W + W - 1] = 0.0f;
    }
}

/* The gradient goes to the first maximum of each window in row-major order
 * (a, b on the upper row, c, d below): each later pixel that beats the
 * maximum so far takes the whole gradient. Selects, not branches (one copy
 * that adds, one that writes a fresh dx). */
static void max2_plane_backward(const heed_pool2d *l, const float *xp, const float *dyp,
                                float *dxp, int fresh) {
    if (fresh)
        max2_plane_backward_impl(l, xp, dyp, dxp, 1);
    else
        max2_plane_backward_impl(l, xp, dyp, dxp, 0);
}

static heed_status check_input(const heed_pool2d *l, const heed_tensor *x, const char *fn) {
    if (x->c != l->base.in_c || x->h != l->base.in_h || x->w != l->base.in_w)
        return heed_fail(HEED_ERR_SHAPE, "%s %s: input is (%d, %d, %d, %d), expected (N, %d, %d, %d)",
                         fn, l->base.name, x->n, x->c, x->h, x->w, l->base.in_c, l->base.in_h,
                         l->base.in_w);
    return HEED_OK;
}

heed_status heed_pool2d_forward(heed_pool2d *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_input(l, x, "heed_pool2d_forward"));
    if (y == x || (y->data && y->data == x->data))
        return heed_fail(HEED_ERR_ARG, "heed_pool2d_forward %s: y must not alias x", l->base.name);
    const int N = x->n, C = x->c;
    const size_t HW = (size_t)x->h * x->w, L = (size_t)l->base.out_h * l->base.out_w;
    HEED_TRY(heed_tensor_ensure(y, N, C, l->base.out_h, l->base.out_w));
    const int is_max = l->cfg.kind == HEED_POOL_MAX, max2 = is_max2(l);
    const int max3 = heed_pool2d_is_max3s2(l);
    PARALLEL_IF((size_t)N * C * HW > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                const float *xp = x->data + ((size_t)n * C + c) * HW;
                float *yp = y->data + ((size_t)n * C + c) * L;
                if (max2)
                    max2_plane_forward(l, xp, yp);
                else if (max3)
                    max3s2_plane_forward(l, xp, yp);
                else if (is_max)
                    WITH_STRIDE(l, max_plane_forward, l, xp, yp);
                else
                    WITH_STRIDE(l, avg_plane_forward, l, xp, yp);
            });
    return HEED_OK;
}

heed_status heed_pool2d_backward(heed_pool2d *l, const heed_tensor *x, const heed_tensor *dy,
                                 heed_tensor *dx) {
    HEED_TRY(check_input(l, x, "heed_pool2d_backward"));
    const int N = x->n, C = x->c, OH = l->base.out_h, OW = l->base.out_w;
    const size_t HW = (size_t)x->h * x->w, L = (size_t)OH * OW;
    if (dy->n != N || dy->c != C || dy->h != OH || dy->w != OW)
        return heed_fail(HEED_ERR_SHAPE,
                         "heed_pool2d_backward %s: dy is (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                         l->base.name, dy->n, dy->c, dy->h, dy->w, N, C, OH, OW);
    if (!dx) return HEED_OK;
    if (!heed_tensor_same_shape(dx, x))
        return heed_fail(HEED_ERR_SHAPE,
                         "heed_pool2d_backward %s: dx is (%d, %d, %d, %d), x is (%d, %d, %d, %d)",
                         l->base.name, dx->n, dx->c, dx->h, dx->w, N, C, x->h, x->w);
    const int is_max = l->cfg.kind == HEED_POOL_MAX, max2 = is_max2(l), fresh = l->base.dx_fresh;
    if (fresh && !max2) heed_tensor_zero(dx); /* the other loops add */
    /* Windows overlap only within a plane, and one thread owns each plane. */
    PARALLEL_IF((size_t)N * C * HW > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                const size_t plane = (size_t)n * C + c;
                if (max2)
                    max2_plane_backward(l, x->data + plane * HW, dy->data + plane * L,
                                        dx->data + plane * HW, fresh);
                else if (is_max)
                    WITH_STRIDE(l, max_plane_backward, l, x->data + plane * HW,
                                dy->data + plane * L, dx->data + plane * HW);
                else
                    WITH_STRIDE(l, avg_plane_backward, l, dy->data + plane * L,
                                dx->data + plane * HW);
            });
    return HEED_OK;
}

static heed_status pool_op_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_pool2d_forward((heed_pool2d *)l, x, y);
}

static heed_status pool_op_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                    const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_pool2d_backward((heed_pool2d *)l, x, dy, dx);
}

static double pool_op_flops(const heed_layer *base) {
    const heed_pool2d *l = (const heed_pool2d *)base;
    return (double)base->out_c * base->out_h * base->out_w * l->cfg.k * l->cfg.k;
}

static void op_destroy(heed_layer *l) { free(l); }

static const heed_layer_ops maxpool_ops = {
    .type = "maxpool",
    .writes_fresh_dx = 1,
    .forward = pool_op_forward,
    .backward = pool_op_backward,
    .flops = pool_op_flops,
    .destroy = op_destroy,
};

static const heed_layer_ops avgpool_ops = {
    .type = "avgpool",
    .writes_fresh_dx = 1,
    .forward = pool_op_forward,
    .backward = pool_op_backward,
    .flops = pool_op_flops,
    .destroy = op_destroy,
};

heed_status heed_pool2d_new(heed_pool2d **out, const heed_pool2d_cfg *cfg, const int in[3],
                            heed_params *p, const char *name) {
    (void)p;
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("pool", name));
    if (!cfg) return heed_fail(HEED_ERR_ARG, "pool %s: no configuration given", name);
    heed_pool2d_cfg c = *cfg;
    if (c.stride == 0) c.stride = c.k;
    if (c.kind != HEED_POOL_MAX && c.kind != HEED_POOL_AVG)
        return heed_fail(HEED_ERR_ARG, "pool %s: unknown kind %d", name, (int)c.kind);
    if (c.k < 1 || c.stride < 1 || c.pad < 0 || c.pad > c.k / 2)
        return heed_fail(HEED_ERR_ARG,
                         "pool %s: bad configuration k %d stride %d pad %d (need k >= 1, "
                         "stride >= 0, 0 <= pad <= k/2)",
                         name, cfg->k, cfg->stride, cfg->pad);
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "pool %s: input shape (%d, %d, %d) has a dimension < 1",
                         name, in[0], in[1], in[2]);
    long sh = (long)in[1] + 2L * c.pad - c.k, sw = (long)in[2] + 2L * c.pad - c.k;
    if (sh < 0 || sw < 0)
        return heed_fail(HEED_ERR_SHAPE, "pool %s: window %d (padding %d) does not fit input %dx%d",
                         name, c.k, c.pad, in[1], in[2]);
    heed_pool2d *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "pool %s: cannot allocate the layer", name);
    heed_layer_init(&l->base, c.kind == HEED_POOL_MAX ? &maxpool_ops : &avgpool_ops, name, in,
                    in[0], (int)(sh / c.stride + 1), (int)(sw / c.stride + 1));
    l->cfg = c;
    *out = l;
    return HEED_OK;
}

/* ---- global pooling ---------------------------------------------------- */

static heed_status check_xy(const heed_tensor *x, const heed_tensor *y, const char *fn) {
    if (!x->data) return heed_fail(HEED_ERR_ARG, "%s: x is empty", fn);
    if (y == x || (y->data && y->data == x->data))
        return heed_fail(HEED_ERR_ARG, "%s: y must not alias x", fn);
    return HEED_OK;
}

/* Checks dy against `want` (N, C, H, W) and dx against x. */
static heed_status check_grads(const heed_tensor *x, const heed_tensor *y, const heed_tensor *dy,
                               const heed_tensor *dx, int C, int H, int W, const char *fn) {
    if (dy->n != x->n || dy->c != C || dy->h != H || dy->w != W)
        return heed_fail(HEED_ERR_SHAPE, "%s: dy is (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                         fn, dy->n, dy->c, dy->h, dy->w, x->n, C, H, W);
    if (y && !heed_tensor_same_shape(y, dy))
        return heed_fail(HEED_ERR_SHAPE, "%s: y is (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                         fn, y->n, y->c, y->h, y->w, x->n, C, H, W);
    if (dx && !heed_tensor_same_shape(dx, x))
        return heed_fail(HEED_ERR_SHAPE, "%s: dx is (%d, %d, %d, %d), x is (%d, %d, %d, %d)", fn,
                         dx->n, dx->c, dx->h, dx->w, x->n, x->c, x->h, x->w);
    return HEED_OK;
}

/* Plane reductions. Sums run in float within blocks of SUM_BLOCK values
 * (vectorized) and in double across blocks. Maxima take the larger of each
 * pair, which vectorizes, and note NaNs on the side: a NaN anywhere makes
 * the maximum NaN, as `beats` does element by element. */
#define SUM_BLOCK 512

HEED_WIDE static double plane_sum(const float *restrict x, size_t n) {
    double total = 0.0;
    for (size_t b = 0; b < n; b += SUM_BLOCK) {
        const size_t e = n - b < SUM_BLOCK ? n : b + SUM_BLOCK;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (size_t i = b; i < e; i++) s += x[i];
        total += s;
    }
    return total;
}

HEED_WIDE static float plane_max(const float *restrict x, size_t n) {
    float m = x[0];
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        m = v > m ? v : m;
        nan |= v != v;
    }
    return nan ? NAN : m;
}

/* Both in one pass over the plane. */
HEED_WIDE static void plane_sum_max(const float *restrict x, size_t n, double *sum, float *max) {
    double total = 0.0;
    float m = x[0];
    int nan = 0;
    for (size_t b = 0; b < n; b += SUM_BLOCK) {
        const size_t e = n - b < SUM_BLOCK ? n : b + SUM_BLOCK;
        float s = 0.0f;
#pragma omp simd reduction(+ : s) reduction(max : m) reduction(| : nan)
        for (size_t i = b; i < e; i++) {
            const float v = x[i];
            s += v;
            m = v > m ? v : m;
            nan |= v != v;
        }
        total += s;
    }
    *sum = total;
    *max = nan ? NAN : m;
}

heed_status heed_global_avg_pool_forward(const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_xy(x, y, "heed_global_avg_pool_forward"));
    const int NC = x->n * x->c;
    const size_t HW = (size_t)x->h * x->w;
    HEED_TRY(heed_tensor_ensure(y, x->n, x->c, 1, 1));
    PARALLEL_IF((size_t)NC * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (int i = 0; i < NC; i++)
            y->data[i] = (float)(plane_sum(x->data + (size_t)i * HW, HW) / (double)HW);
    );
    return HEED_OK;
}

heed_status heed_global_avg_pool_backward(const heed_tensor *x, const heed_tensor *dy,
                                          heed_tensor *dx) {
    HEED_TRY(check_grads(x, NULL, dy, dx, x->c, 1, 1, "heed_global_avg_pool_backward"));
    if (!dx) return HEED_OK;
    const int NC = x->n * x->c;
    const size_t HW = (size_t)x->h * x->w;
    PARALLEL_IF((size_t)NC * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (int i = 0; i < NC; i++) {
            float *restrict dxp = dx->data + (size_t)i * HW;
            const float g = dy->data[i] / (float)HW;
            for (size_t k = 0; k < HW; k++) dxp[k] += g;
        });
    return HEED_OK;
}

heed_status heed_global_max_pool_forward(const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_xy(x, y, "heed_global_max_pool_forward"));
    const int NC = x->n * x->c;
    const size_t HW = (size_t)x->h * x->w;
    HEED_TRY(heed_tensor_ensure(y, x->n, x->c, 1, 1));
    PARALLEL_IF((size_t)NC * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (int i = 0; i < NC; i++) y->data[i] = plane_max(x->data + (size_t)i * HW, HW);
    );
    return HEED_OK;
}

heed_status heed_global_avg_max_pool_forward(const heed_tensor *x, heed_tensor *avg,
                                             heed_tensor *max) {
    HEED_TRY(check_xy(x, avg, "heed_global_avg_max_pool_forward"));
    HEED_TRY(check_xy(x, max, "heed_global_avg_max_pool_forward"));
    if (avg == max || (avg->data && avg->data == max->data))
        return heed_fail(HEED_ERR_ARG, "heed_global_avg_max_pool_forward: avg and max must differ");
    const int NC = x->n * x->c;
    const size_t HW = (size_t)x->h * x->w;
    HEED_TRY(heed_tensor_ensure(avg, x->n, x->c, 1, 1));
    HEED_TRY(heed_tensor_ensure(max, x->n, x->c, 1, 1));
    PARALLEL_IF((size_t)NC * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (int i = 0; i < NC; i++) {
            double s;
            plane_sum_max(x->data + (size_t)i * HW, HW, &s, &max->data[i]);
            avg->data[i] = (float)(s / (double)HW);
        });
    return HEED_OK;
}

heed_status heed_global_max_pool_backward(const heed_tensor *x, const heed_tensor *y,
                                          const heed_tensor *dy, heed_tensor *dx) {
    HEED_TRY(check_grads(x, y, dy, dx, x->c, 1, 1, "heed_global_max_pool_backward"));
    if (!dx) return HEED_OK;
    const int NC = x->n * x->c;
    const size_t HW = (size_t)x->h * x->w;
    PARALLEL_IF((size_t)NC * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (int i = 0; i < NC; i++) {
            const float *restrict xp = x->data + (size_t)i * HW;
            float *restrict dxp = dx->data + (size_t)i * HW;
            const float m = plane_max(xp, HW);
            int ties = 0;
            for (size_t k = 0; k < HW; k++) ties += xp[k] == m;
            if (ties == 0) continue; /* a NaN maximum: nothing compares equal */
            const float g = dy->data[i] / (float)ties;
            for (size_t k = 0; k < HW; k++) dxp[k] += xp[k] == m ? g : 0.0f;
        });
    return HEED_OK;
}

/* ---- pooling across channels (CBAM) ------------------------------------ */

heed_status heed_channel_pool_forward(const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_xy(x, y, "heed_channel_pool_forward"));
    const int N = x->n, C = x->c;
    const size_t HW = (size_t)x->h * x->w;
    const int blocks = (int)((HW + CP_BLOCK - 1) / CP_BLOCK);
    HEED_TRY(heed_tensor_ensure(y, N, 2, x->h, x->w));
    PARALLEL_IF((size_t)N * C * HW > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int n = 0; n < N; n++)
            for (int b = 0; b < blocks; b++) {
                const size_t p0 = (size_t)b * CP_BLOCK;
                const int len = HW - p0 < CP_BLOCK ? (int)(HW - p0) : CP_BLOCK;
                const float *xn = x->data + (size_t)n * C * HW + p0;
                float *ymax = y->data + (size_t)n * 2 * HW + p0, *ymean = ymax + HW;
                float mx[CP_BLOCK], sum[CP_BLOCK];
                for (int k = 0; k < len; k++) mx[k] = sum[k] = xn[k];
                for (int c = 1; c < C; c++) {
                    const float *restrict xc = xn + (size_t)c * HW;
                    for (int k = 0; k < len; k++) {
                        const float v = xc[k];
                        mx[k] = beats(v, mx[k]) ? v : mx[k];
                        sum[k] += v;
                    }
                }
                for (int k = 0; k < len; k++) ymax[k] = mx[k], ymean[k] = sum[k] / (float)C;
            });
    return HEED_OK;
}

heed_status heed_channel_pool_backward(const heed_tensor *x, const heed_tensor *y,
                                       const heed_tensor *dy, heed_tensor *dx) {
    HEED_TRY(check_grads(x, y, dy, dx, 2, x->h, x->w, "heed_channel_pool_backward"));
    if (!dx) return HEED_OK;
    const int N = x->n, C = x->c;
    const size_t HW = (size_t)x->h * x->w;
    const int blocks = (int)((HW + CP_BLOCK - 1) / CP_BLOCK);
    PARALLEL_IF((size_t)N * C * HW > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int n = 0; n < N; n++)
            for (int b = 0; b < blocks; b++) {
                const size_t p0 = (size_t)b * CP_BLOCK;
                const int len = HW - p0 < CP_BLOCK ? (int)(HW - p0) : CP_BLOCK;
                const float *xn = x->data + (size_t)n * C * HW + p0;
                const float *dmax = dy->data + (size_t)n * 2 * HW + p0, *dmean = dmax + HW;
                float *dxn = dx->data + (size_t)n * C * HW + p0;
                float m[CP_BLOCK], share[CP_BLOCK], mean_share[CP_BLOCK];
                for (int k = 0; k < len; k++) m[k] = xn[k], share[k] = 0.0f;
                for (int c = 1; c < C; c++) {
                    const float *restrict xc = xn + (size_t)c * HW;
                    for (int k = 0; k < len; k++) m[k] = beats(xc[k], m[k]) ? xc[k] : m[k];
                }
                for (int c = 0; c < C; c++) {
                    const float *restrict xc = xn + (size_t)c * HW;
                    for (int k = 0; k < len; k++) share[k] += xc[k] == m[k] ? 1.0f : 0.0f;
                }
                for (int k = 0; k < len; k++) {
                    /* A NaN maximum matches nothing: no share to hand out. */
                    share[k] = share[k] > 0.0f ? dmax[k] / share[k] : 0.0f;
                    mean_share[k] = dmean[k] / (float)C;
                }
                for (int c = 0; c < C; c++) {
                    const float *restrict xc = xn + (size_t)c * HW;
                    float *restrict dxc = dxn + (size_t)c * HW;
                    for (int k = 0; k < len; k++) {
                        const float sh = share[k];
                        dxc[k] += mean_share[k] + (xc[k] == m[k] ? sh : 0.0f);
                    }
                }
            });
    return HEED_OK;
}

/* ---- global pooling as a layer ----------------------------------------- */

static heed_status global_op_forward(heed_layer *base, const heed_tensor *x, heed_tensor *y) {
    const heed_global_pool *l = (const heed_global_pool *)base;
    return l->kind == HEED_POOL_MAX ? heed_global_max_pool_forward(x, y)
                                    : heed_global_avg_pool_forward(x, y);
}

static heed_status global_op_backward(heed_layer *base, const heed_tensor *x, const heed_tensor *y,
                                      const heed_tensor *dy, heed_tensor *dx) {
    const heed_global_pool *l = (const heed_global_pool *)base;
    return l->kind == HEED_POOL_MAX ? heed_global_max_pool_backward(x, y, dy, dx)
                                    : heed_global_avg_pool_backward(x, dy, dx);
}

static double global_op_flops(const heed_layer *l) {
    return (double)l->in_c * l->in_h * l->in_w;
}

static const heed_layer_ops gap_ops = {
    .type = "gap",
    .forward = global_op_forward,
    .backward = global_op_backward,
    .flops = global_op_flops,
    .destroy = op_destroy,
};

static const heed_layer_ops gmp_ops = {
    .type = "gmp",
    .forward = global_op_forward,
    .backward = global_op_backward,
    .flops = global_op_flops,
    .destroy = op_destroy,
};

heed_status heed_global_pool_new(heed_global_pool **out, heed_pool_kind kind, const int in[3],
                                 const char *name) {
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("global pool", name));
    if (kind != HEED_POOL_MAX && kind != HEED_POOL_AVG)
        return heed_fail(HEED_ERR_ARG, "global pool %s: unknown kind %d", name, (int)kind);
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "global pool %s: input shape (%d, %d, %d) has a dimension < 1",
                         name, in[0], in[1], in[2]);
    heed_global_pool *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "global pool %s: cannot allocate the layer", name);
    heed_layer_init(&l->base, kind == HEED_POOL_MAX ? &gmp_ops : &gap_ops, name, in, in[0], 1, 1);
    l->kind = kind;
    *out = l;
    return HEED_OK;
}
