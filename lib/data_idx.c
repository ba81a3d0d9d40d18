/* data_idx.c -- Fashion-MNIST in the IDX format: reading and writing.
 *
 * An IDX file is a big-endian header followed by the data:
 *   magic (u32): 0x00 0x00 <type: 0x08 = unsigned byte> <ndim>
 *   ndim dimensions (u32 each)
 *   the product of the dimensions in bytes, row-major.
 * Images are (count, rows, cols), magic 0x00000803 = 2051; labels are
 * (count), magic 0x00000801 = 2049. zlib's gz functions read and write
 * both gzipped and plain files, so one code path serves both.
 *
 * Loading reads each file through to the end so that a file which is
 * shorter or longer than its header says, or whose gzip stream is damaged
 * (bad CRC, missing trailer), is refused rather than half-used.
 */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

enum { IDX_IMAGES = 2051, IDX_LABELS = 2049, FMNIST_CLASSES = 10 };
enum { CHUNK = 1 << 20 }; /* bytes per gzread: bounded temporary memory */

static const char *const fmnist_names[FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

typedef struct idx_file {
    gzFile f;
    char path[4096];
    uint32_t dims[3];
    int ndim;
} idx_file;

/* Opens dir/base.gz, else dir/base. */
static heed_status idx_open(idx_file *x, const char *dir, const char *base) {
    const char *suffix[2] = {".gz", ""};
    int err = 0;
    for (int i = 0; i < 2; i++) {
        int len = snprintf(x->path, sizeof x->path, "%s/%s%s", dir, base, suffix[i]);
        if (len < 0 || (size_t)len >= sizeof x->path)
            return heed_fail(HEED_ERR_ARG, "fashion-mnist: directory name too long: %s", dir);
        errno = 0;
        x->f = gzopen(x->path, "rb");
        if (x->f) {
            gzbuffer(x->f, 1 << 17);
            return HEED_OK;
        }
        if (!err || errno != ENOENT) err = errno;
    }
    return heed_fail(HEED_ERR_IO, "fashion-mnist: cannot open %s/%s.gz or %s/%s: %s", dir, base,
                     dir, base, err ? strerror(err) : "gzopen failed");
}

/* Reads exactly n bytes: bytes at .. at + n of `what`, which is `total`
 * bytes long. A short read is a truncated file, and the message says how
 * far into `what` it ends, not how far into this call's n bytes (the data
 * comes in chunks). */
static heed_status idx_read(idx_file *x, void *buf, size_t n, const char *what, size_t at,
                            size_t total) {
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > CHUNK ? CHUNK : n - done;
        int got = gzread(x->f, p + done, (unsigned)want);
        if (got <= 0) break;
        done += (size_t)got;
    }
    if (done == n) return HEED_OK;
    int zerr = Z_OK;
    const char *msg = gzerror(x->f, &zerr);
    if (zerr == Z_ERRNO)
        return heed_fail(HEED_ERR_IO, "%s: read error in %s: %s", x->path, what, strerror(errno));
    /* zlib reads ahead: a small file's bad checksum shows while reading
     * its header, so say where it showed, not where it is. */
    if (zerr != Z_OK)
        return heed_fail(HEED_ERR_FORMAT, "%s: corrupt or truncated gzip data (%s), found reading %s",
                         x->path, msg, what);
    return heed_fail(HEED_ERR_FORMAT, "%s: truncated: the file ends %zu bytes into %s of %zu bytes",
                     x->path, at + done, what, total);
}

/* After the declared data: nothing more may follow, and the stream must
 * end cleanly (gzip trailer and CRC checked). */
static heed_status idx_expect_end(idx_file *x) {
    unsigned char extra;
    int got = gzread(x->f, &extra, 1);
    int zerr = Z_OK;
    const char *msg = gzerror(x->f, &zerr);
    if (zerr == Z_ERRNO) return heed_fail(HEED_ERR_IO, "%s: read error: %s", x->path, strerror(errno));
    if (zerr != Z_OK)
        return heed_fail(HEED_ERR_FORMAT, "%s: corrupt or truncated gzip data (%s)", x->path, msg);
    if (got > 0)
        return heed_fail(HEED_ERR_FORMAT, "%s: longer than its header declares (trailing data)",
                         x->path);
    return HEED_OK;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static heed_status idx_header(idx_file *x, uint32_t magic, const char *kind) {
    unsigned char b[12];
    HEED_TRY(idx_read(x, b, 4, "the magic number", 0, 4));
    uint32_t got = be32(b);
    if (got != magic)
        return heed_fail(HEED_ERR_FORMAT, "%s: magic number %u (0x%08x) is not %u (IDX %s)",
                         x->path, got, got, magic, kind);
    x->ndim = (int)(magic & 0xff);
    HEED_TRY(idx_read(x, b, 4 * (size_t)x->ndim, "the header", 4, 4 + 4 * (size_t)x->ndim));
    for (int i = 0; i < x->ndim; i++) {
        x->dims[i] = be32(b + 4 * i);
        if (x->dims[i] == 0 || x->dims[i] > INT_MAX)
            return heed_fail(HEED_ERR_FORMAT, "%s: dimension %d of the header is %u", x->path, i,
                             x->dims[i]);
    }
    return HEED_OK;
}

/* Reads the file's `total` data bytes, keeping the first `kept` in *out
 * (malloc'ed). The kept buffer grows as data arrives, so a header that
 * claims far more data than the file holds costs no more memory than the
 * file does: the truncation is found before any huge allocation. With
 * max_label > 0 every byte read (kept or not) must be below it. */
static heed_status idx_read_data(idx_file *x, size_t total, size_t kept, int max_label,
                                 const char *what, unsigned char **out) {
    unsigned char *chunk = malloc(CHUNK), *keep = NULL;
    size_t cap = 0;
    heed_status s = chunk ? HEED_OK : heed_fail(HEED_ERR_NOMEM, "%s: cannot allocate a read buffer",
                                                x->path);
    for (size_t done = 0; s == HEED_OK && done < total;) {
        const size_t n = total - done > CHUNK ? CHUNK : total - done;
        if ((s = idx_read(x, chunk, n, what, done, total)) != HEED_OK) break;
        for (size_t i = 0; max_label > 0 && i < n; i++)
            if (chunk[i] >= max_label) {
                s = heed_fail(HEED_ERR_FORMAT, "%s: label %d of item %zu is not below %d", x->path,
                              chunk[i], done + i, max_label);
                break;
            }
        const size_t take = done >= kept ? 0 : kept - done < n ? kept - done : n;
        if (s == HEED_OK && take > 0 && done + take > cap) {
            size_t want = cap ? 2 * cap : (size_t)CHUNK;
            if (want < done + take) want = done + take;
            if (want > kept) want = kept;
            unsigned char *grown = realloc(keep, want);
            if (!grown) {
                s = heed_fail(HEED_ERR_NOMEM, "%s: cannot allocate %zu bytes for %s", x->path, want,
                              what);
                break;
            }
            keep = grown, cap = want;
        }
        if (s == HEED_OK && take > 0) memcpy(keep + done, chunk, take);
        done += n;
    }
    free(chunk);
    if (s == HEED_OK) s = idx_expect_end(x);
    if (s != HEED_OK) free(keep), keep = NULL;
    *out = keep;
    return s;
}

static void idx_close(idx_file *x) {
    if (x->f) gzclose(x->f);
    x->f = NULL;
}

static heed_status fmnist_read(heed_dataset *d, idx_file *im, idx_file *lb, const char *dir,
                               int train, int limit) {
    const char *split = train ? "train" : "t10k";
    char base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    HEED_TRY(idx_open(im, dir, base));
    HEED_TRY(idx_header(im, IDX_IMAGES, "images"));
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    HEED_TRY(idx_open(lb, dir, base));
    HEED_TRY(idx_header(lb, IDX_LABELS, "labels"));
    const uint32_t count = im->dims[0], rows = im->dims[1], cols = im->dims[2];
    if (lb->dims[0] != count)
        return heed_fail(HEED_ERR_FORMAT, "%s holds %u labels but %s holds %u images", lb->path,
                         lb->dims[0], im->path, count);
    size_t all;
    if (heed_shape_count((int)count, 1, (int)rows, (int)cols, &all) != HEED_OK)
        return heed_fail(HEED_ERR_LIMIT, "%s: %u images of %u x %u pixels are too many for one "
                         "tensor", im->path, count, rows, cols);
    const int keep = limit > 0 && (uint32_t)limit < count ? limit : (int)count;
    const size_t item = (size_t)rows * cols;
    unsigned char *pixels = NULL, *labels = NULL;
    heed_status s = idx_read_data(im, count * item, (size_t)keep * item, 0, "the pixels", &pixels);
    if (s == HEED_OK)
        s = idx_read_data(lb, count, (size_t)keep, FMNIST_CLASSES, "the labels", &labels);
    if (s == HEED_OK) {
        d->images = heed_alloc((size_t)keep * item * sizeof(float));
        d->labels = malloc((size_t)keep * sizeof *d->labels);
        d->class_names = malloc(FMNIST_CLASSES * sizeof *d->class_names);
        if (!d->images || !d->labels || !d->class_names)
            s = heed_alloc_failed((size_t)keep * item * sizeof(float),
                                  "fashion-mnist's %d images of %u x %u", keep, rows, cols);
    }
    if (s == HEED_OK) {
        /* Division, not multiplication by 1/255: the values torchvision's
         * ToTensor gives, and exact k / 255 for the round trip. */
        for (size_t i = 0; i < (size_t)keep * item; i++) d->images[i] = (float)pixels[i] / 255.0f;
        for (int i = 0; i < keep; i++) d->labels[i] = labels[i];
    }
    free(pixels);
    free(labels);
    HEED_TRY(s);
    for (int k = 0; k < FMNIST_CLASSES; k++)
        snprintf(d->class_names[k], sizeof d->class_names[k], "%s", fmnist_names[k]);
    d->count = keep, d->c = 1, d->h = (int)rows, d->w = (int)cols, d->classes = FMNIST_CLASSES;
    return HEED_OK;
}

heed_status heed_fmnist_load(heed_dataset *d, const char *dir, int train, int limit) {
    *d = (heed_dataset){0};
    idx_file im = {0}, lb = {0};
    heed_status s = fmnist_read(d, &im, &lb, dir ? dir : HEED_FMNIST_DIR, train, limit);
    idx_close(&im);
    idx_close(&lb);
    if (s != HEED_OK) heed_dataset_free(d);
    return s;
}

static int ends_with_gz(const char *path) {
    size_t n = strlen(path);
    return n >= 3 && strcasecmp(path + n - 3, ".gz") == 0;
}

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

/* Writes an IDX file: header (magic, dims), then `bytes` from `fill`
 * called on chunks. Removes the file on failure. */
typedef void (*idx_fill_fn)(const heed_dataset *d, size_t from, size_t n, unsigned char *out);

static heed_status idx_write_file(const char *path, uint32_t magic, const uint32_t *dims,
                                  const heed_dataset *d, size_t bytes, idx_fill_fn fill) {
    /* "T": transparent, i.e. a plain file through the same calls. */
    gzFile f = gzopen(path, ends_with_gz(path) ? "wb6" : "wbT");
    if (!f) return heed_fail(HEED_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    unsigned char *buf = malloc(CHUNK);
    int ok = buf != NULL;
    const int ndim = (int)(magic & 0xff);
    if (ok) {
        put_be32(buf, magic);
        for (int i = 0; i < ndim; i++) put_be32(buf + 4 + 4 * i, dims[i]);
        ok = gzwrite(f, buf, 4 + 4 * (unsigned)ndim) > 0;
    }
    for (size_t done = 0; ok && done < bytes;) {
        size_t n = bytes - done > CHUNK ? CHUNK : bytes - done;
        fill(d, done, n, buf);
        ok = gzwrite(f, buf, (unsigned)n) == (int)n;
        done += n;
    }
    int zerr = Z_OK;
    const char *msg = ok ? "" : gzerror(f, &zerr);
    const char *why = !buf ? "out of memory" : zerr == Z_ERRNO ? strerror(errno) : msg;
    char reason[256];
    snprintf(reason, sizeof reason, "%s", why);
    free(buf);
    if (gzclose(f) != Z_OK && ok) {
        ok = 0;
        snprintf(reason, sizeof reason, "%s", strerror(errno));
    }
    if (ok) return HEED_OK;
    remove(path);
    return heed_fail(HEED_ERR_IO, "cannot write %s: %s", path, reason);
}

static void fill_pixels(const heed_dataset *d, size_t from, size_t n, unsigned char *out) {
    for (size_t i = 0; i < n; i++) {
        float v = d->images[from + i];
        /* The negated test also sends NaN to 0. */
        v = !(v > 0.0f) ? 0.0f : v > 1.0f ? 1.0f : v;
        out[i] = (unsigned char)(v * 255.0f + 0.5f);
    }
}

static void fill_labels(const heed_dataset *d, size_t from, size_t n, unsigned char *out) {
    for (size_t i = 0; i < n; i++) out[i] = (unsigned char)d->labels[from + i];
}

heed_status heed_idx_write(const heed_dataset *d, const char *images_path,
                           const char *labels_path) {
    if (d->count < 1 || d->h < 1 || d->w < 1)
        return heed_fail(HEED_ERR_ARG, "idx write: empty dataset (%d items of %d x %d)", d->count,
                         d->h, d->w);
    if (images_path) {
        if (d->c != 1 || !d->images)
            return heed_fail(HEED_ERR_ARG, "idx write %s: IDX images need 1 channel, not %d",
                             images_path, d->c);
        const uint32_t dims[3] = {(uint32_t)d->count, (uint32_t)d->h, (uint32_t)d->w};
        HEED_TRY(idx_write_file(images_path, IDX_IMAGES, dims, d,
                                (size_t)d->count * d->h * d->w, fill_pixels));
    }
    if (labels_path) {
        if (!d->labels) return heed_fail(HEED_ERR_ARG, "idx write %s: no labels", labels_path);
        for (int i = 0; i < d->count; i++)
            if (d->labels[i] < 0 || d->labels[i] > 255)
                return heed_fail(HEED_ERR_ARG, "idx write %s: label %d of item %d is not a byte",
                                 labels_path, d->labels[i], i);
        const uint32_t dims[1] = {(uint32_t)d->count};
        HEED_TRY(idx_write_file(labels_path, IDX_LABELS, dims, d, (size_t)d->count, fill_labels));
    }
    return HEED_OK;
}
