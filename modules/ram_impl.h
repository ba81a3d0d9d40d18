/* ram_impl.h -- internal (not installed): views into RAM's step-major
 * caches, shared by its forward (ram.c) and backward (ram_backward.c).
 * A cache holds R rows a step, F features a row, step after step. */
#ifndef HEED_RAM_IMPL_H
#define HEED_RAM_IMPL_H

#include "tensor.h"

/* Rows [r0, r1) of step t. */
static inline heed_tensor rows_of(const heed_tensor *buf, int t, int R, int r0, int r1, int F) {
    return heed_tensor_view(buf->data + ((size_t)t * R + r0) * F, r1 - r0, F, 1, 1);
}

/* Steps [t0, t0 + count), all of their rows. */
static inline heed_tensor steps(const heed_tensor *buf, int t0, int count, int R, int F) {
    return rows_of(buf, t0, R, 0, count * R, F);
}

#endif
