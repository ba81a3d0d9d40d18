/* check_schedule.c -- learning-rate schedules at chosen steps: warm-up,
 * step decay, cosine annealing (endpoints, midpoint, a quarter), parsing
 * and refused settings. Expected values are worked out from the formulas
 * of torch's StepLR and CosineAnnealingLR. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "schedule.h"
#include "testutil.h"

#define LR_EQ(s, step, want) ck_assert_float_eq_tol(heed_schedule_lr(s, step), (want), 1e-6f)

START_TEST(constant_with_linear_warmup) {
    heed_schedule s = {.kind = HEED_SCHED_CONSTANT, .base_lr = 0.4f, .warmup_steps = 4};
    ck_assert_int_eq(heed_schedule_check(&s), HEED_OK);
    LR_EQ(&s, 0, 0.1f); /* 0.4 * 1/4 */
    LR_EQ(&s, 1, 0.2f);
    LR_EQ(&s, 3, 0.4f); /* the last warm-up step reaches the base rate */
    LR_EQ(&s, 4, 0.4f);
    LR_EQ(&s, 1000000, 0.4f);
    LR_EQ(&s, -5, 0.1f); /* negative steps count as 0 */
    s.warmup_steps = 0;
    LR_EQ(&s, 0, 0.4f);
}
END_TEST

START_TEST(step_decay_counts_from_the_end_of_warmup) {
    heed_schedule s = {.kind = HEED_SCHED_STEP, .base_lr = 0.1f, .step_size = 10, .gamma = 0.5f};
    ck_assert_int_eq(heed_schedule_check(&s), HEED_OK);
    LR_EQ(&s, 0, 0.1f);
    LR_EQ(&s, 9, 0.1f);
    LR_EQ(&s, 10, 0.05f);
    LR_EQ(&s, 19, 0.05f);
    LR_EQ(&s, 25, 0.025f);
    s.warmup_steps = 5;
    LR_EQ(&s, 0, 0.02f);
    LR_EQ(&s, 14, 0.1f);
    LR_EQ(&s, 15, 0.05f);
    LR_EQ(&s, 35, 0.0125f);
}
END_TEST

START_TEST(cosine_endpoints_and_midpoint) {
    heed_schedule s = {.kind = HEED_SCHED_COSINE, .base_lr = 1.0f, .min_lr = 0.1f,
                       .total_steps = 110, .warmup_steps = 10};
    ck_assert_int_eq(heed_schedule_check(&s), HEED_OK);
    LR_EQ(&s, 0, 0.1f);   /* warm-up: 1 * 1/10 */
    LR_EQ(&s, 9, 1.0f);
    LR_EQ(&s, 10, 1.0f);  /* cos(0) = 1 */
    LR_EQ(&s, 60, 0.55f); /* halfway: cos(pi/2) = 0, (1 + 0.1) / 2 */
    /* A quarter: 0.1 + 0.9 (1 + cos(pi/4)) / 2 = 0.1 + 0.45 (1 + 0.70710678). */
    LR_EQ(&s, 35, 0.86819805f);
    LR_EQ(&s, 110, 0.1f); /* T steps after warm-up: the final rate */
    LR_EQ(&s, 500, 0.1f); /* and it stays there */
    /* Strictly decreasing after warm-up. */
    for (long i = 11; i <= 110; i++)
        ck_assert_float_lt(heed_schedule_lr(&s, i), heed_schedule_lr(&s, i - 1));
    heed_schedule plain = {.kind = HEED_SCHED_COSINE, .base_lr = 0.5f, .total_steps = 4};
    LR_EQ(&plain, 0, 0.5f);
    LR_EQ(&plain, 1, 0.25f * (1.0f + 0.70710678f));
    LR_EQ(&plain, 2, 0.25f);
    LR_EQ(&plain, 4, 0.0f);
}
END_TEST

START_TEST(names_parse) {
    heed_sched_kind k;
    ck_assert_int_eq(heed_schedule_parse("cosine", &k), HEED_OK);
    ck_assert_int_eq(k, HEED_SCHED_COSINE);
    ck_assert_int_eq(heed_schedule_parse("Step", &k), HEED_OK);
    ck_assert_int_eq(k, HEED_SCHED_STEP);
    ck_assert_int_eq(heed_schedule_parse("constant", &k), HEED_OK);
    ck_assert_int_eq(k, HEED_SCHED_CONSTANT);
    ck_assert_int_eq(heed_schedule_parse("linear", &k), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "linear"));
    ck_assert_int_eq(heed_schedule_parse(NULL, &k), HEED_ERR_ARG);
}
END_TEST

START_TEST(bad_settings_are_refused) {
    struct { heed_schedule s; const char *says; } bad[] = {
        {{.kind = HEED_SCHED_CONSTANT, .base_lr = -1}, "base learning rate"},
        {{.kind = HEED_SCHED_CONSTANT, .base_lr = INFINITY}, "base learning rate"},
        {{.kind = HEED_SCHED_CONSTANT, .base_lr = 1, .warmup_steps = -1}, "warm-up"},
        {{.kind = HEED_SCHED_STEP, .base_lr = 1, .step_size = 0, .gamma = 0.5f}, "step size"},
        {{.kind = HEED_SCHED_STEP, .base_lr = 1, .step_size = 3, .gamma = 0}, "gamma"},
        {{.kind = HEED_SCHED_STEP, .base_lr = 1, .step_size = 3, .gamma = 1.5f}, "gamma"},
        {{.kind = HEED_SCHED_COSINE, .base_lr = 1, .total_steps = 10, .warmup_steps = 10}, "total"},
        {{.kind = HEED_SCHED_COSINE, .base_lr = 1, .total_steps = 10, .min_lr = 2}, "final rate"},
        {{.kind = (heed_sched_kind)9, .base_lr = 1}, "kind"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(heed_schedule_check(&bad[i].s), HEED_ERR_ARG);
        ck_assert_msg(strstr(heed_last_error(), bad[i].says), "case %zu: '%s'", i,
                      heed_last_error());
        /* Still a defined, finite-or-base value: never a crash. */
        (void)heed_schedule_lr(&bad[i].s, 3);
    }
    heed_schedule s = {.kind = HEED_SCHED_STEP, .base_lr = 0.3f, .step_size = 0, .gamma = 0.1f};
    LR_EQ(&s, 100, 0.3f); /* no step size: no decay */
}
END_TEST

/* A cosine schedule whose total_steps lies far below its warm-up, which
 * heed_schedule_check refuses, still gives the documented value (T < 1
 * counts as T = 1: min_lr from one step past the warm-up on). T was
 * total_steps - W, which overflowed (undefined) and, wrapped, gave a
 * schedule of LONG_MAX steps that never left base_lr. */
START_TEST(cosine_far_below_warmup_still_uses_one_step) {
    heed_schedule s = {.kind = HEED_SCHED_COSINE, .base_lr = 0.1f, .min_lr = 0.01f,
                       .total_steps = LONG_MIN, .warmup_steps = 1};
    ck_assert_int_eq(heed_schedule_check(&s), HEED_ERR_ARG);
    LR_EQ(&s, 1, 0.1f);
    LR_EQ(&s, 5, 0.01f);
}
END_TEST

Suite *heed_suite_schedule(void) {
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, constant_with_linear_warmup);
    tcase_add_test(tc, step_decay_counts_from_the_end_of_warmup);
    tcase_add_test(tc, cosine_endpoints_and_midpoint);
    tcase_add_test(tc, names_parse);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, cosine_far_below_warmup_still_uses_one_step);
    suite_add_tcase(s, tc);
    return s;
}
