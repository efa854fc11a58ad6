/* internal.h - what the supervisor's files share: the boards and the
 * current plan (boards.c), the launched MPI job (launch.c), the requests
 * (jobs.c) and the loop that ties them (supervisor.c). */
#ifndef SHARDPIPE_SUPERVISOR_INTERNAL_H
#define SHARDPIPE_SUPERVISOR_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "shardpipe/control.h"
#include "shardpipe/planner.h"
#include "shardpipe/supervisor.h"

#define SV_MAX_BOARDS SP_CLUSTER_MAX_BOARDS

/* ---- boards and plans (boards.c) ---- */
typedef struct sv_boards {
    const sp_supervisor_options *o;
    sp_cluster cl;              /* cluster mode; else one "board" per plan stage */
    bool planned;               /* cluster mode */
    int n;                      /* boards */
    char name[SV_MAX_BOARDS][64], host[SV_MAX_BOARDS][256];
    bool up[SV_MAX_BOARDS];
    /* probes in flight (pid 0: none) and when each board was last probed */
    pid_t probe_pid[SV_MAX_BOARDS];
    double probe_t0[SV_MAX_BOARDS], probe_last[SV_MAX_BOARDS];
    bool probe_ok[SV_MAX_BOARDS];
    bool pending_return;        /* a board came back: plan it in when idle */
    /* the current plan */
    int gen;
    char plan[1024], hosts[1100];
    int n_ranks, n_stages;
    int stage_board[SV_MAX_BOARDS];
    int rank_stage[SV_MAX_BOARDS];
    int context;
} sv_boards;

int sv_boards_init(sv_boards *b, const sp_supervisor_options *o, sp_error *err);
/* Plans on the boards that are up and writes the plan and host file; -1
 * with the planner's message (how many GB short) when nothing fits. */
int sv_plan(sv_boards *b, sp_error *err);
/* "b1, b2" of the boards that are (up) or are not (!up) in the cluster. */
void sv_board_list(const sv_boards *b, bool up, char *out, size_t cap);
/* Starts a probe of board i (no-op while one runs). */
void sv_probe_start(sv_boards *b, int i);
/* Reaps finished probes; a probe over 5 s is killed and counts as down.
 * Returns the number finished now. */
int sv_probe_reap(sv_boards *b);
/* Probes boards `which` (NULL: all) at once and waits for them (<= 5 s). */
void sv_probe_all(sv_boards *b, const bool *which);

/* ---- the MPI job (launch.c) ---- */
typedef struct sv_launch {
    pid_t pid;                  /* the mpiexec process and its group, 0 when none */
    int err_fd;                 /* its stderr and stdout */
    char ebuf[4096];
    size_t elen;
    int killed_rank;            /* a rank the job reported killed by a signal, or -1 */
    char unreachable[64];       /* a host whose hydra proxy cannot reach mpiexec, or "" */
    int exit_status;
    bool exited;
} sv_launch;

int sv_launch_start(sv_launch *l, const sp_supervisor_options *o, const sv_boards *b, const char *sock,
                    sp_error *err);
/* Forwards the job's output and notes a killed rank or a host that cannot
 * reach mpiexec; reaps the job when it has exited (l->exited). */
void sv_launch_poll(sv_launch *l);
/* Ends the whole process group (SIGKILL) and reaps it. */
void sv_launch_kill(sv_launch *l);

#endif
