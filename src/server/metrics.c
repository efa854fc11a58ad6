/* metrics.c - counters and histograms for GET /metrics, in Prometheus'
 * text format: requests by endpoint and status, prompt / cached /
 * generated tokens, requests running and waiting, time to first token and
 * time per output token (the gaps between a request's consecutive tokens),
 * and each pipeline stage's busy fraction (its compute time over the time
 * served, as the coordinator adds it up from the micro-batches). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* seconds; the last bucket is +Inf */
static const double bounds[SP_HIST_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,    1,     2.5,  5,     10};

void sp_metrics_init(sp_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void sp_metrics_request(sp_metrics *m, const char *endpoint, int code)
{
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_req && (m->req[i].code != code || strcmp(m->req[i].endpoint, endpoint))) i++;
    if (i == m->n_req && m->n_req < (int)(sizeof m->req / sizeof m->req[0])) {
        snprintf(m->req[i].endpoint, sizeof m->req[i].endpoint, "%s", endpoint);
        m->req[i].code = code;
        m->n_req++;
    }
    if (i < m->n_req) m->req[i].n++;
    pthread_mutex_unlock(&m->mu);
}

static void observe(sp_hist *h, double x)
{
    int b = 0;
    while (b < SP_HIST_BUCKETS - 1 && x > bounds[b]) b++;
    h->bucket[b]++;
    h->count++;
    h->sum += x;
}

void sp_metrics_job(sp_metrics *m, const sp_job *j, const double *t_out, int n_out)
{
    pthread_mutex_lock(&m->mu);
    if (n_out > 0) observe(&m->ttft, t_out[0] - j->t_submit);
    for (int k = 1; k < n_out; k++) observe(&m->tpot, t_out[k] - t_out[k - 1]);
    pthread_mutex_unlock(&m->mu);
}

void sp_server_note(sp_server *s, int running, int waiting, const double *stage_busy, int n_stages, double wall)
{
    sp_metrics *m = &s->metrics;
    pthread_mutex_lock(&m->mu);
    m->running = running;
    m->waiting = waiting;
    m->n_stages = n_stages < 8 ? n_stages : 8;
    for (int i = 0; i < m->n_stages; i++) m->stage_busy[i] = stage_busy[i];
    m->wall = wall;
    pthread_mutex_unlock(&m->mu);
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        b->p = realloc(b->p, b->cap);
    }
}

static void hist(buf *b, const char *name, const char *help, const sp_hist *h)
{
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long cum = 0;
    for (int i = 0; i < SP_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        if (i < SP_HIST_BUCKETS - 1) put(b, "%s_bucket{le=\"%g\"} %ld\n", name, bounds[i], cum);
        else put(b, "%s_bucket{le=\"+Inf\"} %ld\n", name, cum);
    }
    put(b, "%s_sum %.6f\n%s_count %ld\n", name, h->sum, name, h->count);
}

char *sp_metrics_render(sp_metrics *m, int queue_len)
{
    (void)queue_len;
    buf b = {malloc(4096), 0, 4096};
    b.p[0] = 0;
    pthread_mutex_lock(&m->mu);
    put(&b, "# HELP shardpipe_requests_total HTTP requests by endpoint and status code.\n"
            "# TYPE shardpipe_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        put(&b, "shardpipe_requests_total{endpoint=\"%s\",code=\"%d\"} %ld\n", m->req[i].endpoint, m->req[i].code,
            m->req[i].n);
    put(&b, "# HELP shardpipe_prompt_tokens_total Prompt tokens of finished requests.\n"
            "# TYPE shardpipe_prompt_tokens_total counter\nshardpipe_prompt_tokens_total %ld\n", m->prompt_tokens);
    put(&b, "# HELP shardpipe_prompt_tokens_cached_total Prompt tokens taken from the prompt cache (not computed again).\n"
            "# TYPE shardpipe_prompt_tokens_cached_total counter\nshardpipe_prompt_tokens_cached_total %ld\n",
        m->cached_tokens);
    put(&b, "# HELP shardpipe_generated_tokens_total Tokens generated.\n"
            "# TYPE shardpipe_generated_tokens_total counter\nshardpipe_generated_tokens_total %ld\n",
        m->generated_tokens);
    put(&b, "# HELP shardpipe_requests_running Requests in a sequence slot.\n"
            "# TYPE shardpipe_requests_running gauge\nshardpipe_requests_running %d\n", m->running);
    put(&b, "# HELP shardpipe_queue_length Requests waiting for a slot.\n"
            "# TYPE shardpipe_queue_length gauge\nshardpipe_queue_length %d\n", m->waiting);
    hist(&b, "shardpipe_time_to_first_token_seconds", "From the request's arrival to its first token.", &m->ttft);
    hist(&b, "shardpipe_time_per_output_token_seconds", "Gap between a request's consecutive tokens.", &m->tpot);
    put(&b, "# HELP shardpipe_stage_busy_ratio Fraction of the time served that each stage spent computing.\n"
            "# TYPE shardpipe_stage_busy_ratio gauge\n");
    for (int i = 0; i < m->n_stages; i++)
        put(&b, "shardpipe_stage_busy_ratio{stage=\"%d\"} %.4f\n", i, m->wall > 0 ? m->stage_busy[i] / m->wall : 0.0);
    pthread_mutex_unlock(&m->mu);
    return b.p;
}
