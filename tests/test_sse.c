/* test_sse.c - the SSE parser of `shardpipe chat` (src/client/sse.c): a
 * stream as OpenAI-compatible servers send it, fed whole and then split at
 * every byte boundary (and into single bytes) must give the same events;
 * \r\n, \r and \n line ends (a \r\n split across two reads is one line
 * end); multi-line data joined by \n; comments and other fields dropped;
 * an event without a blank line after it is not delivered; a non-zero
 * return from the callback stops the parser; and the embedded chat page is
 * the bytes of src/ui/chat.html. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/client.h"
#include "shardpipe/ui.h"
#include "testutil.h"

typedef struct events {
    char all[4096]; /* each event's data followed by '|' */
    int n, stop_at;
} events;

static int collect(void *ud, const char *data, size_t len)
{
    events *e = ud;
    cr_assert_eq(data[len], 0, "the event is also a C string");
    cr_assert_eq(strlen(data), len, "no NUL inside the event");
    strncat(e->all, data, sizeof e->all - strlen(e->all) - 2);
    strcat(e->all, "|");
    e->n++;
    return e->stop_at && e->n == e->stop_at ? 7 : 0;
}

static void parse_split(const char *s, size_t at, events *e)
{
    sp_sse p;
    memset(e, 0, sizeof *e);
    sp_sse_init(&p, collect, e);
    size_t n = strlen(s);
    if (at > n) at = n;
    cr_assert_eq(sp_sse_feed(&p, s, at), 0);
    cr_assert_eq(sp_sse_feed(&p, s + at, n - at), 0);
    sp_sse_free(&p);
}

static const char *stream =
    ": keep-alive comment\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Once\"}}]}\n\n"
    "event: message\r\nid: 7\r\ndata: {\"choices\":[{\"delta\":{\"content\":\" upon\"}}]}\r\n\r\n"
    "data:no-space\r\rdata: line one\ndata: line two\n\n"
    "data: [DONE]\n\n";

static const char *expected =
    "{\"choices\":[{\"delta\":{\"content\":\"Once\"}}]}|"
    "{\"choices\":[{\"delta\":{\"content\":\" upon\"}}]}|"
    "no-space|line one\nline two|[DONE]|";

Test(sse, whole_stream)
{
    events e;
    parse_split(stream, strlen(stream), &e);
    cr_assert_eq(e.n, 5);
    cr_assert_str_eq(e.all, expected);
}

Test(sse, every_split_point_gives_the_same_events)
{
    size_t n = strlen(stream);
    for (size_t at = 0; at <= n; at++) {
        events e;
        parse_split(stream, at, &e);
        cr_assert_str_eq(e.all, expected, "split at byte %zu", at);
    }
}

Test(sse, one_byte_at_a_time)
{
    events e = {0};
    sp_sse p;
    sp_sse_init(&p, collect, &e);
    for (const char *c = stream; *c; c++) cr_assert_eq(sp_sse_feed(&p, c, 1), 0);
    sp_sse_free(&p);
    cr_assert_str_eq(e.all, expected);
}

Test(sse, crlf_split_across_reads_is_one_line_end)
{
    /* Had the \n after a split \r been taken for a second line end, it
     * would be a blank line and "a" and "b" would come as two events. */
    events e = {0};
    sp_sse p;
    sp_sse_init(&p, collect, &e);
    sp_sse_feed(&p, "data: a\r", 8);
    sp_sse_feed(&p, "\ndata: b\r", 9);
    sp_sse_feed(&p, "\n\r", 2);
    sp_sse_feed(&p, "\n", 1);
    sp_sse_free(&p);
    cr_assert_str_eq(e.all, "a\nb|");
}

Test(sse, unterminated_event_is_not_delivered)
{
    events e;
    parse_split("data: one\n\ndata: two\n", 5, &e);
    cr_assert_str_eq(e.all, "one|");
}

Test(sse, empty_data_and_fieldless_lines)
{
    events e;
    /* "data" with no colon is a data field with an empty value; a blank line
     * with no data before it dispatches nothing */
    parse_split("\n\ndata\n\nretry: 10\n\ndata: x\n\n", 3, &e);
    cr_assert_str_eq(e.all, "|x|");
}

Test(sse, callback_stops_the_parser)
{
    events e = {0};
    e.stop_at = 2;
    sp_sse p;
    sp_sse_init(&p, collect, &e);
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    cr_assert_eq(sp_sse_feed(&p, s, strlen(s)), 7);
    cr_assert_eq(sp_sse_feed(&p, "data: 4\n\n", 9), 7, "stays stopped");
    sp_sse_free(&p);
    cr_assert_str_eq(e.all, "1|2|");
}

Test(sse, long_event_grows_the_buffers)
{
    size_t n = 100000;
    char *s = malloc(n + 16);
    cr_assert_not_null(s);
    memcpy(s, "data: ", 6);
    for (size_t i = 0; i < n; i++) s[6 + i] = (char)('a' + i % 26);
    memcpy(s + 6 + n, "\n\n", 3);
    events e = {0};
    sp_sse p;
    sp_sse_init(&p, collect, &e);
    for (size_t at = 0; at < n + 8; at += 4093) {
        size_t k = n + 8 - at < 4093 ? n + 8 - at : 4093;
        sp_sse_feed(&p, s + at, k);
    }
    sp_sse_free(&p);
    cr_assert_eq(e.n, 1);
    cr_assert_eq(memcmp(e.all, s + 6, sizeof e.all - 2), 0, "the first 4 KB of the event are the data");
    free(s);
}

Test(ui, embedded_page_is_the_source_file)
{
    size_t len;
    char *src = sp_test_read_file(SP_SOURCE_DIR "/src/ui/chat.html", &len);
    cr_assert_not_null(src, "src/ui/chat.html is readable");
    cr_assert_eq(sp_ui_chat_html_len, len, "embedded %zu bytes, file has %zu", sp_ui_chat_html_len, len);
    cr_assert_eq(memcmp(sp_ui_chat_html, src, len), 0);
    cr_assert_eq(sp_ui_chat_html[len], 0, "NUL-terminated");
    free(src);
}
