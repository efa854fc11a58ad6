/* search.c - the exact optimum over partitions: which boards take part, in
 * which order, and which contiguous layers each runs (see planner.h for the
 * two objectives).
 *
 * Dynamic programme. f[set][last][j] is the best value over partitions of
 * layers [0, j) onto exactly the boards in `set`, in some order ending with
 * board `last`. The value of a partial pipeline is the max (throughput) or
 * the sum (latency) of its stage times and hop times, and both operators
 * are monotone, so the best extension of a state never needs a worse state:
 *
 *   f[set + b][b][k] = min over j < k, last in set of
 *                      op(op(f[set][last][j], hop(last, b)), stage(b, j, k))
 *
 * The inner minimum over `last` does not depend on k, so it is taken once
 * per (set, b, j) into g[j]; each (set, b) then costs O(L^2) with prefix
 * sums making stage(b, j, k) O(1). For 8 boards and 128 layers that is
 * 2^8 x 8 / 2 x 128^2 / 2 ~ 8M updates per pass.
 *
 * Throughput: the rows of a micro-batch, and so every cost, depend on the
 * final stage count S (r = ceil(K / min(K, S))), so one pass is run per
 * distinct r and only the sets of the matching size are read from it.
 * Latency: the token ids go back from the last board to the first, so one
 * pass is run per first board, which then is known when a pipeline ends. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/planner.h"
#include "shardpipe/util.h"

int sp_planner_micro_batches(sp_objective obj, int n_stages, int sequences)
{
    if (obj == SP_OBJ_LATENCY) return 1;
    return sequences < n_stages ? sequences : n_stages;
}

int sp_planner_rows(sp_objective obj, int n_stages, int sequences)
{
    int m = sp_planner_micro_batches(obj, n_stages, sequences);
    return (sequences + m - 1) / m;
}

void sp_problem_init(sp_problem *p, int n_layers, int n_boards, int sequences)
{
    memset(p, 0, sizeof *p);
    p->n_layers = n_layers;
    p->n_boards = n_boards;
    p->sequences = sequences;
    p->layer_mem = sp_calloc((size_t)n_layers, sizeof *p->layer_mem);
    p->mem_cap = sp_calloc((size_t)n_boards, sizeof *p->mem_cap);
    p->names = sp_calloc((size_t)n_boards, sizeof *p->names);
    for (int b = 0; b < n_boards; b++) snprintf(p->names[b], sizeof p->names[b], "board %d", b);
    /* every row count either objective can use (latency's r = K is S = 1's) */
    for (int s = 1; s <= n_boards; s++) {
        int r = sp_planner_rows(SP_OBJ_THROUGHPUT, s, sequences);
        if (sp_problem_case(p, r)) continue;
        sp_cost_case *c = &p->cases[p->n_cases++];
        c->rows = r;
        c->layer_s = sp_calloc((size_t)n_boards * n_layers, sizeof(double));
        c->first_s = sp_calloc((size_t)n_boards, sizeof(double));
        c->head_s = sp_calloc((size_t)n_boards, sizeof(double));
        c->hop_s = sp_calloc((size_t)n_boards * n_boards, sizeof(double));
        c->ret_s = sp_calloc((size_t)n_boards * n_boards, sizeof(double));
    }
}

void sp_problem_free(sp_problem *p)
{
    for (int i = 0; i < p->n_cases; i++) {
        sp_cost_case *c = &p->cases[i];
        free(c->layer_s);
        free(c->first_s);
        free(c->head_s);
        free(c->hop_s);
        free(c->ret_s);
    }
    free(p->layer_mem);
    free(p->mem_cap);
    free(p->names);
    memset(p, 0, sizeof *p);
}

const sp_cost_case *sp_problem_case(const sp_problem *p, int rows)
{
    for (int i = 0; i < p->n_cases; i++)
        if (p->cases[i].rows == rows) return &p->cases[i];
    return NULL;
}

/* ---- evaluating one partition ---- */

int sp_evaluate(const sp_problem *p, sp_objective obj, int n_stages, const int *boards, const int *firsts,
                sp_solution *s)
{
    memset(s, 0, sizeof *s);
    int S = n_stages, K = p->sequences, n = p->n_boards;
    s->objective = obj;
    s->n_stages = S;
    s->micro_batches = sp_planner_micro_batches(obj, S, K);
    s->rows = sp_planner_rows(obj, S, K);
    const sp_cost_case *c = sp_problem_case(p, s->rows);
    if (!c || S < 1 || S > n || firsts[0] != 0) return -1;
    s->feasible = true;
    for (int i = 0; i < S; i++) {
        int b = boards[i];
        s->board[i] = b;
        s->first[i] = firsts[i];
        s->last[i] = i + 1 < S ? firsts[i + 1] - 1 : p->n_layers - 1;
        if (s->last[i] < s->first[i]) return s->feasible = false, -1;
        double t = 0;
        uint64_t m = c->fixed_mem[i == 0][i == S - 1];
        for (int l = s->first[i]; l <= s->last[i]; l++) {
            t += c->layer_s[b * p->n_layers + l];
            m += p->layer_mem[l];
        }
        if (i == 0) t += c->first_s[b];
        if (i == S - 1) t += c->head_s[b];
        s->stage_s[i] = t;
        s->mem[i] = m;
        if (m > p->mem_cap[b]) s->feasible = false;
        if (i + 1 < S) s->hop_s[i] = c->hop_s[b * n + boards[i + 1]];
        else if (S > 1) s->hop_s[i] = c->ret_s[b * n + boards[0]];
    }
    double B = 0, L = 0;
    for (int i = 0; i < S; i++) {
        if (s->stage_s[i] > B) B = s->stage_s[i];
        if (i + 1 < S && s->hop_s[i] > B) B = s->hop_s[i];
        L += s->stage_s[i] + s->hop_s[i];
    }
    s->bottleneck = B;
    s->latency = L;
    s->round_s = s->micro_batches * B > L ? s->micro_batches * B : L;
    s->tok_s = s->round_s > 0 ? K / s->round_s : 0;
    s->value = obj == SP_OBJ_THROUGHPUT ? s->micro_batches * B : L;
    return s->feasible ? 0 : -1;
}

/* ---- the dynamic programme ---- */

typedef struct dp {
    const sp_problem *p;
    const sp_cost_case *c;
    int n, L;
    bool sum;             /* latency: +, throughput: max */
    double *f;            /* [(set * n + last) * (L + 1) + j] */
    signed char *par_last; /* board of the previous stage, -1 for the first stage */
    short *par_j;          /* first layer of the stage that ends the state */
    double *prefix;       /* [b * (L + 1) + j]: seconds of layers [0, j) on board b */
    uint64_t *mprefix;    /* [j]: bytes of layers [0, j) */
    double *g;            /* [L + 1] */
    int *g_last;          /* [L + 1] */
} dp;

static size_t idx(const dp *d, int set, int last, int j)
{
    return ((size_t)set * d->n + last) * (d->L + 1) + j;
}

static double op(const dp *d, double a, double b) { return d->sum ? a + b : (a > b ? a : b); }

static bool fits(const dp *d, int b, int i, int k)
{
    uint64_t m = d->mprefix[k] - d->mprefix[i] + d->c->fixed_mem[i == 0][k == d->L];
    return m <= d->p->mem_cap[b];
}

static double stage(const dp *d, int b, int i, int k)
{
    const double *P = d->prefix + (size_t)b * (d->L + 1);
    double t = P[k] - P[i];
    if (i == 0) t += d->c->first_s[b];
    if (k == d->L) t += d->c->head_s[b];
    return t;
}

/* Relax every extension of a state with value v by board b from layer j:
 * stages [j, k) for every k that fits in b's memory. */
static void extend(dp *d, int nset, int b, int j, double v, int from)
{
    int L = d->L;
    for (int k = j + 1; k <= L; k++) {
        if (!fits(d, b, j, k)) {
            /* memory grows with k below L; only the last stage (head) can differ */
            if (k < L) k = L - 1;
            continue;
        }
        double w = op(d, v, stage(d, b, j, k));
        size_t at = idx(d, nset, b, k);
        if (w < d->f[at]) {
            d->f[at] = w;
            d->par_last[at] = (signed char)from;
            d->par_j[at] = (short)j;
        }
    }
}

/* One pass over every set; only_first >= 0 restricts the first stage. */
static void dp_run(dp *d, int only_first)
{
    int n = d->n, L = d->L, full = 1 << n;
    size_t states = (size_t)full * n * (L + 1);
    for (size_t i = 0; i < states; i++) d->f[i] = INFINITY;
    for (int b = 0; b < n; b++)
        if (only_first < 0 || b == only_first) extend(d, 1 << b, b, 0, d->sum ? 0 : -INFINITY, -1);
    for (int set = 1; set < full; set++) {
        if (only_first >= 0 && !(set & (1 << only_first))) continue;
        for (int b = 0; b < n; b++) {
            if (set & (1 << b)) continue;
            /* g[j]: best way to hand layers [0, j) over to board b */
            bool any = false;
            for (int j = 1; j < L; j++) {
                d->g[j] = INFINITY;
                d->g_last[j] = -1;
                for (int last = 0; last < n; last++) {
                    if (!(set & (1 << last))) continue;
                    double v = d->f[idx(d, set, last, j)];
                    if (v == INFINITY) continue;
                    double w = op(d, v, d->c->hop_s[last * n + b]);
                    if (w < d->g[j]) d->g[j] = w, d->g_last[j] = last;
                }
                any |= d->g[j] < INFINITY;
            }
            if (!any) continue;
            for (int j = 1; j < L; j++)
                if (d->g[j] < INFINITY) extend(d, set | (1 << b), b, j, d->g[j], d->g_last[j]);
        }
    }
}

/* Walk the parents back from the final state into boards and first layers. */
static int reconstruct(const dp *d, int set, int last, int *boards, int *firsts)
{
    int tmp_b[SP_PLANNER_MAX_BOARDS], tmp_f[SP_PLANNER_MAX_BOARDS], s = 0, j = d->L;
    while (last >= 0) {
        size_t at = idx(d, set, last, j);
        tmp_b[s] = last;
        tmp_f[s] = d->par_j[at];
        s++;
        int prev = d->par_last[at];
        set &= ~(1 << last);
        j = d->par_j[at];
        last = prev;
    }
    for (int i = 0; i < s; i++) {
        boards[i] = tmp_b[s - 1 - i];
        firsts[i] = tmp_f[s - 1 - i];
    }
    return s;
}

static void dp_prepare(dp *d, const sp_problem *p, const sp_cost_case *c)
{
    d->p = p;
    d->c = c;
    int n = d->n, L = d->L;
    for (int b = 0; b < n; b++) {
        double *P = d->prefix + (size_t)b * (L + 1);
        P[0] = 0;
        for (int l = 0; l < L; l++) P[l + 1] = P[l] + c->layer_s[b * L + l];
    }
}

/* "1.23 GB", or "45.6 MB" below a GB. */
static const char *gb(uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= 1000000000ull) snprintf(buf, size, "%.2f GB", bytes / 1e9);
    else snprintf(buf, size, "%.1f MB", bytes / 1e6);
    return buf;
}

static void no_fit(const sp_problem *p, sp_error *err)
{
    const sp_cost_case *c = sp_problem_case(p, sp_planner_rows(SP_OBJ_LATENCY, 1, p->sequences));
    uint64_t layers = 0, have = 0, biggest = 0;
    char a[32], b2[32], c2[32], d[32], e[32];
    for (int l = 0; l < p->n_layers; l++) layers += p->layer_mem[l];
    char boards[512] = "";
    for (int b = 0; b < p->n_boards; b++) {
        have += p->mem_cap[b];
        if (p->mem_cap[b] > biggest) biggest = p->mem_cap[b];
        size_t len = strlen(boards);
        snprintf(boards + len, sizeof boards - len, "%s%s %s", b ? ", " : "", p->names[b], gb(p->mem_cap[b], a, sizeof a));
    }
    uint64_t need = layers + c->fixed_mem[1][1];
    uint64_t first = p->layer_mem[0] + c->fixed_mem[1][0];
    uint64_t last = p->layer_mem[p->n_layers - 1] + c->fixed_mem[0][1];
    if (need > have)
        sp_errorf(err, "the model does not fit: it needs at least %s (layers with their KV cache %s, embedding, "
                       "head and buffers %s) but the %d boards can hold %s together (%s), %s short with every "
                       "board full; add boards, lower the context or the sequences, or use a smaller quantization",
                  gb(need, a, sizeof a), gb(layers, b2, sizeof b2), gb(c->fixed_mem[1][1], c2, sizeof c2),
                  p->n_boards, gb(have, d, sizeof d), boards, gb(need - have, e, sizeof e));
    else if (first > biggest || last > biggest)
        sp_errorf(err, "the model does not fit: the %s stage needs at least %s (%s, one layer and buffers) but the "
                       "largest board holds %s (%s); use a board with more memory or a smaller quantization",
                  first > biggest ? "first" : "last", gb(first > biggest ? first : last, a, sizeof a),
                  first > biggest ? "embedding" : "output head", gb(biggest, b2, sizeof b2), boards);
    else
        sp_errorf(err, "the model does not fit: %s would be enough in total (the boards hold %s: %s) but whole "
                       "layers cannot be packed onto them, as each stage also needs its own buffers; lower the "
                       "context or the sequences, or add a board",
                  gb(need, a, sizeof a), gb(have, b2, sizeof b2), boards);
}

int sp_search(const sp_problem *p, sp_objective obj, sp_solution *best, sp_error *err)
{
    memset(best, 0, sizeof *best);
    int n = p->n_boards, L = p->n_layers, K = p->sequences;
    if (n < 1 || n > SP_PLANNER_MAX_BOARDS || L < 1 || L > 32767)
        return sp_errorf(err, "the planner handles 1 to %d boards and 1 to 32767 layers, got %d boards and %d "
                              "layers", SP_PLANNER_MAX_BOARDS, n, L);
    dp d = {.n = n, .L = L, .sum = obj == SP_OBJ_LATENCY};
    size_t states = ((size_t)1 << n) * n * (L + 1);
    d.f = sp_alloc(states * sizeof *d.f);
    d.par_last = sp_alloc(states);
    d.par_j = sp_alloc(states * sizeof *d.par_j);
    d.prefix = sp_alloc((size_t)n * (L + 1) * sizeof *d.prefix);
    d.mprefix = sp_alloc((size_t)(L + 1) * sizeof *d.mprefix);
    d.g = sp_alloc((size_t)(L + 1) * sizeof *d.g);
    d.g_last = sp_alloc((size_t)(L + 1) * sizeof *d.g_last);
    d.mprefix[0] = 0;
    for (int l = 0; l < L; l++) d.mprefix[l + 1] = d.mprefix[l] + p->layer_mem[l];

    double best_value = INFINITY;
    int boards[SP_PLANNER_MAX_BOARDS], firsts[SP_PLANNER_MAX_BOARDS], n_best = 0;
    int best_boards[SP_PLANNER_MAX_BOARDS], best_firsts[SP_PLANNER_MAX_BOARDS];
    if (obj == SP_OBJ_THROUGHPUT) {
        for (int ci = 0; ci < p->n_cases; ci++) {
            dp_prepare(&d, p, &p->cases[ci]);
            dp_run(&d, -1);
            for (int set = 1; set < (1 << n); set++) {
                int S = __builtin_popcount((unsigned)set);
                if (sp_planner_rows(obj, S, K) != d.c->rows) continue;
                int M = sp_planner_micro_batches(obj, S, K);
                for (int last = 0; last < n; last++) {
                    double v = d.f[idx(&d, set, last, L)];
                    if (!(set & (1 << last)) || v == INFINITY || M * v >= best_value) continue;
                    best_value = M * v;
                    n_best = reconstruct(&d, set, last, boards, firsts);
                    memcpy(best_boards, boards, sizeof boards);
                    memcpy(best_firsts, firsts, sizeof firsts);
                }
            }
        }
    } else {
        dp_prepare(&d, p, sp_problem_case(p, sp_planner_rows(obj, 1, K)));
        for (int f0 = 0; f0 < n; f0++) {
            dp_run(&d, f0);
            for (int set = 1; set < (1 << n); set++) {
                if (!(set & (1 << f0))) continue;
                for (int last = 0; last < n; last++) {
                    double v = d.f[idx(&d, set, last, L)];
                    if (!(set & (1 << last)) || v == INFINITY) continue;
                    if (set != (1 << f0)) v += d.c->ret_s[last * n + f0];
                    if (v >= best_value) continue;
                    best_value = v;
                    n_best = reconstruct(&d, set, last, boards, firsts);
                    memcpy(best_boards, boards, sizeof boards);
                    memcpy(best_firsts, firsts, sizeof firsts);
                }
            }
        }
    }
    free(d.f);
    free(d.par_last);
    free(d.par_j);
    free(d.prefix);
    free(d.mprefix);
    free(d.g);
    free(d.g_last);
    if (best_value == INFINITY) {
        no_fit(p, err);
        return -1;
    }
    sp_evaluate(p, obj, n_best, best_boards, best_firsts, best);
    return 0;
}

int sp_search_best(const sp_problem *p, sp_objective obj, sp_solution *best, sp_error *err)
{
    if (sp_search(p, obj, best, err)) return -1;
    if (obj != SP_OBJ_THROUGHPUT) return 0;
    sp_solution lat, rebatched;
    if (sp_search(p, SP_OBJ_LATENCY, &lat, err)) return 0;
    if (sp_evaluate(p, SP_OBJ_THROUGHPUT, lat.n_stages, lat.board, lat.first, &rebatched) == 0 &&
        rebatched.tok_s > best->tok_s)
        *best = rebatched;
    return 0;
}
