/* chat_chatml.c - the renderers of ChatML templates: Qwen3's (thinking
 * blocks, tool calls and tool responses) and plain ChatML. Each follows its
 * Jinja template statement by statement; the comments quote what they
 * implement. Qwen does not trim content. */
#include <string.h>

#include "chat_impl.h"

static void turn(sp_sbuf *b, const char *role, sp_sv content)
{
    sb_puts(b, "<|im_start|>");
    sb_puts(b, role);
    sb_puts(b, "\n");
    sb_putv(b, content);
    sb_puts(b, "<|im_end|>\n");
}

/* A tool result of Qwen2.5 and Qwen3: consecutive results share one user
 * turn, each in <tool_response> tags. */
static void tool_result(sp_sbuf *b, const sp_chat_msg *msgs, int n, int i)
{
    if (i == 0 || !sp_chat_role_is(&msgs[i - 1], "tool")) sb_puts(b, "<|im_start|>user");
    sb_puts(b, "\n<tool_response>\n");
    sb_putv(b, sv_of(msgs[i].content));
    sb_puts(b, "\n</tool_response>");
    if (i == n - 1 || !sp_chat_role_is(&msgs[i + 1], "tool")) sb_puts(b, "<|im_end|>\n");
}

/* A user message that only carries tool output does not count as the
 * latest query: content.startswith('<tool_response>') and
 * content.endswith('</tool_response>'). */
static bool is_tool_response(const sp_chat_msg *m)
{
    sp_sv c = sv_of(m->content);
    return sv_starts(c, "<tool_response>") && sv_ends(c, "</tool_response>");
}

/* An assistant turn of Qwen3: content and reasoning_content (taken from the
 * message, or split out of "<think>...</think>" in content), the <think>
 * block written only for turns after the last user query, then the tool
 * calls. */
static void qwen3_assistant(const sp_chat_msg *m, bool after_query, bool last, sp_sbuf *b)
{
    sp_sv content = sv_of(m->content), reasoning = sv_of("");
    if (m->reasoning_content) {
        reasoning = sv_of(m->reasoning_content);
    } else {
        long end = sv_find(content, "</think>");
        if (end >= 0) {
            /* content.split('</think>')[-1].lstrip('\n') */
            long last_end = sv_rfind(content, "</think>");
            sp_sv after = {content.p + last_end + 8, content.n - (size_t)last_end - 8};
            /* content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
            sp_sv before = {content.p, (size_t)end};
            before = sv_rstrip_ch(before, '\n');
            long open = sv_rfind(before, "<think>");
            if (open >= 0) before = (sp_sv){before.p + open + 7, before.n - (size_t)open - 7};
            reasoning = sv_lstrip_ch(before, '\n');
            content = sv_lstrip_ch(after, '\n');
        }
    }
    sb_puts(b, "<|im_start|>assistant\n");
    if (after_query && (last || reasoning.n > 0)) {
        sb_puts(b, "<think>\n");
        sb_putv(b, sv_strip_ch(reasoning, '\n'));
        sb_puts(b, "\n</think>\n\n");
        sb_putv(b, sv_lstrip_ch(content, '\n'));
    } else {
        sb_putv(b, content);
    }
    for (int j = 0; j < m->n_tool_calls; j++) {
        const sp_chat_tool_call *c = &m->tool_calls[j];
        /* {% if (loop.first and content) or (not loop.first) %}\n */
        if (j > 0 || content.n > 0) sb_puts(b, "\n");
        sb_puts(b, "<tool_call>\n{\"name\": \"");
        sb_puts(b, c->name ? c->name : "");
        sb_puts(b, "\", \"arguments\": ");
        /* a string is printed as it is, anything else | tojson */
        sb_putv(b, sv_of(c->arguments));
        sb_puts(b, "}\n</tool_call>");
    }
    sb_puts(b, "<|im_end|>\n");
}

int sp_chat_render_qwen3(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                         sp_sbuf *b, sp_error *err)
{
    /* tools = none: a leading system message is written first */
    if (sp_chat_role_is(&msgs[0], "system")) turn(b, "system", sv_of(msgs[0].content));
    /* ns.last_query_index: the last user message that is not a tool
     * response (messages|length - 1 when there is none) */
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--)
        if (sp_chat_role_is(&msgs[i], "user") && !is_tool_response(&msgs[i])) {
            last_query = i;
            break;
        }
    for (int i = 0; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        if (sp_chat_role_is(m, "user") || (sp_chat_role_is(m, "system") && i > 0)) {
            turn(b, m->role, sv_of(m->content));
        } else if (sp_chat_role_is(m, "assistant")) {
            qwen3_assistant(m, i > last_query, i == n - 1, b);
        } else if (sp_chat_role_is(m, "tool")) {
            tool_result(b, msgs, n, i);
        }
        /* other roles render nothing */
    }
    if (o->add_generation_prompt) {
        sb_puts(b, "<|im_start|>assistant\n");
        /* {% if enable_thinking is defined and enable_thinking is false %} */
        if (o->enable_thinking == 0) sb_puts(b, "<think>\n\n</think>\n\n");
    }
    return 0;
}

/* Qwen2.5 with tools = none: the system message, or "You are Qwen, created
 * by Alibaba Cloud. You are a helpful assistant." without one; plain turns;
 * an assistant turn with tool calls writes each as <tool_call>{"name": ...,
 * "arguments": arguments|tojson}</tool_call> (a string argument is printed
 * JSON-quoted); tool results as Qwen3 does. */
int sp_chat_render_qwen25(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                          sp_sbuf *b, sp_error *err)
{
    bool sys = sp_chat_role_is(&msgs[0], "system");
    turn(b, "system", sv_of(sys ? msgs[0].content : "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    for (int i = 0; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        bool assistant = sp_chat_role_is(m, "assistant");
        if (sp_chat_role_is(m, "user") || (sp_chat_role_is(m, "system") && i > 0) ||
            (assistant && m->n_tool_calls == 0)) {
            turn(b, m->role, sv_of(m->content));
        } else if (assistant) {
            sb_puts(b, "<|im_start|>assistant");
            sp_sv c = sv_of(m->content);
            if (c.n) {
                sb_puts(b, "\n");
                sb_putv(b, c);
            }
            for (int j = 0; j < m->n_tool_calls; j++) {
                const sp_chat_tool_call *call = &m->tool_calls[j];
                sb_puts(b, "\n<tool_call>\n{\"name\": \"");
                sb_puts(b, call->name ? call->name : "");
                sb_puts(b, "\", \"arguments\": ");
                sb_put_args_tojson(b, call);
                sb_puts(b, "}\n</tool_call>");
            }
            sb_puts(b, "<|im_end|>\n");
        } else if (sp_chat_role_is(m, "tool")) {
            tool_result(b, msgs, n, i);
        }
    }
    if (o->add_generation_prompt) sb_puts(b, "<|im_start|>assistant\n");
    return 0;
}

/* Plain ChatML: every message as <|im_start|>role\ncontent<|im_end|>\n
 * (Qwen2's variant first writes a default system message when the first
 * message is not one). */
int sp_chat_render_chatml(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                          sp_sbuf *b, sp_error *err)
{
    if ((t->flags & SP_CHAT_DEFAULT_SYSTEM) && !sp_chat_role_is(&msgs[0], "system"))
        turn(b, "system", sv_of("You are a helpful assistant."));
    for (int i = 0; i < n; i++) turn(b, msgs[i].role, sv_of(msgs[i].content));
    if (o->add_generation_prompt) sb_puts(b, "<|im_start|>assistant\n");
    return 0;
}
