/* check_bench.c -- `heed bench` in its short smoke mode: one benchmark case
 * of each kind with a tiny batch and a fraction of a second, checking that
 * every JSON line is valid JSON with exactly peer_torch.py's fields (and
 * heed's extras) of the right types, that the figures agree with each
 * other, that --layers' rows partition the network's time, and that bad
 * names and options fail with one clear line. Timings themselves are not
 * checked (the machine is shared). The binary is $HEED_BIN. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char dir[256];

static int heed_run(const char *pre, const char *args, char *out, size_t outsize, char *err,
                    size_t errsize) {
    return tu_run_heed(dir, pre, args, out, outsize, err, errsize);
}

static int heed(const char *args, char *out, size_t outsize, char *err, size_t errsize) {
    return heed_run(NULL, args, out, outsize, err, errsize);
}

static void setup(void) {
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "bench"), 0);
}

static void teardown(void) { tu_remove_dir(dir); }

/* ---- a strict parser for flat JSON objects (string, number, bool) ---- */

enum { J_STR, J_NUM, J_BOOL };

typedef struct jfield {
    char key[32];
    int type;
    char str[128];
    double num; /* J_NUM; J_BOOL: 0 or 1 */
    int integral; /* J_NUM written without fraction or exponent */
} jfield;

typedef struct jobj {
    jfield f[40];
    int n;
} jobj;

static const char *skip_ws(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* A JSON string at s (after its opening quote) into out; the position
 * after the closing quote, or NULL. */
static const char *parse_str(const char *s, char *out, size_t size) {
    size_t n = 0;
    for (; *s && *s != '"'; s++) {
        char c = *s;
        if ((unsigned char)c < 0x20) return NULL;
        if (c == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!s[i] || !strchr("0123456789abcdefABCDEF", s[i])) return NULL;
                s += 4;
                c = '?';
            } else if (*s && strchr("\"\\/bfnrt", *s)) {
                c = *s;
            } else {
                return NULL;
            }
        }
        if (n + 1 < size) out[n++] = c;
    }
    out[n] = '\0';
    return *s == '"' ? s + 1 : NULL;
}

/* A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *parse_num(const char *s, double *v, int *integral) {
    const char *p = s;
    *integral = 1;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else
        return NULL;
    if (*p == '.') {
        *integral = 0;
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        *integral = 0;
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    *v = strtod(s, NULL);
    return p;
}

/* Parses one line holding one flat object; 1 on success. */
static int parse_line(const char *s, jobj *o) {
    o->n = 0;
    s = skip_ws(s);
    if (*s++ != '{') return 0;
    s = skip_ws(s);
    if (*s == '}') return *skip_ws(s + 1) == '\0';
    for (;;) {
        if (o->n == (int)(sizeof o->f / sizeof o->f[0])) return 0;
        jfield *f = &o->f[o->n];
        memset(f, 0, sizeof *f);
        s = skip_ws(s);
        if (*s++ != '"' || !(s = parse_str(s, f->key, sizeof f->key))) return 0;
        for (int i = 0; i < o->n; i++)
            if (!strcmp(o->f[i].key, f->key)) return 0; /* duplicate key */
        s = skip_ws(s);
        if (*s++ != ':') return 0;
        s = skip_ws(s);
        if (*s == '"') {
            f->type = J_STR;
            if (!(s = parse_str(s + 1, f->str, sizeof f->str))) return 0;
        } else if (!strncmp(s, "true", 4) || !strncmp(s, "false", 5)) {
            f->type = J_BOOL;
            f->num = *s == 't';
            s += *s == 't' ? 4 : 5;
        } else {
            f->type = J_NUM;
            if (!(s = parse_num(s, &f->num, &f->integral))) return 0;
        }
        o->n++;
        s = skip_ws(s);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s != '}') return 0;
        return *skip_ws(s + 1) == '\0';
    }
}

static const jfield *get(const jobj *o, const char *key, int type) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->f[i].key, key)) {
            ck_assert_msg(o->f[i].type == type, "field %s has the wrong type", key);
            return &o->f[i];
        }
    ck_abort_msg("field %s missing", key);
    return NULL;
}

/* Splits text into lines (in place); returns their count. */
static int split_lines(char *text, char **lines, int max) {
    int n = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        ck_assert_msg(nl != NULL, "output does not end with a newline: %s", p);
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

/* The fields every case prints: peer_torch.py's (but "torch") plus heed's. */
static void check_case(const char *line, const char *workload, const char *mode, int batch,
                       int threads) {
    jobj o;
    ck_assert_msg(parse_line(line, &o), "not a flat JSON object: %s", line);
    static const char *keys[] = {"workload", "mode", "batch", "threads", "images_per_s",
                                 "ms_per_batch", "ms_min", "ms_max", "iters", "heed", "kernel",
                                 "peak_rss_mb", "malloc"};
    ck_assert_msg(o.n == (int)(sizeof keys / sizeof keys[0]), "%d fields: %s", o.n, line);
    ck_assert_str_eq(get(&o, "workload", J_STR)->str, workload);
    ck_assert_str_eq(get(&o, "mode", J_STR)->str, mode);
    const jfield *b = get(&o, "batch", J_NUM), *t = get(&o, "threads", J_NUM), *it = get(&o, "iters", J_NUM);
    ck_assert(b->integral && t->integral && it->integral);
    ck_assert_int_eq((int)b->num, batch);
    ck_assert_int_eq((int)t->num, threads);
    ck_assert_int_ge((int)it->num, 5);
    double ips = get(&o, "images_per_s", J_NUM)->num, ms = get(&o, "ms_per_batch", J_NUM)->num;
    double lo = get(&o, "ms_min", J_NUM)->num, hi = get(&o, "ms_max", J_NUM)->num;
    ck_assert(ips > 0 && ms > 0 && lo <= ms && ms <= hi);
    /* images_per_s = batch / median, each rounded (2 and 4 decimals) */
    ck_assert_msg(fabs(ips - batch * 1e3 / ms) <= 1e-3 * ips + 0.01, "%g images/s vs %g ms", ips, ms);
    ck_assert(get(&o, "peak_rss_mb", J_NUM)->num > 1.0);
    ck_assert(strlen(get(&o, "heed", J_STR)->str) > 0);
    ck_assert(strlen(get(&o, "kernel", J_STR)->str) > 0);
    ck_assert_str_eq(get(&o, "malloc", J_STR)->str, "67108864");
}

START_TEST(train_case_prints_one_json_line) {
    static char out[1 << 16], err[1 << 16];
    int rc = heed("bench --workload fmnist-cbam --mode train --batch 4 --seconds 0.05 --json", out,
                  sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    char *lines[4];
    ck_assert_int_eq(split_lines(out, lines, 4), 1);
    check_case(lines[0], "fmnist-cbam", "train", 4, 1);
}
END_TEST

/* The benchmark trains on one fixed batch for as many steps as its time
 * allows: RAM's training must stay finite there, as PyTorch's does (with
 * the baseline's gradient kept out of the core it diverged in about 30
 * steps at batch 1, and the bench stopped on a non-finite location). */
START_TEST(ram_training_stays_finite_on_one_batch) {
    static char out[1 << 16], err[1 << 16];
    for (int batch = 1; batch <= 8; batch *= 8) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "bench --workload ram --mode train --batch %d --seconds 0.3 --json", batch);
        int rc = heed(cmd, out, sizeof out, err, sizeof err);
        ck_assert_msg(rc == 0, "batch %d: %s", batch, err);
        char *lines[4];
        ck_assert_int_eq(split_lines(out, lines, 4), 1);
        check_case(lines[0], "ram", "train", batch, 1);
    }
}
END_TEST

START_TEST(net_file_infer_threads_and_human_line) {
    static char out[1 << 16], err[1 << 16];
    int rc = heed("bench --net nets/fmnist-se.net --batch 2 --threads 2 --seconds 0.02 --json", out,
                  sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    char *lines[4];
    ck_assert_int_eq(split_lines(out, lines, 4), 1);
#ifdef _OPENMP
    check_case(lines[0], "fmnist-se", "infer", 2, 2);
#else
    /* built without OpenMP (make OPENMP=0), as this test is: one thread, said */
    check_case(lines[0], "fmnist-se", "infer", 2, 1);
    ck_assert_str_eq(err, "heed bench: built without OpenMP (make OPENMP=0): one thread, not 2\n");
#endif
    /* the network found beside the executable, from another folder */
    rc = heed_run("cd / &&", "bench --workload fmnist-plain --seconds 0.02", out, sizeof out, err,
                  sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "fmnist-plain infer batch 1, 1 thread: "));
    ck_assert_ptr_nonnull(strstr(out, " images/s, "));
}
END_TEST

START_TEST(matrix_subset_runs_each_case_in_a_process) {
    static char out[1 << 16], err[1 << 16];
    /* ram's two cases, the cheapest of the matrix */
    int rc = heed("bench --all --filter ram --seconds 0.01 --json", out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    char *lines[8];
    ck_assert_int_eq(split_lines(out, lines, 8), 2);
    check_case(lines[0], "ram", "train", 64, 1);
    check_case(lines[1], "ram", "infer", 64, 1);
    ck_assert_int_eq(heed("bench --all --filter nothing", out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "matches no workload"));
}
END_TEST

START_TEST(layers_partition_the_forward) {
    static char out[1 << 16], err[1 << 16];
    int rc = heed("bench --workload fmnist-cbam --layers --mode train --batch 2 --seconds 0.05 "
                  "--peak-gflops 100 --json",
                  out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    char *lines[128];
    int n = split_lines(out, lines, 128);
    ck_assert_int_ge(n, 10);
    double sum_fwd = 0, sum_share = 0;
    int saw_conv = 0, saw_att = 0;
    for (int i = 0; i < n; i++) {
        jobj o;
        ck_assert_msg(parse_line(lines[i], &o), "not a flat JSON object: %s", lines[i]);
        ck_assert_str_eq(get(&o, "workload", J_STR)->str, "fmnist-cbam");
        ck_assert_str_eq(get(&o, "mode", J_STR)->str, "train");
        ck_assert_int_eq((int)get(&o, "batch", J_NUM)->num, 2);
        const char *layer = get(&o, "layer", J_STR)->str, *type = get(&o, "type", J_STR)->str;
        double fwd = get(&o, "fwd_ms", J_NUM)->num, bwd = get(&o, "bwd_ms", J_NUM)->num;
        double gflop = get(&o, "gflop", J_NUM)->num, gflops = get(&o, "gflops", J_NUM)->num;
        double pct = get(&o, "peak_pct", J_NUM)->num, share = get(&o, "share", J_NUM)->num;
        int own = (int)get(&o, "own", J_BOOL)->num;
        ck_assert(get(&o, "calls", J_NUM)->num >= 5);
        ck_assert(fwd >= 0 && bwd >= 0 && share >= 0 && share <= 1.0001);
        ck_assert_msg(fabs(pct - gflops) <= 0.01 + 1e-3 * gflops, "%% of a 100 GFLOP/s peak");
        if (fwd >= 0.02 && gflop > 0)
            ck_assert_msg(fabs(gflops - gflop / (fwd * 1e-3)) <= 0.02 * gflops + 0.01, "%s: %g GFLOP/s",
                          layer, gflops);
        if (i == n - 1) {
            ck_assert_str_eq(layer, "(total)");
            ck_assert(bwd > 0);
            ck_assert(get(&o, "step_ms", J_NUM)->num > 0);
            ck_assert_double_eq_tol(get(&o, "peak_gflops", J_NUM)->num, 100.0, 1e-9);
            /* the rows are disjoint parts of the whole forward */
            ck_assert_msg(sum_fwd <= fwd * 1.001 + 1e-3 * n, "rows %g ms, whole %g ms", sum_fwd, fwd);
            ck_assert_msg(sum_share <= 1.0 + 1e-3 * n, "shares add to %g", sum_share);
            /* 2 x multiply-adds of fmnist's convolutions and fc layers alone, batch 2 */
            double conv = 2.0 * (32 * 28 * 28 * 9 * (1 + 32) + 64 * 14 * 14 * 9 * (32 + 64) +
                                 28 * 28 * 2 * 49 + 14 * 14 * 2 * 49) +
                          2.0 * (3136 * 128 + 128 * 10);
            ck_assert(gflop > 2 * conv / 1e9 && gflop < 2 * conv / 1e9 * 1.2);
            continue;
        }
        ck_assert_str_ne(layer, "(total)");
        sum_fwd += fwd;
        sum_share += share;
        if (!strcmp(layer, "stage1.conv2")) {
            saw_conv = 1;
            ck_assert_str_eq(type, "conv");
            ck_assert(!own && gflops > 0 && bwd > 0);
            ck_assert_double_eq_tol(gflop, 2.0 * 32 * 28 * 28 * 32 * 9 * 2 / 1e9, 1e-6);
        }
        if (!strcmp(layer, "stage2.att")) {
            saw_att = 1;
            ck_assert_str_eq(type, "cbam");
            ck_assert(own);
        }
    }
    ck_assert(saw_conv && saw_att);

    rc = heed("bench --workload fmnist-se --layers --seconds 0.02 --peak-gflops 50", out, sizeof out,
              err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "stage2.conv2 "));
    ck_assert_ptr_nonnull(strstr(out, "stage1.att (own)"));
    ck_assert_ptr_nonnull(strstr(out, "total (whole network)"));
}
END_TEST

START_TEST(bad_names_and_options_fail_clearly) {
    static char out[1 << 16], err[1 << 16];
    ck_assert_int_eq(heed("bench --workload nosuch --seconds 0.01", out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "heed bench: unknown workload 'nosuch'"));
    ck_assert_ptr_nonnull(strstr(err, "fmnist-cbam"));
    ck_assert_ptr_eq(strchr(err, '\n'), err + strlen(err) - 1); /* one line */
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(heed("bench --workload ../nets/fmnist-se", out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown workload"));
    ck_assert_int_eq(heed("bench --workload fmnist-se --mode fly", out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "--mode must be one of infer|train"));
    ck_assert_int_eq(heed("bench --workload fmnist-se --batch 0", out, sizeof out, err, sizeof err), 2);
    ck_assert_int_eq(heed("bench --workload fmnist-se --seed -1", out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "--seed must be 0 or more, not -1"), "%s", err);
    ck_assert_int_eq(heed("bench --workload fmnist-se --seconds 0", out, sizeof out, err, sizeof err), 2);
    ck_assert_int_eq(heed("bench --json", out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "give one of --workload NAME, --net FILE or --all"));
    ck_assert_int_eq(heed("bench --json gemm 8 8 8", out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "gemm comes first, its options after: heed bench gemm M N K"), "%s", err);
    ck_assert_int_eq(heed("bench --all --layers", out, sizeof out, err, sizeof err), 2);
    ck_assert_int_eq(heed("bench --net /nonexistent/x.net", out, sizeof out, err, sizeof err), 1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.net"));
    ck_assert_int_eq(heed("bench --workload fmnist-se --nets /nonexistent", out, sizeof out, err, sizeof err), 1);
    ck_assert_ptr_nonnull(strstr(err, "no fmnist-se.net in /nonexistent"));
    ck_assert_int_eq(heed("bench frobnicate", out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown mode 'frobnicate'"));
    /* numbers that parse but cannot be meant ("inf" ran until killed, a
     * peak timed over 1e-30 s came out 0), and options the run would not
     * read (they were dropped in silence); the matrix's header not printed */
    static const char *const refused[][2] = {
        {"bench --workload fmnist-se --seconds inf", "--seconds must be more than 0 and at most 3600, not inf"},
        {"bench --workload fmnist-se --seconds 1e30", "--seconds must be more than 0 and at most 3600"},
        {"bench gemm 8 8 8 --seconds inf", "--seconds must be more than 0 and at most 3600"},
        {"bench --peak --seconds 1e-30", "--seconds must be 0.001 .. 3600"},
        {"bench --workload fmnist-se --layers --peak-gflops inf", "--peak-gflops must be a positive number"},
        {"bench --workload fmnist-se --peak-gflops 100", "--peak-gflops goes with --layers"},
        {"bench --all --batch 8", "--mode and --batch are not used with --all"},
        {"bench --all --mode train", "--mode and --batch are not used with --all"},
        {"bench --net x.net --nets nets", "--nets goes with --workload NAME"},
        {"bench --all --filter zzz", "--filter 'zzz' matches no workload"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ck_assert_msg(heed(refused[i][0], out, sizeof out, err, sizeof err) == 2, "%s: %s", refused[i][0], err);
        ck_assert_msg(strstr(err, refused[i][1]), "%s: %s", refused[i][0], err);
        ck_assert_msg(!strcmp(out, ""), "%s: %s", refused[i][0], out);
    }
    /* training needs class scores: said before any step (it failed inside
     * the loss, "logits (1, 4, 8, 8), expected (N, K, 1, 1)") */
    char net[600], cmd[700];
    snprintf(net, sizeof net, "%s/maps.net", dir);
    tu_write_text(net, "input 1 8 8\nconv out=4 k=3 pad=1\n");
    snprintf(cmd, sizeof cmd, "bench --net '%s' --mode train --seconds 0.01", net);
    ck_assert_int_eq(heed(cmd, out, sizeof out, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "maps.net ends in (4, 8, 8), not class scores (C, 1, 1): --mode train needs a "
                              "classifier (end it with fc)"), "%s", err);
    ck_assert_int_eq(heed("bench --help", out, sizeof out, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(out, "heed bench gemm M N K"));
    ck_assert_ptr_nonnull(strstr(out, "--workload NAME"));
}
END_TEST

START_TEST(gemm_and_peak_modes_still_work) {
    static char out[1 << 16], err[1 << 16];
    jobj o;
    ck_assert_int_eq(heed("bench gemm 8 16 24 --seconds 0.01 --threads 1 --json", out, sizeof out, err, sizeof err), 0);
    out[strcspn(out, "\n")] = '\0';
    ck_assert_msg(parse_line(out, &o), "%s", out);
    ck_assert_int_eq((int)get(&o, "K", J_NUM)->num, 24);
    ck_assert(get(&o, "gflops", J_NUM)->num > 0);
    ck_assert_int_eq(heed("bench --peak --seconds 0.01 --trials 1 --json", out, sizeof out, err, sizeof err), 0);
    out[strcspn(out, "\n")] = '\0';
    ck_assert_msg(parse_line(out, &o), "%s", out);
    ck_assert(get(&o, "peak_1t_gflops", J_NUM)->num > 0);
    ck_assert(get(&o, "peak_all_gflops", J_NUM)->num > 0);
}
END_TEST

/* The Python scripts beside heed bench (bench/torch_agree.py, compare.py,
 * torch_blas.py)
 * name only functions they define: a case left calling a function that a
 * refactor removed fails with a NameError only when that case runs (needs
 * PyTorch, so no test here runs it). pyflakes sees it without running
 * anything; the test passes over a machine without pyflakes. */
START_TEST(bench_scripts_call_only_what_they_define) {
    /* the scripts' own interpreter (#!/usr/bin/python3) first, then PATH's */
    FILE *f = popen("for p in /usr/bin/python3 python3; do"
                    " if $p -c 'import pyflakes' 2>/dev/null; then"
                    " exec $p -m pyflakes bench/torch_agree.py bench/compare.py"
                    " bench/torch_blas.py 2>&1; fi; done;"
                    " echo no pyflakes", "r");
    ck_assert_ptr_nonnull(f);
    static char out[1 << 14];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int rc = pclose(f);
    if (!strcmp(out, "no pyflakes\n")) return;
    ck_assert_msg(rc == 0 && n == 0, "pyflakes: %s", out);
}
END_TEST

Suite *heed_suite_bench(void) {
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, train_case_prints_one_json_line);
    tcase_add_test(tc, ram_training_stays_finite_on_one_batch);
    tcase_add_test(tc, net_file_infer_threads_and_human_line);
    tcase_add_test(tc, matrix_subset_runs_each_case_in_a_process);
    tcase_add_test(tc, layers_partition_the_forward);
    tcase_add_test(tc, bad_names_and_options_fail_clearly);
    tcase_add_test(tc, gemm_and_peak_modes_still_work);
    tcase_add_test(tc, bench_scripts_call_only_what_they_define);
    suite_add_tcase(s, tc);
    return s;
}
