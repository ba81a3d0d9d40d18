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
 */
#ifndef HEED_PARALLEL_H
#define HEED_PARALLEL_H

/* Loops over fewer floats than this are not worth waking threads for. */
#define PAR_MIN ((size_t)1 << 15)

#define PARALLEL_IF(cond, directive, ...)                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            _Pragma(directive) __VA_ARGS__                                                         \
        } else {                                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

#define PARALLEL_SIMD_IF(cond, ...)                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            _Pragma("omp parallel for simd schedule(simd : static)") __VA_ARGS__                   \
        } else {                                                                                   \
            _Pragma("omp simd") __VA_ARGS__                                                        \
        }                                                                                          \
    } while (0)

#endif
