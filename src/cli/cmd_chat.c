/* cmd_chat.c - `shardpipe chat`: a terminal chat with an OpenAI-compatible
 * server (`shardpipe serve`), through the client of src/client. On a
 * terminal it is interactive: a prompt, the answer streamed as it comes,
 * /reset, /system, /quit, Ctrl-C stops the answer (the stream is closed, so
 * the server frees the slot), Ctrl-D quits. With stdin not a terminal it
 * reads one message per line and prints each answer on its own line. With
 * -m MODEL.gguf it first starts a one-rank server for MODEL on a private
 * loopback port (chat_local.c) and talks to that. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_local.h"
#include "cli_util.h"
#include "commands.h"
#include "shardpipe/client.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe chat [--url URL] [options]        chat with a running `shardpipe serve`\n"
            "       shardpipe chat -m MODEL.gguf [options]      chat with MODEL on this machine alone\n"
            "      --url URL          server (default http://127.0.0.1:8080)\n"
            "  -m, --model PATH       start a one-rank server for this GGUF model on a private loopback\n"
            "                         port and chat with it (no cluster, no mpiexec)\n"
            "      --threads N        with -m: kernel threads of that server (default 1)\n"
            "      --chat-template NAME  with -m: that server's template family instead of the file's\n"
            "                         (as `shardpipe serve --chat-template`)\n"
            "      --system TEXT      system prompt\n"
            "      --api-key KEY      Bearer key of the server (default: $SHARDPIPE_API_KEY)\n"
            "      --temp T           temperature (default: the server's)\n"
            "      --seed S           sampling seed (default: the server's)\n"
            "  -n, --max-tokens N     longest answer in tokens (default: the server's)\n"
            "On a terminal: /reset forgets the conversation, /system TEXT sets the system prompt\n"
            "(/system alone removes it), /quit or Ctrl-D leaves, Ctrl-C stops the current answer.\n"
            "With stdin not a terminal: one message per line, each answer on one line; Ctrl-C ends (130).\n");
}

static void print_piece(void *ud, const char *text, size_t len)
{
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* A line that starts with / is a command; returns 1 to quit, 0 when it
 * handled the line, -1 when the line is a message. */
static int command(sp_client *c, const char *line, int tty)
{
    if (line[0] != '/') return -1;
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) return 1;
    if (!strcmp(line, "/reset")) {
        sp_client_reset(c);
        if (tty) fprintf(stderr, "(conversation cleared)\n");
        return 0;
    }
    if (!strncmp(line, "/system", 7) && (line[7] == 0 || line[7] == ' ')) {
        const char *t = line + 7;
        while (*t == ' ') t++;
        sp_client_set_system(c, t);
        if (tty) fprintf(stderr, *t ? "(system prompt set)\n" : "(system prompt removed)\n");
        return 0;
    }
    if (!strcmp(line, "/help")) {
        fprintf(stderr, "/reset, /system TEXT, /quit; Ctrl-C stops an answer, Ctrl-D quits\n");
        return 0;
    }
    fprintf(stderr, "shardpipe chat: unknown command %s (commands: /reset, /system TEXT, /quit, /help)\n", line);
    return 0;
}

/* The server refused the request because the context cannot hold it, for
 * `param`: "messages" (the conversation alone) or "max_tokens" (it and -n). */
static int context_full(const sp_client_answer *a, const char *param)
{
    return a->http_status == 400 && !a->chunks && !strcmp(a->error_code, "context_length_exceeded") &&
           !strcmp(a->error_param, param);
}

/* The conversation loop; returns the exit code. */
static int chat_loop(sp_client *c, const sp_client_params *p)
{
    int tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr, "shardpipe chat: %s%s%s. /reset, /system TEXT, /quit; Ctrl-C stops an answer, "
                        "Ctrl-D quits.\n", sp_client_url(c), sp_client_model(c) ? ", model " : "",
                sp_client_model(c) ? sp_client_model(c) : "");
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        interrupted = 0;
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (errno == EINTR && tty) { /* Ctrl-C at the prompt: a fresh prompt, not an exit */
                clearerr(stdin);
                fputs("\n(Ctrl-D or /quit leaves)\n", stderr);
                continue;
            }
            if (interrupted) rc = 130;
            if (tty) fputc('\n', stdout);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        int cmd = command(c, line, tty);
        if (cmd == 1) break;
        if (cmd == 0) continue;

        sp_error err = {{0}};
        sp_client_answer ans;
        sp_client_status st = sp_client_ask(c, line, p, print_piece, NULL, &interrupted, &ans, &err);
        if (st == SP_CLIENT_ERROR && context_full(&ans, "max_tokens") && p->max_tokens > 0 &&
            sp_client_turns(c) > 0) {
            /* -n no longer fits beside the conversation (on the first
             * question the error stands: -n alone is at fault there): this
             * answer gets the context that is left, the server's default */
            fprintf(stderr, "[-n %d does not fit beside the conversation in the context: this answer gets the rest; "
                            "/reset starts afresh]\n", p->max_tokens);
            sp_client_params rest = *p;
            rest.max_tokens = 0;
            err = (sp_error){{0}};
            st = sp_client_ask(c, line, &rest, print_piece, NULL, &interrupted, &ans, &err);
        }
        if (st == SP_CLIENT_STOPPED) {
            fputs(tty ? "\n[stopped]\n" : "\n", stdout);
            fflush(stdout);
            if (!tty) {
                rc = 130;
                break;
            }
            continue;
        }
        if (st == SP_CLIENT_ERROR) {
            if (ans.chunks) fputc('\n', stdout);
            fflush(stdout);
            sp_cli_fail("chat", &err);
            if (!tty) {
                rc = 1;
                break;
            }
            if (context_full(&ans, "messages")) fputs("(/reset starts a new conversation)\n", stderr);
            continue;
        }
        fputc('\n', stdout);
        if (tty && !strcmp(ans.finish_reason, "length"))
            fprintf(stderr, "[the answer reached the token limit%s]\n", p->max_tokens > 0 ? " (-n)" : "");
        fflush(stdout);
    }
    free(line);
    return rc;
}

int cmd_chat(int argc, char **argv)
{
    const char *url = NULL, *model = NULL, *system = NULL, *key = getenv("SHARDPIPE_API_KEY"), *tmpl = NULL;
    int threads = 1;
    sp_client_params p = {.temperature = -1, .seed = -1, .max_tokens = 0};
    enum { O_URL = 256, O_SYSTEM, O_KEY, O_TEMP, O_SEED, O_THREADS, O_TEMPLATE };
    static const struct option opts[] = {
        {"url", required_argument, 0, O_URL},       {"model", required_argument, 0, 'm'},
        {"system", required_argument, 0, O_SYSTEM}, {"api-key", required_argument, 0, O_KEY},
        {"temp", required_argument, 0, O_TEMP},     {"seed", required_argument, 0, O_SEED},
        {"max-tokens", required_argument, 0, 'n'},  {"threads", required_argument, 0, O_THREADS},
        {"chat-template", required_argument, 0, O_TEMPLATE},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "m:n:h", opts, NULL)) != -1) {
        float t;
        uint64_t s;
        switch (ch) {
        case O_URL: url = optarg; break;
        case 'm': model = optarg; break;
        case O_SYSTEM: system = optarg; break;
        case O_KEY: key = optarg; break;
        case O_TEMP: if (sp_cli_float("chat", "--temp", optarg, 0, 100, &t)) return 2; p.temperature = t; break;
        case O_SEED:
            if (sp_cli_u64("chat", "--seed", optarg, &s)) return 2;
            if (s > INT64_MAX) {
                fprintf(stderr, "shardpipe chat: --seed %s is past 2^63-1 (JSON integers stop there)\n", optarg);
                return 2;
            }
            p.seed = (int64_t)s;
            break;
        case 'n': if (sp_cli_int("chat", "-n", optarg, 1, 1 << 20, &p.max_tokens)) return 2; break;
        case O_THREADS: if (sp_cli_int("chat", "--threads", optarg, 1, 256, &threads)) return 2; break;
        case O_TEMPLATE: tmpl = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shardpipe chat: unexpected argument '%s' (messages come from stdin)\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (tmpl && !model) {
        fprintf(stderr, "shardpipe chat: --chat-template goes with -m (a server started elsewhere has its own: "
                        "`shardpipe serve --chat-template`)\n");
        return 2;
    }
    if (url && model) {
        fprintf(stderr, "shardpipe chat: give --url (a running server) or -m MODEL (one started here), not both\n");
        return 2;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt ends the read */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    sp_error err = {{0}};
    sp_chat_local *local = NULL;
    if (model) {
        local = sp_chat_local_start(model, threads, tmpl, &interrupted, &err);
        if (!local) return interrupted ? 130 : sp_cli_fail("chat", &err);
        url = sp_chat_local_url(local);
        key = sp_chat_local_key(local);
    }
    sp_client *c = sp_client_new(url ? url : "http://127.0.0.1:8080", key, &err);
    int rc;
    if (!c || sp_client_connect(c, &interrupted, &err)) rc = interrupted ? 130 : sp_cli_fail("chat", &err);
    else {
        sp_client_set_system(c, system);
        rc = chat_loop(c, &p);
    }
    sp_client_free(c);
    sp_chat_local_stop(local);
    return rc;
}
