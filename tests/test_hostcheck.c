/* test_hostcheck.c - the start-up host check (hostcheck.h): a plan's host is
 * this machine by name, short name, address or localhost, a label when it
 * names nothing; rank 0 refuses a stage on the wrong machine or without the
 * free RAM its stage needs (summed over the stages of one host), with both
 * names or numbers, and warns about threads past a host's cores. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shardpipe/hostcheck.h"
#include "shardpipe/threads.h"
#include "testutil.h"

Test(hostcheck, which_hosts_are_this_machine)
{
    char me[256] = "";
    cr_assert_eq(gethostname(me, sizeof me - 1), 0);
    cr_expect_eq(sp_host_is_me(me), SP_HOST_SELF, "%s", me);
    cr_expect_eq(sp_host_is_me("localhost"), SP_HOST_SELF);
    cr_expect_eq(sp_host_is_me("127.0.0.1"), SP_HOST_SELF);
    char dotted[300];
    snprintf(dotted, sizeof dotted, "%s.local", me);
    cr_expect_eq(sp_host_is_me(dotted), SP_HOST_SELF, "the short name counts: %s", dotted);
    /* .invalid never resolves (RFC 2606): a label, not checked */
    cr_expect_eq(sp_host_is_me("node-a.invalid"), SP_HOST_LABEL);
    /* an address this machine does not have (TEST-NET-1, RFC 5737) */
    cr_expect_eq(sp_host_is_me("192.0.2.77"), SP_HOST_OTHER);
    sp_host_report r;
    sp_host_report_self("localhost", &r);
    cr_expect_str_eq(r.host, me);
    cr_expect_eq(r.verdict, SP_HOST_SELF);
    cr_expect_eq(r.cores, sp_host_cores());
    cr_expect_eq(r.threads, sp_default_threads());
    cr_expect_gt(r.ram_free, 0);
}

static sp_plan plan;

static void load(sp_gguf **g, sp_config *cfg)
{
    sp_error err = {{0}};
    const char *model = sp_test_shared("models/stories260K.gguf");
    cr_assert(model);
    cr_assert_eq(sp_plan_load(SP_SOURCE_DIR "/partitions/stories260K-3stages.yaml", &plan, &err), 0, "%s", err.msg);
    *g = sp_gguf_open(model, &err);
    cr_assert(*g, "%s", err.msg);
    cr_assert_eq(sp_config_read(*g, cfg, &err), 0, "%s", err.msg);
}

static void report(sp_host_report *r, const char *host, int verdict, int cores, uint64_t ram)
{
    memset(r, 0, sizeof *r);
    snprintf(r->host, sizeof r->host, "%s", host);
    r->verdict = verdict;
    r->cores = cores;
    r->threads = cores;
    r->ram_free = ram;
}

Test(hostcheck, wrong_board_and_short_memory_are_refused)
{
    sp_gguf *g;
    sp_config cfg;
    load(&g, &cfg);
    sp_host_report r[3];
    char warn[1024];
    sp_error err = {{0}};
    report(&r[0], "node-a", SP_HOST_SELF, 4, 1ull << 30);
    report(&r[1], "node-b", SP_HOST_LABEL, 4, 1ull << 30);
    report(&r[2], "node-c", SP_HOST_SELF, 4, 1ull << 30);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), 0, "%s", err.msg);
    cr_expect_str_eq(warn, "");

    /* the host file swapped: rank 2 is on node-b's board */
    report(&r[2], "node-b", SP_HOST_OTHER, 4, 1ull << 30);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), -1);
    cr_expect(strstr(err.msg, "rank 2 (stage 2, layers 3-4) runs on node-b but the plan puts it on node-c"), "%s",
              err.msg);
    cr_expect(strstr(err.msg, "mpiexec -f PLAN.hosts"), "%s", err.msg);

    /* stage 1 needs ~1 MiB (sp_plan_stage_memory); give its board 100 KiB */
    report(&r[2], "node-c", SP_HOST_SELF, 4, 1ull << 30);
    report(&r[1], "node-b", SP_HOST_SELF, 4, 100 << 10);
    sp_stage_memory m = sp_plan_stage_memory(&plan, 1, g, &cfg);
    cr_assert_gt(m.total, 100 << 10);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), -1);
    cr_expect(strstr(err.msg, "rank 1 (stage 1, layers 2-2) on node-b has 0.10 MiB of RAM free but its stage needs"),
              "%s", err.msg);
    sp_gguf_close(g);
}

Test(hostcheck, ranks_swapped_between_unresolvable_board_names_are_refused)
{
    sp_gguf *g;
    sp_config cfg;
    load(&g, &cfg);
    sp_host_report r[3];
    char warn[1024];
    sp_error err = {{0}};
    /* the plan's hosts node-a/b/c resolve nowhere; the ranks' own names say
     * which machine each is: ranks 0 and 1 swapped */
    report(&r[0], "node-b", SP_HOST_LABEL, 4, 1ull << 30);
    report(&r[1], "node-a", SP_HOST_LABEL, 4, 1ull << 30);
    report(&r[2], "node-c", SP_HOST_SELF, 4, 1ull << 30);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), -1);
    cr_expect(strstr(err.msg, "rank 0 (stage 0, layers 0-1) runs on node-b but the plan puts it on node-a (where "
                              "rank 1 runs)"),
              "%s", err.msg);
    /* a rank whose name is no planned host: a label run (the test plans on one machine) */
    report(&r[0], "box", SP_HOST_LABEL, 4, 1ull << 30);
    report(&r[1], "box", SP_HOST_LABEL, 4, 1ull << 30);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), 0, "%s", err.msg);
    sp_gguf_close(g);
}

Test(hostcheck, stages_on_one_host_add_up_against_its_free_ram)
{
    sp_gguf *g;
    sp_config cfg;
    load(&g, &cfg);
    sp_stage_memory m0 = sp_plan_stage_memory(&plan, 0, g, &cfg), m1 = sp_plan_stage_memory(&plan, 1, g, &cfg);
    uint64_t most = m0.total > m1.total ? m0.total : m1.total;
    /* ranks 0 and 1 on one host with room for either stage, not for both */
    uint64_t ram = most + (m0.total + m1.total - most) / 2;
    sp_host_report r[3];
    char warn[1024];
    sp_error err = {{0}};
    report(&r[0], "box", SP_HOST_LABEL, 4, ram);
    report(&r[1], "box", SP_HOST_LABEL, 4, ram + (1 << 20)); /* the host's least free RAM counts */
    report(&r[2], "other", SP_HOST_LABEL, 4, ram);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), -1);
    char want[256], a[32], b[32];
    snprintf(a, sizeof a, "%.2f MiB", ram / 1048576.0);
    snprintf(b, sizeof b, "%.2f MiB", (m0.total + m1.total) / 1048576.0);
    snprintf(want, sizeof want, "host box has %s of RAM free but its 2 stages need %s in all: rank 0 (stage 0, "
                                "layers 0-1) ", a, b);
    cr_expect(strstr(err.msg, want), "want '%s' in: %s", want, err.msg);
    cr_expect(strstr(err.msg, ", rank 1 (stage 1, layers 2-2) "), "%s", err.msg);
    cr_expect_null(strstr(err.msg, "stage 2"), "%s", err.msg);
    /* on two hosts the same RAM is enough */
    report(&r[1], "box2", SP_HOST_LABEL, 4, ram);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), 0, "%s", err.msg);
    sp_gguf_close(g);
}

Test(hostcheck, threads_past_a_hosts_cores_are_warned)
{
    sp_gguf *g;
    sp_config cfg;
    load(&g, &cfg);
    for (int i = 0; i < 3; i++) plan.stages[i].threads = 2;
    sp_host_report r[3];
    char warn[1024];
    sp_error err = {{0}};
    /* ranks 0 and 1 share a 2-core machine: 4 threads on 2 cores */
    report(&r[0], "box", SP_HOST_LABEL, 2, 1ull << 30);
    report(&r[1], "box", SP_HOST_LABEL, 2, 1ull << 30);
    report(&r[2], "other", SP_HOST_LABEL, 4, 1ull << 30);
    cr_expect_eq(sp_plan_check_hosts(&plan, g, &cfg, r, 3, warn, sizeof warn, &err), 0, "%s", err.msg);
    cr_expect(strstr(warn, "box: 2 ranks with 4 kernel threads in all (largest 2) on 2 cores"), "%s", warn);
    cr_expect_null(strstr(warn, "other"), "%s", warn);
    sp_gguf_close(g);
}
