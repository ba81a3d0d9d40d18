/* conv2d_phase_impl.h -- internal: an image's zero-padded phase planes,
 * on which a strided convolution is a set of contiguous loops. Used by the
 * few-channel forward (conv2d_few.c) and by the direct loops at strides
 * above 1 (conv2d_direct.c). Dimension letters as in conv2d.c.
 *
 * The input, padded with P zeros around it, is split into S x S phase
 * planes, Wq = ceil((W + 2P) / S) wide: plane (c, a, b) holds padded pixel
 * (r*S + a, s*S + b) at (r, s). Tap (u, v) of output (i, j) reads padded
 * pixel (i*S + u*D, j*S + v*D), which is pixel (i + u*D/S, j + v*D/S) of
 * plane (c, u*D % S, v*D % S). So the output is computed over a flat grid
 * of OH rows of Wq positions, where tap t of position p reads
 * q[p + off[t]]: one contiguous loop for every tap, with no bounds inside
 * (for stride 1 there is one phase, and off[t] = u*D*Wq + v*D in plane c).
 * The Wq - OW positions at each row's end are computed and dropped; in a
 * backward pass they carry zeros. A band of output rows has planes of its
 * own: the rows it reads.
 */
#ifndef HEED_CONV2D_PHASE_IMPL_H
#define HEED_CONV2D_PHASE_IMPL_H

#include "conv2d_impl.h"

/* ---- short rows ---------------------------------------------------------- */

/* Rows of the padded copies are a few dozen floats: copied and padded by
 * whole vectors (the last overlapping the one before, the same floats
 * written twice), where a memcpy or memset call per row cost as much as
 * the row's arithmetic. Inline in functions compiled wide (HEED_WIDE),
 * these are that CPU's vector moves. */
typedef float conv_v16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef float conv_v8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float conv_v4 __attribute__((vector_size(16), aligned(4), may_alias));

#define CONV_MOVE(T, d, s) (*(T *)(void *)(d) = *(const T *)(const void *)(s))

/* dst[0 .. n) = src[0 .. n). */
static inline __attribute__((always_inline)) void conv_copy_floats(float *restrict dst,
                                                                   const float *restrict src,
                                                                   int n) {
    if (n >= 16) {
        int j = 0;
        /* The empty asm keeps GCC from seeing a copy loop and making it a
         * memmove call (one a row: 12% of a 28x28 depthwise layer). */
        for (; j + 16 <= n; j += 16) {
            CONV_MOVE(conv_v16, dst + j, src + j);
            __asm__ volatile("" ::: "memory");
        }
        if (j < n) CONV_MOVE(conv_v16, dst + n - 16, src + n - 16);
    } else if (n >= 8) {
        CONV_MOVE(conv_v8, dst, src), CONV_MOVE(conv_v8, dst + n - 8, src + n - 8);
    } else if (n >= 4) {
        CONV_MOVE(conv_v4, dst, src), CONV_MOVE(conv_v4, dst + n - 4, src + n - 4);
    } else {
        for (int k = 0; k < n; k++) dst[k] = src[k];
    }
}

/* d[0 .. Wq) = P zeros, src[0 .. W), zeros: the zeros as one vector at
 * each end, as wide as the row allows, then the floats copied over them. */
static inline __attribute__((always_inline)) void conv_pad_row(float *restrict d,
                                                               const float *restrict src, int P,
                                                               int W, int Wq) {
    const int tail = Wq - P - W;
    if (Wq >= 16 && P <= 16 && tail <= 16) {
        const conv_v16 z = {0};
        CONV_MOVE(conv_v16, d, &z), CONV_MOVE(conv_v16, d + Wq - 16, &z);
    } else if (Wq >= 8 && P <= 8 && tail <= 8) {
        const conv_v8 z = {0};
        CONV_MOVE(conv_v8, d, &z), CONV_MOVE(conv_v8, d + Wq - 8, &z);
    } else if (Wq >= 4 && P <= 4 && tail <= 4) {
        const conv_v4 z = {0};
        CONV_MOVE(conv_v4, d, &z), CONV_MOVE(conv_v4, d + Wq - 4, &z);
    } else {
        memset(d, 0, P * sizeof(float));
        memset(d + P + W, 0, tail * sizeof(float));
    }
    conv_copy_floats(d + P, src, W);
}

#undef CONV_MOVE

/* ---- phase planes ---------------------------------------------------------- */

/* Grids are whole blocks of this many positions (two vectors of 16). */
#define CONV_PHASE_BLOCK 32

static inline int conv_phase_width(const heed_conv_geom *g) {
    return (g->W + 2 * g->P + g->S - 1) / g->S;
}

/* Rows of a phase plane beyond a band's output rows: the largest tap row shift. */
static inline int conv_phase_halo(const heed_conv_geom *g) { return g->D * (g->K - 1) / g->S; }

/* Phase planes of one group's input channels. */
static inline int conv_phase_count(const heed_conv_geom *g) { return g->ICg * g->S * g->S; }

/* Floats of one phase plane for a band of `rows` output rows. An output
 * position inside the image reads its own plane only; the grid's dropped
 * positions read into the next plane, and past the last one into
 * conv_phase_slack() zeros. */
static inline size_t conv_phase_plane_size(const heed_conv_geom *g, int rows) {
    return (size_t)(rows + conv_phase_halo(g)) * conv_phase_width(g);
}

static inline size_t conv_phase_slack(const heed_conv_geom *g) {
    return (size_t)g->D * (g->K - 1) + CONV_PHASE_BLOCK + 16;
}

/* Floats of a group's phase planes for `rows` output rows, slack included. */
static inline size_t conv_phase_planes_size(const heed_conv_geom *g, int rows) {
    return (size_t)conv_phase_count(g) * conv_phase_plane_size(g, rows) + conv_phase_slack(g);
}

/* Positions of a band's output grid, in whole blocks. */
static inline size_t conv_phase_grid_size(const heed_conv_geom *g, int rows) {
    return ((size_t)rows * conv_phase_width(g) + CONV_PHASE_BLOCK - 1) / CONV_PHASE_BLOCK *
           CONV_PHASE_BLOCK;
}

/* off[t]: where tap t = (c*K + u)*K + v reads, from a grid position, in
 * planes ldq floats apart. */
static inline void conv_phase_tap_offsets(const heed_conv_geom *g, size_t ldq, size_t *off) {
    const int S = g->S, D = g->D, Wq = conv_phase_width(g);
    for (int c = 0, t = 0; c < g->ICg; c++)
        for (int u = 0; u < g->K; u++)
            for (int v = 0; v < g->K; v++, t++) {
                const size_t plane = ((size_t)c * S + u * D % S) * S + v * D % S;
                off[t] = plane * ldq + (size_t)(u * D / S) * Wq + v * D / S;
            }
}

/* The phase planes (ICg, S, S, rows + halo, Wq) of channels c0 ..
 * c0+ICg-1 of image n of x for output rows i0 .. i0+rows-1, with
 * conv_phase_slack() zeros after them: plane (c, a, b) row r holds padded
 * input row (i0 + r)*S + a, every S-th column from b. (conv2d_phase.c) */
void heed_conv_phase_fill(const heed_conv_geom *g, const float *x, int n, int c0, int i0, int rows,
                          float *q);

/* Floats of work space that a whole image's planes take in
 * heed_conv_phase_fill_image and heed_conv_phase_add_back (0 for most). */
size_t heed_conv_phase_image_work(const heed_conv_geom *g);

/* heed_conv_phase_fill(g, x, n, c0, 0, g->OH, q), a whole image's planes,
 * with `work` (heed_conv_phase_image_work floats). At stride 2 on an even
 * width, faster: each channel split into its even and odd columns by one
 * vector loop over the plane (into work), then each plane row placed from
 * its row of either half between zeros. (Row by row, a memcpy into a
 * padded row and a deal of it per row, the short rows' calls cost more
 * than a depthwise layer's arithmetic.) */
void heed_conv_phase_fill_image(const heed_conv_geom *g, const float *x, int n, int c0, float *q,
                                float *work);

/* The reverse for a whole image's planes (i0 = 0, rows = OH), as a
 * backward pass needs it: adds each plane position that is a pixel of
 * the image into that pixel of dx (channels c0 .. c0+ICg-1 of image n),
 * or with `fresh` writes it there, and zeros to the pixels no position
 * holds; the padding's positions are dropped. With `work` as
 * heed_conv_phase_fill_image's, the same way round at stride 2 on an even
 * width: plane rows to the halves, then one loop interleaving them. */
void heed_conv_phase_add_back(const heed_conv_geom *g, const float *q, int n, int c0, float *dx,
                              int fresh, float *work);

/* ---- column halves: stride 2, every tap's column shift in one block ---------- */

/* At stride 2 with an even width, D = 1, an odd K and P = K/2 (MobileNet's
 * strided depthwise layers), a channel's even and odd columns, each a flat
 * (H, W/2) array, serve every tap without phase planes: on a grid of OH
 * rows of W positions (the first OW = W/2 of each kept), tap (u, v) of
 * position p = i*W + j reads pixel (2i + u - P, 2j + v - P), which is
 * p + (u - P)*W/2 of one of K blocks made from the halves (the even or odd
 * half as it is, or shifted by whole columns with zeros where that crosses
 * a row's end). So a channel takes one pass splitting its columns and one
 * masked copy per shifted block, where the phase planes took a padded copy
 * of every plane row (at a 14x14 input, rows of 7: 62% of a depthwise
 * layer's forward). The grid's other half of each row is computed and
 * dropped. (conv2d_phase.c) */
int heed_conv_halves_fit(const heed_conv_geom *g);

/* Floats of one group's blocks (ICg channels); of the grid (whole blocks of
 * CONV_PHASE_BLOCK); of the column masks that heed_conv_halves_masks fills
 * once per call, which every fill then reads. */
size_t heed_conv_halves_size(const heed_conv_geom *g);
size_t heed_conv_halves_grid_size(const heed_conv_geom *g);
size_t heed_conv_halves_masks_size(const heed_conv_geom *g);
void heed_conv_halves_masks(const heed_conv_geom *g, float *masks);

/* off[t] for tap t = (c*K + u)*K + v: where it reads from a grid position. */
void heed_conv_halves_tap_offsets(const heed_conv_geom *g, size_t *off);

/* The blocks of channels c0 .. c0+ICg-1 of image n of x into q. */
void heed_conv_halves_fill(const heed_conv_geom *g, const float *x, int n, int c0,
                           const float *masks, float *q);

/* y (OH, OW) = post(the first OW positions of each of the grid's rows,
 * rows Wq apart) for output channel o (p may be NULL: none). */
void heed_conv_phase_keep_rows(const float *grid, int Wq, float *y, int OH, int OW,
                               const heed_conv_post *p, int o);

/* grid (gn positions, rows Wq apart) = the OH rows of OW floats of src,
 * zeros at every other position (a backward pass's dy on the grid). */
void heed_conv_phase_lay_rows(const float *src, int OH, int OW, float *grid, int Wq, size_t gn);

#endif
