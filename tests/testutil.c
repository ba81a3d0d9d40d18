/* testutil.c -- see testutil.h. */
#include "testutil.h"

#include <math.h>

void tu_fill_uniform(float *v, size_t n, float lo, float hi, uint64_t seed) {
    heed_rng r;
    heed_rng_seed(&r, seed, 7);
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * heed_rng_uniform(&r);
}

static double rel_err(double a, double b) {
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) / scale;
}

double tu_max_rel_err(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = rel_err(a[i], b[i]);
        if (!(e <= worst)) worst = e; /* NaN counts as worst */
    }
    return worst;
}

double tu_gradcheck(tu_loss_fn eval, void *ctx, float *v, size_t n, const float *analytic,
                    float eps, size_t *worst) {
    double max_err = 0.0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        float saved = v[i];
        v[i] = saved + eps;
        double lp = eval(ctx);
        v[i] = saved - eps;
        double lm = eval(ctx);
        v[i] = saved;
        /* The step actually taken in float, not the nominal eps. */
        double h = (double)(saved + eps) - (double)(saved - eps);
        double numeric = (lp - lm) / h;
        double e = rel_err(numeric, analytic[i]);
        if (!(e <= max_err)) {
            max_err = e;
            *worst = i;
        }
    }
    return max_err;
}

double tu_weighted_sum(const float *y, const float *w, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * w[i];
    return s;
}
