/* dot_iq4nl_avx512.c - the IQ4_NL rows kernel of the AVX-512 VNNI levels
 * (dot_iq4nl_vnni.h with the EVEX-encoded vpdpbusd on 256-bit registers,
 * as the Q4_0 / Q8_0 kernels of dot_avx512.c, whose notes on 512-bit
 * registers in decode apply here too). */
#include <immintrin.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_epi32(acc, u, s); }

#include "dot_iq4nl_vnni.h"

void sp_vec_dot_iq4_nl_q8g_rows_avx512(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                       int na, float *out)
{
    iq4nl_rows_n(n, w, a, stride, na, out);
}
