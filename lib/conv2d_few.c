/* conv2d_few.c -- forward of stride-1 convolutions with few input channels
 * per group (a network's first layer on grey or RGB images), on flat
 * zero-padded planes. Dimension letters as in conv2d.c.
 *
 * A matrix product suits these badly: its sum is only ICg*K*K long (9 for
 * W1's 1 -> 32 first layer), so every tile of the result is loaded and
 * stored for a handful of multiply-adds. Here each output vector instead
 * stays in registers across every tap. The input planes are copied with
 * P zeros around them, Wq = W + 2P wide, and the output is computed over
 * the flat grid of OH rows of Wq positions, where tap (u, v) of position
 * p reads q[p + u*D*Wq + v*D]: one contiguous loop for every tap, with no
 * bounds inside. The Wq - OW positions at each row's end are computed and
 * dropped. Eight output channels share each load of the input.
 *
 * Each output is the sum over c, u, v in that order, then the epilogue;
 * how images and channels are shared between threads changes no sum.
 */
#include <string.h>

#include "conv2d_impl.h"
#include "wide.h"

typedef heed_conv_geom geom;
typedef heed_conv_post post;

/* Output channels computed together: their accumulators (8 x 16 floats)
 * fit AVX-512's registers alongside the input vector, and are enough
 * independent sums to hide the adds' latency (4 measured 10% slower on
 * W1's first layer). */
#define OUT_GROUP 8
#define VEC 16

/* Taps per output (ICg*K*K) this route takes: their weights sit in a
 * table on the stack. */
#define MAX_TAPS 256

static int grid_width(const geom *g) { return g->W + 2 * g->P; }

static int plane_rows(const geom *g) { return g->OH + g->D * (g->K - 1); }

/* Floats of one padded plane. An output position inside the image reads
 * its own plane only; the grid's dropped positions read into the next
 * plane, and past the last one into planes_slack() zeros. */
static size_t plane_size(const geom *g) { return (size_t)plane_rows(g) * grid_width(g); }

static size_t planes_slack(const geom *g) { return (size_t)g->D * (g->K - 1) + 2 * VEC; }

/* Positions of the output grid, in whole vectors. */
static size_t grid_size(const geom *g) {
    return ((size_t)g->OH * grid_width(g) + VEC - 1) / VEC * VEC;
}

/* The route's layers: also only while a group of output planes stays in
 * cache (PASS_FLOATS): a large image's grid would go to memory and back
 * between the taps and the kept rows. */
int heed_conv_few_fits(const geom *g) {
    return g->S == 1 && g->K > 1 && g->ICg <= 4 && g->R <= MAX_TAPS &&
           OUT_GROUP * grid_size(g) <= PASS_FLOATS;
}

/* out[k * ldo + p] = sum over c, u, v of wt[t * OUT_GROUP + k] *
 * q[c * ldq + p + u*D*Wq + v*D], t = (c*K + u)*K + v, for k < OUT_GROUP and
 * p < n (whole vectors). */
HEED_WIDE
static void grid_taps(const float *q, size_t ldq, int C, int K, int D, int Wq, const float *wt,
                      float *out, size_t ldo, int n) {
    for (int p0 = 0; p0 < n; p0 += VEC) {
        float acc[OUT_GROUP][VEC] = {{0}};
        const float *w = wt;
        for (int c = 0; c < C; c++)
            for (int u = 0; u < K; u++)
                for (int v = 0; v < K; v++, w += OUT_GROUP) {
                    const float *restrict r = q + c * ldq + p0 + (size_t)u * D * Wq + v * D;
                    for (int k = 0; k < OUT_GROUP; k++)
#pragma omp simd /* else the wide versions unroll it to scalars */
                        for (int e = 0; e < VEC; e++) acc[k][e] += w[k] * r[e];
                }
        for (int k = 0; k < OUT_GROUP; k++)
#pragma omp simd
            for (int e = 0; e < VEC; e++) out[k * ldo + p0 + e] = acc[k][e];
    }
}

/* dst[j] = post(src[j]) for j < n: conv_post_row's epilogue, from src to
 * dst. (A copy then conv_post_row in place compiled to scalar code here:
 * W1's first layer 8.2 -> 11.7 us.) */
static inline void post_run(const float *restrict src, float *restrict dst, int n, float a, float c,
                            int relu) {
    if (relu)
        for (int j = 0; j < n; j++) {
            const float v = src[j] * a + c;
            dst[j] = v < 0.0f ? 0.0f : v; /* keeps a NaN */
        }
    else
        for (int j = 0; j < n; j++) dst[j] = src[j] * a + c;
}

/* post_run for one whole vector. */
static inline void post_vector(const float *restrict src, float *restrict dst, float a, float c,
                               int relu) {
    float v[VEC];
#pragma omp simd
    for (int j = 0; j < VEC; j++) v[j] = src[j] * a + c;
    if (relu)
#pragma omp simd
        for (int j = 0; j < VEC; j++) dst[j] = v[j] < 0.0f ? 0.0f : v[j];
    else
#pragma omp simd
        for (int j = 0; j < VEC; j++) dst[j] = v[j];
}

/* y (OH, OW) = post(the first OW positions of each of the grid's rows)
 * for output channel o. Rows are a few dozen floats: whole vectors, the
 * last one overlapping the one before (the same values written twice),
 * where a loop's scalar remainder, or a memcpy call per row, cost more
 * than the convolution. */
HEED_WIDE
static void keep_rows(const float *grid, int Wq, float *y, int OH, int OW, const post *p, int o) {
    const float a = p && p->a ? p->a[o] : 1.0f, c = p && p->c ? p->c[o] : 0.0f;
    const int relu = p && p->relu;
    for (int i = 0; i < OH; i++) {
        const float *src = grid + (size_t)i * Wq;
        float *dst = y + (size_t)i * OW;
        if (OW < VEC) {
            post_run(src, dst, OW, a, c, relu);
            continue;
        }
        for (int j = 0; j + VEC <= OW; j += VEC) post_vector(src + j, dst + j, a, c, relu);
        if (OW % VEC) post_vector(src + OW - VEC, dst + OW - VEC, a, c, relu);
    }
}

/* Image n, every group: pad its planes into q, then output channels a
 * group of OUT_GROUP at a time through the grid, kept rows to y. */
static void few_image(const heed_conv2d *l, const geom *g, const float *x, float *y, int n,
                      float *q, float *grid, const post *p) {
    const int Wq = grid_width(g);
    const size_t ldq = plane_size(g), ldg = grid_size(g);
    memset(q + g->ICg * ldq, 0, planes_slack(g) * sizeof(float));
    for (int gi = 0; gi < g->G; gi++) {
        conv_pad_planes(x, g->IC, n, gi * g->ICg, g->ICg, g->H, g->W, g->P, plane_rows(g), Wq, q);
        for (int o0 = 0; o0 < g->OCg; o0 += OUT_GROUP) {
            const int oc = g->OCg - o0 < OUT_GROUP ? g->OCg - o0 : OUT_GROUP;
            const int o = gi * g->OCg + o0;
            float wt[MAX_TAPS * OUT_GROUP]; /* the group's weights, tap by tap */
            for (int t = 0; t < g->R; t++)
                for (int k = 0; k < OUT_GROUP; k++)
                    wt[t * OUT_GROUP + k] = k < oc ? l->w[(size_t)(o + k) * g->R + t] : 0.0f;
            grid_taps(q, ldq, g->ICg, g->K, g->D, Wq, wt, grid, ldg, (int)ldg);
            for (int k = 0; k < oc; k++)
                keep_rows(grid + k * ldg, Wq, y + ((size_t)n * g->OC + o + k) * g->L, g->OH,
                          g->OW, p, o + k);
        }
    }
}

heed_status heed_conv_few_forward(heed_conv2d *l, const geom *g, const float *x, float *y,
                                  const post *p) {
    const size_t planes = (size_t)g->ICg * plane_size(g) + planes_slack(g);
    const size_t per_thread = planes + OUT_GROUP * grid_size(g);
    const int T = conv_pass_threads(g->N, (size_t)g->OC * g->R * g->L);
    float *work;
    HEED_TRY(heed_scratch_get(&l->col, per_thread * T, &work));
    PARALLEL_IF(T > 1, "omp parallel for num_threads(T) schedule(static)",
        for (int n = 0; n < g->N; n++) {
            float *q = work + conv_thread() * per_thread;
            few_image(l, g, x, y, n, q, q + planes, p);
        });
    return HEED_OK;
}
