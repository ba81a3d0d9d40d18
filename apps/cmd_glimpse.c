/* cmd_glimpse.c -- `heed glimpse`: what a recurrent attention model (RAM)
 * predicts for an image, where its glimpses went, and what it saw there.
 *
 * Each image is brought to the model's input as `heed classify` does
 * (image_input.h), the RAM layer's random stream is restarted from --seed
 * (so a run is reproducible and images do not depend on their order), and
 * one inference forward runs. The RAM layer then holds the locations l_t
 * (x, y in [-1, 1]) and the patches it read (ram.h).
 *
 * Coordinates. The sensor centres step t at input pixel
 * c = round((l + 1) / 2 * W) (half to even; H for y) and reads the square of
 * side P * 2^k from c - side/2 for scale k. The image sits in the input
 * frame at placement (px0, py0, pw, ph), so an input coordinate u is
 * (u - px0) * w / pw in the original image (w its width; y alike). The
 * reported px, py are the centres mapped that way; the boxes drawn are the
 * sensor's squares mapped the same way, so they show exactly the pixels it
 * read (a box may run off the image: only its visible part is drawn).
 *
 * Overlay layout, with M = 12 (margin), SEP = 24 (between the panels),
 * GAP = 8 (between patches), T glimpses, S scales, patch side P, for an
 * image w x h:
 *   zoom Z = --zoom, or by default min(Zh, Zw), the image shown within
 *            1280 x 720 (a 720p frame): Zh = ceil(240 / h) for an image
 *            less than 240 pixels high (an integer: pixels stay sharp),
 *            720 / h for one over 720 pixels high, else 1; Zw =
 *            floor(1280 / w) up to 1280 pixels wide (an integer again),
 *            1280 / w over that (a 3000x1 image made a 720520-pixel-wide
 *            picture when only the height counted);
 *   panel  Wd x Hd = round(w Z) x round(h Z): the image, nearest-neighbour
 *            enlarged (integer Z) or resized (bilinear), with the glimpses;
 *   strip  patch zoom z = clamp(floor((Hd - (S-1) GAP) / (S P)), 1,
 *            max(1, floor(CELL_MAX / P))), CELL_MAX = 120: one column per
 *            step, one row per scale (finest on top), each patch P z pixels
 *            square with a 2-pixel border in its step's colour;
 *   canvas width  M + Wd + SEP + T P z + (T-1) GAP + M,
 *          height 2 M + max(Hd, S P z + (S-1) GAP), both panels centred
 *            vertically on a dark grey ground; at most OVERLAY_MAX = 8192
 *            pixels on a side (three float images of 8192^2 take 2.4 GB;
 *            --zoom 12 on a 1000x1000 image took 5.2 GB and 35 s), else
 *            the image is refused.
 * Step colours run along the colour map from 0.1 (first) to 0.9 (last).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image.h"
#include "image_input.h"
#include "overlay.h"
#include "ram.h"

const char cmd_glimpse_summary[] = "show where a recurrent attention model (RAM) looked";

#define MARGIN 12
#define SEP 24
#define GAP 8
#define CELL_MAX 120
#define SHOWN_MIN_H 240 /* the default zoom's bounds on the image shown */
#define SHOWN_MAX_H 720
#define SHOWN_MAX_W 1280
#define OVERLAY_MAX 8192 /* pixels on a side */
#define MAX_GLIMPSES 256
#define GROUND 0.15f /* the canvas's grey */

typedef struct glimpse_opts {
    image_cmd io; /* --model, --top, --overlay, --format, --colormap, --invert, --threads, --json */
    int seed;
    float zoom;
} glimpse_opts;

/* One image's glimpses: sensor centres in input pixels and in the
 * original image's pixels. */
typedef struct glimpse_path {
    int T, S, P, C;
    const float *loc;     /* (T, 2): l_t as (x, y) */
    int cx[MAX_GLIMPSES], cy[MAX_GLIMPSES]; /* (T) input pixels */
    double px[MAX_GLIMPSES], py[MAX_GLIMPSES]; /* (T) original image pixels */
} glimpse_path;

static void find_first_ram(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    heed_layer **found = ctx;
    if (!*found && !strcmp(l->ops->type, "ram")) *found = l;
}

/* The sensor's centre pixel along an axis of `size` pixels (ram_sensor.c). */
static int sensor_centre(float l, int size) {
    return (int)nearbyintf((l + 1.0f) / 2.0f * (float)size);
}

/* The default display zoom for an image w x h pixels. */
static double auto_zoom(int w, int h) {
    const double zh = h < SHOWN_MIN_H   ? ceil((double)SHOWN_MIN_H / h)
                      : h > SHOWN_MAX_H ? (double)SHOWN_MAX_H / h
                                        : 1.0;
    const double zw = w <= SHOWN_MAX_W ? floor((double)SHOWN_MAX_W / w) : (double)SHOWN_MAX_W / w;
    return zh < zw ? zh : zw;
}

/* The overlay's sizes (the header comment's layout): the image shown
 * Wd x Hd, patches enlarged z times into cells `cell` square, the strip
 * Ws x Hs and the canvas W x H. In long long: an image 65536 pixels wide at
 * --zoom 64 is too wide for an int, and must be refused, not wrapped. */
typedef struct layout {
    long long Wd, Hd, z, cell, Ws, Hs, W, H;
} layout;

static layout plan(int w, int h, double zoom, int T, int S, int P) {
    layout L;
    L.Wd = llround(w * zoom), L.Hd = llround(h * zoom);
    if (L.Hd < 1) L.Hd = 1;
    if (L.Wd < 1) L.Wd = 1;
    long long zmax = CELL_MAX / P;
    if (zmax < 1) zmax = 1;
    L.z = (L.Hd - (S - 1) * GAP) / (S * P);
    if (L.z > zmax) L.z = zmax;
    if (L.z < 1) L.z = 1;
    L.cell = P * L.z, L.Hs = S * L.cell + (S - 1) * GAP, L.Ws = T * L.cell + (T - 1) * GAP;
    L.H = 2 * MARGIN + (L.Hd > L.Hs ? L.Hd : L.Hs), L.W = MARGIN + L.Wd + SEP + L.Ws + MARGIN;
    return L;
}

/* The image as RGB at display size (Wd, Hd): alpha ignored, gray replicated. */
static heed_status display_image(const heed_tensor *img, double zoom, int Hd, int Wd,
                                 heed_tensor *out) {
    heed_tensor rgb = {0};
    HEED_TRY(heed_tensor_alloc(&rgb, 1, 3, img->h, img->w));
    size_t hw = (size_t)img->h * img->w;
    for (int c = 0; c < 3; c++)
        memcpy(rgb.data + c * hw, img->data + (img->c >= 3 ? c : 0) * hw, hw * sizeof(float));
    heed_status st;
    if (zoom >= 1 && zoom == floor(zoom) && Hd == img->h * (int)zoom && Wd == img->w * (int)zoom) {
        st = heed_tensor_ensure(out, 1, 3, Hd, Wd);
        if (st == HEED_OK) heed_paste(out, &rgb, 0, 0, (int)zoom);
    } else {
        st = heed_image_resize(&rgb, Hd, Wd, out);
    }
    heed_tensor_free(&rgb);
    return st;
}

/* Draws the glimpses over `shown` (the image at display size, Wd x Hd):
 * each step's squares and the path joining the centres, clipped to the
 * image; then pastes it into `panel` at (MARGIN, MARGIN) and draws the
 * centres there, so a dot at the image's edge stays whole. Later steps go
 * on top. */
static void draw_glimpses(heed_tensor *shown, heed_tensor *panel, const glimpse_path *g,
                          const heed_placement *pl, float col[][3]) {
    const double sx = (double)shown->w / pl->w, sy = (double)shown->h / pl->h;
    const int thick = shown->h >= 200 ? 2 : 1;
    /* input pixel u -> display pixel */
#define PX(u) ((int)lround(((u) - pl->x) * sx))
#define PY(v) ((int)lround(((v) - pl->y) * sy))
    /* A dark casing under every line keeps light colours visible on light
     * images; all casings go first so none cuts through a coloured line. */
    const float dark[3] = {0.05f, 0.05f, 0.05f};
    for (int pass = 0; pass < 2; pass++) {
        const int e = pass ? 0 : 1;
        for (int t = 0; t < g->T; t++)
            for (int k = 0; k < g->S; k++) {
                int side = g->P << k, x0 = g->cx[t] - side / 2, y0 = g->cy[t] - side / 2;
                heed_draw_rect(shown, PX(x0) - e, PY(y0) - e, PX(x0 + side) - 1 + e, PY(y0 + side) - 1 + e,
                               (k == 0 ? thick : 1) + 2 * e, pass ? col[t] : dark);
            }
        for (int t = 0; t + 1 < g->T; t++)
            heed_draw_line(shown, PX(g->cx[t]), PY(g->cy[t]), PX(g->cx[t + 1]), PY(g->cy[t + 1]),
                           thick + 2 * e, pass ? col[t + 1] : dark);
    }
    heed_paste(panel, shown, MARGIN, MARGIN, 1);
    const float white[3] = {1, 1, 1};
    const int r = 2 + 2 * thick;
    for (int t = 0; t < g->T; t++) {
        heed_draw_disc(panel, MARGIN + PX(g->cx[t]), MARGIN + PY(g->cy[t]), r + 1, white);
        heed_draw_disc(panel, MARGIN + PX(g->cx[t]), MARGIN + PY(g->cy[t]), r, col[t]);
    }
#undef PX
#undef PY
}

static int fits(const layout *L) { return L->W <= OVERLAY_MAX && L->H <= OVERLAY_MAX; }

/* The largest zoom up to `zoom`, in hundredths, at which the overlay of a
 * w x h image fits; 0 if none does. */
static double largest_zoom(int w, int h, double zoom, int T, int S, int P) {
    for (long k = lround(floor(zoom * 100)); k > 0; k--) {
        const layout L = plan(w, h, k / 100.0, T, S, P);
        if (fits(&L)) return k / 100.0;
    }
    return 0;
}

/* The whole picture: the panel on the left, the strip of patches on the
 * right (layout in the header comment). patches (1, T*S*C, P, P) as the
 * network saw them; meta's input normalisation is undone for display. */
static heed_status render(const heed_tensor *img, const heed_tensor *patches, const glimpse_path *g,
                          const heed_placement *pl, const layout *L, double zoom, heed_colormap cm,
                          const heed_model_meta *meta, heed_tensor *out) {
    const int T = g->T, S = g->S, P = g->P, C = g->C;
    /* ints: the caller keeps the canvas within OVERLAY_MAX */
    const int Hd = (int)L->Hd, Wd = (int)L->Wd, z = (int)L->z, cell = (int)L->cell, Hs = (int)L->Hs;
    const int H = (int)L->H, W = (int)L->W;
    float col[MAX_GLIMPSES][3];
    for (int t = 0; t < T; t++)
        heed_colormap_rgb(cm, T > 1 ? 0.1f + 0.8f * (float)t / (float)(T - 1) : 0.9f, col[t]);

    heed_tensor shown = {0}, panel = {0}, patch = {0}, rgb = {0};
    heed_status st = display_image(img, zoom, Hd, Wd, &shown);
    if (st == HEED_OK) st = heed_tensor_ensure(&panel, 1, 3, Hd + 2 * MARGIN, Wd + 2 * MARGIN);
    if (st == HEED_OK) st = heed_tensor_ensure(out, 1, 3, H, W);
    if (st == HEED_OK) st = heed_tensor_ensure(&patch, 1, C, P, P);
    if (st != HEED_OK) goto done;
    heed_tensor_fill(out, GROUND);
    heed_tensor_fill(&panel, GROUND);
    draw_glimpses(&shown, &panel, g, pl, col);
    heed_paste(out, &panel, 0, (H - Hd) / 2 - MARGIN, 1);
    const int x0 = MARGIN + Wd + SEP, y0 = (H - Hs) / 2;
    const size_t pp = (size_t)C * P * P;
    for (int t = 0; t < T && st == HEED_OK; t++)
        for (int k = 0; k < S && st == HEED_OK; k++) {
            const float *src = patches->data + ((size_t)t * S + k) * pp;
            for (int c = 0; c < C; c++) {
                float mean, std;
                heed_model_channel_norm(meta, c, &mean, &std);
                for (size_t i = (size_t)c * P * P; i < (size_t)(c + 1) * P * P; i++) {
                    const float v = src[i] * std + mean;
                    patch.data[i] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            }
            st = heed_image_convert(&patch, 3, &rgb);
            int x = x0 + t * (cell + GAP), y = y0 + k * (cell + GAP);
            heed_draw_rect(out, x - 2, y - 2, x + cell + 1, y + cell + 1, 2, col[t]);
            if (st == HEED_OK) heed_paste(out, &rgb, x, y, z);
        }
done:
    heed_tensor_free(&shown), heed_tensor_free(&panel), heed_tensor_free(&patch), heed_tensor_free(&rgb);
    return st;
}

static void print_result(const heed_model *m, const glimpse_opts *o, const image_run *r,
                         const glimpse_path *g) {
    const int *order = r->order;
    const float *probs = r->probs.data;
    if (o->io.json) {
        printf("{\"image\": ");
        cli_json_string(stdout, r->path);
        printf(", \"class\": ");
        cli_json_string(stdout, m->meta.class_names[order[0]]);
        printf(", \"label\": %d, \"probability\": %.6f, \"inverted\": %s, ", order[0], probs[order[0]],
               r->inverted ? "true" : "false");
        image_run_json_top(r, m, 1);
        printf(", \"glimpses\": [");
        for (int t = 0; t < g->T; t++)
            printf("%s{\"step\": %d, \"x\": %.6f, \"y\": %.6f, \"px\": %.2f, \"py\": %.2f}", t ? ", " : "",
                   t, g->loc[2 * t], g->loc[2 * t + 1], g->px[t], g->py[t]);
        printf("]");
        image_run_json_overlay(r);
        printf("}\n");
        return;
    }
    printf("%s: %s (%.2f%%)\n", r->path, m->meta.class_names[order[0]], 100 * probs[order[0]]);
    if (r->top > 1) {
        printf("  next:");
        for (int i = 1; i < r->top; i++)
            printf("%s %s (%.2f%%)", i > 1 ? "," : "", m->meta.class_names[order[i]], 100 * probs[order[i]]);
        printf("\n");
    }
    if (r->inverted) printf("  (inverted to the model's polarity)\n");
    printf("  step        x        y       px       py\n");
    for (int t = 0; t < g->T; t++)
        printf("  %4d  %7.4f  %7.4f  %7.1f  %7.1f\n", t, g->loc[2 * t], g->loc[2 * t + 1], g->px[t],
               g->py[t]);
    if (r->overlay[0]) printf("  overlay: %s\n", r->overlay);
}

/* 0, or the exit status after saying why the image failed (2: --zoom too
 * large for it). */
static int glimpse_one(heed_model *m, heed_ram *ram, const glimpse_opts *o, const char *path) {
    image_run r = {0};
    heed_tensor over = {0};
    int rc = 1;
    /* before the forward: each image draws from the same stream */
    heed_net_reseed(m->net, (uint64_t)(unsigned)o->seed);
    heed_status st = image_run_forward(&r, m, &o->io, path);
    if (st != HEED_OK) goto done;
    const heed_ram_cfg *cfg = heed_ram_config(ram);
    glimpse_path g = {.T = cfg->glimpses, .S = cfg->scales, .P = cfg->patch, .C = ram->base.in_c,
                      .loc = heed_ram_locations(ram)->data};
    for (int t = 0; t < g.T; t++) {
        g.cx[t] = sensor_centre(g.loc[2 * t], m->net->in_w);
        g.cy[t] = sensor_centre(g.loc[2 * t + 1], m->net->in_h);
        g.px[t] = (double)(g.cx[t] - r.pl.x) * r.img.w / r.pl.w;
        g.py[t] = (double)(g.cy[t] - r.pl.y) * r.img.h / r.pl.h;
    }
    if (o->io.overlay) {
        const double zoom = o->zoom > 0 ? o->zoom : auto_zoom(r.img.w, r.img.h);
        const layout L = plan(r.img.w, r.img.h, zoom, g.T, g.S, g.P);
        if (!fits(&L)) {
            const double most = largest_zoom(r.img.w, r.img.h, zoom, g.T, g.S, g.P);
            char hint[64] = "";
            if (most > 0) snprintf(hint, sizeof hint, "--zoom %g or less, or ", most);
            if (o->zoom > 0)
                rc = cli_error(o->io.command, 2,
                               "%s: --zoom %g would make a %lld x %lld px overlay, over the limit of "
                               "%d px on a side: give %s0 for the default",
                               path, (double)o->zoom, L.W, L.H, OVERLAY_MAX, hint);
            else
                rc = cli_error(o->io.command, 1,
                               "%s: the overlay would be %lld x %lld px, over the limit of %d px on a side",
                               path, L.W, L.H, OVERLAY_MAX);
            goto done;
        }
        st = render(&r.img, heed_ram_patches(ram), &g, &r.pl, &L, zoom, o->io.cm, &m->meta, &over);
        if (st == HEED_OK) st = image_run_save_overlay(&r, &o->io, &over);
        if (st != HEED_OK) goto done;
    }
    print_result(m, o, &r, &g);
    fflush(stdout);
    rc = 0;
done:
    if (st != HEED_OK) cli_lib_error(o->io.command);
    image_run_free(&r);
    heed_tensor_free(&over);
    return rc;
}

int cmd_glimpse(int argc, char **argv) {
    glimpse_opts o = {.io = image_cmd_defaults("glimpse", "glimpse", "turbo")};
    const cli_opt opts[] = {
        image_cmd_opt(&o.io, "model", "a model whose network has a ram layer (required)"),
        image_cmd_opt(&o.io, "top", NULL),
        image_cmd_opt(&o.io, "overlay", "write DIR/<image>-glimpse.<format> (one image: FILE.png|.jpg|.jpeg)"),
        image_cmd_opt(&o.io, "format", NULL),
        {"zoom", CLI_FLOAT, &o.zoom, "Z", "overlay image scale, up to 64; 0: at least 240 px high, within 1280x720",
         NULL},
        image_cmd_opt(&o.io, "colormap", "step colours, first to last"),
        image_cmd_opt(&o.io, "invert", NULL),
        {"seed", CLI_INT, &o.seed, "S", "seed of the first glimpse's random location", NULL},
        image_cmd_opt(&o.io, "threads", NULL),
        image_cmd_opt(&o.io, "json", "print one JSON object per image, one a line"),
        {0}};
    int given[sizeof opts / sizeof opts[0]] = {0};
    const cli_spec spec = {
        "glimpse", "--model MODEL [options] IMAGE...",
        "Runs a recurrent attention model (a network with a ram layer) on PNG or JPEG images and\n"
        "prints, for each, the predicted class with its probability and the glimpse locations:\n"
        "step t from 0, l_t = (x, y) in [-1, 1] (-1 left/top, 1 right/bottom) and the centre the\n"
        "sensor used, in the image's own pixels (px, py). Images are brought to the model's input as\n"
        "by heed classify; an IMAGE of - is read from standard input (overlay: stdin-glimpse). The first location is random: --seed fixes it (the same seed gives the\n"
        "same output); with samples > 1 (the ram layer's samples= in the network file) the\n"
        "probability averages the sequences and the glimpses shown are the first sequence's.\n"
        "JSON: {\"image\", \"class\", \"label\", \"probability\", \"inverted\", \"top\": [{\"class\",\n"
        "\"index\", \"probability\", \"logit\"}], \"glimpses\": [{\"step\", \"x\", \"y\", \"px\", \"py\"}], \"overlay\"}\n"
        "(logit: the network's output, with samples > 1 the log of the averaged probability).\n"
        "With --overlay, writes DIR/<image>-glimpse.<format> (for a single image, --overlay FILE\n"
        "ending in .png, .jpg or .jpeg writes FILE); --zoom, --format and --colormap shape it, so\n"
        "they need --overlay. Left: the image (w x h) shown Wd x Hd, Z times its size (--zoom; by\n"
        "default Z = min(Zh, Zw), within 1280 x 720: Zh the smallest whole number making it at\n"
        "least 240 px high, 720 / h over 720 px high, else 1; Zw the largest whole number keeping\n"
        "it within 1280 px wide, 1280 / w over 1280), with each step's glimpse as nested squares\n"
        "(one per scale: exactly the pixels the sensor read), its centre as a dot and the path\n"
        "joining the centres, coloured along --colormap from the first step to the last. Right:\n"
        "one column per step and one row per scale (finest on top), each patch as the network saw\n"
        "it (in the model's polarity), enlarged z times and framed in its step's colour. Sizes,\n"
        "for T glimpses at S scales of P x P pixels:\n"
        "z = clamp(floor((Hd - 8 (S-1)) / (S P)), 1, max(1, floor(120 / P))),\n"
        "width 12 + Wd + 24 + T P z + 8 (T-1) + 12, height 24 + max(Hd, S P z + 8 (S-1)), each\n"
        "at most 8192 px: an image that --zoom would make larger is refused.",
        opts, given};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    image_cmd_overlay_only(&o.io, opts, given, "format zoom colormap");
    if (rc >= 0 || (rc = image_cmd_check(&o.io, nargs, args)) >= 0) return rc;
    if (!(o.zoom >= 0 && o.zoom <= 64)) return cli_error("glimpse", 2, "--zoom must be in 0..64");
    if (o.seed < 0) return cli_error("glimpse", 2, "--seed must not be negative");
    heed_model *m;
    if ((rc = image_cmd_open(&o.io, &m)) >= 0) return rc;
    heed_layer *ram = NULL;
    heed_net_visit(m->net, find_first_ram, &ram);
    if (!ram) {
        heed_model_free(m);
        return cli_error("glimpse", 1, "%s has no ram layer (use heed classify)", o.io.model);
    }
    const heed_net *net = m->net;
    const heed_ram_cfg *cfg = heed_ram_config((heed_ram *)ram);
    if (ram->in_c != net->in_c || ram->in_h != net->in_h || ram->in_w != net->in_w ||
        cfg->glimpses > MAX_GLIMPSES) {
        /* The message names the layer: said before the model goes. */
        rc = cli_error("glimpse", 1,
                       "%s: the ram layer %s must read the input image directly, with at most %d glimpses",
                       o.io.model, ram->name, MAX_GLIMPSES);
        heed_model_free(m);
        return rc;
    }
    if ((rc = image_cmd_make_dirs(&o.io)) >= 0) {
        heed_model_free(m);
        return rc;
    }
    int failed = 0; /* the worst exit status: 2 if --zoom was too large for an image */
    for (int i = 0; i < nargs; i++) {
        const int one = glimpse_one(m, (heed_ram *)ram, &o, args[i]);
        failed = one > failed ? one : failed;
    }
    heed_model_free(m);
    return failed;
}
