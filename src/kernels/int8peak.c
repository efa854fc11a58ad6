/* int8peak.c - the int8 dot-product ceiling of one core (membench.h): a
 * tight loop of the SIMD level's int8 multiply-add instruction on
 * registers only, 16 independent accumulators so that neither latency nor
 * memory limits it, timed in the calling thread's CPU time (a shared host
 * takes the core away now and then; CPU time leaves those gaps out, as it
 * should for a figure the prompt's own CPU time is compared with).
 *
 * The instruction per level, and the int8 multiply-adds it counts:
 *   avx512vnni, avx512vbmi  vpdpbusd zmm   64
 *   avxvnni                 vpdpbusd ymm   32
 *   avx2                    vpmaddubsw ymm 32 (the kernels need a vpmaddwd
 *                           and an add after it: the ceiling is generous)
 *   neon-dotprod            sdot .4s       16
 *   neon                    smlal .8h       8 (likewise needs more to widen)
 * The scalar level has no such instruction: 0. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "shardpipe/membench.h"
#include "shardpipe/quant.h"

#define LOOP_ITERS 1000000L /* x 16 instructions: a few ms per rep */

static double thread_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
#define X16(op, reg)                                                                                   \
    op(reg, 2) op(reg, 3) op(reg, 4) op(reg, 5) op(reg, 6) op(reg, 7) op(reg, 8) op(reg, 9) op(reg, 10) \
        op(reg, 11) op(reg, 12) op(reg, 13) op(reg, 14) op(reg, 15) op(reg, 16) op(reg, 17)
#define DPBUSD(reg, r) "vpdpbusd %%" #reg "0, %%" #reg "1, %%" #reg #r "\n\t"
#define DPBUSD_VEX(reg, r) "%{vex%} vpdpbusd %%" #reg "0, %%" #reg "1, %%" #reg #r "\n\t"
#define MADDUBS(reg, r) "vpmaddubsw %%" #reg "0, %%" #reg "1, %%" #reg #r "\n\t"
#define CLOBBERS                                                                                          \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
        "xmm13", "xmm14", "xmm15", "cc"
/* zmm16/17 need the AVX-512 register file, named only where it is enabled */
#define CLOBBERS512 CLOBBERS, "xmm16", "xmm17"

__attribute__((target("avx512f,avx512vnni"))) static void loop_vnni512(long n)
{
    __asm__ volatile("vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
                     "1:\n\t" X16(DPBUSD, zmm) "dec %0\n\tjnz 1b"
                     : "+r"(n)::CLOBBERS512);
}

/* registers 16 and 17 do not exist in VEX encoding: 14 accumulators */
#define X14(op, reg)                                                                                   \
    op(reg, 2) op(reg, 3) op(reg, 4) op(reg, 5) op(reg, 6) op(reg, 7) op(reg, 8) op(reg, 9) op(reg, 10) \
        op(reg, 11) op(reg, 12) op(reg, 13) op(reg, 14) op(reg, 15)

__attribute__((target("avx2,avxvnni"))) static void loop_avxvnni(long n)
{
    __asm__ volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
                     "1:\n\t" X14(DPBUSD_VEX, ymm) X14(DPBUSD_VEX, ymm) "dec %0\n\tjnz 1b"
                     : "+r"(n)::CLOBBERS);
}

__attribute__((target("avx2"))) static void loop_avx2(long n)
{
    __asm__ volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
                     "1:\n\t" X14(MADDUBS, ymm) X14(MADDUBS, ymm) "dec %0\n\tjnz 1b"
                     : "+r"(n)::CLOBBERS);
}
#endif

#if defined(__aarch64__)
#define X16A(op) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15) op(16) op(17)
#define SDOT(r) "sdot v" #r ".4s, v0.16b, v1.16b\n\t"
#define SMLAL(r) "smlal v" #r ".8h, v0.8b, v1.8b\n\t"
#define CLOBBERS_A                                                                                          \
    "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", \
        "v17", "cc"

__attribute__((target("arch=armv8.2-a+dotprod"))) static void loop_sdot(long n)
{
    __asm__ volatile("movi v0.16b, #0\n\tmovi v1.16b, #0\n\t"
                     "1:\n\t" X16A(SDOT) "subs %0, %0, #1\n\tb.ne 1b"
                     : "+r"(n)::CLOBBERS_A);
}

static void loop_smlal(long n)
{
    __asm__ volatile("movi v0.16b, #0\n\tmovi v1.16b, #0\n\t"
                     "1:\n\t" X16A(SMLAL) "subs %0, %0, #1\n\tb.ne 1b"
                     : "+r"(n)::CLOBBERS_A);
}
#endif

/* The loop of the level in use, its instruction's name and the int8
 * multiply-adds one instruction does (16 or 28 instructions per pass). */
typedef struct peak_loop {
    const char *level, *instr;
    void (*run)(long);
    int macs, per_pass;
} peak_loop;

static const peak_loop loops[] = {
#if defined(__x86_64__)
    {"avx512vbmi", "vpdpbusd zmm", loop_vnni512, 64, 16},
    {"avx512vnni", "vpdpbusd zmm", loop_vnni512, 64, 16},
    {"avxvnni", "vpdpbusd ymm", loop_avxvnni, 32, 28},
    {"avx2", "vpmaddubsw ymm", loop_avx2, 32, 28},
#endif
#if defined(__aarch64__)
    {"neon-dotprod", "sdot", loop_sdot, 16, 16},
    {"neon", "smlal", loop_smlal, 8, 16},
#endif
    {NULL, NULL, NULL, 0, 0},
};

static const peak_loop *level_loop(void)
{
    const char *name = sp_simd_name();
    for (const peak_loop *l = loops; l->level; l++)
        if (!strcmp(l->level, name)) return l;
    return NULL;
}

const char *sp_int8_peak_instr(void)
{
    const peak_loop *l = level_loop();
    return l ? l->instr : "none";
}

double sp_int8_peak_gmacs(int reps)
{
    const peak_loop *l = level_loop();
    if (!l) return 0.0;
    double best = 0.0;
    for (int r = -1; r < reps; r++) { /* one untimed pass first: clocks up */
        double t = thread_seconds();
        l->run(LOOP_ITERS);
        t = thread_seconds() - t;
        if (r >= 0 && t > 0.0) {
            double g = (double)LOOP_ITERS * l->per_pass * l->macs / t / 1e9;
            if (g > best) best = g;
        }
    }
    return best;
}
