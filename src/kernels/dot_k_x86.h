/* dot_k_x86.h - private to the x86 K-quant kernels (dot_k_avx2.c,
 * dot_k_avx512.c; included only by files built with AVX2): a super-block's
 * weight quants unpacked to unsigned bytes q_u in element order, 32 per
 * register (the order of quant_k.c's sp_k_unpack). */
#ifndef SP_KERNELS_DOT_K_X86_H
#define SP_KERNELS_DOT_K_X86_H

#include <immintrin.h>

#include "dot_k.h"
#include "shardpipe/quant.h"

/* Bit b of every byte of x moved to bit dst (the other bits 0). A 16-bit
 * shift never carries the wanted bit across a byte: left by dst - b takes
 * it from bit b of the same byte, right by b - dst likewise. */
static inline __m256i bit_to(__m256i x, int b, int dst)
{
    __m256i s = b <= dst ? _mm256_slli_epi16(x, dst - b) : _mm256_srli_epi16(x, b - dst);
    return _mm256_and_si256(s, _mm256_set1_epi8((char)(1 << dst)));
}

/* The unsigned quants of one super-block in element order (quant_k.c's
 * sp_k_unpack, 32 at a time). */
static inline void sp_k_unpack_avx2(sp_dtype type, const void *block, __m256i q[8])
{
    const __m256i m2 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0f);
    switch (type) {
    case SP_DTYPE_Q2_K: {
        const sp_block_q2_K *b = block;
        for (int h = 0; h < 2; h++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
            for (int j = 0; j < 4; j++) q[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m2);
        }
        break;
    }
    case SP_DTYPE_Q3_K: {
        const sp_block_q3_K *b = block;
        __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                q[4 * h + j] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m2), bit_to(hm, 4 * h + j, 2));
        }
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        const uint8_t *qs = type == SP_DTYPE_Q4_K ? ((const sp_block_q4_K *)block)->qs : ((const sp_block_q5_K *)block)->qs;
        for (int c = 0; c < 4; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            q[2 * c] = _mm256_and_si256(v, m4);
            q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        if (type == SP_DTYPE_Q5_K) {
            __m256i hb = _mm256_loadu_si256((const __m256i *)((const sp_block_q5_K *)block)->qh);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                q[2 * c] = _mm256_or_si256(q[2 * c], bit_to(hb, 2 * c, 4));
                q[2 * c + 1] = _mm256_or_si256(q[2 * c + 1], bit_to(hb, 2 * c + 1, 4));
            }
        }
        break;
    }
    default: {
        const sp_block_q6_K *b = block;
        const __m256i m30 = _mm256_set1_epi8(0x30);
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            __m256i hh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            /* bits 2k, 2k + 1 of qh to bits 4, 5 */
            q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 4), m30));
            q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 2), m30));
            q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hh, m30));
            q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(hh, 2), m30));
        }
        break;
    }
    }
}

/* The block's scales per 16-element group as signed bytes (Q4_K / Q5_K:
 * each sub-block's scale twice), the mins' multipliers per group (zero
 * for Q3_K / Q6_K), and its fp16 scales as f32. */
static inline void sp_k_group_scales_x86(sp_dtype type, const void *block, __m128i *sc, __m128i *mn, float *d,
                                         float *dmin)
{
    uint32_t u[4];
    *mn = _mm_setzero_si128();
    *dmin = 0.0f;
    switch (type) {
    case SP_DTYPE_Q2_K: {
        const sp_block_q2_K *b = block;
        __m128i v = _mm_loadu_si128((const __m128i *)b->scales), m4 = _mm_set1_epi8(0x0f);
        *sc = _mm_and_si128(v, m4);
        *mn = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        *d = _cvtsh_ss(b->d);
        *dmin = _cvtsh_ss(b->dmin);
        break;
    }
    case SP_DTYPE_Q3_K: {
        const sp_block_q3_K *b = block;
        sp_q3_scales16(b->scales, u);
        *sc = _mm_sub_epi8(_mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3]), _mm_set1_epi8(32));
        *d = _cvtsh_ss(b->d);
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        /* d, dmin and the scales sit at the same offsets in both */
        const sp_block_q4_K *b = block;
        sp_k4_scales16(b->scales, u);
        __m128i v = _mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3]);
        *sc = _mm_unpacklo_epi8(v, v);
        *mn = _mm_unpackhi_epi8(v, v);
        *d = _cvtsh_ss(b->d);
        *dmin = _cvtsh_ss(b->dmin);
        break;
    }
    default: {
        const sp_block_q6_K *b = block;
        *sc = _mm_loadu_si128((const __m128i *)b->scales);
        *d = _cvtsh_ss(b->d);
        break;
    }
    }
}

/* S and M (lanes 0 and 1) of 8-lane int32 partial sums s and m. */
static inline void sp_k_hsum2(__m256i s, __m256i m, int32_t *S, int32_t *M)
{
    __m256i t = _mm256_hadd_epi32(s, m); /* s01 s23 m01 m23 | s45 s67 m45 m67 */
    __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    u = _mm_hadd_epi32(u, u);
    *S = _mm_cvtsi128_si32(u);
    *M = _mm_extract_epi32(u, 1);
}

#endif
