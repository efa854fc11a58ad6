/* fuzz_util.c - see fuzz_util.h. */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shardpipe/gguf.h"
#include "shardpipe/synth.h"

static char dir[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static void rm_dir(void)
{
    if (dir[0]) nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fz_dir(void)
{
    if (dir[0]) return dir;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sp_fuzz_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) fz_fail("cannot make a scratch folder %s", dir);
    atexit(rm_dir);
    return dir;
}

const char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", fz_dir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fz_fail("cannot write %s", path);
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) fz_fail("cannot write %s", path);
        done += (size_t)w;
    }
    close(fd);
    return path;
}

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FUZZ CHECK FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static sp_tokenizer *vocab;
static char model_path[512];

static void load_vocab(void)
{
    const char *env = getenv("SP_FUZZ_VOCAB");
    const char *shared = getenv("SP_SHARED");
    char path[512];
    if (env && *env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared && *shared ? shared : SP_SHARED_DIR);
    if (access(path, R_OK) != 0) {
        /* no shared models: a byte-level vocabulary on a tiny random model */
        sp_synth_spec s;
        sp_error err = {{0}};
        if (sp_synth_shape("tiny", &s, &err)) fz_fail("%s", err.msg);
        s.n_layers = 1;
        s.type = s.embd_type = s.output_type = SP_DTYPE_Q8_0;
        snprintf(path, sizeof path, "%s/synth.gguf", fz_dir());
        if (sp_synth_write(&s, path, &err)) fz_fail("%s", err.msg);
        fprintf(stderr, "fuzz: %s/models/stories260K.gguf is missing: a synthetic byte vocabulary is used\n",
                shared && *shared ? shared : SP_SHARED_DIR);
    }
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    if (!g || !(vocab = sp_tokenizer_load(g, &err))) fz_fail("cannot load the vocabulary: %s", err.msg);
    sp_gguf_close(g);
    snprintf(model_path, sizeof model_path, "%s", path);
}

const sp_tokenizer *fz_vocab(void)
{
    if (!vocab) load_vocab();
    return vocab;
}

/* Llama 3's byte-level BPE vocabulary (128k pieces), from the metadata of
 * the shared llama3-tiny model; NULL when it is not there. */
const sp_tokenizer *fz_vocab_bpe(void)
{
    static bool tried;
    static sp_tokenizer *bpe;
    if (tried) return bpe;
    tried = true;
    const char *shared = getenv("SP_SHARED");
    char path[512];
    snprintf(path, sizeof path, "%s/models/llama3-tiny-Q4_K_M.gguf", shared && *shared ? shared : SP_SHARED_DIR);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "fuzz: %s is missing: only the SentencePiece vocabulary is fuzzed\n", path);
        return NULL;
    }
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open_meta(path, &err);
    if (!g || !(bpe = sp_tokenizer_load(g, &err))) fz_fail("cannot load the BPE vocabulary: %s", err.msg);
    sp_gguf_close(g);
    return bpe;
}

const char *fz_model_path(void)
{
    if (!vocab) load_vocab();
    return model_path;
}

long fz_utf8_invalid_at(const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c < 0xC2) return (long)i;
        if (c < 0xE0) len = 2;
        else if (c < 0xF0) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c < 0xF5) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return (long)i;
        if (i + len > n) return (long)i;
        for (size_t k = 1; k < len; k++) {
            uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (s[i + k] < l || s[i + k] > h) return (long)i;
        }
        i += len;
    }
    return -1;
}
