/* membench.h - the ceilings a board's engine speed is judged against:
 * memory read bandwidth (what bounds decode, which streams every weight
 * once per token), plain OpenBLAS sgemm throughput and the int8 dot-product
 * peak (what bound prompt processing). Used by `shardpipe bench engine` and `shardpipe profile`.
 *
 * Each figure is the median of `reps` timed runs after one untimed warm-up
 * run. Bandwidths are in GB/s (1e9 bytes per second), throughput in GFLOPS
 * (1e9 floating-point operations per second, a multiply-add counting 2). */
#ifndef SHARDPIPE_MEMBENCH_H
#define SHARDPIPE_MEMBENCH_H

#include <stddef.h>

#include "shardpipe/threads.h"

/* Read bandwidth: every pool thread sums its contiguous slice of one buffer
 * of `bytes` (make it several times the last-level cache, e.g. 512 MiB, so
 * the figure is DRAM's, not the cache's), once as is and once with the
 * kernels' software prefetch. The buffer is in huge pages where the system
 * has them, like the weights (sp_model_load_weights). Returns bytes / time
 * of the faster. */
double sp_membw_read_gbs(sp_pool *pool, size_t bytes, int reps);

/* STREAM triad a[i] = b[i] + s * c[i] over three float arrays that
 * together take `bytes`, split across the pool. Counted as STREAM does:
 * 3 arrays x length x 4 bytes per run (the write-allocate read of `a` that
 * most caches add is not counted, so triad usually reads below `read`). */
double sp_membw_triad_gbs(sp_pool *pool, size_t bytes, int reps);

/* cblas_sgemm throughput for Y[m][n] = X[m][k] * W[n][k]^T (row-major, W
 * transposed: the layout sp_matmul hands OpenBLAS) on seeded random f32
 * data, with OpenBLAS running n_threads threads (its previous setting is
 * restored afterwards). Counts 2*m*n*k operations per call. */
double sp_sgemm_gflops(int m, int n, int k, int n_threads, int reps);

/* The int8 dot-product ceiling of one core at the SIMD level in use, in
 * 1e9 int8 multiply-adds per second: a register-only loop of the level's
 * int8 instruction (vpdpbusd, vpmaddubsw, SDOT, ...; int8peak.c), best of
 * reps runs in the calling thread's CPU time; 0 on the scalar level. The
 * prompt's int8 matmuls are judged against it (`bench engine`). */
double sp_int8_peak_gmacs(int reps);
const char *sp_int8_peak_instr(void); /* e.g. "vpdpbusd zmm"; "none" */

/* OpenBLAS's build description (version, target core, threading). */
const char *sp_blas_config(void);

#endif
