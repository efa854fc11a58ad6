/* worker.c - rank 0 of `serve --worker PATH` (worker.h): the supervisor's
 * jobs into the scheduler, tokens and endings back. A job's tokens are its
 * prompt plus whatever an earlier pipeline already produced; the scheduler
 * treats them all as prompt, and the sampler, keyed by position, continues
 * exactly where the failed pipeline stopped. */
#include "worker.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"

int sp_worker_connect(sp_worker *w, const char *path, sp_error *err)
{
    memset(w, 0, sizeof *w);
    if (sp_ctl_connect(&w->ctl, path, err)) return -1;
    if (sp_ctl_send(&w->ctl, "L")) return sp_errorf(err, "the supervisor at %s closed the control socket", path);
    return 0;
}

void sp_worker_ready(sp_worker *w, int context, int slots, int stages)
{
    if (sp_ctl_send(&w->ctl, "R %d %d %d", context, slots, stages)) w->gone = true;
}

/* The request of job id, waiting or in a slot. */
static sp_request *find(sp_sched *s, long id)
{
    for (int i = 0; i < s->n_slots; i++)
        if (s->slot_req[i] && (long)(intptr_t)s->slot_req[i]->client == id) return s->slot_req[i];
    for (int i = 0; i < s->p_len; i++) {
        sp_request *r = s->pending[(s->p_head + i) % s->p_cap];
        if ((long)(intptr_t)r->client == id) return r;
    }
    return NULL;
}

static void take_line(sp_worker *w, sp_sched *s, const char *line)
{
    if (line[0] == 'J') {
        long id;
        int *toks, n, max_new;
        sp_sampler_params p = sp_sampler_defaults();
        if (sp_ctl_parse_job(line, &id, &toks, &n, &max_new, &p) || max_new < 1 || n + max_new > s->context) {
            fprintf(stderr, "shardpipe serve: a malformed job from the supervisor: %.80s\n", line);
            if (toks) free(toks);
            return;
        }
        if (!sp_sched_add(s, toks, n, max_new, &p, (void *)(intptr_t)id))
            sp_ctl_send(&w->ctl, "D %ld %d 0", id, SP_CTL_ABORTED);
        free(toks);
    } else if (line[0] == 'C') {
        long id = strtol(line + 1, NULL, 10);
        sp_request *r = find(s, id);
        if (r) sp_sched_cancel(s, r, sp_now());
    }
}

bool sp_worker_poll(sp_worker *w, sp_sched *s, double wait_s)
{
    if (!w->gone && sp_ctl_poll(&w->ctl, wait_s) < 0) w->gone = true;
    char *line;
    while ((line = sp_ctl_line(&w->ctl))) take_line(w, s, line);
    double now = sp_now();
    if (!w->gone && now - w->t_beat > 0.1) {
        w->t_beat = now;
        if (sp_ctl_send(&w->ctl, "H %d %d %ld", sp_sched_running(s) - s->p_len, s->p_len, s->returned))
            w->gone = true;
    }
    return !w->gone;
}

void sp_worker_on_token(void *arg, sp_request *r, int token, bool eos)
{
    sp_worker *w = arg;
    if (sp_ctl_send(&w->ctl, "T %ld %d %d", (long)(intptr_t)r->client, token, eos ? 1 : 0)) w->gone = true;
}

void sp_worker_on_event(void *arg, sp_sched *s, sp_request *r, const char *text, int len, bool done)
{
    sp_worker *w = arg;
    (void)s, (void)text, (void)len;
    if (!done) return; /* the supervisor detokenizes the tokens itself */
    int how = r->finish == SP_FINISH_EOS ? SP_CTL_EOS : r->finish == SP_FINISH_LENGTH ? SP_CTL_LENGTH
                                                                                       : SP_CTL_CANCELLED;
    if (sp_ctl_send(&w->ctl, "D %ld %d %d", (long)(intptr_t)r->client, how, r->n_cached)) w->gone = true;
    sp_request_free(r);
}

void sp_worker_close(sp_worker *w) { sp_ctl_close(&w->ctl); }
