/* dot_k_x16_256.h - the K-quant tiles on rows regrouped sixteen at a time
 * (sp_k_x16, layout in quant_kx16.c) with 256-bit registers: the AVX2 and
 * AVX-VNNI levels (Haswell to Zen 3, and the Intel N100 / N97 mini PCs),
 * included by dot_k_x16_avx2.c and dot_k_x16_avxvnni.c, which set
 * K256_VNNI to 0 or 1 and K256_NAME(x) to name the functions.
 *
 * The panels are those of the AVX-512 tiles (dot_k_x16_avx512.c): a
 * 64-byte line of quants holds four bytes of each of 16 rows, row k in
 * bytes 4k..4k+3. Here its two 32-byte halves are the rows 0-7 and 8-15,
 * one row per 32-bit lane of a ymm register, so a half is the AVX-512
 * tile's arithmetic on 8 lanes: with four activation bytes broadcast to
 * every lane, each lane sums its own row's products, and the sub-block's
 * scale, one per lane, multiplies the lane's sum. No horizontal sums, and
 * the scales are the panel's 12-bit fields (Q3_K, Q4_K, Q5_K), bytes
 * (Q2_K) or int8 pairs (Q6_K), not ggml's packing decoded row by row.
 *
 * The products:
 *  - AVX-VNNI: vpdpbusd adds the four products of each lane into int32,
 *    then vpmulld by the scales, as the AVX-512 tiles do;
 *  - AVX2: vpmaddubsw gives int16 pair sums (unsigned quant x int8
 *    activation, at most 2 x 63 x 127 = 16002: no saturation); pair sums
 *    of several loads add up in int16 while they cannot overflow (8 loads
 *    of 4-bit quants: 30480, 4 of 5-bit: 31496, 2 of 6-bit: 32004, a Q2_K
 *    or Q3_K group's 4: 7112), and vpmaddwd by (sc, sc) pairs then gives
 *    sc x sum in int32: no vpmulld.
 * Both make the exact integers S and M (and Q3_K's and Q6_K's offset O)
 * of quant_k.h for 8 rows at once, and the super-block's f32 steps run on the lanes,
 * the same IEEE operations unfused as the reference's: so every output
 * has the scalar reference's bits.
 *
 * Registers: 16 ymm. Each pass over a group's panels takes at most
 * K256_PASS activation rows, and a tile of more rows makes more passes,
 * the panels coming from L1 / L2 after the first (which prefetches). The
 * f32 accumulators of both halves are touched once per super-block, so
 * their spills cost little. 4 rows per pass spill more than 2 and still
 * ran prompts fastest here (2-core Zen 5 VM running these levels,
 * TinyLlama-shape 128-token prompt, one thread, tok/s at 2 / 3 / 4 rows:
 * Q4_K_M AVX2 80 / 80 / 86, Q6_K AVX-VNNI 92 / 97 / 109); not measured
 * on an N100. */
#include <immintrin.h>
#include <string.h>

#include "dot.h"
#include "dot_k.h"

#ifndef K256_PASS /* (-D for experiments) */
#define K256_PASS 4 /* activation rows per pass over the panels, 1..4 */
#endif

/* Four activation bytes (or two int16) in every 32-bit lane. */
static inline __m256i k256_bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The 32 bytes of half h of the 64-byte line at p. */
static inline __m256i k256_half(const uint8_t *p, int h)
{
    return _mm256_loadu_si256((const __m256i *)(p + 32 * h));
}

/* acc + (d_a d) S [- (d_a dmin) M]: sp_k_accumulate on 8 rows. */
static inline __m256 k256_finish(__m256 acc, float da, __m256 d, __m256 dmin, __m256i s, __m256i m, int has_min)
{
    const __m256 va = _mm256_set1_ps(da);
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(va, d), _mm256_cvtepi32_ps(s)));
    if (has_min) acc = _mm256_sub_ps(acc, _mm256_mul_ps(_mm256_mul_ps(va, dmin), _mm256_cvtepi32_ps(m)));
    return acc;
}

/* The 8 rows' fp16 values at p (16 of them; half h). */
static inline __m256 k256_f16(const uint8_t *p, int h)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
}

/* The 12-bit fields of half h's 8 rows in a 24-byte scale chunk (Q3_K,
 * Q4_K, Q5_K panels), one per int32 lane, garbage above bit 11. Row k's
 * field sits at bit 12 k of the chunk, so the 8 rows of half h are its
 * bytes 12 h .. 12 h + 11: lane k takes bytes 3k/2 and 3k/2 + 1 (a byte
 * shuffle), shifted right by 4 when k is odd. */
static inline __m256i k256_fields(const uint8_t *chunk, int h)
{
    const __m256i pick = _mm256_setr_epi8(0, 1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1, 4, 5, -1, -1, /* rows 0-3 */
                                          6, 7, -1, -1, 7, 8, -1, -1, 9, 10, -1, -1, 10, 11, -1, -1);
    const __m256i odd = _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4);
    /* 16 bytes from 12 h: past the 12 wanted lies the panel's next part
     * (the chunks end 32 bytes or more before the panel does) */
    __m128i raw = _mm_loadu_si128((const __m128i *)(chunk + 12 * h));
    return _mm256_srlv_epi32(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(raw), pick), odd);
}

/* Each lane's low 16 bits twice: (v, v) int16 pairs for vpmaddwd. */
static inline __m256i k256_pair(__m256i v)
{
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16));
}

/* ---- Q4_K and Q5_K ---- */

/* Sub-block j's scales of half h's rows (field sc | m << 6 of chunk j): sc
 * as int32 lanes (AVX-VNNI) or (sc, sc) int16 pairs (AVX2), and the mins
 * as (m, m) int16 pairs. */
static inline void k256_q4k_scales(const uint8_t *p, int j, int h, __m256i *sc, __m256i *mm)
{
    __m256i f = k256_fields(p + 64 + 24 * j, h);
    __m256i s = _mm256_and_si256(f, _mm256_set1_epi32(0x3f));
    __m256i m = _mm256_and_si256(_mm256_srli_epi32(f, 6), _mm256_set1_epi32(0x3f));
#if K256_VNNI
    *sc = s;
#else
    *sc = k256_pair(s);
#endif
    *mm = k256_pair(m);
}

/* Q5_K's fifth bits: bit b of each byte of v moved to bit 4 (the rest 0). */
static inline __m256i k256_bit_to_4(__m256i v, const int b)
{
    __m256i x = b <= 4 ? _mm256_slli_epi16(v, 4 - b) : _mm256_srli_epi16(v, b - 4);
    return _mm256_and_si256(x, _mm256_set1_epi8(0x10));
}

/* The quants of sub-blocks 2 ch (lo: low nibbles) and 2 ch + 1 (hi) in
 * dword t of half h, with Q5_K's fifth bits. */
static inline __attribute__((always_inline)) void k256_q4k_quants(const uint8_t *p, int ch, int t, int h, const int q5,
                                                                  __m256i *lo, __m256i *hi)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i v = k256_half(p + 256 + 64 * (8 * ch + t), h);
    *lo = _mm256_and_si256(v, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if (q5) {
        __m256i qh = k256_half(p + 2304 + 64 * t, h);
        *lo = _mm256_or_si256(*lo, k256_bit_to_4(qh, 2 * ch));
        *hi = _mm256_or_si256(*hi, k256_bit_to_4(qh, 2 * ch + 1));
    }
}

/* Super-block b (panel p) of half h against activation rows a (na of
 * them): S and M of quant_k.h per row and lane. */
static inline __attribute__((always_inline)) void k256_q4k_block(const uint8_t *p, int h, const sp_block_q8_K *a,
                                                                 int64_t stride, int64_t b, const int na, const int q5,
                                                                 __m256i *S, __m256i *M)
{
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) S[i] = M[i] = _mm256_setzero_si256();
    for (int ch = 0; ch < 4; ch++) {
        /* AVX2, Q5_K: the pair sums of loads 4-7 in L2 / H2 (int16 would
         * overflow over all 8) */
        __m256i L[K256_PASS], H[K256_PASS], L2[K256_PASS], H2[K256_PASS];
#pragma GCC unroll 4
        for (int i = 0; i < na; i++) L[i] = H[i] = L2[i] = H2[i] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            __m256i lo, hi;
            k256_q4k_quants(p, ch, t, h, q5, &lo, &hi);
#pragma GCC unroll 4
            for (int i = 0; i < na; i++) {
                const int8_t *q = a[i * stride + b].qs + 64 * ch + 4 * t;
#if K256_VNNI
                L[i] = _mm256_dpbusd_avx_epi32(L[i], lo, k256_bcast4(q));
                H[i] = _mm256_dpbusd_avx_epi32(H[i], hi, k256_bcast4(q + 32));
#else
                if (q5 && t >= 4) {
                    L2[i] = _mm256_add_epi16(L2[i], _mm256_maddubs_epi16(lo, k256_bcast4(q)));
                    H2[i] = _mm256_add_epi16(H2[i], _mm256_maddubs_epi16(hi, k256_bcast4(q + 32)));
                } else {
                    L[i] = _mm256_add_epi16(L[i], _mm256_maddubs_epi16(lo, k256_bcast4(q)));
                    H[i] = _mm256_add_epi16(H[i], _mm256_maddubs_epi16(hi, k256_bcast4(q + 32)));
                }
#endif
            }
        }
        __m256i sc0, mm0, sc1, mm1;
        k256_q4k_scales(p, 2 * ch, h, &sc0, &mm0);
        k256_q4k_scales(p, 2 * ch + 1, h, &sc1, &mm1);
#pragma GCC unroll 4
        for (int i = 0; i < na; i++) {
            const int16_t *bs = a[i * stride + b].bsums + 4 * ch;
#if K256_VNNI
            S[i] = _mm256_add_epi32(S[i],
                                    _mm256_add_epi32(_mm256_mullo_epi32(L[i], sc0), _mm256_mullo_epi32(H[i], sc1)));
#else
            S[i] = _mm256_add_epi32(S[i], _mm256_add_epi32(_mm256_madd_epi16(L[i], sc0), _mm256_madd_epi16(H[i], sc1)));
            if (q5)
                S[i] = _mm256_add_epi32(S[i],
                                        _mm256_add_epi32(_mm256_madd_epi16(L2[i], sc0), _mm256_madd_epi16(H2[i], sc1)));
#endif
            M[i] = _mm256_add_epi32(M[i], _mm256_add_epi32(_mm256_madd_epi16(mm0, k256_bcast4(bs)),
                                                           _mm256_madd_epi16(mm1, k256_bcast4(bs + 2))));
        }
    }
}

/* ---- Q2_K and Q3_K ---- */

/* Super-block b (panel p) of half h, Q2_K or Q3_K (q3), as the AVX-512
 * tile sums it (dot_k_x16_avx512.c, q23k_group): group g = 8 n + 2 j + e
 * takes bits 2j, 2j + 1 of qs dwords 8 n + 4 e .. + 3 (and for Q3_K bit
 * 4 n + j of hmask dwords 4 e .. + 3 as its bit 2). X is the mins' M
 * (Q2_K), or the offset O and S comes back as S - 4 O (Q3_K). */
static inline __attribute__((always_inline)) void k256_q23k_block(const uint8_t *p, int h, const sp_block_q8_K *a,
                                                                  int64_t stride, int64_t b, const int na, const int q3,
                                                                  __m256i *S, __m256i *X)
{
    const __m256i m3 = _mm256_set1_epi8(0x03), b1 = _mm256_set1_epi8(0x01), m4 = _mm256_set1_epi32(0x0f);
    const __m256i m3f = _mm256_set1_epi32(0x3f), k32 = _mm256_set1_epi32(32);
    const int qs_at = q3 ? 736 : 320; /* the quants' lines */
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) S[i] = X[i] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int n = 0; n < 2; n++) {
#pragma GCC unroll 1
        for (int j = 0; j < 4; j++) {
            const int g0 = 8 * n + 2 * j; /* groups g0 and g0 + 1 */
            __m256i s0, s1, pr;
            if (q3) { /* chunk 4n + j, each scale stored + 32 */
                const __m256i f = k256_fields(p + 32 + 24 * (4 * n + j), h);
                s0 = _mm256_sub_epi32(_mm256_and_si256(f, m3f), k32);
                s1 = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(f, 6), m3f), k32);
                pr = _mm256_or_si256(_mm256_and_si256(s0, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(s1, 16));
            } else { /* the rows' scale | min << 4 bytes of each group */
                const __m256i r0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 64 + 16 * g0 + 8 * h)));
                const __m256i r1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 80 + 16 * g0 + 8 * h)));
                s0 = _mm256_and_si256(r0, m4), s1 = _mm256_and_si256(r1, m4);
                pr = _mm256_or_si256(_mm256_srli_epi32(r0, 4), _mm256_slli_epi32(_mm256_srli_epi32(r1, 4), 16));
            }
#pragma GCC unroll 4
            for (int i = 0; i < na; i++)
                X[i] = _mm256_add_epi32(X[i], _mm256_madd_epi16(pr, k256_bcast4(a[i * stride + b].bsums + g0)));
            /* shift counts: the low bits' 2j, the high bit's 4n + j */
            const __m128i lo_shift = _mm_cvtsi32_si128(2 * j), hi_shift = _mm_cvtsi32_si128(4 * n + j);
#pragma GCC unroll 2
            for (int e = 0; e < 2; e++) {
                __m256i T[K256_PASS];
#pragma GCC unroll 4
                for (int i = 0; i < na; i++) T[i] = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int d = 0; d < 4; d++) {
                    const int D = 4 * e + d;
                    const __m256i v = k256_half(p + qs_at + 64 * (8 * n + D), h);
                    __m256i q = _mm256_and_si256(_mm256_srl_epi16(v, lo_shift), m3);
                    if (q3) {
                        const __m256i hb = k256_half(p + 224 + 64 * D, h);
                        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hb, hi_shift), b1);
                        q = _mm256_or_si256(q, _mm256_slli_epi16(hi, 2));
                    }
#pragma GCC unroll 4
                    for (int i = 0; i < na; i++) {
                        const __m256i act = k256_bcast4(a[i * stride + b].qs + 128 * n + 32 * j + 4 * D);
#if K256_VNNI
                        T[i] = _mm256_dpbusd_avx_epi32(T[i], q, act);
#else
                        /* 2- or 3-bit pair sums: at most 4 x 2 x 7 x 127 over the group */
                        T[i] = _mm256_add_epi16(T[i], _mm256_maddubs_epi16(q, act));
#endif
                    }
                }
                const __m256i sc = e ? s1 : s0;
#pragma GCC unroll 4
                for (int i = 0; i < na; i++)
#if K256_VNNI
                    S[i] = _mm256_add_epi32(S[i], _mm256_mullo_epi32(T[i], sc));
#else
                    S[i] = _mm256_add_epi32(S[i], _mm256_madd_epi16(T[i], k256_pair(sc)));
#endif
            }
        }
    }
    if (q3) {
#pragma GCC unroll 4
        for (int i = 0; i < na; i++) S[i] = _mm256_sub_epi32(S[i], _mm256_slli_epi32(X[i], 2));
    }
}

/* ---- Q6_K ---- */

/* Super-block b (panel p) of half h: S - 32 O of quant_k.h per row. */
static inline __attribute__((always_inline)) void k256_q6k_block(const uint8_t *p, int h, const sp_block_q8_K *a,
                                                                 int64_t stride, int64_t b, const int na, __m256i *S)
{
    const __m256i m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(0x03);
    __m256i O[K256_PASS];
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) S[i] = O[i] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int j = 0; j < 8; j++) {
        /* (sc_2j, sc_2j+1) int16 pairs of half h's rows */
        const __m256i pr = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 32 + 32 * j + 16 * h)));
#pragma GCC unroll 4
        for (int i = 0; i < na; i++)
            O[i] = _mm256_add_epi32(O[i], _mm256_madd_epi16(pr, k256_bcast4(a[i * stride + b].bsums + 2 * j)));
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const int gi = 2 * j + half;
            const uint8_t *q = p + 288 + 192 * gi;
            const __m256i A = k256_half(q, h), B = k256_half(q + 64, h), C = k256_half(q + 128, h);
            /* the fourth four quants: bits 6-7 of A, B, C as bits 0-1, 2-3, 4-5 */
            const __m256i r3 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(A, 6), m2),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), _mm256_slli_epi16(m2, 2)),
                                _mm256_and_si256(_mm256_srli_epi16(C, 2), _mm256_slli_epi16(m2, 4))));
            const __m256i r0 = _mm256_and_si256(A, m6), r1 = _mm256_and_si256(B, m6), r2 = _mm256_and_si256(C, m6);
#if K256_VNNI
            const __m256i sc = half ? _mm256_srai_epi32(pr, 16) : _mm256_srai_epi32(_mm256_slli_epi32(pr, 16), 16);
#else
            /* (sc, sc) int16 pairs: word 0 or 1 of each lane, twice */
            const __m256i sc = half ? _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pr, 0xf5), 0xf5)
                                    : _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pr, 0xa0), 0xa0);
#endif
#pragma GCC unroll 4
            for (int i = 0; i < na; i++) {
                const int8_t *qa = a[i * stride + b].qs + 16 * gi;
#if K256_VNNI
                __m256i t = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), r0, k256_bcast4(qa));
                t = _mm256_dpbusd_avx_epi32(t, r1, k256_bcast4(qa + 4));
                t = _mm256_dpbusd_avx_epi32(t, r2, k256_bcast4(qa + 8));
                t = _mm256_dpbusd_avx_epi32(t, r3, k256_bcast4(qa + 12));
                S[i] = _mm256_add_epi32(S[i], _mm256_mullo_epi32(t, sc));
#else
                __m256i t01 = _mm256_add_epi16(_mm256_maddubs_epi16(r0, k256_bcast4(qa)),
                                               _mm256_maddubs_epi16(r1, k256_bcast4(qa + 4)));
                __m256i t23 = _mm256_add_epi16(_mm256_maddubs_epi16(r2, k256_bcast4(qa + 8)),
                                               _mm256_maddubs_epi16(r3, k256_bcast4(qa + 12)));
                S[i] = _mm256_add_epi32(S[i], _mm256_add_epi32(_mm256_madd_epi16(t01, sc), _mm256_madd_epi16(t23, sc)));
#endif
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) S[i] = _mm256_sub_epi32(S[i], _mm256_slli_epi32(O[i], 5));
}

/* ---- the tile ---- */

/* One group of 16 rows (nb panels at g) against na <= K256_PASS activation
 * rows: y[i * y_stride + k] for rows k = 0..15. */
static inline __attribute__((always_inline)) void k256_group(sp_dtype type, int64_t nb, const uint8_t *g,
                                                             const sp_block_q8_K *a, int64_t stride, const int na,
                                                             int prefetch, float *y, int64_t y_stride)
{
    const int64_t ahead = sp_prefetch_ahead;
    const size_t panel = SP_KX16 * sp_k_block_bytes(type);
    __m256 acc[2][K256_PASS];
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) acc[0][i] = acc[1][i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + b * panel;
        if (prefetch) sp_prefetch_group(p, (int)panel, ahead);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            /* S, and M where the type has mins (Q6_K and Q3_K have an
             * offset instead, already taken off S) */
            __m256i S[K256_PASS], M[K256_PASS];
            if (type == SP_DTYPE_Q6_K) k256_q6k_block(p, h, a, stride, b, na, S);
            else if (type == SP_DTYPE_Q2_K || type == SP_DTYPE_Q3_K)
                k256_q23k_block(p, h, a, stride, b, na, type == SP_DTYPE_Q3_K, S, M);
            else k256_q4k_block(p, h, a, stride, b, na, type == SP_DTYPE_Q5_K, S, M);
            const int has_min = type != SP_DTYPE_Q6_K && type != SP_DTYPE_Q3_K;
            const __m256 d = k256_f16(p, h), dmin = has_min ? k256_f16(p + 32, h) : d;
#pragma GCC unroll 4
            for (int i = 0; i < na; i++)
                acc[h][i] = k256_finish(acc[h][i], a[i * stride + b].d, d, dmin, S[i], has_min ? M[i] : S[i], has_min);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) {
        _mm256_storeu_ps(y + i * y_stride, acc[0][i]);
        _mm256_storeu_ps(y + i * y_stride + 8, acc[1][i]);
    }
}

/* nw rows (a multiple of 16) against na = 1..SP_KX16_ROWS activation rows,
 * K256_PASS at a time; the first pass over a group prefetches it. */
static inline __attribute__((always_inline)) void k256_tile(sp_dtype type, int64_t n, const void *w, long nw,
                                                            const sp_block_q8_K *a, int64_t stride, int na, float *y,
                                                            int64_t y_stride)
{
    const int64_t nb = n / SP_QK_K;
    const size_t gbytes = (size_t)SP_KX16 * nb * sp_k_block_bytes(type);
    for (long r = 0; r < nw; r += SP_KX16) {
        const uint8_t *g = (const uint8_t *)w + (r / SP_KX16) * gbytes;
        for (int i = 0; i < na; i += K256_PASS) {
            const sp_block_q8_K *ai = a + i * stride;
            float *yi = y + i * y_stride + r;
            switch (na - i < K256_PASS ? na - i : K256_PASS) {
            case 1: k256_group(type, nb, g, ai, stride, 1, i == 0, yi, y_stride); break;
            case 2: k256_group(type, nb, g, ai, stride, 2 <= K256_PASS ? 2 : 1, i == 0, yi, y_stride); break;
            case 3: k256_group(type, nb, g, ai, stride, 3 <= K256_PASS ? 3 : 1, i == 0, yi, y_stride); break;
            default: k256_group(type, nb, g, ai, stride, K256_PASS, i == 0, yi, y_stride); break;
            }
        }
    }
}

#define K256_TILE_FN(type, name)                                                                                 \
    void K256_NAME(name)(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na,     \
                         float *y, int64_t y_stride)                                                            \
    {                                                                                                           \
        k256_tile(type, n, w, nw, a, stride, na, y, y_stride);                                                  \
    }

K256_TILE_FN(SP_DTYPE_Q2_K, sp_tile_q2_k_x16)
K256_TILE_FN(SP_DTYPE_Q3_K, sp_tile_q3_k_x16)
K256_TILE_FN(SP_DTYPE_Q4_K, sp_tile_q4_k_x16)
K256_TILE_FN(SP_DTYPE_Q5_K, sp_tile_q5_k_x16)
K256_TILE_FN(SP_DTYPE_Q6_K, sp_tile_q6_k_x16)
