/* threads.c - the fork-join pool the kernels run on.
 *
 * A pool of n threads is n-1 workers plus the caller, which runs part 0 of
 * every job itself. A job is published by bumping a generation counter;
 * each worker remembers the last generation it ran, so "is there work?" is
 * one load. Completion is a countdown of workers still running.
 *
 * Waiting (a worker for the next job, the caller for the workers) goes
 * through three stages:
 *   1. spin on the counter with a CPU pause hint (about SPIN_PAUSE_NS): the
 *      next matvec of a decode step usually arrives within microseconds;
 *   2. sched_yield() (between runs of 63 pauses) until SPIN_YIELD_NS, so a
 *      rank sharing the core with other MPI ranks gives them the CPU, and
 *      a pool whose threads the host has squeezed onto one core hands it
 *      to the thread that still has work: stage 1 is kept short (2 us)
 *      for that, as a yield with nothing else to run returns at once.
 *      Measured on the 2-core Zen 4 VM with other sessions' builds taking
 *      one core (bench engine decode_cpu_busy 0.49: two threads, one
 *      core), TinyLlama-1.1B decode, 2 threads, 3 alternating pairs,
 *      20 us -> 2 us: Q4_K_M 42.4 -> 53.3 tok/s, Q6_K 33.3 -> 38.8;
 *   3. block on a condition variable, so an idle process (waiting for its
 *      pipeline neighbour) costs no CPU at all.
 * Publishers always take the mutex to bump the counter and broadcast, which
 * makes stage 3 race-free: a worker re-checks the counter under the mutex
 * before it sleeps. The pool is driven by one thread at a time. */
#define _GNU_SOURCE
#include "shardpipe/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SPIN_PAUSE_NS 2000L     /* 2 us of pause-spinning */
#define SPIN_YIELD_NS 200000L   /* then yield until 200 us, then sleep */

typedef struct worker {
    struct sp_pool *pool;
    int ith;
    pthread_t tid;
} worker;

struct sp_pool {
    int n;                      /* threads including the caller */
    worker *workers;            /* n - 1 of them */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* generation changed */
    pthread_cond_t done_cv;     /* pending reached 0 */

    atomic_uint gen;            /* bumped once per job */
    atomic_int pending;         /* workers still running the current job */
    atomic_int stop;            /* set with the last generation bump */
    sp_pool_fn fn;              /* current job; written before gen is bumped */
    void *arg;
};

static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Stages 1 and 2 of the wait: returns 1 as soon as done(ctx) holds, 0 once
 * the spin budget is spent (the caller then sleeps). The clock is read only
 * every 64 polls. */
static int spin_until(int (*done)(struct sp_pool *, unsigned), struct sp_pool *p, unsigned v)
{
    long start = now_ns();
    for (unsigned iter = 1;; iter++) {
        if (done(p, v)) return 1;
        if ((iter & 63) == 0) {
            long t = now_ns() - start;
            if (t > SPIN_YIELD_NS) return 0;
            if (t > SPIN_PAUSE_NS) {
                sched_yield();
                continue;
            }
        }
        cpu_pause();
    }
}

static int gen_changed(struct sp_pool *p, unsigned seen)
{
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen;
}

static int all_done(struct sp_pool *p, unsigned unused)
{
    (void)unused;
    return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sp_pool *p = w->pool;
    unsigned seen = 0;   /* the pool starts at generation 0 */

    for (;;) {
        if (!spin_until(gen_changed, p, seen)) {
            pthread_mutex_lock(&p->mu);
            while (!gen_changed(p, seen)) pthread_cond_wait(&p->work_cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;

        p->fn(p->arg, w->ith, p->n);

        /* The last worker out wakes the caller in case it went to sleep;
         * the release pairs with the caller's acquire so our writes are
         * visible once it sees 0. */
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publish a new generation (with p->fn/arg/stop already written). */
static void publish(sp_pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

sp_pool *sp_pool_new(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    sp_pool *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    if (n_threads == 1) return p;

    p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
    if (!p->workers) abort();
    for (int i = 1; i < n_threads; i++) {
        worker *w = &p->workers[i - 1];
        w->pool = p;
        w->ith = i;
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            /* Like out of memory: the process cannot do its work at all. */
            fprintf(stderr, "shardpipe: cannot create worker thread %d of %d\n", i, n_threads);
            abort();
        }
    }
    return p;
}

void sp_pool_free(sp_pool *pool)
{
    if (!pool) return;
    if (pool->n > 1) {
        atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
        publish(pool);
        for (int i = 1; i < pool->n; i++) pthread_join(pool->workers[i - 1].tid, NULL);
    }
    pthread_cond_destroy(&pool->work_cv);
    pthread_cond_destroy(&pool->done_cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->workers);
    free(pool);
}

int sp_pool_size(const sp_pool *pool) { return pool->n; }

void sp_pool_run(sp_pool *pool, sp_pool_fn fn, void *arg)
{
    if (pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_relaxed);
    publish(pool);

    fn(arg, 0, pool->n);

    if (!spin_until(all_done, pool, 0)) {
        pthread_mutex_lock(&pool->mu);
        while (!all_done(pool, 0)) pthread_cond_wait(&pool->done_cv, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}

void sp_split_range(long n, int ith, int nth, long align, long *lo, long *hi)
{
    /* Split whole units of `align` items, then clip the last one to n. */
    if (align < 1) align = 1;
    long units = (n + align - 1) / align;
    long u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
    *lo = u0 * align < n ? u0 * align : n;
    *hi = u1 * align < n ? u1 * align : n;
}
