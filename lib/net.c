/* net.c -- a network: its top-level sequence, parameters and source text.
 * Parsing of network files lives in netfile.c. */
#include "model.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netfile_impl.h"

heed_status heed_net_wrap(heed_net **out, heed_seq *root, heed_params *params) {
    *out = NULL;
    heed_net *net = calloc(1, sizeof *net);
    if (!net) return heed_fail(HEED_ERR_NOMEM, "cannot allocate a network");
    net->root = root;
    net->params = *params;
    *params = (heed_params){0};
    net->in_c = root->base.in_c, net->in_h = root->base.in_h, net->in_w = root->base.in_w;
    heed_layer_share_work(&root->base, &net->work);
    *out = net;
    return HEED_OK;
}

heed_status heed_net_forward(heed_net *net, const heed_tensor *x, heed_tensor *y) {
    return heed_layer_forward(&net->root->base, x, y);
}

heed_status heed_net_backward(heed_net *net, const heed_tensor *x, const heed_tensor *y,
                              const heed_tensor *dy, heed_tensor *dx) {
    return heed_layer_backward(&net->root->base, x, y, dy, dx);
}

void heed_net_set_training(heed_net *net, int training) {
    heed_layer_set_training(&net->root->base, training);
}

void heed_net_set_frozen(heed_net *net, int frozen) {
    heed_layer_set_frozen(&net->root->base, frozen);
}

heed_status heed_net_set_targets(heed_net *net, const int *labels, int n, double *loss) {
    return heed_layer_set_targets(&net->root->base, labels, n, loss);
}

void heed_net_reseed(heed_net *net, uint64_t seed) { heed_layer_reseed(&net->root->base, seed); }

heed_layer *heed_net_find(heed_net *net, const char *name) {
    if (!name || !name[0]) return NULL;
    return heed_layer_find(&net->root->base, name);
}

static void visit(heed_layer *l, int depth, void (*fn)(heed_layer *, int, void *), void *ctx) {
    for (int i = 0; i < heed_layer_child_count(l); i++) {
        heed_layer *c = heed_layer_child(l, i);
        fn(c, depth, ctx);
        visit(c, depth + 1, fn, ctx);
    }
}

void heed_net_visit(heed_net *net, void (*fn)(heed_layer *l, int depth, void *ctx), void *ctx) {
    visit(&net->root->base, 0, fn, ctx);
}

void heed_net_free(heed_net *net) {
    if (!net) return;
    if (net->root) heed_layer_free(&net->root->base);
    heed_params_free(&net->params);
    heed_work_free(&net->work);
    free(net->source);
    free(net);
}

/* The text of network file `path` in *text (malloc'd), checked for NULs. */
static heed_status read_net_file(const char *path, char **text) {
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return heed_fail(HEED_ERR_IO, "cannot open network file %s: %s", path, strerror(errno));
    /* Network files are small text; refuse anything that is clearly not one. */
    enum { MAX_NET_FILE = 1 << 20 };
    char *t = malloc(MAX_NET_FILE + 1);
    if (!t) {
        fclose(f);
        return heed_fail(HEED_ERR_NOMEM, "cannot read %s", path);
    }
    size_t n = fread(t, 1, MAX_NET_FILE + 1, f);
    const int err = ferror(f) ? (errno ? errno : EIO) : 0; /* before fclose changes errno */
    fclose(f);
    if (!err && n >= 8 && !memcmp(t, HEED_MODEL_MAGIC, 8)) {
        free(t);
        return heed_fail(HEED_ERR_FORMAT, "%s is a model or checkpoint file, not a network file "
                         "(`heed info` shows the network it holds)", path);
    }
    if (err || n > MAX_NET_FILE) {
        free(t);
        if (err)
            return heed_fail(HEED_ERR_IO, "cannot read network file %s: %s", path, strerror(err));
        return heed_fail(HEED_ERR_FORMAT, "%s: larger than 1 MiB, not a network file", path);
    }
    t[n] = '\0';
    heed_status st = heed_text_check(t, n, path);
    if (st != HEED_OK) {
        free(t);
        return st;
    }
    *text = t;
    return HEED_OK;
}

heed_status heed_net_load(heed_net **out, const char *path, uint64_t seed) {
    *out = NULL;
    char *text;
    HEED_TRY(read_net_file(path, &text));
    heed_status st = heed_net_parse(out, text, path, seed);
    free(text);
    return st;
}

heed_status heed_net_describe(heed_net **out, const char *path) {
    *out = NULL;
    char *text;
    HEED_TRY(read_net_file(path, &text));
    heed_status st = heed_net_parse_layout(out, text, path);
    free(text);
    return st;
}
