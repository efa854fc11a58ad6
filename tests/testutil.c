/* testutil.c - see testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <glob.h>

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *sp_test_shared(const char *rel)
{
    static char bufs[8][1024];
    static int next;
    const char *root = getenv("SP_SHARED");
    if (!root || !*root) root = SP_SHARED_DIR;
    char *buf = bufs[next++ % 8];
    /* stories260K ships in the repository (models/): tests that need only a
     * model run on a fresh clone too; only ../shared's reference data and
     * other models can be missing */
    if (!strcmp(rel, "models/stories260K.gguf")) {
        snprintf(buf, sizeof bufs[0], "%s/models/stories260K.gguf", SP_SOURCE_DIR);
        return buf;
    }
    snprintf(buf, sizeof bufs[0], "%s/%s", root, rel);
    if (access(buf, R_OK) != 0) {
        /* not cr_log_warn: Criterion 2.4 then exits 1 although no test failed */
        fprintf(stderr, "SKIP: shared data %s is missing; this test needs ../shared beside the source tree "
                        "(or SP_SHARED=DIR holding models/ and reference/)\n", buf);
        cr_skip_test("shared data %s is missing", buf);
        return NULL;
    }
    return buf;
}

static char tmpdir[256];

static void rm_tmpdir(void)
{
    if (!tmpdir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) { /* best effort */ }
}

const char *sp_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/sp_test_XXXXXX");
        if (!mkdtemp(tmpdir)) { perror("mkdtemp"); abort(); }
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

const char *sp_test_tmpfile(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *buf = bufs[next++ % 8];
    snprintf(buf, sizeof bufs[0], "%s/%s", sp_test_tmpdir(), name);
    return buf;
}

bool sp_test_tmp_left(const char *path)
{
    char pat[600];
    snprintf(pat, sizeof pat, "%s.??????", path);
    glob_t g;
    bool left = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return left;
}

const char *sp_test_write_text(const char *name, const char *text)
{
    const char *path = sp_test_tmpfile(name);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
    return path;
}

void *sp_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); return NULL; }
    buf[n > 0 ? n : 0] = '\0'; /* a text file reads as a string */
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

int sp_test_json_ints(const char *json, const char *key, int *out, int cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    p = strchr(p + strlen(pat), '[');
    if (!p) return -1;
    p++;
    int n = 0;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) { p++; continue; }
        if (n < cap) out[n] = (int)v;
        n++;
        p = end;
    }
    return n;
}

json_t *sp_test_jsonl(const char *path)
{
    size_t len;
    char *buf = sp_test_read_file(path, &len);
    cr_assert_not_null(buf, "cannot read %s", path);
    json_t *all = json_array();
    int line = 0;
    for (char *p = buf, *end; p < buf + len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(buf + len - p));
        if (!end) end = buf + len;
        line++;
        if (end == p) continue;
        json_error_t e;
        json_t *v = json_loadb(p, (size_t)(end - p), 0, &e);
        cr_assert_not_null(v, "%s:%d: %s", path, line, e.text);
        json_array_append_new(all, v);
    }
    free(buf);
    return all;
}

int *sp_test_json_int_array(const json_t *obj, const char *key, int *n)
{
    const json_t *a = json_object_get(obj, key);
    cr_assert(json_is_array(a), "no array \"%s\"", key);
    *n = (int)json_array_size(a);
    int *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++) {
        const json_t *x = json_array_get(a, (size_t)i);
        cr_assert(json_is_integer(x), "\"%s\"[%d] is not an integer", key, i);
        v[i] = (int)json_integer_value(x);
    }
    return v;
}

sp_tokenizer *sp_test_tokenizer(const char *model_rel)
{
    const char *path = sp_test_shared(model_rel);
    if (!path) return NULL;
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open_meta(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    cr_assert_not_null(t, "%s", err.msg);
    sp_gguf_close(g); /* the tokenizer keeps its own copies */
    return t;
}

int *sp_test_tokenize(const sp_tokenizer *t, const char *text, unsigned flags, int *n)
{
    sp_error err = {{0}};
    int *ids = sp_tokenize(t, text, flags, n, &err);
    cr_assert_not_null(ids, "%s", err.msg);
    return ids;
}

int sp_test_load_ref(const char *name, sp_test_ref *r)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s.json", name);
    const char *jp = sp_test_shared(rel);
    if (!jp) return -1;
    char *json = sp_test_read_file(jp, NULL);
    cr_assert(json, "cannot read %s", jp);
    r->n_prompt = sp_test_json_ints(json, "prompt_tokens", r->prompt, 64);
    r->n_greedy = sp_test_json_ints(json, "greedy_tokens", r->greedy, 128);
    r->n_rows = sp_test_json_ints(json, "logits_positions", r->rows, 64);
    free(json);
    cr_assert(r->n_prompt > 0 && r->n_prompt <= 64 && r->n_greedy > 0, "%s: prompt_tokens / greedy_tokens missing", jp);
    if (r->n_rows < 0) {
        r->n_rows = r->n_prompt;
        for (int i = 0; i < r->n_prompt; i++) r->rows[i] = i;
    }
    snprintf(rel, sizeof rel, "reference/%s.logits.f32", name);
    const char *lp = sp_test_shared(rel);
    if (!lp) return -1;
    size_t len;
    r->logits = sp_test_read_file(lp, &len);
    r->n_logits = len / sizeof(float);
    return 0;
}
