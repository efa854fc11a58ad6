/* dot_avx2.c - vec_dot and row dequantization kernels for x86-64 with AVX2,
 * FMA and F16C (compiled with -mavx2 -mfma -mf16c; only called when the CPU
 * has them, see simd.c). The AVX-512 level reuses the f32 dot, the
 * dequantizers and the activation quantizer from here.
 *
 * Int8 dot products use the classic AVX2 idiom: vpmaddubsw multiplies an
 * unsigned by a signed byte vector, so Q8_0 feeds it |w| and a * sign(w),
 * which gives the same products w * a, and Q4_0 its raw nibbles. Pairs of
 * products are at most 2 * 128 * 127 = 32512 and never saturate the int16
 * sums; vpmaddwd with ones then widens them to exact int32 partial sums,
 * four per block (see the packed activations below). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "dot.h"
#include "dot_x86.h"

static inline float fp16_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- int8 dots on packed activations (sp_q8_group, quant.h) ----
 * A 256-bit register covers two blocks of a group: the 16-byte halves of
 * blocks k, k+1 line up with the group's lo[k..k+1] / hi[k..k+1], and the
 * int32 lanes 0-3 / 4-7 of a product belong to block k / k+1, matching the
 * group's bias and d lanes. The four fp16 weight scales of a group are
 * gathered in a general register and converted at once. */

/* One block of a partial last group, in 128 bits. */
static inline __m128 q4_one(__m128 acc, const sp_block_q4_0 *w, const sp_q8_group *g, int k)
{
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i q = _mm_loadu_si128((const __m128i *)w->qs);
    __m128i p = _mm_add_epi16(
        _mm_maddubs_epi16(_mm_and_si128(q, m4), _mm_loadu_si128((const __m128i *)g->lo[k])),
        _mm_maddubs_epi16(_mm_and_si128(_mm_srli_epi16(q, 4), m4),
                          _mm_loadu_si128((const __m128i *)g->hi[k])));
    __m128i isum = _mm_add_epi32(_mm_madd_epi16(p, _mm_set1_epi16(1)),
                                 _mm_loadu_si128((const __m128i *)(g->bias + 4 * k)));
    __m128 d = _mm_set1_ps(fp16_to_f32(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

static inline __m128 q8_one(__m128 acc, const sp_block_q8_0 *w, const sp_q8_group *g, int k)
{
    __m128i isum = _mm_setzero_si128();
    for (int h = 0; h < 2; h++) {
        __m128i wv = _mm_loadu_si128((const __m128i *)(w->qs + 16 * h));
        __m128i av = _mm_loadu_si128((const __m128i *)(h ? g->hi[k] : g->lo[k]));
        __m128i p = _mm_maddubs_epi16(_mm_sign_epi8(wv, wv), _mm_sign_epi8(av, wv));
        isum = _mm_add_epi32(isum, _mm_madd_epi16(p, _mm_set1_epi16(1)));
    }
    __m128 d = _mm_set1_ps(fp16_to_f32(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

/* The dot of one weight row with na packed activation rows (a, a + stride,
 * ...), na = 1..SP_DOT_ROWS, a compile-time constant once inlined into the
 * switches below so the accumulators stay in registers. Each pair of blocks
 * of the weights is loaded and unpacked once for all na rows, then every
 * row runs exactly the operations of a lone row in the same order, so its
 * result has the same bits whatever na is. With 16 registers the rows are
 * taken four at a time. */
static inline __attribute__((always_inline)) void q4_rows(int64_t n, const sp_block_q4_0 *w,
                                                           const sp_q8_group *a, int64_t stride,
                                                           const int na, float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[2][SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc[0][i] = acc[1][i] = _mm256_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_q4_0), ahead);
        __m128 dw = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d);
        for (int k = 0; k < 4; k += 2) {
            __m256 dwk = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dw),
                                                  _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1));
            __m256i q = load_halves(w[b + k].qs, w[b + k + 1].qs);
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            #pragma GCC unroll 4 /* SP_DOT_ROWS: the na accumulators stay in registers */
            for (int i = 0; i < na; i++) {
                const sp_q8_group *gi = a + i * stride + g;
                __m256i p = _mm256_add_epi16(
                    _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)gi->lo[k])),
                    _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)gi->hi[k])));
                __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(p, ones),
                                                _mm256_loadu_si256((const __m256i *)(gi->bias + 4 * k)));
                acc[k / 2][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                                                _mm256_mul_ps(dwk, _mm256_loadu_ps(gi->d + 4 * k)), acc[k / 2][i]);
            }
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = q4_one(tail, w + t, a + i * stride + g, (int)k);
        out[i] = hsum_lanes(acc[0][i], acc[1][i], tail);
    }
}

static inline __attribute__((always_inline)) void q8_rows(int64_t n, const sp_block_q8_0 *w,
                                                           const sp_q8_group *a, int64_t stride,
                                                           const int na, float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2][SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc[0][i] = acc[1][i] = _mm256_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_q8_0), ahead);
        __m128 dw = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d);
        for (int k = 0; k < 4; k += 2) {
            __m256 dwk = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dw),
                                                  _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1));
            __m256i wlo = load_halves(w[b + k].qs, w[b + k + 1].qs);
            __m256i whi = load_halves(w[b + k].qs + 16, w[b + k + 1].qs + 16);
            __m256i alo = _mm256_sign_epi8(wlo, wlo), ahi = _mm256_sign_epi8(whi, whi); /* |w| */
            #pragma GCC unroll 4 /* SP_DOT_ROWS: the na accumulators stay in registers */
            for (int i = 0; i < na; i++) {
                const sp_q8_group *gi = a + i * stride + g;
                __m256i plo = _mm256_maddubs_epi16(
                    alo, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)gi->lo[k]), wlo));
                __m256i phi = _mm256_maddubs_epi16(
                    ahi, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)gi->hi[k]), whi));
                __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(plo, ones), _mm256_madd_epi16(phi, ones));
                acc[k / 2][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                                                _mm256_mul_ps(dwk, _mm256_loadu_ps(gi->d + 4 * k)), acc[k / 2][i]);
            }
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = q8_one(tail, w + t, a + i * stride + g, (int)k);
        out[i] = hsum_lanes(acc[0][i], acc[1][i], tail);
    }
}

/* One weight row against na activation rows (the level's rows kernel;
 * simd.c loops over the weight rows of a tile); na is a constant in each
 * case, so the accumulators stay in registers. Inlining the row loop of
 * the tile in here made single-row decode ~20% slower on Zen 4 (same inner
 * loop; shardpipe generate A/B, 2026-11-23), cause not found. */
void sp_vec_dot_q8_0_q8g_rows_avx2(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                   float *out)
{
    switch (na) {
    case 1: q8_rows(n, w, a, stride, 1, out); break;
    case 2: q8_rows(n, w, a, stride, 2, out); break;
    case 3: q8_rows(n, w, a, stride, 3, out); break;
    default: q8_rows(n, w, a, stride, 4, out); break;
    }
}

/* The same for Q4_0. */
void sp_vec_dot_q4_0_q8g_rows_avx2(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                   float *out)
{
    switch (na) {
    case 1: q4_rows(n, w, a, stride, 1, out); break;
    case 2: q4_rows(n, w, a, stride, 2, out); break;
    case 3: q4_rows(n, w, a, stride, 3, out); break;
    default: q4_rows(n, w, a, stride, 4, out); break;
    }
}

/* ---- activation quantization (sp_quantize_row_q8g): the bytes of the
 * scalar version. amax is exact in any order, d and 1/d are the same scalar
 * operations, x * id is one f32 multiply and vroundps with
 * _MM_FROUND_TO_NEAREST_INT rounds ties to even like nearbyintf. */
void sp_quantize_row_q8g_avx2(const float *x, sp_q8_group *g, int64_t n)
{
    const int64_t nb = n / SP_QK, ng = sp_q8_group_count(n);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    /* packs interleave 128-bit lanes; this puts the int32 results back in order */
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    if (nb % 4) memset(g + ng - 1, 0, sizeof *g); /* zero blocks pad the last group */
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * SP_QK;
        sp_q8_group *gr = g + b / 4;
        int k = (int)(b % 4);
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v[i], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* bias lane j: -8 x the quants 4j..4j+3 and 16+4j..16+4j+3; q[0] + q[2]
         * holds elements i + (16 + i) for i < 8, q[1] + q[3] for 8 <= i < 16,
         * and two horizontal adds leave lanes (0, 2, 0, 2 | 1, 3, 1, 3) */
        __m256i h = _mm256_hadd_epi32(_mm256_add_epi32(q[0], q[2]), _mm256_add_epi32(q[1], q[3]));
        h = _mm256_hadd_epi32(h, h);
        __m128i lanes = _mm_unpacklo_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        /* int32 -> int16 -> int8 (values are within [-127, 127]: no saturation) */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, perm);
        _mm_storeu_si128((__m128i *)gr->lo[k], _mm256_castsi256_si128(p));
        _mm_storeu_si128((__m128i *)gr->hi[k], _mm256_extracti128_si256(p, 1));
        float df = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm_storeu_si128((__m128i *)(gr->bias + 4 * k), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(lanes, 3)));
        _mm_storeu_ps(gr->d + 4 * k, _mm_set1_ps(df));
    }
}

float sp_vec_dot_f32_avx2(int64_t n, const float *w, const float *a)
{
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * k),
                                     _mm256_loadu_ps(a + i + 8 * k), acc[k]);
    }
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                      _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum = fmaf(w[i], a[i], sum);
    return sum;
}

/* ---- dequantization (prompt path: panels for sgemm). d * q is one f32
 * multiply, so the results are bit-identical to the portable loops. */

/* Q4_0 block to 32 signed bytes in element order: nibble - 8. */
static inline __m256i unpack_q4(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m128i mask = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(q, mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

/* Store d * q for 32 signed bytes q. */
static inline void store_scaled(float *y, __m256i q, float d)
{
    __m256 vd = _mm256_set1_ps(d);
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), vd));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), vd));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), vd));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), vd));
}

void sp_dequantize_row_q8_0_avx2(const sp_block_q8_0 *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++)
        store_scaled(y + b * SP_QK, _mm256_loadu_si256((const __m256i *)x[b].qs),
                     fp16_to_f32(x[b].d));
}

void sp_dequantize_row_q4_0_avx2(const sp_block_q4_0 *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++)
        store_scaled(y + b * SP_QK, unpack_q4(x[b].qs), fp16_to_f32(x[b].d));
}

void sp_dequantize_row_f16_avx2(const uint16_t *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = fp16_to_f32(x[i]);
}

/* Attention over the fp16 KV cache. The dot (a query with a K row) widens
 * eight halves at a time with F16C into two FMA accumulators; the mad
 * (y += a * V row) is element-wise FMA, which rounds exactly as the fmaf of
 * the reference, so its results are bit-identical at every level. */

/* The 8 lanes of an fp16 . f32 dot before their reduction: two accumulators
 * over steps of 16, then one step of 8 into the first (the elements past
 * the last multiple of 8 are the caller's scalar tail). */
static inline __m256 dot_f16_lanes(int64_t n, const uint16_t *w, const float *a)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(a + i),
                               acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))),
                               _mm256_loadu_ps(a + i + 8), acc1);
    }
    if (i + 8 <= n)
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(a + i),
                               acc0);
    return _mm256_add_ps(acc0, acc1);
}

/* dot_f16_lanes of four rows (w, w + stride, ...) with the same a, each
 * with the operations of a lone call, but every load of a serving all
 * four: the attention scores of four positions for one head. */
static inline void dot_f16_lanes4(int64_t n, const uint16_t *w, int64_t stride, const float *a, __m256 v[4])
{
    __m256 acc0[4], acc1[4];
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++) acc0[j] = acc1[j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a0 = _mm256_loadu_ps(a + i), a1 = _mm256_loadu_ps(a + i + 8);
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const uint16_t *wj = w + j * stride + i;
            acc0[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wj)), a0, acc0[j]);
            acc1[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wj + 8))), a1, acc1[j]);
        }
    }
    if (i + 8 <= n) {
        __m256 a0 = _mm256_loadu_ps(a + i);
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            acc0[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j * stride + i))), a0,
                                      acc0[j]);
    }
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++) v[j] = _mm256_add_ps(acc0[j], acc1[j]);
}

float sp_vec_dot_f16_f32_avx2(int64_t n, const uint16_t *w, const float *a)
{
    float sum = hsum_ps(dot_f16_lanes(n, w, a));
    for (int64_t i = n & ~(int64_t)7; i < n; i++) sum = fmaf(fp16_to_f32(w[i]), a[i], sum);
    return sum;
}

void sp_vec_mad_f16_avx2(int64_t n, float *y, const uint16_t *x, float a)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] = fmaf(a, fp16_to_f32(x[i]), y[i]);
}

/* ---- attention over the fp16 KV cache, several query heads at once ----
 * The bits of the single-row kernels above, call for call (quant.h says
 * what each result equals); what changes is the work around them. */

/* K rows: each position's dot keeps the lanes of sp_vec_dot_f16_f32_avx2
 * (dot_f16_lanes), and eight positions are reduced together by the
 * transpose of sum_lanes8x8 (dot_x86.h), which adds the same pairs as
 * hsum_ps, ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)) for each
 * position's lanes v, in 7 vector additions and 15 shuffles for all eight
 * where hsum_ps takes 3 of each per position. Positions go in blocks of
 * eight outside and heads inside, so a block's K rows (8 x 128 bytes at
 * head size 64) are read from memory once and from L1 by the other heads
 * of the KV group. */
void sp_attn_scores_f16_avx2(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq,
                             float scale, float *s, int64_t s_stride)
{
    int p = 0;
    if (hd % 8 == 0) { /* else every position has a scalar tail after its hsum */
        const __m256 vs = _mm256_set1_ps(scale);
        for (; p + 8 <= n; p += 8) {
            const uint16_t *kp = k + (int64_t)p * k_stride;
            for (int g = 0; g < nq; g++) {
                const float *qg = q + (int64_t)g * hd;
                __m256 v[8];
                dot_f16_lanes4(hd, kp, k_stride, qg, v);
                dot_f16_lanes4(hd, kp + 4 * k_stride, k_stride, qg, v + 4);
                __m256 r = sum_lanes8x8(v);
                _mm256_storeu_ps(s + g * s_stride + p, _mm256_mul_ps(r, vs));
            }
        }
    }
    for (; p < n; p++)
        for (int g = 0; g < nq; g++)
            s[g * s_stride + p] = sp_vec_dot_f16_f32_avx2(hd, k + (int64_t)p * k_stride, q + (int64_t)g * hd) * scale;
}

/* V rows of one head: y += w_p * v_p for p in order, as n calls of
 * sp_vec_mad_f16_avx2 would do it, but with 64 (then 8) elements of y held
 * in registers over the positions instead of loaded and stored for each
 * one (simd.c hands it blocks of positions). */
void sp_attn_values_f16_avx2(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, float *y)
{
    int i = 0;
    for (; i + 64 <= hd; i += 64) {
        __m256 acc[8];
        /* unrolled, so acc stays in registers: GCC -O2 otherwise keeps it
         * on the stack and every FMA waits on a store and a reload (Zen 4,
         * 160 positions x 8 heads of 64: 14 -> 40 GMAC/s) */
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) acc[j] = _mm256_loadu_ps(y + i + 8 * j);
        for (int p = 0; p < n; p++) {
            const uint16_t *vp = v + (int64_t)p * v_stride + i;
            __m256 wp = _mm256_set1_ps(w[p]);
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                acc[j] = _mm256_fmadd_ps(wp, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vp + 8 * j))), acc[j]);
        }
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(y + i + 8 * j, acc[j]);
    }
    for (; i + 8 <= hd; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        for (int p = 0; p < n; p++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(w[p]),
                                  _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + (int64_t)p * v_stride + i))), acc);
        _mm256_storeu_ps(y + i, acc);
    }
    sp_attn_values_tail(i, hd, n, v, v_stride, w, y);
}

/* x[i] = fp16(x[i]) back in f32: vcvtps2ph rounds to nearest even with the
 * IEEE rules sp_f32_to_fp16 spells out (subnormal halves, overflow to
 * infinity, NaNs quieted with their top payload bits), 8 values a step. */
void sp_round_f16_avx2(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) x[i] = sp_fp16_to_f32(sp_f32_to_fp16(x[i]));
}

/* e^x of four floats: the steps of sp_expf (dot.h) in four double lanes.
 * NaN lanes give the input back, as sp_expf does. */
static inline __m128 exp4(__m128 xf)
{
    const __m256d magic = _mm256_set1_pd(SP_EXP_MAGIC);
    __m256d x = _mm256_cvtps_pd(xf);
    x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(SP_EXP_MIN)), _mm256_set1_pd(SP_EXP_MAX));
    __m256d z = _mm256_fmadd_pd(x, _mm256_set1_pd(SP_EXP_LOG2E), magic);
    __m256d n = _mm256_sub_pd(z, magic);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(SP_EXP_LN2_HI), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(SP_EXP_LN2_LO), r);
    __m256d p = _mm256_set1_pd(SP_EXP_C11);
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C10));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C9));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C8));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C7));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C6));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C5));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C4));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C3));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(SP_EXP_C2));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
    __m256i e = _mm256_sub_epi64(_mm256_castpd_si256(z), _mm256_castpd_si256(magic));
    __m256d scale = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(1023)), 52));
    __m128 y = _mm256_cvtpd_ps(_mm256_mul_pd(p, scale));
    return _mm_blendv_ps(y, xf, _mm_cmpunord_ps(xf, xf));
}

/* The last n % 4 values go through the same lanes from a zero-padded copy
 * (a scalar tail would call libm's fma per step on x86-64). */
void sp_exp_f32_avx2(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(y + i, exp4(_mm_loadu_ps(x + i)));
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        _mm_storeu_ps(t, exp4(_mm_loadu_ps(t)));
        memcpy(y + i, t, (size_t)(n - i) * sizeof(float));
    }
}

static inline __m128 swiglu4(__m128 g, __m128 u)
{
    __m128 e = exp4(_mm_xor_ps(g, _mm_set1_ps(-0.0f)));
    return _mm_mul_ps(_mm_div_ps(g, _mm_add_ps(_mm_set1_ps(1.0f), e)), u);
}

void sp_swiglu_f32_avx2(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(g + i, swiglu4(_mm_loadu_ps(g + i), _mm_loadu_ps(u + i)));
    if (i < n) {
        float tg[4] = {0}, tu[4] = {0};
        memcpy(tg, g + i, (size_t)(n - i) * sizeof(float));
        memcpy(tu, u + i, (size_t)(n - i) * sizeof(float));
        _mm_storeu_ps(tg, swiglu4(_mm_loadu_ps(tg), _mm_loadu_ps(tu)));
        memcpy(g + i, tg, (size_t)(n - i) * sizeof(float));
    }
}

/* sp_softmax_f32 (quant.h): partial sums 0-3 are the double lanes of lo,
 * 4-7 those of hi; the last n % 8 elements go through a zero-padded copy
 * whose unused lanes are cleared before they are added. */
void sp_softmax_f32_avx2(float *s, int64_t n)
{
    int64_t i;
    const float m = max_row_ps(s, n);
    const __m128 mm = _mm_set1_ps(m);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m128 e0 = exp4(_mm_sub_ps(_mm_loadu_ps(s + i), mm)), e1 = exp4(_mm_sub_ps(_mm_loadu_ps(s + i + 4), mm));
        _mm_storeu_ps(s + i, e0);
        _mm_storeu_ps(s + i + 4, e1);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(e0));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(e1));
    }
    const int64_t rest = n - i;
    if (rest) {
        float t[8] = {0};
        memcpy(t, s + i, (size_t)rest * sizeof(float));
        __m128 e0 = exp4(_mm_sub_ps(_mm_loadu_ps(t), mm)), e1 = exp4(_mm_sub_ps(_mm_loadu_ps(t + 4), mm));
        _mm_storeu_ps(t, e0);
        _mm_storeu_ps(t + 4, e1);
        for (int k = (int)rest; k < 8; k++) t[k] = 0.0f;
        memcpy(s + i, t, (size_t)rest * sizeof(float));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm_loadu_ps(t)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm_loadu_ps(t + 4)));
    }
    double a[8];
    _mm256_storeu_pd(a, lo);
    _mm256_storeu_pd(a + 4, hi);
    const float inv1 = (float)(1.0 / sp_softmax_sum8(a));
    const __m256 inv = _mm256_set1_ps(inv1);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), inv));
    for (; i < n; i++) s[i] *= inv1;
}
