/* profile.h - what the planner knows about the hardware: one profile per
 * board (how fast its memory and kernels are, how much RAM it has) and one
 * cluster file naming the boards of a pipeline and the links between them.
 * Schemas: docs/profile-format.md.
 *
 * Both are YAML. The loaders walk the document by hand, like the plan
 * loader, so that every problem - syntax, an unknown key, a wrong type, an
 * implausible value such as a bandwidth of 0 or of 10 TB/s - is reported
 * once at FILE:LINE:COL with the fix. */
#ifndef SHARDPIPE_PROFILE_H
#define SHARDPIPE_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/error.h"

/* Weight types whose matrix-vector throughput a profile records. */
typedef enum sp_mv_type {
    SP_MV_Q8_0 = 0,
    SP_MV_Q4_0 = 1,
    SP_MV_F16 = 2,
    SP_MV_F32 = 3,
    SP_MV_Q4_K = 4,   /* also stands for Q2_K, Q3_K and Q5_K (the same kernel shape) */
    SP_MV_Q6_K = 5,
    SP_MV_IQ4_NL = 6,
    SP_MV_COUNT = 7,
} sp_mv_type;
/* The K and IQ4_NL entries are optional in a profile file (profiles
 * measured before them): absent, they take the q4_0 figures. */
#define SP_MV_FIRST_OPTIONAL SP_MV_Q4_K

const char *sp_mv_name(sp_mv_type t); /* "q8_0", "q4_0", "f16", "f32", "q4_k", "q6_k", "iq4_nl" */

/* Micro-batch row counts at which sgemm throughput is recorded. */
#define SP_SGEMM_NROWS 4
extern const int sp_sgemm_rows[SP_SGEMM_NROWS]; /* 1, 8, 32, 128 */

#define SP_PROFILE_MAX_THREADS 16 /* thread-count entries per profile */

/* Row counts of the larger prompt tiles a profile may record. */
#define SP_TILE_NROWS 2
extern const int sp_tile_rows[SP_TILE_NROWS]; /* 32, 128 */

/* Matrix-vector throughput of one weight type:
 *   gbs    GB/s of weights streamed by the decode (dot) path for one row;
 *   gflops GFLOPS of the same kernels when the weights are reused across
 *          8 rows of a micro-batch (their arithmetic ceiling);
 *   tile_gflops  optional: the same at sp_tile_rows rows (prompt chunks),
 *          where the tiles reuse each unpacked weight row more; 0 when the
 *          profile does not give them (the 8-row figure then stands). */
typedef struct sp_mv_perf {
    double gbs, gflops;
    double tile_gflops[SP_TILE_NROWS];
} sp_mv_perf;

/* Everything measured with a given number of kernel threads. */
typedef struct sp_thread_perf {
    int threads;
    double mem_read_gbs;                    /* memory read bandwidth */
    sp_mv_perf mv[SP_MV_COUNT];
    double sgemm_gflops[SP_SGEMM_NROWS];    /* at sp_sgemm_rows[i] rows */
    int sgemm_min_rows;     /* rows from which the engine takes sgemm for
                               quantized weights; 0: never (int8 tiles win);
                               SP_PROFILE_DEFAULT_SGEMM_MIN_ROWS when a
                               profile does not say */
    double attention_gflops; /* the engine's attention over the fp16 KV cache
                               (sp_attn_group_f16), 4 x q_dim flops per row
                               and cached position; 0 when a profile does
                               not give it (the cost model then estimates it
                               from the f16 matvec figures) */
} sp_thread_perf;

#define SP_PROFILE_DEFAULT_SGEMM_MIN_ROWS 64

typedef struct sp_profile {
    char path[1024];        /* the file, or the cluster file for an inline one */
    char name[64];
    bool measured;          /* source: measured | published */
    char origin[512];       /* how / where the figures were obtained */
    char date[32];          /* YYYY-MM-DD */
    char cpu[128];
    int cores;
    char arch[32];          /* x86_64, aarch64, ... */
    char simd[256];         /* features, space separated */
    uint64_t ram_total, ram_available; /* bytes */
    int n_perf;             /* entries, ascending by threads */
    sp_thread_perf perf[SP_PROFILE_MAX_THREADS];
} sp_profile;

int sp_profile_load(const char *path, sp_profile *p, sp_error *err);
/* The entry for exactly `threads` threads, or NULL. */
const sp_thread_perf *sp_profile_perf(const sp_profile *p, int threads);
/* Write as YAML (PATH.tmp then rename); `header` (may be NULL or
 * multi-line) becomes a comment at the top. */
int sp_profile_write(const sp_profile *p, const char *path, const char *header, sp_error *err);

/* ---- measuring this board (measure.c) ---- */

/* Called as the measurement goes: what is being measured, and the part of
 * the whole done so far (0..1). */
typedef void (*sp_progress_fn)(void *arg, const char *what, double done);

typedef struct sp_measure_options {
    bool thorough;       /* larger buffers, more repetitions, more thread counts */
    int max_threads;     /* 0: all cores. Quick mode measures 1 and max_threads
                            threads, thorough mode also the powers of two between */
    int also_threads;    /* 0, or one more thread count to measure (below
                            max_threads): a rank's share of cores it shares
                            with other ranks (`profile --all`) */
    sp_progress_fn progress;
    void *progress_arg;
} sp_measure_options;

/* Fills name (the host name), cpu, cores, arch, simd, RAM and every figure,
 * with source measured and today's date. */
int sp_profile_measure(sp_profile *p, const sp_measure_options *o, sp_error *err);

/* ---- cluster files ---- */

#define SP_CLUSTER_MAX_BOARDS 12 /* the exact search is exponential in it */

/* One direction-free link: latency in seconds (alpha), bandwidth in bytes
 * per second (beta); a message of b bytes takes alpha + b / beta. */
typedef struct sp_link {
    double latency, bandwidth;
} sp_link;

typedef struct sp_board {
    char name[64];
    char host[64];
    bool host_given;        /* `host:` in the cluster file (else the name) */
    int threads;            /* kernel threads the stage will use */
    uint64_t memory;        /* usable bytes for shardpipe (RAM minus the reserve, or as given) */
    bool memory_given;
    /* In-run compute time / the profile's prediction, measured from a
     * pipeline run (docs/profile-format.md); 1 when not given. */
    double slowdown;
    sp_profile profile;
} sp_board;

typedef struct sp_cluster {
    char path[1024];
    char name[64];
    int n_boards;
    sp_board boards[SP_CLUSTER_MAX_BOARDS];
    sp_link links[SP_CLUSTER_MAX_BOARDS][SP_CLUSTER_MAX_BOARDS]; /* [a][b] == [b][a] */
    /* Seconds each hand-over of a micro-batch (stage to stage, and the
     * token ids back to the first) adds to the round trip beyond its link,
     * measured from a run (docs/profile-format.md); 0 when not given. */
    double handoff;
} sp_cluster;

/* RAM shardpipe leaves to the operating system and MPI on a board when the
 * cluster file gives no `memory`: 10% of RAM, at least 256 MiB. */
uint64_t sp_memory_reserve(uint64_t ram_total);

/* Loads the cluster file and every profile it names (paths relative to the
 * cluster file's folder). */
int sp_cluster_load(const char *path, sp_cluster *c, sp_error *err);
/* Write a cluster file whose boards name profile files `profile_paths[i]`
 * (relative to the cluster file) with every pair's link measured. */
int sp_cluster_write(const sp_cluster *c, const char *const *profile_paths, const char *path, const char *header,
                     sp_error *err);

#endif
