/* gguf_read.c - the GGUF reader (v2 and v3): parsing and validating the
 * header into sorted indexes; lookups are in gguf_lookup.c, dtypes in dtype.c.
 *
 * File layout (all integers little-endian):
 *
 *   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x     { string key, u32 value type, value }
 *   n_tensors x { string name, u32 n_dims, n_dims x u64 ne, u32 ggml type, u64 offset }
 *   zero padding up to a multiple of general.alignment (default 32)
 *   data section: each tensor at data_offset + offset (offset aligned too)
 *
 * A string is u64 length + bytes (no NUL). An array value is u32 element
 * type, u64 count, then the elements back to back. Version 1 used 32-bit
 * counts and lengths and is rejected.
 *
 * The file is mapped read-only; every length is checked against the bytes
 * left in the file before it is used or anything is allocated, so a hostile
 * file costs at most a heap proportional to its size and never a crash. */
#include "shardpipe/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_internal.h"
#include "shardpipe/infile.h"
#include "shardpipe/util.h"

#define GGUF_DEFAULT_ALIGNMENT 32
/* Smallest possible encodings, used to bound the counts in the header:
 * a kv with an empty key and a 1-byte value, a 1-d tensor with an empty name. */
#define GGUF_MIN_KV_BYTES (8 + 4 + 1)
#define GGUF_MIN_TENSOR_BYTES (8 + 4 + 8 + 4 + 8)

/* ---- metadata value types ---- */

const char *sp_gguf_vtype_name(uint32_t t)
{
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

size_t sp_gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case SP_GGUF_UINT8: case SP_GGUF_INT8: case SP_GGUF_BOOL: return 1;
    case SP_GGUF_UINT16: case SP_GGUF_INT16: return 2;
    case SP_GGUF_UINT32: case SP_GGUF_INT32: case SP_GGUF_FLOAT32: return 4;
    case SP_GGUF_UINT64: case SP_GGUF_INT64: case SP_GGUF_FLOAT64: return 8;
    }
    return 0;
}

/* ---- the parser: a cursor over the mapping plus error context ---- */

typedef struct parser {
    const char *path;
    const uint8_t *base;
    size_t size;
    size_t pos;
    sp_error *err;
    bool meta_only;  /* sp_gguf_open_meta: stop after the metadata */
    char where[320]; /* the item being parsed, e.g. "metadata entry 3 (key 'x')" */
} parser;

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...)
{
    char detail[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (ps->where[0])
        return sp_errorf(ps->err, "%s: %s: %s", ps->path, ps->where, detail);
    return sp_errorf(ps->err, "%s: %s", ps->path, detail);
}

static size_t left(const parser *ps) { return ps->size - ps->pos; }

/* Make sure n more bytes exist; `what` names them for the error. */
static int need(parser *ps, uint64_t n, const char *what)
{
    if (n <= left(ps)) return 0;
    return fail(ps, "%s at offset %zu needs %" PRIu64 " bytes but the file ends at %zu bytes; "
                "the file is truncated or corrupt", what, ps->pos, n, ps->size);
}

static int rd_u32(parser *ps, uint32_t *v, const char *what)
{
    if (need(ps, 4, what)) return -1;
    memcpy(v, ps->base + ps->pos, 4);
    ps->pos += 4;
    return 0;
}

static int rd_u64(parser *ps, uint64_t *v, const char *what)
{
    if (need(ps, 8, what)) return -1;
    memcpy(v, ps->base + ps->pos, 8);
    ps->pos += 8;
    return 0;
}

static int rd_str(parser *ps, sp_gguf_str *s, const char *what)
{
    size_t at = ps->pos;
    if (rd_u64(ps, &s->len, what)) return -1;
    if (s->len > left(ps))
        return fail(ps, "%s at offset %zu has length %" PRIu64 " but only %zu bytes are left in "
                    "the file; the file is truncated or corrupt", what, at, s->len, left(ps));
    s->ptr = (const char *)ps->base + ps->pos;
    ps->pos += s->len;
    return 0;
}

/* Widen a fixed-size scalar at p into the kv's value union. */
static void decode_scalar(sp_gguf_kv *kv, const uint8_t *p)
{
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
    int8_t i8; int16_t i16; int32_t i32; int64_t i64;
    float f32; double f64;
    switch (kv->type) {
    case SP_GGUF_UINT8: memcpy(&u8, p, 1); kv->val.u64 = u8; break;
    case SP_GGUF_UINT16: memcpy(&u16, p, 2); kv->val.u64 = u16; break;
    case SP_GGUF_UINT32: memcpy(&u32, p, 4); kv->val.u64 = u32; break;
    case SP_GGUF_UINT64: memcpy(&u64, p, 8); kv->val.u64 = u64; break;
    case SP_GGUF_INT8: memcpy(&i8, p, 1); kv->val.i64 = i8; break;
    case SP_GGUF_INT16: memcpy(&i16, p, 2); kv->val.i64 = i16; break;
    case SP_GGUF_INT32: memcpy(&i32, p, 4); kv->val.i64 = i32; break;
    case SP_GGUF_INT64: memcpy(&i64, p, 8); kv->val.i64 = i64; break;
    case SP_GGUF_FLOAT32: memcpy(&f32, p, 4); kv->val.f64 = f32; break;
    case SP_GGUF_FLOAT64: memcpy(&f64, p, 8); kv->val.f64 = f64; break;
    case SP_GGUF_BOOL: kv->val.b = p[0] != 0; break;
    default: break;
    }
}

/* Array value: u32 element type, u64 count, elements. Arrays of arrays are
 * rejected: the format allows them but no Llama model uses them.
 * *n_strs is increased by the count of a string array (for the pool). */
static int parse_array(parser *ps, sp_gguf_kv *kv, uint64_t *n_strs)
{
    uint32_t et;
    if (rd_u32(ps, &et, "array element type")) return -1;
    if (et == SP_GGUF_ARRAY)
        return fail(ps, "array of arrays at offset %zu is not supported (only one level of arrays "
                    "is allowed)", ps->pos - 4);
    if (et != SP_GGUF_STRING && sp_gguf_vtype_size(et) == 0)
        return fail(ps, "array element type %" PRIu32 " at offset %zu is not a GGUF value type "
                    "(expected 0..12)", et, ps->pos - 4);
    kv->arr_type = (sp_gguf_vtype)et;
    size_t at = ps->pos;
    if (rd_u64(ps, &kv->arr_n, "array length")) return -1;
    kv->arr_data = ps->base + ps->pos;
    if (et == SP_GGUF_STRING) {
        /* every string takes at least its 8-byte length */
        if (kv->arr_n > left(ps) / 8)
            return fail(ps, "array of %" PRIu64 " strings at offset %zu cannot fit in the %zu "
                        "bytes left in the file; the file is truncated or corrupt",
                        kv->arr_n, at, left(ps));
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            sp_gguf_str s;
            char what[64];
            snprintf(what, sizeof what, "string %" PRIu64 " of the array", i);
            if (rd_str(ps, &s, what)) return -1;
        }
        *n_strs += kv->arr_n;
        return 0;
    }
    size_t es = sp_gguf_vtype_size(et);
    if (kv->arr_n > left(ps) / es)
        return fail(ps, "array of %" PRIu64 " %s values at offset %zu needs more than the %zu "
                    "bytes left in the file; the file is truncated or corrupt",
                    kv->arr_n, sp_gguf_vtype_name(et), at, left(ps));
    ps->pos += (size_t)(kv->arr_n * es);
    return 0;
}

static int parse_kv(parser *ps, uint64_t i, sp_gguf_kv *kv, uint64_t *n_strs)
{
    snprintf(ps->where, sizeof ps->where, "metadata entry %" PRIu64, i);
    if (rd_str(ps, &kv->key, "key")) return -1;
    snprintf(ps->where, sizeof ps->where, "metadata entry %" PRIu64 " (key '%.*s')", i,
             (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr);
    uint32_t t;
    if (rd_u32(ps, &t, "value type")) return -1;
    kv->type = (sp_gguf_vtype)t;
    if (t == SP_GGUF_ARRAY) return parse_array(ps, kv, n_strs);
    if (t == SP_GGUF_STRING) return rd_str(ps, &kv->val.str, "string value");
    size_t n = sp_gguf_vtype_size(t);
    if (n == 0)
        return fail(ps, "value type %" PRIu32 " at offset %zu is not a GGUF value type (expected "
                    "0..12)", t, ps->pos - 4);
    if (need(ps, n, "value")) return -1;
    decode_scalar(kv, ps->base + ps->pos);
    ps->pos += n;
    return 0;
}

static int parse_tensor_info(parser *ps, uint64_t i, sp_gguf_tensor *t)
{
    snprintf(ps->where, sizeof ps->where, "tensor %" PRIu64, i);
    if (rd_str(ps, &t->name, "name")) return -1;
    snprintf(ps->where, sizeof ps->where, "tensor '%.*s' (index %" PRIu64 ")",
             (int)(t->name.len > 200 ? 200 : t->name.len), t->name.ptr, i);
    if (rd_u32(ps, &t->n_dims, "n_dims")) return -1;
    if (t->n_dims == 0 || t->n_dims > SP_GGUF_MAX_DIMS)
        return fail(ps, "n_dims is %" PRIu32 " at offset %zu, expected 1..%d", t->n_dims,
                    ps->pos - 4, SP_GGUF_MAX_DIMS);
    /* ggml stores ne as int64: the element count must fit in one */
    uint64_t nel = 1;
    for (uint32_t d = 0; d < SP_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (rd_u64(ps, &t->ne[d], "dimension")) return -1;
        if (t->ne[d] == 0)
            return fail(ps, "dimension %" PRIu32 " is 0, expected at least 1", d);
        if (t->ne[d] > (uint64_t)INT64_MAX / nel)
            return fail(ps, "the element count overflows (dimension %" PRIu32 " is %" PRIu64
                        "); the file is corrupt", d, t->ne[d]);
        nel *= t->ne[d];
    }
    uint32_t type;
    if (rd_u32(ps, &type, "type")) return -1;
    if (!sp_dtype_known(type))
        return fail(ps, "tensor type %" PRIu32 " is not a ggml type this reader knows (a newer or a "
                    "damaged file?); shardpipe runs %s", type, sp_dtype_supported_list());
    t->type = (sp_dtype)type;
    uint32_t blk = sp_dtype_block(t->type);
    if (t->ne[0] % blk != 0)
        return fail(ps, "row length %" PRIu64 " is not a multiple of the %s block size %" PRIu32,
                    t->ne[0], sp_dtype_name(t->type), blk);
    /* nel < 2^63 elements, but up to 8 bytes each (F32, I64, F64): such a shape near
     * 2^62 elements has a byte count past 2^64, which must not wrap to a
     * small size that then "fits" the file */
    uint64_t row_bytes = sp_dtype_row_bytes(t->type, t->ne[0]), rows = nel / t->ne[0];
    if (row_bytes > UINT64_MAX / rows)
        return fail(ps, "%" PRIu64 " rows of %" PRIu64 " bytes overflow a 64-bit byte count; the shape is "
                    "corrupt", rows, row_bytes);
    t->nbytes = row_bytes * rows;
    if (rd_u64(ps, &t->offset, "data offset")) return -1;
    return 0;
}

/* Order strings as memcmp would, shorter first on a common prefix. */
int sp_gguf_str_cmp(sp_gguf_str a, sp_gguf_str b)
{
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int kv_ptr_cmp(const void *a, const void *b)
{
    return sp_gguf_str_cmp((*(const sp_gguf_kv *const *)a)->key, (*(const sp_gguf_kv *const *)b)->key);
}

static int tensor_ptr_cmp(const void *a, const void *b)
{
    return sp_gguf_str_cmp((*(const sp_gguf_tensor *const *)a)->name,
                   (*(const sp_gguf_tensor *const *)b)->name);
}

/* Build the sorted indexes; a duplicate shows up as equal neighbours. */
static int build_indexes(parser *ps, sp_gguf *g)
{
    g->kv_by_key = sp_calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv_by_key);
    for (uint64_t i = 0; i < g->n_kv; i++) g->kv_by_key[i] = &g->kv[i];
    qsort(g->kv_by_key, g->n_kv, sizeof *g->kv_by_key, kv_ptr_cmp);
    ps->where[0] = 0;
    for (uint64_t i = 1; i < g->n_kv; i++) {
        if (sp_gguf_str_cmp(g->kv_by_key[i - 1]->key, g->kv_by_key[i]->key) == 0) {
            const sp_gguf_kv *a = g->kv_by_key[i - 1], *b = g->kv_by_key[i];
            if (a > b) { const sp_gguf_kv *t = a; a = b; b = t; }
            return fail(ps, "metadata key '%.*s' appears twice (entries %td and %td); keys must "
                        "be unique", (int)(a->key.len > 200 ? 200 : a->key.len), a->key.ptr,
                        a - g->kv, b - g->kv);
        }
    }
    g->tensor_by_name = sp_calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensor_by_name);
    for (uint64_t i = 0; i < g->n_tensors; i++) g->tensor_by_name[i] = &g->tensors[i];
    qsort(g->tensor_by_name, g->n_tensors, sizeof *g->tensor_by_name, tensor_ptr_cmp);
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        if (sp_gguf_str_cmp(g->tensor_by_name[i - 1]->name, g->tensor_by_name[i]->name) == 0) {
            const sp_gguf_tensor *a = g->tensor_by_name[i - 1], *b = g->tensor_by_name[i];
            if (a > b) { const sp_gguf_tensor *t = a; a = b; b = t; }
            return fail(ps, "tensor name '%.*s' appears twice (indexes %td and %td); tensor names "
                        "must be unique", (int)(a->name.len > 200 ? 200 : a->name.len),
                        a->name.ptr, a - g->tensors, b - g->tensors);
        }
    }
    return 0;
}

/* Point every string array's arr_strs into one pooled allocation. The
 * arrays were validated by parse_array, so this walk cannot run off. */
static void fill_string_arrays(sp_gguf *g, uint64_t n_strs)
{
    if (n_strs == 0) return;
    g->str_pool = sp_calloc((size_t)n_strs, sizeof *g->str_pool);
    sp_gguf_str *next = g->str_pool;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        sp_gguf_kv *kv = &g->kv[i];
        if (kv->type != SP_GGUF_ARRAY || kv->arr_type != SP_GGUF_STRING) continue;
        kv->arr_strs = next;
        const uint8_t *p = kv->arr_data;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            memcpy(&next->len, p, 8);
            next->ptr = (const char *)p + 8;
            p += 8 + next->len;
            next++;
        }
    }
}

static int parse_header(parser *ps, sp_gguf *g)
{
    if (ps->size >= 4 && memcmp(ps->base, "GGUF", 4) != 0) {
        const uint8_t *b = ps->base;
        return fail(ps, "not a GGUF file: the first bytes are %02x %02x %02x %02x, expected "
                    "47 47 55 46 (\"GGUF\")", b[0], b[1], b[2], b[3]);
    }
    if (need(ps, 4, "magic")) return -1;
    ps->pos = 4;
    if (rd_u32(ps, &g->version, "version")) return -1;
    if (g->version == 1)
        return fail(ps, "GGUF version 1 is not supported (it used 32-bit counts); expected "
                    "version 2 or 3, convert the model with a current llama.cpp");
    if (g->version == 0x03000000 || g->version == 0x02000000)
        return fail(ps, "this is a big-endian GGUF file; shardpipe reads little-endian files only");
    if (g->version != 2 && g->version != 3)
        return fail(ps, "unsupported GGUF version %" PRIu32 " (expected 2 or 3)", g->version);
    if (rd_u64(ps, &g->n_tensors, "tensor count")) return -1;
    if (rd_u64(ps, &g->n_kv, "metadata count")) return -1;
    /* Bound the counts by the bytes left before allocating anything. */
    if (g->n_kv > left(ps) / GGUF_MIN_KV_BYTES)
        return fail(ps, "the header's metadata count n_kv = %" PRIu64 " cannot fit in the %zu "
                    "bytes after the header (each entry takes at least %d bytes); the file is "
                    "truncated or corrupt", g->n_kv, left(ps), GGUF_MIN_KV_BYTES);
    if (g->n_tensors > (left(ps) - g->n_kv * GGUF_MIN_KV_BYTES) / GGUF_MIN_TENSOR_BYTES)
        return fail(ps, "the header's tensor count n_tensors = %" PRIu64 " cannot fit in the %zu "
                    "bytes after the header (each tensor takes at least %d bytes); the file is "
                    "truncated or corrupt", g->n_tensors, left(ps), GGUF_MIN_TENSOR_BYTES);
    return 0;
}

/* general.alignment: a uint32 power of two, 32 when absent. */
static int read_alignment(parser *ps, sp_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const sp_gguf_kv *kv = sp_gguf_find(g, "general.alignment");
    if (!kv) return 0;
    snprintf(ps->where, sizeof ps->where, "metadata key 'general.alignment'");
    if (kv->type != SP_GGUF_UINT32)
        return fail(ps, "has type %s, expected uint32", sp_gguf_vtype_name(kv->type));
    if (kv->val.u64 == 0 || (kv->val.u64 & (kv->val.u64 - 1)) != 0)
        return fail(ps, "value %" PRIu64 " is not a power of two greater than 0", kv->val.u64);
    g->alignment = kv->val.u64;
    return 0;
}

/* Place the data section and check every tensor lies inside the file. */
static int place_tensors(parser *ps, sp_gguf *g)
{
    uint64_t a = g->alignment, pos = ps->pos;
    uint64_t pad = (a - pos % a) % a;
    g->data_offset = pos + pad;
    if (g->n_tensors > 0 && pad > left(ps)) {
        ps->where[0] = 0;
        return fail(ps, "the data section should start at offset %" PRIu64 " (tensor infos end "
                    "at %" PRIu64 ", aligned to %" PRIu64 ") but the file ends at %zu bytes; the "
                    "file is truncated or corrupt", pos + pad, pos, a, ps->size);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sp_gguf_tensor *t = &g->tensors[i];
        snprintf(ps->where, sizeof ps->where, "tensor '%.*s' (index %" PRIu64 ")",
                 (int)(t->name.len > 200 ? 200 : t->name.len), t->name.ptr, i);
        if (t->offset % a != 0)
            return fail(ps, "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64
                        "; the file is corrupt", t->offset, a);
        uint64_t room = ps->size - g->data_offset; /* data_offset <= size here */
        if (t->offset > room)
            return fail(ps, "data offset %" PRIu64 " (relative to the data section at %" PRIu64
                        ") lies past the end of the file (%zu bytes); the file is truncated or "
                        "corrupt", t->offset, g->data_offset, ps->size);
        if (t->nbytes > room - t->offset)
            return fail(ps, "data [offset %" PRIu64 ", %" PRIu64 " bytes] runs past the end of "
                        "the file (%zu bytes); the file is truncated or corrupt",
                        g->data_offset + t->offset, t->nbytes, ps->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    return 0;
}

static int parse(parser *ps, sp_gguf *g)
{
    if (parse_header(ps, g)) return -1;
    g->kv = sp_calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = sp_calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    uint64_t n_strs = 0;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (parse_kv(ps, i, &g->kv[i], &n_strs)) return -1;
    if (ps->meta_only) g->n_tensors = 0; /* the tensor index is not read at all */
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (parse_tensor_info(ps, i, &g->tensors[i])) return -1;
    if (build_indexes(ps, g)) return -1;
    fill_string_arrays(g, n_strs);
    if (read_alignment(ps, g)) return -1;
    return place_tensors(ps, g);
}

static sp_gguf *open_file(const char *path, bool meta_only, sp_error *err)
{
    int fd = sp_infile_open(path, "the GGUF model file", err);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sp_errorf(err, "%s: cannot read the model: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        sp_errorf(err, "%s: file is empty (0 bytes); expected a GGUF model", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        sp_errorf(err, "%s: file of %lld bytes is too large to map on this system", path,
                  (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) {
        sp_errorf(err, "%s: cannot map %zu bytes: %s", path, size, strerror(errno));
        return NULL;
    }

    sp_gguf *g = sp_calloc(1, sizeof *g);
    snprintf(g->path, sizeof g->path, "%s", path);
    g->base = map;
    g->size = size;
    g->fd = -1;
    parser ps = {.path = path, .base = map, .size = size, .err = err, .meta_only = meta_only};
    if (parse(&ps, g)) {
        sp_gguf_close(g);
        return NULL;
    }
    return g;
}

sp_gguf *sp_gguf_open(const char *path, sp_error *err) { return open_file(path, false, err); }

sp_gguf *sp_gguf_open_meta(const char *path, sp_error *err) { return open_file(path, true, err); }

void sp_gguf_close(sp_gguf *g)
{
    if (!g) return;
    if (g->base) munmap((void *)g->base, g->size);
    free(g->kv);
    free(g->tensors);
    free(g->str_pool);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    free(g);
}
