/* check_glimpse.c -- `heed glimpse` end to end on a tiny RAM model built in
 * code: JSON lines that parse, glimpse locations consistent with the sensor
 * and the letterbox, reproducible output, the same probabilities as `heed
 * classify --seed`, overlay pictures of the documented size (bounded)
 * holding the patches the sensor read, and the error paths. The binary is
 * $HEED_BIN (the Makefile sets it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "model.h"
#include "net.h"
#include "overlay.h"
#include "testutil.h"

/* The tiny model: input 1x20x20, T = 4 glimpses of 4x4 pixels at 2 scales. */
#define T 4
#define P 4
#define S 2
#define IN 20

static char dir[256], model[300], cnn[300], dark[300], wide[300];

/* Runs `heed glimpse ARGS` with stdout and stderr captured separately; returns the
 * exit code. */
static int heed(const char *args, char *out, size_t outsize, char *err, size_t errsize) {
    char full[8000];
    snprintf(full, sizeof full, "glimpse %s", args);
    return tu_run_heed(dir, NULL, full, out, outsize, err, errsize);
}

static void save_model(const char *text, const char *path) {
    heed_net *net;
    heed_model *m;
    ck_assert_msg(heed_net_parse(&net, text, "check_glimpse", 7) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"tee", "say \"hi\"", "boot"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    m->meta.input_mean = 0.0f, m->meta.input_std = 1.0f, m->meta.dark_background = 1;
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    heed_model_free(m);
}

/* A dark 20x20 gray PNG with a light block (a Fashion-MNIST-like item) and
 * a light 50x30 RGB PNG with a dark block (a photo-like one). */
static void setup(void) {
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "glimpse"), 0);
    snprintf(model, sizeof model, "%s/ram.heed", dir);
    snprintf(cnn, sizeof cnn, "%s/cnn.heed", dir);
    snprintf(dark, sizeof dark, "%s/dark.png", dir);
    snprintf(wide, sizeof wide, "%s/wide.png", dir);
    save_model("input 1 20 20\n"
               "ram glimpses=4 patch=4 scales=2 glimpse_hidden=16 loc_hidden=8 hidden=16 classes=3\n",
               model);
    save_model("input 1 20 20\nconv out=2 k=3 pad=1\nrelu\nflatten\nfc out=3\n", cnn);
    heed_tensor a, b;
    ck_assert_int_eq(heed_tensor_alloc(&a, 1, 1, IN, IN), HEED_OK);
    tu_fill_uniform(a.data, heed_tensor_count(&a), 0, 0.2f, 5);
    for (int i = 5; i < 15; i++)
        for (int j = 7; j < 13; j++) a.data[i * IN + j] = 0.8f + 0.01f * (i + j);
    /* exact 8-bit codes, so the file holds what the test compares against */
    for (size_t i = 0; i < heed_tensor_count(&a); i++) a.data[i] = roundf(a.data[i] * 255) / 255;
    ck_assert_int_eq(heed_tensor_alloc(&b, 1, 3, 30, 50), HEED_OK);
    heed_tensor_fill(&b, 0.9f);
    for (int c = 0; c < 3; c++)
        for (int i = 8; i < 22; i++)
            for (int j = 20; j < 30; j++) b.data[(c * 30 + i) * 50 + j] = 0.1f;
    ck_assert_int_eq(heed_image_save(dark, &a, NULL), HEED_OK);
    ck_assert_int_eq(heed_image_save(wide, &b, NULL), HEED_OK);
    heed_tensor_free(&a), heed_tensor_free(&b);
}

static void teardown(void) { tu_remove_dir(dir); }

/* ---- a small JSON syntax checker (RFC 8259 values) ---------------------- */

static void skip_ws(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

static int json_value(const char **p, int depth);

static int json_str(const char **p) {
    if (**p != '"') return 0;
    for ((*p)++; **p != '"'; (*p)++) {
        if ((unsigned char)**p < 0x20) return 0;
        if (**p == '\\') {
            (*p)++;
            if (!strchr("\"\\/bfnrtu", **p) || !**p) return 0;
        }
    }
    (*p)++;
    return 1;
}

static int json_value(const char **p, int depth) {
    if (depth > 32) return 0;
    skip_ws(p);
    char c = **p;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        (*p)++;
        skip_ws(p);
        if (**p == close) return (*p)++, 1;
        for (;;) {
            if (c == '{') {
                skip_ws(p);
                if (!json_str(p)) return 0;
                skip_ws(p);
                if (**p != ':') return 0;
                (*p)++;
            }
            if (!json_value(p, depth + 1)) return 0;
            skip_ws(p);
            if (**p == close) return (*p)++, 1;
            if (**p != ',') return 0;
            (*p)++;
        }
    }
    if (c == '"') return json_str(p);
    for (const char *lit[] = {"true", "false", "null"}, **l = lit; l < lit + 3; l++)
        if (!strncmp(*p, *l, strlen(*l))) return *p += strlen(*l), 1;
    char *end;
    strtod(*p, &end);
    if (end == *p || !(c == '-' || (c >= '0' && c <= '9'))) return 0;
    *p = end;
    return 1;
}

/* The line is one JSON value and nothing else. */
static int json_line_ok(const char *line, size_t len) {
    char buf[1 << 13];
    if (len >= sizeof buf) return 0;
    memcpy(buf, line, len), buf[len] = '\0';
    const char *p = buf;
    if (*p != '{' || !json_value(&p, 0)) return 0;
    skip_ws(&p);
    return *p == '\0';
}

/* The number after "key": in s (first occurrence), or NAN. */
static double num_after(const char *s, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *at = strstr(s, k);
    return at ? atof(at + strlen(k)) : NAN;
}

typedef struct glimpse_rec {
    double x, y, px, py;
} glimpse_rec;

/* Reads the T glimpses of one JSON line (which must have exactly T). */
static void read_glimpses(const char *line, const char *end, glimpse_rec g[T]) {
    const char *p = strstr(line, "\"glimpses\": [");
    ck_assert_ptr_nonnull(p);
    int t = 0;
    for (const char *s = p; (s = strstr(s, "{\"step\": ")) && s < end; s++, t++) {
        ck_assert_int_lt(t, T);
        ck_assert_int_eq(atoi(s + 9), t);
        g[t] = (glimpse_rec){num_after(s, "x"), num_after(s, "y"), num_after(s, "px"), num_after(s, "py")};
    }
    ck_assert_int_eq(t, T);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(json_lines_with_glimpses_where_the_sensor_looked) {
    static char out[1 << 15], err[1 << 12];
    char args[4096];
    snprintf(args, sizeof args, "--model %s --json --top 2 %s %s", model, dark, wide);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(err, "");
    const char *line = out;
    for (int img = 0; img < 2; img++) {
        const char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        ck_assert_msg(json_line_ok(line, (size_t)(end - line)), "not JSON: %.*s", (int)(end - line), line);
        ck_assert_ptr_nonnull(strstr(line, img ? "\"inverted\": true" : "\"inverted\": false"));
        /* the class is the top one, with its probability */
        int label = (int)num_after(line, "label");
        ck_assert(label >= 0 && label < 3);
        const char *names[] = {"\"tee\"", "\"say \\\"hi\\\"\"", "\"boot\""};
        char expect[64];
        snprintf(expect, sizeof expect, "\"class\": %s, \"label\": %d", names[label], label);
        ck_assert_msg(strstr(line, expect), "%s in %s", expect, line);
        const char *top = strstr(line, "\"top\": [");
        ck_assert_ptr_nonnull(top);
        ck_assert_int_eq((int)num_after(top, "index"), label);
        double p0 = num_after(line, "probability"), pt = num_after(top, "probability");
        ck_assert(p0 == pt);
        ck_assert(p0 >= 1.0 / 3 - 1e-6 && p0 <= 1);
        /* the input frame: 20x20; the dark image fills it, the wide one
         * (50x30) is letterboxed to 20x12 at row 4 */
        int w = img ? 50 : 20, h = img ? 30 : 20, fx = 0, fy = img ? 4 : 0, fw = 20, fh = img ? 12 : 20;
        glimpse_rec g[T];
        read_glimpses(line, end, g);
        for (int t = 0; t < T; t++) {
            ck_assert(g[t].x >= -1 && g[t].x <= 1 && g[t].y >= -1 && g[t].y <= 1);
            /* the sensor's centre pixel, round half to even, mapped back to the image */
            double cx = nearbyint((g[t].x + 1) / 2 * IN), cy = nearbyint((g[t].y + 1) / 2 * IN);
            ck_assert_double_eq_tol(g[t].px, (cx - fx) * w / fw, 0.006);
            ck_assert_double_eq_tol(g[t].py, (cy - fy) * h / fh, 0.006);
        }
        line = end + 1;
    }
    ck_assert_str_eq(line, "");

    /* human output: the class line and one row per step */
    snprintf(args, sizeof args, "--model %s %s", model, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 0);
    char head[400];
    snprintf(head, sizeof head, "%s: ", dark);
    ck_assert_msg(!strncmp(out, head, strlen(head)), "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "%)\n"));
    ck_assert_ptr_nonnull(strstr(out, "\n     3 "));
    ck_assert_ptr_null(strstr(out, "\n     4 "));
}
END_TEST

START_TEST(same_seed_same_output) {
    static char a[1 << 15], b[1 << 15], err[1 << 12];
    char args[4096];
    snprintf(args, sizeof args, "--model %s --json %s %s", model, dark, wide);
    ck_assert_int_eq(heed(args, a, sizeof a, err, sizeof err), 0);
    ck_assert_int_eq(heed(args, b, sizeof b, err, sizeof err), 0);
    ck_assert_str_eq(a, b);
    /* the image order does not change an image's result */
    snprintf(args, sizeof args, "--model %s --json %s", model, wide);
    ck_assert_int_eq(heed(args, b, sizeof b, err, sizeof err), 0);
    ck_assert_str_eq(strchr(a, '\n') + 1, b);
    /* another seed, another first location (l_0 ~ U[-1, 1]^2) */
    snprintf(args, sizeof args, "--model %s --json --seed 5 %s %s", model, dark, wide);
    ck_assert_int_eq(heed(args, b, sizeof b, err, sizeof err), 0);
    ck_assert_double_ne(num_after(a, "x"), num_after(b, "x"));
}
END_TEST

/* The canvas size the help text documents, for an image shown Wd x Hd. */
static void expected_size(int Wd, int Hd, int *W, int *H) {
    int z = (Hd - 8 * (S - 1)) / (S * P);
    if (z > 120 / P) z = 120 / P;
    if (z < 1) z = 1;
    int hs = S * P * z + 8 * (S - 1);
    *W = 12 + Wd + 24 + T * P * z + 8 * (T - 1) + 12;
    *H = 24 + (Hd > hs ? Hd : hs);
}

/* The overlay `name` in dir is 3 x W x H, the size expected_size gives
 * for an image shown Wd x Hd. */
static void assert_overlay_size(const char *name, int Wd, int Hd) {
    char path[400];
    int W, H;
    expected_size(Wd, Hd, &W, &H);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    heed_tensor o = {0};
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(o.c == 3 && o.w == W && o.h == H, "%s: %d x %d x %d, want 3 x %d x %d", name, o.c, o.w, o.h,
                  W, H);
    heed_tensor_free(&o);
}

START_TEST(overlay_has_the_documented_layout) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], path[400];
    snprintf(args, sizeof args, "--model %s --json --overlay %s %s %s", model, dir, dark, wide);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    char expect[400];
    snprintf(expect, sizeof expect, "\"overlay\": \"%s/dark-glimpse.png\"", dir);
    ck_assert_msg(strstr(out, expect), "%s", out);
    /* default zoom: the smallest integer making the image >= 240 px high */
    assert_overlay_size("dark-glimpse.png", 20 * 12, 20 * 12);
    assert_overlay_size("wide-glimpse.png", 50 * 8, 30 * 8);
    heed_tensor o = {0};
    /* The strip's first cell (step 0, finest scale) is the 4x4 block of the
     * dark image around the sensor's centre, zero outside, each pixel
     * enlarged z times. */
    glimpse_rec g[T];
    read_glimpses(out, strchr(out, '\n'), g);
    int W, H, Hd = 240, z = (Hd - 8 * (S - 1)) / (S * P);
    if (z > 120 / P) z = 120 / P;
    expected_size(240, Hd, &W, &H);
    int x0 = 12 + 240 + 24, y0 = (H - (S * P * z + 8 * (S - 1))) / 2;
    heed_tensor img = {0};
    ck_assert_int_eq(heed_image_load(dark, 0, &img), HEED_OK);
    snprintf(path, sizeof path, "%s/dark-glimpse.png", dir);
    ck_assert_int_eq(heed_image_load(path, 0, &o), HEED_OK);
    int cx = (int)nearbyint((g[0].x + 1) / 2 * IN), cy = (int)nearbyint((g[0].y + 1) / 2 * IN);
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            int r = cy - P / 2 + i, c = cx - P / 2 + j;
            float want = r >= 0 && r < IN && c >= 0 && c < IN ? img.data[r * IN + c] : 0.0f;
            for (int ch = 0; ch < 3; ch++) {
                float got = o.data[((size_t)ch * o.h + y0 + i * z + z / 2) * o.w + x0 + j * z + z / 2];
                ck_assert_msg(fabsf(got - want) < 0.6f / 255, "cell (%d, %d): %f, want %f", i, j, got, want);
            }
        }
    heed_tensor_free(&o), heed_tensor_free(&img);

    /* --zoom and --format */
    snprintf(args, sizeof args, "--model %s --overlay %s --zoom 2 --format jpg %s", model, dir, dark);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/dark-glimpse.jpg", dir);
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    expected_size(40, 40, &W, &H);
    ck_assert_int_eq(o.w, W);
    ck_assert_int_eq(o.h, H);
    heed_tensor_free(&o);
}
END_TEST

START_TEST(errors_are_one_clear_line) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], expect[400];
    /* a model without a ram layer */
    snprintf(args, sizeof args, "--model %s %s", cnn, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 1);
    snprintf(expect, sizeof expect, "heed glimpse: %s has no ram layer (use heed classify)\n", cnn);
    ck_assert_str_eq(err, expect);
    ck_assert_str_eq(out, "");
    /* a ram layer behind another layer: the message names it (said before
     * the model is freed: under the sanitizers this read freed memory) */
    char late[300];
    snprintf(late, sizeof late, "%s/late.heed", dir);
    save_model("input 1 20 20\nmaxpool k=2\n"
               "ram name=eyes glimpses=2 patch=2 scales=1 glimpse_hidden=4 loc_hidden=4 hidden=4 "
               "classes=3\n",
               late);
    snprintf(args, sizeof args, "--model %s %s", late, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 1);
    snprintf(expect, sizeof expect,
             "heed glimpse: %s: the ram layer eyes must read the input image directly, with at "
             "most 256 glimpses\n",
             late);
    ck_assert_str_eq(err, expect);
    /* a missing and a corrupt image fail on their own; the others still run */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.png", dir);
    tu_write_text(bad, "not a png");
    snprintf(args, sizeof args, "--model %s --json %s/nowhere.png %s %s", model, dir, bad, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 1);
    char *nl = strchr(err, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_msg(!strncmp(err, "heed glimpse: ", 14) && strstr(err, "nowhere.png") && strstr(err, "bad.png"),
                  "%s", err);
    ck_assert_ptr_nonnull(strchr(nl + 1, '\n'));
    ck_assert_ptr_eq(strchr(strchr(nl + 1, '\n') + 1, '\n'), NULL);
    ck_assert_ptr_nonnull(strstr(out, "dark.png"));
    /* usage errors exit 2 */
    ck_assert_int_eq(heed(dark, out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "--model MODEL is required"));
    snprintf(args, sizeof args, "--model %s", model);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    snprintf(args, sizeof args, "--model %s --zoom -1 %s", model, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    snprintf(args, sizeof args, "--model %s/none.heed %s", dir, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_ptr_nonnull(strstr(err, "none.heed"));
    /* --help documents every option and the layout */
    ck_assert_int_eq(heed("--help", out, sizeof out, err, sizeof err), 0);
    const char *words[] = {"--overlay", "--json", "--seed", "--zoom", "--top", "--format", "--invert",
                           "--colormap", "\"glimpses\"", "width 12 + Wd"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        ck_assert_msg(strstr(out, words[i]), "help lacks %s", words[i]);
}
END_TEST

/* A gray w x h PNG at dir/name, dark with a lighter middle row. */
static void save_strip(const char *name, int w, int h) {
    heed_tensor a;
    char path[400];
    ck_assert_int_eq(heed_tensor_alloc(&a, 1, 1, h, w), HEED_OK);
    heed_tensor_fill(&a, 0.1f);
    for (int j = 0; j < w; j++) a.data[(size_t)(h / 2) * w + j] = 0.8f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_int_eq(heed_image_save(path, &a, NULL), HEED_OK);
    heed_tensor_free(&a);
}

/* The default zoom only looked at the height: a 3000x1 image made a
 * 720520 x 264 overlay, a 65536x1 one failed. Now the image is shown within
 * 1280 x 720: a whole Z up to 1280 px wide, shrunk past it. */
START_TEST(default_zoom_keeps_the_image_within_1280_by_720) {
    static char out[1 << 15], err[1 << 12];
    char args[4096];
    save_strip("narrow.png", 700, 20); /* Zh = 12, Zw = floor(1280 / 700) = 1 */
    save_strip("long.png", 1400, 40);  /* Zh = 6, Zw = 1280 / 1400 */
    snprintf(args, sizeof args, "--model %s --overlay %s %s/narrow.png %s/long.png", model, dir, dir, dir);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    assert_overlay_size("narrow-glimpse.png", 700, 20);
    assert_overlay_size("long-glimpse.png", 1280, 37); /* 40 * 1280 / 1400 = 36.6 */
}
END_TEST

/* An explicit --zoom whose overlay would pass 8192 px on a side (--zoom 64
 * on 5000x5000 overflowed a tensor; --zoom 12 on 1000x1000 took 5.2 GB) is
 * refused with the size it would have been, image by image: the others
 * still run, and the exit status is 2. */
START_TEST(explicit_zoom_is_bounded) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], path[400], want[800];
    save_strip("line.png", 200, 1);
    snprintf(args, sizeof args, "--model %s --zoom 64 --overlay %s %s/line.png %s", model, dir, dir, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    /* shown 12800 x 64: z = (64 - 8) / 8 = 7, cells 28, strip 4 * 28 + 24 = 136 wide, 64 high;
     * 40.28 the largest zoom within 8192 (12 + 8056 + 24 + 88 + 12) */
    snprintf(want, sizeof want,
             "heed glimpse: %s/line.png: --zoom 64 would make a 12984 x 88 px overlay, over the limit "
             "of 8192 px on a side: give --zoom 40.28 or less, or 0 for the default\n",
             dir);
    ck_assert_str_eq(err, want);
    snprintf(path, sizeof path, "%s/line-glimpse.png", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/dark-glimpse.png", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_ptr_null(strstr(out, "line.png"));
    ck_assert_ptr_nonnull(strstr(out, "dark.png"));
    /* the largest that fits is taken */
    snprintf(args, sizeof args, "--model %s --zoom 40.28 --overlay %s %s/line.png", model, dir, dir);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    heed_tensor o = {0};
    snprintf(path, sizeof path, "%s/line-glimpse.png", dir);
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(o.w, 8192);
    heed_tensor_free(&o);
}
END_TEST

/* `--overlay v2.png v2.png` replaced the image with its overlay (exit 0);
 * so did a folder where an image's overlay is another input. Refused
 * before any work, the images left as they were. */
START_TEST(overlay_never_replaces_an_input) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], want[1200], v2[400], dg[400];
    size_t n0, n1, n2;
    unsigned char *orig = tu_read_bytes(dark, &n0);
    ck_assert_ptr_nonnull(orig);
    snprintf(v2, sizeof v2, "%s/v2.png", dir);
    snprintf(dg, sizeof dg, "%s/dark-glimpse.png", dir);
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(i ? dg : v2, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite(orig, 1, n0, f), n0);
        fclose(f);
    }
    snprintf(args, sizeof args, "--model %s --overlay %s %s", model, v2, v2);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    snprintf(want, sizeof want,
             "heed glimpse: --overlay %s is the input image %s: the overlay would replace it; give "
             "another file name\n",
             v2, v2);
    ck_assert_str_eq(err, want);
    ck_assert_str_eq(out, "");
    snprintf(args, sizeof args, "--model %s --overlay %s %s %s", model, dir, dark, dg);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    snprintf(want, sizeof want,
             "heed glimpse: the overlay of %s, %s, would replace the input image %s: give another "
             "--overlay folder\n",
             dark, dg, dg);
    ck_assert_str_eq(err, want);
    unsigned char *a = tu_read_bytes(v2, &n1), *b = tu_read_bytes(dg, &n2);
    ck_assert(a && b && n1 == n0 && n2 == n0 && !memcmp(a, orig, n0) && !memcmp(b, orig, n0));
    free(a), free(b), free(orig);
}
END_TEST

/* --zoom, --format and --colormap without --overlay were ignored: refused. */
START_TEST(overlay_options_need_overlay) {
    static char out[1 << 15], err[1 << 12];
    char args[4096];
    snprintf(args, sizeof args, "--model %s --zoom 2 --format jpg --colormap viridis --seed 3 %s", model, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed glimpse: --format, --zoom and --colormap apply only to overlays, and no "
                          "--overlay DIR|FILE was given\n");
    ck_assert_str_eq(out, "");
    snprintf(args, sizeof args, "--model %s --zoom=0 %s", model, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed glimpse: --zoom applies only to overlays, and no --overlay DIR|FILE was given\n");
    /* with --overlay they are fine */
    snprintf(args, sizeof args, "--model %s --overlay %s/g.png --zoom 2 %s", model, dir, dark);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "--model %s --overlay %s/x.webp %s", model, dir, dark);
    ck_assert_int_eq(heed(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "heed cannot write .webp files"), "%s", err);
}
END_TEST

/* The header comment's coordinates, where rounding and the letterbox are
 * not trivial. A model on 21x21 inputs whose location network is all zeros
 * puts every step after the first at the policy mean tanh(0) = 0: the
 * centre round(0.5 * 21) = round(10.5) = 10 (half to even, as the sensor).
 * A 50x29 image is letterboxed to 21x12 (lround(29 * 0.42) = 12) at row
 * (21 - 12) / 2 = 4, so px = 10 * 50 / 21 = 23.81 and py = (10 - 4) * 29 / 12
 * = 14.50: each axis by its own scale. */
START_TEST(centres_round_half_to_even_and_map_each_axis_by_its_own_scale) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], odd[300], img[2][300];
    snprintf(odd, sizeof odd, "%s/odd.heed", dir);
    heed_net *net;
    heed_model *m;
    ck_assert_msg(heed_net_parse(&net, "input 1 21 21\nram name=r glimpses=3 patch=3 scales=1 glimpse_hidden=4 "
                                 "loc_hidden=4 hidden=4 classes=3\n", "odd", 7) == HEED_OK, "%s", heed_last_error());
    const char *zero[] = {"r.fc_loc.weight", "r.fc_loc.bias"};
    for (int i = 0; i < 2; i++) {
        heed_param *it = heed_params_find(&net->params, zero[i]);
        ck_assert_ptr_nonnull(it);
        memset(net->params.values + it->offset, 0, it->count * sizeof(float));
    }
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"a", "b", "c"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    m->meta.input_mean = 0.0f, m->meta.input_std = 1.0f, m->meta.dark_background = 1;
    ck_assert_msg(heed_model_save(m, odd) == HEED_OK, "%s", heed_last_error());
    heed_model_free(m);
    const int size[2][2] = {{21, 21}, {50, 29}}; /* w, h */
    const double want[2][2] = {{10.0, 10.0}, {10.0 * 50 / 21, (10.0 - 4) * 29 / 12}};
    for (int i = 0; i < 2; i++) {
        heed_tensor a;
        ck_assert_int_eq(heed_tensor_alloc(&a, 1, 1, size[i][1], size[i][0]), HEED_OK);
        heed_tensor_fill(&a, 0.1f);
        snprintf(img[i], sizeof img[i], "%s/odd%d.png", dir, i);
        ck_assert_int_eq(heed_image_save(img[i], &a, NULL), HEED_OK);
        heed_tensor_free(&a);
    }
    snprintf(args, sizeof args, "--model %s --json %s %s", odd, img[0], img[1]);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    const char *line = out;
    for (int i = 0; i < 2; i++) {
        const char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        const char *p = strstr(line, "{\"step\": 1");
        ck_assert(p && p < end);
        for (int t = 1; t < 3; t++, p = strstr(p + 1, "{\"step\": ")) {
            ck_assert(p && p < end);
            ck_assert_double_eq(num_after(p, "x"), 0.0);
            ck_assert_double_eq(num_after(p, "y"), 0.0);
            ck_assert_msg(fabs(num_after(p, "px") - want[i][0]) < 0.006 && fabs(num_after(p, "py") - want[i][1]) < 0.006,
                          "image %d step %d: px %g, py %g, want %.2f, %.2f", i, t, num_after(p, "px"),
                          num_after(p, "py"), want[i][0], want[i][1]);
        }
        line = end + 1;
    }
}
END_TEST

/* The default zoom for an image under 240 pixels high is the smallest whole
 * number reaching 240: ceil(240 / 50) = 5 for a 70x50 image (Zw =
 * floor(1280 / 70) = 18), shown 350 x 250. And the strip's patch zoom
 * stops at floor(120 / P) = 30: --zoom 13 shows the 20x20 image 260 high,
 * where (260 - 8) / 8 = 31 would pass it. */
START_TEST(zooms_round_as_documented) {
    static char out[1 << 15], err[1 << 12];
    char args[4096];
    save_strip("mid.png", 70, 50);
    snprintf(args, sizeof args, "--model %s --overlay %s %s/mid.png", model, dir, dir);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "--model %s --overlay %s/big.png --zoom 13 %s", model, dir, dark);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    assert_overlay_size("mid-glimpse.png", 350, 250);
    assert_overlay_size("big.png", 260, 260);
}
END_TEST

/* The default layout of the dark 20x20 image (shown 240 x 240, z = 29,
 * cells 116, canvas 776 x 264): both panels centred vertically, so the
 * image starts at (12, 12), each pixel a 12x12 block; and step t's cells
 * framed in --colormap's colour at 0.1 + 0.8 t / (T - 1), the first step
 * 0.1 and the last 0.9. A block's centre and a frame's outer corner are
 * compared (boxes drawn over the image may hide a few blocks). */
START_TEST(overlay_places_the_image_and_colours_the_steps) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], path[400];
    snprintf(args, sizeof args, "--model %s --overlay %s --colormap viridis %s", model, dir, dark);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    heed_tensor o = {0}, img = {0};
    snprintf(path, sizeof path, "%s/dark-glimpse.png", dir);
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(heed_image_load(dark, 0, &img), HEED_OK);
    ck_assert(o.w == 776 && o.h == 264);
    const size_t plane = (size_t)o.w * o.h;
    for (int row = 0; row < IN; row += IN - 1) {
        int same = 0;
        for (int j = 0; j < IN; j++) {
            const float got = o.data[(size_t)(12 + row * 12 + 6) * o.w + 12 + j * 12 + 6];
            same += fabsf(got - img.data[row * IN + j]) < 0.6f / 255;
        }
        ck_assert_msg(same >= 12, "image row %d: %d of %d blocks where the layout puts them", row, same, IN);
    }
    const int cell = 116, x0 = 12 + 240 + 24, y0 = 12;
    for (int t = 0; t < T; t++) {
        float rgb[3];
        heed_colormap_rgb(HEED_CMAP_VIRIDIS, 0.1f + 0.8f * (float)t / (T - 1), rgb);
        const size_t at = (size_t)(y0 - 2) * o.w + x0 + t * (cell + 8) - 2;
        for (int c = 0; c < 3; c++)
            ck_assert_msg(fabsf(o.data[c * plane + at] - rgb[c]) < 0.6f / 255, "step %d's frame, channel %d: %g, want %g",
                          t, c, (double)o.data[c * plane + at], (double)rgb[c]);
    }
    heed_tensor_free(&o), heed_tensor_free(&img);
}
END_TEST

/* The strip shows each patch as the network saw it, normalisation undone
 * (x * std + mean), and is centred vertically. A copy of the model saved
 * with mean 0.5 and std 0.25 (its input is then (v - 0.5) / 0.25, within
 * [-2, 2]) shows the same pixels as the original. At --zoom 13 the 20x20
 * image is shown 260 high, cells are 120 (z 30), the strip 248 high on a
 * canvas 284 high: it starts at row (284 - 248) / 2 = 18, not at the
 * margin, and its frames' top edge is at row 16. */
START_TEST(strip_is_centred_and_undoes_the_normalisation) {
    static char out[1 << 15], err[1 << 12];
    char args[4096], path[400], norm[300];
    snprintf(norm, sizeof norm, "%s/norm.heed", dir);
    heed_model *m;
    ck_assert_msg(heed_model_load(&m, model) == HEED_OK, "%s", heed_last_error());
    m->meta.input_mean = 0.5f, m->meta.input_std = 0.25f;
    ck_assert_msg(heed_model_save(m, norm) == HEED_OK, "%s", heed_last_error());
    heed_model_free(m);
    snprintf(path, sizeof path, "%s/norm.png", dir);
    snprintf(args, sizeof args, "--model %s --json --overlay %s --zoom 13 %s", norm, path, dark);
    ck_assert_msg(heed(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    glimpse_rec g[T];
    read_glimpses(out, strchr(out, '\n'), g);
    heed_tensor o = {0}, img = {0};
    ck_assert_msg(heed_image_load(path, 0, &o) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(heed_image_load(dark, 0, &img), HEED_OK);
    const int z = 30, x0 = 12 + 260 + 24, y0 = 18;
    ck_assert(o.w == 12 + 260 + 24 + T * P * z + 8 * (T - 1) + 12 && o.h == 284);
    const size_t plane = (size_t)o.w * o.h;
    float rgb[3];
    heed_colormap_rgb(HEED_CMAP_TURBO, 0.1f, rgb);
    for (int c = 0; c < 3; c++)
        ck_assert_msg(fabsf(o.data[c * plane + (size_t)(y0 - 2) * o.w + x0 + 50] - rgb[c]) < 0.6f / 255,
                      "step 0's frame is not at row %d", y0 - 2);
    int cx = (int)nearbyint((g[0].x + 1) / 2 * IN), cy = (int)nearbyint((g[0].y + 1) / 2 * IN);
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            int r = cy - P / 2 + i, c = cx - P / 2 + j;
            /* outside the image the input is 0, shown as 0 * 0.25 + 0.5 */
            float want = r >= 0 && r < IN && c >= 0 && c < IN ? img.data[r * IN + c] : 0.5f;
            float got = o.data[(size_t)(y0 + i * z + z / 2) * o.w + x0 + j * z + z / 2];
            ck_assert_msg(fabsf(got - want) < 1.1f / 255, "cell (%d, %d): %f, want %f", i, j, got, want);
        }
    heed_tensor_free(&o), heed_tensor_free(&img);
}
END_TEST

/* The "top" array of the JSON in s from `from` on (its first), into out. */
static void top_array(const char *from, char *out, size_t size) {
    const char *a = strstr(from, "\"top\": ["), *b = a ? strchr(a, ']') : NULL;
    ck_assert_msg(a && b, "no top in %s", from);
    snprintf(out, size, "%.*s", (int)(b - a + 1), a);
}

/* heed classify drew the RAM layer's first location from wherever its
 * stream stood, so it disagreed with heed glimpse on the same image; with
 * --seed (default 0, as glimpse's) each image restarts the stream. */
START_TEST(classify_agrees_with_glimpse) {
    static char c[1 << 15], g[1 << 15], err[1 << 12];
    char args[4096], ca[2048], ga[2048];
    const char *seeds[] = {"", "--seed 0", "--seed 7"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "classify --model %s --json %s %s %s", model, seeds[i], dark, wide);
        ck_assert_msg(tu_run_heed(dir, NULL, args, c, sizeof c, err, sizeof err) == 0, "%s", err);
        snprintf(args, sizeof args, "--model %s --json %s %s %s", model, seeds[i], dark, wide);
        ck_assert_msg(heed(args, g, sizeof g, err, sizeof err) == 0, "%s", err);
        const char *cp = c, *gp = g;
        for (int img = 0; img < 2; img++) {
            top_array(cp, ca, sizeof ca);
            top_array(gp, ga, sizeof ga);
            ck_assert_msg(!strcmp(ca, ga), "seed '%s', image %d: classify %s, glimpse %s", seeds[i], img, ca, ga);
            cp = strstr(cp, ca) + strlen(ca), gp = strstr(gp, ga) + strlen(ga);
        }
    }
    ck_assert_int_eq(tu_run_heed(dir, NULL, "classify --help", c, sizeof c, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(c, "--seed S"));
    ck_assert_ptr_nonnull(strstr(c, "models ignore it")); /* "other" may end the line before */
    snprintf(args, sizeof args, "classify --model %s --seed -1 %s", model, dark);
    ck_assert_int_eq(tu_run_heed(dir, NULL, args, c, sizeof c, err, sizeof err), 2);
    ck_assert_str_eq(err, "heed classify: --seed must not be negative\n");
}
END_TEST

Suite *heed_suite_glimpse(void) {
    Suite *s = suite_create("glimpse");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_lines_with_glimpses_where_the_sensor_looked);
    tcase_add_test(tc, same_seed_same_output);
    tcase_add_test(tc, overlay_has_the_documented_layout);
    tcase_add_test(tc, errors_are_one_clear_line);
    tcase_add_test(tc, default_zoom_keeps_the_image_within_1280_by_720);
    tcase_add_test(tc, explicit_zoom_is_bounded);
    tcase_add_test(tc, overlay_never_replaces_an_input);
    tcase_add_test(tc, overlay_options_need_overlay);
    tcase_add_test(tc, classify_agrees_with_glimpse);
    tcase_add_test(tc, centres_round_half_to_even_and_map_each_axis_by_its_own_scale);
    tcase_add_test(tc, zooms_round_as_documented);
    tcase_add_test(tc, overlay_places_the_image_and_colours_the_steps);
    tcase_add_test(tc, strip_is_centred_and_undoes_the_normalisation);
    suite_add_tcase(s, tc);
    return s;
}
