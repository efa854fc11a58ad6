/* test_planner.c - the plan generator: the search against a brute force on
 * random problems, the objectives, plans written from a real cost model
 * against the plan validator, and the profile / cluster loaders' errors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/planner.h"
#include "shardpipe/synth.h"
#include "shardpipe/util.h"
#include "testutil.h"

/* ---- random problems and the brute force ---- */

static double uniform(sp_rng *r, double lo, double hi) { return lo + (hi - lo) * sp_rng_f32(r); }

/* Boards of random speed, layers of random cost and size, links of random
 * latency; memory either ample or tight enough that it binds. Up to 8
 * sequences on up to 4 boards, so more groups than stages can pay. */
static void random_problem(sp_problem *p, sp_rng *r, bool tight)
{
    int n = 1 + (int)(sp_rng_u64(r) % 4), L = 1 + (int)(sp_rng_u64(r) % 7), K = 1 + (int)(sp_rng_u64(r) % 8);
    sp_problem_init(p, L, n, K);
    uint64_t total = 0;
    for (int l = 0; l < L; l++) total += p->layer_mem[l] = 1 + sp_rng_u64(r) % 10;
    for (int b = 0; b < n; b++)
        p->mem_cap[b] = tight ? 3 + sp_rng_u64(r) % (total + 6) : UINT64_MAX / 4;
    double speed[SP_PLANNER_MAX_BOARDS];
    for (int b = 0; b < n; b++) speed[b] = uniform(r, 0.3, 3.0);
    for (int ci = 0; ci < p->n_cases; ci++) {
        sp_cost_case *c = &p->cases[ci];
        for (int b = 0; b < n; b++) {
            for (int l = 0; l < L; l++) c->layer_s[b * L + l] = speed[b] * uniform(r, 0.5, 1.5) * (1 + 0.2 * c->rows);
            c->first_s[b] = uniform(r, 0, 0.3);
            c->head_s[b] = uniform(r, 0, 2);
            for (int a = 0; a < n; a++)
                if (a != b) {
                    c->hop_s[b * n + a] = uniform(r, 0, 2.5);
                    c->ret_s[b * n + a] = uniform(r, 0, 1);
                    c->hop_busy_s[b * n + a] = c->hop_s[b * n + a] * uniform(r, 0, 1);
                    c->ret_busy_s[b * n + a] = c->ret_s[b * n + a] * uniform(r, 0, 1);
                }
        }
        for (int f = 0; f < 2; f++)
            for (int h = 0; h < 2; h++) c->fixed_mem[f][h] = sp_rng_u64(r) % 4;
    }
}

/* The objective of a partition with G groups, computed here from the
 * definition in planner.h (not with sp_evaluate); INFINITY when it does
 * not fit. */
static double brute_value(const sp_problem *p, sp_objective obj, int G, int S, const int *boards, const int *firsts)
{
    int K = p->sequences, n = p->n_boards;
    int rows = (K + G - 1) / G;
    const sp_cost_case *c = NULL;
    for (int i = 0; i < p->n_cases; i++)
        if (p->cases[i].rows == rows) c = &p->cases[i];
    cr_assert(c, "no case for %d rows", rows);
    double busiest = 0, trip = 0;
    for (int i = 0; i < S; i++) {
        int b = boards[i], lo = firsts[i], hi = i + 1 < S ? firsts[i + 1] : p->n_layers;
        double t = (i == 0 ? c->first_s[b] : 0) + (i == S - 1 ? c->head_s[b] : 0);
        uint64_t m = c->fixed_mem[i == 0][i == S - 1];
        for (int l = lo; l < hi; l++) t += c->layer_s[b * p->n_layers + l], m += p->layer_mem[l];
        if (m > p->mem_cap[b]) return INFINITY;
        busiest = fmax(busiest, t);
        trip += t;
        if (i + 1 < S) {
            busiest = fmax(busiest, c->hop_busy_s[b * n + boards[i + 1]]);
            trip += c->hop_s[b * n + boards[i + 1]];
        }
    }
    if (S > 1) {
        busiest = fmax(busiest, c->ret_busy_s[boards[S - 1] * n + boards[0]]);
        trip += c->ret_s[boards[S - 1] * n + boards[0]];
    }
    return obj == SP_OBJ_THROUGHPUT ? fmax(trip, G * busiest) : trip;
}

typedef struct brute {
    const sp_problem *p;
    sp_objective obj;
    bool old_rule; /* throughput with G fixed at min(K, S), the previous planner's rule */
    int boards[SP_PLANNER_MAX_BOARDS], firsts[SP_PLANNER_MAX_BOARDS];
    double best;
    int best_groups, best_stages;
} brute;

/* Every composition of the layers into S non-empty ranges, with every G. */
static void brute_cuts(brute *bf, int S, int i)
{
    if (i == S) {
        int K = bf->p->sequences, lo = 1, hi = bf->obj == SP_OBJ_LATENCY ? 1 : K;
        if (bf->old_rule) lo = hi = K < S ? K : S;
        for (int G = lo; G <= hi; G++) {
            double v = brute_value(bf->p, bf->obj, G, S, bf->boards, bf->firsts);
            if (v < bf->best) bf->best = v, bf->best_groups = G, bf->best_stages = S;
        }
        return;
    }
    int lo = bf->firsts[i - 1] + 1, hi = bf->p->n_layers - (S - i);
    for (int f = lo; f <= hi; f++) {
        bf->firsts[i] = f;
        brute_cuts(bf, S, i + 1);
    }
}

/* Every ordered selection of distinct boards. */
static void brute_orders(brute *bf, int depth, unsigned used)
{
    if (depth > 0 && depth <= bf->p->n_layers) {
        bf->firsts[0] = 0;
        brute_cuts(bf, depth, 1);
    }
    if (depth == bf->p->n_boards) return;
    for (int b = 0; b < bf->p->n_boards; b++) {
        if (used & (1u << b)) continue;
        bf->boards[depth] = b;
        brute_orders(bf, depth + 1, used | (1u << b));
    }
}

static brute brute_force(const sp_problem *p, sp_objective obj, bool old_rule)
{
    brute bf = {.p = p, .obj = obj, .old_rule = old_rule, .best = INFINITY};
    brute_orders(&bf, 0, 0);
    return bf;
}

static void check_against_brute_force(bool tight, uint64_t seed, int count)
{
    sp_rng r;
    sp_rng_seed(&r, seed);
    int infeasible = 0, partial = 0, more_groups = 0, beats_old = 0;
    for (int it = 0; it < count; it++) {
        sp_problem p;
        random_problem(&p, &r, tight);
        for (int o = 0; o < 2; o++) {
            sp_objective obj = o ? SP_OBJ_LATENCY : SP_OBJ_THROUGHPUT;
            double want = brute_force(&p, obj, false).best;
            sp_solution s;
            sp_error err = {{0}};
            int rc = sp_search(&p, obj, &s, &err);
            if (want == INFINITY) {
                cr_assert_eq(rc, -1, "instance %d objective %d: brute force finds no fit, search found %g", it, o,
                             s.value);
                cr_assert(strstr(err.msg, "does not fit"), "message: %s", err.msg);
                infeasible++;
                continue;
            }
            cr_assert_eq(rc, 0, "instance %d objective %d: search failed (%s) but %g exists", it, o, err.msg, want);
            cr_assert(s.feasible);
            cr_assert(fabs(s.value - want) <= 1e-9 * fmax(1, want), "instance %d (%d boards, %d layers, K %d) "
                      "objective %d: search %.12g, brute force %.12g", it, p.n_boards, p.n_layers, p.sequences, o,
                      s.value, want);
            /* the partition and G it returns have the value it claims */
            double again = brute_value(&p, obj, s.micro_batches, s.n_stages, s.board, s.first);
            cr_assert(fabs(again - s.value) <= 1e-9 * fmax(1, want), "claimed %.12g, is %.12g", s.value, again);
            cr_assert_float_eq(s.tok_s, p.sequences / s.round_s, 1e-9);
            if (s.n_stages < p.n_boards) partial++;
            if (obj == SP_OBJ_THROUGHPUT) {
                more_groups += s.micro_batches > s.n_stages;
                beats_old += s.value < brute_force(&p, obj, true).best * (1 - 1e-9);
            }
        }
        sp_problem_free(&p);
    }
    /* the instances must exercise the interesting cases */
    if (tight) cr_assert(infeasible > 0, "no instance hit the memory limit");
    cr_assert(partial > 0, "no optimum left a board out");
    cr_assert(more_groups > 0, "no optimum had more groups than stages");
    cr_assert(beats_old > 0, "no optimum beat the old rule G = min(K, S)");
}

Test(search, equals_brute_force_memory_ample) { check_against_brute_force(false, 1, 400); }
Test(search, equals_brute_force_memory_binding) { check_against_brute_force(true, 2, 400); }

/* Two equal boards, a compute-bound model: splitting doubles throughput but
 * adds two hops to the latency. */
Test(search, objective_changes_plan)
{
    sp_problem p;
    sp_problem_init(&p, 4, 2, 2);
    for (int b = 0; b < 2; b++) p.mem_cap[b] = 100;
    for (int l = 0; l < 4; l++) p.layer_mem[l] = 1;
    for (int ci = 0; ci < p.n_cases; ci++) {
        sp_cost_case *c = &p.cases[ci];
        for (int i = 0; i < 8; i++) c->layer_s[i] = 0.5 * c->rows;
        c->hop_s[1] = c->hop_s[2] = c->ret_s[1] = c->ret_s[2] = 0.1;
    }
    sp_solution t, l;
    sp_error err;
    cr_assert_eq(sp_search(&p, SP_OBJ_THROUGHPUT, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_search(&p, SP_OBJ_LATENCY, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(t.n_stages, 2, "throughput should use both boards, got %d stage(s)", t.n_stages);
    cr_assert_eq(t.first[1], 2, "and split the layers evenly, got a cut at %d", t.first[1]);
    cr_assert_eq(t.micro_batches, 2);
    /* 2 groups of 1 row: the round trip 1 + 0.1 + 1 + 0.1 s binds over 2 x 1 s */
    cr_assert_float_eq(t.value, 2.2, 1e-9);
    cr_assert_eq(l.n_stages, 1, "latency should use one board, got %d stages", l.n_stages);
    cr_assert_float_eq(l.value, 4.0, 1e-9);
    sp_problem_free(&p);
}

/* Compute-bound layers (time grows with the rows) behind links of high
 * latency but ample bandwidth: with the old rule's 2 groups for 2 stages the
 * round trip binds (P = 2 x 4 + 2 x 3 = 14 s for 8 tokens); 8 groups of one
 * row keep both boards busy (P = max(2 + 6, 8 x 1) = 8 s). */
Test(search, more_groups_than_stages_when_the_round_trip_binds)
{
    sp_problem p;
    sp_problem_init(&p, 4, 2, 8);
    for (int b = 0; b < 2; b++) p.mem_cap[b] = 100;
    for (int l = 0; l < 4; l++) p.layer_mem[l] = 1;
    for (int ci = 0; ci < p.n_cases; ci++) {
        sp_cost_case *c = &p.cases[ci];
        for (int i = 0; i < 8; i++) c->layer_s[i] = 0.5 * c->rows;
        c->hop_s[1] = c->hop_s[2] = c->ret_s[1] = c->ret_s[2] = 3.0;
        c->hop_busy_s[1] = c->hop_busy_s[2] = c->ret_busy_s[1] = c->ret_busy_s[2] = 0.01;
    }
    sp_solution s;
    sp_error err;
    cr_assert_eq(sp_search(&p, SP_OBJ_THROUGHPUT, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n_stages, 2);
    cr_assert_eq(s.micro_batches, 8, "expected 8 groups, got %d", s.micro_batches);
    cr_assert_float_eq(s.value, 8.0, 1e-9);
    cr_assert_float_eq(s.tok_s, 1.0, 1e-9);
    brute old = brute_force(&p, SP_OBJ_THROUGHPUT, true);
    cr_assert_float_eq(old.best, 14.0, 1e-9, "the old rule's best period is %g", old.best);
    cr_assert_lt(s.value, old.best);
    /* and the brute force over every G agrees */
    cr_assert_float_eq(brute_force(&p, SP_OBJ_THROUGHPUT, false).best, s.value, 1e-9);
    sp_problem_free(&p);
}

/* A slow link: the board behind it is left out although it is the fastest
 * (and too small to run the model alone). */
Test(search, leaves_out_a_board_behind_a_slow_link)
{
    sp_problem p;
    sp_problem_init(&p, 6, 3, 1);
    for (int l = 0; l < 6; l++) p.layer_mem[l] = 1;
    p.mem_cap[0] = p.mem_cap[1] = 100;
    p.mem_cap[2] = 3; /* half the model: it cannot run alone */
    sp_cost_case *c = &p.cases[0];
    for (int l = 0; l < 6; l++) {
        c->layer_s[0 * 6 + l] = 1.0;
        c->layer_s[1 * 6 + l] = 1.0;
        c->layer_s[2 * 6 + l] = 0.2;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            if (a != b) c->hop_s[a * 3 + b] = c->ret_s[a * 3 + b] = (a == 2 || b == 2) ? 50.0 : 0.01;
    sp_solution s;
    sp_error err;
    cr_assert_eq(sp_search(&p, SP_OBJ_THROUGHPUT, &s, &err), 0, "%s", err.msg);
    for (int i = 0; i < s.n_stages; i++) cr_assert_neq(s.board[i], 2, "board 2 is behind a 50 s link");
    sp_problem_free(&p);
}

Test(search, says_how_much_memory_is_short)
{
    sp_problem p;
    sp_problem_init(&p, 4, 2, 1);
    for (int l = 0; l < 4; l++) p.layer_mem[l] = 1000000000ull; /* 1 GB each */
    p.mem_cap[0] = p.mem_cap[1] = 1500000000ull;
    sp_solution s;
    sp_error err;
    cr_assert_eq(sp_search(&p, SP_OBJ_THROUGHPUT, &s, &err), -1);
    cr_assert(strstr(err.msg, "1.00 GB short"), "message: %s", err.msg);
    cr_assert(strstr(err.msg, "board 0 1.50 GB"), "message: %s", err.msg);
    sp_problem_free(&p);
}

/* ---- loaders ---- */

/* Every file of tests/profiles/invalid fails to load with its `# expect:`
 * text, at FILE:LINE:COL. cluster-*.yaml are cluster files, the rest
 * profiles. */
Test(loaders, invalid_corpus)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/profiles/invalid", SP_SOURCE_DIR);
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        char path[2048], expect[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        cr_assert(f);
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "# expect: ", 10)) {
                snprintf(expect, sizeof expect, "%s", line + 10);
                expect[strcspn(expect, "\n")] = '\0';
            }
        fclose(f);
        cr_assert(expect[0], "%s has no '# expect:' line", e->d_name);
        sp_error err = {{0}};
        int rc;
        if (!strncmp(e->d_name, "cluster-", 8)) {
            static sp_cluster c;
            rc = sp_cluster_load(path, &c, &err);
        } else {
            static sp_profile p;
            rc = sp_profile_load(path, &p, &err);
        }
        cr_assert_eq(rc, -1, "%s loaded but should fail with: %s", e->d_name, expect);
        cr_assert(strstr(err.msg, expect), "%s: expected '%s' in: %s", e->d_name, expect, err.msg);
        /* PATH:LINE:COL: */
        int l = 0, col = 0;
        cr_assert(!strncmp(err.msg, path, strlen(path)) && sscanf(err.msg + strlen(path), ":%d:%d:", &l, &col) == 2 &&
                  l > 0 && col > 0, "%s: no FILE:LINE:COL in: %s", e->d_name, err.msg);
        count++;
    }
    closedir(d);
    cr_assert_geq(count, 25, "only %d invalid files", count);
}

static const char *write_text(const char *name, const char *text) { return sp_test_write_text(name, text); }

Test(loaders, profile_round_trip_and_cluster_defaults)
{
    static sp_profile p, back;
    sp_error err = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/profiles/valid-board.yaml", SP_SOURCE_DIR);
    cr_assert_eq(sp_profile_load(path, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.n_perf, 2);
    cr_assert_eq(p.ram_total, 8ull << 30);
    cr_assert_float_eq(sp_profile_perf(&p, 4)->mv[SP_MV_Q4_0].gbs, 6.0, 1e-12);
    /* a profile from before the K-quants: they take the q4_0 figures */
    cr_assert_float_eq(sp_profile_perf(&p, 4)->mv[SP_MV_Q4_K].gbs, 6.0, 1e-12);
    cr_assert_float_eq(sp_profile_perf(&p, 4)->mv[SP_MV_Q6_K].gflops, sp_profile_perf(&p, 4)->mv[SP_MV_Q4_0].gflops,
                       1e-12);
    /* and before IQ4_NL, which takes them too */
    cr_assert_float_eq(sp_profile_perf(&p, 4)->mv[SP_MV_IQ4_NL].gbs, 6.0, 1e-12);
    cr_assert_float_eq(sp_profile_perf(&p, 4)->sgemm_gflops[3], 90.0, 1e-12);
    cr_assert_str_eq(p.simd, "asimd asimddp");
    cr_assert_eq(sp_profile_perf(&p, 1)->sgemm_min_rows, SP_PROFILE_DEFAULT_SGEMM_MIN_ROWS, "absent: the default");
    cr_assert_eq(sp_profile_perf(&p, 4)->sgemm_min_rows, 0, "sgemm_min_rows: 0 (never) as written");

    const char *out = sp_test_tmpfile("board.yaml");
    cr_assert_eq(sp_profile_write(&p, out, "a header\nof two lines", &err), 0, "%s", err.msg);
    cr_assert_eq(sp_profile_load(out, &back, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back.name, p.name);
    cr_assert_str_eq(back.origin, p.origin);
    cr_assert_eq(back.ram_available, p.ram_available);
    for (int i = 0; i < p.n_perf; i++)
        for (int k = 0; k < SP_MV_COUNT; k++) cr_assert_float_eq(back.perf[i].mv[k].gflops, p.perf[i].mv[k].gflops, 0.006);
    for (int i = 0; i < p.n_perf; i++) cr_assert_eq(back.perf[i].sgemm_min_rows, p.perf[i].sgemm_min_rows);

    /* a cluster: host and threads default, pairs override the default link */
    char text[4096];
    snprintf(text, sizeof text,
             "name: lab\nboards:\n  - name: a\n    profile: %s\n  - name: b\n    host: b.local\n    profile: %s\n"
             "    threads: 1\n    memory: 2GiB\nlinks:\n  default: {latency: 0.0003, bandwidth: 110e6}\n  pairs:\n"
             "    - between: [b, a]\n      latency: 0.004\n      bandwidth: 2.5e6\n", path, path);
    static sp_cluster c;
    cr_assert_eq(sp_cluster_load(write_text("lab.yaml", text), &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.n_boards, 2);
    cr_assert_str_eq(c.boards[0].host, "a");
    cr_assert_eq(c.boards[0].threads, 4, "threads default to the profile's largest count");
    cr_assert_eq(c.boards[0].memory, ((8ull << 30) - sp_memory_reserve(8ull << 30)) & ~((1ull << 20) - 1));
    cr_assert_eq(c.boards[1].memory, 2ull << 30);
    cr_assert_float_eq(c.links[0][1].latency, 0.004, 1e-12);
    cr_assert_float_eq(c.links[1][0].bandwidth, 2.5e6, 1e-6);
    cr_assert_eq(c.handoff, 0, "no handoff given: 0");

    /* a measured hand-over time */
    char *at = strstr(text, "links:");
    memmove(at + 15, at, strlen(at) + 1);
    memcpy(at, "handoff: 0.013\n", 15);
    cr_assert_eq(sp_cluster_load(write_text("lab-handoff.yaml", text), &c, &err), 0, "%s", err.msg);
    cr_assert_float_eq(c.handoff, 0.013, 1e-15);
    cr_assert_float_eq(c.boards[0].slowdown, 1.0, 1e-15, "no slowdown given: 1");

    /* a measured in-run slowdown on one board */
    at = strstr(text, "    threads: 1\n");
    cr_assert(at);
    memmove(at + 18, at, strlen(at) + 1);
    memcpy(at, "    slowdown: 1.4\n", 18);
    cr_assert_eq(sp_cluster_load(write_text("lab-slowdown.yaml", text), &c, &err), 0, "%s", err.msg);
    cr_assert_float_eq(c.boards[1].slowdown, 1.4, 1e-15);
    cr_assert_float_eq(c.boards[0].slowdown, 1.0, 1e-15);
}

/* ---- plans from the real cost model ---- */

/* A profile whose kernels are slow at arithmetic (compute bound) or not. */
static const char *profile_text(char *buf, size_t size, const char *name, double gflops, int ram_mib)
{
    snprintf(buf, size,
             "name: %s\nsource: published\norigin: test\ndate: 2025-01-31\ncpu: test\ncores: 1\narch: x86_64\n"
             "ram_total: %dMiB\nperf:\n  - threads: 1\n    memory_read_gbs: 2\n    matvec:\n"
             "      q8_0: {gbs: 1, gflops: %g}\n      q4_0: {gbs: 1, gflops: %g}\n"
             "      f16: {gbs: 1, gflops: %g}\n      f32: {gbs: 1, gflops: %g}\n"
             "    sgemm_gflops: {1: %g, 8: %g, 32: %g, 128: %g}\n",
             name, ram_mib, gflops, gflops, gflops, gflops, gflops, gflops, gflops, gflops);
    return buf;
}

static sp_gguf *tiny_model(sp_config *cfg, int layers)
{
    sp_synth_spec spec;
    sp_error err = {{0}};
    cr_assert_eq(sp_synth_shape("tiny", &spec, &err), 0, "%s", err.msg);
    spec.n_layers = layers;
    char name[64];
    snprintf(name, sizeof name, "tiny-%d.gguf", layers);
    const char *path = sp_test_tmpfile(name);
    cr_assert_eq(sp_synth_write(&spec, path, &err), 0, "%s", err.msg);
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert(g, "%s", err.msg);
    cr_assert_eq(sp_config_read(g, cfg, &err), 0, "%s", err.msg);
    return g;
}

/* Cluster of n boards with the given RAM (MiB) and arithmetic speed. */
static void make_cluster(sp_cluster *c, int n, const int *ram_mib, double gflops, double latency)
{
    char text[8192], prof[1024];
    size_t len = (size_t)snprintf(text, sizeof text, "name: test\nboards:\n");
    for (int b = 0; b < n; b++) {
        char pname[32], ppath[64];
        snprintf(pname, sizeof pname, "board%d", b);
        snprintf(ppath, sizeof ppath, "board%d-%d.yaml", b, ram_mib[b]);
        const char *pp = write_text(ppath, profile_text(prof, sizeof prof, pname, gflops, ram_mib[b]));
        len += (size_t)snprintf(text + len, sizeof text - len, "  - name: b%d\n    profile: %s\n", b, pp);
    }
    snprintf(text + len, sizeof text - len, "links:\n  default: {latency: %g, bandwidth: 1e8}\n", latency);
    sp_error err = {{0}};
    cr_assert_eq(sp_cluster_load(write_text("cluster.yaml", text), c, &err), 0, "%s", err.msg);
}

/* Plan, write, load back, validate; the memory the planner counted is the
 * validator's estimate. */
static void plan_and_validate(const sp_cluster *c, sp_gguf *g, const sp_config *cfg, const sp_cost_options *o,
                              sp_objective obj, sp_solution *s)
{
    sp_problem p;
    sp_error err = {{0}};
    cr_assert_eq(sp_cost_build(&p, c, g, cfg, o, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_search(&p, obj, s, &err), 0, "%s", err.msg);
    static sp_plan plan, back;
    sp_planner_to_plan(s, c, o, g->path, &plan);
    char *header = sp_planner_header(s, c, cfg, "tiny", o);
    /* every board's profile here predates attention_gflops: the header says so */
    cr_assert(strstr(header, "Attention is priced from the f16 matvec figures for b"), "%s", header);
    cr_assert(strstr(header, "`shardpipe profile` on th"), "%s", header);
    char *comments[SP_PLANNER_MAX_BOARDS];
    for (int i = 0; i < s->n_stages; i++) comments[i] = sp_planner_stage_comment(s, i, c, &plan, g, cfg);
    const char *path = sp_test_tmpfile("plan.yaml");
    cr_assert_eq(sp_plan_write(&plan, path, header, (const char *const *)comments, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_plan_load(path, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_plan_check_model(&back, g, cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(back.n_stages, s->n_stages);
    for (int i = 0; i < s->n_stages; i++) {
        sp_stage_memory m = sp_plan_stage_memory(&back, i, g, cfg);
        cr_assert_eq(m.total, s->mem[i], "stage %d: planner counted %llu bytes, the validator %llu", i,
                     (unsigned long long)s->mem[i], (unsigned long long)m.total);
        cr_assert_float_eq(back.stages[i].predicted_ms, s->stage_s[i] * 1e3, 1e-3);
        cr_assert_eq(back.stages[i].rank, i);
        free(comments[i]);
    }
    free(header);
    sp_problem_free(&p);
}

Test(plans, written_plans_validate_memory_binding_or_not)
{
    sp_config cfg;
    sp_gguf *g = tiny_model(&cfg, 12);
    static sp_cluster c;
    sp_cost_options o = {.context = 128, .sequences = 3, .prefill_chunk = 8, .wire = SP_WIRE_F16};
    int ample[3] = {4096, 4096, 4096};
    make_cluster(&c, 3, ample, 50, 1e-4);
    sp_solution s;
    for (int obj = 0; obj < 2; obj++) plan_and_validate(&c, g, &cfg, &o, (sp_objective)obj, &s);

    /* boards that hold only part of the model: the plan must spread it */
    sp_problem p;
    sp_error err = {{0}};
    cr_assert_eq(sp_cost_build(&p, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    uint64_t total = 0;
    for (int l = 0; l < cfg.n_layers; l++) total += p.layer_mem[l];
    uint64_t fixed = p.cases[0].fixed_mem[1][1];
    for (int b = 0; b < 3; b++) c.boards[b].memory = total / 2 + fixed;
    sp_problem_free(&p);
    plan_and_validate(&c, g, &cfg, &o, SP_OBJ_THROUGHPUT, &s);
    cr_assert_geq(s.n_stages, 2, "a board holds half the layers, yet the plan has %d stage(s)", s.n_stages);
    for (int i = 0; i < s.n_stages; i++) cr_assert_leq(s.mem[i], c.boards[s.board[i]].memory);

    /* and too little memory everywhere: no plan, with the numbers */
    for (int b = 0; b < 3; b++) c.boards[b].memory = total / 8;
    cr_assert_eq(sp_cost_build(&p, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_search(&p, SP_OBJ_THROUGHPUT, &s, &err), -1);
    cr_assert(strstr(err.msg, "MB short with every board full"), "%s", err.msg);
    sp_problem_free(&p);
    sp_gguf_close(g);
}

/* Two compute-bound boards (slow arithmetic, 4 GiB each) joined by 5 ms
 * links, and the options the tests below plan them with: 4 sequences,
 * context 64. For throughput two boards beat one (objective_changes_the_plan). */
static sp_gguf *two_slow_boards(sp_cluster *c, int layers, sp_config *cfg, sp_cost_options *o)
{
    int ram[2] = {4096, 4096};
    make_cluster(c, 2, ram, 0.01, 0.005);
    *o = (sp_cost_options){.context = 64, .sequences = 4, .prefill_chunk = 8, .wire = SP_WIRE_F32};
    return tiny_model(cfg, layers);
}

/* Compute-bound boards (slow arithmetic) and 5 ms links: for throughput,
 * two boards each doing half the rows of half the layers beat one; for
 * latency the two hops only add time. */
Test(plans, objective_changes_the_plan)
{
    sp_config cfg;
    static sp_cluster c;
    sp_cost_options o;
    sp_gguf *g = two_slow_boards(&c, 4, &cfg, &o);
    sp_solution t, l;
    plan_and_validate(&c, g, &cfg, &o, SP_OBJ_THROUGHPUT, &t);
    plan_and_validate(&c, g, &cfg, &o, SP_OBJ_LATENCY, &l);
    cr_assert_eq(t.n_stages, 2, "throughput: %d stage(s)", t.n_stages);
    /* the 5 ms hops make the round trip bind: one group per sequence */
    cr_assert_eq(t.micro_batches, 4, "throughput: %d groups", t.micro_batches);
    cr_assert_eq(l.n_stages, 1, "latency: %d stages", l.n_stages);
    cr_assert_eq(l.micro_batches, 1);
    cr_assert_gt(t.tok_s, l.tok_s, "throughput plan %.3f tok/s, latency plan %.3f", t.tok_s, l.tok_s);
    sp_gguf_close(g);
}

/* The hand-over time lengthens every hop of the round trip (stage to stage
 * and the token ids back) by exactly its value, and not the links' busy
 * time, which bounds the bottleneck. */
Test(cost, handoff_is_in_the_round_trip_only)
{
    sp_config cfg;
    sp_gguf *g = tiny_model(&cfg, 4);
    static sp_cluster c;
    int ram[3] = {4096, 4096, 4096};
    make_cluster(&c, 3, ram, 50, 0.001);
    sp_cost_options o = {.context = 64, .sequences = 4, .prefill_chunk = 8, .wire = SP_WIRE_F32};
    sp_problem p0, p1;
    sp_error err = {{0}};
    cr_assert_eq(sp_cost_build(&p0, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    c.handoff = 0.025;
    cr_assert_eq(sp_cost_build(&p1, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(p0.n_cases, p1.n_cases);
    for (int ci = 0; ci < p0.n_cases; ci++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                if (a == b) continue;
                int i = a * 3 + b;
                const sp_cost_case *x = &p0.cases[ci], *y = &p1.cases[ci];
                cr_assert_float_eq(y->hop_s[i] - x->hop_s[i], 0.025, 1e-12, "hop %d->%d", a, b);
                cr_assert_float_eq(y->ret_s[i] - x->ret_s[i], 0.025, 1e-12, "return %d->%d", a, b);
                cr_assert_eq(y->hop_busy_s[i], x->hop_busy_s[i], "hop %d->%d busy time changed", a, b);
                cr_assert_eq(y->ret_busy_s[i], x->ret_busy_s[i], "return %d->%d busy time changed", a, b);
            }
    /* a 3-stage partition: its round trip grows by 3 hand-overs, its
     * bottleneck not at all */
    int boards[3] = {0, 1, 2}, firsts[3] = {0, 1, 2};
    sp_solution s0, s1;
    cr_assert_eq(sp_evaluate(&p0, SP_OBJ_THROUGHPUT, 2, 3, boards, firsts, &s0), 0);
    cr_assert_eq(sp_evaluate(&p1, SP_OBJ_THROUGHPUT, 2, 3, boards, firsts, &s1), 0);
    cr_assert_float_eq(s1.latency - s0.latency, 3 * 0.025, 1e-12);
    cr_assert_float_eq(s1.bottleneck, s0.bottleneck, 1e-15);
    sp_problem_free(&p0);
    sp_problem_free(&p1);
    sp_gguf_close(g);
}

/* A board's in-run slowdown multiplies every compute time of it (layers,
 * embedding, head) and nothing else; the search then moves layers off it. */
Test(cost, slowdown_scales_the_boards_compute)
{
    sp_config cfg;
    static sp_cluster c;
    sp_cost_options o;
    sp_gguf *g = two_slow_boards(&c, 8, &cfg, &o);
    sp_problem p0, p1;
    sp_error err = {{0}};
    cr_assert_eq(sp_cost_build(&p0, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    sp_solution s0;
    cr_assert_eq(sp_search(&p0, SP_OBJ_THROUGHPUT, &s0, &err), 0, "%s", err.msg);
    cr_assert_eq(s0.n_stages, 2, "two equal boards: %d stage(s)", s0.n_stages);
    c.boards[0].slowdown = 3;
    cr_assert_eq(sp_cost_build(&p1, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    for (int ci = 0; ci < p0.n_cases; ci++) {
        const sp_cost_case *x = &p0.cases[ci], *y = &p1.cases[ci];
        for (int l = 0; l < cfg.n_layers; l++) {
            cr_assert_float_eq(y->layer_s[l], 3 * x->layer_s[l], 1e-15, "board 0 layer %d", l);
            cr_assert_eq(y->layer_s[cfg.n_layers + l], x->layer_s[cfg.n_layers + l], "board 1 layer %d", l);
        }
        cr_assert_float_eq(y->head_s[0], 3 * x->head_s[0], 1e-15);
        cr_assert_float_eq(y->first_s[0], 3 * x->first_s[0], 1e-15);
        cr_assert_eq(y->head_s[1], x->head_s[1]);
        cr_assert_eq(y->hop_s[1], x->hop_s[1], "links do not change");
    }
    sp_solution s1;
    cr_assert_eq(sp_search(&p1, SP_OBJ_THROUGHPUT, &s1, &err), 0, "%s", err.msg);
    int on0 = 0, before0 = 0;
    for (int i = 0; i < s1.n_stages; i++)
        if (s1.board[i] == 0) on0 += s1.last[i] - s1.first[i] + 1;
    for (int i = 0; i < s0.n_stages; i++)
        if (s0.board[i] == 0) before0 += s0.last[i] - s0.first[i] + 1;
    cr_assert_lt(on0, before0, "board 0, 3x slower in a run, keeps %d of %d layers", on0, before0);
    sp_problem_free(&p0);
    sp_problem_free(&p1);
    sp_gguf_close(g);
}

/* Two boards that halve the period when the ring is free (see
 * objective_changes_the_plan): with hand-overs as long as the whole
 * model's compute, the ring of two stages binds and one board alone is
 * faster; the search must see that. */
Test(plans, handoff_can_make_one_stage_better)
{
    sp_config cfg;
    static sp_cluster c;
    sp_cost_options o;
    sp_gguf *g = two_slow_boards(&c, 4, &cfg, &o);
    sp_solution t0, t1;
    plan_and_validate(&c, g, &cfg, &o, SP_OBJ_THROUGHPUT, &t0);
    cr_assert_eq(t0.n_stages, 2, "no hand-over: %d stage(s)", t0.n_stages);
    /* one board alone, one group of 4 rows: its period is its compute */
    sp_problem p;
    sp_error err = {{0}};
    cr_assert_eq(sp_cost_build(&p, &c, g, &cfg, &o, &err), 0, "%s", err.msg);
    int boards[1] = {0}, firsts[1] = {0};
    sp_solution alone;
    cr_assert_eq(sp_evaluate_batched(&p, SP_OBJ_THROUGHPUT, 1, boards, firsts, &alone), 0);
    sp_problem_free(&p);
    c.handoff = alone.round_s; /* two hand-overs alone take twice the single board's period */
    plan_and_validate(&c, g, &cfg, &o, SP_OBJ_THROUGHPUT, &t1);
    cr_assert_eq(t1.n_stages, 1, "hand-over %.3f s: %d stages, period %.3f s against %.3f s alone", c.handoff,
                 t1.n_stages, t1.round_s, alone.round_s);
    cr_assert_float_eq(t1.round_s, alone.round_s, 1e-12);
    sp_gguf_close(g);
}

/* A matrix's decode time: streaming or arithmetic, whichever is longer; one
 * row never costs more than the measured 1-row call. */
Test(cost, matrix_time)
{
    sp_thread_perf perf = {.threads = 1, .mem_read_gbs = 10, .sgemm_min_rows = 64};
    perf.mv[SP_MV_Q4_0] = (sp_mv_perf){.gbs = 10, .gflops = 40};
    perf.mv[SP_MV_Q8_0] = (sp_mv_perf){.gbs = 10, .gflops = 5}; /* 8 rows slower than 8 x 1 row: noise */
    for (int i = 0; i < SP_SGEMM_NROWS; i++) perf.sgemm_gflops[i] = 100;
    uint64_t params = 100000000, bytes = 56250000; /* 100 M weights of Q4_0: 5.625 ms to stream */
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 1), 5.625e-3, 1e-12);
    /* 2 x 100 M / 40 GFLOPS = 5 ms of arithmetic per row: 8 rows are compute bound */
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 8), 40e-3, 1e-12);
    /* 40 ms of arithmetic per row by the 8-row figure, but one row took 10.625 ms in all */
    uint64_t q8 = 106250000;
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q8_0, q8, params, 1), 10.625e-3, 1e-12);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q8_0, q8, params, 3), 3 * 10.625e-3, 1e-12);
    /* 64 rows take the sgemm path: 2 x 100 M x 64 / 100 GFLOPS */
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 64), 0.128, 1e-12);
    /* a board whose int8 tiles beat sgemm at any size (x86: sgemm_min_rows 0)
     * keeps the dot path: 64 rows x 5 ms */
    perf.sgemm_min_rows = 0;
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 64), 0.320, 1e-12);
    perf.sgemm_min_rows = 128;
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 64), 0.320, 1e-12);
    /* K-quants use their own figures: Q2_K..Q5_K the q4_k entry, Q6_K q6_k.
     * 100 M weights of Q4_K are 56.25 MB (144 bytes / 256), of Q6_K 82.03 MB */
    perf.mv[SP_MV_Q4_K] = (sp_mv_perf){.gbs = 5, .gflops = 400};
    perf.mv[SP_MV_Q6_K] = (sp_mv_perf){.gbs = 20, .gflops = 400};
    for (sp_dtype t = SP_DTYPE_Q2_K; t <= SP_DTYPE_Q5_K; t++)
        cr_assert_float_eq(sp_cost_matrix_s(&perf, t, bytes, params, 1), 11.25e-3, 1e-12);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q6_K, 82031250, params, 1), 82031250 / 20e9, 1e-12);
    /* IQ4_NL its own: 100 M weights are 56.25 MB (18 bytes / 32) */
    perf.mv[SP_MV_IQ4_NL] = (sp_mv_perf){.gbs = 4.5, .gflops = 400};
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_IQ4_NL, 56250000, params, 1), 12.5e-3, 1e-12);
}

/* Prompt chunks: the dot path's GFLOPS are interpolated in log2(rows)
 * through the one-row figure (the stream), the 8-row one and the optional
 * tile figures at 32 and 128 rows, which a profile writes and reads back. */
Test(cost, prompt_tiles)
{
    sp_thread_perf perf = {.threads = 1, .mem_read_gbs = 10, .sgemm_min_rows = 0};
    perf.mv[SP_MV_Q4_0] = (sp_mv_perf){.gbs = 10, .gflops = 40, .tile_gflops = {80, 160}};
    uint64_t params = 100000000, bytes = 56250000; /* 5.625 ms to stream: 35.56 GFLOPS at one row */
    double one = 2.0 * params / 5.625e-3 / 1e9;
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 1), 5.625e-3, 1e-12);
    /* 4 rows: two thirds of the way from 35.56 to 40 GFLOPS */
    double g4 = one + 2.0 / 3.0 * (40 - one);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 4), 4 * 2.0 * params / (g4 * 1e9), 1e-12);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 8), 40e-3, 1e-12);
    /* 16 rows: halfway between 8 (40) and 32 (80) in log2: 60 GFLOPS */
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 16), 16 * 2e8 / 60e9, 1e-12);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 32), 32 * 2e8 / 80e9, 1e-12);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 128), 128 * 2e8 / 160e9, 1e-12);
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 256), 256 * 2e8 / 160e9, 1e-12);
    /* without tile figures the 8-row one stands for every larger chunk */
    perf.mv[SP_MV_Q4_0].tile_gflops[0] = perf.mv[SP_MV_Q4_0].tile_gflops[1] = 0;
    cr_assert_float_eq(sp_cost_matrix_s(&perf, SP_DTYPE_Q4_0, bytes, params, 128), 128 * 5e-3, 1e-12);

    static sp_profile p, back;
    sp_error err = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/profiles/valid-board.yaml", SP_SOURCE_DIR);
    cr_assert_eq(sp_profile_load(path, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.perf[0].mv[SP_MV_Q8_0].tile_gflops[0], 0, "absent: 0");
    p.perf[0].mv[SP_MV_Q8_0].tile_gflops[0] = 12.5;
    p.perf[0].mv[SP_MV_Q8_0].tile_gflops[1] = 13.25;
    const char *out = sp_test_tmpfile("tiles.yaml");
    cr_assert_eq(sp_profile_write(&p, out, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_profile_load(out, &back, &err), 0, "%s", err.msg);
    cr_assert_float_eq(back.perf[0].mv[SP_MV_Q8_0].tile_gflops[0], 12.5, 1e-9);
    cr_assert_float_eq(back.perf[0].mv[SP_MV_Q8_0].tile_gflops[1], 13.25, 1e-9);
    cr_assert_eq(back.perf[0].mv[SP_MV_Q4_0].tile_gflops[0], 0);
}

/* Attention: a profile's measured attention_gflops (the engine's kernel)
 * prices a row's attention at 4 x q_dim flops per cached position, or the
 * cache's read time where that is longer; a profile without it keeps the
 * estimate from its f16 matvec figures. The key is written and read back. */
Test(cost, attention)
{
    sp_config c = {.q_dim = 2048, .kv_dim = 256};
    sp_thread_perf perf = {.threads = 1, .mem_read_gbs = 10};
    perf.mv[SP_MV_F16] = (sp_mv_perf){.gbs = 5, .gflops = 20};
    /* 500 positions: 4.096 MFLOP, 0.512 MB of cache */
    double old = sp_cost_attention_s(&perf, &c, 500);
    cr_assert_float_eq(old, 4.0 * 2048 * 500 / 20e9, 1e-15, "without the key: the f16 matvec's GFLOPS");
    perf.attention_gflops = 50;
    cr_assert_float_eq(sp_cost_attention_s(&perf, &c, 500), 4.0 * 2048 * 500 / 50e9, 1e-15);
    perf.attention_gflops = 1000; /* faster kernels than the memory: the cache's read time */
    cr_assert_float_eq(sp_cost_attention_s(&perf, &c, 500), 2.0 * 500 * 256 * 2 / 10e9, 1e-15);

    static sp_profile p, back;
    sp_error err = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/profiles/valid-board.yaml", SP_SOURCE_DIR);
    cr_assert_eq(sp_profile_load(path, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.perf[0].attention_gflops, 0, "absent: 0");
    p.perf[1].attention_gflops = 21.5;
    const char *out = sp_test_tmpfile("attention.yaml");
    cr_assert_eq(sp_profile_write(&p, out, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_profile_load(out, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(back.perf[0].attention_gflops, 0);
    cr_assert_float_eq(back.perf[1].attention_gflops, 21.5, 1e-9);

    /* a plan's header names the boards whose attention is still estimated */
    sp_config cfg;
    sp_gguf *g = tiny_model(&cfg, 4);
    static sp_cluster cl;
    int ram[2] = {4096, 4096};
    make_cluster(&cl, 2, ram, 50, 1e-4);
    sp_cost_options o = {.context = 256, .sequences = 1, .prefill_chunk = 8, .wire = SP_WIRE_F16};
    sp_problem pb;
    static sp_solution sol;
    cr_assert_eq(sp_cost_build(&pb, &cl, g, &cfg, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_search(&pb, SP_OBJ_THROUGHPUT, &sol, &err), 0, "%s", err.msg);
    char *h = sp_planner_header(&sol, &cl, &cfg, "tiny", &o);
    cr_assert(strstr(h, "Attention is priced from the f16 matvec figures for"), "%s", h);
    free(h);
    for (int b = 0; b < cl.n_boards; b++) cl.boards[b].profile.perf[0].attention_gflops = 40;
    h = sp_planner_header(&sol, &cl, &cfg, "tiny", &o);
    cr_assert(!strstr(h, "Attention is priced"), "%s", h);
    free(h);
    sp_problem_free(&pb);
    sp_gguf_close(g);
}
