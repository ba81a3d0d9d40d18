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

/* The widest input row (W) the routines below take: the portable one's
 * column scratch (col) is that many floats. */
#define HEED_MAX3S2_MAX_WIDTH 4096

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

/* The maxima over `rows` rows (first, first + ld, ...) of columns c ..
 * c+15, -inf for columns outside 0 .. W-1: the rows taken in order, as
 * heed_max3s2_row takes them. Masked loads: the lanes outside the row are
 * never read (c may be -1). */
static inline __attribute__((always_inline)) HEED_MAX3S2_TARGET __m512
heed_max3s2_columns(const float *first, size_t ld, int rows, int W, int c) {
    const int lo = c < 0 ? -c : 0, hi = W - c < 16 ? W - c : 16;
    const __mmask16 in = hi > lo ? (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
    const __m512 pad = _mm512_set1_ps(-INFINITY);
    __m512 m = _mm512_mask_loadu_ps(pad, in, first + c);
    for (int r = 1; r < rows; r++)
        m = heed_max3s2_vbeats(_mm512_mask_loadu_ps(pad, in, first + (size_t)r * ld + c), m);
    return m;
}

/* heed_max3s2_row with AVX-512, 16 outputs at a time, the same maxima in
 * the same order (so the same bits). Outputs j .. j+15 read columns 2j-1
 * .. 2j+31: three vectors of column maxima (the third is the next
 * outputs' first), -inf outside the row (padding never beats a pixel, and
 * leaves -inf where a window holds only -inf), from which permutes pick
 * each window's left, middle and right columns. In registers throughout:
 * through a scratch row, each load of a column maximum waited for the
 * masked store before it to reach the cache (AMD forwards no masked
 * store), 60% of the routine's samples. GCC leaves the portable triples
 * scalar, a branch on the data each. */
static inline HEED_MAX3S2_TARGET void heed_max3s2_row_avx512(const float *first, size_t ld, int rows,
                                                      int W, int OW, float *y) {
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    __m512 v0 = heed_max3s2_columns(first, ld, rows, W, -1);
    for (int j = 0; j < OW; j += 16) {
        const __m512 v1 = heed_max3s2_columns(first, ld, rows, W, 2 * j + 15);
        const __m512 v2 = heed_max3s2_columns(first, ld, rows, W, 2 * j + 31);
        const __m512 left = _mm512_permutex2var_ps(v0, evens, v1);
        const __m512 mid = _mm512_permutex2var_ps(v0, odds, v1);
        /* Columns 2j+1 .. 2j+31, odd: the evens of the three shifted by two. */
        const __m512 a = _mm512_castsi512_ps(
            _mm512_alignr_epi32(_mm512_castps_si512(v1), _mm512_castps_si512(v0), 2));
        const __m512 b = _mm512_castsi512_ps(
            _mm512_alignr_epi32(_mm512_castps_si512(v2), _mm512_castps_si512(v1), 2));
        const __m512 right = _mm512_permutex2var_ps(a, evens, b);
        const __mmask16 m = OW - j < 16 ? (__mmask16)((1u << (OW - j)) - 1) : (__mmask16)0xFFFF;
        _mm512_mask_storeu_ps(y + j, m, heed_max3s2_vbeats(right, heed_max3s2_vbeats(mid, left)));
        v0 = v2;
    }
}
#endif

#endif
