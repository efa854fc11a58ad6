/* chat.h - chat templates: turn a list of chat messages into the prompt text
 * a model was trained on, exactly as the Jinja template stored in its GGUF
 * (`tokenizer.chat_template`) renders it under Hugging Face transformers.
 *
 * There is no Jinja interpreter: the template text is recognized as one of a
 * few families by distinctive markers (sp_chat_detect, docs/ARCHITECTURE.md
 * lists them), and each family is rendered by C code that follows that
 * template line by line. A template that matches no family is an error that
 * names `--chat-template NAME`; a caller may also pick the family by name.
 *
 * Messages are plain C structs (no JSON library here); chat_json.h builds
 * them from OpenAI-style JSON with jansson. Strings are UTF-8 and
 * NUL-terminated; bytes are copied through as they are (invalid UTF-8 is not
 * an error here). A NULL content renders as "". */
#ifndef SHARDPIPE_CHAT_H
#define SHARDPIPE_CHAT_H

#include <stdbool.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"

typedef enum sp_chat_family {
    SP_CHAT_NONE = 0,
    SP_CHAT_LLAMA3,   /* Llama 3.1-3.3: system header with the dates, tool calls as JSON */
    SP_CHAT_LLAMA30,  /* Llama 3.0: header + trimmed content + <|eot_id|> per message */
    SP_CHAT_QWEN3,    /* Qwen3 ChatML with <think> blocks, tool calls and responses */
    SP_CHAT_CHATML,   /* plain ChatML: <|im_start|>role\ncontent<|im_end|>\n */
    SP_CHAT_LLAMA2,   /* Llama 2 chat: <s>[INST] <<SYS>>...<</SYS>> user [/INST] answer </s> */
    SP_CHAT_MISTRAL,  /* Mistral Instruct v0.1/v0.2: <s>[INST] user [/INST]answer</s> */
    SP_CHAT_PHI3,     /* Phi-3 / Phi-3.5: <|user|>\ncontent<|end|>\n */
    SP_CHAT_GEMMA,    /* Gemma 1/2: <start_of_turn>user\ncontent<end_of_turn>\n */
    SP_CHAT_QWEN25,   /* Qwen2.5: ChatML, "You are Qwen, ..." by default, tool calls */
    SP_CHAT_N_FAMILIES
} sp_chat_family;

/* Variant bits within a family (set by sp_chat_detect from the text). */
enum {
    SP_CHAT_DATE_TODAY = 1u << 0,    /* llama3: template calls strftime_now, so the
                                        default date is today's, not 26 Jul 2024 */
    SP_CHAT_SKIP_EMPTY_SYSTEM = 1u << 1, /* phi3: Phi-3.5 drops a system message
                                            whose content is empty */
    SP_CHAT_DEFAULT_SYSTEM = 1u << 2,    /* chatml: Qwen2 / Qwen1.5 write "You are a
                                            helpful assistant." when there is no
                                            system message */
};

typedef struct sp_chat_template {
    sp_chat_family family;
    unsigned flags;
    char bos[64]; /* bos_token / eos_token texts the template uses ("" = the */
    char eos[64]; /* family's usual one; sp_chat_from_gguf reads the file's)  */
} sp_chat_template;

typedef struct sp_chat_tool_call {
    const char *name;
    /* The call's arguments. OpenAI sends them as a JSON text in a string;
     * templates then print the string (Qwen3) or its JSON quoting (Llama 3).
     * With arguments_is_json the text is an already serialized JSON value
     * (an object, Python json.dumps layout) printed as it is by both. */
    const char *arguments;
    bool arguments_is_json;
} sp_chat_tool_call;

typedef struct sp_chat_msg {
    const char *role;              /* "system", "user", "assistant", "tool", ... */
    const char *content;           /* NULL renders as "" */
    const char *reasoning_content; /* NULL: absent (Qwen3 then splits <think> out of content) */
    const sp_chat_tool_call *tool_calls;
    int n_tool_calls;
    bool has_tool_calls;           /* the message has a tool_calls key, even empty */
} sp_chat_msg;

typedef struct sp_chat_opts {
    bool add_generation_prompt;
    int enable_thinking;     /* Qwen3: -1 undefined (thinks), 0 false, 1 true */
    const char *date_string; /* Llama 3.x "Today Date"; NULL: the template's default */
} sp_chat_opts;

/* Defaults: generation prompt on, enable_thinking undefined, no date. */
sp_chat_opts sp_chat_opts_default(void);

/* Family names as --chat-template takes them ("llama3", "qwen3", ...). */
const char *sp_chat_family_name(sp_chat_family f);
/* The names, comma-separated, for messages. */
const char *sp_chat_family_list(void);
/* Template of the named family with its usual bos/eos texts; the error lists
 * the names. */
int sp_chat_by_name(const char *name, sp_chat_template *out, sp_error *err);

/* Recognize a template text. On failure the error says so and names
 * `--chat-template NAME` with the list of names. */
int sp_chat_detect(const char *tmpl, sp_chat_template *out, sp_error *err);

/* The template of a model: --chat-template NAME when override is non-NULL,
 * else `tokenizer.chat_template` recognized; bos/eos texts from the file's
 * vocabulary (tokenizer.ggml.{bos,eos}_token_id) when the template uses them.
 * Errors name the file. */
int sp_chat_from_gguf(const sp_gguf *g, const char *override, sp_chat_template *out, sp_error *err);

/* Render n messages. Returns a malloc'ed NUL-terminated string (free it), or
 * NULL with err set when the template itself would raise (e.g. Gemma's
 * "System role not supported", roles that do not alternate) or n == 0. */
char *sp_chat_render(const sp_chat_template *t, const sp_chat_msg *msgs, int n,
                     const sp_chat_opts *o, sp_error *err);

/* The sp_tokenize flags (tokenizer.h) for a rendering of t: the template's
 * own special-token texts (<|im_start|>, <|eot_id|>, <s>) are parsed as
 * tokens, and BOS is added as the vocabulary says unless the rendering
 * already starts with the template's BOS text. */
unsigned sp_chat_tokenize_flags(const sp_chat_template *t, const char *rendering);

/* Whether the family prints tool-call arguments through `tojson` (Llama 3,
 * Qwen2.5): an OpenAI argument string then appears JSON-quoted, as Jinja
 * prints it; the model was trained on the object. A server may want to pass
 * arguments as parsed JSON for these (chat_json.h: SP_CHAT_JSON_OBJECT_ARGS). */
bool sp_chat_quotes_string_arguments(const sp_chat_template *t);

/* Texts of the tokens that end an answer in this family ("<|eot_id|>",
 * "<|im_end|>", the eos text for [INST] templates, ...): writes at most
 * SP_CHAT_MAX_STOPS pointers (into static strings or t) and returns how many;
 * the first is the family's end of turn. */
#define SP_CHAT_MAX_STOPS 4
int sp_chat_stop_texts(const sp_chat_template *t, const char *out[SP_CHAT_MAX_STOPS]);

#endif
