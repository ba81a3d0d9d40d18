/* dropout.h -- inverted dropout (PyTorch nn.Dropout).
 *
 *   heed_dropout *drop;
 *   heed_dropout_new(&drop, &(heed_dropout_cfg){.p = 0.5f, .seed = 1}, (int[3]){128, 1, 1},
 *                    &params, "drop");
 *   drop->base.training = 1;
 *   heed_dropout_forward(drop, &x, &y);          // about half of y zeroed, rest x * 2
 *   heed_dropout_backward(drop, &x, &dy, &dx);   // dx += dy * the same mask
 *   heed_layer_free(&drop->base);
 *
 * In training mode each element is kept with probability 1 - p and scaled
 * by 1 / (1 - p), so the expected output equals the input and inference
 * needs no rescaling: in inference mode the layer is the identity. The
 * mask comes from the layer's own PCG32 seeded with cfg.seed; it advances
 * with every training forward, so the sequence of masks depends only on
 * the seed and the shapes seen (not on threads). The layer owns its mask.
 */
#ifndef HEED_DROPOUT_H
#define HEED_DROPOUT_H

#include <stdint.h>

#include "layer.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_dropout_cfg {
    float p;       /* probability of zeroing an element, [0, 1) */
    uint64_t seed; /* of the mask sequence */
} heed_dropout_cfg;

typedef struct heed_dropout {
    heed_layer base;
    heed_dropout_cfg cfg;
    heed_rng rng;
    heed_scratch mask; /* (N, C, H, W) of the last training forward: 0 or 1 / (1 - p) */
    size_t masked;     /* elements the last forward masked; 0 after an inference one */
} heed_dropout;

/* Makes a dropout layer for inputs in[] = (C, H, W); the output has the
 * same shape. Dropout has no parameters, so params may be NULL. Errors:
 * HEED_ERR_ARG for a NULL cfg, p outside [0, 1) or a bad shape;
 * HEED_ERR_NOMEM. On failure *out is NULL. */
heed_status heed_dropout_new(heed_dropout **out, const heed_dropout_cfg *cfg, const int in[3],
                             heed_params *p, const char *name);

/* y = x * mask in training mode (drawing a new mask), y = x otherwise; y is
 * sized like x with heed_tensor_ensure. HEED_ERR_NOMEM if the mask cannot
 * grow. */
heed_status heed_dropout_forward(heed_dropout *l, const heed_tensor *x, heed_tensor *y);

/* dx += dy * mask of the last forward (dy if it was in inference mode);
 * dx NULL does nothing. dy and dx are shaped like x. HEED_ERR_SHAPE if the
 * shapes differ or x is not the size the last training forward masked. */
heed_status heed_dropout_backward(heed_dropout *l, const heed_tensor *x, const heed_tensor *dy,
                                  heed_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
