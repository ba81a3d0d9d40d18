/* activation_impl.h -- internal (not installed): the hard activations'
 * formulas, shared by the activation layer and the convolution's output
 * pass (conv2d_impl.h), so that fused and unfused give the same bits. */
#ifndef HEED_ACTIVATION_IMPL_H
#define HEED_ACTIVATION_IMPL_H

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

#endif
