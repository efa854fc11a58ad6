/* bench_memory.c - `shardpipe bench memory`: this machine's memory read and
 * triad bandwidth with 1, 2, ... threads, on its own.
 *
 * The same measurement `bench engine` and `shardpipe profile` take as the
 * ceiling of decode (membench.h), without a model: for a board whose
 * decode seems slow, and for the benchmarks that run several emulated
 * boards on one host, whose ranks then share this bandwidth
 * (benchmarks/prefill.sh measures it beside every batched round and
 * reports the decode that all ranks streaming their weights at once
 * could reach with it). Each figure is the median of --passes timed
 * passes over a buffer of --mib MiB, in GB/s (1e9 bytes per second). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli_util.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/membench.h"
#include "shardpipe/threads.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe bench memory [options]\n"
            "      --threads LIST     comma-separated thread counts (default 1)\n"
            "      --mib N            buffer in MiB (default 512; >> last-level cache)\n"
            "      --passes N         timed passes per figure; the median is kept (default 9)\n"
            "      --json FILE        also write the figures as JSON\n");
}

int sp_bench_memory(int argc, char **argv)
{
    bench_opts o = {.threads = {1}, .n_threads = 1, .bw_mib = 512};
    int passes = 9;
    const char *json = NULL;
    enum { O_THREADS = 256, O_MIB, O_PASSES, O_JSON };
    static const struct option opts[] = {
        {"threads", required_argument, 0, O_THREADS}, {"mib", required_argument, 0, O_MIB},
        {"passes", required_argument, 0, O_PASSES},   {"json", required_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_THREADS: if (sp_bench_parse_threads(optarg, &o)) return 2; break;
        case O_MIB: if (sp_cli_int("bench", "--mib", optarg, 1, 1 << 20, &o.bw_mib)) return 2; break;
        case O_PASSES: if (sp_cli_int("bench", "--passes", optarg, 1, 1000, &passes)) return 2; break;
        case O_JSON: json = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shardpipe bench memory: unexpected argument '%s'; options only\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    double read[MAX_THREAD_COUNTS], triad[MAX_THREAD_COUNTS];
    const size_t bytes = (size_t)o.bw_mib << 20;
    for (int i = 0; i < o.n_threads; i++) {
        sp_pool *pool = sp_pool_new(o.threads[i]);
        read[i] = sp_membw_read_gbs(pool, bytes, passes);
        triad[i] = sp_membw_triad_gbs(pool, bytes, passes);
        sp_pool_free(pool);
        printf("threads %d: read %.2f GB/s, triad %.2f GB/s\n", o.threads[i], read[i], triad[i]);
    }
    if (!json) return 0;

    sp_error err = {{0}};
    sp_atomic_file out;
    if (sp_atomic_open(&out, json, "the benchmark results", &err)) return sp_cli_fail("bench", &err);
    fprintf(out.f, "{\"benchmark\": \"memory\", \"buffer_bytes\": %zu, \"passes\": %d, \"runs\": [", bytes, passes);
    for (int i = 0; i < o.n_threads; i++)
        fprintf(out.f, "%s{\"threads\": %d, \"read_gbs\": %.3f, \"triad_gbs\": %.3f}", i ? ", " : "", o.threads[i],
                read[i], triad[i]);
    fprintf(out.f, "]}\n");
    if (sp_atomic_commit(&out, true, &err)) return sp_cli_fail("bench", &err);
    return 0;
}
