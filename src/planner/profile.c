/* profile.c - board profiles: the YAML schema of docs/profile-format.md,
 * read with range checks that catch implausible figures (a bandwidth of 0
 * or of 10 TB/s, 0 cores, 10 MB of RAM) and written back by
 * `shardpipe profile`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shardpipe/atomicfile.h"
#include "shardpipe/profile.h"
#include "yamldoc.h"

const int sp_sgemm_rows[SP_SGEMM_NROWS] = {1, 8, 32, 128};

static const char *const mv_names[SP_MV_COUNT + 1] = {"q8_0", "q4_0", "f16",  "f32",
                                                      "q4_k", "q6_k", "iq4_nl", NULL};

const char *sp_mv_name(sp_mv_type t) { return t >= 0 && t < SP_MV_COUNT ? mv_names[t] : "?"; }

/* Plausible ranges. A small board's DRAM reads at ~2 GB/s, a server's at a
 * few hundred; anything outside these bounds is a typo or a unit mix-up. */
#define MIN_GBS 0.05
#define MAX_GBS 2000.0
#define MIN_GFLOPS 0.01
#define MAX_GFLOPS 100000.0
#define MIN_RAM (64ull << 20)
#define MAX_RAM (64ull << 40)

static const char *const profile_keys[] = {"name", "source", "origin", "date", "cpu", "cores", "arch", "simd",
                                           "ram_total", "ram_available", "perf", NULL};
static const char *const perf_keys[] = {"threads", "memory_read_gbs", "matvec", "sgemm_gflops",
                                        "sgemm_min_rows", "attention_gflops", NULL};
static const char *const mv_keys[] = {"gbs", "gflops", "gflops32", "gflops128", NULL};
const int sp_tile_rows[SP_TILE_NROWS] = {32, 128};
static const char *const sgemm_keys[] = {"1", "8", "32", "128", NULL};

static int load_perf(yamldoc *d, yaml_node_t *n, int index, int cores, sp_thread_perf *t)
{
    char what[64];
    snprintf(what, sizeof what, "perf entry %d", index);
    if (yd_mapping(d, n, what, perf_keys)) return -1;
    yaml_node_t *v;
    const char *hint = "every perf entry needs threads, memory_read_gbs, matvec and sgemm_gflops";
    if (!(v = yd_need(d, n, "threads", what, hint)) || yd_int(d, v, "threads", 1, 1024, &t->threads)) return -1;
    if (t->threads > cores)
        return yd_fail(d, v, "threads %d is more than the board's %d cores; measure with at most %d threads",
                       t->threads, cores, cores);
    if (!(v = yd_need(d, n, "memory_read_gbs", what, hint)) ||
        yd_num(d, v, "memory_read_gbs", MIN_GBS, MAX_GBS, "GB/s", &t->mem_read_gbs))
        return -1;

    yaml_node_t *mv = yd_need(d, n, "matvec", what, hint);
    if (!mv || yd_mapping(d, mv, "matvec", mv_names)) return -1;
    for (int i = 0; i < SP_MV_COUNT; i++) {
        char name[48];
        if (i >= SP_MV_FIRST_OPTIONAL && !yd_get(d, mv, mv_names[i])) {
            t->mv[i] = t->mv[SP_MV_Q4_0];
            continue;
        }
        yaml_node_t *m = yd_need(d, mv, mv_names[i], "matvec", "give gbs and gflops for q8_0, q4_0, f16 and f32");
        if (!m) return -1;
        snprintf(name, sizeof name, "matvec %s", mv_names[i]);
        if (yd_mapping(d, m, name, mv_keys)) return -1;
        snprintf(name, sizeof name, "matvec %s gbs", mv_names[i]);
        if (!(v = yd_need(d, m, "gbs", name, "add `gbs: N`, GB/s of weights streamed")) ||
            yd_num(d, v, name, MIN_GBS, MAX_GBS, "GB/s", &t->mv[i].gbs))
            return -1;
        snprintf(name, sizeof name, "matvec %s gflops", mv_names[i]);
        if (!(v = yd_need(d, m, "gflops", name, "add `gflops: N`")) ||
            yd_num(d, v, name, MIN_GFLOPS, MAX_GFLOPS, "GFLOPS", &t->mv[i].gflops))
            return -1;
        /* optional: the prompt tiles at 32 and 128 rows */
        for (int k = 0; k < SP_TILE_NROWS; k++) {
            snprintf(name, sizeof name, "matvec %s %s", mv_names[i], mv_keys[2 + k]);
            if ((v = yd_get(d, m, mv_keys[2 + k])) &&
                yd_num(d, v, name, MIN_GFLOPS, MAX_GFLOPS, "GFLOPS", &t->mv[i].tile_gflops[k]))
                return -1;
        }
    }

    yaml_node_t *sg = yd_need(d, n, "sgemm_gflops", what, hint);
    if (!sg || yd_mapping(d, sg, "sgemm_gflops", sgemm_keys)) return -1;
    for (int i = 0; i < SP_SGEMM_NROWS; i++) {
        char name[48];
        snprintf(name, sizeof name, "sgemm_gflops at %d rows", sp_sgemm_rows[i]);
        if (!(v = yd_need(d, sg, sgemm_keys[i], "sgemm_gflops", "give GFLOPS at rows 1, 8, 32 and 128")) ||
            yd_num(d, v, name, MIN_GFLOPS, MAX_GFLOPS, "GFLOPS", &t->sgemm_gflops[i]))
            return -1;
    }

    /* optional: the engine's crossover on this board (0 = never sgemm) */
    t->sgemm_min_rows = SP_PROFILE_DEFAULT_SGEMM_MIN_ROWS;
    if ((v = yd_get(d, n, "sgemm_min_rows")) &&
        yd_int(d, v, "sgemm_min_rows", 0, 1 << 20, &t->sgemm_min_rows))
        return -1;
    /* optional: the attention kernels (profiles measured before them lack it) */
    if ((v = yd_get(d, n, "attention_gflops")) &&
        yd_num(d, v, "attention_gflops", MIN_GFLOPS, MAX_GFLOPS, "GFLOPS", &t->attention_gflops))
        return -1;
    return 0;
}

int sp_profile_from_node(yamldoc *d, yaml_node_t *n, sp_profile *p)
{
    const char *hint = "see docs/profile-format.md";
    const char *where = "the profile";
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", d->path);
    if (yd_mapping(d, n, "a profile", profile_keys)) return -1;
    yaml_node_t *v;
    if (!(v = yd_need(d, n, "name", where, hint)) || yd_word(d, v, "name", p->name, sizeof p->name)) return -1;

    char source[32];
    if (!(v = yd_need(d, n, "source", where, "add `source: measured` or `source: published`")) ||
        yd_str(d, v, "source", source, sizeof source))
        return -1;
    if (strcmp(source, "measured") && strcmp(source, "published"))
        return yd_fail(d, v, "source '%s' is neither measured nor published; write one of them", source);
    p->measured = !strcmp(source, "measured");
    if (!(v = yd_need(d, n, "origin", where, "say where the figures come from")) ||
        yd_str(d, v, "origin", p->origin, sizeof p->origin))
        return -1;
    if (!(v = yd_need(d, n, "date", where, "add `date: YYYY-MM-DD`")) || yd_str(d, v, "date", p->date, sizeof p->date))
        return -1;
    if (strlen(p->date) != 10 || strspn(p->date, "0123456789-") != 10 || p->date[4] != '-' || p->date[7] != '-')
        return yd_fail(d, v, "date '%s' is not YYYY-MM-DD; write e.g. 2024-05-01", p->date);
    if (!(v = yd_need(d, n, "cpu", where, hint)) || yd_str(d, v, "cpu", p->cpu, sizeof p->cpu)) return -1;
    if (!(v = yd_need(d, n, "cores", where, hint)) || yd_int(d, v, "cores", 1, 1024, &p->cores)) return -1;
    if (!(v = yd_need(d, n, "arch", where, hint)) || yd_word(d, v, "arch", p->arch, sizeof p->arch)) return -1;

    if ((v = yd_get(d, n, "simd"))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return yd_fail(d, v, "simd must be a list of CPU features, e.g. [neon, asimddp]");
        for (int i = 0; i < yd_seq_len(v); i++) {
            char feat[48];
            if (yd_word(d, yd_seq_item(d, v, i), "a simd feature", feat, sizeof feat)) return -1;
            size_t len = strlen(p->simd);
            if (len + strlen(feat) + 2 >= sizeof p->simd)
                return yd_fail(d, v, "simd lists too many features; keep those the kernels use");
            snprintf(p->simd + len, sizeof p->simd - len, "%s%s", len ? " " : "", feat);
        }
    }

    yaml_node_t *rt = yd_need(d, n, "ram_total", where, "add `ram_total: 8GiB`");
    if (!rt || yd_size(d, rt, "ram_total", &p->ram_total)) return -1;
    if (p->ram_total < MIN_RAM || p->ram_total > MAX_RAM)
        return yd_fail(d, rt, "ram_total %s is implausible; it must be from 64MiB to 64TiB (check the unit)",
                       yd_text(rt));
    if ((v = yd_get(d, n, "ram_available"))) {
        if (yd_size(d, v, "ram_available", &p->ram_available)) return -1;
        if (p->ram_available > p->ram_total)
            return yd_fail(d, v, "ram_available %s is more than ram_total %s; it must be at most ram_total",
                           yd_text(v), yd_text(rt));
    } else {
        p->ram_available = p->ram_total;
    }

    yaml_node_t *perf = yd_need(d, n, "perf", where, "add a `perf:` list with one entry per thread count");
    if (!perf) return -1;
    if (perf->type != YAML_SEQUENCE_NODE || yd_seq_len(perf) == 0)
        return yd_fail(d, perf, "perf must be a non-empty list of entries, one per thread count (`- threads: 1`)");
    if (yd_seq_len(perf) > SP_PROFILE_MAX_THREADS)
        return yd_fail(d, perf, "perf has %d entries; at most %d are supported", yd_seq_len(perf),
                       SP_PROFILE_MAX_THREADS);
    for (int i = 0; i < yd_seq_len(perf); i++) {
        yaml_node_t *e = yd_seq_item(d, perf, i);
        sp_thread_perf t = {0}; /* optional fields (the tile figures) stay 0 when absent */
        if (load_perf(d, e, i, p->cores, &t)) return -1;
        /* keep entries sorted by thread count, each count once */
        int j = p->n_perf;
        for (int k = 0; k < p->n_perf; k++)
            if (p->perf[k].threads == t.threads)
                return yd_fail(d, e, "perf entry %d repeats threads %d; give each thread count once", i, t.threads);
        while (j > 0 && p->perf[j - 1].threads > t.threads) {
            p->perf[j] = p->perf[j - 1];
            j--;
        }
        p->perf[j] = t;
        p->n_perf++;
    }
    return 0;
}

int sp_profile_load(const char *path, sp_profile *p, sp_error *err)
{
    yamldoc d;
    if (yd_open(&d, path, "the board profile", err)) return -1;
    int rc = sp_profile_from_node(&d, d.root, p);
    yd_close(&d);
    return rc;
}

const sp_thread_perf *sp_profile_perf(const sp_profile *p, int threads)
{
    for (int i = 0; i < p->n_perf; i++)
        if (p->perf[i].threads == threads) return &p->perf[i];
    return NULL;
}

/* A double-quoted YAML string. */
static void write_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fputc(' ', f);
        /* YAML folds NEL, LS and PS as line breaks even inside quotes */
        else if (!strncmp(s, "\xc2\x85", 2)) fputs("\\N", f), s += 1;
        else if (!strncmp(s, "\xe2\x80\xa8", 3)) fputs("\\L", f), s += 2;
        else if (!strncmp(s, "\xe2\x80\xa9", 3)) fputs("\\P", f), s += 2;
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void write_comment(FILE *f, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(f, "#%s%.*s\n", len ? " " : "", len, text);
        text = nl ? nl + 1 : NULL;
    }
}

int sp_profile_write(const sp_profile *p, const char *path, const char *header, sp_error *err)
{
    sp_atomic_file out;
    if (sp_atomic_open(&out, path, "the profile", err)) return -1;
    FILE *f = out.f;
    char size[48];
    write_comment(f, header);
    fprintf(f, "name: %s\nsource: %s\norigin: ", p->name, p->measured ? "measured" : "published");
    write_quoted(f, p->origin);
    fprintf(f, "\ndate: %s\ncpu: ", p->date);
    write_quoted(f, p->cpu);
    fprintf(f, "\ncores: %d\narch: %s\nsimd: [", p->cores, p->arch);
    for (const char *s = p->simd; *s; s++) {
        if (*s == ' ') fputs(", ", f);
        else fputc(*s, f);
    }
    yd_format_size(p->ram_total, size, sizeof size);
    fprintf(f, "]\nram_total: %s\n", size);
    yd_format_size(p->ram_available, size, sizeof size);
    fprintf(f, "ram_available: %s\n", size);
    fprintf(f, "perf:                     # one entry per kernel thread count\n");
    for (int i = 0; i < p->n_perf; i++) {
        const sp_thread_perf *t = &p->perf[i];
        fprintf(f, "  - threads: %d\n    memory_read_gbs: %.2f\n", t->threads, t->mem_read_gbs);
        fprintf(f, "    matvec:               # GB/s of weights streamed (1 row), GFLOPS at 8 (32, 128) rows\n");
        for (int k = 0; k < SP_MV_COUNT; k++) {
            char key[16];
            snprintf(key, sizeof key, "%s:", mv_names[k]);
            fprintf(f, "      %-7s {gbs: %.2f, gflops: %.2f", key, t->mv[k].gbs, t->mv[k].gflops);
            for (int j = 0; j < SP_TILE_NROWS; j++)
                if (t->mv[k].tile_gflops[j] > 0) fprintf(f, ", %s: %.2f", mv_keys[2 + j], t->mv[k].tile_gflops[j]);
            fputs("}\n", f);
        }
        fprintf(f, "    sgemm_gflops: {");
        for (int k = 0; k < SP_SGEMM_NROWS; k++)
            fprintf(f, "%s%d: %.2f", k ? ", " : "", sp_sgemm_rows[k], t->sgemm_gflops[k]);
        fprintf(f, "}     # by micro-batch rows\n");
        fprintf(f, "    sgemm_min_rows: %d     # quantized weights take sgemm from this many rows (0: never)\n",
                t->sgemm_min_rows);
        if (t->attention_gflops > 0)
            fprintf(f, "    attention_gflops: %.2f     # fp16 KV cache: 4 x q_dim flops per row and position\n",
                    t->attention_gflops);
    }
    return sp_atomic_commit(&out, true, err);
}
