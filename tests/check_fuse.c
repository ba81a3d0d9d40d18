/* check_fuse.c -- fused and planned execution against the unfused layers:
 * a conv with a batch norm and relu folded into its output pass
 * (heed_conv2d_forward_fused), sequences in inference mode (fused steps,
 * outputs in two alternating buffers), in training mode (batch norm and relu
 * in one pass, gradients written fresh), and backward after an inference
 * forward. The reference is always the plain layers run one at a time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>


#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "gemm.h"
#include "net.h"
#include "omp_impl.h"
#include "testutil.h"

/* ---- the fused convolution ------------------------------------------------ */

typedef struct fuse_case {
    heed_conv2d_cfg cfg;
    int N, H, W, relu;
} fuse_case;

/* One of each convolution path: direct (depthwise; CBAM's 2 -> 1), im2col
 * (stride 2, several images a pass), shifted copies (stride 1, with groups
 * and dilation, and in bands for a large image), 1x1 direct and gathered. */
static const fuse_case fuse_cases[] = {
    {{.in_c = 6, .out_c = 6, .k = 3, .pad = 1, .groups = 6, .bias = 1}, 2, 9, 11, 1},
    {{.in_c = 2, .out_c = 1, .k = 7, .pad = 3}, 3, 13, 10, 0},
    {{.in_c = 5, .out_c = 7, .k = 3, .stride = 2, .pad = 1, .bias = 1}, 3, 15, 13, 1},
    {{.in_c = 4, .out_c = 6, .k = 3, .pad = 2, .dilation = 2, .groups = 2}, 2, 27, 25, 1},
    {{.in_c = 5, .out_c = 7, .k = 3, .pad = 1}, 3, 21, 19, 0},
    {{.in_c = 64, .out_c = 5, .k = 3, .pad = 1, .bias = 1}, 1, 71, 70, 1},
    {{.in_c = 6, .out_c = 9, .k = 1, .bias = 1}, 2, 33, 31, 1},
    {{.in_c = 6, .out_c = 9, .k = 1}, 5, 7, 5, 0},
};

START_TEST(fused_conv_matches_conv_then_bn_then_relu) {
    const fuse_case *fc = &fuse_cases[_i];
    heed_params p = {0};
    heed_conv2d *conv;
    heed_batchnorm *bn;
    const int in[3] = {fc->cfg.in_c, fc->H, fc->W};
    ck_assert_int_eq(heed_conv2d_new(&conv, &fc->cfg, in, &p, "c"), HEED_OK);
    ck_assert_int_eq(heed_batchnorm_new(&bn, NULL, (int[3]){conv->base.out_c, conv->base.out_h,
                                                            conv->base.out_w},
                                        &p, "bn"),
                     HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    const int OC = fc->cfg.out_c;
    tu_fill_uniform(conv->w, heed_params_find(&p, "c.weight")->count, -0.5f, 0.5f, 10 + _i);
    if (conv->b) tu_fill_uniform(conv->b, OC, -1, 1, 20 + _i);
    tu_fill_uniform(bn->gamma, OC, -1.5f, 1.5f, 30 + _i);
    tu_fill_uniform(bn->beta, OC, -1, 1, 40 + _i);
    tu_fill_uniform(bn->running_mean, OC, -1, 1, 50 + _i);
    tu_fill_uniform(bn->running_var, OC, 0.2f, 3, 60 + _i);
    heed_tensor x, c = {0}, b = {0}, want = {0}, got = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, fc->N, fc->cfg.in_c, fc->H, fc->W), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 70 + _i);
    float *scale = malloc(2 * OC * sizeof(float)), *shift = scale + OC;

    for (int round = 0; round < 2; round++) {
        /* The plain layers, in inference mode. */
        ck_assert_int_eq(heed_conv2d_forward(conv, &x, &c), HEED_OK);
        ck_assert_int_eq(heed_batchnorm_forward(bn, &c, &b), HEED_OK);
        if (fc->relu) {
            ck_assert_int_eq(heed_act_forward(HEED_ACT_RELU, 0, &b, &want), HEED_OK);
        } else {
            ck_assert_int_eq(heed_tensor_ensure(&want, b.n, b.c, b.h, b.w), HEED_OK);
            memcpy(want.data, b.data, heed_tensor_count(&b) * sizeof(float));
        }
        ck_assert_int_eq(heed_batchnorm_scale_shift(bn, scale, shift), HEED_OK);
        ck_assert_int_eq(heed_conv2d_forward_fused(conv, &x, &got, scale, shift, fc->relu),
                         HEED_OK);
        ck_assert(heed_tensor_same_shape(&got, &want));
        double err = tu_max_rel_err(got.data, want.data, heed_tensor_count(&want));
        ck_assert_msg(err < 1e-5, "case %d round %d: fused differs by %g", _i, round, err);
        /* Without a batch norm: the plain forward, then relu. */
        ck_assert_int_eq(heed_conv2d_forward_fused(conv, &x, &got, NULL, NULL, fc->relu), HEED_OK);
        for (size_t i = 0; i < heed_tensor_count(&c); i++) {
            float v = fc->relu && c.data[i] < 0 ? 0.0f : c.data[i];
            ck_assert_float_eq_tol(got.data[i], v, 1e-6f * fmaxf(1.0f, fabsf(v)));
        }
        /* Changed weights and statistics show in the next call. */
        for (int o = 0; o < OC; o++) bn->running_mean[o] += 0.25f, bn->running_var[o] *= 1.5f;
        conv->w[0] += 0.5f;
        bn->gamma[OC - 1] = -bn->gamma[OC - 1];
    }
    free(scale);
    heed_tensor_free(&x), heed_tensor_free(&c), heed_tensor_free(&b);
    heed_tensor_free(&want), heed_tensor_free(&got);
    heed_layer_free(&conv->base);
    heed_layer_free(&bn->base);
    heed_params_free(&p);
}
END_TEST

/* ---- sequences ------------------------------------------------------------ */

/* Every fusion a sequence makes (conv bn relu, conv bn, conv relu, bn relu,
 * residual relu), nested sequences, a residual block with a projection and
 * one without,
 * stride, padding, pooling and a classifier, on odd sizes. */
static const char net_text[] =
    "input 3 17 15\n"
    "conv name=c1 out=8 k=3 pad=1 bias=0\n"
    "bn name=b1\n"
    "relu name=r1\n"
    "conv name=c2 out=6 k=3 stride=2 pad=1\n"
    "bn name=b2\n"
    "conv name=c3 out=6 k=1\n"
    "relu name=r3\n"
    "residual name=res\n"
    "  conv name=c4 out=6 k=3 pad=1 bias=0\n"
    "  bn name=b4\n"
    "  relu name=r4\n"
    "  conv name=c5 out=6 k=3 pad=1 bias=0\n"
    "  bn name=b5\n"
    "end\n"
    "bn name=b6\n"
    "relu name=r6\n"
    "residual name=proj\n"
    "  conv name=c7 out=7 k=3 stride=2 pad=1 bias=0\n"
    "  bn name=b7\n"
    "  relu name=r7\n"
    "shortcut\n"
    "  conv name=c8 out=7 k=1 stride=2 bias=0\n"
    "  bn name=b8\n"
    "end\n"
    "relu name=r10\n"
    "seq name=s\n"
    "  conv name=c9 out=5 k=3 pad=1 bias=0\n"
    "  bn name=b9\n"
    "  relu name=r9\n"
    "  maxpool name=pool k=2\n"
    "end\n"
    "flatten name=flat\n"
    "fc name=fc out=4\n";

/* The leaves in order, for the reference; "+" marks where a residual adds. */
static const char *const plain_order[] = {"c1", "b1", "r1", "c2", "b2", "c3", "r3"};
static const char *const tail_order[] = {"b6", "r6"};
static const char *const last_order[] = {"r10", "s.c9", "s.b9", "s.r9", "s.pool", "flat", "fc"};

/* Batch norms get random gamma, beta and statistics (the defaults, 1, 0, 0
 * and 1, would hide mistakes in the folding). */
static void randomize_bn(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    uint64_t *seed = ctx;
    if (strcmp(l->ops->type, "bn")) return;
    heed_batchnorm *bn = (heed_batchnorm *)l;
    const int C = bn->cfg.c;
    tu_fill_uniform(bn->gamma, C, 0.6f, 1.4f, ++*seed);
    tu_fill_uniform(bn->beta, C, -0.4f, 0.4f, ++*seed);
    tu_fill_uniform(bn->running_mean, C, -0.4f, 0.4f, ++*seed);
    tu_fill_uniform(bn->running_var, C, 0.3f, 2.0f, ++*seed);
}

static heed_net *parse_net(const char *text, uint64_t seed) {
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, text, "fuse.net", seed) == HEED_OK, "%s", heed_last_error());
    heed_net_visit(net, randomize_bn, &seed);
    return net;
}

static heed_net *make_net(uint64_t seed) { return parse_net(net_text, seed); }

static heed_layer *find(heed_net *net, const char *name) {
    heed_layer *l = heed_net_find(net, name);
    ck_assert_msg(l != NULL, "layer %s", name);
    return l;
}

/* Runs the leaves `names` one at a time from *cur, leaving the output in
 * *cur (the intermediate tensors are appended to `keep`). */
typedef struct chain {
    heed_tensor t[64];
    heed_layer *l[64];
    const heed_tensor *in[64];
    int n;
} chain;

static heed_tensor *run_leaves(heed_net *net, chain *ch, const heed_tensor *x,
                               const char *const *names, int count) {
    const heed_tensor *in = x;
    heed_tensor *out = NULL;
    for (int i = 0; i < count; i++) {
        ck_assert_int_lt(ch->n, 64);
        out = &ch->t[ch->n];
        *out = (heed_tensor){0};
        ch->l[ch->n] = find(net, names[i]);
        ch->in[ch->n] = in;
        ck_assert_int_eq(heed_layer_forward(ch->l[ch->n], in, out), HEED_OK);
        ch->n++;
        in = out;
    }
    return out;
}

/* The whole network, layer by layer, no fusion. */
static heed_tensor *reference_forward(heed_net *net, chain *ch, const heed_tensor *x) {
    ch->n = 0;
    heed_tensor *a = run_leaves(net, ch, x, plain_order, 7);
    static const char *const body[] = {"res.c4", "res.b4", "res.r4", "res.c5", "res.b5"};
    heed_tensor *b = run_leaves(net, ch, a, body, 5);
    heed_tensor *sum = &ch->t[ch->n++];
    *sum = (heed_tensor){0};
    ck_assert_int_eq(heed_tensor_ensure(sum, b->n, b->c, b->h, b->w), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(b); i++) sum->data[i] = b->data[i] + a->data[i];
    heed_tensor *t = run_leaves(net, ch, sum, tail_order, 2);
    static const char *const body2[] = {"proj.c7", "proj.b7", "proj.r7"};
    static const char *const short2[] = {"proj.c8", "proj.b8"};
    heed_tensor *p1 = run_leaves(net, ch, t, body2, 3);
    heed_tensor *p2 = run_leaves(net, ch, t, short2, 2);
    heed_tensor *sum2 = &ch->t[ch->n++];
    *sum2 = (heed_tensor){0};
    ck_assert_int_eq(heed_tensor_ensure(sum2, p1->n, p1->c, p1->h, p1->w), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(p1); i++) sum2->data[i] = p1->data[i] + p2->data[i];
    return run_leaves(net, ch, sum2, last_order, 7);
}

static void chain_free(chain *ch) {
    for (int i = 0; i < ch->n; i++) heed_tensor_free(&ch->t[i]);
    ch->n = 0;
}

static void expect_close(const heed_tensor *got, const heed_tensor *want, double tol,
                         const char *what) {
    ck_assert_msg(heed_tensor_count(got) == heed_tensor_count(want), "%s: sizes differ", what);
    double err = tu_max_rel_err(got->data, want->data, heed_tensor_count(want));
    ck_assert_msg(err < tol, "%s: differs by %g", what, err);
}

START_TEST(inference_sequence_matches_layer_by_layer) {
    heed_net *net = make_net(7);
    heed_net_set_training(net, 0);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 3, 3, 17, 15), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 8);
    chain ch = {0};
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
        heed_tensor *want = reference_forward(net, &ch, &x);
        expect_close(&y, want, 1e-5, round == 0 ? "inference" : "after parameter changes");
        chain_free(&ch);
        /* The fused path reads parameters and statistics on every call. */
        heed_batchnorm *b4 = (heed_batchnorm *)find(net, "res.b4");
        b4->running_mean[1] += 0.5f, b4->running_var[2] *= 2.0f, b4->gamma[0] = -0.7f;
        heed_conv2d *c1 = (heed_conv2d *)find(net, "c1");
        c1->w[3] -= 0.3f;
        ((heed_batchnorm *)find(net, "s.b9"))->beta[4] += 1.0f;
    }
    /* A training forward moves the running statistics; inference follows. */
    heed_net_set_training(net, 1);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    heed_net_set_training(net, 0);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    expect_close(&y, reference_forward(net, &ch, &x), 1e-5, "after a training step");
    chain_free(&ch);
    /* Batch 1 as well. */
    heed_tensor x1 = heed_tensor_view(x.data, 1, 3, 17, 15);
    ck_assert_int_eq(heed_net_forward(net, &x1, &y), HEED_OK);
    expect_close(&y, reference_forward(net, &ch, &x1), 1e-5, "batch 1");
    chain_free(&ch);
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_net_free(net);
}
END_TEST

/* hardswish after a convolution, with and without a batch norm between,
 * is applied in the convolution's output pass in inference, on each route
 * a convolution takes (few input channels, depthwise at strides 1 and 2,
 * pointwise, 3x3 on shifted copies): the same values as the layers one at
 * a time, and the hardswish layers never run. */
static const char hswish_text[] =
    "input 3 40 37\n"
    "conv name=c1 out=8 k=3 pad=1 bias=0\nbn name=b1\nhardswish name=h1\n"
    "conv name=c2 out=8 k=3 pad=1 groups=8 bias=0\nbn name=b2\nhardswish name=h2\n"
    "conv name=c3 out=8 k=3 stride=2 pad=1 groups=8\nbn name=b3\nhardswish name=h3\n"
    "conv name=c4 out=16 k=1 bias=0\nbn name=b4\nhardswish name=h4\n"
    "conv name=c5 out=16 k=3 pad=1\nhardswish name=h5\n"
    "conv name=c6 out=24 k=3 pad=1 bias=0\nbn name=b6\nhardswish name=h6\n";
static const char *const hswish_order[] = {"c1", "b1", "h1", "c2", "b2", "h2", "c3", "b3", "h3",
                                           "c4", "b4", "h4", "c5", "h5", "c6", "b6", "h6"};

START_TEST(hardswish_fuses_into_the_convolution) {
    heed_net *net = parse_net(hswish_text, 29);
    heed_net_set_training(net, 0);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 40, 37), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -2, 2, 30);
    heed_layer_profile(1);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    heed_layer_profile(0);
    static const char *const acts[] = {"h1", "h2", "h3", "h4", "h5", "h6"};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(find(net, acts[i])->forward_calls == 0, "%s ran on its own", acts[i]);
    chain ch = {0};
    heed_tensor *want = run_leaves(net, &ch, &x, hswish_order, 17);
    /* values of both signs around the kinks at -3 and 3, not all clamped */
    int mid = 0;
    for (size_t i = 0; i < heed_tensor_count(want); i++) mid += want->data[i] > -0.3f && want->data[i] < 2.9f;
    ck_assert_int_gt(mid, (int)(heed_tensor_count(want) / 10));
    expect_close(&y, want, 1e-5, "conv, bn, hardswish");
    chain_free(&ch);
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_net_free(net);
}
END_TEST

/* Residual bodies that end in SE, CBAM or ECA add the block's sum (and the relu
 * after the block) in the attention's own pass in inference: identity and
 * projection shortcuts, with and without the relu, against the layers one
 * at a time and the sums written out here; batches of 3 and 1. */
static const char *se_blocks_text =
    "input 8 9 7\n"
    "residual name=r1\n  conv name=c1 out=8 k=3 pad=1\n  bn name=b1\n  relu name=a1\n"
    "  conv name=c2 out=8 k=3 pad=1 bias=0\n  bn name=b2\n  se name=s1 r=2\nend\n"
    "relu name=q1\n"
    "residual name=r2\n  conv name=c3 out=16 k=3 stride=2 pad=1\n  bn name=b3\n  se name=s2 r=4\n"
    "shortcut\n  conv name=p3 out=16 k=1 stride=2 bias=0\n  bn name=pb3\nend\n"
    "relu name=q2\n"
    "residual name=r3\n  conv name=c4 out=16 k=1\n  se name=s3 r=4\nend\n"
    "residual name=r4\n  conv name=c5 out=16 k=3 pad=1\n  cbam name=m5 r=4 k=3\nend\n"
    "relu name=q4\n"
    "residual name=r5\n  conv name=c6 out=16 k=1\n  cbam name=m6 r=4 k=3\nend\n"
    "residual name=r6\n  conv name=c7 out=16 k=3 pad=1\n  eca name=e7\nend\n"
    "relu name=q6\n"
    "gap name=g\nfc name=fc out=3\n";

/* out = a + b, relu'd when `relu`. */
static heed_tensor *sum_of(chain *ch, const heed_tensor *a, const heed_tensor *b, int relu) {
    heed_tensor *out = &ch->t[ch->n++];
    *out = (heed_tensor){0};
    ck_assert_int_eq(heed_tensor_ensure(out, a->n, a->c, a->h, a->w), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(a); i++) {
        const float v = a->data[i] + b->data[i];
        out->data[i] = relu && v < 0.0f ? 0.0f : v;
    }
    return out;
}

static heed_tensor *se_blocks_reference(heed_net *net, chain *ch, const heed_tensor *x) {
    static const char *const body1[] = {"r1.c1", "r1.b1", "r1.a1", "r1.c2", "r1.b2", "r1.s1"};
    static const char *const body2[] = {"r2.c3", "r2.b3", "r2.s2"};
    static const char *const short2[] = {"r2.p3", "r2.pb3"};
    static const char *const body3[] = {"r3.c4", "r3.s3"};
    static const char *const body4[] = {"r4.c5", "r4.m5"};
    static const char *const body5[] = {"r5.c6", "r5.m6"};
    static const char *const body6[] = {"r6.c7", "r6.e7"};
    static const char *const head[] = {"g", "fc"};
    ch->n = 0;
    heed_tensor *s1 = sum_of(ch, run_leaves(net, ch, x, body1, 6), x, 1);
    heed_tensor *b2 = run_leaves(net, ch, s1, body2, 3);
    heed_tensor *s2 = sum_of(ch, b2, run_leaves(net, ch, s1, short2, 2), 1);
    heed_tensor *s3 = sum_of(ch, run_leaves(net, ch, s2, body3, 2), s2, 0);
    heed_tensor *s4 = sum_of(ch, run_leaves(net, ch, s3, body4, 2), s3, 1);
    heed_tensor *s5 = sum_of(ch, run_leaves(net, ch, s4, body5, 2), s4, 0);
    heed_tensor *s6 = sum_of(ch, run_leaves(net, ch, s5, body6, 2), s5, 1);
    return run_leaves(net, ch, s6, head, 2);
}

START_TEST(attention_ending_a_residual_body_adds_the_sum) {
    heed_net *net = parse_net(se_blocks_text, 11);
    heed_net_set_training(net, 0);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 3, 8, 9, 7), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 12);
    chain ch = {0};
    for (int n = 3; n >= 1; n -= 2) {
        heed_tensor xn = heed_tensor_view(x.data, n, 8, 9, 7);
        ck_assert_int_eq(heed_net_forward(net, &xn, &y), HEED_OK);
        expect_close(&y, se_blocks_reference(net, &ch, &xn), 1e-5, n == 3 ? "batch 3" : "batch 1");
        chain_free(&ch);
        /* The request to add is withdrawn after the call. */
        ck_assert_ptr_null(find(net, "r1.s1")->add_after);
        ck_assert_int_eq(find(net, "r1.s1")->relu_after, 0);
        ck_assert_ptr_null(find(net, "r4.m5")->add_after);
        ck_assert_ptr_null(find(net, "r6.e7")->add_after);
    }
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_net_free(net);
}
END_TEST

/* A first layer with a batch norm, relu and the 3 x 3, stride 2, padding 1
 * max pool after it (ResNet's stem, and the same on one channel at stride
 * 1) pools its own output in inference: the same bits as the convolution
 * with its batch norm and relu (heed_conv2d_forward_fused, which the plain
 * layers match to rounding) and then the pool layer, on odd sizes,
 * batches of 3 and 1, one thread and three (bands, cut at the threads'
 * speeds, whose pooled rows share an output row with the band before),
 * with negative batch-norm scales (the pool must take the maxima after
 * them) and a NaN in the input; the pool layer itself is never called. */
static const char *const stem_texts[] = {
    "input 3 45 37\nconv name=c out=12 k=7 stride=2 pad=3 bias=0\nbn name=b\nrelu name=r\n"
    "maxpool name=p k=3 stride=2 pad=1\n",
    "input 1 30 29\nconv name=c out=9 k=3 pad=1\nbn name=b\nrelu name=r\n"
    "maxpool name=p k=3 stride=2 pad=1\n",
    "input 3 224 224\nconv name=c out=16 k=7 stride=2 pad=3 bias=0\nbn name=b\nrelu name=r\n"
    "maxpool name=p k=3 stride=2 pad=1\n",
    /* rows so wide that one thread too goes in bands */
    "input 1 21 3000\nconv name=c out=8 k=3 pad=1\nbn name=b\nrelu name=r\n"
    "maxpool name=p k=3 stride=2 pad=1\n",
};

START_TEST(stem_pools_its_own_output) {
    heed_net *net = parse_net(stem_texts[_i], 21 + _i);
    heed_net_set_training(net, 0);
    heed_batchnorm *bn = (heed_batchnorm *)find(net, "b");
    for (int o = 0; o < bn->cfg.c; o += 3) bn->gamma[o] = -bn->gamma[o];
    ck_assert(heed_conv2d_can_pool((heed_conv2d *)find(net, "c")));
    const int C = find(net, "c")->in_c, H = find(net, "c")->in_h, W = find(net, "c")->in_w;
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 3, C, H, W), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 31 + _i);
    x.data[heed_tensor_count(&x) / 2 + 5] = NAN;
    heed_conv2d *conv = (heed_conv2d *)find(net, "c");
    heed_layer *pool = find(net, "p");
    float *scale = malloc(2 * (size_t)bn->cfg.c * sizeof(float)), *shift = scale + bn->cfg.c;
    ck_assert_int_eq(heed_batchnorm_scale_shift(bn, scale, shift), HEED_OK);
    heed_tensor full = {0}, want = {0};
    const int saved = omp_get_max_threads();
    /* The fused pool's rows follow heed_gemm's kernel (AVX-512 or
     * portable); the pool layer's are portable. */
    static const char *kernels[] = {"avx512", "generic"};
    for (int run = 0; run < 8; run++) {
        const char *kernel = kernels[run / 4];
        const int threads = run / 2 % 2 ? 3 : 1, n = run % 2 ? 1 : 3;
        if (!heed_gemm_kernel_available(kernel)) continue;
        ck_assert_int_eq(heed_gemm_set_kernel(kernel), HEED_OK);
        omp_set_num_threads(threads);
        heed_tensor xn = heed_tensor_view(x.data, n, C, H, W);
        ck_assert_int_eq(heed_conv2d_forward_fused(conv, &xn, &full, scale, shift, 1), HEED_OK);
        ck_assert_int_eq(heed_layer_forward(pool, &full, &want), HEED_OK);
        heed_layer_profile(1);
        heed_layer_profile_clear(pool);
        ck_assert_int_eq(heed_tensor_ensure(&y, want.n, want.c, want.h, want.w), HEED_OK);
        for (size_t i = 0; i < heed_tensor_count(&y); i++) y.data[i] = NAN;
        ck_assert_int_eq(heed_net_forward(net, &xn, &y), HEED_OK);
        heed_layer_profile(0);
        ck_assert_int_eq(pool->forward_calls, 0);
        ck_assert(heed_tensor_same_shape(&y, &want));
        for (size_t i = 0; i < heed_tensor_count(&want); i++)
            ck_assert_msg(!memcmp(&y.data[i], &want.data[i], sizeof(float)),
                          "net %d, %s, %d threads, batch %d: element %zu is %g, want %g", _i,
                          kernel, threads, n, i, y.data[i], want.data[i]);
    }
    heed_gemm_set_kernel(NULL);
    omp_set_num_threads(saved);
    free(scale);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&full), heed_tensor_free(&want);
    heed_net_free(net);
}
END_TEST

/* A convolution asked to pool its output where it cannot (not on the
 * few-channel route) says so, naming itself. */
START_TEST(convolution_that_cannot_pool_says_so) {
    heed_net *net = parse_net("input 16 9 9\nconv name=c out=8 k=3 pad=1\n", 41);
    heed_conv2d *conv = (heed_conv2d *)find(net, "c");
    ck_assert(!heed_conv2d_can_pool(conv));
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 1, 16, 9, 9), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 42);
    conv->fuse_pool = 1;
    ck_assert_int_eq(heed_layer_forward(&conv->base, &x, &y), HEED_ERR_ARG);
    conv->fuse_pool = 0;
    ck_assert_ptr_nonnull(strstr(heed_last_error(), " c: cannot pool"));
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_net_free(net);
}
END_TEST

START_TEST(inference_forward_reuses_its_buffers) {
    heed_net *net = make_net(3);
    heed_net_set_training(net, 0);
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 17, 15), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 4);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    heed_seq *root = net->root;
    /* The root's pair is the network's for depth 0 and x's image size. */
    ck_assert_ptr_eq(root->work, &net->work);
    ck_assert_uint_eq(net->work.pairs[0][0].key, 3 * 17 * 15);
    const heed_tensor *pair = net->work.pairs[0][0].t;
    float *pp[2] = {pair[0].data, pair[1].data}, *yd = y.data;
    ck_assert_ptr_nonnull(pp[0]);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    ck_assert_ptr_eq(pair[0].data, pp[0]);
    ck_assert_ptr_eq(pair[1].data, pp[1]);
    ck_assert_ptr_eq(y.data, yd);
    /* Inference keeps two buffers, not one per layer. */
    for (int i = 0; i < root->count - 1; i++) ck_assert_ptr_null(root->acts[i].data);
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_net_free(net);
}
END_TEST

/* ---- training and backward ------------------------------------------------ */

/* A plain stack (no residual), so the reference backward is a simple chain. */
static const char train_text[] =
    "input 2 11 9\n"
    "conv name=c1 out=6 k=3 pad=1 bias=0\n"
    "bn name=b1\n"
    "relu name=r1\n"
    "conv name=c2 out=5 k=3 stride=2 pad=1\n"
    "bn name=b2\n"
    "relu name=r2\n"
    "seq name=s\n"
    "  conv name=c3 out=5 k=3 pad=1 bias=0\n"
    "  bn name=b3\n"
    "  relu name=r3\n"
    "  conv name=c4 out=4 k=1\n"
    "  bn name=b4\n"
    "end\n"
    "maxpool name=pool k=2\n"
    "flatten name=flat\n"
    "fc name=fc out=3\n";

static const char *const train_order[] = {"c1",   "b1",   "r1",   "c2",   "b2",   "r2",   "s.c3",
                                          "s.b3", "s.r3", "s.c4", "s.b4", "pool", "flat", "fc"};
enum { TRAIN_LEAVES = 14 };

/* Backward through the chain's leaves one at a time; returns dx. */
static void reference_backward(chain *ch, const heed_tensor *dy, heed_tensor *dx) {
    heed_tensor g = {0}, gin = {0};
    ck_assert_int_eq(heed_tensor_ensure(&g, dy->n, dy->c, dy->h, dy->w), HEED_OK);
    memcpy(g.data, dy->data, heed_tensor_count(dy) * sizeof(float));
    for (int i = ch->n - 1; i >= 0; i--) {
        const heed_tensor *in = ch->in[i];
        ck_assert_int_eq(heed_tensor_zeros_like(&gin, in), HEED_OK);
        ck_assert_int_eq(heed_layer_backward(ch->l[i], in, &ch->t[i], &g, &gin), HEED_OK);
        heed_tensor tmp = g;
        g = gin, gin = tmp;
    }
    ck_assert_int_eq(heed_tensor_ensure(dx, g.n, g.c, g.h, g.w), HEED_OK);
    memcpy(dx->data, g.data, heed_tensor_count(&g) * sizeof(float));
    heed_tensor_free(&g), heed_tensor_free(&gin);
}

/* Forward and backward of the network against the layer-by-layer chain, in
 * the given mode; the inference case is a backward after a lean forward
 * (Grad-CAM's use). */
static void check_backward(int training) {
    heed_net *net = parse_net(train_text, 5);
    heed_net_set_training(net, training);
    heed_tensor x, y = {0}, dy, dx, want_dx = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 4, 2, 11, 9), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 4, 2, 11, 9), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 6);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, y.n, y.c, y.h, y.w), HEED_OK);
    tu_fill_uniform(dy.data, heed_tensor_count(&dy), -1, 1, 7);
    heed_params_zero_grad(&net->params);
    tu_fill_uniform(dx.data, heed_tensor_count(&dx), -1, 1, 8); /* backward adds to dx */
    float *dx0 = malloc(heed_tensor_count(&dx) * sizeof(float));
    memcpy(dx0, dx.data, heed_tensor_count(&dx) * sizeof(float));
    ck_assert_int_eq(heed_net_backward(net, &x, &y, &dy, &dx), HEED_OK);
    for (size_t i = 0; i < heed_tensor_count(&dx); i++) dx.data[i] -= dx0[i];
    const size_t total = net->params.total;
    float *grads = malloc(total * sizeof(float));
    memcpy(grads, net->params.grads, total * sizeof(float));
    if (!training) {
        /* Grad-CAM reads the root's outputs and gradients after backward. */
        heed_seq *root = net->root;
        ck_assert_int_eq(heed_seq_activation(root, 2)->c, 6);
        ck_assert_int_eq(root->grads[2].c, 6);
    }

    chain ch = {0};
    heed_tensor *want = run_leaves(net, &ch, &x, train_order, TRAIN_LEAVES);
    expect_close(&y, want, 1e-5, training ? "training forward" : "inference forward");
    heed_params_zero_grad(&net->params);
    reference_backward(&ch, &dy, &want_dx);
    expect_close(&dx, &want_dx, 1e-4, "input gradient");
    for (int i = 0; i < net->params.count; i++) {
        heed_param *it = &net->params.items[i];
        if (it->flags & HEED_PARAM_BUFFER) continue;
        double err = tu_max_rel_err(grads + it->offset, net->params.grads + it->offset, it->count);
        ck_assert_msg(err < 1e-4, "%s gradient differs by %g (%s)", it->name, err,
                      training ? "training" : "inference");
    }
    chain_free(&ch);
    free(grads), free(dx0);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_tensor_free(&want_dx);
    heed_net_free(net);
}

START_TEST(training_sequence_matches_layer_by_layer) { check_backward(1); }
END_TEST

START_TEST(backward_after_inference_forward) { check_backward(0); }
END_TEST

typedef struct seq_ctx {
    heed_net *net;
    heed_tensor x, y, w;
} seq_ctx;

static double seq_loss(void *p) {
    seq_ctx *c = p;
    ck_assert_int_eq(heed_net_forward(c->net, &c->x, &c->y), HEED_OK);
    return tu_weighted_sum(c->y.data, c->w.data, heed_tensor_count(&c->y));
}

/* The fused training path differentiates its own forward: central
 * differences on a small conv / bn / relu stack. */
START_TEST(training_sequence_gradients_match_finite_differences) {
    static const char text[] = "input 2 6 5\n"
                               "conv name=c1 out=3 k=3 pad=1 bias=0\n"
                               "bn name=b1\n"
                               "relu name=r1\n"
                               "conv name=c2 out=2 k=3 pad=1\n"
                               "bn name=b2\n"
                               "relu name=r2\n";
    seq_ctx c = {0};
    ck_assert_int_eq(heed_net_parse(&c.net, text, "gc.net", 3), HEED_OK);
    heed_net_set_training(c.net, 1);
    ck_assert_int_eq(heed_tensor_alloc(&c.x, 3, 2, 6, 5), HEED_OK);
    tu_fill_uniform(c.x.data, heed_tensor_count(&c.x), -1, 1, 4);
    ck_assert_int_eq(heed_net_forward(c.net, &c.x, &c.y), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&c.w, c.y.n, c.y.c, c.y.h, c.y.w), HEED_OK);
    tu_fill_uniform(c.w.data, heed_tensor_count(&c.w), -1, 1, 5);
    heed_tensor dx;
    ck_assert_int_eq(heed_tensor_alloc(&dx, 3, 2, 6, 5), HEED_OK);
    heed_params_zero_grad(&c.net->params);
    seq_loss(&c);
    ck_assert_int_eq(heed_net_backward(c.net, &c.x, &c.y, &c.w, &dx), HEED_OK);
    /* Small steps: a relu after a batch norm on batch statistics moves with
     * every input of its channel, and a larger step would cross its kink. */
    TU_GRADCHECK("input", seq_loss, &c, c.x.data, heed_tensor_count(&c.x), dx.data, 1e-3f, 3e-2);
    heed_params *p = &c.net->params;
    for (int i = 0; i < p->count; i++) {
        heed_param *it = &p->items[i];
        if (it->flags & HEED_PARAM_BUFFER) continue;
        TU_GRADCHECK(it->name, seq_loss, &c, p->values + it->offset, it->count,
                     p->grads + it->offset, 1e-3f, 3e-2);
    }
    heed_tensor_free(&c.x), heed_tensor_free(&c.y), heed_tensor_free(&c.w), heed_tensor_free(&dx);
    heed_net_free(c.net);
}
END_TEST

Suite *heed_suite_fuse(void) {
    Suite *s = suite_create("fuse");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, fused_conv_matches_conv_then_bn_then_relu, 0,
                        (int)(sizeof fuse_cases / sizeof fuse_cases[0]));
    tcase_add_test(tc, inference_sequence_matches_layer_by_layer);
    tcase_add_test(tc, hardswish_fuses_into_the_convolution);
    tcase_add_test(tc, inference_forward_reuses_its_buffers);
    tcase_add_test(tc, attention_ending_a_residual_body_adds_the_sum);
    tcase_add_test(tc, convolution_that_cannot_pool_says_so);
    tcase_add_loop_test(tc, stem_pools_its_own_output, 0,
                        (int)(sizeof stem_texts / sizeof stem_texts[0]));
    tcase_add_test(tc, training_sequence_matches_layer_by_layer);
    tcase_add_test(tc, backward_after_inference_forward);
    tcase_add_test(tc, training_sequence_gradients_match_finite_differences);
    suite_add_tcase(s, tc);
    return s;
}
