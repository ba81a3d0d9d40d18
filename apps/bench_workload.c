/* bench_workload.c -- see bench_workload.h. The timing loop mirrors
 * peer_torch.py's time_step: warm-up of at least 3 steps and a given time,
 * then timed steps until at least 5 have run and the time is up; the
 * reported step time is the median of the timed ones. */
#include "bench_workload.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "loss.h"
#include "rng.h"

const char *const bench_workload_names[] = {"fmnist-plain",   "fmnist-se",   "fmnist-cbam",
                                            "resnet18-plain", "resnet18-se", "resnet18-cbam",
                                            "ram",            NULL};

/* ---- finding network files ---- */

static int plain_name(const char *s) {
    if (!s[0] || s[0] == '.' || strlen(s) > 200) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* Appends s to the string in dst (size bytes), truncating. */
static void append(char *dst, size_t size, const char *s) {
    size_t n = strlen(dst);
    while (*s && n + 1 < size) dst[n++] = *s++;
    dst[n] = '\0';
}

/* Tries dir/name.net; on a miss appends dir to the list of folders tried. */
static int try_dir(const char *dir, const char *name, char *path, size_t size, char *tried,
                   size_t tried_size) {
    snprintf(path, size, "%s/%s.net", dir, name);
    if (access(path, R_OK) == 0) return 1;
    if (tried[0]) append(tried, tried_size, ", ");
    append(tried, tried_size, dir);
    return 0;
}

int bench_find_net(const char *name, const char *dir, char *path, size_t size) {
    char tried[2048] = "";
    if (!plain_name(name)) {
        if (size) path[0] = '\0';
        return 0;
    }
    const char *env = getenv("HEED_NETS");
    if (dir || (env && env[0])) {
        if (try_dir(dir ? dir : env, name, path, size, tried, sizeof tried)) return 1;
        snprintf(path, size, "%s", tried);
        return 0;
    }
    if (try_dir("nets", name, path, size, tried, sizeof tried)) return 1;
    /* Beside the executable: build/heed and build/NAME/heed in a source
     * tree, PREFIX/bin/heed after `make install`. */
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        const char *rel[] = {"/../nets", "/../../nets", "/../share/heed/nets"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            char d[2100];
            snprintf(d, sizeof d, "%s%s", exe, rel[i]);
            if (try_dir(d, name, path, size, tried, sizeof tried)) return 1;
        }
    }
    snprintf(path, size, "%s", tried);
    return 0;
}

/* ---- one case ---- */

static void find_ram(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    if (!strcmp(l->ops->type, "ram")) *(int *)ctx = 1;
}

heed_status bench_case_open(bench_case *c, const char *path, const char *workload, int train,
                            int batch, uint64_t seed) {
    memset(c, 0, sizeof *c);
    snprintf(c->workload, sizeof c->workload, "%s", workload);
    c->train = train;
    c->batch = batch;
    if (batch < 1) return heed_fail(HEED_ERR_ARG, "bench: batch %d is not positive", batch);
    HEED_TRY(heed_net_load(&c->net, path, seed));
    const heed_layer *root = &c->net->root->base;
    c->classes = root->out_c * root->out_h * root->out_w;
    /* A training step ends in softmax cross-entropy over class scores. */
    if (train && (root->out_h != 1 || root->out_w != 1))
        return heed_fail(HEED_ERR_SHAPE, "%s ends in (%d, %d, %d), not class scores (C, 1, 1): "
                         "--mode train needs a classifier (end it with fc)", path, root->out_c,
                         root->out_h, root->out_w);
    HEED_TRY(heed_tensor_alloc(&c->x, batch, c->net->in_c, c->net->in_h, c->net->in_w));
    HEED_TRY(heed_tensor_alloc(&c->dy, batch, c->classes, 1, 1));
    c->labels = malloc(sizeof(int) * (size_t)batch);
    if (!c->labels) return heed_fail(HEED_ERR_NOMEM, "bench: cannot allocate %d labels", batch);

    /* RAM reads pixel intensities (its sensor pads with black), the CNNs
     * normalised inputs: the same draws as the peer's torch.rand/randn. */
    int ram = 0;
    heed_net_visit(c->net, find_ram, &ram);
    heed_rng rng;
    heed_rng_seed(&rng, seed, 7);
    size_t count = heed_tensor_count(&c->x);
    for (size_t i = 0; i < count; i++)
        c->x.data[i] = ram ? heed_rng_uniform(&rng) : heed_rng_normal(&rng);
    for (int i = 0; i < batch; i++) c->labels[i] = (int)heed_rng_below(&rng, (uint32_t)c->classes);

    heed_net_set_training(c->net, train);
    heed_net_set_frozen(c->net, !train); /* inference as the apps serve a model */
    heed_net_reseed(c->net, seed);
    if (train) {
        heed_optim_cfg cfg = {.kind = HEED_OPTIM_SGD, .lr = 0.01f, .momentum = 0.9f};
        HEED_TRY(heed_optim_init(&c->opt, &cfg, &c->net->params));
    }
    return HEED_OK;
}

heed_status bench_case_step(bench_case *c) {
    if (!c->train) return heed_net_forward(c->net, &c->x, &c->y);
    double loss = 0.0;
    heed_params_zero_grad(&c->net->params);
    HEED_TRY(heed_net_forward(c->net, &c->x, &c->y));
    heed_tensor_zero(&c->dy);
    HEED_TRY(heed_softmax_cross_entropy(&c->y, c->labels, &loss, NULL, &c->dy));
    HEED_TRY(heed_net_set_targets(c->net, c->labels, c->batch, &loss));
    HEED_TRY(heed_net_backward(c->net, &c->x, &c->y, &c->dy, NULL));
    heed_optim_step(&c->opt, c->opt.cfg.lr);
    return HEED_OK;
}

heed_status bench_warm_up(bench_case *c, double seconds) {
    double t_end = cli_now() + seconds;
    for (int done = 0; done < 3 || cli_now() < t_end; done++) HEED_TRY(bench_case_step(c));
    return HEED_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

heed_status bench_time_steps(bench_case *c, double seconds, bench_times *t) {
    int cap = 1024, n = 0;
    double *times = malloc(sizeof(double) * (size_t)cap);
    if (!times) return heed_fail(HEED_ERR_NOMEM, "bench: cannot allocate the timings");
    heed_status st = HEED_OK;
    double t_end = cli_now() + seconds;
    while (n < 5 || cli_now() < t_end) {
        if (n == cap) {
            double *more = cap < (1 << 24) ? realloc(times, sizeof(double) * (size_t)cap * 2) : NULL;
            if (!more) break; /* enough samples for a median */
            times = more;
            cap *= 2;
        }
        double t0 = cli_now();
        st = bench_case_step(c);
        if (st != HEED_OK) break;
        times[n++] = cli_now() - t0;
    }
    if (st == HEED_OK) {
        qsort(times, (size_t)n, sizeof(double), cmp_double);
        t->median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
        t->min = times[0];
        t->max = times[n - 1];
        t->iters = n;
    }
    free(times);
    return st;
}

void bench_case_close(bench_case *c) {
    if (c->train) heed_optim_free(&c->opt);
    heed_net_free(c->net);
    heed_tensor_free(&c->x);
    heed_tensor_free(&c->y);
    heed_tensor_free(&c->dy);
    free(c->labels);
    memset(c, 0, sizeof *c);
}

double bench_peak_rss_mb(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return 0.0;
    return (double)u.ru_maxrss / 1024.0; /* Linux reports kilobytes */
}

