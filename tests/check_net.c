/* check_net.c -- network files: the shipped descriptions against PyTorch's
 * parameter counts and FLOPs, and every kind of error with its line. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activation.h"
#include "batchnorm.h"
#include "cbam.h"
#include "conv2d.h"
#include "dropout.h"
#include "linear.h"
#include "model.h"
#include "net.h"
#include "netfile_impl.h"
#include "pool2d.h"
#include "se.h"
#include "seq.h"
#include "testutil.h"

/* Trainable parameters, buffers (BN running stats) and forward conv+fc FLOPs
 * per image, as PyTorch counts them for the same networks
 * (../shared/bench/peer_torch.py: sum of numel over parameters and buffers,
 * count_forward_flops; fmnist-mobile: bench/torch_agree.py's mobile_net,
 * counted by the same hooks). */
static const struct {
    const char *file;
    size_t params, buffers;
    double flops;
    int out;
} shipped[] = {
    {"nets/fmnist-plain.net", 468010, 384, 37383680, 10},
    {"nets/fmnist-se.net", 469398, 384, 37386240, 10},
    {"nets/fmnist-cbam.net", 469598, 388, 37580880, 10},
    {"nets/fmnist-mobile.net", 95762, 2176, 12920832, 10},
    {"nets/resnet18-plain.net", 11689512, 9600, 3628146688.0, 1000},
    {"nets/resnet18-se.net", 11778592, 9600, 3628320768.0, 1000},
    {"nets/resnet18-cbam.net", 11779392, 9616, 3630127528.0, 1000},
};

static void sum_matmul_flops(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    /* Only conv and fc, as PyTorch's hook counts; CBAM's shared MLP runs twice. */
    if (!strcmp(l->ops->type, "conv")) *(double *)ctx += l->ops->flops(l);
    /* heed counts the bias addition of fc layers too; PyTorch's hook does not. */
    if (!strcmp(l->ops->type, "fc"))
        *(double *)ctx += l->ops->flops(l) - (((heed_linear *)l)->b ? l->out_c : 0);
    if (!strcmp(l->ops->type, "cbam")) {
        heed_layer *fc1 = heed_layer_child(l, 0), *fc2 = heed_layer_child(l, 1);
        *(double *)ctx += fc1->ops->flops(fc1) + fc2->ops->flops(fc2) - fc1->out_c - fc2->out_c;
    }
}

START_TEST(shipped_nets_match_pytorch_counts) {
    heed_net *net;
    ck_assert_msg(heed_net_load(&net, shipped[_i].file, 1) == HEED_OK, "%s", heed_last_error());
    size_t buffers = 0;
    for (int i = 0; i < net->params.count; i++)
        if (net->params.items[i].flags & HEED_PARAM_BUFFER) buffers += net->params.items[i].count;
    ck_assert_uint_eq(heed_params_trainable(&net->params), shipped[_i].params);
    ck_assert_uint_eq(buffers, shipped[_i].buffers);
    double flops = 0;
    heed_net_visit(net, sum_matmul_flops, &flops);
    ck_assert_double_eq_tol(flops, shipped[_i].flops, 0.5);
    const heed_layer *root = &net->root->base;
    ck_assert_int_eq(root->out_c * root->out_h * root->out_w, shipped[_i].out);
    heed_net_free(net);
}
END_TEST

START_TEST(names_nest_and_forward_runs) {
    heed_net *net;
    ck_assert_int_eq(heed_net_load(&net, "nets/fmnist-cbam.net", 1), HEED_OK);
    ck_assert_ptr_nonnull(heed_net_find(net, "stage2.att"));
    ck_assert_str_eq(heed_net_find(net, "stage2.att")->ops->type, "cbam");
    ck_assert_ptr_nonnull(heed_params_find(&net->params, "stage1.conv1.weight"));
    ck_assert_ptr_nonnull(heed_params_find(&net->params, "stage2.att.fc1.bias"));
    ck_assert_ptr_nonnull(heed_params_find(&net->params, "fc2.weight"));
    heed_tensor x, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 3, 1, 28, 28), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 5);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    ck_assert_int_eq(y.n, 3);
    ck_assert_int_eq(y.c, 10);
    heed_tensor bad;
    ck_assert_int_eq(heed_tensor_alloc(&bad, 1, 1, 27, 28), HEED_OK);
    ck_assert_int_eq(heed_net_forward(net, &bad, &y), HEED_ERR_SHAPE);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&bad);
    heed_net_free(net);
}
END_TEST

START_TEST(default_names_count_per_type) {
    heed_net *net;
    const char *text = "input 2 5 5\nconv out=3 k=3 pad=1\nrelu\nconv out=3 k=1\nrelu\n"
                       "residual\n conv out=3 k=3 pad=1\nend\n";
    ck_assert_msg(heed_net_parse(&net, text, "t", 1) == HEED_OK, "%s", heed_last_error());
    ck_assert_ptr_nonnull(heed_net_find(net, "conv2"));
    ck_assert_ptr_nonnull(heed_net_find(net, "relu2"));
    ck_assert_ptr_nonnull(heed_net_find(net, "residual1.conv1"));
    heed_net_free(net);
    /* A shortcut goes on counting its body's types: no clash of names. */
    const char *shortcut = "input 2 6 6\nresidual\n conv out=4 k=3 stride=2 pad=1\n relu\n"
                           " conv out=4 k=3 pad=1\nshortcut\n conv out=4 k=1 stride=2\n bn\nend\n";
    ck_assert_msg(heed_net_parse(&net, shortcut, "t", 1) == HEED_OK, "%s", heed_last_error());
    const heed_layer *proj = heed_net_find(net, "residual1.conv3");
    ck_assert_ptr_nonnull(proj);
    ck_assert_int_eq(proj->in_c, 2); /* the shortcut's 1x1 */
    ck_assert_int_eq(proj->out_h, 3);
    ck_assert_ptr_nonnull(heed_net_find(net, "residual1.bn1"));
    ck_assert_ptr_nonnull(heed_net_find(net, "residual1.relu1"));
    heed_net_free(net);
}
END_TEST

static void note_frozen(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    uint64_t *seen = ctx; /* [0]: the first layer's freeze, [1]: layers that differ */
    if (seen[2]++ == 0) seen[0] = l->frozen;
    seen[1] += l->frozen != seen[0];
}

/* Freezing reaches every layer, nested ones too; each freeze has its own
 * number (a layer tells a copy made under an older freeze), thawing is 0. */
START_TEST(freezing_reaches_every_layer) {
    heed_net *net;
    ck_assert_int_eq(heed_net_load(&net, "nets/fmnist-cbam.net", 1), HEED_OK);
    uint64_t first = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t seen[3] = {0};
        heed_net_set_frozen(net, round < 2);
        heed_net_visit(net, note_frozen, seen);
        ck_assert_uint_gt(seen[2], 10);
        ck_assert_uint_eq(seen[1], 0);
        ck_assert_uint_eq(net->root->base.frozen, seen[0]);
        if (round == 0) first = seen[0];
        if (round < 2) ck_assert_uint_ne(seen[0], 0);
        if (round == 1) ck_assert_uint_ne(seen[0], first);
        if (round == 2) ck_assert_uint_eq(seen[0], 0);
    }
    heed_net_free(net);
}
END_TEST

/* A network's convolutions, one of each path (shifted copies at stride 1
 * and 2, a pointwise product, im2col with groups, few input channels, a
 * depthwise loop, CBAM's 7x7), and its sequences at three depths share its
 * work space; with their own instead, an inference forward and a training
 * step give the same bits. The shared space is poisoned first: no layer
 * may count on what it, or another, left there. */
static const char *every_path =
    "input 3 16 16\n"
    "conv out=8 k=5 pad=2\nrelu\n"
    "conv out=32 k=3 pad=1\nbn\nrelu\n"
    "conv out=32 k=3 pad=1 groups=32\n"
    "conv out=48 k=3 stride=2 pad=1 bias=0\nbn\n"
    "cbam r=4\n"
    "residual\n  conv out=48 k=3 pad=1 bias=0\n  bn\n  relu\n  conv out=48 k=1\n  se r=4\n"
    "shortcut\n  conv name=proj out=48 k=1 bias=0\n  bn name=proj_bn\nend\nrelu\n"
    "conv out=64 k=1\nrelu\n"
    "conv out=64 k=3 pad=1 groups=4\n"
    "gap\nfc out=5\n";

static void train_step(heed_net *net, const heed_tensor *x, heed_tensor *y, const heed_tensor *dy,
                       heed_tensor *dx) {
    heed_params_zero_grad(&net->params);
    heed_tensor_zero(dx);
    ck_assert_int_eq(heed_net_forward(net, x, y), HEED_OK);
    ck_assert_int_eq(heed_net_backward(net, x, y, dy, dx), HEED_OK);
}

/* Counts convolutions and sequences: seen[0] all, seen[1] those on their
 * own work space that used it, seen[2] those on a shared one. */
static void note_work(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    int *seen = ctx;
    if (!strcmp(l->ops->type, "conv")) {
        const heed_conv2d *c = (const heed_conv2d *)l;
        seen[0]++;
        if (!c->work && (c->own_work.col.data || c->own_work.tmp.data)) seen[1]++;
        if (c->work) seen[2]++;
    } else if (!strcmp(l->ops->type, "seq")) {
        const heed_seq *q = (const heed_seq *)l;
        seen[0]++;
        if (!q->work && q->own_pingpong[0].data) seen[1]++;
        if (q->work) seen[2]++;
    }
}

static void poison(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = NAN;
}

static void poison_work(heed_work *w) {
    poison(w->col.data, w->col.cap);
    poison(w->tmp.data, w->tmp.cap);
    for (int d = 0; d < HEED_WORK_DEPTHS; d++)
        for (int i = 0; i < HEED_WORK_PAIRS; i++)
            for (int k = 0; k < 2; k++) {
                heed_tensor *t = &w->pairs[d][i].t[k];
                if (t->data) poison(t->data, t->cap);
            }
}

/* A copy of t (freed by the caller). */
static heed_tensor copy_of(const heed_tensor *t) {
    heed_tensor c;
    ck_assert_int_eq(heed_tensor_alloc(&c, t->n, t->c, t->h, t->w), HEED_OK);
    ck_assert_int_eq(heed_tensor_copy(&c, t), HEED_OK);
    return c;
}

START_TEST(layers_share_the_networks_work_space) {
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, every_path, "t", 3), HEED_OK);
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 3, 16, 16), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 5, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 3, 16, 16), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 7);
    tu_fill_uniform(dy.data, heed_tensor_count(&dy), -1, 1, 8);
    /* Batch norm's running statistics move with each training step: every
     * run below starts from these. */
    float *saved = malloc(net->params.total * sizeof(float));
    memcpy(saved, net->params.values, net->params.total * sizeof(float));
    /* Inference: the first forward sizes the shared space. */
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    int seen[3] = {0};
    heed_net_visit(net, note_work, seen);
    ck_assert_int_eq(seen[0], 12); /* 10 convolutions (CBAM's too), the body and the shortcut */
    ck_assert_int_eq(seen[2], 12);
    ck_assert_ptr_nonnull(net->work.pairs[2][0].t[0].data); /* the body's: root, residual, body */
    poison_work(&net->work);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    heed_tensor y_infer = copy_of(&y);
    heed_net_set_training(net, 1);
    train_step(net, &x, &y, &dy, &dx);
    poison_work(&net->work);
    memcpy(net->params.values, saved, net->params.total * sizeof(float));
    train_step(net, &x, &y, &dy, &dx);
    heed_tensor y_train = copy_of(&y), dx_train = copy_of(&dx);
    float *g1 = malloc(net->params.total * sizeof(float));
    memcpy(g1, net->params.grads, net->params.total * sizeof(float));
    /* Each layer its own space again. */
    heed_layer_share_work(&net->root->base, NULL);
    memcpy(net->params.values, saved, net->params.total * sizeof(float));
    train_step(net, &x, &y, &dy, &dx);
    ck_assert_mem_eq(y.data, y_train.data, heed_tensor_count(&y) * sizeof(float));
    ck_assert_mem_eq(dx.data, dx_train.data, heed_tensor_count(&dx) * sizeof(float));
    ck_assert_mem_eq(net->params.grads, g1, net->params.total * sizeof(float));
    memcpy(net->params.values, saved, net->params.total * sizeof(float));
    heed_net_set_training(net, 0);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    memset(seen, 0, sizeof seen);
    heed_net_visit(net, note_work, seen);
    /* Each on its own, and used it, but the shortcut: its one (fused) step
     * writes the block's buffer. */
    ck_assert_int_eq(seen[1], 11);
    ck_assert_int_eq(seen[2], 0);
    ck_assert_mem_eq(y.data, y_infer.data, heed_tensor_count(&y) * sizeof(float));
    for (size_t i = 0; i < heed_tensor_count(&y); i++) ck_assert(isfinite(y.data[i]));
    free(saved), free(g1);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_tensor_free(&y_infer), heed_tensor_free(&y_train), heed_tensor_free(&dx_train);
    heed_net_free(net);
}
END_TEST

/* A depth keeps a pair of inference buffers for each image size its
 * sequences take in (tensor.h): a and b, whose inputs differ, get a pair
 * each; b and c, whose inputs are alike, share one. Once a depth's pairs
 * are all taken, other sizes run on the sequences' own pairs, to the same
 * result. */
static const char *three_stages =
    "input 1 12 12\n"
    "seq name=a\n  conv out=3 k=3 pad=1\n  relu\n  conv out=3 k=3 pad=1\n  maxpool k=2\nend\n"
    "seq name=b\n  conv out=3 k=3 pad=1\n  relu\n  conv out=3 k=3 pad=1\nend\n"
    "seq name=c\n  conv out=3 k=3 pad=1\n  relu\n  conv out=3 k=3 pad=1\nend\n"
    "gap\nfc out=3\n";

START_TEST(a_depth_keeps_a_pair_per_image_size) {
    heed_net *net, *full;
    ck_assert_int_eq(heed_net_parse(&net, three_stages, "t", 5), HEED_OK);
    ck_assert_int_eq(heed_net_parse(&full, three_stages, "t", 5), HEED_OK);
    heed_net_set_training(net, 0);
    heed_net_set_training(full, 0);
    heed_tensor x, y = {0}, y_full = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 1, 12, 12), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 9);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    heed_work *w = &net->work;
    ck_assert_uint_eq(w->pairs[1][0].key, 12 * 12);   /* a's input */
    ck_assert_uint_eq(w->pairs[1][1].key, 3 * 6 * 6); /* b's and c's */
    ck_assert_uint_eq(w->pairs[1][2].key, 0);
    ck_assert_ptr_nonnull(w->pairs[1][0].t[0].data);
    ck_assert_ptr_nonnull(w->pairs[1][1].t[0].data);
    /* The key's pair, else an unused one, else none. */
    ck_assert_ptr_eq(heed_work_pair(w, 1, 3 * 6 * 6), w->pairs[1][1].t);
    ck_assert_ptr_eq(heed_work_pair(w, 1, 7), w->pairs[1][2].t);
    ck_assert_ptr_eq(heed_work_pair(w, 1, 8), w->pairs[1][3].t);
    ck_assert_ptr_null(heed_work_pair(w, 1, 9));
    ck_assert_ptr_null(heed_work_pair(w, 1, 0));
    ck_assert_ptr_null(heed_work_pair(w, HEED_WORK_DEPTHS, 7));
    /* Depth 1's pairs all taken before its first forward: a, b and c run
     * on pairs of their own, to the same bits. */
    for (size_t key = 1; key <= HEED_WORK_PAIRS; key++)
        ck_assert_ptr_nonnull(heed_work_pair(&full->work, 1, key));
    ck_assert_int_eq(heed_net_forward(full, &x, &y_full), HEED_OK);
    for (int i = 0; i < HEED_WORK_PAIRS; i++) {
        ck_assert_uint_eq(full->work.pairs[1][i].key, (size_t)i + 1);
        ck_assert_ptr_null(full->work.pairs[1][i].t[0].data);
    }
    ck_assert_mem_eq(y.data, y_full.data, heed_tensor_count(&y) * sizeof(float));
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&y_full);
    heed_net_free(net), heed_net_free(full);
}
END_TEST

/* Each broken description and the line and words its error must name. */
static const struct {
    const char *text, *expect;
} broken[] = {
    {"", "no 'input C H W'"},
    {"conv out=3 k=3\n", "t:1: the first line must be 'input C H W'"},
    {"input 1 0 5\n", "t:1: input: '0'"},
    {"input 1 5 5\n# comment\nconv k=3\n", "t:3: conv: needs out="},
    {"input 1 5 5\nconv out=4 k=3 kernal=3\n", "t:2: conv: unknown setting 'kernal'"},
    {"input 1 5 5\nconv out=x k=3\n", "t:2: conv: out=x is not a whole number"},
    {"input 1 5 5\nfc out=1000000001\n", "t:2: fc: out=1000000001 is out of range (1 .. 1000000000)"},
    {"input 1 12 12\nram glimpses=-2000000000\n",
     "t:2: ram: glimpses=-2000000000 is out of range (-1000000000 .. 1000000000)"},
    {"input 1 5 5\ndropout seed=1000000001\n",
     "t:2: dropout: seed=1000000001 is out of range (-1000000000 .. 1000000000)"},
    /* quoted back in messages: no control character reaches the terminal */
    {"input 1 5 5\nconv out=2 k=3 bias=0\x01\n", "t:2: a control character (byte 0x01)"},
    {"input 1 5 5\nfc out=2 bias=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "t:2: bias='aaaaaaaaaaaaaaaaaaaa...' is too long"},
    {"input 1 5 5\nwarp out=3\n", "t:2: unknown layer type 'warp'"},
    {"input 1 5 5\nconv out=3 k=3 k=5\n", "t:2: setting 'k' given twice"},
    {"input 1 5 5\nconv out=3 k9\n", "t:2: expected key=value"},
    {"input 1 5 5\nrelu name=a\nrelu name=a\n", "t:3: two layers are named 'a'"},
    {"input 1 5 5\nend\n", "t:2: 'end' without an open block"},
    {"input 1 5 5\nresidual\nrelu\n", "t:2: block opened here has no 'end'"},
    {"input 1 5 5\nresidual\nconv out=4 k=3 pad=1\nend\n", "t:4: residual residual1: body gives (4, 5, 5)"},
    {"input 1 5 5\nshortcut\n", "t:2: 'shortcut' outside a residual block"},
    {"input 1 5 5\nconv out=3 k=9\n", "t:2: conv conv1: kernel 9"},
    {"input 4 5 5\nse r=8\n", "t:2: se se1: reduction r=8"},
    {"input 4 5 5\ncbam k=4\n", "t:2: cbam cbam1:"},
    {"input 1 5 5\n", "t: the network has no layers"},
    /* sizes whose products overflow an int are refused, not computed */
    {"input 65536 65536 2\n", "t:1: input: tensor shape (1, 65536, 65536, 2) has more than"},
    {"input 32768 1 1\nconv out=1 k=65536 pad=32768\n", "t:2: conv:"},
    {"input 2 200 200\nconv out=65536 k=1 groups=2\n", "t:2: conv:"},
    /* a number with anything after it is not that number */
    {"input 1 5 5\nconv out=3x k=3\n", "t:2: conv: out=3x is not a whole number"},
    {"input 2 5 5\nbn eps=1e-5x\n", "t:2: bn: eps=1e-5x is not a number"},
    /* 64 characters is one too many: never cut to k=3 */
    {"input 1 5 5\nconv out=2 k=0000000000000000000000000000000"
     "000000000000000000000000000000033\n", "t:2: k='00000000000000000000...' is too long"},
    /* 48 characters of full name, one too many */
    {"input 1 5 5\nseq name=aaaaaaaaaaaaaaaaaaaa\nrelu name=bbbbbbbbbbbbbbbbbbbbbbbbbbb\nend\n",
     "t:3: layer name 'aaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb' is too long"},
    {"input 1 5 5 5\nfc out=2\n", "t:1: the first line must be 'input C H W'"},
    {"input 1 5 5\nseq\nrelu\nend now\n", "t:4: 'end' takes no settings"},
    {"input 1 5 5\nresidual k=3\nrelu\nend\n", "t:2: 'residual' takes only name="},
    {"input 1 5 5\nseq x=1\nrelu\nend\n", "t:2: 'seq' takes only name="},
    {"input 1 5 5\nseq\nrelu\nshortcut\nrelu\nend\n", "t:4: 'shortcut' outside a residual block"},
    {"input 1 5 5\nresidual\nrelu\nshortcut\nrelu\nshortcut\nrelu\nend\n",
     "t:6: a second 'shortcut' in one residual block"},
    /* an even ECA kernel, in the file's terms: k=0 is refused, not "from the channels" */
    {"input 8 5 5\neca k=2\n", "t:2: eca: k=2 must be odd (leave k out to take it from the channels)"},
    /* the innermost block left open is the one named */
    {"input 1 5 5\nseq\nrelu\nseq\nrelu\n", "t:4: block opened here has no 'end'"},
};

START_TEST(errors_name_the_line) {
    heed_net *net = (heed_net *)1;
    heed_status st = heed_net_parse(&net, broken[_i].text, "t", 1);
    ck_assert_int_ne(st, HEED_OK);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(heed_last_error(), broken[_i].expect), "case %d: got '%s', want '%s'", _i,
                  heed_last_error(), broken[_i].expect);
}
END_TEST

/* Settings where 0 means nothing (the layers' configurations would read
 * it as "the default") and flags other than 0 and 1: refused as the line
 * is read, naming the file, the line, the key and the range. */
static const struct {
    const char *text, *expect;
} out_of_range[] = {
    {"input 1 5 5\nconv out=2 k=3 stride=0\n", "t:2: conv: stride=0 is out of range (1 .. 1000000000)"},
    {"input 2 5 5\nbn momentum=0\n",
     "t:2: bn: momentum=0 is out of range (heed's batch norm always updates its running statistics)"},
    {"input 2 5 5\nbn eps=0.0\n", "t:2: bn: eps=0.0 is out of range (eps must be > 0)"},
    {"input 2 5 5\nleaky_relu slope=-0\n", "t:2: leaky_relu: slope=-0 is out of range (write relu)"},
    {"input 1 5 5\nconv out=2 k=3 dilation=0\n", "t:2: conv: dilation=0 is out of range (1 .. 1000000000)"},
    {"input 1 5 5\nconv out=2 k=3 groups=0\n", "t:2: conv: groups=0 is out of range (1 .. 1000000000)"},
    {"input 1 5 5\n# comment\nconv out=2 k=3 bias=7\n", "t:3: conv: bias=7 is out of range (0 .. 1)"},
    {"input 1 5 5\nconv out=2 k=3 bias=-1\n", "t:2: conv: bias=-1 is out of range (0 .. 1)"},
    {"input 1 5 5\nconv out=0 k=3\n", "t:2: conv: out=0 is out of range (1 .. 1000000000)"},
    {"input 1 5 5\nconv out=2 k=0\n", "t:2: conv: k=0 is out of range (1 .. 1000000000)"},
    {"input 1 5 5\nconv out=2 k=3 pad=-1\n", "t:2: conv: pad=-1 is out of range (0 .. 1000000000)"},
    {"input 1 6 6\nmaxpool k=2 stride=0\n", "t:2: maxpool: stride=0 is out of range (1 .. 1000000000)"},
    {"input 1 6 6\navgpool k=2 stride=0\n", "t:2: avgpool: stride=0 is out of range (1 .. 1000000000)"},
    {"input 1 6 6\navgpool k=3 pad=1 exclude_pad=2\n", "t:2: avgpool: exclude_pad=2 is out of range (0 .. 1)"},
    {"input 1 5 5\nfc out=0\n", "t:2: fc: out=0 is out of range (1 .. 1000000000)"},
    {"input 1 5 5\nfc out=3 bias=2\n", "t:2: fc: bias=2 is out of range (0 .. 1)"},
    {"input 16 5 5\nse r=0\n", "t:2: se: r=0 is out of range (1 .. 1000000000)"},
    {"input 16 5 5\ncbam r=0\n", "t:2: cbam: r=0 is out of range (1 .. 1000000000)"},
    {"input 1 5 5\ncbam r=0\n", "t:2: cbam: r=0 is out of range (1 .. 1000000000)"},
    {"input 16 5 5\ncbam k=0\n", "t:2: cbam: k=0 is out of range (1 .. 1000000000)"},
    {"input 8 5 5\nseq\n  conv out=8 k=1\n  cbam r=2 k=0\nend\n", "t:4: cbam: k=0 is out of range"},
};

START_TEST(settings_out_of_range_name_the_line) {
    heed_net *net = (heed_net *)1;
    heed_status st = heed_net_parse(&net, out_of_range[_i].text, "t", 1);
    ck_assert_ptr_null(net);
    ck_assert_msg(st == HEED_ERR_FORMAT && strstr(heed_last_error(), out_of_range[_i].expect),
                  "case %d: got %d '%s', want %d '%s'", _i, st, heed_last_error(), HEED_ERR_FORMAT,
                  out_of_range[_i].expect);
}
END_TEST

/* Settings where 0 means something still take it, and settings left out
 * still take their defaults. */
START_TEST(zero_settings_and_defaults_load) {
    heed_net *net;
    const char *text = "input 16 8 8\n"
                       "conv name=a out=16 k=3 pad=0 bias=0\n"
                       "conv name=b out=16 k=1 stride=1 dilation=1 groups=1 bias=1\n"
                       "maxpool name=m k=2 pad=0\n"
                       "avgpool name=v k=1 exclude_pad=0\n"
                       "cbam name=c\nse name=s r=4\n"
                       "bn name=n\nleaky_relu name=l\ndropout name=d\n"
                       "fc name=f out=3 bias=0\n";
    ck_assert_msg(heed_net_parse(&net, text, "t", 1) == HEED_OK, "%s", heed_last_error());
    const heed_conv2d *a = (const heed_conv2d *)heed_net_find(net, "a");
    ck_assert_int_eq(a->cfg.stride, 1);
    ck_assert_int_eq(a->cfg.dilation, 1);
    ck_assert_int_eq(a->cfg.groups, 1);
    ck_assert_int_eq(a->cfg.pad, 0);
    ck_assert_ptr_null(a->b);
    ck_assert_int_eq(a->base.out_h, 6);
    ck_assert_ptr_nonnull(((const heed_conv2d *)heed_net_find(net, "b"))->b);
    const heed_pool2d *m = (const heed_pool2d *)heed_net_find(net, "m");
    ck_assert_int_eq(m->cfg.stride, 2);
    ck_assert_int_eq(m->base.out_h, 3);
    ck_assert_int_eq(((const heed_pool2d *)heed_net_find(net, "v"))->cfg.stride, 1);
    const heed_cbam *c = (const heed_cbam *)heed_net_find(net, "c");
    ck_assert_int_eq(c->cfg.r, 16);
    ck_assert_int_eq(c->cfg.k, 7);
    ck_assert_int_eq(((const heed_se *)heed_net_find(net, "s"))->cfg.r, 4);
    ck_assert_ptr_null(((const heed_linear *)heed_net_find(net, "f"))->b);
    /* nets/README.md's defaults, PyTorch's: BatchNorm2d(momentum=0.1,
     * eps=1e-5), LeakyReLU(negative_slope=0.01), Dropout(p=0.5) */
    const heed_batchnorm *n = (const heed_batchnorm *)heed_net_find(net, "n");
    ck_assert_float_eq(n->cfg.momentum, 0.1f);
    ck_assert_float_eq(n->cfg.eps, 1e-5f);
    ck_assert_float_eq(((const heed_activation *)heed_net_find(net, "l"))->cfg.slope, 0.01f);
    ck_assert_float_eq(((const heed_dropout *)heed_net_find(net, "d"))->cfg.p, 0.5f);
    heed_net_free(net);
}
END_TEST

/* A model file's parameter chunk bounds the network read with it: a
 * network of exactly that many floats loads, one of more is refused.
 * `fc out=2` on one input holds 2 weights and 2 biases. */
START_TEST(bounded_parse_takes_exactly_its_bound) {
    heed_net *net = (heed_net *)1;
    ck_assert_msg(heed_net_parse_bounded(&net, "input 1 1 1\nfc out=2\n", "t", 1, 4) == HEED_OK, "%s",
                  heed_last_error());
    ck_assert_uint_eq(heed_params_floats(&net->params), 4);
    heed_net_free(net);
    ck_assert_int_eq(heed_net_parse_bounded(&net, "input 1 1 1\nfc out=2\n", "t", 1, 3), HEED_ERR_FORMAT);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(heed_last_error(), "t: the network has 4 parameter values, more than the 3"), "%s",
                  heed_last_error());
}
END_TEST

/* Every network shipped in nets/ is within the rules its parser keeps. */
START_TEST(every_shipped_net_parses) {
    DIR *dp = opendir("nets");
    ck_assert_ptr_nonnull(dp);
    int files = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        const size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".net")) continue;
        char path[512];
        snprintf(path, sizeof path, "nets/%s", e->d_name);
        heed_net *net;
        ck_assert_msg(heed_net_describe(&net, path) == HEED_OK, "%s", heed_last_error());
        heed_net_free(net);
        files++;
    }
    closedir(dp);
    ck_assert_int_ge(files, (int)(sizeof shipped / sizeof shipped[0]));
}
END_TEST

START_TEST(missing_file_is_an_io_error) {
    heed_net *net;
    ck_assert_int_eq(heed_net_load(&net, "nets/no-such.net", 1), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "nets/no-such.net: No such file or directory"));
    /* A directory opens but does not read: the reason is given too. */
    ck_assert_int_eq(heed_net_load(&net, "nets", 1), HEED_ERR_IO);
    ck_assert_msg(strstr(heed_last_error(), "nets: Is a directory"), "%s", heed_last_error());
    /* A model where a network file was meant says so (it said "larger than
     * 1 MiB", or "a NUL byte" for a small model). */
    ck_assert_int_eq(heed_net_load(&net, "models/fmnist-se.heed", 1), HEED_ERR_FORMAT);
    ck_assert_str_eq(heed_last_error(), "models/fmnist-se.heed is a model or checkpoint file, not a network "
                                        "file (`heed info` shows the network it holds)");
}
END_TEST

/* A byte order mark (Windows editors) and CRLF line ends read as text. */
START_TEST(byte_order_mark_and_crlf_read) {
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, "\xef\xbb\xbfinput 1 4 4\r\nflatten\t\r\nfc out=3\r\n", "t", 1) ==
                      HEED_OK,
                  "%s", heed_last_error());
    ck_assert_ptr_nonnull(heed_net_find(net, "fc1"));
    heed_net_free(net);
}
END_TEST

/* A NUL byte would end the text early and the layers after it would be
 * dropped unread: the file is refused, at the NUL's line. */
START_TEST(nul_byte_is_refused) {
    char dir[256], path[300];
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "net-nul"), 0);
    snprintf(path, sizeof path, "%s/nul.net", dir);
    static const char text[] = "input 1 8 8\nconv out=2 k=3\n\0junk\nflatten\nfc out=3\n";
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    fclose(f);
    heed_net *net = (heed_net *)1;
    ck_assert_int_eq(heed_net_load(&net, path, 1), HEED_ERR_FORMAT);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(heed_last_error(), "nul.net:3: a NUL byte"), "%s", heed_last_error());
}
END_TEST

/* A network whose parameters and gradients need more than the memory
 * limit (1.5e12 floats: 12 TB, more than any machine has) is refused
 * before any of it is allocated, in a moment, saying why. */
START_TEST(network_too_large_for_memory_is_refused) {
    static char text[32768];
    size_t n = (size_t)snprintf(text, sizeof text, "input 1 1 1\n");
    for (int i = 0; i < 750; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "fc out=1000000000\nfc out=1\n");
    ck_assert_uint_lt(n, sizeof text - 1);
    const size_t before = heed_memory_in_use();
    heed_net *net = (heed_net *)1;
    ck_assert_int_eq(heed_net_parse(&net, text, "huge", 1), HEED_ERR_NOMEM);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(heed_last_error(), "parameters and their gradients") &&
                      strstr(heed_last_error(), "over the memory limit"),
                  "%s", heed_last_error());
    ck_assert_uint_eq(heed_memory_in_use(), before);
    /* within a limit set for it, the same file's smaller cousin loads */
    heed_set_memory_limit(before + ((size_t)64 << 20));
    ck_assert_int_eq(heed_net_parse(&net, "input 1 1 1\nfc out=1000000\n", "one", 1), HEED_OK);
    heed_net_free(net);
    ck_assert_int_eq(heed_net_parse(&net, "input 1 1 1\nfc out=10000000\n", "ten", 1),
                     HEED_ERR_NOMEM); /* 2 x 80 MB */
    heed_set_memory_limit(0);
    /* a forward whose activations pass the limit: the layer is named */
    ck_assert_int_eq(heed_net_parse(&net, "input 1 64 64\nconv name=wide out=64 k=3 pad=1\n"
                                          "gap\n", "wide", 1), HEED_OK);
    heed_tensor x = {0}, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 1, 1, 64, 64), HEED_OK);
    heed_set_memory_limit(heed_memory_in_use() + ((size_t)512 << 10)); /* the output: 1 MiB */
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_ERR_NOMEM);
    ck_assert_msg(!strncmp(heed_last_error(), "conv wide: cannot allocate tensor (1, 64, 64, 64)", 49),
                  "%s", heed_last_error());
    heed_set_memory_limit(0);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_net_free(net);
}
END_TEST

/* A network's first layer gets no dx to fill in training (heed train asks
 * for none): every layer's parameter gradients must be those it gives when
 * dx is wanted, which the layer suites check against definitions and
 * finite differences. A strided convolution on shifted copies once gave
 * another weight gradient without dx. */
static const char *first_layers[] = {
    "input 64 28 28\nconv out=16 k=3 stride=2 pad=1\nbn\nrelu\ngap\nfc out=3\n",
    "input 64 10 10\nconv out=16 k=1 stride=2 pad=1\nrelu\ngap\nfc out=3\n",
    "input 64 10 10\nconv out=16 k=1 stride=2\nrelu\ngap\nfc out=3\n",
    "input 64 20 20\nresidual\nconv out=64 k=3 stride=2 pad=1 bias=0\nbn\nrelu\nconv out=64 k=3 pad=1\n"
    "se r=8\nshortcut\nconv out=64 k=1 stride=2\nend\nrelu\ngap\nfc out=3\n",
    "input 8 12 12\ncbam r=2\nconv out=8 k=3\ngap\nfc out=3\n",
    "input 16 12 12\nse r=4\nbn\nconv out=8 k=3 groups=8 dilation=2\ngap\nfc out=3\n",
    "input 32 9 9\nconv out=32 k=3 pad=1 groups=32\nmaxpool k=3 stride=2 pad=1\nconv out=8 k=3\nfc out=3\n",
    "input 3 30 30\nconv out=8 k=7 stride=2 pad=3\nbn\nrelu\ngap\nfc out=3\n",
};

START_TEST(first_layers_train_alike_without_dx) {
    heed_net *net;
    ck_assert_msg(heed_net_parse(&net, first_layers[_i], "t", 5) == HEED_OK, "%s", heed_last_error());
    heed_net_set_training(net, 1);
    heed_tensor x, y = {0}, dy, dx;
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, net->in_c, net->in_h, net->in_w), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dy, 2, 3, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&dx, 2, net->in_c, net->in_h, net->in_w), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 11);
    tu_fill_uniform(dy.data, heed_tensor_count(&dy), -1, 1, 12);
    float *saved = malloc(net->params.total * sizeof(float));
    float *with_dx = malloc(net->params.total * sizeof(float));
    memcpy(saved, net->params.values, net->params.total * sizeof(float));
    train_step(net, &x, &y, &dy, &dx);
    memcpy(with_dx, net->params.grads, net->params.total * sizeof(float));
    memcpy(net->params.values, saved, net->params.total * sizeof(float)); /* running statistics */
    heed_params_zero_grad(&net->params);
    ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
    ck_assert_int_eq(heed_net_backward(net, &x, &y, &dy, NULL), HEED_OK);
    for (int k = 0; k < net->params.count; k++) {
        const heed_param *p = &net->params.items[k];
        const double err = tu_max_rel_err(net->params.grads + p->offset, with_dx + p->offset, p->count);
        ck_assert_msg(err < 1e-5, "net %d: %s's gradient differs by %g without dx", _i, p->name, err);
    }
    free(saved), free(with_dx);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
    heed_net_free(net);
}
END_TEST

/* A backward with no forward before it is refused as such (HEED_ERR_ARG
 * saying so), before any gradient is touched, in either mode; it failed
 * with HEED_ERR_LIMIT, "tensor shape (0, 0, 0, 0) has a dimension < 1",
 * from sizing a gradient like an output never made. A network of one step
 * too, whose input is the caller's x: the plan a forward makes was read
 * uninitialised (and before its start, valgrind: invalid read). */
START_TEST(backward_before_forward_is_refused) {
    static const char *const texts[] = {
        "input 2 6 6\nconv out=4 k=3 pad=1\nbn\nrelu\nresidual\n conv out=4 k=3 pad=1\n bn\nend\ngap\n"
        "fc out=3\n",
        "input 2 6 6\nconv out=4 k=3 pad=1\n",
        "input 2 6 6\nbn\nrelu\n",
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        heed_net *net;
        ck_assert_int_eq(heed_net_parse(&net, texts[t], "t", 3), HEED_OK);
        const heed_layer *root = &net->root->base;
        heed_tensor x, y, dy, dx;
        ck_assert_int_eq(heed_tensor_alloc(&x, 2, 2, 6, 6), HEED_OK);
        ck_assert_int_eq(heed_tensor_alloc(&y, 2, root->out_c, root->out_h, root->out_w), HEED_OK);
        ck_assert_int_eq(heed_tensor_alloc(&dy, 2, root->out_c, root->out_h, root->out_w), HEED_OK);
        ck_assert_int_eq(heed_tensor_alloc(&dx, 2, 2, 6, 6), HEED_OK);
        tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 1);
        tu_fill_uniform(dy.data, heed_tensor_count(&dy), -1, 1, 2);
        for (int training = 0; training < 2; training++) {
            heed_net_set_training(net, training);
            ck_assert_msg(heed_net_backward(net, &x, &y, &dy, &dx) == HEED_ERR_ARG, "%s", texts[t]);
            ck_assert_msg(strstr(heed_last_error(), "backward before any forward"), "%s", heed_last_error());
            for (size_t i = 0; i < net->params.total; i++) ck_assert_float_eq(net->params.grads[i], 0.0f);
            for (size_t i = 0; i < heed_tensor_count(&dx); i++) ck_assert_float_eq(dx.data[i], 0.0f);
        }
        ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
        ck_assert_int_eq(heed_net_backward(net, &x, &y, &dy, &dx), HEED_OK);
        heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&dx);
        heed_net_free(net);
    }
}
END_TEST

/* heed_net_describe: the same layers, shapes and parameter registry as
 * heed_net_load, nothing allocated; running it is refused, not a crash
 * (every shipped network, training and inference, frozen or not). */
static const char *const described[] = {"nets/fmnist-plain.net", "nets/fmnist-se.net",
                                        "nets/fmnist-cbam.net", "nets/resnet18-cbam.net",
                                        "nets/ram.net", "nets/cnn60.net"};

START_TEST(described_network_lists_but_does_not_run) {
    const char *path = described[_i];
    heed_net *full, *bare;
    ck_assert_msg(heed_net_load(&full, path, 1) == HEED_OK, "%s", heed_last_error());
    const size_t before = heed_memory_in_use();
    ck_assert_msg(heed_net_describe(&bare, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_ptr_null(bare->params.values);
    ck_assert_int_eq(bare->params.count, full->params.count);
    ck_assert_uint_eq(heed_params_floats(&bare->params), heed_params_floats(&full->params));
    ck_assert_uint_eq(heed_params_trainable(&bare->params), heed_params_trainable(&full->params));
    ck_assert_double_eq(heed_layer_flops(&bare->root->base), heed_layer_flops(&full->root->base));
    ck_assert_uint_lt(heed_memory_in_use() - before, (size_t)1 << 20);
    heed_tensor x = {0}, y = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, bare->in_c, bare->in_h, bare->in_w), HEED_OK);
    for (int mode = 0; mode < 3; mode++) {
        heed_net_set_training(bare, mode == 0);
        heed_net_set_frozen(bare, mode == 2);
        ck_assert_int_ne(heed_net_forward(bare, &x, &y), HEED_OK);
        ck_assert_msg(strstr(heed_last_error(), "not allocated"), "%s", heed_last_error());
        heed_net_set_frozen(bare, 0);
    }
    heed_tensor_free(&x), heed_tensor_free(&y);
    /* nor saved: there are no values to write */
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, bare), HEED_OK);
    ck_assert_int_eq(heed_model_save(m, "/tmp/heed-described-never-written.heed"), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "not allocated"), "%s", heed_last_error());
    ck_assert_int_ne(access("/tmp/heed-described-never-written.heed", F_OK), 0);
    heed_model_free(m);
    heed_net_free(full);
}
END_TEST

Suite *heed_suite_net(void) {
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, shipped_nets_match_pytorch_counts, 0, sizeof shipped / sizeof shipped[0]);
    tcase_add_test(tc, names_nest_and_forward_runs);
    tcase_add_test(tc, default_names_count_per_type);
    tcase_add_test(tc, freezing_reaches_every_layer);
    tcase_add_test(tc, layers_share_the_networks_work_space);
    tcase_add_test(tc, a_depth_keeps_a_pair_per_image_size);
    tcase_add_loop_test(tc, first_layers_train_alike_without_dx, 0,
                        (int)(sizeof first_layers / sizeof first_layers[0]));
    tcase_add_loop_test(tc, errors_name_the_line, 0, sizeof broken / sizeof broken[0]);
    tcase_add_loop_test(tc, settings_out_of_range_name_the_line, 0,
                        sizeof out_of_range / sizeof out_of_range[0]);
    tcase_add_test(tc, zero_settings_and_defaults_load);
    tcase_add_test(tc, bounded_parse_takes_exactly_its_bound);
    tcase_add_test(tc, every_shipped_net_parses);
    tcase_add_test(tc, missing_file_is_an_io_error);
    tcase_add_test(tc, nul_byte_is_refused);
    tcase_add_test(tc, byte_order_mark_and_crlf_read);
    tcase_add_test(tc, network_too_large_for_memory_is_refused);
    tcase_add_test(tc, backward_before_forward_is_refused);
    tcase_add_loop_test(tc, described_network_lists_but_does_not_run, 0,
                        sizeof described / sizeof described[0]);
    suite_add_tcase(s, tc);
    return s;
}
