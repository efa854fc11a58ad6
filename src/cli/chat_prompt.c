/* chat_prompt.c - see chat_prompt.h. */
#include "chat_prompt.h"

#include <stdlib.h>
#include <string.h>

int sp_cli_chat_prompt(const sp_gguf *g, const sp_tokenizer *tok, const char *tmpl_name, const char *system,
                       const char *user, sp_cli_chat *out, sp_error *err)
{
    memset(out, 0, sizeof *out);
    if (sp_chat_from_gguf(g, tmpl_name, &out->tmpl, err)) return -1;
    sp_chat_msg msgs[2] = {{.role = "system", .content = system}, {.role = "user", .content = user}};
    sp_chat_opts o = sp_chat_opts_default();
    int first = system ? 0 : 1;
    if (!(out->text = sp_chat_render(&out->tmpl, msgs + first, 2 - first, &o, err))) return -1;

    out->ids = sp_tokenize(tok, out->text, sp_chat_tokenize_flags(&out->tmpl, out->text), &out->n_ids, err);
    if (!out->ids) return -1;

    /* the stop texts that are single tokens of this vocabulary */
    const char *stops[SP_CHAT_MAX_STOPS];
    int ns = sp_chat_stop_texts(&out->tmpl, stops);
    for (int id = 0; id < sp_tokenizer_n_vocab(tok); id++) {
        const char *piece = sp_token_piece(tok, id);
        for (int s = 0; s < ns && piece; s++)
            if (!strcmp(piece, stops[s]) && out->n_stop < SP_CHAT_MAX_STOPS) out->stop_ids[out->n_stop++] = id;
    }
    return 0;
}

bool sp_cli_chat_is_stop(const sp_cli_chat *c, int id)
{
    for (int i = 0; i < c->n_stop; i++)
        if (c->stop_ids[i] == id) return true;
    return false;
}

void sp_cli_chat_free(sp_cli_chat *c)
{
    free(c->text);
    free(c->ids);
    memset(c, 0, sizeof *c);
}
