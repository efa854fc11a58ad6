/* launch.c - the MPI job the supervisor runs: `mpiexec [-f HOSTS] -n N
 * shardpipe serve --worker SOCKET --plan PLAN ...` in a process group of
 * its own, its output forwarded line by line to ours and read for the
 * per-rank supervisor's "rank R ... was killed by signal" and for a hydra
 * proxy that cannot connect back to mpiexec (its board's link is down: the
 * job can never start, and mpiexec would wait for it). hydra starts its
 * proxies and the ranks in sessions of their own, so ending the job kills
 * every descendant of mpiexec found in /proc (a SIGSTOPped rank included);
 * proxies on other hosts end when mpiexec's connection to them drops. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "shardpipe/util.h"

int sv_launch_start(sv_launch *l, const sp_supervisor_options *o, const sv_boards *b, const char *sock,
                    sp_error *err)
{
    memset(l, 0, sizeof *l);
    l->err_fd = -1;
    l->killed_rank = -1;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return sp_errorf(err, "cannot find this program's path (/proc/self/exe)");
    exe[n] = 0;
    char cmd[16384], extra[512] = "";
    size_t e = 0;
    if (o->threads > 0) e += (size_t)snprintf(extra + e, sizeof extra - e, " --threads %d", o->threads);
    if (o->sequences > 0 && !b->planned) e += (size_t)snprintf(extra + e, sizeof extra - e, " --sequences %d", o->sequences);
    if (o->micro_batches > 0 && !b->planned)
        e += (size_t)snprintf(extra + e, sizeof extra - e, " --micro-batches %d", o->micro_batches);
    if (o->no_prompt_cache) e += (size_t)snprintf(extra + e, sizeof extra - e, " --no-prompt-cache");
    if (o->chat_template) e += (size_t)snprintf(extra + e, sizeof extra - e, " --chat-template '%s'", o->chat_template);
    if (o->model_path && !b->planned) e += (size_t)snprintf(extra + e, sizeof extra - e, " --model '%s'", o->model_path);
    /* the worker's own silence limit is a backstop behind ours */
    snprintf(cmd, sizeof cmd, "exec %s %s%s%s -n %d '%s' serve --plan '%s' --worker '%s' --timeout %.0f%s",
             o->mpiexec ? o->mpiexec : "mpiexec", b->hosts[0] ? "-f '" : "", b->hosts, b->hosts[0] ? "'" : "",
             b->n_ranks, exe, b->plan, sock, o->fail_timeout_s * 3 + 10, extra);
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return sp_errorf(err, "cannot make a pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) return sp_errorf(err, "cannot fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a kill right after */
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    l->pid = pid;
    l->err_fd = p[0];
    fprintf(stderr, "shardpipe serve: launching %s\n", cmd + 5);
    return 0;
}

static void take_line(sv_launch *l, const char *line)
{
    fprintf(stderr, "  | %s\n", line);
    const char *k = strstr(line, "was killed by signal");
    const char *r = strstr(line, "rank ");
    int rank;
    if (k && r && r < k && sscanf(r, "rank %d", &rank) == 1) l->killed_rank = rank;
    /* "[proxy:0:1@HOST] HYDU_sock_connect (...): unable to connect from ..." */
    const char *at = strstr(line, "[proxy:");
    if (at && (at = strchr(at, '@')) && strstr(line, "unable to connect") && !l->unreachable[0]) {
        size_t n = strcspn(at + 1, "]");
        if (n > 0 && n < sizeof l->unreachable) memcpy(l->unreachable, at + 1, n), l->unreachable[n] = 0;
    }
}

void sv_launch_poll(sv_launch *l)
{
    if (!l->pid) return;
    for (;;) {
        if (l->err_fd < 0) break;
        ssize_t got = read(l->err_fd, l->ebuf + l->elen, sizeof l->ebuf - 1 - l->elen);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) { close(l->err_fd); l->err_fd = -1; }
            break;
        }
        l->elen += (size_t)got;
        char *nl;
        while ((nl = memchr(l->ebuf, '\n', l->elen))) {
            *nl = 0;
            take_line(l, l->ebuf);
            l->elen -= (size_t)(nl + 1 - l->ebuf);
            memmove(l->ebuf, nl + 1, l->elen);
        }
        if (l->elen == sizeof l->ebuf - 1) l->elen = 0; /* an over-long line: dropped */
    }
    int st;
    if (!l->exited && waitpid(l->pid, &st, WNOHANG) == l->pid) {
        l->exited = true;
        l->exit_status = st;
    }
}

/* The parent of every process (0 when unknown), by reading /proc. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')'); /* the command name may hold spaces */
    int ppid = 0;
    if (!close_paren || sscanf(close_paren + 1, " %*c %d", &ppid) != 1) return 0;
    return (pid_t)ppid;
}

/* SIGKILL to root and all its descendants: stopped first, so none can fork
 * or be reparented while the tree is walked. */
static void kill_tree(pid_t root)
{
    enum { MAXP = 4096 };
    static pid_t pids[MAXP], ppids[MAXP], tree[MAXP];
    int n = 0, nt = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < MAXP) {
        pid_t p = (pid_t)atoi(e->d_name);
        if (p > 0) {
            pids[n] = p;
            ppids[n++] = parent_of(p);
        }
    }
    if (d) closedir(d);
    tree[nt++] = root;
    for (int k = 0; k < nt; k++) /* breadth first over the parent links */
        for (int i = 0; i < n && nt < MAXP; i++)
            if (ppids[i] == tree[k]) tree[nt++] = pids[i];
    for (int k = 0; k < nt; k++) kill(tree[k], SIGSTOP);
    for (int k = 0; k < nt; k++) kill(tree[k], SIGKILL);
}

void sv_launch_kill(sv_launch *l)
{
    if (!l->pid) return;
    if (!l->exited) kill_tree(l->pid);
    kill(-l->pid, SIGKILL);
    if (!l->exited) {
        int st;
        while (waitpid(l->pid, &st, 0) < 0 && errno == EINTR) {}
        l->exited = true;
        l->exit_status = st;
    }
    /* the rest of the output: what hydra and the ranks said on the way */
    if (l->err_fd >= 0) {
        struct pollfd pf = {l->err_fd, POLLIN, 0};
        double t_end = sp_now() + 0.3;
        while (l->err_fd >= 0 && sp_now() < t_end && poll(&pf, 1, 50) >= 0) {
            sv_launch_poll(l);
            if (!(pf.revents & POLLIN)) break;
        }
        if (l->err_fd >= 0) close(l->err_fd);
    }
    l->err_fd = -1;
    l->pid = 0;
}
