/* cmd_classify.c -- `heed classify`: top-K labels for images of any size,
 * and where the network looked, blended over the original image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbam.h"
#include "cli.h"
#include "eca.h"
#include "evaluate.h"
#include "gradcam.h"
#include "image.h"
#include "image_input.h"
#include "overlay.h"
#include "se.h"

const char cmd_classify_summary[] = "classify images; write attention, Grad-CAM or saliency overlays";

typedef struct classify_opts {
    image_cmd io; /* --model, --top, --overlay, --map (io.kind), --colormap, --format, --invert,
                     --threads, --json */
    const char *layer;
    const char *cls; /* --class: Grad-CAM or saliency for this class, not the top one */
    float alpha;
    int channels; /* --channels: each SE, ECA and CBAM layer's channel weights */
    int seed;     /* --seed: where a RAM model's first glimpse goes */
} classify_opts;

/* The last layer of type `type` (depth-first), or NULL. */
typedef struct find_ctx {
    const char *type;
    heed_layer *found;
} find_ctx;

static void find_last(heed_layer *l, int depth, void *vctx) {
    (void)depth;
    find_ctx *c = vctx;
    if (!strcmp(l->ops->type, c->type)) c->found = l;
}

/* The top-level layer Grad-CAM uses: --layer, else the last one whose output
 * is still a spatial map (the last convolutional stage). A layer whose
 * output is 1x1 is refused: its map would be one value, drawn as noise. */
static heed_status gradcam_layer(heed_model *m, const char *name, int *idx) {
    heed_seq *root = m->net->root;
    int named = -1, spatial = heed_gradcam_default_layer(m->net);
    for (int i = 0; name && i < root->count - 1; i++)
        if (!strcmp(root->children[i]->name, name)) named = i;
    *idx = name ? named : spatial;
    if (!name && spatial < 0)
        return heed_fail(HEED_ERR_ARG, "the network has no spatial layer for Grad-CAM; use --map saliency");
    if (named < 0 && name)
        return heed_fail(HEED_ERR_ARG, "--layer %s is not a top-level layer before the output (see heed info)",
                         name);
    const heed_layer *l = root->children[*idx];
    if (l->out_h * l->out_w <= 1)
        return heed_fail(HEED_ERR_ARG,
                         "--layer %s outputs %dx%dx%d: Grad-CAM needs a spatial layer (an output over "
                         "1x1)%s%s%s",
                         name, l->out_c, l->out_h, l->out_w, spatial >= 0 ? ", such as " : "",
                         spatial >= 0 ? root->children[spatial]->name : "",
                         spatial >= 0 ? ", the default" : "");
    return HEED_OK;
}

/* Where the heat maps come from, found once for all the images: the cbam
 * layer (--map attention), the top-level layer's index (gradcam), or the
 * input (saliency). */
typedef struct map_source {
    heed_layer *att;
    int idx;
    int saliency;
    int cls; /* the class Grad-CAM or saliency shows: --class, or -1 for each image's top class */
} map_source;

static heed_status find_map_source(heed_model *m, const classify_opts *o, map_source *src) {
    *src = (map_source){.idx = -1, .cls = -1};
    if (o->cls && (src->cls = model_class(m, o->cls)) < 0)
        return heed_fail(HEED_ERR_ARG, "--class %s is none of the model's %d classes (%s ... %s, or 0..%d)",
                         o->cls, m->meta.classes, m->meta.class_names[0],
                         m->meta.class_names[m->meta.classes - 1], m->meta.classes - 1);
    if (!strncmp(o->io.kind, "saliency", 8)) { /* --layer was refused with the options */
        src->saliency = 1;
        return HEED_OK;
    }
    if (strcmp(o->io.kind, "attention")) return gradcam_layer(m, o->layer, &src->idx);
    if (o->layer) {
        src->att = heed_net_find(m->net, o->layer);
        if (!src->att || strcmp(src->att->ops->type, "cbam"))
            return heed_fail(HEED_ERR_ARG, "--layer %s is not a cbam layer of this model", o->layer);
    } else {
        find_ctx fc = {.type = "cbam"};
        heed_net_visit(m->net, find_last, &fc);
        src->att = fc.found;
    }
    if (!src->att) /* a model without a map of its own still has saliency */
        return heed_fail(HEED_ERR_ARG, "the model has no spatial attention (cbam); use --map %s",
                         heed_gradcam_default_layer(m->net) >= 0 ? "gradcam" : "saliency");
    return HEED_OK;
}

/* The heat map from src for the image r ran, over the model's input frame. */
static heed_status heat_map(heed_model *m, const map_source *src, const image_run *r, heed_tensor *map) {
    const int cls = src->cls >= 0 ? src->cls : r->order[0];
    if (src->saliency) return heed_saliency(m->net, &r->x, cls, map);
    if (!src->att) return heed_gradcam(m->net, &r->x, cls, src->idx, map);
    const heed_tensor *sm = heed_cbam_spatial_map((heed_cbam *)src->att);
    HEED_TRY(heed_tensor_ensure(map, 1, 1, sm->h, sm->w));
    memcpy(map->data, sm->data, (size_t)sm->h * sm->w * sizeof(float));
    return HEED_OK;
}

/* The channel weights of an SE, ECA or CBAM layer from the last forward
 * ((1, C, 1, 1), each in (0, 1)), or NULL for any other layer. */
static const heed_tensor *channel_weights(const heed_layer *l) {
    if (!strcmp(l->ops->type, "se")) return heed_se_weights((const heed_se *)l);
    if (!strcmp(l->ops->type, "eca")) return heed_eca_weights((const heed_eca *)l);
    if (!strcmp(l->ops->type, "cbam")) return heed_cbam_channel_weights((const heed_cbam *)l);
    return NULL;
}

static void count_channel_layers(heed_layer *l, int depth, void *count) {
    (void)depth;
    *(int *)count += channel_weights(l) != NULL;
}

typedef struct channels_ctx {
    int json, count; /* --json; layers printed so far */
} channels_ctx;

/* Prints an SE, ECA or CBAM layer's channel weights (heed_net_visit). */
static void print_channels(heed_layer *l, int depth, void *vctx) {
    (void)depth;
    channels_ctx *c = vctx;
    const heed_tensor *e = channel_weights(l);
    if (!e) return;
    const int C = e->c;
    if (c->json) {
        printf("%s{\"layer\": ", c->count ? ", " : "");
        cli_json_string(stdout, l->name);
        printf(", \"type\": \"%s\", \"weights\": [", l->ops->type);
        /* Nine significant digits: a float32 read back exactly. */
        for (int k = 0; k < C; k++) printf("%s%.9g", k ? ", " : "", e->data[k]);
        printf("]}");
    } else {
        /* The three strongest channels and the range, not all C values. */
        int best[3] = {-1, -1, -1};
        float lo = e->data[0], hi = e->data[0], sum = 0;
        for (int k = 0; k < C; k++) {
            const float v = e->data[k];
            lo = v < lo ? v : lo, hi = v > hi ? v : hi, sum += v;
            for (int j = 0; j < 3; j++)
                if (best[j] < 0 || v > e->data[best[j]]) {
                    for (int i = 2; i > j; i--) best[i] = best[i - 1];
                    best[j] = k;
                    break;
                }
        }
        printf("  %s (%s, %d channels): weights %.3f .. %.3f, mean %.3f; strongest", l->name,
               l->ops->type, C, lo, hi, sum / C);
        for (int j = 0; j < 3 && best[j] >= 0; j++) printf(" %d (%.3f)", best[j], e->data[best[j]]);
        printf("\n");
    }
    c->count++;
}

static void print_result(heed_model *m, const classify_opts *o, const image_run *r, int first) {
    channels_ctx cc = {.json = o->io.json};
    if (o->io.json) {
        printf("%s{\"image\": ", first ? "" : ",\n ");
        cli_json_string(stdout, r->path);
        printf(", \"inverted\": %s, ", r->inverted ? "true" : "false");
        image_run_json_top(r, m, 1);
        if (o->channels) {
            printf(", \"channels\": [");
            heed_net_visit(m->net, print_channels, &cc);
            printf("]");
        }
        image_run_json_overlay(r);
        printf("}");
        return;
    }
    printf("%s%s\n", r->path, r->inverted ? " (inverted)" : "");
    for (int i = 0; i < r->top; i++)
        printf("  %6.2f%%  %s\n", 100 * r->probs.data[r->order[i]], m->meta.class_names[r->order[i]]);
    if (o->channels) heed_net_visit(m->net, print_channels, &cc);
    if (r->overlay[0]) printf("  overlay: %s\n", r->overlay);
}

static int classify_one(heed_model *m, const classify_opts *o, const map_source *src, const char *path,
                        int first) {
    image_run r = {0};
    heed_tensor map = {0}, cropped = {0}, over = {0};
    /* as heed glimpse does: each image draws from the same stream */
    heed_net_reseed(m->net, (uint64_t)(unsigned)o->seed);
    heed_status st = image_run_forward(&r, m, &o->io, path);
    if (st == HEED_OK && o->io.overlay) {
        st = heat_map(m, src, &r, &map);
        if (st == HEED_OK) st = heed_placement_crop(&map, &r.pl, m->net->in_h, m->net->in_w, &cropped);
        if (st == HEED_OK) st = heed_overlay_heatmap(&r.img, &cropped, o->io.cm, o->alpha, &over);
        if (st == HEED_OK) st = image_run_save_overlay(&r, &o->io, &over);
    }
    if (st == HEED_OK)
        print_result(m, o, &r, first);
    else
        cli_lib_error(o->io.command);
    image_run_free(&r);
    heed_tensor_free(&map), heed_tensor_free(&cropped), heed_tensor_free(&over);
    return st != HEED_OK;
}

int cmd_classify(int argc, char **argv) {
    classify_opts o = {.io = image_cmd_defaults("classify", "attention", "jet"), .alpha = 0.5f};
    const cli_opt opts[] = {
        image_cmd_opt(&o.io, "model", "the model file (required)"),
        image_cmd_opt(&o.io, "top", NULL),
        image_cmd_opt(&o.io, "overlay", "write heat-map overlays into DIR (one image: FILE.png|.jpg|.jpeg)"),
        {"map", CLI_STRING, &o.io.kind, "KIND", "what the overlay shows", "attention|gradcam|saliency"},
        {"layer", CLI_STRING, &o.layer, "NAME", "the cbam layer (attention) or top-level layer (gradcam)", NULL},
        {"class", CLI_STRING, &o.cls, "C", "Grad-CAM or saliency for class C (name or index), not the top one",
         NULL},
        image_cmd_opt(&o.io, "colormap", "heat-map colours"),
        {"alpha", CLI_FLOAT, &o.alpha, "A", "heat-map opacity, 0..1", NULL},
        {"channels", CLI_FLAG, &o.channels, NULL, "each SE, ECA and CBAM layer's channel weights", NULL},
        image_cmd_opt(&o.io, "format", NULL),
        image_cmd_opt(&o.io, "invert", NULL),
        {"seed", CLI_INT, &o.seed, "S", "seed of a RAM model's random first glimpse", NULL},
        image_cmd_opt(&o.io, "threads", NULL),
        image_cmd_opt(&o.io, "json", "print a JSON array"),
        {0}};
    int given[sizeof opts / sizeof opts[0]] = {0};
    const cli_spec spec = {
        "classify", "--model MODEL [options] IMAGE...",
        "Classifies PNG or JPEG images of any size and colour type, upright as viewers show them\n"
        "(a photo's EXIF orientation is applied). Each image is brought to the\n"
        "model's input (channels, size with the aspect ratio kept, and polarity: Fashion-MNIST\n"
        "items are light on dark, so photos with a light background are inverted). A model trained\n"
        "on a folder: dataset takes images as its training did: stretched to its input size (the\n"
        "aspect ratio not kept) and, with --invert auto, never inverted. With --overlay,\n"
        "writes DIR/<image>-<map>.<format> (for a single image, --overlay FILE ending in .png, .jpg\n"
        "or .jpeg writes FILE): the heat map blended over the original image at its full\n"
        "resolution. --map attention shows a CBAM layer's spatial attention (the last one unless\n"
        "--layer names another); --map gradcam shows Grad-CAM for the top class (or --class C,\n"
        "into <image>-gradcam-C) on the last convolutional stage (or --layer), for models without\n"
        "CBAM too; --map saliency shows, pixel by pixel, how much the class score moves with each\n"
        "input value (the input gradient's largest magnitude over channels). --channels shows each SE, ECA and CBAM layer's channel attention for the image: its\n"
        "range and strongest channels, or with --json all C weights. --map, --layer, --class,\n"
        "--colormap, --alpha and --format shape the overlays, so they need --overlay. A recurrent\n"
        "attention model (RAM) puts its first glimpse at random: --seed fixes it, for every image\n"
        "alike, as heed glimpse --seed does (the same seed gives the same probabilities); other\n"
        "models ignore it. An IMAGE of - is read from standard input (its overlay is named stdin-<map>).\n"
        "JSON: [{\"image\", \"inverted\", \"top\": [{\"class\", \"index\", \"probability\", \"logit\"}],\n"
        "\"channels\": [{\"layer\", \"type\", \"weights\"}], \"overlay\"}], logit being the network's\n"
        "output for the class, logits and weights to 9 significant digits.",
        opts, given};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    image_cmd_overlay_only(&o.io, opts, given, "map layer class colormap alpha format");
    /* Overlays of other classes get names of their own: <image>-gradcam-C. */
    char kind[80];
    if (rc < 0 && o.cls && (!strcmp(o.io.kind, "gradcam") || !strcmp(o.io.kind, "saliency"))) {
        const int n = snprintf(kind, sizeof kind, "%s-", o.io.kind);
        snprintf(kind + n, sizeof kind - n, "%s", o.cls);
        class_file_name(kind + n);
        o.io.kind = kind;
    }
    if (rc >= 0 || (rc = image_cmd_check(&o.io, nargs, args)) >= 0) return rc;
    if (!(o.alpha >= 0 && o.alpha <= 1)) return cli_error("classify", 2, "--alpha must be in 0..1");
    if (o.cls && !strcmp(o.io.kind, "attention"))
        return cli_error("classify", 2, "--class needs --map gradcam or saliency (an attention map is the same "
                         "for every class)");
    /* A usage error, known before the model is read (it exited 1 after
     * loading it, unlike --class's conflict with --map attention). */
    if (o.layer && !strncmp(o.io.kind, "saliency", 8))
        return cli_error("classify", 2, "--layer %s: --map saliency is over the input, not a layer's output "
                         "(--layer is for attention and gradcam)", o.layer);
    if (o.seed < 0) return cli_error("classify", 2, "--seed must not be negative");
    heed_model *m;
    if ((rc = image_cmd_open(&o.io, &m)) >= 0) return rc;
    map_source src = {.idx = -1};
    if (o.io.overlay && find_map_source(m, &o, &src) != HEED_OK) {
        heed_model_free(m);
        return cli_lib_error("classify");
    }
    if (o.channels) {
        int count = 0;
        heed_net_visit(m->net, count_channel_layers, &count);
        if (!count) {
            heed_model_free(m);
            return cli_error("classify", 1, "%s has no channel attention (se, eca or cbam layer) for --channels",
                             o.io.model);
        }
    }
    if ((rc = image_cmd_make_dirs(&o.io)) >= 0) {
        heed_model_free(m);
        return rc;
    }
    if (o.io.json) printf("[");
    int failed = 0, printed = 0; /* printed: results in the array so far, which a failed image is not */
    for (int i = 0; i < nargs; i++) {
        const int bad = classify_one(m, &o, &src, args[i], printed == 0);
        failed |= bad;
        printed += !bad;
    }
    if (o.io.json) printf("]\n");
    heed_model_free(m);
    return failed;
}
