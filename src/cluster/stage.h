/* stage.h - one pipeline stage: a shard of the model and the work done on
 * each micro-batch (embed or decode hidden states, run the layers, then
 * encode them for the next stage or, on the last stage, sample). */
#ifndef SHARDPIPE_CLUSTER_STAGE_H
#define SHARDPIPE_CLUSTER_STAGE_H

#include <stdbool.h>
#include <stdio.h>

#include "shardpipe/model.h"
#include "shardpipe/plan.h"
#include "shardpipe/sampler.h"
#include "wire.h"

typedef struct sp_stage {
    const sp_plan *plan;
    int index;
    bool first, last;
    sp_model *model;
    sp_engine *engine;
    int dim, n_vocab, max_rows;
    float *hidden;          /* max_rows x dim */
    float *head_in;         /* last stage: hidden rows that need logits */
    float *logits;          /* last stage: max_rows x n_vocab */
    int *tokens;            /* first stage: token ids of the batch */
    int *seq, *pos;
    sp_sampler *samplers;   /* last stage: one per sequence slot */
    bool *sampler_ready;
    FILE *logits_out;       /* tests: every sampled row's logits */
} sp_stage;

/* Binds the stage's shard of the model (tensors are only mapped, not read)
 * and allocates its engine. */
int sp_stage_open(sp_stage *s, const sp_plan *plan, int index, const char *logits_out, sp_error *err);
void sp_stage_close(sp_stage *s);

/* Processes one BATCH message `in`. On a middle stage writes the outgoing
 * BATCH message (same header and rows, new hidden states) into `out`; on the
 * last stage writes a TOKENS message with one row per sampled token. Returns
 * the number of bytes written to out, or -1. */
long sp_stage_step(sp_stage *s, const void *in, void *out, sp_error *err);

#endif
