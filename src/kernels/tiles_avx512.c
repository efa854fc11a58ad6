/* tiles_avx512.c - the GEMM tiles for Q8_0 and Q4_0 weights on AVX-512
 * VNNI (sp_q8g_tiles, quant.h; prompts, and decode micro-batches from 3-4
 * rows on, matmul.c): a chunk of weight rows against every activation row
 * of a micro-batch, with the accumulators of TILE_R weight rows x TILE_C
 * activation rows held in registers, the weights read in place and the
 * next chunk's rows prefetched meanwhile.
 *
 * Why: the rows kernels (dot_vnni.h, dot_avx512.c) hold one weight row in
 * registers and load each activation group (quants, bias, scales: four
 * 64-byte loads) once per weight row: about 3 cycles per weight row x
 * activation row x group of 128 elements on Zen 5, against 2 for the
 * arithmetic the summation order fixes (two vpdpbusd, the scale product
 * and the fma share Zen 5's two 512-bit multiply pipes; the conversion runs
 * elsewhere). Here each activation group loaded into registers serves
 * TILE_R weight rows, and each weight group loaded serves TILE_C
 * activation rows.
 *
 * The weights are read as the file (or the loader) stores them: per weight
 * row and group of four blocks, the 64 quant bytes in the packed
 * activations' lo order and the 64 of their hi order (Q4_0: one load and a
 * nibble split when regrouped, sp_block_q4_0x16; four 16-byte loads from
 * the file layout), and the four scales converted and spread over their
 * lanes - integer and shuffle work, not the multiply pipes, done once per
 * TILE_C activation rows. Until 2026-12-07 the tiles unpacked each chunk
 * into a per-thread panel first: 192-256 bytes stored and reloaded per
 * 72-136 bytes of weights, which with the 16-row chunks of a pipeline's
 * prompt was a third of the time (a 128-token TinyLlama Q4_0 prompt took
 * 1.2 s in 16-row chunks against 0.9 s in one, one thread; 0.74 s both
 * now; Q8_0 1.04 -> 0.86 s and 0.87 -> 0.84 s).
 *
 * Q8_0 takes the weights offset to unsigned, w + 128, against the signed
 * activations: sum (w + 128) a - 128 sum a = sum w a, the same int32 per
 * lane as the rows kernel's sum (a + 128) w - 128 sum w, and -128 sum a is
 * 16 times the Q4_0 offset the packed activations carry (bias) - one
 * shift per activation group instead of two vpdpbusd per weight group.
 * Each weight row x activation row pair then runs the operations of the
 * 512-bit rows kernels lane for lane (the same int32 sums, exact in any
 * order; the same f32 conversion, scale product and fma into the same lane
 * of the accumulator; the same reduction and tail), so every output has
 * the bits of the single-row dot (quant.c, tests/test_tiles.c). */
#include <immintrin.h>
#include <string.h>

static inline __m256i vnni256(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m128i vnni128(__m128i acc, __m128i u, __m128i s) { return _mm_dpbusd_epi32(acc, u, s); }

#include "dot_vnni.h"

#ifndef TILE_R /* (-D for experiments) */
#define TILE_R 4 /* weight rows per register tile, 1..4 */
#define TILE_C 4 /* activation rows per register tile, 1..4 */
#define TILE_PASS 16 /* groups per pass over a block of activation rows (one block) */
#endif
#ifndef TILE_PASS_MANY
#define TILE_PASS_MANY 64 /* ... (more than one block) */
#endif
_Static_assert(TILE_R <= 4 && TILE_C <= 4, "hsum_tile reduces at most 4 x 4 accumulators");

/* How a weight row's groups are stored. */
enum { W_Q8_0, W_Q4_0, W_Q4_0X16 };

/* 16 bytes from each of four places, in one register. */
static inline __m512i load4x16(const void *p0, const void *p1, const void *p2, const void *p3)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p0));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p1), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p2), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p3), 3);
}

/* A group's four scales over their lanes (lane 4k + j: block k), exactly. */
static inline __m512 spread_scales(__m128 d4)
{
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d4));
}

/* The next chunk's weight lines, prefetched a few at each group step of
 * the register tiles at an even rate, gain lines per step against cost
 * per line (sp_q8g_tiles_avx512 says why). */
typedef struct pf_stream {
    const char *next, *end;
    long credit, gain, cost;
} pf_stream;

/* The register tile: weight rows p, p + pstride, ... (R of them, stored as
 * kind says; group g at block 4 (g - gbase) of the file layouts) against
 * activation rows a, a + stride, ... (C of them) over groups [g0, g1);
 * acc[r * C + c] holds the 16 lanes of each pair so far. */
static inline __attribute__((always_inline)) void tile_rc(const int kind, const uint8_t *p, int64_t pstride,
                                                          int64_t gbase, const int R, int64_t g0, int64_t g1,
                                                          const sp_q8_group *a, int64_t stride, const int C,
                                                          __m512 *acc, pf_stream *pf)
{
    const __m512i x80 = _mm512_set1_epi8((char)0x80), m4 = _mm512_set1_epi8(0x0f);
    const char *next = pf->next;
    long credit = pf->credit;
    for (int64_t g = g0; g < g1; g++) {
        for (credit += pf->gain; credit >= pf->cost; credit -= pf->cost, next += 64)
            if (next < pf->end) _mm_prefetch(next, _MM_HINT_T0);
        __m512i wl[TILE_R], wh[TILE_R];
        __m512 wd[TILE_R];
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *row = p + r * pstride;
            if (kind == W_Q4_0X16) {
                const sp_block_q4_0x16 *x = (const sp_block_q4_0x16 *)row + g / 4;
                const int j = (int)(g % 4);
                __m512i q = _mm512_loadu_si512(x->qs[4 * j]);
                wl[r] = _mm512_and_si512(q, m4);
                wh[r] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                wd[r] = spread_scales(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(x->d + 4 * j))));
            } else if (kind == W_Q4_0) {
                const sp_block_q4_0 *b = (const sp_block_q4_0 *)row + 4 * (g - gbase);
                __m512i q = load4x16(b[0].qs, b[1].qs, b[2].qs, b[3].qs);
                wl[r] = _mm512_and_si512(q, m4);
                wh[r] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                wd[r] = spread_scales(scales4(b[0].d, b[1].d, b[2].d, b[3].d));
            } else {
                const sp_block_q8_0 *b = (const sp_block_q8_0 *)row + 4 * (g - gbase);
                wl[r] = _mm512_xor_si512(load4x16(b[0].qs, b[1].qs, b[2].qs, b[3].qs), x80);
                wh[r] = _mm512_xor_si512(load4x16(b[0].qs + 16, b[1].qs + 16, b[2].qs + 16, b[3].qs + 16), x80);
                wd[r] = spread_scales(scales4(b[0].d, b[1].d, b[2].d, b[3].d));
            }
        }
        #pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const sp_q8_group *gi = a + c * stride + g;
            __m512i al = _mm512_loadu_si512(gi->lo), ah = _mm512_loadu_si512(gi->hi);
            __m512i bias = _mm512_loadu_si512(gi->bias);
            if (kind == W_Q8_0) bias = _mm512_slli_epi32(bias, 4); /* -8 sum a -> -128 sum a */
            __m512 ad = _mm512_loadu_ps(gi->d);
            /* in registers for the R weight rows: GCC would otherwise fold
             * a load of each into every row's instructions */
            __asm__("" : "+v"(al), "+v"(ah), "+v"(bias), "+v"(ad));
            #pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i s = _mm512_dpbusd_epi32(bias, wl[r], al);
                s = _mm512_dpbusd_epi32(s, wh[r], ah);
                acc[r * C + c] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wd[r], ad), acc[r * C + c]);
            }
        }
    }
    pf->next = next;
    pf->credit = credit;
}

/* The sums of a register tile's accumulators, up to 16 at once: v[4r + c]
 * is weight row r x activation row c, and out[c] comes back holding the
 * sums of rows 0-3 against activation row c. Each sum takes hsum_lanes'
 * additions (dot_x86.h) in its order, with a zero tail: lanes 0-7 + 8-15,
 * then the two halves of that plus the tail, then lanes 0 + 2 and 1 + 3,
 * then those two. Done here on four outputs per instruction, the shuffles
 * moving each output's lanes into place, it takes about 3.5 instructions
 * per output against hsum_lanes' 10 - which with TinyLlama's 16-group rows
 * was 5-9% of a tile (2.68 -> 2.54 cycles per pair and group, 4x4 tiles
 * from L1, Zen 5). */
static inline __attribute__((always_inline)) void hsum_tile(const __m512 v[16], __m128 out[4])
{
    __m512 b[8], t[4];
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) /* [s.lo4, s.hi4] of v[2j], then of v[2j + 1]; s = lanes 0-7 + 8-15 */
        b[j] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * j], v[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * j], v[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) /* t = s.lo4 + s.hi4 + tail of v[4k .. 4k + 3] */
        t[k] = _mm512_add_ps(_mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                                           _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1))),
                             _mm512_setzero_ps());
    /* u = (t0 + t2, t1 + t3) of each, then u0 + u1 */
    __m512 u01 = _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 u23 = _mm512_add_ps(_mm512_shuffle_ps(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_ps(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 f = _mm512_add_ps(_mm512_shuffle_ps(u01, u23, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(u01, u23, _MM_SHUFFLE(3, 1, 3, 1)));
    out[0] = _mm512_castps512_ps128(f);
    out[1] = _mm512_extractf32x4_ps(f, 1);
    out[2] = _mm512_extractf32x4_ps(f, 2);
    out[3] = _mm512_extractf32x4_ps(f, 3);
}

typedef struct tiles_args {
    int kind;                /* W_* */
    int64_t nb, ng;          /* blocks and whole groups per row */
    int64_t gx;              /* groups regrouped (W_Q4_0X16); the file layout's blocks follow */
    const uint8_t *w;        /* the rows as given */
    size_t row_bytes;
    const sp_q8_group *a;
    int64_t stride;
    float *y;
    int64_t y_stride;
    int64_t g0, g1;          /* the groups of this pass */
    __m512 *part;            /* accumulators between passes: TILE_C per weight row */
    pf_stream *pf;           /* the next chunk's prefetch */
} tiles_args;

/* Weight row r's blocks in the file layout: all of them, or those after
 * its regrouped ones. */
static inline const uint8_t *file_blocks(const tiles_args *t, long r)
{
    const uint8_t *row = t->w + r * t->row_bytes;
    return t->kind == W_Q4_0X16 ? row + t->gx / 4 * sizeof(sp_block_q4_0x16) : row;
}

/* One register tile over the pass's groups: the accumulators start at
 * zero (first pass) or where the last pass left them, and go back to
 * t->part, or after the last pass into y with the tail and the reduction. */
static inline __attribute__((always_inline)) void tile_at(const tiles_args *t, long r0, int c0, const int kind,
                                                          const int R, const int C)
{
    __m512 acc[TILE_R * TILE_C];
    __m512 *part = t->part + r0 * TILE_C;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r * C + c] = t->g0 ? part[r * TILE_C + c] : _mm512_setzero_ps();
    const sp_q8_group *a = t->a + c0 * t->stride;
    if (kind == W_Q8_0) {
        tile_rc(W_Q8_0, t->w + r0 * t->row_bytes, (int64_t)t->row_bytes, 0, R, t->g0, t->g1, a, t->stride, C, acc,
                t->pf);
    } else {
        /* regrouped groups, then (rows of blocks not a multiple of 16) the
         * file layout's */
        int64_t gx = kind == W_Q4_0X16 ? t->gx : 0;
        int64_t mid = t->g1 < gx ? t->g1 : t->g0 > gx ? t->g0 : gx;
        if (mid > t->g0)
            tile_rc(W_Q4_0X16, t->w + r0 * t->row_bytes, (int64_t)t->row_bytes, 0, R, t->g0, mid, a, t->stride, C,
                    acc, t->pf);
        if (t->g1 > mid)
            tile_rc(W_Q4_0, file_blocks(t, r0), (int64_t)t->row_bytes, gx, R, mid, t->g1, a, t->stride, C, acc, t->pf);
    }
    if (t->g1 < t->ng) {
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) part[r * TILE_C + c] = acc[r * C + c];
        return;
    }
    const int64_t tail = t->nb - 4 * t->ng;
    if (tail == 0 && R >= 2 && C >= 2) {
        __m512 v[16];
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            #pragma GCC unroll 4
            for (int c = 0; c < 4; c++) v[4 * r + c] = r < R && c < C ? acc[r * C + c] : _mm512_setzero_ps();
        __m128 out[4];
        hsum_tile(v, out);
        #pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            float *yc = t->y + (c0 + c) * t->y_stride + r0;
            if (R == 4) _mm_storeu_ps(yc, out[c]);
            else _mm_mask_storeu_ps(yc, (__mmask8)((1 << R) - 1), out[c]);
        }
        return;
    }
    /* a tail of blocks, or a thin tile: one output at a time */
    for (int r = 0; r < R; r++) {
        const uint8_t *tw = file_blocks(t, r0 + r);
        for (int c = 0; c < C; c++) {
            const sp_q8_group *g = t->a + (c0 + c) * t->stride + t->ng;
            __m128 tl = _mm_setzero_ps();
            for (int k = 0; k < tail; k++)
                tl = kind == W_Q8_0 ? q8_one(tl, (const sp_block_q8_0 *)tw + 4 * t->ng + k, g, k)
                                    : q4_one(tl, (const sp_block_q4_0 *)tw + 4 * (t->ng - t->gx) + k, g, k);
            __m512 v = acc[r * C + c];
            t->y[(c0 + c) * t->y_stride + r0 + r] =
                hsum_lanes(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1), tl);
        }
    }
}

/* The register tiles by size, each a compile-time shape. */
#define TILE_C_CASES(kind, R)                                                \
    switch (C) {                                                             \
    case 1: tile_at(t, r0, c0, kind, R, 1); break;                           \
    case 2: if (TILE_C >= 2) tile_at(t, r0, c0, kind, R, 2 <= TILE_C ? 2 : 1); break; \
    case 3: if (TILE_C >= 3) tile_at(t, r0, c0, kind, R, 3 <= TILE_C ? 3 : 1); break; \
    default: tile_at(t, r0, c0, kind, R, TILE_C); break;                     \
    }
#define TILE_CASES(kind)                                                     \
    switch (R) {                                                             \
    case 1: TILE_C_CASES(kind, 1) break;                                     \
    case 2: if (TILE_R >= 2) { TILE_C_CASES(kind, 2 <= TILE_R ? 2 : 1) } break; \
    case 3: if (TILE_R >= 3) { TILE_C_CASES(kind, 3 <= TILE_R ? 3 : 1) } break; \
    default: TILE_C_CASES(kind, TILE_R) break;                               \
    }

static void tile_q8(const tiles_args *t, long r0, int R, int c0, int C)
{
    TILE_CASES(W_Q8_0)
}

static void tile_q4(const tiles_args *t, long r0, int R, int c0, int C)
{
    TILE_CASES(W_Q4_0)
}

static void tile_q4x16(const tiles_args *t, long r0, int R, int c0, int C)
{
    TILE_CASES(W_Q4_0X16)
}

void sp_q8g_tiles_avx512(int q8, int x16, int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                         int64_t stride, int na, float *y, int64_t y_stride)
{
    tiles_args t = {.kind = q8 ? W_Q8_0 : x16 ? W_Q4_0X16 : W_Q4_0, .nb = n / SP_QK, .w = w,
                    .row_bytes = row_bytes, .a = a, .stride = stride, .y = y, .y_stride = y_stride};
    t.ng = t.nb / 4;
    t.gx = t.kind == W_Q4_0X16 ? t.nb / 16 * 4 : 0;
    /* Activation rows outer, a block of TILE_C of them at a time, and for
     * each block the groups in passes, weight rows inner. Rows of more
     * groups than one pass keep their accumulators in part between passes:
     * the same operations per lane in the same order. With one block
     * (decode's 1-4 rows) a pass is TILE_PASS groups: 16 KB of
     * activations, which stay in L1 while the chunk's weight rows stream
     * past, each used once. With more blocks the chunk's weights are read
     * once per block and the passes are longer: each pass restarts every
     * tile's loop and round trip through part, and for Q4_0 rows of 5632
     * columns (44 groups: passes of 16, 16 and 12, or one) one pass was
     * faster though its weights and activations then spill to L2
     * (2048x5632 from DRAM, one thread, ms, best of 2-3 in 3 alternated
     * runs: 8 rows 0.49-0.51 -> 0.46-0.48, 16 rows 1.01-1.08 -> 0.94-0.98,
     * 128 rows 8.0-8.4 -> 7.2-7.4; 4 rows 0.28-0.29 against 0.29-0.30,
     * hence one block keeps 16; Q8_0 the same either way). */
    const int64_t pass = na > TILE_C ? TILE_PASS_MANY : TILE_PASS;
    _Alignas(64) __m512 part[SP_Q8G_TILES_MAX_ROWS * TILE_C];
    t.part = part;
    /* The next chunk's weight rows (the pool hands a thread adjacent
     * chunks: matmul.c's claims) are prefetched while this one computes,
     * so DRAM streams them during the arithmetic instead of the next
     * chunk's first tiles waiting for them. The lines go a few at each
     * group step of the register tiles, evenly over the chunk's steps.
     * Issued as a burst at each tile's start (36 lines for 16 TinyLlama
     * rows at 8 activation rows) they waited for free miss buffers: 8-row
     * chunks from DRAM ran 133-160 GMAC/s against 162-171 spread (one
     * thread, medians of 11-15 alternated runs; 32 and 96 rows the same).
     * Until 2026-12-08 they were all out by three quarters of the chunk;
     * spread over all of it (5632x2048 from DRAM, one thread, ms per
     * matrix, the best of 3 in each of 3 alternated runs) Q4_0 took
     * 3 rows 0.23 -> 0.20 (as fast as one row: the read bandwidth),
     * 4 rows 0.27 -> 0.23-0.26, 12 rows 0.70-0.77 -> 0.68-0.71, and Q8_0
     * 4 rows 0.41-0.47 -> 0.35-0.40; 16-64 rows the same. Without the
     * prefetch 4 rows took 0.88 ms, so the hardware's own prefetchers do
     * not stream these chunks here.
     * The last chunk of a claim prefetches rows that someone else
     * computes, or past the matrix: harmless, a prefetch never faults. */
    const char *next = (const char *)w + (size_t)nw * row_bytes;
    const long lines = (long)(((size_t)nw * row_bytes + 63) / 64);
    const long steps = ((na + TILE_C - 1) / TILE_C) * ((nw + TILE_R - 1) / TILE_R) * t.ng;
    pf_stream pf = {.next = next, .end = next + (size_t)nw * row_bytes, .gain = lines,
                    .cost = steps > 0 ? steps : 1};
    t.pf = &pf;
    /* the activation rows in register tiles of nearly equal size: 6 rows
     * as 3 + 3, not 4 + 2 (each tile unpacks the chunk's weight groups
     * again, and a thin one spends that on fewer rows); measured with 5
     * and 6 rows, 0.37 -> 0.32 and 0.41 -> 0.35 ms per 5632x2048 Q4_0
     * matrix on Zen 5 */
    for (int c0 = 0, C; c0 < na; c0 += C) {
        const int left = na - c0, tiles = (left + TILE_C - 1) / TILE_C;
        C = (left + tiles - 1) / tiles;
        t.g0 = 0;
        do {
            t.g1 = t.ng - t.g0 <= pass + pass / 2 ? t.ng : t.g0 + pass;
            for (long r0 = 0; r0 < nw; r0 += TILE_R) {
                int R = nw - r0 < TILE_R ? (int)(nw - r0) : TILE_R;
                if (t.kind == W_Q8_0) tile_q8(&t, r0, R, c0, C);
                else if (t.kind == W_Q4_0X16) tile_q4x16(&t, r0, R, c0, C);
                else tile_q4(&t, r0, R, c0, C);
            }
            t.g0 = t.g1;
        } while (t.g0 < t.ng);
    }
}
