/* test_iq4nl.c - IQ4_NL (GGUF type 20): the block layout against values
 * worked out by hand, the quantizer's bounds, every SIMD level's dots
 * against the scalar level bit for bit (and the scalar level against the
 * Q8_0 kernel on the same integers, and the block-by-block reference), the
 * tiles against single rows, and a model with IQ4_NL matrices written by
 * the project's own GGUF writer (synth) against the float64 oracle of the
 * same dequantized weights, with `check`'s weight bytes. The planner's
 * IQ4_NL cost is in test_planner.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/model.h"
#include "shardpipe/quant_iq4nl.h"
#include "shardpipe/synth.h"
#include "shardpipe/util.h"
#include "oracle.h"
#include "testutil.h"

/* ggml's kvalues_iq4nl, typed in again rather than taken from the library */
static const int kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

Test(iq4nl, type_table_entry)
{
    cr_assert_str_eq(sp_dtype_name(SP_DTYPE_IQ4_NL), "IQ4_NL");
    cr_assert_eq(SP_DTYPE_IQ4_NL, 20);
    cr_assert(sp_dtype_supported(SP_DTYPE_IQ4_NL));
    cr_assert_eq(sp_dtype_block(SP_DTYPE_IQ4_NL), 32);
    cr_assert_eq(sp_dtype_row_bytes(SP_DTYPE_IQ4_NL, 4096), 128 * 18);
    for (int i = 0; i < 16; i++) cr_assert_eq(sp_iq4nl_values[i], kv[i], "table entry %d", i);
}

/* Two blocks by hand. Block 0: d = 0.5 (fp16 0x3800), byte j = j | (15 -
 * j) << 4, so element j is 0.5 * kv[j] and element 16 + j is 0.5 *
 * kv[15 - j]. Block 1: d = -2 (0xc000), every byte 0x8f: low nibble 15
 * (113 * -2 = -226) for elements 0..15, high nibble 8 (1 * -2 = -2) for
 * 16..31. */
Test(iq4nl, dequantize_hand_computed_blocks)
{
    static const float half0[16] = {-63.5f, -52.0f, -41.5f, -32.5f, -24.5f, -17.5f, -11.0f, -5.0f,
                                    0.5f,   6.5f,   12.5f,  19.0f,  26.5f,  34.5f,  44.5f,  56.5f};
    uint8_t raw[36] = {0x00, 0x38};
    for (int j = 0; j < 16; j++) raw[2 + j] = (uint8_t)(j | (15 - j) << 4);
    raw[18] = 0x00, raw[19] = 0xc0;
    memset(raw + 20, 0x8f, 16);
    float y[64], z[64];
    sp_dequantize_row_iq4_nl((const sp_block_iq4_nl *)raw, y, 64);
    sp_dequantize_row(SP_DTYPE_IQ4_NL, raw, z, 64);
    for (int j = 0; j < 16; j++) {
        cr_assert_eq(y[j], half0[j], "element %d: %g, want %g", j, y[j], half0[j]);
        cr_assert_eq(y[16 + j], half0[15 - j], "element %d: %g", 16 + j, y[16 + j]);
        cr_assert_eq(y[32 + j], -226.0f, "block 1 element %d: %g", j, y[32 + j]);
        cr_assert_eq(y[48 + j], -2.0f, "block 1 element %d: %g", 16 + j, y[48 + j]);
    }
    cr_assert_arr_eq(y, z, sizeof y, "the dtype dispatch dequantizes the same values");
}

/* The quantizer: the value of largest magnitude maps to kv[0] = -127 (d =
 * max / -127), and every value to the nearest table value: |x/d - kv| is at
 * most half the largest gap between neighbours (12, 89..113) or, above
 * the table's top, 127 - 113 = 14; fp16 rounding of d adds 127 * 2^-11 |d|. */
Test(iq4nl, quantize_round_trip_bound)
{
    enum { N = 64 * SP_QK };
    static float x[N], y[N];
    static sp_block_iq4_nl q[N / SP_QK];
    sp_rng rng;
    sp_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) x[i] = sp_rng_normal(&rng) * (1 + i % 5);
    sp_quantize_row_iq4_nl(x, q, N);
    sp_dequantize_row_iq4_nl(q, y, N);
    for (int b = 0; b < N / SP_QK; b++) {
        float max = 0;
        for (int j = 0; j < SP_QK; j++)
            if (fabsf(x[b * SP_QK + j]) > fabsf(max)) max = x[b * SP_QK + j];
        double d = fabs(max / 127.0);
        for (int j = 0; j < SP_QK; j++) {
            int i = b * SP_QK + j, idx = j < 16 ? q[b].qs[j] & 15 : q[b].qs[j - 16] >> 4;
            cr_assert(fabs(x[i] - y[i]) <= d * (14 + 127.0 / 2048 + 1e-4), "block %d elem %d: %g -> %g (d %g)", b, j,
                      x[i], y[i], d);
            if (x[i] == max) cr_assert_eq(idx, 0, "the largest magnitude maps to index 0");
        }
    }
}

/* Random IQ4_NL rows: random bytes, scales of both signs. */
static void fill_iq4(sp_rng *rng, sp_block_iq4_nl *w, int nb, int unit)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < 16; j++) w[b].qs[j] = (uint8_t)sp_rng_u64(rng);
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        w[b].d = unit ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

/* Q8_0 activations with quants in [-127, 127]; extreme = all +-127. */
static void fill_act(sp_rng *rng, sp_block_q8_0 *a, int nb, int extreme, int unit)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < SP_QK; j++)
            a[b].qs[j] = (int8_t)(extreme ? ((j + b) % 3 ? 127 : -127) : (int)(sp_rng_u64(rng) % 255) - 127);
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        a[b].d = unit ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

/* The IQ4_NL row as the Q8_0 row of its table values (same scales). */
static void as_q8_0(const sp_block_iq4_nl *w, sp_block_q8_0 *q, int nb)
{
    for (int b = 0; b < nb; b++) {
        q[b].d = w[b].d;
        for (int j = 0; j < 16; j++) {
            q[b].qs[j] = (int8_t)kv[w[b].qs[j] & 15];
            q[b].qs[16 + j] = (int8_t)kv[w[b].qs[j] >> 4];
        }
    }
}

/* Every level against the scalar level, bit for bit; the scalar level
 * against the Q8_0 kernel on the table values (the same integers in the
 * same lanes, so the same bits) and within 1e-5 of sum |block terms| of
 * the block-by-block reference (exactly, with unit scales, where every
 * partial sum is an integer). Lengths with and without a partial group;
 * rows of all -127 weights against all +-127 activations. */
Test(iq4nl, every_level_has_the_scalar_bits)
{
    enum { NB = 133 };
    static sp_block_iq4_nl w[NB];
    static sp_block_q8_0 a[NB], wq[NB];
    static sp_q8_group g[(NB + 3) / 4];
    const int counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 64, 67, 133};
    sp_rng rng;
    sp_rng_seed(&rng, 2026);
    int checked = 0;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int nb = counts[c];
        int64_t n = (int64_t)nb * SP_QK;
        for (int rep = 0; rep < 6; rep++) {
            int unit = rep % 2, extreme = rep == 5;
            fill_iq4(&rng, w, nb, unit);
            if (extreme) for (int b = 0; b < nb; b++) memset(w[b].qs, 0, 16);
            fill_act(&rng, a, nb, extreme, unit);
            sp_q8_group_pack(a, g, n);
            as_q8_0(w, wq, nb);
            sp_simd_force(0);
            float want = sp_vec_dot_iq4_nl_q8g(n, w, g);
            float as_q8 = sp_vec_dot_q8_0_q8g(n, wq, g);
            cr_assert(memcmp(&want, &as_q8, sizeof want) == 0, "%d blocks: %.9g, as Q8_0 %.9g", nb, want, as_q8);
            double tol = 0;
            for (int b = 0; b < nb && !unit; b++) tol += 1e-5 * fabs(sp_vec_dot_iq4_nl_q8_0_ref(SP_QK, w + b, a + b));
            float ref = sp_vec_dot_iq4_nl_q8_0_ref(n, w, a);
            cr_assert(fabs(want - ref) <= tol, "%d blocks%s: %.9g, reference %.9g", nb, unit ? " unit" : "", want,
                      ref);
            for (int lv = 1; lv < sp_simd_count(); lv++) {
                sp_simd_force(lv);
                float got = sp_vec_dot_iq4_nl_q8g(n, w, g);
                cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s, %d blocks: %.9g, scalar %.9g", sp_simd_name(),
                          nb, got, want);
                checked++;
            }
        }
    }
    sp_simd_force(sp_simd_count() - 1);
    fprintf(stderr, "iq4nl: %d rows at %d SIMD levels equal the scalar level bit for bit\n", checked,
            sp_simd_count() - 1);
}

/* Tiles (3 weight rows against 1..SP_DOT_ROWS activation rows) give each
 * output the bits of the single-row dot, at every level. */
Test(iq4nl, tiles_equal_single_rows)
{
    enum { NB = 67, NW = 3, NA = SP_DOT_ROWS };
    static sp_block_iq4_nl w[NW][NB];
    static sp_block_q8_0 a[NA][NB];
    static sp_q8_group g[NA][(NB + 3) / 4];
    const int64_t stride = (NB + 3) / 4;
    sp_rng rng;
    sp_rng_seed(&rng, 11);
    for (int r = 0; r < NW; r++) fill_iq4(&rng, w[r], NB, 0);
    for (int i = 0; i < NA; i++) {
        fill_act(&rng, a[i], NB, 0, 0);
        sp_q8_group_pack(a[i], g[i], NB * SP_QK);
    }
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (int nb = 5; nb <= NB; nb += NB - 5)
            for (int na = 1; na <= NA; na++) {
                float y[NA][NW];
                sp_vec_dot_iq4_nl_q8g_tile(nb * SP_QK, w, sizeof w[0], NW, g[0], stride, na, &y[0][0], NW);
                for (int i = 0; i < na; i++)
                    for (int r = 0; r < NW; r++) {
                        float one = sp_vec_dot_iq4_nl_q8g(nb * SP_QK, w[r], g[i]);
                        cr_assert(memcmp(&one, &y[i][r], sizeof one) == 0, "%s nb %d na %d row %d act %d",
                                  sp_simd_name(), nb, na, r, i);
                    }
            }
    }
    sp_simd_force(sp_simd_count() - 1);
}

/* ---- a model with IQ4_NL matrices ---- */

/* synth writes the model with the project's GGUF writer: every layer
 * matrix and the output in IQ4_NL, the embedding Q8_0; a Q8_0 twin (same
 * seed, so the same weights before quantization) measures what the
 * activation quantization alone costs. Logits are up to 1.35 here. The
 * sgemm path (f32 activations, weights through sp_dequantize_row) follows
 * the oracle to f32 rounding, plus the k / v values within f32 rounding of
 * an fp16 midpoint, which the oracle rounds the other way (measured 1.3e-4,
 * the twin 4.6e-5); the dot path (Q8_0 activations, the int8 kernels) must
 * be as close as the twin's, within a factor of 3 (measured 1.31e-2 and
 * 1.13e-2). A wrong table entry, nibble order or scale in a kernel moves
 * the dot path by far more. */
Test(iq4nl, model_matches_float64_oracle)
{
    const sp_dtype types[2] = {SP_DTYPE_IQ4_NL, SP_DTYPE_Q8_0};
    double gap[2][2];
    const int toks[12] = {1, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100};
    for (int t = 0; t < 2; t++) {
        sp_synth_spec s;
        sp_error err = {{0}};
        cr_assert_eq(sp_synth_shape("tiny", &s, &err), 0, "%s", err.msg);
        s.dim = 256, s.ffn_dim = 512, s.n_layers = 2, s.n_heads = 4, s.n_kv_heads = 2, s.seed = 17;
        s.type = s.output_type = types[t];
        s.embd_type = SP_DTYPE_Q8_0;
        const char *path = sp_test_tmpfile(t ? "q8.gguf" : "iq4nl.gguf");
        cr_assert_eq(sp_synth_write(&s, path, &err), 0, "%s", err.msg);
        sp_model *m = sp_model_open_full(path, &err);
        cr_assert(m, "%s", err.msg);
        cr_assert_eq(m->layers[0].wq.type, types[t]);
        cr_assert_eq(m->output.type, types[t]);
        if (t == 0) { /* `check`'s memory estimate: the tensors' bytes, IQ4_NL at 18 per 32 weights */
            uint64_t want = 0;
            for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
                const sp_gguf_tensor *g = &m->gguf->tensors[i];
                uint64_t ne = g->ne[0] * (g->n_dims > 1 ? g->ne[1] : 1);
                want += g->type == SP_DTYPE_IQ4_NL ? ne / 32 * 18 : g->type == SP_DTYPE_Q8_0 ? ne / 32 * 34 : ne * 4;
            }
            uint64_t got = sp_shard_weight_bytes(m->gguf, &m->cfg, 0, s.n_layers - 1, true, true);
            cr_assert_eq(got, want, "weights %llu bytes, want %llu", (unsigned long long)got, (unsigned long long)want);
        }
        gap[t][0] = sp_test_oracle_gap(m, toks, 12, SP_PATH_SGEMM);
        gap[t][1] = sp_test_oracle_gap(m, toks, 12, SP_PATH_DOT);
        sp_model_close(m);
    }
    fprintf(stderr, "iq4nl model vs float64 oracle: sgemm path %.2e, dot path %.2e (Q8_0 twin: %.2e, %.2e)\n",
            gap[0][0], gap[0][1], gap[1][0], gap[1][1]);
    cr_assert_leq(gap[0][0], 5e-4, "sgemm path %.2e from the oracle", gap[0][0]);
    cr_assert_leq(gap[0][1], 3 * gap[1][1] + 1e-4, "dot path %.2e from the oracle, Q8_0 twin %.2e", gap[0][1],
                  gap[1][1]);
}
