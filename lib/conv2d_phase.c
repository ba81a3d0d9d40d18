/* conv2d_phase.c -- an image to its zero-padded phase planes and back, or
 * (a stride-2 forward) to its column halves, and an output plane from a
 * grid of positions and back (conv2d_phase_impl.h describes the layouts).
 * Rows are short (a few dozen floats) and many: each is padded in a row
 * of scratch, then dealt out every S-th float to its S planes, in one
 * vector loop over pairs at stride 2; at stride 1 copied between its
 * padding. (A loop per plane reading every S-th float
 * of the image, its bounds worked out per plane, took MobileNet's strided
 * depthwise layer longer than its arithmetic. Tried on this AMD EPYC, for
 * that layer's forward at batch 64: masked AVX-512 loads straight from the
 * image with a permute per plane, 4.9 ms against 3.8; a loop reading
 * every other float straight from the image, 2.1 against 1.8.) A whole
 * image of even width at stride 2, as the direct loops fill it, goes
 * faster still by halves: each channel split into its even and odd
 * columns by one loop over the plane, the plane rows then placed from
 * those halves, no call made per row (heed_conv_phase_fill_image: a
 * 64-channel 28x28 depthwise layer's forward at batch 64 on one thread
 * 1.83-1.89 -> 1.25-1.28 ms).
 */
#include <stdint.h>
#include <string.h>

#include "conv2d_phase_impl.h"
#include "wide.h"

/* Rows whose padded copy fits on the stack; wider ones go column by column. */
#define ROW_MAX 4096

/* planes[b][s] = row[s*S + b] for s < Wq, b < S (the planes ld apart). */
HEED_WIDE static void deal_row(const float *restrict row, int S, int Wq, float *restrict planes,
                               size_t ld) {
    if (S == 2) {
        float *restrict even = planes, *restrict odd = planes + ld;
        for (int s = 0; s < Wq; s++) even[s] = row[2 * s], odd[s] = row[2 * s + 1];
        return;
    }
    for (int b = 0; b < S; b++)
        for (int s = 0; s < Wq; s++) planes[b * ld + s] = row[s * S + b];
}

/* row[s*S + b] = planes[b][s]: deal_row's reverse. */
HEED_WIDE static void gather_row(const float *restrict planes, size_t ld, int S, int Wq,
                                 float *restrict row) {
    if (S == 2) {
        const float *restrict even = planes, *restrict odd = planes + ld;
        for (int s = 0; s < Wq; s++) row[2 * s] = even[s], row[2 * s + 1] = odd[s];
        return;
    }
    for (int b = 0; b < S; b++)
        for (int s = 0; s < Wq; s++) row[s * S + b] = planes[b * ld + s];
}

/* dst = src, or dst += src. */
HEED_WIDE static void put_row(float *restrict dst, const float *restrict src, int n, int add) {
    if (add)
        for (int i = 0; i < n; i++) dst[i] += src[i];
    else
        memcpy(dst, src, n * sizeof(float));
}

void heed_conv_phase_fill(const heed_conv_geom *g, const float *x, int n, int c0, int i0, int rows,
                          float *q) {
    const int S = g->S, W = g->W, P = g->P, Wq = conv_phase_width(g);
    const int nr = rows + conv_phase_halo(g), padded = Wq * S;
    const size_t ldq = conv_phase_plane_size(g, rows);
    memset(q + conv_phase_count(g) * ldq, 0, conv_phase_slack(g) * sizeof(float));
    float row[ROW_MAX];
    if (padded <= ROW_MAX) memset(row, 0, padded * sizeof(float));
    for (int c = 0; c < g->ICg; c++) {
        const float *xc = x + ((size_t)n * g->IC + c0 + c) * g->H * W;
        for (int a = 0; a < S; a++)
            for (int r = 0; r < nr; r++) {
                float *planes = q + ((size_t)(c * S + a) * S * ldq) + (size_t)r * Wq;
                const int h = (i0 + r) * S + a - P;
                if (h < 0 || h >= g->H) {
                    for (int b = 0; b < S; b++) memset(planes + b * ldq, 0, Wq * sizeof(float));
                    continue;
                }
                const float *src = xc + (size_t)h * W;
                if (S == 1) { /* one plane: the row between its padding */
                    memset(planes, 0, P * sizeof(float));
                    memcpy(planes + P, src, W * sizeof(float));
                    memset(planes + P + W, 0, (Wq - P - W) * sizeof(float));
                    continue;
                }
                if (padded <= ROW_MAX) { /* the padding on either side stays zero */
                    memcpy(row + P, src, W * sizeof(float));
                    deal_row(row, S, Wq, planes, ldq);
                    continue;
                }
                for (int b = 0; b < S; b++)
                    for (int s = 0; s < Wq; s++) {
                        const int col = s * S + b - P;
                        planes[b * ldq + s] = col >= 0 && col < W ? src[col] : 0.0f;
                    }
            }
    }
}

/* Where plane (a, b) of channel c starts at stride 2 (phase a of the
 * rows, b of the columns), planes ldq apart in heed_conv_phase_fill's
 * order. */
static inline size_t plane2_at(size_t ldq, int c, int a, int b) {
    return ((size_t)(c * 2 + a) * 2 + b) * ldq;
}

/* Whether a whole image's planes go by halves: stride 2, an even width. */
static int by_halves(const heed_conv_geom *g) { return g->S == 2 && g->W % 2 == 0; }

size_t heed_conv_phase_image_work(const heed_conv_geom *g) {
    return by_halves(g) ? (size_t)g->H * g->W : 0;
}

/* e[i] = x[2i], o[i] = x[2i + 1] for i < half. */
static inline __attribute__((always_inline)) void split_columns(const float *restrict x, size_t half,
                                                                float *restrict e,
                                                                float *restrict o) {
    for (size_t i = 0; i < half; i++) e[i] = x[2 * i], o[i] = x[2 * i + 1];
}

/* Where plane column s of phase b lies in the halves: in the odd half
 * or the even one, from column start of it, after lead zeros, len columns. */
typedef struct {
    int odd, lead, start, len;
} split_cols;

static split_cols split_at(const heed_conv_geom *g, int b) {
    const int W2 = g->W / 2, Wq = conv_phase_width(g);
    /* Plane column s holds padded column 2s + b, image column
     * 2(s + m) + odd: column s + m of the odd or even half. */
    const int t = b - g->P, odd = t % 2 != 0, m = (t - odd) / 2;
    const int lead = m < 0 ? (-m < Wq ? -m : Wq) : 0, start = m > 0 ? m : 0;
    const int fit = Wq - lead < W2 - start ? Wq - lead : W2 - start;
    return (split_cols){odd, lead, start, fit > 0 ? fit : 0};
}

HEED_WIDE static void fill_halves(const heed_conv_geom *g, const float *x, int n, int c0, float *q,
                                  float *eo) {
    const int W2 = g->W / 2, Wq = conv_phase_width(g), nr = g->OH + conv_phase_halo(g);
    const size_t ldq = conv_phase_plane_size(g, g->OH), half = (size_t)g->H * W2;
    float *e = eo, *o = eo + half;
    memset(q + conv_phase_count(g) * ldq, 0, conv_phase_slack(g) * sizeof(float));
    for (int c = 0; c < g->ICg; c++) {
        split_columns(x + ((size_t)n * g->IC + c0 + c) * g->H * g->W, half, e, o);
        for (int b = 0; b < 2; b++) {
            const split_cols at = split_at(g, b);
            const float *cols = (at.odd ? o : e) + at.start;
            for (int a = 0; a < 2; a++) {
                float *plane = q + plane2_at(ldq, c, a, b);
                for (int r = 0; r < nr; r++) {
                    const int h = r * 2 + a - g->P;
                    float *d = plane + (size_t)r * Wq;
                    if (h < 0 || h >= g->H)
                        memset(d, 0, Wq * sizeof(float));
                    else
                        conv_pad_row(d, cols + (size_t)h * W2, at.lead, at.len, Wq);
                }
            }
        }
    }
}

HEED_WIDE static void add_back_halves(const heed_conv_geom *g, const float *q, int n, int c0,
                                      float *dx, int fresh, float *eo) {
    const int W2 = g->W / 2, Wq = conv_phase_width(g), nr = g->OH + conv_phase_halo(g);
    const size_t ldq = conv_phase_plane_size(g, g->OH), half = (size_t)g->H * W2;
    float *e = eo, *o = eo + half;
    /* The rows some plane row holds: 0 .. covered-1 (as in the general
     * add_back); each of their pixels is held by exactly one position
     * (a width of 2 W2 leaves no column out), so the halves are whole. */
    const int reach = 2 * nr - g->P, covered = reach < 0 ? 0 : reach < g->H ? reach : g->H;
    for (int c = 0; c < g->ICg; c++) {
        for (int b = 0; b < 2; b++) {
            const split_cols at = split_at(g, b);
            float *cols = (at.odd ? o : e) + at.start;
            for (int a = 0; a < 2; a++) {
                const float *plane = q + plane2_at(ldq, c, a, b);
                for (int r = 0; r < nr; r++) {
                    const int h = r * 2 + a - g->P;
                    if (h >= 0 && h < g->H)
                        conv_copy_floats(cols + (size_t)h * W2, plane + (size_t)r * Wq + at.lead,
                                         at.len);
                }
            }
        }
        float *restrict dxc = dx + ((size_t)n * g->IC + c0 + c) * g->H * g->W;
        const size_t pairs = (size_t)covered * W2;
        if (fresh)
            for (size_t i = 0; i < pairs; i++) dxc[2 * i] = e[i], dxc[2 * i + 1] = o[i];
        else
            for (size_t i = 0; i < pairs; i++) dxc[2 * i] += e[i], dxc[2 * i + 1] += o[i];
        if (fresh && covered < g->H)
            memset(dxc + (size_t)covered * g->W, 0, (size_t)(g->H - covered) * g->W * sizeof(float));
    }
}

void heed_conv_phase_fill_image(const heed_conv_geom *g, const float *x, int n, int c0, float *q,
                                float *work) {
    if (by_halves(g))
        fill_halves(g, x, n, c0, q, work);
    else
        heed_conv_phase_fill(g, x, n, c0, 0, g->OH, q);
}

void heed_conv_phase_add_back(const heed_conv_geom *g, const float *q, int n, int c0, float *dx,
                              int fresh, float *work) {
    if (by_halves(g)) {
        add_back_halves(g, q, n, c0, dx, fresh, work);
        return;
    }
    const int S = g->S, W = g->W, P = g->P, Wq = conv_phase_width(g);
    const int nr = g->OH + conv_phase_halo(g), padded = Wq * S;
    const size_t ldq = conv_phase_plane_size(g, g->OH);
    float row[ROW_MAX];
    for (int c = 0; c < g->ICg; c++) {
        float *dxc = dx + ((size_t)n * g->IC + c0 + c) * g->H * W;
        for (int a = 0; a < S; a++)
            for (int r = 0; r < nr; r++) {
                const int h = r * S + a - P;
                if (h < 0 || h >= g->H) continue;
                const float *planes = q + ((size_t)(c * S + a) * S * ldq) + (size_t)r * Wq;
                float *dst = dxc + (size_t)h * W;
                if (padded <= ROW_MAX) {
                    gather_row(planes, ldq, S, Wq, row);
                    put_row(dst, row + P, W, !fresh);
                    continue;
                }
                for (int b = 0; b < S; b++)
                    for (int s = 0; s < Wq; s++) {
                        const int col = s * S + b - P;
                        if (col < 0 || col >= W) continue;
                        dst[col] = fresh ? planes[b * ldq + s] : dst[col] + planes[b * ldq + s];
                    }
            }
        /* Rows below the planes' last (that no tap reads) get nothing. */
        const int below = nr * S - P > 0 ? nr * S - P : 0;
        if (fresh && below < g->H)
            memset(dxc + (size_t)below * W, 0, (size_t)(g->H - below) * W * sizeof(float));
    }
}

/* ---- column halves (conv2d_phase_impl.h) ------------------------------------ */

/* Bits of a float, for the masked copies: a select that cannot turn a NaN
 * or an infinity into anything else, as multiplying by 0 would. */
typedef uint32_t conv_bits __attribute__((may_alias));

int heed_conv_halves_fit(const heed_conv_geom *g) {
    return g->S == 2 && g->D == 1 && g->K % 2 == 1 && g->P == g->K / 2 && g->W % 2 == 0;
}

/* Tap column v reads image column 2j + d, d = v - P: column j + m of the
 * even half (d even) or the odd one (d odd), m = floor(d / 2). */
static int tap_half(const heed_conv_geom *g, int v) { return (v - g->P) & 1; }

static int tap_columns(const heed_conv_geom *g, int v) {
    const int d = v - g->P;
    return (d - (d & 1)) / 2;
}

/* A channel's blocks: the even half, the odd half, then one per tap column
 * whose m is not 0, in order of v (K of them for K >= 3). */
static int halves_blocks(const heed_conv_geom *g) { return g->K < 2 ? 2 : g->K; }

static int tap_block(const heed_conv_geom *g, int v) {
    if (tap_columns(g, v) == 0) return tap_half(g, v);
    int b = 2;
    for (int k = 0; k < v; k++) b += tap_columns(g, k) != 0;
    return b;
}

/* A block: `lead` zeros (the P rows above the image that the top taps
 * read, also what a shift of the columns reads before the first pixel),
 * the H x W/2 pixels, then zeros past the last float that a tap reads from
 * the grid's last position or a shifted copy from the last pixel. */
static size_t halves_lead(const heed_conv_geom *g) { return (size_t)g->P * (g->W / 2); }

static size_t halves_pixels(const heed_conv_geom *g) { return (size_t)g->H * (g->W / 2); }

size_t heed_conv_halves_grid_size(const heed_conv_geom *g) {
    return ((size_t)g->OH * g->W + CONV_PHASE_BLOCK - 1) / CONV_PHASE_BLOCK * CONV_PHASE_BLOCK;
}

static size_t halves_block(const heed_conv_geom *g) {
    const size_t px = halves_pixels(g), gn = heed_conv_halves_grid_size(g);
    const size_t n = 2 * halves_lead(g) + (px > gn ? px : gn) + 1;
    return (n + 15) / 16 * 16;
}

size_t heed_conv_halves_size(const heed_conv_geom *g) {
    return (size_t)g->ICg * halves_blocks(g) * halves_block(g);
}

size_t heed_conv_halves_masks_size(const heed_conv_geom *g) {
    return (size_t)(halves_blocks(g) - 2) * halves_pixels(g);
}

void heed_conv_halves_masks(const heed_conv_geom *g, float *masks) {
    const int W2 = g->W / 2;
    const size_t px = halves_pixels(g);
    for (int v = 0; v < g->K; v++) {
        const int m = tap_columns(g, v);
        if (m == 0) continue;
        conv_bits *b = (conv_bits *)masks + (size_t)(tap_block(g, v) - 2) * px;
        for (size_t k = 0; k < px; k++) {
            const int j = (int)(k % W2) + m; /* the column read, in the pixel's row */
            b[k] = j >= 0 && j < W2 ? ~(uint32_t)0 : 0;
        }
    }
}

void heed_conv_halves_tap_offsets(const heed_conv_geom *g, size_t *off) {
    const size_t L = halves_block(g), lead = halves_lead(g);
    const int B = halves_blocks(g), W2 = g->W / 2;
    for (int c = 0, t = 0; c < g->ICg; c++)
        for (int u = 0; u < g->K; u++)
            for (int v = 0; v < g->K; v++, t++)
                off[t] = ((size_t)c * B + tap_block(g, v)) * L + lead - (size_t)g->P * W2 +
                         (size_t)u * W2;
}

/* dst[k] = src[k] where the mask is set, else 0, for k < n. */
static inline __attribute__((always_inline)) void masked_copy(const conv_bits *restrict src,
                                                              const conv_bits *restrict mask,
                                                              conv_bits *restrict dst, size_t n) {
    for (size_t k = 0; k < n; k++) dst[k] = src[k] & mask[k];
}

/* Writes the pixels only: the zeros around them in each block are the
 * caller's to write, once for all the fills of a call. */
HEED_WIDE void heed_conv_halves_fill(const heed_conv_geom *g, const float *x, int n, int c0,
                                     const float *masks, float *q) {
    const size_t lead = halves_lead(g), px = halves_pixels(g), L = halves_block(g);
    const int B = halves_blocks(g);
    for (int c = 0; c < g->ICg; c++) {
        float *blocks = q + (size_t)c * B * L, *e = blocks + lead, *o = blocks + L + lead;
        split_columns(x + ((size_t)n * g->IC + c0 + c) * g->H * g->W, px, e, o);
        for (int v = 0; v < g->K; v++) {
            const int m = tap_columns(g, v), b = tap_block(g, v);
            if (m != 0)
                masked_copy((const conv_bits *)((tap_half(g, v) ? o : e) + m),
                            (const conv_bits *)masks + (size_t)(b - 2) * px,
                            (conv_bits *)(blocks + (size_t)b * L + lead), px);
        }
    }
}

HEED_WIDE void heed_conv_phase_lay_rows(const float *src, int OH, int OW, float *grid, int Wq,
                                        size_t gn) {
    for (int i = 0; i < OH; i++) {
        const float *restrict s = src + (size_t)i * OW;
        float *restrict d = grid + (size_t)i * Wq;
        for (int j = 0; j < OW; j++) d[j] = s[j];
        for (int j = OW; j < Wq; j++) d[j] = 0.0f;
    }
    for (size_t p = (size_t)OH * Wq; p < gn; p++) grid[p] = 0.0f;
}

/* dst[j] = post(src[j]) for j < n: heed_conv_post_rows' epilogue, from src to
 * dst. (A copy then the epilogue in place compiled to scalar code here:
 * W1's first layer 8.2 -> 11.7 us.) */
static inline void post_run(const float *restrict src, float *restrict dst, int n, float a, float c,
                            int act) {
    if (act == HEED_FUSE_RELU)
        for (int j = 0; j < n; j++) dst[j] = heed_fused_act(src[j] * a + c, HEED_FUSE_RELU);
    else if (act == HEED_FUSE_HARDSWISH)
        for (int j = 0; j < n; j++) dst[j] = heed_fused_act(src[j] * a + c, HEED_FUSE_HARDSWISH);
    else
        for (int j = 0; j < n; j++) dst[j] = src[j] * a + c;
}

/* post_run for 16 floats. */
static inline void post_vector16(const float *restrict src, float *restrict dst, float a, float c,
                               int act) {
    float v[16];
#pragma omp simd
    for (int j = 0; j < 16; j++) v[j] = src[j] * a + c;
    if (act == HEED_FUSE_RELU)
#pragma omp simd
        for (int j = 0; j < 16; j++) dst[j] = heed_fused_act(v[j], HEED_FUSE_RELU);
    else if (act == HEED_FUSE_HARDSWISH)
#pragma omp simd
        for (int j = 0; j < 16; j++) dst[j] = heed_fused_act(v[j], HEED_FUSE_HARDSWISH);
    else
#pragma omp simd
        for (int j = 0; j < 16; j++) dst[j] = v[j];
}

/* Rows are a few dozen floats: whole vectors, the
 * last one overlapping the one before (the same values written twice),
 * where a loop's scalar remainder, or a memcpy call per row, cost more
 * than the convolution. */
HEED_WIDE void heed_conv_phase_keep_rows(const float *grid, int Wq, float *y, int OH, int OW,
                                         const heed_conv_post *p, int o) {
    const float a = p && p->a ? p->a[o] : 1.0f, c = p && p->c ? p->c[o] : 0.0f;
    const int act = p ? p->act : 0;
    if (OW < 16) {
        /* Narrow rows: whole vectors where conv_whole_rows allows (their
         * reads stay inside the grid too, its rows being Wq >= OW apart),
         * the last rows float by float. (A 7-wide row float by float was a
         * fifth of a strided depthwise layer's forward on 14x14 inputs.) */
        const int whole = conv_whole_rows(OH, OW);
        int i = 0;
        for (; i < whole; i++)
            post_vector16(grid + (size_t)i * Wq, y + (size_t)i * OW, a, c, act);
        for (; i < OH; i++) post_run(grid + (size_t)i * Wq, y + (size_t)i * OW, OW, a, c, act);
        return;
    }
    for (int i = 0; i < OH; i++) {
        const float *src = grid + (size_t)i * Wq;
        float *dst = y + (size_t)i * OW;
        for (int j = 0; j + 16 <= OW; j += 16) post_vector16(src + j, dst + j, a, c, act);
        if (OW % 16) post_vector16(src + OW - 16, dst + OW - 16, a, c, act);
    }
}

