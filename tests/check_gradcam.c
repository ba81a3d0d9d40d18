/* check_gradcam.c -- Grad-CAM against two independent truths: CAM's closed
 * form for a network that ends in global average pooling and one linear
 * layer (a direct convolution written here, the linear weights read from
 * the parameters), and, for a nonlinear head, the map weights from finite
 * differences of the class score with each map shifted as a whole, the
 * layers run one by one. Gradient saliency against a linear network's
 * weights and against finite differences of the score in each input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcam.h"
#include "net.h"
#include "seq.h"
#include "testutil.h"

static heed_net *parse(const char *text) {
    heed_net *net = NULL;
    ck_assert_msg(heed_net_parse(&net, text, "gradcam.net", 7) == HEED_OK, "%s", heed_last_error());
    heed_net_set_training(net, 0);
    return net;
}

static const float *param(heed_net *net, const char *name) {
    heed_param *p = heed_params_find(&net->params, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return net->params.values + p->offset;
}

static heed_tensor random_image(int c, int h, int w, uint64_t seed) {
    heed_tensor x = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 1, c, h, w), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1.0f, 1.0f, seed);
    return x;
}

static void assert_close(const heed_tensor *got, const double *want, size_t n, double tol, const char *what) {
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    ck_assert_msg(scale > 0, "%s: the expected map is all zero: the test shows nothing", what);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got->data[i] - want[i]) <= tol * scale, "%s: element %zu: %.7g, expected %.7g", what,
                      i, (double)got->data[i], want[i]);
}

/* score_c = b_c + sum_k W[c,k] mean(A_k), so d score_c / d A_k(i,j) =
 * W[c,k] / (h w) everywhere: cam = relu(sum_k W[c,k] / (h w) A_k). */
START_TEST(gap_and_linear_head_gives_cam) {
    enum { C = 2, H = 9, W = 7, K = 5, CLASSES = 4 };
    heed_net *net = parse("input 2 9 7\nconv name=conv out=5 k=3 pad=1\nrelu\ngap\nfc name=fc out=4\n");
    heed_tensor x = random_image(C, H, W, 3), cam = {0};
    const float *cw = param(net, "conv.weight"), *cb = param(net, "conv.bias"), *fw = param(net, "fc.weight");
    static double a[K][H][W];
    for (int k = 0; k < K; k++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                double s = cb[k];
                for (int c = 0; c < C; c++)
                    for (int u = 0; u < 3; u++)
                        for (int v = 0; v < 3; v++) {
                            int y = i + u - 1, z = j + v - 1;
                            if (y < 0 || y >= H || z < 0 || z >= W) continue;
                            s += cw[((k * C + c) * 3 + u) * 3 + v] * x.data[(c * H + y) * W + z];
                        }
                a[k][i][j] = s > 0 ? s : 0;
            }
    ck_assert_int_eq(heed_gradcam_default_layer(net), 1);
    for (int cls = 0; cls < CLASSES; cls++) {
        double want[H * W];
        for (int p = 0; p < H * W; p++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += fw[cls * K + k] / (double)(H * W) * a[k][p / W][p % W];
            want[p] = s > 0 ? s : 0;
        }
        ck_assert_msg(heed_gradcam(net, &x, cls, 1, &cam) == HEED_OK, "%s", heed_last_error());
        ck_assert(cam.n == 1 && cam.c == 1 && cam.h == H && cam.w == W);
        char what[32];
        snprintf(what, sizeof what, "class %d", cls);
        assert_close(&cam, want, H * W, 1e-5, what);
    }
    heed_tensor_free(&x);
    heed_tensor_free(&cam);
    heed_net_free(net);
}
END_TEST

/* Runs top-level children first..last-1 on x, one by one, into *y. */
static void run_children(heed_net *net, int first, int last, const heed_tensor *x, heed_tensor *y) {
    heed_tensor cur = {0}, next = {0};
    ck_assert_int_eq(heed_tensor_ensure(&cur, x->n, x->c, x->h, x->w), HEED_OK);
    memcpy(cur.data, x->data, heed_tensor_count(x) * sizeof(float));
    for (int i = first; i < last; i++) {
        ck_assert_msg(heed_layer_forward(net->root->children[i], &cur, &next) == HEED_OK, "%s", heed_last_error());
        heed_tensor t = cur;
        cur = next, next = t;
    }
    heed_tensor_free(&next);
    *y = cur;
}

/* alpha_k = (1/hw) sum d score / d A_k = (1/hw) d score(A + e 1_k) / d e:
 * one central difference per map (a whole map shifted keeps every max
 * pool's choice, and tanh has no kinks). */
START_TEST(nonlinear_head_matches_finite_differences) {
    const int at = 2;
    heed_net *net = parse("input 1 10 10\nconv out=4 k=3 pad=1\nrelu\nconv out=3 k=3 pad=1\n"
                          "maxpool k=2\nfc out=6\ntanh\nfc out=5\n");
    heed_tensor x = random_image(1, 10, 10, 5), a = {0}, cam = {0};
    run_children(net, 0, at + 1, &x, &a);
    const int K = a.c, HW = a.h * a.w, last = net->root->count;
    for (int cls = 0; cls < 5; cls++) {
        double alpha[8], want[100];
        for (int k = 0; k < K; k++) {
            double s[2];
            for (int side = 0; side < 2; side++) {
                const float e = side ? 1e-2f : -1e-2f;
                heed_tensor shifted = {0}, logits = {0};
                run_children(net, at + 1, at + 1, &a, &shifted); /* a copy */
                for (int p = 0; p < HW; p++) shifted.data[k * HW + p] += e;
                run_children(net, at + 1, last, &shifted, &logits);
                s[side] = logits.data[cls];
                heed_tensor_free(&shifted);
                heed_tensor_free(&logits);
            }
            alpha[k] = (s[1] - s[0]) / 2e-2 / HW;
        }
        for (int p = 0; p < HW; p++) {
            double v = 0;
            for (int k = 0; k < K; k++) v += alpha[k] * a.data[k * HW + p];
            want[p] = v > 0 ? v : 0;
        }
        ck_assert_msg(heed_gradcam(net, &x, cls, at, &cam) == HEED_OK, "%s", heed_last_error());
        ck_assert(cam.h == a.h && cam.w == a.w);
        char what[32];
        snprintf(what, sizeof what, "class %d", cls);
        assert_close(&cam, want, (size_t)HW, 2e-3, what);
    }
    heed_tensor_free(&x);
    heed_tensor_free(&a);
    heed_tensor_free(&cam);
    heed_net_free(net);
}
END_TEST

START_TEST(refuses_what_has_no_map) {
    heed_net *net = parse("input 2 9 7\nconv out=5 k=3 pad=1\nrelu\ngap\nfc out=4\n");
    heed_tensor x = random_image(2, 9, 7, 1), cam = {0}, two = {0};
    const struct {
        int cls, layer;
        const char *says;
    } bad[] = {
        {4, 1, "class 4 is not in 0..3"},  {-1, 1, "class -1 is not in 0..3"},
        {0, 3, "layer 3 is not a top-level layer before the output (0..2)"},
        {0, -1, "layer -1 is not"},        {0, 2, "outputs 5x1x1: Grad-CAM needs a map"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(heed_gradcam(net, &x, bad[i].cls, bad[i].layer, &cam), HEED_ERR_ARG);
        ck_assert_msg(strstr(heed_last_error(), bad[i].says), "%s", heed_last_error());
    }
    ck_assert_int_eq(heed_tensor_alloc(&two, 2, 2, 9, 7), HEED_OK);
    ck_assert_int_eq(heed_gradcam(net, &two, 0, 1, &cam), HEED_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "x is (2, 2, 9, 7), expected one image (1, 2, 9, 7)"));
    heed_net_free(net);
    /* A batch norm followed by a relu runs as one step that keeps only the
     * relu's output (seq.h): its own map does not exist to weigh. Refused
     * by name, before anything runs, pointing at the relu; the layers
     * around it still give maps. */
    net = parse("input 2 9 7\nconv name=c out=5 k=3 pad=1\nbn name=b\nrelu name=r\ngap\nfc out=4\n");
    ck_assert_int_eq(heed_gradcam(net, &x, 0, 1, &cam), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "layer b") && strstr(heed_last_error(), "take r"), "%s",
                  heed_last_error());
    for (int layer = 0; layer <= 2; layer += 2) {
        ck_assert_msg(heed_gradcam(net, &x, 0, layer, &cam) == HEED_OK, "%s", heed_last_error());
        ck_assert(cam.h == 9 && cam.w == 7);
    }
    ck_assert_int_eq(heed_gradcam_default_layer(net), 2);
    heed_net_free(net);
    /* gradcam.h: the last top-level layer before the output with a map,
     * which may be the one right before it. */
    net = parse("input 1 8 8\nconv out=2 k=3 pad=1\nrelu\nconv out=3 k=3 pad=1\nfc out=2\n");
    ck_assert_int_eq(heed_gradcam_default_layer(net), 2);
    heed_net_free(net);
    net = parse("input 3 1 1\nfc out=4\nrelu\nfc out=2\n");
    ck_assert_int_eq(heed_gradcam_default_layer(net), -1);
    heed_net_free(net);
    /* a network that is its output layer alone (as RAM is, one module) has
     * no layer to choose: said so, not "(0..-1)" */
    net = parse("input 2 9 7\nfc out=4\n");
    ck_assert_int_eq(heed_gradcam(net, &x, 0, 0, &cam), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "the network has no top-level layer before its output"), "%s",
                  heed_last_error());
    /* NULL where a network or the map goes: refused, not a crash */
    ck_assert_int_eq(heed_gradcam(NULL, &x, 0, 0, &cam), HEED_ERR_ARG);
    ck_assert_int_eq(heed_gradcam(net, &x, 0, 0, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_saliency(NULL, &x, 0, &cam), HEED_ERR_ARG);
    ck_assert_int_eq(heed_saliency(net, &x, 0, NULL), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "heed_saliency: the output map is NULL"), "%s", heed_last_error());
    heed_net_free(net);
    heed_tensor_free(&x);
    heed_tensor_free(&two);
    heed_tensor_free(&cam);
}
END_TEST

/* score_c = b_c + sum_k W[c, k] x_k for a network that is one linear
 * layer, so d score_c / d x(ch, i, j) = W[c, (ch, i, j)]: the saliency is
 * the largest |W[c, (ch, i, j)]| over the channels. */
START_TEST(saliency_of_a_linear_network_is_its_weights) {
    enum { C = 2, H = 3, W = 4, CLASSES = 3 };
    heed_net *net = parse("input 2 3 4\nfc name=fc out=3\n");
    heed_tensor x = random_image(C, H, W, 5), map = {0};
    const float *fw = param(net, "fc.weight");
    for (int cls = 0; cls < CLASSES; cls++) {
        ck_assert_msg(heed_saliency(net, &x, cls, &map) == HEED_OK, "%s", heed_last_error());
        ck_assert(map.n == 1 && map.c == 1 && map.h == H && map.w == W);
        double want[H * W];
        for (int p = 0; p < H * W; p++)
            want[p] = fmax(fabs(fw[cls * C * H * W + p]), fabs(fw[cls * C * H * W + H * W + p]));
        assert_close(&map, want, H * W, 1e-6, "linear saliency");
    }
    heed_tensor_free(&x), heed_tensor_free(&map);
    heed_net_free(net);
}
END_TEST

/* A smooth nonlinear network (batch norm in inference, tanh, SE, average
 * pooling): each input value moved by +-h, the class score's central
 * difference, its largest magnitude over the channels. */
START_TEST(saliency_matches_finite_differences) {
    enum { C = 2, H = 6, W = 6 };
    heed_net *net = parse("input 2 6 6\nconv out=4 k=3 pad=1\nbn\ntanh\nse r=2\navgpool k=2\nfc out=3\n");
    heed_tensor x = random_image(C, H, W, 9), map = {0}, y = {0};
    const int cls = 1;
    ck_assert_msg(heed_saliency(net, &x, cls, &map) == HEED_OK, "%s", heed_last_error());
    double want[H * W] = {0};
    const float h = 1e-2f;
    for (int ch = 0; ch < C; ch++)
        for (int p = 0; p < H * W; p++) {
            float *v = &x.data[ch * H * W + p];
            const float keep = *v;
            *v = keep + h;
            ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
            const double up = y.data[cls];
            *v = keep - h;
            ck_assert_int_eq(heed_net_forward(net, &x, &y), HEED_OK);
            const double down = y.data[cls];
            *v = keep;
            want[p] = fmax(want[p], fabs((up - down) / (2.0 * h)));
        }
    assert_close(&map, want, H * W, 2e-3, "saliency");
    /* refused as Grad-CAM is */
    ck_assert_int_eq(heed_saliency(net, &x, 3, &map), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "heed_saliency: class 3 is not in 0..2"), "%s", heed_last_error());
    heed_tensor two = {0};
    ck_assert_int_eq(heed_tensor_alloc(&two, 2, C, H, W), HEED_OK);
    ck_assert_int_eq(heed_saliency(net, &two, 0, &map), HEED_ERR_SHAPE);
    heed_tensor_free(&x), heed_tensor_free(&map), heed_tensor_free(&y), heed_tensor_free(&two);
    heed_net_free(net);
}
END_TEST

Suite *heed_suite_gradcam(void) {
    Suite *s = suite_create("gradcam");
    TCase *tc = tcase_create("gradcam");
    tcase_add_test(tc, gap_and_linear_head_gives_cam);
    tcase_add_test(tc, nonlinear_head_matches_finite_differences);
    tcase_add_test(tc, refuses_what_has_no_map);
    tcase_add_test(tc, saliency_of_a_linear_network_is_its_weights);
    tcase_add_test(tc, saliency_matches_finite_differences);
    suite_add_tcase(s, tc);
    return s;
}
