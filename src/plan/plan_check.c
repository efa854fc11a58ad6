/* plan_check.c - the checks of a loaded plan against the model's header and
 * against the MPI world, and the per-stage memory estimate they rely on; and
 * the model file against the plan's model.sha256. Nothing here loads
 * weights: a plan is judged before anything is loaded (only the checksum
 * streams through the file's bytes). */
#include "shardpipe/plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shardpipe/sha256.h"

int sp_plan_stage_of_rank(const sp_plan *plan, int rank)
{
    for (int i = 0; i < plan->n_stages; i++)
        if (plan->stages[i].rank == rank) return i;
    return -1;
}

int sp_plan_max_rows(const sp_plan *plan)
{
    /* decode: each micro-batch carries ceil(sequences / micro_batches) rows,
     * one token per sequence; prefill: up to prefill_chunk prompt tokens */
    int decode_rows = (plan->sequences + plan->micro_batches - 1) / plan->micro_batches;
    return plan->prefill_chunk > decode_rows ? plan->prefill_chunk : decode_rows;
}

int sp_plan_prefill_rows(const sp_plan *plan, int n)
{
    int rows = plan->prefill_chunk;
    for (int i = 0; i < plan->n_prefill && plan->prefill_from[i] <= n; i++) rows = plan->prefill_rows[i];
    return rows;
}

sp_stage_memory sp_plan_stage_memory(const sp_plan *plan, int stage, const sp_gguf *g, const sp_config *cfg)
{
    const sp_stage_plan *st = &plan->stages[stage];
    bool is_first = stage == 0, is_last = stage == plan->n_stages - 1;
    int rows = sp_plan_max_rows(plan);
    sp_stage_memory m;
    m.weights = sp_shard_weight_bytes(g, cfg, st->first, st->last, is_first, is_last);
    m.kv_cache = sp_kv_bytes(cfg, st->last - st->first + 1, plan->sequences, plan->context);
    m.scratch = sp_scratch_bytes(cfg, rows, plan->context, is_last);
    /* hidden states in and out, each double buffered so that the next
     * micro-batch can arrive while this one is computed; sized for f32 */
    m.wire = 2ull * 2ull * (uint64_t)rows * (uint64_t)cfg->dim * sizeof(float);
    m.total = sp_sat_add(sp_sat_add(m.weights, m.kv_cache), sp_sat_add(m.scratch, m.wire));
    return m;
}

/* "PLAN:LINE:COL: message". Returns -1. */
static int fail_at(sp_error *err, const sp_plan *plan, sp_plan_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(sp_error *err, const sp_plan *plan, sp_plan_loc loc, const char *fmt, ...)
{
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sp_errorf(err, "%s:%d:%d: %s", plan->path, loc.line, loc.col, msg);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "stage 2 (rank 2, host pi4)" */
static const char *stage_name(const sp_plan *plan, int i, char *buf, size_t size)
{
    snprintf(buf, size, "stage %d (rank %d, host %s)", i, plan->stages[i].rank, plan->stages[i].host);
    return buf;
}

/* The binary unit that shows `bytes` with a few significant digits. */
static void pick_unit(uint64_t bytes, double *scale, const char **name)
{
    if (bytes >= (1ull << 30)) *scale = (double)(1ull << 30), *name = "GiB";
    else if (bytes >= (1ull << 20)) *scale = (double)(1ull << 20), *name = "MiB";
    else *scale = 1024.0, *name = "KiB";
}

static int check_budget(const sp_plan *plan, int i, const sp_gguf *g, const sp_config *cfg, sp_error *err)
{
    const sp_stage_plan *st = &plan->stages[i];
    sp_stage_memory m = sp_plan_stage_memory(plan, i, g, cfg);
    char who[96];
    if (m.total == UINT64_MAX)
        return fail_at(err, plan, plan->loc_context,
                       "%s: the memory it needs overflows 64 bits (KV cache: %d layers x %d sequences x %d "
                       "positions x %d KV values x 2 (K, V) x 2 bytes; dim %d, ffn %d, vocab %d); lower context "
                       "or sequences",
                       stage_name(plan, i, who, sizeof who), st->last - st->first + 1, plan->sequences,
                       plan->context, cfg->kv_dim, cfg->dim, cfg->ffn_dim, cfg->n_vocab);
    if (!st->memory_budget) return 0;
    if (m.total <= st->memory_budget) return 0;
    double s;
    const char *u;
    pick_unit(m.total > st->memory_budget ? m.total : st->memory_budget, &s, &u);
    return fail_at(err, plan, st->loc_budget,
                   "%s: needs %.2f %s (weights %.2f + KV cache %.2f + buffers %.2f) but its budget is %.2f %s; "
                   "give it fewer layers, lower context or sequences, or raise memory",
                   stage_name(plan, i, who, sizeof who), m.total / s, u, m.weights / s, m.kv_cache / s,
                   (m.scratch + m.wire) / s, st->memory_budget / s, u);
}

int sp_plan_check_model(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg, sp_error *err)
{
    const char *model = base_name(g ? g->path : plan->model_path);
    int n = cfg->n_layers;
    char who[96], who2[96];
    if (plan->n_stages < 1 || plan->n_stages > SP_PLAN_MAX_STAGES)
        return fail_at(err, plan, plan->loc_stages, "plan has %d stages; give it 1 to %d", plan->n_stages,
                       SP_PLAN_MAX_STAGES);

    if (plan->context < 1 || plan->context > cfg->ctx_train)
        return fail_at(err, plan, plan->loc_context,
                       "context %d is outside 1..%d, the context_length of %s; set context to at most %d",
                       plan->context, cfg->ctx_train, model, cfg->ctx_train);

    /* every stage inside the model */
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i];
        if (st->last > n - 1)
            return fail_at(err, plan, st->loc_layers,
                           "%s: layers [%d, %d] go past layer %d, the last of the %d layers (n_layers) of %s; "
                           "end this stage at layer %d at most",
                           stage_name(plan, i, who, sizeof who), st->first, st->last, n - 1, n, model, n - 1);
    }

    /* pipeline order first, so that swapped stages are not reported as a gap */
    for (int i = 1; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i], *prev = &plan->stages[i - 1];
        if (st->first < prev->first)
            return fail_at(err, plan, st->loc_layers,
                           "stages are out of order: stage %d (layers [%d, %d]) comes after stage %d (layers "
                           "[%d, %d]); list the stages in pipeline order, lowest layers first",
                           i, st->first, st->last, i - 1, prev->first, prev->last);
    }

    /* consecutive stages: each starts right after the previous one ends */
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i];
        int expected = i == 0 ? 0 : plan->stages[i - 1].last + 1;
        if (st->first > expected) {
            if (i == 0)
                return fail_at(err, plan, st->loc_layers,
                               "layers 0..%d are in no stage: stage 0 starts at %d; start it at layer 0",
                               st->first - 1, st->first);
            return fail_at(err, plan, st->loc_layers,
                           "layers %d..%d are in no stage: stage %d ends at %d and stage %d starts at %d; extend "
                           "one of them to cover the gap",
                           expected, st->first - 1, i - 1, expected - 1, i, st->first);
        }
        if (st->first < expected) {
            const sp_stage_plan *prev = &plan->stages[i - 1];
            int end = st->last < prev->last ? st->last : prev->last;
            return fail_at(err, plan, st->loc_layers,
                           "layers %d..%d are in both %s and %s; start stage %d at layer %d", st->first, end,
                           stage_name(plan, i - 1, who, sizeof who), stage_name(plan, i, who2, sizeof who2), i,
                           prev->last + 1);
        }
    }
    const sp_stage_plan *tail = &plan->stages[plan->n_stages - 1];
    if (tail->last < n - 1)
        return fail_at(err, plan, tail->loc_layers,
                       "layers %d..%d are in no stage: the last stage (%d) ends at %d but %s has %d layers "
                       "(n_layers); end it at layer %d",
                       tail->last + 1, n - 1, plan->n_stages - 1, tail->last, model, n, n - 1);

    for (int i = 0; i < plan->n_stages; i++)
        if (check_budget(plan, i, g, cfg, err)) return -1;
    return 0;
}

/* "0,1,2" from the ranks in [lo, hi] that are (want = true) or are not
 * (want = false) a stage's rank. */
static void rank_list(const sp_plan *plan, int lo, int hi, bool want, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int r = lo; r <= hi && len + 16 < size; r++)
        if ((sp_plan_stage_of_rank(plan, r) >= 0) == want)
            len += (size_t)snprintf(buf + len, size - len, "%s%d", len ? "," : "", r);
}

int sp_plan_check_world(const sp_plan *plan, int world_size, sp_error *err)
{
    int max_rank = 0;
    for (int i = 0; i < plan->n_stages; i++)
        if (plan->stages[i].rank > max_rank) max_rank = plan->stages[i].rank;
    bool coordinator_only = sp_plan_stage_of_rank(plan, 0) < 0;
    int lo = coordinator_only ? 1 : 0;
    char ranks[512], missing[512];
    rank_list(plan, lo, max_rank, true, ranks, sizeof ranks);
    rank_list(plan, lo, max_rank, false, missing, sizeof missing);
    const char *coord = coordinator_only ? " (rank 0 coordinates only)" : "";

    if (missing[0])
        return fail_at(err, plan, plan->loc_stages,
                       "plan has %d stage%s on ranks %s%s but none on rank%s %s; number the stages' ranks "
                       "0..N-1 (or 1..N-1 with a coordinator-only rank 0) without gaps",
                       plan->n_stages, plan->n_stages == 1 ? "" : "s", ranks, coord, strchr(missing, ',') ? "s" : "",
                       missing);
    int needed = max_rank + 1;
    if (world_size > needed) {
        char extra[64];
        if (world_size == needed + 1) snprintf(extra, sizeof extra, "a stage for rank %d", needed);
        else snprintf(extra, sizeof extra, "stages for ranks %d..%d", needed, world_size - 1);
        return fail_at(err, plan, plan->loc_stages,
                       "plan has %d stage%s on ranks %s%s but mpiexec started %d ranks; run with -n %d or add %s",
                       plan->n_stages, plan->n_stages == 1 ? "" : "s", ranks, coord, world_size, needed, extra);
    }
    if (world_size < needed)
        return fail_at(err, plan, plan->loc_stages,
                       "plan has %d stage%s on ranks %s%s but mpiexec started %d rank%s; run with -n %d",
                       plan->n_stages, plan->n_stages == 1 ? "" : "s", ranks, coord, world_size,
                       world_size == 1 ? "" : "s", needed);
    return 0;
}

int sp_plan_check_sha256(const sp_plan *plan, sp_error *err)
{
    if (!plan->model_sha256[0]) return 0;
    char got[65];
    if (sp_sha256_file(plan->model_path, got, err))
        return sp_error_prefix(err, "%s:%d:%d: ", plan->path, plan->loc_sha256.line, plan->loc_sha256.col);
    if (strcmp(got, plan->model_sha256))
        return fail_at(err, plan, plan->loc_sha256,
                       "model %s has sha256 %s, but the plan expects %s; the file differs from the one the plan "
                       "was made for (re-download it, or update or remove model.sha256)",
                       plan->model_path, got, plan->model_sha256);
    return 0;
}
