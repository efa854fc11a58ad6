/* transcript.c - chat messages into prompt text for a model without a
 * chat template (stories260K, the random test models): the model's own
 * template (chat.h) renders the others (api.c). This is a plain transcript
 * that any base model continues:
 *
 *     <system text>\n\n            (when there is a system message)
 *     User: <text>\n
 *     Assistant: <text>\n
 *     ...
 *     Assistant:
 *
 * and "\nUser:" stops an answer that starts the next turn by itself. The
 * rendering of a conversation is a prefix of the rendering of the same
 * conversation with more turns, so the prompt cache reuses the earlier turns. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "shardpipe/util.h"

char *sp_srv_render_chat(const sp_srv_msg *m, int n)
{
    size_t cap = 64;
    for (int i = 0; i < n; i++) cap += strlen(m[i].content) + 16;
    char *out = sp_alloc(cap), *p = out;
    *p = 0;
    for (int i = 0; i < n; i++) {
        const char *r = m[i].role;
        if (!strcmp(r, "system") || !strcmp(r, "developer")) {
            p = stpcpy(stpcpy(p, m[i].content), "\n\n");
        } else {
            p = stpcpy(p, !strcmp(r, "assistant") ? "Assistant: " : "User: ");
            p = stpcpy(stpcpy(p, m[i].content), "\n");
        }
    }
    stpcpy(p, "Assistant:");
    return out;
}

const char *const *sp_srv_chat_stops(void)
{
    static const char *const stops[] = {"\nUser:", NULL};
    return stops;
}
