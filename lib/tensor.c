/* tensor.c -- allocation, views and copies of NCHW float tensors. */
#include "tensor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *heed_alloc(size_t bytes) {
    if (bytes == 0 || bytes > SIZE_MAX - 63) return NULL;
    /* aligned_alloc wants a multiple of the alignment. */
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

void heed_free(void *p) { free(p); }

heed_status heed_shape_count(int n, int c, int h, int w, size_t *out) {
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return heed_fail(HEED_ERR_LIMIT, "tensor shape (%d, %d, %d, %d) has a dimension < 1",
                         n, c, h, w);
    size_t count = (size_t)n;
    const int rest[3] = {c, h, w};
    for (int i = 0; i < 3; i++) {
        if (count > HEED_TENSOR_MAX_ELEMS / (size_t)rest[i])
            return heed_fail(HEED_ERR_LIMIT, "tensor shape (%d, %d, %d, %d) has more than %zu elements",
                             n, c, h, w, HEED_TENSOR_MAX_ELEMS);
        count *= (size_t)rest[i];
    }
    *out = count;
    return HEED_OK;
}

heed_status heed_tensor_alloc(heed_tensor *t, int n, int c, int h, int w) {
    *t = (heed_tensor){0};
    size_t count;
    HEED_TRY(heed_shape_count(n, c, h, w, &count));
    float *data = heed_alloc(count * sizeof(float));
    if (!data)
        return heed_fail(HEED_ERR_NOMEM, "cannot allocate tensor (%d, %d, %d, %d)", n, c, h, w);
    memset(data, 0, count * sizeof(float));
    *t = (heed_tensor){.data = data, .n = n, .c = c, .h = h, .w = w, .ndim = 4, .owned = 1, .cap = count};
    return HEED_OK;
}

heed_status heed_tensor_ensure(heed_tensor *t, int n, int c, int h, int w) {
    size_t count;
    HEED_TRY(heed_shape_count(n, c, h, w, &count));
    /* An owned buffer large enough is reused; so is a caller's view of
     * exactly the right size (it lets layers write into views). */
    if (t->data && (t->owned ? t->cap >= count : heed_tensor_count(t) == count)) {
        t->n = n, t->c = c, t->h = h, t->w = w, t->ndim = 4;
        return HEED_OK;
    }
    heed_tensor_free(t);
    return heed_tensor_alloc(t, n, c, h, w);
}

heed_status heed_tensor_zeros_like(heed_tensor *t, const heed_tensor *like) {
    HEED_TRY(heed_tensor_ensure(t, like->n, like->c, like->h, like->w));
    heed_tensor_zero(t);
    return HEED_OK;
}

heed_tensor heed_tensor_view(float *data, int n, int c, int h, int w) {
    return (heed_tensor){.data = data, .n = n, .c = c, .h = h, .w = w, .ndim = 4, .owned = 0};
}

void heed_tensor_free(heed_tensor *t) {
    if (t->owned) heed_free(t->data);
    *t = (heed_tensor){0};
}

heed_status heed_tensor_reshape(heed_tensor *t, int n, int c, int h, int w) {
    size_t count;
    HEED_TRY(heed_shape_count(n, c, h, w, &count));
    if (count != heed_tensor_count(t))
        return heed_fail(HEED_ERR_SHAPE, "cannot reshape (%d, %d, %d, %d) to (%d, %d, %d, %d)",
                         t->n, t->c, t->h, t->w, n, c, h, w);
    t->n = n, t->c = c, t->h = h, t->w = w;
    return HEED_OK;
}

void heed_tensor_zero(heed_tensor *t) {
    if (t->data) memset(t->data, 0, heed_tensor_count(t) * sizeof(float));
}

void heed_tensor_fill(heed_tensor *t, float v) {
    size_t count = heed_tensor_count(t);
    for (size_t i = 0; i < count; i++) t->data[i] = v;
}

heed_status heed_tensor_copy(heed_tensor *dst, const heed_tensor *src) {
    if (heed_tensor_count(dst) != heed_tensor_count(src))
        return heed_fail(HEED_ERR_SHAPE, "tensor copy: %zu elements into %zu",
                         heed_tensor_count(src), heed_tensor_count(dst));
    memmove(dst->data, src->data, heed_tensor_count(src) * sizeof(float));
    return HEED_OK;
}

heed_status heed_scratch_get(heed_scratch *s, size_t count, float **out) {
    if (count > s->cap) {
        float *p = heed_alloc(count * sizeof(float));
        if (!p) return heed_fail(HEED_ERR_NOMEM, "cannot allocate %zu floats of scratch", count);
        heed_free(s->data);
        s->data = p;
        s->cap = count;
    }
    *out = s->data;
    return HEED_OK;
}

void heed_scratch_free(heed_scratch *s) {
    heed_free(s->data);
    *s = (heed_scratch){0};
}

void heed_work_free(heed_work *w) {
    heed_scratch_free(&w->col);
    heed_scratch_free(&w->tmp);
    for (int d = 0; d < HEED_WORK_DEPTHS; d++) {
        heed_tensor_free(&w->pingpong[d][0]);
        heed_tensor_free(&w->pingpong[d][1]);
    }
}
