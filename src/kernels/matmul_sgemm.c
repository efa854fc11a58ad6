/* matmul_sgemm.c - the sgemm path of sp_matmul (matmul.c gives the
 * overview, the choice of path and why each pool thread drives its own
 * single-threaded sgemm): W cut into panels whose boundaries depend only on
 * its shape, each dequantized to f32 into the thread's own scratch and
 * multiplied by cblas_sgemm; batches too short for OpenBLAS's blocked
 * kernels padded with zero rows; and the probe of whether this OpenBLAS
 * gives a row the same bits wherever it sits in a call. */
#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_internal.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

#define PANEL_FLOATS (256 * 1024)  /* f32 panel per thread: 1 MB */
#define PANEL_ALIGN 16             /* panel rows: multiple of OpenBLAS's M unroll */

/* OpenBLAS (0.3.17+ built with SMALL_MATRIX_OPT, the default on x86-64)
 * sends sgemm calls with M*N*K <= 100^3 to separate "small matrix" kernels
 * that sum in another order than its blocked kernels, so the same X row
 * rounded differently in a batch of 1 and of 16 (found by the batch-vs-row
 * test; see kernel/x86_64/sgemm_small_kernel_permit_skylakex.c, which also
 * requires M*N <= 1200 for our transposed case). We keep every call above
 * that bound by padding a short batch with zero rows: for the panels of a
 * real model that means n < 7, which takes the dot path anyway. */
#define OPENBLAS_SMALL_MNK 1000000L

/* The probe behind sp_matmul_sgemm_row_invariant: 24 rows of X against a
 * 64 x 64 W in one call, then each row alone in a call padded with zero rows
 * to the same 24 (so only the row's position differs), with one OpenBLAS
 * thread as the engine runs it. Two dozen small sgemm calls, once. */
static bool row_invariant;
static void probe_row_invariance(void)
{
    enum { N = 24, M = 64, K = 64 };
    float *w = sp_alloc(sizeof(float) * M * K), *x = sp_alloc(sizeof(float) * N * K);
    float *y = sp_alloc(sizeof(float) * N * M), *x1 = sp_alloc(sizeof(float) * N * K);
    float *y1 = sp_alloc(sizeof(float) * N * M);
    sp_rng r;
    sp_rng_seed(&r, 12345);
    for (int i = 0; i < M * K; i++) w[i] = sp_rng_f32(&r) - 0.5f;
    for (int i = 0; i < N * K; i++) x[i] = sp_rng_f32(&r) - 0.5f;
    openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, M, K, 1.0f, x, K, w, K, 0.0f, y, M);
    row_invariant = true;
    for (int i = 0; i < N && row_invariant; i++) {
        memset(x1, 0, sizeof(float) * N * K);
        memcpy(x1, x + (size_t)i * K, sizeof(float) * K);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, M, K, 1.0f, x1, K, w, K, 0.0f, y1, M);
        row_invariant = memcmp(y1, y + (size_t)i * M, sizeof(float) * M) == 0;
    }
    free(w), free(x), free(y), free(x1), free(y1);
}

bool sp_matmul_sgemm_row_invariant(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, probe_row_invariance);
    return row_invariant;
}

typedef struct gemm_job {
    const sp_matrix *w;
    const float *x;      /* n_call x cols: X itself, or X padded with zero rows */
    int n, n_call;
    float *y;
    long n_panels;
    size_t stride;       /* floats of scratch per thread */
    float *scratch;      /* nth x stride: f32 panel, then padded Y if n_call > n */
} gemm_job;

/* W is split into panel_count() nearly equal panels on PANEL_ALIGN
 * boundaries (sp_split_range), each about PANEL_FLOATS weights. The split
 * depends only on the shape of W. */
static long panel_count(const sp_matrix *w)
{
    long per = PANEL_FLOATS / (long)w->cols;
    per -= per % PANEL_ALIGN;
    if (per < PANEL_ALIGN) per = PANEL_ALIGN;
    return (long)((w->rows + per - 1) / per);
}

static void gemm_panel(const gemm_job *j, long p, float *buf)
{
    const sp_matrix *w = j->w;
    const int64_t rows = w->rows, cols = w->cols;
    const uint8_t *wd = w->data;
    long r0, r1;
    sp_split_range(rows, (int)p, (int)j->n_panels, PANEL_ALIGN, &r0, &r1);
    const int m = (int)(r1 - r0);
    if (m == 0) return;

    const float *b;
    if (w->type == SP_DTYPE_F32) {
        b = (const float *)(wd + r0 * w->row_bytes);
    } else {
        for (long r = r0; r < r1; r++) sp_matrix_dequantize_row(w, r, buf + (r - r0) * cols);
        b = buf;
        buf += (size_t)m * cols;
    }

    /* Y[:, r0:r1] = X * panel^T. (A NoTrans/NoTrans call on a transposed
     * panel runs 1.3-2x faster in OpenBLAS for n <= 32, but transposing in
     * portable C cost more than that saved; a SIMD "dequantize transposed"
     * kernel would make it worth it.) */
    if (j->n_call == j->n) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, m, (int)cols, 1.0f, j->x, (int)cols, b,
                    (int)cols, 0.0f, j->y + r0, (int)rows);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n_call, m, (int)cols, 1.0f, j->x, (int)cols, b,
                (int)cols, 0.0f, buf, m);
    for (int i = 0; i < j->n; i++) memcpy(j->y + i * rows + r0, buf + (size_t)i * m, sizeof(float) * m);
}

static void gemm_part(void *arg, int ith, int nth)
{
    gemm_job *j = arg;
    long p_lo, p_hi;
    sp_split_range(j->n_panels, ith, nth, 1, &p_lo, &p_hi);
    float *buf = j->scratch ? j->scratch + (size_t)ith * j->stride : NULL;
    for (long p = p_lo; p < p_hi; p++) gemm_panel(j, p, buf);
}

void sp_matmul_sgemm(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y)
{
    const int64_t cols = w->cols;
    gemm_job j = {.w = w, .x = x, .n = n, .n_call = n, .y = y, .n_panels = panel_count(w)};

    long min_m = -1, max_m = 0;
    for (long p = 0; p < j.n_panels; p++) {
        long r0, r1;
        sp_split_range(w->rows, (int)p, (int)j.n_panels, PANEL_ALIGN, &r0, &r1);
        if (r1 == r0) continue;
        if (min_m < 0 || r1 - r0 < min_m) min_m = r1 - r0;
        if (r1 - r0 > max_m) max_m = r1 - r0;
    }

    /* Smallest batch that keeps every panel's call off OpenBLAS's
     * small-matrix kernels; pad X with zero rows up to it. */
    long n_big = OPENBLAS_SMALL_MNK / (min_m * (long)cols) + 1;
    if (n < n_big) {
        size_t have = (size_t)n * cols * sizeof(float), need = (size_t)n_big * cols * sizeof(float);
        ctx->xq = sp_matmul_grow(ctx->xq, &ctx->xq_cap, need);
        memcpy(ctx->xq, x, have);
        memset((char *)ctx->xq + have, 0, need - have);
        j.x = ctx->xq;
        j.n_call = (int)n_big;
    }

    /* per thread: the f32 panel (not for F32 weights), the padded Y */
    j.stride = 0;
    if (w->type != SP_DTYPE_F32) j.stride += (size_t)max_m * cols;
    if (j.n_call != n) j.stride += (size_t)j.n_call * max_m;
    if (j.stride) {
        ctx->panel = sp_matmul_grow(ctx->panel, &ctx->panel_cap, (size_t)ctx->n_threads * j.stride * sizeof(float));
        j.scratch = ctx->panel;
    }
    sp_pool_run(ctx->pool, gemm_part, &j);
}
