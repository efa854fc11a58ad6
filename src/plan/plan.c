/* plan.c - reading partition plans (schema: docs/plan-format.md).
 *
 * sp_plan_load parses the YAML with libyaml's document API and walks the node
 * tree by hand, so that every problem - a syntax error, an unknown or repeated
 * key, a value of the wrong type or out of range - is reported once, at the
 * line and column of the node that caused it, with the fix. Checks that need
 * the model or the MPI world live in plan_check.c, writing in plan_write.c. */
#include "shardpipe/plan.h"
#include "shardpipe/threads.h"
#include "shardpipe/yamlfile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

const char *sp_wire_name(sp_wire_type w)
{
    switch (w) {
    case SP_WIRE_F32: return "f32";
    case SP_WIRE_F16: return "f16";
    case SP_WIRE_Q8_0: return "q8_0";
    }
    return "?";
}

/* Keys allowed in each mapping of the schema. */
static const char *const top_keys[] = {"model", "context", "batching", "wire", "predicted_tok_s", "stages", NULL};
static const char *const model_keys[] = {"path", "sha256", NULL};
static const char *const batching_keys[] = {"sequences", "micro_batches", "prefill_chunk", "prefill_chunks", NULL};
static const char *const stage_keys[] = {"rank",   "host",         "layers", "threads",
                                         "memory", "predicted_ms", "model",  NULL};
static const char *const wire_names[] = {"f32", "f16", "q8_0", NULL};

/* Byte-size suffixes of `memory`: decimal (KB = 1000) and binary (KiB = 1024). */
static const struct {
    const char *suffix;
    uint64_t scale;
} size_units[] = {
    {"B", 1},
    {"KB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
};

/* ---- YAML tree walking ---- */

typedef struct loader {
    yaml_document_t doc;
    const char *path;
    sp_error *err;
} loader;

static sp_plan_loc loc_of(const yaml_node_t *n)
{
    sp_plan_loc l = {(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
    return l;
}

/* "PLAN:LINE:COL: message" at node n. Returns -1. */
static int fail(loader *ld, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(loader *ld, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[sizeof ld->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sp_plan_loc l = loc_of(n);
    return sp_errorf(ld->err, "%s:%d:%d: %s", ld->path, l.line, l.col, msg);
}

static yaml_node_t *node_at(loader *ld, int index)
{
    return yaml_document_get_node(&ld->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain scalar that YAML reads as null: nothing, `~` or `null`. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *s = scalar(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* What a node is, for "expected X, got Y" messages. */
static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (is_null(n)) return "nothing";
    snprintf(buf, size, "'%.60s'", scalar(n));
    return buf;
}

/* Levenshtein distance, for "did you mean" suggestions on short keys. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    int row[41];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known word closest to s if within edit distance 2, else NULL. */
static const char *closest(const char *s, const char *const *known)
{
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; known[i]; i++) {
        int d = edit_distance(s, known[i]);
        if (d < best_d) best_d = d, best = known[i];
    }
    return best;
}

/* "a, b, c" from a NULL-terminated list. */
static const char *join(const char *const *words, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; words[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", words[i]);
    }
    return buf;
}

/* Every key of mapping `map` must be a scalar, one of `known`, and appear
 * once. `where` names the mapping in messages ("at the top level", "in stage 1"). */
static int check_keys(loader *ld, yaml_node_t *map, const char *where, const char *const *known)
{
    char list[256];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(ld, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail(ld, k, "keys must be words, got %s %s; write `key: value` pairs",
                        k->type == YAML_MAPPING_NODE ? "a mapping" : "a list", where);
        const char *name = scalar(k);
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(name, known[i]);
        if (!ok) {
            const char *near = closest(name, known);
            if (near)
                return fail(ld, k, "unknown key '%s' %s (did you mean '%s'?); the keys allowed here are %s",
                            name, where, near, join(known, list, sizeof list));
            return fail(ld, k, "unknown key '%s' %s; the keys allowed here are %s", name, where,
                        join(known, list, sizeof list));
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = node_at(ld, q->key);
            if (prev->type == YAML_SCALAR_NODE && !strcmp(scalar(prev), name))
                return fail(ld, k, "key '%s' appears twice %s (first at line %d); remove one of them", name,
                            where, loc_of(prev).line);
        }
    }
    return 0;
}

/* Value of `key` in a mapping whose keys were checked, or NULL. */
static yaml_node_t *lookup(loader *ld, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
        if (!strcmp(scalar(node_at(ld, p->key)), key)) return node_at(ld, p->value);
    return NULL;
}

/* Integer scalar `name` in [min, max]; `fix` says what to write instead. */
static int get_int(loader *ld, yaml_node_t *n, const char *name, long min, long max, const char *fix, int *out)
{
    char buf[80];
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail(ld, n, "%s must be an integer, got %s; %s", name, describe(n, buf, sizeof buf), fix);
    const char *s = scalar(n);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
        return fail(ld, n, "%s must be an integer, got '%.40s'; %s", name, s, fix);
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return fail(ld, n, "%s must be an integer, got the quoted string \"%.40s\"; remove the quotes", name, s);
    if (errno == ERANGE || v < min || v > max) {
        if (v < min && min == 0)
            return fail(ld, n, "%s must not be negative, got %.40s; %s", name, s, fix);
        return fail(ld, n, "%s must be between %ld and %ld, got %.40s; %s", name, min, max, s, fix);
    }
    *out = (int)v;
    return 0;
}

/* A number >= 0 (the planner's predictions); `what` says its unit, e.g.
 * "milliseconds", `example` a valid value. */
static int get_estimate(loader *ld, yaml_node_t *n, const char *name, const char *what, const char *example,
                        double *out)
{
    char buf[80], *end;
    const char *text = n->type == YAML_SCALAR_NODE ? scalar(n) : "";
    *out = strtod(text, &end);
    if (n->type != YAML_SCALAR_NODE || end == text || *end || !(*out >= 0) || *out > 1e9)
        return fail(ld, n, "%s must be a number of %s >= 0, got %s; write e.g. %s or remove the key", name, what,
                    describe(n, buf, sizeof buf), example);
    return 0;
}

/* A non-empty scalar, taken as text (so `host: 5` is the string "5"). */
static int get_str(loader *ld, yaml_node_t *n, const char *name, const char *fix, const char **out)
{
    char buf[80];
    if (n->type != YAML_SCALAR_NODE || is_null(n) || !*scalar(n))
        return fail(ld, n, "%s must be a string, got %s; %s", name, describe(n, buf, sizeof buf), fix);
    *out = scalar(n);
    return 0;
}

/* "3.5GiB", "512 MB", "1000000": a positive number of bytes. Returns 0 and
 * the bytes, or -1 when the text is not a size. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!(*s >= '0' && *s <= '9')) return -1;
    double x = strtod(s, &end);
    if (end == s || errno == ERANGE) return -1;
    while (*end == ' ') end++;
    uint64_t scale = 0;
    if (!*end) {
        /* bare number: bytes, which must be whole */
        if (x != floor(x)) return -1;
        scale = 1;
    } else {
        for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
            if (!strcmp(end, size_units[i].suffix)) scale = size_units[i].scale;
        if (!scale) return -1;
    }
    double bytes = x * (double)scale;
    if (!(bytes >= 1) || bytes > 1e18) return -1;
    *out = (uint64_t)llround(bytes);
    return 0;
}

/* ---- schema ---- */

/* Relative model paths are taken from the plan file's folder. */
static int resolve_path(loader *ld, yaml_node_t *v, const char *key, const char *p, char *out, size_t size)
{
    const char *slash = strrchr(ld->path, '/');
    int n;
    if (p[0] == '/' || !slash) n = snprintf(out, size, "%s", p);
    else n = snprintf(out, size, "%.*s/%s", (int)(slash - ld->path), ld->path, p);
    if (n < 0 || (size_t)n >= size)
        return fail(ld, v, "%s is longer than %zu characters once resolved; use a shorter path", key, size - 1);
    return 0;
}

static int load_model(loader *ld, yaml_node_t *m, sp_plan *plan)
{
    char buf[80];
    if (m->type != YAML_MAPPING_NODE)
        return fail(ld, m, "model must be a mapping with a 'path' key, got %s; write `model:` and below it "
                           "`  path: MODEL.gguf`", describe(m, buf, sizeof buf));
    if (check_keys(ld, m, "in model", model_keys)) return -1;
    yaml_node_t *path = lookup(ld, m, "path");
    if (!path) return fail(ld, m, "model has no 'path'; add `path: MODEL.gguf` under model");
    const char *p;
    if (get_str(ld, path, "model.path", "give the GGUF file, relative to this plan's folder or absolute", &p))
        return -1;
    if (resolve_path(ld, path, "model.path", p, plan->model_path, sizeof plan->model_path)) return -1;

    yaml_node_t *sha = lookup(ld, m, "sha256");
    if (sha) {
        const char *h;
        if (get_str(ld, sha, "model.sha256", "paste the output of `sha256sum MODEL.gguf`", &h)) return -1;
        size_t len = strlen(h);
        size_t bad = strspn(h, "0123456789abcdefABCDEF");
        if (len != 64 || bad != len)
            return fail(ld, sha, "model.sha256 must be 64 hexadecimal digits, got %zu characters%s; paste the "
                                 "output of `sha256sum MODEL.gguf` or remove the key",
                        len, bad != len ? " with non-hex ones" : "");
        for (size_t i = 0; i < 64; i++) {
            char c = h[i];
            plan->model_sha256[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        }
        plan->model_sha256[64] = '\0';
        plan->loc_sha256 = loc_of(sha);
    }
    return 0;
}

/* batching.prefill_chunks: {FROM: ROWS, ...}, FROM ascending from 1, each
 * ROWS at most prefill_chunk (checked by the caller once that is known). */
static int load_prefill_chunks(loader *ld, yaml_node_t *m, sp_plan *plan)
{
    char buf[80];
    const char *fix = "write e.g. `prefill_chunks: {1: 8, 200: 16, 600: 32}`: from that many prompt tokens on, "
                      "chunks of that many rows (shardpipe plan writes it), or remove the key";
    if (m->type != YAML_MAPPING_NODE)
        return fail(ld, m, "prefill_chunks must be a mapping, got %s; %s", describe(m, buf, sizeof buf), fix);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        if (plan->n_prefill == SP_PLAN_MAX_PREFILL)
            return fail(ld, node_at(ld, p->key), "prefill_chunks has more than %d entries; merge some",
                        SP_PLAN_MAX_PREFILL);
        int i = plan->n_prefill, from, rows;
        yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
        if (get_int(ld, k, "a prefill_chunks key (prompt tokens)", 1, 1 << 24, fix, &from) ||
            get_int(ld, v, "a prefill_chunks value (rows)", 1, 65536, fix, &rows))
            return -1;
        if (i == 0 && from != 1)
            return fail(ld, k, "prefill_chunks must start at 1 prompt token, got %d; %s", from, fix);
        if (i > 0 && from <= plan->prefill_from[i - 1])
            return fail(ld, k, "prefill_chunks keys must ascend, got %d after %d; %s", from,
                        plan->prefill_from[i - 1], fix);
        plan->prefill_from[i] = from;
        plan->prefill_rows[i] = rows;
        plan->n_prefill++;
    }
    return 0;
}

static int load_batching(loader *ld, yaml_node_t *b, sp_plan *plan)
{
    char buf[80];
    if (b->type != YAML_MAPPING_NODE)
        return fail(ld, b, "batching must be a mapping of sequences, micro_batches and prefill_chunk, got %s; "
                           "indent those keys under it or remove it",
                    describe(b, buf, sizeof buf));
    if (check_keys(ld, b, "in batching", batching_keys)) return -1;
    yaml_node_t *v;
    if ((v = lookup(ld, b, "sequences")) &&
        get_int(ld, v, "sequences", 1, 65536, "give the number of sequences in flight, e.g. 1", &plan->sequences))
        return -1;
    if ((v = lookup(ld, b, "prefill_chunk")) &&
        get_int(ld, v, "prefill_chunk", 1, 65536, "give the prompt tokens per micro-batch, e.g. 32",
                &plan->prefill_chunk))
        return -1;
    if ((v = lookup(ld, b, "prefill_chunks"))) {
        if (load_prefill_chunks(ld, v, plan)) return -1;
        for (int i = 0; i < plan->n_prefill; i++)
            if (plan->prefill_rows[i] > plan->prefill_chunk)
                return fail(ld, node_at(ld, v->data.mapping.pairs.start[i].value),
                            "prefill_chunks gives %d rows, more than prefill_chunk %d (the rows a micro-batch "
                            "holds); raise prefill_chunk or lower the entry", plan->prefill_rows[i],
                            plan->prefill_chunk);
    }
    if ((v = lookup(ld, b, "micro_batches"))) {
        if (get_int(ld, v, "micro_batches", 1, 65536, "give the number of micro-batches, e.g. 1",
                    &plan->micro_batches))
            return -1;
        if (plan->micro_batches > plan->sequences)
            return fail(ld, v, "micro_batches %d is more than sequences %d, so some micro-batches would be "
                               "empty; lower micro_batches to at most %d or raise sequences",
                        plan->micro_batches, plan->sequences, plan->sequences);
    }
    return 0;
}

static int load_layers(loader *ld, yaml_node_t *v, sp_stage_plan *st, int index)
{
    char buf[80];
    const char *fix = "write `layers: [FIRST, LAST]` (inclusive) or `layers: N` for one layer";
    st->loc_layers = loc_of(v);
    if (v->type == YAML_SCALAR_NODE) {
        if (get_int(ld, v, "layers", 0, 1 << 20, fix, &st->first)) return -1;
        st->last = st->first;
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(ld, v, "layers of stage %d must be [first, last], got %s; %s", index,
                    describe(v, buf, sizeof buf), fix);
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n != 2)
        return fail(ld, v, "layers of stage %d must be a list of 2 layer numbers [first, last], got %d item%s; %s",
                    index, n, n == 1 ? "" : "s", fix);
    yaml_node_t *a = node_at(ld, v->data.sequence.items.start[0]);
    yaml_node_t *b = node_at(ld, v->data.sequence.items.start[1]);
    if (get_int(ld, a, "the first layer", 0, 1 << 20, "layers are numbered from 0", &st->first) ||
        get_int(ld, b, "the last layer", 0, 1 << 20, "layers are numbered from 0", &st->last))
        return -1;
    if (st->first > st->last)
        return fail(ld, v, "layers [%d, %d] of stage %d start after they end; write [%d, %d]", st->first, st->last,
                    index, st->last, st->first);
    return 0;
}

static int load_stage(loader *ld, yaml_node_t *s, sp_stage_plan *st, int index)
{
    char buf[80], where[32];
    if (s->type != YAML_MAPPING_NODE)
        return fail(ld, s, "stage %d must be a mapping with rank, host and layers, got %s; write `- rank: N` "
                           "and indent the other keys under it",
                    index, describe(s, buf, sizeof buf));
    snprintf(where, sizeof where, "in stage %d", index);
    if (check_keys(ld, s, where, stage_keys)) return -1;
    st->loc = st->loc_rank = st->loc_layers = st->loc_budget = loc_of(s);
    st->threads = 0; /* the rank's default: the CPUs of its affinity mask */
    snprintf(st->host, sizeof st->host, "localhost");

    yaml_node_t *v = lookup(ld, s, "rank");
    if (!v) return fail(ld, s, "stage %d has no 'rank'; add `rank: N`, the MPI rank that runs it", index);
    if (get_int(ld, v, "rank", 0, 65535, "give the MPI rank that runs this stage", &st->rank)) return -1;
    st->loc_rank = loc_of(v);

    if ((v = lookup(ld, s, "host"))) {
        const char *h;
        if (get_str(ld, v, "host", "give the machine's host name", &h)) return -1;
        if (strlen(h) >= sizeof st->host)
            return fail(ld, v, "host '%.20s...' is longer than %zu characters; use a shorter host name", h,
                        sizeof st->host - 1);
        if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(h))
            return fail(ld, v, "host '%s' may contain only letters, digits, '.', '-' and '_'; use the machine's "
                               "host name",
                        h);
        snprintf(st->host, sizeof st->host, "%s", h);
    }

    if (!(v = lookup(ld, s, "layers")))
        return fail(ld, s, "stage %d has no 'layers'; add `layers: [FIRST, LAST]`, the layers it runs", index);
    if (load_layers(ld, v, st, index)) return -1;

    if ((v = lookup(ld, s, "threads")) &&
        get_int(ld, v, "threads", 1, SP_MAX_THREADS, "give the number of cores this rank may use, e.g. 4", &st->threads))
        return -1;

    if ((v = lookup(ld, s, "memory"))) {
        const char *units = "write a number of bytes or one with a B, KB, MB, GB, KiB, MiB or GiB suffix, "
                            "e.g. 3.5GiB";
        st->loc_budget = loc_of(v);
        if (v->type != YAML_SCALAR_NODE || is_null(v))
            return fail(ld, v, "memory must be a size, got %s; %s", describe(v, buf, sizeof buf), units);
        if (parse_size(scalar(v), &st->memory_budget))
            return fail(ld, v, "memory '%.40s' is not a size; %s", scalar(v), units);
    }

    if ((v = lookup(ld, s, "model"))) {
        const char *p;
        if (get_str(ld, v, "model", "give this stage's GGUF shard (shardpipe split), relative to this plan's "
                                    "folder or absolute", &p) ||
            resolve_path(ld, v, "the stage's model", p, st->model_path, sizeof st->model_path))
            return -1;
    }

    if ((v = lookup(ld, s, "predicted_ms")) &&
        get_estimate(ld, v, "predicted_ms", "milliseconds", "12.5", &st->predicted_ms))
        return -1;
    return 0;
}

static int load_stages(loader *ld, yaml_node_t *v, sp_plan *plan)
{
    char buf[80];
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(ld, v, "stages must be a list of stages, got %s; write each stage as `- rank: N` on its own "
                           "line under stages",
                    describe(v, buf, sizeof buf));
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0) return fail(ld, v, "stages is empty; list at least one stage with its rank and layers");
    if (n > SP_PLAN_MAX_STAGES)
        return fail(ld, v, "stages has %d entries but at most %d are supported; merge some stages", n,
                    SP_PLAN_MAX_STAGES);
    plan->n_stages = n;
    for (int i = 0; i < n; i++) {
        yaml_node_t *s = node_at(ld, v->data.sequence.items.start[i]);
        sp_stage_plan *st = &plan->stages[i];
        if (load_stage(ld, s, st, i)) return -1;
        for (int j = 0; j < i; j++) {
            const sp_stage_plan *o = &plan->stages[j];
            if (o->rank != st->rank) continue;
            yaml_node_t *r = lookup(ld, s, "rank");
            if (!strcmp(o->host, st->host))
                return fail(ld, r, "stage %d repeats rank %d on host %s, already given to stage %d; remove the "
                                   "duplicate or give it another rank",
                            i, st->rank, st->host, j);
            return fail(ld, r, "rank %d is given to both stage %d (host %s) and stage %d (host %s); give each "
                               "stage its own rank",
                        st->rank, j, o->host, i, st->host);
        }
    }
    return 0;
}

static int load_root(loader *ld, yaml_node_t *root, sp_plan *plan)
{
    char buf[80];
    if (root->type != YAML_MAPPING_NODE)
        return fail(ld, root, "the top level must be a mapping with model, context and stages, got %s; see "
                              "docs/plan-format.md",
                    describe(root, buf, sizeof buf));
    if (check_keys(ld, root, "at the top level", top_keys)) return -1;

    yaml_node_t *v;
    if (!(v = lookup(ld, root, "model")))
        return fail(ld, root, "missing key 'model' at the top level; add a model block with `path: MODEL.gguf`");
    plan->loc_model = loc_of(v);
    if (load_model(ld, v, plan)) return -1;

    if (!(v = lookup(ld, root, "context")))
        return fail(ld, root, "missing key 'context' at the top level; add e.g. `context: 512` (positions per "
                              "sequence)");
    plan->loc_context = loc_of(v);
    if (get_int(ld, v, "context", 1, SP_MAX_CONTEXT, "give the positions per sequence, e.g. 512", &plan->context))
        return -1;

    if ((v = lookup(ld, root, "batching")) && load_batching(ld, v, plan)) return -1;

    if ((v = lookup(ld, root, "wire"))) {
        const char *w;
        char list[64];
        if (get_str(ld, v, "wire", "use one of f32, f16, q8_0", &w)) return -1;
        int found = -1;
        for (int i = 0; wire_names[i]; i++)
            if (!strcmp(w, wire_names[i])) found = i;
        if (found < 0) {
            const char *near = closest(w, wire_names);
            if (near)
                return fail(ld, v, "wire '%s' is not a wire type (did you mean '%s'?); use one of %s", w, near,
                            join(wire_names, list, sizeof list));
            return fail(ld, v, "wire '%s' is not a wire type; use one of %s", w, join(wire_names, list, sizeof list));
        }
        plan->wire = (sp_wire_type)found;
    }

    if ((v = lookup(ld, root, "predicted_tok_s")) &&
        get_estimate(ld, v, "predicted_tok_s", "tokens per second", "46.5", &plan->predicted_tok_s))
        return -1;

    if (!(v = lookup(ld, root, "stages")))
        return fail(ld, root, "missing key 'stages' at the top level; add a list of stages, each with rank and "
                              "layers");
    plan->loc_stages = loc_of(v);
    return load_stages(ld, v, plan);
}

int sp_plan_load(const char *path, sp_plan *plan, sp_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->sequences = 1;
    plan->micro_batches = 1;
    plan->prefill_chunk = 32;
    plan->wire = SP_WIRE_F32;
    if (strlen(path) >= sizeof plan->path)
        return sp_errorf(err, "%.100s...: plan path is longer than %zu characters; use a shorter path", path,
                         sizeof plan->path - 1);
    snprintf(plan->path, sizeof plan->path, "%s", path);

    loader ld = {.path = path, .err = err};
    yaml_node_t *root = sp_yaml_load(path, "the plan", "docs/plan-format.md (a plan needs model, context and stages)",
                                     &ld.doc, err);
    if (!root) return -1;
    int rc = load_root(&ld, root, plan);
    yaml_document_delete(&ld.doc);
    return rc;
}

const char *sp_plan_stage_model(const sp_plan *plan, int stage)
{
    if (stage >= 0 && stage < plan->n_stages && plan->stages[stage].model_path[0])
        return plan->stages[stage].model_path;
    return plan->model_path;
}
