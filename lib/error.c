/* error.c -- the per-thread last error message behind heed_fail(). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

heed_status heed_fail(heed_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *heed_last_error(void) { return last_error; }

const char *heed_status_name(heed_status status) {
    switch (status) {
    case HEED_OK: return "ok";
    case HEED_ERR_NOMEM: return "out of memory";
    case HEED_ERR_IO: return "i/o error";
    case HEED_ERR_FORMAT: return "bad format";
    case HEED_ERR_ARG: return "bad argument";
    case HEED_ERR_SHAPE: return "shape mismatch";
    case HEED_ERR_LIMIT: return "size limit exceeded";
    }
    return "unknown error";
}
