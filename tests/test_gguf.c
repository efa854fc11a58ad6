/* test_gguf.c - GGUF writer -> reader round trips, the typed getters, one
 * test per kind of hostile input (each on a file written here and then
 * corrupted at a computed offset), a truncation sweep, and the shared models. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardpipe/gguf.h"
#include "testutil.h"

/* ---- helpers ---- */

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void write_ok(sp_gguf_writer *w, const char *path, uint32_t version)
{
    sp_error err = {{0}};
    int rc = sp_gguf_write_version(w, path, version, &err);
    cr_assert_eq(rc, 0, "write %s: %s", path, err.msg);
}

static sp_gguf *open_ok(const char *path)
{
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "open %s: %s", path, err.msg);
    return g;
}

/* Opening must fail with a message naming the file and containing each of
 * the (up to two) given words. */
static void expect_fail(const char *path, const char *word1, const char *word2)
{
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_null(g, "%s opened although it should be rejected (%s)", path, word1);
    cr_log_info("%s", err.msg); /* shown with --verbose */
    cr_assert(strstr(err.msg, path), "error does not name the file: %s", err.msg);
    cr_assert(strstr(err.msg, word1), "error lacks '%s': %s", word1, err.msg);
    if (word2) cr_assert(strstr(err.msg, word2), "error lacks '%s': %s", word2, err.msg);
}

/* Offset of the first occurrence of a length-prefixed string in buf: the
 * offset of its u64 length field. */
static size_t find_gguf_str(const uint8_t *buf, size_t n, const char *s)
{
    size_t len = strlen(s);
    uint8_t pat[128];
    uint64_t l = len;
    memcpy(pat, &l, 8);
    memcpy(pat + 8, s, len);
    const uint8_t *p = memmem(buf, n, pat, 8 + len);
    cr_assert_not_null(p, "string '%s' not found in the file", s);
    return (size_t)(p - buf);
}

/* Offset just after a length-prefixed string: for a key, its value type;
 * for a tensor name, its n_dims. */
static size_t after_str(const uint8_t *buf, size_t n, const char *s)
{
    return find_gguf_str(buf, n, s) + 8 + strlen(s);
}

static void poke_u32(uint8_t *buf, size_t off, uint32_t v) { memcpy(buf + off, &v, 4); }
static void poke_u64(uint8_t *buf, size_t off, uint64_t v) { memcpy(buf + off, &v, 8); }

/* A Q8_0 or Q4_0 row of given bytes: arbitrary but recognisable content. */
static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 31 + seed * 7 + 1);
}

/* The small valid model that the hostile tests corrupt:
 *   kvs: general.architecture="llama", test.u32=7, test.arr=int32[3],
 *        test.strs=["ab","cde"], dup.k1=1, dup.k2=2
 *   tensors: t.f32 F32 [4,2], t.q8 Q8_0 [32,2], t.a1 F32 [8], t.a2 F32 [8],
 *            t.q4 Q4_0 [64,1] (last; 36 bytes) */
static void write_small(const char *path, uint32_t alignment)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    if (alignment) sp_gguf_writer_set_alignment(w, alignment);
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_u32(w, "test.u32", 7);
    int32_t arr[3] = {-1, 2, 3};
    sp_gguf_add_arr(w, "test.arr", SP_GGUF_INT32, arr, 3);
    sp_gguf_str strs[2] = {{2, "ab"}, {3, "cde"}};
    sp_gguf_add_str_arr(w, "test.strs", strs, 2);
    sp_gguf_add_u32(w, "dup.k1", 1);
    sp_gguf_add_u32(w, "dup.k2", 2);
    float f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t q8[68], q4[36];
    fill_pattern(q8, sizeof q8, 1);
    fill_pattern(q4, sizeof q4, 2);
    sp_gguf_add_tensor(w, "t.f32", SP_DTYPE_F32, 2, (uint64_t[]){4, 2}, f);
    sp_gguf_add_tensor(w, "t.q8", SP_DTYPE_Q8_0, 2, (uint64_t[]){32, 2}, q8);
    sp_gguf_add_tensor(w, "t.a1", SP_DTYPE_F32, 1, (uint64_t[]){8}, f);
    sp_gguf_add_tensor(w, "t.a2", SP_DTYPE_F32, 1, (uint64_t[]){8}, f);
    sp_gguf_add_tensor(w, "t.q4", SP_DTYPE_Q4_0, 2, (uint64_t[]){64, 1}, q4);
    write_ok(w, path, 3);
    sp_gguf_writer_free(w);
}

/* Write the small model, read it into memory for patching. */
static uint8_t *small_bytes(size_t *n, uint32_t alignment)
{
    const char *tmp = sp_test_tmpfile("small_src.gguf");
    write_small(tmp, alignment);
    uint8_t *buf = sp_test_read_file(tmp, n);
    cr_assert_not_null(buf);
    return buf;
}

/* ---- round trips ---- */

static void add_kv(sp_gguf_writer *w, const char *key, sp_gguf_vtype t, uint64_t u, int64_t i, double f)
{
    sp_gguf_kv kv = {.key = {strlen(key), key}, .type = t};
    if (t == SP_GGUF_FLOAT64 || t == SP_GGUF_FLOAT32) kv.val.f64 = f;
    else if (t == SP_GGUF_INT8 || t == SP_GGUF_INT16 || t == SP_GGUF_INT64) kv.val.i64 = i;
    else kv.val.u64 = u;
    sp_gguf_add_kv_copy(w, &kv);
}

static const sp_gguf_kv *need_kv(const sp_gguf *g, const char *key, sp_gguf_vtype t)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    cr_assert_not_null(kv, "key %s missing", key);
    cr_assert_eq(kv->type, t, "key %s has type %d, expected %d", key, kv->type, t);
    return kv;
}

/* Every value type, arrays of every scalar type, string arrays and tensors
 * of every dtype, written with the given version and alignment. */
static void round_trip(uint32_t version, uint32_t alignment)
{
    char name[64];
    snprintf(name, sizeof name, "rt_v%u_a%u.gguf", version, alignment);
    const char *path = sp_test_tmpfile(name);
    sp_gguf_writer *w = sp_gguf_writer_new();
    if (alignment != 32) sp_gguf_writer_set_alignment(w, alignment);

    sp_gguf_add_u32(w, "v.u32", 4000000000u);
    sp_gguf_add_i32(w, "v.i32", -123456);
    sp_gguf_add_f32(w, "v.f32", 1e-5f);
    sp_gguf_add_bool(w, "v.true", true);
    sp_gguf_add_bool(w, "v.false", false);
    sp_gguf_add_str(w, "v.str", "hello, world");
    sp_gguf_add_str(w, "v.empty", "");
    add_kv(w, "v.u8", SP_GGUF_UINT8, 250, 0, 0);
    add_kv(w, "v.i8", SP_GGUF_INT8, 0, -100, 0);
    add_kv(w, "v.u16", SP_GGUF_UINT16, 65000, 0, 0);
    add_kv(w, "v.i16", SP_GGUF_INT16, 0, -32000, 0);
    add_kv(w, "v.u64", SP_GGUF_UINT64, 0xFEDCBA9876543210ull, 0, 0);
    add_kv(w, "v.i64", SP_GGUF_INT64, 0, -0x123456789ABCll, 0);
    add_kv(w, "v.f64", SP_GGUF_FLOAT64, 0, 0, 3.141592653589793);

    uint8_t a_u8[3] = {1, 2, 255};
    int8_t a_i8[3] = {-1, 0, 127};
    uint16_t a_u16[2] = {1, 65535};
    int16_t a_i16[2] = {-32768, 5};
    uint32_t a_u32[4] = {0, 1, 2, 0xFFFFFFFFu};
    int32_t a_i32[2] = {-7, 7};
    float a_f32[3] = {0.5f, -1.25f, 1e30f};
    uint8_t a_bool[3] = {1, 0, 1};
    uint64_t a_u64[2] = {1, 0xFFFFFFFFFFFFFFFFull};
    int64_t a_i64[2] = {-1, 1};
    double a_f64[2] = {1e-300, -2.5};
    struct { const char *key; sp_gguf_vtype t; const void *p; uint64_t n; size_t es; } arrs[] = {
        {"a.u8", SP_GGUF_UINT8, a_u8, 3, 1},     {"a.i8", SP_GGUF_INT8, a_i8, 3, 1},
        {"a.u16", SP_GGUF_UINT16, a_u16, 2, 2},  {"a.i16", SP_GGUF_INT16, a_i16, 2, 2},
        {"a.u32", SP_GGUF_UINT32, a_u32, 4, 4},  {"a.i32", SP_GGUF_INT32, a_i32, 2, 4},
        {"a.f32", SP_GGUF_FLOAT32, a_f32, 3, 4}, {"a.bool", SP_GGUF_BOOL, a_bool, 3, 1},
        {"a.u64", SP_GGUF_UINT64, a_u64, 2, 8},  {"a.i64", SP_GGUF_INT64, a_i64, 2, 8},
        {"a.f64", SP_GGUF_FLOAT64, a_f64, 2, 8}, {"a.empty", SP_GGUF_UINT32, a_u32, 0, 4},
    };
    size_t n_arrs = sizeof arrs / sizeof arrs[0];
    for (size_t i = 0; i < n_arrs; i++) sp_gguf_add_arr(w, arrs[i].key, arrs[i].t, arrs[i].p, arrs[i].n);
    /* strings with an embedded NUL and an empty one */
    sp_gguf_str strs[4] = {{3, "one"}, {0, ""}, {5, "t\0w\0o"}, {4, "<s>!"}};
    sp_gguf_add_str_arr(w, "a.str", strs, 4);

    /* tensors of every dtype with recognisable bytes */
    struct { const char *name; sp_dtype t; uint32_t n_dims; uint64_t ne[4]; } ts[] = {
        {"w.f32", SP_DTYPE_F32, 2, {3, 5, 1, 1}},
        {"w.f16", SP_DTYPE_F16, 1, {7, 1, 1, 1}},
        {"w.bf16", SP_DTYPE_BF16, 3, {2, 3, 4, 1}},
        {"w.q8_0", SP_DTYPE_Q8_0, 2, {64, 3, 1, 1}},
        {"w.q4_0", SP_DTYPE_Q4_0, 4, {32, 2, 1, 2}},
    };
    size_t n_ts = sizeof ts / sizeof ts[0];
    uint8_t *data[5];
    uint64_t nbytes[5];
    for (size_t i = 0; i < n_ts; i++) {
        uint64_t rows = ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3];
        nbytes[i] = sp_dtype_row_bytes(ts[i].t, ts[i].ne[0]) * rows;
        data[i] = malloc(nbytes[i]);
        fill_pattern(data[i], nbytes[i], (unsigned)i);
        sp_gguf_add_tensor(w, ts[i].name, ts[i].t, ts[i].n_dims, ts[i].ne, data[i]);
    }
    write_ok(w, path, version);
    sp_gguf_writer_free(w);
    cr_assert(!sp_test_tmp_left(path), "a temporary of %s left behind", path);

    sp_gguf *g = open_ok(path);
    cr_assert_eq(g->version, version);
    cr_assert_eq(g->alignment, alignment);
    cr_assert_eq(g->data_offset % alignment, 0);
    cr_assert_eq(g->n_kv, 14 + n_arrs + 1 + (alignment != 32));
    cr_assert_eq(need_kv(g, "v.u32", SP_GGUF_UINT32)->val.u64, 4000000000u);
    cr_assert_eq(need_kv(g, "v.i32", SP_GGUF_INT32)->val.i64, -123456);
    cr_assert_eq((float)need_kv(g, "v.f32", SP_GGUF_FLOAT32)->val.f64, 1e-5f);
    cr_assert_eq(need_kv(g, "v.true", SP_GGUF_BOOL)->val.b, true);
    cr_assert_eq(need_kv(g, "v.false", SP_GGUF_BOOL)->val.b, false);
    cr_assert(sp_gguf_str_eq(need_kv(g, "v.str", SP_GGUF_STRING)->val.str, "hello, world"));
    cr_assert_eq(need_kv(g, "v.empty", SP_GGUF_STRING)->val.str.len, 0);
    cr_assert_eq(need_kv(g, "v.u8", SP_GGUF_UINT8)->val.u64, 250);
    cr_assert_eq(need_kv(g, "v.i8", SP_GGUF_INT8)->val.i64, -100);
    cr_assert_eq(need_kv(g, "v.u16", SP_GGUF_UINT16)->val.u64, 65000);
    cr_assert_eq(need_kv(g, "v.i16", SP_GGUF_INT16)->val.i64, -32000);
    cr_assert_eq(need_kv(g, "v.u64", SP_GGUF_UINT64)->val.u64, 0xFEDCBA9876543210ull);
    cr_assert_eq(need_kv(g, "v.i64", SP_GGUF_INT64)->val.i64, -0x123456789ABCll);
    cr_assert_eq(need_kv(g, "v.f64", SP_GGUF_FLOAT64)->val.f64, 3.141592653589793);
    for (size_t i = 0; i < n_arrs; i++) {
        const sp_gguf_kv *kv = need_kv(g, arrs[i].key, SP_GGUF_ARRAY);
        cr_assert_eq(kv->arr_type, arrs[i].t, "%s", arrs[i].key);
        cr_assert_eq(kv->arr_n, arrs[i].n, "%s", arrs[i].key);
        cr_assert_null(kv->arr_strs);
        cr_assert_eq(memcmp(kv->arr_data, arrs[i].p, arrs[i].n * arrs[i].es), 0, "%s", arrs[i].key);
    }
    const sp_gguf_kv *sa = need_kv(g, "a.str", SP_GGUF_ARRAY);
    cr_assert_eq(sa->arr_type, SP_GGUF_STRING);
    cr_assert_eq(sa->arr_n, 4);
    cr_assert_not_null(sa->arr_strs);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(sa->arr_strs[i].len, strs[i].len);
        cr_assert_eq(memcmp(sa->arr_strs[i].ptr, strs[i].ptr, strs[i].len), 0);
    }
    cr_assert_eq(g->n_tensors, n_ts);
    for (size_t i = 0; i < n_ts; i++) {
        const sp_gguf_tensor *t = sp_gguf_find_tensor(g, ts[i].name);
        cr_assert_not_null(t, "tensor %s", ts[i].name);
        cr_assert_eq(t, &g->tensors[i], "tensors keep file order");
        cr_assert_eq(t->type, ts[i].t);
        cr_assert_eq(t->n_dims, ts[i].n_dims);
        for (int d = 0; d < 4; d++) cr_assert_eq(t->ne[d], ts[i].ne[d]);
        cr_assert_eq(t->nbytes, nbytes[i]);
        cr_assert_eq(t->offset % alignment, 0);
        cr_assert_eq((const uint8_t *)t->data - g->base, (ptrdiff_t)(g->data_offset + t->offset));
        cr_assert_eq(memcmp(t->data, data[i], nbytes[i]), 0, "bytes of %s", ts[i].name);
        free(data[i]);
    }
    cr_assert_null(sp_gguf_find_tensor(g, "w.f3"));
    cr_assert_null(sp_gguf_find(g, "v.u3"));
    sp_gguf_close(g);
}

Test(gguf_roundtrip, v3_align32) { round_trip(3, 32); }
Test(gguf_roundtrip, v3_align64) { round_trip(3, 64); }
Test(gguf_roundtrip, v2_align32) { round_trip(2, 32); }
Test(gguf_roundtrip, v2_align64) { round_trip(2, 64); }

Test(gguf_roundtrip, kv_copy_reproduces_every_kv)
{
    round_trip(3, 64);
    sp_gguf *a = open_ok(sp_test_tmpfile("rt_v3_a64.gguf"));
    sp_gguf_writer *w = sp_gguf_writer_new();
    for (uint64_t i = 0; i < a->n_kv; i++) sp_gguf_add_kv_copy(w, &a->kv[i]);
    const char *path = sp_test_tmpfile("copy.gguf");
    write_ok(w, path, 3);
    sp_gguf_writer_free(w);
    sp_gguf *b = open_ok(path);
    cr_assert_eq(b->n_kv, a->n_kv);
    cr_assert_eq(b->alignment, 64);
    /* The kv sections hold the same entries in the same order: same bytes. */
    size_t a_len = (size_t)(a->kv[a->n_kv - 1].key.ptr - (const char *)a->base);
    size_t b_len = (size_t)(b->kv[b->n_kv - 1].key.ptr - (const char *)b->base);
    cr_assert_eq(a_len, b_len);
    cr_assert_eq(memcmp(a->base + 24, b->base + 24, a_len - 24), 0);
    sp_gguf_close(a);
    sp_gguf_close(b);
}

Test(gguf_roundtrip, adding_a_key_twice_replaces_it)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_u32(w, "k", 1);
    sp_gguf_add_str(w, "k", "two");
    const char *path = sp_test_tmpfile("replace.gguf");
    write_ok(w, path, 3);
    sp_gguf_writer_free(w);
    sp_gguf *g = open_ok(path);
    cr_assert_eq(g->n_kv, 1);
    cr_assert(sp_gguf_str_eq(need_kv(g, "k", SP_GGUF_STRING)->val.str, "two"));
    sp_gguf_close(g);
}

/* ---- getters ---- */

Test(gguf_getters, typed_values_and_errors)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_u32(w, "u32", 42);
    sp_gguf_add_i32(w, "neg", -1);
    sp_gguf_add_i32(w, "pos", 9);
    add_kv(w, "u8", SP_GGUF_UINT8, 200, 0, 0);
    add_kv(w, "big", SP_GGUF_UINT64, 1ull << 40, 0, 0);
    add_kv(w, "f64", SP_GGUF_FLOAT64, 0, 0, 0.25);
    sp_gguf_add_f32(w, "f32", 1.5f);
    sp_gguf_add_str(w, "s", "text");
    uint32_t arr[2] = {5, 6};
    sp_gguf_add_arr(w, "arr", SP_GGUF_UINT32, arr, 2);
    const char *path = sp_test_tmpfile("getters.gguf");
    write_ok(w, path, 3);
    sp_gguf_writer_free(w);
    sp_gguf *g = open_ok(path);
    sp_error err = {{0}};
    uint32_t u = 0;
    uint64_t u64 = 0;
    float f = 0;
    sp_gguf_str s;
    const sp_gguf_kv *kv;

    cr_assert_eq(sp_gguf_get_u32(g, "u32", &u, &err), 0); cr_assert_eq(u, 42);
    cr_assert_eq(sp_gguf_get_u32(g, "u8", &u, &err), 0); cr_assert_eq(u, 200);
    cr_assert_eq(sp_gguf_get_u32(g, "pos", &u, &err), 0); cr_assert_eq(u, 9);
    cr_assert_eq(sp_gguf_get_u64(g, "big", &u64, &err), 0); cr_assert_eq(u64, 1ull << 40);
    cr_assert_eq(sp_gguf_get_f32(g, "f32", &f, &err), 0); cr_assert_eq(f, 1.5f);
    cr_assert_eq(sp_gguf_get_f32(g, "f64", &f, &err), 0); cr_assert_eq(f, 0.25f);
    cr_assert_eq(sp_gguf_get_str(g, "s", &s, &err), 0); cr_assert(sp_gguf_str_eq(s, "text"));
    cr_assert_eq(sp_gguf_get_arr(g, "arr", SP_GGUF_UINT32, &kv, &err), 0); cr_assert_eq(kv->arr_n, 2);

    cr_assert_eq(sp_gguf_get_u32(g, "big", &u, &err), -1);
    cr_assert(strstr(err.msg, "'big'") && strstr(err.msg, path), "%s", err.msg);
    cr_assert_eq(sp_gguf_get_u32(g, "neg", &u, &err), -1);
    cr_assert(strstr(err.msg, "'neg'") && strstr(err.msg, "-1"), "%s", err.msg);
    cr_assert_eq(sp_gguf_get_u32(g, "s", &u, &err), -1);
    cr_assert(strstr(err.msg, "'s'") && strstr(err.msg, "string") && strstr(err.msg, "uint32"), "%s", err.msg);
    cr_assert_eq(sp_gguf_get_f32(g, "u32", &f, &err), -1);
    cr_assert(strstr(err.msg, "uint32") && strstr(err.msg, "float32"), "%s", err.msg);
    cr_assert_eq(sp_gguf_get_str(g, "arr", &s, &err), -1);
    cr_assert(strstr(err.msg, "array of uint32"), "%s", err.msg);
    cr_assert_eq(sp_gguf_get_arr(g, "arr", SP_GGUF_INT32, &kv, &err), -1);
    cr_assert(strstr(err.msg, "'arr'") && strstr(err.msg, "array of int32"), "%s", err.msg);
    cr_assert_eq(sp_gguf_get_u32(g, "absent.key", &u, &err), -1);
    cr_assert(strstr(err.msg, "'absent.key'") && strstr(err.msg, "missing"), "%s", err.msg);

    cr_assert_eq(sp_gguf_get_u32_or(g, "absent", 17, &u, &err), 0); cr_assert_eq(u, 17);
    cr_assert_eq(sp_gguf_get_u32_or(g, "u32", 17, &u, &err), 0); cr_assert_eq(u, 42);
    cr_assert_eq(sp_gguf_get_u32_or(g, "s", 17, &u, &err), -1);
    cr_assert_eq(sp_gguf_get_f32_or(g, "absent", 2.5f, &f, &err), 0); cr_assert_eq(f, 2.5f);
    cr_assert_eq(sp_gguf_get_f32_or(g, "s", 2.5f, &f, &err), -1);
    sp_gguf_close(g);
}

Test(gguf_getters, need_tensor_checks_shape)
{
    const char *path = sp_test_tmpfile("need.gguf");
    write_small(path, 0);
    sp_gguf *g = open_ok(path);
    sp_error err = {{0}};
    cr_assert_not_null(sp_gguf_need_tensor(g, "t.f32", 2, (uint64_t[]){4, 2}, &err), "%s", err.msg);
    /* trailing dims of 1 are allowed on either side */
    cr_assert_not_null(sp_gguf_need_tensor(g, "t.q4", 1, (uint64_t[]){64}, &err), "%s", err.msg);
    cr_assert_not_null(sp_gguf_need_tensor(g, "t.a1", 2, (uint64_t[]){8, 1}, &err), "%s", err.msg);
    cr_assert_null(sp_gguf_need_tensor(g, "t.f32", 2, (uint64_t[]){2, 4}, &err));
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "'t.f32'") && strstr(err.msg, "[4, 2]") &&
              strstr(err.msg, "expected [2, 4]"), "%s", err.msg);
    cr_assert_null(sp_gguf_need_tensor(g, "t.f32", 1, (uint64_t[]){4}, &err));
    cr_assert_null(sp_gguf_need_tensor(g, "nope", 1, (uint64_t[]){4}, &err));
    cr_assert(strstr(err.msg, "'nope'") && strstr(err.msg, "missing"), "%s", err.msg);
    sp_gguf_close(g);
}

Test(gguf_getters, dtype_helpers)
{
    cr_assert_eq(sp_dtype_row_bytes(SP_DTYPE_Q8_0, 64), 68);
    cr_assert_eq(sp_dtype_row_bytes(SP_DTYPE_Q4_0, 64), 36);
    cr_assert_eq(sp_dtype_row_bytes(SP_DTYPE_F32, 3), 12);
    cr_assert_eq(sp_dtype_row_bytes(SP_DTYPE_F16, 3), 6);
    cr_assert_eq(sp_dtype_row_bytes(SP_DTYPE_BF16, 3), 6);
    cr_assert_eq(sp_dtype_row_bytes((sp_dtype)3, 32), 20); /* Q4_1: known, not supported */
    cr_assert_eq(sp_dtype_row_bytes((sp_dtype)4, 32), 0);
    cr_assert_eq(sp_dtype_block(SP_DTYPE_Q4_0), 32);
    cr_assert_eq(sp_dtype_block(SP_DTYPE_F16), 1);
    cr_assert(sp_dtype_known(30) && sp_dtype_known(3) && sp_dtype_known(12) && !sp_dtype_known(4) &&
              !sp_dtype_known(31) && !sp_dtype_known(1000));
    cr_assert(sp_dtype_supported(12) && sp_dtype_supported(14) && !sp_dtype_supported(3) && !sp_dtype_supported(16));
    cr_assert_str_eq(sp_dtype_name(SP_DTYPE_Q4_K), "Q4_K");
    cr_assert_str_eq(sp_dtype_name(16), "IQ2_XXS");
    cr_assert_str_eq(sp_dtype_name(4), "type 4");
    const uint32_t k_bytes[5] = {84, 110, 144, 176, 210};
    for (int t = SP_DTYPE_Q2_K; t <= SP_DTYPE_Q6_K; t++) {
        cr_assert_eq(sp_dtype_block(t), 256);
        cr_assert_eq(sp_dtype_row_bytes(t, 512), 2 * k_bytes[t - SP_DTYPE_Q2_K]);
    }
    cr_assert_str_eq(sp_dtype_name(SP_DTYPE_Q8_0), "Q8_0");
    cr_assert_str_eq(sp_dtype_name(SP_DTYPE_BF16), "BF16");
}

/* ---- the writer's own errors ---- */

Test(gguf_writer, io_error_names_path_and_leaves_nothing)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_u32(w, "k", 1);
    char path[512];
    snprintf(path, sizeof path, "%s/no/such/dir/m.gguf", sp_test_tmpdir());
    sp_error err = {{0}};
    cr_assert_eq(sp_gguf_write(w, path, &err), -1);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    /* a directory in the way of the final name: rename fails, tmp removed */
    const char *dir = sp_test_tmpfile("is_a_dir");
    mkdir(dir, 0700);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/x", dir);
    write_bytes(sub, "x", 1);
    cr_assert_eq(sp_gguf_write(w, dir, &err), -1);
    cr_assert(strstr(err.msg, dir), "%s", err.msg);
    cr_assert(!sp_test_tmp_left(dir), "a temporary of %s left behind", dir);
    sp_gguf_writer_free(w);
}

Test(gguf_writer, misuse_is_reported_by_write)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    float f[32] = {0};
    sp_gguf_add_tensor(w, "a", SP_DTYPE_F32, 1, (uint64_t[]){4}, f);
    sp_gguf_add_tensor(w, "a", SP_DTYPE_F32, 1, (uint64_t[]){4}, f);
    sp_error err = {{0}};
    const char *path = sp_test_tmpfile("misuse.gguf");
    cr_assert_eq(sp_gguf_write(w, path, &err), -1);
    cr_assert(strstr(err.msg, "duplicate tensor 'a'"), "%s", err.msg);
    cr_assert_neq(access(path, F_OK), 0);
    sp_gguf_writer_free(w);

    w = sp_gguf_writer_new();
    sp_gguf_add_tensor(w, "q", SP_DTYPE_Q8_0, 1, (uint64_t[]){20}, f);
    cr_assert_eq(sp_gguf_write(w, path, &err), -1);
    cr_assert(strstr(err.msg, "'q'") && strstr(err.msg, "blocks"), "%s", err.msg);
    sp_gguf_writer_free(w);

    w = sp_gguf_writer_new();
    sp_gguf_writer_set_alignment(w, 48);
    cr_assert_eq(sp_gguf_write(w, path, &err), -1);
    cr_assert(strstr(err.msg, "general.alignment"), "%s", err.msg);
    sp_gguf_writer_free(w);
}

/* ---- hostile input ---- */

/* Patch the small model with fn and check that opening it fails. */
static void hostile(const char *name, uint32_t alignment, void (*patch)(uint8_t *, size_t *),
                    const char *word1, const char *word2)
{
    size_t n;
    uint8_t *buf = small_bytes(&n, alignment);
    patch(buf, &n);
    const char *path = sp_test_tmpfile(name);
    write_bytes(path, buf, n);
    free(buf);
    expect_fail(path, word1, word2);
}

static void p_magic(uint8_t *b, size_t *n) { (void)n; memcpy(b, "GGUX", 4); }
Test(gguf_hostile, bad_magic) { hostile("magic.gguf", 0, p_magic, "not a GGUF file", "47 47 55 58"); }

Test(gguf_hostile, version_1_rejected)
{
    const char *path = sp_test_tmpfile("v1.gguf");
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_u32(w, "k", 1);
    write_ok(w, path, 1);
    sp_gguf_writer_free(w);
    expect_fail(path, "version 1", "not supported");
}

Test(gguf_hostile, unknown_version_rejected)
{
    const char *path = sp_test_tmpfile("v9.gguf");
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_u32(w, "k", 1);
    write_ok(w, path, 9);
    sp_gguf_writer_free(w);
    expect_fail(path, "unsupported GGUF version 9", "expected 2 or 3");
}

static void p_nkv(uint8_t *b, size_t *n) { (void)n; poke_u64(b, 16, 1ull << 50); }
Test(gguf_hostile, n_kv_too_large) { hostile("nkv.gguf", 0, p_nkv, "n_kv", "cannot fit"); }

static void p_nkv_max(uint8_t *b, size_t *n) { (void)n; poke_u64(b, 16, UINT64_MAX); }
Test(gguf_hostile, n_kv_max) { hostile("nkvmax.gguf", 0, p_nkv_max, "n_kv", "cannot fit"); }

static void p_ntensors(uint8_t *b, size_t *n) { (void)n; poke_u64(b, 8, 1ull << 40); }
Test(gguf_hostile, n_tensors_too_large) { hostile("nt.gguf", 0, p_ntensors, "n_tensors", "cannot fit"); }

/* n_kv claims one more entry than there is: the parser then reads the
 * first tensor info as a kv and must fail cleanly where things stop making sense. */
static void p_nkv_plus1(uint8_t *b, size_t *n) { (void)n; b[16] += 1; }
Test(gguf_hostile, n_kv_off_by_one) { hostile("nkv1.gguf", 0, p_nkv_plus1, "truncated or corrupt", NULL); }

static void p_keylen(uint8_t *b, size_t *n) { (void)n; poke_u64(b, 24, UINT64_MAX - 3); }
Test(gguf_hostile, key_length_overflow) { hostile("keylen.gguf", 0, p_keylen, "metadata entry 0", "key"); }

static void p_strlen(uint8_t *b, size_t *n)
{
    poke_u64(b, after_str(b, *n, "general.architecture") + 4, 1ull << 40);
}
Test(gguf_hostile, string_value_too_long)
{
    hostile("strlen.gguf", 0, p_strlen, "'general.architecture'", "string value");
}

static void p_arrlen(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "test.arr") + 8, 1ull << 61); }
Test(gguf_hostile, array_count_too_large) { hostile("arrlen.gguf", 0, p_arrlen, "'test.arr'", "array of"); }

static void p_strarrlen(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "test.strs") + 8, 1ull << 40); }
Test(gguf_hostile, string_array_count_too_large)
{
    hostile("strarrlen.gguf", 0, p_strarrlen, "'test.strs'", "strings");
}

static void p_strarr_elem(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "test.strs") + 16 + 10, 1ull << 33); }
Test(gguf_hostile, string_array_element_too_long)
{
    hostile("strarrel.gguf", 0, p_strarr_elem, "'test.strs'", "string 1 of the array");
}

static void p_nested(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "test.arr") + 4, SP_GGUF_ARRAY); }
Test(gguf_hostile, array_of_arrays) { hostile("nested.gguf", 0, p_nested, "'test.arr'", "array of arrays"); }

static void p_vtype(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "test.u32"), 13); }
Test(gguf_hostile, unknown_value_type) { hostile("vtype.gguf", 0, p_vtype, "'test.u32'", "value type 13"); }

static void p_elemtype(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "test.arr") + 4, 99); }
Test(gguf_hostile, unknown_array_element_type)
{
    hostile("etype.gguf", 0, p_elemtype, "'test.arr'", "element type 99");
}

/* Tensor info after the name: u32 n_dims, n_dims x u64 ne, u32 type, u64 offset. */
static void p_ttype(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "t.q8") + 4 + 16, 77); }
Test(gguf_hostile, unknown_tensor_type) { hostile("ttype.gguf", 0, p_ttype, "tensor 't.q8' (index 1)", "type 77"); }

static void p_ndims0(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "t.q8"), 0); }
Test(gguf_hostile, n_dims_zero) { hostile("ndims0.gguf", 0, p_ndims0, "'t.q8'", "n_dims is 0"); }

static void p_ndims5(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "t.q8"), 5); }
Test(gguf_hostile, n_dims_five) { hostile("ndims5.gguf", 0, p_ndims5, "'t.q8'", "n_dims is 5"); }

static void p_ne_overflow(uint8_t *b, size_t *n)
{
    size_t at = after_str(b, *n, "t.f32") + 4;
    poke_u64(b, at, 1ull << 40);
    poke_u64(b, at + 8, 1ull << 40);
}
Test(gguf_hostile, element_count_overflow) { hostile("neovf.gguf", 0, p_ne_overflow, "'t.f32'", "overflows"); }

/* F32 [2^31, 2^31]: 2^62 elements fit int64, but 2^64 bytes wrapped to 0,
 * a size that "fit" any file (inspect showed 0 bytes) */
static void p_bytes_wrap(uint8_t *b, size_t *n)
{
    size_t at = after_str(b, *n, "t.f32") + 4;
    poke_u64(b, at, 1ull << 31);
    poke_u64(b, at + 8, 1ull << 31);
}
Test(gguf_hostile, byte_count_overflow)
{
    hostile("bytesovf.gguf", 0, p_bytes_wrap, "tensor 't.f32' (index 0)", "overflow a 64-bit byte count");
}

/* A name from the file is quoted in the message with its control bytes
 * escaped: ESC [ 8 as \x1b[8, never raw to the terminal. */
static void p_ctl_name(uint8_t *b, size_t *n)
{
    size_t at = find_gguf_str(b, *n, "t.q8") + 8;
    memcpy(b + at, "\x1b[8", 3);
    b[at + 3] = '8';
    poke_u32(b, at + 4 + 4 + 16, 77);
}
Test(gguf_hostile, control_bytes_in_names_are_escaped)
{
    hostile("ctlname.gguf", 0, p_ctl_name, "tensor '\\x1b[88' (index 1)", "type 77");
}

static void p_ne_zero(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "t.f32") + 4 + 8, 0); }
Test(gguf_hostile, zero_dimension) { hostile("ne0.gguf", 0, p_ne_zero, "'t.f32'", "dimension 1 is 0"); }

static void p_blocks(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "t.q8") + 4, 33); }
Test(gguf_hostile, row_not_whole_blocks) { hostile("blocks.gguf", 0, p_blocks, "'t.q8'", "block size 32"); }

static void p_unaligned(uint8_t *b, size_t *n)
{
    size_t at = after_str(b, *n, "t.q8") + 4 + 16 + 4;
    uint64_t off;
    memcpy(&off, b + at, 8);
    poke_u64(b, at, off + 4);
}
Test(gguf_hostile, offset_not_aligned) { hostile("unal.gguf", 0, p_unaligned, "'t.q8'", "alignment 32"); }

/* t.a1 claims 8000 floats (32000 bytes) in a file of about 1 KB */
static void p_past_end(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "t.a1") + 4, 8000); }
Test(gguf_hostile, data_past_end_of_file)
{
    hostile("pastend.gguf", 0, p_past_end, "'t.a1' (index 2): data [offset", "runs past the end of the file");
}

static void p_offset_huge(uint8_t *b, size_t *n) { poke_u64(b, after_str(b, *n, "t.q4") + 4 + 16 + 4, UINT64_MAX - 31); }
Test(gguf_hostile, offset_overflow) { hostile("offhuge.gguf", 0, p_offset_huge, "'t.q4'", "lies past the end"); }

static void p_dup_tensor(uint8_t *b, size_t *n) { b[after_str(b, *n, "t.a2") - 1] = '1'; }
Test(gguf_hostile, duplicate_tensor_name) { hostile("duptensor.gguf", 0, p_dup_tensor, "'t.a1'", "appears twice"); }

static void p_dup_key(uint8_t *b, size_t *n) { b[after_str(b, *n, "dup.k2") - 1] = '1'; }
Test(gguf_hostile, duplicate_key) { hostile("dupkey.gguf", 0, p_dup_key, "'dup.k1'", "appears twice"); }

static void p_align48(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "general.alignment") + 4, 48); }
Test(gguf_hostile, alignment_not_power_of_two)
{
    hostile("align48.gguf", 64, p_align48, "general.alignment", "not a power of two");
}

static void p_align0(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "general.alignment") + 4, 0); }
Test(gguf_hostile, alignment_zero) { hostile("align0.gguf", 64, p_align0, "general.alignment", "value 0"); }

static void p_align_type(uint8_t *b, size_t *n) { poke_u32(b, after_str(b, *n, "general.alignment"), SP_GGUF_INT32); }
Test(gguf_hostile, alignment_wrong_type)
{
    hostile("aligntype.gguf", 64, p_align_type, "general.alignment", "expected uint32");
}

Test(gguf_hostile, empty_missing_and_directory)
{
    const char *empty = sp_test_tmpfile("empty.gguf");
    write_bytes(empty, "", 0);
    expect_fail(empty, "empty", NULL);
    expect_fail(sp_test_tmpfile("does-not-exist.gguf"), "cannot open", NULL);
    expect_fail(sp_test_tmpdir(), "is a folder, not a regular file", NULL);
    /* a FIFO: opening it for reading would block until a writer came */
    const char *fifo = sp_test_tmpfile("fifo.gguf");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    alarm(20); /* a hang fails the test instead of stalling the suite */
    expect_fail(fifo, "is a FIFO (named pipe), not a regular file", NULL);
    alarm(0);
    const char *garbage = sp_test_tmpfile("garbage.gguf");
    write_bytes(garbage, "hello world, this is not a model\n", 33);
    expect_fail(garbage, "not a GGUF file", NULL);
    const char *tiny = sp_test_tmpfile("tiny.gguf");
    write_bytes(tiny, "GGU", 3);
    expect_fail(tiny, "truncated", NULL);
}

/* Every proper prefix of a valid file (up to the end of its last tensor's
 * data; the padding after it is optional) must be rejected cleanly. */
Test(gguf_hostile, truncation_sweep)
{
    const char *src = sp_test_tmpfile("sweep_src.gguf");
    write_small(src, 0);
    size_t n;
    uint8_t *buf = sp_test_read_file(src, &n);
    cr_assert_not_null(buf);
    sp_gguf *g = open_ok(src);
    uint64_t end = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t e = g->data_offset + g->tensors[i].offset + g->tensors[i].nbytes;
        if (e > end) end = e;
    }
    sp_gguf_close(g);
    cr_assert_leq(end, n);
    cr_assert_gt(end, 500, "the sample file should cover every section (%llu bytes)", (unsigned long long)end);
    const char *path = sp_test_tmpfile("sweep.gguf");
    for (size_t len = 0; len < end; len++) {
        write_bytes(path, buf, len);
        sp_error err = {{0}};
        sp_gguf *t = sp_gguf_open(path, &err);
        cr_assert_null(t, "a %zu-byte prefix of a %llu-byte file was accepted", len, (unsigned long long)end);
        cr_assert(strstr(err.msg, path), "prefix %zu: %s", len, err.msg);
        if (len >= 4) cr_assert(strstr(err.msg, "truncated"), "prefix %zu: %s", len, err.msg);
    }
    free(buf);
}

/* Seeded random byte damage to the small model: whatever the reader
 * accepts must still be self-consistent (tensors inside the file, string
 * arrays inside the file); whatever it rejects must name the file. */
Test(gguf_hostile, random_damage)
{
    const char *src = sp_test_tmpfile("damage_src.gguf");
    write_small(src, 0);
    size_t n;
    uint8_t *orig = sp_test_read_file(src, &n);
    uint8_t *buf = malloc(n);
    cr_assert(orig && buf);
    const char *path = sp_test_tmpfile("damage.gguf");
    uint64_t state = 12345;
    int accepted = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(buf, orig, n);
        for (int k = 0; k < 3; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            buf[(state >> 33) % n] = (uint8_t)(state >> 20);
        }
        write_bytes(path, buf, n);
        sp_error err = {{0}};
        sp_gguf *g = sp_gguf_open(path, &err);
        if (!g) {
            cr_assert(strstr(err.msg, path), "iteration %d: %s", it, err.msg);
            continue;
        }
        accepted++;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const uint8_t *d = g->tensors[i].data;
            cr_assert(d >= g->base && d + g->tensors[i].nbytes <= g->base + g->size);
        }
        for (uint64_t i = 0; i < g->n_kv; i++)
            for (uint64_t j = 0; g->kv[i].arr_strs && j < g->kv[i].arr_n; j++) {
                const sp_gguf_str *s = &g->kv[i].arr_strs[j];
                cr_assert((const uint8_t *)s->ptr + s->len <= g->base + g->size);
            }
        sp_gguf_close(g);
    }
    cr_log_info("random damage: %d of 2000 damaged files were still accepted", accepted);
    free(orig);
    free(buf);
}

/* ---- the shared models ---- */

Test(gguf_shared, stories260K)
{
    const char *path = sp_test_shared("models/stories260K.gguf");
    if (!path) return;
    sp_gguf *g = open_ok(path);
    cr_assert_eq(g->version, 3);
    cr_assert_eq(g->n_tensors, 48);
    cr_assert_eq(g->n_kv, 19);
    sp_error err = {{0}};
    sp_gguf_str arch;
    cr_assert_eq(sp_gguf_get_str(g, "general.architecture", &arch, &err), 0, "%s", err.msg);
    cr_assert(sp_gguf_str_eq(arch, "llama"));
    uint32_t v;
    cr_assert_eq(sp_gguf_get_u32(g, "llama.embedding_length", &v, &err), 0); cr_assert_eq(v, 64);
    cr_assert_eq(sp_gguf_get_u32(g, "llama.block_count", &v, &err), 0); cr_assert_eq(v, 5);
    cr_assert_eq(sp_gguf_get_u32(g, "llama.attention.head_count_kv", &v, &err), 0); cr_assert_eq(v, 4);
    const sp_gguf_kv *tok;
    cr_assert_eq(sp_gguf_get_arr(g, "tokenizer.ggml.tokens", SP_GGUF_STRING, &tok, &err), 0, "%s", err.msg);
    cr_assert_eq(tok->arr_n, 512);
    cr_assert(sp_gguf_str_eq(tok->arr_strs[0], "<unk>"), "%.*s", (int)tok->arr_strs[0].len, tok->arr_strs[0].ptr);
    const sp_gguf_tensor *t = sp_gguf_need_tensor(g, "token_embd.weight", 2, (uint64_t[]){64, 512}, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->type, SP_DTYPE_F32);
    cr_assert_eq(t->nbytes, 64 * 512 * 4);
    cr_assert_not_null(sp_gguf_need_tensor(g, "blk.4.ffn_down.weight", 2, (uint64_t[]){172, 64}, &err), "%s", err.msg);
    sp_gguf_close(g);
}

Test(gguf_shared, tiny_random_q4_0_mixes_types)
{
    const char *path = sp_test_shared("models/tiny-random-q4_0.gguf");
    if (!path) return;
    sp_gguf *g = open_ok(path);
    const sp_gguf_tensor *out = sp_gguf_find_tensor(g, "output.weight");
    const sp_gguf_tensor *q = sp_gguf_find_tensor(g, "blk.0.attn_q.weight");
    cr_assert(out && q);
    cr_assert_eq(out->type, SP_DTYPE_Q8_0);
    cr_assert_eq(q->type, SP_DTYPE_Q4_0);
    cr_assert_eq(q->nbytes, 288 * 288 / 32 * 18);
    cr_assert_eq(out->nbytes, 32000ull * 288 / 32 * 34);
    cr_assert_eq(g->n_tensors, 3 + 6 * 9);
    sp_gguf_close(g);
}

Test(gguf_shared, tiny_random_q8_0)
{
    const char *path = sp_test_shared("models/tiny-random-q8_0.gguf");
    if (!path) return;
    sp_gguf *g = open_ok(path);
    sp_error err = {{0}};
    const sp_gguf_tensor *t = sp_gguf_need_tensor(g, "blk.5.ffn_down.weight", 2, (uint64_t[]){768, 288}, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->type, SP_DTYPE_Q8_0);
    float base;
    cr_assert_eq(sp_gguf_get_f32(g, "llama.rope.freq_base", &base, &err), 0, "%s", err.msg);
    cr_assert_eq(base, 10000.0f);
    sp_gguf_close(g);
}

/* ---- `shardpipe inspect` on a model without output.weight ---- */

Test(gguf_inspect_cli, tied_output_and_json)
{
    const char *path = sp_test_tmpfile("tied.gguf");
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_u32(w, "llama.block_count", 1);
    float f[64] = {0};
    sp_gguf_add_tensor(w, "token_embd.weight", SP_DTYPE_F32, 2, (uint64_t[]){8, 4}, f);
    sp_gguf_add_tensor(w, "blk.0.attn_norm.weight", SP_DTYPE_F32, 1, (uint64_t[]){8}, f);
    sp_gguf_add_tensor(w, "output_norm.weight", SP_DTYPE_F32, 1, (uint64_t[]){8}, f);
    write_ok(w, path, 3);
    sp_gguf_writer_free(w);

    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s'", SP_BINARY, path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0, "%s", out);
    cr_assert(strstr(out, "\noutput       tied (the head reuses token_embd)\n"), "%s", out);
    cr_assert(strstr(out, "  embedding_length                   missing\n"), "%s", out);
    cr_assert(strstr(out, " 192  (0.00 MiB in 3 tensors)\n"), "%s", out);

    snprintf(cmd, sizeof cmd, "'%s' inspect --json '%s'", SP_BINARY, path);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0, "%s", out);
    cr_assert(strstr(out, "\"output_tied\": true"), "%s", out);
    cr_assert(strstr(out, "\"embedding_length\": null"), "%s", out);
    cr_assert_null(strstr(out, "\"name\": \"output\""), "%s", out);
}
