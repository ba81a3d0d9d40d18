/* model.h -- trained models: a network, its parameters and what a user of
 * the model needs to know, in one self-describing file.
 *
 *   heed_model *m;
 *   if (heed_model_load(&m, "models/fmnist-cbam.heed") != HEED_OK)
 *       fprintf(stderr, "%s\n", heed_last_error());
 *   printf("%s\n", m->meta.class_names[3]);
 *   heed_net_forward(m->net, &x, &logits);
 *   heed_model_free(m);
 *
 * File layout (all integers little-endian):
 *   "HEEDMODL"  u32 version (1)  u32 chunk count
 *   then chunks: char tag[4]  u64 size  u8 payload[size]  u32 crc32(payload)
 * Chunks: NETD the network description text; META "key value" lines;
 * PARM the named tensors (u32 count, then each: u16 name length, name,
 * u8 ndim, u32 dims[ndim], float32 data); any others (a checkpoint's
 * optimizer state) are carried as opaque extra chunks. Loading checks the
 * magic, version, every size against the file and every checksum, then that
 * each of the network's parameters is present once with the right shape
 * and usable values (finite; batch norm running variances not negative),
 * that the metadata's numbers are whole and in range and that nothing
 * follows the last chunk or tensor; any mismatch fails with
 * HEED_ERR_FORMAT saying what and where. Saving writes
 * a temporary file and renames it over the target, so a crash never leaves
 * a half-written model.
 */
#ifndef HEED_MODEL_H
#define HEED_MODEL_H

#include <stddef.h>

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HEED_MODEL_VERSION 1
/* The first 8 bytes of every model and checkpoint file. */
#define HEED_MODEL_MAGIC "HEEDMODL"
#define HEED_MAX_CLASSES 1000

typedef struct heed_model_meta {
    int classes;
    char (*class_names)[32]; /* (classes), owned */
    float input_mean, input_std; /* network input = (pixel in [0,1] - mean) / std; std >= 1e-6 */
    /* Per channel instead, when norm_channels is the network's input
     * channels (1..4; 0: input_mean and input_std for every channel):
     * channel c's input = (pixel - channel_mean[c]) / channel_std[c], as
     * torchvision's Normalize(mean, std). heed_model_channel_norm reads
     * either form. A heed from before these fields reads such a model
     * with input_mean and input_std for every channel: save their
     * all-channel values there. */
    int norm_channels;
    float channel_mean[4], channel_std[4];
    int dark_background;         /* 1: items are light on dark (Fashion-MNIST); else 0 */
    char dataset[4104];          /* "fmnist", "fmnist-cluttered60", "folder:PATH" (PATH up to PATH_MAX) */
    char recipe[2048];           /* how it was trained: the command line (train refuses a longer one) */
    int epochs;           /* >= 0 */
    float test_accuracy;  /* at most 1 (a fraction); negative if not evaluated */
    float train_seconds;  /* >= 0 */
    char cpu[96];         /* where it was trained */
} heed_model_meta;

typedef struct heed_model {
    heed_net *net;
    heed_model_meta meta;
} heed_model;

/* An extra chunk: 4-character tag and an owned payload. */
typedef struct heed_chunk {
    char tag[5];
    unsigned char *data;
    size_t size;
} heed_chunk;

/* Wraps a network (taking ownership) with default metadata: no classes
 * yet (set them before saving), input_std 1, test_accuracy -1. A network
 * built in code (heed_net_wrap) can be wrapped and used, but not saved as a
 * model: save its weights with heed_params_save. */
heed_status heed_model_new(heed_model **out, heed_net *net);

/* Sets the class names (copied; each cut to at most 31 bytes, never inside
 * a UTF-8 character). HEED_ERR_ARG if names or a name is NULL, or a name
 * holds a control character (the metadata is lines of text, and names are
 * printed in JSON). */
heed_status heed_model_set_classes(heed_model *m, int classes, const char *const *names);

/* The normalisation of input channel c: (pixel - *mean) / *std. */
void heed_model_channel_norm(const heed_model_meta *meta, int c, float *mean, float *std);

/* Normalises x (N, C, H, W, pixels in [0, 1]; C the network's input
 * channels) in place as m's inputs are: the step that brings a batch of
 * images to the network. HEED_ERR_SHAPE when C is not the network's. */
heed_status heed_model_normalize(const heed_model *m, heed_tensor *x);

/* Writes the model to path (layout above), replacing any file there.
 * Saving refuses what loading would, with the same message, writing
 * nothing: HEED_ERR_ARG when
 *  - the network was built in code (heed_net_wrap): "the network was built
 *    in code, not from a description" -- a model file holds the network's
 *    description text, which such a network lacks (heed_params_save saves
 *    its weights);
 *  - its parameters are not allocated (heed_net_describe);
 *  - a parameter holds a value load refuses: not finite, or a negative
 *    batch-norm running variance ("parameter 'fc.weight' holds nan at
 *    index 0"; a diverged network, whose file would never load again);
 *  - the metadata breaks a rule: classes in 1..HEED_MAX_CLASSES and equal
 *    to the network's outputs ("the network has 3 outputs but 5 classes"),
 *    class names printable; input_mean finite; input_std finite and at
 *    least 1e-6; norm_channels 0 or the network's input channels (1..4),
 *    each channel's pair as input_mean's and input_std's; dark_background
 *    0 or 1; epochs >= 0; test_accuracy finite and at most 1 (negative:
 *    not evaluated); train_seconds finite and >= 0 ("bad metadata value
 *    for input_std: '0'").
 * Free text (dataset, recipe, cpu) is written on one line, each control
 * character as '?'. HEED_ERR_IO, HEED_ERR_NOMEM otherwise. */
heed_status heed_model_save(const heed_model *m, const char *path);

/* Reads a model file: every check listed at the top, the metadata's rules
 * those of heed_model_save; HEED_ERR_FORMAT naming path and what is wrong,
 * HEED_ERR_IO, HEED_ERR_NOMEM. On failure *out is NULL. */
heed_status heed_model_load(heed_model **out, const char *path);

/* The same with extra chunks: save writes extra[0..nextra); load returns
 * every chunk it does not know in *extra (malloc'ed array, free with
 * heed_chunks_free). Save refuses (HEED_ERR_ARG, writing nothing) what
 * load would: an extra chunk tagged NETD, META or PARM (the model's own
 * chunks; a second one of those is refused as corrupt), or more than 61
 * extra chunks (a file holds at most 64). */
heed_status heed_model_save_with(const heed_model *m, const char *path, const heed_chunk *extra,
                                 int nextra);
heed_status heed_model_load_with(heed_model **out, const char *path, heed_chunk **extra,
                                 int *nextra);
/* Weights alone, for a network built in code, which heed_model_save
 * refuses (a model file holds the network's description text):
 *
 *   heed_params_save(&params, "weights.heed");        // after training
 *   ... build the same network again, heed_params_alloc(&params, seed) ...
 *   heed_params_load(&params, "weights.heed");        // the trained weights
 *
 * heed_params_save writes every tensor of p (names, shapes, values; batch
 * norm statistics included) in the layout above, with a PARM chunk only,
 * atomically; values that load would refuse are refused as
 * heed_model_save refuses them (HEED_ERR_ARG, writing nothing).
 * heed_params_load reads such a file, or the PARM chunk of a model or
 * checkpoint file, into p, which must hold the same tensors: each
 * of p's names once, with its shape, and no other (the network built the
 * same way, with the same names). It checks what heed_model_load checks of
 * parameters (finite values, running variances not negative) and writes p
 * only when the whole file passes: on failure p is as it was.
 * heed_model_load on a parameters-only file says to use heed_params_load.
 *
 * Errors: HEED_ERR_ARG (p not allocated; save: a value load would refuse),
 * HEED_ERR_FORMAT (load: naming path and what differs: the tensor, or the
 * number of tensors), HEED_ERR_IO, HEED_ERR_LIMIT,
 * HEED_ERR_NOMEM. */
heed_status heed_params_save(const heed_params *p, const char *path);
heed_status heed_params_load(heed_params *p, const char *path);

/* Models and weights held in memory: a model compiled into firmware, kept
 * in flash or received over a network, where there is no file system.
 *
 *   // xxd -i fmnist-se.heed > model_data.h   (unsigned char fmnist_se_heed[], ..._len)
 *   heed_model *m;
 *   if (heed_model_load_mem(&m, fmnist_se_heed, fmnist_se_heed_len, "fmnist-se") != HEED_OK) ...
 *
 * heed_model_load_mem reads the bytes of a model file (data, size) with
 * every check of heed_model_load, its messages naming `name` where they
 * name the path (NULL: "model in memory"); heed_params_load_mem does the
 * same for heed_params_load (NULL: "parameters in memory"). data is only
 * read, and not kept: it may be freed once they return. Errors as for
 * the files, with HEED_ERR_ARG for NULL data of a nonzero size and
 * HEED_ERR_LIMIT for 1 GiB or more. heed_model_encode_mem and
 * heed_params_encode_mem give the bytes heed_model_save and
 * heed_params_save would write, with their checks, in a malloc'ed
 * *data (free it) of *size bytes; on failure *data is NULL. */
heed_status heed_model_load_mem(heed_model **out, const void *data, size_t size, const char *name);
heed_status heed_params_load_mem(heed_params *p, const void *data, size_t size, const char *name);
heed_status heed_model_encode_mem(const heed_model *m, void **data, size_t *size);
heed_status heed_params_encode_mem(const heed_params *p, void **data, size_t *size);

/* The chunk tagged `tag` in chunks[0..n), or NULL. */
const heed_chunk *heed_chunk_find(const heed_chunk *chunks, int n, const char *tag);
void heed_chunks_free(heed_chunk *chunks, int n);

void heed_model_free(heed_model *m);

#ifdef __cplusplus
}
#endif

#endif
