/* dot_neon.c - vec_dot kernels for aarch64: plain Advanced SIMD (every
 * aarch64 CPU, e.g. the Cortex-A53 of a Raspberry Pi 3) and the Armv8.2
 * dot product extension (SDOT: Cortex-A55/A76, Raspberry Pi 5), which
 * simd.c selects only when the kernel reports HWCAP_ASIMDDP.
 *
 * Every kernel here adds in the order the scalar level defines (quant.c),
 * which is the register layout of the x86 kernels, so an Arm board and an
 * x86 board give the same bits for the same rows:
 *  - int8 dots: per block four exact int32 lanes, lane j holding the
 *    products 4j..4j+3 of each 16-byte half. SDOT (vdotq_s32) adds exactly
 *    those four into a lane; plain NEON multiplies with vmull_s8 (8 int16
 *    products, |w a| <= 128 * 127) and adds neighbours twice (vpaddlq_s16,
 *    vpaddq_s32). Q4_0 takes (nibble - 8) signed, which gives the lane the
 *    same integer as the x86 kernels' raw nibbles plus bias lanes. Each
 *    lane is converted to f32 and fused-multiply-added with d_w * d_a into
 *    the accumulator of its block's place in the group (four float32x4 per
 *    row: the two 8-lane registers of the x86 kernels), a partial last
 *    group into a tail accumulator, and the lanes are summed as in quant.c.
 *  - f32 and fp16 dots: the 8-lane accumulators of the AVX2 kernels as
 *    pairs of float32x4. */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "dot.h"

/* fp16 to f32 with the hardware conversion (fcvt), always on aarch64. */
static inline float fp16_to_f32(uint16_t h)
{
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

/* Q4_0 block as two vectors of signed bytes (nibble - 8): elements 0..15
 * are the low nibbles, 16..31 the high ones. */
static inline void unpack_q4(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi)
{
    uint8x16_t q = vld1q_u8(qs);
    int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
}

/* ---- plain NEON ---- */

static inline int32x4_t dot32_neon(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1)
{
    int32x4_t lo = vpaddq_s32(vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(a0))),
                              vpaddlq_s16(vmull_high_s8(w0, a0)));
    int32x4_t hi = vpaddq_s32(vpaddlq_s16(vmull_s8(vget_low_s8(w1), vget_low_s8(a1))),
                              vpaddlq_s16(vmull_high_s8(w1, a1)));
    return vaddq_s32(lo, hi);
}

/* Quants 0..15 / 16..31 and the f32 scale of block b of a packed row. */
static inline int8x16_t act_lo(const sp_q8_group *a, int64_t b)
{
    return vld1q_s8(a[b / 4].lo[b % 4]);
}

static inline int8x16_t act_hi(const sp_q8_group *a, int64_t b)
{
    return vld1q_s8(a[b / 4].hi[b % 4]);
}

static inline float act_d(const sp_q8_group *a, int64_t b)
{
    return a[b / 4].d[4 * (b % 4)];
}

/* The lanes of quant.c's order: a0..a3 for blocks 0..3 of the whole
 * groups, tail for a partial last group. */
static inline float lanes_sum(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3, float32x4_t tail)
{
    float32x4_t t = vaddq_f32(vaddq_f32(vaddq_f32(a0, a2), vaddq_f32(a1, a3)), tail);
    float32x2_t v = vadd_f32(vget_low_f32(t), vget_high_f32(t));
    return vget_lane_f32(v, 0) + vget_lane_f32(v, 1);
}

/* Rows kernels (dot.h): one weight row against na activation rows. Each
 * weight block is loaded (and for Q4_0 unpacked) once for the na rows;
 * every row then runs the same operations in the same order, so its output
 * has the same bits whatever na is. q4 and na are constants in each case
 * of the switches, so the accumulators stay in registers. dot32 is the
 * plain or the SDOT block dot. */
typedef int32x4_t (*dot32_fn)(int8x16_t, int8x16_t, int8x16_t, int8x16_t);

/* Block b of a Q8_0 (q4 = 0) or Q4_0 row as two signed 16-byte halves
 * (elements 0..15, 16..31) and its scale. */
static inline void load_block(const void *w, int q4, int64_t b, int8x16_t *lo, int8x16_t *hi, float *d)
{
    if (q4) {
        const sp_block_q4_0 *x = (const sp_block_q4_0 *)w + b;
        unpack_q4(x->qs, lo, hi);
        *d = fp16_to_f32(x->d);
    } else {
        const sp_block_q8_0 *x = (const sp_block_q8_0 *)w + b;
        *lo = vld1q_s8(x->qs);
        *hi = vld1q_s8(x->qs + 16);
        *d = fp16_to_f32(x->d);
    }
}

/* Block b's four lanes for each of the na rows, fused into acc[i]. */
static inline __attribute__((always_inline)) void block_fma(const void *w, const int q4, int64_t b,
                                                             const sp_q8_group *a, int64_t stride, const int na,
                                                             float32x4_t *acc, dot32_fn dot32)
{
    int8x16_t wl, wh;
    float dw;
    load_block(w, q4, b, &wl, &wh, &dw);
    for (int i = 0; i < na; i++) {
        const sp_q8_group *ai = a + i * stride;
        float32x4_t s = vcvtq_f32_s32(dot32(wl, wh, act_lo(ai, b), act_hi(ai, b)));
        acc[i] = vfmaq_n_f32(acc[i], s, dw * act_d(ai, b));
    }
}

static inline __attribute__((always_inline)) void rows_neon(int64_t n, const void *w, const int q4,
                                                             const sp_q8_group *a, int64_t stride, const int na,
                                                             float *out, dot32_fn dot32)
{
    int64_t nb = n / SP_QK, b = 0;
    float32x4_t a0[SP_DOT_ROWS], a1[SP_DOT_ROWS], a2[SP_DOT_ROWS], a3[SP_DOT_ROWS], tail[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) a0[i] = a1[i] = a2[i] = a3[i] = tail[i] = vdupq_n_f32(0.0f);
    const size_t block_bytes = q4 ? sizeof(sp_block_q4_0) : sizeof(sp_block_q8_0);
    const int64_t ahead = sp_prefetch_ahead;
    for (; b + 4 <= nb; b += 4) {
        sp_prefetch_group((const char *)w + b * block_bytes, 4 * (int)block_bytes, ahead);
        block_fma(w, q4, b, a, stride, na, a0, dot32);
        block_fma(w, q4, b + 1, a, stride, na, a1, dot32);
        block_fma(w, q4, b + 2, a, stride, na, a2, dot32);
        block_fma(w, q4, b + 3, a, stride, na, a3, dot32);
    }
    for (; b < nb; b++) block_fma(w, q4, b, a, stride, na, tail, dot32);
    for (int i = 0; i < na; i++) out[i] = lanes_sum(a0[i], a1[i], a2[i], a3[i], tail[i]);
}

static inline __attribute__((always_inline)) void rows_n(int64_t n, const void *w, int q4, const sp_q8_group *a,
                                                          int64_t stride, int na, float *out, dot32_fn dot32)
{
    switch (na) {
    case 1: rows_neon(n, w, q4, a, stride, 1, out, dot32); break;
    case 2: rows_neon(n, w, q4, a, stride, 2, out, dot32); break;
    case 3: rows_neon(n, w, q4, a, stride, 3, out, dot32); break;
    default: rows_neon(n, w, q4, a, stride, 4, out, dot32); break;
    }
}

void sp_vec_dot_q8_0_q8g_rows_neon(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                   float *out)
{
    rows_n(n, w, 0, a, stride, na, out, dot32_neon);
}

void sp_vec_dot_q4_0_q8g_rows_neon(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                   float *out)
{
    rows_n(n, w, 1, a, stride, na, out, dot32_neon);
}

/* The 8-lane sum of quant.c, v = lo | hi. */
static inline float hsum8(float32x4_t lo, float32x4_t hi)
{
    float32x4_t s = vaddq_f32(lo, hi);
    float32x2_t p = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    return vget_lane_f32(p, 0) + vget_lane_f32(p, 1);
}

float sp_vec_dot_f32_neon(int64_t n, const float *w, const float *a)
{
    float32x4_t acc[4][2];
    for (int k = 0; k < 4; k++) acc[k][0] = acc[k][1] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            for (int h = 0; h < 2; h++)
                acc[k][h] = vfmaq_f32(acc[k][h], vld1q_f32(w + i + 8 * k + 4 * h), vld1q_f32(a + i + 8 * k + 4 * h));
    for (; i + 8 <= n; i += 8)
        for (int h = 0; h < 2; h++)
            acc[0][h] = vfmaq_f32(acc[0][h], vld1q_f32(w + i + 4 * h), vld1q_f32(a + i + 4 * h));
    float sum = hsum8(vaddq_f32(vaddq_f32(acc[0][0], acc[1][0]), vaddq_f32(acc[2][0], acc[3][0])),
                      vaddq_f32(vaddq_f32(acc[0][1], acc[1][1]), vaddq_f32(acc[2][1], acc[3][1])));
    for (; i < n; i++) sum = fmaf(w[i], a[i], sum);
    return sum;
}

/* ---- dequantization (prompt path): d * q is one f32 multiply, so the
 * results are bit-identical to the portable loops. */

/* Store d * q for 16 signed bytes q. */
static inline void store_scaled16(float *y, int8x16_t q, float d)
{
    int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
    vst1q_f32(y, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
    vst1q_f32(y + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d));
    vst1q_f32(y + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
    vst1q_f32(y + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d));
}

void sp_dequantize_row_q8_0_neon(const sp_block_q8_0 *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++) {
        float d = fp16_to_f32(x[b].d);
        store_scaled16(y + b * SP_QK, vld1q_s8(x[b].qs), d);
        store_scaled16(y + b * SP_QK + 16, vld1q_s8(x[b].qs + 16), d);
    }
}

void sp_dequantize_row_q4_0_neon(const sp_block_q4_0 *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++) {
        float d = fp16_to_f32(x[b].d);
        int8x16_t lo, hi;
        unpack_q4(x[b].qs, &lo, &hi);
        store_scaled16(y + b * SP_QK, lo, d);
        store_scaled16(y + b * SP_QK + 16, hi, d);
    }
}

void sp_dequantize_row_f16_neon(const uint16_t *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    for (; i < n; i++) y[i] = fp16_to_f32(x[i]);
}

/* ---- dot product extension (SDOT) ----
 * Debian's gcc-12 arm_neon.h defines vdotq_s32 under
 * "arch=armv8.2-a+dotprod", so the functions using it need that exact
 * target; the rest of the file stays plain Armv8.0. */
#define SP_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

SP_DOTPROD static inline int32x4_t dot32_sdot(int8x16_t w0, int8x16_t w1, int8x16_t a0,
                                              int8x16_t a1)
{
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
}

SP_DOTPROD void sp_vec_dot_q8_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
                                                      int64_t stride, int na, float *out)
{
    rows_n(n, w, 0, a, stride, na, out, dot32_sdot);
}

SP_DOTPROD void sp_vec_dot_q4_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
                                                      int64_t stride, int na, float *out)
{
    rows_n(n, w, 1, a, stride, na, out, dot32_sdot);
}

/* Attention over the fp16 KV cache: see dot_avx2.c. vfmaq_f32 is fused, so
 * the mad matches the reference's fmaf bit for bit. */
static inline float32x4_t load_f16x4(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* The 8 lanes (lo | hi) of an fp16 . f32 dot before their reduction, in
 * the AVX2 kernel's layout: two accumulators over steps of 16, then one
 * step of 8 into the first. */
static inline void dot_f16_halves(int64_t n, const uint16_t *w, const float *a, float32x4_t *lo, float32x4_t *hi)
{
    float32x4_t acc[2][2];
    for (int k = 0; k < 2; k++) acc[k][0] = acc[k][1] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 2; k++)
            for (int h = 0; h < 2; h++)
                acc[k][h] = vfmaq_f32(acc[k][h], load_f16x4(w + i + 8 * k + 4 * h), vld1q_f32(a + i + 8 * k + 4 * h));
    if (i + 8 <= n)
        for (int h = 0; h < 2; h++) acc[0][h] = vfmaq_f32(acc[0][h], load_f16x4(w + i + 4 * h), vld1q_f32(a + i + 4 * h));
    *lo = vaddq_f32(acc[0][0], acc[1][0]);
    *hi = vaddq_f32(acc[0][1], acc[1][1]);
}

float sp_vec_dot_f16_f32_neon(int64_t n, const uint16_t *w, const float *a)
{
    float32x4_t lo, hi;
    dot_f16_halves(n, w, a, &lo, &hi);
    float sum = hsum8(lo, hi);
    for (int64_t i = n & ~(int64_t)7; i < n; i++) sum = fmaf(fp16_to_f32(w[i]), a[i], sum);
    return sum;
}

void sp_vec_mad_f16_neon(int64_t n, float *y, const uint16_t *x, float a)
{
    float32x4_t va = vdupq_n_f32(a);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t xv = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
        vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, xv));
    }
    for (; i < n; i++) y[i] = fmaf(a, fp16_to_f32(x[i]), y[i]);
}

/* ---- attention for the heads of a KV group (quant.h), NEON ----
 * The bits of the calls above; the shapes of the AVX2 versions in
 * dot_avx2.c (not timed on a board yet). Scores: four positions' s = lo +
 * hi vectors are transposed so that ((s0 + s2) + (s1 + s3)), hsum8's
 * order, is three vector additions for all four. */
void sp_attn_scores_f16_neon(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq,
                             float scale, float *s, int64_t s_stride)
{
    int p = 0;
    if (hd % 8 == 0) {
        for (; p + 4 <= n; p += 4) {
            const uint16_t *kp = k + (int64_t)p * k_stride;
            for (int g = 0; g < nq; g++) {
                float32x4_t sv[4];
                for (int j = 0; j < 4; j++) {
                    float32x4_t lo, hi;
                    dot_f16_halves(hd, kp + j * k_stride, q + (int64_t)g * hd, &lo, &hi);
                    sv[j] = vaddq_f32(lo, hi);
                }
                float32x4_t t0 = vtrn1q_f32(sv[0], sv[1]), t1 = vtrn2q_f32(sv[0], sv[1]);
                float32x4_t t2 = vtrn1q_f32(sv[2], sv[3]), t3 = vtrn2q_f32(sv[2], sv[3]);
                float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
                float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
                float32x4_t c0 = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2)), c2 = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
                float32x4_t c1 = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3)), c3 = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
                float32x4_t r = vaddq_f32(vaddq_f32(c0, c2), vaddq_f32(c1, c3));
                vst1q_f32(s + g * s_stride + p, vmulq_n_f32(r, scale));
            }
        }
    }
    for (; p < n; p++)
        for (int g = 0; g < nq; g++)
            s[g * s_stride + p] = sp_vec_dot_f16_f32_neon(hd, k + (int64_t)p * k_stride, q + (int64_t)g * hd) * scale;
}

/* Values of one head: 64 (then 4) elements of y in registers over the
 * positions, as in dot_avx2.c. */
void sp_attn_values_f16_neon(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, float *y)
{
    int i = 0;
    for (; i + 64 <= hd; i += 64) {
        float32x4_t acc[16];
        /* unrolled, so acc stays in registers (dot_avx2.c says why) */
        #pragma GCC unroll 16
        for (int j = 0; j < 16; j++) acc[j] = vld1q_f32(y + i + 4 * j);
        for (int p = 0; p < n; p++) {
            const uint16_t *vp = v + (int64_t)p * v_stride + i;
            float32x4_t wp = vdupq_n_f32(w[p]);
            #pragma GCC unroll 16
            for (int j = 0; j < 16; j++) acc[j] = vfmaq_f32(acc[j], wp, load_f16x4(vp + 4 * j));
        }
        #pragma GCC unroll 16
        for (int j = 0; j < 16; j++) vst1q_f32(y + i + 4 * j, acc[j]);
    }
    for (; i + 4 <= hd; i += 4) {
        float32x4_t acc = vld1q_f32(y + i);
        for (int p = 0; p < n; p++) acc = vfmaq_f32(acc, vdupq_n_f32(w[p]), load_f16x4(v + (int64_t)p * v_stride + i));
        vst1q_f32(y + i, acc);
    }
    sp_attn_values_tail(i, hd, n, v, v_stride, w, y);
}

/* fp16 rounding: FCVTN rounds by FPCR, which Linux leaves at round to
 * nearest even with NaNs propagated (quieted, top payload bits kept), the
 * rules of sp_f32_to_fp16. */
void sp_round_f16_neon(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) x[i] = sp_fp16_to_f32(sp_f32_to_fp16(x[i]));
}

/* ---- e^x and SwiGLU: the steps of sp_expf (dot.h) in two double lanes per
 * register, four floats a step ---- */

static inline float64x2_t exp2d(float64x2_t x)
{
    const float64x2_t magic = vdupq_n_f64(SP_EXP_MAGIC);
    x = vminq_f64(vmaxq_f64(x, vdupq_n_f64(SP_EXP_MIN)), vdupq_n_f64(SP_EXP_MAX));
    float64x2_t z = vfmaq_f64(magic, x, vdupq_n_f64(SP_EXP_LOG2E));
    float64x2_t n = vsubq_f64(z, magic);
    float64x2_t r = vfmsq_f64(x, n, vdupq_n_f64(SP_EXP_LN2_HI));
    r = vfmsq_f64(r, n, vdupq_n_f64(SP_EXP_LN2_LO));
    float64x2_t p = vdupq_n_f64(SP_EXP_C11);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C10), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C9), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C8), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C7), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C6), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C5), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C4), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C3), p, r);
    p = vfmaq_f64(vdupq_n_f64(SP_EXP_C2), p, r);
    p = vfmaq_f64(vdupq_n_f64(1.0), p, r);
    p = vfmaq_f64(vdupq_n_f64(1.0), p, r);
    int64x2_t e = vsubq_s64(vreinterpretq_s64_f64(z), vreinterpretq_s64_f64(magic));
    float64x2_t scale = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(e, vdupq_n_s64(1023)), 52));
    return vmulq_f64(p, scale);
}

static inline float32x4_t exp4(float32x4_t xf)
{
    float32x2_t lo = vcvt_f32_f64(exp2d(vcvt_f64_f32(vget_low_f32(xf))));
    float32x4_t y = vcvt_high_f32_f64(lo, exp2d(vcvt_high_f64_f32(xf)));
    return vbslq_f32(vceqq_f32(xf, xf), y, xf); /* NaN lanes: the input */
}

void sp_exp_f32_neon(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, exp4(vld1q_f32(x + i)));
    sp_exp_f32_scalar(y + i, x + i, n - i);
}

void sp_swiglu_f32_neon(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t gv = vld1q_f32(g + i);
        float32x4_t e = exp4(vnegq_f32(gv));
        vst1q_f32(g + i, vmulq_f32(vdivq_f32(gv, vaddq_f32(vdupq_n_f32(1.0f), e)), vld1q_f32(u + i)));
    }
    sp_swiglu_f32_scalar(g + i, u + i, n - i);
}

/* sp_softmax_f32 (quant.h): partial sum j of the eight is a double lane of
 * acc[j / 2]; the last n % 8 elements are added to the same partial sums in
 * scalar code (fma is an instruction here, so sp_expf is cheap). */
void sp_softmax_f32_neon(float *s, int64_t n)
{
    int64_t i = 0;
    float32x4_t mv = vdupq_n_f32(-INFINITY);
    for (; i + 4 <= n; i += 4) {
        float32x4_t x = vld1q_f32(s + i);
        mv = vbslq_f32(vcgtq_f32(x, mv), x, mv); /* x > m ? x : m, as the scalar loop */
    }
    float lanes[4], m;
    vst1q_f32(lanes, mv);
    m = lanes[0];
    for (int k = 1; k < 4; k++)
        if (lanes[k] > m) m = lanes[k];
    for (; i < n; i++)
        if (s[i] > m) m = s[i];
    const float32x4_t mm = vdupq_n_f32(m);
    float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0)};
    for (i = 0; i + 8 <= n; i += 8) {
        float32x4_t e0 = exp4(vsubq_f32(vld1q_f32(s + i), mm)), e1 = exp4(vsubq_f32(vld1q_f32(s + i + 4), mm));
        vst1q_f32(s + i, e0);
        vst1q_f32(s + i + 4, e1);
        acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(e0)));
        acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(e0));
        acc[2] = vaddq_f64(acc[2], vcvt_f64_f32(vget_low_f32(e1)));
        acc[3] = vaddq_f64(acc[3], vcvt_high_f64_f32(e1));
    }
    double a[8];
    for (int k = 0; k < 4; k++) vst1q_f64(a + 2 * k, acc[k]);
    for (; i < n; i++) {
        s[i] = sp_expf(s[i] - m);
        a[i % 8] += s[i];
    }
    const float inv1 = (float)(1.0 / sp_softmax_sum8(a));
    const float32x4_t inv = vdupq_n_f32(inv1);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(s + i, vmulq_f32(vld1q_f32(s + i), inv));
    for (; i < n; i++) s[i] *= inv1;
}
