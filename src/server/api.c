/* api.c - an OpenAI completion request (JSON) into a job: every parameter
 * checked for its type and range, parameters we do not support refused by
 * name (never silently ignored), the prompt rendered and tokenized and
 * checked against the context. Errors carry OpenAI's error shape. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "shardpipe/chat_json.h"
#include "shardpipe/escape.h"
#include "shardpipe/util.h"

int sp_api_fail(sp_api_error *e, int status, const char *code, const char *param, const char *fmt, ...)
{
    e->status = status;
    e->type = status == 401 ? "authentication_error"
            : status == 429 ? "rate_limit_error"
            : status >= 500 ? "server_error"
            : "invalid_request_error";
    e->code = code;
    /* the message quotes the body (jansson's "near '...'", a model name cut
     * at 100 bytes), so it may hold bytes that are not UTF-8, which jansson
     * refuses to put in the error JSON: escape them (and any cut character) */
    sp_escape_text(e->param, sizeof e->param, param ? param : "", param ? strlen(param) : 0);
    char raw[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    sp_escape_text(e->message, sizeof e->message, raw, strlen(raw));
    return -1;
}

char *sp_api_error_json(const sp_api_error *e)
{
    json_t *err = json_pack("{s:s, s:s, s:o, s:o}", "message", e->message, "type", e->type, "param",
                            e->param[0] ? json_string(e->param) : json_null(), "code",
                            e->code ? json_string(e->code) : json_null());
    json_t *root = json_pack("{s:o}", "error", err);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

/* Parameters each endpoint takes. Those OpenAI has and we do not (n > 1,
 * logprobs, penalties, tools, ...) are refused by name; a few are accepted
 * only at their neutral value, which clients often send explicitly. */
static const char *const common_keys[] = {"model", "stream", "stream_options", "max_tokens", "temperature", "top_p",
                                          "top_k", "min_p", "seed", "stop", "n", "user", "presence_penalty",
                                          "frequency_penalty", "logprobs", NULL};
static const char *const chat_keys[] = {"messages", "max_completion_tokens", NULL};
static const char *const completion_keys[] = {"prompt", "echo", NULL};

static bool in_list(const char *const *l, const char *k)
{
    for (; *l; l++)
        if (!strcmp(*l, k)) return true;
    return false;
}

static int check_keys(json_t *root, bool chat, sp_api_error *e)
{
    char bad[400] = "";
    const char *first = NULL, *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (in_list(common_keys, key) || in_list(chat ? chat_keys : completion_keys, key)) continue;
        if (!first) first = key;
        if (strlen(bad) + strlen(key) + 8 < sizeof bad) {
            if (bad[0]) strcat(bad, ", ");
            strcat(bad, key);
        }
    }
    if (first)
        return sp_api_fail(e, 400, "unsupported_parameter", first,
                           "unsupported parameter(s): %s; shardpipe supports model, %s, stream, stream_options, "
                           "max_tokens%s, temperature, top_p, top_k, min_p, seed, stop (n = 1 only)",
                           bad, chat ? "messages" : "prompt", chat ? ", max_completion_tokens" : "");
    return 0;
}

/* A number parameter in [lo, hi]; absent or null leaves *out. */
static int get_number(json_t *root, const char *k, double lo, double hi, double *out, sp_api_error *e)
{
    json_t *v = json_object_get(root, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return sp_api_fail(e, 400, "invalid_type", k, "'%s' must be a number", k);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return sp_api_fail(e, 400, "invalid_value", k, "'%s' must be between %g and %g (got %g)", k, lo, hi, x);
    *out = x;
    return 0;
}

static int get_int(json_t *root, const char *k, long long lo, long long hi, long long *out, bool *given,
                   sp_api_error *e)
{
    json_t *v = json_object_get(root, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return sp_api_fail(e, 400, "invalid_type", k, "'%s' must be an integer", k);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return sp_api_fail(e, 400, "invalid_value", k, "'%s' must be between %lld and %lld (got %lld)", k, lo, hi, x);
    *out = x;
    if (given) *given = true;
    return 0;
}

static int get_bool(json_t *root, const char *k, bool *out, sp_api_error *e)
{
    json_t *v = json_object_get(root, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return sp_api_fail(e, 400, "invalid_type", k, "'%s' must be true or false", k);
    *out = json_is_true(v);
    return 0;
}

/* Parameters accepted only at their neutral value. */
static int neutral_only(json_t *root, sp_api_error *e)
{
    long long n = 1;
    if (get_int(root, "n", 1, 1000000, &n, NULL, e)) return -1;
    if (n != 1) return sp_api_fail(e, 400, "unsupported_value", "n", "only n = 1 is supported (got %lld)", n);
    const char *pen[] = {"presence_penalty", "frequency_penalty"};
    for (int i = 0; i < 2; i++) {
        double x = 0;
        if (get_number(root, pen[i], -2, 2, &x, e)) return -1;
        if (x != 0) return sp_api_fail(e, 400, "unsupported_value", pen[i], "'%s' is not supported (only 0)", pen[i]);
    }
    bool b = false;
    if (get_bool(root, "logprobs", &b, e)) return -1;
    if (b) return sp_api_fail(e, 400, "unsupported_value", "logprobs", "'logprobs' is not supported");
    if (get_bool(root, "echo", &b, e)) return -1;
    if (b) return sp_api_fail(e, 400, "unsupported_value", "echo", "'echo' is not supported");
    json_t *u = json_object_get(root, "user");
    if (u && !json_is_null(u) && !json_is_string(u))
        return sp_api_fail(e, 400, "invalid_type", "user", "'user' must be a string");
    return 0;
}

static int get_stops(json_t *root, sp_job *j, sp_api_error *e)
{
    json_t *v = json_object_get(root, "stop");
    if (!v || json_is_null(v)) return 0;
    json_t *one[1] = {v};
    json_t **items = one;
    size_t n = 1;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > 4) return sp_api_fail(e, 400, "invalid_value", "stop", "'stop' takes at most 4 strings (got %zu)", n);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : items[0];
        if (!json_is_string(s) || json_string_length(s) == 0)
            return sp_api_fail(e, 400, "invalid_type", "stop", "'stop' must be a non-empty string or an array of them");
        j->stops[j->n_stops++] = strdup(json_string_value(s));
    }
    return 0;
}

/* Text of a message's content: a string, null, or an array of
 * {"type": "text", "text": ...} parts (joined). */
static int content_text(json_t *c, int i, char **out, sp_api_error *e)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (!c || json_is_null(c)) { *out = strdup(""); return 0; }
    if (json_is_string(c)) { *out = strdup(json_string_value(c)); return 0; }
    if (!json_is_array(c))
        return sp_api_fail(e, 400, "invalid_type", param, "'%s' must be a string or an array of text parts", param);
    size_t len = 0, k;
    json_t *part;
    json_array_foreach(c, k, part)
    {
        json_t *t = json_object_get(part, "text"), *ty = json_object_get(part, "type");
        if (!json_is_string(ty) || strcmp(json_string_value(ty), "text") || !json_is_string(t))
            return sp_api_fail(e, 400, "unsupported_value", param,
                               "'%s' parts must be {\"type\": \"text\", \"text\": ...}; images and audio are not "
                               "supported", param);
        len += json_string_length(t);
    }
    char *s = sp_alloc(len + 1);
    s[0] = 0;
    json_array_foreach(c, k, part) strcat(s, json_string_value(json_object_get(part, "text")));
    *out = s;
    return 0;
}

/* The model's own template (chat.h, messages from JSON by chat_json.h). */
static char *templated_prompt(sp_server *s, json_t *msgs, sp_api_error *e)
{
    sp_chat_msgs m;
    sp_error err = {{0}};
    char *text = NULL;
    if (sp_chat_msgs_from_json(msgs, &m, &err) == 0) {
        sp_chat_opts o = sp_chat_opts_default();
        text = sp_chat_render(&s->chat, m.msgs, m.n, &o, &err);
    }
    sp_chat_msgs_free(&m);
    if (!text) sp_api_fail(e, 400, "invalid_value", "messages", "%s", err.msg);
    return text;
}

static char *chat_prompt(sp_server *s, json_t *root, bool *templated, sp_api_error *e)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs) { sp_api_fail(e, 400, "missing_parameter", "messages", "'messages' is required"); return NULL; }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        sp_api_fail(e, 400, "invalid_type", "messages", "'messages' must be a non-empty array");
        return NULL;
    }
    *templated = s->has_chat;
    if (s->has_chat) return templated_prompt(s, msgs, e);
    int n = (int)json_array_size(msgs);
    sp_srv_msg *m = sp_calloc((size_t)n, sizeof *m);
    char **texts = sp_calloc((size_t)n, sizeof *texts);
    char *prompt = NULL;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        json_t *msg = json_array_get(msgs, (size_t)i), *role = json_object_get(msg, "role");
        char param[48];
        snprintf(param, sizeof param, "messages[%d].role", i);
        if (!json_is_object(msg) || !json_is_string(role))
            rc = sp_api_fail(e, 400, "invalid_type", param, "each message needs a string 'role'");
        else if (!in_list((const char *const[]){"system", "developer", "user", "assistant", NULL},
                          json_string_value(role)))
            rc = sp_api_fail(e, 400, "invalid_value", param,
                             "role '%.40s' is not supported (system, developer, user, assistant)",
                             json_string_value(role));
        else
            rc = content_text(json_object_get(msg, "content"), i, &texts[i], e);
        if (!rc) m[i] = (sp_srv_msg){json_string_value(role), texts[i]};
    }
    if (!rc) prompt = sp_srv_render_chat(m, n);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(m);
    return prompt;
}

static char *completion_prompt(json_t *root, sp_api_error *e)
{
    json_t *p = json_object_get(root, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
    if (!p) { sp_api_fail(e, 400, "missing_parameter", "prompt", "'prompt' is required"); return NULL; }
    if (!json_is_string(p) || json_string_length(p) == 0) {
        sp_api_fail(e, 400, "invalid_type", "prompt", "'prompt' must be a non-empty string (or an array of one)");
        return NULL;
    }
    return strdup(json_string_value(p));
}

static int tokenize(sp_server *s, const char *text, sp_job *j, sp_api_error *e)
{
    /* BOS as the vocabulary says. A template's rendering holds its own
     * special-token texts (<|im_start|>, <|eot_id|>, <s>): parsed as tokens,
     * and no second BOS when it starts with one (as generate --chat). Raw
     * prompts and the plain transcript are text only. */
    unsigned flags = j->templated ? sp_chat_tokenize_flags(&s->chat, text) : SP_TOK_ADD_SPECIAL;
    sp_error err = {{0}};
    int n = 0;
    j->prompt = sp_tokenize(s->tok, text, flags, &n, &err);
    if (!j->prompt)
        return sp_api_fail(e, 400, "invalid_value", j->chat ? "messages" : "prompt", "%s", err.msg);
    if (n < 1) return sp_api_fail(e, 400, "invalid_value", j->chat ? "messages" : "prompt", "the prompt is empty");
    j->n_prompt = n;
    return 0;
}

static sp_job *new_job(sp_server *s, bool chat)
{
    sp_job *j = sp_calloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->chat = chat;
    j->created = (long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%lx%06lx", chat ? "chatcmpl" : "cmpl", (long)j->created & 0xffffff,
             atomic_fetch_add(&s->next_id, 1));
    return j;
}

static uint64_t random_seed(sp_server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)atomic_load(&s->next_id) << 48);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull; /* a mixer: nearby clocks give far seeds */
    return x ^ (x >> 33);
}

sp_job *sp_api_parse(sp_server *s, const char *body, size_t len, bool chat, sp_api_error *e)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root) {
        sp_api_fail(e, 400, "invalid_json", NULL, "the body is not valid JSON (line %d, column %d: %s)", je.line,
                    je.column, je.text);
        return NULL;
    }
    sp_job *j = new_job(s, chat);
    char *prompt = NULL;
    int rc = 0;
    double temp = 1.0, top_p = 1.0, min_p = 0.0;
    long long top_k = 0, max_tokens = -1, seed = 0;
    bool seeded = false, given = false;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(root)) rc = sp_api_fail(e, 400, "invalid_type", NULL, "the body must be a JSON object");
    else if ((rc = check_keys(root, chat, e))) ;
    else if (model && !json_is_null(model) && !json_is_string(model))
        rc = sp_api_fail(e, 400, "invalid_type", "model", "'model' must be a string");
    else if (json_is_string(model) && strcmp(json_string_value(model), s->model_id))
        rc = sp_api_fail(e, 404, "model_not_found", "model", "model '%.100s' does not exist; this server runs '%s'",
                         json_string_value(model), s->model_id);
    else if (get_bool(root, "stream", &j->stream, e) || neutral_only(root, e) ||
             get_number(root, "temperature", 0, 2, &temp, e) || get_number(root, "top_p", 0, 1, &top_p, e) ||
             get_number(root, "min_p", 0, 1, &min_p, e) || get_int(root, "top_k", 0, 1 << 30, &top_k, NULL, e) ||
             get_int(root, "seed", -(1ll << 62), 1ll << 62, &seed, &seeded, e) ||
             get_int(root, "max_tokens", 1, 1 << 30, &max_tokens, &given, e) ||
             (chat && get_int(root, "max_completion_tokens", 1, 1 << 30, &max_tokens, &given, e)) ||
             get_stops(root, j, e))
        rc = -1;
    if (!rc) {
        json_t *so = json_object_get(root, "stream_options");
        if (so && !json_is_null(so)) {
            json_t *iu = json_object_get(so, "include_usage");
            if (!json_is_object(so) || (iu && !json_is_boolean(iu)))
                rc = sp_api_fail(e, 400, "invalid_type", "stream_options",
                                 "'stream_options' must be {\"include_usage\": true|false}");
            else j->include_usage = json_is_true(iu);
        }
    }
    if (!rc && top_p <= 0) rc = sp_api_fail(e, 400, "invalid_value", "top_p", "'top_p' must be above 0");
    if (!rc) prompt = chat ? chat_prompt(s, root, &j->templated, e) : completion_prompt(root, e);
    if (!rc && !prompt) rc = -1;
    if (!rc) rc = tokenize(s, prompt, j, e);
    if (!rc && j->n_prompt >= s->context)
        rc = sp_api_fail(e, 400, "context_length_exceeded", chat ? "messages" : "prompt",
                         "the prompt is %d tokens; the context holds %d, and at least one must be left to generate",
                         j->n_prompt, s->context);
    if (!rc && given && j->n_prompt + max_tokens > s->context)
        rc = sp_api_fail(e, 400, "context_length_exceeded", "max_tokens",
                         "the prompt (%d tokens) + max_tokens (%lld) exceed the context of %d tokens; ask for at "
                         "most %d", j->n_prompt, max_tokens, s->context, s->context - j->n_prompt);
    if (!rc) {
        /* OpenAI's defaults: temperature 1, top_p 1; no length limit but
         * the context for chat, 16 tokens for the legacy completions */
        int room = s->context - j->n_prompt;
        j->max_new = given ? (int)max_tokens : chat ? room : room < 16 ? room : 16;
        j->sampling = sp_sampler_defaults();
        j->sampling.temperature = (float)temp;
        j->sampling.top_p = (float)top_p;
        j->sampling.top_k = (int)top_k;
        j->sampling.min_p = (float)min_p;
        j->sampling.repeat_penalty = 1.0f;
        j->sampling.seed = seeded ? (uint64_t)seed : random_seed(s);
        if (chat && !j->templated) /* a template's end of turn is a token: the scheduler stops on it */
            for (const char *const *st = sp_srv_chat_stops(); *st && j->n_stops < SP_MAX_STOPS; st++)
                j->stops[j->n_stops++] = strdup(*st);
    }
    free(prompt);
    json_decref(root);
    if (rc) {
        sp_job_release(j);
        return NULL;
    }
    return j;
}
