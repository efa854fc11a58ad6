/* prompts.c - a JSONL prompts line read with jansson (see prompts.h).
 *
 * A hand-written reader once let "\u0000" truncate a prompt, called a raw
 * NUL an "unterminated string", took trailing junk after the object, and
 * passed lone surrogates and invalid UTF-8 on into the results (invalid
 * JSON there). jansson rejects all of those; what it rejects is reported
 * with its column. */
#include "prompts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ids of "prompt_tokens": an array of integers in [0, 2^31). */
static int read_ids(const json_t *a, sp_prompt_line *out, char *why, size_t cap)
{
    if (!json_is_array(a)) return snprintf(why, cap, "the \"prompt_tokens\" value is not an array"), -1;
    size_t n = json_array_size(a);
    out->ids = malloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(a, i);
        json_int_t v = json_is_integer(x) ? json_integer_value(x) : -1;
        if (v < 0 || v > 0x7fffffff) {
            snprintf(why, cap, "\"prompt_tokens\"[%zu] is not a non-negative integer", i);
            free(out->ids), out->ids = NULL;
            return -1;
        }
        out->ids[i] = (int)v;
    }
    out->n_ids = (int)n;
    return 0;
}

int sp_prompt_from_jsonl(const char *line, size_t len, sp_prompt_line *out, int *col, char *why, size_t cap)
{
    *col = 0;
    out->text = NULL, out->ids = NULL, out->n_ids = 0;
    json_error_t e;
    /* the default flags check that nothing but white space follows the
     * object; without JSON_ALLOW_NUL a \u0000 in a string is an error */
    json_t *v = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        *col = e.column > 0 ? e.column : 0;
        if (strstr(e.text, "JSON_ALLOW_NUL"))
            snprintf(why, cap, "\\u0000 (a NUL character) in a string; a prompt is text without NUL");
        else
            snprintf(why, cap, "not valid JSON: %s", e.text);
        return -1;
    }
    int rc = -1;
    json_t *p = json_is_object(v) ? json_object_get(v, "prompt") : NULL;
    json_t *t = json_is_object(v) ? json_object_get(v, "prompt_tokens") : NULL;
    if (!json_is_object(v))
        snprintf(why, cap, "the line is a JSON %s, not an object",
                 json_is_array(v) ? "array" : json_is_string(v) ? "string" : "value");
    else if (!p && !t)
        snprintf(why, cap, "no \"prompt\" key");
    else if (p && !json_is_string(p))
        snprintf(why, cap, "the \"prompt\" value is not a string");
    else if (!t || read_ids(t, out, why, cap) == 0) {
        out->text = strdup(p ? json_string_value(p) : "");
        rc = 0;
    }
    json_decref(v);
    return rc;
}
