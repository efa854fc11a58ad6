/* chat_prompt.h - a chat turn as prompt tokens for `generate --chat`: the
 * model's chat template rendered, tokenized, and the ids that end an answer. */
#ifndef SHARDPIPE_CLI_CHAT_PROMPT_H
#define SHARDPIPE_CLI_CHAT_PROMPT_H

#include <stdbool.h>

#include "shardpipe/chat.h"
#include "shardpipe/gguf.h"
#include "shardpipe/tokenizer.h"

typedef struct sp_cli_chat {
    char *text;        /* the rendering (malloc'ed) */
    int *ids;          /* its tokens (malloc'ed) */
    int n_ids;
    int stop_ids[SP_CHAT_MAX_STOPS]; /* vocabulary ids of the family's stop texts */
    int n_stop;
    sp_chat_template tmpl;
} sp_cli_chat;

/* Render [system,] user with the template of g (or --chat-template NAME) and
 * tokenize it, special-token texts parsed as tokens. */
int sp_cli_chat_prompt(const sp_gguf *g, const sp_tokenizer *tok, const char *tmpl_name, const char *system,
                       const char *user, sp_cli_chat *out, sp_error *err);
bool sp_cli_chat_is_stop(const sp_cli_chat *c, int id);
void sp_cli_chat_free(sp_cli_chat *c);

#endif
