/* infile.h - opening the files shardpipe reads (models, plans, profiles,
 * cluster files, prompts): regular files only, checked before anything can
 * block. A FIFO opened for reading blocks until a writer appears, a device
 * may never end: both would hang the program instead of failing. */
#ifndef SHARDPIPE_INFILE_H
#define SHARDPIPE_INFILE_H

#include <stddef.h>
#include <stdio.h>

#include "shardpipe/error.h"

/* A read-only descriptor of PATH, or -1 with an error naming the path, what
 * it should have been (`what`, e.g. "the plan") and why: missing, a folder,
 * a FIFO, a device. The open itself cannot block (O_NONBLOCK, then the type
 * is checked on the open descriptor, so nothing can swap the file between). */
int sp_infile_open(const char *path, const char *what, sp_error *err);
/* The same as a stdio stream ("rb"). */
FILE *sp_infile_fopen(const char *path, const char *what, sp_error *err);

/* The whole file, NUL-terminated (malloc'ed), refused with a message when
 * larger than max bytes (`hint` says what a real one weighs). */
char *sp_infile_read(const char *path, const char *what, size_t max, const char *hint, size_t *len,
                     sp_error *err);

#endif
