/* fuzz_cluster.c - libFuzzer target: a cluster file (YAML) from the input
 * through sp_cluster_load. The file sits in SCRATCH/clusters/ beside a copy
 * of configs/boards/ in SCRATCH/boards/, so the seeds' `../boards/X.yaml`
 * profile paths resolve (inline profiles are fuzzed with the file). An
 * accepted cluster must be written back (its profiles with
 * sp_profile_write, the file with sp_cluster_write, as `shardpipe profile
 * --links` does) and load again with the same boards and links. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "shardpipe/profile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    char path[600];
    snprintf(path, sizeof path, "%s/clusters", fz_dir());
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/boards", fz_dir());
    mkdir(path, 0700);
    DIR *d = opendir(SP_SOURCE_DIR "/configs/boards");
    if (!d) fz_fail("cannot list %s", SP_SOURCE_DIR "/configs/boards");
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char from[600], rel[600];
        snprintf(from, sizeof from, "%s/configs/boards/%s", SP_SOURCE_DIR, e->d_name);
        snprintf(rel, sizeof rel, "boards/%s", e->d_name);
        FILE *f = fopen(from, "rb");
        if (!f) continue;
        static uint8_t buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        fz_write(rel, buf, n);
    }
    closedir(d);
    snprintf(path, sizeof path, "%s/rt", fz_dir());
    mkdir(path, 0700);
    return 0;
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-3 * fabs(a); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("clusters/cluster.yaml", data, size);
    static sp_cluster c, again;
    sp_error err = {{0}};
    if (sp_cluster_load(path, &c, &err)) {
        if (strncmp(err.msg, path, strlen(path)) != 0) fz_fail("the error does not name the file: %s", err.msg);
        return 0;
    }
    if (c.n_boards < 1 || c.n_boards > SP_CLUSTER_MAX_BOARDS) fz_fail("cluster loaded with %d boards", c.n_boards);

    char rel[SP_CLUSTER_MAX_BOARDS][32], full[700], out[600];
    const char *rels[SP_CLUSTER_MAX_BOARDS];
    for (int i = 0; i < c.n_boards; i++) {
        const sp_board *b = &c.boards[i];
        if (!sp_profile_perf(&b->profile, b->threads)) fz_fail("board %d's threads %d are not profiled", i, b->threads);
        if (b->memory > b->profile.ram_total) fz_fail("board %d's memory is above its RAM", i);
        snprintf(rel[i], sizeof rel[i], "p%d.yaml", i);
        rels[i] = rel[i];
        snprintf(full, sizeof full, "%s/rt/%s", fz_dir(), rel[i]);
        if (sp_profile_write(&b->profile, full, NULL, &err)) fz_fail("sp_profile_write: %s", err.msg);
    }
    snprintf(out, sizeof out, "%s/rt/cluster.yaml", fz_dir());
    if (sp_cluster_write(&c, rels, out, "header", &err)) fz_fail("sp_cluster_write: %s", err.msg);
    if (sp_cluster_load(out, &again, &err)) fz_fail("the cluster written back does not load: %s", err.msg);
    if (strcmp(c.name, again.name) || c.n_boards != again.n_boards) fz_fail("the cluster written back differs");
    for (int a = 0; a < c.n_boards; a++) {
        const sp_board *x = &c.boards[a], *y = &again.boards[a];
        if (strcmp(x->name, y->name) || strcmp(x->host, y->host) || x->threads != y->threads ||
            x->profile.ram_total != y->profile.ram_total || x->memory != y->memory ||
            x->memory_given != y->memory_given)
            fz_fail("board %d written back differs ('%s' / '%s', threads %d / %d)", a, x->name, y->name, x->threads,
                    y->threads);
        for (int b = 0; b < c.n_boards; b++)
            if (a != b && (!near(c.links[a][b].latency, again.links[a][b].latency) ||
                           !near(c.links[a][b].bandwidth, again.links[a][b].bandwidth)))
                fz_fail("link %s-%s written back differs", x->name, c.boards[b].name);
    }
    return 0;
}
