/* data_folder.c -- a dataset from a folder per class of PNG/JPEG files
 * (the layout torchvision's ImageFolder reads).
 *
 * Two passes: the first lists and sorts class folders and files so that the
 * item count (and every label) is known before anything is decoded; the
 * second decodes each file into its slot, converts its channels and
 * resizes it. Decoding dominates, and files are independent, so the second
 * pass runs across threads. The error message lives in thread-local storage,
 * so after a parallel failure the first failing file is decoded again on
 * the calling thread to leave its message where the caller will look.
 */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "image.h"
#include "omp_impl.h"
#include "text_impl.h"


typedef struct name_list {
    char **items;
    int count, cap;
} name_list;

static void names_free(name_list *l) {
    for (int i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    *l = (name_list){0};
}

static heed_status names_push(name_list *l, const char *s) {
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return heed_fail(HEED_ERR_NOMEM, "folder dataset: cannot grow a file list");
        l->items = items, l->cap = cap;
    }
    size_t n = strlen(s) + 1;
    if (!(l->items[l->count] = malloc(n)))
        return heed_fail(HEED_ERR_NOMEM, "folder dataset: cannot grow a file list");
    memcpy(l->items[l->count++], s, n);
    return HEED_OK;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                   strcasecmp(dot, ".jpeg") == 0);
}

static heed_status join(char *out, size_t cap, const char *a, const char *b) {
    int n = snprintf(out, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return heed_fail(HEED_ERR_ARG, "folder dataset: path too long: %s/%s", a, b);
    return HEED_OK;
}

/* Names in dir, sorted, not starting with '.': sub-folders when want_dirs,
 * else regular files with an image extension (opening a fifo would wait
 * for a writer for ever). */
static heed_status list_dir(const char *dir, int want_dirs, name_list *out) {
    DIR *dp = opendir(dir);
    if (!dp) return heed_fail(HEED_ERR_IO, "folder dataset: cannot open %s: %s", dir, strerror(errno));
    heed_status s = HEED_OK;
    char path[4096];
    struct dirent *e;
    while (s == HEED_OK && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !has_image_ext(e->d_name)) continue;
        if ((s = join(path, sizeof path, dir, e->d_name)) != HEED_OK) break;
        struct stat st;
        /* A broken link or a vanished entry is neither: skip it. */
        if (stat(path, &st) != 0) continue;
        if (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) s = names_push(out, e->d_name);
    }
    closedir(dp);
    if (s == HEED_OK && out->count > 1)
        qsort(out->items, (size_t)out->count, sizeof *out->items, cmp_names);
    return s;
}

/* Decodes path into dst, (c, h, w) floats. */
static heed_status load_one(const char *path, int c, int h, int w, float *dst) {
    heed_tensor img = {0}, conv = {0}, sized = {0};
    heed_status s = heed_image_load(path, 0, &img);
    const heed_tensor *cur = &img;
    if (s == HEED_OK && cur->c != c) {
        s = heed_image_convert(cur, c, &conv);
        cur = &conv;
    }
    if (s == HEED_OK && (cur->h != h || cur->w != w)) {
        s = heed_image_resize(cur, h, w, &sized);
        cur = &sized;
    }
    if (s == HEED_OK) memcpy(dst, cur->data, (size_t)c * h * w * sizeof(float));
    heed_tensor_free(&img), heed_tensor_free(&conv), heed_tensor_free(&sized);
    return s;
}

int heed_folder_holdout(const char *name) {
    uint32_t hash = 2166136261u; /* FNV-1a, 32 bits */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash % 5 == 0;
}

/* Whether `part` keeps the image file `name`. */
static int in_part(const char *name, heed_folder_part part) {
    return part == HEED_FOLDER_ALL || heed_folder_holdout(name) == (part == HEED_FOLDER_TEST);
}

/* Lists root into classes and files of `part` (full paths, class by
 * class) with their labels; fills d->classes and d->class_names. */
static heed_status list_items(heed_dataset *d, const char *root, heed_folder_part part,
                              name_list *files, int **labels) {
    name_list classes = {0}, names = {0};
    heed_status s = list_dir(root, 1, &classes);
    if (s == HEED_OK && classes.count == 0)
        s = heed_fail(HEED_ERR_ARG, "folder dataset %s: no class folders in it", root);
    if (s == HEED_OK && !(d->class_names = malloc((size_t)classes.count * sizeof *d->class_names)))
        s = heed_fail(HEED_ERR_NOMEM, "folder dataset: cannot allocate %d class names", classes.count);
    int cap = 0;
    char dir[4096], path[4096];
    for (int k = 0; s == HEED_OK && k < classes.count; k++) {
        const char *name = classes.items[k];
        if (strlen(name) >= sizeof d->class_names[k]) {
            s = heed_fail(HEED_ERR_ARG, "folder dataset %s: class name '%s' is longer than %zu bytes",
                          root, name, sizeof d->class_names[k] - 1);
            break;
        }
        /* A model's metadata is lines of text: its class names hold no
         * control character (heed_model_set_classes refused it later,
         * naming neither the folder nor the name). Shown with ? for each,
         * so that the message stays one line; the name fits (longer ones
         * were refused above), so the copy differs only where one was. */
        char shown[sizeof d->class_names[k]];
        if (strcmp(heed_one_line(name, shown, sizeof shown), name)) {
            s = heed_fail(HEED_ERR_ARG, "folder dataset %s: class folder '%s' has a control character "
                          "(a tab, a newline; shown as ?) in its name, which a class name cannot hold: "
                          "rename it", root, shown);
            break;
        }
        snprintf(d->class_names[k], sizeof d->class_names[k], "%s", name);
        if ((s = join(dir, sizeof dir, root, name)) != HEED_OK) break;
        if ((s = list_dir(dir, 0, &names)) != HEED_OK) break;
        if (names.count == 0)
            s = heed_fail(HEED_ERR_ARG, "folder dataset: class folder %s has no .png, .jpg or .jpeg "
                          "file", dir);
        const int before = files->count;
        for (int i = 0; s == HEED_OK && i < names.count; i++) {
            if (!in_part(names.items[i], part)) continue;
            if ((s = join(path, sizeof path, dir, names.items[i])) != HEED_OK) break;
            if ((s = names_push(files, path)) != HEED_OK) break;
            if (files->count > cap) {
                cap = files->cap;
                int *l = realloc(*labels, (size_t)cap * sizeof *l);
                if (!l) {
                    s = heed_fail(HEED_ERR_NOMEM, "folder dataset: cannot grow the label list");
                    break;
                }
                *labels = l;
            }
            (*labels)[files->count - 1] = k;
        }
        if (s == HEED_OK && part == HEED_FOLDER_TRAIN && files->count == before)
            s = heed_fail(HEED_ERR_ARG, "folder dataset: class folder %s has %d image%s, all held out "
                          "for testing (one in five is): add images, or give train/ and test/ "
                          "folders", dir, names.count, names.count == 1 ? "" : "s");
        names_free(&names);
    }
    if (s == HEED_OK && files->count == 0) /* only the test part can be empty */
        s = heed_fail(HEED_ERR_ARG, "folder dataset %s: none of its images is held out for testing "
                      "(one in five is, by file name): add images, or give train/ and test/ folders",
                      root);
    if (s == HEED_OK) d->classes = classes.count;
    names_free(&classes);
    names_free(&names);
    return s;
}

static heed_status folder_read(heed_dataset *d, const char *root, int c, int h, int w,
                               const heed_folder_opts *o, name_list *files) {
    const heed_folder_part part = o->part;
    if (c < 1 || c > 4 || h < 1 || w < 1)
        return heed_fail(HEED_ERR_ARG, "folder dataset: images of %d x %d x %d (channels 1..4, "
                         "sizes >= 1)", c, h, w);
    if (part != HEED_FOLDER_ALL && part != HEED_FOLDER_TRAIN && part != HEED_FOLDER_TEST)
        return heed_fail(HEED_ERR_ARG, "folder dataset: no part %d (all, train or test)", (int)part);
    HEED_TRY(list_items(d, root, part, files, &d->labels));
    const int count = files->count;
    size_t total;
    HEED_TRY(heed_shape_count(count, c, h, w, &total));
    if (!(d->images = heed_alloc(total * sizeof(float))))
        return heed_alloc_failed(total * sizeof(float), "the folder dataset's %d images of %d x %d x %d",
                                 count, c, h, w);
    const size_t item = (size_t)c * h * w;
    int failed = count; /* the first item that failed, count if none */
    int done = 0;
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < count; i++) {
        int skip; /* an earlier item already failed */
#pragma omp critical(heed_folder_failed)
        skip = i > failed;
        if (skip) continue;
        if (load_one(files->items[i], c, h, w, d->images + (size_t)i * item) != HEED_OK) {
#pragma omp critical(heed_folder_failed)
            if (i < failed) failed = i;
        }
        int now;
#pragma omp atomic capture
        now = ++done;
        /* the last call, done == count, comes once, after the loop */
        if (o->progress && now < count && omp_get_thread_num() == 0)
            o->progress(o->ctx, now, count);
    }
    if (o->progress && failed == count) o->progress(o->ctx, count, count);
    if (failed < count) {
        heed_status s = load_one(files->items[failed], c, h, w, d->images + (size_t)failed * item);
        if (s != HEED_OK) return s;
        return heed_fail(HEED_ERR_IO, "folder dataset: %s could not be read", files->items[failed]);
    }
    d->count = count, d->c = c, d->h = h, d->w = w;
    return HEED_OK;
}

heed_status heed_folder_load_with(heed_dataset *d, const char *root, int c, int h, int w,
                                  const heed_folder_opts *opts) {
    if (!d || !root) return heed_fail(HEED_ERR_ARG, "folder dataset: %s is NULL", d ? "the folder" : "the dataset");
    *d = (heed_dataset){0};
    name_list files = {0};
    const heed_folder_opts all = {0};
    heed_status s = folder_read(d, root, c, h, w, opts ? opts : &all, &files);
    names_free(&files);
    if (s != HEED_OK) heed_dataset_free(d);
    return s;
}

heed_status heed_folder_load(heed_dataset *d, const char *root, int c, int h, int w) {
    return heed_folder_load_with(d, root, c, h, w, NULL);
}
