/* quant.h - quantized block formats exactly as GGUF stores them, and the
 * dot products between them.
 *
 * A quant type is a plain block struct of 32 weights plus one fp16 scale d:
 *   Q8_0: w[i] = d * qs[i],          qs in [-127, 127]
 *   Q4_0: w[i] = d * (nibble - 8),   low nibbles hold i = 0..15, high 16..31
 * Decode (one token) multiplies a weight row by an activation row quantized
 * to Q8_0 on the fly: per block the integer sum of products is exact, and
 * the row result is sum over blocks of d_w * d_a * isum.
 *
 * Each vec_dot has a portable scalar reference (`_ref`) and SIMD versions
 * (AVX2, AVX-512 VNNI, NEON, NEON dotprod) picked once at start-up by CPU
 * feature detection; tests compare every compiled SIMD version with the
 * reference. */
#ifndef SHARDPIPE_QUANT_H
#define SHARDPIPE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "shardpipe/gguf.h"
#include "shardpipe/quant_k.h"

#define SP_QK 32

typedef struct sp_block_q8_0 {
    uint16_t d;          /* fp16 scale */
    int8_t qs[SP_QK];
} sp_block_q8_0;         /* 34 bytes */

typedef struct sp_block_q4_0 {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[SP_QK / 2];
} sp_block_q4_0;         /* 18 bytes */

_Static_assert(sizeof(sp_block_q8_0) == 34, "Q8_0 block must match GGUF layout");
_Static_assert(sizeof(sp_block_q4_0) == 18, "Q4_0 block must match GGUF layout");

float sp_fp16_to_f32(uint16_t h);
uint16_t sp_f32_to_fp16(float f);   /* round to nearest even */
float sp_bf16_to_f32(uint16_t h);
uint16_t sp_f32_to_bf16(float f);

/* n must be a multiple of SP_QK. */
void sp_quantize_row_q8_0(const float *x, sp_block_q8_0 *y, int64_t n);
void sp_quantize_row_q4_0(const float *x, sp_block_q4_0 *y, int64_t n);
void sp_dequantize_row_q8_0(const sp_block_q8_0 *x, float *y, int64_t n);
void sp_dequantize_row_q4_0(const sp_block_q4_0 *x, float *y, int64_t n);
/* Any supported dtype (F32, F16, BF16, Q8_0, Q4_0, IQ4_NL, Q2_K..Q6_K) to f32. */
void sp_dequantize_row(sp_dtype type, const void *x, float *y, int64_t n);
/* f32 to F32/F16/BF16/Q8_0/Q4_0/IQ4_NL/Q2_K..Q6_K (writer, synth). */
void sp_quantize_row(sp_dtype type, const float *x, void *y, int64_t n);

/* Scalar references: n elements (multiple of SP_QK). */
float sp_vec_dot_q8_0_q8_0_ref(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0_ref(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_f32_ref(int64_t n, const float *w, const float *a);
float sp_vec_dot_f16_f32_ref(int64_t n, const uint16_t *w, const float *a);
/* y[i] = fmaf(a, x[i], y[i]) for an fp16 row x (attention: the softmax-weighted
 * sum of V rows). Fused, so every level gives bit-identical results. Any n. */
void sp_vec_mad_f16_ref(int64_t n, float *y, const uint16_t *x, float a);

/* Q4_0 regrouped for the kernels (in memory only, never in a file): sixteen
 * consecutive blocks of a row with their scales moved to the front, the
 * same 288 bytes as the sixteen sp_block_q4_0 they hold. One 32-byte load
 * then gives sixteen scales and one 64-byte load four blocks' quants, where
 * the file's 18-byte blocks need a gather of both for every four blocks. A
 * row of nb blocks is nb / 16 of these followed by its last nb % 16 blocks
 * as sp_block_q4_0, so it keeps the file's row size. sp_model_load_weights
 * regroups Q4_0 matrices only where the SIMD level in use has a kernel for
 * it (sp_simd_q4_0x16); every level computes the same bits on both layouts. */
typedef struct sp_block_q4_0x16 {
    uint16_t d[16];              /* fp16 scales of blocks 0..15 */
    uint8_t qs[16][SP_QK / 2];   /* their quants, as in sp_block_q4_0 */
} sp_block_q4_0x16;              /* 288 bytes */

_Static_assert(sizeof(sp_block_q4_0x16) == 16 * sizeof(sp_block_q4_0), "x16 panel is 16 blocks' bytes");

/* One row of n elements (a multiple of SP_QK); x and y must not overlap. */
void sp_q4_0x16_from_q4_0(const sp_block_q4_0 *x, void *y, int64_t n);
void sp_dequantize_row_q4_0x16(const void *x, float *y, int64_t n);

/* Decode activations. matmul's dot path quantizes an activation row to
 * Q8_0 once and dots it with every weight row, so it first lays the row out
 * for the kernels: groups of four blocks with each block's quants split in
 * halves (elements 0..15, the positions of a Q4_0 block's low nibbles, then
 * 16..31), the scales in f32 and the Q4_0 offset precomputed. The kernels
 * then need no shuffles or conversions on the activation side, and Q4_0
 * multiplies the raw nibbles q in [0, 15]: sum (q - 8) a = sum q a - 8 sum a,
 * per int32 lane of the kernels (see sp_vec_dot_q8_0_q8g_scalar in quant.c).
 * A partial last group is padded with zero blocks (all fields 0). */
typedef struct sp_q8_group {
    int8_t lo[4][16];   /* quants 0..15 of blocks 0..3 */
    int8_t hi[4][16];   /* quants 16..31 */
    int32_t bias[16];   /* lane 4k + j: -8 * (quants 4j..4j+3 + quants 16+4j..16+4j+3)
                           of block k, the elements of the kernels' int32 lane j */
    float d[16];        /* lanes 4k..4k+3: block k's scale */
} sp_q8_group;          /* 256 bytes */

_Static_assert(sizeof(sp_q8_group) == 256, "sp_q8_group has no padding");

/* Groups holding a row of n elements (n a multiple of SP_QK). */
int64_t sp_q8_group_count(int64_t n);
/* Packs n elements of Q8_0 blocks (quants in [-127, 127]) into groups. */
void sp_q8_group_pack(const sp_block_q8_0 *a, sp_q8_group *g, int64_t n);
/* Quantizes n floats of activations to Q8_0 and packs them in one pass:
 * per block d = amax / 127 (stored as fp16, used as its f32 value), quants
 * round(x / d) with ties to even, as llama.cpp's SIMD activation quantizers
 * do (sp_quantize_row_q8_0, the file writer's, rounds ties away from zero
 * like ggml's reference quantizer). Dispatched; every level gives the same
 * bytes. */
void sp_quantize_row_q8g(const float *x, sp_q8_group *g, int64_t n);

/* The dispatched versions (fastest the CPU supports). */
float sp_vec_dot_q8_0_q8_0(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
/* The same on packed activations: the decode kernels, which the two above
 * call after packing. Exact integer block sums like the _ref functions on
 * the blocks packed; only the f32 summation order differs, and it is the
 * same at every SIMD level (quant.c), so every board computes the same bits. */
float sp_vec_dot_q8_0_q8g(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a);
float sp_vec_dot_q4_0_q8g(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a);
/* A tile: nw weight rows starting at w, row_bytes apart, against na packed
 * activation rows a, a + stride, ... (na = 1..SP_DOT_ROWS):
 * y[i * y_stride + r] = dot(weight row r, activation row i), with the bits
 * of the single-row dot, but each weight row is loaded and unpacked once
 * for all na rows. This is what makes the dot path fast on prompt micro-
 * batches (the int8 arithmetic does 4x the work per instruction of f32
 * sgemm) and on decode micro-batches of several sequences. */
#define SP_DOT_ROWS 4
void sp_vec_dot_q8_0_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                              int64_t stride, int na, float *y, int64_t y_stride);
void sp_vec_dot_q4_0_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                              int64_t stride, int na, float *y, int64_t y_stride);
/* The same on weight rows regrouped as sp_block_q4_0x16: the bits of the
 * Q4_0 functions on the rows they were made from. */
float sp_vec_dot_q4_0x16_q8g(int64_t n, const void *w, const sp_q8_group *a);
void sp_vec_dot_q4_0x16_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                                 int64_t stride, int na, float *y, int64_t y_stride);
/* The GEMM tiles (prompts, and decode micro-batches of a few rows: matmul.c's
 * tiles_min_rows): nw <= SP_Q8G_TILES_MAX_ROWS weight rows (Q8_0, or Q4_0 in the file layout
 * or regrouped: x16) against all na packed activation rows (any count),
 * y[i * y_stride + r] as sp_vec_dot_*_q8g_tile gives it, bit for bit, each
 * weight group loaded once for several activation rows. Returns 0, doing
 * nothing, where the SIMD level in use has no such kernel (then the tiles
 * above do the work); sp_q8g_tiles_available() says which. */
#define SP_Q8G_TILES_MAX_ROWS 16 /* nw per call at most */
int sp_q8g_tiles_available(void);
int sp_q8g_tiles(sp_dtype type, int x16, int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                 int64_t stride, int na, float *y, int64_t y_stride);
float sp_vec_dot_f32(int64_t n, const float *w, const float *a);
/* Any n (attention head sizes need not be multiples of 32). */
float sp_vec_dot_f16_f32(int64_t n, const uint16_t *w, const float *a);
void sp_vec_mad_f16(int64_t n, float *y, const uint16_t *x, float a);
/* Attention for the nq query heads of one KV group over n cache rows
 * (k or v + p * stride, fp16, head size hd), with the bits of the calls
 * they replace but each cache row read once for all nq heads:
 *  - scores: s[g * s_stride + p] = sp_vec_dot_f16_f32(hd, k + p * k_stride,
 *    q + g * hd) * scale;
 *  - values: for p = 0..n-1 in order, sp_vec_mad_f16(hd, y + g * hd,
 *    v + p * v_stride, w[g * w_stride + p]) (y accumulates). */
/* x[i] = sp_fp16_to_f32(sp_f32_to_fp16(x[i])), the same bits at every level
 * (what attention does to its queries and weights before they meet the
 * fp16 cache). */
void sp_round_f16(float *x, int64_t n);
void sp_attn_scores_f16(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq, float scale,
                        float *s, int64_t s_stride);
void sp_attn_values_f16(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, int nq,
                        int64_t w_stride, float *y);

/* One KV group's attention for one query row over cache positions
 * 0..n-1 (attention.c): the nq query heads q (nq x hd) rounded to fp16,
 * their scaled scores against the k rows, a softmax per head, the weights
 * rounded to fp16, and out (nq x hd) = the weighted sum of the v rows (k and
 * v rows kv_stride apart). scratch holds nq * (s_stride + hd) floats,
 * s_stride >= n. */
void sp_attn_group_f16(int hd, int n, const uint16_t *k, const uint16_t *v, int64_t kv_stride, const float *q, int nq,
                       float scale, float *scratch, int64_t s_stride, float *out);

/* e^x, rounded to f32 from a double evaluation whose error is ~1e-14 of
 * the result (so it is the correctly rounded e^x but where e^x lies that
 * close to a rounding midpoint), with the same bits at every level and on
 * every architecture: y[i] = e^x[i] (y may be x), sp_expf for one value.
 * Results below the f32 range round to subnormals or 0, above it to inf;
 * NaN stays NaN. */
void sp_exp_f32(float *y, const float *x, int64_t n);
float sp_expf(float x);
/* Softmax of a row of attention scores, in place: m = max s[i], s[i] =
 * sp_expf(s[i] - m), then every s[i] times (float)(1 / sum), the sum in
 * double with element i in partial sum i % 8 and the eight added in a fixed
 * tree; the same bits at every level. */
void sp_softmax_f32(float *s, int64_t n);
/* SwiGLU's elementwise part: g[i] = g[i] / (1 + e^-g[i]) * u[i], with
 * sp_expf's e^ and the operations in that order at every level. */
void sp_swiglu_f32(float *g, const float *u, int64_t n);

/* Name of the SIMD level in use ("scalar", "avx2", "avxvnni", "avx512vnni",
 * "avx512vbmi", "neon", "neon-dotprod") and a way for tests and benchmarks
 * to list and force the available levels. */
const char *sp_simd_name(void);
/* Bytes ahead of the weight stream the int8 kernels prefetch (chosen per
 * CPU; SHARDPIPE_PREFETCH=<bytes> overrides it, 0 = no prefetch). */
int sp_simd_prefetch(void);
/* 1 when quantized weights take the int8 tile kernels at every micro-batch
 * size on the level in use (every SIMD level; not the scalar one: see
 * matmul.c). */
int sp_simd_int8_prompts(void);
/* 1 when the level in use has a kernel for sp_block_q4_0x16 rows (so the
 * loader regroups Q4_0 weights); the others run a portable loop on them. */
int sp_simd_q4_0x16(void);
/* 1 when the level in use has a tile kernel for sp_k_x16 rows of this type. */
int sp_simd_k_x16(sp_dtype type);
int sp_simd_count(void);                 /* levels compiled in and supported here */
const char *sp_simd_level_name(int i);   /* i < sp_simd_count(), 0 = scalar */
void sp_simd_force(int i);               /* use level i from now on */

#endif
