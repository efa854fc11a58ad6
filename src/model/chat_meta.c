/* chat_meta.c - the renderers of Meta's chat templates: Llama 3.1-3.3
 * (Llama-3.2-Instruct's tokenizer_config.json), Llama 3.0 and Llama 2 chat.
 * Each follows its Jinja template statement by statement; the comments quote
 * what they implement. */
#include <stdlib.h>
#include <string.h>

#include "chat_impl.h"

static const char *const HDR_START = "<|start_header_id|>", *const HDR_END = "<|end_header_id|>\n\n";
static const char *const EOT = "<|eot_id|>";

static void header(sp_sbuf *b, const char *role)
{
    sb_puts(b, HDR_START);
    sb_puts(b, role);
    sb_puts(b, HDR_END);
}

/* header + content|trim + <|eot_id|>: a plain message of both Llama 3s */
static void trimmed_turn(sp_sbuf *b, const sp_chat_msg *m)
{
    header(b, m->role);
    sb_putv(b, sv_strip(sv_of(m->content)));
    sb_puts(b, EOT);
}

/* Llama 3.x with tools = none (the API passes no tool list):
 *   bos_token; a system header "Cutting Knowledge Date: December 2023\n
 *   Today Date: <date>\n\n" + messages[0].content|trim when it is a system
 *   message; then per message: a tool call as {"name": ..., "parameters":
 *   arguments|tojson}, a tool/ipython result under the ipython header, or
 *   header + content|trim + <|eot_id|>. */
int sp_chat_render_llama3(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                          sp_sbuf *b, sp_error *err)
{
    char today[16];
    const char *date = o->date_string;
    if (!date) {
        /* {% if strftime_now is defined %}{% set date_string = strftime_now("%d %b %Y") %}
         * {% else %}{% set date_string = "26 Jul 2024" %} */
        if (t->flags & SP_CHAT_DATE_TODAY) {
            sp_chat_today(today);
            date = today;
        } else {
            date = "26 Jul 2024";
        }
    }
    sb_puts(b, t->bos);
    int first = 0;
    sp_sv system = sv_of("");
    if (sp_chat_role_is(&msgs[0], "system")) {
        system = sv_strip(sv_of(msgs[0].content));
        first = 1;
    }
    header(b, "system");
    sb_puts(b, "Cutting Knowledge Date: December 2023\nToday Date: ");
    sb_puts(b, date);
    sb_puts(b, "\n\n");
    sb_putv(b, system);
    sb_puts(b, EOT);

    for (int i = first; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        bool tool = sp_chat_role_is(m, "tool") || sp_chat_role_is(m, "ipython");
        if (!tool && !m->has_tool_calls) {
            trimmed_turn(b, m);
        } else if (m->has_tool_calls) {
            if (m->n_tool_calls != 1)
                return sp_errorf(err, "llama3 chat template: this model only supports single tool-calls at "
                                      "once (message %d has %d)", i + 1, m->n_tool_calls);
            const sp_chat_tool_call *c = &m->tool_calls[0];
            header(b, "assistant");
            sb_puts(b, "{\"name\": \"");
            sb_puts(b, c->name ? c->name : "");
            sb_puts(b, "\", \"parameters\": ");
            sb_put_args_tojson(b, c);
            sb_puts(b, "}");
            sb_puts(b, EOT);
        } else {
            /* {% if message.content is mapping or message.content is iterable %}
             * {{ message.content | tojson }}: a string is iterable in Jinja,
             * so a tool result string is printed JSON-quoted */
            header(b, "ipython");
            sp_sv c = sv_of(m->content);
            sb_put_json_str(b, c.p, c.n);
            sb_puts(b, EOT);
        }
    }
    if (o->add_generation_prompt) header(b, "assistant");
    return 0;
}

/* Llama 3.0: per message header + content|trim + <|eot_id|>, bos_token
 * before the first; no system header of its own. */
int sp_chat_render_llama30(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                           sp_sbuf *b, sp_error *err)
{
    sb_puts(b, t->bos);
    for (int i = 0; i < n; i++) trimmed_turn(b, &msgs[i]);
    if (o->add_generation_prompt) header(b, "assistant");
    return 0;
}

/* Llama 2 chat (meta-llama/Llama-2-7b-chat-hf): a leading system message
 * becomes "<<SYS>>\n" + it + "\n<</SYS>>\n\n" before the first turn's
 * content; user turns are bos + "[INST] " + content.strip() + " [/INST]",
 * assistant turns " " + content.strip() + " " + eos; roles must alternate.
 * The template has no generation prompt (the [/INST] is one). */
int sp_chat_render_llama2(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                          sp_sbuf *b, sp_error *err)
{
    int first = sp_chat_role_is(&msgs[0], "system") ? 1 : 0;
    for (int i = first; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        int k = i - first;
        if (sp_chat_check_alternate(m, k, "llama2", err)) return -1;
        sp_sv content = sv_of(m->content);
        sp_sbuf joined = {0};
        if (k == 0 && first) {
            sb_puts(&joined, "<<SYS>>\n");
            sb_putv(&joined, sv_of(msgs[0].content));
            sb_puts(&joined, "\n<</SYS>>\n\n");
            sb_putv(&joined, content);
            if (joined.oom) b->oom = true;
            content.p = joined.p ? joined.p : "";
            content.n = joined.n;
        }
        if (sp_chat_role_is(m, "user")) {
            sb_puts(b, t->bos);
            sb_puts(b, "[INST] ");
            sb_putv(b, sv_strip(content));
            sb_puts(b, " [/INST]");
        } else if (sp_chat_role_is(m, "assistant")) {
            sb_puts(b, " ");
            sb_putv(b, sv_strip(content));
            sb_puts(b, " ");
            sb_puts(b, t->eos);
        }
        free(joined.p);
    }
    return 0;
}
