/* dot_vnni.h - private to dot_avx512.c and dot_avxvnni.c: the int8 rows
 * kernels on 256-bit registers around vpdpbusd, which both instruction
 * sets have (EVEX-encoded with AVX-512 VNNI + VL, VEX-encoded with
 * AVX-VNNI, as on Alder Lake, Intel N100 and Zen 5). The including file
 * defines vnni256() and vnni128() as its encoding of the instruction; the
 * rest is plain AVX2, so both levels run the same operations in the same
 * order and give the same bits.
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds each group of four
 * products into an int32 lane, exactly and without saturation:
 *  - Q4_0 feeds it the raw nibbles q in [0, 15] and starts from the packed
 *    activations' bias lanes (-8 * sum a), which makes sum (q - 8) * a;
 *  - Q8_0 feeds it a + 128 and w, and subtracts 128 * sum w (q8_rows);
 *    the one-block tail feeds it |w| and a with w's sign.
 * The kernels have the shape of the AVX2 ones (dot_avx2.c): a 256-bit
 * register covers blocks k, k+1 of a group of packed activations
 * (sp_q8_group, quant.h), int32 lanes 0-3 / 4-7 belong to block k / k+1,
 * and each lane is converted to f32 and multiply-added with its block's
 * scale d_w * d_a. */
#ifndef SP_KERNELS_DOT_VNNI_H
#define SP_KERNELS_DOT_VNNI_H

#include <immintrin.h>

#include "dot.h"
#include "dot_x86.h"

/* int32 lanes += w * a for signed bytes: |w| (right even for -128, as
 * unsigned 128) times a with w's sign (0 where w is 0, whose product is 0
 * anyway); a must not be -128, which Q8_0 never produces. */
static inline __m128i dot_i8_128(__m128i isum, __m128i w, __m128i a)
{
    return vnni128(isum, _mm_abs_epi8(w), _mm_sign_epi8(a, w));
}

/* One block of a partial last group, in 128 bits. */
static inline __m128 q8_one(__m128 acc, const sp_block_q8_0 *w, const sp_q8_group *g, int k)
{
    __m128i isum = dot_i8_128(_mm_setzero_si128(), _mm_loadu_si128((const __m128i *)w->qs),
                              _mm_loadu_si128((const __m128i *)g->lo[k]));
    isum = dot_i8_128(isum, _mm_loadu_si128((const __m128i *)(w->qs + 16)),
                      _mm_loadu_si128((const __m128i *)g->hi[k]));
    __m128 d = _mm_set1_ps(_cvtsh_ss(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

static inline __m128 q4_one(__m128 acc, const sp_block_q4_0 *w, const sp_q8_group *g, int k)
{
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i q = _mm_loadu_si128((const __m128i *)w->qs);
    __m128i isum = _mm_loadu_si128((const __m128i *)(g->bias + 4 * k));
    isum = vnni128(isum, _mm_and_si128(q, m4), _mm_loadu_si128((const __m128i *)g->lo[k]));
    isum = vnni128(isum, _mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_loadu_si128((const __m128i *)g->hi[k]));
    __m128 d = _mm_set1_ps(_cvtsh_ss(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

/* The dot of one weight row with na packed activation rows (a, a + stride,
 * ...), na = 1..SP_DOT_ROWS, a compile-time constant once inlined into the
 * switch below, so the accumulators stay in registers. The weight side of
 * each group (loads, nibble masks, |w| and its sign, the scales) is done
 * once for all na rows; each row then runs exactly the operations of a
 * lone row in the same order, so its result has the same bits whatever na
 * is and whichever rows it shares the weights with. */
static inline __attribute__((always_inline)) void q4_rows(int64_t n, const sp_block_q4_0 *w,
                                                           const sp_q8_group *a, int64_t stride,
                                                           const int na, float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i idx0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i idx2 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    __m256 acc0[SP_DOT_ROWS], acc1[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_q4_0), ahead);
        __m256 dw = _mm256_castps128_ps256(scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d));
        __m256 dw0 = _mm256_permutevar8x32_ps(dw, idx0), dw2 = _mm256_permutevar8x32_ps(dw, idx2);
        __m256i q01 = load_halves(w[b].qs, w[b + 1].qs), q23 = load_halves(w[b + 2].qs, w[b + 3].qs);
        __m256i lo01 = _mm256_and_si256(q01, m4), hi01 = _mm256_and_si256(_mm256_srli_epi16(q01, 4), m4);
        __m256i lo23 = _mm256_and_si256(q23, m4), hi23 = _mm256_and_si256(_mm256_srli_epi16(q23, 4), m4);
        #pragma GCC unroll 4 /* SP_DOT_ROWS: the na accumulators stay in registers */
        for (int i = 0; i < na; i++) {
            const sp_q8_group *gi = a + i * stride + g;
            __m256i s0 = _mm256_loadu_si256((const __m256i *)gi->bias);
            s0 = vnni256(s0, lo01, _mm256_loadu_si256((const __m256i *)gi->lo[0]));
            s0 = vnni256(s0, hi01, _mm256_loadu_si256((const __m256i *)gi->hi[0]));
            __m256i s2 = _mm256_loadu_si256((const __m256i *)(gi->bias + 8));
            s2 = vnni256(s2, lo23, _mm256_loadu_si256((const __m256i *)gi->lo[2]));
            s2 = vnni256(s2, hi23, _mm256_loadu_si256((const __m256i *)gi->hi[2]));
            acc0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(dw0, _mm256_loadu_ps(gi->d)),
                                      acc0[i]);
            acc1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s2), _mm256_mul_ps(dw2, _mm256_loadu_ps(gi->d + 8)),
                                      acc1[i]);
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = q4_one(tail, w + t, a + i * stride + g, (int)k);
        out[i] = hsum_lanes(acc0[i], acc1[i], tail);
    }
}

/* Q8_0 weights are signed, so here the activations take vpdpbusd's
 * unsigned side: a + 128 (a XOR 0x80) in [1, 255], and the weight side
 * subtracts 128 * sum w per lane, which is computed once per group for all
 * na rows: sum (a + 128) w - 128 sum w = sum a w, exact in int32. */
static inline __attribute__((always_inline)) void q8_rows(int64_t n, const sp_block_q8_0 *w,
                                                           const sp_q8_group *a, int64_t stride,
                                                           const int na, float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m256i idx0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i idx2 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    __m256 acc0[SP_DOT_ROWS], acc1[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_q8_0), ahead);
        __m256 dw = _mm256_castps128_ps256(scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d));
        __m256 dw0 = _mm256_permutevar8x32_ps(dw, idx0), dw2 = _mm256_permutevar8x32_ps(dw, idx2);
        /* quants 0-15 / 16-31 of blocks 0-1, then of blocks 2-3 */
        __m256i wlo01 = load_halves(w[b].qs, w[b + 1].qs), whi01 = load_halves(w[b].qs + 16, w[b + 1].qs + 16);
        __m256i wlo23 = load_halves(w[b + 2].qs, w[b + 3].qs);
        __m256i whi23 = load_halves(w[b + 2].qs + 16, w[b + 3].qs + 16);
        /* -128 * sum w per lane: start of each row's int32 sums */
        __m256i neg01 = vnni256(_mm256_setzero_si256(), x80, wlo01);
        neg01 = _mm256_sub_epi32(_mm256_setzero_si256(), vnni256(neg01, x80, whi01));
        __m256i neg23 = vnni256(_mm256_setzero_si256(), x80, wlo23);
        neg23 = _mm256_sub_epi32(_mm256_setzero_si256(), vnni256(neg23, x80, whi23));
        #pragma GCC unroll 4 /* SP_DOT_ROWS: the na accumulators stay in registers */
        for (int i = 0; i < na; i++) {
            const sp_q8_group *gi = a + i * stride + g;
            __m256i s0 = vnni256(
                neg01, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)gi->lo[0]), x80), wlo01);
            s0 = vnni256(s0, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)gi->hi[0]), x80),
                                     whi01);
            __m256i s2 = vnni256(
                neg23, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)gi->lo[2]), x80), wlo23);
            s2 = vnni256(s2, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)gi->hi[2]), x80),
                                     whi23);
            acc0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(dw0, _mm256_loadu_ps(gi->d)),
                                      acc0[i]);
            acc1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s2), _mm256_mul_ps(dw2, _mm256_loadu_ps(gi->d + 8)),
                                      acc1[i]);
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = q8_one(tail, w + t, a + i * stride + g, (int)k);
        out[i] = hsum_lanes(acc0[i], acc1[i], tail);
    }
}


/* The rows kernel of a level: na is a constant in each case, so the
 * accumulators stay in registers. */
static inline void q8_rows_n(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride, int na,
                             float *out)
{
    switch (na) {
    case 1: q8_rows(n, w, a, stride, 1, out); break;
    case 2: q8_rows(n, w, a, stride, 2, out); break;
    case 3: q8_rows(n, w, a, stride, 3, out); break;
    default: q8_rows(n, w, a, stride, 4, out); break;
    }
}

static inline void q4_rows_n(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride, int na,
                             float *out)
{
    switch (na) {
    case 1: q4_rows(n, w, a, stride, 1, out); break;
    case 2: q4_rows(n, w, a, stride, 2, out); break;
    case 3: q4_rows(n, w, a, stride, 3, out); break;
    default: q4_rows(n, w, a, stride, 4, out); break;
    }
}

#endif
