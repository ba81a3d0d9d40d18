/* batchnorm.h -- 2-D batch normalization (PyTorch nn.BatchNorm2d).
 *
 *   heed_batchnorm *bn;
 *   heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){0}, (int[3]){32, 28, 28}, &params, "bn1");
 *   heed_params_alloc(&params, seed);
 *   bn->base.training = 1;                    // or heed_layer_set_training
 *   heed_batchnorm_forward(bn, &x, &y);       // batch statistics, running stats updated
 *   heed_batchnorm_backward(bn, &x, &dy, &dx);
 *   heed_layer_free(&bn->base);
 *
 * Per channel c, over the N*H*W values of the batch:
 *   training:  y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta with the
 *              batch mean and biased variance; then
 *              running_mean = (1 - m) running_mean + m mean_B,
 *              running_var  = (1 - m) running_var  + m var_B * M / (M - 1)
 *              (the unbiased variance, M = N*H*W), as PyTorch does.
 *   inference: the same with running_mean and running_var, i.e. the
 *              per-channel affine y = scale * x + shift that
 *              heed_batchnorm_scale_shift returns (for folding into a conv).
 * Any (C, H, W) works, H = W = 1 included (BatchNorm1d on features).
 * A relu after the batch norm can share its passes (forward_relu,
 * backward_relu): a sequence does that for conv/bn/relu stacks.
 *
 * Registers "<name>.weight" (gamma, ones), "<name>.bias" (beta, zeros) and
 * the buffers "<name>.running_mean" (zeros) and "<name>.running_var" (ones),
 * flagged HEED_PARAM_BUFFER: saved with the model, never trained.
 */
#ifndef HEED_BATCHNORM_H
#define HEED_BATCHNORM_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_batchnorm_cfg {
    int c;          /* channels; 0 means the input's C */
    float momentum; /* running-statistics weight of the new batch, (0, 1]; 0 means 0.1 */
    float eps;      /* added to the variance, > 0; 0 means 1e-5 */
} heed_batchnorm_cfg;

typedef struct heed_batchnorm {
    heed_layer base;
    heed_batchnorm_cfg cfg;               /* defaults resolved */
    float *gamma, *dgamma, *beta, *dbeta; /* (C) */
    float *running_mean, *running_var;    /* (C), buffers */
    /* What the last forward normalised with, for backward: the batch
     * statistics in training mode, the running ones in inference mode. */
    float *mean, *inv_std; /* (C), owned by the layer */
    float *fwd_scale, *fwd_shift; /* (C): the last forward's y = (x - mean) scale + shift */
    double *acc;           /* (C, 2): backward's per-channel coefficients for its last pass, owned */
    heed_scratch planes;   /* (N, C, 2) doubles: per-plane sums while a pass runs */
    int batch_stats;       /* 1 if the last forward used batch statistics */
    int fwd_n, fwd_h, fwd_w; /* the last forward's input (0: none yet), which backward must match */
    /* Set by a sequence whose relu or hardswish follows this batch norm
     * (HEED_FUSE_RELU, HEED_FUSE_HARDSWISH, layer.h; 0 none): calls through the layer
     * interface then apply it in the forward's pass, and backward takes
     * its derivative at the value it recomputes from x. */
    int fuse_act;
} heed_batchnorm;

/* Makes a batch norm layer for inputs in[] = (C, H, W) per image; the
 * output has the same shape. cfg may be NULL (all defaults). The layer is
 * owned by the caller (heed_layer_free); parameters and buffers live in *p.
 * Errors: HEED_ERR_ARG for cfg->c not matching C, a momentum outside
 * [0, 1] or a negative eps, a bad input shape; heed_params_add's errors;
 * HEED_ERR_NOMEM. On failure *out is NULL. */
heed_status heed_batchnorm_new(heed_batchnorm **out, const heed_batchnorm_cfg *cfg,
                               const int in[3], heed_params *p, const char *name);

/* y = BN(x) for x (N, C, H, W); y is sized like x with heed_tensor_ensure
 * and must not alias it. In training mode (l->base.training) also updates
 * the running statistics. Errors: HEED_ERR_SHAPE if x has another channel
 * count, or in training mode only one value per channel (N*H*W == 1, where
 * the variance is undefined; PyTorch refuses it too); HEED_ERR_ARG if the
 * parameters have not been allocated. */
heed_status heed_batchnorm_forward(heed_batchnorm *l, const heed_tensor *x, heed_tensor *y);

/* y = relu(BN(x)) in one pass: a batch norm and the relu after it. Same
 * shapes, modes and errors as heed_batchnorm_forward. */
heed_status heed_batchnorm_forward_relu(heed_batchnorm *l, const heed_tensor *x, heed_tensor *y);

/* Differentiates the last forward on the same x: through the batch
 * statistics if it ran in training mode, through the fixed affine if not.
 * Adds into dgamma, dbeta and (unless NULL) dx, shaped like x.
 * HEED_ERR_SHAPE when dy or dx is not shaped like x, or x is not shaped
 * like the last forward's input (or no forward ran yet). */
heed_status heed_batchnorm_backward(heed_batchnorm *l, const heed_tensor *x, const heed_tensor *dy,
                                    heed_tensor *dx);

/* Differentiates the last heed_batchnorm_forward_relu: as backward, with dy
 * taken as 0 where its output was not positive. That output is recomputed
 * from x exactly as forward computed it; y (the relu's output) is only
 * checked for shape and may be NULL. */
heed_status heed_batchnorm_backward_relu(heed_batchnorm *l, const heed_tensor *x,
                                         const heed_tensor *y, const heed_tensor *dy,
                                         heed_tensor *dx);

/* The inference-mode affine, per channel: scale[c] = gamma / sqrt(var + eps),
 * shift[c] = beta - mean * scale[c], from the running statistics. scale and
 * shift hold C floats each. HEED_ERR_ARG if the parameters have not been
 * allocated. */
heed_status heed_batchnorm_scale_shift(const heed_batchnorm *l, float *scale, float *shift);

#ifdef __cplusplus
}
#endif

#endif
