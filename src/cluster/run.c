/* run.c - `shardpipe run`: the pipeline from start to shutdown.
 *
 *  1. rank 0 loads and validates the plan against the model header and the
 *     MPI world, loads the tokenizer and the prompts; any problem is printed
 *     once and every rank exits 1 - before any weight is touched;
 *  2. the plan is broadcast; every stage maps the model and hashes its header
 *     and every byte of its shard (cached per file); rank 0 compares them
 *     with its own file and refuses a board with a different model by rank,
 *     host and the path that rank opened;
 *  3. the coordinator loop (rank 0) and the stage loops run the pipeline
 *     with non-blocking, double-buffered messages;
 *  4. statistics and trace events are gathered on rank 0, which prints the
 *     summary; then the orderly shutdown of comm.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "sched.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/cluster.h"
#include "shardpipe/shardhash.h"
#include "shardpipe/tokenizer.h"
#include "shardpipe/util.h"
#include "stage.h"
#include "supervise.h"
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

/* ---- model identity ---- */

/* Every byte of the stage's shard and the file's header (shardhash.c:
 * XXH3, cached per file and shard, so a board reads it once). */
static uint64_t shard_identity(const sp_gguf *g, const sp_plan *plan, int stage)
{
    const sp_stage_plan *st = &plan->stages[stage];
    sp_shard_sel sel = {st->first, st->last, stage == 0 || stage == plan->n_stages - 1};
    bool cached;
    return sp_shard_hash(g, sel, &cached);
}

/* ---- the loops ---- */

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
} runtime;

/* Called by the engine between layers. Large messages go by rendezvous
 * (UCX over TCP and shared memory alike): the data moves only while the
 * sender and the receiver call into MPI. Without this, hidden states sent
 * with MPI_Isend would sit until the stage finished computing the next
 * micro-batch and the pipeline would not overlap (measured on the emulated
 * LAN: ranks waited 20.6 s instead of 3.8 s). One MPI_Test per outstanding
 * request per layer is enough to keep them moving. */
static void progress_messages(void *arg)
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
static void stage_loop(runtime *rt)
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
        if (sp_comm_wait(rt->comm, rreq, NULL, what, &rt->stats.recv_wait, &err)) sp_comm_abort(rt->comm, &err);
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
static void coordinator_loop(runtime *rt, sp_sched *sched, bool progress)
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
    while (!sp_sched_finished(sched)) {
        bool moved = false;
        for (int g = 0; g < sched->n_groups; g++) {
            double t0 = sp_now();
            int n = sp_sched_build(sched, g, rows, t0);
            if (!n) continue;
            moved = true;
            in_flight++;
            sp_wire_header h = {SP_WIRE_MAGIC, SP_MSG_BATCH, mb_id++, g, n, 0};
            memcpy(batch, &h, sizeof h);
            memcpy(sp_wire_rows(batch), rows, (size_t)n * sizeof *rows);
            if (local_first) {
                long bytes = compute(rt, batch, first_dest);
                if (local_all) { /* one stage: the tokens are already here */
                    const sp_wire_header *th = rt->sbuf[rt->sidx];
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
                sp_sched_tokens(sched, th->group, sp_wire_rows(tokens), th->n_rows, sp_now());
                in_flight--;
                moved = true;
                MPI_Irecv(tokens, (int)rt->msg_cap, MPI_BYTE, last_rank, SP_TAG_TOKENS, MPI_COMM_WORLD, treq);
            }
        }
        double now = sp_now();
        if (moved) {
            spins = 0;
            t_last = now;
        } else {
            if (now - t_last > rt->comm->timeout_s) {
                sp_errorf(&err, "no answer from %s for %.0f s; that rank died, hangs or its network is down "
                                "(raise --timeout if a stage is just slow)", what, now - t_last);
                sp_comm_abort(rt->comm, &err);
            }
            double t0 = sp_now();
            sp_comm_backoff(&spins);
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
        sp_wire_header stop = {SP_WIRE_MAGIC, SP_MSG_STOP, mb_id, -1, 0, 0};
        void *out = next_send_buf(rt, first_dest);
        memcpy(out, &stop, sizeof stop);
        send_buf(rt, sizeof stop, first_dest, SP_TAG_PIPE, mb_id, 0);
    }
    flush_sends(rt);
    free(rows);
    free(batch);
    free(tokens);
}

/* ---- summary ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The p-quantile (0 <= p <= 1) of sorted v[0..n-1], n >= 1, by linear
 * interpolation between the two closest ranks: the value at the fractional
 * position (n - 1) p. The same method as benchmarks/run's percentile() (and
 * numpy's default), so figures from either side agree. */
static double percentile(const double *v, long n, double p)
{
    double k = (double)(n - 1) * p;
    long lo = (long)k, hi = lo + 1 < n ? lo + 1 : n - 1;
    return v[lo] + (v[hi] - v[lo]) * (k - (double)lo);
}

/* Time per output token, token by token: the gap between consecutive tokens
 * of a sequence as they reached the coordinator, t_out[k] - t_out[k - 1]
 * for k >= 1, pooled over all sequences. A micro-batch that waits on the
 * network or shares the pipeline with a prompt's chunks shows up in the high
 * percentiles; a per-sequence mean would smooth it away. */
typedef struct token_gaps {
    double *all;        /* every gap of every sequence, sorted */
    long n;             /* sum over sequences of (tokens - 1) */
    double p50, p90, p99, max;
    double *req_p50, *req_max; /* per sequence; 0 with fewer than 2 tokens */
} token_gaps;

static void token_gaps_compute(token_gaps *tg, const sp_sched *s)
{
    memset(tg, 0, sizeof *tg);
    for (int i = 0; i < s->n_reqs; i++)
        if (s->reqs[i].n_out > 1) tg->n += s->reqs[i].n_out - 1;
    tg->all = sp_alloc((size_t)(tg->n ? tg->n : 1) * sizeof(double));
    tg->req_p50 = sp_calloc((size_t)s->n_reqs, sizeof(double));
    tg->req_max = sp_calloc((size_t)s->n_reqs, sizeof(double));
    long off = 0;
    for (int i = 0; i < s->n_reqs; i++) {
        const sp_request *r = &s->reqs[i];
        int m = r->n_out - 1;
        if (m < 1) continue;
        double *g = tg->all + off;
        for (int k = 1; k < r->n_out; k++) g[k - 1] = r->t_out[k] - r->t_out[k - 1];
        qsort(g, (size_t)m, sizeof *g, cmp_double);
        tg->req_p50[i] = percentile(g, m, 0.5);
        tg->req_max[i] = g[m - 1];
        off += m;
    }
    if (tg->n == 0) return;
    qsort(tg->all, (size_t)tg->n, sizeof *tg->all, cmp_double);
    tg->p50 = percentile(tg->all, tg->n, 0.50);
    tg->p90 = percentile(tg->all, tg->n, 0.90);
    tg->p99 = percentile(tg->all, tg->n, 0.99);
    tg->max = tg->all[tg->n - 1];
}

static void token_gaps_free(token_gaps *tg)
{
    free(tg->all);
    free(tg->req_p50);
    free(tg->req_max);
}

/* Prints the summary to f (NULL: quiet) and writes it as JSON to json_path;
 * -1 with err when the JSON cannot be written. */
static int summary(FILE *f, const sp_comm *c, const sp_plan *p, const sp_sched *s, const rank_stats *rs,
                   double t_start, double t_end, const char *json_path, sp_error *err)
{
    int rc = 0;
    int n = s->n_reqs;
    long prompt_toks = 0, gen = 0, dec_toks = 0;
    double first_any = 1e300, first_last = 0;
    double *ttft = sp_calloc((size_t)n, sizeof(double)), *dec = sp_calloc((size_t)n, sizeof(double));
    int n_dec = 0;
    for (int i = 0; i < n; i++) {
        const sp_request *r = &s->reqs[i];
        prompt_toks += r->n_prompt;
        gen += r->n_out;
        ttft[i] = r->t_first - t_start;
        if (r->t_first < first_any) first_any = r->t_first;
        if (r->t_first > first_last) first_last = r->t_first;
        if (r->n_out > 1 && r->t_done > r->t_first) {
            dec[n_dec++] = (r->n_out - 1) / (r->t_done - r->t_first);
            dec_toks += r->n_out - 1;
        }
    }
    /* Steady decode, what `shardpipe plan`'s predicted_tok_s describes: the
     * tokens that arrive after the last first token (every prompt done,
     * every sequence decoding) and up to the first sequence's end, over that
     * window. 0 when it is empty: more requests than sequences in flight. */
    double done_first = 1e300;
    for (int i = 0; i < n; i++)
        if (s->reqs[i].t_done < done_first) done_first = s->reqs[i].t_done;
    long steady_toks = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s->reqs[i].n_out; k++)
            if (s->reqs[i].t_out[k] > first_last && s->reqs[i].t_out[k] <= done_first) steady_toks++;
    double steady_s = done_first > first_last ? done_first - first_last : 0;
    double steady_rate = steady_s > 0 ? steady_toks / steady_s : 0;
    double prompt_rate = prompt_toks / (first_last - t_start);
    double decode_rate = t_end > first_any ? dec_toks / (t_end - first_any) : 0;
    double ttft_med = median(ttft, n), ttft_max = ttft[n - 1];
    double dec_med = median(dec, n_dec);
    token_gaps tg;
    token_gaps_compute(&tg, s);
    if (f) {
    fprintf(f, "\n== shardpipe run: %d stage%s, %d sequence%s (%d in flight, %d micro-batch groups), wire %s ==\n",
            p->n_stages, p->n_stages > 1 ? "s" : "", n, n > 1 ? "s" : "", p->sequences, p->micro_batches,
            sp_wire_name(p->wire));
    fprintf(f, "prompt : %ld tokens, %.2f tok/s aggregate (until the last first token); time to first token "
               "median %.3f s, max %.3f s\n", prompt_toks, prompt_rate, ttft_med, ttft_max);
    fprintf(f, "decode : %ld tokens, %.2f tok/s aggregate, %.2f tok/s per sequence (median); wall %.3f s\n",
            gen, decode_rate, dec_med, t_end - t_start);
    if (steady_rate > 0) {
        fprintf(f, "steady : %ld tokens in %.3f s while %s %d sequence%s decode%s: %.2f tok/s", steady_toks, steady_s,
                n > 1 ? "all" : "its", n, n > 1 ? "s" : "", n > 1 ? "" : "s", steady_rate);
        if (p->predicted_tok_s > 0)
            fprintf(f, "; the plan predicts %.2f (measured/predicted %.2f)", p->predicted_tok_s,
                    steady_rate / p->predicted_tok_s);
        fputc('\n', f);
    }
    if (tg.n)
        fprintf(f, "tpot   : time per output token over %ld gaps between a sequence's consecutive tokens: "
                   "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                tg.n, 1e3 * tg.p50, 1e3 * tg.p90, 1e3 * tg.p99, 1e3 * tg.max);
    fprintf(f, "%-6s %-5s %-16s %-9s %8s %9s %8s %9s %8s %7s %9s\n", "stage", "rank", "host", "layers",
            "batches", "compute", "send", "recv-wait", "idle", "busy", "peak RSS");
    for (int r = 0; r < c->size; r++) {
        const rank_stats *x = &rs[r];
        char layers[32] = "-", stage[16] = "coord";
        if (x->stage >= 0) {
            snprintf(stage, sizeof stage, "%d", x->stage);
            snprintf(layers, sizeof layers, "%d-%d", p->stages[x->stage].first, p->stages[x->stage].last);
        }
        double idle = x->wall - x->compute - x->send - x->recv_wait;
        fprintf(f, "%-6s %-5d %-16.16s %-9s %8lld %8.3fs %7.3fs %8.3fs %7.3fs %6.1f%% %6.1f MiB\n", stage, r,
                c->hosts[r], layers, (long long)x->batches, x->compute, x->send, x->recv_wait, idle < 0 ? 0 : idle,
                x->wall > 0 ? 100.0 * x->compute / x->wall : 0.0, x->peak_rss / 1048576.0);
    }
    /* plans from `shardpipe plan` carry each stage's predicted compute per
     * decode micro-batch of ceil(sequences / micro_batches) rows; measured
     * over the micro-batches of exactly that: decode rows only, full */
    bool predicted = false;
    for (int i = 0; i < p->n_stages; i++) predicted |= p->stages[i].predicted_ms > 0;
    if (predicted) {
        int rows = (p->sequences + p->micro_batches - 1) / p->micro_batches;
        fprintf(f, "decode compute per micro-batch of %d row%s, measured against the plan's prediction:\n", rows,
                rows > 1 ? "s" : "");
        fprintf(f, "%-6s %-5s %8s %12s %12s %13s %22s\n", "stage", "rank", "batches", "measured", "predicted",
                "measured/pred", "CPU/threads (/pred)");
        for (int r = 0; r < c->size; r++) {
            const rank_stats *x = &rs[r];
            if (x->stage < 0 || p->stages[x->stage].predicted_ms <= 0) continue;
            double pred = p->stages[x->stage].predicted_ms;
            if (x->decode_batches == 0) {
                fprintf(f, "%-6d %-5d %8d %12s %9.2f ms %13s\n", x->stage, r, 0, "-", pred, "-");
                continue;
            }
            /* CPU time per thread: below the wall time when other processes
             * took the cores, the same when the stage had them to itself */
            double ms = 1e3 * x->decode_compute / (double)x->decode_batches;
            double cpu = 1e3 * x->decode_cpu / (double)x->decode_batches / (x->threads > 0 ? x->threads : 1);
            fprintf(f, "%-6d %-5d %8lld %9.2f ms %9.2f ms %13.2f %9.2f ms (%.2f)\n", x->stage, r,
                    (long long)x->decode_batches, ms, pred, ms / pred, cpu, cpu / pred);
        }
    }
    }
    if (json_path) {
        sp_atomic_file jf;
        FILE *j = sp_atomic_open(&jf, json_path, "the run summary", err) ? NULL : jf.f;
        if (!j) rc = -1;
        if (j) {
            fprintf(j, "{\"stages\": %d, \"sequences\": %d, \"in_flight\": %d, \"micro_batches\": %d, \"wire\": \"%s\",\n",
                    p->n_stages, n, p->sequences, p->micro_batches, sp_wire_name(p->wire));
            fprintf(j, " \"prompt_tokens\": %ld, \"generated_tokens\": %ld, \"prompt_tok_s\": %.4f, \"decode_tok_s\": %.4f,\n",
                    prompt_toks, gen, prompt_rate, decode_rate);
            if (steady_rate > 0)
                fprintf(j, " \"decode_steady_tok_s\": %.4f, \"decode_steady_s\": %.5f, \"decode_steady_tokens\": %ld,\n",
                        steady_rate, steady_s, steady_toks);
            else
                fprintf(j, " \"decode_steady_tok_s\": null, \"decode_steady_s\": 0, \"decode_steady_tokens\": 0,\n");
            if (p->predicted_tok_s > 0) fprintf(j, " \"predicted_tok_s\": %.4f,\n", p->predicted_tok_s);
            else fprintf(j, " \"predicted_tok_s\": null,\n");
            fprintf(j, " \"decode_tok_s_per_sequence_median\": %.4f, \"ttft_median_s\": %.5f, \"ttft_max_s\": %.5f, \"wall_s\": %.5f,\n",
                    dec_med, ttft_med, ttft_max, t_end - t_start);
            /* time per output token over all gaps between consecutive tokens
             * (token_gaps above); null when no sequence has two tokens */
            if (tg.n)
                fprintf(j, " \"tpot_p50_s\": %.6f, \"tpot_p90_s\": %.6f, \"tpot_p99_s\": %.6f, \"tpot_max_s\": %.6f, "
                           "\"itl_count\": %ld,\n", tg.p50, tg.p90, tg.p99, tg.max, tg.n);
            else
                fprintf(j, " \"tpot_p50_s\": null, \"tpot_p90_s\": null, \"tpot_p99_s\": null, \"tpot_max_s\": null, "
                           "\"itl_count\": 0,\n");
            /* per sequence: tpot_s is the mean gap between its tokens,
             * (last - first) / (tokens - 1); itl_p50_s and itl_max_s the
             * median and the largest of its gaps */
            fprintf(j, " \"requests\": [");
            for (int i = 0; i < n; i++) {
                const sp_request *r = &s->reqs[i];
                double tpot = r->n_out > 1 ? (r->t_done - r->t_first) / (r->n_out - 1) : 0;
                fprintf(j, "%s\n  {\"prompt_tokens\": %d, \"generated_tokens\": %d, \"ttft_s\": %.6f, \"tpot_s\": %.6f, "
                           "\"itl_p50_s\": %.6f, \"itl_max_s\": %.6f, \"done_s\": %.6f}",
                        i ? "," : "", r->n_prompt, r->n_out, r->t_first - t_start, tpot, tg.req_p50[i], tg.req_max[i],
                        r->t_done - t_start);
            }
            fprintf(j, "\n ],\n");
            fprintf(j, " \"ranks\": [");
            for (int r = 0; r < c->size; r++) {
                const rank_stats *x = &rs[r];
                fprintf(j, "%s\n  {\"rank\": %d, \"host\": \"%s\", \"stage\": %d, \"batches\": %lld, \"rows\": %lld, "
                           "\"compute_s\": %.6f, \"send_s\": %.6f, \"recv_wait_s\": %.6f, \"idle_s\": %.6f, \"wall_s\": %.6f, "
                           "\"peak_rss_bytes\": %llu}",
                        r ? "," : "", r, c->hosts[r], x->stage, (long long)x->batches, (long long)x->rows, x->compute,
                        x->send, x->recv_wait, x->wall - x->compute - x->send - x->recv_wait, x->wall,
                        (unsigned long long)x->peak_rss);
            }
            fprintf(j, "\n]}\n");
            if (sp_atomic_commit(&jf, true, err)) rc = -1;
        }
    }
    free(ttft);
    free(dec);
    token_gaps_free(&tg);
    return rc;
}

/* ---- entry ---- */

/* Rank 0's checks before anything is loaded. */
static int prepare(const sp_run_options *o, sp_comm *c, sp_plan *plan, sp_tokenizer **tok, sp_sched *sched,
                   sp_error *err)
{
    if (sp_plan_load(o->plan_path, plan, err)) return -1;
    if (o->model_path) snprintf(plan->model_path, sizeof plan->model_path, "%s", o->model_path);
    if (o->sequences > 0) plan->sequences = o->sequences;
    if (o->micro_batches > 0) plan->micro_batches = o->micro_batches;
    if (plan->micro_batches > plan->sequences)
        return sp_errorf(err, "%s: micro_batches (%d) is more than sequences (%d); lower --micro-batches or raise "
                              "--sequences", plan->path, plan->micro_batches, plan->sequences);
    if (sp_plan_check_world(plan, c->size, err)) return -1;
    int s0 = sp_plan_stage_of_rank(plan, 0);
    if (s0 > 0)
        return sp_errorf(err, "%s: rank 0 is stage %d; rank 0 is the coordinator and can run only the first stage "
                              "or no layers at all - give stage 0 to rank 0, or move rank 0's layers to another rank",
                         plan->path, s0);
    sp_gguf *g = sp_gguf_open(plan->model_path, err);
    if (!g) return -1;
    sp_config cfg;
    int rc = sp_config_read(g, &cfg, err);
    if (!rc) rc = sp_plan_check_model(plan, g, &cfg, err);
    if (!rc) rc = sp_plan_check_sha256(plan, err);
    if (!rc && plan->wire == SP_WIRE_Q8_0 && cfg.dim % 32)
        rc = sp_errorf(err, "%s: wire q8_0 needs the embedding length (%d) to be a multiple of 32; use f16",
                       plan->path, cfg.dim);
    /* a tokenizer shardpipe cannot load is an error only for text prompts
     * (sp_sched_init says so); prompts given as ids run without it */
    if (!rc && !(*tok = sp_tokenizer_load(g, err))) {
        fprintf(stderr, "shardpipe run: note: %s; prompts must be token ids and the output is ids\n", err->msg);
        err->msg[0] = 0;
    }
    int eos = sp_config_eos_id(g);
    sp_gguf_close(g);
    if (rc) return -1;
    rc = sp_sched_init(sched, *tok, o->prompt, o->prompts_file, o->n_tokens, plan->context, plan->sequences,
                       plan->micro_batches, sp_plan_max_rows(plan), plan->prefill_chunk, plan->n_stages,
                       o->ignore_eos, err);
    if (!*tok) sched->eos = eos;
    for (int i = 0; !rc && i < sched->n_reqs; i++)
        for (int k = 0; !rc && k < sched->reqs[i].n_prompt; k++)
            if (sched->reqs[i].prompt[k] >= cfg.n_vocab)
                rc = sp_errorf(err, "prompt %d: token %d is %d, outside the vocabulary [0, %d) of %s", i + 1, k,
                               sched->reqs[i].prompt[k], cfg.n_vocab, plan->model_path);
    return rc;
}

/* Broadcasts rank 0's status; on failure every rank shuts down with 1. */
static void agree(sp_comm *c, int rc, const sp_error *err)
{
    int status = rc;
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status == 0) return;
    if (c->rank == 0) fprintf(stderr, "shardpipe run: %s\n", err->msg);
    sp_comm_shutdown(c, 1);
}

int sp_cluster_run(int *argc, char ***argv, const sp_run_options *o)
{
    sp_comm comm;
    sp_comm_init(&comm, argc, argv, o->timeout_s);
    sp_error err = {{0}};
    sp_plan plan;
    memset(&plan, 0, sizeof plan);
    sp_tokenizer *tok = NULL;
    sp_sched sched;
    memset(&sched, 0, sizeof sched);

    /* 1. validate everything on rank 0 */
    int rc = 0;
    if (comm.rank == 0) rc = prepare(o, &comm, &plan, &tok, &sched, &err);
    agree(&comm, rc, &err);
    MPI_Bcast(&plan, (int)sizeof plan, MPI_BYTE, 0, MPI_COMM_WORLD);
    /* a board may keep the model elsewhere: --model on that rank's command
     * line (an MPMD launch, `mpiexec -n 1 ... : -n 1 ... --model PATH`) */
    if (o->model_path) snprintf(plan.model_path, sizeof plan.model_path, "%s", o->model_path);

    /* 2. every stage binds its shard; the model files must be the same */
    runtime rt;
    memset(&rt, 0, sizeof rt);
    rt.comm = &comm;
    rt.plan = &plan;
    rt.stage = sp_plan_stage_of_rank(&plan, comm.rank);
    {
        char who[128], name[256];
        sp_comm_who(&comm, comm.rank, who, sizeof who);
        if (rt.stage >= 0)
            snprintf(name, sizeof name, "%s (stage %d, layers %d-%d)", who, rt.stage, plan.stages[rt.stage].first,
                     plan.stages[rt.stage].last);
        else
            snprintf(name, sizeof name, "%s (the coordinator, no stage)", who);
        sp_supervise_name(name);
    }
    rt.sreq[0] = rt.sreq[1] = rt.rreq = rt.treq = MPI_REQUEST_NULL;
    rc = 0;
    uint64_t mine = 0;
    if (rt.stage >= 0) {
        rc = sp_stage_open(&rt.st, &plan, rt.stage, &o->sampling, o->logits_out, &err);
        if (!rc) {
            rt.st.engine->progress = progress_messages;
            rt.st.engine->progress_arg = &rt;
        }
        if (!rc) mine = shard_identity(rt.st.model->gguf, &plan, rt.stage);
    }
    /* report load failures by rank, then compare identities on rank 0 */
    /* msg: the error, or the model path this rank opened (for a refusal) */
    struct { int32_t rc; uint64_t id; char msg[512]; } me = {rc, mine, ""}, *all = NULL;
    if (rc) memcpy(me.msg, err.msg, sizeof me.msg - 1);
    else snprintf(me.msg, sizeof me.msg, "%.500s", plan.model_path);
    if (comm.rank == 0) all = sp_calloc((size_t)comm.size, sizeof *all);
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD);
    rc = 0;
    if (comm.rank == 0) {
        /* rank 0's own mapping when it runs stage 0, else open the header */
        sp_gguf *own = rt.stage >= 0 && rt.st.model ? NULL : sp_gguf_open(plan.model_path, &err);
        const sp_gguf *g = own ? own : rt.stage >= 0 && rt.st.model ? rt.st.model->gguf : NULL;
        for (int r = 0; r < comm.size && !rc; r++) {
            int s = sp_plan_stage_of_rank(&plan, r);
            char who[128];
            sp_comm_who(&comm, r, who, sizeof who);
            if (all[r].rc) rc = sp_errorf(&err, "%s could not load its shard: %s", who, all[r].msg);
            else if (s >= 0 && g && shard_identity(g, &plan, s) != all[r].id)
                rc = sp_errorf(&err, "%s (stage %d) has a different model file at %s than the coordinator's %s "
                                     "(header, tensor index or the bytes of its layers differ); copy the same "
                                     "file to every board", who, s, all[r].msg, g->path);
        }
        if (!g) rc = -1;
        sp_gguf_close(own);
        free(all);
    }
    agree(&comm, rc, &err);
    /* every shard is the right one: now read its weights (into huge pages);
     * a rank that cannot says so itself, and all stop */
    rc = rt.stage >= 0 ? sp_model_load_weights(rt.st.model, &err) : 0;
    if (rc) {
        char who[128];
        sp_comm_who(&comm, comm.rank, who, sizeof who);
        fprintf(stderr, "shardpipe run: %s (stage %d): %s\n", who, rt.stage, err.msg);
    }
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc) sp_comm_shutdown(&comm, 1);

    /* 3. the pipeline */
    size_t max_rows = (size_t)sp_plan_max_rows(&plan);
    int dim = rt.stage >= 0 ? rt.st.dim : 0;
    MPI_Allreduce(MPI_IN_PLACE, &dim, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    rt.msg_cap = sp_wire_msg_bytes(SP_WIRE_F32, (int)max_rows + 1, dim, 1);
    for (int i = 0; i < 2; i++) {
        rt.rbuf[i] = sp_alloc(rt.msg_cap);
        rt.sbuf[i] = sp_alloc(rt.msg_cap);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t_start = sp_now();
    sp_trace_init(&rt.trace, o->trace_path != NULL, comm.rank, rt.stage, t_start);
    if (comm.rank == 0) {
        if (o->prompt && !o->quiet) {
            sched.stream = stdout;
            fputs(o->prompt, stdout);
            fflush(stdout);
        }
        coordinator_loop(&rt, &sched, o->prompts_file && !o->quiet);
        if (sched.stream) fputc('\n', stdout);
    } else if (rt.stage >= 0) {
        stage_loop(&rt);
    }
    double t_end = sp_now();

    /* 4. statistics, trace, outputs */
    rt.stats.wall = t_end - t_start;
    rt.stats.stage = rt.stage;
    rt.stats.threads = rt.stage >= 0 ? plan.stages[rt.stage].threads : 0;
    rt.stats.peak_rss = sp_peak_rss_bytes();
    rank_stats *stats = comm.rank == 0 ? sp_calloc((size_t)comm.size, sizeof *stats) : NULL;
    MPI_Gather(&rt.stats, (int)sizeof rt.stats, MPI_BYTE, stats, (int)sizeof rt.stats, MPI_BYTE, 0, MPI_COMM_WORLD);
    int n_ev = rt.trace.n, *counts = NULL, *displs = NULL;
    sp_trace_event *events = NULL;
    if (o->trace_path) {
        if (comm.rank == 0) {
            counts = sp_calloc((size_t)comm.size, sizeof(int));
            displs = sp_calloc((size_t)comm.size, sizeof(int));
        }
        MPI_Gather(&n_ev, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
        int total = 0;
        if (comm.rank == 0)
            for (int r = 0; r < comm.size; r++) {
                displs[r] = total * (int)sizeof(sp_trace_event);
                total += counts[r];
                counts[r] *= (int)sizeof(sp_trace_event);
            }
        if (comm.rank == 0) events = sp_calloc((size_t)(total ? total : 1), sizeof *events);
        MPI_Gatherv(rt.trace.ev, n_ev * (int)sizeof(sp_trace_event), MPI_BYTE, events, counts, displs, MPI_BYTE, 0,
                    MPI_COMM_WORLD);
        if (comm.rank == 0) {
            int *stage_of = sp_calloc((size_t)comm.size, sizeof(int));
            for (int r = 0; r < comm.size; r++) stage_of[r] = sp_plan_stage_of_rank(&plan, r);
            if (sp_trace_write(o->trace_path, events, total, comm.size, comm.hosts, stage_of, &err)) {
                fprintf(stderr, "shardpipe run: %s\n", err.msg);
                rc = 1;
            }
            free(stage_of);
        }
    }
    if (comm.rank == 0) {
        if (summary(o->quiet ? NULL : stderr, &comm, &plan, &sched, stats, t_start, t_end, o->summary_json, &err)) {
            fprintf(stderr, "shardpipe run: %s\n", err.msg);
            rc = 1;
        }
        if (o->prompts_file && sp_sched_write_jsonl(&sched, o->output_path, t_start, &err)) {
            fprintf(stderr, "shardpipe run: %s\n", err.msg);
            rc = 1;
        }
        if (o->tokens_out && sp_sched_write_tokens(&sched, o->tokens_out, &err)) {
            fprintf(stderr, "shardpipe run: %s\n", err.msg);
            rc = 1;
        }
        /* the streamed text (or results on stdout) lost to a full disk */
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "shardpipe run: stdout: cannot write: %s; the output is incomplete\n", strerror(errno));
            rc = 1;
        }
        sp_sched_free(&sched);
        sp_tokenizer_free(tok);
    }
    if (rt.stage >= 0) sp_stage_close(&rt.st);
    sp_trace_free(&rt.trace);
    free(stats);
    free(counts);
    free(displs);
    free(events);
    for (int i = 0; i < 2; i++) {
        free(rt.rbuf[i]);
        free(rt.sbuf[i]);
    }
    int code = rc ? 1 : 0;
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    sp_comm_shutdown(&comm, code);
}
