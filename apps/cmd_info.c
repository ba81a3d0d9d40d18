/* cmd_info.c -- `heed info`: a network's or model's layers with their output
 * shapes, parameter counts and FLOPs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "model.h"

const char cmd_info_summary[] = "list a network's or model's layers, shapes, parameters and FLOPs";

typedef struct info_ctx {
    heed_params *params;
    int json, first;
} info_ctx;

/* Parameters whose names start with the layer's name followed by a dot and
 * contain no further layer below it: the layer's own (not its children's). */
static size_t own_params(const heed_layer *l, const heed_params *p, int *buffers) {
    size_t n = 0, len = strlen(l->name);
    /* A composite layer's children list their own parameters; a leaf owns
     * everything under its name, nested names included (RAM's private fc
     * layers: "ram.fc_g.weight"). */
    int leaf = heed_layer_child_count(l) == 0;
    *buffers = 0;
    for (int i = 0; i < p->count; i++) {
        const char *name = p->items[i].name;
        if (strncmp(name, l->name, len) || name[len] != '.' || (!leaf && strchr(name + len + 1, '.')))
            continue;
        if (p->items[i].flags & HEED_PARAM_BUFFER)
            *buffers += (int)p->items[i].count;
        else
            n += p->items[i].count;
    }
    return n;
}

static void show(heed_layer *l, int depth, void *vctx) {
    info_ctx *c = vctx;
    int buffers;
    size_t n = own_params(l, c->params, &buffers);
    double flops = l->ops->flops ? l->ops->flops(l) : 0;
    if (c->json) {
        printf("%s{\"name\": \"%s\", \"type\": \"%s\", \"depth\": %d, \"output\": [%d, %d, %d], "
               "\"params\": %zu, \"flops\": %.0f}",
               c->first ? "" : ", ", l->name, l->ops->type, depth, l->out_c, l->out_h, l->out_w, n, flops);
        c->first = 0;
        return;
    }
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
    printf("%*s%-*s %-11s %-14s %10zu %14.0f\n", 2 * depth, "", 34 - 2 * depth, l->name, l->ops->type,
           shape, n, flops);
}

int cmd_info(int argc, char **argv) {
    int json = 0;
    const cli_opt opts[] = {{"json", CLI_FLAG, &json, NULL, "print JSON", NULL}, {0}};
    const cli_spec spec = {"info", "[--json] FILE",
                           "Prints each layer of a network file (.net) or model file (.heed): name, type,\n"
                           "output shape per image, its own parameter count and forward FLOPs per image\n"
                           "(2 per multiply-add), then the totals; for a model, its classes, data,\n"
                           "accuracy, input normalisation and recipe. JSON: {\"file\", \"input\", \"output\",\n"
                           "\"layers\": [{\"name\", \"type\", \"depth\", \"output\", \"params\", \"flops\"}], \"params\",\n"
                           "\"flops\"}, a model's with \"classes\" (how many), \"test_accuracy\" (null: not\n"
                           "evaluated), \"epochs\", \"input_mean\", \"input_std\", \"channel_mean\" and \"channel_std\"\n"
                           "(each input channel's pair: the same for each unless the model normalises per\n"
                           "channel), \"class_names\", \"dataset\" and \"recipe\".",
                           opts, NULL};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs != 1) return cli_error("info", 2, "give one network or model file");
    heed_model *m = NULL;
    heed_net *net = NULL;
    /* The file is opened twice (its first 8 bytes say which loader reads
     * it): a pipe would reach the loader with those bytes gone. */
    struct stat sb;
    if (stat(args[0], &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
        return cli_error("info", 1, "%s is not a regular file (a pipe?): heed info reads a file "
                         "twice; save it to a file first", args[0]);
    FILE *f = fopen(args[0], "rb");
    if (!f) return cli_error("info", 1, "cannot open %s: %s", args[0], strerror(errno));
    char head[512];
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    const int model = got >= 8 && !memcmp(head, HEED_MODEL_MAGIC, 8);
    /* Anything else should be a network's text: a binary file (an image,
     * say) is named as neither, not reported by the parser's line numbers. */
    if (!model && memchr(head, '\0', got))
        return cli_error("info", 1, "%s is neither a network file (text) nor a model file (which starts "
                         "with %s)", args[0], HEED_MODEL_MAGIC);
    heed_status st = model ? heed_model_load(&m, args[0]) : heed_net_describe(&net, args[0]);
    if (st != HEED_OK) return cli_lib_error("info");
    if (m) net = m->net;
    info_ctx c = {.params = &net->params, .json = json, .first = 1};
    double flops = heed_layer_flops(&net->root->base);
    size_t params = heed_params_trainable(&net->params);
    const heed_layer *root = &net->root->base;
    if (json) {
        printf("{\"file\": ");
        cli_json_string(stdout, args[0]);
        printf(", \"input\": [%d, %d, %d], \"output\": [%d, %d, %d], \"layers\": [", net->in_c,
               net->in_h, net->in_w, root->out_c, root->out_h, root->out_w);
        heed_net_visit(net, show, &c);
        printf("], \"params\": %zu, \"flops\": %.0f", params, flops);
        if (m) {
            printf(", \"classes\": %d, \"test_accuracy\": ", m->meta.classes);
            printf(m->meta.test_accuracy < 0 ? "null" : "%.6f", m->meta.test_accuracy);
            printf(", \"epochs\": %d, \"input_mean\": %.9g, \"input_std\": %.9g", m->meta.epochs,
                   m->meta.input_mean, m->meta.input_std);
            /* what each channel is normalised by, the same pair for each unless per channel */
            for (int k = 0; k < 2; k++) {
                printf(", \"%s\": [", k ? "channel_std" : "channel_mean");
                for (int ch = 0; ch < net->in_c; ch++) {
                    float mean, std;
                    heed_model_channel_norm(&m->meta, ch, &mean, &std);
                    printf("%s%.9g", ch ? ", " : "", k ? std : mean);
                }
                printf("]");
            }
            printf(", \"class_names\": [");
            for (int k = 0; k < m->meta.classes; k++) {
                if (k) printf(", ");
                cli_json_string(stdout, m->meta.class_names[k]);
            }
            /* "" where a model saved through the library records none */
            printf("], \"dataset\": ");
            cli_json_string(stdout, m->meta.dataset);
            printf(", \"recipe\": ");
            cli_json_string(stdout, m->meta.recipe);
        }
        printf("}\n");
    } else {
        printf("%s: input %dx%dx%d\n\n%-34s %-11s %-14s %10s %14s\n", args[0], net->in_c, net->in_h,
               net->in_w, "layer", "type", "output", "params", "FLOPs");
        heed_net_visit(net, show, &c);
        printf("\ntotal: %zu parameters, %.2f MFLOPs per image forward\n", params, flops / 1e6);
        if (m) {
            /* a model saved through the library may name no dataset and have no
             * test accuracy (heed_model_new: -1, "not evaluated") */
            printf("model: %d classes (%s ... %s), trained on %s for %d epochs, ", m->meta.classes,
                   m->meta.class_names[0], m->meta.class_names[m->meta.classes - 1],
                   m->meta.dataset[0] ? m->meta.dataset : "(unrecorded data)", m->meta.epochs);
            if (m->meta.test_accuracy < 0)
                printf("not evaluated\n");
            else
                printf("test accuracy %.2f%%\n", 100 * m->meta.test_accuracy);
            if (!m->meta.norm_channels) {
                printf("input: (pixel - %.4g) / %.4g, pixels in [0, 1]\n", m->meta.input_mean,
                       m->meta.input_std);
            } else {
                printf("input: per channel (pixel - (");
                for (int k = 0; k < 2; k++) {
                    for (int ch = 0; ch < m->meta.norm_channels; ch++)
                        printf("%s%.4g", ch ? ", " : "", k ? m->meta.channel_std[ch] : m->meta.channel_mean[ch]);
                    printf(k ? ")" : ")) / (");
                }
                printf(", pixels in [0, 1]\n");
            }
            if (m->meta.recipe[0]) printf("recipe: %s\n", m->meta.recipe);
        }
    }
    if (m)
        heed_model_free(m);
    else
        heed_net_free(net);
    return 0;
}
