/* gemm.c -- C = alpha * op(A) op(B) + beta * C, row-major (see gemm.h).
 *
 * Letters: M, N, K the product's dimensions; MR x NR the kernel's register
 * tile; KC the depth of one pass over K; NC the width of one packed block
 * of B.
 *
 * The blocking (after Goto and BLIS, arranged for a row-major C whose rows
 * are the vector direction):
 *
 *   for each thread's rectangle of C (split over M and N only, never K)
 *     for jc: NC-wide blocks of columns
 *       for pc: KC-deep slices of K, in order
 *         pack op(B)[pc.., jc..] into KC x NR micro-panels   (kept in L2)
 *         for ir: MR rows
 *           pack op(A)[ir.., pc..] into a KC x MR micro-panel (kept in L1)
 *           for jr: NR columns
 *             tile: C[ir.., jc+jr..] (+)= A micro-panel x B micro-panel
 *
 * The first K slice applies beta, later ones add (beta = 1). Each element of
 * C is thus a fixed sequence of FMAs over k = 0..K-1, independent of the
 * tile or thread that computes it: threaded runs are bit-identical to
 * single-threaded ones.
 *
 * Small problems take shortcuts that are chosen from the shape alone (never
 * the thread count): with few rows and B not transposed, B is read in place
 * instead of packed; with at most 4 rows and B transposed, each element is a
 * vector dot product. Threads are used only when each gets enough work to
 * pay for waking it.
 */
#include "gemm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm_kernel.h"
#include "tensor.h"

/* KC x NC floats of B (KC = 256, NC = 528: 540 KB) sit in a 1 MB L2 with
 * room for the A micro-panel and C; KC x MR of A (8 KB) sits in L1. */
#ifndef TUNE_KC
#define TUNE_KC 256
#define TUNE_NC 528
#endif
enum {
    KC_MAX = TUNE_KC,
    NC_MAX = TUNE_NC,
    MC_MAX = 1024, /* rows of A a task packs (1 MB at KC = 256) */
    B_MAX = 1 << 22, /* floats of B packed at once (16 MB) */
#ifndef TUNE_DIRECT
#define TUNE_DIRECT 16
#endif
    DIRECT_M_MAX = TUNE_DIRECT,   /* up to this many rows, B (not transposed) is read in place */
    DOT_M_MAX = 4,       /* up to this many rows, B transposed goes to the dot kernel */
    WORK_PER_THREAD = 1 << 18 /* multiply-adds that justify one more thread */
};

void heed_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0f : beta * *c));
        }
}

/* ---- portable kernel: a 4 x 8 tile in plain C; the compiler vectorizes
 * the j loops with whatever the baseline ISA offers (SSE2 on x86-64: the 8
 * accumulators and the operands fit its 16 registers) ---- */

enum { G_MR = 4, G_NR = 8 };

static void tile_generic(int kc, const float *ap, const float *b, ptrdiff_t bks, int h, int w,
                         float *c, ptrdiff_t ldc, float alpha, float beta) {
    float acc[G_MR][G_NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        const float *bk = b + k * bks;
        for (int r = 0; r < G_MR; r++) {
            float a = ap[k * G_MR + r];
            for (int j = 0; j < G_NR; j++) acc[r][j] += a * bk[j];
        }
    }
    for (int r = 0; r < h; r++)
        for (int j = 0; j < w; j++) {
            float *cp = c + r * ldc + j;
            *cp = beta == 0.0f ? alpha * acc[r][j] : alpha * acc[r][j] + beta * *cp;
        }
}

static void dot_generic(int K, int h, const float *a, ptrdiff_t lda, int w, const float *b,
                        ptrdiff_t ldb, float *c, ptrdiff_t ldc, float alpha, float beta) {
    for (int r = 0; r < h; r++)
        for (int j = 0; j < w; j++) {
            const float *ar = a + r * lda, *bj = b + j * ldb;
            /* Eight partial sums: independent chains, and vectorizable. */
            float s[8] = {0};
            int k = 0;
            for (; k + 8 <= K; k += 8)
                for (int l = 0; l < 8; l++) s[l] += ar[k + l] * bj[k + l];
            for (int l = 0; k < K; k++, l++) s[l] += ar[k] * bj[k];
            float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            float *cp = c + r * ldc + j;
            *cp = beta == 0.0f ? alpha * t : alpha * t + beta * *cp;
        }
}

void heed_gemm_pack_a_generic(int kc, int h, const float *a, ptrdiff_t lda, int trans, float *ap,
                              int mr) {
    if (trans) {
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < h; r++) ap[(ptrdiff_t)k * mr + r] = a[k * lda + r];
    } else {
        for (int r = 0; r < h; r++)
            for (int k = 0; k < kc; k++) ap[(ptrdiff_t)k * mr + r] = a[r * lda + k];
    }
}

void heed_gemm_pack_b_generic(int kc, int w, int wp, const float *b, ptrdiff_t ldb, int trans,
                              float *bp) {
    if (trans) {
        for (int j = 0; j < w; j++)
            for (int k = 0; k < kc; k++) bp[(ptrdiff_t)k * wp + j] = b[j * ldb + k];
    } else {
        for (int k = 0; k < kc; k++) memcpy(bp + (ptrdiff_t)k * wp, b + k * ldb, sizeof(float) * w);
    }
    if (w < wp)
        for (int k = 0; k < kc; k++) memset(bp + (ptrdiff_t)k * wp + w, 0, sizeof(float) * (wp - w));
}

const heed_gemm_kernel heed_gemm_kernel_generic = {
    .name = "generic", .mr = G_MR, .nr = G_NR, .vw = G_NR,
    .tile = tile_generic, .pack_a = heed_gemm_pack_a_generic,
    .pack_b = heed_gemm_pack_b_generic, .dot = dot_generic,
};

/* ---- kernel selection ---- */

static const heed_gemm_kernel *kernel_named(const char *name) {
#ifdef HEED_GEMM_X86
    __builtin_cpu_init();
#ifdef AVX512_VARIANT
    extern const heed_gemm_kernel AVX512_VARIANT;
#else
#define AVX512_VARIANT heed_gemm_kernel_avx512
#endif
    if (!strcmp(name, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")
                   ? &AVX512_VARIANT
                   : NULL;
    if (!strcmp(name, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                   ? &heed_gemm_kernel_avx2
                   : NULL;
#endif
    if (!strcmp(name, "generic")) return &heed_gemm_kernel_generic;
    return NULL;
}

static const heed_gemm_kernel *kernel_default(void) {
    const char *env = getenv("HEED_GEMM_KERNEL");
    const heed_gemm_kernel *k = env ? kernel_named(env) : NULL;
    if (k) return k;
    static const char *const best_first[] = {"avx512", "avx2", "generic"};
    for (size_t i = 0; i < sizeof best_first / sizeof best_first[0]; i++)
        if ((k = kernel_named(best_first[i]))) return k;
    return &heed_gemm_kernel_generic;
}

/* Chosen once; a benign race (every thread picks the same) if first use is
 * concurrent. */
static const heed_gemm_kernel *g_kernel;

static const heed_gemm_kernel *kernel(void) {
    const heed_gemm_kernel *k = __atomic_load_n(&g_kernel, __ATOMIC_ACQUIRE);
    if (!k) {
        k = kernel_default();
        __atomic_store_n(&g_kernel, k, __ATOMIC_RELEASE);
    }
    return k;
}

const char *heed_gemm_kernel_name(void) { return kernel()->name; }

heed_status heed_gemm_set_kernel(const char *name) {
    const heed_gemm_kernel *k = name ? kernel_named(name) : kernel_default();
    if (!k)
        return heed_fail(HEED_ERR_ARG,
                         "heed_gemm_set_kernel: kernel '%s' is unknown or this CPU lacks it "
                         "(avx512, avx2, generic)",
                         name);
    __atomic_store_n(&g_kernel, k, __ATOMIC_RELEASE);
    return HEED_OK;
}

int heed_gemm_kernel_available(const char *name) { return name && kernel_named(name) != NULL; }

/* ---- the calling thread's packing buffer: the packed B and every team
 * thread's A rows live in it. Grown, never shrunk, kept for the thread's
 * life and freed when the thread exits (a pthread key's destructor). ---- */

typedef struct thread_buffer {
    float *p;
    size_t cap; /* floats */
} thread_buffer;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static int g_key_ok;

static void thread_buffer_free(void *p) {
    thread_buffer *t = p;
    heed_free(t->p);
    free(t);
}

static void key_create(void) { g_key_ok = pthread_key_create(&g_key, thread_buffer_free) == 0; }

/* This thread's buffer, of at least `floats`; NULL if out of memory. */
static float *buffer_get(size_t floats) {
    pthread_once(&g_key_once, key_create);
    if (!g_key_ok) return NULL;
    thread_buffer *t = pthread_getspecific(g_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t) return NULL;
        if (pthread_setspecific(g_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (floats > t->cap) {
        heed_free(t->p);
        t->p = heed_alloc(floats * sizeof(float));
        t->cap = t->p ? floats : 0;
    }
    return t->p;
}

/* ---- the driver ---- */

typedef struct job {
    const heed_gemm_kernel *k;
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    ptrdiff_t lda, ldb, ldc;
    int direct; /* read full-width B panels in place (B not transposed) */
    /* Blocking and tasks, fixed by the shape and the team size. */
    int kc;      /* depth of a K slice (the last may be shorter) */
    int sbw;     /* columns of B packed at once, a multiple of nr */
    int rt, ct;  /* a task's rows (multiple of mr) and columns (multiple of nr) */
    int nt;      /* team size */
    float *bbuf; /* packed B of the current column range */
    float *abuf; /* nt slices of rt x kc floats: each thread's packed A rows */
} job;

/* One range of columns [n0, n0 + ncols) whose op(B) is packed at once: np
 * panels of nr columns (the last maybe narrower, padded to whole vectors),
 * each K slice taking npad floats per row of k. */
typedef struct span {
    int n0, ncols, np, npad;
} span;

static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int round_up(int a, int b) { return ceil_div(a, b) * b; }
static int imin(int a, int b) { return a < b ? a : b; }

static span span_at(const job *jb, int n0) {
    const int nr = jb->k->nr;
    span sp = {n0, imin(jb->sbw, jb->N - n0), 0, 0};
    sp.np = ceil_div(sp.ncols, nr);
    sp.npad = (sp.np - 1) * nr + round_up(sp.ncols - (sp.np - 1) * nr, jb->k->vw);
    return sp;
}

static int panel_packed(const job *jb, int w) { return !(jb->direct && w % jb->k->vw == 0); }

/* Packs panel `idx` (K slice idx / np, panel idx % np) of the span. */
static void pack_panel(const job *jb, const span *sp, int idx) {
    const heed_gemm_kernel *k = jb->k;
    const int pc = idx / sp->np * jb->kc, p = idx % sp->np;
    const int kcs = imin(jb->kc, jb->K - pc), col = p * k->nr, w = imin(k->nr, sp->ncols - col);
    if (!panel_packed(jb, w)) return;
    const int j = sp->n0 + col;
    const float *b = jb->tb ? jb->B + (ptrdiff_t)j * jb->ldb + pc : jb->B + (ptrdiff_t)pc * jb->ldb + j;
    k->pack_b(kcs, w, round_up(w, k->vw), b, jb->ldb, jb->tb,
              jb->bbuf + (size_t)pc * sp->npad + (size_t)p * kcs * k->nr);
}

/* Task `task` of the span: C[r0..r1)[c0..c1) over all of K, with A's rows
 * packed into this thread's slice `ab`. Within a K slice, NC_MAX-wide
 * column blocks keep their B panels in L2 while every row tile passes. */
static void run_task(const job *jb, const span *sp, int task, float *ab) {
    const heed_gemm_kernel *k = jb->k;
    const int mr = k->mr, nr = k->nr;
    const int nct = ceil_div(sp->ncols, jb->ct);
    const int r0 = task / nct * jb->rt, r1 = imin(jb->M, r0 + jb->rt);
    const int c0 = task % nct * jb->ct, c1 = imin(sp->ncols, c0 + jb->ct);
    for (int pc = 0; pc < jb->K; pc += jb->kc) {
        const int kcs = imin(jb->kc, jb->K - pc);
        const float beta = pc == 0 ? jb->beta : 1.0f;
        for (int ir = r0; ir < r1; ir += mr) {
            const float *a = jb->ta ? jb->A + (ptrdiff_t)pc * jb->lda + ir
                                    : jb->A + (ptrdiff_t)ir * jb->lda + pc;
            k->pack_a(kcs, imin(mr, r1 - ir), a, jb->lda, jb->ta, ab + (size_t)(ir - r0) * kcs, mr);
        }
        const float *bslice = jb->bbuf + (size_t)pc * sp->npad;
        for (int jc = c0; jc < c1; jc += NC_MAX) {
            const int je = imin(c1, jc + NC_MAX);
            for (int ir = r0; ir < r1; ir += mr) {
                const float *ap = ab + (size_t)(ir - r0) * kcs;
                float *c = jb->C + (ptrdiff_t)ir * jb->ldc + sp->n0;
                for (int col = jc; col < je; col += nr) {
                    const int w = imin(nr, je - col);
                    const float *b;
                    ptrdiff_t bks;
                    if (panel_packed(jb, w)) {
                        b = bslice + (size_t)(col / nr) * kcs * nr;
                        bks = round_up(w, k->vw);
                    } else {
                        b = jb->B + (ptrdiff_t)pc * jb->ldb + sp->n0 + col;
                        bks = jb->ldb;
                    }
                    k->tile(kcs, ap, b, bks, imin(mr, r1 - ir), w, c + col, jb->ldc, jb->alpha,
                            beta);
                }
            }
        }
    }
}

static int task_count(const job *jb, const span *sp) {
    return ceil_div(jb->M, jb->rt) * ceil_div(sp->ncols, jb->ct);
}

/* Task sizes: with a team, about two tasks per thread (handed out
 * dynamically, so a thread slowed by other work on the machine takes
 * fewer). Rows are split first -- each task re-reads the packed B it needs,
 * which is cheap -- down to 32 rows; then columns, which makes tasks pack
 * the same rows of A again. */
static void plan_tasks(job *jb) {
    const int mr = jb->k->mr, nr = jb->k->nr;
    const int mt = ceil_div(jb->M, mr), pt = ceil_div(jb->sbw, nr);
    int rt = mt, ct = pt;
    const int want = jb->nt > 1 ? 2 * jb->nt : 1;
    while (ceil_div(mt, rt) * ceil_div(pt, ct) < want) {
        if (rt * mr >= 64)
            rt = ceil_div(rt, 2);
        else if (ct > 1)
            ct = ceil_div(ct, 2);
        else if (rt > 1)
            rt = ceil_div(rt, 2);
        else
            break;
    }
    while (rt * mr > MC_MAX) rt = ceil_div(rt, 2);
    jb->rt = rt * mr;
    jb->ct = ct * nr;
}

/* The whole product for the team's thread t (or alone: nt == 1): for each
 * column span, pack its op(B) together, then share out the tasks. */
static void run_team(const job *jb, int t) {
    float *ab = jb->abuf + (size_t)t * jb->rt * jb->kc;
    for (int n0 = 0; n0 < jb->N; n0 += jb->sbw) {
        const span sp = span_at(jb, n0);
        const int npanels = ceil_div(jb->K, jb->kc) * sp.np, ntasks = task_count(jb, &sp);
        if (jb->nt == 1) {
            for (int i = 0; i < npanels; i++) pack_panel(jb, &sp, i);
            for (int i = 0; i < ntasks; i++) run_task(jb, &sp, i, ab);
            continue;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
        for (int i = 0; i < npanels; i++) pack_panel(jb, &sp, i);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int i = 0; i < ntasks; i++) run_task(jb, &sp, i, ab);
    }
}

static int threads_for(double work) {
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel()) nt = omp_get_max_threads();
#endif
    double cap = work / WORK_PER_THREAD;
    if (cap < nt) nt = cap < 1 ? 1 : (int)cap;
    return nt;
}

static heed_status run_blocked(job *jb) {
    const heed_gemm_kernel *k = jb->k;
    jb->kc = ceil_div(jb->K, ceil_div(jb->K, KC_MAX));
    /* Pack at most B_MAX floats of B at once, in whole panels. */
    int cols = (int)(B_MAX / jb->K);
    cols = cols < k->nr ? k->nr : cols / k->nr * k->nr;
    jb->sbw = imin(cols, round_up(jb->N, k->nr));
    jb->nt = threads_for((double)jb->M * jb->N * jb->K);
    plan_tasks(jb);
    if (jb->nt > 1 && task_count(jb, &(span){0, jb->sbw, 0, 0}) < 2) jb->nt = 1;
    const span sp = span_at(jb, 0);
    const size_t bfloats = (size_t)jb->K * sp.npad, afloats = (size_t)jb->rt * jb->kc;
    float *buf = buffer_get(bfloats + jb->nt * afloats);
    if (!buf)
        return heed_fail(HEED_ERR_NOMEM,
                         "heed_gemm: no memory for %zu bytes of packed panels (M=%d N=%d K=%d)",
                         (bfloats + jb->nt * afloats) * sizeof(float), jb->M, jb->N, jb->K);
    jb->bbuf = buf;
    jb->abuf = buf + bfloats;
    if (jb->nt == 1) {
        run_team(jb, 0);
        return HEED_OK;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(jb->nt)
    run_team(jb, omp_get_thread_num());
#endif
    return HEED_OK;
}

/* Columns 4g .. 4g+3 of C by dot products. */
static void dot_group(const job *jb, const float *a, ptrdiff_t lda, int g) {
    const int j = g * 4, w = imin(4, jb->N - j);
    jb->k->dot(jb->K, jb->M, a, lda, w, jb->B + (ptrdiff_t)j * jb->ldb, jb->ldb, jb->C + j, jb->ldc,
               jb->alpha, jb->beta);
}

/* M <= DOT_M_MAX rows against B stored N x K: dot products of contiguous
 * rows. A stored K x M is first copied to rows. */
static heed_status run_dot(const job *jb) {
    const float *a = jb->A;
    ptrdiff_t lda = jb->lda;
    if (jb->ta) {
        float *at = buffer_get((size_t)jb->M * jb->K);
        if (!at)
            return heed_fail(HEED_ERR_NOMEM, "heed_gemm: no memory for a %d x %d copy of A",
                             jb->M, jb->K);
        for (int k = 0; k < jb->K; k++)
            for (int r = 0; r < jb->M; r++) at[(size_t)r * jb->K + k] = jb->A[k * jb->lda + r];
        a = at;
        lda = jb->K;
    }
    const int groups = ceil_div(jb->N, 4);
    int nt = threads_for((double)jb->M * jb->N * jb->K);
    if (nt > groups) nt = groups;
    if (nt == 1) { /* no parallel region at all: small calls stay cheap */
        for (int g = 0; g < groups; g++) dot_group(jb, a, lda, g);
        return HEED_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int g = 0; g < groups; g++) dot_group(jb, a, lda, g);
    return HEED_OK;
}

heed_status heed_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M < 0 || N < 0 || K < 0)
        return heed_fail(HEED_ERR_ARG, "heed_gemm: negative size M=%d N=%d K=%d", M, N, K);
    if (M == 0 || N == 0) return HEED_OK;
    if (ldc < N || (K > 0 && (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N))))
        return heed_fail(HEED_ERR_ARG,
                         "heed_gemm: leading dimensions too small for M=%d N=%d K=%d "
                         "(trans_a=%d lda=%d, trans_b=%d ldb=%d, ldc=%d)",
                         M, N, K, trans_a != 0, lda, trans_b != 0, ldb, ldc);
    if (K == 0 || alpha == 0.0f) {
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            if (beta == 0.0f)
                memset(c, 0, sizeof(float) * N);
            else
                for (int j = 0; j < N; j++) c[j] *= beta;
        }
        return HEED_OK;
    }
    job jb = {.k = kernel(), .ta = trans_a != 0, .tb = trans_b != 0, .M = M, .N = N, .K = K,
              .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
              .lda = lda, .ldb = ldb, .ldc = ldc};
    if (jb.tb && M <= DOT_M_MAX) return run_dot(&jb);
    jb.direct = !jb.tb && M <= DIRECT_M_MAX;
    return run_blocked(&jb);
}
