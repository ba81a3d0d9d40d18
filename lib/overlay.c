/* overlay.c -- colour maps, heat-map overlays and drawing on images.
 *
 * Colour maps map t in [0, 1] to RGB:
 *   jet:      r = clamp(1.5 - |4t - 3|), g = clamp(1.5 - |4t - 2|),
 *             b = clamp(1.5 - |4t - 1|)  (the classic piecewise-linear ramp);
 *   viridis, inferno, turbo: linear interpolation between 33 anchors at
 *             t = k / 32, sampled from matplotlib's 256-entry tables
 *             (turbo's is Google's); within 2/255 of the tables everywhere.
 *
 * Overlay: m' = (m - min m) / (max m - min m), resized to the image,
 *   out = (1 - alpha) * rgb(image) + alpha * colour(m').
 *
 * Drawing works on pixel centres with inclusive end points. A 1-pixel line
 * is Bresenham's, clipped to the image first (Liang-Barsky) so far-away end
 * points cost nothing; a thicker line fills the pixels within thickness / 2
 * of the segment, looking only at the clipped bounding box, so the cost is
 * bounded by the image size whatever the arguments.
 */
#include "overlay.h"

#include <math.h>
#include <stdint.h>
#include <strings.h>

#include "image.h"

/* ---- colour maps ------------------------------------------------------- */

#define ANCHORS 33

static const float viridis_anchors[ANCHORS][3] = {
    {0.2670f, 0.0049f, 0.3294f}, {0.2770f, 0.0502f, 0.3755f}, {0.2823f, 0.0946f, 0.4170f},
    {0.2829f, 0.1354f, 0.4530f}, {0.2789f, 0.1749f, 0.4830f}, {0.2708f, 0.2133f, 0.5066f},
    {0.2593f, 0.2507f, 0.5244f}, {0.2454f, 0.2867f, 0.5370f}, {0.2302f, 0.3213f, 0.5455f},
    {0.2148f, 0.3545f, 0.5510f}, {0.2000f, 0.3864f, 0.5545f}, {0.1861f, 0.4173f, 0.5567f},
    {0.1733f, 0.4474f, 0.5579f}, {0.1613f, 0.4770f, 0.5581f}, {0.1497f, 0.5064f, 0.5573f},
    {0.1384f, 0.5358f, 0.5551f}, {0.1281f, 0.5651f, 0.5509f}, {0.1209f, 0.5945f, 0.5442f},
    {0.1203f, 0.6238f, 0.5343f}, {0.1310f, 0.6529f, 0.5208f}, {0.1554f, 0.6815f, 0.5032f},
    {0.1930f, 0.7096f, 0.4812f}, {0.2415f, 0.7366f, 0.4545f}, {0.2986f, 0.7624f, 0.4230f},
    {0.3629f, 0.7867f, 0.3866f}, {0.4330f, 0.8091f, 0.3453f}, {0.5081f, 0.8292f, 0.2992f},
    {0.5873f, 0.8470f, 0.2489f}, {0.6694f, 0.8622f, 0.1954f}, {0.7529f, 0.8751f, 0.1427f},
    {0.8359f, 0.8861f, 0.1025f}, {0.9166f, 0.8961f, 0.1008f}, {0.9932f, 0.9062f, 0.1439f},
};

static const float inferno_anchors[ANCHORS][3] = {
    {0.0015f, 0.0005f, 0.0139f}, {0.0139f, 0.0112f, 0.0716f}, {0.0420f, 0.0280f, 0.1406f},
    {0.0815f, 0.0432f, 0.2144f}, {0.1285f, 0.0473f, 0.2896f}, {0.1823f, 0.0405f, 0.3539f},
    {0.2370f, 0.0366f, 0.3956f}, {0.2894f, 0.0453f, 0.4182f}, {0.3399f, 0.0618f, 0.4292f},
    {0.3897f, 0.0803f, 0.4331f}, {0.4393f, 0.0986f, 0.4317f}, {0.4889f, 0.1164f, 0.4259f},
    {0.5386f, 0.1339f, 0.4157f}, {0.5882f, 0.1516f, 0.4011f}, {0.6375f, 0.1704f, 0.3822f},
    {0.6858f, 0.1910f, 0.3591f}, {0.7328f, 0.2143f, 0.3321f}, {0.7776f, 0.2414f, 0.3016f},
    {0.8195f, 0.2728f, 0.2685f}, {0.8578f, 0.3090f, 0.2333f}, {0.8918f, 0.3500f, 0.1965f},
    {0.9210f, 0.3954f, 0.1584f}, {0.9451f, 0.4448f, 0.1188f}, {0.9640f, 0.4974f, 0.0776f},
    {0.9774f, 0.5526f, 0.0380f}, {0.9855f, 0.6100f, 0.0245f}, {0.9879f, 0.6692f, 0.0596f},
    {0.9847f, 0.7296f, 0.1222f}, {0.9759f, 0.7909f, 0.1973f}, {0.9623f, 0.8522f, 0.2867f},
    {0.9486f, 0.9109f, 0.3962f}, {0.9518f, 0.9608f, 0.5247f}, {0.9884f, 0.9984f, 0.6449f},
};

static const float turbo_anchors[ANCHORS][3] = {
    {0.1900f, 0.0718f, 0.2322f}, {0.2249f, 0.1632f, 0.4502f}, {0.2509f, 0.2517f, 0.6324f},
    {0.2680f, 0.3373f, 0.7790f}, {0.2762f, 0.4199f, 0.8897f}, {0.2755f, 0.4996f, 0.9648f},
    {0.2594f, 0.5777f, 0.9986f}, {0.2153f, 0.6567f, 0.9806f}, {0.1602f, 0.7332f, 0.9252f},
    {0.1130f, 0.8034f, 0.8482f}, {0.0927f, 0.8634f, 0.7655f}, {0.1179f, 0.9101f, 0.6900f},
    {0.1922f, 0.9474f, 0.5993f}, {0.2992f, 0.9758f, 0.4953f}, {0.4210f, 0.9935f, 0.3912f},
    {0.5400f, 0.9991f, 0.3005f}, {0.6384f, 0.9910f, 0.2365f}, {0.7205f, 0.9669f, 0.2073f},
    {0.7994f, 0.9277f, 0.2042f}, {0.8704f, 0.8768f, 0.2146f}, {0.9290f, 0.8173f, 0.2261f},
    {0.9707f, 0.7523f, 0.2262f}, {0.9921f, 0.6810f, 0.2059f}, {0.9963f, 0.5952f, 0.1724f},
    {0.9853f, 0.5018f, 0.1324f}, {0.9610f, 0.4084f, 0.0921f}, {0.9253f, 0.3229f, 0.0577f},
    {0.8797f, 0.2521f, 0.0349f}, {0.8230f, 0.1909f, 0.0195f}, {0.7547f, 0.1367f, 0.0093f},
    {0.6747f, 0.0895f, 0.0045f}, {0.5830f, 0.0492f, 0.0049f}, {0.4796f, 0.0158f, 0.0106f},
};

static const char *const cmap_names[] = {"jet", "viridis", "inferno", "turbo"};

heed_status heed_colormap_parse(const char *name, heed_colormap *out) {
    for (int i = 0; i < 4 && name; i++)
        if (strcasecmp(name, cmap_names[i]) == 0) {
            *out = (heed_colormap)i;
            return HEED_OK;
        }
    return heed_fail(HEED_ERR_ARG, "unknown colour map \"%s\" (jet, viridis, inferno or turbo)",
                     name ? name : "(null)");
}

const char *heed_colormap_name(heed_colormap cm) {
    return (unsigned)cm < 4 ? cmap_names[cm] : "?";
}

static float clamp01(float v) {
    return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0 */
}

void heed_colormap_rgb(heed_colormap cm, float t, float rgb[3]) {
    t = clamp01(t);
    const float (*a)[3];
    switch (cm) {
    case HEED_CMAP_VIRIDIS: a = viridis_anchors; break;
    case HEED_CMAP_INFERNO: a = inferno_anchors; break;
    case HEED_CMAP_TURBO: a = turbo_anchors; break;
    default:
        rgb[0] = clamp01(1.5f - fabsf(4.0f * t - 3.0f));
        rgb[1] = clamp01(1.5f - fabsf(4.0f * t - 2.0f));
        rgb[2] = clamp01(1.5f - fabsf(4.0f * t - 1.0f));
        return;
    }
    float pos = t * (ANCHORS - 1);
    int i = (int)pos;
    if (i > ANCHORS - 2) i = ANCHORS - 2;
    float f = pos - (float)i;
    for (int k = 0; k < 3; k++) rgb[k] = a[i][k] + f * (a[i + 1][k] - a[i][k]);
}

/* ---- overlay ----------------------------------------------------------- */

heed_status heed_overlay_heatmap(const heed_tensor *image, const heed_tensor *map, heed_colormap cm,
                                 float alpha, heed_tensor *out) {
    HEED_CHECK_SHAPE(image->data && image->n == 1 && image->c >= 1 && image->c <= 4,
                     "heed_overlay_heatmap: image must be (1, C, H, W) with C in 1..4, got (%d, %d, %d, %d)",
                     image->n, image->c, image->h, image->w);
    HEED_CHECK_SHAPE(map->data && map->n == 1 && map->c == 1,
                     "heed_overlay_heatmap: map must be (1, 1, h, w), got (%d, %d, %d, %d)",
                     map->n, map->c, map->h, map->w);
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return heed_fail(HEED_ERR_ARG, "heed_overlay_heatmap: alpha %g is not in [0, 1]", (double)alpha);
    if ((unsigned)cm >= 4)
        return heed_fail(HEED_ERR_ARG, "heed_overlay_heatmap: unknown colour map %d", (int)cm);
    if (out == image || out == map)
        return heed_fail(HEED_ERR_ARG, "heed_overlay_heatmap: out must not be an input");
    const int H = image->h, W = image->w;
    const size_t m = heed_tensor_count(map), HW = (size_t)H * W;

    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < m; i++)
        if (isfinite(map->data[i])) {
            if (map->data[i] < lo) lo = map->data[i];
            if (map->data[i] > hi) hi = map->data[i];
        }
    heed_tensor norm = {0}, big = {0};
    HEED_TRY(heed_tensor_alloc(&norm, 1, 1, map->h, map->w));
    const float range = hi - lo;
    if (range > 0.0f && isfinite(range))
        for (size_t i = 0; i < m; i++)
            norm.data[i] = isfinite(map->data[i]) ? (map->data[i] - lo) / range : 0.0f;
    /* else: constant or empty map, left at 0 */
    heed_status s = heed_image_resize(&norm, H, W, &big);
    heed_tensor_free(&norm);
    if (s == HEED_OK) s = heed_tensor_ensure(out, 1, 3, H, W);
    if (s != HEED_OK) {
        heed_tensor_free(&big);
        return s;
    }
    const int gray = image->c < 3;
    for (size_t i = 0; i < HW; i++) {
        float col[3];
        heed_colormap_rgb(cm, big.data[i], col);
        for (int k = 0; k < 3; k++) {
            float v = image->data[(gray ? 0 : (size_t)k) * HW + i];
            out->data[(size_t)k * HW + i] = (1.0f - alpha) * v + alpha * col[k];
        }
    }
    heed_tensor_free(&big);
    return HEED_OK;
}

/* ---- drawing ----------------------------------------------------------- */

static int drawable(const heed_tensor *img) {
    return img && img->data && (img->c == 3 || img->c == 1) && img->h > 0 && img->w > 0;
}

/* Fills [x0, x1] x [y0, y1] (inclusive, already ordered), clipped. */
static void fill_rect(heed_tensor *img, long long x0, long long y0, long long x1, long long y1,
                      const float rgb[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > img->w - 1) x1 = img->w - 1;
    if (y1 > img->h - 1) y1 = img->h - 1;
    if (x0 > x1 || y0 > y1) return;
    const size_t HW = (size_t)img->h * img->w;
    const float luma = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
    for (int n = 0; n < img->n; n++)
        for (int c = 0; c < img->c; c++) {
            float v = img->c == 1 ? luma : rgb[c];
            float *plane = img->data + ((size_t)n * img->c + c) * HW;
            for (long long y = y0; y <= y1; y++)
                for (long long x = x0; x <= x1; x++) plane[(size_t)y * img->w + (size_t)x] = v;
        }
}

void heed_draw_rect(heed_tensor *img, int x0, int y0, int x1, int y1, int thickness, const float rgb[3]) {
    if (!drawable(img)) return;
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    const long long t = thickness < 1 ? 1 : thickness;
    fill_rect(img, x0, y0, x1, y0 + t - 1, rgb);         /* top */
    fill_rect(img, x0, (long long)y1 - t + 1, x1, y1, rgb); /* bottom */
    fill_rect(img, x0, y0, x0 + t - 1, y1, rgb);         /* left */
    fill_rect(img, (long long)x1 - t + 1, y0, x1, y1, rgb); /* right */
}

/* Liang-Barsky: clips the segment to [0, W-1] x [0, H-1]; 0 if it misses. */
static int clip_segment(double *x0, double *y0, double *x1, double *y1, double W, double H) {
    double t0 = 0.0, t1 = 1.0;
    const double dx = *x1 - *x0, dy = *y1 - *y0;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {*x0, W - 1 - *x0, *y0, H - 1 - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0.0) {
            if (q[i] < 0.0) return 0;
        } else {
            double r = q[i] / p[i];
            if (p[i] < 0.0) {
                if (r > t1) return 0;
                if (r > t0) t0 = r;
            } else {
                if (r < t0) return 0;
                if (r < t1) t1 = r;
            }
        }
    }
    double ax = *x0, ay = *y0;
    *x0 = ax + t0 * dx, *y0 = ay + t0 * dy;
    *x1 = ax + t1 * dx, *y1 = ay + t1 * dy;
    return 1;
}

void heed_draw_line(heed_tensor *img, int x0, int y0, int x1, int y1, int thickness, const float rgb[3]) {
    if (!drawable(img)) return;
    if (thickness > 1) {
        const double half = thickness / 2.0;
        long long bx0 = (long long)floor(fmin(x0, x1) - half), bx1 = (long long)ceil(fmax(x0, x1) + half);
        long long by0 = (long long)floor(fmin(y0, y1) - half), by1 = (long long)ceil(fmax(y0, y1) + half);
        if (bx0 < 0) bx0 = 0;
        if (by0 < 0) by0 = 0;
        if (bx1 > img->w - 1) bx1 = img->w - 1;
        if (by1 > img->h - 1) by1 = img->h - 1;
        const double dx = (double)x1 - x0, dy = (double)y1 - y0, len2 = dx * dx + dy * dy;
        for (long long y = by0; y <= by1; y++)
            for (long long x = bx0; x <= bx1; x++) {
                /* Distance from the pixel centre to the closest point of the segment. */
                double px = (double)x - x0, py = (double)y - y0;
                double u = len2 > 0.0 ? (px * dx + py * dy) / len2 : 0.0;
                u = u < 0.0 ? 0.0 : (u > 1.0 ? 1.0 : u);
                double ex = px - u * dx, ey = py - u * dy;
                if (ex * ex + ey * ey <= half * half) fill_rect(img, x, y, x, y, rgb);
            }
        return;
    }
    double fx0 = x0, fy0 = y0, fx1 = x1, fy1 = y1;
    if (!clip_segment(&fx0, &fy0, &fx1, &fy1, img->w, img->h)) return;
    long long ax = llround(fx0), ay = llround(fy0), bx = llround(fx1), by = llround(fy1);
    const long long dx = ax < bx ? bx - ax : ax - bx, sx = ax < bx ? 1 : -1;
    const long long dy = ay < by ? ay - by : by - ay, sy = ay < by ? 1 : -1;
    long long err = dx + dy;
    for (;;) {
        fill_rect(img, ax, ay, ax, ay, rgb);
        if (ax == bx && ay == by) break;
        long long e2 = 2 * err;
        if (e2 >= dy) err += dy, ax += sx;
        if (e2 <= dx) err += dx, ay += sy;
    }
}

void heed_draw_disc(heed_tensor *img, int cx, int cy, int r, const float rgb[3]) {
    if (!drawable(img) || r < 0) return;
    long long x0 = (long long)cx - r, x1 = (long long)cx + r;
    long long y0 = (long long)cy - r, y1 = (long long)cy + r;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > img->w - 1) x1 = img->w - 1;
    if (y1 > img->h - 1) y1 = img->h - 1;
    /* Inside the clipped box |dx|, |dy| <= r < 2^31: the sums fit. */
    const unsigned long long r2 = (unsigned long long)r * (unsigned long long)r;
    for (long long y = y0; y <= y1; y++)
        for (long long x = x0; x <= x1; x++) {
            long long dx = x - cx, dy = y - cy;
            if ((unsigned long long)(dx * dx) + (unsigned long long)(dy * dy) <= r2)
                fill_rect(img, x, y, x, y, rgb);
        }
}

void heed_paste(heed_tensor *dst, const heed_tensor *src, int x, int y, int scale) {
    if (!dst || !src || !dst->data || !src->data || dst->n < 1 || src->n < 1) return;
    if (scale < 1) scale = 1;
    const long long S = scale;
    long long X0 = x, Y0 = y;
    long long X1 = X0 + (long long)src->w * S, Y1 = Y0 + (long long)src->h * S; /* exclusive */
    if (X0 < 0) X0 = 0;
    if (Y0 < 0) Y0 = 0;
    if (X1 > dst->w) X1 = dst->w;
    if (Y1 > dst->h) Y1 = dst->h;
    if (X0 >= X1 || Y0 >= Y1) return;
    const int C = src->c == 1 ? dst->c : (src->c < dst->c ? src->c : dst->c);
    const size_t dHW = (size_t)dst->h * dst->w, sHW = (size_t)src->h * src->w;
    for (int c = 0; c < C; c++) {
        const float *sp = src->data + (src->c == 1 ? 0 : (size_t)c) * sHW;
        float *dp = dst->data + (size_t)c * dHW;
        for (long long Y = Y0; Y < Y1; Y++) {
            const float *srow = sp + (size_t)((Y - y) / S) * src->w;
            float *drow = dp + (size_t)Y * dst->w;
            for (long long X = X0; X < X1; X++) drow[X] = srow[(X - x) / S];
        }
    }
}
