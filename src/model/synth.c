/* synth.c - seeded random Llama models written as GGUF (see synth.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/synth.h"
#include "shardpipe/util.h"

typedef struct shape {
    const char *name;
    int dim, n_layers, n_heads, n_kv_heads, ffn_dim, n_vocab, ctx;
    float rope_base, norm_eps;
} shape;

static const shape shapes[] = {
    {"tiny", 64, 4, 4, 2, 160, 512, 256, 10000.0f, 1e-5f},
    {"stories260K", 64, 5, 8, 4, 172, 512, 512, 10000.0f, 1e-5f},
    {"stories15M", 288, 6, 6, 6, 768, 32000, 256, 10000.0f, 1e-5f},
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f},
    {"llama2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f},
};

int sp_synth_shape(const char *name, sp_synth_spec *spec, sp_error *err)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        if (strcmp(s->name, name)) continue;
        memset(spec, 0, sizeof *spec);
        snprintf(spec->name, sizeof spec->name, "%s", s->name);
        spec->dim = s->dim;
        spec->n_layers = s->n_layers;
        spec->n_heads = s->n_heads;
        spec->n_kv_heads = s->n_kv_heads;
        spec->ffn_dim = s->ffn_dim;
        spec->n_vocab = s->n_vocab;
        spec->ctx = s->ctx;
        spec->rope_base = s->rope_base;
        spec->norm_eps = s->norm_eps;
        spec->type = SP_DTYPE_Q8_0;
        spec->embd_type = SP_DTYPE_Q8_0;
        spec->output_type = SP_DTYPE_Q8_0;
        spec->seed = 1;
        return 0;
    }
    char names[256] = "";
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        strcat(names, i ? ", " : "");
        strcat(names, shapes[i].name);
    }
    return sp_errorf(err, "unknown model shape '%s'; known shapes: %s", name, names);
}

/* A random [rows][cols] matrix in the given dtype, row by row. */
static void add_random_matrix(sp_gguf_writer *w, sp_rng *rng, const char *name, sp_dtype type, int cols,
                              int rows)
{
    size_t row_bytes = sp_dtype_row_bytes(type, (uint64_t)cols);
    uint8_t *data = sp_alloc((size_t)rows * row_bytes);
    float *row = sp_alloc((size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) row[c] = 0.02f * sp_rng_normal(rng);
        sp_quantize_row(type, row, data + (size_t)r * row_bytes, cols);
    }
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    sp_gguf_add_tensor(w, name, type, 2, ne, data);
    free(row);
    free(data);
}

static void add_ones(sp_gguf_writer *w, const char *name, int n)
{
    float *v = sp_alloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) v[i] = 1.0f;
    uint64_t ne[1] = {(uint64_t)n};
    sp_gguf_add_tensor(w, name, SP_DTYPE_F32, 1, ne, v);
    free(v);
}

/* Byte-level SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens,
 * "▁" and the printable ASCII letters as pieces, padded with unused pieces. */
static void add_byte_vocab(sp_gguf_writer *w, int n_vocab)
{
    sp_gguf_str *toks = sp_calloc((size_t)n_vocab, sizeof *toks);
    float *scores = sp_calloc((size_t)n_vocab, sizeof(float));
    int32_t *types = sp_calloc((size_t)n_vocab, sizeof(int32_t));
    char (*buf)[24] = sp_calloc((size_t)n_vocab, 24);
    int n = 0;
    const char *special[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++, n++) {
        snprintf(buf[n], 24, "%s", special[i]);
        types[n] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256 && n < n_vocab; b++, n++) {
        snprintf(buf[n], 24, "<0x%02X>", b);
        types[n] = 6;
    }
    if (n < n_vocab) { snprintf(buf[n], 24, "\xe2\x96\x81"); types[n] = 1; scores[n] = -1.0f; n++; }
    for (int ch = 33; ch < 127 && n < n_vocab; ch++, n++) {
        buf[n][0] = (char)ch;
        buf[n][1] = 0;
        types[n] = 1;
        scores[n] = -2.0f - (float)ch / 1000.0f;
    }
    for (; n < n_vocab; n++) {
        snprintf(buf[n], 24, "<unused%d>", n);
        types[n] = 5;
        scores[n] = -1e9f;
    }
    for (int i = 0; i < n_vocab; i++) {
        toks[i].ptr = buf[i];
        toks[i].len = strlen(buf[i]);
    }
    sp_gguf_add_str(w, "tokenizer.ggml.model", "llama");
    sp_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, (uint64_t)n_vocab);
    sp_gguf_add_arr(w, "tokenizer.ggml.scores", SP_GGUF_FLOAT32, scores, (uint64_t)n_vocab);
    sp_gguf_add_arr(w, "tokenizer.ggml.token_type", SP_GGUF_INT32, types, (uint64_t)n_vocab);
    sp_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    sp_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    sp_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    free(toks);
    free(scores);
    free(types);
    free(buf);
}

/* Copies tokenizer.* from another model; returns its vocabulary size. */
static int copy_vocab(sp_gguf_writer *w, const char *from, sp_error *err)
{
    sp_gguf *src = sp_gguf_open(from, err);
    if (!src) return -1;
    int n_vocab = -1;
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const sp_gguf_kv *kv = &src->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        sp_gguf_add_kv_copy(w, kv);
        if (sp_gguf_str_eq(kv->key, "tokenizer.ggml.tokens") && kv->type == SP_GGUF_ARRAY)
            n_vocab = (int)kv->arr_n;
    }
    sp_gguf_close(src);
    if (n_vocab <= 0)
        return sp_errorf(err, "%s: no tokenizer.ggml.tokens array to copy the vocabulary from", from);
    return n_vocab;
}

int sp_synth_write(const sp_synth_spec *s, const char *path, sp_error *err)
{
    bool quantized = s->type != SP_DTYPE_F32 || s->embd_type != SP_DTYPE_F32 || s->output_type != SP_DTYPE_F32;
    bool kq = sp_dtype_block(s->type) == 256 || sp_dtype_block(s->embd_type) == 256 ||
              sp_dtype_block(s->output_type) == 256 || s->k_m_mix;
    if (kq && (s->dim % 256 || s->ffn_dim % 256))
        return sp_errorf(err, "synth: dim %d and ffn %d must be multiples of 256 for K-quant types", s->dim, s->ffn_dim);
    if (s->dim <= 0 || s->ffn_dim <= 0 || (quantized && (s->dim % 32 || s->ffn_dim % 32)) || s->n_heads <= 0 ||
        s->dim % s->n_heads ||
        s->n_kv_heads <= 0 || s->n_heads % s->n_kv_heads || s->n_layers <= 0 || s->ctx <= 0)
        return sp_errorf(err, "synth: bad shape (dim %d and ffn %d must be multiples of 32 for quantized types, heads %d must divide "
                              "dim and be a multiple of kv heads %d, layers %d and context %d positive)",
                         s->dim, s->ffn_dim, s->n_heads, s->n_kv_heads, s->n_layers, s->ctx);
    sp_gguf_writer *w = sp_gguf_writer_new();
    int n_vocab = s->n_vocab;
    if (s->vocab_from) {
        n_vocab = copy_vocab(w, s->vocab_from, err);
        if (n_vocab < 0) { sp_gguf_writer_free(w); return -1; }
    } else {
        add_byte_vocab(w, n_vocab);
    }
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_str(w, "general.name", s->name[0] ? s->name : "synthetic");
    sp_gguf_add_u32(w, "llama.context_length", (uint32_t)s->ctx);
    sp_gguf_add_u32(w, "llama.embedding_length", (uint32_t)s->dim);
    sp_gguf_add_u32(w, "llama.block_count", (uint32_t)s->n_layers);
    sp_gguf_add_u32(w, "llama.feed_forward_length", (uint32_t)s->ffn_dim);
    sp_gguf_add_u32(w, "llama.attention.head_count", (uint32_t)s->n_heads);
    sp_gguf_add_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_kv_heads);
    sp_gguf_add_u32(w, "llama.rope.dimension_count", (uint32_t)(s->dim / s->n_heads));
    sp_gguf_add_f32(w, "llama.rope.freq_base", s->rope_base);
    sp_gguf_add_f32(w, "llama.attention.layer_norm_rms_epsilon", s->norm_eps);
    sp_gguf_add_u32(w, "general.seed", (uint32_t)s->seed);

    sp_rng rng;
    sp_rng_seed(&rng, s->seed);
    int kv_dim = s->dim / s->n_heads * s->n_kv_heads;
    add_random_matrix(w, &rng, "token_embd.weight", s->embd_type, s->dim, n_vocab);
    char name[96];
    for (int l = 0; l < s->n_layers; l++) {
        int n = s->n_layers, more = l < n / 8 || l >= 7 * n / 8 || (l - n / 8) % 3 == 2;
        sp_dtype vd = s->k_m_mix && more ? SP_DTYPE_Q6_K : s->type;
#define NAME(x) (snprintf(name, sizeof name, "blk.%d.%s.weight", l, x), name)
        add_ones(w, NAME("attn_norm"), s->dim);
        add_random_matrix(w, &rng, NAME("attn_q"), s->type, s->dim, s->dim);
        add_random_matrix(w, &rng, NAME("attn_k"), s->type, s->dim, kv_dim);
        add_random_matrix(w, &rng, NAME("attn_v"), vd, s->dim, kv_dim);
        add_random_matrix(w, &rng, NAME("attn_output"), s->type, s->dim, s->dim);
        add_ones(w, NAME("ffn_norm"), s->dim);
        add_random_matrix(w, &rng, NAME("ffn_gate"), s->type, s->dim, s->ffn_dim);
        add_random_matrix(w, &rng, NAME("ffn_up"), s->type, s->dim, s->ffn_dim);
        add_random_matrix(w, &rng, NAME("ffn_down"), vd, s->ffn_dim, s->dim);
#undef NAME
    }
    add_ones(w, "output_norm.weight", s->dim);
    if (!s->tied) add_random_matrix(w, &rng, "output.weight", s->output_type, s->dim, n_vocab);
    int rc = sp_gguf_write(w, path, err);
    sp_gguf_writer_free(w);
    return rc;
}
