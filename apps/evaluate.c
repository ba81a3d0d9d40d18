/* evaluate.c -- see evaluate.h. */
#include "evaluate.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loss.h"

/* A dataset of 1xSxS images against the model's input (0: any). */
static heed_status check_shape(const char *name, int S, int c, int h, int w) {
    if ((c && c != 1) || (h && h != S) || (w && w != S))
        return heed_fail(HEED_ERR_SHAPE, "dataset %s has 1x%dx%d images but the model takes "
                         "%dx%dx%d inputs", name, S, S, c, h, w);
    return HEED_OK;
}

/* Whether path is a split folder (DIR/train or DIR/test) of a folder
 * dataset: a folder of (class) folders. A folder called train or test
 * that holds images alone is a class of a folder without splits (the
 * trains among vehicles). */
static int is_split_folder(const char *path) {
    DIR *dp = opendir(path);
    if (!dp) return 0;
    int found = 0;
    char sub[4096];
    struct stat sb;
    for (struct dirent *e; !found && (e = readdir(dp));) {
        if (e->d_name[0] == '.') continue;
        const int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        found = n > 0 && (size_t)n < sizeof sub && stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode);
    }
    closedir(dp);
    return found;
}

const char *dataset_folder(const char *name) {
    return strncmp(name, "folder:", 7) ? NULL : name + 7;
}

int dataset_name_known(const char *name) {
    heed_canvas_cfg cfg;
    const char *dir = dataset_folder(name);
    if (dir) return dir[0] != '\0';
    return !strcmp(name, "fmnist") || heed_canvas_preset(&cfg, name, 0) == HEED_OK;
}

/* Keeps `limit` (< count) items of d, spread evenly over it (item
 * i * count / limit): a folder dataset lists its items class by class, so
 * its first items would all be of its first classes. */
static void keep_spread(heed_dataset *d, int limit) {
    const size_t item = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < limit; i++) {
        const int j = (int)((long long)i * d->count / limit); /* j >= i */
        if (j == i) continue;
        memmove(d->images + (size_t)i * item, d->images + (size_t)j * item, item * sizeof(float));
        d->labels[i] = d->labels[j];
    }
    d->count = limit;
}

heed_status open_dataset(heed_dataset *d, const char *name, const char *data_dir,
                         dataset_split split, int limit, int c, int h, int w,
                         const dataset_progress *progress) {
    const int train = split == SPLIT_TRAIN;
    if (!strcmp(name, "fmnist")) {
        HEED_TRY(check_shape(name, 28, c, h, w));
        return heed_fmnist_load(d, data_dir, train, limit);
    }
    const char *dir = dataset_folder(name);
    if (dir) {
        if (!dir[0]) return heed_fail(HEED_ERR_ARG, "dataset 'folder:' names no folder (folder:DIR)");
        /* Given with a folder, --data-dir would be ignored without a word. */
        if (data_dir) return heed_fail(HEED_ERR_ARG, DATA_DIR_WITH_FOLDER, data_dir, name);
        /* Split by its own train/ and test/ folders, or else, when it has
         * neither (or has class folders of those names), by holding one
         * image in five of each class out. */
        heed_folder_opts fo = {.part = train ? HEED_FOLDER_TRAIN : HEED_FOLDER_TEST};
        if (progress) fo.progress = progress->fn, fo.ctx = progress->ctx;
        char root[4096], other[4096];
        snprintf(root, sizeof root, "%s/%s", dir, train ? "train" : "test");
        snprintf(other, sizeof other, "%s/%s", dir, train ? "test" : "train");
        if (is_split_folder(root)) {
            fo.part = HEED_FOLDER_ALL;
            HEED_TRY(heed_folder_load_with(d, root, c, h, w, &fo));
        } else if (is_split_folder(other)) {
            return heed_fail(HEED_ERR_IO, "folder dataset %s has no %s/ folder (folder:DIR reads "
                             "DIR/train/<class>/*.png and DIR/test/<class>/*.png, or "
                             "DIR/<class>/*.png)", dir, train ? "train" : "test");
        } else {
            if (split == SPLIT_UNSEEN) fo.part = HEED_FOLDER_ALL;
            HEED_TRY(heed_folder_load_with(d, dir, c, h, w, &fo));
        }
        if (limit > 0 && limit < d->count) keep_spread(d, limit);
        return HEED_OK;
    }
    heed_canvas_cfg cfg;
    if (heed_canvas_preset(&cfg, name, train) != HEED_OK)
        return heed_fail(HEED_ERR_ARG, "unknown dataset '%s' (" DATASET_NAMES ")", name);
    HEED_TRY(check_shape(name, cfg.size, c, h, w));
    return heed_canvas_load(d, &cfg, data_dir, train, limit);
}

void class_file_name(char *name) {
    for (char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c)) *c = '_';
}

/* Whether two class names are the same, exactly or once every character
 * but letters and digits reads as '_' (as class_file_name writes them). */
static int same_class(const char *a, const char *b) {
    for (;; a++, b++) {
        const int ca = isalnum((unsigned char)*a) ? *a : *a ? '_' : 0;
        const int cb = isalnum((unsigned char)*b) ? *b : *b ? '_' : 0;
        if (ca != cb) return 0;
        if (!ca) return 1;
    }
}

/* Labels are positions among the dataset's classes, the model's outputs
 * positions among its own. A folder dataset numbers its classes by sorted
 * folder name, which need not be the model's order, nor all of its
 * classes: each label becomes the model's class of the same name (an exact
 * name first, then one that matches as export writes it), and a class the
 * model lacks is refused. A dataset without names must have the model's
 * classes, in its order. */
/* The model's class named `name`, exactly first, then as export writes
 * it; -1 if none. */
static int class_by_name(const heed_model *m, const char *name) {
    for (int i = 0; i < m->meta.classes; i++)
        if (!strcmp(name, m->meta.class_names[i])) return i;
    for (int i = 0; i < m->meta.classes; i++)
        if (same_class(name, m->meta.class_names[i])) return i;
    return -1;
}

heed_status match_classes(heed_dataset *d, const heed_model *m, const char *name) {
    const int k = m->meta.classes;
    if (!d->class_names || d->classes > HEED_MAX_CLASSES) {
        if (d->classes != k) return heed_fail(HEED_ERR_SHAPE, "%s has %d classes but the model %d", name, d->classes, k);
        return HEED_OK;
    }
    int map[HEED_MAX_CLASSES], taken[HEED_MAX_CLASSES] = {0};
    for (int j = 0; j < d->classes; j++) {
        map[j] = class_by_name(m, d->class_names[j]);
        if (map[j] < 0)
            return heed_fail(HEED_ERR_ARG, "%s's class '%s' is none of the model's %d classes (%s ... %s)",
                             name, d->class_names[j], k, m->meta.class_names[0], m->meta.class_names[k - 1]);
        if (taken[map[j]]++)
            return heed_fail(HEED_ERR_ARG, "%s has two classes that are the model's class '%s'", name,
                             m->meta.class_names[map[j]]);
    }
    for (int i = 0; i < d->count; i++) d->labels[i] = map[d->labels[i]];
    return HEED_OK;
}

int model_class(const heed_model *m, const char *name) {
    const int named = class_by_name(m, name);
    if (named >= 0) return named;
    char *end;
    const long k = strtol(name, &end, 10);
    return *name && !*end && k >= 0 && k < m->meta.classes ? (int)k : -1;
}

int predicted_class(const float *row, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

heed_status evaluate(heed_model *m, const heed_dataset *d, int batch, eval_result *r) {
    int k = m->meta.classes;
    *r = (eval_result){.classes = k};
    r->confusion = calloc((size_t)k * k, sizeof *r->confusion);
    int *idx = malloc((size_t)batch * sizeof *idx), *labels = malloc((size_t)batch * sizeof *labels);
    heed_tensor x = {0}, y = {0};
    heed_status st = (!r->confusion || !idx || !labels) ? heed_fail(HEED_ERR_NOMEM, "out of memory") : HEED_OK;
    heed_net_set_training(m->net, 0);
    /* Stochastic layers (RAM's first glimpse) draw from a fixed stream, so
     * evaluating one model twice gives one answer. */
    heed_net_reseed(m->net, 0);
    /* The weights stay put while evaluating (training resumes after). */
    const int freeze = !m->net->root->base.frozen;
    if (freeze) heed_net_set_frozen(m->net, 1);
    long correct = 0;
    double loss_sum = 0;
    for (int start = 0; st == HEED_OK && start < d->count; start += batch) {
        int n = d->count - start < batch ? d->count - start : batch;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        st = heed_dataset_batch(d, idx, n, NULL, NULL, &x, labels);
        if (st != HEED_OK) break;
        st = heed_model_normalize(m, &x);
        if (st == HEED_OK) st = heed_net_forward(m->net, &x, &y);
        if (st != HEED_OK) break;
        double loss;
        st = heed_softmax_cross_entropy(&y, labels, &loss, NULL, NULL);
        if (st != HEED_OK) break;
        loss_sum += loss * n;
        for (int i = 0; i < n; i++) {
            int best = predicted_class(y.data + (size_t)i * k, k);
            correct += best == labels[i];
            r->confusion[(size_t)labels[i] * k + best]++;
        }
    }
    if (st == HEED_OK && d->count > 0) {
        r->accuracy = (double)correct / d->count;
        r->loss = loss_sum / d->count;
    }
    if (freeze) heed_net_set_frozen(m->net, 0);
    heed_tensor_free(&x), heed_tensor_free(&y);
    free(idx), free(labels);
    if (st != HEED_OK) eval_result_free(r);
    return st;
}

void eval_result_free(eval_result *r) {
    free(r->confusion);
    r->confusion = NULL;
}
