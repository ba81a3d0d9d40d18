/* ram_sensor.c -- RAM's glimpse sensor (retina) and its transpose.
 *
 * For an image x (C, H, W) and a location l = (lx, ly) in [-1, 1]^2 the
 * centre in pixels is (cx, cy) = (round((lx + 1) / 2 * W), round((ly + 1) / 2 * H)),
 * rounded half to even like torch.round, and shared by every scale. Scale
 * k = 0 .. S-1 reads the square of side s = P * f, f = 2^k, starting at
 * (cx - s/2, cy - s/2) (s/2 rounded down), and shrinks it to P x P by
 * averaging f x f blocks; pixels outside the image count as zeros:
 *
 *   forward:  p[k, c, py, px] = 1/f^2 sum_{a, b < f} x[c, y0 + py f + a, x0 + px f + b]
 *   backward: dx[c, y0 + py f + a, x0 + px f + b] += dp[k, c, py, px] / f^2
 *
 * The sensor is linear in x and piecewise constant in l (rounding), so it
 * passes no gradient to the location. 1/f^2 is a power of two, so the
 * multiplication equals PyTorch's division by the pooling window exactly.
 */
#include <math.h>

#include "parallel.h"
#include "ram.h"
#include "wide.h"

/* A largest patch side beyond this is a configuration error, and bounds the
 * pixel arithmetic well inside int. */
#define MAX_SIDE (1 << 20)

/* The centre pixel along an axis of `size` pixels; far-away locations are
 * clamped to where every patch is outside the image anyway. */
static int centre(float l, int size) {
    float c = nearbyintf((l + 1.0f) / 2.0f * (float)size);
    const float far = (float)(1 << 24);
    if (c > far) c = far;
    if (c < -far) c = -far;
    return (int)c;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Rows of patches up to this side are summed through a stack buffer. */
#define ROW_BUF 4096

/* o[px] = inv * the sum of row sums acc[px f .. px f + f-1], added in that
 * order from 0.0f: one loop for each common f, so that each vectorizes
 * across px (a loop over b inside one over px did not: the sensor took 28%
 * of RAM's batch-64 inference on one thread). */
static inline void shrink_row(const float *restrict acc, int P, int f, float inv,
                              float *restrict o) {
    switch (f) {
    case 1:
        for (int px = 0; px < P; px++) o[px] = (0.0f + acc[px]) * inv;
        break;
    case 2:
        for (int px = 0; px < P; px++) o[px] = ((0.0f + acc[2 * px]) + acc[2 * px + 1]) * inv;
        break;
    case 4:
        for (int px = 0; px < P; px++)
            o[px] = ((((0.0f + acc[4 * px]) + acc[4 * px + 1]) + acc[4 * px + 2]) + acc[4 * px + 3]) *
                    inv;
        break;
    default:
        for (int px = 0; px < P; px++) {
            float sum = 0.0f;
            for (int b = 0; b < f; b++) sum += acc[px * f + b];
            o[px] = sum * inv;
        }
    }
}

/* acc[0 .. side) = the sums of image rows ra .. rb-1 (ra < rb) over the
 * patch's columns x0 .. x0+side-1, zero for the columns qa .. qb-1 does
 * not cover (outside the image). */
static inline void sum_rows(const float *plane, int W, int ra, int rb, int x0, int qa, int qb,
                            int side, float *restrict acc) {
    for (int q = 0; q < qa; q++) acc[q] = 0.0f;
    for (int q = qb; q < side; q++) acc[q] = 0.0f;
    float *restrict in = acc + qa;
    const int len = qb - qa;
    const float *restrict r0 = plane + (size_t)ra * W + (x0 + qa);
    /* Up to four rows (a patch's 1, 2 and 4 at three scales) in one pass,
     * each sum in row order. 0.0f + v is v, or +0 for -0, which the
     * shrink's first add makes of it anyway: so written, a single row's
     * copy stays a vector loop instead of a call. */
    const int n = rb - ra;
    if (n == 1) {
        for (int q = 0; q < len; q++) in[q] = 0.0f + r0[q];
        return;
    }
    const float *restrict r1 = r0 + W;
    if (n == 2) {
        for (int q = 0; q < len; q++) in[q] = (0.0f + r0[q]) + r1[q];
        return;
    }
    const float *restrict r2 = r1 + W;
    if (n == 3) {
        for (int q = 0; q < len; q++) in[q] = ((0.0f + r0[q]) + r1[q]) + r2[q];
        return;
    }
    const float *restrict r3 = r2 + W;
    for (int q = 0; q < len; q++) in[q] = (((0.0f + r0[q]) + r1[q]) + r2[q]) + r3[q];
    for (int r = ra + 4; r < rb; r++) {
        const float *restrict row = plane + (size_t)r * W + (x0 + qa);
        for (int q = 0; q < len; q++) in[q] += row[q];
    }
}

/* One image into out (S, C, P, P). Each output row first sums its f image
 * rows over the patch's columns (contiguous, so the loops vectorize), then
 * adds f neighbours of that row sum per output value. */
HEED_WIDE static void glimpse_read(const float *img, int C, int H, int W, float lx, float ly,
                                   int P, int S, float *out) {
    const int cx = centre(lx, W), cy = centre(ly, H);
    float acc[ROW_BUF];
    for (int k = 0; k < S; k++) {
        const int f = 1 << k, side = P * f;
        const int y0 = cy - side / 2, x0 = cx - side / 2;
        const int qa = clampi(x0, 0, W) - x0, qb = clampi(x0 + side, 0, W) - x0; /* columns inside */
        const float inv = 1.0f / (float)(f * f);
        for (int c = 0; c < C; c++) {
            const float *plane = img + (size_t)c * H * W;
            float *o = out + ((size_t)k * C + c) * P * P;
            for (int py = 0; py < P; py++) {
                const int ra = clampi(y0 + py * f, 0, H), rb = clampi(y0 + py * f + f, 0, H);
                if (ra == rb || qa >= qb) {
                    for (int px = 0; px < P; px++) o[py * P + px] = 0.0f;
                    continue;
                }
                if (side > ROW_BUF) { /* rare: sum each block directly */
                    for (int px = 0; px < P; px++) {
                        const int ca = clampi(x0 + px * f, 0, W), cb = clampi(x0 + px * f + f, 0, W);
                        float sum = 0.0f;
                        for (int r = ra; r < rb; r++)
                            for (int q = ca; q < cb; q++) sum += plane[(size_t)r * W + q];
                        o[py * P + px] = sum * inv;
                    }
                    continue;
                }
                sum_rows(plane, W, ra, rb, x0, qa, qb, side, acc);
                shrink_row(acc, P, f, inv, o + py * P);
            }
        }
    }
}

/* The transpose: dout (S, C, P, P) scattered back into dimg. */
static void glimpse_scatter(float *dimg, int C, int H, int W, float lx, float ly, int P, int S,
                            const float *dout) {
    const int cx = centre(lx, W), cy = centre(ly, H);
    for (int k = 0; k < S; k++) {
        const int f = 1 << k, side = P * f;
        const int y0 = cy - side / 2, x0 = cx - side / 2;
        const float inv = 1.0f / (float)(f * f);
        for (int c = 0; c < C; c++) {
            float *plane = dimg + (size_t)c * H * W;
            const float *o = dout + ((size_t)k * C + c) * P * P;
            for (int py = 0; py < P; py++) {
                const int ra = clampi(y0 + py * f, 0, H), rb = clampi(y0 + py * f + f, 0, H);
                for (int px = 0; px < P; px++) {
                    const int ca = clampi(x0 + px * f, 0, W), cb = clampi(x0 + px * f + f, 0, W);
                    const float g = o[py * P + px] * inv;
                    for (int r = ra; r < rb; r++)
                        for (int q = ca; q < cb; q++) plane[(size_t)r * W + q] += g;
                }
            }
        }
    }
}

static heed_status check_args(const char *fn, const heed_tensor *loc, int N, int patch,
                              int scales) {
    if (patch < 1 || scales < 1 || scales > 21 || (long long)patch << (scales - 1) > MAX_SIDE)
        return heed_fail(HEED_ERR_ARG,
                         "%s: patch %d with %d scales (each >= 1, largest side at most %d)", fn,
                         patch, scales, MAX_SIDE);
    HEED_CHECK_SHAPE(loc->n == N && loc->c * loc->h * loc->w == 2,
                     "%s: locations (%d, %d, %d, %d), expected (%d, 2, 1, 1)", fn, loc->n, loc->c,
                     loc->h, loc->w, N);
    for (int i = 0; i < 2 * N; i++)
        if (!isfinite(loc->data[i]))
            return heed_fail(HEED_ERR_ARG, "%s: location %d of image %d is not finite", fn, i % 2,
                             i / 2);
    return HEED_OK;
}

heed_status heed_ram_sensor(const heed_tensor *x, const heed_tensor *loc, int patch, int scales,
                            heed_tensor *patches) {
    const int N = x->n, C = x->c, H = x->h, W = x->w;
    HEED_TRY(check_args("ram sensor", loc, N, patch, scales));
    HEED_TRY(heed_tensor_ensure(patches, N, scales * C, patch, patch));
    const size_t per = (size_t)scales * C * patch * patch;
    const double work = (double)N * C * patch * patch * (double)((1ull << (2 * scales)) - 1) / 3.0;
    PARALLEL_IF(N > 1 && work > 100000.0, "omp parallel for schedule(static)",
        for (int i = 0; i < N; i++)
            glimpse_read(x->data + (size_t)i * C * H * W, C, H, W, loc->data[2 * i],
                         loc->data[2 * i + 1], patch, scales, patches->data + i * per);
    );
    return HEED_OK;
}

heed_status heed_ram_sensor_backward(const heed_tensor *loc, int patch, int scales,
                                     const heed_tensor *dpatches, heed_tensor *dx) {
    const int N = dx->n, C = dx->c, H = dx->h, W = dx->w;
    HEED_TRY(check_args("ram sensor backward", loc, N, patch, scales));
    HEED_CHECK_SHAPE(dpatches->n == N && dpatches->c == scales * C && dpatches->h == patch &&
                         dpatches->w == patch,
                     "ram sensor backward: patch gradient (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                     dpatches->n, dpatches->c, dpatches->h, dpatches->w, N, scales * C, patch, patch);
    const size_t per = (size_t)scales * C * patch * patch;
    const double work = (double)N * C * patch * patch * (double)((1ull << (2 * scales)) - 1) / 3.0;
    PARALLEL_IF(N > 1 && work > 100000.0, "omp parallel for schedule(static)",
        for (int i = 0; i < N; i++)
            glimpse_scatter(dx->data + (size_t)i * C * H * W, C, H, W, loc->data[2 * i],
                            loc->data[2 * i + 1], patch, scales, dpatches->data + i * per);
    );
    return HEED_OK;
}
