/* test_sha256.c - SHA-256 against the FIPS 180-4 / NIST example vectors,
 * the padding boundaries (55, 56, 63 and 64 bytes: the length field fits the
 * last block or spills into a new one), streaming in odd-sized pieces,
 * hashing files across the 1 MiB read size, and the shared stories260K.gguf
 * against the checksum in shared/README.md. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/sha256.h"
#include "testutil.h"

static void hash_hex(const void *data, size_t n, char hex[65])
{
    sp_sha256 s;
    uint8_t digest[32];
    sp_sha256_init(&s);
    sp_sha256_update(&s, data, n);
    sp_sha256_final(&s, digest);
    sp_sha256_hex(digest, hex);
}

/* n copies of byte c, malloc'ed */
static char *repeat(char c, size_t n)
{
    char *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    memset(p, c, n);
    return p;
}

Test(sha256, fips_vectors)
{
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopq"
         "rstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[65];
        hash_hex(v[i].msg, strlen(v[i].msg), hex);
        cr_expect_str_eq(hex, v[i].hex, "sha256(\"%s\")", v[i].msg);
    }
}

Test(sha256, one_million_a)
{
    char *a = repeat('a', 1000000), hex[65];
    hash_hex(a, 1000000, hex);
    cr_expect_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

Test(sha256, padding_boundaries)
{
    /* 55 bytes: 0x80 and the length still fit one block; 56 and 63: they
     * spill into a second block; 64: a whole block of message, then a block
     * of padding alone (values from `sha256sum`) */
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *a = repeat('a', v[i].n), hex[65];
        hash_hex(a, v[i].n, hex);
        cr_expect_str_eq(hex, v[i].hex, "sha256 of %zu 'a's", v[i].n);
        free(a);
    }
}

Test(sha256, streaming_in_odd_pieces_equals_one_shot)
{
    /* bytes that differ from position to position, so that a piece placed
     * at the wrong offset changes the digest */
    size_t n = 300007;
    uint8_t *data = malloc(n);
    cr_assert_not_null(data);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
    char want[65], got[65];
    hash_hex(data, n, want);

    static const size_t pieces[] = {1, 3, 0, 7, 13, 63, 64, 65, 127, 129, 1000, 4093};
    sp_sha256 s;
    uint8_t digest[32];
    sp_sha256_init(&s);
    size_t off = 0;
    for (int k = 0; off < n; k++) {
        size_t take = pieces[k % (sizeof pieces / sizeof pieces[0])];
        if (take > n - off) take = n - off;
        sp_sha256_update(&s, data + off, take);
        off += take;
    }
    sp_sha256_final(&s, digest);
    sp_sha256_hex(digest, got);
    cr_expect_str_eq(got, want);

    /* a different message gives a different digest */
    data[n / 2] ^= 1;
    hash_hex(data, n, got);
    cr_expect_str_neq(got, want);
    free(data);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

Test(sha256, file_equals_memory_across_read_chunks)
{
    /* 2.5 MiB + 17 bytes: two full 1 MiB reads and a partial one */
    size_t n = (5u << 19) + 17;
    uint8_t *data = malloc(n);
    cr_assert_not_null(data);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i ^ (i >> 8) ^ (i >> 16));
    const char *path = sp_test_tmpfile("big.bin");
    write_file(path, data, n);
    char want[65], got[65];
    hash_hex(data, n, want);
    sp_error err = {{0}};
    cr_assert_eq(sp_sha256_file(path, got, &err), 0, "%s", err.msg);
    cr_expect_str_eq(got, want);
    free(data);

    /* a file of one million 'a's gives the NIST value */
    char *a = repeat('a', 1000000);
    path = sp_test_tmpfile("million_a.txt");
    write_file(path, a, 1000000);
    free(a);
    cr_assert_eq(sp_sha256_file(path, got, &err), 0, "%s", err.msg);
    cr_expect_str_eq(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* and an empty file the empty message's */
    path = sp_test_tmpfile("empty");
    write_file(path, "", 0);
    cr_assert_eq(sp_sha256_file(path, got, &err), 0, "%s", err.msg);
    cr_expect_str_eq(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(sha256, missing_file_names_it)
{
    const char *path = sp_test_tmpfile("no-such-file.gguf");
    char hex[65];
    sp_error err = {{0}};
    cr_assert_eq(sp_sha256_file(path, hex, &err), -1);
    cr_expect(strstr(err.msg, path), "the message should name %s: %s", path, err.msg);
    cr_expect(strstr(err.msg, "No such file"), "the message should give the reason: %s", err.msg);
}

Test(sha256, shared_stories260K)
{
    const char *path = sp_test_shared("models/stories260K.gguf");
    if (!path) return;
    char hex[65];
    sp_error err = {{0}};
    cr_assert_eq(sp_sha256_file(path, hex, &err), 0, "%s", err.msg);
    /* `sha256sum stories260K.gguf`; shared/README.md: 5a9d168b...6d9c */
    cr_expect_str_eq(hex, "5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c");
}
