/* loops.c - the loops of the pipeline: a stage rank receives, computes and
 * sends micro-batches until STOP; the coordinator (rank 0) builds
 * micro-batches from its scheduler, runs stage 0 when it holds it, and takes
 * the sampled tokens back. Messages are non-blocking and double-buffered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"
#include "shardpipe/util.h"

/* Called by the engine between layers. Large messages go by rendezvous
 * (UCX over TCP and shared memory alike): the data moves only while the
 * sender and the receiver call into MPI. Without this, hidden states sent
 * with MPI_Isend would sit until the stage finished computing the next
 * micro-batch and the pipeline would not overlap (measured on the emulated
 * LAN: ranks waited 20.6 s instead of 3.8 s). One MPI_Test per outstanding
 * request per layer is enough to keep them moving. */
void sp_progress_messages(void *arg)
{
    runtime *rt = arg;
    MPI_Request *reqs[4] = {&rt->sreq[0], &rt->sreq[1], &rt->rreq, &rt->treq};
    for (int i = 0; i < 4; i++) {
        int done;
        if (*reqs[i] != MPI_REQUEST_NULL) MPI_Test(reqs[i], &done, MPI_STATUS_IGNORE);
    }
}

static int rank_of_stage(const sp_plan *p, int s) { return p->stages[s].rank; }

static void stage_label(const runtime *rt, int stage, char *buf, int cap)
{
    char who[128];
    int r = rank_of_stage(rt->plan, stage);
    snprintf(buf, (size_t)cap, "stage %d, %s", stage, sp_comm_who(rt->comm, r, who, sizeof who));
}

/* Isend `bytes` of sbuf[sidx] to dest after the previous send from that
 * buffer has completed (two buffers: one in flight while the next fills). */
static void *next_send_buf(runtime *rt, int dest)
{
    sp_error err = {{0}};
    if (rt->sreq[rt->sidx] != MPI_REQUEST_NULL) {
        char what[200], who[128];
        snprintf(what, sizeof what, "the send to %s to complete", sp_comm_who(rt->comm, dest, who, sizeof who));
        double t0 = sp_now();
        if (sp_comm_wait(rt->comm, &rt->sreq[rt->sidx], NULL, what, NULL, &err)) sp_comm_abort(rt->comm, &err);
        rt->stats.send += sp_now() - t0;
    }
    return rt->sbuf[rt->sidx];
}

static void send_buf(runtime *rt, size_t bytes, int dest, int tag, int mb_id, int rows)
{
    double t0 = sp_now();
    MPI_Isend(rt->sbuf[rt->sidx], (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD, &rt->sreq[rt->sidx]);
    double t1 = sp_now();
    rt->stats.send += t1 - t0;
    sp_trace_add(&rt->trace, SP_EV_SEND, t0, t1, mb_id, rows, dest);
    rt->sidx ^= 1;
}

static void flush_sends(runtime *rt)
{
    sp_error err = {{0}};
    for (int i = 0; i < 2; i++)
        if (rt->sreq[i] != MPI_REQUEST_NULL &&
            sp_comm_wait(rt->comm, &rt->sreq[i], NULL, "the last sends to complete", &rt->stats.send, &err))
            sp_comm_abort(rt->comm, &err);
}

/* CPU seconds used by this process (all its threads). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Computes one micro-batch on this rank's stage; returns the bytes of the
 * outgoing message in the current send buffer. */
static long compute(runtime *rt, const void *in, int dest)
{
    sp_error err = {{0}};
    void *out = next_send_buf(rt, dest);
    const sp_wire_header *h = in;
    double t0 = sp_now(), c0 = cpu_now();
    long bytes = sp_stage_step(&rt->st, in, out, &err);
    double t1 = sp_now(), c1 = cpu_now();
    if (bytes < 0) sp_comm_abort(rt->comm, &err);
    if (rt->stage < 8) ((sp_wire_header *)out)->stage_s[rt->stage] = (float)(t1 - t0);
    rt->stats.compute += t1 - t0;
    rt->stats.batches++;
    rt->stats.rows += h->n_rows;
    /* decode-only and full: comparable with the plan's predicted_ms */
    const sp_plan *p = rt->plan;
    bool decode = h->n_rows == (p->sequences + p->micro_batches - 1) / p->micro_batches;
    const sp_wire_row *rows = sp_wire_rows((void *)in);
    for (int i = 0; i < h->n_rows && decode; i++) decode = !(rows[i].flags & SP_ROW_PROMPT);
    if (decode) {
        rt->stats.decode_compute += t1 - t0;
        rt->stats.decode_cpu += c1 - c0;
        rt->stats.decode_batches++;
    }
    sp_trace_add(&rt->trace, SP_EV_COMPUTE, t0, t1, h->mb_id, h->n_rows, -1);
    return bytes;
}

/* A stage rank that is not rank 0: receive, compute, send, until STOP. */
void sp_stage_loop(runtime *rt)
{
    const sp_plan *p = rt->plan;
    int s = rt->stage;
    int prev = s == 0 ? 0 : rank_of_stage(p, s - 1);
    bool last = s == p->n_stages - 1;
    int next = last ? 0 : rank_of_stage(p, s + 1);
    int tag_out = last ? SP_TAG_TOKENS : SP_TAG_PIPE;
    char what[200];
    if (s == 0) snprintf(what, sizeof what, "token micro-batches from the coordinator (rank 0, host %s)", rt->comm->hosts[0]);
    else {
        char lbl[160];
        stage_label(rt, s - 1, lbl, sizeof lbl);
        snprintf(what, sizeof what, "hidden states from %s", lbl);
    }
    MPI_Request *rreq = &rt->rreq;
    int cur = 0;
    MPI_Irecv(rt->rbuf[cur], (int)rt->msg_cap, MPI_BYTE, prev, SP_TAG_PIPE, MPI_COMM_WORLD, rreq);
    sp_error err = {{0}};
    for (;;) {
        double t0 = sp_now();
        if (sp_comm_wait_for(rt->comm, rreq, NULL, what, &rt->stats.recv_wait,
                             rt->wait_forever ? 0 : rt->comm->timeout_s, &err))
            sp_comm_abort(rt->comm, &err);
        const sp_wire_header *h = rt->rbuf[cur];
        sp_trace_add(&rt->trace, SP_EV_RECV, t0, sp_now(), h->mb_id, h->n_rows, prev);
        if (h->magic != SP_WIRE_MAGIC) {
            sp_errorf(&err, "garbled message from rank %d (bad magic)", prev);
            sp_comm_abort(rt->comm, &err);
        }
        if (h->kind == SP_MSG_STOP) {
            if (!last) {
                sp_wire_header *o = next_send_buf(rt, next);
                *o = *h;
                send_buf(rt, sizeof *o, next, SP_TAG_PIPE, h->mb_id, 0);
            }
            break;
        }
        /* the next micro-batch arrives while this one is computed */
        MPI_Irecv(rt->rbuf[cur ^ 1], (int)rt->msg_cap, MPI_BYTE, prev, SP_TAG_PIPE, MPI_COMM_WORLD, rreq);
        long bytes = compute(rt, h, next);
        send_buf(rt, (size_t)bytes, next, tag_out, h->mb_id, h->n_rows);
        cur ^= 1;
    }
    flush_sends(rt);
}

/* Rank 0: schedule micro-batches, run stage 0 when it is ours, take sampled
 * tokens back, until every request is done; then STOP down the pipeline. */
/* rank 0: each stage's compute time for a micro-batch, as the tokens brought it */
static void add_busy(runtime *rt, const sp_wire_header *th)
{
    for (int i = 0; i < rt->plan->n_stages && i < 8; i++) rt->stage_busy[i] += th->stage_s[i];
}

void sp_coordinator_loop(runtime *rt, sp_sched *sched, bool progress, const sp_coord_hooks *hooks)
{
    const sp_plan *p = rt->plan;
    int S = p->n_stages;
    int last_rank = rank_of_stage(p, S - 1);
    bool local_first = rt->stage == 0;
    bool local_all = local_first && S == 1;
    int first_dest = local_first ? (S > 1 ? rank_of_stage(p, 1) : 0) : rank_of_stage(p, 0);
    sp_wire_row *rows = sp_alloc((size_t)sp_plan_max_rows(p) * sizeof *rows);
    void *batch = sp_alloc(rt->msg_cap);
    void *tokens = sp_alloc(rt->msg_cap);
    MPI_Request *treq = &rt->treq;
    if (!local_all) MPI_Irecv(tokens, (int)rt->msg_cap, MPI_BYTE, last_rank, SP_TAG_TOKENS, MPI_COMM_WORLD, treq);
    char lbl[160], what[256];
    stage_label(rt, S - 1, lbl, sizeof lbl);
    snprintf(what, sizeof what, "sampled tokens from the last stage (%s); a stage before it may be the one that stopped", lbl);
    sp_error err = {{0}};
    int mb_id = 0, spins = 0, in_flight = 0;
    double t_last = sp_now(), t_progress = 0;
    bool building = true;
    for (;;) {
        if (building && !hooks->keep_going(hooks->arg, sched, in_flight)) building = false;
        if (!building && in_flight == 0) break;
        bool moved = false;
        for (int g = 0; g < sched->n_groups && building; g++) {
            double t0 = sp_now();
            int n = sp_sched_build(sched, g, rows, t0);
            if (!n) continue;
            moved = true;
            in_flight++;
            sp_wire_header h = {SP_WIRE_MAGIC, SP_MSG_BATCH, mb_id++, g, n, 0, {0}};
            memcpy(batch, &h, sizeof h);
            memcpy(sp_wire_rows(batch), rows, (size_t)n * sizeof *rows);
            if (local_first) {
                long bytes = compute(rt, batch, first_dest);
                if (local_all) { /* one stage: the tokens are already here */
                    const sp_wire_header *th = rt->sbuf[rt->sidx];
                    add_busy(rt, th);
                    sp_sched_tokens(sched, g, sp_wire_rows(rt->sbuf[rt->sidx]), th->n_rows, sp_now());
                    in_flight--;
                } else {
                    send_buf(rt, (size_t)bytes, first_dest, SP_TAG_PIPE, h.mb_id, n);
                }
            } else {
                void *out = next_send_buf(rt, first_dest);
                memcpy(out, batch, sp_wire_msg_bytes(p->wire, n, 0, 0));
                send_buf(rt, sp_wire_msg_bytes(p->wire, n, 0, 0), first_dest, SP_TAG_PIPE, h.mb_id, n);
            }
        }
        if (!local_all && in_flight > 0) {
            MPI_Status st;
            int done = sp_comm_test(rt->comm, treq, &st, &err);
            if (done < 0) sp_comm_abort(rt->comm, &err);
            if (done) {
                const sp_wire_header *th = tokens;
                add_busy(rt, th);
                sp_sched_tokens(sched, th->group, sp_wire_rows(tokens), th->n_rows, sp_now());
                in_flight--;
                moved = true;
                MPI_Irecv(tokens, (int)rt->msg_cap, MPI_BYTE, last_rank, SP_TAG_TOKENS, MPI_COMM_WORLD, treq);
            }
        }
        double now = sp_now();
        if (moved || in_flight == 0) { /* only work in flight can be late */
            if (moved) spins = 0;
            t_last = now;
        }
        if (!moved) {
            if (now - t_last > rt->comm->timeout_s) {
                sp_errorf(&err, "no answer from %s for %.0f s; that rank died, hangs or its network is down "
                                "(raise --timeout if a stage is just slow)", what, now - t_last);
                sp_comm_abort(rt->comm, &err);
            }
            double t0 = sp_now();
            hooks->idle(hooks->arg, sched, in_flight, &spins);
            rt->stats.idle += sp_now() - t0;
        }
        if (progress && now - t_progress > 0.5) {
            t_progress = now;
            fprintf(stderr, "\r[%d/%d sequences done, %ld tokens generated]", sched->n_done, sched->n_reqs,
                    sched->generated);
        }
    }
    if (progress) fprintf(stderr, "\r[%d/%d sequences done, %ld tokens generated]\n", sched->n_done, sched->n_reqs,
                          sched->generated);
    if (!local_all) {
        if (*treq != MPI_REQUEST_NULL) {
            MPI_Cancel(treq);
            MPI_Request_free(treq);
        }
        sp_wire_header stop = {SP_WIRE_MAGIC, SP_MSG_STOP, mb_id, -1, 0, 0, {0}};
        void *out = next_send_buf(rt, first_dest);
        memcpy(out, &stop, sizeof stop);
        send_buf(rt, sizeof stop, first_dest, SP_TAG_PIPE, mb_id, 0);
    }
    flush_sends(rt);
    free(rows);
    free(batch);
    free(tokens);
}
