/* chat_local.h - `shardpipe chat -m MODEL`: a one-rank `shardpipe serve`
 * for MODEL, started by chat as a child process on a private loopback port,
 * so one machine chats through the same server as a cluster does. */
#ifndef SHARDPIPE_CLI_CHAT_LOCAL_H
#define SHARDPIPE_CLI_CHAT_LOCAL_H

#include <signal.h>

#include "shardpipe/error.h"

typedef struct sp_chat_local sp_chat_local;

/* Writes a one-stage plan for the whole model into a private temporary
 * folder, starts `shardpipe serve` on 127.0.0.1 at a free port with a random
 * key (given to the child in SHARDPIPE_API_KEY and returned by
 * sp_chat_local_key), and waits until /health answers. chat_template (may
 * be NULL) is passed on as serve's --chat-template. NULL with err (and the
 * tail of the server's log) when it does not come up, or when *stop is set. */
sp_chat_local *sp_chat_local_start(const char *model_path, int threads, const char *chat_template,
                                   volatile sig_atomic_t *stop, sp_error *err);
const char *sp_chat_local_url(const sp_chat_local *l);
const char *sp_chat_local_key(const sp_chat_local *l);
/* Stops the server (SIGTERM, then SIGKILL after 10 s) and removes the
 * folder. NULL is fine. */
void sp_chat_local_stop(sp_chat_local *l);

#endif
