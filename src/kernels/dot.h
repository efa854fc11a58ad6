/* dot.h - private to src/kernels: the SIMD vec_dot and dequantization
 * kernels of each level, one set per dot_<level>.c file. Only simd.c calls
 * these names (tests reach them through sp_simd_force). The int8 dots take
 * packed activations (sp_q8_group) and have the exact integer semantics of
 * the matching _ref function in quant.h on the blocks packed, for
 * activation quants in [-127, 127] as Q8_0 produces them (-128 may be
 * mishandled by the sign tricks). */
#ifndef SP_KERNELS_DOT_H
#define SP_KERNELS_DOT_H

#include "shardpipe/quant.h"

/* The int8 dots of each level are rows kernels: one weight row against na
 * packed activation rows (na = 1..SP_DOT_ROWS), each row's result the same
 * bits whatever na is; simd.c's single-row dots are na = 1, its tiles
 * (sp_vec_dot_*_q8g_tile in quant.h) call them once per weight row. */

/* Software prefetch of the weight stream. A decode token reads every weight
 * once, straight from DRAM, and on one core the hardware prefetchers keep
 * too few lines in flight for the int8 kernels (their loads wait on memory
 * between bursts of arithmetic). Each group of four blocks therefore asks
 * for the lines sp_prefetch_ahead bytes further on to be brought in
 * (prefetchnta on x86, PRFM PLDL2KEEP on aarch64; the hint never faults, so
 * running past the end of a matrix is harmless); 0 turns it off. Weights
 * only: the activations are reused from L1. Bits are not affected.
 *
 * The best distance is the core's, so simd.c picks it per CPU (and
 * SHARDPIPE_PREFETCH=<bytes> overrides it). Measured, TinyLlama-1.1B shape,
 * `shardpipe generate` decode, weights in huge pages (weights.c):
 *  - 2-core Intel Xeon (AVX-512 VNNI), 1 thread: 1 KB ahead 20.2 (Q4_0) /
 *    12.4 (Q8_0) tok/s, 2 KB 22.5 / 13.6, 3 KB 22-23.5 / 13.2-14.3, 4 KB
 *    21.7 / 12.4 (a multiple of 4 KiB makes every prefetch alias the load
 *    it runs ahead of in the low 12 address bits, which the core's memory
 *    disambiguation compares), 5-7 KB 21-22.5 / 12.6-12.9; in 4 KiB pages
 *    no prefetch -> 3 KB took Q4_0 from 12.5 to 18.2 tok/s.
 *  - 2-core AMD EPYC (Zen 4), SHARDPIPE_PREFETCH sweep, 3 runs of 64 tokens
 *    each (2026-12-04), Q4_0 / Q8_0 tok/s, 1 thread: 3 KB 27.4-28.4 /
 *    15.9-16.9, 5 KB 34.4-35.6 / 20.4-22.5, 7 KB 35.9-37.7 / 22.8-25.7,
 *    10 KB 37.8-39.3 / 21.3-23.8, 14 KB 37.6-39.4 / 20.5-24.7, none
 *    29.6-34.2 / 23.4-24.6; 2 threads: 3 KB 41.5-43.3 / 24.5-25.0, 7 KB
 *    41.9-49.7 / 27.1-27.6, 10 KB 43.1-57.6 / 24.9-26.6, none 45.2-49.4 /
 *    25.5-33.1. */
extern int sp_prefetch_ahead;

/* The hint: on x86 prefetchnta (__builtin_prefetch locality 0), as the
 * weights are read once per token and never again before every other
 * weight has been; on Zen 4 it streamed the K-quant decode tiles 4-10%
 * faster than prefetcht1 at the same distance (engine-shaped sweep of
 * the TinyLlama matrices, interleaved A/B, 2026-12-07; Q6_K the most),
 * while the plain read loop of membench.c reads at the same speed with
 * either hint. aarch64 keeps PLDL2KEEP (not measured with another). */
#if defined(__x86_64__)
#define SP_PREFETCH_LOCALITY 0
#else
#define SP_PREFETCH_LOCALITY 2
#endif

static inline __attribute__((always_inline)) void sp_prefetch_group(const void *group, const int bytes,
                                                                     const int64_t ahead)
{
    if (!ahead) return;
    const char *p = (const char *)group + ahead;
    for (int o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, SP_PREFETCH_LOCALITY);
}

/* The values kernels' elements i0..hd-1 past their last full vector: one
 * fmaf per position, as sp_vec_mad_f16's scalar tail does at every level. */
static inline void sp_attn_values_tail(int i0, int hd, int n, const uint16_t *v, int64_t v_stride, const float *w,
                                       float *y)
{
    for (int i = i0; i < hd; i++) {
        float acc = y[i];
        for (int p = 0; p < n; p++) acc = __builtin_fmaf(w[p], sp_fp16_to_f32(v[(int64_t)p * v_stride + i]), acc);
        y[i] = acc;
    }
}

/* e^x for sp_exp_f32 (quant.h), one recipe for every level, evaluated in
 * double and rounded to f32 once at the end:
 *   clamp x to [-150, 128] (e^-150 rounds to 0 in f32 and e^128 to inf, so
 *     nothing changes but the exponent arithmetic below stays in range);
 *   n = x * log2(e) rounded to an integer (adding 1.5 * 2^52 rounds; the
 *     integer then sits in the low bits of z);
 *   r = x - n ln2, with ln2 in two parts (hi has 32 significant bits, so
 *     n * hi is exact) and |r| <= ln2/2 + tiny;
 *   e^r = sum r^k / k! for k = 0..11 by Horner: the first term left out,
 *     (ln2/2)^12 / 12!, is 6.4e-15 of the result, against half an f32 ulp of
 *     3e-8, so the final rounding goes the way exact e^x would unless e^x
 *     lies within about 1e-14 (relative) of a rounding midpoint;
 *   times 2^n, built in the exponent field (exact), then one rounding to
 *     f32, which also makes the subnormal and overflowing results right.
 * Every step is an IEEE double operation or fma, so a level that does them
 * lane by lane gets these bits. NaN comes back as the input. */
#define SP_EXP_MAGIC 0x1.8p52
#define SP_EXP_LOG2E 0x1.71547652b82fep0
#define SP_EXP_LN2_HI 0x1.62e42fee00000p-1
#define SP_EXP_LN2_LO 0x1.a39ef35793c76p-33
#define SP_EXP_MIN (-150.0)
#define SP_EXP_MAX 128.0
/* 1/k! for k = 11 down to 2 (k = 1 and 0 are 1) */
#define SP_EXP_C11 (1.0 / 39916800.0)
#define SP_EXP_C10 (1.0 / 3628800.0)
#define SP_EXP_C9 (1.0 / 362880.0)
#define SP_EXP_C8 (1.0 / 40320.0)
#define SP_EXP_C7 (1.0 / 5040.0)
#define SP_EXP_C6 (1.0 / 720.0)
#define SP_EXP_C5 (1.0 / 120.0)
#define SP_EXP_C4 (1.0 / 24.0)
#define SP_EXP_C3 (1.0 / 6.0)
#define SP_EXP_C2 0.5

/* The portable e^x, SwiGLU and softmax rows (quant.c), for the scalar
 * level and the NEON kernels' tails (the x86 kernels take their tails
 * through masked or padded lanes: there fma is a libm call). */
void sp_exp_f32_scalar(float *y, const float *x, int64_t n);
void sp_swiglu_f32_scalar(float *g, const float *u, int64_t n);
void sp_softmax_f32_scalar(float *s, int64_t n);

/* sp_softmax_f32's sum: element i of the row goes to partial sum i % 8 (in
 * double, in order), and the eight are added in this tree. */
static inline double sp_softmax_sum8(const double a[8])
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* The portable dots on packed activations (quant.c), for the scalar level. */
float sp_vec_dot_q8_0_q8g_scalar(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a);
float sp_vec_dot_q4_0_q8g_scalar(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a);
float sp_vec_dot_q4_0x16_q8g_scalar(int64_t n, const void *w, const sp_q8_group *a);
void sp_quantize_row_q8g_scalar(const float *x, sp_q8_group *g, int64_t n);
float sp_vec_dot_f32_scalar(int64_t n, const float *w, const float *a);
float sp_vec_dot_f16_f32_scalar(int64_t n, const uint16_t *w, const float *a);

#if defined(__x86_64__)
float sp_vec_dot_f32_avx2(int64_t n, const float *w, const float *a);
void sp_dequantize_row_q8_0_avx2(const sp_block_q8_0 *x, float *y, int64_t n);
void sp_dequantize_row_q4_0_avx2(const sp_block_q4_0 *x, float *y, int64_t n);
void sp_dequantize_row_f16_avx2(const uint16_t *x, float *y, int64_t n);
float sp_vec_dot_f16_f32_avx2(int64_t n, const uint16_t *w, const float *a);
void sp_vec_mad_f16_avx2(int64_t n, float *y, const uint16_t *x, float a);
void sp_round_f16_avx2(float *x, int64_t n);
void sp_exp_f32_avx2(float *y, const float *x, int64_t n);
void sp_swiglu_f32_avx2(float *g, const float *u, int64_t n);
void sp_exp_f32_avx512(float *y, const float *x, int64_t n);
void sp_swiglu_f32_avx512(float *g, const float *u, int64_t n);
void sp_softmax_f32_avx2(float *s, int64_t n);
void sp_softmax_f32_avx512(float *s, int64_t n);
void sp_attn_scores_f16_avx2(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq,
                             float scale, float *s, int64_t s_stride);
void sp_attn_values_f16_avx2(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, float *y);
void sp_attn_scores_f16_avx512(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq,
                               float scale, float *s, int64_t s_stride);
void sp_attn_values_f16_avx512(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, float *y);
void sp_quantize_row_q8g_avx2(const float *x, sp_q8_group *g, int64_t n);
void sp_vec_dot_q8_0_q8g_rows_avx2(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_avx2(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);

/* the 256-bit VNNI kernels (dot_vnni.h) with AVX-VNNI (dot_avxvnni.c) */
void sp_vec_dot_q8_0_q8g_rows_avxvnni(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_avxvnni(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);

void sp_vec_dot_q8_0_q8g_rows_avx512(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_avx512(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
/* Q4_0 with AVX-512 VBMI's byte gathers (dot_avx512.c) */
void sp_vec_dot_q4_0_q8g_rows_avx512vbmi(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
/* the prompt GEMM tiles (sp_q8g_tiles, tiles_avx512.c) */
void sp_q8g_tiles_avx512(int q8, int x16, int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                         int64_t stride, int na, float *y, int64_t y_stride);
/* and a tile of rows regrouped as sp_block_q4_0x16 (sp_vec_dot_q4_0x16_q8g_tile) */
void sp_vec_dot_q4_0x16_q8g_tile_avx512vbmi(int64_t n, const void *w, size_t row_bytes, long nw,
    const sp_q8_group *a, int64_t stride, int na, float *y, int64_t y_stride);
#endif

#if defined(__aarch64__)
float sp_vec_dot_f32_neon(int64_t n, const float *w, const float *a);
void sp_dequantize_row_q8_0_neon(const sp_block_q8_0 *x, float *y, int64_t n);
void sp_dequantize_row_q4_0_neon(const sp_block_q4_0 *x, float *y, int64_t n);
void sp_dequantize_row_f16_neon(const uint16_t *x, float *y, int64_t n);
float sp_vec_dot_f16_f32_neon(int64_t n, const uint16_t *w, const float *a);
void sp_vec_mad_f16_neon(int64_t n, float *y, const uint16_t *x, float a);
void sp_attn_scores_f16_neon(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq,
                             float scale, float *s, int64_t s_stride);
void sp_attn_values_f16_neon(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, float *y);
void sp_round_f16_neon(float *x, int64_t n);
void sp_exp_f32_neon(float *y, const float *x, int64_t n);
void sp_swiglu_f32_neon(float *g, const float *u, int64_t n);
void sp_softmax_f32_neon(float *s, int64_t n);
void sp_vec_dot_q8_0_q8g_rows_neon(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_neon(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);

void sp_vec_dot_q8_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
#endif

/* K-quant rows kernels: one weight row (type in the name) against na =
 * 1..SP_DOT_ROWS Q8_K activation rows a, a + stride, ...; the bits of
 * sp_vec_dot_k_q8_K_ref (quant_k.c) for each. Index SP_DTYPE_Qx_K - Q2_K. */
typedef void (*sp_rows_k_fn)(int64_t n, const void *w, const sp_block_q8_K *a, int64_t stride, int na, float *out);
#define SP_N_KTYPES 5
#if defined(__x86_64__)
extern const sp_rows_k_fn sp_rows_k_avx2[SP_N_KTYPES];
extern const sp_rows_k_fn sp_rows_k_avx512[SP_N_KTYPES];
#endif
#if defined(__aarch64__)
extern const sp_rows_k_fn sp_rows_k_neon[SP_N_KTYPES];
extern const sp_rows_k_fn sp_rows_k_neon_dotprod[SP_N_KTYPES];
#endif

/* K-quant tiles on rows regrouped as sp_k_x16 (quant_k.h): nw (a multiple
 * of 16) rows against na = 1..SP_KX16_ROWS Q8_K rows, by type (Q2_K .. Q6_K). */
typedef void (*sp_tile_k_x16_fn)(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,
                                 float *y, int64_t y_stride);
#if defined(__x86_64__)
void sp_tile_q2_k_x16_avx512vbmi(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,
                                 float *y, int64_t y_stride);
void sp_tile_q3_k_x16_avx512vbmi(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,
                                 float *y, int64_t y_stride);
void sp_tile_q4_k_x16_avx512vbmi(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,
                                 float *y, int64_t y_stride);
void sp_tile_q6_k_x16_avx512vbmi(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,
                                 float *y, int64_t y_stride);
void sp_tile_q5_k_x16_avx512vbmi(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,
                                 float *y, int64_t y_stride);
/* the same tiles with 256-bit registers (dot_k_x16_256.h) */
#define SP_TILES_K_X16_256(lv)                                                                                 \
    void sp_tile_q2_k_x16_##lv(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na, \
                               float *y, int64_t y_stride);                                                      \
    void sp_tile_q3_k_x16_##lv(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na, \
                               float *y, int64_t y_stride);                                                      \
    void sp_tile_q4_k_x16_##lv(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na, \
                               float *y, int64_t y_stride);                                                      \
    void sp_tile_q5_k_x16_##lv(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na, \
                               float *y, int64_t y_stride);                                                      \
    void sp_tile_q6_k_x16_##lv(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na, \
                               float *y, int64_t y_stride);
SP_TILES_K_X16_256(avx2)
SP_TILES_K_X16_256(avxvnni)
/* sp_quantize_row_q8_K_ref's bytes with AVX2 (dot_k_avx2.c) */
void sp_quantize_row_q8_K_avx2(const float *x, sp_block_q8_K *y, int64_t n);
#endif

/* Dequantizers of the level in use (simd.c), for sp_dequantize_row. */
void sp_simd_dequantize_row_q8_0(const sp_block_q8_0 *x, float *y, int64_t n);
void sp_simd_dequantize_row_q4_0(const sp_block_q4_0 *x, float *y, int64_t n);
void sp_simd_dequantize_row_f16(const uint16_t *x, float *y, int64_t n);

#endif
