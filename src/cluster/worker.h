/* worker.h - rank 0 of `serve --worker PATH`: jobs come from the
 * supervisor over the control channel (control.h) instead of an HTTP
 * server, and each sampled token goes back to it at once. */
#ifndef SHARDPIPE_CLUSTER_WORKER_H
#define SHARDPIPE_CLUSTER_WORKER_H

#include <stdbool.h>

#include "sched.h"
#include "shardpipe/control.h"

typedef struct sp_worker {
    sp_ctl ctl;
    bool gone;        /* the supervisor closed the channel: stop */
    double t_beat;
} sp_worker;

/* Connects and says "L"; -1 with err when the supervisor is not there. */
int sp_worker_connect(sp_worker *w, const char *path, sp_error *err);
void sp_worker_ready(sp_worker *w, int context, int slots, int stages);
/* Takes the supervisor's jobs into the scheduler and its cancellations,
 * waiting up to wait_s for a line; sends a heartbeat when one is due.
 * Returns false once the supervisor has gone. */
bool sp_worker_poll(sp_worker *w, sp_sched *s, double wait_s);
/* sched hooks (event_arg = the worker) */
void sp_worker_on_token(void *arg, sp_request *r, int token, bool eos);
void sp_worker_on_event(void *arg, sp_sched *s, sp_request *r, const char *text, int len, bool done);
void sp_worker_close(sp_worker *w);

#endif
