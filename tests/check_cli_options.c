/* check_cli_options.c -- the `heed` command's option parsing (apps/cli.c):
 * values an option's type cannot hold, choices matched whole, flags without
 * values, and the arguments that start with a dash. The binary is
 * $HEED_BIN (the Makefile sets it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "model.h"
#include "testutil.h"

static char dir[256];

/* Runs `heed ARGS` with stdout and stderr captured; returns the exit code. */
static int heed(const char *args, char *out, size_t outsize) {
    return tu_run_heed(dir, NULL, args, out, outsize, NULL, 0);
}

static void setup(void) {
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "cli-options"), 0);
}

static void teardown(void) { tu_remove_dir(dir); }

/* Each command line is a usage error (exit 2) that names the option and
 * the value: an int option beyond int's range (2^31, and 2^32 + 1, which
 * a cast to int would read as 1), a float beyond float's (strtof's
 * overflow), a choice given by a prefix of one, a flag given a value, an
 * option missing its value. */
static const struct {
    const char *args, *expect;
} usage_errors[] = {
    {"train --epochs 2147483648",
     "heed train: --epochs wants a whole number from -2147483647 to 2147483647, got '2147483648'"},
    {"train --epochs 4294967297",
     "heed train: --epochs wants a whole number from -2147483647 to 2147483647, got '4294967297'"},
    {"train --epochs -2147483649",
     "heed train: --epochs wants a whole number from -2147483647 to 2147483647, got '-2147483649'"},
    {"train --lr 1e999",
     "heed train: --lr wants a number a float holds (1e-38 to 3.4e38 in size, or 0), got '1e999'"},
    {"train --lr 1e-50",
     "heed train: --lr wants a number a float holds (1e-38 to 3.4e38 in size, or 0), got '1e-50'"},
    {"train --epochs 2x", "heed train: --epochs wants a whole number, got '2x'"},
    {"train --lr 0.1.2", "heed train: --lr wants a number, got '0.1.2'"},
    {"train --optimizer sg", "heed train: --optimizer must be one of sgd|adamw, got 'sg'"},
    {"train --optimizer sgdx", "heed train: --optimizer must be one of sgd|adamw, got 'sgdx'"},
    {"info --json=1 nets/fmnist-se.net", "heed info: --json takes no value"},
    {"train --epochs", "heed train: --epochs needs a value"},
};

START_TEST(options_refuse_what_they_cannot_hold) {
    char out[4096];
    ck_assert_int_eq(heed(usage_errors[_i].args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, usage_errors[_i].expect), "%s: got '%s', want '%s'", usage_errors[_i].args,
                  out, usage_errors[_i].expect);
}
END_TEST

/* A lone "-" is an argument, not an option; after "--" every argument is
 * one, even one that starts with a dash (a file named -x.net). */
START_TEST(dash_arguments_are_arguments) {
    char out[1 << 14], cmd[600];
    ck_assert_int_eq(heed("info -", out, sizeof out), 1);
    ck_assert_msg(strstr(out, "heed info: cannot open -: No such file or directory"), "%s", out);
    /* a file that is neither kind is named so, not parsed as a network */
    ck_assert_int_eq(heed("info images/test-00000-Ankle_boot.png", out, sizeof out), 1);
    ck_assert_str_eq(out, "heed info: images/test-00000-Ankle_boot.png is neither a network file (text) nor a "
                          "model file (which starts with HEEDMODL)\n");
    snprintf(cmd, sizeof cmd, "cp nets/fmnist-se.net %s/-x.net", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "cd %s &&", dir);
    ck_assert_int_eq(tu_run_heed(dir, cmd, "info -- -x.net", out, sizeof out, NULL, 0), 0);
    ck_assert_msg(strstr(out, "-x.net") && strstr(out, "fc"), "%s", out);
    ck_assert_int_eq(tu_run_heed(dir, cmd, "info -x.net", out, sizeof out, NULL, 0), 2);
    ck_assert_msg(strstr(out, "unknown option '-x.net'"), "%s", out);
}
END_TEST

/* An empty output folder name is refused as such (the folder maker read
 * the byte after the name's end, left uninitialised: valgrind's
 * "conditional jump depends on uninitialised value"). */
START_TEST(empty_folder_name_is_refused) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    char out[4096];
    ck_assert_int_eq(heed("data export --count 1 ''", out, sizeof out), 1);
    ck_assert_msg(strstr(out, "heed data: cannot create directory '': the name is empty"), "%s", out);
}
END_TEST

/* A command line over the characters a model keeps as its recipe (511
 * then, 2047 now) was recorded cut, and --resume read the cut recipe back
 * as other options: a run of --epochs 2 --limit 64 went on for the
 * default 10 epochs on all 60,000 items. Refused before any work now, on a first run and on a
 * --resume whose options would make the recorded recipe too long. */
START_TEST(recipes_too_long_to_record_are_refused) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 14];
    char net[3000], args[4096], path[1100];
    snprintf(path, sizeof path, "%s/n.net", dir);
    tu_write_text(path, "input 1 28 28\nfc out=10\n");
    /* the same file, by a name of some 2,040 characters */
    int n = snprintf(net, sizeof net, "%s", dir);
    for (int i = 0; i < 1000; i++) n += snprintf(net + n, sizeof net - n, "/.");
    snprintf(net + n, sizeof net - n, "/n.net");
    snprintf(args, sizeof args, "train --net %s --out %s/m.heed --epochs 2 --limit 64 --test-limit 16 --threads 1",
             net, dir);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_str_eq(out, "heed train: the command line is over the 2047 characters a model records as its "
                          "recipe (which --resume reads back): give shorter paths\n");
    snprintf(path, sizeof path, "%s/m.heed", dir);
    ck_assert_int_eq(access(path, F_OK), -1);
    /* a run whose recipe fits, then a --resume that would take it past */
    snprintf(args, sizeof args, "train --net %s/n.net --out %s/m.heed --epochs 2 --stop-after 1 --limit 64 "
             "--test-limit 16 --threads 1", dir, dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    /* a command line of 2040 characters: it fits, the old recipe and it do not */
    n = snprintf(net, sizeof net, "%s", HEED_FMNIST_DIR);
    const int line = (int)strlen("heed train --resume /m.heed.ckpt --data-dir ") + (int)strlen(dir) + n;
    for (int i = 0; i < (2040 - line) / 2; i++) n += snprintf(net + n, sizeof net - n, "/.");
    snprintf(args, sizeof args, "train --resume %s/m.heed.ckpt --data-dir %s", dir, net);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "m.heed.ckpt: its recipe and this command's options are over the 2047 characters"),
                  "%s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

/* A recipe is read back word by word into a fixed table: one of 64 words
 * (of the 2047 characters a recipe may hold) kept the first 64 and dropped
 * the rest without a word, so --resume went on with the options before
 * them (here --epochs 2 where the run said --epochs 3 last). Every word of
 * a recipe that fits is read back now. */
START_TEST(recipes_of_many_words_read_back_whole) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 14];
    char args[4096], path[1100];
    snprintf(path, sizeof path, "%s/n.net", dir);
    tu_write_text(path, "input 1 28 28\nfc out=10\n");
    int n = snprintf(args, sizeof args, "train --net %s/n.net --out %s/m.heed --epochs 2 --limit 64 "
                     "--test-limit 16 --threads 1 --stop-after 1", dir, dir);
    for (int i = 0; i < 60; i++) n += snprintf(args + n, sizeof args - n, " --seed=1");
    snprintf(args + n, sizeof args - n, " --epochs 3");
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "train --resume %s/m.heed.ckpt", dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    heed_model *m;
    snprintf(path, sizeof path, "%s/m.heed", dir);
    ck_assert_int_eq(heed_model_load(&m, path), HEED_OK);
    ck_assert_msg(m->meta.epochs == 3, "resumed for %d epochs, not 3: %s", m->meta.epochs, out);
    heed_model_free(m);
}
END_TEST

Suite *heed_suite_cli_options(void) {
    Suite *s = suite_create("cli_options");
    TCase *tc = tcase_create("options");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, options_refuse_what_they_cannot_hold, 0, sizeof usage_errors / sizeof usage_errors[0]);
    tcase_add_test(tc, dash_arguments_are_arguments);
    tcase_add_test(tc, empty_folder_name_is_refused);
    tcase_add_test(tc, recipes_too_long_to_record_are_refused);
    tcase_add_test(tc, recipes_of_many_words_read_back_whole);
    suite_add_tcase(s, tc);
    return s;
}
