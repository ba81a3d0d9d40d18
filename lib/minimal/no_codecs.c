/* no_codecs.c -- what a MINIMAL=1 build links in place of image_png.c,
 * image_jpeg.c and data_idx.c: the same functions, each failing with a
 * message that says the build lacks them. Such a build needs no libpng,
 * libjpeg or zlib: images come in as pixels (heed_image_from_pixels) and
 * go out the same way (heed_image_to_pixels); models, network files and
 * everything else work as in a full build. */
#include "data.h"
#include "image.h"

#define WITHOUT "this heed was built without image codecs (make MINIMAL=1)"

heed_status heed_png_decode(const unsigned char *data, size_t size, const char *name,
                            size_t max_pixels, heed_tensor *out) {
    (void)data, (void)size, (void)max_pixels, (void)out;
    return heed_fail(HEED_ERR_FORMAT, "%s: a PNG image, and " WITHOUT ": give its pixels to "
                     "heed_image_from_pixels", name);
}

heed_status heed_jpeg_decode(const unsigned char *data, size_t size, const char *name,
                             size_t max_pixels, heed_tensor *out) {
    (void)data, (void)size, (void)max_pixels, (void)out;
    return heed_fail(HEED_ERR_FORMAT, "%s: a JPEG image, and " WITHOUT ": give its pixels to "
                     "heed_image_from_pixels", name);
}

heed_status heed_png_encode(const heed_tensor *img, int bits16, void **data, size_t *size) {
    (void)img, (void)bits16;
    *data = NULL, *size = 0;
    return heed_fail(HEED_ERR_FORMAT, "cannot write PNG: " WITHOUT);
}

heed_status heed_jpeg_encode(const heed_tensor *img, int quality, void **data, size_t *size) {
    (void)img, (void)quality;
    *data = NULL, *size = 0;
    return heed_fail(HEED_ERR_FORMAT, "cannot write JPEG: " WITHOUT);
}

heed_status heed_fmnist_load(heed_dataset *d, const char *dir, int train, int limit) {
    (void)train, (void)limit;
    *d = (heed_dataset){0};
    return heed_fail(HEED_ERR_FORMAT, "fashion-mnist: cannot read the IDX files in %s: " WITHOUT " and "
                     "without zlib", dir ? dir : HEED_FMNIST_DIR);
}

heed_status heed_idx_write(const heed_dataset *d, const char *images_path, const char *labels_path) {
    (void)d, (void)labels_path;
    return heed_fail(HEED_ERR_FORMAT, "heed_idx_write: cannot write %s: " WITHOUT " and without zlib",
                     images_path ? images_path : labels_path ? labels_path : "IDX files");
}
