/* sched.h - the coordinator's scheduler: requests (prompts) wait for a KV
 * slot, slots are split into groups, and each group has at most one
 * micro-batch in the pipeline at a time. A group's next micro-batch carries,
 * for each of its sequences, either the next prompt chunk (prefill) or the
 * token sampled last (decode), so prefill and decode of different sequences
 * share micro-batches and the pipeline stays full. A long prompt's chunks
 * need no answer from the pipeline, so while a group's micro-batch is in
 * flight its prompts keep sending their next chunks (up to `depth`
 * micro-batches per group, the number of stages): prefill pipelines too. */
#ifndef SHARDPIPE_CLUSTER_SCHED_H
#define SHARDPIPE_CLUSTER_SCHED_H

#include <stdbool.h>
#include <stdio.h>

#include "shardpipe/error.h"
#include "shardpipe/tokenizer.h"
#include "wire.h"

typedef struct sp_request {
    char *prompt_text;
    int *prompt;
    int n_prompt;
    int *out;          /* sampled tokens (EOS included when it ended the sequence) */
    double *t_out;     /* when each of out[] reached the coordinator (sp_now()
                        * on rank 0); like out, max_new entries allocated once */
    int n_out, max_new;
    int n_fed;         /* prompt tokens sent into the pipeline */
    int slot;          /* -1 while waiting or done */
    bool done;
    double t_admit, t_first, t_done; /* t_first = t_out[0], t_done = t_out[n_out - 1] */
    char *text;        /* detokenized output */
    size_t len, cap;
    sp_detok dt;
} sp_request;

typedef struct sp_sched {
    sp_request *reqs;
    int n_reqs, next_pending, n_done;
    int n_slots, n_groups, max_rows, chunk;
    int *slot_req;     /* request in each slot, -1 if free */
    int *group_inflight; /* micro-batches of each group in the pipeline */
    int depth;           /* at most this many per group (the stage count) */
    int *group_rr;     /* round-robin start within the group */
    int eos;           /* without a tokenizer: the file's EOS id (-1: none) */
    bool ignore_eos;
    const sp_tokenizer *tok; /* NULL when every prompt came as ids */
    FILE *stream;      /* text of request 0 streamed here, or NULL */
    long generated;
} sp_sched;

/* Reads prompts: either one prompt or a JSONL file with a "prompt" string
 * or a "prompt_tokens" array of ids per line. Tokenizes the text ones (tok
 * may be NULL when every prompt is ids; s->eos is then -1 for the caller to
 * set) and checks each fits the context. */
int sp_sched_init(sp_sched *s, const sp_tokenizer *tok, const char *prompt, const char *prompts_file,
                  int n_tokens, int context, int n_slots, int n_groups, int max_rows, int chunk, int depth,
                  bool ignore_eos, sp_error *err);
void sp_sched_free(sp_sched *s);

/* Builds the next micro-batch of group g into rows; returns the row count
 * (0: the group has nothing to send now). While the group has micro-batches
 * in flight only further prompt chunks can go. */
int sp_sched_build(sp_sched *s, int g, sp_wire_row *rows, double now);
/* Takes the tokens sampled for a micro-batch of group g. */
void sp_sched_tokens(sp_sched *s, int g, const sp_wire_row *rows, int n, double now);
bool sp_sched_finished(const sp_sched *s);

/* Results in input order as JSONL; atomically when path is a file. */
int sp_sched_write_jsonl(const sp_sched *s, const char *path, double t_start, sp_error *err);
int sp_sched_write_tokens(const sp_sched *s, const char *path, sp_error *err);

#endif
