/* prompts.h - one line of a JSONL prompts file: {"prompt": "..."}. */
#ifndef SHARDPIPE_CLUSTER_PROMPTS_H
#define SHARDPIPE_CLUSTER_PROMPTS_H

#include <stddef.h>

/* The "prompt" string of line[0..len) (a JSON object, nothing after it),
 * malloc'ed: valid UTF-8 without NUL. NULL when the line is not such an
 * object, with the reason in why (cap bytes) and its column in *col (1-based;
 * 0 when the whole line is at fault). Keys other than "prompt" are ignored. */
char *sp_prompt_from_jsonl(const char *line, size_t len, int *col, char *why, size_t cap);

#endif
