/* se.h -- squeeze-and-excitation channel attention (Hu et al., 2018).
 *
 *   heed_se *se;
 *   heed_se_new(&se, &(heed_se_cfg){.r = 8}, (int[3]){32, 28, 28}, &params, "att1");
 *   heed_layer_forward(&se->base, &x, &y);            // y = x * e per channel
 *   const heed_tensor *e = heed_se_weights(se);       // (N, C, 1, 1) in (0, 1)
 *
 * y = x * sigmoid(fc2(relu(fc1(gap(x))))), fc1: C -> C/r and fc2: C/r -> C
 * with biases (WORKLOADS.md `se(C, r)`), as in PyTorch's reference module.
 * The mobile networks' variants come from cfg, as torchvision's
 * SqueezeExcitation(C, hidden, activation, scale_activation) takes them:
 * the hidden width given itself, silu or hardswish in place of the relu
 * (EfficientNet uses silu) and hardsigmoid in place of the sigmoid
 * (MobileNetV3).
 * Parameters: "<name>.fc1.weight" (S, C), "<name>.fc1.bias", "<name>.fc2.weight"
 * (C, S), "<name>.fc2.bias", S the hidden width (C/r, or cfg.hidden when
 * given). Output shape = input shape. Layer type "se".
 */
#ifndef HEED_SE_H
#define HEED_SE_H

#include "channel_mlp.h"
#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_se_cfg {
    int r;             /* reduction: hidden width C/r (at least 1); 0 means 16 */
    int hidden;        /* the hidden width itself, in place of r; 0: C/r */
    heed_act_kind act; /* after fc1: HEED_ACT_RELU (0), HEED_ACT_SILU or HEED_ACT_HARDSWISH */
    heed_gate gate;    /* after fc2: HEED_GATE_SIGMOID (0) or HEED_GATE_HARDSIGMOID */
} heed_se_cfg;

typedef struct heed_se {
    heed_layer base;
    heed_se_cfg cfg;              /* r resolved (16 for 0) unless hidden was given */
    heed_channel_mlp mlp;         /* one branch; its fc1, fc2 are the children */
    heed_tensor s;                /* (N, C, 1, 1) squeezed: gap(x) */
    heed_tensor ds, de;           /* (N, C, 1, 1) gradients of s and of the weights e */
} heed_se;

/* Makes an SE module for inputs in[] = (C, H, W); the caller owns it
 * (heed_layer_free), its parameters live in *p. cfg NULL means the
 * defaults (r = 16, relu, sigmoid), as a zeroed cfg does. Errors:
 * HEED_ERR_ARG for a NULL p, a dimension < 1, r < 0 or C/r < 1, hidden < 0,
 * both r and hidden given, an act or gate not listed above, or a name longer than 43
 * characters (its fc1 and fc2 layers are named "<name>.fc1", "<name>.fc2",
 * and layer names hold 47; NULL means ""); heed_params_add's errors
 * (duplicate name); HEED_ERR_NOMEM. On failure *out is NULL and nothing
 * stays registered in p. */
heed_status heed_se_new(heed_se **out, const heed_se_cfg *cfg, const int in[3], heed_params *p,
                        const char *name);
/* x is (N, C, H, W) as in[] gave, any N; HEED_ERR_SHAPE otherwise. */
heed_status heed_se_forward(heed_se *l, const heed_tensor *x, heed_tensor *y);
/* After the forward on the same x: dx (unless NULL) += the input gradient,
 * fc1/fc2 gradients +=. HEED_ERR_SHAPE when x is not shaped as in[] gave,
 * dy or dx is not shaped like x, or no forward of x's batch came before. */
heed_status heed_se_backward(heed_se *l, const heed_tensor *x, const heed_tensor *dy, heed_tensor *dx);

/* The channel weights e of the last forward, (N, C, 1, 1). */
const heed_tensor *heed_se_weights(const heed_se *l);

#ifdef __cplusplus
}
#endif

#endif
