/* util.c - clocks, memory figures, checked and huge-page allocation, RNG. */
#define _GNU_SOURCE
#include "shardpipe/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

double sp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtoull(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

uint64_t sp_peak_rss_bytes(void) { return status_kb("VmHWM"); }
uint64_t sp_rss_bytes(void) { return status_kb("VmRSS"); }

void *sp_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "shardpipe: out of memory allocating %zu bytes\n", bytes);
        abort();
    }
    return p;
}

void *sp_calloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size) {
        fprintf(stderr, "shardpipe: allocation of %zu x %zu bytes overflows\n", n, size);
        abort();
    }
    void *p = sp_alloc(n * size);
    memset(p, 0, n * size);
    return p;
}

#define HUGE_PAGE ((size_t)2 << 20)

static size_t huge_len(size_t bytes) { return (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1); }

void *sp_huge_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 1;
    size_t len = huge_len(bytes);
    /* over-allocate by one huge page, then trim to a 2 MiB aligned start,
     * so every 2 MiB of the result can be one huge page */
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)(raw + len + HUGE_PAGE - (p + len));
    if (tail) munmap(p + len, tail);
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* a hint: without THP it is plain memory */
#endif
    return p;
}

void *sp_huge_alloc_or_abort(size_t bytes)
{
    void *p = sp_huge_alloc(bytes);
    if (!p) {
        fprintf(stderr, "shardpipe: out of memory mapping %zu bytes\n", bytes);
        abort();
    }
    return p;
}

void sp_huge_free(void *p, size_t bytes)
{
    if (p) munmap(p, huge_len(bytes ? bytes : 1));
}

void sp_rng_seed(sp_rng *rng, uint64_t seed)
{
    /* splitmix64 of the seed, so that seed 0 is fine too */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    rng->state = z ? z : 1;
}

uint64_t sp_rng_u64(sp_rng *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float sp_rng_f32(sp_rng *rng) { return (float)(sp_rng_u64(rng) >> 40) / 16777216.0f; }

float sp_rng_normal(sp_rng *rng)
{
    float u1 = sp_rng_f32(rng), u2 = sp_rng_f32(rng);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

uint64_t sp_meminfo_bytes(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            sscanf(line + kl + 1, "%llu", &v); /* kB */
            break;
        }
    fclose(f);
    return (uint64_t)v * 1024;
}
