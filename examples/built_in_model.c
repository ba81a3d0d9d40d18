/* built_in_model.c -- a program with its model compiled in: it needs no
 * model file at run time, as on a device without a file system. The
 * model's bytes are an array in another source file (the Makefile makes
 * it from models/fmnist-se.heed with od; `xxd -i` writes the same bytes
 * under names of its own), and the
 * image comes from standard input, so nothing here opens a file.
 *
 *   built_in_model < images/test-00000-Ankle_boot.png
 *
 * prints the three likeliest classes, as `heed classify --top 3` lists
 * them under the image's name.
 * `make check` builds and runs it (tests/check_cli.c). */
#include <heed/heed.h>
#include <stdio.h>
#include <stdlib.h>

extern const unsigned char heed_builtin_model[];
extern const unsigned long heed_builtin_model_size;

#define TRY(x) do { if ((x) != HEED_OK) { fprintf(stderr, "%s\n", heed_last_error()); goto done; } } while (0)

/* Standard input into a malloc'ed buffer (frames arrive as bytes). */
static unsigned char *read_all(FILE *f, size_t *size) {
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *grown = realloc(buf, cap *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    *size = n;
    return buf;
}

int main(void) {
    int rc = 1;
    heed_model *m = NULL;
    heed_tensor img = {0}, x = {0}, logits = {0}, probs = {0};
    size_t size = 0;
    unsigned char *bytes = read_all(stdin, &size);
    if (!bytes) {
        fprintf(stderr, "out of memory reading the image\n");
        return 1;
    }
    TRY(heed_model_load_mem(&m, heed_builtin_model, heed_builtin_model_size, "built-in model"));
    heed_net_set_training(m->net, 0);
    heed_net_set_frozen(m->net, 1);
    TRY(heed_image_load_mem(bytes, size, "standard input", 0, &img));
    TRY(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, NULL, NULL));
    TRY(heed_net_forward(m->net, &x, &logits));
    TRY(heed_softmax_forward(&logits, &probs));
    /* the three likeliest, best first */
    const int n = m->meta.classes;
    int shown[3] = {-1, -1, -1};
    for (int r = 0; r < 3 && r < n; r++) {
        int best = -1;
        for (int k = 0; k < n; k++)
            if (k != shown[0] && k != shown[1] && (best < 0 || probs.data[k] > probs.data[best])) best = k;
        shown[r] = best;
        printf("  %6.2f%%  %s\n", 100 * probs.data[best], m->meta.class_names[best]);
    }
    rc = 0;
done:
    free(bytes);
    heed_tensor_free(&img), heed_tensor_free(&x), heed_tensor_free(&logits), heed_tensor_free(&probs);
    heed_model_free(m);
    return rc;
}
