/* layer.h -- the one small interface every layer and module shares.
 *
 *   heed_conv2d *conv;                                  // a typed layer ...
 *   heed_conv2d_new(&conv, &cfg, (int[3]){3, 32, 32}, &params, "conv1");
 *   heed_layer *l = &conv->base;                        // ... is a heed_layer
 *   heed_layer_forward(l, &x, &y);                      // y sized for you
 *   heed_layer_backward(l, &x, &y, &dy, &dx);           // dx += ..., grads +=
 *   heed_layer_free(l);
 *
 * Each typed layer struct starts with `heed_layer base`, so a pointer to it
 * is a pointer to its base. Its constructor `heed_<type>_new(&out, &cfg,
 * in, params, name)` takes the input shape per image (C, H, W), computes the
 * output shape, registers its parameters as "<name>.<param>" in `params`
 * (allocated later by heed_params_alloc) and allocates the layer, which
 * heed_layer_free releases with everything it owns (caches, scratch).
 *
 * Forward reads x (N, in_c, in_h, in_w) and writes y (N, out_c, out_h,
 * out_w). Backward gets the same x, the y forward produced and dy (shaped
 * like y); it ADDS the input gradient into dx (NULL: not needed) and the
 * parameter gradients into the params store. A layer may cache what its
 * backward needs from the last forward (argmax indices, batch statistics);
 * backward must follow the forward on the same x.
 *
 * `training` switches batch norm to batch statistics and turns dropout on;
 * heed_layer_set_training sets it on a layer and all its children.
 *
 * `frozen` (heed_layer_set_frozen) is a caller's promise that the layer's
 * weights stay as they are until it is thawed, as for a loaded model
 * serving inference: layers may then keep copies derived from their
 * weights (a convolution's reordered kernel) without comparing them with
 * the weights on each call. Weights written while frozen may go unseen
 * until the layer is thawed (a backward through a layer still drops its
 * copies, so a training step shows either way).
 */
#ifndef HEED_LAYER_H
#define HEED_LAYER_H

#include <stdint.h>

#include "error.h"
#include "params.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The longest layer name (characters): constructors refuse longer ones
 * (heed_layer_check_name). */
#define HEED_LAYER_NAME_MAX 47

typedef struct heed_layer heed_layer;

typedef struct heed_layer_ops {
    const char *type; /* the keyword used in network files: "conv", "bn", ... */
    heed_status (*forward)(heed_layer *l, const heed_tensor *x, heed_tensor *y);
    heed_status (*backward)(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                            const heed_tensor *dy, heed_tensor *dx);
    /* Forward FLOPs per image (2 x multiply-adds; elementwise work counts 1
     * per element). NULL means 0. */
    double (*flops)(const heed_layer *l);
    /* Frees everything the layer owns, and the layer itself. */
    void (*destroy)(heed_layer *l);
    /* Composite layers (residual blocks, sequences, modules built from other
     * layers) list their children; NULL for leaves. */
    int (*child_count)(const heed_layer *l);
    heed_layer *(*child)(const heed_layer *l, int i);
    /* Optional (NULL for most layers). A layer whose training signal needs
     * the labels, not only its output gradient (RAM: the reward of its
     * glimpse policy), gets them after a training forward and before the
     * backward; it ADDS its own loss terms to *loss. labels: (n), the
     * forward's batch size. */
    heed_status (*set_targets)(heed_layer *l, const int *labels, int n, double *loss);
    /* Optional. Layers that draw random numbers (dropout masks, RAM's
     * locations) restart their stream from `seed`, so a training run can
     * fix what each epoch draws (and a resumed run draws the same). */
    void (*reseed)(heed_layer *l, uint64_t seed);
    /* Optional. A layer with work space it needs only during a call uses
     * w instead of its own (NULL: its own again); see heed_work. depth: the
     * layer's in the tree heed_layer_share_work walks (0 at its root). */
    void (*share_work)(heed_layer *l, heed_work *w, int depth);
    /* Nonzero: backward honours the layer's dx_fresh (below). */
    int writes_fresh_dx;
    /* Nonzero: forward honours the layer's add_after and relu_after. */
    int adds_after;
} heed_layer_ops;

struct heed_layer {
    const heed_layer_ops *ops;
    char name[HEED_LAYER_NAME_MAX + 1];
    int in_c, in_h, in_w;    /* input per image */
    int out_c, out_h, out_w; /* output per image */
    int training;
    /* Nonzero while frozen: the number of the freeze, each freeze its own,
     * so a layer tells a copy it made under this one from an older. */
    uint64_t frozen;
    /* Time spent in forward and backward (children included) and the
     * number of forward calls, counted only while heed_layer_profile(1)
     * is in effect (heed bench --layers). */
    double forward_s, backward_s;
    long forward_calls;
    /* Set by a caller (a sequence) around one backward of a layer whose
     * ops have writes_fresh_dx: dx holds no gradient yet (its contents are
     * undefined), so backward writes the input gradient instead of adding
     * it -- the pass that would zero dx first is saved. */
    int dx_fresh;
    /* Set by a residual block around one inference forward of the layer
     * that ends its body, when that layer's ops have adds_after: y = the
     * layer's output + *add_after (shaped like y), then relu when
     * relu_after: the block's sum, and the relu after it, in the layer's
     * own last pass over y instead of one more. */
    const heed_tensor *add_after;
    int relu_after;
};

/* HEED_ERR_ARG, "WHAT NAME: the name has N characters, at most 47 fit",
 * when name would not fit a layer's name field: constructors refuse it
 * rather than cut it (cut names, and the parameter names made from them,
 * could collide). */
heed_status heed_layer_check_name(const char *what, const char *name);

/* HEED_ERR_SHAPE, "TYPE NAME: input is (...), expected (N, C, H, W)",
 * unless x is shaped as the layer was made for: the check that
 * heed_layer_forward and heed_layer_backward make, for a module's own
 * entry points (heed_se_forward, ...), which callers reach directly. */
heed_status heed_layer_check_input(const heed_layer *l, const heed_tensor *x);

/* Fills the base fields; name is copied (truncated to fit). */
void heed_layer_init(heed_layer *l, const heed_layer_ops *ops, const char *name,
                     const int in[3], int out_c, int out_h, int out_w);

/* Checks x against the layer's input shape, sizes y (heed_tensor_ensure) to
 * (x->n, out_c, out_h, out_w), and runs the layer. */
heed_status heed_layer_forward(heed_layer *l, const heed_tensor *x, heed_tensor *y);

/* Checks shapes and runs the backward pass (dx may be NULL). */
heed_status heed_layer_backward(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                const heed_tensor *dy, heed_tensor *dx);

void heed_layer_set_training(heed_layer *l, int training);
/* Freezes (1) or thaws (0) a layer and all its children (see `frozen`). */
void heed_layer_set_frozen(heed_layer *l, int frozen);
/* Hands the labels to l and its children that take them (see set_targets);
 * *loss gets their added loss terms. */
heed_status heed_layer_set_targets(heed_layer *l, const int *labels, int n, double *loss);
/* Reseeds l and its children that draw random numbers; each gets its own
 * stream derived from `seed` and its position. */
void heed_layer_reseed(heed_layer *l, uint64_t seed);
/* Hands w to l and its children that take work space (see share_work), or
 * gives them back their own (NULL). The layers sharing one w must run one
 * at a time, as a network's do, and w must outlive the sharing. */
void heed_layer_share_work(heed_layer *l, heed_work *w);
/* Turns per-layer timing on or off for every layer (process-wide; off by
 * default), and clears l's counters and its children's. */
void heed_layer_profile(int on);
void heed_layer_profile_clear(heed_layer *l);
double heed_layer_flops(const heed_layer *l); /* including children */
/* A composite layer's children (0 for a leaf), and child i of them: NULL
 * when i is not in 0..count-1 (a leaf has none). */
int heed_layer_child_count(const heed_layer *l);
heed_layer *heed_layer_child(const heed_layer *l, int i);
/* Depth-first search of l and its children for a layer named `name`. */
heed_layer *heed_layer_find(heed_layer *l, const char *name);
/* Safe on NULL. */
void heed_layer_free(heed_layer *l);

/* Joins a parent's name and a child's: "stage1" + "conv" -> "stage1.conv"
 * (just "conv" when prefix is empty). Returns out. */
char *heed_layer_join_name(char *out, size_t size, const char *prefix, const char *name);

#ifdef __cplusplus
}
#endif

/* The activations a sequence fuses into the layer before them, which then
 * applies one to its own output (a convolution in its output pass, a
 * batch norm in its passes): heed_conv2d's and heed_batchnorm's fuse_act. */
enum { HEED_FUSE_RELU = 1, HEED_FUSE_HARDSWISH = 2 };

#endif
