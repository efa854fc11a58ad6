/* atomicfile.c - a unique temporary, fsync, rename; devices and FIFOs in
 * place (see atomicfile.h). */
#include "shardpipe/atomicfile.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The mode fopen would have given a new file: 0666 less the umask. umask()
 * can only be read by setting it, so set it back at once. */
static mode_t new_file_mode(void)
{
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

int sp_atomic_open(sp_atomic_file *a, const char *path, const char *what, sp_error *err)
{
    a->f = NULL;
    a->in_place = false;
    a->tmp[0] = '\0';
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return sp_errorf(err, "%.100s...: path is too long; use a shorter one", path);

    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        /* Replace what the link points at, not the link. */
        char real[PATH_MAX];
        if (!realpath(path, real))
            return sp_errorf(err, "%s: is a symbolic link whose target cannot be resolved (%s); write %s to a "
                             "real path", path, strerror(errno), what);
        if (snprintf(a->path, sizeof a->path, "%s", real) >= (int)sizeof a->path)
            return sp_errorf(err, "%.100s...: path is too long; use a shorter one", real);
    }
    if (stat(a->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode))
            return sp_errorf(err, "%s: is a folder; give a file name for %s", path, what);
        a->in_place = true; /* device, FIFO or socket: write to it as it is */
        a->f = fopen(a->path, "wb");
        if (!a->f)
            return sp_errorf(err, "%s: cannot open %s for writing: %s", path, what, strerror(errno));
        return 0;
    }

    if (snprintf(a->tmp, sizeof a->tmp, "%s.XXXXXX", a->path) >= (int)sizeof a->tmp)
        return sp_errorf(err, "%.100s...: path is too long; use a shorter one", path);
    int fd = mkstemp(a->tmp); /* O_CREAT|O_EXCL: never follows a planted link */
    if (fd < 0) {
        int e = errno;
        snprintf(a->tmp, sizeof a->tmp, "%s.XXXXXX", a->path);
        return sp_errorf(err, "%s: cannot create %s: %s; check the folder exists and is writable", a->tmp, what,
                         strerror(e));
    }
    if (fchmod(fd, new_file_mode()) != 0 || !(a->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        return sp_errorf(err, "%s: cannot create %s: %s", a->tmp, what, strerror(e));
    }
    return 0;
}

int sp_atomic_commit(sp_atomic_file *a, bool ok, sp_error *err)
{
    int saved = errno;
    if (ok && (fflush(a->f) != 0 || ferror(a->f))) ok = false, saved = errno;
    /* A device or FIFO may not support fsync (EINVAL): that is no failure. */
    if (ok && fsync(fileno(a->f)) != 0 && !(a->in_place && (errno == EINVAL || errno == EROFS)))
        ok = false, saved = errno;
    if (fclose(a->f) != 0 && ok) ok = false, saved = errno;
    a->f = NULL;
    const char *written = a->in_place ? a->path : a->tmp;
    if (!ok) {
        if (!a->in_place) unlink(a->tmp);
        return sp_errorf(err, "%s: cannot write: %s; check the free space", written, strerror(saved));
    }
    if (a->in_place) return 0;
    if (rename(a->tmp, a->path) != 0) {
        saved = errno;
        unlink(a->tmp);
        return sp_errorf(err, "%s: cannot rename %s into place: %s", a->path, a->tmp, strerror(saved));
    }
    return 0;
}
