/* jobs.c - the supervisor's requests: each HTTP job with its prompt, the
 * tokens produced so far (kept here, outside the MPI job that may die) and
 * its own detokenizer, so a request resumed on a new pipeline goes on
 * streaming exactly after its last delivered token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "shardpipe/util.h"

sv_job *sv_job_new(sv_jobs *t, sp_job *j)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->v = realloc(t->v, (size_t)t->cap * sizeof *t->v);
        if (!t->v) abort();
    }
    sv_job *x = sp_alloc(sizeof *x);
    memset(x, 0, sizeof *x);
    x->j = j;
    x->id = ++t->next_id;
    const int *prompt = sp_job_prompt(j, &x->n_prompt);
    x->max_new = sp_job_max_new(j);
    x->p = sp_job_sampling(j);
    x->toks = sp_alloc((size_t)(x->n_prompt + x->max_new) * sizeof *x->toks);
    x->t_out = sp_alloc((size_t)(x->max_new > 0 ? x->max_new : 1) * sizeof *x->t_out);
    memcpy(x->toks, prompt, (size_t)x->n_prompt * sizeof *x->toks);
    sp_detok_init_continuation(&x->dt);
    t->v[t->n++] = x;
    return x;
}

sv_job *sv_job_find(sv_jobs *t, long id)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i]->id == id) return t->v[i];
    return NULL;
}

/* Sends a job, or sends it again after a relaunch: its prompt plus what it
 * has produced, for the tokens it still may produce. */
int sv_job_send(sv_job *x, sp_ctl *c)
{
    x->sent = true;
    x->resumed = x->n_out > 0;
    return sp_ctl_send_job(c, x->id, x->toks, x->n_prompt + x->n_out, x->max_new - x->n_out, &x->p);
}

void sv_job_token(sv_job *x, const sp_tokenizer *tok, int token, bool eos, double now)
{
    if (x->n_out >= x->max_new) return; /* cannot happen: the worker stops at max_new */
    x->toks[x->n_prompt + x->n_out] = token;
    x->t_out[x->n_out++] = now;
    if (eos) return;
    char buf[256];
    int len = sp_detok_push(tok, &x->dt, token, buf, sizeof buf);
    if (len > 0) sp_job_text(x->j, buf, len);
}

static void drop(sv_jobs *t, sv_job *x)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i] == x) {
            t->v[i] = t->v[--t->n];
            break;
        }
    free(x->toks);
    free(x->t_out);
    free(x);
}

void sv_job_done(sv_jobs *t, sv_job *x, int how, int n_cached)
{
    char buf[64];
    int len = sp_detok_flush(&x->dt, buf, sizeof buf);
    if (len > 0 && (how == SP_CTL_EOS || how == SP_CTL_LENGTH)) sp_job_text(x->j, buf, len);
    int jh = how == SP_CTL_EOS ? SP_JOB_EOS : how == SP_CTL_LENGTH ? SP_JOB_LENGTH
           : how == SP_CTL_CANCELLED ? SP_JOB_CANCELLED : SP_JOB_ABORTED;
    sp_job_finish(x->j, jh, x->n_out, x->t_out, n_cached);
    drop(t, x);
}

void sv_job_fail(sv_jobs *t, sv_job *x, const char *reason)
{
    sp_job_fail(x->j, reason);
    drop(t, x);
}
