/* file.c -- atomic file writes (file_impl.h). */
#include "file_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int heed_atomic_tmp_name(char *out, size_t size, const char *path) {
    const int n = snprintf(out, size, "%s.tmp.%ld", path, (long)getpid());
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

heed_status heed_write_atomic(const char *path, const void *data, size_t size) {
    char tmp[4096];
    if (heed_atomic_tmp_name(tmp, sizeof tmp, path) != 0)
        return heed_fail(HEED_ERR_ARG, "path too long: %s", path);
    /* O_EXCL: never through a file or link already there (a link planted
     * at the predictable name would have the data written into its target). */
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !f) close(fd), remove(tmp);
    if (!f)
        return heed_fail(HEED_ERR_IO, "cannot create %s (written first, then renamed to %s): %s",
                         tmp, path, strerror(errno));
    int e = 0;
    errno = 0;
    if (fwrite(data, 1, size, f) != size || fflush(f) != 0) e = errno ? errno : EIO;
    /* Data on disk before the rename makes it visible under path. */
    if (!e && fsync(fileno(f)) != 0) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (e) {
        remove(tmp);
        return heed_fail(HEED_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        remove(tmp);
        return heed_fail(HEED_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return HEED_OK;
}
