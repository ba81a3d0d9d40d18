/* parallel.h -- internal: loops that take threads only when worth it.
 *
 *   PARALLEL_IF(n > PAR_MIN, "omp parallel for schedule(static)",
 *       for (size_t i = 0; i < n; i++) y[i] = 2.0f * x[i];);
 *
 * runs the loop (or block) under the directive when the condition holds,
 * else as plain code. Not an OpenMP `if` clause: for a region whose `if`
 * is false libgomp still builds a one-thread team (a malloc and a free,
 * 1.1-1.5 us measured on the benchmark machine), and an inference step at
 * batch 1 passes dozens of loops shorter than that. PARALLEL_SIMD_IF is
 * the same for a `parallel for simd` loop, which stays `simd` when serial.
 * Directives inside the code are written _Pragma("omp simd"): a #pragma
 * line cannot stand in a macro argument.
 *
 * Inside a running parallel region (a loop called from a convolution's
 * bands, each on its own thread) the loop also runs plain: a nested region
 * would get one thread anyway, and cost the same empty team (ResNet-18's
 * stem built eight of them per forward).
 */
#ifndef HEED_PARALLEL_H
#define HEED_PARALLEL_H

#include "error.h"

#ifdef _OPENMP
#include <omp.h>
#define PAR_NESTED() omp_in_parallel()
#else
#define PAR_NESTED() 0
#endif

/* Loops over fewer floats than this are not worth waking threads for. */
#define PAR_MIN ((size_t)1 << 15)

#define PARALLEL_IF(cond, directive, ...)                                                          \
    do {                                                                                           \
        if ((cond) && !PAR_NESTED()) {                                                             \
            _Pragma(directive) __VA_ARGS__                                                         \
        } else {                                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

#define PARALLEL_SIMD_IF(cond, ...)                                                                \
    do {                                                                                           \
        if ((cond) && !PAR_NESTED()) {                                                             \
            _Pragma("omp parallel for simd schedule(simd : static)") __VA_ARGS__                   \
        } else {                                                                                   \
            _Pragma("omp simd") __VA_ARGS__                                                        \
        }                                                                                          \
    } while (0)

/* Records a worker's failure in a parallel region's shared status (any
 * one failure will do: the caller reports that a worker failed, its
 * message having stayed in the worker's thread); returns s. */
static inline heed_status par_note(heed_status *st, heed_status s) {
    if (s != HEED_OK) {
#pragma omp atomic write
        *st = s;
    }
    return s;
}

/* After a parallel region: HEED_OK, or its workers' failure, naming the
 * function and the layer. */
static inline heed_status par_workers_done(heed_status st, const char *fn, const char *name) {
    if (st == HEED_OK) return HEED_OK;
    return heed_fail(st, "%s %s: a worker thread failed (%s)", fn, name, heed_status_name(st));
}

#endif
