/* chat_other.c - the renderers of the Mistral Instruct v0.1/v0.2, Phi-3 /
 * Phi-3.5 and Gemma 1/2 chat templates (their tokenizer_config.json on
 * Hugging Face). Each follows its Jinja template statement by statement. */
#include "chat_impl.h"

/* Mistral: bos_token, then "[INST] " + content + " [/INST]" per user turn
 * and content + eos_token per assistant turn, untrimmed; roles alternate and
 * any other role (system included) raises. No generation prompt. */
int sp_chat_render_mistral(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                           sp_sbuf *b, sp_error *err)
{
    sb_puts(b, t->bos);
    for (int i = 0; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        if (sp_chat_check_alternate(m, i, "mistral", err)) return -1;
        if (sp_chat_role_is(m, "user")) {
            sb_puts(b, "[INST] ");
            sb_putv(b, sv_of(m->content));
            sb_puts(b, " [/INST]");
        } else if (sp_chat_role_is(m, "assistant")) {
            sb_putv(b, sv_of(m->content));
            sb_puts(b, t->eos);
        } else {
            return sp_errorf(err, "mistral chat template: only user and assistant roles are supported "
                                  "(message %d is '%s')", i + 1, m->role);
        }
    }
    return 0;
}

/* Phi-3: "<|system|>\n", "<|user|>\n" or "<|assistant|>\n" + content +
 * "<|end|>\n" per message (Phi-3.5 skips an empty system message; other
 * roles render nothing); "<|assistant|>\n" as the generation prompt, else
 * eos_token. */
int sp_chat_render_phi3(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                        sp_sbuf *b, sp_error *err)
{
    for (int i = 0; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        sp_sv c = sv_of(m->content);
        const char *tag = NULL;
        if (sp_chat_role_is(m, "system")) {
            if (!(t->flags & SP_CHAT_SKIP_EMPTY_SYSTEM) || c.n > 0) tag = "<|system|>\n";
        } else if (sp_chat_role_is(m, "user")) {
            tag = "<|user|>\n";
        } else if (sp_chat_role_is(m, "assistant")) {
            tag = "<|assistant|>\n";
        }
        if (!tag) continue;
        sb_puts(b, tag);
        sb_putv(b, c);
        sb_puts(b, "<|end|>\n");
    }
    sb_puts(b, o->add_generation_prompt ? "<|assistant|>\n" : t->eos);
    return 0;
}

/* Gemma: bos_token; a system message raises; roles alternate; assistant is
 * spelled "model"; "<start_of_turn>" + role + "\n" + content|trim +
 * "<end_of_turn>\n"; "<start_of_turn>model\n" as the generation prompt. */
int sp_chat_render_gemma(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                         sp_sbuf *b, sp_error *err)
{
    if (sp_chat_role_is(&msgs[0], "system"))
        return sp_errorf(err, "gemma chat template: system role not supported (fold the system text into "
                              "the first user message)");
    sb_puts(b, t->bos);
    for (int i = 0; i < n; i++) {
        const sp_chat_msg *m = &msgs[i];
        if (sp_chat_check_alternate(m, i, "gemma", err)) return -1;
        sb_puts(b, "<start_of_turn>");
        sb_puts(b, sp_chat_role_is(m, "assistant") ? "model" : m->role);
        sb_puts(b, "\n");
        sb_putv(b, sv_strip(sv_of(m->content)));
        sb_puts(b, "<end_of_turn>\n");
    }
    if (o->add_generation_prompt) sb_puts(b, "<start_of_turn>model\n");
    return 0;
}
