/* balance.c -- learnt thread speeds (balance_impl.h). */
#include "balance_impl.h"

/* A share under this many seconds is mostly the cost of starting it. */
#define MIN_SECONDS 20e-6
/* Weight of the newest timing in the moving average. */
#define NEWEST 0.25
/* Speeds (relative to a team's mean of 1) stay within [1/SPREAD, SPREAD]:
 * one bad timing (a preempted thread) must not starve a thread of work. */
#define SPREAD 2.0

static double speed_of(const float *speed, int t) { return speed[t] > 0.0f ? speed[t] : 1.0; }

void heed_balance_cuts(const float *speed, int T, double *cut) {
    double total = 0.0, sum = 0.0;
    for (int t = 0; t < T; t++) total += speed_of(speed, t);
    cut[0] = 0.0;
    for (int t = 0; t < T; t++) {
        sum += speed_of(speed, t);
        cut[t + 1] = sum / total;
    }
    cut[T] = 1.0;
}

double heed_balance_max_share(int T) {
    return T < 2 ? 1.0 : SPREAD / (SPREAD + (T - 1) / SPREAD);
}

int heed_balance_most_units(int T, int total, int pieces) {
    const int share = (int)(heed_balance_max_share(T) * total) + 1;
    const int most = (share + pieces - 1) / pieces + 1;
    return most < total ? most : total;
}

void heed_balance_split(const float *speed, int T, int total, int step, int *at, double *cut) {
    heed_balance_cuts(speed, T, cut);
    for (int t = 0; t <= T; t++) {
        const int units = (int)(cut[t] * total / step + 0.5) * step;
        at[t] = t == T || units > total ? total : units;
        cut[t] = (double)at[t] / total;
    }
}

void heed_balance_note(float *speed, int T, const double *cut, const double *seconds) {
    if (T < 2) return;
    double mean = 0.0;
    for (int t = 0; t < T; t++) {
        if (seconds[t] < MIN_SECONDS) return;
        mean += (cut[t + 1] - cut[t]) / seconds[t] / T;
    }
    for (int t = 0; t < T; t++) {
        const double rate = (cut[t + 1] - cut[t]) / seconds[t] / mean;
        double s = (1.0 - NEWEST) * speed_of(speed, t) + NEWEST * rate;
        s = s < 1.0 / SPREAD ? 1.0 / SPREAD : s > SPREAD ? SPREAD : s;
        speed[t] = (float)s;
    }
}
