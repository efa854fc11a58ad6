/* error.h - one error value for the whole engine.
 *
 * Every fallible function takes an `sp_error *` as its last argument, writes one
 * human sentence into it (naming the file, the place and the fix) and returns -1
 * (or NULL). Callers either pass the error up unchanged or print it once, at the
 * top (the CLI). Nothing below the CLI prints errors or exits the process. */
#ifndef SHARDPIPE_ERROR_H
#define SHARDPIPE_ERROR_H

#include <stddef.h>

typedef struct sp_error {
    char msg[1024];
} sp_error;

/* Format into err->msg (err may be NULL). Always returns -1 so callers can
 * write `return sp_errorf(err, "...")`. */
int sp_errorf(sp_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepend context, e.g. sp_error_prefix(err, "%s: ", path). Returns -1. */
int sp_error_prefix(sp_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
