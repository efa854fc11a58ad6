/* emit.c - from a solution of the search to a plan file: the plan itself,
 * the comments that explain it, and the simple splits it is compared with. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shardpipe/atomicfile.h"
#include "shardpipe/hostcheck.h"
#include "shardpipe/planner.h"
#include "shardpipe/util.h"

void sp_planner_to_plan(const sp_solution *s, const sp_cluster *cl, const sp_cost_options *o, const char *model_path,
                        sp_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    snprintf(plan->model_path, sizeof plan->model_path, "%s", model_path);
    plan->context = o->context;
    plan->sequences = o->sequences;
    plan->micro_batches = s->micro_batches;
    plan->prefill_chunk = o->prefill_chunk;
    plan->wire = o->wire;
    plan->predicted_tok_s = s->tok_s;
    plan->n_stages = s->n_stages;
    for (int i = 0; i < s->n_stages; i++) {
        const sp_board *b = &cl->boards[s->board[i]];
        sp_stage_plan *st = &plan->stages[i];
        st->rank = i;
        snprintf(st->host, sizeof st->host, "%s", b->host);
        st->first = s->first[i];
        st->last = s->last[i];
        st->threads = b->threads;
        st->memory_budget = b->memory;
        st->predicted_ms = s->stage_s[i] * 1e3;
    }
}

void sp_planner_hosts_path(const char *plan_path, char *out, size_t size)
{
    size_t n = strlen(plan_path);
    const char *dot = strrchr(plan_path, '.'), *slash = strrchr(plan_path, '/');
    if (dot && (!slash || dot > slash) && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")))
        n = (size_t)(dot - plan_path);
    snprintf(out, size, "%.*s.hosts", (int)n, plan_path);
}

int sp_planner_write_hosts(const sp_plan *plan, const char *path, sp_error *err)
{
    int n_ranks = 0;
    for (int i = 0; i < plan->n_stages; i++)
        if (plan->stages[i].rank + 1 > n_ranks) n_ranks = plan->stages[i].rank + 1;
    sp_atomic_file a;
    if (sp_atomic_open(&a, path, "the host file", err)) return -1;
    bool ok = true;
    for (int r = 0; r < n_ranks; r++) {
        int s = sp_plan_stage_of_rank(plan, r);
        /* a coordinator-only rank 0 runs beside stage 0 */
        const char *host = plan->stages[s >= 0 ? s : 0].host;
        ok &= fprintf(a.f, "%s:1\n", host) > 0;
    }
    return sp_atomic_commit(&a, ok, err);
}

/* A growing text buffer. */
typedef struct text {
    char *buf;
    size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        char *nb = sp_alloc(t->cap);
        if (t->buf) memcpy(nb, t->buf, t->len + 1);
        free(t->buf);
        t->buf = nb;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Whether two boards' `host:` name one machine: the same name, or both
 * this machine's loopback (sp_host_is_loopback). An empty host is the
 * board's name, so it is never shared. */
static bool same_host(const char *a, const char *b)
{
    return a[0] && b[0] && (!strcmp(a, b) || (sp_host_is_loopback(a) && sp_host_is_loopback(b)));
}

char *sp_planner_header(const sp_solution *s, const sp_cluster *cl, const sp_config *cfg, const char *model_name,
                        const sp_cost_options *o)
{
    text t = {0};
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    add(&t, "Written by `shardpipe plan` on %s: %s (%d layers) on cluster %s (%s).\n", date, model_name,
        cfg->n_layers, cl->name, cl->path);
    add(&t, "Objective %s: %d sequence%s in flight in %d group%s (micro_batches) of up to %d row%s; context %d; "
        "wire %s.\n", s->objective == SP_OBJ_THROUGHPUT ? "throughput" : "latency", o->sequences,
        o->sequences > 1 ? "s" : "", s->micro_batches, s->micro_batches > 1 ? "s" : "", s->rows,
        s->rows > 1 ? "s" : "", o->context, sp_wire_name(o->wire));
    add(&t, "Predicted decode: %.2f tok/s for the cluster, %.2f tok/s per sequence; each group comes round\n",
        s->tok_s, s->tok_s / o->sequences);
    add(&t, "every %.1f ms = max(one micro-batch around the ring %.1f ms, %d group%s x the bottleneck %.1f ms).\n",
        s->round_s * 1e3, s->latency * 1e3, s->micro_batches, s->micro_batches > 1 ? "s" : "", s->bottleneck * 1e3);
    if (cl->handoff > 0 && s->n_stages > 1)
        add(&t, "Every hop of the ring includes the cluster's measured hand-over time, %.1f ms.\n", cl->handoff * 1e3);
    bool slowed = false;
    for (int b = 0; b < cl->n_boards; b++) slowed |= cl->boards[b].slowdown != 1;
    if (slowed) {
        add(&t, "Compute times include the boards' measured in-run slowdowns:");
        for (int b = 0; b < cl->n_boards; b++)
            add(&t, "%s %s %.2f", b ? "," : "", cl->boards[b].name, cl->boards[b].slowdown);
        add(&t, ".\n");
    }
    bool used[SP_CLUSTER_MAX_BOARDS] = {false};
    for (int i = 0; i < s->n_stages; i++) used[s->board[i]] = true;
    int left = 0;
    for (int b = 0; b < cl->n_boards; b++) left += !used[b];
    if (left) {
        add(&t, "Left out (the plan is faster without them):");
        for (int b = 0; b < cl->n_boards; b++)
            if (!used[b]) add(&t, " %s", cl->boards[b].name);
        add(&t, ".\n");
    } else {
        add(&t, "Every board of the cluster takes part.\n");
    }
    /* stages on one machine share its memory: with more than one group
     * they stream their weights at once, which the profiles (each
     * measured alone) do not price */
    for (int i = 0; i < s->n_stages; i++) {
        const char *hi = cl->boards[s->board[i]].host;
        bool listed = false, group = false;
        for (int j = 0; j < i; j++) listed |= same_host(hi, cl->boards[s->board[j]].host);
        for (int k = i + 1; k < s->n_stages && !listed; k++) group |= same_host(hi, cl->boards[s->board[k]].host);
        if (listed || !group) continue;
        add(&t, "Stages on one host (%s): %s", hi, cl->boards[s->board[i]].name);
        for (int k = i + 1; k < s->n_stages; k++)
            if (same_host(hi, cl->boards[s->board[k]].host)) add(&t, ", %s", cl->boards[s->board[k]].name);
        add(&t, ". They share its memory, so steps that stream their\n"
                "weights at the same time slow each other; the prediction holds for boards of their own\n"
                "(benchmarks/prefill.sh measures the decode such a host's memory allows).\n");
    }
    add(&t, "Profiles:");
    for (int b = 0; b < cl->n_boards; b++) {
        const sp_profile *p = &cl->boards[b].profile;
        add(&t, "%s %s (%s %s)", b ? "," : "", cl->boards[b].name, p->measured ? "measured" : "published", p->date);
    }
    add(&t, ".\nPredictions are estimates from those profiles; `shardpipe run` prints measured against predicted.");
    /* profiles from before attention_gflops: their attention is priced
     * from the f16 matvec (cost.c), which overstates it */
    int old = 0;
    for (int i = 0; i < s->n_stages; i++) {
        const sp_board *b = &cl->boards[s->board[i]];
        const sp_thread_perf *perf = sp_profile_perf(&b->profile, b->threads);
        if (perf && perf->attention_gflops > 0) continue;
        add(&t, "%s%s", old++ ? ", " : "\nAttention is priced from the f16 matvec figures for ", b->name);
    }
    if (old)
        add(&t, "\n(profile%s without attention_gflops, measured before 2026-12-07; where compared, that\n"
                "estimate was 2.7-3.4x the kernel's cost), so long prompts and contexts are predicted slower\n"
                "than they run: `shardpipe profile` on %s measures it.",
            old > 1 ? "s" : "", old > 1 ? "those boards" : "that board");
    return t.buf;
}

char *sp_planner_stage_comment(const sp_solution *s, int i, const sp_cluster *cl, const sp_plan *plan,
                               const sp_gguf *g, const sp_config *cfg)
{
    text t = {0};
    const sp_board *b = &cl->boards[s->board[i]];
    int S = s->n_stages, n_layers = s->last[i] - s->first[i] + 1;
    add(&t, "stage %d on %s (%s, %s, %d thread%s): %s", i, b->name, b->profile.name, b->profile.cpu, b->threads,
        b->threads > 1 ? "s" : "", i == 0 ? "embedding + " : "");
    if (n_layers == 1) add(&t, "layer %d", s->first[i]);
    else add(&t, "layers %d-%d (%d)", s->first[i], s->last[i], n_layers);
    add(&t, "%s\n", i == S - 1 ? " + output head" : "");
    add(&t, "  predicted compute %.2f ms per micro-batch of %d row%s", s->stage_s[i] * 1e3, s->rows,
        s->rows > 1 ? "s" : "");
    if (i + 1 < S) add(&t, "; hidden states to %s %.2f ms", cl->boards[s->board[i + 1]].name, s->hop_s[i] * 1e3);
    else if (S > 1) add(&t, "; token ids back to %s %.2f ms", cl->boards[s->board[0]].name, s->hop_s[i] * 1e3);
    add(&t, "\n");
    sp_stage_memory m = sp_plan_stage_memory(plan, i, g, cfg);
    add(&t, "  memory %.3f GB of %.3f GB usable (%.3f GB RAM): weights %.3f, KV cache %.3f, buffers %.3f",
        m.total / 1e9, b->memory / 1e9, b->profile.ram_total / 1e9, m.weights / 1e9, m.kv_cache / 1e9,
        (m.scratch + m.wire) / 1e9);
    return t.buf;
}

int sp_planner_baseline(const sp_problem *p, sp_objective obj, bool by_memory, sp_solution *s)
{
    int S = p->n_boards < p->n_layers ? p->n_boards : p->n_layers;
    int boards[SP_PLANNER_MAX_BOARDS], firsts[SP_PLANNER_MAX_BOARDS];
    double total = 0, cum = 0;
    for (int i = 0; i < S; i++) total += by_memory ? (double)p->mem_cap[i] : 1.0;
    for (int i = 0; i < S; i++) {
        boards[i] = i;
        /* the cut before board i at its share of the cumulated weight,
         * leaving every stage at least one layer */
        int f = (int)(p->n_layers * cum / total + 0.5);
        if (i > 0 && f <= firsts[i - 1]) f = firsts[i - 1] + 1;
        if (f > p->n_layers - (S - i)) f = p->n_layers - (S - i);
        firsts[i] = i == 0 ? 0 : f;
        cum += by_memory ? (double)p->mem_cap[i] : 1.0;
    }
    return sp_evaluate_batched(p, obj, S, boards, firsts, s);
}

void sp_planner_prefill_to_plan(const sp_prefill *pf, sp_plan *plan)
{
    plan->prefill_chunk = pf->batch_rows;
    plan->n_prefill = pf->n_steps;
    for (int i = 0; i < pf->n_steps; i++) {
        plan->prefill_from[i] = pf->from[i];
        plan->prefill_rows[i] = pf->rows[i];
    }
}

char *sp_planner_prefill_note(char *header, const sp_prefill *pf, const sp_plan *plan, bool chosen)
{
    text t = {0};
    add(&t, "%s\n", header);
    free(header);
    int rows = chosen ? sp_prefill_rows_for(pf, pf->ref_tokens) : plan->prefill_chunk;
    double best = INFINITY;
    int best_rows = 0;
    for (int i = 0; i < pf->n_eval; i++)
        if (pf->eval[i].rows == rows) best = pf->eval[i].total_s, best_rows = rows;
    if (chosen) {
        add(&t, "Prompts: a prompt alone goes in chunks of");
        size_t line = t.len;
        for (int i = 0; i < pf->n_steps; i++) {
            if (t.len - line > 90) add(&t, "\n"), line = t.len;
            if (i == 0) add(&t, " %d rows from %d token%s", pf->rows[i], pf->from[i], pf->from[i] > 1 ? "s" : "");
            else add(&t, ", %d from %d", pf->rows[i], pf->from[i]);
        }
        add(&t, " (prefill_chunks):\nsmaller chunks fill the pipeline sooner, larger ones run the matmul tiles "
                "faster; a %d-token prompt's\nfirst token is predicted after %.3f s.\n",
            pf->ref_tokens, pf->ref_s);
        add(&t, "Prompts arriving together share micro-batches of up to %d rows (prefill_chunk). `--explain` "
                "shows the trade-off.", plan->prefill_chunk);
    } else if (best_rows) {
        add(&t, "Prompts: chunks of %d rows (--prefill-chunk); a %d-token prompt's first token is predicted after "
                "%.3f s.", rows, pf->ref_tokens, best);
    } else {
        add(&t, "Prompts: chunks of %d rows (--prefill-chunk).", rows);
    }
    return t.buf;
}
