/* data.c -- mini-batches from an in-memory dataset, with augmentation.
 *
 * Random crop with zero padding P (torchvision RandomCrop(padding = P)):
 * the image is padded by P zeros on every side to (h + 2P, w + 2P) and an
 * h x w window is cut at offset (i, j), i and j uniform in [0, 2P]. Without
 * building the padded image:
 *   out(y, x) = in(y + i - P, x + j - P), or 0 where that is outside.
 * Horizontal flip then mirrors the crop: out(y, x) = crop(y, w - 1 - x).
 * A canvas dataset's item is rendered first (data_canvas.c) and the crop
 * and flip act on the rendered canvas. The loaders (data_idx.c,
 * data_folder.c) live beside this file.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void heed_dataset_free(heed_dataset *d) {
    heed_free(d->images);
    heed_free(d->canvas.src);
    free(d->labels);
    free(d->class_names);
    *d = (heed_dataset){0};
}

/* The mean and population std of channels c0 .. c0 + nc - 1 of d's
 * images, together. Two passes: the deviations from the mean, not
 * E[x^2] - E[x]^2, which cancels badly when the spread is small against
 * the mean. */
static void channels_stats(const heed_dataset *d, int c0, int nc, double *mean, double *std) {
    const size_t run = (size_t)nc * d->h * d->w, n = (size_t)d->count * run;
    double sum = 0, dev = 0;
    for (int k = 0; k < d->count; k++) {
        const float *p = d->images + ((size_t)k * d->c + c0) * d->h * d->w;
        for (size_t i = 0; i < run; i++) sum += p[i];
    }
    const double m = sum / (double)n;
    for (int k = 0; k < d->count; k++) {
        const float *p = d->images + ((size_t)k * d->c + c0) * d->h * d->w;
        for (size_t i = 0; i < run; i++) dev += (p[i] - m) * (p[i] - m);
    }
    *mean = m;
    *std = sqrt(dev / (double)n);
}

static heed_status check_stats_args(const heed_dataset *d, const double *mean, const double *std) {
    if (!d || !mean || !std) return heed_fail(HEED_ERR_ARG, "dataset statistics: a NULL argument");
    if (!d->images || d->count < 1)
        return heed_fail(HEED_ERR_ARG, "dataset statistics: the dataset holds no images");
    return HEED_OK;
}

heed_status heed_dataset_stats(const heed_dataset *d, double *mean, double *std) {
    HEED_TRY(check_stats_args(d, mean, std));
    channels_stats(d, 0, d->c, mean, std);
    return HEED_OK;
}

heed_status heed_dataset_channel_stats(const heed_dataset *d, double *mean, double *std) {
    HEED_TRY(check_stats_args(d, mean, std));
    for (int c = 0; c < d->c; c++) channels_stats(d, c, 1, &mean[c], &std[c]);
    return HEED_OK;
}

/* One (h, w) plane of a crop at offset (dy, dx) relative to the image
 * (dy = i - P), mirrored when flip. */
static void crop_plane(const float *src, float *dst, int h, int w, int dy, int dx, int flip) {
    for (int y = 0; y < h; y++) {
        float *out = dst + (size_t)y * w;
        const int sy = y + dy;
        if (sy < 0 || sy >= h) {
            memset(out, 0, (size_t)w * sizeof(float));
            continue;
        }
        const float *in = src + (size_t)sy * w;
        for (int x = 0; x < w; x++) {
            const int sx = (flip ? w - 1 - x : x) + dx;
            out[x] = sx >= 0 && sx < w ? in[sx] : 0.0f;
        }
    }
}

/* A crop's offset along a side of `side` pixels, drawn in [-pad, pad]:
 * in long long, as pad may be up to INT_MAX, and then clamped to
 * [-side, side], where the crop is padding alone already, so that the
 * rows and columns crop_plane adds it to stay in int range. */
static int crop_offset(heed_rng *r, int pad, int side) {
    const long long d = (long long)heed_rng_below(r, 2u * (unsigned)pad + 1) - pad;
    return (int)(d < -side ? -side : d > side ? side : d);
}

heed_status heed_dataset_batch(const heed_dataset *d, const int *idx, int n,
                               const heed_augment *aug, heed_rng *r, heed_tensor *x,
                               int *labels) {
    const heed_canvas *cv = &d->canvas;
    const int canvas = cv->cfg.size > 0;
    if (!(canvas ? cv->src : d->images) || d->count < 1)
        return heed_fail(HEED_ERR_ARG, "dataset batch: the dataset holds no images");
    if (n < 1 || !idx) return heed_fail(HEED_ERR_ARG, "dataset batch: batch of %d items", n);
    const int pad = aug ? aug->crop_pad : 0, flip = aug ? aug->hflip : 0;
    if (pad < 0) return heed_fail(HEED_ERR_ARG, "dataset batch: crop padding %d is negative", pad);
    if ((pad > 0 || flip) && !r)
        return heed_fail(HEED_ERR_ARG, "dataset batch: augmentation needs a random generator");
    if (canvas && !cv->cfg.fixed && !r)
        return heed_fail(HEED_ERR_ARG, "dataset batch: training canvases need a random generator "
                         "for their placements");
    for (int k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= d->count)
            return heed_fail(HEED_ERR_ARG, "dataset batch: index %d (item %d of the batch) is "
                             "outside the %d items", idx[k], k, d->count);
    HEED_TRY(heed_tensor_ensure(x, n, d->c, d->h, d->w));
    const size_t plane = (size_t)d->h * d->w, item = (size_t)d->c * plane;
    /* A canvas is rendered into x directly unless it is augmented next. */
    float *rendered = NULL;
    if (canvas && (pad > 0 || flip) && !(rendered = malloc(item * sizeof(float))))
        return heed_fail(HEED_ERR_NOMEM, "dataset batch: cannot allocate a %dx%d canvas", d->h, d->w);
    heed_status st = HEED_OK;
    for (int k = 0; k < n && st == HEED_OK; k++) {
        const float *src = d->images ? d->images + (size_t)idx[k] * item : NULL;
        float *dst = x->data + (size_t)k * item;
        if (labels) labels[k] = d->labels ? d->labels[idx[k]] : 0;
        if (canvas) {
            heed_canvas_place p;
            st = heed_canvas_draw(d, idx[k], r, &p);
            if (st != HEED_OK) break;
            heed_canvas_render(d, idx[k], &p, rendered ? rendered : dst);
            if (!rendered) continue;
            src = rendered;
        }
        int dy = 0, dx = 0, mirror = 0;
        if (pad > 0) {
            dy = crop_offset(r, pad, d->h);
            dx = crop_offset(r, pad, d->w);
        }
        if (flip) mirror = (int)heed_rng_below(r, 2);
        if (dy == 0 && dx == 0 && !mirror) {
            memcpy(dst, src, item * sizeof(float));
            continue;
        }
        for (int ch = 0; ch < d->c; ch++)
            crop_plane(src + ch * plane, dst + ch * plane, d->h, d->w, dy, dx, mirror);
    }
    free(rendered);
    return st;
}
