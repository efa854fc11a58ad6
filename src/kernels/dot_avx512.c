/* dot_avx512.c - vec_dot kernels for x86-64 with AVX-512 F/BW/VL/DQ and
 * VNNI (compiled with the matching -m flags; only called when the CPU has
 * them, see simd.c). This is the decode hot path on Zen4 / Ice Lake and
 * later.
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds each group of four
 * products into an int32 lane, exactly and without saturation. One 512-bit
 * register holds two 32-byte blocks, so a step of four blocks is two
 * vpdpbusd, and the int32 lanes 0-7 / 8-15 belong to the first / second
 * block of each pair. Each lane is converted to f32 and multiplied into the
 * accumulator by its block's scale d_w * d_a; the four pairs of fp16 scales
 * are converted together with one vcvtph2ps.
 *
 * Q8_0 x Q8_0 feeds vpdpbusd |w| and (w < 0 ? -a : a). Q4_0 x Q8_0 feeds the
 * raw nibbles q in [0, 15] (already unsigned) and adds 8 * (-a) with a
 * second vpdpbusd, which makes (q - 8) * a.
 *
 * Four blocks per step keeps the loop near the front-end limit on Zen4
 * (about 2.5 cycles per Q8_0 block and 3 per Q4_0 block from L2); gathering
 * the scales with vpermt2w or working in 256-bit halves measured slower. */
#include <immintrin.h>

#include "dot.h"

/* Scales d_w * d_a of four consecutive blocks. The eight fp16 values are
 * gathered in general registers (cheap there) and converted at once. */
static inline __m128 scales4(uint16_t w0, uint16_t w1, uint16_t w2, uint16_t w3,
                             const sp_block_q8_0 *a)
{
    uint64_t hw = (uint64_t)w0 | (uint64_t)w1 << 16 | (uint64_t)w2 << 32 | (uint64_t)w3 << 48;
    uint64_t ha = (uint64_t)a[0].d | (uint64_t)a[1].d << 16 | (uint64_t)a[2].d << 32 |
                  (uint64_t)a[3].d << 48;
    __m128i h = _mm_unpacklo_epi64(_mm_cvtsi64_si128((long long)hw),
                                   _mm_cvtsi64_si128((long long)ha));
    __m256 f = _mm256_cvtph_ps(h);
    return _mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
}

/* The 32 quants of blocks x[0] and x[1] in one register. */
static inline __m512i load2_q8(const sp_block_q8_0 *x)
{
    __m256i lo = _mm256_loadu_si256((const __m256i *)x[0].qs);
    __m256i hi = _mm256_loadu_si256((const __m256i *)x[1].qs);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The nibbles of blocks x[0], x[1] as bytes 0..15 in element order. The
 * 256-bit [x0 | x1] and the same shifted right by 4 make the 128-bit lanes
 * (x0 low, x1 low, x0 high, x1 high nibbles) after one mask; a lane shuffle
 * puts each block's high half after its low half. */
static inline __m512i load2_q4(const sp_block_q4_0 *x)
{
    __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)x[1].qs),
                                 _mm_loadu_si128((const __m128i *)x[0].qs));
    __m512i y = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    y = _mm512_and_si512(y, _mm512_set1_epi8(0x0f));
    return _mm512_shuffle_i64x2(y, y, _MM_SHUFFLE(3, 1, 2, 0));
}

/* int32 lanes of w * a for signed bytes. |w| is right even for -128 (as
 * unsigned 128); a must not be -128, which Q8_0 never produces. */
static inline __m512i dot2_i8(__m512i w, __m512i a)
{
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m512i a_signed = _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), a_signed);
}

/* int32 lanes of (q - 8) * a for nibbles q: q * a, then 8 * (-a) added by
 * a second vpdpbusd into the same lanes (again a != -128). */
static inline __m512i dot2_u4(__m512i q, __m512i a)
{
    __m512i qa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a);
    __m512i neg_a = _mm512_sub_epi8(_mm512_setzero_si512(), a);
    return _mm512_dpbusd_epi32(qa, _mm512_set1_epi8(8), neg_a);
}

/* Scale of block 0/1 (or 2/3) of s in lanes 0-7 / 8-15. */
static inline __m512 spread(__m128 s, int first)
{
    __m512i idx = first == 0 ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                             : _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

/* Leftover blocks (n/32 not a multiple of 4), one at a time in 256 bits. */
static inline __m256 tail_q8(__m256 acc, const sp_block_q8_0 *w, const sp_block_q8_0 *a)
{
    __m256i wv = _mm256_loadu_si256((const __m256i *)w->qs);
    __m256i av = _mm256_loadu_si256((const __m256i *)a->qs);
    __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv),
                                    _mm256_sign_epi8(av, wv));
    float d = _cvtsh_ss(w->d) * _cvtsh_ss(a->d);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d), acc);
}

static inline __m256 tail_q4(__m256 acc, const sp_block_q4_0 *w, const sp_block_q8_0 *a)
{
    __m128i q = _mm_loadu_si128((const __m128i *)w->qs);
    __m128i m = _mm_set1_epi8(0x0f);
    __m256i qv = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
    __m256i av = _mm256_loadu_si256((const __m256i *)a->qs);
    __m256i qa = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qv, av);
    __m256i a8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), av);
    float d = _cvtsh_ss(w->d) * _cvtsh_ss(a->d);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(qa, a8)), _mm256_set1_ps(d), acc);
}

static inline float hsum(__m512 acc0, __m512 acc1, __m256 tail)
{
    __m512 s = _mm512_add_ps(acc0, acc1);
    __m256 t = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    t = _mm256_add_ps(t, tail);
    __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    u = _mm_add_ps(u, _mm_movehl_ps(u, u));
    u = _mm_add_ss(u, _mm_movehdup_ps(u));
    return _mm_cvtss_f32(u);
}

float sp_vec_dot_q8_0_q8_0_avx512(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a)
{
    int64_t nb = n / SP_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m128 s = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d, a + b);
        __m512i p01 = dot2_i8(load2_q8(w + b), load2_q8(a + b));
        __m512i p23 = dot2_i8(load2_q8(w + b + 2), load2_q8(a + b + 2));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), spread(s, 0), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), spread(s, 2), acc1);
    }
    __m256 tail = _mm256_setzero_ps();
    for (; b < nb; b++) tail = tail_q8(tail, w + b, a + b);
    return hsum(acc0, acc1, tail);
}

float sp_vec_dot_q4_0_q8_0_avx512(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a)
{
    int64_t nb = n / SP_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m128 s = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d, a + b);
        __m512i p01 = dot2_u4(load2_q4(w + b), load2_q8(a + b));
        __m512i p23 = dot2_u4(load2_q4(w + b + 2), load2_q8(a + b + 2));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), spread(s, 0), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), spread(s, 2), acc1);
    }
    __m256 tail = _mm256_setzero_ps();
    for (; b < nb; b++) tail = tail_q4(tail, w + b, a + b);
    return hsum(acc0, acc1, tail);
}
