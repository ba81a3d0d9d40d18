/* loss.h -- training losses: softmax cross-entropy and mean squared error.
 *
 *   double loss;
 *   heed_tensor dlogits = {0};
 *   heed_tensor_ensure(&dlogits, N, K, 1, 1); heed_tensor_zero(&dlogits);
 *   heed_softmax_cross_entropy(&logits, labels, &loss, NULL, &dlogits);
 *   // dlogits now holds dL/dlogits; feed it to the last layer's backward
 *
 * Both losses are means (PyTorch's reduction='mean'), so the learning rate
 * does not depend on the batch size. Gradients are ADDED into the caller's
 * tensor, which lets a model sum several losses (RAM: cross-entropy plus
 * the baseline's MSE) into one gradient. The caller owns every tensor.
 */
#ifndef HEED_LOSS_H
#define HEED_LOSS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* L = -(1/N) sum_n log softmax(logits[n])[labels[n]], F.cross_entropy.
 * logits (N, K, 1, 1); labels[N] in [0, K). Writes L to *loss. If probs is
 * not NULL it is sized (heed_tensor_ensure) to (N, K, 1, 1) and filled with
 * the softmax; if dlogits is not NULL, (softmax - onehot) / N is ADDED into
 * it (it must be shaped like logits). Stable for any finite logits (the
 * row maximum is subtracted before exp). Errors: HEED_ERR_SHAPE for logits
 * with h or w != 1 or a mismatched dlogits; HEED_ERR_ARG for a label out of
 * range (nothing is written then). */
heed_status heed_softmax_cross_entropy(const heed_tensor *logits, const int *labels, double *loss,
                                       heed_tensor *probs, heed_tensor *dlogits);

/* L = mean over all elements of (pred - target)^2, F.mse_loss. pred and
 * target have the same shape; if dpred is not NULL (shaped like pred),
 * 2 (pred - target) / count is ADDED into it. HEED_ERR_SHAPE otherwise. */
heed_status heed_mse_loss(const heed_tensor *pred, const heed_tensor *target, double *loss,
                          heed_tensor *dpred);

#ifdef __cplusplus
}
#endif

#endif
