/* gguf.h - read and write GGUF files (v2 and v3).
 *
 * The reader maps the file read-only and builds an index of metadata and
 * tensors; strings and tensor data point straight into the mapping, so
 * opening a 4 GB model costs a few KB of heap and touches only the header.
 * Every count, length and offset is checked against the file size before it
 * is used: a hostile or truncated file gives an sp_error naming the file, the
 * field and what was expected, never a crash.
 *
 * The writer collects metadata and tensors in memory and writes a v3 file
 * to PATH.tmp, then renames it: no half-written model is ever left behind. */
#ifndef SHARDPIPE_GGUF_H
#define SHARDPIPE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardpipe/error.h"

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum sp_gguf_vtype {
    SP_GGUF_UINT8 = 0,
    SP_GGUF_INT8 = 1,
    SP_GGUF_UINT16 = 2,
    SP_GGUF_INT16 = 3,
    SP_GGUF_UINT32 = 4,
    SP_GGUF_INT32 = 5,
    SP_GGUF_FLOAT32 = 6,
    SP_GGUF_BOOL = 7,
    SP_GGUF_STRING = 8,
    SP_GGUF_ARRAY = 9,
    SP_GGUF_UINT64 = 10,
    SP_GGUF_INT64 = 11,
    SP_GGUF_FLOAT64 = 12,
} sp_gguf_vtype;

/* Tensor element types, numbered as ggml numbers them. */
typedef enum sp_dtype {
    SP_DTYPE_F32 = 0,
    SP_DTYPE_F16 = 1,
    SP_DTYPE_Q4_0 = 2,
    SP_DTYPE_Q8_0 = 8,
    SP_DTYPE_Q2_K = 10,   /* K-quants: 256-element super-blocks (quant.h) */
    SP_DTYPE_Q3_K = 11,
    SP_DTYPE_Q4_K = 12,
    SP_DTYPE_Q5_K = 13,
    SP_DTYPE_Q6_K = 14,
    SP_DTYPE_IQ4_NL = 20, /* 32 weights: fp16 scale, 4-bit indices into a fixed table (quant_iq4nl.h) */
    SP_DTYPE_BF16 = 30,
} sp_dtype;

/* A string inside the mapped file: not NUL-terminated. */
typedef struct sp_gguf_str {
    uint64_t len;
    const char *ptr;
} sp_gguf_str;

typedef struct sp_gguf_kv {
    sp_gguf_str key;
    sp_gguf_vtype type;
    /* Scalars (type != ARRAY): integers widen to i64/u64, floats to f64. */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        sp_gguf_str str;
    } val;
    /* Arrays (type == ARRAY): element type, count and the raw bytes of the
     * elements in the file (for string arrays use sp_gguf_array_str). */
    sp_gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    const sp_gguf_str *arr_strs; /* string arrays only: arr_n entries, else NULL */
} sp_gguf_kv;

#define SP_GGUF_MAX_DIMS 4

typedef struct sp_gguf_tensor {
    sp_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[SP_GGUF_MAX_DIMS]; /* ne[0] is the fastest-varying (row length) */
    sp_dtype type;
    uint64_t offset;   /* relative to the start of the data section */
    uint64_t nbytes;   /* bytes of data */
    const void *data;  /* into the mapping */
} sp_gguf_tensor;

typedef struct sp_gguf {
    char path[512];
    uint32_t version;
    uint64_t alignment;
    const uint8_t *base; /* mapping */
    size_t size;
    uint64_t data_offset; /* start of the tensor data section in the file */
    uint64_t n_kv;
    sp_gguf_kv *kv;
    uint64_t n_tensors;
    sp_gguf_tensor *tensors;
    /* private */
    sp_gguf_str *str_pool;
    int fd;
    const sp_gguf_kv **kv_by_key;          /* kv sorted by key, for lookup */
    const sp_gguf_tensor **tensor_by_name; /* tensors sorted by name */
} sp_gguf;

/* Open and validate. Returns NULL and fills err on any problem. */
sp_gguf *sp_gguf_open(const char *path, sp_error *err);
/* Metadata only: the tensor index is not read (n_tensors is 0), so a file
 * whose tensor types this build cannot run still gives its tokenizer. */
sp_gguf *sp_gguf_open_meta(const char *path, sp_error *err);
void sp_gguf_close(sp_gguf *g);

/* Size in bytes of a fixed-size metadata value type; 0 for string, array
 * and unknown types. */
size_t sp_gguf_vtype_size(uint32_t t);

/* The dtype table (dtype.c) knows every type ggml numbers, by name, block
 * size and bytes, so a file of any of them can be read and described
 * (inspect); shardpipe computes with the `supported` ones only, and the
 * model loader names a tensor of any other type (and its type) in its error.
 * Bytes of a row of n elements of type t (n must be a multiple of the block
 * size for quantized types); 0 for unknown types. */
uint64_t sp_dtype_row_bytes(sp_dtype t, uint64_t n);
uint32_t sp_dtype_block(sp_dtype t); /* elements per block: 1, 32 or 256 */
/* "Q4_K", "IQ2_XXS", ...; "type N" (a static buffer) for numbers ggml has
 * never used. */
const char *sp_dtype_name(sp_dtype t);
bool sp_dtype_known(uint32_t t);      /* layout known: a file of it can be read */
bool sp_dtype_supported(uint32_t t);  /* dequantized and multiplied by shardpipe */
/* The supported types as a list for messages: "F32, F16, BF16, Q8_0, ..." */
const char *sp_dtype_supported_list(void);

/* Metadata lookup; NULL when absent. */
const sp_gguf_kv *sp_gguf_find(const sp_gguf *g, const char *key);

/* Typed getters: 0 on success; -1 with an error naming file and key when the
 * key is missing or has a type that cannot represent the value. Integer
 * getters accept any integer type whose value fits. */
int sp_gguf_get_u32(const sp_gguf *g, const char *key, uint32_t *out, sp_error *err);
int sp_gguf_get_u64(const sp_gguf *g, const char *key, uint64_t *out, sp_error *err);
int sp_gguf_get_f32(const sp_gguf *g, const char *key, float *out, sp_error *err);
int sp_gguf_get_str(const sp_gguf *g, const char *key, sp_gguf_str *out, sp_error *err);
/* Array of the given element type with any length; *out points to the kv. */
int sp_gguf_get_arr(const sp_gguf *g, const char *key, sp_gguf_vtype elem,
                    const sp_gguf_kv **out, sp_error *err);
/* As above with a default when the key is absent (type errors still fail). */
int sp_gguf_get_u32_or(const sp_gguf *g, const char *key, uint32_t def, uint32_t *out, sp_error *err);
int sp_gguf_get_f32_or(const sp_gguf *g, const char *key, float def, float *out, sp_error *err);

bool sp_gguf_str_eq(sp_gguf_str s, const char *cstr);

/* Tensor lookup by name; NULL when absent. */
const sp_gguf_tensor *sp_gguf_find_tensor(const sp_gguf *g, const char *name);
/* Lookup that also checks shape: ne0..ne(n_dims-1) must equal the given
 * dims (trailing dims of the file equal to 1 are allowed). Error names the
 * file, the tensor and the expected shape. */
const sp_gguf_tensor *sp_gguf_need_tensor(const sp_gguf *g, const char *name, uint32_t n_dims,
                                          const uint64_t *ne, sp_error *err);

/* ---- writer ---- */
typedef struct sp_gguf_writer sp_gguf_writer;

sp_gguf_writer *sp_gguf_writer_new(void);
void sp_gguf_writer_free(sp_gguf_writer *w);
void sp_gguf_writer_set_alignment(sp_gguf_writer *w, uint32_t alignment);
void sp_gguf_add_u32(sp_gguf_writer *w, const char *key, uint32_t v);
void sp_gguf_add_i32(sp_gguf_writer *w, const char *key, int32_t v);
void sp_gguf_add_f32(sp_gguf_writer *w, const char *key, float v);
void sp_gguf_add_bool(sp_gguf_writer *w, const char *key, bool v);
void sp_gguf_add_str(sp_gguf_writer *w, const char *key, const char *v);
/* Array of fixed-size elements (elem is not STRING/ARRAY); data copied. */
void sp_gguf_add_arr(sp_gguf_writer *w, const char *key, sp_gguf_vtype elem, const void *data, uint64_t n);
/* Array of strings given with explicit lengths (may contain NUL); copied. */
void sp_gguf_add_str_arr(sp_gguf_writer *w, const char *key, const sp_gguf_str *strs, uint64_t n);
/* Copy an existing kv (any type) from a reader, e.g. a vocabulary. */
void sp_gguf_add_kv_copy(sp_gguf_writer *w, const sp_gguf_kv *kv);
/* Tensor: data (already in the given dtype's on-disk layout) is copied. */
void sp_gguf_add_tensor(sp_gguf_writer *w, const char *name, sp_dtype type, uint32_t n_dims,
                        const uint64_t *ne, const void *data);
/* As above without the copy: `data` (e.g. another file's mapping) must stay
 * valid until the writer is freed; a shard of a 40 GB model is written
 * without holding it in memory. */
void sp_gguf_add_tensor_ref(sp_gguf_writer *w, const char *name, sp_dtype type, uint32_t n_dims,
                            const uint64_t *ne, const void *data);
/* Write a v3 file atomically (PATH.tmp then rename). */
int sp_gguf_write(sp_gguf_writer *w, const char *path, sp_error *err);
/* The bytes sp_gguf_write would write (v3), in order, without a file: to
 * send a file to another machine. Tensor data is read from the writer's
 * tensors (a sp_gguf_add_tensor_ref mapping) as it is asked for, never
 * copied whole; the writer must outlive the stream. NULL with the error on
 * a misuse of the writer. */
typedef struct sp_gguf_stream sp_gguf_stream;
sp_gguf_stream *sp_gguf_stream_new(const sp_gguf_writer *w, sp_error *err);
uint64_t sp_gguf_stream_size(const sp_gguf_stream *s);
/* The next up to `max` bytes, in place (*p points into the writer's data or
 * at zeros); 0 at the end. */
size_t sp_gguf_stream_next(sp_gguf_stream *s, const void **p, size_t max);
/* The next up to `cap` bytes copied into buf (cap unless at the end). */
size_t sp_gguf_stream_read(sp_gguf_stream *s, void *buf, size_t cap);
void sp_gguf_stream_free(sp_gguf_stream *s);
/* Raw variant for tests of hostile input: version number to put in the header. */
int sp_gguf_write_version(sp_gguf_writer *w, const char *path, uint32_t version, sp_error *err);

#endif
