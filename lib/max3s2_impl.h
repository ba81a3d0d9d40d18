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

#endif
