/* channel_mlp.h -- the channel attention MLP that SE and CBAM share:
 * e = sigmoid(sum_i fc2(relu(fc1(pooled_i)))) over one pooled vector (SE:
 * the average) or two (CBAM: the average and the maximum, through the same
 * fc1 and fc2). It is part of its module, not a layer of its own: the
 * module lists fc1 and fc2 as its children, owns the struct by value and
 * does the pooling and the scaling around it.
 *
 *   heed_channel_mlp mlp = {0};
 *   heed_channel_mlp_check("se", name, in, r, "fc1");        // before allocating the module
 *   heed_channel_mlp_new(&mlp, C, r, 1, params, name);       // "<name>.fc1.*", "<name>.fc2.*"
 *   heed_channel_mlp_forward(&mlp, &pooled);                 // mlp.e = (N, C, 1, 1)
 *   heed_channel_mlp_backward(&mlp, &pooled, &de, &dpooled); // fc grads +=, dpooled =
 *   heed_channel_mlp_free(&mlp);
 */
#ifndef HEED_CHANNEL_MLP_H
#define HEED_CHANNEL_MLP_H

#include "layer.h"
#include "linear.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_channel_mlp {
    heed_linear *fc1, *fc2;   /* owned: C -> C/r and C/r -> C, with biases */
    int branches;             /* pooled vectors per forward: 1 or 2 */
    /* forward intermediates, per branch */
    heed_tensor hidden[2];      /* (N, C/r, 1, 1) fc1 output */
    heed_tensor hidden_relu[2]; /* (N, C/r, 1, 1) */
    heed_tensor logits[2];      /* (N, C, 1, 1) fc2 output; with one branch fc2 writes a */
    heed_tensor a, e;           /* (N, C, 1, 1) summed logits, channel weights sigmoid(a) */
    /* backward scratch, reused by the branches in turn */
    heed_tensor dhidden, dhidden_relu; /* (N, C/r, 1, 1) */
    heed_tensor da;                    /* (N, C, 1, 1) */
} heed_channel_mlp;

/* The checks a module does before it allocates anything: HEED_ERR_ARG,
 * naming the module `type` ("se") and `name`, if the input shape in[] =
 * (C, H, W) has a dimension < 1, if r < 1 or C / r < 1 leaves no hidden
 * units, or if "<name>.<child>" would not fit a layer's name (47
 * characters), `child` being the module's longest child name ("fc1" for
 * SE, "conv" for CBAM): names are refused, never cut, as cut ones could
 * collide. */
heed_status heed_channel_mlp_check(const char *type, const char *name, const int in[3], int r,
                                   const char *child);

/* Creates fc1 (C -> C/r) then fc2 (C/r -> C) in *m, registering
 * "<name>.fc1.weight", "<name>.fc1.bias", "<name>.fc2.weight",
 * "<name>.fc2.bias" in that order. branches is 1 or 2. On failure frees
 * what it created and forgets what it registered (p as it was); errors
 * those of heed_linear_new. */
heed_status heed_channel_mlp_new(heed_channel_mlp *m, int c, int r, int branches, heed_params *p,
                                 const char *name);

/* pooled[0..branches) are (N, C, 1, 1); sets m->e (and the intermediates
 * its backward needs). Errors those of the primitives (shape mismatch). */
heed_status heed_channel_mlp_forward(heed_channel_mlp *m, const heed_tensor *pooled);

/* After the forward on the same pooled: de (N, C, 1, 1) the gradient of
 * the channel weights e. ADDS the fc1/fc2 parameter gradients (summed over
 * the branches) and, unless dpooled is NULL, SETS dpooled[0..branches) to
 * the gradients of the pooled vectors (sized here). */
heed_status heed_channel_mlp_backward(heed_channel_mlp *m, const heed_tensor *pooled,
                                      const heed_tensor *de, heed_tensor *dpooled);

/* Frees fc1, fc2 (either may be NULL) and the tensors; not m itself. */
void heed_channel_mlp_free(heed_channel_mlp *m);

#ifdef __cplusplus
}
#endif

#endif
