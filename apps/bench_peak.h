/* bench_peak.h -- the machine's float32 FMA ceiling, measured the way
 * shared/bench/peak.c does: a register-only loop of independent FMA chains
 * on the widest vector unit the CPU has.
 *
 *   const char *isa;
 *   double g1 = bench_peak_gflops(1, 0.5, 5, &isa);   // one thread
 *   double ga = bench_peak_gflops(omp_get_num_procs(), 0.5, 5, &isa);
 *
 * Returns the best of `trials` runs of about `seconds` each, in GFLOP/s
 * summed over `threads` threads; *isa names the unit ("avx512", "avx2" or
 * "scalar").
 */
#ifndef HEED_BENCH_PEAK_H
#define HEED_BENCH_PEAK_H

double bench_peak_gflops(int threads, double seconds, int trials, const char **isa);

#endif
