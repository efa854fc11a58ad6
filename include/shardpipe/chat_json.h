/* chat_json.h - OpenAI-style chat messages (a jansson json_t array) to the
 * plain sp_chat_msg structs of chat.h. Lives in its own library (sp_chatjson,
 * src/chatjson/) so that the model layer does not depend on jansson; the
 * server and the CLI link it.
 *
 * Accepted per message: "role" (string, required), "content" (string, null,
 * or an array of {"type": "text", "text": ...} parts, concatenated),
 * "reasoning_content" (string or null), "tool_calls" (array of
 * {"function": {"name", "arguments"}} or {"name", "arguments"}; arguments a
 * string, kept as it is, or a JSON value, serialized as Python's json.dumps
 * writes it). Other keys ("name", "tool_call_id", ...) are not used by the
 * templates and are ignored. Errors name the place: "messages[2].content: ...". */
#ifndef SHARDPIPE_CHAT_JSON_H
#define SHARDPIPE_CHAT_JSON_H

#include <jansson.h>

#include "shardpipe/chat.h"

typedef struct sp_chat_msgs {
    sp_chat_msg *msgs;
    int n;
    /* private: everything the messages point to */
    sp_chat_tool_call *calls;
    char **strs;
    int n_strs, cap_strs;
} sp_chat_msgs;

/* Copies what it needs: messages may be freed after. Returns 0, or -1 with
 * err set (out is then empty; sp_chat_msgs_free is still safe). */
int sp_chat_msgs_from_json(const json_t *messages, sp_chat_msgs *out, sp_error *err);

/* Flags of sp_chat_msgs_from_json_ex. SP_CHAT_JSON_OBJECT_ARGS: an argument
 * string that is a JSON object is taken as that object (what llama.cpp's
 * server does for templates that want objects, see
 * sp_chat_quotes_string_arguments); other strings stay strings. */
enum { SP_CHAT_JSON_OBJECT_ARGS = 1u << 0 };
int sp_chat_msgs_from_json_ex(const json_t *messages, unsigned flags, sp_chat_msgs *out, sp_error *err);
void sp_chat_msgs_free(sp_chat_msgs *m);

/* Template variables from a JSON object (e.g. a request's
 * "chat_template_kwargs"): "enable_thinking" (bool), "date_string" (string;
 * o->date_string then points into kwargs, keep it alive while rendering).
 * Any other key is an error naming it. kwargs NULL leaves o as it is. */
int sp_chat_opts_from_json(const json_t *kwargs, sp_chat_opts *o, sp_error *err);

/* json.dumps(v, ensure_ascii=False) of Python: ", " and ": " separators,
 * floats in their shortest round-trip form (1.0, 1e-05, 1e+16). malloc'ed;
 * NULL on allocation failure. */
char *sp_json_dumps_py(const json_t *v);

#endif
