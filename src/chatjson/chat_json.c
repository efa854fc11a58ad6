/* chat_json.c - OpenAI-style JSON chat messages to sp_chat_msg (chat.h), and
 * the Python json.dumps layout the templates' `tojson` filter writes. The one
 * place where jansson meets the chat templates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/chat_json.h"

/* ---- json.dumps(ensure_ascii=False) ---- */

typedef struct obuf {
    char *p;
    size_t n, cap;
    int oom;
} obuf;

static void put(obuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(obuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_str(obuf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        case '\b': puts_(b, "\\b"); break;
        case '\f': puts_(b, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                puts_(b, esc);
            } else {
                put(b, (const char *)&s[i], 1);
            }
        }
    }
    put(b, "\"", 1);
}

/* Python's float repr: the shortest digits that read back to the same
 * double, in fixed notation when the decimal exponent is in [-4, 16), else
 * d.ddde+XX; always with a '.' or an exponent. */
static void put_real(obuf *b, double v)
{
    char s[64];
    if (isnan(v)) { puts_(b, "NaN"); return; }
    if (isinf(v)) { puts_(b, v > 0 ? "Infinity" : "-Infinity"); return; }
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(s, sizeof s, "%.*e", prec - 1, v);
        if (strtod(s, NULL) == v) break;
    }
    snprintf(s, sizeof s, "%.*e", prec - 1, v);
    /* s = [-]d.ddde[+-]XX: split into sign, digits and exponent */
    char digits[32];
    int nd = 0, neg = s[0] == '-';
    const char *p = s + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    digits[nd] = 0;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    char out[96];
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) out[o++] = digits[i];
            else out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
        snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    puts_(b, out);
}

static void dump(obuf *b, const json_t *v, int depth)
{
    char num[32];
    if (depth > 512) { b->oom = 1; return; } /* deeper than Python's recursion limit allows */
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        put(b, "{", 1);
        json_object_foreach((json_t *)v, key, val) {
            if (!first) put(b, ", ", 2);
            first = 0;
            put_str(b, key, strlen(key));
            put(b, ": ", 2);
            dump(b, val, depth + 1);
        }
        put(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) put(b, ", ", 2);
            dump(b, json_array_get(v, i), depth + 1);
        }
        put(b, "]", 1);
        break;
    case JSON_STRING: put_str(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        puts_(b, num);
        break;
    case JSON_REAL: put_real(b, json_real_value(v)); break;
    case JSON_TRUE: puts_(b, "true"); break;
    case JSON_FALSE: puts_(b, "false"); break;
    case JSON_NULL: puts_(b, "null"); break;
    }
}

char *sp_json_dumps_py(const json_t *v)
{
    obuf b = {0};
    dump(&b, v, 0);
    if (b.oom) { free(b.p); return NULL; }
    return b.p ? b.p : calloc(1, 1);
}

/* ---- messages ---- */

static char *keep(sp_chat_msgs *m, char *s)
{
    if (!s) return NULL;
    if (m->n_strs == m->cap_strs) {
        int cap = m->cap_strs ? m->cap_strs * 2 : 16;
        char **p = realloc(m->strs, (size_t)cap * sizeof *p);
        if (!p) { free(s); return NULL; }
        m->strs = p;
        m->cap_strs = cap;
    }
    m->strs[m->n_strs++] = s;
    return s;
}

static char *keep_copy(sp_chat_msgs *m, const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    return keep(m, c);
}

/* A JSON string as a C string: a NUL inside (\u0000) cannot pass. */
static int get_text(sp_chat_msgs *m, const json_t *v, const char *where, const char **out, sp_error *err)
{
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (memchr(s, 0, n))
        return sp_errorf(err, "%s contains a NUL character (\\u0000), which a prompt cannot hold; remove it",
                         where);
    if (!(*out = keep_copy(m, s, n))) return sp_errorf(err, "%s: out of memory", where);
    return 0;
}

/* content: a string, null, or text parts joined together */
static int get_content(sp_chat_msgs *m, const json_t *v, const char *where, const char **out, sp_error *err)
{
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) return get_text(m, v, where, out, err);
    if (!json_is_array(v))
        return sp_errorf(err, "%s: expected a string, an array of text parts or null", where);
    obuf b = {0};
    put(&b, "", 0);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *part = json_array_get(v, i), *type = json_object_get(part, "type"),
                     *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
            !json_is_string(text)) {
            free(b.p);
            return sp_errorf(err, "%s[%zu]: only {\"type\": \"text\", \"text\": STRING} parts are supported",
                             where, i);
        }
        if (memchr(json_string_value(text), 0, json_string_length(text))) {
            free(b.p);
            return sp_errorf(err, "%s[%zu].text contains a NUL character (\\u0000), which a prompt cannot "
                                  "hold; remove it", where, i);
        }
        put(&b, json_string_value(text), json_string_length(text));
    }
    if (b.oom || !keep(m, b.p)) return sp_errorf(err, "%s: out of memory", where);
    *out = b.p;
    return 0;
}

static int get_tool_call(sp_chat_msgs *m, const json_t *c, const char *where, unsigned flags,
                         sp_chat_tool_call *out, sp_error *err)
{
    if (!json_is_object(c)) return sp_errorf(err, "%s: expected an object", where);
    const json_t *f = json_object_get(c, "function");
    if (f && !json_is_null(f)) {
        if (!json_is_object(f)) return sp_errorf(err, "%s.function: expected an object", where);
        c = f;
    }
    const json_t *name = json_object_get(c, "name"), *args = json_object_get(c, "arguments");
    char sub[160];
    if (!json_is_string(name)) return sp_errorf(err, "%s: the function needs a \"name\" string", where);
    snprintf(sub, sizeof sub, "%s.function.name", where);
    if (get_text(m, name, sub, &out->name, err)) return -1;
    snprintf(sub, sizeof sub, "%s.function.arguments", where);
    out->arguments_is_json = false;
    json_t *parsed = NULL;
    if ((flags & SP_CHAT_JSON_OBJECT_ARGS) && json_is_string(args)) {
        parsed = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
        if (json_is_object(parsed)) args = parsed;
    }
    if (!args || json_is_string(args)) {
        json_decref(parsed);
        if (!args) out->arguments = "";
        else if (get_text(m, args, sub, &out->arguments, err)) return -1;
        return 0;
    }
    out->arguments_is_json = true;
    out->arguments = keep(m, sp_json_dumps_py(args));
    json_decref(parsed);
    if (!out->arguments)
        return sp_errorf(err, "%s: cannot serialize (out of memory or nested deeper than 512)", sub);
    return 0;
}

void sp_chat_msgs_free(sp_chat_msgs *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_strs; i++) free(m->strs[i]);
    free(m->strs);
    free(m->calls);
    free(m->msgs);
    memset(m, 0, sizeof *m);
}

static int from_json(const json_t *arr, unsigned flags, sp_chat_msgs *m, sp_error *err)
{
    if (!json_is_array(arr)) return sp_errorf(err, "messages: expected an array of message objects");
    size_t n = json_array_size(arr), n_calls = 0;
    if (n == 0) return sp_errorf(err, "messages: the array is empty; a chat needs at least one message");
    if (n > 1u << 20) return sp_errorf(err, "messages: %zu messages, at most 1048576", n);
    for (size_t i = 0; i < n; i++) {
        const json_t *tc = json_object_get(json_array_get(arr, i), "tool_calls");
        if (json_is_array(tc)) n_calls += json_array_size(tc);
    }
    m->msgs = calloc(n, sizeof *m->msgs);
    m->calls = calloc(n_calls ? n_calls : 1, sizeof *m->calls);
    if (!m->msgs || !m->calls) return sp_errorf(err, "messages: out of memory");
    size_t call = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        sp_chat_msg *msg = &m->msgs[i];
        char where[96];
        if (!json_is_object(o)) return sp_errorf(err, "messages[%zu]: expected an object", i);
        const json_t *role = json_object_get(o, "role");
        snprintf(where, sizeof where, "messages[%zu].role", i);
        if (!json_is_string(role)) return sp_errorf(err, "%s: expected a string (\"user\", \"assistant\", ...)", where);
        if (get_text(m, role, where, &msg->role, err)) return -1;
        snprintf(where, sizeof where, "messages[%zu].content", i);
        if (get_content(m, json_object_get(o, "content"), where, &msg->content, err)) return -1;
        const json_t *rc = json_object_get(o, "reasoning_content");
        snprintf(where, sizeof where, "messages[%zu].reasoning_content", i);
        if (rc && !json_is_null(rc)) {
            if (!json_is_string(rc)) return sp_errorf(err, "%s: expected a string or null", where);
            if (get_text(m, rc, where, &msg->reasoning_content, err)) return -1;
        }
        const json_t *tc = json_object_get(o, "tool_calls");
        /* null or [] count as no tool calls (Llama 3's template would raise) */
        if (tc && !json_is_null(tc)) {
            snprintf(where, sizeof where, "messages[%zu].tool_calls", i);
            if (!json_is_array(tc)) return sp_errorf(err, "%s: expected an array", where);
            msg->has_tool_calls = json_array_size(tc) > 0;
            msg->tool_calls = &m->calls[call];
            for (size_t j = 0; j < json_array_size(tc); j++) {
                snprintf(where, sizeof where, "messages[%zu].tool_calls[%zu]", i, j);
                if (get_tool_call(m, json_array_get(tc, j), where, flags, &m->calls[call++], err)) return -1;
                msg->n_tool_calls++;
            }
        }
        m->n++;
    }
    return 0;
}

int sp_chat_msgs_from_json(const json_t *messages, sp_chat_msgs *out, sp_error *err)
{
    return sp_chat_msgs_from_json_ex(messages, 0, out, err);
}

int sp_chat_msgs_from_json_ex(const json_t *messages, unsigned flags, sp_chat_msgs *out, sp_error *err)
{
    memset(out, 0, sizeof *out);
    if (from_json(messages, flags, out, err)) {
        sp_chat_msgs_free(out);
        return -1;
    }
    return 0;
}

int sp_chat_opts_from_json(const json_t *kwargs, sp_chat_opts *o, sp_error *err)
{
    if (!kwargs || json_is_null(kwargs)) return 0;
    if (!json_is_object(kwargs)) return sp_errorf(err, "chat template kwargs: expected an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)kwargs, key, v) {
        if (!strcmp(key, "enable_thinking")) {
            if (!json_is_boolean(v)) return sp_errorf(err, "chat template kwargs: enable_thinking must be true or false");
            o->enable_thinking = json_is_true(v);
        } else if (!strcmp(key, "date_string")) {
            if (!json_is_string(v) || memchr(json_string_value(v), 0, json_string_length(v)))
                return sp_errorf(err, "chat template kwargs: date_string must be a string like \"26 Jul 2024\"");
            o->date_string = json_string_value(v);
        } else {
            return sp_errorf(err, "chat template kwargs: '%s' is not supported (known: enable_thinking, "
                                  "date_string)", key);
        }
    }
    return 0;
}
