/* serve.c - `shardpipe serve`: the pipeline kept loaded behind an
 * OpenAI-compatible HTTP server (src/server, started on rank 0 before the
 * weights load, so /health says "loading" meanwhile).
 *
 * Requests enter on the server's connection threads, which validate and
 * tokenize them and queue a job. The coordinator loop (loops.c) asks
 * serve_keep_going between micro-batches: it takes the queued jobs into the
 * scheduler (sched.c: they wait for a free slot, the one whose KV cache
 * shares the longest prefix with the prompt, and their prompt chunks share
 * micro-batches with the other sequences' decode rows), cancels those
 * whose client left or whose stop string appeared, and publishes gauges for
 * /metrics. Detokenized text goes back to each job's channel as the tokens
 * arrive (on_event). On SIGINT/SIGTERM the server refuses new requests,
 * in-flight answers get --grace seconds to finish, then STOP goes down the
 * pipeline and every rank exits 0.
 *
 * With --worker PATH the HTTP side belongs to a supervisor outside MPI
 * (src/supervisor) that relaunches the job when a board fails: rank 0
 * then takes its jobs from the control socket instead (worker.c), with the
 * same scheduler and loops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "worker.h"
#include "shardpipe/chat.h"
#include "shardpipe/cluster.h"
#include "shardpipe/server.h"
#include "shardpipe/util.h"

typedef struct serving {
    const sp_serve_options *o;
    sp_server *srv;      /* NULL under a supervisor: */
    sp_worker *worker;   /* its control channel */
    runtime *rt;
    bool draining, aborting;
    double t_start, t_drain, t_note;
    long served;
} serving;

static void on_event(void *arg, sp_sched *s, sp_request *r, const char *text, int len, bool done)
{
    serving *sv = arg;
    (void)s;
    sp_job *j = r->client;
    if (!done) {
        sp_job_text(j, text, len);
        return;
    }
    int how = r->finish == SP_FINISH_EOS      ? SP_JOB_EOS
            : r->finish == SP_FINISH_LENGTH   ? SP_JOB_LENGTH
            : sv->aborting                    ? SP_JOB_ABORTED
                                              : SP_JOB_CANCELLED;
    sp_job_finish(j, how, r->n_out, r->t_out, r->n_cached);
    sp_request_free(r);
    sv->served++;
}

/* Every request still waiting or running ends now. */
static void cancel_all(sp_sched *s, double now)
{
    for (int i = 0; i < s->n_slots; i++)
        if (s->slot_req[i]) sp_sched_cancel(s, s->slot_req[i], now);
    while (s->p_len) sp_sched_cancel(s, s->pending[s->p_head], now);
}

static bool serve_keep_going(void *arg, sp_sched *s, int in_flight)
{
    serving *sv = arg;
    (void)in_flight;
    double now = sp_now();
    if (sp_comm_interrupted() && !sv->draining) {
        sv->draining = true;
        sv->t_drain = now;
        sp_server_drain(sv->srv);
        fprintf(stderr, "shardpipe serve: stopping; %d request%s in flight get up to %.0f s to finish\n",
                sp_sched_running(s), sp_sched_running(s) == 1 ? "" : "s", sv->o->grace_s);
    }
    /* new requests: into the scheduler's queue, in arrival order */
    sp_job *j;
    while ((j = sp_server_take(sv->srv))) {
        if (sp_job_cancelled(j)) {
            sp_job_finish(j, SP_JOB_CANCELLED, 0, NULL, 0);
            continue;
        }
        int n;
        const int *prompt = sp_job_prompt(j, &n);
        sp_sampler_params p = sp_job_sampling(j);
        if (!sp_sched_add(s, prompt, n, sp_job_max_new(j), &p, j)) sp_job_finish(j, SP_JOB_ABORTED, 0, NULL, 0);
    }
    /* a client that left (or whose stop string came) frees its slot now */
    for (int i = 0; i < s->n_slots; i++)
        if (s->slot_req[i] && sp_job_cancelled(s->slot_req[i]->client)) sp_sched_cancel(s, s->slot_req[i], now);
    for (int i = 0; i < s->p_len; i++) {
        sp_request *r = s->pending[(s->p_head + i) % s->p_cap];
        if (sp_job_cancelled(r->client)) {
            sp_sched_cancel(s, r, now);
            i--;
        }
    }
    if (now - sv->t_note > 0.2) {
        sv->t_note = now;
        int running = 0;
        for (int i = 0; i < s->n_slots; i++) running += s->slot_req[i] != NULL;
        sp_server_note(sv->srv, running, s->p_len, sv->rt->stage_busy, sv->rt->plan->n_stages, now - sv->t_start);
    }
    if (!sv->draining) return true;
    if (sp_sched_running(s) == 0) return false;
    if (now - sv->t_drain > sv->o->grace_s) {
        fprintf(stderr, "shardpipe serve: %d request%s did not finish within --grace %.0f s; ending them\n",
                sp_sched_running(s), sp_sched_running(s) == 1 ? "" : "s", sv->o->grace_s);
        sv->aborting = true;
        cancel_all(s, now);
        return false;
    }
    return true;
}

static void serve_idle(void *arg, sp_sched *s, int in_flight, int *spins)
{
    serving *sv = arg;
    if (in_flight == 0 && sp_sched_running(s) == 0) sp_server_wait(sv->srv, 0.05); /* woken by a request */
    else sp_comm_backoff(spins);
}

/* Under a supervisor: its jobs, until it goes (or a signal comes; hydra
 * forwards the supervisor's SIGTERM). It answers the clients, so nothing
 * here waits for a grace period. */
static bool worker_keep_going(void *arg, sp_sched *s, int in_flight)
{
    serving *sv = arg;
    (void)in_flight;
    bool on = sp_worker_poll(sv->worker, s, 0) && !sp_comm_interrupted();
    if (!on) cancel_all(s, sp_now());
    return on;
}

static void worker_idle(void *arg, sp_sched *s, int in_flight, int *spins)
{
    serving *sv = arg;
    if (in_flight == 0 && sp_sched_running(s) == 0) sp_worker_poll(sv->worker, s, 0.05);
    else sp_comm_backoff(spins);
}

/* The model's chat template (NULL: none we can run, the plain transcript
 * then; a note says why) and the ids of its end-of-turn tokens. */
static const sp_chat_template *chat_template(const char *model_path, const char *name, const sp_tokenizer *tok,
                                             sp_chat_template *t, sp_sched *s)
{
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(model_path, &err);
    int rc = g ? sp_chat_from_gguf(g, name, t, &err) : -1;
    sp_gguf_close(g);
    if (rc) {
        fprintf(stderr, "shardpipe serve: note: %s; chat requests use a plain \"User: ... Assistant:\" transcript\n",
                err.msg);
        return NULL;
    }
    const char *stops[SP_CHAT_MAX_STOPS];
    int ns = sp_chat_stop_texts(t, stops);
    for (int id = 0; id < sp_tokenizer_n_vocab(tok); id++) {
        const char *piece = sp_token_piece(tok, id);
        for (int k = 0; k < ns && piece; k++)
            if (!strcmp(piece, stops[k]) && s->n_stop_ids < 4) s->stop_ids[s->n_stop_ids++] = id;
    }
    fprintf(stderr, "shardpipe serve: chat template %s\n", sp_chat_family_name(t->family));
    return t;
}

/* "stories260K" for models/stories260K.gguf */
static void model_id(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    snprintf(out, cap, "%s", b ? b + 1 : path);
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf")) out[n - 5] = 0;
}

int sp_cluster_serve(int *argc, char ***argv, const sp_serve_options *o)
{
    sp_comm comm;
    sp_comm_init(&comm, argc, argv, o->timeout_s);
    sp_comm_catch_signals();
    sp_error err = {{0}};
    sp_plan plan;
    memset(&plan, 0, sizeof plan);
    sp_tokenizer *tok = NULL;
    sp_server *srv = NULL;
    char id[1100];

    /* 1. rank 0: the plan, the model header, the tokenizer; then listen */
    int rc = 0;
    sp_worker worker;
    if (comm.rank == 0 && o->worker) rc = sp_worker_connect(&worker, o->worker, &err);
    if (comm.rank == 0 && !rc) {
        rc = sp_prepare_plan(o->plan_path, o->model_path, o->sequences, o->micro_batches, &comm, &plan, &tok, NULL,
                             NULL, &err);
        if (!rc && !tok)
            rc = sp_errorf(&err, "%s: serve needs the model's tokenizer, which could not be loaded (see the note "
                                 "above)", plan.model_path);
        sp_chat_template named;
        if (!rc && o->chat_template) rc = sp_chat_by_name(o->chat_template, &named, &err); /* a name it knows */
        if (!rc && !o->worker) {
            model_id(plan.model_path, id, sizeof id);
            sp_server_options so = {o->host, o->port, o->api_key, id, o->queue, o->client_timeout_s, o->max_body};
            srv = sp_server_start(&so, &err);
            if (!srv) rc = -1;
        }
        if (!rc && !o->worker)
            fprintf(stderr, "shardpipe serve: listening on http://%s%s%s:%d (model %s); loading the shards\n",
                    strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "", sp_server_port(srv),
                    id);
    }
    sp_agree(&comm, "serve", rc, &err);
    sp_runtime_share_plan(&comm, &plan, o->model_path, o->threads, o->shard_cache, "serve");

    /* 2. every stage binds its shard (a failure ends every rank) */
    runtime rt;
    sp_runtime_start(&rt, &comm, &plan, NULL, "serve");
    rt.wait_forever = true; /* no request for an hour is no failure */
    MPI_Barrier(MPI_COMM_WORLD);

    /* 3. serve until SIGINT/SIGTERM */
    if (comm.rank == 0) {
        sp_sched sched;
        sp_sched_init_empty(&sched, tok, plan.context, plan.sequences, plan.micro_batches, sp_plan_max_rows(&plan),
                            plan.prefill_chunk, plan.n_stages + 1, plan.sequences + o->queue + 1);
        sched.plan = &plan;
        sched.prompt_cache = !o->no_prompt_cache;
        serving sv = {o, srv, o->worker ? &worker : NULL, &rt, false, false, sp_now(), 0, 0, 0};
        sched.on_event = o->worker ? sp_worker_on_event : on_event;
        sched.on_token = o->worker ? sp_worker_on_token : NULL;
        sched.event_arg = o->worker ? (void *)&worker : (void *)&sv;
        sp_chat_template tmpl;
        const sp_chat_template *chat = chat_template(plan.model_path, o->chat_template, tok, &tmpl, &sched);
        if (o->worker) sp_worker_ready(&worker, plan.context, plan.sequences, plan.n_stages);
        else sp_server_ready(srv, tok, plan.context, plan.sequences, plan.n_stages, chat);
        fprintf(stderr, "shardpipe serve: ready: %d stage%s, %d sequence slots, context %d\n", plan.n_stages,
                plan.n_stages > 1 ? "s" : "", plan.sequences, plan.context);
        sp_coord_hooks hooks = {serve_keep_going, serve_idle, &sv};
        if (o->worker) hooks = (sp_coord_hooks){worker_keep_going, worker_idle, &sv};
        sp_coordinator_loop(&rt, &sched, false, &hooks);
        sv.aborting = true;
        cancel_all(&sched, sp_now());
        if (o->worker) {
            sp_worker_close(&worker);
        } else { /* anything submitted after the last look */
            sp_job *j;
            while ((j = sp_server_take(srv))) sp_job_finish(j, SP_JOB_ABORTED, 0, NULL, 0);
            sp_server_stop(srv);
        }
        fprintf(stderr, "shardpipe serve: stopped after %ld request%s, %ld tokens generated, %ld prompt tokens "
                        "taken from the cache\n", sv.served, sv.served == 1 ? "" : "s", sched.generated,
                sched.cache_reused);
        sp_sched_free(&sched);
        sp_tokenizer_free(tok);
    } else if (rt.stage >= 0) {
        sp_stage_loop(&rt);
    }
    sp_runtime_free(&rt);
    int code = 0;
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    sp_comm_shutdown(&comm, code);
}
