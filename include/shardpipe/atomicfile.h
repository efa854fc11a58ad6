/* atomicfile.h - write a file so that readers see the old one or the whole
 * new one, never half of it: write a fresh temporary beside PATH, flush and
 * fsync it, then rename it over PATH. On any failure the temporary file is
 * removed and the error names it. Used for every file shardpipe writes
 * (models, plans, profiles, cluster files, traces, results).
 *
 * Only a regular file (or a path that does not exist yet) is replaced that
 * way. A device node, FIFO or socket at PATH (`-o /dev/null`, a pipe a user
 * reads from) is written in place: renaming over it would swap /dev/null for
 * a regular file when run as root. A symlink at PATH is followed and its
 * target replaced, so the link stays a link. The temporary is created with
 * O_EXCL under a unique name (mkstemp), so nothing planted beside PATH (a
 * symlink at PATH.tmp, say) is ever followed or overwritten. */
#ifndef SHARDPIPE_ATOMICFILE_H
#define SHARDPIPE_ATOMICFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "shardpipe/error.h"

typedef struct sp_atomic_file {
    FILE *f;           /* write here */
    bool in_place;     /* PATH is a device, FIFO or socket: no temporary */
    char path[1024];   /* where the file ends up (a symlink's target) */
    char tmp[1100];    /* the temporary, "PATH.XXXXXX" */
} sp_atomic_file;

/* Opens the temporary (or PATH itself when it is not a regular file);
 * `what` names the file in errors ("the plan"). */
int sp_atomic_open(sp_atomic_file *a, const char *path, const char *what, sp_error *err);
/* Flushes, fsyncs, closes and renames into place. `ok` false (a write of the
 * caller's failed) abandons the file. Returns 0 or -1 with the error. */
int sp_atomic_commit(sp_atomic_file *a, bool ok, sp_error *err);

#endif
