/* infile.c - regular input files only, opened without blocking (see
 * infile.h). */
#include "shardpipe/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int sp_infile_open(const char *path, const char *what, sp_error *err)
{
    /* O_NONBLOCK: opening a FIFO for reading returns at once instead of
     * waiting for a writer; it changes nothing for a regular file's reads. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return sp_errorf(err, "%s: cannot open %s: %s; check the path", path, what, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sp_errorf(err, "%s: cannot read %s: %s", path, what, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sp_errorf(err, "%s: is %s, not a regular file; give the path of %s itself (a FIFO or device "
                              "would never end or block)", path, kind(st.st_mode), what);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

FILE *sp_infile_fopen(const char *path, const char *what, sp_error *err)
{
    int fd = sp_infile_open(path, what, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        sp_errorf(err, "%s: cannot read %s: %s", path, what, strerror(errno));
        close(fd);
    }
    return f;
}

char *sp_infile_read(const char *path, const char *what, size_t max, const char *hint, size_t *len,
                     sp_error *err)
{
    int fd = sp_infile_open(path, what, err);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max) {
        sp_errorf(err, "%s: %s is %lld bytes, over the limit of %zu bytes (%s); give the right file", path, what,
                  (long long)st.st_size, max, hint);
        close(fd);
        return NULL;
    }
    /* read to the end rather than trusting st_size: the file may grow, but
     * never past max */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            close(fd);
            sp_errorf(err, "%s: out of memory reading %s", path, what);
            return NULL;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            sp_errorf(err, "%s: cannot read %s: %s", path, what, strerror(e));
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n > max) {
            free(buf);
            close(fd);
            sp_errorf(err, "%s: %s grew past the limit of %zu bytes (%s) while being read", path, what, max, hint);
            return NULL;
        }
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}
