/* control.c - the supervisor <-> rank 0 line channel (control.h): a Unix
 * stream socket, lines in a growing buffer, whole-line blocking writes. */
#define _GNU_SOURCE
#include "shardpipe/control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shardpipe/util.h"

static int unix_addr(const char *path, struct sockaddr_un *a, sp_error *err)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a->sun_path)
        return sp_errorf(err, "control socket path %s is longer than %zu bytes; use a shorter --work-dir", path,
                         sizeof a->sun_path - 1);
    memcpy(a->sun_path, path, strlen(path));
    return 0;
}

int sp_ctl_listen(const char *path, sp_error *err)
{
    struct sockaddr_un a;
    if (unix_addr(path, &a, err)) return -1;
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4)) {
        if (fd >= 0) close(fd);
        return sp_errorf(err, "cannot listen on the control socket %s: %s", path, strerror(errno));
    }
    return fd;
}

static void init(sp_ctl *c, int fd)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
}

int sp_ctl_accept(int listen_fd, sp_ctl *c)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return 0;
    init(c, fd);
    return 1;
}

int sp_ctl_connect(sp_ctl *c, const char *path, sp_error *err)
{
    struct sockaddr_un a;
    init(c, -1);
    if (unix_addr(path, &a, err)) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return sp_errorf(err, "cannot reach the supervisor's control socket %s: %s", path, strerror(errno));
    }
    c->fd = fd;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sp_ctl_send(sp_ctl *c, const char *fmt, ...)
{
    if (c->fd < 0) return -1;
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof small - 1) return -1; /* long lines: sp_ctl_send_job */
    small[n++] = '\n';
    return write_all(c->fd, small, (size_t)n);
}

int sp_ctl_send_job(sp_ctl *c, long id, const int *tokens, int n, int max_new, const sp_sampler_params *p)
{
    if (c->fd < 0) return -1;
    size_t cap = 256 + (size_t)n * 12, len = 0;
    char *line = sp_alloc(cap);
    len += (size_t)snprintf(line, cap, "J %ld %d %.9g %d %.9g %.9g %.9g %d %" PRIu64 " %d", id, max_new,
                            (double)p->temperature, p->top_k, (double)p->top_p, (double)p->min_p,
                            (double)p->repeat_penalty, p->repeat_last_n, p->seed, n);
    for (int i = 0; i < n; i++) len += (size_t)snprintf(line + len, cap - len, " %d", tokens[i]);
    line[len++] = '\n';
    int rc = write_all(c->fd, line, len);
    free(line);
    return rc;
}

int sp_ctl_parse_job(const char *line, long *id, int **tokens, int *n, int *max_new, sp_sampler_params *p)
{
    double t, tp, mp, rp;
    uint64_t seed;
    int used = 0;
    *tokens = NULL;
    if (sscanf(line, "J %ld %d %lf %d %lf %lf %lf %d %" SCNu64 " %d%n", id, max_new, &t, &p->top_k, &tp, &mp, &rp,
               &p->repeat_last_n, &seed, n, &used) != 10 || *n < 1 || *n > (1 << 24))
        return -1;
    p->temperature = (float)t;
    p->top_p = (float)tp;
    p->min_p = (float)mp;
    p->repeat_penalty = (float)rp;
    p->seed = seed;
    *tokens = sp_alloc((size_t)*n * sizeof **tokens);
    const char *s = line + used;
    for (int i = 0; i < *n; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX) {
            free(*tokens);
            *tokens = NULL;
            return -1;
        }
        (*tokens)[i] = (int)v;
        s = end;
    }
    return 0;
}

int sp_ctl_poll(sp_ctl *c, double timeout_s)
{
    if (c->fd < 0) return -1;
    if (c->taken) { /* drop the lines already handed out */
        memmove(c->buf, c->buf + c->taken, c->len - c->taken);
        c->len -= c->taken;
        c->taken = 0;
    }
    struct pollfd pf = {c->fd, POLLIN, 0};
    int r = poll(&pf, 1, (int)(timeout_s * 1000));
    if (r <= 0) return 0;
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap * 2 + 8192;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf) abort();
        }
        ssize_t got = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, MSG_DONTWAIT);
        if (got > 0) {
            c->len += (size_t)got;
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (got < 0 && errno == EINTR) continue;
        return -1; /* closed */
    }
}

char *sp_ctl_line(sp_ctl *c)
{
    if (!c->buf || c->taken >= c->len) return NULL;
    char *start = c->buf + c->taken;
    char *nl = memchr(start, '\n', c->len - c->taken);
    if (!nl) return NULL;
    *nl = 0;
    c->taken = (size_t)(nl + 1 - c->buf);
    return start;
}

void sp_ctl_close(sp_ctl *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    init(c, -1);
}
