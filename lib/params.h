/* params.h -- a model's parameters and gradients in one contiguous buffer.
 *
 *   heed_params p = {0};
 *   heed_conv2d *conv;
 *   heed_conv2d_new(&conv, &cfg, in, &p, "conv1");   // registers conv1.weight
 *   heed_params_alloc(&p, 42);                       // allocates, initialises
 *   ... forward/backward ...
 *   heed_params_zero_grad(&p);
 *   heed_params_free(&p);
 *
 * Layers register each tensor they need with heed_params_add, giving the
 * address of their own `float *` fields; heed_params_alloc then carves one
 * buffer of values and one of gradients into those fields. Zeroing
 * gradients, optimizer steps, saving, loading and gradient checks are then
 * one loop over `values`/`grads` (or over `items` where names matter).
 * Layers must not move in memory between heed_params_add and
 * heed_params_alloc (they are heap objects, so they do not), nor be freed
 * in between while their entries stay registered: heed_params_alloc would
 * write through their slots into freed memory. Constructors that fail
 * therefore forget what they registered (heed_params_truncate), and
 * heed_seq_append keeps a layer it refuses alive until the sequence is
 * freed (seq.h).
 *
 * Buffers (batch norm running statistics) live in the same store, flagged
 * HEED_PARAM_BUFFER: saved and loaded with the model, never trained.
 */
#ifndef HEED_PARAMS_H
#define HEED_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_init {
    HEED_INIT_ZEROS,
    HEED_INIT_ONES,
    HEED_INIT_UNIFORM,  /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's conv/linear default */
    HEED_INIT_HE_NORMAL /* N(0, 2/fan_in): He et al. for layers followed by relu */
} heed_init;

enum {
    HEED_PARAM_DECAY = 1,  /* weight decay applies (weights, not biases or BN) */
    HEED_PARAM_BUFFER = 2  /* not trained: optimizers skip it */
};

typedef struct heed_param {
    char name[64];    /* "stage1.conv1.weight" */
    int shape[4];     /* unused trailing dimensions are 1 */
    int ndim;
    size_t offset;    /* into values/grads, set by heed_params_alloc */
    size_t count;
    heed_init init;
    int fan_in;
    int flags;
    float **value_slot, **grad_slot; /* the layer's fields to point at the storage */
} heed_param;

typedef struct heed_params {
    heed_param *items;
    int count, cap;
    float *values; /* total floats, 64-byte aligned */
    float *grads;  /* total floats, zeroed by heed_params_zero_grad */
    size_t total;
} heed_params;

/* Registers a tensor of shape dims[0..ndim) named `name`. `grad_slot` may be
 * NULL for buffers. Fails on a duplicate name, a bad shape or after alloc. */
heed_status heed_params_add(heed_params *p, const char *name, int ndim, const int *dims,
                            heed_init init, int fan_in, int flags, float **value_slot,
                            float **grad_slot);

/* Forgets every tensor registered after the first `count`, so that a
 * constructor failing partway leaves the store as it found it, with no slot
 * pointing into the layer it then frees:
 *
 *   const int registered = p->count;
 *   ... heed_params_add calls, sub-layers' constructors ...
 *   if (st != HEED_OK) { heed_params_truncate(p, registered); free the layer; }
 *
 * HEED_ERR_ARG (and nothing changes) after heed_params_alloc, whose
 * offsets and slots would then be stale, or for a count outside
 * 0..p->count. */
heed_status heed_params_truncate(heed_params *p, int count);

/* Allocates values and grads (zeroed), initialises each tensor as
 * registered from `seed`, and points every layer's slots at its storage. */
heed_status heed_params_alloc(heed_params *p, uint64_t seed);

void heed_params_zero_grad(heed_params *p);

/* The entry named `name`, or NULL. */
heed_param *heed_params_find(heed_params *p, const char *name);

/* How a tensor of dst fared in heed_params_copy_matching. */
typedef enum heed_match {
    HEED_MATCH_COPIED, /* src has it, by name and shape: its values copied */
    HEED_MATCH_ABSENT, /* src has no tensor of that name */
    HEED_MATCH_SHAPE   /* src's tensor of that name has another shape */
} heed_match;

/* Copies into dst the values of each of its tensors that src holds under
 * the same name with the same shape (batch-norm statistics included, as
 * they go with the weights); dst's other tensors keep their values. For
 * fine-tuning: a trained network's weights into a new network that
 * differs from it, say in its classifier's outputs. *copied (may be NULL)
 * is how many tensors were copied; match (may be NULL) gets dst->count
 * outcomes, one per tensor of dst in order. HEED_ERR_ARG when dst or src
 * is NULL or not allocated. */
heed_status heed_params_copy_matching(heed_params *dst, const heed_params *src, int *copied,
                                      heed_match *match);

/* Number of trainable floats (buffers excluded). */
size_t heed_params_trainable(const heed_params *p);

/* Number of floats of every tensor, buffers included: known as soon as the
 * tensors are registered (p->total, after alloc, adds alignment). */
size_t heed_params_floats(const heed_params *p);

void heed_params_free(heed_params *p);

#ifdef __cplusplus
}
#endif

#endif
