/* pingpong.c - latency and bandwidth between MPI ranks 0 and 1, to check
 * that an emulated link behaves as set (plain MPI, no shardpipe code).
 *
 *   mpiexec -n 2 pingpong [-l ROUNDS] [-b MiB] [-r REPS]
 *
 * latency: ROUNDS round trips of an 8-byte message; one-way latency is half
 *   of a round trip. The median and the 10th/90th percentiles are printed.
 * bandwidth: rank 0 streams MiB mebibytes in 256 KiB messages to rank 1,
 *   which answers with one byte when it has everything; the time of the
 *   answer's one-way trip is taken off. Each of REPS repetitions is timed
 *   and the median is printed in Mbit/s of MPI payload.
 * Prints one JSON object on rank 0's stdout. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rounds = 200, mib = 16, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-l")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-b")) mib = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
    }
    if (size != 2 || rounds < 1 || mib < 1 || reps < 1) {
        if (rank == 0) fprintf(stderr, "usage: mpiexec -n 2 pingpong [-l ROUNDS] [-b MiB] [-r REPS]\n");
        MPI_Finalize();
        return 2;
    }
    int peer = 1 - rank;

    /* latency; the first 10 round trips warm up the connection */
    char small[8] = {0};
    double *rtt = malloc((size_t)rounds * sizeof *rtt);
    for (int i = -10; i < rounds; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (rank == 0) {
            MPI_Send(small, 8, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
            MPI_Recv(small, 8, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(small, 8, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(small, 8, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
        }
        if (i >= 0) rtt[i] = MPI_Wtime() - t0;
    }
    double lat_med = pct(rtt, rounds, 0.5) / 2, lat_p10 = pct(rtt, rounds, 0.1) / 2,
           lat_p90 = pct(rtt, rounds, 0.9) / 2;

    /* bandwidth */
    const int chunk = 256 * 1024;
    int n_msgs = (int)((long)mib * 1048576 / chunk);
    char *buf = malloc((size_t)chunk * 8);
    memset(buf, 1, (size_t)chunk * 8);
    double *bw = malloc((size_t)reps * sizeof *bw);
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up (TCP window growth) */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Request req[8];
        MPI_Status st[8];
        for (int m = 0; m < n_msgs; m += 8) {
            int k = n_msgs - m < 8 ? n_msgs - m : 8;
            for (int j = 0; j < k; j++) {
                char *b = buf + (size_t)j * chunk;
                if (rank == 0) MPI_Isend(b, chunk, MPI_CHAR, peer, 2, MPI_COMM_WORLD, &req[j]);
                else MPI_Irecv(b, chunk, MPI_CHAR, peer, 2, MPI_COMM_WORLD, &req[j]);
            }
            MPI_Waitall(k, req, st);
        }
        if (rank == 0) MPI_Recv(small, 1, MPI_CHAR, peer, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        else MPI_Send(small, 1, MPI_CHAR, peer, 3, MPI_COMM_WORLD);
        double t = MPI_Wtime() - t0 - lat_med;
        if (r >= 0) bw[r] = (double)n_msgs * chunk * 8 / t / 1e6;
    }
    if (rank == 0) {
        double bw_med = pct(bw, reps, 0.5), bw_min = bw[0], bw_max = bw[reps - 1];
        printf("{\"latency_us\": %.1f, \"latency_p10_us\": %.1f, \"latency_p90_us\": %.1f, \"rounds\": %d, "
               "\"bandwidth_mbit_s\": %.1f, \"bandwidth_min_mbit_s\": %.1f, \"bandwidth_max_mbit_s\": %.1f, "
               "\"bandwidth_mib\": %d, \"reps\": %d}\n",
               lat_med * 1e6, lat_p10 * 1e6, lat_p90 * 1e6, rounds, bw_med, bw_min, bw_max, mib, reps);
    }
    free(rtt);
    free(buf);
    free(bw);
    MPI_Finalize();
    return 0;
}
