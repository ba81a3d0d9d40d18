/* rng.h -- a small, fast, seedable random number generator (PCG32).
 *
 *   heed_rng r;
 *   heed_rng_seed(&r, 42, 0);
 *   float u = heed_rng_uniform(&r);      // [0, 1)
 *   float z = heed_rng_normal(&r);       // N(0, 1)
 *
 * Every random choice in heed (weight init, dropout, augmentation, RAM's
 * sampling, data generation) draws from one of these, seeded explicitly, so
 * runs with the same seed and thread count are identical. `stream` selects
 * one of 2^63 independent sequences for the same seed (e.g. one per thread).
 */
#ifndef HEED_RNG_H
#define HEED_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_rng {
    uint64_t state, inc;
} heed_rng;

void heed_rng_seed(heed_rng *r, uint64_t seed, uint64_t stream);
uint32_t heed_rng_u32(heed_rng *r);
/* Uniform integer in [0, n), unbiased; n >= 1. */
uint32_t heed_rng_below(heed_rng *r, uint32_t n);
/* Uniform float in [0, 1). */
float heed_rng_uniform(heed_rng *r);
/* Standard normal (Box-Muller on two uniforms). */
float heed_rng_normal(heed_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void heed_rng_shuffle(heed_rng *r, int *idx, int n);

#ifdef __cplusplus
}
#endif

#endif
