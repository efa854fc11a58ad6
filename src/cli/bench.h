/* bench.h - what cmd_bench.c (the measuring) shares with bench_report.c
 * (the environment, the JSON file and the table); not public. */
#ifndef SHARDPIPE_CLI_BENCH_H
#define SHARDPIPE_CLI_BENCH_H

#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/model.h"

#define MAX_THREAD_COUNTS 16
#define MAX_SHAPES 16
/* A timed run whose read bandwidth before and after differ by more than
 * this share of the higher is done again (run_threads in cmd_bench.c). */
#define SETTLE_TOLERANCE 0.15

/* The machine and build a run was measured on. */
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

/* A distinct matmul shape (n outputs, k inputs) and how often it occurs. */
typedef struct shape {
    int n, k, count;
    double gflops;  /* sgemm with m = prompt rows */
} shape;

typedef struct stat3 {
    double median, min, max;
} stat3;

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
    double decode_cpu_busy; /* CPU s / (wall s x threads) during decode */
    uint64_t peak_rss;
    int peak_rss_reset;
    /* each timed run in the order it ran (the medians above sort copies):
     * the read bandwidth just before and after it, the sgemm ceiling just
     * before it, its tok/s and its two ratios */
    struct timed_run {
        double read_before, read_after, sgemm_gflops, prompt_tps, decode_tps, prompt_ratio, decode_ratio;
        double int8_peak, prompt_vs_int8, prompt_vs_int8_cpu, decode_cpu_busy;
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

/* Parses --threads' comma-separated list into o->threads (cmd_bench.c);
 * -1 after saying why. */
int sp_bench_parse_threads(const char *s, bench_opts *o);

/* `shardpipe bench memory` (bench_memory.c). */
int sp_bench_memory(int argc, char **argv);

void sp_bench_env_collect(bench_env *env);

/* Every figure and the environment as JSON, written atomically to path. */
int sp_bench_write_json(const char *path, const bench_opts *o, const bench_env *env, const sp_model *m,
                        uint64_t bytes_per_token, double flops_prompt, const run_result *runs, int n_runs,
                        sp_error *err);

/* The runs as a Markdown table on stdout, with the ceilings' notes. */
void sp_bench_print_table(const bench_opts *o, const sp_model *m, uint64_t bytes_per_token, double flops_prompt,
                          const run_result *runs, int n_runs);

#endif
