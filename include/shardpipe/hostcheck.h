/* hostcheck.h - does each rank run where the plan put it, with the memory
 * its stage needs? Every rank fills an sp_host_report about itself (fixed
 * size: gathered as bytes), rank 0 checks them all against the plan before
 * any weight is read (issue 20: a misordered host file would otherwise send
 * the biggest stage to the smallest board).
 *
 * A plan's `host` is checked only when it names a machine: a rank is "on"
 * it when it is the rank's host name (or its short name: pi5-a for
 * pi5-a.local), resolves to one of the rank's own addresses, or is
 * localhost (a run on one machine). A host that does not resolve is still
 * a machine when another rank of the run has that host name (a board name
 * without DNS: the ranks are there, in the wrong order); else (node-a in
 * the test plans) it is a label and is not checked. */
#ifndef SHARDPIPE_HOSTCHECK_H
#define SHARDPIPE_HOSTCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardpipe/plan.h"

typedef enum sp_host_verdict {
    SP_HOST_LABEL = -1, /* the plan's host names no machine: not checked */
    SP_HOST_OTHER = 0,  /* a machine, and not this one */
    SP_HOST_SELF = 1,   /* this machine */
} sp_host_verdict;

typedef struct sp_host_report {
    char host[64];     /* gethostname() */
    int32_t cores;     /* CPUs online (sp_host_cores) */
    int32_t threads;   /* CPUs of the affinity mask (sp_default_threads) */
    int32_t verdict;   /* sp_host_verdict of the plan's host for this rank's stage */
    int32_t pad;
    uint64_t ram_free; /* MemAvailable (or $SHARDPIPE_RAM_FREE), bytes */
} sp_host_report;

/* Is `host` this machine's loopback name (localhost in any case,
 * 127.0.0.1, ::1)? Such a host is this machine for every rank, and two
 * boards named so share one machine (the planner says so). */
bool sp_host_is_loopback(const char *host);

/* Is `planned` (a plan's host) this machine? */
sp_host_verdict sp_host_is_me(const char *planned);

/* This rank's report; planned = the plan's host of its stage, or NULL (a
 * coordinator-only rank: verdict SP_HOST_LABEL). */
void sp_host_report_self(const char *planned, sp_host_report *r);

/* Rank 0: reports[r] for every rank 0..n_ranks-1. Refuses (-1, err naming
 * the rank, the planned and the real host) a stage's rank on another
 * machine; then a host whose free RAM is below the sum of the estimates
 * (sp_plan_stage_memory) of the stages its ranks run (err naming the host,
 * each stage and the numbers). Then warns, in warn (may be "" on
 * return), about hosts whose ranks' threads add up past their cores
 * (sp_threads_oversubscribed), taking each stage's threads from the plan. */
int sp_plan_check_hosts(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg, const sp_host_report *reports,
                        int n_ranks, char *warn, size_t wsize, sp_error *err);

#endif
