/* se.c -- squeeze-and-excitation, composed from core primitives.
 *
 * forward:  s = gap(x); e = gate(fc2(act(fc1(s)))) (channel_mlp.c, one
 *           branch; relu and sigmoid unless cfg says); y = x * e
 *           (broadcast over H, W)
 * backward: de = sum_hw dy * x;  back through the MLP to ds and the
 *           fc1/fc2 parameter grads;  then in one pass dx += dy * e + ds / (H W)
 *           (the scaling's term and gap's backward). With base.dx_fresh
 *           (layer.h) dx is written, not added to a zeroed dx.
 */
#include "se.h"

#include <stdio.h>
#include <stdlib.h>

#include "elementwise.h"
#include "pool2d.h"

/* The channel weights e = gate(fc2(act(fc1(gap(x))))), in l->mlp.e. */
static heed_status excite(heed_se *l, const heed_tensor *x) {
    HEED_TRY(heed_layer_check_input(&l->base, x));
    HEED_TRY(heed_global_avg_pool_forward(x, &l->s));
    return heed_channel_mlp_forward(&l->mlp, &l->s);
}

heed_status heed_se_forward(heed_se *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(excite(l, x));
    return heed_mul_channel_forward(x, &l->mlp.e, y);
}

heed_status heed_se_backward(heed_se *l, const heed_tensor *x, const heed_tensor *dy, heed_tensor *dx) {
    HEED_TRY(heed_layer_check_input(&l->base, x));
    /* e and s are the last forward's: none yet, or another batch's */
    HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, x) && (!dx || heed_tensor_same_shape(dx, x)) &&
                         l->mlp.e.n == x->n && l->s.n == x->n,
                     "se backward %s: x (%d, %d, %d, %d), dy (%d, %d, %d, %d) and the last "
                     "forward (batch %d) do not match",
                     l->base.name, x->n, x->c, x->h, x->w, dy->n, dy->c, dy->h, dy->w, l->mlp.e.n);
    HEED_TRY(heed_tensor_zeros_like(&l->de, &l->mlp.e));
    HEED_TRY(heed_mul_channel_backward(x, &l->mlp.e, dy, NULL, &l->de));
    HEED_TRY(heed_channel_mlp_backward(&l->mlp, &l->s, &l->de, dx ? &l->ds : NULL));
    /* both of dx's terms, the scaling's and the squeeze's, in one pass */
    if (dx)
        HEED_TRY(heed_mul_channel_pool_backward(dy, &l->mlp.e, &l->ds, dx, !l->base.dx_fresh));
    return HEED_OK;
}

const heed_tensor *heed_se_weights(const heed_se *l) { return &l->mlp.e; }

static heed_status se_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    if (!l->add_after) return heed_se_forward((heed_se *)l, x, y);
    HEED_TRY(excite((heed_se *)l, x));
    return heed_mul_channel_add_forward(x, &((heed_se *)l)->mlp.e, l->add_after, l->relu_after, y);
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
    heed_channel_mlp_free(&l->mlp);
    heed_tensor_free(&l->s), heed_tensor_free(&l->ds), heed_tensor_free(&l->de);
    free(l);
}

static int se_child_count(const heed_layer *l) {
    (void)l;
    return 2;
}

static heed_layer *se_child(const heed_layer *l, int i) {
    const heed_se *se = (const heed_se *)l;
    return i == 0 ? &se->mlp.fc1->base : &se->mlp.fc2->base;
}

static const heed_layer_ops se_ops = {
    .type = "se",
    .writes_fresh_dx = 1,
    .adds_after = 1,
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
    if (!name) name = "";
    if (!p) return heed_fail(HEED_ERR_ARG, "se %s: no parameter store given", name);
    heed_se_cfg c = cfg ? *cfg : (heed_se_cfg){0};
    if (c.r && c.hidden)
        return heed_fail(HEED_ERR_ARG, "se %s: r=%d and hidden=%d both given; give one", name, c.r,
                         c.hidden);
    if (c.hidden < 0)
        return heed_fail(HEED_ERR_ARG, "se %s: hidden=%d, must be at least 1", name, c.hidden);
    if (c.act != HEED_ACT_RELU && c.act != HEED_ACT_SILU && c.act != HEED_ACT_HARDSWISH)
        return heed_fail(HEED_ERR_ARG, "se %s: act %s is not relu, silu or hardswish", name,
                         heed_act_name(c.act) ? heed_act_name(c.act) : "(unknown)");
    if (c.gate != HEED_GATE_SIGMOID && c.gate != HEED_GATE_HARDSIGMOID)
        return heed_fail(HEED_ERR_ARG, "se %s: unknown gate %d", name, (int)c.gate);
    if (!c.hidden && !c.r) c.r = 16;
    HEED_TRY(heed_channel_mlp_check("se", name, in, c.r, "fc1")); /* r 0: hidden given */
    const int hidden = c.hidden ? c.hidden : in[0] / c.r;
    heed_se *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "cannot allocate se %s", name);
    heed_layer_init(&l->base, &se_ops, name, in, in[0], in[1], in[2]);
    l->cfg = c;
    /* On failure it has forgotten what it registered: nothing points into l. */
    heed_status st = heed_channel_mlp_new(&l->mlp, in[0], hidden, 1, p, name);
    if (st != HEED_OK) {
        free(l);
        return st;
    }
    l->mlp.act = c.act;
    l->mlp.gate = c.gate;
    *out = l;
    return HEED_OK;
}
