/* simd.c - picks the vec_dot and row dequantization kernels once per
 * process by CPU feature detection and owns the list of SIMD levels (see
 * quant.h).
 *
 * A level is a named set of kernels. The list holds, slowest first, every
 * level that is both compiled in and supported by this CPU; the fastest is
 * chosen before main() runs (a constructor), so the choice never races with
 * the worker threads. Tests and benchmarks walk the list with
 * sp_simd_count/sp_simd_force to compare every level with the reference.
 * It also picks how far ahead the int8 kernels prefetch the weights
 * (sp_prefetch_ahead, dot.h), which depends on the core, not the level. */
#include "shardpipe/quant.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "dot_k.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux arch/arm64 uapi hwcap bit */
#endif
#endif

typedef struct sp_simd_level {
    const char *name;
    /* int8 dots: one weight row against na = 1..SP_DOT_ROWS packed
     * activation rows; a single-row dot is na = 1 */
    void (*rows_q8_0)(int64_t, const sp_block_q8_0 *, const sp_q8_group *, int64_t, int, float *);
    void (*rows_q4_0)(int64_t, const sp_block_q4_0 *, const sp_q8_group *, int64_t, int, float *);
    /* a whole tile of sp_block_q4_0x16 rows (sp_vec_dot_q4_0x16_q8g_tile);
     * NULL: the portable loop (and the loader keeps the file layout) */
    void (*tile_q4_0x16)(int64_t, const void *, size_t, long, const sp_q8_group *, int64_t, int, float *, int64_t);
    float (*dot_f32)(int64_t, const float *, const float *);
    void (*dequant_q8_0)(const sp_block_q8_0 *, float *, int64_t);
    void (*dequant_q4_0)(const sp_block_q4_0 *, float *, int64_t);
    void (*dequant_f16)(const uint16_t *, float *, int64_t);
    float (*dot_f16_f32)(int64_t, const uint16_t *, const float *);
    void (*mad_f16)(int64_t, float *, const uint16_t *, float);
    void (*quantize_q8g)(const float *, sp_q8_group *, int64_t);   /* NULL: the scalar one */
    /* attention over the fp16 KV cache: scores for the heads of a KV
     * group, values for one head over a block of positions; NULL: loops
     * over dot_f16_f32 / mad_f16 (the same bits by definition) */
    void (*attn_scores)(int, int, const uint16_t *, int64_t, const float *, int, float, float *, int64_t);
    void (*attn_values)(int, int, const uint16_t *, int64_t, const float *, float *);
    void (*round_f16)(float *, int64_t); /* NULL: sp_f32_to_fp16 and back per value */
    /* 1 where quantized weights take the int8 tiles at every micro-batch
     * size, never dequantize + sgemm (matmul.c says why) */
    int int8_prompts;
    /* e^x, SwiGLU and softmax rows in double lanes (dot.h); NULL: the
     * scalar loops */
    void (*exp_f32)(float *, const float *, int64_t);
    void (*swiglu_f32)(float *, const float *, int64_t);
    void (*softmax_f32)(float *, int64_t);
    /* K-quant rows kernels by type (dot.h); NULL array or entry: scalar */
    const sp_rows_k_fn *rows_k;
    /* tiles on sp_k_x16 rows, Q2_K .. Q6_K; NULL: the portable tile (and
     * the loader keeps the file layout) */
    sp_tile_k_x16_fn tile_q2_k_x16, tile_q3_k_x16, tile_q4_k_x16, tile_q5_k_x16, tile_q6_k_x16;
    void (*quantize_q8_K)(const float *, sp_block_q8_K *, int64_t); /* NULL: the portable one */
    /* the prompt GEMM tiles for Q8_0 / Q4_0 (sp_q8g_tiles); NULL: none */
    void (*tiles_q8g)(int, int, int64_t, const void *, size_t, long, const sp_q8_group *, int64_t, int, float *,
                      int64_t);
} sp_simd_level;

static void dequantize_row_f16_scalar(const uint16_t *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = sp_fp16_to_f32(x[i]);
}

/* The scalar level's rows: the portable single-row dot once per row. */
static void rows_q8_0_scalar(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a, int64_t stride, int na,
                             float *out)
{
    for (int i = 0; i < na; i++) out[i] = sp_vec_dot_q8_0_q8g_scalar(n, w, a + i * stride);
}

static void rows_q4_0_scalar(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a, int64_t stride, int na,
                             float *out)
{
    for (int i = 0; i < na; i++) out[i] = sp_vec_dot_q4_0_q8g_scalar(n, w, a + i * stride);
}

static void rows_q4_0x16_scalar(int64_t n, const void *w, const sp_q8_group *a, int64_t stride, int na,
                                float *out)
{
    for (int i = 0; i < na; i++) out[i] = sp_vec_dot_q4_0x16_q8g_scalar(n, w, a + i * stride);
}

static const sp_simd_level level_scalar = {
    "scalar", rows_q8_0_scalar, rows_q4_0_scalar, NULL, sp_vec_dot_f32_scalar,
    sp_dequantize_row_q8_0, sp_dequantize_row_q4_0, dequantize_row_f16_scalar,
    sp_vec_dot_f16_f32_scalar, sp_vec_mad_f16_ref, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

#if defined(__x86_64__)
static const sp_simd_level level_avx2 = {
    "avx2", sp_vec_dot_q8_0_q8g_rows_avx2, sp_vec_dot_q4_0_q8g_rows_avx2, NULL, sp_vec_dot_f32_avx2,
    sp_dequantize_row_q8_0_avx2, sp_dequantize_row_q4_0_avx2, sp_dequantize_row_f16_avx2,
    sp_vec_dot_f16_f32_avx2, sp_vec_mad_f16_avx2,
    sp_quantize_row_q8g_avx2, sp_attn_scores_f16_avx2, sp_attn_values_f16_avx2,
    sp_round_f16_avx2, 1, sp_exp_f32_avx2, sp_swiglu_f32_avx2, sp_softmax_f32_avx2, sp_rows_k_avx2,
    sp_tile_q2_k_x16_avx2, sp_tile_q3_k_x16_avx2, sp_tile_q4_k_x16_avx2, sp_tile_q5_k_x16_avx2,
    sp_tile_q6_k_x16_avx2, sp_quantize_row_q8_K_avx2, NULL,
};
static const sp_simd_level level_avxvnni = {
    "avxvnni", sp_vec_dot_q8_0_q8g_rows_avxvnni, sp_vec_dot_q4_0_q8g_rows_avxvnni, NULL, sp_vec_dot_f32_avx2,
    sp_dequantize_row_q8_0_avx2, sp_dequantize_row_q4_0_avx2, sp_dequantize_row_f16_avx2,
    sp_vec_dot_f16_f32_avx2, sp_vec_mad_f16_avx2,
    sp_quantize_row_q8g_avx2, sp_attn_scores_f16_avx2, sp_attn_values_f16_avx2,
    sp_round_f16_avx2, 1, sp_exp_f32_avx2, sp_swiglu_f32_avx2, sp_softmax_f32_avx2, sp_rows_k_avx2,
    sp_tile_q2_k_x16_avxvnni, sp_tile_q3_k_x16_avxvnni, sp_tile_q4_k_x16_avxvnni, sp_tile_q5_k_x16_avxvnni,
    sp_tile_q6_k_x16_avxvnni, sp_quantize_row_q8_K_avx2, NULL,
};
static const sp_simd_level level_avx512vnni = {
    "avx512vnni", sp_vec_dot_q8_0_q8g_rows_avx512, sp_vec_dot_q4_0_q8g_rows_avx512, NULL, sp_vec_dot_f32_avx2,
    sp_dequantize_row_q8_0_avx2, sp_dequantize_row_q4_0_avx2, sp_dequantize_row_f16_avx2,
    sp_vec_dot_f16_f32_avx2, sp_vec_mad_f16_avx2,
    sp_quantize_row_q8g_avx2, sp_attn_scores_f16_avx512, sp_attn_values_f16_avx512,
    sp_round_f16_avx2, 1, sp_exp_f32_avx512, sp_swiglu_f32_avx512, sp_softmax_f32_avx512, sp_rows_k_avx512,
    NULL, NULL, NULL, NULL, NULL, sp_quantize_row_q8_K_avx2,
    sp_q8g_tiles_avx512,
};
static const sp_simd_level level_avx512vbmi = {
    "avx512vbmi", sp_vec_dot_q8_0_q8g_rows_avx512, sp_vec_dot_q4_0_q8g_rows_avx512vbmi,
    sp_vec_dot_q4_0x16_q8g_tile_avx512vbmi, sp_vec_dot_f32_avx2,
    sp_dequantize_row_q8_0_avx2, sp_dequantize_row_q4_0_avx2, sp_dequantize_row_f16_avx2,
    sp_vec_dot_f16_f32_avx2, sp_vec_mad_f16_avx2,
    sp_quantize_row_q8g_avx2, sp_attn_scores_f16_avx512, sp_attn_values_f16_avx512,
    sp_round_f16_avx2, 1, sp_exp_f32_avx512, sp_swiglu_f32_avx512, sp_softmax_f32_avx512, sp_rows_k_avx512,
    sp_tile_q2_k_x16_avx512vbmi, sp_tile_q3_k_x16_avx512vbmi, sp_tile_q4_k_x16_avx512vbmi,
    sp_tile_q5_k_x16_avx512vbmi, sp_tile_q6_k_x16_avx512vbmi,
    sp_quantize_row_q8_K_avx2, sp_q8g_tiles_avx512,
};
#endif

#if defined(__aarch64__)
static const sp_simd_level level_neon = {
    "neon", sp_vec_dot_q8_0_q8g_rows_neon, sp_vec_dot_q4_0_q8g_rows_neon, NULL, sp_vec_dot_f32_neon,
    sp_dequantize_row_q8_0_neon, sp_dequantize_row_q4_0_neon, sp_dequantize_row_f16_neon,
    sp_vec_dot_f16_f32_neon, sp_vec_mad_f16_neon,
    NULL, sp_attn_scores_f16_neon, sp_attn_values_f16_neon, sp_round_f16_neon, 1, sp_exp_f32_neon,
    sp_swiglu_f32_neon, sp_softmax_f32_neon, sp_rows_k_neon,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};
static const sp_simd_level level_neon_dotprod = {
    "neon-dotprod", sp_vec_dot_q8_0_q8g_rows_neon_dotprod, sp_vec_dot_q4_0_q8g_rows_neon_dotprod, NULL,
    sp_vec_dot_f32_neon,
    sp_dequantize_row_q8_0_neon, sp_dequantize_row_q4_0_neon, sp_dequantize_row_f16_neon,
    sp_vec_dot_f16_f32_neon, sp_vec_mad_f16_neon,
    NULL, sp_attn_scores_f16_neon, sp_attn_values_f16_neon, sp_round_f16_neon, 1, sp_exp_f32_neon,
    sp_swiglu_f32_neon, sp_softmax_f32_neon, sp_rows_k_neon_dotprod,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};
#endif

#define MAX_LEVELS 6

/* Bytes ahead of the weight stream that the int8 kernels prefetch; see
 * dot.h for the figures behind each default. */
int sp_prefetch_ahead = 3072;

/* The per-CPU default, then SHARDPIPE_PREFETCH=<bytes> (0 = off) to tune
 * a board by hand (benchmarks/prefetch.sh sweeps it). */
static void pick_prefetch(void)
{
#if defined(__x86_64__)
    /* measured on Zen 4 (7 KB best); the one Intel core measured, a Xeon,
     * was best at 3 KB; other AMD and Intel cores are not measured */
    if (__builtin_cpu_is("amd")) sp_prefetch_ahead = 7168;
#endif
    const char *want = getenv("SHARDPIPE_PREFETCH");
    if (want && *want) {
        char *end;
        long v = strtol(want, &end, 10);
        if (*end || v < 0 || v > (1 << 20))
            fprintf(stderr, "shardpipe: SHARDPIPE_PREFETCH=%s is not a byte count in 0..1048576; using %d\n", want,
                    sp_prefetch_ahead);
        else
            sp_prefetch_ahead = (int)v;
    }
}

static const sp_simd_level *levels[MAX_LEVELS];
static int n_levels;
static const sp_simd_level *active;

#if defined(__x86_64__) && defined(__clang__)
#include <cpuid.h>
/* clang (14, used by the fuzz build of tests/fuzz) does not know "f16c" and
 * "avxvnni" in __builtin_cpu_supports: read their CPUID bits instead
 * (leaf 1 ECX bit 29; leaf 7 sub-leaf 1 EAX bit 4). The OS support of the
 * AVX state is what the avx2 check above them already asks libgcc. */
static int cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit)
{
    unsigned r[4];
    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return 0;
    return (r[reg] >> bit) & 1;
}
#define SP_CPU_F16C cpuid_bit(1, 0, 2, 29)
#define SP_CPU_AVXVNNI cpuid_bit(7, 1, 0, 4)
#else
#define SP_CPU_F16C __builtin_cpu_supports("f16c")
#define SP_CPU_AVXVNNI __builtin_cpu_supports("avxvnni")
#endif

static void detect(void)
{
    n_levels = 0;
    levels[n_levels++] = &level_scalar;
#if defined(__x86_64__)
    __builtin_cpu_init();
    /* libgcc also checks that the OS saves the AVX / AVX-512 registers */
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && SP_CPU_F16C;
    if (avx2) levels[n_levels++] = &level_avx2;
    if (avx2 && SP_CPU_AVXVNNI) levels[n_levels++] = &level_avxvnni;
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni")) {
        levels[n_levels++] = &level_avx512vnni;
        if (__builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni"))
            levels[n_levels++] = &level_avx512vbmi;
    }
#elif defined(__aarch64__)
    /* Advanced SIMD is mandatory on aarch64; the dot product instructions
     * (SDOT, Armv8.2 optional, 8.4 mandatory) are announced by the kernel. */
    levels[n_levels++] = &level_neon;
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP)
        levels[n_levels++] = &level_neon_dotprod;
#endif
    active = levels[n_levels - 1];
    pick_prefetch();
    /* SHARDPIPE_SIMD=<level> picks a slower level (to compare kernels on
     * one board, or to rule one out); every level gives the same bits */
    const char *want = getenv("SHARDPIPE_SIMD");
    if (want && *want) {
        int found = 0;
        for (int i = 0; i < n_levels; i++)
            if (!strcmp(levels[i]->name, want)) active = levels[i], found = 1;
        if (!found) {
            fprintf(stderr, "shardpipe: SHARDPIPE_SIMD=%s is not a SIMD level of this CPU; levels here:", want);
            for (int i = 0; i < n_levels; i++) fprintf(stderr, " %s", levels[i]->name);
            fprintf(stderr, "; using %s\n", active->name);
        }
    }
}

__attribute__((constructor)) static void simd_init(void)
{
    if (!active) detect();
}

/* Only needed if a kernel runs from another constructor before ours. */
static const sp_simd_level *current(void)
{
    if (!active) detect();
    return active;
}

float sp_vec_dot_q8_0_q8g(int64_t n, const sp_block_q8_0 *w, const sp_q8_group *a)
{
    float r;
    current()->rows_q8_0(n, w, a, 0, 1, &r);
    return r;
}

float sp_vec_dot_q4_0_q8g(int64_t n, const sp_block_q4_0 *w, const sp_q8_group *a)
{
    float r;
    current()->rows_q4_0(n, w, a, 0, 1, &r);
    return r;
}

float sp_vec_dot_q4_0x16_q8g(int64_t n, const void *w, const sp_q8_group *a)
{
    float r;
    sp_vec_dot_q4_0x16_q8g_tile(n, w, 0, 1, a, 0, 1, &r, 0);
    return r;
}

/* The tiles: weight rows r = 0..nw-1 (row_bytes apart) against na
 * activation rows, one rows-kernel call per weight row (regrouped Q4_0:
 * the portable loop, for levels without a tile kernel). */
enum tile_kind { TILE_Q8_0, TILE_Q4_0, TILE_Q4_0X16 };

static void tile(enum tile_kind kind, int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                 int64_t stride, int na, float *y, int64_t y_stride)
{
    const sp_simd_level *l = current();
    float out[SP_DOT_ROWS];
    if (na > SP_DOT_ROWS) na = SP_DOT_ROWS;
    for (long r = 0; r < nw; r++) {
        const void *wr = (const char *)w + r * row_bytes;
        switch (kind) {
        case TILE_Q8_0: l->rows_q8_0(n, wr, a, stride, na, out); break;
        case TILE_Q4_0: l->rows_q4_0(n, wr, a, stride, na, out); break;
        case TILE_Q4_0X16: rows_q4_0x16_scalar(n, wr, a, stride, na, out); break;
        }
        for (int i = 0; i < na; i++) y[i * y_stride + r] = out[i];
    }
}

void sp_vec_dot_q8_0_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                              int64_t stride, int na, float *y, int64_t y_stride)
{
    tile(TILE_Q8_0, n, w, row_bytes, nw, a, stride, na, y, y_stride);
}

void sp_vec_dot_q4_0_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                              int64_t stride, int na, float *y, int64_t y_stride)
{
    tile(TILE_Q4_0, n, w, row_bytes, nw, a, stride, na, y, y_stride);
}

void sp_vec_dot_q4_0x16_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                                 int64_t stride, int na, float *y, int64_t y_stride)
{
    const sp_simd_level *l = current();
    if (na > SP_DOT_ROWS) na = SP_DOT_ROWS;
    if (l->tile_q4_0x16) l->tile_q4_0x16(n, w, row_bytes, nw, a, stride, na, y, y_stride);
    else tile(TILE_Q4_0X16, n, w, row_bytes, nw, a, stride, na, y, y_stride);
}

int sp_q8g_tiles_available(void)
{
    return current()->tiles_q8g != NULL;
}

int sp_q8g_tiles(sp_dtype type, int x16, int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                 int64_t stride, int na, float *y, int64_t y_stride)
{
    const sp_simd_level *l = current();
    if (!l->tiles_q8g || (type != SP_DTYPE_Q8_0 && type != SP_DTYPE_Q4_0)) return 0;
    for (long r = 0; r < nw; r += SP_Q8G_TILES_MAX_ROWS)
        l->tiles_q8g(type == SP_DTYPE_Q8_0, x16, n, (const char *)w + r * row_bytes, row_bytes,
                     nw - r < SP_Q8G_TILES_MAX_ROWS ? nw - r : SP_Q8G_TILES_MAX_ROWS, a, stride, na, y + r, y_stride);
    return 1;
}

/* The dots on Q8_0 blocks pack the activations on the stack, a chunk of
 * PACK_BLOCKS blocks at a time (a multiple of 4, so chunks are whole
 * groups), and add the chunks' dots. matmul packs once per row instead. */
#define PACK_BLOCKS 64

float sp_vec_dot_q8_0_q8_0(int64_t n, const sp_block_q8_0 *w, const sp_block_q8_0 *a)
{
    _Alignas(64) sp_q8_group g[PACK_BLOCKS / 4];
    float sum = 0.0f;
    for (int64_t b = 0; b < n / SP_QK; b += PACK_BLOCKS) {
        int64_t len = n - b * SP_QK < PACK_BLOCKS * SP_QK ? n - b * SP_QK : PACK_BLOCKS * SP_QK;
        sp_q8_group_pack(a + b, g, len);
        sum += sp_vec_dot_q8_0_q8g(len, w + b, g);
    }
    return sum;
}

float sp_vec_dot_q4_0_q8_0(int64_t n, const sp_block_q4_0 *w, const sp_block_q8_0 *a)
{
    _Alignas(64) sp_q8_group g[PACK_BLOCKS / 4];
    float sum = 0.0f;
    for (int64_t b = 0; b < n / SP_QK; b += PACK_BLOCKS) {
        int64_t len = n - b * SP_QK < PACK_BLOCKS * SP_QK ? n - b * SP_QK : PACK_BLOCKS * SP_QK;
        sp_q8_group_pack(a + b, g, len);
        sum += sp_vec_dot_q4_0_q8g(len, w + b, g);
    }
    return sum;
}

float sp_vec_dot_f32(int64_t n, const float *w, const float *a)
{
    return current()->dot_f32(n, w, a);
}

float sp_vec_dot_f16_f32(int64_t n, const uint16_t *w, const float *a)
{
    return current()->dot_f16_f32(n, w, a);
}

void sp_vec_mad_f16(int64_t n, float *y, const uint16_t *x, float a)
{
    current()->mad_f16(n, y, x, a);
}

void sp_exp_f32(float *y, const float *x, int64_t n)
{
    const sp_simd_level *l = current();
    if (l->exp_f32) l->exp_f32(y, x, n);
    else sp_exp_f32_scalar(y, x, n);
}

void sp_swiglu_f32(float *g, const float *u, int64_t n)
{
    const sp_simd_level *l = current();
    if (l->swiglu_f32) l->swiglu_f32(g, u, n);
    else sp_swiglu_f32_scalar(g, u, n);
}

void sp_softmax_f32(float *s, int64_t n)
{
    const sp_simd_level *l = current();
    if (l->softmax_f32) l->softmax_f32(s, n);
    else sp_softmax_f32_scalar(s, n);
}

void sp_round_f16(float *x, int64_t n)
{
    const sp_simd_level *l = current();
    if (l->round_f16) {
        l->round_f16(x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) x[i] = sp_fp16_to_f32(sp_f32_to_fp16(x[i]));
}

void sp_attn_scores_f16(int hd, int n, const uint16_t *k, int64_t k_stride, const float *q, int nq, float scale,
                        float *s, int64_t s_stride)
{
    const sp_simd_level *l = current();
    if (l->attn_scores) {
        l->attn_scores(hd, n, k, k_stride, q, nq, scale, s, s_stride);
        return;
    }
    for (int p = 0; p < n; p++)
        for (int g = 0; g < nq; g++)
            s[g * s_stride + p] = l->dot_f16_f32(hd, k + (int64_t)p * k_stride, q + (int64_t)g * hd) * scale;
}

/* Blocks of 64 positions outside, heads inside, so a block's V rows
 * (8 KB at head size 64) stay in L1 for the KV group's heads; each head
 * still adds its positions in order. */
#define ATTN_VALUES_BLOCK 64

void sp_attn_values_f16(int hd, int n, const uint16_t *v, int64_t v_stride, const float *w, int nq,
                        int64_t w_stride, float *y)
{
    const sp_simd_level *l = current();
    for (int p0 = 0; p0 < n; p0 += ATTN_VALUES_BLOCK) {
        int len = n - p0 < ATTN_VALUES_BLOCK ? n - p0 : ATTN_VALUES_BLOCK;
        const uint16_t *vb = v + (int64_t)p0 * v_stride;
        for (int g = 0; g < nq; g++) {
            const float *wg = w + g * w_stride + p0;
            float *yg = y + (int64_t)g * hd;
            if (l->attn_values)
                l->attn_values(hd, len, vb, v_stride, wg, yg);
            else
                for (int p = 0; p < len; p++) l->mad_f16(hd, yg, vb + (int64_t)p * v_stride, wg[p]);
        }
    }
}

void sp_simd_dequantize_row_q8_0(const sp_block_q8_0 *x, float *y, int64_t n)
{
    current()->dequant_q8_0(x, y, n);
}

void sp_simd_dequantize_row_q4_0(const sp_block_q4_0 *x, float *y, int64_t n)
{
    current()->dequant_q4_0(x, y, n);
}

void sp_simd_dequantize_row_f16(const uint16_t *x, float *y, int64_t n)
{
    current()->dequant_f16(x, y, n);
}

void sp_quantize_row_q8g(const float *x, sp_q8_group *g, int64_t n)
{
    const sp_simd_level *l = current();
    if (l->quantize_q8g) l->quantize_q8g(x, g, n);
    else sp_quantize_row_q8g_scalar(x, g, n);
}

/* ---- K-quants ---- */

static void rows_k_scalar(sp_dtype type, int64_t n, const void *w, const sp_block_q8_K *a, int64_t stride, int na,
                          float *out)
{
    for (int i = 0; i < na; i++) out[i] = sp_vec_dot_k_q8_K_ref(type, n, w, a + i * stride);
}

static sp_rows_k_fn rows_k_of(const sp_simd_level *l, sp_dtype type)
{
    return l->rows_k ? l->rows_k[type - SP_DTYPE_Q2_K] : NULL;
}

float sp_vec_dot_k_q8_K(sp_dtype type, int64_t n, const void *w, const sp_block_q8_K *a)
{
    float r;
    sp_rows_k_fn f = rows_k_of(current(), type);
    if (f) f(n, w, a, 0, 1, &r);
    else rows_k_scalar(type, n, w, a, 0, 1, &r);
    return r;
}

void sp_vec_dot_k_q8_K_tile(sp_dtype type, int64_t n, const void *w, size_t row_bytes, long nw,
                            const sp_block_q8_K *a, int64_t stride, int na, float *y, int64_t y_stride)
{
    sp_rows_k_fn f = rows_k_of(current(), type);
    float out[SP_DOT_ROWS];
    if (na > SP_DOT_ROWS) na = SP_DOT_ROWS;
    for (long r = 0; r < nw; r++) {
        const void *wr = (const char *)w + r * row_bytes;
        if (f) f(n, wr, a, stride, na, out);
        else rows_k_scalar(type, n, wr, a, stride, na, out);
        for (int i = 0; i < na; i++) y[i * y_stride + r] = out[i];
    }
}

static sp_tile_k_x16_fn tile_k_x16_of(const sp_simd_level *l, sp_dtype type)
{
    return type == SP_DTYPE_Q2_K   ? l->tile_q2_k_x16
           : type == SP_DTYPE_Q3_K ? l->tile_q3_k_x16
           : type == SP_DTYPE_Q4_K ? l->tile_q4_k_x16
           : type == SP_DTYPE_Q5_K ? l->tile_q5_k_x16
           : type == SP_DTYPE_Q6_K ? l->tile_q6_k_x16
                                   : NULL;
}

void sp_vec_dot_k_x16_q8_K_tile(sp_dtype type, int64_t n, const void *w, long nw, const sp_block_q8_K *a,
                                int64_t stride, int na, float *y, int64_t y_stride)
{
    sp_tile_k_x16_fn f = tile_k_x16_of(current(), type);
    if (na > SP_KX16_ROWS) na = SP_KX16_ROWS;
    if (f) f(n, w, nw, a, stride, na, y, y_stride);
    else sp_vec_dot_k_x16_q8_K_tile_scalar(type, n, w, nw, a, stride, na, y, y_stride);
}

void sp_quantize_row_q8_K(const float *x, sp_block_q8_K *y, int64_t n)
{
    const sp_simd_level *l = current();
    if (l->quantize_q8_K) l->quantize_q8_K(x, y, n);
    else sp_quantize_row_q8_K_ref(x, y, n);
}

int sp_simd_k_x16(sp_dtype type)
{
    return tile_k_x16_of(current(), type) != NULL;
}

int sp_simd_q4_0x16(void)
{
    return current()->tile_q4_0x16 != NULL;
}

int sp_simd_int8_prompts(void)
{
    return current()->int8_prompts;
}

const char *sp_simd_name(void)
{
    return current()->name;
}

int sp_simd_prefetch(void)
{
    current();
    return sp_prefetch_ahead;
}

int sp_simd_count(void)
{
    current();
    return n_levels;
}

const char *sp_simd_level_name(int i)
{
    current();
    return i >= 0 && i < n_levels ? levels[i]->name : NULL;
}

void sp_simd_force(int i)
{
    current();
    if (i >= 0 && i < n_levels) active = levels[i];
}
