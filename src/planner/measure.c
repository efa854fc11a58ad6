/* measure.c - `shardpipe profile`: measures this board with the engine's
 * own kernels.
 *
 *   memory read bandwidth   membench's read test over a buffer far larger
 *                           than the last-level cache;
 *   matvec per weight type  sp_matmul over random matrices of TinyLlama's
 *                           FFN shape (5632 x 2048), enough of them to
 *                           exceed the caches so the weights come from DRAM
 *                           as in decode: GB/s with 1 row (the decode case),
 *                           GFLOPS with 8 rows on the dot path (each weight
 *                           row reused from L1: the kernel's arithmetic),
 *                           and with 32 and 128 rows (prompt chunks: the
 *                           tiles unpack each weight row once per 4 rows,
 *                           and the fixed costs of a call are spread wider)
 *                           over as few matrices as keep a pass near 1
 *                           GFLOP - they are compute-bound, the caches do
 *                           not matter;
 *   sgemm                   membench's cblas_sgemm at 1, 8, 32, 128 rows of
 *                           the same shape;
 *   attention               the engine's attention kernel (sp_attn_group_f16)
 *                           for 8 rows against 512 cached positions of a
 *                           Llama-3.2-1B-like layer (8 KV heads of 4 query
 *                           heads, head size 64), threaded over (row, KV
 *                           head) pairs as the engine does: GFLOPS at 4 x
 *                           q_dim flops per row and position. The cache
 *                           (1 MB) stays in L2/L3, as a layer's does while
 *                           its chunk's rows go through it.
 * Each figure is the median of the timed passes after a warm-up pass. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "shardpipe/matmul.h"
#include "shardpipe/membench.h"
#include "shardpipe/profile.h"
#include "shardpipe/quant.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

#define MV_ROWS 5632
#define MV_COLS 2048
#define GFLOPS_ROWS 8

#define ATT_HD 64
#define ATT_GROUP 4
#define ATT_KV_HEADS 8
#define ATT_POS 512
#define ATT_ROWS 8

/* ---- what the system says about itself ---- */

/* Value of the first "key : value" line of /proc/cpuinfo with this key. */
static bool cpuinfo(const char *key, char *out, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    size_t kl = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) || (line[kl] != ' ' && line[kl] != '\t' && line[kl] != ':')) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(out, size, "%s", v);
        found = true;
    }
    fclose(f);
    return found;
}

/* The CPU features the kernels (or a future kernel) care about. */
static void simd_features(sp_profile *p)
{
    static const char *const wanted[] = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                                         "avx512_vnni", "avx_vnni", "avx512_bf16", "asimd", "asimddp",
                                         "asimdhp", "fphp", "i8mm", "bf16", "sve", NULL};
    char flags[4096] = "";
    if (!cpuinfo("flags", flags, sizeof flags)) cpuinfo("Features", flags, sizeof flags);
    for (int i = 0; wanted[i]; i++) {
        /* whole words only */
        size_t wl = strlen(wanted[i]);
        for (const char *s = flags; (s = strstr(s, wanted[i])); s += wl) {
            bool start = s == flags || s[-1] == ' ', end = s[wl] == ' ' || s[wl] == '\0';
            if (!start || !end) continue;
            size_t len = strlen(p->simd);
            snprintf(p->simd + len, sizeof p->simd - len, "%s%s", len ? " " : "", wanted[i]);
            break;
        }
    }
}

static void describe_system(sp_profile *p)
{
    struct utsname u;
    if (uname(&u) == 0) snprintf(p->arch, sizeof p->arch, "%.31s", u.machine);
    if (!cpuinfo("model name", p->cpu, sizeof p->cpu) && !cpuinfo("Model", p->cpu, sizeof p->cpu) &&
        !cpuinfo("Hardware", p->cpu, sizeof p->cpu))
        snprintf(p->cpu, sizeof p->cpu, "unknown");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    p->cores = n > 0 ? (int)n : 1;
    p->ram_total = sp_meminfo_bytes("MemTotal");
    p->ram_available = sp_meminfo_bytes("MemAvailable");
    if (p->ram_available > p->ram_total) p->ram_available = p->ram_total;
    char host[64] = "this-board";
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *c)) *c = '-';
    snprintf(p->name, sizeof p->name, "%s", host);
    time_t now = time(NULL);
    strftime(p->date, sizeof p->date, "%Y-%m-%d", gmtime(&now));
    p->measured = true;
    simd_features(p);
}

/* ---- timing ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Random weights that are valid numbers of type t (no NaN, no denormals,
 * which would slow the float paths): random bits with a fixed exponent
 * range; quantized blocks get random quants and a sane scale. */
static void fill_weights(sp_dtype t, void *buf, size_t bytes, sp_rng *r)
{
    uint64_t *w = buf;
    for (size_t i = 0; i < bytes / 8; i++) w[i] = sp_rng_u64(r);
    if (t == SP_DTYPE_F16) {
        uint16_t *h = buf;
        for (size_t i = 0; i < bytes / 2; i++) h[i] = (uint16_t)((h[i] & 0x83ffu) | 0x2c00u); /* |x| in [2^-4, 2^-3) */
    } else if (t == SP_DTYPE_F32) {
        uint32_t *f = buf;
        for (size_t i = 0; i < bytes / 4; i++) f[i] = (f[i] & 0x807fffffu) | 0x3c000000u; /* |x| in [2^-7, 2^-6) */
    } else {
        /* the fp16 scales: at the start of Q8_0 / Q4_0 / IQ4_NL / Q4_K (d, dmin)
         * blocks, at the end of Q6_K's */
        size_t block = sp_dtype_row_bytes(t, sp_dtype_block(t));
        size_t at = t == SP_DTYPE_Q6_K ? block - 2 : 0;
        int n = t == SP_DTYPE_Q4_K ? 2 : 1;
        uint16_t d = sp_f32_to_fp16(0.01f);
        for (size_t off = 0; off + block <= bytes; off += block)
            for (int i = 0; i < n; i++) memcpy((char *)buf + off + at + 2 * i, &d, 2);
    }
}

/* Puts W's rows in the layout the engine would load them in
 * (sp_model_load_weights), so the profile times the engine's kernels. */
static void regroup(sp_matrix *w)
{
    sp_layout layout = sp_matrix_best_layout(w);
    if (layout == SP_LAYOUT_FILE) return;
    size_t bytes = (size_t)w->rows * w->row_bytes;
    sp_matrix file = *w; /* a copy of the rows as filled, to regroup from */
    file.data = memcpy(sp_alloc(bytes), w->data, bytes);
    sp_matrix_copy_rows(&file, layout, (void *)w->data, 0, w->rows);
    free((void *)file.data);
    w->layout = layout;
}

typedef struct mv_set {
    sp_matrix *m;
    int count;
    float *x, *y;
} mv_set;

/* Median seconds of a pass of sp_matmul over every matrix with n rows. */
static double time_pass(sp_matmul_ctx *ctx, const mv_set *s, int n, int reps)
{
    double t[32];
    if (reps > 32) reps = 32;
    for (int r = -1; r < reps; r++) {
        double t0 = sp_now();
        for (int i = 0; i < s->count; i++) sp_matmul(ctx, &s->m[i], s->x, n, s->y);
        if (r >= 0) t[r] = sp_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

/* ---- attention ---- */

typedef struct att_job {
    const uint16_t *k, *v; /* ATT_POS rows of ATT_KV_HEADS x ATT_HD */
    const float *q;        /* ATT_ROWS rows of q_dim */
    float *scratch, *out;
} att_job;

static void att_part(void *arg, int ith, int nth)
{
    att_job *j = arg;
    const int kv_dim = ATT_KV_HEADS * ATT_HD, q_dim = ATT_GROUP * kv_dim;
    float *scratch = j->scratch + (size_t)ith * ATT_GROUP * (ATT_POS + ATT_HD);
    long lo, hi;
    sp_split_range(ATT_ROWS * ATT_KV_HEADS, ith, nth, 1, &lo, &hi);
    for (long t = lo; t < hi; t++) {
        int row = (int)(t / ATT_KV_HEADS), kvh = (int)(t % ATT_KV_HEADS);
        size_t at = (size_t)row * q_dim + (size_t)kvh * ATT_GROUP * ATT_HD;
        sp_attn_group_f16(ATT_HD, ATT_POS, j->k + kvh * ATT_HD, j->v + kvh * ATT_HD, kv_dim, j->q + at, ATT_GROUP,
                          0.125f, scratch, ATT_POS, j->out + at);
    }
}

/* GFLOPS of the attention kernel on `threads` threads (median of reps). */
static double attention_gflops(int threads, int reps, sp_rng *r)
{
    const size_t kv = (size_t)ATT_POS * ATT_KV_HEADS * ATT_HD, q = (size_t)ATT_ROWS * ATT_GROUP * ATT_KV_HEADS * ATT_HD;
    uint16_t *k = sp_alloc(kv * sizeof *k), *v = sp_alloc(kv * sizeof *v);
    for (size_t i = 0; i < kv; i++) {
        k[i] = sp_f32_to_fp16(0.5f * (float)sp_rng_normal(r));
        v[i] = sp_f32_to_fp16((float)sp_rng_normal(r));
    }
    att_job j = {k, v, sp_alloc(q * sizeof(float)),
                 sp_alloc((size_t)threads * ATT_GROUP * (ATT_POS + ATT_HD) * sizeof(float)),
                 sp_alloc(q * sizeof(float))};
    for (size_t i = 0; i < q; i++) ((float *)j.q)[i] = (float)sp_rng_normal(r);
    sp_pool *pool = sp_pool_new(threads);
    const int passes = 64; /* about 2 GFLOP per timing */
    double t[32], flops = 4.0 * ATT_GROUP * ATT_KV_HEADS * ATT_HD * ATT_POS * ATT_ROWS * passes;
    if (reps > 32) reps = 32;
    for (int rep = -1; rep < reps; rep++) {
        double t0 = sp_now();
        for (int p = 0; p < passes; p++) sp_pool_run(pool, att_part, &j);
        if (rep >= 0) t[rep] = sp_now() - t0;
    }
    sp_pool_free(pool);
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    free(k);
    free(v);
    free((void *)j.q);
    free(j.scratch);
    free(j.out);
    return flops / t[reps / 2] / 1e9;
}

typedef struct progress {
    const sp_measure_options *o;
    int step, steps;
} progress;

static void tick(progress *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tick(progress *pg, const char *fmt, ...)
{
    if (!pg->o->progress) return;
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    pg->o->progress(pg->o->progress_arg, what, (double)pg->step / pg->steps);
    pg->step++;
}

int sp_profile_measure(sp_profile *p, const sp_measure_options *o, sp_error *err)
{
    memset(p, 0, sizeof *p);
    describe_system(p);
    int max_t = o->max_threads > 0 ? o->max_threads : p->cores;
    if (max_t > p->cores)
        return sp_errorf(err, "--threads %d is more than the %d cores of this board; use at most %d", max_t, p->cores,
                         p->cores);
    /* thread counts: 1 and max (quick), plus the powers of two between (thorough) */
    int counts[SP_PROFILE_MAX_THREADS], nc = 0;
    counts[nc++] = 1;
    for (int t = 2; o->thorough && t < max_t && nc < SP_PROFILE_MAX_THREADS - 1; t *= 2) counts[nc++] = t;
    if (max_t > 1) counts[nc++] = max_t;
    /* one more count, kept in ascending order and once */
    int also = o->also_threads;
    bool have = also < 1 || also > max_t;
    for (int i = 0; i < nc; i++) have |= counts[i] == also;
    if (!have && nc < SP_PROFILE_MAX_THREADS) {
        int j = nc++;
        for (; j > 0 && counts[j - 1] > also; j--) counts[j] = counts[j - 1];
        counts[j] = also;
    }
    p->n_perf = nc;
    for (int i = 0; i < nc; i++) p->perf[i].threads = counts[i];

    size_t bw_bytes = o->thorough ? (size_t)1 << 30 : (size_t)256 << 20;
    size_t mv_bytes = o->thorough ? (size_t)512 << 20 : (size_t)160 << 20;
    int reps = o->thorough ? 9 : 3;
    progress pg = {o, 0, nc * (1 + SP_MV_COUNT + 2)};
    snprintf(p->origin, sizeof p->origin,
             "shardpipe profile%s: membench read %zu MiB; sp_matmul on random %dx%d matrices (%zu MiB per type) "
             "with the %s kernels (prefetch %d B ahead); cblas_sgemm (%s); median of %d",
             o->thorough ? " --thorough" : " (quick)", bw_bytes >> 20, MV_ROWS, MV_COLS, mv_bytes >> 20,
             sp_simd_name(), sp_simd_prefetch(), sp_blas_config(), reps);

    /* memory bandwidth, per thread count */
    for (int i = 0; i < nc; i++) {
        tick(&pg, "memory read bandwidth, %d thread%s", counts[i], counts[i] > 1 ? "s" : "");
        sp_pool *pool = sp_pool_new(counts[i]);
        p->perf[i].mem_read_gbs = sp_membw_read_gbs(pool, bw_bytes, reps);
        sp_pool_free(pool);
    }

    /* matvec: one buffer of random weights per type, every thread count, in
     * huge pages where the system has them, as the engine keeps its weights
     * (sp_model_load_weights) */
    static const sp_dtype types[SP_MV_COUNT] = {SP_DTYPE_Q8_0, SP_DTYPE_Q4_0, SP_DTYPE_F16, SP_DTYPE_F32,
                                                SP_DTYPE_Q4_K, SP_DTYPE_Q6_K, SP_DTYPE_IQ4_NL};
    size_t buf_bytes = mv_bytes;
    void *buf = sp_huge_alloc_or_abort(buf_bytes);
    mv_set s = {0};
    int max_rows = sp_tile_rows[SP_TILE_NROWS - 1];
    s.x = sp_alloc(sizeof(float) * (size_t)max_rows * MV_COLS);
    s.y = sp_alloc(sizeof(float) * (size_t)max_rows * MV_ROWS);
    sp_rng r;
    sp_rng_seed(&r, 42);
    for (int i = 0; i < max_rows * MV_COLS; i++) s.x[i] = sp_rng_normal(&r);
    for (int k = 0; k < SP_MV_COUNT; k++) {
        size_t row_bytes = sp_dtype_row_bytes(types[k], MV_COLS), mat_bytes = row_bytes * MV_ROWS;
        s.count = (int)(mv_bytes / mat_bytes);
        if (s.count < 1) s.count = 1;
        if ((size_t)s.count * mat_bytes > buf_bytes) {
            sp_huge_free(buf, buf_bytes);
            buf_bytes = mat_bytes;
            buf = sp_huge_alloc_or_abort(buf_bytes);
        }
        fill_weights(types[k], buf, (size_t)s.count * mat_bytes, &r);
        s.m = sp_alloc(sizeof(sp_matrix) * s.count);
        for (int i = 0; i < s.count; i++) {
            s.m[i] = (sp_matrix){types[k], MV_ROWS, MV_COLS, (char *)buf + (size_t)i * mat_bytes, row_bytes,
                                 SP_LAYOUT_FILE};
            regroup(&s.m[i]);
        }
        for (int i = 0; i < nc; i++) {
            tick(&pg, "%s matvec, %d thread%s", sp_mv_name((sp_mv_type)k), counts[i], counts[i] > 1 ? "s" : "");
            sp_matmul_ctx ctx;
            sp_matmul_init(&ctx, counts[i]);
            ctx.force = SP_PATH_DOT;
            double t1 = time_pass(&ctx, &s, 1, reps), t8 = time_pass(&ctx, &s, GFLOPS_ROWS, reps);
            p->perf[i].mv[k].gbs = (double)s.count * mat_bytes / t1 / 1e9;
            p->perf[i].mv[k].gflops = 2.0 * s.count * MV_ROWS * MV_COLS * GFLOPS_ROWS / t8 / 1e9;
            for (int j = 0; j < SP_TILE_NROWS; j++) {
                mv_set few = s;
                int n = sp_tile_rows[j];
                few.count = (int)(1e9 / (2.0 * MV_ROWS * MV_COLS * n)) + 1;
                if (few.count > s.count) few.count = s.count;
                double tn = time_pass(&ctx, &few, n, reps);
                p->perf[i].mv[k].tile_gflops[j] = 2.0 * few.count * MV_ROWS * MV_COLS * n / tn / 1e9;
            }
            sp_matmul_free(&ctx);
        }
        free(s.m);
    }
    sp_huge_free(buf, buf_bytes);
    free(s.x);
    free(s.y);

    /* sgemm at each row count */
    for (int i = 0; i < nc; i++) {
        tick(&pg, "sgemm, %d thread%s", counts[i], counts[i] > 1 ? "s" : "");
        for (int k = 0; k < SP_SGEMM_NROWS; k++)
            p->perf[i].sgemm_gflops[k] = sp_sgemm_gflops(sp_sgemm_rows[k], MV_ROWS, MV_COLS, counts[i], reps);
        /* the engine's crossover here (matmul.c: measured per SIMD level) */
        int cross = sp_matmul_default_min_rows(SP_DTYPE_Q4_0);
        p->perf[i].sgemm_min_rows = cross == SP_SGEMM_NEVER ? 0 : cross;
    }

    /* attention at each thread count */
    for (int i = 0; i < nc; i++) {
        tick(&pg, "attention, %d thread%s", counts[i], counts[i] > 1 ? "s" : "");
        p->perf[i].attention_gflops = attention_gflops(counts[i], reps, &r);
    }
    pg.step = pg.steps;
    tick(&pg, "done");
    return 0;
}
