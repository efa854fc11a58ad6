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
 * Each figure is the median (tok/s also min and max) of --reps runs after
 * one untimed warm-up run, which also faults the model's pages in. The
 * bandwidth and sgemm ceilings are measured again before every run and each
 * ratio is the median of the runs' own ratios (see run_threads).
 *
 * `shardpipe bench SPEC.yaml` (spec-based pipeline runs) will dispatch from
 * cmd_bench() next to "engine". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/membench.h"
#include "shardpipe/model.h"
#include "shardpipe/quant.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

#define MAX_THREAD_COUNTS 16
#define MAX_SHAPES 16
#define BW_PASSES 9 /* bandwidth passes per measurement; the median is kept */

/* ---- environment ---- */

typedef struct bench_env {
    char git_commit[64];
    int git_dirty;        /* -1 unknown */
    char compiler[128];
    char cpu[256];
    int cores;
    char kernel[256];
    const char *blas;
    const char *simd;
    int prefetch;         /* bytes ahead the int8 kernels prefetch */
} bench_env;

/* First line of a shell command's output, trailing newline removed; "" if
 * it fails or prints nothing. */
static void first_line_of(const char *cmd, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (!fgets(out, (int)cap, p)) out[0] = '\0';
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

/* "model name" on x86, "Model" (e.g. Raspberry Pi) or "CPU part" on arm. */
static void cpu_model(char *out, size_t cap)
{
    static const char *const keys[] = {"model name", "Model", "Hardware", "CPU part"};
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    int best = (int)(sizeof keys / sizeof keys[0]);
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        for (int i = 0; i < best; i++) {
            if (strncmp(line, keys[i], strlen(keys[i]))) continue;
            char *v = colon + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, cap, "%s", v);
            best = i;
            break;
        }
    }
    fclose(f);
}

static void env_collect(bench_env *env)
{
    first_line_of("git rev-parse HEAD 2>/dev/null", env->git_commit, sizeof env->git_commit);
    char dirty[256];
    env->git_dirty = -1;
    if (env->git_commit[0]) {
        first_line_of("git status --porcelain --untracked-files=no 2>/dev/null", dirty, sizeof dirty);
        env->git_dirty = dirty[0] != '\0';
    }
#if defined(__clang__)
    snprintf(env->compiler, sizeof env->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(env->compiler, sizeof env->compiler, "gcc %s", __VERSION__);
#else
    snprintf(env->compiler, sizeof env->compiler, "unknown");
#endif
    cpu_model(env->cpu, sizeof env->cpu);
    env->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(env->kernel, sizeof env->kernel, "%s %s %s", u.sysname, u.release, u.machine);
    else
        snprintf(env->kernel, sizeof env->kernel, "unknown");
    env->blas = sp_blas_config();
    env->simd = sp_simd_name();
    env->prefetch = sp_simd_prefetch();
}

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

/* A distinct matmul shape (n outputs, k inputs) and how often it occurs. */
typedef struct shape {
    int n, k, count;
    double gflops;  /* sgemm with m = prompt rows */
} shape;

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

typedef struct stat3 {
    double median, min, max;
} stat3;

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

typedef struct run_result {
    int threads;
    double read_gbs, triad_gbs;
    shape shapes[MAX_SHAPES];
    int n_shapes;
    double sgemm_gflops;
    stat3 prompt_tps, decode_tps;
    double prompt_gflops, prompt_ratio;
    double decode_gbs, decode_ratio;
    double int8_macs, int8_peak;   /* per prompt; GMAC/s of one core */
    double prompt_int8_gmacs, prompt_vs_int8, prompt_vs_int8_cpu;
    uint64_t peak_rss;
    int peak_rss_reset;
    /* each timed run in the order it ran (the medians above sort copies):
     * the read bandwidth just before and after it, the sgemm ceiling just
     * before it, its tok/s and its two ratios */
    struct timed_run {
        double read_before, read_after, sgemm_gflops, prompt_tps, decode_tps, prompt_ratio, decode_ratio;
        double int8_peak, prompt_vs_int8, prompt_vs_int8_cpu;
    } *timed; /* reps of them */
    int unsettled; /* runs done again: the read bandwidth moved during them */
} run_result;

typedef struct bench_opts {
    const char *model;
    int threads[MAX_THREAD_COUNTS], n_threads;
    int prompt, gen, reps;
    uint64_t seed;
    int bw_mib;
    const char *json;
} bench_opts;

/* One repetition: reset the sequence, prefill the prompt, decode gen
 * tokens. Returns -1 (err filled) if the engine refuses a batch. */
static int one_rep(sp_engine *e, const int *prompt, int P, int G, float *x, float *logits, int *pos,
                   double *t_prompt, double *cpu_prompt, double *t_decode, sp_error *err)
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
    for (int i = 0; i < G; i++) {
        int p = P + i;
        sp_batch d = {1, seq_zero, &p};
        if (sp_embed(e, &next, 1, x, err) || sp_forward(e, &d, x, err)) return -1;
        sp_head(e, x, 1, logits);
        next = argmax(logits, c->n_vocab);
    }
    *t_decode = sp_now() - t0;
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
 * differ by more than SETTLE_TOLERANCE the host changed speed during the
 * run (seen here: 32 GB/s before and 56 after, two threads), the ratio
 * would pair the run with the wrong ceiling, so the run is done again, at
 * most SETTLE_RETRIES times (then kept, and counted in the JSON). */
#define SETTLE_TOLERANCE 0.15
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
    double *ric = sp_alloc((size_t)R * sizeof(double));
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
        double a = 0.0, b = 0.0, cpu = 0.0;
        rc = one_rep(e, prompt, o->prompt, o->gen, x, logits, pos, &a, &cpu, &b, err);
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
            r->timed[rep] = (struct timed_run){before, after, sg[rep], tp[rep], td[rep], rp[rep], rd[rep],
                                               pk[rep], ri[rep], ric[rep]};
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
        fprintf(stderr, "threads %d: STREAM triad...\n", threads);
        r->triad_gbs = sp_membw_triad_gbs(e->mm.pool, bw_bytes, BW_PASSES);
    }
    free(x); free(logits); free(pos); free(tp); free(td); free(bw); free(sg); free(rp); free(rd); free(shape_g);
    free(pk); free(ri); free(ric);
    sp_engine_free(e);
    return rc ? -1 : 0;
}

/* ---- output ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_stat(FILE *f, const char *name, stat3 s)
{
    fprintf(f, "\"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}", name, s.median, s.min, s.max);
}

static int write_json(const char *path, const bench_opts *o, const bench_env *env, const sp_model *m,
                      uint64_t bytes_per_token, double flops_prompt, const run_result *runs, int n_runs,
                      sp_error *err)
{
    sp_atomic_file out; /* every write checked at the commit, like every output */
    if (sp_atomic_open(&out, path, "the benchmark results", err)) return -1;
    FILE *f = out.f;
    const sp_config *c = &m->cfg;
    fprintf(f, "{\n  \"benchmark\": \"engine\",\n  \"environment\": {\n    \"git_commit\": ");
    json_str(f, env->git_commit);
    fprintf(f, ",\n    \"git_dirty\": %s,\n    \"compiler\": ", env->git_dirty < 0 ? "null" : env->git_dirty ? "true" : "false");
    json_str(f, env->compiler);
    fprintf(f, ",\n    \"cpu\": ");
    json_str(f, env->cpu);
    fprintf(f, ",\n    \"cores\": %d,\n    \"kernel\": ", env->cores);
    json_str(f, env->kernel);
    fprintf(f, ",\n    \"openblas\": ");
    json_str(f, env->blas);
    fprintf(f, ",\n    \"simd\": ");
    json_str(f, env->simd);
    fprintf(f, ",\n    \"prefetch_bytes\": %d", env->prefetch);
    fprintf(f, "\n  },\n  \"model\": {\n    \"path\": ");
    json_str(f, o->model);
    fprintf(f, ",\n    \"layer_type\": \"%s\",\n    \"output_type\": \"%s\",\n", sp_dtype_name(m->layers[0].wq.type),
            sp_dtype_name(m->output.type));
    fprintf(f, "    \"weights_layout\": \"%s\",\n", sp_layout_name(sp_model_weights_layout(m)));
    fprintf(f, "    \"n_layers\": %d, \"dim\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"ffn_dim\": %d, "
               "\"n_vocab\": %d,\n", c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->ffn_dim, c->n_vocab);
    fprintf(f, "    \"weight_bytes_per_decode_token\": %llu,\n    \"flops_per_prompt_token\": %.0f\n  },\n",
            (unsigned long long)bytes_per_token, flops_prompt / o->prompt);
    fprintf(f, "  \"settings\": {\"prompt_tokens\": %d, \"gen_tokens\": %d, \"reps\": %d, \"seed\": %llu, "
               "\"bandwidth_buffer_bytes\": %llu},\n", o->prompt, o->gen, o->reps, (unsigned long long)o->seed,
            (unsigned long long)o->bw_mib << 20);
    fprintf(f, "  \"runs\": [\n");
    for (int i = 0; i < n_runs; i++) {
        const run_result *r = &runs[i];
        fprintf(f, "    {\n      \"threads\": %d,\n", r->threads);
        fprintf(f, "      \"mem_read_gbs\": %.3f, \"mem_triad_gbs\": %.3f,\n", r->read_gbs, r->triad_gbs);
        fprintf(f, "      \"sgemm_shapes\": [");
        for (int s = 0; s < r->n_shapes; s++)
            fprintf(f, "%s{\"m\": %d, \"n\": %d, \"k\": %d, \"count\": %d, \"gflops\": %.3f}", s ? ", " : "",
                    o->prompt, r->shapes[s].n, r->shapes[s].k, r->shapes[s].count, r->shapes[s].gflops);
        fprintf(f, "],\n      \"sgemm_gflops\": %.3f,\n      ", r->sgemm_gflops);
        json_stat(f, "prompt_tok_s", r->prompt_tps);
        fprintf(f, ",\n      \"prompt_gflops\": %.3f, \"prompt_vs_sgemm\": %.4f,\n      ", r->prompt_gflops,
                r->prompt_ratio);
        json_stat(f, "decode_tok_s", r->decode_tps);
        fprintf(f, ",\n      \"decode_weight_gbs\": %.3f, \"decode_vs_bandwidth\": %.4f,\n", r->decode_gbs,
                r->decode_ratio);
        fprintf(f, "      \"int8_instruction\": \"%s\", \"int8_macs_per_prompt_token\": %.0f, "
                   "\"int8_peak_gmacs_per_core\": %.3f,\n      \"prompt_int8_gmacs\": %.3f, "
                   "\"prompt_vs_int8_peak\": %.4f, \"prompt_vs_int8_peak_cpu\": %.4f,\n",
                sp_int8_peak_instr(), r->int8_macs / o->prompt, r->int8_peak, r->prompt_int8_gmacs,
                r->prompt_vs_int8, r->prompt_vs_int8_cpu);
        fprintf(f, "      \"timed_runs\": [");
        for (int t = 0; t < o->reps; t++) {
            const struct timed_run *x = &r->timed[t];
            fprintf(f, "%s\n        {\"mem_read_gbs_before\": %.3f, \"mem_read_gbs_after\": %.3f, "
                       "\"sgemm_gflops\": %.3f, \"prompt_tok_s\": %.3f, \"decode_tok_s\": %.3f, "
                       "\"prompt_vs_sgemm\": %.4f, \"decode_vs_bandwidth\": %.4f, \"int8_peak_gmacs_per_core\": %.3f, "
                       "\"prompt_vs_int8_peak\": %.4f, \"prompt_vs_int8_peak_cpu\": %.4f}",
                    t ? "," : "", x->read_before, x->read_after, x->sgemm_gflops, x->prompt_tps, x->decode_tps,
                    x->prompt_ratio, x->decode_ratio, x->int8_peak, x->prompt_vs_int8, x->prompt_vs_int8_cpu);
        }
        fprintf(f, "],\n      \"unsettled_runs_repeated\": %d,\n", r->unsettled);
        fprintf(f, "      \"peak_rss_bytes\": %llu, \"peak_rss_reset\": %s\n    }%s\n",
                (unsigned long long)r->peak_rss, r->peak_rss_reset ? "true" : "false", i + 1 < n_runs ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return sp_atomic_commit(&out, true, err);
}

static int unsettled_total(const run_result *runs, int n_runs)
{
    int t = 0;
    for (int i = 0; i < n_runs; i++) t += runs[i].unsettled;
    return t;
}

/* A Markdown table (readable as is, pastes into a report); benchmarks/
 * engine.sh joins the rows of several runs under one header. */
static void print_table(const bench_opts *o, const sp_model *m, uint64_t bytes_per_token, double flops_prompt,
                        const run_result *runs, int n_runs)
{
    const sp_config *c = &m->cfg;
    printf("model %s: %s layers, %s output, %d layers, dim %d, ffn %d, vocab %d\n", o->model,
           sp_dtype_name(m->layers[0].wq.type), sp_dtype_name(m->output.type), c->n_layers, c->dim, c->ffn_dim,
           c->n_vocab);
    printf("weights read per decode token %.1f MB, %.2f GFLOP per prompt token; prompt %d tokens, decode %d "
           "tokens; median (min-max) of %d runs\n\n",
           bytes_per_token / 1e6, flops_prompt / o->prompt / 1e9, o->prompt, o->gen, o->reps);
    printf("| model | threads | decode tok/s | weights GB/s | read GB/s | decode / bw | prompt tok/s "
           "| prompt GFLOPS | sgemm GFLOPS | prompt / sgemm | peak RSS MiB |\n");
    printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < n_runs; i++) {
        const run_result *r = &runs[i];
        printf("| %s | %d | %.2f (%.2f-%.2f) | %.2f | %.2f | %.1f%% | %.2f (%.2f-%.2f) | %.1f | %.1f | %.1f%% "
               "| %.1f |\n",
               sp_dtype_name(m->layers[0].wq.type), r->threads, r->decode_tps.median, r->decode_tps.min,
               r->decode_tps.max, r->decode_gbs, r->read_gbs, 100.0 * r->decode_ratio, r->prompt_tps.median,
               r->prompt_tps.min, r->prompt_tps.max, r->prompt_gflops, r->sgemm_gflops, 100.0 * r->prompt_ratio,
               r->peak_rss / 1048576.0);
    }
    printf("\n(read GB/s: a %d MiB buffer summed by the same threads, just before and after each run; the "
           "ratios are medians of each run's figure over its own ceilings (decode: the mean of the two reads; a run "
           "whose reads differ by more than %.0f%% is done again: %d such); STREAM triad:", o->bw_mib,
           100.0 * SETTLE_TOLERANCE, unsettled_total(runs, n_runs));
    for (int i = 0; i < n_runs; i++) printf(" %.2f", runs[i].triad_gbs);
    printf(" GB/s)\n");
    for (int i = 0; i < n_runs; i++) {
        const run_result *r = &runs[i];
        if (r->int8_peak <= 0.0) continue;
        printf("int8 peak (%s loop): %.1f GMAC/s per core; %d thread(s): prompt int8 matmuls %.1f GMAC/s = %.1f%% of "
               "%d x the peak (%.1f%% per CPU second)\n",
               sp_int8_peak_instr(), r->int8_peak, r->threads, r->prompt_int8_gmacs, 100.0 * r->prompt_vs_int8,
               r->threads, 100.0 * r->prompt_vs_int8_cpu);
    }
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

static int parse_threads(const char *s, bench_opts *o)
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
        case O_THREADS: if (parse_threads(optarg, &o)) return 2; break;
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
    env_collect(&env);
    run_result runs[MAX_THREAD_COUNTS];
    int rc = 0, started = 0;
    for (int i = 0; i < o.n_threads && !rc; i++, started++)
        rc = run_threads(m, &o, o.threads[i], prompt, bytes_per_token, flops, int8_macs, &runs[i], &err);
    if (rc) {
        sp_cli_fail("bench", &err);
    } else {
        print_table(&o, m, bytes_per_token, flops, runs, o.n_threads);
        if (o.json && write_json(o.json, &o, &env, m, bytes_per_token, flops, runs, o.n_threads, &err)) {
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
            "  engine   single-process engine speed against this board's memory bandwidth and sgemm\n");
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "engine")) return bench_engine(argc - 1, argv + 1);
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
