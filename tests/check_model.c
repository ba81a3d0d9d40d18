/* check_model.c -- model files: bit-identical round trips, metadata, extra
 * chunks, and clean failures on truncated, corrupt and mismatched files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"

static const char *NET = "input 1 8 8\nconv out=4 k=3 pad=1 bias=0\nbn\nrelu\ncbam r=2 k=3\n"
                         "maxpool k=2\nflatten\nfc out=3\n";

static heed_model *make_model(void) {
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, NET, "t", 77), HEED_OK);
    /* Make the batch-norm buffers non-default so the round trip covers them. */
    for (int i = 0; i < net->params.count; i++)
        if (net->params.items[i].flags & HEED_PARAM_BUFFER)
            tu_fill_uniform(net->params.values + net->params.items[i].offset,
                            net->params.items[i].count, 0.5f, 1.5f, (uint64_t)i);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"cat", "dog", "T-shirt/top"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    m->meta.input_mean = 0.25f, m->meta.input_std = 0.5f, m->meta.dark_background = 1;
    snprintf(m->meta.recipe, sizeof m->meta.recipe, "heed train --epochs 2");
    m->meta.test_accuracy = 0.875f;
    return m;
}

static void tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "/tmp/heed-check-model-%ld-%s", (long)getpid(), name);
}

static void forward(heed_model *m, heed_tensor *y) {
    heed_tensor x;
    heed_tensor_alloc(&x, 2, 1, 8, 8);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 3);
    ck_assert_int_eq(heed_net_forward(m->net, &x, y), HEED_OK);
    heed_tensor_free(&x);
}

START_TEST(round_trip_is_bit_identical) {
    char path[256];
    tmp_path(path, sizeof path, "rt.heed");
    heed_model *m = make_model(), *back;
    heed_chunk extra = {.tag = "OPTM", .data = (unsigned char *)"state", .size = 5};
    ck_assert_msg(heed_model_save_with(m, path, &extra, 1) == HEED_OK, "%s", heed_last_error());
    heed_chunk *chunks;
    int nchunks;
    ck_assert_msg(heed_model_load_with(&back, path, &chunks, &nchunks) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(nchunks, 1);
    ck_assert_int_eq(heed_chunk_find(chunks, nchunks, "OPTM")->size, 5);
    ck_assert_int_eq(memcmp(heed_chunk_find(chunks, nchunks, "OPTM")->data, "state", 5), 0);
    heed_chunks_free(chunks, nchunks);
    ck_assert_int_eq(memcmp(m->net->params.values, back->net->params.values,
                            m->net->params.total * sizeof(float)), 0);
    heed_tensor y1 = {0}, y2 = {0};
    forward(m, &y1);
    forward(back, &y2);
    ck_assert_int_eq(memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)), 0);
    ck_assert_int_eq(back->meta.classes, 3);
    ck_assert_str_eq(back->meta.class_names[2], "T-shirt/top");
    ck_assert_float_eq(back->meta.input_mean, 0.25f);
    ck_assert_float_eq(back->meta.input_std, 0.5f);
    ck_assert_int_eq(back->meta.dark_background, 1);
    ck_assert_str_eq(back->meta.recipe, "heed train --epochs 2");
    ck_assert_float_eq_tol(back->meta.test_accuracy, 0.875f, 1e-6);
    heed_tensor_free(&y1), heed_tensor_free(&y2);
    heed_model_free(m), heed_model_free(back);
    unlink(path);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

START_TEST(truncated_and_corrupt_files_fail_cleanly) {
    char path[256], bad[256];
    tmp_path(path, sizeof path, "good.heed");
    tmp_path(bad, sizeof bad, "bad.heed");
    heed_model *m = make_model(), *back;
    ck_assert_int_eq(heed_model_save(m, path), HEED_OK);
    size_t len;
    unsigned char *b = slurp(path, &len);
    /* every truncation length in the header and chunk framing, and a spread beyond */
    for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 97) {
        spit(bad, b, cut);
        ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
        ck_assert_ptr_null(back);
        ck_assert_ptr_nonnull(strstr(heed_last_error(), bad));
    }
    /* a flipped bit anywhere is caught (magic, framing or checksum) */
    for (size_t at = 0; at < len; at += 13) {
        b[at] ^= 0x10;
        spit(bad, b, len);
        ck_assert_int_ne(heed_model_load(&back, bad), HEED_OK);
        b[at] ^= 0x10;
    }
    spit(bad, (const unsigned char *)"hello, not a model", 18);
    ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not a heed model file"));
    ck_assert_int_eq(heed_model_load(&back, "/tmp/heed-no-such-model.heed"), HEED_ERR_IO);
    free(b);
    heed_model_free(m);
    unlink(path), unlink(bad);
}
END_TEST

START_TEST(save_is_atomic_and_reports_bad_paths) {
    heed_model *m = make_model();
    ck_assert_int_eq(heed_model_save(m, "/tmp/heed-no-such-dir/x/model.heed"), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "/tmp/heed-no-such-dir/x/model.heed"));
    heed_model_free(m);
}
END_TEST

Suite *heed_suite_model(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, round_trip_is_bit_identical);
    tcase_add_test(tc, truncated_and_corrupt_files_fail_cleanly);
    tcase_add_test(tc, save_is_atomic_and_reports_bad_paths);
    suite_add_tcase(s, tc);
    return s;
}
