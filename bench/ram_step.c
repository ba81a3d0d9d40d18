/* ram_step.c -- one training step's gradients of a RAM model, with its
 * random draws given, for bench/torch_agree.py to hold against PyTorch's
 * autograd on peer_torch.py's RAM.
 *
 * Loads MODEL (a heed model whose network has a ram layer), replays DRAWS
 * (heed_ram_replay: per image and step the location the sensor starts from
 * at step 0, then the unclamped samples), runs a training forward on
 * INPUT, adds the softmax cross-entropy over LABELS and the layer's
 * REINFORCE and baseline terms, runs backward and writes every parameter's
 * gradient to GRADS (float32, in the parameters' storage order). Prints one
 * JSON line: the loss and each tensor's name, offset and count in GRADS.
 * Files are raw little-endian: INPUT float32 (N, C, H, W), LABELS int32 (N),
 * DRAWS float32 (N, T, 2). Not installed; `make check` builds it.
 *
 *   build/bench/ram_step MODEL INPUT LABELS DRAWS GRADS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heed.h"

/* The whole of `path` into a malloc'ed buffer of exactly `size` bytes. */
static void *read_exactly(const char *path, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ram_step: cannot open %s\n", path);
        return NULL;
    }
    char *buf = malloc(size + 1);
    size_t got = buf ? fread(buf, 1, size + 1, f) : 0;
    fclose(f);
    if (got != size) {
        fprintf(stderr, "ram_step: %s holds %s%zu bytes, expected %zu\n", path,
                got > size ? "over " : "", got > size ? size : got, size);
        free(buf);
        return NULL;
    }
    return buf;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    fclose(f);
    return n;
}

static void find_ram(heed_layer *l, int depth, void *ctx) {
    (void)depth;
    if (!strcmp(l->ops->type, "ram")) *(heed_ram **)ctx = (heed_ram *)l;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ram_step MODEL INPUT LABELS DRAWS GRADS\n");
        return 2;
    }
    heed_model *m = NULL;
    if (heed_model_load(&m, argv[1]) != HEED_OK) {
        fprintf(stderr, "ram_step: %s\n", heed_last_error());
        return 1;
    }
    heed_ram *r = NULL;
    heed_net_visit(m->net, find_ram, &r);
    long label_bytes = file_size(argv[3]);
    if (!r || label_bytes <= 0 || label_bytes % 4) {
        fprintf(stderr, "ram_step: %s\n", !r ? "the model has no ram layer" : "LABELS must hold int32 values");
        return 1;
    }
    const int N = (int)(label_bytes / 4), T = r->cfg.glimpses;
    heed_tensor x = {0}, y = {0}, dy = {0}, draws = {0};
    if (heed_tensor_alloc(&x, N, m->net->in_c, m->net->in_h, m->net->in_w) != HEED_OK ||
        heed_tensor_alloc(&draws, N, T, 2, 1) != HEED_OK || heed_tensor_alloc(&dy, N, r->cfg.classes, 1, 1) != HEED_OK) {
        fprintf(stderr, "ram_step: %s\n", heed_last_error());
        return 1;
    }
    float *pixels = read_exactly(argv[2], heed_tensor_count(&x) * sizeof(float));
    float *drawn = read_exactly(argv[4], heed_tensor_count(&draws) * sizeof(float));
    int *labels = read_exactly(argv[3], (size_t)N * sizeof(int));
    if (!pixels || !drawn || !labels) return 1;
    memcpy(x.data, pixels, heed_tensor_count(&x) * sizeof(float));
    memcpy(draws.data, drawn, heed_tensor_count(&draws) * sizeof(float));

    double loss = 0.0;
    heed_net_set_training(m->net, 1);
    heed_params_zero_grad(&m->net->params);
    heed_tensor_zero(&dy);
    if (heed_ram_replay(r, &draws) != HEED_OK || heed_net_forward(m->net, &x, &y) != HEED_OK ||
        heed_softmax_cross_entropy(&y, labels, &loss, NULL, &dy) != HEED_OK ||
        heed_net_set_targets(m->net, labels, N, &loss) != HEED_OK ||
        heed_net_backward(m->net, &x, &y, &dy, NULL) != HEED_OK) {
        fprintf(stderr, "ram_step: %s\n", heed_last_error());
        return 1;
    }
    const heed_params *p = &m->net->params;
    FILE *out = fopen(argv[5], "wb");
    if (!out || fwrite(p->grads, sizeof(float), p->total, out) != p->total || fclose(out) != 0) {
        fprintf(stderr, "ram_step: cannot write %s\n", argv[5]);
        return 1;
    }
    printf("{\"loss\": %.9g, \"tensors\": [", loss);
    for (int k = 0; k < p->count; k++)
        printf("%s{\"name\": \"%s\", \"offset\": %zu, \"count\": %zu}", k ? ", " : "", p->items[k].name,
               p->items[k].offset, p->items[k].count);
    printf("]}\n");
    free(pixels), free(drawn), free(labels);
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy), heed_tensor_free(&draws);
    heed_model_free(m);
    return 0;
}
