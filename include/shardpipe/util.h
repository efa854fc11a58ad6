/* util.h - small platform helpers shared by every layer: clocks, memory
 * figures, checked allocation and a seeded RNG. */
#ifndef SHARDPIPE_UTIL_H
#define SHARDPIPE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic wall clock in seconds. */
double sp_now(void);

/* Peak resident set size of this process in bytes (VmHWM), 0 if unknown. */
uint64_t sp_peak_rss_bytes(void);
/* Current resident set size in bytes (VmRSS), 0 if unknown. */
uint64_t sp_rss_bytes(void);
/* A /proc/meminfo field ("MemTotal", "MemAvailable") in bytes; 0 when it
 * cannot be read. */
uint64_t sp_meminfo_bytes(const char *key);

/* malloc/calloc that abort with a message on failure (out of memory is not a
 * recoverable input error); aligned to 64 bytes. Free with free(). */
void *sp_alloc(size_t bytes);
void *sp_calloc(size_t n, size_t size);

/* Anonymous memory the kernel may back with transparent huge pages
 * (madvise MADV_HUGEPAGE; 2 MiB aligned, length rounded up to 2 MiB):
 * streaming through it takes a TLB miss per 2 MiB instead of per 4 KiB.
 * Zero-filled. NULL if the system refuses the mapping. */
void *sp_huge_alloc(size_t bytes);
/* The same, aborting with a message when refused, like sp_alloc (for the
 * probes, which cannot do without the memory either way). */
void *sp_huge_alloc_or_abort(size_t bytes);
void sp_huge_free(void *p, size_t bytes);

/* xorshift64* RNG: deterministic for a given seed on every platform. */
typedef struct sp_rng {
    uint64_t state;
} sp_rng;
void sp_rng_seed(sp_rng *rng, uint64_t seed);
uint64_t sp_rng_u64(sp_rng *rng);
float sp_rng_f32(sp_rng *rng);    /* uniform in [0, 1) */
float sp_rng_normal(sp_rng *rng); /* N(0, 1), Box-Muller */

#endif
