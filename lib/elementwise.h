/* elementwise.h -- the tensor arithmetic residual connections and attention
 * modules are wired with: sums, broadcast scaling, channel concatenation,
 * and the axpy/scale helpers optimizers use.
 *
 *   // SE: y = x * e, e (N, C, 1, 1) the excitation
 *   heed_mul_channel_forward(&x, &e, &y);
 *   heed_mul_channel_backward(&x, &e, &dy, &dx, &de);  // dx += dy e, de += sum_hw dy x
 *   // residual: y = branch + shortcut
 *   heed_add_forward(&branch, &shortcut, &y);
 *   heed_add_backward(&dy, &dbranch, &dshortcut);
 *
 * All tensors are float32 NCHW and owned by the caller. Outputs are sized
 * with heed_tensor_ensure, except that an output that already has the right
 * shape (a view into a larger buffer, or an input for in-place use where
 * allowed) is written where it is. Backward functions ADD (+=) into the
 * gradients they are given; a NULL gradient means it is not needed. Every
 * function that takes several tensors checks their shapes and returns
 * HEED_ERR_SHAPE with a message giving the shapes that disagree.
 */
#ifndef HEED_ELEMENTWISE_H
#define HEED_ELEMENTWISE_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = a + b; a and b have one shape, y gets it. y may be a or b. */
heed_status heed_add_forward(const heed_tensor *a, const heed_tensor *b, heed_tensor *y);

/* y = relu(a + b), as heed_add_forward then heed_act_forward(RELU) give it
 * bit for bit, in one pass: a residual block and the relu after it, in
 * inference. y may be a or b. */
heed_status heed_add_relu_forward(const heed_tensor *a, const heed_tensor *b, heed_tensor *y);

/* da += dy, db += dy; da and db (either may be NULL) are shaped like dy. */
heed_status heed_add_backward(const heed_tensor *dy, heed_tensor *da, heed_tensor *db);

/* Channel scaling (SE, CBAM channel attention): x (N, C, H, W), s (N, C, 1, 1):
 * y[n,c,h,w] = x[n,c,h,w] * s[n,c]; y is (N, C, H, W) and may be x. */
heed_status heed_mul_channel_forward(const heed_tensor *x, const heed_tensor *s, heed_tensor *y);

/* y = x * s + a (broadcast as above), then relu when `relu`: what
 * heed_mul_channel_forward then heed_add_forward (or heed_add_relu_forward)
 * give, bit for bit, in one pass (an SE block that ends a residual body,
 * with the block's sum, in inference). a is shaped like x, y gets that
 * shape; y may be x or a. */
heed_status heed_mul_channel_add_forward(const heed_tensor *x, const heed_tensor *s,
                                         const heed_tensor *a, int relu, heed_tensor *y);

/* dx += dy * s (broadcast over H, W); ds[n,c] += sum_{h,w} dy * x. dy and dx
 * are shaped like x, ds like s; dx or ds may be NULL. */
heed_status heed_mul_channel_backward(const heed_tensor *x, const heed_tensor *s,
                                      const heed_tensor *dy, heed_tensor *dx, heed_tensor *ds);

/* Spatial scaling (CBAM spatial attention): x (N, C, H, W), s (N, 1, H, W):
 * y[n,c,h,w] = x[n,c,h,w] * s[n,0,h,w]; y is (N, C, H, W) and may be x. */
heed_status heed_mul_spatial_forward(const heed_tensor *x, const heed_tensor *s, heed_tensor *y);

/* dx += dy * s (broadcast over C); ds[n,0,h,w] += sum_c dy * x. dy and dx
 * are shaped like x, ds like s; dx or ds may be NULL. */
heed_status heed_mul_spatial_backward(const heed_tensor *x, const heed_tensor *s,
                                      const heed_tensor *dy, heed_tensor *dx, heed_tensor *ds);

/* The input gradient of y = x * s where s is computed from x's global
 * average pool (squeeze-and-excitation): dx = dy * s + dpool / (H W) per
 * plane, with dpool (N, C, 1, 1) the gradient at the pool's output; with
 * `add`, dx = (dx + dy * s) + dpool / (H W). One pass: the same values as
 * heed_mul_channel_backward's dx and then heed_global_avg_pool_backward's. */
heed_status heed_mul_channel_pool_backward(const heed_tensor *dy, const heed_tensor *s,
                                           const heed_tensor *dpool, heed_tensor *dx, int add);

/* y (N, Ca+Cb, H, W) = a (N, Ca, H, W) followed by b (N, Cb, H, W) along
 * channels, as torch.cat([a, b], dim=1). y must be neither a nor b. */
heed_status heed_concat_forward(const heed_tensor *a, const heed_tensor *b, heed_tensor *y);

/* Splits dy (N, Ca+Cb, H, W): da += its first Ca channels, db += the rest.
 * With only one of da, db given, the other's channel count is inferred
 * from dy's. */
heed_status heed_concat_backward(const heed_tensor *dy, heed_tensor *da, heed_tensor *db);

/* y += alpha * x. x and y must hold the same number of elements (their
 * shapes may differ); otherwise y is left unchanged and the mismatch is
 * recorded as the last error (see heed_last_error). */
void heed_axpy(float alpha, const heed_tensor *x, heed_tensor *y);

/* x *= alpha. */
void heed_scale(float alpha, heed_tensor *x);

#ifdef __cplusplus
}
#endif

#endif
