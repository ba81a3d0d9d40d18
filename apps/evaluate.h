/* evaluate.h -- what train, eval and classify share: opening a dataset by
 * name, normalising batches for a model, and measuring accuracy. */
#ifndef HEED_APPS_EVALUATE_H
#define HEED_APPS_EVALUATE_H

#include "data.h"
#include "model.h"

/* Fashion-MNIST's pixel mean and standard deviation over the training set. */
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f

/* What open_dataset calls as it decodes a folder's images: fn(ctx, done,
 * total), as heed_folder_opts's progress. */
typedef struct dataset_progress {
    void (*fn)(void *ctx, int done, int total);
    void *ctx;
} dataset_progress;

/* The dataset names open_dataset knows, for help texts and errors. */
#define DATASET_NAMES "fmnist, " HEED_CANVAS_NAMES ", or folder:DIR"

/* Whether `name` is one of DATASET_NAMES (folder:DIR with a DIR), before
 * anything is read: commands refuse others as usage errors. */
int dataset_name_known(const char *name);

/* --data-dir given with a folder dataset, which would ignore it: commands
 * refuse it as a usage error (printf arguments: the folder, the dataset). */
#define DATA_DIR_WITH_FOLDER "--data-dir %s: it says where Fashion-MNIST's files are, and %s reads its own folder"

/* The DIR of a "folder:DIR" dataset name (possibly ""), or NULL for any
 * other name. */
const char *dataset_folder(const char *name);

/* Which part of a dataset open_dataset opens. */
typedef enum dataset_split {
    SPLIT_TEST,  /* the test split */
    SPLIT_TRAIN, /* the training split */
    /* the test split, except that a folder without train/ and test/ gives
     * every image: for a model that never trained on the folder, the
     * images heed train would hold out are no more unseen than the rest */
    SPLIT_UNSEEN
} dataset_split;

/* Opens `name`'s `split`; limit > 0 keeps the first `limit`
 * items. c, h, w is the model's input shape:
 *   "fmnist": 1x28x28 whatever c, h, w say (the caller compares shapes);
 *   a canvas dataset (HEED_CANVAS_NAMES): 1xSxS; c, h, w of 0 take that,
 *     others must equal it (HEED_ERR_SHAPE naming both);
 *   "folder:PATH": PATH/train or PATH/test, or for a folder of class
 *     folders alone its part (heed_folder_holdout), converted and resized
 *     to c x h x w;
 *     limit > 0 keeps `limit` items spread evenly over the split (its items
 *     are listed class by class), all of them still decoded.
 * progress (NULL: none) is told how a folder's decoding goes.
 * Errors: HEED_ERR_ARG for an unknown name (the message lists
 * DATASET_NAMES) or a data_dir (non-NULL) with a folder, the loaders'
 * errors. */
heed_status open_dataset(heed_dataset *d, const char *name, const char *data_dir,
                         dataset_split split, int limit, int c, int h, int w,
                         const dataset_progress *progress);

/* Relabels d (opened as `name`) with the model's class indices, matching
 * class names exactly or as `heed data export` writes them (T_shirt_top for
 * T-shirt/top): a folder's classes are numbered by sorted folder name, which
 * need not be the model's order, nor all of its classes. Errors:
 * HEED_ERR_ARG (a class the model lacks, two classes matching one),
 * HEED_ERR_SHAPE (a dataset without names whose class count differs). */
heed_status match_classes(heed_dataset *d, const heed_model *m, const char *name);

/* name with every character but letters and digits as '_', in place: how
 * `heed data export` and overlay names write a class ("T-shirt/top" is
 * "T_shirt_top"). */
void class_file_name(char *name);

/* The model's class named `name` (exactly, or as `heed data export` writes
 * it: T_shirt_top for T-shirt/top) or numbered by it (0..classes-1); -1
 * if none. */
int model_class(const heed_model *m, const char *name);

typedef struct eval_result {
    double accuracy, loss;
    int classes;
    long *confusion; /* (classes, classes): row = true class, column = predicted */
} eval_result;

/* The index of the largest of row[0..k): the predicted class (first on ties). */
int predicted_class(const float *row, int k);

/* Runs the model in inference mode over the whole dataset. */
heed_status evaluate(heed_model *m, const heed_dataset *d, int batch, eval_result *r);
void eval_result_free(eval_result *r);

#endif
