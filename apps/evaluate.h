/* evaluate.h -- what train, eval and classify share: opening a dataset by
 * name, normalising batches for a model, and measuring accuracy. */
#ifndef HEED_APPS_EVALUATE_H
#define HEED_APPS_EVALUATE_H

#include "data.h"
#include "model.h"

/* Fashion-MNIST's pixel mean and standard deviation over the training set. */
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f

/* Opens `name` ("fmnist", or "folder:PATH" with the model's input size):
 * the train or test split. limit > 0 keeps the first `limit` items. */
heed_status open_dataset(heed_dataset *d, const char *name, const char *data_dir, int train,
                         int limit, int c, int h, int w);

/* x = (x - mean) / std in place. */
void normalize_batch(heed_tensor *x, float mean, float std);

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
