/* conv_forward.c -- the smallest heed program: one convolution, forward.
 * Built against an installed heed by `make installcheck`:
 *   cc conv_forward.c $(pkg-config --cflags --libs heed) */
#include <heed/heed.h>
#include <stdio.h>
int main(void) {
    heed_params p = {0}; heed_conv2d *c; heed_tensor x, y = {0};
    heed_conv2d_new(&c, &(heed_conv2d_cfg){.in_c = 1, .out_c = 2, .k = 3, .pad = 1}, (int[3]){1, 4, 4}, &p, "c");
    heed_params_alloc(&p, 1); heed_tensor_alloc(&x, 1, 1, 4, 4); heed_tensor_fill(&x, 1);
    heed_status s = heed_conv2d_forward(c, &x, &y);
    printf("status %d, y (%d,%d,%d,%d), y[5]=%g\n", s, y.n, y.c, y.h, y.w, y.data[5]);
    return s;
}
