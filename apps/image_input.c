/* image_input.c -- see image_input.h. */
#include "image_input.h"

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "evaluate.h"
#include "image.h"

heed_status prepare_input(const heed_model *m, const heed_tensor *img, const char *invert,
                          heed_tensor *x, placement *pl, int *inverted) {
    int C = m->net->in_c, H = m->net->in_h, W = m->net->in_w;
    heed_tensor conv = {0}, small = {0};
    HEED_TRY(heed_image_convert(img, C, &conv));
    double scale = fmin((double)H / img->h, (double)W / img->w);
    pl->w = (int)lround(img->w * scale), pl->h = (int)lround(img->h * scale);
    if (pl->w < 1) pl->w = 1;
    if (pl->h < 1) pl->h = 1;
    pl->x = (W - pl->w) / 2, pl->y = (H - pl->h) / 2;
    heed_status st = heed_image_resize(&conv, pl->h, pl->w, &small);
    /* Auto polarity: a light border means a light background, which a model
     * trained on light-on-dark items needs inverted. */
    double border = 0;
    int nb = 0;
    for (int c = 0; st == HEED_OK && c < C; c++)
        for (int i = 0; i < img->h; i++)
            for (int j = 0; j < img->w; j++)
                if (i == 0 || j == 0 || i == img->h - 1 || j == img->w - 1)
                    border += conv.data[((size_t)c * img->h + i) * img->w + j], nb++;
    int light = nb && border / nb > 0.5;
    *inverted = !strcmp(invert, "yes") || (!strcmp(invert, "auto") && light == m->meta.dark_background);
    if (st == HEED_OK) st = heed_tensor_ensure(x, 1, C, H, W);
    if (st == HEED_OK) {
        /* Letterbox with the image's own background, in the model's polarity. */
        float bg = light ? 1.0f : 0.0f;
        heed_tensor_fill(x, *inverted ? 1.0f - bg : bg);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < pl->h; i++)
                for (int j = 0; j < pl->w; j++) {
                    float v = small.data[((size_t)c * pl->h + i) * pl->w + j];
                    x->data[((size_t)c * H + pl->y + i) * W + pl->x + j] = *inverted ? 1.0f - v : v;
                }
        normalize_batch(x, m->meta.input_mean, m->meta.input_std);
    }
    heed_tensor_free(&conv), heed_tensor_free(&small);
    return st;
}

void top_classes(const float *probs, int k, int top, int *order) {
    for (int i = 0; i < k; i++) order[i] = i;
    for (int i = 0; i < top; i++) /* partial selection sort: top is small */
        for (int j = i + 1; j < k; j++)
            if (probs[order[j]] > probs[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
}

void output_path(char *out, size_t size, const char *dir, const char *image, const char *suffix,
                 const char *ext) {
    char base[4096];
    snprintf(base, sizeof base, "%s", image);
    char *name = basename(base), *dot = strrchr(name, '.');
    if (dot) *dot = '\0';
    snprintf(out, size, "%s/%s-%s.%s", dir, name, suffix, ext);
}

void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    putchar('"');
}
