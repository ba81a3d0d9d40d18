/* cmd_bench.c -- `heed bench MODE ...`: speed measurements.
 *
 *   heed bench gemm M N K [--threads T] [--seconds S] [--json]
 *   heed bench --peak [--json]
 *
 * Modes live in the table `modes` below: to add one (a whole-network
 * workload, say), write `static int bench_NAME(int argc, char **argv)` that
 * parses its own options with cli_parse (argv[0] is "bench NAME") and add a
 * row. Every mode prints a human line by default and one JSON object per
 * line with --json, always naming the gemm kernel in use.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_peak.h"
#include "cli.h"
#include "gemm.h"
#include "tensor.h"

const char cmd_bench_summary[] = "measure speed: matrix products (gemm), the FMA peak (--peak)";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Calls fn(ctx) repeatedly: warm-up for ~min(0.2 s, seconds/5), then timed
 * calls until `seconds` have passed (at least 5); returns the median time
 * of one call in seconds, the number of timed calls in *calls, or a negative
 * value if fn fails. */
static double time_median(int (*fn)(void *), void *ctx, double seconds, int *calls) {
    double warm = seconds / 5 < 0.2 ? seconds / 5 : 0.2;
    double t_end = cli_now() + warm;
    do
        if (fn(ctx)) return -1.0;
    while (cli_now() < t_end);
    int cap = 1 << 20, n = 0;
    double *t = malloc(sizeof(double) * cap);
    if (!t) return -1.0;
    t_end = cli_now() + seconds;
    while (n < cap && (n < 5 || cli_now() < t_end)) {
        double t0 = cli_now();
        if (fn(ctx)) {
            free(t);
            return -1.0;
        }
        t[n++] = cli_now() - t0;
    }
    qsort(t, n, sizeof(double), cmp_double);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
    *calls = n;
    return med;
}

/* ---- gemm ---- */

typedef struct gemm_case {
    int ta, tb, M, N, K;
    float *A, *B, *C;
} gemm_case;

static int gemm_call(void *ctx) {
    gemm_case *g = ctx;
    return heed_gemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, g->ta ? g->M : g->K, g->B,
                     g->tb ? g->K : g->N, 0.0f, g->C, g->N) != HEED_OK;
}

static int parse_dim(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < 1 || v > 1 << 20) return 0;
    *out = (int)v;
    return 1;
}

static int bench_gemm(int argc, char **argv) {
    int threads = omp_get_max_threads(), json = 0, ta = 0, tb = 0;
    float seconds = 1.0f;
    const char *kernel = NULL;
    const cli_opt opts[] = {
        {"threads", CLI_INT, &threads, "T", "OpenMP threads", NULL},
        {"seconds", CLI_FLOAT, &seconds, "S", "time spent in timed calls", NULL},
        {"trans-a", CLI_FLAG, &ta, NULL, "A stored K x M", NULL},
        {"trans-b", CLI_FLAG, &tb, NULL, "B stored N x K", NULL},
        {"kernel", CLI_STRING, &kernel, "NAME", "force a kernel", "avx512|avx2|generic"},
        {"json", CLI_FLAG, &json, NULL, "print one JSON line", NULL},
        {0}};
    const cli_spec spec = {"bench gemm", "M N K [options]",
                           "Time C (M x N) = A (M x K) B (K x N) with heed_gemm: warm-up, then "
                           "the median over calls.",
                           opts};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    gemm_case g = {.ta = ta, .tb = tb};
    if (nargs != 3 || !parse_dim(args[0], &g.M) || !parse_dim(args[1], &g.N) ||
        !parse_dim(args[2], &g.K))
        return cli_error("bench gemm", 2, "wants three sizes M N K (1 .. 1048576)");
    if (threads < 1) return cli_error("bench gemm", 2, "--threads must be at least 1");
    if (!(seconds > 0.0f)) return cli_error("bench gemm", 2, "--seconds must be positive");
    if (kernel && heed_gemm_set_kernel(kernel) != HEED_OK) return cli_lib_error("bench gemm");
    omp_set_num_threads(threads);

    size_t na = (size_t)g.M * g.K, nb = (size_t)g.K * g.N, nc = (size_t)g.M * g.N;
    g.A = heed_alloc(sizeof(float) * na);
    g.B = heed_alloc(sizeof(float) * nb);
    g.C = heed_alloc(sizeof(float) * nc);
    if (!g.A || !g.B || !g.C) {
        heed_free(g.A);
        heed_free(g.B);
        heed_free(g.C);
        return cli_error("bench gemm", 1, "out of memory for %d x %d x %d", g.M, g.N, g.K);
    }
    for (size_t i = 0; i < na; i++) g.A[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < nb; i++) g.B[i] = (float)(i % 13) * 0.01f;
    memset(g.C, 0, sizeof(float) * nc);

    int calls = 0;
    double t = time_median(gemm_call, &g, seconds, &calls);
    heed_free(g.A);
    heed_free(g.B);
    heed_free(g.C);
    if (t < 0) return cli_lib_error("bench gemm");
    double gflops = 2.0 * g.M * g.N * g.K / t / 1e9;
    if (json)
        printf("{\"workload\": \"gemm\", \"M\": %d, \"N\": %d, \"K\": %d, \"trans_a\": %d, "
               "\"trans_b\": %d, \"threads\": %d, \"kernel\": \"%s\", \"gflops\": %.2f, "
               "\"ms_median\": %.4f, \"calls\": %d}\n",
               g.M, g.N, g.K, ta, tb, threads, heed_gemm_kernel_name(), gflops, t * 1e3, calls);
    else
        printf("gemm M=%d N=%d K=%d%s%s threads=%d kernel=%s: %.1f GFLOP/s, median %.4f ms "
               "over %d calls\n",
               g.M, g.N, g.K, ta ? " trans-a" : "", tb ? " trans-b" : "", threads,
               heed_gemm_kernel_name(), gflops, t * 1e3, calls);
    return 0;
}

/* ---- peak ---- */

static int bench_peak(int argc, char **argv) {
    int json = 0, trials = 5;
    float seconds = 0.5f;
    const cli_opt opts[] = {{"seconds", CLI_FLOAT, &seconds, "S", "length of one trial", NULL},
                            {"trials", CLI_INT, &trials, "N", "trials (the best counts)", NULL},
                            {"json", CLI_FLAG, &json, NULL, "print one JSON line", NULL},
                            {0}};
    const cli_spec spec = {"bench --peak", "[options]",
                           "Measure the float32 FMA peak: a register-only FMA loop on the widest "
                           "vector unit, on 1 thread and on every core.",
                           opts};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs) return cli_error("bench --peak", 2, "takes no arguments");
    if (!(seconds > 0.0f) || trials < 1)
        return cli_error("bench --peak", 2, "--seconds and --trials must be positive");
    int nall = omp_get_num_procs();
    const char *isa;
    double p1 = bench_peak_gflops(1, seconds, trials, &isa);
    double pa = bench_peak_gflops(nall, seconds, trials, &isa);
    if (json)
        printf("{\"workload\": \"peak\", \"isa\": \"%s\", \"threads\": %d, \"kernel\": \"%s\", "
               "\"peak_1t_gflops\": %.1f, \"peak_all_gflops\": %.1f}\n",
               isa, nall, heed_gemm_kernel_name(), p1, pa);
    else
        printf("peak isa=%s threads=%d (gemm kernel: %s)\npeak_1t_gflops=%.1f\n"
               "peak_all_gflops=%.1f\n",
               isa, nall, heed_gemm_kernel_name(), p1, pa);
    return 0;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} modes[] = {
    {"gemm", bench_gemm, "gemm M N K [--threads T] [--seconds S] [--json]"},
    {"peak", bench_peak, "--peak [--json]"},
};

static void usage(FILE *f) {
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        fprintf(f, "  heed bench %s\n", modes[i].usage);
    fprintf(f, "(heed bench MODE --help for a mode's options)\n");
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "--help") || !strcmp(mode, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(mode, "--peak")) mode = "peak";
    char name[64];
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(mode, modes[i].name)) {
            /* The mode parses argv[1..] under the name "bench MODE". */
            snprintf(name, sizeof name, "bench %s", modes[i].name);
            argv[1] = name;
            return modes[i].run(argc - 1, argv + 1);
        }
    return cli_error("bench", 2, "unknown mode '%s' (heed bench --help lists them)", mode);
}
