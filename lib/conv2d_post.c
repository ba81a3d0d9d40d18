/* conv2d_post.c -- the convolutions' epilogue: y = act(a[o] * y + c[o])
 * on rows of output channels, after their matrix products (conv2d_impl.h). */
#include "conv2d_impl.h"
#include "wide.h"

HEED_WIDE void heed_conv_post_rows(float *y, size_t ld, size_t n, int o0, int rows,
                              const heed_conv_post *p) {
    if (!p) return;
    for (int r = 0; r < rows; r++) {
        float *restrict row = y + (size_t)r * ld;
        const float a = p->a ? p->a[o0 + r] : 1.0f, c = p->c ? p->c[o0 + r] : 0.0f;
        /* one loop per activation, each vectorized (heed_fused_act inlined) */
        if (p->act == HEED_FUSE_RELU)
            for (size_t i = 0; i < n; i++) row[i] = heed_fused_act(row[i] * a + c, HEED_FUSE_RELU);
        else if (p->act == HEED_FUSE_HARDSWISH)
            for (size_t i = 0; i < n; i++) row[i] = heed_fused_act(row[i] * a + c, HEED_FUSE_HARDSWISH);
        else
            for (size_t i = 0; i < n; i++) row[i] = row[i] * a + c;
    }
}

void heed_conv_post_block(const void *at, float *c, ptrdiff_t ldc, int row0, int rows, int cols) {
    const conv_post_at *pa = at;
    heed_conv_post_rows(c, (size_t)ldc, (size_t)cols, pa->o0 + row0, rows, pa->p);
}
