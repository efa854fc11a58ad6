/* cmd_generate.c - `shardpipe generate`: the whole model in one process.
 * Tokenize (or take the prompt's token ids), prefill the prompt in chunks,
 * then decode one token at a time, streaming text (or ids when the model's
 * tokenizer cannot be loaded); print prompt and decode tok/s and peak memory
 * at the end. --logits-out writes every logit row computed, for comparing
 * with another implementation. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_prompt.h"
#include "commands.h"
#include "cli_util.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/model.h"
#include "shardpipe/quant.h"
#include "shardpipe/sampler.h"
#include "shardpipe/tokenizer.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe generate -m MODEL.gguf (-p PROMPT | --chat MESSAGE | --prompt-tokens IDS) [-n TOKENS]\n"
            "                          [options]\n"
            "  -m, --model PATH       GGUF model (llama, qwen2, qwen3)\n"
            "  -p, --prompt TEXT      prompt (BOS is added when the vocabulary says so)\n"
            "      --chat MESSAGE     a user message, through the model's chat template; prints the answer\n"
            "      --system TEXT      with --chat: a system message before it\n"
            "      --chat-template NAME  with --chat: this template family instead of the file's\n"
            "                         (llama3, llama3.0, qwen3, qwen2.5, chatml, llama2, mistral, phi3, gemma)\n"
            "      --prompt-tokens IDS  the prompt as token ids, e.g. \"128000 791 4062\" (used as given:\n"
            "                         no BOS added; the tokenizer is then optional, and without one\n"
            "                         the output is printed as ids)\n"
            "      --logits-out FILE  write float32 logits (n_vocab per row): one row per prompt position,\n"
            "                         then one per generated token fed back (the last one is not)\n"
            "  -n, --tokens N         tokens to generate (default 64; stops early at EOS)\n"
            "      --ctx N            context positions (default: prompt + N, at most the model's)\n"
            "      --threads N        kernel threads (default: the CPUs this process may use, %d here)\n"
            "      --chunk N          prompt tokens per prefill micro-batch (default 64)\n"
            "      --ignore-eos       keep generating past end-of-generation tokens (EOS, EOT)\n"
            "      --tokens-out FILE  also write the generated token ids, one per line\n"
            SP_SAMPLER_USAGE,
            sp_default_threads());
}

int cmd_generate(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *tokens_out = NULL, *prompt_ids = NULL, *logits_out = NULL;
    const char *chat_msg = NULL, *chat_system = NULL, *chat_tmpl = NULL;
    int n_gen = 64, ctx = 0, threads = sp_default_threads(), chunk = 64, ignore_eos = 0;
    sp_sampler_params sp = sp_sampler_defaults();
    enum { O_CTX = 256, O_THREADS, O_CHUNK, O_IGNORE_EOS, O_TOKENS_OUT, O_PROMPT_IDS, O_LOGITS_OUT, O_CHAT, O_SYSTEM,
           O_CHAT_TEMPLATE, O_SAMPLER_BASE };
    struct option opts[32] = {
        {"model", required_argument, 0, 'm'},   {"prompt", required_argument, 0, 'p'},
        {"tokens", required_argument, 0, 'n'},  {"ctx", required_argument, 0, O_CTX},
        {"threads", required_argument, 0, O_THREADS}, {"chunk", required_argument, 0, O_CHUNK},
        {"ignore-eos", no_argument, 0, O_IGNORE_EOS}, {"tokens-out", required_argument, 0, O_TOKENS_OUT},
        {"prompt-tokens", required_argument, 0, O_PROMPT_IDS}, {"logits-out", required_argument, 0, O_LOGITS_OUT},
        {"help", no_argument, 0, 'h'},
        {"chat", required_argument, 0, O_CHAT}, {"system", required_argument, 0, O_SYSTEM},
        {"chat-template", required_argument, 0, O_CHAT_TEMPLATE},
    };
    sp_cli_sampler_options(opts + 14, O_SAMPLER_BASE);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': if (sp_cli_int("generate", "-n", optarg, 0, 1 << 20, &n_gen)) return 2; break;
        case O_CTX: if (sp_cli_int("generate", "--ctx", optarg, 1, 1 << 20, &ctx)) return 2; break;
        case O_THREADS: if (sp_cli_int("generate", "--threads", optarg, 1, SP_MAX_THREADS, &threads)) return 2; break;
        case O_CHUNK: if (sp_cli_int("generate", "--chunk", optarg, 1, 1 << 16, &chunk)) return 2; break;
        case O_IGNORE_EOS: ignore_eos = 1; break;
        case O_TOKENS_OUT: tokens_out = optarg; break;
        case O_PROMPT_IDS: prompt_ids = optarg; break;
        case O_LOGITS_OUT: logits_out = optarg; break;
        case O_CHAT: chat_msg = optarg; break;
        case O_SYSTEM: chat_system = optarg; break;
        case O_CHAT_TEMPLATE: chat_tmpl = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            if (c >= O_SAMPLER_BASE) {
                if (sp_cli_sampler_parse("generate", c - O_SAMPLER_BASE, optarg, &sp)) return 2;
                break;
            }
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || (prompt != NULL) + (prompt_ids != NULL) + (chat_msg != NULL) != 1) {
        fprintf(stderr, "shardpipe generate: -m MODEL and one of -p PROMPT, --chat MESSAGE or --prompt-tokens IDS "
                        "are required\n");
        usage(stderr);
        return 2;
    }
    if (!chat_msg && (chat_system || chat_tmpl)) {
        fprintf(stderr, "shardpipe generate: --system and --chat-template go with --chat MESSAGE\n");
        return 2;
    }

    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(model_path, &err);
    if (!m) return sp_cli_fail("generate", &err);
    /* the tokenizer is needed to turn text into ids; with ids given it only
     * prints the output as text, so a tokenizer shardpipe cannot load yet
     * is then a note, not an error */
    sp_tokenizer *tok = sp_tokenizer_load(m->gguf, &err);
    if (!tok && !prompt_ids) { sp_model_close(m); return sp_cli_fail("generate", &err); }
    if (!tok) fprintf(stderr, "shardpipe generate: note: %s; printing token ids instead of text\n", err.msg);

    int n_prompt;
    int *ids;
    sp_cli_chat chat = {0};
    if (chat_msg) {
        /* the prompt is the chat template's rendering; only the answer is printed */
        if (sp_cli_chat_prompt(m->gguf, tok, chat_tmpl, chat_system, chat_msg, &chat, &err)) {
            sp_cli_chat_free(&chat); sp_tokenizer_free(tok); sp_model_close(m);
            return sp_cli_fail("generate", &err);
        }
        ids = chat.ids;
        chat.ids = NULL;
        n_prompt = chat.n_ids;
        prompt = "";
    } else if (prompt) {
        ids = sp_tokenize(tok, prompt, SP_TOK_ADD_SPECIAL, &n_prompt, &err);
        if (!ids) { sp_tokenizer_free(tok); sp_model_close(m); return sp_cli_fail("generate", &err); }
    } else {
        int cap = (int)strlen(prompt_ids) / 2 + 2;
        ids = malloc((size_t)cap * sizeof(int));
        n_prompt = sp_cli_parse_ids("generate", "--prompt-tokens", prompt_ids, m->cfg.n_vocab, ids, cap);
    }
    if (n_prompt < 1) {
        if (n_prompt == 0) fprintf(stderr, "shardpipe generate: the prompt has no tokens\n");
        free(ids); sp_cli_chat_free(&chat); sp_tokenizer_free(tok); sp_model_close(m);
        return 2;
    }
    int eos = tok ? sp_tokenizer_eos(tok) : sp_config_eos_id(m->gguf);
    const sp_config *cfg = &m->cfg;
    if (ctx == 0) ctx = n_prompt + n_gen < cfg->ctx_train ? n_prompt + n_gen : cfg->ctx_train;
    if (n_prompt + n_gen > ctx) {
        fprintf(stderr, "shardpipe generate: prompt (%d tokens) + %d new tokens exceed the context of %d "
                        "positions; lower -n or raise --ctx (model maximum %d)\n", n_prompt, n_gen, ctx,
                cfg->ctx_train);
        free(ids); sp_cli_chat_free(&chat); sp_tokenizer_free(tok); sp_model_close(m);
        return 1;
    }
    sp_engine *e = sp_engine_new(m, threads, chunk, 1, ctx, &err);
    if (!e || sp_model_load_weights(m, &err)) {
        sp_engine_free(e); free(ids); sp_cli_chat_free(&chat); sp_tokenizer_free(tok); sp_model_close(m);
        return sp_cli_fail("generate", &err);
    }

    sp_sampler smp;
    sp_sampler_init(&smp, &sp, cfg->n_vocab);
    for (int i = 0; i < n_prompt; i++) sp_sampler_accept(&smp, ids[i]);
    float *x = sp_alloc((size_t)chunk * cfg->dim * sizeof(float));
    /* with --logits-out, logits of every prompt row of a chunk */
    float *logits = sp_alloc((size_t)(logits_out ? chunk : 1) * cfg->n_vocab * sizeof(float));
    /* through the atomic writer, as every output: a device or FIFO in
     * place, a regular file replaced whole or not at all */
    sp_atomic_file logits_file;
    FILE *lf = NULL;
    if (logits_out) {
        if (sp_atomic_open(&logits_file, logits_out, "the logits", &err)) {
            free(x); free(logits); free(ids); sp_cli_chat_free(&chat);
            sp_sampler_free(&smp); sp_engine_free(e); sp_tokenizer_free(tok); sp_model_close(m);
            return sp_cli_fail("generate", &err);
        }
        lf = logits_file.f;
    }
    int *seq = sp_calloc((size_t)chunk, sizeof(int)), *pos = sp_alloc((size_t)chunk * sizeof(int));
    sp_atomic_file tokens_file;
    FILE *tf = NULL;
    if (tokens_out) {
        if (sp_atomic_open(&tokens_file, tokens_out, "the token ids", &err)) {
            free(x); free(logits); free(seq); free(pos); free(ids);
            sp_sampler_free(&smp); sp_engine_free(e); sp_tokenizer_free(tok); sp_model_close(m);
            return sp_cli_fail("generate", &err);
        }
        tf = tokens_file.f;
    }

    sp_detok dt;
    if (chat_msg) sp_detok_init(&dt); /* the answer starts fresh: no leading space */
    else sp_detok_init_continuation(&dt);
    char text[256];
    if (prompt) fputs(prompt, stdout);
    else fputs(prompt_ids, stdout);
    fflush(stdout);

    /* prefill: chunks of the prompt; logits only for the last prompt token */
    int rc = 0;
    double t0 = sp_now();
    for (int p0 = 0; p0 < n_prompt && !rc; p0 += chunk) {
        int n = n_prompt - p0 < chunk ? n_prompt - p0 : chunk;
        for (int i = 0; i < n; i++) pos[i] = p0 + i;
        sp_batch b = {n, seq, pos};
        rc = sp_embed(e, ids + p0, n, x, &err) || sp_forward(e, &b, x, &err);
        if (!rc && lf) {
            sp_head(e, x, n, logits);
            rc = sp_cli_write_f32(lf, logits, (size_t)n * cfg->n_vocab, logits_out, &err);
            /* the last row is what the first token is sampled from */
            memmove(logits, logits + (size_t)(n - 1) * cfg->n_vocab, (size_t)cfg->n_vocab * sizeof(float));
        } else if (!rc && p0 + n == n_prompt) {
            sp_head(e, x + (size_t)(n - 1) * cfg->dim, 1, logits);
        }
    }
    double t_prompt = sp_now() - t0;

    /* decode */
    int n_done = 0;
    bool stdout_lost = false;
    double t1 = sp_now();
    for (int p = n_prompt; !rc && n_done < n_gen; p++) {
        int next = sp_sampler_sample(&smp, logits, p);
        sp_sampler_accept(&smp, next);
        n_done++;
        if (tf) fprintf(tf, "%d\n", next);
        bool end = tok ? sp_token_is_eog(tok, next) || sp_cli_chat_is_stop(&chat, next) : next == eos;
        if (end && !ignore_eos) break;
        int len = tok ? sp_detok_push(tok, &dt, next, text, sizeof text) : snprintf(text, sizeof text, " %d", next);
        fwrite(text, 1, (size_t)len, stdout);
        if (fflush(stdout) != 0) { /* the text is lost: no use computing more (main.c reports it) */
            stdout_lost = true;
            break;
        }
        if (n_done == n_gen) break;
        pos[0] = p;
        sp_batch b = {1, seq, pos};
        rc = sp_embed(e, &next, 1, x, &err) || sp_forward(e, &b, x, &err);
        if (!rc) sp_head(e, x, 1, logits);
        if (!rc && lf) rc = sp_cli_write_f32(lf, logits, (size_t)cfg->n_vocab, logits_out, &err);
    }
    double t_decode = sp_now() - t1;
    int len = sp_detok_flush(&dt, text, sizeof text);
    fwrite(text, 1, (size_t)len, stdout);
    fputc('\n', stdout);
    /* the token ids: every write checked at the commit (a full disk once
     * left an empty file and exit 0) */
    if (tf) {
        bool ok = !rc && !stdout_lost;
        sp_error werr = {{0}};
        if (sp_atomic_commit(&tokens_file, ok, &werr) && ok) err = werr, rc = -1;
    }
    if (lf) {
        bool ok = !rc && !stdout_lost;
        sp_error werr = {{0}};
        if (sp_atomic_commit(&logits_file, ok, &werr) && ok) err = werr, rc = -1;
    }

    if (rc) {
        sp_cli_fail("generate", &err);
    } else if (stdout_lost) {
        rc = 1; /* main.c names stdout and the reason */
    } else {
        fprintf(stderr,
                "\nprompt: %d tokens in %.3f s (%.2f tok/s) | decode: %d tokens in %.3f s (%.2f tok/s) | "
                "threads %d | peak RSS %.1f MiB | kernels %s, prefetch %d B, layer weights in %s layout\n",
                n_prompt, t_prompt, n_prompt / t_prompt, n_done, t_decode,
                n_done > 1 ? (n_done - 1) / t_decode : 0.0, threads, sp_peak_rss_bytes() / 1048576.0,
                sp_simd_name(), sp_simd_prefetch(), sp_layout_name(sp_model_weights_layout(m)));
    }
    free(x); free(logits); free(seq); free(pos); free(ids);
    sp_sampler_free(&smp);
    sp_engine_free(e);
    sp_cli_chat_free(&chat);
    sp_tokenizer_free(tok);
    sp_model_close(m);
    return rc ? 1 : 0;
}
