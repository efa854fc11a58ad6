/* search.c - the exact optimum over partitions: which boards take part, in
 * which order, which contiguous layers each runs and, for throughput, into
 * how many groups G the sequences are split (see planner.h for the period
 * P = max(T, G x Bn) and the two objectives).
 *
 * The core is a dynamic programme for
 *
 *   F(cap) = the least round trip T over the partitions in which no stage
 *            and no link is busy longer than `cap` per micro-batch.
 *
 * f[set][last][j] is the least partial round trip (stages and hops so far)
 * over partitions of layers [0, j) onto exactly the boards in `set`, in some
 * order that starts with a fixed board f0 and ends with board `last`:
 *
 *   f[set + b][b][k] = min over j < k, last in set of
 *                      f[set][last][j] + hop(last, b) + stage(b, j, k)
 *
 * taking only stages and links within the cap. The inner minimum over
 * `last` does not depend on k, so it is taken once per (set, b, j) into
 * g[j]; prefix sums make stage(b, j, k) O(1). The sampled tokens go back
 * from the last board to f0, so one pass is run per f0 and the return hop
 * is added when a pipeline is complete.
 *
 * Latency is F(infinity) for r = K rows. Throughput, for G groups of
 * r = ceil(K / G) rows:
 *
 *   min P = min over cap of max(F(cap), G x cap)
 *
 * and the cap only needs to range over the times a stage or link can take,
 * since the bottleneck of every partition is one of them. F does not
 * increase with the cap while G x cap increases, so a binary search finds
 * the smallest candidate c with F(c) <= G x c; the optimum is then G x c or
 * F at the candidate just below c. Of the G with the same r only the least,
 * ceil(K / r), needs a look: more groups of the same rows only lengthen
 * G x Bn. So the search runs over the distinct r = ceil(K / G), G = 1..K.
 *
 * Pruning keeps this fast without changing the result: a partial round
 * trip that cannot end below the best period found so far (with the rest
 * of the layers on their fastest boards) is dropped; a stage stops growing
 * at the cap; states whose remaining layers the unused boards cannot cover
 * within the cap are skipped; and each r is visited in order of a lower
 * bound on its period, skipped when that bound cannot beat the best. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/planner.h"
#include "shardpipe/util.h"

int sp_planner_rows(int sequences, int micro_batches) { return (sequences + micro_batches - 1) / micro_batches; }

static sp_cost_case *add_case(sp_problem *p, int rows)
{
    sp_cost_case *c = &p->cases[p->n_cases++];
    int n = p->n_boards;
    c->rows = rows;
    c->layer_s = sp_calloc((size_t)n * p->n_layers, sizeof(double));
    c->first_s = sp_calloc((size_t)n, sizeof(double));
    c->head_s = sp_calloc((size_t)n, sizeof(double));
    c->hop_s = sp_calloc((size_t)n * n, sizeof(double));
    c->ret_s = sp_calloc((size_t)n * n, sizeof(double));
    c->hop_busy_s = sp_calloc((size_t)n * n, sizeof(double));
    c->ret_busy_s = sp_calloc((size_t)n * n, sizeof(double));
    return c;
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
    /* ceil(K / G) takes fewer than 2 sqrt(K) distinct values; walking G
     * upwards they come in decreasing order, each as one run */
    int distinct = 0;
    for (int G = 1, prev = 0; G <= sequences; G++) {
        int r = sp_planner_rows(sequences, G);
        if (r != prev) distinct++, prev = r;
    }
    p->cases = sp_calloc((size_t)distinct, sizeof *p->cases);
    for (int G = 1, prev = 0; G <= sequences; G++) {
        int r = sp_planner_rows(sequences, G);
        if (r != prev) add_case(p, r), prev = r;
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
        free(c->hop_busy_s);
        free(c->ret_busy_s);
    }
    free(p->cases);
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

int sp_evaluate(const sp_problem *p, sp_objective obj, int micro_batches, int n_stages, const int *boards,
                const int *firsts, sp_solution *s)
{
    memset(s, 0, sizeof *s);
    int S = n_stages, K = p->sequences, n = p->n_boards, G = micro_batches;
    s->objective = obj;
    s->n_stages = S;
    if (G < 1 || G > K || S < 1 || S > n || firsts[0] != 0) return -1;
    s->micro_batches = G;
    s->rows = sp_planner_rows(K, G);
    const sp_cost_case *c = sp_problem_case(p, s->rows);
    if (!c) return -1;
    s->feasible = true;
    double Bn = 0, T = 0;
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
        double busy = 0;
        if (i + 1 < S) {
            s->hop_s[i] = c->hop_s[b * n + boards[i + 1]];
            busy = c->hop_busy_s[b * n + boards[i + 1]];
        } else if (S > 1) {
            s->hop_s[i] = c->ret_s[b * n + boards[0]];
            busy = c->ret_busy_s[b * n + boards[0]];
        }
        Bn = fmax(Bn, fmax(t, busy));
        T += t + s->hop_s[i];
    }
    s->bottleneck = Bn;
    s->latency = T;
    s->round_s = fmax(T, G * Bn);
    s->tok_s = s->round_s > 0 ? K / s->round_s : 0;
    s->value = obj == SP_OBJ_THROUGHPUT ? s->round_s : T;
    return s->feasible ? 0 : -1;
}

int sp_evaluate_batched(const sp_problem *p, sp_objective obj, int n_stages, const int *boards, const int *firsts,
                        sp_solution *s)
{
    if (obj == SP_OBJ_LATENCY) return sp_evaluate(p, obj, 1, n_stages, boards, firsts, s);
    int rc = -1;
    for (int ci = 0; ci < p->n_cases; ci++) {
        sp_solution t;
        int G = sp_planner_rows(p->sequences, p->cases[ci].rows); /* the least G with these rows */
        int trc = sp_evaluate(p, obj, G, n_stages, boards, firsts, &t);
        if (ci == 0 || (trc == 0 && (rc != 0 || t.round_s < s->round_s))) *s = t, rc = trc;
    }
    return rc;
}

/* ---- the dynamic programme ---- */

typedef struct dp {
    const sp_problem *p;
    const sp_cost_case *c;
    int n, L;
    double cap;           /* no stage or link may be busy longer per micro-batch */
    double cutoff;        /* round trips above it are of no interest */
    double *f;            /* [(set * n + last) * (L + 1) + j] */
    signed char *par_last; /* board of the previous stage, -1 for the first stage */
    short *par_j;          /* first layer of the stage that ends the state */
    int *stamp;           /* [set]: the pass that wrote f[set]; other passes read it as infinite */
    int pass;
    double *prefix;       /* [b * (L + 1) + j]: seconds of layers [0, j) on board b */
    uint64_t *mprefix;    /* [j]: bytes of layers [0, j) */
    double *rest;         /* [j]: layers [j, L) each on its fastest board, plus the cheapest head */
    double heaviest;      /* the slowest layer on its fastest board */
    int reach[SP_PLANNER_MAX_BOARDS]; /* most layers board b can run within the cap */
    double *g;            /* [L + 1] */
    int *g_last;          /* [L + 1] */
    /* the best partition of the last dp_solve */
    double best;
    int n_stages, boards[SP_PLANNER_MAX_BOARDS], firsts[SP_PLANNER_MAX_BOARDS];
} dp;

/* a < b by more than rounding: sums of the same times in another order
 * differ in the last bits, and such ties keep what was found first - for
 * boards alike, the cluster's order. */
static bool better(double a, double b) { return isinf(b) ? a < b : a < b - 1e-12 * fabs(b); }

static size_t idx(const dp *d, int set, int last, int j)
{
    return ((size_t)set * d->n + last) * (d->L + 1) + j;
}

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

/* f[set] of this pass, starting it (all infinite) on first use. */
static double *row(dp *d, int set)
{
    double *f = d->f + idx(d, set, 0, 0);
    if (d->stamp[set] != d->pass) {
        d->stamp[set] = d->pass;
        for (size_t i = 0; i < (size_t)d->n * (d->L + 1); i++) f[i] = INFINITY;
    }
    return f;
}

/* Relax every extension of a state with partial round trip v by board b
 * from layer j: stages [j, k) within the cap, the memory of b and the
 * cutoff. Stage time and v + stage + rest grow with k, so the first k over
 * the cap or the cutoff ends the loop. */
static void extend(dp *d, int nset, int b, int j, double v, int from)
{
    int L = d->L;
    double *f = NULL;
    for (int k = j + 1; k <= L; k++) {
        double t = stage(d, b, j, k), w = v + t;
        if (t > d->cap || w + d->rest[k] > d->cutoff) break;
        if (!fits(d, b, j, k)) {
            /* memory grows with k below L; only the last stage (head) can differ */
            if (k < L) k = L - 1;
            continue;
        }
        if (!f) f = row(d, nset);
        size_t at = (size_t)b * (L + 1) + k;
        if (better(w, f[at])) {
            f[at] = w;
            d->par_last[idx(d, nset, 0, 0) + at] = (signed char)from;
            d->par_j[idx(d, nset, 0, 0) + at] = (short)j;
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

/* One pass with the first stage on board f0. */
static void dp_pass(dp *d, int f0)
{
    int n = d->n, L = d->L, full = 1 << n, bit0 = 1 << f0;
    const sp_cost_case *c = d->c;
    d->pass++;
    extend(d, bit0, f0, 0, 0, -1);
    for (int set = bit0; set < full; set++) {
        if (!(set & bit0) || d->stamp[set] != d->pass) continue;
        const double *f = d->f + idx(d, set, 0, 0);
        /* complete pipelines: the token ids go back to f0. `last` (here
         * and in g) runs downwards so that on ties the board later in the
         * cluster comes later in the pipeline: boards alike keep its order */
        for (int last = n - 1; last >= 0; last--) {
            double v = f[(size_t)last * (L + 1) + L];
            if (v == INFINITY) continue;
            if (set != bit0) {
                if (c->ret_busy_s[last * n + f0] > d->cap) continue;
                v += c->ret_s[last * n + f0];
            }
            if (v > d->cutoff || !better(v, d->best)) continue;
            d->best = v;
            d->n_stages = reconstruct(d, set, last, d->boards, d->firsts);
        }
        /* layers [0, j) done by `set`: the other boards must be able to
         * cover [j, L) within the cap, and `set` cannot have done more
         * than its own reach */
        int own = 0, others = 0;
        for (int b = 0; b < n; b++) {
            if (set & (1 << b)) own += d->reach[b];
            else others += d->reach[b];
        }
        int jlo = L - others > 1 ? L - others : 1, jhi = own < L - 1 ? own : L - 1;
        if (jlo > jhi) continue;
        for (int b = 0; b < n; b++) {
            if (set & (1 << b)) continue;
            /* g[j]: best way to hand layers [0, j) over to board b */
            bool any = false;
            for (int j = jlo; j <= jhi; j++) {
                d->g[j] = INFINITY;
                d->g_last[j] = -1;
            }
            for (int last = n - 1; last >= 0; last--) {
                if (!(set & (1 << last)) || c->hop_busy_s[last * n + b] > d->cap) continue;
                const double *fl = f + (size_t)last * (L + 1);
                double hop = c->hop_s[last * n + b];
                for (int j = jlo; j <= jhi; j++) {
                    double w = fl[j] + hop;
                    if (better(w, d->g[j])) d->g[j] = w, d->g_last[j] = last, any = true;
                }
            }
            if (!any) continue;
            for (int j = jlo; j <= jhi; j++)
                if (d->g[j] + d->rest[j] <= d->cutoff) extend(d, set | (1 << b), b, j, d->g[j], d->g_last[j]);
        }
    }
}

/* F(cap) among round trips <= cutoff: the least round trip T, its
 * partition in d->n_stages, d->boards, d->firsts; INFINITY when none. */
static double dp_solve(dp *d, double cap, double cutoff)
{
    int L = d->L;
    d->cap = cap;
    d->cutoff = cutoff;
    d->best = INFINITY;
    /* the longest run of layers each board can take within the cap */
    for (int b = 0; b < d->n; b++) {
        const double *P = d->prefix + (size_t)b * (L + 1);
        int most = 0;
        for (int j = 0, k = 0; j < L; j++) {
            if (k < j) k = j;
            while (k < L && P[k + 1] - P[j] <= cap) k++;
            if (k - j > most) most = k - j;
        }
        d->reach[b] = most;
    }
    for (int f0 = 0; f0 < d->n; f0++) dp_pass(d, f0);
    return d->best;
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
    double head = INFINITY;
    for (int b = 0; b < n; b++) head = fmin(head, c->head_s[b]);
    d->rest[L] = 0;
    for (int l = L - 1; l >= 0; l--) {
        double fastest = INFINITY;
        for (int b = 0; b < n; b++) fastest = fmin(fastest, c->layer_s[b * L + l]);
        d->rest[l] = (l == L - 1 ? head : d->rest[l + 1]) + fastest;
        d->heaviest = l == L - 1 ? fastest : fmax(d->heaviest, fastest);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The times below `below` that a stage or a link can take, into v (when
 * not NULL); returns how many. A stage's time grows with its last layer,
 * so each (board, first layer) stops at the first one too long. */
static size_t times_below(const dp *d, double below, double *v)
{
    int n = d->n, L = d->L;
    size_t m = 0;
    for (int b = 0; b < n; b++)
        for (int j = 0; j < L; j++)
            for (int k = j + 1; k <= L; k++) {
                double t = stage(d, b, j, k);
                if (t >= below) break;
                if (v) v[m] = t;
                m++;
            }
    for (int i = 0; i < n * n; i++) {
        double busy[2] = {d->c->hop_busy_s[i], d->c->ret_busy_s[i]};
        for (int h = 0; h < 2; h++) {
            if (i / n == i % n || busy[h] >= below) continue;
            if (v) v[m] = busy[h];
            m++;
        }
    }
    return m;
}

/* The caps worth trying: those times, sorted, without repeats. */
static double *caps(const dp *d, double below, int *count)
{
    size_t m = times_below(d, below, NULL);
    double *v = sp_alloc((m ? m : 1) * sizeof *v);
    times_below(d, below, v);
    qsort(v, m, sizeof *v, cmp_double);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || v[i] != v[u - 1]) v[u++] = v[i];
    *count = (int)u;
    return v;
}

/* If the last dp_solve found a partition, evaluate it with G groups and
 * keep it when it beats *best. */
static void consider(const dp *d, sp_objective obj, int G, sp_solution *best)
{
    sp_solution s;
    if (d->best == INFINITY || sp_evaluate(d->p, obj, G, d->n_stages, d->boards, d->firsts, &s)) return;
    if (!best->feasible || better(s.value, best->value)) *best = s;
}

/* The best period with G groups of the case's rows (see the header). */
static void search_groups(dp *d, int G, sp_solution *best)
{
    double incumbent = best->feasible ? best->value : INFINITY;
    if (G == 1) { /* T >= Bn always: P = T */
        dp_solve(d, INFINITY, incumbent);
        consider(d, SP_OBJ_THROUGHPUT, G, best);
        return;
    }
    int m;
    double *cap = caps(d, incumbent / G, &m);
    /* smallest i with F(cap[i]) <= min(G cap[i], incumbent): F falls and
     * the bound rises with i, so the test flips once */
    int lo = 0, hi = m; /* the answer is in [lo, hi]; hi = m: none */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        double bound = fmin(G * cap[mid], incumbent);
        if (dp_solve(d, cap[mid], bound) <= bound) {
            hi = mid;
            consider(d, SP_OBJ_THROUGHPUT, G, best); /* its period is at most G cap[mid] */
        } else {
            lo = mid + 1;
        }
    }
    /* below it the round trip binds: the best there is F at the cap just below */
    if (lo > 0) {
        dp_solve(d, cap[lo - 1], best->feasible ? best->value : INFINITY);
        consider(d, SP_OBJ_THROUGHPUT, G, best);
    }
    free(cap);
}

/* "1.23 GB", or "45.6 MB" below a GB. */
static const char *gb(uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= 1000000000ull) snprintf(buf, size, "%.2f GB", bytes / 1e9);
    else snprintf(buf, size, "%.1f MB", bytes / 1e6);
    return buf;
}

/* Why nothing fits, with the memory figures of case c. */
static void no_fit(const sp_problem *p, const sp_cost_case *c, sp_error *err)
{
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

/* A lower bound on the period of G groups of the case's rows: the round
 * trip is at least every layer on its fastest board, and the busiest of at
 * most n stages carries at least 1/n of that and at least the slowest layer. */
static double period_bound(const dp *d, int G)
{
    return fmax(d->rest[0], G * fmax(d->rest[0] / d->n, d->heaviest));
}

int sp_search(const sp_problem *p, sp_objective obj, sp_solution *best, sp_error *err)
{
    memset(best, 0, sizeof *best);
    int n = p->n_boards, L = p->n_layers, K = p->sequences;
    if (n < 1 || n > SP_PLANNER_MAX_BOARDS || L < 1 || L > 32767 || K < 1)
        return sp_errorf(err, "the planner handles 1 to %d boards, 1 to 32767 layers and at least 1 sequence, got "
                              "%d boards, %d layers and %d sequences", SP_PLANNER_MAX_BOARDS, n, L, K);
    dp d = {.n = n, .L = L};
    size_t states = ((size_t)1 << n) * n * (L + 1);
    d.f = sp_alloc(states * sizeof *d.f);
    d.par_last = sp_alloc(states);
    d.par_j = sp_alloc(states * sizeof *d.par_j);
    d.stamp = sp_calloc((size_t)1 << n, sizeof *d.stamp);
    d.prefix = sp_alloc((size_t)n * (L + 1) * sizeof *d.prefix);
    d.mprefix = sp_alloc((size_t)(L + 1) * sizeof *d.mprefix);
    d.rest = sp_alloc((size_t)(L + 1) * sizeof *d.rest);
    d.g = sp_alloc((size_t)(L + 1) * sizeof *d.g);
    d.g_last = sp_alloc((size_t)(L + 1) * sizeof *d.g_last);
    d.mprefix[0] = 0;
    for (int l = 0; l < L; l++) d.mprefix[l + 1] = d.mprefix[l] + p->layer_mem[l];

    if (obj == SP_OBJ_LATENCY) {
        dp_prepare(&d, p, sp_problem_case(p, K));
        dp_solve(&d, INFINITY, INFINITY);
        consider(&d, obj, 1, best);
    } else {
        /* the even split over every board, to prune with from the start */
        int boards[SP_PLANNER_MAX_BOARDS], firsts[SP_PLANNER_MAX_BOARDS], S = n < L ? n : L;
        for (int i = 0; i < S; i++) boards[i] = i, firsts[i] = (int)((long)L * i / S);
        sp_solution even;
        if (sp_evaluate_batched(p, obj, S, boards, firsts, &even) == 0) *best = even;
        /* the cases in order of their lower bound */
        double *bound = sp_alloc((size_t)p->n_cases * sizeof *bound);
        int *order = sp_alloc((size_t)p->n_cases * sizeof *order);
        for (int ci = 0; ci < p->n_cases; ci++) {
            dp_prepare(&d, p, &p->cases[ci]);
            bound[ci] = period_bound(&d, sp_planner_rows(K, p->cases[ci].rows));
            order[ci] = ci;
            for (int i = ci; i > 0 && bound[order[i]] < bound[order[i - 1]]; i--) {
                int t = order[i];
                order[i] = order[i - 1];
                order[i - 1] = t;
            }
        }
        for (int i = 0; i < p->n_cases; i++) {
            const sp_cost_case *c = &p->cases[order[i]];
            if (best->feasible && bound[order[i]] >= best->value) break;
            dp_prepare(&d, p, c);
            search_groups(&d, sp_planner_rows(K, c->rows), best);
        }
        free(bound);
        free(order);
    }
    free(d.f);
    free(d.par_last);
    free(d.par_j);
    free(d.stamp);
    free(d.prefix);
    free(d.mprefix);
    free(d.rest);
    free(d.g);
    free(d.g_last);
    if (!best->feasible) {
        memset(best, 0, sizeof *best);
        /* for throughput, the fewest rows (the last case) need the least memory */
        no_fit(p, obj == SP_OBJ_LATENCY ? sp_problem_case(p, K) : &p->cases[p->n_cases - 1], err);
        return -1;
    }
    return 0;
}
