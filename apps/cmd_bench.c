/* cmd_bench.c -- `heed bench`: speed measurements.
 *
 *   heed bench --workload NAME [--mode infer|train] [--batch N] [--seconds S]
 *              [--threads T] [--json]          one case of WORKLOADS.md
 *   heed bench --net FILE ...                  any network file
 *   heed bench --all [--seconds S] [--threads T] [--json]   the whole matrix
 *   heed bench --workload NAME --layers ...    time and GFLOP/s per layer
 *   heed bench gemm M N K [--threads T] [--seconds S] [--json]
 *   heed bench --peak [--json]
 *
 * The workload cases print exactly the fields shared/bench/peer_torch.py
 * prints for the same case (workload, mode, batch, threads, images_per_s,
 * ms_per_batch, ms_min, ms_max, iters, peak_rss_mb, malloc; "heed" and
 * "kernel" where it has "torch"), measured the same way (bench_workload.h),
 * so the two compare line by line (bench/compare.py does).
 *
 * Modes live in the table `modes` below: to add one, write `static int
 * bench_NAME(int argc, char **argv)` that parses its own options with
 * cli_parse (argv[0] is "bench NAME") and add a row. Every mode prints a
 * human line by default and one JSON object per line with --json, always
 * naming the gemm kernel in use.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bench_peak.h"
#include "bench_workload.h"
#include "cli.h"
#include "gemm.h"
#include "omp_impl.h"
#include "tensor.h"

const char cmd_bench_summary[] =
    "measure speed: the benchmark networks (--workload, --all, --layers), gemm, the FMA peak";

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

/* --seconds: positive and finite, at most an hour ("inf" and "1e30" parse
 * as numbers, and ran until killed). */
#define BENCH_MAX_SECONDS 3600.0f
static int seconds_ok(float s) { return s > 0.0f && s <= BENCH_MAX_SECONDS; }

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
                           opts, NULL};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    gemm_case g = {.ta = ta, .tb = tb};
    if (nargs != 3 || !parse_dim(args[0], &g.M) || !parse_dim(args[1], &g.N) ||
        !parse_dim(args[2], &g.K))
        return cli_error("bench gemm", 2, "wants three sizes M N K (1 .. 1048576)");
    if ((rc = cli_threads("bench gemm", &threads, 0)) >= 0) return rc;
    if (!seconds_ok(seconds))
        return cli_error("bench gemm", 2, "--seconds must be more than 0 and at most %g, not %g",
                         BENCH_MAX_SECONDS, seconds);
    if (kernel && heed_gemm_set_kernel(kernel) != HEED_OK) return cli_lib_error("bench gemm");

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
                           opts, NULL};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs) return cli_error("bench --peak", 2, "takes no arguments");
    if (!(seconds >= 0.001f && seconds <= BENCH_MAX_SECONDS) || trials < 1)
        return cli_error("bench --peak", 2, "--seconds must be 0.001 .. %g and --trials positive",
                         BENCH_MAX_SECONDS);
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

/* ---- workloads ---- */

/* The measured matrix, as in peer_torch.py's MATRIX (WORKLOADS.md's
 * "Measured:" lines). */
static const struct {
    const char *workload, *mode;
    int batch;
} matrix[] = {
    {"fmnist-plain", "infer", 1},   {"fmnist-plain", "infer", 64},  {"fmnist-plain", "train", 64},
    {"fmnist-se", "infer", 1},      {"fmnist-se", "infer", 64},     {"fmnist-se", "train", 64},
    {"fmnist-cbam", "infer", 1},    {"fmnist-cbam", "infer", 64},   {"fmnist-cbam", "train", 64},
    {"resnet18-plain", "infer", 1}, {"resnet18-plain", "infer", 8}, {"resnet18-se", "infer", 1},
    {"resnet18-se", "infer", 8},    {"resnet18-cbam", "infer", 1},  {"resnet18-cbam", "infer", 8},
    {"ram", "train", 64},           {"ram", "infer", 64},
};

typedef struct wl_opts {
    const char *workload, *net, *nets, *mode, *filter, *kernel;
    int batch, threads, seed, json, all, layers, default_malloc;
    float seconds, peak_gflops;
} wl_opts;

/* What the JSON's "malloc" says, as peer_torch.py: the mmap threshold in
 * force, or "default" for glibc's dynamic one. */
static const char *malloc_setting(const wl_opts *o) {
    if (o->default_malloc) return "default";
    const char *env = getenv("MALLOC_MMAP_THRESHOLD_");
    return env ? env : "67108864";
}

/* peer_torch.py runs with a fixed mmap threshold (its doc says why); heed
 * allocates nothing per step in the steady state, but runs under the same
 * setting so the two processes differ only in their code. */
static void fix_malloc(const wl_opts *o) {
#if defined(__GLIBC__)
    if (o->default_malloc || getenv("MALLOC_MMAP_THRESHOLD_")) return;
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#else
    (void)o;
#endif
}

static int run_case(const wl_opts *o, const char *path, const char *name) {
    const char *cmd = o->layers ? "bench --layers" : "bench";
    bench_case c;
    int train = !strcmp(o->mode, "train");
    fix_malloc(o);
    if (bench_case_open(&c, path, name, train, o->batch, (uint64_t)o->seed) != HEED_OK) {
        bench_case_close(&c);
        if (!strcmp(name, "ram") && !o->net)
            return cli_error(cmd, 1, "ram: not available (%s)", heed_last_error());
        return cli_lib_error(cmd);
    }
    /* Warm-up as the peer's: 1 s and 3 steps, less for very short runs. */
    double warm = o->seconds < 1.0f ? o->seconds : 1.0;
    if (o->layers) {
        double peak = o->peak_gflops;
        const char *isa;
        if (!(peak > 0)) peak = bench_peak_gflops(o->threads, 0.1, 5, &isa);
        int rc = bench_layers_report(&c, warm, o->seconds, o->threads, peak, !(o->peak_gflops > 0), o->json);
        bench_case_close(&c);
        return rc;
    }
    bench_times t;
    heed_status st = bench_warm_up(&c, warm);
    if (st == HEED_OK) st = bench_time_steps(&c, o->seconds, &t);
    bench_case_close(&c);
    if (st != HEED_OK) return cli_lib_error(cmd);
    double rss = bench_peak_rss_mb(), ips = o->batch / t.median;
    if (o->json) {
        printf("{\"workload\": ");
        cli_json_string(stdout, name);
        printf(", \"mode\": \"%s\", \"batch\": %d, \"threads\": %d, \"images_per_s\": %.2f, "
               "\"ms_per_batch\": %.4f, \"ms_min\": %.4f, \"ms_max\": %.4f, \"iters\": %d, "
               "\"heed\": \"%s\", \"kernel\": \"%s\", \"peak_rss_mb\": %.1f, \"malloc\": \"%s\"}\n",
               o->mode, o->batch, o->threads, ips, 1e3 * t.median, 1e3 * t.min, 1e3 * t.max, t.iters,
               HEED_VERSION, heed_gemm_kernel_name(), rss, malloc_setting(o));
    } else {
        printf("%s %s batch %d, %d thread%s: %.2f images/s, %.4f ms/batch (median of %d; min %.4f, "
               "max %.4f), peak RSS %.1f MB, gemm kernel %s\n",
               name, o->mode, o->batch, o->threads, o->threads == 1 ? "" : "s", ips, 1e3 * t.median,
               t.iters, 1e3 * t.min, 1e3 * t.max, rss, heed_gemm_kernel_name());
    }
    fflush(stdout);
    return 0;
}

/* The number after "key": in a JSON line, or -1. */
static double json_number(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(line, pat);
    return at ? strtod(at + strlen(pat), NULL) : -1.0;
}

/* Runs one case of the matrix in a fresh process (its own peak RSS, no
 * state carried over), its JSON line into buf. Returns its exit status. */
static int run_child(const wl_opts *o, const char *workload, const char *mode, int batch, char *buf,
                     size_t size) {
    char sbatch[16], sseconds[32], sthreads[16], sseed[16];
    snprintf(sbatch, sizeof sbatch, "%d", batch);
    snprintf(sseconds, sizeof sseconds, "%g", o->seconds);
    snprintf(sthreads, sizeof sthreads, "%d", o->threads);
    snprintf(sseed, sizeof sseed, "%d", o->seed);
    const char *argv[24] = {"heed", "bench", "--workload", workload, "--mode", mode, "--batch", sbatch,
                            "--seconds", sseconds, "--threads", sthreads, "--seed", sseed, "--json"};
    int n = 15;
    if (o->nets) argv[n++] = "--nets", argv[n++] = o->nets;
    if (o->kernel) argv[n++] = "--kernel", argv[n++] = o->kernel;
    if (o->default_malloc) argv[n++] = "--default-malloc";
    argv[n] = NULL;

    int fd[2];
    buf[0] = '\0';
    if (pipe(fd)) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    size_t used = 0;
    ssize_t got;
    while ((got = read(fd[0], buf + used, size - 1 - used)) > 0) {
        used += (size_t)got;
        if (used == size - 1) break;
    }
    buf[used] = '\0';
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_all(const wl_opts *o) {
    int failed = 0, ran = 0;
    static char buf[1 << 16];
    int matches = 0; /* before the header: a --filter that matches nothing prints only its error */
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++)
        matches += !o->filter || strstr(matrix[i].workload, o->filter) != NULL;
    if (!matches) return cli_error("bench", 2, "--filter '%s' matches no workload of the matrix", o->filter);
    if (!o->json) {
        printf("heed %s, gemm kernel %s, %d thread%s, %g s per case\n", HEED_VERSION,
               heed_gemm_kernel_name(), o->threads, o->threads == 1 ? "" : "s", o->seconds);
        printf("%-28s %12s %12s %10s\n", "case", "images/s", "ms/batch", "peak MB");
    }
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        if (o->filter && !strstr(matrix[i].workload, o->filter)) continue;
        ran++;
        int rc = run_child(o, matrix[i].workload, matrix[i].mode, matrix[i].batch, buf, sizeof buf);
        char *line = strchr(buf, '{');
        if (rc != 0 || !line) {
            failed++;
            if (!o->json)
                printf("%-14s %s %-4d failed (exit status %d)\n", matrix[i].workload, matrix[i].mode,
                       matrix[i].batch, rc);
        } else if (o->json) {
            fputs(line, stdout);
        } else {
            char name[64];
            snprintf(name, sizeof name, "%s %s %d", matrix[i].workload, matrix[i].mode, matrix[i].batch);
            printf("%-28s %12.2f %12.4f %10.1f\n", name, json_number(line, "images_per_s"),
                   json_number(line, "ms_per_batch"), json_number(line, "peak_rss_mb"));
        }
        fflush(stdout);
    }
    if (!ran) return cli_error("bench", 2, "--filter '%s' matches no workload of the matrix", o->filter);
    if (failed) return cli_error("bench", 1, "%d of %d cases failed", failed, ran);
    return 0;
}

/* The file name without its folder and its ".net". */
static void stem_of(const char *path, char *out, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%s", base);
    size_t n = strlen(out);
    if (n > 4 && !strcmp(out + n - 4, ".net")) out[n - 4] = '\0';
}

static int bench_workload(int argc, char **argv) {
    wl_opts o = {.mode = "infer", .batch = 1, .threads = 1, .seed = 1, .seconds = 5.0f};
    const cli_opt opts[] = {
        {"workload", CLI_STRING, &o.workload, "NAME", "WORKLOADS.md's fmnist-{plain,se,cbam}, "
         "resnet18-{plain,se,cbam}, ram, or any other NAME.net of --nets (fmnist-eca, fmnist-mobile, "
         "resnet18-eca)", NULL},
        {"net", CLI_STRING, &o.net, "FILE", "any network file instead (named after its stem)", NULL},
        {"mode", CLI_STRING, &o.mode, "MODE", "inference forward, or a whole training step", "infer|train"},
        {"batch", CLI_INT, &o.batch, "N", "images per step", NULL},
        {"seconds", CLI_FLOAT, &o.seconds, "S", "timed seconds per case (after warm-up)", NULL},
        {"threads", CLI_INT, &o.threads, "T", "OpenMP threads (as peer_torch.py's default)", NULL},
        {"all", CLI_FLAG, &o.all, NULL, "the whole matrix of peer_torch.py --all, each case in a fresh process", NULL},
        {"filter", CLI_STRING, &o.filter, "TEXT", "with --all: only workloads whose name contains TEXT", NULL},
        {"layers", CLI_FLAG, &o.layers, NULL, "time each layer: ms, GFLOP/s, % of the FMA peak", NULL},
        {"peak-gflops", CLI_FLOAT, &o.peak_gflops, "X", "with --layers: the FMA peak to relate to (0: measure it)", NULL},
        {"nets", CLI_STRING, &o.nets, "DIR", "where NAME.net lives [$HEED_NETS, ./nets, beside heed]", NULL},
        {"seed", CLI_INT, &o.seed, "N", "of the weights, inputs and labels", NULL},
        {"kernel", CLI_STRING, &o.kernel, "NAME", "force a gemm kernel", "avx512|avx2|generic"},
        {"default-malloc", CLI_FLAG, &o.default_malloc, NULL, "keep glibc's dynamic mmap threshold "
         "(peer_torch.py's option of that name)", NULL},
        {"json", CLI_FLAG, &o.json, NULL, "one JSON line per case (per layer with --layers)", NULL},
        {0}};
    int given[sizeof opts / sizeof opts[0]] = {0};
    const cli_spec spec = {
        "bench", "--workload NAME | --net FILE | --all [options]",
        "Times the benchmark networks (shared/bench/WORKLOADS.md) on a random batch with\n"
        "random weights, both seeded, exactly as shared/bench/peer_torch.py times the\n"
        "PyTorch twins: warm-up (3 steps and 1 s, or --seconds if shorter), then steps for\n"
        "--seconds (at least 5); ms_per_batch is their median, images_per_s = batch / median.\n"
        "infer: a forward with batch norm on running statistics, the network frozen as\n"
        "heed eval and classify serve a model (weights fixed). train: forward, softmax\n"
        "cross-entropy (RAM: plus REINFORCE and baseline terms), backward, SGD step (lr 0.01,\n"
        "momentum 0.9). One thread unless --threads says otherwise, like the peer.\n"
        "JSON fields: workload, mode, batch, threads, images_per_s, ms_per_batch, ms_min,\n"
        "ms_max, iters, heed (version), kernel (gemm), peak_rss_mb, malloc.",
        opts, given};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs && !strcmp(args[0], "gemm"))
        return cli_error("bench", 2, "gemm comes first, its options after: heed bench gemm M N K [options]");
    if (nargs) return cli_error("bench", 2, "unexpected argument '%s' (try --help)", args[0]);
    if (!!o.workload + !!o.net + o.all != 1)
        return cli_error("bench", 2, "give one of --workload NAME, --net FILE or --all");
    if (o.all && o.layers) return cli_error("bench", 2, "--layers wants one case, not --all");
    if (o.filter && !o.all) return cli_error("bench", 2, "--filter goes with --all");
    /* Options this run would not read are refused, not dropped. */
    if (o.all && (cli_given(opts, given, "mode") || cli_given(opts, given, "batch")))
        return cli_error("bench", 2, "--mode and --batch are not used with --all (the matrix has its own)");
    if (!o.layers && cli_given(opts, given, "peak-gflops"))
        return cli_error("bench", 2, "--peak-gflops goes with --layers");
    if (o.net && cli_given(opts, given, "nets"))
        return cli_error("bench", 2, "--nets goes with --workload NAME (where NAME.net lives), not --net FILE");
    if (o.batch < 1 || o.batch > 1 << 16) return cli_error("bench", 2, "--batch must be 1 .. 65536");
    if (o.seed < 0) return cli_error("bench", 2, "--seed must be 0 or more, not %d", o.seed);
    if ((rc = cli_threads("bench", &o.threads, 0)) >= 0) return rc;
    if (!seconds_ok(o.seconds))
        return cli_error("bench", 2, "--seconds must be more than 0 and at most %g, not %g",
                         BENCH_MAX_SECONDS, o.seconds);
    if (!(o.peak_gflops >= 0.0f) || isinf(o.peak_gflops))
        return cli_error("bench", 2, "--peak-gflops must be a positive number (0: measure it)");
    if (o.kernel && heed_gemm_set_kernel(o.kernel) != HEED_OK) return cli_lib_error("bench");
    if (o.all) return run_all(&o);

    char path[4096], name[64];
    if (o.net) {
        snprintf(path, sizeof path, "%s", o.net);
        stem_of(o.net, name, sizeof name);
        return run_case(&o, path, name);
    }
    if (!bench_find_net(o.workload, o.nets, path, sizeof path)) {
        if (!path[0])
            return cli_error("bench", 2, "unknown workload '%s': a workload is a name such as "
                             "fmnist-cbam (give a network file with --net FILE)", o.workload);
        int known = 0;
        for (int i = 0; bench_workload_names[i]; i++) known |= !strcmp(o.workload, bench_workload_names[i]);
        if (!strcmp(o.workload, "ram"))
            return cli_error("bench", 1, "ram: not available (no ram.net in %s)", path);
        if (known) return cli_error("bench", 1, "no %s.net in %s (try --nets DIR)", o.workload, path);
        return cli_error("bench", 2,
                         "unknown workload '%s': no such network file in %s (the workloads: "
                         "fmnist-plain, fmnist-se, fmnist-cbam, resnet18-plain, resnet18-se, "
                         "resnet18-cbam, ram; any other NAME.net there; or --net FILE)",
                         o.workload, path);
    }
    snprintf(name, sizeof name, "%s", o.workload);
    return run_case(&o, path, name);
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} modes[] = {
    {"workload", bench_workload, "--workload NAME [--mode infer|train] [--batch N] [--seconds S] "
                                 "[--threads T] [--json]"},
    {"workload", bench_workload, "--net FILE [the same options]"},
    {"workload", bench_workload, "--all [--seconds S] [--threads T] [--json]"},
    {"workload", bench_workload, "--workload NAME --layers [--mode M] [--batch N] [--json]"},
    {"gemm", bench_gemm, "gemm M N K [--threads T] [--seconds S] [--json]"},
    {"peak", bench_peak, "--peak [--json]"},
};

static void usage(FILE *f) {
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        fprintf(f, "  heed bench %s\n", modes[i].usage);
    fprintf(f, "(heed bench gemm --help and heed bench --peak --help: those modes' options)\n");
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "--help") || !strcmp(mode, "-h")) {
        usage(stdout);
        printf("\n");
        char *help[] = {"bench", "--help", NULL};
        return bench_workload(2, help);
    }
    /* --peak may come anywhere among its options; the others are options
     * of the workload mode unless a mode name comes first. */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--peak")) {
            for (int j = i; j > 1; j--) argv[j] = argv[j - 1];
            mode = "peak";
            break;
        }
    if (mode[0] == '-') mode = "workload";
    char name[64];
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(mode, modes[i].name)) {
            /* The mode parses argv[1..] under the name "bench MODE". */
            snprintf(name, sizeof name, "bench %s", modes[i].name);
            if (!strcmp(mode, "workload")) {
                argv[0] = "bench";
                return modes[i].run(argc, argv);
            }
            if (!strcmp(mode, "peak")) snprintf(name, sizeof name, "bench --peak");
            argv[1] = name;
            return modes[i].run(argc - 1, argv + 1);
        }
    return cli_error("bench", 2, "unknown mode '%s' (heed bench --help lists them)", mode);
}
