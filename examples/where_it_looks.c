/* where_it_looks.c -- load a trained model and an image, classify it, and
 * save Grad-CAM's heat map over the image: where the network found its
 * evidence for the class it chose.
 *
 *   where_it_looks models/fmnist-se.heed images/test-00000-Ankle_boot.png out.png
 *
 * The image reaches the network as heed classify brings it
 * (heed_model_input: its aspect ratio kept, a photo on a light background
 * inverted for a Fashion-MNIST model), so the two agree. `make check`
 * builds and runs it (tests/check_cli.c). */
#include <heed/heed.h>
#include <stdio.h>

#define TRY(x) do { if ((x) != HEED_OK) { fprintf(stderr, "%s\n", heed_last_error()); goto done; } } while (0)

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL IMAGE OUT.png\n", argv[0]);
        return 2;
    }
    int rc = 1;
    heed_model *m = NULL;
    heed_tensor img = {0}, x = {0}, logits = {0}, cam = {0}, crop = {0}, vis = {0};
    TRY(heed_model_load(&m, argv[1]));
    heed_net *net = m->net;
    heed_net_set_training(net, 0);
    /* the image as the network takes it: its channels, size, polarity, normalised */
    TRY(heed_image_load(argv[2], 0, &img));
    heed_placement at;
    TRY(heed_model_input(m, &img, HEED_INVERT_AUTO, &x, &at, NULL));
    TRY(heed_net_forward(net, &x, &logits));
    int best = 0;
    for (int k = 1; k < m->meta.classes; k++)
        if (logits.data[k] > logits.data[best]) best = k;
    /* Grad-CAM over the last convolutional stage, blended over the image */
    const int layer = heed_gradcam_default_layer(net);
    if (layer < 0) {
        fprintf(stderr, "%s has no convolutional stage for Grad-CAM\n", argv[1]);
        goto done;
    }
    TRY(heed_gradcam(net, &x, best, layer, &cam));
    TRY(heed_placement_crop(&cam, &at, x.h, x.w, &crop)); /* the part over the image */
    TRY(heed_overlay_heatmap(&img, &crop, HEED_CMAP_JET, 0.5f, &vis));
    TRY(heed_image_save(argv[3], &vis, NULL));
    printf("%s: %s, Grad-CAM over %s (%dx%d) in %s\n", argv[2], m->meta.class_names[best],
           net->root->children[layer]->name, cam.h, cam.w, argv[3]);
    rc = 0;
done:
    heed_tensor_free(&img), heed_tensor_free(&x), heed_tensor_free(&logits);
    heed_tensor_free(&cam), heed_tensor_free(&crop), heed_tensor_free(&vis);
    heed_model_free(m);
    return rc;
}
