/* check_balance.c -- learnt thread speeds (balance_impl.h): shares worked
 * out by hand from the moving average's formula, convergence to the
 * cores' true speeds, the timings it must ignore or bound, and cuts in
 * whole steps. */
#include "balance_impl.h"
#include "testutil.h"

/* Seconds each thread of a team would take on its share, at these true
 * speeds (work per second). */
static void time_shares(int T, const double *cut, const double *truth, double *seconds) {
    for (int t = 0; t < T; t++) seconds[t] = (cut[t + 1] - cut[t]) / truth[t] * 1e-3;
}

START_TEST(untimed_threads_share_equally) {
    float speed[3] = {0};
    double cut[4];
    heed_balance_cuts(speed, 3, cut);
    ck_assert_double_eq_tol(cut[0], 0.0, 1e-12);
    ck_assert_double_eq_tol(cut[1], 1.0 / 3, 1e-12);
    ck_assert_double_eq_tol(cut[2], 2.0 / 3, 1e-12);
    ck_assert_double_eq_tol(cut[3], 1.0, 1e-12);
}
END_TEST

START_TEST(one_timing_moves_the_cut_by_a_quarter_of_the_way) {
    /* Equal shares, thread 1 twice as slow: rates 2 : 1, relative to their
     * mean 4/3 and 2/3; speeds 0.75 * 1 + 0.25 * rate: 13/12 and 11/12. */
    float speed[2] = {0};
    double cut[3], seconds[2];
    heed_balance_cuts(speed, 2, cut);
    time_shares(2, cut, (double[]){2.0, 1.0}, seconds);
    heed_balance_note(speed, 2, cut, seconds);
    ck_assert_float_eq_tol(speed[0], 13.0f / 12, 1e-6f);
    ck_assert_float_eq_tol(speed[1], 11.0f / 12, 1e-6f);
    heed_balance_cuts(speed, 2, cut);
    ck_assert_double_eq_tol(cut[1], 13.0 / 24, 1e-6);
}
END_TEST

START_TEST(shares_converge_to_the_true_speeds) {
    /* Thread 1 at 0.6 and thread 2 at 1.4 the speed of thread 0: each
     * share ends up taking the same time. */
    float speed[3] = {0};
    const double truth[3] = {1.0, 0.6, 1.4};
    double cut[4], seconds[3];
    for (int i = 0; i < 80; i++) {
        heed_balance_cuts(speed, 3, cut);
        time_shares(3, cut, truth, seconds);
        heed_balance_note(speed, 3, cut, seconds);
    }
    heed_balance_cuts(speed, 3, cut);
    ck_assert_double_eq_tol(cut[1], 1.0 / 3.0, 1e-4);
    ck_assert_double_eq_tol(cut[2], 1.6 / 3.0, 1e-4);
}
END_TEST

START_TEST(short_timings_are_ignored_and_speeds_bounded) {
    float speed[2] = {0};
    double cut[3] = {0, 0.5, 1};
    /* Under 20 us a share's time is mostly its start: nothing learnt. */
    heed_balance_note(speed, 2, cut, (double[]){5e-6, 15e-6});
    ck_assert_float_eq(speed[0], 0.0f);
    ck_assert_float_eq(speed[1], 0.0f);
    /* A thread a hundred times slower (preempted) still keeps a share:
     * speeds stay within a factor 2 of the mean. */
    for (int i = 0; i < 50; i++) {
        heed_balance_cuts(speed, 2, cut);
        double seconds[2];
        time_shares(2, cut, (double[]){1.0, 0.01}, seconds);
        heed_balance_note(speed, 2, cut, seconds);
    }
    ck_assert_float_le(speed[0], 2.0f);
    ck_assert_float_ge(speed[1], 0.5f);
    heed_balance_cuts(speed, 2, cut);
    ck_assert_double_le(cut[1], 0.8 + 1e-9);
    /* ...the largest share there is, for which work buffers are sized:
     * 2 / (2 + 1/2) of two threads, 2 / (2 + 2/2) of three. */
    ck_assert_double_eq_tol(heed_balance_max_share(2), 0.8, 1e-12);
    ck_assert_double_eq_tol(heed_balance_max_share(3), 2.0 / 3, 1e-12);
    ck_assert_double_eq_tol(heed_balance_max_share(1), 1.0, 1e-12);
    float three[3] = {0};
    for (int i = 0; i < 50; i++) {
        double c3[4], sec[3];
        heed_balance_cuts(three, 3, c3);
        time_shares(3, c3, (double[]){100.0, 1.0, 1.0}, sec);
        heed_balance_note(three, 3, c3, sec);
    }
    double c3[4];
    heed_balance_cuts(three, 3, c3);
    ck_assert_double_le(c3[1], heed_balance_max_share(3) + 1e-9);
    /* A team of one has nothing to balance. */
    float one[1] = {0};
    heed_balance_note(one, 1, (double[]){0, 1}, (double[]){1.0});
    ck_assert_float_eq(one[0], 0.0f);
}
END_TEST

START_TEST(splits_land_on_whole_steps) {
    /* Speeds 3 : 1 over 64 output channels in row tiles of 8: 48 + 16. */
    float speed[2] = {3.0f, 1.0f};
    int at[3];
    double cut[3];
    heed_balance_split(speed, 2, 64, 8, at, cut);
    ck_assert_int_eq(at[0], 0);
    ck_assert_int_eq(at[1], 48);
    ck_assert_int_eq(at[2], 64);
    ck_assert_double_eq_tol(cut[1], 0.75, 1e-12);
    /* 1 : 2 over 10 rows: 3.33 rounds to 3, and the share as made is 0.3. */
    speed[0] = 1.0f, speed[1] = 2.0f;
    heed_balance_split(speed, 2, 10, 1, at, cut);
    ck_assert_int_eq(at[1], 3);
    ck_assert_int_eq(at[2], 10);
    ck_assert_double_eq_tol(cut[1], 0.3, 1e-12);
    /* Buffers are sized by heed_balance_most_units: 112 rows, two threads,
     * at most 0.8 of them (89.6) plus rounding: 91 in one piece, 46 in two,
     * and never less than a split at the extreme speeds gives a piece. */
    ck_assert_int_eq(heed_balance_most_units(2, 112, 1), 91);
    ck_assert_int_eq(heed_balance_most_units(2, 112, 2), 46);
    ck_assert_int_eq(heed_balance_most_units(2, 3, 1), 3);
    speed[0] = 2.0f, speed[1] = 0.5f;
    for (int total = 1; total < 300; total++)
        for (int pieces = 1; pieces <= 4; pieces++) {
            heed_balance_split(speed, 2, total, 1, at, cut);
            const int piece = (at[1] - at[0] + pieces - 1) / pieces;
            ck_assert_int_le(piece, heed_balance_most_units(2, total, pieces));
        }
    /* A total that is not a whole number of steps: the last cut is the total. */
    speed[0] = speed[1] = 1.0f;
    heed_balance_split(speed, 2, 20, 8, at, cut);
    ck_assert_int_eq(at[1], 8);
    ck_assert_int_eq(at[2], 20);
}
END_TEST

Suite *heed_suite_balance(void) {
    Suite *s = suite_create("balance");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, untimed_threads_share_equally);
    tcase_add_test(tc, one_timing_moves_the_cut_by_a_quarter_of_the_way);
    tcase_add_test(tc, shares_converge_to_the_true_speeds);
    tcase_add_test(tc, short_timings_are_ignored_and_speeds_bounded);
    tcase_add_test(tc, splits_land_on_whole_steps);
    suite_add_tcase(s, tc);
    return s;
}
