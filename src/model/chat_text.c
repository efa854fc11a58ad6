/* chat_text.c - the string operations behind the chat template renderers:
 * a growable output buffer, JSON quoting as the `tojson` filter does it, and
 * Python's strip/find/split semantics on UTF-8 bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_impl.h"

void sb_putn(sp_sbuf *b, const char *s, size_t n)
{
    if (b->oom || n == 0) return;
    if (n > SIZE_MAX / 4 - b->n) { b->oom = true; return; }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_puts(sp_sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_put_json_str(sp_sbuf *b, const char *s, size_t n)
{
    sb_putn(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) { snprintf(hex, sizeof hex, "\\u%04x", c); esc = hex; }
        }
        if (!esc) continue;
        sb_putn(b, s + run, i - run);
        sb_puts(b, esc);
        run = i + 1;
    }
    sb_putn(b, s + run, n - run);
    sb_putn(b, "\"", 1);
}

void sb_put_args_tojson(sp_sbuf *b, const sp_chat_tool_call *c)
{
    const char *a = c->arguments ? c->arguments : "";
    if (c->arguments_is_json) sb_puts(b, a);
    else sb_put_json_str(b, a, strlen(a));
}

sp_sv sv_of(const char *s)
{
    sp_sv v = {s ? s : "", s ? strlen(s) : 0};
    return v;
}

void sb_putv(sp_sbuf *b, sp_sv v) { sb_putn(b, v.p, v.n); }

static bool is_py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Decode one UTF-8 character at s[0..n); returns its length, 0 if invalid
 * (overlong forms and surrogates included, as Python would never hold them). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xe0) == 0xc0) { len = 2; v = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { len = 3; v = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

static sp_sv sv_lstrip(sp_sv v)
{
    uint32_t cp = 0;
    size_t len;
    while ((len = utf8_decode((const unsigned char *)v.p, v.n, &cp)) && is_py_space(cp)) {
        v.p += len;
        v.n -= len;
    }
    return v;
}

static sp_sv sv_rstrip(sp_sv v)
{
    while (v.n > 0) {
        /* the last character starts at most 3 bytes before the end */
        size_t start = v.n - 1, back = 0;
        while (back < 3 && start > 0 && ((unsigned char)v.p[start] & 0xc0) == 0x80) {
            start--;
            back++;
        }
        uint32_t cp = 0;
        size_t len = utf8_decode((const unsigned char *)v.p + start, v.n - start, &cp);
        if (len != v.n - start || !is_py_space(cp)) break;
        v.n = start;
    }
    return v;
}

sp_sv sv_strip(sp_sv v) { return sv_rstrip(sv_lstrip(v)); }

sp_sv sv_lstrip_ch(sp_sv v, char c)
{
    while (v.n > 0 && v.p[0] == c) { v.p++; v.n--; }
    return v;
}

sp_sv sv_rstrip_ch(sp_sv v, char c)
{
    while (v.n > 0 && v.p[v.n - 1] == c) v.n--;
    return v;
}

sp_sv sv_strip_ch(sp_sv v, char c) { return sv_rstrip_ch(sv_lstrip_ch(v, c), c); }

long sv_find(sp_sv v, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0) return 0;
    if (k > v.n) return -1;
    for (size_t i = 0; i + k <= v.n; i++)
        if (v.p[i] == needle[0] && !memcmp(v.p + i, needle, k)) return (long)i;
    return -1;
}

long sv_rfind(sp_sv v, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0) return (long)v.n;
    if (k > v.n) return -1;
    for (size_t i = v.n - k + 1; i-- > 0;)
        if (v.p[i] == needle[0] && !memcmp(v.p + i, needle, k)) return (long)i;
    return -1;
}

bool sv_starts(sp_sv v, const char *prefix)
{
    size_t k = strlen(prefix);
    return k <= v.n && !memcmp(v.p, prefix, k);
}

bool sv_ends(sp_sv v, const char *suffix)
{
    size_t k = strlen(suffix);
    return k <= v.n && !memcmp(v.p + v.n - k, suffix, k);
}
