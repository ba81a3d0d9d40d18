/* ram.c -- the recurrent attention model as one layer (the model: ram.h;
 * the glimpse sensor: ram_sensor.c).
 *
 * Forward, for t = 0 .. T-1, each fully connected layer one product over
 * the R rows of the batch (on several threads, each thread runs every step
 * for its share of the rows: ROWS_PER_THREAD below):
 *   p_t = sensor(x, l_t);  hg_t = relu(fc_g p_t);  hl_t = relu(fc_l l_t)
 *   g_t = relu(fc_gg hg_t + fc_gl hl_t)
 *   relu core: h_t = relu(fc_hg g_t + fc_hh h_{t-1})            (fc_hh h_{-1} = its bias)
 *   lstm core: (i, f, gg, o) = (sig, sig, tanh, sig)(fc_ih g_t + fc_hh h_{t-1}),
 *              c_t = f c_{t-1} + i gg,  h_t = o tanh(c_t)       (c_{-1} = 0)
 *   t < T-1:   mu_t = tanh(fc_loc h_t);  s_t = mu_t + std z;  l_{t+1} = clamp(s_t, -1, 1)
 * then b = fc_base h over all T R rows at once, logits = fc_act h_{T-1}.
 *
 * set_targets, with R_i = [argmax logits_i = label_i] and adv_{t,i} = R_i - b_{t,i}:
 *   L_rl  = (1/N) sum_{i, t<T-1, k} ((s - mu)^2 / (2 std^2) + log(std sqrt(2 pi))) adv
 *   L_mse = (1/(N T)) sum_{t,i} (b - R)^2          (heed_mse_loss, which also gives db)
 *
 * Backward (BPTT through the unrolled steps): ram_backward.c.
 */
#include "ram.h"
#include "ram_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "omp_impl.h"
#include "parallel.h"

#include "activation.h"
#include "loss.h"

heed_ram_cfg heed_ram_defaults(void) {
    return (heed_ram_cfg){.glimpses = 6, .patch = 12, .scales = 3, .glimpse_hidden = 128,
                          .loc_hidden = 128, .hidden = 256, .classes = 10, .lstm = 0,
                          .std = 0.17f, .samples = 1, .seed = 1};
}

const heed_ram_cfg *heed_ram_config(const heed_ram *r) { return &r->cfg; }
const heed_tensor *heed_ram_locations(const heed_ram *r) { return &r->where; }
/* The patches are gathered here, on request, from the sensor's (T, R, D)
 * rows: copied at every forward, they had cost W3's inference 1-5% on
 * one thread. */
const heed_tensor *heed_ram_patches(heed_ram *r) {
    if (r->valid && !r->seen_ready) {
        const int T = r->cfg.glimpses;
        const size_t D = (size_t)r->depth;
        for (int i = 0; i < r->n; i++)
            for (int t = 0; t < T; t++)
                memcpy(r->seen.data + ((size_t)i * T + t) * D,
                       r->pt.data + ((size_t)t * r->rows + i) * D, D * sizeof(float));
        r->seen_ready = 1;
    }
    return &r->seen;
}

static float clamp1(float v) { return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v; }

static float sigm(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
    const float e = expf(v);
    return e / (1.0f + e);
}

static heed_status ensure_rows(heed_tensor *t, int rows, int F) {
    return heed_tensor_ensure(t, rows, F, 1, 1);
}

static heed_status ensure_forward(heed_ram *r, int n, int R) {
    const heed_ram_cfg *c = &r->cfg;
    const int T = c->glimpses, TR = T * R, T1R = (T > 1 ? T - 1 : 1) * R;
    HEED_TRY(ensure_rows(&r->loc, TR, 2));
    HEED_TRY(ensure_rows(&r->pt, TR, r->depth));
    HEED_TRY(ensure_rows(&r->hg, TR, c->glimpse_hidden));
    HEED_TRY(ensure_rows(&r->hl, TR, c->loc_hidden));
    HEED_TRY(ensure_rows(&r->g, TR, c->hidden));
    HEED_TRY(ensure_rows(&r->core, TR, r->gates));
    if (c->lstm) {
        HEED_TRY(ensure_rows(&r->h, TR, c->hidden));
        HEED_TRY(ensure_rows(&r->c, TR, c->hidden));
        HEED_TRY(ensure_rows(&r->tc, TR, c->hidden));
    } else {
        r->h = heed_tensor_view(r->core.data, TR, c->hidden, 1, 1);
    }
    HEED_TRY(ensure_rows(&r->mu, T1R, 2));
    HEED_TRY(ensure_rows(&r->s, T1R, 2));
    HEED_TRY(ensure_rows(&r->b, TR, 1));
    HEED_TRY(ensure_rows(&r->logits, R, c->classes));
    HEED_TRY(heed_tensor_ensure(&r->where, n, T, 2, 1));
    return heed_tensor_ensure(&r->seen, n, T * c->scales * r->base.in_c, c->patch, c->patch);
}

static void add_bias(heed_tensor *a, const float *bias) {
    const int F = a->c;
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < F; j++) a->data[(size_t)i * F + j] += bias[j];
}

/* h_t from g_t and h_{t-1}, rows [r0, r1). */
static heed_status core_forward(heed_ram *r, int t, int R, int r0, int r1) {
    const int H = r->cfg.hidden, G = r->gates;
    heed_tensor a = rows_of(&r->core, t, R, r0, r1, G), gt = rows_of(&r->g, t, R, r0, r1, H);
    HEED_TRY(heed_linear_forward(r->cfg.lstm ? r->fc_ih : r->fc_hg, &gt, &a));
    if (t > 0) {
        heed_tensor hp = rows_of(&r->h, t - 1, R, r0, r1, H);
        HEED_TRY(heed_linear_forward_add(r->fc_hh, &hp, &a));
    } else {
        add_bias(&a, r->fc_hh->b);
    }
    if (!r->cfg.lstm) return heed_act_forward(HEED_ACT_RELU, 0.0f, &a, &a);
    const float *cp = t > 0 ? r->c.data + (size_t)(t - 1) * R * H : NULL;
    float *cc = r->c.data + (size_t)t * R * H, *tc = r->tc.data + (size_t)t * R * H;
    float *h = r->h.data + (size_t)t * R * H;
    for (int i = r0; i < r1; i++) {
        float *row = a.data + (size_t)(i - r0) * G;
        for (int j = 0; j < H; j++) {
            const float ig = sigm(row[j]), fg = sigm(row[H + j]);
            const float gg = tanhf(row[2 * H + j]), og = sigm(row[3 * H + j]);
            row[j] = ig, row[H + j] = fg, row[2 * H + j] = gg, row[3 * H + j] = og;
            const size_t k = (size_t)i * H + j;
            cc[k] = fg * (cp ? cp[k] : 0.0f) + ig * gg;
            tc[k] = tanhf(cc[k]);
            h[k] = og * tc[k];
        }
    }
    return HEED_OK;
}

/* The sensor on rows [r0, r1) of R = M n: row m n + i looks at image i. */
static heed_status sense(heed_ram *r, const heed_tensor *x, int t, int n, int M, int r0, int r1) {
    const int R = n * M, D = r->depth, P = r->cfg.patch, S = r->cfg.scales, C = x->c;
    const size_t per_image = (size_t)C * x->h * x->w;
    for (int m = 0; m < M; m++) {
        /* this sample's images [a, b) among the rows */
        const int a = (r0 > m * n ? r0 : m * n) - m * n;
        const int b = (r1 < (m + 1) * n ? r1 : (m + 1) * n) - m * n;
        if (a >= b) continue;
        const size_t row = (size_t)t * R + (size_t)m * n + a;
        heed_tensor xs = heed_tensor_view(x->data + a * per_image, b - a, C, x->h, x->w);
        heed_tensor lt = heed_tensor_view(r->loc.data + row * 2, b - a, 2, 1, 1);
        heed_tensor pt = heed_tensor_view(r->pt.data + row * D, b - a, S * C, P, P);
        HEED_TRY(heed_ram_sensor(&xs, &lt, P, S, &pt));
    }
    return HEED_OK;
}

/* Every step for rows [r0, r1), then their logits, and for those of
 * them that are the first sample of an image, the image's locations and
 * patches as heed_ram_locations and heed_ram_patches give them. No row
 * reads another's values, so rows may run on different threads. In
 * training, s holds each step's normal draws (or the replayed samples) on
 * entry and the samples on return. */
static heed_status forward_rows(heed_ram *r, const heed_tensor *x, int n, int M, int r0, int r1) {
    const heed_ram_cfg *c = &r->cfg;
    const int T = c->glimpses, R = n * M, D = r->depth, H = c->hidden, train = r->base.training;
    for (int t = 0; t < T; t++) {
        heed_tensor lt = rows_of(&r->loc, t, R, r0, r1, 2), pt = rows_of(&r->pt, t, R, r0, r1, D);
        heed_tensor hg = rows_of(&r->hg, t, R, r0, r1, c->glimpse_hidden);
        heed_tensor hl = rows_of(&r->hl, t, R, r0, r1, c->loc_hidden);
        heed_tensor gt = rows_of(&r->g, t, R, r0, r1, H);
        HEED_TRY(sense(r, x, t, n, M, r0, r1));
        HEED_TRY(heed_linear_forward(r->fc_g, &pt, &hg));
        HEED_TRY(heed_act_forward(HEED_ACT_RELU, 0.0f, &hg, &hg));
        HEED_TRY(heed_linear_forward(r->fc_l, &lt, &hl));
        HEED_TRY(heed_act_forward(HEED_ACT_RELU, 0.0f, &hl, &hl));
        HEED_TRY(heed_linear_forward(r->fc_gg, &hg, &gt));
        HEED_TRY(heed_linear_forward_add(r->fc_gl, &hl, &gt));
        HEED_TRY(heed_act_forward(HEED_ACT_RELU, 0.0f, &gt, &gt));
        HEED_TRY(core_forward(r, t, R, r0, r1));
        if (t == T - 1) break;
        heed_tensor ht = rows_of(&r->h, t, R, r0, r1, H), mu = rows_of(&r->mu, t, R, r0, r1, 2);
        HEED_TRY(heed_linear_forward(r->fc_loc, &ht, &mu));
        HEED_TRY(heed_act_forward(HEED_ACT_TANH, 0.0f, &mu, &mu));
        float *next = r->loc.data + (size_t)(t + 1) * R * 2, *s = r->s.data + (size_t)t * R * 2;
        const float *mean = r->mu.data + (size_t)t * R * 2;
        for (size_t j = (size_t)r0 * 2; j < (size_t)r1 * 2; j++) {
            if (!train) {
                next[j] = mean[j];
                continue;
            }
            if (!r->replaying) s[j] = mean[j] + c->std * s[j];
            next[j] = clamp1(s[j]);
        }
    }
    heed_tensor hlast = rows_of(&r->h, T - 1, R, r0, r1, H);
    heed_tensor logits = rows_of(&r->logits, 0, R, r0, r1, c->classes);
    HEED_TRY(heed_linear_forward(r->fc_act, &hlast, &logits));
    for (int i = r0; i < r1 && i < n; i++)
        for (int t = 0; t < T; t++)
            memcpy(r->where.data + ((size_t)i * T + t) * 2, r->loc.data + ((size_t)t * R + i) * 2,
                   2 * sizeof(float));
    return HEED_OK;
}

/* Rows per thread from which a forward runs its rows' steps on threads of
 * their own, one parallel region for the whole forward. Threaded inside
 * each product instead, W3 at batch 64 opened some 40 regions a forward,
 * and in this machine's slower phases two threads ran its inference slower
 * than one (1.4-1.5 against 1.3 ms a batch; libgomp a fifth of the
 * samples); by rows, 1.66x faster than that on two threads (six rounds
 * in turn), its training step 1.08x. Each row's result is the same either
 * way: heed_gemm's sums for a row do not depend on the other rows of the
 * product (above DOT_M_MAX rows, as every share here is). */
#define ROWS_PER_THREAD 16

/* y (n, K) = log((1/M) sum_m softmax(logits_m)), by log-sum-exp over the
 * samples of each class's log-probability (no underflow to log 0). */
static void mean_softmax_log(heed_tensor *logits, int n, int M, float *y) {
    const int K = logits->c;
    for (int r = 0; r < n * M; r++) {
        float *z = logits->data + (size_t)r * K, mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double sum = 0.0;
        for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
        const float lse = mx + (float)log(sum);
        for (int k = 0; k < K; k++) z[k] -= lse;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            float mx = -INFINITY;
            for (int m = 0; m < M; m++) {
                const float v = logits->data[((size_t)m * n + i) * K + k];
                mx = v > mx ? v : mx;
            }
            double sum = 0.0;
            for (int m = 0; m < M; m++)
                sum += exp((double)logits->data[((size_t)m * n + i) * K + k] - mx);
            y[(size_t)i * K + k] = mx + (float)(log(sum) - log((double)M));
        }
}

/* The fully connected layers r has (NULL ones left out), in fcs[0 ..
 * returned count). */
enum { RAM_FCS = 10 };
static int layers_of(const heed_ram *r, heed_linear *fcs[RAM_FCS]) {
    heed_linear *all[RAM_FCS] = {r->fc_g,  r->fc_l,  r->fc_gg,  r->fc_gl,   r->fc_hh,
                                 r->fc_hg, r->fc_ih, r->fc_loc, r->fc_base, r->fc_act};
    int k = 0;
    for (int i = 0; i < RAM_FCS; i++)
        if (all[i]) fcs[k++] = all[i];
    return k;
}

heed_status heed_ram_forward(heed_ram *r, const heed_tensor *x, heed_tensor *y) {
    const heed_ram_cfg *c = &r->cfg;
    /* Its layers are not its children (nothing else visits them), so they
     * follow its freeze here: frozen, their products read a kept W^T
     * instead of packing W on every step (linear.c). */
    heed_linear *fcs[RAM_FCS];
    const int nfc = layers_of(r, fcs);
    for (int i = 0; i < nfc; i++) fcs[i]->base.frozen = r->base.frozen;
    HEED_CHECK_SHAPE(x->c == r->base.in_c && x->h == r->base.in_h && x->w == r->base.in_w,
                     "ram forward %s: input (%d, %d, %d, %d), expected (N, %d, %d, %d)",
                     r->base.name, x->n, x->c, x->h, x->w, r->base.in_c, r->base.in_h, r->base.in_w);
    const int n = x->n, T = c->glimpses, train = r->base.training;
    const int M = train ? 1 : c->samples, R = n * M, H = c->hidden;
    r->valid = r->targets = r->seen_ready = 0;
    r->n = n, r->rows = R, r->trained = train;
    if (r->replaying)
        HEED_CHECK_SHAPE(r->replay.n == R, "ram forward %s: replayed draws are for %d rows, this forward has %d",
                         r->base.name, r->replay.n, R);
    HEED_TRY(ensure_forward(r, n, R));
    HEED_TRY(heed_tensor_ensure(y, n, c->classes, 1, 1));
    /* Draws in a fixed order (l_0 row by row, x then y; then per step the
     * two normals of each row), all before the steps, so they do not depend
     * on threads. */
    const float *rp = r->replay.data;
    for (int i = 0; i < R; i++)
        for (int k = 0; k < 2; k++)
            r->loc.data[2 * i + k] = r->replaying ? rp[(size_t)i * T * 2 + k]
                                                  : 2.0f * heed_rng_uniform(&r->rng) - 1.0f;
    for (int t = 0; train && t < T - 1; t++)
        for (int i = 0; i < R; i++)
            for (int k = 0; k < 2; k++)
                r->s.data[((size_t)t * R + i) * 2 + k] =
                    r->replaying ? rp[((size_t)i * T + t + 1) * 2 + k] : heed_rng_normal(&r->rng);
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > R / ROWS_PER_THREAD) threads = R / ROWS_PER_THREAD;
    if (threads > 1) {
        heed_status st = HEED_OK;
#pragma omp parallel num_threads(threads)
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            par_note(&st, forward_rows(r, x, n, M, R * id / nt, R * (id + 1) / nt));
        }
        HEED_TRY(par_workers_done(st, "ram forward", r->base.name));
    } else {
        HEED_TRY(forward_rows(r, x, n, M, 0, R));
    }
    if (train) {
        heed_tensor hall = steps(&r->h, 0, T, R, H), b = steps(&r->b, 0, T, R, 1);
        HEED_TRY(heed_linear_forward(r->fc_base, &hall, &b));
    }
    if (M == 1)
        memcpy(y->data, r->logits.data, (size_t)n * c->classes * sizeof(float));
    else
        mean_softmax_log(&r->logits, n, M, y->data);
    r->valid = 1;
    return HEED_OK;
}

heed_status heed_ram_set_targets(heed_ram *r, const int *labels, int n, double *loss) {
    if (!r->valid)
        return heed_fail(HEED_ERR_ARG, "ram set_targets %s: no completed forward to score", r->base.name);
    if (!r->trained) return HEED_OK;
    HEED_CHECK_SHAPE(n == r->n, "ram set_targets %s: %d labels for a forward of %d images",
                     r->base.name, n, r->n);
    const int T = r->cfg.glimpses, K = r->cfg.classes, R = r->rows;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= K)
            return heed_fail(HEED_ERR_ARG, "ram set_targets %s: label %d of image %d is outside [0, %d)",
                             r->base.name, labels[i], i, K);
    HEED_TRY(ensure_rows(&r->reward, T * R, 1));
    for (int i = 0; i < n; i++) {
        const float *z = r->logits.data + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k; /* the first maximum, as torch.argmax */
        for (int t = 0; t < T; t++) r->reward.data[(size_t)t * R + i] = best == labels[i] ? 1.0f : 0.0f;
    }
    heed_tensor b = steps(&r->b, 0, T, R, 1);
    double mse;
    HEED_TRY(heed_tensor_zeros_like(&r->db, &b));
    HEED_TRY(heed_mse_loss(&b, &r->reward, &mse, &r->db));
    const double sd = r->cfg.std, logz = log(sd * sqrt(2.0 * 3.14159265358979323846));
    double rl = 0.0;
    for (int t = 0; t < T - 1; t++)
        for (int i = 0; i < R; i++) {
            const size_t j = (size_t)t * R + i;
            const double adv = (double)r->reward.data[j] - r->b.data[j];
            for (int k = 0; k < 2; k++) {
                const double d = (double)r->s.data[2 * j + k] - r->mu.data[2 * j + k];
                rl += (d * d / (2.0 * sd * sd) + logz) * adv;
            }
        }
    *loss += rl / n + mse;
    r->targets = 1;
    return HEED_OK;
}

heed_status heed_ram_replay(heed_ram *r, const heed_tensor *draws) {
    if (!draws) {
        r->replaying = 0;
        return HEED_OK;
    }
    const int T = r->cfg.glimpses;
    HEED_CHECK_SHAPE(draws->c * draws->h * draws->w == 2 * T,
                     "ram replay %s: draws (%d, %d, %d, %d), expected (R, %d, 2, 1)", r->base.name,
                     draws->n, draws->c, draws->h, draws->w, T);
    for (size_t i = 0; i < heed_tensor_count(draws); i++)
        if (!isfinite(draws->data[i]))
            return heed_fail(HEED_ERR_ARG, "ram replay %s: draw %zu is not finite", r->base.name, i);
    HEED_TRY(heed_tensor_ensure(&r->replay, draws->n, T, 2, 1));
    memcpy(r->replay.data, draws->data, heed_tensor_count(draws) * sizeof(float));
    r->replaying = 1;
    return HEED_OK;
}

/* ---- the layer interface ------------------------------------------------ */

static heed_status ram_forward_op(heed_layer *l, const heed_tensor *x, heed_tensor *y) {
    return heed_ram_forward((heed_ram *)l, x, y);
}

static heed_status ram_backward_op(heed_layer *l, const heed_tensor *x, const heed_tensor *y,
                                   const heed_tensor *dy, heed_tensor *dx) {
    (void)y;
    return heed_ram_backward((heed_ram *)l, x, dy, dx);
}

static heed_status ram_set_targets_op(heed_layer *l, const int *labels, int n, double *loss) {
    return heed_ram_set_targets((heed_ram *)l, labels, n, loss);
}

/* The configured seed stays part of the stream (as in dropout). */
static void ram_reseed(heed_layer *l, uint64_t seed) {
    heed_ram *r = (heed_ram *)l;
    heed_rng_seed(&r->rng, r->cfg.seed, seed);
}

/* 2 x the multiply-adds of the fc layers over the T steps and the samples,
 * as PyTorch hooks count an eval-mode forward: fc_hh at every step (step 0
 * multiplies zeros), fc_loc at T-1 steps, no baseline, no bias adds. */
static double ram_flops(const heed_layer *l) {
    const heed_ram *r = (const heed_ram *)l;
    const heed_ram_cfg *c = &r->cfg;
    const double H = c->hidden, G = r->gates;
    const double step = (double)r->depth * c->glimpse_hidden + 2.0 * c->loc_hidden +
                        (double)c->glimpse_hidden * H + (double)c->loc_hidden * H + 2.0 * H * G;
    return 2.0 * c->samples * (c->glimpses * step + (c->glimpses - 1) * H * 2.0 + H * c->classes);
}

static void ram_destroy(heed_layer *l) {
    heed_ram *r = (heed_ram *)l;
    heed_linear *fcs[RAM_FCS];
    const int nfc = layers_of(r, fcs);
    for (int i = 0; i < nfc; i++) heed_layer_free(&fcs[i]->base);
    heed_tensor *ts[] = {&r->loc, &r->pt, &r->hg, &r->hl, &r->g, &r->core, &r->h, &r->c, &r->tc,
                         &r->mu, &r->s, &r->b, &r->logits, &r->reward, &r->where, &r->seen, &r->dh,
                         &r->dpre, &r->dg, &r->dgp, &r->dhg, &r->dhgp, &r->dhl, &r->dhlp, &r->dpt,
                         &r->dmu, &r->dmup, &r->db, &r->dc, &r->replay};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
    free(r);
}

static const heed_layer_ops ram_ops = {
    .type = "ram",
    .forward = ram_forward_op,
    .backward = ram_backward_op,
    .flops = ram_flops,
    .destroy = ram_destroy,
    .set_targets = ram_set_targets_op,
    .reseed = ram_reseed,
};

static heed_status check_range(const char *name, const char *what, int v, int lo, int hi) {
    if (v < lo || v > hi)
        return heed_fail(HEED_ERR_ARG, "ram %s: %s = %d, must be from %d to %d", name, what, v, lo, hi);
    return HEED_OK;
}

static heed_status check_cfg(const heed_ram_cfg *c, const int in[3], const char *name) {
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "ram %s: input shape (%d, %d, %d) has a dimension < 1", name,
                         in[0], in[1], in[2]);
    const int small = in[1] < in[2] ? in[1] : in[2], big = in[1] > in[2] ? in[1] : in[2];
    HEED_TRY(check_range(name, "glimpses", c->glimpses, 1, 1000));
    HEED_TRY(check_range(name, "scales", c->scales, 1, 16));
    if (c->patch < 1 || c->patch > small)
        return heed_fail(HEED_ERR_ARG, "ram %s: patch = %d, must be from 1 to the image's smaller "
                         "side %d", name, c->patch, small);
    const long long largest = (long long)c->patch << (c->scales - 1);
    if (largest > 2LL * big)
        return heed_fail(HEED_ERR_ARG, "ram %s: the largest patch (%d scales of %d: side %lld) is "
                         "more than twice the image's side %d", name, c->scales, c->patch, largest, big);
    if ((long long)c->scales * in[0] * c->patch * c->patch > (1 << 28))
        return heed_fail(HEED_ERR_ARG, "ram %s: a glimpse of %d x %d x %d x %d values is too large",
                         name, c->scales, in[0], c->patch, c->patch);
    HEED_TRY(check_range(name, "glimpse_hidden", c->glimpse_hidden, 1, 1 << 20));
    HEED_TRY(check_range(name, "loc_hidden", c->loc_hidden, 1, 1 << 20));
    HEED_TRY(check_range(name, "hidden", c->hidden, 1, 1 << 20));
    HEED_TRY(check_range(name, "classes", c->classes, 1, 1 << 20));
    HEED_TRY(check_range(name, "lstm", c->lstm, 0, 1));
    HEED_TRY(check_range(name, "samples", c->samples, 1, 1000));
    if (!(c->std > 0.0f) || !isfinite(c->std))
        return heed_fail(HEED_ERR_ARG, "ram %s: std = %g, must be a positive number", name, c->std);
    return HEED_OK;
}

static heed_status add_fc(heed_linear **out, int in, int nout, heed_params *p, const char *name,
                          const char *sub) {
    char full[96];
    return heed_linear_new(out, &(heed_linear_cfg){.in = in, .out = nout}, (int[3]){in, 1, 1}, p,
                           heed_layer_join_name(full, sizeof full, name, sub));
}

heed_status heed_ram_new(heed_ram **out, const heed_ram_cfg *cfg, const int in[3], heed_params *p,
                         const char *name) {
    *out = NULL;
    if (!name) name = "";
    if (!cfg) return heed_fail(HEED_ERR_ARG, "ram %s: no configuration given", name);
    if (!p) return heed_fail(HEED_ERR_ARG, "ram %s: no parameter store given", name);
    /* Its longest part's name, "<name>.fc_base", must fit a layer's. */
    const size_t len = strlen(name), max = HEED_LAYER_NAME_MAX - strlen(".fc_base");
    if (len > max)
        return heed_fail(HEED_ERR_ARG, "ram %s: the name has %zu characters, at most %zu fit (its part "
                         "%s.fc_base must fit a layer's %d)", name, len, max, name, HEED_LAYER_NAME_MAX);
    HEED_TRY(check_cfg(cfg, in, name));
    heed_ram *r = calloc(1, sizeof *r);
    if (!r) return heed_fail(HEED_ERR_NOMEM, "ram %s: cannot allocate the layer", name);
    r->cfg = *cfg;
    r->depth = cfg->scales * in[0] * cfg->patch * cfg->patch;
    r->gates = cfg->lstm ? 4 * cfg->hidden : cfg->hidden;
    heed_layer_init(&r->base, &ram_ops, name, in, cfg->classes, 1, 1);
    heed_rng_seed(&r->rng, cfg->seed, 0);
    const int GH = cfg->glimpse_hidden, LH = cfg->loc_hidden, H = cfg->hidden, G = r->gates;
    /* On failure, forget what this layer registered so no slot points into
     * freed memory. */
    const int registered = p->count;
    heed_status st = add_fc(&r->fc_g, r->depth, GH, p, name, "fc_g");
    if (st == HEED_OK) st = add_fc(&r->fc_l, 2, LH, p, name, "fc_l");
    if (st == HEED_OK) st = add_fc(&r->fc_gg, GH, H, p, name, "fc_gg");
    if (st == HEED_OK) st = add_fc(&r->fc_gl, LH, H, p, name, "fc_gl");
    if (cfg->lstm) {
        if (st == HEED_OK) st = add_fc(&r->fc_ih, H, G, p, name, "fc_ih");
        if (st == HEED_OK) st = add_fc(&r->fc_hh, H, G, p, name, "fc_hh");
    } else {
        if (st == HEED_OK) st = add_fc(&r->fc_hh, H, H, p, name, "fc_hh");
        if (st == HEED_OK) st = add_fc(&r->fc_hg, H, H, p, name, "fc_hg");
    }
    if (st == HEED_OK) st = add_fc(&r->fc_loc, H, 2, p, name, "fc_loc");
    if (st == HEED_OK) st = add_fc(&r->fc_base, H, 1, p, name, "fc_base");
    if (st == HEED_OK) st = add_fc(&r->fc_act, H, cfg->classes, p, name, "fc_act");
    if (st != HEED_OK) {
        p->count = registered;
        ram_destroy(&r->base);
        return st;
    }
    *out = r;
    return HEED_OK;
}
