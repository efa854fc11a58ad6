/* dot_avx512.c - vec_dot kernels for x86-64 with AVX-512 F/BW/VL/DQ and
 * VNNI (compiled with the matching -m flags; only called when the CPU has
 * them, see simd.c). This is the decode and prompt hot path on Zen 4 / Ice
 * Lake and later: the tile kernels at the end take a chunk of weight rows
 * against up to four activation rows.
 *
 * The rows kernels are those of dot_vnni.h with the EVEX-encoded vpdpbusd
 * on 256-bit registers (AVX-512VL): measured on Zen 4, 512-bit versions
 * that gather four weight blocks with overlapping 64-byte loads and
 * vpermt2w were faster from L1
 * but 20-40% slower when the weights stream from memory, as decode reads
 * them; for prompt tiles, a 512-bit version (one 64-byte load for each of a
 * group's activations, bias and scales) measured 10-20% slower than this
 * one, and so did one that puts the activations on the unsigned side with
 * a weight-side correction (no per-row bias load, but a 384-byte group),
 * and one that pairs two weight rows per activation load (equal). Taking a
 * group's four scales with one 64-byte load and a vpermw instead of four
 * scalar loads (a third of the instructions) made decode 15-25% slower
 * (shardpipe generate, 5 alternating runs per model and thread count).
 * Where the CPU also has VBMI and GFNI, the 512-bit Q4_0 kernel at the end
 * of this file (level avx512vbmi) takes over: measured on a 2-core Intel
 * Xeon with AVX-512 VNNI and VBMI (TinyLlama-1.1B shape, one thread, `shardpipe
 * bench engine`), decode +5%, prompt (128 rows) 63 -> 72-74 tok/s. Not
 * measured on Zen 4 (SHARDPIPE_SIMD=avx512vnni keeps the 256-bit kernel). */
#include <immintrin.h>
#include <math.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_epi32(acc, u, s); }

#include "dot_x86.h"
#include "dot_vnni.h"

/* One weight row against na activation rows (the level's rows kernel;
 * simd.c loops over the weight rows of a tile); na is a constant in each
 * case, so the accumulators stay in registers. Inlining the row loop of
 * the tile in here made single-row decode ~20% slower on Zen 4 (same inner
 * loop; shardpipe generate A/B, 2026-11-23), cause not found. */
void sp_vec_dot_q8_0_q8g_rows_avx512(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                     float *out)
{
    q8_rows_n(n, w, a, stride, na, out);
}

void sp_vec_dot_q4_0_q8g_rows_avx512(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride, int na,
                                     float *out)
{
    q4_rows_n(n, w, a, stride, na, out);
}

/* ---- Q4_0 on 512-bit registers, for CPUs with AVX-512 VBMI ----
 *
 * One zmm register holds a whole group: int32 lanes 0-7 are the lanes of
 * the 256-bit kernel's first register (blocks k, k+1), lanes 8-15 those of
 * the second (blocks k+2, k+3), and each lane runs the same operations in
 * the same order, so the bits are those of the kernel above (and of the
 * scalar order in quant.c). What VBMI buys is the gather: a group's four
 * blocks lie 18 bytes apart, and one vpermt2b picks their quants out of two
 * 64-byte loads where the 256-bit kernel needs a load and an insert per
 * pair of blocks; a vpermw picks the four fp16 scales, already repeated
 * over their four lanes, where scales4 takes four scalar loads, shifts and
 * a permute per pair. About half the instructions per group. The loads
 * stay inside the group (72 bytes), so nothing is read past the end of a
 * row. The same gather for Q8_0 (34-byte blocks: three loads, two vpermt2b
 * and a blend) made decode 4-5% slower than the 256-bit kernel (Intel Xeon,
 * TinyLlama-1.1B shape, 1 and 2 threads, bench engine, 2 x 3 runs) and the
 * prompt 3% faster; the level keeps the 256-bit Q8_0 kernel.
 * The loop is bound by its loads and vector ports even with the weights in
 * L1 (11-13 cycles a group on that Xeon), so two savings count: the high
 * nibbles in one GFNI instruction instead of a shift and a mask, and one
 * load of the group's first 64 bytes instead of two. Paired runs of
 * `shardpipe generate` (4 x 96 tokens, one thread): decode 22.6 -> 23.5
 * tok/s, two threads 42.5 -> 43.6, a 121-token prompt 65 -> 69 tok/s. */

#define VBMI __attribute__((target("avx512vbmi,gfni")))

/* The permutation tables of the group gather (dot_x86.h). */
#define Q4B(k) 18 * k + 2, 18 * k + 3, 18 * k + 4, 18 * k + 5, 18 * k + 6, 18 * k + 7, 18 * k + 8, 18 * k + 9, \
               18 * k + 10, 18 * k + 11, 18 * k + 12, 18 * k + 13, 18 * k + 14, 18 * k + 15, 18 * k + 16, 18 * k + 17
#define SEQ16(o) o, o + 1, o + 2, o + 3, o + 4, o + 5, o + 6, o + 7, o + 8, o + 9, o + 10, o + 11, o + 12, o + 13, \
                 o + 14, o + 15
const _Alignas(64) uint8_t sp_group18_qidx[64] = {Q4B(0), Q4B(1), Q4B(2), SEQ16(64 + 48)};
const _Alignas(64) uint16_t sp_group18_didx[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};
#undef Q4B
#undef SEQ16

/* The constants of the Q4_0 group below. */
typedef struct q4_consts {
    __m512i m4, qidx, didx, shr4;
} q4_consts;

static inline __attribute__((always_inline)) VBMI q4_consts q4_consts_load(void)
{
    q4_consts c;
    c.m4 = _mm512_set1_epi8(0x0f);
    c.qidx = _mm512_load_si512(sp_group18_qidx);
    c.didx = _mm512_load_si512(sp_group18_didx);
    /* x >> 4 in every byte as one GF(2) affine map (vgf2p8affineqb: Ice
     * Lake and later, Zen 4; Cannon Lake has VBMI without it, hence the
     * level's GFNI check), where a shift and a mask take two: bit i
     * of the result is the parity of x AND matrix byte 7 - i, so bytes 7..4
     * select bits 4..7 and bytes 3..0 are zero */
    c.shr4 = _mm512_set1_epi64(0x1020408000000000LL);
    return c;
}

/* int32 lanes of one group of four blocks against row gi: bias + lo . low
 * nibbles + hi . high nibbles, in the lane order of dot_vnni.h */
static inline __attribute__((always_inline)) VBMI __m512i q4_lanes(const q4_consts *c, __m512i q,
                                                                 const sp_q8_group *gi)
{
    __m512i lo = _mm512_and_si512(q, c->m4), hi = _mm512_gf2p8affine_epi64_epi8(q, c->shr4, 0);
    __m512i s = _mm512_loadu_si512(gi->bias);
    s = _mm512_dpbusd_epi32(s, lo, _mm512_loadu_si512(gi->lo));
    return _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(gi->hi));
}

/* Groups g0, g0 + 1, ... of a row from w (file layout) for nb blocks: the
 * whole groups into acc, then the blocks of a partial last one, and the
 * row sums into out. */
static inline __attribute__((always_inline)) VBMI void q4_groups_vbmi(const q4_consts *c, int64_t nb,
                                                                       const sp_block_q4_0 *w,
                                                                       const sp_q8_group *a, int64_t stride,
                                                                       int64_t g0, const int na, __m512 *acc,
                                                                       float *out)
{
    const int64_t ahead = sp_prefetch_ahead;
    int64_t b = 0, g = g0;
    for (; b + 4 <= nb; b += 4, g++) {
        sp_prefetch_group(w + b, 4 * sizeof(sp_block_q4_0), ahead);
        const char *p = (const char *)(w + b);
        __m512i A = _mm512_loadu_si512(p), B = _mm512_loadu_si512(p + 8);
        /* keep A in its register: GCC otherwise folds a second load of
         * it into the vpermw, and the loads are what this loop waits on */
        __asm__("" : "+v"(A));
        __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(c->didx, A)));
        __m512i q = _mm512_permutex2var_epi8(A, c->qidx, B);
        #pragma GCC unroll 4 /* SP_DOT_ROWS: the na accumulators stay in registers */
        for (int i = 0; i < na; i++) {
            const sp_q8_group *gi = a + i * stride + g;
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_lanes(c, q, gi)),
                                     _mm512_mul_ps(dw, _mm512_loadu_ps(gi->d)), acc[i]);
        }
    }
    for (int i = 0; i < na; i++) {
        __m128 tail = _mm_setzero_ps();
        for (int64_t t = b, k = 0; t < nb; t++, k++) tail = q4_one(tail, w + t, a + i * stride + g, (int)k);
        out[i] = hsum_lanes(_mm512_castps512_ps256(acc[i]), _mm512_extractf32x8_ps(acc[i], 1), tail);
    }
}

static inline __attribute__((always_inline)) VBMI void q4_rows_vbmi(int64_t n, const sp_block_q4_0 *w,
                                                                     const sp_q8_group *a, int64_t stride,
                                                                     const int na, float *out)
{
    const q4_consts c = q4_consts_load();
    __m512 acc[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc[i] = _mm512_setzero_ps();
    q4_groups_vbmi(&c, n / SP_QK, w, a, stride, 0, na, acc, out);
}

/* ---- Q4_0 regrouped in panels of 16 blocks (sp_block_q4_0x16) ----
 *
 * A panel's 16 scales come in one 32-byte load and one conversion, a
 * group's quants in one 64-byte load, so the weight side of a group is a
 * load and the nibble split, against the two loads, the two gathers and
 * the conversion of the file layout. With one activation row the scale
 * products d_w * d_a are also taken for the whole panel at once: the 16
 * activation scales are picked from the four groups' d fields by two
 * vpermt2ps and a vshuff32x4, and each group then takes its four products
 * with one vpermps, where the file layout multiplies per group. With
 * several rows a group expands the weight scales once (vpermps) and each
 * row multiplies them by its own scales, as above. Each lane sees the same
 * products and sums in the same order as in q4_rows_vbmi, so the bits are
 * those of the file layout. Measured on Zen 4 (TinyLlama-1.1B shape, one
 * thread): shardpipe generate, 8 alternating runs of 96 tokens, decode
 * 36.1 -> 38.9 tok/s (medians); bench engine, 3 alternating runs each of
 * SHARDPIPE_REPACK=0 and the default, 35.8 -> 37.6 tok/s, 74% -> 78% of
 * the read bandwidth. Precomputing the activation scales once per row
 * instead of picking them per panel measured the same in decode (39.3).
 * In a harness on the same machine, weight bytes per second from L2: 31
 * (file layout) -> 34 GB/s (38 with the precomputed activation scales);
 * with the scale products per group as in the file layout, 31 again: that
 * multiply, not the gathers, was what the layout had to remove. */
static const _Alignas(64) int32_t x16_pick[16] = {0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0};
static const _Alignas(64) int32_t x16_spread[4][16] = {
    {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
    {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
    {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
    {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15},
};

static inline __attribute__((always_inline)) VBMI void q4x16_rows_vbmi(int64_t n, const void *w,
                                                                        const sp_q8_group *a, int64_t stride,
                                                                        const int na, float *out)
{
    const q4_consts c = q4_consts_load();
    const int64_t nb = n / SP_QK, nx = nb / 16, ahead = sp_prefetch_ahead;
    const sp_block_q4_0x16 *x = w;
    const __m512i pick = _mm512_load_si512(x16_pick);
    __m512i spread[4];
    for (int j = 0; j < 4; j++) spread[j] = _mm512_load_si512(x16_spread[j]);
    __m512 acc[SP_DOT_ROWS];
    for (int i = 0; i < na; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < nx; p++) {
        sp_prefetch_group(x + p, sizeof *x, ahead);
        __m512 dw16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x[p].d));
        if (na == 1) { /* the 16 products d_w * d_a for the panel */
            const sp_q8_group *g = a + 4 * p;
            __m512 d01 = _mm512_permutex2var_ps(_mm512_loadu_ps(g[0].d), pick, _mm512_loadu_ps(g[1].d));
            __m512 d23 = _mm512_permutex2var_ps(_mm512_loadu_ps(g[2].d), pick, _mm512_loadu_ps(g[3].d));
            dw16 = _mm512_mul_ps(dw16, _mm512_shuffle_f32x4(d01, d23, 0x44));
        }
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i q = _mm512_loadu_si512(x[p].qs[4 * j]);
            __m512 d = _mm512_permutexvar_ps(spread[j], dw16);
            #pragma GCC unroll 4 /* SP_DOT_ROWS */
            for (int i = 0; i < na; i++) {
                const sp_q8_group *gi = a + i * stride + 4 * p + j;
                __m512 di = na == 1 ? d : _mm512_mul_ps(d, _mm512_loadu_ps(gi->d));
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_lanes(&c, q, gi)), di, acc[i]);
            }
        }
    }
    /* the last nb % 16 blocks are in the file layout */
    q4_groups_vbmi(&c, nb - 16 * nx, (const sp_block_q4_0 *)(x + nx), a, stride, 4 * nx, na, acc, out);
}

/* The rows kernel of the avx512vbmi level for Q4_0. */
VBMI void sp_vec_dot_q4_0_q8g_rows_avx512vbmi(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a,
                                              int64_t stride, int na, float *out)
{
    switch (na) {
    case 1: q4_rows_vbmi(n, w, a, stride, 1, out); break;
    case 2: q4_rows_vbmi(n, w, a, stride, 2, out); break;
    case 3: q4_rows_vbmi(n, w, a, stride, 3, out); break;
    default: q4_rows_vbmi(n, w, a, stride, 4, out); break;
    }
}

/* The tile kernel of the avx512vbmi level for sp_block_q4_0x16 rows: the
 * weight row loop is in here, with the constants loaded once per tile.
 * Measured on Zen 4 against one call of the rows kernel per weight row
 * (as the file layout's tiles do, simd.c): decode 40.2 -> 41.3 tok/s with
 * one thread, 49.4 -> 50.7 with two (medians of 8 and 6 alternating runs
 * of shardpipe generate, TinyLlama-1.1B shape). Taking two weight rows
 * per pass against one activation row, sharing its loads, was 9% faster
 * from L2 in a harness but not in decode (38.4 against 39.1 tok/s, 8 runs
 * each); it is not kept. */
static inline __attribute__((always_inline)) VBMI void q4x16_tile_vbmi(int64_t n, const void *w, size_t row_bytes,
                                                                        long nw, const sp_q8_group *a,
                                                                        int64_t stride, const int na, float *y,
                                                                        int64_t y_stride)
{
    for (long r = 0; r < nw; r++) {
        float out[SP_DOT_ROWS];
        q4x16_rows_vbmi(n, (const char *)w + r * row_bytes, a, stride, na, out);
        for (int i = 0; i < na; i++) y[i * y_stride + r] = out[i];
    }
}

VBMI void sp_vec_dot_q4_0x16_q8g_tile_avx512vbmi(int64_t n, const void *w, size_t row_bytes, long nw,
                                                 const sp_q8_group *a, int64_t stride, int na, float *y,
                                                 int64_t y_stride)
{
    switch (na) {
    case 1: q4x16_tile_vbmi(n, w, row_bytes, nw, a, stride, 1, y, y_stride); break;
    case 2: q4x16_tile_vbmi(n, w, row_bytes, nw, a, stride, 2, y, y_stride); break;
    case 3: q4x16_tile_vbmi(n, w, row_bytes, nw, a, stride, 3, y, y_stride); break;
    default: q4x16_tile_vbmi(n, w, row_bytes, nw, a, stride, 4, y, y_stride); break;
    }
}

/* ---- e^x and SwiGLU: the steps of sp_expf (dot.h) in eight double lanes ---- */

static inline __m256 exp8(__m256 xf)
{
    const __m512d magic = _mm512_set1_pd(SP_EXP_MAGIC);
    __m512d x = _mm512_cvtps_pd(xf);
    x = _mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(SP_EXP_MIN)), _mm512_set1_pd(SP_EXP_MAX));
    __m512d z = _mm512_fmadd_pd(x, _mm512_set1_pd(SP_EXP_LOG2E), magic);
    __m512d n = _mm512_sub_pd(z, magic);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(SP_EXP_LN2_HI), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(SP_EXP_LN2_LO), r);
    __m512d p = _mm512_set1_pd(SP_EXP_C11);
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C10));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C9));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C8));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C7));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C6));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C5));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C4));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C3));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(SP_EXP_C2));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    __m512i e = _mm512_sub_epi64(_mm512_castpd_si512(z), _mm512_castpd_si512(magic));
    __m512d scale = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(e, _mm512_set1_epi64(1023)), 52));
    __m256 y = _mm512_cvtpd_ps(_mm512_mul_pd(p, scale));
    return _mm256_blendv_ps(y, xf, _mm256_cmp_ps(xf, xf, _CMP_UNORD_Q));
}

/* The last n % 8 values go through the same lanes, masked (a scalar tail
 * would call libm's fma per step on x86-64). */
void sp_exp_f32_avx512(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
        _mm256_mask_storeu_ps(y + i, m, exp8(_mm256_maskz_loadu_ps(m, x + i)));
    }
}

static inline __m256 swiglu8(__m256 g, __m256 u)
{
    __m256 e = exp8(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void sp_swiglu_f32_avx512(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(g + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
        _mm256_mask_storeu_ps(g + i, m, swiglu8(_mm256_maskz_loadu_ps(m, g + i), _mm256_maskz_loadu_ps(m, u + i)));
    }
}

/* sp_softmax_f32 (quant.h): partial sum j of the eight is double lane j of
 * acc; the last n % 8 elements go through masked lanes (the others add 0). */
void sp_softmax_f32_avx512(float *s, int64_t n)
{
    int64_t i;
    const float m = max_row_ps(s, n);
    const __m256 mm = _mm256_set1_ps(m);
    const __mmask8 tail = (__mmask8)((1u << (n % 8)) - 1);
    __m512d acc = _mm512_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), mm));
        _mm256_storeu_ps(s + i, e);
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(e));
    }
    if (tail) {
        __m256 e = _mm256_maskz_mov_ps(tail, exp8(_mm256_sub_ps(_mm256_maskz_loadu_ps(tail, s + i), mm)));
        _mm256_mask_storeu_ps(s + i, tail, e);
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(e));
    }
    double a[8];
    _mm512_storeu_pd(a, acc);
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sp_softmax_sum8(a)));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), inv));
    if (tail) _mm256_mask_storeu_ps(s + i, tail, _mm256_mul_ps(_mm256_maskz_loadu_ps(tail, s + i), inv));
}
