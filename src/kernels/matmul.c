/* matmul.c - Y[n][rows] = X[n][cols] * W^T on the thread pool.
 *
 * Dot path (decode, small n): each X row is quantized to Q8_0 once (for
 * Q8_0/Q4_0 weights), then the output rows are split across the pool in
 * chunks of DOT_CHUNK. A thread walks its weight rows once and, while a row
 * is in L1, dots it with all n activation rows: the weights are streamed
 * from memory once per call whatever n is. F32 weights use f32 dots on X
 * directly; F16/BF16 rows are widened to f32 into a per-thread row buffer
 * first.
 *
 * Sgemm path (prompt, large n): W is cut into panels of panel_rows(cols)
 * output rows. Panels are dealt to the pool threads; each thread
 * dequantizes its panel to f32 into its own slice of ctx->panel and calls
 * cblas_sgemm on it with OpenBLAS single-threaded. F32 weights skip the
 * dequantization and hand W's rows to sgemm in place.
 *
 * Determinism: every output element is one dot of an X row with a W row,
 * computed by a kernel whose summation order depends only on cols (dot
 * path), or by OpenBLAS on a panel whose boundaries depend only on the
 * shape of W (sgemm path) - never on n, the other rows or the thread count.
 * tests/test_matmul.c checks both empirically. */
#include "shardpipe/matmul.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/util.h"

#define DOT_CHUNK 16            /* output rows per scheduling unit */
#define PANEL_FLOATS (64 * 1024) /* f32 panel target size: 256 KB */
#define PANEL_MIN_ROWS 16
#define PANEL_MAX_ROWS 1024

/* Default crossover between the dot and the sgemm paths: see
 * benchmarks/crossover.c for how it was measured. */
#define DEFAULT_SGEMM_MIN_ROWS 16

/* Scratch buffers only grow; their old contents are not kept. */
static void *grow(void *buf, size_t *cap, size_t need)
{
    if (need <= *cap) return buf;
    free(buf);
    *cap = need;
    return sp_alloc(need);
}

void sp_matmul_init(sp_matmul_ctx *ctx, int n_threads)
{
    memset(ctx, 0, sizeof *ctx);
    if (n_threads < 1) n_threads = 1;
    ctx->pool = sp_pool_new(n_threads);
    ctx->n_threads = n_threads;
    ctx->sgemm_min_rows = DEFAULT_SGEMM_MIN_ROWS;
    ctx->force = SP_PATH_AUTO;

    /* SHARDPIPE_SGEMM_MIN_ROWS overrides the measured default (values that
     * are not a positive integer are ignored). */
    const char *env = getenv("SHARDPIPE_SGEMM_MIN_ROWS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 1 << 30) ctx->sgemm_min_rows = (int)v;
    }

    /* Our own threads each drive a single-threaded sgemm (see the top). */
    openblas_set_num_threads(1);
}

void sp_matmul_free(sp_matmul_ctx *ctx)
{
    sp_pool_free(ctx->pool);
    free(ctx->panel);
    free(ctx->xq);
    memset(ctx, 0, sizeof *ctx);
}

sp_matrix sp_matrix_from_tensor(const sp_gguf_tensor *t)
{
    sp_matrix m;
    m.type = t->type;
    m.cols = (int64_t)t->ne[0];
    m.rows = (int64_t)t->ne[1];
    m.data = t->data;
    m.row_bytes = (size_t)sp_dtype_row_bytes(t->type, t->ne[0]);
    return m;
}

sp_matmul_path sp_matmul_choose(const sp_matmul_ctx *ctx, const sp_matrix *w, int n)
{
    (void)w;
    if (ctx->force != SP_PATH_AUTO) return ctx->force;
    return n >= ctx->sgemm_min_rows ? SP_PATH_SGEMM : SP_PATH_DOT;
}

static int is_quantized(sp_dtype t) { return t == SP_DTYPE_Q8_0 || t == SP_DTYPE_Q4_0; }

/* ---- dot path ---- */

typedef struct dot_job {
    const sp_matrix *w;
    const float *x;              /* n x cols */
    const sp_block_q8_0 *xq;     /* n x cols/32 blocks (quantized weights) */
    float *rowbuf;               /* nth x cols floats (F16/BF16 weights) */
    int n;
    float *y;
} dot_job;

static void quantize_x_part(void *arg, int ith, int nth)
{
    dot_job *j = arg;
    long lo, hi;
    int64_t cols = j->w->cols, nb = cols / SP_QK;
    sp_split_range(j->n, ith, nth, 1, &lo, &hi);
    for (long i = lo; i < hi; i++)
        sp_quantize_row_q8_0(j->x + i * cols, (sp_block_q8_0 *)j->xq + i * nb, cols);
}

/* f32 dot for any length: the SIMD kernel on the multiple-of-32 head, a
 * scalar loop on the tail (only F32/F16/BF16 rows can have one). */
static float dot_f32(int64_t n, const float *w, const float *a)
{
    int64_t head = n - n % SP_QK;
    float s = head ? sp_vec_dot_f32(head, w, a) : 0.0f;
    for (int64_t k = head; k < n; k++) s += w[k] * a[k];
    return s;
}

static void dot_part(void *arg, int ith, int nth)
{
    dot_job *j = arg;
    const sp_matrix *w = j->w;
    const int64_t rows = w->rows, cols = w->cols, nb = cols / SP_QK;
    const uint8_t *wd = w->data;
    long lo, hi;
    sp_split_range(rows, ith, nth, DOT_CHUNK, &lo, &hi);

    switch (w->type) {
    case SP_DTYPE_Q8_0:
        for (long r = lo; r < hi; r++) {
            const sp_block_q8_0 *wr = (const void *)(wd + r * w->row_bytes);
            for (int i = 0; i < j->n; i++)
                j->y[i * rows + r] = sp_vec_dot_q8_0_q8_0(cols, wr, j->xq + i * nb);
        }
        break;
    case SP_DTYPE_Q4_0:
        for (long r = lo; r < hi; r++) {
            const sp_block_q4_0 *wr = (const void *)(wd + r * w->row_bytes);
            for (int i = 0; i < j->n; i++)
                j->y[i * rows + r] = sp_vec_dot_q4_0_q8_0(cols, wr, j->xq + i * nb);
        }
        break;
    case SP_DTYPE_F32:
        for (long r = lo; r < hi; r++) {
            const float *wr = (const void *)(wd + r * w->row_bytes);
            for (int i = 0; i < j->n; i++) j->y[i * rows + r] = dot_f32(cols, wr, j->x + i * cols);
        }
        break;
    default: { /* F16, BF16: widen the row once, reuse it for all n */
        float *buf = j->rowbuf + (size_t)ith * cols;
        for (long r = lo; r < hi; r++) {
            sp_dequantize_row(w->type, wd + r * w->row_bytes, buf, cols);
            for (int i = 0; i < j->n; i++) j->y[i * rows + r] = dot_f32(cols, buf, j->x + i * cols);
        }
        break;
    }
    }
}

static void matmul_dot(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y)
{
    int nth = ctx->n_threads;
    dot_job j = {.w = w, .x = x, .n = n, .y = y};
    if (is_quantized(w->type)) {
        size_t nb = (size_t)(w->cols / SP_QK);
        ctx->xq = grow(ctx->xq, &ctx->xq_cap, (size_t)n * nb * sizeof(sp_block_q8_0));
        j.xq = ctx->xq;
        /* One row is a few microseconds: not worth waking the pool for. */
        if (n > 1 && nth > 1) sp_pool_run(ctx->pool, quantize_x_part, &j);
        else quantize_x_part(&j, 0, 1);
    } else if (w->type != SP_DTYPE_F32) {
        size_t need = (size_t)nth * (size_t)w->cols * sizeof(float);
        ctx->panel = grow(ctx->panel, &ctx->panel_cap, need);
        j.rowbuf = ctx->panel;
    }
    sp_pool_run(ctx->pool, dot_part, &j);
}

/* ---- sgemm path ---- */

/* OpenBLAS (0.3.17+, SMALL_MATRIX_OPT, on by default on x86-64) sends sgemm
 * calls with M*N*K <= 100^3 to separate "small matrix" kernels that sum in
 * another order than the blocked kernels, so the same X row would round
 * differently in a batch of 1 and of 100. We keep every call above that
 * bound by padding the batch with zero rows when it is short; only small
 * matrices with small n (rare on this path) pay for it. */
#define OPENBLAS_SMALL_MNK 1000000L

/* Split W into n_panels equal panels of at most max_rows output rows. The
 * split depends only on the shape of W, so panel boundaries (and with them
 * OpenBLAS's blocking) never depend on n or the thread count. */
static long panel_max_rows(int64_t cols)
{
    long pf = getenv("SP_TMP_PANEL_FLOATS") ? atol(getenv("SP_TMP_PANEL_FLOATS")) : PANEL_FLOATS; /* TMP */
    long p = pf / (long)cols;
    p -= p % 16;
    if (p < PANEL_MIN_ROWS) p = PANEL_MIN_ROWS;
    if (p > PANEL_MAX_ROWS) p = PANEL_MAX_ROWS;
    return p;
}

typedef struct gemm_job {
    const sp_matrix *w;
    const float *x;      /* n_call x cols: X itself or X padded with zero rows */
    int n, n_call;
    float *y;
    long n_panels;
    long stride;         /* floats of ctx->panel per thread */
    float *scratch;      /* nth x stride: dequantized panel, then padded Y */
    int mode;
} gemm_job;

static void panel_bounds(const gemm_job *j, long p, long *r0, long *r1)
{
    *r0 = (long)(j->w->rows * p / j->n_panels);
    *r1 = (long)(j->w->rows * (p + 1) / j->n_panels);
}

static void gemm_panel(const gemm_job *j, long p, float *buf)
{
    const sp_matrix *w = j->w;
    const int64_t rows = w->rows, cols = w->cols;
    const uint8_t *wd = w->data;
    long r0, r1;
    panel_bounds(j, p, &r0, &r1);
    int m = (int)(r1 - r0);

    const float *b;
    if (w->type == SP_DTYPE_F32) {
        b = (const float *)(wd + r0 * w->row_bytes);
    } else {
        for (long r = r0; r < r1; r++)
            sp_dequantize_row(w->type, wd + r * w->row_bytes, buf + (r - r0) * cols, cols);
        b = buf;
        buf += (size_t)m * cols;
    }
    /* Y[:, r0:r1] = X * panel^T */
    if (j->n_call == j->n) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, m, (int)cols, 1.0f, j->x,
                    (int)cols, b, (int)cols, 0.0f, j->y + r0, (int)rows);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n_call, m, (int)cols, 1.0f, j->x,
                    (int)cols, b, (int)cols, 0.0f, buf, m);
        for (int i = 0; i < j->n; i++) memcpy(j->y + i * rows + r0, buf + (size_t)i * m, sizeof(float) * m);
    }
}

static void gemm_part(void *arg, int ith, int nth)
{
    gemm_job *j = arg;
    long p_lo, p_hi;
    sp_split_range(j->n_panels, ith, nth, 1, &p_lo, &p_hi);
    for (long p = p_lo; p < p_hi; p++) gemm_panel(j, p, j->scratch + (size_t)ith * j->stride);
}

static void matmul_sgemm(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y)
{
    const int64_t rows = w->rows, cols = w->cols;
    long max_rows = panel_max_rows(cols);
    gemm_job j = {.w = w, .x = x, .n = n, .n_call = n, .y = y};
    j.n_panels = (rows + max_rows - 1) / max_rows;

    /* Smallest batch that keeps the smallest panel off OpenBLAS's
     * small-matrix kernels; pad X with zero rows up to it if needed. */
    long min_rows = (long)(rows / j.n_panels);
    long n_big = OPENBLAS_SMALL_MNK / (min_rows * (long)cols) + 1;
    if (n < n_big) {
        j.n_call = (int)n_big;
        size_t xbytes = (size_t)n_big * cols * sizeof(float);
        ctx->xq = grow(ctx->xq, &ctx->xq_cap, xbytes);
        memcpy(ctx->xq, x, (size_t)n * cols * sizeof(float));
        memset((float *)ctx->xq + (size_t)n * cols, 0, xbytes - (size_t)n * cols * sizeof(float));
        j.x = ctx->xq;
    }
    long panel_rows_max = (long)((rows + j.n_panels - 1) / j.n_panels);
    j.stride = 0;
    if (w->type != SP_DTYPE_F32) j.stride += panel_rows_max * cols;
    if (j.n_call != n) j.stride += (long)j.n_call * panel_rows_max;
    if (j.stride) {
        size_t need = (size_t)ctx->n_threads * (size_t)j.stride * sizeof(float);
        ctx->panel = grow(ctx->panel, &ctx->panel_cap, need);
        j.scratch = ctx->panel;
    }
    sp_pool_run(ctx->pool, gemm_part, &j);
}

void sp_matmul(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y)
{
    if (n <= 0 || w->rows <= 0) return;
    if (sp_matmul_choose(ctx, w, n) == SP_PATH_SGEMM) matmul_sgemm(ctx, w, x, n, y);
    else matmul_dot(ctx, w, x, n, y);
}
