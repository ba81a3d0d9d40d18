/* net.h -- networks: layers read from a network description file (or built
 * in code), their parameters, forward and backward over a batch.
 *
 *   heed_net *net;
 *   if (heed_net_load(&net, "nets/fmnist-cbam.net", 42) != HEED_OK)
 *       fprintf(stderr, "%s\n", heed_last_error());   // "nets/x.net:7: conv: ..."
 *   heed_tensor logits = {0};
 *   heed_net_forward(net, &x, &logits);                 // x (N, 1, 28, 28)
 *   heed_net_free(net);
 *
 * The network file format is documented in nets/README.md. In short: one
 * layer a line, `TYPE key=value ...`, after an `input C H W` line; blocks
 * `residual ... [shortcut ...] end` and `seq ... end` nest; `#` starts a
 * comment. Each layer is named (name=..., else TYPE followed by its index
 * among its siblings of that type: conv1, conv2, ...); nested names are
 * joined with dots ("layer1.block1.conv2"), and parameter tensors are named
 * after their layer ("layer1.block1.conv2.weight").
 */
#ifndef HEED_NET_H
#define HEED_NET_H

#include <stdint.h>

#include "layer.h"
#include "params.h"
#include "seq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_net {
    heed_seq *root;      /* the top-level sequence, named "" */
    heed_params params;  /* every layer's parameters, allocated; optimizers take &net->params */
    int in_c, in_h, in_w;
    char *source;        /* the description text it was built from (NULL if built in code) */
    heed_work work;      /* the work space its layers share (heed_work) */
} heed_net;

/* Builds a network from description text; `origin` names it in errors
 * ("nets/x.net"). Parameters are allocated and initialised from `seed`. */
heed_status heed_net_parse(heed_net **out, const char *text, const char *origin, uint64_t seed);

/* Reads and parses a network file. */
heed_status heed_net_load(heed_net **out, const char *path, uint64_t seed);

/* Reads a network file as heed_net_load does, with its parameters
 * registered (names, shapes, counts) but neither allocated nor
 * initialised: a network's layers, shapes, parameter counts and FLOPs at
 * once, whatever its size (heed info). Such a network cannot run: its
 * layers report their parameters unallocated. */
heed_status heed_net_describe(heed_net **out, const char *path);

/* Wraps a sequence built in code and its (allocated) parameters; the net
 * takes ownership of both. The store is MOVED: net->params becomes the
 * store and *params is left empty (zeroed), so anything holding the
 * address `params` sees no parameters from then on -- an optimizer
 * initialised on it before wrapping would step over nothing and the
 * weights would never change. Wrap first, then initialise optimizers (and
 * anything else that keeps a pointer to the store) on &net->params:
 *
 *   heed_net_wrap(&net, seq, &params);                // params now empty
 *   heed_optim_init(&opt, &cfg, &net->params);        // not &params
 *
 * Such a network has no description text (source NULL), so it cannot be
 * saved as a model (heed_model_save: HEED_ERR_ARG). On failure
 * (HEED_ERR_NOMEM) nothing is taken: root and *params stay the caller's. */
heed_status heed_net_wrap(heed_net **out, heed_seq *root, heed_params *params);

/* y (N, out) = net(x); x must be (N, in_c, in_h, in_w). */
heed_status heed_net_forward(heed_net *net, const heed_tensor *x, heed_tensor *y);

/* Backward after a forward on the same x: parameter gradients += , and the
 * input gradient into dx (NULL if not needed). HEED_ERR_ARG, nothing
 * added, when no forward ran before it. */
heed_status heed_net_backward(heed_net *net, const heed_tensor *x, const heed_tensor *y,
                              const heed_tensor *dy, heed_tensor *dx);

void heed_net_set_training(heed_net *net, int training);

/* Freezes (1) or thaws (0) every layer: a promise that the parameters stay
 * as they are meanwhile (layer.h's `frozen`), which lets inference skip
 * checking the copies layers derive from them. For serving a loaded model;
 * thaw before changing parameters (loading, training). */
void heed_net_set_frozen(heed_net *net, int frozen);

/* After a training forward, before backward: hands the batch's labels to
 * the layers that need them (RAM) and ADDS their loss terms to *loss. A
 * no-op for networks without such layers. */
heed_status heed_net_set_targets(heed_net *net, const int *labels, int n, double *loss);

/* Restarts the random streams of the layers that draw random numbers
 * (dropout, RAM) from `seed`. */
void heed_net_reseed(heed_net *net, uint64_t seed);

/* The layer named `name` (searching nested blocks), or NULL. */
heed_layer *heed_net_find(heed_net *net, const char *name);

/* Visits every layer depth-first with its nesting depth (the root is not
 * visited). */
void heed_net_visit(heed_net *net, void (*fn)(heed_layer *l, int depth, void *ctx), void *ctx);

void heed_net_free(heed_net *net);

/* ---- for layer types defined outside lib/ (modules) -------------------- */

/* The key=value settings of one line of a network file. */
typedef struct heed_settings heed_settings;

/* Reads an integer setting; `def` when absent. HEED_ERR_ARG if malformed. */
heed_status heed_settings_int(heed_settings *s, const char *key, int def, int *out);
heed_status heed_settings_float(heed_settings *s, const char *key, float def, float *out);
/* A required integer setting. */
heed_status heed_settings_need_int(heed_settings *s, const char *key, int *out);
/* A setting that is one of the words in `choices` (NULL-terminated): its
 * index in *out, `def` when absent. HEED_ERR_ARG, listing the words,
 * for any other value. */
heed_status heed_settings_choice(heed_settings *s, const char *key, const char *const *choices, int def,
                                 int *out);

typedef heed_status (*heed_layer_builder)(heed_layer **out, heed_settings *s, const int in[3],
                                          heed_params *p, const char *name);

typedef struct heed_layer_type {
    const char *keyword; /* as written in network files */
    heed_layer_builder build;
    const char *settings; /* for error messages and docs: "out k stride pad ..." */
} heed_layer_type;

/* The attention modules' layer types (modules/modules.c), NULL-terminated. */
extern const heed_layer_type heed_module_layer_types[];

#ifdef __cplusplus
}
#endif

#endif
