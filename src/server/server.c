/* server.c - HTTP with libmicrohttpd, one thread per connection: routing,
 * the API key, request bodies (bounded in size and time), and the answer of
 * a completion, which the connection's thread writes as the coordinator
 * produces it. The thread waits on its job's channel (woken by new text,
 * or every 100 ms to see whether the client hung up: a client that goes
 * away cancels its job, which frees its slot at the next micro-batch). */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "shardpipe/util.h"

enum { R_NONE, R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_METRICS, R_INDEX };

typedef struct conn {
    sp_server *srv;
    int route;
    const char *endpoint;   /* label in /metrics */
    char *body;
    size_t len, cap;
    bool too_big;
    double t0;
    int fd;
    sp_job *job;
    /* the answer */
    char *text;             /* the job's text as taken so far */
    size_t tlen, tcap, released;
    char *out;              /* bytes ready to send */
    size_t out_len, out_off;
    bool first_sent, ended, gone;
    bool answered;          /* a response is queued */
    double t_emit;          /* when streamed text last went out */
} conn;

/* ---- plain answers ---- */

static enum MHD_Result respond(conn *c, struct MHD_Connection *mc, int status, char *text, const char *type,
                               const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    c->answered = true;
    sp_metrics_request(&c->srv->metrics, c->endpoint, status);
    return ok;
}

static enum MHD_Result respond_error(conn *c, struct MHD_Connection *mc, const sp_api_error *e)
{
    return respond(c, mc, e->status, sp_api_error_json(e), "application/json",
                   e->status == 429 || e->status == 503 ? "1" : NULL);
}

static enum MHD_Result fail(conn *c, struct MHD_Connection *mc, int status, const char *code, const char *fmt,
                            const char *arg)
{
    sp_api_error e;
    sp_api_fail(&e, status, code, NULL, fmt, arg);
    return respond_error(c, mc, &e);
}

static char *models_json(sp_server *s)
{
    json_t *root = json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", s->model_id,
                             "object", "model", "created", (json_int_t)0, "owned_by", "shardpipe");
    char *t = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return t;
}

static char *health_json(sp_server *s, int *status)
{
    pthread_mutex_lock(&s->mu);
    int state = s->state, active = s->active;
    char reason[sizeof s->reason];
    memcpy(reason, s->reason, sizeof reason);
    pthread_mutex_unlock(&s->mu);
    const char *name = state == SP_SRV_LOADING ? "loading" : state == SP_SRV_READY ? "ready" : "degraded";
    *status = state == SP_SRV_READY ? 200 : 503;
    json_t *root = json_pack("{s:s, s:i, s:i}", "status", name, "slots", s->n_slots, "active", active);
    if (state == SP_SRV_DRAINING) json_object_set_new(root, "reason", json_string("shutting down"));
    else if (reason[0]) json_object_set_new(root, state == SP_SRV_READY ? "note" : "reason", json_string(reason));
    char *t = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return t;
}

/* ---- streaming a job's answer ---- */

/* A job that ended without an answer: the supervisor's reason, or the
 * server stopping. */
static void stopped_error(const sp_job *j, sp_api_error *e)
{
    if (j->fail[0]) sp_api_fail(e, 503, "server_unavailable", NULL, "%s", j->fail);
    else sp_api_fail(e, 503, "server_shutting_down", NULL, "the server stopped before the answer was done");
}

static bool client_gone(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void out_append(conn *c, const char *a, const char *b, const char *d)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0, ld = strlen(d);
    c->out = realloc(c->out, c->out_len + la + lb + ld + 1);
    memcpy(c->out + c->out_len, a, la);
    if (lb) memcpy(c->out + c->out_len + la, b, lb);
    memcpy(c->out + c->out_len + la + lb, d, ld);
    c->out_len += la + lb + ld;
}

static void sse(conn *c, char *json)
{
    c->t_emit = sp_now();
    if (!json) return;
    out_append(c, "data: ", json, "\n\n");
    free(json);
}

static const char *finish_name(int how, bool stop_hit)
{
    if (stop_hit) return "stop";
    return how == SP_JOB_EOS || how == SP_JOB_CANCELLED ? "stop" : how == SP_JOB_LENGTH ? "length" : NULL;
}

/* A deadline `seconds` from now for pthread_cond_timedwait. */
static struct timespec deadline(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(seconds * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    return ts;
}

/* Streamed text goes out at most every FLUSH_S seconds (the first piece at
 * once): a fast pipeline's tokens then share a write instead of waking this
 * thread and the client once per token (on a small model that cost ~1 ms a
 * token of CPU the ranks need); a slow one's tokens go out one by one. */
#define FLUSH_S 0.02

/* Waits up to 100 ms for news of the job, then turns it into bytes to send. */
static void step(conn *c)
{
    sp_job *j = c->job;
    pthread_mutex_lock(&j->mu);
    if (j->stream && c->t_emit > 0) { /* let text gather until the next flush */
        struct timespec ts = deadline(c->t_emit + FLUSH_S - sp_now());
        while (!j->how && sp_now() < c->t_emit + FLUSH_S)
            if (pthread_cond_timedwait(&j->cv, &j->mu, &ts)) break;
    }
    struct timespec ts = deadline(0.1);
    /* streamed: wake for new text; whole: only for the end (and, either way,
     * every 100 ms to see whether the client is still there) */
    if ((j->stream ? j->len == c->tlen : true) && !j->how) pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    if (j->len > c->tlen) {
        if (j->len + 1 > c->tcap) {
            c->tcap = j->len * 2 + 64;
            c->text = realloc(c->text, c->tcap);
        }
        memcpy(c->text + c->tlen, j->text + c->tlen, j->len - c->tlen);
        c->tlen = j->len;
    }
    int how = j->how;
    pthread_mutex_unlock(&j->mu);
    if (!how && client_gone(c->fd)) {
        atomic_store(&j->cancelled, 1);
        c->gone = true;
        return;
    }
    /* a plain-transcript answer starts after "Assistant:": its first token's space is
     * the template's, not the answer's (and the next turn renders it so) */
    if (j->chat && !j->templated && c->released == 0 && !c->first_sent && c->tlen > 0 && c->text[0] == ' ')
        c->released = 1;
    bool hit, final = how != 0;
    size_t safe = sp_stop_scan(c->text ? c->text : "", c->tlen, c->released, j->stops, j->n_stops, final, &hit);
    if (hit && !how) {
        /* the answer is complete: free the slot, and wait (briefly) for the
         * coordinator's count of the tokens it generated, for usage */
        atomic_store(&j->cancelled, 1);
        pthread_mutex_lock(&j->mu);
        for (int i = 0; i < 50 && !j->how; i++) {
            struct timespec t2 = deadline(0.1);
            pthread_cond_timedwait(&j->cv, &j->mu, &t2);
        }
        pthread_mutex_unlock(&j->mu);
        final = true;
    }
    const char *finish = final ? finish_name(how, hit) : NULL;
    if (j->stream) {
        if (safe > c->released || (!c->first_sent && j->chat))
            sse(c, sp_answer_chunk(j, c->text + c->released, safe - c->released, NULL, !c->first_sent));
        if (safe > c->released || j->chat) c->first_sent = true;
        c->released = safe;
        if (final) {
            if (!finish) {
                sp_api_error e;
                stopped_error(j, &e);
                sse(c, sp_api_error_json(&e));
            } else {
                sse(c, sp_answer_chunk(j, "", 0, finish, false));
                if (j->include_usage) sse(c, sp_answer_usage_chunk(j));
            }
            out_append(c, "data: [DONE]", NULL, "\n\n");
            c->ended = true;
        }
    } else if (final) {
        if (c->released > safe) c->released = safe;
        char *json;
        if (!finish) {
            sp_api_error e;
            stopped_error(j, &e);
            json = sp_api_error_json(&e);
        } else {
            json = sp_answer_full(j, c->text ? c->text + c->released : "", safe - c->released, finish);
        }
        out_append(c, json ? json : "", NULL, "\n");
        free(json);
        c->ended = true;
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    conn *c = cls;
    for (;;) {
        if (c->out_off < c->out_len) {
            size_t n = c->out_len - c->out_off < max ? c->out_len - c->out_off : max;
            memcpy(buf, c->out + c->out_off, n);
            c->out_off += n;
            return (ssize_t)n;
        }
        c->out_len = c->out_off = 0;
        if (c->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        step(c);
        if (c->gone) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* ---- requests ---- */

static bool key_ok(const char *want, const char *header)
{
    const char *got = header && !strncmp(header, "Bearer ", 7) ? header + 7 : "";
    size_t wl = strlen(want), gl = strlen(got);
    unsigned diff = wl != gl; /* every byte of the key is compared: constant time */
    for (size_t i = 0; i < wl; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
    return diff == 0;
}

static int route_of(const char *url, const char **endpoint)
{
    static const struct { const char *url; int route; const char *name; } routes[] = {
        {"/v1/chat/completions", R_CHAT, "chat_completions"}, {"/v1/completions", R_COMPLETIONS, "completions"},
        {"/v1/models", R_MODELS, "models"}, {"/health", R_HEALTH, "health"}, {"/metrics", R_METRICS, "metrics"},
        {"/", R_INDEX, "index"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].url)) {
            *endpoint = routes[i].name;
            return routes[i].route;
        }
    *endpoint = "other";
    return R_NONE;
}

static enum MHD_Result start_answer(conn *c, struct MHD_Connection *mc)
{
    sp_server *s = c->srv;
    if (c->too_big) {
        char lim[32];
        snprintf(lim, sizeof lim, "%zu", s->o.max_body);
        return fail(c, mc, 413, "request_too_large", "the request body exceeds %s bytes", lim);
    }
    pthread_mutex_lock(&s->mu);
    int state = s->state;
    char reason[sizeof s->reason];
    memcpy(reason, s->reason, sizeof reason);
    pthread_mutex_unlock(&s->mu);
    if (state == SP_SRV_UNAVAILABLE) return fail(c, mc, 503, "server_unavailable", "%s", reason);
    if (state != SP_SRV_READY)
        return fail(c, mc, 503, "server_unavailable", "the server is %s; try again shortly",
                    state == SP_SRV_LOADING ? "still loading the model" : "shutting down");
    sp_api_error e;
    sp_job *j = sp_api_parse(s, c->body ? c->body : "", c->len, c->route == R_CHAT, &e);
    if (!j) return respond_error(c, mc, &e);
    int refused = sp_server_submit(s, j);
    if (refused) {
        sp_job_release(j);
        if (refused == 429)
            sp_api_fail(&e, 429, "rate_limit_exceeded", NULL, "all %d slots are busy and %d requests wait already; "
                        "retry later", s->n_slots, s->o.queue);
        else
            sp_api_fail(&e, 503, "server_unavailable", NULL, "the server is shutting down");
        return respond_error(c, mc, &e);
    }
    c->job = j;
    pthread_mutex_lock(&s->mu);
    s->answering++;
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, c, NULL);
    MHD_add_response_header(r, "Content-Type", j->stream ? "text/event-stream" : "application/json");
    if (j->stream) {
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
    }
    enum MHD_Result ok = MHD_queue_response(mc, 200, r);
    MHD_destroy_response(r);
    sp_metrics_request(&s->metrics, c->endpoint, 200);
    return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **ptr)
{
    (void)version;
    sp_server *s = cls;
    conn *c = *ptr;
    if (!c) { /* headers are in: everything that needs no body */
        c = sp_calloc(1, sizeof *c);
        c->srv = s;
        c->t0 = sp_now();
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        *ptr = c;
        c->route = route_of(url, &c->endpoint);
        bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (c->route == R_NONE) return fail(c, mc, 404, "not_found", "no such endpoint: %.200s", url);
        if ((c->route == R_CHAT || c->route == R_COMPLETIONS) ? !post : !get)
            return fail(c, mc, 405, "method_not_allowed", "%s is not allowed here", method);
        bool open = c->route == R_HEALTH || c->route == R_INDEX;
        if (s->api_key[0] && !open &&
            !key_ok(s->api_key, MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization")))
            return fail(c, mc, 401, "invalid_api_key", "%s", "missing or wrong API key: send 'Authorization: Bearer KEY'");
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (post && cl && strtoull(cl, NULL, 10) > s->o.max_body) {
            char lim[32];
            snprintf(lim, sizeof lim, "%zu", s->o.max_body);
            return fail(c, mc, 413, "request_too_large", "the request body exceeds %s bytes", lim);
        }
        if (post) return MHD_YES; /* the body follows */
        int status = 200;
        switch (c->route) {
        case R_MODELS: return respond(c, mc, 200, models_json(s), "application/json", NULL);
        case R_HEALTH: {
            char *t = health_json(s, &status);
            return respond(c, mc, status, t, "application/json", NULL);
        }
        case R_METRICS:
            return respond(c, mc, 200, sp_metrics_render(&s->metrics, 0), "text/plain; version=0.0.4", NULL);
        default: {
            const char *page = sp_server_index_page();
            if (!page) return fail(c, mc, 404, "not_found", "%s", "no page here; the API is under /v1");
            return respond(c, mc, 200, strdup(page), "text/html; charset=utf-8", NULL);
        }
        }
    }
    if (c->answered) { /* refused already: the rest of the body is dropped */
        *size = 0;
        return MHD_YES;
    }
    if (*size) {
        /* a body that trickles in for longer than the client timeout (each
         * piece resets the idle timer) is cut off */
        if (sp_now() - c->t0 > 2.0 * s->o.client_timeout_s) return MHD_NO;
        if (c->len + *size > s->o.max_body) c->too_big = true;
        if (!c->too_big) {
            if (c->len + *size + 1 > c->cap) {
                c->cap = (c->len + *size + 1) * 2;
                c->body = realloc(c->body, c->cap);
            }
            memcpy(c->body + c->len, data, *size);
            c->len += *size;
            c->body[c->len] = 0;
        }
        *size = 0;
        return MHD_YES;
    }
    c->answered = true;
    return start_answer(c, mc);
}

static void completed(void *cls, struct MHD_Connection *mc, void **ptr, enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)mc;
    (void)why;
    conn *c = *ptr;
    if (!c) return;
    if (c->job) {
        if (!c->ended) atomic_store(&c->job->cancelled, 1); /* the client left before the end */
        sp_job_release(c->job);
        pthread_mutex_lock(&c->srv->mu);
        c->srv->answering--;
        pthread_cond_broadcast(&c->srv->cv);
        pthread_mutex_unlock(&c->srv->mu);
    }
    free(c->body);
    free(c->text);
    free(c->out);
    free(c);
    *ptr = NULL;
}

/* ---- start and stop ---- */

sp_server *sp_server_start(const sp_server_options *o, sp_error *err)
{
    sp_server *s = sp_calloc(1, sizeof *s);
    s->o = *o;
    snprintf(s->host, sizeof s->host, "%s", o->host && *o->host ? o->host : "127.0.0.1");
    snprintf(s->model_id, sizeof s->model_id, "%s", o->model_id ? o->model_id : "model");
    snprintf(s->api_key, sizeof s->api_key, "%s", o->api_key ? o->api_key : "");
    if (!s->o.max_body) s->o.max_body = 4u << 20;
    if (!s->o.client_timeout_s) s->o.client_timeout_s = 30;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    sp_metrics_init(&s->metrics);
    s->state = SP_SRV_LOADING;

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int gai = getaddrinfo(s->host, port, &hints, &ai);
    if (gai) {
        sp_errorf(err, "--host %s: %s; give an address such as 127.0.0.1, ::1 or 0.0.0.0", s->host, gai_strerror(gai));
        free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* the HTTP threads never take SIGINT/SIGTERM: the coordinator does */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    s->daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_CONNECTION_TIMEOUT, s->o.client_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                                 completed, s, MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    freeaddrinfo(ai);
    if (!s->daemon) {
        sp_errorf(err, "cannot listen on %s port %d (in use, or not an address of this machine); pick another "
                       "--port or --host", s->host, o->port);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return s;
}

int sp_server_port(const sp_server *s) { return s->port; }

void sp_server_ready(sp_server *s, const sp_tokenizer *tok, int context, int n_slots, int n_stages,
                     const sp_chat_template *chat)
{
    pthread_mutex_lock(&s->mu);
    s->has_chat = chat != NULL;
    if (chat) s->chat = *chat;
    s->tok = tok;
    s->context = context;
    s->n_slots = n_slots;
    s->n_stages = n_stages;
    if (s->state == SP_SRV_LOADING) s->state = SP_SRV_READY;
    pthread_mutex_unlock(&s->mu);
}

void sp_server_status(sp_server *s, bool available, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
    /* not available before the first load too (nothing fits at start-up):
     * say why rather than "still loading"; ready only once loaded */
    if (s->state == SP_SRV_READY || s->state == SP_SRV_UNAVAILABLE || (s->state == SP_SRV_LOADING && !available))
        s->state = !available ? SP_SRV_UNAVAILABLE : s->tok ? SP_SRV_READY : SP_SRV_LOADING;
    pthread_mutex_unlock(&s->mu);
}

void sp_server_abort_open(sp_server *s);

void sp_server_stop(sp_server *s)
{
    if (!s) return;
    sp_server_drain(s);
    sp_server_abort_open(s);
    /* every job has ended: let the connections write their last bytes
     * (stopping the daemon closes them), for at most 5 s */
    double t_end = sp_now() + 5;
    pthread_mutex_lock(&s->mu);
    while (s->answering > 0 && sp_now() < t_end) {
        struct timespec ts = deadline(0.05);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    free(s->open);
    free(s);
}
