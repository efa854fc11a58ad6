/* dot_iq4nl_avxvnni.c - the IQ4_NL rows kernel of the AVX-VNNI level
 * (dot_iq4nl_vnni.h with the VEX-encoded vpdpbusd; -mavxvnni). */
#include <immintrin.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_avx_epi32(acc, u, s); }

#include "dot_iq4nl_vnni.h"

void sp_vec_dot_iq4_nl_q8g_rows_avxvnni(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride,
                                        int na, float *out)
{
    iq4nl_rows_n(n, w, a, stride, na, out);
}
