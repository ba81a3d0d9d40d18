/* ram.h -- the recurrent attention model (RAM; Mnih et al., "Recurrent
 * Models of Visual Attention", 2014), as one layer.
 *
 *   heed_ram *ram;
 *   heed_ram_cfg cfg = heed_ram_defaults();             // W3: 6 glimpses of 12x12 x 3 scales
 *   heed_ram_new(&ram, &cfg, (int[3]){1, 60, 60}, &params, "ram");
 *   heed_params_alloc(&params, seed);
 *   heed_layer_set_training(&ram->base, 1);
 *   heed_layer_forward(&ram->base, &x, &logits);        // x (N, 1, 60, 60) in [0, 1]
 *   heed_softmax_cross_entropy(&logits, labels, &loss, NULL, &dlogits);
 *   heed_layer_set_targets(&ram->base, labels, N, &loss); // reward, REINFORCE, baseline
 *   heed_layer_backward(&ram->base, &x, &logits, &dlogits, NULL);
 *   const heed_tensor *where = heed_ram_locations(ram); // (N, T, 2, 1): x, y per step
 *
 * The model, for an image x (C, H, W) and T glimpses (WORKLOADS.md W3):
 *
 *   l_0 ~ U[-1, 1]^2                                    location (x, y); (0,0) the centre
 *   for t = 0 .. T-1:
 *     p_t = sensor(x, l_t)          `scales` square patches centred at l_t: the first
 *                                   patch x patch pixels, each next twice as wide and
 *                                   block-averaged down to patch x patch; zero outside
 *                                   the image; the centre in pixels is
 *                                   round((l + 1) / 2 * W) for x (H for y), rounded half
 *                                   to even, shared by every scale; the patch of side s
 *                                   starts at centre - s/2. Finest scale first.
 *     h_g = relu(fc_g(p_t))         (scales*C*patch*patch -> glimpse_hidden)
 *     h_l = relu(fc_l(l_t))         (2 -> loc_hidden)
 *     g_t = relu(fc_gg(h_g) + fc_gl(h_l))                    (-> hidden)
 *     h_t = relu(fc_hh(h_{t-1}) + fc_hg(g_t)), h_{-1} = 0    (hidden -> hidden)
 *           (lstm=1: an LSTM cell with input g_t instead, PyTorch LSTMCell gates)
 *     b_t = fc_base(h_t)                                     baseline (training only)
 *     if t < T-1:  mu_t = tanh(fc_loc(h_t));
 *                  training:  s ~ N(mu_t, std^2), l_{t+1} = clamp(s, -1, 1)
 *                  inference: l_{t+1} = mu_t
 *   logits = fc_act(h_{T-1})                                 (-> classes)
 *
 * Training loss (heed_layer_set_targets adds the last two terms; the caller
 * computes the cross-entropy and hands its gradient to backward as dy):
 *   R_i = 1 if argmax logits_i = label_i else 0
 *   CE + mean_i( -sum_{t<T-1} log N(s_t; mu_t, std^2) (R_i - b_t) ) + mean_{i,t} (b_t - R_i)^2
 * with the advantage R - b_t a constant (not differentiated) and the
 * log-probability of the unclamped sample s. Everything else is
 * differentiated as PyTorch's autograd would: the baseline's MSE reaches
 * h_t through fc_base (and so the core and glimpse networks). Backward runs through the
 * whole unrolled sequence (BPTT); the sensor passes no gradient to l.
 *
 * In inference with samples = M > 1 the layer runs M glimpse sequences
 * (each with its own l_0) and outputs log(mean of their softmax
 * probabilities), which ranks classes by the averaged probability.
 *
 * Parameters: "<name>.fc_g.weight", "<name>.fc_g.bias", and the same for
 * fc_l, fc_gg, fc_gl, fc_hh, fc_hg (lstm: fc_ih, fc_hh with 4*hidden
 * outputs, gates i, f, g, o), fc_loc, fc_base, fc_act; initialised like
 * PyTorch's nn.Linear. Random draws come from the layer's own PCG32
 * (cfg.seed; heed_layer_reseed restarts it), in a fixed order, never per
 * thread: a given seed gives the same locations whatever the thread count.
 */
#ifndef HEED_RAM_H
#define HEED_RAM_H

#include "layer.h"
#include "linear.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_ram_cfg {
    int glimpses;       /* T >= 1 */
    int patch;          /* side of the finest patch, >= 1 */
    int scales;         /* patches per glimpse, >= 1 */
    int glimpse_hidden; /* h_g size */
    int loc_hidden;     /* h_l size */
    int hidden;         /* g_t and h_t size */
    int classes;        /* outputs */
    int lstm;           /* 0: ReLU recurrent core (W3); 1: LSTM core */
    float std;          /* of the location policy, > 0 */
    int samples;        /* glimpse sequences averaged in inference, >= 1 (training runs one) */
    uint64_t seed;      /* of the layer's random stream */
} heed_ram_cfg;

/* W3's settings: 6 glimpses, patch 12, 3 scales, 128/128/256, 10 classes,
 * ReLU core, std 0.17, 1 sample, seed 1. */
heed_ram_cfg heed_ram_defaults(void);

/* The layer; `base` first (a heed_ram * is a heed_layer *). The fields
 * after it belong to ram.c; tests read the caches. Per-step caches are
 * step-major, (T, R, F) stored as a (T*R, F, 1, 1) tensor, so step t is the
 * contiguous (R, F) matrix at row t*R and the layers that do not recur
 * run their backward over all T*R rows at once. R = rows: N in training,
 * samples*N in inference (row m*N + i is sample m of image i). */
typedef struct heed_ram heed_ram;
struct heed_ram {
    heed_layer base;
    heed_ram_cfg cfg;
    heed_rng rng;
    int depth;  /* D = scales*C*patch*patch, fc_g's input */
    int gates;  /* G: core pre-activation width, hidden (relu) or 4*hidden (lstm) */
    /* Owned; not listed as children: each runs T times per forward and the
     * layer counts their FLOPs itself. fc_hg is NULL with lstm, fc_ih without. */
    heed_linear *fc_g, *fc_l, *fc_gg, *fc_gl, *fc_hh, *fc_hg, *fc_ih, *fc_loc, *fc_base, *fc_act;
    /* The last forward. */
    int n, rows;    /* images N, and rows R */
    int trained;    /* it ran in training mode */
    int valid;      /* it completed (backward and set_targets need one) */
    int targets;    /* set_targets has run for it */
    heed_tensor loc;       /* (T, R, 2) l_t as (x, y) */
    heed_tensor pt;        /* (T, R, D) sensor output */
    heed_tensor hg;        /* (T, R, glimpse_hidden) after relu */
    heed_tensor hl;        /* (T, R, loc_hidden) after relu */
    heed_tensor g;         /* (T, R, hidden) after relu */
    heed_tensor core;      /* (T, R, G) relu: h_t; lstm: gates i, f, g, o after their activations */
    heed_tensor h;         /* (T, R, hidden); relu: aliases core's storage */
    heed_tensor c, tc;     /* lstm (T, R, hidden) cell and tanh(cell) */
    heed_tensor mu;        /* (T-1, R, 2) policy means (at least one step allocated) */
    heed_tensor s;         /* (T-1, R, 2) unclamped samples, training */
    heed_tensor b;         /* (T, R, 1) baselines, training */
    heed_tensor logits;    /* (R, classes) */
    heed_tensor reward;    /* (T, N, 1) R_i repeated per step, from set_targets */
    heed_tensor where;     /* (N, T, 2, 1) locations, for heed_ram_locations */
    heed_tensor seen;      /* (N, T*scales*C, patch, patch), for heed_ram_patches */
    int seen_ready;        /* seen holds the last forward's patches */
    /* Backward work buffers (gradients of the caches above). */
    heed_tensor dh, dpre, dg, dgp;   /* (T, R, hidden), (T, R, G), (T, R, hidden) x 2 */
    heed_tensor dhg, dhgp, dhl, dhlp; /* (T, R, glimpse_hidden) x 2, (T, R, loc_hidden) x 2 */
    heed_tensor dpt;                  /* (T, R, D), only when dx is asked for */
    heed_tensor dmu, dmup;            /* (T-1, R, 2) */
    heed_tensor db;                   /* (T, R, 1) baseline MSE gradient, from set_targets */
    heed_tensor dc;                   /* lstm (R, hidden) cell gradient carried back */
    heed_tensor replay;               /* (R, T, 2, 1) see heed_ram_replay */
    int replaying;
};

/* in[3] = (C, H, W) of the images. Output per image (classes, 1, 1). The
 * layer is owned by the caller (heed_layer_free), its parameters live in
 * *p, and its fully connected parts are private (not children). Errors
 * (on failure *out is NULL and nothing stays registered in p):
 * HEED_ERR_ARG for a NULL cfg or p, or a setting out of range, the message naming it:
 * glimpses 1..1000, scales 1..16, patch 1..min(H, W), the largest patch
 * side patch * 2^(scales-1) at most 2 * max(H, W) (a wider one sees only
 * zeros beyond the image from anywhere), hidden sizes and classes >= 1,
 * lstm 0 or 1, std > 0 and finite, samples 1..1000; a name longer than 39
 * characters (its parts are named "<name>.fc_base" and so on, and layer
 * names hold 47; NULL means ""); HEED_ERR_NOMEM. */
heed_status heed_ram_new(heed_ram **out, const heed_ram_cfg *cfg, const int in[3], heed_params *p,
                         const char *name);

const heed_ram_cfg *heed_ram_config(const heed_ram *r);

/* Typed forward/backward (heed_layer_forward/backward dispatch to them).
 * x (N, C, H, W) in [0, 1]; y sized (N, classes, 1, 1): the logits (in
 * inference with samples > 1, log of the mean softmax). Backward ADDS into
 * the parameter gradients and, unless dx is NULL, the gradient of the
 * sensor's pixels into dx; locations are constants to it. After a training
 * forward it needs heed_ram_set_targets first (HEED_ERR_ARG otherwise); it
 * refuses a multi-sample inference forward (HEED_ERR_ARG). HEED_ERR_SHAPE
 * for tensors that do not fit the last forward. */
heed_status heed_ram_forward(heed_ram *r, const heed_tensor *x, heed_tensor *y);
heed_status heed_ram_backward(heed_ram *r, const heed_tensor *x, const heed_tensor *dy,
                              heed_tensor *dx);

/* The set_targets op: labels (n) of the last training forward's images.
 * Computes the rewards, ADDS the REINFORCE and baseline terms to *loss and
 * keeps what backward needs. After an inference forward it adds nothing.
 * HEED_ERR_ARG before any forward or for a label out of range,
 * HEED_ERR_SHAPE if n is not the forward's batch. */
heed_status heed_ram_set_targets(heed_ram *r, const int *labels, int n, double *loss);

/* For tests only: later forwards take their random draws from draws
 * (R, T, 2, 1) instead of the layer's stream: draws[:, 0] is l_0 and, in
 * training, draws[:, t] for t >= 1 is the unclamped sample s_{t-1}
 * (l_t = clamp(s_{t-1}, -1, 1)); inference takes only l_0. Holding the
 * locations fixed makes the loss a differentiable function of the
 * parameters, which gradient checks need. The tensor is copied; NULL turns
 * replaying off. A forward whose R differs fails with HEED_ERR_SHAPE. */
heed_status heed_ram_replay(heed_ram *r, const heed_tensor *draws);

/* What the last forward looked at (its first sample when samples > 1):
 * locations (N, T, 2, 1) as (x, y) in [-1, 1]; patches
 * (N, T * scales * C, patch, patch), per step the scales finest first, each
 * patch as the network saw it (after block averaging). Owned by the layer,
 * valid until its next forward; empty before the first. The patches are
 * gathered from the layer's own per-step rows at the first call after a
 * forward (hence the layer is not const), so a forward nobody inspects
 * does not copy them. */
const heed_tensor *heed_ram_locations(const heed_ram *r);
const heed_tensor *heed_ram_patches(heed_ram *r);

/* The glimpse sensor alone: patches (N, scales * C, patch, patch) of x
 * (N, C, H, W) at locations loc (N, 2, 1, 1); sized here (a view of the
 * right size is written in place). Locations outside [-1, 1] only move the
 * patches further out. HEED_ERR_SHAPE if loc does not hold N (x, y) pairs,
 * HEED_ERR_ARG for patch or scales < 1, a largest patch side over 2^20 or
 * a non-finite location. */
heed_status heed_ram_sensor(const heed_tensor *x, const heed_tensor *loc, int patch, int scales,
                            heed_tensor *patches);

/* Its transpose (the sensor is linear in x): dx (N, C, H, W) += the
 * gradient dpatches (N, scales * C, patch, patch) scattered back to the
 * pixels each patch value averaged. Same errors, and HEED_ERR_SHAPE for
 * dpatches or dx of the wrong shape. */
heed_status heed_ram_sensor_backward(const heed_tensor *loc, int patch, int scales,
                                     const heed_tensor *dpatches, heed_tensor *dx);

#ifdef __cplusplus
}
#endif

#endif
