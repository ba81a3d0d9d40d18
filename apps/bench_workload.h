/* bench_workload.h -- the benchmark workloads of shared/bench/WORKLOADS.md
 * (`heed bench --workload NAME`): a network file with seeded random
 * weights, a seeded random batch, and one step -- an inference forward, or
 * a whole training step -- timed the way shared/bench/peer_torch.py times
 * its PyTorch twin, so the two can be compared line by line.
 *
 *   char path[4096];
 *   if (!bench_find_net("fmnist-cbam", NULL, path, sizeof path)) ...   // nets/fmnist-cbam.net
 *   bench_case c;
 *   if (bench_case_open(&c, path, "fmnist-cbam", 1, 64, 1) != HEED_OK) ...
 *   bench_warm_up(&c, 1.0);                 // >= 3 steps and 1 s
 *   bench_times t;
 *   bench_time_steps(&c, 5.0, &t);          // >= 5 steps and 5 s; median, min, max
 *   bench_case_close(&c);
 *
 * A training step is what peer_torch.py's is: zero the gradients, forward
 * (batch norm on batch statistics), softmax cross-entropy, the labels to
 * the layers that take them (RAM's REINFORCE and baseline terms), backward,
 * and an SGD step (lr 0.01, momentum 0.9, no weight decay). An inference
 * step is a forward with training off (batch norm on running statistics,
 * RAM following its policy's means).
 */
#ifndef HEED_BENCH_WORKLOAD_H
#define HEED_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net.h"
#include "optim.h"

typedef struct bench_case {
    char workload[64]; /* the name printed: the workload, or the network file's stem */
    int train, batch;
    int classes;       /* outputs per image */
    heed_net *net;     /* owned */
    heed_tensor x;     /* (batch, in_c, in_h, in_w): N(0, 1), or U[0, 1) for RAM */
    heed_tensor y, dy; /* (batch, classes, 1, 1) logits and their gradient */
    int *labels;       /* (batch) uniform over the classes */
    heed_optim opt;    /* train only */
} bench_case;

/* Seconds per step over the timed steps. */
typedef struct bench_times {
    double median, min, max;
    int iters;
} bench_times;

/* The workloads WORKLOADS.md defines (the stems of their network files),
 * NULL-terminated. */
extern const char *const bench_workload_names[];

/* Finds NAME.net, first found wins: in `dir` alone when it is not NULL
 * (--nets), else in $HEED_NETS alone when set, else in ./nets, then beside
 * the executable (EXE_DIR/../nets and EXE_DIR/../../nets for build trees,
 * EXE_DIR/../share/heed/nets for `make install`). Writes the file's path
 * into path and returns 1; returns 0 if there is none (path then lists
 * the folders searched) or NAME is not a plain name -- letters, digits,
 * '-', '_', '.', not starting with '.' (path then is ""). */
int bench_find_net(const char *name, const char *dir, char *path, size_t size);

/* Loads the network at `path` with weights from `seed`, allocates the
 * batch and draws it (inputs and labels, from `seed` too), and for
 * training the optimizer. *c is zeroed first and safe to close on
 * failure. Errors: the network file's, HEED_ERR_ARG for batch < 1,
 * HEED_ERR_NOMEM. */
heed_status bench_case_open(bench_case *c, const char *path, const char *workload, int train,
                            int batch, uint64_t seed);

/* One step (see the top of this file). */
heed_status bench_case_step(bench_case *c);

/* Steps until at least 3 have run and `seconds` have passed. */
heed_status bench_warm_up(bench_case *c, double seconds);

/* Timed steps until at least 5 have run and `seconds` have passed; the
 * median, fastest and slowest into *t. */
heed_status bench_time_steps(bench_case *c, double seconds, bench_times *t);

void bench_case_close(bench_case *c);

/* The process's peak resident memory so far, in MB (2^20 bytes). */
double bench_peak_rss_mb(void);


/* `heed bench --workload NAME --layers`: times `seconds` of steps (after
 * warm_s of warm-up) with per-layer timing on and prints one row per
 * layer that does its own work -- every leaf layer that ran, and the own
 * work of composite layers beside their children (a residual block's
 * addition, an attention module's pooling and scaling) -- with its forward
 * (and, training, backward) milliseconds per call, forward GFLOP/s and that
 * as a percentage of peak_gflops; then the totals. json: one object per
 * row. Returns the command's exit status (errors printed). */
int bench_layers_report(bench_case *c, double warm_s, double seconds, int threads,
                        double peak_gflops, int peak_measured, int json);

#endif
