/* conv2d_shifted.c -- convolutions as matrix products on shifted copies of
 * the input instead of im2col: forward for any stride, backward for stride
 * 1. Dimension letters as in conv2d.c.
 *
 * Tap row u of the kernel reads input row i*S + u*D - P for output row i,
 * which is row i + q_u of the input's row phase p_u (the rows h with
 * h % S == p_u; q_u = floor((u*D - P) / S)). So the same copy of a phase
 * serves every output row, shifted by q_u rows. Instead of im2col's K*K
 * copies of the input, K copies per row phase read suffice (one per tap
 * column v, each shifted by v*D - P columns, every S-th column, padded
 * with zero rows):
 *   Z_p[c, v, r, j] = x[c, (r + qmin)*S + p, j*S + v*D - P]   (0 outside)
 * and for each tap row u one product reads Z_{p_u} from row q_u - qmin on:
 *   forward:  Y (OCg, L) += A_u (OCg, ICg*K) x Z_{p_u}[:, :, q_u - qmin .., :]
 *             (rows (c, v), L columns), A_u[o, (c, v)] = W[o, c, u, v]
 * For stride 1 there is one phase, q_u = u*D - P, and K copies; for
 * ResNet's 3x3 stride-2 convolutions two phases, 6 copies of a quarter of
 * the input each where im2col makes 9; a 1x1 stride-2 projection is one
 * copy and one product.
 *   backward (stride 1): dA_u += dY (OCg, L) x Z[:, :, u*D .., :]^T, added
 *             into dW; dx += the transposed convolution (stride 1, padding
 *             D*(K-1) - P, kernel flipped, channel axes swapped), computed
 *             the same way on shifted copies of dy.
 * Z's rows are a phase's rows apart, so the products read it in place. A
 * large image goes in bands of output columns whose Z stays in cache.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balance_impl.h"
#include "conv2d_impl.h"
#include "gemm_impl.h"
#include "parallel.h"
#include "wide.h"

typedef heed_conv_geom geom;
typedef heed_conv_post post;

/* Images whose output columns together reach this take the shifted path
 * when their kernel has several rows (W1's 14x14 maps, with the reordered
 * weights kept between calls, 10% faster than im2col; 28x28 ones 10-25%).
 * ResNet-18's 7x7 maps at batch 1 stay on im2col: frozen, they ran 3-4%
 * faster shifted on one thread and 8% on two, but a network that is not
 * frozen checks each kept reorder against its weights on every call (a
 * read of 2 x 9.4 MB per 512-channel layer: the whole batch-1 forward 10-13%
 * slower), and the kept copies added 62 MB to its peak memory. */
#define SHIFT_MIN_COLUMNS 196
/* Strides up to this take the shifted path (a phase's slot per residue)... */
#define SHIFT_MAX_STRIDE 4
/* ...when their products, ICg*K deep where im2col's are ICg*K*K, are at
 * least this deep: ResNet-18's stem (3 channels, 7x7, stride 2: 21 deep)
 * ran 15% slower shifted; conv2d_few.c now takes it. */
#define SHIFT_MIN_STRIDED_DEPTH 64

int heed_conv_use_shifted(const geom *g) {
    const int wide = (size_t)g->N * g->L >= SHIFT_MIN_COLUMNS;
    if (g->S == 1) return g->K > 1 && wide;
    if (g->S > SHIFT_MAX_STRIDE || g->ICg * g->K < SHIFT_MIN_STRIDED_DEPTH) return 0;
    return g->K == 1 || wide; /* a 1x1 strided kernel is one product, as im2col's would be */
}

/* Tap row u reads row q_u of row phase p_u (the header's q_u and p_u). */
static int tap_phase(const geom *g, int u) {
    const int e = u * g->D - g->P;
    return (e % g->S + g->S) % g->S;
}

static int tap_shift(const geom *g, int u) { return (u * g->D - g->P - tap_phase(g, u)) / g->S; }

/* Rows of Z beyond a band's output rows: the spread of the taps' shifts
 * (q_u grows with u). D*(K-1) for stride 1. */
static int shift_halo(const geom *g) { return tap_shift(g, g->K - 1) - tap_shift(g, 0); }

/* The row phases the taps read, each given a slot of Z in the order the
 * taps first read them: slot[p] for phase p (-1: unread). Returns how
 * many. */
static int phase_slots(const geom *g, int slot[SHIFT_MAX_STRIDE]) {
    int n = 0;
    for (int p = 0; p < g->S; p++) slot[p] = -1;
    for (int u = 0; u < g->K; u++)
        if (slot[tap_phase(g, u)] < 0) slot[tap_phase(g, u)] = n++;
    return n;
}

static int slot_count(const geom *g) {
    int slot[SHIFT_MAX_STRIDE];
    return phase_slots(g, slot);
}

static size_t shifted_rows(const geom *g) { return (size_t)g->OH + shift_halo(g); }

/* Output rows per band: a large image is done in bands of output rows so
 * that the band's Z stays in cache (PASS_FLOATS), the product still
 * PASS_COLUMNS wide when it can. */
static int band_rows(const geom *g) {
    const size_t per_row = (size_t)slot_count(g) * g->ICg * g->K * g->OW, halo = shift_halo(g);
    size_t rows = PASS_FLOATS / per_row > halo ? PASS_FLOATS / per_row - halo : 1;
    const size_t min_rows = (PASS_COLUMNS + g->OW - 1) / g->OW;
    if (rows < min_rows) rows = min_rows;
    return rows >= (size_t)g->OH ? g->OH : (int)rows;
}

/* Floats between Z's rows (c, v) for a band of `rows` output rows: the
 * rows it reads, and at least the columns a padded product reads (more
 * only where there is no halo: a 1x1 or 2x2 strided kernel). */
static size_t z_stride(const geom *g, int rows) {
    const size_t n = (size_t)(rows + shift_halo(g)) * g->OW;
    const size_t pc = conv_product_columns(g, rows * g->OW);
    return n > pc ? n : pc;
}

/* Floats of one phase's slot of Z for one image and group. */
static size_t slot_size(const geom *g, int rows) { return (size_t)g->ICg * g->K * z_stride(g, rows); }

/* Floats of Z: every slot. */
static size_t shifted_size(const geom *g, int rows) { return slot_count(g) * slot_size(g, rows); }

/* One channel's copies of `rows` rows of its phase, one per tap column
 * v (shift_copies' Z rows): dst + v*ldv + r*OW gets the input row
 * src + r*S*W at columns j*S + v*D - P, j < OW, zero where that falls
 * outside the row. */
typedef void taps_fn(const geom *g, float *dst, size_t ldv, const float *src, int rows);

/* dst[r*ldd + j] = src[r*lds + j*S] for r < rows, j < n: strided rows'
 * entries, packed. */
HEED_WIDE static void gather_strided(float *restrict dst, size_t ldd, const float *restrict src,
                                     size_t lds, int rows, int n, int S) {
    for (int r = 0; r < rows; r++) {
        float *restrict d = dst + r * ldd;
        const float *restrict s = src + r * lds;
        if (S == 2) /* the usual case, written so that it vectorizes */
            for (int j = 0; j < n; j++) d[j] = s[2 * j];
        else
            for (int j = 0; j < n; j++) d[j] = s[(size_t)j * S];
    }
}

/* The portable taps_fn: per tap column, the valid columns copied (a row
 * wrapped into the next one's padding for stride 1 with OW == W), the
 * padding zeroed. */
static void taps_portable(const geom *g, float *dst, size_t ldv, const float *src, int rows) {
    const int W = g->W, OW = g->OW, S = g->S;
    for (int v = 0; v < g->K; v++) {
        const int off = v * g->D - g->P;
        int jlo, jhi;
        conv_valid_range(off, S, W, OW, &jlo, &jhi);
        float *d = dst + v * ldv;
        if (jlo == jhi) {
            memset(d, 0, (size_t)rows * OW * sizeof(float));
            continue;
        }
        if (S == 1 && OW == W) {
            /* As in im2col_row: one run from the first valid entry to the
             * last, then the entries that wrapped past a row edge are
             * zeroed. */
            const size_t first = (size_t)jlo, last = (size_t)(rows - 1) * OW + jhi;
            memcpy(d + first, src + first + off, (last - first) * sizeof(float));
        } else if (S == 1) {
            for (int h = 0; h < rows; h++)
                memcpy(d + (size_t)h * OW + jlo, src + (size_t)h * W + off + jlo,
                       (size_t)(jhi - jlo) * sizeof(float));
        } else {
            gather_strided(d + jlo, (size_t)OW, src + jlo * S + off, (size_t)S * W, rows,
                           jhi - jlo, S);
        }
        for (int h = 0; h < rows; h++) {
            float *r = d + (size_t)h * OW;
            for (int j = 0; j < jlo; j++) r[j] = 0.0f;
            for (int j = jhi; j < OW; j++) r[j] = 0.0f;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

/* taps_fn with AVX-512, stride S of 1 or 2 (a constant once inlined).
 * Per 16 entries of a copy's row: masked loads that read only the row's
 * entries the 16 need (zeros elsewhere: the padding comes free), for
 * stride 2 the even lanes picked out, one store. The masks depend on the
 * column alone and are made once for all rows. The portable loops cost a
 * call per copy and per row's padding (GCC makes those loops memset calls):
 * with 7- to 28-entry rows that was most of their time, 30% of ResNet-18's
 * strided 3x3 convolutions, 5% of its 7x7 stage. */
static inline __attribute__((always_inline, target("avx512f,avx2,avx,fma"))) void taps_avx512(
    const geom *g, float *dst, size_t ldv, const float *src, int rows, const int S) {
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const int W = g->W, OW = g->OW;
    const size_t lds = (size_t)S * W;
    for (int v = 0; v < g->K; v++) {
        const int off = v * g->D - g->P;
        for (int j = 0; j < OW; j += 16) {
            const int m = OW - j < 16 ? OW - j : 16, s0 = S * j + off;
            /* Lanes [lo, hi) of those read from s0 on are the row's entries
             * the m outputs need. */
            const long lo = s0 < 0 ? -s0 : 0, hi = S * (m - 1) + 1 < W - s0 ? S * (m - 1) + 1 : W - s0;
            uint64_t bits = 0;
            if (hi > lo && lo < 32) bits = ((1ull << hi) - 1) & ~((1ull << lo) - 1);
            const __mmask16 ml = (__mmask16)bits, mh = (__mmask16)(bits >> 16);
            const __mmask16 ms = (__mmask16)((1u << m) - 1);
            float *d = dst + v * ldv + j;
            /* The address s0 may lie before the row (masked off). */
            const float *sp = src + s0;
            for (int r = 0; r < rows; r++) {
                __m512 a = _mm512_maskz_loadu_ps(ml, sp + r * lds);
                if (S == 2)
                    a = _mm512_permutex2var_ps(a, evens, _mm512_maskz_loadu_ps(mh, sp + r * lds + 16));
                _mm512_mask_storeu_ps(d + (size_t)r * OW, ms, a);
            }
        }
    }
}

__attribute__((target("avx512f,avx2,avx,fma"))) static void taps_avx512_s1(
    const geom *g, float *dst, size_t ldv, const float *src, int rows) {
    taps_avx512(g, dst, ldv, src, rows, 1);
}

__attribute__((target("avx512f,avx2,avx,fma"))) static void taps_avx512_s2(
    const geom *g, float *dst, size_t ldv, const float *src, int rows) {
    taps_avx512(g, dst, ldv, src, rows, 2);
}
#endif

/* The copies for stride S, after heed_gemm's kernel (so that a test, or
 * HEED_GEMM_KERNEL, can choose the portable loop). */
static taps_fn *taps_for(int S) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    if (S <= 2 && !strcmp(heed_gemm_kernel_name(), "avx512")) return S == 1 ? taps_avx512_s1 : taps_avx512_s2;
#endif
    (void)S;
    return taps_portable;
}

/* Asks for the `rows` rows of W floats at src, lds apart, to be brought
 * into cache. The copies' loads each wait on a line of their own (a row
 * per step, a row a few lines long): fetched a channel ahead, the copies
 * in ResNet-18-SE at batch 1 took 0.77-0.96 -> 0.50-0.68 time-stamp
 * ticks per float on two threads, 0.40-0.46 -> 0.36-0.41 on one. */
static void prefetch_rows(const float *src, size_t lds, int rows, int W) {
    for (int r = 0; r < rows; r++) {
        const float *row = src + r * lds;
        for (int j = 0; j < W; j += 16) __builtin_prefetch(row + j);
        __builtin_prefetch(row + W - 1);
    }
}

/* Rows r0 .. r0+nr-1 of Z_p, as z (nc, K, nr, OW) with its rows (c, v)
 * ld floats apart (ld >= nr*OW, zeros between), from image n, channels
 * c0 .. c0+nc-1 of x. Row r holds input row (r + qmin)*S + p (zeros
 * outside). */
static void shift_copies(const geom *g, const float *x, int n, int c0, int nc, int p, int r0,
                         int nr, size_t ld, float *z) {
    const int K = g->K, W = g->W, H = g->H, OW = g->OW, S = g->S;
    const int first = r0 + tap_shift(g, 0), phase_rows = (H - p + S - 1) / S;
    const size_t HW = (size_t)H * W;
    /* Band rows [b0, b1) hold the phase's rows b0 + first ..: the rest is padding. */
    const int b0 = -first > 0 ? (-first < nr ? -first : nr) : 0;
    const int b1 = phase_rows - first < nr ? (phase_rows - first > b0 ? phase_rows - first : b0) : nr;
    const int h0 = (b0 + first) * S + p, rows = b1 - b0;
    taps_fn *taps = taps_for(S);
    /* The padding rows: the first copy's rows before b0, then from each
     * copy's row b1 on to the next copy's row b0 (one run: the copies lie
     * ld apart), the last copy's to its end: one call per copy, where two
     * put memset at 2% of ResNet-18's batch-1 samples (now 1.3%). */
    const size_t copies = (size_t)nc * K, head = (size_t)b0 * OW, tail = (size_t)b1 * OW;
    memset(z, 0, head * sizeof(float));
    for (size_t i = 0; i < copies; i++)
        memset(z + i * ld + tail, 0, (ld - tail + (i + 1 < copies ? head : 0)) * sizeof(float));
    if (rows <= 0) return;
    const float *xc = x + ((size_t)n * g->IC + c0) * HW + (size_t)h0 * W;
    prefetch_rows(xc, (size_t)S * W, rows, W);
    for (int c = 0; c < nc; c++, xc += HW) {
        if (c + 1 < nc) prefetch_rows(xc + HW, (size_t)S * W, rows, W);
        taps(g, z + (size_t)c * K * ld + head, ld, xc, rows);
    }
}

/* A_u per group, (G, K, OCg, ICg*K): A[g, u, o, (c, v)] = W[g*OCg + o, c, u, v],
 * for output channels oc0 .. oc1-1 (of all groups). */
static void shifted_weights(const heed_conv2d *l, const geom *g, int oc0, int oc1, float *a) {
    const int K = g->K, CK = g->ICg * K;
    for (int oc = oc0; oc < oc1; oc++) {
        const int gi = oc / g->OCg, o = oc % g->OCg;
        for (int c = 0; c < g->ICg; c++) {
            const float *w = l->w + ((size_t)oc * g->ICg + c) * K * K;
            float *dst = a + (size_t)gi * g->OCg * g->R + (size_t)o * CK + (size_t)c * K;
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++) dst[(size_t)u * g->OCg * CK + v] = w[u * K + v];
        }
    }
}

/* Reorders the weights of output channels oc0 .. oc1-1 into a and keeps
 * the weights it was made from in src (for heed_conv_shifted_forward's
 * check). */
static void keep_reorder(const heed_conv2d *l, const geom *g, int oc0, int oc1, float *a,
                         float *src) {
    shifted_weights(l, g, oc0, oc1, a);
    memcpy(src + (size_t)oc0 * g->R, l->w + (size_t)oc0 * g->R,
           (size_t)(oc1 - oc0) * g->R * sizeof(float));
}

/* The transposed convolution's A_u (G, K, ICg, OCg*K):
 * A[g, u, c, (o, v)] = W[g*OCg + o, c, K-1-u, K-1-v]. */
static void shifted_weights_flipped(const heed_conv2d *l, const geom *g, float *a) {
    const int K = g->K, OK = g->OCg * K;
    /* By output channels in parallel: a serial pass here, and in the weight
     * gradient's sum below, left the other threads waiting (2% of a W1
     * training step on two threads). */
    PARALLEL_IF((size_t)g->OC * g->R >= PAR_MIN, "omp parallel for schedule(static)",
        for (int oc = 0; oc < g->OC; oc++) {
            const int gi = oc / g->OCg, o = oc % g->OCg;
            for (int c = 0; c < g->ICg; c++) {
                const float *w = l->w + ((size_t)oc * g->ICg + c) * K * K;
                float *dst = a + (size_t)gi * g->OCg * g->R + (size_t)c * OK + (size_t)o * K;
                for (int u = 0; u < K; u++)
                    for (int v = 0; v < K; v++)
                        dst[(size_t)(K - 1 - u) * g->ICg * OK + (K - 1 - v)] = w[u * K + v];
            }
        });
}

/* Floats of work space one thread needs for bands of up to `cols` columns:
 * Z for the rows they touch (with slack for the padded columns' reads) and
 * the band's product when columns are padded. */
static size_t shifted_work(const geom *g, int cols) {
    return shifted_size(g, conv_band_span(g, cols)) + CONV_VECTOR +
           (size_t)g->OCg * conv_product_columns(g, cols);
}

/* Output columns c0 .. c1-1 of image n, output channels o0 .. o0+oc-1 of
 * every group: y = post(sum over u of A_u x Z_{p_u} from row q_u - qmin). */
static heed_status shifted_forward_band(const geom *g, const float *x, float *y, int n, int c0,
                                        int c1, int o0, int oc, const float *a, float *work,
                                        const post *p) {
    const int CK = g->ICg * g->K, cols = c1 - c0, qmin = tap_shift(g, 0);
    const int i0 = c0 / g->OW, nr = (c1 + g->OW - 1) / g->OW - i0, skip = c0 - i0 * g->OW;
    const size_t ldz = z_stride(g, nr);
    const int pc = conv_product_columns(g, cols);
    int slot[SHIFT_MAX_STRIDE];
    const int slots = phase_slots(g, slot);
    const size_t per_slot = (size_t)CK * ldz;
    float *z = work, *tmp = work + shifted_size(g, nr) + CONV_VECTOR;
    for (int gi = 0; gi < g->G; gi++) {
        float *Cb = y + ((size_t)n * g->OC + (size_t)gi * g->OCg + o0) * g->L + c0;
        for (int ph = 0; ph < g->S; ph++)
            if (slot[ph] >= 0)
                shift_copies(g, x, n, gi * g->ICg, g->ICg, ph, i0, nr + shift_halo(g), ldz,
                             z + slot[ph] * per_slot);
        /* The padded columns of the last row read up to 15 floats past Z
         * (the others read into the next row: values, dropped). */
        memset(z + slots * per_slot, 0, CONV_VECTOR * sizeof(float));
        float *out = pc == cols ? Cb : tmp;
        const int ldo = pc == cols ? g->L : pc;
        /* The last tap's product runs the epilogue on each block it ends
         * (on a padded product's extra columns too, which are dropped). */
        conv_post_at at;
        heed_gemm_epilogue epi;
        const heed_gemm_epilogue *ep = conv_epilogue(p, gi * g->OCg + o0, &at, &epi);
        for (int u = 0; u < g->K; u++) {
            const float *A =
                a + (size_t)gi * g->OCg * g->R + (size_t)u * g->OCg * CK + (size_t)o0 * CK;
            const float *B = z + slot[tap_phase(g, u)] * per_slot +
                             (size_t)(tap_shift(g, u) - qmin) * g->OW + skip;
            HEED_TRY(conv_gemm_post(oc, pc, CK, A, CK, B, (int)ldz, u ? 1.0f : 0.0f, out, ldo,
                                    u == g->K - 1 ? ep : NULL));
        }
        if (out != Cb)
            for (int o = 0; o < oc; o++)
                memcpy(Cb + (size_t)o * g->L, tmp + (size_t)o * pc, (size_t)cols * sizeof(float));
    }
    return HEED_OK;
}

/* A band's products narrower than this many columns run below speed: a
 * batch-1 layer is then shared out by blocks of output channels instead
 * (each block copies the band's input for itself). */
#define BAND_MIN_COLUMNS 256

/* Weights (floats) from which the threads share the check of the kept
 * reorder: below, the region's two extra barriers would cost more. */
#define SHARED_CHECK_FLOATS (64 * 1024)

/* How a layer's work is cut into items: `bands` bands of each image's
 * output columns times `blocks` blocks of output channels. Equal cuts,
 * or, for one image shared by T threads (each taking `per_thread`
 * consecutive items), cuts at the threads' learnt speeds (balance_impl.h):
 * thread t's bands cover vectors vcut[t] .. vcut[t+1]-1 of the columns, or
 * its block output channels ocut[t] .. ocut[t+1]-1. */
typedef struct split {
    int bands, blocks, per_thread;
    int vcut[HEED_CONV_BALANCE_THREADS + 1], ocut[HEED_CONV_BALANCE_THREADS + 1];
} split;

static int vectors_of(const geom *g) { return (g->L + CONV_VECTOR - 1) / CONV_VECTOR; }

/* Cuts one image's items between T threads at their speeds: per_thread
 * bands each (blocks == 1) or one block each (blocks == T). cut gets the
 * shares as made (whole vectors, whole row tiles), for heed_balance_note. */
static void split_balance(const heed_conv2d *l, const geom *g, split *sp, int T, double *cut) {
    if (sp->blocks > 1) /* whole row tiles of the products */
        heed_balance_split(l->thread_speed, T, g->OCg, 8, sp->ocut, cut);
    else
        heed_balance_split(l->thread_speed, T, vectors_of(g), 1, sp->vcut, cut);
    sp->per_thread = sp->blocks > 1 ? 1 : sp->bands / T;
}

/* First output column of band b. */
static int split_band_start(const geom *g, const split *sp, int b) {
    if (!sp->per_thread || sp->blocks > 1) return conv_band_start(g, sp->bands, b);
    const int t = b / sp->per_thread, j = b % sp->per_thread;
    const long v = sp->vcut[t] + (long)(sp->vcut[t + 1] - sp->vcut[t]) * j / sp->per_thread;
    return v * CONV_VECTOR < g->L ? (int)(v * CONV_VECTOR) : g->L;
}

/* The most columns a band can have, whatever the speeds (for T threads). */
static int split_band_columns(const geom *g, const split *sp, int T) {
    if (!sp->per_thread || sp->blocks > 1) return conv_band_columns(g, sp->bands);
    const int cols = heed_balance_most_units(T, vectors_of(g), sp->per_thread) * CONV_VECTOR;
    return cols < g->L ? cols : g->L;
}

/* Output channels o0 .. o0+oc-1 of block k (of every group). */
static void split_block(const geom *g, const split *sp, int k, int *o0, int *oc) {
    if (sp->per_thread && sp->blocks > 1) {
        *o0 = sp->ocut[k], *oc = sp->ocut[k + 1] - sp->ocut[k];
        return;
    }
    const int block_oc = (g->OCg + sp->blocks - 1) / sp->blocks;
    *o0 = k * block_oc;
    *oc = g->OCg - *o0 < block_oc ? g->OCg - *o0 : block_oc;
}

/* Work items are bands of images' output columns (and, for a narrow image,
 * blocks of output channels), run in parallel. With fewer images than
 * threads (inference at batch 1) each image is cut into more bands, or
 * blocks, so that every thread has one: one parallel region per layer,
 * where threading inside each small product would open one per product.
 * For one image the threads' shares follow their speeds on this layer,
 * timed on each call (balance_impl.h).
 * Bands (cut at whole vectors) and blocks change no sum: results do not
 * depend on the thread count. */
heed_status heed_conv_shifted_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                      const post *p, const char *fn) {
    int rows = band_rows(g), blocks = 1;
    const size_t band_work = (size_t)g->OC * g->R * g->OW;
    int bands = (g->OH + rows - 1) / rows;
    int T = conv_pass_threads(g->N * bands, band_work * rows);
    const int tmax = conv_max_threads();
    if (T < tmax && g->N < tmax) {
        const int want = (tmax + g->N - 1) / g->N, split = (g->OH + want - 1) / want;
        const int split_bands = (g->OH + split - 1) / split;
        /* A 1x1 strided kernel too goes by bands: by blocks of output
         * channels, each thread made the whole copy, and ResNet-18's
         * 64 -> 128 projection ran no faster on two threads than on one
         * (0.13 against 0.10 ms in bands, with the vectorized copies). */
        if (split * g->OW >= BAND_MIN_COLUMNS) {
            const int t = conv_pass_threads(g->N * split_bands, band_work * split);
            if (t > T) rows = split, bands = split_bands, T = t;
        } else if (g->OCg >= 16 * want) {
            const int t = conv_pass_threads(g->N * bands * want, band_work * rows / want);
            if (t > T) blocks = want, T = t;
        }
    }
    if (T > 1 && blocks == 1)
        bands = conv_balanced_bands(g->N, bands, T, vectors_of(g));
    split sp = {.bands = bands, .blocks = blocks};
    double cut[HEED_CONV_BALANCE_THREADS + 1], seconds[HEED_CONV_BALANCE_THREADS] = {0};
    const int balanced = g->N == 1 && T > 1 && T <= HEED_CONV_BALANCE_THREADS &&
                         ((blocks == T && bands == 1) || (blocks == 1 && bands % T == 0));
    if (balanced) split_balance(l, g, &sp, T, cut);
    const size_t zn = conv_slice(shifted_work(g, split_band_columns(g, &sp, T)), T);
    const int items = g->N * bands * blocks;
    const size_t nw = (size_t)g->OC * g->R;
    /* A 1x1 kernel's A_0 is W itself: nothing to reorder or check (the
     * check alone, a read of 1 MB at ResNet-18's last projection, made it
     * 10% slower than im2col on one thread). */
    const int reorder = g->K > 1;
    float *wt = NULL, *src = NULL, *z;
    if (reorder) {
        HEED_TRY(heed_scratch_get(&l->wt, nw, &wt));
        HEED_TRY(heed_scratch_get(&l->wt_src, nw, &src));
    }
    const float *a = reorder ? wt : l->w;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, zn * T, &z));
    /* The reorder is kept while the weights stay the same (conv2d.h). With
     * large weights the threads compare, and if need be reorder, a share of
     * the output channels each, inside the region: by one thread, the
     * comparison alone (a read of both copies, megabytes at ResNet-18's
     * 14x14 stage) took 4% of a two-thread batch-1 forward. Small weights
     * are checked before the region, which then needs no barriers. A
     * reorder made or checked under the layer's current freeze is used
     * unchecked: the comparison, a read of two copies of all of the
     * weights, took 3.5% of a ResNet-18 batch-1 forward. */
    const int trusted = l->wt_forward && l->base.frozen && l->wt_frozen == l->base.frozen;
    const int check = reorder && !trusted;
    const int shared_check = check && T > 1 && nw >= SHARED_CHECK_FLOATS;
    if (check && !shared_check && (!l->wt_forward || memcmp(src, l->w, nw * sizeof(float)))) {
        keep_reorder(l, g, 0, g->OC, wt, src);
        l->wt_forward = 1;
    }
    const int unknown = reorder && !l->wt_forward; /* none kept: reorder whatever the weights */
    int stale = unknown;
    heed_status st = HEED_OK;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        if (shared_check) {
            int oc0, oc1;
            conv_chunk_range(g->OC, conv_team_size(), conv_thread(), &oc0, &oc1);
            const size_t w0 = (size_t)oc0 * g->R, wn = (size_t)(oc1 - oc0) * g->R;
            if (!unknown && memcmp(src + w0, l->w + w0, wn * sizeof(float))) {
#pragma omp atomic write
                stale = 1;
            }
#pragma omp barrier
            int redo;
#pragma omp atomic read
            redo = stale;
            if (redo) keep_reorder(l, g, oc0, oc1, wt, src);
#pragma omp barrier
        }
        const int t = conv_thread();
        const double start = balanced ? conv_now() : 0.0;
        /* Static: balanced, thread t takes items t*per_thread onwards. */
#pragma omp for schedule(static) nowait
        for (int it = 0; it < items; it++) {
            const int n = it / (bands * blocks), b = it / blocks % bands;
            const int c0 = split_band_start(g, &sp, b), c1 = split_band_start(g, &sp, b + 1);
            int o0, oc;
            split_block(g, &sp, it % blocks, &o0, &oc);
            if (c0 < c1 && oc > 0)
                par_note(&st, shifted_forward_band(g, x, y, n, c0, c1, o0, oc, a, z + t * zn, p));
        }
        if (balanced) seconds[t] = conv_now() - start;
    }
    if (balanced && st == HEED_OK) heed_balance_note(l->thread_speed, T, cut, seconds);
    if (reorder) l->wt_forward = 1, l->wt_frozen = l->base.frozen;
    return conv_workers_done(st, l, fn);
}

/* ---- backward --------------------------------------------------------
 *
 * Image by image: dA_u^T = Z_u x dY^T accumulate per tap as (CK, OCg)
 * matrices (added into dW at the end); dx += the transposed convolution of
 * dy, itself on shifted copies of dy. One image's products are small (W1's
 * 28x28 maps: 96 x 32 x 784), too small to share between threads; instead
 * threads take chunks of images, each with its own dA partial, added in
 * chunk order at the end.
 * The chunks depend on the shape alone, never on the thread count, so the
 * weight gradient is the same sum in the same order however many threads
 * ran it.
 *
 * Transposed, because heed_gemm then reads Z_u in place and packs only
 * dY, the smaller operand, instead of Z_u's CK rows (measured: 96 x 32 x
 * 784 at 192 GFLOP/s against 130-160 for 32 x 96 x 784); and a first
 * layer's CK <= 4 rows take heed_gemm's dot products instead of a 48-wide
 * panel for a few columns. */

/* Image n's part of the backward pass: da (the chunk's partial, per group
 * and tap a (CK, OCg) matrix) += Z_u x dY^T, and dx. */
static heed_status shifted_backward_image(const geom *g, const float *x, const float *dy, float *dx,
                                          int fresh, const float *at, float *da, float *z, int n) {
    const geom gt = conv_transposed(g);
    const int K = g->K, CK = g->ICg * K, OK = g->OCg * K;
    const size_t ldz = shifted_rows(g) * g->OW, ldzt = shifted_rows(&gt) * gt.OW;
    for (int gi = 0; gi < g->G; gi++) {
        const float *dY = dy + ((size_t)n * g->OC + (size_t)gi * g->OCg) * g->L;
        shift_copies(g, x, n, gi * g->ICg, g->ICg, 0, 0, (int)shifted_rows(g), ldz, z);
        for (int u = 0; u < K; u++) {
            float *dA = da + (size_t)gi * g->OCg * g->R + (size_t)u * g->OCg * CK;
            const float *Zu = z + (size_t)u * g->D * g->OW;
            HEED_TRY(heed_gemm(0, 1, CK, g->OCg, g->L, 1.0f, Zu, (int)ldz, dY, g->L, 1.0f, dA,
                               g->OCg));
        }
        if (!dx) continue;
        shift_copies(&gt, dy, n, gi * g->OCg, gt.ICg, 0, 0, (int)shifted_rows(&gt), ldzt, z);
        float *dxg = dx + ((size_t)n * g->IC + (size_t)gi * g->ICg) * gt.L;
        for (int u = 0; u < K; u++) {
            const float *A = at + (size_t)gi * g->OCg * g->R + (size_t)u * g->ICg * OK;
            HEED_TRY(conv_gemm(g->ICg, gt.L, OK, A, OK, z + (size_t)u * g->D * gt.OW,
                               (int)ldzt, u == 0 && fresh ? 0.0f : 1.0f, dxg, gt.L));
        }
    }
    return HEED_OK;
}

/* dW[o, c, u, v] += the chunks' dA[g, u, (c, v), o], `stride` floats apart,
 * summed in chunk order (into the first chunk's, which is overwritten). */
static void add_weight_gradient(heed_conv2d *l, const geom *g, float *da, size_t stride,
                                int chunks) {
    const int K = g->K, CK = g->ICg * K;
    const size_t per_chunk = (size_t)g->OC * g->R;
    conv_fold_partials(da, per_chunk, stride, chunks);
    PARALLEL_IF(per_chunk >= PAR_MIN, "omp parallel for schedule(static)",
        for (int oc = 0; oc < g->OC; oc++) {
            const int gi = oc / g->OCg, o = oc % g->OCg;
            for (int c = 0; c < g->ICg; c++) {
                float *dw = l->dw + ((size_t)oc * g->ICg + c) * K * K;
                for (int u = 0; u < K; u++)
                    for (int v = 0; v < K; v++)
                        dw[u * K + v] += da[(size_t)gi * g->OCg * g->R + (size_t)u * g->OCg * CK +
                                            (size_t)(c * K + v) * g->OCg + o];
            }
        });
}

heed_status heed_conv_shifted_backward(heed_conv2d *l, const geom *g, const float *x,
                                       const float *dy, float *dx, int fresh) {
    const geom gt = conv_transposed(g);
    const int chunks = conv_backward_chunks(g, g->N);
    size_t zn = shifted_size(g, g->OH);
    if (dx && shifted_size(&gt, gt.OH) > zn) zn = shifted_size(&gt, gt.OH);
    const size_t per_image = (size_t)g->OC * g->R * g->L * (dx ? 2 : 1);
    const int T = chunks > 1 ? conv_pass_threads(chunks, per_image * (g->N / chunks)) : 1;
    zn = conv_slice(zn, T);
    const size_t nw = (size_t)g->OC * g->R, da_stride = conv_slice(nw, T); /* chunk to chunk */
    float *da, *at = NULL, *z;
    HEED_TRY(heed_scratch_get(&conv_work(l)->tmp, da_stride * chunks, &da));
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, zn * T, &z));
    if (dx) {
        HEED_TRY(heed_scratch_get(&l->wt, (size_t)g->OC * g->R, &at));
        l->wt_forward = 0;
        shifted_weights_flipped(l, g, at);
    }
    conv_add_bias_grad(l, g, dy);
    heed_status st = HEED_OK;
    /* With one thread, the same chunks in order, and no parallel region (a
     * single chunk's products then thread inside heed_gemm). */
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int ch = 0; ch < chunks; ch++) {
        const int t = conv_thread();
        int n0, n1;
        conv_chunk_range(g->N, chunks, ch, &n0, &n1);
        /* Each chunk zeroes its own partial: in parallel, and into cache. */
        memset(da + ch * da_stride, 0, nw * sizeof(float));
        for (int n = n0; n < n1; n++) {
            const heed_status s =
                shifted_backward_image(g, x, dy, dx, fresh, at, da + ch * da_stride, z + t * zn, n);
            if (par_note(&st, s) != HEED_OK) break;
        }
    }
    HEED_TRY(conv_workers_done(st, l, "heed_conv2d_backward"));
    add_weight_gradient(l, g, da, da_stride, chunks);
    return HEED_OK;
}

/* ---- one small image: im2col's product, its rows read in the copies ---- */

/* One image too narrow for the shifted path's products (ResNet-18's 7x7
 * stage at batch 1), where im2col wrote K*K rows per channel and the
 * product then packed them again. Its rows are rows of the shifted copies:
 * im2col row (c, u, v) is copy (c, v) of phase p_u from its row q_u - qmin
 * on, OH*OW floats in a row. So the copies (K per phase read) are made,
 * and one heed_gemm_rows per group reads im2col's rows by their addresses,
 * in im2col's order, with the weights in place: nothing to reorder or keep.
 * Only where im2col's product computes exactly L columns, so that the two
 * agree bit for bit. */
int heed_conv_use_rows(const geom *g) {
    return g->N == 1 && g->K > 1 && g->S <= SHIFT_MAX_STRIDE && !heed_conv_use_shifted(g) &&
           conv_product_columns(g, g->L) == g->L && (size_t)g->R * g->L <= PASS_FLOATS;
}

/* Channels c0 .. c0+nc-1 of group gi: their copies for every phase the
 * taps read, into the copies z of heed_conv_rows_forward (slot per_slot
 * floats apart). */
static void rows_copies(const geom *g, const float *x, int gi, int c0, int nc, const int *slot,
                        size_t per_slot, float *z) {
    const int rows = g->OH + shift_halo(g);
    const size_t ldz = (size_t)rows * g->OW;
    for (int ph = 0; ph < g->S; ph++)
        if (slot[ph] >= 0)
            shift_copies(g, x, 0, gi * g->ICg + c0, nc, ph, 0, rows, ldz,
                         z + slot[ph] * per_slot + (size_t)c0 * g->K * ldz);
}

/* brow[(c*K + u)*K + v]: the address of im2col row (c, u, v) in the
 * copies z (rows_copies' layout): copy (c, v) of phase p_u from its row
 * q_u - qmin on. */
static void rows_table(const geom *g, const float *z, const int *slot, size_t per_slot,
                       const float **brow) {
    const int K = g->K, qmin = tap_shift(g, 0);
    const size_t ldz = (size_t)(g->OH + shift_halo(g)) * g->OW;
    for (int u = 0; u < K; u++) {
        const float *tap =
            z + slot[tap_phase(g, u)] * per_slot + (size_t)(tap_shift(g, u) - qmin) * g->OW;
        for (int c = 0; c < g->ICg; c++)
            for (int v = 0; v < K; v++)
                brow[((size_t)c * K + u) * K + v] = tap + ((size_t)c * K + v) * ldz;
    }
}

heed_status heed_conv_rows_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                   const post *p) {
    const size_t ldz = (size_t)(g->OH + shift_halo(g)) * g->OW;
    const size_t per_slot = (size_t)g->ICg * g->K * ldz;
    int slot[SHIFT_MAX_STRIDE];
    const int slots = phase_slots(g, slot);
    const size_t zn = per_slot * slots;
    const int T = conv_max_threads();
    const int balanced = g->G == 1 && T > 1 && T <= HEED_CONV_BALANCE_THREADS &&
                         g->OCg >= 16 * T && zn >= PAR_MIN;
    const int copies = balanced ? T : 1;
    /* Each thread's copies and row addresses, in slices (conv_slice). */
    const size_t table_floats = (size_t)g->R * sizeof(float *) / sizeof(float);
    const size_t zs = conv_slice(zn, copies), ts = conv_slice(table_floats, copies);
    float *z, *table;
    HEED_TRY(heed_scratch_get(&conv_work(l)->col, zs * copies, &z));
    /* The row addresses, in float scratch (64-byte aligned: heed_alloc). */
    HEED_TRY(heed_scratch_get(&conv_work(l)->tmp, ts * copies, &table));
    if (balanced) {
        /* One region, no barrier: each thread makes the copies of every
         * channel for itself, then its rows of the product, cut at the
         * threads' learnt speeds (a product split into two tasks left one
         * thread waiting on the other). Each thread packs all of B from
         * its copies, so copies shared between the threads (each making
         * half) were each read by the other core: on two threads the
         * copies and the packing took 4x their one-thread time, 11% of the
         * stage's samples. Making them twice costs less. */
        int at[HEED_CONV_BALANCE_THREADS + 1];
        double cut[HEED_CONV_BALANCE_THREADS + 1], seconds[HEED_CONV_BALANCE_THREADS] = {0};
        heed_balance_split(l->thread_speed, T, g->OCg, 8, at, cut);
        heed_status st = HEED_OK;
#pragma omp parallel num_threads(T)
        {
            /* Rows r0 .. r1-1: this thread's share; equal shares if fewer
             * threads came (the missing ones' zero seconds then keep
             * heed_balance_note from learning anything). */
            const int t = conv_thread(), team = conv_team_size();
            int r0 = at[t], r1 = at[t + 1];
            if (team != T) conv_chunk_range(g->OCg, team, t, &r0, &r1);
            const double start = conv_now();
            if (r1 > r0) {
                float *zt = z + t * zs;
                const float **brow = (const float **)(void *)(table + t * ts);
                rows_table(g, zt, slot, per_slot, brow);
                rows_copies(g, x, 0, 0, g->ICg, slot, per_slot, zt);
                conv_post_at pat;
                heed_gemm_epilogue epi;
                par_note(&st, heed_gemm_rows(r1 - r0, g->L, g->R, 1.0f, l->w + (size_t)r0 * g->R,
                                              g->R, brow, 0.0f, y + (size_t)r0 * g->L, g->L,
                                              conv_epilogue(p, r0, &pat, &epi)));
            }
            seconds[t] = conv_now() - start;
        }
        if (st == HEED_OK) heed_balance_note(l->thread_speed, T, cut, seconds);
        return conv_workers_done(st, l, "heed_conv2d_forward");
    }
    /* The same addresses serve every group: each group's copies are made
     * in the same place. */
    const float **brow = (const float **)(void *)table;
    rows_table(g, z, slot, per_slot, brow);
    for (int gi = 0; gi < g->G; gi++) {
        /* The copies by channels, in parallel when they are large enough:
         * the product's threads wait for them. */
        PARALLEL_IF(zn >= PAR_MIN, "omp parallel for schedule(static)",
            for (int c = 0; c < g->ICg; c++) rows_copies(g, x, gi, c, 1, slot, per_slot, z););
        float *C = y + (size_t)gi * g->OCg * g->L;
        conv_post_at at;
        heed_gemm_epilogue epi;
        HEED_TRY(heed_gemm_rows(g->OCg, g->L, g->R, 1.0f, l->w + (size_t)gi * g->OCg * g->R, g->R,
                                brow, 0.0f, C, g->L, conv_epilogue(p, gi * g->OCg, &at, &epi)));
    }
    return HEED_OK;
}
