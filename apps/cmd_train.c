/* cmd_train.c -- `heed train`: trains a network on a dataset, evaluating on
 * the test split after each epoch and checkpointing so --resume continues. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "evaluate.h"
#include "loss.h"
#include "omp_impl.h"
#include "optim.h"
#include "schedule.h"

/* --optimizer when not given: a recipe without one ran it */
#define DEFAULT_OPTIMIZER "sgd"

const char cmd_train_summary[] = "train a network file on Fashion-MNIST or an image folder";

typedef struct train_opts {
    const char *net, *out, *data, *data_dir, *optimizer, *schedule, *resume;
    const char *init; /* a model whose matching weights start the run (fine-tuning) */
    const char *recipe; /* the command line, recorded in the model */
    int epochs, batch, augment, seed, threads, limit, test_limit, warmup, json;
    int crop_pad, hflip; /* --crop-pad, --hflip: augmentations one by one (--augment: both) */
    int crop_pad_given;  /* --crop-pad was given, 0 too: it overrides --augment's 2 */
    int momentum_given;  /* --momentum was given, 0.9 too: adamw refuses it */
    int stop_after; /* > 0: stop after this epoch (resume later) */
    float lr, momentum, weight_decay;
} train_opts;

/* Optimizer state and progress in a checkpoint's extra chunks. */
static heed_status save_checkpoint(const heed_model *m, const heed_optim *o, int epoch,
                                   const char *path) {
    size_t total = o->params->total;
    size_t size = 16 + 2 * total * sizeof(float);
    unsigned char *buf = calloc(1, size);
    if (!buf) return heed_fail(HEED_ERR_NOMEM, "cannot allocate a checkpoint");
    uint64_t head[2] = {(uint64_t)o->steps, (uint64_t)epoch};
    memcpy(buf, head, 16);
    if (o->m) memcpy(buf + 16, o->m, total * sizeof(float));
    if (o->v) memcpy(buf + 16 + total * sizeof(float), o->v, total * sizeof(float));
    heed_chunk c = {.tag = "OPTM", .data = buf, .size = size};
    heed_status st = heed_model_save_with(m, path, &c, 1);
    free(buf);
    return st;
}

static heed_status restore_checkpoint(heed_optim *o, const heed_chunk *c, int epochs, int *epoch,
                                      const char *path) {
    size_t total = o->params->total;
    if (!c)
        return heed_fail(HEED_ERR_FORMAT, "%s holds no optimizer state: it is a model, not a checkpoint "
                         "(heed train writes MODEL.ckpt beside MODEL)", path);
    if (c->size != 16 + 2 * total * sizeof(float))
        return heed_fail(HEED_ERR_FORMAT, "%s: checkpoint has no optimizer state for this network",
                         path);
    uint64_t head[2];
    memcpy(head, c->data, 16);
    /* Epochs done, at most the run's; steps far below a long's range. */
    if (head[1] > (uint64_t)epochs || head[0] > ((uint64_t)1 << 48))
        return heed_fail(HEED_ERR_FORMAT,
                         "%s: checkpoint records %llu epochs and %llu steps done, for a run of %d epochs",
                         path, (unsigned long long)head[1], (unsigned long long)head[0], epochs);
    /* As the model's parameters are checked: a NaN momentum would train to
     * a NaN model, exit 0, and save what no loader accepts. The second
     * moments (AdamW's v) are squares. */
    for (size_t i = 0; i < 2 * total; i++) {
        float f;
        memcpy(&f, c->data + 16 + i * sizeof(float), sizeof f);
        if (!isfinite(f) || (i >= total && f < 0.0f))
            return heed_fail(HEED_ERR_FORMAT, "%s: checkpoint's optimizer state holds %g at %s %zu",
                             path, f, i < total ? "first moment" : "second moment", i % total);
    }
    o->steps = (long)head[0];
    *epoch = (int)head[1];
    if (o->m) memcpy(o->m, c->data + 16, total * sizeof(float));
    if (o->v) memcpy(o->v, c->data + 16 + total * sizeof(float), total * sizeof(float));
    return HEED_OK;
}

/* Whether option word `w` is --name or --name=VALUE. */
static int is_option(const char *w, const char *name) {
    size_t n = strlen(name);
    return !strncmp(w, "--", 2) && !strncmp(w + 2, name, n) && (w[2 + n] == '\0' || w[2 + n] == '=');
}

/* Appends word w to out[used..size), single-quoted as a shell would need
 * when it holds anything but plain characters (a path with a space). */
static size_t append_word(char *out, size_t size, size_t used, const char *w) {
    int plain = *w != '\0';
    for (const char *c = w; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./:,@%", *c)) plain = 0;
    if (used < size) used += (size_t)snprintf(out + used, size - used, " %s", plain ? w : "'");
    if (plain) return used;
    for (const char *c = w; *c && used < size; c++)
        used += (size_t)snprintf(out + used, size - used, "%s", *c == '\'' ? "'\\''" : (char[2]){*c, 0});
    if (used < size) used += (size_t)snprintf(out + used, size - used, "'");
    return used;
}

/* The command line as a recipe that trains the same model again: without
 * --resume and --stop-after, which say where a run went on or stopped.
 * Returns 0 if it did not fit in size bytes (out then holds a cut copy,
 * which --resume would read back as other options). */
static int recipe_of(char *out, size_t size, int argc, char **argv) {
    size_t used = (size_t)snprintf(out, size, "heed");
    for (int i = 0; i < argc && used < size; i++) {
        if (is_option(argv[i], "resume") || is_option(argv[i], "stop-after")) {
            i += !strchr(argv[i], '='); /* and its value */
            continue;
        }
        used = append_word(out, size, used, argv[i]);
    }
    return used < size;
}

/* The recipe recorded in a model or checkpoint file. */
static heed_status checkpoint_recipe(const char *path, char *out, size_t size) {
    heed_model *m;
    HEED_TRY(heed_model_load(&m, path));
    snprintf(out, size, "%s", m->meta.recipe);
    heed_model_free(m);
    return HEED_OK;
}

/* Splits a recipe into words, in place, as a shell would split what
 * append_word wrote ('...' quotes, \\ escapes one character); at most max
 * words; returns how many, or -1 if there are more (never some of them
 * silently: the rest would read back as other options). */
static int split_words(char *text, char **words, int max) {
    int n = 0;
    char *in = text, *to = text;
    for (;;) {
        while (*in == ' ') in++;
        if (!*in) break;
        if (n == max) return -1;
        words[n++] = to;
        for (int quoted = 0; *in && (quoted || *in != ' '); in++) {
            if (*in == '\'') quoted = !quoted;
            else if (*in == '\\' && !quoted && in[1]) *to++ = *++in;
            else *to++ = *in;
        }
        if (*in) in++;
        *to++ = '\0';
    }
    return n;
}

static void cpu_name(char *out, size_t size) {
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(out, size, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    fclose(f);
    char n[32];
    snprintf(n, sizeof n, ", %d threads", omp_get_max_threads());
    strncat(out, n, size - strlen(out) - 1);
}

/* The deviation inputs are divided by: 1 for images all of one value
 * (nothing to scale), where the deviation is 0 or rounding. */
static float scale_of(double std) { return std >= 1e-6 ? (float)std : 1.0f; }

/* A new model from the network file, labelled for the dataset. */
static heed_status build_model(const train_opts *o, heed_net *net, const heed_dataset *train,
                               heed_model **out) {
    heed_model *m;
    HEED_TRY(heed_model_new(&m, net));
    const char *names[HEED_MAX_CLASSES];
    for (int i = 0; i < train->classes && i < HEED_MAX_CLASSES; i++) names[i] = train->class_names[i];
    heed_status st = heed_model_set_classes(m, train->classes, names);
    const heed_layer *root = &net->root->base;
    const long long outputs = (long long)root->out_c * root->out_h * root->out_w;
    if (st == HEED_OK && outputs != train->classes)
        st = heed_fail(HEED_ERR_SHAPE, "%s has %lld outputs but the data has %d classes", o->net,
                       outputs, train->classes);
    if (st != HEED_OK) {
        heed_model_free(m);
        return st;
    }
    /* RAM reads raw pixels: its sensor pads with zeros, which must stay
     * black. Other networks take inputs of mean 0 and deviation 1: by
     * Fashion-MNIST's published figures (its training split's own), or by
     * a folder's training images, whose colours can be anything. */
    int raw = net->root->count > 0 && !strcmp(net->root->children[0]->ops->type, "ram");
    m->meta.input_mean = raw ? 0.0f : FMNIST_MEAN;
    m->meta.input_std = raw ? 1.0f : FMNIST_STD;
    double mean, std, cmean[4], cstd[4];
    if (!raw && o->data && dataset_folder(o->data) && heed_dataset_stats(train, &mean, &std) == HEED_OK) {
        m->meta.input_mean = (float)mean;
        m->meta.input_std = scale_of(std);
        /* colour: each channel by its own (a heed before per-channel
         * normalisation reads the pair above) */
        if (train->c > 1 && train->c <= 4 && heed_dataset_channel_stats(train, cmean, cstd) == HEED_OK) {
            m->meta.norm_channels = train->c;
            for (int c = 0; c < train->c; c++) {
                m->meta.channel_mean[c] = (float)cmean[c];
                m->meta.channel_std[c] = scale_of(cstd[c]);
            }
        }
    }
    m->meta.dark_background = 1;
    snprintf(m->meta.dataset, sizeof m->meta.dataset, "%s", o->data ? o->data : "fmnist");
    /* A folder by its absolute path where that fits the field, so that heed
     * eval finds it from any working directory. */
    const char *dir = o->data ? dataset_folder(o->data) : NULL;
    char *full = dir ? realpath(dir, NULL) : NULL;
    if (full && strlen(full) + 7 < sizeof m->meta.dataset)
        snprintf(m->meta.dataset, sizeof m->meta.dataset, "folder:%s", full);
    free(full);
    *out = m;
    return HEED_OK;
}

/* Fine-tuning: m's tensors that init holds by name and shape start from
 * init's values, and m takes init's input normalisation, which those
 * weights learnt under. Says what it took unless quiet. */
static heed_status start_from(heed_model *m, const heed_model *init, const char *path, int quiet) {
    heed_params *p = &m->net->params;
    heed_match *match = malloc((size_t)(p->count ? p->count : 1) * sizeof *match);
    if (!match) return heed_fail(HEED_ERR_NOMEM, "out of memory");
    int copied = 0;
    heed_status st = heed_params_copy_matching(p, &init->net->params, &copied, match);
    if (st == HEED_OK && copied == 0)
        st = heed_fail(HEED_ERR_ARG, "--init %s: none of its %d tensors matches one of this network's by name "
                       "and shape (heed info lists both)", path, init->net->params.count);
    if (st == HEED_OK) {
        m->meta.input_mean = init->meta.input_mean;
        m->meta.input_std = init->meta.input_std;
        /* per channel where init has it for as many channels as this net */
        m->meta.norm_channels = init->meta.norm_channels == m->net->in_c ? init->meta.norm_channels : 0;
        memcpy(m->meta.channel_mean, init->meta.channel_mean, sizeof m->meta.channel_mean);
        memcpy(m->meta.channel_std, init->meta.channel_std, sizeof m->meta.channel_std);
    }
    if (st == HEED_OK && !quiet) {
        fprintf(stderr, "initialised %d of %d tensors from %s (and its input normalisation)", copied, p->count,
                path);
        const char *sep = "; new: ";
        int listed = 0;
        for (int i = 0; i < p->count; i++) {
            if (match[i] == HEED_MATCH_COPIED) continue;
            if (listed++ == 8) {
                fprintf(stderr, ", ...");
                break;
            }
            fprintf(stderr, "%s%s (%s)", sep, p->items[i].name,
                    match[i] == HEED_MATCH_SHAPE ? "another shape there" : "not there");
            sep = ", ";
        }
        fprintf(stderr, "\n");
    }
    free(match);
    return st;
}

/* "epoch 1 is in SAVED" or "epochs 1-N are in SAVED" (epochs 1 .. `whole`
 * saved), into out. */
static void saved_epochs(char *out, size_t size, int whole, const char *saved) {
    snprintf(out, size, "%s%d %s in %s", whole > 1 ? "epochs 1-" : "epoch ", whole,
             whole > 1 ? "are" : "is", saved);
}

/* The checkpoint holding the epochs before epoch `epoch` (from 0) when a
 * run stops inside it: this run's, the one it resumed, or none. */
static const char *checkpoint_before(int epoch, int start_epoch, const char *ckpt, const char *resumed) {
    return epoch > start_epoch ? ckpt : epoch > 0 ? resumed : NULL;
}

/* After a SIGINT or SIGTERM (cli_catch_stop): says where the run stopped
 * (in epoch `epoch`, `seen` of `count` items done, or after it when all
 * are) and how to go on, and returns 128 + the signal, the status a shell
 * gives a command the signal ended. Epochs 1 .. `whole` are in `saved`
 * (NULL: none is saved). */
static int stopped(int sig, int epoch, int epochs, long seen, long count, int whole,
                   const char *saved) {
    char where[96], next[4500];
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (seen < count)
        snprintf(where, sizeof where, "in epoch %d/%d (%ld of %ld items)", epoch, epochs, seen, count);
    else
        snprintf(where, sizeof where, "after epoch %d/%d", epoch, epochs);
    if (saved) {
        saved_epochs(next, sizeof next, whole, saved);
        /* the command as a shell reads it: a path with a space quoted */
        char resume[4400];
        append_word(resume, sizeof resume, 0, saved);
        const size_t used = strlen(next);
        snprintf(next + used, sizeof next - used, ": heed train --resume%s goes on from epoch %d", resume,
                 whole + 1);
    } else {
        snprintf(next, sizeof next, "no epoch had finished, so nothing was saved");
    }
    return cli_error("train", 128 + sig, "stopped by %s %s; %s", name, where, next);
}

static int params_finite(const heed_params *p) {
    int finite = 1;
    for (size_t i = 0; i < p->total; i++) finite &= isfinite(p->values[i]) != 0;
    return finite;
}

/* Training diverged in epoch `epoch` at optimizer step `step`: says so,
 * what is saved (epochs 1 .. `whole` in `saved`, or nothing), and what to
 * try; returns 1. */
static int diverged(int epoch, int epochs, long step, float lr, int whole, const char *saved) {
    char kept[4300] = "nothing was saved";
    if (saved) saved_epochs(kept, sizeof kept, whole, saved);
    return cli_error("train", 1, "training diverged in epoch %d/%d (after %ld steps the loss or the weights "
                     "are no longer finite); %s; try a lower --lr than %g", epoch, epochs, step, kept, lr);
}

static int train(const train_opts *o) {
    heed_dataset tr = {0}, te = {0};
    heed_model *m = NULL;
    heed_optim opt = {0};
    heed_chunk *extra = NULL;
    int nextra = 0, start_epoch = 0, rc = 1;
    int *order = NULL, *labels = NULL;
    heed_tensor x = {0}, y = {0}, dy = {0};
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", o->out);

    /* The network fixes the input size the data is brought to. */
    heed_net *net = NULL;
    heed_status st = o->resume ? heed_model_load_with(&m, o->resume, &extra, &nextra)
                               : heed_net_load(&net, o->net, (uint64_t)o->seed);
    /* --init's model read before the data are decoded, so that a wrong
     * path fails at once; a resumed run has its own weights. */
    heed_model *init = NULL;
    if (st == HEED_OK && o->init && !o->resume) st = heed_model_load(&init, o->init);
    const heed_net *shape = m ? m->net : net;
    /* A usage error, known once the network gives the input's size. */
    const int wide_pad = st == HEED_OK && (o->crop_pad > shape->in_h || o->crop_pad > shape->in_w);
    if (wide_pad)
        st = heed_fail(HEED_ERR_ARG, "--crop-pad %d is over the input's %d x %d: most crops would be padding",
                       o->crop_pad, shape->in_h, shape->in_w);
    /* A resumed run keeps to the data it started on unless told otherwise. */
    const char *data = o->data ? o->data : m && m->meta.dataset[0] ? m->meta.dataset : "fmnist";
    cli_progress bar;
    dataset_progress show = {cli_progress_count, &bar};
    cli_progress_start(&bar, "decoding training images", 0);
    if (st == HEED_OK)
        st = open_dataset(&tr, data, o->data_dir, SPLIT_TRAIN, o->limit, shape->in_c, shape->in_h,
                          shape->in_w, &show);
    if (st != HEED_OK) cli_progress_abandon(&bar);
    /* One class: every image is it, so any network scores 100% at a loss
     * of 0 and learns nothing. */
    if (st == HEED_OK && tr.classes < 2)
        st = heed_fail(HEED_ERR_ARG, "%s has one class (%s): a classifier needs two or more", data,
                       tr.class_names ? tr.class_names[0] : "?");
    cli_progress_start(&bar, "decoding test images", 0);
    if (st == HEED_OK)
        st = open_dataset(&te, data, o->data_dir, SPLIT_TEST, o->test_limit, tr.c, tr.h, tr.w, &show);
    if (st != HEED_OK) cli_progress_abandon(&bar);
    if (st == HEED_OK && (tr.c != shape->in_c || tr.h != shape->in_h || tr.w != shape->in_w))
        st = heed_fail(HEED_ERR_SHAPE, "the network takes %dx%dx%d inputs but the data is %dx%dx%d",
                       shape->in_c, shape->in_h, shape->in_w, tr.c, tr.h, tr.w);
    if (st == HEED_OK && !m) {
        st = build_model(o, net, &tr, &m);
        net = NULL;
    }
    heed_net_free(net);
    if (st == HEED_OK && init) st = start_from(m, init, o->init, o->json);
    heed_model_free(init);
    /* Labels are positions among each split's own class folders: a test/
     * folder that lacks a class, or a resumed run's changed folders, would
     * score against the wrong outputs, and an extra class would stop the run
     * after its first epoch. Match both splits to the model's classes now. */
    if (st == HEED_OK) st = match_classes(&tr, m, data);
    if (st == HEED_OK) st = match_classes(&te, m, data);
    heed_optim_cfg ocfg = {.kind = strcmp(o->optimizer, "adamw") ? HEED_OPTIM_SGD : HEED_OPTIM_ADAMW,
                           .lr = o->lr, .momentum = o->momentum, .weight_decay = o->weight_decay};
    if (st == HEED_OK) st = heed_optim_init(&opt, &ocfg, &m->net->params);
    if (st == HEED_OK && o->resume)
        st = restore_checkpoint(&opt, heed_chunk_find(extra, nextra, "OPTM"), o->epochs,
                                &start_epoch, o->resume);
    order = malloc((size_t)tr.count * sizeof *order);
    labels = malloc((size_t)o->batch * sizeof *labels);
    if (st == HEED_OK && (!order || !labels)) st = heed_fail(HEED_ERR_NOMEM, "out of memory");
    if (st != HEED_OK) {
        rc = wide_pad ? cli_error("train", 2, "%s", heed_last_error()) : cli_lib_error("train");
        goto done;
    }

    snprintf(m->meta.recipe, sizeof m->meta.recipe, "%s", o->recipe);
    long steps_per_epoch = (tr.count + o->batch - 1) / o->batch;
    heed_schedule sched = {.base_lr = o->lr, .total_steps = steps_per_epoch * o->epochs,
                           .warmup_steps = (long)o->warmup * steps_per_epoch,
                           .step_size = steps_per_epoch * (o->epochs / 3 > 0 ? o->epochs / 3 : 1),
                           .gamma = 0.1f};
    heed_schedule_parse(o->schedule, &sched.kind);
    heed_augment aug = {.crop_pad = o->crop_pad_given ? o->crop_pad : o->augment ? 2 : 0,
                        .hflip = o->hflip || o->augment};
    double t_start = cli_now() - m->meta.train_seconds;
    int last = o->stop_after > 0 && o->stop_after < o->epochs ? o->stop_after : o->epochs;
    if (start_epoch >= last) {
        rc = start_epoch >= o->epochs
                 ? cli_error("train", 2, "%s has done all %d epochs of its run: give --epochs over %d "
                             "to train on", o->resume, start_epoch, start_epoch)
                 : cli_error("train", 2, "--stop-after %d: %s has done %d epochs already", o->stop_after,
                             o->resume, start_epoch);
        goto done;
    }
    if (!o->json)
        fprintf(stderr, "training %s on %s: %d train / %d test items, %d epoch%s from %d, batch %d, %d thread%s\n",
                o->resume ? o->resume : o->net, data, tr.count, te.count, o->epochs, o->epochs == 1 ? "" : "s",
                start_epoch + 1, o->batch, omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s");
    cli_catch_stop(); /* Ctrl-C stops after a step, saying how to go on */
    for (int epoch = start_epoch; epoch < last; epoch++) {
        heed_rng rng;
        /* Seeded per epoch, so a resumed run draws what the uninterrupted one would. */
        heed_rng_seed(&rng, (uint64_t)o->seed, (uint64_t)epoch + 1000);
        for (int i = 0; i < tr.count; i++) order[i] = i;
        heed_rng_shuffle(&rng, order, tr.count);
        heed_net_set_training(m->net, 1);
        heed_net_reseed(m->net, (uint64_t)o->seed * 1000003u + (uint64_t)epoch);
        cli_progress bar;
        char label[32], extra_text[128];
        snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o->epochs);
        cli_progress_start(&bar, label, tr.count);
        double loss_sum = 0, t0 = cli_now();
        long correct = 0, seen = 0;
        for (int start = 0; start < tr.count; start += o->batch) {
            int n = tr.count - start < o->batch ? tr.count - start : o->batch;
            st = heed_dataset_batch(&tr, order + start, n, &aug, &rng, &x, labels);
            if (st == HEED_OK) {
                st = heed_model_normalize(m, &x);
                heed_params_zero_grad(&m->net->params);
                if (st == HEED_OK) st = heed_net_forward(m->net, &x, &y);
            }
            double loss = 0;
            if (st == HEED_OK) st = heed_tensor_ensure(&dy, y.n, y.c, y.h, y.w);
            if (st == HEED_OK) {
                heed_tensor_zero(&dy);
                st = heed_softmax_cross_entropy(&y, labels, &loss, NULL, &dy);
            }
            if (st == HEED_OK) st = heed_net_set_targets(m->net, labels, n, &loss);
            /* A step that blew the weights up shows as a loss that is not
             * finite, or (RAM) as locations that are not, in the next forward. */
            if ((st == HEED_OK && !isfinite(loss)) || (st != HEED_OK && !params_finite(&m->net->params))) {
                rc = diverged(epoch + 1, o->epochs, opt.steps, o->lr, epoch,
                              checkpoint_before(epoch, start_epoch, ckpt, o->resume));
                goto done;
            }
            if (st == HEED_OK) st = heed_net_backward(m->net, &x, &y, &dy, NULL);
            if (st != HEED_OK) {
                rc = cli_lib_error("train");
                goto done;
            }
            heed_optim_step(&opt, heed_schedule_lr(&sched, opt.steps));
            loss_sum += loss * n;
            for (int i = 0; i < n; i++) correct += predicted_class(y.data + (size_t)i * y.c, y.c) == labels[i];
            seen += n;
            snprintf(extra_text, sizeof extra_text, "loss %.3f acc %.1f%% %.0f img/s", loss_sum / seen,
                     100.0 * correct / seen, seen / (cli_now() - t0));
            cli_progress_update(&bar, seen, extra_text);
            if (cli_stop_signal() && seen < tr.count) {
                cli_progress_abandon(&bar);
                rc = stopped(cli_stop_signal(), epoch + 1, o->epochs, seen, tr.count, epoch,
                             checkpoint_before(epoch, start_epoch, ckpt, o->resume));
                goto done;
            }
        }
        cli_progress_end(&bar, extra_text);
        /* A loss still finite can hide weights or batch-norm statistics that
         * are not (a running variance overflows first): such an epoch is
         * not saved, as a checkpoint of it would never load again, and it
         * would replace the last good one. */
        if (!params_finite(&m->net->params)) {
            rc = diverged(epoch + 1, o->epochs, opt.steps, o->lr, epoch,
                          checkpoint_before(epoch, start_epoch, ckpt, o->resume));
            goto done;
        }
        eval_result ev;
        if (evaluate(m, &te, 256, &ev) != HEED_OK) {
            rc = cli_lib_error("train");
            goto done;
        }
        m->meta.epochs = epoch + 1;
        m->meta.test_accuracy = (float)ev.accuracy;
        m->meta.train_seconds = (float)(cli_now() - t_start);
        eval_result_free(&ev);
        if (o->json)
            printf("{\"epoch\": %d, \"train_loss\": %.5f, \"train_accuracy\": %.5f, \"test_accuracy\": %.5f, "
                   "\"lr\": %.6g, \"seconds\": %.1f}\n",
                   epoch + 1, loss_sum / seen, (double)correct / seen, m->meta.test_accuracy,
                   heed_schedule_lr(&sched, opt.steps > 0 ? opt.steps - 1 : 0), m->meta.train_seconds);
        else
            fprintf(stderr, "epoch %d/%d: train loss %.4f acc %.2f%%, test acc %.2f%%, %.0f s so far\n",
                    epoch + 1, o->epochs, loss_sum / seen, 100.0 * correct / seen,
                    100.0 * m->meta.test_accuracy, m->meta.train_seconds);
        fflush(stdout);
        cli_stop_saving(ckpt);
        st = save_checkpoint(m, &opt, epoch + 1, ckpt);
        cli_stop_saving(NULL);
        if (st != HEED_OK) {
            rc = cli_lib_error("train");
            goto done;
        }
        if (cli_stop_signal() && epoch + 1 < last) {
            rc = stopped(cli_stop_signal(), epoch + 1, o->epochs, tr.count, tr.count, epoch + 1, ckpt);
            goto done;
        }
    }
    cpu_name(m->meta.cpu, sizeof m->meta.cpu);
    cli_stop_saving(o->out);
    st = heed_model_save(m, o->out);
    cli_stop_saving(NULL);
    if (st != HEED_OK) {
        rc = cli_lib_error("train");
        goto done;
    }
    if (!o->json)
        fprintf(stderr, "saved %s: test accuracy %.2f%% (checkpoint %s)\n", o->out,
                100.0 * m->meta.test_accuracy, ckpt);
    rc = 0;
done:
    heed_tensor_free(&x), heed_tensor_free(&y), heed_tensor_free(&dy);
    free(order), free(labels);
    heed_chunks_free(extra, nextra);
    heed_optim_free(&opt);
    heed_model_free(m);
    heed_dataset_free(&tr), heed_dataset_free(&te);
    return rc;
}

/* Whether paths a and b name one file: the same inode when both exist,
 * else the same text. */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !strcmp(a, b);
}

/* Each number in range, one usage error naming the first that is not. */
static int check_numbers(const train_opts *o) {
    if (o->epochs < 1) return cli_error("train", 2, "--epochs must be at least 1, not %d", o->epochs);
    if (o->batch < 1) return cli_error("train", 2, "--batch must be at least 1, not %d", o->batch);
    if (!(o->lr > 0) || isinf(o->lr))
        return cli_error("train", 2, "--lr must be a positive number, not %g", o->lr);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return cli_error("train", 2, "--momentum must be in 0 .. 1 (1 excluded), not %g", o->momentum);
    /* AdamW has no momentum (its betas are fixed): a --momentum given with
     * it would be ignored without a word. */
    if (!strcmp(o->optimizer, "adamw") && o->momentum_given)
        return cli_error("train", 2, "--momentum %g is SGD's: adamw keeps its own averages (betas 0.9, 0.999)",
                         o->momentum);
    if (!(o->weight_decay >= 0) || isinf(o->weight_decay))
        return cli_error("train", 2, "--weight-decay must be 0 or more, not %g", o->weight_decay);
    const int counts[] = {o->limit, o->test_limit, o->warmup, o->seed, o->stop_after, o->crop_pad};
    const char *names[] = {"--limit", "--test-limit", "--warmup", "--seed", "--stop-after", "--crop-pad"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i] < 0) return cli_error("train", 2, "%s must be 0 or more, not %d", names[i], counts[i]);
    /* Cosine annealing needs steps after the warm-up to decay over. */
    if (o->warmup >= o->epochs && !strcmp(o->schedule, "cosine"))
        return cli_error("train", 2, "--warmup %d leaves no epoch of the cosine schedule (--epochs %d): "
                         "give fewer warm-up epochs or more epochs", o->warmup, o->epochs);
    if (o->stop_after > o->epochs)
        return cli_error("train", 2, "--stop-after %d is past the run's last epoch (--epochs %d)",
                         o->stop_after, o->epochs);
    return -1;
}

int cmd_train(int argc, char **argv) {
    train_opts o = {.optimizer = DEFAULT_OPTIMIZER, .schedule = "cosine", .epochs = 10,
                    .batch = 64, .seed = 1, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f};
    const cli_opt opts[] = {
        {"net", CLI_STRING, &o.net, "FILE", "network description (nets/*.net)", NULL},
        {"out", CLI_STRING, &o.out, "MODEL", "where to write the trained model", NULL},
        {"data", CLI_STRING, &o.data, "NAME", DATASET_NAMES " (DIR/train/<class>/*.png and DIR/test/..., or DIR/<class>/*.png, one image in five held out for testing) [fmnist; with --resume, the model's]", NULL},
        {"data-dir", CLI_STRING, &o.data_dir, "DIR", "Fashion-MNIST IDX files [/usr/share/datasets/fashion-mnist]", NULL},
        {"epochs", CLI_INT, &o.epochs, "N", "passes over the training set", NULL},
        {"batch", CLI_INT, &o.batch, "N", "images per step", NULL},
        {"lr", CLI_FLOAT, &o.lr, "X", "peak learning rate", NULL},
        {"optimizer", CLI_STRING, &o.optimizer, "NAME", "update rule", "sgd|adamw"},
        {"momentum", CLI_FLOAT, &o.momentum, "X", "SGD momentum", NULL},
        {"schedule", CLI_STRING, &o.schedule, "NAME", "learning-rate schedule after the warm-up (cosine: from --lr towards 0 over the run; step: x0.1 every epochs/3 epochs, at least 1)", "cosine|step|constant"},
        {"warmup", CLI_INT, &o.warmup, "EPOCHS", "linear warm-up epochs", NULL},
        {"weight-decay", CLI_FLOAT, &o.weight_decay, "X", "on weights (not biases or batch norm)", NULL},
        {"augment", CLI_FLAG, &o.augment, NULL, "random crops and horizontal flips: --crop-pad 2 (unless given) and --hflip", NULL},
        {"crop-pad", CLI_INT, &o.crop_pad, "N", "random crops: pad N pixels of zeros on every side, crop the input's size back at a random offset (torchvision's RandomCrop(size, padding=N))", NULL},
        {"hflip", CLI_FLAG, &o.hflip, NULL, "mirror each image left-right with probability 1/2 (RandomHorizontalFlip)", NULL},
        {"seed", CLI_INT, &o.seed, "N", "initial weights and data order", NULL},
        {"threads", CLI_INT, &o.threads, "N", "OpenMP threads (0: every core)", NULL},
        {"limit", CLI_INT, &o.limit, "N", "use only the first N training items, for quick runs (folders: N spread over the classes; 0: all)", NULL},
        {"test-limit", CLI_INT, &o.test_limit, "N", "evaluate on only the first N test items (folders: spread over the classes; 0: all)", NULL},
        {"init", CLI_STRING, &o.init, "MODEL", "start from MODEL's weights where names and shapes match, and its input normalisation (fine-tuning)", NULL},
        {"resume", CLI_STRING, &o.resume, "CKPT", "continue from a checkpoint (MODEL.ckpt)", NULL},
        {"stop-after", CLI_INT, &o.stop_after, "EPOCH", "stop after this epoch (0: run them all); --resume goes on exactly as if uninterrupted", NULL},
        {"json", CLI_FLAG, &o.json, NULL, "print one JSON line per epoch on stdout", NULL},
        {0}};
    int given[sizeof opts / sizeof opts[0]] = {0}; /* a resumed run's: its recipe's and this line's */
    const cli_spec spec = {
        "train", "--net FILE --out MODEL [options]",
        "Trains a network on the training split, evaluating on the test split after each epoch.\n"
        "A checkpoint MODEL.ckpt is written after every epoch; --resume MODEL.ckpt continues\n"
        "with the options it was started with (options given with --resume override them, but\n"
        "not --optimizer: the checkpoint holds its state), on the data the model records and\n"
        "into MODEL beside the checkpoint, from any folder.\n"
        "Ctrl-C (or SIGTERM) stops after the current step, saying which epochs are saved and how to\n"
        "go on (exit status 130, or 143); a second Ctrl-C stops at once.",
        opts, given};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs) return cli_error("train", 2, "unexpected argument '%s'", args[0]);
    /* saved_argv: a recipe's words take two characters at least, with the
     * space before them ('' for an empty one) */
    char recipe[sizeof ((heed_model_meta *)0)->recipe], saved[sizeof recipe],
        *saved_argv[sizeof recipe / 2], resumed_out[4096];
    /* A recipe cut to fit would read back on --resume as other options
     * (a cut --limit 128 became no limit, --epochs 2 the default 10). */
    if (!recipe_of(recipe, sizeof recipe, argc, argv))
        return cli_error("train", 2, "the command line is over the %zu characters a model records as its "
                         "recipe (which --resume reads back): give shorter paths", sizeof recipe - 1);
    if (o.resume && o.init)
        return cli_error("train", 2, "--init cannot be given with --resume: %s goes on from its own weights",
                         o.resume);
    if (o.resume && o.net)
        return cli_error("train", 2, "--net cannot be given with --resume: %s trains the network it holds",
                         o.resume);
    if (o.resume) {
        /* The checkpoint's recipe supplies every option this command line
         * leaves out, so `heed train --resume M.ckpt` goes on as it began. */
        if (checkpoint_recipe(o.resume, saved, sizeof saved) != HEED_OK) return cli_lib_error("train");
        if (!strncmp(saved, "heed train ", 11)) {
            /* Recorded as the old recipe followed by this command's options:
             * read back, the later ones win, as they do here. */
            char both[sizeof recipe];
            size_t n = strnlen(saved, sizeof both - 1), rest = strlen(recipe) - strlen("heed train");
            if (rest > sizeof both - 1 - n)
                return cli_error("train", 2, "%s: its recipe and this command's options are over the %zu "
                                 "characters a model records as its recipe: give fewer options or "
                                 "shorter paths", o.resume, sizeof both - 1);
            memcpy(both, saved, n);
            memcpy(both + n, recipe + strlen("heed train"), rest);
            both[n + rest] = '\0';
            const char *given_data = o.data, *given_out = o.out; /* on this command line */
            int saved_argc = split_words(saved + strlen("heed "), saved_argv,
                                         (int)(sizeof saved_argv / sizeof *saved_argv));
            if (saved_argc < 0)
                return cli_error("train", 1, "%s: its recorded recipe does not read back", o.resume);
            /* cli_parse's own error line then says where the option came from. */
            char who[4200];
            snprintf(who, sizeof who, "train (the recipe recorded in %s)", o.resume);
            cli_spec recorded = spec;
            recorded.command = who;
            o.optimizer = DEFAULT_OPTIMIZER; /* unless the recipe names another */
            int prc = cli_parse(&recorded, saved_argc, saved_argv, &args, &nargs);
            if (prc > 0) return 1;
            if (prc == 0 || nargs)
                return cli_error("train", 1, "%s: its recorded recipe does not read back", o.resume);
            o.stop_after = 0; /* the interruption is not part of the recipe */
            /* The optimizer whose state the checkpoint holds (a recipe the
             * resumed runs extended names the last one given). */
            const char *recorded_optimizer = o.optimizer;
            cli_parse(&spec, argc, argv, &args, &nargs);
            /* SGD's momentum buffer read as AdamW's first moment (and its
             * zeros as the second), or AdamW's moments as a momentum
             * buffer, would go on from state that means something else. */
            if (strcmp(o.optimizer, recorded_optimizer))
                return cli_error("train", 2, "--optimizer %s cannot go on from %s: it holds %s's state "
                                 "(resume with --optimizer %s, or start a new run from its weights with "
                                 "--init)", o.optimizer, o.resume, recorded_optimizer, recorded_optimizer);
            /* Not given here: the dataset the model records, a folder by its
             * absolute path, not the recipe's --data, which may be relative
             * to a working folder this command is not run from. */
            if (!given_data) o.data = NULL;
            /* Nor --out: the model beside its checkpoint (MODEL.ckpt ->
             * MODEL), not the recipe's path, which may be relative too. */
            const size_t len = strlen(o.resume);
            if (!given_out && len > 5 && len < sizeof resumed_out + 5 && !strcmp(o.resume + len - 5, ".ckpt")) {
                snprintf(resumed_out, sizeof resumed_out, "%.*s", (int)(len - 5), o.resume);
                o.out = resumed_out;
            }
            memcpy(recipe, both, sizeof recipe);
        }
    }
    o.recipe = recipe;
    o.crop_pad_given = cli_given(opts, given, "crop-pad");
    o.momentum_given = cli_given(opts, given, "momentum");
    if (!o.out) return cli_error("train", 2, "--out MODEL is required");
    /* An empty name passed the write check (its temporary file lands in
     * the current folder), so a whole run went by with a checkpoint
     * called .ckpt, to fail when the model itself was saved. */
    if (!o.out[0]) return cli_error("train", 2, "--out MODEL is an empty name: give the model's file name");
    if (!o.net && !o.resume) return cli_error("train", 2, "--net FILE is required (or --resume CKPT)");
    if ((rc = check_numbers(&o)) >= 0) return rc;
    if (o.data && !dataset_name_known(o.data))
        return cli_error("train", 2, "unknown dataset '%s' (" DATASET_NAMES ")", o.data);
    if (o.data && o.data_dir && dataset_folder(o.data))
        return cli_error("train", 2, DATA_DIR_WITH_FOLDER, o.data_dir, o.data);
    /* What the run reads must not be what it writes over (a resumed run
     * writing its checkpoint over the one it started from is the point). */
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", o.out);
    if (o.net && (same_file(o.out, o.net) || same_file(ckpt, o.net)))
        return cli_error("train", 2, "--out %s would write over --net %s", o.out, o.net);
    /* It would work (init is read first), but the recipe would no longer
     * train the model again: its --init would be the model itself. */
    if (o.init && !o.resume && (same_file(o.out, o.init) || same_file(ckpt, o.init)))
        return cli_error("train", 2, "--out %s would write over --init %s", o.out, o.init);
    if (o.resume && same_file(o.out, o.resume)) {
        char hint[4300] = "";
        if (access(ckpt, R_OK) == 0) snprintf(hint, sizeof hint, " (resume from its checkpoint, %s)", ckpt);
        return cli_error("train", 2, "--out %s would write over --resume %s%s", o.out, o.resume, hint);
    }
    if ((rc = cli_threads("train", &o.threads, 1)) >= 0) return rc;
    if ((rc = cli_check_writable("train", o.out)) >= 0) return rc;
    return train(&o);
}
