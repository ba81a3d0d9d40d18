/* conv2d_direct.c -- convolutions whose groups map few channels to few
 * (ICg * OCg <= 4: depthwise, CBAM's 2 -> 1 spatial filter) as direct loops
 * over kernel taps: too little work per pixel for a matrix product.
 *
 *   forward:  y[n,o,i,j] = post(sum over c, u, v of w[o,c,u,v] x[n,c,i*S-P+u*D,j*S-P+v*D])
 *   backward: dW[o,c,u,v] += sum over (n,i,j) of dy[n,o,i,j] x[n,c,..],
 *             dx[n,c,..]  += sum over (o,u,v) of w[o,c,u,v] dy[n,o,i,j],
 *             db[o]       += sum of dy[n,o,:,:]
 * Stride 1 (the usual case) runs on zero-padded copies of each image, see
 * below; other strides on the planes themselves, clipped per tap.
 */
#include <stdlib.h>
#include <string.h>

#include "conv2d_impl.h"
#include "wide.h"

typedef heed_conv_geom geom;
typedef heed_conv_tap tap;
typedef heed_conv_post post;

/* ---- any stride ------------------------------------------------------------ */

/* y[n, o] = post(sum over the group's channels and taps): each (image,
 * output channel) plane independently, the innermost loop along a row. */
static void direct_forward(const heed_conv2d *l, const geom *g, const float *x, float *y,
                           const post *p) {
    const int K = g->K, S = g->S, OW = g->OW, W = g->W;
    const size_t HW = (size_t)g->H * W, L = (size_t)g->L;
    PARALLEL_IF((size_t)g->N * g->OC * L * g->R > PAR_MIN,
                "omp parallel for collapse(2) schedule(static)",
        for (int n = 0; n < g->N; n++)
            for (int o = 0; o < g->OC; o++) {
                const int c0 = o / g->OCg * g->ICg;
                float *restrict yp = y + ((size_t)n * g->OC + o) * L;
                memset(yp, 0, L * sizeof(float));
                for (int c = 0; c < g->ICg; c++) {
                    const float *xp = x + ((size_t)n * g->IC + c0 + c) * HW;
                    const float *wc = l->w + ((size_t)o * g->ICg + c) * K * K;
                    for (int u = 0; u < K; u++)
                        for (int v = 0; v < K; v++) {
                            tap t = conv_tap_at(g, u, v);
                            const float wv = wc[u * K + v];
                            const int cnt = t.jhi - t.jlo;
                            for (int i = t.ilo; i < t.ihi; i++) {
                                const float *restrict q =
                                    xp + (size_t)(i * S + t.off_h) * W + t.jlo * S + t.off_w;
                                float *restrict dst = yp + (size_t)i * OW + t.jlo;
                                if (S == 1)
                                    for (int k = 0; k < cnt; k++) dst[k] += wv * q[k];
                                else
                                    for (int k = 0; k < cnt; k++) dst[k] += wv * q[k * S];
                            }
                        }
                }
                heed_conv_post_rows(yp, 0, L, o, 1, p);
            });
}

/* Direct backward: one thread per input channel owns dx[:, c] and the
 * weight gradients dW[o, c] of its group's outputs, so nothing races and
 * the sums are deterministic. The weight gradient sums in 8 lanes so that
 * the loop vectorizes. */
static void direct_backward(heed_conv2d *l, const geom *g, const float *x, const float *dy,
                            float *dx) {
    const int K = g->K, S = g->S, OW = g->OW, W = g->W;
    const size_t HW = (size_t)g->H * W, L = (size_t)g->L;
    if (l->db) {
        PARALLEL_IF((size_t)g->N * g->OC * L * g->R > PAR_MIN, "omp parallel for schedule(static)",
            for (int o = 0; o < g->OC; o++) {
                float s = 0.0f;
                for (int n = 0; n < g->N; n++) {
                    const float *dyp = dy + ((size_t)n * g->OC + o) * L;
                    for (size_t i = 0; i < L; i++) s += dyp[i];
                }
                l->db[o] += s;
            });
    }
    PARALLEL_IF((size_t)g->N * g->OC * L * g->R > PAR_MIN, "omp parallel for schedule(static)",
        for (int ci = 0; ci < g->IC; ci++) {
            const int gi = ci / g->ICg, c = ci % g->ICg;
            for (int o = gi * g->OCg; o < (gi + 1) * g->OCg; o++) {
                const float *wc = l->w + ((size_t)o * g->ICg + c) * K * K;
                float *dwc = l->dw + ((size_t)o * g->ICg + c) * K * K;
                for (int n = 0; n < g->N; n++) {
                    const float *xp = x + ((size_t)n * g->IC + ci) * HW;
                    const float *dyp = dy + ((size_t)n * g->OC + o) * L;
                    float *dxp = dx ? dx + ((size_t)n * g->IC + ci) * HW : NULL;
                    for (int u = 0; u < K; u++)
                        for (int v = 0; v < K; v++) {
                            tap t = conv_tap_at(g, u, v);
                            float wv = wc[u * K + v], acc[8] = {0};
                            const int cnt = t.jhi - t.jlo;
                            for (int i = t.ilo; i < t.ihi; i++) {
                                const size_t in_row = (size_t)(i * S + t.off_h) * W;
                                /* From the first valid column on: q[k*S] pairs with dd[k]. */
                                const float *q = xp + in_row + t.jlo * S + t.off_w;
                                const float *dd = dyp + (size_t)i * OW + t.jlo;
                                float *dq = dxp ? dxp + in_row + t.jlo * S + t.off_w : NULL;
                                int k = 0;
                                if (S == 1)
                                    for (; k + 8 <= cnt; k += 8)
                                        for (int r = 0; r < 8; r++) acc[r] += dd[k + r] * q[k + r];
                                for (; k < cnt; k++) acc[k & 7] += dd[k] * q[k * S];
                                if (dq && S == 1)
                                    for (k = 0; k < cnt; k++) dq[k] += wv * dd[k];
                                else if (dq)
                                    for (k = 0; k < cnt; k++) dq[k * S] += wv * dd[k];
                            }
                            dwc[u * K + v] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                                              ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                        }
                }
            }
        });
}

/* ---- stride 1 --------------------------------------------------------------- */

/* The direct loops are arithmetic on short rows, held in registers: on a
 * CPU with AVX2 or AVX-512 they run several times faster in the wider
 * registers, so they are compiled for each and picked at load time (the
 * library is otherwise built for the baseline x86-64: HEED_WIDE). Every
 * element is the same sum in the same order in each version. */

/* Stride 1 takes a faster route, on zero-padded copies of each image's
 * planes: every output row is computed in blocks of JB columns held in
 * local accumulators (registers) across all taps, instead of a pass over
 * the output plane per tap; the padding makes the loops free of bounds.
 * The input gradient is the same computation on dy padded by P', with the
 * kernel flipped (the transposed convolution, as for the matrix-product
 * path); the weight gradient sums products of dy and shifted input rows. */
#define JB 16

/* Sums kept side by side (output rows in direct_rows, taps in taps_dot):
 * each is a chain of additions, and one alone waits on each of them (CBAM's
 * 2 -> 1 7x7 filter, 98 taps to an output, forward 1.2-1.7x faster with 4). */
#define CHAINS 4

/* Rows i0 .. i0+R-1 of out, columns j0 .. j0+JB-1 (direct_rows). */
static inline __attribute__((always_inline)) void direct_block(
    const float *q, int C, int Hq, int Wq, const float *w, size_t wcs, int K, int D, float *out,
    int OW, int add, int i0, int j0, const int R) {
    float acc[CHAINS][JB] = {{0}};
    for (int c = 0; c < C; c++)
        for (int u = 0; u < K; u++) {
            const float *row = q + ((size_t)c * Hq + i0 + u * D) * Wq + j0;
            const float *wr = w + c * wcs + (size_t)u * K;
            for (int v = 0; v < K; v++) {
                const float wv = wr[v];
                for (int r = 0; r < R; r++) {
                    const float *restrict x = row + (size_t)r * Wq + v * D;
#pragma omp simd /* else the wide versions unroll it to scalars */
                    for (int k = 0; k < JB; k++) acc[r][k] += wv * x[k];
                }
            }
        }
    const int nb = OW - j0 < JB ? OW - j0 : JB;
    for (int r = 0; r < R; r++) {
        float *o = out + (size_t)(i0 + r) * OW + j0;
        if (add)
            for (int k = 0; k < nb; k++) o[k] += acc[r][k];
        else
            for (int k = 0; k < nb; k++) o[k] = acc[r][k];
    }
}

/* out (OH, OW) (+)= sum over c < C, u, v < K of w[c*wcs + u*K + v] * q[c, i + u*D, j + v*D],
 * q (C, Hq, Wq) padded so that every block read stays inside. Blocks of
 * JB columns of CHAINS rows: one accumulator vector per row with AVX-512,
 * four with SSE. Each output is the sum over c, u, v in that order. */
HEED_WIDE
static void direct_rows(const float *q, int C, int Hq, int Wq, const float *w, size_t wcs, int K,
                        int D, float *out, int OH, int OW, int add) {
    int i0 = 0;
    for (; i0 + CHAINS <= OH; i0 += CHAINS)
        for (int j0 = 0; j0 < OW; j0 += JB)
            direct_block(q, C, Hq, Wq, w, wcs, K, D, out, OW, add, i0, j0, CHAINS);
    for (; i0 < OH; i0++)
        for (int j0 = 0; j0 < OW; j0 += JB)
            direct_block(q, C, Hq, Wq, w, wcs, K, D, out, OW, add, i0, j0, 1);
}

/* Taps (u, v0) .. (u, v0+V-1) of taps_dot, side by side: each its own
 * chain of additions (one tap alone waits on each). */
static inline __attribute__((always_inline)) void taps_dot_block(
    const float *d, size_t ldd, const float *r, size_t ldr, int OH, int OW, int D, int u, int v0,
    float *dw, int K, const int V) {
    float a[CHAINS][JB] = {{0}};
    for (int i = 0; i < OH; i++) {
        const float *restrict dr = d + (size_t)i * ldd;
        const float *xr = r + (size_t)(i + u * D) * ldr + v0 * D;
        for (int j0 = 0; j0 < OW; j0 += JB)
            for (int t = 0; t < V; t++) {
                const float *restrict x = xr + t * D + j0;
#pragma omp simd /* else the wide versions unroll it to scalars */
                for (int k = 0; k < JB; k++) a[t][k] += dr[j0 + k] * x[k];
            }
    }
    for (int t = 0; t < V; t++) {
        float s = 0.0f;
        for (int k = 0; k < JB; k++) s += a[t][k];
        dw[u * K + v0 + t] += s;
    }
}

/* dw[u*K + v] += sum over (i, j) of d[i, j] r[i + u*D, j + v*D] for every tap,
 * d rows ldd apart, r rows ldr apart, in blocks of JB columns (d's zeros
 * beyond OW make the last block exact); CHAINS taps at a time. */
HEED_WIDE
static void taps_dot(const float *d, size_t ldd, const float *r, size_t ldr, int OH, int OW, int K,
                     int D, float *dw) {
    for (int u = 0; u < K; u++) {
        int v = 0;
        for (; v + CHAINS <= K; v += CHAINS) taps_dot_block(d, ldd, r, ldr, OH, OW, D, u, v, dw, K, CHAINS);
        for (; v < K; v++) taps_dot_block(d, ldd, r, ldr, OH, OW, D, u, v, dw, K, 1);
    }
}

/* Padded widths: blocks of JB columns starting at any output column read
 * up to D*(K-1) columns further. */
static int padded_width(int OW, int K, int D) { return (OW + JB - 1) / JB * JB + D * (K - 1); }

static size_t direct1_size(const geom *g) {
    const geom t = conv_transposed(g);
    const size_t fw =
        (size_t)g->ICg * (g->OH + g->D * (g->K - 1)) * padded_width(g->OW, g->K, g->D);
    const size_t bw = (size_t)g->OCg * (t.OH + g->D * (g->K - 1)) *
                      padded_width(t.OW > g->OW ? t.OW : g->OW, g->K, g->D);
    return fw + bw + (size_t)g->OC * g->R; /* and the flipped kernel */
}

static void direct1_forward_image(const heed_conv2d *l, const geom *g, const float *x, float *y,
                                  int n, float *q, const post *p) {
    const int Hq = g->OH + g->D * (g->K - 1), Wq = padded_width(g->OW, g->K, g->D);
    for (int gi = 0; gi < g->G; gi++) {
        conv_pad_planes(x, g->IC, n, gi * g->ICg, g->ICg, g->H, g->W, g->P, Hq, Wq, q);
        for (int o = gi * g->OCg; o < (gi + 1) * g->OCg; o++) {
            float *yp = y + ((size_t)n * g->OC + o) * g->L;
            direct_rows(q, g->ICg, Hq, Wq, l->w + (size_t)o * g->R, (size_t)g->K * g->K, g->K,
                        g->D, yp, g->OH, g->OW, 0);
            heed_conv_post_rows(yp, 0, (size_t)g->L, o, 1, p);
        }
    }
}

static heed_status direct1_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                   const post *p) {
    const size_t qn = direct1_size(g);
    const int T = conv_pass_threads(g->N, (size_t)g->OC * g->R * g->L);
    float *q;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, qn * T, &q));
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int n = 0; n < g->N; n++) {
        const int t = conv_thread();
        direct1_forward_image(l, g, x, y, n, q + t * qn, p);
    }
    return HEED_OK;
}

/* Backward for stride 1, image by image: dx += the flipped kernel over dy
 * padded by P'; dW[o, c, u, v] += sum over (i, j) of dy[o, i, j] q[c, i + u*D, j + v*D]
 * with q the padded input (dy read from its own padded copy, whose zeros
 * beyond OW make whole blocks safe to sum). As on the shifted path
 * (conv2d_shifted.c), threads take fixed chunks of images, each chunk
 * summing its own weight-gradient partial; the partials are added in chunk
 * order, so the result does not depend on the thread count. */
static void direct1_backward_image(const geom *g, const float *x, const float *dy, float *dx,
                                   int n, const float *wf, float *dw, float *q) {
    const geom t = conv_transposed(g);
    const int K = g->K, D = g->D, KK = K * K;
    const int Hq = g->OH + D * (K - 1), Wq = padded_width(g->OW, K, D);
    const int Pt = t.P, Hd = t.OH + D * (K - 1);
    const int Wd = padded_width(t.OW > g->OW ? t.OW : g->OW, K, D);
    float *d = q + (size_t)g->ICg * Hq * Wq;
    for (int gi = 0; gi < g->G; gi++) {
        conv_pad_planes(x, g->IC, n, gi * g->ICg, g->ICg, g->H, g->W, g->P, Hq, Wq, q);
        conv_pad_planes(dy, g->OC, n, gi * g->OCg, g->OCg, g->OH, g->OW, Pt, Hd, Wd, d);
        for (int o = 0; o < g->OCg; o++) {
            const float *dq = d + ((size_t)o * Hd + Pt) * Wd + Pt; /* dy[o, 0, 0] */
            for (int c = 0; c < g->ICg; c++)
                taps_dot(dq, Wd, q + (size_t)c * Hq * Wq, Wq, g->OH, g->OW, K, D,
                         dw + ((size_t)(gi * g->OCg + o) * g->ICg + c) * KK);
        }
        if (!dx) continue;
        for (int c = 0; c < g->ICg; c++) {
            const float *wc = wf + ((size_t)gi * g->ICg + c) * g->OCg * KK;
            float *dxc = dx + ((size_t)n * g->IC + gi * g->ICg + c) * g->H * g->W;
            direct_rows(d, g->OCg, Hd, Wd, wc, (size_t)KK, K, D, dxc, g->H, g->W, 1);
        }
    }
}

static heed_status direct1_backward(heed_conv2d *l, const geom *g, const float *x, const float *dy,
                                    float *dx, int fresh) {
    const int KK = g->K * g->K;
    const int chunks = conv_backward_chunks(g, g->N);
    const size_t nw = (size_t)g->OC * g->R;
    const size_t per_thread = direct1_size(g) - nw; /* the padded copies */
    const int T = conv_pass_threads(chunks, (size_t)g->OC * g->R * g->L * 2 * (g->N / chunks));
    float *buf;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, nw * (1 + chunks) + per_thread * T, &buf));
    float *wf = buf, *partial = wf + nw, *copies = partial + nw * chunks;
    if (l->db)
        for (int o = 0; o < g->OC; o++) {
            double s = 0.0;
            for (int n = 0; n < g->N; n++) {
                const float *dyp = dy + ((size_t)n * g->OC + o) * g->L;
                float a = 0.0f;
#pragma omp simd reduction(+ : a)
                for (int i = 0; i < g->L; i++) a += dyp[i];
                s += a;
            }
            l->db[o] += (float)s;
        }
    /* wf[g, c, o, u, v] = W[g*OCg + o, c, K-1-u, K-1-v] */
    if (dx)
        for (int gi = 0; gi < g->G; gi++)
            for (int o = 0; o < g->OCg; o++)
                for (int c = 0; c < g->ICg; c++) {
                    const float *src = l->w + ((size_t)(gi * g->OCg + o) * g->ICg + c) * KK;
                    float *dst = wf + (((size_t)gi * g->ICg + c) * g->OCg + o) * KK;
                    for (int i = 0; i < KK; i++) dst[KK - 1 - i] = src[i];
                }
    if (fresh && dx) memset(dx, 0, (size_t)g->N * g->IC * g->H * g->W * sizeof(float));
    memset(partial, 0, nw * chunks * sizeof(float));
#pragma omp parallel for num_threads(T) schedule(dynamic, 1) if (T > 1)
    for (int ch = 0; ch < chunks; ch++) {
        const int t = conv_thread();
        int n0, n1;
        conv_chunk_range(g->N, chunks, ch, &n0, &n1);
        for (int n = n0; n < n1; n++)
            direct1_backward_image(g, x, dy, dx, n, wf, partial + ch * nw, copies + t * per_thread);
    }
    conv_add_partials(l->dw, partial, nw, chunks);
    return HEED_OK;
}

heed_status heed_conv_direct_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                     const post *p) {
    if (g->S == 1) return direct1_forward(l, g, x, y, p);
    direct_forward(l, g, x, y, p);
    return HEED_OK;
}

heed_status heed_conv_direct_backward(heed_conv2d *l, const geom *g, const float *x,
                                      const float *dy, float *dx, int fresh) {
    /* direct1_backward pads dy by D*(K-1) - P: padding wider than that
     * (PyTorch allows any) takes the general loops, which clip each tap. */
    if (g->S == 1 && g->P <= g->D * (g->K - 1)) return direct1_backward(l, g, x, dy, dx, fresh);
    if (dx && fresh) memset(dx, 0, (size_t)g->N * g->IC * g->H * g->W * sizeof(float));
    direct_backward(l, g, x, dy, dx);
    return HEED_OK;
}
