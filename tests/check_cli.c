/* check_cli.c -- the `heed` command end to end: train a small model, resume
 * it, evaluate it, classify images with overlays, the examples, and the
 * error paths (train's own cases are in check_train.c). The binary is
 * $HEED_BIN (the Makefile sets it). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "eca.h"
#include "image.h"
#include "model.h"
#include "net.h"
#include "se.h"
#include "testutil.h"

static char dir[256];

/* Runs `heed ARGS` with stdout and stderr captured; returns the exit code. */
static int heed(const char *args, char *out, size_t outsize) {
    return tu_run_heed(dir, NULL, args, out, outsize, NULL, 0);
}

static void setup(void) {
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "cli"), 0);
}

static void teardown(void) { tu_remove_dir(dir); }

START_TEST(help_and_usage_errors) {
    static char out[1 << 16];
    ck_assert_int_eq(heed("--help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "classify"));
    ck_assert_int_eq(heed("nonsense", out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown command 'nonsense'"));
    ck_assert_int_eq(heed("train --help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--resume"));
    /* heed help CMD is CMD --help (it printed the general usage) */
    ck_assert_int_eq(heed("help eval", out, sizeof out), 0);
    ck_assert_ptr_eq(strstr(out, "usage: heed eval --model MODEL"), out);
    ck_assert_int_eq(heed("help help", out, sizeof out), 0); /* was "unknown command 'help'" */
    ck_assert_msg(strstr(out, "help [CMD]"), "%s", out);
    ck_assert_int_eq(heed("help nonsense", out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown command 'nonsense'"));
    ck_assert_int_eq(heed("train --net nets/fmnist-se.net", out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--out MODEL is required"));
    /* a model that could not be written: said before the data are read
     * (it was found when the first epoch's checkpoint was saved) */
    ck_assert_int_eq(heed("train --net nets/fmnist-se.net --out no-such-dir/m.heed "
                          "--data-dir no-such-data",
                          out, sizeof out),
                     1);
    ck_assert_str_eq(out, "heed train: cannot write no-such-dir/m.heed: No such file or directory\n");
    ck_assert_int_eq(heed("train --net nets/fmnist-se.net --out models --data-dir no-such-data", out,
                          sizeof out),
                     1);
    ck_assert_str_eq(out, "heed train: cannot write models: it is a directory\n");
    /* an empty name: it trained, checkpointing into .ckpt, to fail at the end */
    ck_assert_int_eq(heed("train --net nets/fmnist-se.net --out '' --data-dir no-such-data", out, sizeof out), 2);
    ck_assert_str_eq(out, "heed train: --out MODEL is an empty name: give the model's file name\n");
    ck_assert_int_eq(heed("train --epochs x", out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--epochs wants a whole number"));
    /* --threads within 1 .. 1024 (0: every core) on every command that
     * takes it: 100000 crashed in libgomp */
    static const char *threads[] = {
        "train --net nets/fmnist-se.net --out m.heed --threads 100000",
        "eval --model m.heed --threads -1", "classify --model m.heed --threads 1025 x.png",
        "glimpse --model m.heed --threads 5000 x.png", "bench --workload ram --threads 0",
        "bench gemm 4 4 4 --threads 2000"};
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        ck_assert_int_eq(heed(threads[i], out, sizeof out), 2);
        ck_assert_msg(strstr(out, "--threads must be") && strstr(out, "1 .. 1024"), "%s: %s",
                      threads[i], out);
    }
    /* a model evaluated on a dataset of another image size: said as such */
    ck_assert_int_eq(heed("eval --model models/ram-fmnist-cluttered60.heed --data fmnist", out,
                          sizeof out), 1);
    ck_assert_str_eq(out, "heed eval: dataset fmnist has 1x28x28 images but the model takes "
                          "1x60x60 inputs\n");
    ck_assert_int_eq(heed("classify --model nowhere.heed x.png", out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "heed classify: cannot open model file nowhere.heed"));
    /* one line, not a cascade */
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

/* Each JSON key of text (a "name" followed by ':'), into keys (n so far). */
static int json_keys(const char *text, char keys[][32], int n, int max) {
    for (const char *q = strchr(text, '"'); q && n < max; q = strchr(q + 1, '"')) {
        const char *end = strchr(q + 1, '"');
        if (!end) break;
        if (end[1] == ':' && end - q - 1 < 32) {
            int seen = 0;
            for (int k = 0; k < n; k++)
                seen |= (int)strlen(keys[k]) == end - q - 1 && !strncmp(keys[k], q + 1, end - q - 1);
            if (!seen) snprintf(keys[n++], 32, "%.*s", (int)(end - q - 1), q + 1);
        }
        q = end;
    }
    return n;
}

/* The JSON keys a command's --help lists (its text from "JSON" on, each
 * "name" there) are the keys its --json output has, no more, no fewer. */
START_TEST(help_lists_the_json_keys_printed) {
    static char help[1 << 14], out[1 << 16];
    const char *runs[][2] = {
        {"eval --help", "eval --model models/fmnist-se.heed --limit 20 --json"},
        {"data --help", "data export --count 1 --json DIR"},
        {"info --help", "info --json models/fmnist-se.heed"},
        {"version --help", "version --json"},
    };
    for (int r = 0; r < (int)(sizeof runs / sizeof runs[0]); r++) {
        char args[600];
        ck_assert_int_eq(heed(runs[r][0], help, sizeof help), 0);
        const char *listed = strstr(help, "JSON");
        ck_assert_ptr_nonnull(listed);
        char *options = strstr(help, "\noptions:");
        if (options) *options = '\0';
        char want[64][32], got[64][32];
        int nwant = 0, ngot;
        for (const char *q = strchr(listed, '"'); q; q = strchr(q + 1, '"')) {
            const char *end = strchr(q + 1, '"');
            ck_assert_ptr_nonnull(end);
            snprintf(want[nwant++], 32, "%.*s", (int)(end - q - 1), q + 1);
            q = end;
        }
        const char *dirp = strstr(runs[r][1], "DIR");
        snprintf(args, sizeof args, "%.*s%s%s", dirp ? (int)(dirp - runs[r][1]) : (int)strlen(runs[r][1]),
                 runs[r][1], dirp ? dir : "", dirp ? dirp + 3 : "");
        ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
        ngot = json_keys(out, got, 0, 64);
        for (int i = 0; i < nwant; i++) {
            int found = 0;
            for (int k = 0; k < ngot; k++) found |= !strcmp(want[i], got[k]);
            ck_assert_msg(found, "%s lists \"%s\", which %s does not print", runs[r][0], want[i], args);
        }
        for (int k = 0; k < ngot; k++) {
            int found = 0;
            for (int i = 0; i < nwant; i++) found |= !strcmp(want[i], got[k]);
            ck_assert_msg(found, "%s prints \"%s\", which %s does not list", args, got[k], runs[r][0]);
        }
    }
}
END_TEST

/* heed data export: the items' own pixels, read here straight from the
 * IDX files (zlib, not heed's loader), in PNG files named by split, index
 * and class; a range past the split's end is cut with a note, one that
 * starts past it refused before anything is written. */
static void idx_item(const char *file, int header, int size, int index, unsigned char *out) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", HEED_FMNIST_DIR, file);
    gzFile g = gzopen(path, "rb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzseek(g, header + (z_off_t)index * size, SEEK_SET), header + (z_off_t)index * size);
    ck_assert_int_eq(gzread(g, out, (unsigned)size), size);
    gzclose(g);
}

START_TEST(data_export_writes_the_items) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return; /* the package is missing: nothing to export */
    static char out[1 << 14];
    char cmd[600], path[700];
    snprintf(cmd, sizeof cmd, "data export --start 9998 --count 3 '%s/x'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "heed data: the test split ends at item 9999: writing 2 items, not 3"),
                  "%s", out);
    static const char *const names[] = {"T_shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"};
    for (int i = 9998; i <= 9999; i++) {
        unsigned char pixels[784], label;
        idx_item("t10k-images-idx3-ubyte.gz", 16, 784, i, pixels);
        idx_item("t10k-labels-idx1-ubyte.gz", 8, 1, i, &label);
        ck_assert_int_lt(label, 10);
        snprintf(path, sizeof path, "%s/x/test-%05d-%s.png", dir, i, names[label]);
        heed_tensor img = {0};
        ck_assert_msg(heed_image_load(path, 0, &img) == HEED_OK, "%s", heed_last_error());
        ck_assert_int_eq(img.c * img.h * img.w, 784);
        for (int k = 0; k < 784; k++)
            ck_assert_int_eq((int)lroundf(img.data[k] * 255.0f), pixels[k]);
        heed_tensor_free(&img);
    }
    snprintf(cmd, sizeof cmd, "data export --start 10000 '%s/y'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 2);
    ck_assert_str_eq(out, "heed data: --start 10000 is past the end of the test split "
                          "(10000 items: 0 .. 9999)\n");
    snprintf(path, sizeof path, "%s/y", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(info_lists_layers_and_totals) {
    static char out[1 << 16];
    ck_assert_int_eq(heed("info --json nets/fmnist-cbam.net", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"params\": 469598,"));
    ck_assert_ptr_nonnull(strstr(out, "\"name\": \"stage2.att\", \"type\": \"cbam\""));
    ck_assert_int_eq(heed("info nets/resnet18-se.net", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "total: 11778592 parameters"));
    ck_assert_int_eq(heed("info nets/README.md", out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "nets/README.md:"));
    /* the file's name in JSON: escaped, and a byte that is not UTF-8 as U+FFFD */
    char odd[400], cmd[500];
    snprintf(odd, sizeof odd, "%s/q\"\xff.net", dir);
    tu_write_text(odd, "input 1 4 4\nflatten\nfc out=2\n");
    snprintf(cmd, sizeof cmd, "info --json '%s'", odd);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "/q\\\"\\ufffd.net\", \"input\": [1, 4, 4]"), "%s", out);
    /* a network larger than any machine's memory: listed at once, nothing
     * allocated (750 x (1e9 + 1e9 + 1e9 + 1) parameters); run, refused in
     * one line (it allocated until the system killed it) */
    char huge[400];
    snprintf(huge, sizeof huge, "%s/huge.net", dir);
    FILE *f = fopen(huge, "w");
    ck_assert_ptr_nonnull(f);
    fputs("input 1 1 1\n", f);
    for (int i = 0; i < 750; i++) fputs("fc out=1000000000\nfc out=1\n", f);
    fclose(f);
    static char listing[1 << 20]; /* 1,500 layers */
    snprintf(cmd, sizeof cmd, "info '%s'", huge);
    ck_assert_int_eq(heed(cmd, listing, sizeof listing), 0);
    ck_assert_msg(strstr(listing, "\ntotal: 2250000000750 parameters"), "%.300s", listing);
    snprintf(cmd, sizeof cmd, "bench --net '%s' --seconds 0.1", huge);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 1);
    ck_assert_msg(!strncmp(out, "heed bench: cannot allocate ", 28) &&
                      strstr(out, "is over the memory limit of") &&
                      strchr(out, '\n') == out + strlen(out) - 1,
                  "%s", out);
}
END_TEST

START_TEST(train_resume_eval_classify) {
    static char out[1 << 16];
    char args[2048], model[300], ckpt[320];
    snprintf(model, sizeof model, "%s/m.heed", dir);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
    /* two epochs on 512 images, then one more from the checkpoint (under the
     * sanitizers, ten times slower, 96 images: the mechanics, not accuracy) */
    int san = getenv("HEED_SAN") != NULL;
    const char *data_sizes = san ? "--limit 96 --test-limit 64" : "--limit 512 --test-limit 500";
    snprintf(args, sizeof args,
             "train --net nets/fmnist-cbam.net --out %s --epochs 2 %s --batch 32 --lr 0.05 --json", model,
             data_sizes);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"epoch\": 2,"));
    snprintf(args, sizeof args,
             "train --resume %s --out %s --epochs 3 %s --batch 32 --lr 0.05 --json", ckpt, model, data_sizes);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_ptr_null(strstr(out, "\"epoch\": 2,"));
    ck_assert_ptr_nonnull(strstr(out, "\"epoch\": 3,"));
    heed_model *m;
    ck_assert_int_eq(heed_model_load(&m, model), HEED_OK);
    ck_assert_int_eq(m->meta.epochs, 3);
    ck_assert_str_eq(m->meta.class_names[9], "Ankle boot");
    /* a few hundred images are enough to beat chance (10%) clearly */
    if (!san) ck_assert_msg(m->meta.test_accuracy > 0.4, "accuracy %f", m->meta.test_accuracy);
    float acc = m->meta.test_accuracy;
    heed_model_free(m);

    snprintf(args, sizeof args, "eval --model %s --limit %d --json", model, san ? 64 : 500);
    ck_assert_int_eq(heed(args, out, sizeof out), 0);
    double eval_acc = -1;
    char *at = strstr(out, "\"accuracy\": ");
    ck_assert_ptr_nonnull(at);
    eval_acc = atof(at + 12);
    ck_assert_double_eq_tol(eval_acc, acc, 1e-5);

    /* a wide light-background photo-like image and a small dark one */
    char img1[300], img2[300];
    snprintf(img1, sizeof img1, "%s/wide.png", dir);
    snprintf(img2, sizeof img2, "%s/small.jpg", dir);
    heed_tensor a, b;
    heed_tensor_alloc(&a, 1, 3, 60, 100);
    heed_tensor_fill(&a, 0.95f);
    for (int c = 0; c < 3; c++)
        for (int i = 15; i < 45; i++)
            for (int j = 40; j < 60; j++) a.data[(c * 60 + i) * 100 + j] = 0.1f;
    heed_tensor_alloc(&b, 1, 1, 28, 28);
    tu_fill_uniform(b.data, heed_tensor_count(&b), 0, 0.3f, 3); /* dark, like Fashion-MNIST */
    ck_assert_int_eq(heed_image_save(img1, &a, NULL), HEED_OK);
    ck_assert_int_eq(heed_image_save(img2, &b, NULL), HEED_OK);
    snprintf(args, sizeof args, "classify --model %s --top 2 --overlay %s --json %s %s", model, dir, img1, img2);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"inverted\": true"));
    ck_assert_ptr_nonnull(strstr(out, "\"inverted\": false"));
    /* Each class's logit comes with its probability: the two top ones'
     * probabilities are in the ratio of their exponentials. */
    const char *p0 = strstr(out, "\"probability\": "), *l0 = strstr(out, "\"logit\": ");
    ck_assert_msg(p0 && l0, "%s", out);
    const char *p1 = strstr(p0 + 1, "\"probability\": "), *l1 = strstr(l0 + 1, "\"logit\": ");
    ck_assert_msg(p1 && l1 && p1 < strchr(out, ']') && l1 < strchr(out, ']'), "%s", out);
    const double pa = strtod(p0 + 15, NULL), pb = strtod(p1 + 15, NULL);
    const double la = strtod(l0 + 9, NULL), lb = strtod(l1 + 9, NULL);
    ck_assert_msg(la >= lb && pb > 0.01, "%s", out);
    /* Probabilities print to 1e-6, so over 0.01 to 1e-4 relative. */
    ck_assert_double_eq_tol(pa / pb, exp(la - lb), 2e-4 * exp(la - lb));
    /* a directory that does not exist yet is made, parents included */
    snprintf(args, sizeof args, "classify --model %s --map gradcam --colormap viridis --format jpg --overlay %s/new/sub %s",
             model, dir, img1);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    /* overlays are at the original resolution */
    const char *names[] = {"wide-attention.png", "small-attention.png", "new/sub/wide-gradcam.jpg"};
    const int sizes[][2] = {{60, 100}, {28, 28}, {60, 100}};
    for (int i = 0; i < 3; i++) {
        char p[400];
        heed_tensor o;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        ck_assert_msg(heed_image_load(p, 0, &o) == HEED_OK, "%s", heed_last_error());
        ck_assert_int_eq(o.c, 3);
        ck_assert_int_eq(o.h, sizes[i][0]);
        ck_assert_int_eq(o.w, sizes[i][1]);
        heed_tensor_free(&o);
    }
    /* a corrupt image fails with one clear line naming it, and exit 1 */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.png", dir);
    tu_write_text(bad, "not a png");
    snprintf(args, sizeof args, "classify --model %s %s", model, bad);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "bad.png"));
    heed_tensor_free(&a), heed_tensor_free(&b);
}
END_TEST

/* --channels: each SE layer's channel weights for the image, as the
 * library computes them for the same input (the item's pixels, scaled by
 * the model's mean and deviation: a 28x28 dark item needs no resizing or
 * inverting); a model without channel attention is refused. */
/* --channels prints each SE or ECA layer's weights as the library has them
 * after the same forward (loop: fmnist-se, fmnist-eca). */
START_TEST(classify_shows_channel_attention) {
    static char out[1 << 16];
    const char *type = _i ? "eca" : "se", *boot = "images/test-00000-Ankle_boot.png";
    char model[64];
    snprintf(model, sizeof model, "models/fmnist-%s.heed", type);
    char args[600];
    snprintf(args, sizeof args, "classify --model %s --top 1 --channels --json %s", model, boot);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    heed_model *m;
    ck_assert_int_eq(heed_model_load(&m, model), HEED_OK);
    heed_tensor x = {0}, y = {0};
    ck_assert_int_eq(heed_image_load(boot, 0, &x), HEED_OK);
    ck_assert_int_eq(x.c, 1);
    ck_assert_int_eq(x.h, 28);
    ck_assert_int_eq(x.w, 28);
    for (size_t i = 0; i < heed_tensor_count(&x); i++)
        x.data[i] = (x.data[i] - m->meta.input_mean) / m->meta.input_std;
    heed_net_set_training(m->net, 0);
    ck_assert_int_eq(heed_net_forward(m->net, &x, &y), HEED_OK);
    const char *at = out;
    static const char *layers[] = {"stage1.att", "stage2.att"};
    for (int l = 0; l < 2; l++) {
        char key[80];
        snprintf(key, sizeof key, "{\"layer\": \"%s\", \"type\": \"%s\", \"weights\": [", layers[l], type);
        at = strstr(at, key);
        ck_assert_msg(at, "no %s in %s", layers[l], out);
        at += strlen(key);
        const heed_layer *att = heed_net_find(m->net, layers[l]);
        const heed_tensor *e = _i ? heed_eca_weights((const heed_eca *)att) : heed_se_weights((const heed_se *)att);
        for (int k = 0; k < e->c; k++) {
            char *end;
            const double v = strtod(at, &end);
            ck_assert_msg(end != at, "%s: weight %d missing", layers[l], k);
            ck_assert_msg(fabs(v - e->data[k]) <= 1e-6, "%s channel %d: %g, the library %g", layers[l],
                          k, v, e->data[k]);
            at = end + (*end == ',' ? 2 : 0);
        }
        ck_assert_msg(*at == ']', "%s: more than %d weights", layers[l], e->c);
    }
    heed_tensor_free(&x), heed_tensor_free(&y);
    heed_model_free(m);
    /* the text form names both layers; a model without SE or CBAM is refused */
    snprintf(args, sizeof args, "classify --model %s --top 1 --channels %s", model, boot);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    char one[64], two[64];
    snprintf(one, sizeof one, "  stage1.att (%s, 32 channels): weights ", type);
    snprintf(two, sizeof two, "  stage2.att (%s, 64 channels): weights ", type);
    ck_assert_msg(strstr(out, one) && strstr(out, two), "%s", out);
    snprintf(args, sizeof args, "classify --model models/fmnist-plain.heed --channels %s", boot);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_str_eq(out, "heed classify: models/fmnist-plain.heed has no channel attention (se, eca or "
                          "cbam layer) for --channels\n");
}
END_TEST

/* --overlay FILE.png|.jpg|.jpeg writes the one image's overlay there (it
 * made a folder of that name); with several images it is refused, and so
 * is a folder into which two images would write overlays of the same
 * name (the second replaced the first). */
START_TEST(overlay_to_one_file_or_a_folder) {
    static char out[1 << 14];
    char args[1400], path[400];
    const char *model = "models/fmnist-cbam.heed", *boot = "images/test-00000-Ankle_boot.png";
    snprintf(args, sizeof args, "classify --model %s --json --overlay %s/sub/boot.PNG %s", model,
             dir, boot);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(path, sizeof path, "\"overlay\": \"%s/sub/boot.PNG\"", dir);
    ck_assert_msg(strstr(out, path), "%s", out);
    heed_tensor o;
    snprintf(path, sizeof path, "%s/sub/boot.PNG", dir);
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(o.c, 3);
    ck_assert_int_eq(o.h, 28);
    ck_assert_int_eq(o.w, 28);
    heed_tensor_free(&o);
    /* the type by the extension: a JPEG, whatever --format's default */
    snprintf(args, sizeof args, "glimpse --model models/ram-fmnist-cluttered60.heed --overlay %s/g.jpeg %s",
             dir, boot);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(path, sizeof path, "%s/g.jpeg", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char magic[3] = {0};
    ck_assert_int_eq(fread(magic, 1, 3, f), 3);
    fclose(f);
    ck_assert_msg(magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF, "not a JPEG");
    /* refused before any work: several images, a --format against the name */
    snprintf(args, sizeof args, "classify --model %s --overlay %s/two.png %s images/test-00001-Pullover.png",
             model, dir, boot);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    snprintf(path, sizeof path, "heed classify: --overlay %s/two.png names one file, but 2 images "
             "were given: give a folder for several\n", dir);
    ck_assert_str_eq(out, path);
    snprintf(args, sizeof args, "classify --model %s --overlay %s/b.jpg --format png %s", model, dir, boot);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "is a jpg file name, but --format is png"), "%s", out);
    /* two images of one name in different folders; the same image twice is fine */
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a", dir), snprintf(b, sizeof b, "%s/b", dir);
    ck_assert_int_eq(mkdir(a, 0777), 0);
    ck_assert_int_eq(mkdir(b, 0777), 0);
    snprintf(a, sizeof a, "%s/a/p.png", dir), snprintf(b, sizeof b, "%s/b/p.png", dir);
    heed_tensor img;
    ck_assert_int_eq(heed_tensor_alloc(&img, 1, 1, 28, 28), HEED_OK);
    heed_tensor_fill(&img, 0.2f);
    ck_assert_int_eq(heed_image_save(a, &img, NULL), HEED_OK);
    ck_assert_int_eq(heed_image_save(b, &img, NULL), HEED_OK);
    heed_tensor_free(&img);
    snprintf(args, sizeof args, "classify --model %s --overlay %s/maps %s %s %s", model, dir, a, boot, b);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "a/p.png and ") && strstr(out, "b/p.png would write overlays of the same "
                                                           "name (p-...)"), "%s", out);
    char none[300];
    snprintf(none, sizeof none, "%s/maps", dir);
    ck_assert_int_ne(access(none, F_OK), 0);
    snprintf(args, sizeof args, "classify --model %s --overlay %s/maps %s %s", model, dir, boot, boot);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
}
END_TEST

/* "-" reads one image from standard input: the same result and overlay as
 * the file named, the overlay named stdin-<map>; "-" twice, or nothing
 * piped in, is refused. */
START_TEST(images_from_standard_input) {
    static char out[1 << 14], ref[1 << 14];
    char args[1400];
    const char *model = "models/fmnist-cbam.heed", *item = "images/light-test-00009-Sneaker.jpg";
    snprintf(args, sizeof args, "classify --model %s --json --top 4 --overlay %s/piped - < %s", model, dir, item);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "classify --model %s --json --top 4 --overlay %s/named %s", model, dir, item);
    ck_assert_msg(heed(args, ref, sizeof ref) == 0, "%s", ref);
    const char *top = strstr(out, "\"top\""), *ref_top = strstr(ref, "\"top\"");
    ck_assert_ptr_nonnull(top);
    ck_assert_ptr_nonnull(ref_top);
    ck_assert_int_eq(strstr(top, "\"overlay\"") - top, strstr(ref_top, "\"overlay\"") - ref_top);
    ck_assert_msg(!strncmp(top, ref_top, (size_t)(strstr(top, "\"overlay\"") - top)), "%s\n%s", out, ref);
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/piped/stdin-attention.png", dir);
    snprintf(b, sizeof b, "%s/named/light-test-00009-Sneaker-attention.png", dir);
    heed_tensor x, y;
    ck_assert_msg(heed_image_load(a, 0, &x) == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(heed_image_load(b, 0, &y) == HEED_OK, "%s", heed_last_error());
    ck_assert(heed_tensor_same_shape(&x, &y));
    ck_assert_int_eq(memcmp(x.data, y.data, heed_tensor_count(&x) * sizeof(float)), 0);
    heed_tensor_free(&x), heed_tensor_free(&y);
    /* glimpse too, with the first glimpse fixed */
    snprintf(args, sizeof args, "glimpse --model models/ram-fmnist-cluttered60.heed --seed 3 --json - < %s", item);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "glimpse --model models/ram-fmnist-cluttered60.heed --seed 3 --json %s", item);
    ck_assert_msg(heed(args, ref, sizeof ref) == 0, "%s", ref);
    ck_assert_msg(strstr(out, "\"image\": \"-\"") && !strcmp(strchr(out, ','), strchr(ref, ',')), "%s\n%s",
                  out, ref);
    /* refused: standard input twice, nothing in it */
    snprintf(args, sizeof args, "classify --model %s - - < %s", model, item);
    ck_assert_int_eq(heed(args, out, sizeof out), 2);
    ck_assert_str_eq(out, "heed classify: - (standard input) was given 2 times; it holds one image\n");
    snprintf(args, sizeof args, "classify --model %s - < /dev/null", model);
    ck_assert_int_eq(heed(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "standard input: empty file"), "%s", out);
    /* read as a file is: a stream that is no image stops at its first
     * bytes, not after filling memory */
    ck_assert_int_eq(tu_run_heed(dir, "yes |", "classify --model models/fmnist-cbam.heed -", out, sizeof out,
                                 NULL, 0), 1);
    ck_assert_str_eq(out, "heed classify: standard input: not a PNG or JPEG image "
                          "(unrecognised first bytes)\n");
}
END_TEST

/* The README's C example builds a CNN with SE in code and trains it: its
 * loss must fall, and it must print one attention weight per channel. */
START_TEST(readme_example_trains_and_reads_attention) {
    const char *examples = getenv("HEED_EXAMPLES");
    if (!examples) return; /* only run through `make check`, which builds them */
    char cmd[1000], path[300], bin[300];
    snprintf(bin, sizeof bin, "%s/attention_cnn", examples);
    snprintf(path, sizeof path, "%s/example.txt", dir);
    snprintf(cmd, sizeof cmd, "%s > %s 2>&1", bin, path);
    ck_assert_int_eq(system(cmd), 0);
    static char out[1 << 14];
    FILE *f = fopen(path, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    char *first = strstr(out, "step  0 loss "), *last = strstr(out, "step 95 loss ");
    ck_assert_msg(first && last, "%s", out);
    double l0 = atof(first + 13), l1 = atof(last + 13);
    ck_assert_msg(l1 < 0.8 * l0, "loss %f -> %f", l0, l1);
    char *att = strstr(out, "channel attention:");
    ck_assert_ptr_nonnull(att);
    int weights = 0;
    for (char *p = att; (p = strchr(p, ' ')); p++) weights++;
    ck_assert_int_eq(weights - 1, 16);
}
END_TEST

/* The Grad-CAM example brings the image to the model as heed classify
 * does (heed_model_input) and lays the map over it as classify does
 * (heed_placement_crop): on a photo-like image that is wider than tall and
 * light (letterboxed, inverted), it names the class classify puts first
 * and writes classify's --map gradcam overlay, pixel for pixel. */
START_TEST(gradcam_example_matches_classify) {
    const char *examples = getenv("HEED_EXAMPLES");
    if (!examples) return; /* only run through `make check`, which builds them */
    char item[300], cmd[1200], out_png[300], cls_png[300];
    static char out[1 << 14];
    heed_tensor img = {0}, wide = {0}, vis = {0}, want = {0};
    ck_assert_int_eq(heed_image_load("images/light-test-00009-Sneaker.jpg", 0, &img), HEED_OK);
    ck_assert_int_eq(heed_tensor_alloc(&wide, 1, 1, 200, img.w), HEED_OK); /* its middle 200 rows */
    memcpy(wide.data, img.data + (size_t)68 * img.w, (size_t)200 * img.w * sizeof(float));
    snprintf(item, sizeof item, "%s/wide.png", dir);
    ck_assert_int_eq(heed_image_save(item, &wide, NULL), HEED_OK);
    snprintf(out_png, sizeof out_png, "%s/where.png", dir);
    snprintf(cmd, sizeof cmd, "%s/where_it_looks models/fmnist-se.heed %s %s 2>&1", examples, item, out_png);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_msg(pclose(p) == 0, "%s", out);
    char args[1000], listed[1 << 12];
    snprintf(cls_png, sizeof cls_png, "%s/classify.png", dir);
    snprintf(args, sizeof args, "classify --model models/fmnist-se.heed --top 1 --json --map gradcam "
             "--overlay %s %s", cls_png, item);
    ck_assert_msg(heed(args, listed, sizeof listed) == 0, "%s", listed);
    ck_assert_msg(strstr(listed, "\"inverted\": true"), "%s", listed);
    char *cls = strstr(listed, "\"class\": \"");
    ck_assert_ptr_nonnull(cls);
    cls += 10;
    *strchr(cls, '"') = '\0';
    char want_line[1000];
    snprintf(want_line, sizeof want_line, "%s: %s, Grad-CAM over stage2 (7x7) in %s\n", item, cls, out_png);
    ck_assert_str_eq(out, want_line);
    ck_assert_int_eq(heed_image_load(out_png, 0, &vis), HEED_OK);
    ck_assert_int_eq(heed_image_load(cls_png, 0, &want), HEED_OK);
    ck_assert(vis.c == 3 && vis.h == 200 && vis.w == img.w);
    ck_assert_int_eq(heed_tensor_count(&vis), heed_tensor_count(&want));
    for (size_t i = 0; i < heed_tensor_count(&vis); i++) ck_assert_float_eq(vis.data[i], want.data[i]);
    heed_tensor_free(&img), heed_tensor_free(&wide), heed_tensor_free(&vis), heed_tensor_free(&want);
}
END_TEST

/* The example with its model compiled in (heed_model_load_mem) and the
 * image read from standard input (heed_image_load_mem) lists what heed
 * classify lists for the same model, a photo-like light image included;
 * input that is not an image is refused with a message naming it. */
START_TEST(built_in_model_example_matches_classify) {
    const char *examples = getenv("HEED_EXAMPLES");
    if (!examples) return; /* only run through `make check`, which builds them */
    const char *items[] = {"images/test-00000-Ankle_boot.png", "images/test-00004-Shirt.png",
                           "images/light-test-00009-Sneaker.jpg", "images/light-test-00012-Sneaker.png"};
    char cmd[1200], args[1000];
    static char out[1 << 12], listed[1 << 12];
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s/built_in_model < %s 2>&1", examples, items[i]);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        ck_assert_msg(pclose(p) == 0, "%s", out);
        snprintf(args, sizeof args, "classify --model models/fmnist-se.heed --top 3 %s", items[i]);
        ck_assert_msg(heed(args, listed, sizeof listed) == 0, "%s", listed);
        const char *lines = strchr(listed, '\n'); /* after the image's own line */
        ck_assert_ptr_nonnull(lines);
        ck_assert_str_eq(out, lines + 1);
    }
    snprintf(cmd, sizeof cmd, "%s/built_in_model < models/fmnist-se.log 2>&1", examples);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_ne(pclose(p), 0);
    ck_assert_msg(strstr(out, "standard input: not a PNG or JPEG image") && !strchr(out, '\n')[1], "%s", out);
}
END_TEST

/* Each shipped model, evaluated on the whole test split now, reaches the
 * accuracy its file (and the README) states. Under the sanitizers (10x
 * slower) a 500-image slice only checks that evaluation runs. */
static const char *shipped_models[] = {"models/fmnist-plain.heed", "models/fmnist-se.heed",
                                       "models/fmnist-cbam.heed", "models/fmnist-eca.heed",
                                       "models/fmnist-mobile.heed", "models/ram-fmnist-cluttered60.heed"};

START_TEST(shipped_models_reach_their_stated_accuracy) {
    static char out[1 << 16];
    heed_model *m;
    ck_assert_msg(heed_model_load(&m, shipped_models[_i]) == HEED_OK, "%s", heed_last_error());
    double stated = m->meta.test_accuracy;
    heed_model_free(m);
    int san = getenv("HEED_SAN") != NULL;
    char args[512];
    snprintf(args, sizeof args, "eval --model %s --json%s", shipped_models[_i], san ? " --limit 500" : "");
    ck_assert_int_eq(heed(args, out, sizeof out), 0);
    char *at = strstr(out, "\"accuracy\": ");
    ck_assert_ptr_nonnull(at);
    double acc = atof(at + 12);
    if (!san) {
        ck_assert_msg(acc >= stated - 1e-6, "%s: %f < stated %f", shipped_models[_i], acc, stated);
        /* the CNNs on plain Fashion-MNIST; RAM's task is harder */
        if (strstr(shipped_models[_i], "fmnist-") == shipped_models[_i] + 7)
            ck_assert_msg(acc >= 0.90, "%s: accuracy %f", shipped_models[_i], acc);
    }
}
END_TEST

/* A folder dataset numbers its classes by sorted folder name; a model
 * trained on Fashion-MNIST has its own order. eval matched them by
 * position: the first 100 test items, sorted into class folders as
 * `data export` names them, scored 30% where the same items score over
 * 90% from the IDX files. */
START_TEST(eval_matches_folder_classes_by_name) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    static char out[1 << 16], ref[1 << 16];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "data export --count 100 '%s/x'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && for f in x/*.png; do c=${f##*-}; c=${c%%.png}; "
             "mkdir -p ds/test/$c && mv $f ds/test/$c/ || exit 1; done", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(heed("eval --model models/fmnist-plain.heed --limit 100 --json", ref, sizeof ref), 0);
    snprintf(cmd, sizeof cmd, "eval --model models/fmnist-plain.heed --data 'folder:%s/ds' --json", dir);
    ck_assert_msg(heed(cmd, out, sizeof out) == 0, "%s", out);
    /* the same items: the same accuracy overall and per class (the loss
     * sums in another order) */
    char *a = strstr(out, "\"accuracy\": "), *b = strstr(ref, "\"accuracy\": ");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(!strncmp(a, b, 20), "folder %.20s, IDX %.20s", a, b);
    a = strstr(out, "\"classes\": "), b = strstr(ref, "\"classes\": ");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(a, b);
    /* a class the model does not have is refused, by name */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/ds/test/Sock' && cp '%s/ds/test/Bag/'*.png '%s/ds/test/Sock/'", dir,
             dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "eval --model models/fmnist-plain.heed --data 'folder:%s/ds'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "ds's class 'Sock' is none of the model's 10 classes (T-shirt/top ... Ankle boot)"),
                  "%s", out);
}
END_TEST

START_TEST(eval_data_and_info_say_what_they_cannot_do) {
    static char out[1 << 16];
    char cmd[1024], path[600];
    ck_assert_int_eq(heed("eval --model models/fmnist-plain.heed --limit -5", out, sizeof out), 2);
    ck_assert_str_eq(out, "heed eval: --limit must be 0 (all) or more, not -5\n");
    /* one image is one image (it said "(1 images)") */
    ck_assert_int_eq(heed("eval --model models/fmnist-plain.heed --limit 1", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "% (1 image), loss "), "%s", out);
    ck_assert_int_eq(heed("eval --model models/fmnist-plain.heed --data bogus", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "heed eval: unknown dataset 'bogus' ("), "%s", out);
    ck_assert_int_eq(heed("data export --data bogus x", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "heed data: unknown dataset 'bogus' ("), "%s", out);
    /* a folder with one split folder but not the other; one given a level
     * too high, whose class folders hold folders, not images */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/half/train/a' '%s/high/ds/train/a'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "eval --model models/fmnist-plain.heed --data 'folder:%s/half'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "/half has no test/ folder (folder:DIR reads DIR/train/<class>/*.png and "
                              "DIR/test/<class>/*.png, or DIR/<class>/*.png)"), "%s", out);
    snprintf(cmd, sizeof cmd, "eval --model models/fmnist-plain.heed --data 'folder:%s/high'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "class folder ") && strstr(out, "/high/ds has no .png, .jpg or .jpeg file"),
                  "%s", out);
    /* an error naming a file whose name holds a newline is still one line
     * (it was two: the name's newline printed as it was) */
    snprintf(path, sizeof path, "%s/two\nlines.png", dir);
    tu_write_text(path, "not an image");
    snprintf(cmd, sizeof cmd, "classify --model models/fmnist-plain.heed '%s'", path);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 1);
    snprintf(path, sizeof path, "heed classify: %s/two?lines.png: not a PNG or JPEG image", dir);
    ck_assert_msg(!strncmp(out, path, strlen(path)), "%s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    /* --data-dir is Fashion-MNIST's: with a folder it would be ignored */
    snprintf(cmd, sizeof cmd, "eval --model models/fmnist-plain.heed --data 'folder:%s/high' --data-dir /x", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "heed eval: --data-dir /x: it says where Fashion-MNIST's files are, and folder:"),
                  "%s", out);
    ck_assert_int_eq(heed("data export --scale 65 x", out, sizeof out), 2);
    ck_assert_str_eq(out, "heed data: --scale must be 1 .. 64, not 65\n");
    snprintf(path, sizeof path, "%s/two.net", dir);
    tu_write_text(path, "input 1 4 4\nfc out=2\n");
    /* a pipe: info reads the file twice (to tell a model from a network) */
    snprintf(cmd, sizeof cmd, "cat '%s' |", path);
    ck_assert_int_eq(tu_run_heed(dir, cmd, "info /dev/stdin", out, sizeof out, NULL, 0), 1);
    ck_assert_msg(strstr(out, "heed info: /dev/stdin is not a regular file (a pipe?)"), "%s", out);
    /* a model saved through the library, its test accuracy never measured */
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, "input 1 4 4\nfc out=2\n", "two", 1), HEED_OK);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    ck_assert_int_eq(heed_model_set_classes(m, 2, (const char *[]){"a\"q", "b"}), HEED_OK);
    snprintf(path, sizeof path, "%s/lib.heed", dir);
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    heed_model_free(m);
    snprintf(cmd, sizeof cmd, "info '%s'", path);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "trained on (unrecorded data) for 0 epochs, not evaluated\n"), "%s", out);
    snprintf(cmd, sizeof cmd, "info --json '%s'", path);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"test_accuracy\": null"), "%s", out);
    /* what scripts need of a model: its class names (escaped), data and recipe */
    ck_assert_msg(strstr(out, "\"class_names\": [\"a\\\"q\", \"b\"], \"dataset\": \"\", \"recipe\": \"\"}"),
                  "%s", out);
    if (access(HEED_FMNIST_DIR, R_OK) != 0) return;
    /* classes with no items under --limit have no accuracy, not 0% */
    ck_assert_int_eq(heed("eval --model models/fmnist-plain.heed --limit 3 --json", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"accuracy\": null, \"count\": 0}"), "%s", out);
    ck_assert_int_eq(heed("eval --model models/fmnist-plain.heed --limit 3", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\nDress                 -       0\n"), "%s", out);
    /* export: JSON strings escaped, one slash after the folder */
    snprintf(cmd, sizeof cmd, "data export --count 1 --json '%s/q\"b/'", dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 0);
    snprintf(path, sizeof path, "{\"file\": \"%s/q\\\"b/test-00000-Ankle_boot.png\", \"index\": 0, "
             "\"label\": 9, \"class\": \"Ankle boot\"}\n", dir);
    ck_assert_str_eq(out, path);
    /* never into a folder dataset's own folders (the export replaced its
     * images when the names met) */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/ds/test/Ankle_boot' && cp '%s/q\"b/test-00000-Ankle_boot.png' "
             "'%s/ds/test/Ankle_boot/'", dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "data export --data 'folder:%s/ds' --invert --count 1 '%s/ds/test/Ankle_boot'", dir,
             dir);
    ck_assert_int_eq(heed(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "is inside the dataset's folder"), "%s", out);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/q\"b/test-00000-Ankle_boot.png' '%s/ds/test/Ankle_boot/test-00000-Ankle_boot.png'",
             dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A cut-out: a black trouser whose background is transparent. Composited
 * over black it was black on black, never inverted: nothing to classify;
 * over white (it is dark) it is a trouser on a light background, inverted
 * as the model's items are. */
START_TEST(transparent_cut_outs_are_set_off_from_their_item) {
    static char out[1 << 14];
    heed_tensor item = {0}, cut = {0};
    ck_assert_int_eq(heed_image_load("images/test-00002-Trouser.png", 0, &item), HEED_OK);
    ck_assert_int_eq(item.c, 1);
    const int hw = item.h * item.w;
    ck_assert_int_eq(heed_tensor_alloc(&cut, 1, 4, item.h, item.w), HEED_OK);
    for (int i = 0; i < hw; i++) {
        for (int c = 0; c < 3; c++) cut.data[c * hw + i] = 0.0f; /* black ink */
        cut.data[3 * hw + i] = item.data[i];                      /* where the item is */
    }
    char path[600], cmd[800];
    snprintf(path, sizeof path, "%s/cut.png", dir);
    ck_assert_int_eq(heed_image_save(path, &cut, NULL), HEED_OK);
    snprintf(cmd, sizeof cmd, "classify --model models/fmnist-plain.heed --top 1 --json '%s'", path);
    ck_assert_msg(heed(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\"inverted\": true, \"top\": [{\"class\": \"Trouser\""), "%s", out);
    heed_tensor_free(&item), heed_tensor_free(&cut);
}
END_TEST

/* A run refused once its model is read (no cbam layer for --map attention,
 * no se or cbam layer for --channels, no ram layer for glimpse, a --layer
 * the model lacks) makes no --overlay folder: it made the folder first and
 * left it behind, empty. */
START_TEST(refused_runs_make_no_overlay_folder) {
    static char out[1 << 14];
    char args[1024], folder[400];
    static const struct { const char *cmd, *said; } refused[] = {
        {"classify --model models/fmnist-se.heed", "the model has no spatial attention (cbam)"},
        {"classify --model models/fmnist-plain.heed --channels --map gradcam", "has no channel attention"},
        {"classify --model models/fmnist-se.heed --map gradcam --layer nowhere", "--layer nowhere is not"},
        {"glimpse --model models/fmnist-se.heed", "has no ram layer"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(folder, sizeof folder, "%s/never%zu/sub", dir, i);
        snprintf(args, sizeof args, "%s --overlay %s images/test-00001-Pullover.png", refused[i].cmd, folder);
        ck_assert_msg(heed(args, out, sizeof out) == 1, "%s: %s", args, out);
        ck_assert_msg(strstr(out, refused[i].said), "%s: %s", args, out);
        snprintf(folder, sizeof folder, "%s/never%zu", dir, i);
        ck_assert_msg(access(folder, F_OK) != 0, "%s made %s", args, folder);
    }
}
END_TEST

/* Output that cannot be written (a full disk under `heed eval --json >
 * results.json`) is a failure that says so: the commands exited 0 with
 * nothing written. */
START_TEST(unwritable_output_is_a_failure) {
    if (access("/dev/full", W_OK) != 0) return;
    static const char *runs[] = {"info models/fmnist-se.heed", "info --json nets/fmnist-se.net", "version --json",
                                 "--help", "classify --model models/fmnist-se.heed images/test-00001-Pullover.png"};
    char bin[4096], cmd[8192], errpath[400], err[4096];
    tu_heed_bin(bin, sizeof bin);
    snprintf(errpath, sizeof errpath, "%s/err.txt", dir);
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s %s > /dev/full 2> %s", bin, runs[i], errpath);
        const int rc = system(cmd);
        tu_read_file(errpath, err, sizeof err);
        ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "%s > /dev/full: exit %d, %s", runs[i],
                      WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, err);
        ck_assert_msg(strstr(err, "cannot write the output: No space left on device"), "%s: %s", runs[i], err);
    }
}
END_TEST

/* A --overlay folder given with a slash at its end (as the message for
 * --overlay x.gif advises) named its overlays "x.gif//<image>-...". */
START_TEST(overlay_folder_with_a_final_slash) {
    static char out[1 << 14];
    char args[1024];
    snprintf(args, sizeof args, "classify --model models/fmnist-se.heed --map gradcam --json --overlay %s/o.gif/ "
             "images/test-00001-Pullover.png", dir);
    ck_assert_msg(heed(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "/o.gif/test-00001-Pullover-gradcam.png\"") && !strstr(out, "//"), "%s", out);
}
END_TEST

Suite *heed_suite_cli(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, help_and_usage_errors);
    tcase_add_test(tc, help_lists_the_json_keys_printed);
    tcase_add_test(tc, info_lists_layers_and_totals);
    tcase_add_test(tc, data_export_writes_the_items);
    tcase_add_test(tc, train_resume_eval_classify);
    tcase_add_test(tc, overlay_to_one_file_or_a_folder);
    tcase_add_test(tc, images_from_standard_input);
    tcase_add_loop_test(tc, classify_shows_channel_attention, 0, 2);
    tcase_add_test(tc, readme_example_trains_and_reads_attention);
    tcase_add_test(tc, gradcam_example_matches_classify);
    tcase_add_test(tc, built_in_model_example_matches_classify);
    tcase_add_test(tc, eval_matches_folder_classes_by_name);
    tcase_add_test(tc, eval_data_and_info_say_what_they_cannot_do);
    tcase_add_test(tc, transparent_cut_outs_are_set_off_from_their_item);
    tcase_add_test(tc, refused_runs_make_no_overlay_folder);
    tcase_add_test(tc, unwritable_output_is_a_failure);
    tcase_add_test(tc, overlay_folder_with_a_final_slash);
    tcase_add_loop_test(tc, shipped_models_reach_their_stated_accuracy, 0, 5);
    suite_add_tcase(s, tc);
    return s;
}
