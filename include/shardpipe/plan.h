/* plan.h - partition plans: which MPI rank runs which contiguous range of
 * layers, and how the pipeline is batched. Schema: docs/plan-format.md.
 *
 * Validation happens in three steps, all before any weights are loaded:
 *   sp_plan_load         syntax and schema (unknown keys, types, ranges of
 *                        scalar values), every error at file:line:column;
 *   sp_plan_check_model  against the model's header: layer ranges cover
 *                        [0, n_layers-1] exactly once in order, context fits,
 *                        each stage's estimated memory fits its budget;
 *   sp_plan_check_world  against the MPI world: every rank 0..size-1 is a
 *                        stage, or rank 0 is a coordinator-only rank.
 * sp_plan_check_sha256 compares the model file's bytes with model.sha256,
 * when the plan gives one. */
#ifndef SHARDPIPE_PLAN_H
#define SHARDPIPE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"
#include "shardpipe/model.h"

#define SP_PLAN_MAX_STAGES 64
#define SP_PLAN_MAX_PREFILL 16 /* entries of batching.prefill_chunks */

/* Element type of hidden states on the wire between stages. */
typedef enum sp_wire_type {
    SP_WIRE_F32 = 0,
    SP_WIRE_F16 = 1,
    SP_WIRE_Q8_0 = 2,
} sp_wire_type;

const char *sp_wire_name(sp_wire_type w);

/* Where a value came from in the YAML file (1-based), for error messages. */
typedef struct sp_plan_loc {
    int line, col;
} sp_plan_loc;

typedef struct sp_stage_plan {
    int rank;
    char host[64];
    int first, last;         /* layer range, inclusive */
    int threads;             /* kernel threads on this rank; 0: its default
                              * (sp_default_threads, resolved on the rank) */
    char model_path[512];    /* the stage's own GGUF (a `shardpipe split` shard), resolved like
                              * model.path; "" = the plan's model_path */
    uint64_t memory_budget;  /* bytes; 0 = none given */
    double predicted_ms;     /* compute per decode micro-batch predicted by `shardpipe plan`; 0 = none */
    sp_plan_loc loc;         /* of the stage's mapping */
    sp_plan_loc loc_layers;  /* of its `layers` value */
    sp_plan_loc loc_rank;
    sp_plan_loc loc_budget;
} sp_stage_plan;

typedef struct sp_plan {
    char path[1024];          /* the plan file */
    char model_path[1024];    /* resolved: relative paths are taken from the plan's folder */
    char model_sha256[65];    /* "" when not given */
    int context;              /* positions per sequence */
    int sequences;            /* sequences in flight (KV slots on every stage) */
    int micro_batches;        /* groups the in-flight sequences are split into */
    int prefill_chunk;        /* prompt rows of a micro-batch at most (one chunk, or
                               * chunks of several of a group's prompts) */
    /* optional (`batching.prefill_chunks`, written by `shardpipe plan`):
     * a prompt whose uncached part has at least prefill_from[i] tokens (the
     * largest such i) goes in chunks of prefill_rows[i]; n_prefill = 0: in
     * chunks of prefill_chunk. prefill_from[] ascending, rows <= prefill_chunk. */
    int n_prefill;
    int prefill_from[SP_PLAN_MAX_PREFILL], prefill_rows[SP_PLAN_MAX_PREFILL];
    double predicted_tok_s;   /* steady decode tok/s predicted by `shardpipe plan`; 0 = none */
    sp_wire_type wire;
    int n_stages;             /* in pipeline order */
    sp_stage_plan stages[SP_PLAN_MAX_STAGES];
    sp_plan_loc loc_model, loc_context, loc_stages;
    sp_plan_loc loc_sha256;   /* of model.sha256's value; 0:0 when not given */
} sp_plan;

int sp_plan_load(const char *path, sp_plan *plan, sp_error *err);
int sp_plan_check_model(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg, sp_error *err);
int sp_plan_check_world(const sp_plan *plan, int world_size, sp_error *err);
/* When the plan gives model.sha256: hashes the file at plan->model_path (it
 * reads the whole file) and fails if it differs. 0 when none is given. */
int sp_plan_check_sha256(const sp_plan *plan, sp_error *err);

/* The GGUF file stage `stage` opens: its own `model:` when the plan gives
 * one (a shard written by `shardpipe split`), else the plan's model.path.
 * run/serve pass it to sp_model_open for the rank's stage. */
const char *sp_plan_stage_model(const sp_plan *plan, int stage);

/* Index of the stage run by `rank`, or -1 (a coordinator-only rank 0). */
int sp_plan_stage_of_rank(const sp_plan *plan, int rank);
/* Largest number of rows in one micro-batch under this plan. */
int sp_plan_max_rows(const sp_plan *plan);
/* Rows of each prompt chunk of a prompt whose uncached part has n tokens
 * (the plan's prefill_chunks table, else prefill_chunk). Depends on n and
 * the plan only, so a prompt's chunks (and with them the matmul path of
 * float weights) are the same whatever else is in flight. */
int sp_plan_prefill_rows(const sp_plan *plan, int n);

/* Estimated resident bytes of a stage: weights of its shard (plus embedding
 * on the first stage and head on the last), KV cache for `sequences` x
 * `context` positions, scratch for the largest micro-batch, wire buffers. */
typedef struct sp_stage_memory {
    uint64_t weights, kv_cache, scratch, wire, total;
} sp_stage_memory;
sp_stage_memory sp_plan_stage_memory(const sp_plan *plan, int stage, const sp_gguf *g, const sp_config *cfg);

/* Write a plan as YAML (atomically: PATH.tmp then rename). `stage_comments`
 * (may be NULL, else n_stages strings, each may be NULL or multi-line) are
 * written as YAML comments above each stage; `header` likewise at the top.
 * The model path is written as given in plan->model_path. */
int sp_plan_write(const sp_plan *plan, const char *path, const char *header,
                  const char *const *stage_comments, sp_error *err);

/* `shardpipe split` (split.c): checks the plan against its model, writes
 * each stage's shard as DIR/stage-K.gguf (shardfile.h; DIR is created) and
 * DIR/plan.yaml, the same plan with `model: stage-K.gguf` per stage and
 * model.path written as `model_ref` (the original, relative to DIR).
 * stage_bytes (may be NULL, else n_stages entries) gets each file's size. */
int sp_plan_split(const sp_plan *plan, const char *dir, const char *model_ref, uint64_t *stage_bytes,
                  sp_error *err);

#endif
