/* elementwise.c -- sums, broadcast products and channel concatenation.
 *
 * N images, C channels, HW = H*W positions per channel (NCHW).
 *
 *   add:          y = a + b                    da += dy, db += dy
 *   mul_channel:  y[n,c,p] = x[n,c,p] s[n,c]   dx[n,c,p] += dy[n,c,p] s[n,c]
 *                                              ds[n,c]   += sum_p dy[n,c,p] x[n,c,p]
 *   mul_spatial:  y[n,c,p] = x[n,c,p] s[n,p]   dx[n,c,p] += dy[n,c,p] s[n,p]
 *                                              ds[n,p]   += sum_c dy[n,c,p] x[n,c,p]
 *   concat:       y[n] = (a[n]; b[n]) along C  da += dy[:, :Ca], db += dy[:, Ca:]
 *   axpy, scale:  y += alpha x,  x *= alpha
 *
 * Per-channel work runs over (n, c) planes, each a unit-stride inner loop
 * over HW; mul_spatial's ds sums over channels, which are HW apart, so its
 * backward walks tiles of positions with the partial sums in a stack array.
 * Work items never share an output element, so threads do not race.
 * Threads start only above PAR_MIN values (see activation.c for why).
 */
#include "elementwise.h"

#include <string.h>

#include "parallel.h"

#define TILE 512 /* mul_spatial backward positions per work item */

#define SHAPE_FMT "(%d, %d, %d, %d)"
#define SHAPE_ARGS(t) (t)->n, (t)->c, (t)->h, (t)->w

/* An output that already has the wanted shape (a view, or an input for
 * in-place use) is written in place; anything else is (re)sized. */
static heed_status size_output(heed_tensor *y, int n, int c, int h, int w) {
    if (y->data && y->n == n && y->c == c && y->h == h && y->w == w) return HEED_OK;
    return heed_tensor_ensure(y, n, c, h, w);
}

/* ---- add ---- */

static heed_status add(const heed_tensor *a, const heed_tensor *b, heed_tensor *y, int relu,
                       const char *fn) {
    HEED_CHECK_SHAPE(heed_tensor_same_shape(a, b), "%s: a is " SHAPE_FMT " but b is " SHAPE_FMT,
                     fn, SHAPE_ARGS(a), SHAPE_ARGS(b));
    HEED_TRY(size_output(y, a->n, a->c, a->h, a->w));
    const size_t count = heed_tensor_count(a);
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    if (relu)
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) {
                const float s = ad[i] + bd[i];
                yd[i] = s < 0.0f ? 0.0f : s; /* heed_act_forward's relu */
            }
        );
    else
        PARALLEL_SIMD_IF(count > PAR_MIN,
            for (size_t i = 0; i < count; i++) yd[i] = ad[i] + bd[i];
        );
    return HEED_OK;
}

heed_status heed_add_forward(const heed_tensor *a, const heed_tensor *b, heed_tensor *y) {
    return add(a, b, y, 0, "heed_add_forward");
}

heed_status heed_add_relu_forward(const heed_tensor *a, const heed_tensor *b, heed_tensor *y) {
    return add(a, b, y, 1, "heed_add_relu_forward");
}

static void add_into(float *d, const float *g, size_t count) {
    PARALLEL_SIMD_IF(count > PAR_MIN,
        for (size_t i = 0; i < count; i++) d[i] += g[i];
    );
}

heed_status heed_add_backward(const heed_tensor *dy, heed_tensor *da, heed_tensor *db) {
    if (da)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, da),
                         "heed_add_backward: dy is " SHAPE_FMT " but da is " SHAPE_FMT,
                         SHAPE_ARGS(dy), SHAPE_ARGS(da));
    if (db)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, db),
                         "heed_add_backward: dy is " SHAPE_FMT " but db is " SHAPE_FMT,
                         SHAPE_ARGS(dy), SHAPE_ARGS(db));
    const size_t count = heed_tensor_count(dy);
    if (da) add_into(da->data, dy->data, count);
    if (db) add_into(db->data, dy->data, count);
    return HEED_OK;
}

/* ---- channel scaling ---- */

static heed_status check_channel(const char *fn, const heed_tensor *x, const heed_tensor *s) {
    HEED_CHECK_SHAPE(s->n == x->n && s->c == x->c && s->h == 1 && s->w == 1,
                     "%s: x is " SHAPE_FMT " so s must be (%d, %d, 1, 1), but s is " SHAPE_FMT, fn,
                     SHAPE_ARGS(x), x->n, x->c, SHAPE_ARGS(s));
    return HEED_OK;
}

/* dy, dx like x; ds like s (NULLs skipped). */
static heed_status check_grads(const char *fn, const heed_tensor *x, const heed_tensor *s,
                               const heed_tensor *dy, const heed_tensor *dx, const heed_tensor *ds) {
    HEED_CHECK_SHAPE(heed_tensor_same_shape(x, dy),
                     "%s: x is " SHAPE_FMT " but dy is " SHAPE_FMT, fn, SHAPE_ARGS(x), SHAPE_ARGS(dy));
    if (dx)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(x, dx),
                         "%s: x is " SHAPE_FMT " but dx is " SHAPE_FMT, fn, SHAPE_ARGS(x),
                         SHAPE_ARGS(dx));
    if (ds)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(s, ds),
                         "%s: s is " SHAPE_FMT " but ds is " SHAPE_FMT, fn, SHAPE_ARGS(s),
                         SHAPE_ARGS(ds));
    return HEED_OK;
}

/* y = x * s (broadcast over H, W), plus a (shaped like x; NULL for none)
 * and then relu when `relu`. The product is rounded before the sum (no
 * contraction under -std=c11), so with a it is what a separate sum gives. */
static void scale_planes(const heed_tensor *x, const float *sd, const float *ad, int relu,
                         float *yd) {
    const size_t planes = (size_t)x->n * x->c, HW = (size_t)x->h * x->w;
    const float *xd = x->data;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            const float sv = sd[p], *xp = xd + p * HW;
            float *yp = yd + p * HW;
            if (!ad) {
                _Pragma("omp simd")
                for (size_t i = 0; i < HW; i++) yp[i] = xp[i] * sv;
                continue;
            }
            const float *ap = ad + p * HW;
            if (relu) {
                _Pragma("omp simd")
                for (size_t i = 0; i < HW; i++) {
                    const float v = xp[i] * sv + ap[i];
                    yp[i] = v < 0.0f ? 0.0f : v;
                }
            } else {
                _Pragma("omp simd")
                for (size_t i = 0; i < HW; i++) yp[i] = xp[i] * sv + ap[i];
            }
        });
}

heed_status heed_mul_channel_forward(const heed_tensor *x, const heed_tensor *s, heed_tensor *y) {
    HEED_TRY(check_channel("heed_mul_channel_forward", x, s));
    HEED_TRY(size_output(y, x->n, x->c, x->h, x->w));
    scale_planes(x, s->data, NULL, 0, y->data);
    return HEED_OK;
}

heed_status heed_mul_channel_add_forward(const heed_tensor *x, const heed_tensor *s,
                                         const heed_tensor *a, int relu, heed_tensor *y) {
    static const char fn[] = "heed_mul_channel_add_forward";
    HEED_TRY(check_channel(fn, x, s));
    HEED_CHECK_SHAPE(heed_tensor_same_shape(x, a), "%s: x is " SHAPE_FMT " but a is " SHAPE_FMT,
                     fn, SHAPE_ARGS(x), SHAPE_ARGS(a));
    HEED_TRY(size_output(y, x->n, x->c, x->h, x->w));
    scale_planes(x, s->data, a->data, relu, y->data);
    return HEED_OK;
}

heed_status heed_mul_channel_backward(const heed_tensor *x, const heed_tensor *s,
                                      const heed_tensor *dy, heed_tensor *dx, heed_tensor *ds) {
    static const char fn[] = "heed_mul_channel_backward";
    HEED_TRY(check_channel(fn, x, s));
    HEED_TRY(check_grads(fn, x, s, dy, dx, ds));
    const size_t planes = (size_t)x->n * x->c, HW = (size_t)x->h * x->w;
    const float *xd = x->data, *sd = s->data, *gd = dy->data;
    float *dxd = dx ? dx->data : NULL, *dsd = ds ? ds->data : NULL;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            const float *xp = xd + p * HW, *gp = gd + p * HW;
            if (dxd) {
                const float sv = sd[p];
                float *dp = dxd + p * HW;
                _Pragma("omp simd")
                for (size_t i = 0; i < HW; i++) dp[i] += gp[i] * sv;
            }
            if (dsd) {
                float acc = 0.0f;
                _Pragma("omp simd reduction(+ : acc)")
                for (size_t i = 0; i < HW; i++) acc += gp[i] * xp[i];
                dsd[p] += acc;
            }
        });
    return HEED_OK;
}

heed_status heed_mul_channel_pool_backward(const heed_tensor *dy, const heed_tensor *s,
                                           const heed_tensor *dpool, heed_tensor *dx, int add) {
    static const char fn[] = "heed_mul_channel_pool_backward";
    HEED_TRY(check_channel(fn, dy, s));
    HEED_TRY(check_grads(fn, dy, s, dy, dx, dpool));
    const size_t planes = (size_t)dy->n * dy->c, HW = (size_t)dy->h * dy->w;
    const float *gd = dy->data, *sd = s->data, *pd = dpool->data;
    float *dxd = dx->data;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            /* the pool's share as its own backward computes it */
            const float sv = sd[p], b = pd[p] / (float)HW, *gp = gd + p * HW;
            float *dxp = dxd + p * HW;
            if (add) {
                _Pragma("omp simd")
                for (size_t i = 0; i < HW; i++) dxp[i] = (dxp[i] + gp[i] * sv) + b;
            } else {
                _Pragma("omp simd")
                for (size_t i = 0; i < HW; i++) dxp[i] = gp[i] * sv + b;
            }
        });
    return HEED_OK;
}

/* ---- spatial scaling ---- */

static heed_status check_spatial(const char *fn, const heed_tensor *x, const heed_tensor *s) {
    HEED_CHECK_SHAPE(s->n == x->n && s->c == 1 && s->h == x->h && s->w == x->w,
                     "%s: x is " SHAPE_FMT " so s must be (%d, 1, %d, %d), but s is " SHAPE_FMT, fn,
                     SHAPE_ARGS(x), x->n, x->h, x->w, SHAPE_ARGS(s));
    return HEED_OK;
}

heed_status heed_mul_spatial_forward(const heed_tensor *x, const heed_tensor *s, heed_tensor *y) {
    HEED_TRY(check_spatial("heed_mul_spatial_forward", x, s));
    HEED_TRY(size_output(y, x->n, x->c, x->h, x->w));
    const int C = x->c;
    const size_t planes = (size_t)x->n * C, HW = (size_t)x->h * x->w;
    const float *xd = x->data, *sd = s->data;
    float *yd = y->data;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            const float *xp = xd + p * HW, *sp = sd + (p / C) * HW;
            float *yp = yd + p * HW;
            _Pragma("omp simd")
            for (size_t i = 0; i < HW; i++) yp[i] = xp[i] * sp[i];
        });
    return HEED_OK;
}

heed_status heed_mul_spatial_backward(const heed_tensor *x, const heed_tensor *s,
                                      const heed_tensor *dy, heed_tensor *dx, heed_tensor *ds) {
    static const char fn[] = "heed_mul_spatial_backward";
    HEED_TRY(check_spatial(fn, x, s));
    HEED_TRY(check_grads(fn, x, s, dy, dx, ds));
    const int C = x->c;
    const size_t HW = (size_t)x->h * x->w, tiles = (HW + TILE - 1) / TILE;
    const size_t jobs = (size_t)x->n * tiles;
    const float *xd = x->data, *sd = s->data, *gd = dy->data;
    float *dxd = dx ? dx->data : NULL, *dsd = ds ? ds->data : NULL;
    PARALLEL_IF(heed_tensor_count(x) > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t job = 0; job < jobs; job++) {
            const size_t n = job / tiles, p0 = (job % tiles) * TILE;
            const size_t len = HW - p0 < TILE ? HW - p0 : TILE;
            const float *sp = sd + n * HW + p0;
            float acc[TILE];
            for (size_t j = 0; j < len; j++) acc[j] = 0.0f;
            for (int c = 0; c < C; c++) {
                const size_t off = (n * C + c) * HW + p0;
                const float *xp = xd + off, *gp = gd + off;
                if (dxd) {
                    float *dp = dxd + off;
                    _Pragma("omp simd")
                    for (size_t j = 0; j < len; j++) dp[j] += gp[j] * sp[j];
                }
                if (dsd)
                    for (size_t j = 0; j < len; j++) acc[j] += gp[j] * xp[j];
            }
            if (dsd)
                for (size_t j = 0; j < len; j++) dsd[n * HW + p0 + j] += acc[j];
        });
    return HEED_OK;
}

/* ---- concatenation ---- */

heed_status heed_concat_forward(const heed_tensor *a, const heed_tensor *b, heed_tensor *y) {
    HEED_CHECK_SHAPE(a->n == b->n && a->h == b->h && a->w == b->w,
                     "heed_concat_forward: a is " SHAPE_FMT " and b is " SHAPE_FMT
                     ", which differ in more than channels",
                     SHAPE_ARGS(a), SHAPE_ARGS(b));
    if (y == a || y == b || (y->data && (y->data == a->data || y->data == b->data)))
        return heed_fail(HEED_ERR_ARG, "heed_concat_forward: the output must not be an input");
    if ((size_t)a->c + b->c > 0x7fffffff)
        return heed_fail(HEED_ERR_LIMIT, "heed_concat_forward: %d + %d channels is too many", a->c,
                         b->c);
    HEED_TRY(size_output(y, a->n, a->c + b->c, a->h, a->w));
    const size_t HW = (size_t)a->h * a->w, na = (size_t)a->c * HW, nb = (size_t)b->c * HW;
    const int N = a->n;
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    PARALLEL_IF((size_t)N * (na + nb) > PAR_MIN, "omp parallel for schedule(static)",
        for (int n = 0; n < N; n++) {
            float *yn = yd + (size_t)n * (na + nb);
            memcpy(yn, ad + (size_t)n * na, na * sizeof(float));
            memcpy(yn + na, bd + (size_t)n * nb, nb * sizeof(float));
        });
    return HEED_OK;
}

heed_status heed_concat_backward(const heed_tensor *dy, heed_tensor *da, heed_tensor *db) {
    if (!da && !db) return HEED_OK;
    const int Ca = da ? da->c : dy->c - db->c, Cb = db ? db->c : dy->c - da->c;
    const int da_fits = !da || (da->n == dy->n && da->h == dy->h && da->w == dy->w);
    const int db_fits = !db || (db->n == dy->n && db->h == dy->h && db->w == dy->w);
    HEED_CHECK_SHAPE(da_fits && db_fits && Ca >= 1 && Cb >= 1 && Ca + Cb == dy->c,
                     "heed_concat_backward: dy " SHAPE_FMT " does not split into da " SHAPE_FMT
                     " and db " SHAPE_FMT " along channels",
                     SHAPE_ARGS(dy), da ? da->n : 0, Ca, da ? da->h : 0, da ? da->w : 0,
                     db ? db->n : 0, Cb, db ? db->h : 0, db ? db->w : 0);
    const size_t HW = (size_t)dy->h * dy->w, na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    const int N = dy->n;
    const float *gd = dy->data;
    float *dad = da ? da->data : NULL, *dbd = db ? db->data : NULL;
    PARALLEL_IF((size_t)N * (na + nb) > PAR_MIN, "omp parallel for schedule(static)",
        for (int n = 0; n < N; n++) {
            const float *gn = gd + (size_t)n * (na + nb);
            if (dad) {
                float *d = dad + (size_t)n * na;
                _Pragma("omp simd")
                for (size_t i = 0; i < na; i++) d[i] += gn[i];
            }
            if (dbd) {
                float *d = dbd + (size_t)n * nb;
                _Pragma("omp simd")
                for (size_t i = 0; i < nb; i++) d[i] += gn[na + i];
            }
        });
    return HEED_OK;
}

/* ---- BLAS-style helpers ---- */

void heed_axpy(float alpha, const heed_tensor *x, heed_tensor *y) {
    const size_t count = heed_tensor_count(x);
    if (count != heed_tensor_count(y)) {
        (void)heed_fail(HEED_ERR_SHAPE, "heed_axpy: x is " SHAPE_FMT " but y is " SHAPE_FMT
                        " (element counts differ); y left unchanged",
                        SHAPE_ARGS(x), SHAPE_ARGS(y));
        return;
    }
    const float *xd = x->data;
    float *yd = y->data;
    PARALLEL_SIMD_IF(count > PAR_MIN,
        for (size_t i = 0; i < count; i++) yd[i] += alpha * xd[i];
    );
}

void heed_scale(float alpha, heed_tensor *x) {
    const size_t count = heed_tensor_count(x);
    float *xd = x->data;
    PARALLEL_SIMD_IF(count > PAR_MIN,
        for (size_t i = 0; i < count; i++) xd[i] *= alpha;
    );
}
