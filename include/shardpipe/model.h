/* model.h - a decoder-only transformer of the Llama family (llama, qwen2,
 * qwen3: see sp_config), or a contiguous range of its layers, over weights
 * mapped from a GGUF file.
 *
 * The forward pass is cut into three pieces so that a pipeline stage can run
 * just its share:
 *   sp_embed        token ids -> hidden states          (first stage only)
 *   sp_forward      hidden states through layers [first, last] of the shard
 *   sp_head         final RMSNorm + output matrix -> logits (last stage only)
 * All three work on a micro-batch: n rows, each row a token of some sequence
 * at some position. Each sequence has its own KV cache slot; rows of one
 * sequence in a batch must have increasing positions (a prompt chunk).
 *
 * Only the tensors of the shard are referenced; since weights stay in the
 * read-only mapping, a stage's resident memory is its shard, not the model. */
#ifndef SHARDPIPE_MODEL_H
#define SHARDPIPE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"
#include "shardpipe/matmul.h"

/* How RoPE pairs the dimensions of a head. */
typedef enum sp_rope_style {
    SP_ROPE_NORM = 0, /* adjacent pairs (v[2i], v[2i+1]): llama */
    SP_ROPE_NEOX = 1, /* split halves (v[i], v[i + rope_dim/2]): qwen2, qwen3 */
} sp_rope_style;

/* Hyper-parameters read from the GGUF metadata (<arch>.*), and the
 * architecture's features: one forward pass reads these fields instead of
 * branching on the architecture's name (see config.c for the table). */
typedef struct sp_config {
    char arch[32];
    int n_vocab;
    int dim;          /* embedding length */
    int n_layers;
    int n_heads;
    int n_kv_heads;   /* grouped-query attention when < n_heads */
    int head_dim;     /* attention.key_length, else dim / n_heads */
    int q_dim;        /* n_heads * head_dim (not always dim: qwen3) */
    int kv_dim;       /* n_kv_heads * head_dim */
    int ffn_dim;
    int ctx_train;
    int rope_dim;     /* dimensions rotated per head (<= head_dim) */
    float rope_base;
    float norm_eps;
    /* features of the architecture (and of the file) */
    sp_rope_style rope_style;
    bool has_qkv_bias;   /* attn_{q,k,v}.bias added after the matmul (qwen2) */
    bool has_qk_norm;    /* RMSNorm of each q and k head before RoPE (qwen3) */
    bool tied_output;    /* no output.weight: the head multiplies by token_embd */
    bool has_rope_freqs; /* rope_freqs.weight: per-pair divisors of the RoPE
                          * frequency (Llama 3.1+ long-context scaling) */
} sp_config;

/* Reads and checks the hyper-parameters; errors name file, key, expected. */
int sp_config_read(const sp_gguf *g, sp_config *c, sp_error *err);
/* tokenizer.ggml.eos_token_id, or -1 when absent: where generation stops
 * when the prompt came as ids and no tokenizer is loaded. */
int sp_config_eos_id(const sp_gguf *g);

typedef struct sp_layer {
    const float *attn_norm;   /* [dim] */
    const float *ffn_norm;    /* [dim] */
    sp_matrix wq, wk, wv, wo; /* dim->q_dim, dim->kv_dim, dim->kv_dim, q_dim->dim */
    const float *bq, *bk, *bv; /* [q_dim], [kv_dim], [kv_dim] when has_qkv_bias, else NULL */
    const float *q_norm, *k_norm; /* [head_dim] when has_qk_norm, else NULL */
    sp_matrix w_gate, w_up;   /* dim->ffn */
    sp_matrix w_down;         /* ffn->dim */
} sp_layer;

typedef struct sp_model {
    sp_gguf *gguf;        /* owned */
    sp_config cfg;
    int first, last;      /* layer range held, inclusive; last < first: none */
    bool has_embed;       /* first stage: token embedding */
    bool has_head;        /* last stage: final norm + output */
    sp_matrix tok_embd;   /* [n_vocab][dim] */
    const float *out_norm;
    sp_matrix output;     /* [n_vocab][dim]; the embedding when tied */
    const float *rope_freqs; /* [rope_dim/2] when cfg.has_rope_freqs and the shard has layers */
    sp_layer *layers;     /* layers[l - first] */
    void *copy;           /* sp_model_load_weights: the matrices, in huge pages */
    size_t copy_bytes;
} sp_model;

/* `last` value meaning "through the model's last layer". */
#define SP_TO_LAST_LAYER 0x7fffffff

/* Open a model and bind the tensors of layers [first, last] (and the
 * embedding / head when asked). first = 0, last = -1 with embed and head
 * gives a head-only or embed-only shard. Every tensor of the shard is
 * checked (presence, shape, dtype) before anything is read. */
sp_model *sp_model_open(const char *path, int first, int last, bool embed, bool head, sp_error *err);
/* Whole model: layers [0, n_layers-1], embedding and head. */
sp_model *sp_model_open_full(const char *path, sp_error *err);
/* Moves the shard's matrices (every layer's, and the output matrix; the
 * embedding table only when it is the tied output, since it is otherwise
 * read one row per token) out of the file mapping into one region of
 * anonymous memory backed by transparent huge pages, and releases the
 * mapped pages as it goes, so the resident size stays the shard's. Decode
 * streams every matrix once per token, and with 4 KiB pages each page is a
 * TLB miss and a restart of the hardware prefetcher: measured +8% (Q8_0) to
 * +15% (Q4_0) decode tok/s (TinyLlama-1.1B shape, 2-core Intel Xeon). The
 * bits are the same. On the way, each matrix is put in the layout the
 * kernels read fastest (sp_matrix_best_layout: Q4_0 regrouped as
 * sp_block_q4_0x16 where the SIMD level has a kernel for it; the same bits
 * again), except a tied output, whose rows the embedding reads.
 * Call it once the shard has been validated (it reads
 * every weight: seconds on an SD card). With SHARDPIPE_MMAP=1 in the
 * environment the weights stay mapped, in the file's layout (and the page
 * cache may evict them under memory pressure rather than the process
 * failing). Returns 0, or -1 with err set when the memory cannot be had. */
int sp_model_load_weights(sp_model *m, sp_error *err);
/* SP_LAYOUT_Q4_0X16 if sp_model_load_weights regrouped any of the shard's
 * matrices, else SP_LAYOUT_FILE (for the run summaries). */
sp_layout sp_model_weights_layout(const sp_model *m);
void sp_model_close(sp_model *m);

/* Bytes of weight data a shard references (what it will read per token,
 * except the embedding, of which one row per token is read). */
uint64_t sp_shard_weight_bytes(const sp_gguf *g, const sp_config *c, int first, int last,
                               bool embed, bool head);
/* Positions per sequence a model header or a plan may give (2^24). */
#define SP_MAX_CONTEXT (1 << 24)
/* The estimates below saturate: UINT64_MAX means "past 2^64 bytes", never a
 * wrapped small number. sp_sat_add sums them the same way. */
/* Bytes of fp16 KV cache for n_layers layers, n_seq sequences, ctx positions. */
uint64_t sp_kv_bytes(const sp_config *c, int n_layers, int n_seq, int ctx);
/* Bytes of scratch buffers for micro-batches of up to max_rows rows. */
uint64_t sp_scratch_bytes(const sp_config *c, int max_rows, int ctx, bool head);
uint64_t sp_sat_add(uint64_t a, uint64_t b);

/* KV cache of a shard: for each of its layers, each sequence slot, each
 * position, kv_dim values of K and of V, stored as fp16 (as llama.cpp does:
 * half the memory of f32, and the attention arithmetic matches the
 * reference implementation's). */
typedef struct sp_kv_cache {
    int n_layers, n_seq, ctx, kv_dim;
    uint16_t *k, *v;  /* [layer][seq][pos][kv_dim], fp16 */
    int *filled;   /* per sequence: positions 0..filled-1 hold data */
} sp_kv_cache;

sp_kv_cache *sp_kv_new(const sp_config *c, int n_layers, int n_seq, int ctx);
void sp_kv_free(sp_kv_cache *kv);
/* Forget sequence slot s (its next row must be at position 0). */
void sp_kv_reset(sp_kv_cache *kv, int s);

/* A micro-batch description: n rows; row i is a token of sequence seq[i]
 * at position pos[i]. */
typedef struct sp_batch {
    int n;
    const int *seq;
    const int *pos;
} sp_batch;

/* Everything a shard needs to run: model, KV cache, scratch, kernels. */
typedef struct sp_engine {
    sp_model *model;
    sp_kv_cache *kv;
    sp_matmul_ctx mm;
    int max_rows;
    int ctx;
    /* scratch, max_rows rows each */
    float *xn, *q, *k, *v, *att_out, *hb, *hb2, *scores;
    float *xb;               /* the batch's hidden states in path order */
    float *rope_cs;          /* per row: cos, sin of each RoPE pair's angle */
    int *order, *bseq, *bpos; /* path order of the rows, their seq and pos */
    int *seq_rows;           /* per sequence slot: rows in the batch */
    /* Called between layers when set: a pipeline stage uses it to let MPI
     * move its messages while it computes (see src/cluster/run.c). */
    void (*progress)(void *arg);
    void *progress_arg;
} sp_engine;

/* n_threads: kernel threads; max_rows: largest micro-batch; n_seq sequence
 * slots; ctx positions per sequence (<= the model's training context). */
sp_engine *sp_engine_new(sp_model *m, int n_threads, int max_rows, int n_seq, int ctx, sp_error *err);
void sp_engine_free(sp_engine *e); /* does not close the model */

/* x[n][dim] = embedding rows of tokens (first stage). Returns -1 on an
 * out-of-range token id. */
int sp_embed(sp_engine *e, const int *tokens, int n, float *x, sp_error *err);
/* Run layers [first, last] of the shard on x[n][dim] in place. Each row
 * takes the dot path when its sequence has fewer than mm.sgemm_min_rows rows
 * in the batch, else the sgemm path (see forward.c). Checks that
 * positions are inside the context, sequences inside the slots, and that each
 * row continues its sequence (position <= positions filled so far; a row at
 * position 0 restarts the slot). A shard with no layers only checks. */
int sp_forward(sp_engine *e, const sp_batch *b, float *x, sp_error *err);
/* logits[n][n_vocab] from x[n][dim] (last stage). */
void sp_head(sp_engine *e, const float *x, int n, float *logits);

#endif
