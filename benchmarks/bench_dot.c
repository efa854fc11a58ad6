/* bench_dot.c - single-thread matvec throughput of the Q8_0 and Q4_0 dot
 * kernels at every SIMD level, in GB/s of weight bytes streamed.
 *
 * It cycles through enough 2048x2048 matrices to hold ~64 MB of weights
 * (more than the L3 of most small machines), so the figure includes the
 * memory stream the way decode sees it; a second figure repeats the first
 * CACHED_ROWS rows of one matrix (295 KB of Q4_0, 557 KB of Q8_0: resident
 * in L2), which shows the kernel's compute speed.
 * Not part of the CMake build; after building the project:
 *   cc -O2 -std=gnu11 -Iinclude benchmarks/bench_dot.c \
 *      build/libsp_kernels.a build/libsp_gguf.a build/libsp_base.a -lm -o bench_dot
 *   ./bench_dot */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/util.h"

#define ROWS 2048
#define COLS 2048
#define TOTAL_BYTES (64u << 20)
#define CACHED_ROWS 256

/* The activations are packed once, as matmul's dot path does. */
typedef float (*dot_fn)(int64_t, const void *, const sp_q8_group *);

static float dot_q8(int64_t n, const void *w, const sp_q8_group *a)
{
    return sp_vec_dot_q8_0_q8g(n, w, a);
}

static float dot_q4(int64_t n, const void *w, const sp_q8_group *a)
{
    return sp_vec_dot_q4_0_q8g(n, w, a);
}

/* Seconds per pass over `count` matrices, best of a few passes. */
static double run(dot_fn dot, uint8_t **mats, int count, int rows, size_t row_bytes,
                  const sp_q8_group *act, float *out)
{
    double best = 1e30;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = sp_now();
        for (int m = 0; m < count; m++)
            for (int r = 0; r < rows; r++)
                out[r] += dot(COLS, mats[m] + (size_t)r * row_bytes, act);
        double t = sp_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(void)
{
    sp_rng rng;
    sp_rng_seed(&rng, 1);
    float x[COLS];
    for (int i = 0; i < COLS; i++) x[i] = sp_rng_normal(&rng);
    sp_block_q8_0 blocks[COLS / SP_QK];
    sp_quantize_row_q8_0(x, blocks, COLS);
    sp_q8_group *act = sp_alloc(sizeof(sp_q8_group) * sp_q8_group_count(COLS));
    sp_q8_group_pack(blocks, act, COLS);
    float *out = calloc(ROWS, sizeof(float));

    const struct {
        const char *name;
        size_t block_bytes;
        dot_fn dot;
    } types[] = {
        {"Q8_0", sizeof(sp_block_q8_0), dot_q8},
        {"Q4_0", sizeof(sp_block_q4_0), dot_q4},
    };
    printf("%-6s %-14s %12s %12s\n", "type", "level", "stream GB/s", "cached GB/s");
    for (size_t t = 0; t < 2; t++) {
        size_t row_bytes = COLS / SP_QK * types[t].block_bytes;
        size_t mat_bytes = row_bytes * ROWS;
        int count = (int)((TOTAL_BYTES + mat_bytes - 1) / mat_bytes);
        uint8_t **mats = malloc((size_t)count * sizeof *mats);
        for (int m = 0; m < count; m++) {
            mats[m] = sp_alloc(mat_bytes);
            for (size_t i = 0; i < mat_bytes; i++) mats[m][i] = (uint8_t)sp_rng_u64(&rng);
            /* sane scales and Q8_0 quants in [-127, 127] */
            for (size_t b = 0; b < mat_bytes; b += types[t].block_bytes) {
                uint16_t d = sp_f32_to_fp16(0.01f);
                memcpy(mats[m] + b, &d, 2);
                if (types[t].block_bytes == sizeof(sp_block_q8_0))
                    for (size_t j = 2; j < types[t].block_bytes; j++)
                        if (mats[m][b + j] == 0x80) mats[m][b + j] = 0x81;
            }
        }
        for (int lv = 0; lv < sp_simd_count(); lv++) {
            sp_simd_force(lv);
            double ts = run(types[t].dot, mats, count, ROWS, row_bytes, act, out);
            uint8_t *same[64];
            for (int i = 0; i < 64; i++) same[i] = mats[0];
            double tc = run(types[t].dot, same, 64, CACHED_ROWS, row_bytes, act, out);
            printf("%-6s %-14s %12.2f %12.2f\n", types[t].name, sp_simd_level_name(lv),
                   (double)mat_bytes * count / ts / 1e9, (double)row_bytes * CACHED_ROWS * 64 / tc / 1e9);
        }
        for (int m = 0; m < count; m++) free(mats[m]);
        free(mats);
    }
    printf("(checksum %g)\n", (double)out[0]);
    free(out);
    free(act);
    return 0;
}
