/* schedule.c -- learning rate as a function of the step.
 *
 *   warm-up (i < W):  lr = base (i + 1) / W
 *   constant:         lr = base
 *   step:             lr = base gamma^floor((i - W) / step_size)
 *   cosine:           lr = min + (base - min) (1 + cos(pi min(i - W, T) / T)) / 2,
 *                     T = total - W
 *
 * Computed in double from the step number (closed forms, no state), so
 * resuming a run at any step gives the same rates as an unbroken one.
 */
#include "schedule.h"

#include <math.h>
#include <strings.h>

/* M_PI is not in strict C11. */
static const double PI = 3.14159265358979323846;

float heed_schedule_lr(const heed_schedule *s, long step) {
    const double base = s->base_lr;
    const long W = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (step < 0) step = 0;
    if (step < W) return (float)(base * (double)(step + 1) / (double)W);
    const long t = step - W;
    switch (s->kind) {
    case HEED_SCHED_CONSTANT: return (float)base;
    case HEED_SCHED_STEP:
        if (s->step_size < 1) return (float)base;
        return (float)(base * pow(s->gamma, (double)(t / s->step_size)));
    case HEED_SCHED_COSINE: {
        /* Compared, not subtracted first: total_steps - W overflows for a
         * total far below zero. */
        const long T = s->total_steps > W ? s->total_steps - W : 1;
        const double tt = t < T ? (double)t : (double)T;
        const double lo = s->min_lr;
        return (float)(lo + (base - lo) * (1.0 + cos(PI * tt / (double)T)) / 2.0);
    }
    }
    return (float)base;
}

static int finite_nonneg(float x) { return x >= 0.0f && !isinf(x); }

heed_status heed_schedule_check(const heed_schedule *s) {
    if (!finite_nonneg(s->base_lr))
        return heed_fail(HEED_ERR_ARG, "schedule: base learning rate %g is not a finite value >= 0",
                         s->base_lr);
    if (s->warmup_steps < 0)
        return heed_fail(HEED_ERR_ARG, "schedule: warm-up of %ld steps is negative", s->warmup_steps);
    switch (s->kind) {
    case HEED_SCHED_CONSTANT: return HEED_OK;
    case HEED_SCHED_STEP:
        if (s->step_size < 1)
            return heed_fail(HEED_ERR_ARG, "step schedule: step size %ld is not >= 1", s->step_size);
        if (!(s->gamma > 0.0f && s->gamma <= 1.0f))
            return heed_fail(HEED_ERR_ARG, "step schedule: gamma %g is outside (0, 1]", s->gamma);
        return HEED_OK;
    case HEED_SCHED_COSINE:
        if (s->total_steps <= s->warmup_steps)
            return heed_fail(HEED_ERR_ARG,
                             "cosine schedule: %ld total steps leave none after %ld warm-up steps",
                             s->total_steps, s->warmup_steps);
        if (!finite_nonneg(s->min_lr) || s->min_lr > s->base_lr)
            return heed_fail(HEED_ERR_ARG,
                             "cosine schedule: final rate %g is not in [0, base rate %g]",
                             s->min_lr, s->base_lr);
        return HEED_OK;
    }
    return heed_fail(HEED_ERR_ARG, "schedule: unknown kind %d", (int)s->kind);
}

heed_status heed_schedule_parse(const char *name, heed_sched_kind *out) {
    static const struct { const char *name; heed_sched_kind kind; } names[] = {
        {"constant", HEED_SCHED_CONSTANT}, {"step", HEED_SCHED_STEP}, {"cosine", HEED_SCHED_COSINE}};
    for (int i = 0; name && i < 3; i++)
        if (strcasecmp(name, names[i].name) == 0) return *out = names[i].kind, HEED_OK;
    return heed_fail(HEED_ERR_ARG, "unknown schedule '%s' (expected constant, step or cosine)",
                     name ? name : "(null)");
}
