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
 * with the advantage R - b_t a constant (not differentiated), the
 * log-probability of the unclamped sample s, and the baseline's gradient
 * stopping at fc_base (h_t does not receive it). Backward runs through the
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
#include "rng.h"

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
    int samples;        /* glimpse sequences averaged in inference, >= 1 */
    uint64_t seed;      /* of the layer's random stream */
} heed_ram_cfg;

/* W3's settings: 6 glimpses, patch 12, 3 scales, 128/128/256, 10 classes,
 * ReLU core, std 0.17, 1 sample, seed 1. */
heed_ram_cfg heed_ram_defaults(void);

/* The layer; `base` first (a heed_ram * is a heed_layer *). The fields
 * after it belong to ram.c. */
typedef struct heed_ram heed_ram;

/* in[3] = (C, H, W) of the images. Output per image (classes, 1, 1).
 * HEED_ERR_ARG for a setting out of range (the message names it). */
heed_status heed_ram_new(heed_ram **out, const heed_ram_cfg *cfg, const int in[3], heed_params *p,
                         const char *name);

const heed_ram_cfg *heed_ram_config(const heed_ram *r);

/* What the last forward looked at (its first sample when samples > 1):
 * locations (N, T, 2, 1) as (x, y) in [-1, 1]; patches
 * (N, T * scales * C, patch, patch), per step the scales finest first, each
 * patch as the network saw it (after block averaging). Owned by the layer,
 * valid until its next forward. */
const heed_tensor *heed_ram_locations(const heed_ram *r);
const heed_tensor *heed_ram_patches(const heed_ram *r);

/* The glimpse sensor alone: patches (N, scales * C, patch, patch) of x
 * (N, C, H, W) at locations loc (N, 2, 1, 1); sized here. */
heed_status heed_ram_sensor(const heed_tensor *x, const heed_tensor *loc, int patch, int scales,
                            heed_tensor *patches);

#endif
