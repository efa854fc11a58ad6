/* links.c - `shardpipe profile --links`: the latency and bandwidth between
 * every pair of MPI ranks, written as a cluster file by rank 0 (also the
 * links step of `profile --all`, profall.c).
 *
 * Pairs are measured one at a time (the other ranks sleep in a barrier) so
 * that no two measurements share a network or a core. For a pair (a, b):
 *   latency    the lower decile of PINGS round trips of an 8-byte message,
 *              halved;
 *   bandwidth  round trips of messages of the sizes the pipeline sends -
 *              hidden states of 1..32 rows (dim x rows x 4 bytes) - and of
 *              1 MiB; the one-way time of each size is the lower decile of
 *              its round trips halved, and the bandwidth is the inverse
 *              slope of a least-squares line through (bytes, time), whose
 *              intercept is the latency again: time = alpha + bytes / beta.
 * The lower decile, not the median: load on either end (a busy core, a
 * late wake-up) only ever adds time to a round trip, and that is not the
 * link's; what hand-overs add in a run is the cluster file's measured
 * `handoff`. On the emulated network of a 2-core machine at load 10-15
 * (one-way 1.5, 2 and 2.5 ms) the median of 8-byte trips read 2.9, 2.9
 * and 5.5 ms, the lower decile 2.0, 2.2 and 3.8 ms. Blocking
 * MPI_Send/MPI_Recv are right here: nothing else is going on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "links.h"
#include "shardpipe/cluster.h"
#include "shardpipe/profile.h"
#include "shardpipe/util.h"

#define PINGS 51
#define TAG_LINK 21
#define TAG_RESULT 22

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One-way seconds of `reps` round trips of `bytes` between a and b, the
 * lower decile (called on both). */
static double one_way(int me, int a, int b, void *buf, int bytes, int reps)
{
    double *t = sp_alloc(sizeof(double) * (size_t)reps);
    int peer = me == a ? b : a;
    for (int r = -2; r < reps; r++) { /* two untimed warm-up trips */
        double t0 = sp_now();
        if (me == a) {
            MPI_Send(buf, bytes, MPI_BYTE, peer, TAG_LINK, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_BYTE, peer, TAG_LINK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(buf, bytes, MPI_BYTE, peer, TAG_LINK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_BYTE, peer, TAG_LINK, MPI_COMM_WORLD);
        }
        if (r >= 0) t[r] = (sp_now() - t0) / 2;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double m = t[reps / 10];
    free(t);
    return m;
}

/* latency and bandwidth of the pair (measured on rank a, which returns them). */
static void measure_pair(int me, int a, int b, int dim, sp_link *out)
{
    enum { N_SIZES = 7 };
    int sizes[N_SIZES];
    for (int i = 0; i < 6; i++) sizes[i] = dim * (1 << i) * 4; /* 1, 2, 4 .. 32 rows of f32 */
    sizes[6] = 1 << 20;
    int max = sizes[6] > sizes[5] ? sizes[6] : sizes[5];
    void *buf = sp_calloc((size_t)max, 1);
    double lat = one_way(me, a, b, buf, 8, PINGS);
    double x[N_SIZES], y[N_SIZES];
    for (int i = 0; i < N_SIZES; i++) {
        x[i] = sizes[i];
        y[i] = one_way(me, a, b, buf, sizes[i], sizes[i] > (1 << 18) ? 9 : 21);
    }
    free(buf);
    /* least squares y = alpha + x / beta */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < N_SIZES; i++) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
    double slope = (N_SIZES * sxy - sx * sy) / (N_SIZES * sxx - sx * sx);
    double bw = slope > 0 ? 1.0 / slope : x[N_SIZES - 1] / y[N_SIZES - 1];
    /* keep inside what the cluster loader accepts */
    if (bw > 1e12) bw = 1e12;
    if (lat < 1e-7) lat = 1e-7;
    out->latency = lat;
    out->bandwidth = bw;
}

void sp_links_measure(sp_comm *c, int dim, bool quiet, sp_cluster *cl)
{
    int n = c->size;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            /* a barrier whose waiting ranks sleep, leaving the cores to the pair */
            MPI_Request barrier;
            MPI_Ibarrier(MPI_COMM_WORLD, &barrier);
            sp_error err = {{0}};
            if (sp_comm_wait(c, &barrier, MPI_STATUS_IGNORE, "the other ranks between link measurements", NULL,
                             &err))
                sp_comm_abort(c, &err);
            sp_link l = {0, 0};
            if (c->rank == a || c->rank == b) measure_pair(c->rank, a, b, dim, &l);
            /* rank a has the figures; rank 0 collects them, asleep while
             * the pair measures (a blocking receive would spin on a core) */
            if (a != 0 && c->rank == a) MPI_Send(&l, 2, MPI_DOUBLE, 0, TAG_RESULT, MPI_COMM_WORLD);
            if (a != 0 && c->rank == 0) {
                MPI_Request req;
                MPI_Irecv(&l, 2, MPI_DOUBLE, a, TAG_RESULT, MPI_COMM_WORLD, &req);
                if (sp_comm_wait(c, &req, MPI_STATUS_IGNORE, "a link measurement", NULL, &err))
                    sp_comm_abort(c, &err);
            }
            if (c->rank == 0) {
                cl->links[a][b] = cl->links[b][a] = l;
                if (!quiet)
                    fprintf(stderr, "rank %d (%s) <-> rank %d (%s): latency %.1f us, bandwidth %.1f MB/s\n", a,
                            c->hosts[a], b, c->hosts[b], l.latency * 1e6, l.bandwidth / 1e6);
            }
        }
}

void sp_links_host_words(sp_comm *c)
{
    for (int r = 0; r < c->size; r++) {
        char *h = c->hosts[r];
        if (!h[0]) snprintf(h, 64, "rank%d", r);
        for (; *h; h++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *h)) *h = '-';
    }
}

int sp_links_host_first(const sp_comm *c, int rank)
{
    int first = 0;
    while (strcmp(c->hosts[first], c->hosts[rank])) first++;
    return first;
}

int sp_links_sharing(const sp_comm *c, int rank)
{
    int same = 0;
    for (int q = 0; q < c->size; q++) same += !strcmp(c->hosts[q], c->hosts[rank]);
    return same;
}

void sp_links_name_boards(const sp_comm *c, sp_cluster *cl)
{
    cl->n_boards = c->size;
    for (int r = 0; r < c->size; r++) {
        sp_board *b = &cl->boards[r];
        snprintf(b->host, sizeof b->host, "%s", c->hosts[r]);
        if (sp_links_sharing(c, r) > 1) snprintf(b->name, sizeof b->name, "%.50s-r%d", c->hosts[r], r);
        else snprintf(b->name, sizeof b->name, "%s", c->hosts[r]);
    }
}

int sp_cluster_profile_links(int *argc, char ***argv, const sp_links_options *o)
{
    sp_comm c;
    sp_comm_init(&c, argc, argv, 120);
    int n = c.size;
    if (n < 2 || n > SP_CLUSTER_MAX_BOARDS) {
        if (c.rank == 0)
            fprintf(stderr, "shardpipe profile --links: run it under mpiexec with 2 to %d ranks, one per board "
                            "(got %d)\n", SP_CLUSTER_MAX_BOARDS, n);
        sp_comm_shutdown(&c, 2);
    }
    sp_links_host_words(&c);
    static sp_cluster cl;
    memset(&cl, 0, sizeof cl);
    snprintf(cl.name, sizeof cl.name, "%s", o->name);
    sp_links_measure(&c, o->dim, o->quiet, &cl);
    int code = 0;
    if (c.rank == 0) {
        /* boards are named after their hosts; ranks sharing a host get -rN */
        sp_links_name_boards(&c, &cl);
        static char paths[SP_CLUSTER_MAX_BOARDS][128];
        const char *path_ptrs[SP_CLUSTER_MAX_BOARDS];
        for (int r = 0; r < n; r++) {
            snprintf(paths[r], sizeof paths[r], "%s/%s.yaml", o->profiles_dir, c.hosts[r]);
            path_ptrs[r] = paths[r];
        }
        char header[512];
        snprintf(header, sizeof header,
                 "Links measured by `shardpipe profile --links` under mpiexec with %d ranks (hidden states of dim "
                 "%d).\nEach board's profile is the file named below: measure it on that board with\n"
                 "`shardpipe profile -o configs/boards/HOST.yaml`, or point it at a published one\n"
                 "(`shardpipe profile --all` measures the boards and the links in one run).", n, o->dim);
        sp_error err = {{0}};
        if (sp_cluster_write(&cl, path_ptrs, o->out, header, &err)) {
            fprintf(stderr, "shardpipe profile --links: %s\n", err.msg);
            code = 1;
        } else if (!o->quiet) {
            fprintf(stderr, "wrote %s\n", o->out);
        }
    }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    sp_comm_shutdown(&c, code);
}
