/* check_evaluate.c -- apps/evaluate.c, the scoring behind `heed eval` and
 * `heed train`, tested as a unit: matching a dataset's classes to a model's
 * by name, class names and numbers on the command line, the predicted
 * class, the confusion matrix, and the items a --limit keeps. The file is
 * compiled into this suite (the apps are not part of libheed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../apps/evaluate.c"
#include "linear.h"
#include "testutil.h"

/* A model whose outputs are `k` classes with these names: an fc layer on a
 * 1x1x1 input. */
static heed_model *named_model(int k, const char *const *names) {
    char text[64];
    snprintf(text, sizeof text, "input 1 1 1\nfc out=%d\n", k);
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, text, "t", 1), HEED_OK);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    ck_assert_int_eq(heed_model_set_classes(m, k, names), HEED_OK);
    return m;
}

/* A dataset of `n` labelled items without pixels, classes named. */
typedef struct named_data {
    int labels[8];
    char names[4][32];
    heed_dataset d;
} named_data;

static void named_data_make(named_data *nd, int classes, const char *const *names, int n,
                            const int *labels) {
    memset(nd, 0, sizeof *nd);
    for (int i = 0; i < classes; i++) snprintf(nd->names[i], sizeof nd->names[i], "%s", names[i]);
    memcpy(nd->labels, labels, (size_t)n * sizeof *labels);
    nd->d = (heed_dataset){.count = n, .classes = classes, .labels = nd->labels, .class_names = nd->names};
}

/* evaluate.h: each folder class becomes the model's class of the same name,
 * exact first, then as `heed data export` writes it (every character but
 * letters and digits as '_'); digits are part of the name, so "size_1" and
 * "size_2" are two classes; two folders for one model class are refused. */
START_TEST(folder_classes_match_model_classes_by_name) {
    const char *model_names[] = {"size 1", "size 2", "T-shirt/top", "a-b", "a_b"};
    heed_model *m = named_model(5, model_names);
    named_data nd;
    /* sorted folder names: T_shirt_top, a_b, size_1, size_2 */
    const char *folders[] = {"T_shirt_top", "a_b", "size_1", "size_2"};
    named_data_make(&nd, 4, folders, 5, (const int[]){0, 1, 2, 3, 2});
    ck_assert_msg(match_classes(&nd.d, m, "ds") == HEED_OK, "%s", heed_last_error());
    const int want[5] = {2, 4, 0, 1, 0}; /* "a_b" is exactly the model's "a_b", not "a-b" */
    for (int i = 0; i < 5; i++) ck_assert_int_eq(nd.labels[i], want[i]);
    /* "T-shirt/top" and "T_shirt_top": both the model's "T-shirt/top" */
    const char *twice[] = {"T-shirt/top", "T_shirt_top"};
    named_data_make(&nd, 2, twice, 2, (const int[]){0, 1});
    ck_assert_int_eq(match_classes(&nd.d, m, "ds"), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "ds has two classes that are the model's class 'T-shirt/top'"), "%s",
                  heed_last_error());
    heed_model_free(m);
}
END_TEST

/* --class takes a class's name, its export spelling, or its number
 * 0 .. classes - 1. */
START_TEST(a_class_is_named_or_numbered) {
    const char *names[] = {"cat", "dog", "T-shirt/top"};
    heed_model *m = named_model(3, names);
    ck_assert_int_eq(model_class(m, "dog"), 1);
    ck_assert_int_eq(model_class(m, "T_shirt_top"), 2);
    ck_assert_int_eq(model_class(m, "0"), 0);
    ck_assert_int_eq(model_class(m, "2"), 2);
    ck_assert_int_eq(model_class(m, "3"), -1);
    ck_assert_int_eq(model_class(m, "-1"), -1);
    ck_assert_int_eq(model_class(m, "cow"), -1);
    heed_model_free(m);
}
END_TEST

/* The predicted class is the first of the largest outputs, as
 * torch.argmax picks it. */
START_TEST(ties_go_to_the_first_class) {
    ck_assert_int_eq(predicted_class((const float[]){1, 3, 3}, 3), 1);
    ck_assert_int_eq(predicted_class((const float[]){2, 2}, 2), 0);
    ck_assert_int_eq(predicted_class((const float[]){0, -1, 5, 4}, 4), 2);
}
END_TEST

/* fc weights (1, -1), no bias, on inputs 1, 1, -1 labelled 0, 1, 1: the
 * logits are (1, -1), (1, -1), (-1, 1), so the predictions 0, 0, 1; the
 * confusion matrix (row: true class, column: predicted) is [[1, 0], [1, 1]],
 * the accuracy 2/3, the loss the mean of log(1 + e^-2), log(1 + e^2),
 * log(1 + e^-2); batches of 2 leave a last batch of 1. */
START_TEST(confusion_rows_are_true_classes) {
    const char *names[] = {"pos", "neg"};
    heed_model *m = named_model(2, names);
    heed_params *p = &m->net->params;
    float *w = p->values + heed_params_find(p, "fc1.weight")->offset;
    float *b = p->values + heed_params_find(p, "fc1.bias")->offset;
    w[0] = 1, w[1] = -1, b[0] = b[1] = 0;
    float images[3] = {1, 1, -1};
    int labels[3] = {0, 1, 1};
    const heed_dataset d = {.count = 3, .c = 1, .h = 1, .w = 1, .classes = 2, .images = images,
                            .labels = labels};
    eval_result r;
    ck_assert_msg(evaluate(m, &d, 2, &r) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(r.classes, 2);
    const long want[4] = {1, 0, 1, 1};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(r.confusion[i], want[i]);
    ck_assert_double_eq_tol(r.accuracy, 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(r.loss, (2 * log1p(exp(-2.0)) + log1p(exp(2.0))) / 3, 1e-6);
    eval_result_free(&r);
    heed_model_free(m);
}
END_TEST

/* A --limit on a folder dataset (listed class by class) keeps items
 * spread over it, item i * count / limit: of 6, 3 keep items 0, 2, 4. */
START_TEST(limit_keeps_items_spread_over_the_dataset) {
    float images[6] = {10, 11, 12, 13, 14, 15};
    int labels[6] = {0, 0, 1, 1, 2, 2};
    heed_dataset d = {.count = 6, .c = 1, .h = 1, .w = 1, .classes = 3, .images = images, .labels = labels};
    keep_spread(&d, 3);
    ck_assert_int_eq(d.count, 3);
    const float want[3] = {10, 12, 14};
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq(images[i], want[i]);
        ck_assert_int_eq(labels[i], i);
    }
}
END_TEST

Suite *heed_suite_evaluate(void) {
    Suite *s = suite_create("evaluate");
    TCase *tc = tcase_create("evaluate");
    tcase_add_test(tc, folder_classes_match_model_classes_by_name);
    tcase_add_test(tc, a_class_is_named_or_numbered);
    tcase_add_test(tc, ties_go_to_the_first_class);
    tcase_add_test(tc, confusion_rows_are_true_classes);
    tcase_add_test(tc, limit_keeps_items_spread_over_the_dataset);
    suite_add_tcase(s, tc);
    return s;
}
