/* channel_mlp.h -- the channel attention MLP that SE and CBAM share:
 * e = gate(sum_i fc2(act(fc1(pooled_i)))) over one pooled vector (SE: the
 * average) or two (CBAM: the average and the maximum, through the same fc1
 * and fc2). act is relu and gate sigmoid unless the module sets others
 * (SE's act= and gate=, for MobileNetV3's and EfficientNet's blocks).
 * It is part of its module, not a layer of its own: the module lists fc1
 * and fc2 as its children, owns the struct by value and does the pooling
 * and the scaling around it.
 *
 *   heed_channel_mlp mlp = {0};
 *   heed_channel_mlp_check("se", name, in, r, "fc1");        // before allocating the module
 *   heed_channel_mlp_new(&mlp, C, C / r, 1, params, name);   // "<name>.fc1.*", "<name>.fc2.*"
 *   heed_channel_mlp_forward(&mlp, &pooled);                 // mlp.e = (N, C, 1, 1)
 *   heed_channel_mlp_backward(&mlp, &pooled, &de, &dpooled); // fc grads +=, dpooled =
 *   heed_channel_mlp_free(&mlp);
 */
#ifndef HEED_CHANNEL_MLP_H
#define HEED_CHANNEL_MLP_H

#include "activation.h"
#include "layer.h"
#include "linear.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The function that turns the MLP's logits into channel weights in [0, 1]. */
typedef enum heed_gate {
    HEED_GATE_SIGMOID = 0,  /* SE's and CBAM's papers */
    HEED_GATE_HARDSIGMOID   /* MobileNetV3's: min(max(a + 3, 0), 6) / 6 */
} heed_gate;

/* The activation kind of a gate (HEED_ACT_SIGMOID, ...). */
heed_act_kind heed_gate_act(heed_gate gate);

typedef struct heed_channel_mlp {
    heed_linear *fc1, *fc2;   /* owned: C -> H and H -> C (H hidden units), with biases */
    int branches;             /* pooled vectors per forward: 1 or 2 */
    heed_act_kind act;        /* between fc1 and fc2: relu (the default), silu or hardswish */
    heed_gate gate;           /* after fc2 */
    /* forward intermediates, per branch */
    heed_tensor hidden[2];      /* (N, H, 1, 1) fc1 output */
    heed_tensor hidden_act[2];  /* (N, H, 1, 1) act(hidden) */
    heed_tensor logits[2];      /* (N, C, 1, 1) fc2 output; with one branch fc2 writes a */
    heed_tensor a, e;           /* (N, C, 1, 1) summed logits, channel weights gate(a) */
    /* backward scratch, reused by the branches in turn */
    heed_tensor dhidden, dhidden_act; /* (N, H, 1, 1) */
    heed_tensor da;                   /* (N, C, 1, 1) */
} heed_channel_mlp;

/* The checks a module does before it allocates anything: HEED_ERR_ARG,
 * naming the module `type` ("se") and `name`, if the input shape in[] =
 * (C, H, W) has a dimension < 1, if r < 1 or C / r < 1 leaves no hidden
 * units (r 0: the module takes a hidden width given as such, SE's
 * hidden=, and checks it itself), or if "<name>.<child>" would not fit a layer's name (47
 * characters), `child` being the module's longest child name ("fc1" for
 * SE, "conv" for CBAM): names are refused, never cut, as cut ones could
 * collide. */
heed_status heed_channel_mlp_check(const char *type, const char *name, const int in[3], int r,
                                   const char *child);

/* Creates fc1 (C -> hidden) then fc2 (hidden -> C) in *m, registering
 * "<name>.fc1.weight", "<name>.fc1.bias", "<name>.fc2.weight",
 * "<name>.fc2.bias" in that order, with act relu and gate sigmoid (the
 * module may set others before the first forward). branches is 1 or 2. On
 * failure frees what it created and forgets what it registered (p as it
 * was); errors those of heed_linear_new. */
heed_status heed_channel_mlp_new(heed_channel_mlp *m, int c, int hidden, int branches, heed_params *p,
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
