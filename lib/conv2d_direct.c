/* conv2d_direct.c -- convolutions whose groups map few channels to few
 * (ICg * OCg <= 4: depthwise, CBAM's 2 -> 1 spatial filter) as direct loops
 * over kernel taps: too little work per pixel for a matrix product.
 *
 *   forward:  y[n,o,i,j] = post(sum over c, u, v of w[o,c,u,v] x[n,c,i*S-P+u*D,j*S-P+v*D])
 *   backward: dW[o,c,u,v] += sum over (n,i,j) of dy[n,o,i,j] x[n,c,..],
 *             dx[n,c,..]  += sum over (o,u,v) of w[o,c,u,v] dy[n,o,i,j],
 *             db[o]       += sum of dy[n,o,:,:]
 * Stride 1 (the usual case) runs on zero-padded copies of each image,
 * other strides on the image's phase planes, and the forward at stride 2
 * with the usual padding on its column halves; see below.
 */
#include <string.h>

#include "conv2d_impl.h"
#include "conv2d_phase_impl.h"
#include "wide.h"

typedef heed_conv_geom geom;
typedef heed_conv_post post;

/* ---- strides above 1 --------------------------------------------------------- */

/* Other strides run on the input's phase planes (conv2d_phase_impl.h),
 * whole images at a time, over whose flat grid of OH rows of Wq positions
 * every tap is a contiguous loop: the forward sums each grid position over
 * the taps in registers; the backward's weight gradient is a dot product
 * of dy, laid out on the grid with zeros at the dropped positions, with
 * each tap's shifted planes, and its input gradient adds w * that grid to
 * each tap's positions of the planes' gradient, which goes back to dx
 * pixel by pixel. (The clipped loops on the planes themselves that these
 * replace read every S-th float and took MobileNet's strided depthwise
 * backward 3-4x as long as its forward.) */

/* 16 floats in GCC's vector extension: one register with AVX-512, two
 * with AVX2, four with SSE, so that the accumulators below stay in
 * registers in every version (written as arrays with `omp simd`, GCC kept
 * them in memory and ran the taps as scalar code). */
typedef float vec16 __attribute__((vector_size(64)));
#define load16(p) (*(const conv_v16 *)(const void *)(p))
#define store16(p, v) (*(conv_v16 *)(void *)(p) = (v))

/* grid[p] = sum over taps t of w[t] * q[p + off[t]] for p < n (whole
 * blocks of 32), 64 positions at a time where they fit so that four
 * chains of additions overlap. */
HEED_WIDE HEED_FUSED
static void grid_sum_taps(const float *q, const size_t *off, int taps, const float *w,
                          float *grid, size_t n) {
    size_t p0 = 0;
    for (; p0 + 64 <= n; p0 += 64) {
        vec16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int t = 0; t < taps; t++) {
            const float *r = q + off[t] + p0;
            a0 += w[t] * load16(r), a1 += w[t] * load16(r + 16);
            a2 += w[t] * load16(r + 32), a3 += w[t] * load16(r + 48);
        }
        store16(grid + p0, a0), store16(grid + p0 + 16, a1);
        store16(grid + p0 + 32, a2), store16(grid + p0 + 48, a3);
    }
    for (; p0 < n; p0 += 32) {
        vec16 a0 = {0}, a1 = {0};
        for (int t = 0; t < taps; t++) {
            const float *r = q + off[t] + p0;
            a0 += w[t] * load16(r), a1 += w[t] * load16(r + 16);
        }
        store16(grid + p0, a0), store16(grid + p0 + 16, a1);
    }
}

/* The sum of a's lanes, in their order. */
static inline float lanes_sum(const vec16 *a) {
    float s = 0.0f;
    for (int e = 0; e < 16; e++) s += (*a)[e];
    return s;
}

/* dw[t] += sum over p < n of d[p] * q[p + off[t]] for every tap (n whole
 * blocks of 32), four taps at a time (one load of d for four
 * multiply-adds), each in two vectors of lanes summed in a fixed order. */
HEED_WIDE HEED_FUSED
static void grid_tap_dots(const float *d, const float *q, const size_t *off, int taps, float *dw,
                          size_t n) {
    int t = 0;
    for (; t + 4 <= taps; t += 4) {
        vec16 a[4][2] = {{{0}}};
        for (size_t p0 = 0; p0 < n; p0 += 32) {
            const vec16 d0 = load16(d + p0), d1 = load16(d + p0 + 16);
            for (int k = 0; k < 4; k++) {
                const float *r = q + off[t + k] + p0;
                a[k][0] += d0 * load16(r), a[k][1] += d1 * load16(r + 16);
            }
        }
        for (int k = 0; k < 4; k++) dw[t + k] += lanes_sum(&a[k][0]) + lanes_sum(&a[k][1]);
    }
    for (; t < taps; t++) {
        vec16 a0 = {0}, a1 = {0};
        for (size_t p0 = 0; p0 < n; p0 += 32) {
            const float *r = q + off[t] + p0;
            a0 += load16(d + p0) * load16(r), a1 += load16(d + p0 + 16) * load16(r + 16);
        }
        dw[t] += lanes_sum(&a0) + lanes_sum(&a1);
    }
}

/* dq[p + off[t]] += w[t] * d[p] for every tap and p < n. */
HEED_WIDE HEED_FUSED
static void grid_spread_taps(const float *d, const size_t *off, int taps, const float *w,
                             float *dq, size_t n) {
    for (int t = 0; t < taps; t++) {
        float *restrict r = dq + off[t];
        const float wt = w[t];
#pragma omp simd
        for (size_t p = 0; p < n; p++) r[p] += wt * d[p];
    }
}

/* Floats at the start of a work space that hold the taps' offsets on a
 * whole image's planes (size_t values, in whole cache lines). */
static size_t offsets_floats(const geom *g) {
    return ((size_t)g->R * sizeof(size_t) + 63) / 64 * (64 / sizeof(float));
}

static size_t *phase_offsets(const geom *g, float *work) {
    size_t *off = (size_t *)(void *)work;
    conv_phase_tap_offsets(g, conv_phase_plane_size(g, g->OH), off);
    return off;
}

/* Group gi's output planes of image n from its filled planes q: each
 * channel's taps summed on the grid (gn positions, rows `width` apart),
 * then its OW positions a row kept. */
static void grid_outputs(const heed_conv2d *l, const geom *g, const float *q, const size_t *off,
                         float *grid, size_t gn, int width, int n, int gi, float *y,
                         const post *p) {
    for (int o = gi * g->OCg; o < (gi + 1) * g->OCg; o++) {
        grid_sum_taps(q, off, g->R, l->w + (size_t)o * g->R, grid, gn);
        heed_conv_phase_keep_rows(grid, width, y + ((size_t)n * g->OC + o) * g->L, g->OH, g->OW,
                                  p, o);
    }
}

static heed_status phase_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                 const post *p) {
    const size_t qn = conv_phase_planes_size(g, g->OH), gn = conv_phase_grid_size(g, g->OH);
    const int items = g->N * g->G;
    const int T = conv_pass_threads(items, (size_t)g->OCg * g->R * g->L);
    const size_t per_thread = conv_slice(qn + gn + heed_conv_phase_image_work(g), T);
    const int Wq = conv_phase_width(g);
    float *buf;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, offsets_floats(g) + per_thread * T, &buf));
    const size_t *off = phase_offsets(g, buf);
    float *work = buf + offsets_floats(g);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int it = 0; it < items; it++) {
        const int n = it / g->G, gi = it % g->G;
        float *q = work + (size_t)conv_thread() * per_thread, *grid = q + qn;
        heed_conv_phase_fill_image(g, x, n, gi * g->ICg, q, grid + gn);
        grid_outputs(l, g, q, off, grid, gn, Wq, n, gi, y, p);
    }
    return HEED_OK;
}

/* At stride 2 on an even width with the usual padding, the forward on
 * column halves instead of phase planes (conv2d_phase_impl.h): the same
 * sums in the same order, from the same values. */
static heed_status halves_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                  const post *p) {
    const size_t qn = heed_conv_halves_size(g), gn = heed_conv_halves_grid_size(g);
    const size_t mn = heed_conv_halves_masks_size(g);
    const int items = g->N * g->G;
    const int T = conv_pass_threads(items, (size_t)g->OCg * g->R * g->L);
    const size_t per_thread = conv_slice(qn + gn, T);
    float *buf;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, offsets_floats(g) + mn + per_thread * T, &buf));
    size_t *off = (size_t *)(void *)buf;
    heed_conv_halves_tap_offsets(g, off);
    float *masks = buf + offsets_floats(g), *work = masks + mn;
    heed_conv_halves_masks(g, masks);
#pragma omp parallel num_threads(T) if (T > 1)
    {
        float *q = work + (size_t)conv_thread() * per_thread, *grid = q + qn;
        memset(q, 0, qn * sizeof(float)); /* the blocks' zeros, which the fills leave */
#pragma omp for schedule(static)
        for (int it = 0; it < items; it++) {
            const int n = it / g->G, gi = it % g->G;
            heed_conv_halves_fill(g, x, n, gi * g->ICg, masks, q);
            grid_outputs(l, g, q, off, grid, gn, g->W, n, gi, y, p);
        }
    }
    return HEED_OK;
}

/* Backward of images n0 .. n1-1 for groups g0 .. g1-1, each group's weight
 * gradient summed into its part of dw (the chunk's partial, OCg * R weights
 * a group). Image by image, its groups in turn: the groups' planes of one
 * image lie one after the other, where one group's planes of successive
 * images lie a whole image apart (by group, then image, MobileNet's
 * stride-2 depthwise backward waited on memory for every plane). Each
 * group's sum still runs over the images in order. */
static void phase_backward_images(const heed_conv2d *l, const geom *g, const size_t *off,
                                  const float *x, const float *dy, float *dx, int fresh, int n0,
                                  int n1, int g0, int g1, float *dw, float *q) {
    const size_t qn = conv_phase_planes_size(g, g->OH), gn = conv_phase_grid_size(g, g->OH);
    const int Wq = conv_phase_width(g);
    float *dq = q + qn, *d = dq + qn;
    for (int n = n0; n < n1; n++)
        for (int gi = g0; gi < g1; gi++) {
            heed_conv_phase_fill_image(g, x, n, gi * g->ICg, q, d + gn);
            if (dx) memset(dq, 0, qn * sizeof(float));
            for (int k = 0; k < g->OCg; k++) {
                const int o = gi * g->OCg + k;
                const float *dyp = dy + ((size_t)n * g->OC + o) * g->L;
                heed_conv_phase_lay_rows(dyp, g->OH, g->OW, d, Wq, gn);
                grid_tap_dots(d, q, off, g->R, dw + (size_t)o * g->R, gn);
                if (dx) grid_spread_taps(d, off, g->R, l->w + (size_t)o * g->R, dq, gn);
            }
            if (dx) heed_conv_phase_add_back(g, dq, n, gi * g->ICg, dx, fresh, d + gn);
        }
}

/* Items are (chunk of images, block of groups) pairs: each owns its
 * images' dx for the block's input channels and its chunk's partial of the
 * block's weight gradient, so nothing races; the partials are added in
 * chunk order (conv_backward_chunks: the sums do not depend on the thread
 * count). A chunk's groups are cut into blocks only where the chunks alone
 * would give a thread fewer than four items. */
static heed_status phase_backward(heed_conv2d *l, const geom *g, const float *x, const float *dy,
                                  float *dx, int fresh) {
    const size_t qn = conv_phase_planes_size(g, g->OH), gn = conv_phase_grid_size(g, g->OH);
    const int chunks = conv_backward_chunks(g, g->N);
    const int T = conv_pass_threads(chunks * g->G,
                                    (size_t)g->OCg * g->R * g->L * 2 * (g->N / chunks));
    int blocks = (4 * T + chunks - 1) / chunks;
    if (blocks > g->G) blocks = g->G;
    const int items = chunks * blocks;
    const size_t nw = (size_t)g->OC * g->R, ps = conv_slice(nw, T);
    const size_t per_thread = conv_slice(2 * qn + gn + heed_conv_phase_image_work(g), T);
    float *buf;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col,
                              offsets_floats(g) + ps * chunks + per_thread * T, &buf));
    const size_t *off = phase_offsets(g, buf);
    float *partial = buf + offsets_floats(g), *work = partial + ps * chunks;
    conv_add_bias_grad(l, g, dy);
    conv_zero_partials(partial, nw, ps, chunks);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int it = 0; it < items; it++) {
        const int ch = it / blocks, b = it % blocks;
        int n0, n1, g0, g1;
        conv_chunk_range(g->N, chunks, ch, &n0, &n1);
        conv_chunk_range(g->G, blocks, b, &g0, &g1);
        phase_backward_images(l, g, off, x, dy, dx, fresh, n0, n1, g0, g1, partial + ch * ps,
                              work + (size_t)conv_thread() * per_thread);
    }
    conv_add_partials(l->dw, partial, nw, ps, chunks);
    return HEED_OK;
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

/* o[0 .. nb) = *v (add: += *v). A whole vector goes straight from its
 * register; a part of one through a copy on the stack. (v by address: a
 * vector argument by value draws clang's ABI warning, inline or not.) */
static inline __attribute__((always_inline)) void put_block(float *o, const vec16 *v, int nb,
                                                            int add) {
    if (nb == JB) {
        store16(o, add ? (vec16)load16(o) + *v : *v);
        return;
    }
    float t[JB];
    store16(t, *v);
    for (int k = 0; k < nb; k++) o[k] = add ? o[k] + t[k] : t[k];
}

/* Rows i0 .. i0+R-1 of out (R is 1 or CHAINS), columns j0 .. j0+JB-1
 * (direct_rows), stored as whole vectors when `whole` even where a row is
 * narrower. The sums are named vectors of GCC's extension, stored
 * straight from their registers: kept as an array under `omp simd`, they
 * went to the stack after the taps and were copied out from there, four
 * stores and four loads a block more. */
static inline __attribute__((always_inline)) void direct_block(
    const float *q, int C, int Hq, int Wq, const float *w, size_t wcs, int K, int D, float *out,
    int OW, int add, int i0, int j0, int whole, const int R) {
    vec16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int c = 0; c < C; c++)
        for (int u = 0; u < K; u++) {
            const float *row = q + ((size_t)c * Hq + i0 + u * D) * Wq + j0;
            const float *wr = w + c * wcs + (size_t)u * K;
            for (int v = 0; v < K; v++) {
                const float wv = wr[v], *x = row + v * D;
                a0 += wv * load16(x);
                if (R == 1) continue;
                a1 += wv * load16(x + Wq), a2 += wv * load16(x + 2 * (size_t)Wq);
                a3 += wv * load16(x + 3 * (size_t)Wq);
            }
        }
    const int nb = whole || OW - j0 >= JB ? JB : OW - j0;
    float *o = out + (size_t)i0 * OW + j0;
    put_block(o, &a0, nb, add);
    if (R == 1) return;
    put_block(o + OW, &a1, nb, add), put_block(o + 2 * (size_t)OW, &a2, nb, add);
    put_block(o + 3 * (size_t)OW, &a3, nb, add);
}

/* out (OH, OW) (+)= sum over c < C, u, v < K of w[c*wcs + u*K + v] * q[c, i + u*D, j + v*D],
 * q (C, Hq, Wq) padded so that every block read stays inside. Blocks of
 * JB columns of CHAINS rows, one accumulator vector per row. Written
 * (not added), a row's last block ends at its last column, over columns
 * the block before it also computed (the same sums, in the same order),
 * so that it too is stored as a whole vector; a row narrower than a block
 * is too, where the vector ends inside out: what it puts past the row's
 * end falls on rows after it, which their own stores then overwrite (a
 * 14-wide row stored float by float through the stack cost a quarter to a
 * third of a 96-channel 14x14 depthwise layer's forward). Each output is
 * the sum over c, u, v in that order. */
HEED_WIDE
static void direct_rows(const float *q, int C, int Hq, int Wq, const float *w, size_t wcs, int K,
                        int D, float *out, int OH, int OW, int add) {
    const int last = !add && OW > JB ? OW - JB : -1; /* where the last block starts */
    const int whole_below = add || OW >= JB ? 0 : conv_whole_rows(OH, OW);
    int i0 = 0;
    for (; i0 + CHAINS <= OH; i0 += CHAINS)
        for (int j0 = 0; j0 < OW; j0 += JB)
            direct_block(q, C, Hq, Wq, w, wcs, K, D, out, OW, add, i0,
                         j0 + JB > OW && last >= 0 ? last : j0, i0 + CHAINS <= whole_below,
                         CHAINS);
    for (; i0 < OH; i0++)
        for (int j0 = 0; j0 < OW; j0 += JB)
            direct_block(q, C, Hq, Wq, w, wcs, K, D, out, OW, add, i0,
                         j0 + JB > OW && last >= 0 ? last : j0, i0 < whole_below, 1);
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

/* taps_dot for a 3x3 kernel (the depthwise layers'): all nine taps side by
 * side in named vectors, nine chains, each block of d loaded once for
 * them. One row of taps at a time (taps_dot_block) read d three times and
 * waited on three chains: the weight gradient was 29% of a 48-channel
 * 28x28 depthwise layer's training step on one thread. Each tap's sum is
 * the one taps_dot_block makes, in the same order. */
static inline __attribute__((always_inline)) void taps_dot3(const float *d, size_t ldd,
                                                            const float *r, size_t ldr, int OH,
                                                            int OW, int D, float *dw) {
    vec16 a[9] = {{0}};
    for (int i = 0; i < OH; i++) {
        const float *dr = d + (size_t)i * ldd, *x0 = r + (size_t)i * ldr;
        const float *x1 = x0 + (size_t)D * ldr, *x2 = x1 + (size_t)D * ldr;
        for (int j = 0; j < OW; j += JB) {
            const vec16 g = load16(dr + j);
            a[0] += g * load16(x0 + j), a[1] += g * load16(x0 + j + D);
            a[2] += g * load16(x0 + j + 2 * D), a[3] += g * load16(x1 + j);
            a[4] += g * load16(x1 + j + D), a[5] += g * load16(x1 + j + 2 * D);
            a[6] += g * load16(x2 + j), a[7] += g * load16(x2 + j + D);
            a[8] += g * load16(x2 + j + 2 * D);
        }
    }
    for (int t = 0; t < 9; t++) dw[t] += lanes_sum(&a[t]);
}

/* dw[u*K + v] += sum over (i, j) of d[i, j] r[i + u*D, j + v*D] for every tap,
 * d rows ldd apart, r rows ldr apart, in blocks of JB columns (d's zeros
 * beyond OW make the last block exact); CHAINS taps at a time, then the
 * rest of the row's together (a 3x3 kernel's three: one by one, each
 * waited on its own additions, and the depthwise layer's weight gradient
 * took a third of its backward). Each tap's sum is the same whichever
 * taps run beside it. */
HEED_WIDE
static void taps_dot(const float *d, size_t ldd, const float *r, size_t ldr, int OH, int OW, int K,
                     int D, float *dw) {
    if (K == 3) {
        taps_dot3(d, ldd, r, ldr, OH, OW, D, dw);
        return;
    }
    for (int u = 0; u < K; u++) {
        int v = 0;
        for (; v + CHAINS <= K; v += CHAINS) taps_dot_block(d, ldd, r, ldr, OH, OW, D, u, v, dw, K, CHAINS);
        switch (K - v) { /* CHAINS is 4 */
        case 3: taps_dot_block(d, ldd, r, ldr, OH, OW, D, u, v, dw, K, 3); break;
        case 2: taps_dot_block(d, ldd, r, ldr, OH, OW, D, u, v, dw, K, 2); break;
        case 1: taps_dot_block(d, ldd, r, ldr, OH, OW, D, u, v, dw, K, 1); break;
        }
    }
}

/* dst (C, Hq, Wq) = planes c0 .. c0+C-1 of image n of t (per_image planes
 * of H x W), at offset (P, P), zero around: the padded copies that the
 * stride-1 loops read without bounds. Each float is written once (zeroing
 * the whole planes first, then copying the rows in, was a fifth of a
 * depthwise layer's time at batch 64). The rows by conv_pad_row, inline
 * here, where this function is compiled wide as a whole: three library
 * calls a row (a memset of one float, a memcpy, a memset of a few) had
 * taken 19% of the samples of a training step of a 1x1 convolution and a
 * 48-channel 28x28 depthwise layer at batch 64, and a wide function of
 * its own per row, a call through the loader's choice each, made a
 * 96-channel 14x14 layer 5-9% slower than those calls. */
HEED_WIDE static void pad_planes(const float *t, int per_image, int n, int c0, int C, int H, int W,
                                 int P, int Hq, int Wq, float *dst) {
    for (int c = 0; c < C; c++) {
        const float *src = t + ((size_t)n * per_image + c0 + c) * H * W;
        float *plane = dst + (size_t)c * Hq * Wq;
        memset(plane, 0, (size_t)P * Wq * sizeof(float));
        for (int h = 0; h < H; h++)
            conv_pad_row(plane + (size_t)(P + h) * Wq, src + (size_t)h * W, P, W, Wq);
        memset(plane + (size_t)(P + H) * Wq, 0, (size_t)(Hq - P - H) * Wq * sizeof(float));
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
        pad_planes(x, g->IC, n, gi * g->ICg, g->ICg, g->H, g->W, g->P, Hq, Wq, q);
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
    const int T = conv_pass_threads(g->N, (size_t)g->OC * g->R * g->L);
    const size_t qn = conv_slice(direct1_size(g), T);
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
 * padded by P' (written, not added, when fresh: each plane of dx comes
 * whole from one direct_rows call, so it needs no zeroing first);
 * dW[o, c, u, v] += sum over (i, j) of dy[o, i, j] q[c, i + u*D, j + v*D]
 * with q the padded input (dy read from its own padded copy, whose zeros
 * beyond OW make whole blocks safe to sum). As on the shifted path
 * (conv2d_shifted.c), threads take fixed chunks of images, each chunk
 * summing its own weight-gradient partial; the partials are added in chunk
 * order, so the result does not depend on the thread count. */
static void direct1_backward_image(const geom *g, const float *x, const float *dy, float *dx,
                                   int fresh, int n, const float *wf, float *dw, float *q) {
    const geom t = conv_transposed(g);
    const int K = g->K, D = g->D, KK = K * K;
    const int Hq = g->OH + D * (K - 1), Wq = padded_width(g->OW, K, D);
    const int Pt = t.P, Hd = t.OH + D * (K - 1);
    const int Wd = padded_width(t.OW > g->OW ? t.OW : g->OW, K, D);
    float *d = q + (size_t)g->ICg * Hq * Wq;
    for (int gi = 0; gi < g->G; gi++) {
        pad_planes(x, g->IC, n, gi * g->ICg, g->ICg, g->H, g->W, g->P, Hq, Wq, q);
        pad_planes(dy, g->OC, n, gi * g->OCg, g->OCg, g->OH, g->OW, Pt, Hd, Wd, d);
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
            direct_rows(d, g->OCg, Hd, Wd, wc, (size_t)KK, K, D, dxc, g->H, g->W, !fresh);
        }
    }
}

static heed_status direct1_backward(heed_conv2d *l, const geom *g, const float *x, const float *dy,
                                    float *dx, int fresh) {
    const int KK = g->K * g->K;
    const int chunks = conv_backward_chunks(g, g->N);
    const size_t nw = (size_t)g->OC * g->R;
    const int T = conv_pass_threads(chunks, (size_t)g->OC * g->R * g->L * 2 * (g->N / chunks));
    const size_t per_thread = conv_slice(direct1_size(g) - nw, T); /* the padded copies */
    const size_t ps = conv_slice(nw, T); /* floats from one chunk's partial to the next */
    float *buf;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, nw + ps * chunks + per_thread * T, &buf));
    float *wf = buf, *partial = wf + nw, *copies = partial + ps * chunks;
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
    conv_zero_partials(partial, nw, ps, chunks);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int ch = 0; ch < chunks; ch++) {
        const int t = conv_thread();
        int n0, n1;
        conv_chunk_range(g->N, chunks, ch, &n0, &n1);
        for (int n = n0; n < n1; n++)
            direct1_backward_image(g, x, dy, dx, fresh, n, wf, partial + ch * ps,
                                   copies + t * per_thread);
    }
    conv_add_partials(l->dw, partial, nw, ps, chunks);
    return HEED_OK;
}

heed_status heed_conv_direct_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                     const post *p) {
    if (g->S == 1) return direct1_forward(l, g, x, y, p);
    if (heed_conv_halves_fit(g)) return halves_forward(l, g, x, y, p);
    return phase_forward(l, g, x, y, p);
}

heed_status heed_conv_direct_backward(heed_conv2d *l, const geom *g, const float *x,
                                      const float *dy, float *dx, int fresh) {
    /* direct1_backward pads dy by D*(K-1) - P: padding wider than that
     * (PyTorch allows any) goes to the phase planes, one phase at stride 1. */
    if (g->S == 1 && g->P <= g->D * (g->K - 1)) return direct1_backward(l, g, x, dy, dx, fresh);
    return phase_backward(l, g, x, dy, dx, fresh);
}
