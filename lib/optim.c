/* optim.c -- SGD and AdamW updates, following torch.optim to the letter.
 *
 *   SGD (dampening 0), per element, with wd = 0 on entries without
 *   HEED_PARAM_DECAY:
 *       g = grad + wd w
 *       b = g                      on the first step
 *       b = momentum b + g         afterwards
 *       g = g + momentum b         (Nesterov)   or   g = b   (momentum > 0)
 *       w = w - lr g
 *   AdamW, step t = 1, 2, ...:
 *       w = w (1 - lr wd)                         (decoupled decay, first)
 *       m = m + (1 - b1) (grad - m)               (= b1 m + (1 - b1) grad)
 *       v = b2 v + (1 - b2) grad^2
 *       w = w - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * The arithmetic is ordered as PyTorch orders it (lerp for m, the bias
 * corrections folded into a step size and a denominator computed in double
 * once per step) so that results agree with it to float rounding. Each
 * entry is one contiguous run of values/grads/m/v, so the loops are flat,
 * vectorizable and split across threads when long enough.
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parallel.h"
#include "tensor.h"


heed_status heed_optim_parse(const char *name, heed_optim_kind *out) {
    if (name && strcasecmp(name, "sgd") == 0) return *out = HEED_OPTIM_SGD, HEED_OK;
    if (name && strcasecmp(name, "adamw") == 0) return *out = HEED_OPTIM_ADAMW, HEED_OK;
    return heed_fail(HEED_ERR_ARG, "unknown optimizer '%s' (expected sgd or adamw)",
                     name ? name : "(null)");
}

static heed_status check_cfg(const heed_optim_cfg *c) {
    /* The negated comparisons also reject NaN. */
    if (!(c->lr >= 0.0f) || isinf(c->lr))
        return heed_fail(HEED_ERR_ARG, "optimizer: learning rate %g is not a finite value >= 0",
                         c->lr);
    if (!(c->weight_decay >= 0.0f) || isinf(c->weight_decay))
        return heed_fail(HEED_ERR_ARG, "optimizer: weight decay %g is not a finite value >= 0",
                         c->weight_decay);
    switch (c->kind) {
    case HEED_OPTIM_SGD:
        if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
            return heed_fail(HEED_ERR_ARG, "sgd: momentum %g is outside [0, 1)", c->momentum);
        if (c->nesterov && c->momentum == 0.0f)
            return heed_fail(HEED_ERR_ARG, "sgd: Nesterov momentum needs a momentum > 0");
        return HEED_OK;
    case HEED_OPTIM_ADAMW:
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            return heed_fail(HEED_ERR_ARG, "adamw: betas (%g, %g) are outside [0, 1)", c->beta1,
                             c->beta2);
        if (!(c->eps > 0.0f) || isinf(c->eps))
            return heed_fail(HEED_ERR_ARG, "adamw: eps %g is not a finite value > 0", c->eps);
        return HEED_OK;
    }
    return heed_fail(HEED_ERR_ARG, "optimizer: unknown kind %d", (int)c->kind);
}

static float *alloc_state(size_t n) {
    float *p = heed_alloc(n * sizeof(float));
    if (p) memset(p, 0, n * sizeof(float));
    return p;
}

heed_status heed_optim_init(heed_optim *o, const heed_optim_cfg *cfg, heed_params *params) {
    *o = (heed_optim){0};
    if (!cfg || !params) return heed_fail(HEED_ERR_ARG, "optimizer: NULL configuration or parameters");
    if (!params->values || !params->grads)
        return heed_fail(HEED_ERR_ARG,
                         "optimizer: parameters are not allocated yet (call heed_params_alloc first)");
    heed_optim_cfg c = *cfg;
    if (c.kind == HEED_OPTIM_ADAMW) {
        if (c.beta1 == 0.0f) c.beta1 = 0.9f;
        if (c.beta2 == 0.0f) c.beta2 = 0.999f;
        if (c.eps == 0.0f) c.eps = 1e-8f;
    }
    HEED_TRY(check_cfg(&c));
    const size_t total = params->total;
    float *m = NULL, *v = NULL;
    if (c.kind == HEED_OPTIM_ADAMW || c.momentum != 0.0f) {
        m = alloc_state(total);
        if (!m) return heed_alloc_failed(total * sizeof(float), "the optimizer's state");
    }
    if (c.kind == HEED_OPTIM_ADAMW) {
        v = alloc_state(total);
        if (!v) {
            heed_status st = heed_alloc_failed(total * sizeof(float), "the optimizer's second moments");
            heed_free(m);
            return st;
        }
    }
    *o = (heed_optim){.cfg = c, .params = params, .m = m, .v = v, .steps = 0};
    return HEED_OK;
}

/* One entry of SGD: n floats from w, g (and buf when momentum > 0). */
static void sgd_run(float *restrict w, const float *restrict grad, float *restrict buf, size_t n,
                    float lr, float wd, float mom, int nesterov, int first) {
    const long N = (long)n;
    if (!buf) {
        PARALLEL_SIMD_IF(n > PAR_MIN,
            for (long i = 0; i < N; i++) w[i] -= lr * (grad[i] + wd * w[i]);
        );
    } else if (first) {
        PARALLEL_SIMD_IF(n > PAR_MIN,
            for (long i = 0; i < N; i++) {
                const float g = grad[i] + wd * w[i];
                buf[i] = g;
                w[i] -= lr * (nesterov ? g + mom * g : g);
            });
    } else {
        PARALLEL_SIMD_IF(n > PAR_MIN,
            for (long i = 0; i < N; i++) {
                const float g = grad[i] + wd * w[i];
                const float b = mom * buf[i] + g;
                buf[i] = b;
                w[i] -= lr * (nesterov ? g + mom * b : b);
            });
    }
}

/* One entry of AdamW; decay, step and bias2 are the per-step constants
 * 1 - lr wd, lr / (1 - b1^t) and sqrt(1 - b2^t). GCC vectorizes this loop
 * only under -fno-math-errno (sqrtf might set errno otherwise; v is never
 * negative, so it never does). */
static void adamw_run(float *restrict w, const float *restrict grad, float *restrict m,
                      float *restrict v, size_t n, float decay, float b1, float b2, float step,
                      float bias2, float eps) {
    const long N = (long)n;
    const float a1 = 1.0f - b1, a2 = 1.0f - b2;
    PARALLEL_SIMD_IF(n > PAR_MIN,
        for (long i = 0; i < N; i++) {
            const float g = grad[i];
            const float mi = m[i] + a1 * (g - m[i]);
            const float vi = v[i] * b2 + a2 * g * g;
            m[i] = mi;
            v[i] = vi;
            w[i] = w[i] * decay - step * (mi / (sqrtf(vi) / bias2 + eps));
        });
}

void heed_optim_step(heed_optim *o, float lr) {
    heed_params *p = o->params;
    if (!p || !p->values) return;
    const heed_optim_cfg *c = &o->cfg;
    const long t = o->steps + 1;
    /* Per-step constants in double, as PyTorch computes them in Python. */
    const double b1t = c->kind == HEED_OPTIM_ADAMW ? pow(c->beta1, (double)t) : 0.0;
    const double b2t = c->kind == HEED_OPTIM_ADAMW ? pow(c->beta2, (double)t) : 0.0;
    const float step = (float)(lr / (1.0 - b1t));
    const float bias2 = (float)sqrt(1.0 - b2t);
    for (int k = 0; k < p->count; k++) {
        const heed_param *it = &p->items[k];
        if (it->flags & HEED_PARAM_BUFFER) continue;
        const size_t off = it->offset;
        const float wd = (it->flags & HEED_PARAM_DECAY) ? c->weight_decay : 0.0f;
        float *w = p->values + off;
        const float *g = p->grads + off;
        if (c->kind == HEED_OPTIM_SGD) {
            sgd_run(w, g, o->m ? o->m + off : NULL, it->count, lr, wd, c->momentum, c->nesterov,
                    o->steps == 0);
        } else {
            const float decay = (float)(1.0 - (double)lr * wd);
            adamw_run(w, g, o->m + off, o->v + off, it->count, decay, c->beta1, c->beta2, step,
                      bias2, c->eps);
        }
    }
    o->steps = t;
}

void heed_optim_free(heed_optim *o) {
    heed_free(o->m);
    heed_free(o->v);
    *o = (heed_optim){0};
}
