/* gemm_impl.h -- the matrix product with B given by its rows' addresses
 * (not installed; for the convolutions).
 *
 *   // C (M x N) = A (M x K, row-major) * B, row k of B at brows[k][0 .. N)
 *   heed_gemm_rows(M, N, K, 1.0f, A, K, brows, 0.0f, C, N);
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

#include "error.h"

heed_status heed_gemm_rows(int M, int N, int K, float alpha, const float *A, int lda,
                           const float *const *brows, float beta, float *C, int ldc);

#endif
