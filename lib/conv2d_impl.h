/* conv2d_impl.h -- what conv2d.c shares with its helpers: conv2d_direct.c
 * (direct loops for convolutions with few channels per group),
 * conv2d_few.c (forwards with few input channels, on phase planes:
 * conv2d_phase_impl.h) and conv2d_shifted.c (products on shifted
 * copies). Internal to the
 * library: the geometry of one call, the output epilogue, small helpers.
 * Dimension letters as in conv2d.c.
 */
#ifndef HEED_CONV2D_IMPL_H
#define HEED_CONV2D_IMPL_H

#include <stddef.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "activation_impl.h"
#include "conv2d.h"
#include "gemm.h"
#include "gemm_impl.h"
#include "parallel.h"

/* A pass batches images until it has about this many output columns, and
 * its im2col matrix stays within PASS_FLOATS (1 MB, the L2 cache) unless a
 * single image needs more. Wider passes measured slower: the columns no
 * longer stay in cache between im2col and the matrix product. */
#define PASS_COLUMNS 768
#define PASS_FLOATS ((size_t)1 << 18)
/* Multiply-adds per thread that justify running passes in parallel. */
#define PASS_WORK_MIN ((size_t)1 << 20)

typedef struct heed_conv_geom {
    int N, IC, H, W, OC, OH, OW, K, S, P, D, G, ICg, OCg, R, L;
} heed_conv_geom;

/* The geometry of dx as a convolution of dy (the transposed convolution,
 * stride 1): dy (N, OC, OH, OW) -> dx (N, IC, H, W), padding D*(K-1) - P. */
static inline heed_conv_geom conv_transposed(const heed_conv_geom *g) {
    heed_conv_geom t = *g;
    t.IC = g->OC, t.H = g->OH, t.W = g->OW;
    t.OC = g->IC, t.OH = g->H, t.OW = g->W;
    t.P = g->D * (g->K - 1) - g->P;
    t.ICg = g->OCg, t.OCg = g->ICg;
    t.R = t.ICg * g->K * g->K;
    t.L = g->H * g->W;
    return t;
}

/* The output positions [*lo, *hi) within [0, n_out) whose input position
 * o*S + off falls inside [0, n_in). */
static inline void conv_valid_range(int off, int S, int n_in, int n_out, int *lo, int *hi) {
    int a = off >= 0 ? 0 : (-off + S - 1) / S;
    int b = n_in - off <= 0 ? 0 : (n_in - off + S - 1) / S;
    if (b > n_out) b = n_out;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* Where kernel tap (u, v) reads: output rows [ilo, ihi) and columns
 * [jlo, jhi) see input pixels (i*S + off_h, j*S + off_w) inside the plane;
 * the rest of the tap's im2col row is padding. */
typedef struct heed_conv_tap {
    int off_h, off_w, ilo, ihi, jlo, jhi;
} heed_conv_tap;

static inline heed_conv_tap conv_tap_at(const heed_conv_geom *g, int u, int v) {
    heed_conv_tap t = {.off_h = u * g->D - g->P, .off_w = v * g->D - g->P};
    conv_valid_range(t.off_h, g->S, g->H, g->OH, &t.ilo, &t.ihi);
    conv_valid_range(t.off_w, g->S, g->W, g->OW, &t.jlo, &t.jhi);
    if (t.jlo == t.jhi) t.ihi = t.ilo; /* no column fits: nothing does */
    return t;
}

/* ---- the epilogue ------------------------------------------------------ */

/* y = act(a[o] * y + c[o]) per output channel o; a NULL means 1, c NULL 0.
 * With only a bias (a NULL, c = b) it is the plain y + b. */
typedef struct heed_conv_post {
    const float *a, *c;
    int act; /* HEED_FUSE_RELU, HEED_FUSE_HARDSWISH (layer.h) or 0 */
} heed_conv_post;

/* Rows o0 .. o0+rows-1 of an (rows, ld) block, n values each (ld 0: one
 * row). In conv2d_post.c, compiled for the CPU's widest vectors: inline
 * here, in baseline code, its 4-float loop took a quarter of a 1x1
 * strided projection's time on two threads. */
void heed_conv_post_rows(float *y, size_t ld, size_t n, int o0, int rows, const heed_conv_post *p);

/* The epilogue run by the product as its blocks of C end (gemm_impl.h):
 * row r of the product is output channel o0 + r. */
typedef struct conv_post_at {
    const heed_conv_post *p;
    int o0;
    heed_gemm_rows_post rows; /* the same, as the product's tiles apply it */
} conv_post_at;

void heed_conv_post_block(const void *at, float *c, ptrdiff_t ldc, int row0, int rows, int cols);

/* heed_gemm_epilogue for post at output channel o0 on, in *ep (NULL when
 * there is no post). Its per-row form, which the AVX-512 tiles apply in
 * registers, is offered for a hardswish only: a 16 -> 48 1x1 layer with
 * its batch norm and hardswish at batch 64, one thread, ran 1.19-1.25x
 * faster so (ten rounds in turn, against heed_conv_post_block on each
 * stored tile); with a relu, or the batch norm alone, 0.95-0.97x (the
 * function's loops for those are cheap, its hardswish one not). */
static inline const heed_gemm_epilogue *conv_epilogue(const heed_conv_post *p, int o0,
                                                      conv_post_at *at, heed_gemm_epilogue *ep) {
    if (!p) return NULL;
    *at = (conv_post_at){p, o0, {p->a ? p->a + o0 : NULL, p->c ? p->c + o0 : NULL, p->act}};
    *ep = (heed_gemm_epilogue){heed_conv_post_block, at,
                               p->act == HEED_FUSE_HARDSWISH ? &at->rows : NULL};
    return ep;
}

/* C (M, N) = A (M, K) B (K, N) + beta C. heed_gemm reads both operands in
 * place for these shapes (the weights, and the im2col matrix or shifted
 * copies): no packing. (Products of 17-64 rows used to run in 16-row
 * slices to get that; heed_gemm now reads B in place for up to 512K floats
 * of A per K slice, and whole products measured as fast or faster.) */
static inline heed_status conv_gemm(int M, int N, int K, const float *A, int lda, const float *B,
                                    int ldb, float beta, float *C, int ldc) {
    return heed_gemm(0, 0, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* conv_gemm with an epilogue (or none: ep NULL). */
static inline heed_status conv_gemm_post(int M, int N, int K, const float *A, int lda,
                                         const float *B, int ldb, float beta, float *C, int ldc,
                                         const heed_gemm_epilogue *ep) {
    return heed_gemm_post(0, 0, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, ep);
}

/* Columns per vector of heed_gemm's widest kernel. heed_gemm computes a
 * product's last N % 16 columns by dot products (A read in place), which
 * add in another order than its tiles. So that no result depends on how a
 * layer was cut into bands, and so on the thread count, bands of an image
 * start at multiples of 16 columns (the image's last partial vector is
 * then the only one, in every cut) and whether it is padded is decided by
 * the layer's shape alone (conv_product_columns). */
#define CONV_VECTOR 16

/* Floats from the start of one thread's slice of a shared work buffer (its
 * copies, columns, partial sums) to the next one's, for a team of T: with
 * more than one thread, the slice rounded up to whole cache lines, then a
 * guard of CONV_SLICE_GUARD floats that no thread touches (none for an
 * empty slice: nothing there to guard). Slices packed end to end made the
 * thread whose slice followed another's run slower: swapping the two slices
 * swapped which thread lagged, and a gap between them closed it, the more
 * the wider up to 32-64K floats. The likely cause is the first core's
 * prefetcher running on past the end of its slice's strided reads (the
 * products read the copies' rows hundreds of bytes apart) into lines the
 * other core is writing. W1's 32 -> 64 14x14 convolution at batch 64 on two
 * threads (`heed bench --net`, one layer): 1.57-1.66 ms packed, 1.13-1.20
 * with the guard, as fast as one thread alone on half the batch
 * (1.12-1.19); 8K floats between the slices gave 1.43, 16K 1.27-1.30. A
 * guard's pages are never written, so they add little resident memory (W1's
 * training step's peak 113.5 -> 114.4 MB). */
#define CONV_SLICE_GUARD ((size_t)65536)

static inline size_t conv_slice(size_t floats, int T) {
    /* Whole vectors are whole cache lines (16 floats, 64 bytes). */
    const size_t lines = (floats + CONV_VECTOR - 1) / CONV_VECTOR * CONV_VECTOR;
    return T > 1 && floats ? lines + CONV_SLICE_GUARD : floats;
}

/* Rows of an (OH, OW) plane, OW < CONV_VECTOR, that may be stored as
 * whole vectors from their starts, in row order: those whose vector ends
 * inside the plane (i*OW + CONV_VECTOR <= OH*OW). What a vector puts past
 * its row's end falls on later rows, which their own stores overwrite. */
static inline int conv_whole_rows(int OH, int OW) { return OH - (CONV_VECTOR - 1) / OW; }

static inline int conv_round_vector(int n) {
    return (n + CONV_VECTOR - 1) / CONV_VECTOR * CONV_VECTOR;
}

/* Columns a product computes for n wanted (an image of g, or a band of
 * one): rounded up to whole vectors when the layer pads, that is when its
 * products have up to 64 rows (W1's layers, ResNet-18's first stage; wider
 * ones measured no faster padded) and rounding its images up adds little.
 * A last, partial vector of columns costs heed_gemm its dot products;
 * computing a few columns more, and dropping them, measured faster (W1's
 * and ResNet-18's 14x14 maps, 196 -> 208 columns: 5-15% less time; 7x7
 * maps, 49 -> 64, gained nothing). The B operand must then have that many
 * readable columns in every row. */
static inline int conv_product_columns(const heed_conv_geom *g, int n) {
    const int Lp = conv_round_vector(g->L);
    return g->OCg <= 64 && Lp - g->L <= g->L / 8 ? conv_round_vector(n) : n;
}

/* The work space a call uses: the network's, or the layer's own. */
static inline heed_work *conv_work(heed_conv2d *l) { return l->work ? l->work : &l->own_work; }

/* This thread's number in the current team (0 outside one). */
static inline int conv_thread(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Wall-clock seconds, for timing a thread's share (balance_impl.h). */
static inline double conv_now(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return 0.0;
#endif
}

/* Threads in the current team (1 outside one). */
static inline int conv_team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* After a parallel region: HEED_OK, or its workers' failure (par_note),
 * naming the function and the layer. */
static inline heed_status conv_workers_done(heed_status st, const heed_conv2d *l,
                                            const char *fn) {
    return par_workers_done(st, fn, l->base.name);
}

/* Threads a layer may use: 1 inside a parallel region. */
static inline int conv_max_threads(void) {
#ifdef _OPENMP
    if (!omp_in_parallel()) return omp_get_max_threads();
#endif
    return 1;
}

/* Bands per image when `images` images, each in `bands` bands (at most
 * `most`), run on T threads: raised until every thread gets the same
 * number of bands, when there are few (else one thread would wait for the
 * last band of a batch-1 layer). */
static inline int conv_balanced_bands(int images, int bands, int T, int most) {
    if (T > 1 && (long)images * bands < 4L * T)
        while ((long)images * bands % T && bands < most) bands++;
    return bands;
}

/* Bands are ranges of an image's output columns (its L = OH*OW positions
 * in memory order), cut at whole vectors (CONV_VECTOR) as evenly as they
 * come: band b of `bands` starts at this column. A band may start and end
 * inside an output row. */
static inline int conv_band_start(const heed_conv_geom *g, int bands, int b) {
    const long vectors = (g->L + CONV_VECTOR - 1) / CONV_VECTOR;
    const long c = vectors * b / bands * CONV_VECTOR;
    return c < g->L ? (int)c : g->L;
}

/* The most columns a band of `bands` has. */
static inline int conv_band_columns(const heed_conv_geom *g, int bands) {
    const int vectors = (g->L + CONV_VECTOR - 1) / CONV_VECTOR;
    const int cols = (vectors + bands - 1) / bands * CONV_VECTOR;
    return cols < g->L ? cols : g->L;
}

/* Output rows a band of `cols` columns touches, at most (one more than it
 * fills, as it may start inside a row). */
static inline int conv_band_span(const heed_conv_geom *g, int cols) {
    const int rows = (cols + g->OW - 1) / g->OW + (cols < g->L);
    return rows < g->OH ? rows : g->OH;
}

/* Threads to run `passes` forward passes on, each with `work` multiply-adds.
 * Passes, bands and backward chunks are shared out with OpenMP's static
 * schedule: each thread takes one contiguous range, the first thread the
 * first images, as batch norm, the activations, pooling and the attention
 * modules split a batch. Each core then reads the images it wrote itself.
 * Taken as threads came free (a dynamic schedule), a layer read about half
 * of its input from the other core's cache: MobileNet-style inference
 * (fmnist-mobile at batch 64, two threads) ran 1.25x slower, its first
 * 1x1 convolution 2.5x (0.69 against 0.27 ms, one per-layer run). */
static inline int conv_pass_threads(int passes, size_t work) {
    int t = conv_max_threads();
    size_t cap = (size_t)passes * work / PASS_WORK_MIN;
    if ((size_t)t > cap) t = cap < 1 ? 1 : (int)cap;
    if (t > passes) t = passes;
    return t;
}

/* Backward passes run in chunks of images (or of passes), each summing its
 * own weight-gradient partial; the partials are added in chunk order. The
 * chunk count depends on the shape alone -- at most BACKWARD_CHUNKS, and
 * partials of at most BACKWARD_PARTIAL_FLOATS -- never on the thread
 * count, so the weight gradient is the same sum in the same order however
 * many threads ran it. */
#define BACKWARD_CHUNKS 8
#define BACKWARD_PARTIAL_FLOATS ((size_t)1 << 22)

static inline int conv_backward_chunks(const heed_conv_geom *g, int passes) {
    size_t c = BACKWARD_PARTIAL_FLOATS / ((size_t)g->OC * g->R);
    if (c > BACKWARD_CHUNKS) c = BACKWARD_CHUNKS;
    if (c > (size_t)passes) c = (size_t)passes;
    return c < 1 ? 1 : (int)c;
}

/* Chunk ch's share [*lo, *hi) of `count` images (or passes). */
static inline void conv_chunk_range(int count, int chunks, int ch, int *lo, int *hi) {
    *lo = (int)((long)count * ch / chunks);
    *hi = (int)((long)count * (ch + 1) / chunks);
}

/* Zeroes the chunks' partials partial[ch * stride + i], i < n (not the
 * guards between them: conv_slice). */
static inline void conv_zero_partials(float *partial, size_t n, size_t stride, int chunks) {
    for (int ch = 0; ch < chunks; ch++) memset(partial + (size_t)ch * stride, 0, n * sizeof(float));
}

/* Folds the chunks' partials partial[ch * stride + i] into the first, in chunk
 * order: partial[i] = ((p_0[i] + p_1[i]) + p_2[i]) + ... Block by block
 * of i, chunk by chunk, so each pass is a contiguous vector loop over a
 * block that stays in L1 (summing each i over the chunks in turn reads
 * `chunks` lines n floats apart per value: 1% of W1's training step with
 * 8 chunks, and it grew with their count). */
#define FOLD_BLOCK 2048
static inline void conv_fold_partials(float *partial, size_t n, size_t stride, int chunks) {
    const size_t blocks = (n + FOLD_BLOCK - 1) / FOLD_BLOCK;
    PARALLEL_IF(n * chunks > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t b = 0; b < blocks; b++) {
            const size_t i0 = b * FOLD_BLOCK, m = n - i0 < FOLD_BLOCK ? n - i0 : FOLD_BLOCK;
            float *restrict sum = partial + i0;
            for (int ch = 1; ch < chunks; ch++) {
                const float *restrict q = partial + (size_t)ch * stride + i0;
                _Pragma("omp simd")
                for (size_t i = 0; i < m; i++) sum[i] += q[i];
            }
        });
}

/* dw[i] += the chunks' partials partial[ch * stride + i], summed in chunk
 * order (into the first partial, which is overwritten). */
static inline void conv_add_partials(float *dw, float *partial, size_t n, size_t stride,
                                     int chunks) {
    conv_fold_partials(partial, n, stride, chunks);
    PARALLEL_SIMD_IF(n > PAR_MIN, for (size_t i = 0; i < n; i++) dw[i] += partial[i];);
}

/* db[r] += the sum of row r of m (rows, cols), rows ld apart. */
static inline void conv_sum_rows(float *db, const float *m, int rows, int cols, int ld) {
    PARALLEL_IF((size_t)rows * cols > PAR_MIN, "omp parallel for schedule(static)",
        for (int r = 0; r < rows; r++) {
            const float *q = m + (size_t)r * ld;
            float s = 0.0f;
            _Pragma("omp simd reduction(+ : s)")
            for (int i = 0; i < cols; i++) s += q[i];
            db[r] += s;
        });
}

/* The bias gradient: db[o] += the sum of dy[n, o, :, :] over every image. */
static inline void conv_add_bias_grad(heed_conv2d *l, const heed_conv_geom *g, const float *dy) {
    for (int n = 0; l->db && n < g->N; n++)
        conv_sum_rows(l->db, dy + (size_t)n * g->OC * g->L, g->OC, g->L, g->L);
}

/* conv2d_direct.c: y = post(conv(x)) and the backward pass (dx written over
 * when `fresh`) for ICg * OCg <= 4. */
heed_status heed_conv_direct_forward(heed_conv2d *l, const heed_conv_geom *g, const float *x,
                                     float *y, const heed_conv_post *p);
heed_status heed_conv_direct_backward(heed_conv2d *l, const heed_conv_geom *g, const float *x,
                                      const float *dy, float *dx, int fresh);

/* conv2d_few.c: whether a forward takes the route for few input channels
 * per group, and that forward; with `pool`, y gets the 3 x 3, stride 2,
 * padding 1 max pool of the output instead (heed_conv_pooled_side). */
int heed_conv_few_fits(const heed_conv_geom *g);
heed_status heed_conv_few_forward(heed_conv2d *l, const heed_conv_geom *g, const float *x,
                                  float *y, const heed_conv_post *p, int pool);

/* The side of the 3 x 3, stride 2, padding 1 max pool of an output side
 * (the pool's windows are sized as a convolution's). */
static inline int heed_conv_pooled_side(int side) { return heed_conv2d_out_size(side, 3, 2, 1, 1); }

/* conv2d_shifted.c: whether a convolution's forward takes the shifted path,
 * that forward, and the backward of a stride-1 one that does (dx NULL, or
 * the transposed convolution possible: P <= D*(K-1); written over when
 * `fresh`). */
int heed_conv_use_shifted(const heed_conv_geom *g);
heed_status heed_conv_shifted_forward(heed_conv2d *l, const heed_conv_geom *g, const float *x,
                                      float *y, const heed_conv_post *p, const char *fn);
heed_status heed_conv_shifted_backward(heed_conv2d *l, const heed_conv_geom *g, const float *x,
                                       const float *dy, float *dx, int fresh);

/* conv2d_shifted.c: whether a forward takes the route of one image too
 * small for the shifted path, whose product reads im2col's rows where they
 * stand in shifted copies of the input (heed_gemm_rows), and that forward.
 * Its results equal im2col's bit for bit. */
int heed_conv_use_rows(const heed_conv_geom *g);
heed_status heed_conv_rows_forward(heed_conv2d *l, const heed_conv_geom *g, const float *x,
                                   float *y, const heed_conv_post *p);

#endif
