/* attn_avx512.c - the attention kernels over the fp16 KV cache at the
 * AVX-512 levels (simd.c): the scores of a KV group's query heads against
 * its K rows, and the weighted sum of its V rows, with the bits of the
 * AVX2 kernels (dot_avx2.c), which add as the scalar level does.
 *
 * The AVX2 score of one position keeps two 8-lane accumulators, dimensions
 * i..i+7 and i+8..i+15 of each 16 in turn, then adds them and sums the 8
 * lanes in a fixed tree. One 16-lane register holds both: its lanes 0-7
 * are the first accumulator's, lanes 8-15 the second's, and one fused
 * multiply-add on 16 converted halves does what two did, lane for lane.
 * The values kernel adds w_p * v_p into each element of y in position
 * order; 16 elements a register instead of 8 changes nothing per element.
 * Both halve the conversions and multiply-adds per position, which for a
 * long prompt are a fifth of the time (each of a 1000-token prompt's rows
 * attends to 500 positions on average). */
#include <immintrin.h>

#include "dot.h"
#include "dot_x86.h"

#define SP_ATTN_MAX_HD 256 /* head sizes up to this take the converted-K path */

/* A 16-lane score accumulator's two halves added: lanes 0-7 + lanes
 * 8-15, the AVX2 kernel's acc0 + acc1. */
static inline __m256 halves(__m512 a)
{
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
}

void sp_attn_scores_f16_avx512(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq,
                               float scale, float *s, int64_t s_stride)
{
    if (hd % 16) { /* a last 8 of acc0 alone, or a scalar tail: the AVX2 kernel's steps */
        sp_attn_scores_f16_avx2(hd, n, k, k_stride, q, nq, scale, s, s_stride);
        return;
    }
    int p = 0;
    const __m256 vs = _mm256_set1_ps(scale);
    /* With four or more heads in the group, 8 positions' K rows are
     * converted once into kf and each head reads them from L1; with fewer
     * (multi-head attention: one) each head converts them as it goes,
     * which there costs less than the store and reload (512 positions,
     * head size 64, scores GFLOPS on Zen 5, converting per head -> through
     * kf: 2 heads 65-86 -> 51-69, 4 heads 88-90 -> 98-99, 8 heads 83-91 ->
     * 110-120; the AVX2 kernel 58-88) */
    _Alignas(64) float kf[8 * SP_ATTN_MAX_HD];
    const int via_kf = nq >= 4 && hd <= SP_ATTN_MAX_HD;
    for (; p + 8 <= n; p += 8) {
        const uint16_t *kp = k + (int64_t)p * k_stride;
        if (via_kf)
            for (int j = 0; j < 8; j++)
                for (int i = 0; i < hd; i += 16)
                    _mm512_store_ps(kf + j * hd + i,
                                    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kp + j * k_stride + i))));
        for (int g = 0; g < nq; g++) {
            const float *qg = q + (int64_t)g * hd;
            __m512 acc[8];
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) acc[j] = _mm512_setzero_ps();
            for (int i = 0; i < hd; i += 16) {
                __m512 a = _mm512_loadu_ps(qg + i);
                if (via_kf) {
                    #pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) acc[j] = _mm512_fmadd_ps(_mm512_load_ps(kf + j * hd + i), a, acc[j]);
                } else {
                    #pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
                        acc[j] = _mm512_fmadd_ps(
                            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kp + j * k_stride + i))), a, acc[j]);
                }
            }
            __m256 v[8];
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) v[j] = halves(acc[j]);
            __m256 r = sum_lanes8x8(v); /* the AVX2 kernel's tree */
            _mm256_storeu_ps(s + g * s_stride + p, _mm256_mul_ps(r, vs));
        }
    }
    if (p < n) /* the last 1-7 positions: the AVX2 kernel's single dots */
        sp_attn_scores_f16_avx2(hd, n - p, k + (int64_t)p * k_stride, k_stride, q, nq, scale, s + p, s_stride);
}

void sp_attn_values_f16_avx512(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, float *y)
{
    int i = 0;
    for (; i + 64 <= hd; i += 64) {
        __m512 acc[4];
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[j] = _mm512_loadu_ps(y + i + 16 * j);
        for (int p = 0; p < n; p++) {
            const uint16_t *vp = v + (int64_t)p * v_stride + i;
            __m512 wp = _mm512_set1_ps(w[p]);
            #pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[j] = _mm512_fmadd_ps(wp, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vp + 16 * j))), acc[j]);
        }
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(y + i + 16 * j, acc[j]);
    }
    if (i < hd) /* the rest of the row, 8 or fewer elements at a time */
        sp_attn_values_f16_avx2(hd - i, n, v + i, v_stride, w, y + i);
}
