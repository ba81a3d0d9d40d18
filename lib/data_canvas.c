/* data_canvas.c -- canvas datasets: Fashion-MNIST items placed on a larger
 * black canvas, with clutter, rendered on demand (see data.h for the draw
 * order).
 *
 * With the item (H x W, pixels a) at (y, x) and pieces k cut at (cy_k, cx_k)
 * from items s_k (pixels b_k) and put at (py_k, px_k), canvas pixel (u, v) is
 *   out(u, v) = max(0, a(u - y, v - x), max_k b_k(u - py_k + cy_k, v - px_k + cx_k))
 * over the terms whose indices fall inside the item or the P x P piece.
 * Nothing here is differentiated: the data has no backward pass.
 */
#include "data.h"

#include <string.h>

/* S at most this: one canvas stays small (64 MB) and far from int limits. */
enum { CANVAS_MAX_SIZE = 4096 };

typedef struct canvas_preset {
    const char *name;
    int size, clutter;
} canvas_preset;

static const canvas_preset presets[] = {
    {"fmnist-translated60", 60, 0},
    {"fmnist-translated100", 100, 0},
    {"fmnist-cluttered60", 60, 4},
    {"fmnist-cluttered100", 100, 8},
};

heed_status heed_canvas_preset(heed_canvas_cfg *cfg, const char *name, int train) {
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (name && !strcmp(name, presets[i].name)) {
            *cfg = (heed_canvas_cfg){.size = presets[i].size, .clutter = presets[i].clutter,
                                     .piece = 8, .fixed = !train,
                                     .seed = train ? 0 : HEED_CANVAS_TEST_SEED};
            return HEED_OK;
        }
    return heed_fail(HEED_ERR_ARG, "unknown canvas dataset '%s' (" HEED_CANVAS_NAMES ")",
                     name ? name : "(null)");
}

heed_status heed_canvas_make(heed_dataset *d, const heed_canvas_cfg *cfg) {
    if (d->canvas.cfg.size)
        return heed_fail(HEED_ERR_ARG, "canvas: the dataset already is a %dx%d canvas dataset",
                         d->canvas.cfg.size, d->canvas.cfg.size);
    if (!d->images || d->count < 1)
        return heed_fail(HEED_ERR_ARG, "canvas: the dataset holds no images");
    if (d->c != 1)
        return heed_fail(HEED_ERR_ARG, "canvas: items must have 1 channel, not %d", d->c);
    const int S = cfg->size, P = cfg->piece;
    if (S < d->h || S < d->w || S > CANVAS_MAX_SIZE)
        return heed_fail(HEED_ERR_ARG, "canvas: a %dx%d canvas cannot hold %dx%d items (at most %d)",
                         S, S, d->h, d->w, CANVAS_MAX_SIZE);
    if (cfg->clutter < 0 || cfg->clutter > HEED_CANVAS_MAX_CLUTTER)
        return heed_fail(HEED_ERR_ARG, "canvas: %d clutter pieces (0..%d)", cfg->clutter,
                         HEED_CANVAS_MAX_CLUTTER);
    if (cfg->clutter > 0 && (P < 1 || P > d->h || P > d->w))
        return heed_fail(HEED_ERR_ARG, "canvas: %dx%d clutter pieces cannot be cut from %dx%d items",
                         P, P, d->h, d->w);
    d->canvas = (heed_canvas){.cfg = *cfg, .src_count = d->count, .src_h = d->h, .src_w = d->w,
                              .src = d->images};
    d->images = NULL;
    d->h = d->w = S;
    return HEED_OK;
}

heed_status heed_canvas_load(heed_dataset *d, const heed_canvas_cfg *cfg, const char *dir,
                             int train, int limit) {
    HEED_TRY(heed_fmnist_load(d, dir, train, 0));
    heed_status st = heed_canvas_make(d, cfg);
    if (st != HEED_OK) {
        heed_dataset_free(d);
        return st;
    }
    if (limit > 0 && limit < d->count) d->count = limit;
    return HEED_OK;
}

heed_status heed_canvas_draw(const heed_dataset *d, int index, heed_rng *r, heed_canvas_place *p) {
    const heed_canvas *cv = &d->canvas;
    if (!cv->cfg.size || !cv->src)
        return heed_fail(HEED_ERR_ARG, "canvas draw: not a canvas dataset");
    if (index < 0 || index >= d->count)
        return heed_fail(HEED_ERR_ARG, "canvas draw: index %d is outside the %d items", index,
                         d->count);
    heed_rng own;
    if (cv->cfg.fixed) {
        heed_rng_seed(&own, cv->cfg.seed, (uint64_t)index);
        r = &own;
    } else if (!r) {
        return heed_fail(HEED_ERR_ARG, "canvas draw: training placements need a random generator");
    }
    const uint32_t S = (uint32_t)cv->cfg.size, P = (uint32_t)cv->cfg.piece;
    const uint32_t H = (uint32_t)cv->src_h, W = (uint32_t)cv->src_w, N = (uint32_t)cv->src_count;
    p->x = (int)heed_rng_below(r, S - W + 1);
    p->y = (int)heed_rng_below(r, S - H + 1);
    p->pieces = cv->cfg.clutter;
    for (int k = 0; k < p->pieces; k++) {
        heed_canvas_piece *q = &p->piece[k];
        /* Skipping over `index` keeps the draw uniform over the other items. */
        q->src = N > 1 ? (int)heed_rng_below(r, N - 1) : 0;
        if (N > 1 && q->src >= index) q->src++;
        q->cx = (int)heed_rng_below(r, W - P + 1);
        q->cy = (int)heed_rng_below(r, H - P + 1);
        q->x = (int)heed_rng_below(r, S - P + 1);
        q->y = (int)heed_rng_below(r, S - P + 1);
    }
    return HEED_OK;
}

/* out(oy + i, ox + j) = max(out, src(sy + i, sx + j)) for i < h, j < w;
 * src rows are `stride` floats apart, out rows S. */
static void max_into(float *out, int S, int oy, int ox, const float *src, int stride, int sy,
                     int sx, int h, int w) {
    for (int i = 0; i < h; i++) {
        float *o = out + (size_t)(oy + i) * S + ox;
        const float *s = src + (size_t)(sy + i) * stride + sx;
        for (int j = 0; j < w; j++) o[j] = s[j] > o[j] ? s[j] : o[j];
    }
}

void heed_canvas_render(const heed_dataset *d, int index, const heed_canvas_place *p, float *out) {
    const heed_canvas *cv = &d->canvas;
    const int S = cv->cfg.size, P = cv->cfg.piece, H = cv->src_h, W = cv->src_w;
    const size_t item = (size_t)H * W;
    memset(out, 0, (size_t)S * S * sizeof(float));
    for (int k = 0; k < p->pieces; k++) {
        const heed_canvas_piece *q = &p->piece[k];
        max_into(out, S, q->y, q->x, cv->src + (size_t)q->src * item, W, q->cy, q->cx, P, P);
    }
    max_into(out, S, p->y, p->x, cv->src + (size_t)index * item, W, 0, 0, H, W);
}
