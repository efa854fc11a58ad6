/* test_quant_k.c - the K-quant formats (quant_k.h): quantize/dequantize
 * round trips, the Q8_K activations, the reference dot against a double
 * dot of the dequantized values, and every SIMD level's kernels equal to
 * the scalar reference bit for bit on random blocks (random bytes: every
 * bit pattern of the quants and packed scales is a valid block). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/util.h"

static const sp_dtype ktypes[5] = {SP_DTYPE_Q2_K, SP_DTYPE_Q3_K, SP_DTYPE_Q4_K, SP_DTYPE_Q5_K, SP_DTYPE_Q6_K};

static size_t kbytes(sp_dtype t) { return (size_t)sp_dtype_row_bytes(t, SP_QK_K); }

/* The fp16 fields of a block (d, and dmin where the type has it). */
static void fp16_fields(sp_dtype t, uint8_t *b, uint16_t **d, uint16_t **dmin)
{
    *dmin = NULL;
    switch (t) {
    case SP_DTYPE_Q2_K: *d = &((sp_block_q2_K *)b)->d, *dmin = &((sp_block_q2_K *)b)->dmin; break;
    case SP_DTYPE_Q3_K: *d = &((sp_block_q3_K *)b)->d; break;
    case SP_DTYPE_Q4_K: *d = &((sp_block_q4_K *)b)->d, *dmin = &((sp_block_q4_K *)b)->dmin; break;
    case SP_DTYPE_Q5_K: *d = &((sp_block_q5_K *)b)->d, *dmin = &((sp_block_q5_K *)b)->dmin; break;
    default: *d = &((sp_block_q6_K *)b)->d; break;
    }
}

/* nb random blocks: random bytes, then finite scales of varied size. */
static void random_blocks(sp_rng *rng, sp_dtype t, uint8_t *w, int nb)
{
    for (size_t i = 0; i < nb * kbytes(t); i++) w[i] = (uint8_t)sp_rng_u64(rng);
    for (int b = 0; b < nb; b++) {
        uint16_t *d, *dmin;
        fp16_fields(t, w + b * kbytes(t), &d, &dmin);
        *d = sp_f32_to_fp16(ldexpf(sp_rng_f32(rng) * 2 - 1, (int)(sp_rng_u64(rng) % 8) - 10));
        if (dmin) *dmin = sp_f32_to_fp16(ldexpf(sp_rng_f32(rng), (int)(sp_rng_u64(rng) % 8) - 10));
    }
}

static void random_acts(sp_rng *rng, float *x, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK_K; b++) {
        float s = ldexpf(1.0f, (int)(sp_rng_u64(rng) % 12) - 4);
        for (int i = 0; i < SP_QK_K; i++) x[b * SP_QK_K + i] = s * sp_rng_normal(rng);
    }
}

/* Round trip of N(0,1) rows: the relative rms error of each format with
 * these simple quantizers (measured 0.335 / 0.157 / 0.080 / 0.039 / 0.019
 * for Q2_K .. Q6_K), with a margin; and dequantization through
 * sp_dequantize_row equals sp_dequantize_row_k. */
Test(quant_k, round_trip_error)
{
    const double bound[5] = {0.40, 0.20, 0.10, 0.05, 0.025};
    enum { N = 16 * SP_QK_K };
    sp_rng rng;
    sp_rng_seed(&rng, 3);
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), *z = malloc(N * sizeof(float));
    uint8_t *q = malloc(N);
    for (int64_t i = 0; i < N; i++) x[i] = sp_rng_normal(&rng);
    for (int k = 0; k < 5; k++) {
        sp_quantize_row(ktypes[k], x, q, N);
        sp_dequantize_row_k(ktypes[k], q, y, N);
        sp_dequantize_row(ktypes[k], q, z, N);
        cr_assert(!memcmp(y, z, N * sizeof(float)), "%s: dispatch differs", sp_dtype_name(ktypes[k]));
        double se = 0, sx = 0;
        for (int64_t i = 0; i < N; i++) se += (x[i] - y[i]) * (double)(x[i] - y[i]), sx += x[i] * (double)x[i];
        double rel = sqrt(se / sx);
        cr_log_info("%s round trip rms %.4f", sp_dtype_name(ktypes[k]), rel);
        cr_assert_leq(rel, bound[k], "%s: relative rms error %.4f > %.3f", sp_dtype_name(ktypes[k]), rel, bound[k]);
        cr_assert_geq(rel, bound[k] / 20, "%s: error %.5f implausibly small", sp_dtype_name(ktypes[k]), rel);
        /* quantizing the dequantized row again is (nearly) a fixed point */
        sp_quantize_row(ktypes[k], y, q, N);
        sp_dequantize_row_k(ktypes[k], q, z, N);
        double se2 = 0;
        for (int64_t i = 0; i < N; i++) se2 += (z[i] - y[i]) * (double)(z[i] - y[i]);
        cr_assert_leq(sqrt(se2 / sx), rel, "%s: requantizing moves the values more than the first pass",
                      sp_dtype_name(ktypes[k]));
    }
    free(x), free(y), free(z), free(q);
}

/* Q8_K: d = amax / 127, |x - d q| <= d / 2 (+ f32 rounding), bsums. */
Test(quant_k, q8_K_activations)
{
    enum { N = 8 * SP_QK_K };
    sp_rng rng;
    sp_rng_seed(&rng, 4);
    float x[N];
    random_acts(&rng, x, N);
    memset(x + SP_QK_K, 0, SP_QK_K * sizeof(float)); /* an all-zero block */
    sp_block_q8_K a[N / SP_QK_K];
    sp_quantize_row_q8_K(x, a, N);
    for (int b = 0; b < N / SP_QK_K; b++) {
        float amax = 0;
        for (int i = 0; i < SP_QK_K; i++) amax = fmaxf(amax, fabsf(x[b * SP_QK_K + i]));
        cr_assert_eq(a[b].d, amax / 127.0f);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) {
                int q = a[b].qs[16 * g + i];
                cr_assert(q >= -127 && q <= 127);
                cr_assert_leq(fabsf(x[b * SP_QK_K + 16 * g + i] - a[b].d * q), a[b].d * 0.5f * 1.0001f);
                s += q;
            }
            cr_assert_eq(a[b].bsums[g], s);
        }
    }
}

/* The reference dot equals the double dot of the dequantized weights and
 * the dequantized activations up to the f32 rounding of its few steps. */
Test(quant_k, reference_dot_is_the_dequantized_dot)
{
    enum { NB = 9, N = NB * SP_QK_K };
    sp_rng rng;
    sp_rng_seed(&rng, 5);
    uint8_t *w = malloc(NB * 210);
    float *wf = malloc(N * sizeof(float)), *x = malloc(N * sizeof(float));
    sp_block_q8_K a[NB];
    for (int k = 0; k < 5; k++)
        for (int rep = 0; rep < 20; rep++) {
            random_blocks(&rng, ktypes[k], w, NB);
            random_acts(&rng, x, N);
            sp_quantize_row_q8_K(x, a, N);
            sp_dequantize_row_k(ktypes[k], w, wf, N);
            double want = 0, mag = 0;
            for (int b = 0; b < NB; b++)
                for (int i = 0; i < SP_QK_K; i++) {
                    double t = (double)wf[b * SP_QK_K + i] * a[b].d * a[b].qs[i];
                    want += t;
                    mag += fabs(t);
                }
            float got = sp_vec_dot_k_q8_K_ref(ktypes[k], N, w, a);
            cr_assert_leq(fabs(got - want), 1e-5 * mag + 1e-30, "%s: dot %.9g, dequantized dot %.9g (sum |t| %.3g)",
                          sp_dtype_name(ktypes[k]), got, want, mag);
        }
    free(w), free(wf), free(x);
}

/* Every level, single rows and tiles of 1..SP_DOT_ROWS activation rows,
 * equal to the scalar reference bit for bit, at several row lengths. */
Test(quant_k, every_level_has_the_scalar_bits)
{
    enum { MAXB = 16, NW = 5 };
    static const int nbs[] = {1, 2, 3, 7, 16};
    sp_rng rng;
    sp_rng_seed(&rng, 6);
    uint8_t *w = malloc(NW * MAXB * 210);
    float *x = malloc(SP_DOT_ROWS * MAXB * SP_QK_K * sizeof(float));
    sp_block_q8_K *a = malloc(SP_DOT_ROWS * MAXB * sizeof *a);
    float want[SP_DOT_ROWS][NW], got[SP_DOT_ROWS * NW];
    for (int k = 0; k < 5; k++)
        for (size_t c = 0; c < sizeof nbs / sizeof nbs[0]; c++) {
            int nb = nbs[c];
            int64_t n = (int64_t)nb * SP_QK_K;
            size_t rb = nb * kbytes(ktypes[k]);
            random_blocks(&rng, ktypes[k], w, NW * nb);
            random_acts(&rng, x, SP_DOT_ROWS * n);
            /* one extreme row: every activation +-127 */
            for (int i = 0; i < nb * SP_QK_K; i++) x[i] = (i % 3) ? 1.0f : -1.0f;
            for (int i = 0; i < SP_DOT_ROWS; i++) sp_quantize_row_q8_K(x + i * n, a + i * nb, n);
            for (int i = 0; i < SP_DOT_ROWS; i++)
                for (int r = 0; r < NW; r++) want[i][r] = sp_vec_dot_k_q8_K_ref(ktypes[k], n, w + r * rb, a + i * nb);
            for (int lv = 0; lv < sp_simd_count(); lv++) {
                sp_simd_force(lv);
                for (int i = 0; i < SP_DOT_ROWS; i++)
                    for (int r = 0; r < NW; r++) {
                        float s = sp_vec_dot_k_q8_K(ktypes[k], n, w + r * rb, a + i * nb);
                        cr_assert(!memcmp(&s, &want[i][r], sizeof s), "%s %s nb %d row %d act %d: %.9g, scalar %.9g",
                                  sp_simd_level_name(lv), sp_dtype_name(ktypes[k]), nb, r, i, s, want[i][r]);
                    }
                for (int na = 1; na <= SP_DOT_ROWS; na++) {
                    memset(got, 0xff, sizeof got);
                    sp_vec_dot_k_q8_K_tile(ktypes[k], n, w, rb, NW, a, nb, na, got, NW);
                    for (int i = 0; i < na; i++)
                        for (int r = 0; r < NW; r++)
                            cr_assert(!memcmp(&got[i * NW + r], &want[i][r], sizeof(float)),
                                      "%s %s nb %d tile na %d: row %d act %d %.9g, scalar %.9g",
                                      sp_simd_level_name(lv), sp_dtype_name(ktypes[k]), nb, na, r, i,
                                      got[i * NW + r], want[i][r]);
                }
            }
            sp_simd_force(sp_simd_count() - 1);
        }
    free(w), free(x), free(a);
}
