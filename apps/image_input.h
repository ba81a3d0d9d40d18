/* image_input.h -- what the commands that run a model on image files share
 * (classify, glimpse): their common options and the checks on them,
 * bringing an image to the model's input, running it and ranking the
 * classes, writing overlays and JSON.
 *
 *   my_opts o = {.io = image_cmd_defaults("classify", "attention", "jet"), ...};
 *   const cli_opt opts[] = {image_cmd_opt(&o.io, "model", "the model file (required)"),
 *                           image_cmd_opt(&o.io, "top", NULL), ..., {0}};
 *   ... cli_parse, with a given[] array ...
 *   image_cmd_overlay_only(&o.io, opts, given, "colormap format");
 *   if ((rc = image_cmd_check(&o.io, nargs, args)) >= 0) return rc; // usage errors: 2
 *   ... the command's own checks ...
 *   if ((rc = image_cmd_open(&o.io, &m)) >= 0) return rc;       // colormap, model
 *   ... the checks on the model ...
 *   if ((rc = image_cmd_make_dirs(&o.io)) >= 0) ...             // the --overlay folder
 *   for each image:
 *       image_run r = {0};
 *       st = image_run_forward(&r, m, &o.io, path);             // r.probs, r.order[0..r.top)
 *       st = image_run_save_overlay(&r, &o.io, &over);          // <image>-attention.png
 *       if (st != HEED_OK) cli_lib_error(o.io.command);
 *       image_run_free(&r);
 *
 * Lower level: top_classes ranks, output_path names files (the image
 * comes to the model's input by heed_model_input, in the library).
 */
#ifndef HEED_APPS_IMAGE_INPUT_H
#define HEED_APPS_IMAGE_INPUT_H

#include <stddef.h>

#include "cli.h"
#include "model.h"
#include "model_input.h"
#include "overlay.h"

/* 1 if the image argument is "-": the image is read from standard input
 * (its overlay is named "stdin-<kind>"). */
int is_stdin(const char *image);

/* Ranks probs[0..k): order (room for k indices) gets a permutation of
 * 0..k-1 whose first `top` (<= k) entries index the largest values in
 * decreasing order. */
void top_classes(const float *probs, int k, int top, int *order);

/* "<dir>/<image's file name without its extension>-<suffix>.<ext>" into
 * out (size bytes, truncated to fit). */
void output_path(char *out, size_t size, const char *dir, const char *image, const char *suffix,
                 const char *ext);

/* The options every image command has. */
typedef struct image_cmd {
    const char *command;                          /* "classify": messages name it */
    const char *kind; /* what the overlays show: files are <image>-<kind>.<format> */
    const char *model, *overlay, *colormap, *invert, *format; /* --model ... --format */
    int top, json, threads;                       /* --top, --json, --threads */
    heed_colormap cm;                             /* --colormap, parsed by image_cmd_open */
    int overlay_file; /* --overlay names the one image's overlay file, not a folder */
    char overlay_only[160]; /* "--zoom, --format": options given that act on overlays alone */
} image_cmd;

/* The shared defaults: --top 3, --invert auto, --format png, and the
 * command's overlay kind ("glimpse"; classify's --map may change it) and
 * --colormap. */
image_cmd image_cmd_defaults(const char *command, const char *kind, const char *colormap);

/* The cli_opt entry for the shared option `name` ("model", "top",
 * "overlay", "format", "colormap", "invert", "threads" or "json"), writing
 * into c, with the common help line unless `help` is given. Any other name
 * gives an all-zero entry (which would end the table). */
cli_opt image_cmd_opt(image_cmd *c, const char *name, const char *help);

/* Notes in c->overlay_only which of the options `names` (space-separated,
 * without dashes, in the order the message names them: those that act
 * only on overlays) were given, as
 * cli_parse marked them in given[] (one per opts entry); image_cmd_check
 * refuses them without --overlay. (Values cannot tell: --alpha 0.5 is
 * given although it is the default.) */
void image_cmd_overlay_only(image_cmd *c, const cli_opt *opts, const int *given, const char *names);

/* The usage checks that come before a command's own: --model given, at
 * least one image, --top >= 1, no option of c->overlay_only without
 * --overlay, and --overlay: not empty; a name ending in .png, .jpg or .jpeg
 * that is not a folder names the overlay file of the one image (sets
 * c->overlay_file; its extension decides the format, and a --format given
 * must agree); one ending in another image type (.gif .bmp .tif .tiff
 * .webp) is refused; anything else is a folder, in which no two of the
 * images may have overlays of the same name. No overlay may be one of the
 * images (the same file by device and inode when both exist, or the same
 * path once made absolute and rid of "." and ".."). Returns -1 to go on,
 * else prints the error and returns 2. */
int image_cmd_check(image_cmd *c, int nargs, char **images);

/* After the command's own checks: parses --colormap into c->cm and loads
 * the model into *m, frozen. Returns -1 to go on (the caller frees *m),
 * else prints the error and returns 1. */
int image_cmd_open(image_cmd *c, heed_model **m);

/* Creates the --overlay directory (or the overlay file's), if --overlay was
 * given: after the checks on the model too, so that a run that cannot
 * start leaves no empty folder behind. Returns -1 to go on, else prints the
 * error and returns 1. */
int image_cmd_make_dirs(image_cmd *c);

/* One image through the model. Start from {0}; image_run_free releases. */
typedef struct image_run {
    const char *path;            /* the image file */
    heed_tensor img;             /* (1, Ci, Hi, Wi) as loaded, values in [0, 1] */
    heed_tensor x;               /* (1, C, H, W) the model's input */
    heed_tensor logits, probs;   /* (1, K, 1, 1) K = meta.classes */
    heed_placement pl;           /* where img sits in x */
    int inverted;                /* 1 if x holds img inverted */
    int top;                     /* classes to list: min(--top, K) */
    int order[HEED_MAX_CLASSES]; /* (K) class indices, the first `top` by decreasing probability */
    char overlay[4300];          /* the overlay file written, "" if none */
} image_run;

/* Loads `path`, brings it to the model's input (c->invert), runs an
 * inference forward and the softmax, and ranks the classes (c->top).
 * Errors: those of heed_image_load, heed_model_input, the forward. */
heed_status image_run_forward(image_run *r, heed_model *m, const image_cmd *c, const char *path);

/* Saves `over` as c->overlay/<image>-<c->kind>.<c->format> (as c->overlay
 * itself when it names a file) and records the file's name in r->overlay.
 * Errors: those of heed_image_save. */
heed_status image_run_save_overlay(image_run *r, const image_cmd *c, const heed_tensor *over);

/* Prints `"top": [{"class", "index", "probability"}, ...]` for the first
 * r->top classes, with each one's "logit" (the network's output, whose
 * softmax r->probs is) if `logits`. */
void image_run_json_top(const image_run *r, const heed_model *m, int logits);

/* Prints `, "overlay": "<file>"` if an overlay was written. */
void image_run_json_overlay(const image_run *r);

void image_run_free(image_run *r);

#endif
