/* kernel_selftest.c - a plain C self-check of the vec_dot kernels, without
 * Criterion, so it also builds for other architectures with a bare cross
 * compiler (scripts/cross-aarch64.sh runs it under qemu). It is not part of
 * the CMake build (its name does not start with test_).
 *
 * For every SIMD level compiled in and supported by the CPU it compares the
 * dispatched dots with the scalar reference: exactly when all scales are
 * 1.0 (every partial sum is then an exact integer in f32, whatever the
 * summation order), and within 1e-5 of sum |block terms| with random
 * scales, and that row dequantization is bit-identical to the portable
 * loops; that the tile kernels give the single-row bits and the activation
 * quantizer the scalar level's bytes; and that every level's packed int8,
 * f32 and fp16 dots, KV-group attention, fp16 rounding, e^x, SwiGLU and softmax have
 * exactly the bits of the scalar level, which sums
 * in one fixed order on every architecture (src/kernels/quant.c), for
 * Q8_0, Q4_0, IQ4_NL and the K-quants. It prints
 * one line per level, then a digest of those outputs: tests/kernel_selftest.sh
 * checks that the x86-64 build and the aarch64 one print the same digest,
 * i.e. that an x86 board and an Arm board compute the same bits. Exits 1 on
 * any mismatch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/quant_iq4nl.h"
#include "shardpipe/util.h"

#define MAX_BLOCKS 64

static int failures;

static void check(int ok, const char *level, const char *what, int nb, double got, double want)
{
    if (ok) return;
    failures++;
    if (failures <= 20)
        fprintf(stderr, "FAIL %s %s %d blocks: got %.9g want %.9g\n", level, what, nb, got, want);
}

/* fill 0: random, 1: all max, 2: all min, 3: alternating max/min */
static void fill_q8(sp_rng *rng, sp_block_q8_0 *x, int nb, int fill, int unit_scale)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < SP_QK; j++) {
            int v = (int)(sp_rng_u64(rng) % 255) - 127;
            if (fill == 1) v = 127;
            if (fill == 2) v = -127;
            if (fill == 3) v = (j + b) % 2 ? 127 : -127;
            x[b].qs[j] = (int8_t)v;
        }
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        x[b].d = unit_scale ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

static void fill_q4(sp_rng *rng, sp_block_q4_0 *x, int nb, int fill, int unit_scale)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < SP_QK / 2; j++) {
            uint8_t v = (uint8_t)sp_rng_u64(rng);
            if (fill == 1) v = 0xff;
            if (fill == 2) v = 0x00;
            if (fill == 3) v = (j + b) % 2 ? 0x0f : 0xf0;
            x[b].qs[j] = v;
        }
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        x[b].d = unit_scale ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

static void check_level(const char *name)
{
    static sp_block_q8_0 w8[MAX_BLOCKS], a[MAX_BLOCKS];
    static sp_block_q4_0 w4[MAX_BLOCKS];
    static float fw[2048 + 5], fa[2048 + 5];
    const int counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 64};
    sp_rng rng;
    sp_rng_seed(&rng, 2024);

    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int nb = counts[c];
        int64_t n = (int64_t)nb * SP_QK;
        for (int f = 0; f < 4; f++) {
            for (int g = 0; g < 4; g++) {
                for (int unit = 1; unit >= 0; unit--) {
                    fill_q8(&rng, w8, nb, f, unit);
                    fill_q4(&rng, w4, nb, f, unit);
                    fill_q8(&rng, a, nb, g, unit);
                    double tol8 = 0, tol4 = 0;
                    for (int b = 0; b < nb && !unit; b++) {
                        tol8 += 1e-5 * fabs(sp_vec_dot_q8_0_q8_0_ref(SP_QK, w8 + b, a + b));
                        tol4 += 1e-5 * fabs(sp_vec_dot_q4_0_q8_0_ref(SP_QK, w4 + b, a + b));
                    }
                    float want = sp_vec_dot_q8_0_q8_0_ref(n, w8, a);
                    float got = sp_vec_dot_q8_0_q8_0(n, w8, a);
                    check(unit ? got == want : fabs(got - want) <= tol8, name,
                          unit ? "q8_0.q8_0 exact" : "q8_0.q8_0 scaled", nb, got, want);
                    want = sp_vec_dot_q4_0_q8_0_ref(n, w4, a);
                    got = sp_vec_dot_q4_0_q8_0(n, w4, a);
                    check(unit ? got == want : fabs(got - want) <= tol4, name,
                          unit ? "q4_0.q8_0 exact" : "q4_0.q8_0 scaled", nb, got, want);
                }
            }
        }
    }

    /* dequantization must be bit-identical to the portable loops */
    static float want[MAX_BLOCKS * SP_QK], got[MAX_BLOCKS * SP_QK];
    fill_q8(&rng, w8, MAX_BLOCKS, 0, 0);
    fill_q4(&rng, w4, MAX_BLOCKS, 0, 0);
    sp_dequantize_row_q8_0(w8, want, MAX_BLOCKS * SP_QK);
    sp_dequantize_row(SP_DTYPE_Q8_0, w8, got, MAX_BLOCKS * SP_QK);
    check(memcmp(want, got, sizeof want) == 0, name, "dequantize q8_0", MAX_BLOCKS, got[0], want[0]);
    sp_dequantize_row_q4_0(w4, want, MAX_BLOCKS * SP_QK);
    sp_dequantize_row(SP_DTYPE_Q4_0, w4, got, MAX_BLOCKS * SP_QK);
    check(memcmp(want, got, sizeof want) == 0, name, "dequantize q4_0", MAX_BLOCKS, got[0], want[0]);
    static uint16_t h[65536];
    static float hf[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    sp_dequantize_row(SP_DTYPE_F16, h, hf, 65536 - 3);
    for (int i = 0; i < 65536 - 3; i++) {
        float w = sp_fp16_to_f32(h[i]);
        check(isnan(w) ? isnan(hf[i]) : memcmp(&w, &hf[i], sizeof w) == 0, name,
              "dequantize f16", i, hf[i], w);
    }

    for (int i = 0; i < 2048 + 5; i++) {
        fw[i] = sp_rng_normal(&rng);
        fa[i] = sp_rng_normal(&rng);
    }
    const int lens[] = {1, 5, 16, 33, 2048, 2053};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        double abs_sum = 0;
        for (int i = 0; i < lens[k]; i++) abs_sum += fabs((double)fw[i] * fa[i]);
        float want = sp_vec_dot_f32_ref(lens[k], fw, fa);
        float got = sp_vec_dot_f32(lens[k], fw, fa);
        check(fabs(got - want) <= 1e-5 * abs_sum, name, "f32", lens[k], got, want);
    }
}

/* Tiles: 3 weight rows x up to SP_DOT_ROWS activation rows give the bits of
 * the single-row dots; and the fused activation quantizer writes the bytes
 * of the scalar one (checked against level 0 by the caller's loop). */
static void check_tiles(const char *name)
{
    enum { NB = 9, NW = 3, NA = SP_DOT_ROWS };
    static sp_block_q8_0 w8[NW][NB], a[NA][NB];
    static sp_block_q4_0 w4[NW][NB];
    static sp_q8_group g[NA][(NB + 3) / 4];
    const int64_t stride = (NB + 3) / 4, n = NB * SP_QK;
    sp_rng rng;
    sp_rng_seed(&rng, 77);
    for (int r = 0; r < NW; r++) {
        fill_q8(&rng, w8[r], NB, 0, 0);
        fill_q4(&rng, w4[r], NB, 0, 0);
    }
    for (int i = 0; i < NA; i++) {
        fill_q8(&rng, a[i], NB, 0, 0);
        sp_q8_group_pack(a[i], g[i], n);
    }
    for (int na = 1; na <= NA; na++) {
        float y8[NA][NW], y4[NA][NW];
        sp_vec_dot_q8_0_q8g_tile(n, w8, sizeof w8[0], NW, g[0], stride, na, &y8[0][0], NW);
        sp_vec_dot_q4_0_q8g_tile(n, w4, sizeof w4[0], NW, g[0], stride, na, &y4[0][0], NW);
        for (int i = 0; i < na; i++)
            for (int r = 0; r < NW; r++) {
                float one8 = sp_vec_dot_q8_0_q8g(n, w8[r], g[i]), one4 = sp_vec_dot_q4_0_q8g(n, w4[r], g[i]);
                check(memcmp(&y8[i][r], &one8, sizeof one8) == 0, name, "tile q8_0 vs single row", NB, y8[i][r],
                      one8);
                check(memcmp(&y4[i][r], &one4, sizeof one4) == 0, name, "tile q4_0 vs single row", NB, y4[i][r],
                      one4);
            }
    }
}

/* The outputs every level must reproduce bit for bit, from inputs made
 * with integer arithmetic only (the same on any machine): packed Q8_0 and
 * Q4_0 dots of several lengths with random scales, the activation
 * quantizer's bytes, f32 and fp16 x f32 dots. */
enum { N_OUT = 16384 };
typedef struct outputs {
    uint32_t v[N_OUT];
    int n;
} outputs;

static void put(outputs *o, const void *p, size_t bytes)
{
    for (size_t i = 0; i + 4 <= bytes && o->n < N_OUT; i += 4) memcpy(&o->v[o->n++], (const uint8_t *)p + i, 4);
}

static void k_outputs(outputs *o, sp_rng *rng);
static void iq4nl_outputs(outputs *o, sp_rng *rng);

static void canonical_outputs(outputs *o)
{
    enum { NB = 67 };
    static sp_block_q8_0 w8[NB], a[NB];
    static sp_block_q4_0 w4[NB];
    static sp_q8_group g[(NB + 3) / 4];
    static float x[NB * SP_QK], y[NB * SP_QK];
    static uint16_t h[NB * SP_QK];
    const int counts[] = {1, 3, 4, 5, 8, 9, 64, 67};
    const int lens[] = {1, 5, 7, 8, 9, 15, 16, 17, 24, 33, 64, 100, 128, 2053};
    sp_rng rng;
    sp_rng_seed(&rng, 99);
    o->n = 0;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int64_t n = (int64_t)counts[c] * SP_QK;
        for (int rep = 0; rep < 8; rep++) {
            fill_q8(&rng, w8, counts[c], 0, 0);
            fill_q4(&rng, w4, counts[c], 0, 0);
            fill_q8(&rng, a, counts[c], 0, 0);
            sp_q8_group_pack(a, g, n);
            float r[2] = {sp_vec_dot_q8_0_q8g(n, w8, g), sp_vec_dot_q4_0_q8g(n, w4, g)};
            put(o, r, sizeof r);
        }
    }
    for (int i = 0; i < NB * SP_QK; i++) {
        x[i] = 4.0f * sp_rng_f32(&rng) - 2.0f;
        y[i] = 4.0f * sp_rng_f32(&rng) - 2.0f;
        h[i] = sp_f32_to_fp16(4.0f * sp_rng_f32(&rng) - 2.0f);
    }
    sp_quantize_row_q8g(x, g, 9 * SP_QK);
    put(o, g, 3 * sizeof g[0]);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        float r[2] = {sp_vec_dot_f32(lens[k], x, y), sp_vec_dot_f16_f32(lens[k] < 200 ? lens[k] : 200, h, y)};
        put(o, r, sizeof r);
    }
    /* attention for a KV group of 3 heads over 19 cache rows of 70 halves
     * (head size 64 and 40), and fp16 rounding of values of every size */
    static float s[3 * 19], att[3 * 64], rnd[37];
    for (int hd = 64; hd >= 40; hd -= 24) {
        sp_attn_scores_f16(hd, 19, h + 3, 70, x, 3, 0.125f, s, 19);
        put(o, s, sizeof s);
        memset(att, 0, sizeof att);
        sp_attn_values_f16(hd, 19, h + 5, 70, s, 3, 19, att);
        put(o, att, sizeof att);
    }
    for (int i = 0; i < 37; i++) rnd[i] = x[i] * (i < 12 ? 1e-5f : i < 24 ? 1.0f : 3e4f);
    /* ties to even both ways, the overflow edge, a subnormal half, inf, NaN */
    const float special[] = {1.00048828125f, 1.00146484375f, 65519.99f, 65520.0f, 3e-6f, INFINITY, -NAN};
    memcpy(rnd + 30, special, sizeof special);
    sp_round_f16(rnd, 37);
    put(o, rnd, sizeof rnd);
    /* e^x (softmax) over [-60, 60] and the edges, and SwiGLU rows */
    static float ex[41], sw[41];
    for (int i = 0; i < 41; i++) ex[i] = 30.0f * x[i];
    const float edges[] = {88.7228317f, 88.7228394f, -103.5f, -104.0f, INFINITY, -INFINITY};
    memcpy(ex + 35, edges, sizeof edges);
    sp_exp_f32(ex, ex, 41);
    put(o, ex, sizeof ex);
    for (int i = 0; i < 41; i++) sw[i] = 4.0f * x[i + 41];
    sp_swiglu_f32(sw, y, 41);
    put(o, sw, sizeof sw);
    /* softmax rows of several lengths (partial sums and tails) */
    static float sm[100];
    for (int len = 1; len <= 100; len += 33) {
        for (int i = 0; i < len; i++) sm[i] = 6.0f * x[i + 100];
        sp_softmax_f32(sm, len);
        put(o, sm, sizeof(float) * (size_t)len);
    }
    k_outputs(o, &rng);
    iq4nl_outputs(o, &rng);
}

/* K-quants: random blocks of every type (random bytes, finite scales)
 * dequantized and dotted with Q8_K rows, single rows and tiles, and the
 * Q8_K quantizer's bytes: into the digest, so both architectures agree. */
static void k_outputs(outputs *o, sp_rng *rng)
{
    enum { NB = 5, NW = 3 };
    static uint8_t w[NW * NB * 210];
    static float x[SP_DOT_ROWS * NB * SP_QK_K], deq[NB * SP_QK_K], y[SP_DOT_ROWS * NW];
    static sp_block_q8_K a[SP_DOT_ROWS * NB];
    for (int i = 0; i < SP_DOT_ROWS * NB * SP_QK_K; i++) x[i] = (4.0f * sp_rng_f32(rng) - 2.0f) * (1 + i % 7);
    for (int i = 0; i < SP_DOT_ROWS; i++) sp_quantize_row_q8_K(x + i * NB * SP_QK_K, a + i * NB, NB * SP_QK_K);
    put(o, a, sizeof a);
    for (sp_dtype t = SP_DTYPE_Q2_K; t <= SP_DTYPE_Q6_K; t++) {
        const size_t bb = t == SP_DTYPE_Q2_K ? 84 : t == SP_DTYPE_Q3_K ? 110 : t == SP_DTYPE_Q4_K ? 144
                        : t == SP_DTYPE_Q5_K ? 176 : 210;
        for (size_t i = 0; i < sizeof w; i++) w[i] = (uint8_t)sp_rng_u64(rng);
        /* the fp16 scales: d last (Q3_K, Q6_K) or d, dmin (Q2_K last, Q4/5_K first) */
        for (int b = 0; b < NW * NB; b++) {
            uint8_t *blk = w + b * bb;
            uint16_t d = sp_f32_to_fp16(sp_rng_f32(rng) * 0.01f), m = sp_f32_to_fp16(sp_rng_f32(rng) * 0.01f);
            size_t off = t == SP_DTYPE_Q4_K || t == SP_DTYPE_Q5_K ? 0 : t == SP_DTYPE_Q2_K ? bb - 4 : bb - 2;
            memcpy(blk + off, &d, 2);
            if (t == SP_DTYPE_Q2_K || t == SP_DTYPE_Q4_K || t == SP_DTYPE_Q5_K) memcpy(blk + off + 2, &m, 2);
        }
        sp_dequantize_row(t, w, deq, NB * SP_QK_K);
        put(o, deq, sizeof deq);
        for (int r = 0; r < NW; r++) {
            float s = sp_vec_dot_k_q8_K(t, NB * SP_QK_K, w + r * NB * bb, a);
            put(o, &s, sizeof s);
        }
        sp_vec_dot_k_q8_K_tile(t, NB * SP_QK_K, w, NB * bb, NW, a, NB, SP_DOT_ROWS, y, NW);
        put(o, y, sizeof y);
    }
}

/* IQ4_NL: random blocks (random bytes, fp16 scales of both signs)
 * dequantized and dotted with packed activations, single rows of every
 * length class (whole groups, partial ones) and a tile; every level must
 * also agree with the block-by-block reference (check_iq4nl). */
static void fill_iq4nl(sp_rng *rng, sp_block_iq4_nl *w, int nb, int unit_scale)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < SP_QK / 2; j++) w[b].qs[j] = (uint8_t)sp_rng_u64(rng);
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        w[b].d = unit_scale ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

static void iq4nl_outputs(outputs *o, sp_rng *rng)
{
    enum { NB = 67, NW = 3 };
    static sp_block_iq4_nl w[NW][NB];
    static sp_block_q8_0 a[SP_DOT_ROWS][NB];
    static sp_q8_group g[SP_DOT_ROWS][(NB + 3) / 4];
    static float deq[NB * SP_QK], y[SP_DOT_ROWS * NW];
    const int counts[] = {1, 3, 4, 5, 8, 9, 64, 67};
    for (int r = 0; r < NW; r++) fill_iq4nl(rng, w[r], NB, 0);
    for (int i = 0; i < SP_DOT_ROWS; i++) {
        fill_q8(rng, a[i], NB, 0, 0);
        sp_q8_group_pack(a[i], g[i], NB * SP_QK);
    }
    sp_dequantize_row(SP_DTYPE_IQ4_NL, w[0], deq, NB * SP_QK);
    put(o, deq, sizeof deq);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (int r = 0; r < NW; r++) {
            float s = sp_vec_dot_iq4_nl_q8g(counts[c] * SP_QK, w[r], g[r]);
            put(o, &s, sizeof s);
        }
    sp_vec_dot_iq4_nl_q8g_tile(NB * SP_QK, w, sizeof w[0], NW, g[0], (NB + 3) / 4, SP_DOT_ROWS, y, NW);
    put(o, y, sizeof y);
}

/* The dispatched IQ4_NL dots against the block-by-block reference (exact
 * with unit scales, within 1e-5 of sum |block terms| otherwise), with all
 * -127 weights against all +-127 activations among them. */
static void check_iq4nl(const char *name)
{
    static sp_block_iq4_nl w[MAX_BLOCKS];
    static sp_block_q8_0 a[MAX_BLOCKS];
    static sp_q8_group g[MAX_BLOCKS / 4];
    const int counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 64};
    sp_rng rng;
    sp_rng_seed(&rng, 20);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int nb = counts[c];
        int64_t n = (int64_t)nb * SP_QK;
        for (int f = 0; f < 4; f++)
            for (int unit = 1; unit >= 0; unit--) {
                fill_iq4nl(&rng, w, nb, unit);
                if (f == 1) for (int b = 0; b < nb; b++) memset(w[b].qs, 0, SP_QK / 2);
                fill_q8(&rng, a, nb, f, unit);
                sp_q8_group_pack(a, g, n);
                double tol = 0;
                for (int b = 0; b < nb && !unit; b++) tol += 1e-5 * fabs(sp_vec_dot_iq4_nl_q8_0_ref(SP_QK, w + b, a + b));
                float want = sp_vec_dot_iq4_nl_q8_0_ref(n, w, a), got = sp_vec_dot_iq4_nl_q8g(n, w, g);
                check(unit ? got == want : fabs(got - want) <= tol, name, unit ? "iq4_nl exact" : "iq4_nl scaled", nb,
                      got, want);
            }
    }
}

/* FNV-1a over the outputs' bits. */
static unsigned long long digest(const outputs *o)
{
    unsigned long long d = 14695981039346656037ULL;
    for (int i = 0; i < o->n; i++)
        for (int b = 0; b < 4; b++) d = (d ^ ((o->v[i] >> (8 * b)) & 0xff)) * 1099511628211ULL;
    return d;
}

static void check_quantizer(const char *name, const sp_q8_group *want, const float *x, int64_t n)
{
    static sp_q8_group got[4];
    memset(got, 0x5a, sizeof got);
    sp_quantize_row_q8g(x, got, n);
    check(memcmp(want, got, sizeof got) == 0, name, "quantize_row_q8g vs scalar level", (int)(n / SP_QK), 0, 0);
}

int main(void)
{
    /* fp16 round trip over every non-NaN half */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sp_fp16_to_f32((uint16_t)h);
        if (!isnan(f) && sp_f32_to_fp16(f) != h) {
            fprintf(stderr, "FAIL fp16 round trip of 0x%04x\n", h);
            failures++;
        }
    }
    printf("default level: %s\n", sp_simd_name());
    static float x[13 * SP_QK];
    static sp_q8_group qref[4];
    sp_rng rng;
    sp_rng_seed(&rng, 5);
    for (int i = 0; i < 13 * SP_QK; i++) x[i] = sp_rng_normal(&rng);
    x[0] = 127.0f, x[1] = 2.5f, x[2] = -3.5f; /* a block with exact ties */
    for (int i = 3; i < SP_QK; i++) x[i] = 0.0f;
    sp_simd_force(0);
    sp_quantize_row_q8g(x, qref, 13 * SP_QK);
    static outputs scalar_out, level_out;
    canonical_outputs(&scalar_out);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        int before = failures;
        check_level(sp_simd_level_name(lv));
        check_tiles(sp_simd_level_name(lv));
        check_iq4nl(sp_simd_level_name(lv));
        check_quantizer(sp_simd_level_name(lv), qref, x, 13 * SP_QK);
        canonical_outputs(&level_out);
        for (int i = 0; i < scalar_out.n; i++) {
            float got, want;
            memcpy(&got, &level_out.v[i], 4);
            memcpy(&want, &scalar_out.v[i], 4);
            check(level_out.v[i] == scalar_out.v[i], sp_simd_level_name(lv), "output bits vs scalar level", i, got,
                  want);
        }
        printf("%-14s %s\n", sp_simd_level_name(lv), failures == before ? "ok" : "MISMATCH");
    }
    printf("canonical digest: %016llx (%d outputs)\n", digest(&scalar_out), scalar_out.n);
    if (failures) {
        fprintf(stderr, "kernel_selftest: %d mismatches\n", failures);
        return 1;
    }
    printf("kernel_selftest: all %d levels match the reference\n", sp_simd_count());
    return 0;
}
