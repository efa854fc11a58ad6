/* shardhash.h - the identity of a model shard, which every rank of a run
 * proves before generating: XXH3-64 over the file's header and tensor index
 * and over every byte of the shard's tensors, so a copy corrupted anywhere
 * in the layers a board runs is refused (3 x 4 KiB samples per tensor let
 * most damage through). XXH3 streams at memory speed; the result is cached
 * per file (path, device, inode, size, mtime, ctime) and shard in
 * $SHARDPIPE_HASH_CACHE, else $XDG_CACHE_HOME/shardpipe/shard-hashes, else
 * ~/.cache/shardpipe/shard-hashes, so a board pays the read once per file.
 * The full-file sha256 of a plan's model.sha256 stays the strong check. */
#ifndef SHARDPIPE_SHARDHASH_H
#define SHARDPIPE_SHARDHASH_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/gguf.h"

/* The tensors of layers first..last (blk.N.*), and with `ends` also every
 * tensor outside the blocks (embedding, output norm and matrix). */
typedef struct sp_shard_sel {
    int first, last;
    bool ends;
} sp_shard_sel;

/* The shard's hash; *cached says whether the cache had it. A cache that
 * cannot be read or written is no error (the hash is computed). */
uint64_t sp_shard_hash(const sp_gguf *g, sp_shard_sel sel, bool *cached);
/* The same without the cache (what a cache entry must equal). */
uint64_t sp_shard_hash_uncached(const sp_gguf *g, sp_shard_sel sel);

/* sp_shard_content_hash (shardfile.h: the identity that is the same in a
 * whole file and a shard file), cached like sp_shard_hash. */
uint64_t sp_shard_content_hash_cached(const sp_gguf *g, int first, int last, bool embed, bool head, bool *cached);
/* Records h as the content hash of `file` as it is now (a shard file just
 * written and verified), so its first use reads nothing again. */
void sp_shard_content_hash_note(const char *file, int first, int last, bool embed, bool head, uint64_t h);

#endif
