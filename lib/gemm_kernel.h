/* gemm_kernel.h -- private to gemm*.c: what one CPU-specific kernel
 * provides to the blocking driver in gemm.c.
 *
 *   const heed_gemm_kernel *k = &heed_gemm_kernel_avx512;
 *   k->tile(kc, ap, 1, k->mr, bp, k->nr, 8, 48, C, ldc, 1.0f, 0.0f);
 *
 * Packed layouts (the driver owns the buffers):
 *   A micro-panel: kc groups of `mr` floats, op(A)[i0 + r][k0 + k] at
 *                  ap[k * mr + r]; rows past the tile's height are never read.
 *                  A stored M x K (trans_a == 0) may instead be read in
 *                  place: op(A)[i0 + r][k0 + k] at a[r * lda + k].
 *   B micro-panel: kc rows of `w` floats, op(B)[k0 + k][j0 + j] at
 *                  bp[k * w + j], where w is the panel's width rounded up to a
 *                  multiple of vw and the padding columns are zero. When
 *                  trans_b == 0 and the panel width is a multiple of vw, the
 *                  driver may instead pass B itself with row stride ldb.
 *
 * Every kernel computes each element of C with the same sequence of
 * operations whatever the tile it falls in (lanes are independent, no
 * horizontal sums except in `dot`, which is applied per element identically),
 * so results do not depend on how the driver splits C between threads.
 */
#ifndef HEED_GEMM_KERNEL_H
#define HEED_GEMM_KERNEL_H

#include <stddef.h>

#include "gemm_impl.h" /* heed_gemm_rows_post */

typedef struct heed_gemm_kernel {
    const char *name;
    int mr; /* rows of the register tile */
    int nr; /* columns of the register tile, a multiple of vw */
    int vw; /* floats per vector */

    /* C[0..h)[0..w) = alpha * sum_k a[r*ars + k*aks] * b[k*bks + j]
     *                 + beta * C (beta == 0: C is not read),
     * h <= mr, w <= nr; b holds round_up(w, vw) readable columns. A is a
     * packed micro-panel (ars = 1, aks = mr) or read in place (stored M x K:
     * ars = lda, aks = 1). The sum runs k = 0..kc-1 in order, with fused
     * multiply-adds where the ISA has them, the same whatever A's layout; the
     * update is c = fma(alpha, acc, beta * c). */
    void (*tile)(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                 ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha, float beta);

    /* tile, with each value then mapped to act(x * post->a[r] + post->b[r])
     * for row r of the tile (heed_gemm_rows_post, its arrays from the
     * tile's first row) before it is stored: the epilogue in registers,
     * with the same float operations as the function it replaces. NULL in
     * kernels without it. */
    void (*tile_post)(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                      ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha,
                      float beta, const heed_gemm_rows_post *post);

    /* Pack an A micro-panel (h <= mr rows of op(A) from row i0 = 0 of `a`,
     * kc columns). trans: a is stored K x M with leading dimension lda. */
    void (*pack_a)(int kc, int h, const float *a, ptrdiff_t lda, int trans, float *ap, int mr);

    /* Pack a B micro-panel of width w (w <= nr), padded with zero columns to
     * `wp`. trans: b is stored N x K with leading dimension ldb. */
    void (*pack_b)(int kc, int w, int wp, const float *b, ptrdiff_t ldb, int trans, float *bp);

    /* Small M with B stored N x K (trans_b): C[r][j] for r < h <= 8,
     * j < w <= 4, as dot products of the rows a + r*lda (K contiguous
     * floats) with the rows b + j*ldb. Each C[r][j] is summed the same way
     * whatever h and w. */
    void (*dot)(int K, int h, const float *a, ptrdiff_t lda, int w, const float *b, ptrdiff_t ldb,
                float *c, ptrdiff_t ldc, float alpha, float beta);
} heed_gemm_kernel;

extern const heed_gemm_kernel heed_gemm_kernel_generic;
#if defined(__x86_64__) || defined(__i386__)
#define HEED_GEMM_X86 1
extern const heed_gemm_kernel heed_gemm_kernel_avx2;
extern const heed_gemm_kernel heed_gemm_kernel_avx512;
#endif

/* The portable packers, used by kernels that have no faster ones. */
void heed_gemm_pack_a_generic(int kc, int h, const float *a, ptrdiff_t lda, int trans, float *ap,
                              int mr);
void heed_gemm_pack_b_generic(int kc, int w, int wp, const float *b, ptrdiff_t ldb, int trans,
                              float *bp);

#endif
