/* dot_lanes.h - private to src/kernels: the f32 summation order of the
 * int8 rows kernels on packed activations (sp_q8_group), written out in
 * scalar C for the portable dots of quant.c and quant_iq4nl.c. */
#ifndef SP_KERNELS_DOT_LANES_H
#define SP_KERNELS_DOT_LANES_H

#include <math.h>
#include <stdint.h>

#include "shardpipe/quant.h"

/* The summation order of every level's int8 rows kernels (the x86 ones'
 * register layout, written out in scalar C): each block gives four exact
 * int32 lanes, lane j = sum of w[i] a[i] over i in {4j..4j+3, 16+4j..16+4j+3}
 * (the products vpdpbusd / vpmaddwd / SDOT add into one int32 lane of the
 * packed halves). For every whole group of four blocks, lane j of block k
 * is converted to f32 and fused-multiply-added with d_w * d_a into
 * accumulator lane 8 (k / 2) + 4 (k % 2) + j (two 8-lane registers); the
 * blocks of a partial last group go into four tail lanes the same way.
 * Then s[i] = acc[i] + acc[8 + i], t[j] = (s[j] + s[4 + j]) + tail[j], and
 * the result is (t[0] + t[2]) + (t[1] + t[3]). Every SIMD level gives these
 * bits (tests/test_quant.c, and on aarch64 tests/kernel_selftest.c), so a
 * board's logits do not depend on its instruction set. */
typedef struct lane_sums {
    float acc[16], tail[4];
} lane_sums;

static inline void lanes_add(lane_sums *ls, int64_t b, int64_t nb_whole, const int32_t isum[4], float d)
{
    for (int j = 0; j < 4; j++) {
        float *dst = b < nb_whole ? &ls->acc[8 * ((b % 4) / 2) + 4 * (b % 2) + j] : &ls->tail[j];
        *dst = fmaf((float)isum[j], d, *dst);
    }
}

static inline float lanes_sum(const lane_sums *ls)
{
    float t[4];
    for (int j = 0; j < 4; j++)
        t[j] = ((ls->acc[j] + ls->acc[8 + j]) + (ls->acc[4 + j] + ls->acc[12 + j])) + ls->tail[j];
    return (t[0] + t[2]) + (t[1] + t[3]);
}

/* Block b of a row of nb blocks with signed quants q[0..31] (Q8_0's, or
 * IQ4_NL's table values) and scale dw against packed activations a: its
 * four exact lanes into ls. */
static inline void lanes_add_i8(lane_sums *ls, int64_t b, int64_t nb, const int8_t q[SP_QK], const sp_q8_group *a,
                                float dw)
{
    const sp_q8_group *g = a + b / 4;
    int k = (int)(b % 4);
    int32_t isum[4];
    for (int j = 0; j < 4; j++) {
        isum[j] = 0;
        for (int i = 4 * j; i < 4 * j + 4; i++) isum[j] += q[i] * g->lo[k][i] + q[16 + i] * g->hi[k][i];
    }
    lanes_add(ls, b, nb - nb % 4, isum, dw * g->d[4 * k]);
}

#endif
