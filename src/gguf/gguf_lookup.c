/* gguf_lookup.c - finding keys and tensors in an opened GGUF file, and the
 * typed getters that turn a missing key or a wrong type into an error naming
 * the file, the key, what it holds and what was expected. The indexes they
 * search are built by gguf_read.c (sorted by key and by tensor name). */
#include "shardpipe/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gguf_internal.h"
#include "shardpipe/util.h"

static bool vtype_is_unsigned(uint32_t t)
{
    return t == SP_GGUF_UINT8 || t == SP_GGUF_UINT16 || t == SP_GGUF_UINT32 || t == SP_GGUF_UINT64;
}

static bool vtype_is_signed(uint32_t t)
{
    return t == SP_GGUF_INT8 || t == SP_GGUF_INT16 || t == SP_GGUF_INT32 || t == SP_GGUF_INT64;
}

bool sp_gguf_str_eq(sp_gguf_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && memcmp(s.ptr, cstr, n) == 0;
}

const sp_gguf_kv *sp_gguf_find(const sp_gguf *g, const char *key)
{
    sp_gguf_str k = {strlen(key), key};
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = sp_gguf_str_cmp(g->kv_by_key[mid]->key, k);
        if (c == 0) return g->kv_by_key[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const sp_gguf_tensor *sp_gguf_find_tensor(const sp_gguf *g, const char *name)
{
    sp_gguf_str k = {strlen(name), name};
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = sp_gguf_str_cmp(g->tensor_by_name[mid]->name, k);
        if (c == 0) return g->tensor_by_name[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static int missing_key(const sp_gguf *g, const char *key, const char *expected, sp_error *err)
{
    return sp_errorf(err, "%s: metadata key '%s' is missing; expected %s", g->path, key, expected);
}

static int wrong_type(const sp_gguf *g, const sp_gguf_kv *kv, const char *key,
                      const char *expected, sp_error *err)
{
    if (kv->type == SP_GGUF_ARRAY)
        return sp_errorf(err, "%s: metadata key '%s' is an array of %s, expected %s", g->path,
                         key, sp_gguf_vtype_name(kv->arr_type), expected);
    return sp_errorf(err, "%s: metadata key '%s' has type %s, expected %s", g->path, key,
                     sp_gguf_vtype_name(kv->type), expected);
}

/* Any integer kv as an unsigned value no larger than max. */
static int get_uint(const sp_gguf *g, const sp_gguf_kv *kv, const char *key, uint64_t max,
                    const char *tname, uint64_t *out, sp_error *err)
{
    char expected[64];
    snprintf(expected, sizeof expected, "an integer that fits %s", tname);
    if (vtype_is_unsigned(kv->type)) {
        if (kv->val.u64 > max)
            return sp_errorf(err, "%s: metadata key '%s' is %" PRIu64 ", too large for %s",
                             g->path, key, kv->val.u64, tname);
        *out = kv->val.u64;
        return 0;
    }
    if (vtype_is_signed(kv->type)) {
        if (kv->val.i64 < 0 || (uint64_t)kv->val.i64 > max)
            return sp_errorf(err, "%s: metadata key '%s' is %" PRId64 ", which does not fit %s",
                             g->path, key, kv->val.i64, tname);
        *out = (uint64_t)kv->val.i64;
        return 0;
    }
    return wrong_type(g, kv, key, expected, err);
}

int sp_gguf_get_u32(const sp_gguf *g, const char *key, uint32_t *out, sp_error *err)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv) return missing_key(g, key, "a uint32 value", err);
    uint64_t v;
    if (get_uint(g, kv, key, UINT32_MAX, "uint32", &v, err)) return -1;
    *out = (uint32_t)v;
    return 0;
}

int sp_gguf_get_u64(const sp_gguf *g, const char *key, uint64_t *out, sp_error *err)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv) return missing_key(g, key, "a uint64 value", err);
    return get_uint(g, kv, key, UINT64_MAX, "uint64", out, err);
}

int sp_gguf_get_f32(const sp_gguf *g, const char *key, float *out, sp_error *err)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv) return missing_key(g, key, "a float32 value", err);
    if (kv->type != SP_GGUF_FLOAT32 && kv->type != SP_GGUF_FLOAT64)
        return wrong_type(g, kv, key, "float32 or float64", err);
    *out = (float)kv->val.f64;
    return 0;
}

int sp_gguf_get_str(const sp_gguf *g, const char *key, sp_gguf_str *out, sp_error *err)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv) return missing_key(g, key, "a string value", err);
    if (kv->type != SP_GGUF_STRING) return wrong_type(g, kv, key, "string", err);
    *out = kv->val.str;
    return 0;
}

int sp_gguf_get_arr(const sp_gguf *g, const char *key, sp_gguf_vtype elem,
                    const sp_gguf_kv **out, sp_error *err)
{
    char expected[64];
    snprintf(expected, sizeof expected, "an array of %s", sp_gguf_vtype_name(elem));
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv) return missing_key(g, key, expected, err);
    if (kv->type != SP_GGUF_ARRAY || kv->arr_type != elem)
        return wrong_type(g, kv, key, expected, err);
    *out = kv;
    return 0;
}

int sp_gguf_get_u32_or(const sp_gguf *g, const char *key, uint32_t def, uint32_t *out,
                       sp_error *err)
{
    if (!sp_gguf_find(g, key)) {
        *out = def;
        return 0;
    }
    return sp_gguf_get_u32(g, key, out, err);
}

int sp_gguf_get_f32_or(const sp_gguf *g, const char *key, float def, float *out, sp_error *err)
{
    if (!sp_gguf_find(g, key)) {
        *out = def;
        return 0;
    }
    return sp_gguf_get_f32(g, key, out, err);
}

/* "[288, 32000]" */
static void format_shape(char *buf, size_t cap, uint32_t n_dims, const uint64_t *ne)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < n_dims && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, d ? ", " : "", ne[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

const sp_gguf_tensor *sp_gguf_need_tensor(const sp_gguf *g, const char *name, uint32_t n_dims,
                                          const uint64_t *ne, sp_error *err)
{
    char want[128], got[128];
    format_shape(want, sizeof want, n_dims, ne);
    const sp_gguf_tensor *t = sp_gguf_find_tensor(g, name);
    if (!t) {
        sp_errorf(err, "%s: tensor '%s' is missing; expected shape %s", g->path, name, want);
        return NULL;
    }
    /* Dimensions past either side's n_dims count as 1. */
    bool ok = n_dims <= SP_GGUF_MAX_DIMS;
    for (uint32_t d = 0; ok && d < SP_GGUF_MAX_DIMS; d++) {
        uint64_t w = d < n_dims ? ne[d] : 1;
        if (t->ne[d] != w) ok = false;
    }
    if (!ok) {
        format_shape(got, sizeof got, t->n_dims, t->ne);
        sp_errorf(err, "%s: tensor '%s' has shape %s, expected %s", g->path, name, got, want);
        return NULL;
    }
    return t;
}
