/* cmd_bench.c - `shardpipe bench`: measured speed, written as JSON.
 *
 * `shardpipe bench engine -m MODEL` measures the single-process engine
 * against the board's own ceilings. For each thread count it measures
 *   - memory read (and triad) bandwidth with that many threads,
 *   - cblas_sgemm GFLOPS on the model's matmul shapes (m = prompt rows),
 *   - prompt tok/s: one micro-batch of P seeded random tokens through
 *     sp_embed and sp_forward, then sp_head for the last row (the logits
 *     the first generated token needs: what generate and run compute, and
 *     what llama.cpp's llama-bench "pp" test computes),
 *   - decode tok/s: G more tokens, one row at a time, greedy,
 * and reports the two ratios the engine is judged by:
 *   decode:  tok/s x weight bytes read per token / read bandwidth
 *            (1.0 = weights streamed at the speed of memory)
 *   prompt:  achieved GFLOPS / sgemm GFLOPS on the same shapes
 *            (1.0 = as fast as plain OpenBLAS on f32 weights),
 * and for int8 weights the prompt's int8 multiply-adds per second against
 * the int8 dot-product peak of the cores (sp_int8_peak_gmacs, measured
 * before every run like the other ceilings): per wall second over threads x
 * the peak of one core, and per CPU second the process spent on the prompt
 * over that peak (which leaves out the time a shared host took the cores).
 * Decode also reports the share of the threads' wall time the process got
 * a core for (CPU seconds / (wall seconds x threads), spinning included):
 * near 1 the figures are the engine's; well below 1 a shared host took the
 * cores (sched_autogroup: a niced process in another session still gets
 * its session's fair share) and decode, which joins its threads ~150
 * times per token, waits for a descheduled one. (Other threads of the
 * process count too: OpenBLAS's spin for a while after the sgemm ceiling,
 * which shows in a decode of a few milliseconds, not in one of seconds.)
 * Each figure is the median (tok/s also min and max) of --reps runs after
 * one untimed warm-up run, which also faults the model's pages in. The
 * bandwidth and sgemm ceilings are measured again before every run and each
 * ratio is the median of the runs' own ratios (see run_threads). What is
 * reported (environment, JSON, table) is bench_report.c's.
 *
 * `shardpipe bench memory` is bench_memory.c's. `shardpipe bench SPEC.yaml`
 * (spec-based pipeline runs) will dispatch from cmd_bench() next to them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli_util.h"
#include "commands.h"
#include "shardpipe/membench.h"
#include "shardpipe/model.h"
#include "shardpipe/quant.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

#define BW_PASSES 9 /* bandwidth passes per measurement; the median is kept */

/* Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current
 * RSS, so each thread count's peak excludes the buffers of the thread counts
 * measured before it. Returns 0 on success. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- the model's work per token ---- */

static void add_shape(shape *s, int *ns, const sp_matrix *w)
{
    for (int i = 0; i < *ns; i++)
        if (s[i].n == w->rows && s[i].k == w->cols) {
            s[i].count++;
            return;
        }
    if (*ns == MAX_SHAPES) return; /* a Llama model's layers have 4 */
    s[*ns] = (shape){(int)w->rows, (int)w->cols, 1, 0.0};
    (*ns)++;
}

static int model_shapes(const sp_model *m, shape *s)
{
    int ns = 0;
    for (int l = m->first; l <= m->last; l++) {
        const sp_layer *L = &m->layers[l - m->first];
        const sp_matrix *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) add_shape(s, &ns, ws[i]);
    }
    return ns;
}

/* Floating-point operations of a P-token prompt: 2 per weight per token in
 * the layers' matmuls, the output matrix for the last row only, plus
 * attention: row at position p does q.k and a weighted sum of v over p + 1
 * positions, 4 * head_dim * (p + 1) per head. The layers' shapes are the
 * ones the sgemm ceiling is measured on (the head's single row is 0.02% of
 * the work at TinyLlama's shape). */
static double prompt_flops(const sp_model *m, const shape *s, int ns, int P)
{
    const sp_config *c = &m->cfg;
    double mm = 0.0;
    for (int i = 0; i < ns; i++) mm += 2.0 * s[i].n * s[i].k * s[i].count;
    double head = 2.0 * (double)m->output.rows * m->output.cols;
    double attn = 4.0 * c->n_heads * c->head_dim * ((double)P * (P + 1) / 2) * c->n_layers;
    return mm * P + head + attn;
}

/* int8 multiply-adds of a P-token prompt: the layers' matmuls where their
 * weights take the int8 kernels (Q8_0, Q4_0, the K-quants), and the output
 * matrix's one row; 0 for float weights. */
static int int8_type(sp_dtype t)
{
    return t == SP_DTYPE_Q8_0 || t == SP_DTYPE_Q4_0 || sp_dtype_is_k(t);
}

static double prompt_int8_macs(const sp_model *m, const shape *s, int ns, int P)
{
    if (!int8_type(m->layers[0].wq.type)) return 0.0;
    double mm = 0.0;
    for (int i = 0; i < ns; i++) mm += (double)s[i].n * s[i].k * s[i].count;
    double head = int8_type(m->output.type) ? (double)m->output.rows * m->output.cols : 0.0;
    return mm * P + head;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* sgemm GFLOPS over the whole model: total operations / total time, each
 * shape weighted by its occurrences (the time plain sgemm would take to do
 * all of the model's matmuls once). */
static double weighted_gflops(const shape *s, int ns)
{
    double flops = 0.0, secs = 0.0;
    for (int i = 0; i < ns; i++) {
        double f = 2.0 * s[i].n * s[i].k * s[i].count;
        flops += f;
        secs += f / (s[i].gflops * 1e9);
    }
    return flops / secs / 1e9;
}

/* ---- timing ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stat3 stats(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    stat3 s = {n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[0], v[n - 1]};
    return s;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* One repetition: reset the sequence, prefill the prompt, decode gen
 * tokens. Returns -1 (err filled) if the engine refuses a batch. */
static int one_rep(sp_engine *e, const int *prompt, int P, int G, float *x, float *logits, int *pos,
                   double *t_prompt, double *cpu_prompt, double *t_decode, double *cpu_decode, sp_error *err)
{
    const sp_config *c = &e->model->cfg;
    static const int seq_zero[1] = {0};
    int *seq = sp_calloc((size_t)P, sizeof(int));
    sp_kv_reset(e->kv, 0);
    for (int i = 0; i < P; i++) pos[i] = i;

    double t0 = sp_now(), c0 = cpu_seconds();
    sp_batch b = {P, seq, pos};
    int rc = sp_embed(e, prompt, P, x, err) || sp_forward(e, &b, x, err);
    if (!rc) sp_head(e, x + (size_t)(P - 1) * c->dim, 1, logits);
    *t_prompt = sp_now() - t0;
    *cpu_prompt = cpu_seconds() - c0;
    free(seq);
    if (rc) return -1;

    int next = argmax(logits, c->n_vocab);
    t0 = sp_now();
    c0 = cpu_seconds();
    for (int i = 0; i < G; i++) {
        int p = P + i;
        sp_batch d = {1, seq_zero, &p};
        if (sp_embed(e, &next, 1, x, err) || sp_forward(e, &d, x, err)) return -1;
        sp_head(e, x, 1, logits);
        next = argmax(logits, c->n_vocab);
    }
    *t_decode = sp_now() - t0;
    *cpu_decode = cpu_seconds() - c0;
    return 0;
}

/* Median of n values (sorts them). */
static double median_of(double *v, int n)
{
    return stats(v, n).median;
}

/* The ceilings are measured again just before each timed run, and each
 * run's engine figure is divided by its own ceilings: on a shared machine
 * the load changes from second to second, and a ratio taken across minutes
 * would mostly measure that. The read bandwidth is measured again just
 * after the run, and the decode ratio takes the mean of the two. Where they
 * differ by more than SETTLE_TOLERANCE (bench.h) the host changed speed
 * during the run (seen here: 32 GB/s before and 56 after, two threads), the
 * ratio would pair the run with the wrong ceiling, so the run is done again,
 * at most SETTLE_RETRIES times (then kept, and counted in the JSON). */
#define SETTLE_RETRIES 3
static int run_threads(sp_model *m, const bench_opts *o, int threads, const int *prompt,
                       uint64_t bytes_per_token, double flops_prompt, double int8_macs, run_result *r, sp_error *err)
{
    const sp_config *c = &m->cfg;
    const int R = o->reps;
    memset(r, 0, sizeof *r);
    r->threads = threads;
    r->timed = sp_calloc((size_t)R, sizeof *r->timed);
    r->n_shapes = model_shapes(m, r->shapes);
    sp_engine *e = sp_engine_new(m, threads, o->prompt, 1, o->prompt + o->gen, err);
    if (!e) return -1;

    size_t bw_bytes = (size_t)o->bw_mib << 20;
    float *x = sp_alloc((size_t)o->prompt * c->dim * sizeof(float));
    float *logits = sp_alloc((size_t)c->n_vocab * sizeof(float));
    int *pos = sp_alloc((size_t)o->prompt * sizeof(int));
    /* per timed run: tok/s, ceilings, ratios; then per shape and run */
    double *tp = sp_alloc((size_t)R * sizeof(double)), *td = sp_alloc((size_t)R * sizeof(double));
    double *bw = sp_alloc((size_t)R * sizeof(double)), *sg = sp_alloc((size_t)R * sizeof(double));
    double *rp = sp_alloc((size_t)R * sizeof(double)), *rd = sp_alloc((size_t)R * sizeof(double));
    double *shape_g = sp_alloc((size_t)R * MAX_SHAPES * sizeof(double));
    double *pk = sp_alloc((size_t)R * sizeof(double)), *ri = sp_alloc((size_t)R * sizeof(double));
    double *ric = sp_alloc((size_t)R * sizeof(double)), *busy = sp_alloc((size_t)R * sizeof(double));
    r->int8_macs = int8_macs;
    int rc = 0, retries = 0;
    for (int rep = -1; rep < R && !rc; rep++) {
        if (rep >= 0) {
            fprintf(stderr, "threads %d: run %d/%d: memory bandwidth, sgemm, engine...\n", threads, rep + 1, R);
            bw[rep] = sp_membw_read_gbs(e->mm.pool, bw_bytes, BW_PASSES);
            for (int i = 0; i < r->n_shapes; i++) {
                r->shapes[i].gflops = sp_sgemm_gflops(o->prompt, r->shapes[i].n, r->shapes[i].k, threads, 1);
                shape_g[i * R + rep] = r->shapes[i].gflops;
            }
            sg[rep] = weighted_gflops(r->shapes, r->n_shapes);
            pk[rep] = int8_macs > 0.0 ? sp_int8_peak_gmacs(3) : 0.0;
        } else {
            fprintf(stderr, "threads %d: warm-up run...\n", threads);
        }
        /* Peak RSS: the warm-up run's, which comes before any ceiling
         * was measured; the reset drops an earlier thread count's. Later
         * runs use the same memory, but malloc may keep the sgemm buffers
         * measured in between resident. */
        if (rep < 0) r->peak_rss_reset = reset_peak_rss() == 0;
        double a = 0.0, b = 0.0, cpu = 0.0, cpu_b = 0.0;
        rc = one_rep(e, prompt, o->prompt, o->gen, x, logits, pos, &a, &cpu, &b, &cpu_b, err);
        if (rep < 0) r->peak_rss = sp_peak_rss_bytes();
        if (rep >= 0 && !rc) {
            double after = sp_membw_read_gbs(e->mm.pool, bw_bytes, BW_PASSES), before = bw[rep];
            double hi = after > before ? after : before, lo = after > before ? before : after;
            if (hi - lo > SETTLE_TOLERANCE * hi && retries < SETTLE_RETRIES) {
                fprintf(stderr, "threads %d: run %d: read bandwidth %.1f GB/s before, %.1f after: again\n", threads,
                        rep + 1, before, after);
                retries++;
                r->unsettled++;
                rep--;
                continue;
            }
            retries = 0;
            bw[rep] = 0.5 * (before + after);
            tp[rep] = o->prompt / a;
            td[rep] = o->gen / b;
            rp[rep] = flops_prompt / a / 1e9 / sg[rep];
            rd[rep] = td[rep] * (double)bytes_per_token / 1e9 / bw[rep];
            ri[rep] = pk[rep] > 0.0 ? int8_macs / a / 1e9 / (pk[rep] * threads) : 0.0;
            ric[rep] = pk[rep] > 0.0 && cpu > 0.0 ? int8_macs / cpu / 1e9 / pk[rep] : 0.0;
            busy[rep] = cpu_b / (b * threads);
            r->timed[rep] = (struct timed_run){before, after, sg[rep], tp[rep], td[rep], rp[rep], rd[rep],
                                               pk[rep], ri[rep], ric[rep], busy[rep]};
        }
    }
    if (!rc) {
        r->prompt_tps = stats(tp, R);
        r->decode_tps = stats(td, R);
        r->read_gbs = median_of(bw, R);
        r->sgemm_gflops = median_of(sg, R);
        for (int i = 0; i < r->n_shapes; i++) r->shapes[i].gflops = median_of(shape_g + i * R, R);
        r->prompt_gflops = flops_prompt / o->prompt * r->prompt_tps.median / 1e9;
        r->decode_gbs = r->decode_tps.median * (double)bytes_per_token / 1e9;
        r->prompt_ratio = median_of(rp, R);
        r->decode_ratio = median_of(rd, R);
        r->int8_peak = median_of(pk, R);
        r->prompt_int8_gmacs = int8_macs / o->prompt * r->prompt_tps.median / 1e9;
        r->prompt_vs_int8 = median_of(ri, R);
        r->prompt_vs_int8_cpu = median_of(ric, R);
        r->decode_cpu_busy = median_of(busy, R);
        fprintf(stderr, "threads %d: STREAM triad...\n", threads);
        r->triad_gbs = sp_membw_triad_gbs(e->mm.pool, bw_bytes, BW_PASSES);
    }
    free(x); free(logits); free(pos); free(tp); free(td); free(bw); free(sg); free(rp); free(rd); free(shape_g);
    free(pk); free(ri); free(ric); free(busy);
    sp_engine_free(e);
    return rc ? -1 : 0;
}

/* ---- bench engine ---- */

static void usage_engine(FILE *f)
{
    fprintf(f,
            "usage: shardpipe bench engine -m MODEL.gguf [options]\n"
            "  -m, --model PATH       GGUF llama model (e.g. from `shardpipe synth --shape tinyllama-1.1b`)\n"
            "      --threads LIST     comma-separated thread counts (default 1)\n"
            "      --prompt-tokens N  prompt length, one micro-batch (default 128)\n"
            "      --gen N            tokens decoded one at a time after the prompt (default 64)\n"
            "      --reps N           timed runs per figure; median, min and max are shown (default 5)\n"
            "      --seed S           seed of the random prompt tokens (default 1)\n"
            "      --bw-mib N         memory bandwidth buffer in MiB (default 512; >> last-level cache)\n"
            "      --json FILE        also write every figure and the environment as JSON\n");
}

int sp_bench_parse_threads(const char *s, bench_opts *o)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_threads = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_threads == MAX_THREAD_COUNTS) {
            fprintf(stderr, "shardpipe bench: --threads takes at most %d counts\n", MAX_THREAD_COUNTS);
            return -1;
        }
        if (sp_cli_int("bench", "--threads", t, 1, SP_MAX_THREADS, &o->threads[o->n_threads])) return -1;
        o->n_threads++;
    }
    if (o->n_threads == 0) {
        fprintf(stderr, "shardpipe bench: --threads expects a list like 1,2, got '%s'\n", s);
        return -1;
    }
    return 0;
}

static int bench_engine(int argc, char **argv)
{
    bench_opts o = {.model = NULL, .threads = {1}, .n_threads = 1, .prompt = 128, .gen = 64, .reps = 5,
                    .seed = 1, .bw_mib = 512, .json = NULL};
    enum { O_THREADS = 256, O_PROMPT, O_GEN, O_REPS, O_SEED, O_BW, O_JSON };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, O_THREADS},
        {"prompt-tokens", required_argument, 0, O_PROMPT}, {"gen", required_argument, 0, O_GEN},
        {"reps", required_argument, 0, O_REPS}, {"seed", required_argument, 0, O_SEED},
        {"bw-mib", required_argument, 0, O_BW}, {"json", required_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case O_THREADS: if (sp_bench_parse_threads(optarg, &o)) return 2; break;
        case O_PROMPT: if (sp_cli_int("bench", "--prompt-tokens", optarg, 1, 1 << 16, &o.prompt)) return 2; break;
        case O_GEN: if (sp_cli_int("bench", "--gen", optarg, 1, 1 << 20, &o.gen)) return 2; break;
        case O_REPS: if (sp_cli_int("bench", "--reps", optarg, 1, 1000, &o.reps)) return 2; break;
        case O_SEED: if (sp_cli_u64("bench", "--seed", optarg, &o.seed)) return 2; break;
        case O_BW: if (sp_cli_int("bench", "--bw-mib", optarg, 1, 1 << 20, &o.bw_mib)) return 2; break;
        case O_JSON: o.json = optarg; break;
        case 'h': usage_engine(stdout); return 0;
        default: usage_engine(stderr); return 2;
        }
    }
    if (!o.model || optind < argc) {
        fprintf(stderr, "shardpipe bench engine: %s\n",
                !o.model ? "-m MODEL is required" : "unexpected argument; options only");
        usage_engine(stderr);
        return 2;
    }

    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(o.model, &err);
    if (!m) return sp_cli_fail("bench", &err);
    const sp_config *c = &m->cfg;
    if (o.prompt + o.gen > c->ctx_train) {
        fprintf(stderr, "shardpipe bench: --prompt-tokens %d + --gen %d exceed the model's context of %d "
                        "positions; lower them\n", o.prompt, o.gen, c->ctx_train);
        sp_model_close(m);
        return 2;
    }
    if (sp_model_load_weights(m, &err)) {
        sp_model_close(m);
        return sp_cli_fail("bench", &err);
    }

    /* decode reads every weight once per token, but only one row of the
     * embedding table */
    uint64_t bytes_per_token =
        sp_shard_weight_bytes(m->gguf, c, 0, c->n_layers - 1, false, true) + m->tok_embd.row_bytes;
    shape shapes[MAX_SHAPES];
    int ns = model_shapes(m, shapes);
    double flops = prompt_flops(m, shapes, ns, o.prompt);
    double int8_macs = prompt_int8_macs(m, shapes, ns, o.prompt);

    int *prompt = sp_alloc((size_t)o.prompt * sizeof(int));
    sp_rng rng;
    sp_rng_seed(&rng, o.seed);
    for (int i = 0; i < o.prompt; i++) prompt[i] = (int)(sp_rng_u64(&rng) % (uint64_t)c->n_vocab);

    bench_env env;
    sp_bench_env_collect(&env);
    run_result runs[MAX_THREAD_COUNTS];
    int rc = 0, started = 0;
    for (int i = 0; i < o.n_threads && !rc; i++, started++)
        rc = run_threads(m, &o, o.threads[i], prompt, bytes_per_token, flops, int8_macs, &runs[i], &err);
    if (rc) {
        sp_cli_fail("bench", &err);
    } else {
        sp_bench_print_table(&o, m, bytes_per_token, flops, runs, o.n_threads);
        if (o.json && sp_bench_write_json(o.json, &o, &env, m, bytes_per_token, flops, runs, o.n_threads, &err)) {
            sp_cli_fail("bench", &err);
            rc = -1;
        }
    }
    for (int i = 0; i < started; i++) free(runs[i].timed);
    free(prompt);
    sp_model_close(m);
    return rc ? 1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe bench engine -m MODEL.gguf [options]   (see shardpipe bench engine --help)\n"
            "       shardpipe bench memory [options]             (see shardpipe bench memory --help)\n"
            "  engine   single-process engine speed against this board's memory bandwidth and sgemm\n"
            "  memory   this machine's memory read and triad bandwidth by thread count\n");
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "engine")) return bench_engine(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "memory")) return sp_bench_memory(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2)
        fprintf(stderr, "shardpipe bench: '%s' is not a benchmark; spec-based runs (SPEC.yaml) are not "
                        "implemented in this version\n", argv[1]);
    usage(stderr);
    return 2;
}
