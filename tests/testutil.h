/* testutil.h -- shared helpers for the Check suites: random tensors,
 * tolerant comparisons and central-difference gradient checks. */
#ifndef HEED_TESTUTIL_H
#define HEED_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include "rng.h"
#include "layer.h"
#include "tensor.h"

/* Fills v[0..n) with U(lo, hi) from a PCG32 seeded with `seed`. */
void tu_fill_uniform(float *v, size_t n, float lo, float hi, uint64_t seed);

/* Largest |a-b| / max(1, |a|, |b|) over n elements (a "relative-or-absolute"
 * error that is meaningful near zero). */
double tu_max_rel_err(const float *a, const float *b, size_t n);

/* Largest |a[i] - b[i]|, NaN if a difference is NaN (fmax would drop it;
 * GCC 12 for aarch64 also crashes vectorizing an fmax reduction). */
double tu_max_abs_diff(const float *a, const float *b, size_t n);

/* The scalar loss a gradient check differentiates: L = sum_i w_i * y_i with
 * fixed random weights w, so dL/dy = w exercises every output. `eval`
 * computes y from the current inputs/parameters and returns L in double.
 * tu_gradcheck perturbs each of the n floats at v by +-eps, evaluates
 * (L+ - L-)/(2 eps) and compares it to analytic[i]; returns the largest
 * relative error (see tu_max_rel_err) and reports the worst index. */
typedef double (*tu_loss_fn)(void *ctx);
double tu_gradcheck(tu_loss_fn eval, void *ctx, float *v, size_t n, const float *analytic,
                    float eps, size_t *worst);

/* Asserts tu_gradcheck's result is below tol, naming `what` on failure. */
#define TU_GRADCHECK(what, eval, ctx, v, n, analytic, eps, tol)                          \
    do {                                                                                 \
        size_t tu_worst_ = 0;                                                            \
        double tu_err_ = tu_gradcheck(eval, ctx, v, n, analytic, eps, &tu_worst_);       \
        ck_assert_msg(tu_err_ < (tol), "%s: gradient relative error %g at index %zu",    \
                      what, tu_err_, tu_worst_);                                         \
    } while (0)

/* tu_gradcheck for a loss with kinks (maxima, relus): an index whose
 * one-sided differences disagree by more than `kink` (relative-or-absolute;
 * a kink inside the step moves the central difference by half that) is
 * skipped and counted in *skipped; the others must match. Which indices
 * are skipped depends on the loss alone, never on the analytic gradient. */
double tu_gradcheck_kinks(tu_loss_fn eval, void *ctx, float *v, size_t n, const float *analytic,
                          float eps, double kink, size_t *worst, size_t *skipped);

/* Asserts tu_gradcheck_kinks below tol, kinks being one-sided slopes more
 * than 10 tol apart, with at most n / 20 indices skipped. */
#define TU_GRADCHECK_KINKS(what, eval, ctx, v, n, analytic, eps, tol)                    \
    do {                                                                                 \
        size_t tu_worst_ = 0, tu_skip_ = 0;                                              \
        double tu_err_ = tu_gradcheck_kinks(eval, ctx, v, n, analytic, eps, 10 * (tol),  \
                                            &tu_worst_, &tu_skip_);                      \
        ck_assert_msg(tu_err_ < (tol) && tu_skip_ <= (size_t)(n) / 20,                   \
                      "%s: gradient relative error %g at index %zu (%zu of %zu at kinks)", \
                      what, tu_err_, tu_worst_, tu_skip_, (size_t)(n));                  \
    } while (0)

/* L = sum_i w_i y_i in double. */
double tu_weighted_sum(const float *y, const float *w, size_t n);

/* A layer's loss for the gradient checks: L = sum_i w_i y_i of y = l(x),
 * tu_layer_loss(&ctx) being a tu_loss_fn; y is sized by the forward. */
typedef struct tu_layer_ctx {
    heed_layer *l;
    heed_tensor x, y, w;
} tu_layer_ctx;
double tu_layer_loss(void *ctx);

/* Runs the heed binary ($HEED_BIN, else build/heed, made absolute so `pre`
 * may change folder) as `PRE HEED ARGS`, with HEED_PROGRESS=0; its stdout
 * goes to out and its stderr to err, or with err NULL both to out (files
 * in `dir` carry them). Returns the exit code, -1 if it did not exit. */
int tu_run_heed(const char *dir, const char *pre, const char *args, char *out, size_t outsize,
                char *err, size_t errsize);

/* The heed binary tu_run_heed runs, as an absolute path, into out. */
void tu_heed_bin(char *out, size_t size);

/* The text of the file at path into buf (size bytes, cut to fit, always
 * terminated; "" if it cannot be read). */
void tu_read_file(const char *path, char *buf, size_t size);

/* Writes text to the file at path, replacing it (the test fails if it
 * cannot). */
void tu_write_text(const char *path, const char *text);

/* The bytes of the file at path (malloc'd, *size of them), or NULL. */
unsigned char *tu_read_bytes(const char *path, size_t *size);

/* A fresh scratch folder /tmp/heed-check-NAME-PID written into dir (size
 * bytes), created (mkdir -p); returns 0, or -1 if it could not be. */
int tu_scratch_dir(char *dir, size_t size, const char *name);

/* Removes the folder and what it holds (rm -rf); errors are ignored. */
void tu_remove_dir(const char *dir);

#endif
