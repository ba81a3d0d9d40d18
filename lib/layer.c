/* layer.c -- shape checks and dispatch for the shared layer interface. */
#include "layer.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int profiling;

void heed_layer_profile(int on) { profiling = on; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

heed_status heed_layer_check_name(const char *what, const char *name) {
    const size_t len = strlen(name), max = HEED_LAYER_NAME_MAX;
    if (len > max)
        return heed_fail(HEED_ERR_ARG, "%s %s: the name has %zu characters, at most %zu fit", what,
                         name, len, max);
    return HEED_OK;
}

void heed_layer_init(heed_layer *l, const heed_layer_ops *ops, const char *name,
                     const int in[3], int out_c, int out_h, int out_w) {
    l->ops = ops;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "");
    l->in_c = in[0], l->in_h = in[1], l->in_w = in[2];
    l->out_c = out_c, l->out_h = out_h, l->out_w = out_w;
    l->training = 0;
    l->frozen = 0;
    l->forward_s = l->backward_s = 0.0;
    l->forward_calls = 0;
}

heed_status heed_layer_check_input(const heed_layer *l, const heed_tensor *x) {
    if (x->c != l->in_c || x->h != l->in_h || x->w != l->in_w)
        return heed_fail(HEED_ERR_SHAPE, "%s %s: input is (%d, %d, %d, %d), expected (N, %d, %d, %d)",
                         l->ops->type, l->name, x->n, x->c, x->h, x->w, l->in_c, l->in_h, l->in_w);
    return HEED_OK;
}

/* Whether `msg` opens "TYPE NAME" with NAME this layer's name or a child's
 * ("stage1.att" for "stage1.att.fc1": children's names start with their
 * parent's). */
static int names_layer(const char *msg, const char *name) {
    const char *p = strchr(msg, ' ');
    const size_t n = strlen(name);
    return p && !strncmp(p + 1, name, n) && (p[1 + n] == ':' || p[1 + n] == '.');
}

/* An allocation's failure says what it could not allocate, not for which
 * layer: the innermost layer puts its type and name in front, its parents
 * then see it named. */
static heed_status name_nomem(const heed_layer *l, heed_status st) {
    if (st != HEED_ERR_NOMEM || !l->name[0] || names_layer(heed_last_error(), l->name)) return st;
    char why[1024];
    snprintf(why, sizeof why, "%s", heed_last_error());
    return heed_fail(st, "%s %s: %s", l->ops->type, l->name, why);
}

heed_status heed_layer_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    HEED_TRY(heed_layer_check_input(l, x));
    HEED_TRY(name_nomem(l, heed_tensor_ensure(y, x->n, l->out_c, l->out_h, l->out_w)));
    if (!profiling) return name_nomem(l, l->ops->forward(l, x, y));
    double t0 = now_s();
    heed_status st = l->ops->forward(l, x, y);
    l->forward_s += now_s() - t0;
    l->forward_calls++;
    return name_nomem(l, st);
}

heed_status heed_layer_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                const heed_tensor *dy, heed_tensor *dx) {
    HEED_TRY(heed_layer_check_input(l, x));
    if (dy->n != x->n || dy->c != l->out_c || dy->h != l->out_h || dy->w != l->out_w)
        return heed_fail(HEED_ERR_SHAPE, "%s %s: output gradient is (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                         l->ops->type, l->name, dy->n, dy->c, dy->h, dy->w, x->n, l->out_c,
                         l->out_h, l->out_w);
    if (dx && !heed_tensor_same_shape(dx, x))
        return heed_fail(HEED_ERR_SHAPE, "%s %s: input gradient shape differs from the input's",
                         l->ops->type, l->name);
    if (!profiling) return name_nomem(l, l->ops->backward(l, x, y, dy, dx));
    double t0 = now_s();
    heed_status st = l->ops->backward(l, x, y, dy, dx);
    l->backward_s += now_s() - t0;
    return name_nomem(l, st);
}

int heed_layer_child_count(const heed_layer *l) {
    return l->ops->child_count ? l->ops->child_count(l) : 0;
}

heed_layer *heed_layer_child(const heed_layer *l, int i) {
    return i >= 0 && i < heed_layer_child_count(l) ? l->ops->child(l, i) : NULL;
}

void heed_layer_set_training(heed_layer *l, int training) {
    l->training = training;
    for (int i = 0; i < heed_layer_child_count(l); i++)
        heed_layer_set_training(heed_layer_child(l, i), training);
}

static void set_frozen(heed_layer *l, uint64_t freeze) {
    l->frozen = freeze;
    for (int i = 0; i < heed_layer_child_count(l); i++) set_frozen(heed_layer_child(l, i), freeze);
}

void heed_layer_set_frozen(heed_layer *l, int frozen) {
    static uint64_t freezes; /* 64 bits: never wraps back to a number in use */
    set_frozen(l, frozen ? __atomic_add_fetch(&freezes, 1, __ATOMIC_RELAXED) : 0);
}

heed_status heed_layer_set_targets(heed_layer *l, const int *labels, int n, double *loss) {
    if (l->ops->set_targets) HEED_TRY(l->ops->set_targets(l, labels, n, loss));
    for (int i = 0; i < heed_layer_child_count(l); i++)
        HEED_TRY(heed_layer_set_targets(heed_layer_child(l, i), labels, n, loss));
    return HEED_OK;
}

void heed_layer_reseed(heed_layer *l, uint64_t seed) {
    if (l->ops->reseed) l->ops->reseed(l, seed);
    /* Children get distinct streams: mix their index into the seed (an odd
     * multiplier spreads neighbouring indices apart). */
    for (int i = 0; i < heed_layer_child_count(l); i++)
        heed_layer_reseed(heed_layer_child(l, i), seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull));
}

static void share_work(heed_layer *l, heed_work *w, int depth) {
    if (l->ops->share_work) l->ops->share_work(l, w, depth);
    for (int i = 0; i < heed_layer_child_count(l); i++) share_work(heed_layer_child(l, i), w, depth + 1);
}

void heed_layer_share_work(heed_layer *l, heed_work *w) { share_work(l, w, 0); }

void heed_layer_profile_clear(heed_layer *l) {
    l->forward_s = l->backward_s = 0.0;
    l->forward_calls = 0;
    for (int i = 0; i < heed_layer_child_count(l); i++) heed_layer_profile_clear(heed_layer_child(l, i));
}

double heed_layer_flops(const heed_layer *l) {
    double f = l->ops->flops ? l->ops->flops(l) : 0.0;
    for (int i = 0; i < heed_layer_child_count(l); i++) f += heed_layer_flops(heed_layer_child(l, i));
    return f;
}

heed_layer *heed_layer_find(heed_layer *l, const char *name) {
    if (strcmp(l->name, name) == 0) return l;
    for (int i = 0; i < heed_layer_child_count(l); i++) {
        heed_layer *found = heed_layer_find(heed_layer_child(l, i), name);
        if (found) return found;
    }
    return NULL;
}

void heed_layer_free(heed_layer *l) {
    if (l) l->ops->destroy(l);
}

char *heed_layer_join_name(char *out, size_t size, const char *prefix, const char *name) {
    if (prefix && prefix[0])
        snprintf(out, size, "%s.%s", prefix, name);
    else
        snprintf(out, size, "%s", name);
    return out;
}
