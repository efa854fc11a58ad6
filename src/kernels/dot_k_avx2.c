/* dot_k_avx2.c - the K-quant rows kernels with AVX2 (dot.h): each
 * super-block of the weight row is unpacked once into eight 32-byte
 * vectors of unsigned quants q_u (elements 32 v .. 32 v + 31) and its
 * integer scales, then for each activation row
 *   vpmaddubsw(q_u, a)  -> 16 int16, adjacent pairs of products (at most
 *                          2 x 63 x 127: no saturation)
 *   vpmaddwd(., sc)     -> 8 int32, times the group's scale (lanes 0-3 are
 *                          the vector's first group of 16, 4-7 the second)
 * summed over the eight vectors, minus off x (bsums . sc) for Q3_K / Q6_K,
 * and the mins' term bsums . m: the exact integers S and M of quant_k.h,
 * reduced to scalars, then the reference's f32 steps. */
#include <immintrin.h>

#include "dot.h"
#include "dot_k.h"

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
static inline void unpack_q(sp_dtype type, const void *block, __m256i q[8])
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

/* The block's integer scales for the kernel: scv holds the 16 group
 * scales as int16 with the even groups in the low 128-bit lane and the odd
 * ones in the high lane (so one in-lane byte shuffle gives vector v's pair,
 * groups 2v and 2v + 1), sc16 / m16 the group scales and mins in order. */
typedef struct kscales {
    __m256i scv, sc16, m16;
    float d, dmin;
} kscales;

static inline void scales_of(sp_dtype type, const void *block, kscales *k)
{
    const __m128i evenodd = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    uint32_t u[4];
    switch (type) {
    case SP_DTYPE_Q2_K: {
        const sp_block_q2_K *b = block;
        __m128i v = _mm_loadu_si128((const __m128i *)b->scales), m4 = _mm_set1_epi8(0x0f);
        __m128i sc = _mm_and_si128(v, m4);
        k->scv = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sc, evenodd));
        k->m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), m4));
        k->d = _cvtsh_ss(b->d);
        k->dmin = _cvtsh_ss(b->dmin);
        break;
    }
    case SP_DTYPE_Q3_K: {
        const sp_block_q3_K *b = block;
        sp_q3_scales16(b->scales, u);
        __m128i sc = _mm_sub_epi8(_mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3]), _mm_set1_epi8(32));
        k->scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, evenodd));
        k->sc16 = _mm256_cvtepi8_epi16(sc);
        k->d = _cvtsh_ss(b->d);
        break;
    }
    case SP_DTYPE_Q4_K:
    case SP_DTYPE_Q5_K: {
        /* d, dmin and the scales sit at the same offsets in both */
        const sp_block_q4_K *b = block;
        sp_k4_scales16(b->scales, u);
        __m128i v = _mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3]);
        /* group g has sub-block g / 2's scale: even and odd lanes alike */
        k->scv = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(v, v));
        k->m16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));
        k->d = _cvtsh_ss(b->d);
        k->dmin = _cvtsh_ss(b->dmin);
        break;
    }
    default: {
        const sp_block_q6_K *b = block;
        __m128i sc = _mm_loadu_si128((const __m128i *)b->scales);
        k->scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, evenodd));
        k->sc16 = _mm256_cvtepi8_epi16(sc);
        k->d = _cvtsh_ss(b->d);
        break;
    }
    }
}

/* S and M (lanes 0 and 1) of 8-lane partial sums s and m. */
static inline void hsum2(__m256i s, __m256i m, int32_t *S, int32_t *M)
{
    __m256i t = _mm256_hadd_epi32(s, m); /* s01 s23 m01 m23 | s45 s67 m45 m67 */
    __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    u = _mm_hadd_epi32(u, u);
    *S = _mm_cvtsi128_si32(u);
    *M = _mm_extract_epi32(u, 1);
}

static inline __attribute__((always_inline)) void rows_k(sp_dtype type, int64_t n, const void *w,
                                                         const sp_block_q8_K *a, int64_t stride, int na, float *out)
{
    const int has_min = type == SP_DTYPE_Q2_K || type == SP_DTYPE_Q4_K || type == SP_DTYPE_Q5_K;
    const int off_shift = type == SP_DTYPE_Q3_K ? 2 : type == SP_DTYPE_Q6_K ? 5 : 0;
    const size_t bb = sp_k_block_bytes(type);
    const int64_t ahead = sp_prefetch_ahead;
    float acc[SP_DOT_ROWS] = {0};
    const uint8_t *blk = w;
    for (int64_t b = 0; b < n / SP_QK_K; b++, blk += bb) {
        sp_prefetch_group(blk, (int)bb, ahead);
        __m256i q[8];
        unpack_q(type, blk, q);
        kscales k;
        scales_of(type, blk, &k);
        for (int i = 0; i < na; i++) {
            const sp_block_q8_K *ab = a + i * stride + b;
            __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                /* int16 lane v of each 128-bit half: groups 2v, 2v + 1 */
                __m256i scv = _mm256_shuffle_epi8(k.scv, _mm256_set1_epi16((short)(0x0100 + 0x0202 * v)));
                __m256i p = _mm256_maddubs_epi16(q[v], _mm256_loadu_si256((const __m256i *)(ab->qs + 32 * v)));
                s = _mm256_add_epi32(s, _mm256_madd_epi16(p, scv));
            }
            const __m256i bs = _mm256_loadu_si256((const __m256i *)ab->bsums);
            if (off_shift) s = _mm256_sub_epi32(s, _mm256_slli_epi32(_mm256_madd_epi16(bs, k.sc16), off_shift));
            __m256i m = has_min ? _mm256_madd_epi16(bs, k.m16) : _mm256_setzero_si256();
            int32_t S, M;
            hsum2(s, m, &S, &M);
            acc[i] = sp_k_accumulate(acc[i], ab->d, k.d, k.dmin, has_min, S, M);
        }
    }
    for (int i = 0; i < na; i++) out[i] = acc[i];
}

#define ROWS_K(name, type)                                                                                 \
    static void name(int64_t n, const void *w, const sp_block_q8_K *a, int64_t stride, int na, float *out) \
    {                                                                                                      \
        rows_k(type, n, w, a, stride, na, out);                                                            \
    }
ROWS_K(rows_q2_k, SP_DTYPE_Q2_K)
ROWS_K(rows_q3_k, SP_DTYPE_Q3_K)
ROWS_K(rows_q4_k, SP_DTYPE_Q4_K)
ROWS_K(rows_q5_k, SP_DTYPE_Q5_K)
ROWS_K(rows_q6_k, SP_DTYPE_Q6_K)

const sp_rows_k_fn sp_rows_k_avx2[SP_N_KTYPES] = {rows_q2_k, rows_q3_k, rows_q4_k, rows_q5_k, rows_q6_k};
