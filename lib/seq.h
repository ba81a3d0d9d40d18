/* seq.h -- composite layers: a sequence of layers, and a residual block.
 *
 *   heed_seq *s;
 *   heed_seq_new(&s, (int[3]){1, 28, 28}, "stage1");
 *   heed_conv2d *conv;
 *   heed_conv2d_new(&conv, &cfg, heed_seq_out_shape(s, shape), &params, "stage1.conv1");
 *   heed_seq_append(s, &conv->base);                 // s now owns conv
 *
 * A sequence runs its children in order. How it keeps their outputs
 * depends on the mode:
 *
 *  - training: each child's output (and, in backward, each output's
 *    gradient) lives in tensors the sequence owns, so backward can hand
 *    every child the x, y and dy of its own forward. A batch norm followed
 *    by a relu runs as one pass (heed_batchnorm_forward_relu), so the batch
 *    norm's own output is never stored.
 *  - inference: a conv followed by a batch norm (in inference mode) and/or
 *    a relu runs as one fused convolution (heed_conv2d_forward_fused), and
 *    outputs alternate between two buffers, so memory is that of the two
 *    largest activations, whatever the depth. The buffers grow once per
 *    batch size and are reused: a forward allocates nothing in the steady
 *    state. A backward after an inference forward (Grad-CAM) first runs the
 *    forward again keeping every output, then proceeds as in training.
 *
 * A residual block computes y = body(x) + shortcut(x), with shortcut the
 * identity when it has none (shapes must then agree); both are sequences it
 * owns.
 */
#ifndef HEED_SEQ_H
#define HEED_SEQ_H

#include "layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_seq {
    heed_layer base;
    heed_layer **children; /* (count), owned */
    int count, cap;
    heed_tensor *acts;  /* (count) child outputs kept for backward; the last child writes to y */
    heed_tensor *grads; /* (count) gradients of those outputs */
    /* How the last forward ran each child (see seq.c); (cap). */
    unsigned char *plan;
    int planned;          /* 1 once a forward has set plan for the children there are now */
    int lean;             /* 1 if the last forward kept only the outputs inference needs */
    /* Inference: child outputs alternate between two buffers: a pair of
     * the network's work space for the sequence's depth and image size
     * (heed_work_pair), or own_pingpong. */
    heed_work *work; /* the network's, or NULL */
    int depth;       /* in the network */
    heed_tensor own_pingpong[2];
    heed_scratch affine;  /* (2, C) a fused batch norm's scale and shift */
    heed_layer **rejected; /* (nrejected) layers heed_seq_append refused: owned, never run */
    int nrejected;
} heed_seq;

/* An empty sequence with input shape in[3] (its output shape is its input's
 * until a child is appended). HEED_ERR_ARG for a name longer than 47
 * characters (a layer's name; NULL means ""); HEED_ERR_NOMEM. */
heed_status heed_seq_new(heed_seq **out, const int in[3], const char *name);

/* Appends a layer whose input shape must equal the sequence's current output
 * shape. The sequence takes ownership of l, also on failure: then l is not
 * appended (not run, not a child) but kept until the sequence is freed,
 * because the parameters it registered still point into it -- a
 * heed_params_alloc after the failure writes into live memory, not freed
 * memory. (Only if even keeping it fails for want of memory is l left
 * allocated, never freed.) Those parameters stay registered: a failed
 * build is best abandoned whole (free the sequence and the store).
 * Errors: HEED_ERR_SHAPE when the shapes differ; HEED_ERR_ARG for a NULL
 * l; HEED_ERR_NOMEM. */
heed_status heed_seq_append(heed_seq *s, heed_layer *l);

/* The sequence's current output shape, written to shape[3] and returned. */
int *heed_seq_out_shape(const heed_seq *s, int shape[3]);

/* The output of child i from the last training forward, or from the forward
 * a backward after an inference forward runs again (the last child's lives
 * in the caller's y). Not kept by an inference forward alone, nor for a
 * batch norm whose relu ran fused with it (the relu's output is there).
 * NULL when i is not in 0..count-1. */
const heed_tensor *heed_seq_activation(const heed_seq *s, int i);

typedef struct heed_residual {
    heed_layer base;
    heed_seq *body;
    heed_seq *shortcut; /* NULL: identity */
    heed_tensor body_out, short_out;
    int lean; /* 1 if the last forward wrote the body's output into y only */
    /* Set by a sequence around an inference forward whose next child is a
     * relu: y = relu(body + shortcut), the sum and the relu in one pass. */
    int fuse_relu;
} heed_residual;

/* Takes ownership of body and shortcut (NULL for identity), also on failure.
 * Their input shapes must be the block's, and their output shapes equal.
 * Errors: HEED_ERR_SHAPE; HEED_ERR_ARG for a name longer than 47
 * characters; HEED_ERR_NOMEM. On failure body and shortcut are freed
 * while the parameters their layers registered stay in the store, pointing
 * into them (the block is not given the store, so it cannot forget them):
 * never heed_params_alloc that store as it is. Either free it with the
 * rest of the failed build, or forget those parameters as a failing
 * constructor does, which leaves the store usable:
 *
 *   const int registered = params.count;   // before building body, shortcut
 *   ... build body and shortcut, registering into params ...
 *   if (heed_residual_new(&r, body, shortcut, name) != HEED_OK)
 *       heed_params_truncate(&params, registered);
 */
heed_status heed_residual_new(heed_residual **out, heed_seq *body, heed_seq *shortcut,
                              const char *name);

#ifdef __cplusplus
}
#endif

#endif
