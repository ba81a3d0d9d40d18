/* cbam.c -- CBAM: core primitives for the small tensors, fused passes for
 * the large one.
 *
 * forward:  p0 = gap(x), p1 = gmp(x); e = sigmoid(sum_i fc2(relu(fc1(p_i))))
 *           (channel_mlp.c, two branches); x1 = x * e;
 *           m = [max_c x1, mean_c x1]; s = sigmoid(bn(conv(m))); y = x1 * s
 * backward (reverse order): dx1 = dy * s, ds = sum_c dy * x1;
 *           through sigmoid, bn, conv to dm; dx1 += channel_pool'(dm);
 *           dx += dx1 * e, de = sum_hw dx1 * x; back through the MLP to
 *           dp_i (fc1/fc2 gradients add up over both branches because the
 *           weights are shared); dx += gap'(dp0) + gmp'(dp1).
 *
 * Everything on (N, C) vectors and (N, 1|2, H, W) maps runs on the
 * primitives (linear, activation, conv, batch norm layers). The passes over
 * the (N, C, H, W) activation are fused, because done one primitive at a
 * time they cost most of the module's time: x1 is never stored (x * e is
 * recomputed where needed, the same float product each time), so forward
 * reads x three times (both global poolings; the channel pool of x * e;
 * y = x * e * s) and writes y once, and backward reads it three times (ds;
 * dx1, de and dx += dx1 e together; the global poolings' gradients).
 */
#include "cbam.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "activation.h"
#include "parallel.h"
#include "pool2d.h"
#include "wide.h"

/* Positions per block in the channel pool: the block's maxima, counts and
 * sums stay in small local arrays while the loops stream over channels. */
#define BLOCK 256

/* As in pool2d.c: NaN is a maximum, otherwise only a larger value wins. */
static inline int beats(float v, float best) { return (v > best) | (v != v); }

/* The passes that reduce over channels per position (the channel pool,
 * the spatial map's gradient) stream the channels over one block of
 * positions of one image at a time, so the block's accumulators stay in
 * small local arrays; for_each_block runs such a pass over every
 * (image, block) in parallel. What the passes read and write: */
typedef struct block_pass {
    const heed_tensor *x; /* (N, C, H, W) */
    const float *e;       /* (N, C) channel weights: x1 = x * e */
    const float *dy;      /* (N, C, H, W) output gradient (spatial_grad) */
    float *out;           /* channel_pool_scaled: m (N, 2, H, W); spatial_grad: ds (N, 1, H, W) */
    float *ties;          /* (N, 1, H, W), or NULL (channel_pool_scaled) */
} block_pass;

/* One block: image n, positions p0 .. p0 + len - 1 (len <= BLOCK). */
typedef void (*block_fn)(const block_pass *a, int n, size_t p0, int len);

static void for_each_block(const block_pass *a, block_fn fn) {
    const int N = a->x->n, C = a->x->c;
    const size_t HW = (size_t)a->x->h * a->x->w;
    const int blocks = (int)((HW + BLOCK - 1) / BLOCK);
    PARALLEL_IF((size_t)N * C * HW > PAR_MIN, "omp parallel for collapse(2) schedule(static)",
        for (int n = 0; n < N; n++)
            for (int b = 0; b < blocks; b++) {
                const size_t p0 = (size_t)b * BLOCK;
                fn(a, n, p0, HW - p0 < BLOCK ? (int)(HW - p0) : BLOCK);
            });
}

/* m[n,0,p] = max_c x1, m[n,1,p] = mean_c x1, with x1 = x * e, and ties[n,p]
 * the number of channels equal to the maximum (0 for a NaN maximum, which
 * nothing equals). */
HEED_WIDE static void channel_pool_block(const block_pass *a, int n, size_t p0, int len) {
    const int C = a->x->c;
    const size_t HW = (size_t)a->x->h * a->x->w;
    const float *xn = a->x->data + (size_t)n * C * HW + p0;
    const float *en = a->e + (size_t)n * C;
    float *ties = a->ties;
    float mx[BLOCK], sum[BLOCK], cnt[BLOCK];
    for (int k = 0; k < len; k++) mx[k] = sum[k] = xn[k] * en[0], cnt[k] = 0.0f;
    for (int c = 1; c < C; c++) {
        const float *restrict xc = xn + (size_t)c * HW;
        const float ec = en[c];
        for (int k = 0; k < len; k++) {
            const float v = xc[k] * ec;
            mx[k] = beats(v, mx[k]) ? v : mx[k];
            sum[k] += v;
        }
    }
    /* Counting the ties as the maximum changes would not vectorize;
     * a second sweep over the block (in cache) does. */
    for (int c = 0; ties && c < C; c++) {
        const float *restrict xc = xn + (size_t)c * HW;
        const float ec = en[c];
        for (int k = 0; k < len; k++) cnt[k] += xc[k] * ec == mx[k] ? 1.0f : 0.0f;
    }
    float *ymax = a->out + (size_t)n * 2 * HW + p0, *ymean = ymax + HW;
    for (int k = 0; k < len; k++) ymax[k] = mx[k], ymean[k] = sum[k] / (float)C;
    if (ties)
        for (int k = 0; k < len; k++) ties[(size_t)n * HW + p0 + k] = cnt[k];
}

static void channel_pool_scaled(const heed_tensor *x, const float *e, float *m, float *ties) {
    /* ties NULL: not needed (an inference forward; a backward after it
     * counts them then). */
    for_each_block(&(block_pass){.x = x, .e = e, .out = m, .ties = ties}, channel_pool_block);
}

/* y = (x * e) * s: e per (n, c), s per (n, position); plus add (shaped
 * like x, may be NULL) and then relu when `relu` (layer.h's add_after: a
 * residual block's sum, as a separate pass would give it bit for bit). */
HEED_WIDE static void scale_channels_positions(const heed_tensor *x, const float *e, const float *s,
                                               const float *add, int relu, float *y) {
    const int C = x->c;
    const size_t planes = (size_t)x->n * C, HW = (size_t)x->h * x->w;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            const float *restrict xp = x->data + p * HW, *restrict sp = s + (p / C) * HW;
            float *yp = y + p * HW;
            const float ev = e[p];
            if (!add) {
                for (size_t i = 0; i < HW; i++) yp[i] = (xp[i] * ev) * sp[i];
                continue;
            }
            const float *ap = add + p * HW;
            for (size_t i = 0; i < HW; i++) {
                const float v = (xp[i] * ev) * sp[i] + ap[i];
                yp[i] = relu && v < 0.0f ? 0.0f : v;
            }
        });
}

heed_status heed_cbam_forward(heed_cbam *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(heed_layer_check_input(&l->base, x));
    const int N = x->n, C = x->c, H = x->h, W = x->w;
    HEED_TRY(heed_global_avg_max_pool_forward(x, &l->pooled[0], &l->pooled[1]));
    HEED_TRY(heed_channel_mlp_forward(&l->mlp, l->pooled));
    HEED_TRY(heed_tensor_ensure(&l->m, N, 2, H, W));
    HEED_TRY(heed_tensor_ensure(&l->ties, N, 1, H, W));
    l->ties_valid = l->base.training;
    channel_pool_scaled(x, l->mlp.e.data, l->m.data, l->ties_valid ? l->ties.data : NULL);
    HEED_TRY(heed_layer_forward(&l->conv->base, &l->m, &l->c));
    HEED_TRY(heed_layer_forward(&l->bn->base, &l->c, &l->b));
    HEED_TRY(heed_act_forward(HEED_ACT_SIGMOID, 0, &l->b, &l->s));
    if (y == x || (y->data && y->data == x->data))
        return heed_fail(HEED_ERR_ARG, "cbam forward %s: y must not alias x", l->base.name);
    HEED_TRY(heed_tensor_ensure(y, N, C, H, W));
    const heed_tensor *add = l->base.add_after;
    if (add && !heed_tensor_same_shape(add, y))
        return heed_fail(HEED_ERR_SHAPE, "cbam forward %s: the sum to add is not shaped like y",
                         l->base.name);
    scale_channels_positions(x, l->mlp.e.data, l->s.data, add ? add->data : NULL,
                             l->base.relu_after, y->data);
    return HEED_OK;
}

/* ds[n,p] = sum_c dy * x1 (channels are HW apart). */
HEED_WIDE static void spatial_grad_block(const block_pass *a, int n, size_t p0, int len) {
    const int C = a->x->c;
    const size_t HW = (size_t)a->x->h * a->x->w;
    float acc[BLOCK];
    for (int k = 0; k < len; k++) acc[k] = 0.0f;
    for (int c = 0; c < C; c++) {
        const size_t off = ((size_t)n * C + c) * HW + p0;
        const float *restrict xc = a->x->data + off, *restrict gc = a->dy + off;
        const float ec = a->e[(size_t)n * C + c];
        for (int k = 0; k < len; k++) acc[k] += gc[k] * (xc[k] * ec);
    }
    float *dsn = a->out + (size_t)n * HW + p0;
    for (int k = 0; k < len; k++) dsn[k] = acc[k];
}

static void spatial_grad(const heed_tensor *x, const float *e, const float *dy, float *ds) {
    for_each_block(&(block_pass){.x = x, .e = e, .dy = dy, .out = ds}, spatial_grad_block);
}

/* Per (n, c) plane: dx1 = dy s + dmean / C + [x1 == max] dmax / T;
 * de[n,c] = sum_p dx1 x; dx += dx1 e, or dx = 0 + dx1 e when `fresh` (dx
 * then holds nothing yet, and is not read); dx may be NULL. share holds
 * (N, 2, HW): dmax / T (0 without ties) and dmean / C per position. */
HEED_WIDE
static void channel_grad(const heed_tensor *x, const float *e, const float *dy, const float *s,
                         const float *mx, const float *share, float *de, float *dx, int fresh) {
    const int C = x->c;
    const size_t planes = (size_t)x->n * C, HW = (size_t)x->h * x->w;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            const size_t n = p / C;
            const float *restrict xp = x->data + p * HW, *restrict gp = dy + p * HW;
            const float *restrict sp = s + n * HW, *restrict mp = mx + n * 2 * HW;
            const float *restrict smax = share + n * 2 * HW, *restrict smean = smax + HW;
            float *restrict dp = dx ? dx + p * HW : NULL;
            const float ev = e[p];
            float acc = 0.0f;
            if (dp) {
                _Pragma("omp simd reduction(+ : acc)")
                for (size_t i = 0; i < HW; i++) {
                    const float sm = smax[i]; /* loaded before the select, which then vectorizes */
                    const float d = gp[i] * sp[i] + smean[i] + (xp[i] * ev == mp[i] ? sm : 0.0f);
                    acc += d * xp[i];
                    if (fresh)
                        dp[i] = 0.0f + d * ev; /* the sum a zeroed dx would get */
                    else
                        dp[i] += d * ev;
                }
            } else {
                _Pragma("omp simd reduction(+ : acc)")
                for (size_t i = 0; i < HW; i++) {
                    const float sm = smax[i]; /* loaded before the select, which then vectorizes */
                    const float d = gp[i] * sp[i] + smean[i] + (xp[i] * ev == mp[i] ? sm : 0.0f);
                    acc += d * xp[i];
                }
            }
            de[p] = acc;
        });
}

/* dx += dp0 / HW + [x == gmax] dp1 / T per plane: both global poolings'
 * gradients in one pass (T the plane's maxima, as in pool2d.c). */
HEED_WIDE static void global_grad(const heed_tensor *x, const float *gmax, const float *dp0,
                        const float *dp1, float *dx) {
    const size_t planes = (size_t)x->n * x->c, HW = (size_t)x->h * x->w;
    PARALLEL_IF(planes * HW > PAR_MIN, "omp parallel for schedule(static)",
        for (size_t p = 0; p < planes; p++) {
            const float *restrict xp = x->data + p * HW;
            float *restrict dp = dx + p * HW;
            const float m = gmax[p];
            int ties = 0;
            for (size_t i = 0; i < HW; i++) ties += xp[i] == m;
            const float a = dp0[p] / (float)HW, b = ties ? dp1[p] / (float)ties : 0.0f;
            for (size_t i = 0; i < HW; i++) dp[i] += a + (xp[i] == m ? b : 0.0f);
        });
}

heed_status heed_cbam_backward(heed_cbam *l, const heed_tensor *x, const heed_tensor *dy,
                               heed_tensor *dx) {
    HEED_TRY(heed_layer_check_input(&l->base, x));
    const int N = x->n, C = x->c, H = x->h, W = x->w;
    const size_t HW = (size_t)H * W;
    HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, x) && (!dx || heed_tensor_same_shape(dx, x)) &&
                         l->mlp.e.n == N && l->s.n == N,
                     "cbam backward %s: x (%d, %d, %d, %d), dy (%d, %d, %d, %d) and the last "
                     "forward (batch %d) do not match",
                     l->base.name, N, C, H, W, dy->n, dy->c, dy->h, dy->w, l->mlp.e.n);
    /* spatial attention */
    HEED_TRY(heed_tensor_ensure(&l->ds, N, 1, H, W));
    spatial_grad(x, l->mlp.e.data, dy->data, l->ds.data);
    HEED_TRY(heed_tensor_zeros_like(&l->db, &l->b));
    HEED_TRY(heed_act_backward(HEED_ACT_SIGMOID, 0, &l->b, &l->s, &l->ds, &l->db));
    HEED_TRY(heed_tensor_zeros_like(&l->dc, &l->c));
    HEED_TRY(heed_layer_backward(&l->bn->base, &l->c, &l->b, &l->db, &l->dc));
    HEED_TRY(heed_tensor_zeros_like(&l->dm, &l->m));
    HEED_TRY(heed_layer_backward(&l->conv->base, &l->m, &l->c, &l->dc, &l->dm));
    /* the channel pool's gradient shares, per position */
    if (!l->ties_valid) {
        /* An inference forward skipped counting the tied maxima. */
        channel_pool_scaled(x, l->mlp.e.data, l->m.data, l->ties.data);
        l->ties_valid = 1;
    }
    HEED_TRY(heed_tensor_ensure(&l->share, N, 2, H, W));
    for (int n = 0; n < N; n++) {
        const float *dmax = l->dm.data + (size_t)n * 2 * HW, *dmean = dmax + HW;
        const float *t = l->ties.data + (size_t)n * HW;
        float *smax = l->share.data + (size_t)n * 2 * HW, *smean = smax + HW;
        for (size_t i = 0; i < HW; i++) {
            smax[i] = t[i] > 0.0f ? dmax[i] / t[i] : 0.0f;
            smean[i] = dmean[i] / (float)C;
        }
    }
    /* channel attention */
    HEED_TRY(heed_tensor_ensure(&l->de, N, C, 1, 1));
    channel_grad(x, l->mlp.e.data, dy->data, l->s.data, l->m.data, l->share.data, l->de.data,
                 dx ? dx->data : NULL, l->base.dx_fresh);
    HEED_TRY(heed_channel_mlp_backward(&l->mlp, l->pooled, &l->de, dx ? l->dpooled : NULL));
    if (dx) global_grad(x, l->pooled[1].data, l->dpooled[0].data, l->dpooled[1].data, dx->data);
    return HEED_OK;
}

const heed_tensor *heed_cbam_channel_weights(const heed_cbam *l) { return &l->mlp.e; }
const heed_tensor *heed_cbam_spatial_map(const heed_cbam *l) { return &l->s; }

static heed_status cbam_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_cbam_forward((heed_cbam *)l, x, y);
}

static heed_status cbam_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                 const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_cbam_backward((heed_cbam *)l, x, dy, dx);
}

static double cbam_flops(const heed_layer *l) {
    /* the second pass through the shared MLP (children count one), the two
     * poolings, channel pool, the two scalings and the sigmoids */
    double chw = (double)l->in_c * l->in_h * l->in_w, hw = (double)l->in_h * l->in_w;
    const heed_cbam *c = (const heed_cbam *)l;
    double mlp = heed_layer_flops(&c->mlp.fc1->base) + heed_layer_flops(&c->mlp.fc2->base);
    return mlp + 2 * chw + 2 * chw + 2 * chw + 2 * hw + l->in_c;
}

static void cbam_destroy(heed_layer *layer) {
    heed_cbam *l = (heed_cbam *)layer;
    heed_channel_mlp_free(&l->mlp);
    heed_layer_free(&l->conv->base);
    heed_layer_free(&l->bn->base);
    heed_tensor *ts[] = {&l->pooled[0], &l->pooled[1], &l->m, &l->ties, &l->c, &l->b, &l->s,
                         &l->dpooled[0], &l->dpooled[1], &l->de, &l->share, &l->dm, &l->dc,
                         &l->db, &l->ds};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
    free(l);
}

static int cbam_child_count(const heed_layer *l) {
    (void)l;
    return 4;
}

static heed_layer *cbam_child(const heed_layer *layer, int i) {
    const heed_cbam *l = (const heed_cbam *)layer;
    heed_layer *children[4] = {&l->mlp.fc1->base, &l->mlp.fc2->base, &l->conv->base, &l->bn->base};
    return children[i];
}

static const heed_layer_ops cbam_ops = {
    .type = "cbam",
    .writes_fresh_dx = 1,
    .adds_after = 1,
    .forward = cbam_forward,
    .backward = cbam_backward,
    .flops = cbam_flops,
    .destroy = cbam_destroy,
    .child_count = cbam_child_count,
    .child = cbam_child,
};

heed_status heed_cbam_new(heed_cbam **out, const heed_cbam_cfg *cfg, const int in[3], heed_params *p,
                          const char *name) {
    *out = NULL;
    if (!name) name = "";
    if (!p) return heed_fail(HEED_ERR_ARG, "cbam %s: no parameter store given", name);
    const heed_cbam_cfg given = cfg ? *cfg : (heed_cbam_cfg){0};
    const int r = given.r ? given.r : 16, k = given.k ? given.k : 7, c = in[0];
    HEED_TRY(heed_channel_mlp_check("cbam", name, in, r, "conv"));
    if (k < 1 || k % 2 == 0)
        return heed_fail(HEED_ERR_ARG, "cbam %s: spatial kernel k=%d must be odd", name, k);
    heed_cbam *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "cannot allocate cbam %s", name);
    heed_layer_init(&l->base, &cbam_ops, name, in, in[0], in[1], in[2]);
    l->cfg = (heed_cbam_cfg){.r = r, .k = k};
    /* On failure, forget what the parts registered so that no slot points
     * into the parts freed here. */
    const int registered = p->count;
    char sub[96];
    heed_status st = heed_channel_mlp_new(&l->mlp, c, c / r, 2, p, name);
    if (st == HEED_OK)
        st = heed_conv2d_new(&l->conv,
                             &(heed_conv2d_cfg){.in_c = 2, .out_c = 1, .k = k, .stride = 1,
                                                .pad = k / 2, .dilation = 1, .groups = 1, .bias = 0},
                             (int[3]){2, in[1], in[2]}, p, heed_layer_join_name(sub, sizeof sub, name, "conv"));
    if (st == HEED_OK)
        st = heed_batchnorm_new(&l->bn, &(heed_batchnorm_cfg){.c = 1}, (int[3]){1, in[1], in[2]}, p,
                                heed_layer_join_name(sub, sizeof sub, name, "bn"));
    if (st != HEED_OK) {
        heed_params_truncate(p, registered);
        heed_channel_mlp_free(&l->mlp);
        heed_layer_free(l->conv ? &l->conv->base : NULL);
        free(l);
        return st;
    }
    *out = l;
    return HEED_OK;
}
