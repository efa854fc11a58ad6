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

char *sp_prompt_from_jsonl(const char *line, size_t len, int *col, char *why, size_t cap)
{
    *col = 0;
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
        return NULL;
    }
    char *out = NULL;
    json_t *p = json_is_object(v) ? json_object_get(v, "prompt") : NULL;
    if (!json_is_object(v))
        snprintf(why, cap, "the line is a JSON %s, not an object",
                 json_is_array(v) ? "array" : json_is_string(v) ? "string" : "value");
    else if (!p)
        snprintf(why, cap, "no \"prompt\" key");
    else if (!json_is_string(p))
        snprintf(why, cap, "the \"prompt\" value is not a string");
    else
        out = strdup(json_string_value(p));
    json_decref(v);
    return out;
}
