/* gemm_avx512.c -- the AVX-512 kernel for gemm.c: an 8 x 48 register tile
 * (24 zmm accumulators, 3 zmm of B, 1 broadcast of A per row and k), a
 * dot-product kernel for 1..8 rows against B stored transposed, and packers
 * that transpose 8 x 8 blocks in registers.
 *
 * Per k the tile loads 3 vectors of B and broadcasts 8 floats of A for 24
 * FMAs: 12 cycles on two 512-bit FMA pipes, under the load ports' limit
 * (11 loads), and 24 independent chains hide the 4-cycle FMA latency. On
 * Zen 5 the tile alone runs at 97-100% of the FMA peak with its A panel in
 * L1 and B streaming from L2 or even L3, so what is left is in the driver.
 * A comes packed (k-major, MR floats per k) or in place (8 row streams);
 * each is its own instantiation so the packed one keeps constant offsets.
 *
 * The library is built without -march flags: every function here carries a
 * target attribute and is only reached after __builtin_cpu_supports says the
 * CPU has AVX-512F (gemm.c checks).
 */
#include "gemm_kernel.h"

#ifdef HEED_GEMM_X86

#include <immintrin.h>
#include <math.h>

#include "layer.h" /* HEED_FUSE_* */

#define TARGET __attribute__((target("avx512f,avx2,avx,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { MR = 8, NV = 3, VW = 16, NR = NV * VW };
/* pack_b fetches the rows of B this many rows ahead: each row's piece of a
 * block (at most NC floats) lies on a page of its own, too short for the
 * hardware prefetchers to start on, so packing waited on L3 for every line
 * (7% of 1024^3 on two threads; 2% with the prefetch). */
enum { PACK_AHEAD = 16 };

/* x * a + b, then the activation, as heed_fused_act computes it: max(0, t)
 * is t < 0 ? 0 : t for every t, NaN and -0 included (max returns its
 * second operand unless the first is greater), min(6, t) likewise
 * 6 < t ? 6 : t. */
INLINE __m512 post_vector(__m512 x, float a, float b, int act) {
    x = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(a)), _mm512_set1_ps(b));
    const __m512 zero = _mm512_setzero_ps();
    if (act == HEED_FUSE_RELU) return _mm512_max_ps(zero, x);
    if (act != HEED_FUSE_HARDSWISH) return x;
    const __m512 six = _mm512_set1_ps(6.0f);
    const __m512 t =
        _mm512_min_ps(six, _mm512_max_ps(zero, _mm512_add_ps(x, _mm512_set1_ps(3.0f))));
    return _mm512_div_ps(_mm512_mul_ps(x, t), six);
}

/* The H x (V vectors) tile, H and V compile-time constants after inlining;
 * `last` masks the final vector's columns of C. A's element (r, k) is at
 * a[r * ars + k * aks]: PACKED fixes the strides of a packed micro-panel
 * (ars = 1, aks = MR), otherwise A is read in place. With a post, each
 * value goes through post_vector before its store (the post read only
 * after the k loop, whose registers are all taken). */
INLINE void tile_hv(int kc, const float *restrict a, ptrdiff_t ars, ptrdiff_t aks,
                    const float *restrict b, ptrdiff_t bks, const int H, const int V,
                    const int PACKED, __mmask16 last, float *restrict c, ptrdiff_t ldc,
                    float alpha, float beta, const int POST,
                    const heed_gemm_rows_post *post_arg) {
    /* Kept in memory across the k loop, which needs every register. */
    const heed_gemm_rows_post *volatile post_at = post_arg;
    if (PACKED) ars = 1, aks = MR;
    __m512 acc[MR][NV];
#pragma GCC unroll 8
    for (int r = 0; r < H; r++)
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    /* The C tile is read (and written) only after the k loop: start fetching
     * it now so the misses overlap the arithmetic. */
#pragma GCC unroll 8
    for (int r = 0; r < H; r++) {
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) _mm_prefetch((const char *)(c + r * ldc + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16 * V - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        __m512 bv[NV];
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < H; r++) {
            __m512 av = _mm512_set1_ps(a[r * ars]);
#pragma GCC unroll 3
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
        a += aks;
        b += bks;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < H; r++)
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            float *cp = c + r * ldc + 16 * v;
            __mmask16 m = v == V - 1 ? last : (__mmask16)0xFFFF;
            __m512 x;
            if (beta == 0.0f)
                x = _mm512_mul_ps(va, acc[r][v]);
            else
                x = _mm512_fmadd_ps(va, acc[r][v], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, cp)));
            const heed_gemm_rows_post *post = POST ? post_at : NULL;
            if (post)
                x = post_vector(x, post->a ? post->a[r] : 1.0f, post->b ? post->b[r] : 0.0f,
                                post->act);
            _mm512_mask_storeu_ps(cp, m, x);
        }
}

/* One of the 48 instantiations, by height, number of vectors and A's
 * layout, each made twice: with the post and without (POST, a constant:
 * the plain tiles carry none of its code). */
INLINE void tile_any(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                     ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha, float beta,
                     const int POST, const heed_gemm_rows_post *post) {
    const int v = (w + VW - 1) / VW;
    const __mmask16 last = (__mmask16)(0xFFFFu >> (v * VW - w));
    const int packed = ars == 1 && aks == MR;
    switch (((h - 1) * NV + (v - 1)) * 2 + packed) {
#define CASE(H, V, P)                                                                              \
    case ((H - 1) * NV + (V - 1)) * 2 + P:                                                         \
        tile_hv(kc, a, ars, aks, b, bks, H, V, P, last, c, ldc, alpha, beta, POST, post);          \
        break;
#define ROW(H) CASE(H, 1, 0) CASE(H, 2, 0) CASE(H, 3, 0) CASE(H, 1, 1) CASE(H, 2, 1) CASE(H, 3, 1)
        ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) ROW(8)
#undef ROW
#undef CASE
    default:
        break;
    }
}

TARGET static void tile(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                        ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha,
                        float beta) {
    tile_any(kc, a, ars, aks, b, bks, h, w, c, ldc, alpha, beta, 0, NULL);
}

TARGET static void tile_post(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks,
                             const float *b, ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc,
                             float alpha, float beta, const heed_gemm_rows_post *post) {
    tile_any(kc, a, ars, aks, b, bks, h, w, c, ldc, alpha, beta, 1, post);
}

/* H rows of A dotted with W rows of B, each sum accumulated in its own zmm
 * over 16-float chunks (a masked final chunk) and then reduced by the same
 * fixed tree. Each sum is one chain of dependent multiply-adds, so a call
 * needs 8 or more of them to keep both FMA pipes busy: up to 8 rows for one
 * or two columns (a single tail column, ResNet-18's 7x7 stage at batch 1,
 * went 4 rows at a time at one multiply-add per cycle). */
INLINE void dot_hw(int K, const int H, const float *a, ptrdiff_t lda, const int W, const float *b,
                   ptrdiff_t ldb, float *c, ptrdiff_t ldc, float alpha, float beta) {
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int r = 0; r < H; r++)
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) acc[r][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 av[8], bv[4];
#pragma GCC unroll 8
        for (int r = 0; r < H; r++) av[r] = _mm512_loadu_ps(a + r * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) bv[j] = _mm512_loadu_ps(b + j * ldb + k);
#pragma GCC unroll 8
        for (int r = 0; r < H; r++)
#pragma GCC unroll 4
            for (int j = 0; j < W; j++) acc[r][j] = _mm512_fmadd_ps(av[r], bv[j], acc[r][j]);
    }
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 av[8], bv[4];
#pragma GCC unroll 8
        for (int r = 0; r < H; r++) av[r] = _mm512_maskz_loadu_ps(m, a + r * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) bv[j] = _mm512_maskz_loadu_ps(m, b + j * ldb + k);
#pragma GCC unroll 8
        for (int r = 0; r < H; r++)
#pragma GCC unroll 4
            for (int j = 0; j < W; j++) acc[r][j] = _mm512_fmadd_ps(av[r], bv[j], acc[r][j]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < H; r++)
#pragma GCC unroll 4
        for (int j = 0; j < W; j++) {
            float s = _mm512_reduce_add_ps(acc[r][j]);
            float *cp = c + r * ldc + j;
            *cp = beta == 0.0f ? alpha * s : fmaf(alpha, s, beta * *cp);
        }
}

TARGET static void dot(int K, int h, const float *a, ptrdiff_t lda, int w, const float *b,
                       ptrdiff_t ldb, float *c, ptrdiff_t ldc, float alpha, float beta) {
    if (h > 4 && w > 2) { /* at most 16 sums in registers: two calls */
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
#define WIDE(H) CASE(H, 1) CASE(H, 2)
        ROW(1) ROW(2) ROW(3) ROW(4) WIDE(5) WIDE(6) WIDE(7) WIDE(8)
#undef WIDE
#undef ROW
#undef CASE
    default:
        break;
    }
}

/* dst[i * ldd + j] = src[j * lds + i] for an 8 x 8 block. */
INLINE void transpose8(const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd) {
    __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* A stored M x K (rows contiguous in k) needs a transpose: 8 x 8 blocks in
 * registers for full-height panels. A stored K x M is a masked copy of h
 * floats per k. */
TARGET static void pack_a(int kc, int h, const float *a, ptrdiff_t lda, int trans, float *ap,
                          int mr) {
    if (trans && mr <= 16) {
        const __mmask16 m = (__mmask16)((1u << h) - 1);
        for (int k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(ap + (ptrdiff_t)k * mr, m,
                                  _mm512_maskz_loadu_ps(m, a + (ptrdiff_t)k * lda));
        return;
    }
    if (trans || h != MR || mr != MR) {
        heed_gemm_pack_a_generic(kc, h, a, lda, trans, ap, mr);
        return;
    }
    /* The 8 rows are short strided streams that the hardware prefetcher
     * barely starts on: fetch the next panel's rows (usually the next call)
     * into L2 while transposing this one. Prefetches past the end of A are
     * harmless. */
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) _mm_prefetch((const char *)(a + (MR + r) * lda + k), _MM_HINT_T1);
        transpose8(a + k, lda, ap + (ptrdiff_t)k * MR, MR);
        transpose8(a + k + 8, lda, ap + (ptrdiff_t)(k + 8) * MR, MR);
    }
    for (; k + 8 <= kc; k += 8) transpose8(a + k, lda, ap + (ptrdiff_t)k * MR, MR);
    for (; k < kc; k++)
        for (int r = 0; r < MR; r++) ap[(ptrdiff_t)k * MR + r] = a[r * lda + k];
}

/* B stored K x N: each row of the panel is a masked copy that also writes
 * the zero padding. B stored N x K: transpose 8 columns x 8 k at a time. */
TARGET static void pack_b(int kc, int w, int wp, const float *b, ptrdiff_t ldb, int trans,
                          float *bp) {
    if (!trans) {
        for (int k = 0; k < kc; k++) {
            const float *src = b + (ptrdiff_t)k * ldb;
            float *dst = bp + (ptrdiff_t)k * wp;
            for (int j = 0; j < w; j += 16)
                _mm_prefetch((const char *)(src + PACK_AHEAD * ldb + j), _MM_HINT_T0);
            for (int j = 0; j < wp; j += 16) {
                int left = w - j;
                __mmask16 m = left >= 16 ? (__mmask16)0xFFFF
                              : left > 0 ? (__mmask16)((1u << left) - 1)
                                         : (__mmask16)0;
                _mm512_storeu_ps(dst + j, _mm512_maskz_loadu_ps(m, src + j));
            }
        }
        return;
    }
    int j = 0;
    for (; j + 8 <= w; j += 8) {
        int k = 0;
        for (; k + 8 <= kc; k += 8)
            transpose8(b + j * ldb + k, ldb, bp + (ptrdiff_t)k * wp + j, wp);
        for (; k < kc; k++)
            for (int jj = j; jj < j + 8; jj++) bp[(ptrdiff_t)k * wp + jj] = b[jj * ldb + k];
    }
    for (int k = 0; k < kc; k++) {
        for (int jj = j; jj < w; jj++) bp[(ptrdiff_t)k * wp + jj] = b[jj * ldb + k];
        for (int jj = w; jj < wp; jj++) bp[(ptrdiff_t)k * wp + jj] = 0.0f;
    }
}

const heed_gemm_kernel heed_gemm_kernel_avx512 = {
    .name = "avx512", .mr = MR, .nr = NR, .vw = VW,
    .tile = tile, .tile_post = tile_post, .pack_a = pack_a, .pack_b = pack_b, .dot = dot,
};

#endif
