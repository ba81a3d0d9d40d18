/* linear.h -- fully connected layers (PyTorch nn.Linear) and flatten.
 *
 *   heed_linear *fc;
 *   heed_linear_cfg cfg = {.in = 3136, .out = 128};
 *   heed_linear_new(&fc, &cfg, (int[3]){64, 7, 7}, &params, "fc1"); // implicit flatten
 *   heed_params_alloc(&params, seed);
 *   heed_linear_forward(fc, &x, &y);        // x (N, 64, 7, 7) -> y (N, 128, 1, 1)
 *   heed_linear_backward(fc, &x, &dy, &dx); // dx += dy W, dW += dy^T x, db += sum dy
 *   heed_layer_free(&fc->base);
 *
 * y = x W^T + b with W (OUT, IN): the layout and initialisation of
 * nn.Linear, so weights convert one to one. Each image's (C, H, W) values
 * are read in NCHW order as one row of IN = C*H*W features, which is what
 * torch.flatten(x, 1) followed by nn.Linear computes. A (N, F) matrix is a
 * tensor (N, F, 1, 1), so the typed functions double as plain matrix
 * products for recurrent models (see heed_linear_forward_add).
 *
 * Registers "<name>.weight" (OUT, IN), U(+-1/sqrt(IN)), weight decay on, and
 * unless cfg.no_bias "<name>.bias" (OUT), U(+-1/sqrt(IN)).
 *
 * heed_flatten reshapes (C, H, W) to (C*H*W, 1, 1) by copying; it has no
 * parameters.
 */
#ifndef HEED_LINEAR_H
#define HEED_LINEAR_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_linear_cfg {
    int in;      /* input features; 0 means C*H*W of the input shape */
    int out;     /* output features, >= 1 */
    int no_bias; /* 1: y = x W^T only */
} heed_linear_cfg;

typedef struct heed_linear {
    heed_layer base;
    heed_linear_cfg cfg; /* cfg.in resolved to C*H*W */
    float *w, *dw;       /* (OUT, IN) */
    float *b, *db;       /* (OUT), NULL when cfg.no_bias */
    /* W^T (IN, OUT), made while the layer is frozen (layer.h) for products
     * of more than a few rows, and the freeze it was made under (0: none). */
    heed_scratch wt;
    uint64_t wt_frozen;
} heed_linear;

/* Makes a fully connected layer for inputs of shape in[] = (C, H, W) per
 * image, output (OUT, 1, 1). The layer is owned by the caller (release with
 * heed_layer_free); its parameters live in *p. Errors: HEED_ERR_ARG for a
 * NULL p or cfg, out < 1, in < 0, cfg.in != C*H*W, a dimension < 1, or a
 * name longer than 47 characters (a layer's name; NULL means ""); the
 * errors of heed_params_add (duplicate name); HEED_ERR_NOMEM. On failure
 * *out is NULL and nothing stays registered in p. */
heed_status heed_linear_new(heed_linear **out, const heed_linear_cfg *cfg, const int in[3],
                            heed_params *p, const char *name);

/* y = x W^T + b. x is any (N, C, H, W) with C*H*W == IN (a view of a
 * matrix (N, IN, 1, 1) included); y is sized to (N, OUT, 1, 1) with
 * heed_tensor_ensure. Errors: HEED_ERR_SHAPE when the features do not match,
 * HEED_ERR_ARG if the parameters have not been allocated. */
heed_status heed_linear_forward(heed_linear *l, const heed_tensor *x, heed_tensor *y);

/* y += x W^T + b, for sums of products such as h = W1 a + W2 b in a
 * recurrent cell. y must already be (N, OUT) (any h, w with c*h*w == OUT);
 * HEED_ERR_SHAPE otherwise, and the errors of heed_linear_forward. */
heed_status heed_linear_forward_add(heed_linear *l, const heed_tensor *x, heed_tensor *y);

/* Accumulates dW += dy^T x, db += sum over the batch of dy and, unless dx
 * is NULL, dx += dy W. dy holds (N, OUT) values, dx (N, IN) ones like x.
 * Errors: HEED_ERR_SHAPE for mismatched tensors, HEED_ERR_ARG if the
 * parameters have not been allocated. */
heed_status heed_linear_backward(heed_linear *l, const heed_tensor *x, const heed_tensor *dy,
                                 heed_tensor *dx);

typedef struct heed_flatten {
    heed_layer base;
} heed_flatten;

/* Makes a flatten layer: (C, H, W) -> (C*H*W, 1, 1). Errors: HEED_ERR_ARG
 * for a non-positive dimension or a name longer than 47 characters;
 * HEED_ERR_NOMEM. */
heed_status heed_flatten_new(heed_flatten **out, const int in[3], const char *name);

/* y (N, C*H*W, 1, 1) = x, sized with heed_tensor_ensure. */
heed_status heed_flatten_forward(heed_flatten *l, const heed_tensor *x, heed_tensor *y);

/* dx += dy (reshaped back); dx NULL does nothing. */
heed_status heed_flatten_backward(heed_flatten *l, const heed_tensor *x, const heed_tensor *dy,
                                  heed_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
