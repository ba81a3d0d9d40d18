/* wide.h -- internal: HEED_WIDE marks a hot loop function to be compiled
 * three times, for AVX-512 (x86-64-v4), for AVX2+FMA (x86-64-v3) and for
 * the baseline, with the best one picked when the library loads.
 *
 *   HEED_WIDE static void scale_row(float *y, const float *x, int n, float a) { ... }
 *
 * The library is built for the baseline x86-64 so that one binary runs on
 * any x86-64 CPU; its element-wise loops (batch norm, pooling, attention)
 * then vectorize only to SSE's 4 floats, and on a CPU with 16-float
 * registers they stream several times slower than memory allows. Only
 * functions with loops worth it carry the mark: each clone costs code size.
 * Results: the build is ISO C (-std=c11), where GCC does not contract
 * a*b+c into a fused multiply-add, so element-wise loops do the baseline's
 * float operations in every version (those marked HEED_FUSED excepted). Sums written with explicit lanes (as
 * in batchnorm.c) add in the same order too; an `omp simd reduction` may
 * group its partial sums by the vector width, so its last bits can differ
 * from one CPU to another -- never from run to run or with the thread
 * count on one machine.
 */
#ifndef HEED_WIDE_H
#define HEED_WIDE_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define HEED_WIDE __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HEED_WIDE
#endif

/* HEED_FUSED marks a function whose a*b+c may become fused multiply-adds
 * where the CPU has them (its clones for x86-64-v3 and up): for a loop
 * that is all multiply-adds, whose last bits may then differ from one CPU
 * to another (never with the thread count). Clang contracts within an
 * expression by default. */
#if defined(__GNUC__) && !defined(__clang__)
#define HEED_FUSED __attribute__((optimize("fp-contract=fast")))
#else
#define HEED_FUSED
#endif

#endif
