/* pool2d.h -- max and average pooling (PyTorch nn.MaxPool2d, nn.AvgPool2d),
 * global pooling, and CBAM's pooling across channels.
 *
 *   heed_pool2d *pool;
 *   heed_pool2d_cfg cfg = {.kind = HEED_POOL_MAX, .k = 3, .stride = 2, .pad = 1};
 *   heed_pool2d_new(&pool, &cfg, (int[3]){64, 112, 112}, NULL, "pool1");
 *   heed_pool2d_forward(pool, &x, &y);        // (N, 64, 112, 112) -> (N, 64, 56, 56)
 *   heed_pool2d_backward(pool, &x, &dy, &dx); // dx += ...
 *   heed_layer_free(&pool->base);
 *
 *   heed_global_avg_pool_forward(&x, &s);     // plain functions: (N, C, H, W) -> (N, C, 1, 1)
 *
 * Pooling windows are K x K with stride S and padding P on every side;
 * the output side is floor((in + 2P - K) / S) + 1 (ceil_mode False).
 * Max pooling pads with -inf and routes the gradient to the first maximum
 * of each window in row-major order (NaN counts as a maximum, as in
 * PyTorch). Average pooling divides by K*K, counting padding, like
 * PyTorch's default count_include_pad=True; cfg.exclude_pad divides by the
 * number of input pixels in the window instead. P <= K/2, as PyTorch
 * requires, so every window holds at least one input pixel.
 *
 * Global max pooling and the channel maximum follow torch.amax: the
 * gradient is split evenly among tied maxima. Their backward passes find
 * the maxima again in x, so y may have been modified in between.
 *
 * None of these layers has parameters; the `p` argument of the
 * constructors is accepted for the shared constructor shape and may be
 * NULL. Plain functions size y with heed_tensor_ensure and accumulate
 * (+=) into dx; a NULL dx does nothing.
 */
#ifndef HEED_POOL2D_H
#define HEED_POOL2D_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_pool_kind { HEED_POOL_MAX, HEED_POOL_AVG } heed_pool_kind;

typedef struct heed_pool2d_cfg {
    heed_pool_kind kind;
    int k;          /* window side, >= 1 */
    int stride;     /* 0 means k */
    int pad;        /* 0 <= pad <= k/2 */
    int exclude_pad; /* average pooling: 1 divides by the pixels inside the input only */
} heed_pool2d_cfg;

typedef struct heed_pool2d {
    heed_layer base;
    heed_pool2d_cfg cfg; /* stride resolved */
} heed_pool2d;

/* Makes a pooling layer (type "maxpool" or "avgpool") for inputs of shape
 * in[] = (C, H, W) per image; output (C, OH, OW). Release with
 * heed_layer_free. Errors: HEED_ERR_ARG for a NULL cfg, an unknown kind, k < 1, a
 * negative stride, or pad outside [0, k/2]; HEED_ERR_SHAPE when the window
 * does not fit the input; HEED_ERR_NOMEM. On failure *out is NULL. */
heed_status heed_pool2d_new(heed_pool2d **out, const heed_pool2d_cfg *cfg, const int in[3],
                            heed_params *p, const char *name);

/* y (N, C, OH, OW) from x (N, C, H, W) matching the layer's input shape,
 * sized with heed_tensor_ensure. Errors: HEED_ERR_SHAPE, HEED_ERR_ARG if y
 * aliases x. */
heed_status heed_pool2d_forward(heed_pool2d *l, const heed_tensor *x, heed_tensor *y);

/* Whether l is the 3 x 3, stride 2, padding 1 max pool of ResNet's stem,
 * which a convolution before it can compute in its own output pass
 * (heed_conv2d's fuse_pool; the same bits). */
int heed_pool2d_is_max3s2(const heed_pool2d *l);

/* dx += the gradient for dy (N, C, OH, OW); dx NULL does nothing. Max
 * pooling finds each window's maximum again in x. Errors: HEED_ERR_SHAPE. */
heed_status heed_pool2d_backward(heed_pool2d *l, const heed_tensor *x, const heed_tensor *dy,
                                 heed_tensor *dx);

typedef struct heed_global_pool {
    heed_layer base;
    heed_pool_kind kind;
} heed_global_pool;

/* Makes a global pooling layer (type "gap" for HEED_POOL_AVG, "gmp" for
 * HEED_POOL_MAX): (C, H, W) -> (C, 1, 1). Errors: HEED_ERR_ARG for an
 * unknown kind or a non-positive dimension, HEED_ERR_NOMEM. */
heed_status heed_global_pool_new(heed_global_pool **out, heed_pool_kind kind, const int in[3],
                                 const char *name);

/* y[n,c] = mean of x[n,c,:,:]; y sized (N, C, 1, 1). */
heed_status heed_global_avg_pool_forward(const heed_tensor *x, heed_tensor *y);
/* dx[n,c,:,:] += dy[n,c] / (H*W). dy must be (N, C, 1, 1), dx shaped like x. */
heed_status heed_global_avg_pool_backward(const heed_tensor *x, const heed_tensor *dy,
                                          heed_tensor *dx);

/* y[n,c] = max of x[n,c,:,:]; y sized (N, C, 1, 1). */
heed_status heed_global_max_pool_forward(const heed_tensor *x, heed_tensor *y);
/* Both global poolings in one pass over x (CBAM's channel attention):
 * avg and max sized (N, C, 1, 1), each as the functions above compute them.
 * Errors: HEED_ERR_ARG if an output aliases x or the other output. */
heed_status heed_global_avg_max_pool_forward(const heed_tensor *x, heed_tensor *avg,
                                             heed_tensor *max);

/* dx[n,c,h,w] += dy[n,c] / T at each of the T positions equal to the
 * maximum. y (the forward output) is only checked for shape and may be
 * NULL. Errors: HEED_ERR_SHAPE. */
heed_status heed_global_max_pool_backward(const heed_tensor *x, const heed_tensor *y,
                                          const heed_tensor *dy, heed_tensor *dx);

/* CBAM's channel pool: y (N, 2, H, W) with y[:,0] = max over channels and
 * y[:,1] = mean over channels (max first). */
heed_status heed_channel_pool_forward(const heed_tensor *x, heed_tensor *y);
/* dx[n,c,h,w] += dy[n,1,h,w] / C, plus dy[n,0,h,w] / T where x[n,c,h,w] is
 * one of the T channels tied for the maximum. y is only checked for shape
 * and may be NULL. Errors: HEED_ERR_SHAPE. */
heed_status heed_channel_pool_backward(const heed_tensor *x, const heed_tensor *y,
                                       const heed_tensor *dy, heed_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
