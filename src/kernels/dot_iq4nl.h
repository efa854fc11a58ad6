/* dot_iq4nl.h - private to src/kernels: the IQ4_NL rows kernels of each
 * level (dot_iq4nl_<level>.c), which quant_iq4nl.c dispatches to. Each is
 * one weight row against na = 1..SP_DOT_ROWS packed activation rows a,
 * a + stride, ..., with the bits of sp_vec_dot_iq4_nl_q8g_scalar for each
 * (quant_iq4nl.h states the order), for activation quants in [-127, 127]
 * as the Q8_0 quantizers produce them. */
#ifndef SP_KERNELS_DOT_IQ4NL_H
#define SP_KERNELS_DOT_IQ4NL_H

#include "dot.h"
#include "shardpipe/quant_iq4nl.h"

typedef void (*sp_rows_iq4nl_fn)(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride, int na,
                                 float *out);

float sp_vec_dot_iq4_nl_q8g_scalar(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a);

#if defined(__x86_64__)
void sp_vec_dot_iq4_nl_q8g_rows_avx2(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                     int na, float *out);
void sp_vec_dot_iq4_nl_q8g_rows_avxvnni(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                        int na, float *out);
void sp_vec_dot_iq4_nl_q8g_rows_avx512(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                       int na, float *out);
void sp_vec_dot_iq4_nl_q8g_rows_avx512vbmi(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a,
                                           int64_t stride, int na, float *out);
#endif
#if defined(__aarch64__)
void sp_vec_dot_iq4_nl_q8g_rows_neon(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                     int na, float *out);
void sp_vec_dot_iq4_nl_q8g_rows_neon_dotprod(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a,
                                             int64_t stride, int na, float *out);
#endif

#endif
