/* tensor.c -- allocation, views and copies of NCHW float tensors. */
#include "tensor.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every heed_alloc block counts against a limit, by default the machine's
 * physical memory. Linux grants allocations it cannot back and kills the
 * process once their pages are touched, so a network or model file that
 * asks for more than the machine has (a fuzzed 'fc out=2000000000', a
 * 40000 x 40000 input) would end in SIGKILL; against the limit it fails
 * with an error that says so. Each block carries its size in a header of
 * one alignment unit, for heed_free to take back. */
#define ALLOC_ALIGN ((size_t)64)

static size_t g_limit;  /* 0: not set, the machine's memory */
static size_t g_in_use; /* bytes of live blocks, headers included */

/* Read once: sysconf asks the kernel each time. */
static size_t machine_memory(void) {
    static size_t known;
    size_t bytes = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (bytes) return bytes;
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    bytes = pages <= 0 || page <= 0 || (unsigned long)pages > SIZE_MAX / (unsigned long)page
                ? SIZE_MAX
                : (size_t)pages * (size_t)page;
    __atomic_store_n(&known, bytes, __ATOMIC_RELAXED);
    return bytes;
}

void heed_set_memory_limit(size_t bytes) { __atomic_store_n(&g_limit, bytes, __ATOMIC_RELAXED); }

size_t heed_memory_limit(void) {
    const size_t set = __atomic_load_n(&g_limit, __ATOMIC_RELAXED);
    return set ? set : machine_memory();
}

size_t heed_memory_in_use(void) { return __atomic_load_n(&g_in_use, __ATOMIC_RELAXED); }

static int fits(size_t used, size_t bytes) {
    const size_t limit = heed_memory_limit();
    return used <= limit && bytes <= limit - used;
}

int heed_memory_fits(size_t bytes) { return fits(heed_memory_in_use(), bytes); }

void *heed_alloc(size_t bytes) {
    if (bytes == 0 || bytes > SIZE_MAX - 2 * ALLOC_ALIGN) return NULL;
    /* aligned_alloc wants a multiple of the alignment. */
    const size_t total = ALLOC_ALIGN + ((bytes + ALLOC_ALIGN - 1) & ~(ALLOC_ALIGN - 1));
    const size_t before = __atomic_add_fetch(&g_in_use, total, __ATOMIC_RELAXED) - total;
    char *block = fits(before, total) ? aligned_alloc(ALLOC_ALIGN, total) : NULL;
    if (!block) {
        __atomic_sub_fetch(&g_in_use, total, __ATOMIC_RELAXED);
        return NULL;
    }
    memcpy(block, &total, sizeof total);
    return block + ALLOC_ALIGN;
}

void heed_free(void *p) {
    if (!p) return;
    char *block = (char *)p - ALLOC_ALIGN;
    size_t total;
    memcpy(&total, block, sizeof total);
    __atomic_sub_fetch(&g_in_use, total, __ATOMIC_RELAXED);
    free(block);
}

/* bytes in the largest binary unit that leaves at least 1 of it ("2.00 MiB",
 * "512 bytes"), so that a limit of a few MiB does not read "0.00 GiB". */
static const char *size_text(char out[32], size_t bytes) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(out, 32, "%zu bytes", bytes);
        return out;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) v /= 1024.0, u++;
    snprintf(out, 32, "%.2f %s", v, units[u]);
    return out;
}

heed_status heed_alloc_failed(size_t bytes, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const size_t limit = heed_memory_limit(), used = heed_memory_in_use();
    char b[32], u[32], l[32];
    if (!fits(used, bytes))
        return heed_fail(HEED_ERR_NOMEM,
                         "cannot allocate %s: %s, with %s in use, is over the "
                         "memory limit of %s (%s)",
                         what, size_text(b, bytes), size_text(u, used), size_text(l, limit),
                         __atomic_load_n(&g_limit, __ATOMIC_RELAXED) ? "heed_set_memory_limit"
                                                                     : "this machine's memory");
    return heed_fail(HEED_ERR_NOMEM, "cannot allocate %s (%s): out of memory", what, size_text(b, bytes));
}

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
    if (!data) return heed_alloc_failed(count * sizeof(float), "tensor (%d, %d, %d, %d)", n, c, h, w);
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
    /* Empty tensors have no data: memmove's NULL is undefined even for 0 bytes. */
    if (heed_tensor_count(src)) memmove(dst->data, src->data, heed_tensor_count(src) * sizeof(float));
    return HEED_OK;
}

heed_status heed_scratch_get(heed_scratch *s, size_t count, float **out) {
    if (count > s->cap) {
        /* Past this count * sizeof(float) wraps to a small block that
         * would be recorded as holding count floats. */
        if (count > SIZE_MAX / sizeof(float))
            return heed_fail(HEED_ERR_NOMEM, "cannot allocate work space of %zu floats: more bytes "
                             "than memory can address", count);
        float *p = heed_alloc(count * sizeof(float));
        if (!p) return heed_alloc_failed(count * sizeof(float), "work space");
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

heed_tensor *heed_work_pair(heed_work *w, int depth, size_t key) {
    if (depth < 0 || depth >= HEED_WORK_DEPTHS || key == 0) return NULL;
    heed_buffer_pair *p = w->pairs[depth];
    for (int i = 0; i < HEED_WORK_PAIRS; i++)
        if (p[i].key == key || p[i].key == 0) {
            p[i].key = key;
            return p[i].t;
        }
    return NULL;
}

void heed_work_free(heed_work *w) {
    heed_scratch_free(&w->col);
    heed_scratch_free(&w->tmp);
    for (int d = 0; d < HEED_WORK_DEPTHS; d++)
        for (int i = 0; i < HEED_WORK_PAIRS; i++) {
            heed_tensor_free(&w->pairs[d][i].t[0]);
            heed_tensor_free(&w->pairs[d][i].t[1]);
            w->pairs[d][i].key = 0;
        }
}
