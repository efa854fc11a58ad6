/* dot_avx512.c - vec_dot kernels for x86-64 with AVX-512 F/BW/VL/DQ and
 * VNNI (compiled with the matching -m flags; only called when the CPU has
 * them, see simd.c). This is the decode hot path on Zen4 / Ice Lake and
 * later.
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds each group of four
 * products into an int32 lane, exactly and without saturation:
 *  - Q4_0 feeds it the raw nibbles q in [0, 15] and starts from the packed
 *    activations' bias lanes (-8 * sum a), which makes sum (q - 8) * a;
 *  - Q8_0 feeds it |w| and (w < 0 ? -a : a).
 * The kernels have the shape of the AVX2 ones (dot_avx2.c): a 256-bit
 * register covers blocks k, k+1 of a group of packed activations
 * (sp_q8_group, quant.h), int32 lanes 0-3 / 4-7 belong to block k / k+1,
 * and each lane is converted to f32 and multiply-added with its block's
 * scale d_w * d_a. They use the VNNI instruction on 256-bit registers
 * (AVX-512VL): measured on Zen 4, 512-bit versions that gather four weight
 * blocks with overlapping 64-byte loads and vpermt2w were faster from L1
 * but 20-40% slower when the weights stream from memory, as decode reads
 * them. */
#include <immintrin.h>

#include "dot.h"

/* 16 bytes at x (a half of block k) and at y (block k+1) in one register. */
static inline __m256i load_halves(const void *x, const void *y)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x)),
                                   _mm_loadu_si128((const __m128i *)y), 1);
}

/* fp16 scales of four weight blocks, gathered in a general register and
 * converted at once. */
static inline __m128 scales4(uint16_t d0, uint16_t d1, uint16_t d2, uint16_t d3)
{
    uint64_t h = (uint64_t)d0 | (uint64_t)d1 << 16 | (uint64_t)d2 << 32 | (uint64_t)d3 << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* d_w * d_a for blocks k, k+1 of a group (k = 0 or 2), four lanes each. */
static inline __m256 pair_scales(__m128 dw, int k, const sp_q8_group *g)
{
    __m256i idx = _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1);
    return _mm256_mul_ps(_mm256_permutevar8x32_ps(_mm256_castps128_ps256(dw), idx),
                         _mm256_loadu_ps(g->d + 4 * k));
}

/* int32 lanes += w * a for signed bytes. |w| is right even for -128 (as
 * unsigned 128); a must not be -128, which Q8_0 never produces. */
static inline __m256i dot_i8(__m256i isum, __m256i w, __m256i a)
{
    __mmask32 neg = _mm256_movepi8_mask(w);
    __m256i a_signed = _mm256_mask_sub_epi8(a, neg, _mm256_setzero_si256(), a);
    return _mm256_dpbusd_epi32(isum, _mm256_abs_epi8(w), a_signed);
}

static inline __m128i dot_i8_128(__m128i isum, __m128i w, __m128i a)
{
    __mmask16 neg = _mm_movepi8_mask(w);
    __m128i a_signed = _mm_mask_sub_epi8(a, neg, _mm_setzero_si128(), a);
    return _mm_dpbusd_epi32(isum, _mm_abs_epi8(w), a_signed);
}

/* int32 lanes of w * a for weight blocks w[0], w[1] and blocks k, k+1 of g. */
static inline __m256i q8_pair(const sp_block_q8_0 *w, const sp_q8_group *g, int k)
{
    __m256i isum = dot_i8(_mm256_setzero_si256(), load_halves(w[0].qs, w[1].qs),
                          _mm256_loadu_si256((const __m256i *)g->lo[k]));
    return dot_i8(isum, load_halves(w[0].qs + 16, w[1].qs + 16),
                  _mm256_loadu_si256((const __m256i *)g->hi[k]));
}

static inline __m256i q4_pair(const sp_block_q4_0 *w, const sp_q8_group *g, int k)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i q = load_halves(w[0].qs, w[1].qs);
    __m256i isum = _mm256_loadu_si256((const __m256i *)(g->bias + 4 * k));
    isum = _mm256_dpbusd_epi32(isum, _mm256_and_si256(q, m4),
                               _mm256_loadu_si256((const __m256i *)g->lo[k]));
    return _mm256_dpbusd_epi32(isum, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                               _mm256_loadu_si256((const __m256i *)g->hi[k]));
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
    isum = _mm_dpbusd_epi32(isum, _mm_and_si128(q, m4), _mm_loadu_si128((const __m128i *)g->lo[k]));
    isum = _mm_dpbusd_epi32(isum, _mm_and_si128(_mm_srli_epi16(q, 4), m4),
                            _mm_loadu_si128((const __m128i *)g->hi[k]));
    __m128 d = _mm_set1_ps(_cvtsh_ss(w->d) * g->d[4 * k]);
    return _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc);
}

static inline float hsum(__m256 acc0, __m256 acc1, __m128 tail)
{
    __m256 s = _mm256_add_ps(acc0, acc1);
    __m128 t = _mm_add_ps(_mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)), tail);
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

float sp_vec_dot_q8_0_q8g_avx512(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a)
{
    const int64_t nb = n / SP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4, a++) {
        __m128 dw = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_pair(w + b, a, 0)), pair_scales(dw, 0, a), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_pair(w + b + 2, a, 2)), pair_scales(dw, 2, a),
                               acc1);
    }
    __m128 tail = _mm_setzero_ps();
    for (int k = 0; b < nb; b++, k++) tail = q8_one(tail, w + b, a, k);
    return hsum(acc0, acc1, tail);
}

float sp_vec_dot_q4_0_q8g_avx512(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a)
{
    const int64_t nb = n / SP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4, a++) {
        __m128 dw = scales4(w[b].d, w[b + 1].d, w[b + 2].d, w[b + 3].d);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q4_pair(w + b, a, 0)), pair_scales(dw, 0, a), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q4_pair(w + b + 2, a, 2)), pair_scales(dw, 2, a),
                               acc1);
    }
    __m128 tail = _mm_setzero_ps();
    for (int k = 0; b < nb; b++, k++) tail = q4_one(tail, w + b, a, k);
    return hsum(acc0, acc1, tail);
}
