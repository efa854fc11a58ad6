/* matmul.h - Y = X * W^T for a weight matrix of any supported dtype.
 *
 * X is n rows of `cols` floats (a micro-batch of activations), W is `rows`
 * output features of `cols` weights each (a GGUF 2-D tensor: ne0 = cols,
 * ne1 = rows), Y is n rows of `rows` floats.
 *
 * Two paths, chosen by n:
 *  - n >= ctx->sgemm_min_rows: dequantize panels of W to f32 into a reused
 *    buffer and call OpenBLAS cblas_sgemm;
 *  - otherwise: quantize each X row to Q8_0 once and run the int8 vec_dot
 *    kernels over output rows, several X rows per weight row at a time,
 *    split across the pool's threads (F32/F16/BF16 weights use f32 dots).
 * At every SIMD level the crossover for quantized weights is SP_SGEMM_NEVER
 * (faster where measured, and the same bits on every architecture); sgemm
 * serves F32/F16 weights, and the scalar level, from 64 rows (matmul.c).
 * Every output element depends only on its X row, W and the path, never on
 * the other rows in the batch or the thread count: results are
 * bit-reproducible across micro-batch compositions and pipeline plans that
 * choose the same path. */
#ifndef SHARDPIPE_MATMUL_H
#define SHARDPIPE_MATMUL_H

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/gguf.h"
#include "shardpipe/threads.h"

/* How a matrix's rows are laid out: as in the file, or regrouped for the
 * kernels (Q4_0 as sp_block_q4_0x16, quant.h), with the same bytes per row
 * and the same results bit for bit. */
typedef enum sp_layout {
    SP_LAYOUT_FILE = 0,
    SP_LAYOUT_Q4_0X16 = 1,
    SP_LAYOUT_K_X16 = 2,   /* Q2_K .. Q6_K rows sixteen at a time (sp_k_x16, quant_k.h) */
} sp_layout;

typedef struct sp_matrix {
    sp_dtype type;
    int64_t rows;       /* output features */
    int64_t cols;       /* input features (multiple of 32 for quantized) */
    const void *data;   /* rows * row_bytes, e.g. into the GGUF mapping */
    size_t row_bytes;
    sp_layout layout;   /* SP_LAYOUT_FILE unless sp_matrix_copy_rows made it */
} sp_matrix;

typedef enum sp_matmul_path {
    SP_PATH_AUTO = 0,
    SP_PATH_DOT = 1,    /* int8 / f32 dot kernels */
    SP_PATH_SGEMM = 2,  /* dequantize + cblas_sgemm */
} sp_matmul_path;

typedef struct sp_matmul_ctx {
    sp_pool *pool;
    int n_threads;
    int sgemm_min_rows;     /* crossover; default from measurement, see matmul.c */
    sp_matmul_path force;   /* SP_PATH_AUTO normally */
    /* scratch, grown on demand */
    float *panel;
    size_t panel_cap;
    void *xq;
    size_t xq_cap;
    void *xk;               /* X as Q8_K blocks (K-quant weights) */
    size_t xk_cap;
} sp_matmul_ctx;

/* Creates the pool and sets OpenBLAS to 1 thread: each pool thread runs
 * its own sgemm on its own panels (see matmul.c for why). */
void sp_matmul_init(sp_matmul_ctx *ctx, int n_threads);
void sp_matmul_free(sp_matmul_ctx *ctx);

sp_matrix sp_matrix_from_tensor(const sp_gguf_tensor *t);

/* The layout the kernels read W fastest in: SP_LAYOUT_Q4_0X16 for Q4_0
 * rows of at least 16 blocks where the SIMD level in use has a kernel for
 * it (sp_simd_q4_0x16), SP_LAYOUT_K_X16 for Q2_K .. Q6_K matrices of a
 * multiple of 16 rows likewise (sp_simd_k_x16), where SHARDPIPE_REPACK is
 * not "0"; otherwise the file's. */
sp_layout sp_matrix_best_layout(const sp_matrix *w);
/* "file", "q4_0x16" or "k_x16". */
const char *sp_layout_name(sp_layout layout);
/* Rows [r0, r1) of W (in the file layout) to the same offsets of dst, in
 * `layout` (SP_LAYOUT_FILE copies them; SP_LAYOUT_K_X16 needs r0 and r1
 * multiples of 16, or r1 = rows). */
void sp_matrix_copy_rows(const sp_matrix *w, sp_layout layout, void *dst, int64_t r0, int64_t r1);

/* The measured crossover (rows from which sgemm is used) for weights of
 * this type on the SIMD level in use; SP_SGEMM_NEVER when the dot path wins
 * at every n. SHARDPIPE_SGEMM_MIN_ROWS overrides it. sp_matmul_init sets
 * ctx->sgemm_min_rows to the Q4_0 value; an engine sets it from its
 * model's weight type. */
#define SP_SGEMM_NEVER INT_MAX
int sp_matmul_default_min_rows(sp_dtype type);

/* Whether this OpenBLAS gives a row of X * W^T the same bits whatever rows
 * share its call (probed once on a small problem). Not every core type
 * does: OpenBLAS 0.3.21's Haswell kernels (what OPENBLAS_CORETYPE=Haswell
 * selects, e.g. on Zen 5 hosts) add rows 6-11 of every 12 in another order
 * than rows 0-5. Where it is false the sgemm path would break the promise
 * that a sequence gets the same bits alone or among others, so
 * sp_matmul_default_min_rows never picks it (the env override still can). */
bool sp_matmul_sgemm_row_invariant(void);

void sp_matmul(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y);

/* Y_i = X * W_i^T for n_w matrices that share the input X (e.g. wq, wk, wv):
 * bit-identical to n_w sp_matmul calls, but on the dot path X is quantized
 * once per activation format (Q8_0 groups for Q8_0/Q4_0, Q8_K for the
 * K-quants; types may be mixed) and the pool woken once when all W_i are
 * int8-dot types of the same cols on the dot path and n_w <=
 * SP_MATMUL_MULTI_MAX (otherwise it makes the separate calls). */
#define SP_MATMUL_MULTI_MAX 4
void sp_matmul_multi(sp_matmul_ctx *ctx, const sp_matrix *const *w, int n_w, const float *x, int n,
                     float *const *y);

/* Which path sp_matmul takes for n rows. */
sp_matmul_path sp_matmul_choose(const sp_matmul_ctx *ctx, const sp_matrix *w, int n);

#endif
