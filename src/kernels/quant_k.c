/* quant_k.c - the K-quant formats in portable C: unpacking a super-block
 * into its quants and integer scales (ggml's element order), dequantizing
 * rows, simple quantizers, the Q8_K activations and the scalar reference
 * dot every SIMD level reproduces bit for bit (quant_k.h gives the sums). */
#include <math.h>
#include <string.h>

#include "dot.h"
#include "dot_k.h"
#include "shardpipe/quant.h"

int sp_dtype_is_k(sp_dtype t)
{
    return t >= SP_DTYPE_Q2_K && t <= SP_DTYPE_Q6_K;
}

void sp_k_unpack(sp_dtype type, const void *block, sp_k_unpacked *u)
{
    memset(u, 0, sizeof *u);
    switch (type) {
    case SP_DTYPE_Q2_K: {
        const sp_block_q2_K *b = block;
        /* two halves of 128: byte 32 h + l holds elements 128 h + 32 j + l
         * in bits 2j, 2j + 1 */
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++) u->q[128 * h + 32 * j + l] = (b->qs[32 * h + l] >> (2 * j)) & 3;
        for (int g = 0; g < 16; g++) u->sc[g] = b->scales[g] & 0xf, u->m[g] = b->scales[g] >> 4;
        u->d = sp_fp16_to_f32(b->d);
        u->dmin = sp_fp16_to_f32(b->dmin);
        break;
    }
    case SP_DTYPE_Q3_K: {
        const sp_block_q3_K *b = block;
        /* as Q2_K, plus the high bit of element 128 h + 32 j + l in bit
         * 4 h + j of hmask[l]; the weight is (low + 4 high) - 4 */
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++)
                    u->q[128 * h + 32 * j + l] = (uint8_t)(((b->qs[32 * h + l] >> (2 * j)) & 3) |
                                                           ((b->hmask[l] >> (4 * h + j)) & 1) << 2);
        for (int g = 0; g < 16; g++) u->sc[g] = sp_q3_k_scale(b->scales, g) - 32;
        u->off = 4;
        u->d = sp_fp16_to_f32(b->d);
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        /* chunk c of 64: byte 32 c + l's low nibble is element 64 c + l
         * (sub-block 2c), its high nibble element 64 c + 32 + l (2c + 1);
         * Q5_K's fifth bits are bits 2c and 2c + 1 of qh[l] */
        const uint8_t *qs, *sc, *qh = NULL;
        uint16_t d, dmin;
        if (type == SP_DTYPE_Q4_K) {
            const sp_block_q4_K *b = block;
            qs = b->qs, sc = b->scales, d = b->d, dmin = b->dmin;
        } else {
            const sp_block_q5_K *b = block;
            qs = b->qs, sc = b->scales, qh = b->qh, d = b->d, dmin = b->dmin;
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * c + l] & 0xf, hi = qs[32 * c + l] >> 4;
                if (qh) lo |= ((qh[l] >> (2 * c)) & 1) << 4, hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                u->q[64 * c + l] = (uint8_t)lo;
                u->q[64 * c + 32 + l] = (uint8_t)hi;
            }
        for (int j = 0; j < 8; j++) {
            int s, m;
            sp_k4_scale_min(sc, j, &s, &m);
            u->sc[2 * j] = u->sc[2 * j + 1] = s;
            u->m[2 * j] = u->m[2 * j + 1] = m;
        }
        u->d = sp_fp16_to_f32(d);
        u->dmin = sp_fp16_to_f32(dmin);
        break;
    }
    case SP_DTYPE_Q6_K: {
        const sp_block_q6_K *b = block;
        /* half h of 128: element 128 h + 32 k + l takes the low (k < 2) or
         * high (k >= 2) nibble of ql[64 h + 32 (k % 2) + l] and bits 2k,
         * 2k + 1 of qh[32 h + l] */
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    int ql = b->ql[64 * h + 32 * (k % 2) + l];
                    int lo = k < 2 ? ql & 0xf : ql >> 4;
                    u->q[128 * h + 32 * k + l] = (uint8_t)(lo | ((b->qh[32 * h + l] >> (2 * k)) & 3) << 4);
                }
        for (int g = 0; g < 16; g++) u->sc[g] = b->scales[g];
        u->off = 32;
        u->d = sp_fp16_to_f32(b->d);
        break;
    }
    default:
        break;
    }
}

/* ggml's arithmetic per value: (d * sc) * q, minus dmin * m where the type
 * has mins. */
void sp_dequantize_row_k(sp_dtype type, const void *x, float *y, int64_t n)
{
    const uint8_t *p = x;
    sp_k_unpacked u;
    for (int64_t b = 0; b < n / SP_QK_K; b++, p += sp_k_block_bytes(type), y += SP_QK_K) {
        sp_k_unpack(type, p, &u);
        for (int g = 0; g < 16; g++) {
            float dl = u.d * (float)u.sc[g], ml = u.dmin * (float)u.m[g];
            for (int i = 16 * g; i < 16 * g + 16; i++) {
                float v = dl * (float)((int)u.q[i] - u.off);
                y[i] = sp_k_has_min(type) ? v - ml : v;
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * Simple quantizers: a scale (and min) per sub-block from its range, the
 * sub-block scales quantized against the super-block's largest, then each
 * weight rounded with the scales as stored. */

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void pack_k(sp_dtype type, const uint8_t *q, const int *sc, const int *m, uint16_t d, uint16_t dmin,
                   void *out)
{
    memset(out, 0, sp_k_block_bytes(type));
    switch (type) {
    case SP_DTYPE_Q2_K: {
        sp_block_q2_K *b = out;
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++) b->qs[32 * h + l] |= (uint8_t)(q[128 * h + 32 * j + l] << (2 * j));
        for (int g = 0; g < 16; g++) b->scales[g] = (uint8_t)(sc[g] | m[g] << 4);
        b->d = d, b->dmin = dmin;
        break;
    }
    case SP_DTYPE_Q3_K: {
        sp_block_q3_K *b = out;
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++) {
                    int v = q[128 * h + 32 * j + l];
                    b->qs[32 * h + l] |= (uint8_t)((v & 3) << (2 * j));
                    b->hmask[l] |= (uint8_t)((v >> 2) << (4 * h + j));
                }
        for (int j = 0; j < 16; j++) {
            int v = sc[j] + 32;
            if (j < 8) b->scales[j] |= (uint8_t)(v & 0xf);
            else b->scales[j - 8] |= (uint8_t)((v & 0xf) << 4);
            b->scales[8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
        }
        b->d = d;
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        uint8_t *qs, *s, *qh = NULL;
        if (type == SP_DTYPE_Q4_K) {
            sp_block_q4_K *b = out;
            qs = b->qs, s = b->scales, b->d = d, b->dmin = dmin;
        } else {
            sp_block_q5_K *b = out;
            qs = b->qs, s = b->scales, qh = b->qh, b->d = d, b->dmin = dmin;
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                qs[32 * c + l] = (uint8_t)((lo & 0xf) | (hi & 0xf) << 4);
                if (qh) qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            }
        for (int j = 0; j < 8; j++) {
            int a = sc[2 * j], b = m[2 * j];
            if (j < 4) {
                s[j] |= (uint8_t)a;
                s[j + 4] |= (uint8_t)b;
            } else {
                s[j + 4] = (uint8_t)((a & 0xf) | (b & 0xf) << 4);
                s[j - 4] |= (uint8_t)((a >> 4) << 6);
                s[j] |= (uint8_t)((b >> 4) << 6);
            }
        }
        break;
    }
    case SP_DTYPE_Q6_K: {
        sp_block_q6_K *b = out;
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    int v = q[128 * h + 32 * k + l];
                    b->ql[64 * h + 32 * (k % 2) + l] |= (uint8_t)((v & 0xf) << (k < 2 ? 0 : 4));
                    b->qh[32 * h + l] |= (uint8_t)((v >> 4) << (2 * k));
                }
        for (int g = 0; g < 16; g++) b->scales[g] = (int8_t)sc[g];
        b->d = d;
        break;
    }
    default:
        break;
    }
}

/* One super-block. Groups are 16 values (32 for Q4_K / Q5_K, whose two
 * groups of a sub-block share the scale). */
static void quantize_block_k(sp_dtype type, const float *x, void *out)
{
    const int gsize = type == SP_DTYPE_Q4_K || type == SP_DTYPE_Q5_K ? 32 : 16, ng = SP_QK_K / gsize;
    float scale[16], minv[16];
    int sc[16] = {0}, m[16] = {0};
    uint8_t q[SP_QK_K];
    uint16_t dh = 0, dmh = 0;
    if (sp_k_has_min(type)) {
        /* w = s * q - mn with q in [0, qmax], mn >= 0 */
        const int qmax = type == SP_DTYPE_Q2_K ? 3 : type == SP_DTYPE_Q4_K ? 15 : 31;
        const int smax = type == SP_DTYPE_Q2_K ? 15 : 63;
        float maxs = 0, maxm = 0;
        for (int g = 0; g < ng; g++) {
            float lo = 0, hi = 0;
            for (int i = 0; i < gsize; i++) {
                float v = x[g * gsize + i];
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            scale[g] = (hi - lo) / qmax;
            minv[g] = -lo;
            if (scale[g] > maxs) maxs = scale[g];
            if (minv[g] > maxm) maxm = minv[g];
        }
        dh = sp_f32_to_fp16(maxs / smax);
        dmh = sp_f32_to_fp16(maxm / smax);
        float d = sp_fp16_to_f32(dh), dmin = sp_fp16_to_f32(dmh);
        for (int g = 0; g < ng; g++) {
            int s = d > 0 ? clampi((int)nearbyintf(scale[g] / d), 0, smax) : 0;
            int mm = dmin > 0 ? clampi((int)nearbyintf(minv[g] / dmin), 0, smax) : 0;
            float ds = d * (float)s, dm = dmin * (float)mm;
            for (int i = 0; i < gsize; i++)
                q[g * gsize + i] = (uint8_t)(ds > 0 ? clampi((int)nearbyintf((x[g * gsize + i] + dm) / ds), 0, qmax) : 0);
            sc[g] = s, m[g] = mm;
        }
        if (gsize == 32) /* pack_k reads sub-block j's scale from group 2j */
            for (int g = ng - 1; g >= 0; g--) sc[2 * g] = sc[2 * g + 1] = sc[g], m[2 * g] = m[2 * g + 1] = m[g];
    } else {
        /* w = s * (q - off): the value of largest magnitude, with its sign,
         * maps to -off (as Q4_0 does), so the range is used fully */
        const int off = type == SP_DTYPE_Q3_K ? 4 : 32;
        const int smax = type == SP_DTYPE_Q3_K ? 31 : 127, smin = type == SP_DTYPE_Q3_K ? -32 : -128;
        float amax_s = 0;
        for (int g = 0; g < ng; g++) {
            float amax = 0, mx = 0;
            for (int i = 0; i < gsize; i++)
                if (fabsf(x[g * gsize + i]) > amax) amax = fabsf(x[g * gsize + i]), mx = x[g * gsize + i];
            scale[g] = mx / (float)-off;
            if (fabsf(scale[g]) > amax_s) amax_s = fabsf(scale[g]);
        }
        dh = sp_f32_to_fp16(amax_s / smax);
        float d = sp_fp16_to_f32(dh);
        for (int g = 0; g < ng; g++) {
            int s = d > 0 ? clampi((int)nearbyintf(scale[g] / d), smin, smax) : 0;
            float ds = d * (float)s;
            for (int i = 0; i < gsize; i++)
                q[g * gsize + i] =
                    (uint8_t)(ds != 0 ? clampi((int)nearbyintf(x[g * gsize + i] / ds), -off, off - 1) + off : off);
            sc[g] = s;
        }
    }
    pack_k(type, q, sc, m, dh, dmh, out);
}

void sp_quantize_row_k(sp_dtype type, const float *x, void *y, int64_t n)
{
    uint8_t *p = y;
    for (int64_t b = 0; b < n / SP_QK_K; b++) quantize_block_k(type, x + b * SP_QK_K, p + b * sp_k_block_bytes(type));
}

/* ---------------------------------------------------------------------------
 * Q8_K activations and the reference dot. */

void sp_quantize_row_q8_K_ref(const float *x, sp_block_q8_K *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK_K; b++, x += SP_QK_K) {
        float amax = 0;
        for (int i = 0; i < SP_QK_K; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = d;
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 16 * g; i < 16 * g + 16; i++) {
                int q = clampi((int)nearbyintf(x[i] * id), -127, 127);
                y[b].qs[i] = (int8_t)q;
                sum += q;
            }
            y[b].bsums[g] = (int16_t)sum;
        }
    }
}

/* One super-block's step of the reference dot: its exact S and M, then
 * the two f32 steps into acc (sp_k_accumulate). */
float sp_k_dot_block(sp_dtype type, const void *block, const sp_block_q8_K *a, float acc)
{
    sp_k_unpacked u;
    sp_k_unpack(type, block, &u);
    int32_t s = 0, m = 0;
    for (int g = 0; g < 16; g++) {
        int32_t isum = 0;
        for (int i = 16 * g; i < 16 * g + 16; i++) isum += (int32_t)u.q[i] * a->qs[i];
        s += u.sc[g] * (isum - u.off * a->bsums[g]);
        m += u.m[g] * a->bsums[g];
    }
    return sp_k_accumulate(acc, a->d, u.d, u.dmin, sp_k_has_min(type), s, m);
}

/* The order every level follows (quant_k.h): exact S and M per super-block,
 * then two unfused f32 steps into one accumulator, super-blocks in order. */
float sp_vec_dot_k_q8_K_ref(sp_dtype type, int64_t n, const void *w, const sp_block_q8_K *a)
{
    const uint8_t *p = w;
    float acc = 0.0f;
    for (int64_t b = 0; b < n / SP_QK_K; b++, p += sp_k_block_bytes(type)) acc = sp_k_dot_block(type, p, a + b, acc);
    return acc;
}
