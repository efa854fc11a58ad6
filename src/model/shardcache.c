/* shardcache.c - the board's cache of received shards (shardcache.h): where
 * it is, what an entry is called, checking an entry, writing one atomically
 * and verified, keeping the cache within its bound, listing and clearing. */
#include "shardpipe/shardcache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "shardpipe/gguf.h"
#include "shardpipe/shardfile.h"
#include "shardpipe/shardhash.h"
#include "shardpipe/util.h"

/* ---- where ---- */

static int mkdirs(char *path, sp_error *err)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        int bad = mkdir(path, 0700) != 0 && errno != EEXIST;
        if (!bad && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) bad = 1, errno = ENOTDIR;
        if (bad) {
            int e = errno;
            sp_errorf(err, "%s: cannot create the shard cache folder (%s); give a folder you can write with "
                           "--shard-cache DIR", path, strerror(e));
            *p = c;
            return -1;
        }
        *p = c;
        if (!c) return 0;
    }
}

int sp_shard_cache_dir(const char *dir, bool create, char *out, size_t cap, sp_error *err)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (dir && *dir) n = snprintf(out, cap, "%s", dir);
    else if (xdg && *xdg == '/') n = snprintf(out, cap, "%s/shardpipe/shards", xdg);
    else if (home && *home == '/') n = snprintf(out, cap, "%s/.cache/shardpipe/shards", home);
    else
        return sp_errorf(err, "no folder for the shard cache: HOME and XDG_CACHE_HOME are not set (or not absolute "
                              "paths); give one with --shard-cache DIR");
    if (n < 0 || (size_t)n >= cap) return sp_errorf(err, "%.100s...: the shard cache path is too long", out);
    while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
    if (!create) return 0;
    if (out[0] != '/') { /* a relative --shard-cache: made from the current folder */
        char abs[PATH_MAX];
        if (!getcwd(abs, sizeof abs) || snprintf(abs + strlen(abs), sizeof abs - strlen(abs), "/%s", out) < 0)
            return sp_errorf(err, "%s: cannot resolve the shard cache folder; give an absolute path", out);
        return mkdirs(abs, err);
    }
    return mkdirs(out, err);
}

void sp_shard_cache_entry(const char *dir, uint64_t hash, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIx64 ".gguf", dir, hash);
}

int sp_shard_cache_max(uint64_t *out, sp_error *err)
{
    const char *s = getenv("SHARDPIPE_SHARD_CACHE_MAX");
    *out = SP_SHARD_CACHE_DEFAULT_MAX;
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double unit = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': unit = 1024.0; end++; break;
    case 'M': unit = 1048576.0; end++; break;
    case 'G': unit = 1073741824.0; end++; break;
    case 'T': unit = 1099511627776.0; end++; break;
    default: break;
    }
    if (toupper((unsigned char)*end) == 'B' || (*end == 'i' && toupper((unsigned char)end[1]) == 'B'))
        end += *end == 'i' ? 2 : 1;
    if (errno || end == s || *end || !(v >= 0) || v * unit > 1.8e19)
        return sp_errorf(err, "SHARDPIPE_SHARD_CACHE_MAX='%s' is not a size; give bytes or a number with K, M, G "
                              "or T (e.g. 20G)", s);
    *out = (uint64_t)(v * unit);
    return 0;
}

/* ---- checking an entry ---- */

static const char *ends_text(const sp_shard_key *k)
{
    return k->embed && k->head ? " + embedding + head" : k->embed ? " + embedding" : k->head ? " + head" : "";
}

int sp_shard_cache_check(const char *path, const sp_shard_key *key, sp_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return 1;
    const char *fix = "delete it (or run `shardpipe cache clear` on that board) and start again: rank 0 sends the "
                      "shard anew";
    sp_error why = {{0}};
    sp_gguf *g = sp_gguf_open(path, &why);
    if (!g)
        return sp_errorf(err, "cached shard %s cannot be read (%s); %s", path, why.msg, fix);
    sp_shard_info info;
    int rc = 0;
    if (sp_shard_info_read(g, &info, &why))
        rc = sp_errorf(err, "cached shard %s is not a shard file (%s); %s", path, why.msg, fix);
    else if (!info.is_shard)
        rc = sp_errorf(err, "cached shard %s is a whole model, not the shard of layers %d-%d%s; %s", path, key->first,
                       key->last, ends_text(key), fix);
    else if (info.first != key->first || info.last != key->last || info.embed != key->embed ||
             info.head != key->head) {
        sp_shard_key held = {info.first, info.last, info.embed, info.head, 0};
        rc = sp_errorf(err, "cached shard %s holds layers %d-%d%s, not the plan's layers %d-%d%s; %s", path,
                       info.first, info.last, ends_text(&held), key->first, key->last, ends_text(key), fix);
    }
    if (!rc) {
        bool cached;
        uint64_t h = sp_shard_content_hash_cached(g, key->first, key->last, key->embed, key->head, &cached);
        if (h != key->hash)
            rc = sp_errorf(err, "cached shard %s has content hash %016" PRIx64 " but the plan's model gives %016" PRIx64
                                " for layers %d-%d%s (a damaged or stale copy); %s",
                           path, h, key->hash, key->first, key->last, ends_text(key), fix);
    }
    sp_gguf_close(g);
    return rc;
}

/* ---- listing, the bound, clearing ---- */

/* HASH.gguf (16 hex digits), or HASH.gguf.XXXXXX (a temporary) */
static int classify(const char *name)
{
    size_t n = strlen(name);
    if (n < 21) return 0;
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)name[i])) return 0;
    if (memcmp(name + 16, ".gguf", 5)) return 0;
    if (n == 21) return 1;
    return n == 28 && name[21] == '.' ? 2 : 0;
}

static int by_use_newest(const void *a, const void *b)
{
    const sp_shard_cache_item *x = a, *y = b;
    return x->used < y->used ? 1 : x->used > y->used ? -1 : strcmp(x->name, y->name);
}

int sp_shard_cache_list(const char *dir, sp_shard_cache_item **items, int *n, sp_error *err)
{
    *items = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return sp_errorf(err, "%s: cannot read the shard cache folder (%s)", dir, strerror(errno));
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int kind = classify(e->d_name);
        struct stat st;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!kind || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            sp_shard_cache_item *p = realloc(*items, (size_t)cap * sizeof *p);
            if (!p) abort();
            *items = p;
        }
        sp_shard_cache_item *it = &(*items)[(*n)++];
        memset(it, 0, sizeof *it);
        snprintf(it->name, sizeof it->name, "%s", e->d_name);
        it->bytes = (uint64_t)st.st_size;
        it->used = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
        it->written = st.st_mtime;
        it->temporary = kind == 2;
    }
    closedir(d);
    if (*n > 1) qsort(*items, (size_t)*n, sizeof **items, by_use_newest);
    return 0;
}

/* Removes a temporary unless a transfer holds its lock; true if removed. */
static bool remove_dead_temporary(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    bool dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (dead) dead = unlink(path) == 0;
    close(fd);
    return dead;
}

int sp_shard_cache_clear(const char *dir, int *removed, uint64_t *freed, sp_error *err)
{
    sp_shard_cache_item *items;
    int n;
    if (removed) *removed = 0;
    if (freed) *freed = 0;
    if (sp_shard_cache_list(dir, &items, &n, err)) return -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, items[i].name);
        bool gone = items[i].temporary ? remove_dead_temporary(path) : unlink(path) == 0;
        if (!gone && !items[i].temporary && !rc)
            rc = sp_errorf(err, "%s: cannot remove (%s); check the folder's permissions", path, strerror(errno));
        if (gone && removed) (*removed)++;
        if (gone && freed) *freed += items[i].bytes;
    }
    free(items);
    return rc;
}

static uint64_t disk_free(const char *dir)
{
    struct statvfs v;
    return statvfs(dir, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : UINT64_MAX;
}

/* Room for `size` more bytes: dead temporaries go, then the least recently
 * used entries while the cache would exceed its bound or the disk its
 * reserve. */
static int make_room(const char *dir, uint64_t size, sp_error *err)
{
    uint64_t max;
    if (sp_shard_cache_max(&max, err)) return -1;
    sp_shard_cache_item *items;
    int n;
    if (sp_shard_cache_list(dir, &items, &n, err)) return -1;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, items[i].name);
        if (items[i].temporary && remove_dead_temporary(path)) items[i].bytes = 0;
        total += items[i].bytes;
    }
    for (int i = n - 1; i >= 0; i--) { /* oldest first */
        bool over = total + size > max, tight = disk_free(dir) < size + SP_SHARD_CACHE_DISK_RESERVE;
        if (!over && !tight) break;
        if (items[i].temporary || !items[i].bytes) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, items[i].name);
        if (unlink(path) == 0) total -= items[i].bytes;
    }
    free(items);
    uint64_t avail = disk_free(dir);
    if (avail < size + SP_SHARD_CACHE_DISK_RESERVE)
        return sp_errorf(err, "%s: a shard of %.1f MiB does not fit: the disk has %.1f MiB free and keeps 1024 MiB "
                              "(every other cached shard is removed already); free space there or give --shard-cache "
                              "a folder on a bigger disk", dir, size / 1048576.0, avail / 1048576.0);
    return 0;
}

/* ---- writing an entry ---- */

int sp_shard_cache_begin(sp_shard_cache_writer *w, const char *dir, const sp_shard_key *key, uint64_t size,
                         sp_error *err)
{
    memset(w, 0, sizeof *w);
    w->key = *key;
    w->size = size;
    sp_shard_cache_entry(dir, key->hash, w->path, sizeof w->path);
    if (make_room(dir, size, err)) return -1;
    if (sp_atomic_open(&w->file, w->path, "the cached shard", err)) return -1;
    /* held until commit or abort: a trim elsewhere leaves this one alone */
    flock(fileno(w->file.f), LOCK_EX | LOCK_NB);
    return 0;
}

int sp_shard_cache_put(sp_shard_cache_writer *w, const void *buf, size_t n, sp_error *err)
{
    if (w->written + n > w->size)
        return sp_errorf(err, "%s: more bytes arrived than the %" PRIu64 " announced", w->file.tmp, w->size);
    if (n && fwrite(buf, 1, n, w->file.f) != n)
        return sp_errorf(err, "%s: cannot write the cached shard (%s); check the free space", w->file.tmp,
                         strerror(errno));
    w->written += n;
    return 0;
}

void sp_shard_cache_abort(sp_shard_cache_writer *w)
{
    if (!w->file.f) return;
    fclose(w->file.f);
    w->file.f = NULL;
    unlink(w->file.tmp);
}

int sp_shard_cache_commit(sp_shard_cache_writer *w, sp_error *err)
{
    if (w->written != w->size) {
        sp_errorf(err, "%s: %" PRIu64 " of %" PRIu64 " bytes arrived; the transfer was cut off", w->file.tmp,
                  w->written, w->size);
        sp_shard_cache_abort(w);
        return -1;
    }
    if (fflush(w->file.f) != 0) {
        sp_errorf(err, "%s: cannot write the cached shard (%s); check the free space", w->file.tmp, strerror(errno));
        sp_shard_cache_abort(w);
        return -1;
    }
    /* what arrived must be the shard its name says */
    const sp_shard_key *k = &w->key;
    sp_error why = {{0}};
    sp_gguf *g = sp_gguf_open(w->file.tmp, &why);
    uint64_t h = g ? sp_shard_content_hash(g, k->first, k->last, k->embed, k->head) : 0;
    sp_gguf_close(g);
    if (!g || h != k->hash) {
        if (g) snprintf(why.msg, sizeof why.msg, "content hash %016" PRIx64 ", expected %016" PRIx64, h, k->hash);
        sp_errorf(err, "the shard received for layers %d-%d%s is not the one sent (%s); nothing was cached, start "
                       "again", k->first, k->last, ends_text(k), why.msg);
        sp_shard_cache_abort(w);
        return -1;
    }
    if (sp_atomic_commit(&w->file, true, err)) return -1; /* fsync, rename, and the lock goes with the close */
    sp_shard_content_hash_note(w->path, k->first, k->last, k->embed, k->head, h);
    return 0;
}
