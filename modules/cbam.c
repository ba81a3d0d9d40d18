/* cbam.c -- CBAM, composed from core primitives.
 *
 * forward:  p0 = gap(x), p1 = gmp(x); a = sum_i fc2(relu(fc1(p_i)));
 *           e = sigmoid(a); x1 = x * e; m = [max_c x1, mean_c x1];
 *           s = sigmoid(bn(conv(m))); y = x1 * s
 * backward (reverse order): dx1 = dy * s, ds = sum_c dy * x1;
 *           through sigmoid, bn, conv to dm; dx1 += channel_pool'(dm);
 *           dx += dx1 * e, de = sum_hw dx1 * x; through sigmoid to da;
 *           for each branch: fc2, relu, fc1 back to dp_i, then
 *           dx += gap'(dp0) + gmp'(dp1). fc1/fc2 gradients add up over
 *           both branches because the weights are shared.
 */
#include "cbam.h"

#include <stdio.h>
#include <stdlib.h>

#include "activation.h"
#include "elementwise.h"
#include "pool2d.h"

heed_status heed_cbam_forward(heed_cbam *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(heed_global_avg_pool_forward(x, &l->pooled[0]));
    HEED_TRY(heed_global_max_pool_forward(x, &l->pooled[1]));
    for (int i = 0; i < 2; i++) {
        HEED_TRY(heed_linear_forward(l->fc1, &l->pooled[i], &l->hidden[i]));
        HEED_TRY(heed_act_forward(HEED_ACT_RELU, 0, &l->hidden[i], &l->hidden_relu[i]));
        HEED_TRY(heed_linear_forward(l->fc2, &l->hidden_relu[i], &l->logits[i]));
    }
    HEED_TRY(heed_add_forward(&l->logits[0], &l->logits[1], &l->a));
    HEED_TRY(heed_act_forward(HEED_ACT_SIGMOID, 0, &l->a, &l->e));
    HEED_TRY(heed_mul_channel_forward(x, &l->e, &l->x1));
    HEED_TRY(heed_channel_pool_forward(&l->x1, &l->m));
    HEED_TRY(heed_layer_forward(&l->conv->base, &l->m, &l->c));
    HEED_TRY(heed_layer_forward(&l->bn->base, &l->c, &l->b));
    HEED_TRY(heed_act_forward(HEED_ACT_SIGMOID, 0, &l->b, &l->s));
    return heed_mul_spatial_forward(&l->x1, &l->s, y);
}

heed_status heed_cbam_backward(heed_cbam *l, const heed_tensor *x, const heed_tensor *dy,
                               heed_tensor *dx) {
    /* spatial attention */
    HEED_TRY(heed_tensor_zeros_like(&l->dx1, &l->x1));
    HEED_TRY(heed_tensor_zeros_like(&l->ds, &l->s));
    HEED_TRY(heed_mul_spatial_backward(&l->x1, &l->s, dy, &l->dx1, &l->ds));
    HEED_TRY(heed_tensor_zeros_like(&l->db, &l->b));
    HEED_TRY(heed_act_backward(HEED_ACT_SIGMOID, 0, &l->b, &l->s, &l->ds, &l->db));
    HEED_TRY(heed_tensor_zeros_like(&l->dc, &l->c));
    HEED_TRY(heed_layer_backward(&l->bn->base, &l->c, &l->b, &l->db, &l->dc));
    HEED_TRY(heed_tensor_zeros_like(&l->dm, &l->m));
    HEED_TRY(heed_layer_backward(&l->conv->base, &l->m, &l->c, &l->dc, &l->dm));
    HEED_TRY(heed_channel_pool_backward(&l->x1, &l->m, &l->dm, &l->dx1));
    /* channel attention */
    HEED_TRY(heed_tensor_zeros_like(&l->de, &l->e));
    HEED_TRY(heed_mul_channel_backward(x, &l->e, &l->dx1, dx, &l->de));
    HEED_TRY(heed_tensor_zeros_like(&l->da, &l->a));
    HEED_TRY(heed_act_backward(HEED_ACT_SIGMOID, 0, &l->a, &l->e, &l->de, &l->da));
    for (int i = 0; i < 2; i++) {
        /* d(logits[i]) = da for both branches: a is their sum. */
        HEED_TRY(heed_tensor_zeros_like(&l->dhidden_relu, &l->hidden_relu[i]));
        HEED_TRY(heed_linear_backward(l->fc2, &l->hidden_relu[i], &l->da, &l->dhidden_relu));
        HEED_TRY(heed_tensor_zeros_like(&l->dhidden, &l->hidden[i]));
        HEED_TRY(heed_act_backward(HEED_ACT_RELU, 0, &l->hidden[i], &l->hidden_relu[i],
                                   &l->dhidden_relu, &l->dhidden));
        HEED_TRY(heed_tensor_zeros_like(&l->dpooled, &l->pooled[i]));
        HEED_TRY(heed_linear_backward(l->fc1, &l->pooled[i], &l->dhidden, dx ? &l->dpooled : NULL));
        if (!dx) continue;
        if (i == 0)
            HEED_TRY(heed_global_avg_pool_backward(x, &l->dpooled, dx));
        else
            HEED_TRY(heed_global_max_pool_backward(x, &l->pooled[1], &l->dpooled, dx));
    }
    return HEED_OK;
}

const heed_tensor *heed_cbam_channel_weights(const heed_cbam *l) { return &l->e; }
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
    double mlp = heed_layer_flops(&c->fc1->base) + heed_layer_flops(&c->fc2->base);
    return mlp + 2 * chw + 2 * chw + 2 * chw + 2 * hw + l->in_c;
}

static void cbam_destroy(heed_layer *layer) {
    heed_cbam *l = (heed_cbam *)layer;
    heed_layer_free(&l->fc1->base);
    heed_layer_free(&l->fc2->base);
    heed_layer_free(&l->conv->base);
    heed_layer_free(&l->bn->base);
    heed_tensor *ts[] = {&l->pooled[0], &l->pooled[1], &l->hidden[0], &l->hidden[1],
                         &l->hidden_relu[0], &l->hidden_relu[1], &l->logits[0], &l->logits[1],
                         &l->a, &l->e, &l->x1, &l->m, &l->c, &l->b, &l->s, &l->dpooled,
                         &l->dhidden, &l->dhidden_relu, &l->da, &l->de, &l->dx1, &l->dm, &l->dc,
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
    heed_layer *children[4] = {&l->fc1->base, &l->fc2->base, &l->conv->base, &l->bn->base};
    return children[i];
}

static const heed_layer_ops cbam_ops = {
    .type = "cbam",
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
    int r = cfg->r ? cfg->r : 16, k = cfg->k ? cfg->k : 7, c = in[0];
    if (r < 1 || c / r < 1)
        return heed_fail(HEED_ERR_ARG, "cbam %s: reduction r=%d leaves no hidden units for %d channels",
                         name, r, c);
    if (k < 1 || k % 2 == 0)
        return heed_fail(HEED_ERR_ARG, "cbam %s: spatial kernel k=%d must be odd", name, k);
    heed_cbam *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "cannot allocate cbam %s", name);
    heed_layer_init(&l->base, &cbam_ops, name, in, in[0], in[1], in[2]);
    l->cfg = (heed_cbam_cfg){.r = r, .k = k};
    char sub[96];
    heed_status st = heed_linear_new(&l->fc1, &(heed_linear_cfg){.in = c, .out = c / r},
                                     (int[3]){c, 1, 1}, p, heed_layer_join_name(sub, sizeof sub, name, "fc1"));
    if (st == HEED_OK)
        st = heed_linear_new(&l->fc2, &(heed_linear_cfg){.in = c / r, .out = c}, (int[3]){c / r, 1, 1},
                             p, heed_layer_join_name(sub, sizeof sub, name, "fc2"));
    if (st == HEED_OK)
        st = heed_conv2d_new(&l->conv,
                             &(heed_conv2d_cfg){.in_c = 2, .out_c = 1, .k = k, .stride = 1,
                                                .pad = k / 2, .dilation = 1, .groups = 1, .bias = 0},
                             (int[3]){2, in[1], in[2]}, p, heed_layer_join_name(sub, sizeof sub, name, "conv"));
    if (st == HEED_OK)
        st = heed_batchnorm_new(&l->bn, &(heed_batchnorm_cfg){.c = 1}, (int[3]){1, in[1], in[2]}, p,
                                heed_layer_join_name(sub, sizeof sub, name, "bn"));
    if (st != HEED_OK) {
        if (l->fc1) heed_layer_free(&l->fc1->base);
        if (l->fc2) heed_layer_free(&l->fc2->base);
        if (l->conv) heed_layer_free(&l->conv->base);
        free(l);
        return st;
    }
    *out = l;
    return HEED_OK;
}
