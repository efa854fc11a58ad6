/* dot_k_avx512.c - the K-quant rows kernels with AVX-512 BW + VNNI (dot.h),
 * the AVX2 kernels' arithmetic on 64-byte registers: a super-block's
 * quants (unpacked as dot_k_x86.h does, then paired) fill four registers
 * of 64 elements, groups 4v .. 4v + 3 of register v in its four 128-bit
 * lanes. Per activation row, vpmaddubsw gives adjacent pairs of products
 * and vpdpwssd adds them times the group's scale into int32 lanes (no
 * saturation: at most 2 x 63 x 127 per pair, 2^22 per lane and register),
 * then the sums fold to 8 lanes for the offset and mins terms and to the
 * exact S and M of quant_k.h: the scalar reference's bits. */
#include <immintrin.h>

#include "dot.h"
#include "dot_k.h"
#include "dot_k_x86.h"

static inline __attribute__((always_inline)) void rows_k(sp_dtype type, int64_t n, const void *w,
                                                         const sp_block_q8_K *a, int64_t stride, int na, float *out)
{
    const int has_min = sp_k_has_min(type);
    const int off_shift = sp_k_off(type) == 4 ? 2 : sp_k_off(type) == 32 ? 5 : 0; /* x off as a shift */
    const size_t bb = sp_k_block_bytes(type);
    const int64_t ahead = sp_prefetch_ahead;
    /* group g to int16 position g / 4 of 128-bit lane g % 4 */
    const __m128i by4 = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i lanes = _mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3);
    float acc[SP_DOT_ROWS] = {0};
    const uint8_t *blk = w;
    for (int64_t b = 0; b < n / SP_QK_K; b++, blk += bb) {
        sp_prefetch_group(blk, (int)bb, ahead);
        __m256i q8[8];
        sp_k_unpack_avx2(type, blk, q8);
        __m512i q[4], scv[4];
        for (int v = 0; v < 4; v++)
            q[v] = _mm512_inserti64x4(_mm512_castsi256_si512(q8[2 * v]), q8[2 * v + 1], 1);
        __m128i sc, mn;
        float d, dmin;
        sp_k_group_scales_x86(type, blk, &sc, &mn, &d, &dmin);
        const __m512i arr =
            _mm512_permutexvar_epi64(lanes, _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, by4))));
        for (int v = 0; v < 4; v++) scv[v] = _mm512_shuffle_epi8(arr, _mm512_set1_epi16((short)(0x0100 + 0x0202 * v)));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc), m16 = _mm256_cvtepu8_epi16(mn);
        for (int i = 0; i < na; i++) {
            const sp_block_q8_K *ab = a + i * stride + b;
            __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                __m512i p = _mm512_maddubs_epi16(q[v], _mm512_loadu_si512((const void *)(ab->qs + 64 * v)));
                s = _mm512_dpwssd_epi32(s, p, scv[v]);
            }
            __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
            const __m256i bs = _mm256_loadu_si256((const __m256i *)ab->bsums);
            if (off_shift) s8 = _mm256_sub_epi32(s8, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), off_shift));
            __m256i m = has_min ? _mm256_madd_epi16(bs, m16) : _mm256_setzero_si256();
            int32_t S, M;
            sp_k_hsum2(s8, m, &S, &M);
            acc[i] = sp_k_accumulate(acc[i], ab->d, d, dmin, has_min, S, M);
        }
    }
    for (int i = 0; i < na; i++) out[i] = acc[i];
}

SP_K_ROWS_TABLE(sp_rows_k_avx512, rows_k)
