/* dot.h - private to src/kernels: the SIMD vec_dot kernels of each level,
 * one set per dot_<level>.c file. simd.c decides which set is used; only it
 * and the tests' self-check call these names. Each has the signature and
 * the exact integer semantics of the matching _ref function in quant.h
 * (weights' quants are assumed in [-127, 127], as Q8_0 defines them). */
#ifndef SP_KERNELS_DOT_H
#define SP_KERNELS_DOT_H

#include "shardpipe/quant.h"

#if defined(__x86_64__)
float sp_vec_dot_q8_0_q8_0_avx2(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0_avx2(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_f32_avx2(int64_t n, const float *w, const float *a);

float sp_vec_dot_q8_0_q8_0_avx512(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0_avx512(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
#endif

#if defined(__aarch64__)
float sp_vec_dot_q8_0_q8_0_neon(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0_neon(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_f32_neon(int64_t n, const float *w, const float *a);

float sp_vec_dot_q8_0_q8_0_neon_dotprod(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0_neon_dotprod(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
#endif

#endif
