/* test_shardcache.c - a board's shard cache (shardcache.h) and the stream
 * rank 0 sends it (sp_gguf_stream): the stream is byte for byte the file
 * `shardpipe split` writes; an entry received through the writer is named
 * by its content hash, checks out, and runs; bytes that are not the shard,
 * or too few of them, leave nothing behind; a damaged, truncated or
 * misplaced entry is refused with its path, both hashes and the fix; the
 * bound evicts the least recently used entries and never a transfer in
 * flight; the folder and bound come from the documented variables. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardpipe/gguf.h"
#include "shardpipe/model.h"
#include "shardpipe/shardcache.h"
#include "shardpipe/shardfile.h"
#include "testutil.h"

static void init(void)
{
    /* hashes are remembered beside the test, never in HOME */
    setenv("SHARDPIPE_HASH_CACHE", sp_test_tmpfile("hashes"), 1);
    unsetenv("SHARDPIPE_SHARD_CACHE_MAX");
}

TestSuite(shardcache, .init = init);

/* the last stage of stories260K's 3-stage plan: layers 3-4 and the head */
static sp_shard_key last_stage(const sp_gguf *g)
{
    sp_shard_key k = {3, 4, false, true, 0};
    k.hash = sp_shard_content_hash(g, k.first, k.last, k.embed, k.head);
    return k;
}

static uint8_t *stream_bytes(const sp_gguf *g, const sp_shard_key *k, size_t chunk, size_t *len)
{
    sp_error err = {{0}};
    sp_gguf_writer *w = sp_shard_writer(g, k->first, k->last, k->embed, k->head, &err);
    cr_assert(w, "%s", err.msg);
    sp_gguf_stream *s = sp_gguf_stream_new(w, &err);
    cr_assert(s, "%s", err.msg);
    size_t size = (size_t)sp_gguf_stream_size(s), got = 0, n;
    uint8_t *buf = malloc(size + chunk);
    while ((n = sp_gguf_stream_read(s, buf + got, chunk)) > 0) got += n;
    cr_assert_eq(got, size, "the stream gave %zu of its %zu bytes", got, size);
    sp_gguf_stream_free(s);
    sp_gguf_writer_free(w);
    *len = size;
    return buf;
}

Test(shardcache, stream_is_the_split_file)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(model, &err);
    cr_assert(g, "%s", err.msg);
    sp_shard_key k = last_stage(g);
    const char *path = sp_test_tmpfile("stage-2.gguf");
    cr_assert_eq(sp_shard_write(g, k.first, k.last, k.embed, k.head, path, &err), 0, "%s", err.msg);
    size_t flen;
    uint8_t *file = sp_test_read_file(path, &flen);
    /* odd chunk sizes cut pieces anywhere: header, padding, tensor data */
    size_t chunks[] = {1 << 20, 4093, 31};
    for (int i = 0; i < 3; i++) {
        size_t slen;
        uint8_t *s = stream_bytes(g, &k, chunks[i], &slen);
        cr_assert_eq(slen, flen, "chunk %zu: the stream has %zu bytes, the split file %zu", chunks[i], slen, flen);
        cr_expect_eq(memcmp(s, file, flen), 0, "chunk %zu: the stream differs from the split file", chunks[i]);
        free(s);
    }
    free(file);
    sp_gguf_close(g);
}

/* receives `len` bytes of buf into dir through the writer, in 1000-byte puts */
static int receive(const char *dir, const sp_shard_key *k, const uint8_t *buf, size_t len, uint64_t size,
                   sp_error *err)
{
    sp_shard_cache_writer w;
    if (sp_shard_cache_begin(&w, dir, k, size, err)) return -1;
    for (size_t off = 0; off < len; off += 1000)
        if (sp_shard_cache_put(&w, buf + off, len - off < 1000 ? len - off : 1000, err)) {
            sp_shard_cache_abort(&w);
            return -1;
        }
    return sp_shard_cache_commit(&w, err);
}

static int files_in(const char *dir)
{
    sp_shard_cache_item *items;
    int n;
    sp_error err = {{0}};
    cr_assert_eq(sp_shard_cache_list(dir, &items, &n, &err), 0, "%s", err.msg);
    free(items);
    return n;
}

/* the last stage's shard as rank 0 streams it, and a cache folder for it */
typedef struct fixture {
    sp_gguf *g;
    sp_shard_key k;
    uint8_t *bytes;
    size_t len;
    char dir[512], entry[1100];
} fixture;

static void fixture_open(fixture *f, const char *folder)
{
    sp_error err = {{0}};
    f->g = sp_gguf_open(sp_test_shared("models/stories260K.gguf"), &err);
    cr_assert(f->g, "%s", err.msg);
    f->k = last_stage(f->g);
    f->bytes = stream_bytes(f->g, &f->k, 1 << 20, &f->len);
    cr_assert_eq(sp_shard_cache_dir(sp_test_tmpfile(folder), true, f->dir, sizeof f->dir, &err), 0, "%s", err.msg);
    sp_shard_cache_entry(f->dir, f->k.hash, f->entry, sizeof f->entry);
}

static void fixture_close(fixture *f)
{
    free(f->bytes);
    sp_gguf_close(f->g);
}

Test(shardcache, received_entry_is_named_by_hash_checks_out_and_runs)
{
    fixture f;
    fixture_open(&f, "cache/nested");
    sp_error err = {{0}};
    sp_gguf *g = f.g;
    sp_shard_key k = f.k;
    size_t len = f.len;
    uint8_t *bytes = f.bytes;
    const char *dir = f.dir, *entry = f.entry;
    cr_assert_eq(sp_shard_cache_check(entry, &k, &err), 1, "an absent entry is reported absent");
    cr_assert_eq(receive(dir, &k, bytes, len, len, &err), 0, "%s", err.msg);
    char name[40];
    snprintf(name, sizeof name, "/%016" PRIx64 ".gguf", k.hash);
    cr_expect(strstr(entry, name), "the entry %s is named by the hash %016" PRIx64, entry, k.hash);
    cr_expect(!sp_test_tmp_left(entry), "no temporary is left beside %s", entry);
    cr_assert_eq(sp_shard_cache_check(entry, &k, &err), 0, "%s", err.msg);
    cr_expect_eq(files_in(dir), 1);
    /* it runs as the stage's layers (the split tests show its logits equal the whole file's) */
    sp_model *m = sp_model_open(entry, k.first, k.last, k.embed, k.head, &err);
    cr_expect(m, "%s", err.msg);
    sp_model_close(m);
    /* another stage of the same model is another entry; this one does not pass for it */
    sp_shard_key other = {2, 2, false, false, 0};
    other.hash = sp_shard_content_hash(g, 2, 2, false, false);
    cr_expect_neq(other.hash, k.hash);
    cr_assert_eq(sp_shard_cache_check(entry, &other, &err), -1, "an entry holding other layers is refused");
    cr_expect(strstr(err.msg, "holds layers 3-4 + head, not the plan's layers 2-2"), "%s", err.msg);
    fixture_close(&f);
}

Test(shardcache, wrong_or_missing_bytes_leave_nothing)
{
    fixture f;
    fixture_open(&f, "wrong");
    sp_error err = {{0}};
    f.bytes[f.len - 100] ^= 0x40; /* one bit of the last tensor */
    cr_assert_eq(receive(f.dir, &f.k, f.bytes, f.len, f.len, &err), -1, "a shard with one bit changed is not cached");
    cr_expect(strstr(err.msg, "is not the one sent (content hash"), "%s", err.msg);
    cr_expect_eq(files_in(f.dir), 0, "nothing is left in the cache");
    f.bytes[f.len - 100] ^= 0x40;
    cr_assert_eq(receive(f.dir, &f.k, f.bytes, f.len - 5000, f.len, &err), -1, "a transfer cut short is not cached");
    cr_expect(strstr(err.msg, "arrived; the transfer was cut off"), "%s", err.msg);
    cr_expect_eq(files_in(f.dir), 0, "nothing is left in the cache");
    cr_assert_eq(receive(f.dir, &f.k, f.bytes, f.len, f.len - 1, &err), -1, "more bytes than announced are refused");
    cr_expect(strstr(err.msg, "more bytes arrived than the"), "%s", err.msg);
    cr_expect_eq(files_in(f.dir), 0);
    fixture_close(&f);
}

static void write_bytes(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

Test(shardcache, damaged_entries_are_refused_by_name)
{
    fixture f;
    fixture_open(&f, "damaged");
    sp_error err = {{0}};
    f.bytes[f.len - 100] ^= 0x40;
    write_bytes(f.entry, f.bytes, f.len); /* a bit flipped on the disk */
    cr_assert_eq(sp_shard_cache_check(f.entry, &f.k, &err), -1);
    char want[300];
    snprintf(want, sizeof want, "but the plan's model gives %016" PRIx64 " for layers 3-4 + head", f.k.hash);
    cr_expect(strstr(err.msg, f.entry) && strstr(err.msg, want), "%s", err.msg);
    cr_expect(strstr(err.msg, "delete it (or run `shardpipe cache clear` on that board)"), "%s", err.msg);
    write_bytes(f.entry, f.bytes, f.len / 2); /* truncated */
    cr_assert_eq(sp_shard_cache_check(f.entry, &f.k, &err), -1);
    cr_expect(strstr(err.msg, "cannot be read") && strstr(err.msg, f.entry), "%s", err.msg);
    fixture_close(&f);
}

static void fake_entry(const char *dir, const char *name, size_t bytes, time_t used)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(ftruncate(fileno(f), (off_t)bytes), 0);
    fclose(f);
    struct timespec t[2] = {{used, 0}, {used - 100, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

static bool present(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

Test(shardcache, bound_evicts_least_recently_used)
{
    sp_error err = {{0}};
    char dir[512];
    cr_assert_eq(sp_shard_cache_dir(sp_test_tmpfile("bound"), true, dir, sizeof dir, &err), 0, "%s", err.msg);
    time_t now = time(NULL);
    fake_entry(dir, "00000000000000a1.gguf", 300000, now - 3000); /* oldest use */
    fake_entry(dir, "00000000000000a2.gguf", 300000, now - 1000);
    fake_entry(dir, "00000000000000a3.gguf", 300000, now - 2000);
    fake_entry(dir, "00000000000000a4.gguf.Ab12Cd", 1000, now - 5000);  /* a cut-off transfer */
    fake_entry(dir, "00000000000000a5.gguf.Xy34Zw", 1000, now - 5000);  /* one in flight */
    fake_entry(dir, "notes.txt", 5000000, now - 9000);                    /* not the cache's */
    char live[1024];
    snprintf(live, sizeof live, "%s/00000000000000a5.gguf.Xy34Zw", dir);
    int fd = open(live, O_RDONLY);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0);
    setenv("SHARDPIPE_SHARD_CACHE_MAX", "700000", 1);
    sp_shard_key k = {0, 1, true, false, 0xb0};
    sp_shard_cache_writer w;
    /* 300000 more: at most 700000 in all, so the two least recently used go */
    cr_assert_eq(sp_shard_cache_begin(&w, dir, &k, 300000, &err), 0, "%s", err.msg);
    sp_shard_cache_abort(&w);
    cr_expect(!present(dir, "00000000000000a1.gguf"), "the least recently used entry is evicted");
    cr_expect(!present(dir, "00000000000000a3.gguf"), "the next least recently used too");
    cr_expect(present(dir, "00000000000000a2.gguf"), "the most recently used one stays");
    cr_expect(!present(dir, "00000000000000a4.gguf.Ab12Cd"), "a temporary no transfer holds is removed");
    cr_expect(present(dir, "00000000000000a5.gguf.Xy34Zw"), "a transfer in flight is never removed");
    cr_expect(present(dir, "notes.txt"), "files that are not the cache's are left alone");
    /* a shard larger than the bound is still kept, alone */
    cr_assert_eq(sp_shard_cache_begin(&w, dir, &k, 900000, &err), 0, "%s", err.msg);
    sp_shard_cache_abort(&w);
    cr_expect(!present(dir, "00000000000000a2.gguf"));
    /* one the disk cannot hold is refused with the numbers */
    cr_assert_eq(sp_shard_cache_begin(&w, dir, &k, UINT64_C(1) << 60, &err), -1);
    cr_expect(strstr(err.msg, "does not fit: the disk has") && strstr(err.msg, dir), "%s", err.msg);
    /* clear: every entry and dead temporary, nothing else */
    fake_entry(dir, "00000000000000a6.gguf", 1000, now);
    int removed;
    uint64_t freed;
    cr_assert_eq(sp_shard_cache_clear(dir, &removed, &freed, &err), 0, "%s", err.msg);
    cr_expect_eq(removed, 1);
    cr_expect_eq(freed, 1000);
    cr_expect(present(dir, "00000000000000a5.gguf.Xy34Zw") && present(dir, "notes.txt"));
    close(fd);
}

Test(shardcache, folder_and_bound_from_the_environment)
{
    sp_error err = {{0}};
    char dir[512];
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/pi", 1);
    cr_assert_eq(sp_shard_cache_dir(NULL, false, dir, sizeof dir, &err), 0);
    cr_expect_str_eq(dir, "/xdg/shardpipe/shards");
    unsetenv("XDG_CACHE_HOME");
    cr_assert_eq(sp_shard_cache_dir(NULL, false, dir, sizeof dir, &err), 0);
    cr_expect_str_eq(dir, "/home/pi/.cache/shardpipe/shards");
    cr_assert_eq(sp_shard_cache_dir("/elsewhere/", false, dir, sizeof dir, &err), 0);
    cr_expect_str_eq(dir, "/elsewhere");
    unsetenv("HOME");
    cr_assert_eq(sp_shard_cache_dir(NULL, false, dir, sizeof dir, &err), -1);
    cr_expect(strstr(err.msg, "--shard-cache DIR"), "%s", err.msg);
    const char *file = sp_test_write_text("plainfile", "x");
    char under[600];
    snprintf(under, sizeof under, "%s/shards", file);
    cr_assert_eq(sp_shard_cache_dir(under, true, dir, sizeof dir, &err), -1, "a folder under a file is refused");
    cr_expect(strstr(err.msg, "cannot create the shard cache folder"), "%s", err.msg);

    uint64_t max;
    cr_assert_eq(sp_shard_cache_max(&max, &err), 0);
    cr_expect_eq(max, SP_SHARD_CACHE_DEFAULT_MAX);
    const char *ok[] = {"20G", "1.5M", "4096", "2GiB", "3t"};
    uint64_t want[] = {20ull << 30, 1572864, 4096, 2ull << 30, 3ull << 40};
    for (int i = 0; i < 5; i++) {
        setenv("SHARDPIPE_SHARD_CACHE_MAX", ok[i], 1);
        cr_assert_eq(sp_shard_cache_max(&max, &err), 0, "%s: %s", ok[i], err.msg);
        cr_expect_eq(max, want[i], "%s", ok[i]);
    }
    const char *bad[] = {"lots", "-3G", "12Q", "5G5"};
    for (int i = 0; i < 4; i++) {
        setenv("SHARDPIPE_SHARD_CACHE_MAX", bad[i], 1);
        cr_expect_eq(sp_shard_cache_max(&max, &err), -1, "%s is refused", bad[i]);
        cr_expect(strstr(err.msg, "SHARDPIPE_SHARD_CACHE_MAX") && strstr(err.msg, bad[i]), "%s", err.msg);
    }
}
