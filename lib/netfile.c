/* netfile.c -- the network description parser (format: nets/README.md).
 *
 * Reads line by line into a stack of open blocks (seq, residual body,
 * residual shortcut). Each layer line becomes a layer built by its type's
 * builder from the line's settings and the shape the block gives so far, so
 * every shape error is caught on the line that causes it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "dropout.h"
#include "linear.h"
#include "net.h"
#include "netfile_impl.h"
#include "text_impl.h"
#include "pool2d.h"

enum { MAX_SETTINGS = 16, MAX_DEPTH = 16, MAX_TOKEN = 64 };

/* The largest magnitude of a whole-number setting (within an int). */
#define SETTING_MAX 1000000000L

struct heed_settings {
    int count;
    char key[MAX_SETTINGS][MAX_TOKEN];
    char value[MAX_SETTINGS][MAX_TOKEN];
    int used[MAX_SETTINGS];
};

static const char *settings_get(heed_settings *s, const char *key) {
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->key[i], key)) {
            s->used[i] = 1;
            return s->value[i];
        }
    return NULL;
}

/* Whether v is a whole number and nothing else, stored in *x (LONG_MIN
 * or LONG_MAX beyond long's range, which every range check refuses). */
static int whole_number(const char *v, long *x) {
    char *end;
    *x = strtol(v, &end, 10);
    return end != v && !*end;
}

heed_status heed_settings_int(heed_settings *s, const char *key, int def, int *out) {
    const char *v = settings_get(s, key);
    if (!v) {
        *out = def;
        return HEED_OK;
    }
    long x;
    if (!whole_number(v, &x)) return heed_fail(HEED_ERR_ARG, "%s=%s is not a whole number", key, v);
    if (x < -SETTING_MAX || x > SETTING_MAX)
        return heed_fail(HEED_ERR_ARG, "%s=%s is out of range (%ld .. %ld)", key, v, -SETTING_MAX,
                         SETTING_MAX);
    *out = (int)x;
    return HEED_OK;
}

heed_status heed_settings_need_int(heed_settings *s, const char *key, int *out) {
    if (!settings_get(s, key)) return heed_fail(HEED_ERR_ARG, "needs %s=", key);
    return heed_settings_int(s, key, 0, out);
}

heed_status heed_settings_float(heed_settings *s, const char *key, float def, float *out) {
    const char *v = settings_get(s, key);
    if (!v) {
        *out = def;
        return HEED_OK;
    }
    char *end;
    float x = strtof(v, &end);
    if (*end || end == v) return heed_fail(HEED_ERR_ARG, "%s=%s is not a number", key, v);
    *out = x;
    return HEED_OK;
}

heed_status heed_settings_choice(heed_settings *s, const char *key, const char *const *choices, int def,
                                 int *out) {
    const char *v = settings_get(s, key);
    *out = def;
    if (!v) return HEED_OK;
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(v, choices[i])) {
            *out = i;
            return HEED_OK;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    }
    return heed_fail(HEED_ERR_ARG, "%s=%s is not one of: %s", key, v, list);
}

/* ---- builders for the core layer types --------------------------------- */

static heed_status build_conv(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                              const char *name) {
    heed_conv2d_cfg c = {.in_c = in[0]};
    HEED_TRY(heed_settings_need_int(s, "out", &c.out_c));
    HEED_TRY(heed_settings_need_int(s, "k", &c.k));
    HEED_TRY(heed_settings_int(s, "stride", 1, &c.stride));
    HEED_TRY(heed_settings_int(s, "pad", 0, &c.pad));
    HEED_TRY(heed_settings_int(s, "dilation", 1, &c.dilation));
    HEED_TRY(heed_settings_int(s, "groups", 1, &c.groups));
    HEED_TRY(heed_settings_int(s, "bias", 1, &c.bias));
    heed_conv2d *l;
    HEED_TRY(heed_conv2d_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_bn(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                            const char *name) {
    heed_batchnorm_cfg c = {.c = in[0]};
    HEED_TRY(heed_settings_float(s, "momentum", 0.1f, &c.momentum));
    HEED_TRY(heed_settings_float(s, "eps", 1e-5f, &c.eps));
    heed_batchnorm *l;
    HEED_TRY(heed_batchnorm_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_act(heed_layer **out, heed_act_kind kind, heed_settings *s, const int in[3],
                             heed_params *p, const char *name) {
    heed_activation_cfg c = {.kind = kind};
    if (kind == HEED_ACT_LEAKY_RELU) HEED_TRY(heed_settings_float(s, "slope", 0.01f, &c.slope));
    heed_activation *l;
    HEED_TRY(heed_activation_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

#define ACT_BUILDER(fn, kind)                                                                      \
    static heed_status fn(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,     \
                          const char *name) {                                                      \
        return build_act(out, kind, s, in, p, name);                                               \
    }
ACT_BUILDER(build_relu, HEED_ACT_RELU)
ACT_BUILDER(build_leaky_relu, HEED_ACT_LEAKY_RELU)
ACT_BUILDER(build_sigmoid, HEED_ACT_SIGMOID)
ACT_BUILDER(build_tanh, HEED_ACT_TANH)
ACT_BUILDER(build_softmax, HEED_ACT_SOFTMAX)
ACT_BUILDER(build_silu, HEED_ACT_SILU)
ACT_BUILDER(build_hardsigmoid, HEED_ACT_HARDSIGMOID)
ACT_BUILDER(build_hardswish, HEED_ACT_HARDSWISH)

static heed_status build_pool(heed_layer **out, heed_pool_kind kind, heed_settings *s,
                              const int in[3], heed_params *p, const char *name) {
    heed_pool2d_cfg c = {.kind = kind};
    HEED_TRY(heed_settings_need_int(s, "k", &c.k));
    HEED_TRY(heed_settings_int(s, "stride", c.k, &c.stride));
    HEED_TRY(heed_settings_int(s, "pad", 0, &c.pad));
    if (kind == HEED_POOL_AVG) HEED_TRY(heed_settings_int(s, "exclude_pad", 0, &c.exclude_pad));
    heed_pool2d *l;
    HEED_TRY(heed_pool2d_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_maxpool(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                                 const char *name) {
    return build_pool(out, HEED_POOL_MAX, s, in, p, name);
}

static heed_status build_avgpool(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                                 const char *name) {
    return build_pool(out, HEED_POOL_AVG, s, in, p, name);
}

static heed_status build_global(heed_layer **out, heed_pool_kind kind, const int in[3],
                                const char *name) {
    heed_global_pool *l;
    HEED_TRY(heed_global_pool_new(&l, kind, in, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_gap(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                             const char *name) {
    (void)s, (void)p;
    return build_global(out, HEED_POOL_AVG, in, name);
}

static heed_status build_gmp(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                             const char *name) {
    (void)s, (void)p;
    return build_global(out, HEED_POOL_MAX, in, name);
}

static heed_status build_fc(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                            const char *name) {
    heed_linear_cfg c = {.in = in[0] * in[1] * in[2]};
    int bias;
    HEED_TRY(heed_settings_need_int(s, "out", &c.out));
    HEED_TRY(heed_settings_int(s, "bias", 1, &bias));
    c.no_bias = !bias;
    heed_linear *l;
    HEED_TRY(heed_linear_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_flatten(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                                 const char *name) {
    (void)s, (void)p;
    heed_flatten *l;
    HEED_TRY(heed_flatten_new(&l, in, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_dropout(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                                 const char *name) {
    heed_dropout_cfg c = {0};
    int seed;
    HEED_TRY(heed_settings_float(s, "p", 0.5f, &c.p));
    HEED_TRY(heed_settings_int(s, "seed", 1, &seed));
    c.seed = (uint64_t)seed;
    heed_dropout *l;
    HEED_TRY(heed_dropout_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static const heed_layer_type core_types[] = {
    {"conv", build_conv, "out k [stride pad dilation groups bias]"},
    {"bn", build_bn, "[momentum eps]"},
    {"relu", build_relu, ""},
    {"leaky_relu", build_leaky_relu, "[slope]"},
    {"sigmoid", build_sigmoid, ""},
    {"tanh", build_tanh, ""},
    {"softmax", build_softmax, ""},
    {"silu", build_silu, ""},
    {"hardsigmoid", build_hardsigmoid, ""},
    {"hardswish", build_hardswish, ""},
    {"maxpool", build_maxpool, "k [stride pad]"},
    {"avgpool", build_avgpool, "k [stride pad exclude_pad]"},
    {"gap", build_gap, ""},
    {"gmp", build_gmp, ""},
    {"fc", build_fc, "out [bias]"},
    {"flatten", build_flatten, ""},
    {"dropout", build_dropout, "[p seed]"},
    {NULL, NULL, NULL},
};

/* Whole-number settings whose range is narrower than +-SETTING_MAX, by
 * layer type. The layers' configurations take 0 for "the default" (conv's
 * stride and dilation, a pool's stride, se's and cbam's r and k, eca's k), so an
 * explicit 0, which means nothing there, would silently become the
 * default: the parser refuses it, and flags other than 0 and 1, before
 * the builder reads them. A setting not in the table keeps the builder's
 * and the layer's own checks. */
static const struct {
    const char *type, *key;
    long lo, hi;
} int_ranges[] = {
    {"conv", "out", 1, SETTING_MAX},
    {"conv", "k", 1, SETTING_MAX},
    {"conv", "stride", 1, SETTING_MAX},
    {"conv", "pad", 0, SETTING_MAX},
    {"conv", "dilation", 1, SETTING_MAX},
    {"conv", "groups", 1, SETTING_MAX},
    {"conv", "bias", 0, 1},
    {"maxpool", "k", 1, SETTING_MAX},
    {"maxpool", "stride", 1, SETTING_MAX},
    {"maxpool", "pad", 0, SETTING_MAX},
    {"avgpool", "k", 1, SETTING_MAX},
    {"avgpool", "stride", 1, SETTING_MAX},
    {"avgpool", "pad", 0, SETTING_MAX},
    {"avgpool", "exclude_pad", 0, 1},
    {"fc", "out", 1, SETTING_MAX},
    {"fc", "bias", 0, 1},
    {"se", "r", 1, SETTING_MAX},
    {"se", "hidden", 1, SETTING_MAX},
    {"cbam", "r", 1, SETTING_MAX},
    {"cbam", "k", 1, SETTING_MAX},
    {"eca", "k", 1, SETTING_MAX},
};

static const heed_layer_type *find_type(const char *keyword) {
    for (const heed_layer_type *t = core_types; t->keyword; t++)
        if (!strcmp(t->keyword, keyword)) return t;
    for (const heed_layer_type *t = heed_module_layer_types; t->keyword; t++)
        if (!strcmp(t->keyword, keyword)) return t;
    return NULL;
}

/* ---- the parser -------------------------------------------------------- */

/* An open block: a sequence being filled, and what it becomes at `end`. */
typedef enum { BLOCK_ROOT, BLOCK_SEQ, BLOCK_BODY, BLOCK_SHORTCUT } block_kind;

/* Layers of each type named so far in a block (keyword + index names). */
typedef struct name_counts {
    int n;
    const char *keywords[64]; /* static type table strings */
    int count[64];
} name_counts;

typedef struct block {
    block_kind kind;
    heed_seq *seq;
    heed_seq *body;             /* BLOCK_SHORTCUT: the finished body */
    int line;                   /* where it was opened */
    char name[HEED_LAYER_NAME_MAX + 1]; /* full name */
    name_counts counts;         /* for default names */
} block;

typedef struct parser {
    const char *origin;
    int line;
    heed_params *params;
    block stack[MAX_DEPTH];
    int depth;
    char **names; /* every full layer name so far, to refuse duplicates */
    int nnames, capnames;
} parser;

/* Re-records the current error prefixed with "origin:line: " and returns st. */
static heed_status at_line(parser *p, heed_status st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", heed_last_error());
    return heed_fail(st, "%s:%d: %s", p->origin, p->line, msg);
}

__attribute__((format(printf, 2, 3))) static heed_status line_error(parser *p, const char *fmt,
                                                                     ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return heed_fail(HEED_ERR_FORMAT, "%s:%d: %s", p->origin, p->line, msg);
}

/* Real-valued settings that the layers' configurations read as "the
 * default" when 0, as int_ranges' zeros: an explicit 0 would silently train
 * with momentum 0.1, eps 1e-5 or slope 0.01, where PyTorch's 0 means frozen
 * running statistics, no epsilon, or a plain relu. The parser refuses it,
 * saying what to write instead. */
static const struct {
    const char *type, *key, *instead;
} zero_is_default[] = {
    {"bn", "momentum", "heed's batch norm always updates its running statistics"},
    {"bn", "eps", "eps must be > 0"},
    {"leaky_relu", "slope", "write relu"},
};

/* 1 if text is a number that equals zero ("0", "0.0", "-0", "0e3"). */
static int is_zero(const char *text) {
    char *end;
    double x = strtod(text, &end);
    return end != text && !*end && x == 0.0;
}

/* HEED_ERR_FORMAT if a whole-number setting of a `kw` line is outside
 * its range in int_ranges, or a zero_is_default setting is 0; a value that
 * is not a number of the kind is left to the builder, which says so. */
static heed_status check_ranges(parser *p, const char *kw, const heed_settings *s) {
    for (size_t r = 0; r < sizeof int_ranges / sizeof int_ranges[0]; r++) {
        if (strcmp(int_ranges[r].type, kw)) continue;
        for (int i = 0; i < s->count; i++) {
            long x;
            if (strcmp(s->key[i], int_ranges[r].key) || !whole_number(s->value[i], &x)) continue;
            if (x < int_ranges[r].lo || x > int_ranges[r].hi)
                return line_error(p, "%s: %s=%s is out of range (%ld .. %ld)", kw, s->key[i],
                                  s->value[i], int_ranges[r].lo, int_ranges[r].hi);
        }
    }
    for (size_t r = 0; r < sizeof zero_is_default / sizeof zero_is_default[0]; r++) {
        if (strcmp(zero_is_default[r].type, kw)) continue;
        for (int i = 0; i < s->count; i++)
            if (!strcmp(s->key[i], zero_is_default[r].key) && is_zero(s->value[i]))
                return line_error(p, "%s: %s=%s is out of range (%s)", kw, s->key[i], s->value[i],
                                  zero_is_default[r].instead);
    }
    return HEED_OK;
}

/* Splits a line into tokens at white space; returns the count. */
static int tokenize(char *line, char **tok, int max) {
    int n = 0;
    char *s = line;
    while (*s) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) break;
        if (n == max) return max + 1;
        tok[n++] = s;
        while (*s && !isspace((unsigned char)*s)) s++;
        if (*s) *s++ = '\0';
    }
    return n;
}

static heed_status parse_settings(parser *p, char **tok, int ntok, heed_settings *s, char *name,
                                  size_t name_size) {
    s->count = 0;
    name[0] = '\0';
    for (int i = 0; i < ntok; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq || eq == tok[i] || !eq[1])
            return line_error(p, "expected key=value, got '%s'", tok[i]);
        *eq = '\0';
        if (strlen(tok[i]) >= MAX_TOKEN)
            return line_error(p, "setting name '%.20s...' is too long", tok[i]);
        if (strlen(eq + 1) >= MAX_TOKEN)
            return line_error(p, "%s='%.20s...' is too long", tok[i], eq + 1);
        if (!strcmp(tok[i], "name")) {
            const char *v = eq + 1;
            for (const char *c = v; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
                    return line_error(p, "name '%s' may use only letters, digits, _ and -", v);
            if (strlen(v) >= name_size) return line_error(p, "name '%s' is too long", v);
            snprintf(name, name_size, "%s", v);
            continue;
        }
        for (int j = 0; j < s->count; j++)
            if (!strcmp(s->key[j], tok[i])) return line_error(p, "setting '%s' given twice", tok[i]);
        if (s->count == MAX_SETTINGS) return line_error(p, "too many settings");
        snprintf(s->key[s->count], MAX_TOKEN, "%s", tok[i]);
        snprintf(s->value[s->count], MAX_TOKEN, "%s", eq + 1);
        s->used[s->count] = 0;
        s->count++;
    }
    return HEED_OK;
}

/* The full name of a new layer in block b: explicit, or keyword + index. */
static heed_status make_name(parser *p, block *b, const char *keyword, const char *given, char *out,
                             size_t size) {
    char local[HEED_LAYER_NAME_MAX + 1];
    if (given[0]) {
        snprintf(local, sizeof local, "%s", given);
    } else {
        name_counts *nc = &b->counts;
        int k = 0;
        while (k < nc->n && strcmp(nc->keywords[k], keyword)) k++;
        if (k == nc->n) {
            if (k == 64) return line_error(p, "too many layer types in one block");
            nc->keywords[k] = keyword;
            nc->count[k] = 0;
            nc->n++;
        }
        snprintf(local, sizeof local, "%s%d", keyword, ++nc->count[k]);
    }
    char full[128];
    heed_layer_join_name(full, sizeof full, b->name, local);
    if (strlen(full) >= 48) return line_error(p, "layer name '%s' is too long (47 characters at most)", full);
    for (int i = 0; i < p->nnames; i++)
        if (!strcmp(p->names[i], full)) return line_error(p, "two layers are named '%s'", full);
    if (p->nnames == p->capnames) {
        int cap = p->capnames ? 2 * p->capnames : 32;
        char **names = realloc(p->names, (size_t)cap * sizeof *names);
        if (!names) return heed_fail(HEED_ERR_NOMEM, "out of memory parsing %s", p->origin);
        p->names = names;
        p->capnames = cap;
    }
    if (!(p->names[p->nnames] = strdup(full)))
        return heed_fail(HEED_ERR_NOMEM, "out of memory parsing %s", p->origin);
    p->nnames++;
    snprintf(out, size, "%s", full);
    return HEED_OK;
}

static heed_status open_block(parser *p, block_kind kind, const char *name, const int in[3]) {
    if (p->depth == MAX_DEPTH) return line_error(p, "blocks nested too deeply");
    block *b = &p->stack[p->depth];
    *b = (block){.kind = kind, .line = p->line};
    snprintf(b->name, sizeof b->name, "%s", name);
    char seqname[96];
    heed_layer_join_name(seqname, sizeof seqname, name,
                         kind == BLOCK_BODY ? "body" : kind == BLOCK_SHORTCUT ? "shortcut" : "");
    if (kind == BLOCK_ROOT || kind == BLOCK_SEQ) snprintf(seqname, sizeof seqname, "%s", name);
    heed_status st = heed_seq_new(&b->seq, in, seqname);
    if (st != HEED_OK) return at_line(p, st);
    p->depth++;
    return HEED_OK;
}

static heed_status append(parser *p, heed_layer *l) {
    heed_status st = heed_seq_append(p->stack[p->depth - 1].seq, l);
    return st == HEED_OK ? HEED_OK : at_line(p, st);
}

/* `end`: closes the innermost block and appends what it built to its parent. */
static heed_status close_block(parser *p) {
    block *b = &p->stack[p->depth - 1];
    if (b->kind == BLOCK_ROOT) return line_error(p, "'end' without an open block");
    p->depth--;
    heed_layer *built;
    if (b->kind == BLOCK_SEQ) {
        built = &b->seq->base;
    } else {
        heed_seq *body = b->kind == BLOCK_BODY ? b->seq : b->body;
        heed_seq *shortcut = b->kind == BLOCK_SHORTCUT ? b->seq : NULL;
        heed_residual *r;
        heed_status st = heed_residual_new(&r, body, shortcut, b->name);
        if (st != HEED_OK) return at_line(p, st);
        built = &r->base;
    }
    return append(p, built);
}

static heed_status parse_line(parser *p, char *line, int *have_input, int in[3]) {
    /* Editors on Windows start a file with a byte order mark. */
    if (p->line == 1 && !strncmp(line, "\xef\xbb\xbf", 3)) line += 3;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    /* Messages quote the line's words: no control character may reach a
     * terminal through them (tabs and a CRLF file's returns are spaces). */
    for (const char *c = line; *c; c++)
        if (heed_control_char(*c) && !isspace((unsigned char)*c))
            return line_error(p, "a control character (byte 0x%02x): not a text network file",
                              (unsigned char)*c);
    char *tok[MAX_SETTINGS + 4];
    int ntok = tokenize(line, tok, MAX_SETTINGS + 2);
    if (ntok == 0) return HEED_OK;
    if (ntok > MAX_SETTINGS + 2) return line_error(p, "too many settings on one line");
    const char *kw = tok[0];
    if (!*have_input) {
        if (strcmp(kw, "input") || ntok != 4)
            return line_error(p, "the first line must be 'input C H W'");
        for (int i = 0; i < 3; i++) {
            char *end;
            long v = strtol(tok[i + 1], &end, 10);
            if (*end || v < 1 || v > 65536)
                return line_error(p, "input: '%s' is not a size from 1 to 65536", tok[i + 1]);
            in[i] = (int)v;
        }
        size_t count;
        if (heed_shape_count(1, in[0], in[1], in[2], &count) != HEED_OK)
            return line_error(p, "input: %s", heed_last_error());
        *have_input = 1;
        return open_block(p, BLOCK_ROOT, "", in);
    }
    if (!strcmp(kw, "input")) return line_error(p, "'input' given twice");
    if (!strcmp(kw, "end")) {
        if (ntok != 1) return line_error(p, "'end' takes no settings");
        return close_block(p);
    }
    block *b = &p->stack[p->depth - 1];
    if (!strcmp(kw, "shortcut")) {
        if (ntok != 1) return line_error(p, "'shortcut' takes no settings");
        if (b->kind == BLOCK_SHORTCUT) return line_error(p, "a second 'shortcut' in one residual block");
        if (b->kind != BLOCK_BODY) return line_error(p, "'shortcut' outside a residual block");
        heed_seq *body = b->seq;
        /* The shortcut takes the block's input: the body's input shape. */
        int bin[3] = {body->base.in_c, body->base.in_h, body->base.in_w};
        /* The shortcut's block takes the body's place on the stack; it
         * goes on counting the body's layer types, so that default names
         * stay unique across the two (a body's conv1 and conv2, then the
         * shortcut's conv3). */
        const block body_block = *b;
        p->depth--;
        heed_status st = open_block(p, BLOCK_SHORTCUT, body_block.name, bin);
        if (st != HEED_OK) {
            heed_layer_free(&body->base);
            return st;
        }
        p->stack[p->depth - 1].body = body;
        p->stack[p->depth - 1].counts = body_block.counts;
        return HEED_OK;
    }
    heed_settings s;
    char given[HEED_LAYER_NAME_MAX + 1], full[HEED_LAYER_NAME_MAX + 1];
    HEED_TRY(parse_settings(p, tok + 1, ntok - 1, &s, given, sizeof given));
    int shape[3];
    heed_seq_out_shape(b->seq, shape);
    if (!strcmp(kw, "residual") || !strcmp(kw, "seq")) {
        if (s.count) return line_error(p, "'%s' takes only name=", kw);
        HEED_TRY(make_name(p, b, !strcmp(kw, "seq") ? "seq" : "residual", given, full, sizeof full));
        return open_block(p, !strcmp(kw, "seq") ? BLOCK_SEQ : BLOCK_BODY, full, shape);
    }
    const heed_layer_type *t = find_type(kw);
    if (!t) return line_error(p, "unknown layer type '%s' (see nets/README.md)", kw);
    HEED_TRY(check_ranges(p, kw, &s));
    HEED_TRY(make_name(p, b, t->keyword, given, full, sizeof full));
    heed_layer *l = NULL;
    heed_status st = t->build(&l, &s, shape, p->params, full);
    /* Every layer's output per image stays a tensor heed can hold, so that
     * the next layer's sizes (and products of them, in int) are sound. */
    size_t count;
    if (st == HEED_OK && (st = heed_shape_count(1, l->out_c, l->out_h, l->out_w, &count)) != HEED_OK)
        heed_layer_free(l);
    if (st != HEED_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", heed_last_error());
        /* A layer's own message names it ("se stage1.att: ..."): not "se: " again. */
        const size_t k = strlen(kw);
        const int named = !strncmp(msg, kw, k) && msg[k] == ' ';
        return heed_fail(st, "%s:%d: %s%s%s", p->origin, p->line, named ? "" : kw, named ? "" : ": ", msg);
    }
    for (int i = 0; i < s.count; i++)
        if (!s.used[i]) {
            heed_layer_free(l);
            char msg[256];
            snprintf(msg, sizeof msg, "%s: unknown setting '%s' (it takes: %s)", kw, s.key[i],
                     t->settings[0] ? t->settings : "none");
            return line_error(p, "%s", msg);
        }
    return append(p, l);
}

heed_status heed_text_check(const char *text, size_t n, const char *origin) {
    const char *nul = memchr(text, '\0', n);
    if (!nul) return HEED_OK;
    int line = 1;
    for (const char *c = text; c < nul; c++) line += *c == '\n';
    return heed_fail(HEED_ERR_FORMAT, "%s:%d: a NUL byte: not text", origin, line);
}

/* The parser; `allocate` 0 leaves the registered parameters unallocated. */
static heed_status parse_text(heed_net **out, const char *text, const char *origin, uint64_t seed,
                              size_t max_params, int allocate) {
    *out = NULL;
    heed_params params = {0};
    parser p = {.origin = origin ? origin : "<network>", .params = &params};
    int have_input = 0, in[3] = {0};
    heed_status st = HEED_OK;
    char *copy = strdup(text);
    if (!copy) return heed_fail(HEED_ERR_NOMEM, "out of memory parsing %s", p.origin);
    char *line = copy;
    while (st == HEED_OK && line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        p.line++;
        st = parse_line(&p, line, &have_input, in);
        line = next;
    }
    if (st == HEED_OK && !have_input)
        st = heed_fail(HEED_ERR_FORMAT, "%s: empty network description (no 'input C H W' line)", p.origin);
    if (st == HEED_OK && p.depth > 1)
        st = heed_fail(HEED_ERR_FORMAT, "%s:%d: block opened here has no 'end'", p.origin,
                       p.stack[p.depth - 1].line);
    if (st == HEED_OK && p.stack[0].seq->count == 0)
        st = heed_fail(HEED_ERR_FORMAT, "%s: the network has no layers", p.origin);
    const size_t values = heed_params_floats(&params);
    if (st == HEED_OK && values > max_params)
        st = heed_fail(HEED_ERR_FORMAT, "%s: the network has %zu parameter values, more than the "
                       "%zu its file can hold", p.origin, values, max_params);
    if (st == HEED_OK && allocate) st = heed_params_alloc(&params, seed);
    heed_net *net = NULL;
    if (st == HEED_OK) st = heed_net_wrap(&net, p.stack[0].seq, &params);
    if (st == HEED_OK) {
        p.depth = 0;
        if (!(net->source = strdup(text))) st = heed_fail(HEED_ERR_NOMEM, "out of memory");
    }
    /* On failure, free every open block (a shortcut block also holds its body). */
    for (int i = p.depth - 1; i >= 0; i--) {
        heed_layer_free(&p.stack[i].seq->base);
        if (p.stack[i].body) heed_layer_free(&p.stack[i].body->base);
    }
    for (int i = 0; i < p.nnames; i++) free(p.names[i]);
    free(p.names);
    free(copy);
    heed_params_free(&params);
    if (st != HEED_OK) {
        heed_net_free(net);
        return st;
    }
    *out = net;
    return HEED_OK;
}

heed_status heed_net_parse(heed_net **out, const char *text, const char *origin, uint64_t seed) {
    return parse_text(out, text, origin, seed, SIZE_MAX, 1);
}

heed_status heed_net_parse_bounded(heed_net **out, const char *text, const char *origin,
                                   uint64_t seed, size_t max_params) {
    return parse_text(out, text, origin, seed, max_params, 1);
}

heed_status heed_net_parse_layout(heed_net **out, const char *text, const char *origin) {
    return parse_text(out, text, origin, 0, SIZE_MAX, 0);
}
