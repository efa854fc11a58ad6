/* cmd_template.c - `shardpipe template`: which chat template family a model
 * has and what a conversation renders to, for checking prompts by eye or
 * against another implementation. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cli_util.h"
#include "shardpipe/chat.h"
#include "shardpipe/chat_json.h"
#include "shardpipe/gguf.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe template (-m MODEL.gguf | --template-file FILE) [--json FILE | --user TEXT [--system TEXT]]\n"
            "                          [options]\n"
            "  prints the chat template family on stderr and the rendering, byte for byte, on stdout\n"
            "  -m, --model PATH          GGUF model (its tokenizer.chat_template and bos/eos tokens)\n"
            "      --template-file FILE  a Jinja chat template as text (e.g. from tokenizer_config.json): is it\n"
            "                            recognized, and how does it render (the family's usual bos/eos)\n"
            "      --chat-template NAME  this family instead of the file's (%s)\n"
            "      --json FILE           an array of OpenAI-style messages, or an object {\"messages\": [...],\n"
            "                            \"add_generation_prompt\": BOOL, \"kwargs\": {...}} as in the reference files\n"
            "      --user TEXT           a user message (default \"Hello!\")\n"
            "      --system TEXT         a system message before it\n"
            "      --no-generation-prompt  end after the last message\n"
            "      --think, --no-think   Qwen3: enable_thinking true / false (default: undefined)\n"
            "      --date TEXT           Llama 3.x date_string (default: the template's, today for 3.2)\n",
            sp_chat_family_list());
}

/* The messages and options of --json FILE (json stays referenced by o). */
static int load_json(const char *path, json_t **root, sp_chat_msgs *msgs, sp_chat_opts *o, sp_error *err)
{
    json_error_t je;
    *root = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!*root) return sp_errorf(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    const json_t *arr = *root;
    if (json_is_object(*root)) {
        arr = json_object_get(*root, "messages");
        const json_t *gen = json_object_get(*root, "add_generation_prompt");
        if (gen && !json_is_boolean(gen))
            return sp_errorf(err, "%s: add_generation_prompt must be true or false", path);
        if (gen) o->add_generation_prompt = json_is_true(gen);
        if (sp_chat_opts_from_json(json_object_get(*root, "kwargs"), o, err))
            return sp_error_prefix(err, "%s: ", path);
    }
    if (sp_chat_msgs_from_json(arr, msgs, err)) return sp_error_prefix(err, "%s: ", path);
    return 0;
}

/* The family of the template text in path (the whole file, NUL-free). */
static int detect_file(const char *path, sp_chat_template *t, sp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sp_errorf(err, "%s: cannot open the template file", path);
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    size_t got;
    while (text && (got = fread(text + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *p = cap < (64u << 20) ? realloc(text, cap *= 2) : NULL;
            if (!p) { free(text); text = NULL; }
            else text = p;
        }
    }
    fclose(f);
    if (!text) return sp_errorf(err, "%s: the template file is over 64 MiB or memory ran out", path);
    text[n] = 0;
    int rc = memchr(text, 0, n) ? sp_errorf(err, "%s: the template holds a NUL byte", path) : sp_chat_detect(text, t, err);
    free(text);
    return rc ? sp_error_prefix(err, "%s: ", path) : 0;
}

int cmd_template(int argc, char **argv)
{
    const char *model = NULL, *tmpl_file = NULL, *name = NULL, *json_path = NULL, *user = NULL, *system = NULL;
    sp_chat_opts o = sp_chat_opts_default();
    enum { O_TMPL = 256, O_TFILE, O_JSON, O_USER, O_SYSTEM, O_NOGEN, O_THINK, O_NOTHINK, O_DATE };
    struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"chat-template", required_argument, 0, O_TMPL},
        {"json", required_argument, 0, O_JSON}, {"user", required_argument, 0, O_USER},
        {"system", required_argument, 0, O_SYSTEM}, {"no-generation-prompt", no_argument, 0, O_NOGEN},
        {"think", no_argument, 0, O_THINK}, {"no-think", no_argument, 0, O_NOTHINK},
        {"date", required_argument, 0, O_DATE}, {"template-file", required_argument, 0, O_TFILE}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case O_TMPL: name = optarg; break;
        case O_TFILE: tmpl_file = optarg; break;
        case O_JSON: json_path = optarg; break;
        case O_USER: user = optarg; break;
        case O_SYSTEM: system = optarg; break;
        case O_NOGEN: o.add_generation_prompt = false; break;
        case O_THINK: o.enable_thinking = 1; break;
        case O_NOTHINK: o.enable_thinking = 0; break;
        case O_DATE: o.date_string = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model == !tmpl_file || optind < argc) {
        fprintf(stderr, "shardpipe template: %s\n",
                optind < argc ? "unexpected argument" : "one of -m MODEL or --template-file FILE is required");
        usage(stderr);
        return 2;
    }
    if (json_path && (user || system)) {
        fprintf(stderr, "shardpipe template: --json FILE or --user/--system, not both\n");
        return 2;
    }

    sp_error err = {{0}};
    sp_gguf *g = NULL;
    sp_chat_template t;
    int rc;
    if (model) {
        if (!(g = sp_gguf_open(model, &err))) return sp_cli_fail("template", &err);
        rc = sp_chat_from_gguf(g, name, &t, &err);
    } else {
        rc = name ? sp_chat_by_name(name, &t, &err) : detect_file(tmpl_file, &t, &err);
    }
    json_t *root = NULL;
    sp_chat_msgs msgs = {0};
    char *out = NULL;
    if (!rc && json_path) {
        rc = load_json(json_path, &root, &msgs, &o, &err);
    } else if (!rc) {
        sp_chat_msg m[2] = {{.role = "system", .content = system}, {.role = "user", .content = user ? user : "Hello!"}};
        out = sp_chat_render(&t, m + (system ? 0 : 1), system ? 2 : 1, &o, &err);
        rc = out ? 0 : -1;
    }
    if (!rc && json_path) rc = (out = sp_chat_render(&t, msgs.msgs, msgs.n, &o, &err)) ? 0 : -1;
    if (!rc) {
        const char *stops[SP_CHAT_MAX_STOPS];
        int ns = sp_chat_stop_texts(&t, stops);
        fprintf(stderr, "chat template: %s (%s); stops:", sp_chat_family_name(t.family),
                name ? "--chat-template" : tmpl_file ? "--template-file" : "tokenizer.chat_template");
        for (int i = 0; i < ns; i++) fprintf(stderr, " %s", stops[i]);
        fputc('\n', stderr);
        fputs(out, stdout);
    }
    free(out);
    sp_chat_msgs_free(&msgs);
    json_decref(root);
    if (g) sp_gguf_close(g);
    return rc ? sp_cli_fail("template", &err) : 0;
}
