/* handoff.c -- what a pass pays for reading what the other core wrote.
 *
 * Two passes alternate over two buffers of C x H x W floats, as a batch-1
 * network's layers do over its two activation buffers: the producer reads
 * buffer 0 and writes buffer 1 (y = x * 0.5 + 1), the consumer reads
 * buffer 1 and writes buffer 0 (y = x * 1.5). Each pass is split between
 * two threads one of three ways:
 *   one     thread 0 alone (a layer too small to share, run serially);
 *   planes  thread t takes planes t*C/2 onwards (a split by channels);
 *   halves  thread t takes half of every plane (a split by positions, as
 *           the convolutions' bands cut one image).
 * So `--producer halves --consumer one` is a convolution's output read by
 * a serial pass after it (SE's scaling at W1's batch 1), and `--producer
 * one --consumer one` the same work with nothing crossing between cores.
 * Prints each pass's microseconds (median of 9 blocks of passes).
 * Measurement only (`make check` builds it):
 *
 *   make build/bench/handoff
 *   build/bench/handoff --producer halves --consumer one 32 28 28
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omp_impl.h"

enum { BLOCKS = 9, PASSES = 2000 };

typedef enum { ONE, PLANES, HALVES, SPLITS } split;

static const char *const split_name[SPLITS] = {"one", "planes", "halves"};

/* The split named s into *out; 0 if none is. */
static int parse(const char *s, split *out) {
    for (int i = 0; i < SPLITS; i++)
        if (!strcmp(s, split_name[i])) {
            *out = (split)i;
            return 1;
        }
    return 0;
}

/* Thread t's share of a pass under s, y[i] = x[i] * a + b over `runs`
 * runs of `len` floats, the first at `first`, `stride` apart. */
static void pass(split s, int t, int C, int HW, const float *restrict x, float *restrict y,
                 float a, float b) {
    const size_t all = (size_t)C * HW, mid = (size_t)HW / 2 / 16 * 16; /* whole vectors */
    size_t runs = 1, first = 0, stride = 0, len = t ? 0 : all;          /* ONE */
    if (s == PLANES) first = t * all / 2, len = all / 2; /* C is even */
    if (s == HALVES) runs = C, stride = HW, first = t ? mid : 0, len = t ? HW - mid : mid;
    for (size_t r = 0; r < runs; r++)
        for (size_t i = first + r * stride; i < first + r * stride + len; i++) y[i] = x[i] * a + b;
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int usage(void) {
    fprintf(stderr, "usage: handoff [--producer one|planes|halves] [--consumer ...] [C H W]\n");
    return 2;
}

int main(int argc, char **argv) {
    split ps = HALVES, cs = ONE;
    int dims[3] = {32, 28, 28}, ndims = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--producer") || !strcmp(argv[i], "--consumer")) {
            if (i + 1 == argc || !parse(argv[i + 1], argv[i][2] == 'p' ? &ps : &cs)) return usage();
            i++;
        } else if (ndims < 3 && atoi(argv[i]) > 0) {
            dims[ndims++] = atoi(argv[i]);
        } else {
            return usage();
        }
    }
    if (ndims != 0 && ndims != 3) return usage();
    const int C = dims[0] - dims[0] % 2, HW = dims[1] * dims[2];
    if (C < 2 || HW < 32) return usage();
    const size_t n = (size_t)C * HW;
    const size_t bytes = (n * sizeof(float) + 4095) / 4096 * 4096; /* aligned_alloc's rule */
    float *buf[2] = {aligned_alloc(4096, bytes), aligned_alloc(4096, bytes)};
    if (!buf[0] || !buf[1]) return 1;
    memset(buf[0], 0, n * sizeof(float));
    memset(buf[1], 0, n * sizeof(float));
    double produce[BLOCKS], consume[BLOCKS];
    int team = 0;
#pragma omp parallel num_threads(2)
    {
        const int t = omp_get_thread_num();
#pragma omp master
        team = omp_get_num_threads();
#pragma omp barrier
        for (int b = -1; team == 2 && b < BLOCKS; b++) { /* block -1 warms up */
            double tp = 0.0, tc = 0.0;
            for (int r = 0; r < PASSES; r++) {
                double t0 = 0.0;
#pragma omp barrier
#pragma omp master
                t0 = omp_get_wtime();
                pass(ps, t, C, HW, buf[0], buf[1], 0.5f, 1.0f);
#pragma omp barrier
#pragma omp master
                {
                    const double t1 = omp_get_wtime();
                    tp += t1 - t0;
                    t0 = t1;
                }
                pass(cs, t, C, HW, buf[1], buf[0], 1.5f, 0.0f);
#pragma omp barrier
#pragma omp master
                tc += omp_get_wtime() - t0;
            }
#pragma omp master
            if (b >= 0) produce[b] = tp / PASSES * 1e6, consume[b] = tc / PASSES * 1e6;
        }
    }
    free(buf[0]);
    free(buf[1]);
    if (team != 2) {
        fprintf(stderr, "handoff: got %d thread(s), needs 2 (OMP_THREAD_LIMIT?)\n", team);
        return 1;
    }
    qsort(produce, BLOCKS, sizeof produce[0], cmp);
    qsort(consume, BLOCKS, sizeof consume[0], cmp);
    printf("%d x %d x %d: producer %-6s %7.1f us, consumer %-6s %7.1f us per pass\n", C, dims[1],
           dims[2], split_name[ps], produce[BLOCKS / 2], split_name[cs], consume[BLOCKS / 2]);
    return 0;
}
