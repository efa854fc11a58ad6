/* boards.c - the supervisor's view of the boards: which are up, probing
 * them (a shell command per board, run asynchronously with a 5 s cap), and
 * planning with the planner on those that are up (a new plan and hydra host
 * file per launch, in the work folder). Without a cluster file the plan is
 * fixed and each stage counts as a board. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "shardpipe/util.h"

#define PROBE_CAP_S 5.0

int sv_boards_init(sv_boards *b, const sp_supervisor_options *o, sp_error *err)
{
    memset(b, 0, sizeof *b);
    b->o = o;
    if (o->cluster_path) {
        if (sp_cluster_load(o->cluster_path, &b->cl, err)) return -1;
        b->planned = true;
        b->n = b->cl.n_boards;
        for (int i = 0; i < b->n; i++) {
            snprintf(b->name[i], sizeof b->name[i], "%s", b->cl.boards[i].name);
            snprintf(b->host[i], sizeof b->host[i], "%s", b->cl.boards[i].host);
        }
    } else {
        static sp_plan p;
        if (sp_plan_load(o->plan_path, &p, err)) return -1;
        b->n = p.n_stages;
        for (int i = 0; i < b->n; i++) {
            snprintf(b->name[i], sizeof b->name[i], "%s", p.stages[i].host);
            snprintf(b->host[i], sizeof b->host[i], "%s", p.stages[i].host);
        }
    }
    for (int i = 0; i < b->n; i++) b->up[i] = true;
    return 0;
}

void sv_board_list(const sv_boards *b, bool up, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < b->n && len + 70 < cap; i++)
        if (b->up[i] == up) len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", b->name[i]);
}

/* A fixed plan: rank r runs stage r on "board" r. */
static int plan_fixed(sv_boards *b, sp_error *err)
{
    static sp_plan p;
    if (sp_plan_load(b->o->plan_path, &p, err)) return -1;
    for (int i = 0; i < b->n; i++)
        if (!b->up[i])
            return sp_errorf(err, "stage %d's board %s is away and the plan %s is fixed (give --cluster to plan "
                                  "again on the boards that are up)", i, b->name[i], b->o->plan_path);
    snprintf(b->plan, sizeof b->plan, "%s", b->o->plan_path);
    b->hosts[0] = 0;
    b->n_stages = p.n_stages;
    b->n_ranks = 0;
    for (int i = 0; i < p.n_stages; i++) {
        b->stage_board[i] = i;
        b->rank_stage[p.stages[i].rank] = i;
        if (p.stages[i].rank + 1 > b->n_ranks) b->n_ranks = p.stages[i].rank + 1;
    }
    b->context = p.context;
    return 0;
}

int sv_plan(sv_boards *b, sp_error *err)
{
    if (!b->planned) return plan_fixed(b, err);
    const sp_supervisor_options *o = b->o;
    /* the cluster of the boards that are up, links and all */
    static sp_cluster up;
    int map[SV_MAX_BOARDS], n = 0;
    up = b->cl;
    for (int i = 0; i < b->n; i++)
        if (b->up[i]) map[n++] = i;
    for (int i = 0; i < n; i++) {
        up.boards[i] = b->cl.boards[map[i]];
        for (int k = 0; k < n; k++) up.links[i][k] = b->cl.links[map[i]][map[k]];
    }
    up.n_boards = n;
    char away[1024];
    sv_board_list(b, false, away, sizeof away);
    if (n == 0) return sp_errorf(err, "no board is up (away: %s)", away);

    sp_gguf *g = sp_gguf_open(o->model_path, err);
    if (!g) return -1;
    sp_config cfg;
    sp_problem p = {0};
    int rc = sp_config_read(g, &cfg, err);
    sp_cost_options co = {.context = o->context,
                          .sequences = o->sequences > 0 ? o->sequences : 1,
                          .prefill_chunk = 32,
                          .wire = SP_WIRE_F32}; /* prompt chunks: the planner's defaults, as `plan` */
    for (int w = 0; w < 3 && o->wire; w++)
        if (!strcmp(o->wire, sp_wire_name((sp_wire_type)w))) co.wire = (sp_wire_type)w;
    if (!co.context) co.context = cfg.ctx_train < 2048 ? cfg.ctx_train : 2048;
    sp_solution s;
    if (!rc) rc = sp_cost_build(&p, &up, g, &cfg, &co, err);
    if (!rc && sp_search(&p, SP_OBJ_THROUGHPUT, &s, err)) rc = -1;
    if (!rc) {
        static sp_plan plan;
        char model_abs[4096];
        if (!realpath(o->model_path, model_abs)) snprintf(model_abs, sizeof model_abs, "%s", o->model_path);
        sp_planner_to_plan(&s, &up, &co, model_abs, &plan);
        if (o->micro_batches > 0) plan.micro_batches = o->micro_batches;
        b->gen++;
        snprintf(b->plan, sizeof b->plan, "%s/plan-%d.yaml", o->work_dir, b->gen);
        sp_planner_hosts_path(b->plan, b->hosts, sizeof b->hosts);
        rc = sp_plan_write(&plan, b->plan, NULL, NULL, err) || sp_planner_write_hosts(&plan, b->hosts, err);
        b->n_stages = s.n_stages;
        b->n_ranks = s.n_stages;
        for (int i = 0; i < s.n_stages; i++) {
            b->stage_board[i] = map[s.board[i]];
            b->rank_stage[plan.stages[i].rank] = i;
        }
        b->context = co.context;
    }
    sp_problem_free(&p);
    sp_gguf_close(g);
    return rc;
}

/* {board} and {host} of the probe command replaced. */
static void probe_command(const sv_boards *b, int i, char *out, size_t cap)
{
    const char *t = b->o->probe ? b->o->probe : "mpiexec -hosts {host} -n 1 true";
    size_t len = 0;
    while (*t && len + 1 < cap) {
        const char *v = NULL;
        if (!strncmp(t, "{board}", 7)) v = b->name[i], t += 7;
        else if (!strncmp(t, "{host}", 6)) v = b->host[i], t += 6;
        if (v) len += (size_t)snprintf(out + len, cap - len, "%s", v);
        else out[len++] = *t++;
        if (len >= cap) len = cap - 1;
    }
    out[len] = 0;
}

void sv_probe_start(sv_boards *b, int i)
{
    if (b->probe_pid[i]) return;
    char cmd[2048];
    probe_command(b, i, cmd, sizeof cmd);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int dn = open("/dev/null", 1);
        if (dn >= 0) { dup2(dn, 1); dup2(dn, 2); }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return;
    b->probe_pid[i] = pid;
    b->probe_t0[i] = b->probe_last[i] = sp_now();
}

int sv_probe_reap(sv_boards *b)
{
    int done = 0;
    for (int i = 0; i < b->n; i++) {
        if (!b->probe_pid[i]) continue;
        int st;
        pid_t r = waitpid(b->probe_pid[i], &st, WNOHANG);
        if (r == 0 && sp_now() - b->probe_t0[i] < PROBE_CAP_S) continue;
        if (r == 0) { /* no answer in time: down */
            kill(-b->probe_pid[i], SIGKILL);
            waitpid(b->probe_pid[i], &st, 0);
            st = 1 << 8;
        }
        b->probe_ok[i] = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        b->probe_pid[i] = 0;
        done++;
    }
    return done;
}

void sv_probe_all(sv_boards *b, const bool *which)
{
    for (int i = 0; i < b->n; i++)
        if (!which || which[i]) sv_probe_start(b, i);
    for (;;) {
        sv_probe_reap(b);
        bool busy = false;
        for (int i = 0; i < b->n; i++) busy |= b->probe_pid[i] != 0;
        if (!busy) return;
        usleep(20000);
    }
}
