/* supervisor.c - `shardpipe serve --cluster` / `--supervise` (supervisor.h):
 * the loop that ties the HTTP server, the requests, the boards and the MPI
 * job together.
 *
 * States: STARTING (a job launched, rank 0 not loaded yet), SERVING, DOWN
 * (the model fits no set of boards that are up: requests get 503 with the
 * planner's numbers). A failure is any of: the job exits (a rank killed:
 * hydra ends them all), no token for --fail-timeout seconds while requests
 * are in flight and no micro-batch back either (a hung rank or a link
 * down; a long prefill returns micro-batches) - or 3x the longest such
 * wait seen while healthy, if longer - rank 0 silent as long (heartbeats
 * every 100 ms), MPI not started (rank 0 not connected) within 2x
 * --fail-timeout or 3x the slowest start seen, a hydra proxy that cannot
 * reach mpiexec (its board's link is down: the job would wait for it
 * forever), or no "loaded" within --load-timeout. Then the
 * job's process group is killed, the failed board found (the rank the job
 * named, else every board of the plan probed), the boards that are up
 * planned again, the job relaunched, and every open request sent again
 * with the tokens it has produced. Boards that are away are probed every
 * 2 s; one that answers is planned back in when no request is open (or at
 * once when the service is down). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "jobs.h"
#include "shardpipe/chat.h"
#include "shardpipe/util.h"

enum { ST_STARTING, ST_SERVING, ST_DOWN };

typedef struct sv {
    const sp_supervisor_options *o;
    sp_server *srv;
    sp_gguf *g;
    sp_tokenizer *tok;
    sp_chat_template chat;
    bool has_chat;
    sv_boards b;
    sv_launch l;
    sv_jobs jobs;
    int lfd;
    sp_ctl ctl;
    bool connected;
    char sock[1100];
    int state;
    int start_failures;
    double t_launch, t_beat, t_progress, t_probe, t_down_retry;
    /* the recovery under way: when it was detected and each phase ended */
    bool recovering;
    double t_detect, t_planned, t_rank0, t_loaded, wall_detect;
    char failed[256];
    char down_reason[4200]; /* why the service is down (DOWN) */
    long returned;          /* the worker's micro-batches back, from its heartbeat */
    double gap_max;         /* the longest wait for progress seen while serving */
    bool rank0_up;          /* this launch's rank 0 has connected (MPI started) */
    double start_max;       /* the longest launch to rank 0 connected seen */
} sv;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

static int in_flight(const sv *s)
{
    int n = 0;
    for (int i = 0; i < s->jobs.n; i++) n += s->jobs.v[i]->sent;
    return n;
}

/* Boards are probed with --probe, or with the default probe when planning
 * from a cluster file (whose hosts are names mpiexec can reach); a fixed
 * plan's hosts may be mere labels, so without --probe it is relaunched as
 * it is. */
static bool probing(const sv *s) { return s->o->probe || s->b.planned; }

static void fail_all(sv *s, const char *reason)
{
    while (s->jobs.n) sv_job_fail(&s->jobs, s->jobs.v[0], reason);
}

/* Plans on the boards that are up and launches; DOWN when nothing fits. */
static void launch(sv *s)
{
    sp_error err = {{0}};
    char up[1024];
    sv_board_list(&s->b, true, up, sizeof up);
    if (sv_plan(&s->b, &err)) {
        char away[1024];
        sv_board_list(&s->b, false, away, sizeof away);
        snprintf(s->down_reason, sizeof s->down_reason, "on the boards that are up (%s; away: %s): %s; waiting for "
                 "a board to come back", up[0] ? up : "none", away[0] ? away : "none", err.msg);
        const char *msg = s->down_reason;
        fprintf(stderr, "shardpipe serve: %s\n", msg);
        s->state = ST_DOWN;
        s->t_down_retry = sp_now();
        s->recovering = false;
        sp_server_status(s->srv, false, msg);
        fail_all(s, msg);
        return;
    }
    s->t_planned = sp_now();
    fprintf(stderr, "shardpipe serve: plan %s: %d stage%s on %s\n", s->b.plan, s->b.n_stages,
            s->b.n_stages > 1 ? "s" : "", up);
    if (s->connected) sp_ctl_close(&s->ctl);
    s->connected = false;
    sp_ctl stale; /* a connection of a job that died before we took it */
    while (sp_ctl_accept(s->lfd, &stale)) sp_ctl_close(&stale);
    for (int i = 0; i < s->jobs.n; i++) s->jobs.v[i]->sent = s->jobs.v[i]->cancel_sent = false;
    if (sv_launch_start(&s->l, s->o, &s->b, s->sock, &err)) {
        fprintf(stderr, "shardpipe serve: %s\n", err.msg);
        s->state = ST_DOWN;
        return;
    }
    s->state = ST_STARTING;
    s->t_launch = sp_now();
    s->rank0_up = false;
}

/* Something failed: end the job, find the board, plan again, relaunch. */
static void recover(sv *s, const char *why)
{
    double now = sp_now();
    if (!s->recovering) {
        s->recovering = true;
        s->t_detect = now;
        s->wall_detect = wall_now();
    }
    bool starting = s->state == ST_STARTING;
    sv_launch_kill(&s->l);
    if (s->connected) sp_ctl_close(&s->ctl);
    s->connected = false;
    s->failed[0] = 0;
    s->t_probe = now; /* a board that just failed is probed again 2 s from now */
    int rank = s->l.killed_rank, cut = -1; /* a board whose proxy could not reach mpiexec */
    for (int i = 0; i < s->b.n_stages && s->l.unreachable[0] && rank < 0; i++) {
        int k = s->b.stage_board[i];
        if (!strcmp(s->b.host[k], s->l.unreachable)) cut = cut < 0 ? k : -2; /* -2: a host of several boards */
    }
    if (!probing(s)) { /* a fixed plan and no probe: relaunch it as it is */
        if (rank >= 0 && rank < s->b.n_ranks) snprintf(s->failed, sizeof s->failed, "%s", s->b.name[rank]);
        fprintf(stderr, "shardpipe serve: %s%s%s; relaunching the plan as it is\n", why,
                s->failed[0] ? ": rank failed on " : "", s->failed);
    } else if (cut >= 0) { /* its link is down: no probe would answer either */
        s->b.up[cut] = false;
        snprintf(s->failed, sizeof s->failed, "%s", s->b.name[cut]);
        fprintf(stderr, "shardpipe serve: %s: board %s cannot connect back to this host (its link is down or blocked)%s; it stays out "
                "until it answers a probe and no request is open\n", why, s->b.name[cut],
                starting ? " during start-up" : "");
    } else if (rank >= 0 && rank < s->b.n_ranks) {
        int board = s->b.stage_board[s->b.rank_stage[rank]];
        s->b.up[board] = false;
        snprintf(s->failed, sizeof s->failed, "%s", s->b.name[board]);
        fprintf(stderr, "shardpipe serve: %s: board %s (rank %d) failed%s; it stays out until it answers a probe "
                "and no request is open\n", why, s->b.name[board], rank, starting ? " during start-up" : "");
    } else {
        bool in_plan[SV_MAX_BOARDS] = {0};
        for (int i = 0; i < s->b.n_stages; i++) in_plan[s->b.stage_board[i]] = true;
        sv_probe_all(&s->b, in_plan);
        size_t len = 0;
        for (int i = 0; i < s->b.n; i++)
            if (in_plan[i] && !s->b.probe_ok[i]) {
                s->b.up[i] = false;
                len += (size_t)snprintf(s->failed + len, sizeof s->failed - len, "%s%s", len ? ", " : "",
                                        s->b.name[i]);
                if (len >= sizeof s->failed) len = sizeof s->failed - 1;
            }
        if (s->failed[0])
            fprintf(stderr, "shardpipe serve: %s: board%s %s do%s not answer a probe%s\n", why,
                    strchr(s->failed, ',') ? "s" : "", s->failed, strchr(s->failed, ',') ? "" : "es",
                    starting ? " (during start-up)" : "");
        else
            fprintf(stderr, "shardpipe serve: %s; every board answers its probe: relaunching on the same boards\n",
                    why);
    }
    if (starting && (!s->failed[0] || !probing(s)) && ++s->start_failures >= 3) {
        snprintf(s->down_reason, sizeof s->down_reason, "the pipeline failed to start %d times in a row (see the "
                 "server's log); retrying every 10 s", s->start_failures);
        fprintf(stderr, "shardpipe serve: %s\n", s->down_reason);
        s->state = ST_DOWN;
        s->t_down_retry = sp_now();
        sp_server_status(s->srv, false, s->down_reason);
        fail_all(s, s->down_reason);
        return;
    }
    char note[600];
    snprintf(note, sizeof note, "recovering: %s%s; relaunching the pipeline", s->failed[0] ? "board " : "",
             s->failed[0] ? s->failed : why);
    sp_server_status(s->srv, true, note);
    launch(s);
}

/* Something came back from the pipeline. The longest wait between two such
 * moments with work in flight (a re-prefill's first chunk through every
 * stage, on a loaded board) sets how long silence may last before it is a
 * failure: 3x that, and at least --fail-timeout. */
static void progress(sv *s, double now)
{
    if (in_flight(s) > 0 && now - s->t_progress > s->gap_max) s->gap_max = now - s->t_progress;
    s->t_progress = now;
}

static double silence_limit(const sv *s)
{
    return s->o->fail_timeout_s > 3 * s->gap_max ? s->o->fail_timeout_s : 3 * s->gap_max;
}

/* MPI starts in well under a second on a healthy cluster; a board whose
 * link went down after its probe answered keeps it from starting at all. */
static double start_limit(const sv *s)
{
    return 2 * s->o->fail_timeout_s > 3 * s->start_max ? 2 * s->o->fail_timeout_s : 3 * s->start_max;
}

static void on_line(sv *s, char *line)
{
    double now = sp_now();
    s->t_beat = now;
    long id;
    int a, b, c;
    if (line[0] == 'L') {
        s->t_rank0 = now;
        s->rank0_up = true;
        if (now - s->t_launch > s->start_max) s->start_max = now - s->t_launch;
    } else if (line[0] == 'R' && sscanf(line, "R %d %d %d", &a, &b, &c) == 3) {
        s->t_loaded = now;
        s->returned = 0;
        s->state = ST_SERVING;
        s->start_failures = 0;
        sp_server_ready(s->srv, s->tok, a, b, c, s->has_chat ? &s->chat : NULL);
        sp_server_status(s->srv, true, NULL);
        fprintf(stderr, "shardpipe serve: ready: %d stage%s, %d sequence slots, context %d (%.1f s after launch)\n",
                c, c > 1 ? "s" : "", b, a, now - s->t_launch);
        for (int i = 0; i < s->jobs.n; i++) sv_job_send(s->jobs.v[i], &s->ctl);
        s->t_progress = now;
        if (s->recovering && in_flight(s) == 0) s->recovering = false;
    } else if (line[0] == 'T' && sscanf(line, "T %ld %d %d", &id, &a, &b) == 3) {
        sv_job *x = sv_job_find(&s->jobs, id);
        progress(s, now);
        if (!x) return;
        if (s->recovering) {
            s->recovering = false;
            fprintf(stderr, "shardpipe serve: recovered: next token %.2f s after the failure was detected (at "
                    "%.3f): re-plan %.2f s, relaunch %.2f s, loading %.2f s, re-prefill %.2f s\n", now - s->t_detect,
                    s->wall_detect, s->t_planned - s->t_detect, s->t_rank0 - s->t_planned, s->t_loaded - s->t_rank0,
                    now - s->t_loaded);
        }
        sv_job_token(x, s->tok, a, b != 0, now);
    } else if (line[0] == 'H') {
        long returned;
        if (sscanf(line, "H %d %d %ld", &a, &b, &returned) == 3 && returned != s->returned) {
            s->returned = returned; /* a prefill chunk came back: the pipeline moves */
            progress(s, now);
        }
    } else if (line[0] == 'D' && sscanf(line, "D %ld %d %d", &id, &a, &b) == 3) {
        sv_job *x = sv_job_find(&s->jobs, id);
        if (x) sv_job_done(&s->jobs, x, a, b);
    }
}

/* New requests in; cancelled ones out. */
static void take_jobs(sv *s)
{
    sp_job *j;
    while ((j = sp_server_take(s->srv))) {
        if (sp_job_cancelled(j)) {
            sp_job_finish(j, SP_JOB_CANCELLED, 0, NULL, 0);
            continue;
        }
        if (s->state == ST_DOWN) {
            sp_job_fail(j, s->down_reason);
            continue;
        }
        if (in_flight(s) == 0) s->t_progress = sp_now(); /* silence before it was no failure */
        sv_job *x = sv_job_new(&s->jobs, j);
        if (s->state == ST_SERVING) sv_job_send(x, &s->ctl);
    }
    for (int i = 0; i < s->jobs.n; i++) {
        sv_job *x = s->jobs.v[i];
        if (!sp_job_cancelled(x->j)) continue;
        if (!x->sent) {
            sv_job_done(&s->jobs, x, SP_CTL_CANCELLED, 0);
            i--;
        } else if (!x->cancel_sent) {
            x->cancel_sent = true;
            sp_ctl_send(&s->ctl, "C %ld", x->id);
        }
    }
}

/* Boards that are away: probed every 2 s; one that answers comes back. */
static void watch_away(sv *s)
{
    double now = sp_now();
    if (now - s->t_probe > 2.0) {
        s->t_probe = now;
        for (int i = 0; i < s->b.n; i++)
            if (!s->b.up[i]) sv_probe_start(&s->b, i);
    }
    bool back = false;
    bool was_probing[SV_MAX_BOARDS];
    for (int i = 0; i < s->b.n; i++) was_probing[i] = s->b.probe_pid[i] != 0;
    if (sv_probe_reap(&s->b))
        for (int i = 0; i < s->b.n; i++)
            if (was_probing[i] && !s->b.probe_pid[i] && !s->b.up[i] && s->b.probe_ok[i]) {
                s->b.up[i] = true;
                back = true;
                fprintf(stderr, "shardpipe serve: board %s is back (it answers its probe)\n", s->b.name[i]);
            }
    bool want = false;
    for (int i = 0; i < s->b.n; i++) want |= s->b.up[i];
    if (s->state == ST_DOWN && (back || now - s->t_down_retry > 10.0) && want) {
        s->t_down_retry = now;
        launch(s);
    } else if (back && s->state != ST_DOWN && s->b.planned) {
        s->b.pending_return = true;
    }
    /* plan a returned board in once nothing is open: no request pauses for it */
    if (s->b.pending_return && s->state == ST_SERVING && s->jobs.n == 0) {
        s->b.pending_return = false;
        fprintf(stderr, "shardpipe serve: no request open: planning the returned board%s in\n",
                s->b.n > 1 ? "s" : "");
        sv_launch_kill(&s->l);
        launch(s);
    }
}

static void check_health(sv *s)
{
    double now = sp_now();
    double T = silence_limit(s);
    char why[300];
    if (s->l.pid && s->l.exited) {
        int st = s->l.exit_status;
        snprintf(why, sizeof why, "the MPI job ended (%s %d)", WIFEXITED(st) ? "exit code" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        recover(s, why);
    } else if (s->state == ST_STARTING && s->l.unreachable[0]) {
        snprintf(why, sizeof why, "MPI cannot start: hydra's proxy on %s cannot connect back to mpiexec",
                 s->l.unreachable);
        recover(s, why);
    } else if (s->state == ST_STARTING && !s->rank0_up && now - s->t_launch > start_limit(s)) {
        snprintf(why, sizeof why, "MPI did not start within %.0f s (rank 0 never connected: a board or its link "
                 "is down)", now - s->t_launch);
        recover(s, why);
    } else if (s->state == ST_STARTING && now - s->t_launch > s->o->load_timeout_s) {
        snprintf(why, sizeof why, "the pipeline did not load within --load-timeout %.0f s", s->o->load_timeout_s);
        recover(s, why);
    } else if (s->state == ST_SERVING && in_flight(s) > 0 && now - s->t_progress > T) {
        snprintf(why, sizeof why, "nothing back from the pipeline for %.0f s with %d request%s in flight (a board "
                 "hangs or its link is down)", now - s->t_progress, in_flight(s), in_flight(s) > 1 ? "s" : "");
        recover(s, why);
    } else if (s->state == ST_SERVING && now - s->t_beat > T) {
        snprintf(why, sizeof why, "rank 0 silent for %.0f s", now - s->t_beat);
        recover(s, why);
    }
}

static int setup(sv *s, const sp_supervisor_options *o, sp_error *err)
{
    if (sv_boards_init(&s->b, o, err)) return -1;
    const char *model = o->model_path;
    static sp_plan p;
    if (!model) {
        if (sp_plan_load(o->plan_path, &p, err)) return -1;
        model = p.model_path;
    }
    if (!(s->g = sp_gguf_open(model, err))) return -1;
    if (!(s->tok = sp_tokenizer_load(s->g, err))) return -1;
    sp_error e2 = {{0}};
    s->has_chat = sp_chat_from_gguf(s->g, o->chat_template, &s->chat, &e2) == 0;
    snprintf(s->sock, sizeof s->sock, "%s/control.sock", o->work_dir);
    if ((s->lfd = sp_ctl_listen(s->sock, err)) < 0) return -1;
    char id[1100];
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    snprintf(id, sizeof id, "%s", base);
    size_t n = strlen(id);
    if (n > 5 && !strcmp(id + n - 5, ".gguf")) id[n - 5] = 0;
    sp_server_options so = o->http;
    so.model_id = id;
    if (!(s->srv = sp_server_start(&so, err))) return -1;
    fprintf(stderr, "shardpipe serve: listening on http://%s:%d (model %s, supervised: a failed board is "
            "planned around); work folder %s\n", so.host, sp_server_port(s->srv), id, o->work_dir);
    return 0;
}

static void shutdown_all(sv *s)
{
    sp_server_drain(s->srv);
    fprintf(stderr, "shardpipe serve: stopping; %d request%s open get up to %.0f s\n", s->jobs.n,
            s->jobs.n == 1 ? "" : "s", s->o->grace_s);
    double t_end = sp_now() + s->o->grace_s;
    while (s->jobs.n && sp_now() < t_end && s->state == ST_SERVING && !s->l.exited) {
        if (sp_ctl_poll(&s->ctl, 0.05) < 0) break;
        char *line;
        while ((line = sp_ctl_line(&s->ctl))) on_line(s, line);
        take_jobs(s);
        sv_launch_poll(&s->l);
    }
    fail_all(s, "the server stopped before the answer was done");
    if (s->connected) sp_ctl_close(&s->ctl); /* the worker stops */
    double t_kill = sp_now() + 5;
    while (s->l.pid && !s->l.exited && sp_now() < t_kill) {
        sv_launch_poll(&s->l);
        usleep(20000);
    }
    sv_launch_kill(&s->l);
    sp_server_stop(s->srv);
    close(s->lfd);
    unlink(s->sock);
}

int sp_supervisor_run(const sp_supervisor_options *o)
{
    static sv s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.lfd = -1;
    s.ctl.fd = -1;
    sp_error err = {{0}};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (setup(&s, o, &err)) {
        fprintf(stderr, "shardpipe serve: %s\n", err.msg);
        return 1;
    }
    /* a board that is down already is named and planned around */
    if (probing(&s)) sv_probe_all(&s.b, NULL);
    for (int i = 0; i < s.b.n && probing(&s); i++)
        if (!s.b.probe_ok[i]) {
            s.b.up[i] = false;
            fprintf(stderr, "shardpipe serve: board %s does not answer its probe at start-up; planning without it "
                    "until it does\n", s.b.name[i]);
        }
    launch(&s);
    double t_note = 0;
    while (!stop_flag) {
        struct pollfd pf[3];
        int n = 0;
        pf[n++] = (struct pollfd){s.connected ? s.ctl.fd : s.lfd, POLLIN, 0};
        if (s.l.err_fd >= 0) pf[n++] = (struct pollfd){s.l.err_fd, POLLIN, 0};
        poll(pf, (nfds_t)n, 20);
        if (!s.connected && s.l.pid && sp_ctl_accept(s.lfd, &s.ctl)) {
            s.connected = true;
            s.t_beat = sp_now();
        }
        if (s.connected) {
            bool closed = sp_ctl_poll(&s.ctl, 0) < 0;
            char *line;
            while ((line = sp_ctl_line(&s.ctl))) on_line(&s, line);
            if (closed) { /* rank 0 has gone: the job's exit tells why */
                sp_ctl_close(&s.ctl);
                s.connected = false;
                double t_end = sp_now() + 2;
                while (!s.l.exited && sp_now() < t_end) {
                    sv_launch_poll(&s.l);
                    usleep(10000);
                }
                if (!s.l.exited) recover(&s, "rank 0 closed the control socket");
            }
        }
        sv_launch_poll(&s.l);
        take_jobs(&s);
        check_health(&s);
        watch_away(&s);
        if (sp_now() - t_note > 0.2) {
            t_note = sp_now();
            double busy[8] = {0};
            sp_server_note(s.srv, in_flight(&s), s.jobs.n - in_flight(&s), busy, s.b.n_stages, 0);
        }
    }
    shutdown_all(&s);
    fprintf(stderr, "shardpipe serve: stopped\n");
    sp_tokenizer_free(s.tok);
    sp_gguf_close(s.g);
    return 0;
}
