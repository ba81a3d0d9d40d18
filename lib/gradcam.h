/* gradcam.h -- Grad-CAM and gradient saliency: where in the image a
 * network finds its evidence for a class.
 *
 *   int at = heed_gradcam_default_layer(net);          // last spatial layer
 *   heed_tensor cam = {0};
 *   if (at < 0 || heed_gradcam(net, &img, cls, at, &cam) != HEED_OK)   // img (1, C, H, W)
 *       fprintf(stderr, "%s\n", heed_last_error());
 *   // cam (1, 1, h, w) on that layer's grid; heed_image_resize it to the image
 *   heed_tensor_free(&cam);
 *
 * Grad-CAM (Selvaraju et al., 2017) weighs the K maps A_k of one layer's
 * output (K, h, w) by how much the class score grows with each:
 *
 *   alpha_k = 1/(h w) sum_(i,j) d score / d A_k(i,j)
 *   cam     = relu(sum_k alpha_k A_k)
 *
 * where score is the network's output for the class: its logit, for a
 * network that ends before the softmax as heed's do (one that ends in a
 * softmax layer gives the probability's gradient instead, which the paper
 * does not use). For a network that ends in global average pooling and one
 * linear layer this is CAM (Zhou et al., 2016): alpha_k is the linear
 * weight of map k for the class, over h w.
 *
 * Gradient saliency (Simonyan, Vedaldi and Zisserman, 2014) goes down to
 * the pixels: how much the class score moves with each input value,
 *
 *   saliency(i, j) = max over channels c of |d score / d x(c, i, j)|,
 *
 * x being the network's input (normalised: the pixels' gradient is this
 * over the input std, the same map once scaled). Sharper than Grad-CAM's
 * coarse grid, and noisier.
 */
#ifndef HEED_GRADCAM_H
#define HEED_GRADCAM_H

#include "error.h"
#include "net.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Grad-CAM map of class `cls` for the image x (1, in_c, in_h, in_w) at
 * the output of top-level layer `layer` (an index among net->root's
 * children, not the last one), into *cam (1, 1, h, w), sized with
 * heed_tensor_ensure.
 *
 * Runs one forward and one backward of x in the network's current mode:
 * call heed_net_set_training(net, 0) first, as for any inference (in
 * training mode the forward updates batch-norm statistics and draws
 * dropout masks). Like any backward it ADDS to the parameter gradients;
 * zero them before a training step that follows.
 *
 * Errors: HEED_ERR_ARG (net or cam NULL, cls not in 0..classes-1, layer
 * not a top-level layer before the output (or none: a network that is its
 * output layer alone, as RAM is), a layer whose output is 1x1: its map would be
 * a single value, a batch norm followed by a relu: the two run as one and
 * only the relu's output is kept, so take the relu), HEED_ERR_SHAPE (x
 * not one image of the network's input shape), HEED_ERR_NOMEM, and what
 * the forward and backward return. */
heed_status heed_gradcam(heed_net *net, const heed_tensor *x, int cls, int layer, heed_tensor *cam);

/* The gradient saliency map of class `cls` for the image x (1, in_c, in_h,
 * in_w) into *map (1, 1, in_h, in_w), sized with heed_tensor_ensure. One
 * forward and one backward, with heed_gradcam's caveats (inference mode
 * first; parameter gradients are added to). Errors: HEED_ERR_ARG (net or
 * map NULL, cls not in 0..classes-1), HEED_ERR_SHAPE (x not one image of the input shape),
 * HEED_ERR_NOMEM, and what the forward and backward return. (RAM's
 * saliency is through the pixels its glimpses read, their locations held
 * fixed.) */
heed_status heed_saliency(heed_net *net, const heed_tensor *x, int cls, heed_tensor *map);

/* The last top-level layer before the output whose output is still a map
 * (h w > 1): the last convolutional stage, where Grad-CAM is usually
 * taken. -1 if there is none. */
int heed_gradcam_default_layer(const heed_net *net);

#ifdef __cplusplus
}
#endif

#endif
