/* schedule.h -- learning-rate schedules: linear warm-up, then constant,
 * step decay or cosine annealing.
 *
 *   heed_schedule s = {.kind = HEED_SCHED_COSINE, .base_lr = 0.1f,
 *                      .total_steps = epochs * batches, .warmup_steps = 500,
 *                      .min_lr = 1e-4f};
 *   if (heed_schedule_check(&s) != HEED_OK) ...
 *   for (long step = 0; step < s.total_steps; step++)
 *       heed_optim_step(&opt, heed_schedule_lr(&s, step));
 *
 * Steps count optimizer updates from 0. During the first warmup_steps
 * steps the rate rises linearly, lr(i) = base_lr (i + 1) / warmup_steps,
 * reaching base_lr on the last warm-up step. From step W = warmup_steps on,
 * with t = step - W:
 *   constant: base_lr
 *   step:     base_lr gamma^floor(t / step_size)     (torch StepLR)
 *   cosine:   min_lr + (base_lr - min_lr) (1 + cos(pi t / T)) / 2 with
 *             T = total_steps - W                     (torch CosineAnnealingLR)
 *             so lr(W) = base_lr and lr(total_steps) = min_lr; steps past
 *             total_steps stay at min_lr instead of rising again.
 */
#ifndef HEED_SCHEDULE_H
#define HEED_SCHEDULE_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_sched_kind { HEED_SCHED_CONSTANT, HEED_SCHED_STEP, HEED_SCHED_COSINE } heed_sched_kind;

typedef struct heed_schedule {
    heed_sched_kind kind;
    float base_lr;
    long total_steps;  /* cosine: the step at which min_lr is reached */
    long warmup_steps; /* 0 = no warm-up */
    long step_size;    /* step: decay every step_size steps after warm-up */
    float gamma;       /* step: the decay factor */
    float min_lr;      /* cosine: the final rate */
} heed_schedule;

/* The learning rate for 0-based `step` (negative steps count as 0). Never
 * fails: settings heed_schedule_check would refuse give a defined value
 * (step_size < 1 means no decay; cosine with T < 1 uses T = 1). */
float heed_schedule_lr(const heed_schedule *s, long step);

/* HEED_ERR_ARG with a message if a setting is out of range: base_lr or
 * min_lr negative or not finite, warmup_steps < 0, step decay with
 * step_size < 1 or gamma outside (0, 1], cosine with total_steps <=
 * warmup_steps or min_lr > base_lr, an unknown kind. */
heed_status heed_schedule_check(const heed_schedule *s);

/* "constant", "step" or "cosine" (any case) into *out; HEED_ERR_ARG
 * naming the accepted names otherwise. */
heed_status heed_schedule_parse(const char *name, heed_sched_kind *out);

#ifdef __cplusplus
}
#endif

#endif
