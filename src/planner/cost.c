/* cost.c - the cost model: board profiles + links + a model file -> the
 * seconds and bytes of a planning problem (planner.h).
 *
 * Decode is what a pipeline spends its time on, so every cost is that of a
 * decode micro-batch of r rows (one token each of r sequences):
 *
 *   matrix   W (params weights, `bytes` of data, type t): the dot path
 *            (r < 64, the engine's default crossover, see matmul.c) streams
 *            W once for all r rows; the sgemm path dequantizes W and runs
 *            sgemm. Either way the time is the larger of streaming the
 *            weights and doing the arithmetic:
 *              max(bytes / matvec_gbs[t], r x row)
 *            where row, the arithmetic of one row, is 2 params / gflops with
 *            gflops = matvec_gflops[t] on the dot path (from 8 rows on
 *            interpolated in log2(r) towards the profile's optional 32- and
 *            128-row tile figures: prompt chunks) and sgemm GFLOPS
 *            interpolated at r rows on the sgemm path. On the dot path row
 *            is at most bytes / matvec_gbs[t]: that is the measured time of
 *            a whole 1-row call, arithmetic included, so r rows never cost
 *            more than r calls of one (a profile taken on a busy machine can
 *            have an 8-row figure that says otherwise; one row then costs
 *            exactly what was measured for one row);
 *   attention per layer and row at the average position p = context / 2:
 *            read p positions of fp16 K and V (2 x p x kv_dim x 2 bytes) and
 *            do 4 x q_dim x p flops (q.k and the weighted sum of V over
 *            n_heads heads of head_dim; q_dim need not be dim), costed on
 *            the f16 matvec figures, since that is the kernel it runs;
 *   stage    its layers' matrices and attention, plus one embedding row per
 *            token on the first stage and the output matrix on the last,
 *            all times the board's measured in-run slowdown (1 unless the
 *            cluster file gives one): a board profiled alone can be slower
 *            when the others run, as they share caches, memory bandwidth
 *            or - emulated boards on one machine - the cores;
 *   hop      latency + bytes / bandwidth of the message of wire.h: a 24-byte
 *            header, 20 bytes per row and the hidden states in the wire
 *            type (the token ids going back carry no hidden states); the
 *            link is busy for bytes / bandwidth of it, as messages of other
 *            micro-batches can be under way during the latency;
 *   handoff  the cluster's measured hand-over time, added to every hop of
 *            the round trip (not to the link's busy time): what a stage
 *            waits beyond the link when the upstream one has finished - a
 *            waiting rank waking up, a CPU quota running out mid-message -
 *            and the stalls that compute jitter causes in a ring with no
 *            slack. Without it the period max(T, G x Bn) is exact only for
 *            stages that take the same time for every micro-batch, and the
 *            search favours rings whose round trip equals G x Bn, which
 *            are the ones that jitter stalls.
 *
 * Memory per stage is sp_plan_stage_memory's, split into a part per layer
 * (weights + KV cache) and a fixed part (embedding / head weights, scratch
 * and wire buffers), so the search can add them up in O(1). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "shardpipe/planner.h"
#include "shardpipe/quant.h"

#define WIRE_HEADER_BYTES 24
#define WIRE_ROW_BYTES 20

static sp_mv_type mv_type(sp_dtype t)
{
    switch (t) {
    case SP_DTYPE_Q8_0: return SP_MV_Q8_0;
    case SP_DTYPE_Q4_0: return SP_MV_Q4_0;
    case SP_DTYPE_F16: case SP_DTYPE_BF16: return SP_MV_F16;
    case SP_DTYPE_Q2_K: case SP_DTYPE_Q3_K: case SP_DTYPE_Q4_K: case SP_DTYPE_Q5_K: return SP_MV_Q4_K;
    case SP_DTYPE_Q6_K: return SP_MV_Q6_K;
    case SP_DTYPE_IQ4_NL: return SP_MV_IQ4_NL;
    default: return SP_MV_F32;
    }
}

/* sgemm GFLOPS at r rows: linear in log2(r) between the measured row counts. */
static double sgemm_at(const sp_thread_perf *perf, int r)
{
    if (r <= sp_sgemm_rows[0]) return perf->sgemm_gflops[0];
    for (int i = 1; i < SP_SGEMM_NROWS; i++) {
        if (r > sp_sgemm_rows[i]) continue;
        double a = log2(sp_sgemm_rows[i - 1]), b = log2(sp_sgemm_rows[i]), x = (log2(r) - a) / (b - a);
        return perf->sgemm_gflops[i - 1] + x * (perf->sgemm_gflops[i] - perf->sgemm_gflops[i - 1]);
    }
    return perf->sgemm_gflops[SP_SGEMM_NROWS - 1];
}

/* Dot-path GFLOPS at r rows, linear in log2(r) between the figures: one
 * row's (its arithmetic done in the time of streaming the weights once:
 * 2 params / (bytes / gbs)), the 8-row figure, then the tile figures at 32
 * and 128 rows where the profile has them (a missing one repeats the one
 * before it). Between 1 and 8 rows the weights are streamed once while
 * the tiles get fuller: the rows share the stream unevenly. */
static double dot_gflops_at(const sp_mv_perf *mv, double gflops1, int r)
{
    double x0 = 3, y0 = mv->gflops; /* log2(8) */
    if (r < 8 && gflops1 > 0 && gflops1 < y0) return gflops1 + log2(r) / 3 * (y0 - gflops1);
    if (r <= 8) return y0;
    for (int i = 0; i < SP_TILE_NROWS; i++) {
        double x1 = log2(sp_tile_rows[i]), y1 = mv->tile_gflops[i] > 0 ? mv->tile_gflops[i] : y0;
        if (r <= sp_tile_rows[i]) return y0 + (log2(r) - x0) / (x1 - x0) * (y1 - y0);
        x0 = x1;
        y0 = y1;
    }
    return y0;
}

double sp_cost_matrix_s(const sp_thread_perf *perf, sp_dtype t, uint64_t bytes, uint64_t params, int rows)
{
    const sp_mv_perf *mv = &perf->mv[mv_type(t)];
    double stream = bytes / (mv->gbs * 1e9);
    int cross = perf->sgemm_min_rows; /* the board's engine crossover, 0: never */
    if (cross > 0 && rows >= cross) return fmax(stream, 2.0 * params * rows / (sgemm_at(perf, rows) * 1e9));
    double row = fmin(2.0 * params / (dot_gflops_at(mv, 2.0 * params / stream / 1e9, rows) * 1e9), stream);
    return fmax(stream, rows * row);
}

static double tensor_s(const sp_thread_perf *perf, const sp_gguf *g, const char *name, int rows)
{
    const sp_gguf_tensor *t = sp_gguf_find_tensor(g, name);
    if (!t || t->n_dims < 2) return 0; /* norms: a few KB, noise */
    return sp_cost_matrix_s(perf, t->type, t->nbytes, t->ne[0] * t->ne[1], rows);
}

double sp_cost_layer_matrices_s(const sp_thread_perf *perf, const sp_gguf *g, int l, int rows)
{
    static const char *const mats[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                        "ffn_down"};
    double t = 0;
    char name[96];
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[i]);
        t += tensor_s(perf, g, name, rows);
    }
    return t;
}

double sp_cost_attention_s(const sp_thread_perf *perf, const sp_config *c, double pos)
{
    double kv_bytes = 2.0 * pos * c->kv_dim * sizeof(uint16_t), flops = 4.0 * c->q_dim * pos;
    if (perf->attention_gflops > 0) /* measured: the kernels, or reading the cache from memory */
        return fmax(kv_bytes / (perf->mem_read_gbs * 1e9), flops / (perf->attention_gflops * 1e9));
    /* older profiles: the f16 matvec's figures, which widen every weight
     * once per row: 2.7-3.4x attention's cost on the one board compared
     * (2-core Zen 5 VM, one thread, 18-19 against 50-64 GFLOPS) */
    const sp_mv_perf *f16 = &perf->mv[SP_MV_F16];
    return fmax(kv_bytes / (f16->gbs * 1e9), flops / (f16->gflops * 1e9));
}

static double layer_s(const sp_thread_perf *perf, const sp_gguf *g, const sp_config *c, int l, int rows,
                      int context)
{
    return sp_cost_layer_matrices_s(perf, g, l, rows) + rows * sp_cost_attention_s(perf, c, context / 2.0);
}

double sp_cost_head_s(const sp_thread_perf *perf, const sp_gguf *g, int rows)
{
    return tensor_s(perf, g, sp_gguf_find_tensor(g, "output.weight") ? "output.weight" : "token_embd.weight", rows);
}

double sp_cost_embed_row_s(const sp_thread_perf *perf, const sp_gguf *g)
{
    const sp_gguf_tensor *embd = sp_gguf_find_tensor(g, "token_embd.weight");
    return embd ? (double)embd->nbytes / (double)embd->ne[1] / (perf->mem_read_gbs * 1e9) : 0;
}

double sp_cost_wire_bytes(sp_wire_type w, int rows, int dim, bool hidden)
{
    double per = 0;
    if (hidden) {
        switch (w) {
        case SP_WIRE_F16: per = 2.0 * dim; break;
        case SP_WIRE_Q8_0: per = (double)(dim / SP_QK) * sizeof(sp_block_q8_0); break;
        default: per = 4.0 * dim; break;
        }
    }
    return WIRE_HEADER_BYTES + rows * (WIRE_ROW_BYTES + per);
}

int sp_cost_build(sp_problem *p, const sp_cluster *cl, const sp_gguf *g, const sp_config *cfg,
                  const sp_cost_options *o, sp_error *err)
{
    int n = cl->n_boards, L = cfg->n_layers;
    if (n < 1) return sp_errorf(err, "%s: the cluster has no boards; list at least one", cl->path);
    if (o->wire == SP_WIRE_Q8_0 && cfg->dim % SP_QK)
        return sp_errorf(err, "%s: wire q8_0 needs the embedding length (%d) to be a multiple of 32; use f16",
                         g->path, cfg->dim);
    sp_problem_init(p, L, n, o->sequences);
    for (int b = 0; b < n; b++) {
        snprintf(p->names[b], sizeof p->names[b], "%s", cl->boards[b].name);
        p->mem_cap[b] = cl->boards[b].memory;
    }
    for (int l = 0; l < L; l++)
        p->layer_mem[l] = sp_shard_weight_bytes(g, cfg, l, l, false, false) + sp_kv_bytes(cfg, 1, o->sequences,
                                                                                         o->context);
    for (int ci = 0; ci < p->n_cases; ci++) {
        sp_cost_case *c = &p->cases[ci];
        int r = c->rows;
        int max_rows = r > o->prefill_chunk ? r : o->prefill_chunk;
        uint64_t wire = 2ull * 2ull * (uint64_t)max_rows * (uint64_t)cfg->dim * sizeof(float);
        for (int f = 0; f < 2; f++)
            for (int h = 0; h < 2; h++)
                c->fixed_mem[f][h] = sp_shard_weight_bytes(g, cfg, 0, -1, f, h) +
                                     sp_scratch_bytes(cfg, max_rows, o->context, h) + wire;
        for (int b = 0; b < n; b++) {
            const sp_board *bd = &cl->boards[b];
            const sp_thread_perf *perf = sp_profile_perf(&bd->profile, bd->threads);
            if (!perf) {
                sp_problem_free(p);
                return sp_errorf(err, "%s: board %s has no figures for %d threads in its profile %s", cl->path,
                                 bd->name, bd->threads, bd->profile.path);
            }
            double k = bd->slowdown > 0 ? bd->slowdown : 1; /* a cluster built in code may leave it 0 */
            for (int l = 0; l < L; l++) c->layer_s[b * L + l] = k * layer_s(perf, g, cfg, l, r, o->context);
            c->head_s[b] = k * sp_cost_head_s(perf, g, r);
            /* the embedding: r rows read and dequantized */
            c->first_s[b] = k * r * sp_cost_embed_row_s(perf, g);
            for (int a = 0; a < n; a++) {
                const sp_link *lk = &cl->links[b][a];
                if (a == b) continue;
                c->hop_busy_s[b * n + a] = sp_cost_wire_bytes(o->wire, r, cfg->dim, true) / lk->bandwidth;
                c->ret_busy_s[b * n + a] = sp_cost_wire_bytes(o->wire, r, cfg->dim, false) / lk->bandwidth;
                c->hop_s[b * n + a] = cl->handoff + lk->latency + c->hop_busy_s[b * n + a];
                c->ret_s[b * n + a] = cl->handoff + lk->latency + c->ret_busy_s[b * n + a];
            }
        }
    }
    return 0;
}
