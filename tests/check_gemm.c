/* check_gemm.c -- the matrix product: a hand-computed case, every kernel
 * this CPU has against the double-precision reference on odd shapes (all
 * transposes, alpha/beta, padded leading dimensions, NaN where nothing may
 * be read), threaded runs bit-identical to single-threaded ones, edge sizes
 * and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#endif

#include "activation_impl.h"
#include "gemm.h"
#include "gemm_impl.h"
#include "omp_impl.h"
#include "tensor.h"
#include "testutil.h"

static const char *const kernels[] = {"avx512", "avx2", "generic"};
#define NKERNELS ((int)(sizeof kernels / sizeof kernels[0]))

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* One product's operands, stored as heed_gemm sees them: op(A) is M x K,
 * stored M x K (lda = K + pad) or, transposed, K x M (lda = M + pad);
 * likewise B; C is M x N with ldc = N + pad. Padding holds NaN in A and B
 * (reading it would poison C) and a sentinel in C (writing it is a bug). */
typedef struct gcase {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float *A, *B, *C0; /* C0: C before the call */
} gcase;

#define SENTINEL 12345.0f

static void fill_padded(float *p, int rows, int cols, int ld, uint64_t seed) {
    tu_fill_uniform(p, (size_t)rows * ld, -1.0f, 1.0f, seed);
    for (int r = 0; r < rows; r++)
        for (int c = cols; c < ld; c++) p[(size_t)r * ld + c] = NAN;
}

/* Leading dimensions `pa`, `pb`, `pc` floats longer than the rows. */
static gcase make_case_ld(int ta, int tb, int M, int N, int K, int pa, int pb, int pc,
                          uint64_t seed) {
    gcase g = {ta, tb, M, N, K, (ta ? M : K) + pa, (tb ? K : N) + pb, N + pc, NULL, NULL, NULL};
    int arows = ta ? K : M, brows = tb ? N : K;
    g.A = malloc(sizeof(float) * ((size_t)arows * g.lda + 1));
    g.B = malloc(sizeof(float) * ((size_t)brows * g.ldb + 1));
    g.C0 = malloc(sizeof(float) * ((size_t)M * g.ldc + 1));
    ck_assert(g.A && g.B && g.C0);
    fill_padded(g.A, arows, ta ? M : K, g.lda, seed);
    fill_padded(g.B, brows, tb ? K : N, g.ldb, seed + 1);
    tu_fill_uniform(g.C0, (size_t)M * g.ldc, -1.0f, 1.0f, seed + 2);
    for (int r = 0; r < M; r++)
        for (int c = N; c < g.ldc; c++) g.C0[(size_t)r * g.ldc + c] = SENTINEL;
    return g;
}

static gcase make_case(int ta, int tb, int M, int N, int K, int pad, uint64_t seed) {
    return make_case_ld(ta, tb, M, N, K, pad, pad, pad, seed);
}

static void free_case(gcase *g) {
    free(g->A);
    free(g->B);
    free(g->C0);
}

static float opa(const gcase *g, int i, int k) {
    return g->ta ? g->A[(size_t)k * g->lda + i] : g->A[(size_t)i * g->lda + k];
}
static float opb(const gcase *g, int k, int j) {
    return g->tb ? g->B[(size_t)j * g->ldb + k] : g->B[(size_t)k * g->ldb + j];
}

/* Runs heed_gemm on a copy of C0 (NaN everywhere inside when beta == 0:
 * old contents must be ignored) and returns the copy. */
static float *run(const gcase *g, float alpha, float beta) {
    size_t n = (size_t)g->M * g->ldc;
    float *C = malloc(sizeof(float) * (n + 1));
    ck_assert_ptr_nonnull(C);
    memcpy(C, g->C0, sizeof(float) * n);
    if (beta == 0.0f)
        for (int r = 0; r < g->M; r++)
            for (int c = 0; c < g->N; c++) C[(size_t)r * g->ldc + c] = NAN;
    ck_assert_int_eq(heed_gemm(g->ta, g->tb, g->M, g->N, g->K, alpha, g->A, g->lda, g->B, g->ldb,
                               beta, C, g->ldc),
                     HEED_OK);
    return C;
}

/* Compares C with the reference within the rounding a float sum of K terms
 * may accumulate: (2K + 4) ulp-ish of sum |alpha a b| + |beta c|. The
 * padding columns must still hold the sentinel. (One assertion per case:
 * Check records every assertion it passes, which is slow in loops.) */
static void check_against_ref(const gcase *g, float alpha, float beta, const float *C,
                              const char *kernel) {
    size_t n = (size_t)g->M * g->ldc;
    float *R = malloc(sizeof(float) * (n + 1));
    ck_assert_ptr_nonnull(R);
    memcpy(R, g->C0, sizeof(float) * n);
    heed_gemm_ref(g->ta, g->tb, g->M, g->N, g->K, alpha, g->A, g->lda, g->B, g->ldb, beta, R,
                  g->ldc);
    int bad_i = -1, bad_j = -1;
    double got = 0, want = 0, tol = 0;
    for (int i = 0; i < g->M && bad_i < 0; i++)
        for (int j = 0; j < g->ldc; j++) {
            got = C[(size_t)i * g->ldc + j];
            want = R[(size_t)i * g->ldc + j];
            if (j >= g->N) {
                tol = 0;
                want = SENTINEL;
            } else {
                double mag = beta == 0.0f ? 0.0 : fabs((double)beta * g->C0[(size_t)i * g->ldc + j]);
                for (int k = 0; k < g->K; k++)
                    mag += fabs((double)alpha * opa(g, i, k) * opb(g, k, j));
                tol = (2.0 * g->K + 4.0) * 6e-8 * mag + 1e-30;
            }
            if (!(fabs(got - want) <= tol)) {
                bad_i = i;
                bad_j = j;
                break;
            }
        }
    ck_assert_msg(bad_i < 0,
                  "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.9g, want %.9g "
                  "(tol %.3g; columns >= N are padding)",
                  kernel, g->ta, g->tb, g->M, g->N, g->K, alpha, beta, bad_i, bad_j, got, want, tol);
    free(R);
}

START_TEST(hand_computed_2x3_times_3x2_all_transposes) {
    /* op(A) = [1 2 3; 4 5 6], op(B) = [7 8; 9 10; 11 12]:
     * op(A) op(B) = [58 64; 139 154]. With alpha = 2, beta = 0.5 and
     * C = [1 2; 3 4]: [116.5 129; 279.5 310]. */
    const float a[6] = {1, 2, 3, 4, 5, 6}, at[6] = {1, 4, 2, 5, 3, 6};
    const float b[6] = {7, 8, 9, 10, 11, 12}, bt[6] = {7, 9, 11, 8, 10, 12};
    const float want[4] = {116.5f, 129.0f, 279.5f, 310.0f};
    for (int kk = 0; kk < NKERNELS; kk++) {
        if (!heed_gemm_kernel_available(kernels[kk])) continue;
        ck_assert_int_eq(heed_gemm_set_kernel(kernels[kk]), HEED_OK);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                float c[4] = {1, 2, 3, 4};
                ck_assert_int_eq(heed_gemm(ta, tb, 2, 2, 3, 2.0f, ta ? at : a, ta ? 2 : 3,
                                           tb ? bt : b, tb ? 3 : 2, 0.5f, c, 2),
                                 HEED_OK);
                for (int i = 0; i < 4; i++)
                    ck_assert_msg(c[i] == want[i], "%s ta=%d tb=%d: c[%d] = %g, want %g",
                                  kernels[kk], ta, tb, i, c[i], want[i]);
            }
    }
    heed_gemm_set_kernel(NULL);
}
END_TEST

/* Shapes that reach every path: the dot kernel (M <= 4, B transposed), B
 * read in place (B not transposed, M x KC up to 512K floats) with A in
 * place or packed, B packed (transposed), partial tiles in M and N (with
 * A in place, N's partial vector by dot products), several K slices
 * (K > 1024), several B blocks per task (N > 480 at K = 300) and rows
 * split into chunks (M > 1024); none a multiple of a vector width
 * unless on purpose. B packed while not transposed has its own test
 * (b_not_transposed_packed_or_in_place). */
static const int shapes[][3] = {
    {1, 1, 1},    {1, 37, 300},  {3, 130, 77},  {4, 5, 700},   {5, 17, 33},
    {7, 61, 9},   {13, 100, 290}, {16, 48, 64},  {17, 45, 31},  {33, 97, 260},
    {64, 196, 57}, {71, 600, 13}, {130, 79, 301}, {255, 33, 129}, {1100, 9, 7},
    {21, 70, 2100}, {43, 610, 300},
};

static void odd_shapes_for(const char *kernel) {
    static const float ab[][2] = {{1.0f, 0.0f}, {-1.5f, 0.25f}, {0.5f, 1.0f}};
    uint64_t seed = 100;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int pad = (int)(s % 3) * 3 + ta + 2 * tb; /* 0 (tight) .. 9 */
                gcase g = make_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], pad, seed++);
                for (size_t p = 0; p < sizeof ab / sizeof ab[0]; p++) {
                    float *C = run(&g, ab[p][0], ab[p][1]);
                    check_against_ref(&g, ab[p][0], ab[p][1], C, kernel);
                    free(C);
                }
                free_case(&g);
            }
}

START_TEST(every_kernel_matches_reference_on_odd_shapes) {
    const char *k = kernels[_i];
    if (!heed_gemm_kernel_available(k)) return; /* this CPU lacks it */
    ck_assert_int_eq(heed_gemm_set_kernel(k), HEED_OK);
    ck_assert_str_eq(heed_gemm_kernel_name(), k);
    set_threads(2);
    odd_shapes_for(k);
    heed_gemm_set_kernel(NULL);
}
END_TEST

/* B stored K x N is packed, not read in place, when the rows of A for one
 * K slice are too many (M x KC > 512K floats), when B's rows are a large
 * power-of-two apart (ldb = 1024 here: the KC rows would share cache sets)
 * or when a narrow product has a large A; the cases next to them take the
 * in-place path. */
START_TEST(b_not_transposed_packed_or_in_place) {
    const char *k = kernels[_i];
    if (!heed_gemm_kernel_available(k)) return;
    ck_assert_int_eq(heed_gemm_set_kernel(k), HEED_OK);
    set_threads(2);
    static const int cases[][5] = {
        /* M, N, K, ldb - N, ldc - N */
        {37, 1020, 300, 4, 1},  /* ldb = 1024: packed */
        {37, 1019, 300, 5, 0},  /* ldb = 1024, a partial last panel */
        {37, 1020, 300, 3, 2},  /* ldb = 1023: in place */
        {530, 21, 1000, 2, 3},  /* 530 x 1000 > 512K: packed */
        {500, 21, 1000, 2, 3},  /* 500 x 1000: in place */
        {256, 49, 4100, 2, 1},  /* two panels at most, A over 1M floats: packed */
        {256, 100, 4100, 2, 1}, /* three panels: in place */
    };
    uint64_t seed = 900;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int ta = 0; ta < 2; ta++) {
            gcase g = make_case_ld(ta, 0, cases[c][0], cases[c][1], cases[c][2], 1 + ta,
                                   cases[c][3], cases[c][4], seed++);
            float *C = run(&g, -1.5f, 0.25f);
            check_against_ref(&g, -1.5f, 0.25f, C, k);
            free(C);
            free_case(&g);
        }
    heed_gemm_set_kernel(NULL);
}
END_TEST

START_TEST(threaded_results_are_bit_identical) {
    const char *k = kernels[_i];
    if (!heed_gemm_kernel_available(k)) return;
    ck_assert_int_eq(heed_gemm_set_kernel(k), HEED_OK);
    /* Big enough that 2 and 3 threads split them (rows, columns or both). */
    static const int big[][5] = {
        {0, 0, 64, 784, 288}, {1, 1, 200, 333, 260}, {0, 1, 3, 1500, 700},
        {0, 0, 10, 2000, 300}, {1, 0, 9, 1300, 517}, {0, 0, 1030, 40, 40},
        {0, 0, 50, 300, 1500}, {1, 1, 100, 1000, 100}, {0, 0, 530, 100, 1000},
        {1, 0, 300, 500, 200}, {0, 1, 200, 333, 1100}, {0, 0, 512, 49, 4608},
    };
    for (size_t s = 0; s < sizeof big / sizeof big[0]; s++) {
        gcase g = make_case(big[s][0], big[s][1], big[s][2], big[s][3], big[s][4], 1, 7 + s);
        set_threads(1);
        float *c1 = run(&g, 0.75f, 0.5f);
        for (int t = 2; t <= 3; t++) {
            set_threads(t);
            float *ct = run(&g, 0.75f, 0.5f);
            ck_assert_msg(memcmp(c1, ct, sizeof(float) * (size_t)g.M * g.ldc) == 0,
                          "%s ta=%d tb=%d %dx%dx%d: %d threads differ from 1", k, g.ta, g.tb,
                          g.M, g.N, g.K, t);
            free(ct);
        }
        free(c1);
        free_case(&g);
    }
    set_threads(2);
    heed_gemm_set_kernel(NULL);
}
END_TEST

/* heed_gemm_rows against heed_gemm on the matrix its row addresses make
 * (rows of a smaller B, repeated and out of order, as a convolution's
 * shifted copies give im2col's rows): the same floats bit for bit, on every
 * kernel, on 1 and 3 threads, tails of every width; and its argument
 * errors. */
START_TEST(rows_by_address_equal_the_dense_product) {
    static const int shapes[][3] = {{1, 1, 1},    {3, 5, 7},     {9, 17, 33},  {37, 49, 300},
                                    {64, 31, 577}, {130, 70, 1100}, {512, 49, 4608}};
    for (int ki = 0; ki < NKERNELS; ki++) {
        if (!heed_gemm_kernel_available(kernels[ki])) continue;
        ck_assert_int_eq(heed_gemm_set_kernel(kernels[ki]), HEED_OK);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            const int src_rows = K / 3 + 1; /* fewer than K: rows repeat */
            float *A = malloc((size_t)M * K * sizeof(float));
            float *src = malloc((size_t)src_rows * (N + 3) * sizeof(float));
            float *B = malloc((size_t)K * N * sizeof(float));
            const float **rows = malloc((size_t)K * sizeof *rows);
            float *C0 = malloc((size_t)M * N * sizeof(float)), *C = malloc((size_t)M * N * sizeof(float));
            tu_fill_uniform(A, (size_t)M * K, -1.0f, 1.0f, 7 + si);
            tu_fill_uniform(src, (size_t)src_rows * (N + 3), -1.0f, 1.0f, 8 + si);
            for (int k = 0; k < K; k++) {
                /* row k: source row (7k mod src_rows), from column k % 4 */
                rows[k] = src + (size_t)(7 * k % src_rows) * (N + 3) + k % 4;
                memcpy(B + (size_t)k * N, rows[k], (size_t)N * sizeof(float));
            }
            tu_fill_uniform(C0, (size_t)M * N, -1.0f, 1.0f, 9);
            memcpy(C, C0, (size_t)M * N * sizeof(float));
            set_threads(1);
            ck_assert_int_eq(heed_gemm(0, 0, M, N, K, 0.5f, A, K, B, N, 0.25f, C0, N), HEED_OK);
            for (int threads = 1; threads <= 3; threads += 2) {
                float *Ct = malloc((size_t)M * N * sizeof(float));
                memcpy(Ct, C, (size_t)M * N * sizeof(float));
                set_threads(threads);
                ck_assert_int_eq(heed_gemm_rows(M, N, K, 0.5f, A, K, rows, 0.25f, Ct, N, NULL), HEED_OK);
                ck_assert_msg(!memcmp(Ct, C0, (size_t)M * N * sizeof(float)),
                              "%s %dx%dx%d on %d threads differs", kernels[ki], M, N, K, threads);
                free(Ct);
            }
            free(A), free(src), free(B), free(rows), free(C0), free(C);
        }
    }
    heed_gemm_set_kernel(NULL);
    set_threads(2);
    float c = 3.0f;
    const float *none[1] = {NULL};
    ck_assert_int_eq(heed_gemm_rows(1, 1, 0, 1.0f, &c, 1, none, 0.5f, &c, 1, NULL), HEED_OK);
    ck_assert_float_eq(c, 1.5f); /* K == 0 scales C by beta */
    ck_assert_int_eq(heed_gemm_rows(-1, 1, 1, 1.0f, &c, 1, none, 0.0f, &c, 1, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_gemm_rows(1, 4, 2, 1.0f, &c, 1, none, 0.0f, &c, 4, NULL), HEED_ERR_ARG);
}
END_TEST

/* An epilogue that records where it ran: each element of C it is given
 * becomes 2c + 1 and its visit count goes up. */
typedef struct visits {
    float *C;
    int ldc;
    int *count;
} visits;

static void double_plus_one(const void *ctx, float *c, ptrdiff_t ldc, int row0, int rows,
                            int cols) {
    const visits *v = ctx;
    const ptrdiff_t col0 = (c - v->C) - (ptrdiff_t)row0 * v->ldc;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            c[r * ldc + j] = 2.0f * c[r * ldc + j] + 1.0f;
            v->count[(size_t)(row0 + r) * v->ldc + col0 + j]++;
        }
}

/* heed_gemm_post and heed_gemm_rows with an epilogue: it runs once on
 * every element of C, none of the padding, and after the element's last
 * term (so C equals 2 x heed_gemm's C + 1 exactly) -- through tiles, tails,
 * several K slices, column and row tasks, dot products, K == 0; on 1 and
 * 3 threads and every kernel. */
START_TEST(epilogue_runs_once_on_final_sums) {
    static const int cases[][5] = {
        {0, 0, 37, 49, 300}, {0, 0, 130, 70, 1100}, {1, 0, 33, 97, 260}, {0, 1, 3, 1500, 700},
        {1, 1, 100, 1000, 100}, {0, 0, 512, 49, 2304}, {0, 0, 64, 784, 288}, {0, 0, 9, 5, 0},
    };
    for (int ki = 0; ki < NKERNELS; ki++) {
        if (!heed_gemm_kernel_available(kernels[ki])) continue;
        ck_assert_int_eq(heed_gemm_set_kernel(kernels[ki]), HEED_OK);
        for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
            gcase g = make_case(cases[s][0], cases[s][1], cases[s][2], cases[s][3], cases[s][4],
                                3, 21 + s);
            const size_t n = (size_t)g.M * g.ldc;
            set_threads(1);
            float *plain = run(&g, 0.75f, 0.5f);
            for (int threads = 1; threads <= 3; threads += 2) {
                float *C = malloc(sizeof(float) * n);
                int *count = calloc(n, sizeof(int));
                ck_assert(C && count);
                memcpy(C, g.C0, sizeof(float) * n);
                visits v = {C, g.ldc, count};
                const heed_gemm_epilogue ep = {double_plus_one, &v, NULL};
                set_threads(threads);
                ck_assert_int_eq(heed_gemm_post(g.ta, g.tb, g.M, g.N, g.K, 0.75f, g.A, g.lda, g.B,
                                                g.ldb, 0.5f, C, g.ldc, &ep),
                                 HEED_OK);
                size_t bad = n;
                for (size_t i = 0; i < n && bad == n; i++) {
                    const int inside = (int)(i % g.ldc) < g.N;
                    const float want = inside ? 2.0f * plain[i] + 1.0f : SENTINEL;
                    if (count[i] != inside || memcmp(&C[i], &want, sizeof want)) bad = i;
                }
                ck_assert_msg(bad == n,
                              "%s ta=%d tb=%d %dx%dx%d, %d threads: element (%zu, %zu) visited "
                              "%d times, %.9g",
                              kernels[ki], g.ta, g.tb, g.M, g.N, g.K, threads,
                              bad / (size_t)g.ldc, bad % (size_t)g.ldc, bad < n ? count[bad] : 0,
                              bad < n ? C[bad] : 0.0f);
                free(C), free(count);
            }
            free(plain);
            free_case(&g);
        }
        /* By rows' addresses: B's rows are rows of a dense K x N matrix. */
        const int M = 130, N = 70, K = 1100;
        gcase g = make_case(0, 0, M, N, K, 0, 40);
        const float **rows = malloc((size_t)K * sizeof *rows);
        ck_assert_ptr_nonnull(rows);
        for (int k = 0; k < K; k++) rows[k] = g.B + (size_t)k * N;
        set_threads(1);
        float *plain = run(&g, 1.0f, 0.0f);
        for (int threads = 1; threads <= 3; threads += 2) {
            float *C = malloc(sizeof(float) * M * N);
            int *count = calloc((size_t)M * N, sizeof(int));
            ck_assert(C && count);
            visits v = {C, N, count};
            const heed_gemm_epilogue ep = {double_plus_one, &v, NULL};
            set_threads(threads);
            ck_assert_int_eq(heed_gemm_rows(M, N, K, 1.0f, g.A, K, rows, 0.0f, C, N, &ep), HEED_OK);
            int bad = -1;
            for (int i = 0; i < M * N && bad < 0; i++) {
                const float want = 2.0f * plain[i] + 1.0f;
                if (count[i] != 1 || memcmp(&C[i], &want, sizeof want)) bad = i;
            }
            ck_assert_msg(bad < 0, "%s rows, %d threads: element %d wrong", kernels[ki], threads,
                          bad);
            free(C), free(count);
        }
        free(plain), free(rows);
        free_case(&g);
    }
    heed_gemm_set_kernel(NULL);
    set_threads(2);
}
END_TEST

START_TEST(empty_sizes_and_zero_alpha) {
    float c[6] = {1, 2, 3, 4, 5, 6};
    float nan_ab[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    /* M or N of 0: nothing happens. */
    ck_assert_int_eq(heed_gemm(0, 0, 0, 3, 2, 1.0f, nan_ab, 2, nan_ab, 3, 0.0f, c, 3), HEED_OK);
    ck_assert_int_eq(heed_gemm(0, 0, 2, 0, 2, 1.0f, nan_ab, 2, nan_ab, 1, 0.0f, c, 1), HEED_OK);
    ck_assert_float_eq(c[0], 1.0f);
    /* K == 0 scales C by beta. */
    ck_assert_int_eq(heed_gemm(0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, c, 3), HEED_OK);
    ck_assert_float_eq(c[5], 12.0f);
    /* alpha == 0: A and B are not read, C = beta C. */
    ck_assert_int_eq(heed_gemm(0, 0, 2, 3, 2, 0.0f, nan_ab, 2, nan_ab, 3, 0.5f, c, 3), HEED_OK);
    ck_assert_float_eq(c[5], 6.0f);
    /* beta == 0 overwrites NaN. */
    for (int i = 0; i < 6; i++) c[i] = NAN;
    ck_assert_int_eq(heed_gemm(0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 0.0f, c, 3), HEED_OK);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(c[i], 0.0f);
}
END_TEST

START_TEST(bad_arguments_are_refused) {
    float a[4] = {0}, b[4] = {0}, c[4] = {0};
    ck_assert_int_eq(heed_gemm(0, 0, -1, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "M=-1"));
    ck_assert_int_eq(heed_gemm(0, 0, 2, 2, 2, 1.0f, a, 1, b, 2, 0.0f, c, 2), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "lda=1"));
    ck_assert_int_eq(heed_gemm(0, 1, 2, 2, 2, 1.0f, a, 2, b, 1, 0.0f, c, 2), HEED_ERR_ARG);
    ck_assert_int_eq(heed_gemm(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 1), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "ldc=1"));
}
END_TEST

START_TEST(kernel_choice_can_be_forced) {
    ck_assert(heed_gemm_kernel_available("generic"));
    ck_assert(!heed_gemm_kernel_available("sse9"));
    ck_assert(!heed_gemm_kernel_available(NULL));
    ck_assert_int_eq(heed_gemm_set_kernel("generic"), HEED_OK);
    ck_assert_str_eq(heed_gemm_kernel_name(), "generic");
    ck_assert_int_eq(heed_gemm_set_kernel("sse9"), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "sse9"));
    ck_assert_str_eq(heed_gemm_kernel_name(), "generic"); /* unchanged */
    /* The default honours HEED_GEMM_KERNEL, and ignores names it cannot use. */
    setenv("HEED_GEMM_KERNEL", "generic", 1);
    ck_assert_int_eq(heed_gemm_set_kernel(NULL), HEED_OK);
    ck_assert_str_eq(heed_gemm_kernel_name(), "generic");
    setenv("HEED_GEMM_KERNEL", "sse9", 1);
    ck_assert_int_eq(heed_gemm_set_kernel(NULL), HEED_OK);
    const char *best = heed_gemm_kernel_available("avx512") ? "avx512"
                       : heed_gemm_kernel_available("avx2") ? "avx2"
                                                            : "generic";
    ck_assert_str_eq(heed_gemm_kernel_name(), best);
    unsetenv("HEED_GEMM_KERNEL");
    ck_assert_int_eq(heed_gemm_set_kernel(NULL), HEED_OK);
    ck_assert_str_eq(heed_gemm_kernel_name(), best);
}
END_TEST

/* The epilogue's per-row form (heed_gemm_rows_post), which the AVX-512
 * tiles apply in registers: the same bits as its function, row r's act(c * a[r] +
 * b[r]) run on the stored block, for every activation, with a or b absent,
 * through NaN, -0 and hardswish's bends, on tiles (packed and in place),
 * tails, several K slices and 1 and 3 threads. */
typedef struct row_post_ctx {
    heed_gemm_rows_post rp;
} row_post_ctx;

static void row_post_fn(const void *ctx, float *c, ptrdiff_t ldc, int row0, int rows, int cols) {
    const heed_gemm_rows_post *rp = &((const row_post_ctx *)ctx)->rp;
    for (int r = 0; r < rows; r++) {
        const float a = rp->a ? rp->a[row0 + r] : 1.0f, b = rp->b ? rp->b[row0 + r] : 0.0f;
        for (int j = 0; j < cols; j++)
            c[r * ldc + j] = heed_fused_act(c[r * ldc + j] * a + b, rp->act);
    }
}

START_TEST(row_epilogue_in_tiles_equals_its_function) {
    static const int cases[][5] = {
        {0, 0, 37, 49, 300}, {0, 0, 130, 70, 1100}, {1, 0, 33, 97, 260},
        {0, 0, 48, 784, 16}, {0, 0, 64, 196, 288}, {0, 1, 19, 150, 40},
    };
    for (int ki = 0; ki < NKERNELS; ki++) {
        if (!heed_gemm_kernel_available(kernels[ki])) continue;
        ck_assert_int_eq(heed_gemm_set_kernel(kernels[ki]), HEED_OK);
        for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
            gcase g = make_case(cases[s][0], cases[s][1], cases[s][2], cases[s][3], cases[s][4],
                                2, 60 + s);
            const size_t n = (size_t)g.M * g.ldc;
            float *a = malloc(sizeof(float) * g.M), *b = malloc(sizeof(float) * g.M);
            ck_assert(a && b);
            tu_fill_uniform(a, g.M, -3.0f, 3.0f, 70 + s);
            tu_fill_uniform(b, g.M, -4.0f, 4.0f, 80 + s);
            a[0] = -0.0f, b[0] = -0.0f; /* -0 * x + -0: relu keeps a -0 */
            b[1] = NAN;                 /* NaN through the activations */
            a[2] = 0.0f, b[2] = -3.0f;  /* hardswish's bend, exactly */
            for (int act = 0; act <= HEED_FUSE_HARDSWISH; act++)
                for (int form = 0; form < 3; form++) {
                    row_post_ctx ctx = {{form == 1 ? NULL : a, form == 2 ? NULL : b, act}};
                    const heed_gemm_epilogue by_fn = {row_post_fn, &ctx, NULL};
                    const heed_gemm_epilogue by_rows = {row_post_fn, &ctx, &ctx.rp};
                    for (int threads = 1; threads <= 3; threads += 2) {
                        float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
                        ck_assert(want && got);
                        memcpy(want, g.C0, sizeof(float) * n);
                        memcpy(got, g.C0, sizeof(float) * n);
                        set_threads(threads);
                        ck_assert_int_eq(heed_gemm_post(g.ta, g.tb, g.M, g.N, g.K, 0.75f, g.A,
                                                        g.lda, g.B, g.ldb, 0.5f, want, g.ldc,
                                                        &by_fn),
                                         HEED_OK);
                        ck_assert_int_eq(heed_gemm_post(g.ta, g.tb, g.M, g.N, g.K, 0.75f, g.A,
                                                        g.lda, g.B, g.ldb, 0.5f, got, g.ldc,
                                                        &by_rows),
                                         HEED_OK);
                        ck_assert_msg(!memcmp(want, got, sizeof(float) * n),
                                      "%s %dx%dx%d act %d form %d, %d threads: rows post differs",
                                      kernels[ki], g.M, g.N, g.K, act, form, threads);
                        free(want), free(got);
                    }
                }
            free(a), free(b);
            free_case(&g);
        }
    }
    heed_gemm_set_kernel(NULL);
    set_threads(2);
}
END_TEST

Suite *heed_suite_gemm(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hand_computed_2x3_times_3x2_all_transposes);
    tcase_add_loop_test(tc, every_kernel_matches_reference_on_odd_shapes, 0, NKERNELS);
    tcase_add_loop_test(tc, b_not_transposed_packed_or_in_place, 0, NKERNELS);
    tcase_add_loop_test(tc, threaded_results_are_bit_identical, 0, NKERNELS);
    tcase_add_test(tc, rows_by_address_equal_the_dense_product);
    tcase_add_test(tc, epilogue_runs_once_on_final_sums);
    tcase_add_test(tc, row_epilogue_in_tiles_equals_its_function);
    tcase_add_test(tc, empty_sizes_and_zero_alpha);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, kernel_choice_can_be_forced);
    suite_add_tcase(s, tc);
    return s;
}
