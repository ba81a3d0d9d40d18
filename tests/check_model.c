/* check_model.c -- model files: bit-identical round trips, metadata, extra
 * chunks, and clean failures on truncated, corrupt and mismatched files. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "crc32_impl.h"
#include "file_impl.h"
#include "linear.h"
#include "model.h"
#include "seq.h"
#include "testutil.h"

static const char *NET = "input 1 8 8\nconv out=4 k=3 pad=1 bias=0\nbn\nrelu\ncbam r=2 k=3\n"
                         "maxpool k=2\nflatten\nfc out=3\n";

static heed_model *make_model(void) {
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, NET, "t", 77), HEED_OK);
    /* Make the batch-norm buffers non-default so the round trip covers them. */
    for (int i = 0; i < net->params.count; i++)
        if (net->params.items[i].flags & HEED_PARAM_BUFFER)
            tu_fill_uniform(net->params.values + net->params.items[i].offset,
                            net->params.items[i].count, 0.5f, 1.5f, (uint64_t)i);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"cat", "dog", "T-shirt/top"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    m->meta.input_mean = 0.25f, m->meta.input_std = 0.5f, m->meta.dark_background = 1;
    snprintf(m->meta.recipe, sizeof m->meta.recipe, "heed train --epochs 2");
    m->meta.test_accuracy = 1.0f / 3.0f;
    m->meta.train_seconds = 12.3456783f;
    return m;
}

static void tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "/tmp/heed-check-model-%ld-%s", (long)getpid(), name);
}

static void forward(heed_model *m, heed_tensor *y) {
    heed_tensor x;
    heed_tensor_alloc(&x, 2, 1, 8, 8);
    tu_fill_uniform(x.data, heed_tensor_count(&x), 0, 1, 3);
    ck_assert_int_eq(heed_net_forward(m->net, &x, y), HEED_OK);
    heed_tensor_free(&x);
}

START_TEST(round_trip_is_bit_identical) {
    char path[256];
    tmp_path(path, sizeof path, "rt.heed");
    heed_model *m = make_model(), *back;
    heed_chunk extra = {.tag = "OPTM", .data = (unsigned char *)"state", .size = 5};
    ck_assert_msg(heed_model_save_with(m, path, &extra, 1) == HEED_OK, "%s", heed_last_error());
    heed_chunk *chunks;
    int nchunks;
    ck_assert_msg(heed_model_load_with(&back, path, &chunks, &nchunks) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(nchunks, 1);
    ck_assert_int_eq(heed_chunk_find(chunks, nchunks, "OPTM")->size, 5);
    ck_assert_int_eq(memcmp(heed_chunk_find(chunks, nchunks, "OPTM")->data, "state", 5), 0);
    heed_chunks_free(chunks, nchunks);
    ck_assert_int_eq(memcmp(m->net->params.values, back->net->params.values,
                            m->net->params.total * sizeof(float)), 0);
    heed_tensor y1 = {0}, y2 = {0};
    forward(m, &y1);
    forward(back, &y2);
    ck_assert_int_eq(memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)), 0);
    ck_assert_int_eq(back->meta.classes, 3);
    ck_assert_str_eq(back->meta.class_names[2], "T-shirt/top");
    ck_assert_float_eq(back->meta.input_mean, 0.25f);
    ck_assert_float_eq(back->meta.input_std, 0.5f);
    ck_assert_int_eq(back->meta.dark_background, 1);
    ck_assert_str_eq(back->meta.recipe, "heed train --epochs 2");
    /* every float of the metadata exactly (1/3 came back 0.333332986 and
     * 12.3456783 s as 12.3, written with %.6f and %.1f) */
    ck_assert_float_eq(back->meta.test_accuracy, 1.0f / 3.0f);
    ck_assert_float_eq(back->meta.train_seconds, 12.3456783f);
    heed_tensor_free(&y1), heed_tensor_free(&y2);
    heed_model_free(m), heed_model_free(back);
    unlink(path);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

START_TEST(truncated_and_corrupt_files_fail_cleanly) {
    char path[256], bad[256];
    tmp_path(path, sizeof path, "good.heed");
    tmp_path(bad, sizeof bad, "bad.heed");
    heed_model *m = make_model(), *back;
    ck_assert_int_eq(heed_model_save(m, path), HEED_OK);
    size_t len;
    unsigned char *b = slurp(path, &len);
    /* every truncation length in the header and chunk framing, and a spread beyond */
    for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 97) {
        spit(bad, b, cut);
        ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
        ck_assert_ptr_null(back);
        ck_assert_ptr_nonnull(strstr(heed_last_error(), bad));
    }
    /* a flipped bit anywhere is caught (magic, framing or checksum) */
    for (size_t at = 0; at < len; at += 13) {
        b[at] ^= 0x10;
        spit(bad, b, len);
        ck_assert_int_ne(heed_model_load(&back, bad), HEED_OK);
        b[at] ^= 0x10;
    }
    spit(bad, (const unsigned char *)"hello, not a model", 18);
    ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "not a heed model file (it does not start with HEEDMODL)"));
    /* a network file given for its model says so; an empty file says that */
    const char *net = "# a net\n\ninput 1 28 28\nfc out=10\n";
    spit(bad, (const unsigned char *)net, strlen(net));
    ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "not a heed model file (a network description: heed train --net "
                                            "makes a model of it)"), "%s", heed_last_error());
    spit(bad, (const unsigned char *)"", 0);
    ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), ": empty file, not a heed model"), "%s", heed_last_error());
    ck_assert_int_eq(heed_model_load(&back, "/tmp/heed-no-such-model.heed"), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "No such file"));
    ck_assert_int_eq(heed_model_load(&back, "/tmp"), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "/tmp: Is a directory"));
    free(b);
    heed_model_free(m);
    unlink(path), unlink(bad);
}
END_TEST

/* ---- crafted files: valid framing and checksums, bad contents ---------- */

/* A model file's chunks, editable, written back with fresh checksums (the
 * layout is model.h's): what a buggy or hostile writer could produce. */
typedef struct chunk_edit {
    char tag[5];
    unsigned char *data;
    size_t size;
} chunk_edit;

static uint64_t le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put_le(FILE *f, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) fputc((int)(v >> (8 * i) & 0xff), f);
}

static int split_chunks(const unsigned char *b, size_t len, chunk_edit *out, int max) {
    ck_assert_uint_ge(len, 16);
    int n = (int)le(b + 12, 4);
    ck_assert_int_le(n, max);
    size_t at = 16;
    for (int i = 0; i < n; i++) {
        memcpy(out[i].tag, b + at, 4);
        out[i].tag[4] = '\0';
        out[i].size = (size_t)le(b + at + 4, 8);
        out[i].data = malloc(out[i].size + 1);
        memcpy(out[i].data, b + at + 12, out[i].size);
        at += 12 + out[i].size + 4;
    }
    ck_assert_uint_eq(at, len);
    return n;
}

static void write_chunks(const char *path, const chunk_edit *c, int n, const char *trailer) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("HEEDMODL", 1, 8, f);
    put_le(f, 1, 4);
    put_le(f, (uint64_t)n, 4);
    for (int i = 0; i < n; i++) {
        fwrite(c[i].tag, 1, 4, f);
        put_le(f, c[i].size, 8);
        fwrite(c[i].data, 1, c[i].size, f);
        put_le(f, crc32(0L, c[i].data, (uInt)c[i].size), 4);
    }
    fputs(trailer, f);
    fclose(f);
}

/* make_model() saved to path and split into its chunks (at most max):
 * returns how many; free_chunks releases them. */
static int saved_chunks(const char *path, chunk_edit *c, int max) {
    heed_model *m = make_model();
    ck_assert_int_eq(heed_model_save(m, path), HEED_OK);
    heed_model_free(m);
    size_t len;
    unsigned char *b = slurp(path, &len);
    const int n = split_chunks(b, len, c, max);
    free(b);
    return n;
}

static void free_chunks(chunk_edit *c, int n) {
    for (int i = 0; i < n; i++) free(c[i].data);
}

static chunk_edit *find_chunk(chunk_edit *c, int n, const char *tag) {
    for (int i = 0; i < n; i++)
        if (!strcmp(c[i].tag, tag)) return &c[i];
    ck_abort_msg("no %s chunk", tag);
    return NULL;
}

static void set_text(chunk_edit *c, const char *text) {
    free(c->data);
    c->size = strlen(text);
    c->data = malloc(c->size + 1);
    memcpy(c->data, text, c->size);
}

/* The byte offset, inside a PARM payload, of the named tensor's first
 * float. */
static size_t tensor_at(const chunk_edit *parm, const char *name) {
    const unsigned char *p = parm->data;
    size_t at = 4;
    for (uint32_t i = 0; i < (uint32_t)le(p, 4); i++) {
        size_t len = (size_t)le(p + at, 2);
        int match = len == strlen(name) && !memcmp(p + at + 2, name, len);
        at += 2 + len;
        int nd = p[at++];
        size_t count = 1;
        for (int d = 0; d < nd; d++, at += 4) count *= (size_t)le(p + at, 4);
        if (match) return at;
        at += count * sizeof(float);
    }
    ck_abort_msg("no tensor %s", name);
    return 0;
}

/* One edit of a good file and the words its load error must hold. */
enum edit_kind { META_TEXT, NET_TEXT, PARM_FLOAT, PARM_TRAILER, PARM_DUPLICATE, FILE_TRAILER };
static const struct {
    enum edit_kind kind;
    const char *what; /* the new text, or the tensor to edit */
    float value;
    const char *expect;
} edits[] = {
    {META_TEXT, "classes 3x\nclass a\nclass b\nclass c\n", 0, "bad class count '3x'"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ninput_std 0\n", 0,
     "bad metadata value for input_std"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ninput_std 1e-30\n", 0,
     "bad metadata value for input_std"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ninput_mean nan\n", 0,
     "bad metadata value for input_mean"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ninput_mean 0.5 volts\n", 0,
     "bad metadata value for input_mean"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nepochs 12abc\n", 0,
     "bad metadata value for epochs: '12abc'"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ndark_background 2\n", 0,
     "bad metadata value for dark_background"},
    {META_TEXT, "classes 3\nclass a\nclass \x1b[2Jb\nclass c\n", 0, "bad metadata value for class"},
    /* 32 bytes: longer than any name the writer writes (heed_model_set_classes cuts at 31) */
    {META_TEXT, "classes 3\nclass a\nclass abcdefghijklmnopqrstuvwxyz012345\nclass c\n", 0,
     "bad metadata value for class"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nrecipe heed \x1b]0;title\x07train\n", 0,
     "bad metadata value for recipe"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ndataset fm\x1b[31mnist\n", 0,
     "bad metadata value for dataset"},
    {META_TEXT, "classes 3\nclass a\nclass b\n", 0, "lists 2 class names for 3 classes"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nclass d\n", 0, "more class names than classes"},
    /* a second count would drop the names read so far */
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nclasses 3\n", 0, "bad class count '3'"},
    /* the ranges model.h states: accuracy at most 1, seconds not negative */
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ntest_accuracy 5\n", 0,
     "bad metadata value for test_accuracy: '5'"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\ntrain_seconds -2\n", 0,
     "bad metadata value for train_seconds: '-2'"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nepochs -1\n", 0,
     "bad metadata value for epochs: '-1'"},
    {META_TEXT, "classes 5\nclass a\nclass b\nclass c\nclass d\nclass e\n", 0,
     "the network has 3 outputs but 5 classes"},
    {META_TEXT, "classes 2\nclass a\nclass b\n", 0, "the network has 3 outputs but 2 classes"},
    /* per-channel normalisation: one pair per input channel (the network takes 1), each usable */
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nchannel_mean 0.1 0.2\nchannel_std 1 1\n", 0,
     "per-channel normalisation for 2 channels, but the network takes 1"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nchannel_mean 0.1\nchannel_std 1 1\n", 0,
     "bad metadata value for channel_std"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nchannel_mean 0.1\nchannel_std 0\n", 0,
     "bad metadata value for channel 0's normalisation"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nchannel_mean 0.1\n", 0,
     "bad metadata value for channel 0's normalisation"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nchannel_mean 0.1 x\nchannel_std 1\n", 0,
     "bad metadata value for channel_mean"},
    {META_TEXT, "classes 3\nclass a\nclass b\nclass c\nchannel_mean 1 2 3 4 5\n", 0,
     "bad metadata value for channel_mean"},
    {NET_TEXT, "input 1 8 8\nflatten\nfc out=3\nfc out=3\n", 0, "parameter tensors"},
    /* the file's tensors and one layer more: that layer's would stay random */
    {NET_TEXT, "input 1 8 8\nconv out=4 k=3 pad=1 bias=0\nbn\nrelu\ncbam r=2 k=3\nmaxpool k=2\nflatten\n"
               "fc out=3\nfc out=3\n", 0, "parameter tensors, the network"},
    /* a network far larger than the file: refused before its memory is taken */
    {NET_TEXT, "input 1 8 8\nflatten\nfc out=20000\nfc out=20000\nfc out=3\n", 0,
     "more than the"},
    {PARM_FLOAT, "fc1.bias", NAN, "parameter 'fc1.bias' holds nan at index 0"},
    {PARM_FLOAT, "conv1.weight", INFINITY, "parameter 'conv1.weight' holds inf"},
    {PARM_FLOAT, "bn1.running_var", -0.5f, "parameter 'bn1.running_var' holds -0.5"},
    {PARM_TRAILER, NULL, 0, "4 bytes after the last parameter"},
    {PARM_DUPLICATE, "bn1.bias", 0, "parameter 'bn1.bias' is listed twice"},
    {FILE_TRAILER, NULL, 0, "3 bytes after the last chunk"},
};

START_TEST(crafted_files_fail_with_reasons) {
    char path[256], bad[256];
    tmp_path(path, sizeof path, "craft-good.heed");
    tmp_path(bad, sizeof bad, "craft-bad.heed");
    heed_model *back = (heed_model *)1;
    chunk_edit c[8];
    const int n = saved_chunks(path, c, 8);
    chunk_edit *parm = find_chunk(c, n, "PARM");
    const char *trailer = "";
    switch (edits[_i].kind) {
    case META_TEXT: set_text(find_chunk(c, n, "META"), edits[_i].what); break;
    case NET_TEXT: set_text(find_chunk(c, n, "NETD"), edits[_i].what); break;
    case PARM_FLOAT: memcpy(parm->data + tensor_at(parm, edits[_i].what), &edits[_i].value, 4); break;
    case PARM_TRAILER:
        parm->data = realloc(parm->data, parm->size + 4);
        memset(parm->data + parm->size, 0, 4);
        parm->size += 4;
        break;
    case PARM_DUPLICATE: {
        /* The last tensor's record replaced by a copy of the named one's
         * (same count, one left out): bn1.bias precedes the last. */
        size_t from = tensor_at(parm, edits[_i].what), last = tensor_at(parm, "fc1.bias");
        size_t head = 2 + strlen("bn1.bias") + 1 + 4, last_head = 2 + strlen("fc1.bias") + 1 + 4;
        size_t rec = head + 4 * sizeof(float);
        parm->data = realloc(parm->data, last - last_head + rec);
        memmove(parm->data + last - last_head, parm->data + from - head, rec);
        parm->size = last - last_head + rec;
        break;
    }
    case FILE_TRAILER: trailer = "xyz"; break;
    }
    write_chunks(bad, c, n, trailer);
    ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
    ck_assert_ptr_null(back);
    ck_assert_msg(strstr(heed_last_error(), edits[_i].expect), "case %d: got '%s', want '%s'", _i,
                  heed_last_error(), edits[_i].expect);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), bad));
    /* The same chunks unedited load: the edit, not the rewriting, failed. */
    chunk_edit good[8];
    ck_assert_int_eq(saved_chunks(path, good, 8), n);
    write_chunks(bad, good, n, "");
    ck_assert_msg(heed_model_load(&back, bad) == HEED_OK, "%s", heed_last_error());
    heed_model_free(back);
    free_chunks(c, n), free_chunks(good, n);
    unlink(path), unlink(bad);
}
END_TEST

START_TEST(metadata_with_crlf_lines_reads) {
    char path[256];
    tmp_path(path, sizeof path, "crlf.heed");
    heed_model *back;
    chunk_edit c[8];
    const int n = saved_chunks(path, c, 8);
    set_text(find_chunk(c, n, "META"),
             "classes 3\r\nclass cat\r\nclass dog\r\nclass T-shirt/top\r\ninput_std 0.5\r\n");
    write_chunks(path, c, n, "");
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_str_eq(back->meta.class_names[2], "T-shirt/top");
    ck_assert_float_eq(back->meta.input_std, 0.5f);
    heed_model_free(back);
    free_chunks(c, n);
    unlink(path);
}
END_TEST

/* A NUL inside a text chunk would end it early and leave the rest unread
 * (an fc layer, a class name): refused, naming the chunk. */
START_TEST(nul_byte_in_a_text_chunk_is_refused) {
    char path[256];
    tmp_path(path, sizeof path, "nul.heed");
    heed_model *back = (heed_model *)1;
    chunk_edit c[8];
    const int n = saved_chunks(path, c, 8);
    chunk_edit *meta = find_chunk(c, n, "META");
    set_text(meta, "classes 3\nclass a\nclass b\n#class c\n");
    meta->data[meta->size - 9] = '\0'; /* the '#' of the last line */
    write_chunks(path, c, n, "");
    ck_assert_int_eq(heed_model_load(&back, path), HEED_ERR_FORMAT);
    ck_assert_ptr_null(back);
    ck_assert_msg(strstr(heed_last_error(), "chunk META:4: a NUL byte"), "%s", heed_last_error());
    free_chunks(c, n);
    unlink(path);
}
END_TEST

START_TEST(class_names_with_control_characters_are_refused) {
    heed_model *m = make_model();
    const char *names[] = {"cat", "two\nlines", "dog"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "class name 1"));
    ck_assert_str_eq(m->meta.class_names[1], "dog"); /* the old names kept */
    heed_model_free(m);
}
END_TEST

/* Names are cut at 31 bytes, never inside a UTF-8 character (JSON output
 * must stay valid UTF-8); NULLs are refused, not dereferenced. */
START_TEST(class_names_are_cut_between_characters) {
    heed_model *m = make_model();
    char e_acute[40], euro[40], fits[40];
    snprintf(e_acute, sizeof e_acute, "%s\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");   /* 30 + 2 bytes */
    snprintf(euro, sizeof euro, "%s\xe2\x82\xac!", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbb");    /* 29 + 3 + 1 */
    snprintf(fits, sizeof fits, "%s\xe2\x82\xac", "cccccccccccccccccccccccccccc");      /* 28 + 3 */
    const char *names[] = {e_acute, euro, fits};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    ck_assert_str_eq(m->meta.class_names[0], "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ck_assert_str_eq(m->meta.class_names[1], "bbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    ck_assert_str_eq(m->meta.class_names[2], fits);
    ck_assert_int_eq(heed_model_set_classes(m, 3, NULL), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "no class names given"));
    const char *holes[] = {"a", NULL, "c"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, holes), HEED_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "class name 1 is NULL"));
    ck_assert_str_eq(m->meta.class_names[2], fits); /* the names before kept */
    heed_model_free(m);
}
END_TEST

/* Free text (the recipe is the command line as typed) is saved on one
 * line, each control character as '?', so that it loads again. */
START_TEST(free_text_with_control_characters_saves_as_one_line) {
    char path[256];
    tmp_path(path, sizeof path, "ctrl.heed");
    heed_model *m = make_model(), *back;
    snprintf(m->meta.recipe, sizeof m->meta.recipe, "heed train --out \"a\nclasses 9\"\t\x1b[2J");
    snprintf(m->meta.cpu, sizeof m->meta.cpu, "cpu\r");
    ck_assert_int_eq(heed_model_save(m, path), HEED_OK);
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_str_eq(back->meta.recipe, "heed train --out \"a?classes 9\"??[2J");
    ck_assert_str_eq(back->meta.cpu, "cpu?");
    ck_assert_int_eq(back->meta.classes, m->meta.classes);
    heed_model_free(back);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* A folder dataset is recorded by its absolute path: one over 56
 * characters came back cut to the field's 63 (heed eval --model then looked
 * for the images in a folder that did not exist, and --resume trained on
 * it). Any path up to PATH_MAX comes back whole. */
START_TEST(long_folder_dataset_round_trips) {
    char path[256], want[4104];
    tmp_path(path, sizeof path, "folder.heed");
    heed_model *m = make_model(), *back;
    int n = snprintf(want, sizeof want, "folder:");
    for (int i = 0; i < 100; i++) n += snprintf(want + n, sizeof want - n, "/a_long_folder_name_%02d", i);
    ck_assert_int_gt(n, 2000);
    snprintf(m->meta.dataset, sizeof m->meta.dataset, "%s", want);
    ck_assert_str_eq(m->meta.dataset, want);
    ck_assert_int_eq(heed_model_save(m, path), HEED_OK);
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_str_eq(back->meta.dataset, want);
    heed_model_free(back);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* Per-channel normalisation comes back as written; its rules are
 * refused on saving as on loading; a model without it reads each
 * channel's pair as input_mean and input_std. */
START_TEST(channel_normalisation_round_trips) {
    char path[256];
    tmp_path(path, sizeof path, "channels.heed");
    heed_model *m = make_model(), *back;
    float mean, std;
    heed_model_channel_norm(&m->meta, 0, &mean, &std);
    ck_assert(mean == 0.25f && std == 0.5f);
    m->meta.norm_channels = 1;
    m->meta.channel_mean[0] = 0.125f, m->meta.channel_std[0] = 0.7f;
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(back->meta.norm_channels, 1);
    heed_model_channel_norm(&back->meta, 0, &mean, &std);
    ck_assert(mean == 0.125f && std == 0.7f);
    ck_assert_float_eq(back->meta.input_mean, 0.25f); /* the all-channel pair stays, for older readers */
    heed_model_free(back);
    m->meta.norm_channels = 3;
    ck_assert_int_eq(heed_model_save(m, path), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "per-channel normalisation for 3 channels, but the network takes 1"),
                  "%s", heed_last_error());
    m->meta.norm_channels = 1, m->meta.channel_std[0] = 0;
    ck_assert_int_eq(heed_model_save(m, path), HEED_ERR_ARG);
    m->meta.channel_std[0] = 1, m->meta.channel_mean[0] = NAN;
    ck_assert_int_eq(heed_model_save(m, path), HEED_ERR_ARG);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* The pairs hold four channels: norm_channels 5 (a 5-channel network)
 * had check_meta read channel_mean[4] past its array; at -O3 the check
 * stopped at 4, save wrote four pairs and returned HEED_OK, and the file
 * did not load ("for 4 channels, but the network takes 5"). Refused now. */
START_TEST(channel_normalisation_holds_four_channels) {
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, "input 5 4 4\nflatten\nfc out=3\n", "t", 1), HEED_OK);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"a", "b", "c"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    m->meta.norm_channels = 5;
    for (int c = 0; c < 4; c++) m->meta.channel_mean[c] = 0.5f, m->meta.channel_std[c] = 0.25f;
    void *data = NULL;
    size_t len;
    ck_assert_int_eq(heed_model_encode_mem(m, &data, &len), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "per-channel normalisation for 5 channels (it holds 1 to 4)"), "%s",
                  heed_last_error());
    m->meta.norm_channels = -1;
    ck_assert_int_eq(heed_model_encode_mem(m, &data, &len), HEED_ERR_ARG);
    m->meta.norm_channels = 0;
    ck_assert_msg(heed_model_encode_mem(m, &data, &len) == HEED_OK, "%s", heed_last_error());
    free(data);
    heed_model_free(m);
}
END_TEST

/* Two META (or NETD, PARM) chunks, each with a good checksum: the last one
 * won, where another reader may take the first. */
START_TEST(a_chunk_twice_is_refused) {
    char path[256], bad[256];
    tmp_path(path, sizeof path, "twice-good.heed");
    tmp_path(bad, sizeof bad, "twice-bad.heed");
    static const char *const tags[] = {"NETD", "META", "PARM"};
    for (int t = 0; t < 3; t++) {
        chunk_edit c[9];
        const int n = saved_chunks(path, c, 8);
        const chunk_edit *one = find_chunk(c, n, tags[t]);
        c[n] = *one;
        c[n].data = malloc(one->size + 1);
        memcpy(c[n].data, one->data, one->size);
        write_chunks(bad, c, n + 1, "");
        heed_model *back = (heed_model *)1;
        ck_assert_int_eq(heed_model_load(&back, bad), HEED_ERR_FORMAT);
        ck_assert_ptr_null(back);
        char want[64];
        snprintf(want, sizeof want, "chunk %s appears twice", tags[t]);
        ck_assert_msg(strstr(heed_last_error(), want), "%s", heed_last_error());
        free_chunks(c, n + 1);
    }
    unlink(path), unlink(bad);
}
END_TEST

/* The temporary file is created, never opened through what is there: a
 * link planted at its (predictable) name had the model written into the
 * link's target. */
START_TEST(save_does_not_write_through_a_planted_link) {
    char dir[512], path[600], tmp[700], victim[600];
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "model-link"), 0);
    snprintf(path, sizeof path, "%s/m.heed", dir);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    tu_write_text(victim, "precious\n");
    ck_assert_int_eq(heed_atomic_tmp_name(tmp, sizeof tmp, path), 0);
    ck_assert_int_eq(symlink(victim, tmp), 0);
    heed_model *m = make_model();
    ck_assert_int_eq(heed_model_save(m, path), HEED_ERR_IO);
    ck_assert_msg(strstr(heed_last_error(), "File exists"), "%s", heed_last_error());
    char text[64];
    tu_read_file(victim, text, sizeof text);
    ck_assert_str_eq(text, "precious\n");
    ck_assert_int_ne(access(path, F_OK), 0);
    heed_model_free(m);
    tu_remove_dir(dir);
}
END_TEST

START_TEST(save_is_atomic_and_reports_bad_paths) {
    heed_model *m = make_model();
    ck_assert_int_eq(heed_model_save(m, "/tmp/heed-no-such-dir/x/model.heed"), HEED_ERR_IO);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "/tmp/heed-no-such-dir/x/model.heed"));
    ck_assert_msg(strstr(heed_last_error(), "No such file or directory"), "%s", heed_last_error());
    /* Written, then refused by the rename (a directory stands at the
     * path): the reason is said, and the temporary file is gone. */
    char dir[512], tmp[600];
    ck_assert_int_eq(tu_scratch_dir(dir, sizeof dir, "model-save"), 0);
    ck_assert_int_eq(heed_model_save(m, dir), HEED_ERR_IO);
    ck_assert_msg(strstr(heed_last_error(), "Is a directory"), "%s", heed_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    tu_remove_dir(dir);
    heed_model_free(m);
}
END_TEST

/* Saving refuses, with load's message and writing nothing, metadata that
 * load would refuse: a file that saves is a file that loads. */
START_TEST(save_refuses_what_load_would) {
    char path[256];
    tmp_path(path, sizeof path, "refused.heed");
    unlink(path);
    for (int c = 0; c < 9; c++) {
        heed_model *m = make_model();
        const char *expect = NULL;
        const char *five[] = {"a", "b", "c", "d", "e"};
        switch (c) {
        case 0:
            ck_assert_int_eq(heed_model_set_classes(m, 5, five), HEED_OK);
            expect = "the network has 3 outputs but 5 classes";
            break;
        case 1: m->meta.input_std = 0.0f, expect = "bad metadata value for input_std: '0'"; break;
        case 2: m->meta.test_accuracy = 5.0f, expect = "bad metadata value for test_accuracy: '5'"; break;
        case 3: m->meta.input_mean = NAN, expect = "bad metadata value for input_mean"; break;
        case 4: m->meta.train_seconds = -1.0f, expect = "bad metadata value for train_seconds"; break;
        case 5: m->meta.dark_background = 2, expect = "bad metadata value for dark_background: '2'"; break;
        case 6: m->meta.epochs = -3, expect = "bad metadata value for epochs: '-3'"; break;
        case 7: /* written past heed_model_set_classes's check */
            snprintf(m->meta.class_names[1], sizeof m->meta.class_names[1], "two\nlines");
            expect = "bad metadata value for class";
            break;
        case 8:
            free(m->meta.class_names);
            m->meta.class_names = NULL, m->meta.classes = 0;
            expect = "bad class count '0'";
            break;
        }
        ck_assert_int_eq(heed_model_save(m, path), HEED_ERR_ARG);
        ck_assert_msg(strstr(heed_last_error(), expect), "case %d: got '%s', want '%s'", c,
                      heed_last_error(), expect);
        ck_assert_msg(strstr(heed_last_error(), path), "%s", heed_last_error());
        ck_assert_int_ne(access(path, F_OK), 0);
        heed_model_free(m);
    }
    /* the edges of the ranges save and load */
    heed_model *m = make_model(), *back;
    m->meta.test_accuracy = -1.0f;
    m->meta.input_std = 1e-6f;
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    heed_model_free(back);
    m->meta.test_accuracy = 1.0f;
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    ck_assert_float_eq(back->meta.test_accuracy, 1.0f);
    heed_model_free(back);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* Extra chunks that load would refuse: one tagged like the model's own
 * chunks (a second NETD, META or PARM: "appears twice"), or more than the
 * 64 chunks load reads. save_with wrote such files, which then never
 * loaded again (a checkpoint lost); now it refuses them, writing nothing. */
START_TEST(save_with_refuses_extra_chunks_load_would) {
    char path[256];
    tmp_path(path, sizeof path, "extra-refused.heed");
    unlink(path);
    heed_model *m = make_model();
    static const char *const tags[] = {"NETD", "META", "PARM"};
    for (int t = 0; t < 3; t++) {
        heed_chunk extra[2] = {{.tag = "OPTM", .data = (unsigned char *)"x", .size = 1},
                               {.data = (unsigned char *)"x", .size = 1}};
        memcpy(extra[1].tag, tags[t], 5);
        ck_assert_int_eq(heed_model_save_with(m, path, extra, 2), HEED_ERR_ARG);
        char want[64];
        snprintf(want, sizeof want, "extra chunk 2 is tagged %s", tags[t]);
        ck_assert_msg(strstr(heed_last_error(), want) && strstr(heed_last_error(), path), "%s",
                      heed_last_error());
        ck_assert_int_ne(access(path, F_OK), 0);
    }
    heed_chunk many[62];
    for (int i = 0; i < 62; i++)
        many[i] = (heed_chunk){.tag = "OPTM", .data = (unsigned char *)"x", .size = 1};
    ck_assert_int_eq(heed_model_save_with(m, path, many, 62), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "62 extra chunks, at most 61"), "%s", heed_last_error());
    ck_assert_int_ne(access(path, F_OK), 0);
    /* the most that fit save and load */
    ck_assert_msg(heed_model_save_with(m, path, many, 61) == HEED_OK, "%s", heed_last_error());
    heed_model *back;
    heed_chunk *chunks;
    int n;
    ck_assert_msg(heed_model_load_with(&back, path, &chunks, &n) == HEED_OK, "%s", heed_last_error());
    ck_assert_int_eq(n, 61);
    heed_chunks_free(chunks, n);
    heed_model_free(back);
    heed_model_free(m);
    /* and a file of one chunk more than that, framed and checksummed as a
     * writer would, is what load refuses */
    chunk_edit c[65];
    ck_assert_int_eq(saved_chunks(path, c, 3), 3);
    for (int i = 3; i < 65; i++) {
        c[i] = (chunk_edit){.tag = "OPTM", .data = malloc(1), .size = 1};
        c[i].data[0] = 'x';
    }
    write_chunks(path, c, 65, "");
    back = (heed_model *)1;
    ck_assert_int_eq(heed_model_load(&back, path), HEED_ERR_FORMAT);
    ck_assert_ptr_null(back);
    ck_assert_msg(strstr(heed_last_error(), "implausible chunk count 65"), "%s", heed_last_error());
    free_chunks(c, 65);
    unlink(path);
}
END_TEST

/* heed_net_wrap moves the store (the caller's is left empty); such a
 * network has no description text, so it cannot be saved. */
START_TEST(network_built_in_code_cannot_be_saved) {
    char path[256];
    tmp_path(path, sizeof path, "code.heed");
    heed_params p = {0};
    heed_seq *s;
    heed_linear *fc;
    ck_assert_int_eq(heed_seq_new(&s, (int[3]){4, 1, 1}, ""), HEED_OK);
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.out = 3}, (int[3]){4, 1, 1}, &p, "fc"),
                     HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &fc->base), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(&p, 1), HEED_OK);
    heed_net *net;
    ck_assert_int_eq(heed_net_wrap(&net, s, &p), HEED_OK);
    ck_assert_int_eq(p.count, 0);
    ck_assert_ptr_null(p.values);
    ck_assert_int_eq(net->params.count, 2);
    ck_assert_ptr_eq(fc->w, net->params.values);
    heed_model *m;
    ck_assert_int_eq(heed_model_new(&m, net), HEED_OK);
    const char *names[] = {"a", "b", "c"};
    ck_assert_int_eq(heed_model_set_classes(m, 3, names), HEED_OK);
    ck_assert_int_eq(heed_model_save(m, path), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "the network was built in code, not from a description "
                                            "(heed_params_save saves its weights)"),
                  "%s", heed_last_error());
    ck_assert_int_ne(access(path, F_OK), 0);
    heed_model_free(m);
}
END_TEST

/* A sequence built in code: conv, bn, relu, fc (names as a program gives
 * them), its store allocated from seed. */
static heed_seq *code_net(heed_params *p, uint64_t seed, int fc_out) {
    heed_seq *s;
    heed_conv2d *conv;
    heed_batchnorm *bn;
    heed_activation *relu;
    heed_linear *fc;
    *p = (heed_params){0};
    ck_assert_int_eq(heed_seq_new(&s, (int[3]){2, 6, 6}, "net"), HEED_OK);
    ck_assert_int_eq(heed_conv2d_new(&conv, &(heed_conv2d_cfg){.in_c = 2, .out_c = 3, .k = 3, .pad = 1},
                                     (int[3]){2, 6, 6}, p, "conv"), HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &conv->base), HEED_OK);
    ck_assert_int_eq(heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){0}, (int[3]){3, 6, 6}, p, "bn"), HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &bn->base), HEED_OK);
    ck_assert_int_eq(heed_activation_new(&relu, &(heed_activation_cfg){.kind = HEED_ACT_RELU},
                                         (int[3]){3, 6, 6}, p, "relu"), HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &relu->base), HEED_OK);
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.out = fc_out}, (int[3]){3, 6, 6}, p, "fc"),
                     HEED_OK);
    ck_assert_int_eq(heed_seq_append(s, &fc->base), HEED_OK);
    ck_assert_int_eq(heed_params_alloc(p, seed), HEED_OK);
    /* running statistics away from their defaults, so the file must carry them */
    for (int i = 0; i < p->count; i++)
        if (p->items[i].flags & HEED_PARAM_BUFFER)
            tu_fill_uniform(p->values + p->items[i].offset, p->items[i].count, 0.5f, 1.5f, seed + (uint64_t)i);
    heed_layer_set_training(&s->base, 0);
    return s;
}

/* Do a and b (the same network's stores) hold the same tensors? */
static int same_tensors(const heed_params *a, const heed_params *b) {
    for (int i = 0; i < a->count; i++)
        if (memcmp(a->values + a->items[i].offset, b->values + b->items[i].offset,
                   a->items[i].count * sizeof(float)))
            return 0;
    return 1;
}

static void code_forward(heed_seq *s, heed_tensor *y) {
    heed_tensor x = {0};
    ck_assert_int_eq(heed_tensor_alloc(&x, 2, 2, 6, 6), HEED_OK);
    tu_fill_uniform(x.data, heed_tensor_count(&x), -1, 1, 4);
    ck_assert_int_eq(heed_layer_forward(&s->base, &x, y), HEED_OK);
    heed_tensor_free(&x);
}

START_TEST(weights_of_a_network_built_in_code_round_trip) {
    char path[256];
    tmp_path(path, sizeof path, "weights.heed");
    heed_params p, q;
    heed_seq *a = code_net(&p, 1, 4), *b = code_net(&q, 2, 4);
    heed_tensor ya = {0}, yb = {0};
    code_forward(a, &ya);
    ck_assert_msg(heed_params_save(&p, path) == HEED_OK, "%s", heed_last_error());
    ck_assert(!same_tensors(&p, &q));
    ck_assert_msg(heed_params_load(&q, path) == HEED_OK, "%s", heed_last_error());
    ck_assert(same_tensors(&p, &q));
    code_forward(b, &yb);
    ck_assert_int_eq(memcmp(ya.data, yb.data, heed_tensor_count(&ya) * sizeof(float)), 0);
    /* a model loader shown such a file says what it is */
    heed_model *m;
    ck_assert_int_eq(heed_model_load(&m, path), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "holds parameters only (heed_params_save), no network: load them "
                                            "with heed_params_load"), "%s", heed_last_error());
    heed_tensor_free(&ya), heed_tensor_free(&yb);
    heed_layer_free(&a->base), heed_layer_free(&b->base);
    heed_params_free(&p), heed_params_free(&q);
    unlink(path);
}
END_TEST

/* A model's (or checkpoint's) PARM chunk loads into the same network. */
START_TEST(weights_load_from_a_model_file) {
    char path[256];
    tmp_path(path, sizeof path, "model-weights.heed");
    heed_model *m = make_model();
    ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, NET, "t", 5), HEED_OK);
    ck_assert_msg(heed_params_load(&net->params, path) == HEED_OK, "%s", heed_last_error());
    ck_assert(same_tensors(&net->params, &m->net->params));
    heed_net_free(net);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* Weights load would refuse (not finite; a negative running variance)
 * are refused by both saves, writing nothing: a good file already at the
 * path stays as it was, instead of being replaced by one that never loads. */
START_TEST(saves_refuse_weights_load_would) {
    char path[256];
    tmp_path(path, sizeof path, "bad-weights.heed");
    heed_model *m = make_model();
    heed_params *p = &m->net->params;
    float *w = NULL, *var = NULL;
    for (int i = 0; i < p->count; i++) {
        const char *name = p->items[i].name;
        if (!w && !(p->items[i].flags & HEED_PARAM_BUFFER)) w = p->values + p->items[i].offset;
        if (!var && strstr(name, ".running_var")) var = p->values + p->items[i].offset;
    }
    ck_assert(w && var);
    for (int c = 0; c < 4; c++) {
        ck_assert_msg(heed_model_save(m, path) == HEED_OK, "%s", heed_last_error());
        size_t good_len, len;
        unsigned char *good = slurp(path, &good_len);
        float *at = c < 3 ? w : var;
        const float keep = *at;
        *at = c == 0 ? NAN : c == 1 ? INFINITY : c == 2 ? -INFINITY : -1.0f;
        for (int params_only = 0; params_only < 2; params_only++) {
            heed_status st = params_only ? heed_params_save(p, path) : heed_model_save(m, path);
            ck_assert_msg(st == HEED_ERR_ARG, "case %d%s: saved (%d)", c, params_only ? " (params)" : "", st);
            ck_assert_msg(strstr(heed_last_error(), path) && strstr(heed_last_error(), "holds"), "%s",
                          heed_last_error());
            unsigned char *now = slurp(path, &len);
            ck_assert(len == good_len && !memcmp(now, good, len));
            free(now);
        }
        *at = keep;
        free(good);
    }
    heed_model *back;
    ck_assert_msg(heed_model_load(&back, path) == HEED_OK, "%s", heed_last_error());
    heed_model_free(back);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* Another network's weights, or a damaged file: refused, naming what
 * differs, and the store is as it was (the file is read whole first). */
START_TEST(weights_that_do_not_fit_change_nothing) {
    char path[256], bad[256];
    tmp_path(path, sizeof path, "w5.heed");
    tmp_path(bad, sizeof bad, "w5-bad.heed");
    heed_params p, q;
    heed_seq *a = code_net(&p, 1, 5), *b = code_net(&q, 2, 4);
    ck_assert_int_eq(heed_params_save(&p, path), HEED_OK);
    float *before = malloc(q.total * sizeof(float));
    memcpy(before, q.values, q.total * sizeof(float));
    /* fc is the last tensor read: everything before it was read into the copy */
    ck_assert_int_eq(heed_params_load(&q, path), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "parameter 'fc.weight' has a different shape than the network's") ||
                      strstr(heed_last_error(), "parameter 'fc.bias' has a different shape than the network's"),
                  "%s", heed_last_error());
    ck_assert_int_eq(memcmp(before, q.values, q.total * sizeof(float)), 0);
    /* a value that is not finite, with the checksum made right */
    size_t len;
    unsigned char *bytes = slurp(path, &len);
    const size_t parm = 8 + 4 + 4 + 4 + 8; /* header, tag, size */
    float nan = NAN;
    memcpy(bytes + len - 4 - sizeof nan, &nan, sizeof nan); /* the last float of the last tensor */
    const uint32_t crc = (uint32_t)crc32(0L, bytes + parm, (uInt)(len - parm - 4));
    for (int i = 0; i < 4; i++) bytes[len - 4 + i] = (unsigned char)(crc >> 8 * i);
    spit(bad, bytes, len);
    heed_params r;
    heed_seq *c = code_net(&r, 3, 5);
    free(before);
    before = malloc(r.total * sizeof(float));
    memcpy(before, r.values, r.total * sizeof(float));
    ck_assert_int_eq(heed_params_load(&r, bad), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "parameter 'fc.bias' holds nan"), "%s", heed_last_error());
    ck_assert_int_eq(memcmp(before, r.values, r.total * sizeof(float)), 0);
    /* a flipped byte: the checksum */
    bytes[parm + 10] ^= 1;
    spit(bad, bytes, len);
    ck_assert_int_eq(heed_params_load(&r, bad), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "checksum mismatch in chunk PARM"), "%s", heed_last_error());
    ck_assert_int_eq(memcmp(before, r.values, r.total * sizeof(float)), 0);
    /* a store not allocated yet */
    heed_params empty = {0};
    heed_linear *fc;
    ck_assert_int_eq(heed_linear_new(&fc, &(heed_linear_cfg){.out = 2}, (int[3]){3, 1, 1}, &empty, "fc"), HEED_OK);
    ck_assert_int_eq(heed_params_load(&empty, path), HEED_ERR_ARG);
    ck_assert_int_eq(heed_params_save(&empty, path), HEED_ERR_ARG);
    ck_assert_msg(strstr(heed_last_error(), "not allocated"), "%s", heed_last_error());
    heed_layer_free(&fc->base);
    heed_params_free(&empty);
    free(bytes);
    free(before);
    heed_layer_free(&a->base), heed_layer_free(&b->base), heed_layer_free(&c->base);
    heed_params_free(&p), heed_params_free(&q), heed_params_free(&r);
    unlink(path);
    unlink(bad);
}
END_TEST

/* In memory, the bytes are a file's: what encode_mem gives is what save
 * writes, and load_mem reads it back to the same model, which no longer
 * needs the bytes once loaded (ASan would see a read of the freed copy). */
START_TEST(models_and_weights_round_trip_through_memory) {
    char path[256];
    tmp_path(path, sizeof path, "mem.heed");
    heed_model *m = make_model(), *back;
    ck_assert_int_eq(heed_model_save(m, path), HEED_OK);
    size_t file_len, len;
    unsigned char *file = slurp(path, &file_len);
    void *data;
    ck_assert_msg(heed_model_encode_mem(m, &data, &len) == HEED_OK, "%s", heed_last_error());
    ck_assert(len == file_len && !memcmp(data, file, len));
    unsigned char *copy = malloc(len);
    memcpy(copy, data, len);
    ck_assert_msg(heed_model_load_mem(&back, copy, len, "flash") == HEED_OK, "%s", heed_last_error());
    free(copy);
    ck_assert_int_eq(memcmp(m->net->params.values, back->net->params.values,
                            m->net->params.total * sizeof(float)), 0);
    ck_assert_str_eq(back->meta.class_names[2], "T-shirt/top");
    ck_assert_float_eq(back->meta.input_std, 0.5f);
    heed_tensor y1 = {0}, y2 = {0};
    forward(m, &y1);
    forward(back, &y2);
    ck_assert_int_eq(memcmp(y1.data, y2.data, heed_tensor_count(&y1) * sizeof(float)), 0);
    heed_tensor_free(&y1), heed_tensor_free(&y2);
    heed_model_free(back);
    free(data);
    free(file);

    /* weights alone, for a network built in code */
    heed_params p, q;
    heed_seq *a = code_net(&p, 1, 4), *b = code_net(&q, 2, 4);
    ck_assert_int_eq(heed_params_save(&p, path), HEED_OK);
    file = slurp(path, &file_len);
    ck_assert_msg(heed_params_encode_mem(&p, &data, &len) == HEED_OK, "%s", heed_last_error());
    ck_assert(len == file_len && !memcmp(data, file, len));
    ck_assert(!same_tensors(&p, &q));
    ck_assert_msg(heed_params_load_mem(&q, data, len, NULL) == HEED_OK, "%s", heed_last_error());
    ck_assert(same_tensors(&p, &q));
    /* and a model's weights into the network it came from */
    heed_net *net;
    ck_assert_int_eq(heed_net_parse(&net, NET, "t", 5), HEED_OK);
    void *model_bytes;
    size_t model_len;
    ck_assert_int_eq(heed_model_encode_mem(m, &model_bytes, &model_len), HEED_OK);
    ck_assert_msg(heed_params_load_mem(&net->params, model_bytes, model_len, "m") == HEED_OK, "%s",
                  heed_last_error());
    ck_assert(same_tensors(&net->params, &m->net->params));
    heed_net_free(net);
    free(model_bytes);
    free(data);
    free(file);
    heed_layer_free(&a->base), heed_layer_free(&b->base);
    heed_params_free(&p), heed_params_free(&q);
    heed_model_free(m);
    unlink(path);
}
END_TEST

/* A damaged buffer fails as a damaged file does, named as the caller
 * names it; arguments that describe no buffer are refused before reading. */
START_TEST(models_in_memory_fail_like_files) {
    heed_model *m = make_model(), *back;
    void *data;
    size_t len;
    ck_assert_int_eq(heed_model_encode_mem(m, &data, &len), HEED_OK);
    unsigned char *b = data;
    for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 97) {
        back = (heed_model *)1;
        ck_assert_int_eq(heed_model_load_mem(&back, b, cut, "flash model"), HEED_ERR_FORMAT);
        ck_assert_ptr_null(back);
        ck_assert_msg(!strncmp(heed_last_error(), "flash model: ", 13), "%s", heed_last_error());
    }
    for (size_t at = 0; at < len; at += 13) {
        b[at] ^= 0x10;
        ck_assert_int_ne(heed_model_load_mem(&back, b, len, "flash model"), HEED_OK);
        ck_assert_ptr_null(back);
        b[at] ^= 0x10;
    }
    ck_assert_int_eq(heed_model_load_mem(&back, b, len - 1, NULL), HEED_ERR_FORMAT);
    ck_assert_msg(!strncmp(heed_last_error(), "model in memory: ", 17), "%s", heed_last_error());
    ck_assert_int_eq(heed_model_load_mem(&back, NULL, 10, "x"), HEED_ERR_ARG);
    ck_assert_int_eq(heed_model_load_mem(&back, NULL, 0, "x"), HEED_ERR_FORMAT);
    ck_assert_int_eq(heed_model_load_mem(&back, b, (size_t)1 << 30, "x"), HEED_ERR_LIMIT);
    ck_assert_msg(strstr(heed_last_error(), "larger than 1 GiB"), "%s", heed_last_error());
    /* the weights of another network change nothing */
    heed_params q;
    heed_seq *s = code_net(&q, 2, 4);
    float *before = malloc(q.total * sizeof(float));
    memcpy(before, q.values, q.total * sizeof(float));
    ck_assert_int_eq(heed_params_load_mem(&q, b, len, NULL), HEED_ERR_FORMAT);
    ck_assert_msg(strstr(heed_last_error(), "parameters in memory: "), "%s", heed_last_error());
    ck_assert_int_eq(memcmp(before, q.values, q.total * sizeof(float)), 0);
    free(before);
    heed_layer_free(&s->base);
    heed_params_free(&q);
    free(data);
    /* encode refuses what save refuses, giving no bytes */
    m->meta.input_std = 0;
    data = (void *)1;
    ck_assert_int_eq(heed_model_encode_mem(m, &data, &len), HEED_ERR_ARG);
    ck_assert(data == NULL && len == 0);
    heed_model_free(m);
}
END_TEST

/* Chunks are checked by heed's own CRC-32 (no zlib in a MINIMAL=1 build):
 * the standard check value of "123456789", and zlib's crc32 on every
 * length to 80 bytes from every start within 8, and on 1 MB. */
START_TEST(crc32_is_zlibs) {
    ck_assert_uint_eq(heed_crc32("123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(heed_crc32("", 0), 0);
    enum { BIG = 1 << 20 };
    unsigned char *b = malloc(BIG);
    heed_rng r;
    heed_rng_seed(&r, 3, 1);
    for (size_t i = 0; i < BIG; i++) b[i] = (unsigned char)heed_rng_u32(&r);
    for (size_t start = 0; start < 8; start++)
        for (size_t n = 0; n <= 80; n++)
            ck_assert_uint_eq(heed_crc32(b + start, n), (uint32_t)crc32(0L, b + start, (uInt)n));
    ck_assert_uint_eq(heed_crc32(b, BIG), (uint32_t)crc32(0L, b, BIG));
    free(b);
}
END_TEST

Suite *heed_suite_model(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, round_trip_is_bit_identical);
    tcase_add_test(tc, a_chunk_twice_is_refused);
    tcase_add_test(tc, save_does_not_write_through_a_planted_link);
    tcase_add_test(tc, truncated_and_corrupt_files_fail_cleanly);
    tcase_add_test(tc, crc32_is_zlibs);
    tcase_add_loop_test(tc, crafted_files_fail_with_reasons, 0, sizeof edits / sizeof edits[0]);
    tcase_add_test(tc, metadata_with_crlf_lines_reads);
    tcase_add_test(tc, class_names_with_control_characters_are_refused);
    tcase_add_test(tc, class_names_are_cut_between_characters);
    tcase_add_test(tc, nul_byte_in_a_text_chunk_is_refused);
    tcase_add_test(tc, free_text_with_control_characters_saves_as_one_line);
    tcase_add_test(tc, long_folder_dataset_round_trips);
    tcase_add_test(tc, channel_normalisation_round_trips);
    tcase_add_test(tc, channel_normalisation_holds_four_channels);
    tcase_add_test(tc, save_is_atomic_and_reports_bad_paths);
    tcase_add_test(tc, save_refuses_what_load_would);
    tcase_add_test(tc, save_with_refuses_extra_chunks_load_would);
    tcase_add_test(tc, network_built_in_code_cannot_be_saved);
    tcase_add_test(tc, weights_of_a_network_built_in_code_round_trip);
    tcase_add_test(tc, weights_load_from_a_model_file);
    tcase_add_test(tc, weights_that_do_not_fit_change_nothing);
    tcase_add_test(tc, saves_refuse_weights_load_would);
    tcase_add_test(tc, models_and_weights_round_trip_through_memory);
    tcase_add_test(tc, models_in_memory_fail_like_files);
    suite_add_tcase(s, tc);
    return s;
}
