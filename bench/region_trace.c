/* region_trace.c -- where a run's OpenMP regions spend their time.
 *
 * A preload library (not linked into heed): it wraps libgomp's
 * GOMP_parallel, the call that every `omp parallel` compiled by GCC makes,
 * and writes one line per region to the file named by REGION_TRACE
 * (region_trace.txt in the working folder without it):
 *
 *   <the call site, a hex offset in its binary> <threads asked> <us since
 *   the previous region ended> <us the region took, fork and join included>
 *
 * The call site (in the function that opened the region) names it: the
 * region's own function may be reached through a PLT stub (a target
 * clone's resolver), which names nothing.
 *
 * The gap is what the calling thread did on its own in between (the other
 * threads wait through it); the duration is the region's wall time. A
 * region called from inside another is written too, its gap then
 * meaningless. bench/region_table.py names the functions and prints
 * medians. Measurement only (`make check` builds it):
 *
 *   make build/bench/region_trace.so
 *   REGION_TRACE=/tmp/r2.txt LD_PRELOAD=build/bench/region_trace.so \
 *       build/heed bench --workload resnet18-cbam --batch 1 --threads 2 --seconds 3
 *   python3 bench/region_table.py build/heed /tmp/r2.txt
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*parallel_fn)(void (*)(void *), void *, unsigned, unsigned);

static FILE *out;
static double last_end;

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags) {
    static parallel_fn real;
    if (!real) real = (parallel_fn)dlsym(RTLD_NEXT, "GOMP_parallel");
    if (!out) {
        const char *path = getenv("REGION_TRACE");
        out = fopen(path ? path : "region_trace.txt", "w");
    }
    void *site = __builtin_return_address(0);
    const double start = now_us();
    real(fn, data, threads, flags);
    const double end = now_us();
    Dl_info info;
    const unsigned long offset =
        dladdr(site, &info) ? (unsigned long)((char *)site - (char *)info.dli_fbase) : 0;
    if (out)
        fprintf(out, "%lx %u %.2f %.2f\n", offset, threads, last_end > 0 ? start - last_end : 0.0,
                end - start);
    last_end = end;
}

__attribute__((destructor)) static void close_trace(void) {
    if (out) fclose(out);
}
