/* dot_neon.c - vec_dot kernels for aarch64: plain Advanced SIMD (every
 * aarch64 CPU, e.g. the Cortex-A53 of a Raspberry Pi 3) and the Armv8.2
 * dot product extension (SDOT: Cortex-A55/A76, Raspberry Pi 5), which
 * simd.c selects only when the kernel reports HWCAP_ASIMDDP.
 *
 * Per block of 32 the products w[i] * a[i] are summed exactly in int32:
 *  - NEON: vmull_s8 gives 8 int16 products (|w a| <= 128 * 127 fits), and
 *    vpadalq_s16 adds neighbouring pairs into four int32 lanes;
 *  - dotprod: vdotq_s32 adds groups of four products into int32 lanes.
 * The four lanes are converted to f32 and multiply-added with the block's
 * scale d_w * d_a into an f32 accumulator, summed across lanes at the end.
 * The activations come packed (sp_q8_group, quant.h): a block's two 16-byte
 * halves and its f32 scale are read from its group; the Q4_0 bias lanes are
 * not needed, as SDOT and vmull_s8 take (nibble - 8) signed. */
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
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)));
    s = vpadalq_s16(s, vmull_high_s8(w0, a0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(a1)));
    s = vpadalq_s16(s, vmull_high_s8(w1, a1));
    return s;
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

/* Rows kernels (dot.h): one weight row against na activation rows. Each
 * pair of weight blocks is loaded (and for Q4_0 unpacked) once for the na
 * rows; every row then runs the same operations in the same order (block b
 * into acc0, b + 1 into acc1, an odd last block into acc0), so its output
 * has the same bits whatever na is. na is a constant in each case of the
 * switches, so the accumulators stay in registers. dot32 is the plain or
 * the SDOT block dot. */
typedef int32x4_t (*dot32_fn)(int8x16_t, int8x16_t, int8x16_t, int8x16_t);

static inline __attribute__((always_inline)) void q8_rows_neon(int64_t n, const sp_block_q8_0 *w,
                                                                const sp_q8_group *a, int64_t stride,
                                                                const int na, float *out, dot32_fn dot32)
{
    int64_t nb = n / SP_QK;
    float32x4_t acc0[SP_DOT_ROWS], acc1[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        int8x16_t w0 = vld1q_s8(w[b].qs), w1 = vld1q_s8(w[b].qs + 16);
        int8x16_t v0 = vld1q_s8(w[b + 1].qs), v1 = vld1q_s8(w[b + 1].qs + 16);
        float d0 = fp16_to_f32(w[b].d), d1 = fp16_to_f32(w[b + 1].d);
        for (int i = 0; i < na; i++) {
            const sp_q8_group *ai = a + i * stride;
            int32x4_t s0 = dot32(w0, w1, act_lo(ai, b), act_hi(ai, b));
            int32x4_t s1 = dot32(v0, v1, act_lo(ai, b + 1), act_hi(ai, b + 1));
            acc0[i] = vfmaq_n_f32(acc0[i], vcvtq_f32_s32(s0), d0 * act_d(ai, b));
            acc1[i] = vfmaq_n_f32(acc1[i], vcvtq_f32_s32(s1), d1 * act_d(ai, b + 1));
        }
    }
    for (; b < nb; b++) {
        int8x16_t w0 = vld1q_s8(w[b].qs), w1 = vld1q_s8(w[b].qs + 16);
        float d0 = fp16_to_f32(w[b].d);
        for (int i = 0; i < na; i++) {
            const sp_q8_group *ai = a + i * stride;
            int32x4_t s = dot32(w0, w1, act_lo(ai, b), act_hi(ai, b));
            acc0[i] = vfmaq_n_f32(acc0[i], vcvtq_f32_s32(s), d0 * act_d(ai, b));
        }
    }
    for (int i = 0; i < na; i++) out[i] = vaddvq_f32(vaddq_f32(acc0[i], acc1[i]));
}

static inline __attribute__((always_inline)) void q4_rows_neon(int64_t n, const sp_block_q4_0 *w,
                                                                const sp_q8_group *a, int64_t stride,
                                                                const int na, float *out, dot32_fn dot32)
{
    int64_t nb = n / SP_QK;
    float32x4_t acc0[SP_DOT_ROWS], acc1[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        int8x16_t l0, h0, l1, h1;
        unpack_q4(w[b].qs, &l0, &h0);
        unpack_q4(w[b + 1].qs, &l1, &h1);
        float d0 = fp16_to_f32(w[b].d), d1 = fp16_to_f32(w[b + 1].d);
        for (int i = 0; i < na; i++) {
            const sp_q8_group *ai = a + i * stride;
            int32x4_t s0 = dot32(l0, h0, act_lo(ai, b), act_hi(ai, b));
            int32x4_t s1 = dot32(l1, h1, act_lo(ai, b + 1), act_hi(ai, b + 1));
            acc0[i] = vfmaq_n_f32(acc0[i], vcvtq_f32_s32(s0), d0 * act_d(ai, b));
            acc1[i] = vfmaq_n_f32(acc1[i], vcvtq_f32_s32(s1), d1 * act_d(ai, b + 1));
        }
    }
    for (; b < nb; b++) {
        int8x16_t l, h;
        unpack_q4(w[b].qs, &l, &h);
        float d0 = fp16_to_f32(w[b].d);
        for (int i = 0; i < na; i++) {
            const sp_q8_group *ai = a + i * stride;
            int32x4_t s = dot32(l, h, act_lo(ai, b), act_hi(ai, b));
            acc0[i] = vfmaq_n_f32(acc0[i], vcvtq_f32_s32(s), d0 * act_d(ai, b));
        }
    }
    for (int i = 0; i < na; i++) out[i] = vaddvq_f32(vaddq_f32(acc0[i], acc1[i]));
}

static inline __attribute__((always_inline)) void q8_rows_n(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a,
                                                             int64_t stride, int na, float *out, dot32_fn dot32)
{
    switch (na) {
    case 1: q8_rows_neon(n, w, a, stride, 1, out, dot32); break;
    case 2: q8_rows_neon(n, w, a, stride, 2, out, dot32); break;
    case 3: q8_rows_neon(n, w, a, stride, 3, out, dot32); break;
    default: q8_rows_neon(n, w, a, stride, 4, out, dot32); break;
    }
}

static inline __attribute__((always_inline)) void q4_rows_n(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
                                                             int64_t stride, int na, float *out, dot32_fn dot32)
{
    switch (na) {
    case 1: q4_rows_neon(n, w, a, stride, 1, out, dot32); break;
    case 2: q4_rows_neon(n, w, a, stride, 2, out, dot32); break;
    case 3: q4_rows_neon(n, w, a, stride, 3, out, dot32); break;
    default: q4_rows_neon(n, w, a, stride, 4, out, dot32); break;
    }
}

void sp_vec_dot_q8_0_q8g_rows_neon(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                   float *out)
{
    q8_rows_n(n, w, a, stride, na, out, dot32_neon);
}

void sp_vec_dot_q4_0_q8g_rows_neon(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                   float *out)
{
    q4_rows_n(n, w, a, stride, na, out, dot32_neon);
}

float sp_vec_dot_f32_neon(int64_t n, const float *w, const float *a)
{
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 4; k++)
            acc[k] = vfmaq_f32(acc[k], vld1q_f32(w + i + 4 * k), vld1q_f32(a + i + 4 * k));
    }
    for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(w + i), vld1q_f32(a + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++) sum += w[i] * a[i];
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
    q8_rows_n(n, w, a, stride, na, out, dot32_sdot);
}

SP_DOTPROD void sp_vec_dot_q4_0_q8g_rows_neon_dotprod(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
                                                      int64_t stride, int na, float *out)
{
    q4_rows_n(n, w, a, stride, na, out, dot32_sdot);
}

/* Attention over the fp16 KV cache: see dot_avx2.c. vfmaq_f32 is fused, so
 * the mad matches the reference's fmaf bit for bit. */
float sp_vec_dot_f16_f32_neon(int64_t n, const uint16_t *w, const float *a)
{
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t w0 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i)));
        float32x4_t w1 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i + 4)));
        acc0 = vfmaq_f32(acc0, w0, vld1q_f32(a + i));
        acc1 = vfmaq_f32(acc1, w1, vld1q_f32(a + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))), vld1q_f32(a + i));
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += fp16_to_f32(w[i]) * a[i];
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
