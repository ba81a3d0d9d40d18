/* image_input.c -- see image_input.h. */
#include "image_input.h"

#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"
#include "image.h"

int is_stdin(const char *image) { return !strcmp(image, "-"); }

void top_classes(const float *probs, int k, int top, int *order) {
    for (int i = 0; i < k; i++) order[i] = i;
    for (int i = 0; i < top; i++) /* partial selection sort: top is small */
        for (int j = i + 1; j < k; j++)
            if (probs[order[j]] > probs[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
}

/* The image's file name without its folders and extension, into out;
 * "stdin" for standard input. */
static void image_stem(char *out, size_t size, const char *image) {
    if (is_stdin(image)) {
        snprintf(out, size, "stdin");
        return;
    }
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
    /* "out/" as "out" (not "out//x-..."), "/" as itself */
    int n = (int)strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    snprintf(out, size, "%.*s%s%s-%s.%s", n, dir, n > 0 && dir[n - 1] == '/' ? "" : "/", stem, suffix, ext);
}

/* --format's default. A --format given is another string: image_cmd_check
 * tells the two apart by address. */
static const char default_format[] = "png";

image_cmd image_cmd_defaults(const char *command, const char *kind, const char *colormap) {
    return (image_cmd){.command = command, .kind = kind, .colormap = colormap, .invert = "auto",
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
        {"top", CLI_INT, offsetof(image_cmd, top), "K", "how many classes to list (all of them if the model has fewer)", NULL},
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

void image_cmd_overlay_only(image_cmd *c, const cli_opt *opts, const int *given, const char *names) {
    c->overlay_only[0] = '\0';
    char name[64];
    for (const char *p = names; *p; p += strspn(p, " ")) {
        const size_t n = strcspn(p, " ");
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        p += n;
        if (!cli_given(opts, given, name)) continue;
        const size_t used = strlen(c->overlay_only);
        snprintf(c->overlay_only + used, sizeof c->overlay_only - used, "%s--%s", used ? ", " : "", name);
    }
}

/* "png" or "jpg" when name ends in .png, .jpg or .jpeg (any case), else NULL. */
static const char *image_type(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    if (!strcasecmp(dot, ".png")) return "png";
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ? "jpg" : NULL;
}

/* The extension (".gif") when name ends in that of an image type heed
 * cannot write, else NULL. */
static const char *unwritable_type(const char *name) {
    static const char *const types[] = {".gif", ".bmp", ".tif", ".tiff", ".webp"};
    const char *dot = strrchr(name, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(dot, types[i])) return dot;
    return NULL;
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

/* path made absolute (from cwd) and rid of ".", ".." and repeated
 * slashes, lexically (symbolic links are not followed), into out; 0, or -1
 * if it does not fit. */
static int normal_path(const char *path, const char *cwd, char *out, size_t size) {
    char full[8192];
    if (snprintf(full, sizeof full, "%s%s%s", path[0] == '/' ? "" : cwd, path[0] == '/' ? "" : "/",
                 path) >= (int)sizeof full)
        return -1;
    size_t n = 0;
    for (const char *p = full;;) {
        while (*p == '/') p++;
        const size_t len = strcspn(p, "/");
        if (len == 0) break;
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/') n--;
            if (n > 0) n--; /* "/.." is "/" */
        } else if (len != 1 || p[0] != '.') {
            if (n + 1 + len + 1 > size) return -1;
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (n == 0) out[n++] = '/';
    out[n] = '\0';
    return 0;
}

/* An input image, as image_cmd_check compares overlays with it. */
typedef struct input_key {
    const char *image;
    int exists; /* stat succeeded: dev, ino are its */
    dev_t dev;
    ino_t ino;
    char *path; /* normal_path's, or NULL if it did not fit */
} input_key;

static int by_inode(const void *va, const void *vb) {
    const input_key *a = va, *b = vb;
    if (a->exists != b->exists) return a->exists < b->exists ? -1 : 1;
    if (a->dev != b->dev) return a->dev < b->dev ? -1 : 1;
    return a->ino < b->ino ? -1 : a->ino > b->ino;
}

static int by_path(const void *va, const void *vb) {
    const input_key *a = va, *b = vb;
    if (!a->path || !b->path) return !a->path - !b->path;
    return strcmp(a->path, b->path);
}

/* Image i's overlay file, as image_run_save_overlay will name it. */
static void overlay_of(const image_cmd *c, const char *image, char *out, size_t size) {
    if (c->overlay_file)
        snprintf(out, size, "%s", c->overlay);
    else
        output_path(out, size, c->overlay, image, c->kind, c->format);
}

/* 2 (after saying so) if an overlay would be written over one of the input
 * images, else -1. Sorted, so thousands of images cost no more than their
 * sort. */
static int check_overlays_spare_inputs(const image_cmd *c, int nargs, char **images) {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    input_key *k = calloc((size_t)nargs, sizeof *k);
    if (!k) return -1; /* a check, not a need: go on without it */
    char path[8192];
    for (int i = 0; i < nargs; i++) {
        struct stat st;
        k[i].image = images[i];
        if (stat(images[i], &st) == 0) k[i].exists = 1, k[i].dev = st.st_dev, k[i].ino = st.st_ino;
        if (normal_path(images[i], cwd, path, sizeof path) == 0) k[i].path = strdup(path);
    }
    const int outputs = c->overlay_file ? 1 : nargs;
    int rc = -1;
    char out[4300];
    /* An overlay that exists is the input if it is the same file, by any
     * name; one yet to be, if it has the input's name (an image that is
     * missing now, but which another image's overlay would make). */
    for (int pass = 0; pass < 2 && rc < 0; pass++) {
        qsort(k, (size_t)nargs, sizeof *k, pass ? by_path : by_inode);
        for (int i = 0; i < outputs && rc < 0; i++) {
            overlay_of(c, images[i], out, sizeof out);
            input_key key = {.exists = 1}, *hit = NULL;
            struct stat st;
            const int exists = stat(out, &st) == 0;
            if (pass == 0 && exists) {
                key.dev = st.st_dev, key.ino = st.st_ino;
                hit = bsearch(&key, k, (size_t)nargs, sizeof *k, by_inode);
            } else if (pass == 1 && !exists && normal_path(out, cwd, path, sizeof path) == 0) {
                key.path = path;
                hit = bsearch(&key, k, (size_t)nargs, sizeof *k, by_path);
            }
            if (!hit) continue;
            if (c->overlay_file)
                rc = cli_error(c->command, 2,
                               "--overlay %s is the input image %s: the overlay would replace it; "
                               "give another file name",
                               c->overlay, hit->image);
            else
                rc = cli_error(c->command, 2,
                               "the overlay of %s, %s, would replace the input image %s: give "
                               "another --overlay folder",
                               images[i], out, hit->image);
        }
    }
    for (int i = 0; i < nargs; i++) free(k[i].path);
    free(k);
    return rc;
}

/* "--a, --b" as "--a and --b", into out. */
static void and_list(const char *list, char *out, size_t size) {
    const char *last = strrchr(list, ',');
    if (!last)
        snprintf(out, size, "%s", list);
    else
        snprintf(out, size, "%.*s and %s", (int)(last - list), list, last + 2);
}

int image_cmd_check(image_cmd *c, int nargs, char **images) {
    if (!c->model) return cli_error(c->command, 2, "--model MODEL is required");
    if (nargs == 0) return cli_error(c->command, 2, "give at least one image");
    int from_stdin = 0;
    for (int i = 0; i < nargs; i++) from_stdin += is_stdin(images[i]);
    if (from_stdin > 1)
        return cli_error(c->command, 2, "- (standard input) was given %d times; it holds one image",
                         from_stdin);
    if (c->top < 1) return cli_error(c->command, 2, "--top must be at least 1");
    if (!c->overlay && c->overlay_only[0]) {
        char list[200];
        and_list(c->overlay_only, list, sizeof list);
        return cli_error(c->command, 2, "%s appl%s only to overlays, and no --overlay DIR|FILE was given",
                         list, strchr(c->overlay_only, ',') ? "y" : "ies");
    }
    if (c->overlay && !c->overlay[0])
        return cli_error(c->command, 2,
                         "--overlay takes a folder or a .png/.jpg/.jpeg file, not an empty name");
    const char *bad = c->overlay ? unwritable_type(c->overlay) : NULL;
    if (bad && !is_dir(c->overlay))
        return cli_error(c->command, 2,
                         "--overlay %s: heed cannot write %s files; --overlay takes a folder or a "
                         ".png/.jpg/.jpeg file (end a folder's name with /)",
                         c->overlay, bad);
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
    if (c->overlay && check_overlays_spare_inputs(c, nargs, images) >= 0) return 2;
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
    if (heed_model_load(m, c->model) != HEED_OK) return cli_lib_error(c->command);
    heed_net_set_frozen((*m)->net, 1); /* served as loaded */
    return -1;
}

int image_cmd_make_dirs(image_cmd *c) {
    if (!c->overlay) return -1;
    return (c->overlay_file ? make_file_dir(c->command, c->overlay) : cli_make_dirs(c->command, c->overlay))
               ? 1
               : -1;
}

/* Standard input as an image, read as heed_image_load reads a file. */
static heed_status load_stdin(heed_tensor *img) {
    if (isatty(STDIN_FILENO))
        return heed_fail(HEED_ERR_ARG, "standard input is a terminal: pipe an image into it (heed ... - < photo.jpg)");
    return heed_image_read(stdin, "standard input", 0, img);
}

heed_status image_run_forward(image_run *r, heed_model *m, const image_cmd *c, const char *path) {
    r->path = path;
    HEED_TRY(is_stdin(path) ? load_stdin(&r->img) : heed_image_load(path, 0, &r->img));
    const heed_invert inv = !strcmp(c->invert, "yes") ? HEED_INVERT_YES
                            : !strcmp(c->invert, "no") ? HEED_INVERT_NO : HEED_INVERT_AUTO;
    HEED_TRY(heed_model_input(m, &r->img, inv, &r->x, &r->pl, &r->inverted));
    heed_net_set_training(m->net, 0);
    HEED_TRY(heed_net_forward(m->net, &r->x, &r->logits));
    HEED_TRY(heed_softmax_forward(&r->logits, &r->probs));
    const int k = m->meta.classes;
    r->top = c->top < k ? c->top : k;
    top_classes(r->probs.data, k, r->top, r->order);
    return HEED_OK;
}

heed_status image_run_save_overlay(image_run *r, const image_cmd *c, const heed_tensor *over) {
    overlay_of(c, r->path, r->overlay, sizeof r->overlay);
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
