/* client.c - the HTTP side of `shardpipe chat` (see client.h): builds the
 * chat request from the conversation (jansson), runs it with libcurl's multi
 * interface so a Ctrl-C flag is seen within 50 ms even while the server is
 * silent, feeds the body to the SSE parser and turns each chunk's
 * delta.content into text for the caller. Non-2xx answers are read whole and
 * reported with the message of OpenAI's error JSON. */
#include "shardpipe/client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "growbuf.h"
#include "shardpipe/util.h"

#define SP_CLIENT_MAX_BODY (1 << 20) /* an error body longer than this is cut */

struct sp_client {
    char *url;        /* without a trailing / */
    char *auth;       /* "Authorization: Bearer KEY" or NULL */
    char *system;     /* NULL: none */
    char *model;      /* the first id of GET /v1/models, NULL until known */
    json_t *turns;    /* [{role, content}] */
    int connected;    /* sp_client_connect succeeded */
};

/* One transfer: what the write callback needs to sort a body into SSE
 * events or an error document. */
typedef struct xfer {
    CURL *h;
    long status;      /* HTTP status, read at the first body bytes */
    int sse;          /* 2xx and text/event-stream: parse events */
    sp_sse parser;
    char *body;       /* non-SSE body (errors, JSON answers) */
    size_t body_len, body_cap;
    char *answer;     /* the text streamed so far */
    size_t answer_len, answer_cap;
    char stream_err[512];
    char finish[16];
    int done;         /* data: [DONE] seen */
    sp_client_text_fn on_text;
    void *ud;
    sp_client_answer *ans;
    double t0;
} xfer;

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) abort();
    return memcpy(d, s, n);
}

sp_client *sp_client_new(const char *url, const char *api_key, sp_error *err)
{
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        sp_errorf(err, "--url '%s' is not an http:// or https:// URL; give the server as http://HOST:PORT "
                       "(e.g. http://127.0.0.1:8080)", url);
        return NULL;
    }
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
            sp_errorf(err, "libcurl failed to initialize (curl_global_init)");
            return NULL;
        }
        curl_ready = 1;
    }
    sp_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->url = dupstr(url);
    for (size_t n = strlen(c->url); n > 0 && c->url[n - 1] == '/'; n--) c->url[n - 1] = 0;
    if (api_key && *api_key) {
        size_t n = strlen(api_key) + 32;
        c->auth = malloc(n);
        if (!c->auth) abort();
        snprintf(c->auth, n, "Authorization: Bearer %s", api_key);
    }
    c->turns = json_array();
    return c;
}

void sp_client_free(sp_client *c)
{
    if (!c) return;
    json_decref(c->turns);
    free(c->url);
    free(c->auth);
    free(c->system);
    free(c->model);
    free(c);
}

const char *sp_client_url(const sp_client *c) { return c->url; }

void sp_client_set_system(sp_client *c, const char *text)
{
    free(c->system);
    c->system = text && *text ? dupstr(text) : NULL;
}

void sp_client_reset(sp_client *c) { json_array_clear(c->turns); }

int sp_client_turns(const sp_client *c) { return (int)json_array_size(c->turns); }

static void add_turn(json_t *turns, const char *role, const char *content, size_t len)
{
    json_array_append_new(turns, json_pack("{s:s, s:s%}", "role", role, "content", content, len));
}

/* --- transfer ------------------------------------------------------------ */

/* An SSE event: one chat.completion.chunk, an error object, or [DONE]. */
static int on_event(void *ud, const char *data, size_t len)
{
    xfer *x = ud;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        x->done = 1;
        return 1;
    }
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!j) {
        snprintf(x->stream_err, sizeof x->stream_err, "the server sent an event that is not JSON (%s): %.80s",
                 je.text, data);
        return 2;
    }
    json_t *e = json_object_get(j, "error");
    if (e) {
        const char *m = json_string_value(json_object_get(e, "message"));
        snprintf(x->stream_err, sizeof x->stream_err, "the server stopped the answer: %s",
                 m ? m : "(an error without a message)");
        json_decref(j);
        return 3;
    }
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    const char *piece = json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
    size_t n = json_string_length(json_object_get(json_object_get(ch, "delta"), "content"));
    if (piece && n) {
        if (!x->ans->chunks++) x->ans->ttft_s = sp_now() - x->t0;
        sp_grow(&x->answer, &x->answer_cap, x->answer_len + n + 1);
        memcpy(x->answer + x->answer_len, piece, n);
        x->answer_len += n;
        x->answer[x->answer_len] = 0;
        if (x->on_text) x->on_text(x->ud, piece, n);
    }
    const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
    if (fin) snprintf(x->finish, sizeof x->finish, "%s", fin);
    json_decref(j);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->status) {
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
        char *ct = NULL;
        curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
        x->sse = x->status / 100 == 2 && ct && !strncmp(ct, "text/event-stream", 17);
    }
    if (x->sse) {
        sp_sse_feed(&x->parser, p, n); /* after [DONE] or an error the rest is ignored */
        return n;
    }
    if (x->body_len < SP_CLIENT_MAX_BODY) {
        size_t k = n < SP_CLIENT_MAX_BODY - x->body_len ? n : SP_CLIENT_MAX_BODY - x->body_len;
        sp_grow(&x->body, &x->body_cap, x->body_len + k + 1);
        memcpy(x->body + x->body_len, p, k);
        x->body_len += k;
        x->body[x->body_len] = 0;
    }
    return n;
}

static struct curl_slist *headers(const sp_client *c, int json_body)
{
    struct curl_slist *h = NULL;
    if (json_body) h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: text/event-stream, application/json");
    if (c->auth) h = curl_slist_append(h, c->auth);
    return h;
}

/* Runs the transfer until it ends or *stop is set; returns 1 when stopped.
 * Leaving the loop early and cleaning up the handle closes the connection:
 * that is how the server learns the client left. */
static int perform(CURL *h, volatile sig_atomic_t *stop, CURLcode *res)
{
    CURLM *m = curl_multi_init();
    curl_multi_add_handle(m, h);
    int running = 1, stopped = 0;
    *res = CURLE_OK;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            *res = CURLE_FAILED_INIT;
            break;
        }
        if (stop && *stop) {
            stopped = 1;
            break;
        }
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL); /* EINTR from Ctrl-C just ends the wait */
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE) *res = msg->data.result;
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return stopped;
}

/* The message of a failed transfer, naming the URL and what to do. */
static void transfer_error(const sp_client *c, CURLcode rc, long os_errno, const char *detail, sp_error *err)
{
    if (rc == CURLE_COULDNT_CONNECT)
        sp_errorf(err, "cannot connect to %s: %s. Is `shardpipe serve` running there? Start it with `mpiexec "
                       "-n N shardpipe serve --plan PLAN.yaml`, point --url at it, or chat on this machine "
                       "alone with `shardpipe chat -m MODEL.gguf`", c->url,
                  os_errno ? strerror((int)os_errno) : detail[0] ? detail : "connection failed");
    else if (rc == CURLE_COULDNT_RESOLVE_HOST)
        sp_errorf(err, "cannot resolve the host of %s: check --url", c->url);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        sp_errorf(err, "%s did not answer in time (%s)", c->url, detail[0] ? detail : curl_easy_strerror(rc));
    else
        sp_errorf(err, "request to %s failed: %s", c->url, detail[0] ? detail : curl_easy_strerror(rc));
}

/* The message of a non-2xx answer: OpenAI's {"error": {"message"}} if the
 * body has it, else the body's first line. */
static void status_error(const sp_client *c, const char *path, const xfer *x, sp_error *err)
{
    char msg[600] = "";
    json_t *j = x->body ? json_loadb(x->body, x->body_len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *param = json_string_value(json_object_get(e, "param"));
    if (x->ans) {
        snprintf(x->ans->error_code, sizeof x->ans->error_code, "%s", code ? code : "");
        snprintf(x->ans->error_param, sizeof x->ans->error_param, "%s", param ? param : "");
    }
    if (m) snprintf(msg, sizeof msg, "%s", m);
    else if (x->body_len) snprintf(msg, sizeof msg, "%.*s", (int)strcspn(x->body, "\r\n"), x->body);
    json_decref(j);
    const char *hint = "";
    if (x->status == 401)
        hint = c->auth ? "; the key given (--api-key or SHARDPIPE_API_KEY) is not the server's"
                       : "; the server needs a key: pass --api-key KEY or set SHARDPIPE_API_KEY";
    else if (x->status == 429)
        hint = "; try again shortly"; /* (a 503 says itself why: loading, or shutting down) */
    sp_errorf(err, "%s%s answered HTTP %ld: %s%s", c->url, path, x->status, msg[0] ? msg : "(no message)", hint);
}

static CURL *new_handle(const sp_client *c, const char *path, xfer *x, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (!h) abort();
    size_t n = strlen(c->url) + strlen(path) + 1;
    char *u = malloc(n);
    if (!u) abort();
    snprintf(u, n, "%s%s", c->url, path);
    curl_easy_setopt(h, CURLOPT_URL, u);
    free(u); /* libcurl keeps its own copy */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    x->h = h;
    return h;
}

/* GET path into x->body; 0 on any HTTP answer (x->status says which). */
static int get(sp_client *c, const char *path, xfer *x, volatile sig_atomic_t *stop, sp_error *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = new_handle(c, path, x, errbuf);
    struct curl_slist *hd = headers(c, 0);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode rc;
    int stopped = perform(h, stop, &rc);
    if (!x->status) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_cleanup(h);
    curl_slist_free_all(hd);
    if (stopped) return sp_errorf(err, "interrupted");
    if (rc != CURLE_OK) {
        transfer_error(c, rc, os_errno, errbuf, err);
        return -1;
    }
    return 0;
}

static void xfer_free(xfer *x)
{
    sp_sse_free(&x->parser);
    free(x->body);
    free(x->answer);
}

int sp_client_wait_ready(sp_client *c, double timeout_s, volatile sig_atomic_t *stop, sp_error *err)
{
    double t_end = sp_now() + timeout_s;
    for (;;) {
        xfer x = {0};
        int rc = get(c, "/health", &x, stop, err);
        long status = x.status;
        if (!rc && status != 200) status_error(c, "/health", &x, err);
        xfer_free(&x);
        if (!rc && status == 200) return 0;
        if ((stop && *stop) || sp_now() > t_end) {
            if (!(stop && *stop)) sp_error_prefix(err, "not ready after %.0f s: ", timeout_s);
            return -1;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int sp_client_connect(sp_client *c, volatile sig_atomic_t *stop, sp_error *err)
{
    xfer x = {0};
    if (get(c, "/v1/models", &x, stop, err)) return -1;
    int rc = 0;
    if (x.status == 401) rc = (status_error(c, "/v1/models", &x, err), -1);
    else if (x.status == 200) {
        json_t *j = json_loadb(x.body ? x.body : "", x.body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id"));
        free(c->model);
        c->model = id ? dupstr(id) : NULL;
        json_decref(j);
    }
    c->connected = !rc;
    xfer_free(&x);
    return rc;
}

const char *sp_client_model(const sp_client *c) { return c->model; }

static char *request_json(const sp_client *c, const char *user, const sp_client_params *p)
{
    json_t *msgs = json_array();
    if (c->system) add_turn(msgs, "system", c->system, strlen(c->system));
    json_array_extend(msgs, c->turns);
    add_turn(msgs, "user", user, strlen(user));
    json_t *req = json_pack("{s:o, s:b}", "messages", msgs, "stream", 1);
    if (c->model) json_object_set_new(req, "model", json_string(c->model));
    if (p && p->temperature >= 0) json_object_set_new(req, "temperature", json_real(p->temperature));
    if (p && p->seed >= 0) json_object_set_new(req, "seed", json_integer(p->seed));
    if (p && p->max_tokens > 0) json_object_set_new(req, "max_tokens", json_integer(p->max_tokens));
    char *s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return s;
}

sp_client_status sp_client_ask(sp_client *c, const char *user, const sp_client_params *p,
                               sp_client_text_fn on_text, void *ud, volatile sig_atomic_t *stop,
                               sp_client_answer *ans, sp_error *err)
{
    sp_client_answer scratch;
    if (!ans) ans = &scratch;
    memset(ans, 0, sizeof *ans);
    if (!c->connected && sp_client_connect(c, stop, err)) return stop && *stop ? SP_CLIENT_STOPPED : SP_CLIENT_ERROR;
    json_t *probe = json_string(user); /* NULL when the text is not valid UTF-8 */
    if (!probe) return sp_errorf(err, "the message is not valid UTF-8; send text in UTF-8"), SP_CLIENT_ERROR;
    json_decref(probe);

    xfer x = {.on_text = on_text, .ud = ud, .ans = ans, .t0 = sp_now()};
    sp_sse_init(&x.parser, on_event, &x);
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = new_handle(c, "/v1/chat/completions", &x, errbuf);
    struct curl_slist *hd = headers(c, 1);
    char *body = request_json(c, user, p);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc;
    int stopped = perform(h, stop, &rc);
    if (!x.status) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x.status);
    ans->http_status = (int)x.status;
    ans->total_s = sp_now() - x.t0;
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_cleanup(h); /* closes the connection if the answer was cut */
    curl_slist_free_all(hd);
    free(body);

    sp_client_status st = SP_CLIENT_OK;
    if (stopped && !x.done) {
        st = SP_CLIENT_STOPPED;
        if (x.answer_len) {
            add_turn(c->turns, "user", user, strlen(user));
            add_turn(c->turns, "assistant", x.answer, x.answer_len);
        }
    } else if (rc != CURLE_OK && !x.done && ans->chunks) {
        sp_errorf(err, "the answer from %s broke off after %d piece%s (%s): did the server stop?", c->url,
                  ans->chunks, ans->chunks == 1 ? "" : "s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        st = SP_CLIENT_ERROR;
    } else if (rc != CURLE_OK && !x.done) {
        transfer_error(c, rc, os_errno, errbuf, err);
        st = SP_CLIENT_ERROR;
    } else if (x.status / 100 != 2) {
        status_error(c, "/v1/chat/completions", &x, err);
        st = SP_CLIENT_ERROR;
    } else if (!x.sse) {
        sp_errorf(err, "%s/v1/chat/completions answered without an event stream (Content-Type is not "
                       "text/event-stream): is this an OpenAI-compatible server?", c->url);
        st = SP_CLIENT_ERROR;
    } else if (x.stream_err[0]) {
        sp_errorf(err, "%s", x.stream_err);
        st = SP_CLIENT_ERROR;
    } else if (!x.done && !x.finish[0]) {
        sp_errorf(err, "the answer from %s ended before `data: [DONE]` (the server closed the stream)", c->url);
        st = SP_CLIENT_ERROR;
    } else {
        snprintf(ans->finish_reason, sizeof ans->finish_reason, "%s", x.finish);
        add_turn(c->turns, "user", user, strlen(user));
        add_turn(c->turns, "assistant", x.answer ? x.answer : "", x.answer_len);
    }
    xfer_free(&x);
    return st;
}
