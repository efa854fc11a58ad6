/* dot_avxvnni.c - the int8 rows kernels for x86-64 CPUs with AVX-VNNI but
 * no AVX-512 (Alder Lake and later client cores, Intel N100 / N97 mini PCs;
 * Zen 5 has AVX-512 and takes that level), compiled with -mavxvnni: the
 * kernels of dot_vnni.h with the VEX-encoded vpdpbusd. One instruction does what AVX2's
 * vpmaddubsw + vpmaddwd + vpaddd do (dot_avx2.c), and the bits are those of
 * every other level. Measured on the 2-core Intel Xeon of this project's
 * machines (which has AVX-VNNI too), TinyLlama-1.1B shape, one thread,
 * SHARDPIPE_SIMD=avx2 vs avxvnni: see benchmarks/README.md. */
#include <immintrin.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_avx_epi32(acc, u, s); }

#include "dot_vnni.h"

void sp_vec_dot_q8_0_q8g_rows_avxvnni(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride,
                                      int na, float *out)
{
    q8_rows_n(n, w, a, stride, na, out);
}

void sp_vec_dot_q4_0_q8g_rows_avxvnni(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride,
                                      int na, float *out)
{
    q4_rows_n(n, w, a, stride, na, out);
}
