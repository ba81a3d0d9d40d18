/* image_input.c -- see image_input.h. */
#include "image_input.h"

#include <libgen.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "activation.h"
#include "evaluate.h"
#include "image.h"

heed_status prepare_input(const heed_model *m, const heed_tensor *img, const char *invert,
                          heed_tensor *x, placement *pl, int *inverted) {
    int C = m->net->in_c, H = m->net->in_h, W = m->net->in_w;
    heed_tensor conv = {0}, small = {0};
    HEED_TRY(heed_image_convert(img, C, &conv));
    double scale = fmin((double)H / img->h, (double)W / img->w);
    pl->w = (int)lround(img->w * scale), pl->h = (int)lround(img->h * scale);
    if (pl->w < 1) pl->w = 1;
    if (pl->h < 1) pl->h = 1;
    pl->x = (W - pl->w) / 2, pl->y = (H - pl->h) / 2;
    heed_status st = heed_image_resize(&conv, pl->h, pl->w, &small);
    /* Auto polarity: a light border means a light background, which a model
     * trained on light-on-dark items needs inverted. */
    double border = 0;
    int nb = 0;
    for (int c = 0; st == HEED_OK && c < C; c++)
        for (int i = 0; i < img->h; i++)
            for (int j = 0; j < img->w; j++)
                if (i == 0 || j == 0 || i == img->h - 1 || j == img->w - 1)
                    border += conv.data[((size_t)c * img->h + i) * img->w + j], nb++;
    int light = nb && border / nb > 0.5;
    *inverted = !strcmp(invert, "yes") || (!strcmp(invert, "auto") && light == m->meta.dark_background);
    if (st == HEED_OK) st = heed_tensor_ensure(x, 1, C, H, W);
    if (st == HEED_OK) {
        /* Letterbox with the image's own background, in the model's polarity. */
        float bg = light ? 1.0f : 0.0f;
        heed_tensor_fill(x, *inverted ? 1.0f - bg : bg);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < pl->h; i++)
                for (int j = 0; j < pl->w; j++) {
                    float v = small.data[((size_t)c * pl->h + i) * pl->w + j];
                    x->data[((size_t)c * H + pl->y + i) * W + pl->x + j] = *inverted ? 1.0f - v : v;
                }
        normalize_batch(x, m->meta.input_mean, m->meta.input_std);
    }
    heed_tensor_free(&conv), heed_tensor_free(&small);
    return st;
}

void top_classes(const float *probs, int k, int top, int *order) {
    for (int i = 0; i < k; i++) order[i] = i;
    for (int i = 0; i < top; i++) /* partial selection sort: top is small */
        for (int j = i + 1; j < k; j++)
            if (probs[order[j]] > probs[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
}

/* The image's file name without its folders and extension, into out. */
static void image_stem(char *out, size_t size, const char *image) {
    char base[4096];
    snprintf(base, sizeof base, "%s", image);
    char *name = basename(base), *dot = strrchr(name, '.');
    if (dot) *dot = '\0';
    snprintf(out, size, "%s", name);
}

void output_path(char *out, size_t size, const char *dir, const char *image, const char *suffix,
                 const char *ext) {
    char stem[4096];
    image_stem(stem, sizeof stem, image);
    snprintf(out, size, "%s/%s-%s.%s", dir, stem, suffix, ext);
}

/* --format's default. A --format given is another string: image_cmd_check
 * tells the two apart by address. */
static const char default_format[] = "png";

image_cmd image_cmd_defaults(const char *command, const char *colormap) {
    return (image_cmd){.command = command, .colormap = colormap, .invert = "auto",
                       .format = default_format, .top = 3};
}

cli_opt image_cmd_opt(image_cmd *c, const char *name, const char *help) {
    /* help NULL where each command words its own */
    static const struct {
        const char *name;
        cli_kind kind;
        size_t field;
        const char *metavar, *help, *choices;
    } common[] = {
        {"model", CLI_STRING, offsetof(image_cmd, model), "MODEL", NULL, NULL},
        {"top", CLI_INT, offsetof(image_cmd, top), "K", "how many classes to list", NULL},
        {"overlay", CLI_STRING, offsetof(image_cmd, overlay), "DIR|FILE", NULL, NULL},
        {"format", CLI_STRING, offsetof(image_cmd, format), "EXT", "overlay file type", "png|jpg"},
        {"colormap", CLI_STRING, offsetof(image_cmd, colormap), "NAME", NULL, "jet|viridis|inferno|turbo"},
        {"invert", CLI_STRING, offsetof(image_cmd, invert), "WHEN", "invert to the model's polarity",
         "auto|yes|no"},
        {"threads", CLI_INT, offsetof(image_cmd, threads), "N", "OpenMP threads (0: every core)", NULL},
        {"json", CLI_FLAG, offsetof(image_cmd, json), NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (!strcmp(common[i].name, name))
            return (cli_opt){common[i].name, common[i].kind, (char *)c + common[i].field,
                             common[i].metavar, help ? help : common[i].help, common[i].choices};
    return (cli_opt){0};
}

/* "png" or "jpg" when name ends in .png, .jpg or .jpeg (any case), else NULL. */
static const char *image_type(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    if (!strcasecmp(dot, ".png")) return "png";
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ? "jpg" : NULL;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct stem_of {
    char stem[256];
    const char *image;
} stem_of;

static int by_stem(const void *a, const void *b) {
    return strcmp(((const stem_of *)a)->stem, ((const stem_of *)b)->stem);
}

/* 2 (after saying so) if two different images would write overlays of the
 * same name into the --overlay folder, the second replacing the first;
 * else -1. Sorted by name, so thousands of images cost no more than their
 * sort. */
static int check_overlay_names(const image_cmd *c, int nargs, char **images) {
    stem_of *s = malloc((size_t)nargs * sizeof *s);
    if (!s) return -1; /* a check, not a need: go on without it */
    for (int i = 0; i < nargs; i++) {
        image_stem(s[i].stem, sizeof s[i].stem, images[i]);
        s[i].image = images[i];
    }
    qsort(s, (size_t)nargs, sizeof *s, by_stem);
    int rc = -1;
    for (int i = 1; i < nargs && rc < 0; i++)
        if (!strcmp(s[i - 1].stem, s[i].stem) && strcmp(s[i - 1].image, s[i].image))
            rc = cli_error(c->command, 2,
                           "%s and %s would write overlays of the same name (%s-...) into %s: give "
                           "them in separate runs",
                           s[i - 1].image, s[i].image, s[i].stem, c->overlay);
    free(s);
    return rc;
}

int image_cmd_check(image_cmd *c, int nargs, char **images) {
    if (!c->model) return cli_error(c->command, 2, "--model MODEL is required");
    if (nargs == 0) return cli_error(c->command, 2, "give at least one image");
    if (c->top < 1) return cli_error(c->command, 2, "--top must be at least 1");
    const char *type = c->overlay ? image_type(c->overlay) : NULL;
    c->overlay_file = type && !is_dir(c->overlay);
    if (c->overlay_file) {
        if (nargs > 1)
            return cli_error(c->command, 2,
                             "--overlay %s names one file, but %d images were given: give a folder "
                             "for several",
                             c->overlay, nargs);
        if (c->format != default_format && strcmp(c->format, type))
            return cli_error(c->command, 2, "--overlay %s is a %s file name, but --format is %s",
                             c->overlay, type, c->format);
    } else if (c->overlay && check_overlay_names(c, nargs, images) >= 0) {
        return 2;
    }
    return cli_threads(c->command, &c->threads, 1);
}

/* The folder an overlay file goes into, made if need be (as a --overlay
 * folder is): 0, or 1 after saying why not. */
static int make_file_dir(const char *command, const char *file) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", file) >= (int)sizeof dir)
        return cli_error(command, 1, "file name too long: %.60s...", file);
    char *slash = strrchr(dir, '/');
    if (!slash) return 0;
    if (slash == dir) return 0; /* in / */
    *slash = '\0';
    return cli_make_dirs(command, dir);
}

int image_cmd_open(image_cmd *c, heed_model **m) {
    if (heed_colormap_parse(c->colormap, &c->cm) != HEED_OK) return cli_lib_error(c->command);
    if (c->overlay && (c->overlay_file ? make_file_dir(c->command, c->overlay)
                                       : cli_make_dirs(c->command, c->overlay)))
        return 1;
    if (heed_model_load(m, c->model) != HEED_OK) return cli_lib_error(c->command);
    heed_net_set_frozen((*m)->net, 1); /* served as loaded */
    return -1;
}

heed_status image_run_forward(image_run *r, heed_model *m, const image_cmd *c, const char *path) {
    r->path = path;
    HEED_TRY(heed_image_load(path, 0, &r->img));
    HEED_TRY(prepare_input(m, &r->img, c->invert, &r->x, &r->pl, &r->inverted));
    heed_net_set_training(m->net, 0);
    HEED_TRY(heed_net_forward(m->net, &r->x, &r->logits));
    HEED_TRY(heed_softmax_forward(&r->logits, &r->probs));
    const int k = m->meta.classes;
    r->top = c->top < k ? c->top : k;
    top_classes(r->probs.data, k, r->top, r->order);
    return HEED_OK;
}

heed_status image_run_save_overlay(image_run *r, const image_cmd *c, const char *kind,
                                   const heed_tensor *over) {
    if (c->overlay_file)
        snprintf(r->overlay, sizeof r->overlay, "%s", c->overlay);
    else
        output_path(r->overlay, sizeof r->overlay, c->overlay, r->path, kind, c->format);
    return heed_image_save(r->overlay, over, NULL);
}

void image_run_json_top(const image_run *r, const heed_model *m, int logits) {
    printf("\"top\": [");
    for (int i = 0; i < r->top; i++) {
        const int k = r->order[i];
        printf("%s{\"class\": ", i ? ", " : "");
        cli_json_string(stdout, m->meta.class_names[k]);
        printf(", \"index\": %d, \"probability\": %.6f", k, r->probs.data[k]);
        /* Nine significant digits: a float32 read back exactly. */
        if (logits) printf(", \"logit\": %.9g", r->logits.data[k]);
        printf("}");
    }
    printf("]");
}

void image_run_json_overlay(const image_run *r) {
    if (!r->overlay[0]) return;
    printf(", \"overlay\": ");
    cli_json_string(stdout, r->overlay);
}

void image_run_free(image_run *r) {
    heed_tensor *ts[] = {&r->img, &r->x, &r->logits, &r->probs};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
}
