/* dot_iq4nl_avx2.c - the IQ4_NL rows kernel with AVX2 (dot_iq4nl.h).
 *
 * A block's nibbles index the 16-entry table with one vpshufb per half
 * (the table fits a 128-bit lane), which gives the weights as signed bytes
 * w in [-127, 113]. vpmaddubsw multiplies unsigned by signed bytes, so it
 * takes |w| and the activations with w's sign (the Q8_0 idiom of
 * dot_avx2.c); a pair of products is at most 2 x 127 x 127 = 32258 and
 * never saturates. Unlike Q4_0's small nibbles, the two halves' int16 pairs
 * could overflow if added, so each is widened to int32 by vpmaddwd before
 * the sum. The register layout is that of dot_avx2.c's Q4_0 kernel (blocks
 * k, k+1 in the two 128-bit lanes), so the f32 steps are quant.c's order. */
#include <immintrin.h>

#include "dot_iq4nl.h"
#include "dot_x86.h"

/* One block of a partial last group, in 128 bits. */
static inline __m128 one_block(__m128 acc, const sp_block_iq4_nl *w, const sp_q8_group *g, int k, __m128i table)
{
    const __m128i m4 = _mm_set1_epi8(0x0f), ones = _mm_set1_epi16(1);
    __m128i q = _mm_loadu_si128((const __m128i *)w->qs);
    __m128i wl = _mm_shuffle_epi8(table, _mm_and_si128(q, m4));
    __m128i wh = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
    __m128i pl = _mm_maddubs_epi16(_mm_abs_epi8(wl), _mm_sign_epi8(_mm_loadu_si128((const __m128i *)g->lo[k]), wl));
    __m128i ph = _mm_maddubs_epi16(_mm_abs_epi8(wh), _mm_sign_epi8(_mm_loadu_si128((const __m128i *)g->hi[k]), wh));
    __m128i isum = _mm_add_epi32(_mm_madd_epi16(pl, ones), _mm_madd_epi16(ph, ones));
    __m128 d = _mm_set1_ps(_cvtsh_ss(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

/* One weight row against na packed activation rows, na a constant once
 * inlined into the switch below (the accumulators stay in registers): the
 * weight side of each pair of blocks (load, table lookups, |w|) is done
 * once for the na rows, each of which then runs the operations of a lone
 * row in the same order, so its bits do not depend on na. */
static inline __attribute__((always_inline)) void rows(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a,
                                                       int64_t stride, const int na, float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    const __m128i table = _mm_loadu_si128((const __m128i *)sp_iq4nl_values);
    const __m256i table2 = _mm256_broadcastsi128_si256(table);
    __m256 acc[2][SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc[0][i] = acc[1][i] = _mm256_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_iq4_nl), ahead);
        __m128 dw = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d);
        for (int k = 0; k < 4; k += 2) {
            __m256 dwk = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dw),
                                                  _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1));
            __m256i q = load_halves(w[b + k].qs, w[b + k + 1].qs);
            __m256i wl = _mm256_shuffle_epi8(table2, _mm256_and_si256(q, m4));
            __m256i wh = _mm256_shuffle_epi8(table2, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
            __m256i ul = _mm256_abs_epi8(wl), uh = _mm256_abs_epi8(wh);
            #pragma GCC unroll 4 /* SP_DOT_ROWS */
            for (int i = 0; i < na; i++) {
                const sp_q8_group *gi = a + i * stride + g;
                __m256i pl = _mm256_maddubs_epi16(ul, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)gi->lo[k]), wl));
                __m256i ph = _mm256_maddubs_epi16(uh, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)gi->hi[k]), wh));
                __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(pl, ones), _mm256_madd_epi16(ph, ones));
                acc[k / 2][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                                                _mm256_mul_ps(dwk, _mm256_loadu_ps(gi->d + 4 * k)), acc[k / 2][i]);
            }
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = one_block(tail, w + t, a + i * stride + g, (int)k, table);
        out[i] = hsum_lanes(acc[0][i], acc[1][i], tail);
    }
}

void sp_vec_dot_iq4_nl_q8g_rows_avx2(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                     int na, float *out)
{
    switch (na) {
    case 1: rows(n, w, a, stride, 1, out); break;
    case 2: rows(n, w, a, stride, 2, out); break;
    case 3: rows(n, w, a, stride, 3, out); break;
    default: rows(n, w, a, stride, 4, out); break;
    }
}
