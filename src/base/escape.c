/* escape.c - UTF-8 validation and the escapes of untrusted text for a
 * terminal and for JSON (see escape.h). */
#include "shardpipe/escape.h"

#include <string.h>

int sp_utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000, c &= 0x07;
    else return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

bool sp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned cp;
    for (size_t i = 0; i < n;) {
        int k = sp_utf8_next(p + i, n - i, &cp);
        if (!k) return false;
        i += (size_t)k;
    }
    return true;
}

char *sp_escape_text(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0) return dst;
    const unsigned char *p = (const unsigned char *)src;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char tmp[8];
        size_t m;
        unsigned cp;
        int k = sp_utf8_next(p + i, n - i, &cp);
        if (k && cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp < 0xA0)) {
            m = (size_t)k;
            memcpy(tmp, p + i, m);
        } else if (k == 1 && (cp == '\n' || cp == '\t' || cp == '\r')) {
            tmp[0] = '\\', tmp[1] = cp == '\n' ? 'n' : cp == '\t' ? 't' : 'r', m = 2;
            k = 1;
        } else {
            /* a control character or a byte outside UTF-8: show the first byte,
             * resume at the next (a C1 control's two bytes come out as two) */
            static const char hex[] = "0123456789abcdef";
            tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[p[i] >> 4], tmp[3] = hex[p[i] & 15], m = 4;
            k = 1;
        }
        if (o + m >= cap) break;
        memcpy(dst + o, tmp, m);
        o += m;
        i += (size_t)k;
    }
    dst[o] = '\0';
    return dst;
}

void sp_json_put_string(FILE *f, const char *src, size_t n)
{
    const unsigned char *p = (const unsigned char *)src;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned cp;
        int k = sp_utf8_next(p + i, n - i, &cp);
        if (!k) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (char)cp);
        else if (cp == '\n') fputs("\\n", f);
        else if (cp == '\t') fputs("\\t", f);
        else if (cp == '\r') fputs("\\r", f);
        else if (cp < 0x20 || cp == 0x7F) fprintf(f, "\\u%04x", cp);
        else fwrite(p + i, 1, (size_t)k, f);
        i += (size_t)k;
    }
    fputc('"', f);
}
