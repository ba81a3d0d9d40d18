/* gradcam.c -- Grad-CAM over a top-level layer's output, and gradient
 * saliency over the input (gradcam.h).
 *
 * The top-level sequence keeps every child's output and its gradient after
 * a backward (seq.h), so a map needs one forward, one backward from a
 * one-hot gradient on the logits, and then a weighted sum (Grad-CAM) or
 * the input gradient's largest magnitude over channels (saliency): no
 * hooks. */
#include "gradcam.h"

#include <math.h>
#include <string.h>

#include "seq.h"

int heed_gradcam_default_layer(const heed_net *net) {
    const heed_seq *root = net->root;
    for (int i = root->count - 2; i >= 0; i--)
        if (root->children[i]->out_h * root->children[i]->out_w > 1) return i;
    return -1;
}

/* cam = relu(sum_k alpha_k A_k), alpha_k the mean of A_k's gradient. */
static heed_status weigh_maps(const heed_tensor *a, const heed_tensor *g, heed_tensor *cam) {
    const int K = a->c;
    const size_t hw = (size_t)a->h * a->w;
    HEED_TRY(heed_tensor_ensure(cam, 1, 1, a->h, a->w));
    heed_tensor_zero(cam);
    for (int k = 0; k < K; k++) {
        const float *ak = a->data + (size_t)k * hw, *gk = g->data + (size_t)k * hw;
        double alpha = 0;
        for (size_t i = 0; i < hw; i++) alpha += gk[i];
        alpha /= (double)hw;
        for (size_t i = 0; i < hw; i++) cam->data[i] += (float)(alpha * ak[i]);
    }
    for (size_t i = 0; i < hw; i++) cam->data[i] = cam->data[i] > 0 ? cam->data[i] : 0;
    return HEED_OK;
}

/* net and the output map given, for fn (each entry point checks first:
 * Grad-CAM reads the network before its image is checked). */
static heed_status check_given(const heed_net *net, const heed_tensor *out_map, const char *fn) {
    return net && out_map ? HEED_OK : heed_fail(HEED_ERR_ARG, "%s: %s is NULL", fn, net ? "the output map" : "net");
}

/* cls a class of net's output and x one image of its input, for fn. */
static heed_status check_image(const heed_net *net, const heed_tensor *x, int cls, const char *fn) {
    const heed_layer *out = &net->root->base;
    const int classes = out->out_c * out->out_h * out->out_w;
    if (cls < 0 || cls >= classes)
        return heed_fail(HEED_ERR_ARG, "%s: class %d is not in 0..%d", fn, cls, classes - 1);
    HEED_CHECK_SHAPE(x && x->data && x->n == 1 && x->c == net->in_c && x->h == net->in_h && x->w == net->in_w,
                     "%s: x is (%d, %d, %d, %d), expected one image (1, %d, %d, %d)", fn, x ? x->n : 0,
                     x ? x->c : 0, x ? x->h : 0, x ? x->w : 0, net->in_c, net->in_h, net->in_w);
    return HEED_OK;
}

/* A forward of x and a backward from d score / d logits = one-hot(cls),
 * the input gradient added into dx unless it is NULL. */
static heed_status class_backward(heed_net *net, const heed_tensor *x, int cls, heed_tensor *dx) {
    heed_tensor logits = {0}, dy = {0};
    heed_status st = heed_net_forward(net, x, &logits);
    if (st == HEED_OK) st = heed_tensor_alloc(&dy, logits.n, logits.c, logits.h, logits.w);
    if (st == HEED_OK) {
        dy.data[cls] = 1.0f;
        st = heed_net_backward(net, x, &logits, &dy, dx);
    }
    heed_tensor_free(&logits);
    heed_tensor_free(&dy);
    return st;
}

heed_status heed_gradcam(heed_net *net, const heed_tensor *x, int cls, int layer, heed_tensor *cam) {
    HEED_TRY(check_given(net, cam, "heed_gradcam"));
    heed_seq *root = net->root;
    if (root->count < 2)
        return heed_fail(HEED_ERR_ARG, "heed_gradcam: the network has no top-level layer before its output");
    if (layer < 0 || layer >= root->count - 1)
        return heed_fail(HEED_ERR_ARG, "heed_gradcam: layer %d is not a top-level layer before the output "
                         "(0..%d)", layer, root->count - 2);
    const heed_layer *at = root->children[layer];
    if (at->out_h * at->out_w <= 1)
        return heed_fail(HEED_ERR_ARG, "heed_gradcam: layer %s outputs %dx%dx%d: Grad-CAM needs a map "
                         "(an output over 1x1)", at->name, at->out_c, at->out_h, at->out_w);
    /* A batch norm and the relu after it run as one step (seq.c), which
     * keeps only the relu's output: the batch norm's own map is not there. */
    const heed_layer *next = root->children[layer + 1];
    if (!strcmp(at->ops->type, "bn") && !strcmp(next->ops->type, "relu"))
        return heed_fail(HEED_ERR_ARG, "heed_gradcam: layer %s is a batch norm run together with the relu "
                         "after it, which keeps no output of its own: take %s", at->name, next->name);
    HEED_TRY(check_image(net, x, cls, "heed_gradcam"));
    HEED_TRY(class_backward(net, x, cls, NULL));
    return weigh_maps(heed_seq_activation(root, layer), &root->grads[layer], cam);
}

heed_status heed_saliency(heed_net *net, const heed_tensor *x, int cls, heed_tensor *map) {
    HEED_TRY(check_given(net, map, "heed_saliency"));
    HEED_TRY(check_image(net, x, cls, "heed_saliency"));
    heed_tensor dx = {0};
    heed_status st = heed_tensor_alloc(&dx, 1, x->c, x->h, x->w); /* zeroed: backward adds to it */
    if (st == HEED_OK) st = class_backward(net, x, cls, &dx);
    if (st == HEED_OK) st = heed_tensor_ensure(map, 1, 1, x->h, x->w);
    if (st == HEED_OK) {
        const size_t hw = (size_t)x->h * x->w;
        for (size_t i = 0; i < hw; i++) {
            float most = 0;
            for (int c = 0; c < x->c; c++) {
                const float g = fabsf(dx.data[(size_t)c * hw + i]);
                most = g > most ? g : most;
            }
            map->data[i] = most;
        }
    }
    heed_tensor_free(&dx);
    return st;
}
