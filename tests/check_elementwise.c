/* check_elementwise.c -- add, channel/spatial scaling, concat, axpy/scale:
 * explicit loops written here, central-difference gradients for every
 * input, round trips and shape errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "elementwise.h"
#include "pool2d.h"
#include "testutil.h"

/* Allocates and fills with U(-2, 2). */
static heed_tensor rand_tensor(int n, int c, int h, int w, uint64_t seed) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, n, c, h, w), HEED_OK);
    tu_fill_uniform(t.data, heed_tensor_count(&t), -2.0f, 2.0f, seed);
    return t;
}

static heed_tensor zeros_like(const heed_tensor *x) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, x->n, x->c, x->h, x->w), HEED_OK);
    return t;
}

static float at(const heed_tensor *t, int n, int c, int h, int w) {
    return t->data[heed_tensor_index(t, n, c, h, w)];
}

/* ---- gradient checks of two-input ops ---- */

typedef enum { OP_ADD, OP_MUL_CHANNEL, OP_MUL_SPATIAL, OP_CONCAT } op_kind;

typedef struct op_ctx {
    op_kind op;
    heed_tensor *a, *b, *y;
    const float *w;
} op_ctx;

static heed_status run_forward(op_kind op, const heed_tensor *a, const heed_tensor *b, heed_tensor *y) {
    switch (op) {
    case OP_ADD: return heed_add_forward(a, b, y);
    case OP_MUL_CHANNEL: return heed_mul_channel_forward(a, b, y);
    case OP_MUL_SPATIAL: return heed_mul_spatial_forward(a, b, y);
    default: return heed_concat_forward(a, b, y);
    }
}

static heed_status run_backward(op_kind op, const heed_tensor *a, const heed_tensor *b,
                                const heed_tensor *dy, heed_tensor *da, heed_tensor *db) {
    switch (op) {
    case OP_ADD: return heed_add_backward(dy, da, db);
    case OP_MUL_CHANNEL: return heed_mul_channel_backward(a, b, dy, da, db);
    case OP_MUL_SPATIAL: return heed_mul_spatial_backward(a, b, dy, da, db);
    default: return heed_concat_backward(dy, da, db);
    }
}

static double op_loss(void *p) {
    op_ctx *c = p;
    ck_assert_int_eq(run_forward(c->op, c->a, c->b, c->y), HEED_OK);
    return tu_weighted_sum(c->y->data, c->w, heed_tensor_count(c->y));
}

/* Checks d/da and d/db of L = sum(w * op(a, b)) for inputs shaped as given,
 * then that backward accumulates and that NULL gradients are skipped. */
static void gradcheck_op(op_kind op, const char *what, const int as[4], const int bs[4],
                         uint64_t seed) {
    heed_tensor a = rand_tensor(as[0], as[1], as[2], as[3], seed);
    heed_tensor b = rand_tensor(bs[0], bs[1], bs[2], bs[3], seed + 1);
    heed_tensor y = {0};
    ck_assert_int_eq(run_forward(op, &a, &b, &y), HEED_OK);
    heed_tensor dy = rand_tensor(y.n, y.c, y.h, y.w, seed + 2);
    heed_tensor da = zeros_like(&a), db = zeros_like(&b);
    ck_assert_int_eq(run_backward(op, &a, &b, &dy, &da, &db), HEED_OK);
    op_ctx c = {op, &a, &b, &y, dy.data};
    char name[64];
    snprintf(name, sizeof name, "%s da", what);
    TU_GRADCHECK(name, op_loss, &c, a.data, heed_tensor_count(&a), da.data, 1e-3f, 5e-4);
    snprintf(name, sizeof name, "%s db", what);
    TU_GRADCHECK(name, op_loss, &c, b.data, heed_tensor_count(&b), db.data, 1e-3f, 5e-4);

    /* accumulation: starting from 1, each gradient alone */
    heed_tensor da2 = zeros_like(&a), db2 = zeros_like(&b);
    heed_tensor_fill(&da2, 1.0f);
    heed_tensor_fill(&db2, 1.0f);
    ck_assert_int_eq(run_backward(op, &a, &b, &dy, &da2, NULL), HEED_OK);
    ck_assert_int_eq(run_backward(op, &a, &b, &dy, NULL, &db2), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(&a); i++)
        ck_assert_float_eq_tol(da2.data[i], 1.0f + da.data[i], 1e-5f);
    for (size_t i = 0; i < heed_tensor_count(&b); i++)
        ck_assert_float_eq_tol(db2.data[i], 1.0f + db.data[i], 1e-5f);
    ck_assert_int_eq(run_backward(op, &a, &b, &dy, NULL, NULL), HEED_OK);

    heed_tensor *all[] = {&a, &b, &y, &dy, &da, &db, &da2, &db2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) heed_tensor_free(all[i]);
}

START_TEST(gradients_match_finite_differences) {
    gradcheck_op(OP_ADD, "add", (int[4]){2, 3, 5, 3}, (int[4]){2, 3, 5, 3}, 10);
    gradcheck_op(OP_MUL_CHANNEL, "mul_channel", (int[4]){2, 3, 5, 3}, (int[4]){2, 3, 1, 1}, 20);
    gradcheck_op(OP_MUL_SPATIAL, "mul_spatial", (int[4]){2, 3, 5, 3}, (int[4]){2, 1, 5, 3}, 30);
    gradcheck_op(OP_CONCAT, "concat", (int[4]){2, 3, 5, 3}, (int[4]){2, 2, 5, 3}, 40);
    /* spatial over more positions than one tile of its backward */
    gradcheck_op(OP_MUL_SPATIAL, "mul_spatial tiled", (int[4]){1, 2, 23, 27}, (int[4]){1, 1, 23, 27}, 50);
}
END_TEST

/* ---- forward values against loops written here ---- */

START_TEST(add_values_in_place_and_errors) {
    heed_tensor a = rand_tensor(2, 3, 5, 3, 1), b = rand_tensor(2, 3, 5, 3, 2), y = {0};
    ck_assert_int_eq(heed_add_forward(&a, &b, &y), HEED_OK);
    ck_assert(heed_tensor_same_shape(&y, &a));
    for (size_t i = 0; i < heed_tensor_count(&a); i++)
        ck_assert_float_eq(y.data[i], a.data[i] + b.data[i]);
    float *keep = a.data;
    ck_assert_int_eq(heed_add_forward(&a, &b, &a), HEED_OK); /* residual in place */
    ck_assert_ptr_eq(a.data, keep);
    ck_assert_mem_eq(a.data, y.data, heed_tensor_count(&a) * sizeof(float));

    heed_tensor c = rand_tensor(2, 3, 5, 4, 3);
    ck_assert_int_eq(heed_add_forward(&a, &c, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 3)"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 4)"));
    ck_assert_int_eq(heed_add_backward(&a, NULL, &c), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 4)"));
    heed_tensor_free(&a);
    heed_tensor_free(&b);
    heed_tensor_free(&c);
    heed_tensor_free(&y);
}
END_TEST

/* add then relu in one pass: a hand case (a negative sum, a zero one, a
 * NaN, which relu keeps), then against the two steps on a tensor above
 * the threading threshold, in place, and the shape error. */
START_TEST(add_relu_matches_add_then_relu) {
    float av[] = {1.0f, -2.0f, 0.5f, NAN, -1.0f}, bv[] = {-3.0f, 1.0f, 0.25f, 1.0f, 1.0f};
    heed_tensor a = heed_tensor_view(av, 1, 5, 1, 1), b = heed_tensor_view(bv, 1, 5, 1, 1), y = {0};
    ck_assert_int_eq(heed_add_relu_forward(&a, &b, &y), HEED_OK);
    ck_assert_float_eq(y.data[0], 0.0f);
    ck_assert_float_eq(y.data[1], 0.0f);
    ck_assert_float_eq(y.data[2], 0.75f);
    ck_assert(isnan(y.data[3]));
    ck_assert_float_eq(y.data[4], 0.0f);
    heed_tensor_free(&y);

    heed_tensor p = rand_tensor(2, 16, 40, 41, 4), q = rand_tensor(2, 16, 40, 41, 5), want = {0};
    ck_assert_int_eq(heed_add_forward(&p, &q, &want), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(&want); i++)
        if (want.data[i] < 0.0f) want.data[i] = 0.0f;
    ck_assert_int_eq(heed_add_relu_forward(&p, &q, &p), HEED_OK);
    ck_assert_mem_eq(p.data, want.data, heed_tensor_count(&want) * sizeof(float));
    heed_tensor c = rand_tensor(2, 16, 40, 40, 6);
    ck_assert_int_eq(heed_add_relu_forward(&p, &c, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "heed_add_relu_forward"));
    heed_tensor_free(&p), heed_tensor_free(&q), heed_tensor_free(&c);
    heed_tensor_free(&want), heed_tensor_free(&y);
}
END_TEST

/* The fused scale-and-sum against the two passes it replaces, bit for bit:
 * both relu modes, in place over x and over a, below and above the
 * threading threshold; shapes checked. */
START_TEST(mul_channel_add_matches_mul_then_add) {
    const int shapes[2][4] = {{2, 3, 5, 7}, {1, 64, 56, 56}};
    for (int k = 0; k < 2; k++)
        for (int relu = 0; relu <= 1; relu++) {
            const int *d = shapes[k];
            heed_tensor x = rand_tensor(d[0], d[1], d[2], d[3], 30 + k);
            heed_tensor a = rand_tensor(d[0], d[1], d[2], d[3], 40 + k);
            heed_tensor s = rand_tensor(d[0], d[1], 1, 1, 50 + k), t = {0}, want = {0}, got = {0};
            ck_assert_int_eq(heed_mul_channel_forward(&x, &s, &t), HEED_OK);
            ck_assert_int_eq((relu ? heed_add_relu_forward : heed_add_forward)(&t, &a, &want),
                             HEED_OK);
            ck_assert_int_eq(heed_mul_channel_add_forward(&x, &s, &a, relu, &got), HEED_OK);
            const size_t bytes = heed_tensor_count(&want) * sizeof(float);
            ck_assert_mem_eq(got.data, want.data, bytes);
            heed_tensor x2 = rand_tensor(d[0], d[1], d[2], d[3], 30 + k);
            ck_assert_int_eq(heed_mul_channel_add_forward(&x2, &s, &a, relu, &x2), HEED_OK);
            ck_assert_mem_eq(x2.data, want.data, bytes);
            ck_assert_int_eq(heed_mul_channel_add_forward(&x, &s, &a, relu, &a), HEED_OK);
            ck_assert_mem_eq(a.data, want.data, bytes);
            heed_tensor_free(&x), heed_tensor_free(&a), heed_tensor_free(&s), heed_tensor_free(&t);
            heed_tensor_free(&want), heed_tensor_free(&got), heed_tensor_free(&x2);
        }
    heed_tensor x = rand_tensor(2, 3, 4, 4, 1), s = rand_tensor(2, 3, 1, 1, 2);
    heed_tensor a = rand_tensor(2, 3, 4, 5, 3), y = {0};
    ck_assert_int_eq(heed_mul_channel_add_forward(&x, &s, &a, 0, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "heed_mul_channel_add_forward"));
    ck_assert_int_eq(heed_mul_channel_add_forward(&x, &a, &x, 0, &y), HEED_ERR_SHAPE);
    heed_tensor_free(&x), heed_tensor_free(&s), heed_tensor_free(&a), heed_tensor_free(&y);
}
END_TEST

/* SE's input gradient in one pass: bit for bit the scaling's term
 * (heed_mul_channel_backward, added to dx or to zeros) and then the global
 * average pool's backward, which it replaces; a fresh dx (add 0) full of
 * NaN is written over. */
START_TEST(mul_channel_pool_backward_matches_its_two_passes) {
    const int shapes[2][4] = {{2, 3, 5, 7}, {1, 64, 56, 56}};
    for (int k = 0; k < 2; k++)
        for (int add = 0; add <= 1; add++) {
            const int *d = shapes[k];
            heed_tensor dy = rand_tensor(d[0], d[1], d[2], d[3], 60 + k);
            heed_tensor s = rand_tensor(d[0], d[1], 1, 1, 70 + k);
            heed_tensor dpool = rand_tensor(d[0], d[1], 1, 1, 80 + k);
            heed_tensor want = rand_tensor(d[0], d[1], d[2], d[3], 90 + k);
            heed_tensor got = zeros_like(&dy);
            const size_t n = heed_tensor_count(&dy);
            for (size_t i = 0; i < n; i++) got.data[i] = add ? want.data[i] : NAN;
            if (!add) heed_tensor_zero(&want);
            ck_assert_int_eq(heed_mul_channel_backward(&dy, &s, &dy, &want, NULL), HEED_OK);
            ck_assert_int_eq(heed_global_avg_pool_backward(&dy, &dpool, &want), HEED_OK);
            ck_assert_int_eq(heed_mul_channel_pool_backward(&dy, &s, &dpool, &got, add), HEED_OK);
            ck_assert_mem_eq(got.data, want.data, n * sizeof(float));
            heed_tensor_free(&dy), heed_tensor_free(&s), heed_tensor_free(&dpool);
            heed_tensor_free(&want), heed_tensor_free(&got);
        }
    heed_tensor dy = rand_tensor(2, 3, 4, 4, 1), s = rand_tensor(2, 3, 1, 1, 2);
    heed_tensor bad = rand_tensor(2, 4, 1, 1, 3), dx = zeros_like(&dy);
    ck_assert_int_eq(heed_mul_channel_pool_backward(&dy, &bad, &s, &dx, 1), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "heed_mul_channel_pool_backward"));
    ck_assert_int_eq(heed_mul_channel_pool_backward(&dy, &s, &bad, &dx, 1), HEED_ERR_SHAPE);
    heed_tensor_free(&dy), heed_tensor_free(&s), heed_tensor_free(&bad), heed_tensor_free(&dx);
}
END_TEST

/* Forward and backward of both broadcasts against plain loops; the shapes
 * run from tiny to above the threading threshold. */
START_TEST(broadcasts_match_explicit_loops) {
    static const int shapes[][4] = {{2, 3, 5, 3}, {3, 4, 1, 1}, {2, 16, 33, 33}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int N = shapes[k][0], C = shapes[k][1], H = shapes[k][2], W = shapes[k][3];
        heed_tensor x = rand_tensor(N, C, H, W, 100 + k), dy = rand_tensor(N, C, H, W, 200 + k);
        heed_tensor sc = rand_tensor(N, C, 1, 1, 300 + k), ss = rand_tensor(N, 1, H, W, 400 + k);
        heed_tensor y = {0}, dx = zeros_like(&x), dsc = zeros_like(&sc), dss = zeros_like(&ss);

        ck_assert_int_eq(heed_mul_channel_forward(&x, &sc, &y), HEED_OK);
        ck_assert_int_eq(heed_mul_channel_backward(&x, &sc, &dy, &dx, &dsc), HEED_OK);
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double sum = 0.0;
                for (int h = 0; h < H; h++)
                    for (int w = 0; w < W; w++) {
                        const float s = at(&sc, n, c, 0, 0);
                        ck_assert_float_eq(at(&y, n, c, h, w), at(&x, n, c, h, w) * s);
                        ck_assert_float_eq(at(&dx, n, c, h, w), at(&dy, n, c, h, w) * s);
                        sum += (double)at(&dy, n, c, h, w) * at(&x, n, c, h, w);
                    }
                ck_assert_double_eq_tol(at(&dsc, n, c, 0, 0), sum, 1e-3);
            }

        heed_tensor_zero(&dx);
        ck_assert_int_eq(heed_mul_spatial_forward(&x, &ss, &y), HEED_OK);
        ck_assert_int_eq(heed_mul_spatial_backward(&x, &ss, &dy, &dx, &dss), HEED_OK);
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    const float s = at(&ss, n, 0, h, w);
                    double sum = 0.0;
                    for (int c = 0; c < C; c++) {
                        ck_assert_float_eq(at(&y, n, c, h, w), at(&x, n, c, h, w) * s);
                        ck_assert_float_eq(at(&dx, n, c, h, w), at(&dy, n, c, h, w) * s);
                        sum += (double)at(&dy, n, c, h, w) * at(&x, n, c, h, w);
                    }
                    ck_assert_double_eq_tol(at(&dss, n, 0, h, w), sum, 1e-4);
                }

        /* in place */
        ck_assert_int_eq(heed_tensor_copy(&y, &x), HEED_OK);
        ck_assert_int_eq(heed_mul_channel_forward(&y, &sc, &y), HEED_OK);
        ck_assert_float_eq(at(&y, N - 1, C - 1, H - 1, W - 1),
                           at(&x, N - 1, C - 1, H - 1, W - 1) * at(&sc, N - 1, C - 1, 0, 0));

        heed_tensor *all[] = {&x, &dy, &sc, &ss, &y, &dx, &dsc, &dss};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) heed_tensor_free(all[i]);
    }
}
END_TEST

START_TEST(broadcast_shape_errors) {
    heed_tensor x = rand_tensor(2, 3, 5, 3, 1), y = {0};
    heed_tensor s_bad_c = rand_tensor(2, 4, 1, 1, 2), s_bad_hw = rand_tensor(2, 3, 1, 2, 3);
    heed_tensor sp_bad = rand_tensor(2, 1, 5, 4, 4), sp_two = rand_tensor(2, 2, 5, 3, 5);
    heed_tensor sc = rand_tensor(2, 3, 1, 1, 6), dy_bad = rand_tensor(2, 3, 5, 4, 7);

    ck_assert_int_eq(heed_mul_channel_forward(&x, &s_bad_c, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 3)"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 4, 1, 1)"));
    ck_assert_int_eq(heed_mul_channel_forward(&x, &s_bad_hw, &y), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_mul_spatial_forward(&x, &sp_bad, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 1, 5, 4)"));
    ck_assert_int_eq(heed_mul_spatial_forward(&x, &sp_two, &y), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_mul_spatial_backward(&x, &sp_two, &x, NULL, NULL), HEED_ERR_SHAPE);
    /* gradients shaped wrong */
    ck_assert_int_eq(heed_mul_channel_backward(&x, &sc, &dy_bad, NULL, NULL), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 4)"));
    ck_assert_int_eq(heed_mul_channel_backward(&x, &sc, &x, &dy_bad, NULL), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_mul_channel_backward(&x, &sc, &x, NULL, &s_bad_c), HEED_ERR_SHAPE);
    ck_assert_ptr_null(y.data); /* nothing allocated on failure */

    heed_tensor *all[] = {&x, &s_bad_c, &s_bad_hw, &sp_bad, &sp_two, &sc, &dy_bad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) heed_tensor_free(all[i]);
}
END_TEST

/* ---- concat ---- */

START_TEST(concat_layout_round_trip_and_errors) {
    heed_tensor a = rand_tensor(2, 3, 5, 3, 1), b = rand_tensor(2, 2, 5, 3, 2), y = {0};
    ck_assert_int_eq(heed_concat_forward(&a, &b, &y), HEED_OK);
    ck_assert_int_eq(y.n, 2);
    ck_assert_int_eq(y.c, 5);
    ck_assert_int_eq(y.h, 5);
    ck_assert_int_eq(y.w, 3);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 5; c++)
            for (int h = 0; h < 5; h++)
                for (int w = 0; w < 3; w++)
                    ck_assert_float_eq(at(&y, n, c, h, w), c < 3 ? at(&a, n, c, h, w)
                                                                 : at(&b, n, c - 3, h, w));

    /* split of the concatenation gives the parts back */
    heed_tensor da = zeros_like(&a), db = zeros_like(&b);
    ck_assert_int_eq(heed_concat_backward(&y, &da, &db), HEED_OK);
    ck_assert_mem_eq(da.data, a.data, heed_tensor_count(&a) * sizeof(float));
    ck_assert_mem_eq(db.data, b.data, heed_tensor_count(&b) * sizeof(float));
    /* one side only: the other's channels are inferred */
    heed_tensor_zero(&db);
    ck_assert_int_eq(heed_concat_backward(&y, NULL, &db), HEED_OK);
    ck_assert_mem_eq(db.data, b.data, heed_tensor_count(&b) * sizeof(float));

    /* errors */
    heed_tensor c = rand_tensor(2, 2, 4, 3, 3);
    ck_assert_int_eq(heed_concat_forward(&a, &c, &y), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 3, 5, 3)"));
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(2, 2, 4, 3)"));
    ck_assert_int_eq(heed_concat_backward(&y, &da, &c), HEED_ERR_SHAPE);
    ck_assert_int_eq(heed_concat_backward(&y, &da, &da), HEED_ERR_SHAPE); /* 3 + 3 != 5 */
    ck_assert_int_eq(heed_concat_backward(&y, &y, NULL), HEED_ERR_SHAPE); /* nothing left for b */
    ck_assert_int_eq(heed_concat_forward(&a, &b, &a), HEED_ERR_ARG);

    heed_tensor *all[] = {&a, &b, &y, &da, &db, &c};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) heed_tensor_free(all[i]);
}
END_TEST

START_TEST(concat_large_round_trip) {
    heed_tensor a = rand_tensor(2, 24, 30, 31, 5), b = rand_tensor(2, 1, 30, 31, 6), y = {0};
    ck_assert_int_eq(heed_concat_forward(&a, &b, &y), HEED_OK);
    heed_tensor da = zeros_like(&a), db = zeros_like(&b);
    ck_assert_int_eq(heed_concat_backward(&y, &da, &db), HEED_OK);
    ck_assert_mem_eq(da.data, a.data, heed_tensor_count(&a) * sizeof(float));
    ck_assert_mem_eq(db.data, b.data, heed_tensor_count(&b) * sizeof(float));
    heed_tensor *all[] = {&a, &b, &y, &da, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) heed_tensor_free(all[i]);
}
END_TEST

/* ---- axpy, scale ---- */

START_TEST(axpy_and_scale) {
    float xv[4] = {1, -2, 3, 0.5f}, yv[4] = {10, 20, 30, 40};
    heed_tensor x = heed_tensor_view(xv, 1, 4, 1, 1), y = heed_tensor_view(yv, 2, 2, 1, 1);
    heed_axpy(-2.0f, &x, &y); /* shapes may differ, counts match */
    const float want[4] = {8, 24, 24, 39};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(yv[i], want[i]);
    heed_scale(0.5f, &y);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(yv[i], want[i] * 0.5f);

    heed_tensor short_y = heed_tensor_view(yv, 1, 3, 1, 1);
    heed_axpy(1.0f, &x, &short_y);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(yv[i], want[i] * 0.5f); /* untouched */
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "heed_axpy"));

    heed_tensor big = rand_tensor(2, 8, 48, 48, 9), acc = zeros_like(&big);
    heed_axpy(3.0f, &big, &acc);
    heed_axpy(-1.0f, &big, &acc);
    heed_scale(0.25f, &acc);
    for (size_t i = 0; i < heed_tensor_count(&big); i++)
        ck_assert_float_eq_tol(acc.data[i], 0.5f * big.data[i], 1e-6f);
    heed_tensor_free(&big);
    heed_tensor_free(&acc);
}
END_TEST

Suite *heed_suite_elementwise(void) {
    Suite *s = suite_create("elementwise");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, add_values_in_place_and_errors);
    tcase_add_test(tc, add_relu_matches_add_then_relu);
    tcase_add_test(tc, mul_channel_add_matches_mul_then_add);
    tcase_add_test(tc, mul_channel_pool_backward_matches_its_two_passes);
    tcase_add_test(tc, broadcasts_match_explicit_loops);
    tcase_add_test(tc, broadcast_shape_errors);
    tcase_add_test(tc, concat_layout_round_trip_and_errors);
    tcase_add_test(tc, concat_large_round_trip);
    tcase_add_test(tc, axpy_and_scale);
    suite_add_tcase(s, tc);
    return s;
}
