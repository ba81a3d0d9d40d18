/* omp_impl.h -- internal (not installed): the OpenMP run-time calls
 * heed's apps, tests and measurement programs make, and in a build without
 * OpenMP (make OPENMP=0) their one-thread answers, so that callers need no
 * guards:
 *
 *   #include "omp_impl.h"
 *   const double t0 = omp_get_wtime();   (with or without OpenMP)
 *
 * Without OpenMP the compiler ignores the pragmas, every loop runs on the
 * calling thread, and omp_set_num_threads changes nothing. */
#ifndef HEED_OMP_IMPL_H
#define HEED_OMP_IMPL_H

#ifdef _OPENMP
#include <omp.h>
#else
#include <time.h>

static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_in_parallel(void) { return 0; }
static inline void omp_set_num_threads(int n) { (void)n; }
static inline double omp_get_wtime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

#endif
