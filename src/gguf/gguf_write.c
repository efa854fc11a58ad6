/* gguf_write.c - the GGUF writer.
 *
 * Metadata values are encoded into their on-disk bytes as they are added;
 * tensor data is copied. sp_gguf_write lays the file out as gguf_read.c
 * describes: header, kvs, tensor infos, padding, then each tensor's data at
 * an aligned offset, and writes it through the atomic writer (a temporary
 * file renamed to PATH).
 *
 * The add functions cannot fail for the caller: a misuse (unknown type, a
 * row that is not whole blocks, a duplicate tensor name) is remembered and
 * reported by sp_gguf_write. Adding a key that already exists replaces its
 * value. The alignment is the value of general.alignment when present
 * (sp_gguf_writer_set_alignment sets that key), else 32. */
#include "shardpipe/atomicfile.h"
#include "shardpipe/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shardpipe/util.h"

typedef struct wkv {
    char *key;
    uint32_t type;
    uint8_t *bytes; /* encoded value (for arrays: element type, count, elements) */
    size_t n_bytes;
} wkv;

typedef struct wtensor {
    char *name;
    sp_dtype type;
    uint32_t n_dims;
    uint64_t ne[SP_GGUF_MAX_DIMS];
    uint64_t nbytes;
    void *data;
    bool borrowed; /* sp_gguf_add_tensor_ref: the caller's bytes, not freed here */
} wtensor;

struct sp_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    char misuse[512]; /* first misuse, reported by sp_gguf_write */
};

/* A growable byte buffer for encoding values. */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "shardpipe: out of memory encoding GGUF metadata\n");
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s, uint64_t len)
{
    put_u64(b, len);
    put(b, s, (size_t)len);
}

static char *dup_str(const char *s, size_t n)
{
    char *d = sp_alloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}


static void misuse(sp_gguf_writer *w, const char *msg, const char *name)
{
    if (!w->misuse[0]) snprintf(w->misuse, sizeof w->misuse, "%s '%s'", msg, name);
}

/* Store (or replace) key with an encoded value; takes ownership of b. */
static void set_kv(sp_gguf_writer *w, const char *key, uint32_t type, bytes *b)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].bytes);
            w->kv[i].type = type;
            w->kv[i].bytes = b->p;
            w->kv[i].n_bytes = b->n;
            return;
        }
    }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *kv = realloc(w->kv, w->cap_kv * sizeof *kv);
        if (!kv) abort();
        w->kv = kv;
    }
    w->kv[w->n_kv++] = (wkv){dup_str(key, strlen(key)), type, b->p, b->n};
}

static void add_scalar(sp_gguf_writer *w, const char *key, uint32_t type, const void *v)
{
    bytes b = {0};
    put(&b, v, sp_gguf_vtype_size(type));
    set_kv(w, key, type, &b);
}

sp_gguf_writer *sp_gguf_writer_new(void) { return sp_calloc(1, sizeof(sp_gguf_writer)); }

void sp_gguf_writer_free(sp_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].bytes);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        if (!w->tensors[i].borrowed) free(w->tensors[i].data);
    }
    free(w->kv);
    free(w->tensors);
    free(w);
}

void sp_gguf_writer_set_alignment(sp_gguf_writer *w, uint32_t alignment)
{
    sp_gguf_add_u32(w, "general.alignment", alignment);
}

void sp_gguf_add_u32(sp_gguf_writer *w, const char *key, uint32_t v) { add_scalar(w, key, SP_GGUF_UINT32, &v); }
void sp_gguf_add_i32(sp_gguf_writer *w, const char *key, int32_t v) { add_scalar(w, key, SP_GGUF_INT32, &v); }
void sp_gguf_add_f32(sp_gguf_writer *w, const char *key, float v) { add_scalar(w, key, SP_GGUF_FLOAT32, &v); }

void sp_gguf_add_bool(sp_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    add_scalar(w, key, SP_GGUF_BOOL, &b);
}

void sp_gguf_add_str(sp_gguf_writer *w, const char *key, const char *v)
{
    bytes b = {0};
    put_str(&b, v, strlen(v));
    set_kv(w, key, SP_GGUF_STRING, &b);
}

void sp_gguf_add_arr(sp_gguf_writer *w, const char *key, sp_gguf_vtype elem, const void *data, uint64_t n)
{
    size_t es = sp_gguf_vtype_size(elem);
    if (es == 0) {
        misuse(w, "sp_gguf_add_arr takes fixed-size elements only (use sp_gguf_add_str_arr for "
               "strings); key", key);
        return;
    }
    bytes b = {0};
    put_u32(&b, elem);
    put_u64(&b, n);
    put(&b, data, (size_t)(n * es));
    set_kv(w, key, SP_GGUF_ARRAY, &b);
}

void sp_gguf_add_str_arr(sp_gguf_writer *w, const char *key, const sp_gguf_str *strs, uint64_t n)
{
    bytes b = {0};
    put_u32(&b, SP_GGUF_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) put_str(&b, strs[i].ptr, strs[i].len);
    set_kv(w, key, SP_GGUF_ARRAY, &b);
}

void sp_gguf_add_kv_copy(sp_gguf_writer *w, const sp_gguf_kv *kv)
{
    char *key = dup_str(kv->key.ptr, (size_t)kv->key.len);
    bytes b = {0};
    /* Re-encode from the widened value: the reader kept the original type. */
    uint8_t u8 = (uint8_t)kv->val.u64;
    uint16_t u16 = (uint16_t)kv->val.u64;
    uint32_t u32 = (uint32_t)kv->val.u64;
    float f32 = (float)kv->val.f64;
    switch (kv->type) {
    case SP_GGUF_UINT8: case SP_GGUF_INT8: put(&b, &u8, 1); break;
    case SP_GGUF_UINT16: case SP_GGUF_INT16: put(&b, &u16, 2); break;
    case SP_GGUF_UINT32: case SP_GGUF_INT32: put(&b, &u32, 4); break;
    case SP_GGUF_UINT64: case SP_GGUF_INT64: put(&b, &kv->val.u64, 8); break;
    case SP_GGUF_FLOAT32: put(&b, &f32, 4); break;
    case SP_GGUF_FLOAT64: put(&b, &kv->val.f64, 8); break;
    case SP_GGUF_BOOL: u8 = kv->val.b ? 1 : 0; put(&b, &u8, 1); break;
    case SP_GGUF_STRING: put_str(&b, kv->val.str.ptr, kv->val.str.len); break;
    case SP_GGUF_ARRAY:
        put_u32(&b, kv->arr_type);
        put_u64(&b, kv->arr_n);
        if (kv->arr_type == SP_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++)
                put_str(&b, kv->arr_strs[i].ptr, kv->arr_strs[i].len);
        } else {
            put(&b, kv->arr_data, (size_t)(kv->arr_n * sp_gguf_vtype_size(kv->arr_type)));
        }
        break;
    default:
        misuse(w, "sp_gguf_add_kv_copy: unknown value type for key", key);
        free(key);
        return;
    }
    set_kv(w, key, kv->type, &b);
    free(key);
}

static void add_tensor(sp_gguf_writer *w, const char *name, sp_dtype type, uint32_t n_dims, const uint64_t *ne,
                       const void *data, bool copy)
{
    if (!sp_dtype_known(type)) { misuse(w, "unknown tensor type for tensor", name); return; }
    if (n_dims == 0 || n_dims > SP_GGUF_MAX_DIMS) { misuse(w, "n_dims must be 1..4 for tensor", name); return; }
    if (ne[0] % sp_dtype_block(type) != 0) {
        misuse(w, "row length is not a whole number of blocks for tensor", name);
        return;
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) { misuse(w, "duplicate tensor", name); return; }
    wtensor t = {.name = dup_str(name, strlen(name)), .type = type, .n_dims = n_dims};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < SP_GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    for (uint32_t d = 1; d < n_dims; d++) rows *= ne[d];
    t.nbytes = sp_dtype_row_bytes(type, ne[0]) * rows;
    if (copy) {
        t.data = sp_alloc((size_t)t.nbytes);
        memcpy(t.data, data, (size_t)t.nbytes);
    } else {
        t.data = (void *)data;
        t.borrowed = true;
    }
    if (w->n_tensors == w->cap_tensors) {
        w->cap_tensors = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor *ts = realloc(w->tensors, w->cap_tensors * sizeof *ts);
        if (!ts) abort();
        w->tensors = ts;
    }
    w->tensors[w->n_tensors++] = t;
}

void sp_gguf_add_tensor(sp_gguf_writer *w, const char *name, sp_dtype type, uint32_t n_dims,
                        const uint64_t *ne, const void *data)
{
    add_tensor(w, name, type, n_dims, ne, data, true);
}

void sp_gguf_add_tensor_ref(sp_gguf_writer *w, const char *name, sp_dtype type, uint32_t n_dims,
                            const uint64_t *ne, const void *data)
{
    add_tensor(w, name, type, n_dims, ne, data, false);
}

/* The alignment the file will use: general.alignment if set, else 32. */
static int writer_alignment(const sp_gguf_writer *w, const char *path, uint64_t *out, sp_error *err)
{
    *out = 32;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kv[i].type == SP_GGUF_UINT32) memcpy(&a, w->kv[i].bytes, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return sp_errorf(err, "%s: general.alignment must be a uint32 power of two; not "
                             "writing the file", path);
        *out = a;
    }
    return 0;
}

/* ---- the file as a stream of pieces ----
 * The layout gguf_read.c expects: header, kvs, tensor infos, zeros up to the
 * alignment, then each tensor's data followed by zeros up to the alignment.
 * The header is encoded once; tensor data is never copied (the pieces point
 * at the writer's tensors), so a shard of a large model streams from the
 * original's mapping. */

static const uint8_t zeros[4096];

typedef struct piece {
    const uint8_t *p; /* NULL: zeros */
    uint64_t n;
} piece;

struct sp_gguf_stream {
    bytes header;
    piece *pieces;
    size_t n_pieces, at; /* the piece being read */
    uint64_t done;       /* bytes of pieces[at] already given */
    uint64_t size, pos;  /* of the whole file */
};

static void add_piece(sp_gguf_stream *s, const void *p, uint64_t n)
{
    if (n == 0) return;
    s->pieces[s->n_pieces++] = (piece){p, n};
    s->size += n;
}

static sp_gguf_stream *stream_new(const sp_gguf_writer *w, uint32_t version, uint64_t alignment)
{
    sp_gguf_stream *s = sp_calloc(1, sizeof *s);
    bytes *h = &s->header;
    put(h, "GGUF", 4);
    put_u32(h, version);
    put_u64(h, w->n_tensors);
    put_u64(h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(h, w->kv[i].key, strlen(w->kv[i].key));
        put_u32(h, w->kv[i].type);
        put(h, w->kv[i].bytes, w->kv[i].n_bytes);
    }
    uint64_t offset = 0; /* within the data section */
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(h, t->name, strlen(t->name));
        put_u32(h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(h, t->ne[d]);
        put_u32(h, t->type);
        put_u64(h, offset);
        offset += (t->nbytes + alignment - 1) / alignment * alignment;
    }
    s->pieces = sp_calloc(2 * w->n_tensors + 2, sizeof *s->pieces);
    add_piece(s, h->p, h->n);
    add_piece(s, NULL, (alignment - h->n % alignment) % alignment);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        add_piece(s, t->data, t->nbytes);
        add_piece(s, NULL, (alignment - t->nbytes % alignment) % alignment);
    }
    return s;
}

sp_gguf_stream *sp_gguf_stream_new(const sp_gguf_writer *w, sp_error *err)
{
    if (w->misuse[0]) {
        sp_errorf(err, "not written: %s", w->misuse);
        return NULL;
    }
    uint64_t alignment;
    if (writer_alignment(w, "the GGUF stream", &alignment, err)) return NULL;
    return stream_new(w, 3, alignment);
}

uint64_t sp_gguf_stream_size(const sp_gguf_stream *s) { return s->size; }

size_t sp_gguf_stream_next(sp_gguf_stream *s, const void **p, size_t max)
{
    if (s->at == s->n_pieces || max == 0) return 0;
    const piece *pc = &s->pieces[s->at];
    uint64_t left = pc->n - s->done;
    size_t n = left < max ? (size_t)left : max;
    if (!pc->p && n > sizeof zeros) n = sizeof zeros;
    *p = pc->p ? pc->p + s->done : zeros;
    s->done += n;
    s->pos += n;
    if (s->done == pc->n) s->at++, s->done = 0;
    return n;
}

size_t sp_gguf_stream_read(sp_gguf_stream *s, void *buf, size_t cap)
{
    size_t got = 0, n;
    const void *p;
    while (got < cap && (n = sp_gguf_stream_next(s, &p, cap - got)) > 0) {
        memcpy((uint8_t *)buf + got, p, n);
        got += n;
    }
    return got;
}

void sp_gguf_stream_free(sp_gguf_stream *s)
{
    if (!s) return;
    free(s->header.p);
    free(s->pieces);
    free(s);
}

/* Everything, in order; false on an I/O error. */
static bool write_all(const sp_gguf_writer *w, FILE *f, uint32_t version, uint64_t alignment)
{
    sp_gguf_stream *s = stream_new(w, version, alignment);
    const void *p;
    size_t n;
    bool ok = true;
    while (ok && (n = sp_gguf_stream_next(s, &p, SIZE_MAX)) > 0) ok = fwrite(p, 1, n, f) == n;
    sp_gguf_stream_free(s);
    return ok;
}

int sp_gguf_write_version(sp_gguf_writer *w, const char *path, uint32_t version, sp_error *err)
{
    if (w->misuse[0])
        return sp_errorf(err, "%s: not written: %s", path, w->misuse);
    uint64_t alignment;
    if (writer_alignment(w, path, &alignment, err)) return -1;
    sp_atomic_file out;
    if (sp_atomic_open(&out, path, "the model", err)) return -1;
    return sp_atomic_commit(&out, write_all(w, out.f, version, alignment), err);
}

int sp_gguf_write(sp_gguf_writer *w, const char *path, sp_error *err)
{
    return sp_gguf_write_version(w, path, 3, err);
}
