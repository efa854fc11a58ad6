/* comm.h - the MPI plumbing of the pipeline: start-up, waiting on
 * non-blocking requests without burning the CPU other ranks need, with a
 * deadline that names the silent peer, and a shutdown that never hangs. */
#ifndef SHARDPIPE_CLUSTER_COMM_H
#define SHARDPIPE_CLUSTER_COMM_H

#include <mpi.h>
#include <stdbool.h>

#include "shardpipe/error.h"

typedef struct sp_comm {
    int rank, size;
    char host[MPI_MAX_PROCESSOR_NAME];
    char (*hosts)[64];   /* every rank's host name, gathered at start */
    double timeout_s;
} sp_comm;

/* MPI_Init, rank/size, host names of all ranks; errors return instead of
 * aborting (MPI_ERRORS_RETURN) so they can be reported with names. */
int sp_comm_init(sp_comm *c, int *argc, char ***argv, double timeout_s);

/* Waits for a request. Polls with MPI_Test, backing off to short sleeps so
 * a waiting rank leaves the core to the ranks that compute. Fails after
 * timeout_s of waiting with a message naming `what` (e.g. "hidden states
 * from stage 1 (rank 1, host pi5-b)"). *waited gets the seconds spent. */
int sp_comm_wait(sp_comm *c, MPI_Request *req, MPI_Status *st, const char *what, double *waited,
                 sp_error *err);
/* Non-blocking check; returns 1 when complete, 0 when not, -1 on error. */
int sp_comm_test(sp_comm *c, MPI_Request *req, MPI_Status *st, sp_error *err);

/* The same with its own deadline; timeout_s <= 0 waits without one (a
 * server's stage waiting for the next request). */
int sp_comm_wait_for(sp_comm *c, MPI_Request *req, MPI_Status *st, const char *what, double *waited,
                     double timeout_s, sp_error *err);

/* SIGINT and SIGTERM set a flag instead of killing the process (hydra
 * forwards a Ctrl-C to every rank): rank 0 then ends the work in order and
 * the other ranks get STOP down the pipeline as usual. */
void sp_comm_catch_signals(void);
bool sp_comm_interrupted(void);

/* Sleep a little while (idle loop of the coordinator). */
void sp_comm_backoff(int *spins);

/* Ends the job from one rank that hit an error: prints it (with rank and
 * host) and calls MPI_Abort so every rank exits non-zero. Never returns. */
void sp_comm_abort(sp_comm *c, const sp_error *err) __attribute__((noreturn));

/* Collective, orderly end: barrier, then MPI_Finalize guarded by a
 * watchdog (see comm.c), then exit(code). Never returns. */
void sp_comm_shutdown(sp_comm *c, int code) __attribute__((noreturn));

/* "rank 2 (host pi4)" into buf. */
const char *sp_comm_who(const sp_comm *c, int rank, char *buf, int cap);

#endif
