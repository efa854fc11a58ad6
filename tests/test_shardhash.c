/* test_shardhash.c - the shard identity: every byte counts, the cache is
 * keyed by the file's facts and the shard, and a changed file is hashed
 * again (issue 21 item 11). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/gguf.h"
#include "shardpipe/shardhash.h"
#include "shardpipe/util.h"
#include "testutil.h"

static void copy_file(const char *from, const char *to)
{
    size_t n;
    void *buf = sp_test_read_file(from, &n);
    cr_assert_not_null(buf);
    FILE *f = fopen(to, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    free(buf);
}

static sp_gguf *open_ok(const char *path)
{
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    return g;
}

Test(shardhash, every_byte_counts_and_the_cache_follows_the_file)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    const char *copy = sp_test_tmpfile("copy.gguf");
    copy_file(model, copy);
    setenv("SHARDPIPE_HASH_CACHE", sp_test_tmpfile("hashes"), 1);
    sp_shard_sel tail = {3, 4, true}, head = {0, 2, true};

    sp_gguf *g = open_ok(copy);
    bool cached;
    uint64_t h = sp_shard_hash(g, tail, &cached);
    cr_expect(!cached, "a fresh cache had the hash");
    cr_expect_eq(h, sp_shard_hash_uncached(g, tail));
    cr_expect_eq(sp_shard_hash(g, tail, &cached), h);
    cr_expect(cached, "the second call did not use the cache");
    uint64_t h_head = sp_shard_hash(g, head, &cached);
    cr_expect(!cached && h_head != h, "another shard of the file must have its own entry");

    /* one float in the middle of blk.4.ffn_down, far from the start, middle
     * and end 4 KiB that the old identity sampled */
    const sp_gguf_tensor *t = sp_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    cr_assert_not_null(t);
    long off = (long)((const unsigned char *)t->data - (const unsigned char *)g->base) + 10000;
    sp_gguf_close(g);
    FILE *f = fopen(copy, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    cr_assert_eq(fwrite("\xff\xff\xff\x7f", 1, 4, f), 4);
    cr_assert_eq(fclose(f), 0);

    g = open_ok(copy);
    uint64_t h2 = sp_shard_hash(g, tail, &cached);
    cr_expect(!cached, "the cache answered for a file that changed since");
    cr_expect_neq(h2, h, "a changed byte of the shard left the hash unchanged");
    cr_expect_eq(h2, sp_shard_hash_uncached(g, tail));
    /* a layer outside the shard does not change it */
    cr_expect_eq(sp_shard_hash_uncached(g, (sp_shard_sel){0, 2, false}),
                 ({
                     sp_gguf *o = open_ok(model);
                     uint64_t v = sp_shard_hash_uncached(o, (sp_shard_sel){0, 2, false});
                     sp_gguf_close(o);
                     v;
                 }));
    sp_gguf_close(g);
}

/* A cache that cannot be written is no error: the hash is computed. */
Test(shardhash, unwritable_cache_is_ignored)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    setenv("SHARDPIPE_HASH_CACHE", "/nonexistent-folder/hashes", 1);
    sp_gguf *g = open_ok(model);
    bool cached = true;
    sp_shard_sel all = {0, 4, true};
    cr_expect_eq(sp_shard_hash(g, all, &cached), sp_shard_hash_uncached(g, all));
    cr_expect(!cached);
    sp_gguf_close(g);
}
