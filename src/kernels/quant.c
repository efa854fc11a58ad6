/* quant.c - scalar number formats: fp16/bf16 conversion, Q8_0 and Q4_0
 * quantization exactly as ggml/GGUF define it, and the portable reference
 * dot products every SIMD kernel is tested against (see quant.h).
 *
 * Everything here is plain C with no intrinsics, so it is the same on every
 * machine; the SIMD versions live in dot_*.c and are picked in simd.c. */
#include "shardpipe/quant.h"

#include <math.h>
#include <string.h>

#include "dot.h"
#include "shardpipe/quant_iq4nl.h"

/* ---------------------------------------------------------------------------
 * fp16 (IEEE binary16): 1 sign, 5 exponent (bias 15), 10 mantissa bits.
 * f32 has bias 127, so a normal half's exponent field shifts by 127-15=112. */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float sp_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;

    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return f32_from_bits(sign | f32_bits(v));
    }
    if (exp == 31) /* inf or nan: keep the payload */
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t sp_f32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;

    if (ax > 0x7f800000u) /* nan: quiet it, keep the top payload bits */
        return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
    /* 65520 is halfway between 65504 (largest half, odd mantissa) and
     * 2^16, so round-to-even sends it and everything above to infinity. */
    if (ax >= 0x477ff000u)
        return sign | 0x7c00;
    if (ax >= 0x38800000u) {
        /* normal half (|f| >= 2^-14): drop 13 mantissa bits rounding to
         * nearest even; a carry out of the mantissa correctly bumps the
         * exponent. */
        uint32_t r = ax + 0xfff + ((ax >> 13) & 1);
        return sign | (uint16_t)((r >> 13) - (112u << 10));
    }
    if (ax < 0x33000000u) /* below 2^-25: rounds to zero (2^-25 ties to 0) */
        return sign;
    /* subnormal half: the result is round(|f| / 2^-24). With the implicit
     * bit, |f| = m * 2^(e-150), so the quotient is m >> (126 - e). */
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++; /* may become 0x400, the smallest normal: still correct */
    return sign | (uint16_t)q;
}

/* bf16 is the top half of an f32. */
float sp_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t sp_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: keep it a (quiet) nan */
        return (uint16_t)((x >> 16) | 0x40);
    /* round to nearest even; overflow into the exponent gives inf, as it
     * should */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---------------------------------------------------------------------------
 * Q8_0: per block of 32, d = max|x| / 127 and q = round(x / d), so the
 * largest magnitude maps to +-127. Like ggml we multiply by id = 1/d (not
 * divide), so our bytes match files produced by llama.cpp's quantizer. */

static void quantize_q8_0(const float *x, sp_block_q8_0 *y, int64_t n, int ties_to_even)
{
    int64_t nb = n / SP_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * SP_QK;
        float amax = 0.0f;
        for (int j = 0; j < SP_QK; j++) {
            float a = fabsf(xb[j]);
            if (a > amax) amax = a;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = sp_f32_to_fp16(d);
        for (int j = 0; j < SP_QK; j++)
            y[b].qs[j] = (int8_t)(ties_to_even ? nearbyintf(xb[j] * id) : roundf(xb[j] * id));
    }
}

/* The file writer's rounding, ties away from zero as ggml's reference. */
void sp_quantize_row_q8_0(const float *x, sp_block_q8_0 *y, int64_t n)
{
    quantize_q8_0(x, y, n, 0);
}

void sp_dequantize_row_q8_0(const sp_block_q8_0 *x, float *y, int64_t n)
{
    int64_t nb = n / SP_QK;
    for (int64_t b = 0; b < nb; b++) {
        float d = sp_fp16_to_f32(x[b].d);
        for (int j = 0; j < SP_QK; j++)
            y[b * SP_QK + j] = d * (float)x[b].qs[j];
    }
}

/* ---------------------------------------------------------------------------
 * Q4_0: per block, take the value of largest magnitude WITH its sign, `max`,
 * and set d = max / -8. Then max itself maps to exactly -8 (nibble 0) and
 * the other values land in [-8, 8]; q = x/d + 8 is rounded half up by
 * truncating x/d + 8.5, and the one value that could reach 16 (a value of
 * opposite sign and equal magnitude to max) is clamped to 15. */

void sp_quantize_row_q4_0(const float *x, sp_block_q4_0 *y, int64_t n)
{
    int64_t nb = n / SP_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * SP_QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SP_QK; j++) {
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = sp_f32_to_fp16(d);
        for (int j = 0; j < SP_QK / 2; j++) {
            int lo = (int8_t)(xb[j] * id + 8.5f);
            int hi = (int8_t)(xb[j + SP_QK / 2] * id + 8.5f);
            if (lo > 15) lo = 15;
            if (hi > 15) hi = 15;
            y[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void sp_dequantize_row_q4_0(const sp_block_q4_0 *x, float *y, int64_t n)
{
    int64_t nb = n / SP_QK;
    for (int64_t b = 0; b < nb; b++) {
        float d = sp_fp16_to_f32(x[b].d);
        float *yb = y + b * SP_QK;
        for (int j = 0; j < SP_QK / 2; j++) {
            yb[j] = d * (float)((x[b].qs[j] & 0x0f) - 8);
            yb[j + SP_QK / 2] = d * (float)((x[b].qs[j] >> 4) - 8);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Dispatch over dtypes. Callers validate the type first (sp_dtype_known);
 * an unsupported type leaves zeros (dequantize) or nothing (quantize).
 * Dequantization goes through the SIMD level in use (simd.c); its results
 * are bit-identical to the portable loops above. */

void sp_dequantize_row(sp_dtype type, const void *x, float *y, int64_t n)
{
    switch (type) {
    case SP_DTYPE_F32:
        memcpy(y, x, (size_t)n * sizeof(float));
        break;
    case SP_DTYPE_F16:
        sp_simd_dequantize_row_f16(x, y, n);
        break;
    case SP_DTYPE_BF16: {
        const uint16_t *h = x;
        for (int64_t i = 0; i < n; i++) y[i] = sp_bf16_to_f32(h[i]);
        break;
    }
    case SP_DTYPE_Q8_0:
        sp_simd_dequantize_row_q8_0(x, y, n);
        break;
    case SP_DTYPE_Q4_0:
        sp_simd_dequantize_row_q4_0(x, y, n);
        break;
    case SP_DTYPE_IQ4_NL:
        sp_dequantize_row_iq4_nl(x, y, n);
        break;
    case SP_DTYPE_Q2_K: case SP_DTYPE_Q3_K: case SP_DTYPE_Q4_K: case SP_DTYPE_Q5_K: case SP_DTYPE_Q6_K:
        sp_dequantize_row_k(type, x, y, n);
        break;
    default:
        memset(y, 0, (size_t)n * sizeof(float));
        break;
    }
}

void sp_quantize_row(sp_dtype type, const float *x, void *y, int64_t n)
{
    switch (type) {
    case SP_DTYPE_F32:
        memcpy(y, x, (size_t)n * sizeof(float));
        break;
    case SP_DTYPE_F16: {
        uint16_t *h = y;
        for (int64_t i = 0; i < n; i++) h[i] = sp_f32_to_fp16(x[i]);
        break;
    }
    case SP_DTYPE_BF16: {
        uint16_t *h = y;
        for (int64_t i = 0; i < n; i++) h[i] = sp_f32_to_bf16(x[i]);
        break;
    }
    case SP_DTYPE_Q8_0:
        sp_quantize_row_q8_0(x, y, n);
        break;
    case SP_DTYPE_Q4_0:
        sp_quantize_row_q4_0(x, y, n);
        break;
    case SP_DTYPE_IQ4_NL:
        sp_quantize_row_iq4_nl(x, y, n);
        break;
    case SP_DTYPE_Q2_K: case SP_DTYPE_Q3_K: case SP_DTYPE_Q4_K: case SP_DTYPE_Q5_K: case SP_DTYPE_Q6_K:
        sp_quantize_row_k(type, x, y, n);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------------------
 * Reference dot products. Per block the integer sum of products is exact in
 * int32 (at most 32 * 128 * 128 = 2^19); the block's contribution is
 * isum * (d_w * d_a), accumulated in f32 in block order. */

float sp_vec_dot_q8_0_q8_0_ref(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a)
{
    int64_t nb = n / SP_QK;
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int32_t isum = 0;
        for (int j = 0; j < SP_QK; j++)
            isum += (int32_t)w[b].qs[j] * (int32_t)a[b].qs[j];
        sum += (float)isum * (sp_fp16_to_f32(w[b].d) * sp_fp16_to_f32(a[b].d));
    }
    return sum;
}

float sp_vec_dot_q4_0_q8_0_ref(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a)
{
    int64_t nb = n / SP_QK;
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int32_t isum = 0;
        for (int j = 0; j < SP_QK / 2; j++) {
            int lo = (w[b].qs[j] & 0x0f) - 8;
            int hi = (w[b].qs[j] >> 4) - 8;
            isum += lo * a[b].qs[j] + hi * a[b].qs[j + SP_QK / 2];
        }
        sum += (float)isum * (sp_fp16_to_f32(w[b].d) * sp_fp16_to_f32(a[b].d));
    }
    return sum;
}

float sp_vec_dot_f32_ref(int64_t n, const float *w, const float *a)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += w[i] * a[i];
    return sum;
}

float sp_vec_dot_f16_f32_ref(int64_t n, const uint16_t *w, const float *a)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += sp_fp16_to_f32(w[i]) * a[i];
    return sum;
}

/* The f32 and fp16 x f32 dots of the scalar level, in the order of the
 * AVX2 kernels, which every level follows bit for bit: lane l of
 * accumulator k takes w[i] a[i] (fused) for i = 8k + l mod 32 (f32) or
 * i = 8k + l mod 16 (f16) over the whole 32 / 16 element steps; a following
 * 8-element step goes into accumulator 0; the lanes v[l] of the summed
 * accumulators ((acc0 + acc1) + (acc2 + acc3) for f32) are reduced as
 * ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)); then the remaining
 * elements are added one at a time, fused. */
static float hsum8(const float v[8])
{
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

float sp_vec_dot_f32_scalar(int64_t n, const float *w, const float *a)
{
    float acc[4][8] = {{0}};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 8; l++) acc[k][l] = fmaf(w[i + 8 * k + l], a[i + 8 * k + l], acc[k][l]);
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[0][l] = fmaf(w[i + l], a[i + l], acc[0][l]);
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    float sum = hsum8(v);
    for (; i < n; i++) sum = fmaf(w[i], a[i], sum);
    return sum;
}

float sp_vec_dot_f16_f32_scalar(int64_t n, const uint16_t *w, const float *a)
{
    float acc[2][8] = {{0}};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 2; k++)
            for (int l = 0; l < 8; l++)
                acc[k][l] = fmaf(sp_fp16_to_f32(w[i + 8 * k + l]), a[i + 8 * k + l], acc[k][l]);
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[0][l] = fmaf(sp_fp16_to_f32(w[i + l]), a[i + l], acc[0][l]);
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = acc[0][l] + acc[1][l];
    float sum = hsum8(v);
    for (; i < n; i++) sum = fmaf(sp_fp16_to_f32(w[i]), a[i], sum);
    return sum;
}

void sp_vec_mad_f16_ref(int64_t n, float *y, const uint16_t *x, float a)
{
    for (int64_t i = 0; i < n; i++) y[i] = fmaf(a, sp_fp16_to_f32(x[i]), y[i]);
}

/* ---------------------------------------------------------------------------
 * e^x and SwiGLU (dot.h gives the recipe). The softmax of attention and
 * SwiGLU's silu take e^x of every score and every hidden unit; libm's expf
 * is a call per value and its last bit may differ between C libraries and
 * builds, while these are the same bits on every level and architecture. */

float sp_expf(float xf)
{
    if (xf != xf) return xf;
    double x = xf;
    x = x < SP_EXP_MIN ? SP_EXP_MIN : x > SP_EXP_MAX ? SP_EXP_MAX : x;
    double z = fma(x, SP_EXP_LOG2E, SP_EXP_MAGIC);
    double n = z - SP_EXP_MAGIC;
    double r = fma(n, -SP_EXP_LN2_HI, x);
    r = fma(n, -SP_EXP_LN2_LO, r);
    double p = SP_EXP_C11;
    p = fma(p, r, SP_EXP_C10);
    p = fma(p, r, SP_EXP_C9);
    p = fma(p, r, SP_EXP_C8);
    p = fma(p, r, SP_EXP_C7);
    p = fma(p, r, SP_EXP_C6);
    p = fma(p, r, SP_EXP_C5);
    p = fma(p, r, SP_EXP_C4);
    p = fma(p, r, SP_EXP_C3);
    p = fma(p, r, SP_EXP_C2);
    p = fma(p, r, 1.0);
    p = fma(p, r, 1.0);
    /* 2^n: n sits in the low bits of z; add the exponent bias, shift it in */
    int64_t zb, mb;
    double m = SP_EXP_MAGIC, scale;
    memcpy(&zb, &z, sizeof zb);
    memcpy(&mb, &m, sizeof mb);
    uint64_t sb = (uint64_t)(zb - mb + 1023) << 52;
    memcpy(&scale, &sb, sizeof scale);
    return (float)(p * scale);
}

void sp_exp_f32_scalar(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = sp_expf(x[i]);
}

void sp_softmax_f32_scalar(float *s, int64_t n)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (s[i] > m) m = s[i];
    double acc[8] = {0};
    for (int64_t i = 0; i < n; i++) {
        s[i] = sp_expf(s[i] - m);
        acc[i % 8] += s[i];
    }
    float inv = (float)(1.0 / sp_softmax_sum8(acc));
    for (int64_t i = 0; i < n; i++) s[i] *= inv;
}

void sp_swiglu_f32_scalar(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float e = sp_expf(-g[i]);
        g[i] = g[i] / (1.0f + e) * u[i];
    }
}

/* ---------------------------------------------------------------------------
 * Packed decode activations (see sp_q8_group in quant.h) and the portable
 * dots on them, which the scalar level uses. They define the f32 summation
 * order every SIMD level follows (below); the _ref functions above sum
 * block by block, so these differ from them by rounding only. */

int64_t sp_q8_group_count(int64_t n)
{
    return (n / SP_QK + 3) / 4;
}

void sp_q8_group_pack(const sp_block_q8_0 *a, sp_q8_group *g, int64_t n)
{
    int64_t nb = n / SP_QK, ng = sp_q8_group_count(n);
    memset(g, 0, (size_t)ng * sizeof *g);
    for (int64_t b = 0; b < nb; b++) {
        sp_q8_group *gr = g + b / 4;
        int k = (int)(b % 4);
        memcpy(gr->lo[k], a[b].qs, 16);
        memcpy(gr->hi[k], a[b].qs + 16, 16);
        float d = sp_fp16_to_f32(a[b].d);
        for (int j = 0; j < 4; j++) {
            int32_t sum = 0;
            for (int i = 4 * j; i < 4 * j + 4; i++) sum += a[b].qs[i] + a[b].qs[16 + i];
            gr->bias[4 * k + j] = -8 * sum;
            gr->d[4 * k + j] = d;
        }
    }
}

/* Activations (sp_quantize_row_q8g): ties to even, then packed, a chunk of
 * whole groups at a time through a stack buffer. */
void sp_quantize_row_q8g_scalar(const float *x, sp_q8_group *g, int64_t n)
{
    enum { CHUNK = 64 }; /* blocks, a multiple of 4 */
    sp_block_q8_0 blocks[CHUNK];
    for (int64_t b = 0; b < n / SP_QK; b += CHUNK) {
        int64_t len = n - b * SP_QK < CHUNK * SP_QK ? n - b * SP_QK : CHUNK * SP_QK;
        quantize_q8_0(x + b * SP_QK, blocks, len, 1);
        sp_q8_group_pack(blocks, g + b / 4, len);
    }
}

/* The summation order of every level's int8 rows kernels: dot_lanes.h. */
#include "dot_lanes.h"

float sp_vec_dot_q8_0_q8g_scalar(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a)
{
    int64_t nb = n / SP_QK;
    lane_sums ls = {{0}, {0}};
    for (int64_t b = 0; b < nb; b++) lanes_add_i8(&ls, b, nb, w[b].qs, a, sp_fp16_to_f32(w[b].d));
    return lanes_sum(&ls);
}

/* Block b of a Q4_0 row of nb blocks, in the file's layout (x16 = 0) or
 * regrouped (x16 = 1, sp_block_q4_0x16): its scale and its 16 quant bytes. */
static const uint8_t *q4_block(const void *row, int64_t nb, int x16, int64_t b, uint16_t *d)
{
    const sp_block_q4_0x16 *x = row;
    int64_t whole = x16 ? nb / 16 * 16 : 0;
    if (b < whole) {
        *d = x[b / 16].d[b % 16];
        return x[b / 16].qs[b % 16];
    }
    const sp_block_q4_0 *t = (const sp_block_q4_0 *)(x + whole / 16) + (b - whole);
    *d = t->d;
    return t->qs;
}

/* Q4_0: the raw nibbles q in [0, 15] times the activations, plus the bias
 * lanes (-8 x the lane's activations): sum (q - 8) a per lane. */
static float q4_dot_scalar(int64_t n, const void *w, int x16, const sp_q8_group *a)
{
    int64_t nb = n / SP_QK;
    lane_sums ls = {{0}, {0}};
    for (int64_t b = 0; b < nb; b++) {
        const sp_q8_group *g = a + b / 4;
        int k = (int)(b % 4);
        uint16_t dw;
        const uint8_t *qs = q4_block(w, nb, x16, b, &dw);
        int32_t isum[4];
        for (int j = 0; j < 4; j++) {
            isum[j] = g->bias[4 * k + j];
            for (int i = 4 * j; i < 4 * j + 4; i++)
                isum[j] += (qs[i] & 0x0f) * g->lo[k][i] + (qs[i] >> 4) * g->hi[k][i];
        }
        lanes_add(&ls, b, nb - nb % 4, isum, sp_fp16_to_f32(dw) * g->d[4 * k]);
    }
    return lanes_sum(&ls);
}

float sp_vec_dot_q4_0_q8g_scalar(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a)
{
    return q4_dot_scalar(n, w, 0, a);
}

float sp_vec_dot_q4_0x16_q8g_scalar(int64_t n, const void *w, const sp_q8_group *a)
{
    return q4_dot_scalar(n, w, 1, a);
}

/* ---------------------------------------------------------------------------
 * Q4_0 regrouped in panels of 16 blocks (sp_block_q4_0x16, quant.h). */

void sp_q4_0x16_from_q4_0(const sp_block_q4_0 *x, void *y, int64_t n)
{
    int64_t nb = n / SP_QK, nx = nb / 16;
    sp_block_q4_0x16 *p = y;
    for (int64_t i = 0; i < nx; i++)
        for (int k = 0; k < 16; k++) {
            p[i].d[k] = x[16 * i + k].d;
            memcpy(p[i].qs[k], x[16 * i + k].qs, SP_QK / 2);
        }
    memcpy(p + nx, x + 16 * nx, (size_t)(nb - 16 * nx) * sizeof *x);
}

void sp_dequantize_row_q4_0x16(const void *x, float *y, int64_t n)
{
    int64_t nb = n / SP_QK;
    for (int64_t b = 0; b < nb; b++) {
        uint16_t d;
        const uint8_t *qs = q4_block(x, nb, 1, b, &d);
        sp_block_q4_0 blk;
        blk.d = d;
        memcpy(blk.qs, qs, sizeof blk.qs);
        sp_dequantize_row_q4_0(&blk, y + b * SP_QK, SP_QK);
    }
}
