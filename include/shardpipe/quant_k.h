/* quant_k.h - the K-quant block formats exactly as GGUF stores them (ggml's
 * block_q2_K .. block_q6_K), their activations (Q8_K) and dot products.
 * Included by quant.h.
 *
 * Every K type stores 256 weights (a super-block) with fp16 super-block
 * scale(s) and packed per-sub-block scales:
 *   Q2_K: 16 sub-blocks of 16; scales[i] = sc | m << 4 (4 bits each);
 *         w = d * sc * q - dmin * m, q in [0, 3] (qs: 2 bits, four planes)
 *   Q3_K: 16 sub-blocks of 16; 6-bit signed scales s - 32 packed in 12 bytes;
 *         w = d * (s - 32) * (q - 4), q = 2 low bits (qs) + 4 * high bit (hmask)
 *   Q4_K: 8 sub-blocks of 32; 6-bit sc and m packed in 12 bytes;
 *         w = d * sc * q - dmin * m, q in [0, 15]
 *   Q5_K: as Q4_K with a fifth bit per weight (qh), q in [0, 31]
 *   Q6_K: 16 sub-blocks of 16; int8 scales; w = d * sc * (q - 32), q in
 *         [0, 63] = 4 low bits (ql) + 2 high bits (qh)
 * The order of the weights inside a super-block is ggml's (see
 * sp_k_unpack in quant_k.c and docs/ARCHITECTURE.md).
 *
 * Dots: the activation row is quantized to Q8_K (one f32 scale per 256
 * values, quants in [-127, 127], and the sums of each 16 quants). Each
 * weight is written as q_u - off with an unsigned q_u, so per 16-element
 * group g the exact integers isum_g = sum q_u * a and bsum_g = sum a give
 * per super-block the exact int32 sums
 *   Q2_K: S = sum_g sc_g isum_g,              M = sum_g m_g bsum_g
 *   Q3_K: S = sum_g (s_g - 32)(isum_g - 4 bsum_g),            M = 0
 *   Q4_K, Q5_K: S = sum_j sc_j (isum_2j + isum_2j+1),  M = sum_j m_j (bsum_2j + bsum_2j+1)
 *   Q6_K: S = sum_g sc_g (isum_g - 32 bsum_g),                M = 0
 * and the row result is, super-block by super-block in order,
 *   acc = acc + (d_a * d) * (float)S   then, for types with mins,
 *   acc = acc - (d_a * dmin) * (float)M
 * in f32, unfused. Integers are exact in any order, so every SIMD level
 * gets these bits by reducing S and M to scalars per super-block. */
#ifndef SHARDPIPE_QUANT_K_H
#define SHARDPIPE_QUANT_K_H

#include <stddef.h>
#include <stdint.h>

#include "shardpipe/gguf.h"

#define SP_QK_K 256

typedef struct sp_block_q2_K {
    uint8_t scales[16];  /* low nibble: scale, high nibble: min, per 16 weights */
    uint8_t qs[64];      /* 2-bit quants */
    uint16_t d, dmin;    /* fp16 */
} sp_block_q2_K;

typedef struct sp_block_q3_K {
    uint8_t hmask[32];   /* high bit of each quant */
    uint8_t qs[64];      /* low 2 bits */
    uint8_t scales[12];  /* sixteen 6-bit scales */
    uint16_t d;
} sp_block_q3_K;

typedef struct sp_block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[12];  /* eight 6-bit scales and eight 6-bit mins */
    uint8_t qs[128];
} sp_block_q4_K;

typedef struct sp_block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];      /* fifth bit */
    uint8_t qs[128];     /* low 4 bits */
} sp_block_q5_K;

typedef struct sp_block_q6_K {
    uint8_t ql[128];     /* low 4 bits */
    uint8_t qh[64];      /* high 2 bits */
    int8_t scales[16];
    uint16_t d;
} sp_block_q6_K;

_Static_assert(sizeof(sp_block_q2_K) == 84, "Q2_K block must match GGUF layout");
_Static_assert(sizeof(sp_block_q3_K) == 110, "Q3_K block must match GGUF layout");
_Static_assert(sizeof(sp_block_q4_K) == 144, "Q4_K block must match GGUF layout");
_Static_assert(sizeof(sp_block_q5_K) == 176, "Q5_K block must match GGUF layout");
_Static_assert(sizeof(sp_block_q6_K) == 210, "Q6_K block must match GGUF layout");

/* Activations for the K dots (in memory only). */
typedef struct sp_block_q8_K {
    float d;             /* amax / 127 */
    int8_t qs[SP_QK_K];  /* round(x / d), ties to even, in [-127, 127] */
    int16_t bsums[16];   /* sums of qs[16 g .. 16 g + 15] */
} sp_block_q8_K;         /* 292 bytes */

/* 1 for Q2_K .. Q6_K. */
int sp_dtype_is_k(sp_dtype t);

/* n a multiple of SP_QK_K. Dequantization follows ggml's arithmetic per
 * value (d * sc first, then times q, minus dmin * m). */
void sp_dequantize_row_k(sp_dtype type, const void *x, float *y, int64_t n);
/* Simple quantizers (for synth and tests, not llama.cpp's search for the
 * best scales): every type; round trip error is that of the format. */
void sp_quantize_row_k(sp_dtype type, const float *x, void *y, int64_t n);
void sp_quantize_row_q8_K(const float *x, sp_block_q8_K *y, int64_t n);
/* The portable quantizer whose bytes every level's (dispatched above) has. */
void sp_quantize_row_q8_K_ref(const float *x, sp_block_q8_K *y, int64_t n);

/* The K type's weight quants of one super-block in element order as
 * unsigned values (q_u above), and the per-group integer scale / min terms;
 * the portable kernels and tests use it. */
typedef struct sp_k_unpacked {
    uint8_t q[SP_QK_K];
    int32_t sc[16];      /* per 16-element group (Q4_K/Q5_K: sub-block g / 2's) */
    int32_t m[16];       /* per group: the min's multiplier (Q2/4/5_K) */
    int32_t off;         /* Q3_K: 4, Q6_K: 32, else 0 */
    float d, dmin;
} sp_k_unpacked;
void sp_k_unpack(sp_dtype type, const void *block, sp_k_unpacked *u);

/* Dot of a K row (n values) with a Q8_K row, scalar reference (defines the
 * bits), and the dispatched version. */
float sp_vec_dot_k_q8_K_ref(sp_dtype type, int64_t n, const void *w, const sp_block_q8_K *a);
float sp_vec_dot_k_q8_K(sp_dtype type, int64_t n, const void *w, const sp_block_q8_K *a);
/* A tile as sp_vec_dot_q8_0_q8g_tile (quant.h): nw weight rows row_bytes
 * apart against na <= SP_DOT_ROWS activation rows a, a + stride, ...;
 * y[i * y_stride + r], the bits of the single-row dot. */
void sp_vec_dot_k_q8_K_tile(sp_dtype type, int64_t n, const void *w, size_t row_bytes, long nw,
                            const sp_block_q8_K *a, int64_t stride, int na, float *y, int64_t y_stride);

/* K rows regrouped sixteen at a time for the kernels (in memory only,
 * never in a file; layout in src/kernels/quant_kx16.c): a group of 16 rows
 * of n values takes the same 16 row_bytes as in the file, as n / 256
 * panels of the 16 rows' super-block b. Q2_K to Q6_K
 * (sp_k_x16_type); sp_model_load_weights regroups a matrix of such rows
 * (16 | rows) where the SIMD level in use has a kernel for it
 * (sp_simd_k_x16). Every level computes the same bits on both layouts. */
#define SP_KX16 16
#define SP_KX16_ROWS 8   /* activation rows per tile call on these rows */
int sp_k_x16_type(sp_dtype t);
/* 16 rows, row_bytes apart, to one group at out (no overlap). */
void sp_k_x16_from_k(sp_dtype type, const void *rows, size_t row_bytes, void *out, int64_t n);
/* Row k (0..15) of a group back in the file layout, or dequantized. */
void sp_k_x16_row(sp_dtype type, const void *group, int k, void *row, int64_t n);
void sp_dequantize_row_k_x16(sp_dtype type, const void *group, int k, float *y, int64_t n);
/* A tile as sp_vec_dot_k_q8_K_tile on regrouped rows: nw (a multiple of
 * 16) rows from the group at w on against na <= SP_KX16_ROWS activation
 * rows, each row's bits those of the file layout's dot. */
void sp_vec_dot_k_x16_q8_K_tile(sp_dtype type, int64_t n, const void *w, long nw, const sp_block_q8_K *a,
                                int64_t stride, int na, float *y, int64_t y_stride);

#endif
