/* error.c - formatting of sp_error (see include/shardpipe/error.h). */
#include "shardpipe/error.h"

#include "shardpipe/escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A message may quote untrusted text (a YAML key, a file's first bytes, a
 * tensor name): its control characters and stray bytes are escaped here, once
 * for every message, so none reaches a terminal raw. Idempotent. */
static int make_safe(sp_error *err)
{
    char raw[sizeof err->msg];
    memcpy(raw, err->msg, sizeof raw);
    sp_escape_text(err->msg, sizeof err->msg, raw, strnlen(raw, sizeof raw));
    return -1;
}

int sp_errorf(sp_error *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return make_safe(err);
}

int sp_error_prefix(sp_error *err, const char *fmt, ...)
{
    if (!err) return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof err->msg) n = sizeof err->msg - 1;
    memcpy(err->msg, prefix, n);
    size_t m = strlen(old);
    if (n + m >= sizeof err->msg) m = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = 0;
    return make_safe(err);
}
