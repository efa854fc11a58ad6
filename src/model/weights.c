/* weights.c - binds the tensors of a shard (a contiguous layer range, plus
 * the embedding and/or head) to sp_matrix views into the GGUF mapping, and
 * (sp_model_load_weights) moves the shard's matrices into huge pages. Only
 * the pages of the shard's tensors are ever touched. Every tensor is
 * checked for presence, shape and dtype before the model is handed out. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shardpipe/model.h"
#include "shardpipe/shardfile.h"
#include "shardpipe/util.h"

static int bind_matrix(const sp_gguf *g, const char *name, int cols, int rows, sp_matrix *out, sp_error *err)
{
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    const sp_gguf_tensor *t = sp_gguf_need_tensor(g, name, 2, ne, err);
    if (!t) return -1;
    if (!sp_dtype_supported(t->type))
        return sp_errorf(err, "%s: tensor '%s' has type %s, which shardpipe cannot multiply (it runs %s); "
                              "re-quantize the model to one of those, e.g. llama-quantize ... Q4_K_M",
                         g->path, name, sp_dtype_name(t->type), sp_dtype_supported_list());
    *out = sp_matrix_from_tensor(t);
    return 0;
}

/* A 1-D F32 vector (norm weight, bias, RoPE factors) of n values. */
static int bind_vector(const sp_gguf *g, const char *name, int n, const char *what, const float **out,
                       sp_error *err)
{
    uint64_t ne[1] = {(uint64_t)n};
    const sp_gguf_tensor *t = sp_gguf_need_tensor(g, name, 1, ne, err);
    if (!t) return -1;
    if (t->type != SP_DTYPE_F32)
        return sp_errorf(err, "%s: %s '%s' is %s; shardpipe expects F32 (as llama.cpp writes 1-D tensors)",
                         g->path, what, name, sp_dtype_name(t->type));
    *out = (const float *)t->data;
    return 0;
}

static int bind_norm(const sp_gguf *g, const char *name, int dim, const float **out, sp_error *err)
{
    return bind_vector(g, name, dim, "norm weight", out, err);
}

static int bind_layer(const sp_gguf *g, const sp_config *c, int l, sp_layer *L, sp_error *err)
{
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
    if (bind_norm(g, NAME("attn_norm.weight"), c->dim, &L->attn_norm, err) ||
        bind_norm(g, NAME("ffn_norm.weight"), c->dim, &L->ffn_norm, err) ||
        bind_matrix(g, NAME("attn_q.weight"), c->dim, c->q_dim, &L->wq, err) ||
        bind_matrix(g, NAME("attn_k.weight"), c->dim, c->kv_dim, &L->wk, err) ||
        bind_matrix(g, NAME("attn_v.weight"), c->dim, c->kv_dim, &L->wv, err) ||
        bind_matrix(g, NAME("attn_output.weight"), c->q_dim, c->dim, &L->wo, err) ||
        bind_matrix(g, NAME("ffn_gate.weight"), c->dim, c->ffn_dim, &L->w_gate, err) ||
        bind_matrix(g, NAME("ffn_up.weight"), c->dim, c->ffn_dim, &L->w_up, err) ||
        bind_matrix(g, NAME("ffn_down.weight"), c->ffn_dim, c->dim, &L->w_down, err))
        return -1;
    if (c->has_qkv_bias &&
        (bind_vector(g, NAME("attn_q.bias"), c->q_dim, "bias", &L->bq, err) ||
         bind_vector(g, NAME("attn_k.bias"), c->kv_dim, "bias", &L->bk, err) ||
         bind_vector(g, NAME("attn_v.bias"), c->kv_dim, "bias", &L->bv, err)))
        return -1;
    if (c->has_qk_norm &&
        (bind_norm(g, NAME("attn_q_norm.weight"), c->head_dim, &L->q_norm, err) ||
         bind_norm(g, NAME("attn_k_norm.weight"), c->head_dim, &L->k_norm, err)))
        return -1;
#undef NAME
    return 0;
}

sp_model *sp_model_open(const char *path, int first, int last, bool embed, bool head, sp_error *err)
{
    sp_gguf *g = sp_gguf_open(path, err);
    if (!g) return NULL;
    sp_model *m = sp_calloc(1, sizeof *m);
    m->gguf = g;
    if (sp_config_read(g, &m->cfg, err)) goto fail;
    const sp_config *c = &m->cfg;
    if (last == SP_TO_LAST_LAYER) last = c->n_layers - 1;
    if (last >= first && (first < 0 || last >= c->n_layers)) {
        sp_errorf(err, "%s: layer range [%d, %d] is outside the model's layers [0, %d]", path, first, last,
                  c->n_layers - 1);
        goto fail;
    }
    /* a shard file (shardpipe split) runs only what it holds */
    sp_shard_info sh;
    if (sp_shard_info_read(g, &sh, err)) goto fail;
    if (sh.is_shard && ((last >= first && (first < sh.first || last > sh.last)) || (embed && !sh.embed) ||
                        (head && !sh.head))) {
        sp_errorf(err, "%s is a shard of layers %d-%d%s%s (shardpipe split) and cannot run layers %d-%d%s%s; "
                       "use the plan written with the shards, or the original model",
                  path, sh.first, sh.last, sh.embed ? " with the embedding" : "", sh.head ? " with the head" : "",
                  first, last, embed ? " with the embedding" : "", head ? " with the head" : "");
        goto fail;
    }
    m->first = first;
    m->last = last;
    m->has_embed = embed;
    m->has_head = head;
    bool tied = !sp_gguf_find_tensor(g, "output.weight");
    if (embed || (head && tied)) {
        /* the embedding is [dim, n_vocab] of any dtype; rows are dequantized
         * on use. A head with its own output matrix does not need it (a
         * last-stage shard file does not hold it). */
        if (bind_matrix(g, "token_embd.weight", c->dim, c->n_vocab, &m->tok_embd, err)) goto fail;
    }
    if (head) {
        if (bind_norm(g, "output_norm.weight", c->dim, &m->out_norm, err)) goto fail;
        if (!tied) {
            if (bind_matrix(g, "output.weight", c->dim, c->n_vocab, &m->output, err)) goto fail;
        } else {
            m->output = m->tok_embd; /* tied embeddings */
        }
    }
    int n = last >= first ? last - first + 1 : 0;
    if (n && c->has_rope_freqs &&
        bind_vector(g, "rope_freqs.weight", c->rope_dim / 2, "RoPE frequency factors", &m->rope_freqs, err))
        goto fail;
    for (int i = 0; m->rope_freqs && i < c->rope_dim / 2; i++)
        if (!(m->rope_freqs[i] > 0.0f) || !isfinite(m->rope_freqs[i])) { /* they divide the frequencies */
            sp_errorf(err, "%s: tensor 'rope_freqs.weight' value %d is %g; the RoPE frequency factors must be "
                           "positive and finite (the file is damaged; convert the model again)",
                      path, i, m->rope_freqs[i]);
            goto fail;
        }
    m->layers = sp_calloc(n ? n : 1, sizeof *m->layers);
    for (int l = first; l <= last; l++)
        if (bind_layer(g, c, l, &m->layers[l - first], err)) goto fail;
    return m;
fail:
    sp_model_close(m);
    return NULL;
}

sp_model *sp_model_open_full(const char *path, sp_error *err)
{
    return sp_model_open(path, 0, SP_TO_LAST_LAYER, true, true, err);
}

/* The matrices sp_model_load_weights moves, in file order of use. */
static int shard_matrices(sp_model *m, sp_matrix **out)
{
    int n = 0;
    for (int l = 0; l <= m->last - m->first; l++) {
        sp_layer *L = &m->layers[l];
        sp_matrix *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) out[n++] = w[i];
    }
    if (m->has_head) out[n++] = &m->output;
    return n;
}

#define COPY_PIECE ((size_t)8 << 20)

static size_t matrix_bytes(const sp_matrix *w) { return (size_t)w->rows * w->row_bytes; }

/* Drops the mapped pages that lie wholly inside [p, p + n): they were read
 * once for the copy and would otherwise stay resident. */
static void release_mapped(const void *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int sp_model_load_weights(sp_model *m, sp_error *err)
{
    const char *env = getenv("SHARDPIPE_MMAP");
    if (m->copy || (env && *env && strcmp(env, "0"))) return 0;
    int n_layers = m->last >= m->first ? m->last - m->first + 1 : 0;
    sp_matrix **mats = sp_calloc((size_t)n_layers * 7 + 1, sizeof *mats);
    int n = shard_matrices(m, mats);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (matrix_bytes(mats[i]) + 63) & ~(size_t)63;
    if (total == 0) {
        free(mats);
        return 0;
    }
    char *copy = sp_huge_alloc(total);
    if (!copy) {
        free(mats);
        return sp_errorf(err, "%s: cannot allocate %.1f MiB for the shard's weights (%s); free memory, give this "
                              "board fewer layers, or set SHARDPIPE_MMAP=1 to leave them mapped",
                         m->gguf->path, total / 1048576.0, strerror(errno));
    }
    bool tied = m->has_head && m->output.data == m->tok_embd.data;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        sp_matrix *w = mats[i];
        /* the tied head keeps the file layout: the embedding reads its rows */
        sp_layout layout = tied && w == &m->output ? SP_LAYOUT_FILE : sp_matrix_best_layout(w);
        /* in pieces of whole rows, so at most one piece is resident twice */
        int64_t piece = (int64_t)(COPY_PIECE / w->row_bytes) + 1;
        piece = (piece + 15) / 16 * 16; /* whole groups of SP_LAYOUT_K_X16 */
        for (int64_t r = 0; r < w->rows; r += piece) {
            int64_t r1 = r + piece < w->rows ? r + piece : w->rows;
            sp_matrix_copy_rows(w, layout, copy + off, r, r1);
            release_mapped((const char *)w->data + r * w->row_bytes, (size_t)(r1 - r) * w->row_bytes);
        }
        w->data = copy + off;
        w->layout = layout;
        off += (matrix_bytes(w) + 63) & ~(size_t)63;
    }
    if (tied) m->tok_embd.data = m->output.data;
    m->copy = copy;
    m->copy_bytes = total;
    free(mats);
    return 0;
}

sp_layout sp_model_weights_layout(const sp_model *m)
{
    int n_layers = m->last >= m->first ? m->last - m->first + 1 : 0;
    sp_matrix **mats = sp_calloc((size_t)n_layers * 7 + 1, sizeof *mats);
    int n = shard_matrices((sp_model *)m, mats);
    sp_layout layout = SP_LAYOUT_FILE;
    for (int i = 0; i < n; i++)
        if (mats[i]->layout != SP_LAYOUT_FILE) layout = mats[i]->layout;
    free(mats);
    return layout;
}

void sp_model_close(sp_model *m)
{
    if (!m) return;
    sp_huge_free(m->copy, m->copy_bytes);
    free(m->layers);
    sp_gguf_close(m->gguf);
    free(m);
}
