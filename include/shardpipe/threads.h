/* threads.h - a small fork-join thread pool for the kernels.
 *
 * sp_pool_run(pool, fn, arg) calls fn(arg, i, n) once for each i in [0, n)
 * where n is the pool's thread count; the calling thread runs i = 0 itself.
 * Workers spin briefly then sleep, so back-to-back small matvecs in decode
 * do not pay a wake-up each. */
#ifndef SHARDPIPE_THREADS_H
#define SHARDPIPE_THREADS_H

/* The most threads a rank may use: the one bound that plans, cluster files
 * and the command line are checked against, so `check` refuses what the
 * engine would. */
#define SP_MAX_THREADS 256

#include <stdbool.h>
#include <stddef.h>

/* Kernel threads a rank uses when not told: the CPUs in this process's
 * affinity mask (sched_getaffinity: what taskset, cgroups' cpusets and
 * mpiexec's binding leave it), at least 1 and at most SP_MAX_THREADS. */
int sp_default_threads(void);
/* CPUs online on this host (sysconf), whatever the affinity mask. */
int sp_host_cores(void);

/* Oversubscription on one host: the ranks placed there (their kernel
 * threads in threads[0..n_ranks-1]) together run more threads than the host
 * has cores, so they take turns on the cores and every stage of the
 * pipeline waits for the slowest. Returns true and a one-line warning in
 * msg (naming the host, the sum and the cores, and what to change) when
 * sum(threads) > cores; false and msg "" otherwise. For run/serve, after
 * each rank has reported its host and threads. */
bool sp_threads_oversubscribed(const char *host, int n_ranks, const int *threads, int cores, char *msg,
                               size_t size);

typedef struct sp_pool sp_pool;
typedef void (*sp_pool_fn)(void *arg, int ith, int nth);

sp_pool *sp_pool_new(int n_threads);  /* n_threads >= 1 */
void sp_pool_free(sp_pool *pool);
int sp_pool_size(const sp_pool *pool);
void sp_pool_run(sp_pool *pool, sp_pool_fn fn, void *arg);

/* Split [0, n) into nth nearly equal contiguous parts, aligned to `align`
 * items; part ith is [*lo, *hi). */
void sp_split_range(long n, int ith, int nth, long align, long *lo, long *hi);

#endif
