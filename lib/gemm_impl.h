/* gemm_impl.h -- the matrix product with an epilogue, and with B given by
 * its rows' addresses (not installed; for the convolutions).
 *
 *   // C (M x N) = A (M x K, row-major) * B, row k of B at brows[k][0 .. N)
 *   heed_gemm_rows(M, N, K, 1.0f, A, K, brows, 0.0f, C, N, NULL);
 *   // the same with ep->fn applied to C's blocks as their sums end
 *   heed_gemm_post(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, &ep);
 *
 * A convolution's im2col matrix is the input's shifted copies repeated: row
 * (c, u, v) of it is row (c, v) of one copy, u rows of the image further
 * on. Given those addresses the product reads the copies in place of the
 * matrix, which is K times larger. The operations are heed_gemm's for the
 * same A and B (B is always packed, which changes no sum), so the results
 * equal heed_gemm's on the matrix bit for bit, whatever the thread count.
 * Errors as heed_gemm's. */
#ifndef HEED_GEMM_IMPL_H
#define HEED_GEMM_IMPL_H

#include <stddef.h>

#include "error.h"

/* A per-row affine map and activation (heed_gemm_epilogue's rows). */
typedef struct heed_gemm_rows_post {
    const float *a, *b;
    int act;
} heed_gemm_rows_post;

/* A pass over C run by the product itself: fn(ctx, c, ldc, row0, rows,
 * cols) on each block of C (rows row0 .. row0+rows-1 of the product, c
 * pointing at the block's first element), once each block holds its final
 * value, on the thread that computed it, while the block is still in that
 * core's cache. The blocks cover C exactly once. A convolution's epilogue
 * (bias, batch norm, relu) run as a separate pass after the product read C
 * back from L3 when the product's operands had pushed it out of L2 (4% of
 * a 28x28 ResNet-18 layer on two threads). */
typedef struct heed_gemm_epilogue {
    void (*fn)(const void *ctx, float *c, ptrdiff_t ldc, int row0, int rows, int cols);
    const void *ctx;
    /* Optional (rows set): fn's effect written out as c = act(c * a[i] +
     * b[i]) for row i of the product (a NULL: 1, b NULL: 0; act a
     * HEED_FUSE_* code, layer.h), computed in that order. A kernel that
     * can (the AVX-512 one) applies it to a tile in registers before the
     * tile's store, instead of fn reading back the tile just stored (on
     * this AMD EPYC fn's first load of it took 58% of fn's samples, waiting
     * on those stores). The caller decides whether to offer it. */
    const heed_gemm_rows_post *rows;
} heed_gemm_epilogue;

/* heed_gemm, then ep (or nothing, ep == NULL) on every block of C. */
heed_status heed_gemm_post(int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C,
                           int ldc, const heed_gemm_epilogue *ep);

heed_status heed_gemm_rows(int M, int N, int K, float alpha, const float *A, int lda,
                           const float *const *brows, float beta, float *C, int ldc,
                           const heed_gemm_epilogue *ep);

#endif
