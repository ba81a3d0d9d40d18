/* model_input.c -- see model_input.h for the steps. The border, not the
 * whole image, decides the polarity and pads the frame: a photographed
 * item fills the middle, its background reaches the edges. */
#include "model_input.h"

#include <math.h>
#include <string.h>

#include "image.h"

/* A cut-out dark on average (its converted values, already times alpha,
 * over the sum of alpha) goes on white: add 1 - alpha to every channel. */
static void stand_cut_out(const heed_tensor *img, heed_tensor *conv) {
    const size_t HW = (size_t)img->h * img->w;
    const int C = conv->c;
    const float *a = img->data + (size_t)(img->c - 1) * HW;
    double wsum = 0, ysum = 0;
    for (size_t i = 0; i < HW; i++) {
        double y = 0;
        for (int c = 0; c < C; c++) y += conv->data[(size_t)c * HW + i];
        ysum += y / C, wsum += a[i];
    }
    if (wsum > 0 && ysum / wsum < 0.5)
        for (int c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) conv->data[(size_t)c * HW + i] += 1.0f - a[i];
}

/* The mean of each channel's border pixels (first and last row, first and
 * last column) into border[0..C); returns their mean over channels. */
static double border_mean(const heed_tensor *t, double *border) {
    double total = 0;
    for (int c = 0; c < t->c; c++) {
        const float *p = t->data + (size_t)c * t->h * t->w;
        size_t n = 0;
        border[c] = 0;
        for (int i = 0; i < t->h; i++) {
            const int step = i == 0 || i == t->h - 1 ? 1 : (t->w > 1 ? t->w - 1 : 1);
            for (int j = 0; j < t->w; j += step) border[c] += p[(size_t)i * t->w + j], n++;
        }
        border[c] /= (double)n, total += border[c];
    }
    return total / t->c;
}

heed_status heed_model_input(const heed_model *m, const heed_tensor *img, heed_invert invert,
                             heed_tensor *x, heed_placement *pl, int *inverted) {
    if (!m || !img || !x)
        return heed_fail(HEED_ERR_ARG, "model input: %s is NULL",
                         !m ? "the model" : !img ? "the image" : "x");
    if (img->n != 1 || img->c < 1 || img->c > 4 || img->h < 1 || img->w < 1 || !img->data)
        return heed_fail(HEED_ERR_ARG, "model input: the image is %dx%dx%dx%d (one image of 1..4 channels)",
                         img->n, img->c, img->h, img->w);
    if (invert != HEED_INVERT_AUTO && invert != HEED_INVERT_NO && invert != HEED_INVERT_YES)
        return heed_fail(HEED_ERR_ARG, "model input: no invert mode %d (auto, no or yes)", (int)invert);
    const int C = m->net->in_c, H = m->net->in_h, W = m->net->in_w;
    const int folder = !strncmp(m->meta.dataset, "folder:", 7);
    heed_tensor conv = {0}, small = {0};
    heed_placement at;
    double border[4];
    int flip = 0;
    heed_status st = heed_image_convert(img, C, &conv);
    if (st == HEED_OK) {
        if (!folder && (img->c == 2 || img->c == 4) && C != 2 && C != 4) stand_cut_out(img, &conv);
        const double scale = fmin((double)H / img->h, (double)W / img->w);
        at.w = folder ? W : (int)fmax(1, lround(img->w * scale));
        at.h = folder ? H : (int)fmax(1, lround(img->h * scale));
        at.x = (W - at.w) / 2, at.y = (H - at.h) / 2;
        const int light = border_mean(&conv, border) > 0.5;
        flip = invert == HEED_INVERT_YES ||
               (invert == HEED_INVERT_AUTO && !folder && light == m->meta.dark_background);
        st = heed_image_resize(&conv, at.h, at.w, &small);
    }
    if (st == HEED_OK) st = heed_tensor_ensure(x, 1, C, H, W);
    if (st == HEED_OK) {
        for (int c = 0; c < C; c++) {
            float *plane = x->data + (size_t)c * H * W;
            const float bg = (float)border[c];
            for (size_t i = 0; i < (size_t)H * W; i++) plane[i] = flip ? 1.0f - bg : bg;
            for (int i = 0; i < at.h; i++)
                for (int j = 0; j < at.w; j++) {
                    const float v = small.data[((size_t)c * at.h + i) * at.w + j];
                    plane[(size_t)(at.y + i) * W + at.x + j] = flip ? 1.0f - v : v;
                }
        }
        st = heed_model_normalize(m, x);
    }
    if (st == HEED_OK) {
        if (pl) *pl = at;
        if (inverted) *inverted = flip;
    }
    heed_tensor_free(&conv), heed_tensor_free(&small);
    return st;
}

heed_status heed_placement_crop(const heed_tensor *map, const heed_placement *pl, int H, int W,
                                heed_tensor *out) {
    if (!map || !pl || !out || out == map)
        return heed_fail(HEED_ERR_ARG, "placement crop: %s", out && out == map ? "out is the map"
                                                                               : "a NULL argument");
    if (map->n != 1 || map->c != 1)
        return heed_fail(HEED_ERR_ARG, "placement crop: the map is %dx%dx%dx%d (one map of one channel)",
                         map->n, map->c, map->h, map->w);
    /* H and W first: W - pl->w must not overflow */
    if (H < 1 || W < 1 || pl->w < 1 || pl->h < 1 || pl->x < 0 || pl->y < 0 || pl->x > W - pl->w ||
        pl->y > H - pl->h)
        return heed_fail(HEED_ERR_ARG, "placement crop: %dx%d at (%d, %d) is not inside the %dx%d frame",
                         pl->w, pl->h, pl->x, pl->y, W, H);
    heed_tensor full = {0};
    HEED_TRY(heed_image_resize(map, H, W, &full));
    heed_status st = heed_tensor_ensure(out, 1, 1, pl->h, pl->w);
    for (int i = 0; st == HEED_OK && i < pl->h; i++)
        memcpy(out->data + (size_t)i * pl->w, full.data + (size_t)(pl->y + i) * W + pl->x,
               (size_t)pl->w * sizeof(float));
    heed_tensor_free(&full);
    return st;
}
