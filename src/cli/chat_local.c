/* chat_local.c - see chat_local.h. Why a child `shardpipe serve` and not
 * the engine called in-process: the chat then goes through the very server a
 * cluster runs (chat template, sampling defaults, stop strings, the prompt
 * cache), so `chat -m` and `chat --url` answer alike, and a Ctrl-C that
 * closes the stream exercises the same path as a remote client. The child
 * runs MPI as a singleton (MPI_Init without mpiexec gives a world of one),
 * in its own process group so the terminal's Ctrl-C reaches only chat, and
 * with PR_SET_PDEATHSIG so it never outlives chat. */
#include "chat_local.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shardpipe/client.h"
#include "shardpipe/gguf.h"
#include "shardpipe/model.h"
#include "shardpipe/plan.h"
#include "shardpipe/util.h"

#define LOCAL_CTX_MAX 4096  /* positions per chat: past this the KV cache grows for nothing */
#define LOCAL_READY_S 600.0 /* a large model on a slow disk loads for minutes */

struct sp_chat_local {
    pid_t pid;
    char dir[512], plan[600], log[600];
    char url[64], key[40];
};

const char *sp_chat_local_url(const sp_chat_local *l) { return l->url; }
const char *sp_chat_local_key(const sp_chat_local *l) { return l->key; }

/* A free loopback port: bind port 0, read what the kernel chose, close.
 * Another program could take it before serve binds it; serve then fails
 * with its bind error, which chat reports. */
static int free_port(sp_error *err)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0) close(fd);
        return sp_errorf(err, "cannot find a free port on 127.0.0.1: %s", strerror(errno));
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* 128 random bits as hex: the key of the private server, so other users of
 * this machine cannot use its port. */
static int random_key(char *out, size_t cap, sp_error *err)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0) close(fd);
    if (n != (ssize_t)sizeof b) return sp_errorf(err, "cannot read /dev/urandom for the local server's key");
    for (size_t i = 0; i < sizeof b && 2 * i + 2 < cap; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* One stage on rank 0 with every layer, one sequence, the model's context
 * up to LOCAL_CTX_MAX. */
static int write_plan(sp_chat_local *l, const char *model_path, int threads, sp_error *err)
{
    sp_gguf *g = sp_gguf_open(model_path, err);
    if (!g) return -1;
    sp_config cfg;
    int rc = sp_config_read(g, &cfg, err);
    sp_gguf_close(g);
    if (rc) return sp_error_prefix(err, "%s: ", model_path);
    sp_plan p;
    memset(&p, 0, sizeof p);
    if (!realpath(model_path, p.model_path)) snprintf(p.model_path, sizeof p.model_path, "%s", model_path);
    p.context = cfg.ctx_train < LOCAL_CTX_MAX ? cfg.ctx_train : LOCAL_CTX_MAX;
    p.sequences = 1;
    p.micro_batches = 1;
    p.prefill_chunk = 64;
    p.wire = SP_WIRE_F32;
    p.n_stages = 1;
    p.stages[0].rank = 0;
    snprintf(p.stages[0].host, sizeof p.stages[0].host, "localhost");
    p.stages[0].first = 0;
    p.stages[0].last = cfg.n_layers - 1;
    p.stages[0].threads = threads;
    return sp_plan_write(&p, l->plan, "written by `shardpipe chat -m` for its private server", NULL, err);
}

/* The last lines of the server's log, for an error message. */
static void log_tail(const sp_chat_local *l, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(l->log, "r");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)cap - 1 ? size - (long)cap + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    fclose(f);
    if (from > 0) { /* start at a whole line */
        char *nl = strchr(out, '\n');
        if (nl) {
            n -= (size_t)(nl + 1 - out);
            memmove(out, nl + 1, n + 1);
        }
    }
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
}

static void spawn(const sp_chat_local *l, int port, const char *chat_template)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    setpgid(0, 0);                  /* the terminal's Ctrl-C is for chat, not for the server */
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* chat killed: the server follows */
    if (getppid() == 1) _exit(1);   /* chat died before prctl */
    int in = open("/dev/null", O_RDONLY), out = open(l->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    /* a chat started under mpiexec must not make the server join that job */
    const char *pmi[] = {"PMI_FD", "PMI_RANK", "PMI_SIZE", "PMI_PORT", "PMI_ID", "PMI_HOSTNAME", "PMIX_RANK",
                         "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof pmi / sizeof pmi[0]; i++) unsetenv(pmi[i]);
    setenv("SHARDPIPE_API_KEY", l->key, 1);
    const char *args[] = {"shardpipe", "serve", "--plan", l->plan, "--host", "127.0.0.1", "--port", portstr,
                          chat_template ? "--chat-template" : NULL, chat_template, NULL};
    execv("/proc/self/exe", (char *const *)args);
    fprintf(stderr, "cannot run /proc/self/exe serve: %s\n", strerror(errno));
    _exit(127);
}

sp_chat_local *sp_chat_local_start(const char *model_path, int threads, const char *chat_template,
                                   volatile sig_atomic_t *stop, sp_error *err)
{
    sp_chat_local *l = calloc(1, sizeof *l);
    if (!l) abort();
    const char *tmp = getenv("TMPDIR");
    snprintf(l->dir, sizeof l->dir, "%s/shardpipe-chat-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(l->dir)) {
        sp_errorf(err, "cannot create a folder for the local server under %s: %s (set TMPDIR to a writable "
                       "folder)", tmp && *tmp ? tmp : "/tmp", strerror(errno));
        free(l);
        return NULL;
    }
    snprintf(l->plan, sizeof l->plan, "%s/plan.yaml", l->dir);
    snprintf(l->log, sizeof l->log, "%s/serve.log", l->dir);
    int port = -1;
    if (write_plan(l, model_path, threads, err) || random_key(l->key, sizeof l->key, err) ||
        (port = free_port(err)) < 0) {
        sp_chat_local_stop(l);
        return NULL;
    }
    snprintf(l->url, sizeof l->url, "http://127.0.0.1:%d", port);
    fflush(NULL);
    l->pid = fork();
    if (l->pid < 0) {
        sp_errorf(err, "cannot start the local server: fork: %s", strerror(errno));
        sp_chat_local_stop(l);
        return NULL;
    }
    if (l->pid == 0) spawn(l, port, chat_template);

    /* Ready when /health answers 200; gone when the child exits first. */
    sp_client *c = sp_client_new(l->url, l->key, err);
    double t_end = sp_now() + LOCAL_READY_S;
    int ok = 0;
    while (c && !ok) {
        int status;
        if (waitpid(l->pid, &status, WNOHANG) == l->pid) {
            l->pid = 0;
            char tail[700];
            log_tail(l, tail, sizeof tail);
            for (char *q = tail; *q; q++)
                if (*q == '\n') *q = '|'; /* one line: errors print control characters escaped */
            sp_errorf(err, "the local server for %s exited before it was ready (%s %d); its log ends: %s",
                      model_path, WIFEXITED(status) ? "status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
            break;
        }
        if ((stop && *stop) || sp_now() > t_end) {
            if (!(stop && *stop))
                sp_errorf(err, "the local server for %s was not ready after %.0f s (log: %s)", model_path,
                          LOCAL_READY_S, l->log);
            break;
        }
        sp_error e2 = {{0}};
        ok = !sp_client_wait_ready(c, 0.2, stop, &e2);
    }
    sp_client_free(c);
    if (!ok) {
        sp_chat_local_stop(l);
        return NULL;
    }
    return l;
}

void sp_chat_local_stop(sp_chat_local *l)
{
    if (!l) return;
    if (l->pid > 0) {
        kill(l->pid, SIGTERM);
        double t_end = sp_now() + 10;
        int status;
        while (waitpid(l->pid, &status, WNOHANG) == 0) {
            if (sp_now() > t_end) {
                kill(l->pid, SIGKILL);
                waitpid(l->pid, &status, 0);
                break;
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    unlink(l->plan);
    unlink(l->log);
    rmdir(l->dir);
    free(l);
}
