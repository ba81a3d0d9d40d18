/* gemm.c -- C = alpha * op(A) op(B) + beta * C, row-major (see gemm.h).
 *
 * Letters: M, N, K the product's dimensions; MR x NR the kernel's register
 * tile (8 x 48 with AVX-512); KC the depth of one slice of K; NC the width
 * of one packed block of B.
 *
 * The blocking, after Goto and BLIS but arranged for a row-major C whose
 * rows are the vector direction:
 *
 *   C is cut into tasks (rectangles; rows and columns only, never K)
 *   each task, on whichever thread takes it next:
 *     for pc: KC-deep slices of K, in order
 *       for jc: NC-wide blocks of the task's columns
 *         pack op(B)[pc.., jc..] into KC x NR micro-panels       (L2)
 *         for ir: MR rows of the task
 *           A micro-panel op(A)[ir.., pc..], KC x MR             (L1)
 *           for jr: the block's micro-panels
 *             tile: C[ir.., jc+jr..] (+)= A micro-panel x B micro-panel
 *
 * A stored M x K (trans_a == 0) is read in place: the tile broadcasts from
 * MR rows, each a contiguous stream, as cheap as a packed panel. That saves
 * the 4-5% of the time packing took (rdtsc, 1024^3) and lets a column
 * split between threads pack nothing twice. A stored K x M is packed (a
 * micro-panel at a time, at the first B block). B stored K x N is read in
 * place too, and the two inner loops swap (each B micro-panel, KC x NR,
 * read once from memory, stays in L2 while every row tile of the task
 * passes over it), when the task's A block (M x KC) is small enough to
 * stream from cache for every micro-panel and B's row stride does not
 * crowd the KC rows into a few cache sets (direct_ok): packing B took
 * 4-16% of the time on the convolution shapes (a read and a write of B,
 * for only 64-256 rows of A).
 *
 * With A in place, the columns of a final partial vector (N % vw of them,
 * the tail) are dot products of A's rows with B's columns instead: a tile
 * spends a whole vector's time on them, a third more than the rest of a
 * 49-column product (ResNet-18's 7x7 stage at batch 1), where dot products
 * cost what their multiply-adds cost.
 *
 * The first K slice applies beta, later ones add (beta = 1). Each element of
 * C is thus the same sequence of operations over k = 0..K-1 whatever tile,
 * task, thread or operand layout computes it (the tail's columns, fixed by
 * the shape, always by dot products), and KC depends on K alone: threaded
 * runs are bit-identical to single-threaded ones.
 *
 * With at most 4 rows and B transposed, each element is a vector dot
 * product (chosen from the shape alone, never the thread count). Threads
 * are used only when each gets enough work to pay for waking it.
 *
 * An epilogue (heed_gemm_post, gemm_impl.h) runs on each tile's block of C
 * right after the tile's last K slice, and on each run of tail columns
 * after its dot products: on the thread that wrote the block, while it is
 * in that core's L1.
 */
#include "gemm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm_impl.h"
#include "gemm_kernel.h"
#include "tensor.h"
#include "wide.h"

enum {
    /* Slices up to 1024 deep: C is read and written once per slice, and
     * with both cores busy that traffic costs more than a deep A micro-panel
     * (MR x KC, 32 KB at most, in the 48 KB L1). Re-measured at 1 thread on
     * 1024^3 (Zen 5): KC 256, 512 and 1024 all ran 177-191 GFLOP/s, within
     * the noise of the shared machine. */
    KC_MAX = 1024,
    /* A packed B block (KC x NC) of about 600 KB stays in the 1 MB L2 while
     * every row tile of a task passes over it. */
    NC_BYTES = 600 * 1024,
    MC_MAX = 1024,  /* rows of C a task covers at most */
    PACK_ROWS = 8,  /* rows of B (stored K x N) packed together */
    PACK_COST = 16, /* packing a float costs about this many multiply-adds */
    /* A read in place but too large for the L2 (over A_STREAM_FLOATS)
     * streams from memory once per task that covers its rows: a split of
     * the columns reads it again. Counted at half a packing, it keeps
     * ResNet-18's 512 x 49 x 4608 in row tasks on two threads (45% faster
     * than four 16-column tasks); A that stays in cache costs nothing
     * extra (counting it there moved W1's 64 x 784 x 576 to a plan 6%
     * slower). */
    A_STREAM_COST = 8,
    A_STREAM_FLOATS = 256 * 1024,
    DOT_M_MAX = 4,     /* up to this many rows, B transposed goes to the dot kernel */
    DOT_ROWS = 8,      /* rows per dot kernel call (its limit, gemm_kernel.h) */
    DOT_COLS = 4,      /* columns per dot kernel call (its limit) */
    /* B is read in place only while the task's rows of A for one K slice
     * (M x KC floats, 2 MB) stay in cache: they stream past every B
     * micro-panel (measured: 512 x 1024 slices still gained 10%, 1024 x 1024
     * lost 15%). */
    DIRECT_A_FLOATS = 512 * 1024,
    /* ...except for a narrow product (N within two panels) with a large A,
     * like ResNet-18's 7x7 stage at batch 1 (512 x 49 x 4608): in place,
     * A streams from memory once per B micro-panel, twice in all; packed,
     * with the usual loop order, once (measured: 5-7% faster on 1 and 2
     * threads). Small A (RAM's layers) keep reading B in place: packing it
     * measured slower there. */
    NARROW_A_FLOATS = 1024 * 1024,
    /* Multiply-adds that justify one more thread (waking one costs a few
     * microseconds). Products of 1..8 rows count as 8: they stream B from
     * memory, and two threads stream faster. */
    WORK_PER_THREAD = 1 << 19
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

/* ---- portable kernel: a 4 x 8 tile. With GCC or clang, in their
 * portable vector extension of 4 floats, which becomes SSE2 on x86-64 and
 * NEON on ARM (the 8 accumulators, 2 B vectors and a broadcast fit either
 * register file); elsewhere, and for a tile of fewer than 4 rows, in plain
 * C. Both paths update each accumulator as acc + a * b, k in order: the
 * same operations, so results do not depend on which path a tile takes.
 * ---- */

enum { G_MR = 4, G_NR = 8 };

/* C[r][j] = alpha acc + beta C for the tile's h x w corner. */
static void store_generic(const float acc[G_MR][G_NR], int h, int w, float *c, ptrdiff_t ldc,
                          float alpha, float beta) {
    for (int r = 0; r < h; r++)
        for (int j = 0; j < w; j++) {
            float *cp = c + r * ldc + j;
            *cp = beta == 0.0f ? alpha * acc[r][j] : alpha * acc[r][j] + beta * *cp;
        }
}

static void tile_plain(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                       ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha, float beta) {
    float acc[G_MR][G_NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        const float *bk = b + k * bks;
        for (int r = 0; r < h; r++) {
            float x = a[r * ars + k * aks];
            for (int j = 0; j < G_NR; j++) acc[r][j] += x * bk[j];
        }
    }
    store_generic(acc, h, w, c, ldc, alpha, beta);
}

#if defined(__GNUC__)
typedef float gvec __attribute__((vector_size(16)));

static inline gvec gvec_load(const float *p) {
    gvec v;
    memcpy(&v, p, sizeof v); /* B rows need not be 16-byte aligned */
    return v;
}

static void tile_generic(int kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,
                         ptrdiff_t bks, int h, int w, float *c, ptrdiff_t ldc, float alpha, float beta) {
    if (h != G_MR) { /* rows past h may not be there to read */
        tile_plain(kc, a, ars, aks, b, bks, h, w, c, ldc, alpha, beta);
        return;
    }
    gvec c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    for (int k = 0; k < kc; k++) {
        const float *bk = b + k * bks, *ak = a + k * aks;
        const gvec b0 = gvec_load(bk), b1 = gvec_load(bk + 4);
        const float x0 = ak[0], x1 = ak[ars], x2 = ak[2 * ars], x3 = ak[3 * ars];
        c00 += x0 * b0, c01 += x0 * b1;
        c10 += x1 * b0, c11 += x1 * b1;
        c20 += x2 * b0, c21 += x2 * b1;
        c30 += x3 * b0, c31 += x3 * b1;
    }
    float acc[G_MR][G_NR];
    const gvec rows[G_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    memcpy(acc, rows, sizeof acc);
    store_generic(acc, h, w, c, ldc, alpha, beta);
}
#else
#define tile_generic tile_plain
#endif

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
        for (int k = 0; k < kc; k++)
            for (int j = 0; j < w; j++) bp[(ptrdiff_t)k * wp + j] = b[k * ldb + j];
    }
    for (int k = 0; k < kc; k++)
        for (int j = w; j < wp; j++) bp[(ptrdiff_t)k * wp + j] = 0.0f;
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
    if (!strcmp(name, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")
                   ? &heed_gemm_kernel_avx512
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

/* ---- each thread's packing buffer (its task's rows of A, one block of B):
 * grown, never shrunk, kept for the thread's life (OpenMP keeps its
 * workers) and freed when the thread exits, by a pthread key's
 * destructor ---- */

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
    const float *const *brows; /* B by its rows' addresses (heed_gemm_rows), or NULL */
    float *C;
    ptrdiff_t lda, ldb, ldc;
    const heed_gemm_epilogue *ep; /* or NULL */
    int direct;    /* read full-width B panels in place (B not transposed) */
    int a_inplace; /* read A in place (stored M x K) instead of packing it */
    int tail;      /* first column of a final partial vector done by dot products, or N */
    /* Blocking and tasks, fixed by the shape and the team size. */
    int kc;        /* depth of a K slice (the last may be shorter) */
    int nc;        /* width of a packed B block, a multiple of vw */
    int rt, ct;    /* a task's rows (multiple of mr) and columns (multiple of nr) */
    int ntasks;
    int next;      /* the next task nobody has taken (atomic) */
} job;

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static int round_up(int a, int b) { return ceil_div(a, b) * b; }
static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* dst (cols x rows, rows contiguous) = the transpose of src (rows x cols,
 * rows lds apart): operands turned into the dot kernel's rows. */
static void transpose_into(int rows, int cols, const float *src, ptrdiff_t lds, float *dst) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[r * lds + c];
}

static int panel_packed(const job *jb, int w) { return !(jb->direct && w % jb->k->vw == 0); }

/* Floats of packing buffer a thread needs: a task's rows of A for one K
 * slice, then one B block (its last panel padded to whole vectors). */
static size_t buffer_floats(const job *jb) {
    return (jb->a_inplace ? 0 : (size_t)jb->rt * jb->kc) + (size_t)jb->kc * (jb->nc + jb->k->vw) +
           (jb->tb ? 0 : (size_t)jb->kc * (jb->N - jb->tail));
}

/* The epilogue on C[r0..r0+rows)[c0..c0+cols), if any. */
static void epilogue(const job *jb, int r0, int rows, int c0, int cols) {
    if (jb->ep && rows > 0 && cols > 0)
        jb->ep->fn(jb->ep->ctx, jb->C + (ptrdiff_t)r0 * jb->ldc + c0, jb->ldc, r0, rows, cols);
}

/* Whether the tiles apply the epilogue themselves (its per-row form, in
 * the kernel's registers), so that only the tail's columns call it. */
static int tiles_post(const job *jb) { return jb->ep && jb->ep->rows && jb->k->tile_post; }

/* The tile at rows ir .. ir+h-1, columns j .. j+w-1 of C; the last K
 * slice's applies the epilogue when tiles_post. */
static void run_tile(const job *jb, int last, int kcs, const float *a, ptrdiff_t ars,
                     ptrdiff_t aks, const float *b, ptrdiff_t bks, int ir, int h, int j, int w,
                     float beta) {
    float *c = jb->C + (ptrdiff_t)ir * jb->ldc + j;
    if (last && tiles_post(jb)) {
        const heed_gemm_rows_post *rp = jb->ep->rows;
        const heed_gemm_rows_post rows = {rp->a ? rp->a + ir : NULL, rp->b ? rp->b + ir : NULL,
                                          rp->act};
        jb->k->tile_post(kcs, a, ars, aks, b, bks, h, w, c, jb->ldc, jb->alpha, beta, &rows);
        return;
    }
    jb->k->tile(kcs, a, ars, aks, b, bks, h, w, c, jb->ldc, jb->alpha, beta);
}

/* A panel of B given by its rows' addresses (heed_gemm_rows): row r's
 * columns j .. j+w-1 to bp + r*wp, zeros up to wp. In one loop, not the
 * kernel's packer a row at a time (a call per row of the 7x7 stage's
 * 4608: 3% of its samples), each row fetched 16 ahead by its address. */
HEED_WIDE static void pack_rows(const float *const *rows, int kcs, int j, int w, int wp,
                                float *bp) {
    for (int r = 0; r < kcs; r++) {
        if (r + 16 < kcs) __builtin_prefetch(rows[r + 16] + j);
        const float *src = rows[r] + j;
        float *dst = bp + (size_t)r * wp;
        for (int c = 0; c < w; c++) dst[c] = src[c];
        for (int c = w; c < wp; c++) dst[c] = 0.0f;
    }
}

/* Packs op(B)[pc, pc + kcs) x [j0, j0 + ncw) into panels at bb. B stored
 * K x N is packed a few rows of k at a time across every panel, so each
 * row of B is read front to back (panel by panel, the rows would be
 * 192-byte pieces a page apart, which the prefetchers do not follow).
 * B given by its rows' addresses goes a panel at a time (pack_rows). */
static void pack_block(const job *jb, int pc, int kcs, int j0, int ncw, float *bb) {
    const heed_gemm_kernel *k = jb->k;
    const int step = jb->tb ? kcs : PACK_ROWS;
    /* Read in place, only a last panel of partial vectors is packed: skip
     * the others outright (looping over them per PACK_ROWS rows cost 5% of
     * a 32 x 784 x 96 product). */
    const int col0 = jb->direct ? (ncw - 1) / k->nr * k->nr : 0;
    if (!panel_packed(jb, ncw - col0)) return;
    if (jb->brows) {
        for (int col = col0; col < ncw; col += k->nr) {
            const int w = imin(k->nr, ncw - col);
            pack_rows(jb->brows + pc, kcs, j0 + col, w, round_up(w, k->vw), bb + (size_t)col * kcs);
        }
        return;
    }
    for (int k0 = 0; k0 < kcs; k0 += step) {
        const int rows = imin(step, kcs - k0);
        for (int col = col0; col < ncw; col += k->nr) {
            const int w = imin(k->nr, ncw - col), wp = round_up(w, k->vw);
            const int j = j0 + col;
            const float *b = jb->tb ? jb->B + (ptrdiff_t)j * jb->ldb + pc + k0
                                    : jb->B + (ptrdiff_t)(pc + k0) * jb->ldb + j;
            k->pack_b(rows, w, wp, b, jb->ldb, jb->tb,
                      bb + (size_t)col * kcs + (size_t)k0 * wp);
        }
    }
}

/* Rows ir .. ir+h-1 of op(A), columns pc .. pc+kcs-1: in place, or packed
 * into ap when `pack` (else ap already holds them). Sets the strides. */
static const float *a_panel(const job *jb, int ir, int h, int pc, int kcs, float *ap, int pack,
                            ptrdiff_t *ars, ptrdiff_t *aks) {
    if (jb->a_inplace) {
        *ars = jb->lda, *aks = 1;
        return jb->A + (ptrdiff_t)ir * jb->lda + pc;
    }
    *ars = 1, *aks = jb->k->mr;
    if (pack) {
        const float *a = jb->ta ? jb->A + (ptrdiff_t)pc * jb->lda + ir
                                : jb->A + (ptrdiff_t)ir * jb->lda + pc;
        jb->k->pack_a(kcs, h, a, jb->lda, jb->ta, ap, jb->k->mr);
    }
    return ap;
}

/* The tail's columns of B for the K slice at pc as rows (the dot kernel's
 * layout): B stored N x K already has them; stored K x N, they are copied
 * into bt. */
static const float *tail_b(const job *jb, int pc, int kcs, float *bt, ptrdiff_t *ldt) {
    const int t0 = jb->tail, w = jb->N - t0;
    if (jb->tb) {
        *ldt = jb->ldb;
        return jb->B + (ptrdiff_t)t0 * jb->ldb + pc;
    }
    if (jb->brows)
        for (int r = 0; r < kcs; r++)
            for (int c = 0; c < w; c++) bt[(size_t)c * kcs + r] = jb->brows[pc + r][t0 + c];
    else
        transpose_into(kcs, w, jb->B + (ptrdiff_t)pc * jb->ldb + t0, jb->ldb, bt);
    *ldt = kcs;
    return bt;
}

/* C[r0..r1)[tail..N) for one K slice: dot products of A's rows (in place)
 * with the tail's columns of B (tail_b). */
static void tail_rows(const job *jb, int r0, int r1, int pc, int kcs, float beta,
                      const float *b, ptrdiff_t ldt) {
    const int t0 = jb->tail, w = jb->N - t0;
    for (int ir = r0; ir < r1; ir += DOT_ROWS)
        for (int j = 0; j < w; j += DOT_COLS)
            jb->k->dot(kcs, imin(DOT_ROWS, r1 - ir), jb->A + (ptrdiff_t)ir * jb->lda + pc,
                       jb->lda, imin(DOT_COLS, w - j), b + j * ldt, ldt,
                       jb->C + (ptrdiff_t)ir * jb->ldc + t0 + j, jb->ldc, jb->alpha, beta);
    if (pc + kcs == jb->K) epilogue(jb, r0, r1 - r0, t0, w);
}

/* Task `task`: C[r0..r1)[c0..c1) over all of K. Per K slice, each NC-wide
 * B block is packed (into L2) and every row tile passes over it, its A
 * micro-panel in L1 (A packed once per slice, a micro-panel at a time just
 * before the first B block's tiles use it). With B read in place (few
 * rows), the loops swap: each B micro-panel is read from memory once and
 * stays in cache while all the task's row tiles use it. */
static void run_task(const job *jb, int task, float *buf) {
    const heed_gemm_kernel *k = jb->k;
    const int mr = k->mr, nr = k->nr;
    const int nct = ceil_div(jb->N, jb->ct);
    const int r0 = task / nct * jb->rt, r1 = imin(jb->M, r0 + jb->rt);
    const int c0 = task % nct * jb->ct, c1 = imin(jb->N, c0 + jb->ct);
    const int ce = imin(c1, jb->tail); /* the tiles' columns end here */
    float *ab = buf, *bb = buf + (jb->a_inplace ? 0 : (size_t)jb->rt * jb->kc);
    float *bt = bb + (size_t)jb->kc * (jb->nc + jb->k->vw);
    ptrdiff_t ars, aks;
    for (int pc = 0; pc < jb->K; pc += jb->kc) {
        const int kcs = imin(jb->kc, jb->K - pc);
        const float beta = pc == 0 ? jb->beta : 1.0f;
        const int last = pc + kcs == jb->K; /* the sums end in this slice */
        /* The tail's dot products run beside the tiles of the last block
         * (while the rows of A are in cache), or alone. B given by its
         * rows' addresses is gathered for them after that block's packing
         * has brought the rows into cache: gathered first, each of the 7x7
         * stage's 4608 rows missed the cache (3% of its samples). */
        ptrdiff_t ldt = 0;
        const int has_tail = c1 > jb->tail, gather_late = has_tail && jb->brows && ce > c0;
        const float *tcols = has_tail && !gather_late ? tail_b(jb, pc, kcs, bt, &ldt) : NULL;
        if (tcols && ce == c0) tail_rows(jb, r0, r1, pc, kcs, beta, tcols, ldt);
        for (int jc = c0; jc < ce; jc += jb->nc) {
            const int ncw = imin(jb->nc, ce - jc);
            pack_block(jb, pc, kcs, jc, ncw, bb);
            if (gather_late && jc + ncw == ce) tcols = tail_b(jb, pc, kcs, bt, &ldt);
            if (jb->direct) {
                if (!jb->a_inplace && jc == c0)
                    for (int ir = r0; ir < r1; ir += mr)
                        a_panel(jb, ir, imin(mr, r1 - ir), pc, kcs, ab + (size_t)(ir - r0) * kcs,
                                1, &ars, &aks);
                for (int col = 0; col < ncw; col += nr) {
                    const int w = imin(nr, ncw - col);
                    const float *b = bb + (size_t)col * kcs;
                    ptrdiff_t bks = round_up(w, k->vw);
                    if (!panel_packed(jb, w)) {
                        b = jb->B + (ptrdiff_t)pc * jb->ldb + jc + col;
                        bks = jb->ldb;
                    }
                    for (int ir = r0; ir < r1; ir += mr) {
                        const int h = imin(mr, r1 - ir);
                        const float *a = a_panel(jb, ir, h, pc, kcs,
                                                 ab + (size_t)(ir - r0) * kcs, 0, &ars, &aks);
                        run_tile(jb, last, kcs, a, ars, aks, b, bks, ir, h, jc + col, w, beta);
                        if (last && !tiles_post(jb)) epilogue(jb, ir, h, jc + col, w);
                    }
                }
                if (tcols && jc + ncw == ce) tail_rows(jb, r0, r1, pc, kcs, beta, tcols, ldt);
                continue;
            }
            for (int ir = r0; ir < r1; ir += mr) {
                const int h = imin(mr, r1 - ir);
                const float *a = a_panel(jb, ir, h, pc, kcs, ab + (size_t)(ir - r0) * kcs,
                                         jc == c0, &ars, &aks);
                for (int col = 0; col < ncw; col += nr) {
                    const int w = imin(nr, ncw - col);
                    run_tile(jb, last, kcs, a, ars, aks, bb + (size_t)col * kcs,
                             round_up(w, k->vw), ir, h, jc + col, w, beta);
                }
                if (last && !tiles_post(jb)) epilogue(jb, ir, h, jc, ncw);
                if (tcols && jc + ncw == ce) tail_rows(jb, ir, ir + h, pc, kcs, beta, tcols, ldt);
            }
        }
    }
}

/* Takes tasks until none is left. */
static void run_tasks(job *jb, float *buf) {
    for (;;) {
        int t = __atomic_fetch_add(&jb->next, 1, __ATOMIC_RELAXED);
        if (t >= jb->ntasks) return;
        run_task(jb, t, buf);
    }
}

/* Splits C into tasks for nt threads. Each task packs its own rows of A
 * (or streams them, A_STREAM_COST) and columns of B, so its cost is, in
 * multiply-adds, about rows * cols * K + PACK_COST * (rows + cols) * K,
 * and a thread's share is that times tasks / nt. Rows split at whole tiles,
 * columns at whole vectors, into a multiple of nt tasks (at most 4 per
 * thread): a panel narrower than NR costs the tile time in proportion to
 * its vectors, so a split need not wait for whole panels, and 1024 columns
 * go to two threads as 512 + 512, not 528 + 496. The split with the most
 * tasks within 3% of the cheapest wins: tasks are handed out as threads
 * come free, so a thread slowed by other work on the machine ends up
 * taking fewer. */
static double split_cost(const job *jb, int nt, int rc, int cc, int *rows, int *cols) {
    const int mr = jb->k->mr, nr = jb->k->vw;
    const int mt = ceil_div(jb->M, mr), pt = ceil_div(jb->N, nr);
    if (rc > mt || cc > pt || (rc * cc) % nt) return -1.0;
    *rows = ceil_div(mt, rc);
    *cols = ceil_div(pt, cc);
    if (ceil_div(mt, *rows) * ceil_div(pt, *cols) != rc * cc) return -1.0; /* empty tasks */
    const double r = (double)*rows * mr, c = (double)*cols * nr;
    const double a_cost = !jb->a_inplace                                      ? PACK_COST
                          : (size_t)jb->M * jb->K > A_STREAM_FLOATS ? A_STREAM_COST
                                                                    : 0.0;
    return (double)rc * cc / nt *
           (r * c + a_cost * r + (jb->direct ? 0.0 : PACK_COST) * c);
}

static void plan_tasks(job *jb, int nt) {
    double best = -1.0;
    int rows, cols;
    for (int rc = 1; nt > 1 && rc <= 4 * nt; rc++)
        for (int cc = 1; rc * cc <= 4 * nt; cc++) {
            const double cost = split_cost(jb, nt, rc, cc, &rows, &cols);
            if (cost >= 0 && (best < 0 || cost < best)) best = cost;
        }
    if (best < 0) {
        /* One thread, or too small a product to give every thread a task:
         * one task (up to MC_MAX rows). More would read A again for each
         * band of columns (ResNet-18's 512 x 49 x 4608 ran 40% slower on
         * one thread in three 16-column tasks, each streaming all of A
         * from memory). */
        jb->rt = round_up(jb->M, jb->k->mr);
        jb->ct = round_up(jb->N, jb->k->vw);
        while (jb->rt > MC_MAX) jb->rt = round_up(ceil_div(jb->rt, 2), jb->k->mr);
        jb->ntasks = ceil_div(jb->M, jb->rt);
        return;
    }
    const double limit = 1.03 * best;
    int most = 0;
    for (int rc = 1; rc <= 4 * nt; rc++)
        for (int cc = 1; rc * cc <= 4 * nt; cc++) {
            const double cost = split_cost(jb, nt, rc, cc, &rows, &cols);
            if (cost >= 0 && cost <= limit && rc * cc > most) {
                most = rc * cc;
                jb->rt = rows * jb->k->mr;
                jb->ct = cols * jb->k->vw;
            }
        }
    while (jb->rt > MC_MAX) jb->rt = round_up(ceil_div(jb->rt, 2), jb->k->mr);
    jb->ntasks = ceil_div(jb->M, jb->rt) * ceil_div(jb->N, jb->ct);
}

/* Whether to read B (stored K x N) in place rather than pack it: packing
 * costs a read and a write of B, in place costs one read per B micro-panel
 * while the task's rows of A (M x KC) stream past it, from L2 or L3. Two
 * limits: that A block must stay in cache (DIRECT_A_FLOATS), and the KC rows
 * of a micro-panel must not crowd into a few cache sets (a row stride that
 * is a multiple of a large power of two maps them all to the same sets of
 * the 1024-set L2). */
static int direct_ok(const job *jb) {
    if (jb->tb || jb->brows) return 0;
    if ((size_t)jb->M * jb->kc > DIRECT_A_FLOATS) return 0;
    if (jb->N <= 2 * jb->k->nr && (size_t)jb->M * jb->K >= NARROW_A_FLOATS) return 0;
    const size_t bytes = (size_t)jb->ldb * sizeof(float);
    size_t g = 1; /* rows sharing a set, per 1024 rows */
    if (bytes % 64 == 0)
        for (size_t lines = bytes / 64; lines % 2 == 0 && g < 1024; lines /= 2) g *= 2;
    return (size_t)jb->kc * g <= 16384;
}

static int threads_for(const job *jb) {
    const double work = (double)(jb->M < 8 ? 8 : jb->M) * jb->N * jb->K;
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
    jb->kc = ceil_div(jb->K, ceil_div(jb->K, KC_MAX)); /* equal slices; K alone decides */
    jb->direct = direct_ok(jb);
    int nt = threads_for(jb);
    plan_tasks(jb, nt);
    /* A task's tile columns (the tail's are not in blocks) in blocks of
     * equal width, whole vectors, each at most NC_BYTES for a K slice: a
     * short last block costs a pass over the task's rows of A and, a
     * vector wide, a tile that spends most of its time loading (1024
     * columns in blocks of 144 left one of 16). */
    int nc = NC_BYTES / ((int)sizeof(float) * jb->kc) / k->nr * k->nr;
    if (nc < k->nr) nc = k->nr;
    const int cols = imin(jb->ct, jb->tail);
    jb->nc = cols > nc ? round_up(ceil_div(cols, ceil_div(cols, nc)), k->vw) : imax(cols, k->vw);
    if (jb->ntasks < nt) nt = jb->ntasks;
    const size_t need = buffer_floats(jb);
    /* The calling thread's buffer is required; a worker that cannot get one
     * takes no tasks and leaves them to the others (no barrier is needed,
     * and the result is the same). */
    float *buf = buffer_get(need);
    if (!buf)
        return heed_fail(HEED_ERR_NOMEM,
                         "heed_gemm: no memory for %zu bytes of packed panels (M=%d N=%d K=%d)",
                         need * sizeof(float), jb->M, jb->N, jb->K);
    jb->next = 0;
    if (nt == 1) {
        run_tasks(jb, buf);
        return HEED_OK;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        float *mine = omp_get_thread_num() == 0 ? buf : buffer_get(need);
        if (mine) run_tasks(jb, mine);
    }
#endif
    return HEED_OK;
}

/* Columns 4g .. 4g+3 of C by dot products. */
static void dot_group(const job *jb, const float *a, ptrdiff_t lda, int g) {
    const int j = g * 4, w = imin(4, jb->N - j);
    jb->k->dot(jb->K, jb->M, a, lda, w, jb->B + (ptrdiff_t)j * jb->ldb, jb->ldb, jb->C + j, jb->ldc,
               jb->alpha, jb->beta);
    epilogue(jb, 0, jb->M, j, w);
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
        transpose_into(jb->K, jb->M, jb->A, jb->lda, at);
        a = at;
        lda = jb->K;
    }
    const int groups = ceil_div(jb->N, 4);
    int nt = threads_for(jb);
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

/* C = beta C: a product with nothing to add. */
static heed_status scale_only(int M, int N, float beta, float *C, int ldc,
                              const heed_gemm_epilogue *ep) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, sizeof(float) * N);
        else
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
    if (ep) ep->fn(ep->ctx, C, ldc, 0, M, N);
    return HEED_OK;
}

heed_status heed_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    return heed_gemm_post(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

heed_status heed_gemm_post(int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C,
                           int ldc, const heed_gemm_epilogue *ep) {
    if (M < 0 || N < 0 || K < 0)
        return heed_fail(HEED_ERR_ARG, "heed_gemm: negative size M=%d N=%d K=%d", M, N, K);
    if (M == 0 || N == 0) return HEED_OK;
    if (ldc < N || (K > 0 && (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N))))
        return heed_fail(HEED_ERR_ARG,
                         "heed_gemm: leading dimensions too small for M=%d N=%d K=%d "
                         "(trans_a=%d lda=%d, trans_b=%d ldb=%d, ldc=%d)",
                         M, N, K, trans_a != 0, lda, trans_b != 0, ldb, ldc);
    if (K == 0 || alpha == 0.0f) return scale_only(M, N, beta, C, ldc, ep);
    job jb = {.k = kernel(), .ta = trans_a != 0, .tb = trans_b != 0, .M = M, .N = N, .K = K,
              .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
              .lda = lda, .ldb = ldb, .ldc = ldc, .ep = ep};
    if (jb.tb && M <= DOT_M_MAX) return run_dot(&jb);
    jb.a_inplace = !jb.ta;
    jb.tail = jb.a_inplace ? N - N % jb.k->vw : N;
    return run_blocked(&jb);
}

heed_status heed_gemm_rows(int M, int N, int K, float alpha, const float *A, int lda,
                           const float *const *brows, float beta, float *C, int ldc,
                           const heed_gemm_epilogue *ep) {
    if (M < 0 || N < 0 || K < 0)
        return heed_fail(HEED_ERR_ARG, "heed_gemm_rows: negative size M=%d N=%d K=%d", M, N, K);
    if (M == 0 || N == 0) return HEED_OK;
    if (ldc < N || (K > 0 && lda < K))
        return heed_fail(HEED_ERR_ARG,
                         "heed_gemm_rows: leading dimensions too small for M=%d N=%d K=%d "
                         "(lda=%d, ldc=%d)",
                         M, N, K, lda, ldc);
    if (K == 0 || alpha == 0.0f) return scale_only(M, N, beta, C, ldc, ep);
    job jb = {.k = kernel(), .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A,
              .brows = brows, .C = C, .lda = lda, .ldb = N, .ldc = ldc, .a_inplace = 1, .ep = ep};
    jb.tail = N - N % jb.k->vw;
    return run_blocked(&jb);
}
