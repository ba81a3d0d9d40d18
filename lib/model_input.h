/* model_input.h -- an image brought to a trained model's input, as `heed
 * classify` brings it: so that a program and the command agree.
 *
 *   heed_tensor img = {0}, x = {0}, logits = {0};
 *   heed_image_load("photo.jpg", 0, &img);                  // any size, colour
 *   heed_placement pl;
 *   int inverted;
 *   heed_model_input(m, &img, HEED_INVERT_AUTO, &x, &pl, &inverted);
 *   heed_net_forward(m->net, &x, &logits);                  // inference mode
 *   ... a map over x (heed_gradcam) ...
 *   heed_placement_crop(&cam, &pl, x.h, x.w, &crop);        // the map over img
 *   heed_overlay_heatmap(&img, &crop, HEED_CMAP_JET, 0.5f, &vis);
 *
 * The steps, in order (C x H x W the network's input):
 *  1. channels: heed_image_convert to C; a cut-out (gray + alpha or RGBA
 *     into 1 or 3 channels) stands on white when its opaque part is dark
 *     on average (mean of its converted values, weighted by alpha, < 0.5),
 *     else on black: transparent areas are background, and black under a
 *     dark item would hide it from a light-on-dark model;
 *  2. size: scaled by min(H / h, W / w), each side rounded (at least 1),
 *     with heed_image_resize (antialiased bilinear), centred in the frame
 *     (x = (W - w') / 2, y = (H - h') / 2, rounded down); the rest of the
 *     frame is the mean colour of the image's border pixels (first and
 *     last row and column, after step 1), channel by channel;
 *  3. polarity: with HEED_INVERT_AUTO the frame is inverted (v -> 1 - v)
 *     when the border is light (its mean over channels > 0.5) and the
 *     model's items are light on dark (meta.dark_background), or the
 *     border dark and the items dark on light; YES and NO decide instead;
 *  4. normalised as heed_model_normalize does: (v - meta.input_mean) /
 *     meta.input_std, or by each channel's own pair (meta.norm_channels).
 * A model trained on an image folder (meta.dataset "folder:...") saw its
 * images as heed_folder_load made them: step 1 without the cut-out rule
 * (alpha over black), step 2 stretched to the whole frame, and AUTO never
 * inverts. */
#ifndef HEED_MODEL_INPUT_H
#define HEED_MODEL_INPUT_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_invert { HEED_INVERT_AUTO, HEED_INVERT_NO, HEED_INVERT_YES } heed_invert;

/* Where the image landed in the model's input frame: its top-left corner
 * (x, y) and its size w x h, in input pixels. A point u of the frame is
 * (u - x) * img_w / w in the image's own pixels. */
typedef struct heed_placement {
    int x, y, w, h;
} heed_placement;

/* Brings img (1, c, h, w), c 1..4 and values in [0, 1], to m's input in x,
 * sized here (heed_tensor_ensure) to (1, C, H, W), by the steps above.
 * pl (where the image sits) and inverted (1 if the frame was inverted) may
 * be NULL. Errors: HEED_ERR_ARG (a NULL m, img or x; img not one image of
 * 1..4 channels; invert not one of the three), and those of
 * heed_image_convert, heed_image_resize and heed_tensor_ensure. */
heed_status heed_model_input(const heed_model *m, const heed_tensor *img, heed_invert invert,
                             heed_tensor *x, heed_placement *pl, int *inverted);

/* A map over the model's input frame H x W (any size, such as an
 * attention map or a Grad-CAM map: (1, 1, h, w)) back over the image:
 * resized to H x W (heed_image_resize), then cut to pl's rectangle, into
 * out (1, 1, pl->h, pl->w), sized here. heed_overlay_heatmap then lays it
 * over the original image. Errors: HEED_ERR_ARG (a NULL argument, out
 * aliasing map, map not (1, 1, h, w), pl not inside H x W), those of
 * heed_image_resize and heed_tensor_ensure. */
heed_status heed_placement_crop(const heed_tensor *map, const heed_placement *pl, int H, int W,
                                heed_tensor *out);

#ifdef __cplusplus
}
#endif

#endif
