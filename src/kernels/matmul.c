/* matmul.c - Y[n][rows] = X[n][cols] * W^T on the thread pool.
 *
 * Dot path (decode, and prompts for quantized weights where the SIMD level
 * has rows kernels): for Q8_0/Q4_0 weights each X row is quantized to Q8_0
 * and packed for the kernels (sp_q8_group, quant.h) once, for the K-quants
 * to Q8_K blocks (quant_k.h), then the pool's
 * threads claim the output rows in chunks of DOT_CHUNK as they go (see
 * "who computes which output rows" below). A thread takes a
 * chunk's weight rows (tens of KB: they stay in L2) against SP_DOT_ROWS
 * activation rows at a time (those stay in L1), each weight row unpacked
 * once per SP_DOT_ROWS rows by the tile kernel; W is streamed from memory
 * once per call whatever n is. F32 weights use f32 dots on X directly;
 * F16/BF16 rows are widened to f32 into a per-thread row buffer first.
 *
 * Sgemm path (prompt, large n): W is cut into panels of about PANEL_FLOATS
 * weights. Panels are dealt to the pool threads; each thread dequantizes its
 * panel to f32 into its own slice of ctx->panel (it stays in that core's L2)
 * and calls cblas_sgemm on it with OpenBLAS single-threaded. F32 weights
 * skip the dequantization and hand W's rows to sgemm in place. That path
 * is matmul_sgemm.c; the dot path, the choice between the two and the
 * context are here.
 *
 * Why our threads each drive a 1-thread sgemm rather than one OpenBLAS-
 * threaded sgemm per panel (dequantized by the pool, then a barrier):
 * measured on 2 cores (AMD EPYC, OpenBLAS 0.3.21 Cooperlake kernels), Q4_0,
 * n=128, 2 threads, best of 15, GFLOPS:
 *   2048->5632: ours 131-139; OpenBLAS-threaded 57/60/120/139 with panels
 *               of 128/256/512/1024 rows; plain f32 sgemm 166
 *   5632->2048: ours 107; OpenBLAS-threaded 110/122/116/123
 * i.e. the same speed within noise, and for OpenBLAS only with 4-8 MB
 * panels. Ours needs no barrier between dequantization and sgemm, keeps one
 * set of threads (OpenBLAS's own pool busy-waits after each call, taking the
 * CPU from other MPI ranks on the core) and fixes the panel boundaries
 * independently of the thread count. So sp_matmul_init sets OpenBLAS to 1
 * thread.
 *
 * Determinism: every output element is one dot of an X row with a W row,
 * computed by a kernel whose summation order depends only on cols (dot
 * path), or by OpenBLAS on a panel whose boundaries depend only on the
 * shape of W (sgemm path) - never on n, the other rows or the thread count.
 * One OpenBLAS trap is handled in matmul_sgemm.c (OPENBLAS_SMALL_MNK);
 * tests/test_matmul.c checks all of it bit for bit. */
#include "shardpipe/matmul.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_internal.h"
#include "shardpipe/quant.h"
#include "shardpipe/quant_iq4nl.h"

#define DOT_CHUNK 16               /* output rows per scheduling unit */
/* Packed activation bytes the GEMM tiles take at once (a block of rows):
 * each chunk of 16 weight rows sweeps every activation row it is given,
 * so all of a 512-row micro-batch (5.8 MB before ffn_down) came from L3
 * for every chunk; in blocks of this size they stay in L2 and the claimed
 * weights are read once per block instead, from L3 (TinyLlama Q4_0,
 * 512-token prompt: 3.48 -> 3.14 s on one thread, 1.87 -> 1.70 s on two;
 * 128 tokens unchanged). */
#define TILES_ACT_BYTES (384 * 1024)

/* Crossover between the dot and the sgemm paths, measured with
 * benchmarks/crossover.c:
 *   cmake -S . -B build -DSHARDPIPE_BENCH=ON && cmake --build build --target crossover
 *   build/benchmarks/crossover
 *
 * Quantized weights. With the tile kernels (each weight row against four
 * activation rows at once, quant.h), the int8 dot path does in one vpdpbusd what
 * sgemm does in four FMAs' worth of lanes, and it never materializes f32
 * weights. On a 2-core AMD EPYC (Zen 4, OpenBLAS 0.3.21), one thread,
 * 5632x2048 weights, CPU-time of the best of 5 (GOPS = 2 x weights x n / s):
 *                 n=8          n=32         n=128
 *   avx512vnni Q8_0  73 / 18    107 / 47    115 / 80     (dot / sgemm)
 *   avx512vnni Q4_0  95 / 18    119 / 48    120 / 80
 *   avx2       Q8_0  51 / 16     79 / 48     80 / 78
 *   avx2       Q4_0 107 / 18     99 / 49    100 / 81
 * so on x86 the dot path wins at every n up to 128 (crossover.c: whole
 * TinyLlama layers, same result) and quantized weights never take sgemm.
 * The NEON levels do the same, for a second reason: the int8 kernels add in
 * one order on every architecture (quant.c), OpenBLAS's sgemm does not, so
 * only with prompts on the int8 path too does a mixed x86 / Arm cluster
 * give the tokens of a single board. Their speed against sgemm is not
 * measured on a real board yet (SDOT does four int8 multiply-adds per lane
 * where an FMA does one, as VNNI does on x86). The scalar level (x86 CPUs
 * without AVX2) multiplies one row at a time in plain C and keeps the
 * crossover measured before the tile kernels existed: 64 rows, where
 * one-row-at-a-time dots met sgemm on this machine.
 *
 * F32 / F16 / BF16 weights: f32 dots reuse nothing across rows, so sgemm
 * wins early; the same 64 rows.
 *
 * SHARDPIPE_SGEMM_MIN_ROWS overrides both (e.g. for a board where sgemm
 * measures faster). */
#define DEFAULT_SGEMM_MIN_ROWS 64

/* Weights the int8 dot kernels take: against Q8_0 activations packed as
 * sp_q8_group (Q8_0, Q4_0, IQ4_NL) or against Q8_K blocks (the K-quants). */
static int q8g_weights(sp_dtype t)
{
    return t == SP_DTYPE_Q8_0 || t == SP_DTYPE_Q4_0 || t == SP_DTYPE_IQ4_NL;
}

static int int8_weights(sp_dtype t)
{
    return q8g_weights(t) || sp_dtype_is_k(t);
}

int sp_matmul_default_min_rows(sp_dtype type)
{
    const char *env = getenv("SHARDPIPE_SGEMM_MIN_ROWS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        /* values that are not a positive integer are ignored */
        if (*end == '\0' && v >= 1 && v <= (1L << 30)) return (int)v;
    }
    if (int8_weights(type) && sp_simd_int8_prompts()) return SP_SGEMM_NEVER;
    return sp_matmul_sgemm_row_invariant() ? DEFAULT_SGEMM_MIN_ROWS : SP_SGEMM_NEVER;
}

void sp_matmul_init(sp_matmul_ctx *ctx, int n_threads)
{
    memset(ctx, 0, sizeof *ctx);
    if (n_threads < 1) n_threads = 1;
    ctx->pool = sp_pool_new(n_threads);
    ctx->n_threads = n_threads;
    ctx->sgemm_min_rows = sp_matmul_default_min_rows(SP_DTYPE_Q4_0);
    ctx->force = SP_PATH_AUTO;

    /* Each pool thread drives its own single-threaded sgemm (see the top). */
    openblas_set_num_threads(1);
}

void sp_matmul_free(sp_matmul_ctx *ctx)
{
    sp_pool_free(ctx->pool);
    free(ctx->panel);
    free(ctx->xq);
    free(ctx->xk);
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
    m.layout = SP_LAYOUT_FILE;
    return m;
}

sp_layout sp_matrix_best_layout(const sp_matrix *w)
{
    const char *env = getenv("SHARDPIPE_REPACK");
    if (env && !strcmp(env, "0")) return SP_LAYOUT_FILE;
    if (w->type == SP_DTYPE_Q4_0 && w->cols / SP_QK >= 16 && sp_simd_q4_0x16()) return SP_LAYOUT_Q4_0X16;
    if (sp_k_x16_type(w->type) && w->rows % SP_KX16 == 0 && sp_simd_k_x16(w->type)) return SP_LAYOUT_K_X16;
    return SP_LAYOUT_FILE;
}

const char *sp_layout_name(sp_layout layout)
{
    return layout == SP_LAYOUT_Q4_0X16 ? "q4_0x16" : layout == SP_LAYOUT_K_X16 ? "k_x16" : "file";
}

void sp_matrix_copy_rows(const sp_matrix *w, sp_layout layout, void *dst, int64_t r0, int64_t r1)
{
    const char *src = (const char *)w->data + r0 * w->row_bytes;
    char *out = (char *)dst + r0 * w->row_bytes;
    if (layout == SP_LAYOUT_K_X16) {
        for (int64_t r = r0; r < r1; r += SP_KX16, src += SP_KX16 * w->row_bytes, out += SP_KX16 * w->row_bytes)
            sp_k_x16_from_k(w->type, src, w->row_bytes, out, w->cols);
        return;
    }
    if (layout != SP_LAYOUT_Q4_0X16) {
        memcpy(out, src, (size_t)(r1 - r0) * w->row_bytes);
        return;
    }
    for (int64_t r = r0; r < r1; r++, src += w->row_bytes, out += w->row_bytes)
        sp_q4_0x16_from_q4_0((const sp_block_q4_0 *)src, out, w->cols);
}

sp_matmul_path sp_matmul_choose(const sp_matmul_ctx *ctx, const sp_matrix *w, int n)
{
    (void)w;
    if (ctx->force != SP_PATH_AUTO) return ctx->force;
    return n >= ctx->sgemm_min_rows ? SP_PATH_SGEMM : SP_PATH_DOT;
}

/* ---- dot path ---- */

typedef struct dot_job {
    const sp_matrix *w;
    const float *x;              /* n x cols */
    sp_q8_group *xq;             /* n rows of groups: X quantized and packed */
    int64_t xq_stride;           /* groups per row */
    sp_block_q8_K *xk;           /* n rows of X as Q8_K (K-quant weights) */
    int64_t xk_stride;           /* blocks per row */
    float *rowbuf;               /* nth x cols floats (F16/BF16 weights) */
    int tiles;                   /* 1: Q8_0 / Q4_0 take the GEMM tiles (sp_q8g_tiles) */
    int n;
    float *y;
} dot_job;

/* ---- who computes which output rows ----
 *
 * Output rows go in units of DOT_CHUNK, claimed while the job runs rather
 * than split evenly up front: on a shared or virtualized board two cores
 * streaming at once do not get equal shares of the memory bandwidth from
 * one moment to the next, and with a fixed split the core that got less
 * was measured finishing 16-64 us after the other in most matvecs of a
 * ~110 us decode step (2-core Zen 4 VM, TinyLlama Q4_0: both threads idle
 * 7-9% of the time). Claims come in guided batches (a 1/(2 nth) share of
 * what is left, at least one unit), so a job takes a few claims per thread
 * and the last units go to whoever is free. Even threads take batches from
 * the front of the rows and odd ones from the back, so with two threads
 * each one's batches continue where its last ended and the weight stream
 * (and its prefetch) stays contiguous. Which thread computes a row never
 * changes its bits. The two ends live in one atomic word, front in the
 * high half, back in the low half. */
typedef struct claim {
    _Alignas(64) _Atomic uint64_t ends;
} claim;

static void claim_init(claim *c, uint32_t units)
{
    atomic_init(&c->ends, (uint64_t)units);
}

/* Claims a batch [*u0, *u1) of units for thread ith; 0 when none is left. */
static int claim_next(claim *c, int ith, int nth, uint32_t *u0, uint32_t *u1)
{
    uint64_t e = atomic_load_explicit(&c->ends, memory_order_relaxed);
    for (;;) {
        uint32_t front = (uint32_t)(e >> 32), back = (uint32_t)e;
        if (front >= back) return 0;
        uint32_t k = (back - front) / (2u * (uint32_t)nth);
        if (k < 1) k = 1;
        uint64_t next;
        if (ith % 2 == 0) {
            *u0 = front, *u1 = front + k;
            next = ((uint64_t)(front + k) << 32) | back;
        } else {
            *u0 = back - k, *u1 = back;
            next = ((uint64_t)front << 32) | (back - k);
        }
        if (atomic_compare_exchange_weak_explicit(&c->ends, &e, next, memory_order_relaxed, memory_order_relaxed))
            return 1;
    }
}

/* Quantize X rows to Q8_0 packed for the dot kernels and/or to Q8_K,
 * whichever of the two the job has a buffer for. */
static void quantize_x_part(void *arg, int ith, int nth)
{
    dot_job *j = arg;
    const int64_t cols = j->w->cols;
    long lo, hi;
    sp_split_range(j->n, ith, nth, 1, &lo, &hi);
    for (long i = lo; i < hi; i++) {
        if (j->xq) sp_quantize_row_q8g(j->x + i * cols, j->xq + i * j->xq_stride, cols);
        if (j->xk) sp_quantize_row_q8_K(j->x + i * cols, j->xk + i * j->xk_stride, cols);
    }
}

/* Gives the job the quantized X buffers its weights need: the packed Q8_0
 * groups (need_q8g) and/or Q8_K blocks (need_k), then quantizes X into them
 * (on the pool when there is more than one row). */
static void quantize_x(sp_matmul_ctx *ctx, dot_job *j, int need_q8g, int need_k)
{
    const int64_t cols = j->w->cols;
    if (need_q8g) {
        j->xq_stride = sp_q8_group_count(cols);
        ctx->xq = sp_matmul_grow(ctx->xq, &ctx->xq_cap, (size_t)j->n * j->xq_stride * sizeof(sp_q8_group));
        j->xq = ctx->xq;
    }
    if (need_k) {
        j->xk_stride = cols / SP_QK_K;
        ctx->xk = sp_matmul_grow(ctx->xk, &ctx->xk_cap, (size_t)j->n * j->xk_stride * sizeof(sp_block_q8_K));
        j->xk = ctx->xk;
    }
    /* One row takes a microsecond or two: not worth waking the pool. */
    if (j->n > 1 && ctx->n_threads > 1) sp_pool_run(ctx->pool, quantize_x_part, j);
    else quantize_x_part(j, 0, 1);
}

/* f32 dot of any length: the SIMD kernel on the multiple-of-32 head, a
 * scalar loop on the tail (only F32/F16/BF16 rows can have one). */
static float dot_f32(int64_t n, const float *w, const float *a)
{
    int64_t head = n - n % SP_QK;
    float s = head ? sp_vec_dot_f32(head, w, a) : 0.0f;
    for (int64_t k = head; k < n; k++) s += w[k] * a[k];
    return s;
}

/* Output rows [lo, hi) of one job. */
static void dot_rows(const dot_job *j, long lo, long hi, int ith)
{
    const sp_matrix *w = j->w;
    const int64_t rows = w->rows, cols = w->cols, ng = j->xq_stride;
    const uint8_t *wd = w->data;

    /* Quantized weights: a chunk of DOT_CHUNK weight rows (in L2) against
     * SP_DOT_ROWS activation rows at a time (in L1); W is read from memory
     * once. The others: weight rows outer, each reused from L1 for all n
     * rows of X. */
    switch (w->type) {
    case SP_DTYPE_Q8_0:
    case SP_DTYPE_Q4_0:
    case SP_DTYPE_IQ4_NL:
        if (j->tiles && w->type != SP_DTYPE_IQ4_NL) { /* a chunk against all n rows (sp_q8g_tiles) */
            /* activation rows in blocks whose packed groups stay in L2
             * while every chunk of the claimed weight rows passes them */
            int mb = (int)(TILES_ACT_BYTES / (ng * (int64_t)sizeof(sp_q8_group))) / 4 * 4;
            if (mb < 4) mb = 4;
            for (int i0 = 0; i0 < j->n; i0 += mb) {
                int na = j->n - i0 < mb ? j->n - i0 : mb;
                for (long r0 = lo; r0 < hi; r0 += DOT_CHUNK) {
                    long nw = r0 + DOT_CHUNK < hi ? DOT_CHUNK : hi - r0;
                    sp_q8g_tiles(w->type, w->layout == SP_LAYOUT_Q4_0X16, cols, wd + r0 * w->row_bytes, w->row_bytes,
                                 nw, j->xq + (int64_t)i0 * ng, ng, na, j->y + (int64_t)i0 * rows + r0, rows);
                }
            }
            break;
        }
        /* one activation group (decode): the whole range in one call, as
         * for the K types below */
        const long chunk = j->n <= SP_DOT_ROWS ? hi - lo : DOT_CHUNK;
        for (long r0 = lo; r0 < hi; r0 += chunk) {
            long nw = r0 + chunk < hi ? chunk : hi - r0;
            for (int i = 0; i < j->n; i += SP_DOT_ROWS) {
                int na = j->n - i < SP_DOT_ROWS ? j->n - i : SP_DOT_ROWS;
                const void *wr = wd + r0 * w->row_bytes;
                float *y = j->y + (int64_t)i * rows + r0;
                if (w->type == SP_DTYPE_Q8_0)
                    sp_vec_dot_q8_0_q8g_tile(cols, wr, w->row_bytes, nw, j->xq + i * ng, ng, na, y, rows);
                else if (w->type == SP_DTYPE_IQ4_NL)
                    sp_vec_dot_iq4_nl_q8g_tile(cols, wr, w->row_bytes, nw, j->xq + i * ng, ng, na, y, rows);
                else if (w->layout == SP_LAYOUT_Q4_0X16)
                    sp_vec_dot_q4_0x16_q8g_tile(cols, wr, w->row_bytes, nw, j->xq + i * ng, ng, na, y, rows);
                else sp_vec_dot_q4_0_q8g_tile(cols, wr, w->row_bytes, nw, j->xq + i * ng, ng, na, y, rows);
            }
        }
        break;
    case SP_DTYPE_Q2_K: case SP_DTYPE_Q3_K: case SP_DTYPE_Q4_K: case SP_DTYPE_Q5_K: case SP_DTYPE_Q6_K: {
        /* regrouped rows: a chunk is one 16-row group (lo is a multiple of
         * DOT_CHUNK = 16), against SP_KX16_ROWS activation rows at a time */
        const int x16 = w->layout == SP_LAYOUT_K_X16, step = x16 ? SP_KX16_ROWS : SP_DOT_ROWS;
        /* with one activation group (decode) nothing is reused across
         * chunks: the whole range in one call, so the tile's set-up (its
         * constants, the dispatch on na) is paid once per claim instead of
         * once per 16 rows */
        const long chunk = j->n <= step ? hi - lo : DOT_CHUNK;
        /* the activation rows in equal blocks of at most step: 12 rows go
         * as 6 + 6, not 8 + 4 */
        const int blocks = (j->n + step - 1) / step, per = (j->n + blocks - 1) / blocks;
        for (long r0 = lo; r0 < hi; r0 += chunk) {
            long nw = r0 + chunk < hi ? chunk : hi - r0;
            for (int i = 0; i < j->n; i += per) {
                int na = j->n - i < per ? j->n - i : per;
                if (x16)
                    sp_vec_dot_k_x16_q8_K_tile(w->type, cols, wd + r0 * w->row_bytes, nw, j->xk + i * j->xk_stride,
                                               j->xk_stride, na, j->y + (int64_t)i * rows + r0, rows);
                else sp_vec_dot_k_q8_K_tile(w->type, cols, wd + r0 * w->row_bytes, w->row_bytes, nw,
                                            j->xk + i * j->xk_stride, j->xk_stride, na, j->y + (int64_t)i * rows + r0,
                                            rows);
            }
        }
        break;
    }
    case SP_DTYPE_F32:
        for (long r = lo; r < hi; r++) {
            const float *wr = (const float *)(wd + r * w->row_bytes);
            for (int i = 0; i < j->n; i++) j->y[i * rows + r] = dot_f32(cols, wr, j->x + i * cols);
        }
        break;
    default: { /* F16, BF16: widen the row once, reuse it for all n */
        float *buf = j->rowbuf + (size_t)ith * cols;
        for (long r = lo; r < hi; r++) {
            sp_matrix_dequantize_row(w, r, buf);
            for (int i = 0; i < j->n; i++) j->y[i * rows + r] = dot_f32(cols, buf, j->x + i * cols);
        }
        break;
    }
    }
}

static long units_of(const sp_matrix *w)
{
    return (long)((w->rows + DOT_CHUNK - 1) / DOT_CHUNK);
}

/* Runs unit range [u0, u1) of the jobs' units laid end to end. */
static void run_units(const dot_job *jobs, int n_jobs, long u0, long u1, int ith)
{
    long base = 0;
    for (int i = 0; i < n_jobs && u0 < u1; i++) {
        long nu = units_of(jobs[i].w), end = base + nu;
        if (u0 < end) {
            long a = u0 - base, b = (u1 < end ? u1 : end) - base;
            long lo = a * DOT_CHUNK, hi = b * DOT_CHUNK;
            if (hi > jobs[i].w->rows) hi = (long)jobs[i].w->rows;
            dot_rows(&jobs[i], lo, hi, ith);
            u0 = base + b;
        }
        base = end;
    }
}

/* Several dot jobs on one pool run, their rows claimed as one list. */
typedef struct multi_job {
    dot_job *jobs;
    int n_w;
    claim c;
} multi_job;

static void multi_part(void *arg, int ith, int nth)
{
    multi_job *mj = arg;
    uint32_t u0, u1;
    while (claim_next(&mj->c, ith, nth, &u0, &u1)) run_units(mj->jobs, mj->n_w, u0, u1, ith);
}

/* Micro-batches of at least tiles_min_rows rows take the level's GEMM
 * tiles for Q8_0 / Q4_0 weights where it has them (sp_q8g_tiles); below
 * that the rows kernels (each weight row against up to four activation
 * rows) are as fast or faster. Measured on Zen 5 (one thread, 5632x2048
 * weights streamed from a 300 MB pool, ms per matrix, medians of 3
 * alternated runs, rows kernels / tiles):
 *         n=2          3            4            5            6
 *   Q4_0  0.22 / 0.23  0.30 / 0.27  0.36 / 0.30  0.46 / 0.33  0.52 / 0.35
 *   Q8_0  0.38 / 0.47  0.43 / 0.46  0.50 / 0.48  0.74 / 0.51  0.83 / 0.56
 * The rows kernels load every activation group once per weight row (about
 * three cycles a weight row x activation row x group, against two for the
 * arithmetic); the tiles share each load over four weight rows but unpack
 * each weight group once per tile, which the Q8_0 layout (eight 16-byte
 * loads a group) makes dear at two or three rows. Batched decode is where
 * these counts occur: a pipeline's micro-batch of 3-7 sequences, or a
 * server's requests decoding together. Until 2026-12-07 22:30 UTC both
 * types began at 8 rows. Since the tiles' prefetch spread over the whole
 * chunk (2026-12-08), 2 rows alone ran faster in them too (Q4_0 0.23-0.25
 * -> 0.19-0.20 ms, Q8_0 0.37-0.40 -> 0.33-0.38), but with two threads
 * (0.14-0.17 against the rows kernels' 0.14-0.15; Q8_0 0.28-0.33 against
 * 0.24-0.28) and in 4 sequences' 2-row decode on 2 ranks at once (tok/s
 * 127-129 against 133-163, alternated) slower: two streams at once, as a
 * pipeline's stages run, favour the rows kernels' prefetch. */
static int tiles_min_rows(sp_dtype t)
{
    return t == SP_DTYPE_Q4_0 ? 3 : 4;
}

static void tiles_setup(dot_job *jobs, int n_w)
{
    const int avail = sp_q8g_tiles_available();
    for (int i = 0; i < n_w; i++) jobs[i].tiles = avail && jobs[i].n >= tiles_min_rows(jobs[i].w->type);
}

static void run_dot_jobs(sp_matmul_ctx *ctx, dot_job *jobs, int n_w)
{
    tiles_setup(jobs, n_w);
    long units = 0;
    for (int i = 0; i < n_w; i++) units += units_of(jobs[i].w);
    multi_job mj = {.jobs = jobs, .n_w = n_w};
    claim_init(&mj.c, (uint32_t)units);
    sp_pool_run(ctx->pool, multi_part, &mj);
}

static void matmul_dot(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y)
{
    dot_job j = {.w = w, .x = x, .n = n, .y = y};
    if (int8_weights(w->type)) {
        quantize_x(ctx, &j, q8g_weights(w->type), sp_dtype_is_k(w->type));
    } else if (w->type != SP_DTYPE_F32) {
        size_t need = (size_t)ctx->n_threads * (size_t)w->cols * sizeof(float);
        ctx->panel = sp_matmul_grow(ctx->panel, &ctx->panel_cap, need);
        j.rowbuf = ctx->panel;
    }
    run_dot_jobs(ctx, &j, 1);
}

void sp_matmul(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y)
{
    if (n <= 0 || w->rows <= 0 || w->cols <= 0) return;
    if (sp_matmul_choose(ctx, w, n) == SP_PATH_SGEMM) sp_matmul_sgemm(ctx, w, x, n, y);
    else matmul_dot(ctx, w, x, n, y);
}

/* ---- several matrices on one input ----
 *
 * On the dot path with quantized weights the activations are quantized and
 * packed once for all the matrices, and one pool run covers them all, the
 * matrices' row chunks claimed as one list. Each output element
 * is still the same kernel on the same packed X row and W row, so the
 * results equal those of separate sp_matmul calls bit for bit. */

void sp_matmul_multi(sp_matmul_ctx *ctx, const sp_matrix *const *w, int n_w, const float *x, int n,
                     float *const *y)
{
    if (n <= 0 || n_w <= 0) return;
    int shared = n_w <= SP_MATMUL_MULTI_MAX, need_q8g = 0, need_k = 0;
    for (int i = 0; i < n_w && shared; i++) {
        shared = int8_weights(w[i]->type) && sp_matmul_choose(ctx, w[i], n) == SP_PATH_DOT &&
                 w[i]->cols == w[0]->cols && w[i]->rows > 0 && w[i]->cols > 0;
        need_q8g |= q8g_weights(w[i]->type);
        need_k |= sp_dtype_is_k(w[i]->type);
    }
    if (!shared) {
        for (int i = 0; i < n_w; i++) sp_matmul(ctx, w[i], x, n, y[i]);
        return;
    }

    /* X quantized once per activation format the matrices need */
    dot_job jobs[SP_MATMUL_MULTI_MAX];
    jobs[0] = (dot_job){.w = w[0], .x = x, .n = n, .y = y[0]};
    quantize_x(ctx, &jobs[0], need_q8g, need_k);
    for (int i = 1; i < n_w; i++) {
        jobs[i] = jobs[0];
        jobs[i].w = w[i];
        jobs[i].y = y[i];
    }
    run_dot_jobs(ctx, jobs, n_w);
}
