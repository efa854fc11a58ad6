/* prompts.h - one line of a JSONL prompts file: {"prompt": "..."}, or the
 * prompt as token ids, {"prompt_tokens": [1, 15043]} (then "prompt" is an
 * optional label for the results). */
#ifndef SHARDPIPE_CLUSTER_PROMPTS_H
#define SHARDPIPE_CLUSTER_PROMPTS_H

#include <stddef.h>

typedef struct sp_prompt_line {
    char *text; /* malloc'ed, valid UTF-8 without NUL ("" when only ids came) */
    int *ids;   /* malloc'ed token ids, or NULL: tokenize text */
    int n_ids;
} sp_prompt_line;

/* Reads line[0..len) (one JSON object, nothing after it). 0, or -1 with the
 * reason in why (cap bytes) and its column in *col (1-based; 0 when the whole
 * line is at fault). Other keys are ignored. */
int sp_prompt_from_jsonl(const char *line, size_t len, sp_prompt_line *out, int *col, char *why, size_t cap);

#endif
