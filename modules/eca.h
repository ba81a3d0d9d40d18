/* eca.h -- efficient channel attention (Wang et al., ECA-Net, CVPR 2020).
 *
 *   heed_eca *eca;
 *   heed_eca_new(&eca, NULL, (int[3]){64, 28, 28}, &params, "att1"); // k from C: 3
 *   heed_layer_forward(&eca->base, &x, &y);          // y = x * e per channel
 *   const heed_tensor *e = heed_eca_weights(eca);    // (N, C, 1, 1) in (0, 1)
 *
 * SE's channel attention without its bottleneck: the pooled channels go
 * through one 1-D convolution across neighbouring channels instead of two
 * fully connected layers, k weights in all (3 for 64 channels, where SE
 * with r = 16 has 580), as the paper's reference module computes it:
 *   s = gap(x)                                     (N, C)
 *   z[c] = sum_j w[j] s[c + j - (k-1)/2]           zero outside 0..C-1
 *          (PyTorch's Conv1d(1, 1, k, padding=(k-1)/2, bias=False))
 *   y = x * sigmoid(z)                             broadcast over H, W
 * k = 0 picks it from C as the paper does (gamma 2, b 1):
 *   t = floor(|(log2(C) + 1) / 2|), k = t if t is odd else t + 1
 * (C = 16, 32, 64: 3; 128 to 1024: 5; 2048: 7), log2 C taken as ln C / ln 2 in
 * double, as Python's math.log(C, 2) computes it.
 * Parameter: "<name>.conv.weight" (1, 1, k), initialised as PyTorch's Conv1d
 * (uniform in +-1/sqrt(k)). Output shape = input shape. Layer type "eca".
 */
#ifndef HEED_ECA_H
#define HEED_ECA_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_eca_cfg {
    int k; /* taps of the convolution across channels, odd; 0 means from C (above) */
} heed_eca_cfg;

typedef struct heed_eca {
    heed_layer base;
    heed_eca_cfg cfg;    /* k resolved */
    float *w, *dw;       /* (1, 1, K) */
    heed_tensor s;       /* (N, C, 1, 1) squeezed: gap(x) */
    heed_tensor z, e;    /* (N, C, 1, 1) the convolution, and the weights sigmoid(z) */
    heed_tensor ds, de, dz; /* (N, C, 1, 1) their gradients */
} heed_eca;

/* The k that cfg.k = 0 picks for c channels (c >= 1). */
int heed_eca_kernel(int c);

/* Makes an ECA module for inputs in[] = (C, H, W); the caller owns it
 * (heed_layer_free), its parameter lives in *p. cfg NULL means k from C,
 * as a zeroed cfg does. Errors: HEED_ERR_ARG for a NULL p, a dimension < 1,
 * a negative or even k, or a name longer than HEED_LAYER_NAME_MAX (47)
 * characters; heed_params_add's errors (duplicate name);
 * HEED_ERR_NOMEM. On failure *out is NULL and nothing stays registered. */
heed_status heed_eca_new(heed_eca **out, const heed_eca_cfg *cfg, const int in[3], heed_params *p,
                         const char *name);
/* x is (N, C, H, W) as in[] gave, any N; HEED_ERR_SHAPE otherwise. */
heed_status heed_eca_forward(heed_eca *l, const heed_tensor *x, heed_tensor *y);
/* After the forward on the same x: dx (unless NULL) += the input gradient,
 * dw +=. HEED_ERR_SHAPE when x is not shaped as in[] gave, dy or dx is not
 * shaped like x, or no forward of x's batch came before. */
heed_status heed_eca_backward(heed_eca *l, const heed_tensor *x, const heed_tensor *dy, heed_tensor *dx);

/* The channel weights e of the last forward, (N, C, 1, 1). */
const heed_tensor *heed_eca_weights(const heed_eca *l);

#ifdef __cplusplus
}
#endif

#endif
