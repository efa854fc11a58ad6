/* test_cpus.c - the default thread count follows the affinity mask (as
 * taskset or an MPI binding sets it), and oversubscription of a host is
 * reported with the numbers. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sched.h>
#include <string.h>

#include "shardpipe/threads.h"

Test(cpus, default_is_the_affinity_mask)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int n = CPU_COUNT(&set);
    cr_expect_eq(sp_default_threads(), n > SP_MAX_THREADS ? SP_MAX_THREADS : n);
    cr_expect_leq(sp_default_threads(), sp_host_cores());
    /* one CPU allowed (Criterion runs each test in its own process) */
    int cpu = -1;
    for (int i = 0; i < CPU_SETSIZE && cpu < 0; i++)
        if (CPU_ISSET(i, &set)) cpu = i;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    cr_expect_eq(sp_default_threads(), 1, "one CPU in the mask: 1 thread, got %d", sp_default_threads());
}

Test(cpus, oversubscription_is_named_with_the_numbers)
{
    char msg[512];
    int four[3] = {4, 4, 2};
    cr_expect(sp_threads_oversubscribed("pi5-a", 2, four, 4, msg, sizeof msg));
    cr_expect(strstr(msg, "pi5-a: 2 ranks with 8 kernel threads in all (largest 4) on 4 cores"), "%s", msg);
    cr_expect(strstr(msg, "at most 2 threads"), "%s", msg);
    cr_expect(sp_threads_oversubscribed("n100", 3, four, 8, msg, sizeof msg), "10 threads on 8 cores");
    int two[2] = {2, 2};
    cr_expect_not(sp_threads_oversubscribed("pi5-a", 2, two, 4, msg, sizeof msg), "4 threads on 4 cores is fine");
    cr_expect_str_eq(msg, "");
    int one[1] = {2};
    cr_expect(sp_threads_oversubscribed("pi-zero", 1, one, 1, msg, sizeof msg));
    cr_expect(strstr(msg, "1 rank with 2 kernel threads in all (largest 2) on 1 core:"), "%s", msg);
    cr_expect(strstr(msg, "at most 1 thread ("), "%s", msg);
}
