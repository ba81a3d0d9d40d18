/* tensor.h -- float32 NCHW tensors with explicit ownership.
 *
 *   heed_tensor x;
 *   if (heed_tensor_alloc(&x, 8, 3, 32, 32) != HEED_OK) ...   // zeroed
 *   x.data[heed_tensor_index(&x, n, c, h, w)] = 1.0f;
 *   heed_tensor_free(&x);
 *
 * A tensor has up to 4 dimensions, always stored as (n, c, h, w) with the
 * unused trailing ones equal to 1: a (N, F) matrix is n = N, c = F, h = w = 1.
 * `ndim` says how many are meaningful (for printing and file formats).
 * Storage is 64-byte aligned. A tensor made by heed_tensor_alloc owns its
 * data and heed_tensor_free releases it; a view (heed_tensor_view) borrows
 * data the caller keeps alive, and heed_tensor_free on it only forgets it.
 */
#ifndef HEED_TENSOR_H
#define HEED_TENSOR_H

#include <stddef.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest element count a tensor may have (2^31 - 1): indices stay in
 * int range in kernels and byte sizes cannot overflow size_t. */
#define HEED_TENSOR_MAX_ELEMS ((size_t)0x7fffffff)

typedef struct heed_tensor {
    float *data; /* (n, c, h, w), 64-byte aligned */
    int n, c, h, w;
    int ndim;  /* 1..4 */
    int owned; /* 1 if heed_tensor_free releases data */
    size_t cap; /* floats allocated, for owned tensors */
} heed_tensor;

/* Element count n*c*h*w into *out, or HEED_ERR_LIMIT if a dimension is not
 * positive or the product exceeds HEED_TENSOR_MAX_ELEMS. */
heed_status heed_shape_count(int n, int c, int h, int w, size_t *out);

/* Allocates a zeroed tensor of shape (n, c, h, w), ndim 4. On failure *t is
 * left empty (data NULL) and the error says which shape failed. */
heed_status heed_tensor_alloc(heed_tensor *t, int n, int c, int h, int w);

/* Makes *t (n, c, h, w), reusing its storage when it is owned and large
 * enough (or a view of exactly that many elements), reallocating otherwise;
 * contents are unspecified afterwards. Lets callers keep one output tensor
 * across calls without allocating each time. When it must reallocate and
 * cannot, *t is left empty (its old storage freed, a view dropped); a
 * shape too large to count fails with *t as it was. */
heed_status heed_tensor_ensure(heed_tensor *t, int n, int c, int h, int w);

/* Sizes *t like `like` (heed_tensor_ensure) and zeroes it: the usual start
 * of a gradient that backward passes accumulate into. */
heed_status heed_tensor_zeros_like(heed_tensor *t, const heed_tensor *like);

/* A non-owning view of `data` (which must hold n*c*h*w floats). */
heed_tensor heed_tensor_view(float *data, int n, int c, int h, int w);

/* Releases owned storage; leaves *t empty. Safe on an empty tensor. */
void heed_tensor_free(heed_tensor *t);

/* Changes the shape keeping the element count; HEED_ERR_SHAPE otherwise. */
heed_status heed_tensor_reshape(heed_tensor *t, int n, int c, int h, int w);

static inline size_t heed_tensor_count(const heed_tensor *t) {
    return (size_t)t->n * t->c * t->h * t->w;
}

static inline size_t heed_tensor_index(const heed_tensor *t, int n, int c, int h, int w) {
    return (((size_t)n * t->c + c) * t->h + h) * t->w + w;
}

static inline int heed_tensor_same_shape(const heed_tensor *a, const heed_tensor *b) {
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

void heed_tensor_zero(heed_tensor *t);
void heed_tensor_fill(heed_tensor *t, float v);
/* dst = src; shapes must have the same element count. */
heed_status heed_tensor_copy(heed_tensor *dst, const heed_tensor *src);

/* 64-byte aligned allocation of `bytes` (NULL on failure or bytes == 0),
 * released with heed_free (NULL is ignored). Every tensor, parameter and
 * work buffer of heed comes from here, and the blocks live at once may not
 * pass the memory limit: NULL, not a process killed later for memory the
 * system promised but did not have. */
void *heed_alloc(size_t bytes);
void heed_free(void *p);

/* HEED_ERR_NOMEM, with a message that names what could not be allocated
 * (`what`, printf-style) and says whether the memory limit or the system
 * refused `bytes` (for a failed heed_alloc). */
heed_status heed_alloc_failed(size_t bytes, const char *what, ...)
    __attribute__((format(printf, 2, 3)));

/* The limit on heed_alloc's live bytes: by default the machine's physical
 * memory; heed_set_memory_limit sets another (0: the default again), for
 * a process that must leave room for others or a cgroup's smaller share. */
void heed_set_memory_limit(size_t bytes);
size_t heed_memory_limit(void);
/* Live bytes, each block's header included. Each thread that ran a matrix
 * product keeps its packing buffer (up to a few hundred KB) until it exits,
 * so after everything is freed the count is those buffers, not 0. */
size_t heed_memory_in_use(void);
int heed_memory_fits(size_t bytes); /* whether `bytes` more stay within the limit */

/* A growable scratch buffer owned by a layer: grown (never shrunk) to the
 * largest size asked for, so steady-state calls allocate nothing. */
typedef struct heed_scratch {
    float *data;
    size_t cap; /* floats */
} heed_scratch;

/* Returns a buffer of at least `count` floats in *out, growing s if needed.
 * HEED_ERR_NOMEM (s unchanged) when the block cannot be allocated. */
heed_status heed_scratch_get(heed_scratch *s, size_t count, float **out);
void heed_scratch_free(heed_scratch *s);

/* Work space a layer needs only during one call (im2col columns, shifted
 * copies, a product's padded output; a sequence's inference outputs, which
 * alternate between two buffers). Each layer has its own unless it is
 * handed a shared one (heed_layer_share_work): a network's layers share
 * its one, so that what each layer writes there is still in cache when
 * the next writes it again, where a buffer of each layer's own has gone
 * back to memory since that layer's last call. Sequences share a pair of
 * their depth in the network (a sequence's pair is free again when it
 * returns, and two at one depth never run at once: neither is inside the
 * other); deeper ones keep their own. A depth keeps one pair for each size
 * of image its sequences take in (the key: floats an image), up to
 * HEED_WORK_PAIRS. Threads share a batch out by images, so a buffer that
 * holds tensors of one image size is written in the same parts by the same
 * threads call after call. W1's two stages had shared one pair: a quarter
 * of the first stage's 6.4 MB output (batch 64) fell on lines the other
 * core had written last, and its first convolution took 0.42 ms on two
 * threads against 0.34 on one. A pair per image size: W1's inference at
 * batch 64 on two threads 1.09-1.14x faster, peak memory 25 -> 31 MB. */
enum { HEED_WORK_DEPTHS = 8, HEED_WORK_PAIRS = 4 };

typedef struct heed_buffer_pair {
    size_t key;      /* floats an image of the inputs it serves; 0: unused */
    heed_tensor t[2];
} heed_buffer_pair;

typedef struct heed_work {
    heed_scratch col, tmp;
    heed_buffer_pair pairs[HEED_WORK_DEPTHS][HEED_WORK_PAIRS];
} heed_work;

/* The pair at `depth` for inputs of `key` (> 0) floats an image: the one
 * kept for that key, else an unused one, now kept for it; NULL if the
 * depth has none left or is too deep. */
heed_tensor *heed_work_pair(heed_work *w, int depth, size_t key);

void heed_work_free(heed_work *w);

#ifdef __cplusplus
}
#endif

#endif
