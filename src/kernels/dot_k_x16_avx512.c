/* dot_k_x16_avx512.c - the K-quant tiles of the avx512vbmi level on rows
 * regrouped sixteen at a time (sp_k_x16, layout in quant_kx16.c).
 *
 * A 64-byte load of a panel's quants holds four bytes of each of 16 rows,
 * one row per 32-bit lane; vpdpbusd with four activation bytes broadcast
 * to every lane adds their four products into that row's lane. Summing a
 * group's registers so gives, per lane, the row's exact isum of the group
 * (Q4_K, Q5_K: of a 32-value sub-block, whose two groups share the scale), and
 * vpmulld by the 16 rows' scales, one per lane, adds sc (isum) into S; the
 * mins' term M = m (bsum_2j + bsum_2j+1) is one vpdpwssd of (m, m) pairs
 * with the two broadcast 16-bit sums, and Q6_K's offset term likewise
 * (sc_2j bsum_2j + sc_2j+1 bsum_2j+1; Q2_K's mins and Q3_K's offset as
 * Q6_K's, a group per scale). S and M are the exact integers of
 * quant_k.h for 16 rows at once, and the super-block's f32 steps run on the
 * 16 lanes, the same IEEE operations unfused: so every output has the
 * scalar reference's bits, with no horizontal sum anywhere. A panel's quants
 * are unpacked once for all na (<= SP_KX16_ROWS = 8) activation rows. */
#include <immintrin.h>
#include <string.h>

#include "dot.h"
#include "dot_k.h"

#define VBMI __attribute__((target("avx512vbmi,gfni")))

/* Four activation bytes in every 32-bit lane. */
static inline __m512i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The weight stream's prefetch, sp_prefetch_ahead bytes ahead of a
 * 16-row super-block group at p: either all of the group's lines at once
 * as it starts (a burst), or spread, one line per 64 bytes the group
 * consumes, beside the load that consumes it. Measured one thread, a
 * 180-270 MB matrix in a loop (2-core Zen 5 VM; GB/s of weights, medians
 * of 5 alternated runs, burst -> spread, by activation rows na):
 *   Q4_K  na 1: 33.7 -> 31.9  na 3: 35.1 -> 34.4  na 4: 31.7 -> 30.6
 *         na 5: 26.3 -> 28.7  na 6: 22.0 -> 24.3  na 8: 16.1 -> 17.8
 *   Q6_K  na 1: 38.2 -> 38.6  na 4: 29.4 -> 32.5  na 8: 17.4 -> 21.2
 * A burst of 36 (Q4_K) or 53 (Q6_K) prefetches waits for free miss
 * buffers, and the more rows' arithmetic stands between two bursts the
 * less of it overlaps the wait; Q4_K's short loop at few rows streams
 * best with its burst. So Q6_K spreads always, and Q4_K and Q5_K from 5
 * rows on (na is a constant in each of the tiles). The bits do not
 * change. (A spread line is sp_prefetch_group of 64 bytes.) */

/* acc + (d_a d) S [- (d_a dmin) M]: sp_k_accumulate on 16 rows. */
static inline __m512 finish(__m512 acc, float da, __m512 d, __m512 dmin, __m512i s, __m512i m, int has_min)
{
    const __m512 va = _mm512_set1_ps(da);
    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(va, d), _mm512_cvtepi32_ps(s)));
    if (has_min) acc = _mm512_sub_ps(acc, _mm512_mul_ps(_mm512_mul_ps(va, dmin), _mm512_cvtepi32_ps(m)));
    return acc;
}

/* ---- Q4_K ---- */

typedef struct q4k_consts {
    __m512i idx, ctl_sc, ctl_m, m4, hi4;
} q4k_consts;

/* qword q takes chunk bytes 3q .. 3q + 2: rows 2q and 2q + 1's 12-bit
 * fields at bits 0 and 12; the shift controls then pick sc (bits 0, 12)
 * into byte 0 of each lane, and m (bits 6, 18) into bytes 0 and 2. Static
 * tables: a decode tile runs once per claim of rows, but the prompt's run
 * once per 16 rows. */
static const _Alignas(64) uint8_t q4k_idx[64] = {
    0, 1, 2, 2, 2, 2, 2, 2, 3, 4, 5, 5, 5, 5, 5, 5,
    6, 7, 8, 8, 8, 8, 8, 8, 9, 10, 11, 11, 11, 11, 11, 11,
    12, 13, 14, 14, 14, 14, 14, 14, 15, 16, 17, 17, 17, 17, 17, 17,
    18, 19, 20, 20, 20, 20, 20, 20, 21, 22, 23, 23, 23, 23, 23, 23,
};
static const _Alignas(64) uint8_t q4k_ctl_sc[64] = {
    0, 0, 0, 0, 12, 12, 12, 12, 0, 0, 0, 0, 12, 12, 12, 12,
    0, 0, 0, 0, 12, 12, 12, 12, 0, 0, 0, 0, 12, 12, 12, 12,
    0, 0, 0, 0, 12, 12, 12, 12, 0, 0, 0, 0, 12, 12, 12, 12,
    0, 0, 0, 0, 12, 12, 12, 12, 0, 0, 0, 0, 12, 12, 12, 12,
};
static const _Alignas(64) uint8_t q4k_ctl_m[64] = {
    6, 6, 6, 6, 18, 18, 18, 18, 6, 6, 6, 6, 18, 18, 18, 18,
    6, 6, 6, 6, 18, 18, 18, 18, 6, 6, 6, 6, 18, 18, 18, 18,
    6, 6, 6, 6, 18, 18, 18, 18, 6, 6, 6, 6, 18, 18, 18, 18,
    6, 6, 6, 6, 18, 18, 18, 18, 6, 6, 6, 6, 18, 18, 18, 18,
};

static inline VBMI void q4k_consts_init(q4k_consts *c)
{
    c->idx = _mm512_load_si512(q4k_idx);
    c->ctl_sc = _mm512_load_si512(q4k_ctl_sc);
    c->ctl_m = _mm512_load_si512(q4k_ctl_m);
    c->m4 = _mm512_set1_epi8(0x0f);
    c->hi4 = _mm512_set1_epi64(0x1020408000000000LL); /* gf2p8affineqb: bits 4-7 to 0-3 */
}

/* Sub-block j's scales of the 16 rows as int32 lanes and their mins as
 * (m, m) int16 pairs. */
static inline VBMI void q4k_scales(const q4k_consts *c, const uint8_t *p, int j, __m512i *sc, __m512i *mm)
{
    __m512i raw = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 64 + 24 * j)));
    __m512i f = _mm512_permutexvar_epi8(c->idx, raw);
    *sc = _mm512_and_si512(_mm512_multishift_epi64_epi8(c->ctl_sc, f), _mm512_set1_epi32(0x3f));
    *mm = _mm512_and_si512(_mm512_multishift_epi64_epi8(c->ctl_m, f), _mm512_set1_epi32(0x003f003f));
}

/* Q5_K's fifth bits: bit b of each byte of h moved to bit 4 (the rest 0). */
static inline VBMI __m512i bit_to_4(__m512i h, const int b)
{
    __m512i v = b <= 4 ? _mm512_slli_epi16(h, 4 - b) : _mm512_srli_epi16(h, b - 4);
    return _mm512_and_si512(v, _mm512_set1_epi8(0x10));
}

/* Q4_K, and Q5_K (q5: the same panel and steps, each quant's fifth bit
 * from the qh dwords after the panel's quants OR'ed into bit 4: values
 * 0..31, the same exact integers as the reference's). */
static inline __attribute__((always_inline)) VBMI void q4k_group(const q4k_consts *c, int64_t nb, const uint8_t *g,
                                                                 const sp_block_q8_K *a, int64_t stride, int na,
                                                                 const int q5, __m512 acc[SP_KX16_ROWS])
{
    const int64_t ahead = sp_prefetch_ahead;
    const size_t panel = SP_KX16 * (q5 ? sizeof(sp_block_q5_K) : sizeof(sp_block_q4_K));
#pragma GCC unroll 8
    for (int i = 0; i < na; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + b * panel;
        /* spread: the 4 lines of scales now, each quant line at its load
         * (and Q5_K's qh lines with the first sub-blocks' loads) */
        const int spread = na >= 5;
        sp_prefetch_group(p, spread ? 256 : (int)panel, ahead);
        __m512i S[SP_KX16_ROWS], M[SP_KX16_ROWS];
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) S[i] = M[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int ch = 0; ch < 4; ch++) {
            /* sub-blocks 2 ch (low nibbles) and 2 ch + 1 (high nibbles) */
            __m512i L[SP_KX16_ROWS], H[SP_KX16_ROWS];
#pragma GCC unroll 8
            for (int i = 0; i < na; i++) L[i] = H[i] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) {
                if (spread) sp_prefetch_group(p + 256 + 64 * (8 * ch + t), 64, ahead);
                if (spread && q5 && ch == 0) sp_prefetch_group(p + 2304 + 64 * t, 64, ahead);
                __m512i v = _mm512_loadu_si512((const void *)(p + 256 + 64 * (8 * ch + t)));
                __m512i lo = _mm512_and_si512(v, c->m4), hi = _mm512_gf2p8affine_epi64_epi8(v, c->hi4, 0);
                if (q5) {
                    __m512i h = _mm512_loadu_si512((const void *)(p + 2304 + 64 * t));
                    lo = _mm512_or_si512(lo, bit_to_4(h, 2 * ch));
                    hi = _mm512_or_si512(hi, bit_to_4(h, 2 * ch + 1));
                }
#pragma GCC unroll 8
                for (int i = 0; i < na; i++) {
                    const int8_t *q = a[i * stride + b].qs + 64 * ch + 4 * t;
                    L[i] = _mm512_dpbusd_epi32(L[i], lo, bcast4(q));
                    H[i] = _mm512_dpbusd_epi32(H[i], hi, bcast4(q + 32));
                }
            }
            __m512i sc0, mm0, sc1, mm1;
            q4k_scales(c, p, 2 * ch, &sc0, &mm0);
            q4k_scales(c, p, 2 * ch + 1, &sc1, &mm1);
#pragma GCC unroll 8
            for (int i = 0; i < na; i++) {
                const int16_t *bs = a[i * stride + b].bsums + 4 * ch;
                S[i] = _mm512_add_epi32(S[i], _mm512_add_epi32(_mm512_mullo_epi32(L[i], sc0),
                                                               _mm512_mullo_epi32(H[i], sc1)));
                M[i] = _mm512_dpwssd_epi32(M[i], mm0, bcast4(bs));
                M[i] = _mm512_dpwssd_epi32(M[i], mm1, bcast4(bs + 2));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) acc[i] = finish(acc[i], a[i * stride + b].d, d, dmin, S[i], M[i], 1);
    }
}

/* ---- Q2_K and Q3_K ---- */

/* gf2p8affineqb matrices (result bit i is the parity of matrix byte 7 - i
 * and the input byte): bits 2j, 2j + 1 of each byte to bits 0, 1 (qs's low
 * bits of sub-block j), and bit b to bit 2 (Q3_K hmask's high bit). */
#define GF_PAIR_TO_01(j) _mm512_set1_epi64((long long)((1ULL << (2 * (j))) << 56 | (1ULL << (2 * (j) + 1)) << 48))
#define GF_BIT_TO_2(b) _mm512_set1_epi64((long long)((1ULL << (b)) << 40))

/* Q2_K, and Q3_K (q3). Group g = 8 h + 2 j + e (16 values: 128 h + 32 j
 * + 16 e + 0..15) takes bits 2j, 2j + 1 of qs dwords 8 h + 4 e .. + 3,
 * and for Q3_K bit 4 h + j of hmask dwords 4 e .. + 3 as its bit 2. The
 * group's scale multiplies its isum into S. X takes a second term, one
 * vpdpwssd of (group, group + 1) pairs with their bsums per two groups:
 *  - Q2_K: the mins (the low and high nibbles of the rows' bytes of the
 *    group), X = M, and the f32 steps are Q4_K's;
 *  - Q3_K: the scales s - 32 (two 12-bit fields per row and chunk, as
 *    Q4_K's sc | m), X = O and S - 4 O is the reference's sum. */
static inline __attribute__((always_inline)) VBMI void q23k_group(const q4k_consts *c, int64_t nb, const uint8_t *g,
                                                                  const sp_block_q8_K *a, int64_t stride, int na,
                                                                  const int q3, __m512 acc[SP_KX16_ROWS])
{
    const int64_t ahead = sp_prefetch_ahead;
    const size_t panel = SP_KX16 * (q3 ? sizeof(sp_block_q3_K) : sizeof(sp_block_q2_K));
    const int qs_at = q3 ? 736 : 320; /* the quants' lines */
    const __m512i m3f = _mm512_set1_epi32(0x3f), k32 = _mm512_set1_epi32(32), m4 = _mm512_set1_epi32(0x0f);
#pragma GCC unroll 8
    for (int i = 0; i < na; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + b * panel;
        /* spread from 5 rows on (as Q4_K): the lines before the low bits
         * now, each of those at its first load */
        const int spread = na >= 5;
        sp_prefetch_group(p, spread ? qs_at : (int)panel, ahead);
        __m512i S[SP_KX16_ROWS], X[SP_KX16_ROWS];
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) S[i] = X[i] = _mm512_setzero_si512();
#pragma GCC unroll 1
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const int g0 = 8 * h + 2 * j; /* groups g0 and g0 + 1 */
                __m512i s0, s1, pr;
                if (q3) { /* chunk 4h + j */
                    const uint8_t *chunk = p + 32 + 24 * (4 * h + j);
                    __m512i raw = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)chunk));
                    __m512i f = _mm512_permutexvar_epi8(c->idx, raw);
                    s0 = _mm512_sub_epi32(_mm512_and_si512(_mm512_multishift_epi64_epi8(c->ctl_sc, f), m3f), k32);
                    s1 = _mm512_sub_epi32(_mm512_and_si512(_mm512_multishift_epi64_epi8(c->ctl_m, f), m3f), k32);
                    pr = _mm512_or_si512(_mm512_and_si512(s0, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(s1, 16));
                } else {
                    __m512i r0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 64 + 16 * g0)));
                    __m512i r1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 80 + 16 * g0)));
                    s0 = _mm512_and_si512(r0, m4), s1 = _mm512_and_si512(r1, m4);
                    pr = _mm512_or_si512(_mm512_srli_epi32(r0, 4), _mm512_slli_epi32(_mm512_srli_epi32(r1, 4), 16));
                }
#pragma GCC unroll 8
                for (int i = 0; i < na; i++) X[i] = _mm512_dpwssd_epi32(X[i], pr, bcast4(a[i * stride + b].bsums + g0));
                const __m512i lo2 = GF_PAIR_TO_01(j), hi1 = GF_BIT_TO_2(4 * h + j);
#pragma GCC unroll 2
                for (int e = 0; e < 2; e++) {
                    __m512i T[SP_KX16_ROWS];
#pragma GCC unroll 8
                    for (int i = 0; i < na; i++) T[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
                    for (int d = 0; d < 4; d++) {
                        const int D = 4 * e + d;
                        const uint8_t *line = p + qs_at + 64 * (8 * h + D);
                        if (spread && j == 0) sp_prefetch_group(line, 64, ahead);
                        __m512i q = _mm512_gf2p8affine_epi64_epi8(_mm512_loadu_si512((const void *)line), lo2, 0);
                        if (q3) {
                            __m512i hb = _mm512_loadu_si512((const void *)(p + 224 + 64 * D));
                            q = _mm512_or_si512(q, _mm512_gf2p8affine_epi64_epi8(hb, hi1, 0));
                        }
#pragma GCC unroll 8
                        for (int i = 0; i < na; i++)
                            T[i] = _mm512_dpbusd_epi32(T[i], q,
                                                       bcast4(a[i * stride + b].qs + 128 * h + 32 * j + 4 * D));
                    }
                    const __m512i sc = e ? s1 : s0;
#pragma GCC unroll 8
                    for (int i = 0; i < na; i++) S[i] = _mm512_add_epi32(S[i], _mm512_mullo_epi32(T[i], sc));
                }
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 dmin = q3 ? d : _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) {
            if (q3) {
                __m512i s = _mm512_sub_epi32(S[i], _mm512_slli_epi32(X[i], 2));
                acc[i] = finish(acc[i], a[i * stride + b].d, d, d, s, s, 0);
            } else {
                acc[i] = finish(acc[i], a[i * stride + b].d, d, dmin, S[i], X[i], 1);
            }
        }
    }
}

/* ---- Q6_K ---- */

/* gf2p8affineqb matrices: bits 6-7 of each byte to bits 0-1, 2-3, 4-5
 * (result bit i is the parity of matrix byte 7 - i and the input byte). */
#define GF_67_TO(b) _mm512_set1_epi64((long long)(0x4080ULL << (48 - 8 * (b))))

static inline __attribute__((always_inline)) VBMI void q6k_group(int64_t nb, const uint8_t *g, const sp_block_q8_K *a,
                                                                 int64_t stride, int na, __m512 acc[SP_KX16_ROWS])
{
    const int64_t ahead = sp_prefetch_ahead;
    const __m512i m6 = _mm512_set1_epi8(0x3f), to01 = GF_67_TO(0), to23 = GF_67_TO(2), to45 = GF_67_TO(4);
#pragma GCC unroll 8
    for (int i = 0; i < na; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + b * (SP_KX16 * sizeof(sp_block_q6_K));
        /* spread: 5 lines (the scales and the first quants) now, then 3
         * lines at each group of 16 values: 53 lines, 64 bytes apart */
        sp_prefetch_group(p, 320, ahead);
        __m512i S[SP_KX16_ROWS], O[SP_KX16_ROWS];
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) S[i] = O[i] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            /* (sc_2j, sc_2j+1) pairs of the 16 rows: the offset term, then
             * each group's scale as int32 lanes */
            const __m512i pr = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p + 32 + 32 * j)));
#pragma GCC unroll 8
            for (int i = 0; i < na; i++) O[i] = _mm512_dpwssd_epi32(O[i], pr, bcast4(a[i * stride + b].bsums + 2 * j));
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                const int gi = 2 * j + half;
                const uint8_t *q = p + 288 + 192 * gi;
                sp_prefetch_group(q + 32, 64, ahead);
                sp_prefetch_group(q + 96, 64, ahead);
                sp_prefetch_group(q + 160, 64, ahead);
                __m512i A = _mm512_loadu_si512((const void *)q), B = _mm512_loadu_si512((const void *)(q + 64)),
                        C = _mm512_loadu_si512((const void *)(q + 128));
                __m512i r[4];
                r[0] = _mm512_and_si512(A, m6);
                r[1] = _mm512_and_si512(B, m6);
                r[2] = _mm512_and_si512(C, m6);
                r[3] = _mm512_ternarylogic_epi32(_mm512_gf2p8affine_epi64_epi8(A, to01, 0),
                                                 _mm512_gf2p8affine_epi64_epi8(B, to23, 0),
                                                 _mm512_gf2p8affine_epi64_epi8(C, to45, 0), 0xfe);
                const __m512i sc = half ? _mm512_srai_epi32(pr, 16) : _mm512_srai_epi32(_mm512_slli_epi32(pr, 16), 16);
#pragma GCC unroll 8
                for (int i = 0; i < na; i++) {
                    const int8_t *qa = a[i * stride + b].qs + 16 * gi;
                    __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), r[0], bcast4(qa));
#pragma GCC unroll 3
                    for (int u = 1; u < 4; u++) t = _mm512_dpbusd_epi32(t, r[u], bcast4(qa + 4 * u));
                    S[i] = _mm512_add_epi32(S[i], _mm512_mullo_epi32(t, sc));
                }
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) {
            __m512i s = _mm512_sub_epi32(S[i], _mm512_slli_epi32(O[i], 5));
            acc[i] = finish(acc[i], a[i * stride + b].d, d, d, s, s, 0);
        }
    }
}

static inline __attribute__((always_inline)) VBMI void tile(sp_dtype type, int64_t n, const void *w, long nw,
                                                            const sp_block_q8_K *a, int64_t stride, int na, float *y,
                                                            int64_t y_stride)
{
    const int64_t nb = n / SP_QK_K;
    const size_t gbytes = (size_t)SP_KX16 * nb * sp_k_block_bytes(type);
    q4k_consts c;
    if (type != SP_DTYPE_Q6_K) q4k_consts_init(&c);
    for (long r = 0; r < nw; r += SP_KX16) {
        const uint8_t *g = (const uint8_t *)w + (r / SP_KX16) * gbytes;
        __m512 acc[SP_KX16_ROWS];
        if (type == SP_DTYPE_Q2_K) q23k_group(&c, nb, g, a, stride, na, 0, acc);
        else if (type == SP_DTYPE_Q3_K) q23k_group(&c, nb, g, a, stride, na, 1, acc);
        else if (type == SP_DTYPE_Q4_K) q4k_group(&c, nb, g, a, stride, na, 0, acc);
        else if (type == SP_DTYPE_Q5_K) q4k_group(&c, nb, g, a, stride, na, 1, acc);
        else q6k_group(nb, g, a, stride, na, acc);
#pragma GCC unroll 8
        for (int i = 0; i < na; i++) _mm512_storeu_ps(y + i * y_stride + r, acc[i]);
    }
}

#define TILE_NA(type, na) tile(type, n, w, nw, a, stride, na, y, y_stride)
#define TILE_FN(name, type)                                                                                     \
    VBMI void name(int64_t n, const void *w, long nw, const sp_block_q8_K *a, int64_t stride, int na, float *y, \
                   int64_t y_stride)                                                                            \
    {                                                                                                           \
        switch (na) {                                                                                           \
        case 1: TILE_NA(type, 1); break;                                                                        \
        case 2: TILE_NA(type, 2); break;                                                                        \
        case 3: TILE_NA(type, 3); break;                                                                        \
        case 4: TILE_NA(type, 4); break;                                                                        \
        case 5: TILE_NA(type, 5); break;                                                                        \
        case 6: TILE_NA(type, 6); break;                                                                        \
        case 7: TILE_NA(type, 7); break;                                                                        \
        default: TILE_NA(type, 8); break;                                                                       \
        }                                                                                                       \
    }

TILE_FN(sp_tile_q2_k_x16_avx512vbmi, SP_DTYPE_Q2_K)
TILE_FN(sp_tile_q3_k_x16_avx512vbmi, SP_DTYPE_Q3_K)
TILE_FN(sp_tile_q4_k_x16_avx512vbmi, SP_DTYPE_Q4_K)
TILE_FN(sp_tile_q5_k_x16_avx512vbmi, SP_DTYPE_Q5_K)
TILE_FN(sp_tile_q6_k_x16_avx512vbmi, SP_DTYPE_Q6_K)
