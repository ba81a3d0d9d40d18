/* overlay.h -- colour maps, heat-map overlays and simple drawing on images.
 *
 *   heed_tensor img = {0}, vis = {0};
 *   heed_image_load("cat.jpg", 0, &img);                          // (1, 3, H, W)
 *   heed_overlay_heatmap(&img, &attn, HEED_CMAP_JET, 0.5f, &vis); // attn (1, 1, 7, 7)
 *   heed_draw_rect(&vis, 10, 10, 60, 60, 2, (const float[3]){1, 1, 0});
 *   heed_image_save("cat_attn.png", &vis, NULL);
 *
 * Images are tensors (1, C, H, W) with values in [0, 1] (see image.h).
 * Drawing functions take an RGB image (C = 3; a gray image, C = 1, gets the
 * colour's luma) and change it in place, every image of a batch alike;
 * anything outside the image is clipped, so any coordinates are safe.
 * Other channel counts, or an empty tensor, are left untouched.
 */
#ifndef HEED_OVERLAY_H
#define HEED_OVERLAY_H

#include "error.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_colormap {
    HEED_CMAP_JET,     /* MATLAB's classic: dark blue, blue, cyan, yellow, red, dark red */
    HEED_CMAP_VIRIDIS, /* matplotlib's default: dark purple to yellow, perceptually uniform */
    HEED_CMAP_INFERNO, /* matplotlib: black, purple, orange, pale yellow */
    HEED_CMAP_TURBO    /* Google's improved rainbow: dark blue to dark red */
} heed_colormap;

/* Parses "jet", "viridis", "inferno" or "turbo" (any case) into *out.
 * Errors: HEED_ERR_ARG naming the unknown name and the known ones. */
heed_status heed_colormap_parse(const char *name, heed_colormap *out);

/* The colour map's name ("jet", ...), or "?" for a value outside the enum. */
const char *heed_colormap_name(heed_colormap cm);

/* The colour at t (clamped to [0, 1]; NaN counts as 0) as RGB in [0, 1].
 * Viridis, inferno and turbo interpolate 33 anchors sampled from the
 * published tables (within 2/255 of them). */
void heed_colormap_rgb(heed_colormap cm, float t, float rgb[3]);

/* Blends a heat map over an image at the image's full resolution:
 *   1. map (1, 1, h, w), any size, is min-max normalised to [0, 1]
 *      (a constant map becomes 0; NaN and infinite entries count as the minimum);
 *   2. resized to the image's H x W with heed_image_resize (bilinear);
 *   3. coloured with cm;
 *   4. out = (1 - alpha) * image_rgb + alpha * colour.
 * image is (1, C, H, W) with C in 1..4: gray is replicated to RGB, alpha is
 * ignored (the colour channels are used as stored). *out is sized to
 * (1, 3, H, W) with heed_tensor_ensure and must be neither image nor map.
 *
 * Errors: HEED_ERR_SHAPE (image not (1, C, H, W) with C in 1..4, map not
 * (1, 1, h, w)), HEED_ERR_ARG (alpha outside [0, 1] or NaN, bad colour map,
 * out aliasing an input), HEED_ERR_NOMEM. */
heed_status heed_overlay_heatmap(const heed_tensor *image, const heed_tensor *map, heed_colormap cm,
                                 float alpha, heed_tensor *out);

/* Outline of the rectangle with corners (x0, y0) and (x1, y1) (inclusive,
 * either order), `thickness` pixels wide inwards (< 1 counts as 1). */
void heed_draw_rect(heed_tensor *img, int x0, int y0, int x1, int y1, int thickness, const float rgb[3]);

/* Segment from (x0, y0) to (x1, y1), inclusive, drawn with a square pen of
 * side `thickness` (< 1 counts as 1) centred on the line. */
void heed_draw_line(heed_tensor *img, int x0, int y0, int x1, int y1, int thickness, const float rgb[3]);

/* Filled disc of the pixels with (x - cx)^2 + (y - cy)^2 <= r^2; r = 0 is one
 * pixel, r < 0 draws nothing. */
void heed_draw_disc(heed_tensor *img, int cx, int cy, int r, const float rgb[3]);

/* Copies src (1, Cs, h, w) into dst (1, Cd, H, W) with its top-left corner
 * at (x, y), each source pixel enlarged to a scale x scale block (nearest
 * neighbour; scale < 1 counts as 1), clipped to dst. A gray src (Cs = 1)
 * fills every channel of dst; otherwise channel k of dst takes channel k of
 * src for k < min(Cs, Cd) and other channels are left alone. */
void heed_paste(heed_tensor *dst, const heed_tensor *src, int x, int y, int scale);

#ifdef __cplusplus
}
#endif

#endif
