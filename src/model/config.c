/* config.c - the hyper-parameters and features of a llama / qwen2 / qwen3
 * model from GGUF metadata, and the memory a
 * shard of the model needs (weights it references, KV cache, scratch).
 * These estimates are what plans are validated against before any weight
 * is loaded, so they only read the GGUF header. */
#include <stdio.h>
#include <string.h>

#include "shardpipe/model.h"

/* Read "<arch>.<suffix>" as u32, with a default when def >= 0. */
static int arch_u32(const sp_gguf *g, const char *arch, const char *suffix, long def, int *out,
                    sp_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    int rc = def >= 0 ? sp_gguf_get_u32_or(g, key, (uint32_t)def, &v, err)
                      : sp_gguf_get_u32(g, key, &v, err);
    if (rc) return -1;
    if (v > (1u << 30)) return sp_errorf(err, "%s: %s = %u is implausibly large", g->path, key, v);
    *out = (int)v;
    return 0;
}

static int arch_f32(const sp_gguf *g, const char *arch, const char *suffix, float def, float *out,
                    sp_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return sp_gguf_get_f32_or(g, key, def, out, err);
}

/* The sizes in the header against what the file really holds, before
 * anything is sized from them: a header is a few numbers, a lie there would
 * otherwise cost a 378 GB allocation (block_count 2^30) or a 34 s plan
 * search over 5 M layers. Every layer has its own tensors, so block_count
 * is bounded by the tensor index; dim and ffn by the shapes of layer 0;
 * the context by what a plan may ask for. */
static int bound_by_index(const sp_gguf *g, const sp_config *c, sp_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", c->n_layers - 1);
    if ((uint64_t)c->n_layers > g->n_tensors || !sp_gguf_find_tensor(g, name))
        return sp_errorf(err, "%s: %s.block_count is %d but the file's tensor index (%llu tensors) has no "
                              "'%s'; the header is corrupt or the file is cut short",
                         g->path, c->arch, c->n_layers, (unsigned long long)g->n_tensors, name);
    const sp_gguf_tensor *up = sp_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    if (up && (up->ne[0] != (uint64_t)c->dim || up->ne[1] != (uint64_t)c->ffn_dim))
        return sp_errorf(err, "%s: tensor 'blk.0.ffn_up.weight' has shape [%llu, %llu] but the header says "
                              "embedding_length %d and feed_forward_length %d; the header is corrupt",
                         g->path, (unsigned long long)up->ne[0], (unsigned long long)up->ne[1], c->dim,
                         c->ffn_dim);
    if (c->ctx_train > SP_MAX_CONTEXT)
        return sp_errorf(err, "%s: %s.context_length %d is over the %d positions shardpipe supports; the "
                              "header is corrupt, or set a smaller context_length",
                         g->path, c->arch, c->ctx_train, SP_MAX_CONTEXT);
    return 0;
}

/* The architectures shardpipe runs, as fields of the config: the forward
 * pass never tests the name. Adding one that differs only in these features
 * (Mistral's GGUF files already say "llama") is a line here; a genuinely
 * new operation (Gemma's GeGLU and scaled embedding, Phi-3's fused qkv) is a
 * field here plus its op in forward.c. */
typedef struct arch_desc {
    const char *name;     /* general.architecture */
    const char *families; /* for the error listing what runs */
    sp_rope_style rope_style;
    bool qkv_bias, qk_norm;
} arch_desc;

static const arch_desc archs[] = {
    {"llama", "Llama 1/2/3.x, TinyLlama, stories", SP_ROPE_NORM, false, false},
    {"qwen2", "Qwen2, Qwen2.5", SP_ROPE_NEOX, true, false},
    {"qwen3", "Qwen3 dense", SP_ROPE_NEOX, false, true},
};
#define N_ARCHS (sizeof archs / sizeof archs[0])

/* Known architectures that do not run yet, and why (so the error says more
 * than "unknown"). */
static const char *const unsupported[][2] = {
    {"qwen3moe", "a mixture-of-experts model (experts are not implemented)"},
    {"qwen2moe", "a mixture-of-experts model (experts are not implemented)"},
    {"mixtral", "a mixture-of-experts model (experts are not implemented)"},
};

static int arch_error(const sp_gguf *g, sp_gguf_str arch, sp_error *err)
{
    char list[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < N_ARCHS; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s'%s' (%s)", i ? ", " : "", archs[i].name,
                              archs[i].families);
    const char *why = "an architecture shardpipe does not implement";
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (sp_gguf_str_eq(arch, unsupported[i][0])) why = unsupported[i][1];
    return sp_errorf(err, "%s: general.architecture is '%.*s', %s, so it is not supported; shardpipe runs %s; "
                          "pick a GGUF of one of these",
                     g->path, (int)(arch.len > 40 ? 40 : arch.len), arch.ptr, why, list);
}

int sp_config_read(const sp_gguf *g, sp_config *c, sp_error *err)
{
    memset(c, 0, sizeof *c);
    sp_gguf_str arch;
    if (sp_gguf_get_str(g, "general.architecture", &arch, err)) return -1;
    const arch_desc *ad = NULL;
    for (size_t i = 0; i < N_ARCHS; i++)
        if (sp_gguf_str_eq(arch, archs[i].name)) ad = &archs[i];
    if (!ad) return arch_error(g, arch, err);
    const char *A = ad->name;
    snprintf(c->arch, sizeof c->arch, "%s", A);
    c->rope_style = ad->rope_style;
    c->has_qkv_bias = ad->qkv_bias;
    c->has_qk_norm = ad->qk_norm;

    if (arch_u32(g, A, "embedding_length", -1, &c->dim, err) ||
        arch_u32(g, A, "block_count", -1, &c->n_layers, err) ||
        arch_u32(g, A, "attention.head_count", -1, &c->n_heads, err) ||
        arch_u32(g, A, "feed_forward_length", -1, &c->ffn_dim, err) ||
        arch_u32(g, A, "context_length", 2048, &c->ctx_train, err) ||
        arch_u32(g, A, "attention.head_count_kv", c->n_heads, &c->n_kv_heads, err) ||
        arch_f32(g, A, "rope.freq_base", 10000.0f, &c->rope_base, err) ||
        arch_f32(g, A, "attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps, err))
        return -1;

    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->ffn_dim <= 0 || c->n_kv_heads <= 0 ||
        c->ctx_train <= 0)
        return sp_errorf(err, "%s: hyper-parameters must be positive (embedding_length %d, block_count %d, "
                              "head_count %d, head_count_kv %d, feed_forward_length %d, context_length %d)",
                         g->path, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim, c->ctx_train);
    if (c->n_heads % c->n_kv_heads)
        return sp_errorf(err, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d "
                              "(grouped-query attention needs whole groups)",
                         g->path, A, c->n_heads, c->n_kv_heads);
    /* head size: key_length when the file has it (Qwen3: 128 at dim 1024
     * with 16 heads), else dim / n_heads */
    bool has_key_len = false;
    {
        char key[128];
        snprintf(key, sizeof key, "%s.attention.key_length", A);
        has_key_len = sp_gguf_find(g, key) != NULL;
    }
    if (!has_key_len && c->dim % c->n_heads)
        return sp_errorf(err, "%s: %s.embedding_length %d is not a multiple of %s.attention.head_count %d and "
                              "the file has no %s.attention.key_length", g->path, A, c->dim, A, c->n_heads, A);
    int value_len;
    if (arch_u32(g, A, "attention.key_length", c->dim / c->n_heads, &c->head_dim, err) ||
        arch_u32(g, A, "attention.value_length", c->head_dim, &value_len, err))
        return -1;
    if (c->head_dim <= 0 || c->head_dim > 1024 || value_len != c->head_dim)
        return sp_errorf(err, "%s: %s.attention.key_length %d and value_length %d must be equal and in [1, 1024] "
                              "(shardpipe keeps one head size for q, k and v)", g->path, A, c->head_dim, value_len);
    c->q_dim = c->n_heads * c->head_dim;
    c->kv_dim = c->n_kv_heads * c->head_dim;
    if (arch_u32(g, A, "rope.dimension_count", c->head_dim, &c->rope_dim, err)) return -1;
    if (c->rope_dim <= 0 || c->rope_dim > c->head_dim || c->rope_dim % 2)
        return sp_errorf(err, "%s: %s.rope.dimension_count %d must be even and in [2, head size %d]",
                         g->path, A, c->rope_dim, c->head_dim);
    if (!(c->rope_base > 0.0f) || !(c->norm_eps > 0.0f) || c->norm_eps > 1.0f)
        return sp_errorf(err, "%s: %s.rope.freq_base %g must be > 0 and layer_norm_rms_epsilon %g in (0, 1]",
                         g->path, A, c->rope_base, c->norm_eps);

    const sp_gguf_tensor *emb = sp_gguf_find_tensor(g, "token_embd.weight");
    if (!emb)
        return sp_errorf(err, "%s: tensor 'token_embd.weight' is missing; every %s model needs the token "
                              "embedding", g->path, A);
    if (emb->n_dims != 2 || emb->ne[0] != (uint64_t)c->dim || emb->ne[1] == 0 || emb->ne[1] > (1u << 24))
        return sp_errorf(err, "%s: tensor 'token_embd.weight' has shape [%llu, %llu], expected [%d, n_vocab]",
                         g->path, (unsigned long long)emb->ne[0], (unsigned long long)emb->ne[1], c->dim);
    c->n_vocab = (int)emb->ne[1];
    char key[128];
    snprintf(key, sizeof key, "%s.vocab_size", A);
    uint32_t vocab_kv;
    if (sp_gguf_get_u32_or(g, key, (uint32_t)c->n_vocab, &vocab_kv, err)) return -1;
    if ((int)vocab_kv != c->n_vocab)
        return sp_errorf(err, "%s: %s is %u but token_embd.weight has %d rows", g->path, key, vocab_kv,
                         c->n_vocab);
    c->tied_output = sp_gguf_find_tensor(g, "output.weight") == NULL;
    c->has_rope_freqs = sp_gguf_find_tensor(g, "rope_freqs.weight") != NULL;
    return bound_by_index(g, c, err);
}

int sp_config_eos_id(const sp_gguf *g)
{
    uint32_t id;
    sp_error err = {{0}};
    if (!sp_gguf_find(g, "tokenizer.ggml.eos_token_id") || sp_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id, &err))
        return -1;
    return (int)id;
}

/* Names of the per-layer tensors, in the order the forward pass uses them
 * (those an architecture lacks count 0 bytes). */
static const char *const layer_tensors[] = {
    "attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight",
    "attn_v.bias", "attn_q_norm.weight", "attn_k_norm.weight", "attn_output.weight", "ffn_norm.weight",
    "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
};

static uint64_t tensor_bytes(const sp_gguf *g, const char *name)
{
    const sp_gguf_tensor *t = sp_gguf_find_tensor(g, name);
    return t ? t->nbytes : 0;
}

uint64_t sp_shard_weight_bytes(const sp_gguf *g, const sp_config *c, int first, int last, bool embed,
                               bool head)
{
    uint64_t total = 0;
    char name[96];
    for (int l = first; l <= last; l++)
        for (size_t i = 0; i < sizeof layer_tensors / sizeof layer_tensors[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, layer_tensors[i]);
            total += tensor_bytes(g, name);
        }
    if (last >= first) total += tensor_bytes(g, "rope_freqs.weight"); /* every stage with layers */
    if (embed) total += tensor_bytes(g, "token_embd.weight");
    if (head) {
        total += tensor_bytes(g, "output_norm.weight");
        const sp_gguf_tensor *out = sp_gguf_find_tensor(g, "output.weight");
        /* tied output: the head reads the embedding table (once if both on one stage) */
        if (out) total += out->nbytes;
        else if (!embed) total += tensor_bytes(g, "token_embd.weight");
    }
    (void)c;
    return total;
}

/* Products and sums that stick at UINT64_MAX instead of wrapping: an
 * estimate past 2^64 bytes must never come out as a small number that
 * "fits" (dim 2^20 x 65536 sequences x 2^24 positions once gave 0.0 KiB). */
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t sp_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t sp_kv_bytes(const sp_config *c, int n_layers, int n_seq, int ctx)
{
    /* K and V, fp16, per layer, sequence and position */
    uint64_t per_pos = 2ull * sizeof(uint16_t) * (uint64_t)c->kv_dim;
    return sat_mul(sat_mul(sat_mul(per_pos, (uint64_t)n_layers), (uint64_t)n_seq), (uint64_t)ctx);
}

/* Threads the attention scratch is sized for (one score row each). */
#define SCRATCH_THREADS 16

uint64_t sp_scratch_bytes(const sp_config *c, int max_rows, int ctx, bool head)
{
    /* xn xb + one row of hidden state in; q att_out; k v; hb hb2 */
    uint64_t per_row = 3ull * c->dim + 2ull * c->q_dim + 2ull * c->kv_dim + 2ull * c->ffn_dim;
    uint64_t bytes = sat_mul(sat_mul((uint64_t)max_rows, per_row), sizeof(float));
    /* per thread, for the heads of one KV group: scores over the context
     * and the rounded queries (forward.c, attn_worker) */
    bytes = sp_sat_add(bytes, sat_mul(sat_mul((uint64_t)SCRATCH_THREADS * (uint64_t)(c->n_heads / c->n_kv_heads),
                                              (uint64_t)ctx + (uint64_t)c->head_dim), sizeof(float)));
    /* matmul scratch: Q8_0 copy of the activations and one dequantized f32
     * panel of at most 1024 rows of the widest matrix (see matmul.c) */
    uint64_t wide = (uint64_t)(c->ffn_dim > c->dim ? c->ffn_dim : c->dim);
    if ((uint64_t)c->q_dim > wide) wide = (uint64_t)c->q_dim;
    bytes = sp_sat_add(bytes, sat_mul((uint64_t)max_rows, wide * 2) + 1024ull * wide * sizeof(float));
    if (head) bytes = sp_sat_add(bytes, sat_mul(sat_mul((uint64_t)max_rows, (uint64_t)c->n_vocab), sizeof(float)));
    return bytes;
}
