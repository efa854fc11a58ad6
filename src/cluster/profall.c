/* profall.c - `shardpipe profile --all` under mpiexec: every board measures
 * itself, rank 0 gathers the profiles, the links between all ranks are
 * measured (links.c), and rank 0 writes one board file per host and the
 * cluster file that names them, as `shardpipe plan` reads them.
 *
 * Ranks on one host (the same host name) share it. The lowest of them
 * measures the host once, with all its cores, while the others sleep (two
 * measurements at once would each see half the machine); one board file is
 * written for the host; and each rank becomes a board HOST-rN of the
 * cluster with its share of the host: threads = cores / ranks there (a
 * thread count the profile also measures) and memory = the host's usable
 * memory / ranks there. So a plan over the file neither oversubscribes the
 * cores nor counts the same RAM twice. Different hosts measure at the same
 * time (they share nothing); the links are measured after every board is
 * done, so no measurement disturbs them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comm.h"
#include "links.h"
#include "shardpipe/cluster.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

/* What a board sends rank 0: its profile, or why it has none. */
typedef struct measured {
    int32_t rc;      /* 0, -1: msg says why */
    int32_t measurer; /* 1: this rank measured its host */
    double seconds;
    char msg[512];
    sp_profile p;
} measured;

/* A board's progress, printed by the board itself each quarter of the way
 * (mpiexec forwards whole lines from every rank). */
typedef struct progress {
    const char *host;
    double t0;
    int quarter;
} progress;

static void show_progress(void *arg, const char *what, double done)
{
    progress *pg = arg;
    int q = (int)(done * 4 + 1e-9);
    if (q <= pg->quarter) return;
    pg->quarter = q;
    fprintf(stderr, "profile --all: %s: %3.0f%% after %5.1f s (%s)\n", pg->host, done * 100, sp_now() - pg->t0, what);
    fflush(stderr);
}

/* path joined to dir ("" or "." for none) unless absolute */
static void join(char *out, size_t size, const char *dir, const char *path)
{
    if (path[0] == '/' || !dir[0]) snprintf(out, size, "%.1000s", path);
    else snprintf(out, size, "%.1000s/%.1000s", dir, path);
}

/* mkdir that is fine with an existing folder */
static int ensure_dir(const char *path, sp_error *err)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    return sp_errorf(err, "cannot create the folder %s: %s; create it or pass another -o / --profiles", path,
                     strerror(errno));
}

/* The cluster file's folder and the board files' folder, created when
 * missing (before anything is measured: a folder that cannot be written
 * must not cost a board's measurement). */
static int folders(const sp_profall_options *o, char dir[1024], char pdir[2048], sp_error *err)
{
    snprintf(dir, 1024, ".");
    const char *slash = strrchr(o->out, '/');
    if (slash) snprintf(dir, 1024, "%.*s", (int)(slash - o->out) + (slash == o->out), o->out);
    join(pdir, 2048, dir, o->profiles_dir);
    return ensure_dir(dir, err) || ensure_dir(pdir, err) ? -1 : 0;
}

/* Rank 0: the board files (one per host) and the cluster file. */
static int write_files(const sp_comm *c, const sp_profall_options *o, measured *all, double boards_s, double links_s,
                       sp_cluster *cl, sp_error *err)
{
    int n = c->size;
    char dir[1024], pdir[2048];
    if (folders(o, dir, pdir, err)) return -1;

    sp_links_name_boards(c, cl);
    static char rel[SP_CLUSTER_MAX_BOARDS][320];
    const char *rel_ptrs[SP_CLUSTER_MAX_BOARDS];
    bool shared = false;
    for (int r = 0; r < n; r++) {
        /* the measurer of rank r's host: the lowest rank there */
        int m = sp_links_host_first(c, r);
        const sp_profile *p = &all[m].p;
        sp_board *b = &cl->boards[r];
        snprintf(rel[r], sizeof rel[r], "%s/%s.yaml", o->profiles_dir, b->host);
        rel_ptrs[r] = rel[r];
        int k = sp_links_sharing(c, r);
        b->threads = p->perf[p->n_perf - 1].threads / k;
        if (b->threads < 1) b->threads = 1;
        if (k > 1) {
            uint64_t usable = p->ram_total - sp_memory_reserve(p->ram_total);
            b->memory = usable / (uint64_t)k & ~((1ull << 20) - 1);
            b->memory_given = true;
            shared = true;
        }
        if (m != r) continue;
        char path[4096], header[512];
        join(path, sizeof path, dir, rel[r]);
        snprintf(header, sizeof header,
                 "Board profile measured by `shardpipe profile --all%s` (rank %d of %d) in %.1f s.\n"
                 "Schema: docs/profile-format.md", o->measure.thorough ? " --thorough" : "", r, n, all[r].seconds);
        if (sp_profile_write(p, path, header, err)) return -1;
        if (!o->quiet) fprintf(stderr, "wrote %s (%s, %d cores)\n", path, p->cpu, p->cores);
    }
    char header[1024];
    int len = snprintf(header, sizeof header,
                       "Measured by `shardpipe profile --all%s` under mpiexec with %d ranks: the boards in %.1f s,\n"
                       "the links (hidden states of dim %d) in %.1f s. Each board's profile is the file\n"
                       "named below, one per host.", o->measure.thorough ? " --thorough" : "", n, boards_s, o->dim,
                       links_s);
    if (shared)
        snprintf(header + len, sizeof header - (size_t)len,
                 "\nRanks on one host share it: each is a board HOST-rRANK with its share of the\n"
                 "host's cores (threads) and usable memory (memory).");
    snprintf(cl->name, sizeof cl->name, "%s", o->name);
    if (sp_cluster_write(cl, rel_ptrs, o->out, header, err)) return -1;
    /* `plan` must read it as written */
    static sp_cluster back;
    if (sp_cluster_load(o->out, &back, err)) {
        sp_error_prefix(err, "the written cluster file does not load (a bug, please report it): ");
        return -1;
    }
    int links = n * (n - 1) / 2;
    if (!o->quiet) fprintf(stderr, "wrote %s (%d boards, %d link%s)\n", o->out, n, links, links == 1 ? "" : "s");
    return 0;
}

int sp_cluster_profile_all(int *argc, char ***argv, const sp_profall_options *o)
{
    sp_comm c;
    sp_comm_init(&c, argc, argv, 120);
    int n = c.size;
    if (n > SP_CLUSTER_MAX_BOARDS) {
        if (c.rank == 0)
            fprintf(stderr, "shardpipe profile --all: at most %d ranks (one per board), got %d\n",
                    SP_CLUSTER_MAX_BOARDS, n);
        sp_comm_shutdown(&c, 2);
    }
    sp_links_host_words(&c);
    int code = 0;
    if (c.rank == 0) {
        char dir[1024], pdir[2048];
        sp_error err = {{0}};
        if (folders(o, dir, pdir, &err)) {
            fprintf(stderr, "shardpipe profile --all: %s\n", err.msg);
            code = 1;
        }
    }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (code) sp_comm_shutdown(&c, code);
    int first = sp_links_host_first(&c, c.rank); /* the lowest rank on this host measures it */
    int share = sp_links_sharing(&c, c.rank);
    if (c.rank == 0 && !o->quiet) {
        int hosts = 0;
        for (int r = 0; r < n; r++) hosts += sp_links_host_first(&c, r) == r;
        fprintf(stderr, "profile --all: %d rank%s on %d host%s, measuring each host (%s mode), then every link\n", n,
                n > 1 ? "s" : "", hosts, hosts > 1 ? "s" : "", o->measure.thorough ? "thorough" : "quick");
        fflush(stderr);
    }

    double t0 = sp_now();
    static measured me;
    memset(&me, 0, sizeof me);
    if (first == c.rank) {
        progress pg = {c.hosts[c.rank], t0, -1};
        sp_measure_options mo = o->measure;
        mo.progress = o->quiet ? NULL : show_progress;
        mo.progress_arg = &pg;
        /* this rank's share of the host's cores is measured too */
        int max_t = mo.max_threads > 0 ? mo.max_threads : sp_host_cores();
        mo.also_threads = share > 1 ? (max_t / share > 0 ? max_t / share : 1) : 0;
        sp_error err = {{0}};
        me.measurer = 1;
        me.rc = sp_profile_measure(&me.p, &mo, &err);
        me.seconds = sp_now() - t0;
        if (me.rc) snprintf(me.msg, sizeof me.msg, "%.500s", err.msg);
        snprintf(me.p.name, sizeof me.p.name, "%s", c.hosts[c.rank]);
        if (o->note) {
            size_t len = strlen(me.p.origin);
            snprintf(me.p.origin + len, sizeof me.p.origin - len, ". %s", o->note);
        }
    }
    /* gather on rank 0; waiting ranks sleep (a thorough Pi takes minutes) */
    measured *all = c.rank == 0 ? sp_calloc((size_t)n, sizeof *all) : NULL;
    MPI_Request req;
    MPI_Igather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    sp_error err = {{0}};
    if (sp_comm_wait_for(&c, &req, MPI_STATUS_IGNORE, "the boards' profiles", NULL,
                         o->measure.thorough ? 7200 : 1800, &err))
        sp_comm_abort(&c, &err);
    if (c.rank == 0)
        for (int r = 0; r < n && !code; r++)
            if (all[r].rc) {
                fprintf(stderr, "shardpipe profile --all: rank %d (host %s) could not measure its board: %s\n", r,
                        c.hosts[r], all[r].msg);
                code = 1;
            }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (code) sp_comm_shutdown(&c, code);
    double boards_s = sp_now() - t0;
    if (c.rank == 0 && !o->quiet && n > 1) {
        fprintf(stderr, "profile --all: every board measured in %.1f s; measuring %d link%s\n", boards_s,
                n * (n - 1) / 2, n > 2 ? "s" : "");
        fflush(stderr);
    }

    static sp_cluster cl;
    memset(&cl, 0, sizeof cl);
    double t1 = sp_now();
    if (n > 1) sp_links_measure(&c, o->dim, o->quiet, &cl);
    double links_s = sp_now() - t1;
    if (c.rank == 0 && write_files(&c, o, all, boards_s, links_s, &cl, &err)) {
        fprintf(stderr, "shardpipe profile --all: %s\n", err.msg);
        code = 1;
    }
    free(all);
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    sp_comm_shutdown(&c, code);
}
