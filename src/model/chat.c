/* chat.c - chat templates: which family a template text belongs to (by the
 * distinctive markers below), the names --chat-template takes, the bos/eos
 * texts from the model file, and the dispatch to the family's renderer
 * (chat_meta.c, chat_chatml.c, chat_other.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_impl.h"
#include "shardpipe/tokenizer.h"

typedef struct family_info {
    const char *name;
    const char *bos, *eos;     /* the tokens of the family's own tokenizer_config */
    const char *stops[3];      /* end-of-answer texts besides eos (NULL-padded) */
    bool stop_on_eos;          /* [INST] families end an answer with eos_token */
    sp_chat_render_fn render;
} family_info;

static const family_info families[SP_CHAT_N_FAMILIES] = {
    [SP_CHAT_LLAMA3] = {"llama3", "<|begin_of_text|>", "<|eot_id|>",
                        {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}, false, sp_chat_render_llama3},
    [SP_CHAT_LLAMA30] = {"llama3.0", "<|begin_of_text|>", "<|eot_id|>",
                         {"<|eot_id|>", "<|end_of_text|>", NULL}, false, sp_chat_render_llama30},
    [SP_CHAT_QWEN3] = {"qwen3", "", "<|im_end|>", {"<|im_end|>", "<|endoftext|>", NULL}, false,
                       sp_chat_render_qwen3},
    [SP_CHAT_QWEN25] = {"qwen2.5", "", "<|im_end|>", {"<|im_end|>", "<|endoftext|>", NULL}, false,
                        sp_chat_render_qwen25},
    [SP_CHAT_CHATML] = {"chatml", "", "<|im_end|>", {"<|im_end|>", "<|endoftext|>", NULL}, false,
                        sp_chat_render_chatml},
    [SP_CHAT_LLAMA2] = {"llama2", "<s>", "</s>", {NULL}, true, sp_chat_render_llama2},
    [SP_CHAT_MISTRAL] = {"mistral", "<s>", "</s>", {NULL}, true, sp_chat_render_mistral},
    [SP_CHAT_PHI3] = {"phi3", "<s>", "<|endoftext|>", {"<|end|>", "<|endoftext|>", NULL}, false,
                      sp_chat_render_phi3},
    [SP_CHAT_GEMMA] = {"gemma", "<bos>", "<eos>", {"<end_of_turn>", "<eos>", NULL}, false,
                       sp_chat_render_gemma},
};

const char *sp_chat_family_name(sp_chat_family f)
{
    return f > SP_CHAT_NONE && f < SP_CHAT_N_FAMILIES ? families[f].name : "none";
}

const char *sp_chat_family_list(void)
{
    return "llama3, llama3.0, qwen3, qwen2.5, chatml, llama2, mistral, phi3, gemma";
}

sp_chat_opts sp_chat_opts_default(void)
{
    sp_chat_opts o = {true, -1, NULL};
    return o;
}

static void set_tokens(sp_chat_template *t, const char *bos, const char *eos)
{
    snprintf(t->bos, sizeof t->bos, "%s", bos);
    snprintf(t->eos, sizeof t->eos, "%s", eos);
}

static void init_family(sp_chat_template *t, sp_chat_family f, unsigned flags)
{
    memset(t, 0, sizeof *t);
    t->family = f;
    t->flags = flags;
    set_tokens(t, families[f].bos, families[f].eos);
}

int sp_chat_by_name(const char *name, sp_chat_template *out, sp_error *err)
{
    for (int f = 1; f < SP_CHAT_N_FAMILIES; f++)
        if (name && !strcmp(name, families[f].name)) {
            /* by name, llama3 follows Llama 3.2 (today's date by default) */
            init_family(out, (sp_chat_family)f, f == SP_CHAT_LLAMA3 ? SP_CHAT_DATE_TODAY : 0);
            return 0;
        }
    return sp_errorf(err, "unknown chat template '%s'; --chat-template takes one of: %s",
                     name ? name : "", sp_chat_family_list());
}

static bool has(const char *s, const char *marker) { return strstr(s, marker) != NULL; }

/* The markers. Each family is claimed only by text that its own template has
 * and near relatives that render differently lack, so a template we would
 * render wrongly falls through to the error rather than to a guess. */
static sp_chat_family detect(const char *s, unsigned *flags)
{
    *flags = 0;
    /* Qwen3: ChatML whose assistant turns carry <think> and reasoning_content */
    if (has(s, "<|im_start|>") && has(s, "<think>") && has(s, "reasoning_content") &&
        has(s, "<tool_response>") && has(s, "last_query_index"))
        return SP_CHAT_QWEN3;
    /* Llama 3.1-3.3: the system header states the knowledge cutoff and date;
     * 3.2 asks strftime_now for today's date, 3.1 falls back to 26 Jul 2024 */
    if (has(s, "<|start_header_id|>") && has(s, "<|eot_id|>")) {
        if (has(s, "Cutting Knowledge Date: December 2023") && has(s, "date_string")) {
            if (has(s, "strftime_now")) *flags |= SP_CHAT_DATE_TODAY;
            return SP_CHAT_LLAMA3;
        }
        /* Llama 3.0: no system header of its own, no tools */
        if (!has(s, "tool") && !has(s, "Cutting Knowledge") && has(s, "| trim"))
            return SP_CHAT_LLAMA30;
        return SP_CHAT_NONE;
    }
    /* Qwen2.5: ChatML with a default system prompt and tool calls whose
     * arguments always go through tojson; no thinking */
    if (has(s, "<|im_start|>") && has(s, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.") &&
        has(s, "<tool_call>") && has(s, "tool_call.arguments | tojson") && !has(s, "think"))
        return SP_CHAT_QWEN25;
    /* Qwen2 / Qwen1.5: plain ChatML plus "You are a helpful assistant." when
     * the conversation has no system message (this exact statement) */
    if (has(s, "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a "
               "helpful assistant.<|im_end|>\\n' }}{% endif %}") &&
        !has(s, "tool") && !has(s, "think")) {
        *flags |= SP_CHAT_DEFAULT_SYSTEM;
        return SP_CHAT_CHATML;
    }
    /* plain ChatML (OpenHermes and many fine-tunes): no default system
     * prompt (Qwen2/2.5 write "<|im_start|>system\nYou are ..." themselves),
     * no tools, no thinking, no Phi-4 <|im_sep|> */
    if (has(s, "<|im_start|>") && has(s, "<|im_end|>")) {
        if (has(s, "<|im_start|>system") || has(s, "tool") || has(s, "think") || has(s, "<|im_sep|>"))
            return SP_CHAT_NONE;
        return SP_CHAT_CHATML;
    }
    /* Llama 2 chat (Meta's): <<SYS>> folded into the first turn, bos per turn */
    if (has(s, "[INST]") && has(s, "<<SYS>>") && has(s, "bos_token + '[INST] '") &&
        has(s, "content.strip()") && has(s, "eos_token"))
        return SP_CHAT_LLAMA2;
    /* Mistral Instruct v0.1/v0.2: user/assistant only, no system anywhere
     * (v0.3 and later have [AVAILABLE_TOOLS] / system handling) */
    if (has(s, "'[INST] ' + message['content'] + ' [/INST]'") && has(s, "message['content'] + eos_token") &&
        has(s, "bos_token") && !has(s, "system") && !has(s, "<<SYS>>") && !has(s, "[AVAILABLE_TOOLS]"))
        return SP_CHAT_MISTRAL;
    /* Phi-3 mini/medium 4k-128k, Phi-3.5 mini: per-role tags, eos_token when no
     * generation prompt; Phi-3-small (bos + '<|' + role + '|>') is not this */
    if (has(s, "<|system|>") && has(s, "<|user|>") && has(s, "<|assistant|>") && has(s, "<|end|>") &&
        has(s, "eos_token") && !has(s, "bos_token") && !has(s, "tool")) {
        if (has(s, "'system' and message['content']")) *flags |= SP_CHAT_SKIP_EMPTY_SYSTEM;
        return SP_CHAT_PHI3;
    }
    /* Gemma 1 and 2: no system role, assistant spelled "model" */
    if (has(s, "<start_of_turn>") && has(s, "<end_of_turn>") && has(s, "System role not supported") &&
        has(s, "'model'") && has(s, "| trim"))
        return SP_CHAT_GEMMA;
    return SP_CHAT_NONE;
}

int sp_chat_detect(const char *tmpl, sp_chat_template *out, sp_error *err)
{
    unsigned flags;
    sp_chat_family f = tmpl ? detect(tmpl, &flags) : SP_CHAT_NONE;
    if (f == SP_CHAT_NONE)
        return sp_errorf(err, "the chat template is not one shardpipe recognizes; choose a family with "
                              "--chat-template NAME (one of: %s)", sp_chat_family_list());
    init_family(out, f, flags);
    return 0;
}

/* The text of token `id_key` of the file's vocabulary into dst; nothing when
 * the file has no such id (the family's default stays). */
static int token_text(const sp_gguf *g, const char *id_key, char *dst, size_t cap, sp_error *err)
{
    const sp_gguf_kv *tokens = sp_gguf_find(g, "tokenizer.ggml.tokens");
    if (!sp_gguf_find(g, id_key) || !tokens || tokens->type != SP_GGUF_ARRAY ||
        tokens->arr_type != SP_GGUF_STRING)
        return 0;
    uint32_t id;
    if (sp_gguf_get_u32(g, id_key, &id, err)) return -1;
    if (id >= tokens->arr_n)
        return sp_errorf(err, "%s: %s = %u is outside the vocabulary of %llu tokens", g->path, id_key, id,
                         (unsigned long long)tokens->arr_n);
    sp_gguf_str s = tokens->arr_strs[id];
    if (s.len >= cap || memchr(s.ptr, 0, s.len))
        return sp_errorf(err, "%s: token %u (%s) is not a usable special-token text for the chat template "
                              "(longer than %zu bytes or holds a NUL)", g->path, id, id_key, cap - 1);
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = 0;
    return 0;
}

int sp_chat_from_gguf(const sp_gguf *g, const char *override, sp_chat_template *out, sp_error *err)
{
    if (override) {
        if (sp_chat_by_name(override, out, err)) return -1;
    } else {
        const sp_gguf_kv *kv = sp_gguf_find(g, "tokenizer.chat_template");
        if (!kv || kv->type != SP_GGUF_STRING)
            return sp_errorf(err, "%s has no chat template (tokenizer.chat_template); choose a family with "
                                  "--chat-template NAME (one of: %s)", g->path, sp_chat_family_list());
        char *text = malloc(kv->val.str.len + 1);
        if (!text) return sp_errorf(err, "%s: out of memory reading the chat template", g->path);
        memcpy(text, kv->val.str.ptr, kv->val.str.len);
        text[kv->val.str.len] = 0;
        int rc = sp_chat_detect(text, out, err);
        free(text);
        if (rc) return sp_error_prefix(err, "%s: ", g->path);
    }
    if (token_text(g, "tokenizer.ggml.bos_token_id", out->bos, sizeof out->bos, err) ||
        token_text(g, "tokenizer.ggml.eos_token_id", out->eos, sizeof out->eos, err))
        return -1;
    return 0;
}

bool sp_chat_role_is(const sp_chat_msg *m, const char *role)
{
    return m->role && !strcmp(m->role, role);
}

int sp_chat_check_alternate(const sp_chat_msg *m, int k, const char *family, sp_error *err)
{
    if (sp_chat_role_is(m, "user") != (k % 2 == 0))
        return sp_errorf(err, "%s chat template: conversation roles must alternate user/assistant/user/"
                              "assistant/... (message %d is '%s')", family, k + 1, m->role ? m->role : "");
    return 0;
}

unsigned sp_chat_tokenize_flags(const sp_chat_template *t, const char *rendering)
{
    size_t bl = strlen(t->bos);
    bool starts_bos = bl && !strncmp(rendering, t->bos, bl);
    return SP_TOK_PARSE_SPECIAL | (starts_bos ? 0 : SP_TOK_ADD_SPECIAL);
}

char *sp_chat_render(const sp_chat_template *t, const sp_chat_msg *msgs, int n, const sp_chat_opts *o,
                     sp_error *err)
{
    if (!t || t->family <= SP_CHAT_NONE || t->family >= SP_CHAT_N_FAMILIES) {
        sp_errorf(err, "no chat template chosen; use --chat-template NAME (one of: %s)", sp_chat_family_list());
        return NULL;
    }
    if (n <= 0 || !msgs) {
        sp_errorf(err, "%s chat template: no messages to render", families[t->family].name);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!msgs[i].role) {
            sp_errorf(err, "%s chat template: message %d has no role", families[t->family].name, i + 1);
            return NULL;
        }
    sp_chat_opts def = sp_chat_opts_default();
    sp_sbuf b = {0};
    if (families[t->family].render(t, msgs, n, o ? o : &def, &b, err)) {
        free(b.p);
        return NULL;
    }
    if (b.oom) {
        free(b.p);
        sp_errorf(err, "%s chat template: out of memory rendering %d messages", families[t->family].name, n);
        return NULL;
    }
    if (!b.p) b.p = calloc(1, 1);
    return b.p;
}

bool sp_chat_quotes_string_arguments(const sp_chat_template *t)
{
    return t && (t->family == SP_CHAT_LLAMA3 || t->family == SP_CHAT_QWEN25);
}

int sp_chat_stop_texts(const sp_chat_template *t, const char *out[SP_CHAT_MAX_STOPS])
{
    if (!t || t->family <= SP_CHAT_NONE || t->family >= SP_CHAT_N_FAMILIES) return 0;
    const family_info *f = &families[t->family];
    int n = 0;
    if (f->stop_on_eos && t->eos[0]) out[n++] = t->eos;
    for (int i = 0; i < 3 && f->stops[i] && n < SP_CHAT_MAX_STOPS; i++) out[n++] = f->stops[i];
    return n;
}

/* Today's date as strftime("%d %b %Y") writes it in the C locale. */
void sp_chat_today(char out[16])
{
    static const char *mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(out, 16, "%02d %s %04d", tm.tm_mday % 100, mon[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000);
}
