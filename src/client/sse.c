/* sse.c - incremental parser of a text/event-stream (the Server-Sent Events
 * format of the HTML standard), as OpenAI-compatible servers stream chat
 * completions: `data: {chunk}` lines, a blank line after each event, and
 * `data: [DONE]` at the end. Bytes arrive split anywhere, so a partial line
 * waits in `line`, and a \r that ended a line remembers to swallow the \n
 * that may follow it in the next read. */
#include "shardpipe/client.h"

#include <stdlib.h>
#include <string.h>

#include "growbuf.h"

void sp_sse_init(sp_sse *s, sp_sse_event_fn on_event, void *ud)
{
    memset(s, 0, sizeof *s);
    s->on_event = on_event;
    s->ud = ud;
}

void sp_sse_free(sp_sse *s)
{
    free(s->line);
    free(s->data);
    memset(s, 0, sizeof *s);
}

/* One complete line (without its end). A blank line dispatches the event;
 * "data:" appends its value (one leading space dropped) and a \n between
 * data lines; every other field and ":comment" lines are ignored. */
static int line_done(sp_sse *s, const char *l, size_t n)
{
    if (n == 0) {
        if (!s->has_data) return 0;
        sp_grow(&s->data, &s->data_cap, s->data_len + 1);
        s->data[s->data_len] = 0;
        size_t len = s->data_len;
        s->data_len = 0;
        s->has_data = 0;
        return s->on_event(s->ud, s->data, len);
    }
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    if (name_len != 4 || memcmp(l, "data", 4)) return 0;
    const char *v = colon ? colon + 1 : l + n;
    if (v < l + n && *v == ' ') v++;
    size_t vlen = (size_t)(l + n - v);
    sp_grow(&s->data, &s->data_cap, s->data_len + vlen + 2);
    if (s->has_data) s->data[s->data_len++] = '\n';
    memcpy(s->data + s->data_len, v, vlen);
    s->data_len += vlen;
    s->has_data = 1;
    return 0;
}

int sp_sse_feed(sp_sse *s, const char *bytes, size_t n)
{
    if (s->stopped) return s->stopped;
    for (size_t i = 0; i < n; i++) {
        char ch = bytes[i];
        if (s->after_cr) {
            s->after_cr = 0;
            if (ch == '\n') continue; /* the \n of a \r\n split across reads */
        }
        if (ch == '\r' || ch == '\n') {
            s->after_cr = ch == '\r';
            int rc = line_done(s, s->line, s->line_len);
            s->line_len = 0;
            if (rc) return s->stopped = rc;
            continue;
        }
        /* the rest of the line up to its end in one copy */
        size_t j = i;
        while (j < n && bytes[j] != '\r' && bytes[j] != '\n') j++;
        sp_grow(&s->line, &s->line_cap, s->line_len + (j - i));
        memcpy(s->line + s->line_len, bytes + i, j - i);
        s->line_len += j - i;
        i = j - 1;
    }
    return 0;
}
