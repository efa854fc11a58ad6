/* shardhash.c - XXH3-64 of a shard's bytes, and its cache file (see
 * shardhash.h). A cache line is
 *   HASH DEV INODE SIZE MTIME_NS CTIME_NS FIRST LAST ENDS PATH
 * (ENDS is "cEH" for a content hash, sp_shard_content_hash_cached)
 * and is appended when a hash is computed; a line whose file facts differ
 * from the file's now is stale and ignored. */
#include "shardpipe/shardhash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "shardpipe/infile.h"
#include "shardpipe/shardfile.h"

/* The cache is a convenience: past this size it is started afresh. */
#define CACHE_MAX_BYTES (256u << 10)

static bool selected(const sp_gguf_tensor *t, sp_shard_sel sel)
{
    if (t->name.len > 4 && !memcmp(t->name.ptr, "blk.", 4)) {
        int layer = atoi(t->name.ptr + 4);
        return layer >= sel.first && layer <= sel.last;
    }
    return sel.ends;
}

uint64_t sp_shard_hash_uncached(const sp_gguf *g, sp_shard_sel sel)
{
    XXH3_state_t *s = XXH3_createState();
    XXH3_64bits_reset(s);
    XXH3_64bits_update(s, g->base, (size_t)g->data_offset); /* header, metadata, tensor index */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *t = &g->tensors[i];
        if (selected(t, sel)) XXH3_64bits_update(s, t->data, (size_t)t->nbytes);
    }
    uint64_t h = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return h;
}

static bool cache_path(char *buf, size_t cap)
{
    const char *p = getenv("SHARDPIPE_HASH_CACHE");
    if (p && *p) return snprintf(buf, cap, "%s", p) < (int)cap;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[PATH_MAX];
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/shardpipe", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/shardpipe", home);
    else return false;
    /* make the folder and its parent (~/.cache may not exist yet) */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir(parent, 0700);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return false;
    return snprintf(buf, cap, "%s/shard-hashes", dir) < (int)cap;
}

/* The file facts a cache line is keyed by (no newline or space in key);
 * `what` is the shard: "ENDS" (0 or 1) for sp_shard_hash, "cEH" (embed and
 * head, 0 or 1 each) for the content hash - one field, so lines of either
 * kind never match the other. */
static bool file_key(const char *file, int first, int last, const char *what, char *key, size_t cap)
{
    struct stat st;
    char real[PATH_MAX];
    if (stat(file, &st) != 0 || !realpath(file, real) || strpbrk(real, "\n")) return false;
    snprintf(key, cap, "%llu %llu %lld %lld.%09ld %lld.%09ld %d %d %s %s", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, first, last, what, real);
    return true;
}

static bool cache_lookup(const char *path, const char *key, uint64_t *out)
{
    sp_error ignored;
    size_t len;
    char *buf = sp_infile_read(path, "the shard hash cache", CACHE_MAX_BYTES, "a line per file", &len, &ignored);
    if (!buf) return false;
    bool found = false;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        /* "HASH KEY": 16 hex digits, a space, the key */
        if (strlen(line) == 17 + klen && line[16] == ' ' && !strcmp(line + 17, key)) {
            char *end;
            *out = strtoull(line, &end, 16);
            found = end == line + 16;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    return found;
}

static void cache_store(const char *path, const char *key, uint64_t h)
{
    struct stat st;
    bool fresh = stat(path, &st) == 0 && st.st_size > (off_t)CACHE_MAX_BYTES;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (fresh ? O_TRUNC : 0), 0600);
    if (fd < 0) return;
    char line[PATH_MAX + 200];
    int n = snprintf(line, sizeof line, "%016" PRIx64 " %s\n", h, key);
    /* one write of one line: concurrent ranks on a board append whole lines */
    if (n > 0 && (size_t)n < sizeof line && write(fd, line, (size_t)n) != n) { /* a cache: best effort */ }
    close(fd);
}

uint64_t sp_shard_hash(const sp_gguf *g, sp_shard_sel sel, bool *cached)
{
    char path[PATH_MAX], key[PATH_MAX + 160];
    uint64_t h;
    bool use_cache = file_key(g->path, sel.first, sel.last, sel.ends ? "1" : "0", key, sizeof key) &&
                     cache_path(path, sizeof path);
    *cached = use_cache && cache_lookup(path, key, &h);
    if (*cached) return h;
    h = sp_shard_hash_uncached(g, sel);
    if (use_cache) cache_store(path, key, h);
    return h;
}

uint64_t sp_shard_content_hash_cached(const sp_gguf *g, int first, int last, bool embed, bool head, bool *cached)
{
    char path[PATH_MAX], key[PATH_MAX + 160], what[8];
    snprintf(what, sizeof what, "c%d%d", embed ? 1 : 0, head ? 1 : 0);
    uint64_t h;
    bool use_cache = file_key(g->path, first, last, what, key, sizeof key) && cache_path(path, sizeof path);
    *cached = use_cache && cache_lookup(path, key, &h);
    if (*cached) return h;
    h = sp_shard_content_hash(g, first, last, embed, head);
    if (use_cache) cache_store(path, key, h);
    return h;
}

void sp_shard_content_hash_note(const char *file, int first, int last, bool embed, bool head, uint64_t h)
{
    char path[PATH_MAX], key[PATH_MAX + 160], what[8];
    snprintf(what, sizeof what, "c%d%d", embed ? 1 : 0, head ? 1 : 0);
    if (file_key(file, first, last, what, key, sizeof key) && cache_path(path, sizeof path)) cache_store(path, key, h);
}
