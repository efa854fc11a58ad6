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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/cluster.h"
#include "shardpipe/shardhash.h"
#include "shardpipe/tokenizer.h"
#include "shardpipe/util.h"
#include "supervise.h"

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
int sp_prepare_plan(const char *plan_path, const char *model_path, int sequences, int micro_batches, sp_comm *c,
                    sp_plan *plan, sp_tokenizer **tok, int *eos_out, int *n_vocab, sp_error *err)
{
    if (sp_plan_load(plan_path, plan, err)) return -1;
    if (model_path) snprintf(plan->model_path, sizeof plan->model_path, "%s", model_path);
    if (sequences > 0) plan->sequences = sequences;
    if (micro_batches > 0) plan->micro_batches = micro_batches;
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
    if (eos_out) *eos_out = eos;
    if (n_vocab) *n_vocab = cfg.n_vocab;
    return 0;
}

static int prepare(const sp_run_options *o, sp_comm *c, sp_plan *plan, sp_tokenizer **tok, sp_sched *sched,
                   sp_error *err)
{
    int eos, n_vocab;
    if (sp_prepare_plan(o->plan_path, o->model_path, o->sequences, o->micro_batches, c, plan, tok, &eos, &n_vocab,
                        err))
        return -1;
    int rc = sp_sched_init(sched, *tok, o->prompt, o->prompts_file, o->n_tokens, plan->context, plan->sequences,
                           plan->micro_batches, sp_plan_max_rows(plan), plan->prefill_chunk, plan->n_stages + 1,
                           o->ignore_eos, &o->sampling, err);
    sched->plan = plan;
    if (!*tok) sched->eos = eos;
    for (int i = 0; !rc && i < sched->n_reqs; i++)
        for (int k = 0; !rc && k < sched->reqs[i].n_prompt; k++)
            if (sched->reqs[i].prompt[k] >= n_vocab)
                rc = sp_errorf(err, "prompt %d: token %d is %d, outside the vocabulary [0, %d) of %s", i + 1, k,
                               sched->reqs[i].prompt[k], n_vocab, plan->model_path);
    return rc;
}

/* ---- results as they finish, and Ctrl-C ---- */

static bool is_regular_or_new(const char *path)
{
    struct stat st;
    return lstat(path, &st) != 0 || S_ISREG(st.st_mode);
}

/* PATH.partial, never through a symlink planted there */
static FILE *open_partial(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    return fd < 0 ? NULL : fdopen(fd, "w");
}

/* With -o FILE each result is appended to FILE.partial (flushed) the moment
 * its sequence finishes, so a run that dies keeps what was done; at the end
 * FILE is written whole in input order and FILE.partial removed. On stdout
 * a result is printed as soon as every earlier one is done (input order). */
typedef struct results_out {
    const sp_run_options *o;
    FILE *partial;
    char partial_path[4200];
    int next_print;
    double t_start;
    bool to_stdout;     /* results on stdout, in order as they finish */
} results_out;

static void on_result(void *arg, sp_sched *s, sp_request *r, const char *text, int len, bool done)
{
    results_out *ro = arg;
    if (!done || r->finish == SP_FINISH_CANCELLED) return;
    if (ro->partial) {
        sp_sched_result_line(ro->partial, r, ro->t_start);
        fflush(ro->partial);
    } else if (ro->to_stdout) {
        while (ro->next_print < s->n_reqs && s->reqs[ro->next_print].done) {
            sp_sched_result_line(stdout, &s->reqs[ro->next_print++], ro->t_start);
            fflush(stdout);
        }
    }
}

static bool run_keep_going(void *arg, sp_sched *s, int in_flight)
{
    (void)arg;
    (void)in_flight;
    return !sp_sched_finished(s) && !sp_comm_interrupted();
}

static void run_idle(void *arg, sp_sched *s, int in_flight, int *spins)
{
    (void)arg;
    (void)s;
    (void)in_flight;
    sp_comm_backoff(spins);
}

/* The finished requests only (a shallow view for the summary after Ctrl-C). */
static sp_sched finished_view(const sp_sched *s)
{
    sp_sched v = *s;
    v.reqs = sp_calloc((size_t)(s->n_reqs ? s->n_reqs : 1), sizeof *v.reqs);
    v.n_reqs = 0;
    for (int i = 0; i < s->n_reqs; i++)
        if (s->reqs[i].done) v.reqs[v.n_reqs++] = s->reqs[i];
    v.n_done = v.n_reqs;
    return v;
}


int sp_cluster_run(int *argc, char ***argv, const sp_run_options *o)
{
    sp_comm comm;
    sp_comm_init(&comm, argc, argv, o->timeout_s);
    sp_comm_catch_signals();
    sp_error err = {{0}};
    sp_plan plan;
    memset(&plan, 0, sizeof plan);
    sp_tokenizer *tok = NULL;
    sp_sched sched;
    memset(&sched, 0, sizeof sched);

    /* 1. validate everything on rank 0 */
    int rc = 0;
    if (comm.rank == 0) rc = prepare(o, &comm, &plan, &tok, &sched, &err);
    sp_agree(&comm, "run", rc, &err);
    sp_runtime_share_plan(&comm, &plan, o->model_path, o->threads, o->shard_cache, "run");

    /* 2. every stage binds its shard; the model files must be the same */
    runtime rt;
    sp_runtime_start(&rt, &comm, &plan, o->logits_out, "run");

    /* 3. the pipeline */
    MPI_Barrier(MPI_COMM_WORLD);
    double t_start = sp_now();
    int interrupted = 0;
    const char *partial = NULL;
    results_out ro = {o, NULL, "", 0, t_start,
                      o->prompts_file && (!o->output_path || !strcmp(o->output_path, "-"))};
    sp_trace_init(&rt.trace, o->trace_path != NULL, comm.rank, rt.stage, t_start);
    if (comm.rank == 0) {
        if (o->prompt && !o->quiet) {
            sched.stream = stdout;
            fputs(o->prompt, stdout);
            fflush(stdout);
        }
        if (o->prompts_file && o->output_path && strcmp(o->output_path, "-") && is_regular_or_new(o->output_path)) {
            snprintf(ro.partial_path, sizeof ro.partial_path, "%s.partial", o->output_path);
            ro.partial = open_partial(ro.partial_path);
        }
        sched.on_event = on_result;
        sched.event_arg = &ro;
        sp_coord_hooks hooks = {run_keep_going, run_idle, NULL};
        sp_coordinator_loop(&rt, &sched, o->prompts_file && !o->quiet, &hooks);
        if (sched.stream) fputc('\n', stdout);
        if (ro.partial) fclose(ro.partial);
        else if (ro.to_stdout) /* what an unfinished one held back */
            for (int i = ro.next_print; i < sched.n_reqs; i++)
                if (sched.reqs[i].done) sp_sched_result_line(stdout, &sched.reqs[i], t_start);
        if (!sp_sched_finished(&sched)) {
            interrupted = sched.n_reqs - sched.n_done;
            int cut = 0;
            for (int i = 0; i < sched.n_reqs; i++) cut += !sched.reqs[i].done && sched.reqs[i].n_fed > 0;
            fprintf(stderr, "\nshardpipe run: interrupted: %d of %d sequences finished and are kept, %d lost "
                            "(%d cut short, %d not started)\n",
                    sched.n_done, sched.n_reqs, interrupted, cut, interrupted - cut);
        }
        partial = ro.partial_path[0] ? ro.partial_path : NULL;
    } else if (rt.stage >= 0) {
        sp_stage_loop(&rt);
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
        sp_sched done = finished_view(&sched);
        if (done.n_reqs &&
            summary(o->quiet ? NULL : stderr, &comm, &plan, &done, stats, t_start, t_end, o->summary_json, &err)) {
            fprintf(stderr, "shardpipe run: %s\n", err.msg);
            rc = 1;
        }
        free(done.reqs);
        if (o->prompts_file && sp_sched_write_jsonl(&sched, o->output_path, t_start, &err)) {
            fprintf(stderr, "shardpipe run: %s\n", err.msg);
            rc = 1;
        } else if (partial) {
            remove(partial); /* the whole file is written */
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
    sp_runtime_free(&rt);
    free(stats);
    free(counts);
    free(displs);
    free(events);
    /* 130: interrupted (the shell's code for SIGINT), finished work kept */
    int code = rc ? 1 : interrupted ? 130 : 0;
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    sp_comm_shutdown(&comm, code);
}
