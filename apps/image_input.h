/* image_input.h -- what the commands that run a model on image files share
 * (classify, glimpse): bringing an image to the model's input, ranking the
 * classes, naming output files and writing JSON strings.
 *
 *   heed_tensor img = {0}, x = {0};
 *   placement pl; int inverted;
 *   heed_image_load(path, 0, &img);                       // any size, 1..4 channels
 *   prepare_input(m, &img, "auto", &x, &pl, &inverted);   // x (1, C, H, W), normalised
 *   heed_net_forward(m->net, &x, &logits);
 */
#ifndef HEED_APPS_IMAGE_INPUT_H
#define HEED_APPS_IMAGE_INPUT_H

#include <stddef.h>

#include "model.h"

/* Where the image landed inside the model's input frame (letterboxing):
 * its top-left corner (x, y) and its size w x h, in input pixels. A point
 * u of the input frame is (u - x) * img_w / w in the original image. */
typedef struct placement {
    int x, y, w, h;
} placement;

/* Brings img (1, Ci, Hi, Wi), values in [0, 1], to the model's input:
 * channels converted, resized with the aspect ratio kept and centred in the
 * frame, padded with the image's own background, brought to the model's
 * polarity, then normalised with the model's input mean and std.
 * invert is "yes", "no" or "auto": auto inverts when the image's border is
 * light (> 0.5 on average) but the model's items are light on dark
 * (meta.dark_background), or the other way round. *x is sized to
 * (1, C, H, W) with heed_tensor_ensure; *pl and *inverted say what was done.
 * Errors: those of heed_image_convert, heed_image_resize, heed_tensor_ensure. */
heed_status prepare_input(const heed_model *m, const heed_tensor *img, const char *invert,
                          heed_tensor *x, placement *pl, int *inverted);

/* Ranks probs[0..k): order (room for k indices) gets a permutation of
 * 0..k-1 whose first `top` (<= k) entries index the largest values in
 * decreasing order. */
void top_classes(const float *probs, int k, int top, int *order);

/* "<dir>/<image's file name without its extension>-<suffix>.<ext>" into
 * out (size bytes, truncated to fit). */
void output_path(char *out, size_t size, const char *dir, const char *image, const char *suffix,
                 const char *ext);

/* Prints s to stdout as a JSON string (quotes and backslashes escaped,
 * control characters dropped). */
void json_string(const char *s);

#endif
