/* clusterfile.c - cluster files (docs/profile-format.md): the boards of a
 * pipeline with their profiles, thread counts, usable memory and measured
 * in-run slowdown, the latency and bandwidth of the link between every pair
 * of them, and the measured hand-over time a stage adds to the round trip. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shardpipe/atomicfile.h"
#include "shardpipe/profile.h"
#include "shardpipe/threads.h"
#include "yamldoc.h"

/* Plausible link figures: 100 ns to 10 s of latency; 1 kB/s (a bad radio
 * link) to 1 TB/s (shared memory on one machine is ~10-50 GB/s). */
#define MIN_LATENCY 1e-7
#define MAX_LATENCY 10.0
#define MIN_BANDWIDTH 1e3
#define MAX_BANDWIDTH 1e12
/* A hand-over beyond the link: 0 to 10 s, like a latency. */
#define MAX_HANDOFF 10.0
/* In-run time / profiled time: a board 10x faster or 100x slower in a run
 * than alone is a wrong profile, not a slowdown. */
#define MIN_SLOWDOWN 0.1
#define MAX_SLOWDOWN 100.0

static const char *const top_keys[] = {"name", "boards", "links", "handoff", NULL};
static const char *const board_keys[] = {"name", "host", "profile", "threads", "memory", "slowdown", NULL};
static const char *const links_keys[] = {"default", "pairs", NULL};
static const char *const link_keys[] = {"latency", "bandwidth", NULL};
static const char *const pair_keys[] = {"between", "latency", "bandwidth", NULL};

uint64_t sp_memory_reserve(uint64_t ram_total)
{
    uint64_t tenth = ram_total / 10, floor = 256ull << 20;
    return tenth > floor ? tenth : floor;
}

/* latency and bandwidth keys of a mapping (a pair or the default). */
static int load_link(yamldoc *d, yaml_node_t *n, const char *what, sp_link *l)
{
    yaml_node_t *v;
    if (!(v = yd_need(d, n, "latency", what, "add `latency: SECONDS`, e.g. 0.0003")) ||
        yd_num(d, v, "latency", MIN_LATENCY, MAX_LATENCY, "s", &l->latency))
        return -1;
    if (!(v = yd_need(d, n, "bandwidth", what, "add `bandwidth: BYTES_PER_SECOND`, e.g. 110e6 for gigabit")) ||
        yd_num(d, v, "bandwidth", MIN_BANDWIDTH, MAX_BANDWIDTH, "B/s", &l->bandwidth))
        return -1;
    return 0;
}

static int board_index(const sp_cluster *c, const char *name)
{
    for (int i = 0; i < c->n_boards; i++)
        if (!strcmp(c->boards[i].name, name)) return i;
    return -1;
}

static int load_board(yamldoc *d, yaml_node_t *n, int index, sp_cluster *c)
{
    char what[48];
    snprintf(what, sizeof what, "board %d", index);
    if (yd_mapping(d, n, what, board_keys)) return -1;
    sp_board *b = &c->boards[index];
    memset(b, 0, sizeof *b);
    yaml_node_t *v;
    if (!(v = yd_need(d, n, "name", what, "add `name: WORD`")) || yd_word(d, v, "name", b->name, sizeof b->name))
        return -1;
    if (board_index(c, b->name) >= 0 && board_index(c, b->name) < index)
        return yd_fail(d, v, "board name '%s' is used twice; give each board its own name", b->name);
    memcpy(b->host, b->name, sizeof b->host); /* the host defaults to the name */
    if ((v = yd_get(d, n, "host")) && yd_word(d, v, "host", b->host, sizeof b->host)) return -1;
    b->host_given = v != NULL;

    yaml_node_t *pn = yd_need(d, n, "profile", what, "add `profile: ../boards/NAME.yaml` or an inline profile");
    if (!pn) return -1;
    if (pn->type == YAML_MAPPING_NODE) {
        if (sp_profile_from_node(d, pn, &b->profile)) return -1;
    } else {
        char rel[512], full[1024];
        if (yd_str(d, pn, "profile", rel, sizeof rel)) return -1;
        /* relative to the cluster file's folder */
        const char *slash = strrchr(d->path, '/');
        if (rel[0] == '/' || !slash) snprintf(full, sizeof full, "%s", rel);
        else snprintf(full, sizeof full, "%.*s/%s", (int)(slash - d->path), d->path, rel);
        sp_error perr;
        if (sp_profile_load(full, &b->profile, &perr))
            return yd_fail(d, pn, "board %s's profile: %s", b->name, perr.msg);
    }
    const sp_profile *p = &b->profile;

    b->threads = p->perf[p->n_perf - 1].threads;
    if ((v = yd_get(d, n, "threads"))) {
        if (yd_int(d, v, "threads", 1, SP_MAX_THREADS, &b->threads)) return -1;
        if (!sp_profile_perf(p, b->threads)) {
            char list[128] = "";
            for (int i = 0; i < p->n_perf; i++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, "%s%d", i ? ", " : "", p->perf[i].threads);
            }
            return yd_fail(d, v, "board %s: its profile %s has figures for threads %s, not %d; use one of those or "
                                 "profile the board with --threads %d",
                           b->name, p->name, list, b->threads, b->threads);
        }
    }
    /* whole MiB, so the plan's `memory:` reads as a size */
    b->memory = (p->ram_total - sp_memory_reserve(p->ram_total)) & ~((1ull << 20) - 1);
    if ((v = yd_get(d, n, "memory"))) {
        if (yd_size(d, v, "memory", &b->memory)) return -1;
        if (b->memory == 0 || b->memory > p->ram_total)
            return yd_fail(d, v, "board %s: memory %s must be above 0 and at most the profile's ram_total; give the "
                                 "bytes shardpipe may use on it", b->name, yd_text(v));
        b->memory_given = true;
    }
    b->slowdown = 1;
    if ((v = yd_get(d, n, "slowdown")) &&
        yd_num(d, v, "slowdown", MIN_SLOWDOWN, MAX_SLOWDOWN, "x the profile's time", &b->slowdown))
        return -1;
    return 0;
}

static int load_links(yamldoc *d, yaml_node_t *n, sp_cluster *c, bool set[][SP_CLUSTER_MAX_BOARDS])
{
    if (yd_mapping(d, n, "links", links_keys)) return -1;
    yaml_node_t *v;
    if ((v = yd_get(d, n, "default"))) {
        sp_link l;
        if (yd_mapping(d, v, "links.default", link_keys) || load_link(d, v, "links.default", &l)) return -1;
        for (int a = 0; a < c->n_boards; a++)
            for (int b = 0; b < c->n_boards; b++) {
                c->links[a][b] = l;
                set[a][b] = true;
            }
    }
    yaml_node_t *pairs = yd_get(d, n, "pairs");
    if (!pairs) return 0;
    if (pairs->type != YAML_SEQUENCE_NODE)
        return yd_fail(d, pairs, "links.pairs must be a list of `- between: [A, B]` entries");
    for (int i = 0; i < yd_seq_len(pairs); i++) {
        yaml_node_t *e = yd_seq_item(d, pairs, i);
        char what[48];
        snprintf(what, sizeof what, "links.pairs entry %d", i);
        if (yd_mapping(d, e, what, pair_keys)) return -1;
        yaml_node_t *bt = yd_need(d, e, "between", what, "add `between: [BOARD, BOARD]`");
        if (!bt) return -1;
        if (bt->type != YAML_SEQUENCE_NODE || yd_seq_len(bt) != 2)
            return yd_fail(d, bt, "between must name two boards: `between: [A, B]`");
        int ab[2];
        for (int k = 0; k < 2; k++) {
            char name[64];
            yaml_node_t *bn = yd_seq_item(d, bt, k);
            if (yd_word(d, bn, "a board name", name, sizeof name)) return -1;
            if ((ab[k] = board_index(c, name)) < 0)
                return yd_fail(d, bn, "no board is named '%s'; use a name from boards", name);
        }
        if (ab[0] == ab[1]) return yd_fail(d, bt, "between names board %s twice; name two boards", c->boards[ab[0]].name);
        sp_link l;
        if (load_link(d, e, what, &l)) return -1;
        c->links[ab[0]][ab[1]] = c->links[ab[1]][ab[0]] = l;
        set[ab[0]][ab[1]] = set[ab[1]][ab[0]] = true;
    }
    return 0;
}

int sp_cluster_load(const char *path, sp_cluster *c, sp_error *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    yamldoc d;
    if (yd_open(&d, path, "the cluster file", err)) return -1;
    int rc = -1;
    const char *where = "the cluster file";
    yaml_node_t *v, *boards, *root = d.root;
    bool set[SP_CLUSTER_MAX_BOARDS][SP_CLUSTER_MAX_BOARDS];
    memset(set, 0, sizeof set);
    if (yd_mapping(&d, root, where, top_keys)) goto done;
    if (!(v = yd_need(&d, root, "name", where, "add `name: WORD`")) || yd_word(&d, v, "name", c->name, sizeof c->name))
        goto done;
    if (!(boards = yd_need(&d, root, "boards", where, "add a `boards:` list"))) goto done;
    if (boards->type != YAML_SEQUENCE_NODE || yd_seq_len(boards) == 0) {
        yd_fail(&d, boards, "boards must be a non-empty list of `- name: ...` entries");
        goto done;
    }
    if (yd_seq_len(boards) > SP_CLUSTER_MAX_BOARDS) {
        yd_fail(&d, boards, "boards has %d entries; at most %d are supported", yd_seq_len(boards),
                SP_CLUSTER_MAX_BOARDS);
        goto done;
    }
    for (int i = 0; i < yd_seq_len(boards); i++) {
        c->n_boards = i;
        if (load_board(&d, yd_seq_item(&d, boards, i), i, c)) goto done;
    }
    c->n_boards = yd_seq_len(boards);
    if ((v = yd_get(&d, root, "handoff")) && yd_num(&d, v, "handoff", 0, MAX_HANDOFF, "s", &c->handoff)) goto done;
    if ((v = yd_get(&d, root, "links")) && load_links(&d, v, c, set)) goto done;
    /* a board talks to itself through memory: no cost */
    for (int a = 0; a < c->n_boards; a++) {
        c->links[a][a] = (sp_link){0, 0};
        for (int b = 0; b < c->n_boards; b++)
            if (a != b && !set[a][b]) {
                yd_fail(&d, v ? v : root, "no link is given between boards %s and %s; add `links: default:` or a "
                                          "`- between: [%s, %s]` pair with latency and bandwidth",
                        c->boards[a].name, c->boards[b].name, c->boards[a].name, c->boards[b].name);
                goto done;
            }
    }
    rc = 0;
done:
    yd_close(&d);
    return rc;
}

int sp_cluster_write(const sp_cluster *c, const char *const *profile_paths, const char *path, const char *header,
                     sp_error *err)
{
    sp_atomic_file out;
    if (sp_atomic_open(&out, path, "the cluster file", err)) return -1;
    FILE *f = out.f;
    for (const char *s = header; s && *s;) {
        const char *nl = strchr(s, '\n');
        int len = nl ? (int)(nl - s) : (int)strlen(s);
        fprintf(f, "#%s%.*s\n", len ? " " : "", len, s);
        s = nl ? nl + 1 : NULL;
    }
    fprintf(f, "name: %s\nboards:\n", c->name);
    for (int i = 0; i < c->n_boards; i++) {
        const sp_board *b = &c->boards[i];
        fprintf(f, "  - name: %s\n    host: %s\n    profile: %s\n", b->name, b->host, profile_paths[i]);
        if (b->threads > 0) fprintf(f, "    threads: %d\n", b->threads);
        if (b->memory_given) {
            char size[48];
            yd_format_size(b->memory, size, sizeof size);
            fprintf(f, "    memory: %s\n", size);
        }
    }
    /* one board has no pair: an empty `pairs:` would read back as null, not a list */
    if (c->n_boards > 1)
        fprintf(f, "links:                    # latency s (lower decile of ping-pong / 2), bandwidth B/s\n  pairs:\n");
    for (int a = 0; a < c->n_boards; a++)
        for (int b = a + 1; b < c->n_boards; b++)
            fprintf(f, "    - between: [%s, %s]\n      latency: %.3e\n      bandwidth: %.4e\n", c->boards[a].name,
                    c->boards[b].name, c->links[a][b].latency, c->links[a][b].bandwidth);
    return sp_atomic_commit(&out, true, err);
}
