/* trace.h - per-rank timeline of the pipeline, written on rank 0 in the
 * Chrome Trace Event format (open in ui.perfetto.dev or chrome://tracing):
 * one track per rank, a slice per micro-batch per stage, and flow arrows
 * from each send to the matching receive. */
#ifndef SHARDPIPE_CLUSTER_TRACE_H
#define SHARDPIPE_CLUSTER_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/error.h"

enum { SP_EV_COMPUTE = 1, SP_EV_SEND = 2, SP_EV_RECV = 3, SP_EV_SAMPLE = 4, SP_EV_SCHEDULE = 5 };

typedef struct sp_trace_event {
    double t0, t1;     /* seconds since the common start */
    int32_t kind;      /* SP_EV_* */
    int32_t rank;
    int32_t mb_id;
    int32_t rows;
    int32_t peer;      /* rank sent to / received from, or -1 */
    int32_t stage;
} sp_trace_event;

typedef struct sp_trace {
    bool on;
    double t_start;
    int rank, stage;
    sp_trace_event *ev;
    int n, cap;
} sp_trace;

void sp_trace_init(sp_trace *t, bool on, int rank, int stage, double t_start);
void sp_trace_add(sp_trace *t, int kind, double t0, double t1, int mb_id, int rows, int peer);
void sp_trace_free(sp_trace *t);

/* Write all ranks' events (concatenated) as Chrome Trace JSON, atomically. */
int sp_trace_write(const char *path, const sp_trace_event *ev, int n, int n_ranks, char (*hosts)[64],
                   const int *stage_of_rank, sp_error *err);

#endif
