/* loss.c -- softmax cross-entropy and mean squared error.
 *
 * Cross-entropy, N rows of K logits z, labels t:
 *   forward:  m = max_k z_k,  lse = m + log sum_k exp(z_k - m)
 *             L = (1/N) sum_n (lse_n - z_n,t_n)
 *   backward: dL/dz_n,k = (softmax(z_n)_k - [k == t_n]) / N
 * Subtracting m keeps every exp in (0, 1], so no logit overflows it, and
 * lse - z is computed without forming a probability that could round to 0.
 *
 * MSE over E elements:
 *   forward:  L = (1/E) sum_i (p_i - t_i)^2
 *   backward: dL/dp_i = 2 (p_i - t_i) / E
 */
#include "loss.h"

#include <math.h>

heed_status heed_softmax_cross_entropy(const heed_tensor *logits, const int *labels, double *loss,
                                       heed_tensor *probs, heed_tensor *dlogits) {
    const int N = logits->n, K = logits->c;
    HEED_CHECK_SHAPE(N >= 1 && K >= 1 && logits->h == 1 && logits->w == 1,
                     "softmax_cross_entropy: logits (%d, %d, %d, %d), expected (N, K, 1, 1)",
                     logits->n, logits->c, logits->h, logits->w);
    if (dlogits)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(dlogits, logits),
                         "softmax_cross_entropy: gradient (%d, %d, %d, %d) does not match logits "
                         "(%d, %d, 1, 1)",
                         dlogits->n, dlogits->c, dlogits->h, dlogits->w, N, K);
    for (int n = 0; n < N; n++)
        if (labels[n] < 0 || labels[n] >= K)
            return heed_fail(HEED_ERR_ARG,
                             "softmax_cross_entropy: label %d of sample %d is outside [0, %d)",
                             labels[n], n, K);
    if (probs) HEED_TRY(heed_tensor_ensure(probs, N, K, 1, 1));

    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *z = logits->data + (size_t)n * K;
        float m = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > m) m = z[k];
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - m);
        const double lse = m + log(s);
        total += lse - z[labels[n]];
        if (probs || dlogits) {
            float *pr = probs ? probs->data + (size_t)n * K : NULL;
            float *g = dlogits ? dlogits->data + (size_t)n * K : NULL;
            for (int k = 0; k < K; k++) {
                const double p = exp((double)z[k] - lse);
                if (pr) pr[k] = (float)p;
                if (g) g[k] += (float)((p - (k == labels[n])) / N);
            }
        }
    }
    *loss = total / N;
    return HEED_OK;
}

heed_status heed_mse_loss(const heed_tensor *pred, const heed_tensor *target, double *loss,
                          heed_tensor *dpred) {
    HEED_CHECK_SHAPE(heed_tensor_same_shape(pred, target),
                     "mse_loss: prediction (%d, %d, %d, %d) and target (%d, %d, %d, %d) differ",
                     pred->n, pred->c, pred->h, pred->w, target->n, target->c, target->h,
                     target->w);
    if (dpred)
        HEED_CHECK_SHAPE(heed_tensor_same_shape(dpred, pred),
                         "mse_loss: gradient (%d, %d, %d, %d) does not match prediction "
                         "(%d, %d, %d, %d)",
                         dpred->n, dpred->c, dpred->h, dpred->w, pred->n, pred->c, pred->h,
                         pred->w);
    const size_t E = heed_tensor_count(pred);
    HEED_CHECK_SHAPE(E > 0, "mse_loss: empty prediction (%d, %d, %d, %d)", pred->n, pred->c,
                     pred->h, pred->w);
    double total = 0.0;
    for (size_t i = 0; i < E; i++) {
        const double d = (double)pred->data[i] - target->data[i];
        total += d * d;
        if (dpred) dpred->data[i] += (float)(2.0 * d / (double)E);
    }
    *loss = total / (double)E;
    return HEED_OK;
}
