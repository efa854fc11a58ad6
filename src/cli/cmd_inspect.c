/* cmd_inspect.c - `shardpipe inspect MODEL.gguf [--json]`: what a GGUF
 * model is (architecture, hyper-parameters, tokenizer) and where its bytes
 * are (per layer and per tensor type), the figures a partition plan needs.
 * Text for people, --json for scripts; both print the same facts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardpipe/escape.h"
#include "shardpipe/gguf.h"
#include "shardpipe/shardfile.h"
#include "shardpipe/model.h"

/* Tensor types in column order: the common ones first, then every other
 * type ggml numbers (the reader knows all their sizes), by number. */
#define N_COLS 48
static sp_dtype col_types[N_COLS];

static void init_cols(void)
{
    static const sp_dtype first[] = {SP_DTYPE_F32, SP_DTYPE_F16, SP_DTYPE_BF16, SP_DTYPE_Q8_0, SP_DTYPE_Q4_0,
                                     SP_DTYPE_IQ4_NL, SP_DTYPE_Q6_K, SP_DTYPE_Q5_K, SP_DTYPE_Q4_K, SP_DTYPE_Q3_K, SP_DTYPE_Q2_K};
    size_t n = 0;
    for (; n < sizeof first / sizeof first[0]; n++) col_types[n] = first[n];
    for (uint32_t t = 0; t < N_COLS && n < N_COLS; t++) {
        bool seen = false;
        for (size_t i = 0; i < sizeof first / sizeof first[0]; i++) seen |= first[i] == t;
        if (!seen) col_types[n++] = (sp_dtype)t;
    }
}

typedef struct row {
    char name[32];
    uint64_t bytes[N_COLS];
    uint64_t total;
    int n_tensors;
} row;

/* A hyper-parameter: key below "<arch>.", whether a float, and its value. */
typedef enum { HP_PRESENT, HP_DEFAULT, HP_MISSING } hp_state;
typedef struct hparam {
    const char *key;
    bool is_float;
    double value;
    hp_state state;
    const char *why; /* where a default came from */
} hparam;

enum { HP_VOCAB, HP_DIM, HP_LAYERS, HP_HEADS, HP_KV_HEADS, HP_KEY_LEN, HP_FFN, HP_CTX, HP_ROPE_DIM,
       HP_ROPE_BASE, HP_EPS, N_HP };

typedef struct report {
    char arch[64];
    hparam hp[N_HP];
    sp_gguf_str tok_model; /* len 0 when absent */
    uint64_t tok_vocab;    /* 0 when there is no tokenizer.ggml.tokens */
    /* rows: token_embd, blk.0 .. blk.(n_layers-1), output_norm, output, other */
    row *rows;
    int n_rows;
    int n_layers;
    bool tied;        /* no output.weight: the head reuses token_embd */
    row total;
    /* whether shardpipe runs it: the model loader's verdict */
    bool runs;
    char why[1100], fix[1100];
    char shard[300]; /* "" for a whole model, else what a `shardpipe split` shard holds */
} report;

static int usage(FILE *f, int code)
{
    fprintf(f, "usage: shardpipe inspect MODEL.gguf [--json]\n"
               "  Print a GGUF model's architecture, hyper-parameters, tokenizer and the bytes\n"
               "  of weights per layer and tensor type. --json prints one JSON object instead.\n");
    return code;
}

static int col_of(sp_dtype t)
{
    for (size_t c = 0; c < N_COLS; c++)
        if (col_types[c] == t) return (int)c;
    return 0; /* unreachable: the reader rejects types past the table */
}

static void add_to_row(row *r, const sp_gguf_tensor *t)
{
    r->bytes[col_of(t->type)] += t->nbytes;
    r->total += t->nbytes;
    r->n_tensors++;
}

/* "blk.N." prefix -> N, else -1. */
static long layer_of(sp_gguf_str name)
{
    if (name.len < 6 || memcmp(name.ptr, "blk.", 4) != 0) return -1;
    long n = 0;
    uint64_t i = 4;
    for (; i < name.len && name.ptr[i] >= '0' && name.ptr[i] <= '9' && i < 12; i++)
        n = n * 10 + (name.ptr[i] - '0');
    if (i == 4 || i >= name.len || name.ptr[i] != '.') return -1;
    return n;
}

static bool name_starts(sp_gguf_str name, const char *prefix)
{
    size_t n = strlen(prefix);
    return name.len >= n && memcmp(name.ptr, prefix, n) == 0;
}

static int read_hparams(const sp_gguf *g, report *r, sp_error *err)
{
    static const struct { const char *key; bool is_float; } keys[N_HP] = {
        [HP_VOCAB] = {"vocab_size", false},
        [HP_DIM] = {"embedding_length", false},
        [HP_LAYERS] = {"block_count", false},
        [HP_HEADS] = {"attention.head_count", false},
        [HP_KV_HEADS] = {"attention.head_count_kv", false},
        [HP_KEY_LEN] = {"attention.key_length", false},
        [HP_FFN] = {"feed_forward_length", false},
        [HP_CTX] = {"context_length", false},
        [HP_ROPE_DIM] = {"rope.dimension_count", false},
        [HP_ROPE_BASE] = {"rope.freq_base", true},
        [HP_EPS] = {"attention.layer_norm_rms_epsilon", true},
    };
    for (int i = 0; i < N_HP; i++) {
        hparam *h = &r->hp[i];
        char key[160];
        snprintf(key, sizeof key, "%s.%s", r->arch, keys[i].key);
        h->key = keys[i].key;
        h->is_float = keys[i].is_float;
        h->state = HP_MISSING;
        if (!sp_gguf_find(g, key)) continue;
        if (h->is_float) {
            float v;
            if (sp_gguf_get_f32(g, key, &v, err)) return -1;
            h->value = v;
        } else {
            uint64_t v;
            if (sp_gguf_get_u64(g, key, &v, err)) return -1;
            h->value = (double)v;
        }
        h->state = HP_PRESENT;
    }
    /* The defaults a Llama loader uses when a key is absent. */
    hparam *hp = r->hp;
    if (hp[HP_VOCAB].state == HP_MISSING && r->tok_vocab)
        hp[HP_VOCAB] = (hparam){hp[HP_VOCAB].key, false, (double)r->tok_vocab, HP_DEFAULT,
                                "from tokenizer.ggml.tokens"};
    if (hp[HP_KV_HEADS].state == HP_MISSING && hp[HP_HEADS].state == HP_PRESENT)
        hp[HP_KV_HEADS] = (hparam){hp[HP_KV_HEADS].key, false, hp[HP_HEADS].value, HP_DEFAULT,
                                   "default: head_count"};
    /* the head size: key_length when present (Qwen3: not dim / heads) */
    if (hp[HP_KEY_LEN].state == HP_MISSING && hp[HP_DIM].state == HP_PRESENT &&
        hp[HP_HEADS].state == HP_PRESENT && hp[HP_HEADS].value > 0)
        hp[HP_KEY_LEN] = (hparam){hp[HP_KEY_LEN].key, false,
                                  (double)((uint64_t)hp[HP_DIM].value / (uint64_t)hp[HP_HEADS].value),
                                  HP_DEFAULT, "default: embedding_length / head_count"};
    if (hp[HP_ROPE_DIM].state == HP_MISSING && hp[HP_KEY_LEN].state != HP_MISSING)
        hp[HP_ROPE_DIM] = (hparam){hp[HP_ROPE_DIM].key, false, hp[HP_KEY_LEN].value, HP_DEFAULT,
                                   "default: the head dimension"};
    if (hp[HP_ROPE_BASE].state == HP_MISSING)
        hp[HP_ROPE_BASE] = (hparam){hp[HP_ROPE_BASE].key, true, 10000.0, HP_DEFAULT, "default"};
    if (hp[HP_EPS].state == HP_MISSING)
        hp[HP_EPS] = (hparam){hp[HP_EPS].key, true, 1e-5, HP_DEFAULT, "default"};
    return 0;
}

/* The verdict: the first tensor of a type shardpipe cannot multiply (by
 * name), else whatever the model loader refuses (config, shapes, norms). */
static void judge(const sp_gguf *g, report *r)
{
    int n_bad = 0;
    const sp_gguf_tensor *bad = NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!sp_dtype_supported(g->tensors[i].type)) n_bad++, bad = bad ? bad : &g->tensors[i];
    if (bad) {
        snprintf(r->why, sizeof r->why, "tensor '%.*s' has type %s%s%.0d%s, which shardpipe cannot multiply",
                 (int)(bad->name.len > 200 ? 200 : bad->name.len), bad->name.ptr, sp_dtype_name(bad->type),
                 n_bad > 1 ? " (and " : "", n_bad > 1 ? n_bad - 1 : 0, n_bad > 1 ? " more of unsupported types)" : "");
        snprintf(r->fix, sizeof r->fix, "re-quantize the model to one of %s (e.g. llama-quantize "
                 "--allow-requantize IN.gguf OUT.gguf Q4_K_M)", sp_dtype_supported_list());
        return;
    }
    sp_error err = {{0}};
    sp_shard_info sh;
    sp_model *m = NULL;
    if (sp_shard_info_read(g, &sh, &err) == 0) {
        if (sh.is_shard) {
            const sp_gguf_kv *src = sp_gguf_find(g, SP_SHARD_KEY_SOURCE);
            int n = src && src->type == SP_GGUF_STRING && src->val.str.len < 200 ? (int)src->val.str.len : 0;
            snprintf(r->shard, sizeof r->shard, "layers %d-%d%s%s of %.*s (written by shardpipe split)", sh.first,
                     sh.last, sh.embed ? " + embedding" : "", sh.head ? " + head" : "", n,
                     n ? src->val.str.ptr : "");
            /* a shard runs as the layers it holds of the original */
            m = sp_model_open(g->path, sh.first, sh.last, sh.embed, sh.head, &err);
        } else {
            m = sp_model_open_full(g->path, &err);
        }
    }
    if (m) {
        r->runs = true;
        sp_model_close(m);
        return;
    }
    /* the loader's messages say "what is wrong; what to do" */
    char *semi = NULL;
    for (char *p = strstr(err.msg, "; "); p; p = strstr(p + 2, "; ")) semi = p;
    if (semi) *semi = '\0';
    snprintf(r->why, sizeof r->why, "%s", err.msg);
    if (semi) snprintf(r->fix, sizeof r->fix, "%s", semi + 2);
    else snprintf(r->fix, sizeof r->fix, "shardpipe runs Llama-architecture GGUF files of the types %s",
                  sp_dtype_supported_list());
}

static int build_report(const sp_gguf *g, report *r, sp_error *err)
{
    memset(r, 0, sizeof *r);
    snprintf(r->arch, sizeof r->arch, "llama");
    const sp_gguf_kv *kv = sp_gguf_find(g, "general.architecture");
    if (kv) {
        sp_gguf_str a;
        if (sp_gguf_get_str(g, "general.architecture", &a, err)) return -1;
        snprintf(r->arch, sizeof r->arch, "%.*s", (int)(a.len < 63 ? a.len : 63), a.ptr);
    }
    if (sp_gguf_find(g, "tokenizer.ggml.model") &&
        sp_gguf_get_str(g, "tokenizer.ggml.model", &r->tok_model, err))
        return -1;
    if (sp_gguf_find(g, "tokenizer.ggml.tokens")) {
        const sp_gguf_kv *tok;
        if (sp_gguf_get_arr(g, "tokenizer.ggml.tokens", SP_GGUF_STRING, &tok, err)) return -1;
        r->tok_vocab = tok->arr_n;
    }
    if (read_hparams(g, r, err)) return -1;

    /* Layers: as many as the highest blk.N seen (block_count may disagree
     * on a damaged file; the table shows what is really there). */
    long max_layer = -1;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        long l = layer_of(g->tensors[i].name);
        if (l > max_layer) max_layer = l;
    }
    if (max_layer > 100000) {
        return sp_errorf(err, "%s: tensor names go up to blk.%ld, which is not a plausible layer "
                         "count", g->path, max_layer);
    }
    r->n_layers = (int)(max_layer + 1);
    r->n_rows = r->n_layers + 4;
    r->rows = calloc((size_t)r->n_rows, sizeof *r->rows);
    if (!r->rows) return sp_errorf(err, "out of memory");
    row *embd = &r->rows[0], *norm = &r->rows[r->n_layers + 1];
    row *out = &r->rows[r->n_layers + 2], *other = &r->rows[r->n_layers + 3];
    snprintf(embd->name, sizeof embd->name, "token_embd");
    for (int l = 0; l < r->n_layers; l++)
        snprintf(r->rows[1 + l].name, sizeof r->rows[0].name, "blk.%d", l);
    snprintf(norm->name, sizeof norm->name, "output_norm");
    snprintf(out->name, sizeof out->name, "output");
    snprintf(other->name, sizeof other->name, "other");
    snprintf(r->total.name, sizeof r->total.name, "total");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *t = &g->tensors[i];
        long l = layer_of(t->name);
        row *dst = other;
        if (l >= 0) dst = &r->rows[1 + l];
        else if (name_starts(t->name, "token_embd.")) dst = embd;
        else if (name_starts(t->name, "output_norm.")) dst = norm;
        else if (name_starts(t->name, "output.")) dst = out;
        add_to_row(dst, t);
        add_to_row(&r->total, t);
    }
    r->tied = out->n_tensors == 0;
    judge(g, r);
    return 0;
}

/* ---- text ---- */

/* File strings may hold anything: control characters and stray bytes are
 * escaped (\x1b), as in error messages. */
static void print_str(FILE *f, const char *p, uint64_t n)
{
    size_t cap = (size_t)n * 4 + 1;
    char *buf = malloc(cap);
    if (!buf) return;
    fputs(sp_escape_text(buf, cap, p, (size_t)n), f);
    free(buf);
}

static void print_kv_str(const sp_gguf *g, const char *key)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (kv && kv->type == SP_GGUF_STRING) print_str(stdout, kv->val.str.ptr, kv->val.str.len);
    else printf("(none)");
}

static void print_text(const sp_gguf *g, const report *r)
{
    printf("file:          %s (%zu bytes)\n", g->path, g->size);
    printf("GGUF version:  %" PRIu32 "\n", g->version);
    printf("architecture:  ");
    print_kv_str(g, "general.architecture");
    printf("\nname:          ");
    print_kv_str(g, "general.name");
    printf("\n\nhyper-parameters (");
    print_str(stdout, r->arch, strlen(r->arch));
    printf(".*):\n");
    for (int i = 0; i < N_HP; i++) {
        const hparam *h = &r->hp[i];
        printf("  %-34s ", h->key);
        if (h->state == HP_MISSING) {
            printf("missing\n");
            continue;
        }
        if (h->is_float) printf("%g", h->value);
        else printf("%.0f", h->value);
        if (h->state == HP_DEFAULT) printf("  (%s)", h->why);
        printf("\n");
    }
    printf("\ntokenizer:     ");
    if (r->tok_model.len) print_str(stdout, r->tok_model.ptr, r->tok_model.len);
    else printf("(none)");
    printf(", %" PRIu64 " tokens\n\n", r->tok_vocab);

    /* Only the columns of types the file uses. */
    bool used[N_COLS];
    printf("%-12s", "tensors");
    for (size_t c = 0; c < N_COLS; c++) {
        used[c] = r->total.bytes[c] > 0;
        if (used[c]) printf(" %12s", sp_dtype_name(col_types[c]));
    }
    printf(" %12s\n", "bytes");
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        bool is_output = i == r->n_layers + 2, is_other = i == r->n_layers + 3;
        if (is_other && w->n_tensors == 0) continue;
        printf("%-12s", w->name);
        if (is_output && r->tied) {
            printf(" tied (the head reuses token_embd)\n");
            continue;
        }
        for (size_t c = 0; c < N_COLS; c++) {
            if (!used[c]) continue;
            if (w->bytes[c]) printf(" %12" PRIu64, w->bytes[c]);
            else printf(" %12s", "-");
        }
        printf(" %12" PRIu64 "\n", w->total);
    }
    printf("%-12s", "total");
    for (size_t c = 0; c < N_COLS; c++)
        if (used[c]) printf(" %12" PRIu64, r->total.bytes[c]);
    printf(" %12" PRIu64 "  (%.2f MiB in %d tensors)\n", r->total.total,
           (double)r->total.total / (1024.0 * 1024.0), r->total.n_tensors);
    if (r->shard[0]) printf("\nshard:         %s\n", r->shard);
    if (r->runs) printf("\nruns: yes\n");
    else printf("\nruns: no, because %s; fix: %s\n", r->why, r->fix);
}

/* ---- JSON ---- */

/* Always valid JSON, whatever bytes the file's strings hold. */
static void json_str(const char *p, uint64_t n) { sp_json_put_string(stdout, p, (size_t)n); }

static void json_kv_str(const sp_gguf *g, const char *key)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (kv && kv->type == SP_GGUF_STRING) json_str(kv->val.str.ptr, kv->val.str.len);
    else printf("null");
}

static void json_row(const row *w)
{
    printf("{\"name\": ");
    json_str(w->name, strlen(w->name));
    printf(", \"tensors\": %d, \"bytes\": %" PRIu64 ", \"by_type\": {", w->n_tensors, w->total);
    bool first = true;
    for (size_t c = 0; c < N_COLS; c++) {
        if (!w->bytes[c]) continue;
        printf("%s\"%s\": %" PRIu64, first ? "" : ", ", sp_dtype_name(col_types[c]), w->bytes[c]);
        first = false;
    }
    printf("}}");
}

static void print_json(const sp_gguf *g, const report *r)
{
    printf("{\"file\": ");
    json_str(g->path, strlen(g->path));
    printf(", \"file_bytes\": %zu, \"gguf_version\": %" PRIu32 ", \"architecture\": ", g->size,
           g->version);
    json_kv_str(g, "general.architecture");
    printf(", \"name\": ");
    json_kv_str(g, "general.name");
    printf(",\n \"hparams\": {");
    for (int i = 0; i < N_HP; i++) {
        const hparam *h = &r->hp[i];
        printf("%s\"%s\": ", i ? ", " : "", h->key);
        if (h->state == HP_MISSING) printf("null");
        else if (h->is_float) printf("%.7g", h->value);
        else printf("%.0f", h->value);
    }
    printf("},\n \"hparams_defaulted\": [");
    bool first = true;
    for (int i = 0; i < N_HP; i++) {
        if (r->hp[i].state != HP_DEFAULT) continue;
        printf("%s\"%s\"", first ? "" : ", ", r->hp[i].key);
        first = false;
    }
    printf("],\n \"tokenizer\": {\"model\": ");
    if (r->tok_model.len) json_str(r->tok_model.ptr, r->tok_model.len);
    else printf("null");
    printf(", \"vocab_size\": %" PRIu64 "},\n", r->tok_vocab);
    printf(" \"n_layers\": %d, \"output_tied\": %s,\n \"rows\": [\n", r->n_layers,
           r->tied ? "true" : "false");
    first = true;
    for (int i = 0; i < r->n_rows; i++) {
        const row *w = &r->rows[i];
        if (w->n_tensors == 0 && i >= r->n_layers + 2) continue; /* tied output, no others */
        printf("%s  ", first ? "" : ",\n");
        json_row(w);
        first = false;
    }
    printf("\n ],\n \"total\": ");
    json_row(&r->total);
    printf(",\n \"total_mib\": %.3f,\n \"runs\": %s", (double)r->total.total / (1024.0 * 1024.0),
           r->runs ? "true" : "false");
    if (!r->runs) {
        printf(", \"runs_because\": ");
        json_str(r->why, strlen(r->why));
        printf(", \"runs_fix\": ");
        json_str(r->fix, strlen(r->fix));
    }
    printf("}\n");
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout, 0);
        if (!strcmp(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "shardpipe inspect: unknown option '%s'\n", argv[i]);
            return usage(stderr, 2);
        } else if (path) {
            fprintf(stderr, "shardpipe inspect: one model at a time ('%s' and '%s' given)\n", path,
                    argv[i]);
            return usage(stderr, 2);
        } else {
            path = argv[i];
        }
    }
    if (!path) return usage(stderr, 2);

    init_cols();
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    report r;
    if (!g || build_report(g, &r, &err)) {
        fprintf(stderr, "shardpipe inspect: %s\n", err.msg);
        sp_gguf_close(g);
        return 1;
    }
    if (json) print_json(g, &r);
    else print_text(g, &r);
    free(r.rows);
    sp_gguf_close(g);
    return 0;
}
