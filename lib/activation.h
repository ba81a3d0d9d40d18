/* activation.h -- relu, leaky relu, sigmoid, tanh, the mobile networks'
 * silu, hardsigmoid and hardswish, and channel softmax, as plain functions
 * on whole tensors and as parameter-free layers.
 *
 *   // inside a module: plain functions
 *   heed_act_forward(HEED_ACT_SIGMOID, 0.0f, &a, &e);          // e = sigmoid(a)
 *   heed_act_backward(HEED_ACT_SIGMOID, 0.0f, &a, &e, &de, &da); // da += de * e(1-e)
 *
 *   // in a network: a layer
 *   heed_activation *act;
 *   heed_activation_new(&act, &(heed_activation_cfg){.kind = HEED_ACT_RELU},
 *                       (int[3]){32, 28, 28}, &params, "relu1");
 *   heed_layer_forward(&act->base, &x, &y);
 *   heed_layer_backward(&act->base, &x, &y, &dy, &dx);
 *   heed_layer_free(&act->base);
 *
 * Semantics are PyTorch's: relu(x) = max(x, 0) with relu'(0) = 0;
 * leaky_relu(x) = x if x > 0 else slope * x (derivative slope at 0);
 * sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow so that
 * sigmoid(+-100) is 1 and a tiny positive number, never NaN; tanh;
 * silu(x) = x sigmoid(x); hardsigmoid(x) = min(max(x + 3, 0), 6) / 6 with
 * derivative 1/6 strictly inside (-3, 3) and 0 elsewhere;
 * hardswish(x) = x hardsigmoid(x), with derivative 0 below -3, x/3 + 1/2
 * on [-3, 3] (so -1/2 at -3 and 3/2 at 3) and 1 above, and 1 at NaN: the
 * formula of PyTorch's CUDA kernel and its CPU kernel's scalar loop.
 * PyTorch's vectorized CPU loop, which takes all but the last few
 * elements of a tensor of 16 floats or more (AVX2), gives 1 at 3 and
 * NaN at NaN instead; the two agree everywhere else
 * (MobileNetV3's activations, as torch.nn.Hardsigmoid and Hardswish); and
 * softmax over the channel dimension (dim 1 of NCHW), as
 * torch.softmax(x, dim=1): for a (N, K) matrix stored as (N, K, 1, 1) that
 * is the usual row softmax over K classes.
 *
 * Outputs are sized with heed_tensor_ensure, except that an output that
 * already has the right shape (a view into a larger buffer, or the input
 * itself for in-place use) is written where it is. Backward passes ADD into
 * dx (dx NULL: nothing to do) and read the forward output y, from which the
 * sigmoid, tanh and softmax derivatives are cheapest.
 */
#ifndef HEED_ACTIVATION_H
#define HEED_ACTIVATION_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_act_kind {
    HEED_ACT_RELU,
    HEED_ACT_LEAKY_RELU,
    HEED_ACT_SIGMOID,
    HEED_ACT_TANH,
    HEED_ACT_SOFTMAX, /* over channels; a layer kind, and dispatched by heed_act_* too */
    HEED_ACT_SILU,
    HEED_ACT_HARDSIGMOID,
    HEED_ACT_HARDSWISH
} heed_act_kind;

typedef struct heed_activation_cfg {
    heed_act_kind kind;
    float slope; /* leaky relu's negative slope; 0 means PyTorch's default 0.01 */
} heed_activation_cfg;

typedef struct heed_activation {
    heed_layer base;
    heed_activation_cfg cfg; /* slope resolved (0.01 for a 0 leaky slope) */
} heed_activation;

/* Makes an activation layer for inputs in[] = (C, H, W) per image; the
 * output has the same shape. Its type (ops->type) is "relu", "leaky_relu",
 * "sigmoid", "tanh", "softmax", "silu", "hardsigmoid" or "hardswish" after
 * cfg->kind. It has no parameters, so
 * p may be NULL; name may be NULL. The caller owns the layer (release with
 * heed_layer_free). Errors: HEED_ERR_ARG for a NULL cfg, an unknown kind, a non-finite
 * slope or a dimension < 1; HEED_ERR_NOMEM. On failure *out is NULL. */
heed_status heed_activation_new(heed_activation **out, const heed_activation_cfg *cfg,
                                const int in[3], heed_params *p, const char *name);

/* The type keyword of a kind ("relu", ...), or NULL for an unknown kind. */
const char *heed_act_name(heed_act_kind kind);

/* y = act(x) elementwise (softmax: over channels), y sized like x; y may be
 * x itself. slope is used by leaky relu only (0 means 0.01). Errors:
 * HEED_ERR_ARG for an unknown kind; heed_tensor_ensure's errors. */
heed_status heed_act_forward(heed_act_kind kind, float slope, const heed_tensor *x, heed_tensor *y);

/* dx += dy * act'(x), computed from y = act(x) where that can be. x may be
 * NULL for relu, sigmoid, tanh, softmax and leaky relu with a slope >= 0;
 * silu, hardsigmoid and hardswish need it, as does leaky relu with a
 * negative slope (where the sign of y does not tell the sign of x). y, dy, dx (and x when given) must have one shape.
 * Errors: HEED_ERR_SHAPE naming the shapes;
 * HEED_ERR_ARG for an unknown kind or a missing x. */
heed_status heed_act_backward(heed_act_kind kind, float slope, const heed_tensor *x,
                              const heed_tensor *y, const heed_tensor *dy, heed_tensor *dx);

/* y[n,:,h,w] = softmax(x[n,:,h,w]) for every image and position, with the
 * channel maximum subtracted first so no exp overflows. y may be x. Errors:
 * heed_tensor_ensure's. */
heed_status heed_softmax_forward(const heed_tensor *x, heed_tensor *y);

/* dx += y * (dy - sum_c(dy * y)) per image and position. y, dy and dx must
 * have one shape (HEED_ERR_SHAPE otherwise); dx NULL does nothing. */
heed_status heed_softmax_backward(const heed_tensor *y, const heed_tensor *dy, heed_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
