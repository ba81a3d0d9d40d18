/* eca.c -- efficient channel attention, on the core primitives but for its
 * convolution across channels.
 *
 * forward:  s = gap(x); z[c] = sum_j w[j] s[c + j - P] (P = (k-1)/2, zero
 *           outside the channels); e = sigmoid(z); y = x * e
 * backward: de = sum_hw dy * x;  dz = de * e (1 - e);
 *           dw[j] += sum_{n,c} dz[c] s[c + j - P];
 *           ds[c] = sum_j dz[c - j + P] w[j];  then in one pass
 *           dx += dy * e + ds / (H W) (the scaling's term and gap's
 *           backward). With base.dx_fresh (layer.h) dx is written.
 *
 * The convolution is a loop of its own: heed's conv2d takes square kernels,
 * and a k-tap filter along C pooled values is a few hundred operations.
 */
#include "eca.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "elementwise.h"
#include "pool2d.h"

int heed_eca_kernel(int c) {
    /* The paper's code: int(abs((math.log(C, 2) + 1) / 2)), made odd. */
    const int t = (int)fabs((log((double)c) / log(2.0) + 1.0) / 2.0);
    return t % 2 ? t : t + 1;
}

/* z = w * s along the channels of each image, zero-padded. */
static void conv_channels(const float *w, int k, const float *s, int n, int c, float *z) {
    const int pad = (k - 1) / 2;
    for (int i = 0; i < n; i++, s += c, z += c)
        for (int o = 0; o < c; o++) {
            float acc = 0.0f;
            for (int j = 0; j < k; j++) {
                const int at = o + j - pad;
                if (at >= 0 && at < c) acc += w[j] * s[at];
            }
            z[o] = acc;
        }
}

/* dw += the weight gradient, ds = the input gradient of conv_channels. */
static void conv_channels_backward(const float *w, int k, const float *s, const float *dz, int n, int c,
                                   float *dw, float *ds) {
    const int pad = (k - 1) / 2;
    for (int i = 0; i < n; i++, s += c, dz += c) {
        for (int o = 0; o < c; o++)
            for (int j = 0; j < k; j++) {
                const int at = o + j - pad;
                if (at >= 0 && at < c) dw[j] += dz[o] * s[at];
            }
        if (!ds) continue;
        for (int at = 0; at < c; at++) {
            float acc = 0.0f;
            for (int j = 0; j < k; j++) {
                const int o = at - j + pad;
                if (o >= 0 && o < c) acc += dz[o] * w[j];
            }
            ds[(size_t)i * c + at] = acc;
        }
    }
}

/* The channel weights e = sigmoid(w * gap(x)), in l->e. */
static heed_status excite(heed_eca *l, const heed_tensor *x) {
    HEED_TRY(heed_layer_check_input(&l->base, x));
    HEED_TRY(heed_global_avg_pool_forward(x, &l->s));
    HEED_TRY(heed_tensor_ensure(&l->z, x->n, x->c, 1, 1));
    conv_channels(l->w, l->cfg.k, l->s.data, x->n, x->c, l->z.data);
    return heed_act_forward(HEED_ACT_SIGMOID, 0.0f, &l->z, &l->e);
}

heed_status heed_eca_forward(heed_eca *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(excite(l, x));
    return heed_mul_channel_forward(x, &l->e, y);
}

heed_status heed_eca_backward(heed_eca *l, const heed_tensor *x, const heed_tensor *dy, heed_tensor *dx) {
    HEED_TRY(heed_layer_check_input(&l->base, x));
    /* e and s are the last forward's: none yet, or another batch's */
    HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, x) && (!dx || heed_tensor_same_shape(dx, x)) &&
                         l->e.n == x->n && l->e.c == x->c && l->s.n == x->n,
                     "eca backward %s: x (%d, %d, %d, %d), dy (%d, %d, %d, %d) and the last "
                     "forward (batch %d) do not match",
                     l->base.name, x->n, x->c, x->h, x->w, dy->n, dy->c, dy->h, dy->w, l->e.n);
    HEED_TRY(heed_tensor_zeros_like(&l->de, &l->e));
    HEED_TRY(heed_mul_channel_backward(x, &l->e, dy, NULL, &l->de));
    HEED_TRY(heed_tensor_zeros_like(&l->dz, &l->z));
    HEED_TRY(heed_act_backward(HEED_ACT_SIGMOID, 0.0f, &l->z, &l->e, &l->de, &l->dz));
    if (dx) HEED_TRY(heed_tensor_ensure(&l->ds, x->n, x->c, 1, 1));
    conv_channels_backward(l->w, l->cfg.k, l->s.data, l->dz.data, x->n, x->c, l->dw,
                           dx ? l->ds.data : NULL);
    /* both of dx's terms, the scaling's and the squeeze's, in one pass */
    if (dx) HEED_TRY(heed_mul_channel_pool_backward(dy, &l->e, &l->ds, dx, !l->base.dx_fresh));
    return HEED_OK;
}

const heed_tensor *heed_eca_weights(const heed_eca *l) { return &l->e; }

static heed_status eca_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    heed_eca *eca = (heed_eca *)l;
    if (!l->add_after) return heed_eca_forward(eca, x, y);
    HEED_TRY(excite(eca, x));
    return heed_mul_channel_add_forward(x, &eca->e, l->add_after, l->relu_after, y);
}

static heed_status eca_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_eca_backward((heed_eca *)l, x, dy, dx);
}

static double eca_flops(const heed_layer *l) {
    /* pooling, the convolution, the sigmoid and the scaling */
    const double chw = (double)l->in_c * l->in_h * l->in_w;
    return 2 * chw + 2.0 * l->in_c * ((const heed_eca *)l)->cfg.k + l->in_c;
}

static void eca_destroy(heed_layer *layer) {
    heed_eca *l = (heed_eca *)layer;
    heed_tensor *ts[] = {&l->s, &l->z, &l->e, &l->ds, &l->de, &l->dz};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
    free(l);
}

static const heed_layer_ops eca_ops = {
    .type = "eca",
    .writes_fresh_dx = 1,
    .adds_after = 1,
    .forward = eca_forward,
    .backward = eca_backward,
    .flops = eca_flops,
    .destroy = eca_destroy,
};

heed_status heed_eca_new(heed_eca **out, const heed_eca_cfg *cfg, const int in[3], heed_params *p,
                         const char *name) {
    *out = NULL;
    if (!name) name = "";
    if (!p) return heed_fail(HEED_ERR_ARG, "eca %s: no parameter store given", name);
    HEED_TRY(heed_layer_check_name("eca", name));
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "eca %s: input shape (%d, %d, %d) has a dimension < 1", name, in[0],
                         in[1], in[2]);
    const int k = cfg && cfg->k ? cfg->k : heed_eca_kernel(in[0]);
    if (k < 1 || k % 2 == 0)
        return heed_fail(HEED_ERR_ARG, "eca %s: k = %d, must be odd and positive (0: from the channels)",
                         name, k);
    heed_eca *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "cannot allocate eca %s", name);
    heed_layer_init(&l->base, &eca_ops, name, in, in[0], in[1], in[2]);
    l->cfg.k = k;
    char pname[96];
    const int dims[3] = {1, 1, k};
    /* One tensor: on failure nothing was registered. */
    heed_status st = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "conv.weight"), 3,
                                     dims, HEED_INIT_UNIFORM, k, HEED_PARAM_DECAY, &l->w, &l->dw);
    if (st != HEED_OK) {
        free(l);
        return st;
    }
    *out = l;
    return HEED_OK;
}
