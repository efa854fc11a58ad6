/* dot_iq4nl_neon.c - the IQ4_NL rows kernels for aarch64 (dot_iq4nl.h):
 * plain Advanced SIMD and the dot product extension (SDOT).
 *
 * A block's nibbles index the table with one TBL per half (vqtbl1q_s8: 16
 * entries, one register), giving the weights as signed bytes. Per block
 * the four int32 lanes of quant.c's order (lane j: elements 4j..4j+3 of
 * both halves) come from
 *  - SDOT: two vdotq_s32, which add exactly those four products a lane;
 *  - plain NEON: vmull_s8 of the first half's elements 0..7 with
 *    vmlal_s8 of the second half's on top (two products of at most
 *    127 x 127 each: below 2^15, no int16 overflow), the same for elements
 *    8..15, then two pairwise widening adds and one pairwise add.
 * Each lane is converted to f32 and fused-multiply-added with d_w * d_a
 * into the accumulator of its block's place in the group, a partial last
 * group into a tail accumulator, and the lanes are summed as in quant.c -
 * the layout of dot_neon.c's Q4_0 / Q8_0 kernels, and so the bits of the
 * x86 kernels. */
#include <arm_neon.h>
#include <string.h>

#include "dot_iq4nl.h"

static inline float fp16_to_f32(uint16_t h)
{
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

/* Block b's weights: elements 0..15 (low nibbles) and 16..31 (high). */
static inline void lookup(const sp_block_iq4_nl *x, int8x16_t table, int8x16_t *lo, int8x16_t *hi)
{
    uint8x16_t q = vld1q_u8(x->qs);
    *lo = vqtbl1q_s8(table, vandq_u8(q, vdupq_n_u8(0x0f)));
    *hi = vqtbl1q_s8(table, vshrq_n_u8(q, 4));
}

static inline int32x4_t lanes_plain(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1)
{
    int16x8_t p = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)), vget_low_s8(w1), vget_low_s8(a1));
    int16x8_t q = vmlal_high_s8(vmull_high_s8(w0, a0), w1, a1);
    return vpaddq_s32(vpaddlq_s16(p), vpaddlq_s16(q));
}

typedef int32x4_t (*lanes_fn)(int8x16_t, int8x16_t, int8x16_t, int8x16_t);

/* Block b of the row against each of the na activation rows, into acc[i]. */
static inline __attribute__((always_inline)) void block_fma(const sp_block_iq4_nl *w, int64_t b, int8x16_t table,
                                                             const sp_q8_group *a, int64_t stride, const int na,
                                                             float32x4_t *acc, lanes_fn lanes)
{
    int8x16_t wl, wh;
    lookup(w + b, table, &wl, &wh);
    const float dw = fp16_to_f32(w[b].d);
    const int64_t g = b / 4, k = b % 4;
    for (int i = 0; i < na; i++) {
        const sp_q8_group *gi = a + i * stride + g;
        int32x4_t s = lanes(wl, wh, vld1q_s8(gi->lo[k]), vld1q_s8(gi->hi[k]));
        acc[i] = vfmaq_n_f32(acc[i], vcvtq_f32_s32(s), dw * gi->d[4 * k]);
    }
}

static inline __attribute__((always_inline)) void rows(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a,
                                                       int64_t stride, const int na, float *out, lanes_fn lanes)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const int8x16_t table = vld1q_s8(sp_iq4nl_values);
    float32x4_t acc[5][SP_DOT_ROWS]; /* blocks 0..3 of each group, then the tail */
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < na; i++) acc[k][i] = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        sp_prefetch_group(w + b, 4 * (int)sizeof(sp_block_iq4_nl), ahead);
        for (int k = 0; k < 4; k++) block_fma(w, b + k, table, a, stride, na, acc[k], lanes);
    }
    for (; b < nb; b++) block_fma(w, b, table, a, stride, na, acc[4], lanes);
    for (int i = 0; i < na; i++) {
        float32x4_t t = vaddq_f32(vaddq_f32(vaddq_f32(acc[0][i], acc[2][i]), vaddq_f32(acc[1][i], acc[3][i])),
                                  acc[4][i]);
        float32x2_t v = vadd_f32(vget_low_f32(t), vget_high_f32(t));
        out[i] = vget_lane_f32(v, 0) + vget_lane_f32(v, 1);
    }
}

void sp_vec_dot_iq4_nl_q8g_rows_neon(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                     int na, float *out)
{
    switch (na) {
    case 1: rows(n, w, a, stride, 1, out, lanes_plain); break;
    case 2: rows(n, w, a, stride, 2, out, lanes_plain); break;
    case 3: rows(n, w, a, stride, 3, out, lanes_plain); break;
    default: rows(n, w, a, stride, 4, out, lanes_plain); break;
    }
}

/* Debian's gcc-12 defines vdotq_s32 under this exact target (dot_neon.c). */
#define SP_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

SP_DOTPROD static inline int32x4_t lanes_sdot(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1)
{
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
}

SP_DOTPROD void sp_vec_dot_iq4_nl_q8g_rows_neon_dotprod(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a,
                                                        int64_t stride, int na, float *out)
{
    switch (na) {
    case 1: rows(n, w, a, stride, 1, out, lanes_sdot); break;
    case 2: rows(n, w, a, stride, 2, out, lanes_sdot); break;
    case 3: rows(n, w, a, stride, 3, out, lanes_sdot); break;
    default: rows(n, w, a, stride, 4, out, lanes_sdot); break;
    }
}
