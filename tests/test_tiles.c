/* test_tiles.c - the prompt GEMM tiles (sp_q8g_tiles) give every weight row
 * x activation row the bits of the single-row dot, at every SIMD level that
 * has them: Q8_0 (weights of -128 included) and Q4_0 in the file layout and
 * regrouped (sp_block_q4_0x16), rows with and without a partial last
 * group, short rows, rows of several passes over the groups, any number of
 * weight rows (past SP_Q8G_TILES_MAX_ROWS too) and activation rows (partial
 * register tiles). A level without tiles must say so (return 0) and leave
 * y alone. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/util.h"

enum { MAX_NB = 536, NW = 17, NA = 9 };

static void random_row(sp_rng *r, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = (sp_rng_f32(r) - 0.5f) * (1.0f + (float)(i % 7));
}

Test(tiles, equal_single_rows_bit_for_bit_every_level)
{
    /* up to 134 groups: several passes of 64 (more than four activation rows) too */
    const int counts[] = {1, 3, 4, 5, 16, 20, 23, 67, 100, 176, 200, 401, 536};
    const int nws[] = {1, 2, 3, 16, 17}, nas[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int64_t nmax = (int64_t)MAX_NB * SP_QK, gmax = sp_q8_group_count(nmax);
    size_t rb8 = sizeof(sp_block_q8_0) * MAX_NB, rb4 = sizeof(sp_block_q4_0) * MAX_NB;
    uint8_t *w8 = sp_alloc(rb8 * NW), *w4 = sp_alloc(rb4 * NW), *x4 = sp_alloc(rb4 * NW);
    sp_q8_group *g = sp_alloc(sizeof(sp_q8_group) * (size_t)gmax * NA);
    float *x = sp_alloc(sizeof(float) * (size_t)nmax), *y = sp_alloc(sizeof(float) * NA * NW);
    sp_rng rng;
    sp_rng_seed(&rng, 22);
    int with_tiles = 0;
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        int has = 0;
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            const int nb = counts[c];
            const int64_t n = (int64_t)nb * SP_QK;
            for (int r = 0; r < NW; r++) {
                random_row(&rng, x, n);
                sp_quantize_row(SP_DTYPE_Q8_0, x, w8 + r * rb8, n);
                sp_quantize_row(SP_DTYPE_Q4_0, x, w4 + r * rb4, n);
                sp_q4_0x16_from_q4_0((const sp_block_q4_0 *)(w4 + r * rb4), x4 + r * rb4, n);
            }
            memset(((sp_block_q8_0 *)(w8 + rb8))->qs, -128, 8); /* row 1 */
            for (int i = 0; i < NA; i++) {
                random_row(&rng, x, n);
                sp_quantize_row_q8g(x, g + (size_t)i * gmax, n);
            }
            for (int kind = 0; kind < 3; kind++) {
                const sp_dtype type = kind == 0 ? SP_DTYPE_Q8_0 : SP_DTYPE_Q4_0;
                const uint8_t *w = kind == 0 ? w8 : kind == 1 ? w4 : x4;
                const size_t rb = kind == 0 ? rb8 : rb4;
                for (size_t iw = 0; iw < sizeof nws / sizeof nws[0]; iw++)
                    for (size_t ia = 0; ia < sizeof nas / sizeof nas[0]; ia++) {
                        const int nw = nws[iw], na = nas[ia];
                        for (int k = 0; k < NA * NW; k++) y[k] = -1.0f;
                        int done = sp_q8g_tiles(type, kind == 2, n, w, rb, nw, g, gmax, na, y, NW);
                        if (!done) {
                            for (int k = 0; k < NA * NW; k++) cr_assert_eq(y[k], -1.0f, "%s wrote y without tiles", sp_simd_name());
                            continue;
                        }
                        has = 1;
                        for (int i = 0; i < na; i++)
                            for (int r = 0; r < nw; r++) {
                                const sp_q8_group *a = g + (size_t)i * gmax;
                                float one = kind == 0   ? sp_vec_dot_q8_0_q8g(n, (const void *)(w8 + r * rb8), a)
                                            : kind == 1 ? sp_vec_dot_q4_0_q8g(n, (const void *)(w4 + r * rb4), a)
                                                        : sp_vec_dot_q4_0x16_q8g(n, x4 + r * rb4, a);
                                float got = y[i * NW + r];
                                cr_assert(memcmp(&got, &one, sizeof one) == 0,
                                          "%s %s %d blocks, %d weight rows x %d activation rows: row %d x %d: tiles "
                                          "%a, single row %a",
                                          sp_simd_name(), kind == 0 ? "q8_0" : kind == 1 ? "q4_0" : "q4_0x16", nb, nw,
                                          na, r, i, got, one);
                            }
                        for (int k = na * NW; k < NA * NW; k++) cr_assert_eq(y[k], -1.0f, "wrote past row %d", na);
                    }
            }
        }
        with_tiles += has;
    }
    fprintf(stderr, "tiles: %d level(s) checked\n", with_tiles);
    if (!with_tiles) printf("SKIP: no SIMD level of this CPU has GEMM tiles; only the refusals were checked\n");
    free(w8), free(w4), free(x4), free(g), free(x), free(y);
}
