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

#include <stdint.h>

#include "shardpipe/gguf.h"

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
/* Any supported dtype (F32, F16, BF16, Q8_0, Q4_0) to f32. */
void sp_dequantize_row(sp_dtype type, const void *x, float *y, int64_t n);
/* f32 to F32/F16/BF16/Q8_0/Q4_0 (writer, synth). */
void sp_quantize_row(sp_dtype type, const float *x, void *y, int64_t n);

/* Scalar references: n elements (multiple of SP_QK). */
float sp_vec_dot_q8_0_q8_0_ref(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0_ref(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_f32_ref(int64_t n, const float *w, const float *a);
float sp_vec_dot_f16_f32_ref(int64_t n, const uint16_t *w, const float *a);
/* y[i] = fmaf(a, x[i], y[i]) for an fp16 row x (attention: the softmax-weighted
 * sum of V rows). Fused, so every level gives bit-identical results. Any n. */
void sp_vec_mad_f16_ref(int64_t n, float *y, const uint16_t *x, float a);

/* The dispatched versions (fastest the CPU supports). */
float sp_vec_dot_q8_0_q8_0(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_q4_0_q8_0(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a);
float sp_vec_dot_f32(int64_t n, const float *w, const float *a);
/* Any n (attention head sizes need not be multiples of 32). */
float sp_vec_dot_f16_f32(int64_t n, const uint16_t *w, const float *a);
void sp_vec_mad_f16(int64_t n, float *y, const uint16_t *x, float a);

/* Name of the SIMD level in use ("avx512vnni", "avx2", "neon-dotprod",
 * "neon", "scalar") and a way for tests and benchmarks to list and force
 * the available levels. */
const char *sp_simd_name(void);
int sp_simd_count(void);                 /* levels compiled in and supported here */
const char *sp_simd_level_name(int i);   /* i < sp_simd_count(), 0 = scalar */
void sp_simd_force(int i);               /* use level i from now on */

#endif
