/* cmd_eval.c -- `heed eval`: test accuracy, per-class accuracy, confusion matrix. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evaluate.h"

const char cmd_eval_summary[] = "measure a model's accuracy on its dataset's test split";

static void report(const heed_model *m, const eval_result *r, int count, int json) {
    int k = r->classes;
    if (json) {
        /* a model whose outputs overflow has no finite loss: null, not nan */
        printf("{\"accuracy\": %.6f, \"loss\": ", r->accuracy);
        printf(isfinite(r->loss) ? "%.6f" : "null", r->loss);
        printf(", \"count\": %d, \"classes\": [", count);
        for (int i = 0; i < k; i++) {
            long total = 0;
            for (int j = 0; j < k; j++) total += r->confusion[(size_t)i * k + j];
            printf("%s{\"name\": ", i ? ", " : "");
            cli_json_string(stdout, m->meta.class_names[i]);
            /* a class with no test items (--limit) has no accuracy */
            if (total)
                printf(", \"accuracy\": %.6f, \"count\": %ld}", (double)r->confusion[(size_t)i * k + i] / total,
                       total);
            else
                printf(", \"accuracy\": null, \"count\": 0}");
        }
        printf("], \"confusion\": [");
        for (int i = 0; i < k; i++) {
            printf("%s[", i ? ", " : "");
            for (int j = 0; j < k; j++) printf("%s%ld", j ? ", " : "", r->confusion[(size_t)i * k + j]);
            printf("]");
        }
        printf("]}\n");
        return;
    }
    printf("test accuracy %.2f%% (%d image%s), loss %.4f%s\n\n", 100 * r->accuracy, count, count == 1 ? "" : "s",
           r->loss, isfinite(r->loss) ? "" : " (the model's outputs overflow)");
    printf("%-14s %8s %7s\n", "class", "accuracy", "images");
    for (int i = 0; i < k; i++) {
        long total = 0;
        for (int j = 0; j < k; j++) total += r->confusion[(size_t)i * k + j];
        if (total)
            printf("%-14s %7.2f%% %7ld\n", m->meta.class_names[i],
                   100.0 * r->confusion[(size_t)i * k + i] / total, total);
        else
            printf("%-14s %8s %7d\n", m->meta.class_names[i], "-", 0);
    }
    if (k > 20) return;
    printf("\nconfusion (rows: true class, columns: predicted)\n%4s", "");
    for (int j = 0; j < k; j++) printf(" %5d", j);
    printf("\n");
    for (int i = 0; i < k; i++) {
        printf("%4d", i);
        for (int j = 0; j < k; j++) printf(" %5ld", r->confusion[(size_t)i * k + j]);
        printf("  %s\n", m->meta.class_names[i]);
    }
}

/* Whether the model may have trained on images of the folder dataset
 * `name`: the folder it records, however it is written. Any other dataset
 * counts as seen: its test split is its own. */
static int trained_on(const heed_model *m, const char *name) {
    const char *dir = dataset_folder(name), *own = dataset_folder(m->meta.dataset);
    if (!dir) return 1;
    if (!own) return 0;
    char *a = realpath(dir, NULL), *b = realpath(own, NULL);
    const int same = a && b && !strcmp(a, b);
    free(a), free(b);
    return same;
}

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *data_dir = NULL;
    int json = 0, batch = 256, threads = 0, limit = 0;
    const cli_opt opts[] = {
        {"model", CLI_STRING, &model_path, "MODEL", "the model file (required)", NULL},
        {"data", CLI_STRING, &data, "NAME", "dataset: " DATASET_NAMES " [the model's own]", NULL},
        {"data-dir", CLI_STRING, &data_dir, "DIR", "Fashion-MNIST IDX files [/usr/share/datasets/fashion-mnist]", NULL},
        {"batch", CLI_INT, &batch, "N", "images per forward pass", NULL},
        {"limit", CLI_INT, &limit, "N", "only the first N test items (folders: N spread over the classes; 0: all)", NULL},
        {"threads", CLI_INT, &threads, "N", "OpenMP threads (0: every core)", NULL},
        {"json", CLI_FLAG, &json, NULL, "print JSON", NULL},
        {0}};
    const cli_spec spec = {"eval", "--model MODEL [--json]",
                           "Evaluates a model on the test split of the dataset it was trained on, or of\n"
                           "--data. A folder dataset's test split is DIR/test/<class>/, or, for a folder\n"
                           "of class folders alone, the images heed train held out (one in five, by file\n"
                           "name) when the model trained on that folder, and every image when it did not.\n"
                           "Its classes are matched to the model's by name, as `heed data export` writes\n"
                           "them (T_shirt_top for T-shirt/top), so the folder may hold some of them, in\n"
                           "any order.\n"
                           "JSON: {\"accuracy\", \"loss\", \"count\", \"classes\": [{\"name\", \"accuracy\",\n"
                           "\"count\"}], \"confusion\": rows the true class, columns the predicted one}.",
                           opts, NULL};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs) return cli_error("eval", 2, "unexpected argument '%s'", args[0]);
    if (!model_path) return cli_error("eval", 2, "--model MODEL is required");
    if (batch < 1) return cli_error("eval", 2, "--batch must be positive");
    if (limit < 0) return cli_error("eval", 2, "--limit must be 0 (all) or more, not %d", limit);
    if (data && !dataset_name_known(data))
        return cli_error("eval", 2, "unknown dataset '%s' (" DATASET_NAMES ")", data);
    if (data && data_dir && dataset_folder(data)) return cli_error("eval", 2, DATA_DIR_WITH_FOLDER, data_dir, data);
    if ((rc = cli_threads("eval", &threads, 1)) >= 0) return rc;
    heed_model *m;
    if (heed_model_load(&m, model_path) != HEED_OK) return cli_lib_error("eval");
    heed_dataset d = {0};
    const char *name = data ? data : m->meta.dataset[0] ? m->meta.dataset : "fmnist";
    cli_progress bar;
    cli_progress_start(&bar, "decoding test images", 0);
    const dataset_progress show = {cli_progress_count, &bar};
    const dataset_split split = trained_on(m, name) ? SPLIT_TEST : SPLIT_UNSEEN;
    heed_status st = open_dataset(&d, name, data_dir, split, limit, m->net->in_c, m->net->in_h, m->net->in_w,
                                  &show);
    if (st != HEED_OK) cli_progress_abandon(&bar);
    if (st == HEED_OK && limit > 0 && limit < d.count) d.count = limit;
    if (st == HEED_OK) st = match_classes(&d, m, name);
    eval_result r = {0};
    if (st == HEED_OK) st = evaluate(m, &d, batch, &r);
    if (st == HEED_OK) report(m, &r, d.count, json);
    rc = st == HEED_OK ? 0 : cli_lib_error("eval");
    eval_result_free(&r);
    heed_dataset_free(&d);
    heed_model_free(m);
    return rc;
}
