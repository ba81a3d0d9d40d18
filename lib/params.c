/* params.c -- registration, allocation and initialisation of parameters. */
#include "params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "tensor.h"

heed_status heed_params_add(heed_params *p, const char *name, int ndim, const int *dims,
                            heed_init init, int fan_in, int flags, float **value_slot,
                            float **grad_slot) {
    if (p->values)
        return heed_fail(HEED_ERR_ARG, "parameter %s added after the parameters were allocated", name);
    if (ndim < 1 || ndim > 4) return heed_fail(HEED_ERR_ARG, "parameter %s: ndim %d", name, ndim);
    if (strlen(name) >= sizeof p->items[0].name)
        return heed_fail(HEED_ERR_ARG, "parameter name too long: %s", name);
    if (heed_params_find(p, name))
        return heed_fail(HEED_ERR_ARG, "parameter %s registered twice (duplicate layer name?)", name);
    int shape[4] = {1, 1, 1, 1};
    for (int i = 0; i < ndim; i++) shape[i] = dims[i];
    size_t count;
    HEED_TRY(heed_shape_count(shape[0], shape[1], shape[2], shape[3], &count));
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        heed_param *items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) return heed_fail(HEED_ERR_NOMEM, "cannot grow the parameter list");
        p->items = items;
        p->cap = cap;
    }
    heed_param *it = &p->items[p->count++];
    *it = (heed_param){.ndim = ndim, .count = count, .init = init, .fan_in = fan_in,
                       .flags = flags, .value_slot = value_slot, .grad_slot = grad_slot};
    snprintf(it->name, sizeof it->name, "%s", name);
    memcpy(it->shape, shape, sizeof shape);
    return HEED_OK;
}

heed_status heed_params_truncate(heed_params *p, int count) {
    if (p->values)
        return heed_fail(HEED_ERR_ARG, "parameters cannot be forgotten after they were allocated");
    if (count < 0 || count > p->count)
        return heed_fail(HEED_ERR_ARG, "cannot keep %d parameters of %d", count, p->count);
    p->count = count;
    return HEED_OK;
}

static void init_tensor(float *v, const heed_param *it, heed_rng *r) {
    double fan = it->fan_in > 0 ? it->fan_in : 1;
    for (size_t i = 0; i < it->count; i++) {
        switch (it->init) {
        case HEED_INIT_ZEROS: v[i] = 0.0f; break;
        case HEED_INIT_ONES: v[i] = 1.0f; break;
        case HEED_INIT_UNIFORM:
            v[i] = (float)((2.0 * heed_rng_uniform(r) - 1.0) / sqrt(fan));
            break;
        case HEED_INIT_HE_NORMAL: v[i] = (float)(heed_rng_normal(r) * sqrt(2.0 / fan)); break;
        }
    }
}

heed_status heed_params_alloc(heed_params *p, uint64_t seed) {
    if (p->values) return heed_fail(HEED_ERR_ARG, "parameters allocated twice");
    size_t total = 0;
    for (int i = 0; i < p->count; i++) {
        /* Start each tensor on a 16-float (64-byte) boundary for vector loads. */
        total = (total + 15) & ~(size_t)15;
        p->items[i].offset = total;
        total += p->items[i].count;
    }
    if (total == 0) total = 1;
    /* Values and gradients: checked together, so that a network too large
     * for the memory limit fails before either is touched. */
    if (total > SIZE_MAX / 2 / sizeof(float))
        return heed_fail(HEED_ERR_NOMEM,
                         "cannot allocate %zu parameters and their gradients: more bytes than "
                         "memory can address", total);
    const size_t bytes = total * sizeof(float);
    if (heed_memory_fits(2 * bytes)) {
        p->values = heed_alloc(bytes);
        p->grads = heed_alloc(bytes);
    }
    if (!p->values || !p->grads) {
        heed_free(p->values), heed_free(p->grads);
        p->values = p->grads = NULL;
        return heed_alloc_failed(2 * bytes, "%zu parameters and their gradients", total);
    }
    memset(p->values, 0, total * sizeof(float));
    memset(p->grads, 0, total * sizeof(float));
    p->total = total;
    for (int i = 0; i < p->count; i++) {
        heed_param *it = &p->items[i];
        /* One stream per tensor: adding a layer does not change the others' init. */
        heed_rng r;
        heed_rng_seed(&r, seed, (uint64_t)i + 1);
        init_tensor(p->values + it->offset, it, &r);
        if (it->value_slot) *it->value_slot = p->values + it->offset;
        if (it->grad_slot) *it->grad_slot = p->grads + it->offset;
    }
    return HEED_OK;
}

void heed_params_zero_grad(heed_params *p) {
    if (p->grads) memset(p->grads, 0, p->total * sizeof(float));
}

heed_param *heed_params_find(heed_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0) return &p->items[i];
    return NULL;
}

size_t heed_params_trainable(const heed_params *p) {
    size_t n = 0;
    for (int i = 0; i < p->count; i++)
        if (!(p->items[i].flags & HEED_PARAM_BUFFER)) n += p->items[i].count;
    return n;
}

size_t heed_params_floats(const heed_params *p) {
    size_t n = 0;
    for (int i = 0; i < p->count; i++) n += p->items[i].count;
    return n;
}

void heed_params_free(heed_params *p) {
    heed_free(p->values);
    heed_free(p->grads);
    free(p->items);
    *p = (heed_params){0};
}

heed_status heed_params_copy_matching(heed_params *dst, const heed_params *src, int *copied,
                                      heed_match *match) {
    if (copied) *copied = 0;
    if (!dst || !src || (dst->count && !dst->values) || (src->count && !src->values))
        return heed_fail(HEED_ERR_ARG, "heed_params_copy_matching: %s", !dst || !src ? "a NULL store"
                         : "a store whose parameters are not allocated (heed_params_alloc)");
    int n = 0;
    for (int i = 0; i < dst->count; i++) {
        const heed_param *d = &dst->items[i], *s = NULL;
        if (dst == src) { /* each tensor is itself: nothing to move (memcpy onto itself is undefined) */
            if (match) match[i] = HEED_MATCH_COPIED;
            n++;
            continue;
        }
        for (int k = 0; k < src->count && !s; k++)
            if (!strcmp(src->items[k].name, d->name)) s = &src->items[k];
        heed_match how = !s ? HEED_MATCH_ABSENT
                         : s->ndim == d->ndim && !memcmp(s->shape, d->shape, sizeof d->shape) ? HEED_MATCH_COPIED
                                                                                            : HEED_MATCH_SHAPE;
        if (how == HEED_MATCH_COPIED) {
            memcpy(dst->values + d->offset, src->values + s->offset, d->count * sizeof(float));
            n++;
        }
        if (match) match[i] = how;
    }
    if (copied) *copied = n;
    return HEED_OK;
}
