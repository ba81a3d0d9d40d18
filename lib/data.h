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
 *
 * Canvas datasets (data_canvas.c), for the recurrent attention model: each
 * Fashion-MNIST item is placed on a larger black canvas, maybe with clutter
 * cut from other items. Only the 28 x 28 source items are kept; every batch
 * renders its canvases on the fly (a pre-rendered 100 x 100 test split
 * would take 400 MB):
 *
 *   heed_dataset test;
 *   heed_canvas_cfg cfg;
 *   heed_canvas_preset(&cfg, "fmnist-cluttered60", 0);           // test split
 *   heed_canvas_load(&test, &cfg, NULL, 0, 0);   // 10000 x 1x60x60, images NULL
 *   heed_dataset_batch(&test, idx, 64, NULL, NULL, &x, labels);  // x (64, 1, 60, 60)
 */
#ifndef HEED_DATA_H
#define HEED_DATA_H

#include "error.h"
#include "rng.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where heed_fmnist_load looks when dir is NULL (the Debian package
 * dataset-fashion-mnist installs the files there). */
#define HEED_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- canvas datasets ------------------------------------------------------
 *
 * Item i of a canvas dataset is source item i (H x W, one channel) on an
 * S x S canvas. Its placement is drawn from a PCG32 r, in this order, each
 * draw a heed_rng_below (uniform integer in [0, n)):
 *   1. the item's column x in [0, S - W], then its row y in [0, S - H]
 *      (every position where the whole item fits);
 *   2. for each clutter piece k = 0 .. clutter-1, five draws:
 *        src  in [0, src_count - 1), then src += (src >= i): a uniform
 *             other source item (with a single source item: no draw, src 0);
 *        cx   in [0, W - P], cy in [0, H - P]: the P x P crop of that item;
 *        px   in [0, S - P], py in [0, S - P]: where the crop goes.
 * For a `fixed` canvas (the test split) r is seeded heed_rng_seed(&r, seed,
 * i): the placement is a pure function of (seed, i), whatever the batch.
 * Otherwise (the training split) the draws come from the generator given to
 * heed_dataset_batch, so placements are fresh each epoch and reproducible.
 *
 * Rendering: the canvas starts black (0); the pieces and then the item are
 * combined by maximum, pixel by pixel, so each canvas pixel is the largest
 * value any of them puts there (0 where none does). Maximum is order-free,
 * stays in [0, 1] and never darkens the item's own strokes; the clutter
 * shows through the item's black background. Labels are the item's. */

/* Test-split placements use this seed (not the training seed): every run,
 * every model, the same test canvases. */
#define HEED_CANVAS_TEST_SEED 20141124u
#define HEED_CANVAS_MAX_CLUTTER 16
/* The names heed_canvas_preset knows, for help texts and error messages. */
#define HEED_CANVAS_NAMES \
    "fmnist-translated60, fmnist-translated100, fmnist-cluttered60, fmnist-cluttered100"

typedef struct heed_canvas_cfg {
    int size;      /* S: the canvas is S x S, S >= the source items' sides */
    int clutter;   /* pieces per canvas, 0..HEED_CANVAS_MAX_CLUTTER */
    int piece;     /* P: a piece's side, 1..min(H, W) (8 in the presets) */
    int fixed;     /* nonzero: placements from (seed, item index) alone */
    uint64_t seed; /* the fixed placements' seed (unused when !fixed) */
} heed_canvas_cfg;

typedef struct heed_canvas {
    heed_canvas_cfg cfg;       /* cfg.size 0: not a canvas dataset */
    int src_count, src_h, src_w;
    float *src;                /* (src_count, src_h, src_w) in [0, 1]: the
                                  whole split; the dataset's items are the
                                  first count of them, clutter comes from all */
} heed_canvas;

/* Where one item and its clutter went on the canvas. */
typedef struct heed_canvas_piece {
    int src;    /* source item the piece is cut from */
    int cy, cx; /* the crop's top-left corner in that item */
    int y, x;   /* the piece's top-left corner on the canvas */
} heed_canvas_piece;

typedef struct heed_canvas_place {
    int y, x;                                        /* the item's top-left corner */
    int pieces;                                      /* = cfg.clutter */
    heed_canvas_piece piece[HEED_CANVAS_MAX_CLUTTER]; /* (pieces) in draw order */
} heed_canvas_place;

typedef struct heed_dataset {
    int count, c, h, w, classes;
    float *images;           /* (count, c, h, w) in [0, 1]; NULL for a canvas
                                dataset, whose items are rendered per batch */
    int *labels;             /* (count) in [0, classes) */
    char (*class_names)[32]; /* (classes) NUL-terminated names, or NULL */
    heed_canvas canvas;      /* canvas.cfg.size 0 for an ordinary dataset */
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
 * pixels for one tensor), HEED_ERR_NOMEM; in a build without codecs
 * (make MINIMAL=1), HEED_ERR_FORMAT always. */
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
 * ratio is not kept). Files with other names are ignored, and so are
 * entries that are not regular files (fifos, devices, broken links). *d is
 * overwritten (not freed) and left empty on failure.
 *
 * Errors: HEED_ERR_ARG (d or root NULL, c outside 1..4, h or w < 1, no class folder, a class
 * folder with no image, a class name of 32 bytes or more), HEED_ERR_IO
 * (root or a folder unreadable), the image loader's errors for the first
 * file that fails (naming it), HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_folder_load(heed_dataset *d, const char *root, int c, int h, int w);

/* Which images of each class folder heed_folder_load_with keeps. */
typedef enum heed_folder_part {
    HEED_FOLDER_ALL,   /* every image: heed_folder_load */
    HEED_FOLDER_TRAIN, /* those heed_folder_holdout leaves for training */
    HEED_FOLDER_TEST   /* those it holds out for testing */
} heed_folder_part;

/* Whether the image file `name` (its name in its class folder, without the
 * folder) is held out for testing when one folder of class folders is
 * split in two: when the 32-bit FNV-1a hash of the name's bytes is a
 * multiple of 5, about one image in five. The name alone decides, so
 * adding or removing other images moves no image from one part to the
 * other, and every run on every machine splits alike. */
int heed_folder_holdout(const char *name);

/* How heed_folder_load_with reads a folder ({0}: as heed_folder_load). */
typedef struct heed_folder_opts {
    heed_folder_part part; /* which images of each class folder */
    /* NULL, or called as images are decoded (done of total, done rising)
     * from the calling thread only, while OpenMP threads decode beside
     * it: to show progress on a large folder. The call with done ==
     * total comes once, when every image has decoded; none comes after
     * a failure. */
    void (*progress)(void *ctx, int done, int total);
    void *ctx;
} heed_folder_opts;

/* heed_folder_load keeping only opts->part of every class folder's images
 * (opts NULL: every image, no progress). The classes are every class
 * folder, whether or not the part has an image of it, so both parts
 * label alike. Errors: those of heed_folder_load, and HEED_ERR_ARG when
 * the training part of a class is empty (all of its images are held out)
 * or the test part of the whole folder is (too few images to hold any
 * out); each message names the folder and how many images it has. */
heed_status heed_folder_load_with(heed_dataset *d, const char *root, int c, int h, int w,
                                  const heed_folder_opts *opts);

/* The mean and the standard deviation (population: divided by the number
 * of values) of every value of d's images, all channels together,
 * accumulated in double. The numbers to normalise a dataset by. Errors:
 * HEED_ERR_ARG when an argument is NULL or d holds no images (none
 * loaded, or a canvas dataset, whose items exist only per batch). */
heed_status heed_dataset_stats(const heed_dataset *d, double *mean, double *std);

/* The same for each channel c of d's images alone, into mean[c] and
 * std[c] (d->c of each): the numbers torchvision's Normalize takes. */
heed_status heed_dataset_channel_stats(const heed_dataset *d, double *mean, double *std);

/* Releases the loaders' arrays (and a canvas dataset's source items);
 * leaves *d empty. Safe on an empty dataset. */
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
 * A canvas dataset renders each item first (see above) and augments the
 * rendered canvas. Item by item, in batch order, r gives a non-fixed
 * canvas's placement draws, then that item's augmentation draws; a fixed
 * canvas takes nothing from r for its placements.
 *
 * Errors: HEED_ERR_ARG (n < 1, an index outside [0, count), a negative
 * crop_pad, augmentation or a non-fixed canvas with r NULL, d without
 * images), HEED_ERR_LIMIT, HEED_ERR_NOMEM. */
heed_status heed_dataset_batch(const heed_dataset *d, const int *idx, int n,
                               const heed_augment *aug, heed_rng *r, heed_tensor *x,
                               int *labels);

/* Fills *cfg for a named canvas dataset: "fmnist-translatedS" (S = 60 or
 * 100: no clutter) or "fmnist-clutteredS" (S = 60: 4 pieces, S = 100: 8
 * pieces), pieces 8 x 8. The test split (train == 0) is fixed with seed
 * HEED_CANVAS_TEST_SEED; the training split draws per batch.
 * Errors: HEED_ERR_ARG for another name (the message lists
 * HEED_CANVAS_NAMES). */
heed_status heed_canvas_preset(heed_canvas_cfg *cfg, const char *name, int train);

/* Turns the in-memory, one-channel dataset *d into a canvas dataset in
 * place: its images (allocated with heed_alloc) become canvas.src, owned by
 * the dataset as before; images is set NULL, h = w = cfg->size. Every item
 * is a clutter source. Errors (d unchanged): HEED_ERR_ARG (no images, c !=
 * 1, an item larger than the canvas, a canvas over 4096 x 4096, clutter or
 * piece out of range, a dataset that is already a canvas). */
heed_status heed_canvas_make(heed_dataset *d, const heed_canvas_cfg *cfg);

/* Loads the Fashion-MNIST split (heed_fmnist_load, whole split: clutter
 * comes from all of it, and item i is drawn the same whatever the limit)
 * and makes it a canvas dataset; limit > 0 keeps the first `limit` items
 * as count. *d is overwritten (not freed) and left empty on failure.
 * Errors: those of heed_fmnist_load and heed_canvas_make. */
heed_status heed_canvas_load(heed_dataset *d, const heed_canvas_cfg *cfg, const char *dir,
                             int train, int limit);

/* The placement of item `index` of canvas dataset d, as heed_dataset_batch
 * draws it: from r for a non-fixed canvas (advancing it), from (seed,
 * index) for a fixed one (r unused, may be NULL).
 * Errors: HEED_ERR_ARG (d not a canvas dataset, index outside [0, count),
 * r NULL for a non-fixed canvas). */
heed_status heed_canvas_draw(const heed_dataset *d, int index, heed_rng *r, heed_canvas_place *p);

/* Renders item `index` of canvas dataset d with placement p into out
 * (S, S), overwriting it. The caller checks index and p (as from
 * heed_canvas_draw); nothing here can fail. */
void heed_canvas_render(const heed_dataset *d, int index, const heed_canvas_place *p, float *out);

#ifdef __cplusplus
}
#endif

#endif
