/* prefill.c - how many prompt rows go into each micro-batch: the prompt
 * chunks of a plan, chosen from the same cost model as the stages
 * (planner.h: the prefill part).
 *
 * A prompt of N tokens goes through the stages in n = N / c chunks of c
 * rows; stage s works on chunk k while stage s+1 works on chunk k-1. With
 * t_s(c) the compute of stage s for c rows (its matrices at c rows, the
 * attention of c rows at the prompt's average position N / 2, the embedding
 * on the first stage) and h_s(c) the hop after it:
 *
 *   R(c) = sum_s t_s(c) + h_s(c)             one chunk through the ring
 *   B(c) = max_s max(t_s(c), link busy)      the busiest stage or link
 *   p(c) = max(B(c), R(c) / D)               a chunk leaves every p(c): the
 *          bottleneck, or the ring when it holds fewer than it takes to fill
 *          it (the runtime keeps D = stages + 1 chunks of a group in flight)
 *   T(c) = R(c) + (n - 1) p(c) + head        the first token's wait
 *
 * The trade-off: the first chunk crosses every stage before the last stage
 * has work, and the last one leaves the first stage idle, so R(c) - p(c) is
 * time the pipeline is not full - smaller chunks fill it sooner. But t_s(c)
 * / c falls as c grows: the matrices' tiles run faster with more rows (the
 * profile's 8-, 32- and 128-row figures; below a few rows streaming the
 * weights dominates). T(c) is evaluated for every candidate c and every
 * prompt length up to the context, which gives the plan's table
 * `prefill_chunks` (from N tokens on: chunks of c rows). Several prompts at
 * once keep the stages busy with each other's chunks, so for the plan's K
 * sequences arriving together (in G groups, up to D chunks each in flight)
 * the largest micro-batch `prefill_chunk` is chosen for throughput,
 *   T_K(c) = R(c) + (K N / c - 1) max(B(c), R(c) / (D G)),
 * at a reference prompt length. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/planner.h"
#include "shardpipe/util.h"

static const int candidates[] = {4, 8, 12, 16, 24, 32, 48, 64, 96, 128};
#define N_CAND ((int)(sizeof candidates / sizeof candidates[0]))

/* Per stage of a solution: its matrices at every row count 1..cap. */
typedef struct model {
    int S, depth, cap;
    double *mat;      /* [s * (cap + 1) + r]: matrices (and embedding) of r rows, slowdown included */
    double att[SP_PLANNER_MAX_BOARDS];   /* attention of one row per position */
    double hop_fixed[SP_PLANNER_MAX_BOARDS], hop_per_row[SP_PLANNER_MAX_BOARDS];
    double busy_per_row[SP_PLANNER_MAX_BOARDS], busy_fixed[SP_PLANNER_MAX_BOARDS];
    double head;      /* the last stage's head, one row */
} model;

static void model_build(model *m, const sp_solution *s, const sp_cluster *cl, const sp_gguf *g, const sp_config *cfg,
                        const sp_cost_options *o, int cap)
{
    memset(m, 0, sizeof *m);
    m->S = s->n_stages;
    m->depth = s->n_stages + 1;
    m->cap = cap;
    m->mat = sp_calloc((size_t)m->S * (cap + 1), sizeof *m->mat);
    for (int i = 0; i < m->S; i++) {
        const sp_board *bd = &cl->boards[s->board[i]];
        const sp_thread_perf *perf = sp_profile_perf(&bd->profile, bd->threads);
        double k = bd->slowdown > 0 ? bd->slowdown : 1;
        for (int r = 1; r <= cap; r++) {
            double t = 0;
            for (int l = s->first[i]; l <= s->last[i]; l++) t += sp_cost_layer_matrices_s(perf, g, l, r);
            if (i == 0) t += r * sp_cost_embed_row_s(perf, g);
            m->mat[i * (cap + 1) + r] = k * t;
        }
        m->att[i] = k * (s->last[i] - s->first[i] + 1) * sp_cost_attention_s(perf, cfg, 1.0);
        if (i == m->S - 1) m->head = k * sp_cost_head_s(perf, g, 1);
        if (m->S == 1) continue;
        int a = s->board[i], b = s->board[(i + 1) % m->S];
        const sp_link *lk = &cl->links[a][b];
        bool hidden = i + 1 < m->S; /* the last hop carries token ids only */
        double one = sp_cost_wire_bytes(o->wire, 1, cfg->dim, hidden), zero = sp_cost_wire_bytes(o->wire, 0, cfg->dim, hidden);
        m->busy_fixed[i] = zero / lk->bandwidth;
        m->busy_per_row[i] = hidden ? (one - zero) / lk->bandwidth : 0;
        m->hop_fixed[i] = cl->handoff + lk->latency + m->busy_fixed[i];
        m->hop_per_row[i] = m->busy_per_row[i];
    }
}

/* One chunk of c rows of an N-token prompt: its round trip and bottleneck. */
static void chunk_times(const model *m, int c, int N, double *R, double *B)
{
    *R = *B = 0;
    for (int i = 0; i < m->S; i++) {
        double t = m->mat[i * (m->cap + 1) + c] + c * (N / 2.0) * m->att[i];
        double busy = m->busy_fixed[i] + c * m->busy_per_row[i];
        *R += t + m->hop_fixed[i] + c * m->hop_per_row[i];
        *B = fmax(*B, fmax(t, busy));
    }
}

/* T(c) for K prompts of N tokens arriving together in G groups (K = G = 1:
 * one prompt alone, its first token's wait). Chunks count fractionally, so
 * that T is smooth in N and the chosen chunk grows with N. */
static double prefill_s(const model *m, int c, int N, int K, int G, double *period, double *fill)
{
    if (c > N * K) c = N * K; /* one chunk holds it all */
    double R, B;
    chunk_times(m, c, N, &R, &B);
    double p = fmax(B, R / (m->depth * G)), n = (double)N * K / c;
    if (period) *period = p;
    if (fill) *fill = R - p;
    return R + (n - 1) * p + m->head;
}

/* The candidate with the least T; ties (within 0.1%) go to the smaller. */
static int best_chunk(const model *m, int N, int K, int G, int cap)
{
    int best = candidates[0];
    double bt = INFINITY;
    for (int i = 0; i < N_CAND && candidates[i] <= cap; i++) {
        if (i > 0 && candidates[i - 1] >= N * K) break; /* larger ones are the same single chunk */
        double t = prefill_s(m, candidates[i], N, K, G, NULL, NULL);
        if (t < bt * 0.999) bt = t, best = candidates[i];
    }
    return best;
}

int sp_prefill_choose(const sp_solution *s, const sp_cluster *cl, const sp_gguf *g, const sp_config *cfg,
                      const sp_cost_options *o, sp_prefill *out)
{
    memset(out, 0, sizeof *out);
    int cap = o->prefill_cap > 0 ? o->prefill_cap : SP_PREFILL_CAP;
    if (cap < candidates[0]) cap = candidates[0];
    model m;
    model_build(&m, s, cl, g, cfg, o, cap);
    out->depth = m.depth;
    out->ref_tokens = o->prompt_tokens > 0 ? o->prompt_tokens : (o->context < 512 ? o->context : 512);
    /* one prompt alone: the chunk for every length up to the context */
    int prev = 0;
    for (int N = 1; N <= o->context; N++) {
        int c = best_chunk(&m, N, 1, 1, cap);
        if (c < prev) c = prev; /* never smaller for a longer prompt */
        if (c != prev && out->n_steps < SP_PLAN_MAX_PREFILL) {
            out->from[out->n_steps] = N;
            out->rows[out->n_steps++] = c;
        } else if (c != prev) {
            out->rows[out->n_steps - 1] = c;
        }
        prev = c;
    }
    /* the plan's sequences together: the micro-batch size for throughput */
    int biggest = out->rows[out->n_steps - 1];
    int K = o->sequences, G = s->micro_batches;
    out->batch_rows = best_chunk(&m, out->ref_tokens, K, G, cap);
    if (out->batch_rows < biggest) out->batch_rows = biggest;
    /* the figures --explain and the plan's comments print */
    out->n_eval = 0;
    for (int i = 0; i < N_CAND && candidates[i] <= cap; i++) {
        sp_prefill_eval *e = &out->eval[out->n_eval++];
        int c = candidates[i] < out->ref_tokens ? candidates[i] : out->ref_tokens;
        e->rows = candidates[i];
        e->chunks = (out->ref_tokens + c - 1) / c;
        e->total_s = prefill_s(&m, candidates[i], out->ref_tokens, 1, 1, &e->period_s, &e->fill_s);
        /* the bottleneck stage's rows per second at c rows against 128 (or the cap) */
        double best_rate = 0, rate = 0;
        for (int st = 0; st < m.S; st++) {
            double at_c = m.mat[st * (cap + 1) + c] / c, at_cap = m.mat[st * (cap + 1) + cap] / cap;
            if (at_c > rate) rate = at_c, best_rate = at_cap;
        }
        e->tile_eff = rate > 0 ? best_rate / rate : 1;
        if (candidates[i] >= out->ref_tokens) break;
    }
    for (int i = 0; i < out->n_steps; i++) {
        int N = i + 1 < out->n_steps ? out->from[i + 1] - 1 : o->context;
        out->step_s[i] = prefill_s(&m, out->rows[i], N, 1, 1, NULL, NULL);
        out->step_tokens[i] = N;
    }
    out->ref_s = prefill_s(&m, sp_prefill_rows_for(out, out->ref_tokens), out->ref_tokens, 1, 1, NULL, NULL);
    free(m.mat);
    return 0;
}

int sp_prefill_rows_for(const sp_prefill *p, int n)
{
    int rows = p->rows[0];
    for (int i = 0; i < p->n_steps && p->from[i] <= n; i++) rows = p->rows[i];
    return rows;
}

char *sp_prefill_explain(const sp_prefill *p, int sequences, int groups)
{
    size_t cap = 4096, len = 0;
    char *t = sp_alloc(cap);
#define ADD(...) len += (size_t)snprintf(t + len, cap > len ? cap - len : 0, __VA_ARGS__)
    ADD("Prompt chunks: smaller chunks fill the pipeline sooner (the first chunk crosses every stage before the "
        "last has work), larger ones run the matmul tiles faster;\n");
    ADD("for one %d-token prompt alone (up to %d chunks of a group in flight):\n", p->ref_tokens, p->depth);
    ADD("  chunk  chunks  per chunk ms  fill ms  tiles vs 128 rows  first token s\n");
    int chosen = sp_prefill_rows_for(p, p->ref_tokens);
    for (int i = 0; i < p->n_eval; i++) {
        const sp_prefill_eval *e = &p->eval[i];
        ADD("  %5d  %6d  %12.2f  %7.1f  %16.0f%%  %13.3f%s\n", e->rows, e->chunks, e->period_s * 1e3, e->fill_s * 1e3,
            100 * e->tile_eff, e->total_s, e->rows == chosen ? "  <- chosen" : "");
    }
    ADD("prefill_chunks (by the prompt's uncached tokens):");
    for (int i = 0; i < p->n_steps; i++)
        ADD("%s %d-%d tokens: %d rows (%.3f s at %d)", i ? ";" : "", p->from[i], p->step_tokens[i], p->rows[i],
            p->step_s[i], p->step_tokens[i]);
    ADD(".\nprefill_chunk %d: the most rows of a prompt micro-batch; with %d prompt%s arriving together in %d "
        "group%s their chunks share micro-batches up to it.",
        p->batch_rows, sequences, sequences > 1 ? "s" : "", groups, groups > 1 ? "s" : "");
#undef ADD
    return t;
}
