/* testutil.c -- see testutil.h. */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void tu_fill_uniform(float *v, size_t n, float lo, float hi, uint64_t seed) {
    heed_rng r;
    heed_rng_seed(&r, seed, 7);
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * heed_rng_uniform(&r);
}

static double rel_err(double a, double b) {
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) / scale;
}

double tu_max_rel_err(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = rel_err(a[i], b[i]);
        if (!(e <= worst)) worst = e; /* NaN counts as worst... */
        if (isnan(worst)) break;       /* ...and stays: a later finite e would replace it */
    }
    return worst;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e;
        if (isnan(worst)) break;
    }
    return worst;
}

double tu_gradcheck(tu_loss_fn eval, void *ctx, float *v, size_t n, const float *analytic,
                    float eps, size_t *worst) {
    size_t skipped;
    return tu_gradcheck_kinks(eval, ctx, v, n, analytic, eps, INFINITY, worst, &skipped);
}

double tu_weighted_sum(const float *y, const float *w, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * w[i];
    return s;
}

double tu_layer_loss(void *ctx) {
    tu_layer_ctx *c = ctx;
    ck_assert_int_eq(heed_layer_forward(c->l, &c->x, &c->y), HEED_OK);
    return tu_weighted_sum(c->y.data, c->w.data, heed_tensor_count(&c->y));
}

void tu_read_file(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
}

void tu_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

unsigned char *tu_read_bytes(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        b = n >= 0 ? malloc((size_t)n + 1) : NULL;
        rewind(f);
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
        *size = (size_t)n;
    }
    fclose(f);
    return b;
}

void tu_heed_bin(char *out, size_t size) {
    const char *bin = getenv("HEED_BIN") ? getenv("HEED_BIN") : "build/heed";
    char cwd[PATH_MAX] = "";
    if (bin[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    snprintf(out, size, "%s%s%s", cwd, cwd[0] ? "/" : "", bin);
}

int tu_run_heed(const char *dir, const char *pre, const char *args, char *out, size_t outsize,
                char *err, size_t errsize) {
    char abs[PATH_MAX], cmd[8192], opath[300], epath[300];
    tu_heed_bin(abs, sizeof abs);
    snprintf(opath, sizeof opath, "%s/out.txt", dir);
    snprintf(epath, sizeof epath, "%s/err.txt", dir);
    if (err)
        snprintf(cmd, sizeof cmd, "%s HEED_PROGRESS=0 %s %s > %s 2> %s", pre ? pre : "", abs, args, opath, epath);
    else
        snprintf(cmd, sizeof cmd, "%s HEED_PROGRESS=0 %s %s > %s 2>&1", pre ? pre : "", abs, args, opath);
    int rc = system(cmd);
    tu_read_file(opath, out, outsize);
    if (err) tu_read_file(epath, err, errsize);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int tu_scratch_dir(char *dir, size_t size, const char *name) {
    snprintf(dir, size, "/tmp/heed-check-%s-%ld", name, (long)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

void tu_remove_dir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return;
}

double tu_gradcheck_kinks(tu_loss_fn eval, void *ctx, float *v, size_t n, const float *analytic,
                          float eps, double kink, size_t *worst, size_t *skipped) {
    double max_err = 0.0;
    *worst = 0, *skipped = 0;
    const double l0 = eval(ctx);
    for (size_t i = 0; i < n; i++) {
        float saved = v[i];
        v[i] = saved + eps;
        double lp = eval(ctx);
        v[i] = saved - eps;
        double lm = eval(ctx);
        v[i] = saved;
        /* The steps actually taken in float, not the nominal eps. */
        const double hp = (double)(saved + eps) - saved, hm = saved - (double)(saved - eps);
        /* A kink within the step shows as one-sided slopes that differ by
         * twice what it adds to the central difference: such an index says
         * nothing about the analytic gradient, and is left out. */
        if (rel_err((lp - l0) / hp, (l0 - lm) / hm) > kink) {
            (*skipped)++;
            continue;
        }
        double e = rel_err((lp - lm) / (hp + hm), analytic[i]);
        if (!(e <= max_err)) {
            max_err = e;
            *worst = i;
        }
    }
    eval(ctx);
    return max_err;
}
