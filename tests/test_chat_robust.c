/* test_chat_robust.c - the chat template renderers on hostile input: random
 * bytes (invalid UTF-8, partial sequences, control bytes, the templates' own
 * markers) in every field of random conversations for every family, very
 * long contents and many messages, Unicode whitespace at the edges of
 * trimmed content. Nothing may crash; what the families promise about the
 * bytes of a message is checked on every rendering. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/chat.h"
#include "shardpipe/chat_json.h"
#include "shardpipe/util.h"

static const char *const roles[] = {"system", "user", "assistant", "tool", "ipython", "", "model", "\xff\xfe"};
static const char *const pieces[] = {"<think>", "</think>", "\n", " ", "\t", "<tool_response>", "</tool_response>",
                                     "\xc2\xa0", "\xe3\x80\x80", "\xe2\x80", "\xc0\xa0", "\xed\xa0\x80", "\x80",
                                     "\xf4\x90\x80\x80", "<|im_end|>", "[INST]", "\x1c", "\xc2\x85", "\"\\"};

/* A random NUL-free string of up to max bytes: random bytes mixed with
 * pieces that the renderers look for or strip. */
static char *rand_text(sp_rng *r, int max)
{
    int n = (int)(sp_rng_u64(r) % (uint64_t)(max + 1));
    char *s = malloc((size_t)n * 16 + 1); /* the longest piece is 16 bytes */
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (sp_rng_u64(r) % 3 == 0) {
            const char *p = pieces[sp_rng_u64(r) % (sizeof pieces / sizeof pieces[0])];
            size_t k = strlen(p);
            memcpy(s + o, p, k);
            o += (int)k;
        } else {
            s[o++] = (char)(1 + sp_rng_u64(r) % 255);
        }
    }
    s[o] = 0;
    return s;
}

typedef struct conv {
    sp_chat_msg m[8];
    sp_chat_tool_call calls[8][3];
    char *owned[80]; /* 8 messages x (content, reasoning, 3 calls x 2) + the date */
    int n, n_owned;
} conv;

static const char *own(conv *c, char *s)
{
    c->owned[c->n_owned++] = s;
    return s;
}

static void rand_conv(sp_rng *r, conv *c)
{
    memset(c, 0, sizeof *c);
    c->n = 1 + (int)(sp_rng_u64(r) % 8);
    for (int i = 0; i < c->n; i++) {
        sp_chat_msg *m = &c->m[i];
        m->role = roles[sp_rng_u64(r) % (sizeof roles / sizeof roles[0])];
        m->content = sp_rng_u64(r) % 8 ? own(c, rand_text(r, 24)) : NULL;
        if (sp_rng_u64(r) % 4 == 0) m->reasoning_content = own(c, rand_text(r, 8));
        if (sp_rng_u64(r) % 4 == 0) {
            m->n_tool_calls = (int)(sp_rng_u64(r) % 4);
            m->has_tool_calls = true;
            m->tool_calls = c->calls[i];
            for (int j = 0; j < m->n_tool_calls; j++) {
                c->calls[i][j].name = own(c, rand_text(r, 6));
                c->calls[i][j].arguments = own(c, rand_text(r, 10));
                c->calls[i][j].arguments_is_json = sp_rng_u64(r) % 2;
            }
        }
    }
}

static void free_conv(conv *c)
{
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
}

/* For every family, 3000 random conversations with random options: each
 * rendering succeeds or fails with a message; a success is one NUL-free
 * string, and where a family copies a user message untouched (ChatML, Qwen)
 * that message's bytes are in it. */
Test(chat_robust, random_conversations_every_family)
{
    sp_rng r;
    sp_rng_seed(&r, 20261207);
    int ok = 0, raised = 0;
    for (int f = 1; f < SP_CHAT_N_FAMILIES; f++) {
        sp_chat_template t;
        sp_error err = {{0}};
        cr_assert_eq(sp_chat_by_name(sp_chat_family_name((sp_chat_family)f), &t, &err), 0, "%s", err.msg);
        for (int k = 0; k < 3000; k++) {
            conv c;
            rand_conv(&r, &c);
            sp_chat_opts o = sp_chat_opts_default();
            o.add_generation_prompt = sp_rng_u64(&r) % 2;
            o.enable_thinking = (int)(sp_rng_u64(&r) % 3) - 1;
            if (sp_rng_u64(&r) % 2) o.date_string = own(&c, rand_text(&r, 12));
            if (sp_rng_u64(&r) % 4 == 0) t.flags ^= 1u << (sp_rng_u64(&r) % 3);
            err.msg[0] = 0;
            char *s = sp_chat_render(&t, c.m, c.n, &o, &err);
            if (!s) {
                cr_expect(err.msg[0], "%s: failed without a message", sp_chat_family_name(t.family));
                raised++;
            } else {
                ok++;
                bool verbatim = t.family == SP_CHAT_CHATML || t.family == SP_CHAT_QWEN3 || t.family == SP_CHAT_QWEN25;
                for (int i = 0; verbatim && i < c.n; i++)
                    if (c.m[i].role && !strcmp(c.m[i].role, "user") && c.m[i].content)
                        cr_expect(strstr(s, c.m[i].content), "%s: user message %d not in the rendering",
                                  sp_chat_family_name(t.family), i);
                free(s);
            }
            free_conv(&c);
        }
    }
    cr_log_info("random conversations: %d rendered, %d raised", ok, raised);
    cr_expect(ok > 10000, "only %d of %d rendered", ok, ok + raised);
}

/* Trimming (Llama 3, Gemma, Llama 2) follows Python's str.strip on UTF-8:
 * Unicode spaces go, invalid or partial sequences and look-alikes stay. */
Test(chat_robust, strip_at_invalid_utf8)
{
    static const struct { const char *in, *want; } cases[] = {
        {"\xc2\xa0 a \xc2", "a \xc2"},                    /* a lone lead byte at the end is kept */
        {"\x80 a\xe3\x80\x80", "\x80 a"},                 /* a stray continuation byte is not space */
        {"\xe2\x80 a", "\xe2\x80 a"},                     /* U+2000 cut short */
        {"\xc0\xa0" "a" "\xc0\xa0", "\xc0\xa0" "a" "\xc0\xa0"},       /* overlong space is not space */
        {"\x1c\x1d\x1e\x1f\xc2\x85 a \xe2\x80\xa8\xe2\x80\xaf", "a"},
        {" \xef\xbb\xbf a", "\xef\xbb\xbf a"},            /* BOM is not whitespace for Python */
        {"\xe2\x80\x8b a", "\xe2\x80\x8b a"},             /* nor U+200B */
        {" \xe3\x80\x80 ", ""},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
        {"a\xe3\x80", "a\xe3\x80"},
    };
    sp_chat_template t;
    sp_error err = {{0}};
    cr_assert_eq(sp_chat_by_name("gemma", &t, &err), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_chat_msg m = {.role = "user", .content = cases[i].in};
        sp_chat_opts o = sp_chat_opts_default();
        o.add_generation_prompt = false;
        char *s = sp_chat_render(&t, &m, 1, &o, &err);
        cr_assert(s, "%s", err.msg);
        char want[128];
        snprintf(want, sizeof want, "<bos><start_of_turn>user\n%s<end_of_turn>\n", cases[i].want);
        cr_expect_str_eq(s, want, "case %zu", i);
        free(s);
    }
}

/* 32 MiB of content in one message and 200000 messages in one conversation
 * render whole (sizes checked exactly for ChatML). */
Test(chat_robust, long_inputs)
{
    sp_chat_template t;
    sp_error err = {{0}};
    cr_assert_eq(sp_chat_by_name("chatml", &t, &err), 0);
    size_t big = 32u << 20;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = (char)('a' + i % 26);
    text[big] = 0;
    sp_chat_msg m = {.role = "user", .content = text};
    sp_chat_opts o = sp_chat_opts_default();
    char *s = sp_chat_render(&t, &m, 1, &o, &err);
    cr_assert(s, "%s", err.msg);
    cr_expect_eq(strlen(s), big + strlen("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"));
    free(s);
    /* the same through the Qwen3 <think> splitting and the Llama 3 trim */
    memcpy(text + big / 2, "</think>", 8);
    cr_assert_eq(sp_chat_by_name("qwen3", &t, &err), 0);
    m.role = "assistant";
    s = sp_chat_render(&t, &m, 1, &o, &err);
    cr_assert(s);
    cr_expect(strlen(s) > big / 2 && strlen(s) < big);
    free(s);
    cr_assert_eq(sp_chat_by_name("llama3", &t, &err), 0);
    memset(text, ' ', big);
    o.date_string = "01 Jan 2000";
    s = sp_chat_render(&t, &m, 1, &o, &err);
    cr_assert(s);
    cr_expect(strstr(s, "<|start_header_id|>assistant<|end_header_id|>\n\n<|eot_id|>"), "all spaces trim to nothing");
    free(s);
    free(text);

    int n = 200000;
    sp_chat_msg *many = calloc((size_t)n, sizeof *many);
    for (int i = 0; i < n; i++) {
        many[i].role = i % 2 ? "assistant" : "user";
        many[i].content = "x";
    }
    cr_assert_eq(sp_chat_by_name("chatml", &t, &err), 0);
    s = sp_chat_render(&t, many, n, &o, &err);
    cr_assert(s);
    cr_expect_eq(strlen(s), (size_t)n / 2 * (strlen("<|im_start|>user\nx<|im_end|>\n") +
                                             strlen("<|im_start|>assistant\nx<|im_end|>\n")) +
                                strlen("<|im_start|>assistant\n"));
    free(s);
    cr_assert_eq(sp_chat_by_name("llama2", &t, &err), 0);
    s = sp_chat_render(&t, many, n, &o, &err);
    cr_assert(s, "%s", err.msg);
    free(s);
    free(many);
}

/* Tool-call arguments nested deeper than the serializer goes (Python's
 * json.dumps would hit its recursion limit too) are an error naming the
 * place, not a stack overflow; 500 levels serialize. */
Test(chat_robust, deeply_nested_arguments)
{
    for (int depth = 500; depth <= 1800; depth += 1300) {
        size_t len = (size_t)depth * 2 + 200;
        char *js = malloc(len);
        int o = sprintf(js, "[{\"role\": \"assistant\", \"tool_calls\": [{\"name\": \"f\", \"arguments\": ");
        for (int i = 0; i < depth; i++) js[o++] = '[';
        for (int i = 0; i < depth; i++) js[o++] = ']';
        strcpy(js + o, "}]}]");
        json_error_t je;
        json_t *j = json_loads(js, 0, &je);
        cr_assert(j, "depth %d: %s", depth, je.text);
        sp_chat_msgs m;
        sp_error err = {{0}};
        int rc = sp_chat_msgs_from_json(j, &m, &err);
        if (depth == 500) {
            cr_expect_eq(rc, 0, "%s", err.msg);
            cr_expect_eq(strlen(m.msgs[0].tool_calls[0].arguments), (size_t)depth * 2);
        } else {
            cr_expect_eq(rc, -1);
            cr_expect(strstr(err.msg, "messages[0].tool_calls[0].function.arguments") && strstr(err.msg, "512"),
                      "%s", err.msg);
        }
        sp_chat_msgs_free(&m);
        json_decref(j);
        free(js);
    }
}
