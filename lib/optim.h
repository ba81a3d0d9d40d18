/* optim.h -- SGD (with momentum, Nesterov) and AdamW over a parameter store.
 *
 *   heed_optim opt;
 *   heed_optim_cfg cfg = {.kind = HEED_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f,
 *                         .weight_decay = 5e-4f};
 *   if (heed_optim_init(&opt, &cfg, &params) != HEED_OK) ...
 *   for (long step = 0; step < steps; step++) {
 *       heed_params_zero_grad(&params);
 *       ... forward, loss, backward (fills params.grads) ...
 *       heed_optim_step(&opt, heed_schedule_lr(&sched, step));
 *   }
 *   heed_optim_free(&opt);
 *
 * The updates follow PyTorch's torch.optim.SGD (dampening 0) and
 * torch.optim.AdamW exactly, with one difference in scope: PyTorch decays
 * every tensor of a parameter group, heed decays only the entries flagged
 * HEED_PARAM_DECAY (weights; not biases or batch-norm scales and shifts),
 * the usual "no decay on biases and norms" parameter grouping. Entries
 * flagged HEED_PARAM_BUFFER (running statistics) are never touched.
 *
 * Checkpoints: the optimizer's whole state is `steps` and the arrays `m`
 * and `v`. Each has params->total floats laid out exactly like
 * params->values (same offsets per entry), or is NULL when the method does
 * not use it:
 *   SGD, momentum 0:  m = NULL,              v = NULL
 *   SGD, momentum>0:  m = momentum buffers,  v = NULL
 *   AdamW:            m = first moments,     v = second moments
 * To resume, heed_optim_init with the same configuration and parameters,
 * then copy the saved arrays into m and v and set steps. The optimizer owns
 * m and v; heed_optim_free releases them.
 */
#ifndef HEED_OPTIM_H
#define HEED_OPTIM_H

#include "error.h"
#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_optim_kind { HEED_OPTIM_SGD, HEED_OPTIM_ADAMW } heed_optim_kind;

typedef struct heed_optim_cfg {
    heed_optim_kind kind;
    float lr;           /* base learning rate (for the schedule); >= 0 */
    float momentum;     /* SGD: [0, 1) */
    float weight_decay; /* >= 0, on HEED_PARAM_DECAY entries only */
    int nesterov;       /* SGD: Nesterov momentum (needs momentum > 0) */
    float beta1, beta2; /* AdamW: [0, 1); 0 means the defaults 0.9 and 0.999 */
    float eps;          /* AdamW: > 0; 0 means the default 1e-8 */
} heed_optim_cfg;

typedef struct heed_optim {
    heed_optim_cfg cfg;  /* as given, with AdamW's defaults filled in */
    heed_params *params; /* borrowed: must outlive the optimizer */
    float *m;            /* (total) momentum buffers / first moments, or NULL */
    float *v;            /* (total) second moments (AdamW), or NULL */
    long steps;          /* updates taken so far */
} heed_optim;

/* Prepares *o to update `params`, which must already be allocated
 * (heed_params_alloc), and zeroes its state. The optimizer keeps a pointer
 * to params: for a network wrapped with heed_net_wrap, which moves the store
 * into the network and empties the caller's, pass &net->params (an
 * optimizer made on the emptied store updates nothing). Errors: HEED_ERR_ARG (unknown kind, a setting out of range,
 * Nesterov without momentum, parameters not allocated), HEED_ERR_NOMEM.
 * On failure *o is left empty (safe to heed_optim_free). */
heed_status heed_optim_init(heed_optim *o, const heed_optim_cfg *cfg, heed_params *params);

/* One update of every trainable entry from params->grads, with learning
 * rate `lr` for this step (e.g. heed_schedule_lr(&s, o->steps), or
 * o->cfg.lr). Leaves the gradients as they are.
 *
 *   SGD:    g = grad + wd w;  b = g (first step) or momentum b + g;
 *           g = g + momentum b (Nesterov) or b (when momentum > 0);
 *           w -= lr g
 *   AdamW:  t = steps + 1;  w -= lr wd w;
 *           m = b1 m + (1 - b1) grad;  v = b2 v + (1 - b2) grad^2;
 *           w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 */
void heed_optim_step(heed_optim *o, float lr);

/* Releases m and v; leaves *o empty. Safe on an empty or failed optimizer. */
void heed_optim_free(heed_optim *o);

/* "sgd" or "adamw" (any case) into *out; HEED_ERR_ARG otherwise. */
heed_status heed_optim_parse(const char *name, heed_optim_kind *out);

#ifdef __cplusplus
}
#endif

#endif
