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

/* The portable dots on packed activations (quant.c), for the scalar level. */
float sp_vec_dot_q8_0_q8g_scalar(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a);
float sp_vec_dot_q4_0_q8g_scalar(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a);
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
void sp_quantize_row_q8g_avx2(const float *x, sp_q8_group *g, int64_t n);
void sp_vec_dot_q8_0_q8g_rows_avx2(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_avx2(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);

void sp_vec_dot_q8_0_q8g_rows_avx512(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_avx512(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
#endif

#if defined(__aarch64__)
float sp_vec_dot_f32_neon(int64_t n, const float *w, const float *a);
void sp_dequantize_row_q8_0_neon(const sp_block_q8_0 *x, float *y, int64_t n);
void sp_dequantize_row_q4_0_neon(const sp_block_q4_0 *x, float *y, int64_t n);
void sp_dequantize_row_f16_neon(const uint16_t *x, float *y, int64_t n);
float sp_vec_dot_f16_f32_neon(int64_t n, const uint16_t *w, const float *a);
void sp_vec_mad_f16_neon(int64_t n, float *y, const uint16_t *x, float a);
void sp_vec_dot_q8_0_q8g_rows_neon(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_neon(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);

void sp_vec_dot_q8_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
void sp_vec_dot_q4_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
    int64_t stride, int na, float *out);
#endif

/* Dequantizers of the level in use (simd.c), for sp_dequantize_row. */
void sp_simd_dequantize_row_q8_0(const sp_block_q8_0 *x, float *y, int64_t n);
void sp_simd_dequantize_row_q4_0(const sp_block_q4_0 *x, float *y, int64_t n);
void sp_simd_dequantize_row_f16(const uint16_t *x, float *y, int64_t n);

#endif
