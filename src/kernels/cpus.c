/* cpus.c - how many kernel threads a rank should run: the CPUs its affinity
 * mask allows (the default of --threads), the host's cores, and the warning
 * when the ranks placed on one host ask for more threads than it has cores
 * (threads.h). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include "shardpipe/threads.h"

int sp_default_threads(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    /* a mask wider than cpu_set_t's 1024 CPUs fails with EINVAL: count the
     * online CPUs instead */
    if (n <= 0) n = sp_host_cores();
    return n < 1 ? 1 : n > SP_MAX_THREADS ? SP_MAX_THREADS : n;
}

int sp_host_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1 << 20 ? 1 << 20 : (int)n;
}

bool sp_threads_oversubscribed(const char *host, int n_ranks, const int *threads, int cores, char *msg,
                               size_t size)
{
    long sum = 0;
    int most = 0;
    for (int i = 0; i < n_ranks; i++) {
        sum += threads[i];
        if (threads[i] > most) most = threads[i];
    }
    if (size) msg[0] = '\0';
    if (sum <= cores) return false;
    int fair = cores / (n_ranks > 0 ? n_ranks : 1);
    snprintf(msg, size,
             "%s: %d rank%s with %ld kernel threads in all (largest %d) on %d core%s: the threads take turns "
             "on the cores and the pipeline runs at the slowest rank's pace; give each rank at most %d "
             "thread%s (threads: in the plan, or --threads), or put fewer ranks on %s",
             host, n_ranks, n_ranks == 1 ? "" : "s", sum, most, cores, cores == 1 ? "" : "s", fair < 1 ? 1 : fair,
             fair > 1 ? "s" : "", host);
    return true;
}
