/* bench_dot.c - single-thread matvec throughput of the Q8_0, Q4_0 and IQ4_NL dot
 * kernels at every SIMD level, in GB/s of weight bytes streamed.
 *
 * It cycles through enough 2048x2048 matrices to hold ~64 MB of weights
 * (more than the L3 of most small machines), so the figure includes the
 * memory stream the way decode sees it; a second figure repeats the first
 * CACHED_ROWS rows of one matrix (295 KB of Q4_0, 557 KB of Q8_0: resident
 * in L2), which shows the kernel's compute speed.
 * A third table sweeps the row length at the fastest level: rows of n
 * columns streamed from a SWEEP_MIB buffer in huge pages (as the engine
 * keeps its weights), once against the row's own n-element activations
 * (n / 128 packed groups of 256 bytes) and once in pieces of at most
 * 2048 columns that all reuse one piece-long (<= 4 KB) activation. The weight stream is the
 * same in both; only the activation footprint differs, so a gap between
 * the two columns is the activations losing their place in L1 to the
 * stream (see "Where decode time goes" in benchmarks/README.md).
 * Built with the benchmarks:
 *   cmake -S . -B build-bench -DSHARDPIPE_BENCH=ON && cmake --build build-bench --target bench_dot
 *   build-bench/benchmarks/bench_dot */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/quant_iq4nl.h"
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

static float dot_iq4nl(int64_t n, const void *w, const sp_q8_group *a)
{
    return sp_vec_dot_iq4_nl_q8g(n, w, a);
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

#define SWEEP_MIB 512

/* Seconds for the best of three passes over `rows` rows of `cols` columns;
 * piece = cols: one dot per row, else cols / piece dots per row, each with
 * the same piece-long activation. */
static double sweep_run(dot_fn dot, const uint8_t *w, long rows, int cols, int piece, size_t block_bytes,
                        const sp_q8_group *act, float *out)
{
    size_t row_bytes = (size_t)cols / SP_QK * block_bytes, piece_bytes = (size_t)piece / SP_QK * block_bytes;
    double best = 1e30;
    for (int pass = 0; pass < 3; pass++) {
        double t0 = sp_now();
        for (long r = 0; r < rows; r++)
            for (int c = 0; c < cols; c += piece)
                out[r & 1023] += dot(piece, w + (size_t)r * row_bytes + (size_t)c / piece * piece_bytes, act);
        double t = sp_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static void sweep(sp_rng *rng, float *out)
{
    static const int cols[] = {1024, 2048, 4096, 5632, 8192, 16384};
    const int n_cols = (int)(sizeof cols / sizeof cols[0]), max_cols = 16384;
    size_t bytes = (size_t)SWEEP_MIB << 20;
    uint8_t *w = sp_huge_alloc_or_abort(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)sp_rng_u64(rng);
    for (size_t b = 0; b + sizeof(sp_block_q4_0) <= bytes; b += sizeof(sp_block_q4_0)) {
        uint16_t d = sp_f32_to_fp16(0.01f);
        memcpy(w + b, &d, 2);
    }
    float *x = malloc(max_cols * sizeof(float));
    for (int i = 0; i < max_cols; i++) x[i] = sp_rng_normal(rng);
    sp_q8_group *act = sp_alloc(sizeof(sp_q8_group) * sp_q8_group_count(max_cols));
    sp_quantize_row_q8g(x, act, max_cols);
    sp_simd_force(sp_simd_count() - 1);
    printf("\nQ4_0 at %s, one thread, %d MiB in huge pages: stream GB/s by row length\n",
           sp_simd_level_name(sp_simd_count() - 1), SWEEP_MIB);
    printf("%8s %14s %24s\n", "columns", "own act.", "one piece's act. reused");
    for (int i = 0; i < n_cols; i++) {
        /* the largest whole number of groups up to 2048 columns that divides the row */
        int piece = 2048;
        while (cols[i] % piece) piece -= 128;
        size_t row_bytes = (size_t)cols[i] / SP_QK * sizeof(sp_block_q4_0);
        long rows = (long)(bytes / row_bytes);
        double own = sweep_run(dot_q4, w, rows, cols[i], cols[i], sizeof(sp_block_q4_0), act, out);
        double reused = sweep_run(dot_q4, w, rows, cols[i], piece, sizeof(sp_block_q4_0), act, out);
        printf("%8d %14.2f %14.2f (pieces of %d)\n", cols[i], rows * row_bytes / own / 1e9,
               rows * row_bytes / reused / 1e9, piece);
    }
    free(x);
    free(act);
    sp_huge_free(w, bytes);
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
        {"IQ4_NL", sizeof(sp_block_iq4_nl), dot_iq4nl},
    };
    printf("%-6s %-14s %12s %12s\n", "type", "level", "stream GB/s", "cached GB/s");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
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
    sweep(&rng, out);
    printf("(checksum %g)\n", (double)out[0]);
    free(out);
    free(act);
    return 0;
}
