/* file_impl.h -- internal (not installed): files written whole or not at
 * all, for models, checkpoints and images.
 *
 *   heed_status s = heed_write_atomic("out.png", data, size);
 *
 * The bytes go to a temporary file beside the target ("PATH.tmp.PID",
 * heed_atomic_tmp_name), are synced, and the file is renamed over PATH:
 * a reader sees the old file or the new one, never a part. On failure the
 * temporary file is removed and the error names the first step that
 * failed and the system's reason (a full disk shows at the write, the
 * flush or the close). */
#ifndef HEED_FILE_IMPL_H
#define HEED_FILE_IMPL_H

#include <stddef.h>

#include "error.h"

/* The temporary name for path into out (size bytes): 0, or -1 if it does
 * not fit. */
int heed_atomic_tmp_name(char *out, size_t size, const char *path);

heed_status heed_write_atomic(const char *path, const void *data, size_t size);

#endif
