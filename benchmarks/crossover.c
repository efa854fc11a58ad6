/* crossover.c - where the sgemm path of sp_matmul starts beating the dot
 * path, for the matrix shapes of TinyLlama-1.1B, and the throughput figures
 * of both paths.
 *
 * For Q8_0 and Q4_0 weights, 1 and 2 threads, and n = 1..128 activation
 * rows (plus 24 and 48 to place the crossover), it times sp_matmul forced onto each path (median of REPS runs after
 * a warm-up) and prints the per-shape crossover and the crossover for a
 * whole layer (wq, wk, wv, wo, w1, w2, w3 summed), which is what the
 * default sgemm_min_rows in matmul.c should be.
 *
 * Decode streams weights from DRAM, so each timed run uses the next of
 * several copies of the matrix, together larger than any L3 (WEIGHT_POOL).
 *
 * Build and run:
 *   cmake -S . -B build -DSHARDPIPE_BENCH=ON && cmake --build build -j2 --target crossover
 *   build/benchmarks/crossover            (about two minutes on 2 cores)
 * Set SHARDPIPE_BENCH_REPS to change the number of timed runs (default 7). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/matmul.h"
#include "shardpipe/quant.h"
#include "shardpipe/util.h"

#define WEIGHT_POOL (96u << 20) /* bytes of weight copies to cycle through */
#define MAX_COPIES 64

typedef struct shape {
    const char *name;
    int64_t rows, cols;
    int per_layer;   /* how many matrices of this shape a layer has */
} shape;

static const shape shapes[] = {
    {"2048x2048  (wq wo)", 2048, 2048, 2},
    {"2048->5632 (w1 w3)", 5632, 2048, 2},
    {"5632->2048 (w2)   ", 2048, 5632, 1},
    {"2048->256  (wk wv)", 256, 2048, 2},
};
#define N_SHAPES (int)(sizeof shapes / sizeof *shapes)

static const int batch[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 128};
#define N_BATCH (int)(sizeof batch / sizeof *batch)

static int reps = 7;

/* Copies of one random matrix of the given type, enough to defeat caches. */
typedef struct weights {
    sp_matrix m[MAX_COPIES];
    int copies, next;
    float *f32;   /* the dequantized matrix, for the plain sgemm figure */
} weights;

static void make_weights(weights *w, sp_dtype type, int64_t rows, int64_t cols, uint64_t seed)
{
    sp_rng rng;
    sp_rng_seed(&rng, seed);
    size_t rb = (size_t)sp_dtype_row_bytes(type, (uint64_t)cols), bytes = rb * (size_t)rows;
    uint8_t *data = sp_alloc(bytes);
    float *row = sp_alloc(sizeof(float) * (size_t)cols);
    w->f32 = sp_alloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) row[k] = 0.02f * sp_rng_normal(&rng);
        sp_quantize_row(type, row, data + r * rb, cols);
        sp_dequantize_row(type, data + r * rb, w->f32 + r * cols, cols);
    }
    w->copies = (int)((WEIGHT_POOL + bytes - 1) / bytes);
    if (w->copies > MAX_COPIES) w->copies = MAX_COPIES;
    for (int c = 0; c < w->copies; c++) {
        uint8_t *copy = c == 0 ? data : sp_alloc(bytes);
        if (c) memcpy(copy, data, bytes);
        w->m[c] = (sp_matrix){.type = type, .rows = rows, .cols = cols, .data = copy, .row_bytes = rb};
    }
    w->next = 0;
    free(row);
}

static void free_weights(weights *w)
{
    for (int c = 0; c < w->copies; c++) free((void *)w->m[c].data);
    free(w->f32);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Median seconds of one sp_matmul on the given path. */
static double time_matmul(sp_matmul_ctx *ctx, weights *w, sp_matmul_path path, const float *x, int n, float *y)
{
    double t[64];
    ctx->force = path;
    for (int k = -1; k < reps; k++) {
        const sp_matrix *m = &w->m[w->next];
        w->next = (w->next + 1) % w->copies;
        double t0 = sp_now();
        sp_matmul(ctx, m, x, n, y);
        if (k >= 0) t[k] = sp_now() - t0;
    }
    return median(t, reps);
}

static double time_plain_sgemm(const weights *w, const float *x, int n, float *y)
{
    double t[64];
    const sp_matrix *m = &w->m[0];
    for (int k = -1; k < reps; k++) {
        double t0 = sp_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)m->rows, (int)m->cols, 1.0f, x,
                    (int)m->cols, w->f32, (int)m->cols, 0.0f, y, (int)m->rows);
        if (k >= 0) t[k] = sp_now() - t0;
    }
    return median(t, reps);
}

/* Smallest batch size from which the sgemm path is faster for every larger
 * batch size measured; 0 when it never is. */
static int crossover(const double *dot, const double *gemm)
{
    int from = 0;
    for (int b = N_BATCH - 1; b >= 0 && gemm[b] < dot[b]; b--) from = batch[b];
    return from;
}

int main(void)
{
    const char *env = getenv("SHARDPIPE_BENCH_REPS");
    if (env && atoi(env) > 0) reps = atoi(env) < 64 ? atoi(env) : 63;

    int64_t max_cols = 5632, max_rows = 5632;
    float *x = sp_alloc(sizeof(float) * 128 * (size_t)max_cols);
    float *y = sp_alloc(sizeof(float) * 128 * (size_t)max_rows);
    sp_rng rng;
    sp_rng_seed(&rng, 42);
    for (int64_t i = 0; i < 128 * max_cols; i++) x[i] = sp_rng_normal(&rng);

    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(la);
    }
    printf("sp_matmul crossover, SIMD level %s, median of %d runs, load average %.2f\n", sp_simd_name(), reps,
           load[0]);
    printf("cells: dot ms / sgemm ms per call\n");

    const sp_dtype types[] = {SP_DTYPE_Q8_0, SP_DTYPE_Q4_0};
    double fig_gbs[2][2] = {{0}}, fig_gflops[2][2] = {{0}}, fig_plain[2] = {0};

    for (int t = 0; t < 2; t++) {
        weights w[N_SHAPES];
        for (int s = 0; s < N_SHAPES; s++) make_weights(&w[s], types[t], shapes[s].rows, shapes[s].cols, 7 + s);

        for (int nth = 1; nth <= 2; nth++) {
            sp_matmul_ctx ctx;
            sp_matmul_init(&ctx, nth);
            double layer_dot[N_BATCH] = {0}, layer_gemm[N_BATCH] = {0};

            printf("\n%s, %d thread%s\n%-20s", sp_dtype_name(types[t]), nth, nth > 1 ? "s" : "", "shape");
            for (int b = 0; b < N_BATCH; b++) printf("  n=%-11d", batch[b]);
            printf("  crossover\n");

            for (int s = 0; s < N_SHAPES; s++) {
                double dot[N_BATCH], gemm[N_BATCH];
                printf("%-20s", shapes[s].name);
                for (int b = 0; b < N_BATCH; b++) {
                    dot[b] = time_matmul(&ctx, &w[s], SP_PATH_DOT, x, batch[b], y);
                    gemm[b] = time_matmul(&ctx, &w[s], SP_PATH_SGEMM, x, batch[b], y);
                    layer_dot[b] += shapes[s].per_layer * dot[b];
                    layer_gemm[b] += shapes[s].per_layer * gemm[b];
                    printf("  %6.2f/%-6.2f", 1e3 * dot[b], 1e3 * gemm[b]);
                    fflush(stdout);
                }
                printf("  n >= %d\n", crossover(dot, gemm));

                /* the figures, on the w1/w3 shape */
                if (s == 1) {
                    double bytes = (double)w[s].m[0].row_bytes * (double)w[s].m[0].rows;
                    double flops = 2.0 * 128 * (double)shapes[s].rows * (double)shapes[s].cols;
                    fig_gbs[t][nth - 1] = bytes / dot[0] * 1e-9;
                    fig_gflops[t][nth - 1] = flops / gemm[N_BATCH - 1] * 1e-9;
                }
            }
            printf("%-20s", "whole layer");
            for (int b = 0; b < N_BATCH; b++) printf("  %6.2f/%-6.2f", 1e3 * layer_dot[b], 1e3 * layer_gemm[b]);
            printf("  n >= %d\n", crossover(layer_dot, layer_gemm));
            sp_matmul_free(&ctx);
        }

        if (t == 0) {
            /* plain sgemm on f32 weights of the w1/w3 shape, n = 128 */
            for (int nth = 1; nth <= 2; nth++) {
                openblas_set_num_threads(nth);
                double flops = 2.0 * 128 * (double)shapes[1].rows * (double)shapes[1].cols;
                fig_plain[nth - 1] = flops / time_plain_sgemm(&w[1], x, 128, y) * 1e-9;
            }
        }
        for (int s = 0; s < N_SHAPES; s++) free_weights(&w[s]);
    }

    printf("\nfigures for 2048->5632 (5632 rows x 2048 cols)\n");
    printf("                        1 thread   2 threads\n");
    for (int t = 0; t < 2; t++)
        printf("%-5s n=1 weights GB/s   %8.2f   %8.2f\n", sp_dtype_name(types[t]), fig_gbs[t][0], fig_gbs[t][1]);
    for (int t = 0; t < 2; t++)
        printf("%-5s n=128 sgemm GFLOPS %8.2f   %8.2f   (%.0f%% / %.0f%% of plain f32 sgemm)\n",
               sp_dtype_name(types[t]), fig_gflops[t][0], fig_gflops[t][1], 100 * fig_gflops[t][0] / fig_plain[0],
               100 * fig_gflops[t][1] / fig_plain[1]);
    printf("plain cblas_sgemm f32 n=128 GFLOPS %8.2f   %8.2f   (OpenBLAS threads = our threads)\n", fig_plain[0],
           fig_plain[1]);
    free(x);
    free(y);
    return 0;
}
