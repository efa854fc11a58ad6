/* runtime.h - what `run` and `serve` share inside src/cluster: one rank's
 * state while the pipeline runs, its start (validation already done on rank
 * 0: every stage binds its shard, the model files are compared, weights
 * are read) and the two loops - a stage rank's, and the coordinator's,
 * whose end and idle waits the caller decides through hooks. */
#ifndef SHARDPIPE_CLUSTER_RUNTIME_H
#define SHARDPIPE_CLUSTER_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "comm.h"
#include "sched.h"
#include "stage.h"
#include "trace.h"

typedef struct rank_stats {
    double compute, send, recv_wait, idle, wall;
    int64_t batches, rows;
    /* decode micro-batches of the plan's full ceil(sequences / micro_batches)
     * rows and no prompt row: what `shardpipe plan`'s predicted_ms is for;
     * wall time, and the process's CPU time (what it would take without
     * other processes on the cores) */
    double decode_compute, decode_cpu;
    int64_t decode_batches;
    uint64_t peak_rss;
    int32_t stage, threads;
} rank_stats;

typedef struct runtime {
    sp_comm *comm;
    const sp_plan *plan;
    int stage;           /* this rank's stage, -1 for a coordinator-only rank */
    sp_stage st;
    sp_trace trace;
    rank_stats stats;
    size_t msg_cap;
    void *rbuf[2], *sbuf[2];
    MPI_Request sreq[2];
    MPI_Request rreq;    /* the receive posted for the next micro-batch */
    MPI_Request treq;    /* rank 0: the receive posted for sampled tokens */
    int sidx;
    bool wait_forever;   /* serve: a stage may wait for work without end */
    double stage_busy[8];/* rank 0: compute seconds of stages 0..7 so far (from
                          * the tokens messages), for serve's metrics */
} runtime;

/* The coordinator's say in its loop. keep_going is asked every iteration:
 * false stops new micro-batches, and the loop ends once those in flight are
 * back. idle is called when nothing moved (it may wait for work itself). */
typedef struct sp_coord_hooks {
    bool (*keep_going)(void *arg, sp_sched *s, int in_flight);
    void (*idle)(void *arg, sp_sched *s, int in_flight, int *spins);
    void *arg;
} sp_coord_hooks;

/* Rank 0's checks before anything is loaded (run.c): the plan against the
 * world and the model header, the tokenizer (NULL when it cannot be loaded:
 * the note is printed), the file's EOS id and vocabulary size. */
int sp_prepare_plan(const char *plan_path, const char *model_path, int sequences, int micro_batches, sp_comm *c,
                    sp_plan *plan, sp_tokenizer **tok, int *eos, int *n_vocab, sp_error *err);

/* Broadcasts rank 0's status; on failure every rank shuts down with 1
 * (rank 0 prints "shardpipe CMD: message"). */
void sp_agree(sp_comm *c, const char *cmd, int rc, const sp_error *err);

/* Step 1b on every rank, once rank 0's validation has been agreed on:
 * rank 0's plan is broadcast; a rank started with --model PATH (an MPMD
 * launch, `mpiexec -n 1 ... : -n 1 ... --model PATH`, for a board that
 * keeps the model elsewhere) takes that file for every stage; then
 * sp_runtime_hosts and sp_runtime_ship (shard_cache: --shard-cache, or
 * NULL for the default folder). */
void sp_runtime_share_plan(sp_comm *c, sp_plan *plan, const char *model_path, int threads, const char *shard_cache,
                           const char *cmd);

/* Step 2a on every rank, after the plan is broadcast and before any shard
 * is opened: resolves this rank's stage threads into `plan` (threads > 0,
 * else the plan's, else sp_default_threads), and rank 0 checks every rank's
 * host and free RAM against the plan (hostcheck.h), warns once about
 * oversubscribed hosts; a refusal shuts every rank down with 1. */
void sp_runtime_hosts(sp_comm *c, sp_plan *plan, int threads, const char *cmd);

/* Step 2b on every rank, after the host check (ship.c): a stage rank whose
 * board has neither its stage's file nor the whole model takes its shard
 * from its shard cache (shardcache.h), or rank 0 sends it there first; the
 * rank's copy of the plan then names that file for its stage. A cached
 * shard that is not the plan's, or a transfer that fails, shuts every rank
 * down with 1 before any weight is read. */
void sp_runtime_ship(sp_comm *c, sp_plan *plan, const char *shard_cache, const char *cmd);

/* Step 2 on every rank, after the plan is broadcast: bind the stage's
 * shard, compare model identities on rank 0, read the weights, allocate the
 * message buffers. Any failure shuts every rank down with 1. */
void sp_runtime_start(runtime *rt, sp_comm *comm, const sp_plan *plan, const char *logits_out, const char *cmd);
void sp_runtime_free(runtime *rt);

void sp_stage_loop(runtime *rt);
void sp_coordinator_loop(runtime *rt, sp_sched *sched, bool progress, const sp_coord_hooks *hooks);

#endif
