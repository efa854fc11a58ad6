/* supervisor.h - `shardpipe serve --cluster C.yaml` (or --supervise): a
 * server that outlives its boards.
 *
 * MPICH's launcher ends a whole job when one process dies, and MPICH has no
 * fault-tolerant communicators, so the part that must survive runs outside
 * MPI: this process owns the HTTP server (src/server) and every request,
 * plans with the planner on the boards that are up, and launches
 * `mpiexec ... shardpipe serve --worker SOCKET --plan P` as a child process
 * group whose rank 0 takes jobs over a Unix socket (control.h). When the
 * job dies, hangs or loses a link, the supervisor kills it, finds the
 * board, plans again on the others, relaunches, and sends every unfinished
 * request again as its prompt plus the tokens already produced: the sampler
 * is keyed by seed and position, so the answer goes on with the same
 * tokens on the same HTTP response. No MPI here. */
#ifndef SHARDPIPE_SUPERVISOR_H
#define SHARDPIPE_SUPERVISOR_H

#include <stdbool.h>

#include "shardpipe/server.h"

typedef struct sp_supervisor_options {
    const char *cluster_path;  /* boards to plan on (with model_path), or NULL: */
    const char *plan_path;     /* a fixed plan, relaunched as it is */
    const char *model_path;    /* the model (cluster mode), or the plan's override */
    const char *work_dir;      /* plans, host files, the control socket (NULL: a new /tmp folder) */
    const char *mpiexec;       /* the launcher command's words (default "mpiexec") */
    const char *probe;         /* sh command with {board} and {host}: exit 0 = the board is up
                                * (default: mpiexec -hosts {host} -n 1 true) */
    double fail_timeout_s;     /* work in flight and no token for this long: a failure (default 10) */
    double load_timeout_s;     /* launch to loaded (default 300) */
    double grace_s;            /* SIGINT/SIGTERM: in-flight answers get this long */
    int sequences, micro_batches, context, threads;
    /* hidden states between boards when planning (default f32: f16 and
     * q8_0 round at the cuts, and a new plan moves the cuts, so a resumed
     * request would not continue with the same tokens) */
    const char *wire;
    const char *chat_template;
    bool no_prompt_cache;
    sp_server_options http;
} sp_supervisor_options;

/* Runs until SIGINT/SIGTERM; returns the exit code. */
int sp_supervisor_run(const sp_supervisor_options *o);

#endif
