/* bench_peak.c -- see bench_peak.h. Each loop keeps NACC accumulators in
 * registers and updates each with one FMA per iteration (acc = acc * a + b,
 * which converges to b / (1 - a): no overflow, no denormals): NACC chains
 * cover the FMA latency times the number of FMA pipes, and nothing touches
 * memory. One FMA on a W-lane vector counts as 2 W FLOPs. The apps are
 * built without -march flags, so the loops carry target attributes and are
 * picked after checking the CPU. */
#include "bench_peak.h"
#include "omp_impl.h"


#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* 16 zmm accumulators + 2 constants fit the 32 registers. */
__attribute__((target("avx512f"), noinline)) static float loop_avx512(long iters, float seed) {
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(seed);
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(seed * (float)(i + 1));
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

/* 12 ymm accumulators + 2 constants fit the 16 registers. */
__attribute__((target("avx2,fma"), noinline)) static float loop_avx2(long iters, float seed) {
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(seed);
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(seed * (float)(i + 1));
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

/* Without vector FMA: 8 scalar chains of multiply-add (2 FLOPs each). */
__attribute__((noinline)) static float loop_scalar(long iters, float seed) {
    float acc[8];
    for (int i = 0; i < 8; i++) acc[i] = seed * (float)(i + 1);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) acc[i] = acc[i] * 0.999999f + seed;
    float s = 0.0f;
    for (int i = 0; i < 8; i++) s += acc[i];
    return s;
}

typedef float (*loop_fn)(long, float);

static loop_fn pick(const char **isa, double *flops_per_iter) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512";
        *flops_per_iter = 2.0 * 16 * 16;
        return loop_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *isa = "avx2";
        *flops_per_iter = 2.0 * 8 * 12;
        return loop_avx2;
    }
#endif
    *isa = "scalar";
    *flops_per_iter = 2.0 * 8;
    return loop_scalar;
}

double bench_peak_gflops(int threads, double seconds, int trials, const char **isa) {
    double fpi;
    loop_fn loop = pick(isa, &fpi);
    volatile float sink = 0.0f;
    /* Calibrate the iteration count on one thread. */
    long iters = 1 << 16;
    for (;;) {
        double t0 = omp_get_wtime();
        sink += loop(iters, 1e-3f);
        double dt = omp_get_wtime() - t0;
        if (dt > 0.05) {
            const double want = iters * seconds / dt;
            iters = want < 1 ? 1 : want > 1e15 ? (long)1e15 : (long)want;
            break;
        }
        iters *= 2;
    }
    double best = 0.0;
    for (int t = 0; t < trials; t++) {
        double t0 = 0.0, t1 = 0.0;
        float partial = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : partial)
        {
#pragma omp barrier
#pragma omp master
            t0 = omp_get_wtime();
            partial += loop(iters, 1e-3f * (float)(omp_get_thread_num() + 1));
#pragma omp barrier
#pragma omp master
            t1 = omp_get_wtime();
        }
        sink += partial;
        double g = fpi * (double)iters * threads / (t1 - t0) / 1e9;
        if (g > best) best = g;
    }
    (void)sink;
    return best;
}
