/* test_prompts.c - the JSONL prompts reader (jansson) and JSON the program
 * writes from untrusted text: nothing invalid is accepted, nothing invalid
 * comes out (issue 21 item 9). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/cluster/prompts.h"
#include "../src/cluster/sched.h"
#include "shardpipe/gguf.h"
#include "shardpipe/model.h"
#include "shardpipe/tokenizer.h"
#include "testutil.h"

static void expect_rejected(const char *line, size_t len, int col, const char *reason)
{
    char why[400];
    int c = -1;
    sp_prompt_line pl;
    int rc = sp_prompt_from_jsonl(line, len, &pl, &c, why, sizeof why);
    cr_expect_eq(rc, -1, "accepted '%.*s' as '%s'", (int)len, line, rc ? "" : pl.text);
    if (!rc) { free(pl.text); free(pl.ids); return; }
    cr_expect(strstr(why, reason), "'%.*s': got '%s', expected '%s'", (int)len, line, why, reason);
    cr_expect_eq(c, col, "'%.*s': column %d, expected %d (%s)", (int)len, line, c, col, why);
}

Test(prompts, invalid_lines_are_rejected_with_the_column)
{
    /* \u0000 once truncated the prompt silently */
    expect_rejected("{\"prompt\": \"a\\u0000b\"}\n", 23, 21, "\\u0000 (a NUL character)");
    /* a raw NUL was "unterminated string" */
    expect_rejected("{\"prompt\": \"a\0b\"}\n", 18, 13, "control character 0x0");
    /* trailing junk after the object was accepted */
    expect_rejected("{\"prompt\": \"ab\"} junk\n", 22, 21, "end of file expected");
    /* a lone surrogate and invalid UTF-8 were echoed into the results */
    expect_rejected("{\"prompt\": \"a\\ud800b\"}\n", 23, 21, "invalid Unicode");
    expect_rejected("{\"prompt\": \"a\xff" "b\"}\n", 18, 13, "unable to decode byte 0xff");
    expect_rejected("{\"prompt\": \"a\", \"prompt\": \"b\"}", 30, 24, "duplicate object key");
    expect_rejected("[\"prompt\"]", 10, 0, "a JSON array, not an object");
    expect_rejected("{\"text\": \"x\"}", 13, 0, "no \"prompt\" key");
    expect_rejected("{\"prompt\": 7}", 13, 0, "not a string");
}

Test(prompts, valid_lines_unescape)
{
    static const char line[] = "{\"prompt\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n\", \"other\": 1}\r\n";
    char why[400];
    int col;
    sp_prompt_line pl;
    cr_assert_eq(sp_prompt_from_jsonl(line, sizeof line - 1, &pl, &col, why, sizeof why), 0, "%s", why);
    cr_expect_str_eq(pl.text, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n");
    cr_expect_null(pl.ids);
    free(pl.text);
}

Test(prompts, token_ids_with_an_optional_label)
{
    static const char ids[] = "{\"prompt_tokens\": [1, 15043, 0]}";
    char why[400];
    int col;
    sp_prompt_line pl;
    cr_assert_eq(sp_prompt_from_jsonl(ids, sizeof ids - 1, &pl, &col, why, sizeof why), 0, "%s", why);
    cr_expect_eq(pl.n_ids, 3);
    cr_expect(pl.ids[0] == 1 && pl.ids[1] == 15043 && pl.ids[2] == 0);
    cr_expect_str_eq(pl.text, "");
    free(pl.text), free(pl.ids);
    expect_rejected("{\"prompt_tokens\": [1, -2]}", 26, 0, "\"prompt_tokens\"[1] is not a non-negative integer");
    expect_rejected("{\"prompt_tokens\": [1, 2.5]}", 27, 0, "\"prompt_tokens\"[1] is not a non-negative integer");
    expect_rejected("{\"prompt_tokens\": \"1 2\"}", 24, 0, "not an array");
}

/* The file reader names FILE:LINE:COLUMN and the fix. */
Test(prompts, file_errors_name_file_line_and_column)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(model, &err);
    cr_assert_not_null(g, "%s", err.msg);
    sp_tokenizer *tok = sp_tokenizer_load(g, &err);
    cr_assert_not_null(tok, "%s", err.msg);
    const char *path = sp_test_tmpfile("p.jsonl");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("{\"prompt\": \"Once upon a time\"}\n\n{\"prompt\": \"x\"} {\"prompt\": \"y\"}\n", f);
    cr_assert_eq(fclose(f), 0);
    sp_sched s;
    sp_sampler_params smp = sp_sampler_defaults();
    cr_assert_eq(sp_sched_init(&s, tok, NULL, path, 4, 64, 1, 1, 32, 32, 1, false, &smp, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:3:17: not valid JSON: end of file expected", path);
    cr_expect(strstr(err.msg, want) && strstr(err.msg, "with nothing after it"), "%s", err.msg);
    sp_sched_free(&s);
    sp_tokenizer_free(tok);
    sp_gguf_close(g);
}

/* inspect --json on a file whose strings hold invalid UTF-8, a lone
 * surrogate's bytes and control characters: still valid JSON. */
Test(prompts, inspect_json_is_valid_for_hostile_strings)
{
    const char *path = sp_test_tmpfile("hostile-strings.gguf");
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_str(w, "general.name", "bad \xff\xfe \xed\xa0\x80 \x1b[2J \"q\" caf\xc3\xa9");
    sp_gguf_add_str(w, "tokenizer.ggml.model", "\xc0\xaf");
    float z[8] = {0};
    sp_gguf_add_tensor(w, "token_embd.weight", SP_DTYPE_F32, 2, (uint64_t[]){4, 2}, z);
    sp_error err = {{0}};
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' inspect --json '%s'", SP_BINARY, path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0, "%s", out);
    json_error_t e;
    json_t *v = json_loads(out, 0, &e);
    cr_assert_not_null(v, "inspect --json is not valid JSON (%s at column %d): %s", e.text, e.column, out);
    cr_expect_str_eq(json_string_value(json_object_get(v, "name")),
                     "bad \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \x1b[2J \"q\" caf\xc3\xa9");
    json_decref(v);
}
