/* test_quant_k.c - the K-quant formats (quant_k.h): quantize/dequantize
 * round trips, the Q8_K activations, the reference dot against a double
 * dot of the dequantized values, and every SIMD level's kernels equal to
 * the scalar reference bit for bit on random blocks (random bytes: every
 * bit pattern of the quants and packed scales is a valid block). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/matmul.h"
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

/* sp_matmul's dot path on K matrices (activations as Q8_K) against the
 * sgemm path (the weights dequantized, f32 activations): the difference
 * is Q8_K's rounding of the activations alone, at most half a step per
 * value, d_a / 2 = amax / 254, times |w|; 1, 2 threads, n = 1..5 rows. */
Test(quant_k, matmul_dot_path_is_the_dequantized_product)
{
    enum { ROWS = 40, COLS = 768, NMAX = 5 };
    sp_rng rng;
    sp_rng_seed(&rng, 8);
    float *wf = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * NMAX * COLS);
    float *yd = malloc(sizeof(float) * NMAX * ROWS), *ys = malloc(sizeof(float) * NMAX * ROWS);
    uint8_t *wq = malloc(ROWS * (COLS / SP_QK_K) * 210);
    for (int i = 0; i < ROWS * COLS; i++) wf[i] = sp_rng_normal(&rng);
    random_acts(&rng, x, NMAX * COLS);
    for (int k = 0; k < 5; k++) {
        sp_matrix w = {.type = ktypes[k], .rows = ROWS, .cols = COLS, .data = wq,
                       .row_bytes = (size_t)sp_dtype_row_bytes(ktypes[k], COLS)};
        for (int r = 0; r < ROWS; r++) sp_quantize_row(ktypes[k], wf + r * COLS, wq + r * w.row_bytes, COLS);
        for (int threads = 1; threads <= 2; threads++)
            for (int n = 1; n <= NMAX; n += 2) {
                sp_matmul_ctx ctx;
                sp_matmul_init(&ctx, threads);
                ctx.force = SP_PATH_DOT;
                sp_matmul(&ctx, &w, x, n, yd);
                ctx.force = SP_PATH_SGEMM;
                sp_matmul(&ctx, &w, x, n, ys);
                sp_matmul_free(&ctx);
                float deq[COLS];
                for (int r = 0; r < ROWS; r++) {
                    sp_dequantize_row(ktypes[k], wq + r * w.row_bytes, deq, COLS);
                    for (int i = 0; i < n; i++) {
                        double bound = 1e-5;
                        for (int b = 0; b < COLS / SP_QK_K; b++) {
                            float amax = 0;
                            for (int j = 0; j < SP_QK_K; j++) amax = fmaxf(amax, fabsf(x[i * COLS + b * SP_QK_K + j]));
                            for (int j = 0; j < SP_QK_K; j++) bound += fabsf(deq[b * SP_QK_K + j]) * amax / 254.0 * 1.001;
                        }
                        cr_assert_leq(fabs(yd[i * ROWS + r] - ys[i * ROWS + r]), bound,
                                      "%s row %d act %d (n %d, %d threads): dot %.6g, dequantized %.6g",
                                      sp_dtype_name(ktypes[k]), r, i, n, threads, yd[i * ROWS + r], ys[i * ROWS + r]);
                    }
                }
            }
    }
    free(wf), free(x), free(yd), free(ys), free(wq);
}

/* Rows regrouped sixteen at a time (sp_k_x16, Q2_K to Q6_K): each row
 * comes back byte for byte and dequantizes to the same values, and every
 * level's tile on the regrouped rows (its kernel, or the portable loop)
 * gives the file layout's scalar bits, for 1..SP_KX16_ROWS activation rows
 * and two groups, at several row lengths. */
Test(quant_k, x16_regrouped_rows_same_bytes_values_and_bits)
{
    enum { MAXB = 7, NW = 32 };
    static const int nbs[] = {1, 2, 3, 7};
    static const sp_dtype xt[5] = {SP_DTYPE_Q2_K, SP_DTYPE_Q3_K, SP_DTYPE_Q4_K, SP_DTYPE_Q5_K, SP_DTYPE_Q6_K};
    sp_rng rng;
    sp_rng_seed(&rng, 9);
    uint8_t *w = malloc(NW * MAXB * 210), *x = malloc(NW * MAXB * 210), *back = malloc(MAXB * 210);
    float *xf = malloc(SP_KX16_ROWS * MAXB * SP_QK_K * sizeof(float));
    float *d1 = malloc(MAXB * SP_QK_K * sizeof(float)), *d2 = malloc(MAXB * SP_QK_K * sizeof(float));
    sp_block_q8_K *a = malloc(SP_KX16_ROWS * MAXB * sizeof *a);
    float want[SP_KX16_ROWS][NW], got[SP_KX16_ROWS * NW];
    int kernels = 0;
    for (int k = 0; k < 5; k++)
        for (size_t c = 0; c < sizeof nbs / sizeof nbs[0]; c++) {
            int nb = nbs[c];
            int64_t n = (int64_t)nb * SP_QK_K;
            size_t rb = nb * kbytes(xt[k]);
            cr_assert(sp_k_x16_type(xt[k]));
            random_blocks(&rng, xt[k], w, NW * nb);
            for (int g = 0; g < NW / SP_KX16; g++)
                sp_k_x16_from_k(xt[k], w + g * SP_KX16 * rb, rb, x + g * SP_KX16 * rb, n);
            for (int r = 0; r < NW; r++) {
                const uint8_t *group = x + (r / SP_KX16) * SP_KX16 * rb;
                sp_k_x16_row(xt[k], group, r % SP_KX16, back, n);
                cr_assert(!memcmp(back, w + r * rb, rb), "%s nb %d: row %d changed by the regrouping",
                          sp_dtype_name(xt[k]), nb, r);
                sp_dequantize_row_k(xt[k], w + r * rb, d1, n);
                sp_dequantize_row_k_x16(xt[k], group, r % SP_KX16, d2, n);
                cr_assert(!memcmp(d1, d2, n * sizeof(float)), "%s nb %d row %d: dequantized values differ",
                          sp_dtype_name(xt[k]), nb, r);
            }
            random_acts(&rng, xf, SP_KX16_ROWS * n);
            for (int i = 0; i < nb * SP_QK_K; i++) xf[i] = (i % 3) ? 1.0f : -1.0f;
            for (int i = 0; i < SP_KX16_ROWS; i++) sp_quantize_row_q8_K(xf + i * n, a + i * nb, n);
            for (int i = 0; i < SP_KX16_ROWS; i++)
                for (int r = 0; r < NW; r++) want[i][r] = sp_vec_dot_k_q8_K_ref(xt[k], n, w + r * rb, a + i * nb);
            for (int lv = 0; lv < sp_simd_count(); lv++) {
                sp_simd_force(lv);
                kernels += sp_simd_k_x16(xt[k]);
                for (int na = 1; na <= SP_KX16_ROWS; na++) {
                    memset(got, 0xff, sizeof got);
                    sp_vec_dot_k_x16_q8_K_tile(xt[k], n, x, NW, a, nb, na, got, NW);
                    for (int i = 0; i < na; i++)
                        for (int r = 0; r < NW; r++)
                            cr_assert(!memcmp(&got[i * NW + r], &want[i][r], sizeof(float)),
                                      "%s %s x16 nb %d tile na %d: row %d act %d %a, scalar %a",
                                      sp_simd_level_name(lv), sp_dtype_name(xt[k]), nb, na, r, i, got[i * NW + r],
                                      want[i][r]);
                }
            }
            sp_simd_force(sp_simd_count() - 1);
        }
    if (!kernels) cr_log_warn("no SIMD level here has an sp_k_x16 kernel: only the portable tile was compared");
    free(w), free(x), free(back), free(xf), free(d1), free(d2), free(a);
}

/* sp_matmul on a Q2_K .. Q6_K matrix regrouped as SP_LAYOUT_K_X16 (as
 * sp_model_load_weights does, in two pieces of whole groups): Y bit for
 * bit that of the file layout, on the dot and sgemm paths, at every level,
 * 1 and 2 threads, 1, 3, 6 and 11 rows; and which matrices the loader
 * regroups (16 | rows, a level with the kernel, SHARDPIPE_REPACK unset). */
Test(quant_k, x16_layout_matmul_same_bits_as_file_layout)
{
    enum { ROWS = 48, COLS = 768, NMAX = 11 };
    static const sp_dtype xt[5] = {SP_DTYPE_Q2_K, SP_DTYPE_Q3_K, SP_DTYPE_Q4_K, SP_DTYPE_Q5_K, SP_DTYPE_Q6_K};
    static const int ns[] = {1, 3, 6, 11};
    sp_rng rng;
    sp_rng_seed(&rng, 10);
    float *x = malloc(sizeof(float) * NMAX * COLS), *want = malloc(sizeof(float) * NMAX * ROWS),
          *got = malloc(sizeof(float) * NMAX * ROWS);
    uint8_t *wq = malloc(ROWS * (COLS / SP_QK_K) * 210), *xq = malloc(ROWS * (COLS / SP_QK_K) * 210);
    random_acts(&rng, x, NMAX * COLS);
    for (int k = 0; k < 5; k++) {
        sp_matrix w = {.type = xt[k], .rows = ROWS, .cols = COLS, .data = wq,
                       .row_bytes = (size_t)sp_dtype_row_bytes(xt[k], COLS)};
        random_blocks(&rng, xt[k], wq, ROWS * (COLS / SP_QK_K));
        sp_matrix x16 = w;
        sp_matrix_copy_rows(&w, SP_LAYOUT_K_X16, xq, 0, 32);
        sp_matrix_copy_rows(&w, SP_LAYOUT_K_X16, xq, 32, ROWS);
        x16.data = xq;
        x16.layout = SP_LAYOUT_K_X16;
        cr_assert(memcmp(wq, xq, ROWS * w.row_bytes), "regrouping left the bytes as they were");
        for (int lv = 0; lv < sp_simd_count(); lv++) {
            sp_simd_force(lv);
            sp_matrix odd = w;
            odd.rows = ROWS - 1;
            cr_assert_eq(sp_matrix_best_layout(&w), sp_simd_k_x16(xt[k]) ? SP_LAYOUT_K_X16 : SP_LAYOUT_FILE);
            cr_assert_eq(sp_matrix_best_layout(&odd), SP_LAYOUT_FILE);
            setenv("SHARDPIPE_REPACK", "0", 1);
            cr_assert_eq(sp_matrix_best_layout(&w), SP_LAYOUT_FILE);
            unsetenv("SHARDPIPE_REPACK");
            for (int p = SP_PATH_DOT; p <= SP_PATH_SGEMM; p++)
                for (int nth = 1; nth <= 2; nth++)
                    for (int c = 0; c < 4; c++) {
                        sp_matmul_ctx ctx;
                        sp_matmul_init(&ctx, nth);
                        ctx.force = (sp_matmul_path)p;
                        for (int i = 0; i < ns[c] * ROWS; i++) got[i] = NAN;
                        sp_matmul(&ctx, &w, x, ns[c], want);
                        sp_matmul(&ctx, &x16, x, ns[c], got);
                        sp_matmul_free(&ctx);
                        cr_assert(!memcmp(want, got, sizeof(float) * ns[c] * ROWS),
                                  "%s %s, %s path, %d threads, %d rows: regrouped rows differ", sp_simd_level_name(lv),
                                  sp_dtype_name(xt[k]), p == SP_PATH_DOT ? "dot" : "sgemm", nth, ns[c]);
                    }
        }
        sp_simd_force(sp_simd_count() - 1);
    }
    free(x), free(want), free(got), free(wq), free(xq);
}

/* Every level's Q8_K quantizer writes the portable one's bytes: random
 * rows of varied scale, an all-zero block, and values on rounding ties
 * (x / d = k + 0.5 exactly: amax 127, so d = 1). */
Test(quant_k, q8_K_quantizer_same_bytes_at_every_level)
{
    enum { NB = 12, N = NB * SP_QK_K };
    sp_rng rng;
    sp_rng_seed(&rng, 11);
    float *x = malloc(N * sizeof(float));
    sp_block_q8_K *want = malloc(NB * sizeof *want), *got = malloc(NB * sizeof *got);
    random_acts(&rng, x, N);
    memset(x + SP_QK_K, 0, SP_QK_K * sizeof(float));
    for (int i = 0; i < SP_QK_K; i++) x[2 * SP_QK_K + i] = i == 0 ? 127.0f : (float)(i % 64) - 31.5f;
    memset(want, 0, NB * sizeof *want);
    sp_quantize_row_q8_K_ref(x, want, N);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        memset(got, 0, NB * sizeof *got);
        sp_quantize_row_q8_K(x, got, N);
        for (int b = 0; b < NB; b++)
            cr_assert(!memcmp(&got[b], &want[b], sizeof got[b]), "%s: Q8_K block %d differs from the portable one",
                      sp_simd_level_name(lv), b);
    }
    sp_simd_force(sp_simd_count() - 1);
    free(x), free(want), free(got);
}
