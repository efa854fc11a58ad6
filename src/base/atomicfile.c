/* atomicfile.c - PATH.tmp, fsync, rename (see atomicfile.h). */
#include "shardpipe/atomicfile.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int sp_atomic_open(sp_atomic_file *a, const char *path, const char *what, sp_error *err)
{
    a->f = NULL;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path ||
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path) >= (int)sizeof a->tmp)
        return sp_errorf(err, "%.100s...: path is too long; use a shorter one", path);
    a->f = fopen(a->tmp, "wb");
    if (!a->f)
        return sp_errorf(err, "%s: cannot create %s: %s; check the folder exists and is writable", a->tmp, what,
                         strerror(errno));
    return 0;
}

int sp_atomic_commit(sp_atomic_file *a, bool ok, sp_error *err)
{
    int saved = errno;
    if (ok && (fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0)) ok = false, saved = errno;
    if (fclose(a->f) != 0 && ok) ok = false, saved = errno;
    a->f = NULL;
    if (!ok) {
        unlink(a->tmp);
        return sp_errorf(err, "%s: cannot write: %s; check the free space", a->tmp, strerror(saved));
    }
    if (rename(a->tmp, a->path) != 0) {
        saved = errno;
        unlink(a->tmp);
        return sp_errorf(err, "%s: cannot rename %s into place: %s", a->path, a->tmp, strerror(saved));
    }
    return 0;
}
