/* dot_iq4nl_vnni.h - private to dot_iq4nl_avx512.c and dot_iq4nl_avxvnni.c:
 * the IQ4_NL rows kernel around vpdpbusd on 256-bit registers, which both
 * instruction sets have; the including file defines vnni256() and vnni128()
 * as its encoding of the instruction (as dot_vnni.h does for Q4_0 / Q8_0),
 * so both levels run the same operations in the same order.
 *
 * vpdpbusd multiplies unsigned by signed bytes, exactly, four products to
 * an int32 lane. The weights go on the unsigned side as u = w + 128 in
 * [1, 241] (the table looked up with vpshufb, then XOR 0x80), and each lane
 * starts from -128 x the sum of its activations, which is 16 x the packed
 * activations' Q4_0 bias lane (-8 x that sum): sum (w + 128) a - 128 sum a
 * = sum w a, exact in int32. One shift per row and register, where the
 * sign trick (|w| and a with w's sign) would take two vpsignb. The layout
 * is dot_vnni.h's: blocks k, k+1 in the two 128-bit lanes, int32 lanes 0-3
 * / 4-7 belong to block k / k+1, and the f32 steps are quant.c's order. */
#ifndef SP_KERNELS_DOT_IQ4NL_VNNI_H
#define SP_KERNELS_DOT_IQ4NL_VNNI_H

#include <immintrin.h>

#include "dot_iq4nl.h"
#include "dot_x86.h"

/* One block of a partial last group, in 128 bits; table_u holds w + 128. */
static inline __m128 one_block(__m128 acc, const sp_block_iq4_nl *w, const sp_q8_group *g, int k, __m128i table_u)
{
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i q = _mm_loadu_si128((const __m128i *)w->qs);
    __m128i isum = _mm_slli_epi32(_mm_loadu_si128((const __m128i *)(g->bias + 4 * k)), 4);
    isum = vnni128(isum, _mm_shuffle_epi8(table_u, _mm_and_si128(q, m4)), _mm_loadu_si128((const __m128i *)g->lo[k]));
    isum = vnni128(isum, _mm_shuffle_epi8(table_u, _mm_and_si128(_mm_srli_epi16(q, 4), m4)),
                   _mm_loadu_si128((const __m128i *)g->hi[k]));
    __m128 d = _mm_set1_ps(_cvtsh_ss(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

/* One weight row against na packed activation rows (na a constant once
 * inlined into iq4nl_rows_n): a group's weight side (two loads, four table
 * lookups, the scales) once for all rows, then each row's operations in
 * the order of a lone row. */
static inline __attribute__((always_inline)) void iq4nl_rows(int64_t n, const sp_block_iq4_nl *w,
                                                             const sp_q8_group *a, int64_t stride, const int na,
                                                             float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m128i table_u = _mm_xor_si128(_mm_loadu_si128((const __m128i *)sp_iq4nl_values), _mm_set1_epi8((char)0x80));
    const __m256i table2 = _mm256_broadcastsi128_si256(table_u);
    const __m256i idx0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i idx2 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    __m256 acc0[SP_DOT_ROWS], acc1[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_iq4_nl), ahead);
        __m256 dw = _mm256_castps128_ps256(scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d));
        __m256 dw0 = _mm256_permutevar8x32_ps(dw, idx0), dw2 = _mm256_permutevar8x32_ps(dw, idx2);
        __m256i q01 = load_halves(w[b].qs, w[b + 1].qs), q23 = load_halves(w[b + 2].qs, w[b + 3].qs);
        __m256i lo01 = _mm256_shuffle_epi8(table2, _mm256_and_si256(q01, m4));
        __m256i hi01 = _mm256_shuffle_epi8(table2, _mm256_and_si256(_mm256_srli_epi16(q01, 4), m4));
        __m256i lo23 = _mm256_shuffle_epi8(table2, _mm256_and_si256(q23, m4));
        __m256i hi23 = _mm256_shuffle_epi8(table2, _mm256_and_si256(_mm256_srli_epi16(q23, 4), m4));
        #pragma GCC unroll 4 /* SP_DOT_ROWS */
        for (int i = 0; i < na; i++) {
            const sp_q8_group *gi = a + i * stride + g;
            __m256i s0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)gi->bias), 4);
            s0 = vnni256(s0, lo01, _mm256_loadu_si256((const __m256i *)gi->lo[0]));
            s0 = vnni256(s0, hi01, _mm256_loadu_si256((const __m256i *)gi->hi[0]));
            __m256i s2 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(gi->bias + 8)), 4);
            s2 = vnni256(s2, lo23, _mm256_loadu_si256((const __m256i *)gi->lo[2]));
            s2 = vnni256(s2, hi23, _mm256_loadu_si256((const __m256i *)gi->hi[2]));
            acc0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(dw0, _mm256_loadu_ps(gi->d)), acc0[i]);
            acc1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s2), _mm256_mul_ps(dw2, _mm256_loadu_ps(gi->d + 8)), acc1[i]);
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = one_block(tail, w + t, a + i * stride + g, (int)k, table_u);
        out[i] = hsum_lanes(acc0[i], acc1[i], tail);
    }
}

static inline void iq4nl_rows_n(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride, int na,
                                float *out)
{
    switch (na) {
    case 1: iq4nl_rows(n, w, a, stride, 1, out); break;
    case 2: iq4nl_rows(n, w, a, stride, 2, out); break;
    case 3: iq4nl_rows(n, w, a, stride, 3, out); break;
    default: iq4nl_rows(n, w, a, stride, 4, out); break;
    }
}

#endif
