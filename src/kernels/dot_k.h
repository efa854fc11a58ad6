/* dot_k.h - private to src/kernels: the K-quants' packed sub-block scales
 * decoded to integers (ggml's packing, quant_k.h) for the portable code and
 * every level's kernels, and the f32 steps of a super-block they share. */
#ifndef SP_KERNELS_DOT_K_H
#define SP_KERNELS_DOT_K_H

#include <stdint.h>

#include "dot.h"
#include "shardpipe/quant.h"

/* Q3_K's sixteen 6-bit scales in 12 bytes: the low 4 bits of scale j are
 * byte j's low nibble (j < 8) or byte j - 8's high nibble; its high 2 bits
 * are bits 2 (j / 4) .. 2 (j / 4) + 1 of byte 8 + j % 4. Stored + 32. */
static inline int sp_q3_k_scale(const uint8_t *s, int j)
{
    int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | hi << 4;
}

/* Q4_K / Q5_K: eight 6-bit scales and mins in 12 bytes (ggml's
 * get_scale_min_k4): for j < 4 the low 6 bits of bytes j (scale) and j + 4
 * (min); for j >= 4 the nibbles of byte j + 4 (scale low, min high) with
 * their top 2 bits in bits 6-7 of bytes j - 4 (scale) and j (min). */
static inline void sp_k4_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* The same unpacking four bytes at a time, as the SIMD kernels use it:
 * Q4_K / Q5_K's 12 scale bytes to bytes 0..7 of u = the eight scales and
 * bytes 8..15 = the eight mins; Q3_K's to its sixteen 6-bit scales (still
 * + 32), little-endian. Equal to the per-value functions above; kept in
 * words so a kernel can move them to a vector register without a store
 * (a 16-byte load of four 4-byte stores stalls store forwarding). */
static inline void sp_k4_scales16(const uint8_t *s, uint32_t u[4])
{
    __builtin_memcpy(u, s, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    u[3] = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4); /* mins 4..7 */
    uint32_t mins03 = u[1] & m6;
    u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);        /* scales 4..7 */
    u[2] = mins03;
    u[0] &= m6;                                            /* scales 0..3 */
}

static inline void sp_q3_scales16(const uint8_t *s, uint32_t u[4])
{
    __builtin_memcpy(u, s, 12);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    uint32_t t = u[2];
    u[2] = ((u[0] >> 4) & m4) | (((t >> 4) & m2) << 4);
    u[3] = ((u[1] >> 4) & m4) | (((t >> 6) & m2) << 4);
    u[0] = (u[0] & m4) | ((t & m2) << 4);
    u[1] = (u[1] & m4) | (((t >> 2) & m2) << 4);
}

/* Types with mins (w = d sc q - dmin m) and the quant offset (w = d sc (q - off)). */
static inline int sp_k_has_min(sp_dtype t)
{
    return t == SP_DTYPE_Q2_K || t == SP_DTYPE_Q4_K || t == SP_DTYPE_Q5_K;
}

static inline int sp_k_off(sp_dtype t)
{
    return t == SP_DTYPE_Q3_K ? 4 : t == SP_DTYPE_Q6_K ? 32 : 0;
}

static inline size_t sp_k_block_bytes(sp_dtype t)
{
    switch (t) {
    case SP_DTYPE_Q2_K: return sizeof(sp_block_q2_K);
    case SP_DTYPE_Q3_K: return sizeof(sp_block_q3_K);
    case SP_DTYPE_Q4_K: return sizeof(sp_block_q4_K);
    case SP_DTYPE_Q5_K: return sizeof(sp_block_q5_K);
    default: return sizeof(sp_block_q6_K);
    }
}

/* The f32 steps of one super-block (quant_k.h): the same expression at
 * every level. */
static inline float sp_k_accumulate(float acc, float da, float d, float dmin, int has_min, int32_t s, int32_t m)
{
    acc = acc + (da * d) * (float)s;
    if (has_min) acc = acc - (da * dmin) * (float)m;
    return acc;
}

/* One super-block of the reference dot (quant_k.c): acc after its steps. */
float sp_k_dot_block(sp_dtype type, const void *block, const sp_block_q8_K *a, float acc);

/* The portable tile on rows regrouped as sp_k_x16 (quant_kx16.c). */
void sp_vec_dot_k_x16_q8_K_tile_scalar(sp_dtype type, int64_t n, const void *w, long nw, const sp_block_q8_K *a,
                                       int64_t stride, int na, float *y, int64_t y_stride);

/* A level's table of rows kernels (dot.h's sp_rows_k_fn, by type) from
 * its always-inline rows_k(type, n, w, a, stride, na, out). */
#define SP_K_ROWS_ONE(fn, rows_k, type)                                                                   \
    static void fn(int64_t n, const void *w, const sp_block_q8_K *a, int64_t stride, int na, float *out) \
    {                                                                                                    \
        rows_k(type, n, w, a, stride, na, out);                                                          \
    }
#define SP_K_ROWS_TABLE(table, rows_k)                                                   \
    SP_K_ROWS_ONE(rows_q2_k, rows_k, SP_DTYPE_Q2_K)                                      \
    SP_K_ROWS_ONE(rows_q3_k, rows_k, SP_DTYPE_Q3_K)                                      \
    SP_K_ROWS_ONE(rows_q4_k, rows_k, SP_DTYPE_Q4_K)                                      \
    SP_K_ROWS_ONE(rows_q5_k, rows_k, SP_DTYPE_Q5_K)                                      \
    SP_K_ROWS_ONE(rows_q6_k, rows_k, SP_DTYPE_Q6_K)                                      \
    const sp_rows_k_fn table[SP_N_KTYPES] = {rows_q2_k, rows_q3_k, rows_q4_k, rows_q5_k, rows_q6_k};

#endif
