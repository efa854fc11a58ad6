/* dot_k_neon.c - the K-quant rows kernels for aarch64 (dot.h), plain
 * Advanced SIMD and with the dot product extension (SDOT). A super-block's
 * quants are unpacked once into sixteen registers of unsigned bytes q_u,
 * one 16-element group each (quant_k.c's element order); per activation
 * row each group's products are summed exactly into int32 lanes (SDOT, or
 * vmull_s8 and pairwise widening adds: |q_u a| <= 63 x 127), the lanes
 * folded to one total per group, times the group's scale, and the
 * offset / mins terms come from the activation sums: the exact S and M of
 * quant_k.h, then the reference's f32 steps, so an Arm board computes the
 * bits of the scalar level and of x86 (kernel_selftest's digest). */
#include <arm_neon.h>
#include <string.h>

#include "dot.h"
#include "dot_k.h"

static inline float fp16_to_f32(uint16_t h)
{
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

/* (x >> shift) & mask for a shift known only at run time */
static inline uint8x16_t shr_and(uint8x16_t x, int shift, uint8_t mask)
{
    return vandq_u8(vshlq_u8(x, vdupq_n_s8((int8_t)-shift)), vdupq_n_u8(mask));
}

/* Bit b of every byte moved to bit dst. */
static inline uint8x16_t bit_to(uint8x16_t x, int b, int dst)
{
    return vandq_u8(vshlq_u8(x, vdupq_n_s8((int8_t)(dst - b))), vdupq_n_u8((uint8_t)(1 << dst)));
}

static inline uint8x16_t ld(const uint8_t *p)
{
    return vld1q_u8(p);
}

/* The quants, group g (elements 16 g .. 16 g + 15) in q[g]. */
static inline void unpack(sp_dtype type, const void *block, uint8x16_t q[16])
{
    switch (type) {
    case SP_DTYPE_Q2_K: {
        const sp_block_q2_K *b = block;
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int t = 0; t < 2; t++) q[8 * h + 2 * j + t] = shr_and(ld(b->qs + 32 * h + 16 * t), 2 * j, 3);
        break;
    }
    case SP_DTYPE_Q3_K: {
        const sp_block_q3_K *b = block;
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int t = 0; t < 2; t++)
                    q[8 * h + 2 * j + t] = vorrq_u8(shr_and(ld(b->qs + 32 * h + 16 * t), 2 * j, 3),
                                                    bit_to(ld(b->hmask + 16 * t), 4 * h + j, 2));
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        const uint8_t *qs = type == SP_DTYPE_Q4_K ? ((const sp_block_q4_K *)block)->qs : ((const sp_block_q5_K *)block)->qs;
        for (int c = 0; c < 4; c++)
            for (int t = 0; t < 2; t++) {
                uint8x16_t v = ld(qs + 32 * c + 16 * t);
                q[4 * c + t] = vandq_u8(v, vdupq_n_u8(0x0f));
                q[4 * c + 2 + t] = vshrq_n_u8(v, 4);
                if (type == SP_DTYPE_Q5_K) {
                    uint8x16_t hb = ld(((const sp_block_q5_K *)block)->qh + 16 * t);
                    q[4 * c + t] = vorrq_u8(q[4 * c + t], bit_to(hb, 2 * c, 4));
                    q[4 * c + 2 + t] = vorrq_u8(q[4 * c + 2 + t], bit_to(hb, 2 * c + 1, 4));
                }
            }
        break;
    }
    default: {
        const sp_block_q6_K *b = block;
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int t = 0; t < 2; t++) {
                    uint8x16_t l = ld(b->ql + 64 * h + 32 * (k % 2) + 16 * t);
                    uint8x16_t lo = k < 2 ? vandq_u8(l, vdupq_n_u8(0x0f)) : vshrq_n_u8(l, 4);
                    uint8x16_t hi = vshlq_n_u8(shr_and(ld(b->qh + 32 * h + 16 * t), 2 * k, 3), 4);
                    q[8 * h + 2 * k + t] = vorrq_u8(lo, hi);
                }
        break;
    }
    }
}

/* Group scales as signed bytes, mins per group, d and dmin (as x86's
 * sp_k_group_scales_x86). */
static inline void group_scales(sp_dtype type, const void *block, int8x16_t *sc, uint8x16_t *mn, float *d,
                                float *dmin)
{
    uint32_t u[4];
    *mn = vdupq_n_u8(0);
    *dmin = 0.0f;
    switch (type) {
    case SP_DTYPE_Q2_K: {
        const sp_block_q2_K *b = block;
        uint8x16_t v = ld(b->scales);
        *sc = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f)));
        *mn = vshrq_n_u8(v, 4);
        *d = fp16_to_f32(b->d);
        *dmin = fp16_to_f32(b->dmin);
        break;
    }
    case SP_DTYPE_Q3_K: {
        const sp_block_q3_K *b = block;
        sp_q3_scales16(b->scales, u);
        *sc = vsubq_s8(vreinterpretq_s8_u32(vld1q_u32(u)), vdupq_n_s8(32));
        *d = fp16_to_f32(b->d);
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        const sp_block_q4_K *b = block;
        sp_k4_scales16(b->scales, u);
        uint8x16_t v = vreinterpretq_u8_u32(vld1q_u32(u));
        *sc = vreinterpretq_s8_u8(vzip1q_u8(v, v));
        *mn = vzip2q_u8(v, v);
        *d = fp16_to_f32(b->d);
        *dmin = fp16_to_f32(b->dmin);
        break;
    }
    default: {
        const sp_block_q6_K *b = block;
        *sc = vld1q_s8(b->scales);
        *d = fp16_to_f32(b->d);
        break;
    }
    }
}

/* Four groups' lanes (four int32 each) to their four totals. */
static inline int32x4_t fold4(int32x4_t g0, int32x4_t g1, int32x4_t g2, int32x4_t g3)
{
    return vpaddq_s32(vpaddq_s32(g0, g1), vpaddq_s32(g2, g3));
}

/* sum over 16 groups of x[g] * y[g], x and y int16 in two halves */
static inline int32x4_t dot16_s16(int16x8_t x0, int16x8_t x1, int16x8_t y0, int16x8_t y1)
{
    int32x4_t r = vmull_s16(vget_low_s16(x0), vget_low_s16(y0));
    r = vmlal_high_s16(r, x0, y0);
    r = vmlal_s16(r, vget_low_s16(x1), vget_low_s16(y1));
    return vmlal_high_s16(r, x1, y1);
}

static inline __attribute__((always_inline)) void rows_k(sp_dtype type, int64_t n, const void *w,
                                                         const sp_block_q8_K *a, int64_t stride, int na, float *out,
                                                         int32x4_t (*dot)(uint8x16_t, int8x16_t))
{
    const int has_min = sp_k_has_min(type);
    const int off = sp_k_off(type);
    const size_t bb = sp_k_block_bytes(type);
    const int64_t ahead = sp_prefetch_ahead;
    float acc[SP_DOT_ROWS] = {0};
    const uint8_t *blk = w;
    for (int64_t b = 0; b < n / SP_QK_K; b++, blk += bb) {
        sp_prefetch_group(blk, (int)bb, ahead);
        uint8x16_t q[16];
        unpack(type, blk, q);
        int8x16_t sc;
        uint8x16_t mn;
        float d, dmin;
        group_scales(type, blk, &sc, &mn, &d, &dmin);
        const int16x8_t sc0 = vmovl_s8(vget_low_s8(sc)), sc1 = vmovl_high_s8(sc);
        const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mn)));
        const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_high_u8(mn));
        const int32x4_t s32[4] = {vmovl_s16(vget_low_s16(sc0)), vmovl_high_s16(sc0), vmovl_s16(vget_low_s16(sc1)),
                                  vmovl_high_s16(sc1)};
        for (int i = 0; i < na; i++) {
            const sp_block_q8_K *ab = a + i * stride + b;
            int32x4_t s = vdupq_n_s32(0);
            for (int g = 0; g < 16; g += 4) {
                int32x4_t t = fold4(dot(q[g], vld1q_s8(ab->qs + 16 * g)), dot(q[g + 1], vld1q_s8(ab->qs + 16 * g + 16)),
                                    dot(q[g + 2], vld1q_s8(ab->qs + 16 * g + 32)),
                                    dot(q[g + 3], vld1q_s8(ab->qs + 16 * g + 48)));
                s = vmlaq_s32(s, t, s32[g / 4]);
            }
            const int16x8_t bs0 = vld1q_s16(ab->bsums), bs1 = vld1q_s16(ab->bsums + 8);
            if (off) s = vmlsq_s32(s, dot16_s16(bs0, bs1, sc0, sc1), vdupq_n_s32(off));
            int32_t M = has_min ? vaddvq_s32(dot16_s16(bs0, bs1, m0, m1)) : 0;
            acc[i] = sp_k_accumulate(acc[i], ab->d, d, dmin, has_min, vaddvq_s32(s), M);
        }
    }
    for (int i = 0; i < na; i++) out[i] = acc[i];
}

/* 16 products of a group as four exact int32 lanes (any four-lane split
 * gives the same fold4 total). */
static inline int32x4_t dot_neon(uint8x16_t q, int8x16_t a)
{
    int8x16_t w = vreinterpretq_s8_u8(q);
    return vpaddq_s32(vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(a))), vpaddlq_s16(vmull_high_s8(w, a)));
}

static inline __attribute__((always_inline)) void rows_k_neon(sp_dtype type, int64_t n, const void *w,
                                                              const sp_block_q8_K *a, int64_t stride, int na,
                                                              float *out)
{
    rows_k(type, n, w, a, stride, na, out, dot_neon);
}

SP_K_ROWS_TABLE(sp_rows_k_neon, rows_k_neon)

/* ---- dot product extension (see dot_neon.c for the target attribute) ---- */
#define SP_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

SP_DOTPROD static inline int32x4_t dot_sdot(uint8x16_t q, int8x16_t a)
{
    return vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(q), a);
}

#define SP_K_DOTPROD_ONE(fn, type)                                                                                  \
    SP_DOTPROD static void fn(int64_t n, const void *w, const sp_block_q8_K *a, int64_t stride, int na, float *out) \
    {                                                                                                               \
        rows_k(type, n, w, a, stride, na, out, dot_sdot);                                                           \
    }
SP_K_DOTPROD_ONE(rows_q2_k_sdot, SP_DTYPE_Q2_K)
SP_K_DOTPROD_ONE(rows_q3_k_sdot, SP_DTYPE_Q3_K)
SP_K_DOTPROD_ONE(rows_q4_k_sdot, SP_DTYPE_Q4_K)
SP_K_DOTPROD_ONE(rows_q5_k_sdot, SP_DTYPE_Q5_K)
SP_K_DOTPROD_ONE(rows_q6_k_sdot, SP_DTYPE_Q6_K)

const sp_rows_k_fn sp_rows_k_neon_dotprod[SP_N_KTYPES] = {rows_q2_k_sdot, rows_q3_k_sdot, rows_q4_k_sdot,
                                                          rows_q5_k_sdot, rows_q6_k_sdot};
