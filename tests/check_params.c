/* check_params.c -- the contiguous parameter store and the RNG, and that
 * no failure leaves an entry pointing into a freed layer. */
#include <math.h>
#include <stdint.h>

#include <string.h>

#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "dropout.h"
#include "linear.h"
#include "params.h"
#include "pool2d.h"
#include "rng.h"
#include "seq.h"
#include "testutil.h"

START_TEST(slots_point_into_one_buffer_with_init) {
    heed_params p = {0};
    float *w = NULL, *dw = NULL, *b = NULL, *db = NULL, *mean = NULL;
    ck_assert_int_eq(heed_params_add(&p, "fc.weight", 2, (int[]){64, 100}, HEED_INIT_UNIFORM, 100,
                                     HEED_PARAM_DECAY, &w, &dw), HEED_OK);
    ck_assert_int_eq(heed_params_add(&p, "fc.bias", 1, (int[]){64}, HEED_INIT_ONES, 0, 0, &b, &db),
                     HEED_OK);
    ck_assert_int_eq(heed_params_add(&p, "bn.running_mean", 1, (int[]){3}, HEED_INIT_ZEROS, 0,
                                     HEED_PARAM_BUFFER, &mean, NULL), HEED_OK);
    ck_assert_int_eq(heed_params_add(&p, "fc.bias", 1, (int[]){64}, HEED_INIT_ONES, 0, 0, &b, &db),
                     HEED_ERR_ARG);
    ck_assert_uint_eq(heed_params_floats(&p), 6400 + 64 + 3); /* before alloc too */
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    ck_assert_uint_eq(heed_params_floats(&p), 6467);
    ck_assert_ptr_eq(w, p.values);
    ck_assert_ptr_eq(dw, p.grads);
    ck_assert(b >= p.values + 6400 && b < p.values + p.total);
    ck_assert_uint_eq((uintptr_t)b % 64, 0);
    /* U(-0.1, 0.1) for fan_in 100, all within bounds, mean near 0. */
    double sum = 0;
    for (int i = 0; i < 6400; i++) {
        ck_assert(fabsf(w[i]) <= 0.1f);
        sum += w[i];
    }
    ck_assert(fabs(sum / 6400) < 0.005);
    ck_assert_float_eq(b[63], 1.0f);
    ck_assert_uint_eq(heed_params_trainable(&p), 6464);
    ck_assert_ptr_eq(heed_params_find(&p, "bn.running_mean")->value_slot, &mean);
    dw[5] = 3;
    heed_params_zero_grad(&p);
    ck_assert_float_eq(dw[5], 0.0f);
    ck_assert_int_eq(heed_params_add(&p, "late", 1, (int[]){1}, HEED_INIT_ZEROS, 0, 0, &b, &db),
                     HEED_ERR_ARG);
    heed_params_free(&p);
}
END_TEST

/* Fine-tuning's copy: each tensor of dst that src holds by name and shape
 * takes src's values (a buffer too); one of another shape, or absent,
 * keeps its own, and the outcomes say which was which. */
START_TEST(copy_matching_takes_what_fits) {
    heed_params dst = {0}, src = {0};
    float *dw = NULL, *db = NULL, *dm = NULL, *dn = NULL, *sw = NULL, *sb = NULL, *sm = NULL, *sx = NULL;
    float *g = NULL;
    ck_assert_int_eq(heed_params_add(&dst, "a.weight", 2, (int[]){3, 4}, HEED_INIT_UNIFORM, 4, 0, &dw, &g), HEED_OK);
    ck_assert_int_eq(heed_params_add(&dst, "a.bias", 1, (int[]){3}, HEED_INIT_ONES, 0, 0, &db, &g), HEED_OK);
    ck_assert_int_eq(heed_params_add(&dst, "bn.running_mean", 1, (int[]){2}, HEED_INIT_ZEROS, 0,
                                     HEED_PARAM_BUFFER, &dm, NULL), HEED_OK);
    ck_assert_int_eq(heed_params_add(&dst, "head.weight", 2, (int[]){2, 4}, HEED_INIT_UNIFORM, 4, 0, &dn, &g),
                     HEED_OK);
    ck_assert_int_eq(heed_params_add(&src, "head.weight", 2, (int[]){4, 2}, HEED_INIT_UNIFORM, 2, 0, &sx, &g),
                     HEED_OK); /* as many floats, another shape */
    ck_assert_int_eq(heed_params_add(&src, "bn.running_mean", 1, (int[]){2}, HEED_INIT_ONES, 0,
                                     HEED_PARAM_BUFFER, &sm, NULL), HEED_OK);
    ck_assert_int_eq(heed_params_add(&src, "a.weight", 2, (int[]){3, 4}, HEED_INIT_UNIFORM, 4, 0, &sw, &g), HEED_OK);
    ck_assert_int_eq(heed_params_add(&src, "a.bias.x", 1, (int[]){3}, HEED_INIT_ONES, 0, 0, &sb, &g), HEED_OK);
    int copied = -1;
    ck_assert_int_eq(heed_params_copy_matching(&dst, &src, &copied, NULL), HEED_ERR_ARG); /* not allocated */
    ck_assert_int_eq(heed_params_alloc(&dst, 1), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&src, 2), HEED_OK);
    for (int i = 0; i < 12; i++) sw[i] = 100.0f + i;
    sm[0] = 7, sm[1] = 8;
    float head[8], bias[3];
    memcpy(head, dn, sizeof head);
    memcpy(bias, db, sizeof bias);
    heed_match match[4];
    ck_assert_int_eq(heed_params_copy_matching(&dst, &src, &copied, match), HEED_OK);
    ck_assert_int_eq(copied, 2);
    ck_assert_int_eq(match[0], HEED_MATCH_COPIED);
    ck_assert_int_eq(match[1], HEED_MATCH_ABSENT);
    ck_assert_int_eq(match[2], HEED_MATCH_COPIED);
    ck_assert_int_eq(match[3], HEED_MATCH_SHAPE);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(dw[i], 100.0f + i);
    ck_assert(dm[0] == 7 && dm[1] == 8);
    ck_assert_int_eq(memcmp(head, dn, sizeof head), 0);
    ck_assert_int_eq(memcmp(bias, db, sizeof bias), 0);
    ck_assert_int_eq(heed_params_copy_matching(NULL, &src, &copied, NULL), HEED_ERR_ARG);
    /* a store onto itself: every tensor matches, nothing changes */
    ck_assert_int_eq(heed_params_copy_matching(&dst, &dst, &copied, match), HEED_OK);
    ck_assert_int_eq(copied, 4);
    ck_assert(match[1] == HEED_MATCH_COPIED && dw[11] == 111.0f);
    heed_params_free(&dst), heed_params_free(&src);
}
END_TEST

START_TEST(same_seed_same_values) {
    float *w1, *w2, *d;
    heed_params a = {0}, b = {0};
    heed_params_add(&a, "w", 1, (int[]){50}, HEED_INIT_HE_NORMAL, 8, 0, &w1, &d);
    heed_params_add(&b, "w", 1, (int[]){50}, HEED_INIT_HE_NORMAL, 8, 0, &w2, &d);
    heed_params_alloc(&a, 9);
    heed_params_alloc(&b, 9);
    for (int i = 0; i < 50; i++) ck_assert_float_eq(w1[i], w2[i]);
    heed_params_free(&a);
    heed_params_free(&b);
}
END_TEST

START_TEST(rng_moments_and_shuffle) {
    heed_rng r;
    heed_rng_seed(&r, 123, 0);
    double s = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = heed_rng_normal(&r);
        s += z, s2 += z * z;
    }
    ck_assert(fabs(s / n) < 0.01);
    ck_assert(fabs(s2 / n - 1.0) < 0.02);
    int idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, seen[10] = {0};
    heed_rng_shuffle(&r, idx, 10);
    for (int i = 0; i < 10; i++) seen[idx[i]]++;
    for (int i = 0; i < 10; i++) ck_assert_int_eq(seen[i], 1);
    for (int i = 0; i < 1000; i++) ck_assert_uint_lt(heed_rng_below(&r, 7), 7);
}
END_TEST

START_TEST(truncate_forgets_the_latest_entries) {
    heed_params p = {0};
    float *a, *b, *c, *d;
    ck_assert_int_eq(heed_params_add(&p, "a", 1, (int[]){3}, HEED_INIT_ONES, 0, 0, &a, &d), HEED_OK);
    ck_assert_int_eq(heed_params_add(&p, "b", 1, (int[]){4}, HEED_INIT_ONES, 0, 0, &b, &d), HEED_OK);
    ck_assert_int_eq(heed_params_add(&p, "c", 1, (int[]){5}, HEED_INIT_ONES, 0, 0, &c, &d), HEED_OK);
    ck_assert_int_eq(heed_params_truncate(&p, 4), HEED_ERR_ARG);
    ck_assert_int_eq(heed_params_truncate(&p, -1), HEED_ERR_ARG);
    ck_assert_int_eq(p.count, 3);
    ck_assert_int_eq(heed_params_truncate(&p, 1), HEED_OK);
    ck_assert_int_eq(p.count, 1);
    ck_assert_ptr_null(heed_params_find(&p, "b"));
    ck_assert_uint_eq(heed_params_floats(&p), 3);
    /* the names are free again */
    ck_assert_int_eq(heed_params_add(&p, "c", 1, (int[]){2}, HEED_INIT_ONES, 0, 0, &c, &d), HEED_OK);
    b = NULL;
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    ck_assert_ptr_null(b); /* a forgotten slot is not written */
    ck_assert_float_eq(c[1], 1.0f);
    ck_assert_int_eq(heed_params_truncate(&p, 1), HEED_ERR_ARG); /* offsets are fixed now */
    ck_assert_int_eq(p.count, 2);
    heed_params_free(&p);
}
END_TEST

/* heed_seq_append refuses a layer of the wrong shape. It owns the layer,
 * whose parameters are registered: it keeps it (never run) until the
 * sequence is freed, so the allocation after the failure writes into live
 * memory (it freed the layer before: ASan heap-use-after-free). */
START_TEST(seq_keeps_a_rejected_layer_alive) {
    heed_params p = {0};
    heed_seq *s;
    heed_linear *fc;
    ck_assert_int_eq(heed_seq_new(&s, (int[3]){4, 1, 1}, "s"), HEED_OK);
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.out = 2}, (int[3]){3, 1, 1}, &p, "fc"),
                     HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &fc->base), HEED_ERR_SHAPE);
    ck_assert_msg(strstr(heed_last_error(), "fc fc takes (3, 1, 1)"), "%s", heed_last_error());
    ck_assert_int_eq(s->count, 0);
    ck_assert_int_eq(heed_layer_child_count(&s->base), 0);
    ck_assert_int_eq(s->base.out_c, 4);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    ck_assert_ptr_eq(fc->w, p.values);
    ck_assert_int_eq(heed_seq_append(s, NULL), HEED_ERR_ARG);
    /* the sequence still works */
    heed_linear *ok;
    heed_params q = {0};
    ck_assert_int_eq(heed_linear_new(&ok, &(heed_linear_cfg){.out = 2}, (int[3]){4, 1, 1}, &q, "ok"),
                     HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &ok->base), HEED_OK);
    ck_assert_int_eq(s->count, 1);
    ck_assert_int_eq(s->base.out_c, 2);
    heed_layer_free(&s->base);
    heed_params_free(&p);
    heed_params_free(&q);
}
END_TEST

/* heed_residual_new frees body and shortcut when it fails, their
 * parameters still registered; seq.h's recipe (truncate to the count
 * before they were built) leaves a store that allocates without writing
 * into the freed layers (ASan: heap-use-after-free otherwise). */
START_TEST(failed_residual_parameters_can_be_forgotten) {
    heed_params p = {0};
    heed_linear *first, *inner;
    ck_assert_int_eq(heed_linear_new(&first, &(heed_linear_cfg){.out = 3}, (int[3]){3, 1, 1}, &p, "first"),
                     HEED_OK);
    const int registered = p.count;
    heed_seq *body;
    ck_assert_int_eq(heed_seq_new(&body, (int[3]){3, 1, 1}, "body"), HEED_OK);
    ck_assert_int_eq(heed_linear_new(&inner, &(heed_linear_cfg){.out = 2}, (int[3]){3, 1, 1}, &p, "inner"),
                     HEED_OK);
    ck_assert_int_eq(heed_seq_append(body, &inner->base), HEED_OK);
    heed_residual *r;
    /* identity shortcut: (3, 1, 1) cannot be added to the body's (2, 1, 1) */
    ck_assert_int_eq(heed_residual_new(&r, body, NULL, "block"), HEED_ERR_SHAPE);
    ck_assert_int_gt(p.count, registered);
    ck_assert_int_eq(heed_params_truncate(&p, registered), HEED_OK);
    ck_assert_ptr_null(heed_params_find(&p, "inner.weight"));
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    ck_assert_ptr_eq(first->w, p.values);
    heed_layer_free(&first->base);
    heed_params_free(&p);
}
END_TEST

START_TEST(seq_and_residual_names_must_fit) {
    char name[64];
    memset(name, 'n', 48);
    name[48] = '\0';
    heed_seq *s = (heed_seq *)1, *body;
    ck_assert_int_eq(heed_seq_new(&s, (int[3]){2, 3, 3}, name), HEED_ERR_ARG);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(heed_last_error(), "at most 47"), "%s", heed_last_error());
    ck_assert_int_eq(heed_seq_new(&body, (int[3]){2, 3, 3}, "body"), HEED_OK);
    heed_residual *r = (heed_residual *)1;
    ck_assert_int_eq(heed_residual_new(&r, body, NULL, name), HEED_ERR_ARG); /* body freed */
    ck_assert_ptr_null(r);
    name[47] = '\0';
    ck_assert_int_eq(heed_seq_new(&s, (int[3]){2, 3, 3}, name), HEED_OK);
    ck_assert_str_eq(s->base.name, name);
    heed_layer_free(&s->base);
}
END_TEST

/* Every core layer refuses a name of 48 characters, which its name field
 * would cut (and with it the names of its parameters), and keeps one of 47
 * whole; nothing stays registered from a refused one. */
START_TEST(core_layers_refuse_names_that_do_not_fit) {
    const int in[3] = {2, 6, 6};
    for (int fits = 0; fits < 2; fits++) {
        char name[6][64]; /* one per layer: their parameters' names must differ */
        for (int i = 0; i < 6; i++) {
            memset(name[i], 'a' + i, 48);
            name[i][fits ? 47 : 48] = '\0';
        }
        heed_params p = {0};
        heed_conv2d *conv;
        heed_batchnorm *bn;
        heed_pool2d *pool;
        heed_global_pool *gap;
        heed_activation *act;
        heed_dropout *drop;
        heed_status st[6] = {
            heed_conv2d_new(&conv, &(heed_conv2d_cfg){.in_c = 2, .out_c = 3, .k = 3}, in, &p, name[0]),
            heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){.c = 2}, in, &p, name[1]),
            heed_pool2d_new(&pool, &(heed_pool2d_cfg){.kind = HEED_POOL_MAX, .k = 2}, in, &p, name[2]),
            heed_global_pool_new(&gap, HEED_POOL_AVG, in, name[3]),
            heed_activation_new(&act, &(heed_activation_cfg){.kind = HEED_ACT_RELU}, in, &p, name[4]),
            heed_dropout_new(&drop, &(heed_dropout_cfg){.p = 0.5f}, in, &p, name[5])};
        heed_layer *made[6] = {fits ? &conv->base : NULL, fits ? &bn->base : NULL, fits ? &pool->base : NULL,
                               fits ? &gap->base : NULL, fits ? &act->base : NULL, fits ? &drop->base : NULL};
        for (int i = 0; i < 6; i++) {
            ck_assert_msg(st[i] == (fits ? HEED_OK : HEED_ERR_ARG), "layer %d: %s", i, heed_last_error());
            if (fits) ck_assert_str_eq(made[i]->name, name[i]);
            heed_layer_free(made[i]);
        }
        if (!fits) ck_assert_msg(strstr(heed_last_error(), "at most 47 fit"), "%s", heed_last_error());
        if (!fits) ck_assert_int_eq(p.count, 0);
        heed_params_free(&p);
    }
}
END_TEST

Suite *heed_suite_params(void) {
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, slots_point_into_one_buffer_with_init);
    tcase_add_test(tc, same_seed_same_values);
    tcase_add_test(tc, copy_matching_takes_what_fits);
    tcase_add_test(tc, rng_moments_and_shuffle);
    tcase_add_test(tc, truncate_forgets_the_latest_entries);
    tcase_add_test(tc, seq_keeps_a_rejected_layer_alive);
    tcase_add_test(tc, failed_residual_parameters_can_be_forgotten);
    tcase_add_test(tc, seq_and_residual_names_must_fit);
    tcase_add_test(tc, core_layers_refuse_names_that_do_not_fit);
    suite_add_tcase(s, tc);
    return s;
}
