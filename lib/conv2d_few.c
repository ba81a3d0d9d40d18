/* conv2d_few.c -- forward of convolutions with few input channels per
 * group (a network's first layer on grey or RGB images), on flat
 * zero-padded planes of the input's phases. Dimension letters as in
 * conv2d.c.
 *
 * A matrix product suits these badly: its sum is only ICg*K*K long (9 for
 * W1's 1 -> 32 first layer), so every tile of the result is loaded and
 * stored for a handful of multiply-adds. Here each output vector instead
 * stays in registers across every tap.
 *
 * The input goes to its zero-padded phase planes (conv2d_phase_impl.h),
 * over whose flat grid every tap is one contiguous loop. Eight output
 * channels share each load of the input. A large image goes in bands of
 * output rows (so that a band's grid stays in cache, and so that one image
 * can be shared between threads), each band with its own planes.
 *
 * Each output is the sum over c, u, v in that order, then the epilogue;
 * how images, bands and channels are shared between threads changes no
 * sum.
 */
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#endif

#include "balance_impl.h"
#include "conv2d_impl.h"
#include "conv2d_phase_impl.h"
#include "gemm.h"
#include "max3s2_impl.h"
#include "wide.h"

typedef heed_conv_geom geom;
typedef heed_conv_post post;

/* Output channels computed together, each over a block of grid positions
 * whose accumulators stay in registers: with AVX-512 two vectors (16
 * accumulators, so that the 8 weights broadcast per tap serve 16
 * multiply-adds; with one vector each the broadcasts nearly matched the
 * multiply-adds: ResNet-18's stem ran 18% slower than im2col, W1's first
 * layer 25% slower than now), else one (AVX2's 16 registers: two vectors
 * spilled, the stem 2.5x slower). 4 channels measured 10% slower. */
#define OUT_GROUP 8
#define VEC 16
#define BLOCK CONV_PHASE_BLOCK /* the largest block: two vectors */

/* Taps per output (ICg*K*K) this route takes: their weights sit in a
 * table on the stack. */
#define MAX_TAPS 256

/* Strides this route takes: S*S phases of ICg <= 4 channels stay few planes. */
#define FEW_MAX_STRIDE 4

/* Output rows per band: a group of output planes stays in cache
 * (PASS_FLOATS; a larger grid would go to memory and back between the taps
 * and the kept rows). */
static int band_rows(const geom *g) {
    const size_t rows = PASS_FLOATS / OUT_GROUP / conv_phase_width(g);
    return rows < 1 ? 1 : rows > (size_t)g->OH ? g->OH : (int)rows;
}

int heed_conv_few_fits(const geom *g) {
    return g->S <= FEW_MAX_STRIDE && g->K > 1 && g->ICg <= 4 && g->R <= MAX_TAPS;
}

/* out[k * ldo + p] = sum over t of wt[t * OUT_GROUP + k] * q[p + off[t]],
 * for k < OUT_GROUP and p < n (whole blocks of `block` <= BLOCK
 * positions). Fused multiply-adds where the CPU has them (HEED_FUSED: ISO
 * C mode leaves them apart, twice the instructions, and the stem ran 15%
 * slower). */
static inline __attribute__((always_inline)) void grid_taps_block(const float *q, const size_t *off,
                                                                  int taps, const float *wt,
                                                                  float *out, size_t ldo, int n,
                                                                  const int block) {
    for (int p0 = 0; p0 < n; p0 += block) {
        /* The first tap's products added to zero (what a multiply-add into
         * zeroed accumulators does): a loop zeroing acc compiled to a
         * `rep stos` per block. */
        float acc[OUT_GROUP][BLOCK];
        const float *restrict r0 = q + off[0] + p0;
        for (int k = 0; k < OUT_GROUP; k++)
#pragma omp simd
            for (int e = 0; e < block; e++) acc[k][e] = 0.0f + wt[k] * r0[e];
        const float *w = wt + OUT_GROUP;
        for (int t = 1; t < taps; t++, w += OUT_GROUP) {
            const float *restrict r = q + off[t] + p0;
            for (int k = 0; k < OUT_GROUP; k++)
#pragma omp simd /* else the wide versions unroll it to scalars */
                for (int e = 0; e < block; e++) acc[k][e] += w[k] * r[e];
        }
        for (int k = 0; k < OUT_GROUP; k++)
#pragma omp simd
            for (int e = 0; e < block; e++) out[k * ldo + p0 + e] = acc[k][e];
    }
}

typedef void grid_taps_fn(const float *q, const size_t *off, int taps, const float *wt,
                          float *out, size_t ldo, int n);

HEED_WIDE HEED_FUSED static void grid_taps_vector(const float *q, const size_t *off, int taps,
                                                  const float *wt, float *out, size_t ldo, int n) {
    grid_taps_block(q, off, taps, wt, out, ldo, n, VEC);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* grid_taps_block for AVX-512, written with intrinsics so that the 16
 * accumulators stay in registers: compiled from the loops above, they went
 * through a stack array on their way out, and a thread whose stack and
 * grid had a bad alignment against each other (4 KB aliasing: each load
 * from the stack waits on the store to the grid before it) ran the layer
 * 1.75x slower than another; W1's first layer then took as long on two
 * threads as on one. The same operations in the same order: fma(w, r, 0)
 * for the first tap, then fma(w, r, acc). Only the instructions heed_gemm's
 * AVX-512 kernel checks for. */
__attribute__((target("avx512f,avx2,avx,fma"))) static void grid_taps_avx512(
    const float *q, const size_t *off, int taps, const float *wt, float *out, size_t ldo, int n) {
    for (int p0 = 0; p0 < n; p0 += BLOCK) {
        __m512 acc[OUT_GROUP][2];
        const float *r = q + off[0] + p0;
        __m512 r0 = _mm512_loadu_ps(r), r1 = _mm512_loadu_ps(r + VEC);
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int k = 0; k < OUT_GROUP; k++) {
            const __m512 w = _mm512_set1_ps(wt[k]);
            acc[k][0] = _mm512_fmadd_ps(w, r0, zero);
            acc[k][1] = _mm512_fmadd_ps(w, r1, zero);
        }
        for (int t = 1; t < taps; t++) {
            const float *w = wt + (size_t)t * OUT_GROUP;
            r = q + off[t] + p0;
            r0 = _mm512_loadu_ps(r), r1 = _mm512_loadu_ps(r + VEC);
#pragma GCC unroll 8
            for (int k = 0; k < OUT_GROUP; k++) {
                const __m512 wk = _mm512_set1_ps(w[k]);
                acc[k][0] = _mm512_fmadd_ps(wk, r0, acc[k][0]);
                acc[k][1] = _mm512_fmadd_ps(wk, r1, acc[k][1]);
            }
        }
#pragma GCC unroll 8
        for (int k = 0; k < OUT_GROUP; k++) {
            _mm512_storeu_ps(out + k * ldo + p0, acc[k][0]);
            _mm512_storeu_ps(out + k * ldo + p0 + VEC, acc[k][1]);
        }
    }
}
#endif

/* The blocks follow heed_gemm's kernel: AVX-512 where it runs (so that
 * HEED_GEMM_KERNEL, or a test, can choose the narrower ones too). */
static grid_taps_fn *grid_taps_for_kernel(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    if (!strcmp(heed_gemm_kernel_name(), "avx512")) return grid_taps_avx512;
#endif
    return grid_taps_vector;
}

/* post() over the first OW positions of each of the grid's rows, in place
 * (for the pool, which takes its maxima of the outputs as they are kept). */
HEED_WIDE
static void post_rows_in_place(float *grid, int Wq, int rows, int OW, const post *p, int o) {
    const float a = p->a ? p->a[o] : 1.0f, c = p->c ? p->c[o] : 0.0f;
    for (int i = 0; i < rows; i++) {
        float *r = grid + (size_t)i * Wq;
        if (p->act)
            for (int j = 0; j < OW; j++) r[j] = heed_fused_act(r[j] * a + c, p->act);
        else
            for (int j = 0; j < OW; j++) r[j] = r[j] * a + c;
    }
}

/* One pooled row y (OW wide) from the `rows` (1..3) output rows from
 * first on, ld apart, W wide, through col (W floats of scratch, which the
 * AVX-512 row does without): max3s2_impl.h's routines, which give the pool
 * layer's bits. */
typedef void pool_row_fn(const float *first, size_t ld, int rows, int W, int OW, float *col,
                         float *y);

HEED_WIDE static void pool_row_portable(const float *first, size_t ld, int rows, int W, int OW,
                                        float *col, float *y) {
    heed_max3s2_row(first, ld, rows, W, OW, col, y);
}

#ifdef HEED_MAX3S2_AVX512
HEED_MAX3S2_TARGET static void pool_row_avx512(const float *first, size_t ld, int rows, int W,
                                               int OW, float *col, float *y) {
    (void)col;
    heed_max3s2_row_avx512(first, ld, rows, W, OW, y);
}
#endif

/* The pool's rows follow heed_gemm's kernel, as the grid's blocks do: AVX-512
 * where it runs (the same bits as the portable ones, which a test, or
 * HEED_GEMM_KERNEL, can choose). */
static pool_row_fn *pool_row_for_kernel(void) {
#ifdef HEED_MAX3S2_AVX512
    if (!strcmp(heed_gemm_kernel_name(), "avx512")) return pool_row_avx512;
#endif
    return pool_row_portable;
}

/* Pooled rows u0 .. u0+units-1 (of PW) into y from the grid's rows, output
 * rows i0 on (their post() applied): each the 3 x 3, stride 2 max of the
 * rows 2u-1 .. 2u+1 that lie in the image. */
static void pool_rows(const float *grid, int Wq, int i0, const geom *g, int u0, int units,
                      float *y, pool_row_fn *pool_row) {
    const int PW = heed_conv_pooled_side(g->OW);
    float col[HEED_MAX3S2_MAX_WIDTH]; /* OW <= HEED_MAX3S2_MAX_WIDTH: heed_conv2d_can_pool */
    for (int u = u0; u < u0 + units; u++) {
        const int r0 = 2 * u - 1 < 0 ? 0 : 2 * u - 1, r1 = 2 * u + 2 < g->OH ? 2 * u + 2 : g->OH;
        pool_row(grid + (size_t)(r0 - i0) * Wq, (size_t)Wq, r1 - r0, g->OW, PW, col,
                 y + (size_t)(u - u0) * PW);
    }
}

/* The output rows a band of `units` rows of y from u0 on needs: u0 ..
 * u0+units-1 themselves, or, pooled, the rows under their windows. */
static void band_output_rows(const geom *g, int pool, int u0, int units, int *i0, int *i1) {
    if (!pool) {
        *i0 = u0, *i1 = u0 + units;
        return;
    }
    *i0 = 2 * u0 - 1 < 0 ? 0 : 2 * u0 - 1;
    *i1 = 2 * (u0 + units) < g->OH ? 2 * (u0 + units) : g->OH;
}

/* Rows u0 .. u0+units-1 of y for image n (output rows, or, with pool_row,
 * pooled ones), every group: the phase planes of the output rows they need
 * into q, then output channels a group of OUT_GROUP at a time through the
 * grid, kept rows (or their pool) to y. */
static void few_band(const heed_conv2d *l, const geom *g, grid_taps_fn *grid_taps, const float *x,
                     float *y, int n, int u0, int units, float *q, float *grid, const post *p,
                     pool_row_fn *pool_row) {
    const int pool = pool_row != NULL;
    int i0, i1;
    band_output_rows(g, pool, u0, units, &i0, &i1);
    const int rows = i1 - i0, Wq = conv_phase_width(g);
    const size_t ldq = conv_phase_plane_size(g, rows), ldg = conv_phase_grid_size(g, rows);
    const int YH = pool ? heed_conv_pooled_side(g->OH) : g->OH;
    const int YW = pool ? heed_conv_pooled_side(g->OW) : g->OW;
    size_t off[MAX_TAPS];
    conv_phase_tap_offsets(g, ldq, off);
    for (int gi = 0; gi < g->G; gi++) {
        heed_conv_phase_fill(g, x, n, gi * g->ICg, i0, rows, q);
        for (int o0 = 0; o0 < g->OCg; o0 += OUT_GROUP) {
            const int oc = g->OCg - o0 < OUT_GROUP ? g->OCg - o0 : OUT_GROUP;
            const int o = gi * g->OCg + o0;
            float wt[MAX_TAPS * OUT_GROUP]; /* the group's weights, tap by tap */
            for (int t = 0; t < g->R; t++)
                for (int k = 0; k < OUT_GROUP; k++)
                    wt[t * OUT_GROUP + k] = k < oc ? l->w[(size_t)(o + k) * g->R + t] : 0.0f;
            grid_taps(q, off, g->R, wt, grid, ldg, (int)ldg);
            for (int k = 0; k < oc; k++) {
                float *yo = y + (((size_t)n * g->OC + o + k) * YH + u0) * YW;
                if (!pool) {
                    heed_conv_phase_keep_rows(grid + k * ldg, Wq, yo, rows, g->OW, p, o + k);
                    continue;
                }
                if (p) post_rows_in_place(grid + k * ldg, Wq, rows, g->OW, p, o + k);
                pool_rows(grid + k * ldg, Wq, i0, g, u0, units, yo, pool_row);
            }
        }
    }
}

/* Item `it`'s rows u0 .. u1-1 of y for its image: bands of `rows` rows,
 * or, with per > 0 (one image at the threads' speeds), band it % per of
 * thread it / per's rows row_at[..] .. row_at[..+1]-1. */
static void item_rows(int YH, int it, int bands, int rows, int per, const int *row_at, int *u0,
                      int *u1) {
    if (per) {
        const int owner = it / per, j = it % per, span = row_at[owner + 1] - row_at[owner];
        *u0 = row_at[owner] + span * j / per;
        *u1 = row_at[owner] + span * (j + 1) / per;
        return;
    }
    *u0 = it % bands * rows;
    *u1 = *u0 + rows < YH ? *u0 + rows : YH;
}

/* Work in rows of y (output rows, or pooled rows: each band then computes
 * the output rows under its windows, one more than twice its own, the row
 * shared with the band before computed by both). */
heed_status heed_conv_few_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                  const post *p, int pool) {
    const int YH = pool ? heed_conv_pooled_side(g->OH) : g->OH;
    int rows = band_rows(g); /* output rows; in rows of y (a pooled row's
                                * band of 2 output rows and the one before): */
    if (pool) rows = (rows + 1) / 2 < YH ? (rows + 1) / 2 : YH;
    int bands = (YH + rows - 1) / rows;
    const size_t row_work = (size_t)g->OC * g->R * g->OW * (pool ? 2 : 1);
    int T = conv_pass_threads(g->N * bands, row_work * rows);
    const int tmax = conv_max_threads();
    if (T < tmax && g->N * bands < tmax) { /* fewer images than threads: cut them finer */
        const int want = (tmax + g->N - 1) / g->N;
        const int split = (YH + want - 1) / want, split_bands = (YH + split - 1) / split;
        const int t = conv_pass_threads(g->N * split_bands, row_work * split);
        if (t > T) rows = split, bands = split_bands, T = t;
    }
    /* One image shared by T threads: thread t's bands cover rows row_at[t]
     * .. row_at[t+1]-1 of y, cut at its learnt speed (balance_impl.h), in
     * `per` bands of equal rows. Equal bands otherwise. */
    const int balanced = g->N == 1 && T > 1 && T <= HEED_CONV_BALANCE_THREADS && bands % T == 0;
    const int per = balanced ? bands / T : 0;
    double cut[HEED_CONV_BALANCE_THREADS + 1], seconds[HEED_CONV_BALANCE_THREADS] = {0};
    int row_at[HEED_CONV_BALANCE_THREADS + 1];
    if (balanced) {
        heed_balance_split(l->thread_speed, T, YH, 1, row_at, cut);
        rows = heed_balance_most_units(T, YH, per); /* whatever the speeds */
    }
    /* The most output rows a band computes. */
    const int out_rows = pool ? (2 * rows + 1 < g->OH ? 2 * rows + 1 : g->OH) : rows;
    const size_t planes = conv_phase_planes_size(g, out_rows);
    const size_t per_thread =
        conv_slice(planes + OUT_GROUP * conv_phase_grid_size(g, out_rows), T);
    float *work;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, per_thread * T, &work));
    const int items = g->N * bands;
    grid_taps_fn *taps = grid_taps_for_kernel();
    pool_row_fn *pool_row = pool ? pool_row_for_kernel() : NULL;
    if (T == 1) { /* also inside a caller's parallel region: this thread does it all */
        for (int it = 0; it < items; it++) {
            int u0, u1;
            item_rows(YH, it, bands, rows, per, row_at, &u0, &u1);
            if (u1 > u0)
                few_band(l, g, taps, x, y, it / bands, u0, u1 - u0, work, work + planes, p,
                         pool_row);
        }
        return HEED_OK;
    }
#pragma omp parallel num_threads(T)
    {
        const int t = conv_thread();
        const double start = balanced ? conv_now() : 0.0;
        float *q = work + t * per_thread;
        /* Static: balanced, thread t takes bands t*per onwards. */
#pragma omp for schedule(static) nowait
        for (int it = 0; it < items; it++) {
            int u0, u1;
            item_rows(YH, it, bands, rows, per, row_at, &u0, &u1);
            if (u1 > u0)
                few_band(l, g, taps, x, y, it / bands, u0, u1 - u0, q, q + planes, p, pool_row);
        }
        if (balanced) seconds[t] = conv_now() - start;
    }
    if (balanced) heed_balance_note(l->thread_speed, T, cut, seconds);
    return HEED_OK;
}
