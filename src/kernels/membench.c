/* membench.c - memory bandwidth and sgemm throughput ceilings (see
 * membench.h).
 *
 * The read kernel sums 64-bit words in 16-byte vectors (a GCC/Clang vector
 * type that maps to SSE2 on x86-64 and to NEON on aarch64 without any
 * special flag) into four independent accumulators, so the loop issues
 * loads as fast as the core can and the figure is the memory system's, not
 * the adder's. It runs three times per pass, as is and with the software
 * prefetch the int8 kernels issue (sp_prefetch_ahead, dot.h) with either
 * hint, the kernels' (SP_PREFETCH_LOCALITY) and prefetcht1 / PLDL2KEEP,
 * and the best median counts: on cores whose hardware prefetchers keep few
 * lines in flight the prefetched loop reads faster (2-core Intel Xeon: 16.8
 * vs 14.6 GB/s with one thread), and a ceiling the kernels can beat is no
 * ceiling (nor one they could beat with the other hint). Each thread first writes its own slice, so on a multi-socket
 * board the pages sit next to the thread that reads them (first touch). */
#include "shardpipe/membench.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"
#include "dot.h"

typedef uint64_t u64x2 __attribute__((vector_size(16)));

/* Median of n timings (sorts them). */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- read bandwidth ---- */

typedef struct read_job {
    u64x2 *buf;
    long n;          /* vectors; a multiple of 4 */
    int prefetch;    /* 1: prefetch sp_prefetch_ahead bytes ahead, as the kernels do; 2: with locality 2 */
    uint64_t *sums;  /* one per thread, so the loads cannot be optimized away */
} read_job;

static void read_fill(void *arg, int ith, int nth)
{
    read_job *j = arg;
    long lo, hi;
    sp_split_range(j->n, ith, nth, 4, &lo, &hi);
    memset(j->buf + lo, ith + 1, (size_t)(hi - lo) * sizeof(u64x2));
}

/* The sum of p[lo..hi); prefetch is a constant once inlined. */
static inline __attribute__((always_inline)) u64x2 sum_slice(const u64x2 *p, long lo, long hi, const int prefetch)
{
    u64x2 a = {0, 0}, b = a, c = a, d = a;
    const long ahead = sp_prefetch_ahead;
    for (long i = lo; i < hi; i += 4) { /* 64 bytes: one line per step */
        if (prefetch == 1) __builtin_prefetch((const char *)(p + i) + ahead, 0, SP_PREFETCH_LOCALITY);
        if (prefetch == 2) __builtin_prefetch((const char *)(p + i) + ahead, 0, 2);
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    return a + b + c + d;
}

static void read_sum(void *arg, int ith, int nth)
{
    read_job *j = arg;
    long lo, hi;
    sp_split_range(j->n, ith, nth, 4, &lo, &hi);
    u64x2 a = j->prefetch == 2 ? sum_slice(j->buf, lo, hi, 2)
              : j->prefetch ? sum_slice(j->buf, lo, hi, 1) : sum_slice(j->buf, lo, hi, 0);
    j->sums[ith] += a[0] + a[1];
}

double sp_membw_read_gbs(sp_pool *pool, size_t bytes, int reps)
{
    if (reps < 1) reps = 1;
    read_job j;
    j.n = (long)(bytes / sizeof(u64x2)) & ~3L;
    /* in huge pages where the system has them, as sp_model_load_weights
     * puts the weights: the ceiling is measured on the memory decode reads */
    size_t buf_bytes = (size_t)j.n * sizeof(u64x2);
    j.buf = sp_huge_alloc_or_abort(buf_bytes);
    j.sums = sp_calloc((size_t)sp_pool_size(pool), sizeof(uint64_t));
    double *t[3] = {sp_alloc((size_t)reps * sizeof(double)), sp_alloc((size_t)reps * sizeof(double)),
                    sp_alloc((size_t)reps * sizeof(double))};

    j.prefetch = 0;
    sp_pool_run(pool, read_fill, &j);
    sp_pool_run(pool, read_sum, &j); /* warm-up */
    for (int r = 0; r < reps; r++)
        for (int pf = 0; pf < 3; pf++) { /* interleaved, so all see the same load */
            j.prefetch = pf;
            double t0 = sp_now();
            sp_pool_run(pool, read_sum, &j);
            t[pf][r] = sp_now() - t0;
        }
    double best = median(t[0], reps);
    for (int pf = 1; pf < 3; pf++) {
        double m = median(t[pf], reps);
        if (m < best) best = m;
    }
    double gbs = (double)j.n * sizeof(u64x2) / best / 1e9;
    free(t[0]);
    free(t[1]);
    free(t[2]);
    free(j.sums);
    sp_huge_free(j.buf, buf_bytes);
    return gbs;
}

/* ---- STREAM triad ---- */

typedef struct triad_job {
    float *a, *b, *c;
    long n;
    float s;
} triad_job;

static void triad_fill(void *arg, int ith, int nth)
{
    triad_job *j = arg;
    long lo, hi;
    sp_split_range(j->n, ith, nth, 16, &lo, &hi);
    for (long i = lo; i < hi; i++) {
        j->a[i] = 0.0f;
        j->b[i] = 1.0f;
        j->c[i] = 2.0f;
    }
}

static void triad_run(void *arg, int ith, int nth)
{
    triad_job *j = arg;
    long lo, hi;
    sp_split_range(j->n, ith, nth, 16, &lo, &hi);
    float *restrict a = j->a;
    const float *restrict b = j->b, *restrict c = j->c;
    for (long i = lo; i < hi; i++) a[i] = b[i] + j->s * c[i];
}

double sp_membw_triad_gbs(sp_pool *pool, size_t bytes, int reps)
{
    if (reps < 1) reps = 1;
    triad_job j;
    j.n = (long)(bytes / (3 * sizeof(float))) & ~15L;
    j.a = sp_alloc((size_t)j.n * sizeof(float));
    j.b = sp_alloc((size_t)j.n * sizeof(float));
    j.c = sp_alloc((size_t)j.n * sizeof(float));
    j.s = 3.0f;
    double *t = sp_alloc((size_t)reps * sizeof(double));

    sp_pool_run(pool, triad_fill, &j);
    sp_pool_run(pool, triad_run, &j); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = sp_now();
        sp_pool_run(pool, triad_run, &j);
        t[r] = sp_now() - t0;
    }
    double gbs = 3.0 * (double)j.n * sizeof(float) / median(t, reps) / 1e9;
    free(t);
    free(j.a);
    free(j.b);
    free(j.c);
    return gbs;
}

/* ---- sgemm ---- */

/* A timed run repeats the call until it lasts about this long, so that
 * small shapes are not timed at the clock's resolution. */
#define SGEMM_MIN_SECONDS 0.05

double sp_sgemm_gflops(int m, int n, int k, int n_threads, int reps)
{
    if (reps < 1) reps = 1;
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(n_threads);

    float *x = sp_alloc((size_t)m * k * sizeof(float));
    float *w = sp_alloc((size_t)n * k * sizeof(float));
    float *y = sp_alloc((size_t)m * n * sizeof(float));
    sp_rng rng;
    sp_rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)m * k; i++) x[i] = sp_rng_f32(&rng) - 0.5f;
    for (size_t i = 0; i < (size_t)n * k; i++) w[i] = sp_rng_f32(&rng) - 0.5f;

    /* the warm-up call also sizes a run */
    double t0 = sp_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
    double once = sp_now() - t0;
    int calls = once >= SGEMM_MIN_SECONDS ? 1 : (int)(SGEMM_MIN_SECONDS / (once > 1e-6 ? once : 1e-6)) + 1;

    double *t = sp_alloc((size_t)reps * sizeof(double));
    for (int r = 0; r < reps; r++) {
        t0 = sp_now();
        for (int c = 0; c < calls; c++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
        t[r] = (sp_now() - t0) / calls;
    }
    double gflops = 2.0 * m * n * k / median(t, reps) / 1e9;

    free(t);
    free(x);
    free(w);
    free(y);
    openblas_set_num_threads(saved);
    return gflops;
}

const char *sp_blas_config(void)
{
    return openblas_get_config();
}
