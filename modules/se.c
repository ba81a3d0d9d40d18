/* se.c -- squeeze-and-excitation, composed from core primitives.
 *
 * forward:  s = gap(x); h = fc1(s); hr = relu(h); a = fc2(hr);
 *           e = sigmoid(a); y = x * e (broadcast over H, W)
 * backward: dx += dy * e;  de = sum_hw dy * x;  da = de * e (1 - e);
 *           dhr = fc2^T da;  dh = dhr [h > 0];  ds = fc1^T dh;
 *           dx += ds / (H W)  (gap's backward), plus fc1/fc2 parameter grads.
 */
#include "se.h"

#include <stdio.h>
#include <stdlib.h>

#include "activation.h"
#include "elementwise.h"
#include "pool2d.h"

heed_status heed_se_forward(heed_se *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(heed_global_avg_pool_forward(x, &l->s));
    HEED_TRY(heed_linear_forward(l->fc1, &l->s, &l->h));
    HEED_TRY(heed_act_forward(HEED_ACT_RELU, 0, &l->h, &l->hr));
    HEED_TRY(heed_linear_forward(l->fc2, &l->hr, &l->a));
    HEED_TRY(heed_act_forward(HEED_ACT_SIGMOID, 0, &l->a, &l->e));
    return heed_mul_channel_forward(x, &l->e, y);
}

heed_status heed_se_backward(heed_se *l, const heed_tensor *x, const heed_tensor *dy, heed_tensor *dx) {
    HEED_TRY(heed_tensor_zeros_like(&l->de, &l->e));
    HEED_TRY(heed_mul_channel_backward(x, &l->e, dy, dx, &l->de));
    HEED_TRY(heed_tensor_zeros_like(&l->da, &l->a));
    HEED_TRY(heed_act_backward(HEED_ACT_SIGMOID, 0, &l->a, &l->e, &l->de, &l->da));
    HEED_TRY(heed_tensor_zeros_like(&l->dhr, &l->hr));
    HEED_TRY(heed_linear_backward(l->fc2, &l->hr, &l->da, &l->dhr));
    HEED_TRY(heed_tensor_zeros_like(&l->dh, &l->h));
    HEED_TRY(heed_act_backward(HEED_ACT_RELU, 0, &l->h, &l->hr, &l->dhr, &l->dh));
    HEED_TRY(heed_tensor_zeros_like(&l->ds, &l->s));
    HEED_TRY(heed_linear_backward(l->fc1, &l->s, &l->dh, dx ? &l->ds : NULL));
    if (dx) HEED_TRY(heed_global_avg_pool_backward(x, &l->ds, dx));
    return HEED_OK;
}

const heed_tensor *heed_se_weights(const heed_se *l) { return &l->e; }

static heed_status se_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_se_forward((heed_se *)l, x, y);
}

static heed_status se_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                               const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_se_backward((heed_se *)l, x, dy, dx);
}

static double se_flops(const heed_layer *l) {
    /* pooling, the scaling, and the sigmoid; the fc layers count themselves */
    double chw = (double)l->in_c * l->in_h * l->in_w;
    return 2 * chw + l->in_c;
}

static void se_destroy(heed_layer *layer) {
    heed_se *l = (heed_se *)layer;
    heed_layer_free(&l->fc1->base);
    heed_layer_free(&l->fc2->base);
    heed_tensor *ts[] = {&l->s, &l->h, &l->hr, &l->a, &l->e, &l->ds, &l->dh, &l->dhr, &l->da, &l->de};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
    free(l);
}

static int se_child_count(const heed_layer *l) {
    (void)l;
    return 2;
}

static heed_layer *se_child(const heed_layer *l, int i) {
    const heed_se *se = (const heed_se *)l;
    return i == 0 ? &se->fc1->base : &se->fc2->base;
}

static const heed_layer_ops se_ops = {
    .type = "se",
    .forward = se_forward,
    .backward = se_backward,
    .flops = se_flops,
    .destroy = se_destroy,
    .child_count = se_child_count,
    .child = se_child,
};

heed_status heed_se_new(heed_se **out, const heed_se_cfg *cfg, const int in[3], heed_params *p,
                        const char *name) {
    *out = NULL;
    int r = cfg->r ? cfg->r : 16, c = in[0];
    if (r < 1 || c / r < 1)
        return heed_fail(HEED_ERR_ARG, "se %s: reduction r=%d leaves no hidden units for %d channels",
                         name, r, c);
    heed_se *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "cannot allocate se %s", name);
    heed_layer_init(&l->base, &se_ops, name, in, in[0], in[1], in[2]);
    l->cfg.r = r;
    char sub[96];
    heed_status st = heed_linear_new(&l->fc1, &(heed_linear_cfg){.in = c, .out = c / r},
                                     (int[3]){c, 1, 1}, p, heed_layer_join_name(sub, sizeof sub, name, "fc1"));
    if (st == HEED_OK)
        st = heed_linear_new(&l->fc2, &(heed_linear_cfg){.in = c / r, .out = c}, (int[3]){c / r, 1, 1},
                             p, heed_layer_join_name(sub, sizeof sub, name, "fc2"));
    if (st != HEED_OK) {
        if (l->fc1) heed_layer_free(&l->fc1->base);
        free(l);
        return st;
    }
    *out = l;
    return HEED_OK;
}
