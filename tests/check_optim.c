/* check_optim.c -- SGD and AdamW against updates computed by hand (in
 * double, from the formulas of torch.optim's documentation), weight decay
 * only on HEED_PARAM_DECAY entries, buffers untouched, state that can be
 * saved and restored, the threaded path on a long entry, bad settings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "tensor.h"
#include "testutil.h"

/* A store of three entries: a decayed weight, a bias, a buffer. */
typedef struct toy {
    heed_params p;
    float *w, *dw; /* (3) HEED_PARAM_DECAY */
    float *b, *db; /* (2) no flags */
    float *r;      /* (2) HEED_PARAM_BUFFER */
} toy;

static const float W0[3] = {1.0f, -2.0f, 0.5f}, B0[2] = {0.25f, -0.75f}, R0[2] = {3.0f, 4.0f};

static void toy_make(toy *t) {
    *t = (toy){0};
    ck_assert_int_eq(heed_params_add(&t->p, "w", 1, (int[]){3}, HEED_INIT_ZEROS, 1,
                                     HEED_PARAM_DECAY, &t->w, &t->dw), HEED_OK);
    ck_assert_int_eq(heed_params_add(&t->p, "b", 1, (int[]){2}, HEED_INIT_ZEROS, 1, 0, &t->b,
                                     &t->db), HEED_OK);
    ck_assert_int_eq(heed_params_add(&t->p, "r", 1, (int[]){2}, HEED_INIT_ZEROS, 1,
                                     HEED_PARAM_BUFFER, &t->r, NULL), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&t->p, 1), HEED_OK);
    memcpy(t->w, W0, sizeof W0), memcpy(t->b, B0, sizeof B0), memcpy(t->r, R0, sizeof R0);
}

/* Gradients for step s (1 or 2); the buffer's slots in grads get junk that
 * an optimizer must ignore. */
static void toy_grads(toy *t, int s) {
    const float g1[5] = {0.5f, -1.0f, 2.0f, 0.1f, -0.3f}, g2[5] = {-0.2f, 0.4f, 1.5f, -0.6f, 0.9f};
    const float *g = s == 1 ? g1 : g2;
    memcpy(t->dw, g, 3 * sizeof(float));
    memcpy(t->db, g + 3, 2 * sizeof(float));
    heed_param *r = heed_params_find(&t->p, "r");
    for (size_t i = 0; i < r->count; i++) t->p.grads[r->offset + i] = 100.0f;
}

/* The 5 trainable values as doubles: w then b. */
static void toy_start(double v[5]) {
    for (int i = 0; i < 3; i++) v[i] = W0[i];
    for (int i = 0; i < 2; i++) v[3 + i] = B0[i];
}

static void toy_expect(const toy *t, const double want[5], double tol) {
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs(t->w[i] - want[i]) <= tol, "w[%d] = %.9g, expected %.9g", i, t->w[i],
                      want[i]);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(fabs(t->b[i] - want[3 + i]) <= tol, "b[%d] = %.9g, expected %.9g", i,
                      t->b[i], want[3 + i]);
    ck_assert_float_eq(t->r[0], R0[0]);
    ck_assert_float_eq(t->r[1], R0[1]);
}

static double grad_of(int step, int i) {
    const double g1[5] = {0.5, -1.0, 2.0, 0.1, -0.3}, g2[5] = {-0.2, 0.4, 1.5, -0.6, 0.9};
    return (step == 1 ? g1 : g2)[i];
}

START_TEST(sgd_plain_decays_only_weights) {
    toy t;
    toy_make(&t);
    heed_optim o;
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.kind = HEED_OPTIM_SGD, .lr = 0.1f,
                                                           .weight_decay = 0.1f}, &t.p), HEED_OK);
    ck_assert_ptr_null(o.m);
    ck_assert_ptr_null(o.v);
    toy_grads(&t, 1);
    heed_optim_step(&o, 0.1f);
    /* w0 = 1, g = 0.5: 1 - 0.1 (0.5 + 0.1 * 1) = 0.94; b0 = 0.25, g = 0.1: 0.24. */
    ck_assert_float_eq_tol(t.w[0], 0.94f, 1e-6f);
    ck_assert_float_eq_tol(t.b[0], 0.24f, 1e-6f);
    double want[5];
    toy_start(want);
    for (int i = 0; i < 5; i++) want[i] -= 0.1 * (grad_of(1, i) + (i < 3 ? 0.1 * want[i] : 0.0));
    toy_expect(&t, want, 1e-6);
    ck_assert_int_eq(o.steps, 1);
    /* The step's rate, not cfg.lr, is used. */
    float before[3];
    memcpy(before, t.w, sizeof before);
    toy_grads(&t, 2);
    heed_optim_step(&o, 0.0f);
    ck_assert_mem_eq(t.w, before, sizeof before);
    heed_optim_free(&o);
    heed_params_free(&t.p);
}
END_TEST

/* Two steps of SGD with momentum mu, Nesterov or not, by hand. */
static void sgd_momentum_case(int nesterov) {
    const double lr = 0.05, mu = 0.9, wd = 0.01;
    toy t;
    toy_make(&t);
    heed_optim o;
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.kind = HEED_OPTIM_SGD, .lr = 0.05f,
                                                           .momentum = 0.9f, .weight_decay = 0.01f,
                                                           .nesterov = nesterov}, &t.p),
                     HEED_OK);
    ck_assert_ptr_nonnull(o.m);
    ck_assert_ptr_null(o.v);
    double w[5], buf[5];
    toy_start(w);
    for (int s = 1; s <= 2; s++) {
        toy_grads(&t, s);
        heed_optim_step(&o, 0.05f);
        for (int i = 0; i < 5; i++) {
            double g = grad_of(s, i) + (i < 3 ? wd * w[i] : 0.0);
            buf[i] = s == 1 ? g : mu * buf[i] + g;
            w[i] -= lr * (nesterov ? g + mu * buf[i] : buf[i]);
        }
        toy_expect(&t, w, 1e-6);
        /* The momentum buffers are the exposed state m. */
        heed_param *b = heed_params_find(&t.p, "b");
        ck_assert_double_eq_tol(o.m[b->offset + 1], buf[4], 1e-6);
    }
    heed_optim_free(&o);
    heed_params_free(&t.p);
}

START_TEST(sgd_momentum_two_steps) { sgd_momentum_case(0); }
END_TEST

START_TEST(sgd_nesterov_two_steps) { sgd_momentum_case(1); }
END_TEST

START_TEST(adamw_two_steps) {
    const double lr = 0.01, b1 = 0.8, b2 = 0.95, eps = 1e-3, wd = 0.5;
    toy t;
    toy_make(&t);
    heed_optim o;
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.kind = HEED_OPTIM_ADAMW, .lr = 0.01f,
                                                           .weight_decay = 0.5f, .beta1 = 0.8f,
                                                           .beta2 = 0.95f, .eps = 1e-3f}, &t.p),
                     HEED_OK);
    double w[5], m[5] = {0}, v[5] = {0};
    toy_start(w);
    for (int s = 1; s <= 2; s++) {
        toy_grads(&t, s);
        heed_optim_step(&o, 0.01f);
        for (int i = 0; i < 5; i++) {
            const double g = grad_of(s, i);
            if (i < 3) w[i] -= lr * wd * w[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            const double mhat = m[i] / (1 - pow(b1, s)), vhat = v[i] / (1 - pow(b2, s));
            w[i] -= lr * mhat / (sqrt(vhat) + eps);
        }
        toy_expect(&t, w, 2e-6);
        heed_param *wp = heed_params_find(&t.p, "w");
        ck_assert_double_eq_tol(o.m[wp->offset + 2], m[2], 1e-6);
        ck_assert_double_eq_tol(o.v[wp->offset + 2], v[2], 1e-6);
    }
    ck_assert_int_eq(o.steps, 2);
    heed_optim_free(&o);
    heed_params_free(&t.p);
}
END_TEST

START_TEST(adamw_defaults_fill_in) {
    toy t;
    toy_make(&t);
    heed_optim o;
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.kind = HEED_OPTIM_ADAMW, .lr = 1e-3f},
                                     &t.p), HEED_OK);
    ck_assert_float_eq(o.cfg.beta1, 0.9f);
    ck_assert_float_eq(o.cfg.beta2, 0.999f);
    ck_assert_float_eq(o.cfg.eps, 1e-8f);
    /* The first Adam step moves every element with a gradient by about lr
     * (m_hat / sqrt(v_hat) = sign(g)), whatever the gradient's size. */
    toy_grads(&t, 1);
    heed_optim_step(&o, 1e-3f);
    ck_assert_float_eq_tol(t.w[0], W0[0] - 1e-3f, 1e-7f);
    ck_assert_float_eq_tol(t.w[1], W0[1] + 1e-3f, 1e-7f);
    ck_assert_float_eq_tol(t.b[1], B0[1] + 1e-3f, 1e-7f);
    heed_optim_free(&o);
    heed_params_free(&t.p);
}
END_TEST

/* Three steps straight, against two steps, a checkpoint of (m, v, steps)
 * into a fresh optimizer, and a third step: identical values. */
static void resume_case(const heed_optim_cfg *cfg) {
    toy a, b;
    toy_make(&a), toy_make(&b);
    heed_optim oa, ob;
    ck_assert_int_eq(heed_optim_init(&oa, cfg, &a.p), HEED_OK);
    ck_assert_int_eq(heed_optim_init(&ob, cfg, &b.p), HEED_OK);
    for (int s = 1; s <= 2; s++) {
        toy_grads(&a, s), heed_optim_step(&oa, 0.02f);
        toy_grads(&b, s), heed_optim_step(&ob, 0.02f);
    }
    const size_t total = b.p.total;
    heed_optim oc;
    ck_assert_int_eq(heed_optim_init(&oc, cfg, &b.p), HEED_OK);
    if (ob.m) memcpy(oc.m, ob.m, total * sizeof(float));
    if (ob.v) memcpy(oc.v, ob.v, total * sizeof(float));
    oc.steps = ob.steps;
    heed_optim_free(&ob);
    toy_grads(&a, 1), heed_optim_step(&oa, 0.02f);
    toy_grads(&b, 1), heed_optim_step(&oc, 0.02f);
    ck_assert_mem_eq(a.p.values, b.p.values, total * sizeof(float));
    ck_assert_int_eq(oc.steps, 3);
    heed_optim_free(&oa), heed_optim_free(&oc);
    heed_params_free(&a.p), heed_params_free(&b.p);
}

START_TEST(state_saves_and_restores) {
    resume_case(&(heed_optim_cfg){.kind = HEED_OPTIM_SGD, .lr = 0.02f, .momentum = 0.9f,
                                  .weight_decay = 1e-2f, .nesterov = 1});
    resume_case(&(heed_optim_cfg){.kind = HEED_OPTIM_ADAMW, .lr = 0.02f, .weight_decay = 1e-2f});
}
END_TEST

/* An entry long enough to be split across threads agrees with an
 * element-by-element double computation. */
START_TEST(long_entries_match_the_formula) {
    enum { N = 100003 };
    heed_params p = {0};
    float *w, *dw;
    ck_assert_int_eq(heed_params_add(&p, "big", 2, (int[]){N, 1}, HEED_INIT_UNIFORM, 4,
                                     HEED_PARAM_DECAY, &w, &dw), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 3), HEED_OK);
    tu_fill_uniform(dw, N, -1, 1, 5);
    float *w0 = malloc(N * sizeof(float));
    memcpy(w0, w, N * sizeof(float));
    for (int kind = 0; kind < 2; kind++) {
        memcpy(w, w0, N * sizeof(float));
        heed_optim o;
        heed_optim_cfg cfg = {.kind = kind ? HEED_OPTIM_ADAMW : HEED_OPTIM_SGD, .lr = 0.1f,
                              .momentum = 0.5f, .weight_decay = 0.2f};
        ck_assert_int_eq(heed_optim_init(&o, &cfg, &p), HEED_OK);
        heed_optim_step(&o, 0.1f);
        heed_optim_step(&o, 0.1f);
        for (int i = 0; i < N; i++) {
            double x = w0[i], g = dw[i], want;
            if (kind) {
                double m = 0, v = 0;
                for (int s = 1; s <= 2; s++) {
                    x -= 0.1 * 0.2 * x;
                    m = 0.9 * m + 0.1 * g, v = 0.999 * v + 0.001 * g * g;
                    x -= 0.1 * (m / (1 - pow(0.9, s))) / (sqrt(v / (1 - pow(0.999, s))) + 1e-8);
                }
                want = x;
            } else {
                double g1 = g + 0.2 * x, x1 = x - 0.1 * g1;
                double g2 = g + 0.2 * x1;
                want = x1 - 0.1 * (0.5 * g1 + g2);
            }
            ck_assert_msg(fabs(w[i] - want) < 1e-5, "%s element %d: %.9g, expected %.9g",
                          kind ? "adamw" : "sgd", i, w[i], want);
        }
        heed_optim_free(&o);
    }
    free(w0);
    heed_params_free(&p);
}
END_TEST

START_TEST(bad_settings_are_refused) {
    toy t;
    toy_make(&t);
    heed_optim o;
    struct { heed_optim_cfg cfg; const char *says; } bad[] = {
        {{.kind = HEED_OPTIM_SGD, .lr = -0.1f}, "learning rate"},
        {{.kind = HEED_OPTIM_SGD, .lr = NAN}, "learning rate"},
        {{.kind = HEED_OPTIM_SGD, .lr = 0.1f, .momentum = 1.0f}, "momentum"},
        {{.kind = HEED_OPTIM_SGD, .lr = 0.1f, .nesterov = 1}, "Nesterov"},
        {{.kind = HEED_OPTIM_SGD, .lr = 0.1f, .weight_decay = -1}, "weight decay"},
        {{.kind = HEED_OPTIM_ADAMW, .lr = 0.1f, .beta2 = 1.0f}, "betas"},
        {{.kind = HEED_OPTIM_ADAMW, .lr = 0.1f, .eps = -1e-8f}, "eps"},
        {{.kind = (heed_optim_kind)7, .lr = 0.1f}, "kind"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(heed_optim_init(&o, &bad[i].cfg, &t.p), HEED_ERR_ARG);
        ck_assert_msg(strstr(heed_last_error(), bad[i].says), "case %zu: '%s'", i,
                      heed_last_error());
        ck_assert_ptr_null(o.m);
        heed_optim_free(&o);
    }
    heed_params empty = {0};
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.lr = 0.1f}, &empty), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "heed_params_alloc"));
    heed_optim_kind k;
    ck_assert_int_eq(heed_optim_parse("AdamW", &k), HEED_OK);
    ck_assert_int_eq(k, HEED_OPTIM_ADAMW);
    ck_assert_int_eq(heed_optim_parse("sgd", &k), HEED_OK);
    ck_assert_int_eq(k, HEED_OPTIM_SGD);
    ck_assert_int_eq(heed_optim_parse("adam", &k), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "adam"));
    heed_params_free(&t.p);
}
END_TEST

/* State that passes the memory limit: refused, saying which, nothing kept.
 * A store of 256K floats (1 MiB each for values, gradients, m and v). */
START_TEST(state_over_the_memory_limit_is_refused) {
    heed_params p = {0};
    float *w, *dw;
    ck_assert_int_eq(heed_params_add(&p, "w", 1, (int[]){1 << 18}, HEED_INIT_ZEROS, 1, 0, &w, &dw),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    const size_t before = heed_memory_in_use(), mib = (size_t)1 << 20;
    heed_optim o;
    heed_set_memory_limit(before + mib / 2); /* not even m */
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.lr = 0.1f, .momentum = 0.9f}, &p),
                     HEED_ERR_NOMEM);
    ck_assert_msg(strstr(heed_last_error(), "the optimizer's state: 1.00 MiB") &&
                      strstr(heed_last_error(), "memory limit"),
                  "%s", heed_last_error());
    heed_set_memory_limit(before + 3 * mib / 2); /* m, not v */
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.kind = HEED_OPTIM_ADAMW, .lr = 0.1f}, &p),
                     HEED_ERR_NOMEM);
    ck_assert_msg(strstr(heed_last_error(), "second moments"), "%s", heed_last_error());
    ck_assert_ptr_null(o.m);
    ck_assert_uint_eq(heed_memory_in_use(), before); /* m given back */
    heed_set_memory_limit(before + 3 * mib); /* both */
    ck_assert_int_eq(heed_optim_init(&o, &(heed_optim_cfg){.kind = HEED_OPTIM_ADAMW, .lr = 0.1f}, &p),
                     HEED_OK);
    heed_optim_free(&o);
    heed_set_memory_limit(0);
    heed_params_free(&p);
}
END_TEST

Suite *heed_suite_optim(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sgd_plain_decays_only_weights);
    tcase_add_test(tc, sgd_momentum_two_steps);
    tcase_add_test(tc, sgd_nesterov_two_steps);
    tcase_add_test(tc, adamw_two_steps);
    tcase_add_test(tc, adamw_defaults_fill_in);
    tcase_add_test(tc, state_saves_and_restores);
    tcase_add_test(tc, long_entries_match_the_formula);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, state_over_the_memory_limit_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
