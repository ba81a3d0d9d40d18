/* check_data.c -- datasets: IDX files written and read back (plain and
 * gzipped), corrupt IDX files refused, the installed Fashion-MNIST, a
 * folder dataset of PNG/JPEG files, batches and augmentation. Fixture files
 * go to a fresh directory under /tmp that each test removes. */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "image.h"
#include "omp_impl.h"
#include "testutil.h"

/* ---- temporary directories ---------------------------------------------- */

static void make_tmpdir(char *dir) {
    strcpy(dir, "/tmp/heed-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dp = opendir(path);
        struct dirent *e;
        char sub[1024];
        while (dp && (e = readdir(dp))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        if (dp) closedir(dp);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static const char *join(char *buf, const char *dir, const char *name) {
    int n = snprintf(buf, 1024, "%s/%s", dir, name);
    ck_assert(n > 0 && n < 1024);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static long file_size(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

/* ---- IDX fixtures ---------------------------------------------------------- */

enum { FX_COUNT = 7, FX_H = 4, FX_W = 3 };

/* A small 1-channel dataset whose pixels are exact multiples of 1/255 (so
 * they survive the byte round trip bit for bit) and labels cycle 0..9. */
typedef struct fixture {
    float images[FX_COUNT * FX_H * FX_W];
    int labels[FX_COUNT];
    heed_dataset d;
} fixture;

static void fixture_make(fixture *f, int count) {
    for (int i = 0; i < FX_COUNT * FX_H * FX_W; i++) f->images[i] = (float)((i * 37) % 256) / 255.0f;
    for (int i = 0; i < FX_COUNT; i++) f->labels[i] = (3 * i + 9) % 10;
    f->d = (heed_dataset){.count = count, .c = 1, .h = FX_H, .w = FX_W, .classes = 10,
                          .images = f->images, .labels = f->labels};
}

/* Writes dir/<split>-images-idx3-ubyte<ext> and the labels file. */
static void write_split(const char *dir, const char *split, const char *ext,
                        const heed_dataset *images, const heed_dataset *labels) {
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte%s", dir, split, ext);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte%s", dir, split, ext);
    ck_assert_int_eq(heed_idx_write(images, ip, NULL), HEED_OK);
    ck_assert_int_eq(heed_idx_write(labels, NULL, lp), HEED_OK);
}

START_TEST(idx_round_trip_plain_and_gzipped) {
    char dir[64], path[1024];
    make_tmpdir(dir);
    fixture f;
    fixture_make(&f, FX_COUNT);
    write_split(dir, "train", "", &f.d, &f.d);
    write_split(dir, "t10k", ".gz", &f.d, &f.d);
    /* The plain file is the documented layout byte for byte; the other is
     * really gzipped. */
    FILE *fp = fopen(join(path, dir, "train-images-idx3-ubyte"), "rb");
    unsigned char head[16];
    ck_assert_uint_eq(fread(head, 1, 16, fp), 16);
    fclose(fp);
    const unsigned char want[16] = {0, 0, 8, 3, 0, 0, 0, FX_COUNT, 0, 0, 0, FX_H, 0, 0, 0, FX_W};
    ck_assert_mem_eq(head, want, 16);
    ck_assert_int_eq(file_size(path), 16 + FX_COUNT * FX_H * FX_W);
    ck_assert_int_eq(file_size(join(path, dir, "train-labels-idx1-ubyte")), 8 + FX_COUNT);
    fp = fopen(join(path, dir, "t10k-labels-idx1-ubyte.gz"), "rb");
    ck_assert_uint_eq(fread(head, 1, 2, fp), 2);
    fclose(fp);
    ck_assert_int_eq(head[0], 0x1f);
    ck_assert_int_eq(head[1], 0x8b);

    for (int train = 0; train < 2; train++) {
        heed_dataset d;
        ck_assert_int_eq(heed_fmnist_load(&d, dir, train, 0), HEED_OK);
        ck_assert_int_eq(d.count, FX_COUNT);
        ck_assert_int_eq(d.c, 1);
        ck_assert_int_eq(d.h, FX_H);
        ck_assert_int_eq(d.w, FX_W);
        ck_assert_int_eq(d.classes, 10);
        ck_assert_mem_eq(d.images, f.images, sizeof f.images);
        ck_assert_mem_eq(d.labels, f.labels, sizeof f.labels);
        ck_assert_str_eq(d.class_names[0], "T-shirt/top");
        ck_assert_str_eq(d.class_names[9], "Ankle boot");
        heed_dataset_free(&d);
        ck_assert_ptr_null(d.images);
    }
    heed_dataset d;
    ck_assert_int_eq(heed_fmnist_load(&d, dir, 0, 3), HEED_OK);
    ck_assert_int_eq(d.count, 3);
    ck_assert_mem_eq(d.images, f.images, 3 * FX_H * FX_W * sizeof(float));
    ck_assert_int_eq(d.labels[2], f.labels[2]);
    heed_dataset_free(&d);
    ck_assert_int_eq(heed_fmnist_load(&d, dir, 1, 100), HEED_OK); /* more than there are */
    ck_assert_int_eq(d.count, FX_COUNT);
    heed_dataset_free(&d);

    /* Writing refuses what IDX cannot hold, leaving no file. */
    heed_dataset rgb = f.d;
    rgb.c = 3;
    ck_assert_int_eq(heed_idx_write(&rgb, join(path, dir, "rgb"), NULL), HEED_ERR_ARG);
    f.labels[1] = 300;
    ck_assert_int_eq(heed_idx_write(&f.d, NULL, join(path, dir, "big")), HEED_ERR_ARG);
    ck_assert_int_eq(access(path, F_OK), -1);
    f.labels[1] = 256; /* the first that is not a byte */
    ck_assert_int_eq(heed_idx_write(&f.d, NULL, join(path, dir, "big")), HEED_ERR_ARG);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(heed_idx_write(&f.d, NULL, "/nonexistent-dir/x.gz"), HEED_ERR_ARG);
    f.labels[1] = 1;
    ck_assert_int_eq(heed_idx_write(&f.d, NULL, "/nonexistent-dir/x.gz"), HEED_ERR_IO);
    remove_tree(dir);
}
END_TEST

/* Writing turns a pixel into the nearest byte, round(255 clamp(v, 0, 1)),
 * as an 8-bit image format does: every code k / 255 back to k, values
 * between codes to the nearer one, values outside [0, 1] (and NaN) to the
 * ends. The bytes are read from the plain file, after its 16-byte header. */
START_TEST(idx_write_rounds_pixels_to_the_nearest_code) {
    char dir[64], path[1024];
    make_tmpdir(dir);
    enum { CODES = 256, ODD = 7 };
    float images[CODES + ODD];
    for (int k = 0; k < CODES; k++) images[k] = (float)k / 255.0f;
    const float odd[ODD] = {0.5f, 0.999f, 0.0019f, 0.25f, 1.5f, -1.0f, NAN};
    const unsigned char want_odd[ODD] = {128, 255, 0, 64, 255, 0, 0}; /* 127.5, 254.7, 0.48, 63.75 */
    memcpy(images + CODES, odd, sizeof odd);
    const heed_dataset d = {.count = 1, .c = 1, .h = 1, .w = CODES + ODD, .images = images};
    ck_assert_int_eq(heed_idx_write(&d, join(path, dir, "px"), NULL), HEED_OK);
    unsigned char got[16 + CODES + ODD];
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fread(got, 1, sizeof got, fp), sizeof got);
    fclose(fp);
    for (int k = 0; k < CODES; k++) ck_assert_int_eq(got[16 + k], k);
    for (int i = 0; i < ODD; i++) ck_assert_msg(got[16 + CODES + i] == want_odd[i], "value %g: %d, want %d",
                                               (double)odd[i], got[16 + CODES + i], want_odd[i]);
    remove_tree(dir);
}
END_TEST

/* Expects loading the training split of dir to fail with `status`, the
 * message naming `file` (a substring). */
static void expect_load_fails(const char *dir, heed_status status, const char *file,
                              const char *what) {
    heed_dataset d = {.count = 123};
    ck_assert_int_eq(heed_fmnist_load(&d, dir, 1, 0), status);
    ck_assert_msg(strstr(heed_last_error(), file), "%s: message '%s' does not name %s", what,
                  heed_last_error(), file);
    ck_assert_ptr_null(d.images);
    ck_assert_int_eq(d.count, 0);
}

START_TEST(corrupt_idx_files_are_refused) {
    char root[64], dir[1024], path[1024];
    make_tmpdir(root);
    fixture f, g;
    fixture_make(&f, FX_COUNT);
    fixture_make(&g, FX_COUNT - 1);
    int n = 0;
#define NEXT_DIR() (snprintf(dir, sizeof dir, "%s/case%d", root, n++), mkdir(dir, 0700))

    NEXT_DIR(); /* nothing there */
    expect_load_fails(dir, HEED_ERR_IO, "train-images-idx3-ubyte", "missing");

    NEXT_DIR(); /* images with the labels' magic */
    write_split(dir, "train", "", &f.d, &f.d);
    const unsigned char bad_magic[] = {0, 0, 8, 1, 0, 0, 0, 1, 0};
    write_bytes(join(path, dir, "train-images-idx3-ubyte"), bad_magic, sizeof bad_magic);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "bad image magic");
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "magic"));

    NEXT_DIR(); /* labels with a wrong magic */
    write_split(dir, "train", ".gz", &f.d, &f.d);
    const unsigned char bad_lmagic[] = {0, 0, 9, 1, 0, 0, 0, FX_COUNT, 1, 2, 3, 4, 5, 6, 7};
    write_bytes(join(path, dir, "train-labels-idx1-ubyte.gz"), bad_lmagic, sizeof bad_lmagic);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-labels-idx1-ubyte.gz", "bad label magic");

    NEXT_DIR(); /* a zero dimension */
    write_split(dir, "train", "", &f.d, &f.d);
    const unsigned char zero_rows[] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3};
    write_bytes(join(path, dir, "train-images-idx3-ubyte"), zero_rows, sizeof zero_rows);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "zero rows");
    /* the same with one label to match, so that only the zero can fail */
    const unsigned char one_label[] = {0, 0, 8, 1, 0, 0, 0, 1, 4};
    write_bytes(join(path, dir, "train-labels-idx1-ubyte"), one_label, sizeof one_label);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "zero rows, one label");
    ck_assert_msg(strstr(heed_last_error(), "dimension 1 of the header is 0"), "%s", heed_last_error());

    NEXT_DIR(); /* no items at all: zero images and zero labels */
    const unsigned char no_images[] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    const unsigned char no_labels[] = {0, 0, 8, 1, 0, 0, 0, 0};
    write_bytes(join(path, dir, "train-images-idx3-ubyte"), no_images, sizeof no_images);
    write_bytes(join(path, dir, "train-labels-idx1-ubyte"), no_labels, sizeof no_labels);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "no items");
    ck_assert_msg(strstr(heed_last_error(), "dimension 0 of the header is 0"), "%s", heed_last_error());

    NEXT_DIR(); /* plain pixels cut short */
    write_split(dir, "train", "", &f.d, &f.d);
    join(path, dir, "train-images-idx3-ubyte");
    ck_assert_int_eq(truncate(path, file_size(path) - 5), 0);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "truncated plain");
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "truncated"));

    NEXT_DIR(); /* a header claiming 2 million 28 x 28 images over a few bytes */
    write_split(dir, "train", "", &f.d, &f.d);
    const unsigned char huge[] = {0, 0, 8, 3, 0, 0x1e, 0x84, 0x80, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2};
    const unsigned char huge_labels[] = {0, 0, 8, 1, 0, 0x1e, 0x84, 0x80, 1, 2};
    write_bytes(join(path, dir, "train-images-idx3-ubyte"), huge, sizeof huge);
    write_bytes(join(path, dir, "train-labels-idx1-ubyte"), huge_labels, sizeof huge_labels);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "huge header");

    NEXT_DIR(); /* a header cut short */
    write_split(dir, "train", "", &f.d, &f.d);
    ck_assert_int_eq(truncate(join(path, dir, "train-labels-idx1-ubyte"), 6), 0);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-labels-idx1-ubyte", "truncated header");
    ck_assert_msg(strstr(heed_last_error(), "the file ends 6 bytes into the header of 8 bytes"), "%s",
                  heed_last_error());

    NEXT_DIR(); /* a gzip stream cut short (trailer and some data lost) */
    write_split(dir, "train", ".gz", &f.d, &f.d);
    join(path, dir, "train-images-idx3-ubyte.gz");
    ck_assert_int_eq(truncate(path, file_size(path) - 12), 0);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte.gz", "truncated gzip");

    NEXT_DIR(); /* a gzip stream with a damaged CRC */
    write_split(dir, "train", ".gz", &f.d, &f.d);
    join(path, dir, "train-labels-idx1-ubyte.gz");
    {
        FILE *fp = fopen(path, "r+b");
        fseek(fp, -8, SEEK_END); /* the CRC32 of the gzip trailer */
        int c = fgetc(fp);
        fseek(fp, -8, SEEK_END);
        fputc(c ^ 0xff, fp);
        fclose(fp);
    }
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-labels-idx1-ubyte.gz", "bad crc");

    NEXT_DIR(); /* longer than declared */
    write_split(dir, "train", "", &f.d, &f.d);
    {
        FILE *fp = fopen(join(path, dir, "train-images-idx3-ubyte"), "ab");
        fputc(7, fp);
        fclose(fp);
    }
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-images-idx3-ubyte", "trailing data");

    NEXT_DIR(); /* 7 images, 6 labels */
    write_split(dir, "train", ".gz", &f.d, &g.d);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-labels-idx1-ubyte.gz", "count mismatch");

    NEXT_DIR(); /* 6 images, 7 labels */
    write_split(dir, "train", "", &g.d, &f.d);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-labels-idx1-ubyte", "count mismatch, labels over");
    ck_assert_msg(strstr(heed_last_error(), "holds 7 labels but"), "%s", heed_last_error());

    NEXT_DIR(); /* a label of 10, even beyond the limit */
    f.labels[FX_COUNT - 1] = 10;
    write_split(dir, "train", "", &f.d, &f.d);
    expect_load_fails(dir, HEED_ERR_FORMAT, "train-labels-idx1-ubyte", "label 10");
    heed_dataset d;
    ck_assert_int_eq(heed_fmnist_load(&d, dir, 1, 2), HEED_ERR_FORMAT);
#undef NEXT_DIR
    remove_tree(root);
}
END_TEST

/* A truncated file whose data is longer than one read (1 MiB) says how
 * far into the whole of its pixels or labels it ends, not how far into the
 * read that found the end: 1.2 million 1 x 1 images, one file of the pair
 * cut 1.1 million bytes into its data, written plain and gzipped (a whole
 * gzip stream of the cut data, so that only the length is wrong). */
enum { BIG_COUNT = 1200000, BIG_CUT = 1100000 };

START_TEST(truncated_idx_data_says_where_it_ends) {
    char root[64], dir[1024], path[1024];
    make_tmpdir(root);
    float *images = malloc(BIG_COUNT * sizeof *images);
    int *labels = malloc(BIG_COUNT * sizeof *labels);
    ck_assert(images && labels);
    for (int i = 0; i < BIG_COUNT; i++) images[i] = (float)(i % 256) / 255.0f, labels[i] = i % 10;
    const heed_dataset big = {.count = BIG_COUNT, .c = 1, .h = 1, .w = 1, .classes = 10,
                              .images = images, .labels = labels};
    const struct {
        const char *file, *what;
        long header;
    } cut[] = {{"train-images-idx3-ubyte", "the pixels", 16}, {"train-labels-idx1-ubyte", "the labels", 8}};
    const char *const ext[] = {"", ".gz"};
    int n = 0;
    for (int e = 0; e < 2; e++)
        for (int c = 0; c < 2; c++) {
            snprintf(dir, sizeof dir, "%s/case%d", root, n++);
            ck_assert_int_eq(mkdir(dir, 0700), 0);
            write_split(dir, "train", "", &big, &big);
            /* the cut file's bytes, rewritten with its extension */
            const long size = cut[c].header + BIG_CUT;
            unsigned char *bytes = malloc((size_t)size);
            FILE *fp = fopen(join(path, dir, cut[c].file), "rb");
            ck_assert_ptr_nonnull(fp);
            ck_assert_uint_eq(fread(bytes, 1, (size_t)size, fp), (size_t)size);
            fclose(fp);
            ck_assert_int_eq(unlink(path), 0);
            char name[1024];
            snprintf(name, sizeof name, "%s%s", cut[c].file, ext[e]);
            join(path, dir, name);
            if (e == 0) {
                write_bytes(path, bytes, (size_t)size);
            } else {
                gzFile gz = gzopen(path, "wb6");
                ck_assert_ptr_nonnull(gz);
                ck_assert_int_eq(gzwrite(gz, bytes, (unsigned)size), (int)size);
                ck_assert_int_eq(gzclose(gz), Z_OK);
            }
            free(bytes);
            expect_load_fails(dir, HEED_ERR_FORMAT, name, name);
            char want[128];
            snprintf(want, sizeof want, "truncated: the file ends %d bytes into %s of %d bytes",
                     BIG_CUT, cut[c].what, BIG_COUNT);
            ck_assert_msg(strstr(heed_last_error(), want), "%s: got '%s', want '%s'", name,
                          heed_last_error(), want);
        }
    free(images), free(labels);
    remove_tree(root);
}
END_TEST

START_TEST(installed_fashion_mnist) {
    if (access(HEED_FMNIST_DIR, R_OK) != 0) {
        printf("data: %s is missing: Fashion-MNIST checks skipped (make deps installs it)\n",
               HEED_FMNIST_DIR);
        return;
    }
    heed_dataset test;
    ck_assert_int_eq(heed_fmnist_load(&test, NULL, 0, 0), HEED_OK);
    ck_assert_int_eq(test.count, 10000);
    ck_assert_int_eq(test.c, 1);
    ck_assert_int_eq(test.h, 28);
    ck_assert_int_eq(test.w, 28);
    ck_assert_int_eq(test.labels[0], 9);
    ck_assert_str_eq(test.class_names[test.labels[0]], "Ankle boot");
    int per_class[10] = {0};
    for (int i = 0; i < test.count; i++) per_class[test.labels[i]]++;
    for (int k = 0; k < 10; k++) ck_assert_int_eq(per_class[k], 1000);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < (size_t)test.count * 784; i++)
        lo = fminf(lo, test.images[i]), hi = fmaxf(hi, test.images[i]);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 1.0f);
    heed_dataset first;
    ck_assert_int_eq(heed_fmnist_load(&first, NULL, 0, 5), HEED_OK);
    ck_assert_int_eq(first.count, 5);
    ck_assert_mem_eq(first.images, test.images, 5 * 784 * sizeof(float));
    heed_dataset_free(&first);
    heed_dataset_free(&test);

    heed_dataset train;
    ck_assert_int_eq(heed_fmnist_load(&train, NULL, 1, 0), HEED_OK);
    ck_assert_int_eq(train.count, 60000);
    ck_assert_int_eq(train.h, 28);
    memset(per_class, 0, sizeof per_class);
    for (int i = 0; i < train.count; i++) per_class[train.labels[i]]++;
    for (int k = 0; k < 10; k++) ck_assert_int_eq(per_class[k], 6000);
    heed_dataset_free(&train);
}
END_TEST

/* ---- folder datasets ------------------------------------------------------ */

enum { IM_H = 4, IM_W = 6 };

/* Saves a (1, c, IM_H, IM_W) image whose values are exact bytes: a
 * pattern seeded by `tag`, or one colour when rgb is given. */
static void save_image(const char *path, int c, int tag, const int *rgb) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, c, IM_H, IM_W), HEED_OK);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < IM_H * IM_W; i++)
            t.data[ch * IM_H * IM_W + i] =
                (float)(rgb ? rgb[ch] : (tag * 40 + ch * 70 + i * 9) % 256) / 255.0f;
    ck_assert_int_eq(heed_image_save(path, &t, &(heed_image_save_opts){.jpeg_quality = 100}),
                     HEED_OK);
    heed_tensor_free(&t);
}

START_TEST(folder_of_images) {
    char root[64], path[1024];
    make_tmpdir(root);
    const char *dirs[] = {"dog", "ant", "cat", ".hidden"};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(mkdir(join(path, root, dirs[i]), 0700), 0);
    const int orange[3] = {200, 100, 50}, grey[3] = {128, 128, 128};
    save_image(join(path, root, "cat/b.png"), 3, 1, NULL);
    save_image(join(path, root, "cat/a.png"), 3, 0, orange);
    save_image(join(path, root, "ant/one.png"), 3, 2, NULL);
    save_image(join(path, root, "ant/two.jpg"), 3, 0, grey);
    save_image(join(path, root, "dog/x.PNG"), 1, 3, NULL); /* gray: replicated to RGB */
    save_image(join(path, root, ".hidden/h.png"), 3, 4, NULL);
    write_bytes(join(path, root, "cat/notes.txt"), "not an image", 12);
    write_bytes(join(path, root, "readme.png"), "a file, not a class", 19);

    heed_dataset d;
    ck_assert_int_eq(heed_folder_load(&d, root, 3, IM_H, IM_W), HEED_OK);
    ck_assert_int_eq(d.classes, 3);
    ck_assert_str_eq(d.class_names[0], "ant");
    ck_assert_str_eq(d.class_names[1], "cat");
    ck_assert_str_eq(d.class_names[2], "dog");
    ck_assert_int_eq(d.count, 5);
    const int want_labels[5] = {0, 0, 1, 1, 2};
    ck_assert_mem_eq(d.labels, want_labels, sizeof want_labels);
    const size_t plane = IM_H * IM_W, item = 3 * plane;
    /* ant/one.png: the tag-2 pattern, bit for bit. */
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < plane; i++)
            ck_assert_float_eq(d.images[ch * plane + i], (float)((80 + ch * 70 + i * 9) % 256) / 255.0f);
    /* ant/two.jpg: one grey, to JPEG precision. */
    for (size_t i = 0; i < item; i++)
        ck_assert_float_eq_tol(d.images[item + i], 128 / 255.0f, 2.5f / 255.0f);
    /* cat/a.png before cat/b.png. */
    ck_assert_float_eq(d.images[2 * item], 200 / 255.0f);
    ck_assert_float_eq(d.images[3 * item], 40 / 255.0f);
    /* dog/x.PNG: its one channel three times. */
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < plane; i++)
            ck_assert_float_eq(d.images[4 * item + ch * plane + i], (float)((120 + i * 9) % 256) / 255.0f);
    heed_dataset_free(&d);

    /* To gray and smaller: the orange image becomes its luma everywhere. */
    ck_assert_int_eq(heed_folder_load(&d, root, 1, 2, 3), HEED_OK);
    ck_assert_int_eq(d.c, 1);
    ck_assert_int_eq(d.h, 2);
    ck_assert_int_eq(d.w, 3);
    const float luma = (0.299f * 200 + 0.587f * 100 + 0.114f * 50) / 255.0f;
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(d.images[2 * 6 + i], luma, 1e-5f);
    heed_dataset_free(&d);
    remove_tree(root);
}
END_TEST

START_TEST(folder_errors) {
    char root[64], path[1024];
    make_tmpdir(root);
    heed_dataset d;
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_ERR_ARG); /* no classes */
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "no class folders"));
    ck_assert_int_eq(heed_folder_load(&d, "/nonexistent-heed-dir", 3, 8, 8), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "/nonexistent-heed-dir"));
    ck_assert_int_eq(heed_folder_load(&d, root, 5, 8, 8), HEED_ERR_ARG);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 0, 8), HEED_ERR_ARG);
    ck_assert_int_eq(heed_folder_load(&d, NULL, 3, 8, 8), HEED_ERR_ARG);
    ck_assert_int_eq(heed_folder_load(NULL, root, 3, 8, 8), HEED_ERR_ARG);

    ck_assert_int_eq(mkdir(join(path, root, "empty"), 0700), 0);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "empty"));
    rmdir(path);

    ck_assert_int_eq(mkdir(join(path, root, "a-class-name-far-too-long-to-keep"), 0700), 0);
    save_image(join(path, root, "a-class-name-far-too-long-to-keep/i.png"), 1, 0, NULL);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_ERR_ARG);
    remove_tree(join(path, root, "a-class-name-far-too-long-to-keep"));
    /* 32 bytes is one too many (31 and a NUL fit); 31 loads uncut */
    ck_assert_int_eq(mkdir(join(path, root, "class-name-of-thirty-two-bytes-x"), 0700), 0);
    save_image(join(path, root, "class-name-of-thirty-two-bytes-x/i.png"), 1, 0, NULL);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "is longer than 31 bytes"), "%s", heed_last_error());
    remove_tree(join(path, root, "class-name-of-thirty-two-bytes-x"));
    ck_assert_int_eq(mkdir(join(path, root, "class-name-of-thirty-two-bytes-"), 0700), 0);
    save_image(join(path, root, "class-name-of-thirty-two-bytes-/i.png"), 1, 0, NULL);
    ck_assert_msg(heed_folder_load(&d, root, 3, 8, 8) == HEED_OK, "%s", heed_last_error());
    ck_assert_str_eq(d.class_names[0], "class-name-of-thirty-two-bytes-");
    heed_dataset_free(&d);
    remove_tree(join(path, root, "class-name-of-thirty-two-bytes-"));

    /* a control character in a class folder's name: refused here, naming
     * the folder in one line (it loaded, and heed train then said only
     * "class name 1 holds a control character") */
    ck_assert_int_eq(mkdir(join(path, root, "tab\there"), 0700), 0);
    save_image(join(path, root, "tab\there/i.png"), 1, 0, NULL);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), ": class folder 'tab?here' has a control character"), "%s",
                  heed_last_error());
    ck_assert_ptr_null(d.images);
    remove_tree(join(path, root, "tab\there"));

    ck_assert_int_eq(mkdir(join(path, root, "good"), 0700), 0);
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf(name, sizeof name, "good/%d.png", i);
        save_image(join(path, root, name), 3, i, NULL);
    }
    write_bytes(join(path, root, "good/3x.png"), "not really a png", 16);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "3x.png"));
    ck_assert_ptr_null(d.images);
    unlink(path);
    ck_assert_int_eq(heed_folder_load(&d, root, 3, 8, 8), HEED_OK);
    ck_assert_int_eq(d.count, 6);
    heed_dataset_free(&d);
    remove_tree(root);
}
END_TEST

/* A class folder's entry that is not a regular file, though named like an
 * image, is passed over as a broken link is: a fifo (x.png) blocked the
 * loader in open() for ever, waiting for a writer. The alarm turns that
 * wait into a failure of this test. */
START_TEST(folder_skips_what_is_not_a_file) {
    char root[64], path[1024];
    make_tmpdir(root);
    ck_assert_int_eq(mkdir(join(path, root, "cls"), 0700), 0);
    save_image(join(path, root, "cls/a.png"), 3, 0, NULL);
    ck_assert_int_eq(mkfifo(join(path, root, "cls/pipe.png"), 0600), 0);
    ck_assert_int_eq(symlink("nowhere.png", join(path, root, "cls/gone.png")), 0);
    alarm(20);
    heed_dataset d;
    ck_assert_msg(heed_folder_load(&d, root, 3, IM_H, IM_W) == HEED_OK, "%s", heed_last_error());
    alarm(0);
    ck_assert_int_eq(d.count, 1);
    heed_dataset_free(&d);
    remove_tree(root);
}
END_TEST

/* The held-out rule is FNV-1a's published 32-bit hash of the name, held
 * out when a multiple of 5: the reference vectors "" -> 0x811c9dc5 (its
 * offset basis; 1 mod 5), "a" -> 0xe40c292c and "foobar" -> 0xbf9cf968
 * (both 0 mod 5); "0.png" .. "9.png" hash to 3, 0, 2, 1, 3, 0, 2, 1, 3, 3
 * mod 5 (the FNV-1a definition, evaluated in Python). */
START_TEST(folder_holdout_is_fnv1a_mod_5) {
    ck_assert_int_eq(heed_folder_holdout(""), 0);
    ck_assert_int_eq(heed_folder_holdout("a"), 1);
    ck_assert_int_eq(heed_folder_holdout("foobar"), 1);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d.png", i);
        ck_assert_msg(heed_folder_holdout(name) == (i == 1 || i == 5), "%s", name);
    }
}
END_TEST

typedef struct progress_log {
    int calls, last, total, rising, finals; /* finals: calls with done == total */
} progress_log;

static void log_progress(void *ctx, int done, int total) {
    progress_log *l = ctx;
    l->rising = (l->calls == 0 || done >= l->last) && (l->calls == 0 ? 1 : l->rising);
    l->calls++, l->last = done, l->total = total, l->finals += done == total;
}

/* One folder of class folders split in two: each image in exactly one
 * part, by its name; both parts list every class. */
START_TEST(folder_parts) {
    char root[64], path[1024], name[64];
    make_tmpdir(root);
    const char *dirs[] = {"ant", "bee"};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(mkdir(join(path, root, dirs[k]), 0700), 0);
        for (int i = 0; i < 10; i++) { /* bee has 0..4: 1 held out */
            if (k == 1 && i > 4) break;
            snprintf(name, sizeof name, "%s/%d.png", dirs[k], i);
            const int grey[3] = {10 * i + k, 0, 0};
            save_image(join(path, root, name), 1, 0, grey);
        }
    }
    heed_dataset tr, te;
    progress_log log = {0};
    const heed_folder_opts train_part = {.part = HEED_FOLDER_TRAIN, .progress = log_progress, .ctx = &log};
    const heed_folder_opts test_part = {.part = HEED_FOLDER_TEST};
    ck_assert_msg(heed_folder_load_with(&tr, root, 1, IM_H, IM_W, &train_part) == HEED_OK, "%s",
                  heed_last_error());
    /* progress: rising to the part's 12 images, the last call 12 of 12 */
    ck_assert_msg(log.calls >= 1 && log.rising && log.last == 12 && log.total == 12,
                  "%d calls, last %d of %d", log.calls, log.last, log.total);
    ck_assert_int_eq(log.finals, 1);
    heed_dataset_free(&tr);
    /* ... and on one thread, the one calling, which decodes the last
     * image too: still one call that says the work is done */
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    log = (progress_log){0};
    ck_assert_msg(heed_folder_load_with(&tr, root, 1, IM_H, IM_W, &train_part) == HEED_OK, "%s",
                  heed_last_error());
    omp_set_num_threads(threads);
    ck_assert_msg(log.calls == 12 && log.rising && log.finals == 1, "%d calls, %d saying done",
                  log.calls, log.finals);
    ck_assert_msg(heed_folder_load_with(&te, root, 1, IM_H, IM_W, &test_part) == HEED_OK, "%s",
                  heed_last_error());
    ck_assert_int_eq(tr.classes, 2);
    ck_assert_int_eq(te.classes, 2);
    ck_assert_str_eq(te.class_names[1], "bee");
    /* ant: 0 2 3 4 6 7 8 9 train, 1 5 test; bee: 0 2 3 4 train, 1 test */
    const int want_tr[] = {0, 2, 3, 4, 6, 7, 8, 9, 0, 2, 3, 4}, want_te[] = {1, 5, 1};
    ck_assert_int_eq(tr.count, 12);
    ck_assert_int_eq(te.count, 3);
    const size_t item = IM_H * IM_W;
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(tr.labels[i], i >= 8);
        ck_assert_float_eq(tr.images[i * item], (10 * want_tr[i] + (i >= 8)) / 255.0f);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(te.labels[i], i == 2);
        ck_assert_float_eq(te.images[i * item], (10 * want_te[i] + (i == 2)) / 255.0f);
    }
    heed_dataset_free(&tr), heed_dataset_free(&te);

    /* a class all of whose images are held out cannot be trained */
    ck_assert_int_eq(mkdir(join(path, root, "cat"), 0700), 0);
    save_image(join(path, root, "cat/5.png"), 1, 0, NULL);
    ck_assert_int_eq(heed_folder_load_with(&tr, root, 1, IM_H, IM_W, &train_part), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "/cat has 1 image, all held out for testing"), "%s",
                  heed_last_error());
    ck_assert_ptr_null(tr.images);
    /* ... but tested; and a test part may lack a class */
    unlink(join(path, root, "cat/5.png"));
    save_image(join(path, root, "cat/0.png"), 1, 0, NULL);
    ck_assert_int_eq(heed_folder_load_with(&te, root, 1, IM_H, IM_W, &test_part), HEED_OK);
    ck_assert_int_eq(te.classes, 3);
    ck_assert_int_eq(te.count, 3);
    heed_dataset_free(&te);
    /* nothing held out at all: no test part */
    remove_tree(join(path, root, "ant"));
    remove_tree(join(path, root, "bee"));
    ck_assert_int_eq(heed_folder_load_with(&te, root, 1, IM_H, IM_W, &test_part), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "none of its images is held out"), "%s", heed_last_error());
    const heed_folder_opts no_part = {.part = (heed_folder_part)7};
    ck_assert_int_eq(heed_folder_load_with(&te, root, 1, IM_H, IM_W, &no_part), HEED_ERR_ARG);
    remove_tree(root);
}
END_TEST

/* Mean and population deviation, by hand; far from zero, where
 * E[x^2] - E[x]^2 in float would lose the spread. */
START_TEST(dataset_stats) {
    float px[8] = {0, 1, 0.5f, 0.5f, 0.25f, 0.75f, 0, 1};
    heed_dataset d = {.count = 2, .c = 2, .h = 1, .w = 2, .images = px};
    double mean, std;
    ck_assert_int_eq(heed_dataset_stats(&d, &mean, &std), HEED_OK);
    ck_assert_double_eq(mean, 0.5); /* deviations 4 x 0.25, 2 x 0.0625 */
    ck_assert_double_eq_tol(std, sqrt((4 * 0.25 + 2 * 0.0625) / 8), 1e-12);
    for (int i = 0; i < 8; i++) px[i] = 4096.0f + (i % 2 ? 0.5f : -0.5f);
    ck_assert_int_eq(heed_dataset_stats(&d, &mean, &std), HEED_OK);
    ck_assert_double_eq(mean, 4096.0);
    ck_assert_double_eq(std, 0.5);
    d.images = NULL;
    ck_assert_int_eq(heed_dataset_stats(&d, &mean, &std), HEED_ERR_ARG);
    d.images = px, d.count = 0;
    ck_assert_int_eq(heed_dataset_stats(&d, &mean, &std), HEED_ERR_ARG);
    ck_assert_int_eq(heed_dataset_stats(NULL, &mean, &std), HEED_ERR_ARG);
    d.count = 1;
    ck_assert_int_eq(heed_dataset_stats(&d, NULL, &std), HEED_ERR_ARG);
}
END_TEST

/* Per channel: two images of two channels of two pixels; channel 0 holds
 * 0, 1 and 0.25, 0.75 (mean 0.5, deviations 0.25 x 2, 0.0625 x 2),
 * channel 1 holds 0.5, 0.5 and 0, 1 (mean 0.5, deviations 0, 0, 0.25 x 2). */
START_TEST(dataset_channel_stats) {
    float px[8] = {0, 1, 0.5f, 0.5f, 0.25f, 0.75f, 0, 1};
    heed_dataset d = {.count = 2, .c = 2, .h = 1, .w = 2, .images = px};
    double mean[2], std[2];
    ck_assert_int_eq(heed_dataset_channel_stats(&d, mean, std), HEED_OK);
    ck_assert_double_eq(mean[0], 0.5);
    ck_assert_double_eq(mean[1], 0.5);
    ck_assert_double_eq_tol(std[0], sqrt((2 * 0.25 + 2 * 0.0625) / 4), 1e-12);
    ck_assert_double_eq_tol(std[1], sqrt(2 * 0.25 / 4), 1e-12);
    d.count = 0;
    ck_assert_int_eq(heed_dataset_channel_stats(&d, mean, std), HEED_ERR_ARG);
    ck_assert_int_eq(heed_dataset_channel_stats(NULL, mean, std), HEED_ERR_ARG);
}
END_TEST

/* ---- batches and augmentation ---------------------------------------------- */

enum { AC = 2, AH = 3, AW = 4, AN = 3 };

typedef struct aug_fixture {
    float images[AN * AC * AH * AW];
    int labels[AN];
    heed_dataset d;
} aug_fixture;

static void aug_make(aug_fixture *f) {
    for (int i = 0; i < AN * AC * AH * AW; i++) f->images[i] = (float)(i + 1); /* no zeros */
    for (int i = 0; i < AN; i++) f->labels[i] = 5 + i;
    f->d = (heed_dataset){.count = AN, .c = AC, .h = AH, .w = AW, .classes = 8,
                          .images = f->images, .labels = f->labels};
}

/* Pixel (ch, y, x) of item k shifted by (dy, dx) and maybe mirrored, as
 * torchvision computes it on the zero-padded image: padding outside. */
static float moved(const aug_fixture *f, int k, int ch, int y, int x, int dy, int dx, int flip) {
    const int sx = (flip ? AW - 1 - x : x) + dx, sy = y + dy;
    if (sy < 0 || sy >= AH || sx < 0 || sx >= AW) return 0.0f;
    return f->images[((k * AC + ch) * AH + sy) * AW + sx];
}

static int item_matches(const aug_fixture *f, const float *out, int k, int dy, int dx, int flip) {
    for (int ch = 0; ch < AC; ch++)
        for (int y = 0; y < AH; y++)
            for (int x = 0; x < AW; x++)
                if (out[(ch * AH + y) * AW + x] != moved(f, k, ch, y, x, dy, dx, flip)) return 0;
    return 1;
}

START_TEST(batches_without_augmentation_copy) {
    aug_fixture f;
    aug_make(&f);
    const int idx[4] = {2, 0, 2, 1};
    heed_tensor x = {0};
    int labels[4];
    ck_assert_int_eq(heed_dataset_batch(&f.d, idx, 4, NULL, NULL, &x, labels), HEED_OK);
    ck_assert_int_eq(x.n, 4);
    ck_assert_int_eq(x.c, AC);
    ck_assert_int_eq(x.h, AH);
    ck_assert_int_eq(x.w, AW);
    const size_t item = AC * AH * AW;
    for (int k = 0; k < 4; k++) {
        ck_assert_mem_eq(x.data + k * item, f.images + idx[k] * item, item * sizeof(float));
        ck_assert_int_eq(labels[k], 5 + idx[k]);
    }
    /* crop_pad 0 and no flip is the identity, and needs no generator. */
    heed_augment none = {0};
    ck_assert_int_eq(heed_dataset_batch(&f.d, idx, 4, &none, NULL, &x, NULL), HEED_OK);
    for (int k = 0; k < 4; k++)
        ck_assert_mem_eq(x.data + k * item, f.images + idx[k] * item, item * sizeof(float));
    heed_tensor_free(&x);
}
END_TEST

START_TEST(flip_mirrors_half_the_time) {
    aug_fixture f;
    aug_make(&f);
    heed_rng r;
    heed_rng_seed(&r, 11, 0);
    heed_tensor x = {0};
    const int idx[AN] = {0, 1, 2};
    const size_t item = AC * AH * AW;
    int flipped = 0, kept = 0;
    for (int rep = 0; rep < 40; rep++) {
        ck_assert_int_eq(heed_dataset_batch(&f.d, idx, AN, &(heed_augment){.hflip = 1}, &r, &x,
                                            NULL), HEED_OK);
        for (int k = 0; k < AN; k++) {
            const int m = item_matches(&f, x.data + k * item, k, 0, 0, 1);
            const int same = item_matches(&f, x.data + k * item, k, 0, 0, 0);
            ck_assert(m != same);
            flipped += m, kept += same;
        }
    }
    /* 120 fair coins: 60 +- 5.5 expected. */
    ck_assert_int_gt(flipped, 35);
    ck_assert_int_gt(kept, 35);
    heed_tensor_free(&x);
}
END_TEST

START_TEST(crop_shifts_content_within_the_padding) {
    aug_fixture f;
    aug_make(&f);
    heed_rng r;
    heed_rng_seed(&r, 5, 0);
    heed_tensor x = {0};
    const int idx[AN] = {1, 2, 0};
    const size_t item = AC * AH * AW;
    int seen[3][3] = {{0}}, flips = 0;
    const heed_augment aug = {.crop_pad = 1, .hflip = 1};
    for (int rep = 0; rep < 60; rep++) {
        ck_assert_int_eq(heed_dataset_batch(&f.d, idx, AN, &aug, &r, &x, NULL), HEED_OK);
        ck_assert(x.n == AN && x.c == AC && x.h == AH && x.w == AW);
        for (int k = 0; k < AN; k++) {
            int found = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    for (int fl = 0; fl < 2; fl++)
                        if (item_matches(&f, x.data + k * item, idx[k], dy, dx, fl)) {
                            found = 1, seen[dy + 1][dx + 1]++, flips += fl;
                            dy = dx = 2, fl = 2; /* one match is enough */
                        }
            ck_assert_msg(found, "item %d of batch %d is no 1-pixel shift of its source", k, rep);
        }
    }
    /* Every offset in [-1, 1]^2 occurs in 180 draws, the centre included. */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) ck_assert_msg(seen[i][j] > 0, "shift (%d, %d) never seen", i - 1, j - 1);
    ck_assert_int_gt(flips, 0);
    /* The same generator state gives the same batch. */
    heed_rng a, b;
    heed_rng_seed(&a, 9, 1), heed_rng_seed(&b, 9, 1);
    heed_tensor y = {0};
    ck_assert_int_eq(heed_dataset_batch(&f.d, idx, AN, &aug, &a, &x, NULL), HEED_OK);
    ck_assert_int_eq(heed_dataset_batch(&f.d, idx, AN, &aug, &b, &y, NULL), HEED_OK);
    ck_assert_mem_eq(x.data, y.data, AN * item * sizeof(float));
    heed_tensor_free(&x), heed_tensor_free(&y);
}
END_TEST

/* A crop padding up to INT_MAX is accepted (torchvision has no bound) and
 * crops as its draws say: offsets past the image give padding only. The
 * offset was drawn as (int)u - pad, and the row as y + dy, both in int:
 * signed overflow for a padding over INT_MAX / 2 (UBSan stopped on it). */
START_TEST(crop_of_any_padding_is_defined) {
    aug_fixture f;
    aug_make(&f);
    heed_rng r, twin;
    heed_rng_seed(&r, 3, 0), heed_rng_seed(&twin, 3, 0);
    heed_tensor x = {0};
    const int idx[AN] = {0, 1, 2};
    const size_t item = AC * AH * AW;
    const int pads[3] = {INT_MAX, INT_MAX / 2 + 1, AH + 1};
    for (int rep = 0; rep < 20; rep++) {
        const int pad = pads[rep % 3];
        const heed_augment aug = {.crop_pad = pad, .hflip = 1};
        ck_assert_int_eq(heed_dataset_batch(&f.d, idx, AN, &aug, &r, &x, NULL), HEED_OK);
        for (int k = 0; k < AN; k++) {
            const long long dy = (long long)heed_rng_below(&twin, 2u * (unsigned)pad + 1) - pad;
            const long long dx = (long long)heed_rng_below(&twin, 2u * (unsigned)pad + 1) - pad;
            const int flip = (int)heed_rng_below(&twin, 2);
            const float *out = x.data + k * item;
            if (dy <= -AH || dy >= AH || dx <= -AW || dx >= AW) {
                for (size_t i = 0; i < item; i++) ck_assert_float_eq(out[i], 0.0f);
            } else {
                ck_assert(item_matches(&f, out, idx[k], (int)dy, (int)dx, flip));
            }
        }
    }
    heed_tensor_free(&x);
}
END_TEST

START_TEST(bad_batches_are_refused) {
    aug_fixture f;
    aug_make(&f);
    heed_tensor x = {0};
    heed_rng r;
    heed_rng_seed(&r, 1, 0);
    ck_assert_int_eq(heed_dataset_batch(&f.d, (int[]){0, 3}, 2, NULL, NULL, &x, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "index 3"));
    ck_assert_int_eq(heed_dataset_batch(&f.d, (int[]){-1}, 1, NULL, NULL, &x, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_dataset_batch(&f.d, (int[]){0}, 0, NULL, NULL, &x, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_dataset_batch(&f.d, (int[]){0}, 1, &(heed_augment){.crop_pad = -1}, &r,
                                        &x, NULL), HEED_ERR_ARG);
    ck_assert_int_eq(heed_dataset_batch(&f.d, (int[]){0}, 1, &(heed_augment){.hflip = 1}, NULL,
                                        &x, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "random"));
    heed_dataset empty = {0};
    ck_assert_int_eq(heed_dataset_batch(&empty, (int[]){0}, 1, NULL, NULL, &x, NULL), HEED_ERR_ARG);
    ck_assert_ptr_null(x.data);
    heed_dataset_free(&empty); /* safe on an empty dataset */
}
END_TEST

Suite *heed_suite_data(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("idx");
    tcase_add_test(tc, idx_round_trip_plain_and_gzipped);
    tcase_add_test(tc, idx_write_rounds_pixels_to_the_nearest_code);
    tcase_add_test(tc, corrupt_idx_files_are_refused);
    tcase_add_test(tc, truncated_idx_data_says_where_it_ends);
    tcase_add_test(tc, installed_fashion_mnist);
    suite_add_tcase(s, tc);
    tc = tcase_create("folder");
    tcase_add_test(tc, folder_of_images);
    tcase_add_test(tc, folder_errors);
    tcase_add_test(tc, folder_skips_what_is_not_a_file);
    tcase_add_test(tc, folder_holdout_is_fnv1a_mod_5);
    tcase_add_test(tc, folder_parts);
    tcase_add_test(tc, dataset_stats);
    tcase_add_test(tc, dataset_channel_stats);
    suite_add_tcase(s, tc);
    tc = tcase_create("batch");
    tcase_add_test(tc, batches_without_augmentation_copy);
    tcase_add_test(tc, flip_mirrors_half_the_time);
    tcase_add_test(tc, crop_shifts_content_within_the_padding);
    tcase_add_test(tc, crop_of_any_padding_is_defined);
    tcase_add_test(tc, bad_batches_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
