/* gemm.h -- the one matrix-product kernel every convolution and fully
 * connected layer runs on.
 *
 *   // C (M x N) = A (M x K) * B (K x N), row-major, no transposes
 *   heed_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
 *
 * Row-major: C[i*ldc + j] = alpha * sum_k op(A)[i][k] * op(B)[k][j]
 *                           + beta * C[i*ldc + j],
 * where op(A) is A (M x K, lda >= K) or, with trans_a, A^T for A stored
 * K x M (lda >= M); likewise op(B) is B (K x N, ldb >= N) or B^T for B
 * stored N x K (ldb >= K). beta == 0 means C is overwritten (its old
 * contents, even NaN, are ignored). M, N or K of 0 is allowed (K == 0 scales
 * C by beta).
 *
 * heed_gemm picks the fastest kernel for this CPU at run time (AVX-512,
 * AVX2+FMA, or portable C; the environment variable HEED_GEMM_KERNEL=
 * avx512|avx2|generic forces one the CPU supports, and the few-channel
 * convolutions' register blocks follow it) and runs OpenMP threads
 * across blocks of C, never across K: results are bit-identical whatever
 * the thread count. Operands are read in place where that pays (A stored
 * M x K always; B stored K x N when A's rows for one K slice stay in
 * cache); products too small to share run on one thread.
 * heed_gemm_ref is the plain triple loop the tests compare it against.
 * Packing buffers are allocated once per thread and kept (grown, never
 * shrunk). A, B and C must not overlap.
 */
#ifndef HEED_GEMM_H
#define HEED_GEMM_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns HEED_ERR_NOMEM if the packing buffers cannot be allocated (C is
 * then partly written), HEED_ERR_ARG for a negative size or a leading
 * dimension smaller than the row it must hold (caller bugs). */
heed_status heed_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc);

void heed_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The kernel heed_gemm uses on this CPU: "avx512", "avx2" or "generic". */
const char *heed_gemm_kernel_name(void);

/* Forces the kernel for all later calls in this process ("avx512", "avx2",
 * "generic"); NULL restores the default choice. HEED_ERR_ARG if the name is
 * unknown or this CPU lacks the instructions (the kernel is unchanged). Not
 * meant to race with running heed_gemm calls; for tests and benchmarks. */
heed_status heed_gemm_set_kernel(const char *name);

/* 1 if heed_gemm_set_kernel(name) would succeed on this CPU. */
int heed_gemm_kernel_available(const char *name);

#ifdef __cplusplus
}
#endif

#endif
