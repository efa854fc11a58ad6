/* fuzz_gguf.c - libFuzzer target: a GGUF file from the input, through
 * everything that reads a model's header before any weight is used:
 *   sp_gguf_open (written to a scratch file: the reader maps a path), every
 *   tensor found again by name and lying inside the mapping; every kv and
 *   tensor copied into a writer, written and read back the same;
 *   sp_config_read, the shard memory estimates, sp_model_open of the whole
 *   model and sp_model_load_weights;
 *   sp_tokenizer_load, then an encode (ids in range, count in bound) and a
 *   streaming decode of every id (well-formed UTF-8);
 *   `shardpipe inspect` and `inspect --json` (cmd_inspect, output to
 *   /dev/null).
 * A file the reader refuses must come with an error naming the file. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/commands.h"
#include "fuzz_util.h"
#include "shardpipe/gguf.h"
#include "shardpipe/model.h"

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
    (void)argc; (void)argv;
    if (!freopen("/dev/null", "w", stdout)) fz_fail("cannot send stdout to /dev/null");
    fz_dir();
    return 0;
}

static void check_index(const sp_gguf *g)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *t = &g->tensors[i];
        const uint8_t *d = t->data;
        if (d < g->base || d > g->base + g->size || t->nbytes > (uint64_t)(g->base + g->size - d))
            fz_fail("tensor %llu's data [%p, +%llu) lies outside the mapping [%p, +%zu)", (unsigned long long)i,
                    t->data, (unsigned long long)t->nbytes, (const void *)g->base, g->size);
        char name[128];
        if (t->name.len >= sizeof name || memchr(t->name.ptr, 0, t->name.len)) continue;
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        const sp_gguf_tensor *f = sp_gguf_find_tensor(g, name);
        if (f != t) fz_fail("tensor '%s' (index %llu) is not found by name", name, (unsigned long long)i);
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sp_gguf_kv *kv = &g->kv[i];
        char key[128];
        if (kv->key.len >= sizeof key || memchr(kv->key.ptr, 0, kv->key.len)) continue;
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = '\0';
        if (sp_gguf_find(g, key) != kv) fz_fail("metadata key '%s' is not found by name", key);
        uint32_t u32;
        uint64_t u64;
        float f;
        sp_gguf_str s;
        sp_error err;
        (void)sp_gguf_get_u32(g, key, &u32, &err);
        (void)sp_gguf_get_u64(g, key, &u64, &err);
        (void)sp_gguf_get_f32(g, key, &f, &err);
        (void)sp_gguf_get_str(g, key, &s, &err);
    }
}

static bool same_str(sp_gguf_str a, sp_gguf_str b) { return a.len == b.len && !memcmp(a.ptr, b.ptr, a.len); }

/* Every kv and tensor copied into a writer (as `synth --vocab-from` copies a
 * vocabulary), written, and read again: the same index, values and data. */
static void check_write_back(const sp_gguf *g)
{
    /* the writer takes C-string keys and names */
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (memchr(g->kv[i].key.ptr, 0, g->kv[i].key.len)) return;
    sp_gguf_writer *w = sp_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) sp_gguf_add_kv_copy(w, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *t = &g->tensors[i];
        char name[256];
        if (t->name.len >= sizeof name || memchr(t->name.ptr, 0, t->name.len)) {
            sp_gguf_writer_free(w);
            return;
        }
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        sp_gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    char out[600];
    snprintf(out, sizeof out, "%s/written.gguf", fz_dir());
    sp_error err = {{0}};
    int rc = sp_gguf_write_version(w, out, g->version, &err);
    sp_gguf_writer_free(w);
    if (rc) {
        /* only an alignment the reader took cannot be refused here */
        fz_fail("sp_gguf_write of a file the reader accepted: %s", err.msg);
    }
    sp_gguf *b = sp_gguf_open(out, &err);
    if (!b) fz_fail("the GGUF written back does not open: %s", err.msg);
    if (b->n_kv != g->n_kv || b->n_tensors != g->n_tensors || b->alignment != g->alignment)
        fz_fail("written back: %llu kv, %llu tensors, alignment %llu; was %llu, %llu, %llu",
                (unsigned long long)b->n_kv, (unsigned long long)b->n_tensors, (unsigned long long)b->alignment,
                (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors, (unsigned long long)g->alignment);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sp_gguf_kv *x = &g->kv[i], *y = &b->kv[i];
        bool same = same_str(x->key, y->key) && x->type == y->type;
        if (same && x->type == SP_GGUF_STRING) same = same_str(x->val.str, y->val.str);
        else if (same && x->type == SP_GGUF_ARRAY) {
            same = x->arr_type == y->arr_type && x->arr_n == y->arr_n;
            if (same && x->arr_type == SP_GGUF_STRING)
                for (uint64_t k = 0; same && k < x->arr_n; k++) same = same_str(x->arr_strs[k], y->arr_strs[k]);
            else if (same)
                same = !memcmp(x->arr_data, y->arr_data, x->arr_n * sp_gguf_vtype_size(x->arr_type));
        } else if (same && (x->type == SP_GGUF_FLOAT32 || x->type == SP_GGUF_FLOAT64))
            same = x->val.f64 == y->val.f64 || (x->val.f64 != x->val.f64 && y->val.f64 != y->val.f64); /* NaN */
        else if (same)
            same = !memcmp(&x->val, &y->val, sizeof x->val);
        if (!same) fz_fail("metadata entry %llu differs once written back", (unsigned long long)i);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *x = &g->tensors[i], *y = &b->tensors[i];
        if (!same_str(x->name, y->name) || x->type != y->type || x->n_dims != y->n_dims ||
            memcmp(x->ne, y->ne, sizeof x->ne) || x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes))
            fz_fail("tensor %llu differs once written back", (unsigned long long)i);
    }
    sp_gguf_close(b);
}

static void check_model(const char *path, const sp_gguf *g)
{
    sp_config c;
    sp_error err = {{0}};
    if (sp_config_read(g, &c, &err)) {
        if (!err.msg[0]) fz_fail("sp_config_read failed without a message");
        return;
    }
    /* Issue 21 item 4 (robust): block_count is bounded only by 2^30, and the
     * estimates below walk every layer; keep the fuzzer fast until the bound
     * is what the tensor index can hold. */
    if (c.n_layers > 4096) return;
    uint64_t w = sp_shard_weight_bytes(g, &c, 0, c.n_layers - 1, true, true);
    (void)sp_kv_bytes(&c, c.n_layers, 4, c.ctx_train);
    (void)sp_scratch_bytes(&c, 64, c.ctx_train, true);
    if (w > g->size) fz_fail("the shard weighs %llu bytes, more than the %zu-byte file", (unsigned long long)w, g->size);
    sp_model *m = sp_model_open(path, 0, SP_TO_LAST_LAYER, true, true, &err);
    if (!m) {
        if (!err.msg[0]) fz_fail("sp_model_open failed without a message");
        return;
    }
    if (sp_model_load_weights(m, &err) && !err.msg[0]) fz_fail("sp_model_load_weights failed without a message");
    sp_model_close(m);
}

static void check_tokenizer(const sp_gguf *g)
{
    sp_error err = {{0}};
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    if (!t) {
        if (!err.msg[0]) fz_fail("sp_tokenizer_load failed without a message");
        return;
    }
    int n_vocab = sp_tokenizer_n_vocab(t);
    static const char text[] = " Once upon a time,  a ünïcödé 日本 story\n\t\xff \xc3 end ";
    size_t bound = fz_tokenize_bound(strlen(text));
    int n = -1;
    int *ids = sp_tokenize(t, text, SP_TOK_ADD_SPECIAL, &n, &err);
    if (!ids) fz_fail("sp_tokenize refused the sample text: %s", err.msg);
    if (n < 1 || (size_t)n > bound) fz_fail("sp_tokenize gave %d ids for %zu bytes (bound %zu)", n, strlen(text), bound);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) fz_fail("id %d outside the vocabulary of %d", ids[i], n_vocab);
    free(ids);

    sp_detok d;
    sp_detok_init(&d);
    char buf[16384];
    int lim = n_vocab < 4096 ? n_vocab : 4096;
    for (int id = 0; id <= lim; id++) {
        int k = id < lim ? sp_detok_push(t, &d, id, buf, sizeof buf) : sp_detok_flush(&d, buf, sizeof buf);
        if (k < 0 || k >= (int)sizeof buf || buf[k]) fz_fail("detok of id %d returned %d bytes", id, k);
        if (fz_utf8_invalid_at(buf, (size_t)k) >= 0) fz_fail("detok of id %d gave ill-formed UTF-8", id);
        (void)sp_token_piece(t, id);
    }
    (void)sp_tokenizer_bos(t);
    (void)sp_tokenizer_eos(t);
    sp_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("model.gguf", data, size);
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    if (!g) {
        if (strncmp(err.msg, path, strlen(path)) != 0) fz_fail("the error does not name the file: %s", err.msg);
        return 0;
    }
    check_index(g);
    check_write_back(g);
    check_model(path, g);
    check_tokenizer(g);
    sp_gguf_close(g);

    char a0[] = "inspect", a1[] = "--json";
    char *p = strdup(path);
    char *text[] = {a0, p, NULL}, *json[] = {a0, a1, p, NULL};
    cmd_inspect(2, text);
    cmd_inspect(3, json);
    fflush(stdout);
    free(p);
    return 0;
}
