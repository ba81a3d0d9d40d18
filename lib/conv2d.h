/* conv2d.h -- 2-D convolution with square kernels (PyTorch nn.Conv2d).
 *
 *   heed_conv2d *conv;
 *   heed_conv2d_cfg cfg = {.in_c = 3, .out_c = 64, .k = 7, .stride = 2, .pad = 3};
 *   heed_conv2d_new(&conv, &cfg, (int[3]){3, 224, 224}, &params, "stem");
 *   heed_params_alloc(&params, seed);
 *   heed_conv2d_forward(conv, &x, &y);        // x (N, 3, 224, 224) -> y (N, 64, 112, 112)
 *   heed_conv2d_backward(conv, &x, &dy, &dx); // dx += ..., dW += ..., db += ...
 *   // inference with the batch norm and relu that follow, in one pass:
 *   heed_batchnorm_scale_shift(bn, scale, shift);
 *   heed_conv2d_forward_fused(conv, &x, &y, scale, shift, 1);
 *   heed_layer_free(&conv->base);
 *
 * Semantics are nn.Conv2d's (a cross-correlation) with zero padding, for
 * kernels K x K, stride S, padding P, dilation D and G groups: output
 * channel o of group g = o / (OC/G) sees input channels g*IC/G ..
 * (g+1)*IC/G - 1, and
 *
 *   y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * x[n, g*IC/G + c, i*S - P + u*D, j*S - P + v*D]
 *
 * with out-of-range x reading 0. The output side is
 * floor((in + 2P - D(K-1) - 1) / S) + 1. Weights (OC, IC/G, K, K) have
 * nn.Conv2d's layout, so they convert one to one.
 *
 * Registers "<name>.weight" (OC, IC/G, K, K), He-normal with fan_in
 * IC/G*K*K, weight decay on, and with cfg.bias "<name>.bias" (OC),
 * U(+-1/sqrt(fan_in)), no decay.
 *
 * For inference, heed_conv2d_forward_fused applies a following batch norm
 * (as a per-channel scale and shift) and relu in the convolution's own
 * output pass, leaving the weights untouched; heed_conv2d_fold_bn instead
 * rewrites the weights once.
 *
 * The layer owns its work buffers (im2col columns and the like, grown once
 * to the largest batch seen, then reused: no allocation per call) and,
 * after heed_conv2d_fold_bn on a conv without a bias, the folded bias;
 * heed_layer_free releases them with the layer.
 */
#ifndef HEED_CONV2D_H
#define HEED_CONV2D_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Threads whose speeds a layer learns (larger teams share equally). */
#define HEED_CONV_BALANCE_THREADS 16

typedef struct heed_conv2d_cfg {
    int in_c, out_c; /* channels, each a multiple of groups */
    int k;           /* kernel side, >= 1 */
    int stride;      /* 0 means 1 */
    int pad;         /* zero padding on every side, >= 0 */
    int dilation;    /* 0 means 1 */
    int groups;      /* 0 means 1 */
    int bias;        /* 1: learn a per-channel bias */
} heed_conv2d_cfg;

typedef struct heed_conv2d {
    heed_layer base;
    heed_conv2d_cfg cfg; /* stride, dilation and groups resolved to >= 1 */
    float *w, *dw;       /* (OC, IC/G, K, K) */
    float *b, *db;       /* (OC); NULL without a bias (db stays NULL for a folded bias) */
    float *folded_b;     /* (OC): the bias heed_conv2d_fold_bn gave a conv that had none */
    /* Work buffers, each sized by the path a call takes (conv2d.c), in
     * *work when a network shares its own (heed_layer_share_work), else in
     * own_work:
     * col: im2col columns of NB images (IC/G*K*K, NB*OH*OW) per thread, or
     *      the shifted copies of an image (IC/G, K, rows, OW), or padded
     *      planes for the direct loops; in backward also dy's columns or
     *      copies, or the columns' gradient.
     * tmp: (OC/G, NB*OH*OW) per thread: one group's output (or its
     *      gradient) for NB images; the weight gradient of the shifted path.
     * wt:  (OC, IC/G*K*K): the kernel reordered for the shifted path, or
     *      flipped for the transposed convolution that gives dx. */
    heed_work own_work, *work;
    heed_scratch wt;
    /* wt_src: (OC, IC/G*K*K), the weights wt was last reordered from for a
     * forward on shifted copies; wt_forward is 1 while wt holds that
     * reorder (a backward reuses wt and clears it). A forward whose
     * weights still equal wt_src bit for bit skips the reorder: inference
     * at batch 1 spent a tenth of its time redoing it. */
    heed_scratch wt_src;
    int wt_forward;
    /* The freeze (base.frozen) under which wt was last made or checked, 0
     * for none: under that same freeze it is used unchecked. */
    uint64_t wt_frozen;
    /* Each thread's speed on this layer's batch-1 shares, relative to its
     * team's (0 until timed): learnt where one image is shared between
     * threads (conv2d_shifted.c, conv2d_few.c; balance_impl.h). */
    float thread_speed[HEED_CONV_BALANCE_THREADS];
    heed_scratch post;   /* (OC): the shift forward_fused adds, bias included */
    /* Set by a sequence around one forward through the layer interface
     * (heed_layer_forward) when a batch norm in inference mode and/or a relu
     * or hardswish follow: the batch norm as a scale and shift, the
     * activation (HEED_FUSE_RELU or HEED_FUSE_HARDSWISH, layer.h) applied
     * in the output pass. NULL, NULL, 0 otherwise. */
    const float *fuse_scale, *fuse_shift; /* (OC) */
    int fuse_act;
    /* Set with them when a 3 x 3, stride 2, padding 1 max pool follows
     * (ResNet's stem) and heed_conv2d_can_pool: the forward writes the
     * pooled output, the full one never stored. */
    int fuse_pool;
} heed_conv2d;

/* The output side floor((in + 2*pad - dilation*(k-1) - 1) / stride) + 1 of
 * nn.Conv2d (stride or dilation 0 mean 1). A result < 1 means the kernel
 * does not fit. */
int heed_conv2d_out_size(int in, int k, int stride, int pad, int dilation);

/* Makes a convolution for inputs of shape in[] = (C, H, W) per image. The
 * layer is owned by the caller (release with heed_layer_free); its
 * parameters live in *p. Errors: HEED_ERR_ARG for a bad configuration
 * (non-positive channels or kernel, negative stride, pad or dilation,
 * channels not divisible by groups, cfg or p NULL); HEED_ERR_SHAPE when in[0] !=
 * cfg.in_c or the kernel does not fit the input; heed_params_add's errors;
 * HEED_ERR_NOMEM. On failure *out is NULL. */
heed_status heed_conv2d_new(heed_conv2d **out, const heed_conv2d_cfg *cfg, const int in[3],
                            heed_params *p, const char *name);

/* y = conv(x) + b. x (N, IC, H, W) must match the layer's input shape; y is
 * sized to (N, OC, OH, OW) with heed_tensor_ensure and must not alias x.
 * Errors: HEED_ERR_SHAPE, HEED_ERR_ARG if the parameters have not been
 * allocated, HEED_ERR_NOMEM for the work buffers. */
heed_status heed_conv2d_forward(heed_conv2d *l, const heed_tensor *x, heed_tensor *y);

/* Inference with a following batch norm and relu applied in the output pass:
 *   y[n,o] = act(scale[o] * (conv(x)[n,o] + b[o]) + shift[o]),  act = relu if `relu`
 * (heed_batchnorm_scale_shift gives scale and shift for a batch norm in
 * inference mode). scale and shift hold OC floats, or are NULL (1 and 0).
 * Reads the weights as they are on each call, so it reflects every change
 * to them or to the batch norm's statistics. Shapes and errors as for
 * heed_conv2d_forward. */
heed_status heed_conv2d_forward_fused(heed_conv2d *l, const heed_tensor *x, heed_tensor *y,
                                      const float *scale, const float *shift, int relu);

/* Whether l's forward can pool its own output (fuse_pool): a layer whose
 * convolution runs on the route for few input channels (a first layer). */
int heed_conv2d_can_pool(const heed_conv2d *l);

/* Given x and dy (N, OC, OH, OW), accumulates dW += dy (x) x, db += the
 * sum of dy over images and positions and, unless dx is NULL, dx (shaped
 * like x) += the transposed convolution of dy. A bias made by fold_bn gets
 * no gradient. Errors as for forward. */
heed_status heed_conv2d_backward(heed_conv2d *l, const heed_tensor *x, const heed_tensor *dy,
                                 heed_tensor *dx);

/* For inference: folds a following batch norm
 *   z = gamma * (y - mean) / sqrt(var + eps) + beta      (per channel, OC values each)
 * into the weights and bias, so that the conv alone computes z. A conv
 * without a bias gets one it owns (heed_layer_free releases it). gamma and
 * beta may be NULL (1 and 0). Errors: HEED_ERR_ARG for a negative var + eps
 * or unallocated parameters, HEED_ERR_NOMEM. */
heed_status heed_conv2d_fold_bn(heed_conv2d *l, const float *gamma, const float *beta,
                                const float *mean, const float *var, float eps);

#ifdef __cplusplus
}
#endif

#endif
