/* gemm_avx2.c -- the AVX2+FMA kernel for gemm.c: a 6 x 16 register tile
 * (12 ymm accumulators, 2 ymm of B, 1 broadcast of A: 15 of the 16 ymm
 * registers) and a dot-product kernel for 1..8 rows (4 at a time) against
 * B stored transposed. Packing uses the portable packers.
 *
 * Every function carries a target attribute (the library is built without
 * -march flags) and is only reached after gemm.c has checked the CPU.
 */
#include "gemm_kernel.h"

#ifdef HEED_GEMM_X86

#include <immintrin.h>
#include <math.h>

#define TARGET __attribute__((target("avx2,avx,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { MR = 6, NV = 2, VW = 8, NR = NV * VW };

/* Lane masks for vmaskmovps: the first n lanes set. */
static const int lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

INLINE __m256i first_lanes(int n) { return _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - n)); }

INLINE void tile_hv(int kc, const float *restrict ap, ptrdiff_t ars, ptrdiff_t aks,
                    const float *restrict b, ptrdiff_t bks, const int H, const int V, int wlast,
                    float *restrict c, ptrdiff_t ldc, const volatile float *ab) {
    __m256 acc[MR][NV];
#pragma GCC unroll 6
    for (int r = 0; r < H; r++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) acc[r][v] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        __m256 bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
        for (int r = 0; r < H; r++) {
            __m256 a = _mm256_broadcast_ss(ap + r * ars);
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(a, bv[v], acc[r][v]);
        }
        ap += aks;
        b += bks;
    }
    /* alpha and beta come through memory: held in registers across the k
     * loop they would push two accumulators out of the 16 ymm registers. */
    const float alpha = ab[0], beta = ab[1];
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const __m256i m = first_lanes(wlast);
#pragma GCC unroll 6
    for (int r = 0; r < H; r++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) {
            float *cp = c + r * ldc + 8 * v;
            const int full = v < V - 1 || wlast == 8;
            __m256 x = _mm256_mul_ps(va, acc[r][v]);
            if (beta != 0.0f) {
                __m256 old = full ? _mm256_loadu_ps(cp) : _mm256_maskload_ps(cp, m);
                x = _mm256_fmadd_ps(va, acc[r][v], _mm256_mul_ps(vb, old));
            }
            if (full)
                _mm256_storeu_ps(cp, x);
            else
                _mm256_maskstore_ps(cp, m, x);
        }
}

TARGET static void tile(int kc, const float *ap, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                        ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha,
                        float beta) {
    volatile float ab[2] = {alpha, beta};
    int v = (w + VW - 1) / VW;
    int wlast = w - (v - 1) * VW;
    switch ((h - 1) * NV + (v - 1)) {
#define CASE(H, V)                                                                                 \
    case (H - 1) * NV + (V - 1):                                                                   \
        tile_hv(kc, ap, ars, aks, b, bks, H, V, wlast, c, ldc, ab);                       \
        break;
#define ROW(H) CASE(H, 1) CASE(H, 2)
        ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6)
#undef ROW
#undef CASE
    default:
        break;
    }
}

/* Horizontal sum by a fixed tree, the same for every element. */
INLINE float hsum(__m256 x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE void dot_hw(int K, const int H, const float *a, ptrdiff_t lda, const int W, const float *b,
                   ptrdiff_t ldb, float *c, ptrdiff_t ldc, float alpha, float beta) {
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < H; r++)
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) acc[r][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 av[4], bv[4];
#pragma GCC unroll 4
        for (int r = 0; r < H; r++) av[r] = _mm256_loadu_ps(a + r * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) bv[j] = _mm256_loadu_ps(b + j * ldb + k);
#pragma GCC unroll 4
        for (int r = 0; r < H; r++)
#pragma GCC unroll 4
            for (int j = 0; j < W; j++) acc[r][j] = _mm256_fmadd_ps(av[r], bv[j], acc[r][j]);
    }
    if (k < K) {
        __m256i m = first_lanes(K - k);
        __m256 av[4], bv[4];
#pragma GCC unroll 4
        for (int r = 0; r < H; r++) av[r] = _mm256_maskload_ps(a + r * lda + k, m);
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) bv[j] = _mm256_maskload_ps(b + j * ldb + k, m);
#pragma GCC unroll 4
        for (int r = 0; r < H; r++)
#pragma GCC unroll 4
            for (int j = 0; j < W; j++) acc[r][j] = _mm256_fmadd_ps(av[r], bv[j], acc[r][j]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < H; r++)
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) {
            float s = hsum(acc[r][j]);
            float *cp = c + r * ldc + j;
            *cp = beta == 0.0f ? alpha * s : fmaf(alpha, s, beta * *cp);
        }
}

TARGET static void dot(int K, int h, const float *a, ptrdiff_t lda, int w, const float *b,
                       ptrdiff_t ldb, float *c, ptrdiff_t ldc, float alpha, float beta) {
    if (h > 4) { /* 4 rows at most in 16 registers: two calls */
        dot(K, 4, a, lda, w, b, ldb, c, ldc, alpha, beta);
        dot(K, h - 4, a + 4 * lda, lda, w, b, ldb, c + 4 * ldc, ldc, alpha, beta);
        return;
    }
    switch ((h - 1) * 4 + (w - 1)) {
#define CASE(H, W)                                                                                 \
    case (H - 1) * 4 + (W - 1):                                                                    \
        dot_hw(K, H, a, lda, W, b, ldb, c, ldc, alpha, beta);                                      \
        break;
#define ROW(H) CASE(H, 1) CASE(H, 2) CASE(H, 3) CASE(H, 4)
        ROW(1) ROW(2) ROW(3) ROW(4)
#undef ROW
#undef CASE
    default:
        break;
    }
}

const heed_gemm_kernel heed_gemm_kernel_avx2 = {
    .name = "avx2", .mr = MR, .nr = NR, .vw = VW,
    .tile = tile, .pack_a = heed_gemm_pack_a_generic, .pack_b = heed_gemm_pack_b_generic,
    .dot = dot,
};

#endif
