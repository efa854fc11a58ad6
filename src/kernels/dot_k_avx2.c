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
#include "dot_k_x86.h"

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
    __m128i sc, mn;
    sp_k_group_scales_x86(type, block, &sc, &mn, &k->d, &k->dmin);
    k->scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, evenodd));
    k->sc16 = _mm256_cvtepi8_epi16(sc);
    k->m16 = _mm256_cvtepu8_epi16(mn);
}

static inline __attribute__((always_inline)) void rows_k(sp_dtype type, int64_t n, const void *w,
                                                         const sp_block_q8_K *a, int64_t stride, int na, float *out)
{
    const int has_min = sp_k_has_min(type);
    const int off_shift = sp_k_off(type) == 4 ? 2 : sp_k_off(type) == 32 ? 5 : 0; /* x off as a shift */
    const size_t bb = sp_k_block_bytes(type);
    const int64_t ahead = sp_prefetch_ahead;
    __m128 acc = _mm_setzero_ps();
    const uint8_t *blk = w;
    for (int64_t b = 0; b < n / SP_QK_K; b++, blk += bb) {
        sp_prefetch_group(blk, (int)bb, ahead);
        __m256i q[8];
        sp_k_unpack_avx2(type, blk, q);
        kscales k;
        scales_of(type, blk, &k);
        __m256i s8[SP_DOT_ROWS], m8[SP_DOT_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < SP_DOT_ROWS; i++) {
            s8[i] = m8[i] = _mm256_setzero_si256();
            if (i >= na) continue;
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
            s8[i] = s;
            if (has_min) m8[i] = _mm256_madd_epi16(bs, k.m16);
        }
        acc = sp_k_finish4(acc, s8, m8, a, stride, b, na, k.d, k.dmin, has_min);
    }
    float r[4];
    _mm_storeu_ps(r, acc);
    for (int i = 0; i < na; i++) out[i] = r[i];
}

SP_K_ROWS_TABLE(sp_rows_k_avx2, rows_k)

/* Q8_K activations (sp_quantize_row_q8_K_ref's bytes): amax is exact in
 * any order, d and 1/d are the same scalar steps, x * (1/d) the same f32
 * product, vroundps to nearest even what nearbyintf does in the default
 * rounding mode, then the clamp to [-127, 127] and the groups' sums. */
void sp_quantize_row_q8_K_avx2(const float *x, sp_block_q8_K *y, int64_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    for (int64_t b = 0; b < n / SP_QK_K; b++, x += SP_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < SP_QK_K; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h), d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        y[b].d = d;
        for (int g = 0; g < 16; g++) {
            __m256i q[2];
            for (int k = 0; k < 2; k++) {
                __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8 * k), vid),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[k] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(v), lim), nlim);
            }
            /* 16 int32 to int8 in order (the packs work per 128-bit lane) */
            __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
            __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * g), p8);
            __m256i s = _mm256_add_epi32(q[0], q[1]);
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            y[b].bsums[g] = (int16_t)_mm_cvtsi128_si32(s4);
        }
    }
}
