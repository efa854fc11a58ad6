/* trace.c - Chrome Trace Event JSON (see trace.h). Times are microseconds
 * since a barrier all ranks passed together; across boards the clocks are
 * aligned only to that barrier, which is good to well under a millisecond on
 * a LAN and is stated in the trace's metadata. */
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>

#include "shardpipe/atomicfile.h"
#include "shardpipe/util.h"

void sp_trace_init(sp_trace *t, bool on, int rank, int stage, double t_start)
{
    t->on = on;
    t->rank = rank;
    t->stage = stage;
    t->t_start = t_start;
    t->ev = NULL;
    t->n = t->cap = 0;
}

void sp_trace_add(sp_trace *t, int kind, double t0, double t1, int mb_id, int rows, int peer)
{
    if (!t->on) return;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->ev = realloc(t->ev, (size_t)t->cap * sizeof *t->ev);
        if (!t->ev) { fprintf(stderr, "shardpipe: out of memory for the trace\n"); abort(); }
    }
    t->ev[t->n++] = (sp_trace_event){t0 - t->t_start, t1 - t->t_start, kind, t->rank, mb_id, rows, peer, t->stage};
}

void sp_trace_free(sp_trace *t)
{
    free(t->ev);
    t->ev = NULL;
    t->n = t->cap = 0;
}

static const char *kind_name(int k)
{
    switch (k) {
    case SP_EV_COMPUTE: return "compute";
    case SP_EV_SEND: return "send";
    case SP_EV_RECV: return "receive-wait";
    case SP_EV_SAMPLE: return "sample";
    case SP_EV_SCHEDULE: return "schedule";
    default: return "event";
    }
}

int sp_trace_write(const char *path, const sp_trace_event *ev, int n, int n_ranks, char (*hosts)[64],
                   const int *stage_of_rank, sp_error *err)
{
    sp_atomic_file out;
    if (sp_atomic_open(&out, path, "the trace", err)) return -1;
    FILE *f = out.f;
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"clock\":\"aligned at a start barrier\"},\n\"traceEvents\":[\n");
    int first = 1;
    for (int r = 0; r < n_ranks; r++) {
        char label[160];
        if (stage_of_rank[r] >= 0) snprintf(label, sizeof label, "rank %d stage %d (%s)", r, stage_of_rank[r], hosts[r]);
        else snprintf(label, sizeof label, "rank %d coordinator (%s)", r, hosts[r]);
        fprintf(f, "%s{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":\"%s\"}}", first ? "" : ",\n", r, label);
        fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":%d,\"args\":{\"sort_index\":%d}}", r, r);
        first = 0;
    }
    for (int i = 0; i < n; i++) {
        const sp_trace_event *e = &ev[i];
        double ts = e->t0 * 1e6, dur = (e->t1 - e->t0) * 1e6;
        fprintf(f, ",\n{\"ph\":\"X\",\"name\":\"%s mb %d\",\"cat\":\"%s\",\"pid\":%d,\"tid\":0,\"ts\":%.1f,\"dur\":%.1f,"
                   "\"args\":{\"micro_batch\":%d,\"rows\":%d,\"peer\":%d}}",
                kind_name(e->kind), e->mb_id, kind_name(e->kind), e->rank, ts, dur, e->mb_id, e->rows, e->peer);
        /* a flow arrow from the end of a send to the receiver taking the message */
        if (e->kind == SP_EV_SEND)
            fprintf(f, ",\n{\"ph\":\"s\",\"name\":\"micro-batch\",\"cat\":\"flow\",\"id\":%d,\"pid\":%d,\"tid\":0,\"ts\":%.1f}",
                    e->mb_id * 256 + e->peer, e->rank, ts);
        if (e->kind == SP_EV_RECV)
            fprintf(f, ",\n{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"micro-batch\",\"cat\":\"flow\",\"id\":%d,\"pid\":%d,\"tid\":0,\"ts\":%.1f}",
                    e->mb_id * 256 + e->rank, e->rank, e->t1 * 1e6);
    }
    fprintf(f, "\n]}\n");
    return sp_atomic_commit(&out, true, err);
}
