/* sched.h - the coordinator's scheduler: requests (prompts) wait for a KV
 * slot, slots are split into groups, and each group has at most one
 * micro-batch in the pipeline at a time. A group's next micro-batch carries,
 * for each of its sequences, either the next prompt chunk (prefill) or the
 * token sampled last (decode), so prefill and decode of different sequences
 * share micro-batches and the pipeline stays full. A long prompt's chunks
 * need no answer from the pipeline, so while a group's micro-batch is in
 * flight its prompts keep sending their next chunks (up to `depth`
 * micro-batches per group, the number of stages + 1): prefill pipelines
 * too. How many rows a prompt's chunks have the plan says per prompt length
 * (`shardpipe plan` picks them: short prompts in small chunks, which fill
 * the pipeline sooner, long ones in larger chunks, which run the matmul
 * tiles faster).
 *
 * Requests come either all at once (`run`: the prompts file) or one by one
 * while the pipeline runs (`serve`: sp_sched_add). Waiting requests take a
 * free slot between micro-batches, first come first served. Each slot
 * remembers the tokens whose keys and values its KV cache holds; a request
 * takes the free slot whose cache shares the longest prefix with its prompt
 * and feeds only the rest (the next turn of a chat re-sends the whole
 * conversation). */
#ifndef SHARDPIPE_CLUSTER_SCHED_H
#define SHARDPIPE_CLUSTER_SCHED_H

#include <stdbool.h>
#include <stdio.h>

#include "shardpipe/error.h"
#include "shardpipe/plan.h"
#include "shardpipe/sampler.h"
#include "shardpipe/tokenizer.h"
#include "wire.h"

enum { SP_FINISH_NONE = 0, SP_FINISH_EOS, SP_FINISH_LENGTH, SP_FINISH_CANCELLED };

typedef struct sp_request {
    int id;            /* on the wire (row.req); `run`: the input index */
    char *prompt_text;
    int *prompt;
    int n_prompt;
    int *out;          /* sampled tokens (EOS included when it ended the sequence) */
    double *t_out;     /* when each of out[] reached the coordinator (sp_now()
                        * on rank 0); like out, max_new entries allocated once */
    int n_out, max_new;
    int n_fed;         /* prompt tokens sent into the pipeline (from n_cached on) */
    int chunk;         /* rows of each of its prompt chunks, fixed when it takes a slot */
    int n_cached;      /* prompt tokens whose KV the slot already held */
    int slot;          /* -1 while waiting or done */
    bool started;      /* its START row has gone */
    bool done;
    int finish;        /* SP_FINISH_* once done */
    sp_sampler_params sampling;
    void *client;      /* serve: the HTTP side's job */
    double t_admit, t_first, t_done; /* t_first = t_out[0], t_done = t_out[n_out - 1] */
    char *text;        /* detokenized output */
    size_t len, cap;
    sp_detok dt;
} sp_request;

typedef struct sp_sched sp_sched;
/* Called as each request's text grows (len > 0) and once when it is done
 * (done = true, r->finish set); the request may be freed by the callee then. */
typedef void (*sp_sched_event)(void *arg, sp_sched *s, sp_request *r, const char *text, int len, bool done);

struct sp_sched {
    sp_request *reqs;  /* `run`: every request, in input order */
    int n_reqs, n_done;
    sp_request **pending; /* waiting for a slot, oldest first (a ring) */
    int p_head, p_len, p_cap;
    int n_slots, n_groups, max_rows, chunk, context;
    sp_request **slot_req; /* request in each slot, NULL if free */
    int **slot_cache;  /* tokens whose KV each slot holds, at positions 0.. */
    int *slot_cache_len;
    bool prompt_cache; /* reuse the slots' KV (serve) */
    long cache_reused; /* prompt tokens not fed again thanks to the cache */
    long prompt_fed;   /* prompt tokens fed */
    int *group_inflight; /* micro-batches of each group in the pipeline */
    int depth;           /* at most this many per group (the stage count + 1: one
                          * chunk per stage, and one more on the way back or
                          * waiting, so that a hand-over's delay leaves no
                          * stage without work) */
    const sp_plan *plan; /* or NULL: each prompt's chunk rows (sp_plan_prefill_rows);
                          * NULL: chunk for every prompt */
    int *group_rr;     /* round-robin start within the group */
    int eos;           /* without a tokenizer: the file's EOS id (-1: none) */
    bool ignore_eos;
    int stop_ids[4];   /* serve: the chat template's end-of-turn tokens */
    int n_stop_ids;
    const sp_tokenizer *tok; /* NULL when every prompt came as ids */
    FILE *stream;      /* text of request 0 streamed here, or NULL */
    long generated;
    long returned;     /* micro-batches back from the pipeline: progress, prefill included */
    sp_sched_event on_event; /* or NULL */
    /* or NULL: every sampled token as it arrives (eos: it ends the request
     * and has no text); serve --worker sends them to its supervisor */
    void (*on_token)(void *arg, sp_request *r, int token, bool eos);
    void *event_arg;
};

/* Reads prompts: either one prompt or a JSONL file with a "prompt" string
 * or a "prompt_tokens" array of ids per line. Tokenizes the text ones (tok
 * may be NULL when every prompt is ids; s->eos is then -1 for the caller to
 * set) and checks each fits the context. */
int sp_sched_init(sp_sched *s, const sp_tokenizer *tok, const char *prompt, const char *prompts_file,
                  int n_tokens, int context, int n_slots, int n_groups, int max_rows, int chunk, int depth,
                  bool ignore_eos, const sp_sampler_params *sampling, sp_error *err);
/* An empty scheduler for requests that arrive later (sp_sched_add). */
void sp_sched_init_empty(sp_sched *s, const sp_tokenizer *tok, int context, int n_slots, int n_groups,
                         int max_rows, int chunk, int depth, int queue_cap);
void sp_sched_free(sp_sched *s);

/* Queues a request (tokens copied; 1 <= n_prompt, n_prompt + max_new <=
 * context, checked by the caller). Returns it, owned by the caller, who
 * frees it with sp_request_free after its done event; NULL when the queue
 * is full. */
sp_request *sp_sched_add(sp_sched *s, const int *prompt, int n_prompt, int max_new, const sp_sampler_params *p,
                         void *client);
void sp_request_free(sp_request *r);
/* Ends a waiting or running request now (its slot is free for the next
 * micro-batch; rows still in flight are dropped when they come back). */
void sp_sched_cancel(sp_sched *s, sp_request *r, double now);
/* Requests in slots, and waiting. */
int sp_sched_running(const sp_sched *s);

/* Builds the next micro-batch of group g into rows; returns the row count
 * (0: the group has nothing to send now). While the group has micro-batches
 * in flight only further prompt chunks can go. */
int sp_sched_build(sp_sched *s, int g, sp_wire_row *rows, double now);
/* Takes the tokens sampled for a micro-batch of group g. */
void sp_sched_tokens(sp_sched *s, int g, const sp_wire_row *rows, int n, double now);
bool sp_sched_finished(const sp_sched *s);

/* One request's result as a JSONL line (with its input index). */
void sp_sched_result_line(FILE *f, const sp_request *r, double t_start);
/* The finished requests' results in input order as JSONL; atomically when
 * path is a file (on stdout they went out as they finished: nothing left). */
int sp_sched_write_jsonl(const sp_sched *s, const char *path, double t_start, sp_error *err);
int sp_sched_write_tokens(const sp_sched *s, const char *path, sp_error *err);

#endif
