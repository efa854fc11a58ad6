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
