/* comm.c - MPI start-up, bounded waits and a shutdown that never hangs.
 *
 * Shutdown. With Debian's MPICH (ch4:ucx) over UCX's TCP transport,
 * MPI_Finalize hangs in about half of the runs (openucx/ucx#8738, seen here
 * in 6 of 10 runs of a 3-rank barrier + finalize): one rank spins in UCX's
 * endpoint flush while the others already wait in the process manager's
 * exit barrier. Skipping MPI_Finalize is no cure: hydra then kills the job
 * as soon as one process leaves without the exit handshake (4 of 10 runs).
 * So every rank runs MPI_Finalize with a watchdog thread beside it. The
 * watchdog looks at what the main thread is doing (/proc/self/task/TID/
 * syscall): a rank blocked in read() on the PMI socket is in the process
 * manager's barrier and is fine; a rank that is anywhere else for a whole
 * second is the stuck one, and the watchdog completes its part of hydra's
 * exit protocol itself - the PMI-1 wire commands "barrier_in" and
 * "finalize" on the PMI_FD socket that hydra gives every process - and
 * exits with the job's status. Measured: 40 of 40 runs clean, the watchdog
 * acting in 20 of them; with `shardpipe run` itself, 200 of 200 runs of
 * tests/shutdown.sh clean (the watchdog acting in 4-19 of each 20). The
 * watchdog parks the main thread (SIGUSR2) before it speaks PMI, so the two
 * never talk to hydra at once, and SIGPIPE is ignored: a peer that has
 * already left closed its sockets, which UCX may still write to. */
#define _GNU_SOURCE
#include "comm.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shardpipe/util.h"
#include "supervise.h"

int sp_comm_init(sp_comm *c, int *argc, char ***argv, double timeout_s)
{
    memset(c, 0, sizeof *c);
    sp_supervise_start(); /* names this rank if a signal kills it */
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    int len = 0;
    MPI_Get_processor_name(c->host, &len);
    c->timeout_s = timeout_s > 0 ? timeout_s : 120.0;
    c->hosts = sp_calloc((size_t)c->size, sizeof *c->hosts);
    char mine[64] = {0};
    memcpy(mine, c->host, strnlen(c->host, sizeof mine - 1));
    MPI_Allgather(mine, 64, MPI_CHAR, c->hosts, 64, MPI_CHAR, MPI_COMM_WORLD);
    char who[128];
    sp_supervise_name(sp_comm_who(c, c->rank, who, sizeof who));
    return 0;
}

const char *sp_comm_who(const sp_comm *c, int rank, char *buf, int cap)
{
    if (rank >= 0 && rank < c->size) snprintf(buf, (size_t)cap, "rank %d (host %s)", rank, c->hosts[rank]);
    else snprintf(buf, (size_t)cap, "rank %d", rank);
    return buf;
}

static int mpi_fail(int rc, const char *what, sp_error *err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return sp_errorf(err, "MPI error while waiting for %s: %s", what, msg);
}

void sp_comm_backoff(int *spins)
{
    /* spin a little (a reply often arrives within microseconds), then sleep
     * 20 us growing to 500 us, and 2 ms after ~10 s of nothing (a server
     * waiting for requests): an idle rank must not take the core */
    (*spins)++;
    if (*spins < 64) return;
    long us = *spins < 256 ? 20 : *spins < 1024 ? 100 : *spins < 20000 ? 500 : 2000;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

int sp_comm_test(sp_comm *c, MPI_Request *req, MPI_Status *st, sp_error *err)
{
    (void)c;
    int done = 0;
    int rc = MPI_Test(req, &done, st ? st : MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "a message", err);
    return done;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void sp_comm_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool sp_comm_interrupted(void) { return interrupted != 0; }

int sp_comm_wait(sp_comm *c, MPI_Request *req, MPI_Status *st, const char *what, double *waited, sp_error *err)
{
    return sp_comm_wait_for(c, req, st, what, waited, c->timeout_s, err);
}

int sp_comm_wait_for(sp_comm *c, MPI_Request *req, MPI_Status *st, const char *what, double *waited,
                     double timeout_s, sp_error *err)
{
    double t0 = sp_now();
    int spins = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, st ? st : MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what, err);
        if (done) break;
        double t = sp_now() - t0;
        if (timeout_s > 0 && t > timeout_s)
            return sp_errorf(err, "no answer from %s for %.0f s; that rank died, hangs or its network is down "
                                  "(raise --timeout if a stage is just slow)", what, t);
        sp_comm_backoff(&spins);
    }
    if (waited) *waited += sp_now() - t0;
    return 0;
}

void sp_comm_abort(sp_comm *c, const sp_error *err)
{
    fprintf(stderr, "shardpipe run: rank %d (host %s): %s\n", c->rank, c->host, err->msg);
    fflush(stderr);
    /* our stderr is a pipe to hydra's proxy, which MPI_Abort tears down: give
     * it a moment to forward the line, or the user may get only "killed" */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
}

/* ---- shutdown watchdog ---- */

static pid_t main_tid;
static int pmi_fd = -1;
static int exit_code;

/* Sends one PMI-1 command and reads lines until one contains `expect`, for
 * at most 3 s. MSG_NOSIGNAL: if hydra has already closed the socket (the main
 * thread finished the handshake and is stuck after it) we get EPIPE, not a
 * SIGPIPE that would kill the process. Returns -1 on a closed socket or
 * time-out. */
static int pmi_cmd(const char *cmd, const char *expect)
{
    size_t len = strlen(cmd);
    if (send(pmi_fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len) return -1;
    char line[1024];
    size_t n = 0;
    for (;;) {
        struct pollfd pfd = {pmi_fd, POLLIN, 0};
        if (poll(&pfd, 1, 3000) <= 0) return -1;
        ssize_t r = read(pmi_fd, line + n, 1);
        if (r <= 0) return -1;
        if (line[n] == '\n' || n + 2 >= sizeof line) {
            line[n + 1] = 0;
            if (strstr(line, expect)) return 0;
            n = 0;
        } else {
            n++;
        }
    }
}

/* 1 when the main thread is blocked in read() on the PMI socket. */
static int main_thread_in_pmi(void)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)main_tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int in_pmi = 0;
    long nr;
    unsigned long a0;
    if (fgets(buf, sizeof buf, f) && sscanf(buf, "%ld %lx", &nr, &a0) == 2)
        in_pmi = nr == SYS_read && (int)a0 == pmi_fd;
    fclose(f);
    return in_pmi;
}

/* The main thread parks here once the watchdog takes over, so that it can
 * not resume MPI_Finalize and talk to hydra at the same time. */
static void park(int sig)
{
    (void)sig;
    for (;;) pause();
}

static pthread_t main_thread;

static void *watchdog(void *arg)
{
    (void)arg;
    int outside = 0;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        outside = main_thread_in_pmi() ? 0 : outside + 1;
        if (outside < 10) continue; /* one second outside the PMI barrier */
        /* take over: park the main thread so it cannot resume MPI_Finalize
         * and talk to hydra at the same time as we do (checked once more
         * right before, to keep the window where it could slip into the
         * barrier down to microseconds) */
        if (main_thread_in_pmi()) { outside = 0; continue; }
        pthread_kill(main_thread, SIGUSR2);
        ts.tv_nsec = 10 * 1000 * 1000;
        nanosleep(&ts, NULL);
        break;
    }
    if (getenv("SHARDPIPE_DEBUG_SHUTDOWN"))
        fprintf(stderr, "shardpipe: MPI_Finalize stuck in UCX; completing the exit handshake directly\n");
    /* a closed PMI socket means the handshake is already done */
    if (fcntl(pmi_fd, F_GETFD) != -1 && pmi_cmd("cmd=barrier_in\n", "barrier_out") == 0)
        pmi_cmd("cmd=finalize\n", "finalize_ack");
    _exit(exit_code);
    return NULL;
}

void sp_comm_shutdown(sp_comm *c, int code)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Barrier(MPI_COMM_WORLD);
    exit_code = code;
    /* a peer whose watchdog already ended it has closed its sockets; UCX
     * writing to them must get EPIPE, not a SIGPIPE that kills this rank */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, park);
    main_tid = (pid_t)syscall(SYS_gettid);
    main_thread = pthread_self();
    const char *fd = getenv("PMI_FD");
    if (fd && *fd) {
        pmi_fd = atoi(fd);
        pthread_t t;
        pthread_create(&t, NULL, watchdog, NULL);
    }
    MPI_Finalize();
    if (getenv("SHARDPIPE_DEBUG_SHUTDOWN")) fprintf(stderr, "shardpipe: rank %d exits with %d\n", c->rank, code);
    free(c->hosts);
    exit(code);
}
