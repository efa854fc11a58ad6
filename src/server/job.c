/* job.c - the hand-over between HTTP threads and the coordinator: a FIFO of
 * submitted jobs (the coordinator takes them between micro-batches) and,
 * per job, a channel (mutex + condition) through which the coordinator
 * appends the answer's text and finally says how it ended. A job has two
 * references once submitted, the connection's and the coordinator's; the
 * last release frees it, so either side may finish first. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "shardpipe/util.h"

int sp_server_submit(sp_server *s, sp_job *j)
{
    pthread_mutex_lock(&s->mu);
    int refuse = s->state != SP_SRV_READY ? 503 : s->active >= s->n_slots + s->o.queue ? 429 : 0;
    if (!refuse) {
        j->srv = s;
        j->refs = 2;
        j->t_submit = sp_now();
        j->next = NULL;
        if (s->tail) s->tail->next = j;
        else s->head = j;
        s->tail = j;
        s->active++;
        if (s->n_open == s->cap_open) {
            s->cap_open = s->cap_open ? 2 * s->cap_open : 64;
            s->open = realloc(s->open, (size_t)s->cap_open * sizeof *s->open);
        }
        s->open[s->n_open++] = j;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return refuse;
}

sp_job *sp_server_take(sp_server *s)
{
    pthread_mutex_lock(&s->mu);
    sp_job *j = s->head;
    if (j) {
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        j->next = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return j;
}

void sp_server_wait(sp_server *s, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(seconds * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&s->mu);
    if (!s->head) pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

const int *sp_job_prompt(const sp_job *j, int *n)
{
    *n = j->n_prompt;
    return j->prompt;
}

int sp_job_max_new(const sp_job *j) { return j->max_new; }
sp_sampler_params sp_job_sampling(const sp_job *j) { return j->sampling; }
bool sp_job_cancelled(const sp_job *j) { return atomic_load(&j->cancelled) != 0; }

void sp_job_text(sp_job *j, const char *text, int len)
{
    if (len <= 0) return;
    pthread_mutex_lock(&j->mu);
    if (j->len + (size_t)len + 1 > j->cap) {
        j->cap = (j->len + (size_t)len + 1) * 2 + 256;
        j->text = realloc(j->text, j->cap);
    }
    memcpy(j->text + j->len, text, (size_t)len);
    j->len += (size_t)len;
    j->text[j->len] = 0;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Marks the job ended (first caller wins) and wakes its connection. */
static void end_job(sp_job *j, int how, int n_out, int n_cached)
{
    pthread_mutex_lock(&j->mu);
    if (!j->how) {
        j->how = how;
        j->n_out = n_out;
        j->n_cached = n_cached;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void unlist(sp_server *s, sp_job *j)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_open; i++)
        if (s->open[i] == j) {
            s->open[i] = s->open[--s->n_open];
            s->active--;
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

void sp_job_finish(sp_job *j, int how, int n_out, const double *t_out, int n_cached)
{
    sp_server *s = j->srv;
    if (how != SP_JOB_CANCELLED && how != SP_JOB_ABORTED) sp_metrics_job(&s->metrics, j, t_out, n_out);
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.prompt_tokens += j->n_prompt;
    s->metrics.cached_tokens += n_cached;
    s->metrics.generated_tokens += n_out;
    pthread_mutex_unlock(&s->metrics.mu);
    end_job(j, how, n_out, n_cached);
    unlist(s, j);
    sp_job_release(j);
}

void sp_job_fail(sp_job *j, const char *reason)
{
    pthread_mutex_lock(&j->mu);
    snprintf(j->fail, sizeof j->fail, "%s", reason);
    pthread_mutex_unlock(&j->mu);
    sp_job_finish(j, SP_JOB_ABORTED, 0, NULL, 0);
}

void sp_job_release(sp_job *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    for (int i = 0; i < j->n_stops; i++) free(j->stops[i]);
    free(j->prompt);
    free(j->text);
    free(j);
}

void sp_server_drain(sp_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->state = SP_SRV_DRAINING;
    pthread_mutex_unlock(&s->mu);
}

/* Every job still open ends as aborted: its connection answers with an
 * error and returns, so the HTTP daemon can stop. The coordinator has
 * stopped by now and holds no job. */
void sp_server_abort_open(sp_server *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_open; i++) end_job(s->open[i], SP_JOB_ABORTED, 0, 0);
    pthread_mutex_unlock(&s->mu);
}
