/* cmd_data.c -- `heed data export`: writes dataset items as image files, so
 * users can see what a model is trained on. Items keep the dataset's own
 * size (28x28, or the canvas size); folders at --shape (28x28 gray unless given). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evaluate.h"
#include "image.h"

const char cmd_data_summary[] = "export dataset items as PNG or JPEG files";

/* Whether folder `dir` lies in folder `root` or is it, comparing real
 * paths. dir need not exist yet: its nearest existing parent decides. */
static int inside(const char *dir, const char *root) {
    char r[PATH_MAX], probe[PATH_MAX], d[PATH_MAX];
    if (!realpath(root, r) || snprintf(probe, sizeof probe, "%s", dir) >= (int)sizeof probe) return 0;
    while (!realpath(probe, d)) {
        char *slash = strrchr(probe, '/');
        if (slash == probe)
            probe[1] = '\0'; /* "/x": "/" */
        else if (slash)
            *slash = '\0';
        else if (strcmp(probe, "."))
            strcpy(probe, ".");
        else
            return 0; /* not even the working folder resolves */
    }
    const size_t n = strlen(r);
    return !strncmp(d, r, n) && (d[n] == '\0' || d[n] == '/' || n == 1);
}

int cmd_data(int argc, char **argv) {
    const char *data = "fmnist", *data_dir = NULL, *split = "test", *format = "png", *shape = NULL;
    int count = 10, start = 0, invert = 0, scale = 1, json = 0;
    const cli_opt opts[] = {
        {"data", CLI_STRING, &data, "NAME", "dataset: " DATASET_NAMES, NULL},
        {"data-dir", CLI_STRING, &data_dir, "DIR", "Fashion-MNIST IDX files [/usr/share/datasets/fashion-mnist]", NULL},
        {"split", CLI_STRING, &split, "NAME", "which part of the dataset", "train|test"},
        {"count", CLI_INT, &count, "N", "how many items", NULL},
        {"start", CLI_INT, &start, "I", "index of the first item", NULL},
        {"scale", CLI_INT, &scale, "S", "enlarge S times (bilinear), 1 .. 64", NULL},
        {"invert", CLI_FLAG, &invert, NULL, "write dark-on-light (like a photo on a light background)", NULL},
        {"format", CLI_STRING, &format, "EXT", "file type", "png|jpg"},
        {"shape", CLI_STRING, &shape, "CxHxW", "a folder's items as a model of this input sees them (3x48x48) [1x28x28]", NULL},
        {"json", CLI_FLAG, &json, NULL, "list the files written as JSON lines", NULL},
        {0}};
    const cli_spec spec = {"data", "export [options] DIR",
                           "Writes dataset items to DIR/<split>-<index>-<class>.<format>, at the\n"
                           "dataset's own size (folders: --shape, 28x28 gray unless given). Test items of canvas datasets\n"
                           "are placed as every evaluation places them; training items show one of\n"
                           "their random placements (fixed per index: reruns write the same files).\n"
                           "JSON lines: {\"file\", \"index\", \"label\", \"class\"}, one per file written.",
                           opts, NULL};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs != 2 || strcmp(args[0], "export")) return cli_error("data", 2, "usage: heed data export [options] DIR");
    if (count < 1) return cli_error("data", 2, "--count must be 1 or more, not %d", count);
    if (start < 0) return cli_error("data", 2, "--start must be 0 or more, not %d", start);
    if (scale < 1 || scale > 64) return cli_error("data", 2, "--scale must be 1 .. 64, not %d", scale);
    if (!dataset_name_known(data))
        return cli_error("data", 2, "unknown dataset '%s' (" DATASET_NAMES ")", data);
    if (data_dir && dataset_folder(data)) return cli_error("data", 2, DATA_DIR_WITH_FOLDER, data_dir, data);
    heed_dataset d = {0};
    const char *folder = dataset_folder(data); /* its DIR, or NULL */
    int fc = folder ? 1 : 0, fh = folder ? 28 : 0, fw = folder ? 28 : 0;
    if (shape) {
        char end;
        if (!folder)
            return cli_error("data", 2, "--shape applies to folder: datasets (the others have their own)");
        if (sscanf(shape, "%dx%dx%d%c", &fc, &fh, &fw, &end) != 3 || fc < 1 || fc > 4 || fh < 1 || fw < 1 ||
            fh > 4096 || fw > 4096)
            return cli_error("data", 2, "--shape %s: give CxHxW, C 1..4 (3 for RGB), H and W 1..4096", shape);
        if (fc != 1 && fc != 3 && !strcmp(format, "jpg"))
            return cli_error("data", 2, "--shape %s: JPEG stores 1 or 3 channels; use --format png", shape);
    }
    /* The files written are named as heed names exported items, which may be
     * the names of the dataset's own images: never write among them. */
    if (folder && inside(args[1], folder))
        return cli_error("data", 2, "%s is inside the dataset's folder %s: the exported files would "
                         "land among its images (and could replace them)", args[1], folder);
    /* Items past start + count need not be read (and the sum must not overflow). */
    const int limit = folder ? 0 : count > INT_MAX - start ? INT_MAX : start + count;
    cli_progress bar;
    cli_progress_start(&bar, "decoding images", 0);
    const dataset_progress show = {cli_progress_count, &bar};
    const dataset_split part = strcmp(split, "train") ? SPLIT_TEST : SPLIT_TRAIN;
    if (open_dataset(&d, data, data_dir, part, limit, fc, fh, fw, &show) != HEED_OK) {
        cli_progress_abandon(&bar);
        return cli_lib_error("data");
    }
    if (start >= d.count) {
        const int items = d.count;
        heed_dataset_free(&d);
        return cli_error("data", 2, "--start %d is past the end of the %s split (%d items: 0 .. %d)",
                         start, split, items, items - 1);
    }
    if (count > d.count - start) {
        fprintf(stderr, "heed data: the %s split ends at item %d: writing %d item%s, not %d\n",
                split, d.count - 1, d.count - start, d.count - start == 1 ? "" : "s", count);
        count = d.count - start;
    }
    if (cli_make_dirs("data", args[1])) {
        heed_dataset_free(&d);
        return 1;
    }
    heed_tensor x = {0}, big = {0};
    int labels[1];
    rc = 0;
    for (int i = start; i < start + count && rc == 0; i++) {
        heed_rng r; /* training canvases' placements: one stream per item */
        heed_rng_seed(&r, 1, (uint64_t)i);
        heed_status st = heed_dataset_batch(&d, &i, 1, NULL, &r, &x, labels);
        if (st == HEED_OK && invert)
            for (size_t j = 0; j < heed_tensor_count(&x); j++) x.data[j] = 1.0f - x.data[j];
        const heed_tensor *out = &x;
        if (st == HEED_OK && scale > 1) {
            st = heed_image_resize(&x, x.h * scale, x.w * scale, &big);
            out = &big;
        }
        char cls[32], path[4200];
        snprintf(cls, sizeof cls, "%s", d.class_names[labels[0]]);
        class_file_name(cls);
        const size_t dl = strlen(args[1]);
        snprintf(path, sizeof path, "%s%s%s-%05d-%s.%s", args[1], dl && args[1][dl - 1] == '/' ? "" : "/",
                 split, i, cls, format);
        if (st == HEED_OK) st = heed_image_save(path, out, NULL);
        if (st != HEED_OK) {
            rc = cli_lib_error("data");
            break;
        }
        if (json) {
            /* the folder and a folder dataset's class names are the user's:
             * quotes, backslashes and bytes that are not UTF-8 escaped */
            printf("{\"file\": ");
            cli_json_string(stdout, path);
            printf(", \"index\": %d, \"label\": %d, \"class\": ", i, labels[0]);
            cli_json_string(stdout, d.class_names[labels[0]]);
            printf("}\n");
        } else
            printf("%s\n", path);
    }
    heed_tensor_free(&x), heed_tensor_free(&big);
    heed_dataset_free(&d);
    return rc;
}
