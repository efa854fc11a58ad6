/* chat_impl.h - private to the chat template renderers (src/model/chat*.c):
 * a growable output string and the few Python string methods the templates
 * call (str.strip and friends, `in`, split), with Python's semantics. */
#ifndef SHARDPIPE_CHAT_IMPL_H
#define SHARDPIPE_CHAT_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "shardpipe/chat.h"

/* Output under construction. A failed allocation sets oom and drops later
 * writes; the renderer reports it once at the end. */
typedef struct sp_sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sp_sbuf;

void sb_putn(sp_sbuf *b, const char *s, size_t n);
void sb_puts(sp_sbuf *b, const char *s);
/* A string as Python's json.dumps(s, ensure_ascii=False) writes it (the
 * `tojson` filter transformers installs): quoted, with \" \\ \n \r \t \b \f
 * and \u00XX for the other control characters; other bytes as they are. */
void sb_put_json_str(sp_sbuf *b, const char *s, size_t n);

/* `arguments | tojson` of a tool call: an argument string JSON-quoted, an
 * already serialized JSON value as it is. */
void sb_put_args_tojson(sp_sbuf *b, const sp_chat_tool_call *c);

/* A view of part of a string. */
typedef struct sp_sv {
    const char *p;
    size_t n;
} sp_sv;

sp_sv sv_of(const char *s); /* NULL gives "" */
void sb_putv(sp_sbuf *b, sp_sv v);
/* Python str.strip() / lstrip() / rstrip() without arguments: Unicode
 * whitespace as str.isspace() defines it (ASCII \t\n\v\f\r and space,
 * U+001C-001F, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000), read from UTF-8; an invalid byte is not space. */
sp_sv sv_strip(sp_sv v);
/* str.strip(c) / lstrip(c) / rstrip(c) with one ASCII character. */
sp_sv sv_strip_ch(sp_sv v, char c);
sp_sv sv_lstrip_ch(sp_sv v, char c);
sp_sv sv_rstrip_ch(sp_sv v, char c);
/* Offset of the first / last occurrence of needle, or -1 (`in`, split). */
long sv_find(sp_sv v, const char *needle);
long sv_rfind(sp_sv v, const char *needle);
bool sv_starts(sp_sv v, const char *prefix);
bool sv_ends(sp_sv v, const char *suffix);

/* One renderer per family: write the rendering of msgs into b; return 0, or
 * -1 with err set where the template raises an exception. */
typedef int (*sp_chat_render_fn)(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                                 const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_llama3(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                          const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_llama30(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                           const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_llama2(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                          const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_qwen3(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                         const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_qwen25(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                          const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_chatml(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                          const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_mistral(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                           const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_phi3(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                        const sp_chat_opts *o, sp_sbuf *b, sp_error *err);
int sp_chat_render_gemma(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                         const sp_chat_opts *o, sp_sbuf *b, sp_error *err);

/* Today's date as strftime("%d %b %Y") gives it (Llama 3.2's default). */
void sp_chat_today(char out[16]);

/* Shared checks of the [INST]-style and Gemma templates. */
bool sp_chat_role_is(const sp_chat_msg *m, const char *role);
/* raise_exception('Conversation roles must alternate ...') when message k
 * (counted from the first message of the loop) breaks user/assistant turns. */
int sp_chat_check_alternate(const sp_chat_msg *m, int k, const char *family, sp_error *err);

#endif
