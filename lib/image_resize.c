/* image_resize.c -- separable antialiased bilinear resizing.
 *
 * Along one axis of input length I and output length O, with scale s = I / O
 * (PyTorch's align_corners=False convention), output sample i is centred at
 * source coordinate c_i = s (i + 1/2) and
 *
 *     y_i = sum_j w_ij x_j / sum_j w_ij,    w_ij = tri((j + 1/2 - c_i) / r),
 *
 * with tri(t) = max(0, 1 - |t|) and radius r = max(s, 1): plain bilinear
 * interpolation when enlarging (r = 1), a triangle filter stretched over
 * the s source pixels an output pixel covers when shrinking, so every
 * source pixel contributes and patterns finer than the output grid average
 * out instead of aliasing. j runs over the source pixels within r of c_i,
 * clipped to the image; dividing by the weights' sum renormalises at the
 * borders (a constant image stays constant). This is the filter PyTorch's
 * F.interpolate(mode="bilinear", antialias=True) applies, with the same
 * window bounds: j from trunc(c_i - r + 1/2) (at least 0) to
 * trunc(c_i + r + 1/2) (at most I), exclusive.
 *
 * The 2-D resize applies the 1-D one along W, then along H.
 */
#include <math.h>
#include <stdlib.h>

#include "image.h"
#include "parallel.h"

typedef struct axis_plan {
    int *start; /* (O) first source index of each output's window */
    int *len;   /* (O) window lengths */
    float *w;   /* (O, K) normalised weights, K = the longest window */
    int K;
} axis_plan;

static void plan_free(axis_plan *p) {
    free(p->start);
    free(p->len);
    free(p->w);
    *p = (axis_plan){0};
}

static heed_status plan_make(axis_plan *p, int I, int O) {
    *p = (axis_plan){0};
    const double s = (double)I / O;
    const double r = s > 1.0 ? s : 1.0;
    const double inv = 1.0 / r;
    p->K = (int)ceil(r) * 2 + 1;
    p->start = malloc(sizeof(int) * (size_t)O);
    p->len = malloc(sizeof(int) * (size_t)O);
    p->w = malloc(sizeof(float) * (size_t)O * p->K);
    if (!p->start || !p->len || !p->w) {
        plan_free(p);
        return heed_fail(HEED_ERR_NOMEM, "heed_image_resize: cannot plan %d -> %d", I, O);
    }
    for (int i = 0; i < O; i++) {
        const double c = s * (i + 0.5);
        long lo = (long)(c - r + 0.5), hi = (long)(c + r + 0.5);
        if (lo < 0) lo = 0;
        if (hi > I) hi = I;
        int n = (int)(hi - lo);
        if (n > p->K) n = p->K; /* cannot happen: the window spans < 2r + 1 */
        float *w = p->w + (size_t)i * p->K;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            double t = fabs((lo + j + 0.5 - c) * inv);
            double v = t < 1.0 ? 1.0 - t : 0.0;
            w[j] = (float)v;
            sum += v;
        }
        for (int j = 0; j < n; j++) w[j] = sum > 0.0 ? (float)(w[j] / sum) : 0.0f;
        p->start[i] = (int)lo;
        p->len[i] = n;
    }
    return HEED_OK;
}

heed_status heed_image_resize(const heed_tensor *in, int h, int w, heed_tensor *out) {
    if (h < 1 || w < 1)
        return heed_fail(HEED_ERR_ARG, "heed_image_resize: output size %dx%d must be at least 1x1", h, w);
    if (in == out) return heed_fail(HEED_ERR_ARG, "heed_image_resize: out must not be in");
    HEED_CHECK_SHAPE(in->data && in->n >= 1 && in->c >= 1 && in->h >= 1 && in->w >= 1,
                     "heed_image_resize: input (%d, %d, %d, %d) is empty", in->n, in->c, in->h, in->w);
    const int P = in->n * in->c, H = in->h, W = in->w;
    HEED_TRY(heed_tensor_ensure(out, in->n, in->c, h, w));
    axis_plan ph, pw;
    HEED_TRY(plan_make(&pw, W, w));
    heed_status s = plan_make(&ph, H, h);
    if (s != HEED_OK) {
        plan_free(&pw);
        return s;
    }
    float *tmp = heed_alloc(sizeof(float) * (size_t)H * w); /* (H, w) one plane, rows resized */
    if (!tmp) {
        plan_free(&pw);
        plan_free(&ph);
        return heed_fail(HEED_ERR_NOMEM, "heed_image_resize: cannot allocate a %dx%d buffer", H, w);
    }
    const int big = (size_t)H * w + (size_t)h * w > 65536;
    for (int p = 0; p < P; p++) {
        const float *src = in->data + (size_t)p * H * W;
        float *dst = out->data + (size_t)p * h * w;
        PARALLEL_IF(big, "omp parallel for schedule(static)",
            for (int y = 0; y < H; y++) {
                const float *row = src + (size_t)y * W;
                for (int x = 0; x < w; x++) {
                    const float *k = pw.w + (size_t)x * pw.K;
                    const float *v = row + pw.start[x];
                    float acc = 0.0f;
                    for (int j = 0; j < pw.len[x]; j++) acc += k[j] * v[j];
                    tmp[(size_t)y * w + x] = acc;
                }
            });
        PARALLEL_IF(big, "omp parallel for schedule(static)",
            for (int y = 0; y < h; y++) {
                const float *k = ph.w + (size_t)y * ph.K;
                float *o = dst + (size_t)y * w;
                for (int x = 0; x < w; x++) o[x] = 0.0f;
                for (int j = 0; j < ph.len[y]; j++) {
                    const float *v = tmp + (size_t)(ph.start[y] + j) * w;
                    const float kj = k[j];
                    for (int x = 0; x < w; x++) o[x] += kj * v[x];
                }
            });
    }
    heed_free(tmp);
    plan_free(&pw);
    plan_free(&ph);
    return HEED_OK;
}
