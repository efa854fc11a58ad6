/* forward.c - the forward pass of the Llama family over a micro-batch, for
 * a contiguous range of layers. The architectures differ only in fields of
 * sp_config (bracketed below); nothing here tests the architecture's name.
 *
 * For each layer l in the shard, with x the hidden states (n rows of dim):
 *   xn  = RMSNorm(x) * attn_norm              RMSNorm(x) = x / sqrt(mean(x^2) + eps)
 *   q, k, v = xn Wq^T, xn Wk^T, xn Wv^T       (k, v have n_kv_heads heads: GQA;
 *                                              heads are head_dim wide, q_dim = n_heads * head_dim)
 *   [has_qkv_bias] q, k, v += bq, bk, bv
 *   [has_qk_norm]  each head of q and of k = RMSNorm(head) * q_norm / k_norm
 *   rotate q and k by RoPE at each row's position, pairs as rope_style says,
 *              pair i's frequency divided by rope_freqs[i] [has_rope_freqs]
 *   store k, v in the row's sequence slot of the KV cache (fp16) at its position
 *   per head h: a = softmax(q_h . K_g^T / sqrt(head_dim)) V_g over positions
 *               0..pos of the row's sequence, g = h / (n_heads / n_kv_heads)
 *               (q_h and the softmax weights are rounded to fp16 before they
 *               meet the fp16 cache, as in llama.cpp, sums are f32)
 *   x  += a Wo^T
 *   xn  = RMSNorm(x) * ffn_norm
 *   x  += (silu(xn Wgate^T) * (xn Wup^T)) Wdown^T      silu(z) = z / (1 + e^-z)
 * The embedding (first stage) and the final norm + output matrix (last
 * stage, [tied_output] the embedding table) are separate calls, so a
 * pipeline stage runs exactly its share.
 *
 * Every row's result depends only on that row, its sequence's cache and the
 * matmul path (see matmul.h): the same tokens give bit-identical logits
 * whether the layers run in one process or cut into stages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/model.h"
#include "shardpipe/quant.h"
#include "shardpipe/threads.h"
#include "shardpipe/rowops.h"
#include "shardpipe/util.h"

/* ---- KV cache ---- */

sp_kv_cache *sp_kv_new(const sp_config *c, int n_layers, int n_seq, int ctx)
{
    sp_kv_cache *kv = sp_calloc(1, sizeof *kv);
    kv->n_layers = n_layers;
    kv->n_seq = n_seq;
    kv->ctx = ctx;
    kv->kv_dim = c->kv_dim;
    size_t n = (size_t)(n_layers ? n_layers : 1) * n_seq * ctx * c->kv_dim;
    kv->k = sp_calloc(n, sizeof(uint16_t));
    kv->v = sp_calloc(n, sizeof(uint16_t));
    kv->filled = sp_calloc(n_seq, sizeof(int));
    return kv;
}

void sp_kv_free(sp_kv_cache *kv)
{
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->filled);
    free(kv);
}

void sp_kv_reset(sp_kv_cache *kv, int s)
{
    if (s >= 0 && s < kv->n_seq) kv->filled[s] = 0;
}

static uint16_t *kv_row(const sp_kv_cache *kv, uint16_t *base, int layer, int seq, int pos)
{
    return base + (((size_t)layer * kv->n_seq + seq) * kv->ctx + pos) * kv->kv_dim;
}

/* ---- engine ---- */

sp_engine *sp_engine_new(sp_model *m, int n_threads, int max_rows, int n_seq, int ctx, sp_error *err)
{
    const sp_config *c = &m->cfg;
    if (n_threads < 1 || n_threads > SP_MAX_THREADS)
        return sp_errorf(err, "threads must be in [1, %d], got %d", SP_MAX_THREADS, n_threads), NULL;
    if (max_rows < 1 || n_seq < 1)
        return sp_errorf(err, "micro-batch rows (%d) and sequences (%d) must be >= 1", max_rows, n_seq), NULL;
    if (ctx < 1 || ctx > c->ctx_train)
        return sp_errorf(err, "%s: context %d must be in [1, %d] (the model's %s.context_length)",
                         m->gguf->path, ctx, c->ctx_train, c->arch), NULL;
    sp_engine *e = sp_calloc(1, sizeof *e);
    e->model = m;
    e->max_rows = max_rows;
    e->ctx = ctx;
    int n_layers = m->last >= m->first ? m->last - m->first + 1 : 0;
    e->kv = sp_kv_new(c, n_layers, n_seq, ctx);
    sp_matmul_init(&e->mm, n_threads);
    /* the crossover for the bulk of the shard's weights (matmul.c) */
    e->mm.sgemm_min_rows = sp_matmul_default_min_rows(n_layers > 0 ? m->layers[0].wq.type : m->output.type);
    size_t r = (size_t)max_rows;
    e->xn = sp_calloc(r * c->dim, sizeof(float));
    e->q = sp_calloc(r * c->q_dim, sizeof(float));
    e->k = sp_calloc(r * c->kv_dim, sizeof(float));
    e->v = sp_calloc(r * c->kv_dim, sizeof(float));
    e->att_out = sp_calloc(r * c->q_dim, sizeof(float));
    e->hb = sp_calloc(r * c->ffn_dim, sizeof(float));
    e->hb2 = sp_calloc(r * c->ffn_dim, sizeof(float));
    /* per thread, for the heads of one KV group: scores (then softmax
     * weights) over the context, and the fp16-rounded queries (attn_worker) */
    int group = c->n_heads / c->n_kv_heads;
    e->scores = sp_calloc((size_t)n_threads * group * (ctx + c->head_dim), sizeof(float));
    e->rope_cs = sp_calloc(r * (c->rope_dim / 2) * 2, sizeof(float));
    e->xb = sp_calloc(r * c->dim, sizeof(float));
    e->order = sp_calloc(r, sizeof(int));
    e->bseq = sp_calloc(r, sizeof(int));
    e->bpos = sp_calloc(r, sizeof(int));
    e->seq_rows = sp_calloc((size_t)n_seq, sizeof(int));
    return e;
}

void sp_engine_free(sp_engine *e)
{
    if (!e) return;
    sp_kv_free(e->kv);
    sp_matmul_free(&e->mm);
    free(e->xn);
    free(e->q);
    free(e->k);
    free(e->v);
    free(e->att_out);
    free(e->hb);
    free(e->hb2);
    free(e->scores);
    free(e->rope_cs);
    free(e->xb);
    free(e->order);
    free(e->bseq);
    free(e->bpos);
    free(e->seq_rows);
    free(e);
}

/* ---- attention, threaded over (row, KV head) pairs ----
 *
 * The heads of one KV group share their K and V rows, so they are done
 * together (sp_attn_group_f16, kernels/attention.c): each cache row is
 * read from memory once for the whole group. Every head still sums its
 * scores, softmax and weighted values in position order, as if it ran
 * alone. */

typedef struct attn_job {
    sp_engine *e;
    const sp_batch *b;
    int layer; /* index within the shard */
} attn_job;

static void attn_worker(void *arg, int ith, int nth)
{
    attn_job *job = arg;
    sp_engine *e = job->e;
    const sp_config *c = &e->model->cfg;
    const sp_kv_cache *kv = e->kv;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, ctx = e->ctx;
    float inv_sqrt = 1.0f / sqrtf((float)hd);
    float *scratch = e->scores + (size_t)ith * group * (ctx + hd); /* sp_attn_group_f16's */
    long lo, hi;
    sp_split_range((long)job->b->n * c->n_kv_heads, ith, nth, 1, &lo, &hi);
    for (long t = lo; t < hi; t++) {
        int row = (int)(t / c->n_kv_heads), kvh = (int)(t % c->n_kv_heads);
        int seq = job->b->seq[row], pos = job->b->pos[row];
        size_t at = (size_t)row * c->q_dim + (size_t)kvh * group * hd;
        sp_attn_group_f16(hd, pos + 1, kv_row(kv, kv->k, job->layer, seq, 0) + kvh * hd,
                          kv_row(kv, kv->v, job->layer, seq, 0) + kvh * hd, kv->kv_dim, e->q + at, group, inv_sqrt,
                          scratch, ctx, e->att_out + at);
    }
}

/* ---- which matmul path each row takes ----
 *
 * A row's result must not depend on what else shares its micro-batch (the
 * pipeline mixes prompt chunks of some sequences with decode rows of others),
 * so the path is chosen per row, from the number of rows its own sequence has
 * in the batch: a prompt chunk of at least sgemm_min_rows rows goes through
 * dequantize + sgemm, decode rows (one per sequence) through the dot kernels,
 * however many sequences share the batch. sp_forward orders the batch so the
 * dot rows come first, and each weight is applied in (at most) two calls. */

static void mm(sp_engine *e, const sp_matrix *w, const float *x, int n, int n_dot, float *y)
{
    sp_matmul_path saved = e->mm.force;
    if (n_dot > 0) {
        e->mm.force = SP_PATH_DOT;
        sp_matmul(&e->mm, w, x, n_dot, y);
    }
    if (n > n_dot) {
        e->mm.force = SP_PATH_SGEMM;
        sp_matmul(&e->mm, w, x + (size_t)n_dot * w->cols, n - n_dot, y + (size_t)n_dot * w->rows);
    }
    e->mm.force = saved;
}

/* mm for n_w matrices that share the input x (see sp_matmul_multi). */
static void mm_multi(sp_engine *e, const sp_matrix *const *w, int n_w, const float *x, int n, int n_dot,
                     float *const *y)
{
    sp_matmul_path saved = e->mm.force;
    if (n_dot > 0) {
        e->mm.force = SP_PATH_DOT;
        sp_matmul_multi(&e->mm, w, n_w, x, n_dot, y);
    }
    if (n > n_dot) {
        e->mm.force = SP_PATH_SGEMM;
        for (int i = 0; i < n_w; i++)
            sp_matmul(&e->mm, w[i], x + (size_t)n_dot * w[i]->cols, n - n_dot, y[i] + (size_t)n_dot * w[i]->rows);
    }
    e->mm.force = saved;
}

/* Fills order[] with the batch's rows, dot-path rows first (stable), and
 * returns how many take the dot path. */
static int order_rows(sp_engine *e, const sp_batch *b, int *order)
{
    int n = b->n;
    if (e->mm.force != SP_PATH_AUTO) {
        for (int i = 0; i < n; i++) order[i] = i;
        return e->mm.force == SP_PATH_DOT ? n : 0;
    }
    int *rows_of = e->seq_rows; /* rows per sequence slot in this batch */
    for (int i = 0; i < n; i++) rows_of[b->seq[i]] = 0;
    for (int i = 0; i < n; i++) rows_of[b->seq[i]]++;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (rows_of[b->seq[i]] < e->mm.sgemm_min_rows) order[k++] = i;
    int n_dot = k;
    for (int i = 0; i < n; i++)
        if (rows_of[b->seq[i]] >= e->mm.sgemm_min_rows) order[k++] = i;
    return n_dot;
}

/* ---- the three entry points ---- */

int sp_embed(sp_engine *e, const int *tokens, int n, float *x, sp_error *err)
{
    const sp_model *m = e->model;
    const sp_config *c = &m->cfg;
    if (!m->has_embed) return sp_errorf(err, "this shard has no token embedding (it is not the first stage)");
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return sp_errorf(err, "token id %d at row %d is outside the vocabulary [0, %d)", tokens[i], i,
                             c->n_vocab);
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes;
        sp_dequantize_row(m->tok_embd.type, row, x + (size_t)i * c->dim, c->dim);
    }
    return 0;
}

static int check_batch(const sp_engine *e, const sp_batch *b, sp_error *err)
{
    if (b->n < 1 || b->n > e->max_rows)
        return sp_errorf(err, "micro-batch of %d rows; this engine takes 1..%d", b->n, e->max_rows);
    /* positions must continue each sequence without holes: row i may write
     * position p only if positions 0..p-1 are already in the cache */
    int *filled = e->kv->filled;
    for (int i = 0; i < b->n; i++) {
        int s = b->seq[i], p = b->pos[i];
        if (s < 0 || s >= e->kv->n_seq)
            return sp_errorf(err, "row %d: sequence slot %d is outside [0, %d)", i, s, e->kv->n_seq);
        if (p < 0 || p >= e->ctx)
            return sp_errorf(err, "row %d: position %d of sequence %d is outside the context of %d positions; "
                                  "raise the context or shorten prompt + generation", i, p, s, e->ctx);
        if (p > filled[s])
            return sp_errorf(err, "row %d: position %d of sequence %d leaves a hole (positions up to %d are "
                                  "filled)", i, p, s, filled[s] - 1);
        filled[s] = p + 1;
    }
    return 0;
}

static void add_rows(float *x, const float *d, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += d[i];
}

/* SwiGLU's elementwise part, g = silu(g) * u (sp_swiglu_f32), split across
 * the pool: an e^x per element of every row's ffn_dim outputs, which on one
 * thread left the others idle between the gate/up and down matmuls. */
typedef struct swiglu_job {
    float *g;
    const float *u;
    size_t n;
} swiglu_job;

static void swiglu_part(void *arg, int ith, int nth)
{
    swiglu_job *j = arg;
    long lo, hi;
    sp_split_range((long)j->n, ith, nth, 16, &lo, &hi);
    sp_swiglu_f32(j->g + lo, j->u + lo, hi - lo);
}

int sp_forward(sp_engine *e, const sp_batch *b_in, float *x_in, sp_error *err)
{
    const sp_model *m = e->model;
    const sp_config *c = &m->cfg;
    if (check_batch(e, b_in, err)) return -1;
    int n = b_in->n, D = c->dim;
    if (m->last < m->first) return 0;

    /* work on the rows in path order (see order_rows), in e->xb */
    int *order = e->order;
    int n_dot = order_rows(e, b_in, order);
    for (int i = 0; i < n; i++) {
        e->bseq[i] = b_in->seq[order[i]];
        e->bpos[i] = b_in->pos[order[i]];
        memcpy(e->xb + (size_t)i * D, x_in + (size_t)order[i] * D, D * sizeof(float));
    }
    sp_batch batch = {n, e->bseq, e->bpos};
    const sp_batch *b = &batch;
    float *x = e->xb;
    int half = c->rope_dim / 2;
    for (int r = 0; r < n; r++)
        sp_rope_angles(e->rope_cs + (size_t)r * 2 * half, c->rope_dim, c->rope_base, m->rope_freqs, b->pos[r]);

    for (int l = m->first; l <= m->last; l++) {
        const sp_layer *L = &m->layers[l - m->first];
        int li = l - m->first;

        /* attention block */
        for (int r = 0; r < n; r++)
            sp_rmsnorm(e->xn + (size_t)r * D, x + (size_t)r * D, L->attn_norm, D, c->norm_eps);
        const sp_matrix *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *const qkv[3] = {e->q, e->k, e->v};
        mm_multi(e, wqkv, 3, e->xn, n, n_dot, qkv);
        for (int r = 0; r < n; r++) {
            float *q = e->q + (size_t)r * c->q_dim, *k = e->k + (size_t)r * c->kv_dim;
            if (L->bq) { /* qwen2 */
                sp_add_bias(q, L->bq, c->q_dim);
                sp_add_bias(k, L->bk, c->kv_dim);
                sp_add_bias(e->v + (size_t)r * c->kv_dim, L->bv, c->kv_dim);
            }
            if (L->q_norm) { /* qwen3 */
                sp_rmsnorm_heads(q, c->n_heads, c->head_dim, L->q_norm, c->norm_eps);
                sp_rmsnorm_heads(k, c->n_kv_heads, c->head_dim, L->k_norm, c->norm_eps);
            }
            const float *cs = e->rope_cs + (size_t)r * 2 * half;
            sp_rope(q, c->n_heads, c->head_dim, c->rope_dim, c->rope_style, cs);
            sp_rope(k, c->n_kv_heads, c->head_dim, c->rope_dim, c->rope_style, cs);
            uint16_t *kc = kv_row(e->kv, e->kv->k, li, b->seq[r], b->pos[r]);
            uint16_t *vc = kv_row(e->kv, e->kv->v, li, b->seq[r], b->pos[r]);
            const float *v = e->v + (size_t)r * c->kv_dim;
            sp_quantize_row(SP_DTYPE_F16, k, kc, c->kv_dim);
            sp_quantize_row(SP_DTYPE_F16, v, vc, c->kv_dim);
        }
        attn_job job = {e, b, li};
        sp_pool_run(e->mm.pool, attn_worker, &job);
        mm(e, &L->wo, e->att_out, n, n_dot, e->xn);
        add_rows(x, e->xn, (size_t)n * D);

        /* feed-forward block (SwiGLU) */
        for (int r = 0; r < n; r++)
            sp_rmsnorm(e->xn + (size_t)r * D, x + (size_t)r * D, L->ffn_norm, D, c->norm_eps);
        const sp_matrix *wgu[2] = {&L->w_gate, &L->w_up};
        float *const gu[2] = {e->hb, e->hb2};
        mm_multi(e, wgu, 2, e->xn, n, n_dot, gu);
        swiglu_job sj = {e->hb, e->hb2, (size_t)n * c->ffn_dim};
        sp_pool_run(e->mm.pool, swiglu_part, &sj);
        mm(e, &L->w_down, e->hb, n, n_dot, e->xn);
        add_rows(x, e->xn, (size_t)n * D);
        if (e->progress) e->progress(e->progress_arg);
    }

    for (int i = 0; i < n; i++) memcpy(x_in + (size_t)order[i] * D, x + (size_t)i * D, D * sizeof(float));
    return 0;
}

/* The head uses the dot path for every row (unless a test forces a path):
 * logits are wanted for one row per sequence - the last prompt token or a
 * decode token - and must not depend on how many other sequences share the
 * micro-batch. */
void sp_head(sp_engine *e, const float *x, int n, float *logits)
{
    const sp_model *m = e->model;
    const sp_config *c = &m->cfg;
    for (int r = 0; r < n; r++)
        sp_rmsnorm(e->xn + (size_t)r * c->dim, x + (size_t)r * c->dim, m->out_norm, c->dim, c->norm_eps);
    mm(e, &m->output, e->xn, n, e->mm.force == SP_PATH_SGEMM ? 0 : n, logits);
}
