/* test_chat.c - chat templates: every line of the shared chat-llama3 /
 * chat-qwen3 references rendered byte for byte from the template recognized
 * in the model file; the other families and more Llama 3 / Qwen3 cases
 * against tests/data/chat-families.jsonl (jinja2 renderings of the real
 * templates, tests/tools/chat_families.py); recognition, the unknown-template
 * error, the JSON message reader and its errors, stop texts. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shardpipe/chat.h"
#include "shardpipe/chat_json.h"
#include "shardpipe/gguf.h"
#include "testutil.h"

/* Byte-exact comparison that prints where the texts part. */
static void expect_same(const char *name, const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    cr_expect(got[i] == want[i], "%s: renderings differ at byte %zu:\n got: ...%.60s\nwant: ...%.60s", name, i,
              got + (i > 20 ? i - 20 : 0), want + (i > 20 ? i - 20 : 0));
}

/* Render one JSONL case {"messages", "add_generation_prompt", "kwargs"} with t. */
static char *render_case(const sp_chat_template *t, json_t *c, sp_error *err)
{
    sp_chat_msgs msgs;
    if (sp_chat_msgs_from_json(json_object_get(c, "messages"), &msgs, err)) return NULL;
    sp_chat_opts o = sp_chat_opts_default();
    o.add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt"));
    char *out = NULL;
    if (!sp_chat_opts_from_json(json_object_get(c, "kwargs"), &o, err))
        out = sp_chat_render(t, msgs.msgs, msgs.n, &o, err);
    sp_chat_msgs_free(&msgs);
    return out;
}

/* The string value of metadata key `key` of a GGUF file, read directly:
 * sp_gguf_open refuses files with tensor types this build cannot run (the
 * K-quants of the shared Llama 3 / Qwen3 files before the kquant work), and a
 * template needs none of the tensors. malloc'ed, NULL if absent. */
static char *gguf_string(const char *path, const char *key)
{
    size_t len;
    unsigned char *f = sp_test_read_file(path, &len);
    if (!f) return NULL;
    const unsigned char *p = f + 24, *end = f + len; /* magic, version, n_tensors, n_kv */
    uint64_t n_kv;
    memcpy(&n_kv, f + 16, 8);
    static const int size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    char *out = NULL;
    for (uint64_t i = 0; i < n_kv && !out && p + 12 <= end; i++) {
        uint64_t kl, n;
        uint32_t t;
        memcpy(&kl, p, 8);
        const unsigned char *k = p + 8;
        p = k + kl;
        memcpy(&t, p, 4);
        p += 4;
        if (t == 8) {
            memcpy(&n, p, 8);
            if (kl == strlen(key) && !memcmp(k, key, kl)) {
                out = malloc(n + 1);
                memcpy(out, p + 8, n);
                out[n] = 0;
            }
            p += 8 + n;
        } else if (t == 9) {
            uint32_t et;
            uint64_t cnt;
            memcpy(&et, p, 4);
            memcpy(&cnt, p + 4, 8);
            p += 12;
            for (uint64_t j = 0; j < cnt && p < end; j++) {
                if (et == 8) { memcpy(&n, p, 8); p += 8 + n; }
                else p += size[et];
            }
        } else {
            p += size[t];
        }
    }
    free(f);
    return out;
}

static int run_shared(const char *model, const char *ref, sp_chat_family want, const char *bos, const char *eos)
{
    const char *mp = sp_test_shared(model), *rp = mp ? sp_test_shared(ref) : NULL;
    if (!rp) return -1;
    sp_error err = {{0}};
    char *text = gguf_string(mp, "tokenizer.chat_template");
    cr_assert(text, "%s: no tokenizer.chat_template", model);
    sp_chat_template t;
    cr_assert_eq(sp_chat_detect(text, &t, &err), 0, "%s", err.msg);
    free(text);
    cr_expect_eq(t.family, want, "%s: recognized as %s", model, sp_chat_family_name(t.family));
    /* the special tokens the reference renderer was given (tokenizer_config.json) */
    snprintf(t.bos, sizeof t.bos, "%s", bos);
    snprintf(t.eos, sizeof t.eos, "%s", eos);
    FILE *f = fopen(rp, "r");
    cr_assert(f);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        cr_assert(c, "%s line %d: %s", ref, n + 1, je.text);
        char *got = render_case(&t, c, &err);
        char name[64];
        snprintf(name, sizeof name, "%s line %d", ref, n + 1);
        cr_assert(got, "%s: %s", name, err.msg);
        expect_same(name, got, json_string_value(json_object_get(c, "rendered")));
        free(got);
        json_decref(c);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

Test(chat, llama3_reference_byte_for_byte)
{
    int n = run_shared("models/llama3-tiny-Q4_K_M.gguf", "reference/chat-llama3.jsonl", SP_CHAT_LLAMA3,
                    "<|begin_of_text|>", "<|eot_id|>");
    if (n >= 0) cr_expect_eq(n, 11, "%d cases", n);
}

Test(chat, qwen3_reference_byte_for_byte)
{
    int n = run_shared("models/qwen3-tiny-Q4_K_M.gguf", "reference/chat-qwen3.jsonl", SP_CHAT_QWEN3, "", "<|im_end|>");
    if (n >= 0) cr_expect_eq(n, 17, "%d cases", n);
}

Test(chat, template_of_each_model_file)
{
    static const struct { const char *model; sp_chat_family fam; unsigned flags; } m[] = {
        {"models/llama3-tiny-Q4_K_M.gguf", SP_CHAT_LLAMA3, SP_CHAT_DATE_TODAY},
        {"models/qwen3-tiny-Q4_K_M.gguf", SP_CHAT_QWEN3, 0},
        {"models/qwen2-tiny-Q8_0.gguf", SP_CHAT_QWEN3, 0},
        {"models/qwen3moe-tiny-Q4_K_M.gguf", SP_CHAT_QWEN3, 0},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        const char *p = sp_test_shared(m[i].model);
        if (!p) return;
        sp_error err = {{0}};
        char *text = gguf_string(p, "tokenizer.chat_template");
        cr_assert(text, "%s", m[i].model);
        sp_chat_template t;
        cr_assert_eq(sp_chat_detect(text, &t, &err), 0, "%s: %s", m[i].model, err.msg);
        cr_expect_eq(t.family, m[i].fam, "%s: %s", m[i].model, sp_chat_family_name(t.family));
        cr_expect_eq(t.flags, m[i].flags, "%s: flags %u", m[i].model, t.flags);
        free(text);
    }
}

/* sp_chat_from_gguf on a file holding Llama 3.2's template and a vocabulary
 * whose bos/eos texts differ from the family's: they come from the file. */
Test(chat, template_and_tokens_from_a_gguf)
{
    const char *src = sp_test_shared("models/llama3-tiny-Q4_K_M.gguf");
    if (!src) return;
    char *text = gguf_string(src, "tokenizer.chat_template");
    cr_assert(text);
    const char *path = sp_test_tmpfile("chat.gguf");
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_str(w, "tokenizer.chat_template", text);
    sp_gguf_str toks[3] = {{5, "<unk>"}, {7, "<BEGIN>"}, {5, "<END>"}};
    sp_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, 3);
    sp_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    sp_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    float one = 1;
    sp_gguf_add_tensor(w, "x", SP_DTYPE_F32, 1, (uint64_t[]){1}, &one);
    sp_error err = {{0}};
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    free(text);
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert(g, "%s", err.msg);
    sp_chat_template t;
    cr_assert_eq(sp_chat_from_gguf(g, NULL, &t, &err), 0, "%s", err.msg);
    cr_expect_eq(t.family, SP_CHAT_LLAMA3);
    cr_expect_str_eq(t.bos, "<BEGIN>");
    cr_expect_str_eq(t.eos, "<END>");
    sp_chat_msg msg = {.role = "user", .content = "hi"};
    sp_chat_opts o = sp_chat_opts_default();
    o.date_string = "01 Feb 2025";
    char *s = sp_chat_render(&t, &msg, 1, &o, &err);
    cr_assert(s, "%s", err.msg);
    cr_expect(!strncmp(s, "<BEGIN><|start_header_id|>system", 32), "%s", s);
    cr_expect(strstr(s, "Today Date: 01 Feb 2025\n"), "%s", s);
    free(s);
    /* an override wins over the file's template and keeps the file's tokens */
    cr_assert_eq(sp_chat_from_gguf(g, "llama2", &t, &err), 0, "%s", err.msg);
    cr_expect_eq(t.family, SP_CHAT_LLAMA2);
    cr_expect_str_eq(t.bos, "<BEGIN>");
    cr_expect_eq(sp_chat_from_gguf(g, "nope", &t, &err), -1);
    cr_expect(strstr(err.msg, "'nope'") && strstr(err.msg, "chatml"), "%s", err.msg);
    sp_gguf_close(g);
}

Test(chat, model_without_template_names_the_option)
{
    const char *p = sp_test_shared("models/stories260K.gguf");
    if (!p) return;
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(p, &err);
    cr_assert(g, "%s", err.msg);
    sp_chat_template t;
    cr_expect_eq(sp_chat_from_gguf(g, NULL, &t, &err), -1);
    cr_expect(strstr(err.msg, "stories260K.gguf") && strstr(err.msg, "--chat-template NAME") &&
              strstr(err.msg, "llama2"), "%s", err.msg);
    cr_assert_eq(sp_chat_from_gguf(g, "llama2", &t, &err), 0, "%s", err.msg);
    cr_expect_str_eq(t.bos, "<s>");
    cr_expect_str_eq(t.eos, "</s>");
    cr_expect_eq(sp_chat_from_gguf(g, "llama9", &t, &err), -1);
    cr_expect(strstr(err.msg, "llama9") && strstr(err.msg, "qwen3") && strstr(err.msg, "gemma"), "%s", err.msg);
    sp_gguf_close(g);
}

Test(chat, unknown_template_is_an_error)
{
    sp_chat_template t;
    sp_error err = {{0}};
    const char *texts[] = {"", "{{ messages }}", "{% for m in messages %}### {{ m.role }}: {{ m.content }}{% endfor %}",
                           "<|im_start|>{{ x }}", NULL};
    for (int i = 0; i < 5; i++) {
        err.msg[0] = 0;
        cr_expect_eq(sp_chat_detect(texts[i], &t, &err), -1, "text %d", i);
        cr_expect(strstr(err.msg, "--chat-template NAME") && strstr(err.msg, "llama3, llama3.0, qwen3, qwen2.5"),
                  "text %d: %s", i, err.msg);
    }
}

/* Every line of tests/data/chat-families.jsonl: recognized as its family
 * (or not at all), then rendered with the case's bos/eos, or the template's
 * exception reproduced as an error. */
Test(chat, families_against_jinja2)
{
    const char *path = SP_SOURCE_DIR "/tests/data/chat-families.jsonl";
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s is missing", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, rendered = 0, raised = 0, unrecognized = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        cr_assert(c, "line %d: %s", n + 1, je.text);
        const char *name = json_string_value(json_object_get(c, "name"));
        const json_t *fam = json_object_get(c, "family");
        sp_chat_template t;
        sp_error err = {{0}};
        int rc = sp_chat_detect(json_string_value(json_object_get(c, "template")), &t, &err);
        n++;
        if (json_is_null(fam)) {
            cr_expect_eq(rc, -1, "%s: recognized as %s", name, sp_chat_family_name(t.family));
            unrecognized++;
            json_decref(c);
            continue;
        }
        cr_assert_eq(rc, 0, "%s: %s", name, err.msg);
        cr_expect_str_eq(sp_chat_family_name(t.family), json_string_value(fam), "%s", name);
        snprintf(t.bos, sizeof t.bos, "%s", json_string_value(json_object_get(c, "bos_token")));
        snprintf(t.eos, sizeof t.eos, "%s", json_string_value(json_object_get(c, "eos_token")));
        char *got = render_case(&t, c, &err);
        const json_t *want = json_object_get(c, "rendered");
        if (want) {
            cr_expect(got, "%s: %s", name, err.msg);
            if (got) expect_same(name, got, json_string_value(want));
            rendered++;
        } else {
            cr_expect(!got, "%s: rendered although the template raises", name);
            cr_expect(err.msg[0], "%s: no error message", name);
            raised++;
        }
        free(got);
        json_decref(c);
    }
    free(line);
    fclose(f);
    cr_expect_eq(n, 37, "%d cases", n);
    cr_log_info("chat-families: %d rendered, %d raised, %d not recognized", rendered, raised, unrecognized);
}

Test(chat, messages_as_plain_structs)
{
    sp_chat_template t;
    sp_error err = {{0}};
    cr_assert_eq(sp_chat_by_name("qwen3", &t, &err), 0);
    sp_chat_tool_call call = {"f", "{\"a\": 1}", true};
    sp_chat_msg m[3] = {{.role = "user", .content = "hi"},
                        {.role = "assistant", .content = NULL, .tool_calls = &call, .n_tool_calls = 1,
                         .has_tool_calls = true},
                        {.role = "tool", .content = "ok"}};
    sp_chat_opts o = sp_chat_opts_default();
    o.enable_thinking = 0;
    char *s = sp_chat_render(&t, m, 3, &o, &err);
    cr_assert(s, "%s", err.msg);
    /* the tool call's turn comes after the last query but is not the last
     * message and has no reasoning: no <think> block */
    cr_expect_str_eq(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
                        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call><|im_end|>\n"
                        "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n"
                        "<|im_start|>assistant\n<think>\n\n</think>\n\n");
    free(s);
    cr_expect_null(sp_chat_render(&t, m, 0, &o, &err));
    cr_expect(strstr(err.msg, "no messages"), "%s", err.msg);
    sp_chat_msg bad = {.role = NULL, .content = "x"};
    cr_expect_null(sp_chat_render(&t, &bad, 1, &o, &err));
    cr_expect(strstr(err.msg, "no role"), "%s", err.msg);
}

Test(chat, llama3_date_defaults)
{
    sp_chat_template t;
    sp_error err = {{0}};
    cr_assert_eq(sp_chat_by_name("llama3", &t, &err), 0);
    sp_chat_msg m = {.role = "user", .content = "x"};
    char today[16], want[64];
    sp_chat_opts o = sp_chat_opts_default();
    char *s = sp_chat_render(&t, &m, 1, &o, &err);
    cr_assert(s);
    /* strftime_now("%d %b %Y") as transformers defines it: today, C locale */
    time_t now = time(NULL);
    strftime(today, sizeof today, "%d %b %Y", localtime(&now));
    snprintf(want, sizeof want, "Today Date: %s\n", today);
    cr_expect(strstr(s, want), "%s", s);
    free(s);
    t.flags = 0; /* Llama 3.1's template: the fixed fallback */
    s = sp_chat_render(&t, &m, 1, &o, &err);
    cr_expect(strstr(s, "Today Date: 26 Jul 2024\n"), "%s", s);
    free(s);
}

Test(chat, stop_texts)
{
    sp_chat_template t;
    sp_error err = {{0}};
    const char *stops[SP_CHAT_MAX_STOPS];
    cr_assert_eq(sp_chat_by_name("llama3", &t, &err), 0);
    cr_expect_eq(sp_chat_stop_texts(&t, stops), 3);
    cr_expect_str_eq(stops[0], "<|eot_id|>");
    cr_assert_eq(sp_chat_by_name("qwen3", &t, &err), 0);
    cr_expect_eq(sp_chat_stop_texts(&t, stops), 2);
    cr_expect_str_eq(stops[0], "<|im_end|>");
    cr_assert_eq(sp_chat_by_name("llama2", &t, &err), 0);
    snprintf(t.eos, sizeof t.eos, "<END>");
    cr_expect_eq(sp_chat_stop_texts(&t, stops), 1);
    cr_expect_str_eq(stops[0], "<END>");
    cr_assert_eq(sp_chat_by_name("gemma", &t, &err), 0);
    cr_expect_eq(sp_chat_stop_texts(&t, stops), 2);
    cr_expect_str_eq(stops[0], "<end_of_turn>");
}

/* The JSON reader: OpenAI shapes it accepts and the errors that name the place. */
Test(chat, json_messages)
{
    static const struct { const char *json, *error; } bad[] = {
        {"{}", "expected an array"},
        {"[]", "empty"},
        {"[1]", "messages[0]: expected an object"},
        {"[{\"content\": \"x\"}]", "messages[0].role"},
        {"[{\"role\": \"user\", \"content\": 5}]", "messages[0].content"},
        {"[{\"role\": \"user\", \"content\": \"a\\u0000b\"}]", "NUL"},
        {"[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]", "messages[0].content[0]"},
        {"[{\"role\": \"user\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"function\": {}}]}]",
         "messages[1].tool_calls[0]"},
        {"[{\"role\": \"user\", \"reasoning_content\": 1}]", "reasoning_content"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        cr_assert(j, "%s", bad[i].json);
        sp_chat_msgs m;
        sp_error err = {{0}};
        cr_expect_eq(sp_chat_msgs_from_json(j, &m, &err), -1, "%s", bad[i].json);
        cr_expect(strstr(err.msg, bad[i].error), "%s: %s", bad[i].json, err.msg);
        cr_expect_eq(m.n, 0);
        sp_chat_msgs_free(&m);
        json_decref(j);
    }
    json_t *j = json_loads("[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, "
                           "{\"type\": \"text\", \"text\": \"b\"}]}, {\"role\": \"assistant\", \"content\": null, "
                           "\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"x\": 0.1, \"y\": 1e22, \"z\": "
                           "[1.5e-7, 100.0, -0.0]}}]}, {\"role\": \"assistant\", \"tool_calls\": null}]", 0, NULL);
    cr_assert(j);
    sp_chat_msgs m;
    sp_error err = {{0}};
    cr_assert_eq(sp_chat_msgs_from_json(j, &m, &err), 0, "%s", err.msg);
    json_decref(j); /* the messages own copies */
    cr_expect_eq(m.n, 3);
    cr_expect_str_eq(m.msgs[0].content, "ab");
    cr_expect_null(m.msgs[1].content);
    cr_expect_eq(m.msgs[1].n_tool_calls, 1);
    cr_expect(m.msgs[1].tool_calls[0].arguments_is_json);
    /* Python: json.dumps({"x": 0.1, "y": 1e22, "z": [1.5e-7, 100.0, -0.0]}) */
    cr_expect_str_eq(m.msgs[1].tool_calls[0].arguments, "{\"x\": 0.1, \"y\": 1e+22, \"z\": [1.5e-07, 100.0, -0.0]}");
    cr_expect(!m.msgs[2].has_tool_calls);
    sp_chat_msgs_free(&m);

    sp_chat_opts o = sp_chat_opts_default();
    json_t *kw = json_loads("{\"enable_thinking\": 1}", 0, NULL);
    cr_expect_eq(sp_chat_opts_from_json(kw, &o, &err), -1);
    cr_expect(strstr(err.msg, "enable_thinking"), "%s", err.msg);
    json_decref(kw);
    kw = json_loads("{\"tools\": []}", 0, NULL);
    cr_expect_eq(sp_chat_opts_from_json(kw, &o, &err), -1);
    cr_expect(strstr(err.msg, "'tools' is not supported"), "%s", err.msg);
    json_decref(kw);
}

/* For templates that print arguments through tojson, a server can pass an
 * OpenAI argument string as the object it holds (key order kept). */
Test(chat, object_arguments_for_tojson_templates)
{
    sp_chat_template t;
    sp_error err = {{0}};
    cr_assert_eq(sp_chat_by_name("llama3", &t, &err), 0);
    cr_expect(sp_chat_quotes_string_arguments(&t));
    json_t *j = json_loads("[{\"role\": \"user\", \"content\": \"w\"}, {\"role\": \"assistant\", \"tool_calls\": "
                           "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": "
                           "\"{\\\"b\\\":1,\\\"a\\\":[1.5]}\"}}]}, {\"role\": \"assistant\", \"tool_calls\": "
                           "[{\"function\": {\"name\": \"g\", \"arguments\": \"[1]\"}}]}]", 0, NULL);
    cr_assert(j);
    sp_chat_msgs m;
    cr_assert_eq(sp_chat_msgs_from_json_ex(j, SP_CHAT_JSON_OBJECT_ARGS, &m, &err), 0, "%s", err.msg);
    cr_expect(m.msgs[1].tool_calls[0].arguments_is_json);
    cr_expect_str_eq(m.msgs[1].tool_calls[0].arguments, "{\"b\": 1, \"a\": [1.5]}");
    cr_expect(!m.msgs[2].tool_calls[0].arguments_is_json, "a string that is not an object stays a string");
    sp_chat_opts o = sp_chat_opts_default();
    o.date_string = "x";
    char *s = sp_chat_render(&t, m.msgs, 2, &o, &err);
    cr_assert(s, "%s", err.msg);
    cr_expect(strstr(s, "{\"name\": \"f\", \"parameters\": {\"b\": 1, \"a\": [1.5]}}<|eot_id|>"), "%s", s);
    free(s);
    sp_chat_msgs_free(&m);
    /* without the flag the string is kept, and Llama 3 prints it quoted */
    cr_assert_eq(sp_chat_msgs_from_json(j, &m, &err), 0, "%s", err.msg);
    s = sp_chat_render(&t, m.msgs, 2, &o, &err);
    cr_expect(strstr(s, "\"parameters\": \"{\\\"b\\\":1,\\\"a\\\":[1.5]}\"}"), "%s", s);
    free(s);
    sp_chat_msgs_free(&m);
    json_decref(j);
    cr_assert_eq(sp_chat_by_name("qwen3", &t, &err), 0);
    cr_expect(!sp_chat_quotes_string_arguments(&t));
}
