/* page_share.c -- what it costs two cores to share 4 KB pages.
 *
 * Two threads stream y = x * 0.5 + 1 over 64 planes of 56 x 56 floats
 * (ResNet-18's first stage), each thread over half of the elements, in
 * the three ways a batch-1 layer can split one image:
 *   whole   thread t takes planes t*32 .. t*32+31 (a split by channels);
 *   halves  thread t takes half of every plane (a split by positions, as
 *           the convolutions' bands do): the pages at the middle of each
 *           plane are written by both cores;
 *   padded  as halves, but each plane padded to 4096 floats so that the
 *           two halves never share a page.
 * The read side and the write side are chosen apart (--read, --write) to
 * see which of them pays. Prints microseconds per pass (median of 9
 * blocks of passes). Measurement only (`make check` builds it):
 *
 *   make build/bench/page_share
 *   build/bench/page_share --read halves --write halves
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omp_impl.h"

enum { PLANES = 64, HW = 56 * 56, PADDED = 4096, BLOCKS = 9, PASSES = 2000 };

typedef enum { WHOLE, HALVES, PAD } split;

static int parse(const char *s, split *out) {
    if (!strcmp(s, "whole")) *out = WHOLE;
    else if (!strcmp(s, "halves")) *out = HALVES;
    else if (!strcmp(s, "padded")) *out = PAD;
    else return 0;
    return 1;
}

/* Thread t's share is 64 runs of HW/2 floats; where run j starts. */
static size_t run_start(split s, int t, int j) {
    switch (s) {
    case WHOLE: return (size_t)t * PLANES / 2 * HW + (size_t)j * (HW / 2);
    case HALVES: return (size_t)j * HW + (size_t)t * (HW / 2);
    default: return (size_t)j * PADDED + (size_t)t * (PADDED / 2);
    }
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    split rd = HALVES, wr = HALVES;
    for (int i = 1; i < argc; i += 2)
        if (i + 1 == argc || !((!strcmp(argv[i], "--read") && parse(argv[i + 1], &rd)) ||
                               (!strcmp(argv[i], "--write") && parse(argv[i + 1], &wr)))) {
            fprintf(stderr, "usage: page_share [--read whole|halves|padded] [--write ...]\n");
            return 2;
        }
    const size_t n = (size_t)PLANES * PADDED;
    float *x = aligned_alloc(4096, n * sizeof(float)), *y = aligned_alloc(4096, n * sizeof(float));
    if (!x || !y) return 1;
    memset(x, 0, n * sizeof(float));
    memset(y, 0, n * sizeof(float));
    double us[BLOCKS];
    int team = 0;
#pragma omp parallel num_threads(2)
    {
        const int t = omp_get_thread_num();
#pragma omp master
        team = omp_get_num_threads();
#pragma omp barrier
        for (int b = -1; team == 2 && b < BLOCKS; b++) { /* block -1 warms up */
            double t0 = 0.0;
#pragma omp barrier
#pragma omp master
            t0 = omp_get_wtime();
            for (int r = 0; r < PASSES; r++) {
                for (int j = 0; j < PLANES; j++) {
                    const float *restrict src = x + run_start(rd, t, j);
                    float *restrict dst = y + run_start(wr, t, j);
                    for (int i = 0; i < HW / 2; i++) dst[i] = src[i] * 0.5f + 1.0f;
                }
#pragma omp barrier
            }
#pragma omp master
            if (b >= 0) us[b] = (omp_get_wtime() - t0) / PASSES * 1e6;
        }
    }
    if (team != 2) {
        fprintf(stderr, "page_share: got %d thread(s), needs 2 (OMP_THREAD_LIMIT?)\n", team);
        free(x);
        free(y);
        return 1;
    }
    qsort(us, BLOCKS, sizeof us[0], cmp);
    static const char *name[] = {"whole", "halves", "padded"};
    printf("read %-6s write %-6s %6.1f us per pass\n", name[rd], name[wr], us[BLOCKS / 2]);
    free(x);
    free(y);
    return 0;
}
