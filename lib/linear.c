/* linear.c -- fully connected layer and flatten.
 *
 * N images, IN input features (C*H*W in NCHW order), OUT outputs;
 * x is (N, IN) row-major, W is (OUT, IN), b is (OUT).
 *
 *   forward:  y (N, OUT) = x W^T + b          gemm(no, trans) with beta 1
 *                                             after broadcasting b into y
 *   backward: dW (OUT, IN) += dy^T x          gemm(trans, no)
 *             db (OUT)     += sum_n dy[n, :]
 *             dx (N, IN)   += dy W            gemm(no, no)
 *
 * Flatten is the identity on the data: forward copies, backward adds.
 */
#include "linear.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static size_t per_image(const heed_tensor *t) { return (size_t)t->c * t->h * t->w; }

static heed_status check_ready(const heed_linear *l, const char *fn) {
    if (!l->w || (!l->cfg.no_bias && !l->b))
        return heed_fail(HEED_ERR_ARG, "%s %s: parameters not allocated (call heed_params_alloc)",
                         fn, l->base.name);
    return HEED_OK;
}

static heed_status check_x(const heed_linear *l, const heed_tensor *x, const char *fn) {
    HEED_CHECK_SHAPE(per_image(x) == (size_t)l->cfg.in,
                     "%s %s: input (%d, %d, %d, %d) has %zu features per image, expected %d", fn,
                     l->base.name, x->n, x->c, x->h, x->w, per_image(x), l->cfg.in);
    return HEED_OK;
}

/* Rows from which a frozen layer's product reads the kept W^T: from 5 rows
 * up heed_gemm computes x W^T on its register tiles whether W comes
 * transposed (packed on every call) or not (read in place), the same sums
 * in the same order; up to 4 it takes dot products of x's rows with W's,
 * which sum in another order (gemm.c's DOT_M_MAX). */
#define KEPT_MIN_ROWS 5

/* t (cols, rows) = a (rows, cols)^T, in square tiles that stay in cache:
 * element by element, each row of a wrote a whole column of t, a cache
 * line an element: a 3136 -> 512 layer's first frozen forward at batch 8
 * took 8.3-9.0 ms (the next 0.28), in tiles 0.71-0.75 ms. */
static void transpose(const float *restrict a, int rows, int cols, float *restrict t) {
    enum { TILE = 16 };
    for (int r0 = 0; r0 < rows; r0 += TILE) {
        const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) t[(size_t)c * rows + r] = a[(size_t)r * cols + c];
        }
    }
}

/* W^T (IN, OUT) for the layer's current freeze, made on first use under
 * it; NULL when none can be made (the caller then reads W). RAM runs its
 * layers on several threads at once (one product per thread for its own
 * rows), so the first of them makes it, under a lock, and the others wait.
 * Packing W for each product had taken a sixth of RAM's inference on two
 * threads, each thread packing every layer's weights on every step. */
static const float *kept_transpose(heed_linear *l) {
    uint64_t made;
#pragma omp atomic read seq_cst
    made = l->wt_frozen;
    if (made == l->base.frozen) return l->wt.data;
    const float *wt = NULL;
#pragma omp critical(heed_linear_transpose)
    {
        const int IN = l->cfg.in, OUT = l->cfg.out;
        float *t = NULL;
        if (l->wt_frozen == l->base.frozen)
            wt = l->wt.data;
        else if (heed_scratch_get(&l->wt, (size_t)IN * OUT, &t) == HEED_OK) {
            transpose(l->w, OUT, IN, t);
#pragma omp atomic write seq_cst
            l->wt_frozen = l->base.frozen;
            wt = t;
        }
    }
    return wt;
}

/* y already sized (N, OUT); beta 1 adds to what y holds. */
static heed_status linear_run(heed_linear *l, const heed_tensor *x, heed_tensor *y, float beta) {
    const int N = x->n, IN = l->cfg.in, OUT = l->cfg.out;
    if (l->b) {
        for (int n = 0; n < N; n++) {
            float *yr = y->data + (size_t)n * OUT;
            if (beta == 0.0f)
                memcpy(yr, l->b, (size_t)OUT * sizeof(float));
            else
                for (int o = 0; o < OUT; o++) yr[o] += l->b[o];
        }
        beta = 1.0f;
    }
    const float *wt = l->base.frozen && N >= KEPT_MIN_ROWS ? kept_transpose(l) : NULL;
    if (wt) return heed_gemm(0, 0, N, OUT, IN, 1.0f, x->data, IN, wt, OUT, beta, y->data, OUT);
    return heed_gemm(0, 1, N, OUT, IN, 1.0f, x->data, IN, l->w, IN, beta, y->data, OUT);
}

heed_status heed_linear_forward(heed_linear *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_ready(l, "linear forward"));
    HEED_TRY(check_x(l, x, "linear forward"));
    HEED_TRY(heed_tensor_ensure(y, x->n, l->cfg.out, 1, 1));
    return linear_run(l, x, y, 0.0f);
}

heed_status heed_linear_forward_add(heed_linear *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(check_ready(l, "linear forward_add"));
    HEED_TRY(check_x(l, x, "linear forward_add"));
    HEED_CHECK_SHAPE(y->data && y->n == x->n && per_image(y) == (size_t)l->cfg.out,
                     "linear forward_add %s: output (%d, %d, %d, %d), expected (%d, %d, 1, 1)",
                     l->base.name, y->n, y->c, y->h, y->w, x->n, l->cfg.out);
    return linear_run(l, x, y, 1.0f);
}

heed_status heed_linear_backward(heed_linear *l, const heed_tensor *x, const heed_tensor *dy,
                                 heed_tensor *dx) {
    HEED_TRY(check_ready(l, "linear backward"));
    HEED_TRY(check_x(l, x, "linear backward"));
    const int N = x->n, IN = l->cfg.in, OUT = l->cfg.out;
    HEED_CHECK_SHAPE(dy->n == N && per_image(dy) == (size_t)OUT,
                     "linear backward %s: output gradient (%d, %d, %d, %d), expected (%d, %d, 1, 1)",
                     l->base.name, dy->n, dy->c, dy->h, dy->w, N, OUT);
    if (dx)
        HEED_CHECK_SHAPE(dx->n == N && per_image(dx) == (size_t)IN,
                         "linear backward %s: input gradient (%d, %d, %d, %d) does not match "
                         "input (%d, %d, %d, %d)",
                         l->base.name, dx->n, dx->c, dx->h, dx->w, x->n, x->c, x->h, x->w);
    l->wt_frozen = 0; /* a training step: W may change (layer.h) */
    HEED_TRY(heed_gemm(1, 0, OUT, IN, N, 1.0f, dy->data, OUT, x->data, IN, 1.0f, l->dw, IN));
    if (l->db)
        for (int n = 0; n < N; n++) {
            const float *g = dy->data + (size_t)n * OUT;
            for (int o = 0; o < OUT; o++) l->db[o] += g[o];
        }
    if (dx) HEED_TRY(heed_gemm(0, 0, N, IN, OUT, 1.0f, dy->data, OUT, l->w, IN, 1.0f, dx->data, IN));
    return HEED_OK;
}

static heed_status linear_forward_op(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_linear_forward((heed_linear *)l, x, y);
}

static heed_status linear_backward_op(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                      const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_linear_backward((heed_linear *)l, x, dy, dx);
}

static double linear_flops(const heed_layer *base) {
    const heed_linear *l = (const heed_linear *)base;
    return 2.0 * l->cfg.in * l->cfg.out + (l->cfg.no_bias ? 0.0 : l->cfg.out);
}

static void linear_destroy(heed_layer *l) {
    heed_scratch_free(&((heed_linear *)l)->wt);
    free(l);
}

static const heed_layer_ops linear_ops = {
    .type = "fc",
    .forward = linear_forward_op,
    .backward = linear_backward_op,
    .flops = linear_flops,
    .destroy = linear_destroy,
};

static heed_status check_in_shape(const int in[3], const char *what, const char *name) {
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "%s %s: input shape (%d, %d, %d) has a dimension < 1", what,
                         name, in[0], in[1], in[2]);
    return HEED_OK;
}

heed_status heed_linear_new(heed_linear **out, const heed_linear_cfg *cfg, const int in[3],
                            heed_params *p, const char *name) {
    *out = NULL;
    if (!name) name = "";
    if (!p) return heed_fail(HEED_ERR_ARG, "fc %s: no parameter store given", name);
    if (!cfg) return heed_fail(HEED_ERR_ARG, "fc %s: no configuration given", name);
    HEED_TRY(heed_layer_check_name("fc", name));
    HEED_TRY(check_in_shape(in, "fc", name));
    size_t feats = (size_t)in[0] * in[1] * in[2];
    if (feats > 0x7fffffff)
        return heed_fail(HEED_ERR_ARG, "fc %s: input (%d, %d, %d) has too many features", name,
                         in[0], in[1], in[2]);
    if (cfg->out < 1) return heed_fail(HEED_ERR_ARG, "fc %s: out = %d, must be >= 1", name, cfg->out);
    if (cfg->in < 0 || (cfg->in > 0 && (size_t)cfg->in != feats))
        return heed_fail(HEED_ERR_ARG, "fc %s: in = %d but the input (%d, %d, %d) has %zu features",
                         name, cfg->in, in[0], in[1], in[2], feats);
    heed_linear *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "fc %s: cannot allocate the layer", name);
    l->cfg = *cfg;
    l->cfg.in = (int)feats;
    heed_layer_init(&l->base, &linear_ops, name, in, cfg->out, 1, 1);

    /* On failure, forget what this layer registered so that no slot points
     * into the freed layer. */
    const int registered = p->count;
    char pname[64];
    const int wdims[2] = {l->cfg.out, l->cfg.in};
    heed_status s = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "weight"), 2,
                                    wdims, HEED_INIT_UNIFORM, l->cfg.in, HEED_PARAM_DECAY, &l->w,
                                    &l->dw);
    if (s == HEED_OK && !l->cfg.no_bias)
        s = heed_params_add(p, heed_layer_join_name(pname, sizeof pname, name, "bias"), 1,
                            &l->cfg.out, HEED_INIT_UNIFORM, l->cfg.in, 0, &l->b, &l->db);
    if (s != HEED_OK) {
        heed_params_truncate(p, registered);
        free(l);
        return s;
    }
    *out = l;
    return HEED_OK;
}

/* ---- flatten ---- */

heed_status heed_flatten_forward(heed_flatten *l, const heed_tensor *x, heed_tensor *y) {
    (void)l;
    HEED_TRY(heed_tensor_ensure(y, x->n, (int)per_image(x), 1, 1));
    memcpy(y->data, x->data, heed_tensor_count(x) * sizeof(float));
    return HEED_OK;
}

heed_status heed_flatten_backward(heed_flatten *l, const heed_tensor *x, const heed_tensor *dy,
                                  heed_tensor *dx) {
    if (!dx) return HEED_OK;
    HEED_CHECK_SHAPE(heed_tensor_count(dy) == heed_tensor_count(x) &&
                         heed_tensor_count(dx) == heed_tensor_count(x),
                     "flatten backward %s: gradients (%d, %d, %d, %d) and (%d, %d, %d, %d) do not "
                     "match input (%d, %d, %d, %d)",
                     l->base.name, dy->n, dy->c, dy->h, dy->w, dx->n, dx->c, dx->h, dx->w, x->n,
                     x->c, x->h, x->w);
    const size_t count = heed_tensor_count(x);
    for (size_t i = 0; i < count; i++) dx->data[i] += dy->data[i];
    return HEED_OK;
}

static heed_status flatten_forward_op(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_flatten_forward((heed_flatten *)l, x, y);
}

static heed_status flatten_backward_op(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                       const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_flatten_backward((heed_flatten *)l, x, dy, dx);
}

static void flatten_destroy(heed_layer *l) { free(l); }

static const heed_layer_ops flatten_ops = {
    .type = "flatten",
    .forward = flatten_forward_op,
    .backward = flatten_backward_op,
    .destroy = flatten_destroy,
};

heed_status heed_flatten_new(heed_flatten **out, const int in[3], const char *name) {
    *out = NULL;
    if (!name) name = "";
    HEED_TRY(heed_layer_check_name("flatten", name));
    HEED_TRY(check_in_shape(in, "flatten", name));
    size_t feats = (size_t)in[0] * in[1] * in[2];
    if (feats > 0x7fffffff)
        return heed_fail(HEED_ERR_ARG, "flatten %s: input (%d, %d, %d) has too many features", name,
                         in[0], in[1], in[2]);
    heed_flatten *l = calloc(1, sizeof *l);
    if (!l) return heed_fail(HEED_ERR_NOMEM, "flatten %s: cannot allocate the layer", name);
    heed_layer_init(&l->base, &flatten_ops, name, in, (int)feats, 1, 1);
    *out = l;
    return HEED_OK;
}
