/* ram_backward.c -- backpropagation through time for the recurrent
 * attention model (the model: ram.h; the forward and the losses: ram.c).
 *
 * N images, R_i their rewards, b the baselines, mu the policy means and s
 * the samples of the last training forward. The advantage adv = R - b and
 * the locations are constants (the samples are detached; the sensor is
 * piecewise constant in l):
 *   dh_{T-1} += dlogits fc_act
 *   dmu_t = -(s_t - mu_t) adv_t / (N std^2);  dh_t += (dmu_t (1 - mu_t^2)) fc_loc
 *   db = 2 (b - R) / (N T);  dh_t += db_t fc_base (the baseline's MSE trains
 *        the core too: only the advantage is detached, as in WORKLOADS.md's
 *        peer, where b_t = fc_base(h_t) is not)
 *   for t = T-1 .. 0 (BPTT): da_t = core'(dh_t);  dh_{t-1} += da_t fc_hh
 *     relu: da = dh [h > 0]
 *     lstm: dc = dc_next f_{t+1} + dh o (1 - tanh^2 c);  da = (dc gg i(1-i),
 *           dc c_{t-1} f(1-f), dc i (1-gg^2), dh tanh(c) o(1-o))
 *   then, the rest not being recurrent, over all T R rows at once:
 *   dg = da fc_hg (fc_ih) -> g's relu -> fc_gg, fc_gl -> their relus -> fc_g, fc_l,
 *   and dx += sensor^T dp.
 * Parameter gradients of every fc come from one product over all the steps
 * it ran (fc_hh: steps 1 .. T-1, plus its bias at step 0).
 */
#include "ram.h"
#include "ram_impl.h"

#include "activation.h"
#include "gemm.h"

static heed_status ensure_rows(heed_tensor *t, int rows, int F) {
    return heed_tensor_ensure(t, rows, F, 1, 1);
}

/* BPTT through the relu core: dpre = da_t for every step. */
static heed_status relu_core_backward(heed_ram *r, int T, int R) {
    const int H = r->cfg.hidden;
    for (int t = T - 1; t >= 0; t--) {
        heed_tensor ht = steps(&r->h, t, 1, R, H), dht = steps(&r->dh, t, 1, R, H);
        heed_tensor dat = steps(&r->dpre, t, 1, R, H);
        HEED_TRY(heed_act_backward(HEED_ACT_RELU, 0.0f, NULL, &ht, &dht, &dat));
        if (t > 0)
            HEED_TRY(heed_gemm(0, 0, R, H, H, 1.0f, dat.data, H, r->fc_hh->w, H, 1.0f,
                               r->dh.data + (size_t)(t - 1) * R * H, H));
    }
    return HEED_OK;
}

static heed_status lstm_core_backward(heed_ram *r, int T, int R) {
    const int H = r->cfg.hidden, G = r->gates;
    HEED_TRY(ensure_rows(&r->dc, R, H));
    heed_tensor_zero(&r->dc);
    float *dc = r->dc.data;
    for (int t = T - 1; t >= 0; t--) {
        const float *a = r->core.data + (size_t)t * R * G, *tc = r->tc.data + (size_t)t * R * H;
        const float *cp = t > 0 ? r->c.data + (size_t)(t - 1) * R * H : NULL;
        const float *dh = r->dh.data + (size_t)t * R * H;
        float *da = r->dpre.data + (size_t)t * R * G;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < H; j++) {
                const size_t k = (size_t)i * H + j, q = (size_t)i * G + j;
                const float ig = a[q], fg = a[q + H], gg = a[q + 2 * H], og = a[q + 3 * H];
                const float dcv = dc[k] + dh[k] * og * (1.0f - tc[k] * tc[k]);
                da[q] = dcv * gg * ig * (1.0f - ig);
                da[q + H] = cp ? dcv * cp[k] * fg * (1.0f - fg) : 0.0f;
                da[q + 2 * H] = dcv * ig * (1.0f - gg * gg);
                da[q + 3 * H] = dh[k] * tc[k] * og * (1.0f - og);
                dc[k] = dcv * fg;
            }
        if (t > 0)
            HEED_TRY(heed_gemm(0, 0, R, H, G, 1.0f, da, G, r->fc_hh->w, H, 1.0f,
                               r->dh.data + (size_t)(t - 1) * R * H, H));
    }
    return HEED_OK;
}

/* The policy's REINFORCE gradient into dh_t through tanh and fc_loc, and the
 * baseline's MSE gradient through fc_base into dh_t. */
static heed_status policy_backward(heed_ram *r, int T, int R) {
    const int H = r->cfg.hidden;
    if (T > 1) {
        heed_tensor mu = steps(&r->mu, 0, T - 1, R, 2);
        HEED_TRY(heed_tensor_ensure(&r->dmu, mu.n, 2, 1, 1));
        const double scale = -1.0 / ((double)r->n * r->cfg.std * r->cfg.std);
        for (int t = 0; t < T - 1; t++)
            for (int i = 0; i < R; i++) {
                const size_t j = (size_t)t * R + i;
                const double adv = (double)r->reward.data[j] - r->b.data[j];
                for (int k = 0; k < 2; k++)
                    r->dmu.data[2 * j + k] =
                        (float)(scale * ((double)r->s.data[2 * j + k] - mu.data[2 * j + k]) * adv);
            }
        HEED_TRY(heed_tensor_zeros_like(&r->dmup, &mu));
        HEED_TRY(heed_act_backward(HEED_ACT_TANH, 0.0f, NULL, &mu, &r->dmu, &r->dmup));
        heed_tensor h0 = steps(&r->h, 0, T - 1, R, H), dh0 = steps(&r->dh, 0, T - 1, R, H);
        HEED_TRY(heed_linear_backward(r->fc_loc, &h0, &r->dmup, &dh0));
    }
    heed_tensor hall = steps(&r->h, 0, T, R, H), dhall = steps(&r->dh, 0, T, R, H);
    return heed_linear_backward(r->fc_base, &hall, &r->db, &dhall);
}

heed_status heed_ram_backward(heed_ram *r, const heed_tensor *x, const heed_tensor *dy,
                              heed_tensor *dx) {
    const heed_ram_cfg *c = &r->cfg;
    if (!r->valid) return heed_fail(HEED_ERR_ARG, "ram backward %s: no completed forward", r->base.name);
    if (r->rows != r->n)
        return heed_fail(HEED_ERR_ARG, "ram backward %s: the forward averaged %d samples (inference); "
                         "backward needs samples = 1 or training mode", r->base.name, c->samples);
    if (r->trained && !r->targets)
        return heed_fail(HEED_ERR_ARG, "ram backward %s: after a training forward, call "
                         "heed_layer_set_targets with the labels first", r->base.name);
    const int n = r->n, T = c->glimpses, R = r->rows, TR = T * R, H = c->hidden, G = r->gates;
    HEED_CHECK_SHAPE(x->n == n && x->c == r->base.in_c && x->h == r->base.in_h && x->w == r->base.in_w,
                     "ram backward %s: input (%d, %d, %d, %d) is not the forward's (%d, %d, %d, %d)",
                     r->base.name, x->n, x->c, x->h, x->w, n, r->base.in_c, r->base.in_h, r->base.in_w);
    HEED_CHECK_SHAPE(dy->n == n && dy->c * dy->h * dy->w == c->classes,
                     "ram backward %s: output gradient (%d, %d, %d, %d), expected (%d, %d, 1, 1)",
                     r->base.name, dy->n, dy->c, dy->h, dy->w, n, c->classes);
    if (dx)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(dx, x), "ram backward %s: input gradient (%d, %d, %d, %d) "
                         "is not shaped like the input", r->base.name, dx->n, dx->c, dx->h, dx->w);
    HEED_TRY(ensure_rows(&r->dh, TR, H));
    HEED_TRY(ensure_rows(&r->dpre, TR, G));
    heed_tensor_zero(&r->dh);
    heed_tensor_zero(&r->dpre);
    heed_tensor hlast = steps(&r->h, T - 1, 1, R, H), dhlast = steps(&r->dh, T - 1, 1, R, H);
    HEED_TRY(heed_linear_backward(r->fc_act, &hlast, dy, &dhlast));
    if (r->trained) HEED_TRY(policy_backward(r, T, R));
    HEED_TRY(c->lstm ? lstm_core_backward(r, T, R) : relu_core_backward(r, T, R));
    if (T > 1) {
        heed_tensor hp = steps(&r->h, 0, T - 1, R, H), da = steps(&r->dpre, 1, T - 1, R, G);
        HEED_TRY(heed_linear_backward(r->fc_hh, &hp, &da, NULL));
    }
    for (int i = 0; i < R; i++) /* step 0's fc_hh saw h_{-1} = 0: its bias only */
        for (int j = 0; j < G; j++) r->fc_hh->db[j] += r->dpre.data[(size_t)i * G + j];
    heed_tensor g = steps(&r->g, 0, T, R, H), hg = steps(&r->hg, 0, T, R, c->glimpse_hidden);
    heed_tensor hl = steps(&r->hl, 0, T, R, c->loc_hidden), pt = steps(&r->pt, 0, T, R, r->depth);
    heed_tensor loc = steps(&r->loc, 0, T, R, 2), dpre = steps(&r->dpre, 0, T, R, G);
    HEED_TRY(heed_tensor_zeros_like(&r->dg, &g));
    HEED_TRY(heed_linear_backward(c->lstm ? r->fc_ih : r->fc_hg, &g, &dpre, &r->dg));
    HEED_TRY(heed_tensor_zeros_like(&r->dgp, &g));
    HEED_TRY(heed_act_backward(HEED_ACT_RELU, 0.0f, NULL, &g, &r->dg, &r->dgp));
    HEED_TRY(heed_tensor_zeros_like(&r->dhg, &hg));
    HEED_TRY(heed_linear_backward(r->fc_gg, &hg, &r->dgp, &r->dhg));
    HEED_TRY(heed_tensor_zeros_like(&r->dhl, &hl));
    HEED_TRY(heed_linear_backward(r->fc_gl, &hl, &r->dgp, &r->dhl));
    HEED_TRY(heed_tensor_zeros_like(&r->dhgp, &hg));
    HEED_TRY(heed_act_backward(HEED_ACT_RELU, 0.0f, NULL, &hg, &r->dhg, &r->dhgp));
    HEED_TRY(heed_tensor_zeros_like(&r->dhlp, &hl));
    HEED_TRY(heed_act_backward(HEED_ACT_RELU, 0.0f, NULL, &hl, &r->dhl, &r->dhlp));
    HEED_TRY(heed_linear_backward(r->fc_l, &loc, &r->dhlp, NULL));
    if (!dx) return heed_linear_backward(r->fc_g, &pt, &r->dhgp, NULL);
    HEED_TRY(heed_tensor_zeros_like(&r->dpt, &pt));
    HEED_TRY(heed_linear_backward(r->fc_g, &pt, &r->dhgp, &r->dpt));
    const int P = c->patch, S = c->scales, D = r->depth;
    for (int t = 0; t < T; t++) {
        heed_tensor lt = steps(&r->loc, t, 1, R, 2);
        heed_tensor dp = heed_tensor_view(r->dpt.data + (size_t)t * R * D, n, S * x->c, P, P);
        HEED_TRY(heed_ram_sensor_backward(&lt, P, S, &dp, dx));
    }
    return HEED_OK;
}
