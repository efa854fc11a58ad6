/* hostcheck.c - each rank's host, cores and free RAM against the plan
 * (hostcheck.h): the wrong board for a stage, or too little memory on a
 * host for the stages it runs, is refused before any weight moves;
 * oversubscribed hosts are warned of. */
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

bool sp_host_is_loopback(const char *host)
{
    return !strcasecmp(host, "localhost") || !strcmp(host, "127.0.0.1") || !strcmp(host, "::1");
}

sp_host_verdict sp_host_is_me(const char *planned)
{
    if (!planned || !*planned) return SP_HOST_LABEL;
    if (sp_host_is_loopback(planned)) return SP_HOST_SELF;
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

/* The rank (other than `rank`) that runs on host `planned` by its own name,
 * or -1: how a plan's host that does not resolve (a board name without DNS,
 * the emulated network) is still known to be a machine of this run. */
static int rank_on(const char *planned, const sp_host_report *reports, int n_ranks, int rank)
{
    for (int q = 0; q < n_ranks; q++)
        if (q != rank && same_name(planned, reports[q].host)) return q;
    return -1;
}

/* Is every stage's rank on the machine the plan put it on? */
static int check_placement(const sp_plan *plan, const sp_host_report *reports, int n_ranks, sp_error *err)
{
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i];
        if (st->rank < 0 || st->rank >= n_ranks) continue; /* sp_plan_check_world's to report */
        const sp_host_report *r = &reports[st->rank];
        int q = -1;
        if (r->verdict == SP_HOST_LABEL && !same_name(st->host, r->host))
            q = rank_on(st->host, reports, n_ranks, st->rank);
        if (r->verdict != SP_HOST_OTHER && q < 0) continue;
        char where[96] = "";
        if (q >= 0) snprintf(where, sizeof where, " (where rank %d runs)", q);
        return sp_errorf(err, "rank %d (stage %d, layers %d-%d) runs on %.63s but the plan puts it on %s%s; the "
                              "host file's order does not match the plan: use the host file `shardpipe plan` "
                              "wrote beside it (mpiexec -f PLAN.hosts)",
                         st->rank, i, st->first, st->last, r->host, st->host, where);
    }
    return 0;
}

/* Does each real host have the free RAM of all the stages it runs? The
 * ranks of one host load their weights side by side, so their estimates
 * add up against the host's MemAvailable (the least any of its ranks saw). */
static int check_memory(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg, const sp_host_report *reports,
                        int n_ranks, sp_error *err)
{
    bool done[SP_PLAN_MAX_STAGES] = {false};
    for (int i = 0; i < plan->n_stages; i++) {
        if (done[i] || plan->stages[i].rank < 0 || plan->stages[i].rank >= n_ranks) continue;
        const char *host = reports[plan->stages[i].rank].host;
        int stages[SP_PLAN_MAX_STAGES], n = 0;
        uint64_t need = 0, free_ram = 0;
        sp_stage_memory m[SP_PLAN_MAX_STAGES];
        for (int j = i; j < plan->n_stages; j++) {
            int rj = plan->stages[j].rank;
            if (done[j] || rj < 0 || rj >= n_ranks || strcmp(reports[rj].host, host)) continue;
            done[j] = true;
            m[n] = sp_plan_stage_memory(plan, j, g, cfg);
            need += m[n].total;
            if (reports[rj].ram_free && (!free_ram || reports[rj].ram_free < free_ram)) free_ram = reports[rj].ram_free;
            stages[n++] = j;
        }
        if (!free_ram || need <= free_ram) continue;
        char fr[24], tot[24], w[24], kv[24], buf[24];
        const sp_stage_plan *st = &plan->stages[stages[0]];
        if (n == 1)
            return sp_errorf(err, "rank %d (stage %d, layers %d-%d) on %.63s has %s of RAM free but its stage "
                                  "needs %s (weights %s, KV cache %s, buffers %s); free memory there, or "
                                  "plan again with that board's memory: set in the cluster file",
                             st->rank, stages[0], st->first, st->last, host, mib(free_ram, fr), mib(m[0].total, tot),
                             mib(m[0].weights, w), mib(m[0].kv_cache, kv), mib(m[0].scratch + m[0].wire, buf));
        char list[768];
        size_t len = 0;
        for (int k = 0; k < n && len < sizeof list; k++) {
            st = &plan->stages[stages[k]];
            len += (size_t)snprintf(list + len, sizeof list - len,
                                    "%srank %d (stage %d, layers %d-%d) %s (weights %s, KV cache %s, buffers %s)",
                                    k ? ", " : "", st->rank, stages[k], st->first, st->last, mib(m[k].total, tot),
                                    mib(m[k].weights, w), mib(m[k].kv_cache, kv), mib(m[k].scratch + m[k].wire, buf));
        }
        return sp_errorf(err, "host %.63s has %s of RAM free but its %d stages need %s in all: %s; free memory "
                              "there, run fewer ranks on it, or plan again with each board's memory: set in the "
                              "cluster file",
                         host, mib(free_ram, fr), n, mib(need, tot), list);
    }
    return 0;
}

int sp_plan_check_hosts(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg, const sp_host_report *reports,
                        int n_ranks, char *warn, size_t wsize, sp_error *err)
{
    if (wsize) warn[0] = '\0';
    if (check_placement(plan, reports, n_ranks, err) || check_memory(plan, g, cfg, reports, n_ranks, err)) return -1;
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
