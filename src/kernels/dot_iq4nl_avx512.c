/* dot_iq4nl_avx512.c - the IQ4_NL rows kernels of the AVX-512 levels:
 *  - avx512vnni: dot_iq4nl_vnni.h with the EVEX-encoded vpdpbusd on
 *    256-bit registers, as the Q4_0 / Q8_0 kernels of dot_avx512.c (whose
 *    notes on 512-bit registers in decode apply here too);
 *  - avx512vbmi (with GFNI): a whole group of four blocks in one zmm
 *    register, gathered as dot_avx512.c's Q4_0 VBMI kernel gathers the
 *    same 18-byte blocks: two 64-byte loads, one vpermt2b for the quants,
 *    one vpermw for the four fp16 scales over their lanes, the high
 *    nibbles by one GF(2) affine map; then two vpshufb table lookups.
 *    Int32 lanes 0-7 are the 256-bit kernel's first register (blocks 0-1),
 *    8-15 its second (blocks 2-3), and each lane runs the same operations
 *    in the same order, so the bits are those of every level. Measured on
 *    the 2-core AMD EPYC (Zen 4) of this project, one thread, weights in
 *    L2: a tile of 128 x 2048 against one activation row, best of 300,
 *    34-36 GB/s of weights with the 256-bit kernel, 38-39 with this one
 *    (Q4_0's VBMI kernel on the file layout: 39, on its x16 panels: 50);
 *    bench_dot's cached column, 29 -> 46 GB/s (Q4_0: 51). */
#include <immintrin.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_epi32(acc, u, s); }

#include "dot_iq4nl_vnni.h"
#include "dot_x86.h"

void sp_vec_dot_iq4_nl_q8g_rows_avx512(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                       int na, float *out)
{
    iq4nl_rows_n(n, w, a, stride, na, out);
}

#define VBMI __attribute__((target("avx512vbmi,gfni")))

/* The group gather is the Q4_0 kernel's (the same 18-byte blocks): its
 * tables sp_group18_qidx / _didx (dot_x86.h). */

static inline __attribute__((always_inline)) VBMI void rows_vbmi(int64_t n, const sp_block_iq4_nl *w,
                                                                  const sp_q8_group *a, int64_t stride, const int na,
                                                                  float *out)
{
    const int64_t nb = n / SP_QK, ahead = sp_prefetch_ahead;
    const __m512i m4 = _mm512_set1_epi8(0x0f), qidx = _mm512_load_si512(sp_group18_qidx);
    const __m512i didx = _mm512_load_si512(sp_group18_didx);
    /* x >> 4 in every byte: bit i of the result is bit i + 4 of x (dot_avx512.c) */
    const __m512i shr4 = _mm512_set1_epi64(0x1020408000000000LL);
    const __m128i table_u = _mm_xor_si128(_mm_loadu_si128((const __m128i *)sp_iq4nl_values), _mm_set1_epi8((char)0x80));
    const __m512i table4 = _mm512_broadcast_i32x4(table_u);
    __m512 acc[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc[i] = _mm512_setzero_ps();
    int64_t b = 0, g = 0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_iq4_nl), ahead);
        const char *p = (const char *)(w + b);
        __m512i A = _mm512_loadu_si512(p), B = _mm512_loadu_si512(p + 8);
        __asm__("" : "+v"(A)); /* one load of A, not a second one folded into vpermw (dot_avx512.c) */
        __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(didx, A)));
        __m512i q = _mm512_permutex2var_epi8(A, qidx, B);
        __m512i ul = _mm512_shuffle_epi8(table4, _mm512_and_si512(q, m4));
        __m512i uh = _mm512_shuffle_epi8(table4, _mm512_gf2p8affine_epi64_epi8(q, shr4, 0));
        #pragma GCC unroll 4 /* SP_DOT_ROWS */
        for (int i = 0; i < na; i++) {
            const sp_q8_group *gi = a + i * stride + g;
            __m512i s = _mm512_slli_epi32(_mm512_loadu_si512(gi->bias), 4);
            s = _mm512_dpbusd_epi32(s, ul, _mm512_loadu_si512(gi->lo));
            s = _mm512_dpbusd_epi32(s, uh, _mm512_loadu_si512(gi->hi));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(gi->d)), acc[i]);
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = one_block(tail, w + t, a + i * stride + g, (int)k, table_u);
        out[i] = hsum_lanes(_mm512_castps512_ps256(acc[i]), _mm512_extractf32x8_ps(acc[i], 1), tail);
    }
}

VBMI void sp_vec_dot_iq4_nl_q8g_rows_avx512vbmi(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a,
                                                int64_t stride, int na, float *out)
{
    switch (na) {
    case 1: rows_vbmi(n, w, a, stride, 1, out); break;
    case 2: rows_vbmi(n, w, a, stride, 2, out); break;
    case 3: rows_vbmi(n, w, a, stride, 3, out); break;
    default: rows_vbmi(n, w, a, stride, 4, out); break;
    }
}
