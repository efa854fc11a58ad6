/* internal.h - what the files of src/server share: the server, the job
 * (one completion request between the HTTP thread that took it and the
 * coordinator that runs it), the metrics, and the helpers that turn JSON
 * requests into jobs and jobs into OpenAI-shaped answers. */
#ifndef SHARDPIPE_SERVER_INTERNAL_H
#define SHARDPIPE_SERVER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "shardpipe/server.h"

#define SP_MAX_STOPS 8

struct sp_job {
    /* set before submission, read-only after */
    int *prompt, n_prompt, max_new;
    sp_sampler_params sampling;
    bool chat, stream, include_usage;
    bool templated;      /* rendered by the model's template: parse its special tokens */
    char *stops[SP_MAX_STOPS];
    int n_stops;
    char id[48];
    long created;
    double t_submit;
    sp_server *srv;
    /* the channel, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text;          /* the answer's text so far */
    size_t len, cap;
    int how;             /* SP_JOB_* once finished, 0 before */
    int n_out, n_cached;
    char fail[400];      /* why it was aborted (sp_job_fail), or "" */
    atomic_int cancelled;
    int refs;            /* the HTTP side, and the coordinator once submitted */
    sp_job *next;        /* in the server's queue */
};

/* ---- metrics ---- */

#define SP_HIST_BUCKETS 14
typedef struct sp_hist {
    double sum;
    long count, bucket[SP_HIST_BUCKETS]; /* cumulative at render time */
} sp_hist;

typedef struct sp_metrics {
    pthread_mutex_t mu;
    struct { char endpoint[24]; int code; long n; } req[48];
    int n_req;
    long prompt_tokens, cached_tokens, generated_tokens;
    int running, waiting, n_stages;
    double stage_busy[8], wall;
    sp_hist ttft, tpot;
} sp_metrics;

void sp_metrics_init(sp_metrics *m);
void sp_metrics_request(sp_metrics *m, const char *endpoint, int code);
void sp_metrics_job(sp_metrics *m, const sp_job *j, const double *t_out, int n_out);
char *sp_metrics_render(sp_metrics *m, int queue_len); /* Prometheus text, malloc'ed */

/* ---- the server ---- */

enum { SP_SRV_LOADING, SP_SRV_READY, SP_SRV_DRAINING, SP_SRV_UNAVAILABLE };

struct sp_server {
    sp_server_options o;
    char host[256], model_id[256], api_key[512];
    struct MHD_Daemon *daemon;
    int port;
    /* model, set by sp_server_ready */
    const sp_tokenizer *tok;
    int context, n_slots, n_stages;
    bool has_chat;       /* the model's template, else the plain transcript */
    sp_chat_template chat;
    /* jobs: the queue the coordinator takes from, and the count of jobs
     * submitted and not finished (the bound on waiting requests) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sp_job *head, *tail;
    int active;
    int answering;       /* connections writing a job's answer */
    int state;
    sp_job **open;       /* every submitted, unfinished job (for stop) */
    int n_open, cap_open;
    atomic_long next_id;
    char reason[400];    /* sp_server_status: why unavailable, or a note */
    sp_metrics metrics;
};

/* Submits a job (the HTTP thread keeps its reference). Returns 0, or the
 * HTTP status that refuses it: 429 when the queue is full, 503 while
 * loading or draining. */
int sp_server_submit(sp_server *s, sp_job *j);
/* Drops one reference (the HTTP side's or the coordinator's). */
void sp_job_release(sp_job *j);

/* ---- requests ---- */

/* An API error: status, OpenAI's type and code, the parameter, a message. */
typedef struct sp_api_error {
    int status;
    const char *type, *code;
    char param[64];
    char message[512];
} sp_api_error;

/* {"error": {"message", "type", "param", "code"}} as text, malloc'ed. */
char *sp_api_error_json(const sp_api_error *e);
int sp_api_fail(sp_api_error *e, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Parses and validates a completion request body into a new job (chat:
 * /v1/chat/completions, else /v1/completions). Returns NULL with e set. */
sp_job *sp_api_parse(sp_server *s, const char *body, size_t len, bool chat, sp_api_error *e);

/* The plain transcript for models without a chat template (transcript.c).
 * Messages are {role, content} pairs. */
typedef struct sp_srv_msg {
    const char *role, *content;
} sp_srv_msg;
char *sp_srv_render_chat(const sp_srv_msg *m, int n);
/* Stop strings the rendering implies (the next turn's header), NULL-ended. */
const char *const *sp_srv_chat_stops(void);

/* ---- answers ---- */

/* How much of text[0..len) may go out, given stop strings: up to the first
 * stop string (*hit set), or all but a tail that could still grow into one
 * (unless final). from: bytes already released. */
size_t sp_stop_scan(const char *text, size_t len, size_t from, char *const *stops, int n_stops, bool final,
                    bool *hit);

/* JSON texts of the answer (malloc'ed, no trailing newline). */
char *sp_answer_chunk(const sp_job *j, const char *text, size_t len, const char *finish, bool first);
char *sp_answer_usage_chunk(const sp_job *j);
char *sp_answer_full(const sp_job *j, const char *text, size_t len, const char *finish);

#endif
