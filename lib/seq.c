/* seq.c -- sequences and residual blocks.
 *
 * Sequence:  a_0 = f_0(x), a_i = f_i(a_{i-1}), y = a_{n-1}.
 *   backward: g_{n-1} = dy; for i = n-1..0: f_i.backward(a_{i-1}, a_i, g_i)
 *   adds into g_{i-1} (zeroed first), and for i = 0 into the caller's dx.
 * Residual:  y = B(x) + S(x) (S = identity without a shortcut);
 *   dx += B'(x)^T dy + S'(x)^T dy.
 *
 * Each forward plans how to run the children as steps, a step being one
 * child or a few fused ones (the plan depends only on the children's types
 * and modes, so it is the same every call):
 *   conv, bn, relu / conv, bn / conv, relu, and the same with hardswish
 *     for relu (inference, bn in inference mode): one convolution whose
 *     output pass applies the batch norm's running
 *     statistics as a per-channel scale and shift; nothing in between is
 *     stored, and the weights are read as they are on each call, so
 *     training steps and loaded models are reflected at once.
 *   conv, bn, relu, 3x3/2 max pool (ResNet's stem, inference): the same,
 *     the convolution pooling its own output (heed_conv2d's fuse_pool), so
 *     the full-size output is never written and read back.
 *   bn, relu and bn, hardswish  (any mode): the batch norm applies the
 *     activation in its own pass (its fuse_act); backward recomputes the
 *     activation's input from the batch norm's (heed_batchnorm_backward_relu
 *     for relu), so the batch norm's output is never stored.
 *   residual, relu  (inference): the block's sum and the relu in one pass
 *     over the output (heed_add_relu_forward); when the block's body ends
 *     in a layer that can add (layer.h's adds_after: SE, CBAM), in that layer's
 *     own last pass (heed_mul_channel_add_forward), the shortcut run first.
 * The fused calls go through heed_layer_forward on the step's first child,
 * with the fusion passed in fields the sequence sets around the call, so
 * per-layer timing (heed_layer_profile) still counts them, under that
 * child. Backward walks the steps of the last forward in reverse; a layer
 * that can (its ops' writes_fresh_dx: conv, batch norm, pooling, CBAM, SE)
 * is told (dx_fresh) that its input gradient buffer holds nothing yet and
 * writes it instead of adding to a zeroed one, which saves a pass over the
 * tensor.
 *
 * Memory: in training each step's output is kept for backward; in
 * inference outputs alternate between two buffers (see seq.h), and a
 * residual block's body writes straight into the block's output.
 */
#include "seq.h"

#include <stdlib.h>
#include <string.h>

#include "batchnorm.h"
#include "conv2d.h"
#include "elementwise.h"
#include "pool2d.h"

enum {
    STEP_SKIP,              /* run by an earlier child's step */
    STEP_ONE,               /* the child alone */
    STEP_BN_RELU,           /* bn, relu */
    STEP_BN_HSWISH,         /* bn, hardswish */
    STEP_CONV_RELU,         /* conv, relu */
    STEP_CONV_BN,           /* conv, bn */
    STEP_CONV_BN_RELU,      /* conv, bn, relu */
    STEP_CONV_BN_RELU_POOL, /* conv, bn, relu, 3x3/2 max pool */
    STEP_RESIDUAL_RELU,     /* residual, relu */
    STEP_CONV_HSWISH,       /* conv, hardswish */
    STEP_CONV_BN_HSWISH     /* conv, bn, hardswish */
};

/* Plans: training; inference keeping only what the next step needs (lean);
 * inference keeping every output for a backward (full). */
enum { PLAN_TRAIN, PLAN_LEAN, PLAN_FULL };

/* What each kind of step runs: how many children, the activation its
 * first child applies (HEED_FUSE_*, layer.h), and for the fused
 * convolutions whether a batch norm follows and whether they pool. */
static const struct {
    unsigned char len, act, bn, pool;
} steps[] = {
    [STEP_SKIP] = {1, 0, 0, 0},
    [STEP_ONE] = {1, 0, 0, 0},
    [STEP_BN_RELU] = {2, HEED_FUSE_RELU, 0, 0},
    [STEP_BN_HSWISH] = {2, HEED_FUSE_HARDSWISH, 0, 0},
    [STEP_CONV_RELU] = {2, HEED_FUSE_RELU, 0, 0},
    [STEP_CONV_BN] = {2, 0, 1, 0},
    [STEP_CONV_BN_RELU] = {3, HEED_FUSE_RELU, 1, 0},
    [STEP_CONV_BN_RELU_POOL] = {4, HEED_FUSE_RELU, 1, 1},
    [STEP_RESIDUAL_RELU] = {2, 0, 0, 0},
    [STEP_CONV_HSWISH] = {2, HEED_FUSE_HARDSWISH, 0, 0},
    [STEP_CONV_BN_HSWISH] = {3, HEED_FUSE_HARDSWISH, 1, 0},
};

static int step_len(int kind) { return steps[kind].len; }

static int is_type(const heed_layer *l, const char *type) { return !strcmp(l->ops->type, type); }

static void make_plan(heed_seq *s, int mode) {
    heed_layer **c = s->children;
    for (int i = 0; i < s->count;) {
        int kind = STEP_ONE;
        const int more = s->count - 1 - i; /* children after i */
        if (mode == PLAN_LEAN && is_type(c[i], "conv")) {
            if (more >= 1 && is_type(c[i + 1], "bn") && !c[i + 1]->training) {
                kind = more >= 2 && is_type(c[i + 2], "relu")        ? STEP_CONV_BN_RELU
                       : more >= 2 && is_type(c[i + 2], "hardswish") ? STEP_CONV_BN_HSWISH
                                                                     : STEP_CONV_BN;
                if (kind == STEP_CONV_BN_RELU && more >= 3 && is_type(c[i + 3], "maxpool") &&
                    heed_pool2d_is_max3s2((heed_pool2d *)c[i + 3]) &&
                    heed_conv2d_can_pool((heed_conv2d *)c[i]))
                    kind = STEP_CONV_BN_RELU_POOL;
            } else if (more >= 1 && is_type(c[i + 1], "relu")) {
                kind = STEP_CONV_RELU;
            } else if (more >= 1 && is_type(c[i + 1], "hardswish")) {
                kind = STEP_CONV_HSWISH;
            }
        } else if (is_type(c[i], "bn") && more >= 1 && is_type(c[i + 1], "relu")) {
            kind = STEP_BN_RELU;
        } else if (is_type(c[i], "bn") && more >= 1 && is_type(c[i + 1], "hardswish")) {
            kind = STEP_BN_HSWISH;
        } else if (mode == PLAN_LEAN && is_type(c[i], "residual") && !c[i]->training &&
                   more >= 1 && is_type(c[i + 1], "relu")) {
            kind = STEP_RESIDUAL_RELU;
        }
        s->plan[i] = (unsigned char)kind;
        for (int k = 1; k < step_len(kind); k++) s->plan[i + k] = STEP_SKIP;
        i += step_len(kind);
    }
}

/* The layers that can write a fresh input gradient instead of adding to a
 * zeroed one (a pass over the tensor saved): their flag, else NULL. */
static int *fresh_flag(heed_layer *l) { return l->ops->writes_fresh_dx ? &l->dx_fresh : NULL; }

static int is_bn_step(int kind) { return kind == STEP_BN_RELU || kind == STEP_BN_HSWISH; }

/* l's forward with its activation fused in: *fuse, l's own field, set to
 * act for the call. */
static heed_status forward_fused(heed_layer *l, int *fuse, int act, const heed_tensor *in,
                                 heed_tensor *out) {
    *fuse = act;
    heed_status st = heed_layer_forward(l, in, out);
    *fuse = 0;
    return st;
}

/* Runs the step starting at child i from in to out. */
static heed_status step_forward(heed_seq *s, int i, const heed_tensor *in, heed_tensor *out) {
    const int kind = s->plan[i];
    heed_layer *l = s->children[i];
    if (kind == STEP_ONE) return heed_layer_forward(l, in, out);
    if (is_bn_step(kind))
        return forward_fused(l, &((heed_batchnorm *)l)->fuse_act, steps[kind].act, in, out);
    if (kind == STEP_RESIDUAL_RELU)
        return forward_fused(l, &((heed_residual *)l)->fuse_relu, 1, in, out);
    heed_conv2d *conv = (heed_conv2d *)l;
    if (steps[kind].bn) {
        float *affine;
        HEED_TRY(heed_scratch_get(&s->affine, 2 * (size_t)l->out_c, &affine));
        HEED_TRY(heed_batchnorm_scale_shift((heed_batchnorm *)s->children[i + 1], affine,
                                            affine + l->out_c));
        conv->fuse_scale = affine;
        conv->fuse_shift = affine + l->out_c;
    }
    conv->fuse_act = steps[kind].act;
    conv->fuse_pool = steps[kind].pool;
    heed_status st = heed_layer_forward(l, in, out);
    conv->fuse_scale = conv->fuse_shift = NULL;
    conv->fuse_act = conv->fuse_pool = 0;
    return st;
}

/* The pair of buffers inference outputs alternate between: the network's
 * for this depth and x's image size (heed_work_pair), else its own. */
static heed_tensor *seq_pair(heed_seq *s, const heed_tensor *x) {
    const size_t image = x->n > 0 ? heed_tensor_count(x) / (size_t)x->n : 0;
    heed_tensor *shared = s->work ? heed_work_pair(s->work, s->depth, image) : NULL;
    return shared ? shared : s->own_pingpong;
}

/* The forward under `mode`; the last child writes to y. */
static heed_status run(heed_seq *s, const heed_tensor *x, heed_tensor *y, int mode) {
    make_plan(s, mode);
    s->planned = 1;
    heed_tensor *pair = mode == PLAN_LEAN ? seq_pair(s, x) : NULL;
    const heed_tensor *in = x;
    for (int i = 0; i < s->count;) {
        const int last = i + step_len(s->plan[i]) - 1;
        heed_tensor *out;
        if (last == s->count - 1)
            out = y;
        else if (mode == PLAN_LEAN)
            out = in == &pair[0] ? &pair[1] : &pair[0];
        else
            out = &s->acts[last];
        HEED_TRY(step_forward(s, i, in, out));
        in = out;
        i = last + 1;
    }
    s->lean = mode == PLAN_LEAN;
    return HEED_OK;
}

static heed_status seq_forward(heed_layer *layer, const heed_tensor *x, heed_tensor *y) {
    heed_seq *s = (heed_seq *)layer;
    if (s->count == 0) return heed_tensor_copy(y, x);
    return run(s, x, y, layer->training ? PLAN_TRAIN : PLAN_LEAN);
}

static heed_status seq_backward(heed_layer *layer, const heed_tensor *x, const heed_tensor *y,
                                const heed_tensor *dy, heed_tensor *dx) {
    heed_seq *s = (heed_seq *)layer;
    if (s->count == 0) {
        if (dx) heed_axpy(1.0f, dy, dx);
        return HEED_OK;
    }
    /* Backward goes through the steps a forward planned, from the outputs
     * it kept: without one there are neither (plan is not even set). */
    if (!s->planned)
        return heed_fail(HEED_ERR_ARG, "%s%s: backward before any forward (it takes the forward's "
                         "outputs)", s->base.name[0] ? "seq " : "network", s->base.name);
    const heed_tensor *ylast = y;
    if (s->lean) {
        /* The inference forward kept nothing backward needs: run it again,
         * keeping every output (the last one too, leaving y alone). */
        heed_tensor *again = &s->acts[s->count - 1];
        HEED_TRY(run(s, x, again, PLAN_FULL));
        ylast = again;
    }
    const heed_tensor *g = dy;
    for (int end = s->count; end > 0;) {
        int i = end - 1;
        while (s->plan[i] == STEP_SKIP) i--;
        /* The step runs children i .. end-1. */
        const heed_tensor *in = i == 0 ? x : &s->acts[i - 1];
        const heed_tensor *out = end == s->count ? ylast : &s->acts[end - 1];
        heed_layer *l = s->children[i];
        int *fresh = fresh_flag(l);
        heed_tensor *gin = dx;
        if (i > 0) {
            gin = &s->grads[i - 1];
            HEED_TRY(heed_tensor_ensure(gin, in->n, in->c, in->h, in->w));
            if (!fresh) heed_tensor_zero(gin);
        } else {
            fresh = NULL; /* the caller's dx is added to */
        }
        if (fresh) *fresh = 1;
        if (is_bn_step(s->plan[i])) ((heed_batchnorm *)l)->fuse_act = steps[s->plan[i]].act;
        heed_status st = heed_layer_backward(l, in, out, g, gin);
        if (is_bn_step(s->plan[i])) ((heed_batchnorm *)l)->fuse_act = 0;
        if (fresh) *fresh = 0;
        HEED_TRY(st);
        g = gin;
        end = i;
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
    for (int i = 0; i < s->nrejected; i++) heed_layer_free(s->rejected[i]);
    free(s->rejected);
    heed_tensor_free(&s->own_pingpong[0]);
    heed_tensor_free(&s->own_pingpong[1]);
    heed_scratch_free(&s->affine);
    free(s->children);
    free(s->acts);
    free(s->grads);
    free(s->plan);
    free(s);
}

static int seq_child_count(const heed_layer *layer) { return ((const heed_seq *)layer)->count; }

static heed_layer *seq_child(const heed_layer *layer, int i) {
    return ((const heed_seq *)layer)->children[i];
}

static void seq_share_work(heed_layer *layer, heed_work *w, int depth) {
    heed_seq *s = (heed_seq *)layer;
    s->work = w && depth < HEED_WORK_DEPTHS ? w : NULL;
    s->depth = depth;
}

static const heed_layer_ops seq_ops = {
    .type = "seq",
    .share_work = seq_share_work,
    .forward = seq_forward,
    .backward = seq_backward,
    .destroy = seq_destroy,
    .child_count = seq_child_count,
    .child = seq_child,
};

heed_status heed_seq_new(heed_seq **out, const int in[3], const char *name) {
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("seq", name));
    heed_seq *s = calloc(1, sizeof *s);
    if (!s) return heed_fail(HEED_ERR_NOMEM, "cannot allocate sequence %s", name);
    heed_layer_init(&s->base, &seq_ops, name, in, in[0], in[1], in[2]);
    *out = s;
    return HEED_OK;
}

/* A layer the sequence was given but could not append is kept, never run,
 * until the sequence is freed: the parameters it registered still point
 * into it, and a heed_params_alloc after the failure must not write into
 * freed memory. Returns st. */
static heed_status reject(heed_seq *s, heed_layer *l, heed_status st) {
    heed_layer **grown = realloc(s->rejected, (size_t)(s->nrejected + 1) * sizeof *grown);
    if (!grown) return st; /* l stays allocated (lost), not freed: see seq.h */
    s->rejected = grown;
    s->rejected[s->nrejected++] = l;
    return st;
}

heed_status heed_seq_append(heed_seq *s, heed_layer *l) {
    if (!l) return heed_fail(HEED_ERR_ARG, "sequence %s: no layer to append", s->base.name);
    if (l->in_c != s->base.out_c || l->in_h != s->base.out_h || l->in_w != s->base.out_w)
        return reject(s, l,
                      heed_fail(HEED_ERR_SHAPE,
                                "%s %s takes (%d, %d, %d) but the layers before it give (%d, %d, %d)",
                                l->ops->type, l->name, l->in_c, l->in_h, l->in_w, s->base.out_c,
                                s->base.out_h, s->base.out_w));
    if (s->count == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        heed_layer **children = realloc(s->children, (size_t)cap * sizeof *children);
        if (children) s->children = children;
        heed_tensor *acts = children ? realloc(s->acts, (size_t)cap * sizeof *acts) : NULL;
        if (acts) s->acts = acts;
        heed_tensor *grads = acts ? realloc(s->grads, (size_t)cap * sizeof *grads) : NULL;
        if (grads) s->grads = grads;
        unsigned char *plan = grads ? realloc(s->plan, (size_t)cap) : NULL;
        if (plan) s->plan = plan;
        if (!plan)
            return reject(s, l, heed_fail(HEED_ERR_NOMEM, "cannot grow sequence %s", s->base.name));
        s->cap = cap;
    }
    s->children[s->count] = l;
    s->planned = 0; /* plan has no step for l yet */
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

const heed_tensor *heed_seq_activation(const heed_seq *s, int i) {
    return i >= 0 && i < s->count ? &s->acts[i] : NULL;
}

/* ---- residual ---------------------------------------------------------- */

/* The layer that ends r's body, if it can add the block's sum itself
 * (adds_after): it runs as a step of its own (only bn and relu join an
 * earlier child's step, and neither adds). NULL otherwise. */
static heed_layer *body_adder(const heed_residual *r) {
    const heed_seq *b = r->body;
    heed_layer *last = b->count > 0 ? b->children[b->count - 1] : NULL;
    return last && last->ops->adds_after ? last : NULL;
}

static heed_status residual_forward(heed_layer *layer, const heed_tensor *x, heed_tensor *y) {
    heed_residual *r = (heed_residual *)layer;
    r->lean = !layer->training;
    if (r->lean) {
        /* Inference: the shortcut first, then the body straight into y;
         * the sum (and the relu after the block, when fused) in the body's
         * last pass over y when its last layer can add (SE, CBAM: a
         * separate pass read y back from the other core's cache or
         * memory), else in a pass of its own. */
        const heed_tensor *sum = x;
        if (r->shortcut) {
            HEED_TRY(heed_layer_forward(&r->shortcut->base, x, &r->short_out));
            sum = &r->short_out;
        }
        heed_layer *adder = body_adder(r);
        if (!adder) {
            HEED_TRY(heed_layer_forward(&r->body->base, x, y));
            return (r->fuse_relu ? heed_add_relu_forward : heed_add_forward)(y, sum, y);
        }
        adder->add_after = sum;
        adder->relu_after = r->fuse_relu;
        heed_status st = heed_layer_forward(&r->body->base, x, y);
        adder->add_after = NULL;
        adder->relu_after = 0;
        return st;
    }
    HEED_TRY(heed_layer_forward(&r->body->base, x, &r->body_out));
    if (!r->shortcut) return heed_add_forward(&r->body_out, x, y);
    HEED_TRY(heed_layer_forward(&r->shortcut->base, x, &r->short_out));
    return heed_add_forward(&r->body_out, &r->short_out, y);
}

static heed_status residual_backward(heed_layer *layer, const heed_tensor *x, const heed_tensor *y,
                                     const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    heed_residual *r = (heed_residual *)layer;
    if (r->lean) {
        /* After an inference forward the branches' own outputs are gone. */
        HEED_TRY(heed_layer_forward(&r->body->base, x, &r->body_out));
        if (r->shortcut) HEED_TRY(heed_layer_forward(&r->shortcut->base, x, &r->short_out));
        r->lean = 0;
    }
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
    if (!name) name = "";
    const heed_layer *b = &body->base;
    const heed_layer *s = shortcut ? &shortcut->base : NULL;
    heed_status st = heed_layer_check_name("residual", name);
    if (st == HEED_OK && s && (s->in_c != b->in_c || s->in_h != b->in_h || s->in_w != b->in_w))
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
