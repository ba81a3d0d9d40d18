/* model.c -- reading and writing model files (layout in model.h).
 * The whole file is read into memory (models are megabytes), parsed with
 * bounds checks at every step, and only then turned into a network. */
#include "model.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32_impl.h"
#include "file_impl.h"
#include "netfile_impl.h"
#include "text_impl.h"

enum { MAX_MODEL_BYTES = 1 << 30 };
/* The most chunks a file may declare (NETD, META, PARM and the extra ones):
 * load refuses more, so save_with writes no more. */
enum { MAX_CHUNKS = 64 };

/* ---- a growable byte buffer for writing -------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
    int failed;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v) {
    unsigned char c[4] = {v, v >> 8, v >> 16, v >> 24};
    put(b, c, 4);
}

static void put_u64(bytes *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_chunk(bytes *b, const char *tag, const void *data, size_t size) {
    put(b, tag, 4);
    put_u64(b, size);
    put(b, data, size);
    put_u32(b, heed_crc32(data, size));
}

/* ---- a bounds-checked reader ------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t len, pos;
} reader;

static int get(reader *r, void *dst, size_t n) {
    if (n > r->len - r->pos) return 0;
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return 1;
}

static int get_u32(reader *r, uint32_t *v) {
    unsigned char c[4];
    if (!get(r, c, 4)) return 0;
    *v = c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
    return 1;
}

static int get_u64(reader *r, uint64_t *v) {
    uint32_t lo, hi;
    if (!get_u32(r, &lo) || !get_u32(r, &hi)) return 0;
    *v = lo | (uint64_t)hi << 32;
    return 1;
}

/* ---- metadata as text -------------------------------------------------- */

static char *meta_text(const heed_model_meta *m) {
    bytes b = {0};
    /* a line: a key and the longest value, dataset's (a path up to PATH_MAX) */
    char line[sizeof m->dataset + 64], dataset[sizeof m->dataset], recipe[sizeof m->recipe], cpu[sizeof m->cpu];
#define LINE(...) (snprintf(line, sizeof line, __VA_ARGS__), put(&b, line, strlen(line)))
    LINE("classes %d\n", m->classes);
    for (int i = 0; i < m->classes; i++) LINE("class %s\n", m->class_names[i]);
    LINE("input_mean %.9g\ninput_std %.9g\n", m->input_mean, m->input_std);
    if (m->norm_channels) {
        const char *keys[2] = {"channel_mean", "channel_std"};
        const float *pairs[2] = {m->channel_mean, m->channel_std};
        for (int k = 0; k < 2; k++) {
            put(&b, keys[k], strlen(keys[k]));
            for (int c = 0; c < m->norm_channels && c < 4; c++) LINE(" %.9g", pairs[k][c]);
            put(&b, "\n", 1);
        }
    }
    LINE("dark_background %d\n", m->dark_background);
    LINE("dataset %s\n", heed_one_line(m->dataset, dataset, sizeof dataset));
    LINE("recipe %s\nepochs %d\n", heed_one_line(m->recipe, recipe, sizeof recipe), m->epochs);
    LINE("test_accuracy %.9g\ntrain_seconds %.9g\ncpu %s\n", m->test_accuracy, m->train_seconds,
         heed_one_line(m->cpu, cpu, sizeof cpu));
#undef LINE
    put(&b, "", 1);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return (char *)b.p;
}

/* A whole metadata value as a number: no trailing text (the ranges are
 * check_meta's). */
static int meta_float(const char *v, float *out) {
    char *end;
    float f = strtof(v, &end);
    if (end == v || *end) return 0;
    *out = f;
    return 1;
}

/* Up to max numbers separated by single spaces, the whole value: how
 * many, or 0 if it is not that. */
static int meta_floats(const char *v, float *out, int max) {
    int n = 0;
    for (const char *p = v; n < max; n++) {
        char *end;
        out[n] = strtof(p, &end);
        if (end == p) return 0;
        if (!*end) return n + 1;
        if (*end != ' ') return 0;
        p = end + 1;
    }
    return 0;
}

static int meta_int(const char *v, int lo, int hi, int *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi) return 0;
    *out = (int)n;
    return 1;
}

/* Metadata text ends up in JSON and on terminals (heed info prints the
 * recipe): printable text only, no escape sequences. */
static int printable(const char *v) {
    for (; *v; v++)
        if (heed_control_char(*v)) return 0;
    return 1;
}

/* The rules metadata obeys, for the writer and the reader alike, so that
 * heed_model_save refuses what heed_model_load would (the text's syntax is
 * parse_meta's): the numbers in range, the class names printable, one
 * class per output of the network. `where` opens the message ("PATH" when
 * loading, "cannot save PATH" when saving); `code` is the status. */
static heed_status check_meta(const heed_model_meta *m, const heed_net *net, heed_status code,
                              const char *where) {
    if (m->classes < 1 || m->classes > HEED_MAX_CLASSES || !m->class_names)
        return heed_fail(code, "%s: bad class count '%d'", where, m->classes);
    for (int i = 0; i < m->classes; i++)
        if (!memchr(m->class_names[i], '\0', sizeof m->class_names[i]) ||
            !printable(m->class_names[i]))
            return heed_fail(code, "%s: bad metadata value for class", where);
    const struct {
        const char *key;
        double v;
        int ok;
    } nums[] = {
        {"input_mean", m->input_mean, isfinite(m->input_mean)},
        /* It divides every input: a tiny one would make them infinite. */
        {"input_std", m->input_std, isfinite(m->input_std) && m->input_std >= 1e-6f},
        {"dark_background", m->dark_background,
         m->dark_background == 0 || m->dark_background == 1},
        {"epochs", m->epochs, m->epochs >= 0},
        /* a fraction; negative: not evaluated */
        {"test_accuracy", m->test_accuracy, isfinite(m->test_accuracy) && m->test_accuracy <= 1.0f},
        {"train_seconds", m->train_seconds, isfinite(m->train_seconds) && m->train_seconds >= 0.0f},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (!nums[i].ok)
            return heed_fail(code, "%s: bad metadata value for %s: '%.9g'", where, nums[i].key,
                             nums[i].v);
    /* channel_mean and channel_std hold 4 (a check past them read other fields) */
    if (m->norm_channels < 0 || m->norm_channels > 4)
        return heed_fail(code, "%s: per-channel normalisation for %d channels (it holds 1 to 4)", where,
                         m->norm_channels);
    if (m->norm_channels && m->norm_channels != net->in_c)
        return heed_fail(code, "%s: per-channel normalisation for %d channels, but the network takes %d",
                         where, m->norm_channels, net->in_c);
    for (int c = 0; c < m->norm_channels; c++)
        if (!isfinite(m->channel_mean[c]) || !(isfinite(m->channel_std[c]) && m->channel_std[c] >= 1e-6f))
            return heed_fail(code, "%s: bad metadata value for channel %d's normalisation: (%.9g, %.9g)", where,
                             c, m->channel_mean[c], m->channel_std[c]);
    const heed_layer *root = &net->root->base;
    const long long outputs = (long long)root->out_c * root->out_h * root->out_w;
    if (outputs != m->classes)
        return heed_fail(code, "%s: the network has %lld outputs but %d classes", where, outputs,
                         m->classes);
    return HEED_OK;
}

static heed_status parse_meta(heed_model_meta *m, char *text, const char *path) {
    int named = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        /* A file whose lines gained carriage returns still reads. */
        line[strcspn(line, "\r")] = '\0';
        char *sp = strchr(line, ' ');
        const char *v = sp ? sp + 1 : "";
        if (sp) *sp = '\0';
        int ok = 1;
        if (!strcmp(line, "classes")) {
            int n;
            if (!meta_int(v, 1, HEED_MAX_CLASSES, &n) || m->class_names)
                return heed_fail(HEED_ERR_FORMAT, "%s: bad class count '%s'", path, v);
            m->class_names = calloc((size_t)n, sizeof *m->class_names);
            if (!m->class_names) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", path);
            m->classes = n;
        } else if (!strcmp(line, "class")) {
            if (named >= m->classes) return heed_fail(HEED_ERR_FORMAT, "%s: more class names than classes", path);
            /* what the writer wrote: never a name cut to fit (and, as
             * check_meta then checks, printable) */
            ok = strlen(v) < sizeof m->class_names[0];
            snprintf(m->class_names[named++], sizeof m->class_names[0], "%s", v);
        } else if (!strcmp(line, "input_mean")) {
            ok = meta_float(v, &m->input_mean);
        } else if (!strcmp(line, "input_std")) {
            ok = meta_float(v, &m->input_std);
        } else if (!strcmp(line, "channel_mean") || !strcmp(line, "channel_std")) {
            const int n = meta_floats(v, line[8] == 'm' ? m->channel_mean : m->channel_std, 4);
            /* both lines, with one value per channel each */
            ok = n > 0 && (!m->norm_channels || m->norm_channels == n);
            if (ok) m->norm_channels = n;
        } else if (!strcmp(line, "dark_background")) {
            ok = meta_int(v, INT_MIN, INT_MAX, &m->dark_background);
        } else if (!strcmp(line, "dataset")) {
            ok = printable(v) && strlen(v) < sizeof m->dataset; /* never a folder cut to another */
            snprintf(m->dataset, sizeof m->dataset, "%s", v);
        } else if (!strcmp(line, "recipe")) {
            ok = printable(v) && strlen(v) < sizeof m->recipe; /* --resume reads it back as options */
            snprintf(m->recipe, sizeof m->recipe, "%s", v);
        } else if (!strcmp(line, "epochs")) {
            ok = meta_int(v, INT_MIN, INT_MAX, &m->epochs);
        } else if (!strcmp(line, "test_accuracy")) {
            ok = meta_float(v, &m->test_accuracy);
        } else if (!strcmp(line, "train_seconds")) {
            ok = meta_float(v, &m->train_seconds);
        } else if (!strcmp(line, "cpu")) {
            ok = printable(v);
            snprintf(m->cpu, sizeof m->cpu, "%s", v);
        } /* unknown keys are ignored: newer writers may add some */
        if (!ok && printable(v))
            return heed_fail(HEED_ERR_FORMAT, "%s: bad metadata value for %s: '%.40s'", path, line, v);
        if (!ok) /* not quoted: it holds control characters */
            return heed_fail(HEED_ERR_FORMAT, "%s: bad metadata value for %s", path, line);
    }
    if (m->classes < 1 || named != m->classes)
        return heed_fail(HEED_ERR_FORMAT, "%s: metadata lists %d class names for %d classes", path,
                         named, m->classes);
    return HEED_OK;
}

/* ---- public API -------------------------------------------------------- */

void heed_model_channel_norm(const heed_model_meta *meta, int c, float *mean, float *std) {
    const int own = meta->norm_channels > 0 && c >= 0 && c < meta->norm_channels && c < 4;
    *mean = own ? meta->channel_mean[c] : meta->input_mean;
    *std = own ? meta->channel_std[c] : meta->input_std;
}

heed_status heed_model_normalize(const heed_model *m, heed_tensor *x) {
    if (!m) return heed_fail(HEED_ERR_ARG, "heed_model_normalize: the model is NULL");
    HEED_CHECK_SHAPE(x && x->data && x->c == m->net->in_c, "heed_model_normalize: x has %d channels, the "
                     "network takes %d", x && x->data ? x->c : 0, m->net->in_c);
    const size_t plane = (size_t)x->h * x->w;
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            float mean, std;
            heed_model_channel_norm(&m->meta, c, &mean, &std);
            const float inv = 1.0f / std;
            float *p = x->data + ((size_t)n * x->c + c) * plane;
            for (size_t i = 0; i < plane; i++) p[i] = (p[i] - mean) * inv;
        }
    return HEED_OK;
}

heed_status heed_model_new(heed_model **out, heed_net *net) {
    *out = NULL;
    heed_model *m = calloc(1, sizeof *m);
    if (!m) {
        heed_net_free(net);
        return heed_fail(HEED_ERR_NOMEM, "cannot allocate a model");
    }
    m->net = net;
    m->meta.input_std = 1.0f;
    m->meta.test_accuracy = -1.0f;
    *out = m;
    return HEED_OK;
}

heed_status heed_model_set_classes(heed_model *m, int classes, const char *const *names) {
    if (classes < 1 || classes > HEED_MAX_CLASSES)
        return heed_fail(HEED_ERR_ARG, "class count %d out of range 1..%d", classes, HEED_MAX_CLASSES);
    if (!names) return heed_fail(HEED_ERR_ARG, "no class names given");
    for (int i = 0; i < classes; i++) {
        if (!names[i]) return heed_fail(HEED_ERR_ARG, "class name %d is NULL", i);
        if (!printable(names[i])) /* the metadata is lines of text */
            return heed_fail(HEED_ERR_ARG, "class name %d holds a control character", i);
    }
    char(*cn)[32] = calloc((size_t)classes, sizeof *cn);
    if (!cn) return heed_fail(HEED_ERR_NOMEM, "cannot allocate class names");
    for (int i = 0; i < classes; i++) {
        /* Cut at 31 bytes, but not inside a UTF-8 character: names go into
         * JSON, which must stay valid UTF-8. */
        size_t n = strlen(names[i]);
        if (n >= sizeof cn[i]) {
            n = sizeof cn[i] - 1;
            while (n > 0 && ((unsigned char)names[i][n] & 0xc0) == 0x80) n--;
        }
        memcpy(cn[i], names[i], n);
    }
    free(m->meta.class_names);
    m->meta.class_names = cn;
    m->meta.classes = classes;
    return HEED_OK;
}

/* A tensor's values as a network can use them: finite, and a batch norm's
 * running variances not negative (their square roots scale the
 * activations). Load refuses others (HEED_ERR_FORMAT), and so do the
 * saves (HEED_ERR_ARG), writing nothing: a file that saves is a file that
 * loads. */
static heed_status check_values(const heed_param *it, const float *v, heed_status code, const char *where) {
    const size_t len = strlen(it->name), tail = strlen(".running_var");
    const int variance = len >= tail && !strcmp(it->name + len - tail, ".running_var");
    for (size_t i = 0; i < it->count; i++)
        if (!isfinite(v[i]) || (variance && v[i] < 0.0f))
            return heed_fail(code, "%s: parameter '%s' holds %g at index %zu", where, it->name, (double)v[i], i);
    return HEED_OK;
}

static heed_status check_all_values(const heed_params *p, const char *path) {
    char where[4200];
    snprintf(where, sizeof where, "cannot save %s", path);
    for (int i = 0; i < p->count; i++)
        HEED_TRY(check_values(&p->items[i], p->values + p->items[i].offset, HEED_ERR_ARG, where));
    return HEED_OK;
}

static void put_params(bytes *b, const heed_params *p) {
    put_u32(b, (uint32_t)p->count);
    for (int i = 0; i < p->count; i++) {
        const heed_param *it = &p->items[i];
        uint16_t len = (uint16_t)strlen(it->name);
        unsigned char l2[2] = {len, len >> 8};
        put(b, l2, 2);
        put(b, it->name, len);
        unsigned char nd = (unsigned char)it->ndim;
        put(b, &nd, 1);
        for (int d = 0; d < it->ndim; d++) put_u32(b, (uint32_t)it->shape[d]);
        /* float32 little-endian: the host's layout on every platform heed targets. */
        put(b, p->values + it->offset, it->count * sizeof(float));
    }
}

/* The bytes of a model file (layout in model.h) into *out, after every check
 * that loading would make (so nothing is written that would not load
 * again); `path` names the model in messages. */
static heed_status model_bytes(const heed_model *m, const char *path, const heed_chunk *extra,
                               int nextra, bytes *out) {
    *out = (bytes){0};
    if (!m->net->source)
        return heed_fail(HEED_ERR_ARG, "cannot save %s: the network was built in code, not from a description "
                         "(heed_params_save saves its weights)", path);
    if (!m->net->params.values && m->net->params.count)
        return heed_fail(HEED_ERR_ARG, "cannot save %s: the network's parameters are not allocated "
                         "(heed_net_describe)", path);
    char where[4200];
    snprintf(where, sizeof where, "cannot save %s", path);
    HEED_TRY(check_meta(&m->meta, m->net, HEED_ERR_ARG, where));
    HEED_TRY(check_all_values(&m->net->params, path));
    /* Extra chunks load would refuse: a second NETD, META or PARM, or more
     * chunks than it reads (MAX_CHUNKS, the model's own three included). */
    if (nextra < 0 || nextra > MAX_CHUNKS - 3)
        return heed_fail(HEED_ERR_ARG, "%s: %d extra chunks, at most %d fit", where, nextra,
                         MAX_CHUNKS - 3);
    for (int i = 0; i < nextra; i++)
        if (!strncmp(extra[i].tag, "NETD", 5) || !strncmp(extra[i].tag, "META", 5) ||
            !strncmp(extra[i].tag, "PARM", 5))
            return heed_fail(HEED_ERR_ARG, "%s: extra chunk %d is tagged %s, as the model's own is",
                             where, i + 1, extra[i].tag);
    char *meta = meta_text(&m->meta);
    bytes params = {0};
    put_params(&params, &m->net->params);
    bytes b = {0};
    put(&b, HEED_MODEL_MAGIC, 8);
    put_u32(&b, HEED_MODEL_VERSION);
    put_u32(&b, (uint32_t)(3 + nextra));
    put_chunk(&b, "NETD", m->net->source, strlen(m->net->source));
    if (meta) put_chunk(&b, "META", meta, strlen(meta));
    put_chunk(&b, "PARM", params.p, params.len);
    for (int i = 0; i < nextra; i++) put_chunk(&b, extra[i].tag, extra[i].data, extra[i].size);
    const int failed = !meta || params.failed || b.failed;
    free(meta);
    free(params.p);
    if (failed) {
        free(b.p);
        return heed_fail(HEED_ERR_NOMEM, "out of memory saving %s", path);
    }
    *out = b;
    return HEED_OK;
}

heed_status heed_model_save_with(const heed_model *m, const char *path, const heed_chunk *extra,
                                 int nextra) {
    bytes b;
    HEED_TRY(model_bytes(m, path, extra, nextra, &b));
    heed_status st = heed_write_atomic(path, b.p, b.len);
    free(b.p);
    return st;
}

heed_status heed_model_save(const heed_model *m, const char *path) {
    return heed_model_save_with(m, path, NULL, 0);
}

heed_status heed_model_encode_mem(const heed_model *m, void **data, size_t *size) {
    *data = NULL, *size = 0;
    bytes b;
    HEED_TRY(model_bytes(m, "the model", NULL, 0, &b));
    *data = b.p, *size = b.len;
    return HEED_OK;
}

/* A parameters-only file's bytes: a PARM chunk alone. */
static heed_status params_bytes(const heed_params *p, const char *path, bytes *out) {
    *out = (bytes){0};
    if (p->count && !p->values)
        return heed_fail(HEED_ERR_ARG, "cannot save %s: the parameters are not allocated (heed_params_alloc)",
                         path);
    HEED_TRY(check_all_values(p, path));
    bytes params = {0}, b = {0};
    put_params(&params, p);
    put(&b, HEED_MODEL_MAGIC, 8);
    put_u32(&b, HEED_MODEL_VERSION);
    put_u32(&b, 1);
    put_chunk(&b, "PARM", params.p, params.len);
    const int failed = params.failed || b.failed;
    free(params.p);
    if (failed) {
        free(b.p);
        return heed_fail(HEED_ERR_NOMEM, "out of memory saving %s", path);
    }
    *out = b;
    return HEED_OK;
}

heed_status heed_params_save(const heed_params *p, const char *path) {
    bytes b;
    HEED_TRY(params_bytes(p, path, &b));
    heed_status st = heed_write_atomic(path, b.p, b.len);
    free(b.p);
    return st;
}

heed_status heed_params_encode_mem(const heed_params *p, void **data, size_t *size) {
    *data = NULL, *size = 0;
    bytes b;
    HEED_TRY(params_bytes(p, "the parameters", &b));
    *data = b.p, *size = b.len;
    return HEED_OK;
}

static heed_status read_file(const char *path, unsigned char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return heed_fail(HEED_ERR_IO, "cannot open model file %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        /* Anything else is refused before more of it is read. */
        if (cap == 1 << 16 && (n < 8 || memcmp(buf, HEED_MODEL_MAGIC, 8))) break;
        if (n < cap) break;
        if (cap >= MAX_MODEL_BYTES) break;
        unsigned char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown, cap *= 2;
    }
    const int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf) return heed_fail(HEED_ERR_NOMEM, "cannot read %s", path);
    if (err) {
        free(buf);
        return heed_fail(HEED_ERR_IO, "cannot read %s: %s", path, strerror(err));
    }
    if (n >= MAX_MODEL_BYTES) {
        free(buf);
        return heed_fail(HEED_ERR_LIMIT, "%s: larger than 1 GiB", path);
    }
    *out = buf, *len = n;
    return HEED_OK;
}

static heed_status load_params(heed_params *p, reader *r, const char *path) {
    uint32_t count;
    if (!get_u32(r, &count)) return heed_fail(HEED_ERR_FORMAT, "%s: parameter chunk truncated", path);
    if ((int)count != p->count)
        return heed_fail(HEED_ERR_FORMAT, "%s: file has %u parameter tensors, the network %d", path,
                         count, p->count);
    unsigned char *seen = calloc(count ? count : 1, 1);
    if (!seen) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", path);
    heed_status st = HEED_OK;
    for (uint32_t i = 0; st == HEED_OK && i < count; i++) {
        unsigned char l2[2], nd;
        char name[64];
        if (!get(r, l2, 2)) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: parameter %u truncated", path, i);
            break;
        }
        size_t len = l2[0] | (size_t)l2[1] << 8;
        if (len >= sizeof name || !get(r, name, len) || !get(r, &nd, 1) || nd < 1 || nd > 4) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: parameter %u has a bad header", path, i);
            break;
        }
        name[len] = '\0';
        heed_param *it = heed_params_find(p, name);
        if (!it) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: parameter '%s' does not belong to the network", path, name);
            break;
        }
        /* count == p->count, so a tensor listed twice leaves another out. */
        if (seen[it - p->items]++) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: parameter '%s' is listed twice", path, name);
            break;
        }
        int ok = nd == it->ndim;
        for (int d = 0; d < nd && st == HEED_OK; d++) {
            uint32_t dim = 0;
            if (!get_u32(r, &dim)) st = heed_fail(HEED_ERR_FORMAT, "%s: parameter '%s' truncated", path, name);
            ok = ok && (uint64_t)dim == (uint64_t)it->shape[d];
        }
        if (st == HEED_OK && !ok)
            st = heed_fail(HEED_ERR_FORMAT, "%s: parameter '%s' has a different shape than the network's",
                           path, name);
        if (st == HEED_OK && !get(r, p->values + it->offset, it->count * sizeof(float)))
            st = heed_fail(HEED_ERR_FORMAT, "%s: parameter '%s' data truncated", path, name);
        if (st == HEED_OK) st = check_values(it, p->values + it->offset, HEED_ERR_FORMAT, path);
    }
    free(seen);
    if (st == HEED_OK && r->pos != r->len)
        st = heed_fail(HEED_ERR_FORMAT, "%s: %zu bytes after the last parameter", path,
                       r->len - r->pos);
    return st;
}

/* A model file's chunks, checked (magic, version, sizes, checksums, text,
 * nothing after the last chunk), before any is interpreted. */
typedef struct container {
    unsigned char *buf; /* the whole file as read (NULL: a model in the caller's memory) */
    char *net_text, *meta; /* NETD and META as checked text (NULL: absent) */
    reader params;         /* PARM's payload, within buf (p NULL: absent) */
    heed_chunk *extra;     /* (nextra) the other chunks, copied when asked for */
    int nextra;
} container;

static void container_free(container *c) {
    free(c->buf);
    free(c->net_text);
    free(c->meta);
    heed_chunks_free(c->extra, c->nextra);
    *c = (container){0};
}

/* One chunk's payload at data (size) kept as NETD/META text, PARM, or
 * (keep_extra) a copy among the extra chunks. */
static heed_status keep_chunk(container *c, const char *tag, const unsigned char *data, size_t size,
                              int keep_extra, const char *path) {
    if ((!strcmp(tag, "NETD") && c->net_text) || (!strcmp(tag, "META") && c->meta) ||
        (!strcmp(tag, "PARM") && c->params.p))
        /* Two of a kind: which one is the model? Another reader may take the first. */
        return heed_fail(HEED_ERR_FORMAT, "%s: chunk %s appears twice", path, tag);
    if (!strcmp(tag, "NETD") || !strcmp(tag, "META")) {
        char *s = malloc(size + 1);
        if (!s) return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", path);
        memcpy(s, data, size);
        s[size] = '\0';
        char origin[4096 + 32]; /* the path, and which chunk */
        snprintf(origin, sizeof origin, "%s, chunk %s", path, tag);
        heed_status st = heed_text_check(s, size, origin);
        if (st != HEED_OK) {
            free(s);
            return st;
        }
        *(tag[0] == 'N' ? &c->net_text : &c->meta) = s;
    } else if (!strcmp(tag, "PARM")) {
        c->params = (reader){data, size, 0};
    } else if (keep_extra) {
        heed_chunk *grown = realloc(c->extra, (size_t)(c->nextra + 1) * sizeof *c->extra);
        unsigned char *copy = malloc(size ? size : 1);
        if (grown) c->extra = grown;
        if (!grown || !copy) {
            free(copy);
            return heed_fail(HEED_ERR_NOMEM, "%s: out of memory", path);
        }
        memcpy(copy, data, size);
        c->extra[c->nextra] = (heed_chunk){.data = copy, .size = size};
        memcpy(c->extra[c->nextra].tag, tag, 5);
        c->nextra++;
    }
    return HEED_OK;
}

/* What a file that does not start with the model magic more likely is: a
 * network description (text whose first word is "input", after comments),
 * given where its trained model was meant, or something else. */
static const char *not_model_reason(const unsigned char *data, size_t len) {
    size_t i = 0;
    for (;;) {
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
        if (i >= len || data[i] != '#') break;
        while (i < len && data[i] != '\n') i++;
    }
    if (len - i > 6 && !memcmp(data + i, "input", 5) && (data[i + 5] == ' ' || data[i + 5] == '\t'))
        return "a network description: heed train --net makes a model of it";
    return "it does not start with HEEDMODL";
}

/* Checks the chunks of a model file held at data (len) and keeps them in c
 * (c->buf, if set, is the caller's copy of data, freed with c). */
static heed_status parse_container(const unsigned char *data, size_t len, const char *path,
                                   int keep_extra, container *c) {
    reader r = {data, len, 0};
    char magic[8];
    uint32_t version = 0, nchunks = 0;
    heed_status st = HEED_OK;
    if (len == 0)
        st = heed_fail(HEED_ERR_FORMAT, "%s: empty file, not a heed model", path);
    else if (!get(&r, magic, 8) || memcmp(magic, HEED_MODEL_MAGIC, 8))
        st = heed_fail(HEED_ERR_FORMAT, "%s: not a heed model file (%s)", path, not_model_reason(data, len));
    else if (!get_u32(&r, &version) || !get_u32(&r, &nchunks))
        st = heed_fail(HEED_ERR_FORMAT, "%s: truncated header", path);
    else if (version != HEED_MODEL_VERSION)
        st = heed_fail(HEED_ERR_FORMAT, "%s: model format version %u, this heed reads %d", path,
                       version, HEED_MODEL_VERSION);
    else if (nchunks > MAX_CHUNKS)
        st = heed_fail(HEED_ERR_FORMAT, "%s: implausible chunk count %u", path, nchunks);
    for (uint32_t i = 0; st == HEED_OK && i < nchunks; i++) {
        char tag[5] = {0};
        uint64_t size;
        uint32_t crc;
        if (!get(&r, tag, 4) || !get_u64(&r, &size) || size > len - r.pos) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: truncated (chunk %u of %u)", path, i + 1, nchunks);
            break;
        }
        const unsigned char *payload = data + r.pos;
        r.pos += size;
        if (!get_u32(&r, &crc)) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: truncated (chunk %s checksum)", path, tag);
            break;
        }
        if (crc != heed_crc32(payload, size)) {
            st = heed_fail(HEED_ERR_FORMAT, "%s: checksum mismatch in chunk %s: the file is corrupt", path, tag);
            break;
        }
        st = keep_chunk(c, tag, payload, size, keep_extra, path);
    }
    if (st == HEED_OK && r.pos != len)
        st = heed_fail(HEED_ERR_FORMAT, "%s: %zu bytes after the last chunk", path, len - r.pos);
    if (st != HEED_OK) container_free(c);
    return st;
}

static heed_status read_container(const char *path, int keep_extra, container *c) {
    *c = (container){0};
    size_t len = 0;
    HEED_TRY(read_file(path, &c->buf, &len));
    return parse_container(c->buf, len, path, keep_extra, c);
}

/* A model held in memory, read in place: the parameters chunk points into
 * data, so data must outlive c. */
static heed_status mem_container(const void *data, size_t size, const char *name, int keep_extra,
                                 container *c) {
    *c = (container){0};
    if (!data && size) return heed_fail(HEED_ERR_ARG, "%s: no data, but a size of %zu bytes", name, size);
    /* The limit a file has too (read_file). */
    if (size >= MAX_MODEL_BYTES) return heed_fail(HEED_ERR_LIMIT, "%s: larger than 1 GiB", name);
    return parse_container(data, size, name, keep_extra, c);
}

/* The model in c (which it frees), its extra chunks into *extra when asked
 * for. */
static heed_status model_from(container *c, const char *path, heed_model **out, heed_chunk **extra,
                              int *nextra) {
    heed_status st = HEED_OK;
    if (!c->net_text && !c->meta && c->params.p)
        st = heed_fail(HEED_ERR_FORMAT, "%s: holds parameters only (heed_params_save), no network: "
                       "load them with heed_params_load into the network they came from", path);
    else if (!c->net_text || !c->meta || !c->params.p)
        st = heed_fail(HEED_ERR_FORMAT, "%s: missing %s chunk", path,
                       !c->net_text ? "network (NETD)" : !c->meta ? "metadata (META)" : "parameter (PARM)");
    heed_net *net = NULL;
    heed_model *m = NULL;
    if (st == HEED_OK) {
        char origin[4200];
        snprintf(origin, sizeof origin, "%s (network)", path);
        /* A network needing more floats than the parameter chunk holds is
         * refused before its parameters are allocated. */
        st = heed_net_parse_bounded(&net, c->net_text, origin, 0, c->params.len / sizeof(float));
    }
    if (st == HEED_OK) st = load_params(&net->params, &c->params, path);
    if (st == HEED_OK) {
        st = heed_model_new(&m, net);
        net = NULL;
    }
    if (st == HEED_OK) st = parse_meta(&m->meta, c->meta, path);
    if (st == HEED_OK) st = check_meta(&m->meta, m->net, HEED_ERR_FORMAT, path);
    heed_net_free(net);
    if (st != HEED_OK) {
        heed_model_free(m);
        container_free(c);
        return st;
    }
    if (extra) *extra = c->extra, *nextra = c->nextra;
    c->extra = NULL, c->nextra = 0;
    container_free(c);
    *out = m;
    return HEED_OK;
}

heed_status heed_model_load_with(heed_model **out, const char *path, heed_chunk **extra,
                                 int *nextra) {
    *out = NULL;
    if (extra) *extra = NULL, *nextra = 0;
    container c;
    HEED_TRY(read_container(path, extra != NULL, &c));
    return model_from(&c, path, out, extra, nextra);
}

heed_status heed_model_load(heed_model **out, const char *path) {
    return heed_model_load_with(out, path, NULL, NULL);
}

heed_status heed_model_load_mem(heed_model **out, const void *data, size_t size, const char *name) {
    *out = NULL;
    if (!name) name = "model in memory";
    container c;
    HEED_TRY(mem_container(data, size, name, 0, &c));
    return model_from(&c, name, out, NULL, NULL);
}

/* c's parameters into p (c freed), all or nothing. */
static heed_status params_from(container *c, const char *path, heed_params *p) {
    heed_status st = c->params.p ? HEED_OK : heed_fail(HEED_ERR_FORMAT, "%s: missing parameter (PARM) chunk", path);
    /* Read into a copy, so that a file that fails half way changes nothing. */
    const size_t bytes = p->total * sizeof(float);
    float *copy = st == HEED_OK ? heed_alloc(bytes ? bytes : 1) : NULL;
    if (st == HEED_OK && !copy) st = heed_alloc_failed(bytes, "a copy of the parameters to load %s", path);
    if (st == HEED_OK) {
        heed_params shadow = *p;
        shadow.values = copy;
        st = load_params(&shadow, &c->params, path);
    }
    for (int i = 0; st == HEED_OK && i < p->count; i++)
        memcpy(p->values + p->items[i].offset, copy + p->items[i].offset, p->items[i].count * sizeof(float));
    heed_free(copy);
    container_free(c);
    return st;
}

static heed_status params_allocated(const heed_params *p, const char *path) {
    if (p->count && !p->values)
        return heed_fail(HEED_ERR_ARG, "cannot load %s: the parameters are not allocated (heed_params_alloc)",
                         path);
    return HEED_OK;
}

heed_status heed_params_load(heed_params *p, const char *path) {
    HEED_TRY(params_allocated(p, path));
    container c;
    HEED_TRY(read_container(path, 0, &c));
    return params_from(&c, path, p);
}

heed_status heed_params_load_mem(heed_params *p, const void *data, size_t size, const char *name) {
    if (!name) name = "parameters in memory";
    HEED_TRY(params_allocated(p, name));
    container c;
    HEED_TRY(mem_container(data, size, name, 0, &c));
    return params_from(&c, name, p);
}

const heed_chunk *heed_chunk_find(const heed_chunk *chunks, int n, const char *tag) {
    for (int i = 0; i < n; i++)
        if (!strcmp(chunks[i].tag, tag)) return &chunks[i];
    return NULL;
}

void heed_chunks_free(heed_chunk *chunks, int n) {
    for (int i = 0; i < n; i++) free(chunks[i].data);
    free(chunks);
}

void heed_model_free(heed_model *m) {
    if (!m) return;
    heed_net_free(m->net);
    free(m->meta.class_names);
    free(m);
}
