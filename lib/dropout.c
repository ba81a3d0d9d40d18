/* dropout.c -- inverted dropout.
 *
 *   forward (training):  m_i = [u_i >= p] / (1 - p) with u_i ~ U[0, 1),
 *                        y_i = x_i m_i
 *   forward (inference): y_i = x_i
 *   backward:            dx_i += dy_i m_i   (m_i = 1 after inference)
 *
 * The mask is drawn serially from one generator so that it does not depend
 * on the thread count; drawing is cheap next to the layers around it.
 */
#include "dropout.h"

#include <stdlib.h>
#include <string.h>

heed_status heed_dropout_forward(heed_dropout *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(heed_tensor_ensure(y, x->n, x->c, x->h, x->w));
    const size_t count = heed_tensor_count(x);
    l->masked = 0;
    if (!l->base.training) {
        if (y->data != x->data) memcpy(y->data, x->data, count * sizeof(float));
        return HEED_OK;
    }
    float *m;
    HEED_TRY(heed_scratch_get(&l->mask, count, &m));
    const float p = l->cfg.p, keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < count; i++) {
        m[i] = heed_rng_uniform(&l->rng) >= p ? keep : 0.0f;
        y->data[i] = x->data[i] * m[i];
    }
    l->masked = count;
    return HEED_OK;
}

heed_status heed_dropout_backward(heed_dropout *l, const heed_tensor *x, const heed_tensor *dy,
                                  heed_tensor *dx) {
    if (!dx) return HEED_OK;
    HEED_CHECK_SHAPE(heed_tensor_same_shape(dy, x) && heed_tensor_same_shape(dx, x),
                     "dropout backward %s: gradients (%d, %d, %d, %d) and (%d, %d, %d, %d) do not "
                     "match input (%d, %d, %d, %d)",
                     l->base.name, dy->n, dy->c, dy->h, dy->w, dx->n, dx->c, dx->h, dx->w, x->n,
                     x->c, x->h, x->w);
    const size_t count = heed_tensor_count(x);
    if (l->masked) {
        HEED_CHECK_SHAPE(count == l->masked,
                         "dropout backward %s: input (%d, %d, %d, %d) is not the %zu elements the "
                         "last forward masked",
                         l->base.name, x->n, x->c, x->h, x->w, l->masked);
        const float *m = l->mask.data;
        for (size_t i = 0; i < count; i++) dx->data[i] += dy->data[i] * m[i];
    } else {
        for (size_t i = 0; i < count; i++) dx->data[i] += dy->data[i];
    }
    return HEED_OK;
}

static heed_status dropout_forward_op(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_dropout_forward((heed_dropout *)l, x, y);
}

static heed_status dropout_backward_op(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                       const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_dropout_backward((heed_dropout *)l, x, dy, dx);
}

static void dropout_destroy(heed_layer *base) {
    heed_dropout *l = (heed_dropout *)base;
    heed_scratch_free(&l->mask);
    free(l);
}

/* The configured seed stays part of the stream, so two dropout layers of
 * one network reseeded alike still draw different masks. */
static void dropout_reseed(heed_layer *base, uint64_t seed) {
    heed_dropout *l = (heed_dropout *)base;
    heed_rng_seed(&l->rng, l->cfg.seed, seed);
}

static const heed_layer_ops dropout_ops = {
    .type = "dropout",
    .reseed = dropout_reseed,
    .forward = dropout_forward_op,
    .backward = dropout_backward_op,
    .destroy = dropout_destroy,
};

heed_status heed_dropout_new(heed_dropout **out, const heed_dropout_cfg *cfg, const int in[3],
                             heed_params *p, const char *name) {
    (void)p;
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("dropout", name));
    if (!cfg) return heed_fail(HEED_ERR_ARG, "dropout %s: no configuration given", name);
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "dropout %s: input shape (%d, %d, %d) has a dimension < 1",
                         name, in[0], in[1], in[2]);
    if (!(cfg->p >= 0.0f && cfg->p < 1.0f))
        return heed_fail(HEED_ERR_ARG, "dropout %s: p = %g outside [0, 1)", name, cfg->p);
    heed_dropout *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "dropout %s: cannot allocate the layer", name);
    l->cfg = *cfg;
    heed_rng_seed(&l->rng, cfg->seed, 0);
    heed_layer_init(&l->base, &dropout_ops, name, in, in[0], in[1], in[2]);
    *out = l;
    return HEED_OK;
}
