/* error.h -- status codes and the last error message.
 *
 *   heed_status s = heed_model_load(&m, "fmnist.heed");
 *   if (s != HEED_OK) fprintf(stderr, "heed: %s\n", heed_last_error());
 *
 * Every library function that can fail returns a heed_status and leaves a
 * message saying what went wrong (which file, which line, which shape) that
 * heed_last_error() returns until the next failure on the same thread. The
 * library never prints, exits or aborts: the caller decides what to do.
 */
#ifndef HEED_ERROR_H
#define HEED_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum heed_status {
    HEED_OK = 0,
    HEED_ERR_NOMEM,   /* an allocation failed */
    HEED_ERR_IO,      /* a file could not be opened, read or written */
    HEED_ERR_FORMAT,  /* a file's contents are corrupt, truncated or unsupported */
    HEED_ERR_ARG,     /* an argument or a setting is out of range */
    HEED_ERR_SHAPE,   /* tensor shapes do not fit together */
    HEED_ERR_LIMIT    /* a size limit (pixels, elements) would be exceeded */
} heed_status;

/* Records `fmt` (printf-style) as the current thread's last error and
 * returns `status`, so failures read `return heed_fail(HEED_ERR_IO, ...)`. */
heed_status heed_fail(heed_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The current thread's last error message ("" if none yet). Valid until the
 * next failure on this thread. */
const char *heed_last_error(void);

/* A short name for a status ("out of memory", "bad format", ...). */
const char *heed_status_name(heed_status status);

/* Shape checks at the top of public functions: on failure, return
 * HEED_ERR_SHAPE naming the function and what did not fit. */
#define HEED_CHECK_SHAPE(cond, ...)                                            \
    do {                                                                       \
        if (!(cond)) return heed_fail(HEED_ERR_SHAPE, __VA_ARGS__);            \
    } while (0)

/* Propagate a failure from a call that already recorded its message. */
#define HEED_TRY(expr)                                                         \
    do {                                                                       \
        heed_status heed_try_status_ = (expr);                                 \
        if (heed_try_status_ != HEED_OK) return heed_try_status_;              \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
