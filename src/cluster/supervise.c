/* supervise.c - a supervisor process per rank that names the rank when a
 * signal kills it (see supervise.h).
 *
 * The parent keeps hydra's PMI socket open (it never uses it): were it
 * closed with the rank, hydra's proxy would see the socket end and kill the
 * parent before it could print. Signals hydra sends the parent (Ctrl-C,
 * SIGTERM) are passed on to the rank; a rank ended that way is not
 * reported, the job is ending for another reason. The rank dies with its
 * supervisor (PR_SET_PDEATHSIG), so hydra's clean-up leaves no orphan. */
#define _GNU_SOURCE
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int name_fd = -1;
static volatile sig_atomic_t child_pid, forwarded;

/* A signal for the rank: passed on. One that ends it means the job is
 * ending on purpose (Ctrl-C, hydra's clean-up): no report then. */
static void forward(int sig)
{
    if (sig != SIGUSR1 && sig != SIGUSR2) forwarded = 1;
    if (child_pid > 0) kill((pid_t)child_pid, sig);
}

static void supervise(pid_t child, int fd) __attribute__((noreturn));
static void supervise(pid_t child, int fd)
{
    child_pid = child;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the last name the rank gave, until it exits (EOF) */
    char who[512] = "", buf[512];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        char *nl;
        while ((nl = memchr(buf, '\n', n))) {
            *nl = '\0';
            snprintf(who, sizeof who, "%s", buf);
            n -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, n);
        }
        if (n == sizeof buf - 1) n = 0; /* an over-long name: dropped */
    }
    int st;
    while (waitpid(child, &st, 0) < 0)
        if (errno != EINTR) _exit(1);
    if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
    if (!forwarded && who[0])
        fprintf(stderr, "shardpipe run: %s was killed by signal %d (%s)%s; the job ends\n", who, sig, strsignal(sig),
                sig == SIGKILL ? " - by hand (kill -9) or by the kernel's out-of-memory killer (see dmesg)" : "");
    fflush(stderr);
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

void sp_supervise_start(void)
{
    if (!getenv("PMI_FD") || getenv("SHARDPIPE_NO_SUPERVISOR")) return;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        close(p[0]);
        close(p[1]);
        return; /* unsupervised: only the naming is lost */
    }
    if (child > 0) {
        close(p[1]);
        supervise(child, p[0]);
    }
    close(p[0]);
    name_fd = p[1];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1); /* the supervisor died before prctl */
}

void sp_supervise_name(const char *who)
{
    if (name_fd < 0) return;
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", who);
    if (n > 0 && (size_t)n < sizeof line && write(name_fd, line, (size_t)n) != n) { /* best effort */ }
}
