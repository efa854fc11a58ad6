/* tiles_avx512.c - the prompt GEMM tiles for Q8_0 and Q4_0 weights on
 * AVX-512 VNNI (sp_q8g_tiles, quant.h): a chunk of weight rows against
 * every activation row of a micro-batch, with the accumulators of TILE_R
 * weight rows x TILE_C activation rows held in registers; Q8_0 and
 * file-layout Q4_0 unpacked once per chunk into a panel, regrouped Q4_0
 * read in place, and the next chunk's rows prefetched meanwhile.
 *
 * Why: the rows kernels (dot_vnni.h, dot_avx512.c) hold one weight row in
 * registers and load each activation group (quants, bias, scales: four
 * 64-byte loads) once per weight row, and unpack the weights (nibble
 * split, scale gather) for every four activation rows: about 3 cycles per
 * weight row x activation row x group of 128 elements on Zen 5, against 2
 * for the arithmetic the summation order fixes (two vpdpbusd, the scale
 * product and the fma share Zen 5's two 512-bit multiply pipes; the
 * conversion runs elsewhere). Here each activation group loaded into
 * registers serves TILE_R weight rows, and each weight group is unpacked
 * once into a per-thread panel (in L2) that every activation row of the
 * call reuses.
 *
 * The panel holds, per weight row and group of four blocks:
 *   Q4_0: the low nibbles (64 bytes, in the packed activations' lo order),
 *         the high nibbles (64), the four scales in f32 over their lanes (64);
 *   Q8_0: quants 0-15 of the four blocks (64), quants 16-31 (64), the
 *         correction -128 x sum w per int32 lane (64), the scales (64).
 * Regrouped Q4_0 (sp_block_q4_0x16, the layout the loader gives Q4_0 at
 * this level) already holds a group's 64 quant bytes side by side and its
 * four fp16 scales together, so the tiles split the nibbles and convert the
 * scales in registers instead (integer and shuffle ports, not the multiply
 * pipes), once per weight row and group per TILE_C activation rows. The
 * panel cost a 192-byte store and reload per 72 bytes of weights: with 16
 * activation rows per chunk, as in a pipeline's prompt chunks, unpacking
 * was a third of the time, and a 128-token prompt took 1.2 s in 16-row
 * chunks against 0.9 s in one (one thread, TinyLlama Q4_0); now 0.74 s both.
 * Each weight row x activation row pair then runs the operations of the
 * 512-bit rows kernels lane for lane (same int32 sums, exact in any order;
 * the same f32 conversion, scale product and fma into the same lane of the
 * accumulator; the same reduction and tail), so every output has the bits
 * of the single-row dot (quant.c). */
#include <immintrin.h>
#include <string.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_epi32(acc, u, s); }

#include "dot_vnni.h"

#ifndef TILE_R /* (-D for experiments) */
#define TILE_R 4 /* weight rows per register tile, 1..4 */
#define TILE_C 4 /* activation rows per register tile, 1..4 */
#define TILE_PASS 16 /* groups per pass over a block of activation rows */
#endif
#define GB_Q4 192 /* panel bytes per weight row and group */
#define GB_Q8 256

/* A group's four scales over their lanes (lane 4k + j: block k), exactly. */
static inline void store_scales(uint8_t *dst, __m128 d4)
{
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    _mm512_storeu_ps(dst, _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d4)));
}

/* 16 bytes from each of four places, in one register. */
static inline __m512i load4x16(const void *p0, const void *p1, const void *p2, const void *p3)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p0));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p1), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p2), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p3), 3);
}

static inline void store_nibbles(uint8_t *dst, __m512i q)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    _mm512_storeu_si512(dst, _mm512_and_si512(q, m4));
    _mm512_storeu_si512(dst + 64, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
}

/* Q4_0 row of nb blocks, file layout or regrouped (x16): the first ng
 * groups into the panel. */
static void unpack_q4(const void *row, int x16, int64_t nb, int64_t ng, uint8_t *dst)
{
    int64_t g = 0;
    if (x16) { /* whole sp_block_q4_0x16: a group's quants are 64 bytes in a row */
        const sp_block_q4_0x16 *x = row;
        for (; g < nb / 16 * 4; g++, dst += GB_Q4) {
            const sp_block_q4_0x16 *p = x + g / 4;
            const int j = (int)(g % 4);
            store_nibbles(dst, _mm512_loadu_si512(p->qs[4 * j]));
            store_scales(dst + 128, _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(p->d + 4 * j))));
        }
        row = x + nb / 16;
    }
    const sp_block_q4_0 *w = (const sp_block_q4_0 *)row - 4 * g; /* the file layout's blocks from group g */
    for (; g < ng; g++, dst += GB_Q4) {
        const sp_block_q4_0 *b = w + 4 * g;
        store_nibbles(dst, load4x16(b[0].qs, b[1].qs, b[2].qs, b[3].qs));
        store_scales(dst + 128, scales4(b[0].d, b[1].d, b[2].d, b[3].d));
    }
}

static void unpack_q8(const sp_block_q8_0 *w, int64_t ng, uint8_t *dst)
{
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    for (int64_t g = 0; g < ng; g++, dst += GB_Q8) {
        const sp_block_q8_0 *b = w + 4 * g;
        __m512i lo = load4x16(b[0].qs, b[1].qs, b[2].qs, b[3].qs);
        __m512i hi = load4x16(b[0].qs + 16, b[1].qs + 16, b[2].qs + 16, b[3].qs + 16);
        /* -128 * sum w per lane, as q8_rows computes it */
        __m512i neg = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), x80, lo), x80, hi);
        _mm512_storeu_si512(dst, lo);
        _mm512_storeu_si512(dst + 64, hi);
        _mm512_storeu_si512(dst + 128, _mm512_sub_epi32(_mm512_setzero_si512(), neg));
        store_scales(dst + 192, scales4(b[0].d, b[1].d, b[2].d, b[3].d));
    }
}

/* The register tile: weight rows p, p + pstride, ... (R of them, panel
 * layout) against activation rows a, a + stride, ... (C of them) over
 * groups [g0, g1); acc[r * C + c] holds the 16 lanes of each pair so far. */
static inline __attribute__((always_inline)) void tile_rc(const int q8, const int raw, const uint8_t *p,
                                                          int64_t pstride, const int R, int64_t g0, int64_t g1,
                                                          const sp_q8_group *a, int64_t stride, const int C,
                                                          __m512 *acc)
{
    const __m512i x80 = _mm512_set1_epi8((char)0x80), m4 = _mm512_set1_epi8(0x0f);
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const int gb = q8 ? GB_Q8 : GB_Q4;
    for (int64_t g = g0; g < g1; g++) {
        __m512i wl[TILE_R], wh[TILE_R], wi[TILE_R];
        __m512 wd[TILE_R];
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            if (raw) { /* regrouped Q4_0 straight from the weights: the panel's values, made here */
                const sp_block_q4_0x16 *x = (const sp_block_q4_0x16 *)(p + r * pstride) + g / 4;
                const int j = (int)(g % 4);
                __m512i q = _mm512_loadu_si512(x->qs[4 * j]);
                wl[r] = _mm512_and_si512(q, m4);
                wh[r] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(x->d + 4 * j)));
                wd[r] = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d4));
                continue;
            }
            const uint8_t *q = p + r * pstride + g * gb;
            wl[r] = _mm512_loadu_si512(q);
            wh[r] = _mm512_loadu_si512(q + 64);
            if (q8) wi[r] = _mm512_loadu_si512(q + 128);
            wd[r] = _mm512_loadu_ps(q + (q8 ? 192 : 128));
        }
        #pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const sp_q8_group *gi = a + c * stride + g;
            __m512i al = _mm512_loadu_si512(gi->lo), ah = _mm512_loadu_si512(gi->hi), bias;
            __m512 ad = _mm512_loadu_ps(gi->d);
            if (q8) {
                al = _mm512_xor_si512(al, x80);
                ah = _mm512_xor_si512(ah, x80);
            } else {
                bias = _mm512_loadu_si512(gi->bias);
                /* in registers for the R weight rows: GCC would otherwise
                 * fold a load of each into every row's instructions */
                __asm__("" : "+v"(al), "+v"(ah), "+v"(bias));
            }
            __asm__("" : "+v"(ad));
            #pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i s;
                if (q8) {
                    s = _mm512_dpbusd_epi32(wi[r], al, wl[r]);
                    s = _mm512_dpbusd_epi32(s, ah, wh[r]);
                } else {
                    s = _mm512_dpbusd_epi32(bias, wl[r], al);
                    s = _mm512_dpbusd_epi32(s, wh[r], ah);
                }
                acc[r * C + c] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wd[r], ad), acc[r * C + c]);
            }
        }
    }
}

typedef struct tiles_args {
    int q8, x16;
    int raw;                 /* regrouped Q4_0 read in place, no panel */
    int64_t nb, ng;          /* blocks and whole groups per row */
    const void *w;           /* the rows as given */
    size_t row_bytes;
    const uint8_t *panel;
    int64_t pstride;         /* panel bytes per row */
    const sp_q8_group *a;
    int64_t stride;
    float *y;
    int64_t y_stride;
    int64_t g0, g1;          /* the groups of this pass */
    __m512 *part;            /* accumulators between passes: TILE_C per weight row */
} tiles_args;

/* The tail blocks (a partial last group) of weight row r, in file layout. */
static inline const void *tail_of(const tiles_args *t, long r)
{
    const char *row = (const char *)t->w + r * t->row_bytes;
    if (t->q8) return (const sp_block_q8_0 *)row + 4 * t->ng;
    int64_t whole = t->x16 ? t->nb / 16 * 16 : 0;
    return (const sp_block_q4_0 *)((const sp_block_q4_0x16 *)row + whole / 16) + (4 * t->ng - whole);
}

/* One register tile over the pass's groups: the accumulators start at
 * zero (first pass) or where the last pass left them, and go back to
 * t->part, or after the last pass into y with the tail and the reduction. */
static inline __attribute__((always_inline)) void tile_at(const tiles_args *t, long r0, int c0, const int q8,
                                                          const int raw, const int R, const int C)
{
    __m512 acc[TILE_R * TILE_C];
    __m512 *part = t->part + r0 * TILE_C;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r * C + c] = t->g0 ? part[r * TILE_C + c] : _mm512_setzero_ps();
    if (raw)
        tile_rc(0, 1, (const uint8_t *)t->w + r0 * t->row_bytes, (int64_t)t->row_bytes, R, t->g0, t->g1,
                t->a + c0 * t->stride, t->stride, C, acc);
    else
        tile_rc(q8, 0, t->panel + r0 * t->pstride, t->pstride, R, t->g0, t->g1, t->a + c0 * t->stride, t->stride, C,
                acc);
    if (t->g1 < t->ng) {
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) part[r * TILE_C + c] = acc[r * C + c];
        return;
    }
    const int64_t tail = t->nb - 4 * t->ng;
    for (int r = 0; r < R; r++) {
        const void *tw = tail_of(t, r0 + r);
        for (int c = 0; c < C; c++) {
            const sp_q8_group *g = t->a + (c0 + c) * t->stride + t->ng;
            __m128 tl = _mm_setzero_ps();
            for (int k = 0; k < tail; k++)
                tl = q8 ? q8_one(tl, (const sp_block_q8_0 *)tw + k, g, k) : q4_one(tl, (const sp_block_q4_0 *)tw + k, g, k);
            __m512 v = acc[r * C + c];
            t->y[(c0 + c) * t->y_stride + r0 + r] =
                hsum_lanes(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1), tl);
        }
    }
}

/* The register tiles by size, each a compile-time shape. */
#define TILE_C_CASES(q8, raw, R)                                             \
    switch (C) {                                                             \
    case 1: tile_at(t, r0, c0, q8, raw, R, 1); break;                        \
    case 2: if (TILE_C >= 2) tile_at(t, r0, c0, q8, raw, R, 2 <= TILE_C ? 2 : 1); break; \
    case 3: if (TILE_C >= 3) tile_at(t, r0, c0, q8, raw, R, 3 <= TILE_C ? 3 : 1); break; \
    default: tile_at(t, r0, c0, q8, raw, R, TILE_C); break;                  \
    }
#define TILE_CASES(q8, raw)                                                  \
    switch (R) {                                                             \
    case 1: TILE_C_CASES(q8, raw, 1) break;                                  \
    case 2: if (TILE_R >= 2) { TILE_C_CASES(q8, raw, 2 <= TILE_R ? 2 : 1) } break; \
    case 3: if (TILE_R >= 3) { TILE_C_CASES(q8, raw, 3 <= TILE_R ? 3 : 1) } break; \
    default: TILE_C_CASES(q8, raw, TILE_R) break;                            \
    }

static void tile_q4(const tiles_args *t, long r0, int R, int c0, int C)
{
    TILE_CASES(0, 0)
}

static void tile_q4x16(const tiles_args *t, long r0, int R, int c0, int C)
{
    TILE_CASES(0, 1)
}

static void tile_q8(const tiles_args *t, long r0, int R, int c0, int C)
{
    TILE_CASES(1, 0)
}

size_t sp_q8g_tiles_scratch_avx512(int64_t n, long nw)
{
    if (nw > SP_Q8G_TILES_MAX_ROWS) nw = SP_Q8G_TILES_MAX_ROWS;
    return (size_t)nw * (size_t)(n / SP_QK / 4) * GB_Q8;
}

void sp_q8g_tiles_avx512(int q8, int x16, int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                         int64_t stride, int na, float *y, int64_t y_stride, void *scratch)
{
    tiles_args t = {.q8 = q8, .x16 = x16, .nb = n / SP_QK, .w = w, .row_bytes = row_bytes, .panel = scratch,
                    .a = a, .stride = stride, .y = y, .y_stride = y_stride};
    t.ng = t.nb / 4;
    t.pstride = t.ng * (q8 ? GB_Q8 : GB_Q4);
    t.raw = !q8 && x16 && t.nb % 16 == 0;
    for (long r = 0; r < nw && !t.raw; r++) {
        const char *row = (const char *)w + r * row_bytes;
        uint8_t *dst = (uint8_t *)scratch + r * t.pstride;
        if (q8) unpack_q8((const sp_block_q8_0 *)row, t.ng, dst);
        else unpack_q4(row, x16, t.nb, t.ng, dst);
    }
    /* Activation rows outer, a block of TILE_C of them at a time, and for
     * each block the groups in passes of TILE_PASS (with TILE_C rows, 16 KB
     * of activations: they stay in L1 while the panel's rows stream past
     * from L2), weight rows inner. Rows of more groups than one pass keep
     * their accumulators in part between passes: the same operations per
     * lane in the same order. */
    _Alignas(64) __m512 part[SP_Q8G_TILES_MAX_ROWS * TILE_C];
    t.part = part;
    /* The next chunk's weight rows (the pool hands a thread adjacent
     * chunks: matmul.c's claims) are prefetched while this one computes,
     * a share at each register tile, so DRAM streams them during the
     * arithmetic instead of the next unpacking (or, read in place, the next
     * chunk's first tiles) waiting for them. The last chunk of a claim
     * prefetches rows that someone else computes, or past the matrix:
     * harmless, a prefetch never faults. */
    const char *pf = (const char *)w + (size_t)nw * row_bytes, *pf_end = pf + (size_t)nw * row_bytes;
    long calls = ((na + TILE_C - 1) / TILE_C) * ((nw + TILE_R - 1) / TILE_R) * ((t.ng + TILE_PASS - 1) / TILE_PASS);
    if (calls < 1) calls = 1;
    const long per = (long)(((size_t)nw * row_bytes / 64 + (size_t)calls - 1) / (size_t)calls);
    for (int c0 = 0; c0 < na; c0 += TILE_C) {
        int C = na - c0 < TILE_C ? na - c0 : TILE_C;
        t.g0 = 0;
        do {
            t.g1 = t.ng - t.g0 <= TILE_PASS + TILE_PASS / 2 ? t.ng : t.g0 + TILE_PASS;
            for (long r0 = 0; r0 < nw; r0 += TILE_R) {
                int R = nw - r0 < TILE_R ? (int)(nw - r0) : TILE_R;
                for (long k = 0; k < per && pf < pf_end; k++, pf += 64) _mm_prefetch(pf, _MM_HINT_T0);
                if (q8) tile_q8(&t, r0, R, c0, C);
                else if (t.raw) tile_q4x16(&t, r0, R, c0, C);
                else tile_q4(&t, r0, R, c0, C);
            }
            t.g0 = t.g1;
        } while (t.g0 < t.ng);
    }
}
