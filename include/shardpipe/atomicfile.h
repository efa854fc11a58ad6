/* atomicfile.h - write a file so that readers see the old one or the whole
 * new one, never half of it: write PATH.tmp, flush and fsync it, then rename
 * it over PATH. On any failure the temporary file is removed and the error
 * names it. Used for every file shardpipe writes (models, plans, profiles,
 * cluster files, traces, results). */
#ifndef SHARDPIPE_ATOMICFILE_H
#define SHARDPIPE_ATOMICFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "shardpipe/error.h"

typedef struct sp_atomic_file {
    FILE *f;           /* write here */
    char path[1024];
    char tmp[1100];
} sp_atomic_file;

/* Opens PATH.tmp; `what` names the file in errors ("the plan"). */
int sp_atomic_open(sp_atomic_file *a, const char *path, const char *what, sp_error *err);
/* Flushes, fsyncs, closes and renames into place. `ok` false (a write of the
 * caller's failed) abandons the file. Returns 0 or -1 with the error. */
int sp_atomic_commit(sp_atomic_file *a, bool ok, sp_error *err);

#endif
