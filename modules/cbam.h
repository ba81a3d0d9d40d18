/* cbam.h -- convolutional block attention module (Woo et al., 2018):
 * channel attention, then spatial attention.
 *
 *   heed_cbam *cbam;
 *   heed_cbam_new(&cbam, &(heed_cbam_cfg){.r = 8, .k = 7}, (int[3]){64, 14, 14}, &params, "att2");
 *   heed_layer_forward(&cbam->base, &x, &y);
 *   const heed_tensor *e = heed_cbam_channel_weights(cbam); // (N, C, 1, 1)
 *   const heed_tensor *s = heed_cbam_spatial_map(cbam);     // (N, 1, H, W) in (0, 1)
 *
 * Exactly WORKLOADS.md's cbam(C, r, k):
 *   channel: a = fc2(relu(fc1(gap(x)))) + fc2(relu(fc1(gmp(x)))), shared fc1
 *            (C -> C/r) and fc2 (C/r -> C) with biases; x1 = x * sigmoid(a)
 *   spatial: m = concat(max_c x1, mean_c x1) (max first);
 *            s = sigmoid(bn(conv_kxk(m))) (conv 2 -> 1, padding k/2, no bias);
 *            y = x1 * s
 * Parameters: "<name>.fc1.*", "<name>.fc2.*", "<name>.conv.weight" (1, 2, k, k),
 * "<name>.bn.*". Output shape = input shape. Layer type "cbam".
 */
#ifndef HEED_CBAM_H
#define HEED_CBAM_H

#include "batchnorm.h"
#include "channel_mlp.h"
#include "conv2d.h"
#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_cbam_cfg {
    int r; /* reduction (0 means 16) */
    int k; /* spatial kernel, odd (0 means 7) */
} heed_cbam_cfg;

typedef struct heed_cbam {
    heed_layer base;
    heed_cbam_cfg cfg;
    heed_channel_mlp mlp;   /* two branches, average and max; its fc1, fc2 are children */
    heed_conv2d *conv;
    heed_batchnorm *bn;
    /* forward intermediates */
    heed_tensor pooled[2];       /* (N, C, 1, 1) [0] average, [1] maximum over H, W */
    heed_tensor m;               /* (N, 2, H, W) channel max and mean of x1 = x * mlp.e */
    heed_tensor ties;            /* (N, 1, H, W) channels equal to that maximum */
    heed_tensor c, b, s;         /* (N, 1, H, W) conv, bn, spatial map */
    /* gradients, same shapes (x1 = x * e is never stored: see cbam.c) */
    heed_tensor dpooled[2], de, dm, dc, db, ds;
    heed_tensor share;           /* (N, 2, H, W) the channel pool's gradient per max / mean */
    int ties_valid;              /* 1 if the last forward counted `ties` (training) */
} heed_cbam;

/* Makes a CBAM module for inputs in[] = (C, H, W); the caller owns it
 * (heed_layer_free), its parameters live in *p. cfg NULL means the
 * defaults (r = 16, k = 7), as a zeroed cfg does. Errors: HEED_ERR_ARG for
 * a NULL p, a dimension < 1, r < 0 or C/r < 1, an even or negative k, or
 * a name longer than 42 characters (its layers are named "<name>.fc1",
 * "<name>.fc2", "<name>.conv", "<name>.bn", and layer names hold 47; NULL
 * means ""); the errors of heed_params_add (duplicate name), of the conv
 * and of the batch norm; HEED_ERR_NOMEM. On failure *out is NULL and
 * nothing stays registered in p. */
heed_status heed_cbam_new(heed_cbam **out, const heed_cbam_cfg *cfg, const int in[3], heed_params *p,
                          const char *name);
/* x is (N, C, H, W) as in[] gave, any N; HEED_ERR_SHAPE otherwise. The
 * backward comes after the forward on the same x: HEED_ERR_SHAPE when dy
 * or dx is not shaped like x or no forward of x's batch came before. */
heed_status heed_cbam_forward(heed_cbam *l, const heed_tensor *x, heed_tensor *y);
heed_status heed_cbam_backward(heed_cbam *l, const heed_tensor *x, const heed_tensor *dy,
                               heed_tensor *dx);

/* Attention of the last forward. */
const heed_tensor *heed_cbam_channel_weights(const heed_cbam *l); /* (N, C, 1, 1) */
const heed_tensor *heed_cbam_spatial_map(const heed_cbam *l);     /* (N, 1, H, W) */

#ifdef __cplusplus
}
#endif

#endif
