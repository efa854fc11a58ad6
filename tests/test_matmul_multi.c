/* test_matmul_multi.c - sp_matmul_multi equals separate sp_matmul calls bit
 * for bit: with the shared quantized input (Q8_0/Q4_0 on the dot path), and
 * in its fallbacks (sgemm path, F32 weights). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/matmul.h"
#include "shardpipe/quant.h"
#include "shardpipe/util.h"

/* A rows x cols weight matrix of the given type with random values. */
static sp_matrix make_matrix(sp_dtype type, int64_t rows, int64_t cols, sp_rng *rng)
{
    float *f = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) f[i] = sp_rng_normal(rng);
    sp_matrix m = {.type = type, .rows = rows, .cols = cols};
    m.row_bytes = (size_t)sp_dtype_row_bytes(type, cols);
    uint8_t *d = malloc(m.row_bytes * rows);
    for (int64_t r = 0; r < rows; r++) {
        if (type == SP_DTYPE_Q8_0) sp_quantize_row_q8_0(f + r * cols, (sp_block_q8_0 *)(d + r * m.row_bytes), cols);
        else if (type == SP_DTYPE_Q4_0)
            sp_quantize_row_q4_0(f + r * cols, (sp_block_q4_0 *)(d + r * m.row_bytes), cols);
        else if (sp_dtype_is_k(type)) sp_quantize_row_k(type, f + r * cols, d + r * m.row_bytes, cols);
        else memcpy(d + r * m.row_bytes, f + r * cols, m.row_bytes);
    }
    free(f);
    m.data = d;
    return m;
}

/* Runs the three matrices through sp_matmul_multi and through sp_matmul one
 * by one on n rows, and compares every output bit for bit. */
static void check(const sp_dtype types[3], const int64_t rows[3], int64_t cols, int n, int threads,
                  sp_matmul_path force)
{
    sp_rng rng;
    sp_rng_seed(&rng, 7);
    sp_matrix w[3];
    const sp_matrix *wp[3];
    float *ya[3], *yb[3];
    for (int i = 0; i < 3; i++) {
        w[i] = make_matrix(types[i], rows[i], cols, &rng);
        wp[i] = &w[i];
        ya[i] = calloc((size_t)n * rows[i], sizeof(float));
        yb[i] = calloc((size_t)n * rows[i], sizeof(float));
    }
    float *x = malloc(sizeof(float) * n * cols);
    for (int64_t i = 0; i < n * cols; i++) x[i] = sp_rng_normal(&rng);

    sp_matmul_ctx ctx;
    sp_matmul_init(&ctx, threads);
    ctx.force = force;
    sp_matmul_multi(&ctx, wp, 3, x, n, ya);
    for (int i = 0; i < 3; i++) sp_matmul(&ctx, &w[i], x, n, yb[i]);
    for (int i = 0; i < 3; i++) {
        cr_assert(ya[i][0] != 0.0f, "matrix %d: output looks unwritten", i);
        cr_assert(memcmp(ya[i], yb[i], sizeof(float) * n * rows[i]) == 0,
                  "matrix %d (type %d, n=%d, %d threads, path %d): multi differs from sp_matmul", i,
                  (int)types[i], n, threads, (int)force);
    }
    sp_matmul_free(&ctx);
    for (int i = 0; i < 3; i++) {
        free((void *)w[i].data);
        free(ya[i]);
        free(yb[i]);
    }
    free(x);
}

Test(matmul_multi, shared_quantized_input_matches_separate_calls)
{
    const sp_dtype q8[3] = {SP_DTYPE_Q8_0, SP_DTYPE_Q8_0, SP_DTYPE_Q8_0};
    const sp_dtype mixed[3] = {SP_DTYPE_Q4_0, SP_DTYPE_Q8_0, SP_DTYPE_Q4_0};
    /* a Q4_K_M file's q, k (Q4_K) and v (Q6_K); and the two activation
     * formats at once (Q8_0 groups and Q8_K) */
    const sp_dtype q4_k_m[3] = {SP_DTYPE_Q4_K, SP_DTYPE_Q4_K, SP_DTYPE_Q6_K};
    const sp_dtype kmix[3] = {SP_DTYPE_Q2_K, SP_DTYPE_Q8_0, SP_DTYPE_Q5_K};
    const sp_dtype kmix2[3] = {SP_DTYPE_Q3_K, SP_DTYPE_Q4_0, SP_DTYPE_Q6_K};
    const int64_t rows[3] = {96, 40, 33};
    for (int threads = 1; threads <= 3; threads++)
        for (int n = 1; n <= 5; n += 2) {
            check(q8, rows, 256, n, threads, SP_PATH_DOT);
            check(mixed, rows, 256, n, threads, SP_PATH_DOT);
            check(q4_k_m, rows, 512, n, threads, SP_PATH_DOT);
            check(kmix, rows, 256, n, threads, SP_PATH_DOT);
            check(kmix2, rows, 768, n, threads, SP_PATH_DOT);
        }
}

Test(matmul_multi, fallbacks_match_separate_calls)
{
    const sp_dtype f32[3] = {SP_DTYPE_F32, SP_DTYPE_Q8_0, SP_DTYPE_F32};
    const sp_dtype q4[3] = {SP_DTYPE_Q4_0, SP_DTYPE_Q4_0, SP_DTYPE_Q4_0};
    const int64_t rows[3] = {64, 32, 48};
    check(f32, rows, 128, 3, 2, SP_PATH_DOT);
    check(q4, rows, 128, 3, 2, SP_PATH_SGEMM);
}

/* The dot path's threads claim row chunks as they go (matmul.c): every
 * output row is written exactly once, with the single-row dot's bits, for
 * row counts that are and are not multiples of the chunk, 1-4 threads,
 * alone and as several matrices claimed as one list. Outputs start as NaN,
 * so a row no thread claimed shows. */
Test(matmul_multi, claimed_rows_cover_every_output_once)
{
    const int64_t cols = 128, row_sets[3][3] = {{1, 17, 5}, {100, 333, 16}, {1000, 31, 48}};
    const sp_dtype types[3] = {SP_DTYPE_Q4_0, SP_DTYPE_Q8_0, SP_DTYPE_Q4_0};
    sp_rng rng;
    sp_rng_seed(&rng, 21);
    for (int set = 0; set < 3; set++) {
        sp_matrix w[3];
        const sp_matrix *wp[3];
        for (int i = 0; i < 3; i++) w[i] = make_matrix(types[i], row_sets[set][i], cols, &rng), wp[i] = &w[i];
        for (int n = 1; n <= 3; n += 2) {
            float *x = malloc(sizeof(float) * n * cols);
            for (int64_t i = 0; i < n * cols; i++) x[i] = sp_rng_normal(&rng);
            /* the reference: each row's single-row dot on X quantized and packed */
            sp_q8_group *g = malloc(sizeof(sp_q8_group) * sp_q8_group_count(cols) * n);
            for (int r = 0; r < n; r++) sp_quantize_row_q8g(x + r * cols, g + r * sp_q8_group_count(cols), cols);
            float *want[3], *got[3];
            for (int i = 0; i < 3; i++) {
                want[i] = malloc(sizeof(float) * n * w[i].rows);
                got[i] = malloc(sizeof(float) * n * w[i].rows);
                for (int r = 0; r < n; r++)
                    for (int64_t o = 0; o < w[i].rows; o++) {
                        const void *row = (const char *)w[i].data + o * w[i].row_bytes;
                        const sp_q8_group *a = g + r * sp_q8_group_count(cols);
                        want[i][r * w[i].rows + o] = types[i] == SP_DTYPE_Q8_0 ? sp_vec_dot_q8_0_q8g(cols, row, a)
                                                                              : sp_vec_dot_q4_0_q8g(cols, row, a);
                    }
            }
            for (int threads = 1; threads <= 4; threads++)
                for (int multi = 0; multi <= 1; multi++) {
                    for (int i = 0; i < 3; i++)
                        for (int64_t k = 0; k < n * w[i].rows; k++) got[i][k] = NAN;
                    sp_matmul_ctx ctx;
                    sp_matmul_init(&ctx, threads);
                    ctx.force = SP_PATH_DOT;
                    if (multi) sp_matmul_multi(&ctx, wp, 3, x, n, got);
                    else
                        for (int i = 0; i < 3; i++) sp_matmul(&ctx, &w[i], x, n, got[i]);
                    sp_matmul_free(&ctx);
                    for (int i = 0; i < 3; i++)
                        for (int64_t k = 0; k < n * w[i].rows; k++)
                            cr_assert(!memcmp(&got[i][k], &want[i][k], sizeof(float)),
                                      "rows %lld, n %d, %d threads, %s: output %lld is %g, single-row dot %g",
                                      (long long)w[i].rows, n, threads, multi ? "multi" : "alone", (long long)k,
                                      (double)got[i][k], (double)want[i][k]);
                }
            for (int i = 0; i < 3; i++) free(want[i]), free(got[i]);
            free(g);
            free(x);
        }
        for (int i = 0; i < 3; i++) free((void *)w[i].data);
    }
}
