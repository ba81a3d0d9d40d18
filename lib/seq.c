/* seq.c -- sequences and residual blocks.
 *
 * Sequence:  a_0 = f_0(x), a_i = f_i(a_{i-1}), y = a_{n-1}.
 *   backward: g_{n-1} = dy; for i = n-1..0: f_i.backward(a_{i-1}, a_i, g_i)
 *   adds into g_{i-1} (zeroed first), and for i = 0 into the caller's dx.
 * Residual:  y = B(x) + S(x) (S = identity without a shortcut);
 *   dx += B'(x)^T dy + S'(x)^T dy.
 */
#include "seq.h"

#include <stdlib.h>
#include <string.h>

#include "elementwise.h"

static heed_status seq_forward(heed_layer *layer, const heed_tensor *x, heed_tensor *y) {
    heed_seq *s = (heed_seq *)layer;
    if (s->count == 0) return heed_tensor_copy(y, x);
    const heed_tensor *in = x;
    for (int i = 0; i < s->count; i++) {
        heed_tensor *out = i == s->count - 1 ? y : &s->acts[i];
        HEED_TRY(heed_layer_forward(s->children[i], in, out));
        in = out;
    }
    return HEED_OK;
}

static heed_status seq_backward(heed_layer *layer, const heed_tensor *x, const heed_tensor *y,
                                const heed_tensor *dy, heed_tensor *dx) {
    heed_seq *s = (heed_seq *)layer;
    if (s->count == 0) {
        if (dx) heed_axpy(1.0f, dy, dx);
        return HEED_OK;
    }
    const heed_tensor *g = dy;
    for (int i = s->count - 1; i >= 0; i--) {
        const heed_tensor *in = i == 0 ? x : &s->acts[i - 1];
        const heed_tensor *out = i == s->count - 1 ? y : &s->acts[i];
        heed_tensor *gin = NULL;
        if (i > 0) {
            gin = &s->grads[i - 1];
            HEED_TRY(heed_tensor_ensure(gin, in->n, in->c, in->h, in->w));
            heed_tensor_zero(gin);
        } else {
            gin = dx;
        }
        HEED_TRY(heed_layer_backward(s->children[i], in, out, g, gin));
        g = gin;
    }
    return HEED_OK;
}

static void seq_destroy(heed_layer *layer) {
    heed_seq *s = (heed_seq *)layer;
    for (int i = 0; i < s->count; i++) {
        heed_layer_free(s->children[i]);
        heed_tensor_free(&s->acts[i]);
        heed_tensor_free(&s->grads[i]);
    }
    free(s->children);
    free(s->acts);
    free(s->grads);
    free(s);
}

static int seq_child_count(const heed_layer *layer) { return ((const heed_seq *)layer)->count; }

static heed_layer *seq_child(const heed_layer *layer, int i) {
    return ((const heed_seq *)layer)->children[i];
}

static const heed_layer_ops seq_ops = {
    .type = "seq",
    .forward = seq_forward,
    .backward = seq_backward,
    .destroy = seq_destroy,
    .child_count = seq_child_count,
    .child = seq_child,
};

heed_status heed_seq_new(heed_seq **out, const int in[3], const char *name) {
    *out = NULL;
    heed_seq *s = calloc(1, sizeof *s);
    if (!s) return heed_fail(HEED_ERR_NOMEM, "cannot allocate sequence %s", name);
    heed_layer_init(&s->base, &seq_ops, name, in, in[0], in[1], in[2]);
    *out = s;
    return HEED_OK;
}

heed_status heed_seq_append(heed_seq *s, heed_layer *l) {
    if (l->in_c != s->base.out_c || l->in_h != s->base.out_h || l->in_w != s->base.out_w) {
        heed_status st = heed_fail(HEED_ERR_SHAPE,
                                   "%s %s takes (%d, %d, %d) but the layers before it give (%d, %d, %d)",
                                   l->ops->type, l->name, l->in_c, l->in_h, l->in_w,
                                   s->base.out_c, s->base.out_h, s->base.out_w);
        heed_layer_free(l);
        return st;
    }
    if (s->count == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        heed_layer **children = realloc(s->children, (size_t)cap * sizeof *children);
        heed_tensor *acts = children ? realloc(s->acts, (size_t)cap * sizeof *acts) : NULL;
        if (acts) s->acts = acts;
        heed_tensor *grads = acts ? realloc(s->grads, (size_t)cap * sizeof *grads) : NULL;
        if (children) s->children = children;
        if (grads) s->grads = grads;
        if (!children || !acts || !grads) {
            heed_layer_free(l);
            return heed_fail(HEED_ERR_NOMEM, "cannot grow sequence %s", s->base.name);
        }
        s->cap = cap;
    }
    s->children[s->count] = l;
    s->acts[s->count] = (heed_tensor){0};
    s->grads[s->count] = (heed_tensor){0};
    s->count++;
    s->base.out_c = l->out_c, s->base.out_h = l->out_h, s->base.out_w = l->out_w;
    return HEED_OK;
}

int *heed_seq_out_shape(const heed_seq *s, int shape[3]) {
    shape[0] = s->base.out_c, shape[1] = s->base.out_h, shape[2] = s->base.out_w;
    return shape;
}

const heed_tensor *heed_seq_activation(const heed_seq *s, int i) { return &s->acts[i]; }

/* ---- residual ---------------------------------------------------------- */

static heed_status residual_forward(heed_layer *layer, const heed_tensor *x, heed_tensor *y) {
    heed_residual *r = (heed_residual *)layer;
    HEED_TRY(heed_layer_forward(&r->body->base, x, &r->body_out));
    if (!r->shortcut) return heed_add_forward(&r->body_out, x, y);
    HEED_TRY(heed_layer_forward(&r->shortcut->base, x, &r->short_out));
    return heed_add_forward(&r->body_out, &r->short_out, y);
}

static heed_status residual_backward(heed_layer *layer, const heed_tensor *x, const heed_tensor *y,
                                     const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    heed_residual *r = (heed_residual *)layer;
    HEED_TRY(heed_layer_backward(&r->body->base, x, &r->body_out, dy, dx));
    if (!r->shortcut) {
        if (dx) heed_axpy(1.0f, dy, dx);
        return HEED_OK;
    }
    return heed_layer_backward(&r->shortcut->base, x, &r->short_out, dy, dx);
}

static void residual_destroy(heed_layer *layer) {
    heed_residual *r = (heed_residual *)layer;
    heed_layer_free(&r->body->base);
    if (r->shortcut) heed_layer_free(&r->shortcut->base);
    heed_tensor_free(&r->body_out);
    heed_tensor_free(&r->short_out);
    free(r);
}

static int residual_child_count(const heed_layer *layer) {
    return ((const heed_residual *)layer)->shortcut ? 2 : 1;
}

static heed_layer *residual_child(const heed_layer *layer, int i) {
    const heed_residual *r = (const heed_residual *)layer;
    return i == 0 ? &r->body->base : &r->shortcut->base;
}

static double residual_flops(const heed_layer *layer) {
    return (double)layer->out_c * layer->out_h * layer->out_w; /* the addition */
}

static const heed_layer_ops residual_ops = {
    .type = "residual",
    .forward = residual_forward,
    .backward = residual_backward,
    .flops = residual_flops,
    .destroy = residual_destroy,
    .child_count = residual_child_count,
    .child = residual_child,
};

heed_status heed_residual_new(heed_residual **out, heed_seq *body, heed_seq *shortcut,
                              const char *name) {
    *out = NULL;
    const heed_layer *b = &body->base;
    const heed_layer *s = shortcut ? &shortcut->base : NULL;
    heed_status st = HEED_OK;
    if (s && (s->in_c != b->in_c || s->in_h != b->in_h || s->in_w != b->in_w))
        st = heed_fail(HEED_ERR_SHAPE, "residual %s: body and shortcut take different inputs", name);
    int sc = s ? s->out_c : b->in_c, sh = s ? s->out_h : b->in_h, sw = s ? s->out_w : b->in_w;
    if (st == HEED_OK && (b->out_c != sc || b->out_h != sh || b->out_w != sw))
        st = heed_fail(HEED_ERR_SHAPE,
                       "residual %s: body gives (%d, %d, %d) but the %s gives (%d, %d, %d)%s", name,
                       b->out_c, b->out_h, b->out_w, s ? "shortcut" : "identity shortcut", sc, sh,
                       sw, s ? "" : "; add a projection shortcut");
    heed_residual *r = st == HEED_OK ? calloc(1, sizeof *r) : NULL;
    if (st == HEED_OK && !r) st = heed_fail(HEED_ERR_NOMEM, "cannot allocate residual %s", name);
    if (st != HEED_OK) {
        heed_layer_free(&body->base);
        if (shortcut) heed_layer_free(&shortcut->base);
        return st;
    }
    int in[3] = {b->in_c, b->in_h, b->in_w};
    heed_layer_init(&r->base, &residual_ops, name, in, b->out_c, b->out_h, b->out_w);
    r->body = body;
    r->shortcut = shortcut;
    *out = r;
    return HEED_OK;
}
