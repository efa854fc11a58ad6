/* bench_report.c - what `shardpipe bench engine` reports once it has
 * measured (cmd_bench.c): the environment the figures were taken in (git
 * commit, compiler, CPU, kernel, BLAS, SIMD level and prefetch distance),
 * every figure as JSON (--json) and the Markdown table on stdout. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/membench.h"
#include "shardpipe/quant.h"

/* ---- environment ---- */

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

void sp_bench_env_collect(bench_env *env)
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

int sp_bench_write_json(const char *path, const bench_opts *o, const bench_env *env, const sp_model *m,
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
        fprintf(f, ",\n      \"decode_weight_gbs\": %.3f, \"decode_vs_bandwidth\": %.4f, \"decode_cpu_busy\": %.4f,\n",
                r->decode_gbs, r->decode_ratio, r->decode_cpu_busy);
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
                       "\"prompt_vs_int8_peak\": %.4f, \"prompt_vs_int8_peak_cpu\": %.4f, \"decode_cpu_busy\": %.4f}",
                    t ? "," : "", x->read_before, x->read_after, x->sgemm_gflops, x->prompt_tps, x->decode_tps,
                    x->prompt_ratio, x->decode_ratio, x->int8_peak, x->prompt_vs_int8, x->prompt_vs_int8_cpu,
                    x->decode_cpu_busy);
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
void sp_bench_print_table(const bench_opts *o, const sp_model *m, uint64_t bytes_per_token, double flops_prompt,
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
