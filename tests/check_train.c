/* check_train.c -- `heed train` end to end: fine-tuning from a model,
 * augmentations, per-channel normalisation and the folder datasets' splits,
 * reproducible and resumable runs, stopping on a signal or on divergence,
 * checkpoints that were tampered with, recorded recipes, and what train
 * refuses. The binary is $HEED_BIN (the Makefile sets it). */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "image.h"
#include "model.h"
#include "net.h"
#include "testutil.h"

static char dir[256];

/* Runs `heed ARGS` with stdout and stderr captured; returns the exit code. */
static int heed(const char *args, char *out, size_t outsize) {
    return tu_run_heed(dir, NULL, args, out, outsize, NULL, 0);
}

static void setup(void) {
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "train"), 0);
}

static void teardown(void) { tu_remove_dir(dir); }

/* --init: a network like fmnist-se's with a 2-output classifier starts
 * from the shipped model's weights wherever names and shapes match (a
 * learning rate of 1e-30 leaves them where they started, to float
 * precision), its classifier as initialised, and the model's input
 * normalisation; stderr says which tensors are new. A model none of whose
 * tensors fit is refused, and --init goes with a fresh run only. */
START_TEST(train_init_starts_from_a_models_weights) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 14], err[1 << 14];
    char net[400], model[400], args[2000], cmd[2400];
    snprintf(net, sizeof net, "%s/two.net", dir);
    snprintf(model, sizeof model, "%s/two.heed", dir);
    snprintf(cmd, sizeof cmd, "sed 's/fc name=fc2 out=10/fc name=fc2 out=2/' nets/fmnist-se.net > %s", net);
    ck_assert_int_eq(system(cmd), 0);
    /* two classes: Trouser and Bag, exported as a folder of class folders */
    char data[400];
    snprintf(data, sizeof data, "%s/tb", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/Trouser %s/Bag && cp images/test-00002-Trouser.png "
             "images/test-00003-Trouser.png %s/Trouser/ && cp images/test-00002-Trouser.png %s/Bag/b1.png && "
             "cp images/test-00003-Trouser.png %s/Bag/b2.png", data, data, data, data, data);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(args, sizeof args, "train --net %s --init models/fmnist-se.heed --data folder:%s --out %s "
             "--epochs 1 --batch 4 --lr 1e-30 --threads 1", net, data, model);
    ck_assert_msg(tu_run_heed(dir, NULL, args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(strstr(err, "initialised 30 of 32 tensors from models/fmnist-se.heed (and its input "
                              "normalisation); new: fc2.weight (another shape there), fc2.bias (another "
                              "shape there)\n"), "%s", err);
    heed_model *a, *b;
    ck_assert_msg(heed_model_load(&a, "models/fmnist-se.heed") == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(heed_model_load(&b, model) == HEED_OK, "%s", heed_last_error());
    ck_assert_float_eq(b->meta.input_mean, a->meta.input_mean);
    ck_assert_float_eq(b->meta.input_std, a->meta.input_std);
    int compared = 0;
    for (int i = 0; i < b->net->params.count; i++) {
        heed_param *q = &b->net->params.items[i], *p = heed_params_find(&a->net->params, q->name);
        ck_assert_ptr_nonnull(p);
        if (!strncmp(q->name, "fc2.", 4)) {
            ck_assert_int_eq(q->shape[0], 2);
            continue;
        }
        if (q->flags & HEED_PARAM_BUFFER) continue; /* running statistics move in training */
        const float *x = a->net->params.values + p->offset, *y = b->net->params.values + q->offset;
        for (size_t k = 0; k < q->count; k++)
            ck_assert_msg(fabsf(x[k] - y[k]) <= 1e-6f * (1 + fabsf(x[k])), "%s[%zu]: %g, the model's %g", q->name,
                          k, y[k], x[k]);
        compared++;
    }
    ck_assert_int_ge(compared, 10); /* every conv, bn and fc1 tensor */
    heed_model_free(a), heed_model_free(b);
    /* nothing in common: RAM's model into this network */
    snprintf(args, sizeof args, "train --net %s --init models/ram-fmnist-cluttered60.heed --data folder:%s "
             "--out %s --epochs 1", net, data, model);
    ck_assert_int_eq(tu_run_heed(dir, NULL, args, out, sizeof out, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "--init models/ram-fmnist-cluttered60.heed: none of its") &&
                  strstr(err, "matches one of this network's by name and shape"), "%s", err);
    snprintf(args, sizeof args, "train --resume %s.ckpt --init models/fmnist-se.heed", model);
    ck_assert_int_eq(tu_run_heed(dir, NULL, args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "--init cannot be given with --resume"), "%s", err);
    /* the model it starts from is not the one it writes (the recipe would name itself) */
    snprintf(args, sizeof args, "train --net %s --init %s --data folder:%s --out %s", net, model, data, model);
    ck_assert_int_eq(tu_run_heed(dir, NULL, args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "would write over --init"), "%s", err);
    /* a model that is not there: said before any image is decoded */
    snprintf(args, sizeof args, "train --net %s --init %s/none.heed --data folder:%s --out %s", net, dir, data,
             model);
    ck_assert_int_eq(tu_run_heed(dir, NULL, args, out, sizeof out, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "none.heed") && !strstr(err, "decoding"), "%s", err);
}
END_TEST

/* A colour folder model is normalised per channel by its training
 * images: two classes of uniform colours, (1, 0.2, 0) and (0, 0.4, 1),
 * two images each, give means (0.5, 0.3, 0.5) and population deviations
 * (0.5, 0.1, 0.5), which info --json reports and eval uses. */
START_TEST(colour_folder_models_are_normalised_per_channel) {
    static char out[1 << 14], err[1 << 12];
    char path[600], args[1600];
    const float colour[2][3] = {{1.0f, 0.2f, 0.0f}, {0.0f, 0.4f, 1.0f}};
    const char *split[] = {"train", "test"}, *cls[] = {"A", "B"};
    heed_tensor img = {0};
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 3, 4, 4), HEED_OK);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "mkdir -p %s/rgb/%s/%s", dir, split[s], cls[k]);
            ck_assert_int_eq(system(path), 0);
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < 16; i++) img.data[c * 16 + i] = colour[k][c];
            for (int i = 0; i < 2 - s; i++) {
                snprintf(path, sizeof path, "%s/rgb/%s/%s/%d.png", dir, split[s], cls[k], i);
                ck_assert_int_eq(heed_image_save(path, &img, NULL), HEED_OK);
            }
        }
    heed_tensor_free(&img);
    snprintf(path, sizeof path, "%s/rgb.net", dir);
    tu_write_text(path, "input 3 4 4\nconv out=4 k=3 pad=1\nrelu\ngap\nfc out=2\n");
    snprintf(args, sizeof args, "train --net %s --data folder:%s/rgb --out %s/rgb.heed --epochs 1 --batch 2 "
             "--threads 1", path, dir, dir);
    ck_assert_msg(tu_run_heed(dir, NULL, args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "info --json %s/rgb.heed", dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    const char *keys[] = {"\"channel_mean\": [", "\"channel_std\": ["};
    const double want[2][3] = {{0.5, 0.3, 0.5}, {0.5, 0.1, 0.5}};
    for (int k = 0; k < 2; k++) {
        const char *at = strstr(out, keys[k]);
        ck_assert_msg(at, "%s", out);
        at += strlen(keys[k]);
        for (int c = 0; c < 3; c++) {
            char *end;
            const double v = strtod(at, &end);
            ck_assert_msg(fabs(v - want[k][c]) < 1e-6, "%s[%d] = %g, not %g", keys[k], c, v, want[k][c]);
            at = end + (c < 2 ? 2 : 0);
        }
        ck_assert_int_eq(*at, ']');
    }
    snprintf(args, sizeof args, "info %s/rgb.heed", dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "input: per channel (pixel - (0.5, 0.3, 0.5)) / (0.5, 0.1, 0.5), pixels in [0, 1]"),
                  "%s", out);
    snprintf(args, sizeof args, "eval --model %s/rgb.heed", dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
}
END_TEST

/* Loads a model's parameter values (caller frees) and their count. */
static float *model_values(const char *path, size_t *total) {
    heed_model *m;
    ck_assert_msg(heed_model_load(&m, path) == HEED_OK, "%s", heed_last_error());
    *total = m->net->params.total;
    float *v = malloc(*total * sizeof *v);
    memcpy(v, m->net->params.values, *total * sizeof *v);
    heed_model_free(m);
    return v;
}

/* The two model files hold the same values, bit for bit. */
static void assert_same_weights(const char *a, const char *b) {
    size_t na, nb;
    float *va = model_values(a, &na), *vb = model_values(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(va, vb, na * sizeof *va) == 0, "weights of %s and %s differ", a, b);
    free(va), free(vb);
}

/* --augment is --crop-pad 2 --hflip, whichever way it is written, bit for
 * bit; each augmentation alone trains another model; a padding wider than
 * the input is a usage error, before any data is read. */
START_TEST(augmentations_one_by_one) {
    static char out[1 << 14];
    char args[4096], net[300], path[7][300];
    snprintf(net, sizeof net, "%s/small.net", dir);
    tu_write_text(net, "input 1 28 28\nconv out=4 k=3 stride=2 pad=1\nrelu\ngap\nfc out=10\n");
    const char *ways[7] = {"--augment", "--crop-pad 2 --hflip", "--hflip --augment --crop-pad 2", "--hflip",
                           "--crop-pad 2", "", "--augment --crop-pad 0"};
    for (int i = 0; i < 7; i++) {
        snprintf(path[i], sizeof path[i], "%s/m%d.heed", dir, i);
        snprintf(args, sizeof args, "train --net %s --out %s --limit 64 --test-limit 16 --epochs 1 --batch 16 "
                 "--threads 1 --json %s", net, path[i], ways[i]);
        ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    }
    assert_same_weights(path[0], path[1]);
    assert_same_weights(path[0], path[2]);
    assert_same_weights(path[3], path[6]); /* a --crop-pad given, 0 too, is --augment's pad */
    size_t n;
    float *v[4];
    for (int i = 0; i < 4; i++) v[i] = model_values(path[i + 2], &n);
    for (int i = 1; i < 4; i++) /* flips alone, crops alone, neither: each unlike the others */
        for (int j = 0; j < i; j++) ck_assert_msg(memcmp(v[i], v[j], n * sizeof(float)), "%d and %d", i + 2, j + 2);
    for (int i = 0; i < 4; i++) free(v[i]);
    snprintf(args, sizeof args, "train --net %s --out %s --crop-pad 29", net, path[0]);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_str_eq(out, "heed train: --crop-pad 29 is over the input's 28 x 28: most crops would be padding\n");
}
END_TEST

/* RAM through the ordinary train loop on a canvas dataset: with one seed,
 * two epochs straight, or stopped after one and resumed, on 1 or 2
 * threads, give the same weights bit for bit (its locations come from
 * per-epoch reseeded streams, never from threads). */
START_TEST(ram_training_is_reproducible_and_resumable) {
    static char out[1 << 16];
    char args[2048], a[300], b[300];
    snprintf(a, sizeof a, "%s/a.heed", dir);
    snprintf(b, sizeof b, "%s/b.heed", dir);
    const char *common = "--net nets/ram60-g4.net --data fmnist-translated60 --limit 96 --test-limit 32 "
                         "--batch 32 --optimizer adamw --lr 1e-3 --seed 3 --json";
    snprintf(args, sizeof args, "train %s --epochs 2 --threads 1 --out %s", common, a);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "train %s --epochs 2 --stop-after 1 --threads 2 --out %s", common, b);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_ptr_null(strstr(out, "\"epoch\": 2,"));
    /* the checkpoint's recipe supplies the options */
    snprintf(args, sizeof args, "train --resume %s.ckpt", b);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    assert_same_weights(a, b);
    /* RAM models read raw pixels: the model says so */
    heed_model *m;
    ck_assert_int_eq(heed_model_load(&m, a), HEED_OK);
    ck_assert_float_eq(m->meta.input_mean, 0.0f);
    ck_assert_float_eq(m->meta.input_std, 1.0f);
    heed_model_free(m);
    /* a 60x60 network cannot train on 28x28 data */
    snprintf(args, sizeof args, "train --net nets/ram60-g4.net --data fmnist --epochs 1 --out %s", a);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "60x60"));
}
END_TEST

/* A checkpoint edited by hand (its checksums made good again) is refused
 * with one line saying what is wrong, before any training. */
/* Runs `heed ARGS` in the background from the shell, sends it SIGTERM once
 * `ready` (a shell test) holds, and returns its exit status, with its
 * stderr in err. */
static int heed_stopped(const char *args, const char *ready, char *err, size_t errsize) {
    char bin[4096], cmd[8192], path[400], rc[16];
    tu_heed_bin(bin, sizeof bin);
    snprintf(cmd, sizeof cmd,
             "HEED_PROGRESS=1 %s %s > %s/out.txt 2> %s/err.txt & p=$!; i=0; "
             "while ! (%s) && [ $i -lt 2000 ]; do sleep 0.02; i=$((i+1)); done; "
             "kill -TERM $p; wait $p; echo $? > %s/rc.txt",
             bin, args, dir, dir, ready, dir);
    if (system(cmd) != 0) return -1;
    snprintf(path, sizeof path, "%s/err.txt", dir);
    tu_read_file(path, err, errsize);
    snprintf(path, sizeof path, "%s/rc.txt", dir);
    tu_read_file(path, rc, sizeof rc);
    return rc[0] ? atoi(rc) : -1;
}

/* SIGTERM (or Ctrl-C's SIGINT) stops training after a step with a line
 * that says what is saved and how to go on; going on that way gives the
 * weights the run would have had uninterrupted. */
START_TEST(train_stops_on_a_signal_and_goes_on) {
    static char out[1 << 16];
    char args[2048], ready[600], a[300], b[300];
    snprintf(a, sizeof a, "%s/a.heed", dir);
    snprintf(b, sizeof b, "%s/b.heed", dir);
    /* Epochs long enough for the signal to land inside one: about a second */
    const int items = getenv("HEED_SAN") ? 200 : 2000;
    char common[200];
    snprintf(common, sizeof common, "--net nets/fmnist-plain.net --limit %d --test-limit 100 "
             "--epochs 2 --seed 5 --threads 2", items);
    /* before any epoch has finished: nothing to go on from */
    snprintf(args, sizeof args, "train %s --out %s", common, b);
    snprintf(ready, sizeof ready, "grep -q 'epoch 1/2 \\[' %s/err.txt", dir);
    ck_assert_int_eq(heed_stopped(args, ready, out, sizeof out), 128 + 15);
    char said[800];
    snprintf(said, sizeof said, " of %d items); no epoch had finished, so nothing was saved\n", items);
    ck_assert_msg(strstr(out, "\nheed train: stopped by SIGTERM in epoch 1/2 (") && strstr(out, said),
                  "%s", out);
    snprintf(args, sizeof args, "%s.ckpt", b);
    ck_assert_int_ne(access(args, F_OK), 0);
    /* in the second epoch: the first's checkpoint is named, and resuming
     * from it ends where the uninterrupted run does */
    snprintf(args, sizeof args, "train %s --out %s", common, b);
    /* (not on the checkpoint's appearing: the signal then came while the
     * checkpoint's folder was synced, and the run stopped after epoch 1) */
    snprintf(ready, sizeof ready, "grep -q 'epoch 2/2 \\[' %s/err.txt", dir);
    ck_assert_int_eq(heed_stopped(args, ready, out, sizeof out), 128 + 15);
    ck_assert_msg(strstr(out, "heed train: stopped by SIGTERM in epoch 2/2 ("), "%s", out);
    snprintf(said, sizeof said, " of %d items); epoch 1 is in %s.ckpt: heed train --resume %s.ckpt "
             "goes on from epoch 2\n", items, b, b);
    ck_assert_msg(strstr(out, said), "%s", out);
    snprintf(args, sizeof args, "train --resume %s.ckpt", b);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "train %s --out %s", common, a);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    assert_same_weights(a, b);
}
END_TEST

/* The command a stopped run says goes on is one a shell runs: a checkpoint
 * path with a space is quoted, as the recorded recipe quotes it (the line
 * said "heed train --resume DIR/sp ace.heed.ckpt", two words to a shell),
 * and run as said, it goes on. */
START_TEST(stopped_runs_quote_the_command_that_goes_on) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 16];
    char args[2048], ready[600], said[1024];
    const int items = getenv("HEED_SAN") ? 200 : 2000;
    snprintf(args, sizeof args, "train --net nets/fmnist-plain.net --limit %d --test-limit 100 --epochs 2 "
             "--threads 2 --out '%s/sp ace.heed'", items, dir);
    snprintf(ready, sizeof ready, "grep -q 'epoch 2/2 \\[' %s/err.txt", dir);
    ck_assert_int_eq(heed_stopped(args, ready, out, sizeof out), 128 + 15);
    snprintf(said, sizeof said, "epoch 1 is in %s/sp ace.heed.ckpt: heed train --resume '%s/sp ace.heed.ckpt' "
             "goes on from epoch 2\n", dir, dir);
    ck_assert_msg(strstr(out, said), "%s", out);
    snprintf(args, sizeof args, "train --resume '%s/sp ace.heed.ckpt'", dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
}
END_TEST

/* A tenth of a millisecond. */
static void nap(void) { nanosleep(&(struct timespec){0, 100000}, NULL); }

/* The size of the file at path, -1 if there is none. */
static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* A second Ctrl-C ends the run at once, also while a checkpoint is being
 * written: it left MODEL.ckpt.tmp.PID beside the checkpoint (its whole
 * size, here about 94 MB, written but never renamed), found by sending the
 * second SIGINT once the temporary file had all its bytes (the save then
 * syncing it); the first SIGINT, pending through the write, only asked to
 * stop. The run dies of the signal, the temporary file removed, the
 * epoch before still in the checkpoint. Whenever the signals land, no
 * temporary file may stay. */
START_TEST(a_second_signal_leaves_no_temporary_file) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 16];
    char net[300], model[300], ckpt[320], tmp[340], bin[4096];
    snprintf(net, sizeof net, "%s/wide.net", dir);
    tu_write_text(net, "input 1 28 28\nflatten\nfc out=10000\nrelu\nfc out=10\n");
    snprintf(model, sizeof model, "%s/w.heed", dir);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
    tu_heed_bin(bin, sizeof bin);
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(127);
        execl(bin, bin, "train", "--net", net, "--out", model, "--epochs", "3", "--limit", "64",
              "--test-limit", "32", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", ckpt, (long)pid);
    long long whole = -1; /* epoch 1's checkpoint: epoch 2's is as large */
    for (int i = 0; i < 600000 && (whole = file_size(ckpt)) < 0; i++) nap();
    ck_assert_int_gt(whole, 0);
    for (int i = 0; i < 600000 && file_size(tmp) < 0; i++) nap();
    kill(pid, SIGINT);
    long long now = 0;
    for (int i = 0; i < 600000 && (now = file_size(tmp)) >= 0 && now < whole; i++) nap();
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(access(tmp, F_OK) != 0, "%s was left (the run %s %d)", tmp,
                  WIFSIGNALED(status) ? "died of signal" : "exited", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                              : WEXITSTATUS(status));
    ck_assert_msg(WIFSIGNALED(status) ? WTERMSIG(status) == SIGINT : WEXITSTATUS(status) == 130,
                  "status %d", status);
    char args[400];
    snprintf(args, sizeof args, "info %s", ckpt);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
}
END_TEST

/* The checkpoint at path with its recipe (NULL: kept), epochs done and
 * first optimizer moment (NULL: kept) replaced. */
static void rewrite_checkpoint(const char *path, const char *recipe, uint64_t epochs_done,
                               const float *moment0) {
    heed_model *m;
    heed_chunk *extra;
    int nextra;
    ck_assert_msg(heed_model_load_with(&m, path, &extra, &nextra) == HEED_OK, "%s", heed_last_error());
    if (recipe) snprintf(m->meta.recipe, sizeof m->meta.recipe, "%s", recipe);
    const heed_chunk *optm = heed_chunk_find(extra, nextra, "OPTM");
    ck_assert_ptr_nonnull(optm);
    memcpy(optm->data + 8, &epochs_done, 8); /* after the step count */
    if (moment0) memcpy(optm->data + 16, moment0, sizeof *moment0);
    ck_assert_int_eq(heed_model_save_with(m, path, extra, nextra), HEED_OK);
    heed_chunks_free(extra, nextra);
    heed_model_free(m);
}

START_TEST(tampered_checkpoints_are_refused) {
    static char out[1 << 16];
    char args[1024], model[300], ckpt[320];
    snprintf(model, sizeof model, "%s/t.heed", dir);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
    snprintf(args, sizeof args,
             "train --net nets/fmnist-plain.net --out %s --epochs 2 --stop-after 1 --limit 64 "
             "--test-limit 32 --batch 32", model);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    /* more epochs done than the run has */
    rewrite_checkpoint(ckpt, NULL, 7, NULL);
    snprintf(args, sizeof args, "train --resume %s", ckpt);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "checkpoint records 7 epochs") && strstr(out, "a run of 2 epochs"), "%s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    /* a recorded option this heed does not know: the error says where it came from */
    rewrite_checkpoint(ckpt, "heed train --net nets/fmnist-plain.net --epochs 2 --bogus 3", 1, NULL);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "the recipe recorded in") && strstr(out, "'--bogus'"), "%s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    /* a recorded thread count past the cap (100000 crashed in libgomp) */
    char recipe[600];
    snprintf(recipe, sizeof recipe,
             "heed train --net nets/fmnist-plain.net --out %s --epochs 2 --threads 100000", model);
    rewrite_checkpoint(ckpt, recipe, 1, NULL);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--threads must be"), "%s", out);
    /* a NaN in the optimizer's state: it trained to a NaN model and exited 0 */
    const float nan = NAN;
    snprintf(recipe, sizeof recipe,
             "heed train --net nets/fmnist-plain.net --out %s --epochs 2 --limit 64 --test-limit 32 "
             "--batch 32", model);
    rewrite_checkpoint(ckpt, recipe, 1, &nan);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, ckpt) && strstr(out, "optimizer state holds nan at first moment 0"),
                  "%s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

/* heed train refuses, before any work, what cannot be meant: numbers out
 * of range (negative limits read as "all": a full epoch by accident),
 * an unknown dataset, --net with --resume (the checkpoint's network was
 * trained, the recipe said the other), and an --out that would write
 * over what the run reads. One line each, exit status 2. */
START_TEST(train_refuses_what_cannot_be_meant) {
    static char out[1 << 16];
    char args[2048], net[300];
    snprintf(net, sizeof net, "%s/copy.net", dir);
    tu_write_text(net, "input 1 28 28\nfc out=10\n");
    static const struct { const char *opts, *said; } bad[] = {
        {"--limit -1", "--limit must be 0 or more, not -1"},
        {"--test-limit -5", "--test-limit must be 0 or more, not -5"},
        {"--warmup -1", "--warmup must be 0 or more, not -1"},
        {"--seed -2", "--seed must be 0 or more, not -2"},
        {"--epochs 0", "--epochs must be at least 1, not 0"},
        {"--batch 0", "--batch must be at least 1, not 0"},
        {"--lr nan", "--lr must be a positive number, not nan"},
        {"--momentum 1", "--momentum must be in 0 .. 1 (1 excluded), not 1"},
        {"--weight-decay -1", "--weight-decay must be 0 or more, not -1"},
        {"--optimizer adamw --momentum 0.5", "--momentum 0.5 is SGD's: adamw keeps its own averages"},
        /* given, not merely other than the default (limited: a run that is not refused is short) */
        {"--optimizer adamw --momentum 0.9 --epochs 1 --limit 16 --test-limit 16", "--momentum 0.9 is SGD's"},
        {"--epochs 2 --stop-after 3", "--stop-after 3 is past the run's last epoch (--epochs 2)"},
        {"--epochs 3 --warmup 3", "--warmup 3 leaves no epoch of the cosine schedule (--epochs 3)"},
        {"--data bogus", "unknown dataset 'bogus' (fmnist, "},
        {"--data folder:", "unknown dataset 'folder:' ("},
        {"--resume x.ckpt", "--net cannot be given with --resume: x.ckpt trains the network it holds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "train --net %s --out %s/m.heed %s", net, dir, bad[i].opts);
        ck_assert_msg(heed(args, out, sizeof out) == 2, "%s: %s", bad[i].opts, out);
        ck_assert_msg(!strncmp(out, "heed train: ", 12) && strstr(out, bad[i].said), "%s: %s", bad[i].opts, out);
        ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    }
    /* the network file kept, not replaced by a model */
    snprintf(args, sizeof args, "train --net %s --out %s", net, net);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "would write over --net"), "%s", out);
    char text[64];
    tu_read_file(net, text, sizeof text);
    ck_assert_str_eq(text, "input 1 28 28\nfc out=10\n");
}
END_TEST

/* A checkpoint's optimizer state is its own optimizer's: SGD's momentum
 * buffer is no AdamW first moment (nor its zeros a second moment), and
 * AdamW's moments are no momentum buffer. --resume with the other
 * --optimizer went on reading one as the other (AdamW's first steps then
 * moved each weight by tens of learning rates) and exited 0; it is
 * refused, with one line saying what to do. Options that leave the state
 * meaning what it did (the learning rate, more epochs) still go on. */
START_TEST(resume_keeps_the_optimizer_its_state_is_for) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 16];
    char args[2048], net[300], model[300];
    snprintf(net, sizeof net, "%s/small.net", dir);
    tu_write_text(net, "input 1 28 28\nconv out=4 k=3 stride=2 pad=1\nrelu\ngap\nfc out=10\n");
    static const char *const kinds[2][2] = {{"sgd", "adamw"}, {"adamw", "sgd"}};
    for (int k = 0; k < 2; k++) {
        snprintf(model, sizeof model, "%s/%s.heed", dir, kinds[k][0]);
        snprintf(args, sizeof args, "train --net %s --out %s --optimizer %s --lr 0.01 --epochs 3 "
                 "--stop-after 1 --limit 32 --test-limit 16 --batch 16 --threads 1", net, model, kinds[k][0]);
        ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
        snprintf(args, sizeof args, "train --resume %s.ckpt --optimizer %s", model, kinds[k][1]);
        ck_assert_msg(heed(args, out, sizeof out) == 2, "%s: %s", args, out);
        char said[1024];
        snprintf(said, sizeof said, "heed train: --optimizer %s cannot go on from %s.ckpt: it holds %s's state "
                 "(resume with --optimizer %s, or start a new run from its weights with --init)\n",
                 kinds[k][1], model, kinds[k][0], kinds[k][0]);
        ck_assert_str_eq(out, said);
        /* the same optimizer named again, and another learning rate, go on */
        snprintf(args, sizeof args, "train --resume %s.ckpt --optimizer %s --lr 0.005 --stop-after 2", model,
                 kinds[k][0]);
        ck_assert_msg(heed(args, out, sizeof out) == 0, "%s: %s", args, out);
    }
}
END_TEST

/* A learning rate far too high: the run stops with one line saying so and
 * what is saved, exit 1, where it went on to a model of NaNs, exited 0,
 * and printed "train_loss": -nan (not JSON); no model is written. */
START_TEST(train_stops_when_it_diverges) {
    static char out[1 << 16];
    char args[2048], model[300];
    snprintf(model, sizeof model, "%s/d.heed", dir);
    snprintf(args, sizeof args, "train --net nets/fmnist-plain.net --out %s --limit 256 --test-limit 32 "
             "--epochs 3 --batch 32 --lr 1000 --json", model);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "heed train: training diverged in epoch ") && strstr(out, "try a lower --lr than 1000"),
                  "%s", out);
    ck_assert_ptr_null(strstr(out, "nan"));
    ck_assert_int_eq(access(model, F_OK), -1);
    /* What it says is kept loads: here the first epoch ends with finite
     * loss but infinite batch-norm statistics, so nothing is kept (its
     * checkpoint said "epochs 1-2 are in d.heed.ckpt" and never loaded). */
    char ckpt[320];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
    if (access(ckpt, F_OK) == 0) {
        snprintf(args, sizeof args, "info %s", ckpt);
        ck_assert_msg(heed(args, out, sizeof out) == 0, "the kept checkpoint does not load: %s", out);
    } else {
        ck_assert_msg(strstr(out, "nothing was saved"), "%s", out);
    }
    unlink(ckpt);
}
END_TEST

/* The recipe a model records trains it again: quoted where a path has a
 * space (it was split there on --resume, which then failed), without
 * --resume and --stop-after; a finished run is not silently re-saved; a
 * folder dataset is recorded by its absolute path, so heed eval finds it
 * from another folder. */
START_TEST(recipes_quote_paths_and_runs_say_when_done) {
    static char out[1 << 16];
    char args[2048], path[600];
    const char *classes[] = {"train/a", "train/b", "test/a", "test/b"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "mkdir -p '%s/my data/%s'", dir, classes[i]);
        ck_assert_int_eq(system(path), 0);
        for (int k = 0; k < 3; k++) {
            heed_tensor t;
            ck_assert_int_eq(heed_tensor_alloc(&t, 1, 1, 28, 28), HEED_OK);
            for (int j = 0; j < 28 * 28; j++) t.data[j] = (float)((j * (i % 2 ? 7 : 3) + k) % 17) / 16.0f;
            snprintf(path, sizeof path, "%s/my data/%s/%d.png", dir, classes[i], k);
            ck_assert_int_eq(heed_image_save(path, &t, NULL), HEED_OK);
            heed_tensor_free(&t);
        }
    }
    snprintf(path, sizeof path, "%s/two.net", dir);
    tu_write_text(path, "input 1 28 28\nfc out=2\n");
    char pre[300];
    snprintf(pre, sizeof pre, "cd %s &&", dir);
    ck_assert_msg(tu_run_heed(dir, pre, "train --net two.net --data 'folder:my data' --out 'sp ace.heed' "
                              "--epochs 2 --stop-after 1 --batch 2", out, sizeof out, NULL, 0) == 0, "%s", out);
    ck_assert_msg(tu_run_heed(dir, pre, "train --resume 'sp ace.heed.ckpt'", out, sizeof out, NULL, 0) == 0,
                  "%s", out);
    heed_model *m;
    snprintf(path, sizeof path, "%s/sp ace.heed", dir);
    ck_assert_int_eq(heed_model_load(&m, path), HEED_OK);
    ck_assert_int_eq(m->meta.epochs, 2);
    ck_assert_str_eq(m->meta.recipe, "heed train --net two.net --data 'folder:my data' --out 'sp ace.heed' "
                                     "--epochs 2 --batch 2");
    char want[700];
    snprintf(want, sizeof want, "folder:%s/my data", dir);
    ck_assert_str_eq(m->meta.dataset, want);
    heed_model_free(m);
    /* all epochs done: said, nothing trained */
    ck_assert_int_eq(tu_run_heed(dir, pre, "train --resume 'sp ace.heed.ckpt'", out, sizeof out, NULL, 0), 2);
    ck_assert_str_eq(out, "heed train: sp ace.heed.ckpt has done all 2 epochs of its run: give --epochs over 2 "
                          "to train on\n");
    /* a model given where its checkpoint was meant */
    ck_assert_int_eq(tu_run_heed(dir, pre, "train --resume 'sp ace.heed'", out, sizeof out, NULL, 0), 2);
    ck_assert_str_eq(out, "heed train: --out sp ace.heed would write over --resume sp ace.heed (resume from "
                          "its checkpoint, sp ace.heed.ckpt)\n");
    snprintf(args, sizeof args, "eval --model '%s/sp ace.heed'", dir);
    ck_assert_msg(tu_run_heed(dir, "cd / &&", args, out, sizeof out, NULL, 0) == 0, "%s", out);
}
END_TEST

/* Writes an 8x8 RGB image: a light background (0.9) with a 4x4 square of
 * colour channel `hue` (0 red, 1 green, 2 blue) in the middle, varied by k. */
static void write_square(const char *path, int hue, int k) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, 3, 8, 8), HEED_OK);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                const int in = i >= 2 && i < 6 && j >= 2 && j < 6;
                t.data[(c * 8 + i) * 8 + j] = in ? (c == hue ? 0.9f : 0.1f + 0.02f * k) : 0.9f - 0.01f * k;
            }
    ck_assert_msg(heed_image_save(path, &t, NULL) == HEED_OK, "%s", heed_last_error());
    heed_tensor_free(&t);
}

/* A colour folder dataset whose test/ lacks a class: training scored the
 * test items against the wrong outputs (labels are positions among each
 * split's own folders) and classify inverted the light-background images
 * a folder model was trained on as they are. */
START_TEST(folder_models_see_images_as_they_were_trained) {
    static char out[1 << 16];
    char path[700], cmd[1400], pre[300];
    const char *names[] = {"a", "b", "c"};
    for (int split = 0; split < 2; split++)
        for (int hue = split; hue < 3; hue++) { /* test/ has no a */
            snprintf(path, sizeof path, "mkdir -p '%s/rgb/%s/%s'", dir, split ? "test" : "train", names[hue]);
            ck_assert_int_eq(system(path), 0);
            for (int k = 0; k < (split ? 3 : 6); k++) {
                snprintf(path, sizeof path, "%s/rgb/%s/%s/%d.png", dir, split ? "test" : "train", names[hue], k);
                write_square(path, hue, k + 6 * split);
            }
        }
    snprintf(path, sizeof path, "%s/rgb.net", dir);
    tu_write_text(path, "input 3 8 8\nfc out=3\n");
    snprintf(pre, sizeof pre, "cd %s &&", dir);
    ck_assert_msg(tu_run_heed(dir, pre, "train --net rgb.net --data folder:rgb --out m.heed --epochs 4 --stop-after 3 "
                              "--batch 6 --lr 0.1 --json", out, sizeof out, NULL, 0) == 0, "%s", out);
    /* resumed from another folder: the model's own (absolute) dataset */
    snprintf(cmd, sizeof cmd, "train --resume '%s/m.heed.ckpt' --json", dir);
    ck_assert_msg(tu_run_heed(dir, "cd / &&", cmd, out, sizeof out, NULL, 0) == 0, "%s", out);
    char *at = strstr(out, "\"test_accuracy\": ");
    ck_assert_ptr_nonnull(at);
    const double trained = atof(at + 17);
    snprintf(cmd, sizeof cmd, "eval --model '%s/m.heed' --json", dir);
    ck_assert_msg(heed(cmd, out, sizeof out) == 0, "%s", out);
    at = strstr(out, "\"accuracy\": ");
    ck_assert_ptr_nonnull(at);
    const double evaluated = atof(at + 12);
    ck_assert_msg(evaluated == 1.0 && trained == evaluated, "train says %g, eval %g", trained, evaluated);
    /* classify: a light background stays as it is */
    snprintf(path, sizeof path, "%s/rgb/train/a/0.png", dir);
    snprintf(cmd, sizeof cmd, "classify --model '%s/m.heed' --json --top 1 '%s'", dir, path);
    ck_assert_msg(heed(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\"inverted\": false, \"top\": [{\"class\": \"a\""), "%s", out);
    /* --limit keeps items of every class, not the first class's */
    ck_assert_msg(tu_run_heed(dir, pre, "train --net rgb.net --data folder:rgb --out l.heed --epochs 1 --limit 3 "
                              "--test-limit 2", out, sizeof out, NULL, 0) == 0, "%s", out);
    ck_assert_msg(strstr(out, ": 3 train / 2 test items"), "%s", out);
    snprintf(cmd, sizeof cmd, "eval --model '%s/m.heed' --limit 2 --json", dir);
    ck_assert_msg(heed(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "{\"name\": \"b\", \"accuracy\": 1.000000, \"count\": 1}, "
                              "{\"name\": \"c\", \"accuracy\": 1.000000, \"count\": 1}"), "%s", out);
    /* data export at the model's input: colour, as trained */
    snprintf(cmd, sizeof cmd, "data export --data 'folder:%s/rgb' --shape 3x8x8 --count 1 '%s/ex'", dir, dir);
    ck_assert_msg(heed(cmd, out, sizeof out) == 0, "%s", out);
    heed_tensor got = {0}, want = {0};
    snprintf(path, sizeof path, "%s/ex/test-00000-b.png", dir);
    ck_assert_msg(heed_image_load(path, 0, &got) == HEED_OK, "%s", heed_last_error());
    snprintf(path, sizeof path, "%s/rgb/test/b/0.png", dir);
    ck_assert_int_eq(heed_image_load(path, 0, &want), HEED_OK);
    ck_assert_int_eq(got.c, 3);
    ck_assert_int_eq(heed_tensor_count(&got), heed_tensor_count(&want));
    for (size_t i = 0; i < heed_tensor_count(&got); i++) ck_assert_float_eq(got.data[i], want.data[i]);
    heed_tensor_free(&got), heed_tensor_free(&want);
}
END_TEST

/* One folder of class folders, without train/ and test/: one image in
 * five is held out by its name (of 0.png .. 9.png, 1.png and 5.png: see
 * check_data), train and eval hold out the same, and the model takes its
 * input normalisation from the training images. Image k of class c is
 * one grey, (20 k + 40 c) / 255, so the 16 training images' mean is
 * 117.5 / 255 = 0.460784 and their deviation 0.243129 (by hand). */
START_TEST(folder_without_splits_holds_out_one_in_five) {
    static char out[1 << 16];
    char path[700], pre[300];
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "mkdir -p '%s/flat/%c'", dir, 'a' + c);
        ck_assert_int_eq(system(path), 0);
        for (int k = 0; k < 10; k++) {
            heed_tensor t;
            ck_assert_int_eq(heed_tensor_alloc(&t, 1, 1, 8, 8), HEED_OK);
            for (int i = 0; i < 64; i++) t.data[i] = (20 * k + 40 * c) / 255.0f;
            snprintf(path, sizeof path, "%s/flat/%c/%d.png", dir, 'a' + c, k);
            ck_assert_int_eq(heed_image_save(path, &t, NULL), HEED_OK);
            heed_tensor_free(&t);
        }
    }
    snprintf(path, sizeof path, "%s/gray.net", dir);
    tu_write_text(path, "input 1 8 8\nfc out=2\n");
    snprintf(pre, sizeof pre, "cd %s &&", dir);
    ck_assert_msg(tu_run_heed(dir, pre, "train --net gray.net --data folder:flat --out f.heed --epochs 1",
                              out, sizeof out, NULL, 0) == 0, "%s", out);
    ck_assert_msg(strstr(out, "on folder:flat: 16 train / 4 test items"), "%s", out);
    ck_assert_msg(tu_run_heed(dir, pre, "info --json f.heed", out, sizeof out, NULL, 0) == 0, "%s", out);
    char *at = strstr(out, "\"input_mean\": ");
    ck_assert_msg(at && fabs(atof(at + 14) - 0.460784) < 1e-6, "%s", out);
    at = strstr(out, "\"input_std\": ");
    ck_assert_msg(at && fabs(atof(at + 13) - 0.243129) < 1e-6, "%s", out);
    ck_assert_msg(tu_run_heed(dir, pre, "eval --model f.heed --json", out, sizeof out, NULL, 0) == 0, "%s", out);
    ck_assert_msg(strstr(out, "{\"name\": \"a\", \"accuracy\": ") && strstr(out, "\"count\": 2}, "
                              "{\"name\": \"b\", \"accuracy\": "), "%s", out);
    ck_assert_msg(strstr(out, "\"count\": 4, \"classes\": ["), "%s", out);
    /* the same folder by another path: the held-out 4; a copy the model
     * never trained on: all 20 images are unseen */
    ck_assert_msg(tu_run_heed(dir, pre, "eval --model f.heed --data folder:./flat/ --json", out, sizeof out, NULL,
                              0) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\"count\": 4, \"classes\": ["), "%s", out);
    snprintf(path, sizeof path, "cp -r '%s/flat' '%s/copy'", dir, dir);
    ck_assert_int_eq(system(path), 0);
    ck_assert_msg(tu_run_heed(dir, pre, "eval --model f.heed --data folder:copy --json", out, sizeof out, NULL, 0) == 0,
                  "%s", out);
    ck_assert_msg(strstr(out, "\"count\": 20, \"classes\": ["), "%s", out);
}
END_TEST

/* Class folders called train and test, beside others, in a folder
 * without splits: classes like the rest (a vehicle dataset has trains),
 * not a train/ split whose class folders are missing. Of 0.png .. 9.png,
 * 1.png and 5.png are held out (check_data), two per class. */
START_TEST(class_folders_named_train_and_test_are_classes) {
    static char out[1 << 14];
    char path[700], args[900];
    static const char *classes[] = {"bus", "test", "train"};
    for (int c = 0; c < 3; c++) {
        snprintf(path, sizeof path, "mkdir -p '%s/vehicles/%s'", dir, classes[c]);
        ck_assert_int_eq(system(path), 0);
        for (int k = 0; k < 10; k++) {
            heed_tensor t;
            ck_assert_int_eq(heed_tensor_alloc(&t, 1, 1, 2, 2), HEED_OK);
            for (int i = 0; i < 4; i++) t.data[i] = k / 10.0f;
            snprintf(path, sizeof path, "%s/vehicles/%s/%d.png", dir, classes[c], k);
            ck_assert_int_eq(heed_image_save(path, &t, NULL), HEED_OK);
            heed_tensor_free(&t);
        }
    }
    snprintf(args, sizeof args, "data export --data 'folder:%s/vehicles' --shape 1x2x2 --count 100 "
             "'%s/vehicles-out'", dir, dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "the test split ends at item 5: writing 6 items, not 100"), "%s", out);
    snprintf(path, sizeof path, "%s/vehicles-out/test-00005-train.png", dir);
    ck_assert_msg(access(path, F_OK) == 0, "no %s: %s", path, out);
    snprintf(args, sizeof args, "data export --data 'folder:%s/vehicles' --split train --shape 1x2x2 "
             "--count 100 '%s/vehicles-out'", dir, dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "the train split ends at item 23: writing 24 items, not 100"), "%s", out);
}
END_TEST

/* A folder of one class folder trained a one-output network to a loss of
 * 0 and 100% accuracy (every image is that class), and saved the model as
 * if it had learnt something. It is refused before any step now. */
START_TEST(train_refuses_a_single_class) {
    static char out[1 << 14];
    char cmd[2048], net[400], model[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/one/Bag' && for i in 0 1 2 3 4 5 6 7; do "
             "cp images/test-00001-Pullover.png '%s/one/Bag/'$i.png; done", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(net, sizeof net, "%s/one.net", dir);
    tu_write_text(net, "input 1 28 28\nfc out=1\n");
    snprintf(model, sizeof model, "%s/one.heed", dir);
    snprintf(cmd, sizeof cmd, "train --net %s --data 'folder:%s/one' --out %s --epochs 1 --threads 1", net, dir,
             model);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "heed train: ") && strstr(out, "/one has one class (Bag): a classifier needs two "
                                                         "or more"), "%s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    ck_assert_int_eq(access(model, F_OK), -1);
}
END_TEST

Suite *heed_suite_train(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, train_init_starts_from_a_models_weights);
    tcase_add_test(tc, colour_folder_models_are_normalised_per_channel);
    tcase_add_test(tc, augmentations_one_by_one);
    tcase_add_test(tc, ram_training_is_reproducible_and_resumable);
    tcase_add_test(tc, train_stops_on_a_signal_and_goes_on);
    tcase_add_test(tc, a_second_signal_leaves_no_temporary_file);
    tcase_add_test(tc, stopped_runs_quote_the_command_that_goes_on);
    tcase_add_test(tc, tampered_checkpoints_are_refused);
    tcase_add_test(tc, train_refuses_what_cannot_be_meant);
    tcase_add_test(tc, resume_keeps_the_optimizer_its_state_is_for);
    tcase_add_test(tc, train_stops_when_it_diverges);
    tcase_add_test(tc, recipes_quote_paths_and_runs_say_when_done);
    tcase_add_test(tc, folder_models_see_images_as_they_were_trained);
    tcase_add_test(tc, folder_without_splits_holds_out_one_in_five);
    tcase_add_test(tc, class_folders_named_train_and_test_are_classes);
    tcase_add_test(tc, train_refuses_a_single_class);
    suite_add_tcase(s, tc);
    return s;
}
