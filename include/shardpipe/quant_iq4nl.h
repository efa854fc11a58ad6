/* quant_iq4nl.h - IQ4_NL (GGUF type 20) exactly as GGUF stores it (ggml's
 * block_iq4_nl), and its dots against the packed Q8_0 activations of the
 * Q8_0 / Q4_0 path (sp_q8_group, quant.h).
 *
 * A block holds 32 weights: an fp16 scale d and 16 bytes of 4-bit indices
 * into a fixed non-linear table of 16 int8 values,
 *   w[i] = d * sp_iq4nl_values[qs[i] & 15]        i = 0..15
 *   w[16 + i] = d * sp_iq4nl_values[qs[i] >> 4]    i = 0..15
 * (low nibbles the first half, high nibbles the second, as Q4_0). The
 * table is skewed (-127 .. 113), which fits the bell shape of trained
 * weights better than Q4_0's even steps at the same 4.5 bits a weight;
 * llama.cpp repacks it on Arm boards, where it is a common download.
 *
 * Dots: each weight is an int8 table value, so a block against a packed
 * activation block gives four exact int32 lanes (lane j: products of
 * elements 4j..4j+3 of each 16-element half, |sum| < 2^17), and the row
 * result adds them in the one order every int8 kernel follows (quant.c,
 * sp_vec_dot_q8_0_q8g_scalar): IQ4_NL is the Q8_0 row whose quants are the
 * table values, and has that row's bits at every SIMD level and on every
 * architecture. */
#ifndef SHARDPIPE_QUANT_IQ4NL_H
#define SHARDPIPE_QUANT_IQ4NL_H

#include <stddef.h>
#include <stdint.h>

#include "shardpipe/quant.h"

typedef struct sp_block_iq4_nl {
    uint16_t d;            /* fp16 scale */
    uint8_t qs[SP_QK / 2]; /* table indices: low nibbles 0..15, high 16..31 */
} sp_block_iq4_nl;         /* 18 bytes */

_Static_assert(sizeof(sp_block_iq4_nl) == 18, "IQ4_NL block must match GGUF layout");

/* ggml's kvalues_iq4nl (a fact of the format). */
extern const int8_t sp_iq4nl_values[16];

/* n a multiple of SP_QK. Dequantization is d * (float)value, one f32
 * multiply per weight. The quantizer (for `synth` and tests; llama.cpp's
 * searches scales with an importance weighting, this one does not) sets
 * d = max / -127 for the value max of largest magnitude, so max maps to
 * the table's -127 exactly, and picks the nearest table value for the
 * rest (the lower on a tie). */
void sp_dequantize_row_iq4_nl(const sp_block_iq4_nl *x, float *y, int64_t n);
void sp_quantize_row_iq4_nl(const float *x, sp_block_iq4_nl *y, int64_t n);

/* Block by block, as sp_vec_dot_q4_0_q8_0_ref (for tests). */
float sp_vec_dot_iq4_nl_q8_0_ref(int64_t n, const sp_block_iq4_nl *w, const sp_block_q8_0 *a);

/* The dispatched kernels on packed activations: one row, and a tile of nw
 * weight rows against na = 1..SP_DOT_ROWS activation rows with the bits of
 * the single-row dot (the same contract as sp_vec_dot_q4_0_q8g_tile). */
float sp_vec_dot_iq4_nl_q8g(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a);
void sp_vec_dot_iq4_nl_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                                int64_t stride, int na, float *y, int64_t y_stride);

#endif
