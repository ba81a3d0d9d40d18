/* data.h -- image classification datasets in memory, and mini-batches.
 *
 *   heed_dataset train;
 *   if (heed_fmnist_load(&train, NULL, 1, 0) != HEED_OK)      // 60000 x 1x28x28
 *       fprintf(stderr, "heed: %s\n", heed_last_error());
 *   int *order = ...;  heed_rng_shuffle(&rng, order, train.count);
 *   heed_augment aug = {.crop_pad = 2, .hflip = 1};
 *   heed_tensor x = {0};  int labels[64];
 *   heed_dataset_batch(&train, order, 64, &aug, &rng, &x, labels);   // x (64, 1, 28, 28)
 *   ...
 *   heed_tensor_free(&x);
 *   heed_dataset_free(&train);
 *
 * A dataset holds every image decoded to float in [0, 1], all of one shape
 * (c, h, w), with integer labels in [0, classes). Sources: Fashion-MNIST
 * IDX files (heed_fmnist_load) and a folder per class of PNG/JPEG files
 * (heed_folder_load). The loaders allocate the arrays (images with
 * heed_alloc, the others with malloc; all released by heed_dataset_free).
 * A dataset built by hand for heed_dataset_batch or heed_idx_write needs
 * only the fields those functions read.
 */
#ifndef HEED_DATA_H
#define HEED_DATA_H

#include "error.h"
#include "rng.h"
#include "tensor.h"

/* Where heed_fmnist_load looks when dir is NULL (the Debian package
 * dataset-fashion-mnist installs the files there). */
#define HEED_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct heed_dataset {
    int count, c, h, w, classes;
    float *images;           /* (count, c, h, w) in [0, 1] */
    int *labels;             /* (count) in [0, classes) */
    char (*class_names)[32]; /* (classes) NUL-terminated names, or NULL */
} heed_dataset;

/* Loads the Fashion-MNIST training split (train != 0: train-images-idx3-ubyte
 * and train-labels-idx1-ubyte) or test split (t10k-...) from `dir`
 * (NULL = HEED_FMNIST_DIR). Each file is looked up with the suffix ".gz"
 * first, then without; gzipped or plain content are both read (zlib).
 * limit > 0 keeps only the first `limit` items (fewer if the files hold
 * fewer); the files are still read to the end to validate them.
 *
 * Gives c = 1, h x w as the files say (28 x 28 for Fashion-MNIST), classes
 * 10 named T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt,
 * Sneaker, Bag, Ankle boot; pixels v / 255. *d is overwritten (not freed)
 * and left empty on failure.
 *
 * Errors: HEED_ERR_IO (a file is missing or unreadable; the message names
 * the paths tried), HEED_ERR_FORMAT naming the file for: a magic number
 * other than 2051 (images) or 2049 (labels), a zero dimension, image and
 * label counts that differ, a label >= 10, a file shorter or longer than
 * its header declares, a corrupt gzip stream; HEED_ERR_LIMIT (too many
 * pixels for one tensor), HEED_ERR_NOMEM. */
heed_status heed_fmnist_load(heed_dataset *d, const char *dir, int train, int limit);

/* Writes d's images (c must be 1: IDX images are (count, h, w) bytes, each
 * round(255 v) clamped to [0, 255]) to images_path and its labels (each in
 * [0, 255]) to labels_path, in the IDX format heed_fmnist_load reads
 * (magic 2051 and 2049). A path ending in ".gz" is written gzipped, any
 * other plainly; either path may be NULL to skip that file. On failure no
 * partial file is left behind. Errors: HEED_ERR_ARG (c != 1, an empty
 * dataset, a label outside [0, 255]), HEED_ERR_IO. */
heed_status heed_idx_write(const heed_dataset *d, const char *images_path,
                           const char *labels_path);

/* Loads root/<class>/<file> for every file ending in .png, .jpg or .jpeg
 * (any case) in every sub-folder of root whose name does not start with
 * '.': classes are the folders sorted by name (byte order; label i is the
 * i-th), items are the classes in order, each class's files sorted by name.
 * Each image is decoded (heed_image_load), converted to c channels
 * (heed_image_convert: colour <-> gray, alpha dropped over black) and
 * resized to h x w (heed_image_resize: antialiased bilinear; the aspect
 * ratio is not kept). Files with other names are ignored. *d is
 * overwritten (not freed) and left empty on failure.
 *
 * Errors: HEED_ERR_ARG (c outside 1..4, h or w < 1, no class folder, a class
 * folder with no image, a class name of 32 bytes or more), HEED_ERR_IO
 * (root or a folder unreadable), the image loader's errors for the first
 * file that fails (naming it), HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_folder_load(heed_dataset *d, const char *root, int c, int h, int w);

/* Releases the loaders' arrays; leaves *d empty. Safe on an empty dataset. */
void heed_dataset_free(heed_dataset *d);

/* Training-time augmentation, as torchvision's RandomCrop(size, padding =
 * crop_pad) followed by RandomHorizontalFlip(0.5). */
typedef struct heed_augment {
    int crop_pad; /* >= 0: pad with zeros by this many pixels on every side,
                     then crop h x w at a uniformly random offset */
    int hflip;    /* nonzero: mirror left-right with probability 1/2 */
} heed_augment;

/* Copies items idx[0..n) of d into x, sized here (heed_tensor_ensure) to
 * (n, c, h, w), and their labels into labels[0..n) (labels may be NULL).
 * With aug (NULL = none), each item draws from r, in this order: the crop's
 * row and column offsets in [0, 2 crop_pad] (only if crop_pad > 0), then
 * the flip (only if hflip); so a given r state gives a given batch.
 *
 * Errors: HEED_ERR_ARG (n < 1, an index outside [0, count), a negative
 * crop_pad, augmentation asked for with r NULL, d without images),
 * HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_dataset_batch(const heed_dataset *d, const int *idx, int n,
                               const heed_augment *aug, heed_rng *r, heed_tensor *x,
                               int *labels);

#endif
