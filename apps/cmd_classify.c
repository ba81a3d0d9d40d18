/* cmd_classify.c -- `heed classify`: top-K labels for images of any size,
 * and where the network looked, blended over the original image. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "cbam.h"
#include "cli.h"
#include "evaluate.h"
#include "image.h"
#include "image_input.h"
#include "overlay.h"

const char cmd_classify_summary[] = "classify images; write attention or Grad-CAM overlays";

typedef struct classify_opts {
    const char *model, *overlay, *map, *layer, *colormap, *invert, *format;
    int top, json, threads;
    float alpha;
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

/* Grad-CAM (Selvaraju et al., 2017) on the output of top-level layer `idx`:
 * alpha_k = mean_hw d(score)/dA_k, cam = relu(sum_k alpha_k A_k). */
static heed_status gradcam(heed_model *m, const heed_tensor *x, const heed_tensor *logits, int cls,
                           int idx, heed_tensor *cam) {
    heed_seq *root = m->net->root;
    heed_tensor dy = {0};
    HEED_TRY(heed_tensor_alloc(&dy, logits->n, logits->c, logits->h, logits->w));
    dy.data[cls] = 1.0f;
    heed_status st = heed_net_backward(m->net, x, logits, &dy, NULL);
    heed_tensor_free(&dy);
    HEED_TRY(st);
    const heed_tensor *a = heed_seq_activation(root, idx), *g = &root->grads[idx];
    int C = a->c, H = a->h, W = a->w;
    HEED_TRY(heed_tensor_ensure(cam, 1, 1, H, W));
    heed_tensor_zero(cam);
    for (int c = 0; c < C; c++) {
        double alpha = 0;
        for (int i = 0; i < H * W; i++) alpha += g->data[(size_t)c * H * W + i];
        alpha /= H * W;
        for (int i = 0; i < H * W; i++) cam->data[i] += (float)(alpha * a->data[(size_t)c * H * W + i]);
    }
    for (int i = 0; i < H * W; i++) cam->data[i] = cam->data[i] > 0 ? cam->data[i] : 0;
    return HEED_OK;
}

/* The top-level layer Grad-CAM uses: --layer, else the last one whose output
 * is still a spatial map (the last convolutional stage). */
static heed_status gradcam_layer(heed_model *m, const char *name, int *idx) {
    heed_seq *root = m->net->root;
    *idx = -1;
    for (int i = 0; i < root->count - 1; i++) {
        const heed_layer *l = root->children[i];
        if (name ? !strcmp(l->name, name) : l->out_h * l->out_w > 1) *idx = i;
    }
    if (*idx < 0)
        return heed_fail(HEED_ERR_ARG, name ? "--layer %s is not a top-level layer before the output (see heed info)"
                                            : "%sthe network has no spatial layer for Grad-CAM",
                         name ? name : "");
    return HEED_OK;
}

/* Crops the map to where the image sits in the input frame. */
static heed_status crop_to_image(const heed_tensor *map, const placement *pl, int H, int W,
                                 heed_tensor *out) {
    heed_tensor full = {0};
    HEED_TRY(heed_image_resize(map, H, W, &full));
    heed_status st = heed_tensor_ensure(out, 1, 1, pl->h, pl->w);
    for (int i = 0; st == HEED_OK && i < pl->h; i++)
        memcpy(out->data + (size_t)i * pl->w, full.data + (size_t)(pl->y + i) * W + pl->x,
               (size_t)pl->w * sizeof(float));
    heed_tensor_free(&full);
    return st;
}

static int classify_one(heed_model *m, const classify_opts *o, const char *path, heed_colormap cm,
                        int first) {
    heed_tensor img = {0}, x = {0}, logits = {0}, probs = {0}, map = {0}, cropped = {0}, over = {0};
    placement pl;
    int inverted, rc = 1;
    char out_path[4300] = "";
    heed_status st = heed_image_load(path, 0, &img);
    if (st == HEED_OK) st = prepare_input(m, &img, o->invert, &x, &pl, &inverted);
    heed_net_set_training(m->net, 0);
    if (st == HEED_OK) st = heed_net_forward(m->net, &x, &logits);
    if (st == HEED_OK) st = heed_softmax_forward(&logits, &probs);
    if (st != HEED_OK) goto done;
    int k = m->meta.classes, top = o->top < k ? o->top : k;
    int order[HEED_MAX_CLASSES];
    top_classes(probs.data, k, top, order);
    if (o->overlay) {
        const char *map_name = o->map;
        if (!strcmp(o->map, "attention")) {
            find_ctx fc = {.type = "cbam"};
            heed_layer *att = NULL;
            if (o->layer) {
                att = heed_net_find(m->net, o->layer);
                if (!att || strcmp(att->ops->type, "cbam")) {
                    st = heed_fail(HEED_ERR_ARG, "--layer %s is not a cbam layer of this model", o->layer);
                    goto done;
                }
            } else {
                heed_net_visit(m->net, find_last, &fc);
                att = fc.found;
            }
            if (!att) {
                st = heed_fail(HEED_ERR_ARG, "the model has no spatial attention (cbam); use --map gradcam");
                goto done;
            }
            const heed_tensor *sm = heed_cbam_spatial_map((heed_cbam *)att);
            st = heed_tensor_ensure(&map, 1, 1, sm->h, sm->w);
            if (st == HEED_OK) memcpy(map.data, sm->data, (size_t)sm->h * sm->w * sizeof(float));
        } else {
            int idx;
            st = gradcam_layer(m, o->layer, &idx);
            if (st == HEED_OK) st = gradcam(m, &x, &logits, order[0], idx, &map);
        }
        if (st == HEED_OK) st = crop_to_image(&map, &pl, m->net->in_h, m->net->in_w, &cropped);
        if (st == HEED_OK) st = heed_overlay_heatmap(&img, &cropped, cm, o->alpha, &over);
        if (st == HEED_OK) {
            output_path(out_path, sizeof out_path, o->overlay, path, map_name, o->format);
            st = heed_image_save(out_path, &over, NULL);
        }
        if (st != HEED_OK) goto done;
    }
    if (o->json) {
        printf("%s{\"image\": ", first ? "" : ",\n ");
        json_string(path);
        printf(", \"inverted\": %s, \"top\": [", inverted ? "true" : "false");
        for (int i = 0; i < top; i++) {
            printf("%s{\"class\": ", i ? ", " : "");
            json_string(m->meta.class_names[order[i]]);
            printf(", \"index\": %d, \"probability\": %.6f}", order[i], probs.data[order[i]]);
        }
        printf("]");
        if (out_path[0]) {
            printf(", \"overlay\": ");
            json_string(out_path);
        }
        printf("}");
    } else {
        printf("%s%s\n", path, inverted ? " (inverted)" : "");
        for (int i = 0; i < top; i++)
            printf("  %6.2f%%  %s\n", 100 * probs.data[order[i]], m->meta.class_names[order[i]]);
        if (out_path[0]) printf("  overlay: %s\n", out_path);
    }
    rc = 0;
done:
    if (st != HEED_OK) cli_error("classify", 1, "%s", heed_last_error());
    heed_tensor *ts[] = {&img, &x, &logits, &probs, &map, &cropped, &over};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
    return rc;
}

int cmd_classify(int argc, char **argv) {
    classify_opts o = {.map = "attention", .colormap = "jet", .invert = "auto", .format = "png",
                       .top = 3, .alpha = 0.5f};
    const cli_opt opts[] = {
        {"model", CLI_STRING, &o.model, "MODEL", "the model file (required)", NULL},
        {"top", CLI_INT, &o.top, "K", "how many classes to list", NULL},
        {"overlay", CLI_STRING, &o.overlay, "DIR", "write heat-map overlays into DIR", NULL},
        {"map", CLI_STRING, &o.map, "KIND", "what the overlay shows", "attention|gradcam"},
        {"layer", CLI_STRING, &o.layer, "NAME", "the cbam layer (attention) or top-level layer (gradcam)", NULL},
        {"colormap", CLI_STRING, &o.colormap, "NAME", "", "jet|viridis|inferno|turbo"},
        {"alpha", CLI_FLOAT, &o.alpha, "A", "heat-map opacity, 0..1", NULL},
        {"format", CLI_STRING, &o.format, "EXT", "overlay file type", "png|jpg"},
        {"invert", CLI_STRING, &o.invert, "WHEN", "invert to the model's polarity", "auto|yes|no"},
        {"threads", CLI_INT, &o.threads, "N", "OpenMP threads [all cores]", NULL},
        {"json", CLI_FLAG, &o.json, NULL, "print a JSON array", NULL},
        {0}};
    const cli_spec spec = {
        "classify", "--model MODEL [options] IMAGE...",
        "Classifies PNG or JPEG images of any size and colour type. Each image is brought to the\n"
        "model's input (channels, size with the aspect ratio kept, and polarity: Fashion-MNIST\n"
        "items are light on dark, so photos with a light background are inverted). With --overlay,\n"
        "writes DIR/<image>-<map>.<format>: the heat map blended over the original image at its full\n"
        "resolution. --map attention shows a CBAM layer's spatial attention (the last one unless\n"
        "--layer names another); --map gradcam shows Grad-CAM for the top class on the last\n"
        "convolutional stage (or --layer), for models without CBAM too.",
        opts};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (!o.model) return cli_error("classify", 2, "--model MODEL is required");
    if (nargs == 0) return cli_error("classify", 2, "give at least one image");
    if (o.top < 1) return cli_error("classify", 2, "--top must be at least 1");
    if (!(o.alpha >= 0 && o.alpha <= 1)) return cli_error("classify", 2, "--alpha must be in 0..1");
    heed_colormap cm;
    if (heed_colormap_parse(o.colormap, &cm) != HEED_OK) return cli_lib_error("classify");
    if (o.overlay && cli_make_dirs("classify", o.overlay)) return 1;
    if (o.threads > 0) omp_set_num_threads(o.threads);
    heed_model *m;
    if (heed_model_load(&m, o.model) != HEED_OK) return cli_lib_error("classify");
    if (o.json) printf("[");
    int failed = 0;
    for (int i = 0; i < nargs; i++) failed |= classify_one(m, &o, args[i], cm, i == 0);
    if (o.json) printf("]\n");
    heed_model_free(m);
    return failed;
}
