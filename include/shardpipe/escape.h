/* escape.h - untrusted bytes (a YAML key, the head of a file, a GGUF string,
 * a prompt) made safe to show: on a terminal without its control sequences,
 * in JSON as a valid string. One place decides what "safe" means. */
#ifndef SHARDPIPE_ESCAPE_H
#define SHARDPIPE_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s[0..n), or 0 when the
 * bytes there are not one (stray continuation, overlong form, surrogate,
 * past U+10FFFF, cut short). *cp receives the code point. */
int sp_utf8_next(const unsigned char *s, size_t n, unsigned *cp);
bool sp_utf8_valid(const char *s, size_t n);

/* Copy src[0..n) into dst (NUL-terminated, cut at cap) with every control
 * character (C0, DEL, C1) and every byte that is not well-formed UTF-8
 * written as \n, \t, \r or \xNN. Printable text, backslashes included, is
 * unchanged, so escaping twice changes nothing. Returns dst. */
char *sp_escape_text(char *dst, size_t cap, const char *src, size_t n);

/* src[0..n) as a JSON string with its quotes: '"', '\\' and controls
 * escaped, each byte that is not well-formed UTF-8 written as \ufffd, so
 * the output is always valid JSON whatever the input. */
void sp_json_put_string(FILE *f, const char *src, size_t n);

#endif
