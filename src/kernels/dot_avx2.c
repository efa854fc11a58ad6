/* dot_avx2.c - vec_dot and row dequantization kernels for x86-64 with AVX2,
 * FMA and F16C (compiled with -mavx2 -mfma -mf16c; only called when the CPU
 * has them, see simd.c). The AVX-512 level reuses the f32 dot and the
 * dequantizers from here.
 *
 * Int8 dot products use the classic AVX2 idiom: vpmaddubsw multiplies an
 * unsigned by a signed byte vector, so we feed it |w| and a * sign(w), which
 * gives the same products w * a. Pairs of products are at most
 * 2 * 127 * 127 = 32258 and never saturate the int16 sums; vpmaddwd with
 * ones then widens the pairs to eight exact int32 partial sums per block. */
#include <immintrin.h>
#include <math.h>

#include "dot.h"

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

/* Eight int32 partial sums of w[i] * a[i] over 32 signed bytes. */
static inline __m256i dot_i8(__m256i w, __m256i a)
{
    __m256i wabs = _mm256_sign_epi8(w, w);
    __m256i asgn = _mm256_sign_epi8(a, w);
    __m256i pairs = _mm256_maddubs_epi16(wabs, asgn);
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* Q4_0 block to 32 signed bytes in element order: nibble - 8. */
static inline __m256i unpack_q4(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m128i mask = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(q, mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

float sp_vec_dot_q8_0_q8_0_avx2(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a)
{
    int64_t nb = n / SP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    /* two blocks per step into two accumulators to hide FMA latency */
    for (; b + 2 <= nb; b += 2) {
        __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                            _mm256_loadu_si256((const __m256i *)a[b].qs));
        __m256i p1 = dot_i8(_mm256_loadu_si256((const __m256i *)w[b + 1].qs),
                            _mm256_loadu_si256((const __m256i *)a[b + 1].qs));
        __m256 d0 = _mm256_set1_ps(fp16_to_f32(w[b].d) * fp16_to_f32(a[b].d));
        __m256 d1 = _mm256_set1_ps(fp16_to_f32(w[b + 1].d) * fp16_to_f32(a[b + 1].d));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), d0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), d1, acc1);
    }
    for (; b < nb; b++) {
        __m256i p = dot_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                           _mm256_loadu_si256((const __m256i *)a[b].qs));
        __m256 d = _mm256_set1_ps(fp16_to_f32(w[b].d) * fp16_to_f32(a[b].d));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

float sp_vec_dot_q4_0_q8_0_avx2(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a)
{
    int64_t nb = n / SP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i p0 = dot_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        __m256i p1 = dot_i8(unpack_q4(w[b + 1].qs),
                            _mm256_loadu_si256((const __m256i *)a[b + 1].qs));
        __m256 d0 = _mm256_set1_ps(fp16_to_f32(w[b].d) * fp16_to_f32(a[b].d));
        __m256 d1 = _mm256_set1_ps(fp16_to_f32(w[b + 1].d) * fp16_to_f32(a[b + 1].d));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), d0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), d1, acc1);
    }
    for (; b < nb; b++) {
        __m256i p = dot_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        __m256 d = _mm256_set1_ps(fp16_to_f32(w[b].d) * fp16_to_f32(a[b].d));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
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
    for (; i < n; i++) sum += w[i] * a[i];
    return sum;
}

/* ---- dequantization (prompt path: panels for sgemm). d * q is one f32
 * multiply, so the results are bit-identical to the portable loops. */

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
float sp_vec_dot_f16_f32_avx2(int64_t n, const uint16_t *w, const float *a)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))),
                               _mm256_loadu_ps(a + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += fp16_to_f32(w[i]) * a[i];
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
