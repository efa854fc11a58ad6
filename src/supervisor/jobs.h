/* jobs.h - the supervisor's table of open requests (jobs.c). */
#ifndef SHARDPIPE_SUPERVISOR_JOBS_H
#define SHARDPIPE_SUPERVISOR_JOBS_H

#include <stdbool.h>

#include "shardpipe/control.h"
#include "shardpipe/server.h"
#include "shardpipe/tokenizer.h"

typedef struct sv_job {
    sp_job *j;
    long id;
    int *toks;         /* the prompt, then the tokens produced */
    int n_prompt, n_out, max_new;
    double *t_out;
    sp_sampler_params p;
    sp_detok dt;
    bool sent;         /* to the current MPI job */
    bool cancel_sent;
    bool resumed;      /* sent again with tokens produced: the next one ends a recovery */
} sv_job;

typedef struct sv_jobs {
    sv_job **v;
    int n, cap;
    long next_id;
} sv_jobs;

sv_job *sv_job_new(sv_jobs *t, sp_job *j);
sv_job *sv_job_find(sv_jobs *t, long id);
int sv_job_send(sv_job *x, sp_ctl *c);
void sv_job_token(sv_job *x, const sp_tokenizer *tok, int token, bool eos, double now);
/* The job's end (how: SP_CTL_*); x is freed. */
void sv_job_done(sv_jobs *t, sv_job *x, int how, int n_cached);
void sv_job_fail(sv_jobs *t, sv_job *x, const char *reason);

#endif
