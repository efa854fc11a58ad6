/* cmd_profile.c - `shardpipe profile`: measure this board into a profile
 * YAML; with --links (under mpiexec) the network between the boards into a
 * cluster file; with --all (under mpiexec) every board and every link, into
 * the cluster file and the board files it names. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/cluster.h"
#include "shardpipe/profile.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe profile [-o configs/boards/NAME.yaml] [--quick | --thorough] [--threads N]\n"
            "       mpiexec -f HOSTS -n N shardpipe profile --all -o configs/clusters/NAME.yaml [--thorough]\n"
            "       mpiexec -n N shardpipe profile --links -o configs/clusters/NAME.yaml [--dim D]\n"
            "  -o, --output PATH  where to write the YAML (default: print it)\n"
            "  --quick            1 and N threads, small buffers (default; about 10 s)\n"
            "  --thorough         also the powers of two between, larger buffers, more repetitions\n"
            "  --threads N        most kernel threads to measure (default: all cores)\n"
            "  --name NAME        the profile's name (default: the host name); with --all / --links the\n"
            "                     cluster's (default: the file's base name)\n"
            "  --note TEXT        added to the origin (e.g. what machine this is)\n"
            "  --all              one rank per board: every board measures itself, then every link; rank 0\n"
            "                     writes the cluster file and DIR/HOST.yaml per host (ranks on one host share\n"
            "                     it: one profile, each rank a board with its share of cores and memory)\n"
            "  --links            measure latency and bandwidth between every pair of MPI ranks\n"
            "  --dim D            hidden-state length for the links' message sizes (default 2048)\n"
            "  --profiles DIR     the boards' profile folder, relative to the cluster file (default ../boards)\n");
}

static double t_start;

static void show_progress(void *arg, const char *what, double done)
{
    (void)arg;
    fprintf(stderr, "\r[%3.0f%% %5.1f s] %-50s", done * 100, sp_now() - t_start, what);
    if (done >= 1) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_profile(int argc, char **argv)
{
    enum { O_QUICK = 256, O_THOROUGH, O_THREADS, O_NAME, O_NOTE, O_LINKS, O_DIM, O_PROFILES, O_ALL };
    static const struct option opts[] = {
        {"quick", no_argument, 0, O_QUICK},         {"thorough", no_argument, 0, O_THOROUGH},
        {"threads", required_argument, 0, O_THREADS}, {"name", required_argument, 0, O_NAME},
        {"note", required_argument, 0, O_NOTE},     {"links", no_argument, 0, O_LINKS},
        {"dim", required_argument, 0, O_DIM},       {"profiles", required_argument, 0, O_PROFILES},
        {"all", no_argument, 0, O_ALL},             {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    sp_measure_options mo = {.progress = show_progress};
    const char *out = NULL, *name = NULL, *note = NULL, *profiles = "../boards";
    bool links = false, all = false;
    int dim = 2048;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_QUICK: mo.thorough = false; break;
        case O_THOROUGH: mo.thorough = true; break;
        case O_THREADS: if (sp_cli_int("profile", "--threads", optarg, 1, SP_MAX_THREADS, &mo.max_threads)) return 2; break;
        case O_NAME: name = optarg; break;
        case O_NOTE: note = optarg; break;
        case O_LINKS: links = true; break;
        case O_ALL: all = true; break;
        case O_DIM: if (sp_cli_int("profile", "--dim", optarg, 1, 1 << 20, &dim)) return 2; break;
        case O_PROFILES: profiles = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shardpipe profile: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (name && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(name)) {
        fprintf(stderr, "shardpipe profile: --name may contain only letters, digits, '.', '-' and '_'\n");
        return 2;
    }

    if (links && all) {
        fprintf(stderr, "shardpipe profile: --all measures the links too; give --all or --links, not both\n");
        return 2;
    }
    if (links || all) {
        if (!out) {
            fprintf(stderr, "shardpipe profile %s: -o configs/clusters/NAME.yaml is required\n",
                    all ? "--all" : "--links");
            return 2;
        }
        /* the cluster's name: the file's base name without .yaml, as a word */
        static char cname[64];
        const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
        snprintf(cname, sizeof cname, "%.*s", (int)strcspn(base, "."), base);
        for (char *ch = cname; *ch; ch++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *ch)) *ch = '-';
        if (!cname[0]) snprintf(cname, sizeof cname, "cluster");
        if (all) {
            sp_profall_options ao = {.out = out, .name = name ? name : cname, .profiles_dir = profiles,
                                     .note = note, .dim = dim, .measure = mo};
            ao.measure.progress = NULL;
            sp_cluster_profile_all(&argc, &argv, &ao);
        }
        sp_links_options lo = {.out = out, .name = name ? name : cname, .profiles_dir = profiles, .dim = dim};
        sp_cluster_profile_links(&argc, &argv, &lo);
    }

    static sp_profile p;
    sp_error err = {{0}};
    t_start = sp_now();
    if (sp_profile_measure(&p, &mo, &err)) return sp_cli_fail("profile", &err);
    double took = sp_now() - t_start;
    if (name) snprintf(p.name, sizeof p.name, "%s", name);
    if (note) {
        size_t len = strlen(p.origin);
        snprintf(p.origin + len, sizeof p.origin - len, ". %s", note);
    }
    char header[256];
    snprintf(header, sizeof header, "Board profile measured by `shardpipe profile%s` in %.1f s.\n"
                                    "Schema: docs/profile-format.md",
             mo.thorough ? " --thorough" : "", took);
    if (out) {
        if (sp_profile_write(&p, out, header, &err)) return sp_cli_fail("profile", &err);
        fprintf(stderr, "wrote %s\n", out);
    } else {
        /* no -o: print the YAML (written through a temporary file) */
        char tmp[64];
        snprintf(tmp, sizeof tmp, "/tmp/shardpipe-profile-%d.yaml", (int)getpid());
        if (sp_profile_write(&p, tmp, header, &err)) return sp_cli_fail("profile", &err);
        FILE *f = fopen(tmp, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) fputs(line, stdout);
        if (f) fclose(f);
        remove(tmp);
    }
    /* what was written must load back */
    if (out) {
        static sp_profile back;
        if (sp_profile_load(out, &back, &err)) {
            sp_error_prefix(&err, "the written profile does not load (a bug, please report it): ");
            return sp_cli_fail("profile", &err);
        }
    }
    return 0;
}
