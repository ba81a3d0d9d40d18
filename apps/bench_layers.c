/* bench_layers.c -- `heed bench --layers`: where a step's time goes.
 *
 * With heed_layer_profile(1) every heed_layer_forward/backward adds its
 * wall time to the layer (children included). A row is a part of the
 * network that does its own work: each leaf layer that ran, and for each
 * composite layer other than a plain sequence its time minus that of its
 * children that ran (a residual block's addition; an attention module's
 * pooling, scaling and the small layers it calls directly rather than
 * through heed_layer_forward). Its FLOPs are counted the same way, so the
 * rows partition both the time and the FLOPs of the whole forward (a
 * sequence's own bookkeeping aside).
 *
 * GFLOP/s = forward FLOPs per image x batch / forward seconds per call;
 * % of peak relates that to the machine's measured FMA peak at the same
 * thread count (bench_peak.c). */
#include <stdlib.h>
#include <string.h>

#include "bench_workload.h"
#include "cli.h"
#include "gemm.h"

typedef struct row {
    char name[64];
    const char *type;
    int own;           /* a composite's own work beside its children */
    long calls;        /* forward calls */
    double fwd_s, bwd_s; /* totals over the calls */
    double flops;      /* forward FLOPs per image */
} row;

typedef struct rows {
    row *r;
    int n, cap;
} rows;

static int add_row(rows *rs, const heed_layer *l, int own, double fwd_s, double bwd_s, double flops) {
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 64;
        row *more = realloc(rs->r, sizeof(row) * (size_t)cap);
        if (!more) return 0;
        rs->r = more;
        rs->cap = cap;
    }
    row *r = &rs->r[rs->n++];
    snprintf(r->name, sizeof r->name, "%s", l->name);
    r->type = l->ops->type;
    r->own = own;
    r->calls = l->forward_calls;
    /* clock granularity can make a tiny remainder negative */
    r->fwd_s = fwd_s > 0 ? fwd_s : 0;
    r->bwd_s = bwd_s > 0 ? bwd_s : 0;
    r->flops = flops > 0 ? flops : 0;
    return 1;
}

static int walk(const heed_layer *l, rows *rs) {
    int n = heed_layer_child_count(l);
    if (n == 0) return l->forward_calls ? add_row(rs, l, 0, l->forward_s, l->backward_s, heed_layer_flops(l)) : 1;
    double fwd = l->forward_s, bwd = l->backward_s, flops = heed_layer_flops(l);
    for (int i = 0; i < n; i++) {
        const heed_layer *c = heed_layer_child(l, i);
        if (!walk(c, rs)) return 0;
        if (c->forward_calls) {
            fwd -= c->forward_s;
            bwd -= c->backward_s;
            flops -= heed_layer_flops(c);
        }
    }
    if (!strcmp(l->ops->type, "seq") || !l->forward_calls) return 1;
    return add_row(rs, l, 1, fwd, bwd, flops);
}

static double gflops_of(double flops, int batch, double seconds) {
    return seconds > 0 ? flops * batch / seconds / 1e9 : 0.0;
}

static void json_row(const bench_case *c, int threads, const char *name, const char *type, int own,
                     long calls, double fwd_ms, double bwd_ms, double share, double gflop,
                     double gflops, double peak) {
    printf("{\"workload\": ");
    cli_json_string(stdout, c->workload);
    printf(", \"mode\": \"%s\", \"batch\": %d, \"threads\": %d, \"layer\": ", c->train ? "train" : "infer",
           c->batch, threads);
    cli_json_string(stdout, name);
    printf(", \"type\": ");
    cli_json_string(stdout, type);
    printf(", \"own\": %s, \"calls\": %ld, \"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"share\": %.4f, "
           "\"gflop\": %.6f, \"gflops\": %.2f, \"peak_pct\": %.2f",
           own ? "true" : "false", calls, fwd_ms, bwd_ms, share, gflop, gflops,
           peak > 0 ? 100.0 * gflops / peak : 0.0);
}

int bench_layers_report(bench_case *c, double warm_s, double seconds, int threads,
                        double peak_gflops, int peak_measured, int json) {
    const char *cmd = "bench --layers";
    if (bench_warm_up(c, warm_s) != HEED_OK) return cli_lib_error(cmd);
    heed_layer *root = &c->net->root->base;
    heed_layer_profile(1);
    heed_layer_profile_clear(root);
    bench_times t;
    heed_status st = bench_time_steps(c, seconds, &t);
    heed_layer_profile(0);
    if (st != HEED_OK) return cli_lib_error(cmd);

    rows rs = {0};
    if (!walk(root, &rs)) {
        free(rs.r);
        return cli_error(cmd, 1, "out of memory");
    }
    long calls = root->forward_calls > 0 ? root->forward_calls : 1;
    double total_s = root->forward_s + root->backward_s;
    const char *mode = c->train ? "train" : "infer";
    if (!json) {
        printf("%s %s batch %d, %d thread%s, %d steps; peak %.1f GFLOP/s (%s), gemm kernel %s\n",
               c->workload, mode, c->batch, threads, threads == 1 ? "" : "s", t.iters, peak_gflops,
               peak_measured ? "measured" : "given", heed_gemm_kernel_name());
        printf("%-36s %-11s %8s %10s %6s %9s %7s\n", "layer", "type", "fwd ms", c->train ? "bwd ms" : "",
               "share", "GFLOP/s", "% peak");
    }
    for (int i = 0; i < rs.n; i++) {
        const row *r = &rs.r[i];
        double fwd_ms = 1e3 * r->fwd_s / (double)r->calls, bwd_ms = 1e3 * r->bwd_s / (double)r->calls;
        double share = total_s > 0 ? (r->fwd_s + r->bwd_s) / total_s : 0.0;
        double g = gflops_of(r->flops, c->batch, r->fwd_s / (double)r->calls);
        if (json) {
            json_row(c, threads, r->name, r->type, r->own, r->calls, fwd_ms, bwd_ms, share,
                     r->flops * c->batch / 1e9, g, peak_gflops);
            printf("}\n");
            continue;
        }
        char name[80], bwd[32] = "", gf[32] = "", pct[32] = "";
        snprintf(name, sizeof name, "%s%s", r->name, r->own ? " (own)" : "");
        if (c->train) snprintf(bwd, sizeof bwd, "%.4f", bwd_ms);
        /* GFLOP/s means little for layers that only move memory */
        if (r->flops * c->batch >= 1e5) {
            snprintf(gf, sizeof gf, "%.2f", g);
            if (peak_gflops > 0) snprintf(pct, sizeof pct, "%.1f%%", 100.0 * g / peak_gflops);
        }
        printf("%-36s %-11s %8.4f %10s %5.1f%% %9s %7s\n", name, r->type, fwd_ms, bwd, 100.0 * share,
               gf, pct);
    }
    double flops = heed_layer_flops(root);
    double fwd_ms = 1e3 * root->forward_s / (double)calls, bwd_ms = 1e3 * root->backward_s / (double)calls;
    double g = gflops_of(flops, c->batch, root->forward_s / (double)calls);
    /* A training step's FLOPs: the usual estimate of 3x the forward
     * (backward computes both the input and the weight gradients). */
    double step_gflops = gflops_of((c->train ? 3.0 : 1.0) * flops, c->batch, t.median);
    if (json) {
        json_row(c, threads, "(total)", "total", 0, root->forward_calls, fwd_ms, bwd_ms, 1.0,
                 flops * c->batch / 1e9, g, peak_gflops);
        printf(", \"step_ms\": %.4f, \"step_gflops\": %.2f, \"peak_gflops\": %.2f, \"kernel\": \"%s\"}\n",
               1e3 * t.median, step_gflops, peak_gflops, heed_gemm_kernel_name());
    } else {
        char bwd[32] = "";
        if (c->train) snprintf(bwd, sizeof bwd, "%.4f", bwd_ms);
        printf("%-36s %-11s %8.4f %10s %5.1f%% %9.2f %6.1f%%\n", "total (whole network)", "", fwd_ms, bwd,
               100.0, g, peak_gflops > 0 ? 100.0 * g / peak_gflops : 0.0);
        printf("step median %.4f ms (%s), %.2f images/s, %.2f GFLOP/s%s\n", 1e3 * t.median,
               c->train ? "forward, loss, backward, update" : "forward", c->batch / t.median, step_gflops,
               c->train ? " counting 3x the forward FLOPs" : "");
    }
    free(rs.r);
    return 0;
}
