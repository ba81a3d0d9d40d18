/* activation_impl.h -- internal (not installed): the hard activations'
 * formulas and the fused activations, shared by the activation layer, the
 * convolution's output pass (conv2d_impl.h) and the batch norm's fused
 * activation (batchnorm.c), so that fused and unfused give the same bits. */
#ifndef HEED_ACTIVATION_IMPL_H
#define HEED_ACTIVATION_IMPL_H

#include "layer.h" /* HEED_FUSE_* */

/* min(max(x + 3, 0), 6), written as PyTorch's CPU kernels write it: the
 * clamps are comparisons, not fmaxf/fminf, so that NaN passes through as
 * it does there (std::max/min). */
static inline float heed_relu6_shifted(float x) {
    float t = x + 3.0f;
    t = t < 0.0f ? 0.0f : t;
    return 6.0f < t ? 6.0f : t;
}

/* hardswish(x) = x min(max(x + 3, 0), 6) / 6, in PyTorch's order. */
static inline float heed_hardswish(float x) { return x * heed_relu6_shifted(x) / 6.0f; }

/* g hardswish'(x), PyTorch's scalar kernel: 0 below -3, g (x/3 + 1/2) up
 * to 3 (3/2 g at 3 itself), g above (and for NaN). Both sides are
 * computed before the select, so that the loops around it vectorize. */
static inline float heed_hardswish_grad(float x, float g) {
    const float mid = g * (x / 3.0f + 0.5f);
    return x < -3.0f ? 0.0f : x <= 3.0f ? mid : g;
}

/* A fused activation (HEED_FUSE_RELU or HEED_FUSE_HARDSWISH; 0 none) of v,
 * as the activation layer computes it: relu as v < 0 ? 0 : v, which keeps
 * a NaN as the relu layer does. */
static inline float heed_fused_act(float v, int act) {
    if (act == HEED_FUSE_RELU) return v < 0.0f ? 0.0f : v;
    return act == HEED_FUSE_HARDSWISH ? heed_hardswish(v) : v;
}

/* g act'(z) for a fused relu (its mask, z > 0) or hardswish. */
static inline float heed_fused_act_grad(float z, float g, int act) {
    if (act == HEED_FUSE_RELU) return z > 0.0f ? g : 0.0f;
    return heed_hardswish_grad(z, g);
}

#endif
