/* wire.h - the messages that flow through the pipeline.
 *
 * One message per micro-batch: a header, one sp_wire_row per token row, and
 * (between stages) the rows' hidden states in the plan's wire type. The same
 * header and rows travel from the coordinator through every stage, so each
 * stage knows every row's sequence slot and position without other state,
 * and the last stage sends back rows carrying the sampled token ids. */
#ifndef SHARDPIPE_CLUSTER_WIRE_H
#define SHARDPIPE_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "shardpipe/plan.h"

enum { SP_TAG_PIPE = 10, SP_TAG_TOKENS = 11, SP_TAG_SHIP = 12 /* ship.c: shards to boards */ };
enum { SP_MSG_BATCH = 1, SP_MSG_STOP = 2, SP_MSG_TOKENS = 3 };

#define SP_ROW_PROMPT 1u  /* a prompt token: the sampler remembers it */
#define SP_ROW_LOGITS 2u  /* sample the next token after this row */
#define SP_ROW_START 4u   /* the first row of a request in its slot: the last
                           * stage starts the slot's sampler from `sampling` */

/* A request's sampling parameters, filled on its START row only: each
 * request brings its own (a server's requests differ), and the last stage
 * needs them before the first token it samples. */
typedef struct sp_wire_sampling {
    float temperature, top_p, min_p, repeat_penalty;
    int32_t top_k, repeat_last_n;
    uint32_t seed_lo, seed_hi;
} sp_wire_sampling;

typedef struct sp_wire_row {
    int32_t req;     /* request id (the input index in `run`) */
    int32_t seq;     /* KV cache slot */
    int32_t pos;     /* position in its sequence */
    int32_t token;   /* token fed at pos; in a TOKENS message: the sampled one */
    uint32_t flags;
    sp_wire_sampling sampling; /* START rows */
} sp_wire_row;

typedef struct sp_wire_header {
    uint32_t magic;
    int32_t kind;     /* SP_MSG_* */
    int32_t mb_id;    /* micro-batch number, for traces */
    int32_t group;    /* scheduling group of the coordinator */
    int32_t n_rows;
    int32_t has_hidden;
    float stage_s[8]; /* compute seconds of stages 0..7 on this micro-batch
                       * (each writes its own; they come back with the
                       * tokens: a server's busy fraction per stage) */
} sp_wire_header;

#define SP_WIRE_MAGIC 0x53504d42u /* "SPMB" */

/* Bytes of the hidden states of n rows of dim floats in wire type w. */
size_t sp_wire_hidden_bytes(sp_wire_type w, int n, int dim);
/* Bytes of a whole message with n rows (hidden states when has_hidden). */
size_t sp_wire_msg_bytes(sp_wire_type w, int n, int dim, int has_hidden);

static inline sp_wire_row *sp_wire_rows(void *msg) { return (sp_wire_row *)((char *)msg + sizeof(sp_wire_header)); }
static inline void *sp_wire_hidden(void *msg, int n)
{
    return (char *)msg + sizeof(sp_wire_header) + (size_t)n * sizeof(sp_wire_row);
}

/* f32 hidden states <-> wire type. q8_0 needs dim % 32 == 0. */
void sp_wire_encode(sp_wire_type w, const float *x, int n, int dim, void *out);
void sp_wire_decode(sp_wire_type w, const void *in, int n, int dim, float *x);

#endif
