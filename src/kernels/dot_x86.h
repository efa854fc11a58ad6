/* dot_x86.h - private to the x86 kernels (dot_avx2.c, dot_avx512.c,
 * attn_avx512.c and the IQ4_NL twins, compiled with AVX2, FMA and F16C):
 * the register helpers their int8 rows kernels and attention scores share,
 * including the lane reductions that fix the summation order every level
 * follows (quant.c). */
#ifndef SP_KERNELS_DOT_X86_H
#define SP_KERNELS_DOT_X86_H

#include <immintrin.h>
#include <stdint.h>

/* The VBMI gather of four 18-byte blocks (Q4_0 and IQ4_NL share the
 * layout: an fp16 scale, then 16 bytes of nibbles), defined in
 * dot_avx512.c: byte 16k + t of the quants is group byte 18k + 2 + t from
 * the load of bytes 0-63 (index < 64) or, for block 3, from the load of
 * bytes 8-71 (index 64 + 48 + t); the scale of block k is word 9k,
 * repeated over the block's four lanes. */
extern const uint8_t sp_group18_qidx[64];
extern const uint16_t sp_group18_didx[32];

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

/* The row's result from its accumulators (blocks 0-1 / 2-3 of the whole
 * groups) and the tail lanes (a partial last group), in quant.c's order:
 * t = (acc0 + acc1 low half + high half) + tail, then (t0 + t2) + (t1 + t3). */
static inline float hsum_lanes(__m256 acc0, __m256 acc1, __m128 tail)
{
    __m256 s = _mm256_add_ps(acc0, acc1);
    __m128 t = _mm_add_ps(_mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)), tail);
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/* The sums of eight positions' 8-lane score accumulators v[0..7] (each
 * the two halves of an f16 dot already added), every sum in the tree of
 * dot_avx2.c's hsum_ps - s = lanes 0-3 + lanes 4-7, t = (s0 + s2, s1 + s3),
 * r = t0 + t1 - done on eight at once: the attention scores kernels of the
 * AVX2 and AVX-512 levels (dot_avx2.c, attn_avx512.c). */
static inline __m256 sum_lanes8x8(const __m256 v[8])
{
    const __m256i order = _mm256_setr_epi32(0, 2, 1, 3, 4, 6, 5, 7);
    /* [s0 | s4], [s1 | s5], ... */
    __m256 s04 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[4], 0x20), _mm256_permute2f128_ps(v[0], v[4], 0x31));
    __m256 s15 = _mm256_add_ps(_mm256_permute2f128_ps(v[1], v[5], 0x20), _mm256_permute2f128_ps(v[1], v[5], 0x31));
    __m256 s26 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[6], 0x20), _mm256_permute2f128_ps(v[2], v[6], 0x31));
    __m256 s37 = _mm256_add_ps(_mm256_permute2f128_ps(v[3], v[7], 0x20), _mm256_permute2f128_ps(v[3], v[7], 0x31));
    /* [t0 t2 | t4 t6], [t1 t3 | t5 t7] */
    __m256 t0246 = _mm256_add_ps(_mm256_shuffle_ps(s04, s26, 0x44), _mm256_shuffle_ps(s04, s26, 0xee));
    __m256 t1357 = _mm256_add_ps(_mm256_shuffle_ps(s15, s37, 0x44), _mm256_shuffle_ps(s15, s37, 0xee));
    /* r0 r2 r1 r3 | r4 r6 r5 r7, then in order */
    __m256 r = _mm256_add_ps(_mm256_shuffle_ps(t0246, t1357, 0x88), _mm256_shuffle_ps(t0246, t1357, 0xdd));
    return _mm256_permutevar8x32_ps(r, order);
}

/* The largest of s[0..n) (the softmax kernels' first pass), the same value
 * as the scalar loop `if (s[i] > m) m = s[i]` from -inf. */
static inline float max_row_ps(const float *s, int64_t n)
{
    int64_t i = 0;
    __m256 mv = _mm256_set1_ps(-__builtin_inff());
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(s + i), mv);
    float lanes[8], m;
    _mm256_storeu_ps(lanes, mv);
    m = lanes[0];
    for (int k = 1; k < 8; k++)
        if (lanes[k] > m) m = lanes[k];
    for (; i < n; i++)
        if (s[i] > m) m = s[i];
    return m;
}

#endif
