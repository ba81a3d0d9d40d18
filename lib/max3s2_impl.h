/* max3s2_impl.h -- internal: one output row of the 3 x 3, stride 2,
 * padding 1 max pool (ResNet's stem pool), shared by the pool layer
 * (pool2d.c) and the stem convolution that pools its own output in
 * inference (conv2d_few.c), so that the two give the same bits.
 *
 * A window's maximum does not depend on the order its pixels are taken in
 * (a NaN wins whatever comes after), so the row takes the maxima of its
 * input rows column by column, then of each column triple; the first loop
 * vectorizes.
 */
#ifndef HEED_MAX3S2_IMPL_H
#define HEED_MAX3S2_IMPL_H

#include <stddef.h>

/* The widest input row (W) the routines below take, and the floats of
 * column scratch (col) they need for it. */
#define HEED_MAX3S2_MAX_WIDTH 4096
#define HEED_MAX3S2_COL_FLOATS (HEED_MAX3S2_MAX_WIDTH + 64)

/* PyTorch's rule: NaN is a maximum, and otherwise only a strictly larger
 * value replaces the current one, so ties keep the first. Written with |
 * rather than || so that loops using it compile to vector selects. */
static inline int heed_max_beats(float v, float best) { return (v > best) | (v != v); }

/* y[j], j < OW = floor((W - 1) / 2) + 1: the maximum of the `rows` (1..3)
 * input rows first, first + ld, ... over columns 2j-1 .. 2j+1 (clipped to
 * the row), through col (W floats of scratch). */
static inline __attribute__((always_inline)) void heed_max3s2_row(const float *restrict first,
                                                                  size_t ld, int rows, int W,
                                                                  int OW, float *restrict col,
                                                                  float *restrict y) {
    for (int j = 0; j < W; j++) col[j] = first[j];
    for (int r = 1; r < rows; r++) {
        const float *restrict b = first + (size_t)r * ld;
        for (int j = 0; j < W; j++) col[j] = heed_max_beats(b[j], col[j]) ? b[j] : col[j];
    }
    /* Window j covers columns 2j-1 .. 2j+1, clipped to the row. */
    y[0] = col[0];
    if (W > 1) y[0] = heed_max_beats(col[1], y[0]) ? col[1] : y[0];
    const int jin = (W - 2) / 2 + 1 < OW ? (W - 2) / 2 + 1 : OW; /* windows with 2j+1 < W */
    for (int j = 1; j < jin; j++) {
        float m = col[2 * j - 1], v = col[2 * j];
        m = heed_max_beats(v, m) ? v : m;
        v = col[2 * j + 1], m = heed_max_beats(v, m) ? v : m;
        y[j] = m;
    }
    for (int j = jin > 1 ? jin : 1; j < OW; j++) {
        float m = col[2 * j - 1];
        if (2 * j < W) m = heed_max_beats(col[2 * j], m) ? col[2 * j] : m;
        y[j] = m;
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#include <math.h>

#define HEED_MAX3S2_AVX512 1
#define HEED_MAX3S2_TARGET __attribute__((target("avx512f,avx2,avx,fma")))

/* m, or v where v beats it, lane by lane. */
static inline __attribute__((always_inline)) HEED_MAX3S2_TARGET __m512 heed_max3s2_vbeats(__m512 v,
                                                                                         __m512 m) {
    const __mmask16 take =
        _mm512_cmp_ps_mask(m, v, _CMP_LT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(take, m, v);
}

/* Readies col for heed_max3s2_row_avx512 on rows W wide: -inf on either
 * side of where the column maxima go (col[1 .. W]). Once for any number
 * of rows: those only write col[1 .. W]. */
static inline void heed_max3s2_col_init(float *col, int W) {
    col[0] = -INFINITY;
    for (int j = W + 1; j <= W + 49; j++) col[j] = -INFINITY; /* the reads reach W + 32 */
}

/* heed_max3s2_row with AVX-512, 16 outputs at a time, the same maxima in
 * the same order (so the same bits): the column maxima go to col[1 ..
 * W] with -inf on either side (heed_max3s2_col_init: padding never beats
 * a pixel, and leaves -inf where a window holds only -inf), so that every
 * window reads columns 2j-1, 2j, 2j+1, picked out of two vectors by
 * permutes. GCC leaves the portable triples scalar, a branch on the data
 * each. */
static inline HEED_MAX3S2_TARGET void heed_max3s2_row_avx512(const float *first, size_t ld, int rows,
                                                      int W, int OW, float *col, float *y) {
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int r = 0; r < rows; r++) {
        const float *a = first + (size_t)r * ld;
        for (int j = 0; j < W; j += 16) {
            const __mmask16 m = W - j < 16 ? (__mmask16)((1u << (W - j)) - 1) : (__mmask16)0xFFFF;
            const __m512 v = _mm512_maskz_loadu_ps(m, a + j);
            _mm512_mask_storeu_ps(col + 1 + j, m,
                                  r == 0 ? v : heed_max3s2_vbeats(v, _mm512_loadu_ps(col + 1 + j)));
        }
    }
    for (int j = 0; j < OW; j += 16) {
        /* Columns 2j-1 .. 2j+30 sit at col[2j] .. col[2j+31]. */
        const __m512 lo = _mm512_loadu_ps(col + 2 * j), hi = _mm512_loadu_ps(col + 2 * j + 16);
        const __m512 left = _mm512_permutex2var_ps(lo, evens, hi);
        const __m512 mid = _mm512_permutex2var_ps(lo, odds, hi);
        const __m512 right = _mm512_permutex2var_ps(_mm512_loadu_ps(col + 2 * j + 2), evens,
                                                    _mm512_loadu_ps(col + 2 * j + 18));
        const __mmask16 m = OW - j < 16 ? (__mmask16)((1u << (OW - j)) - 1) : (__mmask16)0xFFFF;
        _mm512_mask_storeu_ps(y + j, m, heed_max3s2_vbeats(right, heed_max3s2_vbeats(mid, left)));
    }
}
#endif

#endif
