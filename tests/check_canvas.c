/* check_canvas.c -- canvas datasets (items on a larger black canvas, with
 * clutter): placements replayed here from the draw order data.h documents,
 * canvases re-rendered here pixel by pixel (maximum of the item and the
 * crops covering each pixel), fixed test placements whatever the batch,
 * fresh but reproducible training placements, bounds, augmentation after
 * rendering, loading from IDX files, and the error paths. Small synthetic
 * items keep it fast; the installed Fashion-MNIST is used when present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "testutil.h"

/* Pixel (i, j) of source item t: exact multiples of 1/255 (they survive an
 * IDX round trip), zero at scattered places like a real item's background. */
static float src_pixel(int t, int i, int j) {
    const int v = (t * 31 + i * 7 + j * 3) % 251;
    return (t + i * 5 + j) % 7 == 0 ? 0.0f : (float)(v + 4) / 255.0f;
}

/* A dataset of n items of h x w, labels (7t + 3) mod 10, made a canvas. */
static void make_canvas(heed_dataset *d, int n, int h, int w, const heed_canvas_cfg *cfg) {
    *d = (heed_dataset){.count = n, .c = 1, .h = h, .w = w, .classes = 10};
    d->images = heed_alloc((size_t)n * h * w * sizeof(float));
    d->labels = malloc((size_t)n * sizeof(int));
    ck_assert(d->images && d->labels);
    for (int t = 0; t < n; t++) {
        d->labels[t] = (7 * t + 3) % 10;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) d->images[((size_t)t * h + i) * w + j] = src_pixel(t, i, j);
    }
    ck_assert_int_eq(heed_canvas_make(d, cfg), HEED_OK);
}

/* The placement of item `index`, replayed from data.h's description. */
typedef struct replay {
    int y, x;
    int src[HEED_CANVAS_MAX_CLUTTER], cy[HEED_CANVAS_MAX_CLUTTER], cx[HEED_CANVAS_MAX_CLUTTER];
    int py[HEED_CANVAS_MAX_CLUTTER], px[HEED_CANVAS_MAX_CLUTTER];
} replay;

static void replay_draw(heed_rng *r, const heed_dataset *d, int index, replay *p) {
    const heed_canvas *cv = &d->canvas;
    const uint32_t S = (uint32_t)cv->cfg.size, P = (uint32_t)cv->cfg.piece;
    const uint32_t H = (uint32_t)cv->src_h, W = (uint32_t)cv->src_w;
    p->x = (int)heed_rng_below(r, S - W + 1);
    p->y = (int)heed_rng_below(r, S - H + 1);
    for (int k = 0; k < cv->cfg.clutter; k++) {
        int s = (int)heed_rng_below(r, (uint32_t)cv->src_count - 1);
        p->src[k] = s < index ? s : s + 1;
        p->cx[k] = (int)heed_rng_below(r, W - P + 1);
        p->cy[k] = (int)heed_rng_below(r, H - P + 1);
        p->px[k] = (int)heed_rng_below(r, S - P + 1);
        p->py[k] = (int)heed_rng_below(r, S - P + 1);
    }
}

static void replay_fixed(const heed_dataset *d, int index, replay *p) {
    heed_rng r;
    heed_rng_seed(&r, d->canvas.cfg.seed, (uint64_t)index);
    replay_draw(&r, d, index, p);
}

/* Canvas pixel (u, v): the largest of 0, the item's pixel and every piece's
 * pixel that covers (u, v). Reads the source pixels through src_pixel, not
 * the dataset, so the canvas is checked against the values written. */
static float expected_pixel(const heed_dataset *d, int index, const replay *p, int u, int v) {
    const heed_canvas *cv = &d->canvas;
    const int H = cv->src_h, W = cv->src_w, P = cv->cfg.piece;
    float best = 0.0f;
    if (u >= p->y && u < p->y + H && v >= p->x && v < p->x + W) {
        const float a = src_pixel(index, u - p->y, v - p->x);
        best = a > best ? a : best;
    }
    for (int k = 0; k < cv->cfg.clutter; k++)
        if (u >= p->py[k] && u < p->py[k] + P && v >= p->px[k] && v < p->px[k] + P) {
            const float b = src_pixel(p->src[k], u - p->py[k] + p->cy[k], v - p->px[k] + p->cx[k]);
            best = b > best ? b : best;
        }
    return best;
}

/* Asserts the S x S canvas `out` is item `index` placed as p. */
static void expect_canvas(const heed_dataset *d, int index, const replay *p, const float *out) {
    const int S = d->canvas.cfg.size;
    for (int u = 0; u < S; u++)
        for (int v = 0; v < S; v++)
            ck_assert_msg(out[u * S + v] == expected_pixel(d, index, p, u, v),
                          "item %d, canvas pixel (%d, %d): %g, expected %g", index, u, v,
                          (double)out[u * S + v], (double)expected_pixel(d, index, p, u, v));
}

static void expect_same_place(const heed_canvas_place *got, const replay *want, int clutter) {
    ck_assert_int_eq(got->x, want->x);
    ck_assert_int_eq(got->y, want->y);
    ck_assert_int_eq(got->pieces, clutter);
    for (int k = 0; k < clutter; k++) {
        ck_assert_int_eq(got->piece[k].src, want->src[k]);
        ck_assert_int_eq(got->piece[k].cx, want->cx[k]);
        ck_assert_int_eq(got->piece[k].cy, want->cy[k]);
        ck_assert_int_eq(got->piece[k].x, want->px[k]);
        ck_assert_int_eq(got->piece[k].y, want->py[k]);
    }
}

enum { N = 7, IH = 6, IW = 5 };

START_TEST(translated_item_sits_at_its_drawn_offset) {
    heed_dataset d;
    const heed_canvas_cfg cfg = {.size = 11, .clutter = 0, .piece = 3, .fixed = 1, .seed = 77};
    make_canvas(&d, N, IH, IW, &cfg);
    ck_assert_ptr_null(d.images);
    ck_assert(d.c == 1 && d.h == 11 && d.w == 11 && d.count == N);
    int idx[N], labels[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    heed_tensor x = {0};
    ck_assert_int_eq(heed_dataset_batch(&d, idx, N, NULL, NULL, &x, labels), HEED_OK);
    ck_assert(x.n == N && x.c == 1 && x.h == 11 && x.w == 11);
    int xs_seen = 0;
    for (int t = 0; t < N; t++) {
        ck_assert_int_eq(labels[t], (7 * t + 3) % 10);
        const float *out = x.data + t * 121;
        /* Search every offset for the one where the canvas is exactly the
         * item there and black elsewhere. */
        int found = 0, fy = -1, fx = -1;
        for (int oy = 0; oy + IH <= 11; oy++)
            for (int ox = 0; ox + IW <= 11; ox++) {
                int ok = 1;
                for (int u = 0; u < 11 && ok; u++)
                    for (int v = 0; v < 11 && ok; v++) {
                        const int in = u >= oy && u < oy + IH && v >= ox && v < ox + IW;
                        ok = out[u * 11 + v] == (in ? src_pixel(t, u - oy, v - ox) : 0.0f);
                    }
                if (ok) found++, fy = oy, fx = ox;
            }
        ck_assert_msg(found == 1, "item %d appears at %d offsets", t, found);
        replay want;
        replay_fixed(&d, t, &want);
        ck_assert_int_eq(fy, want.y);
        ck_assert_int_eq(fx, want.x);
        heed_canvas_place got;
        ck_assert_int_eq(heed_canvas_draw(&d, t, NULL, &got), HEED_OK);
        expect_same_place(&got, &want, 0);
        xs_seen |= 1 << fx;
    }
    ck_assert_msg(xs_seen != (xs_seen & -xs_seen), "all %d items at one column", N);
    heed_tensor_free(&x);
    heed_dataset_free(&d);
    ck_assert_ptr_null(d.canvas.src);
}
END_TEST

START_TEST(fixed_placements_ignore_the_batch) {
    heed_dataset d;
    const heed_canvas_cfg cfg = {.size = 16, .clutter = 4, .piece = 3, .fixed = 1, .seed = 5};
    make_canvas(&d, N, IH, IW, &cfg);
    heed_tensor a = {0}, b = {0}, c = {0};
    heed_rng r1, r2, before;
    heed_rng_seed(&r1, 1, 0), heed_rng_seed(&r2, 2, 0);
    before = r1;
    int la[2], lb[2];
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){5, 3}, 2, NULL, &r1, &a, la), HEED_OK);
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){3, 5}, 2, NULL, &r2, &b, lb), HEED_OK);
    ck_assert_mem_eq(&r1, &before, sizeof r1); /* placements take nothing from r */
    const size_t S2 = 16 * 16;
    ck_assert_mem_eq(a.data, b.data + S2, S2 * sizeof(float));
    ck_assert_mem_eq(a.data + S2, b.data, S2 * sizeof(float));
    ck_assert(la[0] == lb[1] && la[1] == lb[0]);
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){3}, 1, NULL, NULL, &c, NULL), HEED_OK);
    ck_assert_mem_eq(c.data, b.data, S2 * sizeof(float));
    /* Another seed places the items elsewhere. */
    heed_dataset e;
    heed_canvas_cfg other = cfg;
    other.seed = 6;
    make_canvas(&e, N, IH, IW, &other);
    ck_assert_int_eq(heed_dataset_batch(&e, (int[]){5, 3}, 2, NULL, NULL, &c, NULL), HEED_OK);
    ck_assert(memcmp(c.data, a.data, 2 * S2 * sizeof(float)) != 0);
    heed_tensor_free(&a), heed_tensor_free(&b), heed_tensor_free(&c);
    heed_dataset_free(&d), heed_dataset_free(&e);
}
END_TEST

START_TEST(clutter_is_the_max_of_item_and_crops) {
    heed_dataset d;
    const heed_canvas_cfg cfg = {.size = 16, .clutter = 4, .piece = 3, .fixed = 1, .seed = 9};
    make_canvas(&d, N, IH, IW, &cfg);
    int idx[N];
    for (int i = 0; i < N; i++) idx[i] = N - 1 - i;
    heed_tensor x = {0};
    ck_assert_int_eq(heed_dataset_batch(&d, idx, N, NULL, NULL, &x, NULL), HEED_OK);
    int outside = 0;
    for (int k = 0; k < N; k++) {
        const int t = idx[k];
        replay want;
        replay_fixed(&d, t, &want);
        expect_canvas(&d, t, &want, x.data + k * 256);
        heed_canvas_place got;
        ck_assert_int_eq(heed_canvas_draw(&d, t, NULL, &got), HEED_OK);
        expect_same_place(&got, &want, 4);
        for (int p = 0; p < 4; p++) ck_assert_int_ne(got.piece[p].src, t); /* other items */
        /* Clutter shows outside the item's box. */
        int any = 0;
        for (int u = 0; u < 16; u++)
            for (int v = 0; v < 16; v++)
                if (!(u >= want.y && u < want.y + IH && v >= want.x && v < want.x + IW))
                    any |= x.data[k * 256 + u * 16 + v] != 0.0f;
        outside += any;
    }
    ck_assert_int_ge(outside, N - 1);
    heed_tensor_free(&x);
    heed_dataset_free(&d);
}
END_TEST

/* Crop at offset (dy, dx) of the zero-padded canvas, then maybe mirrored:
 * out(u, v) = canvas(u + dy, v' + dx), v' = flip ? S-1-v : v (data.h). */
static float augmented(const heed_dataset *d, int index, const replay *p, int u, int v, int dy,
                       int dx, int flip) {
    const int S = d->canvas.cfg.size, su = u + dy, sv = (flip ? S - 1 - v : v) + dx;
    return su < 0 || su >= S || sv < 0 || sv >= S ? 0.0f : expected_pixel(d, index, p, su, sv);
}

START_TEST(training_placements_come_from_the_generator) {
    heed_dataset d;
    const heed_canvas_cfg cfg = {.size = 14, .clutter = 3, .piece = 2, .fixed = 0};
    make_canvas(&d, N, IH, IW, &cfg);
    const int idx[4] = {2, 0, 2, 6}, S = 14;
    const size_t S2 = S * S;
    heed_tensor a = {0}, b = {0};
    heed_rng r, again, other, rep;
    heed_rng_seed(&r, 3, 1), heed_rng_seed(&again, 3, 1), heed_rng_seed(&other, 4, 1);
    rep = r;
    const heed_augment aug = {.crop_pad = 1, .hflip = 1};
    ck_assert_int_eq(heed_dataset_batch(&d, idx, 4, &aug, &r, &a, NULL), HEED_OK);
    ck_assert_int_eq(heed_dataset_batch(&d, idx, 4, &aug, &again, &b, NULL), HEED_OK);
    ck_assert_mem_eq(a.data, b.data, 4 * S2 * sizeof(float));
    ck_assert_mem_eq(&r, &again, sizeof r);
    ck_assert_int_eq(heed_dataset_batch(&d, idx, 4, &aug, &other, &b, NULL), HEED_OK);
    ck_assert(memcmp(a.data, b.data, 4 * S2 * sizeof(float)) != 0);
    /* Item by item: its placement draws, then the crop's row and column
     * offsets in [0, 2], then the flip. */
    for (int k = 0; k < 4; k++) {
        replay p;
        replay_draw(&rep, &d, idx[k], &p);
        const int dy = (int)heed_rng_below(&rep, 3) - 1, dx = (int)heed_rng_below(&rep, 3) - 1;
        const int flip = (int)heed_rng_below(&rep, 2);
        for (int u = 0; u < S; u++)
            for (int v = 0; v < S; v++)
                ck_assert_float_eq(a.data[k * S2 + u * S + v],
                                   augmented(&d, idx[k], &p, u, v, dy, dx, flip));
    }
    ck_assert_mem_eq(&rep, &r, sizeof r);
    /* Without augmentation, consecutive batches of one epoch differ, and
     * each one's placements are the replayed ones. */
    heed_rng_seed(&r, 8, 0);
    rep = r;
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){4}, 1, NULL, &r, &a, NULL), HEED_OK);
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){4}, 1, NULL, &r, &b, NULL), HEED_OK);
    ck_assert(memcmp(a.data, b.data, S2 * sizeof(float)) != 0);
    replay p;
    replay_draw(&rep, &d, 4, &p);
    expect_canvas(&d, 4, &p, a.data);
    replay_draw(&rep, &d, 4, &p);
    expect_canvas(&d, 4, &p, b.data);
    heed_tensor_free(&a), heed_tensor_free(&b);
    heed_dataset_free(&d);
}
END_TEST

START_TEST(placements_stay_inside_and_reach_every_position) {
    heed_dataset d;
    const heed_canvas_cfg cfg = {.size = 9, .clutter = 2, .piece = 3, .fixed = 0};
    make_canvas(&d, N, IH, IW, &cfg);
    heed_rng r;
    heed_rng_seed(&r, 12, 0);
    /* seen bits per coordinate: item x in 0..4, y in 0..3; crop cx 0..2,
     * cy 0..3; piece x, y 0..6; sources 0..6 but never the item. */
    unsigned sx = 0, sy = 0, scx = 0, scy = 0, spx = 0, spy = 0, ssrc = 0;
    for (int rep = 0; rep < 3000; rep++) {
        const int t = rep % N;
        heed_canvas_place p;
        ck_assert_int_eq(heed_canvas_draw(&d, t, &r, &p), HEED_OK);
        ck_assert(p.x >= 0 && p.x + IW <= 9 && p.y >= 0 && p.y + IH <= 9);
        sx |= 1u << p.x, sy |= 1u << p.y;
        for (int k = 0; k < 2; k++) {
            const heed_canvas_piece *q = &p.piece[k];
            ck_assert(q->src >= 0 && q->src < N && q->src != t);
            ck_assert(q->cx >= 0 && q->cx + 3 <= IW && q->cy >= 0 && q->cy + 3 <= IH);
            ck_assert(q->x >= 0 && q->x + 3 <= 9 && q->y >= 0 && q->y + 3 <= 9);
            scx |= 1u << q->cx, scy |= 1u << q->cy, spx |= 1u << q->x, spy |= 1u << q->y;
            ssrc |= 1u << q->src;
        }
    }
    ck_assert_uint_eq(sx, 0x1f);
    ck_assert_uint_eq(sy, 0xf);
    ck_assert_uint_eq(scx, 0x7);
    ck_assert_uint_eq(scy, 0xf);
    ck_assert_uint_eq(spx, 0x7f);
    ck_assert_uint_eq(spy, 0x7f);
    ck_assert_uint_eq(ssrc, 0x7f);
    heed_dataset_free(&d);

    /* The presets' sizes: 28 x 28 items, 8 x 8 pieces, 100 x 100 canvas. */
    heed_canvas_cfg big;
    ck_assert_int_eq(heed_canvas_preset(&big, "fmnist-cluttered100", 1), HEED_OK);
    make_canvas(&d, 3, 28, 28, &big);
    for (int rep = 0; rep < 500; rep++) {
        heed_canvas_place p;
        ck_assert_int_eq(heed_canvas_draw(&d, rep % 3, &r, &p), HEED_OK);
        ck_assert(p.x >= 0 && p.x <= 72 && p.y >= 0 && p.y <= 72 && p.pieces == 8);
        for (int k = 0; k < 8; k++)
            ck_assert(p.piece[k].cx <= 20 && p.piece[k].cy <= 20 && p.piece[k].x <= 92 &&
                      p.piece[k].y <= 92 && p.piece[k].src != rep % 3);
    }
    heed_dataset_free(&d);
}
END_TEST

START_TEST(presets_and_a_single_source) {
    heed_canvas_cfg c;
    ck_assert_int_eq(heed_canvas_preset(&c, "fmnist-translated60", 1), HEED_OK);
    ck_assert(c.size == 60 && c.clutter == 0 && !c.fixed);
    ck_assert_int_eq(heed_canvas_preset(&c, "fmnist-translated100", 0), HEED_OK);
    ck_assert(c.size == 100 && c.clutter == 0 && c.fixed && c.seed == 20141124u);
    ck_assert_int_eq(heed_canvas_preset(&c, "fmnist-cluttered60", 0), HEED_OK);
    ck_assert(c.size == 60 && c.clutter == 4 && c.piece == 8 && c.fixed && c.seed == HEED_CANVAS_TEST_SEED);
    ck_assert_int_eq(heed_canvas_preset(&c, "fmnist-cluttered100", 0), HEED_OK);
    ck_assert(c.size == 100 && c.clutter == 8 && c.piece == 8);
    /* One item: its clutter can only come from itself. */
    heed_dataset d;
    const heed_canvas_cfg one = {.size = 8, .clutter = 2, .piece = 2, .fixed = 1, .seed = 3};
    make_canvas(&d, 1, IH, IW, &one);
    heed_canvas_place p;
    ck_assert_int_eq(heed_canvas_draw(&d, 0, NULL, &p), HEED_OK);
    ck_assert(p.piece[0].src == 0 && p.piece[1].src == 0);
    heed_tensor x = {0};
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){0}, 1, NULL, NULL, &x, NULL), HEED_OK);
    heed_rng r;
    heed_rng_seed(&r, 3, 0);
    replay want = {.x = (int)heed_rng_below(&r, 4)};
    want.y = (int)heed_rng_below(&r, 3);
    for (int k = 0; k < 2; k++) {
        want.src[k] = 0;
        want.cx[k] = (int)heed_rng_below(&r, 4), want.cy[k] = (int)heed_rng_below(&r, 5);
        want.px[k] = (int)heed_rng_below(&r, 7), want.py[k] = (int)heed_rng_below(&r, 7);
    }
    expect_canvas(&d, 0, &want, x.data);
    heed_tensor_free(&x);
    heed_dataset_free(&d);
}
END_TEST

START_TEST(canvas_errors) {
    heed_canvas_cfg c;
    ck_assert_int_eq(heed_canvas_preset(&c, "fmnist-cluttered61", 0), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "fmnist-cluttered61"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "fmnist-translated60"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "fmnist-cluttered100"));
    ck_assert_int_eq(heed_canvas_preset(&c, NULL, 0), HEED_ERR_ARG);

    float px[2 * 3 * 4 * 4] = {0};
    heed_dataset d = {.count = 2, .c = 3, .h = 4, .w = 4, .images = px};
    const heed_canvas_cfg ok = {.size = 6, .clutter = 1, .piece = 2};
    ck_assert_int_eq(heed_canvas_make(&d, &ok), HEED_ERR_ARG); /* 3 channels */
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "channel"));
    d.c = 1;
    const heed_canvas_cfg bad[] = {
        {.size = 3, .clutter = 0, .piece = 2},  /* canvas smaller than an item */
        {.size = 5000, .clutter = 0, .piece = 2},
        {.size = 6, .clutter = -1, .piece = 2},
        {.size = 6, .clutter = HEED_CANVAS_MAX_CLUTTER + 1, .piece = 2},
        {.size = 6, .clutter = 1, .piece = 0},
        {.size = 6, .clutter = 1, .piece = 5},  /* larger than an item */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(heed_canvas_make(&d, &bad[i]) == HEED_ERR_ARG, "bad config %zu accepted", i);
        ck_assert(d.images == px && d.h == 4 && d.canvas.cfg.size == 0); /* unchanged */
    }
    /* The limits themselves are allowed: a canvas the size of its items
     * (one place, the corner) and a piece that is a whole item (cut at the
     * corner, put at the corner): the canvas is the max of the two items. */
    {
        float two[2 * 4 * 4];
        for (int i = 0; i < 16; i++) two[i] = (float)i / 16, two[16 + i] = (float)(15 - i) / 16;
        heed_dataset e = {.count = 2, .c = 1, .h = 4, .w = 4, .images = two};
        const heed_canvas_cfg whole = {.size = 4, .clutter = 1, .piece = 4, .fixed = 1, .seed = 5};
        ck_assert_msg(heed_canvas_make(&e, &whole) == HEED_OK, "%s", heed_last_error());
        heed_tensor y = {0};
        ck_assert_int_eq(heed_dataset_batch(&e, (int[]){0}, 1, NULL, NULL, &y, NULL), HEED_OK);
        ck_assert(y.c == 1 && y.h == 4 && y.w == 4);
        for (int i = 0; i < 16; i++) ck_assert_float_eq(y.data[i], fmaxf(two[i], two[16 + i]));
        heed_tensor_free(&y);
    }
    heed_dataset empty = {0};
    ck_assert_int_eq(heed_canvas_make(&empty, &ok), HEED_ERR_ARG);
    ck_assert_int_eq(heed_canvas_make(&d, &ok), HEED_OK);
    ck_assert_ptr_eq(d.canvas.src, px);
    d.images = px;
    ck_assert_int_eq(heed_canvas_make(&d, &ok), HEED_ERR_ARG); /* already a canvas */
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "already"));
    d.images = NULL;

    /* A training canvas needs a generator; indices are checked. */
    heed_tensor x = {0};
    heed_canvas_place p;
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){0}, 1, NULL, NULL, &x, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "random"));
    ck_assert_int_eq(heed_canvas_draw(&d, 0, NULL, &p), HEED_ERR_ARG);
    heed_rng r;
    heed_rng_seed(&r, 1, 0);
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){2}, 1, NULL, &r, &x, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "index 2"));
    ck_assert_int_eq(heed_canvas_draw(&d, -1, &r, &p), HEED_ERR_ARG);
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){1}, 1, NULL, &r, &x, NULL), HEED_OK);
    ck_assert(x.c == 1 && x.h == 6 && x.w == 6);
    d.canvas.src = NULL;
    ck_assert_int_eq(heed_dataset_batch(&d, (int[]){1}, 1, NULL, &r, &x, NULL), HEED_ERR_ARG);
    heed_dataset plain = {.count = 2, .c = 1, .h = 4, .w = 4, .images = px};
    ck_assert_int_eq(heed_canvas_draw(&plain, 0, &r, &p), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not a canvas"));
    heed_tensor_free(&x);
}
END_TEST

/* ---- loading ------------------------------------------------------------- */

enum { LN = 9 };

/* Writes LN synthetic 28 x 28 items as dir/<split>-{images,labels}-... */
static void write_idx(const char *dir, const char *split) {
    heed_dataset d = {.count = LN, .c = 1, .h = 28, .w = 28, .classes = 10};
    float *img = malloc(LN * 784 * sizeof(float));
    int labels[LN];
    for (int t = 0; t < LN; t++) {
        labels[t] = (7 * t + 3) % 10;
        for (int i = 0; i < 784; i++) img[t * 784 + i] = src_pixel(t, i / 28, i % 28);
    }
    d.images = img, d.labels = labels;
    char ip[256], lp[256];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, split);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, split);
    ck_assert_int_eq(heed_idx_write(&d, ip, lp), HEED_OK);
    free(img);
}

START_TEST(load_keeps_the_whole_split_as_sources) {
    char dir[64], path[256];
    strcpy(dir, "/tmp/heed-canvas-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_idx(dir, "t10k");
    write_idx(dir, "train");
    heed_canvas_cfg cfg;
    ck_assert_int_eq(heed_canvas_preset(&cfg, "fmnist-cluttered60", 0), HEED_OK);
    heed_dataset few, all;
    ck_assert_int_eq(heed_canvas_load(&few, &cfg, dir, 0, 4), HEED_OK);
    ck_assert_int_eq(heed_canvas_load(&all, &cfg, dir, 0, 0), HEED_OK);
    ck_assert(few.count == 4 && all.count == LN && few.canvas.src_count == LN);
    ck_assert(few.c == 1 && few.h == 60 && few.w == 60 && few.classes == 10);
    ck_assert_ptr_null(few.images);
    ck_assert_str_eq(few.class_names[9], "Ankle boot");
    heed_tensor a = {0}, b = {0};
    int la[4], lb[4];
    const int idx[4] = {3, 1, 0, 2};
    ck_assert_int_eq(heed_dataset_batch(&few, idx, 4, NULL, NULL, &a, la), HEED_OK);
    ck_assert_int_eq(heed_dataset_batch(&all, idx, 4, NULL, NULL, &b, lb), HEED_OK);
    ck_assert_mem_eq(a.data, b.data, 4 * 3600 * sizeof(float));
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(la[k], (7 * idx[k] + 3) % 10);
        replay want;
        replay_fixed(&few, idx[k], &want);
        expect_canvas(&few, idx[k], &want, a.data + k * 3600);
    }
    heed_dataset_free(&few), heed_dataset_free(&all);
    /* The training split: the first items, drawn from the generator. */
    ck_assert_int_eq(heed_canvas_preset(&cfg, "fmnist-translated100", 1), HEED_OK);
    ck_assert_int_eq(heed_canvas_load(&few, &cfg, dir, 1, 2), HEED_OK);
    ck_assert(few.count == 2 && few.h == 100 && !few.canvas.cfg.fixed);
    heed_rng r, rep;
    heed_rng_seed(&r, 2, 0);
    rep = r;
    ck_assert_int_eq(heed_dataset_batch(&few, (int[]){1}, 1, NULL, &r, &a, NULL), HEED_OK);
    replay want;
    replay_draw(&rep, &few, 1, &want);
    expect_canvas(&few, 1, &want, a.data);
    heed_dataset_free(&few);
    /* Errors of the loader come through, and leave the dataset empty. */
    ck_assert_int_eq(heed_canvas_load(&few, &cfg, "/nonexistent-heed-dir", 1, 0), HEED_ERR_IO);
    ck_assert(few.count == 0 && !few.canvas.src);
    cfg.size = 20; /* smaller than the 28 x 28 items */
    ck_assert_int_eq(heed_canvas_load(&few, &cfg, dir, 1, 0), HEED_ERR_ARG);
    ck_assert(few.count == 0 && !few.canvas.src && !few.images);
    heed_tensor_free(&a), heed_tensor_free(&b);
    unlink((snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir), path));
    unlink((snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir), path));
    unlink((snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir), path));
    unlink((snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir), path));
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(installed_fashion_mnist_canvases) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) {
        printf("canvas: %s is missing: Fashion-MNIST checks skipped\n", HEED_FMNIST_DIR);
        return;
    }
    heed_dataset plain, d;
    ck_assert_int_eq(heed_fmnist_load(&plain, NULL, 0, 16), HEED_OK);
    heed_canvas_cfg cfg;
    ck_assert_int_eq(heed_canvas_preset(&cfg, "fmnist-cluttered100", 0), HEED_OK);
    ck_assert_int_eq(heed_canvas_load(&d, &cfg, NULL, 0, 16), HEED_OK);
    ck_assert(d.count == 16 && d.canvas.src_count == 10000 && d.h == 100);
    ck_assert_mem_eq(d.canvas.src, plain.images, 16 * 784 * sizeof(float));
    int idx[16], labels[16];
    for (int i = 0; i < 16; i++) idx[i] = i;
    heed_tensor x = {0};
    ck_assert_int_eq(heed_dataset_batch(&d, idx, 16, NULL, NULL, &x, labels), HEED_OK);
    ck_assert_int_eq(labels[0], 9);
    int cluttered = 0;
    for (int k = 0; k < 16; k++) {
        ck_assert_int_eq(labels[k], plain.labels[k]);
        heed_canvas_place p;
        ck_assert_int_eq(heed_canvas_draw(&d, k, NULL, &p), HEED_OK);
        const float *out = x.data + k * 10000;
        int outside = 0;
        for (int u = 0; u < 100; u++)
            for (int v = 0; v < 100; v++) {
                const float o = out[u * 100 + v];
                ck_assert(o >= 0.0f && o <= 1.0f);
                if (u >= p.y && u < p.y + 28 && v >= p.x && v < p.x + 28)
                    ck_assert(o >= plain.images[k * 784 + (u - p.y) * 28 + (v - p.x)]);
                else
                    outside |= o > 0.0f;
            }
        cluttered += outside;
    }
    ck_assert_int_ge(cluttered, 12); /* most have clutter outside the item's box */
    heed_tensor_free(&x);
    heed_dataset_free(&d), heed_dataset_free(&plain);
}
END_TEST

Suite *heed_suite_canvas(void) {
    Suite *s = suite_create("canvas");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, translated_item_sits_at_its_drawn_offset);
    tcase_add_test(tc, fixed_placements_ignore_the_batch);
    tcase_add_test(tc, clutter_is_the_max_of_item_and_crops);
    tcase_add_test(tc, training_placements_come_from_the_generator);
    tcase_add_test(tc, placements_stay_inside_and_reach_every_position);
    tcase_add_test(tc, presets_and_a_single_source);
    tcase_add_test(tc, canvas_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, load_keeps_the_whole_split_as_sources);
    tcase_add_test(tc, installed_fashion_mnist_canvases);
    suite_add_tcase(s, tc);
    return s;
}
