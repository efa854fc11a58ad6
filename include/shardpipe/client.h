/* client.h - the HTTP client of `shardpipe chat`: a conversation kept on the
 * client side, sent to an OpenAI-compatible server (POST
 * /v1/chat/completions with stream: true) and streamed back over SSE.
 * libcurl and jansson; no MPI, nothing of the engine. */
#ifndef SHARDPIPE_CLIENT_H
#define SHARDPIPE_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "shardpipe/error.h"

/* --- SSE (text/event-stream) parsing, incremental ---------------------
 * Feed bytes as they arrive, split anywhere (even inside a \r\n); each event
 * (the data: lines before a blank line, joined by \n) goes to on_event.
 * Comments (":..."), and event:/id:/retry: fields are read and dropped. */
typedef int (*sp_sse_event_fn)(void *ud, const char *data, size_t len); /* non-zero stops */
typedef struct sp_sse {
    char *line, *data;
    size_t line_len, line_cap, data_len, data_cap;
    int has_data, after_cr, stopped;
    sp_sse_event_fn on_event;
    void *ud;
} sp_sse;
void sp_sse_init(sp_sse *s, sp_sse_event_fn on_event, void *ud);
/* Returns the first non-zero value on_event returned (later bytes are
 * ignored from then on), else 0. */
int sp_sse_feed(sp_sse *s, const char *bytes, size_t n);
void sp_sse_free(sp_sse *s);

/* --- the client ------------------------------------------------------- */
typedef struct sp_client sp_client;

/* Sampling settings sent with each request; unset ones are left to the
 * server's defaults. */
typedef struct sp_client_params {
    double temperature; /* < 0: unset */
    int64_t seed;       /* < 0: unset */
    int max_tokens;     /* <= 0: unset */
} sp_client_params;

typedef enum sp_client_status {
    SP_CLIENT_OK = 0,       /* the answer ended (finish_reason stop or length) */
    SP_CLIENT_STOPPED = 1,  /* *stop became non-zero: the connection was closed */
    SP_CLIENT_ERROR = -1,   /* err says what: connection, HTTP status, stream */
} sp_client_status;

typedef struct sp_client_answer {
    char finish_reason[16]; /* "stop", "length", or "" when stopped */
    int http_status;        /* 0 when no HTTP answer came */
    char error_code[40];    /* of a non-2xx answer: OpenAI's error.code and */
    char error_param[24];   /* error.param ("" when absent) */
    int chunks;             /* content pieces received */
    double ttft_s, total_s; /* time to the first piece, to the end */
} sp_client_answer;

/* url: "http://HOST:PORT" (a trailing / is fine); api_key may be NULL. */
sp_client *sp_client_new(const char *url, const char *api_key, sp_error *err);
void sp_client_free(sp_client *c);
const char *sp_client_url(const sp_client *c);

/* GET /v1/models: proves the server answers (and takes the key) before the
 * user types, and learns the model to name in requests (a server that lists
 * none still gets requests, without "model"). sp_client_ask calls it first
 * when it has not succeeded yet. */
int sp_client_connect(sp_client *c, volatile sig_atomic_t *stop, sp_error *err);
const char *sp_client_model(const sp_client *c); /* NULL when none is known */

/* The system prompt (NULL or "" removes it) and the turns so far. */
void sp_client_set_system(sp_client *c, const char *text);
void sp_client_reset(sp_client *c); /* forgets the turns, keeps the system prompt */
int sp_client_turns(const sp_client *c);

/* Sends the conversation plus `user`, calls on_text for each piece of the
 * answer as it arrives. On OK the turn and its answer join the history; on
 * STOPPED the question and the part shown join it when some was shown (the
 * next turn continues from what the user saw); on ERROR the history is
 * unchanged. `stop` (may be
 * NULL) is polled every 50 ms: set it from a signal handler to close the
 * stream, so the server frees the sequence's slot. */
typedef void (*sp_client_text_fn)(void *ud, const char *text, size_t len);
sp_client_status sp_client_ask(sp_client *c, const char *user, const sp_client_params *p,
                               sp_client_text_fn on_text, void *ud, volatile sig_atomic_t *stop,
                               sp_client_answer *ans, sp_error *err);

/* GET /health until it answers 200 or timeout_s passes (for a server this
 * process started). 0 when ready. */
int sp_client_wait_ready(sp_client *c, double timeout_s, volatile sig_atomic_t *stop, sp_error *err);

#endif
