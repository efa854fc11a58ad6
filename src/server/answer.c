/* answer.c - the JSON of an answer in OpenAI's shapes: chat.completion and
 * text_completion bodies, their streamed chunks (chat.completion.chunk with
 * a delta; text_completion pieces), and the usage counts. */
#include <stdlib.h>

#include "internal.h"

static json_t *usage(const sp_job *j)
{
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", j->n_prompt, "completion_tokens", j->n_out,
                     "total_tokens", j->n_prompt + j->n_out, "prompt_tokens_details", "cached_tokens", j->n_cached);
}

static json_t *head(const sp_job *j, const char *object)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", j->id, "object", object, "created", (json_int_t)j->created,
                     "model", j->srv->model_id);
}

static char *dump(json_t *root)
{
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static json_t *finish_value(const char *finish) { return finish ? json_string(finish) : json_null(); }

char *sp_answer_chunk(const sp_job *j, const char *text, size_t len, const char *finish, bool first)
{
    json_t *root = head(j, j->chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice;
    if (j->chat) {
        json_t *delta = json_object();
        if (first) json_object_set_new(delta, "role", json_string("assistant"));
        if (len || (first && !finish)) json_object_set_new(delta, "content", json_stringn(text, len));
        choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                           finish_value(finish));
    } else {
        choice = json_pack("{s:i, s:s%, s:n, s:o}", "index", 0, "text", text, len, "logprobs", "finish_reason",
                           finish_value(finish));
    }
    json_object_set_new(root, "choices", json_pack("[o]", choice));
    return dump(root);
}

char *sp_answer_usage_chunk(const sp_job *j)
{
    json_t *root = head(j, j->chat ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(root, "choices", json_array());
    json_object_set_new(root, "usage", usage(j));
    return dump(root);
}

char *sp_answer_full(const sp_job *j, const char *text, size_t len, const char *finish)
{
    json_t *root = head(j, j->chat ? "chat.completion" : "text_completion");
    json_t *choice;
    if (j->chat)
        choice = json_pack("{s:i, s:{s:s, s:s%}, s:n, s:o}", "index", 0, "message", "role", "assistant", "content",
                           text, len, "logprobs", "finish_reason", finish_value(finish));
    else
        choice = json_pack("{s:i, s:s%, s:n, s:o}", "index", 0, "text", text, len, "logprobs", "finish_reason",
                           finish_value(finish));
    json_object_set_new(root, "choices", json_pack("[o]", choice));
    json_object_set_new(root, "usage", usage(j));
    return dump(root);
}
