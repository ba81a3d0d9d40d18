/* rng.c -- PCG32 (O'Neill, 2014): 64-bit LCG state, xorshift-rotate output. */
#include "rng.h"

#include <math.h>

void heed_rng_seed(heed_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    heed_rng_u32(r);
    r->state += seed;
    heed_rng_u32(r);
}

uint32_t heed_rng_u32(heed_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t heed_rng_below(heed_rng *r, uint32_t n) {
    /* Reject the top partial range so every value is equally likely. */
    uint32_t threshold = -n % n;
    for (;;) {
        uint32_t x = heed_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

float heed_rng_uniform(heed_rng *r) { return (float)(heed_rng_u32(r) >> 8) * 0x1p-24f; }

float heed_rng_normal(heed_rng *r) {
    /* 1 - u is in (0, 1], so the log is finite. */
    double u1 = 1.0 - heed_rng_uniform(r), u2 = heed_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void heed_rng_shuffle(heed_rng *r, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)heed_rng_below(r, (uint32_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
