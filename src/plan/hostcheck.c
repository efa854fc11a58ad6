/* hostcheck.c - each rank's host, cores and free RAM against the plan
 * (hostcheck.h): the wrong board for a stage, or too little memory for it,
 * is refused before any weight moves; oversubscribed hosts are warned of. */
#define _GNU_SOURCE
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shardpipe/hostcheck.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

/* Equal names, or equal up to the first '.' of either (pi5-a, pi5-a.local). */
static bool same_name(const char *a, const char *b)
{
    if (!strcasecmp(a, b)) return true;
    size_t la = strcspn(a, "."), lb = strcspn(b, ".");
    return la == lb && !strncasecmp(a, b, la);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                       sizeof(struct in6_addr));
    return false;
}

sp_host_verdict sp_host_is_me(const char *planned)
{
    if (!planned || !*planned) return SP_HOST_LABEL;
    if (!strcasecmp(planned, "localhost") || !strcmp(planned, "127.0.0.1") || !strcmp(planned, "::1"))
        return SP_HOST_SELF;
    char me[256] = "";
    gethostname(me, sizeof me - 1);
    if (me[0] && same_name(planned, me)) return SP_HOST_SELF;
    /* a name or address: is it one of this machine's addresses? */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(planned, NULL, &hints, &res) || !res) return SP_HOST_LABEL;
    struct ifaddrs *ifs = NULL;
    sp_host_verdict v = SP_HOST_OTHER;
    if (getifaddrs(&ifs) == 0) {
        for (struct addrinfo *a = res; a && v != SP_HOST_SELF; a = a->ai_next)
            for (struct ifaddrs *i = ifs; i && v != SP_HOST_SELF; i = i->ifa_next)
                if (i->ifa_addr && same_addr(a->ai_addr, i->ifa_addr)) v = SP_HOST_SELF;
        freeifaddrs(ifs);
    }
    freeaddrinfo(res);
    return v;
}

void sp_host_report_self(const char *planned, sp_host_report *r)
{
    memset(r, 0, sizeof *r);
    if (gethostname(r->host, sizeof r->host - 1)) snprintf(r->host, sizeof r->host, "?");
    r->cores = sp_host_cores();
    r->threads = sp_default_threads();
    r->verdict = planned ? sp_host_is_me(planned) : SP_HOST_LABEL;
    r->ram_free = sp_meminfo_bytes("MemAvailable");
    /* SHARDPIPE_RAM_FREE=BYTES stands in for MemAvailable: for a board whose
     * kernel misreports it (containers), and for tests of the refusal */
    const char *env = getenv("SHARDPIPE_RAM_FREE");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (!*end) r->ram_free = v;
    }
}

/* bytes as MiB with two decimals: board RAM and a stage's need alike */
static const char *mib(uint64_t bytes, char buf[24])
{
    snprintf(buf, 24, "%.2f MiB", bytes / 1048576.0);
    return buf;
}

int sp_plan_check_hosts(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg, const sp_host_report *reports,
                        int n_ranks, char *warn, size_t wsize, sp_error *err)
{
    if (wsize) warn[0] = '\0';
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i];
        if (st->rank < 0 || st->rank >= n_ranks) continue; /* sp_plan_check_world's to report */
        const sp_host_report *r = &reports[st->rank];
        if (r->verdict == SP_HOST_OTHER)
            return sp_errorf(err, "rank %d (stage %d, layers %d-%d) runs on %.63s but the plan puts it on %s; the "
                                  "host file's order does not match the plan: use the host file `shardpipe plan` "
                                  "wrote beside it (mpiexec -f PLAN.hosts)",
                             st->rank, i, st->first, st->last, r->host, st->host);
        sp_stage_memory m = sp_plan_stage_memory(plan, i, g, cfg);
        if (r->ram_free && m.total > r->ram_free) {
            char fr[24], tot[24], w[24], kv[24], buf[24];
            return sp_errorf(err, "rank %d (stage %d, layers %d-%d) on %.63s has %s of RAM free but its stage "
                                  "needs %s (weights %s, KV cache %s, buffers %s); free memory there, or "
                                  "plan again with that board's memory: set in the cluster file",
                             st->rank, i, st->first, st->last, r->host, mib(r->ram_free, fr),
                             mib(m.total, tot), mib(m.weights, w), mib(m.kv_cache, kv), mib(m.scratch + m.wire, buf));
        }
    }
    /* oversubscription: the stages' threads summed per real host */
    bool done[SP_PLAN_MAX_STAGES] = {false};
    size_t len = 0;
    for (int i = 0; i < plan->n_stages; i++) {
        if (done[i] || plan->stages[i].rank >= n_ranks) continue;
        const sp_host_report *r = &reports[plan->stages[i].rank];
        int threads[SP_PLAN_MAX_STAGES], n = 0;
        for (int j = i; j < plan->n_stages; j++) {
            int rj = plan->stages[j].rank;
            if (!done[j] && rj < n_ranks && !strcmp(reports[rj].host, r->host)) {
                threads[n++] = plan->stages[j].threads;
                done[j] = true;
            }
        }
        char line[512];
        if (sp_threads_oversubscribed(r->host, n, threads, r->cores, line, sizeof line) && len + 2 < wsize)
            len += (size_t)snprintf(warn + len, wsize - len, "%s%s", len ? "\n" : "", line);
    }
    return 0;
}
