/* quant_kx16.c - K-quant rows regrouped sixteen at a time for the
 * kernels (quant_k.h, "sp_k_x16"): the regrouping and its inverse, and the
 * portable dot on regrouped rows for levels without a kernel for them
 * (the reference's arithmetic block by block, so the same bits).
 *
 * A group of 16 rows of nb super-blocks is nb panels, panel b holding
 * super-block b of each of the 16 rows (the same bytes, in another order):
 *   Q4_K (2304 bytes): fp16 d[16], fp16 dmin[16]; then eight chunks of 24
 *     bytes, chunk j holding row k's sub-block j scale and min as the
 *     12-bit field sc | m << 6 at bit 12 k (little-endian); then the quants:
 *     dword D (bytes 4D..4D+3 of the row's qs) of row k at 256 + 64 D + 4 k.
 *   Q5_K (2816 bytes): Q4_K's 2304 bytes, then the fifth bits: dword D
 *     (bytes 4D..4D+3 of the row's qh) of row k at 2304 + 64 D + 4 k.
 *   Q2_K (1344 bytes): fp16 d[16], fp16 dmin[16]; then per group g of
 *     16 values the 16 rows' scale bytes (scale | min << 4, as in the file)
 *     at 64 + 16 g + k; then dword D of the row's qs at 320 + 64 D + 4 k.
 *   Q3_K (1760 bytes): fp16 d[16]; then eight chunks of 24 bytes, chunk
 *     j holding row k's 6-bit scales (stored + 32, as in the file) of
 *     groups 2j and 2j + 1 as the 12-bit field s_2j | s_2j+1 << 6 at bit
 *     12 k (Q4_K's chunks, a scale where Q4_K has its min); then the high
 *     bits: dword D (bytes 4D..4D+3 of the row's hmask) of row k at
 *     224 + 64 D + 4 k; then the low bits: dword D of the row's qs at
 *     736 + 64 D + 4 k.
 *   Q6_K (3360 bytes): fp16 d[16]; then eight 32-byte chunks, chunk j
 *     holding row k's scales of groups 2j, 2j + 1 at bytes 2k, 2k + 1;
 *     then per 16-value group g three 64-byte registers (panel_from_q6_k):
 *     the group's 6-bit quants, four of each row in its 4-byte lane, the
 *     fourth four split over the three registers' top two bits.
 * So one 64-byte load gives four quants of each of the 16 rows, which
 * a kernel multiplies with four broadcast activation bytes (one lane per
 * row: no horizontal sums), and a panel's scales need no per-row decoding
 * of ggml's 6-bit packing. */
#include <stddef.h>
#include <string.h>

#include "dot_k.h"
#include "shardpipe/quant.h"

int sp_k_x16_type(sp_dtype t)
{
    return t == SP_DTYPE_Q2_K || t == SP_DTYPE_Q3_K || t == SP_DTYPE_Q4_K || t == SP_DTYPE_Q5_K ||
           t == SP_DTYPE_Q6_K;
}

/* Row k's 12-bit field at bit 12 k of a 24-byte scale chunk. */
static void field_put(uint8_t *chunk, int k, uint32_t v)
{
    uint32_t f = v << (12 * k % 8);
    uint8_t *c = chunk + 12 * k / 8;
    c[0] |= (uint8_t)f, c[1] |= (uint8_t)(f >> 8), c[2] |= (uint8_t)(f >> 16);
}

static uint32_t field_get(const uint8_t *chunk, int k)
{
    const uint8_t *c = chunk + 12 * k / 8;
    return ((uint32_t)(c[0] | c[1] << 8 | c[2] << 16) >> (12 * k % 8)) & 0xfff;
}

/* Q4_K's 12 packed scale bytes from eight 6-bit scales and mins (the
 * inverse of sp_k4_scale_min). */
static void pack_k4_scales(const int *sc, const int *m, uint8_t s[12])
{
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] |= (uint8_t)sc[j];
            s[j + 4] |= (uint8_t)m[j];
        } else {
            s[j + 4] = (uint8_t)((sc[j] & 0xf) | (m[j] & 0xf) << 4);
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
}

/* Q4_K and Q5_K share d, dmin and the 12 scale bytes at the block's start
 * (quant_k.h) and differ in where qs sits (Q5_K's qh comes first): the
 * panel's first 2304 bytes from blocks whose qs is at qs_off. */
_Static_assert(offsetof(sp_block_q5_K, d) == offsetof(sp_block_q4_K, d) &&
                   offsetof(sp_block_q5_K, dmin) == offsetof(sp_block_q4_K, dmin) &&
                   offsetof(sp_block_q5_K, scales) == offsetof(sp_block_q4_K, scales),
               "Q4_K and Q5_K blocks start alike");

static void panel_from_k4(const uint8_t *const blk[SP_KX16], size_t qs_off, uint8_t *p)
{
    memset(p, 0, 256);
    for (int k = 0; k < SP_KX16; k++) {
        const uint8_t *b = blk[k];
        memcpy(p + 2 * k, b + offsetof(sp_block_q4_K, d), 2);
        memcpy(p + 32 + 2 * k, b + offsetof(sp_block_q4_K, dmin), 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            sp_k4_scale_min(b + offsetof(sp_block_q4_K, scales), j, &sc, &m);
            field_put(p + 64 + 24 * j, k, (uint32_t)(sc | m << 6));
        }
        for (int d = 0; d < 32; d++) memcpy(p + 256 + 64 * d + 4 * k, b + qs_off + 4 * d, 4);
    }
}

static void panel_to_k4(const uint8_t *p, int k, size_t qs_off, uint8_t *b)
{
    int sc[8], m[8];
    memcpy(b + offsetof(sp_block_q4_K, d), p + 2 * k, 2);
    memcpy(b + offsetof(sp_block_q4_K, dmin), p + 32 + 2 * k, 2);
    for (int j = 0; j < 8; j++) {
        uint32_t f = field_get(p + 64 + 24 * j, k);
        sc[j] = f & 63, m[j] = (f >> 6) & 63;
    }
    pack_k4_scales(sc, m, b + offsetof(sp_block_q4_K, scales));
    for (int d = 0; d < 32; d++) memcpy(b + qs_off + 4 * d, p + 256 + 64 * d + 4 * k, 4);
}

/* Q5_K: the Q4_K panel, then the qh dwords of the 16 rows side by side. */
static void panel_from_q5_k(const uint8_t *const blk[SP_KX16], uint8_t *p)
{
    panel_from_k4(blk, offsetof(sp_block_q5_K, qs), p);
    for (int k = 0; k < SP_KX16; k++)
        for (int d = 0; d < 8; d++)
            memcpy(p + 2304 + 64 * d + 4 * k, blk[k] + offsetof(sp_block_q5_K, qh) + 4 * d, 4);
}

static void panel_to_q5_k(const uint8_t *p, int k, uint8_t *b)
{
    panel_to_k4(p, k, offsetof(sp_block_q5_K, qs), b);
    for (int d = 0; d < 8; d++) memcpy(b + offsetof(sp_block_q5_K, qh) + 4 * d, p + 2304 + 64 * d + 4 * k, 4);
}

static void panel_from_q2_k(const sp_block_q2_K *const blk[SP_KX16], uint8_t *p)
{
    for (int k = 0; k < SP_KX16; k++) {
        const sp_block_q2_K *b = blk[k];
        memcpy(p + 2 * k, &b->d, 2);
        memcpy(p + 32 + 2 * k, &b->dmin, 2);
        for (int g = 0; g < 16; g++) p[64 + 16 * g + k] = b->scales[g];
        for (int d = 0; d < 16; d++) memcpy(p + 320 + 64 * d + 4 * k, b->qs + 4 * d, 4);
    }
}

static void panel_to_q2_k(const uint8_t *p, int k, sp_block_q2_K *b)
{
    memcpy(&b->d, p + 2 * k, 2);
    memcpy(&b->dmin, p + 32 + 2 * k, 2);
    for (int g = 0; g < 16; g++) b->scales[g] = p[64 + 16 * g + k];
    for (int d = 0; d < 16; d++) memcpy(b->qs + 4 * d, p + 320 + 64 * d + 4 * k, 4);
}

/* Q3_K: the 16 6-bit scales of a row as the file packs them (the inverse
 * of sp_q3_k_scale): low nibbles in bytes 0-7 (groups 0-7) and their high
 * nibbles (groups 8-15), the top two bits in bytes 8-11. */
static void pack_q3_k_scales(const int s[16], uint8_t out[12])
{
    memset(out, 0, 12);
    for (int j = 0; j < 16; j++) {
        out[j % 8] |= (uint8_t)((s[j] & 0xf) << (j < 8 ? 0 : 4));
        out[8 + j % 4] |= (uint8_t)((s[j] >> 4) << (2 * (j / 4)));
    }
}

static void panel_from_q3_k(const sp_block_q3_K *const blk[SP_KX16], uint8_t *p)
{
    memset(p + 32, 0, 192);
    for (int k = 0; k < SP_KX16; k++) {
        const sp_block_q3_K *b = blk[k];
        memcpy(p + 2 * k, &b->d, 2);
        for (int j = 0; j < 8; j++)
            field_put(p + 32 + 24 * j, k,
                      (uint32_t)(sp_q3_k_scale(b->scales, 2 * j) | sp_q3_k_scale(b->scales, 2 * j + 1) << 6));
        for (int d = 0; d < 8; d++) memcpy(p + 224 + 64 * d + 4 * k, b->hmask + 4 * d, 4);
        for (int d = 0; d < 16; d++) memcpy(p + 736 + 64 * d + 4 * k, b->qs + 4 * d, 4);
    }
}

static void panel_to_q3_k(const uint8_t *p, int k, sp_block_q3_K *b)
{
    int s[16];
    memcpy(&b->d, p + 2 * k, 2);
    for (int j = 0; j < 8; j++) {
        uint32_t f = field_get(p + 32 + 24 * j, k);
        s[2 * j] = (int)(f & 63), s[2 * j + 1] = (int)(f >> 6);
    }
    pack_q3_k_scales(s, b->scales);
    for (int d = 0; d < 8; d++) memcpy(b->hmask + 4 * d, p + 224 + 64 * d + 4 * k, 4);
    for (int d = 0; d < 16; d++) memcpy(b->qs + 4 * d, p + 736 + 64 * d + 4 * k, 4);
}

/* Q6_K's quants of row k, group g (elements 16 g + 4 u + t, u = 0..3) as
 * three 64-byte registers' lane k: byte t of register u (u = 0..2) is the
 * 6-bit q of element 16 g + 4 u + t in bits 0-5 and two bits of q of
 * element 16 g + 12 + t in bits 6-7 (bits 2u, 2u + 1 of it). */
static void panel_from_q6_k(const sp_block_q6_K *const blk[SP_KX16], uint8_t *p)
{
    sp_k_unpacked u;
    for (int k = 0; k < SP_KX16; k++) {
        const sp_block_q6_K *b = blk[k];
        memcpy(p + 2 * k, &b->d, 2);
        for (int j = 0; j < 8; j++) memcpy(p + 32 + 32 * j + 2 * k, b->scales + 2 * j, 2);
        sp_k_unpack(SP_DTYPE_Q6_K, b, &u);
        for (int g = 0; g < 16; g++)
            for (int r = 0; r < 3; r++)
                for (int t = 0; t < 4; t++)
                    p[288 + 192 * g + 64 * r + 4 * k + t] =
                        (uint8_t)(u.q[16 * g + 4 * r + t] | ((u.q[16 * g + 12 + t] >> (2 * r)) & 3) << 6);
    }
}

static void panel_to_q6_k(const uint8_t *p, int k, sp_block_q6_K *b)
{
    uint8_t q[SP_QK_K];
    memcpy(&b->d, p + 2 * k, 2);
    for (int j = 0; j < 8; j++) memcpy(b->scales + 2 * j, p + 32 + 32 * j + 2 * k, 2);
    for (int g = 0; g < 16; g++)
        for (int t = 0; t < 4; t++) {
            int hi = 0;
            for (int r = 0; r < 3; r++) {
                uint8_t v = p[288 + 192 * g + 64 * r + 4 * k + t];
                q[16 * g + 4 * r + t] = v & 63;
                hi |= (v >> 6) << (2 * r);
            }
            q[16 * g + 12 + t] = (uint8_t)hi;
        }
    /* the file's packing (quant_k.h): element 128 h + 32 j + l in the low
     * (j < 2) or high nibble of ql[64 h + 32 (j % 2) + l], bits 2j, 2j + 1
     * of qh[32 h + l] */
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                int v = q[128 * h + 32 * j + l];
                b->ql[64 * h + 32 * (j % 2) + l] |= (uint8_t)((v & 0xf) << (j < 2 ? 0 : 4));
                b->qh[32 * h + l] |= (uint8_t)((v >> 4) << (2 * j));
            }
}

void sp_k_x16_from_k(sp_dtype type, const void *rows, size_t row_bytes, void *out, int64_t n)
{
    const size_t bb = sp_k_block_bytes(type);
    const uint8_t *src = rows;
    uint8_t *p = out;
    for (int64_t b = 0; b < n / SP_QK_K; b++, p += SP_KX16 * bb) {
        const void *blk[SP_KX16];
        for (int k = 0; k < SP_KX16; k++) blk[k] = src + k * row_bytes + b * bb;
        if (type == SP_DTYPE_Q4_K) panel_from_k4((const uint8_t *const *)blk, offsetof(sp_block_q4_K, qs), p);
        else if (type == SP_DTYPE_Q5_K) panel_from_q5_k((const uint8_t *const *)blk, p);
        else if (type == SP_DTYPE_Q3_K) panel_from_q3_k((const sp_block_q3_K *const *)blk, p);
        else if (type == SP_DTYPE_Q2_K) panel_from_q2_k((const sp_block_q2_K *const *)blk, p);
        else panel_from_q6_k((const sp_block_q6_K *const *)blk, p);
    }
}

/* Super-block b of row k of a group, in the file layout. */
static void block_of(sp_dtype type, const uint8_t *group, int k, int64_t b, void *blk)
{
    const uint8_t *p = group + b * SP_KX16 * sp_k_block_bytes(type);
    if (type == SP_DTYPE_Q4_K) panel_to_k4(p, k, offsetof(sp_block_q4_K, qs), blk);
    else if (type == SP_DTYPE_Q5_K) panel_to_q5_k(p, k, blk);
    else if (type == SP_DTYPE_Q3_K) panel_to_q3_k(p, k, blk);
    else if (type == SP_DTYPE_Q2_K) panel_to_q2_k(p, k, blk);
    else panel_to_q6_k(p, k, blk);
}

void sp_k_x16_row(sp_dtype type, const void *group, int k, void *row, int64_t n)
{
    const size_t bb = sp_k_block_bytes(type);
    for (int64_t b = 0; b < n / SP_QK_K; b++) block_of(type, group, k, b, (uint8_t *)row + b * bb);
}

void sp_dequantize_row_k_x16(sp_dtype type, const void *group, int k, float *y, int64_t n)
{
    _Alignas(8) uint8_t blk[sizeof(sp_block_q6_K)];
    for (int64_t b = 0; b < n / SP_QK_K; b++) {
        block_of(type, group, k, b, blk);
        sp_dequantize_row_k(type, blk, y + b * SP_QK_K, SP_QK_K);
    }
}

/* The portable tile: each row of each group block by block, with the
 * reference's steps (sp_k_dot_block, quant_k.c). */
void sp_vec_dot_k_x16_q8_K_tile_scalar(sp_dtype type, int64_t n, const void *w, long nw, const sp_block_q8_K *a,
                                       int64_t stride, int na, float *y, int64_t y_stride)
{
    const int64_t nb = n / SP_QK_K;
    const size_t group_bytes = (size_t)SP_KX16 * nb * sp_k_block_bytes(type);
    _Alignas(8) uint8_t blk[sizeof(sp_block_q6_K)];
    for (long r = 0; r < nw; r++) {
        const uint8_t *group = (const uint8_t *)w + (r / SP_KX16) * group_bytes;
        for (int i = 0; i < na; i++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                block_of(type, group, (int)(r % SP_KX16), b, blk);
                acc = sp_k_dot_block(type, blk, a + i * stride + b, acc);
            }
            y[i * y_stride + r] = acc;
        }
    }
}
