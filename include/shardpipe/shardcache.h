/* shardcache.h - a board's cache of the shards rank 0 sent it, so that a
 * board needs neither the model file nor a copy made by hand, and the next
 * start sends nothing.
 *
 * An entry is DIR/HASH.gguf: a shard file exactly as `shardpipe split`
 * writes it (shardfile.h), named by its content hash (the 16 hex digits of
 * sp_shard_content_hash, the same for the whole model and the shard), so
 * the name says what it must hold and a changed model or plan simply names
 * another entry. DIR is --shard-cache DIR, else $XDG_CACHE_HOME/shardpipe/
 * shards, else ~/.cache/shardpipe/shards.
 *
 * An entry is written atomically: a unique temporary beside it (locked
 * while it is written, so a cache trim never removes a transfer in flight),
 * verified against the expected hash, fsynced, renamed into place. One whose
 * content does not match its name (damaged, truncated, or put there by
 * hand) is refused by name, never used and never silently replaced.
 *
 * Bound: before an entry is written, the least recently used others (the
 * file's access time, which the kernel updates at most daily under the
 * default relatime mount option) are removed until the cache holds at most
 * SHARDPIPE_SHARD_CACHE_MAX bytes with the new one (default 16G; suffixes
 * K, M, G, T are powers of 1024) and the disk keeps 1 GiB free after it. A
 * single shard larger than the bound is still kept (alone); one the disk
 * cannot hold is refused with the numbers. Temporaries no process holds
 * (an interrupted transfer) are removed at the same time. */
#ifndef SHARDPIPE_SHARDCACHE_H
#define SHARDPIPE_SHARDCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "shardpipe/atomicfile.h"
#include "shardpipe/error.h"

#define SP_SHARD_CACHE_DEFAULT_MAX (16ull << 30)
#define SP_SHARD_CACHE_DISK_RESERVE (1ull << 30)

/* The stage's shard an entry holds: layers [first, last] with the
 * embedding and/or the head, and its content hash. */
typedef struct sp_shard_key {
    int first, last;
    bool embed, head;
    uint64_t hash;
} sp_shard_key;

/* The cache folder into out: `dir` when given, else the XDG default; with
 * `create` it is made (with its parents, mode 0700). -1 with the error when
 * no folder can be named (no HOME) or created. */
int sp_shard_cache_dir(const char *dir, bool create, char *out, size_t cap, sp_error *err);

/* DIR/HASH.gguf into out. */
void sp_shard_cache_entry(const char *dir, uint64_t hash, char *out, size_t cap);

/* The byte bound: SHARDPIPE_SHARD_CACHE_MAX, else the default; -1 with the
 * error when the variable is not a size. */
int sp_shard_cache_max(uint64_t *out, sp_error *err);

/* Whether the entry at `path` holds the shard `key`: 1 when absent, 0 when
 * it does (its hash is cached per file like sp_shard_hash's, so a board
 * reads it once), -1 with an error naming the path, what was expected and
 * found, and the fix (delete it, or `shardpipe cache clear`) otherwise. */
int sp_shard_cache_check(const char *path, const sp_shard_key *key, sp_error *err);

/* Receiving an entry of `size` bytes: begin makes room (the bound above)
 * and opens the temporary; put appends; commit checks the size and the
 * content hash, then renames it into place (and remembers its hash); abort
 * (also after a failed put or commit) removes the temporary. */
typedef struct sp_shard_cache_writer {
    sp_atomic_file file;
    sp_shard_key key;
    uint64_t size, written;
    char path[1100];
} sp_shard_cache_writer;

int sp_shard_cache_begin(sp_shard_cache_writer *w, const char *dir, const sp_shard_key *key, uint64_t size,
                         sp_error *err);
int sp_shard_cache_put(sp_shard_cache_writer *w, const void *buf, size_t n, sp_error *err);
int sp_shard_cache_commit(sp_shard_cache_writer *w, sp_error *err);
void sp_shard_cache_abort(sp_shard_cache_writer *w);

/* What the cache holds: entries (and temporaries left by a transfer that
 * was cut off), sorted by last use, newest first. */
typedef struct sp_shard_cache_item {
    char name[96];   /* file name within DIR */
    uint64_t bytes;
    time_t used;     /* access time */
    time_t written;  /* modification time: when it arrived */
    bool temporary;
} sp_shard_cache_item;

/* -1 with the error when DIR cannot be read; an absent DIR is empty. */
int sp_shard_cache_list(const char *dir, sp_shard_cache_item **items, int *n, sp_error *err);
/* Removes every entry and every temporary no transfer holds; *removed and
 * *freed (may be NULL) count them. */
int sp_shard_cache_clear(const char *dir, int *removed, uint64_t *freed, sp_error *err);

#endif
