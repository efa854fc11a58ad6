/* server.h - the OpenAI-compatible HTTP front of `shardpipe serve`.
 *
 * The server owns HTTP (libmicrohttpd, one thread per connection) and JSON
 * (jansson): it authenticates and validates requests, renders chat messages
 * into a prompt, tokenizes it, and hands the coordinator a *job* through a
 * thread-safe queue. The coordinator (src/cluster/serve.c, the only place
 * with MPI) takes jobs between micro-batches, feeds their text back as it is
 * detokenized and finishes them; the connection's thread streams that text
 * out (SSE or one JSON body). No MPI here, and nothing here blocks the
 * coordinator: every call from its side takes one short mutex. */
#ifndef SHARDPIPE_SERVER_H
#define SHARDPIPE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "shardpipe/chat.h"
#include "shardpipe/error.h"
#include "shardpipe/sampler.h"
#include "shardpipe/tokenizer.h"

typedef struct sp_server sp_server;
typedef struct sp_job sp_job;

typedef struct sp_server_options {
    const char *host;       /* address to bind (default 127.0.0.1) */
    int port;               /* 0: any free port (sp_server_port says which) */
    const char *api_key;    /* NULL or "": no authentication */
    const char *model_id;   /* the name /v1/models lists and requests may give */
    int queue;              /* requests that may wait for a slot (429 beyond) */
    unsigned client_timeout_s; /* a client silent this long mid-request is dropped */
    size_t max_body;        /* bytes; a larger body gets 413 */
} sp_server_options;

/* Binds and starts answering: /health says "loading" and completions wait
 * until sp_server_ready. */
sp_server *sp_server_start(const sp_server_options *o, sp_error *err);
int sp_server_port(const sp_server *s);
/* The model is loaded on every rank: requests can be tokenized and run.
 * tok must outlive the server. chat: the model's chat template (copied), or
 * NULL for a plain "User: ... Assistant:" transcript. */
void sp_server_ready(sp_server *s, const sp_tokenizer *tok, int context, int n_slots, int n_stages,
                     const sp_chat_template *chat);
/* The supervisor's word on the pipeline (src/supervisor): available with
 * reason NULL is plain "ready"; available with a reason stays ready and
 * /health shows the reason as "note" (recovering from a failed board);
 * not available: /health "degraded" with the reason, and new requests get
 * 503 with it (the model does not fit the boards that are up), before the
 * first sp_server_ready too. */
void sp_server_status(sp_server *s, bool available, const char *reason);
/* Stop accepting completions (503, /health "degraded"); running ones go on. */
void sp_server_drain(sp_server *s);
/* Ends every job still open (their clients get an error), stops HTTP, frees. */
void sp_server_stop(sp_server *s);

/* ---- the coordinator's side ---- */

/* The next job submitted, or NULL. The coordinator holds a reference until
 * sp_job_finish. */
sp_job *sp_server_take(sp_server *s);
/* Waits up to `seconds` for a job to be submitted (the coordinator has
 * nothing to do). */
void sp_server_wait(sp_server *s, double seconds);

const int *sp_job_prompt(const sp_job *j, int *n);
int sp_job_max_new(const sp_job *j);
sp_sampler_params sp_job_sampling(const sp_job *j);
/* The client went away, or a stop string ended the answer: free the slot. */
bool sp_job_cancelled(const sp_job *j);
/* More detokenized text of the answer. */
void sp_job_text(sp_job *j, const char *text, int len);
/* Ends a job with an error whose message is `reason` (503 to its client,
 * or an error event on its stream). */
void sp_job_fail(sp_job *j, const char *reason);
/* How a job ended, as the coordinator saw it. */
enum { SP_JOB_EOS = 1, SP_JOB_LENGTH, SP_JOB_CANCELLED, SP_JOB_ABORTED };
/* The last call for a job (drops the coordinator's reference): n_out tokens
 * generated at times t_out (sp_now()), n_cached prompt tokens taken from the
 * prompt cache. */
void sp_job_finish(sp_job *j, int how, int n_out, const double *t_out, int n_cached);

/* Gauges for /metrics: requests in slots and waiting, and each stage's
 * compute seconds so far over `wall` seconds of serving. */
void sp_server_note(sp_server *s, int running, int waiting, const double *stage_busy, int n_stages, double wall);

/* ---- the built-in page ---- */

/* The page served at GET / (one static HTML file compiled into the binary),
 * or NULL for none (then / answers 404). src/server/page.c. */
const char *sp_server_index_page(void);

#endif
